//! Start-up as a value: `build` connects, migrates, binds (port 0 in tests)
//! and spawns the workers; `run_until_stopped` serves until a signal.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use chrono::Duration as ChronoDuration;
use domain::auth::{AuthConfig, generate_secret};
use domain::ingest::IngestBatcher;
use domain::{Clock, Domain, DomainConfig, MessagingConfig, SystemClock};
use migration::{Migrator, MigratorTrait};

use crate::config::Config;
use crate::db::{self, QueryCounter};
use crate::events::EventBus;
use crate::graphql::{self, HelpdeskSchema, Limits};
use crate::webhook::{self, Webhook};
use crate::whatsapp::client::CloudApiClient;
use crate::{health, workers};

pub struct Application {
    port: u16,
    server: Server,
    domain: Domain,
    queries: QueryCounter,
    events: EventBus,
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
        messaging: MessagingConfig {
            service_window: ChronoDuration::hours(config.service_window_hours),
            billing_window: ChronoDuration::hours(config.billing_window_hours),
            free_messages_per_month: config.free_messages_per_month,
            prices: config.prices.clone(),
            window_surcharge_micros: config.window_surcharge_micros,
            outbox_rate_per_second: config.outbox_rate_per_second,
            new_customer_messages_per_minute: config.new_customer_messages_per_minute,
        },
        surveys: domain::survey::SurveyConfig {
            csat: config.csat_survey,
            nps: config.nps_survey,
            expiry: ChronoDuration::hours(config.survey_expiry_hours),
        },
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
    let sender = CloudApiClient::new(&config.graph_base_url, &config.graph_api_version)?;
    Ok((
        Domain::new(db, clock, events, domain_config(config)).with_sender(Arc::new(sender)),
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
        let (stop_workers, stopped) = tokio::sync::watch::channel(false);
        // In-process, or Redis when REDIS_URL is set (connects in the background).
        let events = EventBus::start(
            &instance_id,
            config.redis_url.as_deref(),
            &config.redis_channel,
            stopped.clone(),
        )?;
        let (domain, queries) = open_domain(&config, clock, Arc::new(events.clone())).await?;

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
            events.local().clone(),
            Limits {
                max_depth: config.graphql_max_depth,
                max_complexity: config.graphql_max_complexity,
            },
        );
        let listener = TcpListener::bind(&config.bind)?;
        let port = listener.local_addr()?.port();
        let webhook = Webhook::new(
            config.webhook_verify_token.clone(),
            config.whatsapp_app_secret.clone(),
            IngestBatcher::start(domain.clone()),
        );
        let server = serve(
            listener,
            schema,
            domain.clone(),
            webhook,
            events.clone(),
            config.max_body_bytes,
        )?;
        if config.outbox_worker {
            workers::spawn_outbox(domain.clone(), stopped.clone());
        }
        let routing_bus = config.routing_worker.then(|| events.local().clone());
        workers::spawn_all(domain.clone(), routing_bus, stopped);
        tracing::info!(port, instance = %instance_id, "helpdesk listening");
        Ok(Self {
            port,
            server,
            domain,
            queries,
            events,
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

    /// The event bus, for its counters.
    pub fn events(&self) -> &EventBus {
        &self.events
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
    webhook: Webhook,
    events: EventBus,
    max_body_bytes: usize,
) -> std::io::Result<Server> {
    let schema = web::Data::new(schema);
    let domain = web::Data::new(domain);
    let webhook = web::Data::new(webhook);
    let events = web::Data::new(events);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(schema.clone())
            .app_data(domain.clone())
            .app_data(webhook.clone())
            .app_data(events.clone())
            .app_data(web::PayloadConfig::new(max_body_bytes))
            .route("/graphql", web::post().to(graphql::http::post))
            .route("/graphql", web::get().to(graphql::http::get))
            .route("/webhooks/whatsapp", web::get().to(webhook::verify))
            .route("/webhooks/whatsapp", web::post().to(webhook::receive))
            .route("/healthz", web::get().to(health::healthz))
            .route("/readyz", web::get().to(health::readyz))
    })
    .shutdown_timeout(Duration::from_secs(30).as_secs())
    .listen(listener)?
    .run();
    Ok(server)
}
