//! Who is acting. Every domain operation takes one, so permission checks sit
//! where the data is touched.

use entity::{ActorKind, Role};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub kind: ActorKind,
    /// The staff user's id, or the API token's id.
    pub id: Option<i64>,
    pub role: Role,
}

impl Actor {
    pub fn user(id: i64, role: Role) -> Self {
        Self {
            kind: ActorKind::User,
            id: Some(id),
            role,
        }
    }

    pub fn api_token(id: i64, role: Role) -> Self {
        Self {
            kind: ActorKind::ApiToken,
            id: Some(id),
            role,
        }
    }

    /// Workers and start-up tasks: all rights, recorded as the system.
    pub fn system() -> Self {
        Self {
            kind: ActorKind::System,
            id: None,
            role: Role::Admin,
        }
    }

    /// Inbound WhatsApp traffic.
    pub fn webhook() -> Self {
        Self {
            kind: ActorKind::Webhook,
            id: None,
            role: Role::Admin,
        }
    }

    /// The staff user id, when a person (not a token or a worker) is acting.
    pub fn user_id(&self) -> Option<i64> {
        match self.kind {
            ActorKind::User => self.id,
            _ => None,
        }
    }
}
