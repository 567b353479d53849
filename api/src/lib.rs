//! The HTTP and GraphQL face of the helpdesk, its workers and its command line.

pub mod cli;
pub mod config;
pub mod db;
pub mod demo;
pub mod events;
pub mod graphql;
pub mod health;
pub mod metrics;
pub mod outbound_webhooks;
pub mod startup;
pub mod telemetry;
pub mod webhook;
pub mod whatsapp;
pub mod workers;

pub use config::Config;
pub use startup::Application;
