use super::*;
use proptest::prelude::*;

#[test]
fn utc_times() {
    assert_eq!(parse_utc("19700101T000000Z"), Some(0));
    assert_eq!(parse_utc("20260105T100000Z"), Some(1_767_607_200));
    assert_eq!(format_utc(1_767_607_200), "20260105T100000Z");
    for bad in [
        "20260105T100000",
        "2026-01-05T10:00:00Z",
        "20261305T100000Z",
        "20260105T250000Z",
        "2026010aT100000Z",
        "",
    ] {
        assert_eq!(parse_utc(bad), None, "{bad}");
    }
}

#[test]
fn propfind_forms() {
    assert_eq!(parse_propfind(b"").unwrap(), PropRequest::AllProp);
    assert_eq!(
        parse_propfind(br#"<propfind xmlns="DAV:"><propname/></propfind>"#).unwrap(),
        PropRequest::PropName
    );
    let PropRequest::Prop(p) = parse_propfind(br#"<d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><d:getetag/><c:calendar-data/></d:prop></d:propfind>"#).unwrap() else { panic!() };
    assert_eq!(p.len(), 2);
    assert!(parse_propfind(br#"<d:x xmlns:d="DAV:"/>"#).is_err());
    assert!(parse_propfind(br#"<d:propfind xmlns:d="DAV:"/>"#).is_err());
}

#[test]
fn calendar_query_filter_tree() {
    let body = br#"<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><d:getetag/></d:prop>
      <c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="vevent">
        <c:time-range start="20260101T000000Z" end="20260201T000000Z"/>
        <c:prop-filter name="ATTENDEE"><c:text-match negate-condition="yes">bob</c:text-match>
          <c:param-filter name="PARTSTAT"><c:text-match>ACCEPTED</c:text-match></c:param-filter></c:prop-filter>
      </c:comp-filter></c:comp-filter></c:filter></c:calendar-query>"#;
    let Report::CalendarQuery { filter, .. } = parse_report(body).unwrap() else {
        panic!()
    };
    let ev = &filter.comps[0];
    assert_eq!(ev.name, "VEVENT");
    assert_eq!(
        ev.time_range,
        Some(TimeRange {
            start: parse_utc("20260101T000000Z"),
            end: parse_utc("20260201T000000Z")
        })
    );
    assert!(ev.props[0].text_matches[0].negate);
    assert_eq!(ev.props[0].params[0].name, "PARTSTAT");
    // An empty or inverted range is refused.
    let bad = br#"<c:calendar-query xmlns:c="urn:ietf:params:xml:ns:caldav"><c:filter><c:comp-filter name="VCALENDAR"><c:time-range start="20260201T000000Z" end="20260101T000000Z"/></c:comp-filter></c:filter></c:calendar-query>"#;
    assert!(parse_report(bad).is_err());
}

#[test]
fn sync_collection_and_limits() {
    let body = br#"<d:sync-collection xmlns:d="DAV:"><d:sync-token>t</d:sync-token><d:sync-level>1</d:sync-level><d:limit><d:nresults>10</d:nresults></d:limit><d:prop><d:getetag/></d:prop></d:sync-collection>"#;
    let Report::SyncCollection { token, limit, .. } = parse_report(body).unwrap() else {
        panic!()
    };
    assert_eq!((token.as_str(), limit), ("t", Some(10)));
    let inf = br#"<d:sync-collection xmlns:d="DAV:"><d:sync-token/><d:sync-level>infinite</d:sync-level></d:sync-collection>"#;
    assert!(parse_report(inf).is_err());
}

#[test]
fn text_match_collations() {
    let tm = |c, m, t: &str| TextMatch {
        text: t.into(),
        collation: c,
        negate: false,
        match_type: m,
    };
    assert!(tm(Collation::UnicodeCasemap, MatchType::Contains, "ÜLL").matches("Müller"));
    assert!(!tm(Collation::AsciiCasemap, MatchType::Contains, "ÜLL").matches("Müller"));
    assert!(tm(Collation::AsciiCasemap, MatchType::Equals, "ANN").matches("ann"));
    assert!(tm(Collation::Octet, MatchType::EndsWith, "nn").matches("Ann"));
    assert!(!tm(Collation::Octet, MatchType::StartsWith, "a").matches("Ann"));
}

proptest! {
    #[test]
    fn report_parsing_never_panics(input in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse_report(&input);
        let _ = parse_propfind(&input);
        let _ = parse_proppatch(&input);
        let _ = parse_mkcol(&input);
    }

    #[test]
    fn report_parsing_never_panics_on_dav_shapes(
        names in proptest::collection::vec(prop_oneof![
            Just("c:calendar-query"), Just("c:filter"), Just("c:comp-filter"), Just("c:prop-filter"),
            Just("c:time-range"), Just("c:text-match"), Just("d:sync-collection"), Just("d:limit"), Just("d:nresults")
        ], 1..8),
        attr in "[a-zA-Z0-9 ;:]{0,20}",
    ) {
        let mut s = String::new();
        for (i, n) in names.iter().enumerate() {
            if i == 0 {
                s.push_str(&format!("<{n} xmlns:d=\"DAV:\" xmlns:c=\"urn:ietf:params:xml:ns:caldav\" name=\"{attr}\" start=\"{attr}\">"));
            } else {
                s.push_str(&format!("<{n} name=\"{attr}\" start=\"{attr}\">{attr}"));
            }
        }
        for n in names.iter().rev() {
            s.push_str(&format!("</{n}>"));
        }
        let _ = parse_report(s.as_bytes());
    }

    #[test]
    fn utc_round_trip(t in -62_000_000_000i64..250_000_000_000i64) {
        let s = format_utc(t);
        if s.len() == 16 {
            prop_assert_eq!(parse_utc(&s), Some(t));
        }
    }
}
