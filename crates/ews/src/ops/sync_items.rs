//! SyncFolderItems (MS-OXWSSYNC): a folder's items, then what changed,
//! as a view of the change journal. The `SyncState` is opaque to the
//! client and holds where it is:
//!
//! - during the first sync: the folder's modseq and next item number when
//!   it began, and the lowest item number handed out so far (items are
//!   given highest first, `MaxChangesReturned` at a time);
//! - after it: a modseq and next item number. The journal after that
//!   modseq names what changed: items at or above the next number are
//!   `Create`, below it `Update`, tombstones `Delete`. What happened while
//!   the first sync was paging is answered by the first incremental call.
//!
//! A state the journal no longer reaches (pruned below its floor) is
//! `ErrorInvalidSyncStateData`; clients then sync again from the start.
//! Items are rendered by their class's GetItem with the request's
//! `ItemShape`, so they are exactly what GetItem would answer.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use outpost_activesync::Journal;
use outpost_xml::Element;

use super::folders::{self, EwsFolder, Kind, Resolved};
use super::items::ItemRef;
use super::{child_tm, invalid, mail, pim, OpError, OpResult};
use crate::ids;
use crate::soap::{response, success, NS_M, NS_T};

fn error(name: &str, code: &str, text: impl Into<String>) -> Element {
    crate::soap::sync_error(name, "IncludesLastItemInRange", code, text)
}
use crate::Ctx;

/// Where a client is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// First sync: began at (modseq, next item); items below `cursor`
    /// are still to come.
    Initial {
        modseq: i64,
        next: i64,
        cursor: i64,
    },
    Incremental {
        modseq: i64,
        next: i64,
    },
}

impl State {
    pub fn encode(&self) -> String {
        let (tag, a, b, c) = match *self {
            State::Initial {
                modseq,
                next,
                cursor,
            } => (b'I', modseq, next, cursor),
            State::Incremental { modseq, next } => (b'C', modseq, next, 0),
        };
        let mut v = vec![1u8, b'S', tag];
        for n in [a, b, c] {
            v.extend_from_slice(&n.to_be_bytes());
        }
        STANDARD.encode(v)
    }

    pub fn decode(s: &str) -> Option<State> {
        let b = STANDARD.decode(s.trim()).ok()?;
        if b.len() != 27 || b[0] != 1 || b[1] != b'S' {
            return None;
        }
        let n = |i: usize| i64::from_be_bytes(b[i..i + 8].try_into().unwrap_or_default());
        match b[2] {
            b'I' => Some(State::Initial {
                modseq: n(3),
                next: n(11),
                cursor: n(19),
            }),
            b'C' => Some(State::Incremental {
                modseq: n(3),
                next: n(11),
            }),
            _ => None,
        }
    }
}

fn element_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Calendar => "CalendarItem",
        Kind::Contacts => "Contact",
        Kind::Tasks => "Task",
        Kind::Mail | Kind::Root => "Message",
    }
}

/// Only the id is asked for: nothing to load.
fn id_only(shape: Option<&Element>) -> bool {
    shape.is_some_and(|s| {
        s.child(NS_T, "BaseShape").map(|b| b.text.trim()) == Some("IdOnly")
            && s.child(NS_T, "AdditionalProperties")
                .is_none_or(|a| a.children.is_empty())
    })
}

/// The item as its class's GetItem renders it; `None` when it is gone.
async fn render(
    ctx: &Ctx<'_>,
    folder: &EwsFolder,
    item: i64,
    modseq: i64,
    shape: Option<&Element>,
) -> Result<Option<Element>, OpError> {
    let principal = ctx.user.principal_id;
    let id = Element::new(NS_T, "ItemId")
        .with_attr("Id", ids::item_id(principal, folder.id, item))
        .with_attr("ChangeKey", ids::change_key(modseq));
    if id_only(shape) {
        return Ok(Some(Element::new(NS_T, element_name(folder.kind)).with(id)));
    }
    let r = ItemRef {
        folder,
        item,
        change_key: None,
    };
    let got = match folder.kind {
        Kind::Mail => mail::get(ctx, &r, shape).await?,
        _ => pim::get(ctx, &r, &id, shape).await?,
    };
    Ok(got
        .ok()
        .and_then(|list| list.into_iter().next())
        .and_then(|items| items.children.into_iter().next()))
}

pub async fn sync_folder_items(ctx: &Ctx<'_>, op: &Element) -> OpResult {
    let name = "SyncFolderItems";
    let principal = ctx.user.principal_id;
    let shape = child_tm(op, "ItemShape");
    let max = child_tm(op, "MaxChangesReturned")
        .and_then(|m| m.text.trim().parse::<usize>().ok())
        .filter(|m| (1..=512).contains(m))
        .ok_or_else(|| invalid("MaxChangesReturned is 1 to 512."))?;
    let tree = folders::tree(ctx).await?;
    let folder = match child_tm(op, "SyncFolderId").and_then(|h| h.children.first()) {
        None => return Err(invalid("SyncFolderItems needs SyncFolderId.")),
        Some(el) => match folders::resolve(ctx, &tree, el) {
            Resolved::Found(f) => f,
            Resolved::Error(c, t) => return Ok(response(name, vec![error(name, c, t)])),
        },
    };
    let bad_state = || {
        Ok(response(
            name,
            vec![error(
                name,
                "ErrorInvalidSyncStateData",
                "The SyncState is not one this server gave, or too old; sync again from the start.",
            )],
        ))
    };
    let state = match child_tm(op, "SyncState")
        .map(|s| s.text.trim())
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(s) => match State::decode(s) {
            Some(st) => Some(st),
            None => return bad_state(),
        },
    };
    let mut changes = Element::new(NS_M, "Changes");
    // The virtual folders hold nothing.
    if folder.id < 0 {
        return Ok(response(
            name,
            vec![success(name)
                .with(
                    Element::new(NS_M, "SyncState")
                        .with_text(State::Incremental { modseq: 0, next: 1 }.encode()),
                )
                .with(Element::new(NS_M, "IncludesLastItemInRange").with_text("true"))
                .with(changes)],
        ));
    }
    let Some((highest, next_now)) = ctx.backend.mail_point(principal, folder.id).await? else {
        return Ok(response(
            name,
            vec![error(
                name,
                "ErrorFolderNotFound",
                "The folder does not exist.",
            )],
        ));
    };
    let (next_state, last) = match state {
        None | Some(State::Initial { .. }) => {
            let (modseq, next, cursor) = match state {
                Some(State::Initial {
                    modseq,
                    next,
                    cursor,
                }) => (modseq, next, cursor),
                _ => (highest, next_now, next_now),
            };
            let page = ctx
                .backend
                .mail_below(principal, folder.id, cursor, i64::MIN, max + 1)
                .await?;
            let more = page.len() > max;
            let mut lowest = cursor;
            for m in page.iter().take(max) {
                lowest = lowest.min(m.uid);
                if let Some(el) = render(ctx, folder, m.uid, m.modseq, shape).await? {
                    changes.push(Element::new(NS_T, "Create").with(el));
                }
            }
            if more {
                (
                    State::Initial {
                        modseq,
                        next,
                        cursor: lowest,
                    },
                    false,
                )
            } else {
                (State::Incremental { modseq, next }, true)
            }
        }
        Some(State::Incremental { modseq, next }) => {
            let (live, removed) = match ctx.backend.journal(principal, folder.id, modseq).await? {
                Journal::Changes { live, removed, .. } => (live, removed),
                Journal::TooOld => return bad_state(),
                Journal::Missing => {
                    return Ok(response(
                        name,
                        vec![error(
                            name,
                            "ErrorFolderNotFound",
                            "The folder does not exist.",
                        )],
                    ))
                }
            };
            // Every change by modseq; as many as fit, the rest next time.
            let mut all: Vec<(i64, i64, bool)> = live
                .iter()
                .map(|&(item, m)| (m, item, true))
                .chain(removed.iter().map(|&(item, m)| (m, item, false)))
                .collect();
            all.sort();
            let more = all.len() > max;
            let taken = &all[..all.len().min(max)];
            // Cut at a whole modseq: a change past the cut with the same
            // modseq as the last taken one must not be skipped.
            let upto = if more {
                let m = taken.last().map_or(modseq, |t| t.0);
                let cut = if all[max].0 == m { m - 1 } else { m };
                // One modseq holding more changes than fit (a bulk flag
                // change): all of them, rather than never moving on.
                cut.max(all[0].0)
            } else {
                highest
            };
            let mut top = next;
            for &(m, item, alive) in all.iter().filter(|c| c.0 <= upto) {
                if alive {
                    if let Some(el) = render(ctx, folder, item, m, shape).await? {
                        let kind = if item >= next { "Create" } else { "Update" };
                        changes.push(Element::new(NS_T, kind).with(el));
                    }
                    top = top.max(item + 1);
                } else {
                    changes.push(
                        Element::new(NS_T, "Delete").with(
                            Element::new(NS_T, "ItemId")
                                .with_attr("Id", ids::item_id(principal, folder.id, item))
                                .with_attr("ChangeKey", ids::change_key(m)),
                        ),
                    );
                }
            }
            let next = if more { next } else { next_now.max(top) };
            (State::Incremental { modseq: upto, next }, !more)
        }
    };
    Ok(response(
        name,
        vec![success(name)
            .with(Element::new(NS_M, "SyncState").with_text(next_state.encode()))
            .with(
                Element::new(NS_M, "IncludesLastItemInRange").with_text(if last {
                    "true"
                } else {
                    "false"
                }),
            )
            .with(changes)],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip() {
        for s in [
            State::Initial {
                modseq: 5,
                next: 9,
                cursor: 3,
            },
            State::Incremental { modseq: 7, next: 2 },
        ] {
            assert_eq!(State::decode(&s.encode()), Some(s));
        }
        assert_eq!(State::decode("AAAA"), None);
    }
}
