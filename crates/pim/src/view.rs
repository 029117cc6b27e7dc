//! What protocols read of a parsed object besides its index: the
//! component/property tree CalDAV and CardDAV filters test
//! ([`Comp`], [`Prop`]), and the rewritten objects of CalDAV's `expand` and
//! `limit-recurrence-set` (RFC 4791 §9.6.5, §9.6.6).

use calcard::icalendar::{ICalendar, ICalendarProperty};
use calcard::vcard::VCard;

use crate::{ingest_card, Timestamp, VcardVersion};
use crate::{parse_one_vcard, utf8, CalendarObject, ContactIndex, Limits, PimError, Window};

/// A property as filters see it: name (upper case, group dropped),
/// parameters, value as written (text unescaped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prop {
    pub name: String,
    pub params: Vec<(String, String)>,
    pub value: String,
}

/// A component as filters see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comp {
    pub name: String,
    /// Index in the calendar's component list: [`crate::Instance::component`]
    /// refers to it.
    pub id: u32,
    pub props: Vec<Prop>,
    pub children: Vec<Comp>,
}

/// Components nested deeper than this are left out of the tree and of
/// rewritten objects.
const MAX_DEPTH: usize = 8;

impl CalendarObject {
    /// The VCALENDAR as a tree of components and properties.
    pub fn tree(&self) -> Comp {
        comp_tree(&self.ical, 0, 0)
    }

    /// RFC 4791 §9.6.5 `expand`: every instance overlapping `window` as its
    /// own component with DTSTART/DTEND (DUE for a VTODO) in UTC and a
    /// RECURRENCE-ID when the object recurs, without RRULE/RDATE/EXDATE and
    /// without the VTIMEZONEs (nothing refers to them any more).
    pub fn write_expanded(&self, window: Window, limits: &Limits) -> Result<String, PimError> {
        use ICalendarProperty as P;
        let ical = &self.ical;
        let recurs = self.index.recurring;
        let mut out = String::from("BEGIN:VCALENDAR\r\n");
        for e in &ical.components[0].entries {
            let _ = e.write_to(&mut out);
        }
        for i in self.expand(window, limits)?.instances {
            let Some(comp) = ical.components.get(i.component as usize) else {
                continue;
            };
            let name = comp.component_type.as_str();
            out.push_str(&format!("BEGIN:{name}\r\n"));
            let own_rid = comp.entries.iter().any(|e| e.name == P::RecurrenceId);
            for e in &comp.entries {
                if matches!(
                    e.name,
                    P::Dtstart
                        | P::Dtend
                        | P::Duration
                        | P::Rrule
                        | P::Rdate
                        | P::Exdate
                        | P::Exrule
                        | P::Due
                ) || (e.name == P::RecurrenceId && !own_rid)
                {
                    continue;
                }
                let _ = e.write_to(&mut out);
            }
            out.push_str(&format!("DTSTART:{}\r\n", format_utc(i.start)));
            let end_prop = if name == "VTODO" { "DUE" } else { "DTEND" };
            if i.end > i.start || name != "VTODO" {
                out.push_str(&format!("{end_prop}:{}\r\n", format_utc(i.end)));
            }
            if recurs && !own_rid {
                out.push_str(&format!("RECURRENCE-ID:{}\r\n", format_utc(i.start)));
            }
            for &child in &comp.component_ids {
                write_component(ical, child, &mut out, 0);
            }
            out.push_str(&format!("END:{name}\r\n"));
        }
        out.push_str("END:VCALENDAR\r\n");
        Ok(out)
    }

    /// RFC 4791 §9.6.6 `limit-recurrence-set`: the object with only those
    /// overrides (components with a RECURRENCE-ID) whose instance overlaps
    /// `window`; masters, VTIMEZONEs and the rest are kept.
    pub fn write_limited(&self, window: Window, limits: &Limits) -> Result<String, PimError> {
        let ical = &self.ical;
        let insts = self.expand(window, limits)?.instances;
        let cal = &ical.components[0];
        let mut out = String::from("BEGIN:VCALENDAR\r\n");
        for e in &cal.entries {
            let _ = e.write_to(&mut out);
        }
        for &id in &cal.component_ids {
            let c = &ical.components[id as usize];
            let is_override = c.component_type.has_time_ranges()
                && c.entries
                    .iter()
                    .any(|e| e.name == ICalendarProperty::RecurrenceId);
            if is_override && !insts.iter().any(|i| i.component == id) {
                continue;
            }
            write_component(ical, id, &mut out, 0);
        }
        out.push_str("END:VCALENDAR\r\n");
        Ok(out)
    }
}

fn write_component(ical: &ICalendar, id: u32, out: &mut String, depth: usize) {
    let Some(c) = ical.components.get(id as usize) else {
        return;
    };
    if depth > MAX_DEPTH {
        return;
    }
    let name = c.component_type.as_str();
    out.push_str(&format!("BEGIN:{name}\r\n"));
    for e in &c.entries {
        let _ = e.write_to(out);
    }
    for &child in &c.component_ids {
        write_component(ical, child, out, depth + 1);
    }
    out.push_str(&format!("END:{name}\r\n"));
}

fn comp_tree(ical: &ICalendar, id: u32, depth: usize) -> Comp {
    let Some(c) = ical.components.get(id as usize) else {
        return Comp {
            name: String::new(),
            id,
            props: Vec::new(),
            children: Vec::new(),
        };
    };
    let props = c
        .entries
        .iter()
        .map(|e| {
            let mut line = String::new();
            let _ = e.write_to(&mut line);
            split_line(&line)
        })
        .collect();
    let children = if depth < MAX_DEPTH {
        c.component_ids
            .iter()
            .map(|&cid| comp_tree(ical, cid, depth + 1))
            .collect()
    } else {
        Vec::new()
    };
    Comp {
        name: c.component_type.as_str().to_string(),
        id,
        props,
        children,
    }
}

/// Splits one written content line (`NAME;P=V:VALUE`, folded) into its
/// parts; the value is unescaped for text (`\,` `\;` `\n` `\\`).
fn split_line(line: &str) -> Prop {
    let unfolded = line
        .replace("\r\n ", "")
        .replace("\r\n\t", "")
        .trim_end_matches(['\r', '\n'])
        .to_string();
    let mut in_quote = false;
    let mut colon = unfolded.len();
    for (i, ch) in unfolded.char_indices() {
        match ch {
            '"' => in_quote = !in_quote,
            ':' if !in_quote => {
                colon = i;
                break;
            }
            _ => {}
        }
    }
    let head = &unfolded[..colon];
    let value = unfolded.get(colon + 1..).unwrap_or("");
    let mut parts = head.split(';');
    let name = parts.next().unwrap_or("").to_ascii_uppercase();
    let params = parts
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((k.to_ascii_uppercase(), v.trim_matches('"').to_string()))
        })
        .collect();
    Prop {
        name,
        params,
        value: unescape_text(value),
    }
}

fn unescape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('n') | Some('N') => out.push('\n'),
                Some(o) => out.push(o),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `YYYYMMDDTHHMMSSZ`.
fn format_utc(t: Timestamp) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y%m%dT%H%M%SZ").to_string())
        .unwrap_or_default()
}

/// A parsed and validated vCard: its index, its properties for filters,
/// and the card in either version.
#[derive(Debug, Clone)]
pub struct Contact {
    card: VCard,
    pub index: ContactIndex,
}

/// Parses, validates and indexes an address object resource, keeping the
/// parsed card ([`crate::ingest_vcard`] keeps only the index).
pub fn parse_vcard(bytes: &[u8], limits: &Limits) -> Result<Contact, PimError> {
    let text = utf8(bytes, limits.max_bytes)?;
    let card = parse_one_vcard(text)?;
    let index = ingest_card(&card, limits)?;
    Ok(Contact { card, index })
}

impl Contact {
    /// Every property, as filters see it (a `group.` prefix dropped).
    pub fn props(&self) -> Vec<Prop> {
        self.card
            .entries
            .iter()
            .map(|e| {
                let mut line = String::new();
                let _ = e.write_to(&mut line, true);
                let mut p = split_line(&line);
                if let Some((_, n)) = p.name.split_once('.') {
                    p.name = n.to_string();
                }
                p
            })
            .collect()
    }

    /// The card written as `version`.
    pub fn write(&self, version: VcardVersion) -> String {
        let mut out = String::new();
        let _ = self.card.write_to(&mut out, version.to_calcard());
        out
    }
}
