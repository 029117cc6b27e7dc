//! The change journal, as every sync protocol reads it.
//!
//! Two journals, both written in the transaction that makes the change:
//!
//! - Per collection (`changes`): every item added, changed or removed
//!   takes the collection's next modseq. A removal leaves a tombstone that
//!   still names the item: its per-collection number (`item`: the IMAP UID
//!   for mail, the base of an ActiveSync ServerId), its store-wide id
//!   (`item_id`: messages.id, the base of JMAP ids and EWS ItemIds), and for
//!   groupware items its resource name (a DAV href's last segment) and its
//!   iCalendar/vCard UID.
//! - Per principal (`principal_changes`): collections created, renamed,
//!   moved, deleted or re-shared, numbered by the principal's own sequence.
//!   Its rows outlive the collection, so a folder-list sync learns that a
//!   folder went away.
//!
//! Each journal has a floor: the oldest point it can still answer for. The
//! sweep prunes rows older than the retention and raises the floor to the
//! newest row it removed. A token below the floor (or above the current
//! value, e.g. from before a restore) gets [`Since::TooOld`], and the
//! protocol answers its "start over": DAV `valid-sync-token`, ActiveSync
//! status 3 (Sync) or 12 (FolderSync), IMAP QRESYNC's fallback of RFC 7162
//! §3.2.5.2 (the client's known UIDs instead of VANISHED from the journal).

use std::collections::{BTreeMap, BTreeSet};

use sqlx::{AnyConnection, Row};

use crate::{now, Result, Store, StoreError};

/// How far a journal reaches: changes after `floor` are all on record,
/// `highest` is the newest (a collection's highest modseq, a principal's
/// journal sequence). A token `t` can be answered when
/// `floor <= t <= highest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalState {
    pub floor: i64,
    pub highest: i64,
}

impl JournalState {
    pub fn answers(&self, since: i64) -> bool {
        self.floor <= since && since <= self.highest
    }
}

/// The answer to "what changed since this token?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Since<T> {
    /// Everything that changed after the token.
    Changes(T),
    /// The token is below the floor (or newer than the journal): the client
    /// must start over from a full listing.
    TooOld(JournalState),
}

/// A live item added or changed since the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemChange {
    /// Per-collection item number (IMAP UID for mail).
    pub item: i64,
    /// Store-wide id of the item's row (messages.id for mail).
    pub item_id: i64,
    /// The item's latest modseq.
    pub modseq: i64,
}

/// What remains of a removed item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    /// Per-collection item number (IMAP UID for mail).
    pub item: i64,
    /// Store-wide id the item had; `None` for removals journaled before
    /// schema version 7.
    pub item_id: Option<i64>,
    /// Resource name in the collection (DAV); `None` for mail.
    pub name: Option<String>,
    /// iCalendar/vCard UID; `None` for mail.
    pub object_uid: Option<String>,
    /// The modseq of the removal.
    pub modseq: i64,
}

/// The changes of one collection after a token, each item once, in item
/// order. An item both added and removed after the token is in neither
/// list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionChanges {
    pub collection: i64,
    pub since: i64,
    /// The collection's highest modseq: the next token.
    pub highest_modseq: i64,
    pub added: Vec<ItemChange>,
    pub changed: Vec<ItemChange>,
    pub removed: Vec<Tombstone>,
}

/// What happened to a collection, in its principal's journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectionChangeKind {
    Created,
    /// New last name segment, same parent.
    Renamed,
    /// The parent path changed (also when an ancestor was renamed).
    Moved,
    Deleted,
    /// Who may see or change it changed.
    AclChanged,
}

impl CollectionChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CollectionChangeKind::Created => "create",
            CollectionChangeKind::Renamed => "rename",
            CollectionChangeKind::Moved => "move",
            CollectionChangeKind::Deleted => "delete",
            CollectionChangeKind::AclChanged => "acl",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "create" => CollectionChangeKind::Created,
            "rename" => CollectionChangeKind::Renamed,
            "move" => CollectionChangeKind::Moved,
            "delete" => CollectionChangeKind::Deleted,
            "acl" => CollectionChangeKind::AclChanged,
            other => {
                return Err(StoreError::Internal(format!(
                    "unknown principal journal kind {other:?}"
                )))
            }
        })
    }

    /// `Renamed` when only the last `/` segment differs, else `Moved`.
    pub fn for_rename(old: &str, new: &str) -> Self {
        let parent = |n: &str| n.rsplit_once('/').map(|(p, _)| p.to_string());
        if parent(old) == parent(new) {
            CollectionChangeKind::Renamed
        } else {
            CollectionChangeKind::Moved
        }
    }
}

/// One row of a principal's journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionChange {
    pub seq: i64,
    pub collection: i64,
    /// collections.kind ("mailbox", …).
    pub collection_kind: String,
    pub kind: CollectionChangeKind,
    /// The name after the change (for a deletion: the last name).
    pub name: String,
    /// Renames and moves: the name before.
    pub old_name: Option<String>,
    pub at: i64,
}

/// A principal's collection changes after a token, in sequence order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalChanges {
    pub principal: i64,
    pub since: i64,
    /// The principal's journal sequence now: the next token.
    pub highest_seq: i64,
    pub changes: Vec<CollectionChange>,
}

/// Journal rows removed by one pruning.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub collection_rows: usize,
    pub principal_rows: usize,
}

/// Rows looked at per write transaction of a pruning.
const PRUNE_BATCH: i64 = 5000;

impl Store {
    /// The floor and highest modseq of a collection's journal.
    pub async fn journal_state(&self, collection: i64) -> Result<JournalState> {
        let r: Option<(i64, i64)> =
            sqlx::query_as("SELECT journal_floor, highest_modseq FROM collections WHERE id = $1")
                .bind(collection)
                .fetch_optional(self.pool())
                .await?;
        let (floor, highest) =
            r.ok_or_else(|| StoreError::NotFound(format!("collection {collection}")))?;
        Ok(JournalState { floor, highest })
    }

    /// What changed in a collection after modseq `since`: live items added
    /// or changed, and tombstones of items removed; or `TooOld` when the
    /// journal no longer reaches back to `since`. `NotFound` when the
    /// collection is gone (its removal is in the principal journal).
    pub async fn journal_since(
        &self,
        collection: i64,
        since: i64,
    ) -> Result<Since<CollectionChanges>> {
        // One read transaction, so the state and the rows agree.
        let mut tx = self.pool().begin().await?;
        let r: Option<(i64, i64, String)> = sqlx::query_as(
            "SELECT journal_floor, highest_modseq, kind FROM collections WHERE id = $1",
        )
        .bind(collection)
        .fetch_optional(&mut *tx)
        .await?;
        let (floor, highest, kind) =
            r.ok_or_else(|| StoreError::NotFound(format!("collection {collection}")))?;
        let state = JournalState { floor, highest };
        if !state.answers(since) {
            return Ok(Since::TooOld(state));
        }
        let rows = sqlx::query(
            "SELECT item, item_id, name, object_uid, kind, modseq FROM changes \
             WHERE collection_id = $1 AND modseq > $2 AND item <> 0 AND kind IN ('add', 'remove') \
             ORDER BY modseq, item",
        )
        .bind(collection)
        .bind(since)
        .fetch_all(&mut *tx)
        .await?;
        let mut added_here = BTreeSet::new();
        let mut removed: BTreeMap<i64, Tombstone> = BTreeMap::new();
        for r in &rows {
            let item: i64 = r.try_get("item")?;
            match r.try_get::<String, _>("kind")?.as_str() {
                "add" => {
                    added_here.insert(item);
                }
                _ => {
                    removed.insert(
                        item,
                        Tombstone {
                            item,
                            item_id: r.try_get("item_id")?,
                            name: r.try_get("name")?,
                            object_uid: r.try_get("object_uid")?,
                            modseq: r.try_get("modseq")?,
                        },
                    );
                }
            }
        }
        // Items created and removed after the token: the client never had
        // them.
        removed.retain(|item, _| !added_here.contains(item));
        let live = live_items_since(&mut tx, &kind, collection, since).await?;
        tx.commit().await?;
        let (mut added, mut changed) = (Vec::new(), Vec::new());
        for c in live {
            if added_here.contains(&c.item) {
                added.push(c);
            } else {
                changed.push(c);
            }
        }
        Ok(Since::Changes(CollectionChanges {
            collection,
            since,
            highest_modseq: highest,
            added,
            changed,
            removed: removed.into_values().collect(),
        }))
    }

    /// The floor and current sequence of a principal's journal.
    pub async fn principal_journal_state(&self, principal: i64) -> Result<JournalState> {
        let r: Option<(i64, i64)> =
            sqlx::query_as("SELECT journal_floor, journal_seq FROM principals WHERE id = $1")
                .bind(principal)
                .fetch_optional(self.pool())
                .await?;
        let (floor, highest) =
            r.ok_or_else(|| StoreError::NotFound(format!("principal {principal}")))?;
        Ok(JournalState { floor, highest })
    }

    /// A principal's collection changes after sequence `since`, or
    /// `TooOld` when its journal no longer reaches back that far.
    pub async fn principal_changes_since(
        &self,
        principal: i64,
        since: i64,
    ) -> Result<Since<PrincipalChanges>> {
        let mut tx = self.pool().begin().await?;
        let r: Option<(i64, i64)> =
            sqlx::query_as("SELECT journal_floor, journal_seq FROM principals WHERE id = $1")
                .bind(principal)
                .fetch_optional(&mut *tx)
                .await?;
        let (floor, highest) =
            r.ok_or_else(|| StoreError::NotFound(format!("principal {principal}")))?;
        let state = JournalState { floor, highest };
        if !state.answers(since) {
            return Ok(Since::TooOld(state));
        }
        let rows = sqlx::query(
            "SELECT seq, collection_id, collection_kind, kind, name, old_name, at FROM principal_changes \
             WHERE principal_id = $1 AND seq > $2 ORDER BY seq",
        )
        .bind(principal)
        .bind(since)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let changes = rows
            .iter()
            .map(|r| {
                Ok(CollectionChange {
                    seq: r.try_get("seq")?,
                    collection: r.try_get("collection_id")?,
                    collection_kind: r.try_get("collection_kind")?,
                    kind: CollectionChangeKind::parse(&r.try_get::<String, _>("kind")?)?,
                    name: r.try_get("name")?,
                    old_name: r.try_get("old_name")?,
                    at: r.try_get("at")?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Since::Changes(PrincipalChanges {
            principal,
            since,
            highest_seq: highest,
            changes,
        }))
    }

    /// Prunes both journals: rows written more than `keep_secs` ago go, and
    /// each journal's floor rises to the newest row removed from it (a
    /// collection's rows go up to a whole modseq, so the floor is exact).
    /// Works in rounds, each its own write, so deliveries go on between.
    pub async fn prune_journals(&self, keep_secs: i64) -> Result<PruneReport> {
        let cutoff = now().saturating_sub(keep_secs);
        let mut report = PruneReport::default();
        loop {
            let (looked, removed) = self
                .write(move |c, _| Box::pin(async move { prune_collections(c, cutoff).await }))
                .await?;
            report.collection_rows += removed;
            if looked < PRUNE_BATCH {
                break;
            }
        }
        loop {
            let (looked, removed) = self
                .write(move |c, _| Box::pin(async move { prune_principals(c, cutoff).await }))
                .await?;
            report.principal_rows += removed;
            if looked < PRUNE_BATCH {
                break;
            }
        }
        Ok(report)
    }
}

/// Live items of a collection whose modseq is above `since`, from the
/// table that holds the collection's kind of item, in item order.
async fn live_items_since(
    c: &mut AnyConnection,
    kind: &str,
    collection: i64,
    since: i64,
) -> Result<Vec<ItemChange>> {
    let q = match kind {
        "mailbox" => {
            "SELECT uid AS item, id AS item_id, modseq FROM messages \
             WHERE collection_id = $1 AND modseq > $2 ORDER BY uid"
        }
        "calendar" | "addressbook" => {
            "SELECT item, id AS item_id, modseq FROM groupware_objects \
             WHERE collection_id = $1 AND modseq > $2 ORDER BY item"
        }
        other => {
            return Err(StoreError::Internal(format!(
                "collections of kind {other:?} hold no items"
            )))
        }
    };
    let rows: Vec<(i64, i64, i64)> = sqlx::query_as(q)
        .bind(collection)
        .bind(since)
        .fetch_all(&mut *c)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(item, item_id, modseq)| ItemChange {
            item,
            item_id,
            modseq,
        })
        .collect())
}

/// One round of pruning collection journals: returns the rows looked at
/// (a full batch means "go on") and the rows removed.
async fn prune_collections(c: &mut AnyConnection, cutoff: i64) -> Result<(i64, usize)> {
    let q = format!(
        "SELECT collection_id, MAX(modseq) FROM \
         (SELECT collection_id, modseq FROM changes WHERE at < $1 LIMIT {PRUNE_BATCH}) AS old \
         GROUP BY collection_id"
    );
    let tops: Vec<(i64, i64)> = sqlx::query_as(&q).bind(cutoff).fetch_all(&mut *c).await?;
    let mut looked = 0;
    let mut removed = 0;
    for (collection, top) in tops {
        let n = sqlx::query("DELETE FROM changes WHERE collection_id = $1 AND modseq <= $2")
            .bind(collection)
            .bind(top)
            .execute(&mut *c)
            .await?
            .rows_affected() as usize;
        sqlx::query(
            "UPDATE collections SET journal_floor = $1 WHERE id = $2 AND journal_floor < $1",
        )
        .bind(top)
        .bind(collection)
        .execute(&mut *c)
        .await?;
        removed += n;
        looked += n as i64;
    }
    Ok((looked, removed))
}

async fn prune_principals(c: &mut AnyConnection, cutoff: i64) -> Result<(i64, usize)> {
    let q = format!(
        "SELECT principal_id, MAX(seq) FROM \
         (SELECT principal_id, seq FROM principal_changes WHERE at < $1 LIMIT {PRUNE_BATCH}) AS old \
         GROUP BY principal_id"
    );
    let tops: Vec<(i64, i64)> = sqlx::query_as(&q).bind(cutoff).fetch_all(&mut *c).await?;
    let mut removed = 0;
    for (principal, top) in tops {
        removed +=
            sqlx::query("DELETE FROM principal_changes WHERE principal_id = $1 AND seq <= $2")
                .bind(principal)
                .bind(top)
                .execute(&mut *c)
                .await?
                .rows_affected() as usize;
        sqlx::query(
            "UPDATE principals SET journal_floor = $1 WHERE id = $2 AND journal_floor < $1",
        )
        .bind(top)
        .bind(principal)
        .execute(&mut *c)
        .await?;
    }
    Ok((removed as i64, removed))
}

/// Writes a row of a principal's journal, taking its next sequence.
/// Returns the sequence.
#[allow(clippy::too_many_arguments)] // one row of the journal: its columns
pub(crate) async fn journal_collection(
    c: &mut AnyConnection,
    t: &mut crate::Touched,
    principal: i64,
    collection: i64,
    collection_kind: &str,
    kind: CollectionChangeKind,
    name: &str,
    old_name: Option<&str>,
) -> Result<i64> {
    let seq: i64 = sqlx::query_scalar(
        "UPDATE principals SET journal_seq = journal_seq + 1 WHERE id = $1 RETURNING journal_seq",
    )
    .bind(principal)
    .fetch_optional(&mut *c)
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("principal {principal}")))?;
    sqlx::query(
        "INSERT INTO principal_changes (principal_id, seq, collection_id, collection_kind, kind, name, old_name, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(principal)
    .bind(seq)
    .bind(collection)
    .bind(collection_kind)
    .bind(kind.as_str())
    .bind(name)
    .bind(old_name)
    .bind(now())
    .execute(&mut *c)
    .await?;
    // Woken: an ActiveSync Ping waiting on the principal's folder list.
    t.add(crate::notify::hierarchy_channel(principal), seq);
    Ok(seq)
}

/// Journals the removal of items from a collection at `modseq`: one
/// tombstone each, with multi-row inserts.
pub(crate) async fn journal_removals(
    c: &mut AnyConnection,
    collection: i64,
    modseq: i64,
    removed: &[Tombstone],
) -> Result<()> {
    let at = now();
    for rows in removed.chunks(100) {
        let q = format!(
            "INSERT INTO changes (collection_id, modseq, item, kind, at, item_id, name, object_uid) VALUES {}",
            crate::bulk::placeholders(rows.len(), 8)
        );
        let mut query = sqlx::query(&q);
        for t in rows {
            query = query
                .bind(collection)
                .bind(modseq)
                .bind(t.item)
                .bind("remove")
                .bind(at)
                .bind(t.item_id)
                .bind(t.name.as_deref())
                .bind(t.object_uid.as_deref());
        }
        query.execute(&mut *c).await?;
    }
    Ok(())
}
