//! ResolveRecipients (MS-ASCMD 2.2.1.14): each To as the device typed it
//! (a name or an address) matched in the GAL, with the user's free/busy
//! when Availability is asked: MergedFreeBusy, one digit per 30 minutes
//! (0 free, 1 tentative, 2 busy, 4 no data) from the same busy time as
//! CalDAV free/busy and scheduling.

use outpost_wbxml::Element;

use crate::folders::child_text;
use crate::search::GalHit;
use crate::sync::Caller;
use crate::{BackendError, EasBackend};

/// Most To elements in one request (MS-ASCMD: 100).
pub const MAX_TO: usize = 100;
/// Ambiguous matches shown when the device does not say (MS-ASCMD:
/// MaxAmbiguousRecipients default 19... the spec leaves it to the server).
pub const DEFAULT_AMBIGUOUS: usize = 19;
/// Longest Availability window (MS-ASCMD: 7 days... Exchange allows 42).
pub const MAX_AVAILABILITY_SECS: i64 = 42 * 86_400;
/// One MergedFreeBusy digit stands for this many seconds.
pub const SLOT: i64 = 30 * 60;

/// A busy period from the backend: (start, end, tentative).
pub type Busy = (i64, i64, bool);

fn r(name: &str, v: impl Into<String>) -> Element {
    Element::named("ResolveRecipients", name).with_text(v)
}

fn status_only(status: u32) -> Element {
    Element::named("ResolveRecipients", "ResolveRecipients").with(r("Status", status.to_string()))
}

/// The MergedFreeBusy string of `busy` over `[start, end)`.
pub fn merged(busy: &[Busy], start: i64, end: i64) -> String {
    let slots = ((end - start + SLOT - 1) / SLOT).max(0) as usize;
    let mut out = vec![b'0'; slots];
    for &(s, e, tentative) in busy {
        if e <= start || s >= end {
            continue;
        }
        let first = ((s.max(start) - start) / SLOT) as usize;
        let last = ((e.min(end) - start + SLOT - 1) / SLOT) as usize;
        for slot in out.iter_mut().take(last.min(slots)).skip(first) {
            let v = if tentative { b'1' } else { b'2' };
            if v > *slot {
                *slot = v;
            }
        }
    }
    String::from_utf8(out).unwrap_or_default()
}

fn recipient(h: &GalHit, availability: Option<Element>) -> Element {
    let mut e = Element::named("ResolveRecipients", "Recipient")
        // 1: found in the GAL.
        .with(r("Type", "1"))
        .with(r("DisplayName", h.display_name.clone()))
        .with(r("EmailAddress", h.email.clone()));
    if let Some(a) = availability {
        e = e.with(a);
    }
    e
}

/// Answers a ResolveRecipients request.
pub async fn answer(
    b: &dyn EasBackend,
    who: &Caller<'_>,
    root: &Element,
) -> Result<Element, BackendError> {
    if !root.is("ResolveRecipients", "ResolveRecipients") {
        return Ok(status_only(5));
    }
    let tos: Vec<String> = root
        .elements()
        .filter(|e| e.is("ResolveRecipients", "To"))
        .map(|e| e.text().trim().to_string())
        .collect();
    if tos.is_empty() || tos.len() > MAX_TO || tos.iter().any(|t| t.is_empty() || t.len() > 256) {
        return Ok(status_only(5));
    }
    let options = root.child("ResolveRecipients", "Options");
    let max_ambiguous = options
        .and_then(|o| child_text(o, "ResolveRecipients", "MaxAmbiguousRecipients"))
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(DEFAULT_AMBIGUOUS)
        .clamp(1, 100);
    let window = match options.and_then(|o| o.child("ResolveRecipients", "Availability")) {
        None => None,
        Some(a) => {
            let t = |n: &str| {
                child_text(a, "ResolveRecipients", n).and_then(|v| crate::settings::parse_date(&v))
            };
            match (t("StartTime"), t("EndTime")) {
                (Some(s), Some(e)) if s < e && e - s <= MAX_AVAILABILITY_SECS => Some((s, e)),
                // MS-ASCMD: a bad range is a protocol error.
                _ => return Ok(status_only(5)),
            }
        }
    };
    let mut out = Element::named("ResolveRecipients", "ResolveRecipients").with(r("Status", "1"));
    for to in &tos {
        let query = to
            .trim_start_matches("SMTP:")
            .trim_matches(|c| c == '<' || c == '>' || c == '"')
            .to_string();
        let mut hits = b.search_gal(who.principal, &query, 100).await?;
        // An exact address is that one entry, whatever else starts so.
        if let Some(exact) = hits
            .iter()
            .position(|h| h.email.eq_ignore_ascii_case(&query))
        {
            hits = vec![hits.swap_remove(exact)];
        }
        let mut response =
            Element::named("ResolveRecipients", "Response").with(r("To", to.clone()));
        let status = match hits.len() {
            0 => 4,
            1 => 1,
            _ => 2,
        };
        response = response.with(r("Status", status.to_string()));
        let shown: Vec<&GalHit> = hits.iter().take(max_ambiguous).collect();
        response = response.with(r("RecipientCount", shown.len().to_string()));
        let busy = match window {
            Some((s, e)) if status == 1 => {
                let addrs: Vec<String> = shown.iter().map(|h| h.email.clone()).collect();
                b.availability(who.principal, &addrs, s, e).await?
            }
            _ => Vec::new(),
        };
        for (i, h) in shown.iter().enumerate() {
            let avail = window.filter(|_| status == 1).map(|(s, e)| {
                let a = Element::named("ResolveRecipients", "Availability");
                match busy.get(i).and_then(|x| x.as_ref()) {
                    Some(periods) => a
                        .with(r("Status", "1"))
                        .with(r("MergedFreeBusy", merged(periods, s, e))),
                    // 163: no free/busy for this recipient (not hosted
                    // here, a group).
                    None => a.with(r("Status", "163")),
                }
            });
            response = response.with(recipient(h, avail));
        }
        out = out.with(response);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_free_busy() {
        let start = 1_000_000 * SLOT;
        let end = start + 8 * SLOT;
        let busy = [
            (start + SLOT, start + 2 * SLOT, false),
            // Tentative, half a slot into the fourth and through the fifth.
            (start + 3 * SLOT + 60, start + 5 * SLOT, true),
            // Busy wins over tentative.
            (start + 4 * SLOT, start + 4 * SLOT + 1, false),
            // Outside the window.
            (end, end + SLOT, false),
        ];
        assert_eq!(merged(&busy, start, end), "02012000");
        assert_eq!(merged(&[], start, start + 90 * 60), "000");
    }
}
