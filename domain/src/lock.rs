//! The conversation lock: opening a conversation gives one agent exclusive
//! rights for `lock_ttl` (7 min by default, 5–15); it goes back to the pool
//! after `lock_idle` (3 min) without activity by the holder. Ownership is
//! decided by one conditional UPDATE, so two agents can never both hold it.

use chrono::{DateTime, Utc};
use entity::{conversation, user};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect,
    TransactionTrait,
};

use crate::audit::{self, Change};
use crate::events::{EventPayload, Scope};
use crate::{Actor, Capability, Domain, DomainError, Result};

/// Whether the lock on `c` is held by someone at `now`.
pub fn live_holder(
    c: &conversation::Model,
    now: DateTime<Utc>,
    idle: chrono::Duration,
) -> Option<i64> {
    let holder = c.lock_holder_id?;
    let expired = c.lock_expires_at.is_none_or(|e| e <= now);
    let idle_out = c.lock_last_activity_at.is_none_or(|a| a <= now - idle);
    (!expired && !idle_out).then_some(holder)
}

/// Rows whose lock is free for `user_id` at `now`.
fn free_for(user_id: i64, now: DateTime<Utc>, idle: chrono::Duration) -> Condition {
    Condition::any()
        .add(conversation::Column::LockHolderId.is_null())
        .add(conversation::Column::LockHolderId.eq(user_id))
        .add(conversation::Column::LockExpiresAt.lte(now))
        .add(conversation::Column::LockLastActivityAt.lte(now - idle))
}

impl Domain {
    /// Takes (or renews) the lock for the acting agent.
    pub async fn open_conversation(&self, actor: &Actor, id: i64) -> Result<conversation::Model> {
        self.conversation(actor, id).await?;
        let user_id = actor
            .user_id()
            .ok_or_else(|| DomainError::forbidden("only staff users can take a lock"))?;
        let now = self.clock.now();
        let cfg = &self.config;
        let txn = self.db.begin().await?;
        let taken = conversation::Entity::update_many()
            .col_expr(conversation::Column::LockHolderId, Expr::value(user_id))
            .col_expr(conversation::Column::LockAcquiredAt, Expr::value(now))
            .col_expr(conversation::Column::LockLastActivityAt, Expr::value(now))
            .col_expr(
                conversation::Column::LockExpiresAt,
                Expr::value(now + cfg.lock_ttl),
            )
            .filter(conversation::Column::Id.eq(id))
            .filter(free_for(user_id, now, cfg.lock_idle))
            .exec(&txn)
            .await?;
        if taken.rows_affected == 0 {
            txn.rollback().await?;
            return Err(self.lock_held_error(id, now).await);
        }
        let after = conversation::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| DomainError::not_found("conversation", id))?;
        audit::record(
            &txn,
            actor,
            now,
            Change::new("conversation.lock", "conversation", id).after(&lock_state(&after)),
        )
        .await?;
        txn.commit().await?;
        self.emit_lock(&after);
        Ok(after)
    }

    /// Extends the holder's lock by a full `lock_ttl` from now.
    pub async fn renew_lock(&self, actor: &Actor, id: i64) -> Result<conversation::Model> {
        self.conversation(actor, id).await?;
        let user_id = actor.user_id().ok_or(DomainError::Unauthenticated)?;
        let now = self.clock.now();
        let renewed = conversation::Entity::update_many()
            .col_expr(conversation::Column::LockLastActivityAt, Expr::value(now))
            .col_expr(
                conversation::Column::LockExpiresAt,
                Expr::value(now + self.config.lock_ttl),
            )
            .filter(conversation::Column::Id.eq(id))
            .filter(conversation::Column::LockHolderId.eq(user_id))
            .filter(conversation::Column::LockExpiresAt.gt(now))
            .filter(conversation::Column::LockLastActivityAt.gt(now - self.config.lock_idle))
            .exec(&self.db)
            .await?;
        if renewed.rows_affected == 0 {
            return Err(DomainError::Conflict(
                "you do not hold the lock on this conversation: open it again".into(),
            ));
        }
        let after = self.conversation(actor, id).await?;
        self.emit_lock(&after);
        Ok(after)
    }

    /// The holder releases its lock; an Editor or Admin may release anyone's.
    pub async fn release_lock(&self, actor: &Actor, id: i64) -> Result<conversation::Model> {
        let before = self.conversation(actor, id).await?;
        let now = self.clock.now();
        let mine = before.lock_holder_id.is_some() && before.lock_holder_id == actor.user_id();
        if !mine {
            if live_holder(&before, now, self.config.lock_idle).is_none() {
                return Ok(before);
            }
            actor.require(Capability::ManageConversations)?;
        }
        let txn = self.db.begin().await?;
        clear_lock(&txn, Condition::all().add(conversation::Column::Id.eq(id))).await?;
        let after = conversation::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| DomainError::not_found("conversation", id))?;
        audit::record(
            &txn,
            actor,
            now,
            Change::new("conversation.unlock", "conversation", id)
                .before(&lock_state(&before))
                .after(&lock_state(&after)),
        )
        .await?;
        txn.commit().await?;
        self.emit_lock(&after);
        Ok(after)
    }

    /// Releases every idle or expired lock; the lock worker calls this.
    /// Returns the conversations released.
    pub async fn release_stale_locks(&self) -> Result<Vec<conversation::Model>> {
        let now = self.clock.now();
        let stale = Condition::all()
            .add(conversation::Column::LockHolderId.is_not_null())
            .add(
                Condition::any()
                    .add(conversation::Column::LockExpiresAt.lte(now))
                    .add(conversation::Column::LockLastActivityAt.lte(now - self.config.lock_idle)),
            );
        let txn = self.db.begin().await?;
        let candidates = conversation::Entity::find()
            .filter(stale.clone())
            .limit(1000)
            .all(&txn)
            .await?;
        if candidates.is_empty() {
            return Ok(vec![]);
        }
        let ids: Vec<i64> = candidates.iter().map(|c| c.id).collect();
        // The condition is repeated so a lock renewed meanwhile is left alone.
        clear_lock(&txn, stale.add(conversation::Column::Id.is_in(ids.clone()))).await?;
        let released = conversation::Entity::find()
            .filter(conversation::Column::Id.is_in(ids))
            .filter(conversation::Column::LockHolderId.is_null())
            .all(&txn)
            .await?;
        for c in &released {
            audit::record(
                &txn,
                &Actor::system(),
                now,
                Change::new("conversation.unlock", "conversation", c.id).after(&lock_state(c)),
            )
            .await?;
        }
        txn.commit().await?;
        for c in &released {
            self.emit_lock(c);
        }
        Ok(released)
    }

    /// Loads a conversation the actor may change, refusing when someone else
    /// holds its lock.
    pub async fn conversation_for_action(
        &self,
        actor: &Actor,
        id: i64,
    ) -> Result<conversation::Model> {
        let c = self.conversation(actor, id).await?;
        let now = self.clock.now();
        match live_holder(&c, now, self.config.lock_idle) {
            Some(holder) if Some(holder) != actor.user_id() => {
                Err(self.lock_held_error(id, now).await)
            }
            _ => Ok(c),
        }
    }

    /// The holder is typing: counts as lock activity (the idle clock restarts;
    /// the expiry stays). Someone else's live lock answers `CONFLICT` with the
    /// holder; no lock at all asks to open the conversation first.
    pub async fn typing(&self, actor: &Actor, id: i64) -> Result<conversation::Model> {
        let c = self.conversation_for_action(actor, id).await?;
        let user_id = actor
            .user_id()
            .ok_or_else(|| DomainError::forbidden("only staff users type replies"))?;
        let now = self.clock.now();
        let touched = conversation::Entity::update_many()
            .col_expr(conversation::Column::LockLastActivityAt, Expr::value(now))
            .filter(conversation::Column::Id.eq(id))
            .filter(conversation::Column::LockHolderId.eq(user_id))
            .filter(conversation::Column::LockExpiresAt.gt(now))
            .filter(conversation::Column::LockLastActivityAt.gt(now - self.config.lock_idle))
            .exec(&self.db)
            .await?;
        if touched.rows_affected == 0 {
            return match live_holder(&c, now, self.config.lock_idle) {
                Some(holder) if holder != user_id => Err(self.lock_held_error(id, now).await),
                _ => Err(DomainError::Conflict(
                    "you do not hold the lock on this conversation: open it first".into(),
                )),
            };
        }
        Ok(conversation::Model {
            lock_last_activity_at: Some(now),
            ..c
        })
    }

    /// A reply, note or tag by the holder keeps the lock alive.
    pub async fn touch_lock_activity(
        &self,
        db: &impl ConnectionTrait,
        actor: &Actor,
        c: &conversation::Model,
    ) -> Result<()> {
        if let Some(user_id) = actor.user_id().filter(|u| c.lock_holder_id == Some(*u)) {
            conversation::Entity::update_many()
                .col_expr(
                    conversation::Column::LockLastActivityAt,
                    Expr::value(self.clock.now()),
                )
                .filter(conversation::Column::Id.eq(c.id))
                .filter(conversation::Column::LockHolderId.eq(user_id))
                .exec(db)
                .await?;
        }
        Ok(())
    }

    pub(crate) async fn lock_held_error(&self, id: i64, now: DateTime<Utc>) -> DomainError {
        let current = match conversation::Entity::find_by_id(id).one(&self.db).await {
            Ok(Some(c)) => c,
            Ok(None) => return DomainError::not_found("conversation", id),
            Err(e) => return e.into(),
        };
        let Some(holder_id) = live_holder(&current, now, self.config.lock_idle) else {
            return DomainError::Conflict("the lock changed hands: try again".into());
        };
        let holder_name = user::Entity::find_by_id(holder_id)
            .one(&self.db)
            .await
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_default();
        DomainError::LockHeld {
            holder_id,
            holder_name,
            until: current.lock_expires_at.unwrap_or(now),
        }
    }

    pub(crate) fn emit_lock(&self, c: &conversation::Model) {
        self.emit(EventPayload::LockChanged {
            scope: Scope::from(c),
            holder_id: c.lock_holder_id,
            expires_at: c.lock_expires_at,
        });
    }
}

pub(crate) async fn clear_lock(db: &impl ConnectionTrait, which: Condition) -> Result<()> {
    let none: Option<i64> = None;
    let never: Option<DateTime<Utc>> = None;
    conversation::Entity::update_many()
        .col_expr(conversation::Column::LockHolderId, Expr::value(none))
        .col_expr(conversation::Column::LockAcquiredAt, Expr::value(never))
        .col_expr(conversation::Column::LockLastActivityAt, Expr::value(never))
        .col_expr(conversation::Column::LockExpiresAt, Expr::value(never))
        .filter(which)
        .exec(db)
        .await?;
    Ok(())
}

fn lock_state(c: &conversation::Model) -> serde_json::Value {
    serde_json::json!({
        "lockHolderId": c.lock_holder_id,
        "lockExpiresAt": c.lock_expires_at,
    })
}
