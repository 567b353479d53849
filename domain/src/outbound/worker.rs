//! The outbox worker: sends queued messages through the [`MessageSender`],
//! safe with several instances.
//!
//! **Claiming.** Rows are taken, up to 16 at a time, with one conditional
//! UPDATE (`status = 'sending', locked_until = now + 30 s WHERE id IN (…) AND
//! (status = 'pending' OR (status = 'sending' AND locked_until < now)) AND
//! next_attempt_at <= now RETURNING *`); only the instance whose UPDATE
//! changed a row sends it. Messages of one conversation go out in order:
//! only the oldest unfinished row of a conversation is eligible, so a
//! retried message holds back the ones written after it.
//!
//! **Delivery guarantee: at least once.** The row moves to `sent` in the same
//! transaction that stores Meta's message id, the ledger row and the
//! message's status (the sends of a chunk that finish together share that
//! transaction, so a month's free allowance is counted in order). The HTTP
//! client's timeout (20 s) is shorter than the claim (30 s), so a live
//! instance never has its claim taken over while it waits for Meta. Hence a message is never sent twice as long as the process
//! did not die (or lose its database) between Meta's answer and that commit;
//! if it did, the claim expires and another attempt sends it again. A
//! timed-out request that Meta did receive is the same boundary: it is
//! retried like any network error.
//!
//! **Retries.** Transient failures (no response, HTTP 5xx or 429, Meta codes
//! 130429, 131056, 131000, 131016, 131057) are retried with exponential
//! backoff and jitter through `next_attempt_at`, at most [`MAX_ATTEMPTS`]
//! times; permanent ones never are: the message is marked failed with Meta's
//! code and title, and a `MessageAdded` event tells the agent.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use entity::{
    DeliveryStatus, OutboxStatus, SenderKind, channel, contact, conversation, message, outbox,
};
use rand::Rng;
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait, JoinType,
    QueryFilter, QueryOrder, QuerySelect, RelationTrait, TransactionTrait, UpdateMany,
};
use tokio::task::JoinSet;

use super::content::OutboundContent;
use super::{MessagingConfig, OUTSIDE_WINDOW_CODE, Retry, SendError, SendRequest, may_automate};
use crate::audit::{self, Change};
use crate::events::{EventPayload, Scope};
use crate::{Actor, Domain, Result, window};

/// How long a claim lasts. The api's HTTP client times out well before.
pub const CLAIM_FOR: Duration = Duration::seconds(30);
/// Attempts before a transient failure is given up as permanent.
pub const MAX_ATTEMPTS: i32 = 12;
/// First retry after at most this; doubles per attempt.
const BACKOFF_BASE_SECS: i64 = 5;
const BACKOFF_MAX_SECS: i64 = 15 * 60;
/// Rows looked at per round, and sends in flight at once.
const BATCH: u64 = 200;
const CONCURRENCY: usize = 16;
/// A run stops after this many rounds even if work remains (the next tick
/// continues), so one call never monopolises the worker.
const MAX_ROUNDS: usize = 50;

/// What one run of the outbox did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct OutboxRun {
    /// Accepted by Meta.
    pub sent: usize,
    /// Failed for good (marked on the message).
    pub failed: usize,
    /// Failed transiently, scheduled again.
    pub retried: usize,
    /// Held back by the throughput or pair limit.
    pub deferred: usize,
}

impl std::ops::AddAssign for OutboxRun {
    fn add_assign(&mut self, o: Self) {
        self.sent += o.sent;
        self.failed += o.failed;
        self.retried += o.retried;
        self.deferred += o.deferred;
    }
}

/// A claimed row with what sending it needs.
struct Claimed {
    outbox: outbox::Model,
    message: message::Model,
    conversation: conversation::Model,
    contact: contact::Model,
    channel: channel::Model,
}

impl Claimed {
    /// Reads the claimed rows' messages, conversations, contacts and
    /// channels, one query each. A row whose data is gone keeps its claim
    /// until it expires, logged.
    async fn load(db: &impl ConnectionTrait, rows: Vec<outbox::Model>) -> Result<Vec<Self>> {
        if rows.is_empty() {
            return Ok(vec![]);
        }
        let messages = by_id(
            message::Entity::find()
                .filter(message::Column::Id.is_in(rows.iter().map(|r| r.message_id)))
                .all(db)
                .await?,
            |m| m.id,
        );
        let conversations = by_id(
            conversation::Entity::find()
                .filter(
                    conversation::Column::Id.is_in(messages.values().map(|m| m.conversation_id)),
                )
                .all(db)
                .await?,
            |c| c.id,
        );
        let contacts = by_id(
            contact::Entity::find()
                .filter(contact::Column::Id.is_in(conversations.values().map(|c| c.contact_id)))
                .all(db)
                .await?,
            |c| c.id,
        );
        let channels = by_id(
            channel::Entity::find()
                .filter(channel::Column::Id.is_in(rows.iter().map(|r| r.channel_id)))
                .all(db)
                .await?,
            |c| c.id,
        );
        Ok(rows
            .into_iter()
            .filter_map(|outbox| {
                let found = messages.get(&outbox.message_id).and_then(|message| {
                    let conversation = conversations.get(&message.conversation_id)?;
                    let contact = contacts.get(&conversation.contact_id)?;
                    Some((
                        message,
                        conversation,
                        contact,
                        channels.get(&outbox.channel_id)?,
                    ))
                });
                let Some((message, conversation, contact, channel)) = found else {
                    tracing::warn!(outbox_id = outbox.id, "outbox row without its data");
                    return None;
                };
                Some(Self {
                    message: message.clone(),
                    conversation: conversation.clone(),
                    contact: contact.clone(),
                    channel: channel.clone(),
                    outbox,
                })
            })
            .collect())
    }
}

fn by_id<T>(rows: Vec<T>, id: impl Fn(&T) -> i64) -> HashMap<i64, T> {
    rows.into_iter().map(|r| (id(&r), r)).collect()
}

/// Rows the worker may claim at `now`.
fn claimable(now: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(outbox::Column::NextAttemptAt.lte(now))
        .add(
            Condition::any()
                .add(outbox::Column::Status.eq(OutboxStatus::Pending))
                .add(
                    Condition::all()
                        .add(outbox::Column::Status.eq(OutboxStatus::Sending))
                        .add(outbox::Column::LockedUntil.lt(now)),
                ),
        )
}

/// Exponential backoff with "equal jitter": half the delay fixed, half random.
/// Meta's pair-rate error (131056) asks for 4^n seconds; a server-given delay
/// is honoured.
pub fn backoff(attempt: i32, err: &SendError) -> Duration {
    let n = attempt.clamp(1, 30) as u32;
    let mut secs = BACKOFF_BASE_SECS.saturating_mul(1i64 << std::cmp::min(n - 1, 20));
    if err.code == Some(131_056) {
        secs = std::cmp::max(secs, 4i64.saturating_pow(n));
    }
    let secs = std::cmp::min(secs, BACKOFF_MAX_SECS);
    let ms = secs * 1000;
    let jittered = ms / 2 + rand::rng().random_range(0..=ms / 2);
    let delay = Duration::milliseconds(jittered);
    match err.retry_after {
        Some(after) if after > delay => std::cmp::min(after, Duration::seconds(BACKOFF_MAX_SECS)),
        _ => delay,
    }
}

impl Domain {
    /// Sends what is due now, round after round until nothing more can go
    /// (or [`MAX_ROUNDS`]). The worker calls it on every tick and wake-up;
    /// tests call it directly.
    pub async fn run_outbox_once(&self) -> Result<OutboxRun> {
        let mut total = OutboxRun::default();
        for _ in 0..MAX_ROUNDS {
            let round = self.outbox_round().await?;
            total += round;
            if round.sent + round.failed == 0 {
                break;
            }
        }
        Ok(total)
    }

    async fn outbox_round(&self) -> Result<OutboxRun> {
        let ids = self.outbox_heads(self.clock.now()).await?;
        let mut run = OutboxRun::default();
        // A chunk is claimed only when it can be sent at once, so that every
        // claim outlives its send (the HTTP timeout is shorter than it).
        for chunk in ids.chunks(CONCURRENCY) {
            let now = self.clock.now();
            let claimed = self.claim(chunk, now).await?;
            let rows = Claimed::load(&self.db, claimed).await?;
            let mut tasks = JoinSet::new();
            for row in rows {
                let domain = self.clone();
                tasks.spawn(async move { domain.attempt(row).await });
            }
            // Results are written as they come; those that came together
            // share one transaction (one commit instead of one per message).
            while let Some(first) = tasks.join_next().await {
                let mut done = vec![];
                for joined in
                    std::iter::once(first).chain(std::iter::from_fn(|| tasks.try_join_next()))
                {
                    match joined {
                        Ok(finish) => done.push(finish),
                        Err(e) => tracing::error!(error = %e, "outbox task panicked"),
                    }
                }
                let size = done.len();
                match self.finish_all(done).await {
                    Ok(written) => run += written,
                    // The claims expire and the rows are tried again.
                    Err(e) => tracing::warn!(error = %e, size, "outbox results not written"),
                }
            }
        }
        Ok(run)
    }

    /// Due rows that are the oldest unfinished row of their conversation.
    async fn outbox_heads(&self, now: DateTime<Utc>) -> Result<Vec<i64>> {
        let due: Vec<(i64, i64)> = outbox::Entity::find()
            .select_only()
            .column(outbox::Column::Id)
            .column(message::Column::ConversationId)
            .join(JoinType::InnerJoin, outbox::Relation::Message.def())
            .filter(claimable(now))
            .order_by_asc(outbox::Column::Id)
            .limit(BATCH)
            .into_tuple()
            .all(&self.db)
            .await?;
        if due.is_empty() {
            return Ok(vec![]);
        }
        let mut conversations: Vec<i64> = due.iter().map(|(_, c)| *c).collect();
        conversations.sort_unstable();
        conversations.dedup();
        let heads: HashMap<i64, i64> = outbox::Entity::find()
            .select_only()
            .column(message::Column::ConversationId)
            .expr(Func::min(Expr::col((outbox::Entity, outbox::Column::Id))))
            .join(JoinType::InnerJoin, outbox::Relation::Message.def())
            .filter(outbox::Column::Status.is_in([OutboxStatus::Pending, OutboxStatus::Sending]))
            .filter(message::Column::ConversationId.is_in(conversations))
            .group_by(message::Column::ConversationId)
            .into_tuple::<(i64, i64)>()
            .all(&self.db)
            .await?
            .into_iter()
            .collect();
        Ok(due
            .into_iter()
            .filter(|(id, c)| heads.get(c) == Some(id))
            .map(|(id, _)| id)
            .collect())
    }

    /// The conditional UPDATE that makes this instance the only sender of
    /// the rows it returns (one statement for the chunk).
    async fn claim(&self, ids: &[i64], now: DateTime<Utc>) -> Result<Vec<outbox::Model>> {
        Ok(outbox::Entity::update_many()
            .col_expr(outbox::Column::Status, Expr::value(OutboxStatus::Sending))
            .col_expr(outbox::Column::LockedUntil, Expr::value(now + CLAIM_FOR))
            .col_expr(outbox::Column::UpdatedAt, Expr::value(now))
            .filter(outbox::Column::Id.is_in(ids.iter().copied()))
            .filter(claimable(now))
            .exec_with_returning(&self.db)
            .await?)
    }

    /// Sends one claimed row, or decides why it cannot go; writes nothing.
    async fn attempt(&self, claimed: Claimed) -> Finish {
        let now = self.clock.now();
        let last_inbound =
            window::last_customer_message(&claimed.conversation, Some(&claimed.contact));
        let cfg = &self.config.messaging;
        let (content, to, token) = match sendable(
            &claimed.message,
            &claimed.contact,
            &claimed.channel,
            last_inbound,
            cfg,
            now,
        ) {
            Ok(ready) => ready,
            Err((code, title)) => {
                return Finish::Failed {
                    claimed: Box::new(claimed),
                    code,
                    title,
                    at: now,
                };
            }
        };

        if let Err(wait) = self.outbox.throttle.try_acquire(
            claimed.channel.id,
            &to,
            cfg.outbox_rate_per_second,
            now,
        ) {
            return Finish::Released {
                row_id: claimed.outbox.id,
                retry_at: now + wait,
                error: None,
            };
        }

        let request = SendRequest {
            phone_number_id: claimed.channel.phone_number_id.clone(),
            access_token: token,
            to,
            content,
            reply_to: claimed.message.context_wa_id.clone(),
        };
        let result = self.sender.send(&request).await;
        let now = self.clock.now();
        let row = &claimed.outbox;
        match result {
            Ok(sent) => Finish::Sent {
                claimed: Box::new(claimed),
                last_inbound,
                wa_message_id: sent.wa_message_id,
                at: now,
            },
            Err(err) => {
                let attempt = row.attempts + 1;
                if err.classify() == Retry::Transient && attempt < MAX_ATTEMPTS {
                    tracing::info!(outbox_id = row.id, attempt, error = %err, "transient send failure: will retry");
                    Finish::Released {
                        row_id: row.id,
                        retry_at: now + backoff(attempt, &err),
                        error: Some(truncate(&err.to_string())),
                    }
                } else {
                    tracing::warn!(outbox_id = row.id, attempt, error = %err, "send failed for good");
                    let title = match &err.details {
                        Some(d) if !d.is_empty() && !err.title.contains(d.as_str()) => {
                            format!("{}: {d}", err.title)
                        }
                        _ => err.title.clone(),
                    };
                    Finish::Failed {
                        claimed: Box::new(claimed),
                        code: err.code,
                        title,
                        at: now,
                    }
                }
            }
        }
    }

    /// Writes the results of several attempts in one transaction, then
    /// publishes the messages' new statuses.
    async fn finish_all(&self, done: Vec<Finish>) -> Result<OutboxRun> {
        let now = self.clock.now();
        let mut run = OutboxRun::default();
        let mut events = vec![];
        let mut failures = vec![];
        let txn = self.db.begin().await?;
        for finish in &done {
            match finish {
                Finish::Sent {
                    claimed,
                    last_inbound,
                    wa_message_id,
                    at,
                } => {
                    self.mark_sent(&txn, claimed, *last_inbound, wa_message_id, *at)
                        .await?;
                    run.sent += 1;
                    events.push(status_event(
                        &claimed.message,
                        &claimed.conversation,
                        DeliveryStatus::Sent,
                    ));
                }
                Finish::Failed {
                    claimed,
                    code,
                    title,
                    at,
                } => {
                    failures.push(mark_failed(&txn, claimed, *code, title, *at).await?);
                    run.failed += 1;
                    events.push(status_event(
                        &claimed.message,
                        &claimed.conversation,
                        DeliveryStatus::Failed,
                    ));
                }
                Finish::Released {
                    row_id,
                    retry_at,
                    error,
                } => {
                    release(&txn, *row_id, *retry_at, error.as_deref(), now).await?;
                    match error {
                        Some(_) => run.retried += 1,
                        None => run.deferred += 1,
                    }
                }
            }
        }
        audit::record_all(&txn, &Actor::system(), now, failures).await?;
        txn.commit().await?;
        for event in events {
            self.emit(event);
        }
        Ok(run)
    }

    /// Moves the row to `sent` with Meta's id, the ledger row and the
    /// message's status.
    async fn mark_sent(
        &self,
        txn: &DatabaseTransaction,
        claimed: &Claimed,
        last_inbound: Option<DateTime<Utc>>,
        wa_message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let Claimed {
            outbox: row,
            message: msg,
            conversation: conv,
            channel,
            ..
        } = claimed;
        let moved = ended(OutboxStatus::Sent, None, now)
            .filter(outbox::Column::Id.eq(row.id))
            .filter(outbox::Column::Status.eq(OutboxStatus::Sending))
            .exec(txn)
            .await?;
        if moved.rows_affected == 0 {
            tracing::warn!(outbox_id = row.id, "outbox row changed while sending");
        }
        let charge = self
            .record_charge(txn, msg, conv, channel, last_inbound, now)
            .await?;
        message::Entity::update_many()
            .col_expr(message::Column::WaMessageId, Expr::value(wa_message_id))
            .col_expr(message::Column::Status, Expr::value(DeliveryStatus::Sent))
            .col_expr(message::Column::SentAt, Expr::value(now))
            .col_expr(
                message::Column::CostMicros,
                Expr::value(charge.total_micros()),
            )
            .filter(message::Column::Id.eq(msg.id))
            .exec(txn)
            .await?;
        Ok(())
    }
}

/// What an attempt leaves to write, in the transaction of the attempts that
/// finished with it.
enum Finish {
    /// Accepted by Meta.
    Sent {
        claimed: Box<Claimed>,
        last_inbound: Option<DateTime<Utc>>,
        wa_message_id: String,
        at: DateTime<Utc>,
    },
    /// Failed for good, with Meta's code (or ours) and a title for the agent.
    Failed {
        claimed: Box<Claimed>,
        code: Option<i64>,
        title: String,
        at: DateTime<Utc>,
    },
    /// Given back to be tried at `retry_at`: after a transient failure (with
    /// its error, counted as an attempt) or held back by a limit (without).
    Released {
        row_id: i64,
        retry_at: DateTime<Utc>,
        error: Option<String>,
    },
}

fn status_event(
    msg: &message::Model,
    conv: &conversation::Model,
    status: DeliveryStatus,
) -> EventPayload {
    EventPayload::MessageAdded {
        scope: Scope::from(conv),
        message_id: msg.id,
        direction: msg.direction,
        status,
    }
}

/// The UPDATE that ends a claimed row's last attempt as `status`, with its
/// error (none once sent).
fn ended(
    status: OutboxStatus,
    last_error: Option<String>,
    now: DateTime<Utc>,
) -> UpdateMany<outbox::Entity> {
    outbox::Entity::update_many()
        .col_expr(outbox::Column::Status, Expr::value(status))
        .col_expr(
            outbox::Column::LockedUntil,
            Expr::value(None::<DateTime<Utc>>),
        )
        .col_expr(
            outbox::Column::Attempts,
            Expr::col(outbox::Column::Attempts).add(1),
        )
        .col_expr(outbox::Column::LastError, Expr::value(last_error))
        .col_expr(outbox::Column::UpdatedAt, Expr::value(now))
}

/// Gives a claimed row back to be tried at `at`.
async fn release(
    txn: &DatabaseTransaction,
    row_id: i64,
    at: DateTime<Utc>,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut update = outbox::Entity::update_many()
        .col_expr(outbox::Column::Status, Expr::value(OutboxStatus::Pending))
        .col_expr(
            outbox::Column::LockedUntil,
            Expr::value(None::<DateTime<Utc>>),
        )
        .col_expr(outbox::Column::NextAttemptAt, Expr::value(at))
        .col_expr(outbox::Column::UpdatedAt, Expr::value(now));
    if let Some(e) = error {
        update = update
            .col_expr(
                outbox::Column::Attempts,
                Expr::col(outbox::Column::Attempts).add(1),
            )
            .col_expr(outbox::Column::LastError, Expr::value(e));
    }
    update
        .filter(outbox::Column::Id.eq(row_id))
        .filter(outbox::Column::Status.eq(OutboxStatus::Sending))
        .exec(txn)
        .await?;
    Ok(())
}

/// Marks the row and its message failed; returns the audit entry.
async fn mark_failed(
    txn: &DatabaseTransaction,
    claimed: &Claimed,
    code: Option<i64>,
    title: &str,
    now: DateTime<Utc>,
) -> Result<Change<'static>> {
    let title = truncate(title);
    let code = code.and_then(|c| i32::try_from(c).ok());
    ended(OutboxStatus::Failed, Some(title.clone()), now)
        .filter(outbox::Column::Id.eq(claimed.outbox.id))
        .exec(txn)
        .await?;
    let msg_id = claimed.message.id;
    message::Entity::update_many()
        .col_expr(message::Column::Status, Expr::value(DeliveryStatus::Failed))
        .col_expr(message::Column::ErrorCode, Expr::value(code))
        .col_expr(message::Column::ErrorTitle, Expr::value(title.clone()))
        .col_expr(message::Column::FailedAt, Expr::value(now))
        .filter(message::Column::Id.eq(msg_id))
        .exec(txn)
        .await?;
    Ok(
        Change::new("message.fail", "message", msg_id).after(&serde_json::json!({
            "status": DeliveryStatus::Failed,
            "errorCode": code,
            "errorTitle": title,
        })),
    )
}

/// What to send, or why the message must fail without reaching Meta (an
/// optional Meta-like code and a title for the agent).
fn sendable(
    msg: &message::Model,
    contact: &contact::Model,
    channel: &channel::Model,
    last_inbound: Option<DateTime<Utc>>,
    cfg: &MessagingConfig,
    now: DateTime<Utc>,
) -> std::result::Result<(OutboundContent, String, String), (Option<i64>, String)> {
    let refuse = |title: &str| (None, title.to_string());
    let content: OutboundContent = msg
        .payload
        .clone()
        .and_then(|p| serde_json::from_value(p).ok())
        .ok_or_else(|| refuse("the message content cannot be read"))?;
    let to = contact
        .wa_id
        .clone()
        .filter(|_| contact.erased_at.is_none())
        .ok_or_else(|| refuse("the customer has no WhatsApp number"))?;
    if !channel.is_active {
        return Err(refuse("the channel is inactive"));
    }
    let token = channel
        .access_token
        .clone()
        .ok_or_else(|| refuse("the channel has no access token"))?;
    // System messages are service notices (e.g. SLA transfers), not marketing.
    let automated = msg.sender_kind == SenderKind::Bot;
    if automated && !may_automate(contact) {
        return Err(refuse("the customer opted out of automated messages"));
    }
    // Meta would refuse with 131047; so do we, without the round trip.
    if !content.is_template() && !window::is_inside(last_inbound, cfg.service_window, now) {
        return Err((
            Some(OUTSIDE_WINDOW_CODE),
            "Re-engagement message: the customer-service window has closed".into(),
        ));
    }
    Ok((content, to, token))
}

/// Error texts fit a VARCHAR(255) column on PostgreSQL.
fn truncate(s: &str) -> String {
    s.chars().take(250).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_bounded() {
        let e = SendError::network("timeout");
        for _ in 0..50 {
            let first = backoff(1, &e);
            assert!(first >= Duration::milliseconds(2500) && first <= Duration::seconds(5));
            let third = backoff(3, &e);
            assert!(third >= Duration::seconds(10) && third <= Duration::seconds(20));
            assert!(backoff(30, &e) <= Duration::seconds(BACKOFF_MAX_SECS));
        }
    }

    #[test]
    fn the_pair_rate_error_waits_four_to_the_n_seconds() {
        let e = SendError {
            code: Some(131_056),
            ..SendError::network("pair rate")
        };
        assert!(backoff(3, &e) >= Duration::seconds(32));
    }
}
