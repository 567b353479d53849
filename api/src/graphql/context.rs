//! Per-request context: who is calling, resolved from the bearer credential.

use async_graphql::Context;
use domain::{Actor, Domain, DomainError};

use super::error::to_graphql;

/// The caller as the HTTP or WebSocket layer resolved it.
#[derive(Debug, Clone)]
pub enum Caller {
    Anonymous,
    Authenticated(Actor),
    /// A credential was sent but is not valid: every protected field says so.
    Rejected,
}

impl Caller {
    pub async fn from_bearer(domain: &Domain, bearer: Option<&str>) -> Self {
        match bearer {
            None => Caller::Anonymous,
            Some(token) => match domain.authenticate(token).await {
                Ok(actor) => Caller::Authenticated(actor),
                Err(_) => Caller::Rejected,
            },
        }
    }
}

/// Extracts the token from an `Authorization: Bearer …` value.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

pub trait ContextExt {
    fn domain(&self) -> &Domain;
    fn actor(&self) -> async_graphql::Result<&Actor>;
}

impl ContextExt for Context<'_> {
    fn domain(&self) -> &Domain {
        self.data_unchecked::<Domain>()
    }

    fn actor(&self) -> async_graphql::Result<&Actor> {
        match self.data_opt::<Caller>() {
            Some(Caller::Authenticated(actor)) => Ok(actor),
            _ => Err(to_graphql(DomainError::Unauthenticated)),
        }
    }
}

/// Parses a GraphQL `ID` into a row id, naming the argument on failure.
pub fn parse_id(id: &async_graphql::ID, field: &str) -> async_graphql::Result<i64> {
    id.parse::<i64>()
        .map_err(|_| to_graphql(DomainError::invalid(field, "is not a valid id")))
}

pub fn parse_ids(ids: &[async_graphql::ID], field: &str) -> async_graphql::Result<Vec<i64>> {
    ids.iter().map(|id| parse_id(id, field)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_is_case_insensitive_and_trims() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
    }
}
