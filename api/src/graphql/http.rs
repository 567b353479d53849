//! GraphQL over HTTP as the GraphQL-over-HTTP spec says: content negotiation
//! between `application/graphql-response+json` and `application/json`, 400
//! for requests that cannot run, GET for queries only (405 for mutations),
//! GraphiQL on a plain GET. WebSocket upgrades of the same path never reach
//! the application: the server hands them to [`super::ws`].

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use async_graphql::http::GraphiQLSource;
use async_graphql::parser::types::{DocumentOperations, OperationType};
use async_graphql::{BatchRequest, BatchResponse, Request, Variables};
use domain::Domain;
use serde::Deserialize;
use serde_json::json;

use super::HelpdeskSchema;
use super::context::{Caller, bearer};

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

#[derive(Clone, Copy, PartialEq, Eq)]
enum MediaType {
    GraphqlResponse,
    Json,
}

impl MediaType {
    fn content_type(self) -> &'static str {
        match self {
            MediaType::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
            MediaType::Json => "application/json; charset=utf-8",
        }
    }
}

/// Picks the response type from `Accept`, by q-value then order; `None` means 406.
fn negotiate(req: &HttpRequest) -> Option<MediaType> {
    let Some(accept) = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|h| h.to_str().ok())
    else {
        return Some(MediaType::Json);
    };
    let mut best: Option<(f32, MediaType)> = None;
    for part in accept.split(',') {
        let mut params = part.split(';');
        let media = params
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let q = params
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        let kind = match media.as_str() {
            GRAPHQL_RESPONSE => MediaType::GraphqlResponse,
            JSON | "application/*" | "*/*" => MediaType::Json,
            _ => continue,
        };
        if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, kind));
        }
    }
    best.map(|(_, kind)| kind)
}

fn error_response(status: StatusCode, media: MediaType, message: &str, code: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(media.content_type())
        .json(json!({ "errors": [{ "message": message, "extensions": { "code": code } }] }))
}

/// A response whose errors all happened before execution (parse, validation,
/// variables): no data, no error paths.
fn is_request_error(resp: &async_graphql::Response) -> bool {
    resp.data == async_graphql::Value::Null
        && !resp.errors.is_empty()
        && resp.errors.iter().all(|e| e.path.is_empty())
}

fn respond(media: MediaType, batch: BatchResponse) -> HttpResponse {
    let request_error = match &batch {
        BatchResponse::Single(r) => is_request_error(r),
        BatchResponse::Batch(list) => list.iter().all(is_request_error),
    };
    let status = if request_error {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let mut body = serde_json::to_value(&batch).unwrap_or_else(|_| json!({}));
    if request_error && media == MediaType::GraphqlResponse {
        // The spec: a request error has no `data` entry at all.
        match &mut body {
            serde_json::Value::Object(map) => {
                map.remove("data");
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|i| {
                if let Some(map) = i.as_object_mut() {
                    map.remove("data");
                }
            }),
            _ => {}
        }
    }
    HttpResponse::build(status)
        .content_type(media.content_type())
        .body(body.to_string())
}

async fn caller(req: &HttpRequest, domain: &Domain) -> Caller {
    match req.headers().get(header::AUTHORIZATION) {
        None => Caller::Anonymous,
        Some(h) => match h.to_str().ok().and_then(bearer) {
            Some(token) => Caller::from_bearer(domain, Some(token)).await,
            None => Caller::Rejected,
        },
    }
}

pub async fn post(
    req: HttpRequest,
    body: web::Bytes,
    schema: web::Data<HelpdeskSchema>,
    domain: web::Data<Domain>,
) -> HttpResponse {
    let Some(media) = negotiate(&req) else {
        return HttpResponse::NotAcceptable().finish();
    };
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if !content_type.to_ascii_lowercase().starts_with(JSON) {
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            media,
            "send the request as application/json",
            "BAD_REQUEST",
        );
    }
    let batch: BatchRequest = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                media,
                &format!("the body is not a GraphQL request: {e}"),
                "BAD_REQUEST",
            );
        }
    };
    let caller = caller(&req, &domain).await;
    let batch = batch.data(caller);
    respond(media, schema.execute_batch(batch).await)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetParams {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<String>,
}

/// Whether the operation GET would run is a mutation.
fn is_mutation(query: &str, operation_name: Option<&str>) -> bool {
    let Ok(doc) = async_graphql::parser::parse_query(query) else {
        return false;
    };
    let ty = match (&doc.operations, operation_name) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| op.node.ty),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| op.node.ty)
        }
        _ => None,
    };
    ty == Some(OperationType::Mutation)
}

pub async fn get(
    req: HttpRequest,
    params: web::Query<GetParams>,
    schema: web::Data<HelpdeskSchema>,
    domain: web::Data<Domain>,
) -> actix_web::Result<HttpResponse> {
    let params = params.into_inner();
    let Some(query) = params.query else {
        return Ok(HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(
                GraphiQLSource::build()
                    .endpoint("/graphql")
                    .subscription_endpoint("/graphql")
                    .finish(),
            ));
    };
    let Some(media) = negotiate(&req) else {
        return Ok(HttpResponse::NotAcceptable().finish());
    };
    if is_mutation(&query, params.operation_name.as_deref()) {
        let mut resp = error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            media,
            "mutations are only accepted over POST",
            "BAD_REQUEST",
        );
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return Ok(resp);
    }
    let mut request = Request::new(query);
    if let Some(name) = params.operation_name {
        request = request.operation_name(name);
    }
    if let Some(vars) = params.variables.filter(|v| !v.is_empty()) {
        match serde_json::from_str::<serde_json::Value>(&vars) {
            Ok(v) => request = request.variables(Variables::from_json(v)),
            Err(_) => {
                return Ok(error_response(
                    StatusCode::BAD_REQUEST,
                    media,
                    "variables is not a JSON object",
                    "BAD_REQUEST",
                ));
            }
        }
    }
    let caller = caller(&req, &domain).await;
    let response = schema.execute(request.data(caller)).await;
    Ok(respond(media, BatchResponse::Single(response)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn accept_prefers_the_highest_quality() {
        let req = TestRequest::default()
            .insert_header((
                header::ACCEPT,
                "application/json;q=0.5, application/graphql-response+json",
            ))
            .to_http_request();
        assert!(negotiate(&req) == Some(MediaType::GraphqlResponse));
        let req = TestRequest::default()
            .insert_header((header::ACCEPT, "text/html"))
            .to_http_request();
        assert!(negotiate(&req).is_none());
    }

    #[test]
    fn mutations_are_detected_for_get() {
        assert!(is_mutation(
            "mutation { login(email:\"a\", password:\"b\") { accessToken } }",
            None
        ));
        assert!(!is_mutation("{ me { id } }", None));
        assert!(is_mutation(
            "query A { me { id } } mutation B { x }",
            Some("B")
        ));
    }
}
