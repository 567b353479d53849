//! Outbound messaging: `sendMessage`, canned responses and the billing report.

use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object, Result};
use chrono::{DateTime, Utc};
use domain::billing::{BillingFilter, BillingReport, BillingTotals, Granularity, MICROS_PER_USD};
use domain::canned_responses::CannedResponseInput;
use domain::outbound::MessageForSend;
use domain::outbound::content::{
    ContentInput, InteractiveInput as DomainInteractive, ListAction, ListRow, ListSection, Media,
    MediaKind as DomainMediaKind, ReplyButton, Template,
};
use entity::canned_response;

use super::context::{ContextExt, parse_id};
use super::error::IntoGql;
use super::types::Message;

/// Kinds of media sent by link, with Meta's limits: IMAGE jpeg/png ≤ 5 MB,
/// VIDEO mp4/3gpp ≤ 16 MB, AUDIO aac/amr/mpeg/mp4/ogg ≤ 16 MB, DOCUMENT
/// (text, PDF, Office) ≤ 100 MB, STICKER webp ≤ 100 KB (500 KB animated).
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum MediaKind {
    Image,
    Video,
    Audio,
    Document,
    Sticker,
}

impl From<MediaKind> for DomainMediaKind {
    fn from(k: MediaKind) -> Self {
        match k {
            MediaKind::Image => Self::Image,
            MediaKind::Video => Self::Video,
            MediaKind::Audio => Self::Audio,
            MediaKind::Document => Self::Document,
            MediaKind::Sticker => Self::Sticker,
        }
    }
}

/// Media Meta fetches from `link`. The declared size and mime type are checked
/// against Meta's limits before anything is queued.
#[derive(InputObject)]
pub struct MediaInput {
    kind: MediaKind,
    /// An http(s) URL Meta can download.
    link: String,
    mime_type: String,
    size_bytes: i64,
    /// Images, videos and documents only; at most 1,024 characters.
    caption: Option<String>,
    /// Documents only.
    filename: Option<String>,
    /// Animated stickers may be up to 500 KB.
    #[graphql(default)]
    animated: bool,
}

/// A reply button: id at most 256 characters (unique), title at most 20.
#[derive(InputObject)]
pub struct ReplyButtonInput {
    id: String,
    title: String,
}

/// A list row: title at most 24 characters, description at most 72.
#[derive(InputObject)]
pub struct ListRowInput {
    id: String,
    title: String,
    description: Option<String>,
}

#[derive(InputObject)]
pub struct ListSectionInput {
    /// Required when there are several sections; at most 24 characters.
    title: Option<String>,
    rows: Vec<ListRowInput>,
}

/// A list message: at most 10 rows in total.
#[derive(InputObject)]
pub struct ListInput {
    /// The label of the button that opens the list, at most 20 characters.
    button: String,
    sections: Vec<ListSectionInput>,
}

/// Reply buttons (1–3) or a list; the body is at most 1,024 characters.
#[derive(InputObject)]
pub struct InteractiveInput {
    header: Option<String>,
    body: String,
    footer: Option<String>,
    buttons: Option<Vec<ReplyButtonInput>>,
    list: Option<ListInput>,
}

/// An approved template: the only kind allowed outside the 24 h window.
#[derive(InputObject)]
pub struct TemplateInput {
    /// The template's name as approved by Meta.
    name: String,
    /// Language code, e.g. `en_US` or `it`.
    language: String,
    /// Values of the body's `{{1}}`, `{{2}}`… in order.
    #[graphql(default)]
    parameters: Vec<String>,
}

/// Exactly one of `text`, `media`, `interactive`, `template` or
/// `cannedResponseId`. A `text` that is exactly `/shortcut` sends that canned
/// response.
#[derive(InputObject)]
pub struct SendMessageInput {
    conversation_id: ID,
    /// At most 4,096 characters.
    text: Option<String>,
    /// Let WhatsApp show a preview of the first URL in `text`.
    preview_url: Option<bool>,
    media: Option<MediaInput>,
    interactive: Option<InteractiveInput>,
    template: Option<TemplateInput>,
    /// Sends this canned response with its placeholders (`{{name}}`,
    /// `{{conversation}}`, `{{sla_target}}`, live variables) filled in.
    canned_response_id: Option<ID>,
    /// The message being answered (shown quoted on the customer's phone).
    reply_to: Option<ID>,
}

impl SendMessageInput {
    fn into_domain(self) -> Result<(i64, MessageForSend)> {
        let conversation_id = parse_id(&self.conversation_id, "conversationId")?;
        let canned_response_id = self
            .canned_response_id
            .map(|id| parse_id(&id, "cannedResponseId"))
            .transpose()?;
        let reply_to = self
            .reply_to
            .map(|id| parse_id(&id, "replyTo"))
            .transpose()?;
        let content = ContentInput {
            text: self.text,
            preview_url: self.preview_url,
            media: self.media.map(|m| Media {
                kind: m.kind.into(),
                link: m.link,
                mime_type: m.mime_type,
                size_bytes: m.size_bytes,
                caption: m.caption,
                filename: m.filename,
                animated: m.animated,
            }),
            interactive: self.interactive.map(|i| DomainInteractive {
                header: i.header,
                body: i.body,
                footer: i.footer,
                buttons: i.buttons.map(|bs| {
                    bs.into_iter()
                        .map(|b| ReplyButton {
                            id: b.id,
                            title: b.title,
                        })
                        .collect()
                }),
                list: i.list.map(|l| ListAction {
                    button: l.button,
                    sections: l
                        .sections
                        .into_iter()
                        .map(|s| ListSection {
                            title: s.title,
                            rows: s
                                .rows
                                .into_iter()
                                .map(|r| ListRow {
                                    id: r.id,
                                    title: r.title,
                                    description: r.description,
                                })
                                .collect(),
                        })
                        .collect(),
                }),
            }),
            template: self.template.map(|t| Template {
                name: t.name,
                language: t.language,
                parameters: t.parameters,
            }),
        };
        Ok((
            conversation_id,
            MessageForSend {
                content,
                canned_response_id,
                reply_to,
            },
        ))
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Default)]
pub enum BillingGranularity {
    Day,
    #[default]
    Month,
}

/// Message costs over a period. Money in micro-USD (1 USD = 1,000,000) and,
/// for display, in USD.
#[derive(Clone, Copy)]
pub struct BillingSummary(BillingTotals);

fn usd(micros: i64) -> f64 {
    micros as f64 / MICROS_PER_USD
}

#[Object(name = "BillingTotals")]
impl BillingSummary {
    /// Messages sent.
    async fn messages(&self) -> i64 {
        self.0.messages
    }
    /// Messages within the monthly free allowance.
    async fn free(&self) -> i64 {
        self.0.free
    }
    /// Messages charged at the region's price.
    async fn billable(&self) -> i64 {
        self.0.billable()
    }
    async fn base_micros(&self) -> i64 {
        self.0.base_micros
    }
    /// Surcharges for messages sent beyond the 48 h billing window.
    async fn surcharge_micros(&self) -> i64 {
        self.0.surcharge_micros
    }
    async fn total_micros(&self) -> i64 {
        self.0.total_micros
    }
    async fn base_usd(&self) -> f64 {
        usd(self.0.base_micros)
    }
    async fn surcharge_usd(&self) -> f64 {
        usd(self.0.surcharge_micros)
    }
    async fn total_usd(&self) -> f64 {
        usd(self.0.total_micros)
    }
}

pub struct BillingPeriod(domain::billing::BillingPeriod);

#[Object]
impl BillingPeriod {
    /// `YYYY-MM-DD` (DAY) or `YYYY-MM` (MONTH), in UTC.
    async fn period(&self) -> &str {
        &self.0.period
    }
    async fn start(&self) -> DateTime<Utc> {
        self.0.start
    }
    async fn totals(&self) -> BillingSummary {
        BillingSummary(self.0.totals)
    }
}

pub struct Billing(pub BillingReport);

#[Object]
impl Billing {
    async fn totals(&self) -> BillingSummary {
        BillingSummary(self.0.totals)
    }
    /// One entry per day or month that has messages, oldest first.
    async fn periods(&self) -> Vec<BillingPeriod> {
        self.0.periods.iter().cloned().map(BillingPeriod).collect()
    }
}

pub struct CannedResponse(pub canned_response::Model);

#[Object]
impl CannedResponse {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Typed as `/shortcut` in `sendMessage`'s text.
    async fn shortcut(&self) -> &str {
        &self.0.shortcut
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    /// May contain `{{name}}`, `{{conversation}}`, `{{sla_target}}` and live variables.
    async fn body(&self) -> &str {
        &self.0.body
    }
    async fn department_id(&self) -> Option<ID> {
        self.0.department_id.map(|d| ID(d.to_string()))
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

#[derive(InputObject)]
pub struct CannedResponseCreateInput {
    /// Letters, digits, `-` or `_`, at most 32 (a leading `/` is ignored).
    shortcut: String,
    title: String,
    /// At most 4,096 characters.
    body: String,
    department_id: Option<ID>,
}

#[derive(InputObject)]
pub struct CannedResponseUpdateInput {
    shortcut: Option<String>,
    title: Option<String>,
    body: Option<String>,
    /// `null` clears the department.
    department_id: MaybeUndefined<ID>,
}

#[derive(Default)]
pub struct MessagingQuery;

#[Object]
impl MessagingQuery {
    /// Message cost per day or month (Admin, Editor, Analyst), from the
    /// billing ledger: `from` inclusive, `to` exclusive.
    async fn billing(
        &self,
        ctx: &Context<'_>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        channel_id: Option<ID>,
        conversation_id: Option<ID>,
        #[graphql(desc = "MONTH when omitted")] granularity: Option<BillingGranularity>,
    ) -> Result<Billing> {
        let filter = BillingFilter {
            from,
            to,
            channel_id: channel_id
                .map(|id| parse_id(&id, "channelId"))
                .transpose()?,
            conversation_id: conversation_id
                .map(|id| parse_id(&id, "conversationId"))
                .transpose()?,
            granularity: match granularity.unwrap_or_default() {
                BillingGranularity::Day => Granularity::Day,
                BillingGranularity::Month => Granularity::Month,
            },
        };
        Ok(Billing(
            ctx.domain().billing(ctx.actor()?, filter).await.gql()?,
        ))
    }

    /// Canned responses, by shortcut; `search` matches shortcut, title or body.
    async fn canned_responses(
        &self,
        ctx: &Context<'_>,
        search: Option<String>,
    ) -> Result<Vec<CannedResponse>> {
        let rows = ctx
            .domain()
            .canned_responses(ctx.actor()?, search.as_deref())
            .await
            .gql()?;
        Ok(rows.into_iter().map(CannedResponse).collect())
    }
}

#[derive(Default)]
pub struct MessagingMutation;

#[Object]
impl MessagingMutation {
    /// Queues a reply to the customer; the outbox sends it to WhatsApp and the
    /// message's `status` follows (QUEUED → SENT → DELIVERED → READ, or FAILED
    /// with `errorCode`/`errorTitle`). Errors: `BAD_USER_INPUT` naming the
    /// field, `OUTSIDE_WINDOW` for a free-form message more than 24 h after
    /// the customer's last message (send a template), `RATE_LIMITED` with
    /// `retryAfterSeconds` beyond 5 messages a minute to a new customer,
    /// `CONFLICT` when someone else holds the conversation's lock.
    async fn send_message(&self, ctx: &Context<'_>, input: SendMessageInput) -> Result<Message> {
        let (conversation_id, message) = input.into_domain()?;
        Ok(Message(
            ctx.domain()
                .send_message(ctx.actor()?, conversation_id, message)
                .await
                .gql()?,
        ))
    }

    async fn create_canned_response(
        &self,
        ctx: &Context<'_>,
        input: CannedResponseCreateInput,
    ) -> Result<CannedResponse> {
        let department_id = input
            .department_id
            .map(|id| parse_id(&id, "departmentId"))
            .transpose()?;
        let input = CannedResponseInput {
            shortcut: Some(input.shortcut),
            title: Some(input.title),
            body: Some(input.body),
            department_id: Some(department_id),
        };
        Ok(CannedResponse(
            ctx.domain()
                .create_canned_response(ctx.actor()?, input)
                .await
                .gql()?,
        ))
    }

    async fn update_canned_response(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: CannedResponseUpdateInput,
    ) -> Result<CannedResponse> {
        let id = parse_id(&id, "id")?;
        let department_id = match input.department_id {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(d) => Some(Some(parse_id(&d, "departmentId")?)),
        };
        let input = CannedResponseInput {
            shortcut: input.shortcut,
            title: input.title,
            body: input.body,
            department_id,
        };
        Ok(CannedResponse(
            ctx.domain()
                .update_canned_response(ctx.actor()?, id, input)
                .await
                .gql()?,
        ))
    }

    async fn delete_canned_response(&self, ctx: &Context<'_>, id: ID) -> Result<CannedResponse> {
        let id = parse_id(&id, "id")?;
        Ok(CannedResponse(
            ctx.domain()
                .delete_canned_response(ctx.actor()?, id)
                .await
                .gql()?,
        ))
    }
}
