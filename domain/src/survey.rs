//! Satisfaction surveys: when a conversation is resolved the customer gets a
//! CSAT question (1–5, as a WhatsApp list of five choices: reply buttons stop
//! at three) and, when configured, an NPS question (0–10) once CSAT is
//! answered. One survey of each kind per resolution (`round` is the
//! conversation's reopen count). An answer — the list choice, or free text
//! such as "5", "4/5", "cinq", "cinque" or "⭐⭐⭐⭐⭐" — is recorded on the
//! survey (with the agent who handled the conversation) and on the
//! conversation. Unanswered surveys expire after `survey_expiry` (default
//! 24 h) and take no more answers; a message that is not an answer opens a
//! new conversation as usual.

use chrono::{DateTime, Duration, Utc};
use entity::{
    ConversationStatus, MessageType, SurveyKind, SurveyStatus, contact, conversation, survey,
};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, Set,
};
use serde_json::Value;

use crate::autoreply::engine::Automated;
use crate::events::{EventPayload, Scope};
use crate::keywords::Words;
use crate::outbound::automated::{self, Origin};
use crate::outbound::content::{ContentInput, InteractiveInput, ListAction, ListRow, ListSection};
use crate::{Actor, Capability, Domain, Result, window};

/// Survey settings; defaults in the api's config.
#[derive(Debug, Clone)]
pub struct SurveyConfig {
    /// Send a CSAT survey when a conversation is resolved.
    pub csat: bool,
    /// Ask NPS after the CSAT answer.
    pub nps: bool,
    /// Unanswered surveys expire after this long.
    pub expiry: Duration,
}

impl Default for SurveyConfig {
    fn default() -> Self {
        Self {
            csat: true,
            nps: false,
            expiry: Duration::hours(24),
        }
    }
}

const NUMBER_WORDS: &[(&str, i32)] = &[
    ("zero", 0),
    ("cero", 0),
    ("one", 1),
    ("un", 1),
    ("une", 1),
    ("uno", 1),
    ("una", 1),
    ("um", 1),
    ("uma", 1),
    ("two", 2),
    ("deux", 2),
    ("due", 2),
    ("dos", 2),
    ("dois", 2),
    ("duas", 2),
    ("three", 3),
    ("trois", 3),
    ("tre", 3),
    ("tres", 3),
    ("four", 4),
    ("quatre", 4),
    ("quattro", 4),
    ("cuatro", 4),
    ("quatro", 4),
    ("five", 5),
    ("cinq", 5),
    ("cinque", 5),
    ("cinco", 5),
    ("six", 6),
    ("sei", 6),
    ("seis", 6),
    ("seven", 7),
    ("sept", 7),
    ("sette", 7),
    ("siete", 7),
    ("sete", 7),
    ("eight", 8),
    ("huit", 8),
    ("otto", 8),
    ("ocho", 8),
    ("oito", 8),
    ("nine", 9),
    ("neuf", 9),
    ("nove", 9),
    ("nueve", 9),
    ("ten", 10),
    ("dix", 10),
    ("dieci", 10),
    ("diez", 10),
    ("dez", 10),
];

fn range(kind: SurveyKind) -> std::ops::RangeInclusive<i32> {
    match kind {
        SurveyKind::Csat => 1..=5,
        SurveyKind::Nps => 0..=10,
    }
}

fn prefix(kind: SurveyKind) -> &'static str {
    match kind {
        SurveyKind::Csat => "csat:",
        SurveyKind::Nps => "nps:",
    }
}

/// The score an answer gives, if it is one.
pub fn parse_score(kind: SurveyKind, text: &str, chosen: Option<&str>) -> Option<i32> {
    let valid = |n: i32| range(kind).contains(&n).then_some(n);
    if let Some(id) = chosen
        && let Some(n) = id.strip_prefix(prefix(kind))
    {
        return n.parse().ok().and_then(valid);
    }
    let t = text.trim();
    let stars = t.chars().filter(|c| matches!(c, '⭐' | '★' | '🌟')).count();
    if stars > 0
        && t.chars()
            .all(|c| matches!(c, '⭐' | '★' | '🌟' | '\u{fe0f}') || c.is_whitespace())
    {
        return i32::try_from(stars).ok().and_then(valid);
    }
    let words = Words::of(t);
    let w = words.as_slice();
    let number = |s: &str| {
        s.parse::<i32>()
            .ok()
            .or_else(|| NUMBER_WORDS.iter().find(|(k, _)| *k == s).map(|(_, n)| *n))
    };
    let max = *range(kind).end();
    match w {
        [one] => number(one).and_then(valid),
        // "4/5", "8 / 10"
        [n, of] if of.parse::<i32>() == Ok(max) => number(n).and_then(valid),
        // "cinq étoiles", "5 stelle", "four stars"
        [n, unit]
            if kind == SurveyKind::Csat
                && matches!(
                    unit.as_str(),
                    "stars"
                        | "star"
                        | "etoiles"
                        | "etoile"
                        | "stelle"
                        | "stella"
                        | "estrellas"
                        | "estrelas"
                ) =>
        {
            number(n).and_then(valid)
        }
        _ => None,
    }
}

/// The id of the reply button, list row or template button an inbound
/// message chose, from its stored payload.
pub fn chosen_id(message_type: MessageType, payload: Option<&Value>) -> Option<String> {
    let content = payload?.get("content")?;
    let id = match message_type {
        MessageType::Interactive => content
            .get("list_reply")
            .or_else(|| content.get("button_reply"))?
            .get("id")?,
        MessageType::Button => content.get("payload")?,
        _ => return None,
    };
    id.as_str().map(str::to_string)
}

fn csat_question(language: Option<&str>) -> (&'static str, &'static str) {
    match language {
        Some("fr") => ("Comment évaluez-vous notre aide ?", "Noter"),
        Some("it") => ("Come valuti la nostra assistenza?", "Valuta"),
        Some("es") => ("¿Cómo valora nuestra atención?", "Valorar"),
        Some("pt") => ("Como avalia o nosso atendimento?", "Avaliar"),
        _ => ("How would you rate our help?", "Rate"),
    }
}

fn nps_question(language: Option<&str>) -> &'static str {
    match language {
        Some("fr") => "De 0 à 10, recommanderiez-vous notre service ? Répondez par un chiffre.",
        Some("it") => "Da 0 a 10, consiglieresti il nostro servizio? Rispondi con un numero.",
        Some("es") => "Del 0 al 10, ¿recomendaría nuestro servicio? Responda con un número.",
        Some("pt") => "De 0 a 10, recomendaria o nosso serviço? Responda com um número.",
        _ => "From 0 to 10, how likely are you to recommend us? Reply with a number.",
    }
}

const STAR_LABELS: [&str; 5] = ["Very poor", "Poor", "Fair", "Good", "Excellent"];

impl Domain {
    /// Queues the CSAT survey of a conversation being resolved, in the
    /// resolution's transaction. Nothing when surveys are off, the customer
    /// opted out or is outside the customer-service window, or this
    /// resolution already has its survey.
    pub async fn queue_resolution_survey(
        &self,
        txn: &DatabaseTransaction,
        conversation: &conversation::Model,
        now: DateTime<Utc>,
    ) -> Result<Automated> {
        let cfg = &self.config.surveys;
        if !cfg.csat {
            return Ok(Automated::default());
        }
        self.queue_survey(txn, conversation, SurveyKind::Csat, now)
            .await
    }

    async fn queue_survey(
        &self,
        txn: &DatabaseTransaction,
        conversation: &conversation::Model,
        kind: SurveyKind,
        now: DateTime<Utc>,
    ) -> Result<Automated> {
        let Some(contact) = contact::Entity::find_by_id(conversation.contact_id)
            .one(txn)
            .await?
        else {
            return Ok(Automated::default());
        };
        if !crate::outbound::may_automate(&contact) || contact.wa_id.is_none() {
            return Ok(Automated::default());
        }
        let last = window::last_customer_message(conversation, Some(&contact));
        if !window::is_inside(last, self.config.messaging.service_window, now) {
            return Ok(Automated::default());
        }
        let exists = survey::Entity::find()
            .filter(survey::Column::ConversationId.eq(conversation.id))
            .filter(survey::Column::Kind.eq(kind))
            .filter(survey::Column::Round.eq(conversation.reopen_count))
            .count(txn)
            .await?
            > 0;
        if exists {
            return Ok(Automated::default());
        }
        let lang = conversation.language.as_deref();
        let content = match kind {
            SurveyKind::Csat => {
                let (body, button) = csat_question(lang);
                let rows = (1..=5)
                    .rev()
                    .map(|n| ListRow {
                        id: format!("csat:{n}"),
                        title: format!("{} {n}", "⭐".repeat(n)),
                        description: Some(STAR_LABELS[n - 1].into()),
                    })
                    .collect();
                ContentInput {
                    interactive: Some(InteractiveInput {
                        body: body.into(),
                        list: Some(ListAction {
                            button: button.into(),
                            sections: vec![ListSection { title: None, rows }],
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }
                .parse()?
            }
            SurveyKind::Nps => automated::text(nps_question(lang).into())?,
        };
        let Some((_, event)) = self
            .queue_automated(txn, &contact, conversation, content, Origin::default(), now)
            .await?
        else {
            return Ok(Automated::default());
        };
        survey::ActiveModel {
            conversation_id: Set(conversation.id),
            contact_id: Set(conversation.contact_id),
            agent_id: Set(conversation.assignee_id),
            kind: Set(kind),
            round: Set(conversation.reopen_count),
            status: Set(SurveyStatus::Sent),
            sent_at: Set(now),
            expires_at: Set(now + self.config.surveys.expiry),
            ..Default::default()
        }
        .insert(txn)
        .await?;
        Ok(Automated {
            events: vec![event],
            queued: true,
            ..Default::default()
        })
    }

    /// The resolved conversation an inbound message answers a survey of, so
    /// that the answer is stored there instead of opening a new conversation.
    pub async fn survey_conversation(
        &self,
        txn: &DatabaseTransaction,
        channel_id: i64,
        contact: &contact::Model,
        m: &crate::ingest::InboundMessage,
        now: DateTime<Utc>,
    ) -> Result<Option<conversation::Model>> {
        let chosen = chosen_id(m.message_type, Some(&m.payload));
        let text = m.body.as_deref().unwrap_or_default();
        // Most messages are no score of any kind: no need to look for a survey.
        if [SurveyKind::Csat, SurveyKind::Nps]
            .into_iter()
            .all(|kind| parse_score(kind, text, chosen.as_deref()).is_none())
        {
            return Ok(None);
        }
        let pending = survey::Entity::find()
            .filter(survey::Column::ContactId.eq(contact.id))
            .filter(survey::Column::Status.eq(SurveyStatus::Sent))
            .filter(survey::Column::ExpiresAt.gt(now))
            .order_by_desc(survey::Column::Id)
            .one(txn)
            .await?;
        let Some(pending) = pending else {
            return Ok(None);
        };
        if parse_score(pending.kind, text, chosen.as_deref()).is_none() {
            return Ok(None);
        }
        Ok(conversation::Entity::find_by_id(pending.conversation_id)
            .filter(conversation::Column::ChannelId.eq(channel_id))
            .filter(
                conversation::Column::Status
                    .is_in([ConversationStatus::Resolved, ConversationStatus::Closed]),
            )
            .one(txn)
            .await?)
    }

    /// Records an answer to the conversation's open survey (then asks NPS
    /// after CSAT when configured).
    pub(crate) async fn record_survey_answer(
        &self,
        txn: &DatabaseTransaction,
        conversation: &conversation::Model,
        text: &str,
        chosen: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Automated> {
        let Some(open) = survey::Entity::find()
            .filter(survey::Column::ConversationId.eq(conversation.id))
            .filter(survey::Column::Status.eq(SurveyStatus::Sent))
            .filter(survey::Column::ExpiresAt.gt(now))
            .order_by_desc(survey::Column::Id)
            .one(txn)
            .await?
        else {
            return Ok(Automated::default());
        };
        let Some(score) = parse_score(open.kind, text, chosen) else {
            return Ok(Automated::default());
        };
        let raw = match chosen {
            Some(id) => id.to_string(),
            None => text.chars().take(200).collect(),
        };
        let answered = survey::Entity::update_many()
            .col_expr(survey::Column::Status, Expr::value(SurveyStatus::Answered))
            .col_expr(survey::Column::Score, Expr::value(score))
            .col_expr(survey::Column::RawAnswer, Expr::value(raw))
            .col_expr(survey::Column::AnsweredAt, Expr::value(now))
            .filter(survey::Column::Id.eq(open.id))
            .filter(survey::Column::Status.eq(SurveyStatus::Sent))
            .exec(txn)
            .await?
            .rows_affected
            == 1;
        if !answered {
            return Ok(Automated::default());
        }
        let column = match open.kind {
            SurveyKind::Csat => conversation::Column::Csat,
            SurveyKind::Nps => conversation::Column::Nps,
        };
        conversation::Entity::update_many()
            .col_expr(column, Expr::value(score))
            .col_expr(conversation::Column::UpdatedAt, Expr::value(now))
            .filter(conversation::Column::Id.eq(conversation.id))
            .exec(txn)
            .await?;
        let mut done = Automated {
            events: vec![EventPayload::ConversationUpdated {
                scope: Scope::from(conversation),
                status: conversation.status,
                priority: conversation.priority,
                // Also the CRM webhooks' `survey.answered`.
                change: "survey".into(),
            }],
            queued: false,
            ..Default::default()
        };
        if open.kind == SurveyKind::Csat && self.config.surveys.nps {
            let next = self
                .queue_survey(txn, conversation, SurveyKind::Nps, now)
                .await?;
            done.events.extend(next.events);
            done.queued |= next.queued;
        }
        Ok(done)
    }

    /// Marks unanswered surveys past their expiry as expired; returns how many.
    pub async fn expire_surveys(&self) -> Result<u64> {
        let now = self.clock.now();
        Ok(survey::Entity::update_many()
            .col_expr(survey::Column::Status, Expr::value(SurveyStatus::Expired))
            .filter(survey::Column::Status.eq(SurveyStatus::Sent))
            .filter(survey::Column::ExpiresAt.lte(now))
            .exec(&self.db)
            .await?
            .rows_affected)
    }

    /// The surveys of a conversation, oldest first.
    pub async fn surveys(&self, actor: &Actor, conversation_id: i64) -> Result<Vec<survey::Model>> {
        actor.require(Capability::HandleConversations)?;
        self.conversation(actor, conversation_id).await?;
        Ok(survey::Entity::find()
            .filter(survey::Column::ConversationId.eq(conversation_id))
            .order_by_asc(survey::Column::Id)
            .all(&self.db)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csat_answers_in_every_form() {
        let csat = |t: &str| parse_score(SurveyKind::Csat, t, None);
        assert_eq!(csat("5"), Some(5));
        assert_eq!(csat(" 4/5 "), Some(4));
        assert_eq!(csat("cinq"), Some(5));
        assert_eq!(csat("Cinque"), Some(5));
        assert_eq!(csat("três"), Some(3));
        assert_eq!(csat("⭐⭐⭐⭐⭐"), Some(5));
        assert_eq!(csat("⭐️⭐️"), Some(2));
        assert_eq!(csat("4 étoiles"), Some(4));
        assert_eq!(
            parse_score(SurveyKind::Csat, "⭐⭐⭐⭐ 4", Some("csat:4")),
            Some(4)
        );
        assert_eq!(csat("6"), None);
        assert_eq!(csat("0"), None);
        assert_eq!(csat("my parcel 5 days late"), None);
        assert_eq!(csat("hello"), None);
    }

    #[test]
    fn nps_answers_are_0_to_10() {
        let nps = |t: &str| parse_score(SurveyKind::Nps, t, None);
        assert_eq!(nps("0"), Some(0));
        assert_eq!(nps("10"), Some(10));
        assert_eq!(nps("dieci"), Some(10));
        assert_eq!(nps("8/10"), Some(8));
        assert_eq!(nps("11"), None);
        assert_eq!(parse_score(SurveyKind::Nps, "x", Some("csat:5")), None);
    }
}
