//! EWS ids: `FolderId`/`ItemId` `Id` and `ChangeKey` attributes.
//!
//! An id is opaque to clients but not random: it is the base64 of a
//! version byte, a kind byte, the owner principal and the store's own
//! numbers (collection id, item number or UID), so it is the same in
//! every session and on every node. The owner is in the id so that an id
//! of another user's folder or item is recognised as such before any
//! store call ([`Decoded::owner`]); the backend checks ownership again.
//! A `ChangeKey` is the object's modseq, so a stale one is noticed
//! (`ErrorIrresolvableConflict`).
//!
//! Item and occurrence ids are padded with zero bytes to Exchange's length
//! (144 characters; Exchange's are 140 to 160): DavMail takes a resource
//! name of 140 or more base64url characters and `.EML` for an `ItemId`
//! and reads the item by it, and names every event it lists so; a shorter
//! name it looks for by the PR_URL_COMP_NAME (0x10f3) property instead,
//! which is the DAV resource name here, and finds nothing.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

const VERSION: u8 = 1;
const FOLDER: u8 = b'F';
const ITEM: u8 = b'I';
const OCCURRENCE: u8 = b'O';

/// The two folders above the mailboxes: `root` (the mailbox's root) and
/// `msgfolderroot` ("Top of Information Store", the parent of Inbox,
/// Calendar and the rest). They are not collections; these are their
/// collection numbers in ids.
pub const ROOT: i64 = -1;
pub const MSG_FOLDER_ROOT: i64 = -2;
/// The Outbox: Exchange clients expect one (DavMail refuses to log in
/// without it). Messages are sent at once here, never queued in a folder,
/// so it is always empty.
pub const OUTBOX: i64 = -3;

/// What an id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    Folder {
        owner: i64,
        collection: i64,
    },
    Item {
        owner: i64,
        collection: i64,
        item: i64,
    },
    /// One occurrence of a recurring calendar item: the item and the
    /// occurrence's RECURRENCE-ID (UTC seconds).
    Occurrence {
        owner: i64,
        collection: i64,
        item: i64,
        recurrence: i64,
    },
}

impl Decoded {
    pub fn owner(&self) -> i64 {
        match *self {
            Decoded::Folder { owner, .. }
            | Decoded::Item { owner, .. }
            | Decoded::Occurrence { owner, .. } => owner,
        }
    }
}

pub fn folder_id(owner: i64, collection: i64) -> String {
    let mut b = vec![VERSION, FOLDER];
    b.extend_from_slice(&owner.to_be_bytes());
    b.extend_from_slice(&collection.to_be_bytes());
    STANDARD.encode(b)
}

/// Bytes of an item or occurrence id, padding included (144 base64
/// characters).
const ITEM_LEN: usize = 108;

fn padded(mut b: Vec<u8>) -> String {
    b.resize(ITEM_LEN, 0);
    STANDARD.encode(b)
}

pub fn item_id(owner: i64, collection: i64, item: i64) -> String {
    let mut b = vec![VERSION, ITEM];
    b.extend_from_slice(&owner.to_be_bytes());
    b.extend_from_slice(&collection.to_be_bytes());
    b.extend_from_slice(&item.to_be_bytes());
    padded(b)
}

/// The id of one occurrence of a recurring item (`recurrence`: its
/// RECURRENCE-ID in UTC seconds).
pub fn occurrence_id(owner: i64, collection: i64, item: i64, recurrence: i64) -> String {
    let mut b = vec![VERSION, OCCURRENCE];
    b.extend_from_slice(&owner.to_be_bytes());
    b.extend_from_slice(&collection.to_be_bytes());
    b.extend_from_slice(&item.to_be_bytes());
    b.extend_from_slice(&recurrence.to_be_bytes());
    padded(b)
}

/// Reads an id; `None` for anything this server did not hand out
/// (`ErrorInvalidIdMalformed`).
pub fn decode(id: &str) -> Option<Decoded> {
    let b = STANDARD.decode(id.trim()).ok()?;
    let n =
        |i: usize| -> Option<i64> { Some(i64::from_be_bytes(b.get(i..i + 8)?.try_into().ok()?)) };
    // The padding is zeros: one spelling per id.
    let pad_from = |used: usize| b.len() == ITEM_LEN && b[used..].iter().all(|&x| x == 0);
    match (b.first(), b.get(1), b.len()) {
        (Some(&VERSION), Some(&FOLDER), 18) => Some(Decoded::Folder {
            owner: n(2)?,
            collection: n(10)?,
        }),
        (Some(&VERSION), Some(&ITEM), ITEM_LEN) if pad_from(26) => Some(Decoded::Item {
            owner: n(2)?,
            collection: n(10)?,
            item: n(18)?,
        }),
        (Some(&VERSION), Some(&OCCURRENCE), ITEM_LEN) if pad_from(34) => {
            Some(Decoded::Occurrence {
                owner: n(2)?,
                collection: n(10)?,
                item: n(18)?,
                recurrence: n(26)?,
            })
        }
        _ => None,
    }
}

/// The id of attachment `index` (its place among the message's
/// attachments) of item `item`.
pub fn attachment_id(owner: i64, collection: i64, item: i64, index: u32) -> String {
    let mut b = vec![VERSION, b'A'];
    b.extend_from_slice(&owner.to_be_bytes());
    b.extend_from_slice(&collection.to_be_bytes());
    b.extend_from_slice(&item.to_be_bytes());
    b.extend_from_slice(&index.to_be_bytes());
    STANDARD.encode(b)
}

/// What an attachment id names: (owner, collection, item, index); `None`
/// for anything else.
pub fn decode_attachment(id: &str) -> Option<(i64, i64, i64, u32)> {
    let b = STANDARD.decode(id.trim()).ok()?;
    if b.len() != 30 || b[0] != VERSION || b[1] != b'A' {
        return None;
    }
    let n = |i: usize| i64::from_be_bytes(b[i..i + 8].try_into().unwrap_or_default());
    Some((
        n(2),
        n(10),
        n(18),
        u32::from_be_bytes(b[26..30].try_into().ok()?),
    ))
}

/// The `ChangeKey` of an object at `modseq`.
pub fn change_key(modseq: i64) -> String {
    let mut b = vec![VERSION, b'K'];
    b.extend_from_slice(&modseq.to_be_bytes());
    STANDARD.encode(b)
}

/// The modseq in a `ChangeKey`; `None` when it is not one of ours.
pub fn change_key_modseq(key: &str) -> Option<i64> {
    let b = STANDARD.decode(key.trim()).ok()?;
    match (b.first(), b.get(1), b.len()) {
        (Some(&VERSION), Some(&b'K'), 10) => Some(i64::from_be_bytes(b[2..10].try_into().ok()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_refuse_the_rest() {
        assert_eq!(
            decode(&folder_id(7, ROOT)),
            Some(Decoded::Folder {
                owner: 7,
                collection: -1
            })
        );
        assert_eq!(
            decode(&item_id(7, 42, 9)),
            Some(Decoded::Item {
                owner: 7,
                collection: 42,
                item: 9
            })
        );
        assert_eq!(
            decode(&occurrence_id(7, 42, 9, 1_800_000_000)),
            Some(Decoded::Occurrence {
                owner: 7,
                collection: 42,
                item: 9,
                recurrence: 1_800_000_000
            })
        );
        // As long as Exchange's, so DavMail takes them for ids.
        assert_eq!(item_id(7, 42, 9).len(), 144);
        assert_eq!(occurrence_id(7, 42, 9, 1).len(), 144);
        let mut other = STANDARD.decode(item_id(7, 42, 9)).unwrap();
        other[100] = 1;
        assert_eq!(decode(&STANDARD.encode(&other)), None);
        other.truncate(26);
        assert_eq!(decode(&STANDARD.encode(&other)), None);
        assert_eq!(change_key_modseq(&change_key(123)), Some(123));
        for bad in ["", "DUMMY", "AAAA", &change_key(1), "!!!"] {
            assert_eq!(decode(bad), None, "{bad}");
        }
        assert_eq!(change_key_modseq(&folder_id(1, 2)), None);
        assert_eq!(
            decode_attachment(&attachment_id(7, 42, 9, 3)),
            Some((7, 42, 9, 3))
        );
        assert_eq!(decode(&attachment_id(7, 42, 9, 3)), None);
        assert_eq!(decode_attachment(&item_id(7, 42, 9)), None);
    }
}
