//! What the IMAP session needs from storage, in types this crate owns.
//!
//! The binary implements [`MailStorage`] over the real store; tests and the
//! fuzz target use [`crate::memory::MemStorage`]. Message metadata (envelope,
//! MIME structure) and the system flag bits come from `outpost-mailmeta`,
//! which every mail protocol shares.
//!
//! Numbers stay `i64` where the store keeps them so (UIDs, modseqs, sizes);
//! the session narrows UIDs to the protocol's `u32` at the edge.

use std::collections::HashMap;
use std::sync::Arc;

use outpost_mailmeta::MessageMeta;
use tokio::sync::watch;

/// A storage failure, classified by what the client must be told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// No such mailbox or message: `NO [NONEXISTENT]`.
    #[error("not found: {0}")]
    NotFound(String),
    /// The name is taken: `NO [ALREADYEXISTS]`.
    #[error("already exists: {0}")]
    Exists(String),
    /// The request is not allowed (bad name, INBOX rules); the text is
    /// shown to the client: `NO [CANNOT]`.
    #[error("{0}")]
    Invalid(String),
    /// Storage is out of space: `NO [LIMIT]`.
    #[error("storage full: {0}")]
    Full(String),
    /// A concurrent change won; the client may retry.
    #[error("conflicting change")]
    Conflict,
    /// Temporarily unreachable (database down): `NO [UNAVAILABLE]`.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug or corruption: `NO [SERVERBUG]`.
    #[error("internal: {0}")]
    Internal(String),
}

pub type StorageResult<T> = Result<T, StorageError>;

/// A mailbox as LIST, SELECT and STATUS see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxInfo {
    /// Never changes for the mailbox's life (also across RENAME).
    pub id: i64,
    /// Full hierarchical name with `/` as the separator; `INBOX` in
    /// capitals.
    pub name: String,
    /// RFC 6154 attribute such as `\Sent`.
    pub special_use: Option<String>,
    pub subscribed: bool,
    pub uidvalidity: i64,
    pub uidnext: i64,
    pub highest_modseq: i64,
}

/// One message's row: what FLAGS, UID, MODSEQ, RFC822.SIZE and the dates
/// need, and the handle to read its body with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageInfo {
    /// Storage id of this copy (unique across mailboxes).
    pub id: i64,
    pub uid: i64,
    /// System flag bits (`outpost_mailmeta::flags`).
    pub flags: i64,
    pub keywords: Vec<String>,
    pub modseq: i64,
    pub size: i64,
    pub internal_date: i64,
    pub save_date: i64,
    /// Content hash of the body (hex): equal for copies of the same
    /// message, which makes it the base of EMAILID (RFC 8474).
    pub blob_hash: String,
}

/// A message's flags alone, for `FETCH (FLAGS)` and the like over a large
/// range: [`MailStorage::flags_in_uid_range`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagRow {
    pub uid: i64,
    /// System flag bits (`outpost_mailmeta::flags`).
    pub flags: i64,
    /// Sorted.
    pub keywords: Vec<String>,
    pub modseq: i64,
}

/// Counts for STATUS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailboxStatus {
    pub messages: i64,
    pub unseen: i64,
    pub deleted: i64,
    pub size: i64,
    pub uidnext: i64,
    pub uidvalidity: i64,
    pub highest_modseq: i64,
}

/// What SELECT reads in one go: the mailbox and its messages' UIDs (with
/// system flags, for UNSEEN) in ascending UID order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub mailbox: MailboxInfo,
    pub uids: Vec<u32>,
    /// Index into `uids` of the first message without `\Seen`.
    pub first_unseen: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    Add,
    Remove,
    Replace,
}

/// A flag change to apply to some messages of one mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagChange {
    pub op: FlagOp,
    /// System flag bits.
    pub flags: i64,
    pub keywords: Vec<String>,
    /// RFC 7162 UNCHANGEDSINCE: messages with a higher modseq are left
    /// alone and reported in [`FlagResult::modified`].
    pub unchanged_since: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagResult {
    /// The modseq given to the changed messages (0 when nothing changed).
    pub modseq: i64,
    /// Messages whose flags changed, as they are now.
    pub changed: Vec<MessageInfo>,
    /// UIDs that failed the UNCHANGEDSINCE test.
    pub modified: Vec<i64>,
}

/// One message for APPEND.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub data: Arc<[u8]>,
    pub flags: i64,
    pub keywords: Vec<String>,
    /// INTERNALDATE, Unix seconds.
    pub internal_date: i64,
}

/// Where APPEND filed one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub uidvalidity: i64,
    pub uid: i64,
}

/// COPY/MOVE's result: the destination's UIDVALIDITY and (source UID, new
/// UID) pairs for COPYUID.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Copied {
    pub uidvalidity: i64,
    pub pairs: Vec<(i64, i64)>,
}

/// Which UIDs were expunged since a modseq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expunged {
    /// From the change journal, ascending.
    Uids(Vec<i64>),
    /// The modseq is older than the oldest the journal still answers for
    /// (its floor): the expunges in between are no longer known. The
    /// caller works from the current UID list instead (RFC 7162 3.2.5.2).
    BeforeFloor,
}

/// Changes to one mailbox after a modseq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Messages added or whose flags changed (ascending UID). Always known:
    /// it comes from the messages' own modseqs, not from the journal.
    pub changed: Vec<MessageInfo>,
    pub expunged: Expunged,
}

/// Storage as one IMAP session uses it. Every method is one storage
/// operation; multi-message writes (MULTIAPPEND, COPY, MOVE, flag changes,
/// EXPUNGE) are atomic.
#[async_trait::async_trait]
pub trait MailStorage: Send + Sync {
    /// The principal's mailboxes, by name.
    async fn mailboxes(&self, principal: i64) -> StorageResult<Vec<MailboxInfo>>;
    /// One mailbox by name (`inbox` in any case means INBOX).
    async fn mailbox(&self, principal: i64, name: &str) -> StorageResult<Option<MailboxInfo>>;
    async fn create_mailbox(
        &self,
        principal: i64,
        name: &str,
        special_use: Option<String>,
    ) -> StorageResult<()>;
    /// Deletes the mailbox and its messages.
    async fn delete_mailbox(&self, mailbox: i64) -> StorageResult<()>;
    /// Renames a mailbox and its children; renaming INBOX moves its
    /// messages to a new mailbox and leaves INBOX empty (RFC 3501 6.3.5).
    async fn rename_mailbox(&self, principal: i64, from: &str, to: &str) -> StorageResult<()>;
    async fn set_subscribed(&self, mailbox: i64, on: bool) -> StorageResult<()>;
    async fn status(&self, mailbox: i64) -> StorageResult<MailboxStatus>;

    /// A receiver woken after each committed change to the mailbox with
    /// its new highest modseq (`i64::MAX` once the mailbox is deleted).
    /// Subscribe before [`snapshot`](Self::snapshot) so no change falls
    /// between.
    fn watch(&self, mailbox: i64) -> watch::Receiver<i64>;
    /// The mailbox and its UIDs, for SELECT. `None` when it is gone.
    async fn snapshot(&self, mailbox: i64) -> StorageResult<Option<Snapshot>>;

    /// Every message row, ascending UID.
    async fn messages(&self, mailbox: i64) -> StorageResult<Vec<MessageInfo>>;
    /// Message rows with `lo <= uid <= hi`, ascending UID.
    async fn messages_in_uid_range(
        &self,
        mailbox: i64,
        lo: i64,
        hi: i64,
    ) -> StorageResult<Vec<MessageInfo>>;
    /// UID, flags, keywords and modseq of the messages with
    /// `lo <= uid <= hi`, ascending UID: what a FETCH of only FLAGS, UID
    /// and MODSEQ needs. Implementations should read just these (one
    /// set-based read of the range); this default goes through
    /// [`messages_in_uid_range`](Self::messages_in_uid_range).
    async fn flags_in_uid_range(
        &self,
        mailbox: i64,
        lo: i64,
        hi: i64,
    ) -> StorageResult<Vec<FlagRow>> {
        let rows = self.messages_in_uid_range(mailbox, lo, hi).await?;
        Ok(rows
            .into_iter()
            .map(|m| FlagRow {
                uid: m.uid,
                flags: m.flags,
                keywords: m.keywords,
                modseq: m.modseq,
            })
            .collect())
    }
    /// Parsed metadata of the given UIDs (missing UIDs are left out).
    async fn message_meta(
        &self,
        mailbox: i64,
        uids: &[i64],
    ) -> StorageResult<HashMap<i64, MessageMeta>>;
    /// The message's full raw text.
    async fn read_body(&self, message: &MessageInfo) -> StorageResult<Vec<u8>>;

    async fn store_flags(
        &self,
        mailbox: i64,
        uids: Vec<i64>,
        change: FlagChange,
    ) -> StorageResult<FlagResult>;
    /// Files all the messages or none (MULTIAPPEND, RFC 3502).
    async fn append(&self, mailbox: i64, messages: Vec<NewMessage>)
        -> StorageResult<Vec<Appended>>;
    /// Copies the messages, and with `remove` deletes the originals in the
    /// same transaction (MOVE). UIDs that do not exist are skipped.
    async fn copy_messages(
        &self,
        from: i64,
        uids: &[i64],
        to: i64,
        remove: bool,
    ) -> StorageResult<Copied>;
    /// Removes messages flagged `\Deleted`; with `uids`, only those of
    /// them (UID EXPUNGE). Returns the expunged UIDs, ascending.
    async fn expunge(&self, mailbox: i64, uids: Option<Vec<i64>>) -> StorageResult<Vec<i64>>;
    /// Changes after `modseq`, for CONDSTORE/QRESYNC and for telling a
    /// session what other sessions did.
    async fn changes_since(&self, mailbox: i64, modseq: i64) -> StorageResult<Changes>;
    /// Octets the principal's messages take, for QUOTA.
    async fn usage(&self, principal: i64) -> StorageResult<i64>;
}
