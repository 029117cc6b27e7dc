//! iTIP (RFC 5546) on calcard: which scheduling messages a change to a
//! calendar object implies, and what a received message does to a stored
//! copy. Pure functions, no I/O: the scheduling engine
//! (`outpost-scheduling`) decides who the user is and carries the
//! messages (into a hosted user's calendar, or as iMIP mail).
//!
//! - [`organizer_messages`]: from the organizer's old and new version, a
//!   REQUEST to every attendee when something an attendee sees changed
//!   (times, summary, location, the attendee list, SEQUENCE...; PARTSTATs,
//!   DTSTAMP and alarms do not count), a CANCEL to attendees who were
//!   removed, and a CANCEL to all when the object was cancelled
//!   (STATUS:CANCELLED) or deleted.
//! - [`attendee_reply`]: from an attendee's old and new version, the REPLY
//!   to the organizer when the attendee's PARTSTAT changed (per component:
//!   an answer for one instance is a REPLY with that RECURRENCE-ID), and a
//!   REPLY with PARTSTAT=DECLINED when the attendee deleted the object
//!   (RFC 6638 §3.2.2.3).
//! - [`apply_reply`], [`apply_request`], [`apply_cancel`]: a received
//!   message applied to the stored copy: a REPLY sets that attendee's
//!   PARTSTAT in the organizer's copy (adding an override for an instance
//!   answered on its own); a REQUEST becomes the attendee's
//!   copy (without METHOD), keeping the attendee's own answer when it was
//!   given to the same SEQUENCE, and the attendee's alarms; a CANCEL marks the object (or the
//!   instance, by an override or an EXDATE) STATUS:CANCELLED. Messages
//!   older than the stored copy (lower SEQUENCE) change nothing.
//!
//! Attendees with SCHEDULE-AGENT=CLIENT or NONE (RFC 6638 §7.1) get no
//! message from the server: their client does the scheduling. A REQUEST
//! carries the whole object (every override) to attendees of the series,
//! and only their overrides to attendees invited to some instances only
//! (RFC 6638 §3.2.6).

use std::collections::{BTreeMap, BTreeSet};

use calcard::common::{IanaParse, PartialDateTime};
use calcard::icalendar::{
    ICalendar, ICalendarComponent, ICalendarComponentType, ICalendarEntry, ICalendarMethod,
    ICalendarParameter, ICalendarParameterName, ICalendarParameterValue,
    ICalendarParticipationStatus, ICalendarProperty, ICalendarScheduleAgentValue, ICalendarStatus,
    ICalendarValue, Uri,
};

use crate::{address, main_kind, parse_one_ical, utf8, ComponentKind, Limits, PimError};

/// The PRODID of what Outpost writes.
pub const PRODID: &str = "-//Outpost//Scheduling//EN";

/// The iTIP methods the engine sends and applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Request,
    Reply,
    Cancel,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Request => "REQUEST",
            Method::Reply => "REPLY",
            Method::Cancel => "CANCEL",
        }
    }

    pub fn parse(s: &str) -> Option<Method> {
        Some(match s.trim().to_ascii_uppercase().as_str() {
            "REQUEST" => Method::Request,
            "REPLY" => Method::Reply,
            "CANCEL" => Method::Cancel,
            _ => return None,
        })
    }

    fn to_calcard(self) -> ICalendarMethod {
        match self {
            Method::Request => ICalendarMethod::Request,
            Method::Reply => ICalendarMethod::Reply,
            Method::Cancel => ICalendarMethod::Cancel,
        }
    }
}

/// What the owner of a copy is to the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// One of the owner's addresses is the ORGANIZER.
    Organizer(String),
    /// One of the owner's addresses is an ATTENDEE (not the organizer).
    Attendee(String),
    /// Not a scheduling object for this owner (no organizer, or neither).
    None,
}

/// An attendee as scheduling sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    /// Without `mailto:`, lower case.
    pub address: String,
    /// PARTSTAT in upper case, NEEDS-ACTION when absent.
    pub partstat: String,
    /// CUTYPE in upper case, INDIVIDUAL when absent.
    pub cutype: String,
    /// SCHEDULE-AGENT is CLIENT or NONE: the server sends this attendee
    /// nothing.
    pub client_scheduled: bool,
}

/// A calendar object or iTIP message, parsed for scheduling.
#[derive(Debug, Clone)]
pub struct SchedulingObject {
    ical: ICalendar,
    /// METHOD of a message; `None` for a stored object.
    pub method: Option<String>,
    pub uid: String,
    pub kind: ComponentKind,
    /// ORGANIZER of the master (or first) component, without `mailto:`,
    /// lower case.
    pub organizer: Option<String>,
    /// SEQUENCE of the master (or first) component.
    pub sequence: i64,
    pub summary: Option<String>,
    /// The master (or, without one, every component) is STATUS:CANCELLED.
    pub cancelled: bool,
    /// DTSTAMP of the master (or first) component, UTC seconds.
    pub stamp: Option<i64>,
    /// On an attendee's stored copy: the last message from the organizer
    /// applied to it (kept by the engine beside the copy). It, not the
    /// copy's own SEQUENCE, decides whether the organizer's next message
    /// is older ([`SchedulingObject::is_older`]).
    pub received: Option<Received>,
}

/// SEQUENCE and DTSTAMP of a message from the organizer, as remembered
/// with the attendee's copy it was applied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub sequence: i64,
    /// UTC seconds; `None` when the message had no readable DTSTAMP.
    pub stamp: Option<i64>,
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItipMessage {
    pub method: Method,
    /// The organizer (REQUEST, CANCEL) or the attendee (REPLY) it is from.
    pub from: String,
    /// Calendar addresses without `mailto:`, lower case, each once.
    pub recipients: Vec<String>,
    pub uid: String,
    pub sequence: i64,
    pub summary: Option<String>,
    /// For a REPLY: the PARTSTAT it carries (of the master or first
    /// component).
    pub partstat: Option<String>,
    /// The VCALENDAR with METHOD, as written by calcard (CRLF, folded).
    pub ical: String,
}

impl ItipMessage {
    /// The calendar text as bytes, for a mail part or a store put.
    pub fn bytes(&self) -> &[u8] {
        self.ical.as_bytes()
    }
}

/// The one VCALENDAR of `bytes` within `limits`, and its METHOD (upper
/// case): what [`parse`] and [`parse_free_busy_request`] both start from.
fn parse_vcalendar(bytes: &[u8], limits: &Limits) -> Result<(ICalendar, Option<String>), PimError> {
    let text = utf8(bytes, limits.max_bytes)?;
    let ical = parse_one_ical(text)?;
    if ical.components.len() > limits.max_components {
        return Err(PimError::TooManyComponents(limits.max_components));
    }
    let root = match ical.components.first() {
        Some(c) if c.component_type == ICalendarComponentType::VCalendar => c,
        _ => return Err(PimError::Parse("no VCALENDAR".into())),
    };
    let method = root
        .property(&ICalendarProperty::Method)
        .and_then(|e| e.values.first())
        .and_then(|v| v.as_text())
        .map(|s| s.to_ascii_uppercase());
    Ok((ical, method))
}

/// Parses a stored calendar object or an iTIP message (with METHOD),
/// under `limits` (size, components, attendees). One UID, one kind of
/// component (VEVENT, VTODO, VJOURNAL).
pub fn parse(bytes: &[u8], limits: &Limits) -> Result<SchedulingObject, PimError> {
    let (ical, method) = parse_vcalendar(bytes, limits)?;
    let root = &ical.components[0];
    let mut kind = None;
    let mut uid: Option<String> = None;
    let mut attendees = 0usize;
    for &id in &root.component_ids {
        let Some(c) = ical.components.get(id as usize) else {
            continue;
        };
        let Some(k) = main_kind(&c.component_type) else {
            continue;
        };
        match kind {
            None => kind = Some(k),
            Some(p) if p != k => return Err(PimError::MixedComponents(p.as_str(), k.as_str())),
            _ => {}
        }
        let u = c
            .uid()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .ok_or(PimError::MissingUid)?;
        match &uid {
            None => uid = Some(u.to_string()),
            Some(p) if p != u => return Err(PimError::MultipleUids(p.clone(), u.to_string())),
            _ => {}
        }
        attendees += c.properties(&ICalendarProperty::Attendee).count();
        if attendees > limits.max_attendees {
            return Err(PimError::TooManyAttendees(limits.max_attendees));
        }
    }
    let kind = kind.ok_or(PimError::NoComponent)?;
    let uid = uid.ok_or(PimError::MissingUid)?;
    let mut obj = SchedulingObject {
        ical,
        method,
        uid,
        kind,
        organizer: None,
        sequence: 0,
        summary: None,
        cancelled: false,
        stamp: None,
        received: None,
    };
    let mains = obj.mains();
    let head = obj.master().unwrap_or(mains[0]);
    let c = &obj.ical.components[head];
    obj.organizer = c
        .property(&ICalendarProperty::Organizer)
        .and_then(cal_address)
        .filter(|a| !a.is_empty());
    obj.sequence = sequence_of(c);
    obj.stamp = c
        .property(&ICalendarProperty::Dtstamp)
        .and_then(|e| e.values.first())
        .and_then(|v| v.as_partial_date_time())
        .and_then(|d| d.to_timestamp());
    obj.summary = c
        .property(&ICalendarProperty::Summary)
        .and_then(|e| e.values.first())
        .and_then(|v| v.as_text())
        .map(str::to_string);
    obj.cancelled = match obj.master() {
        Some(m) => is_cancelled(&obj.ical.components[m]),
        None => mains.iter().all(|&i| is_cancelled(&obj.ical.components[i])),
    };
    Ok(obj)
}

fn cal_address(e: &ICalendarEntry) -> Option<String> {
    e.values.first().and_then(|v| v.as_text()).map(address)
}

fn sequence_of(c: &ICalendarComponent) -> i64 {
    c.property(&ICalendarProperty::Sequence)
        .and_then(|e| e.values.first())
        .and_then(|v| v.as_integer())
        .unwrap_or(0)
}

fn is_cancelled(c: &ICalendarComponent) -> bool {
    c.status() == Some(&ICalendarStatus::Cancelled)
}

fn param_text(e: &ICalendarEntry, n: &ICalendarParameterName) -> Option<String> {
    e.parameter(n)
        .and_then(|v| v.as_text())
        .map(|s| s.to_ascii_uppercase())
}

fn participant(e: &ICalendarEntry) -> Option<Participant> {
    let address = cal_address(e).filter(|a| !a.is_empty())?;
    let agent = e.parameter(&ICalendarParameterName::ScheduleAgent);
    let client_scheduled = match agent {
        Some(ICalendarParameterValue::ScheduleAgent(a)) => {
            !matches!(a, ICalendarScheduleAgentValue::Server)
        }
        Some(v) => v
            .as_text()
            .is_some_and(|s| !s.eq_ignore_ascii_case("SERVER")),
        None => false,
    };
    Some(Participant {
        address,
        partstat: param_text(e, &ICalendarParameterName::Partstat)
            .unwrap_or_else(|| "NEEDS-ACTION".into()),
        cutype: param_text(e, &ICalendarParameterName::Cutype)
            .unwrap_or_else(|| "INDIVIDUAL".into()),
        client_scheduled,
    })
}

/// RECURRENCE-ID of a component as a key that matches the same instance
/// in another copy written by the same organizer: the value and its TZID.
fn rid_key(c: &ICalendarComponent) -> Option<String> {
    c.property(&ICalendarProperty::RecurrenceId).map(|e| {
        let v = e
            .values
            .first()
            .and_then(|v| v.as_partial_date_time())
            .map(|d| {
                format!(
                    "{:04}{:02}{:02}T{:02}{:02}{:02}{}",
                    d.year.unwrap_or(0),
                    d.month.unwrap_or(0),
                    d.day.unwrap_or(0),
                    d.hour.unwrap_or(0),
                    d.minute.unwrap_or(0),
                    d.second.unwrap_or(0),
                    if d.tz_hour.is_some() { "Z" } else { "" }
                )
            })
            .unwrap_or_default();
        format!("{v};{}", e.tz_id().unwrap_or(""))
    })
}

impl SchedulingObject {
    /// The parsed calendar (calcard's model).
    pub fn ical(&self) -> &ICalendar {
        &self.ical
    }

    /// Indexes of the VEVENT/VTODO/VJOURNAL children of the VCALENDAR.
    fn mains(&self) -> Vec<usize> {
        self.ical.components[0]
            .component_ids
            .iter()
            .map(|&i| i as usize)
            .filter(|&i| {
                self.ical
                    .components
                    .get(i)
                    .is_some_and(|c| main_kind(&c.component_type).is_some())
            })
            .collect()
    }

    fn master(&self) -> Option<usize> {
        self.mains()
            .into_iter()
            .find(|&i| !self.ical.components[i].has_property(&ICalendarProperty::RecurrenceId))
    }

    /// Components by RECURRENCE-ID key (None: the master).
    fn by_key(&self) -> BTreeMap<Option<String>, usize> {
        self.mains()
            .into_iter()
            .map(|i| (rid_key(&self.ical.components[i]), i))
            .collect()
    }

    /// Every attendee of every component, each once (the master's values
    /// first).
    pub fn attendees(&self) -> Vec<Participant> {
        let mut order = self.mains();
        if let Some(m) = self.master() {
            order.retain(|&i| i != m);
            order.insert(0, m);
        }
        let mut out: Vec<Participant> = Vec::new();
        for i in order {
            for e in self.ical.components[i].properties(&ICalendarProperty::Attendee) {
                if let Some(p) = participant(e) {
                    if !out.iter().any(|x| x.address == p.address) {
                        out.push(p);
                    }
                }
            }
        }
        out
    }

    /// The PARTSTAT of `address` in the master (or first component that
    /// lists it).
    pub fn partstat(&self, address: &str) -> Option<String> {
        let address = address.to_lowercase();
        self.attendees()
            .into_iter()
            .find(|p| p.address == address)
            .map(|p| p.partstat)
    }

    /// Whether the owner of `addresses` is the organizer or an attendee.
    pub fn role(&self, addresses: &[String]) -> Role {
        let mine = |a: &str| addresses.iter().any(|m| m.eq_ignore_ascii_case(a));
        let Some(org) = &self.organizer else {
            return Role::None;
        };
        if mine(org) {
            return Role::Organizer(org.clone());
        }
        match self.attendees().into_iter().find(|p| mine(&p.address)) {
            Some(p) => Role::Attendee(p.address),
            None => Role::None,
        }
    }

    /// Whether `msg`, from the organizer, is older than this stored copy
    /// (RFC 5546 §2.1.5: a lower SEQUENCE, or the same SEQUENCE and an
    /// earlier DTSTAMP). With [`Self::received`] known, the comparison is
    /// with the last message the organizer sent, so an attendee's client
    /// that raised SEQUENCE on its own copy when it answered does not make
    /// the copy look newer than the organizer's next update. Without it,
    /// the copy's SEQUENCE decides.
    pub fn is_older(&self, msg: &SchedulingObject) -> bool {
        match self.received {
            Some(r) => {
                msg.sequence < r.sequence
                    || (msg.sequence == r.sequence
                        && matches!((msg.stamp, r.stamp), (Some(m), Some(k)) if m < k))
            }
            None => msg.sequence < self.sequence,
        }
    }

    /// What to remember of this message, from the organizer, with the
    /// copy it is applied to.
    pub fn as_received(&self) -> Received {
        Received {
            sequence: self.sequence,
            stamp: self.stamp,
        }
    }

    /// The object as stored text (calcard's writer).
    pub fn to_ical_string(&self) -> String {
        self.ical.to_string()
    }

    /// What an attendee sees, for change detection: the main components
    /// without DTSTAMP, LAST-MODIFIED, CREATED, PARTSTAT/RSVP/SCHEDULE-*
    /// parameters, X- properties and alarms.
    fn fingerprint(&self) -> BTreeMap<Option<String>, String> {
        self.fingerprint_with(true)
    }

    /// [`Self::fingerprint`], with or without SEQUENCE.
    fn fingerprint_with(&self, sequence: bool) -> BTreeMap<Option<String>, String> {
        let mut out = BTreeMap::new();
        for (key, i) in self.by_key() {
            let c = &self.ical.components[i];
            let mut lines: Vec<String> = Vec::new();
            for e in &c.entries {
                if matches!(
                    e.name,
                    ICalendarProperty::Dtstamp
                        | ICalendarProperty::LastModified
                        | ICalendarProperty::Created
                        | ICalendarProperty::Other(_)
                ) || (!sequence && e.name == ICalendarProperty::Sequence)
                {
                    continue;
                }
                let mut params: Vec<String> = e
                    .params
                    .iter()
                    .filter(|p| {
                        !matches!(
                            p.name,
                            ICalendarParameterName::Partstat
                                | ICalendarParameterName::Rsvp
                                | ICalendarParameterName::ScheduleStatus
                                | ICalendarParameterName::ScheduleForceSend
                                | ICalendarParameterName::ScheduleAgent
                                | ICalendarParameterName::Other(_)
                        )
                    })
                    .map(|p| format!("{:?}={:?}", p.name, p.value))
                    .collect();
                params.sort();
                let values = match e.name {
                    ICalendarProperty::Attendee | ICalendarProperty::Organizer => {
                        cal_address(e).unwrap_or_default()
                    }
                    _ => format!("{:?}", e.values),
                };
                lines.push(format!("{:?};{};{values}", e.name, params.join(";")));
            }
            lines.sort();
            out.insert(key, lines.join("\n"));
        }
        out
    }
}

/// Who gets server-sent messages: attendees other than the organizer,
/// not scheduled by their client.
fn recipients(obj: &SchedulingObject) -> Vec<String> {
    let org = obj.organizer.clone().unwrap_or_default();
    obj.attendees()
        .into_iter()
        .filter(|p| !p.client_scheduled && p.address != org)
        .map(|p| p.address)
        .collect()
}

fn now_stamp() -> PartialDateTime {
    PartialDateTime::now()
}

fn set_property(c: &mut ICalendarComponent, name: ICalendarProperty, value: ICalendarValue) {
    c.entries.retain(|e| e.name != name);
    c.entries.push(ICalendarEntry {
        name,
        params: Vec::new(),
        values: vec![value],
    });
}

fn set_partstat(e: &mut ICalendarEntry, partstat: &str) {
    e.params
        .retain(|p| p.name != ICalendarParameterName::Partstat);
    let value = match ICalendarParticipationStatus::parse(partstat.as_bytes()) {
        Some(p) => ICalendarParameterValue::Partstat(p),
        None => ICalendarParameterValue::Text(partstat.to_string()),
    };
    e.params.push(ICalendarParameter {
        name: ICalendarParameterName::Partstat,
        value,
    });
}

/// The server-only parameters (RFC 6638 §7) a message does not carry.
fn strip_schedule_params(e: &mut ICalendarEntry) {
    e.params.retain(|p| {
        !matches!(
            p.name,
            ICalendarParameterName::ScheduleStatus
                | ICalendarParameterName::ScheduleForceSend
                | ICalendarParameterName::ScheduleAgent
        )
    });
}

/// A new VCALENDAR with PRODID, VERSION and METHOD.
fn new_calendar(method: Method) -> ICalendar {
    let mut root = ICalendarComponent::new(ICalendarComponentType::VCalendar);
    root.add_property(ICalendarProperty::Prodid, PRODID);
    root.add_property(ICalendarProperty::Version, "2.0");
    root.add_property(ICalendarProperty::Method, method.to_calcard());
    ICalendar {
        components: vec![root],
    }
}

fn push_component(ical: &mut ICalendar, c: ICalendarComponent) {
    let id = ical.components.len() as u32;
    ical.components.push(c);
    ical.components[0].component_ids.push(id);
}

/// Copies the VTIMEZONEs of `from` that `to` does not have yet (after the
/// main components are in: calcard inserts them behind the first).
fn copy_timezones(to: &mut ICalendar, from: &ICalendar) {
    if to.components[0].component_ids.is_empty() {
        return;
    }
    to.copy_timezones(from);
}

/// A reduced copy of a component for CANCEL and REPLY: identity, times,
/// summary, the organizer, and the attendees `keep` selects.
fn reduced(
    c: &ICalendarComponent,
    keep: impl Fn(&ICalendarEntry) -> Option<ICalendarEntry>,
) -> ICalendarComponent {
    let mut out = ICalendarComponent::new(c.component_type.clone());
    for e in &c.entries {
        match e.name {
            ICalendarProperty::Uid
            | ICalendarProperty::Sequence
            | ICalendarProperty::Organizer
            | ICalendarProperty::Dtstart
            | ICalendarProperty::Dtend
            | ICalendarProperty::Due
            | ICalendarProperty::Duration
            | ICalendarProperty::RecurrenceId
            | ICalendarProperty::Summary => {
                let mut e = e.clone();
                strip_schedule_params(&mut e);
                out.entries.push(e);
            }
            ICalendarProperty::Attendee => {
                if let Some(e) = keep(e) {
                    out.entries.push(e);
                }
            }
            _ => {}
        }
    }
    out.add_dtstamp(now_stamp());
    out
}

fn message(
    method: Method,
    from: &str,
    recipients: Vec<String>,
    obj: &SchedulingObject,
    sequence: i64,
    partstat: Option<String>,
    ical: ICalendar,
) -> ItipMessage {
    ItipMessage {
        method,
        from: from.to_string(),
        recipients,
        uid: obj.uid.clone(),
        sequence,
        summary: obj.summary.clone(),
        partstat,
        ical: ical.to_string(),
    }
}

/// A CANCEL of the whole object to `to`, written from `obj`.
fn cancel_message(
    obj: &SchedulingObject,
    from: &str,
    to: Vec<String>,
    sequence: i64,
) -> ItipMessage {
    let mut ical = new_calendar(Method::Cancel);
    let comps = match obj.master() {
        Some(m) => vec![m],
        None => obj.mains(),
    };
    for i in comps {
        let src = &obj.ical.components[i];
        let mut c = reduced(src, |e| {
            let a = cal_address(e)?;
            to.contains(&a).then(|| {
                let mut e = e.clone();
                strip_schedule_params(&mut e);
                e
            })
        });
        set_property(
            &mut c,
            ICalendarProperty::Sequence,
            ICalendarValue::Integer(sequence),
        );
        set_property(
            &mut c,
            ICalendarProperty::Status,
            ICalendarValue::Status(ICalendarStatus::Cancelled),
        );
        push_component(&mut ical, c);
    }
    copy_timezones(&mut ical, &obj.ical);
    message(Method::Cancel, from, to, obj, sequence, None, ical)
}

/// The whole object as a REQUEST: METHOD added, server-only parameters
/// and the organizer's alarms removed, DTSTAMP now.
/// With `only`, just the overrides named (an attendee invited to some
/// instances and not to the series, RFC 6638 §3.2.6).
fn request_message(
    obj: &SchedulingObject,
    from: &str,
    to: Vec<String>,
    only: Option<&BTreeSet<Option<String>>>,
) -> ItipMessage {
    let mut ical = obj.ical.clone();
    let mut drop: Vec<u32> = ical
        .components
        .iter()
        .enumerate()
        .filter(|(_, c)| c.component_type == ICalendarComponentType::VAlarm)
        .map(|(i, _)| i as u32)
        .collect();
    if let Some(keys) = only {
        for (key, i) in obj.by_key() {
            if !keys.contains(&key) {
                drop.push(i as u32);
            }
        }
    }
    ical.remove_component_ids(&drop);
    for c in ical.components.iter_mut() {
        if main_kind(&c.component_type).is_none() {
            continue;
        }
        for e in c.entries.iter_mut() {
            if matches!(
                e.name,
                ICalendarProperty::Attendee | ICalendarProperty::Organizer
            ) {
                strip_schedule_params(e);
            }
        }
        set_property(
            c,
            ICalendarProperty::Dtstamp,
            ICalendarValue::PartialDateTime(Box::new(now_stamp())),
        );
    }
    let root = &mut ical.components[0];
    root.entries.retain(|e| e.name != ICalendarProperty::Method);
    root.add_property(ICalendarProperty::Method, Method::Request.to_calcard());
    message(Method::Request, from, to, obj, obj.sequence, None, ical)
}

/// The messages an organizer's change implies: `old` and `new` are the
/// organizer's copy before and after (None: did not exist / deleted).
/// `organizer` is the organizer's address (from [`SchedulingObject::role`]).
pub fn organizer_messages(
    old: Option<&SchedulingObject>,
    new: Option<&SchedulingObject>,
    organizer: &str,
) -> Vec<ItipMessage> {
    let mut out = Vec::new();
    match (old, new) {
        (None, None) => {}
        (Some(o), None) => {
            let to = recipients(o);
            if !o.cancelled && !to.is_empty() {
                out.push(cancel_message(o, organizer, to, o.sequence));
            }
        }
        (old, Some(n)) => {
            let now: Vec<String> = recipients(n);
            if let Some(o) = old {
                let removed: Vec<String> = recipients(o)
                    .into_iter()
                    .filter(|a| !now.contains(a))
                    .collect();
                if !removed.is_empty() && !o.cancelled {
                    out.push(cancel_message(
                        o,
                        organizer,
                        removed,
                        n.sequence.max(o.sequence),
                    ));
                }
            }
            if now.is_empty() {
                return out;
            }
            let was_cancelled = old.is_some_and(|o| o.cancelled);
            if n.cancelled {
                if !was_cancelled {
                    out.push(cancel_message(n, organizer, now, n.sequence));
                }
                return out;
            }
            let changed = match old {
                None => true,
                Some(o) => {
                    o.sequence != n.sequence || o.fingerprint() != n.fingerprint() || was_cancelled
                }
            };
            if changed {
                // Attendees of the series get all of it; attendees of
                // some instances only, those instances.
                let in_series: Vec<String> = match n.master() {
                    Some(m) => n.ical.components[m]
                        .properties(&ICalendarProperty::Attendee)
                        .filter_map(participant)
                        .map(|p| p.address)
                        .collect(),
                    None => now.clone(),
                };
                let mut groups: BTreeMap<BTreeSet<Option<String>>, Vec<String>> = BTreeMap::new();
                let mut whole = Vec::new();
                for r in now {
                    if in_series.contains(&r) {
                        whole.push(r);
                        continue;
                    }
                    let keys: BTreeSet<Option<String>> = n
                        .by_key()
                        .into_iter()
                        .filter(|(_, i)| {
                            n.ical.components[*i]
                                .properties(&ICalendarProperty::Attendee)
                                .filter_map(participant)
                                .any(|p| p.address == r)
                        })
                        .map(|(k, _)| k)
                        .collect();
                    groups.entry(keys).or_default().push(r);
                }
                if !whole.is_empty() {
                    out.push(request_message(n, organizer, whole, None));
                }
                for (keys, to) in groups {
                    out.push(request_message(n, organizer, to, Some(&keys)));
                }
            }
        }
    }
    out
}

/// A REPLY from `attendee` with the components of `obj` named by `keys`
/// (None: the master), PARTSTAT forced to `force` when given.
fn reply_message(
    obj: &SchedulingObject,
    attendee: &str,
    keys: &[Option<String>],
    force: Option<&str>,
) -> Option<ItipMessage> {
    let organizer = obj.organizer.clone()?;
    let mut ical = new_calendar(Method::Reply);
    let by_key = obj.by_key();
    let mut partstat = None;
    for key in keys {
        let Some(&i) = by_key.get(key) else { continue };
        let src = &obj.ical.components[i];
        let c = reduced(src, |e| {
            (cal_address(e)? == attendee).then(|| {
                let mut e = e.clone();
                strip_schedule_params(&mut e);
                e.params.retain(|p| p.name != ICalendarParameterName::Rsvp);
                if let Some(f) = force {
                    set_partstat(&mut e, f);
                }
                e
            })
        });
        if partstat.is_none() {
            partstat = c
                .properties(&ICalendarProperty::Attendee)
                .find_map(participant)
                .map(|p| p.partstat);
        }
        push_component(&mut ical, c);
    }
    if ical.components[0].component_ids.is_empty() {
        return None;
    }
    copy_timezones(&mut ical, &obj.ical);
    Some(message(
        Method::Reply,
        attendee,
        vec![organizer],
        obj,
        obj.sequence,
        partstat,
        ical,
    ))
}

/// PARTSTAT of `attendee` per component key, where the component lists
/// the attendee.
fn partstats(obj: &SchedulingObject, attendee: &str) -> BTreeMap<Option<String>, String> {
    let mut out = BTreeMap::new();
    for (key, i) in obj.by_key() {
        if let Some(p) = obj.ical.components[i]
            .properties(&ICalendarProperty::Attendee)
            .filter_map(participant)
            .find(|p| p.address == attendee)
        {
            out.insert(key, p.partstat);
        }
    }
    out
}

/// The REPLY an attendee's change implies, if any: `attendee` is the
/// attendee's address (from [`SchedulingObject::role`]).
pub fn attendee_reply(
    old: Option<&SchedulingObject>,
    new: Option<&SchedulingObject>,
    attendee: &str,
) -> Option<ItipMessage> {
    let attendee = attendee.to_lowercase();
    match (old, new) {
        (None, None) => None,
        (Some(o), None) => {
            // Deleted by the attendee: declined (RFC 6638 §3.2.2.3),
            // unless it was cancelled or declined already.
            let mine = partstats(o, &attendee);
            if o.cancelled || mine.is_empty() || mine.values().all(|p| p == "DECLINED") {
                return None;
            }
            let keys: Vec<Option<String>> = match o.master() {
                Some(_) => vec![None],
                None => mine.keys().cloned().collect(),
            };
            reply_message(o, &attendee, &keys, Some("DECLINED"))
        }
        (old, Some(n)) => {
            if n.cancelled {
                return None;
            }
            let before = old.map(|o| partstats(o, &attendee)).unwrap_or_default();
            let after = partstats(n, &attendee);
            let keys: Vec<Option<String>> = after
                .iter()
                .filter(|(k, p)| match before.get(*k) {
                    Some(b) => b != *p,
                    // A new override (one instance answered), or a copy
                    // the attendee created already answered.
                    None => *p != "NEEDS-ACTION" && (k.is_none() || before.get(&None) != Some(*p)),
                })
                .map(|(k, _)| k.clone())
                .collect();
            if keys.is_empty() {
                return None;
            }
            reply_message(n, &attendee, &keys, None)
        }
    }
}

fn check_same(
    stored: &SchedulingObject,
    msg: &SchedulingObject,
    method: Method,
) -> Result<(), PimError> {
    if msg.method.as_deref() != Some(method.as_str()) {
        return Err(PimError::Parse(format!(
            "expected METHOD:{}, found {:?}",
            method.as_str(),
            msg.method
        )));
    }
    if stored.uid != msg.uid {
        return Err(PimError::MultipleUids(stored.uid.clone(), msg.uid.clone()));
    }
    Ok(())
}

/// The organizer's copy with the PARTSTATs of a received REPLY applied
/// (an instance answered on its own gets an override if it has none);
/// `None` when nothing changed (an outdated reply, an attendee the copy
/// does not list).
pub fn apply_reply(
    stored: &SchedulingObject,
    reply: &SchedulingObject,
) -> Result<Option<String>, PimError> {
    check_same(stored, reply, Method::Reply)?;
    if reply.sequence < stored.sequence {
        return Ok(None);
    }
    let mut ical = stored.ical.clone();
    let by_key = stored.by_key();
    let master = stored.master();
    let mut changed = false;
    for (key, ri) in reply.by_key() {
        let si = match (by_key.get(&key), master) {
            (Some(&si), _) => si,
            // An answer for one instance the copy has no override for:
            // the instance gets one (RFC 6638 §3.2.2.1 does the same on
            // the organizer's side).
            (None, Some(m)) if key.is_some() => {
                match override_of(&ical.components[m], &reply.ical.components[ri]) {
                    Some(c) => {
                        let id = ical.components.len() as u32;
                        ical.components.push(c);
                        ical.components[0].component_ids.push(id);
                        id as usize
                    }
                    None => continue,
                }
            }
            _ => continue,
        };
        for p in reply.ical.components[ri]
            .properties(&ICalendarProperty::Attendee)
            .filter_map(participant)
        {
            for e in ical.components[si].entries.iter_mut() {
                if e.name == ICalendarProperty::Attendee
                    && cal_address(e).as_deref() == Some(p.address.as_str())
                {
                    let before = participant(e).map(|x| x.partstat);
                    if before.as_deref() != Some(p.partstat.as_str()) {
                        set_partstat(e, &p.partstat);
                        changed = true;
                    }
                    e.params.retain(|x| x.name != ICalendarParameterName::Rsvp);
                }
            }
        }
    }
    Ok(changed.then(|| ical.to_string()))
}

/// Seconds of a DATE or DATE-TIME read as naive local time (for the
/// length of an event whose DTSTART and DTEND share a zone).
fn naive_seconds(d: &PartialDateTime) -> Option<i64> {
    let date = chrono::NaiveDate::from_ymd_opt(
        i32::from(d.year?),
        u32::from(d.month?),
        u32::from(d.day?),
    )?;
    let t = date.and_hms_opt(
        u32::from(d.hour.unwrap_or(0)),
        u32::from(d.minute.unwrap_or(0)),
        u32::from(d.second.unwrap_or(0)),
    )?;
    Some(t.and_utc().timestamp())
}

/// A new override of `master` for the instance a reply component names
/// (its RECURRENCE-ID): the master's properties without the recurrence
/// rules, starting at the RECURRENCE-ID, as long as the master.
fn override_of(
    master: &ICalendarComponent,
    answer: &ICalendarComponent,
) -> Option<ICalendarComponent> {
    let rid = answer.property(&ICalendarProperty::RecurrenceId)?.clone();
    let mut c = ICalendarComponent::new(master.component_type.clone());
    let start = master.property(&ICalendarProperty::Dtstart);
    let length = match (
        master.property(&ICalendarProperty::Duration),
        start
            .and_then(|e| e.values.first())
            .and_then(|v| v.as_partial_date_time()),
        master
            .property(&ICalendarProperty::Dtend)
            .and_then(|e| e.values.first())
            .and_then(|v| v.as_partial_date_time()),
    ) {
        (Some(d), _, _) => Some(d.clone()),
        (None, Some(s), Some(e)) => {
            let secs = naive_seconds(e)? - naive_seconds(s)?;
            Some(ICalendarEntry {
                name: ICalendarProperty::Duration,
                params: Vec::new(),
                values: vec![ICalendarValue::Duration(
                    calcard::icalendar::ICalendarDuration::from_seconds(secs.max(0)),
                )],
            })
        }
        _ => None,
    };
    for e in &master.entries {
        if !matches!(
            e.name,
            ICalendarProperty::Rrule
                | ICalendarProperty::Rdate
                | ICalendarProperty::Exdate
                | ICalendarProperty::Exrule
                | ICalendarProperty::RecurrenceId
                | ICalendarProperty::Dtstart
                | ICalendarProperty::Dtend
                | ICalendarProperty::Duration
        ) {
            c.entries.push(e.clone());
        }
    }
    let mut dtstart = rid.clone();
    dtstart.name = ICalendarProperty::Dtstart;
    dtstart.params.retain(|p| {
        matches!(
            p.name,
            ICalendarParameterName::Tzid | ICalendarParameterName::Value
        )
    });
    c.entries.push(rid);
    c.entries.push(dtstart);
    if let Some(l) = length {
        c.entries.push(l);
    }
    Some(c)
}

/// The attendee's new copy from a received REQUEST: the message without
/// METHOD; where the stored copy answered the same SEQUENCE (per
/// component), the attendee's PARTSTAT is kept. `None` when the request is
/// older than the stored copy. `addresses` are the attendee's own.
pub fn apply_request(
    stored: Option<&SchedulingObject>,
    request: &SchedulingObject,
    addresses: &[String],
) -> Result<Option<String>, PimError> {
    if let Some(s) = stored {
        check_same(s, request, Method::Request)?;
        if s.is_older(request) {
            return Ok(None);
        }
    } else if request.method.as_deref() != Some(Method::Request.as_str()) {
        return Err(PimError::Parse("expected METHOD:REQUEST".into()));
    }
    let mine = |a: &str| addresses.iter().any(|m| m.eq_ignore_ascii_case(a));
    let mut ical = request.ical.clone();
    ical.components[0]
        .entries
        .retain(|e| e.name != ICalendarProperty::Method);
    if let Some(s) = stored {
        let stored_by_key = s.by_key();
        // The attendee's own alarms stay (a REQUEST carries none of theirs).
        for (key, i) in request.by_key() {
            let Some(&si) = stored_by_key.get(&key) else {
                continue;
            };
            let has_alarm = ical.components[i].component_ids.iter().any(|&a| {
                ical.components
                    .get(a as usize)
                    .is_some_and(|c| c.component_type == ICalendarComponentType::VAlarm)
            });
            if has_alarm {
                continue;
            }
            for &a in &s.ical.components[si].component_ids {
                let Some(alarm) = s.ical.components.get(a as usize) else {
                    continue;
                };
                if alarm.component_type != ICalendarComponentType::VAlarm {
                    continue;
                }
                let id = ical.components.len() as u32;
                ical.components.push(ICalendarComponent {
                    component_type: ICalendarComponentType::VAlarm,
                    entries: alarm.entries.clone(),
                    component_ids: Vec::new(),
                });
                ical.components[i].component_ids.push(id);
            }
        }
        for (key, i) in request.by_key() {
            let Some(&si) = stored_by_key.get(&key) else {
                continue;
            };
            let sc = &s.ical.components[si];
            // The version the answer was given to: the organizer's SEQUENCE
            // last received for the master, whatever the attendee's client
            // wrote there since.
            let answered_to = match (&key, s.received) {
                (None, Some(r)) => r.sequence,
                _ => sequence_of(sc),
            };
            if answered_to != sequence_of(&request.ical.components[i]) {
                continue;
            }
            let answered: Vec<Participant> = sc
                .properties(&ICalendarProperty::Attendee)
                .filter_map(participant)
                .filter(|p| mine(&p.address) && p.partstat != "NEEDS-ACTION")
                .collect();
            for e in ical.components[i].entries.iter_mut() {
                if e.name != ICalendarProperty::Attendee {
                    continue;
                }
                let Some(a) = cal_address(e) else { continue };
                if let Some(p) = answered.iter().find(|p| p.address == a) {
                    set_partstat(e, &p.partstat);
                }
            }
        }
    }
    Ok(Some(ical.to_string()))
}

/// The attendee's copy with a received CANCEL applied: the object (or the
/// cancelled instances) STATUS:CANCELLED; an instance the copy has no
/// override for gets an EXDATE on the master. `None` when the cancel is
/// older than the copy.
pub fn apply_cancel(
    stored: &SchedulingObject,
    cancel: &SchedulingObject,
) -> Result<Option<String>, PimError> {
    check_same(stored, cancel, Method::Cancel)?;
    if stored.is_older(cancel) {
        return Ok(None);
    }
    let mut ical = stored.ical.clone();
    let by_key = stored.by_key();
    let master = stored.master();
    let mut changed = false;
    let cancelled = |c: &mut ICalendarComponent, seq: i64| {
        set_property(
            c,
            ICalendarProperty::Status,
            ICalendarValue::Status(ICalendarStatus::Cancelled),
        );
        if seq > sequence_of(c) {
            set_property(c, ICalendarProperty::Sequence, ICalendarValue::Integer(seq));
        }
    };
    for (key, ci) in cancel.by_key() {
        let seq = sequence_of(&cancel.ical.components[ci]);
        match key {
            None => {
                for &i in by_key.values() {
                    cancelled(&mut ical.components[i], seq);
                }
                changed = true;
            }
            Some(k) => match by_key.get(&Some(k)) {
                Some(&i) => {
                    cancelled(&mut ical.components[i], seq);
                    changed = true;
                }
                None => {
                    let (Some(m), Some(rid)) = (
                        master,
                        cancel.ical.components[ci].property(&ICalendarProperty::RecurrenceId),
                    ) else {
                        continue;
                    };
                    let mut ex = rid.clone();
                    ex.name = ICalendarProperty::Exdate;
                    ex.params.retain(|p| {
                        matches!(
                            p.name,
                            ICalendarParameterName::Tzid | ICalendarParameterName::Value
                        )
                    });
                    ical.components[m].entries.push(ex);
                    changed = true;
                }
            },
        }
    }
    Ok(changed.then(|| ical.to_string()))
}

/// The copy with `attendee`'s PARTSTAT set to `partstat` in every
/// component that lists it (a room or resource answering by itself).
pub fn set_attendee_partstat(obj: &SchedulingObject, attendee: &str, partstat: &str) -> String {
    let attendee = attendee.to_lowercase();
    let mut ical = obj.ical.clone();
    for i in obj.mains() {
        for e in ical.components[i].entries.iter_mut() {
            if e.name == ICalendarProperty::Attendee
                && cal_address(e).as_deref() == Some(attendee.as_str())
            {
                set_partstat(e, partstat);
                e.params.retain(|p| p.name != ICalendarParameterName::Rsvp);
            }
        }
    }
    ical.to_string()
}

/// The organizer's answer to a REFRESH from `attendee` (RFC 5546 §3.2.6):
/// the current version as a REQUEST to that attendee alone (only its
/// instances when it is invited to some instances only), or a CANCEL when
/// the object is cancelled. `None` when `attendee` is not one of the
/// object's attendees.
pub fn refresh_answer(
    obj: &SchedulingObject,
    organizer: &str,
    attendee: &str,
) -> Option<ItipMessage> {
    let attendee = attendee.to_lowercase();
    if !obj.attendees().iter().any(|p| p.address == attendee) {
        return None;
    }
    if obj.cancelled {
        return Some(cancel_message(obj, organizer, vec![attendee], obj.sequence));
    }
    let in_series = match obj.master() {
        Some(m) => obj.ical.components[m]
            .properties(&ICalendarProperty::Attendee)
            .filter_map(participant)
            .any(|p| p.address == attendee),
        None => true,
    };
    if in_series {
        return Some(request_message(obj, organizer, vec![attendee], None));
    }
    let keys: BTreeSet<Option<String>> = obj
        .by_key()
        .into_iter()
        .filter(|(_, i)| {
            obj.ical.components[*i]
                .properties(&ICalendarProperty::Attendee)
                .filter_map(participant)
                .any(|p| p.address == attendee)
        })
        .map(|(k, _)| k)
        .collect();
    Some(request_message(obj, organizer, vec![attendee], Some(&keys)))
}

/// Whether a write from `old` to `new` changes the Schedule-Tag
/// (RFC 6638 §3.2.10): a change an attendee or organizer must see (times,
/// summary, location, the attendee list, status...) does; PARTSTATs,
/// SCHEDULE-STATUS, DTSTAMP, alarms and X- properties do not, so neither
/// a REPLY merged into the organizer's copy nor an attendee saving its
/// answer changes it. `organizer_side` is a write by the organizer (its
/// client, or the server applying the organizer's message to an
/// attendee's copy): a new SEQUENCE counts there, not on the attendee's
/// side, where clients raise it on their own.
pub fn schedule_tag_changes(
    old: &SchedulingObject,
    new: &SchedulingObject,
    organizer_side: bool,
) -> bool {
    (organizer_side && old.sequence != new.sequence)
        || old.cancelled != new.cancelled
        || old.fingerprint_with(false) != new.fingerprint_with(false)
}

/// The organizer's copy with SCHEDULE-STATUS (RFC 6638 §3.2.9) set on
/// each ATTENDEE named in `statuses` (address without `mailto:`, status
/// code such as "1.2"), in every component that lists it; `None` when
/// nothing changed.
pub fn set_schedule_status(
    obj: &SchedulingObject,
    statuses: &[(String, String)],
) -> Option<String> {
    let mut ical = obj.ical.clone();
    let mut changed = false;
    for i in obj.mains() {
        for e in ical.components[i].entries.iter_mut() {
            if e.name != ICalendarProperty::Attendee {
                continue;
            }
            let Some(a) = cal_address(e) else { continue };
            let Some((_, code)) = statuses.iter().find(|(x, _)| x.eq_ignore_ascii_case(&a)) else {
                continue;
            };
            let before = e
                .parameter(&ICalendarParameterName::ScheduleStatus)
                .and_then(|v| v.as_text())
                .map(str::to_string);
            if before.as_deref() == Some(code.as_str()) {
                continue;
            }
            e.params
                .retain(|p| p.name != ICalendarParameterName::ScheduleStatus);
            e.params.push(ICalendarParameter {
                name: ICalendarParameterName::ScheduleStatus,
                value: ICalendarParameterValue::Text(code.clone()),
            });
            changed = true;
        }
    }
    changed.then(|| ical.to_string())
}

/// An organizer's PUT under a matching `If-Schedule-Tag-Match`
/// (RFC 6638 §3.2.10): the client wrote over a copy whose attendees'
/// answers the server may have changed since it read it. Where the new
/// version is the same SEQUENCE as the stored one (not a reschedule, which
/// asks everyone again), each attendee's PARTSTAT (the organizer's own
/// aside) and SCHEDULE-STATUS are taken from the stored copy. `None` when
/// that changes nothing.
pub fn keep_answers(
    stored: &SchedulingObject,
    new: &SchedulingObject,
    organizer: &str,
) -> Option<String> {
    if stored.sequence != new.sequence || stored.uid != new.uid {
        return None;
    }
    let stored_by_key = stored.by_key();
    let mut ical = new.ical.clone();
    let mut changed = false;
    for (key, i) in new.by_key() {
        let Some(&si) = stored_by_key.get(&key) else {
            continue;
        };
        let answers: Vec<(
            String,
            Option<ICalendarParameter>,
            Option<ICalendarParameter>,
        )> = stored.ical.components[si]
            .properties(&ICalendarProperty::Attendee)
            .filter_map(|e| {
                let a = cal_address(e)?;
                let get =
                    |n: &ICalendarParameterName| e.params.iter().find(|p| &p.name == n).cloned();
                Some((
                    a,
                    get(&ICalendarParameterName::Partstat),
                    get(&ICalendarParameterName::ScheduleStatus),
                ))
            })
            .collect();
        for e in ical.components[i].entries.iter_mut() {
            if e.name != ICalendarProperty::Attendee {
                continue;
            }
            let Some(a) = cal_address(e) else { continue };
            if a.eq_ignore_ascii_case(organizer) {
                continue;
            }
            let Some((_, partstat, status)) = answers.iter().find(|(x, _, _)| *x == a) else {
                continue;
            };
            for (name, want) in [
                (ICalendarParameterName::Partstat, partstat),
                (ICalendarParameterName::ScheduleStatus, status),
            ] {
                let have = e.params.iter().find(|p| p.name == name);
                if have == want.as_ref() {
                    continue;
                }
                e.params.retain(|p| p.name != name);
                if let Some(w) = want {
                    e.params.push(w.clone());
                }
                changed = true;
            }
        }
    }
    changed.then(|| ical.to_string())
}

/// Busy time in a VFREEBUSY reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy {
    pub start: i64,
    pub end: i64,
    pub tentative: bool,
}

/// A VFREEBUSY REPLY (RFC 5546 §3.3; the CalDAV outbox POST answer of
/// RFC 6638 §5): the busy periods of `attendee` over `[start, end)`.
pub fn free_busy_reply(
    organizer: Option<&str>,
    attendee: &str,
    uid: Option<&str>,
    start: i64,
    end: i64,
    busy: &[Busy],
) -> String {
    use calcard::icalendar::{ICalendarFreeBusyType, ICalendarPeriod};
    let mut ical = new_calendar(Method::Reply);
    let mut c = ICalendarComponent::new(ICalendarComponentType::VFreebusy);
    if let Some(u) = uid {
        c.add_uid(u);
    }
    c.add_dtstamp(now_stamp());
    c.add_property(
        ICalendarProperty::Dtstart,
        PartialDateTime::from_utc_timestamp(start),
    );
    c.add_property(
        ICalendarProperty::Dtend,
        PartialDateTime::from_utc_timestamp(end),
    );
    if let Some(o) = organizer {
        c.add_property(
            ICalendarProperty::Organizer,
            ICalendarValue::Uri(Uri::Location(format!("mailto:{o}"))),
        );
    }
    c.add_property(
        ICalendarProperty::Attendee,
        ICalendarValue::Uri(Uri::Location(format!("mailto:{attendee}"))),
    );
    let mut seen = BTreeSet::new();
    for b in busy {
        if !seen.insert((b.start, b.end, b.tentative)) {
            continue;
        }
        let fb = if b.tentative {
            ICalendarFreeBusyType::BusyTentative
        } else {
            ICalendarFreeBusyType::Busy
        };
        c.add_property_with_params(
            ICalendarProperty::Freebusy,
            [ICalendarParameter {
                name: ICalendarParameterName::Fbtype,
                value: ICalendarParameterValue::Fbtype(fb),
            }],
            ICalendarPeriod::Range {
                start: PartialDateTime::from_utc_timestamp(b.start),
                end: PartialDateTime::from_utc_timestamp(b.end),
            },
        );
    }
    push_component(&mut ical, c);
    ical.to_string()
}

#[cfg(test)]
mod tests;

/// A VFREEBUSY REQUEST (RFC 5546 §3.3.2), as a CalDAV client POSTs it to
/// its schedule outbox (RFC 6638 §5): whose busy time, over what range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreeBusyRequest {
    /// The ORGANIZER (who asks), without `mailto:`, lowercased.
    pub organizer: Option<String>,
    /// The ATTENDEEs whose busy time is asked, in order, without duplicates.
    pub attendees: Vec<String>,
    pub uid: Option<String>,
    /// DTSTART and DTEND, UTC seconds.
    pub start: i64,
    pub end: i64,
}

/// Reads a VFREEBUSY REQUEST: METHOD:REQUEST, one VFREEBUSY with DTSTART,
/// DTEND (after DTSTART) and at least one ATTENDEE. Within `limits`
/// (size, components, attendees).
pub fn parse_free_busy_request(bytes: &[u8], limits: &Limits) -> Result<FreeBusyRequest, PimError> {
    let (ical, method) = parse_vcalendar(bytes, limits)?;
    let root = &ical.components[0];
    if method.as_deref() != Some("REQUEST") {
        return Err(PimError::Parse(
            "a free/busy request has METHOD:REQUEST".into(),
        ));
    }
    let mut fb = root.component_ids.iter().filter_map(|&id| {
        ical.components
            .get(id as usize)
            .filter(|c| c.component_type == ICalendarComponentType::VFreebusy)
    });
    let (Some(c), None) = (fb.next(), fb.next()) else {
        return Err(PimError::Parse(
            "a free/busy request holds one VFREEBUSY".into(),
        ));
    };
    let time = |p: ICalendarProperty| {
        c.property(&p)
            .and_then(|e| e.values.first())
            .and_then(|v| v.as_partial_date_time())
            .and_then(|d| d.to_timestamp())
    };
    let (Some(start), Some(end)) = (
        time(ICalendarProperty::Dtstart),
        time(ICalendarProperty::Dtend),
    ) else {
        return Err(PimError::InvalidDates(
            "VFREEBUSY needs DTSTART and DTEND".into(),
        ));
    };
    if end <= start {
        return Err(PimError::InvalidDates("DTEND is not after DTSTART".into()));
    }
    let organizer = c
        .property(&ICalendarProperty::Organizer)
        .and_then(cal_address)
        .filter(|a| !a.is_empty());
    let mut attendees: Vec<String> = Vec::new();
    for e in c.properties(&ICalendarProperty::Attendee) {
        if let Some(a) = cal_address(e).filter(|a| !a.is_empty()) {
            if !attendees.contains(&a) {
                if attendees.len() >= limits.max_attendees {
                    return Err(PimError::TooManyAttendees(limits.max_attendees));
                }
                attendees.push(a);
            }
        }
    }
    if attendees.is_empty() {
        return Err(PimError::Parse(
            "a free/busy request names an ATTENDEE".into(),
        ));
    }
    let uid = c.uid().map(str::to_string);
    Ok(FreeBusyRequest {
        organizer,
        attendees,
        uid,
        start,
        end,
    })
}
