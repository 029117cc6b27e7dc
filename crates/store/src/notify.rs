//! Wake-ups for sessions waiting on a collection (IMAP IDLE; later
//! ActiveSync Ping and DAV push). The writer announces each collection's new
//! highest modseq once its transaction is durable.
//!
//! Several nodes on one PostgreSQL database: the writer also sends the
//! changed collections with `NOTIFY outpost_changes` inside the transaction
//! (PostgreSQL delivers it on commit), and every node's [`listen`] task
//! feeds what it hears into the same `announce`. After (re)connecting, the
//! listener announces the current modseq of every watched collection, so a
//! change made while it was not listening still wakes its waiters.

use std::collections::HashMap;
use std::sync::{Mutex, Weak};
use std::time::Duration;

use tokio::sync::watch;

#[derive(Default)]
pub struct Notifier {
    senders: Mutex<HashMap<i64, watch::Sender<i64>>>,
}

impl Notifier {
    /// A receiver that changes whenever the collection's modseq does.
    pub fn subscribe(&self, collection: i64) -> watch::Receiver<i64> {
        let mut map = self.senders.lock().unwrap();
        map.entry(collection)
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// Collections somebody waits on.
    pub fn watched(&self) -> Vec<i64> {
        let map = self.senders.lock().unwrap();
        map.iter()
            .filter(|(_, tx)| tx.receiver_count() > 0)
            .map(|(c, _)| *c)
            .collect()
    }

    pub fn announce(&self, collection: i64, modseq: i64) {
        let mut map = self.senders.lock().unwrap();
        if let Some(tx) = map.get(&collection) {
            if tx.receiver_count() == 0 {
                map.remove(&collection);
            } else {
                tx.send_if_modified(|v| {
                    if modseq > *v {
                        *v = modseq;
                        true
                    } else {
                        false
                    }
                });
            }
        }
    }
}

/// Not a collection: the built-in directory (principals, addresses, group
/// members). Its "modseq" is the store's `directory_version`; directory
/// writes announce it like a collection's, so the GAL refresh waits on
/// [`crate::Store::directory_changes`] the way IMAP IDLE waits on a mailbox,
/// across nodes on PostgreSQL too. Collection ids are positive.
pub const DIRECTORY: i64 = -1;

/// Not a collection: a principal's list of collections (the
/// per-principal journal's sequence), announced when a collection of
/// theirs is created, renamed, moved, deleted or shared, so an ActiveSync
/// Ping can answer "folder list changed" at once. Below [`DIRECTORY`].
pub fn hierarchy_channel(principal: i64) -> i64 {
    -2 - principal
}

/// The PostgreSQL channel changes are announced on.
pub(crate) const CHANNEL: &str = "outpost_changes";

/// PostgreSQL refuses payloads of 8000 bytes and more.
const PAYLOAD_MAX: usize = 7900;

/// `NOTIFY` statements announcing `touched` ("collection:modseq" pairs,
/// space-separated, split to fit the payload limit).
pub(crate) fn notify_statements(touched: &[(i64, i64)]) -> Vec<String> {
    let mut out = Vec::new();
    let mut payload = String::new();
    for (c, m) in touched {
        let item = format!("{c}:{m}");
        if !payload.is_empty() && payload.len() + 1 + item.len() > PAYLOAD_MAX {
            out.push(format!("NOTIFY {CHANNEL}, '{payload}'"));
            payload.clear();
        }
        if !payload.is_empty() {
            payload.push(' ');
        }
        payload.push_str(&item);
    }
    if !payload.is_empty() {
        out.push(format!("NOTIFY {CHANNEL}, '{payload}'"));
    }
    out
}

/// The pairs of a payload; anything malformed is skipped.
pub(crate) fn parse_payload(p: &str) -> Vec<(i64, i64)> {
    p.split_ascii_whitespace()
        .filter_map(|item| {
            let (c, m) = item.split_once(':')?;
            Some((c.parse().ok()?, m.parse().ok()?))
        })
        .collect()
}

/// Listens for other nodes' changes until the store is dropped.
pub(crate) async fn listen(url: String, store: Weak<crate::Inner>) {
    use sqlx::postgres::PgListener;
    let mut backoff = Duration::from_secs(1);
    loop {
        if store.strong_count() == 0 {
            return;
        }
        let mut l = match PgListener::connect(&url).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!("change listener cannot connect: {e}; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        if let Err(e) = l.listen(CHANNEL).await {
            tracing::warn!("change listener cannot LISTEN: {e}; retrying in {backoff:?}");
            tokio::time::sleep(backoff).await;
            continue;
        }
        backoff = Duration::from_secs(1);
        // Whatever committed while nobody listened.
        if let Some(inner) = store.upgrade() {
            if let Err(e) = catch_up(&inner).await {
                tracing::warn!("change listener catch-up failed: {e}");
            }
        }
        loop {
            let next = tokio::select! {
                n = l.try_recv() => n,
                // Notice a dropped store even when nothing is announced.
                _ = tokio::time::sleep(Duration::from_secs(10)) => {
                    if store.strong_count() == 0 {
                        return;
                    }
                    continue;
                }
            };
            match next {
                Ok(Some(n)) => {
                    let Some(inner) = store.upgrade() else { return };
                    for (c, m) in parse_payload(n.payload()) {
                        inner.notifier.announce(c, m);
                    }
                }
                // The connection was lost: start over (and catch up).
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!("change listener lost its connection: {e}");
                    break;
                }
            }
        }
    }
}

async fn catch_up(inner: &crate::Inner) -> crate::Result<()> {
    let mut watched = inner.notifier.watched();
    if let Some(i) = watched.iter().position(|c| *c == DIRECTORY) {
        watched.swap_remove(i);
        let v = crate::gal::directory_version_in(&inner.pool).await?;
        inner.notifier.announce(DIRECTORY, v);
    }
    // Principals' collection lists: their journal sequences.
    let (hier, rest): (Vec<i64>, Vec<i64>) = watched.into_iter().partition(|c| *c < DIRECTORY);
    let watched = rest;
    for chunk in hier.chunks(500) {
        let ids: Vec<i64> = chunk.iter().map(|c| -2 - c).collect();
        let q = format!(
            "SELECT id, journal_seq FROM principals WHERE id IN ({})",
            crate::mail::id_list(&ids)
        );
        let rows: Vec<(i64, i64)> = sqlx::query_as(&q).fetch_all(&inner.pool).await?;
        for (p, seq) in rows {
            inner.notifier.announce(hierarchy_channel(p), seq);
        }
    }
    for chunk in watched.chunks(500) {
        let q = format!(
            "SELECT id, highest_modseq FROM collections WHERE id IN ({})",
            crate::mail::id_list(chunk)
        );
        let rows: Vec<(i64, i64)> = sqlx::query_as(&q).fetch_all(&inner.pool).await?;
        for (c, m) in rows {
            inner.notifier.announce(c, m);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_fit() {
        let touched: Vec<(i64, i64)> = (0..2000).map(|i| (i, i * 1000 + 7)).collect();
        let stmts = notify_statements(&touched);
        assert!(stmts.len() > 1);
        let mut back = Vec::new();
        for s in &stmts {
            let payload = s
                .strip_prefix("NOTIFY outpost_changes, '")
                .and_then(|p| p.strip_suffix('\''))
                .unwrap();
            assert!(payload.len() < 8000);
            back.extend(parse_payload(payload));
        }
        assert_eq!(back, touched);
        assert!(notify_statements(&[]).is_empty());
        assert_eq!(parse_payload("1:2 x:3 4: 5:6 junk"), vec![(1, 2), (5, 6)]);
    }
}
