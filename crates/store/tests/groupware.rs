//! Calendars and address books in the store, on SQLite and PostgreSQL.

use std::sync::Arc;

use outpost_store::groupware::*;
use outpost_store::pim::{self, ComponentKind, PimError};
use outpost_store::testing::TestStore;
use outpost_store::*;

use outpost_testkit::both;

both!(
    default_collections_named_as_sogo,
    put_replace_delete_with_preconditions,
    uid_conflict_and_wrong_kinds,
    tombstones_and_journal_since,
    time_range_over_instances,
    free_busy_periods,
    grants_and_shared_with,
    collection_delete_leaves_principal_journal_row,
    contacts_search_and_gal,
    move_and_copy,
    invalid_input_leaves_the_store_intact,
);

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

/// An event `uid` from `start` for an hour (UTC, "YYYYMMDDTHHMMSS"),
/// with extra lines.
fn event(uid: &str, start: &str, extra: &str) -> Arc<[u8]> {
    let end = {
        let h: u32 = start[9..11].parse().unwrap();
        format!("{}{:02}{}", &start[..9], h + 1, &start[11..])
    };
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n\
         DTSTART:{start}Z\r\nDTEND:{end}Z\r\nSUMMARY:Event {uid}\r\n{extra}END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    .into_bytes()
    .into()
}

fn card(uid: &str, name: &str, email: &str) -> Arc<[u8]> {
    format!("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{name}\r\nN:{name};;;;\r\nEMAIL;TYPE=INTERNET:{email}\r\nEND:VCARD\r\n")
        .into_bytes()
        .into()
}

fn created(o: PutOutcome) -> ObjectMeta {
    match o {
        PutOutcome::Created(m) => m,
        other => panic!("expected Created, got {other:?}"),
    }
}

async fn calendar(s: &Store, p: &Principal) -> GroupwareCollection {
    s.ensure_default_groupware(p.id).await.unwrap();
    s.groupware_collection(p.id, CollectionKind::Calendar, "personal")
        .await
        .unwrap()
        .unwrap()
}

async fn default_collections_named_as_sogo(s: TestStore) {
    let u = user(&s, "alice@example.org").await;
    let made = s.ensure_default_groupware(u.id).await.unwrap();
    assert_eq!(made.len(), 3);
    // Idempotent.
    assert!(s.ensure_default_groupware(u.id).await.unwrap().is_empty());
    let all = s.groupware_collections(u.id, None).await.unwrap();
    let names: Vec<(&str, &str, &str)> = all
        .iter()
        .map(|c| (c.kind.as_str(), c.name.as_str(), c.display_name.as_str()))
        .collect();
    assert!(names.contains(&("calendar", "personal", "Personal Calendar")));
    assert!(names.contains(&("addressbook", "personal", "Personal Address Book")));
    assert!(names.contains(&("calendar", "tasks", "Tasks")));
    let tasks = s
        .groupware_collection(u.id, CollectionKind::Calendar, "tasks")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tasks.components, vec![ComponentKind::Todo]);
    // Mailboxes are not groupware collections.
    assert!(all.iter().all(|c| c.name != "INBOX"));
    // A PROPPATCH bumps the ctag.
    let before = tasks.ctag;
    let after = s
        .update_groupware_collection(
            tasks.id,
            CollectionPatch {
                display_name: Some("To do".into()),
                color: Some(Some("#FF0000FF".into())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(after.display_name, "To do");
    assert_eq!(after.color.as_deref(), Some("#FF0000FF"));
    assert!(after.ctag > before);
    // Names are URL segments.
    assert!(s
        .create_groupware_collection(u.id, NewCollection::calendar("a/b", "x"))
        .await
        .is_err());
    assert!(matches!(
        s.create_groupware_collection(u.id, NewCollection::calendar("personal", "again"))
            .await,
        Err(StoreError::Exists(_))
    ));
}

async fn put_replace_delete_with_preconditions(s: TestStore) {
    let u = user(&s, "alice@example.org").await;
    let cal = calendar(&s, &u).await;
    let a = created(
        s.put_icalendar(
            cal.id,
            "a.ics",
            event("a", "20260310T100000", ""),
            Precondition::IfNoneMatchAny,
        )
        .await
        .unwrap(),
    );
    assert_eq!(a.uid, "a");
    assert_eq!(a.component, ComponentKind::Event);
    assert_eq!(a.summary.as_deref(), Some("Event a"));
    assert_eq!(a.item, 1);
    // If-None-Match: * on an existing resource.
    assert_eq!(
        s.put_icalendar(
            cal.id,
            "a.ics",
            event("a", "20260310T110000", ""),
            Precondition::IfNoneMatchAny
        )
        .await
        .unwrap(),
        PutOutcome::PreconditionFailed
    );
    // If-Match with a stale ETag.
    assert_eq!(
        s.put_icalendar(
            cal.id,
            "a.ics",
            event("a", "20260310T110000", ""),
            Precondition::IfMatch("nope".into())
        )
        .await
        .unwrap(),
        PutOutcome::PreconditionFailed
    );
    let r = match s
        .put_icalendar(
            cal.id,
            "a.ics",
            event("a", "20260310T110000", ""),
            Precondition::IfMatch(format!("\"{}\"", a.etag)),
        )
        .await
        .unwrap()
    {
        PutOutcome::Replaced(m) => m,
        other => panic!("{other:?}"),
    };
    assert_ne!(r.etag, a.etag);
    assert_eq!(r.item, a.item, "same item number on replace");
    assert!(r.modseq > a.modseq);
    let got = s.groupware_object(cal.id, "a.ics").await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&got.data).contains("DTSTART:20260310T110000Z"));
    assert_eq!(got.meta.etag, r.etag);
    // The old blob lost its reference, the new one has one.
    let refs = |h: String| {
        let pool = s.pool().clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT refcount FROM blobs WHERE hash = $1")
                .bind(h)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(refs(a.blob_hash.clone()).await, 0);
    assert_eq!(refs(r.blob_hash.clone()).await, 1);
    // Delete with a stale If-Match, then for real.
    assert_eq!(
        s.delete_object(cal.id, "a.ics", Precondition::IfMatch(a.etag.clone()))
            .await
            .unwrap(),
        DeleteOutcome::PreconditionFailed
    );
    assert!(matches!(
        s.delete_object(cal.id, "a.ics", Precondition::IfMatch(r.etag.clone()))
            .await
            .unwrap(),
        DeleteOutcome::Deleted { .. }
    ));
    assert_eq!(
        s.delete_object(cal.id, "a.ics", Precondition::None)
            .await
            .unwrap(),
        DeleteOutcome::NotFound
    );
    assert!(s.groupware_object(cal.id, "a.ics").await.unwrap().is_none());
    assert_eq!(refs(r.blob_hash).await, 0);
    // Item numbers are never reused.
    let b = created(
        s.put_icalendar(
            cal.id,
            "a.ics",
            event("a", "20260310T100000", ""),
            Precondition::None,
        )
        .await
        .unwrap(),
    );
    assert_eq!(b.item, 2);
    // Multiget returns what exists.
    let got = s
        .groupware_objects_by_names(cal.id, &["a.ics".into(), "missing.ics".into()])
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].meta.name, "a.ics");
    let list = s.groupware_objects(cal.id).await.unwrap();
    assert_eq!(list.len(), 1);
}

async fn uid_conflict_and_wrong_kinds(s: TestStore) {
    let u = user(&s, "alice@example.org").await;
    let cal = calendar(&s, &u).await;
    created(
        s.put_icalendar(
            cal.id,
            "one.ics",
            event("same", "20260310T100000", ""),
            Precondition::None,
        )
        .await
        .unwrap(),
    );
    assert_eq!(
        s.put_icalendar(
            cal.id,
            "two.ics",
            event("same", "20260311T100000", ""),
            Precondition::None
        )
        .await
        .unwrap(),
        PutOutcome::UidConflict {
            existing: "one.ics".into()
        }
    );
    // The same UID in another calendar is fine.
    let other = s
        .create_groupware_collection(u.id, NewCollection::calendar("work", "Work"))
        .await
        .unwrap();
    created(
        s.put_icalendar(
            other.id,
            "two.ics",
            event("same", "20260311T100000", ""),
            Precondition::None,
        )
        .await
        .unwrap(),
    );
    // A vCard does not go into a calendar, a task not into an events-only one.
    let book = s
        .groupware_collection(u.id, CollectionKind::AddressBook, "personal")
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        s.put_vcard(
            cal.id,
            "c.vcf",
            card("c", "C", "c@example.org"),
            Precondition::None
        )
        .await
        .unwrap(),
        PutOutcome::NotAllowed(_)
    ));
    assert!(matches!(
        s.put_icalendar(
            book.id,
            "e.ics",
            event("e", "20260311T100000", ""),
            Precondition::None
        )
        .await
        .unwrap(),
        PutOutcome::NotAllowed(_)
    ));
    let todo: Arc<[u8]> = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VTODO\r\nUID:t\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:x\r\nEND:VTODO\r\nEND:VCALENDAR\r\n"[..].into();
    assert!(matches!(
        s.put_icalendar(cal.id, "t.ics", todo.clone(), Precondition::None)
            .await
            .unwrap(),
        PutOutcome::NotAllowed(_)
    ));
    let tasks = s
        .groupware_collection(u.id, CollectionKind::Calendar, "tasks")
        .await
        .unwrap()
        .unwrap();
    let t = created(
        s.put_icalendar(tasks.id, "t.ics", todo, Precondition::None)
            .await
            .unwrap(),
    );
    assert_eq!(t.component, ComponentKind::Todo);
    assert_eq!(t.first_start, None);
}

async fn tombstones_and_journal_since(s: TestStore) {
    let u = user(&s, "alice@example.org").await;
    let cal = calendar(&s, &u).await;
    let token = s.journal_state(cal.id).await.unwrap().highest;
    let a = created(
        s.put_icalendar(
            cal.id,
            "a.ics",
            event("uid-a", "20260310T100000", ""),
            Precondition::None,
        )
        .await
        .unwrap(),
    );
    let b = created(
        s.put_icalendar(
            cal.id,
            "b.ics",
            event("uid-b", "20260311T100000", ""),
            Precondition::None,
        )
        .await
        .unwrap(),
    );
    let Since::Changes(ch) = s.journal_since(cal.id, token).await.unwrap() else {
        panic!("too old")
    };
    assert_eq!(
        ch.added.iter().map(|c| c.item).collect::<Vec<_>>(),
        vec![a.item, b.item]
    );
    assert_eq!(ch.added[0].item_id, a.id);
    let mid = ch.highest_modseq;
    // Change one, delete the other.
    s.put_icalendar(
        cal.id,
        "a.ics",
        event("uid-a", "20260310T120000", ""),
        Precondition::None,
    )
    .await
    .unwrap();
    s.delete_object(cal.id, "b.ics", Precondition::None)
        .await
        .unwrap();
    let Since::Changes(ch) = s.journal_since(cal.id, mid).await.unwrap() else {
        panic!("too old")
    };
    assert!(ch.added.is_empty());
    assert_eq!(
        ch.changed.iter().map(|c| c.item).collect::<Vec<_>>(),
        vec![a.item]
    );
    assert_eq!(ch.removed.len(), 1);
    let t = &ch.removed[0];
    assert_eq!(t.item, b.item);
    assert_eq!(t.item_id, Some(b.id));
    assert_eq!(t.name.as_deref(), Some("b.ics"));
    assert_eq!(t.object_uid.as_deref(), Some("uid-b"));
    // From the first token: b was added and removed after it, so it is in neither list.
    let Since::Changes(ch) = s.journal_since(cal.id, token).await.unwrap() else {
        panic!("too old")
    };
    assert_eq!(ch.added.len(), 1);
    assert!(ch.removed.is_empty());
    // The ctag moved with every write.
    let now = s.groupware_collection_by_id(cal.id).await.unwrap().unwrap();
    assert_eq!(now.ctag, ch.highest_modseq);
}

async fn time_range_over_instances(s: TestStore) {
    let u = user(&s, "alice@example.org").await;
    let cal = calendar(&s, &u).await;
    let y = pim::utc(2026, 1, 1, 0, 0, 0).max(outpost_store::now() / 86400 * 86400);
    // Times relative to now, so they are inside the precomputed window.
    let day = |d: i64| y + d * 86400;
    let stamp = |t: i64| chrono_like(t);
    let weekly = event("weekly", &stamp(day(7)), "RRULE:FREQ=WEEKLY;COUNT=5\r\n");
    let w = created(
        s.put_icalendar(cal.id, "w.ics", weekly, Precondition::None)
            .await
            .unwrap(),
    );
    assert!(w.recurring);
    let single = created(
        s.put_icalendar(
            cal.id,
            "s.ics",
            event("single", &stamp(day(100)), ""),
            Precondition::None,
        )
        .await
        .unwrap(),
    );
    // Day 21 holds the third weekly instance only.
    let hits = s
        .time_range_candidates(cal.id, day(21), day(22), Some(ComponentKind::Event))
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].meta.uid, "weekly");
    assert!(hits[0].exact);
    // Day 22..28: between instances; nothing.
    assert!(s
        .time_range_candidates(cal.id, day(22), day(28), None)
        .await
        .unwrap()
        .is_empty());
    // Day 90..110: the single event.
    let hits = s
        .time_range_candidates(cal.id, day(90), day(110), None)
        .await
        .unwrap();
    assert_eq!(
        hits.iter().map(|h| h.meta.id).collect::<Vec<_>>(),
        vec![single.id]
    );
    // Only todos: none.
    assert!(s
        .time_range_candidates(cal.id, day(0), day(200), Some(ComponentKind::Todo))
        .await
        .unwrap()
        .is_empty());
    // Instances of the series in a range.
    let inst = s.object_instances(w.id, day(0), day(60)).await.unwrap();
    assert_eq!(inst.len(), 5);
    assert_eq!(inst[2].start, day(21));
    assert_eq!(inst[2].recurrence_id, Some(day(21)));
    // Far beyond the window: decided by the object's bounds, not exact.
    let far = s
        .time_range_candidates(cal.id, day(3000), day(3001), None)
        .await
        .unwrap();
    assert!(far.is_empty(), "both objects end long before: {far:?}");
    let unbounded = event("forever", &stamp(day(1)), "RRULE:FREQ=DAILY\r\n");
    created(
        s.put_icalendar(cal.id, "f.ics", unbounded, Precondition::None)
            .await
            .unwrap(),
    );
    let far = s
        .time_range_candidates(cal.id, day(3000), day(3001), None)
        .await
        .unwrap();
    assert_eq!(far.len(), 1);
    assert!(!far[0].exact);
}

/// "YYYYMMDDTHHMMSS" of a UTC timestamp.
fn chrono_like(t: i64) -> String {
    let days = t.div_euclid(86400);
    let secs = t.rem_euclid(86400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

async fn free_busy_periods(s: TestStore) {
    let u = user(&s, "alice@example.org").await;
    let cal = calendar(&s, &u).await;
    let base = outpost_store::now() / 86400 * 86400 + 10 * 86400;
    let at = |h: i64| base + h * 3600;
    let put = |name: &'static str, start: i64, extra: &'static str| {
        let s = s.store.clone();
        let cal = cal.id;
        async move {
            created(
                s.put_icalendar(
                    cal,
                    name,
                    event(name, &chrono_like(start), extra),
                    Precondition::None,
                )
                .await
                .unwrap(),
            )
        }
    };
    put("busy1", at(9), "").await;
    put("busy2", at(9), "").await; // overlaps busy1: merged
    put("tent", at(12), "STATUS:TENTATIVE\r\n").await;
    put("free", at(14), "TRANSP:TRANSPARENT\r\n").await;
    put("gone", at(16), "STATUS:CANCELLED\r\n").await;
    let fb = s.free_busy(u.id, at(0), at(24)).await.unwrap();
    assert_eq!(
        fb,
        vec![
            BusyPeriod {
                start: at(9),
                end: at(10),
                kind: BusyType::Busy
            },
            BusyPeriod {
                start: at(12),
                end: at(13),
                kind: BusyType::Tentative
            },
        ]
    );
    // Cut to the range.
    let fb = s.free_busy(u.id, at(9) + 1800, at(11)).await.unwrap();
    assert_eq!(
        fb,
        vec![BusyPeriod {
            start: at(9) + 1800,
            end: at(10),
            kind: BusyType::Busy
        }]
    );
    // Another user's calendar is not this user's busy time.
    let b = user(&s, "bob@example.org").await;
    assert!(s.free_busy(b.id, at(0), at(24)).await.unwrap().is_empty());
    // Years ahead, beyond the precomputed window: expanded from the source.
    let yearly = event("yearly", &chrono_like(at(9)), "RRULE:FREQ=YEARLY\r\n");
    s.put_icalendar(cal.id, "yearly.ics", yearly, Precondition::None)
        .await
        .unwrap();
    let later = at(9) + 5 * 365 * 86400 + 86400; // about five years on
    let fb = s
        .free_busy(u.id, later - 20 * 86400, later + 20 * 86400)
        .await
        .unwrap();
    assert_eq!(fb.len(), 1, "{fb:?}");
}

async fn grants_and_shared_with(s: TestStore) {
    let alice = user(&s, "alice@example.org").await;
    let bob = user(&s, "bob@example.org").await;
    let carol = user(&s, "carol@example.org").await;
    let cal = calendar(&s, &alice).await;
    let book = s
        .groupware_collection(alice.id, CollectionKind::AddressBook, "personal")
        .await
        .unwrap()
        .unwrap();
    let seq = s.principal_journal_state(bob.id).await.unwrap().highest;
    s.grant(cal.id, bob.id, Rights::Read).await.unwrap();
    s.grant(cal.id, bob.id, Rights::ReadWrite).await.unwrap(); // changes it
    assert_eq!(
        s.grants(cal.id).await.unwrap(),
        vec![Grant {
            collection: cal.id,
            grantee: bob.id,
            rights: Rights::ReadWrite
        }]
    );
    let shared = s.shared_with(bob.id).await.unwrap();
    assert_eq!(shared.len(), 1);
    assert_eq!(shared[0].collection.id, cal.id);
    assert_eq!(shared[0].rights, Rights::ReadWrite);
    // The grantee's journal says its set of visible collections changed.
    let Since::Changes(pc) = s.principal_changes_since(bob.id, seq).await.unwrap() else {
        panic!()
    };
    assert!(pc
        .changes
        .iter()
        .all(|c| c.kind == CollectionChangeKind::AclChanged && c.collection == cal.id));
    assert!(!pc.changes.is_empty());
    // Through a group, nested once.
    let outer = s
        .create_principal(NewPrincipal {
            kind: PrincipalKind::Group,
            address: "staff@example.org".into(),
            display_name: "Staff".into(),
            password_hash: None,
            source: "internal".into(),
            external_id: None,
            quota_bytes: 0,
        })
        .await
        .unwrap();
    let inner = s
        .create_principal(NewPrincipal {
            kind: PrincipalKind::Group,
            address: "team@example.org".into(),
            display_name: "Team".into(),
            password_hash: None,
            source: "internal".into(),
            external_id: None,
            quota_bytes: 0,
        })
        .await
        .unwrap();
    s.add_member(outer.id, "team@example.org").await.unwrap();
    s.add_member(inner.id, "carol@example.org").await.unwrap();
    // A loop must not hang the query.
    s.add_member(inner.id, "staff@example.org").await.unwrap();
    assert!(s.shared_with(carol.id).await.unwrap().is_empty());
    s.grant(book.id, outer.id, Rights::Read).await.unwrap();
    s.grant(cal.id, outer.id, Rights::FreeBusy).await.unwrap();
    let shared = s.shared_with(carol.id).await.unwrap();
    let mut got: Vec<(i64, Rights)> = shared.iter().map(|x| (x.collection.id, x.rights)).collect();
    got.sort();
    let mut want = vec![(cal.id, Rights::FreeBusy), (book.id, Rights::Read)];
    want.sort();
    assert_eq!(got, want);
    // Bob: the direct read-write beats the group's free-busy... bob is not in the group.
    assert_eq!(s.shared_with(bob.id).await.unwrap().len(), 1);
    // The owner needs no grant; revoke.
    assert!(s.grant(cal.id, alice.id, Rights::Read).await.is_err());
    assert!(s.revoke(cal.id, bob.id).await.unwrap());
    assert!(!s.revoke(cal.id, bob.id).await.unwrap());
    assert!(s.shared_with(bob.id).await.unwrap().is_empty());
    // Removing the grantee removes its grants.
    s.remove_principal(outer.id).await.unwrap();
    assert!(s.shared_with(carol.id).await.unwrap().is_empty());
}

async fn collection_delete_leaves_principal_journal_row(s: TestStore) {
    let u = user(&s, "alice@example.org").await;
    let seq = s.principal_journal_state(u.id).await.unwrap().highest;
    let cal = s
        .create_groupware_collection(u.id, NewCollection::calendar("work", "Work"))
        .await
        .unwrap();
    let e = created(
        s.put_icalendar(
            cal.id,
            "e.ics",
            event("e", "20260310T100000", ""),
            Precondition::None,
        )
        .await
        .unwrap(),
    );
    s.delete_groupware_collection(cal.id).await.unwrap();
    assert!(s
        .groupware_collection_by_id(cal.id)
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        s.journal_since(cal.id, 0).await,
        Err(StoreError::NotFound(_))
    ));
    let Since::Changes(pc) = s.principal_changes_since(u.id, seq).await.unwrap() else {
        panic!()
    };
    let kinds: Vec<(CollectionChangeKind, &str, &str)> = pc
        .changes
        .iter()
        .map(|c| (c.kind, c.collection_kind.as_str(), c.name.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (CollectionChangeKind::Created, "calendar", "work"),
            (CollectionChangeKind::Deleted, "calendar", "work"),
        ]
    );
    // Child rows and the blob reference went with it.
    let left: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM groupware_instances WHERE object_id = $1")
            .bind(e.id)
            .fetch_one(s.pool())
            .await
            .unwrap();
    assert_eq!(left, 0);
    let refs: i64 = sqlx::query_scalar("SELECT refcount FROM blobs WHERE hash = $1")
        .bind(&e.blob_hash)
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert_eq!(refs, 0);
}

async fn contacts_search_and_gal(s: TestStore) {
    let u = user(&s, "alice@example.org").await;
    s.ensure_default_groupware(u.id).await.unwrap();
    let book = s
        .groupware_collection(u.id, CollectionKind::AddressBook, "personal")
        .await
        .unwrap()
        .unwrap();
    let j = created(
        s.put_vcard(
            book.id,
            "j.vcf",
            card("j", "Jürgen Müller", "JM@Example.org"),
            Precondition::None,
        )
        .await
        .unwrap(),
    );
    assert_eq!(j.component, ComponentKind::Card);
    assert_eq!(j.summary.as_deref(), Some("Jürgen Müller"));
    created(
        s.put_vcard(
            book.id,
            "k.vcf",
            card("k", "Kim 100%", "kim@example.net"),
            Precondition::None,
        )
        .await
        .unwrap(),
    );
    let hits = s.search_contacts(&[book.id], "müll", 10).await.unwrap();
    assert_eq!(
        hits.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(),
        vec!["j.vcf"]
    );
    let hits = s
        .search_contacts(&[book.id], "jm@example", 10)
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
    // LIKE wildcards in the text are literal.
    let hits = s.search_contacts(&[book.id], "%", 10).await.unwrap();
    assert_eq!(
        hits.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(),
        vec!["k.vcf"]
    );
    assert!(s
        .search_contacts(&[book.id], "nobody", 10)
        .await
        .unwrap()
        .is_empty());
    // Column readable in plain SQL.
    let emails: Vec<String> = sqlx::query_scalar(
        "SELECT folded FROM contact_fields WHERE object_id = $1 AND field = 'email'",
    )
    .bind(j.id)
    .fetch_all(s.pool())
    .await
    .unwrap();
    assert_eq!(emails, vec!["jm@example.org".to_string()]);

    // The GAL: one per domain, read-only to users, written by the system.
    let gal = s.gal_address_book("example.org").await.unwrap();
    assert!(gal.read_only);
    assert_eq!(s.gal_address_book("EXAMPLE.org").await.unwrap().id, gal.id);
    assert!(matches!(
        s.put_vcard(
            gal.id,
            "x.vcf",
            card("x", "X", "x@example.org"),
            Precondition::None
        )
        .await
        .unwrap(),
        PutOutcome::NotAllowed(_)
    ));
    created(
        s.put_gal_entry(
            gal.id,
            "alice.vcf",
            card("alice", "Alice", "alice@example.org"),
        )
        .await
        .unwrap(),
    );
    assert_eq!(
        s.search_contacts(&[gal.id], "alice", 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(matches!(
        s.delete_object(gal.id, "alice.vcf", Precondition::None)
            .await
            .unwrap(),
        DeleteOutcome::NotAllowed(_)
    ));
    assert!(matches!(
        s.delete_gal_entry(gal.id, "alice.vcf").await.unwrap(),
        DeleteOutcome::Deleted { .. }
    ));
    // Its owner is not a user or a group of the directory.
    let groups = s.principals(PrincipalKind::Group).await.unwrap();
    assert!(groups.iter().all(|g| g.id != gal.owner));
    // Rooms and resources.
    let room = user(&s, "room1@example.org").await;
    assert_eq!(
        s.calendar_user_type(room.id).await.unwrap(),
        CalendarUserType::Individual
    );
    s.set_calendar_user_type(room.id, CalendarUserType::Room)
        .await
        .unwrap();
    assert_eq!(
        s.calendar_user_type(room.id).await.unwrap(),
        CalendarUserType::Room
    );
    assert!(s.gal_address_book("unknown.example").await.is_err());
}

async fn move_and_copy(s: TestStore) {
    let u = user(&s, "alice@example.org").await;
    let cal = calendar(&s, &u).await;
    let work = s
        .create_groupware_collection(u.id, NewCollection::calendar("work", "Work"))
        .await
        .unwrap();
    let a = created(
        s.put_icalendar(
            cal.id,
            "a.ics",
            event("a", "20260310T100000", ""),
            Precondition::None,
        )
        .await
        .unwrap(),
    );
    let token = s.journal_state(cal.id).await.unwrap().highest;
    // Move to the other calendar.
    let m = created(
        s.copy_object(cal.id, "a.ics", work.id, "moved.ics", false, true)
            .await
            .unwrap(),
    );
    assert_eq!(m.uid, "a");
    assert_eq!(m.etag, a.etag, "same content, same ETag");
    assert!(s.groupware_object(cal.id, "a.ics").await.unwrap().is_none());
    let Since::Changes(ch) = s.journal_since(cal.id, token).await.unwrap() else {
        panic!()
    };
    assert_eq!(ch.removed.len(), 1);
    // Copy back beside itself: a second resource with the same UID in one
    // collection is a conflict.
    created(
        s.copy_object(work.id, "moved.ics", cal.id, "a.ics", false, false)
            .await
            .unwrap(),
    );
    assert!(matches!(
        s.copy_object(work.id, "moved.ics", work.id, "dup.ics", false, false)
            .await
            .unwrap(),
        PutOutcome::UidConflict { .. }
    ));
    // Overwrite: F onto an existing resource.
    created(
        s.put_icalendar(
            work.id,
            "b.ics",
            event("b", "20260311T100000", ""),
            Precondition::None,
        )
        .await
        .unwrap(),
    );
    assert_eq!(
        s.copy_object(cal.id, "a.ics", work.id, "b.ics", false, true)
            .await
            .unwrap(),
        PutOutcome::PreconditionFailed
    );
    // The failed move left the source in place.
    assert!(s.groupware_object(cal.id, "a.ics").await.unwrap().is_some());
    // A rename inside one collection.
    let r = s
        .copy_object(work.id, "b.ics", work.id, "renamed.ics", false, true)
        .await
        .unwrap();
    assert!(matches!(r, PutOutcome::Created(_)), "{r:?}");
    assert!(s
        .groupware_object(work.id, "b.ics")
        .await
        .unwrap()
        .is_none());
    // Not to another owner.
    let bob = user(&s, "bob@example.org").await;
    let bcal = calendar(&s, &bob).await;
    assert!(matches!(
        s.copy_object(cal.id, "a.ics", bcal.id, "a.ics", false, false)
            .await
            .unwrap(),
        PutOutcome::NotAllowed(_)
    ));
}

async fn invalid_input_leaves_the_store_intact(s: TestStore) {
    let u = user(&s, "alice@example.org").await;
    let cal = calendar(&s, &u).await;
    created(
        s.put_icalendar(
            cal.id,
            "a.ics",
            event("a", "20260310T100000", ""),
            Precondition::None,
        )
        .await
        .unwrap(),
    );
    let before = s
        .groupware_collection_by_id(cal.id)
        .await
        .unwrap()
        .unwrap()
        .ctag;
    for bad in [
        &b"not a calendar"[..],
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n",
        b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nDTSTART;TZID=Nowhere/Land:20260101T100000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        b"\xff\xfe\x00",
    ] {
        let out = s
            .put_icalendar(cal.id, "a.ics", Arc::from(bad), Precondition::None)
            .await
            .unwrap();
        assert!(matches!(out, PutOutcome::Invalid(_)), "{out:?}");
    }
    let big: Vec<u8> = vec![b'x'; MAX_OBJECT_BYTES + 1];
    assert!(matches!(
        s.put_icalendar(cal.id, "big.ics", Arc::from(big), Precondition::None)
            .await
            .unwrap(),
        PutOutcome::Invalid(PimError::TooLarge { .. })
    ));
    let got = s.groupware_object(cal.id, "a.ics").await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&got.data).contains("UID:a"));
    assert_eq!(
        s.groupware_collection_by_id(cal.id)
            .await
            .unwrap()
            .unwrap()
            .ctag,
        before
    );
    // Names that are not URL segments.
    assert!(s
        .put_icalendar(
            cal.id,
            "../x.ics",
            event("x", "20260310T100000", ""),
            Precondition::None
        )
        .await
        .is_err());
}
