//! Tasks (MS-OXWSTASK) to and from VTODO, through ActiveSync's task
//! converter (`outpost_easconv::tasks`), as contacts go through its vCard
//! mapping ([`super::contacts`]): one reading of VTODO for both protocols.

use outpost_easconv::{EasVersion, EventOptions, IncomingOptions};
use outpost_wbxml::Element as Wbxml;
use outpost_xml::Element;

use super::items::ItemError;
use crate::soap::NS_T;

const TASKS: &str = "Tasks";
const BASE: &str = "AirSyncBase";

fn get(fields: &[Wbxml], name: &str) -> Option<String> {
    fields
        .iter()
        .find(|e| e.is(TASKS, name))
        .map(|e| e.text())
        .filter(|t| !t.trim().is_empty())
}

fn t(local: &str, text: impl Into<String>) -> Element {
    Element::new(NS_T, local).with_text(text)
}

/// `2026-12-10T00:00:00.000Z` as `2026-12-10T00:00:00Z`.
fn ews_time(v: &str) -> String {
    match v.split_once('.') {
        Some((head, _)) => format!("{head}Z"),
        None => v.to_string(),
    }
}

/// The fields of a `t:Task` after its ids, from the VTODO `ics`.
pub fn task_fields(ics: &str) -> Option<Vec<Element>> {
    let f = outpost_easconv::todo_to_eas(ics, EasVersion::V16_0, &EventOptions::default()).ok()?;
    let mut out = vec![t("ItemClass", "IPM.Task")];
    out.push(t("Subject", get(&f, "Subject").unwrap_or_default()));
    out.push(t(
        "Sensitivity",
        match get(&f, "Sensitivity").as_deref() {
            Some("1") => "Personal",
            Some("2") => "Private",
            Some("3") => "Confidential",
            _ => "Normal",
        },
    ));
    if let Some(b) = f.iter().find(|e| e.is(BASE, "Body")) {
        let data = b.child(BASE, "Data").map(|d| d.text()).unwrap_or_default();
        out.push(
            Element::new(NS_T, "Body")
                .with_attr("BodyType", "Text")
                .with_text(data),
        );
    }
    if let Some(c) = f.iter().find(|e| e.is(TASKS, "Categories")) {
        let mut cats = Element::new(NS_T, "Categories");
        for x in c.elements() {
            cats.push(t("String", x.text()));
        }
        out.push(cats);
    }
    out.push(t(
        "Importance",
        match get(&f, "Importance").as_deref() {
            Some("0") => "Low",
            Some("2") => "High",
            _ => "Normal",
        },
    ));
    let reminder = get(&f, "ReminderSet").as_deref() == Some("1");
    if let Some(r) = get(&f, "ReminderTime") {
        out.push(t("ReminderDueBy", ews_time(&r)));
    }
    out.push(t("ReminderIsSet", if reminder { "true" } else { "false" }));
    let done = get(&f, "Complete").as_deref() == Some("1");
    if let Some(d) = get(&f, "DateCompleted") {
        out.push(t("CompleteDate", ews_time(&d)));
    }
    if let Some(d) = get(&f, "UtcDueDate") {
        out.push(t("DueDate", ews_time(&d)));
    }
    out.push(t("IsComplete", if done { "true" } else { "false" }));
    out.push(t(
        "IsRecurring",
        if f.iter().any(|e| e.is(TASKS, "Recurrence")) {
            "true"
        } else {
            "false"
        },
    ));
    out.push(t("PercentComplete", if done { "100" } else { "0" }));
    if let Some(d) = get(&f, "UtcStartDate") {
        out.push(t("StartDate", ews_time(&d)));
    }
    out.push(t("Status", if done { "Completed" } else { "NotStarted" }));
    Some(out)
}

/// The ActiveSync Tasks fields of a `t:Task`.
fn eas_fields(task: &Element) -> Result<Vec<Wbxml>, ItemError> {
    let mut out = Vec::new();
    let field = |name: &str, v: &str| Wbxml::named(TASKS, name).with_text(v.trim());
    let time = |v: &str| -> Result<String, ItemError> {
        let v = v.trim();
        let t = chrono::DateTime::parse_from_rfc3339(v)
            .map(|t| t.with_timezone(&chrono::Utc))
            .or_else(|_| {
                chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S%.f")
                    .map(|t| t.and_utc())
            })
            .map_err(|_| {
                ItemError::new(
                    "ErrorInvalidPropertySet",
                    format!("{v:?} is not an xs:dateTime."),
                )
            })?;
        Ok(t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
    };
    let mut done = None;
    for f in &task.children {
        let text = f.text.trim();
        match f.name.local.as_str() {
            "Subject" => out.push(field("Subject", &f.text)),
            "Body" => out.push(
                Wbxml::named(BASE, "Body")
                    .with(Wbxml::named(BASE, "Type").with_text("1"))
                    .with(
                        Wbxml::named(BASE, "Data").with_text(
                            if f.attr("BodyType")
                                .is_some_and(|b| b.eq_ignore_ascii_case("HTML"))
                            {
                                outpost_easconv::calendar::strip_html(&f.text)
                            } else {
                                f.text.clone()
                            },
                        ),
                    ),
            ),
            "Importance" => out.push(field(
                "Importance",
                match text {
                    "Low" => "0",
                    "High" => "2",
                    _ => "1",
                },
            )),
            "Sensitivity" => out.push(field(
                "Sensitivity",
                match text {
                    "Personal" => "1",
                    "Private" => "2",
                    "Confidential" => "3",
                    _ => "0",
                },
            )),
            "Categories" => {
                let mut c = Wbxml::named(TASKS, "Categories");
                for s in &f.children {
                    c = c.with(Wbxml::named(TASKS, "Category").with_text(s.text.trim()));
                }
                out.push(c);
            }
            "ReminderIsSet" => out.push(field(
                "ReminderSet",
                if text == "true" || text == "1" {
                    "1"
                } else {
                    "0"
                },
            )),
            "ReminderDueBy" => out.push(field("ReminderTime", &time(text)?)),
            "DueDate" => {
                let v = time(text)?;
                out.push(field("UtcDueDate", &v));
                out.push(field("DueDate", &v));
            }
            "StartDate" => {
                let v = time(text)?;
                out.push(field("UtcStartDate", &v));
                out.push(field("StartDate", &v));
            }
            "CompleteDate" => out.push(field("DateCompleted", &time(text)?)),
            "IsComplete" => done = Some(text == "true" || text == "1"),
            "Status" => done = Some(text == "Completed"),
            "PercentComplete" if done.is_none() => {
                done = Some(text.parse::<f64>().is_ok_and(|p| p >= 100.0))
            }
            _ => {}
        }
    }
    if let Some(d) = done {
        out.push(field("Complete", if d { "1" } else { "0" }));
    }
    Ok(out)
}

/// The VTODO (a whole VCALENDAR) of a `t:Task`, a new one or `existing`
/// with the fields the task carries replaced.
pub fn todo_of(task: &Element, existing: Option<&str>, uid: &str) -> Result<String, ItemError> {
    let mut fields = match existing {
        Some(x) => outpost_easconv::todo_to_eas(x, EasVersion::V16_0, &EventOptions::default())
            .unwrap_or_default(),
        None => Vec::new(),
    };
    super::contacts::merge(&mut fields, eas_fields(task)?);
    let mut app = Wbxml::named("AirSync", "ApplicationData");
    app.children = fields
        .into_iter()
        .map(outpost_wbxml::Node::Element)
        .collect();
    let opts = IncomingOptions {
        new_uid: uid.to_string(),
        now: chrono::Utc::now(),
    };
    outpost_easconv::eas_to_todo(&app, existing, EasVersion::V16_0, &opts).map_err(|e| {
        ItemError::new(
            "ErrorInvalidPropertySet",
            format!("The task cannot be written: {e}"),
        )
    })
}

/// `existing` without the field a DeleteItemField names.
pub fn todo_without(existing: &str, uri: &str) -> Result<String, ItemError> {
    let gone: &[(&str, &str)] = match uri {
        "item:Body" => &[(BASE, "Body")],
        "item:Categories" => &[(TASKS, "Categories")],
        "item:ReminderDueBy" | "item:ReminderIsSet" => {
            &[(TASKS, "ReminderTime"), (TASKS, "ReminderSet")]
        }
        "task:DueDate" => &[(TASKS, "DueDate"), (TASKS, "UtcDueDate")],
        "task:StartDate" => &[(TASKS, "StartDate"), (TASKS, "UtcStartDate")],
        "task:CompleteDate" => &[(TASKS, "DateCompleted")],
        _ => {
            return Err(ItemError::new(
                "ErrorInvalidPropertyDelete",
                format!("The field {uri} cannot be deleted from a task here."),
            ))
        }
    };
    let mut fields =
        outpost_easconv::todo_to_eas(existing, EasVersion::V16_0, &EventOptions::default())
            .unwrap_or_default();
    fields.retain(|f| !gone.iter().any(|(page, name)| f.is(page, name)));
    let mut app = Wbxml::named("AirSync", "ApplicationData");
    app.children = fields
        .into_iter()
        .map(outpost_wbxml::Node::Element)
        .collect();
    let opts = IncomingOptions {
        new_uid: String::new(),
        now: chrono::Utc::now(),
    };
    outpost_easconv::eas_to_todo(&app, Some(existing), EasVersion::V16_0, &opts).map_err(|e| {
        ItemError::new(
            "ErrorInvalidPropertySet",
            format!("The task cannot be written: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_round_trip_through_the_activesync_fields() {
        let task = outpost_xml::parse(
            format!(
                r#"<t:Task xmlns:t="{NS_T}"><t:Subject>File taxes</t:Subject><t:Importance>High</t:Importance>
                <t:DueDate>2026-12-10T00:00:00Z</t:DueDate><t:Status>NotStarted</t:Status></t:Task>"#
            )
            .as_bytes(),
            &Default::default(),
        )
        .unwrap();
        let ics = todo_of(&task, None, "task-1").unwrap();
        assert!(
            ics.contains("SUMMARY:File taxes") && ics.contains("DUE"),
            "{ics}"
        );
        let mut all = Element::new(NS_T, "Task");
        all.children = task_fields(&ics).unwrap();
        let xml = outpost_xml::write(&all, &[(NS_T, "t")]);
        for want in [
            "<t:Subject>File taxes</t:Subject>",
            "<t:Importance>High</t:Importance>",
            "<t:DueDate>2026-12-10T00:00:00Z</t:DueDate>",
            "<t:Status>NotStarted</t:Status>",
        ] {
            assert!(xml.contains(want), "{want} in {xml}");
        }
        let done = outpost_xml::parse(
            format!(r#"<t:Task xmlns:t="{NS_T}"><t:Status>Completed</t:Status></t:Task>"#)
                .as_bytes(),
            &Default::default(),
        )
        .unwrap();
        let no_due = todo_without(&ics, "task:DueDate").unwrap();
        assert!(!no_due.contains("DUE"), "{no_due}");
        assert!(todo_without(&ics, "task:Owner").is_err());
        let ics = todo_of(&done, Some(&ics), "task-1").unwrap();
        assert!(
            ics.contains("STATUS:COMPLETED") || ics.contains("COMPLETED:"),
            "{ics}"
        );
    }
}
