//! Staff users (Admin manages; Editors and Agents may list them to assign).

use async_graphql::{Context, ID, InputObject, Object, Result};
use domain::staff::{StaffForCreate, StaffForUpdate};
use entity::Role;

use super::context::{ContextExt, parse_id, parse_ids};
use super::error::IntoGql;
use super::types::Staff;

#[derive(InputObject)]
pub struct StaffCreateInput {
    email: String,
    name: String,
    /// At least 8 characters.
    password: String,
    role: Role,
    #[graphql(default)]
    skills: Vec<String>,
    /// Most simultaneous conversations (default 3).
    max_concurrent: Option<i32>,
    #[graphql(default)]
    department_ids: Vec<ID>,
}

#[derive(InputObject)]
pub struct StaffUpdateInput {
    name: Option<String>,
    role: Option<Role>,
    skills: Option<Vec<String>>,
    max_concurrent: Option<i32>,
    /// `false` deactivates the user and revokes its tokens.
    is_active: Option<bool>,
    password: Option<String>,
    department_ids: Option<Vec<ID>>,
}

#[derive(Default)]
pub struct StaffQuery;

#[Object]
impl StaffQuery {
    async fn staff(&self, ctx: &Context<'_>, role: Option<Role>) -> Result<Vec<Staff>> {
        let users = ctx.domain().staff(ctx.actor()?, role).await.gql()?;
        Ok(users.into_iter().map(Staff).collect())
    }

    async fn staff_member(&self, ctx: &Context<'_>, id: ID) -> Result<Staff> {
        let id = parse_id(&id, "id")?;
        Ok(Staff(
            ctx.domain().staff_member(ctx.actor()?, id).await.gql()?,
        ))
    }
}

#[derive(Default)]
pub struct StaffMutation;

#[Object]
impl StaffMutation {
    async fn create_staff(&self, ctx: &Context<'_>, input: StaffCreateInput) -> Result<Staff> {
        let input = StaffForCreate {
            email: input.email,
            name: input.name,
            password: input.password,
            role: input.role,
            skills: input.skills,
            max_concurrent: input.max_concurrent,
            department_ids: parse_ids(&input.department_ids, "departmentIds")?,
        };
        Ok(Staff(
            ctx.domain().create_staff(ctx.actor()?, input).await.gql()?,
        ))
    }

    async fn update_staff(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: StaffUpdateInput,
    ) -> Result<Staff> {
        let id = parse_id(&id, "id")?;
        let input = StaffForUpdate {
            name: input.name,
            role: input.role,
            skills: input.skills,
            max_concurrent: input.max_concurrent,
            is_active: input.is_active,
            password: input.password,
            department_ids: input
                .department_ids
                .map(|ids| parse_ids(&ids, "departmentIds"))
                .transpose()?,
        };
        Ok(Staff(
            ctx.domain()
                .update_staff(ctx.actor()?, id, input)
                .await
                .gql()?,
        ))
    }
}
