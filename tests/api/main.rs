//! Black-box tests: the real server over HTTP and WebSocket.

mod cloud_api;
mod crm;
mod helpers;

mod assignment;
mod audit;
mod auth;
mod automation;
mod contacts_io;
mod conversations;
mod fanout;
mod http_spec;
mod integration;
mod lock;
mod messaging;
mod metrics;
mod metrics_rollup;
mod operations;
mod permissions;
mod presence;
mod query_count;
mod request_logs;
mod retention;
mod retention_worker;
mod routing;
mod schema;
mod sla;
mod subscriptions;
mod surveys;
mod webhook;
mod webhook_enqueue;
