//! Start-up as a value: `build` connects, migrates, binds (port 0 in tests)
//! and spawns the workers; `run_until_stopped` serves until a signal.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_http::HttpService;
use actix_http::KeepAlive;
use actix_service::{fn_service, map_config};
use actix_web::dev::{AppConfig, Server};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::{App, web};
use chrono::Duration as ChronoDuration;
use domain::auth::{AuthConfig, generate_secret};
use domain::ingest::IngestBatcher;
use domain::{Clock, Domain, DomainConfig, MessagingConfig, SystemClock};
use migration::{Migrator, MigratorTrait};

use crate::config::Config;
use crate::db::{self, QueryCounter};
use crate::events::EventBus;
use crate::graphql::{self, HelpdeskSchema, Limits};
use crate::metrics::{self, GraphqlMetrics, Metrics};
use crate::outbound_webhooks::HttpWebhookSender;
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
    going_away: tokio::sync::watch::Sender<bool>,
    metrics: Arc<Metrics>,
    shutdown_grace: Duration,
}

/// What the WebSockets need to know about the process: its metrics, and
/// when it starts shutting down (they then close with 1001).
#[derive(Clone)]
pub struct Lifecycle {
    pub metrics: Arc<Metrics>,
    pub going_away: tokio::sync::watch::Receiver<bool>,
}

/// Counts an open WebSocket while alive.
pub struct SocketGuard(Arc<Metrics>);

impl SocketGuard {
    pub fn open(metrics: Arc<Metrics>) -> Self {
        metrics.websocket_opened();
        Self(metrics)
    }
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        self.0.websocket_closed();
    }
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
        automation: domain::autoreply::auto_close::AutomationConfig {
            auto_close_after: (config.auto_close_minutes > 0)
                .then(|| ChronoDuration::minutes(config.auto_close_minutes)),
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
    let read = db::read_pool(
        &config.database_url,
        &db,
        &queries,
        config.db_max_connections,
    )
    .await?;
    let sender = CloudApiClient::new(&config.graph_base_url, &config.graph_api_version)?;
    let webhooks = domain::webhooks_out::WebhookConfig {
        allow_http: config.webhooks_allow_http,
        retry_for: ChronoDuration::hours(config.webhook_retry_hours),
        disable_after_failures: config.webhook_disable_after_failures,
    };
    Ok((
        Domain::new(db, clock, events, domain_config(config))
            .with_read_pool(read)
            .with_sender(Arc::new(sender))
            .with_webhooks(Arc::new(HttpWebhookSender::new()?), webhooks),
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

        let metrics = Arc::new(Metrics::default());
        let schema = graphql::build_schema(
            domain.clone(),
            events.local().clone(),
            Limits {
                max_depth: config.graphql_max_depth,
                max_complexity: config.graphql_max_complexity,
            },
            GraphqlMetrics(metrics.clone()),
        );
        let listener = TcpListener::bind(&config.bind)?;
        let port = listener.local_addr()?.port();
        let webhook = Webhook::new(
            config.webhook_verify_token.clone(),
            config.whatsapp_app_secret.clone(),
            IngestBatcher::start(domain.clone()),
        );
        let (going_away, going_away_rx) = tokio::sync::watch::channel(false);
        let shutdown_grace = Duration::from_secs(config.shutdown_grace_secs);
        let server = serve(
            listener,
            schema,
            domain.clone(),
            webhook,
            events.clone(),
            config.max_body_bytes,
            Lifecycle {
                metrics: metrics.clone(),
                going_away: going_away_rx,
            },
            shutdown_grace,
        )?;
        if config.outbox_worker {
            workers::spawn_outbox(domain.clone(), metrics.clone(), stopped.clone());
        }
        if config.sla_worker {
            workers::spawn_sla(domain.clone(), metrics.clone(), stopped.clone());
        }
        if config.webhooks_worker {
            workers::spawn_webhooks(domain.clone(), metrics.clone(), stopped.clone());
        }
        workers::spawn_rollups(
            domain.clone(),
            workers::ROLLUP_SWEEP,
            metrics.clone(),
            stopped.clone(),
        );
        workers::spawn_retention(
            domain.clone(),
            crate::workers::RetentionSchedule::from_config(&config),
            metrics.clone(),
            stopped.clone(),
        );
        let routing_bus = config.routing_worker.then(|| events.local().clone());
        workers::spawn_all(domain.clone(), routing_bus, metrics.clone(), stopped);
        tracing::info!(port, instance = %instance_id, "helpdesk listening");
        Ok(Self {
            port,
            server,
            domain,
            queries,
            events,
            stop_workers,
            going_away,
            metrics,
            shutdown_grace,
        })
    }

    /// This process's counters, as `/metrics` shows them.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
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

    /// Serves until SIGINT/SIGTERM, then shuts down gracefully within the
    /// grace period: stops accepting, closes WebSockets with 1001 (going
    /// away), lets in-flight requests finish, stops the workers and waits
    /// for their current tick.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Self {
            server,
            stop_workers,
            going_away,
            shutdown_grace,
            ..
        } = self;
        let handle = server.handle();
        let mut server = std::pin::pin!(server);
        let mut started = std::time::Instant::now();
        let result = tokio::select! {
            result = &mut server => result,
            signal = shutdown_signal() => {
                started = std::time::Instant::now();
                tracing::info!(signal, "shutting down");
                let _ = going_away.send(true);
                // Graceful: waits for in-flight requests up to the grace
                // period; the server must be polled to act on it.
                let ((), result) = tokio::join!(handle.stop(true), server);
                result
            }
        };
        let _ = stop_workers.send(true);
        // Every worker holds a receiver and drops it when its tick is done.
        let left = shutdown_grace.saturating_sub(started.elapsed());
        if tokio::time::timeout(left.max(Duration::from_secs(1)), stop_workers.closed())
            .await
            .is_err()
        {
            tracing::warn!("workers did not stop within the grace period");
        }
        tracing::info!("stopped");
        result
    }
}

/// Resolves on SIGTERM or SIGINT, naming it.
async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            },
            _ => {
                tracing::warn!("cannot listen for signals; run until killed");
                std::future::pending().await
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "ctrl-c"
    }
}

/// The HTTP server: the application for requests, and for WebSocket
/// upgrades the GraphQL socket handler, which takes the connection over
/// from the HTTP/1 dispatcher (see `graphql::ws`). The settings are
/// actix-web's `HttpServer` defaults.
#[allow(clippy::too_many_arguments)]
fn serve(
    listener: TcpListener,
    schema: HelpdeskSchema,
    domain: Domain,
    webhook: Webhook,
    events: EventBus,
    max_body_bytes: usize,
    lifecycle: Lifecycle,
    shutdown_grace: Duration,
) -> std::io::Result<Server> {
    let addr = listener.local_addr()?;
    let metrics = web::Data::new(lifecycle.metrics.clone());
    let sockets = graphql::ws::Sockets::new(schema.clone(), domain.clone(), lifecycle);
    let schema = web::Data::new(schema);
    let domain = web::Data::new(domain);
    let webhook = web::Data::new(webhook);
    let events = web::Data::new(events);
    let builder = Server::build();
    // Lets idle keep-alive connections go as soon as a graceful stop starts.
    let stopping = builder.graceful_shutdown_signal();
    let server = builder
        // Signals are handled by `run_until_stopped`, which closes sockets first.
        .disable_signals()
        .shutdown_timeout(shutdown_grace.as_secs())
        .listen("helpdesk", listener, move || {
            let request_metrics = metrics.get_ref().clone();
            let app = App::new()
                .app_data(schema.clone())
                .app_data(domain.clone())
                .app_data(webhook.clone())
                .app_data(events.clone())
                .app_data(metrics.clone())
                .app_data(web::PayloadConfig::new(max_body_bytes))
                .wrap_fn(move |req, srv| {
                    use actix_web::dev::Service;
                    use tracing::Instrument;
                    let request_id = request_id(req.headers());
                    let span = tracing::info_span!(
                        "request",
                        request_id = %request_id,
                        method = %req.method(),
                        path = %req.path(),
                    );
                    let started = std::time::Instant::now();
                    let method = req.method().to_string();
                    let fut = {
                        let _entered = span.enter();
                        srv.call(req)
                    };
                    let metrics = request_metrics.clone();
                    async move {
                        let mut res = fut.await?;
                        let route = res
                            .request()
                            .match_pattern()
                            .unwrap_or_else(|| "unmatched".into());
                        metrics.observe_http(
                            &method,
                            &route,
                            res.status().as_u16(),
                            started.elapsed(),
                        );
                        if let Ok(v) = HeaderValue::from_str(&request_id) {
                            res.headers_mut()
                                .insert(HeaderName::from_static("x-request-id"), v);
                        }
                        Ok(res)
                    }
                    .instrument(span)
                })
                .route("/graphql", web::post().to(graphql::http::post))
                .route("/graphql", web::get().to(graphql::http::get))
                .route("/webhooks/whatsapp", web::get().to(webhook::verify))
                .route("/webhooks/whatsapp", web::post().to(webhook::receive))
                .route("/healthz", web::get().to(health::healthz))
                .route("/readyz", web::get().to(health::readyz))
                .route("/metrics", web::get().to(metrics::metrics));
            let stopping = stopping.clone();
            let sockets = sockets.clone();
            HttpService::build()
                .graceful_shutdown_signal(move || {
                    let stopping = stopping.clone();
                    async move { stopping.notified().await }
                })
                .keep_alive(KeepAlive::default())
                .client_request_timeout(Duration::from_secs(5))
                .client_disconnect_timeout(Duration::from_secs(1))
                .h1_allow_half_closed(true)
                .local_addr(addr)
                .upgrade(fn_service(move |(req, framed): graphql::ws::Upgrade| {
                    graphql::ws::upgrade(sockets.clone(), req, framed)
                }))
                .h1(map_config(app, |()| AppConfig::default()))
                .tcp()
        })?
        .run();
    Ok(server)
}

/// The caller's `X-Request-Id` when it is a sane token, a new one otherwise.
pub(crate) fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string())
}
