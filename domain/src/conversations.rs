//! Conversations: listing with filters, reading with visibility rules, and
//! deleting (Admin). An Agent sees and acts only on conversations assigned to it.

use chrono::{DateTime, Utc};
use entity::{ConversationStatus, Priority, contact, conversation, conversation_tag, message};
use sea_orm::sea_query::{Alias, Asterisk, Expr, ExprTrait, Func, LikeExpr, Query, SimpleExpr};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, Order, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};

use crate::audit::{self, Change};
use crate::pagination::{Page, PageRequest, time_id_cursor};
use crate::{Actor, Capability, Domain, DomainError, Result};

#[derive(Debug, Clone, Default)]
pub struct ConversationFilter {
    pub status: Option<Vec<ConversationStatus>>,
    pub department_id: Option<i64>,
    pub assignee_id: Option<i64>,
    /// Only conversations nobody is assigned to (the queue).
    pub unassigned: Option<bool>,
    pub tag_id: Option<i64>,
    pub priority: Option<Priority>,
    pub topic: Option<String>,
    pub channel_id: Option<i64>,
    pub contact_id: Option<i64>,
    /// Matches the contact's name, number or any message text.
    pub search: Option<String>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ConversationSortField {
    CreatedAt,
    #[default]
    LastMessageAt,
    UpdatedAt,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ConversationSort {
    pub field: ConversationSortField,
    pub descending: bool,
}

impl ConversationSort {
    fn column(&self) -> conversation::Column {
        match self.field {
            ConversationSortField::CreatedAt => conversation::Column::CreatedAt,
            ConversationSortField::LastMessageAt => conversation::Column::LastMessageAt,
            ConversationSortField::UpdatedAt => conversation::Column::UpdatedAt,
        }
    }

    fn key(&self, c: &conversation::Model) -> DateTime<Utc> {
        match self.field {
            ConversationSortField::CreatedAt => c.created_at,
            ConversationSortField::LastMessageAt => c.last_message_at.unwrap_or(c.created_at),
            ConversationSortField::UpdatedAt => c.updated_at,
        }
    }
}

/// `%`/`_` in user text must not act as wildcards.
fn like_pattern(text: &str) -> String {
    let escaped = text
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// Case-insensitive substring match, the same on SQLite and PostgreSQL.
fn contains(col: impl sea_orm::sea_query::IntoColumnRef, pattern: &str) -> SimpleExpr {
    Expr::expr(Func::lower(Expr::col(col))).like(LikeExpr::new(pattern).escape('\\'))
}

impl Domain {
    pub async fn conversations(
        &self,
        actor: &Actor,
        filter: ConversationFilter,
        sort: ConversationSort,
        page: PageRequest,
    ) -> Result<Page<conversation::Model>> {
        actor.require(Capability::HandleConversations)?;
        page.validate()?;
        // Archived by the retention policy: kept for reports, out of the lists.
        let mut q = conversation::Entity::find().filter(conversation::Column::ArchivedAt.is_null());
        if !actor.sees_all_conversations() {
            q = q.filter(conversation::Column::AssigneeId.eq(actor.user_id()));
        }
        if let Some(statuses) = filter.status.filter(|s| !s.is_empty()) {
            q = q.filter(conversation::Column::Status.is_in(statuses));
        }
        if let Some(id) = filter.department_id {
            q = q.filter(conversation::Column::DepartmentId.eq(id));
        }
        if let Some(id) = filter.assignee_id {
            q = q.filter(conversation::Column::AssigneeId.eq(id));
        }
        match filter.unassigned {
            Some(true) => q = q.filter(conversation::Column::AssigneeId.is_null()),
            Some(false) => q = q.filter(conversation::Column::AssigneeId.is_not_null()),
            None => {}
        }
        if let Some(p) = filter.priority {
            q = q.filter(conversation::Column::Priority.eq(p));
        }
        if let Some(t) = filter.topic {
            q = q.filter(conversation::Column::Topic.eq(t));
        }
        if let Some(id) = filter.channel_id {
            q = q.filter(conversation::Column::ChannelId.eq(id));
        }
        if let Some(id) = filter.contact_id {
            q = q.filter(conversation::Column::ContactId.eq(id));
        }
        if let Some(from) = filter.created_from {
            q = q.filter(conversation::Column::CreatedAt.gte(from));
        }
        if let Some(to) = filter.created_to {
            q = q.filter(conversation::Column::CreatedAt.lt(to));
        }
        if let Some(tag_id) = filter.tag_id {
            q = q.filter(
                conversation::Column::Id.in_subquery(
                    Query::select()
                        .column(conversation_tag::Column::ConversationId)
                        .from(conversation_tag::Entity)
                        .and_where(conversation_tag::Column::TagId.eq(tag_id))
                        .to_owned(),
                ),
            );
        }
        if let Some(text) = filter
            .search
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            if text.chars().count() > 100 {
                return Err(DomainError::invalid("search", "at most 100 characters"));
            }
            let pattern = like_pattern(text);
            let contacts = Query::select()
                .column(contact::Column::Id)
                .from(contact::Entity)
                .cond_where(
                    Condition::any()
                        .add(contains(contact::Column::Name, &pattern))
                        .add(contains(contact::Column::ProfileName, &pattern))
                        .add(contains(contact::Column::WaId, &pattern)),
                )
                .to_owned();
            let messages = Query::select()
                .column(message::Column::ConversationId)
                .from(message::Entity)
                .and_where(contains(message::Column::Body, &pattern))
                .to_owned();
            q = q.filter(
                Condition::any()
                    .add(conversation::Column::ContactId.in_subquery(contacts))
                    .add(conversation::Column::Id.in_subquery(messages)),
            );
        }
        let col = sort.column();
        if let Some((at, id)) = page.after_time_id()? {
            let (past, past_id) = if sort.descending {
                (col.lt(at), conversation::Column::Id.lt(id))
            } else {
                (col.gt(at), conversation::Column::Id.gt(id))
            };
            q = q.filter(
                Condition::any()
                    .add(past)
                    .add(Condition::all().add(col.eq(at)).add(past_id)),
            );
        }
        let order = if sort.descending {
            Order::Desc
        } else {
            Order::Asc
        };
        let rows = q
            .order_by(col, order.clone())
            .order_by(conversation::Column::Id, order)
            .limit(page.limit() + 1)
            .all(&self.db)
            .await?;
        Ok(Page::from_rows(rows, &page, |c| {
            time_id_cursor(sort.key(c), c.id)
        }))
    }

    /// A conversation the actor may read: any for managers, its own for an Agent.
    pub async fn conversation(&self, actor: &Actor, id: i64) -> Result<conversation::Model> {
        actor.require(Capability::HandleConversations)?;
        let found = conversation::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| DomainError::not_found("conversation", id))?;
        if !actor.sees_all_conversations() && found.assignee_id != actor.user_id() {
            return Err(DomainError::forbidden(
                "this conversation is not assigned to you",
            ));
        }
        Ok(found)
    }

    /// Deletes a conversation with its messages and notes. History: Admin only.
    pub async fn delete_conversation(&self, actor: &Actor, id: i64) -> Result<conversation::Model> {
        actor.require(Capability::DeleteHistory)?;
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        let before = conversation::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| DomainError::not_found("conversation", id))?;
        conversation::Entity::delete_by_id(id).exec(&txn).await?;
        audit::record(
            &txn,
            actor,
            now,
            Change::new("conversation.delete", "conversation", id).before(&before),
        )
        .await?;
        txn.commit().await?;
        Ok(before)
    }

    /// Messages oldest to newest (by WhatsApp timestamp, then arrival).
    pub async fn messages(
        &self,
        actor: &Actor,
        conversation_id: i64,
        page: PageRequest,
    ) -> Result<Page<message::Model>> {
        self.conversation(actor, conversation_id).await?;
        self.messages_page(conversation_id, page).await
    }

    /// Without the permission check: for loaders whose parent was already checked.
    pub async fn messages_page(
        &self,
        conversation_id: i64,
        page: PageRequest,
    ) -> Result<Page<message::Model>> {
        page.validate()?;
        let mut q =
            message::Entity::find().filter(message::Column::ConversationId.eq(conversation_id));
        if let Some((at, id)) = page.after_time_id()? {
            q = q.filter(
                Condition::any().add(message::Column::CreatedAt.gt(at)).add(
                    Condition::all()
                        .add(message::Column::CreatedAt.eq(at))
                        .add(message::Column::Id.gt(id)),
                ),
            );
        }
        let rows = q
            .order_by_asc(message::Column::CreatedAt)
            .order_by_asc(message::Column::Id)
            .limit(page.limit() + 1)
            .all(&self.db)
            .await?;
        Ok(Page::from_rows(rows, &page, |m| {
            time_id_cursor(m.created_at, m.id)
        }))
    }
}

/// The newest `n` messages of each conversation, newest first, in one query
/// (a window over the conversations' index range): the preview of a queue
/// page. Without a permission check: for loaders of checked parents.
pub async fn recent_messages(
    db: &impl ConnectionTrait,
    conversation_ids: &[i64],
    n: u64,
) -> Result<Vec<message::Model>, DbErr> {
    let rank = Alias::new("recent_rank");
    let ranked = Query::select()
        .column(Asterisk)
        .expr_as(
            Expr::cust(
                "ROW_NUMBER() OVER (PARTITION BY conversation_id ORDER BY created_at DESC, id DESC)",
            ),
            rank.clone(),
        )
        .from(message::Entity)
        .and_where(message::Column::ConversationId.is_in(conversation_ids.to_vec()))
        .to_owned();
    let newest = Query::select()
        .column(Asterisk)
        .from_subquery(ranked, Alias::new("ranked"))
        .and_where(Expr::col(rank.clone()).lte(n))
        .order_by(message::Column::ConversationId, Order::Asc)
        .order_by(rank, Order::Asc)
        .to_owned();
    let stmt = db.get_database_backend().build(&newest);
    message::Entity::find().from_raw_sql(stmt).all(db).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_text_cannot_inject_wildcards() {
        assert_eq!(like_pattern("50%_off"), "%50\\%\\_off%");
    }
}
