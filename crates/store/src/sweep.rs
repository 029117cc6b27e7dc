//! The sweep: the store's periodic maintenance, run by the binary every
//! `[storage] sweep_interval`. It removes bodies whose last reference went
//! away (and pack files nothing names), compacts packs that are mostly dead
//! space, and prunes the change journals below their retention (see
//! `sync.rs`). Each step works in rounds, each its own write, so deliveries
//! go on in between.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::sync::PruneReport;
use crate::{now, BlobStore, Result, Store, StoreError};

/// Unreferenced blobs deleted per write transaction of a sweep, and per
/// sweep at most.
const SWEEP_BATCH: usize = 1000;
const SWEEP_MAX: usize = 200_000;

/// Packs compacted per sweep at most (each is a pause of the writer for
/// reading and rewriting up to half a pack).
const COMPACT_PER_SWEEP: usize = 4;

/// Default for [`SweepPolicy::journal_keep_secs`]: 90 days.
pub const DEFAULT_JOURNAL_KEEP_SECS: i64 = 90 * 86400;

/// What one sweep keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepPolicy {
    /// A body stays this long after its last reference went away.
    pub blob_grace_secs: i64,
    /// Journal rows (tombstones included) stay this long; older ones are
    /// pruned and the journals' floors raised.
    pub journal_keep_secs: i64,
}

impl Default for SweepPolicy {
    fn default() -> Self {
        SweepPolicy {
            blob_grace_secs: 3600,
            journal_keep_secs: DEFAULT_JOURNAL_KEEP_SECS,
        }
    }
}

/// What one sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub blobs: usize,
    pub journal: PruneReport,
}

impl Store {
    /// One sweep: blobs and packs ([`Store::sweep_blobs`]), then the
    /// journals ([`Store::prune_journals`]).
    pub async fn sweep(&self, policy: SweepPolicy) -> Result<SweepReport> {
        let blobs = self.sweep_blobs(policy.blob_grace_secs).await?;
        let journal = self.prune_journals(policy.journal_keep_secs).await?;
        Ok(SweepReport { blobs, journal })
    }

    /// Deletes blobs whose last reference went away more than `grace_secs`
    /// ago, compacts packs that are mostly dead space, and removes pack
    /// files no row names (see `pack.rs`). Returns the blobs deleted.
    pub async fn sweep_blobs(&self, grace_secs: i64) -> Result<usize> {
        // In rounds of SWEEP_BATCH rows, each its own write, so deliveries
        // go on in between; until the backlog is gone (or SWEEP_MAX rows).
        let mut deleted = 0;
        let mut packs = std::collections::BTreeSet::new();
        loop {
            let blobs = self.blobs().clone();
            // Runs in the writer so no delivery can take a new reference to
            // a body while it is being removed.
            let (n, p) = self
                .write(move |c, _| {
                    Box::pin(async move {
                        let doomed: Vec<(String, Option<i64>)> = sqlx::query_as(&format!(
                            "SELECT hash, pack FROM blobs WHERE refcount <= 0 AND zero_since < $1 LIMIT {SWEEP_BATCH}"
                        ))
                        .bind(now() - grace_secs)
                        .fetch_all(&mut *c)
                        .await?;
                        for chunk in doomed.chunks(200) {
                            let list = (1..=chunk.len())
                                .map(|i| format!("${i}"))
                                .collect::<Vec<_>>()
                                .join(",");
                            let q = format!(
                                "DELETE FROM blobs WHERE refcount <= 0 AND hash IN ({list})"
                            );
                            let mut query = sqlx::query(&q);
                            for (h, _) in chunk {
                                query = query.bind(h);
                            }
                            query.execute(&mut *c).await?;
                        }
                        let mut packs = std::collections::BTreeSet::new();
                        for (h, pack) in &doomed {
                            match pack {
                                Some(p) => {
                                    packs.insert(*p);
                                }
                                None => blobs.remove(h)?,
                            }
                        }
                        Ok((doomed.len(), packs))
                    })
                })
                .await?;
            deleted += n;
            packs.extend(p);
            if n < SWEEP_BATCH || deleted >= SWEEP_MAX {
                break;
            }
        }
        packs.extend(self.compact_packs(COMPACT_PER_SWEEP).await?);
        // Packs no row names: those just emptied, and any older than the
        // grace period (a batch that never committed, after a crash between
        // its flush and its commit).
        let named: HashSet<i64> =
            sqlx::query_scalar::<_, i64>("SELECT DISTINCT pack FROM blobs WHERE pack IS NOT NULL")
                .fetch_all(self.pool())
                .await?
                .into_iter()
                .collect();
        let grace = std::time::Duration::from_secs(grace_secs.max(0) as u64);
        let list = {
            let b = self.blobs().clone();
            tokio::task::spawn_blocking(move || b.packs().list())
                .await
                .map_err(|e| StoreError::Internal(e.to_string()))??
        };
        for (id, _, modified) in list {
            let old = modified.elapsed().is_ok_and(|age| age >= grace);
            if named.contains(&id) || !(packs.contains(&id) || old) {
                continue;
            }
            let Some(lock) = self.blobs().packs().lock_for_removal(id)? else {
                continue;
            };
            // Looked at again under the lock: a row committed since the
            // list above keeps the pack.
            let still: Option<i64> =
                sqlx::query_scalar("SELECT pack FROM blobs WHERE pack = $1 LIMIT 1")
                    .bind(id)
                    .fetch_optional(self.pool())
                    .await?;
            if still.is_none() {
                lock.remove()?;
            }
        }
        Ok(deleted)
    }

    /// Moves the live bodies of up to `limit` packs whose live bytes are
    /// less than half their size into the current pack, checking each
    /// against its hash on the way. Returns the packs emptied.
    pub async fn compact_packs(&self, limit: usize) -> Result<Vec<i64>> {
        let blobs = self.blobs().clone();
        let current = blobs.packs().current();
        let sizes: HashMap<i64, u64> = {
            let b = blobs.clone();
            tokio::task::spawn_blocking(move || b.packs().list())
                .await
                .map_err(|e| StoreError::Internal(e.to_string()))??
                .into_iter()
                .map(|(id, len, _)| (id, len))
                .collect()
        };
        let live: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT pack, CAST(SUM(size) AS BIGINT) FROM blobs WHERE pack IS NOT NULL GROUP BY pack ORDER BY pack",
        )
        .fetch_all(self.pool())
        .await?;
        let sparse: Vec<i64> = live
            .into_iter()
            .filter(|(p, bytes)| {
                Some(*p) != current && sizes.get(p).is_some_and(|len| (*bytes as u64) * 2 < *len)
            })
            .map(|(p, _)| p)
            .take(limit)
            .collect();
        let mut emptied = Vec::new();
        for pack in sparse {
            let b = blobs.clone();
            let moved = self
                .write(move |c, _| {
                    Box::pin(async move {
                        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
                            "SELECT hash, size, pack_offset FROM blobs WHERE pack = $1",
                        )
                        .bind(pack)
                        .fetch_all(&mut *c)
                        .await?;
                        let b2 = b.clone();
                        let data = tokio::task::spawn_blocking(move || b2.packs().read_all(pack))
                            .await
                            .map_err(|e| StoreError::Internal(e.to_string()))??;
                        let mut hashes = Vec::new();
                        let mut bodies: Vec<Arc<[u8]>> = Vec::new();
                        for (hash, size, offset) in rows {
                            let body = usize::try_from(offset)
                                .ok()
                                .zip(usize::try_from(size).ok())
                                .and_then(|(o, n)| data.get(o..o.checked_add(n)?));
                            match body {
                                Some(body) if BlobStore::hash(body) == hash => {
                                    hashes.push(hash);
                                    bodies.push(Arc::from(body));
                                }
                                _ => {
                                    // Left where it is (so the pack stays):
                                    // a damaged body is not copied over a
                                    // good-looking place.
                                    tracing::error!(
                                        "pack {pack}: body {hash} at {offset} does not match its hash; not moved"
                                    );
                                    return Ok(false);
                                }
                            }
                        }
                        if !bodies.is_empty() {
                            let (slots, write) = b.pack_start(bodies).await?;
                            write
                                .await
                                .map_err(|e| StoreError::Internal(e.to_string()))??;
                            for (hash, (p, off)) in hashes.iter().zip(slots) {
                                sqlx::query("UPDATE blobs SET pack = $1, pack_offset = $2 WHERE hash = $3")
                                    .bind(p)
                                    .bind(off)
                                    .bind(hash)
                                    .execute(&mut *c)
                                    .await?;
                            }
                        }
                        Ok(true)
                    })
                })
                .await?;
            if moved {
                emptied.push(pack);
            }
        }
        Ok(emptied)
    }
}
