//! Automation on each inbound message, inside the ingest transaction (a
//! savepoint: a failure here is logged and never loses the inbound message).
//!
//! [`Domain::classify_inbound`] runs first, before routing can see the
//! conversation: department (by the departments' keywords, else by the
//! detected topic), topic and language. [`Domain::automate_inbound`] runs once
//! the message is stored: survey answers, lead-flow steps, the handover to a
//! human, then at most one auto-reply, queued in the outbox.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use entity::{
    ConversationStatus, MessageType, TriggerMode, auto_reply_rule, automation_hit, business_hours,
    contact, conversation, department, holiday, message, sla_policy,
};
use rand::Rng;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, JoinType,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};

use super::template::{Values, describe_duration, render};
use super::{rule_buttons, rule_keywords, rule_schedule, rule_variants};
use crate::events::{EventPayload, Scope};
use crate::keywords::{self, Words};
use crate::outbound::automated::{self, Automatic, Origin};
use crate::outbound::content::{ContentInput, InteractiveInput, OutboundContent, ReplyButton};
use crate::outbound::new_customer;
use crate::reference::Reference;
use crate::{Domain, Result, consent, language};

pub const HIT_REPLY: &str = "reply";
pub const HIT_HANDOVER: &str = "handover";
/// The reply-button id of "talk to an agent".
pub const AGENT_BUTTON_ID: &str = "auto:agent";
/// Automated replies per customer in any 24 hours.
pub const MAX_AUTOMATED_PER_DAY: u64 = 3;

/// What automation did in the ingest transaction, published after it commits.
#[derive(Debug, Default)]
pub struct Automated {
    pub events: Vec<EventPayload>,
    /// Something was written to the outbox: wake its worker.
    pub queued: bool,
    /// The auto-reply chosen, written with the batch's others ([`write_replies`]).
    pub(crate) reply: Option<Reply>,
}

impl Automated {
    fn merge(&mut self, other: Automated) {
        self.events.extend(other.events);
        self.queued |= other.queued;
        self.reply = self.reply.take().or(other.reply);
    }
}

/// An auto-reply decided and not yet written.
#[derive(Debug)]
pub(crate) struct Reply {
    message: Automatic,
    hit: automation_hit::ActiveModel,
}

/// Writes the replies `all` holds, a few statements for all of them, and
/// adds their events. The caller makes sure no two are for one conversation.
async fn write_replies(
    db: &impl ConnectionTrait,
    all: &mut [Automated],
    now: DateTime<Utc>,
) -> Result<()> {
    let mut slots = vec![];
    let mut messages = vec![];
    let mut hits = vec![];
    for (slot, done) in all.iter_mut().enumerate() {
        if let Some(reply) = done.reply.take() {
            slots.push(slot);
            messages.push(reply.message);
            hits.push(reply.hit);
        }
    }
    if slots.is_empty() {
        return Ok(());
    }
    let queued = automated::queue_all(db, messages, now).await?;
    automation_hit::Entity::insert_many(hits.into_iter().zip(&queued).map(|(mut hit, (m, _))| {
        hit.message_id = Set(Some(m.id));
        hit
    }))
    .exec_without_returning(db)
    .await?;
    for (slot, (_, event)) in slots.into_iter().zip(queued) {
        all[slot].events.push(event);
        all[slot].queued = true;
    }
    Ok(())
}

/// Whether `inbound[i]` shares its conversation or contact with an earlier
/// message of the batch, whose automation it may depend on.
fn repeats(inbound: &[Inbound<'_>], i: usize) -> bool {
    let one = &inbound[i];
    inbound[..i]
        .iter()
        .any(|o| o.conversation.id == one.conversation.id || o.contact.id == one.contact.id)
}

/// An inbound message stored by ingest, for automation.
pub struct Inbound<'a> {
    pub contact: &'a contact::Model,
    pub conversation: &'a conversation::Model,
    pub message: &'a message::Model,
    /// The message opened the conversation.
    pub created: bool,
}

/// The automation history a batch needs, read once for all its messages and
/// kept current as they are automated.
#[derive(Debug, Default, Clone)]
pub struct History {
    /// Conversations handed over to a human: no more auto-replies.
    handed_over: HashSet<i64>,
    /// Auto-replies per contact in the last 24 hours.
    replies_today: HashMap<i64, u64>,
    /// The variant each (contact, rule) got last.
    last_variants: HashMap<(i64, i64), usize>,
    /// Outbound messages of the last minute to each contact the new-customer
    /// limit can apply to, as counted when the batch began; a contact's
    /// entry is dropped once the batch may have written to it otherwise.
    recent_outbound: HashMap<i64, u64>,
}

impl History {
    /// Reads the history of `inbound`'s conversations and contacts. Reply
    /// counts, variants and recent messages are read only when one of the
    /// batch's channels has an active auto-reply rule (nothing else uses them).
    pub async fn load(
        db: &impl ConnectionTrait,
        reference: &Reference,
        inbound: &[Inbound<'_>],
        now: DateTime<Utc>,
    ) -> Result<Self> {
        if inbound.is_empty() {
            return Ok(Self::default());
        }
        let conversations: HashSet<i64> = inbound.iter().map(|i| i.conversation.id).collect();
        let contacts: HashSet<i64> = inbound.iter().map(|i| i.contact.id).collect();
        let handed_over: Vec<i64> = automation_hit::Entity::find()
            .select_only()
            .column(automation_hit::Column::ConversationId)
            .distinct()
            .filter(automation_hit::Column::Kind.eq(HIT_HANDOVER))
            .filter(automation_hit::Column::ConversationId.is_in(conversations))
            .into_tuple()
            .all(db)
            .await?;
        let handed_over = handed_over.into_iter().collect();
        let channels: HashSet<i64> = inbound.iter().map(|i| i.conversation.channel_id).collect();
        let mut replying = false;
        for channel in channels {
            replying |= reference
                .auto_reply_rules(db, channel)
                .await?
                .next()
                .is_some();
        }
        if !replying {
            return Ok(Self {
                handed_over,
                ..Self::default()
            });
        }
        let variants: Vec<(i64, i64, Option<i32>)> = automation_hit::Entity::find()
            .select_only()
            .column(automation_hit::Column::ContactId)
            .column(automation_hit::Column::RuleId)
            .column(message::Column::AutoVariant)
            .join(
                JoinType::InnerJoin,
                automation_hit::Entity::belongs_to(message::Entity)
                    .from(automation_hit::Column::MessageId)
                    .to(message::Column::Id)
                    .into(),
            )
            .filter(automation_hit::Column::Kind.eq(HIT_REPLY))
            .filter(automation_hit::Column::ContactId.is_in(contacts.iter().copied()))
            .filter(automation_hit::Column::RuleId.is_not_null())
            .order_by_asc(automation_hit::Column::Id)
            .into_tuple()
            .all(db)
            .await?;
        let mut recent_outbound =
            new_customer::recent_counts(db, inbound.iter().map(|i| i.contact), now).await?;
        for i in inbound {
            if new_customer::is_recent(i.contact, now) {
                recent_outbound.entry(i.contact.id).or_insert(0);
            }
        }
        let replies: Vec<(i64, i64)> = automation_hit::Entity::find()
            .select_only()
            .column(automation_hit::Column::ContactId)
            .column_as(
                sea_orm::sea_query::ExprTrait::count(Expr::col(automation_hit::Column::Id)),
                "replies",
            )
            .filter(automation_hit::Column::Kind.eq(HIT_REPLY))
            .filter(automation_hit::Column::CreatedAt.gt(now - Duration::hours(24)))
            .filter(automation_hit::Column::ContactId.is_in(contacts))
            .group_by(automation_hit::Column::ContactId)
            .into_tuple()
            .all(db)
            .await?;
        Ok(Self {
            handed_over,
            replies_today: replies
                .into_iter()
                .map(|(contact, n)| (contact, n.max(0) as u64))
                .collect(),
            // In id order: the last one wins.
            last_variants: variants
                .into_iter()
                .filter_map(|(contact, rule, v)| Some(((contact, rule), usize::try_from(v?).ok()?)))
                .collect(),
            recent_outbound,
        })
    }

    fn replies_today(&self, contact_id: i64) -> u64 {
        self.replies_today.get(&contact_id).copied().unwrap_or(0)
    }
}

/// "Talk to an agent" in the conversation's language (at most 20 characters).
pub fn agent_button_title(language: Option<&str>) -> &'static str {
    match language {
        Some("fr") => "Parler à un agent",
        Some("it") => "Parla con operatore",
        Some("es") => "Hablar con agente",
        Some("pt") => "Falar com atendente",
        Some("de") => "Mit Agent sprechen",
        _ => "Talk to an agent",
    }
}

fn mode_rank(m: TriggerMode) -> u8 {
    match m {
        TriggerMode::Keyword => 0,
        TriggerMode::Scheduled => 1,
        TriggerMode::Offline => 2,
        TriggerMode::FirstContact => 3,
    }
}

/// Picks a variant index at random, never `last` when there is a choice.
pub fn pick_variant(count: usize, last: Option<usize>, rng: &mut impl Rng) -> usize {
    match (count, last) {
        (0 | 1, _) => 0,
        (n, Some(l)) if l < n => {
            let i = rng.random_range(0..n - 1);
            if i >= l { i + 1 } else { i }
        }
        (n, _) => rng.random_range(0..n),
    }
}

impl Domain {
    /// Department, topic and language of a conversation nobody holds yet, from
    /// a customer's text: set before the commit, so routing sees them.
    pub async fn classify_inbound(
        &self,
        txn: &DatabaseTransaction,
        reference: &Reference,
        conversation: conversation::Model,
        text: Option<&str>,
    ) -> Result<conversation::Model> {
        let mut classified = conversation.clone();
        if !classify(reference.departments(txn).await?, &mut classified, text) {
            return Ok(conversation);
        }
        let mut row: conversation::ActiveModel = conversation.into();
        row.topic = Set(classified.topic);
        row.department_id = Set(classified.department_id);
        row.language = Set(classified.language);
        Ok(row.update(txn).await?)
    }

    /// Automation for a batch's stored inbound messages, in order. Never
    /// fails the ingest: all of it runs in one savepoint and, when one
    /// message's automation fails, again with one savepoint per message, so
    /// that a failure only undoes its own message's automation.
    pub(crate) async fn automate_batch(
        &self,
        txn: &DatabaseTransaction,
        reference: &Reference,
        inbound: &[Inbound<'_>],
        history: History,
        now: DateTime<Utc>,
    ) -> Vec<Automated> {
        match txn.begin().await {
            Ok(savepoint) => {
                let mut all = Vec::with_capacity(inbound.len());
                let mut h = history.clone();
                let mut failed = None;
                for (i, one) in inbound.iter().enumerate() {
                    // The replies so far are written before a message that
                    // may depend on them.
                    let done = async {
                        if repeats(inbound, i) {
                            write_replies(&savepoint, &mut all, now).await?;
                        }
                        self.automate_one(&savepoint, reference, inbound, i, &mut h, now)
                            .await
                    }
                    .await;
                    match done {
                        Ok(done) => all.push(done),
                        Err(e) => {
                            failed = Some((e, one.conversation.id));
                            break;
                        }
                    }
                }
                if failed.is_none()
                    && let Err(e) = write_replies(&savepoint, &mut all, now).await
                {
                    failed = inbound.last().map(|one| (e, one.conversation.id));
                }
                match failed {
                    None => match savepoint.commit().await {
                        Ok(()) => return all,
                        Err(e) => tracing::warn!(error = %e, "automation not saved"),
                    },
                    Some((e, conversation_id)) => {
                        tracing::warn!(error = %e, conversation_id, "automation failed; retrying message by message");
                        let _ = savepoint.rollback().await;
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "automation savepoint not opened"),
        }
        let mut h = history;
        let mut all = Vec::with_capacity(inbound.len());
        for (i, one) in inbound.iter().enumerate() {
            all.push(
                self.automate_alone(txn, reference, inbound, i, &mut h, now)
                    .await
                    .unwrap_or_else(|e| {
                        tracing::warn!(error = %e, conversation_id = one.conversation.id, "automation failed");
                        Automated::default()
                    }),
            );
        }
        all
    }

    /// The automation of `inbound[i]` in a savepoint of its own.
    async fn automate_alone(
        &self,
        txn: &DatabaseTransaction,
        reference: &Reference,
        inbound: &[Inbound<'_>],
        i: usize,
        history: &mut History,
        now: DateTime<Utc>,
    ) -> Result<Automated> {
        let savepoint = txn.begin().await?;
        let before = history.clone();
        let done = async {
            let mut done = self
                .automate_one(&savepoint, reference, inbound, i, history, now)
                .await?;
            write_replies(&savepoint, std::slice::from_mut(&mut done), now).await?;
            Ok::<_, crate::DomainError>(done)
        }
        .await;
        match done {
            Ok(done) => {
                savepoint.commit().await?;
                Ok(done)
            }
            Err(e) => {
                *history = before;
                let _ = savepoint.rollback().await;
                Err(e)
            }
        }
    }

    /// The automation of `inbound[i]`. A conversation automated earlier in
    /// the batch may have changed (a flow answered, an assignment): its rows
    /// are read again.
    async fn automate_one(
        &self,
        txn: &DatabaseTransaction,
        reference: &Reference,
        inbound: &[Inbound<'_>],
        i: usize,
        history: &mut History,
        now: DateTime<Utc>,
    ) -> Result<Automated> {
        let one = &inbound[i];
        if repeats(inbound, i) {
            // Earlier messages of the batch may have written to this contact
            // (a lead-flow question, a survey): count again.
            history.recent_outbound.remove(&one.contact.id);
        } else {
            return self
                .automate(
                    txn,
                    reference,
                    one.contact,
                    one.conversation,
                    one.message,
                    one.created,
                    history,
                    now,
                )
                .await;
        }
        let (Some(contact), Some(conversation)) = (
            contact::Entity::find_by_id(one.contact.id).one(txn).await?,
            conversation::Entity::find_by_id(one.conversation.id)
                .one(txn)
                .await?,
        ) else {
            return Ok(Automated::default());
        };
        self.automate(
            txn,
            reference,
            &contact,
            &conversation,
            one.message,
            one.created,
            history,
            now,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn automate(
        &self,
        txn: &DatabaseTransaction,
        reference: &Reference,
        contact: &contact::Model,
        conversation: &conversation::Model,
        inbound: &message::Model,
        created: bool,
        history: &mut History,
        now: DateTime<Utc>,
    ) -> Result<Automated> {
        let text = inbound.body.as_deref().unwrap_or_default();
        let chosen = crate::survey::chosen_id(inbound.message_type, inbound.payload.as_ref());
        if !matches!(
            conversation.status,
            ConversationStatus::Open | ConversationStatus::Pending
        ) {
            // Only a survey answer is stored on a resolved conversation.
            return self
                .record_survey_answer(txn, conversation, text, chosen.as_deref(), now)
                .await;
        }
        if inbound.message_type == MessageType::Text && consent::requested(text).is_some() {
            return Ok(Automated::default());
        }
        if !crate::outbound::may_automate(contact) || contact.wa_id.is_none() {
            return Ok(Automated::default());
        }
        let mut done = Automated::default();
        // A new conversation has no running flow and no automation history yet.
        if !created
            && self
                .advance_lead_flow(txn, reference, contact, conversation, text, now, &mut done)
                .await?
        {
            return Ok(done);
        }
        if conversation.assignee_id.is_some() || history.handed_over.contains(&conversation.id) {
            return Ok(done);
        }
        let words = Words::of(text);
        if chosen.as_deref() == Some(AGENT_BUTTON_ID) || keywords::asks_for_human(&words) {
            done.merge(handover(txn, conversation, history, now).await?);
            return Ok(done);
        }
        if self
            .start_lead_flow(
                txn,
                reference,
                contact,
                conversation,
                &words,
                now,
                &mut done,
            )
            .await?
        {
            return Ok(done);
        }
        let sent_today = history.replies_today(contact.id);
        if sent_today >= MAX_AUTOMATED_PER_DAY {
            done.merge(handover(txn, conversation, history, now).await?);
            return Ok(done);
        }
        let Some((rule, keyword)) = self
            .matching_rule(txn, reference, conversation, &words, created, now)
            .await?
        else {
            return Ok(done);
        };
        let variants = rule_variants(&rule);
        let last = history.last_variants.get(&(contact.id, rule.id)).copied();
        let index = pick_variant(variants.len(), last, &mut rand::rng());
        let Some(template) = variants.get(index) else {
            return Ok(done);
        };
        let body = render(
            template,
            &self
                .placeholder_values(txn, reference, contact, conversation, template, now)
                .await?,
        );
        let offer_agent = sent_today + 1 == 2;
        let content = reply_content(
            body,
            rule.id,
            rule_buttons(&rule),
            offer_agent,
            conversation.language.as_deref(),
        )?;
        let origin = Origin {
            rule_id: Some(rule.id),
            variant: Some(index as i32),
        };
        let recent = history.recent_outbound.get(&contact.id).copied();
        if !self
            .may_queue_automated(txn, contact, conversation, recent, now)
            .await?
        {
            // Held back by the new-customer limit: not counted as a reply.
            return Ok(done);
        }
        *history.replies_today.entry(contact.id).or_default() += 1;
        history.last_variants.insert((contact.id, rule.id), index);
        if let Some(n) = history.recent_outbound.get_mut(&contact.id) {
            *n += 1;
        }
        done.reply = Some(Reply {
            message: Automatic {
                conversation: conversation.clone(),
                content,
                origin,
            },
            hit: automation_hit::ActiveModel {
                conversation_id: Set(conversation.id),
                contact_id: Set(contact.id),
                rule_id: Set(Some(rule.id)),
                kind: Set(HIT_REPLY.into()),
                trigger_mode: Set(Some(rule.trigger_mode)),
                keyword: Set(keyword),
                created_at: Set(now),
                ..Default::default()
            },
        });
        Ok(done)
    }

    /// The best rule for this message, with the keyword that fired it.
    async fn matching_rule(
        &self,
        txn: &DatabaseTransaction,
        reference: &Reference,
        conversation: &conversation::Model,
        words: &Words,
        created: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<(auto_reply_rule::Model, Option<String>)>> {
        let rules = reference
            .auto_reply_rules(txn, conversation.channel_id)
            .await?;
        let lang = conversation.language.as_deref();
        let mut candidates: Vec<(auto_reply_rule::Model, Option<String>)> = vec![];
        for rule in rules {
            if rule.language.as_deref().is_some_and(|l| Some(l) != lang) {
                continue;
            }
            let hit = match rule.trigger_mode {
                TriggerMode::FirstContact => created.then_some(None),
                TriggerMode::Keyword => words
                    .first_of(&rule_keywords(rule))
                    .map(|k| Some(k.to_string())),
                TriggerMode::Scheduled => rule_schedule(rule).is_within(now).then_some(None),
                TriggerMode::Offline => self.is_offline(txn, rule, now).await?.then_some(None),
            };
            if let Some(keyword) = hit {
                candidates.push((rule.clone(), keyword));
            }
        }
        candidates.sort_by_key(|(r, _)| {
            (
                std::cmp::Reverse(r.priority),
                r.language.is_none(),
                mode_rank(r.trigger_mode),
                r.id,
            )
        });
        for (rule, keyword) in candidates {
            if rule.trigger_mode != TriggerMode::Keyword && !created {
                let fired = automation_hit::Entity::find()
                    .filter(automation_hit::Column::ConversationId.eq(conversation.id))
                    .filter(automation_hit::Column::RuleId.eq(rule.id))
                    .count(txn)
                    .await?;
                if fired > 0 {
                    continue;
                }
            }
            return Ok(Some((rule, keyword)));
        }
        Ok(None)
    }

    async fn is_offline(
        &self,
        db: &impl ConnectionTrait,
        rule: &auto_reply_rule::Model,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let schedule = rule_schedule(rule);
        let Some(id) = schedule.business_hours_id else {
            return Ok(schedule.is_offline_by_window(now));
        };
        let Some(cal) = business_hours::Entity::find_by_id(id).one(db).await? else {
            return Ok(schedule.is_offline_by_window(now));
        };
        let holidays: Vec<chrono::NaiveDate> = holiday::Entity::find()
            .filter(holiday::Column::BusinessHoursId.eq(id))
            .all(db)
            .await?
            .into_iter()
            .map(|h| h.date)
            .collect();
        Ok(!super::schedule::is_open(
            &cal.timezone,
            &cal.schedule,
            &holidays,
            now,
        ))
    }

    /// `text` with its placeholders filled (canned responses, at send time).
    pub async fn fill_placeholders(
        &self,
        text: &str,
        contact: &contact::Model,
        conversation: &conversation::Model,
    ) -> Result<String> {
        let values = self
            .placeholder_values(
                &self.db,
                &Reference::default(),
                contact,
                conversation,
                text,
                self.clock.now(),
            )
            .await?;
        Ok(render(text, &values))
    }

    /// Values for the placeholders of `template` (variables only when it uses any).
    pub async fn placeholder_values(
        &self,
        db: &impl ConnectionTrait,
        reference: &Reference,
        contact: &contact::Model,
        conversation: &conversation::Model,
        template: &str,
        now: DateTime<Utc>,
    ) -> Result<Values> {
        let mut values = Values::default();
        let name = contact
            .name
            .as_deref()
            .or(contact.profile_name.as_deref())
            .unwrap_or("");
        values.builtins.insert("name", name.to_string());
        values
            .builtins
            .insert("conversation", conversation.id.to_string());
        if !template.contains("{{") {
            return Ok(values);
        }
        if template.contains("sla_target") {
            let secs = sla_target_secs(db, conversation, now).await?;
            values.builtins.insert(
                "sla_target",
                secs.map(describe_duration)
                    .unwrap_or_else(|| "a few minutes".into()),
            );
        }
        values.variables = reference.variables(db).await?.clone();
        Ok(values)
    }
}

/// Seconds until the first response is due: the conversation's own due time
/// when the SLA engine set one, else the matching policy's target.
async fn sla_target_secs(
    db: &impl ConnectionTrait,
    conversation: &conversation::Model,
    now: DateTime<Utc>,
) -> Result<Option<i64>> {
    if let Some(due) = conversation.first_response_due_at {
        return Ok(Some((due - now).num_seconds().max(60)));
    }
    let policies = sla_policy::Entity::find().all(db).await?;
    let best = policies
        .iter()
        .filter(|p| p.priority.is_none_or(|pr| pr == conversation.priority))
        .filter(|p| p.channel_id.is_none_or(|c| c == conversation.channel_id))
        .filter(|p| {
            p.department_id
                .is_none_or(|d| Some(d) == conversation.department_id)
        })
        .max_by_key(|p| {
            (
                p.priority.is_some(),
                p.department_id.is_some(),
                p.channel_id.is_some(),
                p.is_default,
            )
        });
    Ok(best.map(|p| i64::from(p.first_response_secs)))
}

/// Sets, in memory, what a customer's text tells about a conversation nobody
/// holds yet and that does not know it already: its topic, its department (by
/// the departments' keywords, else by the topic) and its language. Returns
/// whether anything changed.
pub fn classify(
    departments: &[department::Model],
    conversation: &mut conversation::Model,
    text: Option<&str>,
) -> bool {
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
        return false;
    };
    if conversation.assignee_id.is_some()
        || !matches!(
            conversation.status,
            ConversationStatus::Open | ConversationStatus::Pending
        )
    {
        return false;
    }
    let words = Words::of(text);
    let mut changed = false;
    if conversation.topic.is_none()
        && let Some(t) = keywords::detect_topic(&words)
    {
        conversation.topic = Some(t.to_string());
        changed = true;
    }
    if conversation.department_id.is_none()
        && let Some(d) = route_by_keywords(departments, &words, conversation.topic.as_deref())
    {
        conversation.department_id = Some(d);
        changed = true;
    }
    if conversation.language.is_none()
        && let Some(l) = language::detect(text)
    {
        conversation.language = Some(l.to_string());
        changed = true;
    }
    changed
}

/// The department a text routes to: the first whose keyword appears in it,
/// else one whose name names the detected topic ("Returns" for "return").
pub fn route_by_keywords(
    departments: &[department::Model],
    words: &Words,
    topic: Option<&str>,
) -> Option<i64> {
    let by_keyword = departments.iter().find(|d| {
        let list: Vec<String> = serde_json::from_value(d.keywords.clone()).unwrap_or_default();
        words.first_of(&list).is_some()
    });
    if let Some(d) = by_keyword {
        return Some(d.id);
    }
    let topic = topic?;
    let lexicon = keywords::TOPICS
        .iter()
        .find(|(t, _)| *t == topic)
        .map(|(_, l)| *l)?;
    departments
        .iter()
        .find(|d| {
            let name = Words::of(&d.name);
            name.contains(topic) || lexicon.iter().any(|k| name.contains(k))
        })
        .map(|d| d.id)
}

/// The text (or reply buttons) of an auto-reply; the second automated reply
/// of the day offers "talk to an agent" (replacing the third button if needed).
pub fn reply_content(
    body: String,
    rule_id: i64,
    mut titles: Vec<String>,
    offer_agent: bool,
    language: Option<&str>,
) -> Result<OutboundContent> {
    let mut buttons: Vec<ReplyButton> = vec![];
    if offer_agent {
        titles.truncate(crate::outbound::content::MAX_BUTTONS - 1);
    }
    for (i, title) in titles.into_iter().enumerate() {
        buttons.push(ReplyButton {
            id: format!("auto:{rule_id}:{i}"),
            title,
        });
    }
    if offer_agent {
        buttons.push(ReplyButton {
            id: AGENT_BUTTON_ID.into(),
            title: agent_button_title(language).into(),
        });
    }
    if buttons.is_empty() {
        return automated::text(body);
    }
    ContentInput {
        interactive: Some(InteractiveInput {
            body,
            buttons: Some(buttons),
            ..Default::default()
        }),
        ..Default::default()
    }
    .parse()
}

/// The conversation leaves the bot: no more auto-replies, it waits for a human
/// in its queue (it is already there, unassigned).
async fn handover(
    db: &impl ConnectionTrait,
    conversation: &conversation::Model,
    history: &mut History,
    now: DateTime<Utc>,
) -> Result<Automated> {
    history.handed_over.insert(conversation.id);
    automation_hit::ActiveModel {
        conversation_id: Set(conversation.id),
        contact_id: Set(conversation.contact_id),
        kind: Set(HIT_HANDOVER.into()),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    conversation::Entity::update_many()
        .col_expr(conversation::Column::UpdatedAt, Expr::value(now))
        .filter(conversation::Column::Id.eq(conversation.id))
        .exec(db)
        .await?;
    Ok(Automated {
        events: vec![EventPayload::ConversationUpdated {
            scope: Scope::from(conversation),
            status: conversation.status,
            priority: conversation.priority,
            change: "handover".into(),
        }],
        queued: false,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_variant_is_never_the_same_twice_in_a_row() {
        let mut rng = rand::rng();
        for _ in 0..200 {
            let last = rng.random_range(0..5);
            assert_ne!(pick_variant(5, Some(last), &mut rng), last);
        }
        assert_eq!(pick_variant(1, Some(0), &mut rng), 0);
        assert_eq!(pick_variant(2, Some(1), &mut rng), 0);
    }

    #[test]
    fn the_second_reply_offers_an_agent_in_the_customer_language() {
        let c = reply_content(
            "Hi".into(),
            7,
            vec!["A".into(), "B".into(), "C".into()],
            true,
            Some("fr"),
        )
        .unwrap();
        match c {
            OutboundContent::Buttons { buttons, .. } => {
                let titles: Vec<&str> = buttons.iter().map(|b| b.title.as_str()).collect();
                assert_eq!(titles, vec!["A", "B", "Parler à un agent"]);
                assert_eq!(buttons[2].id, AGENT_BUTTON_ID);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            reply_content("Hi".into(), 7, vec![], false, None).unwrap(),
            OutboundContent::Text { .. }
        ));
        for lang in [
            None,
            Some("fr"),
            Some("it"),
            Some("es"),
            Some("pt"),
            Some("de"),
        ] {
            assert!(agent_button_title(lang).chars().count() <= 20);
        }
    }

    #[test]
    fn departments_are_found_by_keyword_then_by_topic() {
        let at = Utc::now();
        let dep = |id, name: &str, kw: serde_json::Value| department::Model {
            id,
            name: name.into(),
            description: None,
            keywords: kw,
            routing_strategy: Default::default(),
            round_robin_cursor: None,
            created_at: at,
            updated_at: at,
        };
        let all = [
            dep(1, "Resi", json!(["retour", "reso", "return"])),
            dep(2, "Billing", json!([])),
        ];
        assert_eq!(
            route_by_keywords(&all, &Words::of("Retour de colis"), None),
            Some(1)
        );
        assert_eq!(
            route_by_keywords(&all, &Words::of("Je veux retourner"), None),
            None
        );
        assert_eq!(
            route_by_keywords(&all, &Words::of("x"), Some("billing")),
            Some(2)
        );
    }
}
