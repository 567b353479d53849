//! Black-box tests: the real server over HTTP and WebSocket.

mod cloud_api;
mod helpers;

mod assignment;
mod audit;
mod auth;
mod automation;
mod conversations;
mod fanout;
mod http_spec;
mod lock;
mod messaging;
mod permissions;
mod presence;
mod query_count;
mod routing;
mod schema;
mod subscriptions;
mod surveys;
mod webhook;
