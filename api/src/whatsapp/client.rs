//! The Graph API client for outbound messages: `POST
//! {base}/{version}/{phone_number_id}/messages` with the channel's bearer
//! token. It builds the wire body from the domain's [`OutboundContent`] and
//! reports failures as Meta described them; the domain decides what to retry.

use std::time::Duration;

use async_trait::async_trait;
use domain::outbound::content::{ListAction, Media, MediaKind, ReplyButton, Template};
use domain::outbound::{MessageSender, OutboundContent, SendError, SendRequest, SentMessage};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// Below the outbox's 30 s claim, so a live sender never loses its claim.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct CloudApiClient {
    http: reqwest::Client,
    base_url: String,
    api_version: String,
}

impl CloudApiClient {
    pub fn new(base_url: &str, api_version: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("helpdesk/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            api_version: api_version.trim_matches('/').to_string(),
        })
    }

    pub fn messages_url(&self, phone_number_id: &str) -> String {
        format!(
            "{}/{}/{}/messages",
            self.base_url, self.api_version, phone_number_id
        )
    }
}

#[async_trait]
impl MessageSender for CloudApiClient {
    #[tracing::instrument(skip_all, fields(phone_number_id = %request.phone_number_id))]
    async fn send(&self, request: &SendRequest) -> Result<SentMessage, SendError> {
        let response = self
            .http
            .post(self.messages_url(&request.phone_number_id))
            .bearer_auth(&request.access_token)
            .json(&body(request))
            .send()
            .await
            .map_err(|e| SendError::network(network_reason(&e)))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
            .map(chrono::Duration::seconds);
        let bytes = response
            .bytes()
            .await
            .map_err(|e| SendError::network(network_reason(&e)))?;
        if (200..300).contains(&status) {
            return parse_success(&bytes).ok_or_else(|| SendError {
                http_status: Some(status),
                code: None,
                // Not retried: Meta may have accepted it, a retry could duplicate.
                title: "the Graph API answered without a message id".into(),
                details: None,
                retry_after: None,
            });
        }
        Err(parse_error(status, &bytes, retry_after))
    }
}

fn network_reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "the Graph API did not answer in time".into()
    } else if e.is_connect() {
        "cannot connect to the Graph API".into()
    } else {
        "network error talking to the Graph API".into()
    }
}

#[derive(Deserialize)]
struct Success {
    messages: Vec<SuccessMessage>,
}

#[derive(Deserialize)]
struct SuccessMessage {
    id: String,
}

fn parse_success(bytes: &[u8]) -> Option<SentMessage> {
    let ok: Success = serde_json::from_slice(bytes).ok()?;
    let id = ok.messages.into_iter().next()?.id;
    (!id.is_empty()).then_some(SentMessage { wa_message_id: id })
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: GraphError,
}

#[derive(Deserialize)]
struct GraphError {
    #[serde(default)]
    message: String,
    code: Option<i64>,
    error_user_title: Option<String>,
    error_data: Option<ErrorData>,
}

#[derive(Deserialize)]
struct ErrorData {
    details: Option<String>,
}

/// Meta's `{"error":{"message":"(#131047) Re-engagement message","code":…}}`.
pub fn parse_error(status: u16, bytes: &[u8], retry_after: Option<chrono::Duration>) -> SendError {
    let Ok(ErrorEnvelope { error }) = serde_json::from_slice::<ErrorEnvelope>(bytes) else {
        return SendError {
            http_status: Some(status),
            code: None,
            title: format!("the Graph API answered HTTP {status}"),
            details: None,
            retry_after,
        };
    };
    let title = strip_code(&error.message);
    let title = if title.is_empty() {
        error
            .error_user_title
            .unwrap_or_else(|| format!("the Graph API answered HTTP {status}"))
    } else {
        title
    };
    SendError {
        http_status: Some(status),
        code: error.code,
        title,
        details: error.error_data.and_then(|d| d.details),
        retry_after,
    }
}

/// `(#131047) Re-engagement message` → `Re-engagement message`.
fn strip_code(message: &str) -> String {
    let m = message.trim();
    match m.strip_prefix("(#").and_then(|r| r.split_once(')')) {
        Some((_, rest)) => rest.trim().to_string(),
        None => m.to_string(),
    }
}

/// The request body of `POST /{phone_number_id}/messages`.
pub fn body(request: &SendRequest) -> Value {
    let (kind, object) = type_object(&request.content);
    let mut body = Map::new();
    body.insert("messaging_product".into(), json!("whatsapp"));
    body.insert("recipient_type".into(), json!("individual"));
    body.insert("to".into(), json!(request.to));
    body.insert("type".into(), json!(kind));
    body.insert(kind.into(), object);
    if let Some(id) = &request.reply_to {
        body.insert("context".into(), json!({ "message_id": id }));
    }
    Value::Object(body)
}

fn type_object(content: &OutboundContent) -> (&'static str, Value) {
    match content {
        OutboundContent::Text { body, preview_url } => {
            ("text", json!({ "body": body, "preview_url": preview_url }))
        }
        OutboundContent::Media(m) => media(m),
        OutboundContent::Buttons {
            header,
            body,
            footer,
            buttons,
        } => (
            "interactive",
            interactive(
                "button",
                header,
                body,
                footer,
                json!({ "buttons": buttons.iter().map(button).collect::<Vec<_>>() }),
            ),
        ),
        OutboundContent::List {
            header,
            body,
            footer,
            action,
        } => (
            "interactive",
            interactive("list", header, body, footer, list(action)),
        ),
        OutboundContent::Template(t) => ("template", template(t)),
    }
}

fn media(m: &Media) -> (&'static str, Value) {
    let kind = match m.kind {
        MediaKind::Image => "image",
        MediaKind::Video => "video",
        MediaKind::Audio => "audio",
        MediaKind::Document => "document",
        MediaKind::Sticker => "sticker",
    };
    let mut object = Map::new();
    object.insert("link".into(), json!(m.link));
    if let Some(c) = &m.caption {
        object.insert("caption".into(), json!(c));
    }
    if let Some(f) = &m.filename {
        object.insert("filename".into(), json!(f));
    }
    (kind, Value::Object(object))
}

fn interactive(
    kind: &str,
    header: &Option<String>,
    body: &str,
    footer: &Option<String>,
    action: Value,
) -> Value {
    let mut object = Map::new();
    object.insert("type".into(), json!(kind));
    if let Some(h) = header {
        object.insert("header".into(), json!({ "type": "text", "text": h }));
    }
    object.insert("body".into(), json!({ "text": body }));
    if let Some(f) = footer {
        object.insert("footer".into(), json!({ "text": f }));
    }
    object.insert("action".into(), action);
    Value::Object(object)
}

fn button(b: &ReplyButton) -> Value {
    json!({ "type": "reply", "reply": { "id": b.id, "title": b.title } })
}

fn list(action: &ListAction) -> Value {
    let sections: Vec<Value> = action
        .sections
        .iter()
        .map(|s| {
            let rows: Vec<Value> = s
                .rows
                .iter()
                .map(|r| {
                    let mut row = Map::new();
                    row.insert("id".into(), json!(r.id));
                    row.insert("title".into(), json!(r.title));
                    if let Some(d) = &r.description {
                        row.insert("description".into(), json!(d));
                    }
                    Value::Object(row)
                })
                .collect();
            let mut section = Map::new();
            if let Some(t) = &s.title {
                section.insert("title".into(), json!(t));
            }
            section.insert("rows".into(), Value::Array(rows));
            Value::Object(section)
        })
        .collect();
    json!({ "button": action.button, "sections": sections })
}

fn template(t: &Template) -> Value {
    let mut object = Map::new();
    object.insert("name".into(), json!(t.name));
    object.insert("language".into(), json!({ "code": t.language }));
    if !t.parameters.is_empty() {
        let parameters: Vec<Value> = t
            .parameters
            .iter()
            .map(|p| json!({ "type": "text", "text": p }))
            .collect();
        object.insert(
            "components".into(),
            json!([{ "type": "body", "parameters": parameters }]),
        );
    }
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(content: OutboundContent) -> SendRequest {
        SendRequest {
            phone_number_id: "123".into(),
            access_token: "t".into(),
            to: "393331234567".into(),
            content,
            reply_to: Some("wamid.Q".into()),
        }
    }

    #[test]
    fn a_text_body_follows_the_cloud_api() {
        let b = body(&request(OutboundContent::Text {
            body: "Ciao".into(),
            preview_url: false,
        }));
        assert_eq!(
            b,
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "393331234567",
                "type": "text",
                "text": {"body": "Ciao", "preview_url": false},
                "context": {"message_id": "wamid.Q"},
            })
        );
    }

    #[test]
    fn buttons_and_templates_have_metas_shape() {
        let b = body(&request(OutboundContent::Buttons {
            header: None,
            body: "Choose".into(),
            footer: None,
            buttons: vec![ReplyButton {
                id: "buy".into(),
                title: "Buy now".into(),
            }],
        }));
        assert_eq!(b["interactive"]["type"], "button");
        assert_eq!(
            b["interactive"]["action"]["buttons"][0],
            json!({"type": "reply", "reply": {"id": "buy", "title": "Buy now"}})
        );
        let t = body(&request(OutboundContent::Template(Template {
            name: "order_update".into(),
            language: "it".into(),
            parameters: vec!["A12".into()],
        })));
        assert_eq!(t["template"]["language"]["code"], "it");
        assert_eq!(
            t["template"]["components"][0]["parameters"][0]["text"],
            "A12"
        );
    }

    #[test]
    fn meta_errors_keep_code_title_and_details() {
        let e = parse_error(
            400,
            br#"{"error":{"message":"(#131047) Re-engagement message","type":"OAuthException","code":131047,"error_data":{"messaging_product":"whatsapp","details":"More than 24 hours"},"fbtrace_id":"x"}}"#,
            None,
        );
        assert_eq!(e.code, Some(131_047));
        assert_eq!(e.title, "Re-engagement message");
        assert_eq!(e.details.as_deref(), Some("More than 24 hours"));
        let html = parse_error(502, b"<html>bad gateway</html>", None);
        assert_eq!(html.code, None);
        assert_eq!(html.http_status, Some(502));
    }
}
