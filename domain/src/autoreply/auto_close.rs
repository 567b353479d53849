//! Auto-close of conversations the bot answered: open, never assigned nor
//! answered by a person, not handed over, not held open by an agent's lock,
//! with a keyword (FAQ) answer to the customer's last message, and no word
//! from the customer for `auto_close_after` (default 60 min). A welcome or
//! offline notice alone answers nothing, so such a conversation waits for a
//! person. They are
//! resolved by the system, which is what the automation rate counts
//! (resolved without a human). No survey is sent: the customer has gone
//! quiet, and a survey would be one more unasked-for message.
//!
//! Every instance may sweep: each resolution is a conditional UPDATE that
//! re-checks the conditions, so a customer writing meanwhile keeps the
//! conversation open.

use chrono::{DateTime, Duration, Utc};
use entity::{ConversationStatus, TriggerMode, automation_hit, conversation};
use sea_orm::sea_query::{Expr, ExprTrait, Query, SelectStatement};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};

use super::engine::{HIT_HANDOVER, HIT_REPLY};
use crate::{Actor, Domain, Result};

/// Conversations resolved per sweep at most; the next sweep takes the rest.
const BATCH: u64 = 200;

/// Automation settings; defaults in the api's config.
#[derive(Debug, Clone)]
pub struct AutomationConfig {
    /// Quiet time after which a bot-answered conversation is resolved;
    /// `None` never auto-closes.
    pub auto_close_after: Option<Duration>,
}

impl Default for AutomationConfig {
    fn default() -> Self {
        Self {
            auto_close_after: Some(Duration::minutes(60)),
        }
    }
}

/// The automation hits of one kind on the conversation of the outer query.
fn hits_of_this_conversation(kind: &str) -> SelectStatement {
    Query::select()
        .expr(Expr::val(1))
        .from(automation_hit::Entity)
        .and_where(
            Expr::col((
                automation_hit::Entity,
                automation_hit::Column::ConversationId,
            ))
            .equals((conversation::Entity, conversation::Column::Id)),
        )
        .and_where(Expr::col((automation_hit::Entity, automation_hit::Column::Kind)).eq(kind))
        .to_owned()
}

/// The conditions, as a filter on `conversations`: checked by the sweep's
/// SELECT and again by each UPDATE.
fn bot_answered_and_quiet(quiet_since: DateTime<Utc>) -> Condition {
    let faq_answered_last = hits_of_this_conversation(HIT_REPLY)
        .and_where(
            Expr::col((automation_hit::Entity, automation_hit::Column::TriggerMode))
                .eq(TriggerMode::Keyword),
        )
        .and_where(
            Expr::col((automation_hit::Entity, automation_hit::Column::CreatedAt)).gte(Expr::col(
                (conversation::Entity, conversation::Column::LastInboundAt),
            )),
        )
        .to_owned();
    let handed_over = hits_of_this_conversation(HIT_HANDOVER);
    Condition::all()
        .add(conversation::Column::Status.eq(ConversationStatus::Open))
        .add(conversation::Column::AssigneeId.is_null())
        .add(conversation::Column::FirstResponseAt.is_null())
        .add(conversation::Column::ResolvedAt.is_null())
        .add(conversation::Column::LockHolderId.is_null())
        .add(conversation::Column::LastInboundAt.lte(quiet_since))
        .add(Expr::exists(faq_answered_last))
        .add(Expr::exists(handed_over).not())
}

impl Domain {
    /// Resolves the bot-answered conversations whose customer has been quiet
    /// long enough; returns their ids.
    pub async fn auto_close_bot_answered(&self) -> Result<Vec<i64>> {
        let Some(after) = self.config.automation.auto_close_after else {
            return Ok(vec![]);
        };
        let now = self.clock.now();
        let quiet_since = now - after;
        let candidates = conversation::Entity::find()
            .filter(bot_answered_and_quiet(quiet_since))
            .order_by_asc(conversation::Column::CreatedAt)
            .limit(BATCH)
            .all(&self.db)
            .await?;
        let system = Actor::system();
        let mut closed = vec![];
        for before in candidates {
            let txn = self.db.begin().await?;
            let done = conversation::Entity::update_many()
                .col_expr(
                    conversation::Column::Status,
                    Expr::value(ConversationStatus::Resolved),
                )
                .col_expr(conversation::Column::ResolvedAt, Expr::value(now))
                .col_expr(conversation::Column::UpdatedAt, Expr::value(now))
                .filter(conversation::Column::Id.eq(before.id))
                .filter(bot_answered_and_quiet(quiet_since))
                .exec(&txn)
                .await?;
            if done.rows_affected != 1 {
                // The customer wrote, an agent stepped in, or another
                // instance closed it.
                txn.rollback().await?;
                continue;
            }
            let after = self
                .record_change(
                    &txn,
                    &system,
                    &before,
                    "conversation.auto_resolve",
                    None,
                    now,
                )
                .await?;
            self.commit_change(txn, &before, &after, "resolved", vec![])
                .await?;
            closed.push(after.id);
        }
        Ok(closed)
    }
}
