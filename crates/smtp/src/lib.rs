//! outpost-smtp
