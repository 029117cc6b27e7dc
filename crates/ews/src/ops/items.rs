//! The item operations (MS-OXWSCORE): FindItem, GetItem, CreateItem,
//! UpdateItem, DeleteItem, MoveItem, CopyItem. This module reads what is
//! common to every item class (ids, the target folder, one response
//! message per item) and hands each item to its class: messages to
//! [`super::mail`], calendar items, contacts and tasks to [`super::pim`].

use outpost_xml::Element;

use super::folders::{self, EwsFolder, Kind, Resolved};
use super::{child_tm, invalid, mail, pim, OpResult};
use crate::ids::{self, Decoded};
use crate::soap::{error, response, success, NS_M, NS_T};
use crate::Ctx;

/// Why one item of a request failed: its response message's code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemError {
    pub code: &'static str,
    pub text: String,
}

impl ItemError {
    pub fn new(code: &'static str, text: impl Into<String>) -> ItemError {
        ItemError {
            code,
            text: text.into(),
        }
    }

    pub fn not_found() -> ItemError {
        ItemError::new(
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        )
    }
}

/// What one item's handler returns: the elements of its response message
/// (e.g. `m:Items` with the item) or why it failed.
pub type ItemResult = Result<Result<Vec<Element>, ItemError>, super::OpError>;

/// An item of the user's: the folder it is in and its number there.
#[derive(Debug, Clone)]
pub struct ItemRef<'a> {
    pub folder: &'a EwsFolder,
    pub item: i64,
    /// The modseq of the `ChangeKey` the client sent, if any.
    pub change_key: Option<i64>,
}

/// Resolves a `t:ItemId` (or `t:OccurrenceItemId`'s recurring master's
/// id, read by the class) against the tree.
pub fn resolve_item<'a>(
    ctx: &Ctx<'_>,
    tree: &'a [EwsFolder],
    el: &Element,
) -> Result<ItemRef<'a>, ItemError> {
    let id = el
        .attr("Id")
        .or_else(|| el.attr("RecurringMasterId"))
        .or_else(|| el.attr("OccurrenceId"))
        .ok_or_else(|| ItemError::new("ErrorInvalidIdMalformed", "The item id has no Id."))?;
    match ids::decode(id) {
        // An occurrence's id names its item; the class reads the rest.
        Some(
            Decoded::Item {
                owner,
                collection,
                item,
            }
            | Decoded::Occurrence {
                owner,
                collection,
                item,
                ..
            },
        ) => {
            if owner != ctx.user.principal_id {
                return Err(ItemError::new(
                    "ErrorAccessDenied",
                    "The item is not one of this mailbox's.",
                ));
            }
            let folder = tree
                .iter()
                .find(|f| f.id == collection)
                .ok_or_else(ItemError::not_found)?;
            Ok(ItemRef {
                folder,
                item,
                change_key: el.attr("ChangeKey").and_then(ids::change_key_modseq),
            })
        }
        _ => Err(ItemError::new(
            "ErrorInvalidIdMalformed",
            "Id is malformed.",
        )),
    }
}

/// A folder named by a `TargetFolderId`/`SavedItemFolderId`/`ToFolderId`
/// style element (holding one `FolderId` or `DistinguishedFolderId`).
pub fn target_folder<'a>(
    ctx: &Ctx<'_>,
    tree: &'a [EwsFolder],
    holder: Option<&Element>,
) -> Option<Result<&'a EwsFolder, ItemError>> {
    let inner = holder?.children.first()?;
    Some(match folders::resolve(ctx, tree, inner) {
        Resolved::Found(f) => Ok(f),
        Resolved::Error(code, text) => Err(ItemError::new(code, text)),
    })
}

/// One item's response message: success with `r`'s elements, or the error.
pub fn message(name: &str, r: Result<Vec<Element>, ItemError>) -> Element {
    match r {
        Ok(children) => {
            let mut m = success(name);
            m.children.extend(children);
            m
        }
        Err(e) => error(name, e.code, e.text),
    }
}

/// `m:Items` holding one element.
pub fn items(el: Element) -> Element {
    Element::new(NS_M, "Items").with(el)
}

pub async fn find_item(ctx: &Ctx<'_>, op: &Element) -> OpResult {
    let parents = child_tm(op, "ParentFolderIds")
        .ok_or_else(|| invalid("FindItem needs ParentFolderIds."))?;
    let tree = folders::tree(ctx).await?;
    let mut messages = Vec::new();
    for p in &parents.children {
        let r = match folders::resolve(ctx, &tree, p) {
            Resolved::Error(code, text) => Ok(Err(ItemError::new(code, text))),
            Resolved::Found(f) => match f.kind {
                // The virtual folders (root, Outbox) hold nothing.
                _ if f.id < 0 => Ok(Ok(vec![empty_root_folder()])),
                Kind::Mail => mail::find(ctx, f, op).await,
                Kind::Calendar | Kind::Contacts | Kind::Tasks => pim::find(ctx, f, op).await,
                Kind::Root => Ok(Ok(vec![empty_root_folder()])),
            },
        };
        messages.push(message("FindItem", r?));
    }
    Ok(response("FindItem", messages))
}

fn empty_root_folder() -> Element {
    Element::new(NS_M, "RootFolder")
        .with_attr("IndexedPagingOffset", "0")
        .with_attr("TotalItemsInView", "0")
        .with_attr("IncludesLastItemInRange", "true")
        .with(Element::new(NS_T, "Items"))
}

/// The children of the request's id list `local`, at most `max_ids`.
pub fn ids_of<'a>(
    op: &'a Element,
    local: &str,
    ctx: &Ctx<'_>,
) -> Result<&'a [Element], super::OpError> {
    let list = child_tm(op, local).ok_or_else(|| invalid(format!("The request needs {local}.")))?;
    if list.children.len() > ctx.limits.max_ids {
        return Err(invalid("Too many items in one request."));
    }
    Ok(&list.children)
}

pub async fn get_item(ctx: &Ctx<'_>, op: &Element) -> OpResult {
    let wanted = ids_of(op, "ItemIds", ctx)?;
    let shape = child_tm(op, "ItemShape");
    let tree = folders::tree(ctx).await?;
    let mut messages = Vec::new();
    for id in wanted {
        let r = match resolve_item(ctx, &tree, id) {
            Err(e) => Err(e),
            Ok(item) => match item.folder.kind {
                Kind::Mail => mail::get(ctx, &item, shape).await?,
                _ => pim::get(ctx, &item, id, shape).await?,
            },
        };
        messages.push(message("GetItem", r));
    }
    Ok(response("GetItem", messages))
}

pub async fn create_item(ctx: &Ctx<'_>, op: &Element) -> OpResult {
    let list = child_tm(op, "Items").ok_or_else(|| invalid("CreateItem needs Items."))?;
    if list.children.len() > ctx.limits.max_ids {
        return Err(invalid("Too many items in one CreateItem."));
    }
    let tree = folders::tree(ctx).await?;
    let saved = target_folder(ctx, &tree, child_tm(op, "SavedItemFolderId"));
    let mut messages = Vec::new();
    for item in &list.children {
        let folder = match &saved {
            Some(Err(e)) => {
                messages.push(message("CreateItem", Err(e.clone())));
                continue;
            }
            Some(Ok(f)) => Some(*f),
            None => None,
        };
        let r = match item.name.local.as_str() {
            "Message" => mail::create(ctx, &tree, folder, item, op).await?,
            "CalendarItem"
            | "Contact"
            | "Task"
            | "AcceptItem"
            | "TentativelyAcceptItem"
            | "DeclineItem" => pim::create(ctx, &tree, folder, item, op).await?,
            other => Err(ItemError::new(
                "ErrorInvalidRequest",
                format!("Items of type {other} cannot be created here."),
            )),
        };
        messages.push(message("CreateItem", r));
    }
    Ok(response("CreateItem", messages))
}

pub async fn update_item(ctx: &Ctx<'_>, op: &Element) -> OpResult {
    let changes = ids_of(op, "ItemChanges", ctx)?;
    let tree = folders::tree(ctx).await?;
    let mut messages = Vec::new();
    for change in changes {
        let Some(id) = change
            .child(NS_T, "ItemId")
            .or_else(|| change.child(NS_T, "OccurrenceItemId"))
            .or_else(|| change.child(NS_T, "RecurringMasterItemId"))
        else {
            messages.push(message(
                "UpdateItem",
                Err(ItemError::new(
                    "ErrorInvalidIdMalformed",
                    "The change names no item.",
                )),
            ));
            continue;
        };
        let r = match resolve_item(ctx, &tree, id) {
            Err(e) => Err(e),
            Ok(item) => match item.folder.kind {
                Kind::Mail => mail::update(ctx, &item, change, op).await?,
                _ => pim::update(ctx, &item, id, change, op).await?,
            },
        };
        messages.push(message("UpdateItem", r));
    }
    Ok(response("UpdateItem", messages))
}

pub async fn delete_item(ctx: &Ctx<'_>, op: &Element) -> OpResult {
    let wanted = ids_of(op, "ItemIds", ctx)?;
    let how = op.attr("DeleteType").unwrap_or("MoveToDeletedItems");
    if !matches!(how, "HardDelete" | "SoftDelete" | "MoveToDeletedItems") {
        return Err(invalid(
            "DeleteType must be HardDelete, SoftDelete or MoveToDeletedItems.",
        ));
    }
    let tree = folders::tree(ctx).await?;
    let mut messages = Vec::new();
    for id in wanted {
        let r = match resolve_item(ctx, &tree, id) {
            Err(e) => Err(e),
            Ok(item) => match item.folder.kind {
                Kind::Mail => mail::delete(ctx, &tree, &item, how).await?,
                _ => pim::delete(ctx, &item, id, op).await?,
            },
        };
        messages.push(message("DeleteItem", r));
    }
    Ok(response("DeleteItem", messages))
}

/// MoveItem and CopyItem (`copy`).
pub async fn move_item(ctx: &Ctx<'_>, op: &Element, copy: bool) -> OpResult {
    let name = if copy { "CopyItem" } else { "MoveItem" };
    let wanted = ids_of(op, "ItemIds", ctx)?;
    let tree = folders::tree(ctx).await?;
    let to = match target_folder(ctx, &tree, child_tm(op, "ToFolderId")) {
        Some(Ok(f)) => f,
        Some(Err(e)) => {
            return Ok(response(
                name,
                wanted
                    .iter()
                    .map(|_| message(name, Err(e.clone())))
                    .collect(),
            ))
        }
        None => return Err(invalid("The request needs ToFolderId.")),
    };
    let mut messages = Vec::new();
    for id in wanted {
        let r = match resolve_item(ctx, &tree, id) {
            Err(e) => Err(e),
            Ok(item) if item.folder.kind == Kind::Mail && to.kind == Kind::Mail => {
                mail::move_or_copy(ctx, &item, to, copy).await?
            }
            Ok(_) => Err(ItemError::new(
                "ErrorInvalidOperation",
                "Only messages can be moved or copied between mail folders here.",
            )),
        };
        messages.push(message(name, r));
    }
    Ok(response(name, messages))
}
