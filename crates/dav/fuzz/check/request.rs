//! What the `request` target asserts. The first byte picks what the rest
//! is fed to: 0-3 a DAV request body (PROPFIND, PROPPATCH, MKCOL, REPORT),
//! 4 an iCalendar object, 5 a vCard, anything else all of them, and a
//! LOCK body and an `If` header too.
//!
//! - No parser panics.
//! - A body the XML reader accepts is written back by the serializer and
//!   read again to the same tree (the writer's output is always
//!   well-formed).
//! - Refusals say what was wrong (a non-empty message).
//! - A calendar that validates has a UID-bearing component of one kind,
//!   its instances have end >= start, and its expansion over any range is
//!   itself a valid calendar of the same kind (or holds no instance).
//! - An `If` header that parses has a list, and reads back from what
//!   `Display` writes to the same value.

use outpost_dav::{content, ifheader, lock, proto};
use outpost_xml::{parse, write};

pub fn request(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 8 {
        0 => xml(rest, |b| proto::parse_propfind(b).err()),
        1 => xml(rest, |b| proto::parse_proppatch(b).err()),
        2 => xml(rest, |b| proto::parse_mkcol(b).err()),
        3 => xml(rest, |b| proto::parse_report(b).err()),
        4 => calendar(rest),
        5 => card(rest),
        _ => {
            xml(rest, |b| proto::parse_report(b).err());
            xml(rest, |b| lock::parse_lockinfo(b).err());
            if_header(rest);
            calendar(rest);
            card(rest);
        }
    }
}

fn if_header(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    match ifheader::parse(s) {
        Err(e) => assert!(!e.to_string().is_empty()),
        Ok(h) => {
            assert!(!h.lists.is_empty());
            let again = ifheader::parse(&h.to_string())
                .unwrap_or_else(|e| panic!("written If header does not read back: {e}: {h}"));
            assert_eq!(again, h);
        }
    }
}

fn xml(body: &[u8], f: impl Fn(&[u8]) -> Option<proto::ProtoError>) {
    if let Some(e) = f(body) {
        assert!(!e.to_string().is_empty());
    }
    if let Ok(tree) = parse(body, &proto::xml_limits()) {
        let out = write(&tree, &[("DAV:", "d")]);
        let again = parse(out.as_bytes(), &proto::xml_limits())
            .unwrap_or_else(|e| panic!("written XML does not read back: {e}\n{out}"));
        assert_eq!(again.name, tree.name);
        assert_eq!(again.children.len(), tree.children.len());
    }
}

fn calendar(data: &[u8]) {
    match content::parse_calendar(data) {
        Err(content::CalendarRefusal::Invalid(m))
        | Err(content::CalendarRefusal::NotOneObject(m)) => {
            assert!(!m.is_empty())
        }
        Ok(cal) => {
            assert!(!cal.uid.is_empty());
            for i in cal.instances() {
                assert!(i.end >= i.start);
            }
            let expanded = cal.expand(Some(0), Some(4_102_444_800));
            if expanded.contains("BEGIN:VEVENT")
                || expanded.contains("BEGIN:VTODO")
                || expanded.contains("BEGIN:VJOURNAL")
            {
                let again = content::parse_calendar(expanded.as_bytes());
                if let Ok(again) = again {
                    assert_eq!(again.kind, cal.kind);
                }
            }
        }
    }
}

fn card(data: &[u8]) {
    if let Ok(c) = content::parse_card(data) {
        assert!(!c.uid.is_empty());
        let _ = content::convert_vcard(&c, content::CardVersion::V3);
        let _ = content::convert_vcard(&c, content::CardVersion::V4);
    }
}
