//! Ping (MS-ASCMD 2.2.1.13): the device names folders and a heartbeat;
//! the answer comes when one of them has something for it, or when the
//! heartbeat runs out. Waiting costs a task and a watch receiver per
//! folder, woken by the store's commit of a change: nothing polls.

use std::time::Duration;

use outpost_wbxml::Element;
use serde::{Deserialize, Serialize};

use crate::folders::{child_text, Folder};
use crate::loops::PingVerdict;
use crate::state::{self, StoredState};
use crate::sync::{self, Caller};
use crate::{BackendError, EasBackend};

/// Heartbeats a client may ask for (MS-ASCMD 2.2.3.88.1: Exchange takes
/// 60 to 3540 seconds).
pub const MIN_HEARTBEAT: u64 = 60;
pub const MAX_HEARTBEAT: u64 = 3540;
/// Folders one Ping may watch (status 6 above).
pub const MAX_FOLDERS: usize = 300;

/// A Ping's parameters; an empty Ping reuses the last ones.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PingRequest {
    pub heartbeat: u64,
    pub folders: Vec<i64>,
}

/// Reads a Ping request. `Err(status)` for one that is not well formed.
pub fn parse(root: &Element) -> Result<(Option<u64>, Option<Vec<i64>>), u32> {
    if !root.is("Ping", "Ping") {
        return Err(4);
    }
    let heartbeat = match child_text(root, "Ping", "HeartbeatInterval") {
        Some(h) => Some(h.parse().map_err(|_| 4u32)?),
        None => None,
    };
    let folders = match root.child("Ping", "Folders") {
        None => None,
        Some(f) => {
            let mut ids = Vec::new();
            for folder in f.elements().filter(|e| e.is("Ping", "Folder")) {
                let id = child_text(folder, "Ping", "Id").ok_or(4u32)?;
                ids.push(id.parse().map_err(|_| 4u32)?);
            }
            Some(ids)
        }
    };
    Ok((heartbeat, folders))
}

fn p(name: &str, v: impl Into<String>) -> Element {
    Element::named("Ping", name).with_text(v)
}

pub fn status_answer(status: u32) -> Element {
    Element::named("Ping", "Ping").with(p("Status", status.to_string()))
}

/// Status 5 (heartbeat out of range) with the nearest one allowed, or 6
/// (too many folders) with the most allowed.
pub fn limit_answer(status: u32, limit: &str, value: u64) -> Element {
    Element::named("Ping", "Ping")
        .with(p("Status", status.to_string()))
        .with(p(limit, value.to_string()))
}

pub fn changed_answer(ids: &[i64]) -> Element {
    let mut folders = Element::named("Ping", "Folders");
    for id in ids {
        folders = folders.with(p("Folder", id.to_string()));
    }
    Element::named("Ping", "Ping")
        .with(p("Status", "2"))
        .with(folders)
}

/// The folders among `ids` with something for the device. A folder the
/// device never synced counts as changed (it has to sync it first).
pub async fn changed(
    b: &dyn EasBackend,
    who: &Caller<'_>,
    ids: &[i64],
) -> Result<Vec<i64>, BackendError> {
    let mut out = Vec::new();
    for &id in ids {
        let stored = b.sync_state(who.principal, who.device_id, id).await?;
        let n = match &stored {
            Some(s) => sync::pending(b, who, id, s).await?,
            None => None,
        };
        if n != Some(0) {
            out.push(id);
        }
    }
    Ok(out)
}

/// Waits until one of `ids` has something for the device or `timeout`
/// passes; the changed folders (empty on timeout).
/// Which long poll of a device is the newest: a device's new Ping (or
/// hanging Sync) ends the one it left waiting (MS-ASCMD 3.1.5.1: the
/// server answers the first; the device has given up on it). Per process:
/// on several nodes behind one name, a device's requests go to one node
/// as long as its connection lives.
#[derive(Default)]
pub struct Waiters {
    devices:
        std::sync::Mutex<std::collections::HashMap<(i64, String), tokio::sync::watch::Sender<u64>>>,
}

/// One long poll's place among its device's: resolves [`Turn::superseded`]
/// when a newer one starts.
pub struct Turn {
    rx: tokio::sync::watch::Receiver<u64>,
    mine: u64,
    key: (i64, String),
    waiters: std::sync::Arc<Waiters>,
}

impl Waiters {
    /// Registers a new long poll of the device, ending the one before.
    pub fn start(self: &std::sync::Arc<Self>, principal: i64, device: &str) -> Turn {
        let key = (principal, device.to_string());
        let mut map = self.devices.lock().unwrap_or_else(|e| e.into_inner());
        let tx = map
            .entry(key.clone())
            .or_insert_with(|| tokio::sync::watch::channel(0).0);
        let mine = *tx.borrow() + 1;
        tx.send_replace(mine);
        let mut rx = tx.subscribe();
        rx.borrow_and_update();
        Turn {
            rx,
            mine,
            key,
            waiters: self.clone(),
        }
    }

    /// Devices with a long poll registered (for tests and the log).
    pub fn len(&self) -> usize {
        self.devices.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Turn {
    /// Resolves when a newer long poll of the device has started.
    pub async fn superseded(&mut self) {
        loop {
            if *self.rx.borrow_and_update() != self.mine {
                return;
            }
            if self.rx.changed().await.is_err() {
                // The registry entry went away: never superseded.
                std::future::pending::<()>().await;
            }
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        // The newest one leaving takes the device's entry with it.
        if let Ok(mut map) = self.waiters.devices.lock() {
            if map
                .get(&self.key)
                .is_some_and(|tx| *tx.borrow() == self.mine)
            {
                map.remove(&self.key);
            }
        }
    }
}

/// With `hold`, what is already there does not answer: only a change
/// after the wait began (a looping device, [`crate::loops`]).
pub async fn wait(
    b: &dyn EasBackend,
    who: &Caller<'_>,
    ids: &[i64],
    timeout: Duration,
    hold: bool,
) -> Result<Vec<i64>, BackendError> {
    Ok(match wait_or_hierarchy(b, who, ids, timeout, hold).await? {
        Waited::Changed(v) => v,
        Waited::Nothing | Waited::Hierarchy => Vec::new(),
    })
}

/// What a wait ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waited {
    Changed(Vec<i64>),
    Nothing,
    /// The user's folder list changed and the device's is stale.
    Hierarchy,
}

/// [`wait`], also woken by a change of the user's folder list that the
/// device has not seen.
pub async fn wait_or_hierarchy(
    b: &dyn EasBackend,
    who: &Caller<'_>,
    ids: &[i64],
    timeout: Duration,
    hold: bool,
) -> Result<Waited, BackendError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut turn = who
        .waiters
        .as_ref()
        .map(|w| w.start(who.principal, who.device_id));
    let mut parked = false;
    let mut watches: Vec<_> = ids.iter().filter_map(|&id| b.watch(id)).collect();
    for w in &mut watches {
        w.borrow_and_update();
    }
    let mut hierarchy = b.watch_hierarchy(who.principal);
    if let Some(h) = &mut hierarchy {
        h.borrow_and_update();
    }
    let mut first = true;
    loop {
        if !(first && hold) {
            let now = changed(b, who, ids).await?;
            if !now.is_empty() {
                return Ok(Waited::Changed(now));
            }
        }
        first = false;
        if !parked {
            parked = true;
            if let Some(lp) = &who.long_poll {
                lp.park();
            }
        }
        let newer = async {
            match &mut turn {
                Some(t) => t.superseded().await,
                None => std::future::pending().await,
            }
        };
        let folder_list = async {
            match &mut hierarchy {
                Some(h) => {
                    if h.changed().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
                None => std::future::pending().await,
            }
        };
        let any = async {
            if watches.is_empty() {
                std::future::pending::<bool>().await
            } else {
                futures_any(&mut watches).await
            }
        };
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return Ok(Waited::Nothing),
            // The device sent another Ping: this one ends as if its
            // heartbeat had run out.
            _ = newer => return Ok(Waited::Nothing),
            _ = folder_list => {
                let folders = b.folders(who.principal).await?;
                if crate::folders::hierarchy_changed(b, who, &folders).await? {
                    return Ok(Waited::Hierarchy);
                }
            }
            woke = any => {
                if !woke {
                    // Every sender went away (the store closed).
                    return Ok(Waited::Nothing);
                }
            }
        }
    }
}

/// Resolves when any receiver sees a new value (true) or all are closed
/// (false). Polled in place: no task per folder. EWS streaming
/// notifications wait with it too.
pub async fn futures_any(watches: &mut [tokio::sync::watch::Receiver<i64>]) -> bool {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::Poll;
    let woke = {
        let mut futs: Vec<Option<Pin<Box<dyn Future<Output = bool> + Send + '_>>>> = watches
            .iter_mut()
            .map(|w| {
                Some(Box::pin(async move { w.changed().await.is_ok() })
                    as Pin<Box<dyn Future<Output = bool> + Send + '_>>)
            })
            .collect();
        std::future::poll_fn(|cx| {
            let mut open = false;
            for slot in futs.iter_mut() {
                let Some(f) = slot else { continue };
                match f.as_mut().poll(cx) {
                    Poll::Ready(true) => return Poll::Ready(true),
                    // Closed: never polled again.
                    Poll::Ready(false) => *slot = None,
                    Poll::Pending => open = true,
                }
            }
            if open {
                Poll::Pending
            } else {
                Poll::Ready(false)
            }
        })
        .await
    };
    if woke {
        for w in watches.iter_mut() {
            w.borrow_and_update();
        }
    }
    woke
}

/// Answers a Ping. The request and the folder list are taken by value:
/// they are gone before the wait (a held Ping keeps only what it waits
/// on, docs/benchmarks.md "ActiveSync").
pub async fn ping(
    b: &dyn EasBackend,
    who: &Caller<'_>,
    folders: Vec<Folder>,
    root: Option<Element>,
    hierarchy_changed: bool,
) -> Result<Element, BackendError> {
    let (heartbeat, ids) = match root.as_ref().map(parse) {
        None => (None, None),
        Some(Ok(x)) => x,
        Some(Err(s)) => return Ok(status_answer(s)),
    };
    drop(root);
    let saved = b
        .sync_state(who.principal, who.device_id, state::PING)
        .await?;
    let last: Option<PingRequest> = saved.as_ref().and_then(|s| s.parse());
    drop(saved);
    let heartbeat = heartbeat.or(last.as_ref().map(|l| l.heartbeat));
    let ids = ids.or(last.as_ref().map(|l| l.folders.clone()));
    let (Some(heartbeat), Some(ids)) = (heartbeat, ids) else {
        // Nothing given and nothing to reuse (MS-ASCMD 2.2.3.177.12).
        return Ok(status_answer(3));
    };
    if heartbeat < MIN_HEARTBEAT {
        return Ok(limit_answer(5, "HeartbeatInterval", MIN_HEARTBEAT));
    }
    if heartbeat > MAX_HEARTBEAT {
        return Ok(limit_answer(5, "HeartbeatInterval", MAX_HEARTBEAT));
    }
    if ids.len() > MAX_FOLDERS {
        return Ok(limit_answer(6, "MaxFolders", MAX_FOLDERS as u64));
    }
    let req = PingRequest {
        heartbeat,
        folders: ids.clone(),
    };
    if last.as_ref() != Some(&req) {
        b.put_sync_state(
            who.principal,
            who.device_id,
            state::PING,
            None,
            &StoredState::first(0, &req),
        )
        .await?;
    }
    // A folder the device names that is not (or no longer) its own: it
    // must sync the hierarchy first (status 7).
    if hierarchy_changed || ids.iter().any(|id| !folders.iter().any(|f| f.id == *id)) {
        return Ok(status_answer(7));
    }
    drop(folders);
    // Changes already there answer at once, unless the device keeps
    // pinging without syncing them (crate::loops).
    let mut hold = false;
    let now = changed(b, who, &ids).await?;
    if !now.is_empty() {
        let verdict = who.loops.as_ref().map_or(PingVerdict::Answer, |g| {
            g.ping_changes(who.principal, who.device_id, &now)
        });
        match verdict {
            PingVerdict::Answer => return Ok(changed_answer(&now)),
            PingVerdict::ForceFolderSync => return Ok(status_answer(7)),
            PingVerdict::Hold => hold = true,
        }
    }
    Ok(
        match wait_or_hierarchy(b, who, &ids, Duration::from_secs(heartbeat), hold).await? {
            Waited::Changed(c) => changed_answer(&c),
            Waited::Nothing => status_answer(1),
            // MS-ASCMD 2.2.3.177.12: the folder hierarchy must be synced.
            Waited::Hierarchy => status_answer(7),
        },
    )
}

#[cfg(test)]
mod waiter_tests {
    use super::*;

    #[tokio::test]
    async fn any_watch_wakes_and_closed_ones_end() {
        let (tx1, rx1) = tokio::sync::watch::channel(0i64);
        let (tx2, rx2) = tokio::sync::watch::channel(0i64);
        let mut rxs = vec![rx1, rx2];
        let sender = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            tx2.send(5).unwrap();
            tx2
        });
        assert!(
            tokio::time::timeout(Duration::from_secs(1), futures_any(&mut rxs))
                .await
                .unwrap()
        );
        let tx2 = sender.await.unwrap();
        // Seen: no wake for the same value.
        assert!(
            tokio::time::timeout(Duration::from_millis(30), futures_any(&mut rxs))
                .await
                .is_err()
        );
        drop(tx1);
        drop(tx2);
        assert!(!futures_any(&mut rxs).await);
    }

    #[tokio::test]
    async fn a_newer_poll_ends_the_older() {
        let w = std::sync::Arc::new(Waiters::default());
        let mut first = w.start(1, "dev");
        let other = w.start(1, "other-device");
        let second = w.start(1, "dev");
        tokio::time::timeout(Duration::from_secs(1), first.superseded())
            .await
            .expect("the first is superseded");
        drop(first);
        assert_eq!(w.len(), 2);
        drop(second);
        drop(other);
        assert!(w.is_empty());
        // The newest is not superseded by itself.
        let mut only = w.start(2, "d");
        assert!(
            tokio::time::timeout(Duration::from_millis(50), only.superseded())
                .await
                .is_err()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let root = Element::named("Ping", "Ping")
            .with(p("HeartbeatInterval", "480"))
            .with(
                Element::named("Ping", "Folders").with(
                    Element::named("Ping", "Folder")
                        .with(p("Id", "5"))
                        .with(p("Class", "Email")),
                ),
            );
        assert_eq!(parse(&root), Ok((Some(480), Some(vec![5]))));
        assert_eq!(parse(&Element::named("Ping", "Ping")), Ok((None, None)));
        let bad = Element::named("Ping", "Ping").with(p("HeartbeatInterval", "x"));
        assert_eq!(parse(&bad), Err(4));
    }
}
