//! Liveness and readiness.

use actix_web::{HttpResponse, web};
use domain::Domain;
use serde_json::json;

use crate::events::EventBus;

/// The process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// The database answers, and Redis when configured (PING, short timeout).
/// Without Redis the API still serves; it is reported not ready so that a
/// load balancer prefers instances whose live events reach other instances.
pub async fn readyz(domain: web::Data<Domain>, events: web::Data<EventBus>) -> HttpResponse {
    let (database, redis) = tokio::join!(domain.db.ping(), events.ping_redis());
    let database_ok = match &database {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database unreachable");
            false
        }
    };
    let (redis_ok, redis_state) = match &redis {
        None => (true, "not configured"),
        Some(Ok(())) => (true, "ok"),
        Some(Err(e)) => {
            tracing::warn!(error = %e, "readiness: redis unreachable");
            (false, "unreachable")
        }
    };
    let body = json!({
        "status": if database_ok && redis_ok { "ready" } else { "unavailable" },
        "database": if database_ok { "ok" } else { "unreachable" },
        "redis": redis_state,
    });
    if database_ok && redis_ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
