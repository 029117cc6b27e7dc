//! outpost-config
