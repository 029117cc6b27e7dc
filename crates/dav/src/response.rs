//! Multistatus and error bodies as [`Element`] trees, serialized by
//! `outpost_xml::write` (never by string concatenation). No I/O.

use outpost_xml::{write, Element, Name};

use crate::proto::{APPLE, CALDAV, CARDDAV, CS, DAV};

pub const PREFIXES: &[(&str, &str)] = &[
    (DAV, "d"),
    (CALDAV, "cal"),
    (CARDDAV, "card"),
    (CS, "cs"),
    (APPLE, "ical"),
];

pub fn to_xml(root: &Element) -> String {
    write(root, PREFIXES)
}

pub fn status_line(code: u16) -> String {
    let reason = match code {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        412 => "Precondition Failed",
        424 => "Failed Dependency",
        507 => "Insufficient Storage",
        _ => "Error",
    };
    format!("HTTP/1.1 {code} {reason}")
}

pub fn dav(local: &str) -> Element {
    Element::new(DAV, local)
}

pub fn href(h: &str) -> Element {
    dav("href").with_text(h)
}

/// One `<d:response>` with a propstat per status.
pub fn prop_response(h: &str, groups: Vec<(u16, Vec<Element>)>) -> Element {
    let mut r = dav("response").with(href(h));
    for (code, props) in groups {
        if props.is_empty() {
            continue;
        }
        let mut prop = dav("prop");
        for p in props {
            prop.push(p);
        }
        r.push(
            dav("propstat")
                .with(prop)
                .with(dav("status").with_text(status_line(code))),
        );
    }
    r
}

/// A `<d:response>` with a bare status (a sync tombstone, a multiget miss).
pub fn status_response(h: &str, code: u16) -> Element {
    dav("response")
        .with(href(h))
        .with(dav("status").with_text(status_line(code)))
}

pub fn multistatus(responses: Vec<Element>, sync_token: Option<String>) -> Element {
    let mut ms = dav("multistatus");
    for r in responses {
        ms.push(r);
    }
    if let Some(t) = sync_token {
        ms.push(dav("sync-token").with_text(t));
    }
    ms
}

/// `<d:error><ns:cond/></d:error>`, optionally with children in the
/// condition (e.g. the href of a conflicting resource).
pub fn error_body(ns: &str, cond: &str, inner: Vec<Element>) -> String {
    let mut c = Element::new(ns, cond);
    for i in inner {
        c.push(i);
    }
    to_xml(&dav("error").with(c))
}

/// Namespace of Outpost's own elements in error bodies.
pub const OUTPOST_NS: &str = "urn:x-outpost:dav";

/// `<d:error>` with the precondition and an `<o:message>` saying what was
/// wrong, for clients and logs (the condition is what clients act on).
pub fn error_message_body(ns: &str, cond: &str, message: &str) -> String {
    to_xml(
        &dav("error")
            .with(Element::new(ns, cond))
            .with(Element::new(OUTPOST_NS, "message").with_text(message)),
    )
}

/// An empty element of the property's name (for 404 propstats and propname).
pub fn empty(name: &Name) -> Element {
    Element::new(&name.ns, &name.local)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever hrefs and property values hold, the multistatus reads
        /// back with the same hrefs, texts and statuses.
        #[test]
        fn multistatus_round_trips(
            rows in proptest::collection::vec(("\\PC{0,30}", "\\PC{0,40}", prop_oneof![Just(200u16), Just(404), Just(403)]), 0..8),
            token in proptest::option::of("\\PC{0,20}"),
        ) {
            let responses = rows
                .iter()
                .map(|(h, v, code)| prop_response(h, vec![(*code, vec![dav("displayname").with_text(v.clone())])]))
                .collect();
            let s = to_xml(&multistatus(responses, token.clone()));
            let back = outpost_xml::parse(s.as_bytes(), &Default::default()).unwrap();
            let got: Vec<_> = back.children_named(DAV, "response").collect();
            prop_assert_eq!(got.len(), rows.len());
            for (r, (h, v, code)) in got.iter().zip(&rows) {
                let clean = |x: &str| x.chars().filter(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r')).collect::<String>();
                prop_assert_eq!(&r.child(DAV, "href").unwrap().text, &clean(h));
                let ps = r.child(DAV, "propstat").unwrap();
                prop_assert_eq!(&ps.child(DAV, "prop").unwrap().child(DAV, "displayname").unwrap().text, &clean(v));
                prop_assert_eq!(&ps.child(DAV, "status").unwrap().text, &status_line(*code));
            }
            prop_assert_eq!(back.child(DAV, "sync-token").map(|t| t.text.clone()), token.map(|t| t.chars().filter(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r')).collect::<String>()));
        }
    }

    #[test]
    fn multistatus_is_well_formed_and_escaped() {
        let r = prop_response(
            "/dav/calendars/a@b/x&y/",
            vec![
                (200, vec![dav("displayname").with_text("<Work & play>")]),
                (404, vec![Element::new(CS, "getctag")]),
                (403, vec![]),
            ],
        );
        let s = to_xml(&multistatus(
            vec![r, status_response("/gone", 404)],
            Some("t:1".into()),
        ));
        let back = outpost_xml::parse(s.as_bytes(), &Default::default()).unwrap();
        assert!(back.is(DAV, "multistatus"));
        assert_eq!(back.children.len(), 3);
        let r = &back.children[0];
        assert_eq!(
            r.child(DAV, "href").unwrap().text,
            "/dav/calendars/a@b/x&y/"
        );
        assert_eq!(r.children_named(DAV, "propstat").count(), 2);
        assert!(s.contains("&lt;Work &amp; play&gt;"));
        assert!(s.contains("HTTP/1.1 404 Not Found"));
    }
}
