//! The inbound messages of one batch, stored in phases so that most kinds of
//! row cost one statement per batch instead of one per message: the senders
//! (read, created, kept current), their open conversations (read, kept
//! current), the messages themselves, then automation in one savepoint.
//! Messages are still handled one by one, in order, wherever the outcome of
//! one can change the next (a conversation created, classified, opted out).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::{
    ConsentState, ConversationStatus, DeliveryStatus, Direction, MessageType, Priority, SenderKind,
    channel, contact, conversation, message,
};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, DatabaseTransaction, EntityTrait, NotSet, QueryFilter, QueryOrder, Set,
    Value,
};
use serde_json::json;

use super::{InboundMessage, IngestReport, Pending};
use crate::autoreply::engine::{History, Inbound, classify};
use crate::events::{EventPayload, Scope};
use crate::reference::Reference;
use crate::sql::per_row;
use crate::{Domain, Result, consent};

/// One new inbound message of the batch, with the delivery it came in.
pub(super) struct Item<'a> {
    pub delivery: usize,
    pub channel: &'a channel::Model,
    pub m: &'a InboundMessage,
}

/// A message placed in its conversation, before it is inserted.
struct Placed<'a> {
    item: &'a Item<'a>,
    contact_id: i64,
    conversation: conversation::Model,
    created: bool,
}

impl Domain {
    pub(super) async fn store_messages(
        &self,
        txn: &DatabaseTransaction,
        reference: &Reference,
        items: &[Item<'_>],
        now: DateTime<Utc>,
        reports: &mut [IngestReport],
        pending: &mut Pending,
    ) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let mut senders = Senders::load(txn, items, now).await?;
        let mut attributed = Vec::with_capacity(items.len());
        for item in items {
            match senders.find(item.m) {
                Some(id) => attributed.push((item, id)),
                None => {
                    tracing::warn!(wa_message_id = %item.m.wa_message_id, "inbound message without a sender id");
                    reports[item.delivery].unattributable += 1;
                }
            }
        }
        let placed = self
            .place(txn, reference, &attributed, &mut senders, now)
            .await?;
        let stored = insert_messages(txn, &placed).await?;

        let inbound: Vec<Inbound> = placed
            .iter()
            .zip(&stored)
            .map(|(p, message)| Inbound {
                contact: &senders.models[&p.contact_id],
                conversation: &p.conversation,
                message,
                created: p.created,
            })
            .collect();
        let history = History::load(txn, reference, &inbound, now).await?;
        let automated = self
            .automate_batch(txn, reference, &inbound, history, now)
            .await;
        for ((p, message), done) in placed.iter().zip(&stored).zip(automated) {
            let report = &mut reports[p.item.delivery];
            report.messages_stored += 1;
            let conversation = &p.conversation;
            if p.created {
                report.conversations_created += 1;
                pending
                    .new_queue_entries
                    .push((conversation.department_id, conversation.id));
                pending.events.push(EventPayload::ConversationUpdated {
                    scope: Scope::from(conversation),
                    status: conversation.status,
                    priority: conversation.priority,
                    change: "created".into(),
                });
            }
            pending.events.push(EventPayload::MessageAdded {
                scope: Scope::from(conversation),
                message_id: message.id,
                direction: Direction::Inbound,
                status: DeliveryStatus::Received,
            });
            pending.events.extend(done.events);
            pending.outbox_queued |= done.queued;
        }
        Ok(())
    }

    /// Finds or creates each message's conversation, in order, with its
    /// classification, SLA clocks and the sender's consent.
    async fn place<'a>(
        &self,
        txn: &DatabaseTransaction,
        reference: &Reference,
        attributed: &[(&'a Item<'a>, i64)],
        senders: &mut Senders,
        now: DateTime<Utc>,
    ) -> Result<Vec<Placed<'a>>> {
        // Survey answers stay on their resolved conversation.
        let mut answered = Vec::with_capacity(attributed.len());
        for (item, contact_id) in attributed {
            let contact = &senders.models[contact_id];
            answered.push(
                self.survey_conversation(txn, item.channel.id, contact, item.m, now)
                    .await?,
            );
        }
        let mut open = OpenConversations::load(txn, attributed, &answered, now).await?;
        let rules = reference.sla(txn).await?;
        let departments = reference.departments(txn).await?;
        // New conversations are built in memory, classified and with their
        // SLA clocks started, and inserted together once all are placed.
        let mut new: Vec<conversation::Model> = vec![];
        let mut new_at: HashMap<(i64, i64), usize> = HashMap::new();
        let mut slots = Vec::with_capacity(attributed.len());
        for ((item, contact_id), answered) in attributed.iter().zip(answered) {
            let contact = &senders.models[contact_id];
            let key = (*contact_id, item.channel.id);
            let text = item.m.body.as_deref();
            let is_answer = answered.is_some();
            let slot = if !is_answer && let Some(&i) = new_at.get(&key) {
                // A further message of a conversation this batch opens.
                bring_up_to_date(&mut new[i], item.m, now);
                classify(departments, &mut new[i], text);
                Slot::New {
                    index: i,
                    created: false,
                }
            } else if let Some(c) = answered.or_else(|| open.by_key.get(&key).cloned()) {
                // Department, topic and language before routing sees it.
                let c = self.classify_inbound(txn, reference, c, text).await?;
                // SLA (domain::sla): resume paused clocks.
                let c = crate::sla::clock::on_inbound(txn, rules, c, now).await?;
                if !is_answer {
                    open.by_key.insert(key, c.clone());
                }
                Slot::Stored(Box::new(c))
            } else {
                let mut c = new_conversation(item.channel, contact, item.m, now);
                classify(departments, &mut c, text);
                new_at.insert(key, new.len());
                new.push(crate::sla::clock::started(rules, &c, now));
                Slot::New {
                    index: new.len() - 1,
                    created: true,
                }
            };
            if item.m.message_type == MessageType::Text
                && let Some(state) = text.and_then(consent::requested)
            {
                senders.set_consent(txn, *contact_id, state, now).await?;
            }
            slots.push((item, *contact_id, slot));
        }
        let inserted = insert_conversations(txn, new).await?;
        let placed = slots
            .into_iter()
            .map(|(item, contact_id, slot)| {
                let (conversation, created) = match slot {
                    Slot::Stored(c) => (*c, false),
                    Slot::New { index, created } => (inserted[index].clone(), created),
                };
                Placed {
                    item,
                    contact_id,
                    conversation,
                    created,
                }
            })
            .collect();
        Ok(placed)
    }
}

/// Where a message of the batch lands.
enum Slot {
    /// A conversation already stored (open, or resolved and answering a survey).
    Stored(Box<conversation::Model>),
    /// The `index`th conversation the batch opens; `created` for its first message.
    New { index: usize, created: bool },
}

/// The batch's senders by WhatsApp id or business-scoped user id.
#[derive(Default)]
struct Senders {
    by_wa: HashMap<String, i64>,
    by_user: HashMap<String, i64>,
    models: HashMap<i64, contact::Model>,
}

/// Which stored columns of a contact the batch changed.
#[derive(Default, Clone, Copy)]
struct ContactChange {
    last_inbound: bool,
    profile_name: bool,
    user_id: bool,
}

impl Senders {
    /// Reads the senders, creates the unknown ones (each from its first
    /// message), and writes what the batch's messages change about them
    /// (last inbound time, profile name, a user id learned).
    async fn load(
        txn: &DatabaseTransaction,
        items: &[Item<'_>],
        now: DateTime<Utc>,
    ) -> Result<Self> {
        let wa_ids: HashSet<&str> = items
            .iter()
            .filter_map(|i| i.m.from_wa_id.as_deref())
            .collect();
        let user_ids: HashSet<&str> = items
            .iter()
            .filter(|i| i.m.from_wa_id.is_none())
            .filter_map(|i| i.m.from_user_id.as_deref())
            .collect();
        let mut senders = Senders::default();
        if wa_ids.is_empty() && user_ids.is_empty() {
            return Ok(senders);
        }
        let mut known = Condition::any();
        if !wa_ids.is_empty() {
            known = known.add(contact::Column::WaId.is_in(wa_ids));
        }
        if !user_ids.is_empty() {
            known = known.add(contact::Column::UserId.is_in(user_ids));
        }
        for c in contact::Entity::find().filter(known).all(txn).await? {
            senders.insert(c);
        }

        let mut new = Vec::new();
        let mut new_keys = HashSet::new();
        for item in items {
            let m = item.m;
            let key = (m.from_wa_id.as_deref(), m.from_user_id.as_deref());
            if key == (None, None) || senders.find(m).is_some() || !new_keys.insert(key) {
                continue;
            }
            new.push(contact::ActiveModel {
                wa_id: Set(m.from_wa_id.clone()),
                user_id: Set(m.from_user_id.clone()),
                phone: Set(m.from_wa_id.as_ref().map(|wa| format!("+{wa}"))),
                profile_name: Set(m.profile_name.clone()),
                priority: Set(Priority::Normal),
                is_vip: Set(false),
                consent: Set(ConsentState::Unknown),
                fields: Set(json!({})),
                last_inbound_at: Set(Some(m.timestamp)),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            });
        }
        if !new.is_empty() {
            for c in contact::Entity::insert_many(new)
                .exec_with_returning(txn)
                .await?
            {
                senders.insert(c);
            }
        }

        let mut changes: HashMap<i64, ContactChange> = HashMap::new();
        for item in items {
            let Some(id) = senders.find(item.m) else {
                continue;
            };
            let m = item.m;
            let c = senders.models.get_mut(&id).expect("found above");
            let change = changes.entry(id).or_default();
            if c.last_inbound_at.is_none_or(|t| t < m.timestamp) {
                c.last_inbound_at = Some(m.timestamp);
                change.last_inbound = true;
            }
            if m.profile_name.is_some() && m.profile_name != c.profile_name {
                c.profile_name = m.profile_name.clone();
                change.profile_name = true;
            }
            if c.user_id.is_none() && m.from_user_id.is_some() {
                c.user_id = m.from_user_id.clone();
                change.user_id = true;
            }
        }
        // A learned user id finds the contact under it too.
        for (id, change) in &changes {
            if change.user_id
                && let Some(user) = senders.models[id].user_id.clone()
            {
                senders.by_user.insert(user, *id);
            }
        }
        senders.write(txn, &changes, now).await?;
        Ok(senders)
    }

    fn insert(&mut self, c: contact::Model) {
        if let Some(wa) = &c.wa_id {
            self.by_wa.insert(wa.clone(), c.id);
        }
        if let Some(user) = &c.user_id {
            self.by_user.insert(user.clone(), c.id);
        }
        self.models.insert(c.id, c);
    }

    /// The sender of `m`: by phone number when it has one, else by user id.
    fn find(&self, m: &InboundMessage) -> Option<i64> {
        match (&m.from_wa_id, &m.from_user_id) {
            (Some(wa), _) => self.by_wa.get(wa).copied(),
            (None, Some(user)) => self.by_user.get(user).copied(),
            (None, None) => None,
        }
    }

    /// One UPDATE for every changed contact.
    async fn write(
        &mut self,
        txn: &DatabaseTransaction,
        changes: &HashMap<i64, ContactChange>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let changed: Vec<(i64, ContactChange)> = changes
            .iter()
            .filter(|(_, c)| c.last_inbound || c.profile_name || c.user_id)
            .map(|(id, c)| (*id, *c))
            .collect();
        if changed.is_empty() {
            return Ok(());
        }
        let value_of = |pick: fn(&ContactChange) -> bool, get: fn(&contact::Model) -> Value| {
            changed
                .iter()
                .filter(|(_, c)| pick(c))
                .map(|(id, _)| (*id, get(&self.models[id])))
                .collect::<Vec<_>>()
        };
        let columns = [
            (
                contact::Column::LastInboundAt,
                value_of(|c| c.last_inbound, |m| m.last_inbound_at.into()),
            ),
            (
                contact::Column::ProfileName,
                value_of(|c| c.profile_name, |m| m.profile_name.clone().into()),
            ),
            (
                contact::Column::UserId,
                value_of(|c| c.user_id, |m| m.user_id.clone().into()),
            ),
        ];
        let mut update = contact::Entity::update_many()
            .col_expr(contact::Column::UpdatedAt, Expr::value(now))
            .filter(contact::Column::Id.is_in(changed.iter().map(|(id, _)| *id)));
        for (column, values) in columns {
            if let Some(expr) = per_row(contact::Column::Id, column, values) {
                update = update.col_expr(column, expr);
            }
        }
        update.exec(txn).await?;
        for (id, _) in &changed {
            if let Some(c) = self.models.get_mut(id) {
                c.updated_at = now;
            }
        }
        Ok(())
    }

    /// Opt-out / opt-in asked by a message: stored, audited, and seen by the
    /// automation of every message of the batch.
    async fn set_consent(
        &mut self,
        txn: &DatabaseTransaction,
        contact_id: i64,
        state: ConsentState,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let Some(contact) = self.models.get_mut(&contact_id) else {
            return Ok(());
        };
        if contact.consent == state {
            return Ok(());
        }
        contact::Entity::update_many()
            .col_expr(contact::Column::Consent, Expr::value(state))
            .col_expr(contact::Column::ConsentChangedAt, Expr::value(now))
            .filter(contact::Column::Id.eq(contact_id))
            .exec(txn)
            .await?;
        crate::audit::record(
            txn,
            &crate::Actor::webhook(),
            now,
            crate::audit::Change::new("contact.consent", "contact", contact_id)
                .before(&json!({"consent": contact.consent}))
                .after(&json!({"consent": state})),
        )
        .await?;
        contact.consent = state;
        contact.consent_changed_at = Some(now);
        Ok(())
    }
}

/// The open (or pending) conversation of each (contact, channel) of the batch.
struct OpenConversations {
    by_key: HashMap<(i64, i64), conversation::Model>,
    /// Conversations that were open before the batch, already brought up to
    /// date with all of the batch's messages.
    touched: HashSet<i64>,
}

impl OpenConversations {
    /// Reads them, then writes in one UPDATE what the batch's messages change
    /// (last message times; pending back to open: the ball is in our court).
    async fn load(
        txn: &DatabaseTransaction,
        attributed: &[(&Item<'_>, i64)],
        answered: &[Option<conversation::Model>],
        now: DateTime<Utc>,
    ) -> Result<Self> {
        let contact_ids: HashSet<i64> = attributed.iter().map(|(_, id)| *id).collect();
        let mut by_key = HashMap::new();
        for c in conversation::Entity::find()
            .filter(conversation::Column::ContactId.is_in(contact_ids))
            .filter(
                conversation::Column::Status
                    .is_in([ConversationStatus::Open, ConversationStatus::Pending]),
            )
            .order_by_asc(conversation::Column::Id)
            .all(txn)
            .await?
        {
            by_key.entry((c.contact_id, c.channel_id)).or_insert(c);
        }
        let mut touched = HashSet::new();
        for ((item, contact_id), answered) in attributed.iter().zip(answered) {
            if answered.is_some() {
                continue;
            }
            if let Some(c) = by_key.get_mut(&(*contact_id, item.channel.id)) {
                bring_up_to_date(c, item.m, now);
                touched.insert(c.id);
            }
        }
        let open = Self { by_key, touched };
        open.write(txn, now).await?;
        Ok(open)
    }

    async fn write(&self, txn: &DatabaseTransaction, now: DateTime<Utc>) -> Result<()> {
        let rows: Vec<&conversation::Model> = self
            .by_key
            .values()
            .filter(|c| self.touched.contains(&c.id))
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        let values = |get: fn(&conversation::Model) -> Value| {
            rows.iter().map(|c| (c.id, get(c))).collect::<Vec<_>>()
        };
        let columns = [
            (conversation::Column::Status, values(|c| c.status.into())),
            (
                conversation::Column::LastMessageAt,
                values(|c| c.last_message_at.into()),
            ),
            (
                conversation::Column::LastInboundAt,
                values(|c| c.last_inbound_at.into()),
            ),
        ];
        let mut update = conversation::Entity::update_many()
            .col_expr(conversation::Column::UpdatedAt, Expr::value(now))
            .filter(conversation::Column::Id.is_in(rows.iter().map(|c| c.id)));
        for (column, values) in columns {
            if let Some(expr) = per_row(conversation::Column::Id, column, values) {
                update = update.col_expr(column, expr);
            }
        }
        update.exec(txn).await?;
        Ok(())
    }
}

/// What an inbound message changes on its open conversation.
fn bring_up_to_date(c: &mut conversation::Model, m: &InboundMessage, now: DateTime<Utc>) {
    if c.status == ConversationStatus::Pending {
        // The customer answered: the ball is back in our court.
        c.status = ConversationStatus::Open;
    }
    if c.last_message_at.is_none_or(|t| t < m.timestamp) {
        c.last_message_at = Some(m.timestamp);
    }
    if c.last_inbound_at.is_none_or(|t| t < m.timestamp) {
        c.last_inbound_at = Some(m.timestamp);
    }
    c.updated_at = now;
}

/// A new conversation in the queue: no inbound message is ever left without
/// one. Not stored yet (id 0): see [`insert_conversations`].
fn new_conversation(
    channel: &channel::Model,
    contact: &contact::Model,
    m: &InboundMessage,
    now: DateTime<Utc>,
) -> conversation::Model {
    let priority = if contact.is_vip {
        contact.priority.max(Priority::High)
    } else {
        contact.priority
    };
    conversation::Model {
        id: 0,
        channel_id: channel.id,
        contact_id: contact.id,
        status: ConversationStatus::Open,
        priority,
        topic: None,
        language: contact.language.clone(),
        department_id: None,
        assignee_id: None,
        lock_holder_id: None,
        lock_acquired_at: None,
        lock_last_activity_at: None,
        lock_expires_at: None,
        sla_policy_id: None,
        first_response_due_at: None,
        resolution_due_at: None,
        sla_paused_at: None,
        important_wait_due_at: None,
        sla_next_at: None,
        escalation_level: 0,
        transfer_count: 0,
        reopen_count: 0,
        queued_at: Some(now),
        assigned_at: None,
        first_response_at: None,
        resolved_at: None,
        closed_at: None,
        last_message_at: Some(m.timestamp),
        last_inbound_at: Some(m.timestamp),
        csat: None,
        nps: None,
        converted_at: None,
        conversion_amount_micros: None,
        archived_at: None,
        created_at: now,
        updated_at: now,
    }
}

/// One INSERT for the conversations the batch opens, returned in the order
/// given (matched by contact and channel: one open conversation each).
async fn insert_conversations(
    txn: &DatabaseTransaction,
    new: Vec<conversation::Model>,
) -> Result<Vec<conversation::Model>> {
    if new.is_empty() {
        return Ok(vec![]);
    }
    let keys: Vec<(i64, i64)> = new.iter().map(|c| (c.contact_id, c.channel_id)).collect();
    let rows = new.into_iter().map(|c| {
        let mut row = conversation::ActiveModel::from(c);
        row.id = NotSet;
        row
    });
    let mut by_key: HashMap<(i64, i64), conversation::Model> =
        conversation::Entity::insert_many(rows)
            .exec_with_returning(txn)
            .await?
            .into_iter()
            .map(|c| ((c.contact_id, c.channel_id), c))
            .collect();
    keys.iter()
        .map(|k| {
            by_key.remove(k).ok_or_else(|| {
                crate::DomainError::internal(std::io::Error::other(
                    "a new conversation did not come back from its INSERT",
                ))
            })
        })
        .collect()
}

/// One INSERT for the batch's messages, returned in the order given
/// (matched by WhatsApp id: the database returns them in any order).
async fn insert_messages(
    txn: &DatabaseTransaction,
    placed: &[Placed<'_>],
) -> Result<Vec<message::Model>> {
    let rows = placed.iter().map(|p| {
        let m = p.item.m;
        message::ActiveModel {
            conversation_id: Set(p.conversation.id),
            channel_id: Set(p.item.channel.id),
            direction: Set(Direction::Inbound),
            sender_kind: Set(SenderKind::Customer),
            message_type: Set(m.message_type),
            body: Set(m.body.clone()),
            media: Set(m.media.clone()),
            payload: Set(Some(m.payload.clone())),
            wa_message_id: Set(Some(m.wa_message_id.clone())),
            context_wa_id: Set(m.context_wa_id.clone()),
            status: Set(DeliveryStatus::Received),
            created_at: Set(m.timestamp),
            ..Default::default()
        }
    });
    let mut by_wa_id: HashMap<String, message::Model> = message::Entity::insert_many(rows)
        .exec_with_returning(txn)
        .await?
        .into_iter()
        .filter_map(|m| Some((m.wa_message_id.clone()?, m)))
        .collect();
    placed
        .iter()
        .map(|p| {
            by_wa_id.remove(&p.item.m.wa_message_id).ok_or_else(|| {
                crate::DomainError::internal(std::io::Error::other("inserted message not returned"))
            })
        })
        .collect()
}
