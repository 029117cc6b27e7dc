//! VTODO <-> Tasks ApplicationData (MS-ASTASK).

use crate::calendar::{
    body_element, body_text, categories_from_eas, display_alarm, el, new_calendar, parse_eas_time,
    parse_when, recurrence_from_eas, recurrence_to_eas, rrule_of, sensitivity_from_eas, text_of,
    to_utc, EventOptions, IncomingOptions,
};
use crate::model::{self, entry, text_entry, utc_time, Component, EntryExt, Kind, Param, P};
use crate::{EasVersion, Error, Result, MAX_FIELD};
use calcard::icalendar::{
    ICalendarEntry, ICalendarParameter, ICalendarStatus, ICalendarValue, ICalendarValueType,
};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use outpost_wbxml::{Element, Node, Tag};

const TASKS: &str = "Tasks";

/// MS-ASDTYPE date-time form the Tasks class uses: 2009-11-09T00:00:00.000Z.
fn long(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The local wall time of `t` in `tz`, written as the Tasks "local" dates are.
fn local_long(t: DateTime<Utc>, tz: Tz) -> String {
    format!(
        "{}",
        t.with_timezone(&tz)
            .naive_local()
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
    )
}

/// Moves an element tree between code pages that share tag names.
fn retag(e: &Element, page: &str) -> Option<Element> {
    let tag = Tag::named(page, e.tag.name())?;
    let mut out = Element::new(tag);
    for n in &e.children {
        match n {
            Node::Element(c) => {
                if let Some(c) = retag(c, page) {
                    out.children.push(Node::Element(c));
                }
            }
            other => out.children.push(other.clone()),
        }
    }
    Some(out)
}

fn find_todo(text: &str) -> Result<(Component, Component)> {
    let root = model::parse_calendar(text)?;
    let todo = root
        .subs
        .iter()
        .find(|s| s.kind == Kind::VTodo && s.prop(&P::RecurrenceId).is_none())
        .cloned()
        .ok_or_else(|| Error::Invalid("no VTODO".into()))?;
    Ok((root, todo))
}

/// The ApplicationData children of a Tasks item for a VTODO.
pub fn todo_to_eas(text: &str, _version: EasVersion, opts: &EventOptions) -> Result<Vec<Element>> {
    let (_, t) = find_todo(text)?;
    let tz = opts.default_tz;
    let mut out = Vec::new();
    if let Some(d) = t.text(&P::Description) {
        out.push(body_element(d, opts));
    }
    let done =
        t.prop(&P::Status).is_some_and(|s| s.is("COMPLETED")) || t.prop(&P::Completed).is_some();
    out.push(el(TASKS, "Complete", if done { "1" } else { "0" }));
    if done {
        let when = t
            .prop(&P::Completed)
            .map(parse_when)
            .transpose()?
            .map(|w| to_utc(w, tz));
        if let Some(w) = when {
            out.push(el(TASKS, "DateCompleted", long(w)));
        }
    }
    let due = t
        .prop(&P::Due)
        .map(parse_when)
        .transpose()?
        .map(|w| to_utc(w, tz));
    if let Some(d) = due {
        out.push(el(TASKS, "DueDate", local_long(d, tz)));
        out.push(el(TASKS, "UtcDueDate", long(d)));
    }
    let imp = match t.prop(&P::Priority).and_then(|p| match p.values.first()? {
        ICalendarValue::Integer(i) => Some(*i),
        other => other.as_text()?.trim().parse().ok(),
    }) {
        Some(1..=4) => "2",
        Some(6..=9) => "0",
        _ => "1",
    };
    out.push(el(TASKS, "Importance", imp));
    let start = t
        .prop(&P::Dtstart)
        .map(parse_when)
        .transpose()?
        .map(|w| to_utc(w, tz));
    if let Some(r) = rrule_of(&t)? {
        let s = start
            .or(due)
            .ok_or_else(|| Error::Invalid("recurring VTODO without a date".into()))?;
        let cal = recurrence_to_eas(r, s.with_timezone(&tz).naive_local(), tz)?;
        if let Some(mut rec) = retag(&cal, TASKS) {
            rec.children
                .insert(1, Node::Element(el(TASKS, "Start", long(s))));
            // Until is a compact date-time on the Calendar page.
            for n in rec.children.iter_mut() {
                if let Node::Element(e) = n {
                    if e.is(TASKS, "Until") {
                        let u = parse_eas_time(&e.text())?;
                        *e = el(TASKS, "Until", long(u));
                    }
                }
            }
            out.push(rec);
        }
    }
    let alarm = t
        .subs
        .iter()
        .find(|s| s.kind == Kind::VAlarm)
        .and_then(|a| a.prop(&P::Trigger));
    let reminder = match alarm {
        Some(p)
            if p.param(&Param::Value)
                .is_some_and(|v| v.eq_ignore_ascii_case("DATE-TIME")) =>
        {
            Some(to_utc(parse_when(p)?, tz))
        }
        Some(_) => start.or(due),
        None => None,
    };
    out.push(el(
        TASKS,
        "ReminderSet",
        if reminder.is_some() { "1" } else { "0" },
    ));
    if let Some(r) = reminder {
        out.push(el(TASKS, "ReminderTime", long(r)));
    }
    let sens = crate::calendar::sensitivity_to_eas(&t);
    out.push(el(TASKS, "Sensitivity", sens));
    if let Some(s) = start {
        out.push(el(TASKS, "StartDate", local_long(s, tz)));
        out.push(el(TASKS, "UtcStartDate", long(s)));
    }
    if let Some(s) = t.text(&P::Summary) {
        out.push(el(TASKS, "Subject", s));
    }
    out.extend(crate::calendar::categories_to_eas(&t, TASKS)?);
    Ok(out)
}

const CARRIED: &[P] = &[
    P::Summary,
    P::Description,
    P::Status,
    P::Completed,
    P::PercentComplete,
    P::Due,
    P::Dtstart,
    P::Priority,
    P::Class,
    P::Categories,
    P::Rrule,
    P::Dtstamp,
];

fn utc_prop(name: P, t: DateTime<Utc>) -> ICalendarEntry {
    entry(name, utc_time(t))
}

/// The VTODO for a client's Tasks ApplicationData, merged into `existing`.
pub fn eas_to_todo(
    app: &Element,
    existing: Option<&str>,
    _version: EasVersion,
    opts: &IncomingOptions,
) -> Result<String> {
    let (mut root, mut t) = match existing {
        Some(x) => find_todo(x)?,
        None => {
            let mut t = Component::new(Kind::VTodo);
            t.push(text_entry(P::Uid, &opts.new_uid));
            (new_calendar(), t)
        }
    };
    t.entries.retain(|p| !CARRIED.contains(&p.name));
    t.push(utc_prop(P::Dtstamp, opts.now));
    let time = |name: &str| -> Result<Option<DateTime<Utc>>> {
        app.child(TASKS, name)
            .map(|e| parse_eas_time(&e.text()))
            .transpose()
    };
    if let Some(s) = app.child(TASKS, "Subject") {
        t.push(text_entry(P::Summary, &text_of(s, MAX_FIELD, "subject")?));
    }
    if let Some(b) = body_text(app)?.filter(|b| !b.is_empty()) {
        t.push(text_entry(P::Description, &b));
    }
    let start = time("UtcStartDate")?.or(time("StartDate")?);
    let due = time("UtcDueDate")?.or(time("DueDate")?);
    if let (Some(s), Some(d)) = (start, due) {
        if d < s {
            return Err(Error::Invalid("due before start".into()));
        }
    }
    if let Some(s) = start {
        t.push(utc_prop(P::Dtstart, s));
    }
    if let Some(d) = due {
        t.push(utc_prop(P::Due, d));
    }
    if app
        .child(TASKS, "Complete")
        .is_some_and(|c| c.text().trim() == "1")
    {
        t.push(entry(P::Status, ICalendarStatus::Completed));
        t.push(entry(P::PercentComplete, 100i64));
        t.push(utc_prop(
            P::Completed,
            time("DateCompleted")?.unwrap_or(opts.now),
        ));
    } else {
        t.push(entry(P::Status, ICalendarStatus::NeedsAction));
    }
    let pri: Option<i64> = match app
        .child(TASKS, "Importance")
        .map(|e| e.text())
        .as_deref()
        .map(str::trim)
    {
        Some("2") => Some(1),
        Some("0") => Some(9),
        Some("1") => Some(5),
        None => None,
        Some(_) => return Err(Error::Invalid("bad Importance".into())),
    };
    if let Some(p) = pri {
        t.push(entry(P::Priority, p));
    }
    if let Some(s) = app.child(TASKS, "Sensitivity") {
        t.push(entry(P::Class, sensitivity_from_eas(&s.text())));
    }
    if let Some(r) = app.child(TASKS, "Recurrence") {
        let cal = retag(r, "Calendar").ok_or_else(|| Error::Invalid("bad Recurrence".into()))?;
        t.push(entry(P::Rrule, recurrence_from_eas(&cal)?));
        if start.is_none() && due.is_none() {
            return Err(Error::Invalid("recurring task without a date".into()));
        }
    }
    if let Some(rs) = app.child(TASKS, "ReminderSet") {
        t.subs.retain(|s| s.kind != Kind::VAlarm);
        if rs.text().trim() == "1" {
            let when = time("ReminderTime")?
                .ok_or_else(|| Error::Invalid("ReminderSet without ReminderTime".into()))?;
            let trigger = utc_prop(P::Trigger, when)
                .with_param(ICalendarParameter::value(ICalendarValueType::DateTime));
            t.subs.push(display_alarm(trigger));
        }
    }
    if let Some(c) = categories_from_eas(app, TASKS)? {
        t.push(c);
    }
    root.subs.retain(|s| s.kind != Kind::VTodo);
    root.subs.push(t);
    Ok(root.write())
}
