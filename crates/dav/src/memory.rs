//! An in-memory [`DavStore`] for the crate's tests and the dev server. It
//! keeps what the real store keeps where DAV can see it: one modseq per
//! change and collection, tombstones with a floor below which the journal
//! no longer answers, UID uniqueness per collection, strong ETags from the
//! content hash, grants.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use outpost_pim::{InstanceStatus, Window};

use crate::content;
use crate::store::*;

#[derive(Clone)]
struct Obj {
    meta: ObjectMeta,
    data: Vec<u8>,
}

struct Coll {
    c: DavCollection,
    objects: BTreeMap<String, Obj>,
    /// name -> modseq of removal.
    tombstones: BTreeMap<String, i64>,
    floor: i64,
}

#[derive(Default)]
struct Inner {
    principals: Vec<(DavPrincipal, Option<u64>)>,
    colls: BTreeMap<i64, Coll>,
    next_id: i64,
    grants: Vec<(i64, i64, Rights)>,
}

#[derive(Default)]
pub struct MemDavStore {
    inner: Mutex<Inner>,
}

pub fn etag_of(data: &[u8]) -> String {
    hex::encode(&Sha256::digest(data)[..16])
}

impl MemDavStore {
    pub fn new() -> MemDavStore {
        MemDavStore::default()
    }

    /// Adds a principal; returns its id.
    pub fn add_principal(&self, login: &str, addresses: &[&str], quota: Option<u64>) -> i64 {
        let mut g = self.inner.lock().unwrap();
        let id = g.principals.len() as i64 + 1;
        let mut addrs = vec![login.to_string()];
        addrs.extend(addresses.iter().map(|s| s.to_string()));
        g.principals.push((
            DavPrincipal {
                id,
                login: login.into(),
                display_name: None,
                addresses: addrs,
                calendar_user_type: "INDIVIDUAL".into(),
            },
            quota,
        ));
        id
    }

    pub fn grant(&self, collection: i64, grantee: i64, rights: Rights) {
        self.inner
            .lock()
            .unwrap()
            .grants
            .push((collection, grantee, rights));
    }

    /// Drops tombstones up to the collection's current modseq and raises
    /// the floor, as the store's sweep does.
    pub fn prune_journal(&self, collection: i64) {
        let mut g = self.inner.lock().unwrap();
        if let Some(c) = g.colls.get_mut(&collection) {
            c.tombstones.clear();
            c.floor = c.c.ctag;
        }
    }

    /// Makes a collection read-only (as the GAL is).
    pub fn set_read_only(&self, collection: i64) {
        if let Some(c) = self.inner.lock().unwrap().colls.get_mut(&collection) {
            c.c.read_only = true;
        }
    }

    pub fn object_count(&self, collection: i64) -> usize {
        self.inner
            .lock()
            .unwrap()
            .colls
            .get(&collection)
            .map_or(0, |c| c.objects.len())
    }
}

fn put_into(
    c: &mut Coll,
    name: &str,
    data: Vec<u8>,
    uid: &str,
    kind: ComponentKind,
    condition: &PutCondition,
) -> PutOutcome {
    let existing = c.objects.get(name);
    match (condition, existing) {
        (PutCondition::IfMatch(e), Some(o)) if &o.meta.etag != e => {
            return PutOutcome::PreconditionFailed
        }
        (PutCondition::IfMatch(_), None) => return PutOutcome::PreconditionFailed,
        (PutCondition::IfNoneMatchAny, Some(_)) => return PutOutcome::PreconditionFailed,
        _ => {}
    }
    if let Some((n, _)) = c
        .objects
        .iter()
        .find(|(n, o)| o.meta.uid == uid && n.as_str() != name)
    {
        return PutOutcome::UidConflict {
            existing: n.clone(),
        };
    }
    let replaced = existing.is_some();
    c.c.ctag += 1;
    let etag = etag_of(&data);
    let meta = ObjectMeta {
        name: name.into(),
        etag: etag.clone(),
        modseq: c.c.ctag,
        uid: uid.into(),
        kind,
        size: data.len() as u64,
        schedule_tag: None,
    };
    c.tombstones.remove(name);
    c.objects.insert(name.into(), Obj { meta, data });
    if replaced {
        PutOutcome::Replaced { etag }
    } else {
        PutOutcome::Created { etag }
    }
}

fn remove_from(c: &mut Coll, name: &str) {
    if c.objects.remove(name).is_some() {
        c.c.ctag += 1;
        c.tombstones.insert(name.into(), c.c.ctag);
    }
}

#[async_trait]
impl DavStore for MemDavStore {
    async fn principal_by_login(&self, login: &str) -> DavStoreResult<Option<DavPrincipal>> {
        let g = self.inner.lock().unwrap();
        Ok(g.principals
            .iter()
            .find(|(p, _)| p.login.eq_ignore_ascii_case(login))
            .map(|(p, _)| p.clone()))
    }

    async fn principal(&self, id: i64) -> DavStoreResult<Option<DavPrincipal>> {
        let g = self.inner.lock().unwrap();
        Ok(g.principals
            .iter()
            .find(|(p, _)| p.id == id)
            .map(|(p, _)| p.clone()))
    }

    async fn search_principals(
        &self,
        text: &str,
        limit: usize,
    ) -> DavStoreResult<Vec<DavPrincipal>> {
        let t = text.to_lowercase();
        let g = self.inner.lock().unwrap();
        Ok(g.principals
            .iter()
            .map(|(p, _)| p)
            .filter(|p| {
                p.display_name
                    .as_deref()
                    .is_some_and(|n| n.to_lowercase().contains(&t))
                    || p.addresses.iter().any(|a| a.to_lowercase().contains(&t))
            })
            .take(limit)
            .cloned()
            .collect())
    }

    async fn quota(&self, principal: i64) -> DavStoreResult<Quota> {
        let g = self.inner.lock().unwrap();
        let used: u64 = g
            .colls
            .values()
            .filter(|c| c.c.owner == principal)
            .flat_map(|c| c.objects.values())
            .map(|o| o.meta.size)
            .sum();
        let limit = g
            .principals
            .iter()
            .find(|(p, _)| p.id == principal)
            .and_then(|(_, q)| *q);
        Ok(Quota {
            used_bytes: used,
            available_bytes: limit.map(|l| l.saturating_sub(used)),
        })
    }

    async fn ensure_defaults(&self, owner: i64) -> DavStoreResult<()> {
        let defaults: [(CollectionKind, &str, &str, Vec<ComponentKind>); 3] = [
            (
                CollectionKind::Calendar,
                "personal",
                "Personal Calendar",
                vec![ComponentKind::VEvent],
            ),
            (
                CollectionKind::Calendar,
                "tasks",
                "Tasks",
                vec![ComponentKind::VTodo],
            ),
            (
                CollectionKind::AddressBook,
                "personal",
                "Personal Address Book",
                vec![],
            ),
        ];
        for (kind, name, display, components) in defaults {
            let new = NewCollection {
                name: name.into(),
                display_name: Some(display.into()),
                components,
                ..NewCollection::default()
            };
            match self.create_collection(owner, kind, new).await {
                Ok(_) | Err(DavStoreError::Exists(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn list_collections(
        &self,
        owner: i64,
        kind: CollectionKind,
    ) -> DavStoreResult<Vec<DavCollection>> {
        let g = self.inner.lock().unwrap();
        let mut v: Vec<_> = g
            .colls
            .values()
            .filter(|c| c.c.owner == owner && c.c.kind == kind)
            .map(|c| c.c.clone())
            .collect();
        v.sort_by(|a, b| (a.order, &a.name).cmp(&(b.order, &b.name)));
        Ok(v)
    }

    async fn collection(
        &self,
        owner: i64,
        kind: CollectionKind,
        name: &str,
    ) -> DavStoreResult<Option<DavCollection>> {
        let g = self.inner.lock().unwrap();
        Ok(g.colls
            .values()
            .find(|c| c.c.owner == owner && c.c.kind == kind && c.c.name == name)
            .map(|c| c.c.clone()))
    }

    async fn collection_by_id(&self, id: i64) -> DavStoreResult<Option<DavCollection>> {
        Ok(self
            .inner
            .lock()
            .unwrap()
            .colls
            .get(&id)
            .map(|c| c.c.clone()))
    }

    async fn create_collection(
        &self,
        owner: i64,
        kind: CollectionKind,
        new: NewCollection,
    ) -> DavStoreResult<DavCollection> {
        let mut g = self.inner.lock().unwrap();
        if g.colls
            .values()
            .any(|c| c.c.owner == owner && c.c.kind == kind && c.c.name == new.name)
        {
            return Err(DavStoreError::Exists(new.name));
        }
        g.next_id += 1;
        let id = g.next_id;
        let components = match kind {
            CollectionKind::AddressBook => Vec::new(),
            CollectionKind::Calendar if new.components.is_empty() => {
                vec![
                    ComponentKind::VEvent,
                    ComponentKind::VTodo,
                    ComponentKind::VJournal,
                ]
            }
            CollectionKind::Calendar => new.components,
        };
        let c = DavCollection {
            id,
            owner,
            kind,
            name: new.name,
            display_name: new.display_name,
            color: new.color,
            description: new.description,
            timezone: new.timezone,
            components,
            order: new.order,
            ctag: 1,
            read_only: false,
        };
        g.colls.insert(
            id,
            Coll {
                c: c.clone(),
                objects: BTreeMap::new(),
                tombstones: BTreeMap::new(),
                floor: 1,
            },
        );
        Ok(c)
    }

    async fn update_collection(
        &self,
        id: i64,
        p: CollectionPatch,
    ) -> DavStoreResult<DavCollection> {
        let mut g = self.inner.lock().unwrap();
        let c = g
            .colls
            .get_mut(&id)
            .ok_or_else(|| DavStoreError::NotFound(format!("collection {id}")))?;
        if let Some(v) = p.display_name {
            c.c.display_name = v;
        }
        if let Some(v) = p.color {
            c.c.color = v;
        }
        if let Some(v) = p.description {
            c.c.description = v;
        }
        if let Some(v) = p.timezone {
            c.c.timezone = v;
        }
        if let Some(v) = p.order {
            c.c.order = v;
        }
        c.c.ctag += 1;
        Ok(c.c.clone())
    }

    async fn delete_collection(&self, id: i64) -> DavStoreResult<()> {
        let mut g = self.inner.lock().unwrap();
        g.grants.retain(|(c, _, _)| *c != id);
        g.colls
            .remove(&id)
            .map(|_| ())
            .ok_or_else(|| DavStoreError::NotFound(format!("collection {id}")))
    }

    async fn list_objects(&self, collection: i64) -> DavStoreResult<Vec<ObjectMeta>> {
        let g = self.inner.lock().unwrap();
        Ok(g.colls
            .get(&collection)
            .map(|c| c.objects.values().map(|o| o.meta.clone()).collect())
            .unwrap_or_default())
    }

    async fn object(&self, collection: i64, name: &str) -> DavStoreResult<Option<DavObject>> {
        let g = self.inner.lock().unwrap();
        Ok(g.colls
            .get(&collection)
            .and_then(|c| c.objects.get(name))
            .map(|o| DavObject {
                meta: o.meta.clone(),
                data: o.data.clone(),
            }))
    }

    async fn objects(&self, collection: i64, names: &[String]) -> DavStoreResult<Vec<DavObject>> {
        let g = self.inner.lock().unwrap();
        let Some(c) = g.colls.get(&collection) else {
            return Ok(Vec::new());
        };
        Ok(names
            .iter()
            .filter_map(|n| c.objects.get(n))
            .map(|o| DavObject {
                meta: o.meta.clone(),
                data: o.data.clone(),
            })
            .collect())
    }

    async fn put_object(
        &self,
        collection: i64,
        name: &str,
        data: Vec<u8>,
        object: NewObject,
        condition: PutCondition,
        _reply: bool,
    ) -> DavStoreResult<PutOutcome> {
        let mut g = self.inner.lock().unwrap();
        let owner = g
            .colls
            .get(&collection)
            .ok_or_else(|| DavStoreError::NotFound(format!("collection {collection}")))?
            .c
            .owner;
        let quota = g
            .principals
            .iter()
            .find(|(p, _)| p.id == owner)
            .and_then(|(_, q)| *q);
        if let Some(q) = quota {
            let used: u64 = g
                .colls
                .values()
                .filter(|c| c.c.owner == owner)
                .flat_map(|c| c.objects.values().map(move |o| (c.c.id, o)))
                // The version being replaced does not count.
                .filter(|(cid, o)| !(*cid == collection && o.meta.name == name))
                .map(|(_, o)| o.meta.size)
                .sum();
            if used + data.len() as u64 > q {
                return Err(DavStoreError::Full("quota exceeded".into()));
            }
        }
        let c = g.colls.get_mut(&collection).unwrap();
        Ok(put_into(
            c,
            name,
            data,
            object.uid(),
            object.kind(),
            &condition,
        ))
    }

    async fn delete_object(
        &self,
        collection: i64,
        name: &str,
        if_match: Option<&str>,
        _reply: bool,
    ) -> DavStoreResult<DeleteOutcome> {
        let mut g = self.inner.lock().unwrap();
        let c = g
            .colls
            .get_mut(&collection)
            .ok_or_else(|| DavStoreError::NotFound(format!("collection {collection}")))?;
        match c.objects.get(name) {
            None => Ok(DeleteOutcome::NotFound),
            Some(o) if if_match.is_some_and(|e| e != o.meta.etag) => {
                Ok(DeleteOutcome::PreconditionFailed)
            }
            Some(_) => {
                remove_from(c, name);
                Ok(DeleteOutcome::Deleted)
            }
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
        let mut g = self.inner.lock().unwrap();
        let src = g
            .colls
            .get(&from)
            .and_then(|c| c.objects.get(name))
            .cloned()
            .ok_or_else(|| DavStoreError::NotFound(name.into()))?;
        let dst = g
            .colls
            .get_mut(&to)
            .ok_or_else(|| DavStoreError::NotFound(format!("collection {to}")))?;
        let cond = if overwrite {
            PutCondition::None
        } else {
            PutCondition::IfNoneMatchAny
        };
        if from == to && name == new_name {
            return Ok(PutOutcome::PreconditionFailed);
        }
        // Moving inside one collection keeps the UID: drop the source first.
        if from == to && remove_source {
            if !overwrite && dst.objects.contains_key(new_name) {
                return Ok(PutOutcome::PreconditionFailed);
            }
            remove_from(dst, name);
        }
        let out = put_into(dst, new_name, src.data, &src.meta.uid, src.meta.kind, &cond);
        if remove_source
            && from != to
            && matches!(
                out,
                PutOutcome::Created { .. } | PutOutcome::Replaced { .. }
            )
        {
            remove_from(g.colls.get_mut(&from).unwrap(), name);
        }
        Ok(out)
    }

    async fn time_range_candidates(
        &self,
        collection: i64,
        kind: ComponentKind,
        start: Option<i64>,
        end: Option<i64>,
    ) -> DavStoreResult<Vec<Candidate>> {
        // The real store reads its instances table; here every object of
        // the kind is parsed (a superset is allowed by the trait), and no
        // candidate is exact (the window is widened for floating times).
        let g = self.inner.lock().unwrap();
        let Some(c) = g.colls.get(&collection) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for o in c.objects.values().filter(|o| o.meta.kind == kind) {
            let Some(cal) = content::stored_calendar(&o.data, &content::read_options(None)) else {
                continue;
            };
            // Floating times read in any zone: widen by the largest offsets.
            let (s, e) = (start.map(|s| s - 14 * 3600), end.map(|e| e + 14 * 3600));
            let Ok(x) = cal.expand(Window::between(s, e), &content::read_limits()) else {
                continue;
            };
            // An object without any time (a VTODO without dates) matches
            // every range.
            let timeless = cal
                .tree()
                .children
                .iter()
                .filter(|c| matches!(c.name.as_str(), "VEVENT" | "VTODO" | "VJOURNAL"))
                .all(|c| {
                    !c.props
                        .iter()
                        .any(|p| matches!(p.name.as_str(), "DTSTART" | "DUE" | "DTEND"))
                });
            if timeless || !x.instances.is_empty() {
                out.push(Candidate {
                    name: o.meta.name.clone(),
                    exact: false,
                });
            }
        }
        Ok(out)
    }

    async fn schedule_free_busy(
        &self,
        addresses: &[String],
        start: i64,
        end: i64,
    ) -> DavStoreResult<Vec<(String, ScheduleFreeBusy)>> {
        let mut out = Vec::new();
        for a in addresses {
            let a = a.trim();
            let a = a
                .strip_prefix("mailto:")
                .or_else(|| a.strip_prefix("MAILTO:"))
                .unwrap_or(a)
                .to_lowercase();
            let who = {
                let g = self.inner.lock().unwrap();
                g.principals
                    .iter()
                    .find(|(p, _)| p.addresses.iter().any(|x| x.eq_ignore_ascii_case(&a)))
                    .map(|(p, _)| p.id)
            };
            let fb = match who {
                Some(id) => ScheduleFreeBusy::Busy(self.free_busy(id, start, end).await?),
                // The memory store hosts `example.com`, like the tests do.
                None if a.ends_with("@example.com") => ScheduleFreeBusy::Unknown,
                None => ScheduleFreeBusy::NotHosted,
            };
            out.push((a, fb));
        }
        Ok(out)
    }

    async fn free_busy(
        &self,
        principal: i64,
        start: i64,
        end: i64,
    ) -> DavStoreResult<Vec<BusyPeriod>> {
        let g = self.inner.lock().unwrap();
        let mut out = Vec::new();
        for c in g
            .colls
            .values()
            .filter(|c| c.c.owner == principal && c.c.kind == CollectionKind::Calendar)
        {
            for o in c
                .objects
                .values()
                .filter(|o| o.meta.kind == ComponentKind::VEvent)
            {
                let Some(cal) = content::stored_calendar(
                    &o.data,
                    &content::read_options(c.c.timezone.as_deref()),
                ) else {
                    continue;
                };
                let Ok(x) = cal.expand(Window { start, end }, &content::read_limits()) else {
                    continue;
                };
                for i in x.instances {
                    if i.transparent || i.status == InstanceStatus::Cancelled {
                        continue;
                    }
                    if i.end > start && i.start < end {
                        let kind = if i.status == InstanceStatus::Tentative {
                            BusyType::Tentative
                        } else {
                            BusyType::Busy
                        };
                        out.push(BusyPeriod {
                            start: i.start.max(start),
                            end: i.end.min(end),
                            kind,
                        });
                    }
                }
            }
        }
        out.sort_by_key(|p| (p.start, p.end));
        Ok(out)
    }

    async fn search_contacts(&self, collection: i64, text: &str) -> DavStoreResult<Vec<String>> {
        let g = self.inner.lock().unwrap();
        let t = text.to_lowercase();
        Ok(g.colls
            .get(&collection)
            .map(|c| {
                c.objects
                    .values()
                    .filter(|o| String::from_utf8_lossy(&o.data).to_lowercase().contains(&t))
                    .map(|o| o.meta.name.clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn changes_since(&self, collection: i64, token: i64) -> DavStoreResult<SyncAnswer> {
        let g = self.inner.lock().unwrap();
        let c = g
            .colls
            .get(&collection)
            .ok_or_else(|| DavStoreError::NotFound(format!("collection {collection}")))?;
        if token < c.floor || token > c.c.ctag {
            return Ok(SyncAnswer::TooOld);
        }
        let mut changed: Vec<ObjectMeta> = c
            .objects
            .values()
            .filter(|o| o.meta.modseq > token)
            .map(|o| o.meta.clone())
            .collect();
        changed.sort_by_key(|m| m.modseq);
        let removed = c
            .tombstones
            .iter()
            .filter(|(_, m)| **m > token)
            .map(|(n, m)| (n.clone(), *m))
            .collect();
        Ok(SyncAnswer::Changes {
            highest: c.c.ctag,
            changed,
            removed,
        })
    }

    async fn rights(&self, principal: i64, collection: i64) -> DavStoreResult<Option<Rights>> {
        let g = self.inner.lock().unwrap();
        let Some(c) = g.colls.get(&collection) else {
            return Ok(None);
        };
        if c.c.owner == principal {
            return Ok(Some(Rights::Owner));
        }
        Ok(g.grants
            .iter()
            .filter(|(c, p, _)| *c == collection && *p == principal)
            .map(|(_, _, r)| *r)
            .max())
    }

    async fn grants(&self, collection: i64) -> DavStoreResult<Vec<Grant>> {
        let g = self.inner.lock().unwrap();
        Ok(g.grants
            .iter()
            .filter(|(c, _, _)| *c == collection)
            .filter_map(|(_, p, r)| {
                let login = g
                    .principals
                    .iter()
                    .find(|(x, _)| x.id == *p)?
                    .0
                    .login
                    .clone();
                Some(Grant {
                    grantee: *p,
                    grantee_login: login,
                    rights: *r,
                })
            })
            .collect())
    }

    async fn shared_with(
        &self,
        principal: i64,
        kind: CollectionKind,
    ) -> DavStoreResult<Vec<(DavCollection, Rights)>> {
        let g = self.inner.lock().unwrap();
        Ok(g.grants
            .iter()
            .filter(|(_, p, _)| *p == principal)
            .filter_map(|(c, _, r)| {
                g.colls
                    .get(c)
                    .filter(|c| c.c.kind == kind)
                    .map(|c| (c.c.clone(), *r))
            })
            .collect())
    }
}
