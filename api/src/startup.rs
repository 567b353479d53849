//! Start-up as a value: `build` connects, migrates, binds (port 0 in tests)
//! and spawns the workers; `run_until_stopped` serves until a signal.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use chrono::Duration as ChronoDuration;
use domain::auth::{AuthConfig, generate_secret};
use domain::{Clock, Domain, DomainConfig, SystemClock};
use migration::{Migrator, MigratorTrait};

use crate::config::Config;
use crate::db::{self, QueryCounter};
use crate::events::InProcessBus;
use crate::graphql::{self, HelpdeskSchema, Limits};
use crate::{health, workers};

pub struct Application {
    port: u16,
    server: Server,
    domain: Domain,
    queries: QueryCounter,
    stop_workers: tokio::sync::watch::Sender<bool>,
}

pub fn domain_config(config: &Config) -> DomainConfig {
    let jwt_secret = config.jwt_secret.clone().unwrap_or_else(|| {
        tracing::warn!(
            "HELPDESK_JWT_SECRET is not set: using a random secret, so tokens end with this process"
        );
        generate_secret(32)
    });
    DomainConfig {
        auth: AuthConfig {
            jwt_secret,
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
            access_ttl: ChronoDuration::seconds(config.access_token_ttl_secs),
            refresh_ttl: ChronoDuration::seconds(config.refresh_token_ttl_secs),
        },
        lock_ttl: ChronoDuration::seconds(config.lock_ttl_secs),
        lock_idle: ChronoDuration::seconds(config.lock_idle_secs),
    }
}

/// Connects and migrates; shared by `serve` and the other subcommands.
pub async fn open_domain(
    config: &Config,
    clock: Arc<dyn Clock>,
    events: Arc<dyn domain::EventPublisher>,
) -> anyhow::Result<(Domain, QueryCounter)> {
    let (db, queries) = db::connect(&config.database_url, config.db_max_connections).await?;
    Migrator::up(&db, None).await?;
    Ok((
        Domain::new(db, clock, events, domain_config(config)),
        queries,
    ))
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    pub async fn build_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let instance_id = config
            .instance_id
            .clone()
            .unwrap_or_else(|| format!("hd-{}", &generate_secret(4)));
        let bus = InProcessBus::new(&instance_id);
        let (domain, queries) = open_domain(&config, clock, Arc::new(bus.clone())).await?;

        if let Some(password) = domain
            .ensure_initial_admin(&config.admin_email, config.admin_password.as_deref())
            .await?
        {
            // Printed once, on the console only: the admin must change it.
            println!(
                "created the first admin {} with password {password}",
                config.admin_email
            );
        }

        let schema = graphql::build_schema(
            domain.clone(),
            bus,
            Limits {
                max_depth: config.graphql_max_depth,
                max_complexity: config.graphql_max_complexity,
            },
        );
        let listener = TcpListener::bind(&config.bind)?;
        let port = listener.local_addr()?.port();
        let server = serve(listener, schema, domain.clone(), config.max_body_bytes)?;
        let (stop_workers, stopped) = tokio::sync::watch::channel(false);
        workers::spawn_all(domain.clone(), stopped);
        tracing::info!(port, instance = %instance_id, "helpdesk listening");
        Ok(Self {
            port,
            server,
            domain,
            queries,
            stop_workers,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    pub fn queries(&self) -> QueryCounter {
        self.queries.clone()
    }

    /// Serves until SIGINT/SIGTERM (actix stops accepting and finishes
    /// in-flight requests), then stops the workers.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        let _ = self.stop_workers.send(true);
        result
    }
}

fn serve(
    listener: TcpListener,
    schema: HelpdeskSchema,
    domain: Domain,
    max_body_bytes: usize,
) -> std::io::Result<Server> {
    let schema = web::Data::new(schema);
    let domain = web::Data::new(domain);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(schema.clone())
            .app_data(domain.clone())
            .app_data(web::PayloadConfig::new(max_body_bytes))
            .route("/graphql", web::post().to(graphql::http::post))
            .route("/graphql", web::get().to(graphql::http::get))
            .route("/healthz", web::get().to(health::healthz))
            .route("/readyz", web::get().to(health::readyz))
    })
    .shutdown_timeout(Duration::from_secs(30).as_secs())
    .listen(listener)?
    .run();
    Ok(server)
}
