//! The four roles of the spec, as capabilities. Every domain operation asks
//! for one; the matrix test in `tests/` checks each role against each operation.

use entity::{ActorKind, Role};

use crate::{Actor, DomainError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Read and act on conversations (an Agent only on those assigned to it).
    HandleConversations,
    /// Assign, transfer, tag and review any conversation.
    ManageConversations,
    /// Delete conversations, messages or notes: Admin only.
    DeleteHistory,
    /// Read and edit contacts beyond the ones an agent is serving.
    ManageContacts,
    /// Departments, tags, channels, rules, policies.
    Configure,
    /// Staff users and API tokens.
    ManageStaff,
    /// See the staff directory (to assign or transfer).
    ListStaff,
    /// The audit trail.
    ReadAudit,
    /// Metrics and reports.
    ReadMetrics,
    /// Departments and tags as reference data.
    ReadReference,
    /// Have a presence (online / away / offline) and send heartbeats.
    ReportPresence,
}

pub fn allows(role: Role, cap: Capability) -> bool {
    use Capability::*;
    match role {
        Role::Admin => true,
        Role::Editor => !matches!(cap, DeleteHistory | Configure | ManageStaff),
        Role::Agent => matches!(
            cap,
            HandleConversations | ReadReference | ListStaff | ReportPresence
        ),
        Role::Analyst => matches!(cap, ReadMetrics | ReadReference),
    }
}

impl Actor {
    pub fn require(&self, cap: Capability) -> Result<()> {
        // API tokens are read-only whatever role they carry.
        let token_ok = self.kind != ActorKind::ApiToken
            || matches!(cap, Capability::ReadMetrics | Capability::ReadReference);
        if allows(self.role, cap) && token_ok {
            Ok(())
        } else {
            Err(DomainError::forbidden(format!(
                "{:?} may not {}",
                self.role,
                describe(cap)
            )))
        }
    }

    /// True when the actor sees every conversation, not only its own.
    pub fn sees_all_conversations(&self) -> bool {
        allows(self.role, Capability::ManageConversations)
    }
}

fn describe(cap: Capability) -> &'static str {
    match cap {
        Capability::HandleConversations => "handle conversations",
        Capability::ManageConversations => "manage conversations",
        Capability::DeleteHistory => "delete history",
        Capability::ManageContacts => "manage contacts",
        Capability::Configure => "change settings",
        Capability::ManageStaff => "manage staff",
        Capability::ListStaff => "list staff",
        Capability::ReadAudit => "read the audit log",
        Capability::ReadMetrics => "read metrics",
        Capability::ReadReference => "read reference data",
        Capability::ReportPresence => "report presence",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editor_cannot_delete_history() {
        assert!(!allows(Role::Editor, Capability::DeleteHistory));
        assert!(allows(Role::Editor, Capability::ManageConversations));
    }

    #[test]
    fn analyst_reads_metrics_only() {
        assert!(allows(Role::Analyst, Capability::ReadMetrics));
        assert!(!allows(Role::Analyst, Capability::HandleConversations));
    }

    #[test]
    fn api_tokens_are_read_only() {
        let token = Actor::api_token(1, Role::Admin);
        assert!(token.require(Capability::ReadMetrics).is_ok());
        assert!(token.require(Capability::Configure).is_err());
    }
}
