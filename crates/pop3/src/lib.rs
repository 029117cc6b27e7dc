//! outpost-pop3
pub mod codec;
