//! Configuration in layers: compiled-in defaults, an optional TOML file
//! (`HELPDESK_CONFIG`), then the environment (`HELPDESK_*`, plus the
//! conventional `DATABASE_URL` and `REDIS_URL`). Checked at start-up.

use std::net::SocketAddr;
use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address the HTTP server listens on.
    pub bind: String,
    pub database_url: String,
    /// Redis for cross-instance event fan-out; in-process bus when unset.
    pub redis_url: Option<String>,
    /// Identifies this process in events and logs; random when unset.
    pub instance_id: Option<String>,
    /// HS256 secret for access and refresh tokens. When unset a random one is
    /// generated, so tokens do not survive a restart: set it in production.
    pub jwt_secret: Option<String>,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub access_token_ttl_secs: i64,
    pub refresh_token_ttl_secs: i64,
    /// The first admin, created when no staff exists.
    pub admin_email: String,
    pub admin_password: Option<String>,
    /// Conversation lock duration, 300–900 s.
    pub lock_ttl_secs: i64,
    /// Idle time after which a lock is released.
    pub lock_idle_secs: i64,
    /// `text` or `json`.
    pub log_format: String,
    /// Largest request body accepted, in bytes (Meta's webhooks are at most 3 MB).
    pub max_body_bytes: usize,
    pub graphql_max_depth: usize,
    pub graphql_max_complexity: usize,
    /// Database connection pool size (PostgreSQL).
    pub db_max_connections: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            database_url: "sqlite://helpdesk.db?mode=rwc".into(),
            redis_url: None,
            instance_id: None,
            jwt_secret: None,
            jwt_issuer: "helpdesk".into(),
            jwt_audience: "helpdesk-api".into(),
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            admin_email: "admin@example.com".into(),
            admin_password: None,
            lock_ttl_secs: 7 * 60,
            lock_idle_secs: 3 * 60,
            log_format: "text".into(),
            max_body_bytes: 3 * 1024 * 1024,
            graphql_max_depth: 12,
            graphql_max_complexity: 2_000,
            db_max_connections: 20,
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("database_url", &redact_url(&self.database_url))
            .field("redis_url", &self.redis_url.as_deref().map(redact_url))
            .field("instance_id", &self.instance_id)
            .field("jwt_secret", &redacted(&self.jwt_secret))
            .field("admin_email", &self.admin_email)
            .field("admin_password", &redacted(&self.admin_password))
            .field("lock_ttl_secs", &self.lock_ttl_secs)
            .field("lock_idle_secs", &self.lock_idle_secs)
            .field("log_format", &self.log_format)
            .finish_non_exhaustive()
    }
}

/// Hides a password in a connection URL.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("configuration: {field} {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

impl Config {
    /// Defaults, then the TOML file named by `HELPDESK_CONFIG` (if any), then the environment.
    pub fn load() -> Result<Self, ConfigError> {
        let file = std::env::var("HELPDESK_CONFIG").ok();
        Self::load_from(file.as_deref().map(Path::new))
    }

    pub fn load_from(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            figment = figment.merge(Toml::file_exact(path));
        }
        let config: Config = figment
            .merge(Env::raw().only(&["DATABASE_URL", "REDIS_URL"]))
            .merge(Env::prefixed("HELPDESK_").ignore(&["CONFIG"]))
            .extract()
            .map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, message: &str| {
            Err(ConfigError::Invalid {
                field,
                message: message.to_string(),
            })
        };
        if self.bind.parse::<SocketAddr>().is_err() {
            return invalid("bind", "must be host:port, e.g. 127.0.0.1:8080");
        }
        if !(300..=900).contains(&self.lock_ttl_secs) {
            return invalid(
                "lock_ttl_secs",
                "must be between 300 and 900 (5–15 minutes)",
            );
        }
        if !(60..=self.lock_ttl_secs).contains(&self.lock_idle_secs) {
            return invalid("lock_idle_secs", "must be between 60 and lock_ttl_secs");
        }
        if self.jwt_secret.as_ref().is_some_and(|s| s.len() < 32) {
            return invalid("jwt_secret", "must be at least 32 characters");
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return invalid("log_format", "must be text or json");
        }
        if self.access_token_ttl_secs < 60
            || self.refresh_token_ttl_secs < self.access_token_ttl_secs
        {
            return invalid(
                "access_token_ttl_secs",
                "must be at least 60 and below the refresh ttl",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn a_lock_longer_than_15_minutes_is_refused() {
        let config = Config {
            lock_ttl_secs: 16 * 60,
            ..Config::default()
        };
        assert!(matches!(
            config.validate(),
            Err(ConfigError::Invalid {
                field: "lock_ttl_secs",
                ..
            })
        ));
    }

    #[test]
    fn passwords_in_urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://hd:secret@db:5432/hd"),
            "postgres://hd:***@db:5432/hd"
        );
        assert_eq!(redact_url("sqlite://helpdesk.db"), "sqlite://helpdesk.db");
    }

    #[test]
    fn a_toml_file_overrides_defaults() {
        let path = std::env::temp_dir().join(format!("helpdesk-{}.toml", std::process::id()));
        std::fs::write(&path, "bind = \"0.0.0.0:9000\"\nlock_ttl_secs = 600\n").unwrap();
        let config = Config::load_from(Some(&path)).unwrap();
        std::fs::remove_file(&path).ok();
        assert_eq!(config.bind, "0.0.0.0:9000");
        assert_eq!(config.lock_ttl_secs, 600);
    }
}
