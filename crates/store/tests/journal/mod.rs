//! The change journals (crates/store/src/sync.rs): tombstones, floors,
//! "too old", pruning by the sweep, and the per-principal journal of
//! collection changes. Run on both backends from `store.rs`.

use std::sync::Arc;

use outpost_store::testing::TestStore;
use outpost_store::*;

use super::{inbox, msg, to, user};

/// Ages every journal row of `collection` up to `modseq` (and every
/// principal journal row of `principal` up to `seq`) by `days`.
async fn age_rows(s: &Store, collection: i64, modseq: i64, days: i64) {
    sqlx::query("UPDATE changes SET at = at - $1 WHERE collection_id = $2 AND modseq <= $3")
        .bind(days * 86400)
        .bind(collection)
        .bind(modseq)
        .execute(s.pool())
        .await
        .unwrap();
}

async fn age_principal_rows(s: &Store, principal: i64, seq: i64, days: i64) {
    sqlx::query("UPDATE principal_changes SET at = at - $1 WHERE principal_id = $2 AND seq <= $3")
        .bind(days * 86400)
        .bind(principal)
        .bind(seq)
        .execute(s.pool())
        .await
        .unwrap();
}

fn changes(s: Since<CollectionChanges>) -> CollectionChanges {
    match s {
        Since::Changes(c) => c,
        Since::TooOld(st) => panic!("unexpectedly too old: {st:?}"),
    }
}

fn principal_changes(s: Since<PrincipalChanges>) -> PrincipalChanges {
    match s {
        Since::Changes(c) => c,
        Since::TooOld(st) => panic!("unexpectedly too old: {st:?}"),
    }
}

fn items(list: &[ItemChange]) -> Vec<i64> {
    list.iter().map(|c| c.item).collect()
}

async fn deliver_n(s: &Store, mailbox: i64, n: usize) -> Vec<Delivered> {
    let mut out = Vec::new();
    for i in 0..n {
        out.extend(s.deliver(msg(i), to(mailbox), 0).await.unwrap());
    }
    out
}

pub async fn journal_tombstones_name_removed_items(s: TestStore) {
    let u = user(&s, "tomb@example.test").await;
    let mb = inbox(&s, &u).await;
    deliver_n(&s, mb.id, 4).await;
    let ids: Vec<(i64, i64)> = s
        .message_list(mb.id)
        .await
        .unwrap()
        .iter()
        .map(|m| (m.uid, m.id))
        .collect();
    let token = s.journal_state(mb.id).await.unwrap().highest;

    // Since the creation of the mailbox: four added, nothing else.
    let c = changes(s.journal_since(mb.id, 0).await.unwrap());
    assert_eq!(items(&c.added), vec![1, 2, 3, 4]);
    assert_eq!(
        c.added
            .iter()
            .map(|a| (a.item, a.item_id))
            .collect::<Vec<_>>(),
        ids
    );
    assert!(c.changed.is_empty() && c.removed.is_empty(), "{c:?}");
    assert_eq!(c.highest_modseq, token);

    // Flag 2, expunge 1 and 3, deliver a 5th, then expunge it again.
    s.store_flags(mb.id, vec![1, 2, 3], FlagOp::Add, DELETED, vec![], None)
        .await
        .unwrap();
    s.store_flags(mb.id, vec![2], FlagOp::Remove, DELETED, vec![], None)
        .await
        .unwrap();
    assert_eq!(s.expunge(mb.id, None).await.unwrap(), vec![1, 3]);
    let d5 = s.deliver(msg(5), to(mb.id), 0).await.unwrap()[0];
    let d6 = s.deliver(msg(6), to(mb.id), 0).await.unwrap()[0];
    s.store_flags(mb.id, vec![d5.uid], FlagOp::Add, DELETED, vec![], None)
        .await
        .unwrap();
    s.expunge(mb.id, Some(vec![d5.uid])).await.unwrap();

    let c = changes(s.journal_since(mb.id, token).await.unwrap());
    assert_eq!(items(&c.changed), vec![2], "{c:?}");
    assert_eq!(items(&c.added), vec![d6.uid], "created after the token");
    // Tombstones carry the UID and the message's stable id; the message
    // added and removed after the token is in neither list.
    let gone: Vec<(i64, Option<i64>)> = c.removed.iter().map(|t| (t.item, t.item_id)).collect();
    assert_eq!(gone, vec![(1, Some(ids[0].1)), (3, Some(ids[2].1))]);
    assert!(c
        .removed
        .iter()
        .all(|t| t.name.is_none() && t.object_uid.is_none()));
    assert!(c
        .removed
        .iter()
        .all(|t| t.modseq > token && t.modseq <= c.highest_modseq));
    assert_eq!(
        c.highest_modseq,
        s.status(mb.id).await.unwrap().highest_modseq
    );

    // From the newest token nothing changed; IMAP's view agrees.
    let now = c.highest_modseq;
    let c = changes(s.journal_since(mb.id, now).await.unwrap());
    assert!(c.added.is_empty() && c.changed.is_empty() && c.removed.is_empty());
    let (_, expunged) = s.changes_since(mb.id, token).await.unwrap();
    assert_eq!(expunged, vec![1, 3, d5.uid]);

    // A moved message leaves a tombstone in its old mailbox.
    let other = s.create_mailbox(u.id, "Kept", None).await.unwrap();
    let t2 = s.journal_state(mb.id).await.unwrap().highest;
    let (_, pairs) = s.copy_messages(mb.id, &[2], other.id, true).await.unwrap();
    let c = changes(s.journal_since(mb.id, t2).await.unwrap());
    assert_eq!(c.removed.len(), 1);
    assert_eq!(
        (c.removed[0].item, c.removed[0].item_id),
        (2, Some(ids[1].1))
    );
    let c = changes(s.journal_since(other.id, 0).await.unwrap());
    assert_eq!(items(&c.added), vec![pairs[0].1]);
    assert_ne!(c.added[0].item_id, ids[1].1, "the copy is a new item");

    // A deleted collection answers NotFound.
    s.delete_mailbox(other.id).await.unwrap();
    assert!(matches!(
        s.journal_since(other.id, 0).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn journal_floor_and_too_old(s: TestStore) {
    let u = user(&s, "floor@example.test").await;
    let mb = inbox(&s, &u).await;
    let st = s.journal_state(mb.id).await.unwrap();
    assert_eq!(st.floor, 0, "a new collection answers from the start");
    deliver_n(&s, mb.id, 6).await;
    // Old history: messages 1..3 delivered, 1 and 2 expunged.
    s.store_flags(mb.id, vec![1, 2], FlagOp::Add, DELETED, vec![], None)
        .await
        .unwrap();
    s.expunge(mb.id, None).await.unwrap();
    let old = s.journal_state(mb.id).await.unwrap().highest;
    // Recent history: 4 expunged, 5 flagged.
    s.store_flags(mb.id, vec![4], FlagOp::Add, DELETED, vec![], None)
        .await
        .unwrap();
    s.expunge(mb.id, None).await.unwrap();
    s.store_flags(mb.id, vec![5], FlagOp::Add, SEEN, vec![], None)
        .await
        .unwrap();
    let highest = s.journal_state(mb.id).await.unwrap().highest;

    age_rows(&s, mb.id, old, 100).await;
    let r = s.sweep(SweepPolicy::default()).await.unwrap();
    assert!(r.journal.collection_rows >= 8, "{r:?}");
    let st = s.journal_state(mb.id).await.unwrap();
    assert_eq!(
        st,
        JournalState {
            floor: old,
            highest
        }
    );
    let left: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM changes WHERE collection_id = $1 AND modseq <= $2",
    )
    .bind(mb.id)
    .bind(old)
    .fetch_one(s.pool())
    .await
    .unwrap();
    assert_eq!(left, 0, "rows at or below the floor are pruned");

    // Below the floor: start over. At the floor and above: answered.
    for since in [0, 1, old - 1] {
        assert_eq!(
            s.journal_since(mb.id, since).await.unwrap(),
            Since::TooOld(st),
            "since {since}"
        );
    }
    let c = changes(s.journal_since(mb.id, old).await.unwrap());
    assert_eq!(
        c.removed.iter().map(|t| t.item).collect::<Vec<_>>(),
        vec![4]
    );
    assert_eq!(items(&c.changed), vec![5]);
    assert!(c.added.is_empty(), "{c:?}");
    // A token from the future (e.g. from before a restore) starts over too.
    assert!(matches!(
        s.journal_since(mb.id, highest + 1).await.unwrap(),
        Since::TooOld(_)
    ));
    // A second sweep with nothing old changes nothing.
    let r = s.sweep(SweepPolicy::default()).await.unwrap();
    assert_eq!(r.journal, PruneReport::default());
    assert_eq!(s.journal_state(mb.id).await.unwrap(), st);
}

pub async fn sweep_prunes_journal_in_rounds(s: TestStore) {
    // More old rows than one pruning round looks at, across two mailboxes,
    // one of which has a single modseq shared by thousands of rows.
    let u = user(&s, "rounds@example.test").await;
    let mb = inbox(&s, &u).await;
    let other = s.create_mailbox(u.id, "Other", None).await.unwrap();
    let batch: Vec<(Arc<[u8]>, Vec<Target>, i64)> =
        (0..3000).map(|i| (msg(i), to(mb.id), 0)).collect();
    s.deliver_many(batch).await.unwrap();
    let batch: Vec<(Arc<[u8]>, Vec<Target>, i64)> =
        (0..3000).map(|i| (msg(i), to(other.id), 0)).collect();
    s.deliver_many(batch).await.unwrap();
    let r = s
        .store_flags(mb.id, (1..=3000).collect(), FlagOp::Add, SEEN, vec![], None)
        .await
        .unwrap();
    let top = r.modseq;
    let other_top = s.journal_state(other.id).await.unwrap().highest;
    s.deliver(msg(9999), to(mb.id), 0).await.unwrap();
    age_rows(&s, mb.id, top, 91).await;
    age_rows(&s, other.id, other_top, 91).await;
    let r = s.prune_journals(90 * 86400).await.unwrap();
    // INBOX: 3000 adds and 3000 flag changes; Other: its creation and
    // 3000 adds.
    assert_eq!(r.collection_rows, 6000 + 3001, "{r:?}");
    assert_eq!(s.journal_state(mb.id).await.unwrap().floor, top);
    assert_eq!(s.journal_state(other.id).await.unwrap().floor, other_top);
    let c = changes(s.journal_since(mb.id, top).await.unwrap());
    assert_eq!(items(&c.added), vec![3001]);
}

pub async fn principal_journal_outlives_collections(s: TestStore) {
    let u = user(&s, "folders@example.test").await;
    let start = s.principal_journal_state(u.id).await.unwrap();
    // The default mailboxes were journaled as created.
    let c = principal_changes(s.principal_changes_since(u.id, 0).await.unwrap());
    let mailboxes = s.mailboxes(u.id).await.unwrap();
    assert_eq!(c.changes.len(), mailboxes.len());
    assert!(c
        .changes
        .iter()
        .all(|ch| ch.kind == CollectionChangeKind::Created && ch.collection_kind == "mailbox"));
    assert_eq!(start.highest, mailboxes.len() as i64);
    assert_eq!(c.highest_seq, start.highest);
    // Creating the defaults again journals nothing.
    s.ensure_default_mailboxes(u.id).await.unwrap();
    assert_eq!(s.principal_journal_state(u.id).await.unwrap(), start);

    let a = s.create_mailbox(u.id, "Projects", None).await.unwrap();
    let b = s.create_mailbox(u.id, "Projects/2026", None).await.unwrap();
    let t = s.principal_journal_state(u.id).await.unwrap().highest;
    s.rename_mailbox(u.id, "Projects", "Work").await.unwrap();
    s.rename_mailbox(u.id, "Work/2026", "Archive/2026")
        .await
        .unwrap();
    s.delete_mailbox(b.id).await.unwrap();

    let c = principal_changes(s.principal_changes_since(u.id, t).await.unwrap());
    let got: Vec<(i64, CollectionChangeKind, &str, Option<&str>)> = c
        .changes
        .iter()
        .map(|ch| {
            (
                ch.collection,
                ch.kind,
                ch.name.as_str(),
                ch.old_name.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                a.id,
                CollectionChangeKind::Renamed,
                "Work",
                Some("Projects")
            ),
            (
                b.id,
                CollectionChangeKind::Moved,
                "Work/2026",
                Some("Projects/2026")
            ),
            (
                b.id,
                CollectionChangeKind::Moved,
                "Archive/2026",
                Some("Work/2026")
            ),
            (b.id, CollectionChangeKind::Deleted, "Archive/2026", None),
        ]
    );
    let seqs: Vec<i64> = c.changes.iter().map(|ch| ch.seq).collect();
    assert_eq!(seqs, (t + 1..=t + 4).collect::<Vec<_>>());
    // Another principal's sequence is its own.
    let v = user(&s, "other@example.test").await;
    let vs = s.principal_journal_state(v.id).await.unwrap();
    assert_eq!(vs.highest, mailboxes.len() as i64);

    // Pruning keeps the deletion (recent) and raises the floor past the
    // old rows.
    age_principal_rows(&s, u.id, t, 100).await;
    let r = s.sweep(SweepPolicy::default()).await.unwrap();
    assert_eq!(r.journal.principal_rows as i64, t);
    let st = s.principal_journal_state(u.id).await.unwrap();
    assert_eq!(st.floor, t);
    assert!(matches!(
        s.principal_changes_since(u.id, t - 1).await.unwrap(),
        Since::TooOld(x) if x == st
    ));
    let c = principal_changes(s.principal_changes_since(u.id, t).await.unwrap());
    assert_eq!(c.changes.len(), 4);
    assert_eq!(c.changes[3].kind, CollectionChangeKind::Deleted);
    assert_eq!(
        s.principal_journal_state(v.id).await.unwrap(),
        vs,
        "the other principal's journal was not touched"
    );

    // The principal's journal goes with the principal.
    s.remove_principal(u.id).await.unwrap();
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM principal_changes WHERE principal_id = $1")
            .bind(u.id)
            .fetch_one(s.pool())
            .await
            .unwrap();
    assert_eq!(n, 0);
    assert!(matches!(
        s.principal_changes_since(u.id, 0).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn final_crlf_is_recorded_at_delivery(s: TestStore) {
    let u = user(&s, "crlf@example.test").await;
    let mb = inbox(&s, &u).await;
    // Once inline, once in a pack, once a file of its own.
    for (i, (inline, pack)) in [(1 << 20, 1 << 20), (0, 1 << 20), (0, 0)]
        .into_iter()
        .enumerate()
    {
        s.set_inline_max(inline);
        s.set_pack_max(pack);
        let open = format!("Subject: open {i}\r\n\r\nno line end");
        let closed = format!("Subject: closed {i}\r\n\r\nline end\r\n");
        s.deliver(open.into_bytes().into(), to(mb.id), 0)
            .await
            .unwrap();
        s.deliver(closed.into_bytes().into(), to(mb.id), 0)
            .await
            .unwrap();
    }
    let places: (i64, i64, i64) = sqlx::query_as(
        "SELECT CAST(SUM(CASE WHEN data IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT), \
         CAST(SUM(CASE WHEN pack IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT), \
         CAST(SUM(CASE WHEN data IS NULL AND pack IS NULL THEN 1 ELSE 0 END) AS BIGINT) FROM blobs",
    )
    .fetch_one(s.pool())
    .await
    .unwrap();
    assert_eq!(places, (2, 2, 2), "inline, packed, files");
    let want: std::collections::HashSet<i64> = [1, 3, 5].into_iter().collect();
    assert_eq!(s.uids_not_ending_in_crlf(mb.id).await.unwrap(), want);
    let unknown: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM blobs WHERE ends_crlf IS NULL")
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert_eq!(unknown, 0, "recorded when stored");
}

/// A store written by schema version 6 is upgraded: journal kinds renamed,
/// the principal journal started with every existing collection, old
/// tombstones still answered, and the line-ending fact filled in.
pub async fn schema_7_upgrades_existing_data(s: TestStore) {
    let u = user(&s, "upgrade@example.test").await;
    let mb = inbox(&s, &u).await;
    s.set_pack_max(0);
    s.deliver(Arc::from(&b"Subject: a\r\n\r\nopen"[..]), to(mb.id), 0)
        .await
        .unwrap();
    s.deliver(msg(2), to(mb.id), 0).await.unwrap();
    s.deliver(msg(3), to(mb.id), 0).await.unwrap();
    s.store_flags(mb.id, vec![3], FlagOp::Add, DELETED, vec![], None)
        .await
        .unwrap();
    s.expunge(mb.id, None).await.unwrap();
    s.store_flags(mb.id, vec![2], FlagOp::Add, SEEN, vec![], None)
        .await
        .unwrap();
    let mailboxes = s.mailboxes(u.id).await.unwrap().len() as i64;
    // Back to version 6 (and so before every later migration).
    for q in [
        "DROP INDEX messages_flags",
        "UPDATE changes SET kind = 'flags' WHERE kind = 'change'",
        "UPDATE changes SET kind = 'expunge' WHERE kind = 'remove'",
        "DROP INDEX changes_at",
        "ALTER TABLE changes DROP COLUMN item_id",
        "ALTER TABLE changes DROP COLUMN name",
        "ALTER TABLE changes DROP COLUMN object_uid",
        "ALTER TABLE collections DROP COLUMN journal_floor",
        "DROP TABLE principal_changes",
        "ALTER TABLE principals DROP COLUMN journal_seq",
        "ALTER TABLE principals DROP COLUMN journal_floor",
        "ALTER TABLE blobs DROP COLUMN ends_crlf",
        // A version 6 store has none of the later migrations either.
        "DROP TABLE eas_sync_states",
        "DROP TABLE eas_devices",
        "DROP TABLE collection_grants",
        "DROP TABLE contact_members",
        "DROP TABLE contact_fields",
        "DROP TABLE groupware_instances",
        "DROP TABLE groupware_attendees",
        "DROP TABLE groupware_objects",
        "DROP TABLE groupware_collections",
        "DROP INDEX principals_gal_domain",
        "ALTER TABLE principals DROP COLUMN calendar_user_type",
        "ALTER TABLE principals DROP COLUMN gal_domain_id",
        "DROP TABLE directory_terms",
        "ALTER TABLE principals DROP COLUMN given_name",
        "ALTER TABLE principals DROP COLUMN surname",
        "ALTER TABLE principals DROP COLUMN title",
        "ALTER TABLE principals DROP COLUMN department",
        "ALTER TABLE principals DROP COLUMN company",
        "ALTER TABLE principals DROP COLUMN office",
        "ALTER TABLE principals DROP COLUMN phone",
        "ALTER TABLE principals DROP COLUMN mobile",
        "DELETE FROM outpost_schema WHERE version >= 7",
    ] {
        sqlx::query(q).execute(s.pool()).await.expect(q);
    }
    let again = Store::open(&s.url(), &s.blob_dir()).await.unwrap();
    // Principals of the old store get their directory search terms.
    let mut found = Vec::new();
    for _ in 0..100 {
        found = again
            .search_directory("internal", "upgrade@", 5)
            .await
            .unwrap();
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(found, vec![u.id], "backfilled search terms");
    let c = changes(again.journal_since(mb.id, 0).await.unwrap());
    assert_eq!(items(&c.added), vec![1, 2]);
    assert!(c.removed.is_empty(), "added and removed since 0: {c:?}");
    let at_add: i64 = sqlx::query_scalar(
        "SELECT modseq FROM changes WHERE collection_id = $1 AND item = 3 AND kind = 'add'",
    )
    .bind(mb.id)
    .fetch_one(again.pool())
    .await
    .unwrap();
    let c = changes(again.journal_since(mb.id, at_add).await.unwrap());
    assert_eq!(c.removed.len(), 1);
    assert_eq!((c.removed[0].item, c.removed[0].item_id), (3, None));
    assert_eq!(items(&c.changed), vec![2]);
    let (_, expunged) = again.changes_since(mb.id, 0).await.unwrap();
    assert_eq!(expunged, vec![3]);

    let p = principal_changes(again.principal_changes_since(u.id, 0).await.unwrap());
    assert_eq!(p.highest_seq, mailboxes);
    assert_eq!(p.changes.len() as i64, mailboxes);
    assert_eq!(
        p.changes.iter().map(|c| c.seq).collect::<Vec<_>>(),
        (1..=mailboxes).collect::<Vec<_>>()
    );
    assert!(p
        .changes
        .iter()
        .any(|c| c.collection == mb.id && c.name == "INBOX"));

    // The line-ending fact is filled in in the background; meanwhile the
    // bodies are read.
    let want: std::collections::HashSet<i64> = [1].into_iter().collect();
    assert_eq!(again.uids_not_ending_in_crlf(mb.id).await.unwrap(), want);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let unknown: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM blobs WHERE ends_crlf IS NULL")
            .fetch_one(again.pool())
            .await
            .unwrap();
        if unknown == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "backfill did not finish"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let facts: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT m.uid, b.ends_crlf FROM messages m JOIN blobs b ON b.hash = m.blob_hash \
         WHERE m.collection_id = $1 ORDER BY m.uid",
    )
    .bind(mb.id)
    .fetch_all(again.pool())
    .await
    .unwrap();
    assert_eq!(facts, vec![(1, 0), (2, 1)]);
    assert_eq!(again.uids_not_ending_in_crlf(mb.id).await.unwrap(), want);
    again.close().await;
}
