//! The GraphQL schema: one file per aggregate, merged here.

pub mod assignment;
pub mod audit;
pub mod auth;
pub mod automation;
pub mod contact;
pub mod context;
pub mod conversation;
pub mod error;
pub mod http;
pub mod integration;
pub mod loaders;
pub mod messaging;
pub mod metrics;
pub mod reference;
pub mod sla;
pub mod staff;
pub mod subscription;
pub mod types;
pub mod ws;

use async_graphql::{MergedObject, Schema};
use domain::Domain;

use crate::events::InProcessBus;

#[derive(MergedObject, Default)]
pub struct QueryRoot(
    auth::AuthQuery,
    staff::StaffQuery,
    conversation::ConversationQuery,
    contact::ContactQuery,
    reference::ReferenceQuery,
    audit::AuditQuery,
    assignment::AssignmentQuery,
    messaging::MessagingQuery,
    sla::SlaQuery,
    integration::IntegrationQuery,
    metrics::MetricsQuery,
    automation::AutomationQuery,
);

#[derive(MergedObject, Default)]
pub struct MutationRoot(
    auth::AuthMutation,
    staff::StaffMutation,
    conversation::ConversationMutation,
    contact::ContactMutation,
    reference::ReferenceMutation,
    assignment::AssignmentMutation,
    messaging::MessagingMutation,
    sla::SlaMutation,
    integration::IntegrationMutation,
    metrics::MetricsMutation,
    automation::AutomationMutation,
);

pub type HelpdeskSchema = Schema<QueryRoot, MutationRoot, subscription::SubscriptionRoot>;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_depth: usize,
    pub max_complexity: usize,
}

/// Built once at start-up and cloned into every worker of the HTTP server.
pub fn build_schema(
    domain: Domain,
    bus: InProcessBus,
    limits: Limits,
    metrics: crate::metrics::GraphqlMetrics,
) -> HelpdeskSchema {
    let loaders = loaders::Loaders::batching(&domain.read);
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        subscription::SubscriptionRoot,
    )
    .data(domain)
    .data(bus)
    .data(loaders)
    .limit_depth(limits.max_depth)
    .limit_complexity(limits.max_complexity)
    .extension(metrics)
    .finish()
}

/// The SDL clients build against; `schema.graphql` at the root is this text.
pub fn sdl() -> String {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        subscription::SubscriptionRoot,
    )
    .finish()
    .sdl()
}
