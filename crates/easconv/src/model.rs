//! The one place the conversions meet calcard: parsing an object with this
//! crate's limits and structure checks, a tree over calcard's flat component
//! list, readers for the values ActiveSync carries and builders for the
//! properties written back. Tokenising, unfolding and unescaping on the way
//! in, escaping and folding on the way out, are all calcard's; the entries
//! an item does not represent stay calcard's parsed values, untouched.

use crate::{Error, Result, MAX_INPUT, MAX_LINES};
use calcard::common::PartialDateTime;
use calcard::icalendar::{
    ICalendar, ICalendarComponent, ICalendarComponentType, ICalendarEntry, ICalendarParameterName,
    ICalendarProperty, ICalendarValue,
};
use calcard::vcard::{VCard, VCardEntry, VCardValue};
use calcard::{Entry, Parser};
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Timelike, Utc};

pub use calcard::icalendar::ICalendarComponentType as Kind;
pub use calcard::icalendar::ICalendarParameterName as Param;
pub use calcard::icalendar::ICalendarProperty as P;

/// Deepest component nesting accepted (VCALENDAR > VEVENT > VALARM is 3).
const MAX_DEPTH: usize = 8;

/// One component with its sub-components as a tree (calcard keeps them in
/// one list linked by index), its entries calcard's own.
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    pub kind: ICalendarComponentType,
    pub entries: Vec<ICalendarEntry>,
    pub subs: Vec<Component>,
}

impl Component {
    pub fn new(kind: ICalendarComponentType) -> Component {
        Component {
            kind,
            entries: Vec::new(),
            subs: Vec::new(),
        }
    }

    pub fn prop(&self, name: &ICalendarProperty) -> Option<&ICalendarEntry> {
        self.entries.iter().find(|e| &e.name == name)
    }

    pub fn props<'a>(
        &'a self,
        name: &'a ICalendarProperty,
    ) -> impl Iterator<Item = &'a ICalendarEntry> + 'a {
        self.entries.iter().filter(move |e| &e.name == name)
    }

    /// The first value of `name` as text (`None` when absent or not text).
    pub fn text(&self, name: &ICalendarProperty) -> Option<&str> {
        self.prop(name).and_then(|e| e.text())
    }

    pub fn remove(&mut self, name: &ICalendarProperty) {
        self.entries.retain(|e| &e.name != name);
    }

    /// Replaces every `e.name` with `e`.
    pub fn set(&mut self, e: ICalendarEntry) {
        self.remove(&e.name);
        self.entries.push(e);
    }

    pub fn push(&mut self, e: ICalendarEntry) {
        self.entries.push(e);
    }

    /// calcard's model of this tree, this component first.
    pub fn to_ical(&self) -> ICalendar {
        fn flatten(c: &Component, out: &mut Vec<ICalendarComponent>) -> u32 {
            let id = out.len() as u32;
            out.push(ICalendarComponent {
                component_type: c.kind.clone(),
                entries: c.entries.clone(),
                component_ids: Vec::new(),
            });
            let ids = c.subs.iter().map(|s| flatten(s, out)).collect();
            out[id as usize].component_ids = ids;
            id
        }
        let mut components = Vec::new();
        flatten(self, &mut components);
        ICalendar { components }
    }

    /// The object as text, written by calcard (CRLF, folded, escaped).
    pub fn write(&self) -> String {
        self.to_ical().to_string()
    }
}

/// Reading the values of one calcard entry.
pub trait EntryExt {
    /// The first value as text.
    fn text(&self) -> Option<&str>;
    /// A parameter's value as text.
    fn param(&self, name: &ICalendarParameterName) -> Option<&str>;
    /// Whether the first value is `word` (case-insensitive).
    fn is(&self, word: &str) -> bool {
        self.text().is_some_and(|t| t.eq_ignore_ascii_case(word))
    }
}

impl EntryExt for ICalendarEntry {
    fn text(&self) -> Option<&str> {
        self.values.first().and_then(|v| v.as_text())
    }

    fn param(&self, name: &ICalendarParameterName) -> Option<&str> {
        self.parameter(name).and_then(|v| v.as_text())
    }
}

/// Text from a client as a property value: no control characters but line
/// breaks (CRLF as LF) and tabs. calcard escapes what remains.
pub fn clean(s: &str) -> String {
    s.chars()
        .filter(|&c| !c.is_control() || c == '\n' || c == '\t')
        .collect()
}

pub fn entry(name: ICalendarProperty, value: impl Into<ICalendarValue>) -> ICalendarEntry {
    ICalendarEntry::new(name).with_value(value)
}

/// A text property (cleaned).
pub fn text_entry(name: ICalendarProperty, s: &str) -> ICalendarEntry {
    entry(name, ICalendarValue::Text(clean(s)))
}

pub fn utc_time(t: DateTime<Utc>) -> PartialDateTime {
    PartialDateTime {
        tz_hour: Some(0),
        tz_minute: Some(0),
        ..local_time(t.naive_utc())
    }
}

pub fn local_time(t: NaiveDateTime) -> PartialDateTime {
    PartialDateTime {
        hour: Some(t.hour() as u8),
        minute: Some(t.minute() as u8),
        second: Some(t.second() as u8),
        ..date_only(t.date())
    }
}

pub fn date_only(d: NaiveDate) -> PartialDateTime {
    PartialDateTime {
        year: u16::try_from(d.year()).ok(),
        month: Some(d.month() as u8),
        day: Some(d.day() as u8),
        ..PartialDateTime::default()
    }
}

/// A UTC offset in minutes east, as TZOFFSETFROM/TZOFFSETTO carry it.
pub fn utc_offset(mins: i32) -> PartialDateTime {
    let m = mins.unsigned_abs();
    PartialDateTime {
        tz_hour: Some((m / 60) as u8),
        tz_minute: Some((m % 60) as u8),
        tz_minus: mins < 0,
        ..PartialDateTime::default()
    }
}

/// The offset (minutes east) of a TZOFFSETFROM/TZOFFSETTO-like value.
pub fn offset_minutes(v: &PartialDateTime) -> Option<i32> {
    let m = i32::from(v.tz_hour?) * 60 + i32::from(v.tz_minute.unwrap_or(0));
    Some(if v.tz_minus { -m } else { m })
}

fn describe(e: &Entry) -> String {
    match e {
        Entry::VCard(_) => "a vCard".into(),
        Entry::ICalendar(_) => "an iCalendar object".into(),
        Entry::InvalidLine(l) => {
            let l: String = l.chars().take(60).collect();
            format!("invalid line {l:?}")
        }
        Entry::UnexpectedComponentEnd { found, .. } => format!("unexpected END:{}", found.as_str()),
        Entry::UnterminatedComponent(c) => format!("BEGIN:{c} without END"),
        Entry::TooManyComponents => "too many components".into(),
        Entry::Eof => "nothing".into(),
        _ => "unexpected content".into(),
    }
}

/// calcard's reading of `text`, which must be one whole object ending in
/// `end`: calcard reads a truncated object as far as it goes, and a client
/// or store must not get half an item taken for the whole.
fn one_object(text: &str, end: &str) -> Result<Entry> {
    if text.len() > MAX_INPUT {
        return Err(Error::TooLarge("object"));
    }
    let t = text.trim_end();
    let tail = t.get(t.len().saturating_sub(end.len())..).unwrap_or("");
    if !tail.eq_ignore_ascii_case(end) {
        return Err(Error::Invalid(format!("not one object ending in {end}")));
    }
    let mut parser = Parser::new(text);
    let first = parser.entry();
    match parser.entry() {
        Entry::Eof => Ok(first),
        other => Err(Error::Invalid(format!(
            "{} after the object",
            describe(&other)
        ))),
    }
}

/// Whether `kind` may stand inside `parent` (RFC 5545 section 3.6, RFC 7953).
fn placed_right(kind: &ICalendarComponentType, parent: &ICalendarComponentType) -> bool {
    use ICalendarComponentType as K;
    match kind {
        K::VCalendar => false,
        K::VEvent | K::VTodo | K::VJournal | K::VFreebusy | K::VTimezone | K::VAvailability => {
            *parent == K::VCalendar
        }
        K::VAlarm => matches!(parent, K::VEvent | K::VTodo),
        K::Standard | K::Daylight => *parent == K::VTimezone,
        K::Available => *parent == K::VAvailability,
        _ => true,
    }
}

fn tree(comps: &mut [ICalendarComponent], id: u32, depth: usize) -> Result<Component> {
    if depth >= MAX_DEPTH {
        return Err(Error::TooLarge("nesting"));
    }
    let c = comps
        .get_mut(id as usize)
        .ok_or_else(|| Error::Invalid("dangling component".into()))?;
    let kind = c.component_type.clone();
    let entries = std::mem::take(&mut c.entries);
    let ids = std::mem::take(&mut c.component_ids);
    let mut subs = Vec::with_capacity(ids.len());
    for i in ids {
        // calcard numbers sub-components after their parent.
        if i <= id {
            return Err(Error::Invalid("component order".into()));
        }
        let s = tree(comps, i, depth + 1)?;
        if !placed_right(&s.kind, &kind) {
            return Err(Error::Invalid(format!(
                "{} inside {}",
                s.kind.as_str(),
                kind.as_str()
            )));
        }
        subs.push(s);
    }
    Ok(Component {
        kind,
        entries,
        subs,
    })
}

/// Parses one VCALENDAR (calcard's parser) into its component tree.
pub fn parse_calendar(text: &str) -> Result<Component> {
    let mut ical = match one_object(text, "END:VCALENDAR")? {
        Entry::ICalendar(i) => i,
        other => {
            return Err(Error::Invalid(format!(
                "expected a VCALENDAR, found {}",
                describe(&other)
            )))
        }
    };
    let lines = ical
        .components
        .iter()
        .map(|c| c.entries.len() + 2)
        .sum::<usize>();
    if lines > MAX_LINES {
        return Err(Error::TooLarge("lines"));
    }
    let root = tree(&mut ical.components, 0, 0)?;
    if root.kind != ICalendarComponentType::VCalendar {
        return Err(Error::Invalid("not a VCALENDAR".into()));
    }
    Ok(root)
}

/// Parses one vCard (calcard's parser).
pub fn parse_card(text: &str) -> Result<VCard> {
    let card = match one_object(text, "END:VCARD")? {
        Entry::VCard(c) => c,
        other => {
            return Err(Error::Invalid(format!(
                "expected a VCARD, found {}",
                describe(&other)
            )))
        }
    };
    if card.entries.len() + 2 > MAX_LINES {
        return Err(Error::TooLarge("lines"));
    }
    Ok(card)
}

/// One vCard value as text (a comma list joined again).
pub fn card_value(v: &VCardValue) -> String {
    match v {
        VCardValue::Text(s) => s.clone(),
        VCardValue::Component(items) => items.join(","),
        other => other.as_text().unwrap_or_default().to_string(),
    }
}

/// A vCard property's value as text.
pub fn card_text(e: &VCardEntry) -> String {
    e.values
        .iter()
        .map(card_value)
        .collect::<Vec<_>>()
        .join(";")
}

/// The items of a list-valued vCard property (NICKNAME, CATEGORIES),
/// trimmed, empty ones left out.
pub fn card_list(e: &VCardEntry) -> Vec<String> {
    e.values
        .iter()
        .flat_map(|v| match v {
            VCardValue::Component(items) => items.clone(),
            other => vec![card_value(other)],
        })
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}
