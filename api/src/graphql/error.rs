//! The one place where domain errors become client errors with `extensions.code`.

use async_graphql::{Error, ErrorExtensions};
use domain::DomainError;

/// The stable codes clients branch on.
pub fn code(err: &DomainError) -> &'static str {
    match err {
        DomainError::Unauthenticated => "UNAUTHENTICATED",
        DomainError::Forbidden(_) => "FORBIDDEN",
        DomainError::InvalidInput { .. } => "BAD_USER_INPUT",
        DomainError::NotFound { .. } => "NOT_FOUND",
        DomainError::Conflict(_) | DomainError::LockHeld { .. } => "CONFLICT",
        DomainError::RateLimited { .. } => "RATE_LIMITED",
        DomainError::OutsideWindow => "OUTSIDE_WINDOW",
        DomainError::Internal(_) => "INTERNAL",
    }
}

pub fn to_graphql(err: DomainError) -> Error {
    if let DomainError::Internal(source) = &err {
        // Logged once here with its cause; the client sees only the code.
        tracing::error!(error = %source, "internal error");
    }
    Error::new(err.to_string()).extend_with(|_, ext| {
        ext.set("code", code(&err));
        match &err {
            DomainError::InvalidInput { field, .. } => ext.set("field", field.as_str()),
            DomainError::LockHeld {
                holder_id,
                holder_name,
                until,
            } => {
                ext.set("holderId", holder_id.to_string());
                ext.set("holderName", holder_name.as_str());
                ext.set("until", until.to_rfc3339());
            }
            DomainError::RateLimited { retry_after_secs } => {
                ext.set("retryAfterSeconds", *retry_after_secs)
            }
            _ => {}
        }
    })
}

/// Lets resolvers use `?` on domain results.
pub trait IntoGql<T> {
    fn gql(self) -> async_graphql::Result<T>;
}

impl<T> IntoGql<T> for Result<T, DomainError> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(to_graphql)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_names_the_field() {
        let err = to_graphql(DomainError::invalid("body", "too long"));
        let ext = err.extensions.expect("extensions");
        assert_eq!(
            ext.get("code").map(|v| v.to_string()),
            Some("\"BAD_USER_INPUT\"".into())
        );
        assert_eq!(
            ext.get("field").map(|v| v.to_string()),
            Some("\"body\"".into())
        );
    }

    #[test]
    fn internal_errors_do_not_leak_details() {
        let err = to_graphql(DomainError::internal(std::io::Error::other(
            "db password=x",
        )));
        assert_eq!(err.message, "internal error");
    }
}
