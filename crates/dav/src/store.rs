//! What the DAV handlers need from storage: [`DavStore`].
//!
//! Shaped 1:1 on the store's groupware API (`outpost_store::groupware`,
//! see the issue 15 interfaces): calendars and address books are rows of
//! the one `collections` table, objects are immutable source blobs with
//! indexed columns, every write bumps the collection's modseq and writes
//! the change journal in the same transaction. The binary implements this
//! trait over the store (`crates/outpost/src/dav_store.rs`); the crate's
//! tests use [`crate::memory::MemDavStore`] (feature `testing`).
//!
//! Times are UTC seconds since the Unix epoch. Principal and collection ids
//! are the store's ids. A PUT hands the store the source bytes with what
//! the DAV layer ingested from them (`outpost_pim`'s index, [`NewObject`]),
//! so the bytes are parsed once and the store keeps the same index.

use async_trait::async_trait;

/// Storage failures, sorted by what DAV answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DavStoreError {
    /// Try again later: 503 with Retry-After.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// No space or over quota: 507 (DAV:quota-not-exceeded on PUT).
    #[error("storage full: {0}")]
    Full(String),
    #[error("{0} not found")]
    NotFound(String),
    /// A collection or resource of that name already exists: 405 on MKCOL.
    #[error("{0} already exists")]
    Exists(String),
    /// The store refuses the value (a name, a property): 403/400.
    #[error("{0}")]
    Invalid(String),
    #[error("storage error: {0}")]
    Internal(String),
}

pub type DavStoreResult<T> = Result<T, DavStoreError>;

/// A user (or group, resource, room) as DAV shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DavPrincipal {
    pub id: i64,
    /// Canonical login (the primary address): the `<login>` path segment.
    pub login: String,
    pub display_name: Option<String>,
    /// Every address of the principal, primary first (aliases, directory
    /// secondaries): `calendar-user-address-set` lists all of them.
    pub addresses: Vec<String>,
    /// `CALDAV:calendar-user-type` (RFC 6638 §2.4.2), the RFC 5545 CUTYPE in
    /// upper case: INDIVIDUAL, GROUP, RESOURCE, ROOM or UNKNOWN.
    pub calendar_user_type: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CollectionKind {
    Calendar,
    AddressBook,
}

impl CollectionKind {
    /// The store's `collections.kind` value.
    pub fn as_str(self) -> &'static str {
        match self {
            CollectionKind::Calendar => "calendar",
            CollectionKind::AddressBook => "addressbook",
        }
    }
}

/// The component an object holds (the store's `kind` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ComponentKind {
    VEvent,
    VTodo,
    VJournal,
    VCard,
}

impl ComponentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentKind::VEvent => "VEVENT",
            ComponentKind::VTodo => "VTODO",
            ComponentKind::VJournal => "VJOURNAL",
            ComponentKind::VCard => "VCARD",
        }
    }

    pub fn parse(s: &str) -> Option<ComponentKind> {
        match s.to_ascii_uppercase().as_str() {
            "VEVENT" => Some(ComponentKind::VEvent),
            "VTODO" => Some(ComponentKind::VTodo),
            "VJOURNAL" => Some(ComponentKind::VJournal),
            "VCARD" => Some(ComponentKind::VCard),
            _ => None,
        }
    }
}

/// An object the DAV layer ingested for a PUT: the index the store keeps.
#[derive(Debug, Clone)]
pub enum NewObject {
    Calendar(Box<outpost_pim::CalendarObject>),
    Contact(Box<outpost_pim::ContactIndex>),
}

impl NewObject {
    pub fn uid(&self) -> &str {
        match self {
            NewObject::Calendar(o) => &o.index.uid,
            NewObject::Contact(c) => &c.uid,
        }
    }

    pub fn kind(&self) -> ComponentKind {
        match self {
            NewObject::Calendar(o) => crate::content::kind_of(o.index.kind),
            NewObject::Contact(_) => ComponentKind::VCard,
        }
    }
}

/// A calendar or address book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DavCollection {
    pub id: i64,
    /// Owner principal id.
    pub owner: i64,
    pub kind: CollectionKind,
    /// URL segment, unique per owner and kind.
    pub name: String,
    pub display_name: Option<String>,
    /// As the client wrote it (`#RRGGBB` or `#RRGGBBAA`).
    pub color: Option<String>,
    pub description: Option<String>,
    /// `calendar-timezone`: a VCALENDAR with one VTIMEZONE, kept as sent.
    pub timezone: Option<String>,
    /// Calendars only; empty for address books.
    pub components: Vec<ComponentKind>,
    pub order: Option<i32>,
    /// The collection's highest modseq: getctag and the sync-token.
    pub ctag: i64,
    /// Read-only collections (the GAL): PUT/DELETE answer 403.
    pub read_only: bool,
}

/// What MKCOL/MKCALENDAR asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewCollection {
    pub name: String,
    pub display_name: Option<String>,
    pub color: Option<String>,
    pub description: Option<String>,
    pub timezone: Option<String>,
    /// Empty means every calendar component (VEVENT, VTODO, VJOURNAL).
    pub components: Vec<ComponentKind>,
    pub order: Option<i32>,
}

/// PROPPATCH: `Some(Some(v))` sets, `Some(None)` removes, `None` leaves.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CollectionPatch {
    pub display_name: Option<Option<String>>,
    pub color: Option<Option<String>>,
    pub description: Option<Option<String>>,
    pub timezone: Option<Option<String>>,
    pub order: Option<Option<i32>>,
}

impl CollectionPatch {
    pub fn is_empty(&self) -> bool {
        self.display_name.is_none()
            && self.color.is_none()
            && self.description.is_none()
            && self.timezone.is_none()
            && self.order.is_none()
    }
}

/// An object's row without its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Resource name in the collection (the href's last segment, decoded).
    pub name: String,
    /// Strong ETag without quotes (from the content hash).
    pub etag: String,
    pub modseq: i64,
    pub uid: String,
    pub kind: ComponentKind,
    pub size: u64,
    /// The Schedule-Tag without quotes (RFC 6638 §3.2.10) of a scheduling
    /// object resource; `None` for any other object.
    pub schedule_tag: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DavObject {
    pub meta: ObjectMeta,
    pub data: Vec<u8>,
}

/// A PUT's conditions, from the HTTP headers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PutCondition {
    #[default]
    None,
    /// `If-Match: "etag"`: replace only that version.
    IfMatch(String),
    /// `If-None-Match: *`: create only.
    IfNoneMatchAny,
}

/// What a PUT (or COPY/MOVE) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    Created {
        etag: String,
    },
    Replaced {
        etag: String,
    },
    PreconditionFailed,
    /// Another object of the collection has this UID (CalDAV/CardDAV
    /// `no-uid-conflict`): its name.
    UidConflict {
        existing: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted,
    NotFound,
    PreconditionFailed,
}

/// The changes of a collection after a sync token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncAnswer {
    Changes {
        /// The collection's highest modseq: the next token.
        highest: i64,
        /// Live objects added or changed after the token, in modseq order.
        changed: Vec<ObjectMeta>,
        /// Tombstones: names removed after the token, with their modseq.
        removed: Vec<(String, i64)>,
    },
    /// The token is below the journal's floor or newer than the collection:
    /// DAV:valid-sync-token.
    TooOld,
}

/// What a principal may do with a collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rights {
    /// Only free/busy (CALDAV:read-free-busy).
    FreeBusy,
    Read,
    ReadWrite,
    /// The owner: everything, including properties and deletion.
    Owner,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub grantee: i64,
    /// The grantee's login, for the DAV:acl principal href.
    pub grantee_login: String,
    pub rights: Rights,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BusyType {
    Busy,
    Tentative,
    Unavailable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusyPeriod {
    pub start: i64,
    pub end: i64,
    pub kind: BusyType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Quota {
    pub used_bytes: u64,
    /// `None`: no limit (quota-available-bytes is then not reported).
    pub available_bytes: Option<u64>,
}

/// Free/busy of one calendar user for a schedule outbox POST (RFC 6638 §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleFreeBusy {
    /// A hosted calendar user: its busy periods in the range.
    Busy(Vec<BusyPeriod>),
    /// An address not hosted here (request-status 3.7).
    NotHosted,
    /// A hosted domain, but not one calendar user (request-status 3.7).
    Unknown,
}

/// The storage the DAV layer runs on. Every method is one store operation
/// (one transaction where it writes).
/// A time-range candidate: an object's name, and whether the store knows
/// from its instances index (computed at ingest, in the collection's
/// timezone for floating times) that an instance overlaps the range, so
/// that a query on the range alone needs no parse of the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub name: String,
    pub exact: bool,
}

#[async_trait]
pub trait DavStore: Send + Sync + 'static {
    // --- principals -------------------------------------------------------

    /// A principal by its login (primary address), case-insensitive.
    async fn principal_by_login(&self, login: &str) -> DavStoreResult<Option<DavPrincipal>>;
    async fn principal(&self, id: i64) -> DavStoreResult<Option<DavPrincipal>>;
    /// Principals (users) whose display name or one of whose addresses
    /// matches `text` case-insensitively, at most `limit` (empty text:
    /// any): principal-property-search, which clients use to look up
    /// attendees. A match is at least a prefix of the name or address;
    /// the directory may also match inside them.
    async fn search_principals(
        &self,
        text: &str,
        limit: usize,
    ) -> DavStoreResult<Vec<DavPrincipal>>;
    /// Bytes used by the principal's groupware objects and its limit.
    async fn quota(&self, principal: i64) -> DavStoreResult<Quota>;

    // --- collections ------------------------------------------------------

    /// Creates the default calendar, task list and address book the
    /// principal lacks (the store's `ensure_default_groupware`; names as
    /// SOGo gives them). Called when a user's own home is found empty.
    async fn ensure_defaults(&self, owner: i64) -> DavStoreResult<()>;

    /// The principal's own collections of a kind, by sort order then name.
    async fn list_collections(
        &self,
        owner: i64,
        kind: CollectionKind,
    ) -> DavStoreResult<Vec<DavCollection>>;
    async fn collection(
        &self,
        owner: i64,
        kind: CollectionKind,
        name: &str,
    ) -> DavStoreResult<Option<DavCollection>>;
    async fn collection_by_id(&self, id: i64) -> DavStoreResult<Option<DavCollection>>;
    /// Creates a collection (principal journal 'create'); `Exists` when the
    /// name is taken.
    async fn create_collection(
        &self,
        owner: i64,
        kind: CollectionKind,
        new: NewCollection,
    ) -> DavStoreResult<DavCollection>;
    async fn update_collection(
        &self,
        id: i64,
        patch: CollectionPatch,
    ) -> DavStoreResult<DavCollection>;
    /// Deletes a collection and its objects (principal journal 'delete').
    async fn delete_collection(&self, id: i64) -> DavStoreResult<()>;

    // --- objects ----------------------------------------------------------

    async fn list_objects(&self, collection: i64) -> DavStoreResult<Vec<ObjectMeta>>;
    async fn object(&self, collection: i64, name: &str) -> DavStoreResult<Option<DavObject>>;
    /// Multiget: the objects found, in any order; missing names are absent.
    async fn objects(&self, collection: i64, names: &[String]) -> DavStoreResult<Vec<DavObject>>;
    /// Create or replace `name` with `data`, which the DAV layer has
    /// ingested (`outpost_pim`, with the collection's timezone): `object`
    /// is what the store indexes, so the source is parsed once per PUT.
    ///
    /// `reply` is false when the client sent `Schedule-Reply: F` (RFC 6638
    /// §8.1): an attendee's change sends no reply to the organizer.
    async fn put_object(
        &self,
        collection: i64,
        name: &str,
        data: Vec<u8>,
        object: NewObject,
        condition: PutCondition,
        reply: bool,
    ) -> DavStoreResult<PutOutcome>;
    /// Delete with an optional If-Match ETag: a tombstone with name and UID.
    /// `reply` as for [`DavStore::put_object`].
    async fn delete_object(
        &self,
        collection: i64,
        name: &str,
        if_match: Option<&str>,
        reply: bool,
    ) -> DavStoreResult<DeleteOutcome>;
    /// Copies or moves (`remove_source`) one object to another collection of
    /// the same owner (or the same collection under another name).
    /// `overwrite == false` is `Overwrite: F`: an existing target answers
    /// `PreconditionFailed`. `NotFound` when the source is gone.
    async fn transfer_object(
        &self,
        from: i64,
        name: &str,
        to: i64,
        new_name: &str,
        overwrite: bool,
        remove_source: bool,
    ) -> DavStoreResult<PutOutcome>;

    // --- queries ----------------------------------------------------------

    /// Objects of `kind` with an instance overlapping `[start, end)` (either
    /// open), from the instances index. A superset is allowed (the DAV
    /// layer checks each candidate that is not [`Candidate::exact`]), a
    /// subset is not.
    async fn time_range_candidates(
        &self,
        collection: i64,
        kind: ComponentKind,
        start: Option<i64>,
        end: Option<i64>,
    ) -> DavStoreResult<Vec<Candidate>>;
    /// Busy periods of a principal's calendars over `[start, end)`:
    /// opaque, not cancelled instances.
    async fn free_busy(
        &self,
        principal: i64,
        start: i64,
        end: i64,
    ) -> DavStoreResult<Vec<BusyPeriod>>;
    /// Names of contacts whose names or emails contain `text`
    /// (case-insensitive). A superset is allowed.
    async fn search_contacts(&self, collection: i64, text: &str) -> DavStoreResult<Vec<String>>;
    /// The journal after `token` (a modseq).
    async fn changes_since(&self, collection: i64, token: i64) -> DavStoreResult<SyncAnswer>;

    // --- scheduling (RFC 6638) --------------------------------------------

    /// Free/busy of each address (as the request wrote it, `mailto:` or
    /// not) over `[start, end)`, in order: the outbox POST of a VFREEBUSY
    /// request. The binary answers through the scheduling engine.
    async fn schedule_free_busy(
        &self,
        addresses: &[String],
        start: i64,
        end: i64,
    ) -> DavStoreResult<Vec<(String, ScheduleFreeBusy)>>;

    /// The calendar invitations are filed into
    /// (`schedule-default-calendar-URL`): by default the first calendar
    /// that holds events.
    async fn default_calendar(&self, owner: i64) -> DavStoreResult<Option<DavCollection>> {
        Ok(self
            .list_collections(owner, CollectionKind::Calendar)
            .await?
            .into_iter()
            .find(|c| c.components.is_empty() || c.components.contains(&ComponentKind::VEvent)))
    }

    /// Read-only collections the directory gives every user, shown in the
    /// user's own home next to their own under their `name` (a name the
    /// user has a collection of wins): the Global Address List of the
    /// user's domain. [`DavStore::rights`] answers for them (read).
    /// Default: none.
    async fn directory_collections(
        &self,
        principal: i64,
        kind: CollectionKind,
    ) -> DavStoreResult<Vec<DavCollection>> {
        let _ = (principal, kind);
        Ok(Vec::new())
    }

    // --- sharing ----------------------------------------------------------

    /// What `principal` may do with `collection` (`None`: nothing). The
    /// owner gets `Owner`; grants through groups count.
    async fn rights(&self, principal: i64, collection: i64) -> DavStoreResult<Option<Rights>>;
    async fn grants(&self, collection: i64) -> DavStoreResult<Vec<Grant>>;
    /// Collections of others shared with `principal` (directly or through
    /// a group), with the rights it has.
    async fn shared_with(
        &self,
        principal: i64,
        kind: CollectionKind,
    ) -> DavStoreResult<Vec<(DavCollection, Rights)>>;
}
