//! VEVENT <-> Calendar ApplicationData (MS-ASCAL).

use crate::ical::{self, escape, Component, Prop};
use crate::tz::{info_for, Rule, TimeZoneInfo};
use crate::{
    EasVersion, Error, Result, MAX_ATTENDEES, MAX_BODY, MAX_CATEGORIES, MAX_EXCEPTIONS, MAX_FIELD,
    YEARS,
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

pub(crate) fn parse_when(p: &Prop) -> Result<When> {
    let v = p.value.trim();
    if p.param("VALUE")
        .is_some_and(|x| x.eq_ignore_ascii_case("DATE"))
        || v.len() == 8
    {
        let d = NaiveDate::parse_from_str(v, "%Y%m%d")
            .map_err(|_| Error::Invalid(format!("bad date {v:?}")))?;
        check_year(d.year())?;
        return Ok(When::Date(d));
    }
    let (body, utc) = match v.strip_suffix('Z') {
        Some(b) => (b, true),
        None => (v, false),
    };
    let t = NaiveDateTime::parse_from_str(body, "%Y%m%dT%H%M%S")
        .map_err(|_| Error::Invalid(format!("bad date-time {v:?}")))?;
    check_year(t.year())?;
    if utc {
        return Ok(When::Utc(Utc.from_utc_datetime(&t)));
    }
    Ok(When::Local(
        t,
        p.param("TZID").and_then(crate::tz::zone_named),
    ))
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
    let alarm = ev.subs.iter().find(|s| s.name == "VALARM")?;
    let trig = alarm.prop("TRIGGER")?;
    if trig
        .param("VALUE")
        .is_some_and(|v| v.eq_ignore_ascii_case("DATE-TIME"))
    {
        return None;
    }
    let v = trig.value.trim();
    let (neg, rest) = match v.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, v.strip_prefix('+').unwrap_or(v)),
    };
    let rest = rest.strip_prefix('P')?;
    let mut mins: u64 = 0;
    let mut num: u64 = 0;
    for c in rest.chars() {
        match c {
            '0'..='9' => num = num.saturating_mul(10).saturating_add(c as u64 - 48),
            'W' => mins += num * 7 * 1440,
            'D' => mins += num * 1440,
            'H' => mins += num * 60,
            'M' => mins += num,
            'S' => mins += num / 60,
            'T' => {}
            _ => return None,
        }
        if c.is_ascii_alphabetic() {
            num = 0;
        }
    }
    if !neg && mins > 0 {
        return None;
    }
    u32::try_from(mins).ok().filter(|m| *m <= 525_600 * 10)
}

fn split_components(ical: &str) -> Result<(Component, Component, Vec<Component>)> {
    let root = ical::parse(ical)?;
    if root.name != "VCALENDAR" {
        return Err(Error::Invalid("not a VCALENDAR".into()));
    }
    let mut master = None;
    let mut overrides = Vec::new();
    for s in &root.subs {
        if s.name != "VEVENT" {
            continue;
        }
        if s.prop("RECURRENCE-ID").is_some() {
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

const DAYS: [&str; 7] = ["SU", "MO", "TU", "WE", "TH", "FR", "SA"];

pub(crate) fn recurrence_to_eas(
    rrule: &str,
    start_local: NaiveDateTime,
    tz: Tz,
) -> Result<Element> {
    let mut freq = "";
    let mut interval = 1u32;
    let mut count = None;
    let mut until = None;
    let mut byday: Vec<(i32, usize)> = Vec::new();
    let mut bymonthday = None;
    let mut bymonth = None;
    let mut bysetpos = None;
    let mut wkst = None;
    for part in rrule.split(';') {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        match k.to_ascii_uppercase().as_str() {
            "FREQ" => freq = v,
            "INTERVAL" => {
                interval = v
                    .parse()
                    .map_err(|_| Error::Invalid("bad INTERVAL".into()))?
            }
            "COUNT" => {
                count = Some(
                    v.parse::<u32>()
                        .map_err(|_| Error::Invalid("bad COUNT".into()))?,
                )
            }
            "UNTIL" => until = Some(parse_when(&Prop::new("UNTIL", v))?),
            "BYDAY" => {
                for d in v.split(',').take(7) {
                    let d = d.trim();
                    let (n, name) = d.split_at(d.len().saturating_sub(2));
                    let idx = DAYS
                        .iter()
                        .position(|x| x.eq_ignore_ascii_case(name))
                        .ok_or_else(|| Error::Invalid("bad BYDAY".into()))?;
                    let n = if n.is_empty() {
                        0
                    } else {
                        n.parse().map_err(|_| Error::Invalid("bad BYDAY".into()))?
                    };
                    byday.push((n, idx));
                }
            }
            "BYMONTHDAY" => bymonthday = v.split(',').next().and_then(|x| x.parse::<i32>().ok()),
            "BYMONTH" => bymonth = v.split(',').next().and_then(|x| x.parse::<u32>().ok()),
            "BYSETPOS" => bysetpos = v.parse::<i32>().ok(),
            "WKST" => wkst = DAYS.iter().position(|x| x.eq_ignore_ascii_case(v)),
            _ => {}
        }
    }
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
    let (ty, extra): (u8, Vec<Element>) = match freq.to_ascii_uppercase().as_str() {
        "DAILY" if byday.is_empty() => (0, vec![]),
        "DAILY" => (1, vec![el(CAL, "DayOfWeek", mask(&byday).to_string())]),
        "WEEKLY" => {
            let m = if byday.is_empty() {
                1 << start_local.weekday().num_days_from_sunday()
            } else {
                mask(&byday)
            };
            (1, vec![el(CAL, "DayOfWeek", m.to_string())])
        }
        "MONTHLY" if !byday.is_empty() => (
            3,
            vec![
                el(CAL, "DayOfWeek", mask(&byday).to_string()),
                el(CAL, "WeekOfMonth", nth(&byday).to_string()),
            ],
        ),
        "MONTHLY" => {
            let d = bymonthday.unwrap_or(start_local.day() as i32);
            let d = if d < 0 { 31 } else { d };
            (2, vec![el(CAL, "DayOfMonth", d.to_string())])
        }
        "YEARLY" => {
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

/// The ApplicationData children of a Calendar item for `ical`.
pub fn event_to_eas(
    ical_text: &str,
    version: EasVersion,
    opts: &EventOptions,
) -> Result<Vec<Element>> {
    let (root, ev, overrides) = split_components(ical_text)?;
    let start_p = ev
        .prop("DTSTART")
        .ok_or_else(|| Error::Invalid("no DTSTART".into()))?;
    let start = parse_when(start_p)?;
    let tz = match start {
        When::Local(_, Some(z)) => z,
        When::Local(t, None) if start_p.param("TZID").is_some() => {
            zone_from_vtimezone(&root, start_p.param("TZID").unwrap_or(""), t.year())
                .unwrap_or(opts.default_tz)
        }
        _ => opts.default_tz,
    };
    let all_day = matches!(start, When::Date(_));
    let end = match ev.prop("DTEND") {
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
    if let Some(d) = ev.prop("DESCRIPTION") {
        out.push(body_element(&d.text(), opts));
    }
    let transparent = ev
        .prop("TRANSP")
        .is_some_and(|t| t.value.eq_ignore_ascii_case("TRANSPARENT"));
    let tentative = ev
        .prop("STATUS")
        .is_some_and(|t| t.value.eq_ignore_ascii_case("TENTATIVE"));
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
    let organizer = ev.prop("ORGANIZER");
    if let Some(o) = organizer {
        if let Some(cn) = o.param("CN") {
            out.push(el(CAL, "OrganizerName", cn));
        }
        out.push(el(CAL, "OrganizerEmail", mailto(&o.value)));
    }
    let stamp = ev
        .prop("DTSTAMP")
        .map(parse_when)
        .transpose()?
        .map(|w| to_utc(w, tz));
    out.push(el(CAL, "DtStamp", compact(stamp.unwrap_or(start_utc))));
    out.push(el(CAL, "EndTime", compact(end_utc)));
    if let Some(l) = ev.prop("LOCATION") {
        if version.is_16() {
            out.push(Element::named(BASE, "Location").with(el(BASE, "DisplayName", l.text())));
        } else {
            out.push(el(CAL, "Location", l.text()));
        }
    }
    if let Some(m) = reminder_minutes(&ev) {
        out.push(el(CAL, "Reminder", m.to_string()));
    }
    let sens = sensitivity_to_eas(&ev);
    out.push(el(CAL, "Sensitivity", sens));
    if let Some(s) = ev.prop("SUMMARY") {
        out.push(el(CAL, "Subject", s.text()));
    }
    out.push(el(CAL, "StartTime", compact(start_utc)));
    if let Some(u) = ev.prop("UID") {
        out.push(el(CAL, "UID", u.text()));
    }
    let attendees: Vec<&Prop> = ev.props("ATTENDEE").collect();
    if attendees.len() > MAX_ATTENDEES {
        return Err(Error::TooLarge("attendees"));
    }
    let cancelled = ev
        .prop("STATUS")
        .is_some_and(|t| t.value.eq_ignore_ascii_case("CANCELLED"));
    let mine = organizer.is_some_and(|o| {
        let a = mailto(&o.value);
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
            let mut x = Element::named(CAL, "Attendee").with(el(CAL, "Email", mailto(&a.value)));
            x = x.with(el(
                CAL,
                "Name",
                a.param("CN")
                    .map(str::to_string)
                    .unwrap_or_else(|| mailto(&a.value)),
            ));
            let st = match a.param("PARTSTAT").map(str::to_ascii_uppercase).as_deref() {
                Some("ACCEPTED") => 3,
                Some("TENTATIVE") => 2,
                Some("DECLINED") => 4,
                Some("NEEDS-ACTION") | None => 5,
                _ => 0,
            };
            x = x.with(el(CAL, "AttendeeStatus", st.to_string()));
            let resource = a.param("CUTYPE").is_some_and(|c| {
                c.eq_ignore_ascii_case("RESOURCE") || c.eq_ignore_ascii_case("ROOM")
            });
            let ty = if resource {
                3
            } else if a
                .param("ROLE")
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
    if let Some(r) = ev.prop("RRULE") {
        out.push(recurrence_to_eas(&r.value, start_local, tz)?);
    }
    let mut exceptions = Vec::new();
    let exdates: Vec<When> = ev
        .props("EXDATE")
        .flat_map(|p| {
            p.value
                .split(',')
                .map(|v| {
                    let mut q = p.clone();
                    q.value = v.to_string();
                    parse_when(&q)
                })
                .collect::<Vec<_>>()
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
                o.prop("RECURRENCE-ID")
                    .ok_or_else(|| Error::Invalid("no RECURRENCE-ID".into()))?,
            )?,
            tz,
        );
        let mut x = Element::named(CAL, "Exception").with(instance(rid));
        if o.prop("STATUS")
            .is_some_and(|s| s.value.eq_ignore_ascii_case("CANCELLED"))
        {
            x = x.with(el(CAL, "Deleted", "1"));
        }
        // An exception carries only what differs from the series.
        let differs = |name: &str| {
            o.prop(name)
                .filter(|p| ev.prop(name).map(|m| &m.value) != Some(&p.value))
        };
        if let Some(s) = differs("SUMMARY") {
            x = x.with(el(CAL, "Subject", s.text()));
        }
        if let Some(p) = o.prop("DTSTART") {
            x = x.with(el(CAL, "StartTime", compact(to_utc(parse_when(p)?, tz))));
        }
        if let Some(p) = o.prop("DTEND") {
            x = x.with(el(CAL, "EndTime", compact(to_utc(parse_when(p)?, tz))));
        }
        if let Some(l) = differs("LOCATION") {
            x = x.with(if version.is_16() {
                Element::named(BASE, "Location").with(el(BASE, "DisplayName", l.text()))
            } else {
                el(CAL, "Location", l.text())
            });
        }
        if let Some(d) = differs("DESCRIPTION") {
            x = x.with(body_element(&d.text(), opts));
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
        a.param("RSVP")
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
        .prop("CLASS")
        .map(|c| c.value.to_ascii_uppercase())
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
        .props("CATEGORIES")
        .flat_map(|p| split_list(&p.value))
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

pub(crate) fn split_list(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut esc = false;
    for c in v.chars() {
        if esc {
            cur.push(if c == 'n' { '\n' } else { c });
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else if c == ',' {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
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
const CARRIED: &[&str] = &[
    "DTSTART",
    "DTEND",
    "DURATION",
    "SUMMARY",
    "LOCATION",
    "DESCRIPTION",
    "TRANSP",
    "CLASS",
    "ORGANIZER",
    "ATTENDEE",
    "CATEGORIES",
    "RRULE",
    "EXDATE",
    "DTSTAMP",
    "STATUS",
];

pub(crate) fn text_of(e: &Element, max: usize, what: &'static str) -> Result<String> {
    capped(e.text(), what, max)
}

fn rule_line(r: &Rule) -> String {
    let n = if r.week >= 5 { -1 } else { r.week as i32 };
    format!(
        "FREQ=YEARLY;BYMONTH={};BYDAY={}{}",
        r.month,
        n,
        DAYS[(r.dow as usize).min(6)]
    )
}

fn offset_str(mins: i32) -> String {
    let s = if mins < 0 { '-' } else { '+' };
    let m = mins.abs();
    format!("{s}{:02}{:02}", m / 60, m % 60)
}

/// A VTIMEZONE for `tz` from its rules in `year`.
pub fn vtimezone(tz: Tz, year: i32) -> Component {
    let info = info_for(tz, year);
    let mut c = Component::new("VTIMEZONE");
    c.props.push(Prop::new("TZID", tz.name()));
    let std = -info.bias;
    if info.daylight.month == 0 {
        let mut s = Component::new("STANDARD");
        s.props.push(Prop::new("DTSTART", "19700101T000000"));
        s.props.push(Prop::new("TZOFFSETFROM", offset_str(std)));
        s.props.push(Prop::new("TZOFFSETTO", offset_str(std)));
        c.subs.push(s);
        return c;
    }
    let dst = std - info.daylight_bias;
    for (name, r, from, to) in [
        ("DAYLIGHT", info.daylight, std, dst),
        ("STANDARD", info.standard, dst, std),
    ] {
        let mut s = Component::new(name);
        s.props.push(Prop::new(
            "DTSTART",
            format!("19700101T{:02}{:02}00", r.hour, r.minute),
        ));
        s.props.push(Prop::new("RRULE", rule_line(&r)));
        s.props.push(Prop::new("TZOFFSETFROM", offset_str(from)));
        s.props.push(Prop::new("TZOFFSETTO", offset_str(to)));
        c.subs.push(s);
    }
    c
}

fn fmt_local(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz)
        .naive_local()
        .format("%Y%m%dT%H%M%S")
        .to_string()
}

fn time_prop(name: &str, t: DateTime<Utc>, tz: Tz, all_day: bool, v16: bool) -> Prop {
    if all_day {
        let d = if v16 {
            t.date_naive()
        } else {
            t.with_timezone(&tz).date_naive()
        };
        Prop::new(name, d.format("%Y%m%d").to_string()).with_param("VALUE", "DATE")
    } else if tz == Tz::UTC {
        Prop::new(name, compact(t))
    } else {
        Prop::new(name, fmt_local(t, tz)).with_param("TZID", tz.name())
    }
}

pub(crate) fn recurrence_from_eas(r: &Element) -> Result<String> {
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
    let days = |prefix: String| -> String {
        (0..7)
            .filter(|d| dow & (1 << d) != 0)
            .map(|d| format!("{prefix}{}", DAYS[d]))
            .collect::<Vec<_>>()
            .join(",")
    };
    let week = num("WeekOfMonth")?.unwrap_or(1);
    if !(1..=5).contains(&week) {
        return Err(Error::Invalid("WeekOfMonth out of range".into()));
    }
    let nth = if week == 5 {
        "-1".to_string()
    } else {
        week.to_string()
    };
    let dom = num("DayOfMonth")?.unwrap_or(1);
    let moy = num("MonthOfYear")?.unwrap_or(1);
    if !(1..=31).contains(&dom) || !(1..=12).contains(&moy) {
        return Err(Error::Invalid("DayOfMonth/MonthOfYear out of range".into()));
    }
    let mut s = match ty {
        0 => "FREQ=DAILY".to_string(),
        1 if dow == 0 => return Err(Error::Invalid("weekly without DayOfWeek".into())),
        1 => format!("FREQ=WEEKLY;BYDAY={}", days(String::new())),
        2 => format!("FREQ=MONTHLY;BYMONTHDAY={dom}"),
        3 if dow == 0 => return Err(Error::Invalid("monthly by day without DayOfWeek".into())),
        3 => format!("FREQ=MONTHLY;BYDAY={}", days(nth)),
        5 => format!("FREQ=YEARLY;BYMONTH={moy};BYMONTHDAY={dom}"),
        6 if dow == 0 => return Err(Error::Invalid("yearly by day without DayOfWeek".into())),
        6 => format!("FREQ=YEARLY;BYMONTH={moy};BYDAY={}", days(nth)),
        t => return Err(Error::Invalid(format!("recurrence Type {t}"))),
    };
    if interval != 1 {
        s.push_str(&format!(";INTERVAL={interval}"));
    }
    if let Some(c) = num("Occurrences")? {
        if c == 0 || c > 999 {
            return Err(Error::Invalid("Occurrences out of range".into()));
        }
        s.push_str(&format!(";COUNT={c}"));
    } else if let Some(u) = r.child(CAL, "Until") {
        s.push_str(&format!(";UNTIL={}", compact(parse_eas_time(&u.text())?)));
    }
    if let Some(w) = num("FirstDayOfWeek")? {
        let w = DAYS
            .get(w as usize)
            .ok_or_else(|| Error::Invalid("FirstDayOfWeek".into()))?;
        s.push_str(&format!(";WKST={w}"));
    }
    Ok(s)
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

fn strip_html(h: &str) -> String {
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
        ev.set(Prop::new(
            "SUMMARY",
            escape(&text_of(s, MAX_FIELD, "subject")?),
        ));
    }
    if let Some(l) = location_of(app)? {
        ev.set(Prop::new("LOCATION", escape(&l)));
    }
    if let Some(b) = body_text(app)? {
        if b.is_empty() {
            ev.remove("DESCRIPTION");
        } else {
            ev.set(Prop::new("DESCRIPTION", escape(&b)));
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
        ev.set(time_prop("DTSTART", s, tz, all_day, version.is_16()));
        ev.remove("DURATION");
    }
    if let Some(e) = end {
        if start.is_some_and(|s| e < s) {
            return Err(Error::Invalid("EndTime before StartTime".into()));
        }
        ev.set(time_prop("DTEND", e, tz, all_day, version.is_16()));
    }
    if let Some(b) = app.child(CAL, "BusyStatus") {
        let t = if b.text().trim() == "0" {
            "TRANSPARENT"
        } else {
            "OPAQUE"
        };
        ev.set(Prop::new("TRANSP", t));
    }
    if let Some(s) = app.child(CAL, "Sensitivity") {
        let c = match s.text().trim() {
            "2" => "PRIVATE",
            "3" => "CONFIDENTIAL",
            _ => "PUBLIC",
        };
        ev.set(Prop::new("CLASS", c));
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
        ev.subs.retain(|s| s.name != "VALARM");
        let mut a = Component::new("VALARM");
        a.props.push(Prop::new("ACTION", "DISPLAY"));
        a.props.push(Prop::new("DESCRIPTION", "Reminder"));
        a.props.push(Prop::new("TRIGGER", format!("-PT{m}M")));
        ev.subs.push(a);
    }
    Ok(())
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
        None => {
            let mut root = Component::new("VCALENDAR");
            root.props.push(Prop::new("VERSION", "2.0"));
            root.props
                .push(Prop::new("PRODID", "-//Outpost//ActiveSync//EN"));
            (root, Component::new("VEVENT"), Vec::new())
        }
    };
    if existing.is_none() {
        let uid = match app.child(CAL, "UID") {
            Some(u) if !version.is_16() && !u.text().trim().is_empty() => text_of(u, 1024, "UID")?,
            _ => opts.new_uid.clone(),
        };
        ev.props.push(Prop::new("UID", escape(&uid)));
    }
    ev.props.retain(|p| !CARRIED.contains(&p.name.as_str()));
    ev.set(Prop::new("DTSTAMP", compact(opts.now)));
    if start.is_none() {
        return Err(Error::Invalid("no StartTime".into()));
    }
    apply_fields(&mut ev, app, tz, all_day, version)?;
    if ev.prop("DTEND").is_none() {
        let s = ev.prop("DTSTART").cloned();
        if let Some(mut s) = s {
            s.name = "DTEND".into();
            ev.props.push(s);
        }
    }
    let org_email = app
        .child(CAL, "OrganizerEmail")
        .map(|e| text_of(e, 1024, "organizer"))
        .transpose()?;
    if let Some(e) = org_email.filter(|e| !e.trim().is_empty()) {
        let mut p = Prop::new("ORGANIZER", format!("mailto:{}", e.trim()));
        if let Some(n) = app.child(CAL, "OrganizerName") {
            p = p.with_param("CN", text_of(n, MAX_FIELD, "name")?.replace('"', ""));
        }
        ev.props.push(p);
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
            let mut p = Prop::new("ATTENDEE", format!("mailto:{}", email.trim()));
            if let Some(n) = a.child(CAL, "Name") {
                p = p.with_param("CN", text_of(n, MAX_FIELD, "name")?.replace('"', ""));
            }
            let ps = match a
                .child(CAL, "AttendeeStatus")
                .map(|s| s.text())
                .as_deref()
                .map(str::trim)
            {
                Some("2") => "TENTATIVE",
                Some("3") => "ACCEPTED",
                Some("4") => "DECLINED",
                _ => "NEEDS-ACTION",
            };
            p = p.with_param("PARTSTAT", ps);
            match a
                .child(CAL, "AttendeeType")
                .map(|s| s.text())
                .as_deref()
                .map(str::trim)
            {
                Some("2") => p = p.with_param("ROLE", "OPT-PARTICIPANT"),
                Some("3") => {
                    p = p
                        .with_param("CUTYPE", "RESOURCE")
                        .with_param("ROLE", "NON-PARTICIPANT")
                }
                _ => p = p.with_param("ROLE", "REQ-PARTICIPANT"),
            }
            if rsvp {
                p = p.with_param("RSVP", "TRUE");
            }
            ev.props.push(p);
        }
    }
    if let Some(ms) = app.child(CAL, "MeetingStatus") {
        if matches!(ms.text().trim(), "5" | "7" | "13" | "15") {
            ev.props.push(Prop::new("STATUS", "CANCELLED"));
        }
    }
    if let Some(c) = app.child(CAL, "Categories") {
        let cats: Vec<String> = c
            .elements()
            .filter(|e| e.is(CAL, "Category"))
            .map(|e| text_of(e, MAX_FIELD, "category"))
            .collect::<Result<_>>()?;
        if cats.len() > MAX_CATEGORIES {
            return Err(Error::TooLarge("categories"));
        }
        if !cats.is_empty() {
            let v: Vec<String> = cats.iter().map(|c| escape(c)).collect();
            ev.props.push(Prop::new("CATEGORIES", v.join(",")));
        }
    }
    if let Some(r) = app.child(CAL, "Recurrence") {
        ev.props.push(Prop::new("RRULE", recurrence_from_eas(r)?));
    }
    // Exceptions.
    let master_start = start.unwrap_or(opts.now);
    let mut overrides = Vec::new();
    if let Some(list) = app.child(CAL, "Exceptions") {
        let all: Vec<&Element> = list.elements().filter(|e| e.is(CAL, "Exception")).collect();
        if all.len() > MAX_EXCEPTIONS {
            return Err(Error::TooLarge("exceptions"));
        }
        let mut exdates = Vec::new();
        for x in all {
            let when = x
                .child(CAL, "ExceptionStartTime")
                .or_else(|| x.child(BASE, "InstanceId"))
                .ok_or_else(|| Error::Invalid("Exception without start time".into()))?;
            let when = parse_eas_time(&when.text())?;
            let rid = time_prop("RECURRENCE-ID", when, tz, all_day, version.is_16());
            if x.child(CAL, "Deleted")
                .is_some_and(|d| d.text().trim() == "1")
            {
                exdates.push(rid);
                continue;
            }
            let mut o = old_overrides
                .iter()
                .find(|o| {
                    o.prop("RECURRENCE-ID")
                        .is_some_and(|r| r.value == rid.value)
                })
                .cloned()
                .unwrap_or_else(|| Component::new("VEVENT"));
            o.props.retain(|p| {
                !CARRIED.contains(&p.name.as_str()) && p.name != "UID" && p.name != "RECURRENCE-ID"
            });
            o.props.insert(
                0,
                ev.prop("UID")
                    .cloned()
                    .unwrap_or_else(|| Prop::new("UID", "")),
            );
            o.props.push(rid);
            o.props.push(Prop::new("DTSTAMP", compact(opts.now)));
            for name in [
                "SUMMARY",
                "LOCATION",
                "DESCRIPTION",
                "TRANSP",
                "CLASS",
                "ORGANIZER",
                "ATTENDEE",
            ] {
                for p in ev.props(name) {
                    o.props.push(p.clone());
                }
            }
            apply_fields(&mut o, x, tz, all_day, version)?;
            if o.prop("DTSTART").is_none() {
                o.props
                    .push(time_prop("DTSTART", when, tz, all_day, version.is_16()));
                let len = ev
                    .prop("DTEND")
                    .and_then(|e| parse_when(e).ok())
                    .map(|e| to_utc(e, tz) - master_start)
                    .unwrap_or_default();
                o.props
                    .push(time_prop("DTEND", when + len, tz, all_day, version.is_16()));
            }
            overrides.push(o);
        }
        if !exdates.is_empty() {
            let first = exdates[0].clone();
            let vals: Vec<String> = exdates.into_iter().map(|p| p.value).collect();
            let mut p = first;
            p.name = "EXDATE".into();
            p.value = vals.join(",");
            ev.props.push(p);
        }
    } else {
        // No Exceptions element: the existing overrides stand.
        overrides = old_overrides;
    }
    root.subs.retain(|s| {
        s.name != "VEVENT"
            && !(s.name == "VTIMEZONE" && s.prop("TZID").is_some_and(|t| t.value == tz.name()))
    });
    if tz != Tz::UTC && !all_day {
        root.subs.insert(0, vtimezone(tz, year));
    }
    root.subs.push(ev);
    root.subs.extend(overrides);
    let mut out = String::new();
    root.write(&mut out);
    Ok(out)
}

fn parse_offset(v: &str) -> Option<i32> {
    let v = v.trim();
    let (sign, rest) = match v.as_bytes().first()? {
        b'+' => (1, &v[1..]),
        b'-' => (-1, &v[1..]),
        _ => return None,
    };
    if rest.len() < 4 || !rest.is_char_boundary(2) || !rest.is_char_boundary(4) {
        return None;
    }
    let h: i32 = rest[..2].parse().ok()?;
    let m: i32 = rest[2..4].parse().ok()?;
    Some(sign * (h * 60 + m))
}

/// The IANA zone a custom VTIMEZONE (one whose TZID is no zone name, as
/// Outlook writes them) describes: its offsets and yearly rules matched as
/// a TIME_ZONE_INFORMATION blob would be.
fn zone_from_vtimezone(root: &Component, tzid: &str, year: i32) -> Option<Tz> {
    let vtz = root
        .subs
        .iter()
        .find(|s| s.name == "VTIMEZONE" && s.prop("TZID").is_some_and(|t| t.text() == tzid))?;
    let part = |name: &str| vtz.subs.iter().rev().find(|s| s.name == name);
    let rule = |c: &Component| -> Option<Rule> {
        let rr = c.prop("RRULE")?.value.to_ascii_uppercase();
        let mut month = 0;
        let mut byday = "";
        for kv in rr.split(';') {
            match kv.split_once('=') {
                Some(("BYMONTH", m)) => month = m.parse().ok()?,
                Some(("BYDAY", d)) => byday = d,
                _ => {}
            }
        }
        let (n, day) = byday.split_at(byday.len().checked_sub(2)?);
        let n: i32 = n.parse().ok()?;
        let dow = DAYS.iter().position(|d| *d == day)? as u16;
        let start = c.prop("DTSTART")?.value.clone();
        let hm = start.split_once('T')?.1;
        Some(Rule {
            month,
            dow,
            week: if n < 0 { 5 } else { n.clamp(1, 5) as u16 },
            hour: hm.get(..2)?.parse().ok()?,
            minute: hm.get(2..4)?.parse().ok()?,
        })
    };
    let std = part("STANDARD")?;
    let std_off = parse_offset(&std.prop("TZOFFSETTO")?.value)?;
    let mut info = TimeZoneInfo {
        bias: -std_off,
        standard_name: tzid.chars().take(31).collect(),
        ..TimeZoneInfo::default()
    };
    if let Some(dst) = part("DAYLIGHT") {
        let dst_off = parse_offset(&dst.prop("TZOFFSETTO")?.value)?;
        info.standard = rule(std)?;
        info.daylight = rule(dst)?;
        info.daylight_bias = -(dst_off - std_off);
    }
    info.to_iana(year)
}
