use super::*;

/// An invitation as Thunderbird 115 writes it (with its VTIMEZONE and an
/// alarm), organizer alice, attendees bob and an outside address.
const TB_INVITE: &str = "BEGIN:VCALENDAR\r\n\
PRODID:-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN\r\n\
VERSION:2.0\r\n\
BEGIN:VTIMEZONE\r\n\
TZID:Europe/Berlin\r\n\
X-LIC-LOCATION:Europe/Berlin\r\n\
BEGIN:DAYLIGHT\r\n\
TZOFFSETFROM:+0100\r\n\
TZOFFSETTO:+0200\r\n\
TZNAME:CEST\r\n\
DTSTART:19700329T020000\r\n\
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\r\n\
END:DAYLIGHT\r\n\
BEGIN:STANDARD\r\n\
TZOFFSETFROM:+0200\r\n\
TZOFFSETTO:+0100\r\n\
TZNAME:CET\r\n\
DTSTART:19701025T030000\r\n\
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r\n\
END:STANDARD\r\n\
END:VTIMEZONE\r\n\
BEGIN:VEVENT\r\n\
CREATED:20261201T090000Z\r\n\
LAST-MODIFIED:20261201T090500Z\r\n\
DTSTAMP:20261201T090500Z\r\n\
UID:7c1d4a52-6a3e-4b1e-9d55-0d3f3c2b1a10\r\n\
SUMMARY:Budget review\r\n\
ORGANIZER;CN=Alice:mailto:alice@example.test\r\n\
ATTENDEE;RSVP=TRUE;CN=Alice;PARTSTAT=ACCEPTED;ROLE=CHAIR:mailto:alice@example.test\r\n\
ATTENDEE;RSVP=TRUE;CN=Bob;PARTSTAT=NEEDS-ACTION;ROLE=REQ-PARTICIPANT:mailto:bob@example.test\r\n\
ATTENDEE;RSVP=TRUE;PARTSTAT=NEEDS-ACTION;ROLE=REQ-PARTICIPANT:mailto:ext@outside.test\r\n\
DTSTART;TZID=Europe/Berlin:20261215T100000\r\n\
DTEND;TZID=Europe/Berlin:20261215T110000\r\n\
TRANSP:OPAQUE\r\n\
SEQUENCE:0\r\n\
BEGIN:VALARM\r\n\
ACTION:DISPLAY\r\n\
TRIGGER;VALUE=DURATION:-PT15M\r\n\
DESCRIPTION:Budget review\r\n\
END:VALARM\r\n\
END:VEVENT\r\n\
END:VCALENDAR\r\n";

fn obj(s: &str) -> SchedulingObject {
    parse(s.as_bytes(), &Limits::default()).unwrap()
}

fn addrs(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn again(m: &ItipMessage) -> SchedulingObject {
    obj(&m.ical)
}

#[test]
fn a_new_invitation_is_a_request_to_every_attendee_but_the_organizer() {
    let o = obj(TB_INVITE);
    assert_eq!(
        o.role(&addrs(&["alice@example.test"])),
        Role::Organizer("alice@example.test".into())
    );
    assert_eq!(
        o.role(&addrs(&["bob@example.test"])),
        Role::Attendee("bob@example.test".into())
    );
    assert_eq!(o.role(&addrs(&["carol@example.test"])), Role::None);
    let msgs = organizer_messages(None, Some(&o), "alice@example.test");
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    assert_eq!(m.method, Method::Request);
    assert_eq!(
        m.recipients,
        addrs(&["bob@example.test", "ext@outside.test"])
    );
    assert!(m.ical.contains("METHOD:REQUEST"));
    // The organizer's alarm stays home; the timezone travels.
    assert!(!m.ical.contains("VALARM"));
    assert!(m.ical.contains("BEGIN:VTIMEZONE"));
    let back = again(m);
    assert_eq!(back.method.as_deref(), Some("REQUEST"));
    assert_eq!(back.uid, o.uid);
    assert_eq!(
        back.partstat("bob@example.test").as_deref(),
        Some("NEEDS-ACTION")
    );
    // A stored copy of a request is a valid CalDAV object again.
    let copy = apply_request(None, &back, &addrs(&["bob@example.test"]))
        .unwrap()
        .unwrap();
    assert!(!copy.contains("METHOD"));
    crate::ingest_icalendar(
        copy.as_bytes(),
        &crate::IngestOptions::new(crate::utc(2026, 12, 1, 0, 0, 0)),
    )
    .unwrap();
}

#[test]
fn partstat_and_dtstamp_changes_send_nothing_a_time_change_sends_a_request() {
    let o = obj(TB_INVITE);
    let stamped = TB_INVITE
        .replace("DTSTAMP:20261201T090500Z", "DTSTAMP:20261202T090500Z")
        .replace(
            "PARTSTAT=NEEDS-ACTION;ROLE=REQ-PARTICIPANT:mailto:bob",
            "PARTSTAT=ACCEPTED;ROLE=REQ-PARTICIPANT:mailto:bob",
        );
    assert!(organizer_messages(Some(&o), Some(&obj(&stamped)), "alice@example.test").is_empty());
    let moved = TB_INVITE
        .replace("20261215T100000", "20261215T140000")
        .replace("20261215T110000", "20261215T150000")
        .replace("SEQUENCE:0", "SEQUENCE:1");
    let msgs = organizer_messages(Some(&o), Some(&obj(&moved)), "alice@example.test");
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].method, Method::Request);
    assert_eq!(msgs[0].sequence, 1);
}

#[test]
fn a_removed_attendee_gets_a_cancel_the_others_a_request() {
    let o = obj(TB_INVITE);
    let without = TB_INVITE.replace(
        "ATTENDEE;RSVP=TRUE;PARTSTAT=NEEDS-ACTION;ROLE=REQ-PARTICIPANT:mailto:ext@outside.test\r\n",
        "",
    );
    let msgs = organizer_messages(Some(&o), Some(&obj(&without)), "alice@example.test");
    assert_eq!(msgs.len(), 2, "{msgs:#?}");
    let cancel = msgs.iter().find(|m| m.method == Method::Cancel).unwrap();
    assert_eq!(cancel.recipients, addrs(&["ext@outside.test"]));
    let c = again(cancel);
    assert!(c.cancelled);
    assert_eq!(c.attendees().len(), 1);
    let req = msgs.iter().find(|m| m.method == Method::Request).unwrap();
    assert_eq!(req.recipients, addrs(&["bob@example.test"]));
}

#[test]
fn cancelling_or_deleting_cancels_for_everyone() {
    let o = obj(TB_INVITE);
    let cancelled = TB_INVITE.replace("TRANSP:OPAQUE\r\n", "TRANSP:OPAQUE\r\nSTATUS:CANCELLED\r\n");
    let msgs = organizer_messages(Some(&o), Some(&obj(&cancelled)), "alice@example.test");
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].method, Method::Cancel);
    assert_eq!(
        msgs[0].recipients,
        addrs(&["bob@example.test", "ext@outside.test"])
    );
    // Deleting a cancelled event says nothing more.
    assert!(organizer_messages(Some(&obj(&cancelled)), None, "alice@example.test").is_empty());
    let msgs = organizer_messages(Some(&o), None, "alice@example.test");
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].method, Method::Cancel);
    // The attendee's copy, cancelled.
    let bob = obj(&apply_request(
        None,
        &obj(&organizer_messages(None, Some(&o), "alice@example.test")[0].ical),
        &addrs(&["bob@example.test"]),
    )
    .unwrap()
    .unwrap());
    let after = apply_cancel(&bob, &again(&msgs[0])).unwrap().unwrap();
    assert!(obj(&after).cancelled);
    assert!(after.contains("STATUS:CANCELLED"));
}

#[test]
fn client_scheduled_attendees_get_nothing() {
    let s = TB_INVITE.replace(
        "ATTENDEE;RSVP=TRUE;PARTSTAT=NEEDS-ACTION;ROLE=REQ-PARTICIPANT:mailto:ext",
        "ATTENDEE;SCHEDULE-AGENT=CLIENT;PARTSTAT=NEEDS-ACTION:mailto:ext",
    );
    let msgs = organizer_messages(None, Some(&obj(&s)), "alice@example.test");
    assert_eq!(msgs[0].recipients, addrs(&["bob@example.test"]));
    assert!(!msgs[0].ical.contains("SCHEDULE-AGENT"));
}

#[test]
fn an_attendee_accepting_replies_and_the_reply_updates_the_organizer() {
    let o = obj(TB_INVITE);
    let req = again(&organizer_messages(None, Some(&o), "alice@example.test")[0]);
    let bob_old = obj(&apply_request(None, &req, &addrs(&["bob@example.test"]))
        .unwrap()
        .unwrap());
    // Bob's client sets his PARTSTAT (and a DTSTAMP), nothing else.
    let bob_new_text = set_attendee_partstat(&bob_old, "bob@example.test", "ACCEPTED");
    let bob_new = obj(&bob_new_text);
    assert_eq!(
        bob_new.partstat("bob@example.test").as_deref(),
        Some("ACCEPTED"),
        "{bob_new_text}"
    );
    // Unchanged: no reply.
    assert!(attendee_reply(Some(&bob_old), Some(&bob_old), "bob@example.test").is_none());
    let reply = attendee_reply(Some(&bob_old), Some(&bob_new), "bob@example.test").unwrap();
    assert_eq!(reply.method, Method::Reply);
    assert_eq!(reply.recipients, addrs(&["alice@example.test"]));
    assert_eq!(reply.partstat.as_deref(), Some("ACCEPTED"));
    let r = again(&reply);
    assert_eq!(
        r.attendees().len(),
        1,
        "only the replying attendee: {}",
        reply.ical
    );
    let updated = apply_reply(&o, &r).unwrap().unwrap();
    let u = obj(&updated);
    assert_eq!(u.partstat("bob@example.test").as_deref(), Some("ACCEPTED"));
    assert_eq!(
        u.partstat("ext@outside.test").as_deref(),
        Some("NEEDS-ACTION")
    );
    // The organizer's own alarm is still in the organizer's copy.
    assert!(updated.contains("VALARM"));
    // The same reply again changes nothing.
    assert!(apply_reply(&u, &r).unwrap().is_none());
}

#[test]
fn deleting_an_invitation_declines_it() {
    let req = again(&organizer_messages(None, Some(&obj(TB_INVITE)), "alice@example.test")[0]);
    let bob = obj(&apply_request(None, &req, &addrs(&["bob@example.test"]))
        .unwrap()
        .unwrap());
    let reply = attendee_reply(Some(&bob), None, "bob@example.test").unwrap();
    assert_eq!(reply.partstat.as_deref(), Some("DECLINED"));
}

#[test]
fn a_request_keeps_an_answer_to_the_same_sequence_and_resets_on_a_new_one() {
    let o = obj(TB_INVITE);
    let req0 = again(&organizer_messages(None, Some(&o), "alice@example.test")[0]);
    let me = addrs(&["bob@example.test", "robert@example.test"]);
    let copy = apply_request(None, &req0, &me).unwrap().unwrap();
    let accepted = obj(&set_attendee_partstat(
        &obj(&copy),
        "bob@example.test",
        "ACCEPTED",
    ));
    assert_eq!(
        accepted.partstat("bob@example.test").as_deref(),
        Some("ACCEPTED")
    );
    // The organizer resends the same version (a description fix without
    // SEQUENCE): the answer stays.
    let same = apply_request(Some(&accepted), &req0, &me).unwrap().unwrap();
    assert_eq!(
        obj(&same).partstat("bob@example.test").as_deref(),
        Some("ACCEPTED")
    );
    // A new SEQUENCE (the time moved): NEEDS-ACTION again.
    let moved = TB_INVITE
        .replace("20261215T100000", "20261216T100000")
        .replace("SEQUENCE:0", "SEQUENCE:2");
    let req2 = again(&organizer_messages(Some(&o), Some(&obj(&moved)), "alice@example.test")[0]);
    let reset = apply_request(Some(&accepted), &req2, &me).unwrap().unwrap();
    assert_eq!(
        obj(&reset).partstat("bob@example.test").as_deref(),
        Some("NEEDS-ACTION")
    );
    assert_eq!(obj(&reset).sequence, 2);
    // An outdated request changes nothing.
    assert!(apply_request(Some(&obj(&reset)), &req0, &me)
        .unwrap()
        .is_none());
}

/// A weekly series with one moved instance, as Apple Calendar writes it.
const SERIES: &str = "BEGIN:VCALENDAR\r\n\
VERSION:2.0\r\n\
PRODID:-//Apple Inc.//macOS 14.0//EN\r\n\
BEGIN:VEVENT\r\n\
UID:series-1@example.test\r\n\
DTSTAMP:20261201T080000Z\r\n\
DTSTART:20261201T090000Z\r\n\
DTEND:20261201T093000Z\r\n\
RRULE:FREQ=WEEKLY;COUNT=10\r\n\
SUMMARY:Standup\r\n\
SEQUENCE:1\r\n\
ORGANIZER:mailto:alice@example.test\r\n\
ATTENDEE;PARTSTAT=ACCEPTED:mailto:alice@example.test\r\n\
ATTENDEE;PARTSTAT=ACCEPTED:mailto:bob@example.test\r\n\
END:VEVENT\r\n\
BEGIN:VEVENT\r\n\
UID:series-1@example.test\r\n\
DTSTAMP:20261201T080000Z\r\n\
RECURRENCE-ID:20261208T090000Z\r\n\
DTSTART:20261208T100000Z\r\n\
DTEND:20261208T103000Z\r\n\
SUMMARY:Standup (moved)\r\n\
SEQUENCE:1\r\n\
ORGANIZER:mailto:alice@example.test\r\n\
ATTENDEE;PARTSTAT=ACCEPTED:mailto:alice@example.test\r\n\
ATTENDEE;PARTSTAT=ACCEPTED:mailto:bob@example.test\r\n\
END:VEVENT\r\n\
END:VCALENDAR\r\n";

#[test]
fn declining_one_instance_replies_for_that_instance_only() {
    let old = obj(SERIES);
    let new_text = SERIES.replacen(
        "RECURRENCE-ID:20261208T090000Z\r\nDTSTART:20261208T100000Z\r\nDTEND:20261208T103000Z\r\nSUMMARY:Standup (moved)\r\nSEQUENCE:1\r\nORGANIZER:mailto:alice@example.test\r\nATTENDEE;PARTSTAT=ACCEPTED:mailto:alice@example.test\r\nATTENDEE;PARTSTAT=ACCEPTED:mailto:bob",
        "RECURRENCE-ID:20261208T090000Z\r\nDTSTART:20261208T100000Z\r\nDTEND:20261208T103000Z\r\nSUMMARY:Standup (moved)\r\nSEQUENCE:1\r\nORGANIZER:mailto:alice@example.test\r\nATTENDEE;PARTSTAT=ACCEPTED:mailto:alice@example.test\r\nATTENDEE;PARTSTAT=DECLINED:mailto:bob",
        1,
    );
    let new = obj(&new_text);
    let reply = attendee_reply(Some(&old), Some(&new), "bob@example.test").unwrap();
    assert_eq!(reply.partstat.as_deref(), Some("DECLINED"));
    let r = again(&reply);
    assert_eq!(r.mains().len(), 1);
    assert!(reply.ical.contains("RECURRENCE-ID:20261208T090000Z"));
    // Applied to the organizer: the override changes, the series not.
    let org = obj(&apply_reply(&old, &r).unwrap().unwrap());
    let ps = partstats(&org, "bob@example.test");
    assert_eq!(ps.get(&None).map(String::as_str), Some("ACCEPTED"));
    assert_eq!(ps.values().filter(|p| *p == "DECLINED").count(), 1);
}

#[test]
fn cancelling_one_instance_without_an_override_adds_an_exdate() {
    // The series without its override.
    let cut = SERIES.match_indices("BEGIN:VEVENT").nth(1).unwrap().0;
    let stored = obj(&format!("{}END:VCALENDAR\r\n", &SERIES[..cut]));
    assert_eq!(stored.mains().len(), 1);
    let cancel = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nMETHOD:CANCEL\r\nBEGIN:VEVENT\r\n\
UID:series-1@example.test\r\nDTSTAMP:20261202T080000Z\r\nRECURRENCE-ID:20261215T090000Z\r\nSEQUENCE:2\r\n\
ORGANIZER:mailto:alice@example.test\r\nATTENDEE:mailto:bob@example.test\r\nSTATUS:CANCELLED\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let out = apply_cancel(&stored, &obj(cancel)).unwrap().unwrap();
    assert!(out.contains("EXDATE:20261215T090000Z"), "{out}");
    let idx = crate::ingest_icalendar(
        out.as_bytes(),
        &crate::IngestOptions::new(crate::utc(2026, 12, 1, 0, 0, 0)),
    )
    .unwrap();
    assert_eq!(idx.index.instances.len(), 9);
    assert!(!obj(&out).cancelled);
}

#[test]
fn outdated_and_mismatched_messages_are_refused_or_ignored() {
    let o = obj(&TB_INVITE.replace("SEQUENCE:0", "SEQUENCE:3"));
    let reply = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\n\
UID:7c1d4a52-6a3e-4b1e-9d55-0d3f3c2b1a10\r\nDTSTAMP:20261202T080000Z\r\nSEQUENCE:1\r\n\
ORGANIZER:mailto:alice@example.test\r\nATTENDEE;PARTSTAT=DECLINED:mailto:bob@example.test\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    assert!(apply_reply(&o, &obj(reply)).unwrap().is_none());
    let other = reply.replace("UID:7c1d", "UID:ffff");
    assert!(apply_reply(&o, &obj(&other)).is_err());
    assert!(
        apply_cancel(&o, &obj(reply)).is_err(),
        "a REPLY is not a CANCEL"
    );
    // Bad input is an error, never a panic.
    assert!(parse(b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", &Limits::default()).is_err());
    assert!(parse(b"\xff\xfe", &Limits::default()).is_err());
    assert!(parse(
        b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        &Limits::default()
    )
    .is_err());
}

#[test]
fn free_busy_reply_lists_the_periods() {
    let s = free_busy_reply(
        Some("alice@example.test"),
        "bob@example.test",
        Some("fb-1"),
        crate::utc(2026, 12, 15, 0, 0, 0),
        crate::utc(2026, 12, 16, 0, 0, 0),
        &[
            Busy {
                start: crate::utc(2026, 12, 15, 9, 0, 0),
                end: crate::utc(2026, 12, 15, 10, 0, 0),
                tentative: false,
            },
            Busy {
                start: crate::utc(2026, 12, 15, 14, 0, 0),
                end: crate::utc(2026, 12, 15, 15, 0, 0),
                tentative: true,
            },
        ],
    );
    assert!(s.contains("METHOD:REPLY"), "{s}");
    assert!(s.contains("BEGIN:VFREEBUSY"));
    assert!(
        s.contains("FREEBUSY;FBTYPE=BUSY:20261215T090000Z/20261215T100000Z"),
        "{s}"
    );
    assert!(s.contains("FBTYPE=BUSY-TENTATIVE"));
    assert!(s.contains("DTSTART:20261215T000000Z"));
}

#[test]
fn a_request_keeps_the_attendees_own_alarm() {
    let o = obj(TB_INVITE);
    let req = again(&organizer_messages(None, Some(&o), "alice@example.test")[0]);
    assert!(!req.to_ical_string().contains("VALARM"));
    let me = addrs(&["bob@example.test"]);
    let copy = apply_request(None, &req, &me).unwrap().unwrap();
    // Bob adds an alarm of his own.
    let with_alarm = copy.replacen(
        "END:VEVENT",
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT5M\r\nDESCRIPTION:Bob's\r\nEND:VALARM\r\nEND:VEVENT",
        1,
    );
    let stored = obj(&with_alarm);
    let moved = TB_INVITE
        .replace("20261215T100000", "20261215T120000")
        .replace("SEQUENCE:0", "SEQUENCE:1");
    let req1 = again(&organizer_messages(Some(&o), Some(&obj(&moved)), "alice@example.test")[0]);
    let updated = apply_request(Some(&stored), &req1, &me).unwrap().unwrap();
    assert!(updated.contains("DESCRIPTION:Bob's"), "{updated}");
    assert!(updated.contains("20261215T120000"));
    crate::ingest_icalendar(
        updated.as_bytes(),
        &crate::IngestOptions::new(crate::utc(2026, 12, 1, 0, 0, 0)),
    )
    .unwrap();
}

#[test]
fn a_reply_for_an_instance_without_an_override_adds_one() {
    let cut = SERIES.match_indices("BEGIN:VEVENT").nth(1).unwrap().0;
    let org = obj(&format!("{}END:VCALENDAR\r\n", &SERIES[..cut]));
    let reply = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\n\
UID:series-1@example.test\r\nDTSTAMP:20261202T080000Z\r\nRECURRENCE-ID:20261215T090000Z\r\nSEQUENCE:1\r\n\
ORGANIZER:mailto:alice@example.test\r\nATTENDEE;PARTSTAT=DECLINED:mailto:bob@example.test\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let out = apply_reply(&org, &obj(reply)).unwrap().unwrap();
    let o = obj(&out);
    let ps = partstats(&o, "bob@example.test");
    assert_eq!(ps.get(&None).map(String::as_str), Some("ACCEPTED"), "{out}");
    assert_eq!(ps.values().filter(|p| *p == "DECLINED").count(), 1, "{out}");
    // Still the same ten instances, the override 30 minutes long.
    let idx = crate::ingest_icalendar(
        out.as_bytes(),
        &crate::IngestOptions::new(crate::utc(2026, 12, 1, 0, 0, 0)),
    )
    .unwrap();
    assert_eq!(idx.index.instances.len(), 10);
    let i = idx
        .index
        .instances
        .iter()
        .find(|i| i.start == crate::utc(2026, 12, 15, 9, 0, 0))
        .unwrap();
    assert_eq!(i.end - i.start, 1800);
}

#[test]
fn an_attendee_of_one_instance_gets_only_that_instance() {
    // Carol is invited to the moved instance only.
    let text = SERIES.replacen(
        "SUMMARY:Standup (moved)\r\n",
        "SUMMARY:Standup (moved)\r\nATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:carol@example.test\r\n",
        1,
    );
    let msgs = organizer_messages(None, Some(&obj(&text)), "alice@example.test");
    assert_eq!(msgs.len(), 2, "{msgs:#?}");
    let bob = msgs
        .iter()
        .find(|m| m.recipients == addrs(&["bob@example.test"]))
        .unwrap();
    assert_eq!(again(bob).mains().len(), 2);
    let carol = msgs
        .iter()
        .find(|m| m.recipients == addrs(&["carol@example.test"]))
        .unwrap();
    let c = again(carol);
    assert_eq!(c.mains().len(), 1);
    assert!(carol.ical.contains("RECURRENCE-ID:20261208T090000Z"));
    assert!(!carol.ical.contains("RRULE"));
    // Her copy is a valid object: one instance.
    let copy = apply_request(None, &c, &addrs(&["carol@example.test"]))
        .unwrap()
        .unwrap();
    let idx = crate::ingest_icalendar(
        copy.as_bytes(),
        &crate::IngestOptions::new(crate::utc(2026, 12, 1, 0, 0, 0)),
    )
    .unwrap();
    assert_eq!(idx.index.instances.len(), 1);
}

#[test]
fn free_busy_request_is_read_and_checked() {
    let req = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nMETHOD:REQUEST\r\n\
BEGIN:VFREEBUSY\r\nUID:fb-1\r\nDTSTAMP:20260101T000000Z\r\n\
DTSTART:20300101T000000Z\r\nDTEND:20300102T000000Z\r\n\
ORGANIZER:mailto:Alice@Example.com\r\nATTENDEE:mailto:bob@example.com\r\n\
ATTENDEE:MAILTO:Bob@example.com\r\nATTENDEE:mailto:carol@example.org\r\n\
END:VFREEBUSY\r\nEND:VCALENDAR\r\n";
    let r = parse_free_busy_request(req.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(r.organizer.as_deref(), Some("alice@example.com"));
    assert_eq!(r.attendees, vec!["bob@example.com", "carol@example.org"]);
    assert_eq!(r.uid.as_deref(), Some("fb-1"));
    assert_eq!(r.start, crate::utc(2030, 1, 1, 0, 0, 0));
    assert_eq!(r.end, crate::utc(2030, 1, 2, 0, 0, 0));

    let few = Limits {
        max_attendees: 1,
        ..Limits::default()
    };
    assert!(matches!(
        parse_free_busy_request(req.as_bytes(), &few),
        Err(PimError::TooManyAttendees(1))
    ));
    for bad in [
        req.replace("METHOD:REQUEST", "METHOD:PUBLISH"),
        req.replace("METHOD:REQUEST\r\n", ""),
        req.replace("DTEND:20300102", "DTEND:20290102"),
        req.replace("DTEND:20300102T000000Z\r\n", ""),
        req.replace("ATTENDEE", "X-ATTENDEE"),
        req.replace("VFREEBUSY", "VEVENT"),
        "BEGIN:VCALENDAR\r\nnope".to_string(),
    ] {
        assert!(
            parse_free_busy_request(bad.as_bytes(), &Limits::default()).is_err(),
            "{bad}"
        );
    }
    // The reply carries the attendee and the busy time.
    let reply = free_busy_reply(
        r.organizer.as_deref(),
        "bob@example.com",
        r.uid.as_deref(),
        r.start,
        r.end,
        &[Busy {
            start: r.start + 3600,
            end: r.start + 7200,
            tentative: false,
        }],
    );
    assert!(reply.contains("METHOD:REPLY"), "{reply}");
    assert!(
        reply.contains("20300101T010000Z/20300101T020000Z"),
        "{reply}"
    );
}

#[test]
fn the_organizers_last_message_orders_its_next_one_not_the_attendees_sequence() {
    let o = obj(TB_INVITE);
    let me = addrs(&["bob@example.test"]);
    let req0 = again(&organizer_messages(None, Some(&o), "alice@example.test")[0]);
    let copy = apply_request(None, &req0, &me).unwrap().unwrap();
    // Bob's client raises SEQUENCE to 2 as it saves his answer.
    let mut answered = obj(
        &set_attendee_partstat(&obj(&copy), "bob@example.test", "ACCEPTED")
            .replace("SEQUENCE:0", "SEQUENCE:2"),
    );
    assert_eq!(answered.sequence, 2);
    // The organizer moves the event: SEQUENCE 1.
    let moved = TB_INVITE
        .replace("20261215T100000", "20261216T100000")
        .replace("SEQUENCE:0", "SEQUENCE:1");
    let req1 = again(&organizer_messages(Some(&o), Some(&obj(&moved)), "alice@example.test")[0]);
    // Judged by the copy's own SEQUENCE, the update looks older...
    assert!(apply_request(Some(&answered), &req1, &me)
        .unwrap()
        .is_none());
    // ... judged by the organizer's last message, it is newer.
    answered.received = Some(req0.as_received());
    let updated = obj(&apply_request(Some(&answered), &req1, &me).unwrap().unwrap());
    assert!(updated.to_ical_string().contains("20261216T100000"));
    assert_eq!(updated.sequence, 1);
    assert_eq!(
        updated.partstat("bob@example.test").as_deref(),
        Some("NEEDS-ACTION")
    );
    // The same version again keeps an answer given to it, even with the
    // attendee's SEQUENCE raised once more.
    let mut again_answered = obj(
        &set_attendee_partstat(&updated, "bob@example.test", "TENTATIVE")
            .replace("SEQUENCE:1", "SEQUENCE:3"),
    );
    again_answered.received = Some(req1.as_received());
    let resent = obj(&apply_request(Some(&again_answered), &req1, &me)
        .unwrap()
        .unwrap());
    assert_eq!(
        resent.partstat("bob@example.test").as_deref(),
        Some("TENTATIVE")
    );
    // The cancel that follows (SEQUENCE 1) cancels the copy.
    let cancelled_text =
        moved.replace("TRANSP:OPAQUE\r\n", "TRANSP:OPAQUE\r\nSTATUS:CANCELLED\r\n");
    let cancel = again(
        &organizer_messages(
            Some(&obj(&moved)),
            Some(&obj(&cancelled_text)),
            "alice@example.test",
        )[0],
    );
    assert_eq!(cancel.method.as_deref(), Some("CANCEL"));
    let out = obj(&apply_cancel(&again_answered, &cancel).unwrap().unwrap());
    assert!(out.cancelled);
    // Really older: SEQUENCE 0 after 1, or the same SEQUENCE stamped
    // earlier, changes nothing.
    assert!(apply_request(Some(&again_answered), &req0, &me)
        .unwrap()
        .is_none());
    let mut later = again_answered.clone();
    later.received = Some(Received {
        sequence: 1,
        stamp: req1.stamp.map(|s| s + 60),
    });
    assert!(apply_request(Some(&later), &req1, &me).unwrap().is_none());
}

#[test]
fn the_schedule_tag_ignores_answers_and_attendee_sequence() {
    let o = obj(TB_INVITE);
    let answered = obj(&set_attendee_partstat(&o, "bob@example.test", "ACCEPTED")
        .replace("SEQUENCE:0", "SEQUENCE:1"));
    assert!(!schedule_tag_changes(&o, &answered, false));
    assert!(schedule_tag_changes(&o, &answered, true));
    let located = obj(&TB_INVITE.replace("TRANSP:OPAQUE\r\n", "TRANSP:OPAQUE\r\nLOCATION:R4\r\n"));
    assert!(schedule_tag_changes(&o, &located, false));
    assert!(schedule_tag_changes(&o, &located, true));
    let stamped = obj(&TB_INVITE.replace("DTSTAMP:20261201T090500Z", "DTSTAMP:20261202T090500Z"));
    assert!(!schedule_tag_changes(&o, &stamped, true));
}

#[test]
fn schedule_status_goes_on_the_attendees_named() {
    let o = obj(TB_INVITE);
    let st = vec![
        ("bob@example.test".to_string(), "1.2".to_string()),
        ("ext@outside.test".to_string(), "1.1".to_string()),
    ];
    let text = set_schedule_status(&o, &st).unwrap().replace("\r\n ", "");
    let line = |who: &str| {
        text.lines()
            .find(|l| l.starts_with("ATTENDEE") && l.ends_with(who))
            .unwrap()
            .to_string()
    };
    assert!(
        line("mailto:bob@example.test").contains("SCHEDULE-STATUS=1.2"),
        "{text}"
    );
    assert!(line("mailto:ext@outside.test").contains("SCHEDULE-STATUS=1.1"));
    assert!(!line("mailto:alice@example.test").contains("SCHEDULE-STATUS"));
    // The same again changes nothing; a message does not carry it.
    assert!(set_schedule_status(&obj(&text), &st).is_none());
    let req = &organizer_messages(None, Some(&obj(&text)), "alice@example.test")[0];
    assert!(!req.ical.contains("SCHEDULE-STATUS"), "{}", req.ical);
}

#[test]
fn an_organizers_stale_put_keeps_the_answers_merged_since() {
    let o = obj(TB_INVITE);
    // The stored copy has bob's answer (a REPLY merged in); the client
    // writes its older version with a new summary.
    let stored = obj(&set_attendee_partstat(&o, "bob@example.test", "ACCEPTED"));
    let client = obj(&TB_INVITE.replace("SUMMARY:Budget review", "SUMMARY:Budget review 2"));
    let merged = obj(&keep_answers(&stored, &client, "alice@example.test").unwrap());
    assert_eq!(
        merged.partstat("bob@example.test").as_deref(),
        Some("ACCEPTED")
    );
    assert_eq!(merged.summary.as_deref(), Some("Budget review 2"));
    // A reschedule (new SEQUENCE) asks again: the client's PARTSTATs stand.
    let moved = obj(&TB_INVITE.replace("SEQUENCE:0", "SEQUENCE:1"));
    assert!(keep_answers(&stored, &moved, "alice@example.test").is_none());
}

#[test]
fn a_refresh_gets_the_current_version_to_that_attendee_alone() {
    let o = obj(TB_INVITE);
    let m = refresh_answer(&o, "alice@example.test", "EXT@outside.test").unwrap();
    assert_eq!(m.method, Method::Request);
    assert_eq!(m.recipients, addrs(&["ext@outside.test"]));
    assert!(m.ical.contains("SUMMARY:Budget review"));
    assert!(
        !m.ical.contains("VALARM"),
        "the organizer's alarms stay home"
    );
    assert!(refresh_answer(&o, "alice@example.test", "carol@example.test").is_none());
    let cancelled =
        obj(&TB_INVITE.replace("TRANSP:OPAQUE\r\n", "TRANSP:OPAQUE\r\nSTATUS:CANCELLED\r\n"));
    let m = refresh_answer(&cancelled, "alice@example.test", "bob@example.test").unwrap();
    assert_eq!(m.method, Method::Cancel);
}
