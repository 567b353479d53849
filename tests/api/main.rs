//! Black-box tests: the real server over HTTP and WebSocket.

mod helpers;

mod audit;
mod auth;
mod conversations;
mod http_spec;
mod lock;
mod permissions;
mod query_count;
mod schema;
mod subscriptions;
