//! What the POP3 server needs from the directory and the store, and the
//! maildrop locks.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

pub use outpost_net::{AuthUser, TempFail};

/// One message of the maildrop snapshot taken at login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaildropEntry {
    /// Opaque to POP3; handed back to [`Pop3Backend::read`] and
    /// [`Pop3Backend::expunge`] (e.g. the IMAP UID).
    pub id: u64,
    /// Size in octets as POP3 sends it: the message with every line ending
    /// (CRLF, lone LF, lone CR) counted as CRLF and a final CRLF if the
    /// message lacks one, before dot-stuffing. Compute it with
    /// [`crate::codec::wire_size`] (once, at delivery, and store it). A raw
    /// byte count is wrong for messages with bare LFs, and clients such as
    /// fetchmail compare it with what RETR delivers.
    pub size: u64,
    /// Unique-id listing value (RFC 1939 §7): 1 to 70 characters in
    /// 0x21..=0x7E, the same for this message in every session, across
    /// restarts, and never reused for another message of the mailbox.
    /// Derive it from UIDVALIDITY and UID, e.g. `format!("{uidvalidity:08x}{uid:08x}")`.
    pub uidl: String,
}

/// The directory and store, as POP3 sees them. Implemented by the binary;
/// tests use an in-memory fake. Logins do not come here: they go through
/// the shared [`outpost_net::AuthLayer`].
#[async_trait::async_trait]
pub trait Pop3Backend: Send + Sync {
    /// The user's INBOX at this moment, oldest first; this order gives the
    /// POP3 message numbers 1, 2, ... Messages delivered later are not
    /// shown to this session (RFC 1939 maildrop snapshot). Called with the
    /// per-user maildrop lock held.
    async fn open_maildrop(&self, user: &AuthUser) -> Result<Vec<MaildropEntry>, TempFail>;

    /// The raw message `id` from the snapshot, as stored (any line endings;
    /// the server normalises to CRLF and dot-stuffs). `Ok(None)` if it has
    /// been expunged meanwhile, e.g. by an IMAP session.
    async fn read(&self, user: &AuthUser, id: u64) -> Result<Option<Vec<u8>>, TempFail>;

    /// Removes the messages from INBOX, as an IMAP EXPUNGE would, so that
    /// other sessions see them gone. Called once, on QUIT in the
    /// TRANSACTION state, with the ids the client DELEted (never on a
    /// dropped connection). Ids already gone are not an error. Must be
    /// durable before returning `Ok`.
    async fn expunge(&self, user: &AuthUser, ids: &[u64]) -> Result<(), TempFail>;
}

/// In-process exclusive maildrop locks (RFC 1939 §8: the server acquires an
/// exclusive-access lock on the maildrop). A second POP3 login to a locked
/// maildrop gets `-ERR [IN-USE]`. Clone it to share: the `pop3` and `pop3s`
/// listeners must use the same one. IMAP is not excluded, and several
/// nodes sharing one database do not see each other's locks.
#[derive(Clone, Default)]
pub struct MaildropLocks {
    held: Arc<Mutex<HashSet<String>>>,
}

impl MaildropLocks {
    /// Takes the lock for `user_id`, or `None` if another session holds it.
    /// The lock is released when the guard is dropped.
    pub fn try_lock(&self, user_id: &str) -> Option<MaildropGuard> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if held.insert(user_id.to_owned()) {
            Some(MaildropGuard {
                locks: self.clone(),
                user_id: user_id.to_owned(),
            })
        } else {
            None
        }
    }

    /// True if some session holds `user_id`'s maildrop.
    pub fn is_locked(&self, user_id: &str) -> bool {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.contains(user_id)
    }
}

/// A held maildrop lock; dropping it releases the lock.
pub struct MaildropGuard {
    locks: MaildropLocks,
    user_id: String,
}

impl Drop for MaildropGuard {
    fn drop(&mut self) {
        let mut held = self.locks.held.lock().unwrap_or_else(|e| e.into_inner());
        held.remove(&self.user_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_is_exclusive_and_released_on_drop() {
        let locks = MaildropLocks::default();
        let shared = locks.clone();
        let g = locks.try_lock("u1").unwrap();
        assert!(shared.try_lock("u1").is_none());
        assert!(shared.try_lock("u2").is_some());
        assert!(locks.is_locked("u1"));
        drop(g);
        assert!(!locks.is_locked("u1"));
        assert!(shared.try_lock("u1").is_some());
    }
}
