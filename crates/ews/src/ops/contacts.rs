//! Contacts (MS-OXWSCONT) to and from vCard, through ActiveSync's contact
//! converter (`outpost_easconv::contacts`): a vCard is read into the
//! Contacts fields ActiveSync carries and those are written as EWS's, and
//! an EWS `t:Contact` becomes those fields and then a vCard, merged into
//! the stored one. One mapping of vCard for both protocols; the table
//! below only renames fields.

use outpost_easconv::{EasVersion, EventOptions};
use outpost_wbxml::Element as Wbxml;
use outpost_xml::Element;

use super::items::ItemError;
use crate::soap::NS_T;

const C: &str = "Contacts";
const C2: &str = "Contacts2";
const BASE: &str = "AirSyncBase";

/// Single-valued fields: (EAS page, EAS element, EWS element), in the
/// order of ContactItemType.
const SIMPLE: &[(&str, &str, &str)] = &[
    (C, "FileAs", "FileAs"),
    (C, "FileAs", "DisplayName"),
    (C, "FirstName", "GivenName"),
    (C, "MiddleName", "MiddleName"),
    (C2, "NickName", "Nickname"),
    (C, "CompanyName", "CompanyName"),
];

/// After the lists, in schema order.
const LATER: &[(&str, &str, &str)] = &[
    (C, "Birthday", "Birthday"),
    (C, "WebPage", "BusinessHomePage"),
    (C, "Department", "Department"),
    (C, "Suffix", "Generation"),
];

const LAST: &[(&str, &str, &str)] = &[
    (C, "JobTitle", "JobTitle"),
    (C, "LastName", "Surname"),
    (C, "Anniversary", "WeddingAnniversary"),
];

const EMAILS: &[(&str, &str, &str)] = &[
    (C, "Email1Address", "EmailAddress1"),
    (C, "Email2Address", "EmailAddress2"),
    (C, "Email3Address", "EmailAddress3"),
];

const PHONES: &[(&str, &str, &str)] = &[
    (C, "AssistantPhoneNumber", "AssistantPhone"),
    (C, "BusinessFaxNumber", "BusinessFax"),
    (C, "BusinessPhoneNumber", "BusinessPhone"),
    (C, "Business2PhoneNumber", "BusinessPhone2"),
    (C, "CarPhoneNumber", "CarPhone"),
    (C2, "CompanyMainPhone", "CompanyMainPhone"),
    (C, "HomeFaxNumber", "HomeFax"),
    (C, "HomePhoneNumber", "HomePhone"),
    (C, "Home2PhoneNumber", "HomePhone2"),
    (C, "MobilePhoneNumber", "MobilePhone"),
    (C, "PagerNumber", "Pager"),
    (C, "RadioPhoneNumber", "RadioPhone"),
];

const IMS: &[(&str, &str, &str)] = &[
    (C2, "IMAddress", "ImAddress1"),
    (C2, "IMAddress2", "ImAddress2"),
    (C2, "IMAddress3", "ImAddress3"),
];

const ADDRESS_KINDS: &[&str] = &["Business", "Home", "Other"];
/// (EAS suffix, EWS element), in the order of PhysicalAddressDictionaryEntryType.
const ADDRESS_PARTS: &[(&str, &str)] = &[
    ("Street", "Street"),
    ("City", "City"),
    ("State", "State"),
    ("Country", "CountryOrRegion"),
    ("PostalCode", "PostalCode"),
];

/// `new` over `old`: each field of `new` replaces the one of its name.
pub fn merge(old: &mut Vec<Wbxml>, new: Vec<Wbxml>) {
    for f in new {
        old.retain(|o| o.tag != f.tag);
        old.push(f);
    }
}

fn get(fields: &[Wbxml], page: &str, name: &str) -> Option<String> {
    fields
        .iter()
        .find(|e| e.is(page, name))
        .map(|e| e.text())
        .filter(|t| !t.trim().is_empty())
}

fn t(local: &str, text: impl Into<String>) -> Element {
    Element::new(NS_T, local).with_text(text)
}

/// `2000-01-01T00:00:00.000Z` (ActiveSync) as `2000-01-01T00:00:00Z`.
fn ews_date(v: &str) -> String {
    v.replace(".000Z", "Z")
}

/// The fields of a `t:Contact` after the ids, from a vCard.
pub fn contact_fields(vcard: &str) -> Option<Vec<Element>> {
    let fields =
        outpost_easconv::vcard_to_eas(vcard, EasVersion::V16_0, &EventOptions::default()).ok()?;
    let mut out = vec![t("ItemClass", "IPM.Contact")];
    let name = get(&fields, C, "FileAs").unwrap_or_default();
    out.push(t("Subject", name));
    if let Some(b) = fields.iter().find(|e| e.is(BASE, "Body")) {
        let data = b.child(BASE, "Data").map(|d| d.text()).unwrap_or_default();
        out.push(
            Element::new(NS_T, "Body")
                .with_attr("BodyType", "Text")
                .with_text(data),
        );
    }
    if let Some(c) = fields.iter().find(|e| e.is(C, "Categories")) {
        let mut cats = Element::new(NS_T, "Categories");
        for x in c.elements() {
            cats.push(t("String", x.text()));
        }
        out.push(cats);
    }
    let simple = |out: &mut Vec<Element>, table: &[(&str, &str, &str)]| {
        for (page, eas, ews) in table {
            if let Some(v) = get(&fields, page, eas) {
                out.push(t(
                    ews,
                    if ews.contains("Birthday") || ews.contains("Anniversary") {
                        ews_date(&v)
                    } else {
                        v
                    },
                ));
            }
        }
    };
    simple(&mut out, SIMPLE);
    let dict = |out: &mut Vec<Element>, list: &str, table: &[(&str, &str, &str)]| {
        let mut d = Element::new(NS_T, list);
        for (page, eas, key) in table {
            if let Some(v) = get(&fields, page, eas) {
                d.push(
                    Element::new(NS_T, "Entry")
                        .with_attr("Key", *key)
                        .with_text(v),
                );
            }
        }
        if !d.children.is_empty() {
            out.push(d);
        }
    };
    dict(&mut out, "EmailAddresses", EMAILS);
    let mut addrs = Element::new(NS_T, "PhysicalAddresses");
    for kind in ADDRESS_KINDS {
        let mut entry = Element::new(NS_T, "Entry").with_attr("Key", *kind);
        for (eas, ews) in ADDRESS_PARTS {
            if let Some(v) = get(&fields, C, &format!("{kind}Address{eas}")) {
                entry.push(t(ews, v));
            }
        }
        if !entry.children.is_empty() {
            addrs.push(entry);
        }
    }
    if !addrs.children.is_empty() {
        out.push(addrs);
    }
    dict(&mut out, "PhoneNumbers", PHONES);
    simple(&mut out, LATER);
    dict(&mut out, "ImAddresses", IMS);
    simple(&mut out, LAST);
    Some(out)
}

/// The ActiveSync fields of a `t:Contact`.
fn eas_fields(c: &Element) -> Vec<Wbxml> {
    let mut out = Vec::new();
    let field = |page: &str, name: &str, v: &str| Wbxml::named(page, name).with_text(v.trim());
    for f in &c.children {
        let local = f.name.local.as_str();
        let text = f.text.trim();
        for (page, eas, ews) in SIMPLE.iter().chain(LATER).chain(LAST) {
            // DisplayName stands in for FileAs when FileAs is not given.
            if *ews == local && !(local == "DisplayName" && c.child(NS_T, "FileAs").is_some()) {
                out.push(field(page, eas, text));
            }
        }
        match local {
            "Body" => {
                let data = if f
                    .attr("BodyType")
                    .is_some_and(|b| b.eq_ignore_ascii_case("HTML"))
                {
                    outpost_easconv::calendar::strip_html(&f.text)
                } else {
                    f.text.clone()
                };
                out.push(
                    Wbxml::named(BASE, "Body")
                        .with(Wbxml::named(BASE, "Type").with_text("1"))
                        .with(Wbxml::named(BASE, "Data").with_text(data)),
                );
            }
            "Categories" => {
                let mut cats = Wbxml::named(C, "Categories");
                for s in &f.children {
                    cats = cats.with(Wbxml::named(C, "Category").with_text(s.text.trim()));
                }
                out.push(cats);
            }
            "EmailAddresses" | "PhoneNumbers" | "ImAddresses" => {
                let table = match local {
                    "EmailAddresses" => EMAILS,
                    "PhoneNumbers" => PHONES,
                    _ => IMS,
                };
                for e in &f.children {
                    let key = e.attr("Key").unwrap_or("");
                    if let Some((page, eas, _)) = table.iter().find(|(_, _, k)| *k == key) {
                        let mut v = e.text.trim();
                        if local == "EmailAddresses" {
                            v = v
                                .strip_prefix("SMTP:")
                                .or(v.strip_prefix("smtp:"))
                                .unwrap_or(v);
                        }
                        out.push(field(page, eas, v));
                    }
                }
            }
            "PhysicalAddresses" => {
                for e in &f.children {
                    let Some(kind) = e.attr("Key").filter(|k| ADDRESS_KINDS.contains(k)) else {
                        continue;
                    };
                    for (eas, ews) in ADDRESS_PARTS {
                        if let Some(v) = e.child(NS_T, ews) {
                            out.push(field(C, &format!("{kind}Address{eas}"), &v.text));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// The vCard of a `t:Contact` (a new one, or `existing` with the fields
/// the contact names replaced and the rest kept).
pub fn vcard_of(c: &Element, existing: Option<&str>, uid: &str) -> Result<String, ItemError> {
    let mut fields = match existing {
        Some(x) => outpost_easconv::vcard_to_eas(x, EasVersion::V16_0, &EventOptions::default())
            .unwrap_or_default(),
        None => Vec::new(),
    };
    merge(&mut fields, eas_fields(c));
    let mut app = Wbxml::named("AirSync", "ApplicationData");
    app.children = fields
        .into_iter()
        .map(outpost_wbxml::Node::Element)
        .collect();
    outpost_easconv::eas_to_vcard(&app, existing, EasVersion::V16_0, uid).map_err(|e| {
        ItemError::new(
            "ErrorInvalidPropertySet",
            format!("The contact cannot be written: {e}"),
        )
    })
}

/// The ActiveSync fields a DeleteItemField of a contact names: the
/// `FieldURI` (or `IndexedFieldURI`'s) and its `FieldIndex`.
fn deleted_fields(uri: &str, index: Option<&str>) -> Option<Vec<(&'static str, String)>> {
    let (class, name) = uri.split_once(':')?;
    match (class, name, index) {
        ("item", "Body", None) => Some(vec![(BASE, "Body".into())]),
        ("item", "Categories", None) => Some(vec![(C, "Categories".into())]),
        ("contacts", "EmailAddress" | "PhoneNumber" | "ImAddress", Some(key)) => {
            let table = match name {
                "EmailAddress" => EMAILS,
                "PhoneNumber" => PHONES,
                _ => IMS,
            };
            let (page, eas, _) = table.iter().find(|(_, _, k)| *k == key)?;
            Some(vec![(*page, eas.to_string())])
        }
        ("contacts", part, Some(kind)) if part.starts_with("PhysicalAddress:") => {
            let field = part.strip_prefix("PhysicalAddress:")?;
            let (eas, _) = ADDRESS_PARTS.iter().find(|(_, ews)| *ews == field)?;
            ADDRESS_KINDS
                .contains(&kind)
                .then(|| vec![(C, format!("{kind}Address{eas}"))])
        }
        ("contacts", field, None) => {
            let found: Vec<(&'static str, String)> = SIMPLE
                .iter()
                .chain(LATER)
                .chain(LAST)
                .filter(|(_, _, ews)| *ews == field)
                .map(|(page, eas, _)| (*page, eas.to_string()))
                .collect();
            (!found.is_empty()).then_some(found)
        }
        _ => None,
    }
}

/// `existing` without the field a DeleteItemField names.
pub fn vcard_without(existing: &str, uri: &str, index: Option<&str>) -> Result<String, ItemError> {
    let gone = deleted_fields(uri, index).ok_or_else(|| {
        ItemError::new(
            "ErrorInvalidPropertyDelete",
            format!("The field {uri} cannot be deleted from a contact here."),
        )
    })?;
    let mut fields =
        outpost_easconv::vcard_to_eas(existing, EasVersion::V16_0, &EventOptions::default())
            .unwrap_or_default();
    fields.retain(|f| !gone.iter().any(|(page, name)| f.is(page, name)));
    let mut app = Wbxml::named("AirSync", "ApplicationData");
    app.children = fields
        .into_iter()
        .map(outpost_wbxml::Node::Element)
        .collect();
    outpost_easconv::eas_to_vcard(&app, Some(existing), EasVersion::V16_0, "").map_err(|e| {
        ItemError::new(
            "ErrorInvalidPropertySet",
            format!("The contact cannot be written: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_round_trip_through_the_activesync_fields() {
        let c = outpost_xml::parse(
            format!(
                r#"<t:Contact xmlns:t="{NS_T}"><t:FileAs>Carol Outside</t:FileAs><t:GivenName>Carol</t:GivenName><t:Surname>Outside</t:Surname>
                <t:CompanyName>Elsewhere Ltd</t:CompanyName>
                <t:EmailAddresses><t:Entry Key="EmailAddress1">carol@elsewhere.example</t:Entry></t:EmailAddresses>
                <t:PhysicalAddresses><t:Entry Key="Business"><t:Street>1 Main St</t:Street><t:City>Springfield</t:City></t:Entry></t:PhysicalAddresses>
                <t:PhoneNumbers><t:Entry Key="MobilePhone">+1 555 0100</t:Entry></t:PhoneNumbers>
                <t:JobTitle>Buyer</t:JobTitle></t:Contact>"#
            )
            .as_bytes(),
            &Default::default(),
        )
        .unwrap();
        let card = vcard_of(&c, None, "carol-1").unwrap();
        assert!(card.contains("FN:Carol Outside"), "{card}");
        assert!(card.contains("carol@elsewhere.example"), "{card}");
        let fields = contact_fields(&card).unwrap();
        let mut all = Element::new(NS_T, "Contact");
        all.children = fields;
        let xml = outpost_xml::write(&all, &[(NS_T, "t")]);
        let no_phone = vcard_without(&card, "contacts:PhoneNumber", Some("MobilePhone")).unwrap();
        assert!(
            !no_phone.contains("555 0100") && no_phone.contains("carol@"),
            "{no_phone}"
        );
        let no_title = vcard_without(&card, "contacts:JobTitle", None).unwrap();
        assert!(!no_title.contains("Buyer"), "{no_title}");
        assert!(vcard_without(&card, "contacts:Nonsense", None).is_err());
        for want in [
            "<t:DisplayName>Carol Outside</t:DisplayName>",
            "<t:GivenName>Carol</t:GivenName>",
            "<t:Entry Key=\"EmailAddress1\">carol@elsewhere.example</t:Entry>",
            "<t:Entry Key=\"MobilePhone\">+1 555 0100</t:Entry>",
            "<t:Street>1 Main St</t:Street>",
            "<t:JobTitle>Buyer</t:JobTitle>",
            "<t:Surname>Outside</t:Surname>",
        ] {
            assert!(xml.contains(want), "{want} in {xml}");
        }
    }
}
