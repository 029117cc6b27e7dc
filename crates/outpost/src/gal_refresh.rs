//! Keeps every domain's Global Address List address book current while
//! `serve` runs (`outpost_directory::refresh_gal` applies the difference):
//!
//! - once at start;
//! - within [`CHECK_EVERY`] of a change to the built-in directory, which
//!   the CLI makes from another process: the store's `directory_version`
//!   (one row) is read that often and a refresh runs when it moved;
//! - every `[directory] gal_refresh` (default 15 minutes) with an LDAP
//!   source, whose changes nobody tells us about.
//!
//! A refresh that fails (LDAP unreachable) changes nothing and is tried
//! again after [`RETRY_AFTER`].

use std::time::Duration;

use outpost_directory::Directory;
use tokio::sync::watch;
use tokio::time::Instant;

/// How often the directory's change counter is read.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);
/// Wait after a failed refresh.
pub const RETRY_AFTER: Duration = Duration::from_secs(30);

/// Runs the refresh loop until `stop` changes. `interval`: the timed
/// refresh (`None`: only on start and on built-in changes).
pub fn spawn(dir: Directory, interval: Option<Duration>, mut stop: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut seen: Option<i64> = None;
        let mut next_full = Instant::now();
        let mut not_before = Instant::now();
        loop {
            let now = Instant::now();
            let version = match dir.store().directory_version().await {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::warn!("gal: reading the directory's change counter: {e}");
                    None
                }
            };
            let changed = version.is_some() && version != seen;
            let due = interval.is_some() && now >= next_full;
            if (changed || due || seen.is_none()) && now >= not_before && version.is_some() {
                let started = Instant::now();
                match outpost_directory::refresh_gal(&dir).await {
                    Ok(r) => {
                        seen = version;
                        if let Some(i) = interval {
                            next_full = Instant::now() + i;
                        }
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
            tokio::select! {
                _ = tokio::time::sleep(CHECK_EVERY) => {}
                _ = stop.changed() => return,
            }
        }
    });
}
