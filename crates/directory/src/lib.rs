//! outpost-directory
