//! FolderSync, FolderCreate, FolderUpdate and FolderDelete (MS-ASCMD
//! 2.2.1.3-2.2.1.6): the folder hierarchy as a view of the principal's
//! collection journal.
//!
//! The hierarchy state of a device is the folder list it was last sent.
//! When the principal's journal has not moved since, nothing changed and
//! nothing is listed; when it has, the current list is compared with the
//! device's, so a folder created and deleted in between never reaches it,
//! and a deleted folder is reported although its collection is gone.

use std::collections::BTreeMap;

use outpost_wbxml::Element;
use serde::{Deserialize, Serialize};

use crate::state;
use crate::sync::Caller;
use crate::EasBackend;

/// A folder as FolderSync shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Folder {
    pub id: i64,
    /// 0 at the top.
    pub parent: i64,
    pub name: String,
    /// MS-ASCMD 2.2.3.186.3: 2 Inbox, 3 Drafts, 4 Deleted Items, 5 Sent
    /// Items, 12 user mail folder...
    pub folder_type: u8,
}

/// What a folder holds, by its type (MS-ASCMD 2.2.3.186.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Email,
    /// 8 default calendar, 13 user calendar.
    Calendar,
    /// 9 default contacts, 14 user contacts.
    Contacts,
    /// 7 default tasks, 15 user tasks.
    Tasks,
}

impl Folder {
    pub fn class(&self) -> Class {
        match self.folder_type {
            8 | 13 => Class::Calendar,
            9 | 14 => Class::Contacts,
            7 | 15 => Class::Tasks,
            _ => Class::Email,
        }
    }
}

/// Why a folder operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FolderOpError {
    /// A sibling has the name, or the folder is a special one.
    Exists,
    Special,
    ParentMissing,
    NotFound,
    /// A type or name this server does not create.
    Invalid,
}

/// The device's view of the hierarchy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HierarchyState {
    /// The principal's journal sequence when the list was taken.
    pub seq: i64,
    pub folders: BTreeMap<i64, Folder>,
}

/// What changed between the device's list and the current one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HierarchyChanges {
    pub added: Vec<Folder>,
    pub updated: Vec<Folder>,
    pub deleted: Vec<i64>,
}

impl HierarchyChanges {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.updated.is_empty() && self.deleted.is_empty()
    }
}

/// Compares the device's folders with the current ones. Parents come
/// before their children in `added`.
pub fn diff(old: &BTreeMap<i64, Folder>, now: &[Folder]) -> HierarchyChanges {
    let mut c = HierarchyChanges::default();
    for f in parents_first(now) {
        match old.get(&f.id) {
            None => c.added.push(f.clone()),
            Some(o) if o.name != f.name || o.parent != f.parent => c.updated.push(f.clone()),
            Some(_) => {}
        }
    }
    let current: std::collections::BTreeSet<i64> = now.iter().map(|f| f.id).collect();
    c.deleted = old
        .keys()
        .filter(|id| !current.contains(id))
        .copied()
        .collect();
    c
}

fn parents_first(folders: &[Folder]) -> Vec<&Folder> {
    let by_id: BTreeMap<i64, &Folder> = folders.iter().map(|f| (f.id, f)).collect();
    let depth = |f: &Folder| {
        let mut d = 0;
        let mut p = f.parent;
        while let Some(pf) = by_id.get(&p) {
            d += 1;
            p = pf.parent;
            if d > 64 {
                break;
            }
        }
        d
    };
    let mut v: Vec<&Folder> = folders.iter().collect();
    v.sort_by_key(|f| (depth(f), f.id));
    v
}

pub fn map(folders: &[Folder]) -> BTreeMap<i64, Folder> {
    folders.iter().map(|f| (f.id, f.clone())).collect()
}

fn e(name: &str, v: impl Into<String>) -> Element {
    Element::named("FolderHierarchy", name).with_text(v)
}

fn folder_element(tag: &str, f: &Folder) -> Element {
    Element::named("FolderHierarchy", tag)
        .with(e("ServerId", f.id.to_string()))
        .with(e("ParentId", f.parent.to_string()))
        .with(e("DisplayName", f.name.clone()))
        .with(e("Type", f.folder_type.to_string()))
}

/// The FolderSync answer.
pub fn sync_answer(key: i64, c: &HierarchyChanges) -> Element {
    let count = c.added.len() + c.updated.len() + c.deleted.len();
    let mut changes =
        Element::named("FolderHierarchy", "Changes").with(e("Count", count.to_string()));
    for f in &c.updated {
        changes = changes.with(folder_element("Update", f));
    }
    for id in &c.deleted {
        changes = changes
            .with(Element::named("FolderHierarchy", "Delete").with(e("ServerId", id.to_string())));
    }
    for f in &c.added {
        changes = changes.with(folder_element("Add", f));
    }
    Element::named("FolderHierarchy", "FolderSync")
        .with(e("Status", "1"))
        .with(e("SyncKey", key.to_string()))
        .with(changes)
}

/// An answer with only a status (FolderSync, FolderCreate...).
pub fn status_answer(command: &str, status: u32) -> Element {
    Element::named("FolderHierarchy", command).with(e("Status", status.to_string()))
}

/// The text of a child, trimmed.
pub fn child_text(el: &Element, page: &str, name: &str) -> Option<String> {
    el.child(page, name).map(|c| c.text().trim().to_string())
}

/// A FolderCreate/Update/Delete request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderRequest {
    pub sync_key: String,
    pub server_id: Option<i64>,
    pub parent: Option<i64>,
    pub name: Option<String>,
    pub folder_type: Option<u8>,
}

/// Reads a folder operation's request; `None` when it is not well formed
/// (status 10).
pub fn parse_request(root: &Element, command: &str) -> Option<FolderRequest> {
    if !root.is("FolderHierarchy", command) {
        return None;
    }
    let t = |n: &str| child_text(root, "FolderHierarchy", n);
    let id = |n: &str| -> Option<Option<i64>> {
        match t(n) {
            None => Some(None),
            Some(v) => v.parse().ok().map(Some),
        }
    };
    let req = FolderRequest {
        sync_key: t("SyncKey")?,
        server_id: id("ServerId")?,
        parent: id("ParentId")?,
        name: t("DisplayName"),
        folder_type: match t("Type") {
            None => None,
            Some(v) => Some(v.parse().ok()?),
        },
    };
    let ok = match command {
        "FolderCreate" => req.parent.is_some() && req.name.is_some() && req.folder_type.is_some(),
        "FolderUpdate" => req.server_id.is_some() && req.parent.is_some() && req.name.is_some(),
        "FolderDelete" => req.server_id.is_some(),
        _ => false,
    };
    ok.then_some(req)
}

/// True when the device's folder list is not the current one (Ping
/// status 7, Sync status 12).
pub async fn hierarchy_changed(
    b: &dyn EasBackend,
    who: &Caller<'_>,
    folders: &[Folder],
) -> Result<bool, crate::BackendError> {
    let Some(stored) = b
        .sync_state(who.principal, who.device_id, state::HIERARCHY)
        .await?
    else {
        return Ok(true);
    };
    let Some(st) = stored.parse::<HierarchyState>() else {
        return Ok(true);
    };
    if st.seq == b.hierarchy_seq(who.principal).await? {
        return Ok(false);
    }
    Ok(!diff(&st.folders, folders).is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(id: i64, parent: i64, name: &str) -> Folder {
        Folder {
            id,
            parent,
            name: name.into(),
            folder_type: 12,
        }
    }

    #[test]
    fn diff_finds_adds_updates_and_deletes() {
        let old = map(&[f(1, 0, "INBOX"), f(2, 0, "Old"), f(3, 0, "Keep")]);
        let now = [
            f(1, 0, "INBOX"),
            f(3, 0, "Kept"),
            f(5, 4, "Child"),
            f(4, 0, "Parent"),
        ];
        let c = diff(&old, &now);
        assert_eq!(c.added.iter().map(|f| f.id).collect::<Vec<_>>(), vec![4, 5]);
        assert_eq!(c.updated, vec![f(3, 0, "Kept")]);
        assert_eq!(c.deleted, vec![2]);
        assert!(diff(&map(&now), &now).is_empty());
    }

    #[test]
    fn requests() {
        let root = Element::named("FolderHierarchy", "FolderCreate")
            .with(e("SyncKey", "4"))
            .with(e("ParentId", "0"))
            .with(e("DisplayName", "Projects"))
            .with(e("Type", "12"));
        let r = parse_request(&root, "FolderCreate").unwrap();
        assert_eq!((r.parent, r.folder_type), (Some(0), Some(12)));
        assert!(parse_request(&root, "FolderDelete").is_none());
        let bad = Element::named("FolderHierarchy", "FolderDelete")
            .with(e("SyncKey", "4"))
            .with(e("ServerId", "x"));
        assert!(parse_request(&bad, "FolderDelete").is_none());
    }
}
