use super::*;
use proptest::prelude::*;

fn opts() -> IngestOptions {
    IngestOptions {
        limits: Limits::default(),
        window: Window {
            start: utc(2025, 1, 1, 0, 0, 0),
            end: utc(2028, 1, 1, 0, 0, 0),
        },
        floating_tz: None,
        whole_finite: false,
    }
}

fn crlf(s: &str) -> Vec<u8> {
    s.replace('\n', "\r\n").into_bytes()
}

const THUNDERBIRD: &str = "BEGIN:VCALENDAR
PRODID:-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN
VERSION:2.0
BEGIN:VTIMEZONE
TZID:Europe/Berlin
X-TZINFO:Europe/Berlin[2025b]
BEGIN:DAYLIGHT
TZOFFSETTO:+020000
TZOFFSETFROM:+010000
TZNAME:CEST
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETTO:+010000
TZOFFSETFROM:+020000
TZNAME:CET
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
END:VTIMEZONE
BEGIN:VEVENT
CREATED:20260101T100000Z
LAST-MODIFIED:20260101T100000Z
DTSTAMP:20260101T100000Z
UID:tb-1234@example.org
SUMMARY:Team meeting
ORGANIZER;CN=Alice:mailto:Alice@Example.org
ATTENDEE;PARTSTAT=ACCEPTED;ROLE=CHAIR;CN=Alice:mailto:alice@example.org
ATTENDEE;RSVP=TRUE;PARTSTAT=NEEDS-ACTION;ROLE=REQ-PARTICIPANT:mailto:bob@example.org
RRULE:FREQ=WEEKLY;COUNT=10
EXDATE;TZID=Europe/Berlin:20260115T100000
DTSTART;TZID=Europe/Berlin:20260108T100000
DTEND;TZID=Europe/Berlin:20260108T110000
TRANSP:OPAQUE
SEQUENCE:0
BEGIN:VALARM
ACTION:DISPLAY
TRIGGER;VALUE=DURATION:-PT15M
DESCRIPTION:Reminder
END:VALARM
END:VEVENT
BEGIN:VEVENT
UID:tb-1234@example.org
RECURRENCE-ID;TZID=Europe/Berlin:20260122T100000
DTSTAMP:20260102T100000Z
SUMMARY:Team meeting (moved)
DTSTART;TZID=Europe/Berlin:20260123T150000
DTEND;TZID=Europe/Berlin:20260123T160000
SEQUENCE:3
STATUS:TENTATIVE
END:VEVENT
END:VCALENDAR
";

#[test]
fn thunderbird_recurring_with_exdate_and_override() {
    let o = ingest_icalendar(&crlf(THUNDERBIRD), &opts()).unwrap();
    let ix = &o.index;
    assert_eq!(ix.uid, "tb-1234@example.org");
    assert_eq!(ix.kind, ComponentKind::Event);
    assert_eq!(ix.summary.as_deref(), Some("Team meeting"));
    assert!(ix.recurring);
    assert_eq!(ix.organizer.as_deref(), Some("alice@example.org"));
    assert_eq!(ix.attendees.len(), 2);
    assert_eq!(ix.attendees[1].address, "bob@example.org");
    assert_eq!(ix.attendees[1].partstat, "NEEDS-ACTION");
    assert!(ix.attendees[1].rsvp);
    assert_eq!(ix.tzids, vec!["Europe/Berlin".to_string()]);
    assert!(!ix.floating);
    // 10 weekly, one EXDATE: 9 instances; the override is moved, not doubled.
    assert_eq!(ix.instances.len(), 9, "{:#?}", ix.instances);
    // 10:00 Berlin in January is 09:00 UTC.
    assert_eq!(ix.first_start, Some(utc(2026, 1, 8, 9, 0, 0)));
    assert!(!ix
        .instances
        .iter()
        .any(|i| i.start == utc(2026, 1, 15, 9, 0, 0)));
    assert!(!ix
        .instances
        .iter()
        .any(|i| i.start == utc(2026, 1, 22, 9, 0, 0)));
    let moved = ix
        .instances
        .iter()
        .find(|i| i.start == utc(2026, 1, 23, 14, 0, 0))
        .expect("override at its own DTSTART");
    assert_eq!(moved.recurrence_id, Some(utc(2026, 1, 22, 9, 0, 0)));
    assert_eq!(moved.end, utc(2026, 1, 23, 15, 0, 0));
    assert_eq!(moved.status, InstanceStatus::Tentative);
    // Last: 2026-03-12 10:00 Berlin = 09:00 UTC (DST starts 29 March), ends 10:00.
    assert_eq!(ix.last_end, Some(utc(2026, 3, 12, 10, 0, 0)));
    // Expansion over a narrow window.
    let e = o
        .expand(
            Window {
                start: utc(2026, 1, 20, 0, 0, 0),
                end: utc(2026, 1, 31, 0, 0, 0),
            },
            &Limits::default(),
        )
        .unwrap();
    assert_eq!(e.instances.len(), 2);
    assert!(!e.truncated);
}

const APPLE_ALLDAY: &str = "BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Apple Inc.//macOS 15.0//EN
CALSCALE:GREGORIAN
BEGIN:VEVENT
CREATED:20260101T120000Z
DTEND;VALUE=DATE:20260303
DTSTAMP:20260101T120000Z
DTSTART;VALUE=DATE:20260301
LAST-MODIFIED:20260101T120000Z
SEQUENCE:0
SUMMARY:Conference
TRANSP:TRANSPARENT
UID:5C1E7B2A-3D6F-4E2B-9C3A-APPLE
X-APPLE-TRAVEL-ADVISORY-BEHAVIOR:AUTOMATIC
END:VEVENT
END:VCALENDAR
";

#[test]
fn apple_all_day_is_read_in_the_floating_zone() {
    let o = ingest_icalendar(&crlf(APPLE_ALLDAY), &opts()).unwrap();
    let i = &o.index.instances;
    assert_eq!(i.len(), 1);
    assert!(i[0].all_day);
    assert!(i[0].transparent);
    assert_eq!(i[0].start, utc(2026, 3, 1, 0, 0, 0));
    assert_eq!(i[0].end, utc(2026, 3, 3, 0, 0, 0));
    assert!(o.index.floating);
    assert!(!o.index.recurring);
    assert_eq!(i[0].recurrence_id, None);
    // In the calendar's own zone (Europe/Berlin, UTC+1 in March).
    let mut op = opts();
    op.floating_tz = resolve_tzid("Europe/Berlin");
    let o = ingest_icalendar(&crlf(APPLE_ALLDAY), &op).unwrap();
    assert_eq!(o.index.instances[0].start, utc(2026, 2, 28, 23, 0, 0));
}

const GOOGLE_UNBOUNDED: &str = "BEGIN:VCALENDAR
PRODID:-//Google Inc//Google Calendar 70.9054//EN
VERSION:2.0
CALSCALE:GREGORIAN
BEGIN:VEVENT
DTSTART:20200106T083000Z
DTEND:20200106T084500Z
RRULE:FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR
DTSTAMP:20260101T000000Z
UID:0123456789abcdef@google.com
CREATED:20200101T000000Z
SUMMARY:Standup
STATUS:CONFIRMED
END:VEVENT
END:VCALENDAR
";

#[test]
fn finite_series_listed_whole_when_asked() {
    let far = crlf(
        "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//t//EN\nBEGIN:VEVENT\nUID:far\nDTSTAMP:20240101T000000Z\n\
         DTSTART:20400107T090000Z\nDTEND:20400107T100000Z\nRRULE:FREQ=WEEKLY;COUNT=3\nEND:VEVENT\nEND:VCALENDAR\n",
    );
    // Outside the window (2025..2028): nothing listed by default.
    let o = ingest_icalendar(&far, &opts()).unwrap();
    assert!(o.index.instances.is_empty());
    assert_eq!(o.index.window, opts().window);
    // Asked for: every instance, and the window says the list is whole.
    let mut whole = opts();
    whole.whole_finite = true;
    let o = ingest_icalendar(&far, &whole).unwrap();
    assert_eq!(o.index.window, Window::ALL);
    let starts: Vec<_> = o.index.instances.iter().map(|i| i.start).collect();
    assert_eq!(
        starts,
        vec![
            utc(2040, 1, 7, 9, 0, 0),
            utc(2040, 1, 14, 9, 0, 0),
            utc(2040, 1, 21, 9, 0, 0)
        ]
    );
    // An unbounded series keeps the window.
    let o = ingest_icalendar(&crlf(GOOGLE_UNBOUNDED), &whole).unwrap();
    assert_eq!(o.index.window, opts().window);
    assert!(o.index.instances.len() > 700);
}

#[test]
fn google_unbounded_series_reaches_the_window() {
    let o = ingest_icalendar(&crlf(GOOGLE_UNBOUNDED), &opts()).unwrap();
    let ix = &o.index;
    assert_eq!(ix.first_start, Some(utc(2020, 1, 6, 8, 30, 0)));
    assert_eq!(ix.last_end, None, "unbounded");
    // Window 2025-01-01 .. 2028-01-01: about 261 weekdays a year.
    assert!(ix.instances.len() > 700, "{}", ix.instances.len());
    assert!(ix
        .instances
        .iter()
        .all(|i| i.start >= utc(2024, 12, 31, 0, 0, 0)));
    assert!(ix.instances.last().unwrap().start >= utc(2027, 12, 20, 0, 0, 0));
    assert_eq!(ix.instances[0].status, InstanceStatus::Confirmed);
}

#[test]
fn floating_time_uses_the_floating_zone() {
    let src = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:x\nBEGIN:VEVENT\nUID:f1\nDTSTAMP:20260101T000000Z\nDTSTART:20260601T090000\nDURATION:PT30M\nEND:VEVENT\nEND:VCALENDAR\n";
    let o = ingest_icalendar(&crlf(src), &opts()).unwrap();
    assert!(o.index.floating);
    assert_eq!(o.index.instances[0].start, utc(2026, 6, 1, 9, 0, 0));
    assert_eq!(o.index.instances[0].end, utc(2026, 6, 1, 9, 30, 0));
    let mut op = opts();
    op.floating_tz = resolve_tzid("America/New_York");
    let o = ingest_icalendar(&crlf(src), &op).unwrap();
    assert_eq!(o.index.instances[0].start, utc(2026, 6, 1, 13, 0, 0));
}

#[test]
fn unknown_tzid_is_an_error_not_a_shift() {
    let src = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:x\nBEGIN:VEVENT\nUID:u1\nDTSTAMP:20260101T000000Z\nDTSTART;TZID=Mars/Olympus_Mons:20260601T090000\nDTEND;TZID=Mars/Olympus_Mons:20260601T100000\nEND:VEVENT\nEND:VCALENDAR\n";
    assert_eq!(
        ingest_icalendar(&crlf(src), &opts()).unwrap_err(),
        PimError::UnknownTimezone("Mars/Olympus_Mons".into())
    );
}

#[test]
fn outlook_windows_zone_names_resolve() {
    let src = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:Microsoft Exchange Server 2010\nBEGIN:VTIMEZONE\nTZID:W. Europe Standard Time\nBEGIN:STANDARD\nDTSTART:16010101T030000\nTZOFFSETFROM:+0200\nTZOFFSETTO:+0100\nRRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10\nEND:STANDARD\nBEGIN:DAYLIGHT\nDTSTART:16010101T020000\nTZOFFSETFROM:+0100\nTZOFFSETTO:+0200\nRRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3\nEND:DAYLIGHT\nEND:VTIMEZONE\nBEGIN:VEVENT\nUID:040000008200E00074C5B7101A82E008\nDTSTAMP:20260101T000000Z\nDTSTART;TZID=W. Europe Standard Time:20260701T100000\nDTEND;TZID=W. Europe Standard Time:20260701T110000\nSUMMARY:Outlook\nEND:VEVENT\nEND:VCALENDAR\n";
    let o = ingest_icalendar(&crlf(src), &opts()).unwrap();
    assert_eq!(o.index.instances[0].start, utc(2026, 7, 1, 8, 0, 0));
}

#[test]
fn caldav_object_rules() {
    let two_uids = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:x\nBEGIN:VEVENT\nUID:a\nDTSTAMP:20260101T000000Z\nDTSTART:20260101T000000Z\nEND:VEVENT\nBEGIN:VEVENT\nUID:b\nDTSTAMP:20260101T000000Z\nDTSTART:20260101T000000Z\nEND:VEVENT\nEND:VCALENDAR\n";
    assert!(matches!(
        ingest_icalendar(two_uids.as_bytes(), &opts()),
        Err(PimError::MultipleUids(..))
    ));
    let mixed = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:x\nBEGIN:VEVENT\nUID:a\nDTSTAMP:20260101T000000Z\nDTSTART:20260101T000000Z\nEND:VEVENT\nBEGIN:VTODO\nUID:a\nDTSTAMP:20260101T000000Z\nEND:VTODO\nEND:VCALENDAR\n";
    assert!(matches!(
        ingest_icalendar(mixed.as_bytes(), &opts()),
        Err(PimError::MixedComponents("VEVENT", "VTODO"))
    ));
    let no_uid = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:x\nBEGIN:VEVENT\nDTSTAMP:20260101T000000Z\nDTSTART:20260101T000000Z\nEND:VEVENT\nEND:VCALENDAR\n";
    assert_eq!(
        ingest_icalendar(no_uid.as_bytes(), &opts()).unwrap_err(),
        PimError::MissingUid
    );
    let method = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:x\nMETHOD:REQUEST\nBEGIN:VEVENT\nUID:a\nDTSTAMP:20260101T000000Z\nDTSTART:20260101T000000Z\nEND:VEVENT\nEND:VCALENDAR\n";
    assert_eq!(
        ingest_icalendar(method.as_bytes(), &opts()).unwrap_err(),
        PimError::MethodNotAllowed
    );
    let two_masters = two_uids.replace("UID:b", "UID:a");
    assert_eq!(
        ingest_icalendar(two_masters.as_bytes(), &opts()).unwrap_err(),
        PimError::DuplicateMaster
    );
    let empty = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:x\nEND:VCALENDAR\n";
    assert_eq!(
        ingest_icalendar(empty.as_bytes(), &opts()).unwrap_err(),
        PimError::NoComponent
    );
    let vevent_missing_start = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:x\nBEGIN:VEVENT\nUID:a\nDTSTAMP:20260101T000000Z\nEND:VEVENT\nEND:VCALENDAR\n";
    assert!(matches!(
        ingest_icalendar(vevent_missing_start.as_bytes(), &opts()),
        Err(PimError::InvalidDates(_))
    ));
    assert!(matches!(
        ingest_icalendar(b"hello world", &opts()),
        Err(PimError::Parse(_))
    ));
    assert_eq!(
        ingest_icalendar(b"BEGIN:VCALENDAR\r\n\xff\xfe\r\n", &opts()).unwrap_err(),
        PimError::NotUtf8
    );
    let mut small = opts();
    small.limits.max_bytes = 10;
    assert!(matches!(
        ingest_icalendar(THUNDERBIRD.as_bytes(), &small),
        Err(PimError::TooLarge { .. })
    ));
}

#[test]
fn todo_without_dates_is_timeless() {
    let src = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:x\nBEGIN:VTODO\nUID:t1\nDTSTAMP:20260101T000000Z\nSUMMARY:Buy milk\nEND:VTODO\nEND:VCALENDAR\n";
    let o = ingest_icalendar(&crlf(src), &opts()).unwrap();
    assert_eq!(o.index.kind, ComponentKind::Todo);
    assert_eq!(o.index.first_start, None);
    assert_eq!(o.index.last_end, None);
    assert!(o.index.instances.is_empty());
}

#[test]
fn secondly_rule_is_bounded_by_limits() {
    let src = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:x\nBEGIN:VEVENT\nUID:s1\nDTSTAMP:20260101T000000Z\nDTSTART:19000101T000000Z\nDURATION:PT1S\nRRULE:FREQ=SECONDLY\nEND:VEVENT\nEND:VCALENDAR\n";
    let o = ingest_icalendar(&crlf(src), &opts()).unwrap();
    assert_eq!(o.index.last_end, None);
    assert!(o.index.instances.is_empty());
    assert!(
        o.expand(opts().window, &Limits::default())
            .unwrap()
            .truncated
    );
}

const APPLE_CARD: &str = "BEGIN:VCARD
VERSION:3.0
PRODID:-//Apple Inc.//macOS 15.0//EN
N:Doe;John;Q.;Dr.;Jr.
FN:John Doe
ORG:Example Corp;Sales;
EMAIL;type=INTERNET;type=WORK;type=pref:john@example.org
EMAIL;type=INTERNET;type=HOME:JOHN@example.org
EMAIL;type=INTERNET;type=HOME:jd@home.example
TEL;type=CELL;type=VOICE;type=pref:+49 170 1234567
UID:0A1B2C3D-APPLE-CARD
END:VCARD
";

#[test]
fn apple_vcard3_contact() {
    let c = ingest_vcard(&crlf(APPLE_CARD), &Limits::default()).unwrap();
    assert_eq!(c.uid, "0A1B2C3D-APPLE-CARD");
    assert_eq!(c.version, VcardVersion::V3);
    assert_eq!(c.kind, ContactKind::Individual);
    assert_eq!(c.full_name.as_deref(), Some("John Doe"));
    let n = c.name.clone().unwrap();
    assert_eq!((n.family.as_str(), n.given.as_str()), ("Doe", "John"));
    assert_eq!(c.emails, vec!["john@example.org", "jd@home.example"]);
    assert_eq!(c.organization.as_deref(), Some("Example Corp, Sales"));
    assert_eq!(c.display_name(), "John Doe");
}

#[test]
fn groups_both_ways() {
    let apple = "BEGIN:VCARD\nVERSION:3.0\nN:Friends\nFN:Friends\nX-ADDRESSBOOKSERVER-KIND:group\nX-ADDRESSBOOKSERVER-MEMBER:urn:uuid:aaa\nX-ADDRESSBOOKSERVER-MEMBER:urn:uuid:bbb\nUID:g1\nEND:VCARD\n";
    let c = ingest_vcard(&crlf(apple), &Limits::default()).unwrap();
    assert_eq!(c.kind, ContactKind::Group);
    assert_eq!(c.members, vec!["urn:uuid:aaa", "urn:uuid:bbb"]);
    let v4 = "BEGIN:VCARD\nVERSION:4.0\nKIND:group\nFN:Team\nMEMBER:mailto:a@example.org\nMEMBER:urn:uuid:ccc\nUID:urn:uuid:g2\nEND:VCARD\n";
    let c = ingest_vcard(&crlf(v4), &Limits::default()).unwrap();
    assert_eq!(c.kind, ContactKind::Group);
    assert_eq!(c.version, VcardVersion::V4);
    assert_eq!(c.members, vec!["mailto:a@example.org", "urn:uuid:ccc"]);
}

#[test]
fn vcard_errors() {
    let no_uid = "BEGIN:VCARD\nVERSION:3.0\nFN:X\nEND:VCARD\n";
    assert_eq!(
        ingest_vcard(no_uid.as_bytes(), &Limits::default()).unwrap_err(),
        PimError::MissingUid
    );
    let two = "BEGIN:VCARD\nVERSION:3.0\nFN:X\nUID:1\nEND:VCARD\nBEGIN:VCARD\nVERSION:3.0\nFN:Y\nUID:2\nEND:VCARD\n";
    assert!(matches!(
        ingest_vcard(two.as_bytes(), &Limits::default()),
        Err(PimError::Parse(_))
    ));
    assert!(matches!(
        ingest_vcard(THUNDERBIRD.as_bytes(), &Limits::default()),
        Err(PimError::Parse(_))
    ));
}

#[test]
fn vcard_version_conversion() {
    let v4 = convert_vcard(&crlf(APPLE_CARD), VcardVersion::V4, &Limits::default()).unwrap();
    assert!(v4.contains("VERSION:4.0\r\n"), "{v4}");
    let back = ingest_vcard(v4.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(back.version, VcardVersion::V4);
    assert_eq!(back.uid, "0A1B2C3D-APPLE-CARD");
    assert_eq!(back.emails.len(), 2);
    let v3 = convert_vcard(v4.as_bytes(), VcardVersion::V3, &Limits::default()).unwrap();
    assert!(v3.contains("VERSION:3.0\r\n"), "{v3}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn ingest_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = ingest_icalendar(&bytes, &opts());
        let _ = ingest_vcard(&bytes, &Limits::default());
        let _ = convert_vcard(&bytes, VcardVersion::V4, &Limits::default());
    }

    #[test]
    fn ingest_never_panics_on_mangled_calendars(
        cut in 0usize..2400,
        junk in "[A-Z;:=\\-0-9TZ\\r\\n]{0,40}",
    ) {
        let src = THUNDERBIRD.replace('\n', "\r\n");
        let cut = cut.min(src.len());
        let mut s = src[..cut].to_string();
        s.push_str(&junk);
        s.push_str(&src[cut..]);
        let _ = ingest_icalendar(s.as_bytes(), &opts());
    }
}

/// An Outlook/Exchange custom zone: a TZID no database knows, with the
/// zone's rules in its VTIMEZONE (Central European rules here).
fn custom_zone(tzid: &str, std: (&str, &str), dst: Option<(&str, &str)>, body: &str) -> Vec<u8> {
    let mut s = format!(
        "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:Microsoft Exchange Server 2010\nBEGIN:VTIMEZONE\nTZID:{tzid}\nBEGIN:STANDARD\nDTSTART:16010101T030000\nTZOFFSETFROM:{}\nTZOFFSETTO:{}\n",
        std.0, std.1
    );
    if dst.is_some() {
        s.push_str("RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10\n");
    }
    s.push_str("END:STANDARD\n");
    if let Some((from, to)) = dst {
        s.push_str(&format!("BEGIN:DAYLIGHT\nDTSTART:16010101T020000\nTZOFFSETFROM:{from}\nTZOFFSETTO:{to}\nRRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3\nEND:DAYLIGHT\n"));
    }
    s.push_str("END:VTIMEZONE\n");
    s.push_str(&body.replace("@TZ@", tzid));
    s.push_str("END:VCALENDAR\n");
    crlf(&s)
}

const CUSTOM_EVENTS: &str = "BEGIN:VEVENT\nUID:custom-1\nDTSTAMP:20260101T000000Z\nDTSTART;TZID=\"@TZ@\":20260115T100000\nDTEND;TZID=\"@TZ@\":20260115T110000\nRRULE:FREQ=MONTHLY;COUNT=7\nEXDATE;TZID=\"@TZ@\":20260215T100000\nEND:VEVENT\n";

#[test]
fn custom_vtimezone_is_read_through_its_own_rules() {
    for tzid in ["Customized Time Zone", "(UTC+01:00) Amsterdam, Berlin"] {
        let src = custom_zone(
            tzid,
            ("+0200", "+0100"),
            Some(("+0100", "+0200")),
            CUSTOM_EVENTS,
        );
        let o = ingest_icalendar(&src, &opts()).unwrap_or_else(|e| panic!("{tzid}: {e}"));
        let starts: Vec<_> = o.index.instances.iter().map(|i| i.start).collect();
        assert_eq!(
            starts,
            vec![
                utc(2026, 1, 15, 9, 0, 0),
                // 2026-02-15 is excluded by the EXDATE in the custom zone.
                utc(2026, 3, 15, 9, 0, 0),
                utc(2026, 4, 15, 8, 0, 0),
                utc(2026, 5, 15, 8, 0, 0),
                utc(2026, 6, 15, 8, 0, 0),
                utc(2026, 7, 15, 8, 0, 0),
            ],
            "{tzid}"
        );
        assert_eq!(o.index.tzids, vec![tzid.to_string()]);
    }
}

#[test]
fn custom_vtimezone_without_dst_maps_to_its_offset() {
    let src = custom_zone(
        "Customized Time Zone 1",
        ("+0530", "+0530"),
        None,
        "BEGIN:VEVENT\nUID:c2\nDTSTAMP:20260101T000000Z\nDTSTART;TZID=\"@TZ@\":20260701T100000\nDURATION:PT1H\nEND:VEVENT\n",
    );
    let o = ingest_icalendar(&src, &opts()).unwrap();
    assert_eq!(o.index.instances[0].start, utc(2026, 7, 1, 4, 30, 0));
}

#[test]
fn custom_vtimezone_that_matches_no_zone_is_refused() {
    let src = custom_zone(
        "Lunar Base",
        ("+0317", "+0247"),
        Some(("+0247", "+0317")),
        CUSTOM_EVENTS,
    );
    assert_eq!(
        ingest_icalendar(&src, &opts()).unwrap_err(),
        PimError::UnknownTimezone("Lunar Base".into())
    );
}

#[test]
fn custom_calendar_timezone_sets_the_floating_zone() {
    let tz = String::from_utf8(custom_zone(
        "Customized Time Zone",
        ("+0200", "+0100"),
        Some(("+0100", "+0200")),
        "",
    ))
    .unwrap();
    assert!(check_calendar_timezone(&tz).is_ok());
    let mut op = opts();
    op.floating_tz = timezone_of_vtimezone(&tz);
    assert!(op.floating_tz.is_some());
    let src = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:x\nBEGIN:VEVENT\nUID:f2\nDTSTAMP:20260101T000000Z\nDTSTART:20260601T090000\nDURATION:PT30M\nEND:VEVENT\nEND:VCALENDAR\n";
    let o = ingest_icalendar(&crlf(src), &op).unwrap();
    assert_eq!(o.index.instances[0].start, utc(2026, 6, 1, 7, 0, 0));
    assert!(check_calendar_timezone("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n").is_err());
}

#[test]
fn expanded_and_limited_views() {
    let o = ingest_icalendar(&crlf(THUNDERBIRD), &opts()).unwrap();
    let w = Window {
        start: utc(2026, 1, 8, 0, 0, 0),
        end: utc(2026, 1, 9, 0, 0, 0),
    };
    let x = o.write_expanded(w, &Limits::default()).unwrap();
    assert!(x.contains("DTSTART:20260108T090000Z\r\n"), "{x}");
    assert!(x.contains("RECURRENCE-ID:20260108T090000Z\r\n"), "{x}");
    assert!(!x.contains("RRULE") && !x.contains("VTIMEZONE"), "{x}");
    let l = o.write_limited(w, &Limits::default()).unwrap();
    assert!(l.contains("BEGIN:VTIMEZONE") && l.contains("RRULE"), "{l}");
    let tree = o.tree();
    assert_eq!(tree.name, "VCALENDAR");
    let ev = tree.children.iter().find(|c| c.name == "VEVENT").unwrap();
    assert!(ev
        .props
        .iter()
        .any(|p| p.name == "SUMMARY" && p.value == "Team meeting"));
    assert!(ev.children.iter().any(|c| c.name == "VALARM"));
}

#[test]
fn parsed_vcard_has_props_and_versions() {
    let src = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:v1\r\nFN:Ann Example\r\nitem1.EMAIL;TYPE=INTERNET:ann@example.org\r\nNOTE:a\\, b\r\nEND:VCARD\r\n";
    let c = parse_vcard(src.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(c.index.uid, "v1");
    let props = c.props();
    assert!(props
        .iter()
        .any(|p| p.name == "EMAIL" && p.value == "ann@example.org"));
    assert!(props.iter().any(|p| p.name == "NOTE" && p.value == "a, b"));
    assert!(c.write(VcardVersion::V4).contains("VERSION:4.0"));
}

#[test]
fn truncated_calendar_is_refused() {
    assert!(matches!(
        ingest_icalendar(b"BEGIN:VCALENDAR\r\nthis is not", &opts()),
        Err(PimError::Parse(_))
    ));
    let whole = crlf(THUNDERBIRD);
    assert!(matches!(
        ingest_icalendar(&whole[..whole.len() - 20], &opts()),
        Err(PimError::Parse(_))
    ));
}

#[test]
fn utc_times_with_a_tzid_are_utc() {
    // DavMail adds its zone's TZID to UTC times: the times stay UTC, a
    // series and its EXDATE too, and the TZID need not be known.
    for tzid in ["Europe/Berlin", "Nowhere"] {
        let src = format!("BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:x\nBEGIN:VEVENT\nUID:u1\nDTSTAMP:20260101T000000Z\nDTSTART;TZID={tzid}:20260601T090000Z\nDTEND;TZID={tzid}:20260601T100000Z\nRRULE:FREQ=DAILY;COUNT=3\nEXDATE;TZID={tzid}:20260602T090000Z\nEND:VEVENT\nEND:VCALENDAR\n");
        let o = ingest_icalendar(&crlf(&src), &opts()).unwrap();
        let starts: Vec<i64> = o.index.instances.iter().map(|i| i.start).collect();
        assert_eq!(
            starts,
            [utc(2026, 6, 1, 9, 0, 0), utc(2026, 6, 3, 9, 0, 0)],
            "{tzid}"
        );
        assert_eq!(o.index.instances[0].end, utc(2026, 6, 1, 10, 0, 0));
    }
}
