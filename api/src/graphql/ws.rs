//! GraphQL over WebSocket on actix-ws, both sub-protocols (`graphql-transport-ws`
//! and the legacy `graphql-ws`). Unlike the stock actor it answers the
//! client's Close frame, so clients see a clean close instead of 1006.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason, Message};
use async_graphql::Data;
use async_graphql::http::{
    ALL_WEBSOCKET_PROTOCOLS, WebSocket, WebSocketProtocols as Protocols, WsMessage,
};
use chrono::{DateTime, Utc};
use domain::Domain;
use futures_util::StreamExt;
use tokio::sync::watch;

use super::HelpdeskSchema;
use super::context::{Caller, bearer};

/// graphql-transport-ws's code for a refused connection_init.
const FORBIDDEN: u16 = 4403;
/// The access token ran out on a live socket (both sub-protocols): the
/// client refreshes its token and reconnects.
const TOKEN_EXPIRED: u16 = 4401;
/// How often (real time) a live socket compares its token's expiry with the
/// domain clock, between events.
const EXPIRY_CHECK: Duration = Duration::from_secs(1);
/// How often an open authenticated socket counts as presence activity.
const PRESENCE_TOUCH: Duration = Duration::from_secs(30);

/// Who authenticated the socket, and until when (domain clock).
#[derive(Debug, Clone, Copy)]
struct Session {
    user_id: Option<i64>,
    expires_at: Option<DateTime<Utc>>,
}

impl Session {
    fn expired(&self, domain: &Domain) -> bool {
        self.expires_at.is_some_and(|at| domain.clock.now() >= at)
    }
}

/// Presence: an open, authenticated socket counts as activity (on
/// connection_init, then every [`PRESENCE_TOUCH`]). Best effort.
async fn record_socket_activity(domain: &Domain, user_id: i64) {
    if let Err(e) = domain.touch_presence(user_id).await {
        tracing::debug!(error = %e, user_id, "socket activity not recorded");
    }
}

fn token_from_init(payload: &serde_json::Value) -> Option<String> {
    let obj = payload.as_object()?;
    ["Authorization", "authorization", "authToken", "token"]
        .iter()
        .find_map(|k| obj.get(*k).and_then(|v| v.as_str()))
        .map(|v| bearer(v).unwrap_or(v).to_string())
}

pub async fn handle(
    req: HttpRequest,
    payload: web::Payload,
    schema: HelpdeskSchema,
    domain: Domain,
) -> actix_web::Result<HttpResponse> {
    let protocol = req
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|h| h.to_str().ok())
        .and_then(|list| {
            list.split(',')
                .find_map(|p| Protocols::from_str(p.trim()).ok())
        })
        .unwrap_or(Protocols::SubscriptionsTransportWS);
    let header_token = req
        .headers()
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(bearer)
        .map(str::to_string);
    let (response, mut session, stream) =
        actix_ws::handle_with_protocols(&req, payload, &ALL_WEBSOCKET_PROTOCOLS)?;

    // Open sockets are counted for /metrics and closed with 1001 (going
    // away) when the server shuts down.
    let lifecycle = req
        .app_data::<web::Data<crate::startup::Lifecycle>>()
        .map(|l| l.get_ref().clone());
    let mut going_away = lifecycle.as_ref().map(|l| l.going_away.clone());
    let connection = lifecycle.map(|l| crate::startup::SocketGuard::open(l.metrics));

    let (client_tx, client_rx) = tokio::sync::mpsc::channel::<String>(16);
    let rejected = Arc::new(AtomicBool::new(false));
    let init_rejected = rejected.clone();
    let (session_tx, mut session_rx) = watch::channel(None::<Session>);
    let init_domain = domain.clone();
    let on_init = move |init: serde_json::Value| {
        let domain = init_domain;
        let token = token_from_init(&init).or(header_token);
        let rejected = init_rejected;
        async move {
            let authenticated = match token.as_deref() {
                Some(token) => domain.authenticate_session(token).await.ok(),
                None => None,
            };
            match authenticated {
                Some((actor, expires_at)) => {
                    let _ = session_tx.send(Some(Session {
                        user_id: actor.user_id(),
                        expires_at,
                    }));
                    let mut data = Data::default();
                    data.insert(Caller::Authenticated(actor));
                    Ok(data)
                }
                None => {
                    rejected.store(true, Ordering::SeqCst);
                    Err(async_graphql::Error::new(
                        "unauthorized: a valid access token is required",
                    ))
                }
            }
        }
    };
    let client_stream = tokio_stream_from(client_rx);
    let mut graphql =
        Box::pin(WebSocket::new(schema, client_stream, protocol).on_connection_init(on_init));

    // Reads client frames, answers pings and Close frames.
    let mut reader_session = session.clone();
    actix_web::rt::spawn(async move {
        let mut stream = stream;
        while let Some(Ok(msg)) = stream.next().await {
            let delivered = match msg {
                Message::Text(text) => client_tx.send(text.to_string()).await.is_ok(),
                Message::Binary(bytes) => {
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    client_tx.send(text).await.is_ok()
                }
                Message::Ping(bytes) => reader_session.pong(&bytes).await.is_ok(),
                Message::Close(reason) => {
                    let _ = reader_session.close(reason).await;
                    return;
                }
                _ => true,
            };
            if !delivered {
                break;
            }
        }
    });

    // Writes what the GraphQL protocol produces; ends the socket when its
    // token expires (checked before each message and every EXPIRY_CHECK).
    actix_web::rt::spawn(async move {
        let _connection = connection;
        let expired_close = || CloseReason {
            code: CloseCode::from(TOKEN_EXPIRED),
            description: Some("token expired".into()),
        };
        let mut expiry_check = tokio::time::interval(EXPIRY_CHECK);
        let mut presence = tokio::time::interval(PRESENCE_TOUCH);
        presence.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Until connection_init has been answered (it runs once at most).
        let mut awaiting_init = true;
        loop {
            let current = *session_rx.borrow_and_update();
            tokio::select! {
                out = graphql.next() => match out {
                    Some(WsMessage::Text(text)) => {
                        if current.is_some_and(|s| s.expired(&domain)) {
                            let _ = session.close(Some(expired_close())).await;
                            return;
                        }
                        if session.text(text).await.is_err() {
                            return;
                        }
                    }
                    Some(WsMessage::Close(code, reason)) => {
                        let code = if rejected.load(Ordering::SeqCst)
                            && protocol == Protocols::GraphQLWS
                        {
                            FORBIDDEN
                        } else {
                            code
                        };
                        let _ = session
                            .close(Some(CloseReason {
                                code: CloseCode::from(code),
                                description: Some(reason),
                            }))
                            .await;
                        return;
                    }
                    None => break,
                },
                _ = expiry_check.tick() => {
                    if current.is_some_and(|s| s.expired(&domain)) {
                        let _ = session.close(Some(expired_close())).await;
                        return;
                    }
                }
                _ = presence.tick(), if current.is_some() => {
                    if let Some(user_id) = current.and_then(|s| s.user_id) {
                        let domain = domain.clone();
                        actix_web::rt::spawn(async move {
                            record_socket_activity(&domain, user_id).await;
                        });
                    }
                }
                _ = async {
                    match going_away.as_mut() {
                        Some(rx) => { let _ = rx.wait_for(|stopping| *stopping).await; }
                        None => std::future::pending::<()>().await,
                    }
                } => {
                    let _ = session
                        .close(Some(CloseReason {
                            code: CloseCode::Away,
                            description: Some("server shutting down".into()),
                        }))
                        .await;
                    return;
                }
                changed = session_rx.changed(), if awaiting_init => {
                    // Either on_init authenticated the socket, or it is gone.
                    awaiting_init = false;
                    if changed.is_ok() {
                        // connection_init counts as activity at once.
                        presence.reset_immediately();
                    }
                }
            }
        }
        // The legacy protocol refuses connection_init with a `connection_error`
        // message and has no close code of its own: use the same 4403.
        let close = if rejected.load(Ordering::SeqCst) {
            CloseReason {
                code: CloseCode::from(FORBIDDEN),
                description: Some("unauthorized".into()),
            }
        } else {
            CloseCode::Normal.into()
        };
        let _ = session.close(Some(close)).await;
    });

    Ok(response)
}

/// An mpsc receiver as a stream, without another dependency.
fn tokio_stream_from(
    rx: tokio::sync::mpsc::Receiver<String>,
) -> impl futures_util::Stream<Item = String> {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) })
}
