//! Internal team notes on a conversation: never sent to the customer,
//! at most 300 characters (suggested format "time | issue type | progress").

use entity::note;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set, TransactionTrait,
};

use crate::audit::{self, Change};
use crate::events::{EventPayload, Scope};
use crate::{Actor, Domain, DomainError, Result};

pub const MAX_NOTE_CHARS: usize = 300;

/// A note body: 1 to 300 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteBody(String);

impl NoteBody {
    pub fn parse(text: &str) -> Result<Self> {
        let t = text.trim();
        let n = t.chars().count();
        if n == 0 {
            return Err(DomainError::invalid("body", "a note cannot be empty"));
        }
        if n > MAX_NOTE_CHARS {
            return Err(DomainError::invalid(
                "body",
                format!("a note is at most {MAX_NOTE_CHARS} characters (got {n})"),
            ));
        }
        Ok(Self(t.to_string()))
    }
}

impl Domain {
    pub async fn add_note(
        &self,
        actor: &Actor,
        conversation_id: i64,
        body: &str,
    ) -> Result<note::Model> {
        let body = NoteBody::parse(body)?;
        let conversation = self.conversation_for_action(actor, conversation_id).await?;
        let author_id = actor
            .user_id()
            .ok_or_else(|| DomainError::forbidden("notes are written by staff users"))?;
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        let created = note::ActiveModel {
            conversation_id: Set(conversation_id),
            author_id: Set(author_id),
            body: Set(body.0),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        audit::record(
            &txn,
            actor,
            now,
            Change::new("note.create", "note", created.id).after(&created),
        )
        .await?;
        self.touch_lock_activity(&txn, actor, &conversation).await?;
        txn.commit().await?;
        self.emit(EventPayload::NoteAdded {
            scope: Scope::from(&conversation),
            note_id: created.id,
        });
        Ok(created)
    }

    /// Oldest first.
    pub async fn notes(&self, actor: &Actor, conversation_id: i64) -> Result<Vec<note::Model>> {
        self.conversation(actor, conversation_id).await?;
        Ok(note::Entity::find()
            .filter(note::Column::ConversationId.eq(conversation_id))
            .order_by_asc(note::Column::CreatedAt)
            .order_by_asc(note::Column::Id)
            .all(&self.db)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_longer_than_300_characters_is_rejected() {
        let long = "é".repeat(301);
        match NoteBody::parse(&long) {
            Err(DomainError::InvalidInput { field, .. }) => assert_eq!(field, "body"),
            other => panic!("expected invalid input, got {other:?}"),
        }
        assert!(NoteBody::parse(&"é".repeat(300)).is_ok());
    }

    #[test]
    fn an_empty_note_is_rejected() {
        assert!(NoteBody::parse("   ").is_err());
    }
}
