//! `GET /metrics` in the Prometheus text format (version 0.0.4).
//!
//! Hand-rolled over atomics and a few small maps rather than a metrics crate:
//! the set of series is small and fixed, the encoder is fifty lines, and it
//! adds no dependency to a two-core build. Counters and histograms live in
//! this process ([`Metrics`], one per `Application`, so tests never share
//! state); gauges about shared state (queues, locks, backlogs) are read from
//! the database at scrape time with COUNT queries.
//!
//! Series: `helpdesk_http_requests_total{method,route,status}`,
//! `helpdesk_http_request_duration_seconds{route}`,
//! `helpdesk_graphql_requests_total{operation,result}`,
//! `helpdesk_graphql_request_duration_seconds{operation}`,
//! `helpdesk_webhook_ingest_total{result}`, `helpdesk_queue_length{department}`,
//! `helpdesk_open_locks`, `helpdesk_worker_ticks_total{worker}`,
//! `helpdesk_worker_errors_total{worker}`, `helpdesk_worker_lag_seconds{worker}`,
//! `helpdesk_events_published_total`, `helpdesk_events_delivered_total`,
//! `helpdesk_outbox_backlog`, `helpdesk_webhook_delivery_backlog`,
//! `helpdesk_websocket_connections`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{HttpResponse, web};
use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextRequest,
};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument};
use async_graphql::{Response, ServerResult, Variables};
use domain::Domain;
use entity::{ConversationStatus, OutboxStatus, conversation, outbox};
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect};

use crate::events::EventBus;

/// Histogram buckets, in seconds.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Distinct GraphQL operation names kept; later ones count as `other`.
const MAX_OPERATIONS: usize = 200;

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }
}

#[derive(Debug, Clone)]
struct WorkerStats {
    ticks: u64,
    errors: u64,
    last_tick: Instant,
}

/// This process's counters and histograms.
#[derive(Debug)]
pub struct Metrics {
    started: Instant,
    http_requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    http_latency: Mutex<BTreeMap<String, Histogram>>,
    graphql_requests: Mutex<BTreeMap<(String, &'static str), u64>>,
    graphql_latency: Mutex<BTreeMap<String, Histogram>>,
    ingest_ok: AtomicU64,
    ingest_failed: AtomicU64,
    workers: Mutex<HashMap<&'static str, WorkerStats>>,
    websocket_connections: AtomicI64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            http_requests: Mutex::default(),
            http_latency: Mutex::default(),
            graphql_requests: Mutex::default(),
            graphql_latency: Mutex::default(),
            ingest_ok: AtomicU64::new(0),
            ingest_failed: AtomicU64::new(0),
            workers: Mutex::default(),
            websocket_connections: AtomicI64::new(0),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Metrics {
    /// One HTTP request, by its route pattern (never the raw path).
    pub fn observe_http(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        *lock(&self.http_requests)
            .entry((method.to_string(), route.to_string(), status))
            .or_default() += 1;
        lock(&self.http_latency)
            .entry(route.to_string())
            .or_default()
            .observe(elapsed.as_secs_f64());
        if route == "/webhooks/whatsapp" && method == "POST" {
            let counter = if (200..300).contains(&status) {
                &self.ingest_ok
            } else {
                &self.ingest_failed
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn observe_graphql(&self, operation: &str, ok: bool, elapsed: Duration) {
        let mut requests = lock(&self.graphql_requests);
        let known = requests.keys().any(|(op, _)| op == operation);
        let operation = if known || requests.len() < MAX_OPERATIONS {
            operation.to_string()
        } else {
            "other".to_string()
        };
        *requests
            .entry((operation.clone(), if ok { "ok" } else { "error" }))
            .or_default() += 1;
        drop(requests);
        lock(&self.graphql_latency)
            .entry(operation)
            .or_default()
            .observe(elapsed.as_secs_f64());
    }

    /// A worker finished a tick (successfully or not).
    pub fn worker_tick(&self, worker: &'static str, ok: bool) {
        let mut workers = lock(&self.workers);
        let stats = workers.entry(worker).or_insert(WorkerStats {
            ticks: 0,
            errors: 0,
            last_tick: Instant::now(),
        });
        stats.ticks += 1;
        stats.errors += u64::from(!ok);
        stats.last_tick = Instant::now();
    }

    pub fn websocket_opened(&self) {
        self.websocket_connections.fetch_add(1, Ordering::Relaxed);
    }

    pub fn websocket_closed(&self) {
        self.websocket_connections.fetch_sub(1, Ordering::Relaxed);
    }

    /// The whole exposition: this process's series plus the database gauges.
    pub async fn render(&self, domain: &Domain, events: &EventBus) -> String {
        let mut out = String::with_capacity(8 * 1024);
        self.render_http(&mut out);
        self.render_graphql(&mut out);
        header(
            &mut out,
            "helpdesk_webhook_ingest_total",
            "counter",
            "WhatsApp webhook deliveries received, by result.",
        );
        let _ = writeln!(
            out,
            "helpdesk_webhook_ingest_total{{result=\"ok\"}} {}",
            self.ingest_ok.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "helpdesk_webhook_ingest_total{{result=\"failed\"}} {}",
            self.ingest_failed.load(Ordering::Relaxed)
        );
        self.render_workers(&mut out);
        let bus = events.metrics().snapshot();
        header(
            &mut out,
            "helpdesk_events_published_total",
            "counter",
            "Domain events published by this instance.",
        );
        let _ = writeln!(out, "helpdesk_events_published_total {}", bus.published);
        header(
            &mut out,
            "helpdesk_events_delivered_total",
            "counter",
            "Events sent to GraphQL subscribers after permission filtering.",
        );
        let _ = writeln!(out, "helpdesk_events_delivered_total {}", bus.delivered);
        header(
            &mut out,
            "helpdesk_events_lagged_total",
            "counter",
            "Events subscribers missed because they fell behind.",
        );
        let _ = writeln!(out, "helpdesk_events_lagged_total {}", bus.lagged);
        header(
            &mut out,
            "helpdesk_websocket_connections",
            "gauge",
            "Open GraphQL WebSocket connections.",
        );
        let _ = writeln!(
            out,
            "helpdesk_websocket_connections {}",
            self.websocket_connections.load(Ordering::Relaxed)
        );
        header(
            &mut out,
            "helpdesk_uptime_seconds",
            "gauge",
            "Seconds since start.",
        );
        let _ = writeln!(
            out,
            "helpdesk_uptime_seconds {}",
            self.started.elapsed().as_secs()
        );
        if let Err(e) = render_database(&mut out, domain).await {
            tracing::warn!(error = %e, "metrics: database gauges unavailable");
            header(
                &mut out,
                "helpdesk_metrics_database_up",
                "gauge",
                "Whether the database gauges could be read.",
            );
            let _ = writeln!(out, "helpdesk_metrics_database_up 0");
        }
        out
    }

    fn render_http(&self, out: &mut String) {
        header(
            out,
            "helpdesk_http_requests_total",
            "counter",
            "HTTP requests, by method, route and status.",
        );
        for ((method, route, status), n) in lock(&self.http_requests).iter() {
            let _ = writeln!(
                out,
                "helpdesk_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(method),
                escape(route)
            );
        }
        header(
            out,
            "helpdesk_http_request_duration_seconds",
            "histogram",
            "HTTP request latency, by route.",
        );
        for (route, h) in lock(&self.http_latency).iter() {
            histogram(
                out,
                "helpdesk_http_request_duration_seconds",
                "route",
                route,
                h,
            );
        }
    }

    fn render_graphql(&self, out: &mut String) {
        header(
            out,
            "helpdesk_graphql_requests_total",
            "counter",
            "GraphQL operations, by operation name and result.",
        );
        for ((op, result), n) in lock(&self.graphql_requests).iter() {
            let _ = writeln!(
                out,
                "helpdesk_graphql_requests_total{{operation=\"{}\",result=\"{result}\"}} {n}",
                escape(op)
            );
        }
        header(
            out,
            "helpdesk_graphql_request_duration_seconds",
            "histogram",
            "GraphQL operation latency, by operation name.",
        );
        for (op, h) in lock(&self.graphql_latency).iter() {
            histogram(
                out,
                "helpdesk_graphql_request_duration_seconds",
                "operation",
                op,
                h,
            );
        }
    }

    fn render_workers(&self, out: &mut String) {
        let workers: BTreeMap<&str, WorkerStats> = lock(&self.workers)
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        header(
            out,
            "helpdesk_worker_ticks_total",
            "counter",
            "Worker ticks run.",
        );
        for (w, s) in &workers {
            let _ = writeln!(
                out,
                "helpdesk_worker_ticks_total{{worker=\"{w}\"}} {}",
                s.ticks
            );
        }
        header(
            out,
            "helpdesk_worker_errors_total",
            "counter",
            "Worker ticks that failed.",
        );
        for (w, s) in &workers {
            let _ = writeln!(
                out,
                "helpdesk_worker_errors_total{{worker=\"{w}\"}} {}",
                s.errors
            );
        }
        header(
            out,
            "helpdesk_worker_lag_seconds",
            "gauge",
            "Seconds since the worker last finished a tick.",
        );
        for (w, s) in &workers {
            let _ = writeln!(
                out,
                "helpdesk_worker_lag_seconds{{worker=\"{w}\"}} {:.3}",
                s.last_tick.elapsed().as_secs_f64()
            );
        }
    }
}

async fn render_database(out: &mut String, domain: &Domain) -> Result<(), sea_orm::DbErr> {
    let db = &domain.db;
    let queues: Vec<(Option<i64>, i64)> = conversation::Entity::find()
        .select_only()
        .column(conversation::Column::DepartmentId)
        .expr(Func::count(Expr::col(conversation::Column::Id)))
        .filter(conversation::Column::AssigneeId.is_null())
        .filter(
            conversation::Column::Status
                .is_in([ConversationStatus::Open, ConversationStatus::Pending]),
        )
        .group_by(conversation::Column::DepartmentId)
        .into_tuple()
        .all(db)
        .await?;
    header(
        out,
        "helpdesk_queue_length",
        "gauge",
        "Unassigned open conversations, by department (none = no department).",
    );
    for (department, n) in queues {
        let d = department.map_or_else(|| "none".to_string(), |d| d.to_string());
        let _ = writeln!(out, "helpdesk_queue_length{{department=\"{d}\"}} {n}");
    }
    let now = domain.clock.now();
    let locks = conversation::Entity::find()
        .filter(conversation::Column::LockHolderId.is_not_null())
        .filter(conversation::Column::LockExpiresAt.gt(now))
        .count(db)
        .await?;
    header(
        out,
        "helpdesk_open_locks",
        "gauge",
        "Conversations locked by an agent.",
    );
    let _ = writeln!(out, "helpdesk_open_locks {locks}");
    let outbox = outbox::Entity::find()
        .filter(outbox::Column::Status.is_in([OutboxStatus::Pending, OutboxStatus::Sending]))
        .count(db)
        .await?;
    header(
        out,
        "helpdesk_outbox_backlog",
        "gauge",
        "Outbound messages not yet sent.",
    );
    let _ = writeln!(out, "helpdesk_outbox_backlog {outbox}");
    let webhooks = domain
        .webhook_backlog()
        .await
        .map_err(|e| sea_orm::DbErr::Custom(e.to_string()))?;
    header(
        out,
        "helpdesk_webhook_delivery_backlog",
        "gauge",
        "Outbound webhook deliveries not yet delivered.",
    );
    let _ = writeln!(out, "helpdesk_webhook_delivery_backlog {webhooks}");
    Ok(())
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn histogram(out: &mut String, name: &str, label: &str, value: &str, h: &Histogram) {
    let v = escape(value);
    for (i, b) in BUCKETS.iter().enumerate() {
        let _ = writeln!(
            out,
            "{name}_bucket{{{label}=\"{v}\",le=\"{b}\"}} {}",
            h.counts[i]
        );
    }
    let _ = writeln!(
        out,
        "{name}_bucket{{{label}=\"{v}\",le=\"+Inf\"}} {}",
        h.count
    );
    let _ = writeln!(out, "{name}_sum{{{label}=\"{v}\"}} {}", h.sum);
    let _ = writeln!(out, "{name}_count{{{label}=\"{v}\"}} {}", h.count);
}

/// Label values: backslash, quote and newline escaped.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `GET /metrics`.
pub async fn metrics(
    metrics: web::Data<Arc<Metrics>>,
    domain: web::Data<Domain>,
    events: web::Data<EventBus>,
) -> HttpResponse {
    let body = metrics.render(&domain, &events).await;
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body)
}

/// Records every GraphQL operation by name (the `operationName`, or the
/// document's only named operation; `anonymous` otherwise).
pub struct GraphqlMetrics(pub Arc<Metrics>);

impl ExtensionFactory for GraphqlMetrics {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(GraphqlMetricsExtension {
            metrics: self.0.clone(),
            operation: Mutex::new(None),
        })
    }
}

struct GraphqlMetricsExtension {
    metrics: Arc<Metrics>,
    operation: Mutex<Option<String>>,
}

fn operation_name(doc: &ExecutableDocument) -> Option<String> {
    match &doc.operations {
        DocumentOperations::Multiple(ops) if ops.len() == 1 => {
            ops.keys().next().map(|n| n.to_string())
        }
        _ => None,
    }
}

#[async_trait::async_trait]
impl Extension for GraphqlMetricsExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let started = Instant::now();
        let response = next.run(ctx).await;
        let name = lock(&self.operation)
            .take()
            .unwrap_or_else(|| "anonymous".to_string());
        self.metrics
            .observe_graphql(&name, response.errors.is_empty(), started.elapsed());
        response
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        if let Some(name) = operation_name(&doc) {
            let name: String = name.chars().take(64).collect();
            *lock(&self.operation) = Some(name);
        }
        Ok(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative() {
        let m = Metrics::default();
        m.observe_http("GET", "/healthz", 200, Duration::from_millis(3));
        m.observe_http("GET", "/healthz", 200, Duration::from_millis(300));
        let mut out = String::new();
        m.render_http(&mut out);
        assert!(out.contains(
            "helpdesk_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 2"
        ));
        assert!(out.contains(
            "helpdesk_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.005\"} 1"
        ));
        assert!(out.contains(
            "helpdesk_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.5\"} 2"
        ));
        assert!(out.contains("helpdesk_http_request_duration_seconds_count{route=\"/healthz\"} 2"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
