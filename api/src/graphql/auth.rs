//! Login, token refresh, the caller, and API tokens.

use async_graphql::{Context, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use domain::auth::TokenPair;

use super::context::{ContextExt, parse_id};
use super::error::IntoGql;
use super::types::{ApiToken, Staff};

#[derive(SimpleObject)]
pub struct AuthPayload {
    /// Send as `Authorization: Bearer …`.
    access_token: String,
    /// Exchange for a new pair with `refreshToken` before it expires.
    refresh_token: String,
    /// When the access token expires.
    expires_at: DateTime<Utc>,
    user: Staff,
}

impl From<TokenPair> for AuthPayload {
    fn from(p: TokenPair) -> Self {
        Self {
            access_token: p.access_token,
            refresh_token: p.refresh_token,
            expires_at: p.expires_at,
            user: Staff(p.user),
        }
    }
}

#[derive(SimpleObject)]
pub struct CreatedApiToken {
    token: ApiToken,
    /// The secret, shown this once: store it in the BI tool.
    secret: String,
}

#[derive(Default)]
pub struct AuthQuery;

#[Object]
impl AuthQuery {
    /// The signed-in staff user.
    async fn me(&self, ctx: &Context<'_>) -> Result<Staff> {
        let actor = ctx.actor()?;
        let id = actor.user_id().ok_or_else(|| {
            super::error::to_graphql(domain::DomainError::forbidden("API tokens have no user"))
        })?;
        Ok(Staff(ctx.domain().staff_member(actor, id).await.gql()?))
    }

    /// API tokens (Admin).
    async fn api_tokens(&self, ctx: &Context<'_>) -> Result<Vec<ApiToken>> {
        let tokens = ctx.domain().api_tokens(ctx.actor()?).await.gql()?;
        Ok(tokens.into_iter().map(ApiToken).collect())
    }
}

#[derive(Default)]
pub struct AuthMutation;

#[Object]
impl AuthMutation {
    /// Exchanges email and password for an access and a refresh token.
    async fn login(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
    ) -> Result<AuthPayload> {
        Ok(ctx.domain().login(&email, &password).await.gql()?.into())
    }

    /// Exchanges a refresh token for a new pair.
    async fn refresh_token(&self, ctx: &Context<'_>, refresh_token: String) -> Result<AuthPayload> {
        Ok(ctx.domain().refresh(&refresh_token).await.gql()?.into())
    }

    /// A long-lived read-only token for BI tools (Admin). Reads metrics only.
    async fn create_api_token(
        &self,
        ctx: &Context<'_>,
        name: String,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<CreatedApiToken> {
        let (token, secret) = ctx
            .domain()
            .create_api_token(ctx.actor()?, &name, expires_at)
            .await
            .gql()?;
        Ok(CreatedApiToken {
            token: ApiToken(token),
            secret,
        })
    }

    async fn revoke_api_token(&self, ctx: &Context<'_>, id: ID) -> Result<ApiToken> {
        let id = parse_id(&id, "id")?;
        Ok(ApiToken(
            ctx.domain()
                .revoke_api_token(ctx.actor()?, id)
                .await
                .gql()?,
        ))
    }
}
