//! Changing and syncing the folder tree (MS-OXWSFOLD, MS-OXWSSYNC):
//! CreateFolder, UpdateFolder (DisplayName), MoveFolder, CopyFolder,
//! DeleteFolder, EmptyFolder and SyncFolderHierarchy.
//!
//! Folders are created, renamed, moved and deleted through the same
//! backend calls as ActiveSync's FolderCreate/Update/Delete, so the rules
//! are the same (special folders stay). Mail folders nest; calendars,
//! address books and task lists (`IPF.Appointment`, `IPF.Contact`,
//! `IPF.Task`) are collections of the DAV store, made and deleted at the
//! top of the mailbox; only mail folders are renamed and moved. The
//! SyncFolderHierarchy `SyncState` is the principal's collection-journal
//! sequence (opaque to the client): the folders the journal names after it
//! are answered as Create, Update or Delete by what the tree holds now; a
//! sequence the journal no longer reaches gets
//! `ErrorInvalidSyncStateData`, after which clients start over.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use outpost_activesync::FolderOpError;
use outpost_xml::Element;

use super::folders::{self, folder_element, tree, EwsFolder, Kind, Resolved};
use super::{child_tm, invalid, text_of, OpResult};
use crate::ids::{self, MSG_FOLDER_ROOT};
use crate::soap::{error, response, success, NS_M, NS_T};

fn sync_error(name: &str, code: &str, text: impl Into<String>) -> Element {
    crate::soap::sync_error(name, "IncludesLastFolderInRange", code, text)
}
use crate::Ctx;

fn op_error(e: FolderOpError) -> (&'static str, &'static str) {
    match e {
        FolderOpError::Exists => (
            "ErrorFolderExists",
            "A folder with that name already exists.",
        ),
        FolderOpError::Special => (
            "ErrorDeleteDistinguishedFolder",
            "Distinguished folders cannot be changed or deleted.",
        ),
        FolderOpError::ParentMissing => (
            "ErrorParentFolderNotFound",
            "The parent folder does not exist.",
        ),
        FolderOpError::NotFound => ("ErrorFolderNotFound", "The folder does not exist."),
        FolderOpError::Invalid => (
            "ErrorInvalidOperation",
            "The folder cannot be made or changed here: it needs a plain name, and only mail folders are renamed or moved.",
        ),
    }
}

/// What a CreateFolder's folder is: by its `FolderClass` (`IPF.Note`,
/// `IPF.Appointment`, `IPF.Contact`, `IPF.Task` and their subclasses), else
/// by its element (`Folder`, `CalendarFolder`...). `None` for another
/// class (search folders, notes...).
fn class_of(f: &Element) -> Option<Kind> {
    let by_element = match f.name.local.as_str() {
        "Folder" => Kind::Mail,
        "CalendarFolder" => Kind::Calendar,
        "ContactsFolder" => Kind::Contacts,
        "TasksFolder" => Kind::Tasks,
        _ => return None,
    };
    let Some(class) = text_of(f, "FolderClass") else {
        return Some(by_element);
    };
    let is = |base: &str| class == base || class.starts_with(&format!("{base}."));
    let kind = [Kind::Mail, Kind::Calendar, Kind::Contacts, Kind::Tasks]
        .into_iter()
        .find(|k| k.folder_class().is_some_and(is))?;
    // A Folder element may carry any class; the typed ones their own.
    (by_element == Kind::Mail || by_element == kind).then_some(kind)
}

/// The ActiveSync folder type the backend creates for `kind`.
fn folder_type(kind: Kind) -> u8 {
    match kind {
        Kind::Calendar => 13,
        Kind::Contacts => 14,
        Kind::Tasks => 15,
        Kind::Mail | Kind::Root => 12,
    }
}

/// The collection id a folder is created under (0 for the top).
fn parent_number(f: &EwsFolder) -> Option<i64> {
    match f.id {
        MSG_FOLDER_ROOT | ids::ROOT => Some(0),
        id if f.kind == Kind::Mail => Some(id),
        _ => None,
    }
}

fn resolve_one<'a>(
    ctx: &Ctx<'_>,
    tree: &'a [EwsFolder],
    holder: Option<&Element>,
) -> Result<&'a EwsFolder, (&'static str, &'static str)> {
    let Some(inner) = holder.and_then(|h| h.children.first()) else {
        return Err(("ErrorInvalidIdMalformed", "No folder id was given."));
    };
    match folders::resolve(ctx, tree, inner) {
        Resolved::Found(f) => Ok(f),
        Resolved::Error(c, t) => Err((c, t)),
    }
}

pub async fn create_folder(ctx: &Ctx<'_>, op: &Element) -> OpResult {
    let list = child_tm(op, "Folders").ok_or_else(|| invalid("CreateFolder needs Folders."))?;
    let tree = tree(ctx).await?;
    let parent = resolve_one(ctx, &tree, child_tm(op, "ParentFolderId"));
    let mut messages = Vec::new();
    for f in &list.children {
        let name = text_of(f, "DisplayName").unwrap_or("");
        let kind = match class_of(f) {
            Some(k) => k,
            None => {
                messages.push(error(
                    "CreateFolder",
                    "ErrorInvalidOperation",
                    "Folders are made for mail, calendars, contacts or tasks here.",
                ));
                continue;
            }
        };
        let r = match &parent {
            Err((c, t)) => Err((*c, *t)),
            Ok(p) => match parent_number(p) {
                None => Err(op_error(FolderOpError::Invalid)),
                // Calendars, address books and task lists do not nest:
                // they are made at the top.
                Some(n) if n != 0 && kind != Kind::Mail => Err((
                    "ErrorInvalidOperation",
                    "Calendars, contacts and task folders are made at the top of the mailbox here.",
                )),
                Some(n) => match ctx
                    .backend
                    .create_folder(ctx.user.principal_id, n, name, folder_type(kind))
                    .await?
                {
                    Ok(id) => Ok(id),
                    Err(e) => Err(op_error(e)),
                },
            },
        };
        messages.push(match r {
            Ok(id) => success("CreateFolder").with(
                Element::new(NS_M, "Folders").with(
                    Element::new(NS_T, kind.element())
                        .with(folders::folder_id_element(ctx, "FolderId", id, 0)),
                ),
            ),
            Err((c, t)) => error("CreateFolder", c, t),
        });
    }
    Ok(response("CreateFolder", messages))
}

/// Renames (`UpdateFolder` with `folder:DisplayName`) or moves.
async fn rename_or_move(
    ctx: &Ctx<'_>,
    tree: &[EwsFolder],
    f: &EwsFolder,
    new_parent: Option<&EwsFolder>,
    new_name: Option<&str>,
) -> Result<Result<(), (&'static str, &'static str)>, super::OpError> {
    if f.kind != Kind::Mail || f.distinguished.is_some() {
        return Ok(Err(op_error(FolderOpError::Special)));
    }
    let parent = match new_parent {
        Some(p) => match parent_number(p) {
            Some(n) => n,
            None => return Ok(Err(op_error(FolderOpError::Invalid))),
        },
        None => match f.parent {
            Some(p) if p > 0 => p,
            _ => 0,
        },
    };
    // A folder cannot go below itself.
    let mut up = Some(parent);
    while let Some(p) = up.filter(|&p| p > 0) {
        if p == f.id {
            return Ok(Err((
                "ErrorMoveCopyFailed",
                "A folder cannot be moved below itself.",
            )));
        }
        up = tree.iter().find(|x| x.id == p).and_then(|x| x.parent);
    }
    let name = new_name.unwrap_or(&f.name);
    Ok(
        match ctx
            .backend
            .update_folder(ctx.user.principal_id, f.id, parent, name)
            .await?
        {
            Ok(()) => Ok(()),
            Err(e) => Err(op_error(e)),
        },
    )
}

pub async fn update_folder(ctx: &Ctx<'_>, op: &Element) -> OpResult {
    let changes = child_tm(op, "FolderChanges")
        .ok_or_else(|| invalid("UpdateFolder needs FolderChanges."))?;
    let tree = tree(ctx).await?;
    let mut messages = Vec::new();
    for change in &changes.children {
        let target = change
            .children
            .iter()
            .find(|c| c.is(NS_T, "FolderId") || c.is(NS_T, "DistinguishedFolderId"));
        let f = match target.map(|t| folders::resolve(ctx, &tree, t)) {
            Some(Resolved::Found(f)) => f,
            Some(Resolved::Error(c, t)) => {
                messages.push(error("UpdateFolder", c, t));
                continue;
            }
            None => {
                messages.push(error(
                    "UpdateFolder",
                    "ErrorInvalidIdMalformed",
                    "No folder id.",
                ));
                continue;
            }
        };
        // Only the display name can be set here.
        let mut name = None;
        let mut refused = None;
        for u in change
            .child(NS_T, "Updates")
            .map(|u| u.children.as_slice())
            .unwrap_or(&[])
        {
            let field = u
                .child(NS_T, "FieldURI")
                .and_then(|f| f.attr("FieldURI"))
                .unwrap_or("");
            if u.is(NS_T, "SetFolderField") && field == "folder:DisplayName" {
                name = u
                    .children
                    .iter()
                    .find_map(|c| text_of(c, "DisplayName"))
                    .map(str::to_string);
            } else {
                refused = Some(field.to_string());
            }
        }
        let r = match (refused, name) {
            (Some(field), _) => Err(("ErrorInvalidPropertySet", {
                tracing::debug!("ews: UpdateFolder of {field:?} refused");
                "Only folder:DisplayName can be set."
            })),
            (None, None) => Err(("ErrorInvalidPropertySet", "Nothing to change.")),
            (None, Some(n)) => rename_or_move(ctx, &tree, f, None, Some(&n)).await?,
        };
        messages.push(match r {
            Ok(()) => success("UpdateFolder").with(
                Element::new(NS_M, "Folders").with(
                    Element::new(NS_T, f.kind.element())
                        .with(folders::folder_id_element(ctx, "FolderId", f.id, 0)),
                ),
            ),
            Err((c, t)) => error("UpdateFolder", c, t),
        });
    }
    Ok(response("UpdateFolder", messages))
}

pub async fn move_folder(ctx: &Ctx<'_>, op: &Element) -> OpResult {
    let ids = child_tm(op, "FolderIds").ok_or_else(|| invalid("MoveFolder needs FolderIds."))?;
    let tree = tree(ctx).await?;
    let to = resolve_one(ctx, &tree, child_tm(op, "ToFolderId"));
    let mut messages = Vec::new();
    for id in &ids.children {
        let r = match (&to, folders::resolve(ctx, &tree, id)) {
            (Err((c, t)), _) => Err((*c, *t)),
            (_, Resolved::Error(c, t)) => Err((c, t)),
            (Ok(to), Resolved::Found(f)) => rename_or_move(ctx, &tree, f, Some(to), None).await?,
        };
        messages.push(match r {
            Ok(()) => {
                let f = match folders::resolve(ctx, &tree, id) {
                    Resolved::Found(f) => f.id,
                    Resolved::Error(..) => 0,
                };
                success("MoveFolder").with(
                    Element::new(NS_M, "Folders").with(
                        Element::new(NS_T, "Folder")
                            .with(folders::folder_id_element(ctx, "FolderId", f, 0)),
                    ),
                )
            }
            Err((c, t)) => error("MoveFolder", c, t),
        });
    }
    Ok(response("MoveFolder", messages))
}

/// Copies mail folder `f` (its messages, then its subfolders) under the
/// folder numbered `parent` (0: the top): the new folder's id.
async fn copy_tree(
    ctx: &Ctx<'_>,
    tree: &[EwsFolder],
    f: &EwsFolder,
    parent: i64,
    depth: usize,
) -> Result<Result<i64, (&'static str, &'static str)>, super::OpError> {
    let principal = ctx.user.principal_id;
    if f.kind != Kind::Mail || f.id < 0 || depth > 32 {
        return Ok(Err(op_error(FolderOpError::Invalid)));
    }
    let id = match ctx
        .backend
        .create_folder(principal, parent, &f.name, 12)
        .await?
    {
        Ok(id) => id,
        Err(e) => return Ok(Err(op_error(e))),
    };
    let mut below = i64::MAX;
    loop {
        let batch = ctx
            .backend
            .mail_below(principal, f.id, below, i64::MIN, 1000)
            .await?;
        let Some(last) = batch.last() else { break };
        below = last.uid;
        let uids: Vec<i64> = batch.iter().map(|m| m.uid).collect();
        ctx.backend.copy_mail(principal, f.id, &uids, id).await?;
        if batch.len() < 1000 {
            break;
        }
    }
    for sub in folders::below(tree, f.id, false) {
        if let Err(e) = Box::pin(copy_tree(ctx, tree, sub, id, depth + 1)).await? {
            return Ok(Err(e));
        }
    }
    Ok(Ok(id))
}

/// CopyFolder: a copy of each mail folder, its messages and subfolders,
/// under the target.
pub async fn copy_folder(ctx: &Ctx<'_>, op: &Element) -> OpResult {
    let ids = child_tm(op, "FolderIds").ok_or_else(|| invalid("CopyFolder needs FolderIds."))?;
    let tree = tree(ctx).await?;
    let to = resolve_one(ctx, &tree, child_tm(op, "ToFolderId"));
    let mut messages = Vec::new();
    for id in &ids.children {
        let r = match (&to, folders::resolve(ctx, &tree, id)) {
            (Err((c, t)), _) => Err((*c, *t)),
            (_, Resolved::Error(c, t)) => Err((c, t)),
            (Ok(to), Resolved::Found(f)) => match parent_number(to) {
                None => Err(op_error(FolderOpError::Invalid)),
                // Not into itself or below it.
                Some(p)
                    if p == f.id || folders::below(&tree, f.id, true).iter().any(|x| x.id == p) =>
                {
                    Err((
                        "ErrorMoveCopyFailed",
                        "A folder cannot be copied into itself.",
                    ))
                }
                Some(p) => copy_tree(ctx, &tree, f, p, 0).await?,
            },
        };
        messages.push(match r {
            Ok(new) => success("CopyFolder").with(
                Element::new(NS_M, "Folders").with(
                    Element::new(NS_T, "Folder")
                        .with(folders::folder_id_element(ctx, "FolderId", new, 0)),
                ),
            ),
            Err((c, t)) => error("CopyFolder", c, t),
        });
    }
    Ok(response("CopyFolder", messages))
}

pub async fn delete_folder(ctx: &Ctx<'_>, op: &Element) -> OpResult {
    let ids = child_tm(op, "FolderIds").ok_or_else(|| invalid("DeleteFolder needs FolderIds."))?;
    let tree = tree(ctx).await?;
    let mut messages = Vec::new();
    for id in &ids.children {
        let r = match folders::resolve(ctx, &tree, id) {
            Resolved::Error(c, t) => Err((c, t)),
            Resolved::Found(f) if f.distinguished.is_some() || f.kind == Kind::Root => {
                Err(op_error(FolderOpError::Special))
            }
            Resolved::Found(f) => {
                match ctx
                    .backend
                    .delete_folder(ctx.user.principal_id, f.id)
                    .await?
                {
                    Ok(()) => Ok(()),
                    Err(e) => Err(op_error(e)),
                }
            }
        };
        messages.push(match r {
            Ok(()) => success("DeleteFolder"),
            Err((c, t)) => error("DeleteFolder", c, t),
        });
    }
    Ok(response("DeleteFolder", messages))
}

/// EmptyFolder: every message of a mail folder removed for good
/// (HardDelete) or moved to Deleted Items; with `DeleteSubFolders` its
/// subfolders go too.
pub async fn empty_folder(ctx: &Ctx<'_>, op: &Element) -> OpResult {
    let ids = child_tm(op, "FolderIds").ok_or_else(|| invalid("EmptyFolder needs FolderIds."))?;
    let how = op.attr("DeleteType").unwrap_or("HardDelete");
    let subfolders = op.attr("DeleteSubFolders") == Some("true");
    let tree = tree(ctx).await?;
    let trash = tree
        .iter()
        .find(|f| f.distinguished == Some("deleteditems"))
        .map(|f| f.id);
    let principal = ctx.user.principal_id;
    let mut messages = Vec::new();
    for id in &ids.children {
        let f = match folders::resolve(ctx, &tree, id) {
            Resolved::Error(c, t) => {
                messages.push(error("EmptyFolder", c, t));
                continue;
            }
            Resolved::Found(f) if f.kind != Kind::Mail => {
                messages.push(error(
                    "EmptyFolder",
                    "ErrorCannotEmptyFolder",
                    "Only mail folders can be emptied here.",
                ));
                continue;
            }
            Resolved::Found(f) => f,
        };
        loop {
            let batch = ctx
                .backend
                .mail_below(principal, f.id, i64::MAX, i64::MIN, 1000)
                .await?;
            if batch.is_empty() {
                break;
            }
            let uids: Vec<i64> = batch.iter().map(|m| m.uid).collect();
            match trash {
                Some(t) if how != "HardDelete" && t != f.id => {
                    ctx.backend.move_mail(principal, f.id, &uids, t).await?;
                }
                _ => {
                    ctx.backend.expunge_mail(principal, f.id, &uids).await?;
                }
            }
            if batch.len() < 1000 {
                break;
            }
        }
        if subfolders {
            // Children before their parents.
            let mut below = folders::below(&tree, f.id, true);
            below.reverse();
            for sub in below {
                let _ = ctx.backend.delete_folder(principal, sub.id).await?;
            }
        }
        messages.push(success("EmptyFolder"));
    }
    Ok(response("EmptyFolder", messages))
}

fn sync_state(seq: i64) -> String {
    let mut b = vec![1u8, b'H'];
    b.extend_from_slice(&seq.to_be_bytes());
    STANDARD.encode(b)
}

fn read_sync_state(s: &str) -> Option<i64> {
    let b = STANDARD.decode(s.trim()).ok()?;
    match (b.first(), b.get(1), b.len()) {
        (Some(1), Some(b'H'), 10) => Some(i64::from_be_bytes(b[2..10].try_into().ok()?)),
        _ => None,
    }
}

pub async fn sync_folder_hierarchy(ctx: &Ctx<'_>, op: &Element) -> OpResult {
    let principal = ctx.user.principal_id;
    let name = "SyncFolderHierarchy";
    let tree = tree(ctx).await?;
    // The folder whose descendants are synced (the whole tree by default).
    let top = match child_tm(op, "SyncFolderId").and_then(|h| h.children.first()) {
        None => ids::ROOT,
        Some(el) => match folders::resolve(ctx, &tree, el) {
            Resolved::Found(f) => f.id,
            Resolved::Error(c, t) => return Ok(response(name, vec![sync_error(name, c, t)])),
        },
    };
    let in_scope: Vec<&EwsFolder> = folders::below(&tree, top, true);
    let shape = child_tm(op, "FolderShape");
    let state = child_tm(op, "SyncState")
        .map(|s| s.text.trim())
        .filter(|s| !s.is_empty());
    let mut changes = Element::new(NS_M, "Changes");
    let highest;
    match state {
        None => {
            highest = ctx.backend.hierarchy_seq(principal).await?;
            for f in &in_scope {
                let info = folders::info_of(ctx, f).await?;
                changes.push(
                    Element::new(NS_T, "Create").with(folder_element(ctx, &tree, f, info, shape)),
                );
            }
        }
        Some(s) => {
            let Some(since) = read_sync_state(s) else {
                return Ok(response(
                    name,
                    vec![sync_error(
                        name,
                        "ErrorInvalidSyncStateData",
                        "The SyncState is not one this server gave.",
                    )],
                ));
            };
            let Some((seq, changed)) = ctx.backend.hierarchy_changes(principal, since).await?
            else {
                return Ok(response(
                    name,
                    vec![sync_error(
                        name,
                        "ErrorInvalidSyncStateData",
                        "The SyncState is too old; sync again from the start.",
                    )],
                ));
            };
            highest = seq;
            for (id, created) in changed {
                match in_scope.iter().find(|f| f.id == id) {
                    Some(f) => {
                        let info = folders::info_of(ctx, f).await?;
                        let kind = if created { "Create" } else { "Update" };
                        changes.push(
                            Element::new(NS_T, kind)
                                .with(folder_element(ctx, &tree, f, info, shape)),
                        );
                    }
                    // Gone, or moved out of the synced part; one
                    // created and gone since the state was never seen.
                    None => {
                        let exists = tree.iter().any(|f| f.id == id);
                        if exists || !created {
                            changes.push(
                                Element::new(NS_T, "Delete")
                                    .with(folders::folder_id_element(ctx, "FolderId", id, 0)),
                            );
                        }
                    }
                }
            }
        }
    }
    Ok(response(
        name,
        vec![success(name)
            .with(Element::new(NS_M, "SyncState").with_text(sync_state(highest)))
            .with(Element::new(NS_M, "IncludesLastFolderInRange").with_text("true"))
            .with(changes)],
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn sync_states_round_trip() {
        assert_eq!(super::read_sync_state(&super::sync_state(42)), Some(42));
        assert_eq!(super::read_sync_state("AAAA"), None);
        assert_eq!(super::read_sync_state(&crate::ids::change_key(42)), None);
    }
}
