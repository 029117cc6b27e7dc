//! Keeps every domain's Global Address List address book current while
//! `serve` runs (`outpost_directory::refresh_gal` applies the difference):
//!
//! - once at start;
//! - after each change to the built-in directory: the store announces every
//!   committed write to principals, addresses and group members
//!   ([`outpost_store::Store::directory_changes`], the same wake-up that
//!   IMAP IDLE uses, carried between nodes by PostgreSQL's LISTEN/NOTIFY).
//!   On SQLite a change made by another process (the CLI) is not
//!   announced, so there the store's `directory_version` (one row) is also
//!   read every [`SQLITE_CHECK_EVERY`];
//! - every `[directory] gal_refresh` (default 15 minutes) with an LDAP
//!   source, whose changes nobody tells us about.
//!
//! A refresh that fails (LDAP unreachable) changes nothing and is tried
//! again after [`RETRY_AFTER`].

use std::time::Duration;

use outpost_directory::Directory;
use outpost_store::Backend;
use tokio::sync::watch;
use tokio::time::Instant;

/// How often a server on SQLite reads the directory's change counter, for
/// changes other processes made.
pub const SQLITE_CHECK_EVERY: Duration = Duration::from_secs(2);
/// Wait after a failed refresh.
pub const RETRY_AFTER: Duration = Duration::from_secs(30);
/// After a change is announced, wait this long for more before refreshing
/// (`outpost user add` is several writes; a script adds many users).
const SETTLE: Duration = Duration::from_millis(200);

/// Runs the refresh loop until `stop` changes. `interval`: the timed
/// refresh (`None`: only on start and on built-in changes).
pub fn spawn(dir: Directory, interval: Option<Duration>, mut stop: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let poll = dir.store().backend() == Backend::Sqlite;
        let mut changes = dir.store().directory_changes();
        // The counter as of the last successful refresh.
        let mut seen: Option<i64> = None;
        let mut wanted = true;
        let mut not_before = Instant::now();
        let mut next_full = interval.map(|i| Instant::now() + i);
        loop {
            let now = Instant::now();
            if wanted && now >= not_before {
                // Read before listing: a change during the refresh moves
                // the counter past it and brings another refresh.
                let version = match dir.store().directory_version().await {
                    Ok(v) => Some(v),
                    Err(e) => {
                        tracing::warn!("gal: reading the directory's change counter: {e}");
                        None
                    }
                };
                let started = Instant::now();
                match outpost_directory::refresh_gal(&dir).await {
                    Ok(r) => {
                        seen = version.or(seen);
                        wanted = false;
                        next_full = interval.map(|i| Instant::now() + i);
                        if r.added + r.changed + r.removed > 0 {
                            tracing::info!(
                                domains = r.domains,
                                added = r.added,
                                changed = r.changed,
                                removed = r.removed,
                                unchanged = r.unchanged,
                                skipped = r.skipped,
                                ms = started.elapsed().as_millis() as u64,
                                "gal: refreshed"
                            );
                        }
                    }
                    Err(e) => {
                        tracing::warn!("gal: refresh failed, the GAL is left as it was: {e}");
                        not_before = Instant::now() + RETRY_AFTER;
                    }
                }
            }
            // The next moment a timer matters: a retry, the timed refresh,
            // the SQLite check.
            let mut wake: Option<Instant> = next_full;
            if wanted {
                wake = Some(wake.map_or(not_before, |w| w.min(not_before)));
            }
            if poll {
                let p = Instant::now() + SQLITE_CHECK_EVERY;
                wake = Some(wake.map_or(p, |w| w.min(p)));
            }
            let timer = async {
                match wake {
                    Some(w) => tokio::time::sleep_until(w).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = changes.changed() => {
                    if r.is_err() {
                        return; // the store is gone
                    }
                    tokio::time::sleep(SETTLE).await;
                    changes.borrow_and_update();
                    wanted = true;
                }
                _ = timer => {
                    if next_full.is_some_and(|t| Instant::now() >= t) {
                        wanted = true;
                    }
                    if poll && !wanted {
                        match dir.store().directory_version().await {
                            Ok(v) if Some(v) != seen => wanted = true,
                            Ok(_) => {}
                            Err(e) => tracing::warn!("gal: reading the directory's change counter: {e}"),
                        }
                    }
                }
                _ = stop.changed() => return,
            }
        }
    });
}
