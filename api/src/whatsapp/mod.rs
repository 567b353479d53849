//! The WhatsApp Cloud API wire formats.

pub mod client;
pub mod payload;
pub mod signature;
