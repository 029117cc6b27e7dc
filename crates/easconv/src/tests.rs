use crate::calendar::{compact, parse_eas_time, vtimezone};
use crate::tz::{info_for, TimeZoneInfo};
use crate::*;
use chrono::{TimeZone, Utc};
use chrono_tz::Tz;
use outpost_wbxml::{Element, Node};
use proptest::prelude::*;

/// The Pacific Standard Time blob of the MS-ASCAL / MS-ASDTYPE examples.
const PST: &str = "4AEAAFAAYQBjAGkAZgBpAGMAIABTAHQAYQBuAGQAYQByAGQAIABUAGkAbQBlAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAsAAAABAAIAAAAAAAAAAAAAAFAAYQBjAGkAZgBpAGMAIABEAGEAeQBsAGkAZwBoAHQAIABUAGkAbQBlAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAMAAAACAAIAAAAAAAAAxP///w==";

fn opts() -> EventOptions {
    EventOptions {
        own_addresses: vec!["alice@example.org".into()],
        ..EventOptions::default()
    }
}

fn incoming() -> IncomingOptions {
    IncomingOptions {
        new_uid: "generated-uid@outpost".into(),
        now: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
    }
}

fn app(children: Vec<Element>) -> Element {
    let mut a = Element::named("AirSync", "ApplicationData");
    for c in children {
        a = a.with(c);
    }
    a
}

fn get<'a>(items: &'a [Element], page: &str, name: &str) -> Option<&'a Element> {
    items.iter().find(|e| e.is(page, name))
}

fn text(items: &[Element], page: &str, name: &str) -> String {
    get(items, page, name).map(|e| e.text()).unwrap_or_default()
}

/// Whether the iCalendar object `ics` (parsed by calcard) holds a property
/// equal to the one content line `line` (parsed by calcard too): the same
/// name, parameters and values, whatever the order of RRULE parts, the
/// folding or the quoting.
fn ical_has(ics: &str, line: &str) -> bool {
    use calcard::icalendar::ICalendar;
    let want = ICalendar::parse(format!(
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n{line}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    ))
    .unwrap();
    let want = &want.components[1].entries[0];
    let got = ICalendar::parse(ics).unwrap();
    got.components.iter().any(|c| c.entries.contains(want))
}

/// Like [`ical_has`] for a vCard, `line` read as of the card's version.
fn vcard_has(vcf: &str, line: &str) -> bool {
    use calcard::vcard::VCard;
    let got = VCard::parse(vcf).unwrap();
    let version = got.version().unwrap_or_default();
    let want = VCard::parse(format!(
        "BEGIN:VCARD\r\nVERSION:{version}\r\n{line}\r\nEND:VCARD\r\n"
    ))
    .unwrap();
    got.entries.contains(&want.entries[1])
}

#[test]
fn pacific_blob_byte_for_byte() {
    let la: Tz = "America/Los_Angeles".parse().unwrap();
    let mut info = info_for(la, 2009);
    info.standard_name = "Pacific Standard Time".into();
    info.daylight_name = "Pacific Daylight Time".into();
    assert_eq!(info.to_base64(), PST);
    let back = TimeZoneInfo::from_base64(PST).unwrap();
    assert_eq!(back, info);
    assert_eq!(back.bias, 480);
    assert_eq!(back.daylight_bias, -60);
    assert_eq!(back.to_iana(2009), Some(la));
}

#[test]
fn blobs_match_back_to_their_zone() {
    for name in [
        "Europe/Berlin",
        "America/New_York",
        "Australia/Sydney",
        "Asia/Kolkata",
        "UTC",
    ] {
        let tz: Tz = name.parse().unwrap();
        let mut info = info_for(tz, 2026);
        assert_eq!(info.to_iana(2026), Some(tz), "{name}");
        // Without a usable name: matched on the rules alone.
        info.standard_name = "Custom".into();
        assert_eq!(info.to_iana(2026), Some(tz), "{name} by rules");
    }
    let kolkata = info_for("Asia/Kolkata".parse().unwrap(), 2026);
    assert_eq!(kolkata.bias, -330);
    assert_eq!(kolkata.daylight.month, 0);
    let sydney = info_for("Australia/Sydney".parse().unwrap(), 2026);
    assert_eq!(sydney.bias, -600);
    assert_eq!(
        (
            sydney.standard.month,
            sydney.standard.week,
            sydney.standard.hour
        ),
        (4, 1, 3)
    );
    assert_eq!(
        (
            sydney.daylight.month,
            sydney.daylight.week,
            sydney.daylight.hour
        ),
        (10, 1, 2)
    );
    let berlin = info_for("Europe/Berlin".parse().unwrap(), 2026);
    assert_eq!(
        (
            berlin.standard.month,
            berlin.standard.week,
            berlin.standard.hour
        ),
        (10, 5, 3)
    );
    assert_eq!(
        (
            berlin.daylight.month,
            berlin.daylight.week,
            berlin.daylight.hour
        ),
        (3, 5, 2)
    );
}

#[test]
fn bad_blobs_are_errors() {
    assert!(TimeZoneInfo::from_base64("not base64!").is_err());
    assert!(TimeZoneInfo::from_base64("AAAA").is_err());
    let mut b = TimeZoneInfo::from_base64(PST).unwrap().to_bytes();
    b[70] = 13; // StandardDate month 13
    assert!(TimeZoneInfo::from_bytes(&b).is_err());
}

const WEEKLY_BERLIN: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\n\
BEGIN:VEVENT\r\nUID:weekly-1@example.org\r\nDTSTAMP:20260101T120000Z\r\n\
DTSTART;TZID=Europe/Berlin:20260105T090000\r\nDTEND;TZID=Europe/Berlin:20260105T100000\r\n\
SUMMARY:Standup\\, daily-ish\r\nLOCATION:Room 1\r\nDESCRIPTION:Line one\\nLine two\r\n\
ORGANIZER;CN=Alice:mailto:alice@example.org\r\n\
ATTENDEE;CN=Bob;PARTSTAT=ACCEPTED;ROLE=REQ-PARTICIPANT;RSVP=TRUE:mailto:bob@example.org\r\n\
ATTENDEE;CN=Carol;PARTSTAT=TENTATIVE;ROLE=OPT-PARTICIPANT:mailto:carol@example.org\r\n\
RRULE:FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20260630T070000Z\r\n\
EXDATE;TZID=Europe/Berlin:20260107T090000\r\nCATEGORIES:Work,Team\r\nCLASS:PRIVATE\r\n\
X-CUSTOM-THING:keep me\r\nATTACH:https://example.org/agenda.pdf\r\n\
BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:weekly-1@example.org\r\nDTSTAMP:20260101T120000Z\r\n\
RECURRENCE-ID;TZID=Europe/Berlin:20260112T090000\r\n\
DTSTART;TZID=Europe/Berlin:20260112T110000\r\nDTEND;TZID=Europe/Berlin:20260112T120000\r\n\
SUMMARY:Standup (moved)\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

#[test]
fn weekly_berlin_to_eas() {
    let items = event_to_eas(WEEKLY_BERLIN, EasVersion::V14_1, &opts()).unwrap();
    assert_eq!(text(&items, "Calendar", "StartTime"), "20260105T080000Z");
    assert_eq!(text(&items, "Calendar", "EndTime"), "20260105T090000Z");
    assert_eq!(text(&items, "Calendar", "Subject"), "Standup, daily-ish");
    assert_eq!(text(&items, "Calendar", "Location"), "Room 1");
    assert_eq!(text(&items, "Calendar", "Reminder"), "15");
    assert_eq!(text(&items, "Calendar", "Sensitivity"), "2");
    assert_eq!(text(&items, "Calendar", "MeetingStatus"), "1");
    assert_eq!(text(&items, "Calendar", "UID"), "weekly-1@example.org");
    assert_eq!(
        text(&items, "Calendar", "OrganizerEmail"),
        "alice@example.org"
    );
    let tz = TimeZoneInfo::from_base64(&text(&items, "Calendar", "Timezone")).unwrap();
    assert_eq!(tz.to_iana(2026), Some("Europe/Berlin".parse().unwrap()));
    let att = get(&items, "Calendar", "Attendees").unwrap();
    let a: Vec<_> = att.elements().collect();
    assert_eq!(a.len(), 2);
    assert_eq!(
        a[0].child("Calendar", "AttendeeStatus").unwrap().text(),
        "3"
    );
    assert_eq!(a[1].child("Calendar", "AttendeeType").unwrap().text(), "2");
    let r = get(&items, "Calendar", "Recurrence").unwrap();
    assert_eq!(r.child("Calendar", "Type").unwrap().text(), "1");
    assert_eq!(r.child("Calendar", "DayOfWeek").unwrap().text(), "10");
    assert_eq!(
        r.child("Calendar", "Until").unwrap().text(),
        "20260630T070000Z"
    );
    let ex: Vec<_> = get(&items, "Calendar", "Exceptions")
        .unwrap()
        .elements()
        .collect();
    assert_eq!(ex.len(), 2);
    assert_eq!(ex[0].child("Calendar", "Deleted").unwrap().text(), "1");
    assert_eq!(
        ex[0]
            .child("Calendar", "ExceptionStartTime")
            .unwrap()
            .text(),
        "20260107T080000Z"
    );
    assert_eq!(
        ex[1]
            .child("Calendar", "ExceptionStartTime")
            .unwrap()
            .text(),
        "20260112T080000Z"
    );
    assert_eq!(
        ex[1].child("Calendar", "StartTime").unwrap().text(),
        "20260112T100000Z"
    );
    assert_eq!(
        ex[1].child("Calendar", "Subject").unwrap().text(),
        "Standup (moved)"
    );
    // 16.x: Location and InstanceId from AirSyncBase.
    let items16 = event_to_eas(WEEKLY_BERLIN, EasVersion::V16_1, &opts()).unwrap();
    assert!(get(&items16, "Calendar", "Location").is_none());
    assert_eq!(
        get(&items16, "AirSyncBase", "Location")
            .unwrap()
            .child("AirSyncBase", "DisplayName")
            .unwrap()
            .text(),
        "Room 1"
    );
    let ex16: Vec<_> = get(&items16, "Calendar", "Exceptions")
        .unwrap()
        .elements()
        .collect();
    assert_eq!(
        ex16[0].child("AirSyncBase", "InstanceId").unwrap().text(),
        "20260107T080000Z"
    );
}

/// iCal -> EAS -> iCal -> EAS gives the same EAS item, and a Change keeps
/// what EAS does not carry.
#[test]
fn round_trip_keeps_item_and_unknown_properties() {
    for v in [EasVersion::V14_1, EasVersion::V16_1] {
        let items = event_to_eas(WEEKLY_BERLIN, v, &opts()).unwrap();
        let back = eas_to_event(&app(items.clone()), Some(WEEKLY_BERLIN), v, &incoming()).unwrap();
        assert!(ical_has(&back, "X-CUSTOM-THING:keep me"), "{back}");
        assert!(ical_has(&back, "ATTACH:https://example.org/agenda.pdf"));
        assert!(ical_has(&back, "UID:weekly-1@example.org"));
        assert!(back.contains("BEGIN:VTIMEZONE"));
        assert!(ical_has(
            &back,
            "DTSTART;TZID=Europe/Berlin:20260105T090000"
        ));
        let again = event_to_eas(&back, v, &opts()).unwrap();
        let strip = |xs: &[Element]| -> Vec<Element> {
            xs.iter()
                .filter(|e| !e.is("Calendar", "DtStamp"))
                .cloned()
                .collect()
        };
        assert_eq!(strip(&again), strip(&items), "{back}");
    }
}

fn zoned_event(zone: &str, rrule: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:z@x\r\nDTSTAMP:20260101T000000Z\r\n\
DTSTART;TZID={zone}:20260310T140000\r\nDTEND;TZID={zone}:20260310T153000\r\nSUMMARY:Z\r\n{rrule}END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

#[test]
fn zones_and_recurrence_kinds_round_trip() {
    let rules = [
        "",
        "RRULE:FREQ=DAILY;INTERVAL=2;COUNT=10\r\n",
        "RRULE:FREQ=WEEKLY;BYDAY=TU\r\n",
        "RRULE:FREQ=MONTHLY;BYMONTHDAY=10\r\n",
        "RRULE:FREQ=MONTHLY;BYDAY=2TU\r\n",
        "RRULE:FREQ=MONTHLY;BYDAY=-1TU;COUNT=5\r\n",
        "RRULE:FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=10\r\n",
        "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2TU;WKST=MO\r\n",
    ];
    for zone in [
        "Europe/Berlin",
        "America/New_York",
        "Australia/Sydney",
        "Asia/Kolkata",
    ] {
        for rule in rules {
            let ics = zoned_event(zone, rule);
            let items = event_to_eas(&ics, EasVersion::V14_1, &opts()).unwrap();
            let back =
                eas_to_event(&app(items.clone()), None, EasVersion::V14_1, &incoming()).unwrap();
            assert!(
                ical_has(&back, &format!("DTSTART;TZID={zone}:20260310T140000")),
                "{zone} {rule}: {back}"
            );
            let again = event_to_eas(&back, EasVersion::V14_1, &opts()).unwrap();
            let strip = |xs: &[Element]| -> Vec<Element> {
                xs.iter()
                    .filter(|e| !e.is("Calendar", "DtStamp"))
                    .cloned()
                    .collect()
            };
            assert_eq!(strip(&again), strip(&items), "{zone} {rule}");
        }
    }
    let k = event_to_eas(&zoned_event("Asia/Kolkata", ""), EasVersion::V14_1, &opts()).unwrap();
    assert_eq!(text(&k, "Calendar", "StartTime"), "20260310T083000Z");
}

#[test]
fn all_day_and_floating() {
    let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:a@x\r\nDTSTAMP:20260101T000000Z\r\n\
DTSTART;VALUE=DATE:20260704\r\nDTEND;VALUE=DATE:20260705\r\nSUMMARY:Holiday\r\nTRANSP:TRANSPARENT\r\n\
RRULE:FREQ=YEARLY\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let o = EventOptions {
        default_tz: "America/New_York".parse().unwrap(),
        ..opts()
    };
    let items = event_to_eas(ics, EasVersion::V14_1, &o).unwrap();
    assert_eq!(text(&items, "Calendar", "AllDayEvent"), "1");
    assert_eq!(text(&items, "Calendar", "BusyStatus"), "0");
    assert_eq!(text(&items, "Calendar", "StartTime"), "20260704T040000Z");
    let back = eas_to_event(&app(items), None, EasVersion::V14_1, &incoming()).unwrap();
    assert!(ical_has(&back, "DTSTART;VALUE=DATE:20260704"), "{back}");
    assert!(ical_has(&back, "DTEND;VALUE=DATE:20260705"));
    assert!(ical_has(&back, "RRULE:FREQ=YEARLY;BYMONTH=7;BYMONTHDAY=4"));
    // Floating times are the user's zone.
    let fl = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:f@x\r\nDTSTART:20260115T100000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let items = event_to_eas(fl, EasVersion::V14_1, &o).unwrap();
    assert_eq!(text(&items, "Calendar", "StartTime"), "20260115T150000Z");
    assert_eq!(text(&items, "Calendar", "EndTime"), "20260115T150000Z");
}

#[test]
fn client_add_sixteen_gets_generated_uid() {
    let tzb = info_for("Europe/Berlin".parse().unwrap(), 2026).to_base64();
    let a = app(vec![
        Element::named("Calendar", "Timezone").with_text(tzb),
        Element::named("Calendar", "StartTime").with_text("20260301T090000Z"),
        Element::named("Calendar", "EndTime").with_text("20260301T100000Z"),
        Element::named("Calendar", "Subject").with_text("New"),
        Element::named("Calendar", "UID").with_text("client-made"),
        Element::named("Calendar", "Exceptions").with(
            Element::named("Calendar", "Exception")
                .with(Element::named("Calendar", "Deleted").with_text("1"))
                .with(Element::named("AirSyncBase", "InstanceId").with_text("20260308T090000Z")),
        ),
        Element::named("Calendar", "Recurrence")
            .with(Element::named("Calendar", "Type").with_text("1"))
            .with(Element::named("Calendar", "DayOfWeek").with_text("1")),
    ]);
    let out = eas_to_event(&a, None, EasVersion::V16_0, &incoming()).unwrap();
    assert!(ical_has(&out, "UID:generated-uid@outpost"), "{out}");
    assert!(
        ical_has(&out, "EXDATE;TZID=Europe/Berlin:20260308T100000"),
        "{out}"
    );
    assert!(ical_has(&out, "RRULE:FREQ=WEEKLY;BYDAY=SU"));
    let out14 = eas_to_event(&a, None, EasVersion::V14_1, &incoming()).unwrap();
    assert!(ical_has(&out14, "UID:client-made"));
}

#[test]
fn hostile_input_is_an_error() {
    let tzb = info_for(Tz::UTC, 2026).to_base64();
    let base = |extra: Element| {
        app(vec![
            Element::named("Calendar", "Timezone").with_text(tzb.clone()),
            Element::named("Calendar", "StartTime").with_text("20260301T090000Z"),
            extra,
        ])
    };
    let bad = [
        Element::named("Calendar", "EndTime").with_text("99991301T000000Z"),
        Element::named("Calendar", "EndTime").with_text("20260201T000000Z"),
        Element::named("Calendar", "Subject").with_text("x".repeat(MAX_FIELD + 1)),
        Element::named("Calendar", "Recurrence")
            .with(Element::named("Calendar", "Type").with_text("9")),
        Element::named("Calendar", "Recurrence")
            .with(Element::named("Calendar", "Type").with_text("1"))
            .with(Element::named("Calendar", "DayOfWeek").with_text("4000")),
        Element::named("Calendar", "Reminder").with_text("-5"),
    ];
    for b in bad {
        assert!(eas_to_event(&base(b), None, EasVersion::V14_1, &incoming()).is_err());
    }
    let mut many = Element::named("Calendar", "Attendees");
    for i in 0..10_000 {
        many = many.with(
            Element::named("Calendar", "Attendee")
                .with(Element::named("Calendar", "Email").with_text(format!("a{i}@x"))),
        );
    }
    assert_eq!(
        eas_to_event(&base(many), None, EasVersion::V14_1, &incoming()),
        Err(Error::TooLarge("attendees"))
    );
    let bad_tz = app(vec![
        Element::named("Calendar", "Timezone").with_text("AAAA"),
        Element::named("Calendar", "StartTime").with_text("20260301T090000Z"),
    ]);
    assert!(eas_to_event(&bad_tz, None, EasVersion::V14_1, &incoming()).is_err());
    assert!(event_to_eas("garbage", EasVersion::V14_1, &opts()).is_err());
    assert!(event_to_eas("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:00010101T000000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", EasVersion::V14_1, &opts()).is_err());
}

#[test]
fn times_and_vtimezone() {
    let t = parse_eas_time("2009-12-24T09:00:00.000Z").unwrap();
    assert_eq!(compact(t), "20091224T090000Z");
    let s = vtimezone("America/New_York".parse().unwrap(), 2026).write();
    assert!(ical_has(&s, "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU"), "{s}");
    assert!(ical_has(&s, "RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU"));
    assert!(ical_has(&s, "TZOFFSETTO:-0400"));
}

fn calendar_leaf() -> impl Strategy<Value = Element> {
    let names = prop::sample::select(vec![
        "Timezone",
        "AllDayEvent",
        "StartTime",
        "EndTime",
        "Subject",
        "UID",
        "BusyStatus",
        "Sensitivity",
        "Reminder",
        "MeetingStatus",
        "OrganizerEmail",
        "Location",
        "Type",
        "Interval",
        "DayOfWeek",
        "DayOfMonth",
        "WeekOfMonth",
        "MonthOfYear",
        "Until",
        "Occurrences",
        "FirstDayOfWeek",
        "Deleted",
        "ExceptionStartTime",
        "Email",
        "AttendeeStatus",
        "AttendeeType",
        "Category",
    ]);
    let values = prop_oneof![
        Just("20260301T090000Z".to_string()),
        Just("1".to_string()),
        Just("5".to_string()),
        Just(info_for(Tz::UTC, 2026).to_base64()),
        "[0-9TZ:-]{0,20}",
        ".{0,30}",
    ];
    (names, values).prop_map(|(n, v)| Element::named("Calendar", n).with_text(v))
}

fn calendar_tree() -> impl Strategy<Value = Element> {
    calendar_leaf().prop_recursive(3, 40, 6, |inner| {
        (
            prop::sample::select(vec![
                "Recurrence",
                "Exceptions",
                "Exception",
                "Attendees",
                "Attendee",
                "Categories",
            ]),
            prop::collection::vec(inner, 0..6),
        )
            .prop_map(|(n, kids)| {
                let mut e = Element::named("Calendar", n);
                e.children = kids.into_iter().map(Node::Element).collect();
                e
            })
    })
}

proptest! {
    #[test]
    fn random_application_data_never_panics(kids in prop::collection::vec(calendar_tree(), 0..12), existing in any::<bool>()) {
        let a = app(kids);
        let ex = if existing { Some(WEEKLY_BERLIN) } else { None };
        for v in [EasVersion::V14_1, EasVersion::V16_1] {
            if let Ok(ics) = eas_to_event(&a, ex, v, &incoming()) {
                // What we write we can read.
                event_to_eas(&ics, v, &opts()).unwrap();
            }
        }
    }

    #[test]
    fn random_icalendar_never_panics(s in ".{0,400}") {
        let _ = event_to_eas(&s, EasVersion::V14_1, &opts());
        let _ = event_to_eas(&format!("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n{s}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"), EasVersion::V14_1, &opts());
    }
}

const TODO: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Thunderbird//EN\r\nBEGIN:VTODO\r\n\
UID:todo-1@example.org\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:File taxes\r\n\
DESCRIPTION:Forms\\, receipts\r\nDTSTART:20260301T080000Z\r\nDUE:20260415T220000Z\r\n\
PRIORITY:1\r\nCLASS:CONFIDENTIAL\r\nCATEGORIES:Home\r\nX-MOZ-GENERATION:3\r\n\
RRULE:FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=1\r\n\
BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER;VALUE=DATE-TIME:20260410T070000Z\r\nEND:VALARM\r\n\
END:VTODO\r\nEND:VCALENDAR\r\n";

#[test]
fn todo_round_trip() {
    let o = EventOptions {
        default_tz: "Europe/Berlin".parse().unwrap(),
        ..opts()
    };
    let items = todo_to_eas(TODO, EasVersion::V14_1, &o).unwrap();
    assert_eq!(text(&items, "Tasks", "Subject"), "File taxes");
    assert_eq!(text(&items, "Tasks", "Importance"), "2");
    assert_eq!(text(&items, "Tasks", "Sensitivity"), "3");
    assert_eq!(
        text(&items, "Tasks", "UtcDueDate"),
        "2026-04-15T22:00:00.000Z"
    );
    assert_eq!(text(&items, "Tasks", "DueDate"), "2026-04-16T00:00:00.000Z");
    assert_eq!(text(&items, "Tasks", "ReminderSet"), "1");
    assert_eq!(
        text(&items, "Tasks", "ReminderTime"),
        "2026-04-10T07:00:00.000Z"
    );
    assert_eq!(text(&items, "Tasks", "Complete"), "0");
    let r = get(&items, "Tasks", "Recurrence").unwrap();
    assert_eq!(r.child("Tasks", "Type").unwrap().text(), "5");
    assert_eq!(
        r.child("Tasks", "Start").unwrap().text(),
        "2026-03-01T08:00:00.000Z"
    );
    let back = eas_to_todo(
        &app(items.clone()),
        Some(TODO),
        EasVersion::V14_1,
        &incoming(),
    )
    .unwrap();
    assert!(ical_has(&back, "X-MOZ-GENERATION:3"), "{back}");
    assert!(ical_has(&back, "UID:todo-1@example.org"));
    assert_eq!(todo_to_eas(&back, EasVersion::V14_1, &o).unwrap(), items);
    // Completing it on the phone.
    let mut done: Vec<Element> = items
        .into_iter()
        .filter(|e| !e.is("Tasks", "Complete"))
        .collect();
    done.push(Element::named("Tasks", "Complete").with_text("1"));
    done.push(Element::named("Tasks", "DateCompleted").with_text("2026-04-01T10:00:00.000Z"));
    let back = eas_to_todo(&app(done), Some(TODO), EasVersion::V14_1, &incoming()).unwrap();
    assert!(ical_has(&back, "STATUS:COMPLETED"));
    assert!(ical_has(&back, "COMPLETED:20260401T100000Z"));
    let bad = app(vec![
        Element::named("Tasks", "UtcStartDate").with_text("2026-05-01T00:00:00.000Z"),
        Element::named("Tasks", "UtcDueDate").with_text("2026-04-01T00:00:00.000Z"),
    ]);
    assert!(eas_to_todo(&bad, None, EasVersion::V14_1, &incoming()).is_err());
}

const APPLE: &str = "BEGIN:VCARD\r\nVERSION:3.0\r\nPRODID:-//Apple Inc.//iPhone OS 17.0//EN\r\n\
N:Appleseed;Johnny;Q.;Dr.;Jr.\r\nFN:Dr. Johnny Q. Appleseed Jr.\r\nORG:Apple Inc.;Engineering\r\n\
TITLE:Engineer\r\nEMAIL;type=INTERNET;type=HOME;type=pref:johnny@example.com\r\n\
EMAIL;type=INTERNET;type=WORK:j.appleseed@apple.example\r\n\
EMAIL;type=INTERNET:third@example.com\r\nEMAIL;type=INTERNET:fourth@example.com\r\n\
TEL;type=CELL;type=VOICE;type=pref:+1 555 0100\r\nTEL;type=WORK;type=VOICE:+1 555 0101\r\n\
TEL;type=HOME;type=FAX:+1 555 0102\r\nitem1.TEL:+1 555 0103\r\nitem1.X-ABLabel:_$!<Other>!$_\r\n\
item2.ADR;type=HOME;type=pref:;;1 Infinite Loop;Cupertino;CA;95014;USA\r\n\
item2.X-ABADR:us\r\nADR;type=WORK:;Suite 5;2 Main St;Springfield;IL;62701;USA\r\n\
item3.URL;type=pref:https\\://example.com\r\nitem3.X-ABLabel:_$!<HomePage>!$_\r\n\
BDAY;value=date:1980-04-12\r\nX-ABUID:1234-5678\r\nNOTE:Met at WWDC\\, 2019\r\n\
PHOTO;ENCODING=b;TYPE=JPEG:/9j/4AAQSkZJRgABAQ==\r\nEND:VCARD\r\n";

const GOOGLE: &str = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Gina Google\r\nN:Google;Gina;;;\r\n\
EMAIL;TYPE=INTERNET;TYPE=WORK:gina@example.org\r\nTEL;TYPE=CELL:+49 170 1234567\r\n\
TEL;TYPE=WORK:+49 30 1234\r\nTEL;TYPE=WORK:+49 30 5678\r\nX-ANNIVERSARY:2010-06-01\r\n\
NICKNAME:Gigi\r\nCATEGORIES:myContacts,Friends\r\nX-GOOGLE-TALK:gina@talk\r\nEND:VCARD\r\n";

const THUNDERBIRD: &str = "BEGIN:VCARD\r\nVERSION:4.0\r\nPRODID:-//Thunderbird//EN\r\nUID:tb-1\r\n\
FN:Theo Bird\r\nN:Bird;Theo;;;\r\nEMAIL;PREF=1:theo@example.net\r\nTEL;TYPE=work;VALUE=TEXT:+33 1 23 45\r\n\
ADR;TYPE=work:;;10 Rue X;Paris;;75001;France\r\nANNIVERSARY:20150910\r\n\
IMPP:xmpp:theo@jabber.example\r\nPHOTO:data:image/png;base64,iVBORw0KGgo=\r\nEND:VCARD\r\n";

fn contact_round_trip(card: &str) -> (Vec<Element>, String) {
    let items = vcard_to_eas(card, EasVersion::V14_1, &opts()).unwrap();
    let back = eas_to_vcard(&app(items.clone()), Some(card), EasVersion::V14_1, "new").unwrap();
    let again = vcard_to_eas(&back, EasVersion::V14_1, &opts()).unwrap();
    let mut a = items.clone();
    let mut b = again;
    let key = |e: &Element| (e.tag.page(), e.tag.token());
    a.sort_by_key(key);
    b.sort_by_key(key);
    assert_eq!(a, b, "{back}");
    (items, back)
}

#[test]
fn apple_contact() {
    let (items, back) = contact_round_trip(APPLE);
    assert_eq!(text(&items, "Contacts", "LastName"), "Appleseed");
    assert_eq!(text(&items, "Contacts", "Title"), "Dr.");
    assert_eq!(text(&items, "Contacts", "Suffix"), "Jr.");
    assert_eq!(text(&items, "Contacts", "CompanyName"), "Apple Inc.");
    assert_eq!(text(&items, "Contacts", "Department"), "Engineering");
    assert_eq!(
        text(&items, "Contacts", "Email3Address"),
        "third@example.com"
    );
    assert_eq!(text(&items, "Contacts", "MobilePhoneNumber"), "+1 555 0100");
    assert_eq!(
        text(&items, "Contacts", "BusinessPhoneNumber"),
        "+1 555 0101"
    );
    assert_eq!(text(&items, "Contacts", "HomeFaxNumber"), "+1 555 0102");
    assert_eq!(text(&items, "Contacts", "HomePhoneNumber"), "+1 555 0103");
    assert_eq!(text(&items, "Contacts", "HomeAddressCity"), "Cupertino");
    assert_eq!(
        text(&items, "Contacts", "BusinessAddressStreet"),
        "2 Main St\nSuite 5"
    );
    assert_eq!(text(&items, "Contacts", "WebPage"), "https://example.com");
    assert_eq!(
        text(&items, "Contacts", "Birthday"),
        "1980-04-12T00:00:00.000Z"
    );
    assert_eq!(text(&items, "Contacts", "Picture"), "/9j/4AAQSkZJRgABAQ==");
    // What EAS cannot carry survives the Change.
    assert!(back.contains("fourth@example.com"), "{back}");
    assert!(vcard_has(&back, "X-ABUID:1234-5678"));
    assert!(vcard_has(&back, "item2.X-ABADR:us"));
    assert!(!back.contains("item1.X-ABLabel") && !back.contains("item1.X-ABLABEL"));
    let parsed = calcard::vcard::VCard::parse(&back).unwrap();
    assert!(!parsed
        .entries
        .iter()
        .any(|e| e.group.as_deref() == Some("item1")
            && e.name.as_str().eq_ignore_ascii_case("X-ABLABEL")));
}

#[test]
fn google_and_thunderbird_contacts() {
    let (g, back) = contact_round_trip(GOOGLE);
    assert_eq!(text(&g, "Contacts", "Business2PhoneNumber"), "+49 30 5678");
    assert_eq!(
        text(&g, "Contacts", "Anniversary"),
        "2010-06-01T00:00:00.000Z"
    );
    assert_eq!(text(&g, "Contacts2", "NickName"), "Gigi");
    assert_eq!(
        get(&g, "Contacts", "Categories")
            .unwrap()
            .elements()
            .count(),
        2
    );
    assert!(vcard_has(&back, "X-GOOGLE-TALK:gina@talk"));
    let (t, back) = contact_round_trip(THUNDERBIRD);
    assert_eq!(text(&t, "Contacts", "BusinessAddressCountry"), "France");
    assert_eq!(
        text(&t, "Contacts2", "IMAddress"),
        "xmpp:theo@jabber.example"
    );
    assert_eq!(text(&t, "Contacts", "Picture"), "iVBORw0KGgo=");
    assert!(
        vcard_has(&back, "PHOTO:data:image/png;base64,iVBORw0KGgo="),
        "{back}"
    );
    assert!(vcard_has(&back, "ANNIVERSARY;VALUE=DATE:20150910"));
    assert!(vcard_has(&back, "UID:tb-1"));
}

#[test]
fn contact_add_and_limits() {
    let a = app(vec![
        Element::named("Contacts", "FirstName").with_text("Ann"),
        Element::named("Contacts", "LastName").with_text("Lee"),
        Element::named("Contacts", "Email1Address").with_text("\"Ann Lee\" <ann@example.org>"),
        Element::named("Contacts", "Birthday").with_text("1990-01-31T23:00:00.000Z"),
    ]);
    let card = eas_to_vcard(&a, None, EasVersion::V16_1, "uid-9").unwrap();
    assert!(vcard_has(&card, "UID:uid-9"));
    assert!(vcard_has(&card, "FN:Ann Lee"));
    assert!(
        vcard_has(&card, "EMAIL;TYPE=INTERNET;TYPE=PREF:ann@example.org"),
        "{card}"
    );
    assert!(vcard_has(&card, "BDAY;VALUE=DATE:19900201"));
    let huge = app(vec![
        Element::named("Contacts", "Picture").with_text("A".repeat(200_000))
    ]);
    assert_eq!(
        eas_to_vcard(&huge, None, EasVersion::V14_1, "u"),
        Err(Error::TooLarge("picture"))
    );
    let bad = app(vec![
        Element::named("Contacts", "Birthday").with_text("yesterday")
    ]);
    assert!(eas_to_vcard(&bad, None, EasVersion::V14_1, "u").is_err());
    assert!(vcard_to_eas(
        "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n",
        EasVersion::V14_1,
        &opts()
    )
    .is_err());
}

proptest! {
    #[test]
    fn random_contacts_and_tasks_never_panic(
        kids in prop::collection::vec((prop::sample::select(vec![
            ("Contacts", "FirstName"), ("Contacts", "Email1Address"), ("Contacts", "Birthday"),
            ("Contacts", "Picture"), ("Contacts", "HomeAddressStreet"), ("Contacts2", "NickName"),
            ("Tasks", "Subject"), ("Tasks", "UtcDueDate"), ("Tasks", "Importance"),
            ("Tasks", "ReminderSet"), ("Tasks", "ReminderTime"), ("Tasks", "Complete"),
        ]), ".{0,30}"), 0..10),
    ) {
        let a = app(kids.into_iter().map(|((p, n), v)| Element::named(p, n).with_text(v)).collect());
        if let Ok(c) = eas_to_vcard(&a, Some(APPLE), EasVersion::V14_1, "u") {
            vcard_to_eas(&c, EasVersion::V14_1, &opts()).unwrap();
        }
        if let Ok(t) = eas_to_todo(&a, Some(TODO), EasVersion::V14_1, &incoming()) {
            todo_to_eas(&t, EasVersion::V14_1, &opts()).unwrap();
        }
    }
}

#[test]
fn sixteen_all_day_is_a_date_in_any_zone() {
    let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:d@x\r\nDTSTAMP:20260101T000000Z\r\n\
DTSTART;VALUE=DATE:20260126\r\nDTEND;VALUE=DATE:20260127\r\nSUMMARY:Australia Day\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    for zone in ["Australia/Sydney", "America/New_York", "Asia/Kolkata"] {
        let o = EventOptions {
            default_tz: zone.parse().unwrap(),
            ..opts()
        };
        for v in [EasVersion::V14_1, EasVersion::V16_1] {
            let items = event_to_eas(ics, v, &o).unwrap();
            if v.is_16() {
                assert_eq!(text(&items, "Calendar", "StartTime"), "20260126T000000Z");
            }
            let back = eas_to_event(&app(items), None, v, &incoming()).unwrap();
            assert!(
                ical_has(&back, "DTSTART;VALUE=DATE:20260126"),
                "{zone} {v:?}: {back}"
            );
            assert!(
                ical_has(&back, "DTEND;VALUE=DATE:20260127"),
                "{zone} {v:?}: {back}"
            );
        }
    }
}

#[test]
fn unmatched_blob_is_refused_quickly() {
    // Bias +3:17 with no DST matches no zone.
    let info = TimeZoneInfo {
        bias: -197,
        ..TimeZoneInfo::default()
    };
    let t = std::time::Instant::now();
    assert_eq!(info.to_iana(2026), None);
    assert!(t.elapsed() < std::time::Duration::from_secs(2));
    let a = app(vec![
        Element::named("Calendar", "Timezone").with_text(info.to_base64()),
        Element::named("Calendar", "StartTime").with_text("20260301T090000Z"),
    ]);
    assert!(eas_to_event(&a, None, EasVersion::V14_1, &incoming()).is_err());
    // Rules alone find a zone not among the preferred ones (Asia/Kathmandu, +5:45).
    let kathmandu = info_for("Asia/Kathmandu".parse().unwrap(), 2026);
    let mut anon = kathmandu.clone();
    anon.standard_name = String::new();
    let found = anon.to_iana(2026).unwrap();
    assert_eq!(info_for(found, 2026).bias, kathmandu.bias);
}

#[test]
fn windows_and_prefixed_tzids() {
    for tzid in [
        "W. Europe Standard Time",
        "/mozilla.org/20050126_1/Europe/Berlin",
        "Europe/Berlin",
    ] {
        let ics = zoned_event(tzid, "");
        let items = event_to_eas(&ics, EasVersion::V14_1, &opts()).unwrap();
        assert_eq!(
            text(&items, "Calendar", "StartTime"),
            "20260310T130000Z",
            "{tzid}"
        );
    }
}

#[test]
fn line_breaks_from_clients_cannot_inject_properties() {
    let a = app(vec![
        Element::named("Calendar", "StartTime").with_text("20260301T090000Z"),
        Element::named("Calendar", "OrganizerEmail").with_text("a@b\r\nX-EVIL:1"),
        Element::named("Calendar", "OrganizerName").with_text("Eve\r\nX-EVIL:2"),
        Element::named("Calendar", "Subject").with_text("Hi\r\nX-EVIL:3"),
    ]);
    let out = eas_to_event(&a, None, EasVersion::V14_1, &incoming()).unwrap();
    assert!(!out.contains("\nX-EVIL"), "{out}");
    let parsed = calcard::icalendar::ICalendar::parse(&out).unwrap();
    assert!(parsed
        .components
        .iter()
        .flat_map(|c| &c.entries)
        .all(|e| !e.name.as_str().starts_with("X-EVIL")));
    // The text itself survives, on its one line.
    let items = event_to_eas(&out, EasVersion::V14_1, &opts()).unwrap();
    assert_eq!(text(&items, "Calendar", "Subject"), "Hi\nX-EVIL:3");
    assert_eq!(text(&items, "Calendar", "OrganizerName"), "EveX-EVIL:2");
    let c = eas_to_vcard(
        &app(vec![
            Element::named("Contacts", "Email1Address").with_text("x@y\nX-EVIL:1")
        ]),
        None,
        EasVersion::V14_1,
        "u",
    )
    .unwrap();
    assert!(!c.contains("\nX-EVIL"), "{c}");
    let parsed = calcard::vcard::VCard::parse(&c).unwrap();
    assert!(parsed
        .entries
        .iter()
        .all(|e| !e.name.as_str().starts_with("X-EVIL")));
}

#[test]
fn custom_vtimezone_is_matched_by_its_rules() {
    let mut c = vtimezone("America/New_York".parse().unwrap(), 2026);
    c.set(crate::model::text_entry(
        crate::model::P::Tzid,
        "Customized Time Zone",
    ));
    let vtz = c.write();
    let ics = format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n{vtz}BEGIN:VEVENT\r\nUID:c@x\r\nDTSTAMP:20260101T000000Z\r\n\
DTSTART;TZID=\"Customized Time Zone\":20260710T090000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    );
    let items = event_to_eas(&ics, EasVersion::V14_1, &opts()).unwrap();
    assert_eq!(text(&items, "Calendar", "StartTime"), "20260710T130000Z");
}

/// Objects calcard cannot read as one well-formed VCALENDAR or VCARD are
/// Error::Invalid for every reader, and for a Change merged into them.
#[test]
fn malformed_objects_are_invalid() {
    let ev = "BEGIN:VEVENT\r\nUID:m@x\r\nDTSTART:20260301T090000Z\r\nEND:VEVENT\r\n";
    let cal = |body: &str| format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n{body}END:VCALENDAR\r\n");
    let bad_calendars = [
        // Garbage.
        "garbage".to_string(),
        "\u{0}\u{1}\u{2}".to_string(),
        String::new(),
        ":::\r\n;;;\r\n".to_string(),
        // An END before any BEGIN.
        format!("END:VCALENDAR\r\n{}", cal(ev)),
        // Truncated: no END:VCALENDAR.
        format!("BEGIN:VCALENDAR\r\n{ev}"),
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:m@x\r\nDTSTART:2026".to_string(),
        // Bad nesting: an event in an event, a calendar in a calendar,
        // an alarm or a STANDARD out of place, a VEVENT at the top.
        cal(&format!(
            "BEGIN:VEVENT\r\nUID:a@x\r\nDTSTART:20260301T090000Z\r\n{ev}END:VEVENT\r\n"
        )),
        cal(&format!("{ev}{}", cal(ev))),
        cal(&format!(
            "BEGIN:VALARM\r\nTRIGGER:-PT5M\r\nEND:VALARM\r\n{ev}"
        )),
        cal(&format!(
            "BEGIN:STANDARD\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\n{ev}"
        )),
        cal(
            "BEGIN:VEVENT\r\nUID:a@x\r\nDTSTART:20260301T090000Z\r\nBEGIN:VTIMEZONE\r\n\
TZID:X\r\nEND:VTIMEZONE\r\nEND:VEVENT\r\n",
        ),
        ev.to_string(),
        // Something after the object.
        format!("{}BEGIN:VEVENT\r\n", cal(ev)),
        format!("{}{}", cal(ev), cal(ev)),
        format!("{}trailing garbage\r\n", cal(ev)),
        // A vCard where a VCALENDAR belongs.
        APPLE.to_string(),
    ];
    for text in &bad_calendars {
        let r = event_to_eas(text, EasVersion::V14_1, &opts());
        assert!(matches!(r, Err(Error::Invalid(_))), "{text:?}: {r:?}");
        let r = todo_to_eas(text, EasVersion::V14_1, &opts());
        assert!(matches!(r, Err(Error::Invalid(_))), "{text:?}: {r:?}");
        let a = app(vec![
            Element::named("Calendar", "StartTime").with_text("20260301T090000Z")
        ]);
        let r = eas_to_event(&a, Some(text), EasVersion::V14_1, &incoming());
        assert!(matches!(r, Err(Error::Invalid(_))), "{text:?}: {r:?}");
        let r = eas_to_todo(&app(vec![]), Some(text), EasVersion::V14_1, &incoming());
        assert!(matches!(r, Err(Error::Invalid(_))), "{text:?}: {r:?}");
    }
    // The well-formed object these are made of reads.
    assert!(event_to_eas(&cal(ev), EasVersion::V14_1, &opts()).is_ok());

    let bad_cards = [
        "garbage".to_string(),
        String::new(),
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Cut short\r\n".to_string(),
        "END:VCARD\r\nBEGIN:VCARD\r\nVERSION:3.0\r\nFN:A\r\nEND:VCARD\r\n".to_string(),
        "BEGIN:VCARD\r\nVERSION:3.0\r\nBEGIN:VCARD\r\nFN:A\r\nEND:VCARD\r\nEND:VCARD\r\n"
            .to_string(),
        format!("{GOOGLE}{GOOGLE}"),
        format!("{GOOGLE}X-AFTER:1\r\n"),
        WEEKLY_BERLIN.to_string(),
    ];
    for text in &bad_cards {
        let r = vcard_to_eas(text, EasVersion::V14_1, &opts());
        assert!(matches!(r, Err(Error::Invalid(_))), "{text:?}: {r:?}");
        let r = eas_to_vcard(&app(vec![]), Some(text), EasVersion::V14_1, "u");
        assert!(matches!(r, Err(Error::Invalid(_))), "{text:?}: {r:?}");
    }
    // Values calcard cannot read as their type are refused where the item
    // needs them.
    for line in [
        "DTSTART:tomorrow",
        "DTSTART:20261301T000000Z",
        "DTSTART;VALUE=DATE:2026",
    ] {
        let text = cal(&format!(
            "BEGIN:VEVENT\r\nUID:v@x\r\n{line}\r\nEND:VEVENT\r\n"
        ));
        let r = event_to_eas(&text, EasVersion::V14_1, &opts());
        assert!(matches!(r, Err(Error::Invalid(_))), "{line}: {r:?}");
    }
    let text = cal(
        "BEGIN:VEVENT\r\nUID:v@x\r\nDTSTART:20260301T090000Z\r\nRRULE:FREQ=SOMETIMES\r\nEND:VEVENT\r\n",
    );
    assert!(matches!(
        event_to_eas(&text, EasVersion::V14_1, &opts()),
        Err(Error::Invalid(_))
    ));
}

#[test]
fn limits_are_kept_before_and_after_parsing() {
    let big = format!(
        "BEGIN:VCALENDAR\r\nX-PAD:{}\r\nEND:VCALENDAR\r\n",
        "x".repeat(MAX_INPUT)
    );
    assert_eq!(
        event_to_eas(&big, EasVersion::V14_1, &opts()),
        Err(Error::TooLarge("object"))
    );
    assert_eq!(
        vcard_to_eas(&big, EasVersion::V14_1, &opts()),
        Err(Error::TooLarge("object"))
    );
    let many: String = (0..MAX_LINES).map(|i| format!("X-L:{i}\r\n")).collect();
    let lines = format!(
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:l@x\r\nDTSTART:20260301T090000Z\r\n{many}END:VEVENT\r\nEND:VCALENDAR\r\n"
    );
    assert_eq!(
        event_to_eas(&lines, EasVersion::V14_1, &opts()),
        Err(Error::TooLarge("lines"))
    );
    let card = format!("BEGIN:VCARD\r\nVERSION:3.0\r\n{many}END:VCARD\r\n");
    assert_eq!(
        vcard_to_eas(&card, EasVersion::V14_1, &opts()),
        Err(Error::TooLarge("lines"))
    );
    // Deep nesting of components the RFC leaves open (X- components).
    let open: String = (0..20).map(|i| format!("BEGIN:X-C{i}\r\n")).collect();
    let close: String = (0..20).rev().map(|i| format!("END:X-C{i}\r\n")).collect();
    let deep = format!(
        "BEGIN:VCALENDAR\r\n{open}{close}BEGIN:VEVENT\r\nUID:d@x\r\nDTSTART:20260301T090000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    );
    assert_eq!(
        event_to_eas(&deep, EasVersion::V14_1, &opts()),
        Err(Error::TooLarge("nesting"))
    );
}

/// A Change that carries only some fields keeps all the object holds
/// beyond the item: alarms without a Reminder, overrides without
/// Exceptions, X- properties, other components.
#[test]
fn change_keeps_what_the_item_does_not_carry() {
    let tzb = info_for("Europe/Berlin".parse().unwrap(), 2026).to_base64();
    let a = app(vec![
        Element::named("Calendar", "Timezone").with_text(tzb),
        Element::named("Calendar", "StartTime").with_text("20260105T080000Z"),
        Element::named("Calendar", "EndTime").with_text("20260105T093000Z"),
        Element::named("Calendar", "Subject").with_text("Longer standup"),
    ]);
    let back = eas_to_event(&a, Some(WEEKLY_BERLIN), EasVersion::V14_1, &incoming()).unwrap();
    let root = crate::model::parse_calendar(&back).unwrap();
    let events: Vec<_> = root
        .subs
        .iter()
        .filter(|s| s.kind == crate::model::Kind::VEvent)
        .collect();
    assert_eq!(events.len(), 2, "{back}");
    let master = events[0];
    assert_eq!(
        master.text(&crate::model::P::Summary),
        Some("Longer standup")
    );
    assert!(
        master
            .subs
            .iter()
            .any(|s| s.kind == crate::model::Kind::VAlarm),
        "{back}"
    );
    assert!(ical_has(&back, "X-CUSTOM-THING:keep me"));
    assert!(ical_has(&back, "ATTACH:https://example.org/agenda.pdf"));
    assert!(ical_has(
        &back,
        "RECURRENCE-ID;TZID=Europe/Berlin:20260112T090000"
    ));
    assert!(ical_has(&back, "SUMMARY:Standup (moved)"));
    assert!(ical_has(&back, "DTEND;TZID=Europe/Berlin:20260105T103000"));
    // What the item read back says.
    let items = event_to_eas(&back, EasVersion::V14_1, &opts()).unwrap();
    assert_eq!(text(&items, "Calendar", "Reminder"), "15");
    assert_eq!(
        get(&items, "Calendar", "Exceptions")
            .unwrap()
            .elements()
            .count(),
        1
    );
    // Tasks: the alarm and X- properties stay when the item has no
    // ReminderSet.
    let t = app(vec![Element::named("Tasks", "Subject").with_text("Taxes")]);
    let back = eas_to_todo(&t, Some(TODO), EasVersion::V14_1, &incoming()).unwrap();
    assert!(ical_has(&back, "X-MOZ-GENERATION:3"), "{back}");
    assert!(ical_has(&back, "TRIGGER;VALUE=DATE-TIME:20260410T070000Z"));
    assert!(ical_has(&back, "SUMMARY:Taxes"));
}

fn lines_of(s: &str) -> Vec<String> {
    s.split("\r\n")
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

proptest! {
    #[test]
    fn random_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..600)) {
        let s = String::from_utf8_lossy(&b);
        let a = app(vec![Element::named("Calendar", "StartTime").with_text("20260301T090000Z")]);
        for text in [
            s.to_string(),
            format!("BEGIN:VCALENDAR\r\n{s}\r\nEND:VCALENDAR\r\n"),
            format!("BEGIN:VCALENDAR\r\nBEGIN:VTODO\r\n{s}\r\nEND:VTODO\r\nEND:VCALENDAR\r\n"),
            format!("BEGIN:VCARD\r\nVERSION:3.0\r\n{s}\r\nEND:VCARD\r\n"),
        ] {
            let _ = event_to_eas(&text, EasVersion::V16_1, &opts());
            let _ = todo_to_eas(&text, EasVersion::V14_1, &opts());
            let _ = vcard_to_eas(&text, EasVersion::V14_1, &opts());
            if let Ok(x) = eas_to_event(&a, Some(&text), EasVersion::V14_1, &incoming()) {
                event_to_eas(&x, EasVersion::V14_1, &opts()).unwrap();
            }
            if let Ok(x) = eas_to_todo(&app(vec![]), Some(&text), EasVersion::V14_1, &incoming()) {
                todo_to_eas(&x, EasVersion::V14_1, &opts()).unwrap();
            }
            if let Ok(x) = eas_to_vcard(&app(vec![]), Some(&text), EasVersion::V14_1, "u") {
                vcard_to_eas(&x, EasVersion::V14_1, &opts()).unwrap();
            }
        }
    }

    /// Real objects with lines dropped, repeated or moved (BEGIN/END among
    /// them, so any nesting): an error or a result, never a panic, and a
    /// Change merged into one that reads gives an object that reads.
    #[test]
    fn shuffled_lines_never_panic(
        which in 0..4usize,
        edits in prop::collection::vec((0..3u8, any::<prop::sample::Index>(), any::<prop::sample::Index>()), 1..6),
    ) {
        let src = [WEEKLY_BERLIN, TODO, APPLE, THUNDERBIRD][which];
        let mut lines = lines_of(src);
        for (op, i, j) in edits {
            if lines.is_empty() {
                break;
            }
            let (i, j) = (i.index(lines.len()), j.index(lines.len()));
            match op {
                0 => {
                    lines.remove(i);
                }
                1 => {
                    let l = lines[i].clone();
                    lines.insert(j, l);
                }
                _ => lines.swap(i, j),
            }
        }
        let text: String = lines.iter().map(|l| format!("{l}\r\n")).collect();
        let a = app(vec![Element::named("Calendar", "StartTime").with_text("20260301T090000Z")]);
        let _ = event_to_eas(&text, EasVersion::V14_1, &opts());
        let _ = todo_to_eas(&text, EasVersion::V14_1, &opts());
        let _ = vcard_to_eas(&text, EasVersion::V14_1, &opts());
        if let Ok(x) = eas_to_event(&a, Some(&text), EasVersion::V16_1, &incoming()) {
            event_to_eas(&x, EasVersion::V16_1, &opts()).unwrap();
        }
        if let Ok(x) = eas_to_todo(&app(vec![]), Some(&text), EasVersion::V14_1, &incoming()) {
            todo_to_eas(&x, EasVersion::V14_1, &opts()).unwrap();
        }
        if let Ok(x) = eas_to_vcard(&app(vec![]), Some(&text), EasVersion::V14_1, "u") {
            vcard_to_eas(&x, EasVersion::V14_1, &opts()).unwrap();
        }
    }
}
