//! The store's behaviour, run against SQLite and PostgreSQL alike.

use std::sync::Arc;
use std::time::Duration;

use outpost_store::testing::{self, TestStore};
use outpost_store::*;

use outpost_testkit::both;
use sqlx::Row;

both!(
    concurrent_deliveries_get_increasing_uids,
    waiter_is_woken_by_commit,
    blob_stored_once_for_fifty_mailboxes,
    flags_and_expunge_are_journaled,
    copy_move_and_rename,
    principals_and_addresses,
    unchanged_since_reports_modified,
    external_principals_keyed_by_id,
    sparse_packs_are_compacted_and_dead_ones_removed,
    a_bad_delivery_in_a_batch_fails_alone,
    deliver_many_files_all_or_none,
    one_sweep_clears_a_backlog,
    journal_tombstones_name_removed_items,
    journal_floor_and_too_old,
    sweep_prunes_journal_in_rounds,
    principal_journal_outlives_collections,
    final_crlf_is_recorded_at_delivery,
    schema_7_upgrades_existing_data,
    flag_rows_of_a_range_match_the_full_rows,
    flag_reads_use_the_covering_index,
    directory_writes_wake_directory_waiters,
);

mod journal;
use journal::*;

fn msg(i: usize) -> Arc<[u8]> {
    format!("From: a@example.org\r\nTo: b@example.test\r\nSubject: test {i}\r\nMessage-ID: <{i}@x>\r\n\r\nbody {i}\r\n")
        .into_bytes()
        .into()
}

/// One target: `mailbox`, no flags.
fn to(mailbox: i64) -> Vec<Target> {
    vec![Target {
        mailbox,
        flags: 0,
        keywords: vec![],
    }]
}

async fn user(s: &Store, addr: &str) -> Principal {
    let domain = addr.split('@').nth(1).unwrap();
    if s.domain(domain).await.unwrap().is_none() {
        s.add_domain(domain).await.unwrap();
    }
    s.create_principal(NewPrincipal {
        kind: PrincipalKind::User,
        address: addr.into(),
        display_name: "Test".into(),
        password_hash: None,
        source: "internal".into(),
        external_id: None,
        quota_bytes: 0,
    })
    .await
    .unwrap()
}

async fn inbox(s: &Store, p: &Principal) -> Mailbox {
    s.mailbox(p.id, "inbox")
        .await
        .unwrap()
        .expect("INBOX exists")
}

async fn concurrent_deliveries_get_increasing_uids(s: TestStore) {
    let u = user(&s, "a@example.test").await;
    let mb = inbox(&s, &u).await;
    let mut tasks = Vec::new();
    for w in 0..20 {
        let st = s.store.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for i in 0..10 {
                let d = st
                    .deliver(
                        msg(w * 100 + i),
                        vec![Target {
                            mailbox: mb.id,
                            flags: 0,
                            keywords: vec![],
                        }],
                        0,
                    )
                    .await
                    .unwrap();
                got.push((d[0].uid, d[0].modseq));
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        let got = t.await.unwrap();
        // each writer sees its own deliveries in increasing order
        assert!(
            got.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1),
            "{got:?}"
        );
        all.extend(got);
    }
    let mut uids: Vec<i64> = all.iter().map(|x| x.0).collect();
    uids.sort();
    uids.dedup();
    assert_eq!(uids.len(), 200, "UIDs are distinct");
    assert_eq!(uids, (1..=200).collect::<Vec<_>>());
    let mut modseqs: Vec<i64> = all.iter().map(|x| x.1).collect();
    modseqs.sort();
    modseqs.dedup();
    assert_eq!(modseqs.len(), 200, "modseqs are distinct");
    let st = s.status(mb.id).await.unwrap();
    assert_eq!(st.messages, 200);
    assert_eq!(st.uidnext, 201);
    assert_eq!(st.unseen, 200);
    // the journal holds one 'add' per message
    let (changed, expunged) = s.changes_since(mb.id, 0).await.unwrap();
    assert_eq!(changed.len(), 200);
    assert!(expunged.is_empty());
}

async fn waiter_is_woken_by_commit(s: TestStore) {
    let u = user(&s, "w@example.test").await;
    let mb = inbox(&s, &u).await;
    let mut rx = s.subscribe(mb.id);
    let st = s.store.clone();
    let waiter = tokio::spawn(async move {
        tokio::time::timeout(Duration::from_secs(5), rx.changed())
            .await
            .expect("woken in time")
            .unwrap();
        *rx.borrow()
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let d = st
        .deliver(
            msg(1),
            vec![Target {
                mailbox: mb.id,
                flags: 0,
                keywords: vec![],
            }],
            0,
        )
        .await
        .unwrap();
    let seen = waiter.await.unwrap();
    assert_eq!(seen, d[0].modseq);
}

/// Two nodes on one PostgreSQL database: a waiter on the second is woken
/// by a delivery committed through the first (LISTEN/NOTIFY).
#[tokio::test]
async fn waiter_on_another_node_is_woken() {
    let Some(s) = testing::postgres().await else {
        return;
    };
    let u = user(&s, "n@example.test").await;
    let mb = inbox(&s, &u).await;
    let other_dir = tempfile::tempdir().unwrap();
    let other = Store::open(&s.url(), &other_dir.path().join("blobs"))
        .await
        .unwrap();
    let mut rx = other.subscribe(mb.id);
    let deliver = |i| {
        let st = s.store.clone();
        async move {
            st.deliver(
                msg(i),
                vec![Target {
                    mailbox: mb.id,
                    flags: 0,
                    keywords: vec![],
                }],
                0,
            )
            .await
            .unwrap()[0]
                .modseq
        }
    };
    // The first wake-up may also come from the listener's catch-up after it
    // connects; the second can only come from NOTIFY.
    for i in 0..2 {
        let modseq = deliver(i).await;
        tokio::time::timeout(Duration::from_secs(5), async {
            while *rx.borrow_and_update() < modseq {
                rx.changed().await.unwrap();
            }
        })
        .await
        .expect("the other node's waiter was woken");
    }
    other.close().await;
}

/// Waits until `rx` has seen a directory version of at least `v`.
async fn directory_reaches(rx: &mut tokio::sync::watch::Receiver<i64>, v: i64, what: &str) {
    tokio::time::timeout(Duration::from_secs(5), async {
        while *rx.borrow_and_update() < v {
            rx.changed().await.unwrap();
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no directory wake-up after {what}"));
}

/// Every committed write to principals, addresses and group members is
/// announced to `directory_changes` with the new `directory_version`.
async fn directory_writes_wake_directory_waiters(s: TestStore) {
    let mut rx = s.directory_changes();
    let u = user(&s, "dirwake@example.test").await;
    let v1 = s.directory_version().await.unwrap();
    assert!(v1 > 0);
    directory_reaches(&mut rx, v1, "create_principal").await;
    s.add_address(u.id, "dirwake.alias@example.test")
        .await
        .unwrap();
    let v2 = s.directory_version().await.unwrap();
    assert!(v2 > v1);
    directory_reaches(&mut rx, v2, "add_address").await;
    s.remove_principal(u.id).await.unwrap();
    let v3 = s.directory_version().await.unwrap();
    assert!(v3 > v2);
    directory_reaches(&mut rx, v3, "remove_principal").await;
}

/// Two nodes on one PostgreSQL database: the second node's GAL refresh is
/// woken by a directory change committed through the first (the one
/// LISTEN/NOTIFY channel, no polling).
#[tokio::test]
async fn directory_change_on_another_node_wakes() {
    let Some(s) = testing::postgres().await else {
        return;
    };
    let other_dir = tempfile::tempdir().unwrap();
    let other = Store::open(&s.url(), &other_dir.path().join("blobs"))
        .await
        .unwrap();
    let mut rx = other.directory_changes();
    // The first wake-up may come from the listener's catch-up after it
    // connects; the later ones only from NOTIFY.
    for i in 0..3 {
        user(&s, &format!("node{i}@example.test")).await;
        let v = s.directory_version().await.unwrap();
        directory_reaches(&mut rx, v, "a write on the other node").await;
    }
    other.close().await;
}

async fn blob_stored_once_for_fifty_mailboxes(s: TestStore) {
    s.add_domain("many.test").await.unwrap();
    let mut targets = Vec::new();
    for i in 0..50 {
        let u = user(&s, &format!("u{i}@many.test")).await;
        targets.push(Target {
            mailbox: inbox(&s, &u).await.id,
            flags: 0,
            keywords: vec![],
        });
    }
    // A body lives in its blob row (up to inline_max), in a pack file (up to
    // pack_max, the default placement) or in a file of its own; either way
    // it is stored once, read back whole, and removed with its last copy.
    let mut big = msg(43).to_vec();
    big.extend(std::iter::repeat_n(b'x', 2 * DEFAULT_PACK_MAX));
    big.extend_from_slice(b"\r\n");
    let big: Arc<[u8]> = big.into();
    // (body, inline_max, files, packs)
    // (the pack of the second case stays: it is the one being written)
    let cases = [
        (msg(42), 64 * 1024, 0, 0),
        (msg(44), 0, 0, 1),
        (big, 0, 1, 1),
    ];
    for (raw, inline_max, files, packs) in cases {
        s.set_inline_max(inline_max);
        let hash = BlobStore::hash(&raw);
        let d = s.deliver(raw.clone(), targets.clone(), 0).await.unwrap();
        assert_eq!(d.len(), 50);
        assert_eq!(s.blobs().count_files(), files);
        assert_eq!(s.blobs().count_packs(), packs);
        let refs: i64 = sqlx::query_scalar("SELECT refcount FROM blobs WHERE hash = $1")
            .bind(&hash)
            .fetch_one(s.pool())
            .await
            .unwrap();
        assert_eq!(refs, 50);
        let inline: Option<Vec<u8>> = sqlx::query_scalar("SELECT data FROM blobs WHERE hash = $1")
            .bind(&hash)
            .fetch_one(s.pool())
            .await
            .unwrap();
        assert_eq!(inline.is_some(), inline_max > 0);
        // the same message again: still one copy
        s.deliver(raw.clone(), targets[..2].to_vec(), 0)
            .await
            .unwrap();
        assert_eq!(s.blobs().count_files(), files);
        assert_eq!(s.blobs().count_packs(), packs);
        assert_eq!(&s.read_blob(&hash).await.unwrap()[..], &raw[..]);
        // expunge everywhere, sweep: the copy goes (a pack stays while it
        // is the one being written)
        for t in &targets {
            let uids: Vec<i64> = s
                .message_list(t.mailbox)
                .await
                .unwrap()
                .iter()
                .map(|m| m.uid)
                .collect();
            s.store_flags(t.mailbox, uids, FlagOp::Add, DELETED, vec![], None)
                .await
                .unwrap();
            s.expunge(t.mailbox, None).await.unwrap();
        }
        assert_eq!(s.sweep_blobs(-10).await.unwrap(), 1);
        assert_eq!(s.blobs().count_files(), 0);
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM blobs")
            .fetch_one(s.pool())
            .await
            .unwrap();
        assert_eq!(rows, 0);
        assert!(matches!(
            s.read_blob(&hash).await,
            Err(StoreError::NotFound(_))
        ));
    }
    s.set_inline_max(DEFAULT_INLINE_MAX);
}

/// The aggregated flag read of a UID range gives, per message, what the
/// full rows say (uid, flags, modseq, sorted keywords), in UID order, for
/// ranges with gaps, partial ranges and an empty one.
async fn flag_rows_of_a_range_match_the_full_rows(s: TestStore) {
    let u = user(&s, "fr@example.test").await;
    let mb = inbox(&s, &u).await;
    for i in 0..40 {
        s.deliver(msg(i), to(mb.id), 0).await.unwrap();
    }
    s.store_flags(
        mb.id,
        (5..=9).collect(),
        FlagOp::Add,
        SEEN | DELETED,
        vec!["work".into(), "$Junk".into()],
        None,
    )
    .await
    .unwrap();
    s.store_flags(mb.id, vec![30], FlagOp::Add, FLAGGED, vec![], None)
        .await
        .unwrap();
    s.expunge(mb.id, Some(vec![7])).await.unwrap();
    for (lo, hi) in [(1, 40), (3, 12), (7, 7), (41, 99), (0, i64::MAX)] {
        let full = s.messages_in_uid_range(mb.id, lo, hi).await.unwrap();
        let lean = s.message_flags_in_uid_range(mb.id, lo, hi).await.unwrap();
        let want: Vec<MessageFlags> = full
            .iter()
            .map(|m| MessageFlags {
                uid: m.uid,
                flags: m.flags,
                modseq: m.modseq,
                keywords: m.keywords.clone(),
            })
            .collect();
        assert_eq!(lean, want, "{lo}..={hi}");
    }
    // SELECT's aggregated (uid, flags) read agrees with the full list.
    let pairs: Vec<(i64, i64)> = s
        .message_list(mb.id)
        .await
        .unwrap()
        .iter()
        .map(|m| (m.uid, m.flags))
        .collect();
    assert_eq!(s.uids_and_flags(mb.id).await.unwrap(), pairs);
    assert_eq!(pairs.len(), 39);
    // EWS FindItem's aggregated summaries agree with it too.
    let want: Vec<MessageSummary> = s
        .message_list(mb.id)
        .await
        .unwrap()
        .iter()
        .map(|m| {
            let mut keywords = m.keywords.clone();
            keywords.sort();
            MessageSummary {
                uid: m.uid,
                flags: m.flags,
                modseq: m.modseq,
                size: m.size,
                internal_date: m.internal_date,
                keywords,
            }
        })
        .collect();
    assert_eq!(s.message_summaries(mb.id).await.unwrap(), want);
    let mut subjects = s.message_subjects(mb.id).await.unwrap();
    subjects.sort();
    let meta = s
        .message_meta(mb.id, &want.iter().map(|m| m.uid).collect::<Vec<_>>())
        .await
        .unwrap();
    let mut from_meta: Vec<(i64, Option<String>, Option<i64>)> = meta
        .iter()
        .map(|(uid, m)| (*uid, m.subject.clone(), m.sent_date))
        .collect();
    from_meta.sort();
    assert_eq!(subjects, from_meta);
    assert_eq!(subjects.len(), 39);
    let empty = s.create_mailbox(u.id, "Empty", None).await.unwrap();
    assert!(s.uids_and_flags(empty.id).await.unwrap().is_empty());
    assert!(s
        .message_flags_in_uid_range(empty.id, 1, i64::MAX)
        .await
        .unwrap()
        .is_empty());
    let lean = s.message_flags_in_uid_range(mb.id, 1, 40).await.unwrap();
    assert_eq!(lean.len(), 39);
    assert_eq!(
        lean[4].keywords,
        vec!["$Junk".to_string(), "work".to_string()]
    );
    assert_eq!(lean[4].flags, SEEN | DELETED);
}

async fn flags_and_expunge_are_journaled(s: TestStore) {
    let u = user(&s, "f@example.test").await;
    let mb = inbox(&s, &u).await;
    for i in 0..3 {
        s.deliver(
            msg(i),
            vec![Target {
                mailbox: mb.id,
                flags: 0,
                keywords: vec![],
            }],
            0,
        )
        .await
        .unwrap();
    }
    let before = s.status(mb.id).await.unwrap().highest_modseq;
    let r = s
        .store_flags(
            mb.id,
            vec![1, 2],
            FlagOp::Add,
            SEEN | DELETED,
            vec!["$Junk".into()],
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.changed.len(), 2);
    assert!(r.modseq > before);
    assert_eq!(r.changed[0].keywords, vec!["$Junk".to_string()]);
    // no-op store changes nothing and takes no modseq
    let r2 = s
        .store_flags(mb.id, vec![1], FlagOp::Add, SEEN, vec![], None)
        .await
        .unwrap();
    assert!(r2.changed.is_empty());
    let list = s.message_list(mb.id).await.unwrap();
    assert_eq!(list[0].flags, SEEN | DELETED);
    assert_eq!(list[2].flags, 0);
    let gone = s.expunge(mb.id, Some(vec![2, 3])).await.unwrap();
    assert_eq!(
        gone,
        vec![2],
        "UID EXPUNGE removes only \\Deleted messages of the set"
    );
    let gone = s.expunge(mb.id, None).await.unwrap();
    assert_eq!(gone, vec![1]);
    let (changed, expunged) = s.changes_since(mb.id, before).await.unwrap();
    assert!(changed.is_empty(), "{changed:?}");
    assert_eq!(expunged, vec![1, 2]);
    // UIDs are never reused
    let d = s
        .deliver(
            msg(9),
            vec![Target {
                mailbox: mb.id,
                flags: 0,
                keywords: vec![],
            }],
            0,
        )
        .await
        .unwrap();
    assert_eq!(d[0].uid, 4);
}

async fn copy_move_and_rename(s: TestStore) {
    let u = user(&s, "c@example.test").await;
    let mb = inbox(&s, &u).await;
    for i in 0..2 {
        s.deliver(
            msg(i),
            vec![Target {
                mailbox: mb.id,
                flags: FLAGGED,
                keywords: vec!["work".into()],
            }],
            0,
        )
        .await
        .unwrap();
    }
    let dst = s.create_mailbox(u.id, "Projects/2026", None).await.unwrap();
    assert!(matches!(
        s.create_mailbox(u.id, "Projects/2026", None).await,
        Err(StoreError::Exists(_))
    ));
    assert!(matches!(
        s.create_mailbox(u.id, "../x", None).await,
        Err(StoreError::Invalid(_))
    ));
    let (uv, pairs) = s
        .copy_messages(mb.id, &[1, 2], dst.id, false)
        .await
        .unwrap();
    assert_eq!(uv, dst.uidvalidity);
    assert_eq!(pairs, vec![(1, 1), (2, 2)]);
    let copied = s.message_list(dst.id).await.unwrap();
    assert_eq!(copied[0].flags, FLAGGED);
    assert_eq!(copied[0].keywords, vec!["work".to_string()]);
    let (_, moved) = s.copy_messages(mb.id, &[1], dst.id, true).await.unwrap();
    assert_eq!(moved, vec![(1, 3)]);
    assert_eq!(s.message_list(mb.id).await.unwrap().len(), 1);
    s.create_mailbox(u.id, "Projects", None).await.unwrap();
    s.rename_mailbox(u.id, "Projects", "Work").await.unwrap();
    assert!(s.mailbox(u.id, "Work/2026").await.unwrap().is_some());
    assert!(s.mailbox(u.id, "Projects/2026").await.unwrap().is_none());
    // renaming INBOX moves its messages and leaves INBOX empty
    s.rename_mailbox(u.id, "INBOX", "Old").await.unwrap();
    let old = s.mailbox(u.id, "Old").await.unwrap().unwrap();
    assert_eq!(s.message_list(old.id).await.unwrap().len(), 1);
    assert_eq!(s.message_list(mb.id).await.unwrap().len(), 0);
    s.delete_mailbox(old.id).await.unwrap();
    assert!(s.mailbox(u.id, "Old").await.unwrap().is_none());
}

async fn principals_and_addresses(s: TestStore) {
    let u = user(&s, "Alice@Example.test").await;
    assert_eq!(u.address.as_deref(), Some("alice@example.test"));
    let names: Vec<String> = s
        .mailboxes(u.id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    for n in ["INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"] {
        assert!(names.contains(&n.to_string()), "{names:?}");
    }
    assert_eq!(
        s.mailbox_by_role(u.id, "\\Junk")
            .await
            .unwrap()
            .unwrap()
            .name,
        "Junk"
    );
    s.add_address(u.id, "al@example.test").await.unwrap();
    assert!(matches!(
        s.add_address(u.id, "al@example.test").await,
        Err(StoreError::Exists(_))
    ));
    assert!(matches!(
        s.add_address(u.id, "x@nowhere.test").await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        s.principal_by_address("AL@example.test")
            .await
            .unwrap()
            .unwrap()
            .id,
        u.id
    );
    assert!(matches!(
        s.remove_address("alice@example.test").await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.remove_domain("example.test").await,
        Err(StoreError::Invalid(_))
    ));
    s.deliver(
        msg(1),
        vec![Target {
            mailbox: inbox(&s, &u).await.id,
            flags: 0,
            keywords: vec![],
        }],
        0,
    )
    .await
    .unwrap();
    s.remove_principal(u.id).await.unwrap();
    assert!(s
        .principal_by_address("al@example.test")
        .await
        .unwrap()
        .is_none());
    s.remove_domain("example.test").await.unwrap();
    assert_eq!(s.sweep_blobs(-10).await.unwrap(), 1);
}

async fn unchanged_since_reports_modified(s: TestStore) {
    let u = user(&s, "m@example.test").await;
    let mb = inbox(&s, &u).await;
    let d1 = s
        .deliver(
            msg(1),
            vec![Target {
                mailbox: mb.id,
                flags: 0,
                keywords: vec![],
            }],
            0,
        )
        .await
        .unwrap();
    s.deliver(
        msg(2),
        vec![Target {
            mailbox: mb.id,
            flags: 0,
            keywords: vec![],
        }],
        0,
    )
    .await
    .unwrap();
    s.store_flags(mb.id, vec![2], FlagOp::Add, SEEN, vec![], None)
        .await
        .unwrap();
    let r = s
        .store_flags(
            mb.id,
            vec![1, 2],
            FlagOp::Add,
            FLAGGED,
            vec![],
            Some(d1[0].modseq),
        )
        .await
        .unwrap();
    assert_eq!(r.modified, vec![2]);
    assert_eq!(r.changed.len(), 1);
    assert_eq!(r.changed[0].uid, 1);
}

#[tokio::test]
async fn messages_survive_reopen() {
    let s = testing::sqlite().await;
    let u = user(&s, "r@example.test").await;
    let mb = inbox(&s, &u).await;
    s.deliver(
        msg(1),
        vec![Target {
            mailbox: mb.id,
            flags: 0,
            keywords: vec![],
        }],
        0,
    )
    .await
    .unwrap();
    let url = format!("sqlite://{}/outpost.db", s.dir.path().display());
    let again = Store::open(&url, &s.blob_dir()).await.unwrap();
    let mb2 = again.mailbox(u.id, "INBOX").await.unwrap().unwrap();
    assert_eq!(mb2.uidvalidity, mb.uidvalidity);
    assert_eq!(mb2.uidnext, 2);
    let list = again.message_list(mb2.id).await.unwrap();
    assert_eq!(
        again.read_blob(&list[0].blob_hash).await.unwrap(),
        &msg(1)[..]
    );
}

/// On SQLite a commit is acknowledged only after the syncer flushed the
/// write-ahead log: when that flush fails, the delivery is an error (the
/// client retries), never a success.
#[tokio::test]
async fn failed_log_flush_is_not_acknowledged() {
    let s = testing::sqlite().await;
    let u = user(&s, "f@example.test").await;
    let mb = inbox(&s, &u).await;
    s.blobs().set_fault(Fault::LogFlush);
    let e = s.deliver(msg(1), to(mb.id), 0).await.unwrap_err();
    assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
    let e = s
        .write(|_c, _t| Box::pin(async { Ok(()) }))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
    s.blobs().set_fault(Fault::None);
    let d = s.deliver(msg(2), to(mb.id), 0).await.unwrap();
    assert_eq!(d.len(), 1);
}

#[tokio::test]
async fn blob_fault_is_an_error_not_a_delivery() {
    let s = testing::sqlite().await;
    let u = user(&s, "d@example.test").await;
    let mb = inbox(&s, &u).await;
    s.blobs().set_fault(Fault::DiskFull);
    let e = s
        .deliver(
            msg(1),
            vec![Target {
                mailbox: mb.id,
                flags: 0,
                keywords: vec![],
            }],
            0,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Full(_)), "{e:?}");
    assert_eq!(s.status(mb.id).await.unwrap().messages, 0);
    s.blobs().set_fault(Fault::None);
    s.deliver(
        msg(1),
        vec![Target {
            mailbox: mb.id,
            flags: 0,
            keywords: vec![],
        }],
        0,
    )
    .await
    .unwrap();
}

/// LDAP users: one principal per directory id, made with its mailboxes on
/// first use, found again after a rename (only the display name follows).
async fn external_principals_keyed_by_id(s: TestStore) {
    let guid = "67ddbc09-d919-4770-9d80-fcf7bdd0c2b8";
    let a = s
        .ensure_external_principal("ldap", guid, PrincipalKind::User, "Alice Smith")
        .await
        .unwrap();
    let names: Vec<String> = s
        .mailboxes(a)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    for n in ["INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"] {
        assert!(names.iter().any(|x| x == n), "{n} in {names:?}");
    }
    let again = s
        .ensure_external_principal("ldap", guid, PrincipalKind::User, "Alice Jones")
        .await
        .unwrap();
    assert_eq!(a, again);
    let p = s
        .principal_by_external_id("ldap", guid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.display_name, "Alice Jones");
    assert_eq!(p.source, "ldap");
    assert_eq!(p.address, None);
    let g = s
        .ensure_external_principal("ldap", "group-uuid", PrincipalKind::Group, "Staff")
        .await
        .unwrap();
    assert_ne!(g, a);
    assert!(s.mailboxes(g).await.unwrap().is_empty());
}

async fn pack_of(s: &Store, raw: &[u8]) -> i64 {
    sqlx::query_scalar("SELECT pack FROM blobs WHERE hash = $1")
        .bind(BlobStore::hash(raw))
        .fetch_one(s.pool())
        .await
        .unwrap()
}

/// A 4 KB message numbered `i`.
fn msg4k(i: usize) -> Arc<[u8]> {
    let mut m = msg(i).to_vec();
    while m.len() < 4096 {
        m.extend_from_slice(
            format!("line of message {i:06} .................................\r\n").as_bytes(),
        );
    }
    m.into()
}

/// Expunging frees pack space: a pack whose live bodies take less than half
/// of it is compacted (bodies checked and moved to the current pack, rows
/// moved with them) and removed; a damaged body is not moved, so its pack
/// stays; a pack no row names (a batch that never committed) goes once it
/// is older than the grace period; the pack being written always stays.
async fn sparse_packs_are_compacted_and_dead_ones_removed(s: TestStore) {
    s.set_inline_max(0);
    s.blobs().set_pack_size(64 * 1024);
    let u = user(&s, "pk@example.test").await;
    let mb = inbox(&s, &u).await;
    // 12 × 4 KB fill most of the first pack; 40 KB more open a second.
    let mut uids = Vec::new();
    for i in 0..12 {
        uids.push(s.deliver(msg4k(i), to(mb.id), 0).await.unwrap()[0].uid);
    }
    let first = pack_of(&s, &msg4k(0)).await;
    assert_eq!(pack_of(&s, &msg4k(11)).await, first);
    let mut big = msg(99).to_vec();
    big.extend(std::iter::repeat_n(b'y', 40 * 1024));
    big.extend_from_slice(b"\r\n");
    let big: Arc<[u8]> = big.into();
    s.deliver(big.clone(), to(mb.id), 0).await.unwrap();
    let second = pack_of(&s, &big).await;
    assert_ne!(second, first);
    assert_eq!(s.blobs().count_packs(), 2);

    // Expunge all but message 5 of the first pack.
    let gone: Vec<i64> = uids.iter().copied().filter(|&u| u != uids[5]).collect();
    s.store_flags(mb.id, gone, FlagOp::Add, DELETED, vec![], None)
        .await
        .unwrap();
    s.expunge(mb.id, None).await.unwrap();
    assert_eq!(s.sweep_blobs(-10).await.unwrap(), 11);
    assert!(
        !s.blobs().pack_path(first).exists(),
        "sparse pack not removed"
    );
    assert_eq!(pack_of(&s, &msg4k(5)).await, second);
    assert_eq!(
        s.read_blob(&BlobStore::hash(&msg4k(5))).await.unwrap(),
        &msg4k(5)[..]
    );
    assert_eq!(s.read_blob(&BlobStore::hash(&big)).await.unwrap(), &big[..]);
    assert_eq!(s.blobs().count_packs(), 1);

    // A damaged body in a sparse pack: not moved, the pack stays.
    s.blobs().set_pack_size(32 * 1024);
    let mut big3 = msg(97).to_vec();
    big3.extend(std::iter::repeat_n(b'w', 40 * 1024));
    big3.extend_from_slice(b"\r\n");
    s.deliver(big3.into(), to(mb.id), 0).await.unwrap();
    s.deliver(msg4k(200), to(mb.id), 0).await.unwrap();
    let third = pack_of(&s, &msg4k(200)).await;
    assert_ne!(third, second);
    let mut big2 = msg(98).to_vec();
    big2.extend(std::iter::repeat_n(b'z', 40 * 1024));
    big2.extend_from_slice(b"\r\n");
    let big2: Arc<[u8]> = big2.into();
    s.deliver(big2.clone(), to(mb.id), 0).await.unwrap();
    assert_ne!(pack_of(&s, &big2).await, third);
    let offset: i64 = sqlx::query_scalar("SELECT pack_offset FROM blobs WHERE hash = $1")
        .bind(BlobStore::hash(&msg4k(200)))
        .fetch_one(s.pool())
        .await
        .unwrap();
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(s.blobs().pack_path(third))
            .unwrap();
        f.write_all_at(b"X", offset as u64 + 10).unwrap();
    }
    s.sweep_blobs(-10).await.unwrap();
    assert!(
        s.blobs().pack_path(third).exists(),
        "pack with a damaged body removed"
    );
    assert_eq!(pack_of(&s, &msg4k(200)).await, third);

    // A pack no row names: kept while young, removed once old.
    let orphan = s.blobs().pack_path(9_999);
    std::fs::write(&orphan, vec![0u8; 4096]).unwrap();
    s.sweep_blobs(3600).await.unwrap();
    assert!(orphan.exists(), "young unnamed pack removed");
    let f = std::fs::File::options().write(true).open(&orphan).unwrap();
    f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(7200))
        .unwrap();
    drop(f);
    s.sweep_blobs(3600).await.unwrap();
    assert!(!orphan.exists(), "old unnamed pack kept");
    s.set_inline_max(DEFAULT_INLINE_MAX);
}

/// Keeps the writer busy for 300 ms (started when this returns), so that
/// writes submitted meanwhile queue up and are filed as one batch.
async fn hold_writer(s: &Store) -> tokio::task::JoinHandle<Result<()>> {
    let st = s.clone();
    let busy = tokio::spawn(async move {
        st.write(|_c, _t| {
            Box::pin(async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                Ok(())
            })
        })
        .await
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    busy
}

/// Deliveries queued while the writer is busy are filed together; one of
/// them naming a mailbox that does not exist fails on its own and the rest
/// of its batch is filed (the bulk insert falls back to one by one).
async fn a_bad_delivery_in_a_batch_fails_alone(s: TestStore) {
    let u = user(&s, "batch@example.test").await;
    let mb = inbox(&s, &u).await;
    // Hold the writer so the deliveries below queue up as one batch.
    let busy = hold_writer(&s).await;
    let mut tasks = Vec::new();
    for i in 0..10 {
        let st = s.store.clone();
        let mailbox = if i == 4 { mb.id + 1_000_000 } else { mb.id };
        tasks.push(tokio::spawn(async move {
            st.deliver(msg4k(300 + i), to(mailbox), 0).await
        }));
    }
    busy.await.unwrap().unwrap();
    let mut uids = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.unwrap() {
            Ok(d) => uids.push(d[0].uid),
            Err(e) => {
                assert_eq!(i, 4, "delivery {i} failed: {e:?}");
                assert!(matches!(e, StoreError::NotFound(_)), "{e:?}");
            }
        }
    }
    assert_eq!(uids.len(), 9);
    uids.sort();
    uids.dedup();
    assert_eq!(uids.len(), 9, "UIDs are distinct");
    assert_eq!(s.status(mb.id).await.unwrap().messages, 9);
    for i in (0..10).filter(|&i| i != 4) {
        let body = s
            .read_blob(&BlobStore::hash(&msg4k(300 + i)))
            .await
            .unwrap();
        assert_eq!(body, &msg4k(300 + i)[..]);
    }
}

/// Several messages filed together (IMAP MULTIAPPEND): one bad target fails
/// them all and files none, even when other deliveries share the batch.
async fn deliver_many_files_all_or_none(s: TestStore) {
    let u = user(&s, "many@example.test").await;
    let mb = inbox(&s, &u).await;
    let d = s
        .deliver_many(vec![
            (msg4k(400), to(mb.id), 0),
            (msg4k(401), vec![], 0),
            (msg4k(402), to(mb.id), 0),
        ])
        .await
        .unwrap();
    assert_eq!(d.len(), 3);
    assert!(d[1].is_empty());
    assert_eq!(d[2][0].uid, d[0][0].uid + 1);
    assert_eq!(s.status(mb.id).await.unwrap().messages, 2);

    // Hold the writer so the group and a single delivery share a batch.
    let busy = hold_writer(&s).await;
    let group = {
        let st = s.store.clone();
        let items = vec![
            (msg4k(410), to(mb.id), 0),
            (msg4k(411), to(mb.id + 1_000_000), 0),
            (msg4k(412), to(mb.id), 0),
        ];
        tokio::spawn(async move { st.deliver_many(items).await })
    };
    let single = {
        let st = s.store.clone();
        let t = to(mb.id);
        tokio::spawn(async move { st.deliver(msg4k(413), t, 0).await })
    };
    busy.await.unwrap().unwrap();
    assert!(matches!(group.await.unwrap(), Err(StoreError::NotFound(_))));
    single.await.unwrap().unwrap();
    // 2 from before, the single one; nothing of the failed group.
    assert_eq!(s.status(mb.id).await.unwrap().messages, 3);
    for i in [410, 412] {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM blobs WHERE hash = $1 AND refcount > 0")
                .bind(BlobStore::hash(&msg4k(i)))
                .fetch_one(s.pool())
                .await
                .unwrap();
        assert_eq!(n, 0, "message {i} of the failed group was filed");
    }
}

/// A sweep works through a backlog larger than one round (1,000 rows) in
/// one call.
async fn one_sweep_clears_a_backlog(s: TestStore) {
    s.set_inline_max(64 * 1024);
    let u = user(&s, "backlog@example.test").await;
    let mb = inbox(&s, &u).await;
    let items = (0..2500)
        .map(|i| {
            (
                msg(10_000 + i),
                vec![Target {
                    mailbox: mb.id,
                    flags: DELETED,
                    keywords: vec![],
                }],
                0,
            )
        })
        .collect();
    s.deliver_many(items).await.unwrap();
    s.expunge(mb.id, None).await.unwrap();
    assert_eq!(s.sweep_blobs(-10).await.unwrap(), 2500);
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM blobs")
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert_eq!(rows, 0);
    s.set_inline_max(DEFAULT_INLINE_MAX);
}

/// SELECT's `(uid, flags)` read and FETCH's `(uid, flags, modseq)` read of
/// a UID range are answered from the `messages_flags` index alone
/// (migration 8): no wide `messages` row is read. On SQLite that is the
/// plan as it stands; PostgreSQL picks an index-only scan once the table is
/// vacuumed and large enough, so there the plan is checked with sequential
/// scans switched off.
async fn flag_reads_use_the_covering_index(s: TestStore) {
    let u = user(&s, "cover@example.test").await;
    let mb = inbox(&s, &u).await;
    for i in 0..30 {
        s.deliver(msg(i), to(mb.id), 0).await.unwrap();
    }
    let reads = [
        format!("SELECT uid, flags FROM messages WHERE collection_id = {}", mb.id),
        format!(
            "SELECT uid, flags, modseq FROM messages WHERE collection_id = {} AND uid >= 3 AND uid <= 20",
            mb.id
        ),
    ];
    let mut conn = s.pool().acquire().await.unwrap();
    for q in &reads {
        let plan: Vec<String> = match s.backend() {
            Backend::Sqlite => sqlx::query(&format!("EXPLAIN QUERY PLAN {q}"))
                .fetch_all(&mut *conn)
                .await
                .unwrap()
                .iter()
                .map(|r| r.try_get::<String, _>(3).unwrap())
                .collect(),
            Backend::Postgres => {
                sqlx::query("VACUUM ANALYZE messages")
                    .execute(&mut *conn)
                    .await
                    .unwrap();
                sqlx::query("SET enable_seqscan = off")
                    .execute(&mut *conn)
                    .await
                    .unwrap();
                let plan = sqlx::query(&format!("EXPLAIN {q}"))
                    .fetch_all(&mut *conn)
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| r.try_get::<String, _>(0).unwrap())
                    .collect();
                sqlx::query("RESET enable_seqscan")
                    .execute(&mut *conn)
                    .await
                    .unwrap();
                plan
            }
        };
        let plan = plan.join("\n");
        let covered = match s.backend() {
            Backend::Sqlite => plan.contains("COVERING INDEX messages_flags"),
            Backend::Postgres => plan.contains("Index Only Scan using messages_flags"),
        };
        assert!(covered, "{q}:\n{plan}");
    }
}
