//! Liveness and readiness.

use actix_web::{HttpResponse, web};
use domain::Domain;
use serde_json::json;

/// The process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// The database answers (and Redis, when configured).
pub async fn readyz(domain: web::Data<Domain>) -> HttpResponse {
    match domain.db.ping().await {
        Ok(()) => HttpResponse::Ok().json(json!({ "status": "ready", "database": "ok" })),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database unreachable");
            HttpResponse::ServiceUnavailable()
                .json(json!({ "status": "unavailable", "database": "unreachable" }))
        }
    }
}
