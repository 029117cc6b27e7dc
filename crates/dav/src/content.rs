//! The one place this crate touches calcard: parsing iCalendar and vCard
//! for validation, filters and instance times, and vCard version
//! conversion. The store's ingest (index, instances) is `outpost_pim`'s;
//! [`convert_vcard`] is to be replaced by `outpost_pim::convert_vcard` when
//! that lands.

use calcard::common::timezone::Tz;
use calcard::icalendar::dates::TimeOrDelta;
use calcard::icalendar::{ICalendar, ICalendarComponentType};
use calcard::vcard::{VCard, VCardVersion};

use crate::store::ComponentKind;

/// Instances expanded per object at most when checking a time range.
const MAX_INSTANCES: usize = 5000;

/// A property as filters see it: name, parameters, value (as written).
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
    /// Index in the calendar's component list (calcard's comp_id).
    pub id: u32,
    pub props: Vec<Prop>,
    pub children: Vec<Comp>,
}

/// A parsed, validated calendar object resource.
pub struct Calendar {
    pub ical: ICalendar,
    /// What floating times and all-day dates are read in: the collection's
    /// `calendar-timezone` when it names one ([`Calendar::with_timezone`]),
    /// else UTC.
    pub default_tz: Tz,
    pub uid: String,
    pub kind: ComponentKind,
    pub root: Comp,
}

/// Why a calendar object was refused (CALDAV:valid-calendar-data and
/// friends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CalendarRefusal {
    /// Not iCalendar at all, or broken.
    Invalid(String),
    /// No VEVENT/VTODO/VJOURNAL, or several kinds or UIDs
    /// (CALDAV:valid-calendar-object-resource).
    NotOneObject(String),
}

pub fn parse_calendar(data: &[u8]) -> Result<Calendar, CalendarRefusal> {
    let text =
        std::str::from_utf8(data).map_err(|_| CalendarRefusal::Invalid("not UTF-8".into()))?;
    let trimmed = text.trim();
    let head = trimmed.get(..15).unwrap_or("");
    let tail = trimmed
        .get(trimmed.len().saturating_sub(13)..)
        .unwrap_or("");
    if !head.eq_ignore_ascii_case("BEGIN:VCALENDAR") || !tail.eq_ignore_ascii_case("END:VCALENDAR")
    {
        return Err(CalendarRefusal::Invalid(
            "not one VCALENDAR from BEGIN to END".into(),
        ));
    }
    let ical = ICalendar::parse(text).map_err(|e| CalendarRefusal::Invalid(format!("{e:?}")))?;
    let first = ical
        .components
        .first()
        .ok_or_else(|| CalendarRefusal::Invalid("no VCALENDAR".into()))?;
    if first.component_type != ICalendarComponentType::VCalendar {
        return Err(CalendarRefusal::Invalid("not a VCALENDAR".into()));
    }
    let mut kind = None;
    let mut uid: Option<String> = None;
    for &cid in &first.component_ids {
        let c = &ical.components[cid as usize];
        let k = match c.component_type {
            ICalendarComponentType::VEvent => ComponentKind::VEvent,
            ICalendarComponentType::VTodo => ComponentKind::VTodo,
            ICalendarComponentType::VJournal => ComponentKind::VJournal,
            _ => continue,
        };
        if kind.is_some_and(|x| x != k) {
            return Err(CalendarRefusal::NotOneObject(
                "more than one component kind".into(),
            ));
        }
        kind = Some(k);
        let u = c
            .uid()
            .ok_or_else(|| CalendarRefusal::NotOneObject("a component without UID".into()))?;
        if uid.as_deref().is_some_and(|x| x != u) {
            return Err(CalendarRefusal::NotOneObject("more than one UID".into()));
        }
        uid = Some(u.to_string());
    }
    let kind =
        kind.ok_or_else(|| CalendarRefusal::NotOneObject("no VEVENT, VTODO or VJOURNAL".into()))?;
    let root = comp_tree(&ical, 0, 0);
    Ok(Calendar {
        default_tz: Tz::UTC,
        uid: uid.unwrap_or_default(),
        kind,
        root,
        ical,
    })
}

fn comp_tree(ical: &ICalendar, id: u32, depth: usize) -> Comp {
    let c = &ical.components[id as usize];
    let props = c
        .entries
        .iter()
        .map(|e| {
            let mut line = String::new();
            let _ = e.write_to(&mut line);
            split_line(&line)
        })
        .collect();
    let children = if depth < 8 {
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

/// One expanded instance: component id, start and end in UTC seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instance {
    pub comp: u32,
    pub start: i64,
    pub end: i64,
}

/// The time zone of a `calendar-timezone` value (a VCALENDAR with one
/// VTIMEZONE), when calcard knows its TZID.
pub fn timezone_of(vcalendar: &str) -> Option<Tz> {
    let cal = ICalendar::parse(vcalendar).ok()?;
    let tz = cal.timezones().find_map(|c| c.timezone().map(|(_, tz)| tz));
    tz
}

impl Calendar {
    /// Reads floating times in the collection's time zone (RFC 4791
    /// §7.3), when `calendar_timezone` is set and known.
    pub fn with_timezone(mut self, calendar_timezone: Option<&str>) -> Calendar {
        if let Some(tz) = calendar_timezone.and_then(timezone_of) {
            self.default_tz = tz;
        }
        self
    }

    /// Every instance (recurrences expanded, exceptions at their own
    /// DTSTART), floating times in [`Calendar::default_tz`].
    pub fn instances(&self) -> Vec<Instance> {
        // calcard pairs an override with its master only when their
        // SEQUENCE values agree; clients bump SEQUENCE on the override alone,
        // and the master's instance would then stay. One resource holds one
        // UID, so SEQUENCE is dropped from a copy before expanding.
        use calcard::icalendar::ICalendarProperty as P;
        let has = |p: &P| {
            self.ical
                .components
                .iter()
                .any(|c| c.entries.iter().any(|e| &e.name == p))
        };
        let stripped;
        let ical = if has(&P::Sequence) && has(&P::RecurrenceId) {
            let mut copy = self.ical.clone();
            for c in &mut copy.components {
                c.entries.retain(|e| e.name != P::Sequence);
            }
            stripped = copy;
            &stripped
        } else {
            &self.ical
        };
        let exp = ical.expand_dates(self.default_tz, MAX_INSTANCES);
        exp.events
            .iter()
            .map(|ev| {
                let start = ev.start.timestamp();
                let end = match &ev.end {
                    TimeOrDelta::Time(t) => t.timestamp(),
                    TimeOrDelta::Delta(d) => start + d.num_seconds(),
                };
                Instance {
                    comp: ev.comp_id,
                    start,
                    end: end.max(start),
                }
            })
            .collect()
    }

    /// RFC 4791 §9.6.5 `expand`: every instance overlapping the range as
    /// its own component with DTSTART/DTEND in UTC and a RECURRENCE-ID (when
    /// the object recurs), without RRULE/RDATE/EXDATE and without the
    /// VTIMEZONEs (nothing refers to them any more).
    pub fn expand(&self, start: Option<i64>, end: Option<i64>) -> String {
        use calcard::icalendar::ICalendarProperty as P;
        let recurs = self.root.children.iter().any(|c| {
            c.props
                .iter()
                .any(|p| matches!(p.name.as_str(), "RRULE" | "RDATE" | "RECURRENCE-ID"))
        });
        let mut out = String::from("BEGIN:VCALENDAR\r\n");
        let cal = &self.ical.components[0];
        for e in &cal.entries {
            let _ = e.write_to(&mut out);
        }
        let mut insts = self.instances();
        insts.sort_by_key(|i| i.start);
        for i in insts
            .iter()
            .filter(|i| overlaps(i.start, i.end, start, end))
        {
            let comp = &self.ical.components[i.comp as usize];
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
            out.push_str(&format!(
                "DTSTART:{}\r\n",
                crate::proto::format_utc(i.start)
            ));
            let end_prop = if name == "VTODO" { "DUE" } else { "DTEND" };
            if i.end > i.start || name != "VTODO" {
                out.push_str(&format!(
                    "{end_prop}:{}\r\n",
                    crate::proto::format_utc(i.end)
                ));
            }
            if recurs && !own_rid {
                out.push_str(&format!(
                    "RECURRENCE-ID:{}\r\n",
                    crate::proto::format_utc(i.start)
                ));
            }
            for &child in &comp.component_ids {
                write_component(&self.ical, child, &mut out, 0);
            }
            out.push_str(&format!("END:{name}\r\n"));
        }
        out.push_str("END:VCALENDAR\r\n");
        out
    }

    /// RFC 4791 §9.6.6 `limit-recurrence-set`: the object with only those
    /// overridden components (with a RECURRENCE-ID) whose instance overlaps
    /// the range; masters, VTIMEZONEs and the rest are kept.
    pub fn limit_recurrence(&self, start: Option<i64>, end: Option<i64>) -> String {
        use calcard::icalendar::ICalendarProperty as P;
        let insts = self.instances();
        let cal = &self.ical.components[0];
        let mut out = String::from("BEGIN:VCALENDAR\r\n");
        for e in &cal.entries {
            let _ = e.write_to(&mut out);
        }
        for &id in &cal.component_ids {
            let c = &self.ical.components[id as usize];
            let is_override = c.component_type.has_time_ranges()
                && c.entries.iter().any(|e| e.name == P::RecurrenceId);
            if is_override
                && !insts
                    .iter()
                    .any(|i| i.comp == id && overlaps(i.start, i.end, start, end))
            {
                continue;
            }
            write_component(&self.ical, id, &mut out, 0);
        }
        out.push_str("END:VCALENDAR\r\n");
        out
    }

    pub fn to_ical_string(&self) -> String {
        let mut s = String::new();
        let _ = self.ical.write_to(&mut s);
        s
    }
}

fn write_component(ical: &ICalendar, id: u32, out: &mut String, depth: usize) {
    let Some(c) = ical.components.get(id as usize) else {
        return;
    };
    if depth > 8 {
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

/// RFC 4791 §9.9: does an instance `[s, e)` overlap the range? A zero
/// length instance at `start` counts.
pub fn overlaps(inst_start: i64, inst_end: i64, start: Option<i64>, end: Option<i64>) -> bool {
    let after_start = match start {
        Some(s) => inst_end > s || (inst_end == inst_start && inst_start >= s),
        None => true,
    };
    let before_end = match end {
        Some(e) => inst_start < e,
        None => true,
    };
    after_start && before_end
}

/// A parsed vCard.
pub struct Card {
    pub card: VCard,
    pub uid: String,
    /// Every property, as filters see it.
    pub props: Vec<Prop>,
}

pub fn parse_card(data: &[u8]) -> Result<Card, String> {
    let text = std::str::from_utf8(data).map_err(|_| "not UTF-8".to_string())?;
    let card = VCard::parse(text).map_err(|e| format!("{e:?}"))?;
    let uid = card
        .uid()
        .ok_or_else(|| "the vCard has no UID".to_string())?
        .to_string();
    let mut props = Vec::new();
    for e in &card.entries {
        let mut line = String::new();
        let _ = e.write_to(&mut line, true);
        let mut p = split_line(&line);
        if let Some((_, n)) = p.name.split_once('.') {
            p.name = n.to_string();
        }
        props.push(p);
    }
    Ok(Card { card, uid, props })
}

/// The vCard versions a client may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardVersion {
    V3,
    V4,
}

/// The vCard in the requested version. To be replaced by
/// `outpost_pim::convert_vcard` once it is on main.
pub fn convert_vcard(card: &Card, version: CardVersion) -> String {
    let mut out = String::new();
    let v = match version {
        CardVersion::V3 => VCardVersion::V3_0,
        CardVersion::V4 => VCardVersion::V4_0,
    };
    let _ = card.card.write_to(&mut out, v);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_is_invalid() {
        assert!(matches!(
            parse_calendar(b"BEGIN:VCALENDAR\r\nthis is not"),
            Err(CalendarRefusal::Invalid(_))
        ));
    }

    #[test]
    fn todo_parses() {
        let todo = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VTODO\r\nUID:t1\r\nSUMMARY:x\r\nEND:VTODO\r\nEND:VCALENDAR\r\n";
        let c = parse_calendar(todo.as_bytes());
        assert_eq!(c.ok().map(|c| c.kind), Some(ComponentKind::VTodo));
    }
}
