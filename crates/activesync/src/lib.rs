//! Exchange ActiveSync (MS-ASHTTP, MS-ASCMD, MS-ASPROV) over HTTP:
//! `POST`/`OPTIONS /Microsoft-Server-ActiveSync`.
//!
//! The crate knows no storage: the binary implements [`EasBackend`].
//! Each command has a module of pure functions over
//! [`outpost_wbxml::Element`] (request parsing, answer building); the
//! axum handler in [`http`] is thin: it reads the request line
//! ([`query`]), checks the protocol version and the policy key, decodes
//! the body under [`Limits`], and dispatches.
//!
//! Commands answered so far: Provision, FolderSync, FolderCreate,
//! FolderUpdate, FolderDelete, Sync (Email), GetItemEstimate, Ping,
//! MoveItems, ItemOperations, Settings. The others answer HTTP 501
//! (MS-ASHTTP 3.2.5.1.1: a command the server does not support) until
//! their modules land.

pub mod compose;
pub mod drafts;
pub mod email;
pub mod estimate;
pub mod folders;
pub mod http;
pub mod itemops;
pub mod loops;
pub mod meeting;
pub mod moves;
pub mod pim;
pub mod ping;
pub mod provision;
pub mod query;
pub mod ranges;
pub mod resolve;
pub mod search;
pub mod settings;
pub mod state;
pub mod sync;

pub use folders::{Class, Folder, FolderOpError};
pub use query::{Command, RequestLine, Version};
pub use state::StoredState;
pub use sync::{Journal, MailItem};

use async_trait::async_trait;

/// The `MS-ASProtocolCommands` an `OPTIONS` announces: the commands this
/// server answers.
pub const ANNOUNCED_COMMANDS: &[Command] = &[
    Command::Provision,
    Command::FolderSync,
    Command::FolderCreate,
    Command::FolderUpdate,
    Command::FolderDelete,
    Command::Sync,
    Command::GetItemEstimate,
    Command::Ping,
    Command::MoveItems,
    Command::ItemOperations,
    Command::Settings,
    Command::SendMail,
    Command::SmartReply,
    Command::SmartForward,
    Command::Search,
    Command::Find,
    Command::ResolveRecipients,
    Command::MeetingResponse,
];

/// Limits of one request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes of a request body (a SendMail carries a whole message).
    pub max_body: usize,
    /// The WBXML decoder's limits.
    pub wbxml: outpost_wbxml::Limits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body: 40 << 20,
            wbxml: outpost_wbxml::Limits {
                max_size: 40 << 20,
                max_depth: 32,
                max_elements: 200_000,
                max_string: 36 << 20,
            },
        }
    }
}

/// One device of one principal, as the store keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Device {
    pub device_type: String,
    pub user_agent: Option<String>,
    /// The final policy key; `None` until the device has provisioned.
    pub policy_key: Option<u32>,
    /// The temporary key handed out with the policy, until acknowledged.
    pub pending_key: Option<u32>,
    pub wipe_requested: bool,
    pub wipe_acknowledged: bool,
}

/// Why a backend call failed.
#[derive(Debug, Clone)]
pub enum BackendError {
    /// The store could not answer (HTTP 503; the client retries).
    Unavailable(String),
}

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendError::Unavailable(e) => write!(f, "store unavailable: {e}"),
        }
    }
}

/// A calendar object or contact as the converters need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PimObject {
    pub data: String,
    /// The collection's zone (IANA name), when it has one.
    pub tz: Option<String>,
    /// Its resource name (the last segment of its DAV URL).
    pub name: String,
    /// Its UID (iCalendar UID, vCard UID).
    pub uid: String,
    /// When it was first stored and last written, Unix seconds.
    pub created: i64,
    pub modified: i64,
}

/// Where [`EasBackend::pim_put`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot<'a> {
    /// A new object, at this resource name (the last segment of its DAV
    /// URL) or, with `None`, at one the store chooses. A name taken is a
    /// [`PimRefused::Conflict`].
    New(Option<&'a str>),
    /// The object with this item number.
    Item(i64),
}

/// Why a write from the device was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PimRefused {
    /// Not a valid object (status 6).
    Invalid,
    /// Over quota (status 9).
    Full,
    /// The item is not there any more (status 8).
    NotFound,
    /// Changed meanwhile (status 7, conflict).
    Conflict,
}

/// What the server adds to a SmartReply or SmartForward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Smart {
    Reply,
    Forward,
}

/// Why a message was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendRefused {
    /// The user may not send as its From: or Sender: address.
    NotAllowed,
    /// The MIME message cannot be read (From: without an address...).
    BadMessage,
    /// The original could not be added.
    ReplyFailed,
    /// A recipient in a hosted domain that does not exist.
    UnknownRecipient,
    NoRecipients,
    /// Storage full.
    Full,
    /// Try again later.
    Temporary,
    /// Refused for good (policy).
    Failed,
}

/// What a command could not do, mapped by the dispatcher to the
/// command's own status or an HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The command's top-level Status value.
    Status(u32),
    /// Provision: the policy type is not the WBXML one (status 3 in the
    /// Policy element).
    PolicyType,
}

/// Storage the protocol needs. `principal` is the authenticated user's
/// login as the auth layer gave it.
#[async_trait]
pub trait EasBackend: Send + Sync + 'static {
    /// The device, if it has been seen (a removed device is unknown).
    async fn device(&self, principal: i64, device_id: &str)
        -> Result<Option<Device>, BackendError>;
    /// Creates or replaces the device's state, and records it as seen now.
    async fn put_device(
        &self,
        principal: i64,
        device_id: &str,
        device: &Device,
    ) -> Result<(), BackendError>;

    // Folders, sync state and mail items (FolderSync, Sync, Ping...).
    // Collection ids come from the client: every method that takes one
    // also takes the principal and treats another principal's collection
    // as missing.

    /// The principal's folders that ActiveSync shows.
    async fn folders(&self, principal: i64) -> Result<Vec<Folder>, BackendError>;
    /// The principal's collection-journal sequence: when it has not moved,
    /// the folder list has not changed.
    async fn hierarchy_seq(&self, principal: i64) -> Result<i64, BackendError>;
    async fn create_folder(
        &self,
        principal: i64,
        parent: i64,
        name: &str,
        folder_type: u8,
    ) -> Result<Result<i64, FolderOpError>, BackendError>;
    async fn update_folder(
        &self,
        principal: i64,
        id: i64,
        parent: i64,
        name: &str,
    ) -> Result<Result<(), FolderOpError>, BackendError>;
    async fn delete_folder(
        &self,
        principal: i64,
        id: i64,
    ) -> Result<Result<(), FolderOpError>, BackendError>;
    /// A device's sync state of a collection (0: the folder hierarchy;
    /// negative: the crate's own bookkeeping, e.g. the last Ping).
    async fn sync_state(
        &self,
        principal: i64,
        device_id: &str,
        collection: i64,
    ) -> Result<Option<StoredState>, BackendError>;
    /// Stores it; with `expected`, only if the stored key is still that
    /// one (false otherwise).
    async fn put_sync_state(
        &self,
        principal: i64,
        device_id: &str,
        collection: i64,
        expected: Option<i64>,
        state: &StoredState,
    ) -> Result<bool, BackendError>;
    /// A mail folder's changes after modseq `since`.
    async fn journal(
        &self,
        principal: i64,
        collection: i64,
        since: i64,
    ) -> Result<Journal, BackendError>;
    /// (highest modseq, next UID) of a mail folder; `None` when missing.
    async fn mail_point(
        &self,
        principal: i64,
        collection: i64,
    ) -> Result<Option<(i64, i64)>, BackendError>;
    /// Up to `limit` messages with a UID below `below` received at or
    /// after `since`, highest UID first.
    async fn mail_below(
        &self,
        principal: i64,
        collection: i64,
        below: i64,
        since: i64,
        limit: usize,
    ) -> Result<Vec<MailItem>, BackendError>;
    async fn mail_count_below(
        &self,
        principal: i64,
        collection: i64,
        below: i64,
        since: i64,
    ) -> Result<i64, BackendError>;
    async fn mail_item(
        &self,
        principal: i64,
        collection: i64,
        uid: i64,
    ) -> Result<Option<MailItem>, BackendError>;
    /// The message's bytes.
    async fn mail_raw(
        &self,
        principal: i64,
        collection: i64,
        uid: i64,
    ) -> Result<Option<Vec<u8>>, BackendError>;
    /// Sets or clears \Seen and \Flagged; the message's new modseq, or
    /// `None` when there is no such message.
    async fn set_mail_flags(
        &self,
        principal: i64,
        collection: i64,
        uid: i64,
        read: Option<bool>,
        flagged: Option<bool>,
    ) -> Result<Option<i64>, BackendError>;
    /// Moves messages to another folder of the principal: (old UID, new
    /// UID) of those moved.
    async fn move_mail(
        &self,
        principal: i64,
        from: i64,
        uids: &[i64],
        to: i64,
    ) -> Result<Vec<(i64, i64)>, BackendError>;
    /// Removes messages for good; the UIDs removed.
    async fn expunge_mail(
        &self,
        principal: i64,
        collection: i64,
        uids: &[i64],
    ) -> Result<Vec<i64>, BackendError>;
    /// The user's out-of-office (the one the Sieve script holds).
    async fn out_of_office(&self, principal: i64) -> Result<settings::Oof, BackendError>;
    /// Sets it; false when the store refused it.
    async fn set_out_of_office(
        &self,
        principal: i64,
        oof: &settings::Oof,
    ) -> Result<bool, BackendError>;
    /// The user's email addresses, the primary one first.
    async fn addresses(&self, principal: i64) -> Result<Vec<String>, BackendError>;
    /// Sends a message the device composed as the principal (the one
    /// mail-flow submission: sender check, DKIM, queue), with the
    /// original added for a reply or forward, and files the Sent copy
    /// when `save_sent`.
    async fn send_mail(
        &self,
        principal: i64,
        mime: &[u8],
        save_sent: bool,
        original: Option<(Smart, Vec<u8>)>,
    ) -> Result<Result<(), SendRefused>, BackendError>;
    /// Marks a message answered (\Answered) or forwarded ($Forwarded).
    async fn mark_replied(
        &self,
        principal: i64,
        collection: i64,
        uid: i64,
        forwarded: bool,
    ) -> Result<(), BackendError>;
    // Calendar, Contacts and Tasks folders: the journal, `mail_point`,
    // `mail_below`, `mail_count_below` and `mail_item` answer for them
    // too (the item number in place of the UID, and in place of the
    // internal date the end of the last instance, i64::MAX for an open
    // recurrence or a contact), so one sync state serves every class.

    /// The object's iCalendar or vCard text and the zone of its
    /// collection (an IANA name, for floating times).
    async fn pim_data(
        &self,
        principal: i64,
        collection: i64,
        item: i64,
    ) -> Result<Option<PimObject>, BackendError>;
    /// Writes an object into a calendar or address book of the principal,
    /// as a DAV client's PUT would (the same ingest, quota and
    /// scheduling): a new one or item `n` ([`Slot`]). The item number
    /// and modseq, or why it was refused.
    async fn pim_put(
        &self,
        principal: i64,
        collection: i64,
        slot: Slot<'_>,
        data: &str,
    ) -> Result<Result<(i64, i64), PimRefused>, BackendError>;
    /// Deletes an object (scheduling as for a DAV DELETE); false when
    /// there is none.
    async fn pim_delete(
        &self,
        principal: i64,
        collection: i64,
        item: i64,
    ) -> Result<bool, BackendError>;
    /// GAL entries whose name or address starts with `query` (the
    /// directory's search), at most `limit`, sorted by name.
    async fn search_gal(
        &self,
        principal: i64,
        query: &str,
        limit: usize,
    ) -> Result<Vec<search::GalHit>, BackendError>;
    /// Messages of the query's folders containing its text, newest first:
    /// the total found and those at positions `range` (inclusive).
    async fn search_mail(
        &self,
        principal: i64,
        query: &search::MailQuery,
        range: (usize, usize),
    ) -> Result<search::MailHits, BackendError>;
    /// Busy time of each address over `[start, end)`, in the order
    /// given: `None` for one without free/busy here (not hosted, a group).
    async fn availability(
        &self,
        principal: i64,
        addresses: &[String],
        start: i64,
        end: i64,
    ) -> Result<Vec<Option<Vec<resolve::Busy>>>, BackendError>;
    /// Answers a meeting for the principal: `item` of `collection` is the
    /// invitation mail or the calendar item; the user's PARTSTAT is set on
    /// its calendar copy, written as a CalDAV PUT (the scheduling engine
    /// sends the REPLY).
    async fn meeting_response(
        &self,
        principal: i64,
        collection: i64,
        item: i64,
        answer: meeting::Answer,
    ) -> Result<meeting::Outcome, BackendError>;
    /// Files a draft in the principal's mail folder `collection` (\Draft,
    /// \Seen), removing the message `replace` once it is: the new (UID,
    /// modseq), or `None` when the folder is not the user's or the draft
    /// cannot be written (an address list that is not one).
    async fn save_draft(
        &self,
        principal: i64,
        collection: i64,
        draft: &drafts::Draft,
        replace: Option<i64>,
    ) -> Result<Option<(i64, i64)>, BackendError>;
    /// Woken with the collection's new modseq after each change (Ping).
    fn watch(&self, collection: i64) -> Option<tokio::sync::watch::Receiver<i64>>;
    /// Woken after each change to the principal's list of collections
    /// (Ping answers 7 when the device's folder list is then stale).
    fn watch_hierarchy(&self, principal: i64) -> Option<tokio::sync::watch::Receiver<i64>>;
}
