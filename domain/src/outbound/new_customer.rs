//! Meta's limit on writing to a new customer: at most
//! `new_customer_messages_per_minute` (5) outbound messages in any minute to
//! a customer who first wrote within the last 24 h and has no earlier
//! conversation; existing customers have no limit. Every outbound path asks
//! here: an agent's reply is refused (`RATE_LIMITED`), an automated message
//! is skipped and logged.
//!
//! The count runs in the caller's transaction, so messages queued earlier in
//! it count too. Ingest counts once per batch ([`recent_counts`]) and passes
//! each contact's count in.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use entity::{Direction, contact, conversation, message};
use sea_orm::sea_query::{Expr, ExprTrait, Func, Query};
use sea_orm::{
    ActiveEnum, ColumnTrait, ConnectionTrait, EntityTrait, JoinType, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, RelationTrait,
};

use crate::Result;

/// How far the limit looks back.
pub const WINDOW: Duration = Duration::seconds(60);

/// Whether the limit can apply to `contact` at all: it first wrote within 24 h.
pub fn is_recent(contact: &contact::Model, now: DateTime<Utc>) -> bool {
    contact.created_at > now - Duration::hours(24)
}

/// Outbound messages of the last minute to each of `contacts` the limit can
/// apply to, in one query; a contact without any may be absent.
pub async fn recent_counts<'a>(
    db: &impl ConnectionTrait,
    contacts: impl IntoIterator<Item = &'a contact::Model>,
    now: DateTime<Utc>,
) -> Result<HashMap<i64, u64>> {
    let ids: Vec<i64> = contacts
        .into_iter()
        .filter(|c| is_recent(c, now))
        .map(|c| c.id)
        .collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    // Direction is counted, not filtered: filtered, SQLite without
    // statistics reads every outbound message of the minute through the
    // (direction, created_at) index instead of the contacts' conversations.
    let outbound = Expr::case(
        Expr::col((message::Entity, message::Column::Direction)).eq(Direction::Outbound.to_value()),
        1,
    )
    .finally(0);
    let outbound: Expr = Func::sum(outbound).into();
    let rows: Vec<(i64, i64)> = message::Entity::find()
        .select_only()
        .column(conversation::Column::ContactId)
        .column_as(outbound, "n")
        .join(JoinType::InnerJoin, message::Relation::Conversation.def())
        .filter(message::Column::CreatedAt.gt(now - WINDOW))
        .filter(conversation::Column::ContactId.is_in(ids))
        .group_by(conversation::Column::ContactId)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(contact, n)| (contact, u64::try_from(n).unwrap_or(0)))
        .collect())
}

/// How long until one more message may go to the customer of `current`:
/// `None` when it may go now. `recent` is the count of the last minute's
/// messages to the contact when the caller has it ([`recent_counts`]).
pub async fn wait_before_next(
    db: &impl ConnectionTrait,
    contact: &contact::Model,
    current: &conversation::Model,
    per_minute: u64,
    recent: Option<u64>,
    now: DateTime<Utc>,
) -> Result<Option<Duration>> {
    if !is_recent(contact, now) {
        return Ok(None);
    }
    // Below the limit (the usual case) the count decides.
    let count = match recent {
        Some(n) => n,
        None => recent_counts(db, [contact], now)
            .await?
            .get(&contact.id)
            .copied()
            .unwrap_or(0),
    };
    if count < per_minute {
        return Ok(None);
    }
    let earlier = conversation::Entity::find()
        .filter(conversation::Column::ContactId.eq(contact.id))
        .filter(conversation::Column::Id.ne(current.id))
        .filter(conversation::Column::CreatedAt.lte(current.created_at))
        .count(db)
        .await?;
    if earlier > 0 {
        return Ok(None);
    }
    let oldest = message::Entity::find()
        .filter(message::Column::Direction.eq(Direction::Outbound))
        .filter(message::Column::CreatedAt.gt(now - WINDOW))
        .filter(
            message::Column::ConversationId.in_subquery(
                Query::select()
                    .column(conversation::Column::Id)
                    .from(conversation::Entity)
                    .and_where(conversation::Column::ContactId.eq(contact.id))
                    .to_owned(),
            ),
        )
        .order_by_asc(message::Column::CreatedAt)
        .one(db)
        .await?
        .map_or(now, |m| m.created_at);
    Ok(Some(oldest + WINDOW - now))
}
