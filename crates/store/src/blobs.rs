//! Message bodies as the rest of the store sees them: reading one from
//! wherever it lives (its row, a pack, a file of its own), storing one,
//! counting references, and facts recorded about a body when it is stored
//! (whether it ends with CRLF). The files themselves are `blob.rs` and
//! `pack.rs`; removing unreferenced bodies is the sweep's (`sweep.rs`).

use std::collections::HashSet;
use std::sync::Arc;

use sqlx::{AnyConnection, Row};

use crate::{now, BlobRef, Result, Store, StoreError};

/// Bodies looked at per write while filling in `ends_crlf` after the
/// migration that added it.
const BACKFILL_BATCH: i64 = 500;

/// Calendar objects and contacts up to this size live in their blobs row
/// ([`Store::put_groupware_blob`]).
pub const GROUPWARE_INLINE_MAX: usize = 64 * 1024;

/// Where a body is: its bytes when inline, its pack and offset, its size.
type BodyPlace = (Option<Vec<u8>>, Option<i64>, Option<i64>, i64);

impl Store {
    /// A message body, from its database row, its pack or its file.
    pub async fn read_blob(&self, hash: &str) -> Result<Vec<u8>> {
        // A second look: compaction may have moved the body, and removed
        // its old pack, between reading the row and opening the pack.
        for attempt in 0..2 {
            let row =
                sqlx::query("SELECT data, pack, pack_offset, size FROM blobs WHERE hash = $1")
                    .bind(hash)
                    .fetch_optional(self.pool())
                    .await?;
            let Some(r) = row else { break };
            if let Some(data) = r.try_get::<Option<Vec<u8>>, _>("data")? {
                return Ok(data);
            }
            if let (Some(pack), Some(offset)) = (
                r.try_get::<Option<i64>, _>("pack")?,
                r.try_get::<Option<i64>, _>("pack_offset")?,
            ) {
                let size: i64 = r.try_get("size")?;
                match self.blobs().pack_read(pack, offset, size).await {
                    Err(StoreError::NotFound(_)) if attempt == 0 => continue,
                    other => return other,
                }
            }
            break;
        }
        self.blobs().get(hash).await
    }

    /// The blob of a calendar object or a contact: kept in the blobs row
    /// up to [`GROUPWARE_INLINE_MAX`] (an event or a vCard without a photo
    /// is a few KiB: it commits with its row in the writer's batch, with
    /// no file and no flush of its own, and a query reads it with the
    /// row), larger ones as [`Store::put_blob`] places them.
    pub(crate) async fn put_groupware_blob(&self, raw: Arc<[u8]>) -> Result<BlobRef> {
        if raw.len() <= GROUPWARE_INLINE_MAX {
            self.blobs().inline(raw)
        } else {
            self.put_blob(raw, false).await
        }
    }

    /// Turns a body into a blob reference: inline (written with the row that
    /// names it) when it is small, in a pack file (appended by the writer
    /// with the rest of its batch) up to the pack limit, otherwise a file of
    /// its own. A `deferred` file is not flushed yet; the writer flushes the
    /// blob file system once for the whole batch before committing (see
    /// `DeliverReq::needs_sync`). Packs are only used for deliveries, whose
    /// blobs the writer handles itself.
    pub(crate) async fn put_blob(&self, raw: Arc<[u8]>, deferred: bool) -> Result<BlobRef> {
        if raw.len() <= self.inline_max() {
            self.blobs().inline(raw)
        } else if deferred && raw.len() <= self.pack_max() {
            self.blobs().for_pack(raw)
        } else if deferred {
            self.blobs().put_deferred(raw).await
        } else {
            self.blobs().put(raw).await
        }
    }

    /// UIDs of the messages of a mailbox whose body does not end with CRLF
    /// (an empty body included), from the fact recorded when the body was
    /// stored; bodies stored before it was recorded are looked at.
    pub async fn uids_not_ending_in_crlf(&self, mailbox: i64) -> Result<HashSet<i64>> {
        let mut out: HashSet<i64> = sqlx::query_scalar(
            "SELECT m.uid FROM messages m JOIN blobs b ON b.hash = m.blob_hash \
             WHERE m.collection_id = $1 AND b.ends_crlf = 0",
        )
        .bind(mailbox)
        .fetch_all(self.pool())
        .await?
        .into_iter()
        .collect();
        let unknown: Vec<(i64, String)> = sqlx::query_as(
            "SELECT m.uid, m.blob_hash FROM messages m JOIN blobs b ON b.hash = m.blob_hash \
             WHERE m.collection_id = $1 AND b.ends_crlf IS NULL",
        )
        .bind(mailbox)
        .fetch_all(self.pool())
        .await?;
        for (uid, hash) in unknown {
            if !self.body_ends_crlf(&hash).await? {
                out.insert(uid);
            }
        }
        Ok(out)
    }

    /// Whether a stored body ends with CRLF, read from the body itself (its
    /// last two bytes where it is a pack or a file). A body that cannot be
    /// found counts as ending with CRLF: reading it reports the problem.
    async fn body_ends_crlf(&self, hash: &str) -> Result<bool> {
        let row: Option<BodyPlace> =
            sqlx::query_as("SELECT data, pack, pack_offset, size FROM blobs WHERE hash = $1")
                .bind(hash)
                .fetch_optional(self.pool())
                .await?;
        Ok(match row {
            None => true,
            Some((_, _, _, size)) if size < 2 => false,
            Some((Some(data), _, _, _)) => data.ends_with(b"\r\n"),
            Some((None, Some(pack), Some(offset), size)) => {
                match self.blobs().pack_read(pack, offset + size - 2, 2).await {
                    Ok(tail) => tail == b"\r\n",
                    Err(_) => true,
                }
            }
            Some(_) => {
                let blobs = self.blobs().clone();
                let hash = hash.to_string();
                tokio::task::spawn_blocking(move || blobs.ends_with_crlf(&hash))
                    .await
                    .map_err(|e| StoreError::Internal(e.to_string()))?
            }
        })
    }

    /// Records `ends_crlf` for bodies stored before schema version 7, in
    /// rounds. Runs in the background after opening; until it is done,
    /// [`Store::uids_not_ending_in_crlf`] reads the bodies it has not
    /// reached.
    pub(crate) async fn backfill_ends_crlf(&self) -> Result<usize> {
        let mut done = 0;
        let mut after = String::new();
        loop {
            let hashes: Vec<String> = sqlx::query_scalar(&format!(
                "SELECT hash FROM blobs WHERE ends_crlf IS NULL AND hash > $1 ORDER BY hash LIMIT {BACKFILL_BATCH}"
            ))
            .bind(&after)
            .fetch_all(self.pool())
            .await?;
            let Some(last) = hashes.last() else {
                return Ok(done);
            };
            after = last.clone();
            let mut facts = Vec::with_capacity(hashes.len());
            for h in hashes {
                let ends = self.body_ends_crlf(&h).await?;
                facts.push((h, ends));
            }
            done += facts.len();
            self.write(move |c, _| {
                Box::pin(async move {
                    for (h, ends) in facts {
                        sqlx::query(
                            "UPDATE blobs SET ends_crlf = $1 WHERE hash = $2 AND ends_crlf IS NULL",
                        )
                        .bind(ends as i64)
                        .bind(h)
                        .execute(&mut *c)
                        .await?;
                    }
                    Ok(())
                })
            })
            .await?;
        }
    }
}

/// Takes `n` references to a blob in one statement. When the row is new
/// or was unreferenced, the sweeper may have removed the file: check it is
/// there (the sweeper runs in this same writer, so it cannot remove it
/// between this check and the commit).
pub(crate) async fn acquire_blob(
    c: &mut AnyConnection,
    blobs: &crate::BlobStore,
    blob: &BlobRef,
    n: i64,
) -> Result<()> {
    let row = sqlx::query(
        "INSERT INTO blobs (hash, size, refcount, zero_since, data) VALUES ($1, $2, $3, NULL, $4) \
         ON CONFLICT (hash) DO UPDATE SET refcount = CASE WHEN blobs.refcount > 0 THEN blobs.refcount + $3 ELSE $3 END, \
         zero_since = NULL, data = COALESCE(blobs.data, excluded.data) \
         RETURNING refcount, CAST(CASE WHEN data IS NULL AND pack IS NULL THEN 1 ELSE 0 END AS BIGINT) AS on_disk",
    )
    .bind(&blob.hash)
    .bind(blob.size as i64)
    .bind(n)
    .bind(blob.inline.as_deref())
    .fetch_one(&mut *c)
    .await?;
    let refs: i64 = row.try_get("refcount")?;
    let on_disk: i64 = row.try_get("on_disk")?;
    if refs == n && on_disk == 1 && !blobs.exists(&blob.hash) {
        return Err(StoreError::Unavailable(format!(
            "blob {} vanished before commit",
            blob.hash
        )));
    }
    Ok(())
}

pub(crate) async fn release_blob(c: &mut AnyConnection, hash: &str, n: i64) -> Result<()> {
    sqlx::query(
        "UPDATE blobs SET refcount = refcount - $1, \
         zero_since = CASE WHEN refcount - $1 <= 0 THEN $2 ELSE NULL END WHERE hash = $3",
    )
    .bind(n)
    .bind(now())
    .bind(hash)
    .execute(&mut *c)
    .await?;
    Ok(())
}
