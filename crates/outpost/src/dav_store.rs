//! `outpost_dav::DavStore` over the store's groupware API
//! (`outpost_store::groupware`) and the directory: what CalDAV and CardDAV
//! see of calendars, address books, principals and quotas.
//!
//! - Principals come from the directory: a login (the URL's `<login>`
//!   segment) is resolved like any login, LDAP included; a principal's
//!   addresses are its store addresses (primary, aliases) plus, for LDAP
//!   users, the entry's primary and secondary `mail`/`proxyAddresses`, so
//!   `calendar-user-address-set` lists every address of the user.
//! - The default collections (a calendar, a task list, an address book,
//!   named as SOGo names them) are made on first use: the DAV layer calls
//!   `ensure_defaults` when a user's own home is found empty, which is the
//!   store's `ensure_default_groupware`.
//! - The quota is the principal's one quota (`quota_bytes`, 0 = none),
//!   shared by mail and groupware: a PUT or COPY that would go over it is
//!   refused with `Full` (507) before anything is written.
//! - Store errors keep their class: unavailable (503), full (507), not
//!   found, exists, invalid; a write that lost a race (`Conflict`) is a
//!   failed precondition.
//! - Scheduling (RFC 6638, implicit): after a PUT or DELETE of a calendar
//!   object succeeded, the scheduling engine (`outpost_scheduling`) gets
//!   the bytes before and after and sends what the change implies
//!   (REQUEST/CANCEL/REPLY to hosted calendars or by iMIP mail). Its
//!   failures are logged and never fail the write. COPY and MOVE schedule
//!   nothing. The outbox's free/busy is the engine's `free_busy`.

use async_trait::async_trait;
use outpost_dav::{
    BusyPeriod, BusyType, Candidate, CollectionKind, CollectionPatch, ComponentKind, DavCollection,
    DavObject, DavPrincipal, DavStore, DavStoreError, DavStoreResult, DeleteOutcome, Grant,
    NewCollection, NewObject, ObjectMeta, PutCondition, PutOutcome, Quota, Rights,
    ScheduleFreeBusy, SyncAnswer,
};
use outpost_directory::{Directory, LDAP_SOURCE};
use outpost_store::groupware as gw;
use outpost_store::pim::ComponentKind as PimKind;
use outpost_store::{Since, Store, StoreError};

/// The DAV layer's storage: the directory (and through it the store).
pub struct DavBackend {
    dir: Directory,
    scheduler: Option<outpost_scheduling::Scheduler>,
    /// Domain -> id of its GAL address book (ids never change; a domain
    /// removed and added again gets a new one, found when the old id is
    /// gone).
    gals: std::sync::Mutex<std::collections::HashMap<String, i64>>,
}

/// The domain of a login (its primary address), lower case.
fn domain_of_login(login: &str) -> Option<String> {
    login.rsplit_once('@').map(|(_, d)| d.to_lowercase())
}

impl DavBackend {
    pub fn new(dir: Directory) -> DavBackend {
        DavBackend {
            dir,
            scheduler: None,
            gals: Default::default(),
        }
    }

    /// Schedules calendar writes through `scheduler` (serve's one engine).
    pub fn with_scheduler(mut self, scheduler: outpost_scheduling::Scheduler) -> DavBackend {
        self.scheduler = Some(scheduler);
        self
    }

    /// A calendar object before a write, when it will be scheduled (a
    /// scheduler is set and the object is not a vCard).
    async fn before_write(
        &self,
        collection: i64,
        name: &str,
    ) -> DavStoreResult<Option<gw::StoredObject>> {
        if self.scheduler.is_none() {
            return Ok(None);
        }
        Ok(self
            .store()
            .groupware_object(collection, name)
            .await
            .map_err(err)?
            .filter(|o| o.meta.component != PimKind::Card))
    }

    /// After a successful PUT (`new` Some) or DELETE of a calendar object:
    /// what the change implies is sent; failures are logged, never
    /// returned (the write is done).
    async fn after_write(
        &self,
        owner: i64,
        collection: i64,
        old: Option<&[u8]>,
        new: Option<&[u8]>,
        reply: bool,
    ) {
        let Some(s) = &self.scheduler else { return };
        match s.after_write_with(owner, collection, old, new, reply).await {
            Ok(out) => {
                for m in &out.sent {
                    tracing::info!(
                        collection,
                        method = ?m.method,
                        recipient = %m.recipient,
                        status = m.status.schedule_status(),
                        detail = ?m.status,
                        "dav: scheduled"
                    );
                }
            }
            Err(e) => tracing::warn!(collection, error = %e, "dav: scheduling failed"),
        }
    }

    /// The GAL address book of the principal's domain (that of its
    /// primary address); `None` for a principal without one or a domain
    /// that is not hosted. Made on first use (the refresh fills it).
    async fn gal_of(&self, principal: i64) -> DavStoreResult<Option<gw::GroupwareCollection>> {
        let Some(p) = self.principal(principal).await? else {
            return Ok(None);
        };
        let Some(domain) = domain_of_login(&p.login) else {
            return Ok(None);
        };
        let cached = self.gals.lock().unwrap().get(&domain).copied();
        if let Some(id) = cached {
            if let Some(c) = self
                .store()
                .groupware_collection_by_id(id)
                .await
                .map_err(err)?
            {
                return Ok(Some(c));
            }
        }
        match self.store().gal_address_book(&domain).await {
            Ok(c) => {
                self.gals.lock().unwrap().insert(domain, c.id);
                Ok(Some(c))
            }
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(err(e)),
        }
    }

    fn store(&self) -> &Store {
        self.dir.store()
    }

    /// Refuses a write of `new_size` octets replacing `old_size` when the
    /// owner of `collection` would go over its quota.
    async fn check_quota(&self, owner: i64, old_size: u64, new_size: u64) -> DavStoreResult<()> {
        if new_size <= old_size {
            return Ok(());
        }
        // No limit (the default), nothing to sum.
        let limited = self
            .store()
            .principal(owner)
            .await
            .map_err(err)?
            .is_some_and(|p| p.quota_bytes > 0);
        if !limited {
            return Ok(());
        }
        let q = self.quota(owner).await?;
        if let Some(available) = q.available_bytes {
            if new_size - old_size > available {
                return Err(DavStoreError::Full(format!(
                    "over quota: {} octets more, {available} available",
                    new_size - old_size
                )));
            }
        }
        Ok(())
    }

    async fn owner_of(&self, collection: i64) -> DavStoreResult<gw::GroupwareCollection> {
        self.store()
            .groupware_collection_by_id(collection)
            .await
            .map_err(err)?
            .ok_or_else(|| DavStoreError::NotFound(format!("collection {collection}")))
    }
}

/// Store errors as DAV answers them.
fn err(e: StoreError) -> DavStoreError {
    match e {
        StoreError::Unavailable(m) => DavStoreError::Unavailable(m),
        StoreError::Full(m) => DavStoreError::Full(m),
        StoreError::NotFound(m) => DavStoreError::NotFound(m),
        StoreError::Exists(m) => DavStoreError::Exists(m),
        StoreError::Invalid(m) => DavStoreError::Invalid(m),
        // Another write changed the same rows first; the client may retry.
        StoreError::Conflict => DavStoreError::Unavailable("concurrent change, try again".into()),
        StoreError::Internal(m) => DavStoreError::Internal(m),
    }
}

fn kind_to_store(k: CollectionKind) -> gw::CollectionKind {
    match k {
        CollectionKind::Calendar => gw::CollectionKind::Calendar,
        CollectionKind::AddressBook => gw::CollectionKind::AddressBook,
    }
}

fn kind_from_store(k: gw::CollectionKind) -> CollectionKind {
    match k {
        gw::CollectionKind::Calendar => CollectionKind::Calendar,
        gw::CollectionKind::AddressBook => CollectionKind::AddressBook,
    }
}

fn comp_to_store(k: ComponentKind) -> PimKind {
    match k {
        ComponentKind::VEvent => PimKind::Event,
        ComponentKind::VTodo => PimKind::Todo,
        ComponentKind::VJournal => PimKind::Journal,
        ComponentKind::VCard => PimKind::Card,
    }
}

fn comp_from_store(k: PimKind) -> ComponentKind {
    match k {
        PimKind::Event => ComponentKind::VEvent,
        PimKind::Todo => ComponentKind::VTodo,
        PimKind::Journal => ComponentKind::VJournal,
        PimKind::Card => ComponentKind::VCard,
    }
}

fn rights_from_store(r: gw::Rights) -> Rights {
    match r {
        gw::Rights::FreeBusy => Rights::FreeBusy,
        gw::Rights::Read => Rights::Read,
        gw::Rights::ReadWrite => Rights::ReadWrite,
    }
}

/// `calendar-order` 0 is the store's "no order": it reads back as absent,
/// so a PROPPATCH remove round-trips.
fn collection(c: gw::GroupwareCollection) -> DavCollection {
    DavCollection {
        id: c.id,
        owner: c.owner,
        kind: kind_from_store(c.kind),
        name: c.name,
        display_name: (!c.display_name.is_empty()).then_some(c.display_name),
        color: c.color,
        description: c.description,
        timezone: c.timezone,
        components: c.components.into_iter().map(comp_from_store).collect(),
        order: (c.sort_order != 0).then(|| i32::try_from(c.sort_order).unwrap_or(i32::MAX)),
        ctag: c.ctag,
        read_only: c.read_only,
    }
}

fn meta(m: gw::ObjectMeta) -> ObjectMeta {
    ObjectMeta {
        schedule_tag: m.schedule.tag,
        name: m.name,
        etag: m.etag,
        modseq: m.modseq,
        uid: m.uid,
        kind: comp_from_store(m.component),
        size: u64::try_from(m.size).unwrap_or(0),
    }
}

fn object(o: gw::StoredObject) -> DavObject {
    DavObject {
        meta: meta(o.meta),
        data: o.data,
    }
}

/// A write's outcome; `NotAllowed` and `Invalid` become errors (403).
fn busy_period(p: gw::BusyPeriod) -> BusyPeriod {
    BusyPeriod {
        start: p.start,
        end: p.end,
        kind: match p.kind {
            gw::BusyType::Busy => BusyType::Busy,
            gw::BusyType::Tentative => BusyType::Tentative,
        },
    }
}

fn put_outcome(o: gw::PutOutcome) -> DavStoreResult<PutOutcome> {
    Ok(match o {
        gw::PutOutcome::Created(m) => PutOutcome::Created { etag: m.etag },
        gw::PutOutcome::Replaced(m) => PutOutcome::Replaced { etag: m.etag },
        gw::PutOutcome::PreconditionFailed => PutOutcome::PreconditionFailed,
        gw::PutOutcome::UidConflict { existing } => PutOutcome::UidConflict { existing },
        gw::PutOutcome::NotAllowed(m) => return Err(DavStoreError::Invalid(m)),
        gw::PutOutcome::Invalid(e) => return Err(DavStoreError::Invalid(e.to_string())),
    })
}

/// Open ends of a time range, as the store's bounds.
const FAR_PAST: i64 = i64::MIN / 2;
const FAR_FUTURE: i64 = i64::MAX / 2;

#[async_trait]
impl DavStore for DavBackend {
    async fn principal_by_login(&self, login: &str) -> DavStoreResult<Option<DavPrincipal>> {
        match self.dir.user(login).await {
            Ok(p) => self.principal(p.id).await,
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(err(e)),
        }
    }

    async fn principal(&self, id: i64) -> DavStoreResult<Option<DavPrincipal>> {
        let Some(p) = self.store().principal(id).await.map_err(err)? else {
            return Ok(None);
        };
        let mut addresses: Vec<String> = Vec::new();
        let mut login = p.address.clone();
        if p.source == LDAP_SOURCE {
            if let (Some(ldap), Some(ext)) = (self.dir.ldap(), p.external_id.as_deref()) {
                if let Some(e) = ldap.by_id(ext).await.map_err(err)? {
                    login = e.primary.clone();
                    addresses.extend(e.primary);
                    addresses.extend(e.secondary);
                }
            }
        }
        // Store addresses: the primary first, then aliases (for an LDAP
        // user, local aliases pointing at its entry).
        for (a, _) in self.store().addresses_of(id).await.map_err(err)? {
            addresses.push(a);
        }
        let Some(login) = login else {
            // No address, no home: the GAL's owner and the like.
            return Ok(None);
        };
        let mut seen = std::collections::HashSet::new();
        addresses.retain(|a| seen.insert(a.to_lowercase()));
        if let Some(i) = addresses
            .iter()
            .position(|a| a.eq_ignore_ascii_case(&login))
        {
            let primary = addresses.remove(i);
            addresses.insert(0, primary);
        } else {
            addresses.insert(0, login.clone());
        }
        let calendar_user_type = self
            .store()
            .calendar_user_type(id)
            .await
            .map_err(err)?
            .as_str()
            .to_ascii_uppercase();
        Ok(Some(DavPrincipal {
            id,
            login,
            display_name: (!p.display_name.is_empty()).then_some(p.display_name),
            addresses,
            calendar_user_type,
        }))
    }

    async fn search_principals(
        &self,
        text: &str,
        limit: usize,
    ) -> DavStoreResult<Vec<DavPrincipal>> {
        // The directory's search (store and LDAP): a prefix of a name or
        // an address. Groups have no DAV principal here and are left out.
        let mut out: Vec<DavPrincipal> = Vec::new();
        for hit in self.dir.search_gal(text, limit).await.map_err(err)? {
            if hit.kind != outpost_store::PrincipalKind::User {
                continue;
            }
            if let Some(p) = self.principal_by_login(hit.primary()).await? {
                if !out.iter().any(|x| x.id == p.id) {
                    out.push(p);
                }
            }
        }
        Ok(out)
    }

    async fn quota(&self, principal: i64) -> DavStoreResult<Quota> {
        let p = self
            .store()
            .principal(principal)
            .await
            .map_err(err)?
            .ok_or_else(|| DavStoreError::NotFound(format!("principal {principal}")))?;
        let mail = self.store().usage(principal).await.map_err(err)?;
        let groupware = self.store().groupware_usage(principal).await.map_err(err)?;
        let used = u64::try_from(mail.saturating_add(groupware)).unwrap_or(0);
        let limit = u64::try_from(p.quota_bytes).unwrap_or(0);
        Ok(Quota {
            used_bytes: used,
            available_bytes: (limit > 0).then(|| limit.saturating_sub(used)),
        })
    }

    async fn ensure_defaults(&self, owner: i64) -> DavStoreResult<()> {
        // Users only: a group's home is not filled.
        let store = self.store();
        match store.principal(owner).await.map_err(err)? {
            Some(p) if p.kind == outpost_store::PrincipalKind::User => {
                store.ensure_default_groupware(owner).await.map_err(err)?;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    async fn list_collections(
        &self,
        owner: i64,
        kind: CollectionKind,
    ) -> DavStoreResult<Vec<DavCollection>> {
        Ok(self
            .store()
            .groupware_collections(owner, Some(kind_to_store(kind)))
            .await
            .map_err(err)?
            .into_iter()
            .map(collection)
            .collect())
    }

    async fn collection(
        &self,
        owner: i64,
        kind: CollectionKind,
        name: &str,
    ) -> DavStoreResult<Option<DavCollection>> {
        Ok(self
            .store()
            .groupware_collection(owner, kind_to_store(kind), name)
            .await
            .map_err(err)?
            .map(collection))
    }

    async fn collection_by_id(&self, id: i64) -> DavStoreResult<Option<DavCollection>> {
        Ok(self
            .store()
            .groupware_collection_by_id(id)
            .await
            .map_err(err)?
            .map(collection))
    }

    async fn create_collection(
        &self,
        owner: i64,
        kind: CollectionKind,
        new: NewCollection,
    ) -> DavStoreResult<DavCollection> {
        let components = match kind {
            CollectionKind::AddressBook => Vec::new(),
            // The trait's "empty" is every calendar component.
            CollectionKind::Calendar if new.components.is_empty() => {
                vec![PimKind::Event, PimKind::Todo, PimKind::Journal]
            }
            CollectionKind::Calendar => new.components.into_iter().map(comp_to_store).collect(),
        };
        let display_name = new.display_name.unwrap_or_default();
        let made = self
            .store()
            .create_groupware_collection(
                owner,
                gw::NewCollection {
                    kind: kind_to_store(kind),
                    name: new.name,
                    display_name,
                    color: new.color,
                    description: new.description,
                    timezone: new.timezone,
                    components,
                    sort_order: new.order.map_or(0, i64::from),
                },
            )
            .await
            .map_err(err)?;
        Ok(collection(made))
    }

    async fn update_collection(
        &self,
        id: i64,
        patch: CollectionPatch,
    ) -> DavStoreResult<DavCollection> {
        let updated = self
            .store()
            .update_groupware_collection(
                id,
                gw::CollectionPatch {
                    // Removing the display name leaves it empty (shown as
                    // the URL name).
                    display_name: patch.display_name.map(Option::unwrap_or_default),
                    color: patch.color,
                    description: patch.description,
                    timezone: patch.timezone,
                    components: None,
                    sort_order: patch.order.map(|o| o.map_or(0, i64::from)),
                },
            )
            .await
            .map_err(err)?;
        Ok(collection(updated))
    }

    async fn delete_collection(&self, id: i64) -> DavStoreResult<()> {
        let c = self.owner_of(id).await?;
        if c.read_only {
            return Err(DavStoreError::Invalid("the collection is read-only".into()));
        }
        self.store()
            .delete_groupware_collection(id)
            .await
            .map_err(err)
    }

    async fn list_objects(&self, collection: i64) -> DavStoreResult<Vec<ObjectMeta>> {
        Ok(self
            .store()
            .groupware_objects(collection)
            .await
            .map_err(err)?
            .into_iter()
            .map(meta)
            .collect())
    }

    async fn object(&self, collection: i64, name: &str) -> DavStoreResult<Option<DavObject>> {
        Ok(self
            .store()
            .groupware_object(collection, name)
            .await
            .map_err(err)?
            .map(object))
    }

    async fn objects(&self, collection: i64, names: &[String]) -> DavStoreResult<Vec<DavObject>> {
        Ok(self
            .store()
            .groupware_objects_by_names(collection, names)
            .await
            .map_err(err)?
            .into_iter()
            .map(object)
            .collect())
    }

    async fn put_object(
        &self,
        collection: i64,
        name: &str,
        data: Vec<u8>,
        object: NewObject,
        condition: PutCondition,
        reply: bool,
    ) -> DavStoreResult<PutOutcome> {
        let kind = object.kind();
        let store = self.store();
        let coll = self.owner_of(collection).await?;
        let existing = store
            .groupware_object_meta(collection, name)
            .await
            .map_err(err)?;
        let old = existing
            .as_ref()
            .map_or(0, |m| u64::try_from(m.size).unwrap_or(0));
        self.check_quota(coll.owner, old, data.len() as u64).await?;
        let pre = match condition {
            PutCondition::None => gw::Precondition::None,
            PutCondition::IfMatch(e) => gw::Precondition::IfMatch(e),
            PutCondition::IfNoneMatchAny => gw::Precondition::IfNoneMatchAny,
        };
        // The DAV layer ingested the source (outpost_pim, with the
        // calendar's timezone for floating times): the store keeps that
        // index, the bytes are not parsed again.
        let data: std::sync::Arc<[u8]> = data.into();
        // Only a scheduling object resource (one with an ORGANIZER, which
        // the index has) before or after the write has anything to
        // schedule or a Schedule-Tag (RFC 6638 §3.1): the others skip the
        // engine.
        let organized_before = existing.as_ref().is_some_and(|m| m.organizer.is_some());
        let organized_after =
            matches!(&object, NewObject::Calendar(o) if o.index.organizer.is_some());
        let before = if kind != ComponentKind::VCard && organized_before {
            self.before_write(collection, name).await?
        } else {
            None
        };
        let index = match object {
            NewObject::Calendar(o) => gw::Indexed::Calendar(o.index),
            NewObject::Contact(c) => gw::Indexed::Contact(*c),
        };
        // A scheduling object resource gets its Schedule-Tag with the
        // write (RFC 6638 §3.2.10; the engine says whether it changes); one
        // that stops being one loses it.
        let calendar = matches!(
            kind,
            ComponentKind::VEvent | ComponentKind::VTodo | ComponentKind::VJournal
        );
        let schedule = match &self.scheduler {
            Some(s) if calendar && organized_after => {
                let old = before
                    .as_ref()
                    .map(|o| (o.data.as_slice(), &o.meta.schedule));
                match s.client_write_state(collection, old, &data).await {
                    Ok(st) => Some(st),
                    Err(e) => {
                        tracing::warn!(collection, error = %e, "dav: no Schedule-Tag for a write");
                        None
                    }
                }
            }
            Some(_) if calendar && organized_before => Some(gw::ScheduleState::default()),
            _ => None,
        };
        let out = match schedule {
            Some(st) => {
                store
                    .put_object_scheduled(collection, name, data.clone(), index, pre, st)
                    .await
            }
            None => {
                store
                    .put_object(collection, name, data.clone(), index, pre)
                    .await
            }
        };
        match out {
            Ok(o) => {
                let o = put_outcome(o)?;
                if calendar
                    && (organized_after || before.is_some())
                    && matches!(o, PutOutcome::Created { .. } | PutOutcome::Replaced { .. })
                {
                    let old = before.as_ref().map(|o| o.data.as_slice());
                    self.after_write(coll.owner, collection, old, Some(&data), reply)
                        .await;
                }
                Ok(o)
            }
            Err(StoreError::Conflict) => Ok(PutOutcome::PreconditionFailed),
            Err(e) => Err(err(e)),
        }
    }

    async fn delete_object(
        &self,
        collection: i64,
        name: &str,
        if_match: Option<&str>,
        reply: bool,
    ) -> DavStoreResult<DeleteOutcome> {
        let pre = match if_match {
            Some(e) => gw::Precondition::IfMatch(e.to_string()),
            None => gw::Precondition::None,
        };
        let organized = self
            .store()
            .groupware_object_meta(collection, name)
            .await
            .map_err(err)?
            .is_some_and(|m| m.organizer.is_some());
        let before = if organized {
            self.before_write(collection, name).await?
        } else {
            None
        };
        match self.store().delete_object(collection, name, pre).await {
            Ok(gw::DeleteOutcome::Deleted { .. }) => {
                if let Some(old) = &before {
                    let owner = self.owner_of(collection).await?.owner;
                    self.after_write(owner, collection, Some(&old.data), None, reply)
                        .await;
                }
                Ok(DeleteOutcome::Deleted)
            }
            Ok(gw::DeleteOutcome::NotFound) => Ok(DeleteOutcome::NotFound),
            Ok(gw::DeleteOutcome::PreconditionFailed) | Err(StoreError::Conflict) => {
                Ok(DeleteOutcome::PreconditionFailed)
            }
            Ok(gw::DeleteOutcome::NotAllowed(m)) => Err(DavStoreError::Invalid(m)),
            Err(e) => Err(err(e)),
        }
    }

    async fn transfer_object(
        &self,
        from: i64,
        name: &str,
        to: i64,
        new_name: &str,
        overwrite: bool,
        remove_source: bool,
    ) -> DavStoreResult<PutOutcome> {
        let store = self.store();
        if !remove_source {
            // A copy adds its size to the owner's usage (less what it
            // overwrites).
            let src = store
                .groupware_object_meta(from, name)
                .await
                .map_err(err)?
                .ok_or_else(|| DavStoreError::NotFound(name.to_string()))?;
            let dst = self.owner_of(to).await?;
            let old = store
                .groupware_object_meta(to, new_name)
                .await
                .map_err(err)?
                .map_or(0, |m| u64::try_from(m.size).unwrap_or(0));
            self.check_quota(dst.owner, old, u64::try_from(src.size).unwrap_or(0))
                .await?;
        }
        match store
            .copy_object(from, name, to, new_name, overwrite, remove_source)
            .await
        {
            Ok(o) => put_outcome(o),
            Err(StoreError::Conflict) => Ok(PutOutcome::PreconditionFailed),
            Err(e) => Err(err(e)),
        }
    }

    async fn time_range_candidates(
        &self,
        collection: i64,
        kind: ComponentKind,
        start: Option<i64>,
        end: Option<i64>,
    ) -> DavStoreResult<Vec<Candidate>> {
        // Exact hits come from the instances table; the others (outside
        // the precomputed window, or without times) are candidates the DAV
        // layer checks itself, which the trait allows.
        Ok(self
            .store()
            .time_range_candidates(
                collection,
                start.unwrap_or(FAR_PAST),
                end.unwrap_or(FAR_FUTURE),
                Some(comp_to_store(kind)),
            )
            .await
            .map_err(err)?
            .into_iter()
            .map(|h| Candidate {
                name: h.meta.name,
                exact: h.exact,
            })
            .collect())
    }

    async fn free_busy(
        &self,
        principal: i64,
        start: i64,
        end: i64,
    ) -> DavStoreResult<Vec<BusyPeriod>> {
        Ok(self
            .store()
            .free_busy(principal, start, end)
            .await
            .map_err(err)?
            .into_iter()
            .map(busy_period)
            .collect())
    }

    async fn schedule_free_busy(
        &self,
        addresses: &[String],
        start: i64,
        end: i64,
    ) -> DavStoreResult<Vec<(String, ScheduleFreeBusy)>> {
        let Some(s) = &self.scheduler else {
            return Err(DavStoreError::Unavailable("no scheduling engine".into()));
        };
        let answers = s
            .free_busy(addresses, start, end)
            .await
            .map_err(|e| match e {
                outpost_scheduling::SchedError::Store(e) => err(e),
                other => DavStoreError::Invalid(other.to_string()),
            })?;
        Ok(answers
            .into_iter()
            .map(|(a, fb)| {
                let fb = match fb {
                    outpost_scheduling::FreeBusy::Busy(p) => {
                        ScheduleFreeBusy::Busy(p.into_iter().map(busy_period).collect())
                    }
                    outpost_scheduling::FreeBusy::NotHosted => ScheduleFreeBusy::NotHosted,
                    outpost_scheduling::FreeBusy::Unknown => ScheduleFreeBusy::Unknown,
                };
                (a, fb)
            })
            .collect())
    }

    /// Where the engine files invitations: the store's default calendar.
    async fn default_calendar(&self, owner: i64) -> DavStoreResult<Option<DavCollection>> {
        self.collection(owner, CollectionKind::Calendar, gw::DEFAULT_CALENDAR.0)
            .await
    }

    async fn search_contacts(&self, collection: i64, text: &str) -> DavStoreResult<Vec<String>> {
        // No limit: the trait allows a superset, never a subset.
        Ok(self
            .store()
            .search_contacts(&[collection], text, i64::MAX as usize)
            .await
            .map_err(err)?
            .into_iter()
            .map(|m| m.name)
            .collect())
    }

    async fn changes_since(&self, collection: i64, token: i64) -> DavStoreResult<SyncAnswer> {
        let store = self.store();
        let changes = match store.journal_since(collection, token).await.map_err(err)? {
            Since::TooOld(_) => return Ok(SyncAnswer::TooOld),
            Since::Changes(c) => c,
        };
        // The journal names the live items; their rows give names and
        // ETags. An object removed in between is left out here and its
        // tombstone (above `highest`) comes with the next sync.
        let live: std::collections::HashSet<i64> = changes
            .added
            .iter()
            .chain(&changes.changed)
            .map(|c| c.item_id)
            .collect();
        let changed = store
            .groupware_objects_since(collection, token)
            .await
            .map_err(err)?
            .into_iter()
            .filter(|m| live.contains(&m.id))
            .map(meta)
            .collect();
        let removed = changes
            .removed
            .into_iter()
            .filter_map(|t| t.name.map(|n| (n, t.modseq)))
            .collect();
        Ok(SyncAnswer::Changes {
            highest: changes.highest_modseq,
            changed,
            removed,
        })
    }

    async fn rights(&self, principal: i64, collection: i64) -> DavStoreResult<Option<Rights>> {
        let Some(c) = self
            .store()
            .groupware_collection_by_id(collection)
            .await
            .map_err(err)?
        else {
            return Ok(None);
        };
        if c.owner == principal {
            return Ok(Some(Rights::Owner));
        }
        let granted = self
            .dir
            .shared_with(principal)
            .await
            .map_err(err)?
            .into_iter()
            .find(|s| s.collection.id == collection)
            .map(|s| rights_from_store(s.rights));
        if granted.is_some() {
            return Ok(granted);
        }
        if c.read_only && c.kind == gw::CollectionKind::AddressBook && c.name == gw::GAL_NAME {
            // A GAL: readable by the users of its domain, nobody else.
            let mine = self.gal_of(principal).await?;
            return Ok(mine.filter(|g| g.id == c.id).map(|_| Rights::Read));
        }
        if c.kind == gw::CollectionKind::Calendar {
            // SOGoCalendarDefaultRoles: free/busy of a calendar is visible
            // to the organisation. Here: to the users of the owner's
            // domain (that of both primary addresses).
            let me = self.principal(principal).await?;
            let owner = self.principal(c.owner).await?;
            if let (Some(me), Some(owner)) = (me, owner) {
                let (a, b) = (domain_of_login(&me.login), domain_of_login(&owner.login));
                if a.is_some() && a == b {
                    return Ok(Some(Rights::FreeBusy));
                }
            }
        }
        Ok(None)
    }

    async fn directory_collections(
        &self,
        principal: i64,
        kind: CollectionKind,
    ) -> DavStoreResult<Vec<DavCollection>> {
        if kind != CollectionKind::AddressBook {
            return Ok(Vec::new());
        }
        Ok(self
            .gal_of(principal)
            .await?
            .map(collection)
            .into_iter()
            .collect())
    }

    async fn grants(&self, collection: i64) -> DavStoreResult<Vec<Grant>> {
        let mut out = Vec::new();
        for g in self.store().grants(collection).await.map_err(err)? {
            // A grant to a principal without a login (none today) has no
            // href to show.
            if let Some(p) = self.principal(g.grantee).await? {
                out.push(Grant {
                    grantee: g.grantee,
                    grantee_login: p.login,
                    rights: rights_from_store(g.rights),
                });
            }
        }
        Ok(out)
    }

    async fn shared_with(
        &self,
        principal: i64,
        kind: CollectionKind,
    ) -> DavStoreResult<Vec<(DavCollection, Rights)>> {
        let kind = kind_to_store(kind);
        Ok(self
            .dir
            .shared_with(principal)
            .await
            .map_err(err)?
            .into_iter()
            .filter(|s| s.collection.kind == kind)
            .map(|s| (collection(s.collection), rights_from_store(s.rights)))
            .collect())
    }
}
