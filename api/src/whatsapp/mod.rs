//! The WhatsApp Cloud API wire formats.

pub mod payload;
pub mod signature;
