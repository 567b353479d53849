//! Black-box tests: the real server over HTTP and WebSocket.

mod cloud_api;
mod helpers;

mod audit;
mod auth;
mod conversations;
mod http_spec;
mod lock;
mod messaging;
mod permissions;
mod query_count;
mod schema;
mod subscriptions;
mod webhook;
