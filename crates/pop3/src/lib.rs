//! outpost-pop3
