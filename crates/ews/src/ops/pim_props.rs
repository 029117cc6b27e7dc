//! MAPI (extended) properties of calendar items, tasks and contacts, as
//! DavMail reads, searches, sorts by and writes them: it keeps the
//! WebDAV-era Exchange model, where an event has a resource name
//! (PR_URL_COMP_NAME, `0x10f3`), its last-modification time is its ETag
//! (`0x3008`), and recurring masters are found by
//! `urn:schemas:calendar:instancetype` or PidLidRecurring.
//!
//! Values come from the item element the class already wrote (subject,
//! body, categories, item type...) and from what the store keeps beside
//! the object ([`Facts`]: name, times, item number), so a property always
//! says what the EWS field of the same meaning says. Writes name the
//! fields of the same meaning ([`Write`]); the properties that follow
//! from the object itself (PidLidAppointmentStateFlags, the message
//! class) are accepted and not kept.

use outpost_xml::Element;

use super::items::ItemError;
use super::props::{self, ExtValue};
use crate::soap::NS_T;

/// What the store keeps beside one object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// Its resource name.
    pub name: String,
    pub uid: String,
    /// Unix seconds.
    pub created: i64,
    pub modified: i64,
    /// Its item number in the collection.
    pub item: i64,
    /// Its `ItemId`.
    pub id: String,
    /// The X- properties of its main component that MAPI names map to
    /// ([`X_PROPS`]), with their values.
    pub x: Vec<(String, String)>,
}

/// Named properties of the PublicStrings set that are X- properties of
/// the VEVENT (Thunderbird's alarm state, as DavMail keeps it).
pub const X_PROPS: &[(&str, &str)] = &[
    ("PublicStrings/xmozlastack", "X-MOZ-LASTACK"),
    ("PublicStrings/xmozsnoozetime", "X-MOZ-SNOOZE-TIME"),
    (
        "PublicStrings/xmozsendinvitations",
        "X-MOZ-SEND-INVITATIONS",
    ),
];

/// Every property answered here, by [`props::key`].
const KNOWN: &[&str] = &[
    "0x10f3",
    "0x3008",
    "0x3007",
    "0x0e23",
    "0x670e",
    "0x0ff9",
    "0x001a",
    "0x0037",
    "0x3001",
    "0x1000",
    "PublicStrings/keywords",
    "PublicStrings/urn:schemas:calendar:uid",
    "PublicStrings/urn:schemas:calendar:instancetype",
    "Appointment/0x8223",
    "Appointment/0x8217",
    "Task/0x8104",
    "Task/0x8105",
    "Task/0x810f",
    "Task/0x8516",
    "Task/0x8517",
    "PublicStrings/xmozlastack",
    "PublicStrings/xmozsnoozetime",
    "PublicStrings/xmozsendinvitations",
];

/// Whether restriction field `field` (`ext:KEY`) is one answered here.
pub fn known_field(field: &str) -> bool {
    field
        .strip_prefix("ext:")
        .is_some_and(|k| KNOWN.contains(&k))
}

fn child_text<'a>(el: &'a Element, local: &str) -> Option<&'a str> {
    el.child(NS_T, local)
        .map(|c| c.text.as_str())
        .filter(|t| !t.trim().is_empty())
}

/// The value of property `key` of the object written as `el`.
pub fn value(key: &str, el: &Element, f: &Facts) -> Option<ExtValue> {
    let one = |s: &str| Some(ExtValue::One(s.to_string()));
    match key {
        "0x10f3" => one(&f.name),
        "0x3008" => one(&super::oof::utc(f.modified)),
        "0x3007" => one(&super::oof::utc(f.created)),
        "0x0e23" => one(&f.item.to_string()),
        "0x670e" | "0x0ff9" => one(&f.id),
        "0x001a" => one(child_text(el, "ItemClass")?),
        "0x0037" => one(child_text(el, "Subject")?),
        "0x3001" => one(child_text(el, "DisplayName").or_else(|| child_text(el, "Subject"))?),
        "0x1000" => one(child_text(el, "Body")?),
        "PublicStrings/keywords" => {
            let cats: Vec<String> = el
                .child(NS_T, "Categories")?
                .children
                .iter()
                .map(|c| c.text.clone())
                .collect();
            (!cats.is_empty()).then_some(ExtValue::Many(cats))
        }
        "PublicStrings/urn:schemas:calendar:uid" => (!f.uid.is_empty()).then(|| one(&f.uid))?,
        // CdoInstanceType: single, master, instance, exception.
        "PublicStrings/urn:schemas:calendar:instancetype" => {
            one(match child_text(el, "CalendarItemType")? {
                "Single" => "0",
                "RecurringMaster" => "1",
                "Occurrence" => "2",
                "Exception" => "3",
                _ => return None,
            })
        }
        "Appointment/0x8223" => one(child_text(el, "IsRecurring")?),
        "Appointment/0x8217" => one(child_text(el, "AppointmentState")?),
        "Task/0x8104" | "Task/0x8516" => one(child_text(el, "StartDate")?),
        "Task/0x8105" | "Task/0x8517" => one(child_text(el, "DueDate")?),
        "Task/0x810f" => one(child_text(el, "CompleteDate")?),
        k => {
            let (_, prop) = X_PROPS.iter().find(|(m, _)| *m == k)?;
            let (_, v) = f.x.iter().find(|(n, _)| n == prop)?;
            one(v)
        }
    }
}

/// The value a restriction or sort order reads for field `ext:KEY`.
pub fn field(field: &str, el: &Element, f: &Facts) -> Option<String> {
    value(field.strip_prefix("ext:")?, el, f).map(ExtValue::joined)
}

/// ItemType's elements before `ExtendedProperty`, in the schema's order.
const BEFORE_EXTENDED: &[&str] = &[
    "MimeContent",
    "ItemId",
    "ParentFolderId",
    "ItemClass",
    "Subject",
    "Sensitivity",
    "Body",
    "Attachments",
    "DateTimeReceived",
    "Size",
    "Categories",
    "Importance",
    "InReplyTo",
    "IsSubmitted",
    "IsDraft",
    "IsFromMe",
    "IsResend",
    "IsUnmodified",
    "InternetMessageHeaders",
    "DateTimeSent",
    "DateTimeCreated",
    "ResponseObjects",
    "ReminderDueBy",
    "ReminderIsSet",
    "ReminderNextTime",
    "ReminderMinutesBeforeStart",
    "DisplayCc",
    "DisplayTo",
    "HasAttachments",
];

/// Adds the answers for the properties `shape` asks for to the item
/// element `el`, where the schema puts them.
pub fn answer(el: &mut Element, shape: Option<&Element>, f: &Facts) {
    let found: Vec<Element> = props::requested(shape)
        .into_iter()
        .filter_map(|uri| {
            let v = value(&props::key(uri)?, el, f)?;
            Some(props::answer_value(uri, v))
        })
        .collect();
    if found.is_empty() {
        return;
    }
    let at = el
        .children
        .iter()
        .position(|c| !BEFORE_EXTENDED.contains(&c.name.local.as_str()))
        .unwrap_or(el.children.len());
    el.children.splice(at..at, found);
}

/// What the `t:ExtendedProperty` elements of a written item, or the
/// extended fields an UpdateItem deletes, ask for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Write {
    /// The resource name of a new object.
    pub name: Option<String>,
    /// `Some(None)`: removed.
    pub subject: Option<Option<String>>,
    pub body: Option<Option<String>>,
    pub categories: Option<Vec<String>>,
    pub uid: Option<String>,
    /// X- properties set (`Some`) or removed.
    pub x: Vec<(String, Option<String>)>,
}

fn bad(text: impl Into<String>) -> ItemError {
    ItemError::new("ErrorInvalidPropertySet", text)
}

impl Write {
    /// One property set: its `ExtendedFieldURI` key and its values.
    fn set(&mut self, key: &str, values: Vec<String>) -> Result<(), ItemError> {
        let first = || values.first().cloned().unwrap_or_default();
        match key {
            "0x10f3" => self.name = Some(first()),
            "0x0037" => self.subject = Some(Some(first())),
            "0x1000" => self.body = Some(Some(first())),
            "PublicStrings/keywords" => {
                self.categories = Some(
                    values
                        .iter()
                        .map(|v| v.trim().to_string())
                        .filter(|v| !v.is_empty())
                        .take(outpost_easconv::MAX_CATEGORIES)
                        .collect(),
                )
            }
            "PublicStrings/urn:schemas:calendar:uid" => {
                let uid = first();
                if uid.trim().is_empty() || uid.len() > 255 {
                    return Err(bad("The calendar UID is empty or too long."));
                }
                self.uid = Some(uid)
            }
            // They follow from the object (its attendees, its class).
            "Appointment/0x8217" | "0x001a" => {}
            k => match X_PROPS.iter().find(|(m, _)| *m == k) {
                Some((_, prop)) => self.x.push((prop.to_string(), Some(first()))),
                None => {
                    return Err(bad(format!(
                        "The extended property {k} is not kept for these items."
                    )))
                }
            },
        }
        Ok(())
    }

    /// The `t:ExtendedProperty` children of `item`.
    pub fn read(item: &Element) -> Result<Write, ItemError> {
        let mut w = Write::default();
        w.merge(item)?;
        Ok(w)
    }

    /// Adds the `t:ExtendedProperty` children of `item`.
    pub fn merge(&mut self, item: &Element) -> Result<(), ItemError> {
        for p in item
            .children
            .iter()
            .filter(|c| c.is(NS_T, "ExtendedProperty"))
        {
            let key = p
                .child(NS_T, "ExtendedFieldURI")
                .and_then(props::key)
                .ok_or_else(|| bad("An ExtendedProperty names no property."))?;
            let values: Vec<String> = match p.child(NS_T, "Values") {
                Some(vs) => vs.children.iter().map(|v| v.text.clone()).collect(),
                None => vec![p
                    .child(NS_T, "Value")
                    .map(|v| v.text.clone())
                    .unwrap_or_default()],
            };
            self.set(&key, values)?;
        }
        Ok(())
    }

    /// A `DeleteItemField` of the property `uri`.
    pub fn delete(&mut self, uri: &Element) -> Result<(), ItemError> {
        let key = props::key(uri).ok_or_else(|| bad("The field names no property."))?;
        match key.as_str() {
            "0x0037" => self.subject = Some(None),
            "0x1000" => self.body = Some(None),
            "PublicStrings/keywords" => self.categories = Some(Vec::new()),
            "Appointment/0x8217" | "0x001a" => {}
            k => match X_PROPS.iter().find(|(m, _)| *m == k) {
                Some((_, prop)) => self.x.push((prop.to_string(), None)),
                None => return Err(bad(format!("The property {k} cannot be deleted here."))),
            },
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::calendar::tests::el;
    use super::*;

    #[test]
    fn values_follow_the_item_and_the_store() {
        let item = el("<t:ItemId Id=\"x\"/><t:ItemClass>IPM.Appointment</t:ItemClass>\
             <t:Subject>Lunch</t:Subject><t:Body BodyType=\"Text\"></t:Body>\
             <t:Categories><t:String>A</t:String><t:String>B</t:String></t:Categories>\
             <t:IsRecurring>true</t:IsRecurring><t:CalendarItemType>RecurringMaster</t:CalendarItemType>");
        let f = Facts {
            name: "lunch.ics".into(),
            uid: "u1".into(),
            created: 0,
            modified: 86_400,
            item: 7,
            id: "x".into(),
            x: vec![("X-MOZ-LASTACK".into(), "20300101T000000Z".into())],
        };
        let v = |k: &str| value(k, &item, &f);
        assert_eq!(v("0x10f3"), Some(ExtValue::One("lunch.ics".into())));
        assert_eq!(
            v("0x3008"),
            Some(ExtValue::One("1970-01-02T00:00:00Z".into()))
        );
        assert_eq!(v("0x0e23"), Some(ExtValue::One("7".into())));
        assert_eq!(v("0x1000"), None, "an empty body is no description");
        assert_eq!(
            v("PublicStrings/keywords"),
            Some(ExtValue::Many(vec!["A".into(), "B".into()]))
        );
        assert_eq!(
            v("PublicStrings/urn:schemas:calendar:instancetype"),
            Some(ExtValue::One("1".into()))
        );
        assert_eq!(v("Appointment/0x8223"), Some(ExtValue::One("true".into())));
        assert_eq!(
            v("PublicStrings/xmozlastack"),
            Some(ExtValue::One("20300101T000000Z".into()))
        );
        assert_eq!(v("0x9999"), None);
        assert!(known_field("ext:0x10f3") && !known_field("ext:0x9999"));

        let mut shaped = item.clone();
        let shape = outpost_xml::parse(
            format!(
                r#"<m:ItemShape xmlns:m="m" xmlns:t="{NS_T}"><t:AdditionalProperties><t:ExtendedFieldURI PropertyTag="0x10f3" PropertyType="String"/><t:ExtendedFieldURI PropertyTag="0x4242" PropertyType="String"/></t:AdditionalProperties></m:ItemShape>"#
            )
            .as_bytes(),
            &Default::default(),
        )
        .unwrap();
        answer(&mut shaped, Some(&shape), &f);
        let names: Vec<&str> = shaped
            .children
            .iter()
            .map(|c| c.name.local.as_str())
            .collect();
        // After Categories, before the calendar fields; the unknown one left out.
        assert_eq!(
            names,
            [
                "ItemId",
                "ItemClass",
                "Subject",
                "Body",
                "Categories",
                "ExtendedProperty",
                "IsRecurring",
                "CalendarItemType"
            ]
        );
    }

    #[test]
    fn writes_name_fields_or_are_refused() {
        let w = Write::read(&el(r#"<t:ExtendedProperty><t:ExtendedFieldURI PropertyTag="0x10f3" PropertyType="String"/><t:Value>a b.ics</t:Value></t:ExtendedProperty><t:ExtendedProperty><t:ExtendedFieldURI DistinguishedPropertySetId="Appointment" PropertyId="33303" PropertyType="Integer"/><t:Value>1</t:Value></t:ExtendedProperty><t:ExtendedProperty><t:ExtendedFieldURI DistinguishedPropertySetId="PublicStrings" PropertyName="Keywords" PropertyType="StringArray"/><t:Values><t:Value>Work</t:Value><t:Value> </t:Value></t:Values></t:ExtendedProperty><t:ExtendedProperty><t:ExtendedFieldURI DistinguishedPropertySetId="PublicStrings" PropertyName="xmozsnoozetime" PropertyType="String"/><t:Value>20300101T000000Z</t:Value></t:ExtendedProperty>"#)).unwrap();
        assert_eq!(w.name.as_deref(), Some("a b.ics"));
        assert_eq!(w.categories, Some(vec!["Work".to_string()]));
        assert_eq!(
            w.x,
            vec![(
                "X-MOZ-SNOOZE-TIME".to_string(),
                Some("20300101T000000Z".to_string())
            )]
        );
        let e = Write::read(&el(r#"<t:ExtendedProperty><t:ExtendedFieldURI PropertyTag="0x4242" PropertyType="String"/><t:Value>x</t:Value></t:ExtendedProperty>"#)).unwrap_err();
        assert_eq!(e.code, "ErrorInvalidPropertySet");
    }
}
