//! Contacts: list, detail, update.

use async_graphql::connection::Connection;
use async_graphql::{Context, ID, InputObject, Json, Object, Result};
use domain::contacts::{ContactFilter, ContactForUpdate};
use domain::pagination::PageRequest;
use entity::{ConsentState, Priority};

use super::context::{ContextExt, parse_id, parse_ids};
use super::error::IntoGql;
use super::types::{Contact, connection};

#[derive(InputObject, Default)]
pub struct ContactFilterInput {
    /// Name, profile name or number.
    search: Option<String>,
    tag_id: Option<ID>,
    consent: Option<ConsentState>,
    priority: Option<Priority>,
    external_id: Option<String>,
}

#[derive(InputObject)]
pub struct ContactUpdateInput {
    name: Option<String>,
    language: Option<String>,
    priority: Option<Priority>,
    is_vip: Option<bool>,
    /// Merged into the structured fields; a null value removes a key.
    fields: Option<Json<serde_json::Value>>,
    external_id: Option<String>,
    /// Replaces the contact's tags.
    tag_ids: Option<Vec<ID>>,
}

#[derive(Default)]
pub struct ContactQuery;

#[Object]
impl ContactQuery {
    async fn contacts(
        &self,
        ctx: &Context<'_>,
        filter: Option<ContactFilterInput>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Contact>> {
        let f = filter.unwrap_or_default();
        let filter = ContactFilter {
            search: f.search,
            tag_id: f.tag_id.map(|t| parse_id(&t, "tagId")).transpose()?,
            consent: f.consent,
            priority: f.priority,
            external_id: f.external_id,
        };
        let page = ctx
            .domain()
            .contacts(ctx.actor()?, filter, PageRequest::new(first, after))
            .await
            .gql()?;
        Ok(connection(page, Contact))
    }

    async fn contact(&self, ctx: &Context<'_>, id: ID) -> Result<Contact> {
        let id = parse_id(&id, "id")?;
        Ok(Contact(ctx.domain().contact(ctx.actor()?, id).await.gql()?))
    }
}

#[derive(Default)]
pub struct ContactMutation;

#[Object]
impl ContactMutation {
    async fn update_contact(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: ContactUpdateInput,
    ) -> Result<Contact> {
        let id = parse_id(&id, "id")?;
        let input = ContactForUpdate {
            name: input.name,
            language: input.language,
            priority: input.priority,
            is_vip: input.is_vip,
            fields: input.fields.map(|j| j.0),
            external_id: input.external_id,
            tag_ids: input.tag_ids.map(|t| parse_ids(&t, "tagIds")).transpose()?,
        };
        Ok(Contact(
            ctx.domain()
                .update_contact(ctx.actor()?, id, input)
                .await
                .gql()?,
        ))
    }
}
