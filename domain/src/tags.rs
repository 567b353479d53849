//! Tags on conversations and contacts.

use entity::{conversation_tag, tag};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set, TransactionTrait,
};

use crate::audit::{self, Change};
use crate::events::{EventPayload, Scope};
use crate::{Actor, Capability, Domain, DomainError, Result};

/// Tag names: trimmed, lower case, 1–40 characters.
pub fn parse_tag_name(name: &str) -> Result<String> {
    let n = name.trim().to_lowercase();
    if n.is_empty() || n.chars().count() > 40 {
        return Err(DomainError::invalid("name", "must be 1 to 40 characters"));
    }
    Ok(n)
}

impl Domain {
    pub async fn tags(&self, actor: &Actor) -> Result<Vec<tag::Model>> {
        actor.require(Capability::ReadReference)?;
        Ok(tag::Entity::find()
            .order_by_asc(tag::Column::Name)
            .all(&self.db)
            .await?)
    }

    pub async fn create_tag(
        &self,
        actor: &Actor,
        name: &str,
        color: Option<String>,
    ) -> Result<tag::Model> {
        actor.require(Capability::ManageConversations)?;
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        let created = tag::ActiveModel {
            name: Set(parse_tag_name(name)?),
            color: Set(color),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await
        .map_err(|e| match DomainError::from(e) {
            DomainError::Conflict(_) => DomainError::invalid("name", "is already in use"),
            other => other,
        })?;
        audit::record(
            &txn,
            actor,
            now,
            Change::new("tag.create", "tag", created.id).after(&created),
        )
        .await?;
        txn.commit().await?;
        Ok(created)
    }

    /// Removes the tag everywhere: history of what was tagged goes with it, so Admin only.
    pub async fn delete_tag(&self, actor: &Actor, id: i64) -> Result<tag::Model> {
        actor.require(Capability::Configure)?;
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        let before = tag::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| DomainError::not_found("tag", id))?;
        tag::Entity::delete_by_id(id).exec(&txn).await?;
        audit::record(
            &txn,
            actor,
            now,
            Change::new("tag.delete", "tag", id).before(&before),
        )
        .await?;
        txn.commit().await?;
        Ok(before)
    }

    /// Adds or removes tags on a conversation the actor may act on.
    pub async fn set_conversation_tags(
        &self,
        actor: &Actor,
        conversation_id: i64,
        add: &[i64],
        remove: &[i64],
    ) -> Result<Vec<tag::Model>> {
        let conversation = self.conversation_for_action(actor, conversation_id).await?;
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        let before = self.tags_of_conversation(&txn, conversation_id).await?;
        for &tag_id in add {
            conversation_tag::Entity::insert(conversation_tag::ActiveModel {
                conversation_id: Set(conversation_id),
                tag_id: Set(tag_id),
            })
            .on_conflict_do_nothing_on([
                conversation_tag::Column::ConversationId,
                conversation_tag::Column::TagId,
            ])
            .exec(&txn)
            .await
            .map_err(|e| match DomainError::from(e) {
                DomainError::InvalidInput { .. } => {
                    DomainError::invalid("add", format!("tag {tag_id} does not exist"))
                }
                other => other,
            })?;
        }
        if !remove.is_empty() {
            conversation_tag::Entity::delete_many()
                .filter(conversation_tag::Column::ConversationId.eq(conversation_id))
                .filter(conversation_tag::Column::TagId.is_in(remove.to_vec()))
                .exec(&txn)
                .await?;
        }
        let after = self.tags_of_conversation(&txn, conversation_id).await?;
        audit::record(
            &txn,
            actor,
            now,
            Change::new("conversation.tags", "conversation", conversation_id)
                .before(&before)
                .after(&after),
        )
        .await?;
        self.touch_lock_activity(&txn, actor, &conversation).await?;
        txn.commit().await?;
        self.emit(EventPayload::ConversationUpdated {
            scope: Scope::from(&conversation),
            status: conversation.status,
            priority: conversation.priority,
            change: "tags".into(),
        });
        Ok(after)
    }

    async fn tags_of_conversation(
        &self,
        db: &impl sea_orm::ConnectionTrait,
        conversation_id: i64,
    ) -> Result<Vec<tag::Model>> {
        use sea_orm::{JoinType, QuerySelect, RelationTrait};
        Ok(tag::Entity::find()
            .join(JoinType::InnerJoin, tag::Relation::ConversationTags.def())
            .filter(conversation_tag::Column::ConversationId.eq(conversation_id))
            .order_by_asc(tag::Column::Name)
            .all(db)
            .await?)
    }
}
