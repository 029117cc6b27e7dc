//! ItemOperations (MS-ASCMD 2.2.1.10): Fetch of a message (by folder and
//! ServerId) or an attachment (by FileReference, `folder:uid:index`) from
//! the mailbox, and EmptyFolderContents. Document-library fetches and
//! Move (of conversations) are not served: status 9 (store unknown) and
//! 2.

use base64::Engine;
use outpost_wbxml::Element;

use crate::email;
use crate::folders::{child_text, Class, Folder};
use crate::sync::{self, parse_server_id, Caller};
use crate::{BackendError, EasBackend};

/// Bytes of an attachment answered inline (base64 in the WBXML); larger
/// ones get status 11 (data too large) — a phone asks for parts then.
pub const MAX_INLINE: usize = 20 << 20;

fn io(name: &str, v: impl Into<String>) -> Element {
    Element::named("ItemOperations", name).with_text(v)
}

fn fetch_status(status: u32) -> Element {
    Element::named("ItemOperations", "Fetch").with(io("Status", status.to_string()))
}

fn folder_of<'f>(folders: &'f [Folder], id: &str) -> Option<&'f Folder> {
    id.parse::<i64>()
        .ok()
        .and_then(|n| folders.iter().find(|f| f.id == n))
}

async fn fetch(
    b: &dyn EasBackend,
    who: &Caller<'_>,
    folders: &[Folder],
    f: &Element,
) -> Result<Element, BackendError> {
    let store = child_text(f, "ItemOperations", "Store").unwrap_or_default();
    if !store.eq_ignore_ascii_case("Mailbox") {
        return Ok(fetch_status(9));
    }
    let prefs = f
        .child("ItemOperations", "Options")
        .map(email::body_preferences)
        .unwrap_or_default();
    if let Some(fref) = child_text(f, "AirSyncBase", "FileReference") {
        let mut parts = fref.splitn(3, ':');
        let (c, u, i) = (parts.next(), parts.next(), parts.next());
        let found = match (
            c.and_then(|c| folder_of(folders, c)),
            u.and_then(|u| u.parse::<i64>().ok()),
            i.and_then(|i| i.parse::<usize>().ok()),
        ) {
            (Some(folder), Some(uid), Some(index)) => {
                match b.mail_raw(who.principal, folder.id, uid).await? {
                    Some(raw) => email::attachment(&raw, index),
                    None => None,
                }
            }
            _ => None,
        };
        let Some((ctype, bytes)) = found else {
            return Ok(Element::named("ItemOperations", "Fetch")
                .with(io("Status", "6"))
                .with(Element::named("AirSyncBase", "FileReference").with_text(fref)));
        };
        if bytes.len() > MAX_INLINE {
            return Ok(Element::named("ItemOperations", "Fetch")
                .with(io("Status", "11"))
                .with(Element::named("AirSyncBase", "FileReference").with_text(fref)));
        }
        return Ok(Element::named("ItemOperations", "Fetch")
            .with(io("Status", "1"))
            .with(Element::named("AirSyncBase", "FileReference").with_text(fref))
            .with(
                Element::named("ItemOperations", "Properties")
                    .with(Element::named("AirSyncBase", "ContentType").with_text(ctype))
                    .with(io(
                        "Data",
                        base64::engine::general_purpose::STANDARD.encode(&bytes),
                    )),
            ));
    }
    // A Search result is named by its LongId, which is `folder:uid`.
    let long = child_text(f, "Search", "LongId");
    let (Some(cid), Some(sid)) = (
        child_text(f, "AirSync", "CollectionId").or_else(|| {
            long.as_ref()
                .and_then(|l| l.split_once(':'))
                .map(|(c, _)| c.to_string())
        }),
        child_text(f, "AirSync", "ServerId").or_else(|| long.clone()),
    ) else {
        return Ok(fetch_status(2));
    };
    let class = folder_of(folders, &cid).map_or(Class::Email, |f| f.class());
    let item = match folder_of(folders, &cid)
        .and_then(|folder| parse_server_id(folder.id, &sid).map(|u| (folder.id, folder.class(), u)))
    {
        Some((col, class, uid)) => match b.mail_item(who.principal, col, uid).await? {
            Some(m) => sync::full_data(b, who, col, class, &m, &prefs).await?,
            None => None,
        },
        None => None,
    };
    let Some(data) = item else {
        return Ok(Element::named("ItemOperations", "Fetch")
            .with(io("Status", "6"))
            .with(Element::named("AirSync", "CollectionId").with_text(cid))
            .with(Element::named("AirSync", "ServerId").with_text(sid)));
    };
    // The ApplicationData's children go under Properties.
    let mut props = Element::named("ItemOperations", "Properties");
    for c in data.elements() {
        props = props.with(c.clone());
    }
    Ok(Element::named("ItemOperations", "Fetch")
        .with(io("Status", "1"))
        .with(Element::named("AirSync", "CollectionId").with_text(cid))
        .with(Element::named("AirSync", "ServerId").with_text(sid))
        .with(Element::named("AirSync", "Class").with_text(match class {
            Class::Email => "Email",
            Class::Calendar => "Calendar",
            Class::Contacts => "Contacts",
            Class::Tasks => "Tasks",
        }))
        .with(props))
}

async fn empty_folder(
    b: &dyn EasBackend,
    who: &Caller<'_>,
    folders: &[Folder],
    e: &Element,
) -> Result<Element, BackendError> {
    let cid = child_text(e, "AirSync", "CollectionId").unwrap_or_default();
    let answer = |status: u32| {
        Element::named("ItemOperations", "EmptyFolderContents")
            .with(io("Status", status.to_string()))
            .with(Element::named("AirSync", "CollectionId").with_text(cid.clone()))
    };
    let Some(folder) = folder_of(folders, &cid) else {
        return Ok(answer(6));
    };
    let subfolders = e
        .child("ItemOperations", "Options")
        .and_then(|o| o.child("ItemOperations", "DeleteSubFolders"))
        .is_some();
    loop {
        let batch = b
            .mail_below(who.principal, folder.id, i64::MAX, 0, 1000)
            .await?;
        if batch.is_empty() {
            break;
        }
        let uids: Vec<i64> = batch.iter().map(|m| m.uid).collect();
        if b.expunge_mail(who.principal, folder.id, &uids)
            .await?
            .is_empty()
        {
            return Ok(answer(3));
        }
    }
    if subfolders {
        for child in folders.iter().filter(|f| f.parent == folder.id) {
            if b.delete_folder(who.principal, child.id).await?.is_err() {
                return Ok(answer(3));
            }
        }
    }
    Ok(answer(1))
}

/// Answers an ItemOperations request (status 2 when it is not one).
pub async fn answer(
    b: &dyn EasBackend,
    who: &Caller<'_>,
    folders: &[Folder],
    root: &Element,
) -> Result<Element, BackendError> {
    if !root.is("ItemOperations", "ItemOperations") {
        return Ok(Element::named("ItemOperations", "ItemOperations").with(io("Status", "2")));
    }
    let mut response = Element::named("ItemOperations", "Response");
    for op in root.elements() {
        let r = if op.is("ItemOperations", "Fetch") {
            fetch(b, who, folders, op).await?
        } else if op.is("ItemOperations", "EmptyFolderContents") {
            empty_folder(b, who, folders, op).await?
        } else {
            return Ok(Element::named("ItemOperations", "ItemOperations").with(io("Status", "2")));
        };
        response = response.with(r);
    }
    Ok(Element::named("ItemOperations", "ItemOperations")
        .with(io("Status", "1"))
        .with(response))
}
