//! GraphQL over WebSocket on actix-ws, both sub-protocols (`graphql-transport-ws`
//! and the legacy `graphql-ws`). Unlike the stock actor it answers the
//! client's Close frame, so clients see a clean close instead of 1006.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason, Message};
use async_graphql::Data;
use async_graphql::http::{
    ALL_WEBSOCKET_PROTOCOLS, WebSocket, WebSocketProtocols as Protocols, WsMessage,
};
use domain::Domain;
use futures_util::StreamExt;

use super::HelpdeskSchema;
use super::context::{Caller, bearer};

/// graphql-transport-ws's code for a refused connection_init.
const FORBIDDEN: u16 = 4403;

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

    let (client_tx, client_rx) = tokio::sync::mpsc::channel::<String>(16);
    let rejected = Arc::new(AtomicBool::new(false));
    let init_rejected = rejected.clone();
    let on_init = move |init: serde_json::Value| {
        let domain = domain.clone();
        let token = token_from_init(&init).or(header_token.clone());
        let rejected = init_rejected.clone();
        async move {
            match Caller::from_bearer(&domain, token.as_deref()).await {
                caller @ Caller::Authenticated(_) => {
                    let mut data = Data::default();
                    data.insert(caller);
                    Ok(data)
                }
                _ => {
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

    // Writes what the GraphQL protocol produces.
    actix_web::rt::spawn(async move {
        while let Some(out) = graphql.next().await {
            match out {
                WsMessage::Text(text) => {
                    if session.text(text).await.is_err() {
                        return;
                    }
                }
                WsMessage::Close(code, reason) => {
                    let code =
                        if rejected.load(Ordering::SeqCst) && protocol == Protocols::GraphQLWS {
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
            }
        }
        let _ = session.close(Some(CloseCode::Normal.into())).await;
    });

    Ok(response)
}

/// An mpsc receiver as a stream, without another dependency.
fn tokio_stream_from(
    rx: tokio::sync::mpsc::Receiver<String>,
) -> impl futures_util::Stream<Item = String> {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) })
}
