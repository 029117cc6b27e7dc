//! outpost-store
