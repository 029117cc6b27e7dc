//! Calendars, task lists and address books, as CalDAV, CardDAV and later
//! ActiveSync, EWS and JMAP see them.
//!
//! - Collections of kind `calendar` and `addressbook` are rows of the one
//!   `collections` table (same ids, same journals as mailboxes), with their
//!   DAV properties in `groupware_collections`.
//! - An object's iCalendar or vCard source is an immutable blob, stored
//!   once; what queries need is in columns of `groupware_objects` and its
//!   child tables: attendees, contact fields and group members, and the
//!   instances of events over a window (a year back, two ahead), so
//!   time-range queries and free/busy are index lookups.
//! - Each object takes its collection's next item number (`uidnext`, as a
//!   message takes a UID) and every write its next modseq, with a row in
//!   `changes` in the same transaction: 'add', 'change', or 'remove' with a
//!   tombstone naming the resource and its UID. [`Store::journal_since`]
//!   answers sync-collection from it.
//! - Parsing is `outpost_pim`'s: [`Store::put_icalendar`] and
//!   [`Store::put_vcard`] ingest with the collection's timezone; the
//!   lower-level [`Store::put_object`] takes an index the caller computed.
//!
//! Naming rules: a collection's `name` is its URL segment (unique per
//! owner and kind), an object's `name` its resource name in the collection.

use std::collections::BTreeMap;
use std::sync::Arc;

use outpost_pim::{
    ComponentKind, ContactIndex, IngestOptions, Instance, InstanceStatus, Limits, ObjectIndex,
    PimError, Window,
};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::blobs::{acquire_blob, release_blob};
use crate::sync::{journal_collection, journal_removals, CollectionChangeKind, Tombstone};
use crate::{now, BlobRef, Result, Store, StoreError, Touched};

/// Calendar or address book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CollectionKind {
    Calendar,
    AddressBook,
}

impl CollectionKind {
    /// `collections.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            CollectionKind::Calendar => "calendar",
            CollectionKind::AddressBook => "addressbook",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "calendar" => Ok(CollectionKind::Calendar),
            "addressbook" => Ok(CollectionKind::AddressBook),
            other => Err(StoreError::NotFound(format!(
                "groupware collection (kind {other:?})"
            ))),
        }
    }
}

/// A calendar or address book with its DAV properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupwareCollection {
    pub id: i64,
    pub owner: i64,
    pub kind: CollectionKind,
    /// URL segment, unique per owner and kind.
    pub name: String,
    pub display_name: String,
    pub color: Option<String>,
    pub description: Option<String>,
    /// CALDAV:calendar-timezone (VCALENDAR text with one VTIMEZONE).
    pub timezone: Option<String>,
    /// Supported components (calendars); empty for address books.
    pub components: Vec<ComponentKind>,
    pub sort_order: i64,
    /// Users may not write it (the Global Address List).
    pub read_only: bool,
    /// The collection's highest modseq: CalendarServer's ctag, the base of
    /// sync tokens.
    pub ctag: i64,
    pub created_at: i64,
}

/// What a new collection gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCollection {
    pub kind: CollectionKind,
    pub name: String,
    pub display_name: String,
    pub color: Option<String>,
    pub description: Option<String>,
    pub timezone: Option<String>,
    /// Empty for a calendar: VEVENT and VTODO.
    pub components: Vec<ComponentKind>,
    pub sort_order: i64,
}

impl NewCollection {
    pub fn calendar(name: &str, display_name: &str) -> NewCollection {
        NewCollection {
            kind: CollectionKind::Calendar,
            name: name.to_string(),
            display_name: display_name.to_string(),
            color: None,
            description: None,
            timezone: None,
            components: vec![ComponentKind::Event, ComponentKind::Todo],
            sort_order: 0,
        }
    }

    pub fn address_book(name: &str, display_name: &str) -> NewCollection {
        NewCollection {
            kind: CollectionKind::AddressBook,
            name: name.to_string(),
            display_name: display_name.to_string(),
            color: None,
            description: None,
            timezone: None,
            components: Vec::new(),
            sort_order: 0,
        }
    }
}

/// A PROPPATCH: `None` leaves a property alone, `Some(None)` removes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CollectionPatch {
    pub display_name: Option<String>,
    pub color: Option<Option<String>>,
    pub description: Option<Option<String>>,
    pub timezone: Option<Option<String>>,
    pub components: Option<Vec<ComponentKind>>,
    pub sort_order: Option<i64>,
}

/// An object's row, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub id: i64,
    pub collection: i64,
    pub name: String,
    /// Per-collection item number.
    pub item: i64,
    pub uid: String,
    pub component: ComponentKind,
    /// Strong ETag without quotes.
    pub etag: String,
    pub modseq: i64,
    pub size: i64,
    pub summary: Option<String>,
    pub first_start: Option<i64>,
    pub last_end: Option<i64>,
    pub recurring: bool,
    pub organizer: Option<String>,
    pub blob_hash: String,
    /// Scheduling state (RFC 6638): see [`ScheduleState`].
    pub schedule: ScheduleState,
    /// When it was first stored and last written, Unix seconds.
    pub created_at: i64,
    pub updated_at: i64,
}

/// What scheduling keeps about a calendar object besides its source
/// (`groupware_objects.schedule_tag`, `organizer_sequence`,
/// `organizer_stamp`). A client's PUT through [`Store::put_icalendar`]
/// leaves it as it is; [`Store::put_icalendar_scheduled`] sets it with the
/// source in one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScheduleState {
    /// The Schedule-Tag without quotes (RFC 6638 §3.2.10); `None` for an
    /// object that is not a scheduling object resource.
    pub tag: Option<String>,
    /// On an attendee's copy: SEQUENCE of the last message from the
    /// organizer applied to it.
    pub organizer_sequence: Option<i64>,
    /// ... and its DTSTAMP, UTC seconds.
    pub organizer_stamp: Option<i64>,
}

/// An object with its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub meta: ObjectMeta,
    pub data: Vec<u8>,
}

/// HTTP preconditions of a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    None,
    /// `If-Match: "etag"` (without quotes here).
    IfMatch(String),
    /// `If-None-Match: *`: only create.
    IfNoneMatchAny,
}

/// The index of what is put: a calendar object or a contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Indexed {
    Calendar(ObjectIndex),
    Contact(ContactIndex),
}

impl Indexed {
    fn uid(&self) -> &str {
        match self {
            Indexed::Calendar(i) => &i.uid,
            Indexed::Contact(c) => &c.uid,
        }
    }

    fn component(&self) -> ComponentKind {
        match self {
            Indexed::Calendar(i) => i.kind,
            Indexed::Contact(_) => ComponentKind::Card,
        }
    }
}

/// What a PUT did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    Created(ObjectMeta),
    Replaced(ObjectMeta),
    /// If-Match / If-None-Match did not hold (412).
    PreconditionFailed,
    /// Another resource of the collection has this UID (CALDAV/CARDDAV
    /// no-uid-conflict, with that resource's name).
    UidConflict {
        existing: String,
    },
    /// The collection is read-only to users (the GAL), or of the wrong kind
    /// for the object (an event in an address book), or the calendar does
    /// not support the component (supported-calendar-component).
    NotAllowed(String),
    /// The source did not pass ingest.
    Invalid(PimError),
}

/// What a DELETE did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// Removed; the tombstone took this modseq.
    Deleted {
        modseq: i64,
    },
    NotFound,
    PreconditionFailed,
    NotAllowed(String),
}

/// A time-range candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeRangeHit {
    pub meta: ObjectMeta,
    /// True when the precomputed instances decided the match; false when
    /// the range lies (partly) outside the object's instance window or the
    /// object has no time (a task without dates), so the caller must
    /// expand it (outpost_pim) to be sure.
    pub exact: bool,
}

/// Busy time of a principal (RFC 5545 FBTYPE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusyType {
    Busy,
    Tentative,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusyPeriod {
    pub start: i64,
    pub end: i64,
    pub kind: BusyType,
}

/// Rights a grant gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rights {
    /// See free/busy only.
    FreeBusy,
    Read,
    ReadWrite,
}

impl Rights {
    pub fn as_str(self) -> &'static str {
        match self {
            Rights::FreeBusy => "free-busy",
            Rights::Read => "read",
            Rights::ReadWrite => "read-write",
        }
    }

    pub fn parse(s: &str) -> Option<Rights> {
        Some(match s {
            "free-busy" => Rights::FreeBusy,
            "read" => Rights::Read,
            "read-write" => Rights::ReadWrite,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub collection: i64,
    pub grantee: i64,
    pub rights: Rights,
}

/// A collection someone else owns that a principal may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedCollection {
    pub collection: GroupwareCollection,
    /// The strongest right among the direct grant and those through groups.
    pub rights: Rights,
}

/// RFC 5545 CUTYPE of a principal (`principals.calendar_user_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CalendarUserType {
    Individual,
    Group,
    Resource,
    Room,
    Unknown,
}

impl CalendarUserType {
    pub fn as_str(self) -> &'static str {
        match self {
            CalendarUserType::Individual => "individual",
            CalendarUserType::Group => "group",
            CalendarUserType::Resource => "resource",
            CalendarUserType::Room => "room",
            CalendarUserType::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> CalendarUserType {
        match s {
            "individual" => CalendarUserType::Individual,
            "group" => CalendarUserType::Group,
            "resource" => CalendarUserType::Resource,
            "room" => CalendarUserType::Room,
            _ => CalendarUserType::Unknown,
        }
    }
}

/// The collections every user gets on first use, named as SOGo names them
/// so a migrated user finds the same things: SOGo's calendar and address
/// book are both "personal" in the URL, shown as "Personal Calendar" and
/// "Personal Address Book". SOGo keeps tasks in the same calendar; Outpost
/// adds a task list, "tasks" (VTODO only), for clients that want one.
pub const DEFAULT_CALENDAR: (&str, &str) = ("personal", "Personal Calendar");
pub const DEFAULT_TASKS: (&str, &str) = ("tasks", "Tasks");
pub const DEFAULT_ADDRESS_BOOK: (&str, &str) = ("personal", "Personal Address Book");
/// URL segment of a domain's Global Address List.
pub const GAL_NAME: &str = "gal";

/// Largest source stored, unless the caller ingests with other limits.
pub const MAX_OBJECT_BYTES: usize = 1024 * 1024;

const COLL_COLS: &str = "k.id, k.principal_id, k.kind, k.name, k.highest_modseq, k.created_at, \
     g.display_name, g.color, g.description, g.timezone, g.components, g.sort_order, g.read_only";

const OBJ_COLS: &str =
    "o.id, o.collection_id, o.name, o.item, o.uid, o.component, o.etag, o.modseq, \
     o.size, o.summary, o.first_start, o.last_end, o.recurring, o.organizer, o.blob_hash, \
     o.schedule_tag, o.organizer_sequence, o.organizer_stamp, o.created_at, o.updated_at";

fn components_str(c: &[ComponentKind]) -> String {
    c.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(",")
}

fn collection_row(r: &AnyRow) -> Result<GroupwareCollection> {
    let comps: String = r.try_get("components")?;
    Ok(GroupwareCollection {
        id: r.try_get("id")?,
        owner: r.try_get("principal_id")?,
        kind: CollectionKind::parse(&r.try_get::<String, _>("kind")?)?,
        name: r.try_get("name")?,
        display_name: r.try_get("display_name")?,
        color: r.try_get("color")?,
        description: r.try_get("description")?,
        timezone: r.try_get("timezone")?,
        components: comps.split(',').filter_map(ComponentKind::parse).collect(),
        sort_order: r.try_get("sort_order")?,
        read_only: r.try_get::<i64, _>("read_only")? != 0,
        ctag: r.try_get("highest_modseq")?,
        created_at: r.try_get("created_at")?,
    })
}

fn object_row(r: &AnyRow) -> Result<ObjectMeta> {
    let comp: String = r.try_get("component")?;
    Ok(ObjectMeta {
        id: r.try_get("id")?,
        collection: r.try_get("collection_id")?,
        name: r.try_get("name")?,
        item: r.try_get("item")?,
        uid: r.try_get("uid")?,
        component: ComponentKind::parse(&comp)
            .ok_or_else(|| StoreError::Internal(format!("unknown component {comp:?}")))?,
        etag: r.try_get("etag")?,
        modseq: r.try_get("modseq")?,
        size: r.try_get("size")?,
        summary: r.try_get("summary")?,
        first_start: r.try_get("first_start")?,
        last_end: r.try_get("last_end")?,
        recurring: r.try_get::<i64, _>("recurring")? != 0,
        organizer: r.try_get("organizer")?,
        blob_hash: r.try_get("blob_hash")?,
        schedule: ScheduleState {
            tag: r.try_get("schedule_tag")?,
            organizer_sequence: r.try_get("organizer_sequence")?,
            organizer_stamp: r.try_get("organizer_stamp")?,
        },
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Refuses collection and resource names that cannot be a URL segment.
pub fn check_segment(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 255
        || name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c.is_control() || c == '/' || c == '\\')
    {
        return Err(StoreError::Invalid(format!("invalid name {name:?}")));
    }
    Ok(())
}

fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// The ingest options a collection implies: the standard window around
/// now, floating times in the calendar's timezone.
fn options_for(coll: &GroupwareCollection) -> IngestOptions {
    let mut o = IngestOptions::new(now());
    o.limits.max_bytes = MAX_OBJECT_BYTES;
    o.floating_tz = coll
        .timezone
        .as_deref()
        .and_then(outpost_pim::timezone_of_vtimezone);
    // Finite series indexed whole: a time range anywhere is an index
    // lookup for them (see `time_range_candidates`).
    o.whole_finite = true;
    o
}

impl Store {
    // ---- collections ----

    /// Creates a calendar or address book; the owner's journal records it.
    pub async fn create_groupware_collection(
        &self,
        owner: i64,
        new: NewCollection,
    ) -> Result<GroupwareCollection> {
        check_segment(&new.name)?;
        self.write(move |c, t| {
            Box::pin(async move { create_collection_tx(c, t, owner, &new, false).await })
        })
        .await
    }

    /// Changes DAV properties (PROPPATCH). The change takes a modseq, so
    /// clients polling the ctag see it.
    pub async fn update_groupware_collection(
        &self,
        id: i64,
        patch: CollectionPatch,
    ) -> Result<GroupwareCollection> {
        self.write(move |c, t| {
            Box::pin(async move {
                let current = collection_tx(c, id).await?;
                let display_name = patch.display_name.unwrap_or(current.display_name);
                let color = patch.color.unwrap_or(current.color);
                let description = patch.description.unwrap_or(current.description);
                let timezone = patch.timezone.unwrap_or(current.timezone);
                let components = patch.components.unwrap_or(current.components);
                let sort_order = patch.sort_order.unwrap_or(current.sort_order);
                sqlx::query(
                    "UPDATE groupware_collections SET display_name = $1, color = $2, description = $3, \
                     timezone = $4, components = $5, sort_order = $6 WHERE collection_id = $7",
                )
                .bind(&display_name)
                .bind(&color)
                .bind(&description)
                .bind(&timezone)
                .bind(components_str(&components))
                .bind(sort_order)
                .bind(id)
                .execute(&mut *c)
                .await?;
                let modseq = bump_modseq(c, id).await?;
                journal_row(c, id, modseq, 0, "change", None, None, None).await?;
                t.add(id, modseq);
                collection_tx(c, id).await
            })
        })
        .await
    }

    /// Deletes a collection and its objects. Its journal goes with it; the
    /// owner's journal records the deletion (that row outlives it).
    pub async fn delete_groupware_collection(&self, id: i64) -> Result<()> {
        self.write(move |c, t| Box::pin(async move { delete_collection_tx(c, t, id).await }))
            .await
    }

    /// A principal's calendars and address books (`kind` None: both), by
    /// sort order and name.
    pub async fn groupware_collections(
        &self,
        owner: i64,
        kind: Option<CollectionKind>,
    ) -> Result<Vec<GroupwareCollection>> {
        let q = format!(
            "SELECT {COLL_COLS} FROM collections k JOIN groupware_collections g ON g.collection_id = k.id \
             WHERE k.principal_id = $1 AND k.kind IN ($2, $3) ORDER BY g.sort_order, k.name"
        );
        let (a, b) = match kind {
            Some(k) => (k.as_str(), k.as_str()),
            None => ("calendar", "addressbook"),
        };
        sqlx::query(&q)
            .bind(owner)
            .bind(a)
            .bind(b)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(collection_row)
            .collect()
    }

    pub async fn groupware_collection(
        &self,
        owner: i64,
        kind: CollectionKind,
        name: &str,
    ) -> Result<Option<GroupwareCollection>> {
        let q = format!(
            "SELECT {COLL_COLS} FROM collections k JOIN groupware_collections g ON g.collection_id = k.id \
             WHERE k.principal_id = $1 AND k.kind = $2 AND k.name = $3"
        );
        sqlx::query(&q)
            .bind(owner)
            .bind(kind.as_str())
            .bind(name)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(collection_row)
            .transpose()
    }

    pub async fn groupware_collection_by_id(&self, id: i64) -> Result<Option<GroupwareCollection>> {
        let q = format!(
            "SELECT {COLL_COLS} FROM collections k JOIN groupware_collections g ON g.collection_id = k.id \
             WHERE k.id = $1"
        );
        sqlx::query(&q)
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(collection_row)
            .transpose()
    }

    /// Creates the default calendar, task list and address book a user
    /// lacks ([`DEFAULT_CALENDAR`], [`DEFAULT_TASKS`],
    /// [`DEFAULT_ADDRESS_BOOK`]); returns the collections created.
    pub async fn ensure_default_groupware(&self, owner: i64) -> Result<Vec<GroupwareCollection>> {
        self.write(move |c, t| {
            Box::pin(async move {
                let mut made = Vec::new();
                let mut cal = NewCollection::calendar(DEFAULT_CALENDAR.0, DEFAULT_CALENDAR.1);
                cal.components = vec![ComponentKind::Event];
                let mut tasks = NewCollection::calendar(DEFAULT_TASKS.0, DEFAULT_TASKS.1);
                tasks.components = vec![ComponentKind::Todo];
                tasks.sort_order = 1;
                let book = NewCollection::address_book(DEFAULT_ADDRESS_BOOK.0, DEFAULT_ADDRESS_BOOK.1);
                for new in [cal, tasks, book] {
                    let exists: Option<i64> = sqlx::query_scalar(
                        "SELECT id FROM collections WHERE principal_id = $1 AND kind = $2 AND name = $3",
                    )
                    .bind(owner)
                    .bind(new.kind.as_str())
                    .bind(&new.name)
                    .fetch_optional(&mut *c)
                    .await?;
                    if exists.is_none() {
                        made.push(create_collection_tx(c, t, owner, &new, false).await?);
                    }
                }
                Ok(made)
            })
        })
        .await
    }

    // ---- the Global Address List ----

    /// The GAL address book of a domain, created with its owner principal
    /// on first use. Read-only to users; [`Store::put_gal_entry`] and
    /// [`Store::delete_gal_entry`] fill it.
    pub async fn gal_address_book(&self, domain: &str) -> Result<GroupwareCollection> {
        let domain = domain.trim().trim_end_matches('.').to_lowercase();
        self.write(move |c, t| {
            Box::pin(async move {
                let domain_id: i64 = sqlx::query_scalar("SELECT id FROM domains WHERE name = $1")
                    .bind(&domain)
                    .fetch_optional(&mut *c)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("domain {domain}")))?;
                let owner: Option<i64> =
                    sqlx::query_scalar("SELECT id FROM principals WHERE gal_domain_id = $1")
                        .bind(domain_id)
                        .fetch_optional(&mut *c)
                        .await?;
                let owner = match owner {
                    Some(o) => o,
                    None => {
                        sqlx::query_scalar(
                            "INSERT INTO principals (kind, display_name, source, calendar_user_type, gal_domain_id, created_at) \
                             VALUES ('group', $1, 'gal', 'unknown', $2, $3) RETURNING id",
                        )
                        .bind(format!("Global Address List ({domain})"))
                        .bind(domain_id)
                        .bind(now())
                        .fetch_one(&mut *c)
                        .await?
                    }
                };
                let id: Option<i64> = sqlx::query_scalar(
                    "SELECT id FROM collections WHERE principal_id = $1 AND kind = 'addressbook' AND name = $2",
                )
                .bind(owner)
                .bind(GAL_NAME)
                .fetch_optional(&mut *c)
                .await?;
                match id {
                    Some(id) => collection_tx(c, id).await,
                    None => {
                        let mut new = NewCollection::address_book(GAL_NAME, "Global Address List");
                        new.description = Some(format!("Users and groups of {domain}"));
                        create_collection_tx(c, t, owner, &new, true).await
                    }
                }
            })
        })
        .await
    }

    /// Puts a GAL entry (a vCard) as an ordinary address-book object.
    pub async fn put_gal_entry(
        &self,
        gal: i64,
        name: &str,
        vcard: Arc<[u8]>,
    ) -> Result<PutOutcome> {
        let index = match outpost_pim::ingest_vcard(&vcard, &Limits::default()) {
            Ok(i) => i,
            Err(e) => return Ok(PutOutcome::Invalid(e)),
        };
        self.put_inner(
            gal,
            name,
            vcard,
            Indexed::Contact(index),
            Precondition::None,
            true,
            None,
        )
        .await
    }

    pub async fn delete_gal_entry(&self, gal: i64, name: &str) -> Result<DeleteOutcome> {
        self.delete_inner(gal, name, Precondition::None, true).await
    }

    // ---- objects ----

    /// Metadata of every object of a collection, by item number.
    pub async fn groupware_objects(&self, collection: i64) -> Result<Vec<ObjectMeta>> {
        let q = format!(
            "SELECT {OBJ_COLS} FROM groupware_objects o WHERE o.collection_id = $1 ORDER BY o.item"
        );
        sqlx::query(&q)
            .bind(collection)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(object_row)
            .collect()
    }

    /// The live objects of a collection changed after `modseq`, in modseq
    /// order: with [`Store::journal_since`]'s tombstones, what a
    /// sync-collection answer lists (an index lookup, not a scan).
    pub async fn groupware_objects_since(
        &self,
        collection: i64,
        modseq: i64,
    ) -> Result<Vec<ObjectMeta>> {
        let q = format!(
            "SELECT {OBJ_COLS} FROM groupware_objects o WHERE o.collection_id = $1 AND o.modseq > $2 \
             ORDER BY o.modseq, o.item"
        );
        sqlx::query(&q)
            .bind(collection)
            .bind(modseq)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(object_row)
            .collect()
    }

    /// Octets of a principal's calendar and contact sources (the GAL and
    /// other read-only collections are not the user's).
    pub async fn groupware_usage(&self, principal: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(o.size), 0) AS BIGINT) FROM groupware_objects o \
             JOIN collections k ON k.id = o.collection_id \
             JOIN groupware_collections g ON g.collection_id = k.id \
             WHERE k.principal_id = $1 AND g.read_only = 0",
        )
        .bind(principal)
        .fetch_one(self.pool())
        .await?)
    }

    pub async fn groupware_object_meta(
        &self,
        collection: i64,
        name: &str,
    ) -> Result<Option<ObjectMeta>> {
        let q = format!(
            "SELECT {OBJ_COLS} FROM groupware_objects o WHERE o.collection_id = $1 AND o.name = $2"
        );
        sqlx::query(&q)
            .bind(collection)
            .bind(name)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(object_row)
            .transpose()
    }

    /// One object with its source.
    pub async fn groupware_object(
        &self,
        collection: i64,
        name: &str,
    ) -> Result<Option<StoredObject>> {
        let q = format!(
            "SELECT {OBJ_COLS}, b.data AS blob_data FROM groupware_objects o \
             LEFT JOIN blobs b ON b.hash = o.blob_hash \
             WHERE o.collection_id = $1 AND o.name = $2"
        );
        let Some(r) = sqlx::query(&q)
            .bind(collection)
            .bind(name)
            .fetch_optional(self.pool())
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(self.stored_object(&r).await?))
    }

    /// One object with its source, by its item number (ActiveSync names
    /// items by it).
    pub async fn groupware_object_by_item(
        &self,
        collection: i64,
        item: i64,
    ) -> Result<Option<StoredObject>> {
        let q = format!(
            "SELECT {OBJ_COLS}, b.data AS blob_data FROM groupware_objects o \
             LEFT JOIN blobs b ON b.hash = o.blob_hash \
             WHERE o.collection_id = $1 AND o.item = $2"
        );
        let Some(r) = sqlx::query(&q)
            .bind(collection)
            .bind(item)
            .fetch_optional(self.pool())
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(self.stored_object(&r).await?))
    }

    /// Up to `limit` objects with an item number below `below` that end at
    /// or after `since` (an object without an end, a recurring one and a
    /// contact always count), highest item first: the backlog of an
    /// ActiveSync device's first sync.
    pub async fn groupware_objects_below(
        &self,
        collection: i64,
        below: i64,
        since: i64,
        limit: i64,
    ) -> Result<Vec<ObjectMeta>> {
        let q = format!(
            "SELECT {OBJ_COLS} FROM groupware_objects o WHERE o.collection_id = $1 AND o.item < $2 \
             AND (o.last_end IS NULL OR o.recurring <> 0 OR o.last_end >= $3) \
             ORDER BY o.item DESC LIMIT $4"
        );
        sqlx::query(&q)
            .bind(collection)
            .bind(below)
            .bind(since)
            .bind(limit)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(object_row)
            .collect()
    }

    /// How many objects [`Store::groupware_objects_below`] would go
    /// through, without a limit.
    pub async fn count_groupware_objects_below(
        &self,
        collection: i64,
        below: i64,
        since: i64,
    ) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM groupware_objects o WHERE o.collection_id = $1 AND o.item < $2 \
             AND (o.last_end IS NULL OR o.recurring <> 0 OR o.last_end >= $3)",
        )
        .bind(collection)
        .bind(below)
        .bind(since)
        .fetch_one(self.pool())
        .await?)
    }

    /// The item number the next object of a collection gets.
    pub async fn groupware_next_item(&self, collection: i64) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT uidnext FROM collections WHERE id = $1")
                .bind(collection)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    /// Objects by name (calendar-multiget, addressbook-multiget); names not
    /// present are left out.
    pub async fn groupware_objects_by_names(
        &self,
        collection: i64,
        names: &[String],
    ) -> Result<Vec<StoredObject>> {
        let mut out = Vec::with_capacity(names.len());
        for chunk in names.chunks(200) {
            let marks = (0..chunk.len())
                .map(|i| format!("${}", i + 2))
                .collect::<Vec<_>>()
                .join(", ");
            let q = format!(
                "SELECT {OBJ_COLS}, b.data AS blob_data FROM groupware_objects o \
                 LEFT JOIN blobs b ON b.hash = o.blob_hash \
                 WHERE o.collection_id = $1 AND o.name IN ({marks})"
            );
            let mut query = sqlx::query(&q).bind(collection);
            for n in chunk {
                query = query.bind(n);
            }
            for r in query.fetch_all(self.pool()).await? {
                out.push(self.stored_object(&r).await?);
            }
        }
        Ok(out)
    }

    /// An object from a row of `OBJ_COLS` plus `blob_data` (the blobs
    /// row's inline bytes, joined): a source kept in the row comes with
    /// it, one in a pack or file is read from there.
    async fn stored_object(&self, r: &AnyRow) -> Result<StoredObject> {
        let meta = object_row(r)?;
        let data = match r.try_get::<Option<Vec<u8>>, _>("blob_data")? {
            Some(d) => d,
            None => self.read_blob(&meta.blob_hash).await?,
        };
        Ok(StoredObject { meta, data })
    }

    /// Ingests iCalendar with the collection's timezone and the standard
    /// window, and puts it.
    pub async fn put_icalendar(
        &self,
        collection: i64,
        name: &str,
        data: Arc<[u8]>,
        pre: Precondition,
    ) -> Result<PutOutcome> {
        let coll = self
            .groupware_collection_by_id(collection)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("collection {collection}")))?;
        let obj = match outpost_pim::ingest_icalendar(&data, &options_for(&coll)) {
            Ok(o) => o,
            Err(e) => return Ok(PutOutcome::Invalid(e)),
        };
        self.put_object(collection, name, data, Indexed::Calendar(obj.index), pre)
            .await
    }

    /// [`Store::put_icalendar`] that also sets the object's scheduling
    /// state (its Schedule-Tag, and on an attendee's copy the organizer's
    /// last SEQUENCE and DTSTAMP), in the same transaction.
    pub async fn put_icalendar_scheduled(
        &self,
        collection: i64,
        name: &str,
        data: Arc<[u8]>,
        pre: Precondition,
        schedule: ScheduleState,
    ) -> Result<PutOutcome> {
        let coll = self
            .groupware_collection_by_id(collection)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("collection {collection}")))?;
        let obj = match outpost_pim::ingest_icalendar(&data, &options_for(&coll)) {
            Ok(o) => o,
            Err(e) => return Ok(PutOutcome::Invalid(e)),
        };
        self.put_object_scheduled(
            collection,
            name,
            data,
            Indexed::Calendar(obj.index),
            pre,
            schedule,
        )
        .await
    }

    /// [`Store::put_object`] that also sets the object's scheduling state
    /// (see [`Store::put_icalendar_scheduled`]), in the same transaction.
    pub async fn put_object_scheduled(
        &self,
        collection: i64,
        name: &str,
        data: Arc<[u8]>,
        index: Indexed,
        pre: Precondition,
        schedule: ScheduleState,
    ) -> Result<PutOutcome> {
        self.put_inner(collection, name, data, index, pre, false, Some(schedule))
            .await
    }

    /// Ingests a vCard and puts it.
    pub async fn put_vcard(
        &self,
        collection: i64,
        name: &str,
        data: Arc<[u8]>,
        pre: Precondition,
    ) -> Result<PutOutcome> {
        let limits = Limits {
            max_bytes: MAX_OBJECT_BYTES,
            ..Default::default()
        };
        let index = match outpost_pim::ingest_vcard(&data, &limits) {
            Ok(i) => i,
            Err(e) => return Ok(PutOutcome::Invalid(e)),
        };
        self.put_object(collection, name, data, Indexed::Contact(index), pre)
            .await
    }

    /// Creates or replaces an object with an index the caller computed
    /// (outpost_pim), under HTTP preconditions.
    pub async fn put_object(
        &self,
        collection: i64,
        name: &str,
        data: Arc<[u8]>,
        index: Indexed,
        pre: Precondition,
    ) -> Result<PutOutcome> {
        self.put_inner(collection, name, data, index, pre, false, None)
            .await
    }

    /// A put in one transaction; `schedule`, when given, is set on the
    /// object written (a client's write without it leaves the object's
    /// scheduling state as it was).
    #[allow(clippy::too_many_arguments)]
    async fn put_inner(
        &self,
        collection: i64,
        name: &str,
        data: Arc<[u8]>,
        index: Indexed,
        pre: Precondition,
        system: bool,
        schedule: Option<ScheduleState>,
    ) -> Result<PutOutcome> {
        check_segment(name)?;
        let blob = self.put_groupware_blob(data).await?;
        let blobs = self.blobs().clone();
        let name = name.to_string();
        self.write(move |c, t| {
            Box::pin(async move {
                let out =
                    put_tx(c, t, &blobs, collection, &name, &blob, &index, &pre, system).await?;
                let Some(schedule) = schedule else {
                    return Ok(out);
                };
                Ok(match out {
                    PutOutcome::Created(m) => {
                        PutOutcome::Created(set_schedule_tx(c, m.id, &schedule).await?)
                    }
                    PutOutcome::Replaced(m) => {
                        PutOutcome::Replaced(set_schedule_tx(c, m.id, &schedule).await?)
                    }
                    other => other,
                })
            })
        })
        .await
    }

    /// Deletes an object, leaving a tombstone with its name and UID.
    pub async fn delete_object(
        &self,
        collection: i64,
        name: &str,
        pre: Precondition,
    ) -> Result<DeleteOutcome> {
        self.delete_inner(collection, name, pre, false).await
    }

    async fn delete_inner(
        &self,
        collection: i64,
        name: &str,
        pre: Precondition,
        system: bool,
    ) -> Result<DeleteOutcome> {
        let name = name.to_string();
        self.write(move |c, t| {
            Box::pin(async move { delete_tx(c, t, collection, &name, &pre, system).await })
        })
        .await
    }

    /// Copies (or moves) an object to another collection of the same owner
    /// and kind, re-indexed for the target (its timezone). `overwrite`
    /// false refuses an existing target (DAV `Overwrite: F`). One
    /// transaction: a move never leaves two copies or none.
    pub async fn copy_object(
        &self,
        from: i64,
        name: &str,
        to: i64,
        to_name: &str,
        overwrite: bool,
        remove_source: bool,
    ) -> Result<PutOutcome> {
        check_segment(to_name)?;
        let src = self
            .groupware_collection_by_id(from)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("collection {from}")))?;
        let dst = self
            .groupware_collection_by_id(to)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("collection {to}")))?;
        if src.owner != dst.owner || src.kind != dst.kind {
            return Ok(PutOutcome::NotAllowed(
                "objects move only between collections of the same owner and kind".into(),
            ));
        }
        if remove_source && src.read_only {
            return Ok(PutOutcome::NotAllowed(
                "the source collection is read-only".into(),
            ));
        }
        let Some(obj) = self.groupware_object(from, name).await? else {
            return Err(StoreError::NotFound(format!("object {name}")));
        };
        let index = match dst.kind {
            CollectionKind::Calendar => {
                match outpost_pim::ingest_icalendar(&obj.data, &options_for(&dst)) {
                    Ok(o) => Indexed::Calendar(o.index),
                    Err(e) => return Ok(PutOutcome::Invalid(e)),
                }
            }
            CollectionKind::AddressBook => {
                match outpost_pim::ingest_vcard(&obj.data, &Limits::default()) {
                    Ok(i) => Indexed::Contact(i),
                    Err(e) => return Ok(PutOutcome::Invalid(e)),
                }
            }
        };
        let blob = self.put_groupware_blob(Arc::from(obj.data)).await?;
        let blobs = self.blobs().clone();
        let name = name.to_string();
        let to_name = to_name.to_string();
        let source_etag = obj.meta.etag.clone();
        let schedule = obj.meta.schedule.clone();
        let res = self
            .write(move |c, t| {
                Box::pin(async move {
                    let pre = if overwrite {
                        Precondition::None
                    } else {
                        Precondition::IfNoneMatchAny
                    };
                    let source_pre = Precondition::IfMatch(source_etag);
                    if remove_source && from == to {
                        if name == to_name {
                            return Ok(PutOutcome::PreconditionFailed);
                        }
                        // A rename: the source goes first, or its UID
                        // would conflict with itself.
                        if !matches!(
                            delete_tx(c, t, from, &name, &source_pre, false).await?,
                            DeleteOutcome::Deleted { .. }
                        ) {
                            return Err(StoreError::Conflict);
                        }
                        return match put_tx(c, t, &blobs, to, &to_name, &blob, &index, &pre, false)
                            .await?
                        {
                            PutOutcome::Created(m) => Ok(PutOutcome::Created(
                                set_schedule_tx(c, m.id, &schedule).await?,
                            )),
                            PutOutcome::Replaced(m) => Ok(PutOutcome::Replaced(
                                set_schedule_tx(c, m.id, &schedule).await?,
                            )),
                            // Undoes the removal with the rest of this write.
                            _ => Err(StoreError::Conflict),
                        };
                    }
                    let out =
                        put_tx(c, t, &blobs, to, &to_name, &blob, &index, &pre, false).await?;
                    let out = match out {
                        PutOutcome::Created(m) => {
                            PutOutcome::Created(set_schedule_tx(c, m.id, &schedule).await?)
                        }
                        PutOutcome::Replaced(m) => {
                            PutOutcome::Replaced(set_schedule_tx(c, m.id, &schedule).await?)
                        }
                        other => return Ok(other),
                    };
                    if remove_source
                        && !matches!(
                            delete_tx(c, t, from, &name, &source_pre, false).await?,
                            DeleteOutcome::Deleted { .. }
                        )
                    {
                        // The source changed since it was read.
                        return Err(StoreError::Conflict);
                    }
                    Ok(out)
                })
            })
            .await;
        match res {
            Err(StoreError::Conflict) => Ok(PutOutcome::PreconditionFailed),
            other => other,
        }
    }

    // ---- queries ----

    /// Objects of a collection that may overlap `[start, end)`, of one
    /// component kind (None: any): from the instances table where the
    /// object's window covers the range, from the object's first/last
    /// bounds elsewhere (then `exact` is false).
    pub async fn time_range_candidates(
        &self,
        collection: i64,
        start: i64,
        end: i64,
        component: Option<ComponentKind>,
    ) -> Result<Vec<TimeRangeHit>> {
        let comp = component.map(|k| k.as_str()).unwrap_or("");
        // Exact: the window covers the range and an instance overlaps.
        // Driven by the instances in the range (one scan of the range
        // index), then the objects by id: `+o.collection_id` keeps SQLite
        // from walking every object of the collection instead, which a
        // correlated EXISTS did (each object scanning the range again).
        let q_exact = format!(
            "SELECT {OBJ_COLS} FROM groupware_objects o WHERE o.id IN ( \
                 SELECT i.object_id FROM groupware_instances i WHERE i.collection_id = $1 \
                 AND i.start_utc < $4 \
                 AND (i.end_utc > $3 OR (i.end_utc = i.start_utc AND i.start_utc >= $3))) \
             AND +o.collection_id = $1 \
             AND ($2 = '' OR o.component = $2) \
             AND o.instances_from <= $3 AND o.instances_until >= $4 \
             ORDER BY o.item"
        );
        let mut hits: Vec<TimeRangeHit> = sqlx::query(&q_exact)
            .bind(collection)
            .bind(comp)
            .bind(start)
            .bind(end)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| {
                Ok(TimeRangeHit {
                    meta: object_row(r)?,
                    exact: true,
                })
            })
            .collect::<Result<_>>()?;
        // Inexact: outside the window (by bounds), or timeless.
        let q_rough = format!(
            "SELECT {OBJ_COLS} FROM groupware_objects o WHERE o.collection_id = $1 \
             AND ($2 = '' OR o.component = $2) \
             AND (o.first_start IS NULL OR ( \
                 NOT (o.instances_from <= $3 AND o.instances_until >= $4) \
                 AND o.first_start < $4 AND (o.last_end IS NULL OR o.last_end > $3))) \
             ORDER BY o.item"
        );
        for r in sqlx::query(&q_rough)
            .bind(collection)
            .bind(comp)
            .bind(start)
            .bind(end)
            .fetch_all(self.pool())
            .await?
        {
            hits.push(TimeRangeHit {
                meta: object_row(&r)?,
                exact: false,
            });
        }
        hits.sort_by_key(|h| h.meta.item);
        Ok(hits)
    }

    /// Precomputed instances of one object overlapping `[start, end)`.
    pub async fn object_instances(
        &self,
        object_id: i64,
        start: i64,
        end: i64,
    ) -> Result<Vec<Instance>> {
        let rows = sqlx::query(
            "SELECT start_utc, end_utc, recurrence_id, transparent, status, all_day FROM groupware_instances \
             WHERE object_id = $1 AND start_utc < $3 AND (end_utc > $2 OR (end_utc = start_utc AND start_utc >= $2)) \
             ORDER BY start_utc",
        )
        .bind(object_id)
        .bind(start)
        .bind(end)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Instance {
                    start: r.try_get("start_utc")?,
                    end: r.try_get("end_utc")?,
                    recurrence_id: r.try_get("recurrence_id")?,
                    transparent: r.try_get::<i64, _>("transparent")? != 0,
                    status: InstanceStatus::parse(
                        r.try_get::<Option<String>, _>("status")?.as_deref(),
                    ),
                    all_day: r.try_get::<i64, _>("all_day")? != 0,
                    component: 0,
                })
            })
            .collect()
    }

    /// Busy time of a principal over `[start, end)`: instances of its
    /// calendars that are neither transparent nor cancelled, merged, cut to
    /// the range. Objects whose instance window does not cover the range
    /// are expanded from their source.
    pub async fn free_busy(&self, principal: i64, start: i64, end: i64) -> Result<Vec<BusyPeriod>> {
        let mut raw: Vec<BusyPeriod> = Vec::new();
        let rows = sqlx::query(
            "SELECT i.start_utc, i.end_utc, i.status FROM groupware_instances i \
             JOIN groupware_objects o ON o.id = i.object_id \
             JOIN collections k ON k.id = o.collection_id \
             WHERE k.principal_id = $1 AND k.kind = 'calendar' AND o.component = 'VEVENT' \
             AND o.instances_from <= $2 AND o.instances_until >= $3 \
             AND i.start_utc < $3 AND i.end_utc > $2 AND i.transparent = 0 \
             AND (i.status IS NULL OR i.status <> 'CANCELLED')",
        )
        .bind(principal)
        .bind(start)
        .bind(end)
        .fetch_all(self.pool())
        .await?;
        for r in &rows {
            let status: Option<String> = r.try_get("status")?;
            raw.push(BusyPeriod {
                start: r.try_get("start_utc")?,
                end: r.try_get("end_utc")?,
                kind: if status.as_deref() == Some("TENTATIVE") {
                    BusyType::Tentative
                } else {
                    BusyType::Busy
                },
            });
        }
        // Outside the precomputed window: expand those objects now.
        let q = format!(
            "SELECT {OBJ_COLS}, k.id AS coll FROM groupware_objects o JOIN collections k ON k.id = o.collection_id \
             WHERE k.principal_id = $1 AND k.kind = 'calendar' AND o.component = 'VEVENT' \
             AND NOT (o.instances_from <= $2 AND o.instances_until >= $3) \
             AND o.first_start < $3 AND (o.last_end IS NULL OR o.last_end > $2)"
        );
        let others = sqlx::query(&q)
            .bind(principal)
            .bind(start)
            .bind(end)
            .fetch_all(self.pool())
            .await?;
        let mut colls: BTreeMap<i64, GroupwareCollection> = BTreeMap::new();
        for r in &others {
            let meta = object_row(r)?;
            if let std::collections::btree_map::Entry::Vacant(v) = colls.entry(meta.collection) {
                if let Some(c) = self.groupware_collection_by_id(meta.collection).await? {
                    v.insert(c);
                }
            }
            let Some(coll) = colls.get(&meta.collection) else {
                continue;
            };
            let data = self.read_blob(&meta.blob_hash).await?;
            let mut opts = options_for(coll);
            opts.whole_finite = false;
            opts.window = Window { start, end };
            let Ok(obj) = outpost_pim::ingest_icalendar(&data, &opts) else {
                continue;
            };
            for i in obj.index.instances {
                if i.transparent || i.status == InstanceStatus::Cancelled {
                    continue;
                }
                raw.push(BusyPeriod {
                    start: i.start,
                    end: i.end,
                    kind: if i.status == InstanceStatus::Tentative {
                        BusyType::Tentative
                    } else {
                        BusyType::Busy
                    },
                });
            }
        }
        Ok(merge_busy(raw, start, end))
    }

    /// Contacts of the given address books whose name, nickname,
    /// organisation or e-mail contains `text` (case-insensitively).
    pub async fn search_contacts(
        &self,
        collections: &[i64],
        text: &str,
        limit: usize,
    ) -> Result<Vec<ObjectMeta>> {
        if collections.is_empty() {
            return Ok(Vec::new());
        }
        let ids = crate::mail::id_list(collections);
        let pattern = format!("%{}%", like_escape(&text.to_lowercase()));
        let q = format!(
            "SELECT {OBJ_COLS} FROM groupware_objects o WHERE o.collection_id IN ({ids}) AND o.id IN \
             (SELECT f.object_id FROM contact_fields f WHERE f.collection_id IN ({ids}) AND f.folded LIKE $1 ESCAPE '\\') \
             ORDER BY o.summary, o.id LIMIT {}",
            limit.max(1)
        );
        sqlx::query(&q)
            .bind(pattern)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(object_row)
            .collect()
    }

    /// Objects whose attendees include `address` (scheduling).
    pub async fn objects_with_attendee(&self, address: &str) -> Result<Vec<ObjectMeta>> {
        let q = format!(
            "SELECT {OBJ_COLS} FROM groupware_objects o JOIN groupware_attendees a ON a.object_id = o.id \
             WHERE a.address = $1 ORDER BY o.id"
        );
        sqlx::query(&q)
            .bind(address.trim().to_lowercase())
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(object_row)
            .collect()
    }

    /// The calendar objects with this UID in a principal's own calendars
    /// (scheduling finds a user's copy of an invitation by UID), by id.
    pub async fn calendar_objects_by_uid(&self, owner: i64, uid: &str) -> Result<Vec<ObjectMeta>> {
        let q = format!(
            "SELECT {OBJ_COLS} FROM groupware_objects o JOIN collections k ON k.id = o.collection_id \
             WHERE k.principal_id = $1 AND k.kind = 'calendar' AND o.uid = $2 ORDER BY o.id"
        );
        sqlx::query(&q)
            .bind(owner)
            .bind(uid)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(object_row)
            .collect()
    }

    // ---- sharing ----

    /// Gives (or changes) a grantee's rights on a collection. Journals
    /// 'acl' for the owner and for a grantee given the right directly.
    pub async fn grant(&self, collection: i64, grantee: i64, rights: Rights) -> Result<()> {
        self.write(move |c, t| {
            Box::pin(async move {
                let coll = collection_tx(c, collection).await?;
                if coll.owner == grantee {
                    return Err(StoreError::Invalid("the owner needs no grant".into()));
                }
                sqlx::query(
                    "INSERT INTO collection_grants (collection_id, grantee_id, rights, granted_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (collection_id, grantee_id) DO UPDATE SET rights = excluded.rights, granted_at = excluded.granted_at",
                )
                .bind(collection)
                .bind(grantee)
                .bind(rights.as_str())
                .bind(now())
                .execute(&mut *c)
                .await
                .map_err(|e| match StoreError::from(e) {
                    StoreError::Internal(m) if m.contains("FOREIGN") || m.contains("foreign") => {
                        StoreError::NotFound(format!("principal {grantee}"))
                    }
                    e => e,
                })?;
                journal_acl(c, t, &coll, grantee).await
            })
        })
        .await
    }

    /// Removes a grant; `false` when there was none.
    pub async fn revoke(&self, collection: i64, grantee: i64) -> Result<bool> {
        self.write(move |c, t| {
            Box::pin(async move {
                let coll = collection_tx(c, collection).await?;
                let n = sqlx::query(
                    "DELETE FROM collection_grants WHERE collection_id = $1 AND grantee_id = $2",
                )
                .bind(collection)
                .bind(grantee)
                .execute(&mut *c)
                .await?
                .rows_affected();
                if n > 0 {
                    journal_acl(c, t, &coll, grantee).await?;
                }
                Ok(n > 0)
            })
        })
        .await
    }

    pub async fn grants(&self, collection: i64) -> Result<Vec<Grant>> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT grantee_id, rights FROM collection_grants WHERE collection_id = $1 ORDER BY grantee_id",
        )
        .bind(collection)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|(grantee, r)| {
                Ok(Grant {
                    collection,
                    grantee,
                    rights: Rights::parse(&r)
                        .ok_or_else(|| StoreError::Internal(format!("unknown rights {r:?}")))?,
                })
            })
            .collect()
    }

    /// Collections others share with a principal, directly or through the
    /// built-in groups it belongs to (nested groups included), with the
    /// strongest right that applies. With an external directory, use the
    /// directory's `shared_with`, which adds the directory's groups.
    pub async fn shared_with(&self, principal: i64) -> Result<Vec<SharedCollection>> {
        let addrs: Vec<String> = self
            .addresses_of(principal)
            .await?
            .into_iter()
            .map(|(a, _)| a)
            .collect();
        let groups = self.groups_containing(&addrs).await?;
        self.shared_with_grantees(principal, &groups).await
    }

    /// Collections shared with `principal` itself or with any of `groups`
    /// (the groups it belongs to, as the caller resolved them), with the
    /// strongest right that applies; its own collections are left out.
    pub async fn shared_with_grantees(
        &self,
        principal: i64,
        groups: &[i64],
    ) -> Result<Vec<SharedCollection>> {
        let mut grantees = vec![principal];
        grantees.extend(groups.iter().copied().filter(|g| *g != principal));
        let mut rows: Vec<(i64, String)> = Vec::new();
        for chunk in grantees.chunks(500) {
            let q = format!(
                "SELECT collection_id, rights FROM collection_grants WHERE grantee_id IN ({})",
                crate::mail::id_list(chunk)
            );
            rows.extend(
                sqlx::query_as::<_, (i64, String)>(&q)
                    .fetch_all(self.pool())
                    .await?,
            );
        }
        let mut best: BTreeMap<i64, Rights> = BTreeMap::new();
        for (coll, r) in rows {
            let Some(r) = Rights::parse(&r) else { continue };
            let e = best.entry(coll).or_insert(r);
            if r > *e {
                *e = r;
            }
        }
        let mut out = Vec::new();
        for (id, rights) in best {
            if let Some(collection) = self.groupware_collection_by_id(id).await? {
                if collection.owner != principal {
                    out.push(SharedCollection { collection, rights });
                }
            }
        }
        Ok(out)
    }

    // ---- principals for scheduling ----

    pub async fn set_calendar_user_type(&self, principal: i64, t: CalendarUserType) -> Result<()> {
        self.write(move |c, _| {
            Box::pin(async move {
                let n = sqlx::query("UPDATE principals SET calendar_user_type = $1 WHERE id = $2")
                    .bind(t.as_str())
                    .bind(principal)
                    .execute(&mut *c)
                    .await?
                    .rows_affected();
                if n == 0 {
                    return Err(StoreError::NotFound(format!("principal {principal}")));
                }
                Ok(())
            })
        })
        .await
    }

    pub async fn calendar_user_type(&self, principal: i64) -> Result<CalendarUserType> {
        let t: Option<String> =
            sqlx::query_scalar("SELECT calendar_user_type FROM principals WHERE id = $1")
                .bind(principal)
                .fetch_optional(self.pool())
                .await?;
        t.map(|t| CalendarUserType::parse(&t))
            .ok_or_else(|| StoreError::NotFound(format!("principal {principal}")))
    }
}

/// Merges overlapping periods (busy wins over tentative where they
/// overlap only as far as whole periods go: a tentative period that
/// overlaps a busy one is kept where it does not), cut to the range.
fn merge_busy(mut raw: Vec<BusyPeriod>, start: i64, end: i64) -> Vec<BusyPeriod> {
    for p in &mut raw {
        p.start = p.start.max(start);
        p.end = p.end.min(end);
    }
    raw.retain(|p| p.start < p.end);
    let mut out: Vec<BusyPeriod> = Vec::new();
    for kind in [BusyType::Busy, BusyType::Tentative] {
        let mut v: Vec<&BusyPeriod> = raw.iter().filter(|p| p.kind == kind).collect();
        v.sort_by_key(|p| p.start);
        let mut cur: Option<BusyPeriod> = None;
        for p in v {
            match &mut cur {
                Some(c) if p.start <= c.end => c.end = c.end.max(p.end),
                _ => {
                    if let Some(c) = cur.take() {
                        out.push(c);
                    }
                    cur = Some(*p);
                }
            }
        }
        if let Some(c) = cur {
            out.push(c);
        }
    }
    out.sort_by_key(|p| (p.start, p.end));
    out
}

async fn journal_acl(
    c: &mut AnyConnection,
    t: &mut Touched,
    coll: &GroupwareCollection,
    grantee: i64,
) -> Result<()> {
    journal_collection(
        c,
        t,
        coll.owner,
        coll.id,
        coll.kind.as_str(),
        CollectionChangeKind::AclChanged,
        &coll.name,
        None,
    )
    .await?;
    let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM principals WHERE id = $1")
        .bind(grantee)
        .fetch_optional(&mut *c)
        .await?;
    if exists.is_some() {
        journal_collection(
            c,
            t,
            grantee,
            coll.id,
            coll.kind.as_str(),
            CollectionChangeKind::AclChanged,
            &coll.name,
            None,
        )
        .await?;
    }
    Ok(())
}

async fn collection_tx(c: &mut AnyConnection, id: i64) -> Result<GroupwareCollection> {
    let q = format!(
        "SELECT {COLL_COLS} FROM collections k JOIN groupware_collections g ON g.collection_id = k.id WHERE k.id = $1"
    );
    let r = sqlx::query(&q)
        .bind(id)
        .fetch_optional(&mut *c)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("collection {id}")))?;
    collection_row(&r)
}

async fn create_collection_tx(
    c: &mut AnyConnection,
    t: &mut Touched,
    owner: i64,
    new: &NewCollection,
    read_only: bool,
) -> Result<GroupwareCollection> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO collections (principal_id, kind, name, subscribed, uidvalidity, created_at) \
         VALUES ($1, $2, $3, 1, $4, $5) RETURNING id",
    )
    .bind(owner)
    .bind(new.kind.as_str())
    .bind(&new.name)
    .bind(crate::mail::new_uidvalidity())
    .bind(now())
    .fetch_one(&mut *c)
    .await
    .map_err(|e| match StoreError::from(e) {
        StoreError::Exists(_) => StoreError::Exists(format!("{} {}", new.kind.as_str(), new.name)),
        e => e,
    })?;
    let components = match new.kind {
        CollectionKind::Calendar if new.components.is_empty() => {
            components_str(&[ComponentKind::Event, ComponentKind::Todo])
        }
        CollectionKind::Calendar => components_str(&new.components),
        CollectionKind::AddressBook => String::new(),
    };
    sqlx::query(
        "INSERT INTO groupware_collections (collection_id, display_name, color, description, timezone, components, sort_order, read_only) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(&new.display_name)
    .bind(&new.color)
    .bind(&new.description)
    .bind(&new.timezone)
    .bind(components)
    .bind(new.sort_order)
    .bind(read_only as i64)
    .execute(&mut *c)
    .await?;
    journal_row(c, id, 1, 0, "create", None, None, None).await?;
    journal_collection(
        c,
        t,
        owner,
        id,
        new.kind.as_str(),
        CollectionChangeKind::Created,
        &new.name,
        None,
    )
    .await?;
    t.add(id, 1);
    collection_tx(c, id).await
}

async fn delete_collection_tx(c: &mut AnyConnection, t: &mut Touched, id: i64) -> Result<()> {
    let coll = collection_tx(c, id).await?;
    let rows = sqlx::query(
        "SELECT blob_hash, COUNT(*) AS n FROM groupware_objects WHERE collection_id = $1 GROUP BY blob_hash",
    )
    .bind(id)
    .fetch_all(&mut *c)
    .await?;
    for r in &rows {
        release_blob(c, &r.try_get::<String, _>("blob_hash")?, r.try_get("n")?).await?;
    }
    delete_children(c, "collection_id = $1", id).await?;
    sqlx::query("DELETE FROM groupware_objects WHERE collection_id = $1")
        .bind(id)
        .execute(&mut *c)
        .await?;
    sqlx::query("DELETE FROM groupware_collections WHERE collection_id = $1")
        .bind(id)
        .execute(&mut *c)
        .await?;
    sqlx::query("DELETE FROM collection_grants WHERE collection_id = $1")
        .bind(id)
        .execute(&mut *c)
        .await?;
    sqlx::query("DELETE FROM changes WHERE collection_id = $1")
        .bind(id)
        .execute(&mut *c)
        .await?;
    sqlx::query("DELETE FROM collections WHERE id = $1")
        .bind(id)
        .execute(&mut *c)
        .await?;
    journal_collection(
        c,
        t,
        coll.owner,
        id,
        coll.kind.as_str(),
        CollectionChangeKind::Deleted,
        &coll.name,
        None,
    )
    .await?;
    t.add(id, i64::MAX);
    Ok(())
}

/// Deletes the child rows of objects selected by `filter` on
/// groupware_objects (with one bind, `$1`).
async fn delete_children(c: &mut AnyConnection, filter: &str, v: i64) -> Result<()> {
    for table in [
        "groupware_attendees",
        "groupware_instances",
        "contact_fields",
        "contact_members",
    ] {
        let q = format!(
            "DELETE FROM {table} WHERE object_id IN (SELECT id FROM groupware_objects WHERE {filter})"
        );
        sqlx::query(&q).bind(v).execute(&mut *c).await?;
    }
    Ok(())
}

/// Removes the index rows of one object that is replaced: those its kind of
/// collection has (a calendar object has no contact rows and the reverse).
async fn delete_object_children(
    c: &mut AnyConnection,
    kind: CollectionKind,
    object: i64,
) -> Result<()> {
    let tables: &[&str] = match kind {
        CollectionKind::Calendar => &["groupware_attendees", "groupware_instances"],
        CollectionKind::AddressBook => &["contact_fields", "contact_members"],
    };
    for table in tables {
        sqlx::query(&format!("DELETE FROM {table} WHERE object_id = $1"))
            .bind(object)
            .execute(&mut *c)
            .await?;
    }
    Ok(())
}

/// Removes the groupware rows of every collection of a principal and
/// releases their blobs (called when the principal goes).
pub(crate) async fn remove_principal_groupware(
    c: &mut AnyConnection,
    principal: i64,
) -> Result<()> {
    let rows = sqlx::query(
        "SELECT o.blob_hash, COUNT(*) AS n FROM groupware_objects o JOIN collections k ON k.id = o.collection_id \
         WHERE k.principal_id = $1 GROUP BY o.blob_hash",
    )
    .bind(principal)
    .fetch_all(&mut *c)
    .await?;
    for r in &rows {
        release_blob(c, &r.try_get::<String, _>("blob_hash")?, r.try_get("n")?).await?;
    }
    let filter = "collection_id IN (SELECT id FROM collections WHERE principal_id = $1)";
    delete_children(c, filter, principal).await?;
    for q in [
        "DELETE FROM groupware_objects WHERE collection_id IN (SELECT id FROM collections WHERE principal_id = $1)",
        "DELETE FROM groupware_collections WHERE collection_id IN (SELECT id FROM collections WHERE principal_id = $1)",
        "DELETE FROM collection_grants WHERE collection_id IN (SELECT id FROM collections WHERE principal_id = $1)",
        "DELETE FROM collection_grants WHERE grantee_id = $1",
    ] {
        sqlx::query(q).bind(principal).execute(&mut *c).await?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn journal_row(
    c: &mut AnyConnection,
    collection: i64,
    modseq: i64,
    item: i64,
    kind: &str,
    item_id: Option<i64>,
    name: Option<&str>,
    uid: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO changes (collection_id, modseq, item, kind, at, item_id, name, object_uid) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(collection)
    .bind(modseq)
    .bind(item)
    .bind(kind)
    .bind(now())
    .bind(item_id)
    .bind(name)
    .bind(uid)
    .execute(&mut *c)
    .await?;
    Ok(())
}

async fn bump_modseq(c: &mut AnyConnection, collection: i64) -> Result<i64> {
    sqlx::query_scalar(
        "UPDATE collections SET highest_modseq = highest_modseq + 1 WHERE id = $1 RETURNING highest_modseq",
    )
    .bind(collection)
    .fetch_optional(&mut *c)
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("collection {collection}")))
}

fn etag_matches(pre: &Precondition, current: Option<&str>) -> bool {
    match pre {
        Precondition::None => true,
        Precondition::IfNoneMatchAny => current.is_none(),
        Precondition::IfMatch(e) => current == Some(e.trim_matches('"')),
    }
}

#[allow(clippy::too_many_arguments)]
async fn put_tx(
    c: &mut AnyConnection,
    t: &mut Touched,
    blobs: &crate::BlobStore,
    collection: i64,
    name: &str,
    blob: &BlobRef,
    index: &Indexed,
    pre: &Precondition,
    system: bool,
) -> Result<PutOutcome> {
    let coll = collection_tx(c, collection).await?;
    if coll.read_only && !system {
        return Ok(PutOutcome::NotAllowed("the collection is read-only".into()));
    }
    match (coll.kind, index) {
        (CollectionKind::Calendar, Indexed::Calendar(i)) => {
            if !coll.components.is_empty() && !coll.components.contains(&i.kind) {
                return Ok(PutOutcome::NotAllowed(format!(
                    "the calendar does not support {}",
                    i.kind
                )));
            }
        }
        (CollectionKind::AddressBook, Indexed::Contact(_)) => {}
        _ => {
            return Ok(PutOutcome::NotAllowed(format!(
                "a {} cannot go into a {}",
                index.component(),
                coll.kind.as_str()
            )))
        }
    }
    // The object at this name and any other holding the UID, in one
    // query (each statement is a round trip to the database thread).
    let uid = index.uid();
    let rows = sqlx::query(
        "SELECT id, item, etag, blob_hash, name, schedule_tag, organizer_sequence, organizer_stamp, created_at \
         FROM groupware_objects WHERE collection_id = $1 AND (name = $2 OR uid = $3)",
    )
    .bind(collection)
    .bind(name)
    .bind(uid)
    .fetch_all(&mut *c)
    .await?;
    let mut existing: Option<(i64, i64, String, String)> = None;
    let mut other: Option<String> = None;
    // A client's write leaves the scheduling state as it was.
    let mut schedule = ScheduleState::default();
    let mut created_at = None;
    for r in &rows {
        let n: String = r.try_get("name")?;
        if n == name {
            created_at = Some(r.try_get::<i64, _>("created_at")?);
            existing = Some((
                r.try_get("id")?,
                r.try_get("item")?,
                r.try_get("etag")?,
                r.try_get("blob_hash")?,
            ));
            schedule = ScheduleState {
                tag: r.try_get("schedule_tag")?,
                organizer_sequence: r.try_get("organizer_sequence")?,
                organizer_stamp: r.try_get("organizer_stamp")?,
            };
        } else {
            other = Some(n);
        }
    }
    if !etag_matches(pre, existing.as_ref().map(|e| e.2.as_str())) {
        return Ok(PutOutcome::PreconditionFailed);
    }
    if let Some(existing) = other {
        return Ok(PutOutcome::UidConflict { existing });
    }
    acquire_blob(c, blobs, blob, 1).await?;
    let modseq;
    let id;
    let item;
    let at = now();
    let (
        summary,
        first_start,
        last_end,
        recurring,
        organizer,
        sequence,
        win,
        contact_kind,
        version,
    ) = match index {
        Indexed::Calendar(i) => (
            i.summary.clone(),
            i.first_start,
            i.last_end,
            i.recurring,
            i.organizer.clone(),
            i.sequence,
            Some(i.window),
            None,
            None,
        ),
        Indexed::Contact(ci) => (
            Some(ci.display_name()),
            None,
            None,
            false,
            None,
            0,
            None,
            Some(ci.kind.as_str().to_string()),
            Some(ci.version.as_str()),
        ),
    };
    let replaced = existing.is_some();
    if let Some((old_id, old_item, _, old_hash)) = existing {
        modseq = bump_modseq(c, collection).await?;
        release_blob(c, &old_hash, 1).await?;
        delete_object_children(c, coll.kind, old_id).await?;
        sqlx::query(
            "UPDATE groupware_objects SET uid = $1, component = $2, blob_hash = $3, etag = $4, size = $5, modseq = $6, \
             summary = $7, first_start = $8, last_end = $9, recurring = $10, organizer = $11, sequence = $12, \
             instances_from = $13, instances_until = $14, contact_kind = $15, vcard_version = $16, updated_at = $17 WHERE id = $18",
        )
        .bind(uid)
        .bind(index.component().as_str())
        .bind(&blob.hash)
        .bind(&blob.hash)
        .bind(blob.size as i64)
        .bind(modseq)
        .bind(&summary)
        .bind(first_start)
        .bind(last_end)
        .bind(recurring as i64)
        .bind(&organizer)
        .bind(sequence)
        .bind(win.map(|w| w.start))
        .bind(win.map(|w| w.end))
        .bind(&contact_kind)
        .bind(version)
        .bind(at)
        .bind(old_id)
        .execute(&mut *c)
        .await?;
        id = old_id;
        item = old_item;
        journal_row(
            c,
            collection,
            modseq,
            item,
            "change",
            Some(id),
            Some(name),
            Some(uid),
        )
        .await?;
    } else {
        let r = sqlx::query(
            "UPDATE collections SET uidnext = uidnext + 1, highest_modseq = highest_modseq + 1 WHERE id = $1 \
             RETURNING uidnext - 1 AS item, highest_modseq",
        )
        .bind(collection)
        .fetch_one(&mut *c)
        .await?;
        item = r.try_get("item")?;
        modseq = r.try_get("highest_modseq")?;
        id = sqlx::query_scalar(
            "INSERT INTO groupware_objects (collection_id, name, item, uid, component, blob_hash, etag, size, modseq, \
             summary, first_start, last_end, recurring, organizer, sequence, instances_from, instances_until, \
             contact_kind, vcard_version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $20) RETURNING id",
        )
        .bind(collection)
        .bind(name)
        .bind(item)
        .bind(uid)
        .bind(index.component().as_str())
        .bind(&blob.hash)
        .bind(&blob.hash)
        .bind(blob.size as i64)
        .bind(modseq)
        .bind(&summary)
        .bind(first_start)
        .bind(last_end)
        .bind(recurring as i64)
        .bind(&organizer)
        .bind(sequence)
        .bind(win.map(|w| w.start))
        .bind(win.map(|w| w.end))
        .bind(&contact_kind)
        .bind(version)
        .bind(at)
        .fetch_one(&mut *c)
        .await?;
        journal_row(
            c,
            collection,
            modseq,
            item,
            "add",
            Some(id),
            Some(name),
            Some(uid),
        )
        .await?;
    }
    write_children(c, id, collection, index).await?;
    t.add(collection, modseq);
    // The row as written (not read back: one round trip fewer).
    let meta = ObjectMeta {
        id,
        collection,
        name: name.to_string(),
        item,
        uid: uid.to_string(),
        component: index.component(),
        etag: blob.hash.clone(),
        modseq,
        size: blob.size as i64,
        summary,
        first_start,
        last_end,
        recurring,
        organizer,
        blob_hash: blob.hash.clone(),
        schedule,
        created_at: created_at.unwrap_or(at),
        updated_at: at,
    };
    Ok(if replaced {
        PutOutcome::Replaced(meta)
    } else {
        PutOutcome::Created(meta)
    })
}

/// Sets an object's scheduling state; its row as it is then.
async fn set_schedule_tx(c: &mut AnyConnection, id: i64, s: &ScheduleState) -> Result<ObjectMeta> {
    sqlx::query(
        "UPDATE groupware_objects SET schedule_tag = $1, organizer_sequence = $2, organizer_stamp = $3 WHERE id = $4",
    )
    .bind(&s.tag)
    .bind(s.organizer_sequence)
    .bind(s.organizer_stamp)
    .bind(id)
    .execute(&mut *c)
    .await?;
    let q = format!("SELECT {OBJ_COLS} FROM groupware_objects o WHERE o.id = $1");
    object_row(&sqlx::query(&q).bind(id).fetch_one(&mut *c).await?)
}

async fn write_children(
    c: &mut AnyConnection,
    id: i64,
    collection: i64,
    index: &Indexed,
) -> Result<()> {
    match index {
        Indexed::Calendar(i) => {
            for rows in i.attendees.chunks(100) {
                let q = format!(
                    "INSERT INTO groupware_attendees (object_id, address, partstat, role, common_name, rsvp) VALUES {}",
                    crate::bulk::placeholders(rows.len(), 6)
                );
                let mut query = sqlx::query(&q);
                for a in rows {
                    query = query
                        .bind(id)
                        .bind(&a.address)
                        .bind(&a.partstat)
                        .bind(&a.role)
                        .bind(&a.common_name)
                        .bind(a.rsvp as i64);
                }
                query.execute(&mut *c).await?;
            }
            for rows in i.instances.chunks(100) {
                let q = format!(
                    "INSERT INTO groupware_instances (object_id, collection_id, start_utc, end_utc, recurrence_id, transparent, status, all_day) VALUES {}",
                    crate::bulk::placeholders(rows.len(), 8)
                );
                let mut query = sqlx::query(&q);
                for n in rows {
                    query = query
                        .bind(id)
                        .bind(collection)
                        .bind(n.start)
                        .bind(n.end)
                        .bind(n.recurrence_id)
                        .bind(n.transparent as i64)
                        .bind(n.status.as_str())
                        .bind(n.all_day as i64);
                }
                query.execute(&mut *c).await?;
            }
        }
        Indexed::Contact(ci) => {
            let mut fields: Vec<(&str, String)> = Vec::new();
            if let Some(f) = &ci.full_name {
                fields.push(("fn", f.clone()));
            }
            if let Some(n) = &ci.name {
                if !n.family.is_empty() {
                    fields.push(("family", n.family.clone()));
                }
                if !n.given.is_empty() {
                    fields.push(("given", n.given.clone()));
                }
            }
            if let Some(n) = &ci.nickname {
                fields.push(("nickname", n.clone()));
            }
            if let Some(o) = &ci.organization {
                fields.push(("org", o.clone()));
            }
            for e in &ci.emails {
                fields.push(("email", e.clone()));
            }
            for rows in fields.chunks(100) {
                let q = format!(
                    "INSERT INTO contact_fields (object_id, collection_id, field, value, folded) VALUES {}",
                    crate::bulk::placeholders(rows.len(), 5)
                );
                let mut query = sqlx::query(&q);
                for (f, v) in rows {
                    query = query
                        .bind(id)
                        .bind(collection)
                        .bind(*f)
                        .bind(v)
                        .bind(v.to_lowercase());
                }
                query.execute(&mut *c).await?;
            }
            for m in &ci.members {
                sqlx::query("INSERT INTO contact_members (object_id, member) VALUES ($1, $2)")
                    .bind(id)
                    .bind(m)
                    .execute(&mut *c)
                    .await?;
            }
        }
    }
    Ok(())
}

async fn delete_tx(
    c: &mut AnyConnection,
    t: &mut Touched,
    collection: i64,
    name: &str,
    pre: &Precondition,
    system: bool,
) -> Result<DeleteOutcome> {
    let coll = collection_tx(c, collection).await?;
    if coll.read_only && !system {
        return Ok(DeleteOutcome::NotAllowed(
            "the collection is read-only".into(),
        ));
    }
    let existing: Option<(i64, i64, String, String, String)> = sqlx::query_as(
        "SELECT id, item, etag, blob_hash, uid FROM groupware_objects WHERE collection_id = $1 AND name = $2",
    )
    .bind(collection)
    .bind(name)
    .fetch_optional(&mut *c)
    .await?;
    let Some((id, item, etag, hash, uid)) = existing else {
        return Ok(match pre {
            Precondition::IfMatch(_) => DeleteOutcome::PreconditionFailed,
            _ => DeleteOutcome::NotFound,
        });
    };
    if !etag_matches(pre, Some(&etag)) {
        return Ok(DeleteOutcome::PreconditionFailed);
    }
    let modseq = bump_modseq(c, collection).await?;
    release_blob(c, &hash, 1).await?;
    delete_children(c, "id = $1", id).await?;
    sqlx::query("DELETE FROM groupware_objects WHERE id = $1")
        .bind(id)
        .execute(&mut *c)
        .await?;
    journal_removals(
        c,
        collection,
        modseq,
        &[Tombstone {
            item,
            item_id: Some(id),
            name: Some(name.to_string()),
            object_uid: Some(uid),
            modseq,
        }],
    )
    .await?;
    t.add(collection, modseq);
    Ok(DeleteOutcome::Deleted { modseq })
}
