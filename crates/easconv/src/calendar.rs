//! VEVENT <-> Calendar ApplicationData (MS-ASCAL).

use crate::model::{
    self, clean, date_only, entry, local_time, text_entry, utc_offset, utc_time, Component,
    EntryExt, Kind, Param, P,
};
use crate::tz::{info_for, Rule, TimeZoneInfo};
use crate::{
    EasVersion, Error, Result, MAX_ATTENDEES, MAX_BODY, MAX_CATEGORIES, MAX_EXCEPTIONS, MAX_FIELD,
    YEARS,
};
use calcard::common::PartialDateTime;
use calcard::icalendar::{
    ICalendarAction, ICalendarClassification, ICalendarDay, ICalendarDuration, ICalendarEntry,
    ICalendarFrequency, ICalendarMonth, ICalendarParameter, ICalendarParticipationRole,
    ICalendarParticipationStatus, ICalendarRecurrenceRule, ICalendarStatus, ICalendarTransparency,
    ICalendarUserTypes, ICalendarValue, ICalendarValueType, ICalendarWeekday, Uri,
};
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use outpost_wbxml::Element;

const CAL: &str = "Calendar";
const BASE: &str = "AirSyncBase";

/// How to render an event for one client.
#[derive(Debug, Clone)]
pub struct EventOptions {
    /// The zone for floating and UTC times (the user's zone).
    pub default_tz: Tz,
    /// AirSyncBase BodyPreference Type: 1 plain text, 2 HTML.
    pub body_type: u8,
    /// BodyPreference TruncationSize, in bytes.
    pub truncation: Option<usize>,
    /// The user's own addresses: an organizer among them makes
    /// MeetingStatus 1 (organized by me), else 3 (received).
    pub own_addresses: Vec<String>,
}

impl Default for EventOptions {
    fn default() -> Self {
        EventOptions {
            default_tz: Tz::UTC,
            body_type: 1,
            truncation: None,
            own_addresses: Vec::new(),
        }
    }
}

/// A DTSTART-like value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum When {
    Utc(DateTime<Utc>),
    Local(NaiveDateTime, Option<Tz>),
    Date(NaiveDate),
}

pub(crate) fn check_year(y: i32) -> Result<()> {
    if YEARS.contains(&y) {
        Ok(())
    } else {
        Err(Error::Invalid(format!("year {y} out of range")))
    }
}

/// A DTSTART-like entry's value.
pub(crate) fn parse_when(e: &ICalendarEntry) -> Result<When> {
    match e.values.first() {
        Some(ICalendarValue::PartialDateTime(dt)) => when_of(dt, e.param(&Param::Tzid)),
        _ => Err(Error::Invalid(format!("bad {} value", e.name.as_str()))),
    }
}

/// A date or date-time as calcard read it, local ones in `tzid`.
pub(crate) fn when_of(dt: &PartialDateTime, tzid: Option<&str>) -> Result<When> {
    let bad = || Error::Invalid("bad date-time".into());
    let d = match (dt.year, dt.month, dt.day) {
        (Some(y), Some(m), Some(d)) => {
            NaiveDate::from_ymd_opt(y.into(), m.into(), d.into()).ok_or_else(bad)?
        }
        _ => return Err(bad()),
    };
    check_year(d.year())?;
    let Some(h) = dt.hour else {
        return Ok(When::Date(d));
    };
    let t = d
        .and_hms_opt(
            h.into(),
            dt.minute.unwrap_or(0).into(),
            dt.second.unwrap_or(0).min(59).into(),
        )
        .ok_or_else(bad)?;
    match model::offset_minutes(dt) {
        Some(off) => Ok(When::Utc(
            Utc.from_utc_datetime(&(t - chrono::Duration::minutes(off.into()))),
        )),
        None => Ok(When::Local(t, tzid.and_then(crate::tz::zone_named))),
    }
}

fn local_to_utc(t: NaiveDateTime, tz: Tz) -> DateTime<Utc> {
    match tz.from_local_datetime(&t) {
        chrono::LocalResult::Single(x) | chrono::LocalResult::Ambiguous(x, _) => {
            x.with_timezone(&Utc)
        }
        // In a gap: the wall time an hour later exists.
        chrono::LocalResult::None => local_to_utc(t + chrono::Duration::hours(1), tz),
    }
}

pub(crate) fn to_utc(w: When, tz: Tz) -> DateTime<Utc> {
    match w {
        When::Utc(t) => t,
        When::Local(t, z) => local_to_utc(t, z.unwrap_or(tz)),
        When::Date(d) => local_to_utc(d.and_hms_opt(0, 0, 0).unwrap_or_default(), tz),
    }
}

/// MS-ASDTYPE compact date-time: 20091224T090000Z.
pub fn compact(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// Reads a compact or extended (2009-12-24T09:00:00.000Z) UTC date-time.
pub fn parse_eas_time(s: &str) -> Result<DateTime<Utc>> {
    let s = s.trim();
    let t = NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%SZ")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.fZ"))
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%SZ"))
        // Some clients leave the Z off; the value is UTC all the same.
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%S"))
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f"))
        .map_err(|_| Error::Invalid(format!("bad date-time {s:?}")))?;
    check_year(t.year())?;
    Ok(Utc.from_utc_datetime(&t))
}

pub(crate) fn el(page: &str, name: &str, text: impl Into<String>) -> Element {
    Element::named(page, name).with_text(text)
}

pub(crate) fn capped(s: String, what: &'static str, max: usize) -> Result<String> {
    if s.len() > max {
        Err(Error::TooLarge(what))
    } else {
        Ok(s)
    }
}

fn mailto(v: &str) -> String {
    let v = v.trim();
    match v.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("mailto:") => v[7..].to_string(),
        _ => v.to_string(),
    }
}

pub(crate) fn body_element(text: &str, opts: &EventOptions) -> Element {
    let (ty, data) = if opts.body_type == 2 {
        let mut h = String::from("<html><body>");
        for c in text.chars() {
            match c {
                '<' => h.push_str("&lt;"),
                '>' => h.push_str("&gt;"),
                '&' => h.push_str("&amp;"),
                '\n' => h.push_str("<br>"),
                c => h.push(c),
            }
        }
        h.push_str("</body></html>");
        ("2", h)
    } else {
        ("1", text.to_string())
    };
    let size = data.len();
    let mut body = Element::named(BASE, "Body").with(el(BASE, "Type", ty));
    body = body.with(el(BASE, "EstimatedDataSize", size.to_string()));
    match opts.truncation {
        Some(max) if size > max => {
            let mut cut = max;
            while !data.is_char_boundary(cut) {
                cut -= 1;
            }
            body.with(el(BASE, "Truncated", "1"))
                .with(el(BASE, "Data", &data[..cut]))
        }
        _ => body.with(el(BASE, "Data", data)),
    }
}

/// Minutes before the start of the first display alarm.
fn reminder_minutes(ev: &Component) -> Option<u32> {
    let alarm = ev.subs.iter().find(|s| s.kind == Kind::VAlarm)?;
    // A duration; an absolute (VALUE=DATE-TIME) trigger is no Reminder.
    let Some(ICalendarValue::Duration(d)) = alarm.prop(&P::Trigger)?.values.first() else {
        return None;
    };
    let mins = u64::from(d.weeks) * 7 * 1440
        + u64::from(d.days) * 1440
        + u64::from(d.hours) * 60
        + u64::from(d.minutes)
        + u64::from(d.seconds) / 60;
    if !d.neg && mins > 0 {
        return None;
    }
    u32::try_from(mins).ok().filter(|m| *m <= 525_600 * 10)
}

fn split_components(ical: &str) -> Result<(Component, Component, Vec<Component>)> {
    let root = model::parse_calendar(ical)?;
    let mut master = None;
    let mut overrides = Vec::new();
    for s in &root.subs {
        if s.kind != Kind::VEvent {
            continue;
        }
        if s.prop(&P::RecurrenceId).is_some() {
            overrides.push(s.clone());
        } else if master.is_none() {
            master = Some(s.clone());
        }
    }
    let master = master.ok_or_else(|| Error::Invalid("no VEVENT".into()))?;
    if overrides.len() > MAX_EXCEPTIONS {
        return Err(Error::TooLarge("exceptions"));
    }
    Ok((root, master, overrides))
}

/// ActiveSync numbers the days of the week from Sunday.
const WEEK: [ICalendarWeekday; 7] = [
    ICalendarWeekday::Sunday,
    ICalendarWeekday::Monday,
    ICalendarWeekday::Tuesday,
    ICalendarWeekday::Wednesday,
    ICalendarWeekday::Thursday,
    ICalendarWeekday::Friday,
    ICalendarWeekday::Saturday,
];

fn day_index(d: ICalendarWeekday) -> usize {
    WEEK.iter().position(|w| *w == d).unwrap_or(0)
}

pub(crate) fn recurrence_to_eas(
    rule: &ICalendarRecurrenceRule,
    start_local: NaiveDateTime,
    tz: Tz,
) -> Result<Element> {
    let interval = u32::from(rule.interval.unwrap_or(1));
    let count = rule.count;
    let until = rule.until.as_ref().map(|u| when_of(u, None)).transpose()?;
    let byday: Vec<(i32, usize)> = rule
        .byday
        .iter()
        .take(7)
        .map(|d| (d.ordwk.map(i32::from).unwrap_or(0), day_index(d.weekday)))
        .collect();
    let bymonthday = rule.bymonthday.first().map(|d| i32::from(*d));
    let bymonth = rule.bymonth.first().map(|m| u32::from(m.month()));
    let bysetpos = rule.bysetpos.first().copied();
    let wkst = rule.wkst.map(day_index);
    if interval == 0 || interval > 999 {
        return Err(Error::Invalid("INTERVAL out of range".into()));
    }
    let mask = |days: &[(i32, usize)]| days.iter().fold(0u32, |m, (_, d)| m | (1 << d));
    let nth = |days: &[(i32, usize)]| {
        let n = days.first().map(|d| d.0).unwrap_or(0);
        let n = if n == 0 { bysetpos.unwrap_or(0) } else { n };
        if n < 0 {
            5
        } else {
            n.clamp(1, 5)
        }
    };
    let mut r = Element::named(CAL, "Recurrence");
    let (ty, extra): (u8, Vec<Element>) = match rule.freq {
        ICalendarFrequency::Daily if byday.is_empty() => (0, vec![]),
        ICalendarFrequency::Daily => (1, vec![el(CAL, "DayOfWeek", mask(&byday).to_string())]),
        ICalendarFrequency::Weekly => {
            let m = if byday.is_empty() {
                1 << start_local.weekday().num_days_from_sunday()
            } else {
                mask(&byday)
            };
            (1, vec![el(CAL, "DayOfWeek", m.to_string())])
        }
        ICalendarFrequency::Monthly if !byday.is_empty() => (
            3,
            vec![
                el(CAL, "DayOfWeek", mask(&byday).to_string()),
                el(CAL, "WeekOfMonth", nth(&byday).to_string()),
            ],
        ),
        ICalendarFrequency::Monthly => {
            let d = bymonthday.unwrap_or(start_local.day() as i32);
            let d = if d < 0 { 31 } else { d };
            (2, vec![el(CAL, "DayOfMonth", d.to_string())])
        }
        ICalendarFrequency::Yearly => {
            let m = bymonth.unwrap_or(start_local.month());
            if byday.is_empty() {
                let d = bymonthday.unwrap_or(start_local.day() as i32);
                (
                    5,
                    vec![
                        el(CAL, "DayOfMonth", d.max(1).to_string()),
                        el(CAL, "MonthOfYear", m.to_string()),
                    ],
                )
            } else {
                (
                    6,
                    vec![
                        el(CAL, "DayOfWeek", mask(&byday).to_string()),
                        el(CAL, "WeekOfMonth", nth(&byday).to_string()),
                        el(CAL, "MonthOfYear", m.to_string()),
                    ],
                )
            }
        }
        f => return Err(Error::Invalid(format!("unsupported FREQ {f:?}"))),
    };
    r = r.with(el(CAL, "Type", ty.to_string()));
    if let Some(c) = count {
        r = r.with(el(CAL, "Occurrences", c.min(999).to_string()));
    }
    r = r.with(el(CAL, "Interval", interval.to_string()));
    for e in extra {
        r = r.with(e);
    }
    if let Some(u) = until {
        r = r.with(el(CAL, "Until", compact(to_utc(u, tz))));
    }
    if let Some(w) = wkst {
        r = r.with(el(CAL, "FirstDayOfWeek", w.to_string()));
    }
    Ok(r)
}

/// The recurrence rule of a component: `None` without RRULE, an error for
/// one calcard could not read.
pub(crate) fn rrule_of(c: &Component) -> Result<Option<&ICalendarRecurrenceRule>> {
    match c.prop(&P::Rrule).map(|e| e.values.first()) {
        None => Ok(None),
        Some(Some(ICalendarValue::RecurrenceRule(r))) => Ok(Some(r)),
        Some(_) => Err(Error::Invalid("bad RRULE".into())),
    }
}

/// The ApplicationData children of a Calendar item for `ical`.
pub fn event_to_eas(
    ical_text: &str,
    version: EasVersion,
    opts: &EventOptions,
) -> Result<Vec<Element>> {
    let (root, ev, overrides) = split_components(ical_text)?;
    let start_p = ev
        .prop(&P::Dtstart)
        .ok_or_else(|| Error::Invalid("no DTSTART".into()))?;
    let start = parse_when(start_p)?;
    let tz = match start {
        When::Local(_, Some(z)) => z,
        When::Local(t, None) if start_p.param(&Param::Tzid).is_some() => {
            zone_from_vtimezone(&root, start_p.param(&Param::Tzid).unwrap_or(""), t.year())
                .unwrap_or(opts.default_tz)
        }
        _ => opts.default_tz,
    };
    let all_day = matches!(start, When::Date(_));
    let end = match ev.prop(&P::Dtend) {
        Some(p) => parse_when(p)?,
        None => match start {
            When::Date(d) => When::Date(d.succ_opt().unwrap_or(d)),
            w => w,
        },
    };
    // 16.x all-day events are dates: midnight UTC of the day, whatever the
    // zone (the reverse reads the UTC date).
    let day_zone = if all_day && version.is_16() {
        Tz::UTC
    } else {
        tz
    };
    let start_utc = to_utc(start, day_zone);
    let end_utc = to_utc(end, day_zone).max(start_utc);
    let start_local = start_utc.with_timezone(&day_zone).naive_local();
    let mut out = Vec::new();
    out.push(el(
        CAL,
        "Timezone",
        info_for(tz, start_local.year()).to_base64(),
    ));
    out.push(el(CAL, "AllDayEvent", if all_day { "1" } else { "0" }));
    if let Some(d) = ev.text(&P::Description) {
        out.push(body_element(d, opts));
    }
    let transparent = ev.prop(&P::Transp).is_some_and(|t| t.is("TRANSPARENT"));
    let tentative = ev.prop(&P::Status).is_some_and(|t| t.is("TENTATIVE"));
    out.push(el(
        CAL,
        "BusyStatus",
        if transparent {
            "0"
        } else if tentative {
            "1"
        } else {
            "2"
        },
    ));
    let organizer = ev.prop(&P::Organizer);
    if let Some(o) = organizer {
        if let Some(cn) = o.param(&Param::Cn) {
            out.push(el(CAL, "OrganizerName", cn));
        }
        out.push(el(CAL, "OrganizerEmail", mailto(o.text().unwrap_or(""))));
    }
    let stamp = ev
        .prop(&P::Dtstamp)
        .map(parse_when)
        .transpose()?
        .map(|w| to_utc(w, tz));
    out.push(el(CAL, "DtStamp", compact(stamp.unwrap_or(start_utc))));
    out.push(el(CAL, "EndTime", compact(end_utc)));
    if let Some(l) = ev.text(&P::Location) {
        if version.is_16() {
            out.push(Element::named(BASE, "Location").with(el(BASE, "DisplayName", l)));
        } else {
            out.push(el(CAL, "Location", l));
        }
    }
    if let Some(m) = reminder_minutes(&ev) {
        out.push(el(CAL, "Reminder", m.to_string()));
    }
    let sens = sensitivity_to_eas(&ev);
    out.push(el(CAL, "Sensitivity", sens));
    if let Some(s) = ev.text(&P::Summary) {
        out.push(el(CAL, "Subject", s));
    }
    out.push(el(CAL, "StartTime", compact(start_utc)));
    if let Some(u) = ev.text(&P::Uid) {
        out.push(el(CAL, "UID", u));
    }
    let attendees: Vec<&ICalendarEntry> = ev.props(&P::Attendee).collect();
    if attendees.len() > MAX_ATTENDEES {
        return Err(Error::TooLarge("attendees"));
    }
    let cancelled = ev.prop(&P::Status).is_some_and(|t| t.is("CANCELLED"));
    let mine = organizer.is_some_and(|o| {
        let a = mailto(o.text().unwrap_or(""));
        opts.own_addresses
            .iter()
            .any(|x| x.eq_ignore_ascii_case(&a))
    });
    let status = match (attendees.is_empty(), mine, cancelled) {
        (true, _, _) => 0,
        (false, true, false) => 1,
        (false, false, false) => 3,
        (false, true, true) => 5,
        (false, false, true) => 7,
    };
    out.push(el(CAL, "MeetingStatus", status.to_string()));
    if !attendees.is_empty() {
        let mut list = Element::named(CAL, "Attendees");
        for a in &attendees {
            let email = mailto(a.text().unwrap_or(""));
            let name = a.param(&Param::Cn).map(str::to_string);
            let mut x = Element::named(CAL, "Attendee").with(el(CAL, "Email", email.clone()));
            x = x.with(el(CAL, "Name", name.unwrap_or(email)));
            let st = match a
                .param(&Param::Partstat)
                .map(str::to_ascii_uppercase)
                .as_deref()
            {
                Some("ACCEPTED") => 3,
                Some("TENTATIVE") => 2,
                Some("DECLINED") => 4,
                Some("NEEDS-ACTION") | None => 5,
                _ => 0,
            };
            x = x.with(el(CAL, "AttendeeStatus", st.to_string()));
            let resource = a.param(&Param::Cutype).is_some_and(|c| {
                c.eq_ignore_ascii_case("RESOURCE") || c.eq_ignore_ascii_case("ROOM")
            });
            let ty = if resource {
                3
            } else if a
                .param(&Param::Role)
                .is_some_and(|r| r.eq_ignore_ascii_case("OPT-PARTICIPANT"))
            {
                2
            } else {
                1
            };
            x = x.with(el(CAL, "AttendeeType", ty.to_string()));
            list = list.with(x);
        }
        out.push(list);
    }
    out.extend(categories_to_eas(&ev, CAL)?);
    if let Some(r) = rrule_of(&ev)? {
        out.push(recurrence_to_eas(r, start_local, tz)?);
    }
    let mut exceptions = Vec::new();
    let exdates: Vec<When> = ev
        .props(&P::Exdate)
        .flat_map(|p| {
            p.values.iter().map(|v| match v {
                ICalendarValue::PartialDateTime(dt) => when_of(dt, p.param(&Param::Tzid)),
                _ => Err(Error::Invalid("bad EXDATE".into())),
            })
        })
        .collect::<Result<_>>()?;
    if exdates.len() + overrides.len() > MAX_EXCEPTIONS {
        return Err(Error::TooLarge("exceptions"));
    }
    let instance = |t: DateTime<Utc>| {
        if version.is_16() {
            el(BASE, "InstanceId", compact(t))
        } else {
            el(CAL, "ExceptionStartTime", compact(t))
        }
    };
    for x in exdates {
        exceptions.push(
            Element::named(CAL, "Exception")
                .with(el(CAL, "Deleted", "1"))
                .with(instance(to_utc(x, tz))),
        );
    }
    for o in &overrides {
        let rid = to_utc(
            parse_when(
                o.prop(&P::RecurrenceId)
                    .ok_or_else(|| Error::Invalid("no RECURRENCE-ID".into()))?,
            )?,
            tz,
        );
        let mut x = Element::named(CAL, "Exception").with(instance(rid));
        if o.prop(&P::Status).is_some_and(|s| s.is("CANCELLED")) {
            x = x.with(el(CAL, "Deleted", "1"));
        }
        // An exception carries only what differs from the series.
        let differs = |name: P| {
            o.prop(&name)
                .filter(|p| ev.prop(&name).map(|m| &m.values) != Some(&p.values))
                .and_then(|p| p.text())
        };
        if let Some(s) = differs(P::Summary) {
            x = x.with(el(CAL, "Subject", s));
        }
        if let Some(p) = o.prop(&P::Dtstart) {
            x = x.with(el(CAL, "StartTime", compact(to_utc(parse_when(p)?, tz))));
        }
        if let Some(p) = o.prop(&P::Dtend) {
            x = x.with(el(CAL, "EndTime", compact(to_utc(parse_when(p)?, tz))));
        }
        if let Some(l) = differs(P::Location) {
            x = x.with(if version.is_16() {
                Element::named(BASE, "Location").with(el(BASE, "DisplayName", l))
            } else {
                el(CAL, "Location", l)
            });
        }
        if let Some(d) = differs(P::Description) {
            x = x.with(body_element(d, opts));
        }
        exceptions.push(x);
    }
    if !exceptions.is_empty() {
        let mut e = Element::named(CAL, "Exceptions");
        for x in exceptions {
            e = e.with(x);
        }
        out.push(e);
    }
    let rsvp = attendees.iter().any(|a| {
        a.param(&Param::Rsvp)
            .is_some_and(|r| r.eq_ignore_ascii_case("TRUE"))
    });
    if !attendees.is_empty() {
        out.push(el(CAL, "ResponseRequested", if rsvp { "1" } else { "0" }));
    }
    Ok(out)
}

/// The component's CLASS as an EAS Sensitivity (Calendar and Tasks use
/// the same values): 0 normal, 2 private, 3 confidential.
pub(crate) fn sensitivity_to_eas(comp: &Component) -> &'static str {
    match comp
        .text(&P::Class)
        .map(|c| c.to_ascii_uppercase())
        .as_deref()
    {
        Some("PRIVATE") => "2",
        Some("CONFIDENTIAL") => "3",
        _ => "0",
    }
}

/// The component's CATEGORIES as the `Categories` element of `page`
/// (Calendar and Tasks spell it the same way), none when it has none.
pub(crate) fn categories_to_eas(comp: &Component, page: &str) -> Result<Option<Element>> {
    let cats: Vec<String> = comp
        .props(&P::Categories)
        .flat_map(|p| p.values.iter().filter_map(|v| v.as_text()))
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect();
    if cats.len() > MAX_CATEGORIES {
        return Err(Error::TooLarge("categories"));
    }
    Ok((!cats.is_empty()).then(|| {
        cats.into_iter()
            .fold(Element::named(page, "Categories"), |c, x| {
                c.with(el(page, "Category", x))
            })
    }))
}

/// A CATEGORIES property of the client's `Category` elements on `page`.
pub(crate) fn categories_from_eas(app: &Element, page: &str) -> Result<Option<ICalendarEntry>> {
    let Some(c) = app.child(page, "Categories") else {
        return Ok(None);
    };
    let cats: Vec<String> = c
        .elements()
        .filter(|e| e.is(page, "Category"))
        .map(|e| text_of(e, MAX_FIELD, "category"))
        .collect::<Result<_>>()?;
    if cats.len() > MAX_CATEGORIES {
        return Err(Error::TooLarge("categories"));
    }
    Ok((!cats.is_empty()).then(|| {
        ICalendarEntry::new(P::Categories).with_values(
            cats.iter()
                .map(|c| ICalendarValue::Text(clean(c)))
                .collect(),
        )
    }))
}

/// What a client's Add or Change needs besides the item.
#[derive(Debug, Clone)]
pub struct IncomingOptions {
    /// The UID for a new event when the client sends none (always on 16.x).
    pub new_uid: String,
    /// DTSTAMP of the written object.
    pub now: DateTime<Utc>,
}

/// Properties of a VEVENT the Calendar item carries; an existing object's
/// other properties survive a Change.
const CARRIED: &[P] = &[
    P::Dtstart,
    P::Dtend,
    P::Duration,
    P::Summary,
    P::Location,
    P::Description,
    P::Transp,
    P::Class,
    P::Organizer,
    P::Attendee,
    P::Categories,
    P::Rrule,
    P::Exdate,
    P::Dtstamp,
    P::Status,
];

pub(crate) fn text_of(e: &Element, max: usize, what: &'static str) -> Result<String> {
    capped(e.text(), what, max)
}

fn yearly_rule(r: &Rule) -> ICalendarRecurrenceRule {
    ICalendarRecurrenceRule {
        freq: ICalendarFrequency::Yearly,
        bymonth: vec![ICalendarMonth::new(r.month as u8, false)],
        byday: vec![ICalendarDay {
            ordwk: Some(if r.week >= 5 { -1 } else { r.week as i16 }),
            weekday: WEEK[(r.dow as usize).min(6)],
        }],
        ..ICalendarRecurrenceRule::default()
    }
}

/// A VTIMEZONE for `tz` from its rules in `year`.
pub fn vtimezone(tz: Tz, year: i32) -> Component {
    let info = info_for(tz, year);
    let mut c = Component::new(Kind::VTimezone);
    c.push(text_entry(P::Tzid, tz.name()));
    let std = -info.bias;
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    let onset = |r: &Rule| {
        local_time(
            epoch
                .and_hms_opt(r.hour.into(), r.minute.into(), 0)
                .unwrap_or_default(),
        )
    };
    if info.daylight.month == 0 {
        let mut s = Component::new(Kind::Standard);
        s.push(entry(P::Dtstart, onset(&Rule::default())));
        s.push(entry(P::Tzoffsetfrom, utc_offset(std)));
        s.push(entry(P::Tzoffsetto, utc_offset(std)));
        c.subs.push(s);
        return c;
    }
    let dst = std - info.daylight_bias;
    for (kind, r, from, to) in [
        (Kind::Daylight, info.daylight, std, dst),
        (Kind::Standard, info.standard, dst, std),
    ] {
        let mut s = Component::new(kind);
        s.push(entry(P::Dtstart, onset(&r)));
        s.push(entry(P::Rrule, yearly_rule(&r)));
        s.push(entry(P::Tzoffsetfrom, utc_offset(from)));
        s.push(entry(P::Tzoffsetto, utc_offset(to)));
        c.subs.push(s);
    }
    c
}

/// A DTSTART-like property for `t`: a date for all-day items, UTC in the
/// UTC zone, else the wall time with a TZID.
fn time_prop(name: P, t: DateTime<Utc>, tz: Tz, all_day: bool, v16: bool) -> ICalendarEntry {
    if all_day {
        let d = if v16 {
            t.date_naive()
        } else {
            t.with_timezone(&tz).date_naive()
        };
        entry(name, date_only(d)).with_param(ICalendarParameter::value(ICalendarValueType::Date))
    } else if tz == Tz::UTC {
        entry(name, utc_time(t))
    } else {
        entry(name, local_time(t.with_timezone(&tz).naive_local()))
            .with_param(ICalendarParameter::tzid(tz.name().to_string()))
    }
}

pub(crate) fn recurrence_from_eas(r: &Element) -> Result<ICalendarRecurrenceRule> {
    let num = |name: &str| -> Result<Option<u32>> {
        r.child(CAL, name)
            .map(|e| {
                e.text()
                    .trim()
                    .parse::<u32>()
                    .map_err(|_| Error::Invalid(format!("bad {name}")))
            })
            .transpose()
    };
    let ty = num("Type")?.ok_or_else(|| Error::Invalid("Recurrence without Type".into()))?;
    let interval = num("Interval")?.unwrap_or(1);
    if interval == 0 || interval > 999 {
        return Err(Error::Invalid("Interval out of range".into()));
    }
    let dow = num("DayOfWeek")?.unwrap_or(0);
    if dow > 127 {
        return Err(Error::Invalid("DayOfWeek out of range".into()));
    }
    let days = |ordwk: Option<i16>| -> Vec<ICalendarDay> {
        (0..7)
            .filter(|d| dow & (1 << d) != 0)
            .map(|d| ICalendarDay {
                ordwk,
                weekday: WEEK[d],
            })
            .collect()
    };
    let week = num("WeekOfMonth")?.unwrap_or(1);
    if !(1..=5).contains(&week) {
        return Err(Error::Invalid("WeekOfMonth out of range".into()));
    }
    let nth = Some(if week == 5 { -1 } else { week as i16 });
    let dom = num("DayOfMonth")?.unwrap_or(1);
    let moy = num("MonthOfYear")?.unwrap_or(1);
    if !(1..=31).contains(&dom) || !(1..=12).contains(&moy) {
        return Err(Error::Invalid("DayOfMonth/MonthOfYear out of range".into()));
    }
    let month = vec![ICalendarMonth::new(moy as u8, false)];
    let base = |freq| ICalendarRecurrenceRule {
        freq,
        ..ICalendarRecurrenceRule::default()
    };
    let mut rule = match ty {
        0 => base(ICalendarFrequency::Daily),
        1 if dow == 0 => return Err(Error::Invalid("weekly without DayOfWeek".into())),
        1 => ICalendarRecurrenceRule {
            byday: days(None),
            ..base(ICalendarFrequency::Weekly)
        },
        2 => ICalendarRecurrenceRule {
            bymonthday: vec![dom as i8],
            ..base(ICalendarFrequency::Monthly)
        },
        3 if dow == 0 => return Err(Error::Invalid("monthly by day without DayOfWeek".into())),
        3 => ICalendarRecurrenceRule {
            byday: days(nth),
            ..base(ICalendarFrequency::Monthly)
        },
        5 => ICalendarRecurrenceRule {
            bymonth: month,
            bymonthday: vec![dom as i8],
            ..base(ICalendarFrequency::Yearly)
        },
        6 if dow == 0 => return Err(Error::Invalid("yearly by day without DayOfWeek".into())),
        6 => ICalendarRecurrenceRule {
            bymonth: month,
            byday: days(nth),
            ..base(ICalendarFrequency::Yearly)
        },
        t => return Err(Error::Invalid(format!("recurrence Type {t}"))),
    };
    if interval != 1 {
        rule.interval = Some(interval as u16);
    }
    if let Some(c) = num("Occurrences")? {
        if c == 0 || c > 999 {
            return Err(Error::Invalid("Occurrences out of range".into()));
        }
        rule.count = Some(c);
    } else if let Some(u) = r.child(CAL, "Until") {
        rule.until = Some(utc_time(parse_eas_time(&u.text())?));
    }
    if let Some(w) = num("FirstDayOfWeek")? {
        let w = WEEK
            .get(w as usize)
            .ok_or_else(|| Error::Invalid("FirstDayOfWeek".into()))?;
        rule.wkst = Some(*w);
    }
    Ok(rule)
}

pub(crate) fn body_text(app: &Element) -> Result<Option<String>> {
    if let Some(b) = app.child(BASE, "Body") {
        let data = b.child(BASE, "Data").map(|d| d.text()).unwrap_or_default();
        let data = capped(data, "body", MAX_BODY)?;
        let html = b
            .child(BASE, "Type")
            .is_some_and(|t| t.text().trim() == "2");
        return Ok(Some(if html { strip_html(&data) } else { data }));
    }
    if let Some(b) = app.child(CAL, "Body") {
        return Ok(Some(capped(b.text(), "body", MAX_BODY)?));
    }
    Ok(None)
}

/// The text of an HTML body: tags dropped, line breaks kept for `<br>`,
/// `</p>` and `</div>`, the common entities decoded. For bodies a client
/// sends as HTML where the store keeps text (ActiveSync, EWS).
pub fn strip_html(h: &str) -> String {
    let mut o = String::new();
    let mut tag = String::new();
    let mut in_tag = false;
    for c in h.chars() {
        match c {
            '<' => {
                in_tag = true;
                tag.clear();
            }
            '>' if in_tag => {
                in_tag = false;
                let t = tag.to_ascii_lowercase();
                if t.starts_with("br") || t.starts_with("/p") || t.starts_with("/div") {
                    o.push('\n');
                }
            }
            c if in_tag => tag.push(c),
            c => o.push(c),
        }
    }
    o.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
        .trim_end()
        .to_string()
}

fn location_of(app: &Element) -> Result<Option<String>> {
    if let Some(l) = app.child(BASE, "Location") {
        let n = l
            .child(BASE, "DisplayName")
            .map(|d| d.text())
            .unwrap_or_default();
        return Ok(Some(capped(n, "location", MAX_FIELD)?));
    }
    app.child(CAL, "Location")
        .map(|l| text_of(l, MAX_FIELD, "location"))
        .transpose()
}

/// Applies the item's own fields (shared by the master and exceptions).
fn apply_fields(
    ev: &mut Component,
    app: &Element,
    tz: Tz,
    all_day: bool,
    version: EasVersion,
) -> Result<()> {
    if let Some(s) = app.child(CAL, "Subject") {
        ev.set(text_entry(P::Summary, &text_of(s, MAX_FIELD, "subject")?));
    }
    if let Some(l) = location_of(app)? {
        ev.set(text_entry(P::Location, &l));
    }
    if let Some(b) = body_text(app)? {
        if b.is_empty() {
            ev.remove(&P::Description);
        } else {
            ev.set(text_entry(P::Description, &b));
        }
    }
    let start = app
        .child(CAL, "StartTime")
        .map(|e| parse_eas_time(&e.text()))
        .transpose()?;
    let end = app
        .child(CAL, "EndTime")
        .map(|e| parse_eas_time(&e.text()))
        .transpose()?;
    if let Some(s) = start {
        ev.set(time_prop(P::Dtstart, s, tz, all_day, version.is_16()));
        ev.remove(&P::Duration);
    }
    if let Some(e) = end {
        if start.is_some_and(|s| e < s) {
            return Err(Error::Invalid("EndTime before StartTime".into()));
        }
        ev.set(time_prop(P::Dtend, e, tz, all_day, version.is_16()));
    }
    if let Some(b) = app.child(CAL, "BusyStatus") {
        let t = if b.text().trim() == "0" {
            ICalendarTransparency::Transparent
        } else {
            ICalendarTransparency::Opaque
        };
        ev.set(entry(P::Transp, t));
    }
    if let Some(s) = app.child(CAL, "Sensitivity") {
        ev.set(entry(P::Class, sensitivity_from_eas(&s.text())));
    }
    if let Some(r) = app.child(CAL, "Reminder") {
        let m: u32 = r
            .text()
            .trim()
            .parse()
            .map_err(|_| Error::Invalid("bad Reminder".into()))?;
        if m > 525_600 * 10 {
            return Err(Error::Invalid("Reminder out of range".into()));
        }
        let before = ICalendarDuration {
            neg: true,
            minutes: m,
            ..ICalendarDuration::default()
        };
        ev.subs.retain(|s| s.kind != Kind::VAlarm);
        ev.subs.push(display_alarm(entry(P::Trigger, before)));
    }
    Ok(())
}

/// CLASS for an EAS Sensitivity (Calendar and Tasks share the values).
pub(crate) fn sensitivity_from_eas(s: &str) -> ICalendarClassification {
    match s.trim() {
        "2" => ICalendarClassification::Private,
        "3" => ICalendarClassification::Confidential,
        _ => ICalendarClassification::Public,
    }
}

/// A VALARM showing "Reminder" at `trigger`.
pub(crate) fn display_alarm(trigger: ICalendarEntry) -> Component {
    let mut a = Component::new(Kind::VAlarm);
    a.push(entry(P::Action, ICalendarAction::Display));
    a.push(text_entry(P::Description, "Reminder"));
    a.push(trigger);
    a
}

/// A new VCALENDAR to hold a client's item.
pub(crate) fn new_calendar() -> Component {
    let mut root = Component::new(Kind::VCalendar);
    root.push(text_entry(P::Version, "2.0"));
    root.push(text_entry(P::Prodid, "-//Outpost//ActiveSync//EN"));
    root
}

/// An ORGANIZER or ATTENDEE for `email`, with a CN when there is a name.
fn address(name: P, email: &str, cn: Option<String>) -> ICalendarEntry {
    let uri = Uri::Location(format!("mailto:{}", clean(email.trim())));
    let e = entry(name, ICalendarValue::Uri(uri));
    match cn {
        // A name on one line, without quotes (calcard quotes it whole).
        Some(n) => e.with_param(ICalendarParameter::cn(
            n.chars()
                .filter(|c| !c.is_control() && *c != '"')
                .collect::<String>(),
        )),
        None => e,
    }
}

/// The iCalendar object for a client's Calendar ApplicationData, merged
/// into `existing` (the stored object) on a Change.
pub fn eas_to_event(
    app: &Element,
    existing: Option<&str>,
    version: EasVersion,
    opts: &IncomingOptions,
) -> Result<String> {
    let start = app
        .child(CAL, "StartTime")
        .map(|e| parse_eas_time(&e.text()))
        .transpose()?;
    let year = start.map(|s| s.year()).unwrap_or(opts.now.year());
    let tz = match app.child(CAL, "Timezone") {
        Some(t) => {
            let info = TimeZoneInfo::from_base64(&t.text())?;
            match info.to_iana(year) {
                Some(z) => z,
                None if info.bias == 0 => Tz::UTC,
                None => return Err(Error::Invalid("Timezone matches no known zone".into())),
            }
        }
        None => Tz::UTC,
    };
    let all_day = app
        .child(CAL, "AllDayEvent")
        .is_some_and(|a| a.text().trim() == "1");

    let (mut root, mut ev, old_overrides) = match existing {
        Some(x) => split_components(x)?,
        None => (new_calendar(), Component::new(Kind::VEvent), Vec::new()),
    };
    if existing.is_none() {
        let uid = match app.child(CAL, "UID") {
            Some(u) if !version.is_16() && !u.text().trim().is_empty() => text_of(u, 1024, "UID")?,
            _ => opts.new_uid.clone(),
        };
        ev.push(text_entry(P::Uid, &uid));
    }
    ev.entries.retain(|p| !CARRIED.contains(&p.name));
    ev.set(entry(P::Dtstamp, utc_time(opts.now)));
    if start.is_none() {
        return Err(Error::Invalid("no StartTime".into()));
    }
    apply_fields(&mut ev, app, tz, all_day, version)?;
    if ev.prop(&P::Dtend).is_none() {
        let s = ev.prop(&P::Dtstart).cloned();
        if let Some(mut s) = s {
            s.name = P::Dtend;
            ev.push(s);
        }
    }
    let org_email = app
        .child(CAL, "OrganizerEmail")
        .map(|e| text_of(e, 1024, "organizer"))
        .transpose()?;
    if let Some(e) = org_email.filter(|e| !e.trim().is_empty()) {
        let cn = app
            .child(CAL, "OrganizerName")
            .map(|n| text_of(n, MAX_FIELD, "name"))
            .transpose()?;
        ev.push(address(P::Organizer, &e, cn));
    }
    if let Some(list) = app.child(CAL, "Attendees") {
        let all: Vec<&Element> = list.elements().filter(|e| e.is(CAL, "Attendee")).collect();
        if all.len() > MAX_ATTENDEES {
            return Err(Error::TooLarge("attendees"));
        }
        let rsvp = app
            .child(CAL, "ResponseRequested")
            .is_none_or(|r| r.text().trim() != "0");
        for a in all {
            let email = a
                .child(CAL, "Email")
                .map(|e| text_of(e, 1024, "email"))
                .transpose()?
                .unwrap_or_default();
            if email.trim().is_empty() {
                continue;
            }
            let cn = a
                .child(CAL, "Name")
                .map(|n| text_of(n, MAX_FIELD, "name"))
                .transpose()?;
            let mut p = address(P::Attendee, &email, cn);
            let ps = match a
                .child(CAL, "AttendeeStatus")
                .map(|s| s.text())
                .as_deref()
                .map(str::trim)
            {
                Some("2") => ICalendarParticipationStatus::Tentative,
                Some("3") => ICalendarParticipationStatus::Accepted,
                Some("4") => ICalendarParticipationStatus::Declined,
                _ => ICalendarParticipationStatus::NeedsAction,
            };
            p = p.with_param(ICalendarParameter::partstat(ps));
            let role = match a
                .child(CAL, "AttendeeType")
                .map(|s| s.text())
                .as_deref()
                .map(str::trim)
            {
                Some("2") => ICalendarParticipationRole::OptParticipant,
                Some("3") => {
                    p = p.with_param(ICalendarParameter::cutype(ICalendarUserTypes::Resource));
                    ICalendarParticipationRole::NonParticipant
                }
                _ => ICalendarParticipationRole::ReqParticipant,
            };
            p = p.with_param(ICalendarParameter::role(role));
            if rsvp {
                p = p.with_param(ICalendarParameter::rsvp(true));
            }
            ev.push(p);
        }
    }
    if let Some(ms) = app.child(CAL, "MeetingStatus") {
        if matches!(ms.text().trim(), "5" | "7" | "13" | "15") {
            ev.push(entry(P::Status, ICalendarStatus::Cancelled));
        }
    }
    if let Some(c) = categories_from_eas(app, CAL)? {
        ev.push(c);
    }
    if let Some(r) = app.child(CAL, "Recurrence") {
        ev.push(entry(P::Rrule, recurrence_from_eas(r)?));
    }
    // Exceptions.
    let master_start = start.unwrap_or(opts.now);
    let mut overrides = Vec::new();
    if let Some(list) = app.child(CAL, "Exceptions") {
        let all: Vec<&Element> = list.elements().filter(|e| e.is(CAL, "Exception")).collect();
        if all.len() > MAX_EXCEPTIONS {
            return Err(Error::TooLarge("exceptions"));
        }
        let mut exdates: Vec<ICalendarEntry> = Vec::new();
        for x in all {
            let when = x
                .child(CAL, "ExceptionStartTime")
                .or_else(|| x.child(BASE, "InstanceId"))
                .ok_or_else(|| Error::Invalid("Exception without start time".into()))?;
            let when = parse_eas_time(&when.text())?;
            let rid = time_prop(P::RecurrenceId, when, tz, all_day, version.is_16());
            if x.child(CAL, "Deleted")
                .is_some_and(|d| d.text().trim() == "1")
            {
                exdates.push(rid);
                continue;
            }
            // The stored override of that instance, matched by the instant.
            let instant = |e: &ICalendarEntry| parse_when(e).ok().map(|w| to_utc(w, tz));
            let mut o = old_overrides
                .iter()
                .find(|o| {
                    o.prop(&P::RecurrenceId)
                        .is_some_and(|r| instant(r).is_some() && instant(r) == instant(&rid))
                })
                .cloned()
                .unwrap_or_else(|| Component::new(Kind::VEvent));
            o.entries.retain(|p| {
                !CARRIED.contains(&p.name) && p.name != P::Uid && p.name != P::RecurrenceId
            });
            o.entries.insert(
                0,
                ev.prop(&P::Uid)
                    .cloned()
                    .unwrap_or_else(|| text_entry(P::Uid, "")),
            );
            o.push(rid);
            o.push(entry(P::Dtstamp, utc_time(opts.now)));
            for name in [
                P::Summary,
                P::Location,
                P::Description,
                P::Transp,
                P::Class,
                P::Organizer,
                P::Attendee,
            ] {
                for p in ev.props(&name) {
                    o.entries.push(p.clone());
                }
            }
            apply_fields(&mut o, x, tz, all_day, version)?;
            if o.prop(&P::Dtstart).is_none() {
                o.push(time_prop(P::Dtstart, when, tz, all_day, version.is_16()));
                let len = ev
                    .prop(&P::Dtend)
                    .and_then(|e| parse_when(e).ok())
                    .map(|e| to_utc(e, tz) - master_start)
                    .unwrap_or_default();
                o.push(time_prop(
                    P::Dtend,
                    when + len,
                    tz,
                    all_day,
                    version.is_16(),
                ));
            }
            overrides.push(o);
        }
        let mut deleted = exdates.into_iter();
        if let Some(mut p) = deleted.next() {
            // One EXDATE with the instances' values, in the first's zone.
            p.name = P::Exdate;
            p.values.extend(deleted.flat_map(|d| d.values));
            ev.push(p);
        }
    } else {
        // No Exceptions element: the existing overrides stand.
        overrides = old_overrides;
    }
    root.subs.retain(|s| {
        s.kind != Kind::VEvent
            && !(s.kind == Kind::VTimezone && s.text(&P::Tzid) == Some(tz.name()))
    });
    if tz != Tz::UTC && !all_day {
        root.subs.insert(0, vtimezone(tz, year));
    }
    root.subs.push(ev);
    root.subs.extend(overrides);
    Ok(root.write())
}

/// The IANA zone a custom VTIMEZONE (one whose TZID is no zone name, as
/// Outlook writes them) describes: its offsets and yearly rules matched as
/// a TIME_ZONE_INFORMATION blob would be.
fn zone_from_vtimezone(root: &Component, tzid: &str, year: i32) -> Option<Tz> {
    let vtz = root
        .subs
        .iter()
        .find(|s| s.kind == Kind::VTimezone && s.text(&P::Tzid) == Some(tzid))?;
    let part = |kind: Kind| vtz.subs.iter().rev().find(|s| s.kind == kind);
    let rule = |c: &Component| -> Option<Rule> {
        let rr = rrule_of(c).ok()??;
        let month = rr
            .bymonth
            .first()
            .map(|m| u16::from(m.month()))
            .unwrap_or(0);
        let day = rr.byday.first()?;
        let n = i32::from(day.ordwk?);
        let Some(ICalendarValue::PartialDateTime(start)) = c.prop(&P::Dtstart)?.values.first()
        else {
            return None;
        };
        Some(Rule {
            month,
            dow: day_index(day.weekday) as u16,
            week: if n < 0 { 5 } else { n.clamp(1, 5) as u16 },
            hour: start.hour?.into(),
            minute: start.minute?.into(),
        })
    };
    let offset = |c: &Component| match c.prop(&P::Tzoffsetto)?.values.first()? {
        ICalendarValue::PartialDateTime(o) => model::offset_minutes(o),
        _ => None,
    };
    let std = part(Kind::Standard)?;
    let std_off = offset(std)?;
    let mut info = TimeZoneInfo {
        bias: -std_off,
        standard_name: tzid.chars().take(31).collect(),
        ..TimeZoneInfo::default()
    };
    if let Some(dst) = part(Kind::Daylight) {
        let dst_off = offset(dst)?;
        info.standard = rule(std)?;
        info.daylight = rule(dst)?;
        info.daylight_bias = -(dst_off - std_off);
    }
    info.to_iana(year)
}
