//! vCard (3.0 and 4.0) <-> Contacts ApplicationData (MS-ASCNTC with the
//! Contacts2 page).

use crate::calendar::{body_element, body_text, el, text_of, EventOptions};
use crate::model::{self, card_list, card_text, card_value, clean};
use crate::{EasVersion, Error, Result, MAX_CATEGORIES, MAX_FIELD};
use base64::Engine;
use calcard::common::{Data, IanaParse, PartialDateTime};
use calcard::vcard::{
    VCard, VCardEntry, VCardParameter, VCardParameterName, VCardParameterValue, VCardProperty,
    VCardType, VCardValue, VCardValueType, VCardVersion,
};
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use outpost_wbxml::Element;

const C: &str = "Contacts";
const C2: &str = "Contacts2";

/// Largest Picture, decoded, in either direction (MS-ASCNTC allows 48 KB).
pub const MAX_PICTURE: usize = 48 * 1024;

/// A structured value's components (N, ORG, ADR), each as text.
fn components(p: &VCardEntry) -> Vec<String> {
    p.values.iter().map(card_value).collect()
}

/// The TYPE values of a property, lower case, with vCard 2.1's bare
/// parameters (TEL;WORK;VOICE:...).
fn types(p: &VCardEntry) -> Vec<String> {
    p.params
        .iter()
        .filter_map(|x| match (&x.name, &x.value) {
            (VCardParameterName::Type, v) => v.as_text().map(str::to_string),
            (VCardParameterName::Other(n), VCardParameterValue::Null) => Some(n.clone()),
            _ => None,
        })
        .flat_map(|v| {
            v.split(',')
                .map(|t| t.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A BDAY-like value as the EAS date, `None` without a year.
fn eas_date(p: &VCardEntry) -> Option<String> {
    let d = match p.values.first()? {
        VCardValue::PartialDateTime(dt) => {
            NaiveDate::from_ymd_opt(dt.year?.into(), dt.month?.into(), dt.day?.into())?
        }
        // vCard 3 extensions (X-ANNIVERSARY) are text: 2010-06-01, 20100601.
        other => {
            let s = card_value(other);
            let digits: String = s
                .trim()
                .chars()
                .filter(|c| c.is_ascii_digit())
                .take(8)
                .collect();
            if s.trim().starts_with("--") || digits.len() != 8 {
                return None;
            }
            NaiveDate::parse_from_str(&digits, "%Y%m%d").ok()?
        }
    };
    if !(1000..=2200).contains(&d.year()) {
        return None;
    }
    Some(format!("{}T00:00:00.000Z", d.format("%Y-%m-%d")))
}

fn vcard_date(s: &str) -> Result<NaiveDate> {
    let t = crate::calendar::parse_eas_time(s).or_else(|_| {
        NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .map(|d| Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default()))
            .map_err(|_| Error::Invalid("bad date".into()))
    })?;
    // Clients send the local midnight as UTC: round to the nearest day.
    let d: DateTime<Utc> = t + chrono::Duration::hours(12);
    Ok(d.date_naive())
}

/// The picture of a PHOTO (calcard decodes both data: URIs and vCard 3's
/// ENCODING=b).
fn photo_bytes(p: &VCardEntry) -> Option<&[u8]> {
    p.values.iter().find_map(|v| match v {
        VCardValue::Binary(d) => Some(d.data.as_slice()),
        _ => None,
    })
}

const PHONES: &[(&str, &str, &str)] = &[
    // (EAS element, page, vCard TYPE)
    ("MobilePhoneNumber", C, "CELL"),
    ("BusinessPhoneNumber", C, "WORK"),
    ("Business2PhoneNumber", C, "WORK"),
    ("HomePhoneNumber", C, "HOME"),
    ("Home2PhoneNumber", C, "HOME"),
    ("BusinessFaxNumber", C, "WORK,FAX"),
    ("HomeFaxNumber", C, "HOME,FAX"),
    ("PagerNumber", C, "PAGER"),
    ("CarPhoneNumber", C, "CAR"),
    ("RadioPhoneNumber", C, "X-RADIO"),
    ("AssistantPhoneNumber", C, "X-ASSISTANT"),
    ("CompanyMainPhone", C2, "WORK,X-MAIN"),
    ("MMS", C2, "X-MMS"),
];

fn phone_slots(t: &[String]) -> &'static [&'static str] {
    let has = |x: &str| t.iter().any(|y| y == x);
    if has("cell") || has("mobile") || has("iphone") {
        &["MobilePhoneNumber"]
    } else if has("fax") && has("home") {
        &["HomeFaxNumber"]
    } else if has("fax") {
        &["BusinessFaxNumber", "HomeFaxNumber"]
    } else if has("pager") {
        &["PagerNumber"]
    } else if has("car") {
        &["CarPhoneNumber"]
    } else if has("x-main") || has("main") || has("main-number") {
        &["CompanyMainPhone", "BusinessPhoneNumber"]
    } else if has("x-radio") {
        &["RadioPhoneNumber"]
    } else if has("x-assistant") {
        &["AssistantPhoneNumber"]
    } else if has("x-mms") {
        &["MMS"]
    } else if has("work") {
        &["BusinessPhoneNumber", "Business2PhoneNumber"]
    } else {
        &[
            "HomePhoneNumber",
            "Home2PhoneNumber",
            "Business2PhoneNumber",
        ]
    }
}

/// The Contacts elements for a vCard, and which of its properties they
/// represent (the ones a Change replaces).
fn map_card(card: &VCard, opts: &EventOptions) -> (Vec<Element>, Vec<usize>) {
    let mut out: Vec<Element> = Vec::new();
    let mut used = Vec::new();
    let mut taken: Vec<&'static str> = Vec::new();
    let mut emails = 0;
    let mut ims = 0;
    let mut cats = Vec::new();
    for (i, p) in card.entries.iter().enumerate() {
        let mut push = |e: Element| {
            out.push(e);
            used.push(i);
        };
        let name = p.name.as_str().to_ascii_uppercase();
        match name.as_str() {
            "FN" => push(el(C, "FileAs", card_text(p))),
            "N" => {
                // The first of a component's comma list.
                let n: Vec<String> = p
                    .values
                    .iter()
                    .map(|v| match v {
                        VCardValue::Component(items) => items.first().cloned().unwrap_or_default(),
                        other => card_value(other),
                    })
                    .collect();
                let names = ["LastName", "FirstName", "MiddleName", "Title", "Suffix"];
                let mut any = false;
                for (k, name) in names.iter().enumerate() {
                    if let Some(v) = n.get(k).filter(|v| !v.is_empty()) {
                        out.push(el(C, name, v.clone()));
                        any = true;
                    }
                }
                if any || n.iter().all(|v| v.is_empty()) {
                    used.push(i);
                }
            }
            "ORG" => {
                let o = components(p);
                if let Some(v) = o.first().filter(|v| !v.is_empty()) {
                    out.push(el(C, "CompanyName", v.clone()));
                }
                if let Some(v) = o.get(1).filter(|v| !v.is_empty()) {
                    out.push(el(C, "Department", v.clone()));
                }
                used.push(i);
            }
            "TITLE" => push(el(C, "JobTitle", card_text(p))),
            "NICKNAME" => push(el(
                C2,
                "NickName",
                card_list(p).first().cloned().unwrap_or_default(),
            )),
            "NOTE" => push(body_element(&card_text(p), opts)),
            "URL" if !taken.contains(&"WebPage") => {
                taken.push("WebPage");
                push(el(C, "WebPage", card_text(p)));
            }
            "EMAIL" if emails < 3 => {
                emails += 1;
                push(el(
                    C,
                    ["Email1Address", "Email2Address", "Email3Address"][emails - 1],
                    card_text(p),
                ));
            }
            "IMPP" | "X-AIM" | "X-JABBER" | "X-ICQ" | "X-SKYPE" if ims < 3 => {
                ims += 1;
                push(el(
                    C2,
                    ["IMAddress", "IMAddress2", "IMAddress3"][ims - 1],
                    card_text(p),
                ));
            }
            "TEL" => {
                let t = types(p);
                if let Some(slot) = phone_slots(&t).iter().find(|s| !taken.contains(s)) {
                    taken.push(slot);
                    let page = PHONES
                        .iter()
                        .find(|x| x.0 == *slot)
                        .map(|x| x.1)
                        .unwrap_or(C);
                    push(el(page, slot, card_text(p)));
                }
            }
            "ADR" => {
                let t = types(p);
                let kind = if t.iter().any(|x| x == "work") {
                    "Business"
                } else if t.iter().any(|x| x == "home") {
                    "Home"
                } else {
                    "Other"
                };
                let kind = [kind, "Other", "Home", "Business"]
                    .into_iter()
                    .find(|k| !taken.contains(k));
                let Some(kind) = kind else { continue };
                taken.push(match kind {
                    "Business" => "Business",
                    "Home" => "Home",
                    _ => "Other",
                });
                let a = components(p);
                let mut street = a.get(2).cloned().unwrap_or_default();
                if let Some(ext) = a.get(1).filter(|x| !x.is_empty()) {
                    street = format!("{street}\n{ext}");
                }
                for (k, field) in [
                    (usize::MAX, "Street"),
                    (3, "City"),
                    (4, "State"),
                    (5, "PostalCode"),
                    (6, "Country"),
                ] {
                    let v = if k == usize::MAX {
                        Some(&street)
                    } else {
                        a.get(k)
                    };
                    if let Some(v) = v.filter(|v| !v.is_empty()) {
                        out.push(el(C, &format!("{kind}Address{field}"), v.clone()));
                    }
                }
                used.push(i);
            }
            "BDAY" => {
                if let Some(d) = eas_date(p) {
                    push(el(C, "Birthday", d));
                }
            }
            "ANNIVERSARY" | "X-ANNIVERSARY" | "X-MS-ANNIVERSARY"
                if !taken.contains(&"Anniversary") =>
            {
                if let Some(d) = eas_date(p) {
                    taken.push("Anniversary");
                    push(el(C, "Anniversary", d));
                }
            }
            "PHOTO" => {
                if let Some(b) = photo_bytes(p).filter(|b| b.len() <= MAX_PICTURE) {
                    push(el(
                        C,
                        "Picture",
                        base64::engine::general_purpose::STANDARD.encode(b),
                    ));
                }
            }
            "CATEGORIES" => {
                cats.extend(card_list(p));
                used.push(i);
            }
            _ => {}
        }
    }
    cats.truncate(MAX_CATEGORIES);
    if !cats.is_empty() {
        let mut c = Element::named(C, "Categories");
        for x in cats {
            c = c.with(el(C, "Category", x));
        }
        out.push(c);
    }
    // Contacts elements must be unique: keep the first of each.
    let mut seen = Vec::new();
    out.retain(|e| {
        let k = (e.tag.page(), e.tag.token());
        if seen.contains(&k) {
            false
        } else {
            seen.push(k);
            true
        }
    });
    (out, used)
}

/// The ApplicationData children of a Contacts item for a vCard.
pub fn vcard_to_eas(text: &str, _version: EasVersion, opts: &EventOptions) -> Result<Vec<Element>> {
    Ok(map_card(&model::parse_card(text)?, opts).0)
}

fn text_prop(name: VCardProperty, s: &str) -> VCardEntry {
    VCardEntry::new(name).with_value(clean(s))
}

/// A structured property (N, ORG, ADR) of its components.
fn structured(name: VCardProperty, parts: &[Option<String>]) -> VCardEntry {
    VCardEntry::new(name).with_values(
        parts
            .iter()
            .map(|p| VCardValue::Text(clean(p.as_deref().unwrap_or(""))))
            .collect(),
    )
}

/// TYPE parameters of a comma list ("WORK,FAX"), calcard's known types
/// as such.
fn type_params(list: &str) -> Vec<VCardParameter> {
    list.split(',')
        .map(|t| match VCardType::parse(t.as_bytes()) {
            Some(k) => VCardParameter::typ(k),
            None => VCardParameter::typ(t.to_string()),
        })
        .collect()
}

fn date_prop(name: VCardProperty, d: NaiveDate) -> VCardEntry {
    let v = PartialDateTime {
        year: u16::try_from(d.year()).ok(),
        month: Some(d.month() as u8),
        day: Some(d.day() as u8),
        ..PartialDateTime::default()
    };
    VCardEntry::new(name)
        .with_value(VCardValue::PartialDateTime(v))
        .with_param(VCardParameter::value(VCardValueType::Date))
}

/// The vCard for a client's Contacts ApplicationData, merged into
/// `existing`: the properties the item represents are replaced, all others
/// (X- properties, extra e-mail addresses, groups' labels) survive.
pub fn eas_to_vcard(
    app: &Element,
    existing: Option<&str>,
    _version: EasVersion,
    new_uid: &str,
) -> Result<String> {
    let mut card = match existing {
        Some(x) => {
            let mut card = model::parse_card(x)?;
            let (_, used) = map_card(&card, &EventOptions::default());
            let groups: Vec<String> = used
                .iter()
                .filter_map(|&i| card.entries.get(i))
                .filter_map(|p| p.group.clone())
                .collect();
            let mut i = 0;
            card.entries.retain(|p| {
                let label = p.name.as_str().eq_ignore_ascii_case("X-ABLABEL")
                    && p.group.as_ref().is_some_and(|g| groups.contains(g));
                let keep = !(used.contains(&i) || label);
                i += 1;
                keep
            });
            card
        }
        None => {
            let mut card = VCard::default();
            card.entries.push(text_prop(VCardProperty::Version, "3.0"));
            card.entries.push(text_prop(VCardProperty::Uid, new_uid));
            card
        }
    };
    let version = card.version().unwrap_or(VCardVersion::V3_0);
    let v4 = version == VCardVersion::V4_0;
    // The item's properties go after the header and before the survivors,
    // so the next read maps them to the same elements.
    let (head, rest): (Vec<VCardEntry>, Vec<VCardEntry>) = std::mem::take(&mut card.entries)
        .into_iter()
        .partition(|p| {
            matches!(
                p.name,
                VCardProperty::Version
                    | VCardProperty::Prodid
                    | VCardProperty::Uid
                    | VCardProperty::Kind
            )
        });
    card.entries = head;
    let get = |page: &str, name: &str| -> Result<Option<String>> {
        app.child(page, name)
            .map(|e| text_of(e, MAX_FIELD, "field"))
            .transpose()
            .map(|o| o.filter(|s| !s.trim().is_empty()))
    };
    let mut add = |p: VCardEntry| card.entries.push(p);
    let (last, first, middle) = (
        get(C, "LastName")?,
        get(C, "FirstName")?,
        get(C, "MiddleName")?,
    );
    let (title, suffix) = (get(C, "Title")?, get(C, "Suffix")?);
    let fn_ = get(C, "FileAs")?.or_else(|| {
        let parts: Vec<String> = [&title, &first, &middle, &last, &suffix]
            .iter()
            .filter_map(|x| (*x).clone())
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    });
    let company = get(C, "CompanyName")?;
    let fn_ = fn_
        .or_else(|| company.clone())
        .or(get(C, "Email1Address")?)
        .unwrap_or_default();
    add(text_prop(VCardProperty::Fn, &fn_));
    add(structured(
        VCardProperty::N,
        &[last, first, middle, title, suffix],
    ));
    let dept = get(C, "Department")?;
    if company.is_some() || dept.is_some() {
        add(structured(VCardProperty::Org, &[company, dept]));
    }
    if let Some(t) = get(C, "JobTitle")? {
        add(text_prop(VCardProperty::Title, &t));
    }
    if let Some(t) = get(C2, "NickName")? {
        add(text_prop(VCardProperty::Nickname, &t));
    }
    for (k, name) in ["Email1Address", "Email2Address", "Email3Address"]
        .iter()
        .enumerate()
    {
        if let Some(e) = get(C, name)? {
            // Clients send "Name" <address>.
            let addr = match (e.rfind('<'), e.rfind('>')) {
                (Some(a), Some(b)) if a < b => e[a + 1..b].trim().to_string(),
                _ => e.trim().to_string(),
            };
            let ty = if k == 0 { "INTERNET,PREF" } else { "INTERNET" };
            add(text_prop(VCardProperty::Email, &addr).with_params(type_params(ty)));
        }
    }
    for (name, page, ty) in PHONES {
        if let Some(n) = get(page, name)? {
            add(text_prop(VCardProperty::Tel, &n).with_params(type_params(ty)));
        }
    }
    for kind in ["Business", "Home", "Other"] {
        let f = |x: &str| get(C, &format!("{kind}Address{x}"));
        let (street, city, state, code, country) = (
            f("Street")?,
            f("City")?,
            f("State")?,
            f("PostalCode")?,
            f("Country")?,
        );
        if [&street, &city, &state, &code, &country]
            .iter()
            .all(|x| x.is_none())
        {
            continue;
        }
        let (street, ext) = match street {
            Some(st) => match st.split_once('\n') {
                Some((a, b)) => (
                    Some(a.trim_end_matches('\r').to_string()),
                    Some(b.to_string()),
                ),
                None => (Some(st), None),
            },
            None => (None, None),
        };
        let ty = match kind {
            "Business" => "WORK",
            "Home" => "HOME",
            _ => "OTHER",
        };
        add(structured(
            VCardProperty::Adr,
            &[None, ext, street, city, state, code, country],
        )
        .with_params(type_params(ty)));
    }
    if let Some(w) = get(C, "WebPage")? {
        add(text_prop(VCardProperty::Url, &w));
    }
    for name in ["IMAddress", "IMAddress2", "IMAddress3"] {
        if let Some(i) = get(C2, name)? {
            add(text_prop(VCardProperty::Impp, &i));
        }
    }
    if let Some(b) = get(C, "Birthday")? {
        add(date_prop(VCardProperty::Bday, vcard_date(&b)?));
    }
    if let Some(b) = get(C, "Anniversary")? {
        let name = if v4 {
            VCardProperty::Anniversary
        } else {
            VCardProperty::Other("X-ANNIVERSARY".into())
        };
        add(date_prop(name, vcard_date(&b)?));
    }
    if let Some(pic) = app.child(C, "Picture") {
        let raw: String = pic.text().chars().filter(|c| !c.is_whitespace()).collect();
        if raw.len() > MAX_PICTURE * 4 / 3 + 4 {
            return Err(Error::TooLarge("picture"));
        }
        if !raw.is_empty() {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(&raw)
                .map_err(|_| Error::Invalid("Picture is not base64".into()))?;
            let ty = if bytes.starts_with(b"\x89PNG") {
                "image/png"
            } else {
                "image/jpeg"
            };
            // calcard writes it as a data: URI (4.0) or ENCODING=b (3.0).
            add(
                VCardEntry::new(VCardProperty::Photo).with_value(VCardValue::Binary(Data {
                    content_type: Some(ty.to_string()),
                    data: bytes,
                })),
            );
        }
    }
    if let Some(b) = body_text(app)?.filter(|b| !b.is_empty()) {
        add(text_prop(VCardProperty::Note, &b));
    }
    if let Some(c) = app.child(C, "Categories") {
        let cats: Vec<String> = c
            .elements()
            .filter(|e| e.is(C, "Category"))
            .map(|e| text_of(e, MAX_FIELD, "category").map(|s| clean(&s)))
            .collect::<Result<_>>()?;
        if cats.len() > MAX_CATEGORIES {
            return Err(Error::TooLarge("categories"));
        }
        if !cats.is_empty() {
            add(VCardEntry::new(VCardProperty::Categories)
                .with_values(cats.into_iter().map(VCardValue::Text).collect()));
        }
    }
    card.entries.extend(rest);
    let mut out = String::new();
    card.write_to(&mut out, version)
        .map_err(|_| Error::Invalid("vCard not writable".into()))?;
    Ok(out)
}
