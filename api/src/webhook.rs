//! The WhatsApp Cloud API webhook: the GET verification handshake and the
//! signed POST deliveries. A delivery is answered 200 only once its data is
//! committed; bad input gets a 4xx naming what is wrong, never a 500.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use domain::Domain;
use domain::ingest::{self, InboundChange, InboundDelivery, IngestBatcher};
use entity::{DeliveryStatus, MessageType, channel};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::whatsapp::payload::{self, MessageKind, StatusKind};
use crate::whatsapp::signature;

/// How long the set of app secrets is reused before it is read again.
const SECRETS_TTL: Duration = Duration::from_secs(2);

/// What the webhook needs besides the domain.
pub struct Webhook {
    pub verify_token: Option<String>,
    /// The app secret from configuration; channels may add their own.
    pub app_secret: Option<String>,
    pub batcher: IngestBatcher,
    secrets: Mutex<Option<(Instant, Arc<Vec<String>>)>>,
}

impl Webhook {
    pub fn new(
        verify_token: Option<String>,
        app_secret: Option<String>,
        batcher: IngestBatcher,
    ) -> Self {
        Self {
            verify_token,
            app_secret,
            batcher,
            secrets: Mutex::new(None),
        }
    }

    /// Every app secret a delivery may be signed with: the configured one and
    /// the channels'. Cached briefly so each delivery does not read them.
    async fn secrets(&self, domain: &Domain) -> Result<Arc<Vec<String>>, sea_orm::DbErr> {
        if let Some((at, cached)) = self
            .secrets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            && at.elapsed() < SECRETS_TTL
        {
            return Ok(cached.clone());
        }
        let mut secrets: Vec<String> = channel::Entity::find()
            .select_only()
            .column(channel::Column::AppSecret)
            .filter(channel::Column::AppSecret.is_not_null())
            .into_tuple::<Option<String>>()
            .all(&domain.db)
            .await?
            .into_iter()
            .flatten()
            .collect();
        secrets.extend(self.app_secret.clone());
        secrets.sort();
        secrets.dedup();
        let secrets = Arc::new(secrets);
        *self.secrets.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), secrets.clone()));
        Ok(secrets)
    }
}

fn problem(status: StatusCode, code: &str, message: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status)
        .json(json!({ "error": { "code": code, "message": message.into() } }))
}

#[derive(Deserialize)]
pub struct Handshake {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

/// `GET /webhooks/whatsapp`: echo the challenge when the token matches.
pub async fn verify(query: web::Query<Handshake>, webhook: web::Data<Webhook>) -> HttpResponse {
    let Handshake {
        mode,
        verify_token,
        challenge,
    } = query.into_inner();
    let (Some(mode), Some(token), Some(challenge)) = (mode, verify_token, challenge) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "BAD_USER_INPUT",
            "hub.mode, hub.verify_token and hub.challenge are required",
        );
    };
    let expected = webhook.verify_token.as_deref().unwrap_or_default();
    let token_ok = !expected.is_empty()
        && expected.len() == token.len()
        && expected
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if mode == "subscribe" && token_ok {
        HttpResponse::Ok()
            .content_type("text/plain")
            .body(challenge)
    } else {
        tracing::warn!("webhook verification refused");
        problem(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "verification token does not match",
        )
    }
}

/// `POST /webhooks/whatsapp`.
pub async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    webhook: web::Data<Webhook>,
    domain: web::Data<Domain>,
) -> HttpResponse {
    let secrets = match webhook.secrets(&domain).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "webhook: cannot read app secrets");
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "INTERNAL",
                "temporarily unavailable",
            );
        }
    };
    if !secrets.is_empty() {
        let header = req
            .headers()
            .get("x-hub-signature-256")
            .and_then(|h| h.to_str().ok());
        let valid = secrets
            .iter()
            .any(|s| signature::verify(s.as_bytes(), &body, header).is_ok());
        if !valid {
            let why = match header {
                None => "X-Hub-Signature-256 is missing",
                Some(_) => "X-Hub-Signature-256 does not match the body",
            };
            tracing::warn!(reason = why, "webhook refused");
            return problem(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", why);
        }
    }
    let parsed = match payload::parse(&body) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "webhook: malformed delivery");
            return problem(StatusCode::BAD_REQUEST, "BAD_USER_INPUT", e.to_string());
        }
    };
    match webhook.batcher.submit(to_domain(parsed)).await {
        Ok(report) => HttpResponse::Ok().json(json!({
            "status": "ok",
            "messages": report.messages_stored,
            "duplicates": report.duplicates,
            "statuses": report.statuses_applied,
        })),
        Err(e) => {
            // Not the sender's fault: a non-200 makes Meta retry later.
            tracing::error!(error = %e, "webhook: ingest failed");
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "INTERNAL",
                "temporarily unavailable, retry",
            )
        }
    }
}

fn message_type(kind: &MessageKind) -> MessageType {
    match kind {
        MessageKind::Text => MessageType::Text,
        MessageKind::Image => MessageType::Image,
        MessageKind::Audio => MessageType::Audio,
        MessageKind::Video => MessageType::Video,
        MessageKind::Document => MessageType::Document,
        MessageKind::Sticker => MessageType::Sticker,
        MessageKind::Location { .. } => MessageType::Location,
        MessageKind::Contacts => MessageType::Contacts,
        MessageKind::Interactive(_) => MessageType::Interactive,
        MessageKind::Button { .. } => MessageType::Button,
        MessageKind::Reaction { .. } => MessageType::Reaction,
        MessageKind::Order => MessageType::Order,
        MessageKind::System { .. } => MessageType::System,
        MessageKind::Unsupported | MessageKind::Unknown(_) => MessageType::Unsupported,
    }
}

fn status(kind: &StatusKind) -> Option<DeliveryStatus> {
    match kind {
        StatusKind::Sent => Some(DeliveryStatus::Sent),
        StatusKind::Delivered => Some(DeliveryStatus::Delivered),
        // A voice message played has been heard: as good as read.
        StatusKind::Read | StatusKind::Played => Some(DeliveryStatus::Read),
        StatusKind::Failed => Some(DeliveryStatus::Failed),
        StatusKind::Other(_) => None,
    }
}

/// The wire format becomes the domain's input.
fn to_domain(delivery: payload::Delivery) -> InboundDelivery {
    let changes = delivery
        .changes
        .iter()
        .map(|change| InboundChange {
            phone_number_id: change.phone_number_id.clone(),
            messages: change
                .messages
                .iter()
                .map(|m| ingest::InboundMessage {
                    wa_message_id: m.id.clone(),
                    from_wa_id: m.from.clone(),
                    from_user_id: m.from_user_id.clone(),
                    profile_name: change.profile_for(m).and_then(|p| p.name.clone()),
                    timestamp: m.timestamp,
                    message_type: message_type(&m.kind),
                    body: m.body.clone(),
                    media: m.media.as_ref().map(|media| {
                        json!({
                            "id": media.id,
                            "mimeType": media.mime_type,
                            "sha256": media.sha256,
                            "caption": media.caption,
                            "filename": media.filename,
                            "url": media.url,
                            "voice": media.voice,
                            "animated": media.animated,
                        })
                    }),
                    payload: with_type(&m.raw, m.kind.as_str()),
                    context_wa_id: m.context.as_ref().and_then(|c| c.id.clone()),
                })
                .collect(),
            statuses: change
                .statuses
                .iter()
                .filter_map(|s| {
                    Some(ingest::StatusUpdate {
                        wa_message_id: s.id.clone(),
                        status: status(&s.status)?,
                        timestamp: s.timestamp,
                        error_code: s.errors.first().and_then(|e| i32::try_from(e.code).ok()),
                        error_title: s.errors.first().and_then(|e| e.title.clone()),
                    })
                })
                .collect(),
        })
        .collect();
    InboundDelivery { changes }
}

/// The type-specific object, tagged with its type so it reads on its own.
fn with_type(raw: &Value, kind: &str) -> Value {
    json!({ "type": kind, "content": raw })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_types_are_kept_as_unsupported() {
        assert_eq!(
            message_type(&MessageKind::Unknown("poll".into())),
            MessageType::Unsupported
        );
        assert_eq!(status(&StatusKind::Played), Some(DeliveryStatus::Read));
        assert_eq!(status(&StatusKind::Other("deleted".into())), None);
    }
}
