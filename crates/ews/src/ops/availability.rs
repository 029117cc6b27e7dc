//! GetUserAvailability (MS-OXWAVLS) and GetServerTimeZones.
//!
//! Free/busy comes from the backend's `availability`: the busy time the
//! scheduling engine computes for CalDAV free/busy and ActiveSync's
//! ResolveRecipients, from the same instances. A distribution group's is
//! its members' merged (at most [`MAX_GROUP_MEMBERS`] of them). Detail
//! (subjects, locations) is not shared between users here, so a
//! `Detailed` view is answered as `FreeBusy` and `DetailedMerged` as
//! `FreeBusyMerged`, as Exchange answers a requester who has the default
//! free/busy-only permission. An address that is not a user or group of
//! this server gets its own `ErrorMailRecipientNotFound` response.
//!
//! Times in the request without an offset, and every time in the answer,
//! are wall times in the request's `TimeZone` (the Windows form,
//! [`WinZone`]). This server keeps no working hours: `WorkingHours` says
//! Monday to Friday, 08:00 to 17:00 in that zone, Exchange's default.

use outpost_xml::Element;

use super::{child_tm, invalid, text_of, OpError, OpResult};
use crate::soap::{Fault, NS_M, NS_T};
use crate::zone::{self, WinZone};
use crate::Ctx;

/// Most mailboxes in one request (Exchange's limit).
pub const MAX_MAILBOXES: usize = 100;
/// Longest time window (Exchange's default limit: 42 days).
pub const MAX_WINDOW: i64 = 42 * 86_400;
/// Members of one group whose free/busy is merged.
pub const MAX_GROUP_MEMBERS: usize = 100;

/// What a view asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    /// The view type answered.
    pub name: &'static str,
    pub merged: bool,
    pub events: bool,
}

impl View {
    pub fn parse(v: &str) -> Option<View> {
        let (name, merged, events) = match v.trim() {
            "MergedOnly" => ("MergedOnly", true, false),
            "FreeBusy" | "Detailed" => ("FreeBusy", false, true),
            "FreeBusyMerged" | "DetailedMerged" => ("FreeBusyMerged", true, true),
            _ => return None,
        };
        Some(View {
            name,
            merged,
            events,
        })
    }
}

/// A busy period: (start, end, tentative), UTC seconds.
pub type Busy = outpost_activesync::resolve::Busy;

/// The MergedFreeBusy digits of `busy` over `[start, end)` in slots of
/// `slot` seconds: 0 free, 1 tentative, 2 busy.
pub fn merged(busy: &[Busy], start: i64, end: i64, slot: i64) -> String {
    let slot = slot.max(60);
    let slots = ((end - start + slot - 1) / slot).max(0) as usize;
    let mut out = vec![b'0'; slots];
    for &(s, e, tentative) in busy {
        if e <= start || s >= end {
            continue;
        }
        let first = ((s.max(start) - start) / slot) as usize;
        let last = ((e.min(end) - start + slot - 1) / slot) as usize;
        let v = if tentative { b'1' } else { b'2' };
        for d in out.iter_mut().take(last.min(slots)).skip(first) {
            *d = (*d).max(v);
        }
    }
    String::from_utf8(out).unwrap_or_default()
}

/// Busy periods of several people as one list: busy wins over tentative
/// where they overlap; adjacent periods of one kind are joined.
pub fn merge_all(mut all: Vec<Busy>) -> Vec<Busy> {
    // Cut the timeline at every edge and take the strongest state of
    // each piece.
    let mut edges: Vec<i64> = all.iter().flat_map(|b| [b.0, b.1]).collect();
    edges.sort_unstable();
    edges.dedup();
    all.sort_unstable();
    let mut out: Vec<Busy> = Vec::new();
    for w in edges.windows(2) {
        let (s, e) = (w[0], w[1]);
        let mut state = None;
        for b in all.iter().filter(|b| b.0 < e && b.1 > s) {
            state = Some(match state {
                Some(false) => false,
                _ => b.2,
            });
        }
        let Some(tentative) = state else { continue };
        match out.last_mut() {
            Some(last) if last.1 == s && last.2 == tentative => last.1 = e,
            _ => out.push((s, e, tentative)),
        }
    }
    out
}

/// `2026-12-03T10:00:00`: a wall time of the zone.
fn local(z: &WinZone, t: i64) -> String {
    z.local(t).format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// A request time: with an offset as it says, without one in `z`.
pub fn read_time(v: &str, z: &WinZone) -> Option<i64> {
    let v = v.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Some(t.timestamp());
    }
    chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|t| z.utc_of(t))
}

fn free_busy_view(
    view: View,
    z: &WinZone,
    busy: &[Busy],
    (start, end): (i64, i64),
    slot: i64,
) -> Element {
    let mut v = Element::new(NS_M, "FreeBusyView")
        .with(Element::new(NS_T, "FreeBusyViewType").with_text(view.name));
    if view.merged {
        v.push(Element::new(NS_T, "MergedFreeBusy").with_text(merged(busy, start, end, slot)));
    }
    if view.events {
        let mut list = Element::new(NS_T, "CalendarEventArray");
        for &(s, e, tentative) in busy {
            list.push(
                Element::new(NS_T, "CalendarEvent")
                    .with(Element::new(NS_T, "StartTime").with_text(local(z, s)))
                    .with(Element::new(NS_T, "EndTime").with_text(local(z, e)))
                    .with(Element::new(NS_T, "BusyType").with_text(if tentative {
                        "Tentative"
                    } else {
                        "Busy"
                    })),
            );
        }
        v.push(list);
    }
    v.push(
        Element::new(NS_T, "WorkingHours")
            .with(z.element("TimeZone"))
            .with(
                Element::new(NS_T, "WorkingPeriodArray").with(
                    Element::new(NS_T, "WorkingPeriod")
                        .with(
                            Element::new(NS_T, "DayOfWeek")
                                .with_text("Monday Tuesday Wednesday Thursday Friday"),
                        )
                        .with(Element::new(NS_T, "StartTimeInMinutes").with_text("480"))
                        .with(Element::new(NS_T, "EndTimeInMinutes").with_text("1020")),
                ),
            ),
    );
    v
}

fn not_found(address: &str) -> Element {
    Element::new(NS_M, "FreeBusyResponse")
        .with(
            Element::new(NS_M, "ResponseMessage")
                .with_attr("ResponseClass", "Error")
                .with(Element::new(NS_M, "MessageText").with_text(format!(
                    "No free/busy is kept here for {address}: it is not a user or group of this server."
                )))
                .with(Element::new(NS_M, "ResponseCode").with_text("ErrorMailRecipientNotFound"))
                .with(Element::new(NS_M, "DescriptiveLinkKey").with_text("0")),
        )
        .with(
            Element::new(NS_M, "FreeBusyView")
                .with(Element::new(NS_T, "FreeBusyViewType").with_text("None")),
        )
}

fn fault(code: &'static str, text: &str) -> OpError {
    OpError::Fault(Fault::new(code, text))
}

pub async fn get_user_availability(ctx: &Ctx<'_>, op: &Element) -> OpResult {
    let z = match child_tm(op, "TimeZone") {
        Some(el) => WinZone::read(el).map_err(|e| fault("ErrorInvalidRequest", &e))?,
        None => WinZone::UTC,
    };
    let list = child_tm(op, "MailboxDataArray")
        .ok_or_else(|| invalid("GetUserAvailability needs MailboxDataArray."))?;
    let addresses: Vec<String> = list
        .children
        .iter()
        .filter(|m| m.name.local == "MailboxData")
        .map(|m| {
            m.child(NS_T, "Email")
                .and_then(|e| text_of(e, "Address"))
                .unwrap_or("")
                .to_string()
        })
        .collect();
    if addresses.is_empty() {
        return Err(invalid("MailboxDataArray names no mailbox."));
    }
    if addresses.len() > MAX_MAILBOXES {
        return Err(fault(
            "ErrorInvalidRequest",
            "At most 100 mailboxes can be asked for in one request.",
        ));
    }
    let Some(options) = child_tm(op, "FreeBusyViewOptions") else {
        // Suggestions only: not offered.
        return Err(fault(
            "ErrorInvalidRequest",
            "Only free/busy (FreeBusyViewOptions) is answered here; meeting suggestions are not.",
        ));
    };
    let window = options
        .child(NS_T, "TimeWindow")
        .ok_or_else(|| invalid("FreeBusyViewOptions needs a TimeWindow."))?;
    let time = |name| {
        text_of(window, name)
            .and_then(|v| read_time(v, &z))
            .ok_or_else(|| invalid(format!("The TimeWindow's {name} is not an xs:dateTime.")))
    };
    let (start, end) = (time("StartTime")?, time("EndTime")?);
    if start >= end {
        return Err(fault(
            "ErrorInvalidTimeInterval",
            "The TimeWindow's EndTime is not after its StartTime.",
        ));
    }
    if end - start > MAX_WINDOW {
        return Err(fault(
            "ErrorTimeIntervalTooBig",
            "The TimeWindow is longer than 42 days.",
        ));
    }
    let interval = match text_of(options, "MergedFreeBusyIntervalInMinutes") {
        None => 30,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (5..=1440).contains(&n) => n,
            _ => {
                return Err(invalid(
                    "MergedFreeBusyIntervalInMinutes must be from 5 to 1440.",
                ))
            }
        },
    };
    let view = View::parse(text_of(options, "RequestedView").unwrap_or("DetailedMerged"))
        .ok_or_else(|| invalid("RequestedView is not a free/busy view."))?;
    let principal = ctx.user.principal_id;
    let mut answers = ctx
        .backend
        .availability(principal, &addresses, start, end)
        .await?;
    let mut out = Element::new(NS_M, "FreeBusyResponseArray");
    for (address, busy) in addresses.iter().zip(answers.iter_mut()) {
        let busy = match busy.take() {
            Some(b) => Some(b),
            // Not a user: a group's members, merged.
            None if !address.trim().is_empty() => {
                match ctx.backend.recipient(principal, address).await? {
                    crate::Recipient::Group { members, .. } => {
                        let list: Vec<String> = members
                            .iter()
                            .filter(|m| !m.external)
                            .take(MAX_GROUP_MEMBERS)
                            .map(|m| m.email.clone())
                            .collect();
                        let all = ctx
                            .backend
                            .availability(principal, &list, start, end)
                            .await?;
                        Some(merge_all(all.into_iter().flatten().flatten().collect()))
                    }
                    _ => None,
                }
            }
            None => None,
        };
        let Some(mut busy) = busy else {
            out.push(not_found(address));
            continue;
        };
        busy.sort_unstable();
        out.push(
            Element::new(NS_M, "FreeBusyResponse")
                .with(
                    Element::new(NS_M, "ResponseMessage")
                        .with_attr("ResponseClass", "Success")
                        .with(Element::new(NS_M, "ResponseCode").with_text("NoError")),
                )
                .with(free_busy_view(view, &z, &busy, (start, end), interval * 60)),
        );
    }
    Ok(Element::new(NS_M, "GetUserAvailabilityResponse").with(out))
}

/// GetServerTimeZones: the zones asked for by id (Windows ids or IANA
/// names), or the common Windows zones ([`zone::LISTED`]).
pub fn get_server_time_zones(_ctx: &Ctx<'_>, op: &Element) -> OpResult {
    let full = !matches!(op.attr("ReturnFullTimeZoneData"), Some("false" | "0"));
    let wanted: Vec<String> = match child_tm(op, "Ids") {
        Some(ids) => ids
            .children
            .iter()
            .map(|i| i.text.trim().to_string())
            .collect(),
        None => zone::LISTED.iter().map(|s| s.to_string()).collect(),
    };
    if wanted.len() > 500 {
        return Err(invalid("Too many time zone ids in one request."));
    }
    let year = zone::this_year();
    let mut defs = Element::new(NS_M, "TimeZoneDefinitions");
    for id in &wanted {
        match zone::resolve(id) {
            Some(tz) => defs.push(zone::definition("TimeZoneDefinition", id, tz, year, full)),
            None => {
                return Ok(crate::soap::response(
                    "GetServerTimeZones",
                    vec![crate::soap::error(
                        "GetServerTimeZones",
                        "ErrorTimeZone",
                        format!("The time zone {id:?} is not known to this server."),
                    )],
                ))
            }
        }
    }
    Ok(crate::soap::response(
        "GetServerTimeZones",
        vec![crate::soap::success("GetServerTimeZones").with(defs)],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_digits_and_group_merge() {
        let h = 3600;
        let busy = [(h, 2 * h, false), (3 * h, 3 * h + 900, true)];
        assert_eq!(merged(&busy, 0, 4 * h, 1800), "00220010");
        assert_eq!(merged(&busy, 0, 4 * h, 3600), "0201");
        assert_eq!(merged(&[], 0, 3 * h, 3600), "000");
        let all = merge_all(vec![
            (0, 2 * h, true),
            (h, 3 * h, false),
            (3 * h, 4 * h, false),
            (5 * h, 6 * h, true),
        ]);
        assert_eq!(
            all,
            vec![(0, h, true), (h, 4 * h, false), (5 * h, 6 * h, true)]
        );
    }

    #[test]
    fn views_and_times() {
        assert_eq!(View::parse("Detailed").unwrap().name, "FreeBusy");
        assert!(View::parse("DetailedMerged").unwrap().merged);
        assert!(!View::parse("MergedOnly").unwrap().events);
        assert!(View::parse("None").is_none());
        let cet = WinZone {
            bias: -60,
            standard: None,
            daylight: None,
        };
        let t = outpost_pim::utc(2026, 12, 3, 9, 0, 0);
        assert_eq!(read_time("2026-12-03T10:00:00", &cet), Some(t));
        assert_eq!(read_time("2026-12-03T09:00:00Z", &cet), Some(t));
        assert_eq!(read_time("2026-12-03T10:00:00+01:00", &cet), Some(t));
        assert_eq!(local(&cet, t), "2026-12-03T10:00:00");
        assert_eq!(read_time("tomorrow", &cet), None);
    }
}
