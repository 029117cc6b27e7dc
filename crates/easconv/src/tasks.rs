//! VTODO <-> Tasks ApplicationData (MS-ASTASK).

use crate::calendar::{
    body_element, body_text, el, parse_eas_time, parse_when, recurrence_from_eas,
    recurrence_to_eas, text_of, to_utc, EventOptions, IncomingOptions,
};
use crate::ical::{self, escape, Component, Prop};
use crate::{EasVersion, Error, Result, MAX_CATEGORIES, MAX_FIELD};
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
    let root = ical::parse(text)?;
    if root.name != "VCALENDAR" {
        return Err(Error::Invalid("not a VCALENDAR".into()));
    }
    let todo = root
        .subs
        .iter()
        .find(|s| s.name == "VTODO" && s.prop("RECURRENCE-ID").is_none())
        .cloned()
        .ok_or_else(|| Error::Invalid("no VTODO".into()))?;
    Ok((root, todo))
}

/// The ApplicationData children of a Tasks item for a VTODO.
pub fn todo_to_eas(text: &str, _version: EasVersion, opts: &EventOptions) -> Result<Vec<Element>> {
    let (_, t) = find_todo(text)?;
    let tz = opts.default_tz;
    let mut out = Vec::new();
    if let Some(d) = t.prop("DESCRIPTION") {
        out.push(body_element(&d.text(), opts));
    }
    let done = t
        .prop("STATUS")
        .is_some_and(|s| s.value.eq_ignore_ascii_case("COMPLETED"))
        || t.prop("COMPLETED").is_some();
    out.push(el(TASKS, "Complete", if done { "1" } else { "0" }));
    if done {
        let when = t
            .prop("COMPLETED")
            .map(parse_when)
            .transpose()?
            .map(|w| to_utc(w, tz));
        if let Some(w) = when {
            out.push(el(TASKS, "DateCompleted", long(w)));
        }
    }
    let due = t
        .prop("DUE")
        .map(parse_when)
        .transpose()?
        .map(|w| to_utc(w, tz));
    if let Some(d) = due {
        out.push(el(TASKS, "DueDate", local_long(d, tz)));
        out.push(el(TASKS, "UtcDueDate", long(d)));
    }
    let imp = match t
        .prop("PRIORITY")
        .and_then(|p| p.value.trim().parse::<u8>().ok())
    {
        Some(1..=4) => "2",
        Some(6..=9) => "0",
        _ => "1",
    };
    out.push(el(TASKS, "Importance", imp));
    let start = t
        .prop("DTSTART")
        .map(parse_when)
        .transpose()?
        .map(|w| to_utc(w, tz));
    if let Some(r) = t.prop("RRULE") {
        let s = start
            .or(due)
            .ok_or_else(|| Error::Invalid("recurring VTODO without a date".into()))?;
        let cal = recurrence_to_eas(&r.value, s.with_timezone(&tz).naive_local(), tz)?;
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
        .find(|s| s.name == "VALARM")
        .and_then(|a| a.prop("TRIGGER"));
    let reminder = match alarm {
        Some(p)
            if p.param("VALUE")
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
    if let Some(s) = t.prop("SUMMARY") {
        out.push(el(TASKS, "Subject", s.text()));
    }
    out.extend(crate::calendar::categories_to_eas(&t, TASKS)?);
    Ok(out)
}

const CARRIED: &[&str] = &[
    "SUMMARY",
    "DESCRIPTION",
    "STATUS",
    "COMPLETED",
    "PERCENT-COMPLETE",
    "DUE",
    "DTSTART",
    "PRIORITY",
    "CLASS",
    "CATEGORIES",
    "RRULE",
    "DTSTAMP",
];

fn utc_prop(name: &str, t: DateTime<Utc>) -> Prop {
    Prop::new(name, crate::calendar::compact(t))
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
            let mut root = Component::new("VCALENDAR");
            root.props.push(Prop::new("VERSION", "2.0"));
            root.props
                .push(Prop::new("PRODID", "-//Outpost//ActiveSync//EN"));
            let mut t = Component::new("VTODO");
            t.props.push(Prop::new("UID", escape(&opts.new_uid)));
            (root, t)
        }
    };
    t.props.retain(|p| !CARRIED.contains(&p.name.as_str()));
    t.props.push(utc_prop("DTSTAMP", opts.now));
    let time = |name: &str| -> Result<Option<DateTime<Utc>>> {
        app.child(TASKS, name)
            .map(|e| parse_eas_time(&e.text()))
            .transpose()
    };
    if let Some(s) = app.child(TASKS, "Subject") {
        t.props.push(Prop::new(
            "SUMMARY",
            escape(&text_of(s, MAX_FIELD, "subject")?),
        ));
    }
    if let Some(b) = body_text(app)?.filter(|b| !b.is_empty()) {
        t.props.push(Prop::new("DESCRIPTION", escape(&b)));
    }
    let start = time("UtcStartDate")?.or(time("StartDate")?);
    let due = time("UtcDueDate")?.or(time("DueDate")?);
    if let (Some(s), Some(d)) = (start, due) {
        if d < s {
            return Err(Error::Invalid("due before start".into()));
        }
    }
    if let Some(s) = start {
        t.props.push(utc_prop("DTSTART", s));
    }
    if let Some(d) = due {
        t.props.push(utc_prop("DUE", d));
    }
    if app
        .child(TASKS, "Complete")
        .is_some_and(|c| c.text().trim() == "1")
    {
        t.props.push(Prop::new("STATUS", "COMPLETED"));
        t.props.push(Prop::new("PERCENT-COMPLETE", "100"));
        t.props.push(utc_prop(
            "COMPLETED",
            time("DateCompleted")?.unwrap_or(opts.now),
        ));
    } else {
        t.props.push(Prop::new("STATUS", "NEEDS-ACTION"));
    }
    let pri = match app
        .child(TASKS, "Importance")
        .map(|e| e.text())
        .as_deref()
        .map(str::trim)
    {
        Some("2") => Some("1"),
        Some("0") => Some("9"),
        Some("1") | None => None,
        Some(_) => return Err(Error::Invalid("bad Importance".into())),
    };
    if let Some(p) = pri {
        t.props.push(Prop::new("PRIORITY", p));
    } else if app.child(TASKS, "Importance").is_some() {
        t.props.push(Prop::new("PRIORITY", "5"));
    }
    if let Some(s) = app.child(TASKS, "Sensitivity") {
        let c = match s.text().trim() {
            "2" => "PRIVATE",
            "3" => "CONFIDENTIAL",
            _ => "PUBLIC",
        };
        t.props.push(Prop::new("CLASS", c));
    }
    if let Some(r) = app.child(TASKS, "Recurrence") {
        let cal = retag(r, "Calendar").ok_or_else(|| Error::Invalid("bad Recurrence".into()))?;
        t.props.push(Prop::new("RRULE", recurrence_from_eas(&cal)?));
        if start.is_none() && due.is_none() {
            return Err(Error::Invalid("recurring task without a date".into()));
        }
    }
    if let Some(rs) = app.child(TASKS, "ReminderSet") {
        t.subs.retain(|s| s.name != "VALARM");
        if rs.text().trim() == "1" {
            let when = time("ReminderTime")?
                .ok_or_else(|| Error::Invalid("ReminderSet without ReminderTime".into()))?;
            let mut a = Component::new("VALARM");
            a.props.push(Prop::new("ACTION", "DISPLAY"));
            a.props.push(Prop::new("DESCRIPTION", "Reminder"));
            a.props
                .push(utc_prop("TRIGGER", when).with_param("VALUE", "DATE-TIME"));
            t.subs.push(a);
        }
    }
    if let Some(c) = app.child(TASKS, "Categories") {
        let cats: Vec<String> = c
            .elements()
            .filter(|e| e.is(TASKS, "Category"))
            .map(|e| text_of(e, MAX_FIELD, "category").map(|s| escape(&s)))
            .collect::<Result<_>>()?;
        if cats.len() > MAX_CATEGORIES {
            return Err(Error::TooLarge("categories"));
        }
        if !cats.is_empty() {
            t.props.push(Prop::new("CATEGORIES", cats.join(",")));
        }
    }
    root.subs.retain(|s| s.name != "VTODO");
    root.subs.push(t);
    let mut out = String::new();
    root.write(&mut out);
    Ok(out)
}
