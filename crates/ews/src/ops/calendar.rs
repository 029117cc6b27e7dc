//! Calendar items (MS-OXWSCAL) to and from iCalendar.
//!
//! Reading: the stored object is parsed by outpost-pim (calcard), its
//! instances expanded there ([`outpost_pim::CalendarObject::expand`]); the
//! master, an occurrence or an exception is written as a `t:CalendarItem`.
//! Writing: a CreateItem's `t:CalendarItem`, or an UpdateItem's changes,
//! are read into an [`Edit`] and applied to the object's VEVENT as
//! calcard entries (`outpost_easconv::model`, the ActiveSync converters'
//! calcard layer): what EWS does not carry stays as it was, and the
//! result is written by calcard.

use chrono::{Datelike, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use outpost_easconv::model::{
    self, date_only, entry, local_time, text_entry, utc_time, Component, EntryExt, Kind, Param, P,
};
use outpost_pim::calcard::common::timezone::Tz as CalTz;
use outpost_pim::calcard::icalendar::{
    ICalendarAction, ICalendarDay, ICalendarDuration, ICalendarEntry, ICalendarFrequency,
    ICalendarMonth, ICalendarParameter, ICalendarParameterName, ICalendarParticipationRole,
    ICalendarParticipationStatus, ICalendarProperty, ICalendarRecurrenceRule,
    ICalendarScheduleAgentValue, ICalendarTransparency, ICalendarUserTypes, ICalendarValue,
    ICalendarValueType, ICalendarWeekday, Uri,
};
use outpost_pim::{CalendarObject, Comp, Instance, Window};
use outpost_xml::Element;

use super::items::ItemError;
use crate::soap::NS_T;
use crate::zone::{self, WEEKDAYS};

/// A stored calendar object, parsed.
pub struct Stored {
    pub obj: CalendarObject,
    pub tree: Comp,
    pub floating: Tz,
}

/// Parses a stored object (`tz`: its calendar's zone, for floating
/// times).
pub fn read(data: &str, tz: Option<&str>) -> Option<Stored> {
    let floating = tz.and_then(zone::resolve).unwrap_or(Tz::UTC);
    let mut opts = outpost_pim::IngestOptions::new(chrono::Utc::now().timestamp());
    opts.limits.max_bytes = usize::MAX;
    opts.floating_tz = Some(CalTz::Tz(floating));
    let obj = outpost_pim::parse_icalendar(data.as_bytes(), &opts).ok()?;
    if obj.index.kind != outpost_pim::ComponentKind::Event {
        return None;
    }
    let tree = obj.tree();
    Some(Stored {
        obj,
        tree,
        floating,
    })
}

/// Limits of an expansion for a view.
pub fn limits() -> outpost_pim::Limits {
    outpost_pim::Limits {
        max_bytes: usize::MAX,
        ..outpost_pim::Limits::default()
    }
}

/// Times of one component: UTC start and end, all-day, the TZID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Times {
    pub start: i64,
    pub end: i64,
    pub all_day: bool,
    pub tzid: Option<String>,
}

impl Stored {
    /// The master VEVENT (no RECURRENCE-ID), else the first.
    pub fn master(&self) -> Option<&Comp> {
        let events = || self.tree.children.iter().filter(|c| c.name == "VEVENT");
        events()
            .find(|c| !c.props.iter().any(|p| p.name == "RECURRENCE-ID"))
            .or_else(|| events().next())
    }

    pub fn comp(&self, id: u32) -> Option<&Comp> {
        self.tree.children.iter().find(|c| c.id == id)
    }

    pub fn is_override(&self, id: u32) -> bool {
        self.comp(id)
            .is_some_and(|c| c.props.iter().any(|p| p.name == "RECURRENCE-ID"))
    }

    /// DTSTART/DTEND of component `id` (calcard resolves the zone).
    pub fn times(&self, id: u32) -> Option<Times> {
        let ical = self.obj.ical();
        let c = ical.components.get(id as usize)?;
        let resolver = ical
            .build_tz_resolver()
            .with_default(CalTz::Tz(self.floating));
        let at = |e: &ICalendarEntry| {
            let d = e.values.first()?.as_partial_date_time()?;
            let t = d.to_date_time_with_tz(resolver.resolve_or_default(e.tz_id()))?;
            Some((t.timestamp(), !d.has_time()))
        };
        let ds = c.property(&ICalendarProperty::Dtstart)?;
        let (start, all_day) = at(ds)?;
        let end = match (
            c.property(&ICalendarProperty::Dtend),
            c.property(&ICalendarProperty::Duration),
        ) {
            (Some(e), _) => at(e).map(|x| x.0),
            (None, Some(d)) => match d.values.first() {
                Some(ICalendarValue::Duration(d)) => Some(start + d.as_seconds()),
                _ => None,
            },
            _ => None,
        }
        .unwrap_or(if all_day { start + 86_400 } else { start })
        .max(start);
        Some(Times {
            start,
            end,
            all_day,
            tzid: ds.tz_id().map(str::to_string),
        })
    }

    /// Instances overlapping `[start, end)`.
    pub fn instances(&self, start: i64, end: i64) -> Vec<Instance> {
        self.obj
            .expand(Window { start, end }, &limits())
            .map(|e| e.instances)
            .unwrap_or_default()
    }

    /// The instance whose RECURRENCE-ID is `rid`.
    pub fn instance_at(&self, rid: i64) -> Option<Instance> {
        // Overrides may have moved it anywhere; look a year around it.
        let mut found = self.instances(rid - 366 * 86_400, rid + 366 * 86_400);
        found.retain(|i| i.recurrence_id == Some(rid));
        found.into_iter().next()
    }

    /// The `n`th (from 1) instance of the series.
    pub fn nth_instance(&self, n: usize) -> Option<Instance> {
        let all = self.obj.expand(Window::ALL, &limits()).ok()?;
        all.instances.into_iter().nth(n.checked_sub(1)?)
    }

    fn rrule(&self, id: u32) -> Option<ICalendarRecurrenceRule> {
        let ical = self.obj.ical();
        let c = ical.components.get(id as usize)?;
        match c.property(&ICalendarProperty::Rrule)?.values.first()? {
            ICalendarValue::RecurrenceRule(r) => Some((**r).clone()),
            _ => None,
        }
    }
}

/// The first value of a property of `c`.
pub fn prop<'a>(c: &'a Comp, name: &str) -> Option<&'a str> {
    c.props
        .iter()
        .find(|p| p.name == name)
        .map(|p| p.value.as_str())
}

fn param<'a>(p: &'a outpost_pim::Prop, name: &str) -> Option<&'a str> {
    p.params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn mailto(v: &str) -> String {
    let v = v.trim();
    match v.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("mailto:") => v[7..].to_string(),
        _ => v.to_string(),
    }
}

/// `2026-12-03T10:00:00Z`.
pub fn utc(t: i64) -> String {
    super::oof::utc(t)
}

fn t(local: &str, text: impl Into<String>) -> Element {
    Element::new(NS_T, local).with_text(text)
}

fn boolean(local: &str, v: bool) -> Element {
    t(local, if v { "true" } else { "false" })
}

fn mailbox(name: Option<&str>, email: &str) -> Element {
    let mut m = Element::new(NS_T, "Mailbox");
    if let Some(n) = name.filter(|n| !n.is_empty()) {
        m.push(t("Name", n));
    }
    m.with(t("EmailAddress", email))
        .with(t("RoutingType", "SMTP"))
        .with(t("MailboxType", "Mailbox"))
}

/// EWS's ResponseType of a PARTSTAT.
pub fn response_type(partstat: &str) -> &'static str {
    match partstat.to_ascii_uppercase().as_str() {
        "ACCEPTED" => "Accept",
        "TENTATIVE" => "Tentative",
        "DECLINED" => "Decline",
        "NEEDS-ACTION" => "NoResponseReceived",
        _ => "Unknown",
    }
}

/// Which view of the object an element is.
#[derive(Debug, Clone)]
pub enum Which {
    /// A single item, or a recurring master.
    Whole,
    /// One instance of a recurring item.
    Instance(Instance),
}

/// What a `t:CalendarItem` is written with besides the object.
pub struct ItemIds {
    /// `t:ItemId` (Id, ChangeKey).
    pub id: String,
    pub change_key: String,
    /// `t:ParentFolderId`'s Id.
    pub parent: String,
    /// The user's addresses (MyResponseType, IsOrganizer...).
    pub own: Vec<String>,
    /// (owner, calendar, item): the ids of the series' occurrences.
    pub numbers: (i64, i64, i64),
}

impl ItemIds {
    fn occurrence(&self, rid: i64) -> String {
        let (o, c, i) = self.numbers;
        crate::ids::occurrence_id(o, c, i, rid)
    }
}

/// A `t:FirstOccurrence`-like element of an instance.
fn occurrence_info(local: &str, ids: &ItemIds, i: &Instance) -> Element {
    let rid = i.recurrence_id.unwrap_or(i.start);
    Element::new(NS_T, local)
        .with(
            Element::new(NS_T, "ItemId")
                .with_attr("Id", ids.occurrence(rid))
                .with_attr("ChangeKey", ids.change_key.clone()),
        )
        .with(t("Start", utc(i.start)))
        .with(t("End", utc(i.end)))
        .with(t("OriginalStart", utc(rid)))
}

impl Stored {
    /// The UTC instants of the master's EXDATEs.
    fn exdates(&self, id: u32) -> Vec<i64> {
        let ical = self.obj.ical();
        let Some(c) = ical.components.get(id as usize) else {
            return Vec::new();
        };
        let resolver = ical
            .build_tz_resolver()
            .with_default(CalTz::Tz(self.floating));
        c.entries
            .iter()
            .filter(|e| e.name == ICalendarProperty::Exdate)
            .flat_map(|e| {
                let tz = resolver.resolve_or_default(e.tz_id());
                e.values
                    .iter()
                    .filter_map(move |v| v.as_partial_date_time()?.to_date_time_with_tz(tz))
                    .map(|t| t.timestamp())
            })
            .collect()
    }
}

/// FirstOccurrence, LastOccurrence, ModifiedOccurrences and
/// DeletedOccurrences of a series.
fn series_elements(s: &Stored, master: u32, ids: &ItemIds) -> Vec<Element> {
    let mut out = Vec::new();
    let Ok(all) = s.obj.expand(Window::ALL, &limits()) else {
        return out;
    };
    if let Some(first) = all.instances.first() {
        out.push(occurrence_info("FirstOccurrence", ids, first));
    }
    if !all.truncated {
        if let Some(last) = all.instances.last() {
            out.push(occurrence_info("LastOccurrence", ids, last));
        }
    }
    let modified: Vec<Element> = all
        .instances
        .iter()
        .filter(|i| s.is_override(i.component))
        .map(|i| occurrence_info("Occurrence", ids, i))
        .collect();
    if !modified.is_empty() {
        let mut m = Element::new(NS_T, "ModifiedOccurrences");
        m.children = modified;
        out.push(m);
    }
    let mut deleted = s.exdates(master);
    deleted.sort_unstable();
    deleted.dedup();
    if !deleted.is_empty() {
        let mut d = Element::new(NS_T, "DeletedOccurrences");
        for x in deleted {
            d.push(Element::new(NS_T, "DeletedOccurrence").with(t("Start", utc(x))));
        }
        out.push(d);
    }
    out
}

fn weekday_name(w: ICalendarWeekday) -> &'static str {
    WEEKDAYS[weekday_index(w)]
}

fn weekday_index(w: ICalendarWeekday) -> usize {
    use ICalendarWeekday::*;
    match w {
        Sunday => 0,
        Monday => 1,
        Tuesday => 2,
        Wednesday => 3,
        Thursday => 4,
        Friday => 5,
        Saturday => 6,
    }
}

const WEEK: [ICalendarWeekday; 7] = [
    ICalendarWeekday::Sunday,
    ICalendarWeekday::Monday,
    ICalendarWeekday::Tuesday,
    ICalendarWeekday::Wednesday,
    ICalendarWeekday::Thursday,
    ICalendarWeekday::Friday,
    ICalendarWeekday::Saturday,
];

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

const INDEXES: [&str; 5] = ["First", "Second", "Third", "Fourth", "Last"];

fn day_index_name(n: i32) -> &'static str {
    if !(0..5).contains(&n) {
        "Last"
    } else {
        INDEXES[(n.max(1) - 1) as usize]
    }
}

/// The `t:Recurrence` of a rule starting at `start` (wall time in `tz`).
fn recurrence_element(r: &ICalendarRecurrenceRule, start: NaiveDateTime, tz: Tz) -> Element {
    let interval = r.interval.unwrap_or(1).max(1).to_string();
    let days = |list: &[ICalendarDay]| {
        if list.is_empty() {
            WEEKDAYS[start.weekday().num_days_from_sunday() as usize].to_string()
        } else {
            list.iter()
                .map(|d| weekday_name(d.weekday))
                .collect::<Vec<_>>()
                .join(" ")
        }
    };
    let nth = || {
        r.byday
            .first()
            .and_then(|d| d.ordwk)
            .map(i32::from)
            .or_else(|| r.bysetpos.first().copied())
            .unwrap_or(1)
    };
    let month = r
        .bymonth
        .first()
        .map(|m| u32::from(m.month()))
        .unwrap_or(start.month());
    let day_of_month = r
        .bymonthday
        .first()
        .map(|d| i32::from(*d))
        .unwrap_or(start.day() as i32);
    let month_name = MONTHS[(month.clamp(1, 12) - 1) as usize];
    let pattern = match r.freq {
        ICalendarFrequency::Daily if r.byday.is_empty() => {
            Element::new(NS_T, "DailyRecurrence").with(t("Interval", interval))
        }
        ICalendarFrequency::Daily | ICalendarFrequency::Weekly => {
            let mut w = Element::new(NS_T, "WeeklyRecurrence")
                .with(t("Interval", interval))
                .with(t("DaysOfWeek", days(&r.byday)));
            if let Some(k) = r.wkst {
                w.push(t("FirstDayOfWeek", weekday_name(k)));
            }
            w
        }
        ICalendarFrequency::Monthly if !r.byday.is_empty() => {
            Element::new(NS_T, "RelativeMonthlyRecurrence")
                .with(t("Interval", interval))
                .with(t("DaysOfWeek", days(&r.byday[..1])))
                .with(t("DayOfWeekIndex", day_index_name(nth())))
        }
        ICalendarFrequency::Monthly => Element::new(NS_T, "AbsoluteMonthlyRecurrence")
            .with(t("Interval", interval))
            .with(t(
                "DayOfMonth",
                if day_of_month < 0 { 31 } else { day_of_month }.to_string(),
            )),
        ICalendarFrequency::Yearly if !r.byday.is_empty() => {
            Element::new(NS_T, "RelativeYearlyRecurrence")
                .with(t("DaysOfWeek", days(&r.byday[..1])))
                .with(t("DayOfWeekIndex", day_index_name(nth())))
                .with(t("Month", month_name))
        }
        _ => Element::new(NS_T, "AbsoluteYearlyRecurrence")
            .with(t("DayOfMonth", day_of_month.max(1).to_string()))
            .with(t("Month", month_name)),
    };
    let start_date = start.date().format("%Y-%m-%d").to_string();
    let range = if let Some(c) = r.count {
        Element::new(NS_T, "NumberedRecurrence")
            .with(t("StartDate", start_date))
            .with(t("NumberOfOccurrences", c.min(999).to_string()))
    } else if let Some(u) = &r.until {
        let until = u
            .to_date_time_with_tz(CalTz::Tz(tz))
            .map(|d| zone::wall(tz, d.timestamp()).date())
            .unwrap_or(start.date());
        Element::new(NS_T, "EndDateRecurrence")
            .with(t("StartDate", start_date))
            .with(t("EndDate", until.format("%Y-%m-%d").to_string()))
    } else {
        Element::new(NS_T, "NoEndRecurrence").with(t("StartDate", start_date))
    };
    Element::new(NS_T, "Recurrence").with(pattern).with(range)
}

/// Minutes before the start of the first alarm with a relative trigger.
fn reminder(s: &Stored, c: &Comp) -> Option<i64> {
    let ical = s.obj.ical();
    c.children
        .iter()
        .filter(|a| a.name == "VALARM")
        .find_map(|a| {
            let comp = ical.components.get(a.id as usize)?;
            match comp.property(&ICalendarProperty::Trigger)?.values.first()? {
                ICalendarValue::Duration(d) if d.neg || d.as_seconds() == 0 => {
                    Some(d.as_seconds().abs() / 60)
                }
                _ => None,
            }
        })
}

/// The `t:CalendarItem` of `which` view of `s`.
pub fn item_element(s: &Stored, which: &Which, ids: &ItemIds, id_only: bool) -> Option<Element> {
    let master = s.master()?;
    let (comp, times, kind, rid) = match which {
        Which::Whole => {
            let kind = if s.obj.index.recurring {
                "RecurringMaster"
            } else {
                "Single"
            };
            (master, s.times(master.id)?, kind, None)
        }
        Which::Instance(i) => {
            let c = s.comp(i.component).unwrap_or(master);
            let kind = if s.is_override(i.component) {
                "Exception"
            } else {
                "Occurrence"
            };
            let base = s.times(c.id)?;
            (
                c,
                Times {
                    start: i.start,
                    end: i.end,
                    ..base
                },
                kind,
                i.recurrence_id,
            )
        }
    };
    let mut el = Element::new(NS_T, "CalendarItem").with(
        Element::new(NS_T, "ItemId")
            .with_attr("Id", ids.id.clone())
            .with_attr("ChangeKey", ids.change_key.clone()),
    );
    if id_only {
        return Some(el);
    }
    el.push(Element::new(NS_T, "ParentFolderId").with_attr("Id", ids.parent.clone()));
    el.push(t("ItemClass", "IPM.Appointment"));
    el.push(t("Subject", prop(comp, "SUMMARY").unwrap_or("")));
    el.push(t(
        "Sensitivity",
        match prop(comp, "CLASS").map(str::to_ascii_uppercase).as_deref() {
            Some("PRIVATE") => "Private",
            Some("CONFIDENTIAL") => "Confidential",
            _ => "Normal",
        },
    ));
    el.push(
        Element::new(NS_T, "Body")
            .with_attr("BodyType", "Text")
            .with_text(prop(comp, "DESCRIPTION").unwrap_or("")),
    );
    let cats: Vec<&str> = comp
        .props
        .iter()
        .filter(|p| p.name == "CATEGORIES")
        .flat_map(|p| p.value.split(','))
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    if !cats.is_empty() {
        let mut c = Element::new(NS_T, "Categories");
        for cat in cats {
            c.push(t("String", cat));
        }
        el.push(c);
    }
    el.push(t(
        "Importance",
        match prop(comp, "PRIORITY").and_then(|p| p.trim().parse::<u8>().ok()) {
            Some(1..=4) => "High",
            Some(6..=9) => "Low",
            _ => "Normal",
        },
    ));
    let stamp = prop(comp, "DTSTAMP").and_then(ical_utc);
    if let Some(c) = prop(comp, "CREATED").and_then(ical_utc).or(stamp) {
        el.push(t("DateTimeCreated", utc(c)));
    }
    let remind = reminder(s, comp);
    el.push(boolean("ReminderIsSet", remind.is_some()));
    el.push(t(
        "ReminderMinutesBeforeStart",
        remind.unwrap_or(15).to_string(),
    ));
    let attendees: Vec<&outpost_pim::Prop> =
        comp.props.iter().filter(|p| p.name == "ATTENDEE").collect();
    let organizer = comp.props.iter().find(|p| p.name == "ORGANIZER");
    let organizer_email = organizer.map(|o| mailto(&o.value));
    let own = |a: &str| ids.own.iter().any(|o| o.eq_ignore_ascii_case(a));
    let i_organize = organizer_email.as_deref().is_none_or(own);
    if let Some(m) = prop(comp, "LAST-MODIFIED").and_then(ical_utc).or(stamp) {
        el.push(t("LastModifiedTime", utc(m)));
    }
    el.push(t("UID", s.obj.index.uid.clone()));
    if let Some(r) = rid {
        el.push(t("RecurrenceId", utc(r)));
    }
    if let Some(st) = stamp {
        el.push(t("DateTimeStamp", utc(st)));
    }
    el.push(t("Start", utc(times.start)));
    el.push(t("End", utc(times.end)));
    if let Some(r) = rid {
        el.push(t("OriginalStart", utc(r)));
    }
    el.push(boolean("IsAllDayEvent", times.all_day));
    let cancelled = prop(comp, "STATUS").is_some_and(|v| v.eq_ignore_ascii_case("CANCELLED"));
    let busy = match prop(comp, "X-MICROSOFT-CDO-BUSYSTATUS").map(str::to_ascii_uppercase) {
        Some(v) if v == "FREE" => "Free",
        Some(v) if v == "TENTATIVE" => "Tentative",
        Some(v) if v == "OOF" => "OOF",
        Some(v) if v == "WORKINGELSEWHERE" => "WorkingElsewhere",
        _ if prop(comp, "TRANSP").is_some_and(|v| v.eq_ignore_ascii_case("TRANSPARENT")) => "Free",
        _ if prop(comp, "STATUS").is_some_and(|v| v.eq_ignore_ascii_case("TENTATIVE")) => {
            "Tentative"
        }
        _ if cancelled => "Free",
        _ => "Busy",
    };
    el.push(t("LegacyFreeBusyStatus", busy));
    if let Some(l) = prop(comp, "LOCATION") {
        el.push(t("Location", l));
    }
    let meeting = !attendees.is_empty();
    el.push(boolean("IsMeeting", meeting));
    el.push(boolean("IsCancelled", cancelled));
    el.push(boolean("IsRecurring", s.obj.index.recurring));
    el.push(boolean("MeetingRequestWasSent", meeting && i_organize));
    el.push(boolean(
        "IsResponseRequested",
        attendees
            .iter()
            .any(|a| param(a, "RSVP").is_some_and(|v| v.eq_ignore_ascii_case("TRUE"))),
    ));
    el.push(t("CalendarItemType", kind));
    let mine = attendees
        .iter()
        .find(|a| own(&mailto(&a.value)))
        .map(|a| response_type(param(a, "PARTSTAT").unwrap_or("NEEDS-ACTION")));
    el.push(t(
        "MyResponseType",
        if i_organize {
            "Organizer"
        } else {
            mine.unwrap_or("Unknown")
        },
    ));
    if let (Some(o), Some(email)) = (organizer, organizer_email.as_deref()) {
        el.push(Element::new(NS_T, "Organizer").with(mailbox(param(o, "CN"), email)));
    }
    let mut groups: [(&str, Vec<Element>); 3] = [
        ("RequiredAttendees", Vec::new()),
        ("OptionalAttendees", Vec::new()),
        ("Resources", Vec::new()),
    ];
    for a in &attendees {
        let email = mailto(&a.value);
        // The organizer listed among the attendees is not one.
        if organizer_email
            .as_deref()
            .is_some_and(|o| o.eq_ignore_ascii_case(&email))
        {
            continue;
        }
        let cutype = param(a, "CUTYPE").map(str::to_ascii_uppercase);
        let role = param(a, "ROLE").map(str::to_ascii_uppercase);
        let slot = if matches!(cutype.as_deref(), Some("RESOURCE" | "ROOM")) {
            2
        } else if matches!(role.as_deref(), Some("OPT-PARTICIPANT" | "NON-PARTICIPANT")) {
            1
        } else {
            0
        };
        groups[slot].1.push(
            Element::new(NS_T, "Attendee")
                .with(mailbox(param(a, "CN"), &email))
                .with(t(
                    "ResponseType",
                    response_type(param(a, "PARTSTAT").unwrap_or("NEEDS-ACTION")),
                )),
        );
    }
    for (name, list) in groups {
        if !list.is_empty() {
            let mut g = Element::new(NS_T, name);
            g.children = list;
            el.push(g);
        }
    }
    el.push(t("Duration", iso_duration(times.end - times.start)));
    el.push(t(
        "AppointmentSequenceNumber",
        prop(comp, "SEQUENCE").unwrap_or("0").trim().to_string(),
    ));
    // 1: a meeting, 2: received, 4: cancelled (AppointmentState bits).
    let state =
        u8::from(meeting) | (u8::from(meeting && !i_organize) << 1) | (u8::from(cancelled) << 2);
    el.push(t("AppointmentState", state.to_string()));
    let tz = times
        .tzid
        .as_deref()
        .and_then(zone::resolve)
        .unwrap_or(if times.all_day { s.floating } else { Tz::UTC });
    if matches!(which, Which::Whole) {
        if let Some(r) = s.rrule(master.id) {
            el.push(recurrence_element(&r, zone::wall(tz, times.start), tz));
        }
        if s.obj.index.recurring {
            el.children.extend(series_elements(s, master.id, ids));
        }
    }
    let zone_id = times
        .tzid
        .clone()
        .filter(|id| zone::resolve(id).is_some())
        .unwrap_or_else(|| tz.name().to_string());
    let year = zone::wall(tz, times.start).year();
    el.push(zone::definition("StartTimeZone", &zone_id, tz, year, false));
    el.push(zone::definition("EndTimeZone", &zone_id, tz, year, false));
    Some(el)
}

fn iso_duration(secs: i64) -> String {
    let s = secs.max(0);
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    let mut out = String::from("P");
    if d > 0 {
        out.push_str(&format!("{d}D"));
    }
    if h > 0 || m > 0 || sec > 0 || d == 0 {
        out.push('T');
        if h > 0 {
            out.push_str(&format!("{h}H"));
        }
        if m > 0 || (h == 0 && sec == 0) {
            out.push_str(&format!("{m}M"));
        }
        if sec > 0 {
            out.push_str(&format!("{sec}S"));
        }
    }
    out
}

/// A `YYYYMMDDTHHMMSSZ` value as UTC seconds.
fn ical_utc(v: &str) -> Option<i64> {
    NaiveDateTime::parse_from_str(v.trim(), "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc().timestamp())
}

/// `t:MimeContent` of a stored object: its iCalendar text, base64.
pub fn mime_content(ics: &str) -> Element {
    use base64::Engine as _;
    Element::new(NS_T, "MimeContent")
        .with_attr("CharacterSet", "UTF-8")
        .with_text(base64::engine::general_purpose::STANDARD.encode(ics))
}

/// The iCalendar object of a request's `t:MimeContent`: base64 of the
/// iCalendar text, or of a MIME message with a text/calendar part. Its
/// METHOD (DavMail sends PUBLISH, an invitation REQUEST) is removed: a
/// stored calendar object has none (RFC 4791 section 4.1); and so are the
/// TZIDs DavMail adds to UTC times (RFC 5545 section 3.2.19: a UTC time
/// takes none), so that what is stored is read alike by every client.
pub fn mime_calendar(el: &Element) -> Option<String> {
    mime_text(el).map(|t| utc_without_tzid(&without_method(&t)))
}

/// `text` with no TZID on UTC DATE-TIME values; as it was when it has
/// none (or does not parse: the store then says why).
fn utc_without_tzid(text: &str) -> String {
    fn fix(c: &mut Component) -> bool {
        let mut changed = false;
        for e in &mut c.entries {
            let utc = !e.values.is_empty()
                && e.values.iter().all(|v| {
                    matches!(v, ICalendarValue::PartialDateTime(d) if d.has_time() && d.tz_hour.is_some())
                });
            if utc
                && e.params
                    .iter()
                    .any(|p| p.name == ICalendarParameterName::Tzid)
            {
                e.params.retain(|p| p.name != ICalendarParameterName::Tzid);
                changed = true;
            }
        }
        for sub in &mut c.subs {
            changed |= fix(sub);
        }
        changed
    }
    match model::parse_calendar(text) {
        Ok(mut root) => {
            if fix(&mut root) {
                root.write()
            } else {
                text.to_string()
            }
        }
        Err(_) => text.to_string(),
    }
}

/// `text` without the VCALENDAR's METHOD property (and its folded
/// continuation lines).
pub fn without_method(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0usize;
    let mut dropping = false;
    for line in text.split_inclusive('\n') {
        if dropping && (line.starts_with(' ') || line.starts_with('\t')) {
            continue;
        }
        dropping = false;
        let upper = line.trim_end().to_ascii_uppercase();
        if upper.starts_with("BEGIN:") {
            depth += 1;
        } else if upper.starts_with("END:") {
            depth = depth.saturating_sub(1);
        } else if depth == 1 && (upper.starts_with("METHOD:") || upper.starts_with("METHOD;")) {
            dropping = true;
            continue;
        }
        out.push_str(line);
    }
    out
}

fn mime_text(el: &Element) -> Option<String> {
    use base64::Engine as _;
    let clean: String = el.text.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(clean)
        .ok()?;
    let text = String::from_utf8_lossy(&bytes);
    if text
        .trim_start()
        .to_ascii_uppercase()
        .starts_with("BEGIN:VCALENDAR")
    {
        return Some(text.into_owned());
    }
    let msg = mail_parser::MessageParser::new().parse(&bytes)?;
    use mail_parser::MimeHeaders as _;
    msg.parts.iter().find_map(|p| {
        if !p.is_content_type("text", "calendar") {
            return None;
        }
        match &p.body {
            mail_parser::PartType::Text(t) => Some(t.to_string()),
            mail_parser::PartType::Binary(b) | mail_parser::PartType::InlineBinary(b) => {
                Some(String::from_utf8_lossy(b).into_owned())
            }
            _ => None,
        }
    })
}

// ---- writing ----

/// An attendee from a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub email: String,
    pub name: Option<String>,
}

/// What a CreateItem or an UpdateItem asks of a calendar item. `Some`
/// fields are set (an inner `None`: removed).
#[derive(Debug, Clone, Default)]
pub struct Edit {
    pub subject: Option<Option<String>>,
    pub body: Option<Option<String>>,
    pub location: Option<Option<String>>,
    pub sensitivity: Option<Option<String>>,
    pub importance: Option<Option<String>>,
    pub categories: Option<Vec<String>>,
    pub reminder_set: Option<bool>,
    pub reminder_minutes: Option<i64>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub all_day: Option<bool>,
    pub start_tz: Option<Tz>,
    pub free_busy: Option<String>,
    /// Required, optional attendees, resources.
    pub attendees: [Option<Vec<Person>>; 3],
    pub recurrence: Option<Option<Element>>,
    pub uid: Option<String>,
    /// X- properties of the event set (`Some`) or removed (MAPI named
    /// properties that are kept so, [`super::pim_props::X_PROPS`]).
    pub x_props: Vec<(String, Option<String>)>,
}

fn bad(text: impl Into<String>) -> ItemError {
    ItemError::new("ErrorInvalidPropertySet", text)
}

fn people(el: &Element) -> Vec<Person> {
    el.children
        .iter()
        .filter_map(|a| {
            let m = a.child(NS_T, "Mailbox")?;
            let email = m.child(NS_T, "EmailAddress")?.text.trim().to_string();
            if email.is_empty() || email.len() > 320 {
                return None;
            }
            let name = m
                .child(NS_T, "Name")
                .map(|n| n.text.trim().to_string())
                .filter(|n| !n.is_empty());
            Some(Person { email, name })
        })
        .collect()
}

fn body_text(el: &Element) -> String {
    if el
        .attr("BodyType")
        .is_some_and(|b| b.eq_ignore_ascii_case("HTML"))
    {
        outpost_easconv::calendar::strip_html(&el.text)
            .trim()
            .to_string()
    } else {
        el.text.clone()
    }
}

impl Edit {
    /// Reads the fields of a `t:CalendarItem`.
    pub fn read(item: &Element) -> Result<Edit, ItemError> {
        let mut e = Edit::default();
        for f in &item.children {
            if f.name.ns != NS_T {
                continue;
            }
            let text = f.text.trim().to_string();
            match f.name.local.as_str() {
                "Subject" => e.subject = Some(Some(f.text.clone())),
                "Body" => e.body = Some(Some(body_text(f))),
                "Location" => e.location = Some(Some(text)),
                "Sensitivity" => e.sensitivity = Some(Some(text)),
                "Importance" => e.importance = Some(Some(text)),
                "Categories" => {
                    e.categories = Some(
                        f.children
                            .iter()
                            .map(|c| c.text.trim().to_string())
                            .filter(|c| !c.is_empty())
                            .take(outpost_easconv::MAX_CATEGORIES)
                            .collect(),
                    )
                }
                "ReminderIsSet" => e.reminder_set = Some(text == "true" || text == "1"),
                "ReminderMinutesBeforeStart" => {
                    e.reminder_minutes = Some(
                        text.parse::<i64>()
                            .ok()
                            .filter(|m| (0..=525_600).contains(m))
                            .ok_or_else(|| bad("ReminderMinutesBeforeStart is not a number."))?,
                    )
                }
                "Start" => e.start = Some(text),
                "End" => e.end = Some(text),
                "IsAllDayEvent" => e.all_day = Some(text == "true" || text == "1"),
                "StartTimeZone" | "MeetingTimeZone" => {
                    if let Some(tz) = zone::of_definition(f) {
                        e.start_tz = Some(tz);
                    }
                }
                "StartTimeZoneId" => {
                    if let Some(tz) = zone::resolve(&text) {
                        e.start_tz = Some(tz);
                    }
                }
                "LegacyFreeBusyStatus" => e.free_busy = Some(text),
                "RequiredAttendees" => e.attendees[0] = Some(people(f)),
                "OptionalAttendees" => e.attendees[1] = Some(people(f)),
                "Resources" => e.attendees[2] = Some(people(f)),
                "Recurrence" => e.recurrence = Some(Some(f.clone())),
                "UID" if !text.is_empty() && text.len() <= 255 => e.uid = Some(text),
                _ => {}
            }
        }
        Ok(e)
    }

    /// A DeleteItemField of `uri` (`item:Subject`, `calendar:Location`...).
    pub fn delete(&mut self, uri: &str) -> Result<(), ItemError> {
        match uri {
            "item:Subject" => self.subject = Some(None),
            "item:Body" => self.body = Some(None),
            "calendar:Location" => self.location = Some(None),
            "item:Sensitivity" => self.sensitivity = Some(None),
            "item:Importance" => self.importance = Some(None),
            "item:Categories" => self.categories = Some(Vec::new()),
            "item:ReminderIsSet" => self.reminder_set = Some(false),
            "calendar:RequiredAttendees" => self.attendees[0] = Some(Vec::new()),
            "calendar:OptionalAttendees" => self.attendees[1] = Some(Vec::new()),
            "calendar:Resources" => self.attendees[2] = Some(Vec::new()),
            "calendar:Recurrence" => self.recurrence = Some(None),
            // Nothing kept for these.
            "calendar:StartTimeZone" | "calendar:EndTimeZone" | "calendar:MeetingTimeZone" => {}
            _ => return Err(bad(format!("The field {uri} cannot be deleted here."))),
        }
        Ok(())
    }

    /// Another edit's fields on top of this one's.
    pub fn merge(&mut self, o: Edit) {
        macro_rules! take {
            ($($f:ident),*) => { $( if o.$f.is_some() { self.$f = o.$f; } )* };
        }
        take!(
            subject,
            body,
            location,
            sensitivity,
            importance,
            categories,
            reminder_set,
            reminder_minutes,
            start,
            end,
            all_day,
            start_tz,
            free_busy,
            recurrence,
            uid
        );
        for (i, a) in o.attendees.into_iter().enumerate() {
            if a.is_some() {
                self.attendees[i] = a;
            }
        }
        self.x_props.extend(o.x_props);
    }

    /// What the extended properties of a write name, on top of the fields.
    pub fn take(&mut self, w: &super::pim_props::Write) {
        if w.subject.is_some() {
            self.subject = w.subject.clone();
        }
        if w.body.is_some() {
            self.body = w.body.clone();
        }
        if w.categories.is_some() {
            self.categories = w.categories.clone();
        }
        if w.uid.is_some() {
            self.uid = w.uid.clone();
        }
        self.x_props.extend(w.x.iter().cloned());
    }

    /// Whether attendees are named at all.
    pub fn names_attendees(&self) -> bool {
        self.attendees.iter().any(Option::is_some)
    }
}

/// A request time: with an offset as it says, without in `tz`.
fn when(v: &str, tz: Tz) -> Result<i64, ItemError> {
    let v = v.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(t.timestamp());
    }
    let local = NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| {
            NaiveDate::parse_from_str(v.get(..10).unwrap_or(v), "%Y-%m-%d")
                .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default())
        })
        .map_err(|_| bad(format!("{v:?} is not an xs:dateTime.")))?;
    match tz.from_local_datetime(&local) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => Ok(t.timestamp()),
        chrono::LocalResult::None => Ok(local.and_utc().timestamp()),
    }
}

fn address(name: P, email: &str, cn: Option<&str>) -> ICalendarEntry {
    let uri = Uri::Location(format!("mailto:{}", model::clean(email.trim())));
    let e = entry(name, ICalendarValue::Uri(uri));
    match cn {
        Some(n) => e.with_param(ICalendarParameter::cn(
            n.chars()
                .filter(|c| !c.is_control() && *c != '"')
                .collect::<String>(),
        )),
        None => e,
    }
}

fn time_entry(name: P, t: i64, tz: Tz, all_day: bool) -> ICalendarEntry {
    let dt = chrono::DateTime::from_timestamp(t, 0).unwrap_or_default();
    if all_day {
        entry(name, date_only(zone::wall(tz, t).date()))
            .with_param(ICalendarParameter::value(ICalendarValueType::Date))
    } else if tz == Tz::UTC {
        entry(name, utc_time(dt))
    } else {
        entry(name, local_time(zone::wall(tz, t)))
            .with_param(ICalendarParameter::tzid(tz.name().to_string()))
    }
}

fn weekday_of(name: &str) -> Option<ICalendarWeekday> {
    WEEKDAYS
        .iter()
        .position(|w| w.eq_ignore_ascii_case(name))
        .map(|i| WEEK[i])
}

fn days_of(text: &str) -> Result<Vec<ICalendarDay>, ItemError> {
    let mut out = Vec::new();
    for d in text.split_whitespace() {
        let list: Vec<ICalendarWeekday> = match d {
            "Day" => WEEK.to_vec(),
            "Weekday" => WEEK[1..6].to_vec(),
            "WeekendDay" => vec![WEEK[6], WEEK[0]],
            other => vec![weekday_of(other).ok_or_else(|| bad(format!("{other} is not a day.")))?],
        };
        for w in list {
            out.push(ICalendarDay {
                ordwk: None,
                weekday: w,
            });
        }
    }
    if out.is_empty() {
        return Err(bad("The recurrence names no days."));
    }
    Ok(out)
}

/// The RRULE of a `t:Recurrence`; `tz` places its end date, which is a
/// DATE for an all-day series (RFC 5545: UNTIL has DTSTART's type).
pub fn rule_of(r: &Element, tz: Tz, all_day: bool) -> Result<ICalendarRecurrenceRule, ItemError> {
    let num = |e: &Element, name: &str, max: i64| -> Result<i64, ItemError> {
        e.child(NS_T, name)
            .and_then(|x| x.text.trim().parse::<i64>().ok())
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                bad(format!(
                    "The recurrence's {name} is missing or out of range."
                ))
            })
    };
    let txt = |e: &Element, name: &str| -> String {
        e.child(NS_T, name)
            .map(|x| x.text.trim().to_string())
            .unwrap_or_default()
    };
    let index = |e: &Element| -> Result<i16, ItemError> {
        match txt(e, "DayOfWeekIndex").as_str() {
            "First" => Ok(1),
            "Second" => Ok(2),
            "Third" => Ok(3),
            "Fourth" => Ok(4),
            "Last" => Ok(-1),
            _ => Err(bad("DayOfWeekIndex is not First..Fourth or Last.")),
        }
    };
    let month = |e: &Element| -> Result<ICalendarMonth, ItemError> {
        let m = txt(e, "Month");
        MONTHS
            .iter()
            .position(|x| x.eq_ignore_ascii_case(&m))
            .map(|i| ICalendarMonth::new(i as u8 + 1, false))
            .ok_or_else(|| bad("Month is not a month's name."))
    };
    let mut rule = ICalendarRecurrenceRule::default();
    let mut pattern = None;
    let mut range = None;
    for p in &r.children {
        match p.name.local.as_str() {
            "NoEndRecurrence" | "EndDateRecurrence" | "NumberedRecurrence" => range = Some(p),
            _ => pattern = Some(p),
        }
    }
    let p = pattern.ok_or_else(|| bad("The recurrence has no pattern."))?;
    let interval = |rule: &mut ICalendarRecurrenceRule| -> Result<(), ItemError> {
        let n = num(p, "Interval", 999)?;
        if n > 1 {
            rule.interval = Some(n as u16);
        }
        Ok(())
    };
    match p.name.local.as_str() {
        "DailyRecurrence" => {
            rule.freq = ICalendarFrequency::Daily;
            interval(&mut rule)?;
        }
        "WeeklyRecurrence" => {
            rule.freq = ICalendarFrequency::Weekly;
            interval(&mut rule)?;
            rule.byday = days_of(&txt(p, "DaysOfWeek"))?;
            rule.wkst = weekday_of(&txt(p, "FirstDayOfWeek"));
        }
        "AbsoluteMonthlyRecurrence" => {
            rule.freq = ICalendarFrequency::Monthly;
            interval(&mut rule)?;
            rule.bymonthday = vec![num(p, "DayOfMonth", 31)? as i8];
        }
        "RelativeMonthlyRecurrence" => {
            rule.freq = ICalendarFrequency::Monthly;
            interval(&mut rule)?;
            let mut days = days_of(&txt(p, "DaysOfWeek"))?;
            let n = index(p)?;
            if days.len() == 1 {
                days[0].ordwk = Some(n);
            } else {
                rule.bysetpos = vec![i32::from(n)];
            }
            rule.byday = days;
        }
        "AbsoluteYearlyRecurrence" => {
            rule.freq = ICalendarFrequency::Yearly;
            rule.bymonth = vec![month(p)?];
            rule.bymonthday = vec![num(p, "DayOfMonth", 31)? as i8];
        }
        "RelativeYearlyRecurrence" => {
            rule.freq = ICalendarFrequency::Yearly;
            rule.bymonth = vec![month(p)?];
            let mut days = days_of(&txt(p, "DaysOfWeek"))?;
            let n = index(p)?;
            if days.len() == 1 {
                days[0].ordwk = Some(n);
            } else {
                rule.bysetpos = vec![i32::from(n)];
            }
            rule.byday = days;
        }
        other => return Err(bad(format!("The recurrence pattern {other} is not known."))),
    }
    match range.map(|r| (r.name.local.as_str(), r)) {
        Some(("NumberedRecurrence", r)) => {
            rule.count = Some(num(r, "NumberOfOccurrences", 999)? as u32)
        }
        Some(("EndDateRecurrence", r)) => {
            let d = txt(r, "EndDate");
            let day = NaiveDate::parse_from_str(d.get(..10).unwrap_or(&d), "%Y-%m-%d")
                .map_err(|_| bad("EndDate is not a date."))?;
            if all_day {
                rule.until = Some(date_only(day));
                return Ok(rule);
            }
            // The series ends with that day, in the item's zone.
            let last = day.and_hms_opt(23, 59, 59).unwrap_or_default();
            let end = match tz.from_local_datetime(&last) {
                chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
                    t.timestamp()
                }
                chrono::LocalResult::None => last.and_utc().timestamp(),
            };
            rule.until = Some(utc_time(
                chrono::DateTime::from_timestamp(end, 0).unwrap_or_default(),
            ));
        }
        _ => {}
    }
    Ok(rule)
}

/// How invitations go for this write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sending {
    /// The scheduling engine sends them (SendOnlyToAll, SendToAllAndSaveCopy...).
    Send,
    /// Nobody is told (SendToNone): attendees get SCHEDULE-AGENT=CLIENT.
    Quiet,
}

/// What a write starts from.
pub struct Base<'a> {
    /// The stored object's text, for an update.
    pub existing: Option<&'a str>,
    /// Its times, for an update.
    pub times: Option<Times>,
    /// The zone of times without one: the request's TimeZoneContext, the
    /// calendar's zone, UTC.
    pub default_tz: Tz,
    /// The organizer, when attendees are added: the user.
    pub me: Person,
    /// The user's addresses: whether the user organizes the meeting.
    pub own: Vec<String>,
}

/// What of the object an edit changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The single item or the series (its master).
    Master,
    /// One occurrence, RECURRENCE-ID `rid`: its override, made from the
    /// master when there is none (`position` is the override's place
    /// among the VCALENDAR's components when it exists).
    Occurrence {
        rid: i64,
        position: Option<usize>,
        all_day: bool,
        floating: Tz,
    },
}

/// The iCalendar text after `edit`.
pub fn apply(base: &Base<'_>, edit: &Edit, sending: Sending) -> Result<String, ItemError> {
    apply_at(base, edit, sending, Target::Master)
}

/// The iCalendar text after `edit` of `target`.
pub fn apply_at(
    base: &Base<'_>,
    edit: &Edit,
    sending: Sending,
    target: Target,
) -> Result<String, ItemError> {
    let invalid = |e: outpost_easconv::Error| bad(format!("The stored item cannot be edited: {e}"));
    let mut root = match base.existing {
        Some(text) => model::parse_calendar(text).map_err(invalid)?,
        None => {
            let mut c = Component::new(Kind::VCalendar);
            c.push(text_entry(P::Version, "2.0"));
            c.push(text_entry(P::Prodid, "-//Outpost//EWS//EN"));
            c
        }
    };
    let pos = root
        .subs
        .iter()
        .position(|s| s.kind == Kind::VEvent && s.prop(&P::RecurrenceId).is_none());
    let master = match pos {
        Some(i) => i,
        None if base.existing.is_none() => {
            root.subs.push(Component::new(Kind::VEvent));
            root.subs.len() - 1
        }
        None => return Err(bad("The stored item has no main event.")),
    };
    let idx = match target {
        Target::Master => master,
        Target::Occurrence {
            position: Some(p), ..
        } if root.subs.get(p).is_some_and(|c| c.kind == Kind::VEvent) => p,
        Target::Occurrence {
            rid,
            all_day,
            floating,
            ..
        } => {
            // A new override: the master's properties for this instance.
            let mut o = root.subs[master].clone();
            for p in [P::Rrule, P::Rdate, P::Exdate, P::Exrule] {
                o.remove(&p);
            }
            o.set(if all_day {
                time_entry(P::RecurrenceId, rid, floating, true)
            } else {
                time_entry(P::RecurrenceId, rid, Tz::UTC, false)
            });
            root.subs.push(o);
            root.subs.len() - 1
        }
    };
    if target != Target::Master && edit.recurrence.is_some() {
        return Err(bad("An occurrence has no recurrence of its own."));
    }
    // An override gets its instance's times written even when the edit
    // names none.
    let new_override = matches!(target, Target::Occurrence { position: None, .. })
        || matches!(target, Target::Occurrence { position: Some(p), .. } if p != idx);
    let now = chrono::Utc::now();
    let mut tz_used = None;
    {
        let ev = &mut root.subs[idx];
        if base.existing.is_none() {
            let uid = edit.uid.clone().unwrap_or_else(new_uid);
            ev.set(text_entry(P::Uid, &uid));
        }
        ev.set(entry(P::Dtstamp, utc_time(now)));
        if base.existing.is_some() {
            ev.set(entry(P::LastModified, utc_time(now)));
            let seq = ev
                .text(&P::Sequence)
                .and_then(|s| s.parse::<i64>().ok())
                .or_else(|| match ev.prop(&P::Sequence)?.values.first()? {
                    ICalendarValue::Integer(n) => Some(*n),
                    _ => None,
                })
                .unwrap_or(0);
            ev.set(entry(P::Sequence, ICalendarValue::Integer(seq + 1)));
        } else {
            ev.set(entry(P::Created, utc_time(now)));
        }
        let text = |ev: &mut Component, name: P, v: &Option<Option<String>>, max: usize| match v {
            Some(Some(s)) if !s.trim().is_empty() => {
                let s: String = s.chars().take(max).collect();
                ev.set(text_entry(name, &s));
            }
            Some(_) => ev.remove(&name),
            None => {}
        };
        text(ev, P::Summary, &edit.subject, outpost_easconv::MAX_FIELD);
        text(ev, P::Description, &edit.body, outpost_easconv::MAX_BODY);
        text(ev, P::Location, &edit.location, outpost_easconv::MAX_FIELD);
        match edit.sensitivity.as_ref().map(|s| s.as_deref()) {
            Some(Some("Private")) => ev.set(text_entry(P::Class, "PRIVATE")),
            Some(Some("Confidential")) => ev.set(text_entry(P::Class, "CONFIDENTIAL")),
            Some(_) => ev.remove(&P::Class),
            None => {}
        }
        match edit.importance.as_ref().map(|s| s.as_deref()) {
            Some(Some("High")) => ev.set(entry(P::Priority, ICalendarValue::Integer(1))),
            Some(Some("Low")) => ev.set(entry(P::Priority, ICalendarValue::Integer(9))),
            Some(_) => ev.remove(&P::Priority),
            None => {}
        }
        if let Some(cats) = &edit.categories {
            ev.remove(&P::Categories);
            if !cats.is_empty() {
                let mut e = ICalendarEntry::new(P::Categories);
                for c in cats {
                    e = e.with_value(ICalendarValue::Text(model::clean(c)));
                }
                ev.push(e);
            }
        }
        match edit.free_busy.as_deref() {
            Some("Free") => {
                ev.set(entry(P::Transp, ICalendarTransparency::Transparent));
                ev.set(text_entry(
                    P::Other("X-MICROSOFT-CDO-BUSYSTATUS".into()),
                    "FREE",
                ));
            }
            Some(v @ ("Busy" | "Tentative" | "OOF" | "WorkingElsewhere")) => {
                ev.set(entry(P::Transp, ICalendarTransparency::Opaque));
                ev.set(text_entry(
                    P::Other("X-MICROSOFT-CDO-BUSYSTATUS".into()),
                    &v.to_ascii_uppercase(),
                ));
            }
            Some("NoData") | None => {}
            Some(v) => return Err(bad(format!("{v} is not a LegacyFreeBusyStatus."))),
        }
        // Times: what the edit says over what the item had.
        let times_named = edit.start.is_some()
            || edit.end.is_some()
            || edit.all_day.is_some()
            || edit.start_tz.is_some();
        // The item's zone: the one asked for, else the one it has.
        let item_tz = edit
            .start_tz
            .or_else(|| {
                base.times
                    .as_ref()
                    .and_then(|t| t.tzid.as_deref())
                    .and_then(zone::resolve)
            })
            .unwrap_or(base.default_tz);
        if times_named || base.existing.is_none() || new_override {
            let old = base.times.clone();
            let tz = item_tz;
            let start = match &edit.start {
                Some(v) => when(v, tz)?,
                None => old
                    .as_ref()
                    .map(|t| t.start)
                    .ok_or_else(|| bad("A calendar item needs a Start."))?,
            };
            let end = match &edit.end {
                Some(v) => when(v, tz)?,
                None => match &old {
                    Some(t) => start + (t.end - t.start),
                    None => start + 1800,
                },
            };
            let all_day = edit
                .all_day
                .unwrap_or(old.as_ref().is_some_and(|t| t.all_day));
            if end < start {
                return Err(ItemError::new(
                    "ErrorCalendarEndDateIsEarlierThanStartDate",
                    "The End is before the Start.",
                ));
            }
            let (start, mut end) = if all_day {
                // Whole days in the item's zone.
                let s = zone::wall(tz, start).date();
                let mut e = zone::wall(tz, end).date();
                if e <= s {
                    e = s + chrono::Duration::days(1);
                }
                let at = |d: NaiveDate| {
                    when(&d.format("%Y-%m-%dT00:00:00").to_string(), tz).unwrap_or(0)
                };
                (at(s), at(e))
            } else {
                (start, end)
            };
            if end == start && all_day {
                end = start + 86_400;
            }
            ev.set(time_entry(P::Dtstart, start, tz, all_day));
            ev.remove(&P::Duration);
            ev.set(time_entry(P::Dtend, end, tz, all_day));
            if tz != Tz::UTC && !all_day {
                tz_used = Some((tz, zone::wall(tz, start).year()));
            }
        }
        match &edit.recurrence {
            Some(Some(r)) => {
                ev.set(entry(
                    P::Rrule,
                    ICalendarValue::RecurrenceRule(Box::new(rule_of(
                        r,
                        item_tz,
                        edit.all_day
                            .or(base.times.as_ref().map(|t| t.all_day))
                            .unwrap_or(false),
                    )?)),
                ));
            }
            Some(None) => {
                ev.remove(&P::Rrule);
                ev.remove(&P::Rdate);
                ev.remove(&P::Exdate);
            }
            None => {}
        }
        if let Some(set) = edit.reminder_set.or(edit.reminder_minutes.map(|_| true)) {
            ev.subs.retain(|s| s.kind != Kind::VAlarm);
            if set {
                let mins = edit.reminder_minutes.unwrap_or(15);
                let mut a = Component::new(Kind::VAlarm);
                a.push(entry(P::Action, ICalendarAction::Display));
                a.push(text_entry(P::Description, "Reminder"));
                a.push(entry(
                    P::Trigger,
                    ICalendarValue::Duration(ICalendarDuration {
                        neg: true,
                        minutes: mins as u32,
                        ..ICalendarDuration::default()
                    }),
                ));
                ev.subs.push(a);
            }
        }
        for (name, value) in &edit.x_props {
            let p = P::Other(name.clone());
            match value {
                Some(v) if !v.trim().is_empty() => {
                    let v: String = v.chars().take(outpost_easconv::MAX_FIELD).collect();
                    ev.set(text_entry(p, &v));
                }
                _ => ev.remove(&p),
            }
        }
        if edit.names_attendees() {
            apply_attendees(ev, edit, base)?;
        }
        mark_agents(ev, sending, &base.own);
    }
    if let Some((tz, year)) = tz_used {
        let has = root
            .subs
            .iter()
            .any(|s| s.kind == Kind::VTimezone && s.text(&P::Tzid) == Some(tz.name()));
        if !has {
            root.subs
                .insert(0, outpost_easconv::calendar::vtimezone(tz, year));
        }
    }
    Ok(root.write())
}

/// The object without the occurrence `inst` of its series: an EXDATE on
/// the master, its override (if any) removed.
pub fn exclude(
    s: &Stored,
    data: &str,
    inst: &Instance,
    sending: Sending,
    own: &[String],
) -> Result<String, ItemError> {
    let rid = inst.recurrence_id.ok_or_else(ItemError::not_found)?;
    let mut root = model::parse_calendar(data)
        .map_err(|e| bad(format!("The stored item cannot be edited: {e}")))?;
    // The parsed tree and calcard's list hold the components in one order.
    if s.is_override(inst.component) {
        if let Some(pos) = s.tree.children.iter().position(|c| c.id == inst.component) {
            if pos < root.subs.len() && root.subs[pos].kind == Kind::VEvent {
                root.subs.remove(pos);
            }
        }
    }
    let master = root
        .subs
        .iter_mut()
        .find(|c| c.kind == Kind::VEvent && c.prop(&P::RecurrenceId).is_none())
        .ok_or_else(|| bad("The stored item has no main event."))?;
    let all_day = s
        .master()
        .and_then(|m| s.times(m.id))
        .is_some_and(|t| t.all_day);
    // A timed series' EXDATE in UTC: its DTSTART's zone need not be
    // repeated.
    master.push(if all_day {
        time_entry(P::Exdate, rid, s.floating, true)
    } else {
        time_entry(P::Exdate, rid, Tz::UTC, false)
    });
    let now = chrono::Utc::now();
    master.set(entry(P::Dtstamp, utc_time(now)));
    mark_agents(master, sending, own);
    Ok(root.write())
}

/// On the organizer's copy: the attendees with SCHEDULE-AGENT=CLIENT when
/// nobody is to be told, without it when the server is to tell them. An
/// attendee's own copy is left as it is (its replies go through the
/// meeting responses).
fn mark_agents(ev: &mut Component, sending: Sending, own: &[String]) {
    let organizer = match ev.prop(&P::Organizer).and_then(|o| o.values.first()) {
        Some(ICalendarValue::Uri(Uri::Location(u))) => Some(mailto(u)),
        Some(ICalendarValue::Text(u)) => Some(mailto(u)),
        _ => None,
    };
    if organizer.is_some_and(|o| !own.iter().any(|a| a.eq_ignore_ascii_case(&o))) {
        return;
    }
    for e in ev.entries.iter_mut().filter(|e| e.name == P::Attendee) {
        e.params.retain(|p| p.name != Param::ScheduleAgent);
        if sending == Sending::Quiet {
            e.params.push(ICalendarParameter::schedule_agent(
                ICalendarScheduleAgentValue::Client,
            ));
        }
    }
}

fn apply_attendees(ev: &mut Component, edit: &Edit, base: &Base<'_>) -> Result<(), ItemError> {
    // The attendees of each named group are replaced; answers already
    // given are kept for those still invited.
    let old: Vec<ICalendarEntry> = ev.props(&P::Attendee).cloned().collect();
    let email_of = |e: &ICalendarEntry| -> String {
        match e.values.first() {
            Some(ICalendarValue::Uri(Uri::Location(u))) => mailto(u).to_lowercase(),
            Some(ICalendarValue::Text(u)) => mailto(u).to_lowercase(),
            _ => String::new(),
        }
    };
    let slot_of = |e: &ICalendarEntry| -> usize {
        let cutype = e.param(&Param::Cutype).map(str::to_ascii_uppercase);
        let role = e.param(&Param::Role).map(str::to_ascii_uppercase);
        if matches!(cutype.as_deref(), Some("RESOURCE" | "ROOM")) {
            2
        } else if matches!(role.as_deref(), Some("OPT-PARTICIPANT" | "NON-PARTICIPANT")) {
            1
        } else {
            0
        }
    };
    let mut keep: Vec<ICalendarEntry> = old
        .iter()
        .filter(|e| edit.attendees[slot_of(e)].is_none())
        .cloned()
        .collect();
    let mut count = keep.len();
    for (slot, list) in edit.attendees.iter().enumerate() {
        let Some(list) = list else { continue };
        for p in list {
            count += 1;
            if count > outpost_easconv::MAX_ATTENDEES {
                return Err(bad("Too many attendees."));
            }
            let email = p.email.to_lowercase();
            if let Some(prev) = old
                .iter()
                .find(|e| email_of(e) == email && slot_of(e) == slot)
            {
                keep.push(prev.clone());
                continue;
            }
            let mut a = address(P::Attendee, &p.email, p.name.as_deref());
            a = a.with_param(ICalendarParameter::partstat(
                ICalendarParticipationStatus::NeedsAction,
            ));
            a = match slot {
                0 => a.with_param(ICalendarParameter::role(
                    ICalendarParticipationRole::ReqParticipant,
                )),
                1 => a.with_param(ICalendarParameter::role(
                    ICalendarParticipationRole::OptParticipant,
                )),
                _ => a
                    .with_param(ICalendarParameter::cutype(ICalendarUserTypes::Resource))
                    .with_param(ICalendarParameter::role(
                        ICalendarParticipationRole::NonParticipant,
                    )),
            };
            keep.push(a.with_param(ICalendarParameter::rsvp(true)));
        }
    }
    ev.remove(&P::Attendee);
    let any = !keep.is_empty();
    for a in keep {
        ev.push(a);
    }
    if any && ev.prop(&P::Organizer).is_none() {
        ev.push(address(
            P::Organizer,
            &base.me.email,
            base.me.name.as_deref(),
        ));
    }
    if !any {
        ev.remove(&P::Organizer);
    }
    Ok(())
}

/// A new UID for an object made over EWS.
pub fn new_uid() -> String {
    format!("{:032x}", rand::random::<u128>())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A `t:CalendarItem` holding `xml` (the tests of calendar items).
    pub(crate) fn el(xml: &str) -> Element {
        outpost_xml::parse(
            format!(r#"<t:CalendarItem xmlns:t="{NS_T}">{xml}</t:CalendarItem>"#).as_bytes(),
            &Default::default(),
        )
        .unwrap()
    }

    fn base(existing: Option<&str>) -> Base<'_> {
        Base {
            existing,
            times: None,
            default_tz: Tz::UTC,
            me: Person {
                email: "alice@example.test".into(),
                name: Some("Alice A".into()),
            },
            own: vec!["alice@example.test".into()],
        }
    }

    fn ids() -> ItemIds {
        ItemIds {
            id: "ID".into(),
            change_key: "CK".into(),
            parent: "P".into(),
            own: vec!["alice@example.test".into()],
            numbers: (1, 2, 3),
        }
    }

    #[test]
    fn a_meeting_round_trips() {
        let edit = Edit::read(&el(
            "<t:Subject>Planning</t:Subject><t:Body BodyType=\"HTML\">&lt;p&gt;Agenda&lt;/p&gt;</t:Body>\
             <t:ReminderIsSet>true</t:ReminderIsSet><t:ReminderMinutesBeforeStart>10</t:ReminderMinutesBeforeStart>\
             <t:Start>2026-12-07T09:00:00+01:00</t:Start><t:End>2026-12-07T10:00:00+01:00</t:End>\
             <t:Location>Room 1</t:Location>\
             <t:RequiredAttendees><t:Attendee><t:Mailbox><t:EmailAddress>bob@example.test</t:EmailAddress></t:Mailbox></t:Attendee></t:RequiredAttendees>\
             <t:Recurrence><t:WeeklyRecurrence><t:Interval>1</t:Interval><t:DaysOfWeek>Monday Wednesday</t:DaysOfWeek></t:WeeklyRecurrence>\
             <t:NumberedRecurrence><t:StartDate>2026-12-07</t:StartDate><t:NumberOfOccurrences>4</t:NumberOfOccurrences></t:NumberedRecurrence></t:Recurrence>\
             <t:StartTimeZone Id=\"W. Europe Standard Time\"/>",
        ))
        .unwrap();
        let ics = apply(&base(None), &edit, Sending::Send).unwrap();
        assert!(
            ics.contains("DTSTART;TZID=Europe/Berlin:20261207T090000"),
            "{ics}"
        );
        assert!(ics.contains("BEGIN:VTIMEZONE"), "{ics}");
        assert!(
            ics.contains("RRULE:FREQ=WEEKLY;COUNT=4;BYDAY=MO,WE"),
            "{ics}"
        );
        assert!(
            ics.contains("ORGANIZER;CN=\"Alice A\":mailto:alice@example.test"),
            "{ics}"
        );
        assert!(ics.contains("TRIGGER:-PT10M"), "{ics}");
        let s = read(&ics, None).unwrap();
        let xml = outpost_xml::write(
            &item_element(&s, &Which::Whole, &ids(), false).unwrap(),
            &[(NS_T, "t")],
        );
        for want in [
            "<t:Subject>Planning</t:Subject>",
            "<t:Body BodyType=\"Text\">Agenda</t:Body>",
            "<t:Start>2026-12-07T08:00:00Z</t:Start>",
            "<t:CalendarItemType>RecurringMaster</t:CalendarItemType>",
            "<t:MyResponseType>Organizer</t:MyResponseType>",
            "<t:EmailAddress>bob@example.test</t:EmailAddress>",
            "<t:ResponseType>NoResponseReceived</t:ResponseType>",
            "<t:DaysOfWeek>Monday Wednesday</t:DaysOfWeek>",
            "<t:NumberOfOccurrences>4</t:NumberOfOccurrences>",
            "<t:ReminderMinutesBeforeStart>10</t:ReminderMinutesBeforeStart>",
            "<t:StartTimeZone Id=\"Europe/Berlin\"",
        ] {
            assert!(xml.contains(want), "{want} in {xml}");
        }
        let inst = s.instances(0, i64::MAX / 4);
        assert_eq!(inst.len(), 4);
        // Mon 7, Wed 9, Mon 14, Wed 16 December, 08:00 UTC.
        assert_eq!(inst[1].start, outpost_pim::utc(2026, 12, 9, 8, 0, 0));
        let occ = item_element(&s, &Which::Instance(inst[1].clone()), &ids(), false).unwrap();
        let xml = outpost_xml::write(&occ, &[(NS_T, "t")]);
        assert!(xml.contains("<t:CalendarItemType>Occurrence</t:CalendarItemType>"));
        assert!(!xml.contains("<t:Recurrence>"));
        // Quiet: the attendee is not scheduled by the server.
        let quiet = apply(&base(None), &edit, Sending::Quiet).unwrap();
        assert!(quiet.contains("SCHEDULE-AGENT=CLIENT"), "{quiet}");
    }

    #[test]
    fn updates_keep_what_they_do_not_name() {
        let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:u1\r\nDTSTAMP:20261201T000000Z\r\n\
                   DTSTART:20261210T090000Z\r\nDTEND:20261210T100000Z\r\nSUMMARY:Old\r\nX-KEEP:me\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let s = read(ics, None).unwrap();
        let mut b = base(Some(ics));
        b.times = s.times(s.master().unwrap().id);
        let mut edit = Edit::read(&el(
            "<t:Subject>New</t:Subject><t:Start>2026-12-10T11:00:00Z</t:Start>",
        ))
        .unwrap();
        edit.delete("calendar:Location").unwrap();
        assert!(edit.delete("item:Nonsense").is_err());
        let out = apply(&b, &edit, Sending::Send).unwrap();
        assert!(
            out.contains("SUMMARY:New") && out.contains("X-KEEP:me"),
            "{out}"
        );
        assert!(
            out.contains("DTSTART:20261210T110000Z") && out.contains("DTEND:20261210T120000Z"),
            "{out}"
        );
        assert!(out.contains("SEQUENCE:1"), "{out}");
        let all_day = Edit::read(&el("<t:Start>2026-12-24T00:00:00Z</t:Start><t:End>2026-12-25T00:00:00Z</t:End><t:IsAllDayEvent>true</t:IsAllDayEvent>")).unwrap();
        let out = apply(&base(None), &all_day, Sending::Send).unwrap();
        assert!(
            out.contains("DTSTART;VALUE=DATE:20261224")
                && out.contains("DTEND;VALUE=DATE:20261225"),
            "{out}"
        );
        let backwards = Edit::read(&el(
            "<t:Start>2026-12-24T10:00:00Z</t:Start><t:End>2026-12-24T09:00:00Z</t:End>",
        ))
        .unwrap();
        assert_eq!(
            apply(&base(None), &backwards, Sending::Send)
                .unwrap_err()
                .code,
            "ErrorCalendarEndDateIsEarlierThanStartDate"
        );
    }

    #[test]
    fn one_occurrence_changed_becomes_an_override() {
        let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:w1\r\nDTSTAMP:20261201T000000Z\r\n\
                   DTSTART;TZID=Europe/Berlin:20261207T090000\r\nDTEND;TZID=Europe/Berlin:20261207T100000\r\n\
                   RRULE:FREQ=WEEKLY;COUNT=3\r\nSUMMARY:Weekly\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let s = read(ics, None).unwrap();
        let second = s.instances(0, i64::MAX / 4)[1].clone();
        let rid = second.recurrence_id.unwrap();
        let mut b = base(Some(ics));
        b.times = Some(Times {
            start: second.start,
            end: second.end,
            all_day: false,
            tzid: Some("Europe/Berlin".into()),
        });
        let edit = Edit::read(&el(
            "<t:Subject>Moved</t:Subject><t:Start>2026-12-14T10:00:00Z</t:Start>",
        ))
        .unwrap();
        let target = Target::Occurrence {
            rid,
            position: None,
            all_day: false,
            floating: Tz::UTC,
        };
        let out = apply_at(&b, &edit, Sending::Send, target).unwrap();
        assert!(out.contains("RECURRENCE-ID:20261214T080000Z"), "{out}");
        let s2 = read(&out, None).unwrap();
        let all = s2.instances(0, i64::MAX / 4);
        assert_eq!(all.len(), 3, "{out}");
        assert!(s2.is_override(all[1].component));
        assert_eq!(all[1].start, outpost_pim::utc(2026, 12, 14, 10, 0, 0));
        assert_eq!(all[1].recurrence_id, Some(rid));
        let xml = outpost_xml::write(
            &item_element(&s2, &Which::Instance(all[1].clone()), &ids(), false).unwrap(),
            &[(NS_T, "t")],
        );
        assert!(xml.contains("<t:Subject>Moved</t:Subject>"));
        assert!(xml.contains("<t:CalendarItemType>Exception</t:CalendarItemType>"));
        let master = outpost_xml::write(
            &item_element(&s2, &Which::Whole, &ids(), false).unwrap(),
            &[(NS_T, "t")],
        );
        assert!(
            master.contains("<t:ModifiedOccurrences><t:Occurrence>"),
            "{master}"
        );
        assert!(master.contains("<t:OriginalStart>2026-12-14T08:00:00Z</t:OriginalStart>"));
        assert!(master.contains("<t:LastOccurrence>"));
        // Deleting it leaves two, the override gone with it.
        let gone = exclude(&s2, &out, &all[1], Sending::Send, &[]).unwrap();
        let s3 = read(&gone, None).unwrap();
        assert_eq!(s3.instances(0, i64::MAX / 4).len(), 2, "{gone}");
        assert!(!gone.contains("Moved"), "{gone}");
        let master = outpost_xml::write(
            &item_element(&s3, &Which::Whole, &ids(), false).unwrap(),
            &[(NS_T, "t")],
        );
        assert!(
            master.contains("<t:DeletedOccurrence><t:Start>2026-12-14T08:00:00Z</t:Start>"),
            "{master}"
        );
    }

    #[test]
    fn all_day_series_with_an_end_date() {
        let edit = Edit::read(&el(
            "<t:Subject>Days</t:Subject><t:Start>2026-12-07T00:00:00+01:00</t:Start><t:End>2026-12-08T00:00:00+01:00</t:End>\
             <t:IsAllDayEvent>true</t:IsAllDayEvent>\
             <t:Recurrence><t:DailyRecurrence><t:Interval>2</t:Interval></t:DailyRecurrence>\
             <t:EndDateRecurrence><t:StartDate>2026-12-07+01:00</t:StartDate><t:EndDate>2026-12-13+01:00</t:EndDate></t:EndDateRecurrence></t:Recurrence>\
             <t:StartTimeZone Id=\"Romance Standard Time\"/>",
        ))
        .unwrap();
        let ics = apply(&base(None), &edit, Sending::Send).unwrap();
        assert!(ics.contains("DTSTART;VALUE=DATE:20261207"), "{ics}");
        assert!(ics.contains("UNTIL=20261213;"), "{ics}");
        let s = read(&ics, Some("Europe/Paris")).unwrap();
        // 7, 9, 11, 13 December.
        assert_eq!(s.instances(0, i64::MAX / 4).len(), 4, "{ics}");
        let opts = outpost_pim::IngestOptions::new(0);
        outpost_pim::ingest_icalendar(ics.as_bytes(), &opts).unwrap();
    }

    #[test]
    fn utc_times_lose_their_tzid() {
        let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:a\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;TZID=GMT Standard Time:20300107T100000Z\r\nDTEND;TZID=Europe/Berlin:20300107T110000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let out = utc_without_tzid(ics);
        assert!(out.contains("DTSTART:20300107T100000Z"), "{out}");
        assert!(
            out.contains("DTEND;TZID=Europe/Berlin:20300107T110000"),
            "{out}"
        );
        let clean = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n";
        assert_eq!(utc_without_tzid(clean), clean);
    }

    #[test]
    fn method_is_not_stored() {
        let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:PUB\r\n LISH\r\nBEGIN:VEVENT\r\nUID:a\r\nX-METHOD:keep\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        assert_eq!(
            without_method(ics),
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:a\r\nX-METHOD:keep\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(iso_duration(3600), "PT1H");
        assert_eq!(iso_duration(86_400), "P1D");
        assert_eq!(iso_duration(5400), "PT1H30M");
        assert_eq!(iso_duration(0), "PT0M");
    }
}
