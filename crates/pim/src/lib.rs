//! iCalendar and vCard ingest, on [calcard]: parse, validate, compute what a
//! store row needs, expand recurrences over a window, convert vCard 3 <-> 4.
//!
//! Pure: no I/O, no store. DAV, ActiveSync, EWS, JMAP and the store all use
//! it, so a calendar object means the same thing to every protocol.
//!
//! Rules applied to times (documented in docs/storage.md):
//!
//! - A DATE-TIME with a TZID is converted with that zone: an IANA name, a
//!   name calcard maps (Windows names, `/softwarestudio.org/...` prefixes),
//!   or a VTIMEZONE in the object whose TZID or `X-LIC-LOCATION` /
//!   `X-MICROSOFT-CDO-TZID` names a known zone, or whose STANDARD/DAYLIGHT
//!   rules match one (custom Outlook zones, see [`tz`]). A TZID that
//!   resolves to none of these is an error ([`PimError::UnknownTimezone`]);
//!   it is never silently read as UTC or as another zone.
//! - Floating DATE-TIMEs and all-day DATEs are read in the *floating zone*:
//!   the calendar's own timezone when the caller gives one
//!   ([`IngestOptions::floating_tz`], from CALDAV:calendar-timezone), else
//!   UTC. An all-day event on 2026-03-01 is 2026-03-01T00:00 to
//!   2026-03-02T00:00 in that zone.
//! - VTIMEZONE components are kept as sent: ingest never rewrites the
//!   source, the store keeps the bytes the client sent.
//! - Recurrence overrides are matched to the instance they replace by
//!   RECURRENCE-ID (identity), and placed at their own DTSTART/DTEND
//!   (RFC 4791 §9.9: time-range tests use the override's own times).
//!   EXDATEs remove instances. SEQUENCE plays no part in the matching.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::str::FromStr;

use calcard::common::timezone::Tz;
use calcard::icalendar::dates::TimeOrDelta;
use calcard::icalendar::{
    ICalendar, ICalendarComponent, ICalendarComponentType, ICalendarParameterName,
    ICalendarProperty, ICalendarStatus, ICalendarTransparency, ICalendarValue,
};
use calcard::vcard::{VCard, VCardKind, VCardProperty, VCardValue, VCardVersion};
use calcard::{Entry, Parser};
use chrono::{DateTime, TimeZone};

pub use calcard;

pub mod itip;
mod tz;
mod view;

pub use view::{parse_vcard, Comp, Contact, Prop};

/// Seconds since the Unix epoch, UTC.
pub type Timestamp = i64;

/// What ingest refuses, each with the reason a client can be told
/// (CalDAV maps them to `valid-calendar-data` /
/// `valid-calendar-object-resource`, CardDAV to `valid-address-data`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PimError {
    #[error("object of {size} bytes is larger than the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("object is not valid UTF-8")]
    NotUtf8,
    #[error("not parseable: {0}")]
    Parse(String),
    #[error("more than {0} components")]
    TooManyComponents(usize),
    #[error("more than {0} attendees")]
    TooManyAttendees(usize),
    #[error("no VEVENT, VTODO or VJOURNAL in the calendar object")]
    NoComponent,
    #[error("component {0} is not allowed in a calendar object resource")]
    UnsupportedComponent(String),
    #[error("a calendar object resource holds one kind of component, found {0} and {1}")]
    MixedComponents(&'static str, &'static str),
    #[error("a component has no UID")]
    MissingUid,
    #[error("a calendar object resource holds one UID, found {0:?} and {1:?}")]
    MultipleUids(String, String),
    #[error("more than one component without RECURRENCE-ID")]
    DuplicateMaster,
    #[error("two overrides with RECURRENCE-ID {0}")]
    DuplicateRecurrenceId(String),
    #[error("METHOD is not allowed in a stored calendar object (RFC 4791 section 4.1)")]
    MethodNotAllowed,
    #[error("unknown timezone {0:?}: the tz database does not know it, and no VTIMEZONE in the object names a known zone or has rules that match one")]
    UnknownTimezone(String),
    #[error("invalid dates or recurrence: {0}")]
    InvalidDates(String),
}

/// Bounds on what one object may cost. Part of v1: every ingest runs under
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest source accepted (CALDAV:max-resource-size).
    pub max_bytes: usize,
    /// Components (VEVENT, VALARM, VTIMEZONE, STANDARD, ... all counted).
    pub max_components: usize,
    /// Attendees of one object (all components together).
    pub max_attendees: usize,
    /// Recurrence steps computed for one expansion; a series longer than
    /// this is indexed as unbounded.
    pub max_instances: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 1024 * 1024,
            max_components: 2000,
            max_attendees: 2000,
            max_instances: 20_000,
        }
    }
}

/// A half-open UTC interval `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Window {
    pub const DAY: i64 = 86_400;

    /// All of time, as far as the store's bounds go (the open ends of a
    /// query are these values too).
    pub const ALL: Window = Window {
        start: i64::MIN / 2,
        end: i64::MAX / 2,
    };

    /// The window the store precomputes instances for: a year back, two
    /// ahead of `now`.
    pub fn around(now: Timestamp) -> Window {
        Window {
            start: now - 365 * Self::DAY,
            end: now + 2 * 365 * Self::DAY,
        }
    }

    /// `[start, end)`, either end open (CalDAV time-range).
    pub fn between(start: Option<Timestamp>, end: Option<Timestamp>) -> Window {
        Window {
            start: start.unwrap_or(i64::MIN / 2),
            end: end.unwrap_or(i64::MAX / 2),
        }
    }

    /// RFC 4791 §9.9 overlap: a period overlaps when it starts before the
    /// window ends and ends after it starts; a zero-length one when it
    /// lies inside.
    pub fn overlaps(&self, start: Timestamp, end: Timestamp) -> bool {
        if start == end {
            start >= self.start && start < self.end
        } else {
            start < self.end && end > self.start
        }
    }
}

/// Options of one iCalendar ingest.
#[derive(Debug, Clone, Copy)]
pub struct IngestOptions {
    pub limits: Limits,
    /// Instances are listed over this window ([`ObjectIndex::instances`]).
    pub window: Window,
    /// The zone floating times and all-day dates are read in (the
    /// calendar's CALDAV:calendar-timezone); `None`: UTC.
    pub floating_tz: Option<Tz>,
    /// A finite series (a single event, a rule with COUNT or UNTIL) of at
    /// most [`WHOLE_SERIES_MAX`] instances is listed whole, with
    /// [`Window::ALL`] as its window, instead of only over `window`: the
    /// store's index then answers every time range for it. Off for callers
    /// that ask for the instances of a window.
    pub whole_finite: bool,
}

/// The most instances of a finite series listed whole
/// ([`IngestOptions::whole_finite`]).
pub const WHOLE_SERIES_MAX: usize = 1000;

impl IngestOptions {
    pub fn new(now: Timestamp) -> IngestOptions {
        IngestOptions {
            limits: Limits::default(),
            window: Window::around(now),
            floating_tz: None,
            whole_finite: false,
        }
    }
}

/// The kind of a calendar object or contact, as stored in
/// `groupware_objects.component`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ComponentKind {
    Event,
    Todo,
    Journal,
    Card,
}

impl ComponentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentKind::Event => "VEVENT",
            ComponentKind::Todo => "VTODO",
            ComponentKind::Journal => "VJOURNAL",
            ComponentKind::Card => "VCARD",
        }
    }

    pub fn parse(s: &str) -> Option<ComponentKind> {
        Some(match s.to_ascii_uppercase().as_str() {
            "VEVENT" => ComponentKind::Event,
            "VTODO" => ComponentKind::Todo,
            "VJOURNAL" => ComponentKind::Journal,
            "VCARD" => ComponentKind::Card,
            _ => return None,
        })
    }
}

impl fmt::Display for ComponentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// STATUS of an instance, as free/busy needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InstanceStatus {
    /// No STATUS, or one that says nothing about busy time (VTODO states).
    None,
    Tentative,
    Confirmed,
    Cancelled,
}

impl InstanceStatus {
    /// The stored spelling: NULL for `None`, else the iCalendar word.
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            InstanceStatus::None => None,
            InstanceStatus::Tentative => Some("TENTATIVE"),
            InstanceStatus::Confirmed => Some("CONFIRMED"),
            InstanceStatus::Cancelled => Some("CANCELLED"),
        }
    }

    pub fn parse(s: Option<&str>) -> InstanceStatus {
        match s.map(|s| s.to_ascii_uppercase()).as_deref() {
            Some("TENTATIVE") => InstanceStatus::Tentative,
            Some("CONFIRMED") => InstanceStatus::Confirmed,
            Some("CANCELLED") => InstanceStatus::Cancelled,
            _ => InstanceStatus::None,
        }
    }
}

/// One occurrence of an event, task or journal entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// UTC start and end (end exclusive; equal for a zero-length instance).
    pub start: Timestamp,
    pub end: Timestamp,
    /// For an instance of a recurring object: its RECURRENCE-ID in UTC
    /// (the start it has in the series, before any override moved it).
    /// `None` for a non-recurring object.
    pub recurrence_id: Option<Timestamp>,
    /// TRANSP:TRANSPARENT (free/busy ignores it).
    pub transparent: bool,
    pub status: InstanceStatus,
    /// DTSTART is a DATE.
    pub all_day: bool,
    /// Index of the component it comes from in [`CalendarObject::ical`]
    /// (the master, or the override that replaced it).
    pub component: u32,
}

/// An attendee, merged over the master and its overrides (the master's
/// values win).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attendee {
    /// Calendar address without `mailto:`, lowercased.
    pub address: String,
    /// PARTSTAT, upper case; `NEEDS-ACTION` when absent (RFC 5545 default).
    pub partstat: String,
    pub role: Option<String>,
    pub common_name: Option<String>,
    pub rsvp: bool,
}

/// What the store indexes of a calendar object resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectIndex {
    pub uid: String,
    pub kind: ComponentKind,
    /// SUMMARY of the master (or first) component.
    pub summary: Option<String>,
    /// SEQUENCE of the master (0 when absent).
    pub sequence: i64,
    /// Start of the first instance, UTC; `None` when the object has no
    /// time at all (a VTODO without dates: it matches every time range).
    pub first_start: Option<Timestamp>,
    /// End of the last instance, UTC; `None` when unbounded (a recurrence
    /// without COUNT/UNTIL, or longer than [`Limits::max_instances`]) or
    /// timeless.
    pub last_end: Option<Timestamp>,
    /// RRULE or RDATE present, or overrides.
    pub recurring: bool,
    /// ORGANIZER address (no `mailto:`, lowercased).
    pub organizer: Option<String>,
    pub attendees: Vec<Attendee>,
    /// Instances overlapping [`IngestOptions::window`], in start order.
    pub instances: Vec<Instance>,
    /// The window `instances` covers.
    pub window: Window,
    /// TZIDs referenced by the object, as written, each once.
    pub tzids: Vec<String>,
    /// Some time is floating or a DATE, so its UTC depends on
    /// [`IngestOptions::floating_tz`].
    pub floating: bool,
}

/// A parsed and validated calendar object resource.
#[derive(Debug, Clone)]
pub struct CalendarObject {
    ical: ICalendar,
    floating_tz: Tz,
    /// TZIDs whose VTIMEZONE was resolved by its rules ([`tz`]): the
    /// expansion reads them as the matching zone's name.
    renames: Vec<(String, String)>,
    pub index: ObjectIndex,
}

/// Instances of an object over a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expansion {
    pub instances: Vec<Instance>,
    /// The series goes on past what [`Limits::max_instances`] allowed to
    /// compute; instances after the last one listed may exist.
    pub truncated: bool,
}

/// vCard versions a client may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VcardVersion {
    V2_1,
    V3,
    V4,
}

impl VcardVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            VcardVersion::V2_1 => "2.1",
            VcardVersion::V3 => "3.0",
            VcardVersion::V4 => "4.0",
        }
    }

    fn to_calcard(self) -> VCardVersion {
        match self {
            VcardVersion::V2_1 => VCardVersion::V2_1,
            VcardVersion::V3 => VCardVersion::V3_0,
            VcardVersion::V4 => VCardVersion::V4_0,
        }
    }
}

/// KIND of a contact (vCard 4 KIND, or Apple's X-ADDRESSBOOKSERVER-KIND
/// in vCard 3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ContactKind {
    Individual,
    Group,
    Org,
    Location,
    Other(String),
}

impl ContactKind {
    pub fn as_str(&self) -> &str {
        match self {
            ContactKind::Individual => "individual",
            ContactKind::Group => "group",
            ContactKind::Org => "org",
            ContactKind::Location => "location",
            ContactKind::Other(s) => s,
        }
    }

    fn parse(s: &str) -> ContactKind {
        match s.trim().to_ascii_lowercase().as_str() {
            "individual" | "" => ContactKind::Individual,
            "group" => ContactKind::Group,
            "org" => ContactKind::Org,
            "location" => ContactKind::Location,
            other => ContactKind::Other(other.to_string()),
        }
    }
}

/// N, split into its parts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StructuredName {
    pub family: String,
    pub given: String,
    pub additional: String,
    pub prefix: String,
    pub suffix: String,
}

/// What the store indexes of an address object resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactIndex {
    pub uid: String,
    pub version: VcardVersion,
    pub kind: ContactKind,
    /// FN.
    pub full_name: Option<String>,
    pub name: Option<StructuredName>,
    pub nickname: Option<String>,
    pub organization: Option<String>,
    /// EMAIL values, as written (trimmed), each once.
    pub emails: Vec<String>,
    /// Group members (MEMBER, or X-ADDRESSBOOKSERVER-MEMBER), as written:
    /// `urn:uuid:...` or `mailto:...`.
    pub members: Vec<String>,
}

impl ContactIndex {
    /// The name a listing shows: FN, else N, else the first e-mail, else
    /// the UID.
    pub fn display_name(&self) -> String {
        if let Some(f) = self.full_name.as_deref().filter(|s| !s.trim().is_empty()) {
            return f.trim().to_string();
        }
        if let Some(n) = &self.name {
            let s = [n.given.as_str(), n.family.as_str()]
                .iter()
                .filter(|p| !p.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(" ");
            if !s.is_empty() {
                return s;
            }
        }
        self.emails
            .first()
            .cloned()
            .unwrap_or_else(|| self.uid.clone())
    }
}

/// A zone by name, as ingest resolves TZIDs (IANA names, Windows names,
/// common prefixes). For CALDAV:calendar-timezone, pass the VTIMEZONE's
/// TZID.
pub fn resolve_tzid(name: &str) -> Option<Tz> {
    Tz::from_str(name).ok()
}

/// The year a calendar-timezone's rules are compared in when its TZID is
/// unknown: it is the zone of floating times of any date, and present-day
/// rules are the ones that matter.
const CALENDAR_TIMEZONE_YEAR: i32 = 2024;

/// The zone a VTIMEZONE text (a whole VCALENDAR holding one VTIMEZONE, as
/// CALDAV:calendar-timezone carries it) stands for: by its name, else by
/// its rules ([`tz`]).
pub fn timezone_of_vtimezone(text: &str) -> Option<Tz> {
    let ical = ICalendar::parse(text).ok()?;
    tz::resolve_all(&ical, CALENDAR_TIMEZONE_YEAR)
        .into_iter()
        .find_map(|r| r.tz)
}

/// Checks a CALDAV:calendar-timezone value (RFC 4791 §5.2.2): one
/// VCALENDAR holding a VTIMEZONE. The zone need not be known.
pub fn check_calendar_timezone(text: &str) -> Result<(), PimError> {
    let ical = parse_one_ical(text)?;
    if ical.timezones().next().is_none() {
        return Err(PimError::Parse("no VTIMEZONE".into()));
    }
    Ok(())
}

fn utf8(bytes: &[u8], limit: usize) -> Result<&str, PimError> {
    if bytes.len() > limit {
        return Err(PimError::TooLarge {
            size: bytes.len(),
            limit,
        });
    }
    std::str::from_utf8(bytes).map_err(|_| PimError::NotUtf8)
}

fn entry_error(e: Entry) -> PimError {
    PimError::Parse(match e {
        Entry::VCard(_) => "expected iCalendar, found a vCard".into(),
        Entry::ICalendar(_) => "expected a vCard, found iCalendar".into(),
        Entry::InvalidLine(l) => {
            let l: String = l.chars().take(80).collect();
            format!("invalid line {l:?}")
        }
        Entry::UnexpectedComponentEnd { expected, found } => {
            format!(
                "END:{} where END:{} was expected",
                found.as_str(),
                expected.as_str()
            )
        }
        Entry::UnterminatedComponent(c) => format!("BEGIN:{c} without END"),
        Entry::TooManyComponents => "too many components".into(),
        Entry::Eof => "empty".into(),
        _ => "unexpected content".into(),
    })
}

/// Parses one iCalendar object (a whole VCALENDAR, nothing after it).
fn parse_one_ical(text: &str) -> Result<ICalendar, PimError> {
    // calcard reads a truncated object as far as it goes; a stored object
    // is whole (a client that lost its connection mid-body must not get
    // half an event stored).
    let t = text.trim_end();
    let tail = t.get(t.len().saturating_sub(13)..).unwrap_or("");
    if !tail.eq_ignore_ascii_case("END:VCALENDAR") {
        return Err(PimError::Parse(
            "not one VCALENDAR from BEGIN to END".into(),
        ));
    }
    let mut parser = Parser::new(text);
    let mut ical = match parser.entry() {
        Entry::ICalendar(i) => i,
        other => return Err(entry_error(other)),
    };
    match parser.entry() {
        Entry::Eof => {}
        Entry::ICalendar(_) => {
            return Err(PimError::Parse(
                "more than one VCALENDAR in one resource".into(),
            ))
        }
        other => return Err(entry_error(other)),
    }
    utc_without_tzid(&mut ical);
    Ok(ical)
}

/// Drops the TZID of DATE-TIME values written in UTC (`TZID=X:...Z`, as
/// DavMail and some Exchange versions write them). RFC 5545 section
/// 3.2.19 says a UTC time takes no TZID; the time itself is unambiguous,
/// so it is read as the UTC time it says (calcard would otherwise read a
/// recurrence's times as wall times in the zone, and an unknown TZID
/// would refuse an object whose times need none).
fn utc_without_tzid(ical: &mut ICalendar) {
    for c in &mut ical.components {
        for e in &mut c.entries {
            let utc = !e.values.is_empty()
                && e.values.iter().all(|v| {
                    matches!(v, ICalendarValue::PartialDateTime(d) if d.has_time() && d.tz_hour.is_some())
                });
            if utc {
                e.params.retain(|p| p.name != ICalendarParameterName::Tzid);
            }
        }
    }
}

fn main_kind(t: &ICalendarComponentType) -> Option<ComponentKind> {
    match t {
        ICalendarComponentType::VEvent => Some(ComponentKind::Event),
        ICalendarComponentType::VTodo => Some(ComponentKind::Todo),
        ICalendarComponentType::VJournal => Some(ComponentKind::Journal),
        _ => None,
    }
}

fn text_of(c: &ICalendarComponent, p: &ICalendarProperty) -> Option<String> {
    c.property(p)
        .and_then(|e| e.values.first())
        .and_then(|v| v.as_text())
        .map(str::to_string)
}

fn address(v: &str) -> String {
    calcard::icalendar::utils::strip_mailto_scheme(v.trim())
        .trim()
        .to_lowercase()
}

/// Parses, validates and indexes a calendar object resource
/// (RFC 4791 §4.1: one UID, one kind of component, overrides by
/// RECURRENCE-ID, no METHOD).
pub fn ingest_icalendar(bytes: &[u8], opts: &IngestOptions) -> Result<CalendarObject, PimError> {
    let mut obj = parse_icalendar(bytes, opts)?;
    let limits = opts.limits;
    // The whole series once, for first/last; then the window.
    let all = obj.compute(None, &limits)?;
    obj.index.first_start = all.instances.iter().map(|i| i.start).min();
    obj.index.last_end = if all.truncated {
        None
    } else {
        all.instances.iter().map(|i| i.end).max()
    };
    if opts.whole_finite && !all.truncated && all.instances.len() <= WHOLE_SERIES_MAX {
        obj.index.window = Window::ALL;
        obj.index.instances = all.instances;
        return Ok(obj);
    }
    let win = opts.window;
    obj.index.instances = all
        .instances
        .into_iter()
        .filter(|i| win.overlaps(i.start, i.end))
        .collect();
    if all.truncated {
        // The bounded pass stopped early; compute up to the window's end.
        obj.index.instances = obj.expand(win, &limits)?.instances;
    }
    Ok(obj)
}

/// Parses and validates a calendar object resource like
/// [`ingest_icalendar`] (the same refusals), without expanding it: the
/// index's `instances` are empty and `first_start`/`last_end` `None`. For
/// readers that expand over their own window ([`CalendarObject::expand`]):
/// CalDAV queries over stored objects.
pub fn parse_icalendar(bytes: &[u8], opts: &IngestOptions) -> Result<CalendarObject, PimError> {
    let limits = opts.limits;
    let text = utf8(bytes, limits.max_bytes)?;
    let ical = parse_one_ical(text)?;
    if ical.components.len() > limits.max_components {
        return Err(PimError::TooManyComponents(limits.max_components));
    }
    let root = match ical.components.first() {
        Some(c) if c.component_type == ICalendarComponentType::VCalendar => c,
        _ => return Err(PimError::Parse("no VCALENDAR".into())),
    };
    if root.has_property(&ICalendarProperty::Method) {
        return Err(PimError::MethodNotAllowed);
    }
    let mut kind: Option<ComponentKind> = None;
    let mut uid: Option<String> = None;
    let mut master: Option<u32> = None;
    let mut mains: Vec<u32> = Vec::new();
    let mut rids = HashSet::new();
    for &id in &root.component_ids {
        let Some(c) = ical.components.get(id as usize) else {
            continue;
        };
        let k = match &c.component_type {
            ICalendarComponentType::VTimezone => continue,
            ICalendarComponentType::Other(_) => continue,
            t => match main_kind(t) {
                Some(k) => k,
                None => return Err(PimError::UnsupportedComponent(t.as_str().to_string())),
            },
        };
        match kind {
            None => kind = Some(k),
            Some(prev) if prev != k => {
                return Err(PimError::MixedComponents(prev.as_str(), k.as_str()))
            }
            _ => {}
        }
        let u = c
            .uid()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .ok_or(PimError::MissingUid)?;
        match &uid {
            None => uid = Some(u.to_string()),
            Some(prev) if prev != u => {
                return Err(PimError::MultipleUids(prev.clone(), u.to_string()))
            }
            _ => {}
        }
        match c.property(&ICalendarProperty::RecurrenceId) {
            None => {
                if master.replace(id).is_some() {
                    return Err(PimError::DuplicateMaster);
                }
            }
            Some(e) => {
                let key = format!("{:?}", e.values.first());
                if !rids.insert(key) {
                    let shown = e
                        .values
                        .first()
                        .and_then(|v| v.as_partial_date_time())
                        .map(|d| format!("{d:?}"))
                        .unwrap_or_default();
                    return Err(PimError::DuplicateRecurrenceId(shown));
                }
            }
        }
        mains.push(id);
    }
    let kind = kind.ok_or(PimError::NoComponent)?;
    let uid = uid.ok_or(PimError::MissingUid)?;

    // Every TZID must resolve; calcard would otherwise read it in the
    // default zone. A VTIMEZONE in the object decides for its TZID (by a
    // known name, else by its rules); other TZIDs must be known names.
    let first_year = mains
        .iter()
        .filter_map(|&id| {
            ical.components[id as usize]
                .property(&ICalendarProperty::Dtstart)
                .and_then(|e| e.values.first())
                .and_then(|v| v.as_partial_date_time())
                .and_then(|d| d.year)
        })
        .min()
        .map(i32::from)
        .unwrap_or_else(|| year_of(opts.window.start) + 1);
    let zones = tz::resolve_all(&ical, first_year);
    let resolve = |tzid: &str| match zones.iter().find(|z| z.tzid == tzid) {
        Some(z) => z.tz,
        None => tz::by_name(tzid),
    };
    let renames: Vec<(String, String)> = zones
        .iter()
        .filter(|z| z.by_rules)
        .filter_map(|z| match z.tz {
            Some(Tz::Tz(t)) => Some((z.tzid.clone(), t.name().to_string())),
            _ => None,
        })
        .collect();
    let mut tzids: Vec<String> = Vec::new();
    let mut floating = false;
    for &id in &mains {
        let c = &ical.components[id as usize];
        for e in &c.entries {
            for v in &e.values {
                if let ICalendarValue::PartialDateTime(d) = v {
                    let unzoned = !d.has_time() || (d.tz_hour.is_none() && e.tz_id().is_none());
                    if unzoned
                        && matches!(
                            e.name,
                            ICalendarProperty::Dtstart
                                | ICalendarProperty::Dtend
                                | ICalendarProperty::Due
                                | ICalendarProperty::RecurrenceId
                                | ICalendarProperty::Exdate
                                | ICalendarProperty::Rdate
                        )
                    {
                        floating = true;
                    }
                }
            }
            if let Some(tzid) = e.tz_id() {
                if resolve(tzid).is_none() {
                    return Err(PimError::UnknownTimezone(tzid.to_string()));
                }
                if !tzids.iter().any(|t| t == tzid) {
                    tzids.push(tzid.to_string());
                }
            }
        }
    }

    let head = &ical.components[master.unwrap_or(mains[0]) as usize];
    let summary = text_of(head, &ICalendarProperty::Summary);
    let sequence = head
        .property(&ICalendarProperty::Sequence)
        .and_then(|e| e.values.first())
        .and_then(|v| v.as_integer())
        .unwrap_or(0);
    let organizer = head
        .property(&ICalendarProperty::Organizer)
        .and_then(|e| e.values.first())
        .and_then(|v| v.as_text())
        .map(address)
        .filter(|a| !a.is_empty());
    let mut order: Vec<u32> = Vec::with_capacity(mains.len());
    if let Some(m) = master {
        order.push(m);
    }
    order.extend(mains.iter().copied().filter(|&i| Some(i) != master));
    let mut attendees: Vec<Attendee> = Vec::new();
    for &id in &order {
        for e in ical.components[id as usize].properties(&ICalendarProperty::Attendee) {
            let Some(addr) = e.values.first().and_then(|v| v.as_text()).map(address) else {
                continue;
            };
            if addr.is_empty() || attendees.iter().any(|a| a.address == addr) {
                continue;
            }
            if attendees.len() >= limits.max_attendees {
                return Err(PimError::TooManyAttendees(limits.max_attendees));
            }
            let param = |n: &ICalendarParameterName| {
                e.parameter(n).and_then(|v| v.as_text()).map(str::to_string)
            };
            attendees.push(Attendee {
                address: addr,
                partstat: param(&ICalendarParameterName::Partstat)
                    .map(|s| s.to_ascii_uppercase())
                    .unwrap_or_else(|| "NEEDS-ACTION".to_string()),
                role: param(&ICalendarParameterName::Role).map(|s| s.to_ascii_uppercase()),
                common_name: param(&ICalendarParameterName::Cn),
                rsvp: param(&ICalendarParameterName::Rsvp)
                    .is_some_and(|s| s.eq_ignore_ascii_case("TRUE")),
            });
        }
    }
    let recurring = mains
        .iter()
        .any(|&i| ical.components[i as usize].is_recurrent_or_override());

    let floating_tz = opts.floating_tz.unwrap_or(Tz::UTC);
    Ok(CalendarObject {
        ical,
        floating_tz,
        renames,
        index: ObjectIndex {
            uid,
            kind,
            summary,
            sequence,
            first_start: None,
            last_end: None,
            recurring,
            organizer,
            attendees,
            instances: Vec::new(),
            window: opts.window,
            tzids,
            floating,
        },
    })
}

fn year_of(t: Timestamp) -> i32 {
    use chrono::Datelike;
    DateTime::from_timestamp(t, 0).map_or(1970, |d| d.year())
}

impl CalendarObject {
    /// The parsed object (calcard's model), e.g. to write expanded
    /// instances for CalDAV `expand`.
    pub fn ical(&self) -> &ICalendar {
        &self.ical
    }

    /// The object's instances overlapping `window` (CalDAV `expand`,
    /// `limit-recurrence-set`, free/busy over any range).
    pub fn expand(&self, window: Window, limits: &Limits) -> Result<Expansion, PimError> {
        let all = self.compute(Some(window.end), limits)?;
        Ok(Expansion {
            truncated: all.truncated,
            instances: all
                .instances
                .into_iter()
                .filter(|i| window.overlaps(i.start, i.end))
                .collect(),
        })
    }

    /// Expands the series. With `until`, steps stop once instances start
    /// at or after it (doubling the step budget up to
    /// `limits.max_instances`); without, the budget is `max_instances`.
    fn compute(&self, until: Option<Timestamp>, limits: &Limits) -> Result<Expansion, PimError> {
        // Overrides are matched by RECURRENCE-ID alone: calcard also keys
        // them by SEQUENCE, which clients bump on overrides independently.
        let mut ical = self.ical.clone();
        for c in &mut ical.components {
            if main_kind(&c.component_type).is_some() {
                c.entries.retain(|e| e.name != ICalendarProperty::Sequence);
            }
        }
        if !self.renames.is_empty() {
            tz::apply_renames(&mut ical, &self.renames);
        }
        let unbounded_rule = ical.components.iter().any(|c| {
            main_kind(&c.component_type).is_some()
                && c.properties(&ICalendarProperty::Rrule).any(|e| {
                    matches!(e.values.first(), Some(ICalendarValue::RecurrenceRule(r)) if r.count.is_none() && r.until.is_none())
                })
        });
        let exdates: usize = ical
            .components
            .iter()
            .flat_map(|c| c.properties(&ICalendarProperty::Exdate))
            .map(|e| e.values.len())
            .sum::<usize>()
            + ical.components.len();
        let max = limits.max_instances.max(1);
        let mut budget = match until {
            Some(_) => max.min(256),
            None => max,
        };
        loop {
            let exp = ical.expand_dates(self.floating_tz, budget);
            if let Some(err) = exp.errors.first() {
                return Err(PimError::InvalidDates(err.error.to_string()));
            }
            // All steps used (EXDATEs and overrides may have taken some):
            // the series may go on.
            let exhausted = exp.events.len() + exdates >= budget;
            let latest = exp.events.iter().map(|e| e.start.timestamp()).max();
            let reached = match (until, latest) {
                (Some(u), Some(l)) => l >= u,
                _ => false,
            };
            if !exhausted || reached || budget >= max {
                let truncated = (exhausted && !reached) || (unbounded_rule && until.is_none());
                let mut instances = self.instances_of(&ical, exp.events);
                instances.sort_by_key(|i| (i.start, i.component));
                return Ok(Expansion {
                    instances,
                    truncated,
                });
            }
            budget = (budget * 4).min(max);
        }
    }

    #[allow(clippy::type_complexity)]
    fn instances_of(
        &self,
        ical: &ICalendar,
        events: Vec<
            calcard::icalendar::dates::CalendarEvent<
                DateTime<Tz>,
                TimeOrDelta<DateTime<Tz>, chrono::TimeDelta>,
            >,
        >,
    ) -> Vec<Instance> {
        let resolver = ical.build_tz_resolver().with_default(self.floating_tz);
        // RECURRENCE-ID of each override, in UTC.
        let mut rid_of: BTreeMap<u32, Timestamp> = BTreeMap::new();
        for (i, c) in ical.components.iter().enumerate() {
            if main_kind(&c.component_type).is_none() {
                continue;
            }
            if let Some(e) = c.property(&ICalendarProperty::RecurrenceId) {
                let tz = resolver.resolve_or_default(e.tz_id());
                if let Some(dt) = e
                    .values
                    .first()
                    .and_then(|v| v.as_partial_date_time())
                    .and_then(|d| d.to_date_time_with_tz(tz))
                {
                    rid_of.insert(i as u32, dt.timestamp());
                }
            }
        }
        let recurring = self.index.recurring;
        events
            .into_iter()
            .map(|ev| {
                let start = ev.start.timestamp();
                let component = ev.comp_id;
                let end = match ev.clone().try_into_date_time() {
                    Some(e) => e.end.timestamp(),
                    None => ev.timestamps().1,
                }
                .max(start);
                let c = ical.components.get(component as usize);
                let transparent = c
                    .and_then(|c| c.transparency())
                    .is_some_and(|t| *t == ICalendarTransparency::Transparent);
                let status = match c.and_then(|c| c.status()) {
                    Some(ICalendarStatus::Tentative) => InstanceStatus::Tentative,
                    Some(ICalendarStatus::Confirmed) => InstanceStatus::Confirmed,
                    Some(ICalendarStatus::Cancelled) => InstanceStatus::Cancelled,
                    _ => InstanceStatus::None,
                };
                let all_day = c
                    .and_then(|c| c.property(&ICalendarProperty::Dtstart))
                    .and_then(|e| e.values.first())
                    .and_then(|v| v.as_partial_date_time())
                    .is_some_and(|d| !d.has_time());
                let recurrence_id = if !recurring {
                    None
                } else {
                    Some(rid_of.get(&component).copied().unwrap_or(start))
                };
                Instance {
                    start,
                    end,
                    recurrence_id,
                    transparent,
                    status,
                    all_day,
                    component,
                }
            })
            .collect()
    }
}

/// Seconds of a naive UTC time, for tests and callers building windows.
pub fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Timestamp {
    chrono::Utc
        .with_ymd_and_hms(y, mo, d, h, mi, s)
        .single()
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

fn parse_one_vcard(text: &str) -> Result<VCard, PimError> {
    let mut parser = Parser::new(text);
    let card = match parser.entry() {
        Entry::VCard(c) => c,
        other => return Err(entry_error(other)),
    };
    match parser.entry() {
        Entry::Eof => Ok(card),
        Entry::VCard(_) => Err(PimError::Parse(
            "more than one vCard in one resource".into(),
        )),
        other => Err(entry_error(other)),
    }
}

fn vtext(v: &VCardValue) -> Option<String> {
    match v {
        VCardValue::Text(s) => Some(s.clone()),
        VCardValue::Component(parts) => Some(parts.join(",")),
        VCardValue::Kind(k) => Some(
            match k {
                VCardKind::Individual => "individual",
                VCardKind::Group => "group",
                VCardKind::Org => "org",
                VCardKind::Location => "location",
                VCardKind::Application => "application",
                VCardKind::Device => "device",
            }
            .to_string(),
        ),
        _ => v.as_text().map(str::to_string),
    }
}

fn first_text(card: &VCard, p: &VCardProperty) -> Option<String> {
    card.property(p)
        .and_then(|e| e.values.first())
        .and_then(vtext)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn other(name: &str) -> VCardProperty {
    VCardProperty::Other(name.to_string())
}

/// Parses, validates (one vCard with a UID, RFC 6352 §5.1) and indexes an
/// address object resource.
pub fn ingest_vcard(bytes: &[u8], limits: &Limits) -> Result<ContactIndex, PimError> {
    let text = utf8(bytes, limits.max_bytes)?;
    let card = parse_one_vcard(text)?;
    ingest_card(&card, limits)
}

fn ingest_card(card: &VCard, limits: &Limits) -> Result<ContactIndex, PimError> {
    if card.entries.len() > limits.max_components.saturating_mul(10) {
        return Err(PimError::TooManyComponents(limits.max_components * 10));
    }
    let uid = card
        .uid()
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .ok_or(PimError::MissingUid)?
        .to_string();
    let version = match card.version() {
        Some(VCardVersion::V4_0) => VcardVersion::V4,
        Some(VCardVersion::V2_1) | Some(VCardVersion::V2_0) => VcardVersion::V2_1,
        _ => VcardVersion::V3,
    };
    let kind = first_text(card, &VCardProperty::Kind)
        .or_else(|| {
            card.entries
                .iter()
                .find(|e| matches!(&e.name, VCardProperty::Other(n) if n.eq_ignore_ascii_case("X-ADDRESSBOOKSERVER-KIND")))
                .and_then(|e| e.values.first())
                .and_then(vtext)
        })
        .map(|s| ContactKind::parse(&s))
        .unwrap_or(ContactKind::Individual);
    let name = card.property(&VCardProperty::N).map(|e| {
        let parts: Vec<String> = e
            .values
            .iter()
            .map(|v| vtext(v).unwrap_or_default().trim().to_string())
            .collect();
        let at = |i: usize| parts.get(i).cloned().unwrap_or_default();
        StructuredName {
            family: at(0),
            given: at(1),
            additional: at(2),
            prefix: at(3),
            suffix: at(4),
        }
    });
    let mut emails: Vec<String> = Vec::new();
    for e in card.properties(&VCardProperty::Email) {
        if let Some(a) = e.values.first().and_then(vtext) {
            let a = calcard::icalendar::utils::strip_mailto_scheme(a.trim())
                .trim()
                .to_string();
            if !a.is_empty() && !emails.iter().any(|x| x.eq_ignore_ascii_case(&a)) {
                emails.push(a);
            }
        }
    }
    let mut members: Vec<String> = Vec::new();
    let apple_member = other("X-ADDRESSBOOKSERVER-MEMBER");
    for e in card.entries.iter().filter(|e| {
        e.name == VCardProperty::Member
            || matches!((&e.name, &apple_member), (VCardProperty::Other(a), VCardProperty::Other(b)) if a.eq_ignore_ascii_case(b))
    }) {
        if let Some(m) = e.values.first().and_then(vtext) {
            let m = m.trim().to_string();
            if !m.is_empty() && !members.contains(&m) {
                members.push(m);
            }
        }
    }
    let organization = card
        .property(&VCardProperty::Org)
        .map(|e| {
            e.values
                .iter()
                .filter_map(vtext)
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .filter(|s| !s.is_empty());
    Ok(ContactIndex {
        uid,
        version,
        kind,
        full_name: first_text(card, &VCardProperty::Fn),
        name,
        nickname: first_text(card, &VCardProperty::Nickname),
        organization,
        emails,
        members,
    })
}

/// The vCard rewritten as `version` (CardDAV content negotiation; the
/// stored source is not changed).
pub fn convert_vcard(
    bytes: &[u8],
    version: VcardVersion,
    limits: &Limits,
) -> Result<String, PimError> {
    let text = utf8(bytes, limits.max_bytes)?;
    let card = parse_one_vcard(text)?;
    let mut out = String::with_capacity(text.len() + 64);
    card.write_to(&mut out, version.to_calcard())
        .map_err(|_| PimError::Parse("cannot write the vCard".into()))?;
    Ok(out)
}

#[cfg(test)]
mod tests;

pub mod split;
pub use split::{join_icalendar, split_icalendar, split_vcards, Piece};
