//! Notifications (MS-OXWSNTIF): Subscribe (pull and streaming),
//! GetEvents, GetStreamingEvents, Unsubscribe — from the change journal,
//! woken by the store's change channels like IMAP IDLE and ActiveSync
//! Ping, never by polling the store.
//!
//! A **watermark** is where a subscriber is: per watched folder its
//! modseq and next item number (so items above it are new: Created and,
//! in mail folders, NewMail; items at or below it that changed are
//! Modified; tombstones are Deleted), and the principal's collection
//! journal sequence (folder events). It is opaque to the client (base64)
//! and carries everything needed to answer, so the only server state is
//! the subscription itself: who, which folders, which event types, and
//! for streaming the current watermark. Subscriptions live in the serving
//! process (as Exchange's are affine to a server); an unknown or expired
//! one is `ErrorSubscriptionNotFound`, after which clients subscribe
//! again. Push subscriptions (the server calling a client URL) are not
//! offered: they need outbound HTTP to a client-given address.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use outpost_activesync::Journal;
use outpost_xml::Element;

use super::folders::{self, EwsFolder, Kind, Resolved};
use super::{child_tm, invalid, OpError, OpResult};
use crate::ids;
use crate::soap::{error, response, success, NS_M, NS_T};
use crate::Ctx;

/// Subscriptions one principal may hold (Exchange's default throttle).
pub const MAX_PER_PRINCIPAL: usize = 20;
/// Events in one notification; more are left for the next call
/// (`MoreEvents`).
pub const MAX_EVENTS: usize = 512;
/// How often a streaming connection says it is alive when nothing
/// happens.
pub const KEEPALIVE: Duration = Duration::from_secs(30);

const EVENT_TYPES: &[&str] = &[
    "CopiedEvent",
    "CreatedEvent",
    "DeletedEvent",
    "ModifiedEvent",
    "MovedEvent",
    "NewMailEvent",
    "FreeBusyChangedEvent",
];

#[derive(Debug, Clone)]
struct Subscription {
    principal: i64,
    /// `None`: every folder of the mailbox.
    folders: Option<Vec<i64>>,
    events: Vec<String>,
    streaming: bool,
    /// Pull: dropped after this long without a GetEvents.
    timeout: Duration,
    last_used: Instant,
    /// Streaming: where the subscriber is.
    watermark: Watermark,
}

/// The process's subscriptions.
#[derive(Default)]
pub struct Subscriptions {
    map: Mutex<HashMap<String, Subscription>>,
}

impl Subscriptions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Subscription>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The subscription, if it is the principal's and alive (and marks it
    /// used).
    fn get(&self, id: &str, principal: i64) -> Option<Subscription> {
        let mut map = self.lock();
        let now = Instant::now();
        map.retain(|_, s| s.streaming || now.duration_since(s.last_used) < s.timeout);
        let s = map.get_mut(id).filter(|s| s.principal == principal)?;
        s.last_used = now;
        Some(s.clone())
    }

    fn set_watermark(&self, id: &str, w: Watermark) {
        if let Some(s) = self.lock().get_mut(id) {
            s.watermark = w;
        }
    }
}

/// Where a subscriber is: the collection journal sequence and, per
/// folder, (modseq, next item number).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Watermark {
    pub hierarchy: i64,
    pub folders: Vec<(i64, i64, i64)>,
}

impl Watermark {
    pub fn encode(&self) -> String {
        let mut b = vec![1u8, b'W'];
        b.extend_from_slice(&self.hierarchy.to_be_bytes());
        for (c, m, n) in &self.folders {
            b.extend_from_slice(&c.to_be_bytes());
            b.extend_from_slice(&m.to_be_bytes());
            b.extend_from_slice(&n.to_be_bytes());
        }
        STANDARD.encode(b)
    }

    pub fn decode(s: &str) -> Option<Watermark> {
        let b = STANDARD.decode(s.trim()).ok()?;
        if b.len() < 10 || b[0] != 1 || b[1] != b'W' || (b.len() - 10) % 24 != 0 {
            return None;
        }
        let n = |i: usize| i64::from_be_bytes(b[i..i + 8].try_into().unwrap_or_default());
        let folders = (10..b.len())
            .step_by(24)
            .map(|i| (n(i), n(i + 8), n(i + 16)))
            .collect();
        Some(Watermark {
            hierarchy: n(2),
            folders,
        })
    }

    fn point(&self, folder: i64) -> Option<(i64, i64)> {
        self.folders
            .iter()
            .find(|(c, _, _)| *c == folder)
            .map(|(_, m, n)| (*m, *n))
    }
}

fn random_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 18];
    rand::thread_rng().fill_bytes(&mut b);
    STANDARD.encode(b)
}

/// The folders a subscription watches now, from the tree.
fn watched<'a>(tree: &'a [EwsFolder], folders: &Option<Vec<i64>>) -> Vec<&'a EwsFolder> {
    tree.iter()
        .filter(|f| f.id > 0)
        .filter(|f| folders.as_ref().is_none_or(|l| l.contains(&f.id)))
        .collect()
}

/// The watermark of `folders` as they are now.
async fn current(ctx: &Ctx<'_>, folders: &[&EwsFolder]) -> Result<Watermark, OpError> {
    let principal = ctx.user.principal_id;
    let mut w = Watermark {
        hierarchy: ctx.backend.hierarchy_seq(principal).await?,
        folders: Vec::new(),
    };
    for f in folders {
        if let Some((modseq, next)) = ctx.backend.mail_point(principal, f.id).await? {
            w.folders.push((f.id, modseq, next));
        }
    }
    Ok(w)
}

pub async fn subscribe(ctx: &Ctx<'_>, op: &Element) -> OpResult {
    let name = "Subscribe";
    let (req, streaming) = match (
        op.child(NS_M, "PullSubscriptionRequest"),
        op.child(NS_M, "StreamingSubscriptionRequest"),
    ) {
        (Some(r), _) => (r, false),
        (_, Some(r)) => (r, true),
        _ => {
            let push = op.child(NS_M, "PushSubscriptionRequest").is_some();
            return Ok(response(
                name,
                vec![error(
                    name,
                    "ErrorInvalidSubscriptionRequest",
                    if push {
                        "Push subscriptions are not offered; use pull or streaming."
                    } else {
                        "The request holds no subscription request."
                    },
                )],
            ));
        }
    };
    let all = req.attr("SubscribeToAllFolders") == Some("true");
    let tree = folders::tree(ctx).await?;
    let mut folder_ids = Vec::new();
    if !all {
        let list = child_tm(req, "FolderIds")
            .ok_or_else(|| invalid("A subscription names FolderIds or SubscribeToAllFolders."))?;
        for el in &list.children {
            match folders::resolve(ctx, &tree, el) {
                Resolved::Found(f) => folder_ids.push(f.id),
                Resolved::Error(code, text) => {
                    return Ok(response(name, vec![error(name, code, text)]))
                }
            }
        }
    }
    let events: Vec<String> = child_tm(req, "EventTypes")
        .map(|e| {
            e.children
                .iter()
                .map(|c| c.text.trim().to_string())
                .collect()
        })
        .unwrap_or_default();
    if events.is_empty() || events.iter().any(|e| !EVENT_TYPES.contains(&e.as_str())) {
        return Ok(response(
            name,
            vec![error(
                name,
                "ErrorInvalidSubscriptionRequest",
                "EventTypes must name at least one known event type.",
            )],
        ));
    }
    let timeout = match child_tm(req, "Timeout").map(|t| t.text.trim().parse::<u64>()) {
        None => 30,
        Some(Ok(m)) if (1..=1440).contains(&m) => m,
        Some(_) => return Err(invalid("Timeout is 1 to 1440 minutes.")),
    };
    let folders_opt = (!all).then_some(folder_ids);
    let watermark = match child_tm(req, "Watermark").map(|w| w.text.trim()) {
        Some(w) if !streaming && !w.is_empty() => match Watermark::decode(w) {
            Some(w) => w,
            None => {
                return Ok(response(
                    name,
                    vec![error(
                        name,
                        "ErrorInvalidWatermark",
                        "The watermark is not one of ours.",
                    )],
                ))
            }
        },
        _ => current(ctx, &watched(&tree, &folders_opt)).await?,
    };
    let id = random_id();
    {
        let subs = ctx.subscriptions;
        let mut map = subs.lock();
        let principal = ctx.user.principal_id;
        let now = Instant::now();
        map.retain(|_, s| s.streaming || now.duration_since(s.last_used) < s.timeout);
        if map.values().filter(|s| s.principal == principal).count() >= MAX_PER_PRINCIPAL {
            return Ok(response(
                name,
                vec![error(
                    name,
                    "ErrorExceededSubscriptionCount",
                    "Too many subscriptions for this account; unsubscribe first.",
                )],
            ));
        }
        map.insert(
            id.clone(),
            Subscription {
                principal,
                folders: folders_opt,
                events,
                streaming,
                timeout: Duration::from_secs(timeout * 60),
                last_used: now,
                watermark: watermark.clone(),
            },
        );
    }
    let mut msg = success(name).with(Element::new(NS_M, "SubscriptionId").with_text(id));
    if !streaming {
        msg.push(Element::new(NS_M, "Watermark").with_text(watermark.encode()));
    }
    Ok(response(name, vec![msg]))
}

pub async fn unsubscribe(ctx: &Ctx<'_>, op: &Element) -> OpResult {
    let name = "Unsubscribe";
    let id = child_tm(op, "SubscriptionId")
        .map(|s| s.text.trim().to_string())
        .unwrap_or_default();
    let mut map = ctx.subscriptions.lock();
    let ok = map
        .get(&id)
        .is_some_and(|s| s.principal == ctx.user.principal_id);
    if ok {
        map.remove(&id);
    }
    drop(map);
    Ok(response(
        name,
        vec![if ok { success(name) } else { not_found(name) }],
    ))
}

fn not_found(name: &str) -> Element {
    error(
        name,
        "ErrorSubscriptionNotFound",
        "The subscription is unknown or has expired; subscribe again.",
    )
}

fn now() -> String {
    super::oof::utc(chrono::Utc::now().timestamp())
}

/// The events after `from` for the subscription, and the watermark after
/// them. `None` when a folder's journal no longer reaches the watermark.
async fn events_since(
    ctx: &Ctx<'_>,
    sub: &Subscription,
    from: &Watermark,
) -> Result<Option<(Vec<Element>, Watermark, bool)>, OpError> {
    let principal = ctx.user.principal_id;
    let tree = folders::tree(ctx).await?;
    let folders = watched(&tree, &sub.folders);
    let wants = |e: &str| sub.events.iter().any(|x| x == e);
    let mut events: Vec<(i64, Element)> = Vec::new();
    let mut next = Watermark {
        hierarchy: from.hierarchy,
        folders: Vec::new(),
    };
    let mut more = false;
    let folder_id = |id: i64| folders::folder_id_element(ctx, "FolderId", id, 0);
    let parent_id = |id: i64| folders::folder_id_element(ctx, "ParentFolderId", id, 0);
    // Folder events, for a subscription to the whole mailbox.
    if sub.folders.is_none() {
        if let Some((seq, changed)) = ctx
            .backend
            .hierarchy_changes(principal, from.hierarchy)
            .await?
        {
            next.hierarchy = seq;
            for (id, created) in changed {
                let f = tree.iter().find(|f| f.id == id);
                let kind = match (f, created) {
                    (Some(_), true) => "CreatedEvent",
                    (Some(_), false) => "ModifiedEvent",
                    (None, _) => "DeletedEvent",
                };
                if !wants(kind) {
                    continue;
                }
                let mut ev = Element::new(NS_T, kind)
                    .with(Element::new(NS_T, "TimeStamp").with_text(now()))
                    .with(folder_id(id));
                if let Some(p) = f.and_then(|f| f.parent) {
                    ev.push(parent_id(p));
                }
                events.push((seq, ev));
            }
        }
    }
    for f in &folders {
        let (since, next_item) = from.point(f.id).unwrap_or((0, 1));
        let j = ctx.backend.journal(principal, f.id, since).await?;
        let (highest, mut live, removed) = match j {
            Journal::Changes {
                highest,
                live,
                removed,
            } => (highest, live, removed),
            Journal::TooOld => return Ok(None),
            Journal::Missing => continue,
        };
        live.sort_by_key(|(_, m)| *m);
        let mut folder_events: Vec<(i64, Element)> = Vec::new();
        let mut top_new = next_item;
        for (item, modseq) in &live {
            let created = *item >= next_item;
            top_new = top_new.max(item + 1);
            let item_el = Element::new(NS_T, "ItemId")
                .with_attr("Id", ids::item_id(principal, f.id, *item))
                .with_attr("ChangeKey", ids::change_key(*modseq));
            let mut kinds = Vec::new();
            if created {
                kinds.push("CreatedEvent");
                if f.kind == Kind::Mail {
                    kinds.push("NewMailEvent");
                }
            } else {
                kinds.push("ModifiedEvent");
            }
            for k in kinds.into_iter().filter(|k| wants(k)) {
                folder_events.push((
                    *modseq,
                    Element::new(NS_T, k)
                        .with(Element::new(NS_T, "TimeStamp").with_text(now()))
                        .with(item_el.clone())
                        .with(parent_id(f.id)),
                ));
            }
        }
        if wants("DeletedEvent") {
            for (item, modseq) in &removed {
                folder_events.push((
                    *modseq,
                    Element::new(NS_T, "DeletedEvent")
                        .with(Element::new(NS_T, "TimeStamp").with_text(now()))
                        .with(
                            Element::new(NS_T, "ItemId")
                                .with_attr("Id", ids::item_id(principal, f.id, *item))
                                .with_attr("ChangeKey", ids::change_key(*modseq)),
                        )
                        .with(parent_id(f.id)),
                ));
            }
        }
        folder_events.sort_by_key(|(m, _)| *m);
        let room = MAX_EVENTS.saturating_sub(events.len());
        if folder_events.len() > room {
            // Take what fits, by modseq; the rest comes next time.
            more = true;
            let upto = folder_events[room.saturating_sub(1).min(folder_events.len() - 1)].0;
            let upto = if room == 0 { since } else { upto };
            folder_events.retain(|(m, _)| *m <= upto);
            next.folders.push((f.id, upto, next_item));
        } else {
            let next_item = match ctx.backend.mail_point(principal, f.id).await? {
                Some((_, n)) => n.max(top_new),
                None => top_new,
            };
            next.folders.push((f.id, highest, next_item));
        }
        events.extend(folder_events);
    }
    Ok(Some((
        events.into_iter().map(|(_, e)| e).collect(),
        next,
        more,
    )))
}

/// `m:Notification` with the events, or a StatusEvent when there are
/// none.
fn notification(
    id: &str,
    previous: &Watermark,
    next: &Watermark,
    events: Vec<Element>,
    more: bool,
) -> Element {
    let mut n = Element::new(NS_M, "Notification")
        .with(Element::new(NS_T, "SubscriptionId").with_text(id))
        .with(Element::new(NS_T, "PreviousWatermark").with_text(previous.encode()))
        .with(Element::new(NS_T, "MoreEvents").with_text(if more { "true" } else { "false" }));
    let w = next.encode();
    if events.is_empty() {
        n.push(
            Element::new(NS_T, "StatusEvent").with(Element::new(NS_T, "Watermark").with_text(w)),
        );
    } else {
        for mut e in events {
            e.children
                .insert(0, Element::new(NS_T, "Watermark").with_text(w.clone()));
            n.push(e);
        }
    }
    n
}

pub async fn get_events(ctx: &Ctx<'_>, op: &Element) -> OpResult {
    let name = "GetEvents";
    let id = child_tm(op, "SubscriptionId")
        .map(|s| s.text.trim().to_string())
        .unwrap_or_default();
    let Some(sub) = ctx
        .subscriptions
        .get(&id, ctx.user.principal_id)
        .filter(|s| !s.streaming)
    else {
        return Ok(response(name, vec![not_found(name)]));
    };
    let Some(from) = child_tm(op, "Watermark").and_then(|w| Watermark::decode(&w.text)) else {
        return Ok(response(
            name,
            vec![error(
                name,
                "ErrorInvalidWatermark",
                "The watermark is not one of ours.",
            )],
        ));
    };
    match events_since(ctx, &sub, &from).await? {
        None => Ok(response(
            name,
            vec![error(
                name,
                "ErrorInvalidWatermark",
                "The change journal no longer reaches this watermark; subscribe again.",
            )],
        )),
        Some((events, next, more)) => Ok(response(
            name,
            vec![success(name).with(notification(&id, &from, &next, events, more))],
        )),
    }
}

/// What a GetStreamingEvents asks for: the subscriptions, if they are all
/// the caller's streaming ones, and the connection's time.
pub fn streaming_request(ctx: &Ctx<'_>, op: &Element) -> Result<(Vec<String>, Duration), Element> {
    let name = "GetStreamingEvents";
    let ids: Vec<String> = child_tm(op, "SubscriptionIds")
        .map(|l| {
            l.children
                .iter()
                .map(|c| c.text.trim().to_string())
                .collect()
        })
        .unwrap_or_default();
    let minutes = child_tm(op, "ConnectionTimeout")
        .and_then(|t| t.text.trim().parse::<u64>().ok())
        .filter(|m| (1..=30).contains(m));
    let Some(minutes) = minutes else {
        return Err(response(
            name,
            vec![error(
                name,
                "ErrorInvalidRequest",
                "ConnectionTimeout is 1 to 30 minutes.",
            )],
        ));
    };
    if ids.is_empty()
        || ids.iter().any(|id| {
            ctx.subscriptions
                .get(id, ctx.user.principal_id)
                .is_none_or(|s| !s.streaming)
        })
    {
        return Err(response(name, vec![not_found(name)]));
    }
    Ok((ids, Duration::from_secs(minutes * 60)))
}

/// One message of a streaming answer: `ConnectionStatus` and the
/// notifications.
fn streaming_message(status: &str, notifications: Vec<Element>) -> Element {
    let mut msg = success("GetStreamingEvents");
    if !notifications.is_empty() {
        let mut list = Element::new(NS_M, "Notifications");
        list.children = notifications;
        msg.push(list);
    }
    msg.push(Element::new(NS_M, "ConnectionStatus").with_text(status));
    response("GetStreamingEvents", vec![msg])
}

/// Serves a streaming connection: sends each notification as it
/// happens (a whole SOAP envelope each, as Exchange does), a keep-alive
/// every [`KEEPALIVE`], and `Closed` when the time is up. `send` returns
/// false when the client has gone.
pub async fn stream(
    ctx: &Ctx<'_>,
    ids: &[String],
    until: Duration,
    send: &mut (dyn FnMut(Element) -> bool + Send),
) -> Result<(), OpError> {
    let principal = ctx.user.principal_id;
    let deadline = tokio::time::Instant::now() + until;
    if !send(streaming_message("OK", Vec::new())) {
        return Ok(());
    }
    loop {
        // Watch before reading, so nothing between the two is missed.
        let tree = folders::tree(ctx).await?;
        let mut rxs = Vec::new();
        let mut subs = Vec::new();
        for id in ids {
            let Some(s) = ctx.subscriptions.get(id, principal) else {
                continue;
            };
            for f in watched(&tree, &s.folders) {
                if let Some(rx) = ctx.backend.watch(f.id) {
                    rxs.push(rx);
                }
            }
            if s.folders.is_none() {
                if let Some(rx) = ctx.backend.watch_hierarchy(principal) {
                    rxs.push(rx);
                }
            }
            subs.push((id.clone(), s));
        }
        if subs.is_empty() {
            send(streaming_message("Closed", Vec::new()));
            return Ok(());
        }
        for rx in rxs.iter_mut() {
            rx.borrow_and_update();
        }
        let mut notes = Vec::new();
        for (id, s) in &subs {
            let from = s.watermark.clone();
            match events_since(ctx, s, &from).await? {
                Some((events, next, more)) if !events.is_empty() => {
                    ctx.subscriptions.set_watermark(id, next.clone());
                    notes.push(notification(id, &from, &next, events, more));
                }
                Some((_, next, _)) => ctx.subscriptions.set_watermark(id, next),
                None => {}
            }
        }
        if !notes.is_empty() && !send(streaming_message("OK", notes)) {
            return Ok(());
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            send(streaming_message("Closed", Vec::new()));
            return Ok(());
        }
        let wait = (deadline - now).min(KEEPALIVE);
        let woke =
            tokio::time::timeout(wait, outpost_activesync::ping::futures_any(&mut rxs)).await;
        if woke.is_err()
            && tokio::time::Instant::now() < deadline
            && !send(streaming_message("OK", Vec::new()))
        {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermarks_round_trip() {
        let w = Watermark {
            hierarchy: 7,
            folders: vec![(3, 10, 4), (9, 1, 1)],
        };
        assert_eq!(Watermark::decode(&w.encode()), Some(w));
        assert_eq!(
            Watermark::decode(&Watermark::default().encode()),
            Some(Watermark::default())
        );
        assert_eq!(Watermark::decode("AAAA"), None);
        assert_eq!(Watermark::decode(&crate::ids::change_key(1)), None);
    }
}
