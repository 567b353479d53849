//! Meta's limit on writing to a new customer: at most
//! `new_customer_messages_per_minute` (5) outbound messages in any minute to
//! a customer who first wrote within the last 24 h and has no earlier
//! conversation; existing customers have no limit. Every outbound path asks
//! here: an agent's reply is refused (`RATE_LIMITED`), an automated message
//! is skipped and logged.
//!
//! The count runs in the caller's transaction, so messages queued earlier in
//! it count too.

use chrono::{DateTime, Duration, Utc};
use entity::{Direction, contact, conversation, message};
use sea_orm::sea_query::Query;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};

use crate::Result;

/// How far the limit looks back.
pub const WINDOW: Duration = Duration::seconds(60);

/// How long until one more message may go to the customer of `current`:
/// `None` when it may go now.
pub async fn wait_before_next(
    db: &impl ConnectionTrait,
    contact: &contact::Model,
    current: &conversation::Model,
    per_minute: u64,
    now: DateTime<Utc>,
) -> Result<Option<Duration>> {
    if contact.created_at <= now - Duration::hours(24) {
        return Ok(None);
    }
    // The recent messages first: below the limit (the usual case) one
    // query decides.
    let recent = message::Entity::find()
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
        );
    if recent.clone().count(db).await? < per_minute {
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
    let oldest = recent
        .order_by_asc(message::Column::CreatedAt)
        .one(db)
        .await?
        .map_or(now, |m| m.created_at);
    Ok(Some(oldest + WINDOW - now))
}
