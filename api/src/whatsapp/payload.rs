//! Wire format of Cloud API webhook deliveries (the `POST` body), flattened into [`Delivery`].
//!
//! The body is read into a [`serde_json::Value`] and walked by hand rather than through derived
//! structs so that every refusal names the JSON path at fault (the handler logs it and answers
//! 4xx), while unknown fields, new message types and non-`messages` changes pass untouched.
//! A field that is read must have its documented type when present: a payload we would misread is
//! refused loudly (Meta keeps retrying for 7 days) rather than stored half-understood.

use std::fmt;

use chrono::{DateTime, Utc};
use serde_json::Value;
use thiserror::Error;

/// The only `object` Meta sends for WhatsApp Business Account webhooks.
const OBJECT: &str = "whatsapp_business_account";

/// Why a delivery body was refused; its text names the location, e.g.
/// `entry[0].changes[1].value.messages[2].timestamp: expected a string of Unix seconds, found …`.
#[derive(Debug, Error)]
pub enum PayloadError {
    #[error("malformed JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{path}: {problem}")]
    Invalid { path: String, problem: String },
}

impl PayloadError {
    /// The JSON path at fault (`$` for the document itself), when the JSON itself was readable.
    pub fn path(&self) -> Option<&str> {
        match self {
            Self::Json(_) => None,
            Self::Invalid { path, .. } => Some(path),
        }
    }
}

/// Everything conversation-related in one POST, in delivery order (entries and changes flattened).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delivery {
    pub changes: Vec<Change>,
    /// Changes for other fields (template status, quality, account updates…): accepted, ignored.
    pub skipped_changes: usize,
}

/// One `messages` change: the traffic of one business number (`phone_number_id`, the routing key).
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub phone_number_id: String,
    pub display_phone_number: Option<String>,
    pub contacts: Vec<ContactProfile>,
    pub messages: Vec<InboundMessage>,
    pub statuses: Vec<StatusUpdate>,
    pub errors: Vec<ApiError>,
}

impl Change {
    /// The sender's profile, matched by value (`wa_id == from` or `user_id == from_user_id`):
    /// Meta does not promise that `contacts` and `messages` line up by index, and system messages
    /// arrive with no contacts at all.
    pub fn profile_for(&self, message: &InboundMessage) -> Option<&ContactProfile> {
        let same = |a: &Option<String>, b: &Option<String>| a.is_some() && a == b;
        self.contacts
            .iter()
            .find(|c| same(&c.wa_id, &message.from) || same(&c.user_id, &message.from_user_id))
    }
}

/// A sender as described in `contacts[]`; username users may have a `user_id` and no `wa_id`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContactProfile {
    pub wa_id: Option<String>,
    pub user_id: Option<String>,
    pub name: Option<String>,
}

/// One customer message. `id` (the `wamid.…`) is the idempotency key.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundMessage {
    pub id: String,
    /// Phone number in digits without `+`; absent for username-only users.
    pub from: Option<String>,
    /// Business-scoped user id (e.g. `US.1349…`) for username users.
    pub from_user_id: Option<String>,
    pub timestamp: DateTime<Utc>,
    pub kind: MessageKind,
    /// The human-readable text: text body, caption, button text, interactive title, reaction
    /// emoji, location name, shared contact names, order or system text.
    pub body: Option<String>,
    pub media: Option<Media>,
    pub context: Option<Context>,
    /// Click-to-WhatsApp ad attribution, as received.
    pub referral: Option<Value>,
    /// The type-specific object as received (the whole message for unknown types), so nothing
    /// Meta sent is lost even where it is not modelled.
    pub raw: Value,
    pub errors: Vec<ApiError>,
}

/// What kind of message it is, with the few type-specific fields the helpdesk acts on.
#[derive(Debug, Clone, PartialEq)]
pub enum MessageKind {
    Text,
    Image,
    Audio,
    Video,
    Document,
    Sticker,
    Location {
        latitude: Option<f64>,
        longitude: Option<f64>,
    },
    /// Shared contact cards (not the sender); details stay in `raw`.
    Contacts,
    Interactive(InteractiveReply),
    /// Quick-reply button of a template.
    Button {
        payload: Option<String>,
        text: Option<String>,
    },
    /// `emoji: None` means the customer removed their reaction.
    Reaction {
        message_id: String,
        emoji: Option<String>,
    },
    /// Catalog order; `catalog_id` and `product_items` stay in `raw`.
    Order,
    System {
        /// e.g. `user_changed_number`.
        system_type: Option<String>,
        /// The customer's new number, when it changed.
        new_wa_id: Option<String>,
    },
    /// Meta could not deliver the content (error 131051 in `errors`).
    Unsupported,
    /// A type this code does not know yet: kept, stored as `unsupported`, never an error.
    Unknown(String),
}

/// The customer's answer to an interactive message.
#[derive(Debug, Clone, PartialEq)]
pub enum InteractiveReply {
    Button {
        id: String,
        title: String,
    },
    List {
        id: String,
        title: String,
        description: Option<String>,
    },
    /// Another reply type (e.g. `nfm_reply` from Flows); its content stays in `raw`.
    Other(String),
}

impl MessageKind {
    /// The value stored in the database's message type column.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Text => "text",
            Self::Image => "image",
            Self::Audio => "audio",
            Self::Video => "video",
            Self::Document => "document",
            Self::Sticker => "sticker",
            Self::Location { .. } => "location",
            Self::Contacts => "contacts",
            Self::Interactive(_) => "interactive",
            Self::Button { .. } => "button",
            Self::Reaction { .. } => "reaction",
            Self::Order => "order",
            Self::System { .. } => "system",
            Self::Unsupported | Self::Unknown(_) => "unsupported",
        }
    }

    /// `(id, title)` of a button or list reply: the id is what routing and bots branch on.
    pub fn interactive_reply(&self) -> Option<(&str, &str)> {
        match self {
            Self::Interactive(
                InteractiveReply::Button { id, title } | InteractiveReply::List { id, title, .. },
            ) => Some((id, title)),
            _ => None,
        }
    }
}

/// An inbound file; `id` is fetched through the Graph API (valid 7 days).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Media {
    pub id: String,
    pub mime_type: Option<String>,
    pub sha256: Option<String>,
    pub caption: Option<String>,
    pub filename: Option<String>,
    pub url: Option<String>,
    /// Audio recorded as a voice note.
    pub voice: bool,
    /// Animated sticker.
    pub animated: bool,
}

/// What the message refers to: the quoted message or tapped button (`id` is our outbound wamid),
/// or only a forwarding flag.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    pub from: Option<String>,
    pub id: Option<String>,
    pub forwarded: bool,
}

/// Delivery state of one of our outbound messages (`id` is our wamid).
#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdate {
    pub id: String,
    pub status: StatusKind,
    pub timestamp: DateTime<Utc>,
    pub recipient_id: Option<String>,
    /// Business-scoped user id of a username recipient.
    pub recipient_user_id: Option<String>,
    /// Omitted from API v24 on; kept as received for older versions.
    pub conversation: Option<Value>,
    pub pricing: Option<Pricing>,
    pub errors: Vec<ApiError>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusKind {
    Sent,
    Delivered,
    Read,
    Played,
    Failed,
    Other(String),
}

impl StatusKind {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Played => "played",
            Self::Failed => "failed",
            Self::Other(other) => other,
        }
    }
}

impl From<&str> for StatusKind {
    fn from(status: &str) -> Self {
        match status {
            "sent" => Self::Sent,
            "delivered" => Self::Delivered,
            "read" => Self::Read,
            "played" => Self::Played,
            "failed" => Self::Failed,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// Meta's pricing note; it appears on only one of the delivered/read statuses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pricing {
    pub billable: Option<bool>,
    pub category: Option<String>,
    pub pricing_model: Option<String>,
}

/// An error reported by Meta (on a status, a message or a whole change); branch on `code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: i64,
    pub title: Option<String>,
    pub message: Option<String>,
    /// `error_data.details`.
    pub details: Option<String>,
}

/// Parses a webhook POST body.
pub fn parse(body: &[u8]) -> Result<Delivery, PayloadError> {
    let document: Value = serde_json::from_slice(body)?;
    let root = At {
        value: Some(&document),
        path: Path::Root,
    };
    root.required_object()?;
    let object = root.field("object")?;
    if object.str()? != Some(OBJECT) {
        return Err(object.error(&format!("\"{OBJECT}\"")));
    }
    let mut delivery = Delivery::default();
    for entry in root.field("entry")?.required_items()? {
        for change in entry.field("changes")?.required_items()? {
            if change.required_str("field")? == "messages" {
                delivery.changes.push(parse_change(change.field("value")?)?);
            } else {
                delivery.skipped_changes += 1;
            }
        }
    }
    Ok(delivery)
}

fn parse_change(value: At<'_>) -> Result<Change, PayloadError> {
    value.required_object()?;
    let metadata = value.field("metadata")?.required_object()?;
    Ok(Change {
        phone_number_id: metadata.required_string("phone_number_id")?,
        display_phone_number: metadata.string("display_phone_number")?,
        contacts: value.field("contacts")?.map_items(parse_contact)?,
        messages: value.field("messages")?.map_items(parse_message)?,
        statuses: value.field("statuses")?.map_items(parse_status)?,
        errors: value.field("errors")?.map_items(parse_error)?,
    })
}

fn parse_contact(contact: At<'_>) -> Result<ContactProfile, PayloadError> {
    contact.required_object()?;
    Ok(ContactProfile {
        wa_id: contact.string("wa_id")?,
        user_id: contact.string("user_id")?,
        name: contact.field("profile")?.string("name")?,
    })
}

fn parse_message(message: At<'_>) -> Result<InboundMessage, PayloadError> {
    message.required_object()?;
    let id = message.required_string("id")?;
    let timestamp = message.timestamp("timestamp")?;
    let message_type = message.required_str("type")?;
    let content = message.field(message_type)?;
    let (kind, body, media) = parse_content(message_type, content)?;
    let raw = match (&kind, content.present()) {
        (MessageKind::Unknown(_), _) | (_, None) => message.value.cloned().unwrap_or_default(),
        (_, Some(content)) => content.clone(),
    };
    Ok(InboundMessage {
        id,
        from: message.string("from")?,
        from_user_id: message.string("from_user_id")?,
        timestamp,
        kind,
        body,
        media,
        context: message
            .field("context")?
            .object()?
            .map(parse_context)
            .transpose()?,
        referral: message.field("referral")?.present().cloned(),
        raw,
        errors: message.field("errors")?.map_items(parse_error)?,
    })
}

/// Reads the type-specific object: the kind, the human-readable text and the attached file.
fn parse_content(
    message_type: &str,
    content: At<'_>,
) -> Result<(MessageKind, Option<String>, Option<Media>), PayloadError> {
    let with_media = |kind: MessageKind| -> Result<_, PayloadError> {
        let media = parse_media(content)?;
        Ok((kind, media.caption.clone(), Some(media)))
    };
    Ok(match message_type {
        "text" => {
            let text = content.required_object()?;
            (MessageKind::Text, text.string("body")?, None)
        }
        "image" => with_media(MessageKind::Image)?,
        "audio" => with_media(MessageKind::Audio)?,
        "video" => with_media(MessageKind::Video)?,
        "document" => with_media(MessageKind::Document)?,
        "sticker" => with_media(MessageKind::Sticker)?,
        "location" => {
            let location = content.required_object()?;
            let kind = MessageKind::Location {
                latitude: location.number("latitude")?,
                longitude: location.number("longitude")?,
            };
            let body = match location.string("name")? {
                Some(name) => Some(name),
                None => location.string("address")?,
            };
            (kind, body, None)
        }
        "contacts" => {
            let names = content
                .required_items()?
                .map(|card| card.field("name")?.string("formatted_name"))
                .collect::<Result<Vec<_>, _>>()?;
            let names: Vec<String> = names.into_iter().flatten().collect();
            let body = (!names.is_empty()).then(|| names.join(", "));
            (MessageKind::Contacts, body, None)
        }
        "interactive" => {
            let interactive = content.required_object()?;
            let reply_type = interactive.required_str("type")?;
            let reply = interactive.field(reply_type)?;
            let reply = match reply_type {
                "button_reply" | "list_reply" => {
                    reply.required_object()?;
                    let (id, title) = (
                        reply.required_string("id")?,
                        reply.required_string("title")?,
                    );
                    if reply_type == "button_reply" {
                        InteractiveReply::Button { id, title }
                    } else {
                        let description = reply.string("description")?;
                        InteractiveReply::List {
                            id,
                            title,
                            description,
                        }
                    }
                }
                other => InteractiveReply::Other(other.to_owned()),
            };
            let body = match &reply {
                InteractiveReply::Button { title, .. } | InteractiveReply::List { title, .. } => {
                    Some(title.clone())
                }
                InteractiveReply::Other(_) => None,
            };
            (MessageKind::Interactive(reply), body, None)
        }
        "button" => {
            let button = content.required_object()?;
            let text = button.string("text")?;
            let kind = MessageKind::Button {
                payload: button.string("payload")?,
                text: text.clone(),
            };
            (kind, text, None)
        }
        "reaction" => {
            let reaction = content.required_object()?;
            // Removal arrives without `emoji`; treat an empty one the same way.
            let emoji = reaction.string("emoji")?.filter(|e| !e.is_empty());
            let kind = MessageKind::Reaction {
                message_id: reaction.required_string("message_id")?,
                emoji: emoji.clone(),
            };
            (kind, emoji, None)
        }
        "order" => (
            MessageKind::Order,
            content.required_object()?.string("text")?,
            None,
        ),
        "system" => {
            let system = content.required_object()?;
            // Newer payloads say `new_wa_id`, older ones `wa_id`.
            let new_wa_id = match system.string("new_wa_id")? {
                Some(id) => Some(id),
                None => system.string("wa_id")?,
            };
            let kind = MessageKind::System {
                system_type: system.string("type")?,
                new_wa_id,
            };
            (kind, system.string("body")?, None)
        }
        "unsupported" => (MessageKind::Unsupported, None, None),
        other => (MessageKind::Unknown(other.to_owned()), None, None),
    })
}

fn parse_media(media: At<'_>) -> Result<Media, PayloadError> {
    media.required_object()?;
    Ok(Media {
        id: media.required_string("id")?,
        mime_type: media.string("mime_type")?,
        sha256: media.string("sha256")?,
        caption: media.string("caption")?,
        filename: media.string("filename")?,
        url: media.string("url")?,
        voice: media.flag("voice")?,
        animated: media.flag("animated")?,
    })
}

fn parse_context(context: At<'_>) -> Result<Context, PayloadError> {
    Ok(Context {
        from: context.string("from")?,
        id: context.string("id")?,
        forwarded: context.flag("forwarded")? || context.flag("frequently_forwarded")?,
    })
}

fn parse_status(status: At<'_>) -> Result<StatusUpdate, PayloadError> {
    status.required_object()?;
    Ok(StatusUpdate {
        id: status.required_string("id")?,
        status: StatusKind::from(status.required_str("status")?),
        timestamp: status.timestamp("timestamp")?,
        recipient_id: status.string("recipient_id")?,
        recipient_user_id: status.string("recipient_user_id")?,
        conversation: status.field("conversation")?.present().cloned(),
        pricing: status
            .field("pricing")?
            .object()?
            .map(parse_pricing)
            .transpose()?,
        errors: status.field("errors")?.map_items(parse_error)?,
    })
}

fn parse_pricing(pricing: At<'_>) -> Result<Pricing, PayloadError> {
    Ok(Pricing {
        billable: pricing.field("billable")?.bool()?,
        category: pricing.string("category")?,
        pricing_model: pricing.string("pricing_model")?,
    })
}

fn parse_error(error: At<'_>) -> Result<ApiError, PayloadError> {
    error.required_object()?;
    let code = error.field("code")?;
    Ok(ApiError {
        code: code
            .present()
            .and_then(Value::as_i64)
            .ok_or_else(|| code.error("an integer"))?,
        title: error.string("title")?,
        message: error.string("message")?,
        details: error.field("error_data")?.string("details")?,
    })
}

/// A location in the document, kept as a chain of borrowed links and rendered only on error.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => f.write_str("$"),
            Path::Key(Path::Root, key) => f.write_str(key),
            Path::Key(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

/// A value (`None` when the field is absent) and where it sits. JSON `null` counts as absent.
#[derive(Clone, Copy)]
struct At<'a> {
    value: Option<&'a Value>,
    path: Path<'a>,
}

impl<'a> At<'a> {
    fn error(&self, expected: &str) -> PayloadError {
        let problem = match self.value {
            None => format!("missing (expected {expected})"),
            Some(found) => format!("expected {expected}, found {}", describe(found)),
        };
        PayloadError::Invalid {
            path: self.path.to_string(),
            problem,
        }
    }

    fn present(&self) -> Option<&'a Value> {
        self.value.filter(|v| !v.is_null())
    }

    /// A member of this object; absent when this value is absent, an error when it is not an
    /// object.
    fn field<'b>(&'b self, key: &'b str) -> Result<At<'b>, PayloadError> {
        let value = match self.present() {
            None => None,
            Some(Value::Object(map)) => map.get(key),
            Some(_) => return Err(self.error("an object")),
        };
        Ok(At {
            value,
            path: Path::Key(&self.path, key),
        })
    }

    /// `Some(self)` for an object, `None` when absent.
    fn object(self) -> Result<Option<Self>, PayloadError> {
        match self.present() {
            None => Ok(None),
            Some(Value::Object(_)) => Ok(Some(self)),
            Some(_) => Err(self.error("an object")),
        }
    }

    fn required_object(self) -> Result<Self, PayloadError> {
        self.object()?.ok_or_else(|| self.error("an object"))
    }

    /// The elements of this array (none when absent), each with its indexed path.
    fn items(&self) -> Result<impl Iterator<Item = At<'_>>, PayloadError> {
        let items: &[Value] = match self.present() {
            None => &[],
            Some(Value::Array(items)) => items,
            Some(_) => return Err(self.error("an array")),
        };
        Ok(items.iter().enumerate().map(|(index, value)| At {
            value: Some(value),
            path: Path::Index(&self.path, index),
        }))
    }

    fn required_items(&self) -> Result<impl Iterator<Item = At<'_>>, PayloadError> {
        if self.present().is_none() {
            return Err(self.error("an array"));
        }
        self.items()
    }

    fn map_items<T>(
        &self,
        parse: impl FnMut(At<'_>) -> Result<T, PayloadError>,
    ) -> Result<Vec<T>, PayloadError> {
        self.items()?.map(parse).collect()
    }

    fn str(&self) -> Result<Option<&'a str>, PayloadError> {
        match self.present() {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.error("a string")),
        }
    }

    fn bool(&self) -> Result<Option<bool>, PayloadError> {
        match self.present() {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.error("a boolean")),
        }
    }

    fn string(&self, key: &str) -> Result<Option<String>, PayloadError> {
        Ok(self.field(key)?.str()?.map(str::to_owned))
    }

    /// A mandatory, non-empty string member (ids, types, routing keys).
    fn required_str<'b>(&'b self, key: &'b str) -> Result<&'b str, PayloadError> {
        let field = self.field(key)?;
        match field.present() {
            Some(Value::String(s)) if !s.is_empty() => Ok(s),
            _ => Err(field.error("a non-empty string")),
        }
    }

    fn required_string(&self, key: &str) -> Result<String, PayloadError> {
        self.required_str(key).map(str::to_owned)
    }

    /// A boolean member that defaults to `false`.
    fn flag(&self, key: &str) -> Result<bool, PayloadError> {
        Ok(self.field(key)?.bool()?.unwrap_or(false))
    }

    fn number(&self, key: &str) -> Result<Option<f64>, PayloadError> {
        let field = self.field(key)?;
        match field.present() {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(_) => Err(field.error("a number")),
        }
    }

    /// Unix seconds, documented as a string; a bare integer is accepted too.
    fn timestamp(&self, key: &str) -> Result<DateTime<Utc>, PayloadError> {
        let field = self.field(key)?;
        let seconds = match field.present() {
            Some(Value::String(s)) => s.parse::<i64>().ok(),
            Some(Value::Number(n)) => n.as_i64(),
            _ => None,
        };
        seconds
            .filter(|s| *s >= 0)
            .and_then(|s| DateTime::from_timestamp(s, 0))
            .ok_or_else(|| field.error("a string of Unix seconds"))
    }
}

/// A short description of an unexpected value for error messages (strings cut at 40 chars).
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("a boolean ({b})"),
        Value::Number(n) => format!("a number ({n})"),
        Value::String(s) if s.chars().count() > 40 => {
            let head: String = s.chars().take(40).collect();
            format!("a string ({head:?}…)")
        }
        Value::String(s) => format!("a string ({s:?})"),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const WAMID: &str = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=";

    fn metadata() -> Value {
        json!({"display_phone_number": "15550783881", "phone_number_id": "106540352242922"})
    }

    fn envelope(values: &[Value]) -> Vec<u8> {
        let changes: Vec<Value> = values
            .iter()
            .map(|value| json!({"value": value, "field": "messages"}))
            .collect();
        let body = json!({
            "object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": changes}]
        });
        serde_json::to_vec(&body).unwrap()
    }

    fn msg(kind: &str, content: Value) -> Value {
        json!({"from": "16505551234", "id": WAMID, "timestamp": "1749416383", "type": kind, kind: content})
    }

    /// Wraps messages in a documented-shape delivery and returns its single change.
    fn change_with(messages: Value) -> Change {
        let value = json!({
            "messaging_product": "whatsapp",
            "metadata": metadata(),
            "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234"}],
            "messages": messages
        });
        let mut delivery = parse(&envelope(&[value])).unwrap();
        assert_eq!(delivery.changes.len(), 1);
        delivery.changes.remove(0)
    }

    fn one(message: Value) -> InboundMessage {
        let mut change = change_with(json!([message]));
        assert_eq!(change.messages.len(), 1);
        change.messages.remove(0)
    }

    fn error(body: &[u8]) -> String {
        parse(body).unwrap_err().to_string()
    }

    #[test]
    fn text_message_in_meta_documented_shape() {
        let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"contacts":[{"profile":{"name":"Sheena Nelson"},"wa_id":"16505551234"}],"messages":[{"from":"16505551234","id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=","timestamp":"1749416383","text":{"body":"Does it come in another color?"},"type":"text"}]},"field":"messages"}]}]}"#;
        let delivery = parse(body).unwrap();
        assert_eq!(delivery.skipped_changes, 0);
        let change = &delivery.changes[0];
        assert_eq!(change.phone_number_id, "106540352242922");
        assert_eq!(change.display_phone_number.as_deref(), Some("15550783881"));
        let message = &change.messages[0];
        assert_eq!(message.id, WAMID);
        assert_eq!(message.from.as_deref(), Some("16505551234"));
        assert_eq!(message.timestamp.timestamp(), 1_749_416_383);
        assert_eq!(message.kind, MessageKind::Text);
        assert_eq!(message.kind.as_str(), "text");
        assert_eq!(
            message.body.as_deref(),
            Some("Does it come in another color?")
        );
        assert_eq!(
            message.raw,
            json!({"body": "Does it come in another color?"})
        );
        assert!(message.media.is_none() && message.context.is_none() && message.errors.is_empty());
        let profile = change.profile_for(message).unwrap();
        assert_eq!(profile.name.as_deref(), Some("Sheena Nelson"));
    }

    #[test]
    fn escaped_non_ascii_decodes() {
        let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"1"},"contacts":[{"profile":{"name":"Jo\u00e3o"},"wa_id":"5511999999999"}],"messages":[{"from":"5511999999999","id":"wamid.x","timestamp":"1749416383","type":"text","text":{"body":"Ol\u00e1, n\u00e3o recebi \ud83d\ude00"}}]}}]}]}"#;
        let change = &parse(body).unwrap().changes[0];
        assert_eq!(
            change.messages[0].body.as_deref(),
            Some("Olá, não recebi 😀")
        );
        assert_eq!(change.contacts[0].name.as_deref(), Some("João"));
    }

    #[test]
    fn text_with_quoted_context_and_ad_referral() {
        let mut text = msg("text", json!({"body": "Is this still on sale?"}));
        text["context"] = json!({"from": "15550783881", "id": "wamid.OUR_OUTBOUND"});
        text["referral"] = json!({
            "source_url": "https://fb.me/3cr4Wqqkv", "source_id": "120226305854810726",
            "source_type": "ad", "headline": "Chat with us", "ctwa_clid": "Aff-n8ZTODiE79d22KtAwQKj9e_mIEOOj27vDVwFjN80dp4_0NiNhEgpGo0AHemvuSoifXaytfTzcchptiErTKCqTrJ5nW1h7IHYeYymGb5K5J5iU"
        });
        let message = one(text);
        let context = message.context.unwrap();
        assert_eq!(context.from.as_deref(), Some("15550783881"));
        assert_eq!(context.id.as_deref(), Some("wamid.OUR_OUTBOUND"));
        assert!(!context.forwarded);
        assert_eq!(message.referral.unwrap()["source_type"], "ad");

        let mut forwarded = msg("text", json!({"body": "fwd"}));
        forwarded["context"] = json!({"frequently_forwarded": true});
        let context = one(forwarded).context.unwrap();
        assert!(context.forwarded && context.id.is_none());
    }

    #[test]
    fn image_with_caption() {
        let message = one(msg(
            "image",
            json!({
                "caption": "Broken on arrival", "mime_type": "image/jpeg",
                "sha256": "lQyNk4QPOXTV1b4UNwfCzxyMfLlGFkXmWwTd/P6fTUw=", "id": "1003383421387256",
                "url": "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1003383421387256"
            }),
        ));
        assert_eq!(message.kind.as_str(), "image");
        assert_eq!(message.body.as_deref(), Some("Broken on arrival"));
        let media = message.media.unwrap();
        assert_eq!(media.id, "1003383421387256");
        assert_eq!(media.mime_type.as_deref(), Some("image/jpeg"));
        assert_eq!(media.caption.as_deref(), Some("Broken on arrival"));
        assert!(media.url.is_some() && media.sha256.is_some() && !media.voice);
    }

    #[test]
    fn audio_voice_note() {
        let message = one(msg(
            "audio",
            json!({"mime_type": "audio/ogg; codecs=opus", "sha256": "ZQ+2n7p3w==", "id": "1346418216475416", "voice": true}),
        ));
        assert_eq!(message.kind, MessageKind::Audio);
        assert!(message.body.is_none());
        let media = message.media.unwrap();
        assert!(media.voice);
        assert_eq!(media.mime_type.as_deref(), Some("audio/ogg; codecs=opus"));
    }

    #[test]
    fn video_and_sticker() {
        let video = one(msg(
            "video",
            json!({"mime_type": "video/mp4", "sha256": "7ZnJ2v0=", "id": "1219046256373290"}),
        ));
        assert_eq!(video.kind.as_str(), "video");
        assert_eq!(video.media.unwrap().id, "1219046256373290");

        let sticker = one(msg(
            "sticker",
            json!({"mime_type": "image/webp", "sha256": "R+1pZr0=", "id": "1226085042208466", "animated": true}),
        ));
        assert_eq!(sticker.kind, MessageKind::Sticker);
        assert!(sticker.media.unwrap().animated);
    }

    #[test]
    fn document_with_filename() {
        let message = one(msg(
            "document",
            json!({
                "caption": "Lucky Shrub Invoice", "filename": "lucky-shrub-invoice.pdf",
                "mime_type": "application/pdf", "sha256": "2t8Zx1Q=", "id": "1173658190989364"
            }),
        ));
        assert_eq!(message.kind.as_str(), "document");
        assert_eq!(message.body.as_deref(), Some("Lucky Shrub Invoice"));
        let media = message.media.unwrap();
        assert_eq!(media.filename.as_deref(), Some("lucky-shrub-invoice.pdf"));
        assert_eq!(media.mime_type.as_deref(), Some("application/pdf"));
    }

    #[test]
    fn location() {
        let message = one(msg(
            "location",
            json!({
                "address": "1 Hacker Way, Menlo Park, CA 94025", "latitude": 37.483253479004,
                "longitude": -122.14960479736, "name": "Main Campus", "url": "https://www.facebook.com"
            }),
        ));
        assert_eq!(
            message.kind,
            MessageKind::Location {
                latitude: Some(37.483253479004),
                longitude: Some(-122.14960479736)
            }
        );
        assert_eq!(message.kind.as_str(), "location");
        assert_eq!(message.body.as_deref(), Some("Main Campus"));
        assert_eq!(message.raw["address"], "1 Hacker Way, Menlo Park, CA 94025");
    }

    #[test]
    fn contacts_card_is_not_the_sender() {
        let message = one(msg(
            "contacts",
            json!([{
                "addresses": [{"city": "Menlo Park", "country": "United States", "type": "HOME"}],
                "birthday": "1999-01-23",
                "emails": [{"email": "bjohnson@example.com", "type": "HOME"}],
                "name": {"first_name": "Barbara", "last_name": "Johnson", "formatted_name": "Barbara J. Johnson"},
                "org": {"company": "Lucky Shrub"},
                "phones": [{"phone": "+19175559999", "wa_id": "19175559999", "type": "MOBILE"}],
                "urls": [{"url": "https://www.luckyshrub.com", "type": "WORK"}]
            }, {"name": {"formatted_name": "Pablo Morales"}}]),
        ));
        assert_eq!(message.kind.as_str(), "contacts");
        assert_eq!(
            message.body.as_deref(),
            Some("Barbara J. Johnson, Pablo Morales")
        );
        assert_eq!(message.raw[0]["phones"][0]["wa_id"], "19175559999");
    }

    #[test]
    fn interactive_button_and_list_replies() {
        let mut button = msg(
            "interactive",
            json!({"type": "button_reply", "button_reply": {"id": "talk-to-agent", "title": "Talk to an agent"}}),
        );
        button["context"] = json!({"from": "15550783881", "id": "wamid.BUTTONS"});
        let button = one(button);
        assert_eq!(button.kind.as_str(), "interactive");
        assert_eq!(
            button.kind.interactive_reply(),
            Some(("talk-to-agent", "Talk to an agent"))
        );
        assert_eq!(button.body.as_deref(), Some("Talk to an agent"));
        assert_eq!(button.context.unwrap().id.as_deref(), Some("wamid.BUTTONS"));

        let list = one(msg(
            "interactive",
            json!({"type": "list_reply", "list_reply": {"id": "priority_express", "title": "Express Shipping", "description": "Next Day to 2 Days"}}),
        ));
        assert_eq!(
            list.kind.interactive_reply(),
            Some(("priority_express", "Express Shipping"))
        );
        assert!(matches!(
            &list.kind,
            MessageKind::Interactive(InteractiveReply::List { description: Some(d), .. }) if d == "Next Day to 2 Days"
        ));

        let flow = one(msg(
            "interactive",
            json!({"type": "nfm_reply", "nfm_reply": {"name": "flow", "body": "Sent", "response_json": "{}"}}),
        ));
        assert_eq!(
            flow.kind,
            MessageKind::Interactive(InteractiveReply::Other("nfm_reply".into()))
        );
        assert_eq!(flow.kind.interactive_reply(), None);
    }

    #[test]
    fn template_quick_reply_button() {
        let mut button = msg(
            "button",
            json!({"payload": "STOP_PROMOS", "text": "Stop promotions"}),
        );
        button["context"] = json!({"from": "15550783881", "id": "wamid.TEMPLATE"});
        let message = one(button);
        assert_eq!(
            message.kind,
            MessageKind::Button {
                payload: Some("STOP_PROMOS".into()),
                text: Some("Stop promotions".into())
            }
        );
        assert_eq!(message.kind.as_str(), "button");
        assert_eq!(message.body.as_deref(), Some("Stop promotions"));
    }

    #[test]
    fn reaction_and_removed_reaction() {
        let added = one(msg(
            "reaction",
            json!({"message_id": "wamid.OURS", "emoji": "\u{1F44D}"}),
        ));
        assert_eq!(
            added.kind,
            MessageKind::Reaction {
                message_id: "wamid.OURS".into(),
                emoji: Some("👍".into())
            }
        );
        assert_eq!(added.body.as_deref(), Some("👍"));

        let removed = one(msg("reaction", json!({"message_id": "wamid.OURS"})));
        assert_eq!(
            removed.kind,
            MessageKind::Reaction {
                message_id: "wamid.OURS".into(),
                emoji: None
            }
        );
        assert_eq!(removed.kind.as_str(), "reaction");
        assert!(removed.body.is_none());
    }

    #[test]
    fn order_with_product_items() {
        let message = one(msg(
            "order",
            json!({
                "catalog_id": "194836987003835", "text": "Please deliver before noon",
                "product_items": [
                    {"product_retailer_id": "di9ozbzfi4", "quantity": 2, "item_price": 30, "currency": "USD"},
                    {"product_retailer_id": "nqryix03ez", "quantity": 1, "item_price": 25, "currency": "USD"}
                ]
            }),
        ));
        assert_eq!(message.kind, MessageKind::Order);
        assert_eq!(message.body.as_deref(), Some("Please deliver before noon"));
        assert_eq!(message.raw["product_items"].as_array().unwrap().len(), 2);
        assert_eq!(message.raw["product_items"][0]["quantity"], 2);
    }

    #[test]
    fn system_number_change_arrives_without_contacts() {
        let value = json!({
            "messaging_product": "whatsapp",
            "metadata": metadata(),
            "messages": [{
                "from": "16505551234", "id": WAMID, "timestamp": "1739321024", "type": "system",
                "system": {"body": "User Sheena Nelson changed from 16505551234 to 16505559876", "wa_id": "16505559876", "type": "user_changed_number"}
            }]
        });
        let change = &parse(&envelope(&[value])).unwrap().changes[0];
        let message = &change.messages[0];
        assert!(change.contacts.is_empty());
        assert_eq!(change.profile_for(message), None);
        assert_eq!(
            message.kind,
            MessageKind::System {
                system_type: Some("user_changed_number".into()),
                new_wa_id: Some("16505559876".into())
            }
        );
        assert_eq!(message.kind.as_str(), "system");
        assert!(message.body.as_deref().unwrap().contains("changed from"));
    }

    #[test]
    fn unsupported_carries_error_131051() {
        let mut unsupported = msg("unsupported", json!({"type": "edit"}));
        unsupported["errors"] = json!([{
            "code": 131051, "title": "Message type unknown", "message": "Message type unknown",
            "error_data": {"details": "Message type is currently not supported."}
        }]);
        let message = one(unsupported);
        assert_eq!(message.kind, MessageKind::Unsupported);
        assert_eq!(message.kind.as_str(), "unsupported");
        assert_eq!(message.raw, json!({"type": "edit"}));
        assert_eq!(
            message.errors,
            vec![ApiError {
                code: 131051,
                title: Some("Message type unknown".into()),
                message: Some("Message type unknown".into()),
                details: Some("Message type is currently not supported.".into()),
            }]
        );

        // Older payloads have no `unsupported` object: keep the whole message.
        let mut bare = msg("unsupported", Value::Null);
        bare["errors"] = json!([{"code": 131051}]);
        let message = one(bare);
        assert_eq!(message.raw["id"], WAMID);
        assert_eq!(message.errors[0].code, 131051);
    }

    #[test]
    fn unknown_type_is_kept_not_refused() {
        let message = one(msg("hologram", json!({"frames": 12})));
        assert_eq!(message.kind, MessageKind::Unknown("hologram".into()));
        assert_eq!(message.kind.as_str(), "unsupported");
        assert_eq!(message.raw["hologram"]["frames"], 12);
        assert_eq!(message.raw["id"], WAMID);
    }

    #[test]
    fn username_user_without_phone_number() {
        let value = json!({
            "messaging_product": "whatsapp",
            "metadata": metadata(),
            "contacts": [{"profile": {"name": "Maya", "username": "maya.r"}, "user_id": "US.13491208655302741918"}],
            "messages": [{
                "from_user_id": "US.13491208655302741918", "id": WAMID, "timestamp": "1767225600",
                "type": "text", "text": {"body": "hi"}
            }]
        });
        let change = &parse(&envelope(&[value])).unwrap().changes[0];
        let message = &change.messages[0];
        assert_eq!(message.from, None);
        assert_eq!(
            message.from_user_id.as_deref(),
            Some("US.13491208655302741918")
        );
        let profile = change.profile_for(message).unwrap();
        assert_eq!(profile.name.as_deref(), Some("Maya"));
        assert_eq!(profile.wa_id, None);
    }

    #[test]
    fn contacts_are_matched_by_value_not_index() {
        let value = json!({
            "metadata": metadata(),
            "contacts": [
                {"profile": {"name": "Second"}, "wa_id": "222"},
                {"profile": {"name": "First"}, "wa_id": "111"}
            ],
            "messages": [
                {"from": "111", "id": "wamid.1", "timestamp": "1", "type": "text", "text": {"body": "a"}},
                {"from": "222", "id": "wamid.2", "timestamp": "2", "type": "text", "text": {"body": "b"}},
                {"from": "333", "id": "wamid.3", "timestamp": "3", "type": "text", "text": {"body": "c"}}
            ]
        });
        let change = &parse(&envelope(&[value])).unwrap().changes[0];
        let names: Vec<_> = change
            .messages
            .iter()
            .map(|m| change.profile_for(m).and_then(|p| p.name.as_deref()))
            .collect();
        assert_eq!(names, [Some("First"), Some("Second"), None]);
    }

    #[test]
    fn statuses_with_pricing_and_errors() {
        let conversation = json!({"id": "6ceb9d929c3f2ef2d8e7a4a6ba8f1f6f", "expiration_timestamp": "1750350180", "origin": {"type": "utility"}});
        let value = json!({
            "messaging_product": "whatsapp",
            "metadata": metadata(),
            "statuses": [
                {"id": "wamid.A", "status": "sent", "timestamp": "1750263773", "recipient_id": "16505551234", "conversation": conversation},
                {"id": "wamid.A", "status": "delivered", "timestamp": "1750263774", "recipient_id": "16505551234",
                 "pricing": {"billable": true, "pricing_model": "PMP", "category": "utility", "type": "regular"}},
                {"id": "wamid.A", "status": "read", "timestamp": "1750263780", "recipient_id": "16505551234"},
                {"id": "wamid.B", "status": "failed", "timestamp": "1750263790", "recipient_id": "16505551234",
                 "errors": [{"code": 131047, "title": "Re-engagement message", "message": "Re-engagement message",
                             "error_data": {"details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."},
                             "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}]},
                {"id": "wamid.C", "status": "deleted", "timestamp": "1750263791", "recipient_user_id": "US.1"}
            ]
        });
        let change = &parse(&envelope(&[value])).unwrap().changes[0];
        assert!(change.messages.is_empty());
        let kinds: Vec<_> = change.statuses.iter().map(|s| s.status.clone()).collect();
        assert_eq!(
            kinds,
            [
                StatusKind::Sent,
                StatusKind::Delivered,
                StatusKind::Read,
                StatusKind::Failed,
                StatusKind::Other("deleted".into())
            ]
        );
        let [sent, delivered, read, failed, other] = &change.statuses[..] else {
            panic!("five statuses")
        };
        assert_eq!(
            sent.conversation.as_ref().unwrap()["origin"]["type"],
            "utility"
        );
        assert_eq!(sent.timestamp.timestamp(), 1_750_263_773);
        assert_eq!(
            delivered.pricing,
            Some(Pricing {
                billable: Some(true),
                category: Some("utility".into()),
                pricing_model: Some("PMP".into())
            })
        );
        assert!(read.pricing.is_none() && read.errors.is_empty());
        assert_eq!(read.recipient_id.as_deref(), Some("16505551234"));
        assert_eq!(failed.status.as_str(), "failed");
        assert_eq!(failed.errors[0].code, 131047);
        assert!(
            failed.errors[0]
                .details
                .as_deref()
                .unwrap()
                .contains("24 hours")
        );
        assert_eq!(other.status.as_str(), "deleted");
        assert_eq!(other.recipient_user_id.as_deref(), Some("US.1"));
    }

    #[test]
    fn batch_of_two_entries_with_two_changes_each() {
        let text = |id: &str, ts: &str| json!({"from": "16505551234", "id": id, "timestamp": ts, "type": "text", "text": {"body": id}});
        let value = |phone: &str, messages: Value| json!({"metadata": {"phone_number_id": phone}, "messages": messages});
        let body = json!({
            "object": "whatsapp_business_account",
            "entry": [
                {"id": "WABA1", "time": 1749416390, "changes": [
                    {"field": "messages", "value": value("P1", json!([text("m1", "10"), text("m2", "11")]))},
                    {"field": "messages", "value": value("P2", json!([text("m3", "12")]))}
                ]},
                {"id": "WABA2", "changes": [
                    {"field": "message_template_status_update", "value": {"event": "APPROVED", "message_template_id": 1}},
                    {"field": "messages", "value": value("P3", json!([text("m4", "9"), text("m5", "13"), text("m6", "14")]))}
                ]}
            ]
        });
        let delivery = parse(&serde_json::to_vec(&body).unwrap()).unwrap();
        assert_eq!(delivery.skipped_changes, 1);
        let phones: Vec<_> = delivery
            .changes
            .iter()
            .map(|c| c.phone_number_id.as_str())
            .collect();
        assert_eq!(phones, ["P1", "P2", "P3"]);
        let ids: Vec<_> = delivery
            .changes
            .iter()
            .flat_map(|c| c.messages.iter().map(|m| m.id.as_str()))
            .collect();
        assert_eq!(ids, ["m1", "m2", "m3", "m4", "m5", "m6"]);
        assert_eq!(delivery.changes[2].messages[0].timestamp.timestamp(), 9);
    }

    #[test]
    fn non_messages_changes_are_skipped_without_inspection() {
        let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"phone_number_quality_update","value":{"event":"FLAGGED","current_limit":"TIER_1K"}},{"field":"account_update","value":"anything"}]}]}"#;
        let delivery = parse(body).unwrap();
        assert!(delivery.changes.is_empty());
        assert_eq!(delivery.skipped_changes, 2);
    }

    #[test]
    fn empty_entry_and_integer_timestamp_are_accepted() {
        let delivery = parse(br#"{"object":"whatsapp_business_account","entry":[]}"#).unwrap();
        assert_eq!(delivery, Delivery::default());
        let mut text = msg("text", json!({"body": "x"}));
        text["timestamp"] = json!(1749416383);
        assert_eq!(one(text).timestamp.timestamp(), 1_749_416_383);
    }

    #[test]
    fn malformed_json() {
        let text = error(b"{\"object\":");
        assert!(text.starts_with("malformed JSON: "), "{text}");
        assert!(parse(b"").unwrap_err().path().is_none());
    }

    #[test]
    fn wrong_or_missing_object() {
        assert_eq!(
            error(br#"{"object":"page","entry":[]}"#),
            r#"object: expected "whatsapp_business_account", found a string ("page")"#
        );
        assert_eq!(
            error(br#"{"entry":[]}"#),
            r#"object: missing (expected "whatsapp_business_account")"#
        );
        assert_eq!(error(b"[1]"), "$: expected an object, found an array");
    }

    #[test]
    fn entry_and_changes_must_be_arrays() {
        assert_eq!(
            error(br#"{"object":"whatsapp_business_account","entry":{"id":"1"}}"#),
            "entry: expected an array, found an object"
        );
        assert_eq!(
            error(br#"{"object":"whatsapp_business_account"}"#),
            "entry: missing (expected an array)"
        );
        assert_eq!(
            error(br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":"x"}]}"#),
            r#"entry[0].changes: expected an array, found a string ("x")"#
        );
    }

    fn error_for(messages: Value) -> String {
        let mut values = vec![json!({"metadata": metadata(), "messages": []})];
        values.push(json!({"metadata": metadata(), "messages": messages}));
        let err = parse(&envelope(&values)).unwrap_err();
        assert!(err.path().is_some());
        err.to_string()
    }

    #[test]
    fn message_without_id_or_type() {
        let ok = msg("text", json!({"body": "ok"}));
        let mut no_id = ok.clone();
        no_id.as_object_mut().unwrap().remove("id");
        assert_eq!(
            error_for(json!([ok, ok, no_id])),
            "entry[0].changes[1].value.messages[2].id: missing (expected a non-empty string)"
        );
        let mut no_type = ok.clone();
        no_type.as_object_mut().unwrap().remove("type");
        assert_eq!(
            error_for(json!([no_type])),
            "entry[0].changes[1].value.messages[0].type: missing (expected a non-empty string)"
        );
    }

    #[test]
    fn timestamp_must_be_unix_seconds() {
        let with_timestamp = |ts: Value| {
            let mut m = msg("text", json!({"body": "x"}));
            m["timestamp"] = ts;
            error_for(json!([m]))
        };
        let path = "entry[0].changes[1].value.messages[0].timestamp";
        assert_eq!(
            with_timestamp(json!({"seconds": 1})),
            format!("{path}: expected a string of Unix seconds, found an object")
        );
        assert_eq!(
            with_timestamp(json!("yesterday")),
            format!(r#"{path}: expected a string of Unix seconds, found a string ("yesterday")"#)
        );
        assert_eq!(
            with_timestamp(json!(1.5)),
            format!("{path}: expected a string of Unix seconds, found a number (1.5)")
        );
        assert_eq!(
            with_timestamp(Value::Null),
            format!("{path}: expected a string of Unix seconds, found null")
        );
    }

    #[test]
    fn nested_fields_are_named_in_errors() {
        let image = msg("image", json!({"mime_type": "image/jpeg"}));
        assert_eq!(
            error_for(json!([image])),
            "entry[0].changes[1].value.messages[0].image.id: missing (expected a non-empty string)"
        );
        let mut text = msg("text", json!({"body": "x"}));
        text["errors"] = json!([{"code": "131051"}]);
        assert_eq!(
            error_for(json!([text])),
            r#"entry[0].changes[1].value.messages[0].errors[0].code: expected an integer, found a string ("131051")"#
        );
        let reaction = msg("reaction", json!({"emoji": "x", "message_id": 7}));
        assert_eq!(
            error_for(json!([reaction])),
            "entry[0].changes[1].value.messages[0].reaction.message_id: expected a non-empty string, found a number (7)"
        );
        let body = envelope(&[json!({"metadata": {"display_phone_number": "1"}})]);
        assert_eq!(
            error(&body),
            "entry[0].changes[0].value.metadata.phone_number_id: missing (expected a non-empty string)"
        );
    }

    #[test]
    fn long_strings_are_cut_in_errors() {
        let long = "x".repeat(100);
        let body = format!(r#"{{"object":"{long}"}}"#);
        let text = error(body.as_bytes());
        assert!(
            text.ends_with(&format!("found a string (\"{}\"…)", "x".repeat(40))),
            "{text}"
        );
    }
}
