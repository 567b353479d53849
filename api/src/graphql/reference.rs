//! Reference data: departments, tags and channels.

use async_graphql::{Context, ID, InputObject, Object, Result};
use domain::channels::ChannelInput;
use domain::departments::DepartmentInput;
use entity::RoutingStrategy;

use super::context::{ContextExt, parse_id};
use super::error::IntoGql;
use super::types::{Channel, Department, Tag};

#[derive(InputObject)]
pub struct DepartmentCreateInput {
    name: String,
    description: Option<String>,
    #[graphql(default)]
    keywords: Vec<String>,
    routing_strategy: Option<RoutingStrategy>,
}

#[derive(InputObject)]
pub struct DepartmentUpdateInput {
    name: Option<String>,
    description: Option<String>,
    keywords: Option<Vec<String>>,
    routing_strategy: Option<RoutingStrategy>,
}

/// A WhatsApp business number. Secrets are write-only: an empty string clears one.
#[derive(InputObject)]
pub struct ChannelInputGql {
    name: Option<String>,
    phone_number_id: Option<String>,
    display_phone_number: Option<String>,
    waba_id: Option<String>,
    app_secret: Option<String>,
    access_token: Option<String>,
    /// europe, americas, south_east_asia or other.
    region: Option<String>,
    is_active: Option<bool>,
}

impl From<ChannelInputGql> for ChannelInput {
    fn from(i: ChannelInputGql) -> Self {
        Self {
            name: i.name,
            phone_number_id: i.phone_number_id,
            display_phone_number: i.display_phone_number,
            waba_id: i.waba_id,
            app_secret: i.app_secret,
            access_token: i.access_token,
            region: i.region,
            is_active: i.is_active,
        }
    }
}

#[derive(Default)]
pub struct ReferenceQuery;

#[Object]
impl ReferenceQuery {
    async fn departments(&self, ctx: &Context<'_>) -> Result<Vec<Department>> {
        let rows = ctx.domain().departments(ctx.actor()?).await.gql()?;
        Ok(rows.into_iter().map(Department).collect())
    }

    async fn department(&self, ctx: &Context<'_>, id: ID) -> Result<Department> {
        let id = parse_id(&id, "id")?;
        Ok(Department(
            ctx.domain().department(ctx.actor()?, id).await.gql()?,
        ))
    }

    async fn tags(&self, ctx: &Context<'_>) -> Result<Vec<Tag>> {
        let rows = ctx.domain().tags(ctx.actor()?).await.gql()?;
        Ok(rows.into_iter().map(Tag::from).collect())
    }

    async fn channels(&self, ctx: &Context<'_>) -> Result<Vec<Channel>> {
        let rows = ctx.domain().channels(ctx.actor()?).await.gql()?;
        Ok(rows.into_iter().map(Channel).collect())
    }
}

#[derive(Default)]
pub struct ReferenceMutation;

#[Object]
impl ReferenceMutation {
    async fn create_department(
        &self,
        ctx: &Context<'_>,
        input: DepartmentCreateInput,
    ) -> Result<Department> {
        let input = DepartmentInput {
            name: Some(input.name),
            description: input.description,
            keywords: Some(input.keywords),
            routing_strategy: input.routing_strategy,
        };
        Ok(Department(
            ctx.domain()
                .create_department(ctx.actor()?, input)
                .await
                .gql()?,
        ))
    }

    async fn update_department(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: DepartmentUpdateInput,
    ) -> Result<Department> {
        let id = parse_id(&id, "id")?;
        let input = DepartmentInput {
            name: input.name,
            description: input.description,
            keywords: input.keywords,
            routing_strategy: input.routing_strategy,
        };
        Ok(Department(
            ctx.domain()
                .update_department(ctx.actor()?, id, input)
                .await
                .gql()?,
        ))
    }

    async fn delete_department(&self, ctx: &Context<'_>, id: ID) -> Result<Department> {
        let id = parse_id(&id, "id")?;
        Ok(Department(
            ctx.domain()
                .delete_department(ctx.actor()?, id)
                .await
                .gql()?,
        ))
    }

    async fn create_tag(
        &self,
        ctx: &Context<'_>,
        name: String,
        color: Option<String>,
    ) -> Result<Tag> {
        Ok(ctx
            .domain()
            .create_tag(ctx.actor()?, &name, color)
            .await
            .gql()?
            .into())
    }

    async fn delete_tag(&self, ctx: &Context<'_>, id: ID) -> Result<Tag> {
        let id = parse_id(&id, "id")?;
        Ok(ctx
            .domain()
            .delete_tag(ctx.actor()?, id)
            .await
            .gql()?
            .into())
    }

    async fn create_channel(&self, ctx: &Context<'_>, input: ChannelInputGql) -> Result<Channel> {
        Ok(Channel(
            ctx.domain()
                .create_channel(ctx.actor()?, input.into())
                .await
                .gql()?,
        ))
    }

    async fn update_channel(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: ChannelInputGql,
    ) -> Result<Channel> {
        let id = parse_id(&id, "id")?;
        Ok(Channel(
            ctx.domain()
                .update_channel(ctx.actor()?, id, input.into())
                .await
                .gql()?,
        ))
    }
}
