//! The storage ActiveSync needs (`outpost_activesync::EasBackend`) over
//! the store: devices and their policy keys, sync states, mail folders as
//! ActiveSync folders (ServerId = collection id), messages by UID.

use async_trait::async_trait;
use outpost_activesync::{
    BackendError, Device, EasBackend, Folder, FolderOpError, Journal, MailItem, PimObject,
    PimRefused, SendRefused, Slot, Smart, StoredState,
};
use outpost_directory::Directory;
use outpost_store::activesync::{EasDevice, EasSyncState};
use outpost_store::groupware::{self as gw, CollectionKind, GroupwareCollection};
use outpost_store::pim::ComponentKind as PimKind;
use outpost_store::{
    FlagOp, Mailbox, MessageInfo, Since, StoreError, ANSWERED, DELETED, DRAFT, FLAGGED, SEEN,
};

pub struct EasStore {
    dir: Directory,
    flow: std::sync::Arc<outpost_mailflow::MailFlow>,
    /// Calendar and contact writes go through the DAV backend: the same
    /// quota, index, scheduling and journal as a CalDAV/CardDAV PUT.
    dav: std::sync::Arc<crate::dav_store::DavBackend>,
    /// Free/busy for ResolveRecipients (the one scheduling engine).
    scheduler: outpost_scheduling::Scheduler,
    /// Principals whose default calendar, task list and address book
    /// were made sure of in this process.
    ensured: std::sync::Mutex<std::collections::HashSet<i64>>,
}

impl EasStore {
    pub fn new(
        flow: std::sync::Arc<outpost_mailflow::MailFlow>,
        dav: std::sync::Arc<crate::dav_store::DavBackend>,
        scheduler: outpost_scheduling::Scheduler,
    ) -> EasStore {
        EasStore {
            dir: flow.directory().clone(),
            flow,
            dav,
            scheduler,
            ensured: Default::default(),
        }
    }
}

/// The FolderSync Type of a calendar or address book: the defaults are
/// 8 / 7 / 9, the others 13 / 15 / 14; a calendar for tasks only is a
/// task list. `None` for one ActiveSync does not show (the GAL, other
/// read-only collections).
fn groupware_type(c: &GroupwareCollection) -> Option<u8> {
    if c.read_only {
        return None;
    }
    Some(match c.kind {
        CollectionKind::AddressBook if c.name == gw::DEFAULT_ADDRESS_BOOK.0 => 9,
        CollectionKind::AddressBook => 14,
        CollectionKind::Calendar if c.components.contains(&PimKind::Event) => {
            if c.name == gw::DEFAULT_CALENDAR.0 {
                8
            } else {
                13
            }
        }
        CollectionKind::Calendar if c.components.contains(&PimKind::Todo) => {
            if c.name == gw::DEFAULT_TASKS.0 {
                7
            } else {
                15
            }
        }
        CollectionKind::Calendar => return None,
    })
}

/// A calendar object or contact as Sync's item: the item number as UID,
/// and the end of its last instance as the date FilterType compares
/// (always in for a contact, an open recurrence or an undated task).
fn pim_item(m: &gw::ObjectMeta) -> MailItem {
    MailItem {
        uid: m.item,
        modseq: m.modseq,
        internal_date: match m.last_end {
            Some(e) if !m.recurring => e,
            _ => i64::MAX,
        },
        ..MailItem::default()
    }
}

fn unavailable(e: outpost_store::StoreError) -> BackendError {
    BackendError::Unavailable(e.to_string())
}

/// The FolderSync Type of a mailbox (MS-ASCMD 2.2.3.186.3).
fn folder_type(mb: &Mailbox) -> u8 {
    if mb.name == "INBOX" {
        return 2;
    }
    match mb.special_use.as_deref() {
        Some("\\Drafts") => 3,
        Some("\\Trash") => 4,
        Some("\\Sent") => 5,
        _ => 12,
    }
}

fn is_special(mb: &Mailbox) -> bool {
    folder_type(mb) != 12
}

/// Mailboxes as folders: the parent is the nearest existing ancestor by
/// name (`a/b/c` under `a/b`, or under `a` when there is no `a/b`), the
/// display name what is left of the name below it.
fn as_folders(mailboxes: &[Mailbox]) -> Vec<Folder> {
    let by_name: std::collections::HashMap<&str, i64> =
        mailboxes.iter().map(|m| (m.name.as_str(), m.id)).collect();
    mailboxes
        .iter()
        .map(|m| {
            let mut parent = 0;
            let mut display = m.name.as_str();
            let mut prefix = m.name.as_str();
            while let Some((p, _)) = prefix.rsplit_once('/') {
                if let Some(&id) = by_name.get(p) {
                    parent = id;
                    display = &m.name[p.len() + 1..];
                    break;
                }
                prefix = p;
            }
            Folder {
                id: m.id,
                parent,
                name: display.to_string(),
                folder_type: folder_type(m),
            }
        })
        .collect()
}

fn item(m: &MessageInfo) -> MailItem {
    MailItem {
        uid: m.uid,
        modseq: m.modseq,
        internal_date: m.internal_date,
        read: m.flags & SEEN != 0,
        flagged: m.flags & FLAGGED != 0,
        answered: m.flags & ANSWERED != 0,
        forwarded: m
            .keywords
            .iter()
            .any(|k| k.eq_ignore_ascii_case("$Forwarded")),
        keywords: m.keywords.clone(),
    }
}

fn stored(s: EasSyncState) -> StoredState {
    StoredState {
        sync_key: s.sync_key,
        state: s.state,
        prev_key: s.prev_key,
        prev_answer: s.prev_answer,
    }
}

impl EasStore {
    /// The principal's own calendar or address book `id` that ActiveSync
    /// shows.
    async fn own_groupware(
        &self,
        principal: i64,
        id: i64,
    ) -> Result<Option<GroupwareCollection>, BackendError> {
        Ok(self
            .dir
            .store()
            .groupware_collection_by_id(id)
            .await
            .map_err(unavailable)?
            .filter(|c| c.owner == principal && groupware_type(c).is_some()))
    }

    /// Object `item` of the principal's own calendar or address book `id`,
    /// with the collection.
    async fn own_object(
        &self,
        principal: i64,
        id: i64,
        item: i64,
    ) -> Result<Option<(GroupwareCollection, gw::StoredObject)>, BackendError> {
        let Some(c) = self.own_groupware(principal, id).await? else {
            return Ok(None);
        };
        Ok(self
            .dir
            .store()
            .groupware_object_by_item(id, item)
            .await
            .map_err(unavailable)?
            .map(|o| (c, o)))
    }

    /// Copies (or with `remove`, moves) messages between two of the
    /// principal's mailboxes: (old UID, new UID) of those done. ActiveSync
    /// MoveItems and EWS MoveItem/CopyItem/CopyFolder.
    async fn transfer(
        &self,
        principal: i64,
        from: i64,
        uids: &[i64],
        to: i64,
        remove: bool,
    ) -> Result<Vec<(i64, i64)>, BackendError> {
        if self.own(principal, from).await?.is_none() || self.own(principal, to).await?.is_none() {
            return Ok(Vec::new());
        }
        match self.dir.store().copy_messages(from, uids, to, remove).await {
            Ok((_, done)) => Ok(done),
            Err(StoreError::NotFound(_)) => Ok(Vec::new()),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// The principal's own mailbox `id`.
    async fn own(&self, principal: i64, id: i64) -> Result<Option<Mailbox>, BackendError> {
        Ok(self
            .dir
            .store()
            .mailbox_by_id(id)
            .await
            .map_err(unavailable)?
            .filter(|m| m.principal_id == principal))
    }

    /// The full mailbox name for `display` under folder `parent` (0: top).
    async fn full_name(
        &self,
        principal: i64,
        parent: i64,
        display: &str,
    ) -> Result<Result<String, FolderOpError>, BackendError> {
        let display = display.trim();
        if display.is_empty() || display.contains('/') || display.chars().any(char::is_control) {
            return Ok(Err(FolderOpError::Invalid));
        }
        if parent == 0 {
            return Ok(Ok(display.to_string()));
        }
        match self.own(principal, parent).await? {
            Some(p) => Ok(Ok(format!("{}/{display}", p.name))),
            None => Ok(Err(FolderOpError::ParentMissing)),
        }
    }
}

impl EasStore {
    /// FolderCreate of a user calendar (13), address book (14) or task
    /// list (15): a new collection in the DAV store with `display` as its
    /// display name and a URL segment made from it. Another of the same
    /// type with that name is `Exists` (clients find folders by name).
    async fn create_groupware(
        &self,
        principal: i64,
        parent: i64,
        display: &str,
        folder_type: u8,
    ) -> Result<Result<i64, FolderOpError>, BackendError> {
        use outpost_dav::store::{
            CollectionKind as DavKind, ComponentKind as DavComp, DavStore, DavStoreError,
            NewCollection,
        };
        let display = display.trim();
        if parent != 0
            || display.is_empty()
            || display.len() > 255
            || display.chars().any(char::is_control)
        {
            return Ok(Err(FolderOpError::Invalid));
        }
        let store = self.dir.store();
        let existing = store
            .groupware_collections(principal, None)
            .await
            .map_err(unavailable)?;
        if existing.iter().any(|c| {
            // The same class: calendars (8, 13), address books (9, 14),
            // task lists (7, 15).
            groupware_type(c).is_some_and(|t| {
                matches!((t, folder_type), (8 | 13, 13) | (9 | 14, 14) | (7 | 15, 15))
            }) && c.display_name.eq_ignore_ascii_case(display)
        }) {
            return Ok(Err(FolderOpError::Exists));
        }
        let (kind, store_kind, components) = match folder_type {
            13 => (
                DavKind::Calendar,
                CollectionKind::Calendar,
                vec![DavComp::VEvent],
            ),
            15 => (
                DavKind::Calendar,
                CollectionKind::Calendar,
                vec![DavComp::VTodo],
            ),
            _ => (
                DavKind::AddressBook,
                CollectionKind::AddressBook,
                Vec::new(),
            ),
        };
        let taken: std::collections::HashSet<&str> = existing
            .iter()
            .filter(|c| c.kind == store_kind)
            .map(|c| c.name.as_str())
            .collect();
        let name = segment_for(display, &taken);
        match self
            .dav
            .create_collection(
                principal,
                kind,
                NewCollection {
                    name,
                    display_name: Some(display.to_string()),
                    color: None,
                    description: None,
                    timezone: None,
                    components,
                    order: None,
                },
            )
            .await
        {
            Ok(c) => Ok(Ok(c.id)),
            Err(DavStoreError::Unavailable(e)) => Err(BackendError::Unavailable(e)),
            Err(DavStoreError::Exists(_)) => Ok(Err(FolderOpError::Exists)),
            Err(e) => {
                tracing::info!(principal, "folder create refused: {e}");
                Ok(Err(FolderOpError::Invalid))
            }
        }
    }

    /// FolderDelete of a calendar, address book or task list: the
    /// collection and its objects go, as a DAV DELETE of it; the default
    /// ones stay (`Special`).
    async fn delete_groupware(
        &self,
        principal: i64,
        id: i64,
    ) -> Result<Result<(), FolderOpError>, BackendError> {
        use outpost_dav::store::{DavStore, DavStoreError};
        let Some(c) = self.own_groupware(principal, id).await? else {
            return Ok(Err(FolderOpError::NotFound));
        };
        if matches!(groupware_type(&c), Some(7..=9)) {
            return Ok(Err(FolderOpError::Special));
        }
        match self.dav.delete_collection(id).await {
            Ok(()) | Err(DavStoreError::NotFound(_)) => Ok(Ok(())),
            Err(DavStoreError::Unavailable(e)) => Err(BackendError::Unavailable(e)),
            Err(e) => {
                tracing::info!(principal, "folder delete refused: {e}");
                Ok(Err(FolderOpError::Special))
            }
        }
    }
}

/// A URL segment for a new collection named `display`: its letters and
/// digits in lower case with dashes between words, unique among `taken`.
fn segment_for(display: &str, taken: &std::collections::HashSet<&str>) -> String {
    let mut base = String::new();
    for ch in display.chars() {
        if ch.is_ascii_alphanumeric() {
            base.push(ch.to_ascii_lowercase());
        } else if !base.ends_with('-') && !base.is_empty() {
            base.push('-');
        }
    }
    let base = base
        .trim_end_matches('-')
        .chars()
        .take(60)
        .collect::<String>();
    let base = if base.is_empty() {
        "folder".to_string()
    } else {
        base
    };
    if !taken.contains(base.as_str()) {
        return base;
    }
    (2..)
        .map(|n| format!("{base}-{n}"))
        .find(|s| !taken.contains(s.as_str()))
        .unwrap_or(base)
}

#[async_trait]
impl EasBackend for EasStore {
    async fn device(
        &self,
        principal: i64,
        device_id: &str,
    ) -> Result<Option<Device>, BackendError> {
        let d = self
            .dir
            .store()
            .eas_device(principal, device_id)
            .await
            .map_err(unavailable)?;
        Ok(d.map(|d| Device {
            device_type: d.device_type,
            user_agent: d.user_agent,
            policy_key: d.policy_key,
            pending_key: d.pending_key,
            wipe_requested: d.wipe_requested.is_some(),
            wipe_acknowledged: d.wipe_acknowledged.is_some(),
        }))
    }

    async fn put_device(
        &self,
        principal: i64,
        device_id: &str,
        device: &Device,
    ) -> Result<(), BackendError> {
        let store = self.dir.store();
        let old = store
            .eas_device(principal, device_id)
            .await
            .map_err(unavailable)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        // Keep the times the wipe was asked for and acknowledged.
        let wipe_requested = device
            .wipe_requested
            .then(|| old.as_ref().and_then(|o| o.wipe_requested).unwrap_or(now));
        let wipe_acknowledged = device.wipe_acknowledged.then(|| {
            old.as_ref()
                .and_then(|o| o.wipe_acknowledged)
                .unwrap_or(now)
        });
        store
            .eas_put_device(
                principal,
                &EasDevice {
                    device_id: device_id.to_string(),
                    device_type: device.device_type.clone(),
                    user_agent: device.user_agent.clone(),
                    policy_key: device.policy_key,
                    pending_key: device.pending_key,
                    wipe_requested,
                    wipe_acknowledged,
                    last_seen: now,
                },
            )
            .await
            .map_err(unavailable)
    }

    async fn folders(&self, principal: i64) -> Result<Vec<Folder>, BackendError> {
        let store = self.dir.store();
        let mailboxes = store.mailboxes(principal).await.map_err(unavailable)?;
        let first = self
            .ensured
            .lock()
            .map(|mut s| s.insert(principal))
            .unwrap_or(true);
        if first {
            // A phone set up before the user ever used CalDAV still gets
            // a calendar, a task list and an address book.
            store
                .ensure_default_groupware(principal)
                .await
                .map_err(unavailable)?;
        }
        let mut folders = as_folders(&mailboxes);
        for c in store
            .groupware_collections(principal, None)
            .await
            .map_err(unavailable)?
        {
            if let Some(t) = groupware_type(&c) {
                folders.push(Folder {
                    id: c.id,
                    parent: 0,
                    name: c.display_name.clone(),
                    folder_type: t,
                });
            }
        }
        Ok(folders)
    }

    async fn hierarchy_seq(&self, principal: i64) -> Result<i64, BackendError> {
        Ok(self
            .dir
            .store()
            .principal_journal_state(principal)
            .await
            .map_err(unavailable)?
            .highest)
    }

    async fn create_folder(
        &self,
        principal: i64,
        parent: i64,
        name: &str,
        folder_type: u8,
    ) -> Result<Result<i64, FolderOpError>, BackendError> {
        // A user calendar, address book or task list (13, 14, 15) is a
        // collection of the DAV store, at the top (collections do not
        // nest); anything else but mail (12, and 1, "generic", which
        // clients use for mail too) is refused.
        match folder_type {
            12 | 1 => {}
            13..=15 => {
                return self
                    .create_groupware(principal, parent, name, folder_type)
                    .await
            }
            _ => return Ok(Err(FolderOpError::Invalid)),
        }
        let full = match self.full_name(principal, parent, name).await? {
            Ok(n) => n,
            Err(e) => return Ok(Err(e)),
        };
        match self
            .dir
            .store()
            .create_mailbox(principal, &full, None)
            .await
        {
            Ok(mb) => Ok(Ok(mb.id)),
            Err(StoreError::Exists(_)) => Ok(Err(FolderOpError::Exists)),
            Err(StoreError::Invalid(_)) => Ok(Err(FolderOpError::Invalid)),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn update_folder(
        &self,
        principal: i64,
        id: i64,
        parent: i64,
        name: &str,
    ) -> Result<Result<(), FolderOpError>, BackendError> {
        let Some(mb) = self.own(principal, id).await? else {
            return Ok(Err(FolderOpError::NotFound));
        };
        if is_special(&mb) {
            return Ok(Err(FolderOpError::Special));
        }
        if parent == id {
            return Ok(Err(FolderOpError::ParentMissing));
        }
        let full = match self.full_name(principal, parent, name).await? {
            Ok(n) => n,
            Err(e) => return Ok(Err(e)),
        };
        if full == mb.name {
            return Ok(Ok(()));
        }
        if full.starts_with(&format!("{}/", mb.name)) {
            // Into its own subtree.
            return Ok(Err(FolderOpError::ParentMissing));
        }
        match self
            .dir
            .store()
            .rename_mailbox(principal, &mb.name, &full)
            .await
        {
            Ok(()) => Ok(Ok(())),
            Err(StoreError::Exists(_)) => Ok(Err(FolderOpError::Exists)),
            Err(StoreError::NotFound(_)) => Ok(Err(FolderOpError::NotFound)),
            Err(StoreError::Invalid(_)) => Ok(Err(FolderOpError::Invalid)),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn delete_folder(
        &self,
        principal: i64,
        id: i64,
    ) -> Result<Result<(), FolderOpError>, BackendError> {
        let Some(mb) = self.own(principal, id).await? else {
            return self.delete_groupware(principal, id).await;
        };
        if is_special(&mb) {
            return Ok(Err(FolderOpError::Special));
        }
        // The folders below go too: a device shows a tree, and deleting a
        // folder there deletes what is in it.
        let store = self.dir.store();
        let mut doomed: Vec<Mailbox> = store
            .mailboxes(principal)
            .await
            .map_err(unavailable)?
            .into_iter()
            .filter(|m| m.id == mb.id || m.name.starts_with(&format!("{}/", mb.name)))
            .collect();
        doomed.sort_by_key(|m| std::cmp::Reverse(m.name.len()));
        for m in doomed {
            match store.delete_mailbox(m.id).await {
                Ok(()) | Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(unavailable(e)),
            }
        }
        Ok(Ok(()))
    }

    async fn sync_state(
        &self,
        principal: i64,
        device_id: &str,
        collection: i64,
    ) -> Result<Option<StoredState>, BackendError> {
        Ok(self
            .dir
            .store()
            .eas_sync_state(principal, device_id, collection)
            .await
            .map_err(unavailable)?
            .map(stored))
    }

    async fn put_sync_state(
        &self,
        principal: i64,
        device_id: &str,
        collection: i64,
        expected: Option<i64>,
        state: &StoredState,
    ) -> Result<bool, BackendError> {
        self.dir
            .store()
            .eas_put_sync_state(
                principal,
                device_id,
                collection,
                expected,
                &EasSyncState {
                    sync_key: state.sync_key,
                    state: state.state.clone(),
                    prev_key: state.prev_key,
                    prev_answer: state.prev_answer.clone(),
                },
            )
            .await
            .map_err(unavailable)
    }

    async fn journal(
        &self,
        principal: i64,
        collection: i64,
        since: i64,
    ) -> Result<Journal, BackendError> {
        if self.own(principal, collection).await?.is_none()
            && self.own_groupware(principal, collection).await?.is_none()
        {
            return Ok(Journal::Missing);
        }
        match self.dir.store().journal_since(collection, since).await {
            Ok(Since::Changes(c)) => Ok(Journal::Changes {
                highest: c.highest_modseq,
                live: c
                    .added
                    .iter()
                    .chain(c.changed.iter())
                    .map(|i| (i.item, i.modseq))
                    .collect(),
                removed: c.removed.iter().map(|t| (t.item, t.modseq)).collect(),
            }),
            Ok(Since::TooOld(_)) => Ok(Journal::TooOld),
            Err(StoreError::NotFound(_)) => Ok(Journal::Missing),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn mail_point(
        &self,
        principal: i64,
        collection: i64,
    ) -> Result<Option<(i64, i64)>, BackendError> {
        if let Some(m) = self.own(principal, collection).await? {
            return Ok(Some((m.highest_modseq, m.uidnext)));
        }
        let Some(c) = self.own_groupware(principal, collection).await? else {
            return Ok(None);
        };
        let next = self
            .dir
            .store()
            .groupware_next_item(c.id)
            .await
            .map_err(unavailable)?;
        Ok(next.map(|n| (c.ctag, n)))
    }

    async fn mail_below(
        &self,
        principal: i64,
        collection: i64,
        below: i64,
        since: i64,
        limit: usize,
    ) -> Result<Vec<MailItem>, BackendError> {
        if self.own(principal, collection).await?.is_none() {
            if self.own_groupware(principal, collection).await?.is_none() {
                return Ok(Vec::new());
            }
            let list = self
                .dir
                .store()
                .groupware_objects_below(collection, below, since, limit as i64)
                .await
                .map_err(unavailable)?;
            return Ok(list.iter().map(pim_item).collect());
        }
        let list = self
            .dir
            .store()
            .messages_below(collection, below, since, limit as i64)
            .await
            .map_err(unavailable)?;
        Ok(list.iter().map(item).collect())
    }

    async fn mail_count_below(
        &self,
        principal: i64,
        collection: i64,
        below: i64,
        since: i64,
    ) -> Result<i64, BackendError> {
        if self.own(principal, collection).await?.is_none() {
            if self.own_groupware(principal, collection).await?.is_none() {
                return Ok(0);
            }
            return self
                .dir
                .store()
                .count_groupware_objects_below(collection, below, since)
                .await
                .map_err(unavailable);
        }
        self.dir
            .store()
            .count_below(collection, below, since)
            .await
            .map_err(unavailable)
    }

    async fn mail_item(
        &self,
        principal: i64,
        collection: i64,
        uid: i64,
    ) -> Result<Option<MailItem>, BackendError> {
        if self.own(principal, collection).await?.is_none() {
            return Ok(self
                .own_object(principal, collection, uid)
                .await?
                .map(|(_, o)| pim_item(&o.meta)));
        }
        Ok(self
            .dir
            .store()
            .message_by_uid(collection, uid)
            .await
            .map_err(unavailable)?
            .as_ref()
            .map(item))
    }

    async fn mail_raw(
        &self,
        principal: i64,
        collection: i64,
        uid: i64,
    ) -> Result<Option<Vec<u8>>, BackendError> {
        if self.own(principal, collection).await?.is_none() {
            return Ok(None);
        }
        let store = self.dir.store();
        let Some(m) = store
            .message_by_uid(collection, uid)
            .await
            .map_err(unavailable)?
        else {
            return Ok(None);
        };
        match store.read_blob(&m.blob_hash).await {
            Ok(b) => Ok(Some(b)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn set_mail_flags(
        &self,
        principal: i64,
        collection: i64,
        uid: i64,
        read: Option<bool>,
        flagged: Option<bool>,
    ) -> Result<Option<i64>, BackendError> {
        if self.own(principal, collection).await?.is_none() {
            return Ok(None);
        }
        let store = self.dir.store();
        let Some(m) = store
            .message_by_uid(collection, uid)
            .await
            .map_err(unavailable)?
        else {
            return Ok(None);
        };
        let mut modseq = m.modseq;
        for (want, bit) in [(read, SEEN), (flagged, FLAGGED)] {
            let Some(on) = want else { continue };
            if (m.flags & bit != 0) == on {
                continue;
            }
            let op = if on { FlagOp::Add } else { FlagOp::Remove };
            let r = store
                .store_flags(collection, vec![uid], op, bit, vec![], None)
                .await
                .map_err(unavailable)?;
            if r.modseq > 0 {
                modseq = r.modseq;
            }
        }
        Ok(Some(modseq))
    }

    async fn move_mail(
        &self,
        principal: i64,
        from: i64,
        uids: &[i64],
        to: i64,
    ) -> Result<Vec<(i64, i64)>, BackendError> {
        self.transfer(principal, from, uids, to, true).await
    }

    async fn expunge_mail(
        &self,
        principal: i64,
        collection: i64,
        uids: &[i64],
    ) -> Result<Vec<i64>, BackendError> {
        if self.own(principal, collection).await?.is_none() {
            return Ok(Vec::new());
        }
        let store = self.dir.store();
        store
            .store_flags(
                collection,
                uids.to_vec(),
                FlagOp::Add,
                DELETED,
                vec![],
                None,
            )
            .await
            .map_err(unavailable)?;
        store
            .expunge(collection, Some(uids.to_vec()))
            .await
            .map_err(unavailable)
    }

    async fn out_of_office(
        &self,
        principal: i64,
    ) -> Result<outpost_activesync::settings::Oof, BackendError> {
        use outpost_sieve::oof::{Audience, OofState};
        let o = self
            .flow
            .out_of_office(principal)
            .await
            .map_err(|e| BackendError::Unavailable(e.to_string()))?;
        Ok(outpost_activesync::settings::Oof {
            state: match o.state {
                OofState::Disabled => 0,
                OofState::Enabled => 1,
                OofState::Scheduled => 2,
            },
            start: o.start,
            end: o.end,
            internal: o.internal_reply,
            external: o.external_reply,
            audience: match o.external_audience {
                Audience::None => 0,
                Audience::Known => 1,
                Audience::All => 2,
            },
        })
    }

    async fn set_out_of_office(
        &self,
        principal: i64,
        oof: &outpost_activesync::settings::Oof,
    ) -> Result<bool, BackendError> {
        use outpost_sieve::oof::{Audience, OofState, OutOfOffice};
        // The subject is not an ActiveSync setting: keep the one set
        // elsewhere.
        let old = self
            .flow
            .out_of_office(principal)
            .await
            .map_err(|e| BackendError::Unavailable(e.to_string()))?;
        let new = OutOfOffice {
            state: match oof.state {
                1 => OofState::Enabled,
                2 => OofState::Scheduled,
                _ => OofState::Disabled,
            },
            start: oof.start,
            end: oof.end,
            subject: old.subject,
            internal_reply: oof.internal.clone(),
            external_reply: oof.external.clone(),
            external_audience: match oof.audience {
                1 => Audience::Known,
                2 => Audience::All,
                _ => Audience::None,
            },
        };
        match self.flow.set_out_of_office(principal, &new).await {
            Ok(()) => Ok(true),
            Err(e) => {
                tracing::warn!("activesync: out-of-office not set: {e}");
                Ok(false)
            }
        }
    }

    async fn addresses(&self, principal: i64) -> Result<Vec<String>, BackendError> {
        self.dir
            .addresses_of(principal)
            .await
            .map_err(|e| BackendError::Unavailable(e.to_string()))
    }

    async fn send_mail(
        &self,
        principal: i64,
        mime: &[u8],
        save_sent: bool,
        original: Option<(Smart, Vec<u8>)>,
    ) -> Result<Result<(), SendRefused>, BackendError> {
        use outpost_mailflow::{Failure, SubmitError, SubmitOptions};
        let composed;
        let message = match &original {
            None => mime,
            Some((kind, raw)) => {
                let kind = match kind {
                    Smart::Reply => outpost_mailflow::Smart::Reply,
                    Smart::Forward => outpost_mailflow::Smart::Forward,
                };
                match outpost_mailflow::compose::smart(mime, raw, kind) {
                    Some(m) => {
                        composed = m;
                        &composed[..]
                    }
                    None => return Ok(Err(SendRefused::ReplyFailed)),
                }
            }
        };
        let addresses = self.addresses(principal).await?;
        let default_from = addresses.first().map(String::as_str).unwrap_or_default();
        let sent = self
            .flow
            .submit_composed(
                principal,
                message,
                default_from,
                SubmitOptions { save_sent },
                "activesync",
            )
            .await;
        Ok(match sent {
            Ok(_) => Ok(()),
            Err(SubmitError::NotAllowed(_)) => Err(SendRefused::NotAllowed),
            Err(SubmitError::BadFrom) => Err(SendRefused::BadMessage),
            Err(SubmitError::UnknownRecipient(_)) => Err(SendRefused::UnknownRecipient),
            Err(SubmitError::NoRecipients) => Err(SendRefused::NoRecipients),
            Err(SubmitError::Failed(Failure::StorageFull(_))) => Err(SendRefused::Full),
            Err(SubmitError::Failed(Failure::Temporary(_) | Failure::Unresolved(_))) => {
                Err(SendRefused::Temporary)
            }
            Err(SubmitError::Failed(Failure::Permanent(_) | Failure::Policy(_))) => {
                Err(SendRefused::Failed)
            }
        })
    }

    async fn mark_replied(
        &self,
        principal: i64,
        collection: i64,
        uid: i64,
        forwarded: bool,
    ) -> Result<(), BackendError> {
        if self.own(principal, collection).await?.is_none() {
            return Ok(());
        }
        let (bits, keywords) = if forwarded {
            (0, vec!["$Forwarded".to_string()])
        } else {
            (ANSWERED, vec![])
        };
        self.dir
            .store()
            .store_flags(collection, vec![uid], FlagOp::Add, bits, keywords, None)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn pim_data(
        &self,
        principal: i64,
        collection: i64,
        item: i64,
    ) -> Result<Option<PimObject>, BackendError> {
        let Some((c, o)) = self.own_object(principal, collection, item).await? else {
            return Ok(None);
        };
        Ok(Some(PimObject {
            name: o.meta.name.clone(),
            uid: o.meta.uid.clone(),
            created: o.meta.created_at,
            modified: o.meta.updated_at,
            data: String::from_utf8_lossy(&o.data).into_owned(),
            tz: c
                .timezone
                .as_deref()
                .and_then(outpost_store::pim::timezone_of_vtimezone)
                .and_then(|tz| tz.name().map(|n| n.into_owned())),
        }))
    }

    async fn pim_put(
        &self,
        principal: i64,
        collection: i64,
        slot: Slot<'_>,
        data: &str,
    ) -> Result<Result<(i64, i64), PimRefused>, BackendError> {
        use outpost_dav::store::{DavStore, DavStoreError, NewObject, PutCondition, PutOutcome};
        let Some(c) = self.own_groupware(principal, collection).await? else {
            return Ok(Err(PimRefused::NotFound));
        };
        let store = self.dir.store();
        let max = gw::MAX_OBJECT_BYTES;
        // The same ingest a DAV PUT does: it validates and indexes.
        let object = match c.kind {
            CollectionKind::Calendar => {
                let opts = outpost_dav::content::options(c.timezone.as_deref(), max);
                match outpost_store::pim::ingest_icalendar(data.as_bytes(), &opts) {
                    Ok(o) if c.components.contains(&o.index.kind) => {
                        NewObject::Calendar(Box::new(o))
                    }
                    Ok(_) => return Ok(Err(PimRefused::Invalid)),
                    Err(e) => {
                        tracing::info!(collection, "activesync: calendar item refused: {e}");
                        return Ok(Err(PimRefused::Invalid));
                    }
                }
            }
            CollectionKind::AddressBook => {
                let limits = outpost_store::pim::Limits {
                    max_bytes: max,
                    ..outpost_store::pim::Limits::default()
                };
                match outpost_store::pim::ingest_vcard(data.as_bytes(), &limits) {
                    Ok(i) => NewObject::Contact(Box::new(i)),
                    Err(e) => {
                        tracing::info!(collection, "activesync: contact refused: {e}");
                        return Ok(Err(PimRefused::Invalid));
                    }
                }
            }
        };
        let (name, condition) = match slot {
            Slot::Item(n) => {
                let Some(o) = store
                    .groupware_object_by_item(collection, n)
                    .await
                    .map_err(unavailable)?
                else {
                    return Ok(Err(PimRefused::NotFound));
                };
                (o.meta.name, PutCondition::IfMatch(o.meta.etag))
            }
            Slot::New(Some(name)) => {
                if gw::check_segment(name).is_err() {
                    return Ok(Err(PimRefused::Invalid));
                }
                (name.to_string(), PutCondition::IfNoneMatchAny)
            }
            Slot::New(None) => {
                let ext = if c.kind == CollectionKind::AddressBook {
                    "vcf"
                } else {
                    "ics"
                };
                (
                    format!("{:032x}.{ext}", rand::random::<u128>()),
                    PutCondition::IfNoneMatchAny,
                )
            }
        };
        let put = self
            .dav
            .put_object(
                collection,
                &name,
                data.as_bytes().to_vec(),
                object,
                condition,
                true,
            )
            .await;
        match put {
            Ok(PutOutcome::Created { .. } | PutOutcome::Replaced { .. }) => {}
            Ok(PutOutcome::PreconditionFailed) => return Ok(Err(PimRefused::Conflict)),
            // Another object has the UID the device sent (a second Add of
            // the same event): a conflict, the device keeps the first.
            Ok(PutOutcome::UidConflict { .. }) => return Ok(Err(PimRefused::Conflict)),
            Err(DavStoreError::Full(_)) => return Ok(Err(PimRefused::Full)),
            Err(DavStoreError::Unavailable(e)) => return Err(BackendError::Unavailable(e)),
            Err(DavStoreError::NotFound(_)) => return Ok(Err(PimRefused::NotFound)),
            Err(e) => {
                tracing::info!(collection, "activesync: item refused: {e}");
                return Ok(Err(PimRefused::Invalid));
            }
        }
        let meta = store
            .groupware_object_meta(collection, &name)
            .await
            .map_err(unavailable)?;
        Ok(match meta {
            Some(m) => Ok((m.item, m.modseq)),
            None => Err(PimRefused::Conflict),
        })
    }

    async fn pim_delete(
        &self,
        principal: i64,
        collection: i64,
        item: i64,
    ) -> Result<bool, BackendError> {
        use outpost_dav::store::{DavStore, DeleteOutcome};
        let Some((_, o)) = self.own_object(principal, collection, item).await? else {
            return Ok(false);
        };
        match self
            .dav
            .delete_object(collection, &o.meta.name, Some(&o.meta.etag), true)
            .await
        {
            Ok(DeleteOutcome::Deleted) => Ok(true),
            Ok(_) => Ok(false),
            Err(outpost_dav::store::DavStoreError::Unavailable(e)) => {
                Err(BackendError::Unavailable(e))
            }
            Err(_) => Ok(false),
        }
    }

    async fn search_gal(
        &self,
        _principal: i64,
        query: &str,
        limit: usize,
    ) -> Result<Vec<outpost_activesync::search::GalHit>, BackendError> {
        let entries = self
            .dir
            .search_gal(query, limit)
            .await
            .map_err(unavailable)?;
        Ok(entries
            .into_iter()
            .map(|e| outpost_activesync::search::GalHit {
                email: e.primary().to_string(),
                display_name: e.display_name,
                first_name: e.attrs.given_name,
                last_name: e.attrs.surname,
                title: e.attrs.title,
                company: e.attrs.company,
                office: e.attrs.office,
                phone: e.attrs.phone,
                mobile: e.attrs.mobile,
            })
            .collect())
    }

    async fn search_mail(
        &self,
        principal: i64,
        query: &outpost_activesync::search::MailQuery,
        range: (usize, usize),
    ) -> Result<outpost_activesync::search::MailHits, BackendError> {
        // Messages read per search at most, newest first in each folder: a
        // search over more mail sees the newest this many (docs).
        const MAX_SCAN: usize = 20_000;
        const BATCH: i64 = 500;
        let store = self.dir.store();
        let mut found: Vec<(i64, MessageInfo)> = Vec::new();
        let mut scanned = 0;
        'folders: for &col in &query.folders {
            if self.own(principal, col).await?.is_none() {
                continue;
            }
            let mut below = i64::MAX;
            loop {
                let batch = store
                    .messages_below(col, below, query.after.unwrap_or(0), BATCH)
                    .await
                    .map_err(unavailable)?;
                let Some(last) = batch.last() else { break };
                below = last.uid;
                let n = batch.len();
                for m in batch {
                    scanned += 1;
                    if scanned > MAX_SCAN {
                        break 'folders;
                    }
                    if query.before.is_some_and(|b| m.internal_date >= b) {
                        continue;
                    }
                    if query.text.is_empty() {
                        found.push((col, m));
                        continue;
                    }
                    let raw = match store.read_blob(&m.blob_hash).await {
                        Ok(r) => r,
                        Err(StoreError::NotFound(_)) => continue,
                        Err(e) => return Err(unavailable(e)),
                    };
                    if outpost_imap::search::text_matches(&raw, &query.text) {
                        found.push((col, m));
                    }
                }
                if n < BATCH as usize {
                    break;
                }
            }
        }
        found.sort_by_key(|(_, m)| std::cmp::Reverse(m.internal_date));
        Ok(outpost_activesync::search::MailHits {
            total: found.len(),
            items: found
                .iter()
                .skip(range.0)
                .take(range.1.saturating_sub(range.0) + 1)
                .map(|(c, m)| (*c, item(m)))
                .collect(),
        })
    }

    async fn availability(
        &self,
        _principal: i64,
        addresses: &[String],
        start: i64,
        end: i64,
    ) -> Result<Vec<Option<Vec<outpost_activesync::resolve::Busy>>>, BackendError> {
        use outpost_scheduling::FreeBusy;
        let answers = self
            .scheduler
            .free_busy(addresses, start, end)
            .await
            .map_err(|e| BackendError::Unavailable(e.to_string()))?;
        Ok(answers
            .into_iter()
            .map(|(_, fb)| match fb {
                FreeBusy::Busy(periods) => Some(
                    periods
                        .iter()
                        .map(|p| (p.start, p.end, p.kind == gw::BusyType::Tentative))
                        .collect(),
                ),
                FreeBusy::NotHosted | FreeBusy::Unknown => None,
            })
            .collect())
    }

    async fn meeting_response(
        &self,
        principal: i64,
        collection: i64,
        item: i64,
        answer: outpost_activesync::meeting::Answer,
    ) -> Result<outpost_activesync::meeting::Outcome, BackendError> {
        use outpost_activesync::meeting::Outcome;
        use outpost_store::pim::itip;
        let store = self.dir.store();
        let limits = outpost_store::pim::Limits::default();
        // The calendar copy: the item itself, or the one the invitation
        // mail's UID names (filed by the scheduling engine on delivery).
        let (cal, cal_item, data) = if self.own(principal, collection).await?.is_some() {
            let Some(raw) = self.mail_raw(principal, collection, item).await? else {
                return Ok(Outcome::NotAMeeting);
            };
            let (_, parts) = outpost_mailflow::imip::calendar_parts(&raw);
            let Some(uid) = parts
                .iter()
                .find_map(|(_, bytes)| itip::parse(bytes, &limits).ok().map(|o| o.uid))
            else {
                return Ok(Outcome::NotAMeeting);
            };
            let mut found = None;
            for meta in store
                .calendar_objects_by_uid(principal, &uid)
                .await
                .map_err(unavailable)?
            {
                if self
                    .own_groupware(principal, meta.collection)
                    .await?
                    .is_none()
                {
                    continue;
                }
                if let Some(o) = store
                    .groupware_object(meta.collection, &meta.name)
                    .await
                    .map_err(unavailable)?
                {
                    found = Some((meta.collection, meta.item, o.data));
                    break;
                }
            }
            match found {
                Some(f) => f,
                None => return Ok(Outcome::NotAMeeting),
            }
        } else {
            match self.own_object(principal, collection, item).await? {
                Some((_, o)) => (collection, item, o.data),
                None => return Ok(Outcome::NotAMeeting),
            }
        };
        let Ok(obj) = itip::parse(&data, &limits) else {
            return Ok(Outcome::NotAMeeting);
        };
        let addresses = self.addresses(principal).await?;
        let Some(me) = addresses.iter().find(|a| obj.partstat(a).is_some()) else {
            return Ok(Outcome::NotAMeeting);
        };
        let answered = itip::set_attendee_partstat(&obj, me, answer.partstat());
        match self
            .pim_put(principal, cal, Slot::Item(cal_item), &answered)
            .await?
        {
            Ok((item, _)) => Ok(Outcome::Done(cal, item)),
            Err(_) => Ok(Outcome::NotAMeeting),
        }
    }

    async fn save_draft(
        &self,
        principal: i64,
        collection: i64,
        draft: &outpost_activesync::drafts::Draft,
        replace: Option<i64>,
    ) -> Result<Option<(i64, i64)>, BackendError> {
        if self.own(principal, collection).await?.is_none() {
            return Ok(None);
        }
        let Some(from) = self.own_from(principal).await? else {
            return Ok(None);
        };
        let d = outpost_mailflow::Draft {
            from,
            to: draft.to.clone(),
            cc: draft.cc.clone(),
            bcc: draft.bcc.clone(),
            subject: draft.subject.clone(),
            importance: draft.importance,
            text: draft.text.clone(),
            html: draft.html.clone(),
            attachments: draft
                .attachments
                .iter()
                .map(|a| outpost_mailflow::DraftAttachment {
                    name: a.name.clone(),
                    content_type: a.content_type.clone(),
                    content_id: a.content_id.clone(),
                    data: a.data.clone(),
                })
                .collect(),
        };
        let raw = match &draft.mime {
            // The device's own MIME: filed as it is if it reads as a
            // message.
            Some(m) => {
                if mail_parser::MessageParser::new().parse_headers(m).is_none() {
                    return Ok(None);
                }
                m.clone()
            }
            None => match outpost_mailflow::compose::build_draft(&d, self.flow.hostname()) {
                Some(r) => r,
                None => return Ok(None),
            },
        };
        let store = self.dir.store();
        let target = outpost_store::Target {
            mailbox: collection,
            flags: if draft.read { SEEN | DRAFT } else { DRAFT },
            keywords: Vec::new(),
        };
        let done = store
            .deliver(
                std::sync::Arc::from(raw),
                vec![target],
                outpost_store::now(),
            )
            .await
            .map_err(unavailable)?;
        let Some(d) = done.first() else {
            return Ok(None);
        };
        if let Some(old) = replace {
            self.expunge_mail(principal, collection, &[old]).await?;
        }
        Ok(Some((d.uid, d.modseq)))
    }

    fn watch(&self, collection: i64) -> Option<tokio::sync::watch::Receiver<i64>> {
        Some(self.dir.store().subscribe(collection))
    }

    fn watch_hierarchy(&self, principal: i64) -> Option<tokio::sync::watch::Receiver<i64>> {
        Some(
            self.dir
                .store()
                .subscribe(outpost_store::hierarchy_channel(principal)),
        )
    }
}

/// What EWS needs beside ActiveSync's calls: the same store, the same
/// value (EWS and ActiveSync see one mailbox).
#[async_trait]
impl outpost_ews::EwsBackend for EasStore {
    async fn special_use(&self, principal: i64) -> Result<Vec<(i64, String)>, BackendError> {
        Ok(self
            .dir
            .store()
            .mailboxes(principal)
            .await
            .map_err(unavailable)?
            .into_iter()
            .filter_map(|m| m.special_use.map(|s| (m.id, s)))
            .collect())
    }

    async fn counts(
        &self,
        principal: i64,
        collection: i64,
    ) -> Result<Option<outpost_ews::Counts>, BackendError> {
        if self.own(principal, collection).await?.is_some() {
            let s = self
                .dir
                .store()
                .status(collection)
                .await
                .map_err(unavailable)?;
            return Ok(Some(outpost_ews::Counts {
                total: s.messages,
                unread: s.unseen,
            }));
        }
        if self.own_groupware(principal, collection).await?.is_some() {
            let total = self
                .dir
                .store()
                .count_groupware_objects_below(collection, i64::MAX, i64::MIN)
                .await
                .map_err(unavailable)?;
            return Ok(Some(outpost_ews::Counts { total, unread: 0 }));
        }
        Ok(None)
    }

    async fn display_name(&self, principal: i64) -> Result<Option<String>, BackendError> {
        Ok(self
            .dir
            .store()
            .principal(principal)
            .await
            .map_err(unavailable)?
            .map(|p| p.display_name)
            .filter(|n| !n.is_empty()))
    }

    async fn hierarchy_changes(
        &self,
        principal: i64,
        since: i64,
    ) -> Result<Option<(i64, Vec<(i64, bool)>)>, BackendError> {
        use outpost_store::sync::CollectionChangeKind;
        match self
            .dir
            .store()
            .principal_changes_since(principal, since)
            .await
            .map_err(unavailable)?
        {
            Since::TooOld(_) => Ok(None),
            Since::Changes(c) => {
                let mut out: Vec<(i64, bool)> = Vec::new();
                for ch in &c.changes {
                    let created = ch.kind == CollectionChangeKind::Created;
                    match out.iter_mut().find(|(id, _)| *id == ch.collection) {
                        Some(e) => e.1 |= created,
                        None => out.push((ch.collection, created)),
                    }
                }
                Ok(Some((c.highest_seq, out)))
            }
        }
    }

    async fn mail_entries(
        &self,
        principal: i64,
        collection: i64,
    ) -> Result<Option<Vec<outpost_ews::MailEntry>>, BackendError> {
        if self.own(principal, collection).await?.is_none() {
            return Ok(None);
        }
        let list = self
            .dir
            .store()
            .message_summaries(collection)
            .await
            .map_err(unavailable)?;
        Ok(Some(
            list.into_iter()
                .map(|m| outpost_ews::MailEntry {
                    uid: m.uid,
                    modseq: m.modseq,
                    internal_date: m.internal_date,
                    size: m.size,
                    flags: m.flags,
                    keywords: m.keywords,
                })
                .collect(),
        ))
    }

    async fn mail_entry(
        &self,
        principal: i64,
        collection: i64,
        uid: i64,
    ) -> Result<Option<outpost_ews::MailEntry>, BackendError> {
        if self.own(principal, collection).await?.is_none() {
            return Ok(None);
        }
        Ok(self
            .dir
            .store()
            .message_by_uid(collection, uid)
            .await
            .map_err(unavailable)?
            .as_ref()
            .map(ews_entry))
    }

    async fn mail_meta(
        &self,
        principal: i64,
        collection: i64,
        uids: &[i64],
    ) -> Result<std::collections::HashMap<i64, outpost_ews::MessageMeta>, BackendError> {
        if self.own(principal, collection).await?.is_none() {
            return Ok(Default::default());
        }
        self.dir
            .store()
            .message_meta(collection, uids)
            .await
            .map_err(unavailable)
    }

    async fn mail_subjects(
        &self,
        principal: i64,
        collection: i64,
    ) -> Result<Vec<(i64, Option<String>, Option<i64>)>, BackendError> {
        if self.own(principal, collection).await?.is_none() {
            return Ok(Vec::new());
        }
        self.dir
            .store()
            .message_subjects(collection)
            .await
            .map_err(unavailable)
    }

    async fn set_mail_keywords(
        &self,
        principal: i64,
        collection: i64,
        uid: i64,
        keywords: &[String],
    ) -> Result<Option<i64>, BackendError> {
        if self.own(principal, collection).await?.is_none() {
            return Ok(None);
        }
        let store = self.dir.store();
        let Some(m) = store
            .message_by_uid(collection, uid)
            .await
            .map_err(unavailable)?
        else {
            return Ok(None);
        };
        let same = m.keywords.len() == keywords.len()
            && keywords
                .iter()
                .all(|k| m.keywords.iter().any(|x| x.eq_ignore_ascii_case(k)));
        if same {
            return Ok(Some(m.modseq));
        }
        // Replace keeps the system flags given: the message's own.
        let r = store
            .store_flags(
                collection,
                vec![uid],
                FlagOp::Replace,
                m.flags,
                keywords.to_vec(),
                None,
            )
            .await
            .map_err(unavailable)?;
        Ok(Some(if r.modseq > 0 { r.modseq } else { m.modseq }))
    }

    async fn set_mail_system_flags(
        &self,
        principal: i64,
        collection: i64,
        uid: i64,
        set: i64,
        clear: i64,
    ) -> Result<Option<i64>, BackendError> {
        if self.own(principal, collection).await?.is_none() {
            return Ok(None);
        }
        let store = self.dir.store();
        let Some(m) = store
            .message_by_uid(collection, uid)
            .await
            .map_err(unavailable)?
        else {
            return Ok(None);
        };
        let mut modseq = m.modseq;
        for (op, bits) in [
            (FlagOp::Add, set & !m.flags),
            (FlagOp::Remove, clear & m.flags),
        ] {
            if bits == 0 {
                continue;
            }
            let r = store
                .store_flags(collection, vec![uid], op, bits, vec![], None)
                .await
                .map_err(unavailable)?;
            if r.modseq > 0 {
                modseq = r.modseq;
            }
        }
        Ok(Some(modseq))
    }

    async fn copy_mail(
        &self,
        principal: i64,
        from: i64,
        uids: &[i64],
        to: i64,
    ) -> Result<Vec<(i64, i64)>, BackendError> {
        self.transfer(principal, from, uids, to, false).await
    }

    async fn compose_mail(
        &self,
        principal: i64,
        draft: &outpost_activesync::drafts::Draft,
        from: Option<&str>,
    ) -> Result<Option<Vec<u8>>, BackendError> {
        let from = match from {
            Some(f) => f.to_string(),
            None => match self.own_from(principal).await? {
                Some(f) => f,
                None => return Ok(None),
            },
        };
        let d = outpost_mailflow::Draft {
            from,
            to: draft.to.clone(),
            cc: draft.cc.clone(),
            bcc: draft.bcc.clone(),
            subject: draft.subject.clone(),
            importance: draft.importance,
            text: draft.text.clone(),
            html: draft.html.clone(),
            attachments: draft
                .attachments
                .iter()
                .map(|a| outpost_mailflow::DraftAttachment {
                    name: a.name.clone(),
                    content_type: a.content_type.clone(),
                    content_id: a.content_id.clone(),
                    data: a.data.clone(),
                })
                .collect(),
        };
        Ok(outpost_mailflow::compose::build_draft(
            &d,
            self.flow.hostname(),
        ))
    }

    async fn file_mail(
        &self,
        principal: i64,
        collection: i64,
        raw: &[u8],
        seen: bool,
    ) -> Result<Option<(i64, i64)>, BackendError> {
        if self.own(principal, collection).await?.is_none() {
            return Ok(None);
        }
        let done = self
            .dir
            .store()
            .deliver(
                std::sync::Arc::from(raw.to_vec()),
                vec![outpost_store::Target {
                    mailbox: collection,
                    flags: if seen { SEEN } else { 0 },
                    keywords: Vec::new(),
                }],
                outpost_store::now(),
            )
            .await
            .map_err(unavailable)?;
        Ok(done.first().map(|d| (d.uid, d.modseq)))
    }

    async fn recipient(
        &self,
        _principal: i64,
        address: &str,
    ) -> Result<outpost_ews::Recipient, BackendError> {
        use outpost_directory::Lookup;
        use outpost_ews::{Member, Recipient};
        use outpost_store::principals::PrincipalKind;
        let address = address.trim();
        match self.dir.resolve(address).await.map_err(unavailable)? {
            Lookup::NotLocal => return Ok(Recipient::External),
            Lookup::Unknown => return Ok(Recipient::Unknown),
            Lookup::Local(_) => {}
        }
        let Some(d) = self.dir.describe(address).await.map_err(unavailable)? else {
            // Delivered (a catch-all), but no user or group of its own.
            return Ok(Recipient::Unknown);
        };
        let email = d.primary.clone().unwrap_or_else(|| address.to_string());
        match d.kind {
            PrincipalKind::Group => {
                let mut members = Vec::new();
                for m in d.members.iter().take(1000) {
                    match self.dir.describe(m).await.map_err(unavailable)? {
                        Some(md) => members.push(Member {
                            name: md.name.clone(),
                            email: md.primary.clone().unwrap_or_else(|| m.clone()),
                            group: md.kind == PrincipalKind::Group,
                            external: false,
                        }),
                        None => {
                            let hosted = match outpost_store::principals::domain_of(m) {
                                Some(dom) => {
                                    self.dir.is_local_domain(dom).await.map_err(unavailable)?
                                }
                                None => false,
                            };
                            members.push(Member {
                                name: String::new(),
                                email: m.clone(),
                                group: false,
                                external: !hosted,
                            });
                        }
                    }
                }
                Ok(Recipient::Group {
                    name: d.name,
                    email,
                    members,
                })
            }
            PrincipalKind::User => {
                let oof = match d.principal_id {
                    Some(id) => self.out_of_office(id).await?,
                    None => Default::default(),
                };
                Ok(Recipient::User {
                    name: d.name,
                    email,
                    oof,
                })
            }
        }
    }

    async fn gal_groups(
        &self,
        _principal: i64,
        query: &str,
        limit: usize,
    ) -> Result<Vec<String>, BackendError> {
        use outpost_store::principals::PrincipalKind;
        Ok(self
            .dir
            .search_gal(query, limit)
            .await
            .map_err(unavailable)?
            .into_iter()
            .filter(|e| e.kind == PrincipalKind::Group)
            .map(|e| e.primary().to_string())
            .collect())
    }

    async fn calendar_range(
        &self,
        principal: i64,
        collection: i64,
        start: i64,
        end: i64,
    ) -> Result<Vec<i64>, BackendError> {
        let Some(c) = self.own_groupware(principal, collection).await? else {
            return Ok(Vec::new());
        };
        if c.kind != CollectionKind::Calendar {
            return Ok(Vec::new());
        }
        Ok(self
            .dir
            .store()
            .time_range_candidates(collection, start, end, None)
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|h| h.meta.item)
            .collect())
    }

    async fn time_zone(&self, principal: i64) -> Result<Option<String>, BackendError> {
        let c = self
            .dir
            .store()
            .groupware_collection(principal, CollectionKind::Calendar, gw::DEFAULT_CALENDAR.0)
            .await
            .map_err(unavailable)?;
        Ok(c.and_then(|c| c.timezone)
            .as_deref()
            .and_then(outpost_store::pim::timezone_of_vtimezone)
            .and_then(|tz| tz.name().map(|n| n.into_owned())))
    }

    async fn pim_item_by_name(
        &self,
        principal: i64,
        collection: i64,
        name: &str,
    ) -> Result<Option<i64>, BackendError> {
        if self.own_groupware(principal, collection).await?.is_none() {
            return Ok(None);
        }
        Ok(self
            .dir
            .store()
            .groupware_object_meta(collection, name)
            .await
            .map_err(unavailable)?
            .map(|m| m.item))
    }

    async fn search_contacts(
        &self,
        principal: i64,
        text: &str,
        limit: usize,
    ) -> Result<Vec<(i64, i64)>, BackendError> {
        let store = self.dir.store();
        let books: Vec<i64> = store
            .groupware_collections(principal, Some(CollectionKind::AddressBook))
            .await
            .map_err(unavailable)?
            .iter()
            .filter(|c| groupware_type(c).is_some())
            .map(|c| c.id)
            .collect();
        Ok(store
            .search_contacts(&books, text, limit)
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|m| (m.collection, m.item))
            .collect())
    }
}

fn ews_entry(m: &MessageInfo) -> outpost_ews::MailEntry {
    outpost_ews::MailEntry {
        uid: m.uid,
        modseq: m.modseq,
        internal_date: m.internal_date,
        size: m.size,
        flags: m.flags,
        keywords: m.keywords.clone(),
    }
}

impl EasStore {
    /// The `From:` of a message the principal composes without one: its
    /// display name (when it needs no quoting) and primary address.
    async fn own_from(&self, principal: i64) -> Result<Option<String>, BackendError> {
        let addresses = self.addresses(principal).await?;
        let Some(me) = addresses.first() else {
            return Ok(None);
        };
        let name = self
            .dir
            .store()
            .principal(principal)
            .await
            .ok()
            .flatten()
            .map(|p| p.display_name)
            .unwrap_or_default();
        Ok(Some(
            if name.is_empty() || name.contains(['"', '<', '>', '\\']) {
                me.clone()
            } else {
                format!("\"{name}\" <{me}>")
            },
        ))
    }
}
