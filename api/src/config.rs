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
    /// Redis for cross-instance event fan-out; in-process bus when unset
    /// (or set but empty: `REDIS_URL=` in a compose or env file).
    #[serde(deserialize_with = "empty_as_none")]
    pub redis_url: Option<String>,
    /// The Redis pub/sub channel events travel on; instances that should see
    /// each other's events share it (separate deployments on one Redis don't).
    pub redis_channel: String,
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
    /// Token Meta echoes in the webhook verification handshake.
    pub webhook_verify_token: Option<String>,
    /// The Meta app secret deliveries are signed with (channels may add their
    /// own); when none is configured, signatures are not checked.
    pub whatsapp_app_secret: Option<String>,
    /// Graph API base URL; tests and staging point it at a local stand-in.
    pub graph_base_url: String,
    /// Graph API version in the request path.
    pub graph_api_version: String,
    /// Sends per second per business number (Meta: 80 by default, 1,000 after
    /// its upgrade, 20 when shared with the Business app). Per instance.
    pub outbox_rate_per_second: u32,
    /// Run the outbox worker in this process (tests drive the outbox by hand).
    pub outbox_worker: bool,
    /// Run the routing worker in this process (some tests route by hand).
    pub routing_worker: bool,
    /// Run the SLA sweep in this process (some tests sweep by hand).
    pub sla_worker: bool,
    /// The customer-service window: free-form messages only this long after
    /// the customer's last message (Meta: 24 h).
    pub service_window_hours: i64,
    /// Messages sent later than this after the customer's last message carry
    /// the window surcharge in the billing ledger.
    pub billing_window_hours: i64,
    /// Free messages per channel per calendar month (UTC).
    pub free_messages_per_month: i64,
    /// Price of a billable message per channel region, in micro-USD
    /// (`[prices]` in TOML: europe, americas, south_east_asia, other).
    pub prices: domain::billing::Prices,
    /// Surcharge per message beyond the billing window, in micro-USD.
    pub window_surcharge_micros: i64,
    /// Messages per minute to a new customer (first contact within 24 h).
    pub new_customer_messages_per_minute: u64,
    // --- integration and operations ---
    /// Accept `http://` webhook URLs to loopback hosts (tests only).
    pub webhooks_allow_http: bool,
    /// Run the outbound-webhook delivery worker in this process.
    pub webhooks_worker: bool,
    /// How long a webhook delivery is retried before it is given up.
    pub webhook_retry_hours: i64,
    /// Failed attempts in a row after which a subscription is disabled.
    pub webhook_disable_after_failures: i32,
    /// Closed conversations older than this many days are archived or
    /// purged by the retention worker; unset keeps everything.
    pub retention_days: Option<i64>,
    /// `archive` (keep, hide from lists) or `purge` (delete).
    pub retention_action: String,
    /// Seconds to finish in-flight requests and worker ticks after SIGTERM.
    pub shutdown_grace_secs: u64,
    /// Send a CSAT survey (1–5) when a conversation is resolved.
    pub csat_survey: bool,
    /// Ask NPS (0–10) after the CSAT answer.
    pub nps_survey: bool,
    /// Unanswered surveys expire after this many hours.
    pub survey_expiry_hours: i64,
    /// Bot-answered conversations are resolved after the customer has been
    /// quiet this many minutes; 0 never auto-closes.
    pub auto_close_minutes: i64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            database_url: "sqlite://helpdesk.db?mode=rwc".into(),
            redis_url: None,
            redis_channel: "helpdesk:events".into(),
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
            webhook_verify_token: None,
            whatsapp_app_secret: None,
            graph_base_url: "https://graph.facebook.com".into(),
            graph_api_version: "v21.0".into(),
            outbox_rate_per_second: 80,
            outbox_worker: true,
            routing_worker: true,
            sla_worker: true,
            service_window_hours: 24,
            billing_window_hours: 48,
            free_messages_per_month: 1000,
            prices: domain::billing::Prices::default(),
            window_surcharge_micros: 10_000,
            new_customer_messages_per_minute: 5,
            webhooks_allow_http: false,
            webhooks_worker: true,
            webhook_retry_hours: 24,
            webhook_disable_after_failures: 20,
            retention_days: None,
            retention_action: "archive".into(),
            shutdown_grace_secs: 30,
            csat_survey: true,
            nps_survey: false,
            survey_expiry_hours: 24,
            auto_close_minutes: 60,
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
            .field("redis_channel", &self.redis_channel)
            .field("instance_id", &self.instance_id)
            .field("jwt_secret", &redacted(&self.jwt_secret))
            .field("admin_email", &self.admin_email)
            .field("admin_password", &redacted(&self.admin_password))
            .field("whatsapp_app_secret", &redacted(&self.whatsapp_app_secret))
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

/// An empty or blank value reads as unset.
fn empty_as_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.trim().is_empty()))
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
        let url = self.graph_base_url.trim_end_matches('/');
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return invalid("graph_base_url", "must be an http(s) URL");
        }
        if !self.graph_api_version.starts_with('v') || self.graph_api_version.contains('/') {
            return invalid("graph_api_version", "must look like v21.0");
        }
        if !(1..=10_000).contains(&self.outbox_rate_per_second) {
            return invalid("outbox_rate_per_second", "must be between 1 and 10000");
        }
        if !(1..=24 * 7).contains(&self.service_window_hours) {
            return invalid("service_window_hours", "must be between 1 and 168");
        }
        if !(1..=24 * 31).contains(&self.billing_window_hours) {
            return invalid("billing_window_hours", "must be between 1 and 744");
        }
        let p = &self.prices;
        let money = [
            p.europe,
            p.americas,
            p.south_east_asia,
            p.other,
            self.window_surcharge_micros,
            self.free_messages_per_month,
        ];
        if money.iter().any(|v| *v < 0) {
            return invalid(
                "prices",
                "prices, surcharge and free messages must not be negative",
            );
        }
        if self.new_customer_messages_per_minute == 0 {
            return invalid("new_customer_messages_per_minute", "must be at least 1");
        }
        if self.auto_close_minutes < 0 {
            return invalid("auto_close_minutes", "must not be negative (0: never)");
        }
        if !(1..=24 * 7).contains(&self.webhook_retry_hours) {
            return invalid("webhook_retry_hours", "must be between 1 and 168");
        }
        if self.webhook_disable_after_failures < 1 {
            return invalid("webhook_disable_after_failures", "must be at least 1");
        }
        if self.retention_days.is_some_and(|d| d < 1) {
            return invalid("retention_days", "must be at least 1");
        }
        if !matches!(self.retention_action.as_str(), "archive" | "purge") {
            return invalid("retention_action", "must be archive or purge");
        }
        if !(1..=600).contains(&self.shutdown_grace_secs) {
            return invalid("shutdown_grace_secs", "must be between 1 and 600");
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
    #[allow(clippy::result_large_err)] // figment's Jail closure returns its own error type
    fn an_empty_redis_url_means_no_redis() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("REDIS_URL", "");
            assert_eq!(Config::load_from(None).unwrap().redis_url, None);
            jail.set_env("REDIS_URL", "  ");
            assert_eq!(Config::load_from(None).unwrap().redis_url, None);
            jail.set_env("REDIS_URL", "redis://cache:6379");
            assert_eq!(
                Config::load_from(None).unwrap().redis_url.as_deref(),
                Some("redis://cache:6379")
            );
            jail.create_file("helpdesk.toml", "redis_url = \"\"")?;
            jail.set_env("REDIS_URL", "");
            let file = Config::load_from(Some(Path::new("helpdesk.toml"))).unwrap();
            assert_eq!(file.redis_url, None);
            Ok(())
        });
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
