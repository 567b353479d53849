//! What an agent may send, parsed against WhatsApp's limits before anything is
//! stored: a refused message says which field and why. The parsed
//! [`OutboundContent`] is kept as the message's `payload` (our own tagged JSON)
//! and turned into the Graph API's wire format by the api's client.

use entity::MessageType;
use serde::{Deserialize, Serialize};

use crate::{DomainError, Result};

pub const MAX_TEXT_CHARS: usize = 4096;
pub const MAX_CAPTION_CHARS: usize = 1024;
pub const MAX_FILENAME_CHARS: usize = 240;
pub const MAX_LINK_CHARS: usize = 2048;
pub const MAX_INTERACTIVE_BODY_CHARS: usize = 1024;
pub const MAX_HEADER_CHARS: usize = 60;
pub const MAX_FOOTER_CHARS: usize = 60;
pub const MAX_BUTTONS: usize = 3;
pub const MAX_BUTTON_TITLE_CHARS: usize = 20;
pub const MAX_BUTTON_ID_CHARS: usize = 256;
pub const MAX_LIST_ROWS: usize = 10;
pub const MAX_LIST_SECTIONS: usize = 10;
pub const MAX_SECTION_TITLE_CHARS: usize = 24;
pub const MAX_ROW_ID_CHARS: usize = 200;
pub const MAX_ROW_TITLE_CHARS: usize = 24;
pub const MAX_ROW_DESCRIPTION_CHARS: usize = 72;
pub const MAX_LIST_BUTTON_CHARS: usize = 20;
pub const MAX_TEMPLATE_NAME_CHARS: usize = 512;
pub const MAX_TEMPLATE_PARAMETERS: usize = 20;
pub const MAX_TEMPLATE_PARAMETER_CHARS: usize = 1024;

const KIB: i64 = 1024;
const MIB: i64 = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    Image,
    Video,
    Audio,
    Document,
    Sticker,
}

impl MediaKind {
    /// Meta's size limit in bytes (MiB), for the declared size.
    pub fn max_bytes(self, animated: bool) -> i64 {
        match self {
            Self::Image => 5 * MIB,
            Self::Video | Self::Audio => 16 * MIB,
            Self::Document => 100 * MIB,
            Self::Sticker if animated => 500 * KIB,
            Self::Sticker => 100 * KIB,
        }
    }

    /// Whether Meta accepts this (lower-case, parameter-free) mime type.
    pub fn accepts(self, mime: &str) -> bool {
        match self {
            Self::Image => matches!(mime, "image/jpeg" | "image/png"),
            Self::Video => matches!(mime, "video/mp4" | "video/3gpp"),
            Self::Audio => matches!(
                mime,
                "audio/aac" | "audio/amr" | "audio/mpeg" | "audio/mp4" | "audio/ogg"
            ),
            Self::Document => {
                matches!(
                    mime,
                    "text/plain" | "application/pdf" | "application/msword"
                ) || mime.starts_with("application/vnd.ms-")
                    || mime.starts_with("application/vnd.openxmlformats-officedocument.")
            }
            Self::Sticker => mime == "image/webp",
        }
    }

    fn accepted(self) -> &'static str {
        match self {
            Self::Image => "image/jpeg or image/png",
            Self::Video => "video/mp4 or video/3gpp",
            Self::Audio => "audio/aac, audio/amr, audio/mpeg, audio/mp4 or audio/ogg",
            Self::Document => "text/plain, PDF or Microsoft Office",
            Self::Sticker => "image/webp",
        }
    }

    fn has_caption(self) -> bool {
        matches!(self, Self::Image | Self::Video | Self::Document)
    }

    pub fn message_type(self) -> MessageType {
        match self {
            Self::Image => MessageType::Image,
            Self::Video => MessageType::Video,
            Self::Audio => MessageType::Audio,
            Self::Document => MessageType::Document,
            Self::Sticker => MessageType::Sticker,
        }
    }
}

/// Media sent by link; the size and mime type are the sender's declaration,
/// checked here so that Meta's refusal never reaches the customer as silence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Media {
    pub kind: MediaKind,
    pub link: String,
    pub mime_type: String,
    pub size_bytes: i64,
    pub caption: Option<String>,
    pub filename: Option<String>,
    #[serde(default)]
    pub animated: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplyButton {
    pub id: String,
    pub title: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListRow {
    pub id: String,
    pub title: String,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListSection {
    pub title: Option<String>,
    pub rows: Vec<ListRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListAction {
    /// The label of the button that opens the list.
    pub button: String,
    pub sections: Vec<ListSection>,
}

/// Interactive input: reply buttons or a list, never both.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InteractiveInput {
    pub header: Option<String>,
    pub body: String,
    pub footer: Option<String>,
    pub buttons: Option<Vec<ReplyButton>>,
    pub list: Option<ListAction>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Template {
    pub name: String,
    /// A language code such as `en_US` or `it`.
    pub language: String,
    /// Values of the body's `{{1}}`, `{{2}}`… in order.
    #[serde(default)]
    pub parameters: Vec<String>,
}

/// A message that passed every check. Stored as the message's `payload`,
/// tagged by `type`, and read back by the outbox worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutboundContent {
    Text {
        body: String,
        preview_url: bool,
    },
    Media(Media),
    Buttons {
        header: Option<String>,
        body: String,
        footer: Option<String>,
        buttons: Vec<ReplyButton>,
    },
    List {
        header: Option<String>,
        body: String,
        footer: Option<String>,
        action: ListAction,
    },
    Template(Template),
}

/// The raw request: exactly one of text, media, interactive or template.
#[derive(Debug, Clone, Default)]
pub struct ContentInput {
    pub text: Option<String>,
    pub preview_url: Option<bool>,
    pub media: Option<Media>,
    pub interactive: Option<InteractiveInput>,
    pub template: Option<Template>,
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// A required text of 1..=max characters (after trimming).
fn required(field: &str, value: &str, max: usize) -> Result<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    let n = chars(v);
    if n > max {
        return Err(DomainError::invalid(
            field,
            format!("at most {max} characters (got {n})"),
        ));
    }
    Ok(v.to_string())
}

/// An optional text: empty means absent.
fn optional(field: &str, value: Option<&str>, max: usize) -> Result<Option<String>> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => required(field, v, max).map(Some),
    }
}

impl ContentInput {
    pub fn parse(self) -> Result<OutboundContent> {
        let given = [
            self.text.is_some(),
            self.media.is_some(),
            self.interactive.is_some(),
            self.template.is_some(),
        ]
        .into_iter()
        .filter(|g| *g)
        .count();
        if given != 1 {
            return Err(DomainError::invalid(
                "input",
                "give exactly one of text, media, interactive, template or cannedResponseId",
            ));
        }
        if let Some(text) = self.text {
            return parse_text(&text, self.preview_url);
        }
        if let Some(media) = self.media {
            return parse_media(media).map(OutboundContent::Media);
        }
        if let Some(interactive) = self.interactive {
            return parse_interactive(interactive);
        }
        match self.template {
            Some(template) => parse_template(template).map(OutboundContent::Template),
            None => Err(DomainError::invalid("input", "nothing to send")),
        }
    }
}

fn parse_text(text: &str, preview_url: Option<bool>) -> Result<OutboundContent> {
    if text.trim().is_empty() {
        return Err(DomainError::invalid("text", "must not be empty"));
    }
    let n = chars(text);
    if n > MAX_TEXT_CHARS {
        return Err(DomainError::invalid(
            "text",
            format!("at most {MAX_TEXT_CHARS} characters (got {n})"),
        ));
    }
    Ok(OutboundContent::Text {
        body: text.to_string(),
        preview_url: preview_url.unwrap_or(false),
    })
}

fn parse_media(m: Media) -> Result<Media> {
    let link = m.link.trim().to_string();
    let scheme_ok = link.starts_with("https://") || link.starts_with("http://");
    if !scheme_ok || link.contains(char::is_whitespace) || chars(&link) > MAX_LINK_CHARS {
        return Err(DomainError::invalid(
            "media.link",
            "must be an http(s) URL Meta can fetch",
        ));
    }
    let mime = m
        .mime_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if !m.kind.accepts(&mime) {
        return Err(DomainError::invalid(
            "media.mimeType",
            format!(
                "{} is not accepted for {:?}: use {}",
                m.mime_type,
                m.kind,
                m.kind.accepted()
            ),
        ));
    }
    let max = m.kind.max_bytes(m.animated);
    if m.size_bytes <= 0 {
        return Err(DomainError::invalid("media.sizeBytes", "must be positive"));
    }
    if m.size_bytes > max {
        return Err(DomainError::invalid(
            "media.sizeBytes",
            format!(
                "{:?} is at most {} bytes ({}), got {}",
                m.kind,
                max,
                human(max),
                m.size_bytes
            ),
        ));
    }
    let caption = optional("media.caption", m.caption.as_deref(), MAX_CAPTION_CHARS)?;
    if caption.is_some() && !m.kind.has_caption() {
        return Err(DomainError::invalid(
            "media.caption",
            format!("{:?} messages have no caption", m.kind),
        ));
    }
    let filename = optional("media.filename", m.filename.as_deref(), MAX_FILENAME_CHARS)?;
    if filename.is_some() && m.kind != MediaKind::Document {
        return Err(DomainError::invalid(
            "media.filename",
            "only documents have a file name",
        ));
    }
    Ok(Media {
        kind: m.kind,
        link,
        mime_type: mime,
        size_bytes: m.size_bytes,
        caption,
        filename,
        animated: m.animated && m.kind == MediaKind::Sticker,
    })
}

fn human(bytes: i64) -> String {
    if bytes >= MIB {
        format!("{} MB", bytes / MIB)
    } else {
        format!("{} KB", bytes / KIB)
    }
}

fn parse_interactive(i: InteractiveInput) -> Result<OutboundContent> {
    let body = required("interactive.body", &i.body, MAX_INTERACTIVE_BODY_CHARS)?;
    let header = optional("interactive.header", i.header.as_deref(), MAX_HEADER_CHARS)?;
    let footer = optional("interactive.footer", i.footer.as_deref(), MAX_FOOTER_CHARS)?;
    match (i.buttons, i.list) {
        (Some(buttons), None) => Ok(OutboundContent::Buttons {
            header,
            body,
            footer,
            buttons: parse_buttons(buttons)?,
        }),
        (None, Some(list)) => Ok(OutboundContent::List {
            header,
            body,
            footer,
            action: parse_list(list)?,
        }),
        _ => Err(DomainError::invalid(
            "interactive",
            "give either buttons or a list",
        )),
    }
}

fn parse_buttons(buttons: Vec<ReplyButton>) -> Result<Vec<ReplyButton>> {
    if buttons.is_empty() || buttons.len() > MAX_BUTTONS {
        return Err(DomainError::invalid(
            "interactive.buttons",
            format!("1 to {MAX_BUTTONS} reply buttons (got {})", buttons.len()),
        ));
    }
    let mut out: Vec<ReplyButton> = Vec::with_capacity(buttons.len());
    for b in buttons {
        let id = required("interactive.buttons.id", &b.id, MAX_BUTTON_ID_CHARS)?;
        let title = required(
            "interactive.buttons.title",
            &b.title,
            MAX_BUTTON_TITLE_CHARS,
        )?;
        if out.iter().any(|o| o.id == id) {
            return Err(DomainError::invalid(
                "interactive.buttons.id",
                format!("button ids must be unique ({id} is repeated)"),
            ));
        }
        if out.iter().any(|o| o.title == title) {
            return Err(DomainError::invalid(
                "interactive.buttons.title",
                format!("button titles must be unique ({title} is repeated)"),
            ));
        }
        out.push(ReplyButton { id, title });
    }
    Ok(out)
}

fn parse_list(list: ListAction) -> Result<ListAction> {
    let button = required(
        "interactive.list.button",
        &list.button,
        MAX_LIST_BUTTON_CHARS,
    )?;
    let rows: usize = list.sections.iter().map(|s| s.rows.len()).sum();
    if list.sections.is_empty() || list.sections.len() > MAX_LIST_SECTIONS {
        return Err(DomainError::invalid(
            "interactive.list.sections",
            format!("1 to {MAX_LIST_SECTIONS} sections"),
        ));
    }
    if rows == 0 || rows > MAX_LIST_ROWS {
        return Err(DomainError::invalid(
            "interactive.list.rows",
            format!("1 to {MAX_LIST_ROWS} rows in total (got {rows})"),
        ));
    }
    let several = list.sections.len() > 1;
    let mut ids: Vec<String> = Vec::with_capacity(rows);
    let mut sections = Vec::with_capacity(list.sections.len());
    for s in list.sections {
        let title = optional(
            "interactive.list.sections.title",
            s.title.as_deref(),
            MAX_SECTION_TITLE_CHARS,
        )?;
        if several && title.is_none() {
            return Err(DomainError::invalid(
                "interactive.list.sections.title",
                "every section needs a title when there are several",
            ));
        }
        if s.rows.is_empty() {
            return Err(DomainError::invalid(
                "interactive.list.rows",
                "a section needs at least one row",
            ));
        }
        let mut out_rows = Vec::with_capacity(s.rows.len());
        for r in s.rows {
            let id = required("interactive.list.rows.id", &r.id, MAX_ROW_ID_CHARS)?;
            if ids.contains(&id) {
                return Err(DomainError::invalid(
                    "interactive.list.rows.id",
                    format!("row ids must be unique ({id} is repeated)"),
                ));
            }
            ids.push(id.clone());
            out_rows.push(ListRow {
                id,
                title: required("interactive.list.rows.title", &r.title, MAX_ROW_TITLE_CHARS)?,
                description: optional(
                    "interactive.list.rows.description",
                    r.description.as_deref(),
                    MAX_ROW_DESCRIPTION_CHARS,
                )?,
            });
        }
        sections.push(ListSection {
            title,
            rows: out_rows,
        });
    }
    Ok(ListAction { button, sections })
}

fn parse_template(t: Template) -> Result<Template> {
    let name = required("template.name", &t.name, MAX_TEMPLATE_NAME_CHARS)?;
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(DomainError::invalid(
            "template.name",
            "lower-case letters, digits and underscores, as approved by Meta",
        ));
    }
    let language = t.language.trim().to_string();
    if !valid_language(&language) {
        return Err(DomainError::invalid(
            "template.language",
            "a language code such as en, en_US or pt_BR",
        ));
    }
    if t.parameters.len() > MAX_TEMPLATE_PARAMETERS {
        return Err(DomainError::invalid(
            "template.parameters",
            format!("at most {MAX_TEMPLATE_PARAMETERS} parameters"),
        ));
    }
    let parameters = t
        .parameters
        .iter()
        .map(|p| required("template.parameters", p, MAX_TEMPLATE_PARAMETER_CHARS))
        .collect::<Result<Vec<_>>>()?;
    Ok(Template {
        name,
        language,
        parameters,
    })
}

/// `ll`, `lll`, `ll_RR` (Meta's template language codes).
fn valid_language(code: &str) -> bool {
    let (lang, region) = match code.split_once('_') {
        Some((l, r)) => (l, Some(r)),
        None => (code, None),
    };
    let lang_ok = (2..=3).contains(&lang.len()) && lang.chars().all(|c| c.is_ascii_lowercase());
    let region_ok = region
        .is_none_or(|r| (2..=4).contains(&r.len()) && r.chars().all(|c| c.is_ascii_alphanumeric()));
    lang_ok && region_ok
}

impl OutboundContent {
    pub fn is_template(&self) -> bool {
        matches!(self, Self::Template(_))
    }

    pub fn message_type(&self) -> MessageType {
        match self {
            Self::Text { .. } => MessageType::Text,
            Self::Media(m) => m.kind.message_type(),
            Self::Buttons { .. } | Self::List { .. } => MessageType::Interactive,
            Self::Template(_) => MessageType::Template,
        }
    }

    /// The readable text stored as the message body (searchable, counted in
    /// agent-text metrics): the text, caption or interactive body.
    pub fn body_text(&self) -> Option<String> {
        match self {
            Self::Text { body, .. } => Some(body.clone()),
            Self::Media(m) => m.caption.clone(),
            Self::Buttons { body, .. } | Self::List { body, .. } => Some(body.clone()),
            Self::Template(_) => None,
        }
    }

    /// Media metadata for the message's `media` column.
    pub fn media_json(&self) -> Option<serde_json::Value> {
        match self {
            Self::Media(m) => Some(serde_json::json!({
                "link": m.link,
                "mimeType": m.mime_type,
                "sizeBytes": m.size_bytes,
                "caption": m.caption,
                "filename": m.filename,
            })),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(r: Result<OutboundContent>) -> String {
        match r {
            Err(DomainError::InvalidInput { field, .. }) => field,
            other => panic!("expected invalid input, got {other:?}"),
        }
    }

    fn text(t: &str) -> ContentInput {
        ContentInput {
            text: Some(t.into()),
            ..Default::default()
        }
    }

    fn media(kind: MediaKind, mime: &str, size: i64) -> ContentInput {
        ContentInput {
            media: Some(Media {
                kind,
                link: "https://cdn.example/f".into(),
                mime_type: mime.into(),
                size_bytes: size,
                caption: None,
                filename: None,
                animated: false,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_text_longer_than_4096_characters_is_rejected() {
        assert!(text(&"é".repeat(4096)).parse().is_ok());
        assert_eq!(field_of(text(&"é".repeat(4097)).parse()), "text");
        assert_eq!(field_of(text("  ").parse()), "text");
    }

    #[test]
    fn media_limits_follow_meta() {
        assert!(
            media(MediaKind::Video, "video/mp4", 16 * MIB)
                .parse()
                .is_ok()
        );
        let too_big = media(MediaKind::Video, "video/mp4", 16 * MIB + 1).parse();
        assert_eq!(field_of(too_big), "media.sizeBytes");
        assert!(
            media(MediaKind::Image, "image/png", 5 * MIB)
                .parse()
                .is_ok()
        );
        let image = media(MediaKind::Image, "image/jpeg", 5 * MIB + 1).parse();
        assert_eq!(field_of(image), "media.sizeBytes");
        let gif = media(MediaKind::Image, "image/gif", 10).parse();
        assert_eq!(field_of(gif), "media.mimeType");
        let sticker = media(MediaKind::Sticker, "image/webp", 100 * KIB + 1).parse();
        assert_eq!(field_of(sticker), "media.sizeBytes");
        let opus = media(MediaKind::Audio, "audio/ogg; codecs=opus", 1000).parse();
        assert!(opus.is_ok());
    }

    #[test]
    fn reply_buttons_are_at_most_three_with_unique_ids() {
        let b = |id: &str, title: &str| ReplyButton {
            id: id.into(),
            title: title.into(),
        };
        let input = |buttons| ContentInput {
            interactive: Some(InteractiveInput {
                body: "Choose".into(),
                buttons: Some(buttons),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(
            input(vec![b("a", "Buy now"), b("b", "Check stock")])
                .parse()
                .is_ok()
        );
        let four = vec![b("a", "A"), b("b", "B"), b("c", "C"), b("d", "D")];
        assert_eq!(field_of(input(four).parse()), "interactive.buttons");
        let same = vec![b("a", "A"), b("a", "B")];
        assert_eq!(field_of(input(same).parse()), "interactive.buttons.id");
        let long = vec![b("a", &"x".repeat(21))];
        assert_eq!(field_of(input(long).parse()), "interactive.buttons.title");
    }

    #[test]
    fn exactly_one_kind_of_content() {
        assert_eq!(field_of(ContentInput::default().parse()), "input");
        let mut both = text("hi");
        both.template = Some(Template {
            name: "hello".into(),
            language: "en".into(),
            parameters: vec![],
        });
        assert_eq!(field_of(both.parse()), "input");
    }

    #[test]
    fn every_kind_survives_the_payload_round_trip() {
        let kinds = [
            text("hi").parse().unwrap(),
            media(MediaKind::Video, "video/mp4", 10).parse().unwrap(),
            ContentInput {
                template: Some(Template {
                    name: "hello".into(),
                    language: "en".into(),
                    parameters: vec!["x".into()],
                }),
                ..Default::default()
            }
            .parse()
            .unwrap(),
        ];
        for c in kinds {
            let json = serde_json::to_value(&c).unwrap();
            let back: OutboundContent = serde_json::from_value(json).unwrap();
            assert_eq!(back, c);
        }
    }

    #[test]
    fn template_language_codes() {
        assert!(valid_language("en"));
        assert!(valid_language("en_US"));
        assert!(valid_language("pt_BR"));
        assert!(!valid_language("english"));
        assert!(!valid_language(""));
    }
}
