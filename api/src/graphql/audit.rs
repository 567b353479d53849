//! The audit trail (Admin, Editor).

use async_graphql::connection::Connection;
use async_graphql::{Context, ID, InputObject, Object, Result};
use chrono::{DateTime, Utc};
use domain::audit::AuditFilter;
use domain::pagination::PageRequest;

use super::context::{ContextExt, parse_id};
use super::error::IntoGql;
use super::types::{AuditEntry, connection};

#[derive(InputObject, Default)]
pub struct AuditFilterInput {
    /// e.g. `conversation`, `user`, `note`.
    entity_type: Option<String>,
    entity_id: Option<String>,
    actor_id: Option<ID>,
    /// e.g. `conversation.lock`.
    action: Option<String>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// Who did what and when, newest first.
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        filter: Option<AuditFilterInput>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, AuditEntry>> {
        let f = filter.unwrap_or_default();
        let filter = AuditFilter {
            entity_type: f.entity_type,
            entity_id: f.entity_id,
            actor_id: f.actor_id.map(|a| parse_id(&a, "actorId")).transpose()?,
            action: f.action,
            from: f.from,
            to: f.to,
        };
        let page = ctx
            .domain()
            .audit_log(ctx.actor()?, filter, PageRequest::new(first, after))
            .await
            .gql()?;
        Ok(connection(page, AuditEntry))
    }
}
