//! Sync (MS-ASCMD 2.2.1.21) of Email folders: a view of the collection's
//! change journal.
//!
//! A device's state of a folder ([`MailState`]) is a journal point `m`
//! (every change up to it is on the device), the changes after `m` that
//! are already on the device (when a window cut the list short), the items
//! the device has (as ranges of UIDs), and the backlog of the initial
//! sync: items below UID `c` not sent yet, sent newest first after the
//! journal's changes. A client's own changes are written to the store and
//! recorded as on the device, so they are not sent back to it.

use std::collections::HashMap;

use outpost_wbxml::Element;
use serde::{Deserialize, Serialize};

use crate::email::{self, BodyPreference, MessageState};
use crate::folders::{child_text, Class, Folder};
use crate::ranges::Ranges;
use crate::state::{self, ClientKey, Match, StoredState};
use crate::{drafts, pim, BackendError, EasBackend};

/// One message as Sync needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailItem {
    pub uid: i64,
    pub modseq: i64,
    pub internal_date: i64,
    pub read: bool,
    pub flagged: bool,
    pub answered: bool,
    pub forwarded: bool,
    pub keywords: Vec<String>,
}

/// A folder's journal after a point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Journal {
    Changes {
        highest: i64,
        /// Items added or changed: (UID, latest modseq).
        live: Vec<(i64, i64)>,
        /// Items removed: (UID, modseq of the removal).
        removed: Vec<(i64, i64)>,
    },
    /// The journal no longer reaches back: start over (status 3).
    TooOld,
    /// The folder is gone.
    Missing,
}

/// A device's state of an Email folder.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailState {
    /// Journal point.
    pub m: i64,
    /// Changes after `m` already on the device: (UID, modseq).
    #[serde(default)]
    pub s: Vec<(i64, i64)>,
    /// Backlog: items with a UID below this are still to send (0: none).
    pub c: i64,
    /// The items the device has.
    pub k: Ranges,
    /// FilterType in effect.
    pub f: u8,
}

/// Items per answer when the client does not say (MS-ASCMD 2.2.3.199:
/// 100), and the most it may ask for.
pub const DEFAULT_WINDOW: usize = 100;
pub const MAX_WINDOW: usize = 512;

/// The earliest internal date a FilterType lets through (MS-ASCMD
/// 2.2.3.70.1); `None` for a value Email does not know.
pub fn filter_since(filter: u8, now: i64) -> Option<i64> {
    let days = match filter {
        0 => return Some(0),
        1 => 1,
        2 => 3,
        3 => 7,
        4 => 14,
        5 => 30,
        6 => 90,
        7 => 180,
        _ => return None,
    };
    Some(now - days * 86_400)
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A client's command in a collection.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientCommand {
    Add {
        client_id: String,
        data: Option<Element>,
    },
    Change {
        server_id: String,
        data: Option<Element>,
    },
    Delete {
        server_id: String,
    },
    Fetch {
        server_id: String,
    },
}

/// One Collection of a Sync request.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionRequest {
    pub sync_key: String,
    pub collection_id: String,
    pub get_changes: Option<bool>,
    pub deletes_as_moves: Option<bool>,
    pub window: Option<usize>,
    pub filter: Option<u8>,
    pub prefs: Vec<BodyPreference>,
    pub commands: Vec<ClientCommand>,
}

/// A Sync request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncRequest {
    pub collections: Vec<CollectionRequest>,
    /// Wait (minutes) or HeartbeatInterval (seconds), in seconds.
    pub wait: Option<u64>,
    pub window: Option<usize>,
}

fn flag(el: &Element, name: &str) -> Option<bool> {
    el.child("AirSync", name).map(|c| {
        let t = c.text();
        let t = t.trim();
        t.is_empty() || t == "1"
    })
}

/// Reads a Sync request; `None` when it is not one (status 4).
pub fn parse(root: &Element) -> Option<SyncRequest> {
    if !root.is("AirSync", "Sync") {
        return None;
    }
    let mut req = SyncRequest::default();
    if let Some(w) = child_text(root, "AirSync", "Wait") {
        req.wait = Some(w.parse::<u64>().ok()?.saturating_mul(60));
    }
    if let Some(h) = child_text(root, "AirSync", "HeartbeatInterval") {
        req.wait = Some(h.parse().ok()?);
    }
    if let Some(w) = child_text(root, "AirSync", "WindowSize") {
        req.window = Some(w.parse().ok()?);
    }
    if let Some(cols) = root.child("AirSync", "Collections") {
        for c in cols.elements().filter(|e| e.is("AirSync", "Collection")) {
            let mut cr = CollectionRequest {
                sync_key: child_text(c, "AirSync", "SyncKey")?,
                collection_id: child_text(c, "AirSync", "CollectionId")?,
                get_changes: flag(c, "GetChanges"),
                deletes_as_moves: flag(c, "DeletesAsMoves"),
                window: match child_text(c, "AirSync", "WindowSize") {
                    Some(w) => Some(w.parse().ok()?),
                    None => None,
                },
                filter: None,
                prefs: Vec::new(),
                commands: Vec::new(),
            };
            // Several Options (one per class) may come: those of a class
            // this server syncs count (an Email folder's SMS Options do
            // not).
            for o in c.elements().filter(|e| e.is("AirSync", "Options")) {
                let class = child_text(o, "AirSync", "Class");
                if class
                    .as_deref()
                    .is_some_and(|c| !matches!(c, "Email" | "Calendar" | "Contacts" | "Tasks"))
                {
                    continue;
                }
                if let Some(f) = child_text(o, "AirSync", "FilterType") {
                    cr.filter = Some(f.parse().ok()?);
                }
                cr.prefs = email::body_preferences(o);
            }
            if let Some(cmds) = c.child("AirSync", "Commands") {
                for cmd in cmds.elements() {
                    let sid = || child_text(cmd, "AirSync", "ServerId");
                    let data = cmd.child("AirSync", "ApplicationData").cloned();
                    let parsed = if cmd.is("AirSync", "Add") {
                        ClientCommand::Add {
                            client_id: child_text(cmd, "AirSync", "ClientId")?,
                            data,
                        }
                    } else if cmd.is("AirSync", "Change") {
                        ClientCommand::Change {
                            server_id: sid()?,
                            data,
                        }
                    } else if cmd.is("AirSync", "Delete") {
                        ClientCommand::Delete { server_id: sid()? }
                    } else if cmd.is("AirSync", "Fetch") {
                        ClientCommand::Fetch { server_id: sid()? }
                    } else {
                        return None;
                    };
                    cr.commands.push(parsed);
                }
            }
            req.collections.push(cr);
        }
    }
    Some(req)
}

/// An item's ServerId: `folder:uid`.
pub fn server_id(collection: i64, uid: i64) -> String {
    format!("{collection}:{uid}")
}

/// The UID in a ServerId of `collection`; `None` for another folder's or
/// a malformed one.
pub fn parse_server_id(collection: i64, sid: &str) -> Option<i64> {
    let (c, u) = sid.split_once(':')?;
    (c.parse::<i64>().ok()? == collection).then_some(())?;
    u.parse().ok().filter(|u: &i64| *u > 0)
}

/// A Responses entry for a device's command on `sid` that did not go
/// through (status 6, 7, 8...).
fn item_status(kind: &str, sid: &str, status: impl ToString) -> Element {
    Element::named("AirSync", kind)
        .with(a("ServerId", sid))
        .with(a("Status", status.to_string()))
}

fn a(name: &str, v: impl Into<String>) -> Element {
    Element::named("AirSync", name).with_text(v)
}

/// The Collection element of an answer.
pub fn collection_answer(
    key: &str,
    id: &str,
    status: u32,
    more: bool,
    commands: Vec<Element>,
    responses: Vec<Element>,
) -> Element {
    let mut c = Element::named("AirSync", "Collection")
        .with(a("SyncKey", key))
        .with(a("CollectionId", id))
        .with(a("Status", status.to_string()));
    if more {
        c = c.with(Element::named("AirSync", "MoreAvailable"));
    }
    if !commands.is_empty() {
        let mut el = Element::named("AirSync", "Commands");
        for x in commands {
            el = el.with(x);
        }
        c = c.with(el);
    }
    if !responses.is_empty() {
        let mut el = Element::named("AirSync", "Responses");
        for x in responses {
            el = el.with(x);
        }
        c = c.with(el);
    }
    c
}

/// The whole Sync answer.
pub fn answer(collections: Vec<Element>) -> Element {
    let mut cols = Element::named("AirSync", "Collections");
    for c in collections {
        cols = cols.with(c);
    }
    Element::named("AirSync", "Sync").with(cols)
}

/// Sync's top-level status answer (4 protocol error, 13 empty request
/// with nothing cached, 14 bad wait...).
pub fn status_answer(status: u32) -> Element {
    Element::named("AirSync", "Sync").with(a("Status", status.to_string()))
}

/// Who asks, for the functions below.
pub struct Caller<'a> {
    pub principal: i64,
    pub device_id: &'a str,
    pub is16: bool,
    /// Lets a Ping or hanging Sync leave the ordinary per-address
    /// request limit while it waits.
    pub long_poll: Option<outpost_http::LongPoll>,
    /// A device's newer Ping or hanging Sync ends its older one.
    pub waiters: Option<std::sync::Arc<crate::ping::Waiters>>,
    /// Notices and breaks devices that loop.
    pub loops: Option<std::sync::Arc<crate::loops::LoopGuard>>,
    /// The user's addresses, read once per request when an item needs
    /// them (a calendar item's organizer is "me" by them).
    pub addresses: tokio::sync::OnceCell<Vec<String>>,
}

impl Caller<'_> {
    /// The user's addresses, primary first (read on first use).
    pub async fn addresses(&self, b: &dyn EasBackend) -> Result<&[String], BackendError> {
        self.addresses
            .get_or_try_init(|| b.addresses(self.principal))
            .await
            .map(Vec::as_slice)
    }
}

fn message_state(m: &MailItem) -> MessageState {
    MessageState {
        read: m.read,
        flagged: m.flagged,
        answered: m.answered,
        forwarded: m.forwarded,
        internal_date: m.internal_date,
        categories: m
            .keywords
            .iter()
            .filter(|k| !k.starts_with('$'))
            .cloned()
            .collect(),
    }
}

/// The Email fields a Change carries: what a device shows of flags.
pub fn flags_data(m: &MailItem) -> Element {
    let flag = if m.flagged {
        Element::named("Email", "Flag")
            .with(Element::named("Email", "Status").with_text("2"))
            .with(Element::named("Email", "FlagType").with_text("Flag for follow up"))
    } else {
        Element::named("Email", "Flag")
    };
    Element::named("AirSync", "ApplicationData")
        .with(Element::named("Email", "Read").with_text(if m.read { "1" } else { "0" }))
        .with(flag)
}

/// An item's whole ApplicationData, `None` when it went away meanwhile.
pub async fn full_data(
    b: &dyn EasBackend,
    who: &Caller<'_>,
    collection: i64,
    class: Class,
    item: &MailItem,
    prefs: &[BodyPreference],
) -> Result<Option<Element>, BackendError> {
    if class != Class::Email {
        return pim::data(b, who, collection, class, item.uid, prefs).await;
    }
    let Some(raw) = b.mail_raw(who.principal, collection, item.uid).await? else {
        return Ok(None);
    };
    Ok(Some(email::application_data(
        &raw,
        &message_state(item),
        prefs,
        &server_id(collection, item.uid),
        who.is16,
    )))
}

fn add_command(collection: i64, uid: i64, data: Element) -> Element {
    Element::named("AirSync", "Add")
        .with(a("ServerId", server_id(collection, uid)))
        .with(data)
}

/// What one Collection of a request gets.
pub struct CollectionOutcome {
    pub element: Element,
    /// True when the answer carries something for the device (commands,
    /// responses, a new key): a hanging Sync answers at once then.
    pub news: bool,
}

/// Answers one Collection of a Sync request.
pub async fn sync_collection(
    b: &dyn EasBackend,
    who: &Caller<'_>,
    folders: &[Folder],
    req: &CollectionRequest,
    window: usize,
) -> Result<CollectionOutcome, BackendError> {
    let done = |element: Element| {
        Ok(CollectionOutcome {
            element,
            news: true,
        })
    };
    let id = req.collection_id.as_str();
    // Another principal's folder, or one that went away: the client must
    // refresh its folder list (status 12, MS-ASCMD 2.2.3.177.17).
    let Some(folder) = id
        .parse::<i64>()
        .ok()
        .and_then(|n| folders.iter().find(|f| f.id == n))
    else {
        // A device that keeps coming back with it is slowed down.
        if let (Some(g), Ok(n)) = (&who.loops, id.parse::<i64>()) {
            if g.gone(who.principal, who.device_id, n) {
                tokio::time::sleep(crate::loops::GONE_DELAY).await;
            }
        }
        return done(collection_answer(
            &req.sync_key,
            id,
            12,
            false,
            vec![],
            vec![],
        ));
    };
    let col = folder.id;
    let class = folder.class();
    // 16.x writes drafts by their fields (MS-ASEMAIL 16.0).
    let is_drafts = folder.folder_type == 3 && who.is16;
    let filter = req.filter.unwrap_or(0);
    if filter_since(filter, 0).is_none() {
        return done(collection_answer(
            &req.sync_key,
            id,
            4,
            false,
            vec![],
            vec![],
        ));
    }
    let stored = b.sync_state(who.principal, who.device_id, col).await?;
    let key = match state::parse_key(&req.sync_key) {
        ClientKey::Initial => {
            let Some((highest, uidnext)) = b.mail_point(who.principal, col).await? else {
                return done(collection_answer("0", id, 12, false, vec![], vec![]));
            };
            let st = MailState {
                m: highest,
                s: vec![],
                c: uidnext,
                k: Ranges::new(),
                f: filter,
            };
            let key = state::first_key();
            b.put_sync_state(
                who.principal,
                who.device_id,
                col,
                None,
                &StoredState::first(key, &st),
            )
            .await?;
            return done(collection_answer(
                &key.to_string(),
                id,
                1,
                false,
                vec![],
                vec![],
            ));
        }
        ClientKey::Invalid => return done(collection_answer("0", id, 3, false, vec![], vec![])),
        ClientKey::Key(k) => k,
    };
    let stored = match state::match_key(stored.as_ref(), key) {
        Match::Current(s) => s.clone(),
        Match::Replay(answer) => {
            // The same key once more; again and again, and the device
            // cannot take the answer: start the folder over.
            if who
                .loops
                .as_ref()
                .is_some_and(|g| g.replayed(who.principal, who.device_id, col, key))
            {
                return done(collection_answer("0", id, 3, false, vec![], vec![]));
            }
            return done(answer);
        }
        Match::Mismatch => return done(collection_answer("0", id, 3, false, vec![], vec![])),
    };
    let Some(mut st) = stored.parse::<MailState>() else {
        return done(collection_answer("0", id, 3, false, vec![], vec![]));
    };
    let Some((_, uidnext)) = b.mail_point(who.principal, col).await? else {
        return done(collection_answer(
            &req.sync_key,
            id,
            12,
            false,
            vec![],
            vec![],
        ));
    };
    let now = now();
    if req.filter.is_some() && filter != st.f {
        let wider = filter_since(filter, now) < filter_since(st.f, now);
        st.f = filter;
        if wider {
            // Sweep again; what the device has is skipped.
            st.c = uidnext;
        }
    }
    let since = filter_since(st.f, now).unwrap_or(0);
    let before = st.clone();

    // The client's changes first.
    let mut responses = Vec::new();
    let trash = folders.iter().find(|f| f.folder_type == 4).map(|f| f.id);
    for cmd in &req.commands {
        match cmd {
            ClientCommand::Change {
                server_id: sid,
                data,
            } if class != Class::Email => {
                let status = match parse_server_id(col, sid) {
                    None => 8,
                    Some(item) => {
                        match pim::change(b, who, col, class, item, data.as_ref()).await? {
                            Ok(ms) => {
                                if ms > 0 {
                                    st.s.push((item, ms));
                                }
                                1
                            }
                            Err(s) => s,
                        }
                    }
                };
                if status != 1 {
                    responses.push(item_status("Change", sid, status.to_string()));
                }
            }
            ClientCommand::Change {
                server_id: sid,
                data,
            } if is_drafts
                && data
                    .as_ref()
                    .and_then(drafts::parse)
                    .is_some_and(|e| e.edits_message()) =>
            {
                let edit = data.as_ref().and_then(drafts::parse).unwrap_or_default();
                let status = match parse_server_id(col, sid) {
                    None => 8,
                    Some(uid) => match b.mail_raw(who.principal, col, uid).await? {
                        None => 8,
                        Some(old) => {
                            let draft = drafts::apply(drafts::from_message(&old), &edit);
                            draft_status(b, who, col, &draft, Some(uid), edit.send)
                                .await?
                                .map_or_else(|s| s, |_| 1)
                        }
                    },
                };
                if status != 1 {
                    responses.push(item_status("Change", sid, status.to_string()));
                }
            }
            ClientCommand::Change {
                server_id: sid,
                data,
            } => {
                let uid = parse_server_id(col, sid);
                let fc = data.as_ref().map(email::flag_change);
                let res = match (uid, fc) {
                    (Some(uid), Some(fc)) => b
                        .set_mail_flags(who.principal, col, uid, fc.read, fc.flagged)
                        .await?
                        .map(|ms| (uid, ms)),
                    (Some(uid), None) => Some((uid, 0)),
                    _ => None,
                };
                match res {
                    Some((uid, ms)) if ms > 0 => st.s.push((uid, ms)),
                    Some(_) => {}
                    None => responses.push(item_status("Change", sid, "8")),
                }
            }
            ClientCommand::Delete { server_id: sid } => {
                let gone = match parse_server_id(col, sid) {
                    None => false,
                    Some(item) if class != Class::Email => {
                        st.k.remove(item);
                        b.pim_delete(who.principal, col, item).await?
                    }
                    Some(uid) => {
                        let to_trash =
                            req.deletes_as_moves.unwrap_or(true) && trash.is_some_and(|t| t != col);
                        let n = match trash {
                            Some(t) if to_trash => {
                                b.move_mail(who.principal, col, &[uid], t).await?.len()
                            }
                            _ => b.expunge_mail(who.principal, col, &[uid]).await?.len(),
                        };
                        st.k.remove(uid);
                        n > 0
                    }
                };
                if !gone {
                    responses.push(item_status("Delete", sid, "8"));
                }
            }
            ClientCommand::Fetch { server_id: sid } => {
                let item = match parse_server_id(col, sid) {
                    Some(uid) => b.mail_item(who.principal, col, uid).await?,
                    None => None,
                };
                let data = match &item {
                    Some(m) => full_data(b, who, col, class, m, &req.prefs).await?,
                    None => None,
                };
                let mut r = Element::named("AirSync", "Fetch").with(a("ServerId", sid.clone()));
                match data {
                    Some(d) => r = r.with(a("Status", "1")).with(d),
                    None => r = r.with(a("Status", "8")),
                }
                responses.push(r);
            }
            ClientCommand::Add { client_id, data } if class != Class::Email => {
                let mut r = Element::named("AirSync", "Add").with(a("ClientId", client_id.clone()));
                match pim::add(b, who, col, class, data.as_ref()).await? {
                    Ok((item, ms)) => {
                        st.k.insert(item);
                        st.s.push((item, ms));
                        r = r
                            .with(a("ServerId", server_id(col, item)))
                            .with(a("Status", "1"));
                    }
                    Err(s) => r = r.with(a("Status", s.to_string())),
                }
                responses.push(r);
            }
            ClientCommand::Add { client_id, data } if is_drafts => {
                let mut r = Element::named("AirSync", "Add").with(a("ClientId", client_id.clone()));
                let edit = data.as_ref().and_then(drafts::parse);
                let outcome = match edit {
                    None => Err(6),
                    Some(e) => {
                        let fresh = drafts::Draft {
                            read: true,
                            ..drafts::Draft::default()
                        };
                        let draft = drafts::apply(fresh, &e);
                        draft_status(b, who, col, &draft, None, e.send).await?
                    }
                };
                match outcome {
                    Ok((uid, ms)) => {
                        st.k.insert(uid);
                        st.s.push((uid, ms));
                        r = r
                            .with(a("ServerId", server_id(col, uid)))
                            .with(a("Status", "1"));
                    }
                    Err(s) => r = r.with(a("Status", s.to_string())),
                }
                responses.push(r);
            }
            ClientCommand::Add { client_id, .. } => {
                // Mail is not created by Sync here (drafts are a 16.x
                // addition this server does not take yet): status 6,
                // "error in client/server conversion".
                responses.push(
                    Element::named("AirSync", "Add")
                        .with(a("ClientId", client_id.clone()))
                        .with(a("Status", "6")),
                );
            }
        }
    }

    // Then the server's.
    let mut commands = Vec::new();
    let mut more = false;
    if req.get_changes.unwrap_or(true) {
        match b.journal(who.principal, col, st.m).await? {
            Journal::Missing => {
                return done(collection_answer(
                    &req.sync_key,
                    id,
                    12,
                    false,
                    vec![],
                    vec![],
                ))
            }
            Journal::TooOld => {
                return done(collection_answer("0", id, 3, false, vec![], vec![]));
            }
            Journal::Changes {
                highest,
                live,
                removed,
            } => {
                more = collect(
                    b,
                    who,
                    col,
                    class,
                    req,
                    &mut st,
                    highest,
                    live,
                    removed,
                    since,
                    window,
                    &mut commands,
                )
                .await?;
            }
        }
    }
    let client_sent = !req.commands.is_empty();
    if commands.is_empty() && responses.is_empty() && !more && !client_sent {
        // Nothing for the device: same key; keep a moved journal point.
        if st != before {
            let same = StoredState {
                state: serde_json::to_string(&st).unwrap_or_default(),
                ..stored.clone()
            };
            b.put_sync_state(who.principal, who.device_id, col, Some(key), &same)
                .await?;
        }
        return Ok(CollectionOutcome {
            element: collection_answer(&req.sync_key, id, 1, false, vec![], vec![]),
            news: false,
        });
    }
    let element = collection_answer(&(key + 1).to_string(), id, 1, more, commands, responses);
    let next = stored.next(&st, &element);
    if !b
        .put_sync_state(who.principal, who.device_id, col, Some(key), &next)
        .await?
    {
        // Another request of this device moved the state meanwhile.
        return done(collection_answer("0", id, 3, false, vec![], vec![]));
    }
    done(element)
}

/// Files a draft (replacing `replace`), and sends it when `send`: the
/// new (UID, modseq), or a Sync status (6 for a draft that cannot be
/// written, the send refusal's status otherwise).
async fn draft_status(
    b: &dyn EasBackend,
    who: &Caller<'_>,
    col: i64,
    draft: &drafts::Draft,
    replace: Option<i64>,
    send: bool,
) -> Result<Result<(i64, i64), u32>, BackendError> {
    let Some((uid, ms)) = b.save_draft(who.principal, col, draft, replace).await? else {
        return Ok(Err(6));
    };
    if send {
        let Some(raw) = b.mail_raw(who.principal, col, uid).await? else {
            return Ok(Err(8));
        };
        if let Err(r) = b.send_mail(who.principal, &raw, true, None).await? {
            tracing::info!(col, uid, "activesync: draft not sent: {r:?}");
            // Sync has no send statuses: "error in client/server
            // conversion" for what was refused, the draft stays.
            return Ok(Err(6));
        }
        // Sent and filed in Sent: the draft goes.
        b.expunge_mail(who.principal, col, &[uid]).await?;
    }
    Ok(Ok((uid, ms)))
}

/// Fills `out` with up to `window` changes: the journal's first, then the
/// backlog. True when more remain.
#[allow(clippy::too_many_arguments)]
async fn collect(
    b: &dyn EasBackend,
    who: &Caller<'_>,
    col: i64,
    class: Class,
    req: &CollectionRequest,
    st: &mut MailState,
    highest: i64,
    live: Vec<(i64, i64)>,
    removed: Vec<(i64, i64)>,
    since: i64,
    window: usize,
    out: &mut Vec<Element>,
) -> Result<bool, BackendError> {
    let sent: HashMap<i64, i64> = st.s.iter().copied().collect();
    let mut pending: Vec<(i64, i64, bool)> = live
        .into_iter()
        .map(|(u, m)| (m, u, true))
        .chain(removed.into_iter().map(|(u, m)| (m, u, false)))
        .filter(|&(m, u, _)| sent.get(&u) != Some(&m))
        .map(|(m, u, l)| (u, m, l))
        .collect();
    pending.sort_by_key(|&(u, m, _)| (m, u));
    let mut cut = false;
    for (uid, ms, is_live) in pending {
        if out.len() >= window {
            cut = true;
            break;
        }
        if !is_live {
            if st.k.contains(uid) {
                out.push(
                    Element::named("AirSync", "Delete").with(a("ServerId", server_id(col, uid))),
                );
                st.k.remove(uid);
            }
        } else if st.k.contains(uid) {
            if let Some(m) = b.mail_item(who.principal, col, uid).await? {
                // A message changes only in its flags; a calendar object
                // or contact is sent whole again.
                let data = if class == Class::Email {
                    Some(flags_data(&m))
                } else {
                    full_data(b, who, col, class, &m, &req.prefs).await?
                };
                if let Some(d) = data {
                    out.push(
                        Element::named("AirSync", "Change")
                            .with(a("ServerId", server_id(col, uid)))
                            .with(d),
                    );
                }
            }
        } else if uid >= st.c || st.c == 0 {
            // New to the device (the backlog sends the older ones).
            if let Some(m) = b.mail_item(who.principal, col, uid).await? {
                if m.internal_date >= since {
                    if let Some(d) = full_data(b, who, col, class, &m, &req.prefs).await? {
                        out.push(add_command(col, uid, d));
                        st.k.insert(uid);
                    }
                }
            }
        }
        st.s.push((uid, ms));
    }
    if cut {
        return Ok(true);
    }
    st.m = highest;
    st.s.clear();
    // The backlog, newest first.
    while st.c > 0 {
        let room = window.saturating_sub(out.len());
        let batch = b
            .mail_below(who.principal, col, st.c, since, room.max(1) + 1)
            .await?;
        if batch.is_empty() {
            st.c = 0;
            break;
        }
        for m in &batch {
            if st.k.contains(m.uid) {
                st.c = m.uid;
                continue;
            }
            if out.len() >= window {
                return Ok(true);
            }
            if let Some(d) = full_data(b, who, col, class, m, &req.prefs).await? {
                out.push(add_command(col, m.uid, d));
                st.k.insert(m.uid);
            }
            st.c = m.uid;
        }
        if batch.len() <= room {
            // Fewer than asked: the backlog is through.
            st.c = 0;
        }
    }
    Ok(false)
}

/// Whether a folder has something for the device (Ping, hanging Sync,
/// GetItemEstimate): how many changes it would be sent, counted without
/// reading items; `None` when the device must start over.
pub async fn pending(
    b: &dyn EasBackend,
    who: &Caller<'_>,
    col: i64,
    stored: &StoredState,
) -> Result<Option<i64>, BackendError> {
    let Some(st) = stored.parse::<MailState>() else {
        return Ok(None);
    };
    let (live, removed) = match b.journal(who.principal, col, st.m).await? {
        Journal::Changes { live, removed, .. } => (live, removed),
        Journal::TooOld | Journal::Missing => return Ok(None),
    };
    let sent: HashMap<i64, i64> = st.s.iter().copied().collect();
    let mut n = 0;
    for (u, m) in live {
        if sent.get(&u) != Some(&m) && (st.k.contains(u) || u >= st.c || st.c == 0) {
            n += 1;
        }
    }
    for (u, m) in removed {
        if sent.get(&u) != Some(&m) && st.k.contains(u) {
            n += 1;
        }
    }
    if st.c > 0 {
        let since = filter_since(st.f, now()).unwrap_or(0);
        let below = b.mail_count_below(who.principal, col, st.c, since).await?;
        n += (below - st.k.count_below(st.c)).max(0);
    }
    Ok(Some(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_ids() {
        assert_eq!(server_id(5, 12), "5:12");
        assert_eq!(parse_server_id(5, "5:12"), Some(12));
        assert_eq!(parse_server_id(6, "5:12"), None);
        assert_eq!(parse_server_id(5, "5:x"), None);
        assert_eq!(parse_server_id(5, "5:0"), None);
        assert_eq!(parse_server_id(5, "512"), None);
    }

    #[test]
    fn filters() {
        assert_eq!(filter_since(0, 1000), Some(0));
        assert_eq!(filter_since(3, 1_000_000), Some(1_000_000 - 7 * 86_400));
        assert_eq!(filter_since(9, 0), None);
    }

    #[test]
    fn parses_a_request() {
        let root = Element::named("AirSync", "Sync").with(
            Element::named("AirSync", "Collections").with(
                Element::named("AirSync", "Collection")
                    .with(a("SyncKey", "7"))
                    .with(a("CollectionId", "3"))
                    .with(Element::named("AirSync", "DeletesAsMoves").with_text("0"))
                    .with(Element::named("AirSync", "GetChanges"))
                    .with(a("WindowSize", "25"))
                    .with(Element::named("AirSync", "Options").with(a("FilterType", "3")))
                    .with(
                        Element::named("AirSync", "Commands")
                            .with(Element::named("AirSync", "Delete").with(a("ServerId", "3:4")))
                            .with(Element::named("AirSync", "Fetch").with(a("ServerId", "3:5"))),
                    ),
            ),
        );
        let r = parse(&root).unwrap();
        let c = &r.collections[0];
        assert_eq!((c.sync_key.as_str(), c.collection_id.as_str()), ("7", "3"));
        assert_eq!(
            (c.get_changes, c.deletes_as_moves, c.window, c.filter),
            (Some(true), Some(false), Some(25), Some(3))
        );
        assert_eq!(c.commands.len(), 2);
        assert!(parse(&Element::named("Ping", "Ping")).is_none());
        let bad = Element::named("AirSync", "Sync").with(
            Element::named("AirSync", "Collections")
                .with(Element::named("AirSync", "Collection").with(a("SyncKey", "1"))),
        );
        assert!(parse(&bad).is_none());
    }
}
