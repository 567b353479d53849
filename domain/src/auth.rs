//! Staff authentication: argon2 password hashes, HS256 JWTs (access and
//! refresh), and opaque long-lived API tokens for BI tools.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{DateTime, Duration, Utc};
use entity::{Role, api_token, user};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Actor, Domain, DomainError, Result};

/// Prefix that tells an API token from a JWT at a glance (and to secret scanners).
pub const API_TOKEN_PREFIX: &str = "hdk_";

#[derive(Clone)]
pub struct AuthConfig {
    pub jwt_secret: String,
    pub issuer: String,
    pub audience: String,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("jwt_secret", &"<redacted>")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    Access,
    Refresh,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    pub kind: TokenKind,
    /// The user's token version: bumping it revokes every token issued before.
    pub ver: i32,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Debug, Clone)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_at: DateTime<Utc>,
    pub user: user::Model,
}

pub fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| DomainError::internal(std::io::Error::other(e.to_string())))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Passwords: at least 8 characters. Longer rules belong to the identity provider.
pub fn check_password_strength(password: &str) -> Result<()> {
    if password.chars().count() < 8 {
        return Err(DomainError::invalid(
            "password",
            "must be at least 8 characters",
        ));
    }
    Ok(())
}

pub fn hash_api_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn generate_secret(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

impl Domain {
    fn issue(&self, user: &user::Model, kind: TokenKind, ttl: Duration) -> Result<(String, i64)> {
        let cfg = &self.config.auth;
        let now = self.clock.now();
        let claims = Claims {
            sub: user.id.to_string(),
            role: user.role,
            kind,
            ver: user.token_version,
            iss: cfg.issuer.clone(),
            aud: cfg.audience.clone(),
            iat: now.timestamp(),
            exp: (now + ttl).timestamp(),
        };
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(cfg.jwt_secret.as_bytes()),
        )
        .map_err(DomainError::internal)?;
        Ok((token, claims.exp))
    }

    fn token_pair(&self, user: user::Model) -> Result<TokenPair> {
        let (access_token, exp) =
            self.issue(&user, TokenKind::Access, self.config.auth.access_ttl)?;
        let (refresh_token, _) =
            self.issue(&user, TokenKind::Refresh, self.config.auth.refresh_ttl)?;
        Ok(TokenPair {
            access_token,
            refresh_token,
            expires_at: DateTime::from_timestamp(exp, 0).unwrap_or_default(),
            user,
        })
    }

    /// Signature, algorithm (HS256 only), issuer, audience and expiry (against our clock).
    pub fn decode_jwt(&self, token: &str) -> Result<Claims> {
        let cfg = &self.config.auth;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&cfg.issuer]);
        validation.set_audience(&[&cfg.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // Expiry is checked below against the injected clock, so tests can move time.
        validation.validate_exp = false;
        let data = jsonwebtoken::decode::<Claims>(
            token,
            &DecodingKey::from_secret(cfg.jwt_secret.as_bytes()),
            &validation,
        )
        .map_err(|_| DomainError::Unauthenticated)?;
        if data.claims.exp <= self.clock.now().timestamp() {
            return Err(DomainError::Unauthenticated);
        }
        Ok(data.claims)
    }

    pub async fn login(&self, email: &str, password: &str) -> Result<TokenPair> {
        let found = user::Entity::find()
            .filter(user::Column::Email.eq(email.trim().to_lowercase()))
            .one(&self.db)
            .await?;
        match found {
            Some(u) if u.is_active && verify_password(password, &u.password_hash) => {
                self.token_pair(u)
            }
            _ => Err(DomainError::Unauthenticated),
        }
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair> {
        let claims = self.decode_jwt(refresh_token)?;
        if claims.kind != TokenKind::Refresh {
            return Err(DomainError::Unauthenticated);
        }
        let user = self.active_user_for(&claims).await?;
        self.token_pair(user)
    }

    async fn active_user_for(&self, claims: &Claims) -> Result<user::Model> {
        let id: i64 = claims
            .sub
            .parse()
            .map_err(|_| DomainError::Unauthenticated)?;
        match user::Entity::find_by_id(id).one(&self.db).await? {
            Some(u) if u.is_active && u.token_version == claims.ver => Ok(u),
            _ => Err(DomainError::Unauthenticated),
        }
    }

    /// Turns a bearer credential (access JWT or API token) into an actor.
    /// The user row is read so that a deactivated user or a changed role takes effect at once.
    pub async fn authenticate(&self, bearer: &str) -> Result<Actor> {
        self.authenticate_session(bearer)
            .await
            .map(|(actor, _)| actor)
    }

    /// Like [`Domain::authenticate`], and also when the credential stops being
    /// valid by this domain's clock (`None`: an API token without expiry), so
    /// that long-lived connections can end when it does.
    pub async fn authenticate_session(
        &self,
        bearer: &str,
    ) -> Result<(Actor, Option<DateTime<Utc>>)> {
        if let Some(_rest) = bearer.strip_prefix(API_TOKEN_PREFIX) {
            let now = self.clock.now();
            let token = api_token::Entity::find()
                .filter(api_token::Column::TokenHash.eq(hash_api_token(bearer)))
                .one(&self.db)
                .await?
                .ok_or(DomainError::Unauthenticated)?;
            let live = token.revoked_at.is_none() && token.expires_at.is_none_or(|e| e > now);
            if !live {
                return Err(DomainError::Unauthenticated);
            }
            let actor = Actor::api_token(token.id, token.role);
            let expires_at = token.expires_at;
            let mut active: api_token::ActiveModel = token.into();
            active.last_used_at = Set(Some(now));
            active.update(&self.db).await?;
            return Ok((actor, expires_at));
        }
        let claims = self.decode_jwt(bearer)?;
        if claims.kind != TokenKind::Access {
            return Err(DomainError::Unauthenticated);
        }
        let user = self.active_user_for(&claims).await?;
        // Any authenticated request is presence activity (see `presence`).
        self.record_activity(&user).await;
        // `decode_jwt` refuses a token once `exp <= now` (seconds): the same instant.
        let expires_at = DateTime::from_timestamp(claims.exp, 0);
        Ok((Actor::user(user.id, user.role), expires_at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_hash_only() {
        let hash = hash_password("correct horse").unwrap();
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong horse", &hash));
        assert!(!verify_password("correct horse", "not-a-hash"));
    }

    #[test]
    fn a_short_password_is_rejected() {
        assert!(check_password_strength("short").is_err());
        assert!(check_password_strength("long enough").is_ok());
    }
}
