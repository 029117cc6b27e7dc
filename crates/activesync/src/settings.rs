//! Settings (MS-ASCMD 2.2.1.18): Oof get/set — the one out-of-office
//! (the managed vacation block of the user's active Sieve script, the
//! same that `outpost oof`, ManageSieve and the other protocols show) —,
//! DeviceInformation set, UserInformation get, RightsManagementInformation
//! get (none).

use outpost_wbxml::Element;

use crate::email::eas_date;
use crate::folders::child_text;
use crate::sync::Caller;
use crate::{BackendError, EasBackend};

/// The out-of-office as ActiveSync sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Oof {
    /// 0 off, 1 on, 2 between `start` and `end`.
    pub state: u8,
    pub start: Option<i64>,
    pub end: Option<i64>,
    pub internal: String,
    /// `None`: external senders get the internal reply.
    pub external: Option<String>,
    /// 0 no external sender, 1 known senders, 2 everyone.
    pub audience: u8,
}

fn s(name: &str, v: impl Into<String>) -> Element {
    Element::named("Settings", name).with_text(v)
}

/// `2026-11-24T10:00:00.000Z` (and without the fraction) as unix seconds.
pub fn parse_date(v: &str) -> Option<i64> {
    let v = v.trim();
    let b = v.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| v.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, se) = (
        n(0..4)?,
        n(5..7)?,
        n(8..10)?,
        n(11..13)?,
        n(14..16)?,
        n(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se)
}

fn message(applies: &str, enabled: bool, text: &str) -> Element {
    let mut m = Element::named("Settings", "OofMessage")
        .with(Element::named("Settings", applies))
        .with(s("Enabled", if enabled { "1" } else { "0" }));
    if enabled {
        m = m.with(s("ReplyMessage", text)).with(s("BodyType", "TEXT"));
    }
    m
}

fn oof_get(o: &Oof) -> Element {
    let mut g = Element::named("Settings", "Get").with(s("OofState", o.state.to_string()));
    if let (Some(a), Some(b)) = (o.start, o.end) {
        g = g
            .with(s("StartTime", eas_date(a)))
            .with(s("EndTime", eas_date(b)));
    }
    let external = o.external.clone().unwrap_or_else(|| o.internal.clone());
    g.with(message("AppliesToInternal", true, &o.internal))
        .with(message(
            "AppliesToExternalKnown",
            o.audience >= 1,
            &external,
        ))
        .with(message(
            "AppliesToExternalUnknown",
            o.audience >= 2,
            &external,
        ))
}

/// Reads an Oof Set; `Err(status)` for a malformed one (2 protocol
/// error, 5 bad dates...).
pub fn parse_oof_set(set: &Element) -> Result<Oof, u32> {
    let state: u8 = child_text(set, "Settings", "OofState")
        .and_then(|v| v.parse().ok())
        .filter(|v| *v <= 2)
        .ok_or(2u32)?;
    let start = match child_text(set, "Settings", "StartTime") {
        Some(v) => Some(parse_date(&v).ok_or(2u32)?),
        None => None,
    };
    let end = match child_text(set, "Settings", "EndTime") {
        Some(v) => Some(parse_date(&v).ok_or(2u32)?),
        None => None,
    };
    if state == 2 && !matches!((start, end), (Some(a), Some(b)) if a < b) {
        return Err(2);
    }
    let mut o = Oof {
        state,
        start,
        end,
        ..Default::default()
    };
    let (mut known, mut unknown) = (None, None);
    for m in set.elements().filter(|e| e.is("Settings", "OofMessage")) {
        let enabled = child_text(m, "Settings", "Enabled").as_deref() == Some("1");
        let text = child_text(m, "Settings", "ReplyMessage").unwrap_or_default();
        if m.child("Settings", "AppliesToInternal").is_some() {
            o.internal = text;
        } else if m.child("Settings", "AppliesToExternalKnown").is_some() {
            known = Some((enabled, text));
        } else if m.child("Settings", "AppliesToExternalUnknown").is_some() {
            unknown = Some((enabled, text));
        }
    }
    let ext = match (&known, &unknown) {
        (_, Some((true, t))) => {
            o.audience = 2;
            Some(t.clone())
        }
        (Some((true, t)), _) => {
            o.audience = 1;
            Some(t.clone())
        }
        _ => None,
    };
    o.external = ext.filter(|t| *t != o.internal);
    Ok(o)
}

/// Answers a Settings request.
pub async fn answer(
    b: &dyn EasBackend,
    who: &Caller<'_>,
    root: &Element,
) -> Result<Element, BackendError> {
    if !root.is("Settings", "Settings") {
        return Ok(Element::named("Settings", "Settings").with(s("Status", "2")));
    }
    let mut out = Element::named("Settings", "Settings").with(s("Status", "1"));
    for part in root.elements() {
        if part.is("Settings", "Oof") {
            if part.child("Settings", "Get").is_some() {
                let o = b.out_of_office(who.principal).await?;
                out = out.with(
                    Element::named("Settings", "Oof")
                        .with(s("Status", "1"))
                        .with(oof_get(&o)),
                );
            } else if let Some(set) = part.child("Settings", "Set") {
                let status = match parse_oof_set(set) {
                    Ok(o) => {
                        if b.set_out_of_office(who.principal, &o).await? {
                            1
                        } else {
                            // The store refused it (the script would not
                            // compile): server error.
                            6
                        }
                    }
                    Err(st) => st,
                };
                out = out
                    .with(Element::named("Settings", "Oof").with(s("Status", status.to_string())));
            } else {
                out = out.with(Element::named("Settings", "Oof").with(s("Status", "2")));
            }
        } else if part.is("Settings", "DeviceInformation") {
            out = out.with(Element::named("Settings", "DeviceInformation").with(s("Status", "1")));
        } else if part.is("Settings", "UserInformation") {
            let addrs = who.addresses(b).await?;
            let mut emails = Element::named("Settings", "EmailAddresses");
            if who.is16 {
                if let Some(first) = addrs.first() {
                    emails = emails.with(s("PrimarySmtpAddress", first.clone()));
                }
            }
            for a in addrs {
                emails = emails.with(s("SMTPAddress", a.clone()));
            }
            let get = if who.is16 {
                Element::named("Settings", "Get").with(
                    Element::named("Settings", "Accounts")
                        .with(Element::named("Settings", "Account").with(emails)),
                )
            } else {
                Element::named("Settings", "Get").with(emails)
            };
            out = out.with(
                Element::named("Settings", "UserInformation")
                    .with(s("Status", "1"))
                    .with(get),
            );
        } else if part.is("Settings", "RightsManagementInformation") {
            out = out.with(
                Element::named("Settings", "RightsManagementInformation")
                    .with(s("Status", "1"))
                    .with(Element::named("Settings", "Get")),
            );
        } else if part.is("Settings", "DevicePassword") {
            // Recovery passwords are not kept: "not supported".
            out = out.with(Element::named("Settings", "DevicePassword").with(s("Status", "2")));
        } else {
            return Ok(Element::named("Settings", "Settings").with(s("Status", "2")));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        for t in [0, 1_795_514_400, 951_782_400 /* 2000-02-29 */] {
            assert_eq!(parse_date(&eas_date(t)), Some(t));
        }
        assert_eq!(parse_date("2026-13-01T00:00:00Z"), None);
        assert_eq!(parse_date("yesterday"), None);
    }

    #[test]
    fn oof_set() {
        let set = Element::named("Settings", "Set")
            .with(s("OofState", "2"))
            .with(s("StartTime", "2026-12-20T00:00:00.000Z"))
            .with(s("EndTime", "2027-01-04T00:00:00.000Z"))
            .with(message("AppliesToInternal", true, "Back in January"))
            .with(message("AppliesToExternalKnown", true, "Away"))
            .with(message("AppliesToExternalUnknown", false, ""));
        let o = parse_oof_set(&set).unwrap();
        assert_eq!((o.state, o.audience), (2, 1));
        assert_eq!(o.external.as_deref(), Some("Away"));
        assert!(o.start.unwrap() < o.end.unwrap());
        let bad = Element::named("Settings", "Set").with(s("OofState", "2"));
        assert_eq!(parse_oof_set(&bad), Err(2));
        assert_eq!(
            parse_oof_set(&Element::named("Settings", "Set").with(s("OofState", "7"))),
            Err(2)
        );
    }
}
