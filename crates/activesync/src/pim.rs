//! Calendar, Contacts and Tasks items in Sync (MS-ASCAL, MS-ASCNTC,
//! MS-ASTASK): the stored iCalendar/vCard objects converted by
//! `outpost_easconv` to ApplicationData and back. The sync state, the
//! window and the journal are those of Email ([`crate::sync`]); what
//! differs is what an item's data is and what the device's Add, Change
//! and Delete do: they write the calendar or address book as a DAV
//! client's PUT and DELETE would (same ingest, quota, scheduling, journal).

use chrono::Utc;
use outpost_easconv::{EasVersion, EventOptions, IncomingOptions};
use outpost_wbxml::Element;

use crate::email::BodyPreference;
use crate::folders::Class;
use crate::sync::Caller;
use crate::{BackendError, EasBackend, PimRefused, Slot};

fn version(who: &Caller<'_>) -> EasVersion {
    if who.is16 {
        EasVersion::V16_1
    } else {
        EasVersion::V14_1
    }
}

fn zone(name: Option<&str>) -> chrono_tz::Tz {
    name.and_then(|n| n.parse().ok())
        .unwrap_or(chrono_tz::Tz::UTC)
}

/// The ApplicationData of a calendar object or contact; `None` when it
/// went away, or when the stored object cannot be converted (logged: one
/// bad object must not stop a device's sync).
pub async fn data(
    b: &dyn EasBackend,
    who: &Caller<'_>,
    collection: i64,
    class: Class,
    item: i64,
    prefs: &[BodyPreference],
) -> Result<Option<Element>, BackendError> {
    let Some(obj) = b.pim_data(who.principal, collection, item).await? else {
        return Ok(None);
    };
    let pref = prefs.iter().find(|p| matches!(p.body_type, 1 | 2));
    let opts = EventOptions {
        default_tz: zone(obj.tz.as_deref()),
        body_type: pref.map_or(1, |p| p.body_type),
        truncation: pref.and_then(|p| p.truncation_size).map(|t| t as usize),
        own_addresses: who.addresses(b).await?.to_vec(),
    };
    let v = version(who);
    let converted = match class {
        Class::Calendar => outpost_easconv::event_to_eas(&obj.data, v, &opts),
        Class::Tasks => outpost_easconv::todo_to_eas(&obj.data, v, &opts),
        Class::Contacts => outpost_easconv::vcard_to_eas(&obj.data, v, &opts),
        Class::Email => return Ok(None),
    };
    match converted {
        Ok(children) => {
            let mut el = Element::named("AirSync", "ApplicationData");
            for c in children {
                el = el.with(c);
            }
            Ok(Some(el))
        }
        Err(e) => {
            tracing::warn!(collection, item, "activesync: object not converted: {e}");
            Ok(None)
        }
    }
}

/// A Sync status for a refused write (MS-ASCMD 2.2.3.177.17).
pub fn refusal_status(r: PimRefused) -> u32 {
    match r {
        PimRefused::Invalid => 6,
        PimRefused::Conflict => 7,
        PimRefused::NotFound => 8,
        PimRefused::Full => 9,
    }
}

fn new_uid() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The object the device's ApplicationData makes, merged into `existing`
/// on a Change; `Err(status)` when it cannot be converted.
fn convert(
    class: Class,
    app: &Element,
    existing: Option<&str>,
    v: EasVersion,
) -> Result<String, u32> {
    let opts = IncomingOptions {
        new_uid: new_uid(),
        now: Utc::now(),
    };
    let r = match class {
        Class::Calendar => outpost_easconv::eas_to_event(app, existing, v, &opts),
        Class::Tasks => outpost_easconv::eas_to_todo(app, existing, v, &opts),
        Class::Contacts => outpost_easconv::eas_to_vcard(app, existing, v, &opts.new_uid),
        Class::Email => return Err(6),
    };
    r.map_err(|e| {
        tracing::info!("activesync: item from the device not converted: {e}");
        6
    })
}

/// The device's Add: (item, modseq) of the new object, or a status.
pub async fn add(
    b: &dyn EasBackend,
    who: &Caller<'_>,
    collection: i64,
    class: Class,
    app: Option<&Element>,
) -> Result<Result<(i64, i64), u32>, BackendError> {
    let Some(app) = app else { return Ok(Err(6)) };
    let text = match convert(class, app, None, version(who)) {
        Ok(t) => t,
        Err(s) => return Ok(Err(s)),
    };
    Ok(b.pim_put(who.principal, collection, Slot::New(None), &text)
        .await?
        .map_err(refusal_status))
}

/// The device's Change of `item`: its new modseq, or a status.
pub async fn change(
    b: &dyn EasBackend,
    who: &Caller<'_>,
    collection: i64,
    class: Class,
    item: i64,
    app: Option<&Element>,
) -> Result<Result<i64, u32>, BackendError> {
    let Some(existing) = b.pim_data(who.principal, collection, item).await? else {
        return Ok(Err(8));
    };
    let Some(app) = app else { return Ok(Ok(0)) };
    let text = match convert(class, app, Some(&existing.data), version(who)) {
        Ok(t) => t,
        Err(s) => return Ok(Err(s)),
    };
    Ok(
        b.pim_put(who.principal, collection, Slot::Item(item), &text)
            .await?
            .map(|(_, modseq)| modseq)
            .map_err(refusal_status),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(refusal_status(PimRefused::Invalid), 6);
        assert_eq!(refusal_status(PimRefused::Conflict), 7);
        assert_eq!(refusal_status(PimRefused::NotFound), 8);
        assert_eq!(refusal_status(PimRefused::Full), 9);
    }

    #[test]
    fn a_device_contact_becomes_a_vcard() {
        let app = Element::named("AirSync", "ApplicationData")
            .with(Element::named("Contacts", "FileAs").with_text("Smith, Ann"))
            .with(Element::named("Contacts", "FirstName").with_text("Ann"))
            .with(Element::named("Contacts", "LastName").with_text("Smith"))
            .with(Element::named("Contacts", "Email1Address").with_text("ann@example.test"));
        let card = convert(Class::Contacts, &app, None, EasVersion::V16_1).unwrap();
        assert!(card.contains("BEGIN:VCARD"), "{card}");
        assert!(card.contains("ann@example.test"), "{card}");
        assert_eq!(convert(Class::Email, &app, None, EasVersion::V16_1), Err(6));
    }
}
