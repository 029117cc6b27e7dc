//! Devices that loop (documented by Z-Push, Horde and SOGo users): a Ping
//! that keeps reporting changes the device never syncs, a device that
//! resends the same SyncKey over and over (it cannot take the answer),
//! one that keeps syncing a folder it was told is gone (status 12), and
//! Outlook's stream of empty Syncs. Each is noticed per device, logged
//! with the device id, and broken: a looping Ping is told to resync the
//! folder list once (status 7) and then held until something new
//! happens; a SyncKey resent five times starts the folder over (status 3);
//! a device that ignores status 12 or sends empty Syncs back to back is
//! slowed down (its answer is held). In memory per process; nothing here
//! changes what a well-behaved device sees.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Ping answers with the same unsynced folders before the device is told
/// to resync its folder list.
pub const PING_REPEATS: u32 = 3;
/// Replays of one SyncKey before the folder starts over.
pub const REPLAYS: u32 = 5;
/// Status 12 answers for one folder before they are slowed down.
pub const GONE_REPEATS: u32 = 3;
/// Empty Sync answers within [`EMPTY_WINDOW`] before they are held.
pub const EMPTY_SYNCS: usize = 10;
pub const EMPTY_WINDOW: Duration = Duration::from_secs(60);
/// How long a held empty Sync waits for changes.
pub const SLOW_DOWN: Duration = Duration::from_secs(30);
/// How long a status 12 answer to a device that ignores it is delayed.
pub const GONE_DELAY: Duration = Duration::from_secs(5);
/// Devices not seen for this long are forgotten.
const FORGET: Duration = Duration::from_secs(3600);

#[derive(Default)]
struct Device {
    /// Folders the last Ping reported, and how many Pings in a row did
    /// without a Sync of them.
    ping_folders: Vec<i64>,
    ping_repeats: u32,
    /// (folder, key) replayed, and how often.
    replay: Option<(i64, i64, u32)>,
    gone: HashMap<i64, u32>,
    empty: Vec<Instant>,
    seen: Option<Instant>,
}

/// What to do with a Ping that has changes to report at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PingVerdict {
    Answer,
    /// Status 7: the device resyncs its folder list (and its idea of
    /// those folders).
    ForceFolderSync,
    /// Wait for something new before answering.
    Hold,
}

#[derive(Default)]
pub struct LoopGuard {
    devices: Mutex<HashMap<(i64, String), Device>>,
}

impl LoopGuard {
    fn with<T>(&self, principal: i64, device: &str, f: impl FnOnce(&mut Device) -> T) -> T {
        let mut map = self.devices.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if map.len() > 10_000 {
            map.retain(|_, d| d.seen.is_some_and(|s| now.duration_since(s) < FORGET));
        }
        let d = map.entry((principal, device.to_string())).or_default();
        d.seen = Some(now);
        f(d)
    }

    /// A Ping found `folders` changed before waiting.
    pub fn ping_changes(&self, principal: i64, device: &str, folders: &[i64]) -> PingVerdict {
        let mut sorted = folders.to_vec();
        sorted.sort_unstable();
        let (verdict, repeats) = self.with(principal, device, |d| {
            if d.ping_folders == sorted {
                d.ping_repeats += 1;
            } else {
                d.ping_folders = sorted.clone();
                d.ping_repeats = 1;
            }
            let v = match d.ping_repeats {
                n if n < PING_REPEATS => PingVerdict::Answer,
                n if n == PING_REPEATS => PingVerdict::ForceFolderSync,
                _ => PingVerdict::Hold,
            };
            (v, d.ping_repeats)
        });
        if verdict != PingVerdict::Answer {
            tracing::warn!(
                principal,
                device,
                ?folders,
                repeats,
                "activesync: Ping loop (changes reported, never synced): {}",
                if verdict == PingVerdict::ForceFolderSync {
                    "asking for a FolderSync"
                } else {
                    "holding the Ping until something new"
                }
            );
        }
        verdict
    }

    /// The device synced `folder`: what a Ping reported is being fetched.
    pub fn synced(&self, principal: i64, device: &str, folder: i64) {
        self.with(principal, device, |d| {
            if d.ping_folders.contains(&folder) {
                d.ping_folders.clear();
                d.ping_repeats = 0;
            }
            d.gone.remove(&folder);
        });
    }

    /// The device resent the previous key of `folder`: true when it has
    /// done so too often and the folder should start over.
    pub fn replayed(&self, principal: i64, device: &str, folder: i64, key: i64) -> bool {
        let n = self.with(principal, device, |d| {
            let n = match d.replay {
                Some((f, k, n)) if f == folder && k == key => n + 1,
                _ => 1,
            };
            d.replay = Some((folder, key, n));
            n
        });
        if n >= REPLAYS {
            tracing::warn!(
                principal,
                device,
                folder,
                key,
                replays = n,
                "activesync: Sync loop (the device keeps resending its previous key): starting the folder over"
            );
            self.with(principal, device, |d| d.replay = None);
            return true;
        }
        false
    }

    /// `folder` answered status 12: true when the device keeps coming
    /// back with it and should be slowed down.
    pub fn gone(&self, principal: i64, device: &str, folder: i64) -> bool {
        let n = self.with(principal, device, |d| {
            let n = d.gone.entry(folder).or_insert(0);
            *n += 1;
            *n
        });
        if n >= GONE_REPEATS {
            tracing::warn!(
                principal,
                device,
                folder,
                times = n,
                "activesync: the device ignores status 12 (folder gone): slowing it down"
            );
            return true;
        }
        false
    }

    /// A Sync answered nothing: true when the device sends them back to
    /// back and the next one should be held.
    pub fn empty_sync(&self, principal: i64, device: &str) -> bool {
        let now = Instant::now();
        let n = self.with(principal, device, |d| {
            d.empty.retain(|t| now.duration_since(*t) < EMPTY_WINDOW);
            d.empty.push(now);
            d.empty.len()
        });
        if n >= EMPTY_SYNCS {
            if n == EMPTY_SYNCS {
                tracing::warn!(
                    principal,
                    device,
                    within_secs = EMPTY_WINDOW.as_secs(),
                    "activesync: empty Sync loop: holding its answers"
                );
            }
            return true;
        }
        false
    }

    /// The device's Sync brought something: the empty streak ends.
    pub fn news(&self, principal: i64, device: &str) {
        self.with(principal, device, |d| d.empty.clear());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ping_loop_is_broken_and_a_sync_ends_it() {
        let g = LoopGuard::default();
        assert_eq!(g.ping_changes(1, "d", &[5]), PingVerdict::Answer);
        assert_eq!(g.ping_changes(1, "d", &[5]), PingVerdict::Answer);
        assert_eq!(g.ping_changes(1, "d", &[5]), PingVerdict::ForceFolderSync);
        assert_eq!(g.ping_changes(1, "d", &[5]), PingVerdict::Hold);
        // Another device is not affected.
        assert_eq!(g.ping_changes(1, "e", &[5]), PingVerdict::Answer);
        g.synced(1, "d", 5);
        assert_eq!(g.ping_changes(1, "d", &[5]), PingVerdict::Answer);
        // Other folders start their own count.
        assert_eq!(g.ping_changes(1, "d", &[6, 5]), PingVerdict::Answer);
    }

    #[test]
    fn replays_gone_and_empty_syncs() {
        let g = LoopGuard::default();
        for _ in 1..REPLAYS {
            assert!(!g.replayed(1, "d", 3, 42));
        }
        assert!(g.replayed(1, "d", 3, 42));
        assert!(!g.replayed(1, "d", 3, 42), "counting starts over");
        assert!(!g.replayed(1, "d", 3, 43));
        assert!(!g.gone(1, "d", 9));
        assert!(!g.gone(1, "d", 9));
        assert!(g.gone(1, "d", 9));
        for _ in 1..EMPTY_SYNCS {
            assert!(!g.empty_sync(1, "d"));
        }
        assert!(g.empty_sync(1, "d"));
        g.news(1, "d");
        assert!(!g.empty_sync(1, "d"));
    }
}
