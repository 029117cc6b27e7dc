//! Splitting a file of many calendar objects or contacts (an export, a
//! `.ics` subscription, a `.vcf` address book) into what a store holds one
//! per resource.

use calcard::icalendar::{
    ICalendar, ICalendarComponent, ICalendarComponentType, ICalendarProperty,
};
use calcard::{Entry, Parser};

use crate::main_kind;

/// One piece of a split file, or why a piece was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// One object (one VCALENDAR with one UID and the VTIMEZONEs it
    /// references; or one vCard), its UID and its text.
    Object { uid: String, text: String },
    /// Something not taken, with the reason.
    Skipped(String),
}

fn copy_component(src: &ICalendar, id: u32, dst: &mut ICalendar, depth: usize) -> Option<u32> {
    let c = src.components.get(id as usize)?;
    let new_id = dst.components.len() as u32;
    dst.components.push(ICalendarComponent {
        component_type: c.component_type.clone(),
        entries: c.entries.clone(),
        component_ids: Vec::new(),
    });
    if depth < 8 {
        for &child in &c.component_ids {
            if let Some(n) = copy_component(src, child, dst, depth + 1) {
                dst.components[new_id as usize].component_ids.push(n);
            }
        }
    }
    Some(new_id)
}

/// Splits iCalendar text (one or more VCALENDARs) into one VCALENDAR per
/// UID. METHOD is dropped (it is not allowed in a stored object);
/// VTIMEZONEs go with the objects that reference them.
pub fn split_icalendar(text: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut parser = Parser::new(text);
    loop {
        let ical = match parser.entry() {
            Entry::ICalendar(i) => i,
            Entry::Eof => break,
            Entry::VCard(_) => {
                out.push(Piece::Skipped("a vCard in an iCalendar file".into()));
                continue;
            }
            Entry::InvalidLine(l) => {
                let l: String = l.chars().take(60).collect();
                out.push(Piece::Skipped(format!("invalid line {l:?}")));
                continue;
            }
            other => {
                out.push(Piece::Skipped(crate::entry_error(other).to_string()));
                break;
            }
        };
        let Some(root) = ical.components.first() else {
            continue;
        };
        let mut order: Vec<String> = Vec::new();
        let mut by_uid: std::collections::BTreeMap<String, Vec<u32>> = Default::default();
        let mut zones: Vec<(String, u32)> = Vec::new();
        for &id in &root.component_ids {
            let Some(c) = ical.components.get(id as usize) else {
                continue;
            };
            match &c.component_type {
                ICalendarComponentType::VTimezone => {
                    if let Some(tzid) = c
                        .property(&ICalendarProperty::Tzid)
                        .and_then(|e| e.values.first())
                        .and_then(|v| v.as_text())
                    {
                        zones.push((tzid.to_string(), id));
                    }
                }
                t if main_kind(t).is_some() => {
                    match c.uid().map(str::trim).filter(|u| !u.is_empty()) {
                        Some(uid) => {
                            if !by_uid.contains_key(uid) {
                                order.push(uid.to_string());
                            }
                            by_uid.entry(uid.to_string()).or_default().push(id);
                        }
                        None => out.push(Piece::Skipped(format!("a {} without UID", t.as_str()))),
                    }
                }
                t => out.push(Piece::Skipped(format!(
                    "component {} is not stored",
                    t.as_str()
                ))),
            }
        }
        for uid in order {
            let ids = &by_uid[&uid];
            let mut dst = ICalendar::default();
            dst.components.push(ICalendarComponent {
                component_type: ICalendarComponentType::VCalendar,
                entries: root
                    .entries
                    .iter()
                    .filter(|e| e.name != ICalendarProperty::Method)
                    .cloned()
                    .collect(),
                component_ids: Vec::new(),
            });
            let used: Vec<&str> = ids
                .iter()
                .filter_map(|&i| ical.components.get(i as usize))
                .flat_map(|c| c.entries.iter().filter_map(|e| e.tz_id()))
                .collect();
            let mut children = Vec::new();
            for (tzid, zid) in &zones {
                if used.contains(&tzid.as_str()) {
                    children.extend(copy_component(&ical, *zid, &mut dst, 0));
                }
            }
            for &i in ids {
                children.extend(copy_component(&ical, i, &mut dst, 0));
            }
            dst.components[0].component_ids = children;
            out.push(Piece::Object {
                uid,
                text: dst.to_string(),
            });
        }
    }
    out
}

/// Splits vCard text into one vCard each.
pub fn split_vcards(text: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut parser = Parser::new(text);
    loop {
        match parser.entry() {
            Entry::VCard(card) => match card.uid().map(str::trim).filter(|u| !u.is_empty()) {
                Some(uid) => out.push(Piece::Object {
                    uid: uid.to_string(),
                    text: card.to_string(),
                }),
                None => {
                    let name = card
                        .property(&calcard::vcard::VCardProperty::Fn)
                        .and_then(|e| e.values.first())
                        .and_then(|v| v.as_text())
                        .unwrap_or("")
                        .to_string();
                    out.push(Piece::Skipped(format!("vCard {name:?} has no UID")));
                }
            },
            Entry::Eof => break,
            Entry::ICalendar(_) => out.push(Piece::Skipped("iCalendar in a vCard file".into())),
            Entry::InvalidLine(l) => {
                let l: String = l.chars().take(60).collect();
                out.push(Piece::Skipped(format!("invalid line {l:?}")));
            }
            other => {
                out.push(Piece::Skipped(crate::entry_error(other).to_string()));
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ingest_icalendar, ingest_vcard, utc, IngestOptions, Limits};

    #[test]
    fn export_splits_by_uid_with_its_timezones() {
        let text = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nMETHOD:PUBLISH\r\n\
BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n\
BEGIN:VTIMEZONE\r\nTZID:America/New_York\r\nBEGIN:STANDARD\r\nDTSTART:19701101T020000\r\nTZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n\
BEGIN:VEVENT\r\nUID:one\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;TZID=Europe/Berlin:20260105T100000\r\nRRULE:FREQ=DAILY;COUNT=3\r\n\
BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT5M\r\nDESCRIPTION:x\r\nEND:VALARM\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:two\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260106T100000Z\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:one\r\nRECURRENCE-ID;TZID=Europe/Berlin:20260106T100000\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;TZID=Europe/Berlin:20260106T120000\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260106T100000Z\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n";
        let pieces = split_icalendar(text);
        let objects: Vec<(&str, &str)> = pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Object { uid, text } => Some((uid.as_str(), text.as_str())),
                _ => None,
            })
            .collect();
        assert_eq!(objects.len(), 2);
        let (uid, one) = objects[0];
        assert_eq!(uid, "one");
        assert!(one.contains("TZID:Europe/Berlin"));
        assert!(!one.contains("America/New_York"));
        assert!(!one.contains("METHOD"));
        assert!(one.contains("BEGIN:VALARM"));
        let mut opts = IngestOptions::new(utc(2026, 1, 1, 0, 0, 0));
        opts.limits = Limits::default();
        let o = ingest_icalendar(one.as_bytes(), &opts).unwrap();
        assert_eq!(o.index.instances.len(), 3);
        assert!(o
            .index
            .instances
            .iter()
            .any(|i| i.start == utc(2026, 1, 6, 11, 0, 0)));
        let two = ingest_icalendar(objects[1].1.as_bytes(), &opts).unwrap();
        assert_eq!(two.index.uid, "two");
        assert!(pieces
            .iter()
            .any(|p| matches!(p, Piece::Skipped(r) if r.contains("without UID"))));
    }

    #[test]
    fn vcf_splits_per_card() {
        let text = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:a\r\nFN:A\r\nEND:VCARD\r\nBEGIN:VCARD\r\nVERSION:3.0\r\nFN:No Uid\r\nEND:VCARD\r\nBEGIN:VCARD\r\nVERSION:4.0\r\nUID:b\r\nFN:B\r\nEND:VCARD\r\n";
        let p = split_vcards(text);
        assert_eq!(p.len(), 3);
        let Piece::Object { uid, text } = &p[0] else {
            panic!()
        };
        assert_eq!(uid, "a");
        assert_eq!(
            ingest_vcard(text.as_bytes(), &Limits::default())
                .unwrap()
                .uid,
            "a"
        );
        assert!(matches!(&p[1], Piece::Skipped(r) if r.contains("No Uid")));
    }
}

/// Joins stored calendar objects into one VCALENDAR (an export): their
/// components in order, each VTIMEZONE once. Objects that do not parse
/// are left out and counted.
pub fn join_icalendar(objects: &[&str]) -> (String, usize) {
    let mut dst = ICalendar::default();
    dst.components.push(ICalendarComponent {
        component_type: ICalendarComponentType::VCalendar,
        entries: Vec::new(),
        component_ids: Vec::new(),
    });
    let mut zones: Vec<String> = Vec::new();
    let mut children = Vec::new();
    let mut bad = 0;
    let mut head_set = false;
    for text in objects {
        let Ok(ical) = ICalendar::parse(text) else {
            bad += 1;
            continue;
        };
        let Some(root) = ical.components.first() else {
            continue;
        };
        if !head_set {
            dst.components[0].entries = root
                .entries
                .iter()
                .filter(|e| e.name != ICalendarProperty::Method)
                .cloned()
                .collect();
            head_set = true;
        }
        for &id in &root.component_ids {
            let Some(c) = ical.components.get(id as usize) else {
                continue;
            };
            if c.component_type == ICalendarComponentType::VTimezone {
                let tzid = c
                    .property(&ICalendarProperty::Tzid)
                    .and_then(|e| e.values.first())
                    .and_then(|v| v.as_text())
                    .unwrap_or("")
                    .to_string();
                if zones.contains(&tzid) {
                    continue;
                }
                zones.push(tzid);
            }
            children.extend(copy_component(&ical, id, &mut dst, 0));
        }
    }
    dst.components[0].component_ids = children;
    (dst.to_string(), bad)
}

#[cfg(test)]
mod join_tests {
    use super::*;

    #[test]
    fn join_then_split_round_trips() {
        let a = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\nBEGIN:VEVENT\r\nUID:a\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;TZID=Europe/Berlin:20260105T100000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let b = a.replace("UID:a", "UID:b");
        let (joined, bad) = join_icalendar(&[a, &b, "garbage"]);
        assert_eq!(bad, 1);
        assert_eq!(joined.matches("BEGIN:VTIMEZONE").count(), 1);
        assert_eq!(joined.matches("BEGIN:VEVENT").count(), 2);
        let back = split_icalendar(&joined);
        let uids: Vec<&str> = back
            .iter()
            .filter_map(|p| match p {
                Piece::Object { uid, .. } => Some(uid.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(uids, vec!["a", "b"]);
    }
}
