//! The scheduling engine against the embedded store, on SQLite and
//! PostgreSQL: an organizer invites two hosted users (one by an alias) and
//! an outside address; an attendee accepts; the organizer cancels; iMIP
//! from outside is applied at delivery (and a forged one is not); a room
//! accepts, and declines when busy; free/busy.

use std::collections::HashMap;
use std::sync::Arc;

use mail_parser::MimeHeaders;
use outpost_config::Config;
use outpost_directory::Directory;
use outpost_mailflow::{Envelope, MailFlow, Rcpt, Settings};
use outpost_pim::calcard::common::PartialDateTime;
use outpost_pim::itip::{self, Method, Role};
use outpost_pim::Limits;
use outpost_scheduling::{FreeBusy, Scheduler, Status};
use outpost_store::groupware::{
    CalendarUserType, CollectionKind, Precondition, PutOutcome, DEFAULT_CALENDAR,
};
use outpost_store::testing::TestStore;
use outpost_store::Store;

use outpost_testkit::both;

both!(
    an_invitation_reaches_hosted_calendars_and_the_outside_by_mail,
    an_acceptance_updates_the_organizers_copy,
    a_cancellation_cancels_the_attendees_copies,
    imip_from_outside_is_applied_at_delivery,
    a_room_accepts_and_declines_when_busy,
    free_busy_of_hosted_users,
    an_assigned_task_goes_to_the_task_list,
    an_attendee_raising_sequence_still_gets_the_organizers_updates,
    schedule_status_is_written_into_the_organizers_copy,
    the_schedule_tag_changes_only_with_what_counts,
    an_outside_attendees_refresh_is_answered_with_the_current_request,
);

struct World {
    store: Store,
    flow: Arc<MailFlow>,
    sched: Scheduler,
    alice: i64,
    bob: i64,
    carol: i64,
    room: i64,
}

/// example.test: alice, bob (alias robert@), carol, and room1 (a room).
async fn world(ts: &TestStore) -> World {
    let mut cfg = Config::defaults_with(ts.dir.path().join("data"));
    cfg.hostname = "mail.example.test".into();
    let store: Store = (**ts).clone();
    store.add_domain("example.test").await.unwrap();
    let dir = Directory::new(store.clone());
    let alice = dir
        .add_user("alice@example.test", "Alice", "pw-alice-1")
        .await
        .unwrap()
        .id;
    let bob = dir
        .add_user("bob@example.test", "Bob", "pw-bob-12")
        .await
        .unwrap()
        .id;
    let carol = dir
        .add_user("carol@example.test", "Carol", "pw-carol-1")
        .await
        .unwrap()
        .id;
    let room = dir
        .add_user("room1@example.test", "Room 1", "pw-room-11")
        .await
        .unwrap()
        .id;
    store.add_address(bob, "robert@example.test").await.unwrap();
    store
        .set_calendar_user_type(room, CalendarUserType::Room)
        .await
        .unwrap();
    let flow = Arc::new(MailFlow::new(dir, Settings::from_config(&cfg).unwrap()));
    let sched = Scheduler::new(flow.clone());
    assert!(flow.set_imip_handler(Arc::new(sched.clone())));
    World {
        store,
        flow,
        sched,
        alice,
        bob,
        carol,
        room,
    }
}

/// iCalendar UTC time of a day `days` from now at `hour`.
fn at(days: i64, hour: i64) -> String {
    let now = outpost_store::now();
    let t = (now / 86_400 + days) * 86_400 + hour * 3600;
    let d = PartialDateTime::from_utc_timestamp(t);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}00Z",
        d.year.unwrap(),
        d.month.unwrap(),
        d.day.unwrap(),
        d.hour.unwrap(),
        d.minute.unwrap()
    )
}

fn event(
    uid: &str,
    organizer: &str,
    attendees: &[&str],
    start: &str,
    end: &str,
    extra: &str,
) -> String {
    let mut s = format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN\r\n\
BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20261201T090000Z\r\nDTSTART:{start}\r\nDTEND:{end}\r\n\
SUMMARY:Planning\r\nSEQUENCE:0\r\nORGANIZER;CN=Org:mailto:{organizer}\r\n\
ATTENDEE;PARTSTAT=ACCEPTED;ROLE=CHAIR:mailto:{organizer}\r\n"
    );
    for a in attendees {
        s.push_str(&format!(
            "ATTENDEE;RSVP=TRUE;PARTSTAT=NEEDS-ACTION;ROLE=REQ-PARTICIPANT:mailto:{a}\r\n"
        ));
    }
    s.push_str(extra);
    s.push_str("END:VEVENT\r\nEND:VCALENDAR\r\n");
    s
}

async fn calendar(store: &Store, p: i64) -> i64 {
    store.ensure_default_groupware(p).await.unwrap();
    store
        .groupware_collection(p, CollectionKind::Calendar, DEFAULT_CALENDAR.0)
        .await
        .unwrap()
        .unwrap()
        .id
}

/// A principal's copy of `uid`: (collection, name, etag, text).
async fn copy(store: &Store, p: i64, uid: &str) -> Option<(i64, String, String, String)> {
    let meta = store
        .calendar_objects_by_uid(p, uid)
        .await
        .unwrap()
        .into_iter()
        .next()?;
    let o = store
        .groupware_object(meta.collection, &meta.name)
        .await
        .unwrap()
        .unwrap();
    Some((
        meta.collection,
        meta.name,
        meta.etag,
        String::from_utf8(o.data).unwrap(),
    ))
}

fn partstat(text: &str, who: &str) -> Option<String> {
    itip::parse(text.as_bytes(), &Limits::default())
        .unwrap()
        .partstat(who)
}

/// A client's PUT of `text` over what is there, then the engine, as the
/// DAV adapter will call it.
async fn put(w: &World, p: i64, coll: i64, name: &str, text: &str) -> outpost_scheduling::Outcome {
    let before = w.store.groupware_object(coll, name).await.unwrap();
    let state = w
        .sched
        .client_write_state(
            coll,
            before
                .as_ref()
                .map(|o| (o.data.as_slice(), &o.meta.schedule)),
            text.as_bytes(),
        )
        .await
        .unwrap();
    let old = before.map(|o| o.data);
    let out = w
        .store
        .put_icalendar_scheduled(
            coll,
            name,
            Arc::from(text.as_bytes().to_vec()),
            Precondition::None,
            state,
        )
        .await
        .unwrap();
    assert!(
        matches!(out, PutOutcome::Created(_) | PutOutcome::Replaced(_)),
        "{out:?}"
    );
    w.sched
        .after_write(p, coll, old.as_deref(), Some(text.as_bytes()))
        .await
        .unwrap()
}

/// Everything in the queue (leased): recipients and message.
async fn queued(store: &Store) -> Vec<(Vec<String>, String)> {
    let groups = store
        .queue_lease(outpost_store::now() + 1, 600, 100, 100, HashMap::new())
        .await
        .unwrap();
    let mut out = Vec::new();
    for g in groups {
        let raw = store.read_blob(&g.message.blob_hash).await.unwrap();
        out.push((
            g.recipients.iter().map(|r| r.address.clone()).collect(),
            String::from_utf8_lossy(&raw).into_owned(),
        ));
    }
    out
}

const UID: &str = "planning-1@example.test";

/// alice invites bob (as robert@), carol and ext@outside.test.
async fn invite(w: &World) -> (i64, String) {
    let cal = calendar(&w.store, w.alice).await;
    let text = event(
        UID,
        "alice@example.test",
        &[
            "robert@example.test",
            "carol@example.test",
            "ext@outside.test",
        ],
        &at(10, 10),
        &at(10, 11),
        "",
    );
    let out = put(w, w.alice, cal, "planning.ics", &text).await;
    assert_eq!(out.role, Role::Organizer("alice@example.test".into()));
    assert_eq!(out.sent.len(), 3, "{:?}", out.sent);
    for s in &out.sent {
        assert_eq!(s.method, Method::Request);
        let want = if s.recipient == "ext@outside.test" {
            Status::Sent
        } else {
            Status::Delivered
        };
        assert_eq!(s.status, want, "{s:?}");
    }
    (cal, text)
}

async fn an_invitation_reaches_hosted_calendars_and_the_outside_by_mail(ts: TestStore) {
    let w = world(&ts).await;
    invite(&w).await;
    let (_, _, _, bob) = copy(&w.store, w.bob, UID).await.expect("bob's copy");
    assert_eq!(
        partstat(&bob, "robert@example.test").as_deref(),
        Some("NEEDS-ACTION")
    );
    assert!(!bob.contains("METHOD"), "a stored copy has no METHOD");
    let (_, _, _, carol) = copy(&w.store, w.carol, UID).await.expect("carol's copy");
    assert_eq!(
        partstat(&carol, "carol@example.test").as_deref(),
        Some("NEEDS-ACTION")
    );
    // The organizer's calendar holds one copy: the engine did not add one.
    assert_eq!(
        w.store
            .calendar_objects_by_uid(w.alice, UID)
            .await
            .unwrap()
            .len(),
        1
    );
    let q = queued(&w.store).await;
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0].0, vec!["ext@outside.test".to_string()]);
    let mail = &q[0].1;
    assert!(
        mail.contains("From: <alice@example.test>") || mail.contains("From: alice@example.test"),
        "{mail}"
    );
    assert!(mail.contains("multipart/alternative"));
    assert!(
        mail.contains("method=REQUEST") || mail.contains("method=\"REQUEST\""),
        "{mail}"
    );
    assert!(mail.contains("Subject: Invitation: Planning"));
    let parsed = mail_parser::MessageParser::default()
        .parse(mail.as_bytes())
        .unwrap();
    let cal = parsed
        .parts
        .iter()
        .find(|p| {
            p.content_type()
                .is_some_and(|c| c.subtype() == Some("calendar"))
        })
        .expect("a text/calendar part");
    let ical = itip::parse(cal.contents(), &Limits::default()).unwrap();
    assert_eq!(ical.method.as_deref(), Some("REQUEST"));
    assert_eq!(ical.uid, UID);
    // Writing the same object again (a client re-saving it) sends nothing.
    let cal = calendar(&w.store, w.alice).await;
    let (_, _, _, mine) = copy(&w.store, w.alice, UID).await.unwrap();
    let again = put(&w, w.alice, cal, "planning.ics", &mine).await;
    assert!(again.sent.is_empty(), "{:?}", again.sent);
}

async fn an_acceptance_updates_the_organizers_copy(ts: TestStore) {
    let w = world(&ts).await;
    invite(&w).await;
    let (coll, name, _, bob) = copy(&w.store, w.bob, UID).await.unwrap();
    let accepted = itip::set_attendee_partstat(
        &itip::parse(bob.as_bytes(), &Limits::default()).unwrap(),
        "robert@example.test",
        "ACCEPTED",
    );
    let out = put(&w, w.bob, coll, &name, &accepted).await;
    assert_eq!(out.role, Role::Attendee("robert@example.test".into()));
    assert_eq!(out.sent.len(), 1);
    assert_eq!(out.sent[0].method, Method::Reply);
    assert_eq!(out.sent[0].status, Status::Delivered);
    let (_, _, _, alice) = copy(&w.store, w.alice, UID).await.unwrap();
    assert_eq!(
        partstat(&alice, "robert@example.test").as_deref(),
        Some("ACCEPTED")
    );
    assert_eq!(
        partstat(&alice, "carol@example.test").as_deref(),
        Some("NEEDS-ACTION")
    );
    // The organizer re-saving her updated copy sends nothing new.
    let cal = calendar(&w.store, w.alice).await;
    let before = queued(&w.store).await.len();
    let again = put(&w, w.alice, cal, "planning.ics", &alice).await;
    assert!(again.sent.is_empty(), "{:?}", again.sent);
    assert_eq!(
        queued(&w.store).await.len(),
        0,
        "{before} leased before; nothing new"
    );
}

async fn a_cancellation_cancels_the_attendees_copies(ts: TestStore) {
    let w = world(&ts).await;
    let (cal, text) = invite(&w).await;
    queued(&w.store).await;
    let cancelled = text.replace("SEQUENCE:0", "SEQUENCE:1").replace(
        "SUMMARY:Planning\r\n",
        "SUMMARY:Planning\r\nSTATUS:CANCELLED\r\n",
    );
    let out = put(&w, w.alice, cal, "planning.ics", &cancelled).await;
    assert_eq!(out.sent.len(), 3, "{:?}", out.sent);
    assert!(out.sent.iter().all(|s| s.method == Method::Cancel));
    for p in [w.bob, w.carol] {
        let (_, _, _, c) = copy(&w.store, p, UID).await.unwrap();
        assert!(
            itip::parse(c.as_bytes(), &Limits::default())
                .unwrap()
                .cancelled,
            "{c}"
        );
    }
    let q = queued(&w.store).await;
    assert_eq!(q.len(), 1);
    assert!(q[0].1.contains("method=CANCEL") || q[0].1.contains("method=\"CANCEL\""));
    assert!(q[0].1.contains("Subject: Cancelled: Planning"));
    // Deleting the cancelled event sends nothing more.
    let out = w
        .sched
        .after_write(w.alice, cal, Some(cancelled.as_bytes()), None)
        .await
        .unwrap();
    assert!(out.sent.is_empty());
}

fn imip_mail(from: &str, to: &str, method: &str, ical: &str) -> Vec<u8> {
    format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: iMIP\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\n\
Message-ID: <{method}.{}@outside.test>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n\
--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee the calendar part.\r\n\
--b1\r\nContent-Type: text/calendar; charset=utf-8; method={method}\r\n\r\n{ical}\r\n--b1--\r\n",
        rand_id()
    )
    .into_bytes()
}

fn rand_id() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

async fn deliver(w: &World, from: &str, to: &str, msg: &[u8]) {
    let env = Envelope {
        mail_from: from.into(),
        recipients: vec![Rcpt::new(to)],
        message_id: "imip.test".into(),
        ..Envelope::default()
    };
    for r in w.flow.deliver(&env, msg).await {
        r.unwrap();
    }
}

async fn imip_from_outside_is_applied_at_delivery(ts: TestStore) {
    let w = world(&ts).await;
    // An outside organizer invites bob at his alias.
    let uid = "ext-meeting-7@outside.test";
    let req = event(
        uid,
        "org@outside.test",
        &["robert@example.test"],
        &at(12, 9),
        &at(12, 10),
        "",
    )
    .replace("VERSION:2.0\r\n", "VERSION:2.0\r\nMETHOD:REQUEST\r\n");
    deliver(
        &w,
        "org@outside.test",
        "robert@example.test",
        &imip_mail("org@outside.test", "robert@example.test", "REQUEST", &req),
    )
    .await;
    let (_, _, _, bob) = copy(&w.store, w.bob, uid)
        .await
        .expect("the invitation is in bob's calendar");
    assert_eq!(
        partstat(&bob, "robert@example.test").as_deref(),
        Some("NEEDS-ACTION")
    );
    // The mail itself is in the INBOX too.
    let inbox = w.store.mailbox(w.bob, "INBOX").await.unwrap().unwrap();
    assert_eq!(w.store.message_list(inbox.id).await.unwrap().len(), 1);

    // A forged update: From: is not the organizer. Not applied.
    let forged = req
        .replace("SUMMARY:Planning", "SUMMARY:Forged")
        .replace("SEQUENCE:0", "SEQUENCE:5");
    deliver(
        &w,
        "mallory@evil.test",
        "bob@example.test",
        &imip_mail("mallory@evil.test", "bob@example.test", "REQUEST", &forged),
    )
    .await;
    let (_, _, _, bob) = copy(&w.store, w.bob, uid).await.unwrap();
    assert!(!bob.contains("Forged"));
    // Nor one claiming a hosted organizer.
    let hosted = event(
        "hosted-claim@x",
        "alice@example.test",
        &["bob@example.test"],
        &at(12, 9),
        &at(12, 10),
        "",
    )
    .replace("VERSION:2.0\r\n", "VERSION:2.0\r\nMETHOD:REQUEST\r\n");
    deliver(
        &w,
        "alice@example.test",
        "bob@example.test",
        &imip_mail("alice@example.test", "bob@example.test", "REQUEST", &hosted),
    )
    .await;
    assert!(copy(&w.store, w.bob, "hosted-claim@x").await.is_none());

    // The organizer cancels by mail.
    let cancel = format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Outside//EN\r\nMETHOD:CANCEL\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n\
DTSTAMP:20261202T090000Z\r\nSEQUENCE:1\r\nORGANIZER:mailto:org@outside.test\r\nATTENDEE:mailto:robert@example.test\r\n\
STATUS:CANCELLED\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    );
    deliver(
        &w,
        "org@outside.test",
        "bob@example.test",
        &imip_mail("org@outside.test", "bob@example.test", "CANCEL", &cancel),
    )
    .await;
    let (_, _, _, bob) = copy(&w.store, w.bob, uid).await.unwrap();
    assert!(
        itip::parse(bob.as_bytes(), &Limits::default())
            .unwrap()
            .cancelled,
        "{bob}"
    );

    // An outside attendee's REPLY by mail updates alice's copy.
    invite(&w).await;
    let reply = format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Outside//EN\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\nUID:{UID}\r\n\
DTSTAMP:20261202T090000Z\r\nSEQUENCE:0\r\nORGANIZER:mailto:alice@example.test\r\n\
ATTENDEE;PARTSTAT=TENTATIVE:mailto:ext@outside.test\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    );
    deliver(
        &w,
        "ext@outside.test",
        "alice@example.test",
        &imip_mail("ext@outside.test", "alice@example.test", "REPLY", &reply),
    )
    .await;
    let (_, _, _, alice) = copy(&w.store, w.alice, UID).await.unwrap();
    assert_eq!(
        partstat(&alice, "ext@outside.test").as_deref(),
        Some("TENTATIVE")
    );
    // Somebody else cannot answer for ext@.
    let other = reply.replace("PARTSTAT=TENTATIVE", "PARTSTAT=DECLINED");
    deliver(
        &w,
        "x@outside.test",
        "alice@example.test",
        &imip_mail("x@outside.test", "alice@example.test", "REPLY", &other),
    )
    .await;
    let (_, _, _, alice) = copy(&w.store, w.alice, UID).await.unwrap();
    assert_eq!(
        partstat(&alice, "ext@outside.test").as_deref(),
        Some("TENTATIVE")
    );
}

async fn a_room_accepts_and_declines_when_busy(ts: TestStore) {
    let w = world(&ts).await;
    let acal = calendar(&w.store, w.alice).await;
    let first = event(
        "room-a@example.test",
        "alice@example.test",
        &["room1@example.test"],
        &at(20, 10),
        &at(20, 11),
        "",
    );
    let out = put(&w, w.alice, acal, "room-a.ics", &first).await;
    assert_eq!(out.sent[0].status, Status::Delivered);
    let (_, _, _, room) = copy(&w.store, w.room, "room-a@example.test")
        .await
        .expect("the room keeps the booking");
    assert_eq!(
        partstat(&room, "room1@example.test").as_deref(),
        Some("ACCEPTED")
    );
    let (_, _, _, alice) = copy(&w.store, w.alice, "room-a@example.test")
        .await
        .unwrap();
    assert_eq!(
        partstat(&alice, "room1@example.test").as_deref(),
        Some("ACCEPTED"),
        "the room's reply reached alice"
    );

    // Carol wants the room for an overlapping hour.
    let ccal = calendar(&w.store, w.carol).await;
    let second = event(
        "room-b@example.test",
        "carol@example.test",
        &["room1@example.test"],
        &at(20, 10).replace("0000Z", "3000Z"),
        &at(20, 11).replace("0000Z", "3000Z"),
        "",
    );
    put(&w, w.carol, ccal, "room-b.ics", &second).await;
    assert!(
        copy(&w.store, w.room, "room-b@example.test")
            .await
            .is_none(),
        "a declined booking keeps no copy"
    );
    let (_, _, _, carol) = copy(&w.store, w.carol, "room-b@example.test")
        .await
        .unwrap();
    assert_eq!(
        partstat(&carol, "room1@example.test").as_deref(),
        Some("DECLINED")
    );

    // The next day is free.
    let third = event(
        "room-c@example.test",
        "carol@example.test",
        &["room1@example.test"],
        &at(21, 10),
        &at(21, 11),
        "",
    );
    put(&w, w.carol, ccal, "room-c.ics", &third).await;
    let (_, _, _, carol) = copy(&w.store, w.carol, "room-c@example.test")
        .await
        .unwrap();
    assert_eq!(
        partstat(&carol, "room1@example.test").as_deref(),
        Some("ACCEPTED")
    );

    // Moving the accepted booking within its own slot does not conflict
    // with itself.
    let moved = first
        .replace(&at(20, 11), &at(20, 11).replace("0000Z", "3000Z"))
        .replace("SEQUENCE:0", "SEQUENCE:1");
    let (_, _, _, current) = copy(&w.store, w.alice, "room-a@example.test")
        .await
        .unwrap();
    let _ = current;
    put(&w, w.alice, acal, "room-a.ics", &moved).await;
    let (_, _, _, room) = copy(&w.store, w.room, "room-a@example.test")
        .await
        .expect("still booked");
    assert_eq!(
        partstat(&room, "room1@example.test").as_deref(),
        Some("ACCEPTED")
    );
}

async fn free_busy_of_hosted_users(ts: TestStore) {
    let w = world(&ts).await;
    invite(&w).await;
    let start = outpost_store::now() / 86_400 * 86_400 + 10 * 86_400;
    let fb = w
        .sched
        .free_busy(
            &[
                "mailto:carol@example.test".into(),
                "ext@outside.test".into(),
                "nobody@example.test".into(),
                "alice@example.test".into(),
            ],
            start,
            start + 86_400,
        )
        .await
        .unwrap();
    assert_eq!(fb[0].0, "carol@example.test");
    match &fb[0].1 {
        FreeBusy::Busy(p) => {
            assert_eq!(p.len(), 1, "{p:?}");
            assert_eq!(
                (p[0].start, p[0].end),
                (start + 10 * 3600, start + 11 * 3600)
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(fb[1].1, FreeBusy::NotHosted);
    assert_eq!(fb[2].1, FreeBusy::Unknown);
    assert!(matches!(&fb[3].1, FreeBusy::Busy(p) if p.len() == 1));
    assert!(w
        .sched
        .free_busy(&["a@example.test".into()], start, start - 1)
        .await
        .is_err());
    assert!(w
        .sched
        .free_busy(&["a@example.test".into()], start, start + 3 * 366 * 86_400)
        .await
        .is_err());
}

async fn an_assigned_task_goes_to_the_task_list(ts: TestStore) {
    let w = world(&ts).await;
    let tasks = {
        w.store.ensure_default_groupware(w.alice).await.unwrap();
        w.store
            .groupware_collection(
                w.alice,
                CollectionKind::Calendar,
                outpost_store::groupware::DEFAULT_TASKS.0,
            )
            .await
            .unwrap()
            .unwrap()
            .id
    };
    let todo = format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\nBEGIN:VTODO\r\nUID:task-1@example.test\r\n\
DTSTAMP:20261201T090000Z\r\nDUE:{}\r\nSUMMARY:Write the report\r\nORGANIZER:mailto:alice@example.test\r\n\
ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:carol@example.test\r\nEND:VTODO\r\nEND:VCALENDAR\r\n",
        at(5, 17)
    );
    let out = put(&w, w.alice, tasks, "task-1.ics", &todo).await;
    assert_eq!(out.sent.len(), 1);
    assert_eq!(out.sent[0].status, Status::Delivered, "{:?}", out.sent);
    let meta = w
        .store
        .calendar_objects_by_uid(w.carol, "task-1@example.test")
        .await
        .unwrap();
    let coll = w
        .store
        .groupware_collection_by_id(meta[0].collection)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(coll.name, outpost_store::groupware::DEFAULT_TASKS.0);
}

/// The Schedule-Tag of a principal's copy of `uid`.
async fn tag(store: &Store, p: i64, uid: &str) -> Option<String> {
    store
        .calendar_objects_by_uid(p, uid)
        .await
        .unwrap()
        .into_iter()
        .next()?
        .schedule
        .tag
}

/// SCHEDULE-STATUS of `who` in `text`.
fn schedule_status(text: &str, who: &str) -> Option<String> {
    let unfolded = text.replace("\r\n ", "");
    unfolded
        .lines()
        .find(|l| l.starts_with("ATTENDEE") && l.to_lowercase().ends_with(&format!("mailto:{who}")))
        .and_then(|l| {
            l.split(':').next().unwrap().split(';').find_map(|p| {
                p.strip_prefix("SCHEDULE-STATUS=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
}

async fn an_attendee_raising_sequence_still_gets_the_organizers_updates(ts: TestStore) {
    let w = world(&ts).await;
    let (cal, text) = invite(&w).await;
    // Bob's client raises SEQUENCE each time it saves his answer
    // (Lightning and Apple do in some versions): 0 -> 2.
    let (coll, name, _, bob) = copy(&w.store, w.bob, UID).await.unwrap();
    let accepted = itip::set_attendee_partstat(
        &itip::parse(bob.as_bytes(), &Limits::default()).unwrap(),
        "robert@example.test",
        "ACCEPTED",
    )
    .replace("SEQUENCE:0", "SEQUENCE:2");
    let out = put(&w, w.bob, coll, &name, &accepted).await;
    assert_eq!(out.sent.len(), 1, "{:?}", out.sent);
    let (_, _, _, alice) = copy(&w.store, w.alice, UID).await.unwrap();
    assert_eq!(
        partstat(&alice, "robert@example.test").as_deref(),
        Some("ACCEPTED")
    );
    // The organizer moves the event (SEQUENCE 1): bob's copy moves.
    let moved = text
        .replace(&at(10, 10), &at(11, 14))
        .replace(&at(10, 11), &at(11, 15))
        .replace("SEQUENCE:0", "SEQUENCE:1");
    let out = put(&w, w.alice, cal, "planning.ics", &moved).await;
    let to_bob = out
        .sent
        .iter()
        .find(|s| s.recipient == "robert@example.test")
        .unwrap();
    assert_eq!(to_bob.status, Status::Delivered, "{to_bob:?}");
    let (_, _, _, bob) = copy(&w.store, w.bob, UID).await.unwrap();
    assert!(bob.contains(&at(11, 14)), "bob's copy moved: {bob}");
    assert_eq!(
        partstat(&bob, "robert@example.test").as_deref(),
        Some("NEEDS-ACTION"),
        "a reschedule asks again"
    );
    // ... and cancels it (same SEQUENCE, later DTSTAMP): cancelled.
    let cancelled = moved.replace(
        "SUMMARY:Planning\r\n",
        "SUMMARY:Planning\r\nSTATUS:CANCELLED\r\n",
    );
    put(&w, w.alice, cal, "planning.ics", &cancelled).await;
    let (_, _, _, bob) = copy(&w.store, w.bob, UID).await.unwrap();
    assert!(
        itip::parse(bob.as_bytes(), &Limits::default())
            .unwrap()
            .cancelled,
        "{bob}"
    );
    // A message that really is older (SEQUENCE 0 after 1) is still ignored.
    let out = put(&w, w.alice, cal, "planning.ics", &text).await;
    let to_bob = out
        .sent
        .iter()
        .find(|s| s.recipient == "robert@example.test")
        .unwrap();
    assert!(matches!(to_bob.status, Status::Ignored(_)), "{to_bob:?}");
}

async fn schedule_status_is_written_into_the_organizers_copy(ts: TestStore) {
    let w = world(&ts).await;
    let cal = calendar(&w.store, w.alice).await;
    // carol's client schedules for her (SCHEDULE-AGENT=CLIENT): the server
    // sends her nothing; nobody@ is no user of the hosted domain.
    let text = event(
        "status-1@example.test",
        "alice@example.test",
        &[
            "robert@example.test",
            "nobody@example.test",
            "ext@outside.test",
        ],
        &at(10, 10),
        &at(10, 11),
        "ATTENDEE;SCHEDULE-AGENT=CLIENT;PARTSTAT=NEEDS-ACTION:mailto:carol@example.test\r\n",
    );
    let out = put(&w, w.alice, cal, "status.ics", &text).await;
    assert!(
        out.sent.iter().all(|s| s.recipient != "carol@example.test"),
        "{:?}",
        out.sent
    );
    assert!(copy(&w.store, w.carol, "status-1@example.test")
        .await
        .is_none());
    let (_, _, _, mine) = copy(&w.store, w.alice, "status-1@example.test")
        .await
        .unwrap();
    assert_eq!(
        schedule_status(&mine, "robert@example.test").as_deref(),
        Some("1.2"),
        "{mine}"
    );
    assert_eq!(
        schedule_status(&mine, "ext@outside.test").as_deref(),
        Some("1.1")
    );
    assert_eq!(
        schedule_status(&mine, "nobody@example.test").as_deref(),
        Some("3.7")
    );
    assert_eq!(schedule_status(&mine, "carol@example.test"), None);
    assert_eq!(schedule_status(&mine, "alice@example.test"), None);
    // Writing the status back is no change an attendee sees: nothing sent.
    let again = put(&w, w.alice, cal, "status.ics", &mine).await;
    assert!(again.sent.is_empty(), "{:?}", again.sent);
}

async fn the_schedule_tag_changes_only_with_what_counts(ts: TestStore) {
    let w = world(&ts).await;
    let (cal, text) = invite(&w).await;
    let alice0 = tag(&w.store, w.alice, UID).await.expect("organizer's tag");
    let bob0 = tag(&w.store, w.bob, UID).await.expect("attendee's tag");
    // Bob answers (his client also raises SEQUENCE): neither tag changes,
    // though the organizer's copy does (the merged answer).
    let (coll, name, _, bob) = copy(&w.store, w.bob, UID).await.unwrap();
    let accepted = itip::set_attendee_partstat(
        &itip::parse(bob.as_bytes(), &Limits::default()).unwrap(),
        "robert@example.test",
        "ACCEPTED",
    )
    .replace("SEQUENCE:0", "SEQUENCE:1");
    put(&w, w.bob, coll, &name, &accepted).await;
    assert_eq!(tag(&w.store, w.bob, UID).await.unwrap(), bob0);
    let (_, _, _, alice) = copy(&w.store, w.alice, UID).await.unwrap();
    assert_eq!(
        partstat(&alice, "robert@example.test").as_deref(),
        Some("ACCEPTED")
    );
    assert_eq!(tag(&w.store, w.alice, UID).await.unwrap(), alice0);
    // The organizer changes the location: both tags change.
    let located = text.replace(
        "SUMMARY:Planning\r\n",
        "SUMMARY:Planning\r\nLOCATION:Room 4\r\n",
    );
    put(&w, w.alice, cal, "planning.ics", &located).await;
    let alice1 = tag(&w.store, w.alice, UID).await.unwrap();
    let bob1 = tag(&w.store, w.bob, UID).await.unwrap();
    assert_ne!(alice1, alice0);
    assert_ne!(bob1, bob0);
    // An event without attendees is no scheduling object: no tag.
    let plain = event(
        "plain-1@example.test",
        "alice@example.test",
        &[],
        &at(3, 9),
        &at(3, 10),
        "",
    )
    .replace("ORGANIZER;CN=Org:mailto:alice@example.test\r\n", "")
    .replace(
        "ATTENDEE;PARTSTAT=ACCEPTED;ROLE=CHAIR:mailto:alice@example.test\r\n",
        "",
    );
    put(&w, w.alice, cal, "plain.ics", &plain).await;
    assert_eq!(tag(&w.store, w.alice, "plain-1@example.test").await, None);
}

async fn an_outside_attendee_s_refresh(w: &World, from: &str, attendee: &str) {
    let refresh = format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Outside//EN\r\nMETHOD:REFRESH\r\nBEGIN:VEVENT\r\n\
UID:{UID}\r\nDTSTAMP:20261201T100000Z\r\nORGANIZER:mailto:alice@example.test\r\n\
ATTENDEE:mailto:{attendee}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    );
    deliver(
        w,
        from,
        "alice@example.test",
        &imip_mail(from, "alice@example.test", "REFRESH", &refresh),
    )
    .await;
}

async fn an_outside_attendees_refresh_is_answered_with_the_current_request(ts: TestStore) {
    let w = world(&ts).await;
    invite(&w).await;
    queued(&w.store).await;
    // ext@ lost the invitation and asks again.
    an_outside_attendee_s_refresh(&w, "ext@outside.test", "ext@outside.test").await;
    let q = queued(&w.store).await;
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0].0, vec!["ext@outside.test".to_string()]);
    assert!(
        q[0].1.contains("method=REQUEST") || q[0].1.contains("method=\"REQUEST\""),
        "{}",
        q[0].1
    );
    assert!(q[0].1.contains(UID));
    // Not an attendee, or not from the attendee it names: nothing is sent.
    an_outside_attendee_s_refresh(&w, "other@outside.test", "other@outside.test").await;
    an_outside_attendee_s_refresh(&w, "mallory@evil.test", "ext@outside.test").await;
    let q = queued(&w.store).await;
    assert!(q.is_empty(), "{q:?}");
}
