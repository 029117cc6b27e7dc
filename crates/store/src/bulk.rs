//! Deliveries filed in bulk: the writer gathers every delivery of a batch
//! and files them with a handful of multi-row statements (one blob upsert,
//! one UID/modseq allocation per mailbox, multi-row inserts of messages and
//! journal rows) instead of several statements per message. This is what
//! lets one writer keep up with many concurrent SMTP sessions.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use sqlx::{AnyConnection, Row};

use crate::meta::MessageMeta;
use crate::{now, BlobRef, BlobStore, Delivered, Result, StoreError, Target, Touched};

pub(crate) struct DeliverReq {
    pub blob: BlobRef,
    pub targets: Vec<Target>,
    pub internal_date: i64,
    pub meta: Arc<(MessageMeta, String)>,
    /// The blob is a file written with `put_deferred`: the writer flushes
    /// the blob file system once for the whole batch before filing.
    pub needs_sync: bool,
    /// The body ends with CRLF (recorded in `blobs.ends_crlf`).
    pub ends_crlf: bool,
}

const ROWS_PER_INSERT: usize = 40;

/// Files every request; on error nothing of the call should be kept (the
/// caller rolls back to its savepoint).
/// Where each pack-bound body goes, and the write (one write, one flush
/// for the batch) that must finish before COMMIT.
pub(crate) type PackedBodies = (
    HashMap<String, (i64, i64)>,
    Option<tokio::task::JoinHandle<Result<()>>>,
);

/// Places the batch's pack-bound bodies that the store does not have yet
/// in a pack file and starts writing them. Runs in the writer's
/// transaction, so no sweep can remove a row it found.
pub(crate) async fn pack_bodies(
    c: &mut AnyConnection,
    blobs: &BlobStore,
    reqs: &[&DeliverReq],
) -> Result<PackedBodies> {
    let mut wanted: BTreeMap<&str, &Arc<[u8]>> = BTreeMap::new();
    for r in reqs {
        if let Some(body) = &r.blob.packed {
            wanted.insert(r.blob.hash.as_str(), body);
        }
    }
    if wanted.is_empty() {
        return Ok((HashMap::new(), None));
    }
    let hashes: Vec<&str> = wanted.keys().copied().collect();
    for chunk in hashes.chunks(200) {
        // Bound, not literal: the statement text depends only on the count,
        // so the prepared statement is reused from batch to batch.
        let list = (1..=chunk.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(",");
        let q = format!("SELECT hash FROM blobs WHERE hash IN ({list})");
        let mut query = sqlx::query_scalar(&q);
        for h in chunk {
            query = query.bind(*h);
        }
        let present: Vec<String> = query.fetch_all(&mut *c).await?;
        for h in present {
            wanted.remove(h.as_str());
        }
    }
    let order: Vec<&str> = wanted.keys().copied().collect();
    let bodies: Vec<Arc<[u8]>> = wanted.values().map(|b| Arc::clone(b)).collect();
    if bodies.is_empty() {
        return Ok((HashMap::new(), None));
    }
    let (slots, write) = blobs.pack_start(bodies).await?;
    Ok((
        order.into_iter().map(str::to_string).zip(slots).collect(),
        Some(write),
    ))
}

pub(crate) async fn deliver_all(
    c: &mut AnyConnection,
    blobs: &BlobStore,
    slots: &HashMap<String, (i64, i64)>,
    reqs: &[&DeliverReq],
    touched: &mut Touched,
) -> Result<Vec<Vec<Delivered>>> {
    // 1. Blob references, one row per distinct blob; small bodies ride in
    // the row itself and become durable with this commit.
    let mut refs: BTreeMap<&str, (&BlobRef, i64, bool)> = BTreeMap::new();
    for r in reqs {
        let e = refs
            .entry(r.blob.hash.as_str())
            .or_insert((&r.blob, 0, r.ends_crlf));
        e.1 += r.targets.len() as i64;
    }
    for (hash, (blob, _, _)) in &refs {
        // The sweeper runs in this writer, so a file present now stays until
        // commit. A pack-bound body without a slot was already stored: its
        // row was found in this transaction.
        if blob.inline.is_none() && blob.packed.is_none() && !blobs.exists(hash) {
            return Err(StoreError::Unavailable(format!(
                "blob {hash} vanished before commit"
            )));
        }
    }
    let refs: Vec<(&str, (&BlobRef, i64, bool))> = refs.into_iter().collect();
    for chunk in refs.chunks(100) {
        let values = placeholders(chunk.len(), 7);
        let q = format!(
            "INSERT INTO blobs (hash, size, refcount, data, pack, pack_offset, ends_crlf) VALUES {values} ON CONFLICT (hash) DO UPDATE SET \
             refcount = CASE WHEN blobs.refcount > 0 THEN blobs.refcount + excluded.refcount ELSE excluded.refcount END, \
             zero_since = NULL, data = COALESCE(blobs.data, excluded.data), \
             ends_crlf = COALESCE(blobs.ends_crlf, excluded.ends_crlf)"
        );
        let mut query = sqlx::query(&q);
        for (hash, (blob, n, ends_crlf)) in chunk {
            let slot = slots.get(*hash);
            query = query
                .bind(*hash)
                .bind(blob.size as i64)
                .bind(*n)
                .bind(blob.inline.as_deref())
                .bind(slot.map(|s| s.0))
                .bind(slot.map(|s| s.1))
                .bind(*ends_crlf as i64);
        }
        query.execute(&mut *c).await?;
    }

    // 2. UIDs and modseqs: one allocation per mailbox, in request order.
    let mut per_mailbox: HashMap<i64, i64> = HashMap::new();
    let mut order = Vec::new();
    for r in reqs {
        for t in &r.targets {
            let n = per_mailbox.entry(t.mailbox).or_insert(0);
            if *n == 0 {
                order.push(t.mailbox);
            }
            *n += 1;
        }
    }
    // (next uid, next modseq, uidvalidity) per mailbox, in one statement
    // per chunk of mailboxes: each statement is a round trip to the
    // database thread, and a batch often touches as many mailboxes as it
    // has deliveries.
    let mut next: HashMap<i64, (i64, i64, i64)> = HashMap::new();
    for chunk in order.chunks(100) {
        let mut cases = String::with_capacity(chunk.len() * 40);
        let mut ids = String::with_capacity(chunk.len() * 6);
        for i in 0..chunk.len() {
            let (id, k) = (2 * i + 1, 2 * i + 2);
            cases.push_str(&format!(" WHEN ${id} THEN CAST(${k} AS BIGINT)"));
            if i > 0 {
                ids.push_str(", ");
            }
            ids.push_str(&format!("${id}"));
        }
        let q = format!(
            "UPDATE collections SET uidnext = uidnext + (CASE id{cases} END), \
             highest_modseq = highest_modseq + (CASE id{cases} END) WHERE id IN ({ids}) \
             RETURNING id, uidnext, highest_modseq, uidvalidity"
        );
        let mut query = sqlx::query(&q);
        for mb in chunk {
            query = query.bind(*mb).bind(per_mailbox[mb]);
        }
        for row in query.fetch_all(&mut *c).await? {
            let id: i64 = row.try_get("id")?;
            let k = per_mailbox.get(&id).copied().unwrap_or(0);
            let uidnext: i64 = row.try_get("uidnext")?;
            let modseq: i64 = row.try_get("highest_modseq")?;
            next.insert(
                id,
                (uidnext - k, modseq - k + 1, row.try_get("uidvalidity")?),
            );
        }
        if let Some(mb) = chunk.iter().find(|mb| !next.contains_key(mb)) {
            return Err(StoreError::NotFound(format!("mailbox {mb}")));
        }
    }

    // 3. Message rows and journal rows.
    struct Row<'a> {
        req: &'a DeliverReq,
        target: &'a Target,
        d: Delivered,
    }
    let save_date = now();
    let mut rows: Vec<Row> = Vec::new();
    let mut out: Vec<Vec<Delivered>> = Vec::with_capacity(reqs.len());
    for r in reqs {
        let mut ds = Vec::with_capacity(r.targets.len());
        for t in &r.targets {
            let n = next.get_mut(&t.mailbox).expect("allocated above");
            let d = Delivered {
                mailbox: t.mailbox,
                uidvalidity: n.2,
                uid: n.0,
                modseq: n.1,
            };
            n.0 += 1;
            n.1 += 1;
            touched.add(d.mailbox, d.modseq);
            ds.push(d);
            rows.push(Row {
                req: r,
                target: t,
                d,
            });
        }
        out.push(ds);
    }
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let values = placeholders(chunk.len(), 12);
        let q = format!(
            "INSERT INTO messages (collection_id, uid, blob_hash, size, internal_date, save_date, flags, modseq, \
             subject, sent_date, message_id, meta) VALUES {values}"
        );
        let mut query = sqlx::query(&q);
        for row in chunk {
            let (meta, json) = &*row.req.meta;
            query = query
                .bind(row.d.mailbox)
                .bind(row.d.uid)
                .bind(row.req.blob.hash.as_str())
                .bind(row.req.blob.size as i64)
                .bind(row.req.internal_date)
                .bind(save_date)
                .bind(row.target.flags)
                .bind(row.d.modseq)
                .bind(meta.subject.as_deref())
                .bind(meta.sent_date)
                .bind(meta.message_id.as_deref())
                .bind(json.as_str());
        }
        query.execute(&mut *c).await?;
        let values = placeholders(chunk.len(), 5);
        let q =
            format!("INSERT INTO changes (collection_id, modseq, item, kind, at) VALUES {values}");
        let mut query = sqlx::query(&q);
        for row in chunk {
            query = query
                .bind(row.d.mailbox)
                .bind(row.d.modseq)
                .bind(row.d.uid)
                .bind("add")
                .bind(save_date);
        }
        query.execute(&mut *c).await?;
    }
    for row in &rows {
        for k in &row.target.keywords {
            sqlx::query(
                "INSERT INTO message_keywords (message_id, keyword) \
                 SELECT id, $1 FROM messages WHERE collection_id = $2 AND uid = $3 ON CONFLICT DO NOTHING",
            )
            .bind(k)
            .bind(row.d.mailbox)
            .bind(row.d.uid)
            .execute(&mut *c)
            .await?;
        }
    }
    Ok(out)
}

/// "($1, $2, $3), ($4, $5, $6)" for `rows` rows of `cols` columns.
pub(crate) fn placeholders(rows: usize, cols: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    let mut n = 1;
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push_str(", ");
            }
            s.push('$');
            s.push_str(&n.to_string());
            n += 1;
        }
        s.push(')');
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders() {
        assert_eq!(super::placeholders(2, 3), "($1, $2, $3), ($4, $5, $6)");
    }
}
