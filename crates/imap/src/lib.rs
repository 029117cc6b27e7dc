//! outpost-imap
