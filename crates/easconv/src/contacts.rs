//! vCard (3.0 and 4.0) <-> Contacts ApplicationData (MS-ASCNTC with the
//! Contacts2 page).

use crate::calendar::{body_element, body_text, el, split_list, text_of, EventOptions};
use crate::ical::{self, escape, Component, Prop};
use crate::{EasVersion, Error, Result, MAX_CATEGORIES, MAX_FIELD};
use base64::Engine;
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use outpost_wbxml::Element;

const C: &str = "Contacts";
const C2: &str = "Contacts2";

/// Largest Picture, decoded, in either direction (MS-ASCNTC allows 48 KB).
pub const MAX_PICTURE: usize = 48 * 1024;

/// A structured value's components, unescaped.
fn components(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut esc = false;
    for c in v.chars() {
        if esc {
            cur.push(if c == 'n' || c == 'N' { '\n' } else { c });
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else if c == ';' {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

fn types(p: &Prop) -> Vec<String> {
    p.params
        .iter()
        .filter(|(n, _)| n == "TYPE")
        .flat_map(|(_, v)| {
            v.trim_matches('"')
                .split(',')
                .map(|t| t.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .chain(
            // vCard 2.1 style bare parameters: TEL;WORK;VOICE:...
            p.params
                .iter()
                .filter(|(_, v)| v.is_empty())
                .map(|(n, _)| n.to_ascii_lowercase()),
        )
        .collect()
}

fn eas_date(s: &str) -> Option<String> {
    let digits: String = s
        .trim()
        .chars()
        .filter(|c| c.is_ascii_digit())
        .take(8)
        .collect();
    if s.trim().starts_with("--") || digits.len() != 8 {
        return None;
    }
    let d = NaiveDate::parse_from_str(&digits, "%Y%m%d").ok()?;
    if !(1000..=2200).contains(&d.year()) {
        return None;
    }
    Some(format!("{}T00:00:00.000Z", d.format("%Y-%m-%d")))
}

fn vcard_date(s: &str) -> Result<String> {
    let t = crate::calendar::parse_eas_time(s).or_else(|_| {
        NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .map(|d| Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default()))
            .map_err(|_| Error::Invalid("bad date".into()))
    })?;
    // Clients send the local midnight as UTC: round to the nearest day.
    let d: DateTime<Utc> = t + chrono::Duration::hours(12);
    Ok(d.format("%Y%m%d").to_string())
}

fn photo_bytes(p: &Prop) -> Option<Vec<u8>> {
    let v = p.value.trim();
    let b64 = if let Some(rest) = v.strip_prefix("data:") {
        rest.split_once(";base64,")?.1
    } else if p
        .param("ENCODING")
        .is_some_and(|e| e.eq_ignore_ascii_case("b") || e.eq_ignore_ascii_case("base64"))
    {
        v
    } else {
        return None;
    };
    let clean: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(clean).ok()
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
    } else if has("x-main") || has("main") {
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

fn parse_card(text: &str) -> Result<Component> {
    let c = ical::parse(text)?;
    if c.name != "VCARD" {
        return Err(Error::Invalid("not a VCARD".into()));
    }
    Ok(c)
}

/// The Contacts elements for a vCard, and which of its properties they
/// represent (the ones a Change replaces).
fn map_card(card: &Component, opts: &EventOptions) -> (Vec<Element>, Vec<usize>) {
    let mut out: Vec<Element> = Vec::new();
    let mut used = Vec::new();
    let mut taken: Vec<&'static str> = Vec::new();
    let mut emails = 0;
    let mut ims = 0;
    let mut cats = Vec::new();
    for (i, p) in card.props.iter().enumerate() {
        let mut push = |e: Element| {
            out.push(e);
            used.push(i);
        };
        match p.name.as_str() {
            "FN" => push(el(C, "FileAs", p.text())),
            "N" => {
                let n = components(&p.value);
                let names = ["LastName", "FirstName", "MiddleName", "Title", "Suffix"];
                let mut any = false;
                for (k, name) in names.iter().enumerate() {
                    if let Some(v) = n.get(k).filter(|v| !v.is_empty()) {
                        out.push(el(C, name, v.split(',').next().unwrap_or("").to_string()));
                        any = true;
                    }
                }
                if any || n.iter().all(|v| v.is_empty()) {
                    used.push(i);
                }
            }
            "ORG" => {
                let o = components(&p.value);
                if let Some(v) = o.first().filter(|v| !v.is_empty()) {
                    out.push(el(C, "CompanyName", v.clone()));
                }
                if let Some(v) = o.get(1).filter(|v| !v.is_empty()) {
                    out.push(el(C, "Department", v.clone()));
                }
                used.push(i);
            }
            "TITLE" => push(el(C, "JobTitle", p.text())),
            "NICKNAME" => push(el(
                C2,
                "NickName",
                split_list(&p.value).first().cloned().unwrap_or_default(),
            )),
            "NOTE" => push(body_element(&p.text(), opts)),
            "URL" if !taken.contains(&"WebPage") => {
                taken.push("WebPage");
                push(el(C, "WebPage", p.text()));
            }
            "EMAIL" if emails < 3 => {
                emails += 1;
                push(el(
                    C,
                    ["Email1Address", "Email2Address", "Email3Address"][emails - 1],
                    p.text(),
                ));
            }
            "IMPP" | "X-AIM" | "X-JABBER" | "X-ICQ" | "X-SKYPE" if ims < 3 => {
                ims += 1;
                push(el(
                    C2,
                    ["IMAddress", "IMAddress2", "IMAddress3"][ims - 1],
                    p.text(),
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
                    push(el(page, slot, p.text()));
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
                let a = components(&p.value);
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
                if let Some(d) = eas_date(&p.value) {
                    push(el(C, "Birthday", d));
                }
            }
            "ANNIVERSARY" | "X-ANNIVERSARY" | "X-MS-ANNIVERSARY"
                if !taken.contains(&"Anniversary") =>
            {
                if let Some(d) = eas_date(&p.value) {
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
                cats.extend(split_list(&p.value));
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
    Ok(map_card(&parse_card(text)?, opts).0)
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
            let mut card = parse_card(x)?;
            let (_, used) = map_card(&card, &EventOptions::default());
            let groups: Vec<String> = used
                .iter()
                .filter_map(|&i| card.props.get(i))
                .map(|p| p.group.clone())
                .filter(|g| !g.is_empty())
                .collect();
            let mut i = 0;
            card.props.retain(|p| {
                let keep =
                    !(used.contains(&i) || (groups.contains(&p.group) && p.name == "X-ABLABEL"));
                i += 1;
                keep
            });
            card
        }
        None => {
            let mut card = Component::new("VCARD");
            card.props.push(Prop::new("VERSION", "3.0"));
            card.props.push(Prop::new("UID", escape(new_uid)));
            card
        }
    };
    let v4 = card
        .prop("VERSION")
        .is_some_and(|v| v.value.trim() == "4.0");
    // The item's properties go after the header and before the survivors,
    // so the next read maps them to the same elements.
    let (head, rest): (Vec<Prop>, Vec<Prop>) = std::mem::take(&mut card.props)
        .into_iter()
        .partition(|p| matches!(p.name.as_str(), "VERSION" | "PRODID" | "UID" | "KIND"));
    card.props = head;
    let get = |page: &str, name: &str| -> Result<Option<String>> {
        app.child(page, name)
            .map(|e| text_of(e, MAX_FIELD, "field"))
            .transpose()
            .map(|o| o.filter(|s| !s.trim().is_empty()))
    };
    let s = |v: Option<String>| escape(&v.unwrap_or_default());
    let mut add = |p: Prop| card.props.push(p);
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
    add(Prop::new("FN", escape(&fn_)));
    add(Prop::new(
        "N",
        [s(last), s(first), s(middle), s(title), s(suffix)].join(";"),
    ));
    let dept = get(C, "Department")?;
    if company.is_some() || dept.is_some() {
        add(Prop::new("ORG", format!("{};{}", s(company), s(dept))));
    }
    if let Some(t) = get(C, "JobTitle")? {
        add(Prop::new("TITLE", escape(&t)));
    }
    if let Some(t) = get(C2, "NickName")? {
        add(Prop::new("NICKNAME", escape(&t)));
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
            let mut p = Prop::new("EMAIL", escape(&addr)).with_param("TYPE", "INTERNET");
            if k == 0 {
                p = p.with_param("TYPE", "PREF");
            }
            add(p);
        }
    }
    for (name, page, ty) in PHONES {
        if let Some(n) = get(page, name)? {
            add(Prop::new("TEL", escape(&n)).with_param("TYPE", *ty));
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
        add(Prop::new(
            "ADR",
            [
                "".to_string(),
                s(ext),
                s(street),
                s(city),
                s(state),
                s(code),
                s(country),
            ]
            .join(";"),
        )
        .with_param("TYPE", ty));
    }
    if let Some(w) = get(C, "WebPage")? {
        add(Prop::new("URL", escape(&w)));
    }
    for name in ["IMAddress", "IMAddress2", "IMAddress3"] {
        if let Some(i) = get(C2, name)? {
            add(Prop::new("IMPP", escape(&i)));
        }
    }
    if let Some(b) = get(C, "Birthday")? {
        add(Prop::new("BDAY", vcard_date(&b)?).with_param("VALUE", "DATE"));
    }
    if let Some(b) = get(C, "Anniversary")? {
        let name = if v4 { "ANNIVERSARY" } else { "X-ANNIVERSARY" };
        add(Prop::new(name, vcard_date(&b)?).with_param("VALUE", "DATE"));
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
                "PNG"
            } else {
                "JPEG"
            };
            if v4 {
                add(Prop::new(
                    "PHOTO",
                    format!("data:image/{};base64,{raw}", ty.to_ascii_lowercase()),
                ));
            } else {
                add(Prop::new("PHOTO", raw)
                    .with_param("ENCODING", "b")
                    .with_param("TYPE", ty));
            }
        }
    }
    if let Some(b) = body_text(app)?.filter(|b| !b.is_empty()) {
        add(Prop::new("NOTE", escape(&b)));
    }
    if let Some(c) = app.child(C, "Categories") {
        let cats: Vec<String> = c
            .elements()
            .filter(|e| e.is(C, "Category"))
            .map(|e| text_of(e, MAX_FIELD, "category").map(|s| escape(&s)))
            .collect::<Result<_>>()?;
        if cats.len() > MAX_CATEGORIES {
            return Err(Error::TooLarge("categories"));
        }
        if !cats.is_empty() {
            add(Prop::new("CATEGORIES", cats.join(",")));
        }
    }
    card.props.extend(rest);
    let mut out = String::new();
    card.write(&mut out);
    Ok(out)
}
