//! The domain's one error type. The api maps it to client codes in one place.

use chrono::{DateTime, Utc};
use sea_orm::{DbErr, SqlErr};

pub type Result<T, E = DomainError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("authentication required")]
    Unauthenticated,
    #[error("not allowed: {0}")]
    Forbidden(String),
    #[error("{field}: {message}")]
    InvalidInput { field: String, message: String },
    #[error("{entity} {id} not found")]
    NotFound { entity: &'static str, id: String },
    #[error("{0}")]
    Conflict(String),
    #[error("conversation is locked by {holder_name} until {until}")]
    LockHeld {
        holder_id: i64,
        holder_name: String,
        until: DateTime<Utc>,
    },
    #[error("rate limited: retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: i64 },
    #[error("outside the customer-service window: send a template")]
    OutsideWindow,
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl DomainError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidInput {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn not_found(entity: &'static str, id: impl ToString) -> Self {
        Self::NotFound {
            entity,
            id: id.to_string(),
        }
    }

    pub fn forbidden(reason: impl Into<String>) -> Self {
        Self::Forbidden(reason.into())
    }

    pub fn internal(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(err))
    }
}

impl From<DbErr> for DomainError {
    fn from(err: DbErr) -> Self {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(detail)) => {
                Self::Conflict(format!("already exists ({})", short_constraint(&detail)))
            }
            Some(SqlErr::ForeignKeyConstraintViolation(_)) => {
                Self::invalid("id", "refers to a record that does not exist")
            }
            _ => Self::internal(err),
        }
    }
}

/// Keeps the constraint name out of driver noise without leaking SQL.
fn short_constraint(detail: &str) -> String {
    detail
        .split(['"', '\''])
        .find(|part| part.contains('_') && !part.contains(' '))
        .unwrap_or("unique constraint")
        .to_string()
}
