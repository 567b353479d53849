//! GraphQL over WebSocket, both sub-protocols (`graphql-transport-ws` and the
//! legacy `graphql-ws`), served as the HTTP/1 server's upgrade handler.
//!
//! The upgrade handler receives the connection itself: once the handshake is
//! answered, the HTTP parser's buffers are dropped and the socket is driven
//! by a WebSocket codec with small buffers, in the connection's own task and
//! without channels between a reader and a writer. An idle socket then costs
//! little more than its GraphQL subscription state. The client's Close frame
//! is answered (clients see a clean close, not 1006), and a server-initiated
//! close waits briefly for the client's answer before the TCP close.

use std::cell::Cell;
use std::convert::Infallible;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_codec::Framed;
use actix_http::body::BodySize;
use actix_http::header::{self, HeaderMap, HeaderValue};
use actix_http::{ConnectionType, HttpMessage, Request, Response, StatusCode, h1};
use async_graphql::Data;
use async_graphql::http::WsMessage;
use async_graphql::http::{WebSocket, WebSocketProtocols as Protocols};
use chrono::{DateTime, Utc};
use domain::Domain;
use futures_util::{SinkExt, Stream, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Bytes, Message};

use super::HelpdeskSchema;
use super::context::{Caller, bearer};
use super::loaders::Loaders;
use crate::startup::{Lifecycle, SocketGuard};

/// graphql-transport-ws's code for a refused connection_init.
const FORBIDDEN: u16 = 4403;
/// The access token ran out on a live socket (both sub-protocols): the
/// client refreshes its token and reconnects.
const TOKEN_EXPIRED: u16 = 4401;
/// Normal closure.
const NORMAL: u16 = 1000;
/// The server is shutting down.
const GOING_AWAY: u16 = 1001;
/// How often (real time) a live socket compares its token's expiry with the
/// domain clock, between events.
const EXPIRY_CHECK: Duration = Duration::from_secs(1);
/// How often an open authenticated socket counts as presence activity.
const PRESENCE_TOUCH: Duration = Duration::from_secs(30);
/// The path subscriptions are served on.
const PATH: &str = "/graphql";
/// Largest message (and frame) a client may send: the HTTP server's
/// WebSocket default, far above any GraphQL-over-WebSocket message.
const MAX_MESSAGE: usize = 64 * 1024;
/// The read buffer: clients send a handful of small messages per socket
/// (connection_init, subscribe, complete, ping), so it stays small; larger
/// frames grow it as needed.
const READ_BUFFER: usize = 512;
/// At most this much of a message waits in memory when the client's TCP
/// window is full; the socket's task then stops producing (its subscriptions
/// fall behind and are told they lagged, see `SUBSCRIBER_BUFFER`).
const MAX_WRITE_BUFFER: usize = 4 * MAX_MESSAGE;
/// How long a server-initiated close waits for the client's Close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// A close frame's payload is at most 125 bytes, two of them the code.
const MAX_CLOSE_REASON: usize = 123;

type Socket = WebSocketStream<TcpStream>;

/// What the HTTP/1 server hands its upgrade handler: the request, and the
/// connection with the HTTP codec and its buffers.
pub type Upgrade = (Request, Framed<TcpStream, h1::Codec>);

/// What every socket of this process shares: the schema, the domain and the
/// process's lifecycle (metrics, shutdown).
#[derive(Clone)]
pub struct Sockets(Arc<Shared>);

struct Shared {
    schema: HelpdeskSchema,
    domain: Domain,
    lifecycle: Lifecycle,
    /// Every socket's loaders (see `Loaders::immediate`).
    loaders: Arc<Loaders>,
}

impl Sockets {
    pub fn new(schema: HelpdeskSchema, domain: Domain, lifecycle: Lifecycle) -> Self {
        Self(Arc::new(Shared {
            schema,
            loaders: Loaders::immediate(&domain.read),
            domain,
            lifecycle,
        }))
    }
}

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

/// What connection_init decided, shared between it and the socket's loop.
#[derive(Default)]
struct InitOutcome {
    session: OnceLock<Session>,
    rejected: AtomicBool,
}

/// Presence: an open, authenticated socket counts as activity (on
/// connection_init, then every [`PRESENCE_TOUCH`]). Best effort, off the
/// socket's task.
fn record_socket_activity(domain: &Domain, user_id: i64) {
    let domain = domain.clone();
    actix_web::rt::spawn(async move {
        if let Err(e) = domain.touch_presence(user_id).await {
            tracing::debug!(error = %e, user_id, "socket activity not recorded");
        }
    });
}

fn token_from_init(payload: &serde_json::Value) -> Option<String> {
    let obj = payload.as_object()?;
    ["Authorization", "authorization", "authToken", "token"]
        .iter()
        .find_map(|k| obj.get(*k).and_then(|v| v.as_str()))
        .map(|v| bearer(v).unwrap_or(v).to_string())
}

/// The first sub-protocol the client offers that we speak (either of
/// `ALL_WEBSOCKET_PROTOCOLS`, any case), as it spelled it.
fn select_protocol(headers: &HeaderMap) -> Option<(&str, Protocols)> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|h| h.to_str().ok())
        .flat_map(|list| list.split(','))
        .map(str::trim)
        .find_map(|p| Protocols::from_str(p).ok().map(|proto| (p, proto)))
}

/// The HTTP/1 server's upgrade handler: every request asking for a WebSocket
/// comes here instead of to the application. `GET /graphql` becomes a
/// GraphQL socket; anything else is answered with an error and closed.
pub async fn upgrade(
    sockets: Sockets,
    req: Request,
    mut framed: Framed<TcpStream, h1::Codec>,
) -> Result<(), Infallible> {
    let started = Instant::now();
    let shared = &sockets.0;
    let request_id = crate::startup::request_id(req.headers());
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        path = %req.path(),
    );
    let route = if req.path() == PATH {
        PATH
    } else {
        "unmatched"
    };
    let handshake = if route == PATH {
        actix_http::ws::handshake(req.head()).map_err(Response::from)
    } else {
        Err(Response::new(StatusCode::NOT_FOUND))
    };
    let mut response = match handshake {
        Ok(mut builder) => {
            if let Some((name, _)) = select_protocol(req.headers())
                && let Ok(value) = HeaderValue::from_str(name)
            {
                builder.insert_header((header::SEC_WEBSOCKET_PROTOCOL, value));
            }
            builder.finish().drop_body()
        }
        Err(mut refused) => {
            refused
                .head_mut()
                .set_connection_type(ConnectionType::Close);
            refused.drop_body()
        }
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response
            .headers_mut()
            .insert(header::HeaderName::from_static("x-request-id"), v);
    }
    let status = response.status();
    let size = if status == StatusCode::SWITCHING_PROTOCOLS {
        BodySize::None
    } else {
        BodySize::Sized(0)
    };
    let sent = framed.send((response, size).into()).await;
    shared.lifecycle.metrics.observe_http(
        req.method().as_str(),
        route,
        status.as_u16(),
        started.elapsed(),
    );
    if let Err(e) = sent {
        span.in_scope(|| tracing::debug!(error = %e, "handshake not sent"));
        return Ok(());
    }
    if status != StatusCode::SWITCHING_PROTOCOLS {
        return Ok(());
    }

    let protocol = select_protocol(req.headers())
        .map(|(_, p)| p)
        .unwrap_or(Protocols::SubscriptionsTransportWS);
    let header_token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(bearer)
        .map(str::to_string);
    drop(req);
    // The HTTP parser and its buffers go; what the client may already have
    // sent after its handshake is handed to the WebSocket codec.
    // (In a block of its own: a partly moved struct would keep its other
    // fields, 16 KB of buffers, until the socket ends.)
    let (io, early) = {
        let parts = framed.into_parts();
        (parts.io, parts.read_buf.to_vec())
    };
    let _ = io.set_nodelay(true);
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let ws = WebSocketStream::from_partially_read(io, early, Role::Server, Some(config)).await;
    serve(shared, ws, protocol, header_token).await;
    Ok(())
}

/// The client's messages, handed to the GraphQL protocol one at a time: the
/// socket's loop reads the next frame only once the protocol took the last.
#[derive(Default)]
struct Inbox {
    message: Cell<Option<Bytes>>,
    ended: Cell<bool>,
}

impl Inbox {
    fn is_free(&self) -> bool {
        let message = self.message.take();
        let free = message.is_none();
        self.message.set(message);
        free && !self.ended.get()
    }
}

/// The protocol's end of the [`Inbox`]. It is polled by the same task that
/// fills the inbox, so it needs no waker of its own; taking a message wakes
/// the task so that it reads the next frame.
struct InboxStream<'a>(&'a Inbox);

impl Stream for InboxStream<'_> {
    type Item = Bytes;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        match self.0.message.take() {
            Some(message) => {
                cx.waker().wake_by_ref();
                Poll::Ready(Some(message))
            }
            None if self.0.ended.get() => Poll::Ready(None),
            None => Poll::Pending,
        }
    }
}

/// Drives one socket until it closes: client frames into the GraphQL
/// protocol, its messages out; closes the socket when the token expires or
/// the server shuts down, and counts it as presence while it is open.
async fn serve(shared: &Shared, mut ws: Socket, protocol: Protocols, header_token: Option<String>) {
    let domain = &shared.domain;
    // Open sockets are counted for /metrics.
    let _connection = SocketGuard::open(shared.lifecycle.metrics.clone());
    let mut going_away = shared.lifecycle.going_away.clone();

    let outcome = Arc::new(InitOutcome::default());
    let on_init = {
        let domain = domain.clone();
        let outcome = outcome.clone();
        let loaders = shared.loaders.clone();
        move |init: serde_json::Value| {
            let token = token_from_init(&init).or(header_token);
            async move {
                let authenticated = match token.as_deref() {
                    Some(token) => domain.authenticate_session(token).await.ok(),
                    None => None,
                };
                match authenticated {
                    Some((actor, expires_at)) => {
                        let _ = outcome.session.set(Session {
                            user_id: actor.user_id(),
                            expires_at,
                        });
                        let mut data = Data::default();
                        data.insert(Caller::Authenticated(actor));
                        data.insert(loaders);
                        Ok(data)
                    }
                    None => {
                        outcome.rejected.store(true, Ordering::SeqCst);
                        Err(async_graphql::Error::new(
                            "unauthorized: a valid access token is required",
                        ))
                    }
                }
            }
        }
    };
    let inbox = Inbox::default();
    let mut graphql = std::pin::pin!(
        WebSocket::new(shared.schema.clone(), InboxStream(&inbox), protocol)
            .on_connection_init(on_init)
    );

    let tick = tokio::time::sleep(EXPIRY_CHECK);
    let mut tick = std::pin::pin!(tick);
    // Set once connection_init has been accepted: the next presence touch.
    let mut next_presence: Option<tokio::time::Instant> = None;
    let session = || outcome.session.get().copied();
    let expired = || session().is_some_and(|s| s.expired(domain));

    loop {
        tokio::select! {
            frame = ws.next(), if inbox.is_free() => match frame {
                Some(Ok(Message::Text(text))) => inbox.message.set(Some(Bytes::from(text))),
                Some(Ok(Message::Binary(bytes))) => inbox.message.set(Some(bytes)),
                // Answered by the codec itself.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(_))) => {
                    // Sends the codec's answer to the client's Close frame
                    // (queued when it was read).
                    let _ = ws.flush().await;
                    return;
                }
                // The client went away, or broke the protocol: the GraphQL
                // protocol ends, and the socket with it.
                None | Some(Err(_)) => inbox.ended.set(true),
            },
            out = graphql.next() => match out {
                Some(WsMessage::Text(text)) => {
                    if expired() {
                        close(&mut ws, TOKEN_EXPIRED, "token expired").await;
                        return;
                    }
                    if ws.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                    if next_presence.is_none() && let Some(s) = session() {
                        // connection_init counts as activity at once.
                        if let Some(user_id) = s.user_id {
                            record_socket_activity(domain, user_id);
                        }
                        next_presence = Some(tokio::time::Instant::now() + PRESENCE_TOUCH);
                    }
                }
                Some(WsMessage::Close(code, reason)) => {
                    let code = if outcome.rejected.load(Ordering::SeqCst)
                        && protocol == Protocols::GraphQLWS
                    {
                        FORBIDDEN
                    } else {
                        code
                    };
                    close(&mut ws, code, &reason).await;
                    return;
                }
                None => break,
            },
            () = &mut tick => {
                let now = tokio::time::Instant::now();
                tick.as_mut().reset(now + EXPIRY_CHECK);
                if expired() {
                    close(&mut ws, TOKEN_EXPIRED, "token expired").await;
                    return;
                }
                if let Some(at) = next_presence.filter(|at| now >= *at) {
                    if let Some(user_id) = session().and_then(|s| s.user_id) {
                        record_socket_activity(domain, user_id);
                    }
                    let next = at + PRESENCE_TOUCH;
                    next_presence = Some(if next > now { next } else { now + PRESENCE_TOUCH });
                }
            }
            _ = going_away.wait_for(|stopping| *stopping) => {
                close(&mut ws, GOING_AWAY, "server shutting down").await;
                return;
            }
        }
    }
    // The legacy protocol refuses connection_init with a `connection_error`
    // message and has no close code of its own: use the same 4403.
    if outcome.rejected.load(Ordering::SeqCst) {
        close(&mut ws, FORBIDDEN, "unauthorized").await;
    } else {
        close(&mut ws, NORMAL, "").await;
    }
}

/// Sends a Close frame, then waits a moment for the client's, so that the
/// TCP close follows the WebSocket one.
async fn close(ws: &mut Socket, code: u16, reason: &str) {
    let mut end = reason.len().min(MAX_CLOSE_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason[..end].to_string().into(),
    };
    if ws.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_http::header::HeaderName;

    fn headers(protocols: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for p in protocols {
            map.append(
                HeaderName::from_static("sec-websocket-protocol"),
                HeaderValue::from_str(p).unwrap(),
            );
        }
        map
    }

    #[test]
    fn the_first_offered_protocol_we_speak_is_chosen() {
        let chosen =
            |h: &[&str]| select_protocol(&headers(h)).map(|(name, p)| (name.to_string(), p));
        assert_eq!(
            chosen(&["chat, graphql-transport-ws, graphql-ws"]),
            Some(("graphql-transport-ws".into(), Protocols::GraphQLWS))
        );
        assert_eq!(
            chosen(&["chat", "graphql-ws"]),
            Some(("graphql-ws".into(), Protocols::SubscriptionsTransportWS))
        );
        assert_eq!(chosen(&["chat"]), None);
        assert_eq!(chosen(&[]), None);
    }

    #[test]
    fn an_init_payload_may_carry_the_token_under_several_names() {
        let token = |v| token_from_init(&v);
        assert_eq!(
            token(serde_json::json!({"Authorization": "Bearer abc"})),
            Some("abc".into())
        );
        assert_eq!(
            token(serde_json::json!({"authToken": "abc"})),
            Some("abc".into())
        );
        assert_eq!(token(serde_json::json!({})), None);
        assert_eq!(token(serde_json::json!(null)), None);
    }
}
