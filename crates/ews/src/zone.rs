//! Time zones as EWS carries them.
//!
//! Two forms: the Windows TIME_ZONE_INFORMATION form of GetUserAvailability
//! and WorkingHours (`t:TimeZone` with `Bias`, `StandardTime`,
//! `DaylightTime`: a base bias and two yearly transitions), read into a
//! [`WinZone`] that converts between UTC and the zone's wall time; and the
//! `TimeZoneDefinition` of GetServerTimeZones and of calendar items'
//! `StartTimeZone` (an id, periods and transitions), written from a
//! chrono-tz zone's rules for the current year. Zone ids are Windows ids
//! (`W. Europe Standard Time`) or IANA names, resolved as iCalendar TZIDs
//! are ([`outpost_pim::resolve_tzid`]: calcard's Windows map).

use chrono::{Datelike, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use outpost_xml::Element;

use crate::soap::NS_T;

/// Windows' names of the days, Sunday first (its numbering).
pub const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// One yearly transition: at `hour:minute:second` wall time (in the
/// offset before it) on the `day_order`th (5: last) `weekday` (0: Sunday)
/// of `month`, the bias becomes the base bias plus `bias`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub bias: i32,
    pub month: u32,
    pub day_order: u32,
    pub weekday: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

/// A zone in Windows' form. Biases are minutes: UTC = local + bias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WinZone {
    pub bias: i32,
    pub standard: Option<Transition>,
    pub daylight: Option<Transition>,
}

impl WinZone {
    pub const UTC: WinZone = WinZone {
        bias: 0,
        standard: None,
        daylight: None,
    };

    /// Reads a `t:TimeZone` (or `t:SerializableTimeZone`) element.
    pub fn read(el: &Element) -> Result<WinZone, String> {
        let num = |e: &Element, name: &str| -> Result<i32, String> {
            e.child(NS_T, name)
                .ok_or_else(|| format!("The time zone has no {name}."))?
                .text
                .trim()
                .parse::<i32>()
                .map_err(|_| format!("The time zone's {name} is not a number."))
        };
        let bias = num(el, "Bias")?;
        let transition = |name: &str| -> Result<Option<Transition>, String> {
            let Some(t) = el.child(NS_T, name) else {
                return Ok(None);
            };
            let time = t
                .child(NS_T, "Time")
                .map(|x| x.text.trim().to_string())
                .unwrap_or_default();
            let mut hms = time.split(':').map(|p| p.parse::<u32>().unwrap_or(0));
            let (hour, minute, second) = (
                hms.next().unwrap_or(0),
                hms.next().unwrap_or(0),
                hms.next().unwrap_or(0),
            );
            let day = t
                .child(NS_T, "DayOfWeek")
                .map(|x| x.text.trim().to_string())
                .unwrap_or_default();
            let weekday = WEEKDAYS
                .iter()
                .position(|w| w.eq_ignore_ascii_case(&day))
                .ok_or_else(|| format!("{name} has no DayOfWeek."))?
                as u32;
            let order = num(t, "DayOrder")?;
            let month = num(t, "Month")?;
            if !(0..=12).contains(&month) || !(-1..=5).contains(&order) || hour > 23 {
                return Err(format!("{name} is out of range."));
            }
            Ok(Some(Transition {
                bias: num(t, "Bias")?,
                month: month as u32,
                // -1 is "last" in some EWS parts, 5 in others.
                day_order: if order <= 0 { 5 } else { order as u32 },
                weekday,
                hour,
                minute: minute.min(59),
                second: second.min(59),
            }))
        };
        let zone = WinZone {
            bias,
            standard: transition("StandardTime")?,
            daylight: transition("DaylightTime")?,
        };
        if bias.abs() > 24 * 60 {
            return Err("The time zone's Bias is out of range.".into());
        }
        Ok(zone)
    }

    /// The zone's rules in `year`, from chrono-tz (the rules of
    /// ActiveSync's TIME_ZONE_INFORMATION, [`outpost_easconv::tz`]).
    pub fn of(tz: Tz, year: i32) -> WinZone {
        let info = outpost_easconv::tz::info_for(tz, year);
        let t = |r: &outpost_easconv::tz::Rule, bias: i32| Transition {
            bias,
            month: r.month.into(),
            day_order: r.week.into(),
            weekday: r.dow.into(),
            hour: r.hour.into(),
            minute: r.minute.into(),
            second: 0,
        };
        if info.standard.month == 0 || info.daylight.month == 0 {
            return WinZone {
                bias: info.bias,
                standard: None,
                daylight: None,
            };
        }
        WinZone {
            bias: info.bias,
            standard: Some(t(&info.standard, info.standard_bias)),
            daylight: Some(t(&info.daylight, info.daylight_bias)),
        }
    }

    /// Both transitions, when the zone has daylight time at all.
    fn rules(&self) -> Option<(Transition, Transition)> {
        match (self.standard, self.daylight) {
            (Some(s), Some(d)) if s.month != 0 && d.month != 0 && s.bias != d.bias => Some((s, d)),
            _ => None,
        }
    }

    /// Minutes east of UTC at the instant `utc` (unix seconds).
    pub fn offset_at(&self, utc: i64) -> i32 {
        let std_bias = self.bias + self.standard.map_or(0, |s| s.bias);
        let Some((s, d)) = self.rules() else {
            return -std_bias;
        };
        let dst_bias = self.bias + d.bias;
        let year = chrono::DateTime::from_timestamp(utc - i64::from(std_bias) * 60, 0)
            .map_or(1970, |t| t.year());
        // The instants of the two transitions this year: into daylight
        // time at its wall time in standard time, and back.
        let (Some(on), Some(off)) = (instant(year, &d, std_bias), instant(year, &s, dst_bias))
        else {
            return -std_bias;
        };
        let daylight = if on < off {
            utc >= on && utc < off
        } else {
            utc >= on || utc < off
        };
        -(if daylight { dst_bias } else { std_bias })
    }

    /// The wall time at `utc`.
    pub fn local(&self, utc: i64) -> NaiveDateTime {
        let t = utc + i64::from(self.offset_at(utc)) * 60;
        chrono::DateTime::from_timestamp(t, 0)
            .unwrap_or_default()
            .naive_utc()
    }

    /// The instant of a wall time (the earlier one when it is ambiguous;
    /// a time in the gap is read with the offset before it).
    pub fn utc_of(&self, local: NaiveDateTime) -> i64 {
        let naive = local.and_utc().timestamp();
        let std_off = -(self.bias + self.standard.map_or(0, |s| s.bias));
        let dst_off = self.rules().map_or(std_off, |(_, d)| -(self.bias + d.bias));
        let fits = [std_off, dst_off]
            .into_iter()
            .map(|off| naive - i64::from(off) * 60)
            .filter(|&t| {
                let off = self.offset_at(t);
                t + i64::from(off) * 60 == naive
            })
            .min();
        // In the gap of a change forward: the offset before it, the
        // smaller one.
        fits.unwrap_or(naive - i64::from(std_off.min(dst_off)) * 60)
    }

    /// The zone as a `t:{local}` element in the availability form.
    pub fn element(&self, local: &str) -> Element {
        let none = Transition {
            bias: 0,
            month: 0,
            day_order: 0,
            weekday: 0,
            hour: 0,
            minute: 0,
            second: 0,
        };
        let (s, d) = self.rules().unwrap_or((none, none));
        let tr = |name: &str, t: Transition| {
            Element::new(NS_T, name)
                .with(Element::new(NS_T, "Bias").with_text(t.bias.to_string()))
                .with(
                    Element::new(NS_T, "Time")
                        .with_text(format!("{:02}:{:02}:{:02}", t.hour, t.minute, t.second)),
                )
                .with(Element::new(NS_T, "DayOrder").with_text(t.day_order.to_string()))
                .with(Element::new(NS_T, "Month").with_text(t.month.to_string()))
                .with(Element::new(NS_T, "DayOfWeek").with_text(WEEKDAYS[t.weekday as usize % 7]))
        };
        Element::new(NS_T, local)
            .with(Element::new(NS_T, "Bias").with_text(self.bias.to_string()))
            .with(tr("StandardTime", s))
            .with(tr("DaylightTime", d))
    }
}

/// The `order`th (5: last) `weekday` of a month, as a date.
fn nth_weekday(year: i32, month: u32, weekday: u32, order: u32) -> Option<NaiveDate> {
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    let shift = (weekday + 7 - first.weekday().num_days_from_sunday()) % 7;
    let mut day = first + chrono::Duration::days(i64::from(shift));
    for _ in 1..order.clamp(1, 5) {
        let next = day + chrono::Duration::days(7);
        if next.month() != month {
            break;
        }
        day = next;
    }
    Some(day)
}

/// The instant of a transition in `year`, its wall time read with
/// `bias_before`.
fn instant(year: i32, t: &Transition, bias_before: i32) -> Option<i64> {
    let day = nth_weekday(year, t.month, t.weekday, t.day_order)?;
    let wall = day.and_hms_opt(t.hour.min(23), t.minute.min(59), t.second.min(59))?;
    Some(wall.and_utc().timestamp() + i64::from(bias_before) * 60)
}

/// The zone an id names: a Windows id or an IANA name.
pub fn resolve(id: &str) -> Option<Tz> {
    match outpost_pim::resolve_tzid(id.trim())? {
        outpost_pim::calcard::common::timezone::Tz::Tz(tz) => Some(tz),
        outpost_pim::calcard::common::timezone::Tz::Fixed(f) if f.local_minus_utc() == 0 => {
            Some(Tz::UTC)
        }
        _ => None,
    }
}

/// The Windows zones GetServerTimeZones lists when no ids are asked for
/// (CLDR windowsZones, territory 001, the commonly used ones); each is
/// resolved as a TZID is, so the list holds no offsets of its own.
pub const LISTED: &[&str] = &[
    "Dateline Standard Time",
    "Hawaiian Standard Time",
    "Alaskan Standard Time",
    "Pacific Standard Time",
    "US Mountain Standard Time",
    "Mountain Standard Time",
    "Central America Standard Time",
    "Central Standard Time",
    "Canada Central Standard Time",
    "SA Pacific Standard Time",
    "Eastern Standard Time",
    "Atlantic Standard Time",
    "Newfoundland Standard Time",
    "E. South America Standard Time",
    "Argentina Standard Time",
    "Greenland Standard Time",
    "Azores Standard Time",
    "UTC",
    "GMT Standard Time",
    "Greenwich Standard Time",
    "W. Europe Standard Time",
    "Central Europe Standard Time",
    "Romance Standard Time",
    "Central European Standard Time",
    "W. Central Africa Standard Time",
    "GTB Standard Time",
    "Egypt Standard Time",
    "South Africa Standard Time",
    "FLE Standard Time",
    "Israel Standard Time",
    "Turkey Standard Time",
    "Russian Standard Time",
    "Arab Standard Time",
    "E. Africa Standard Time",
    "Iran Standard Time",
    "Arabian Standard Time",
    "Afghanistan Standard Time",
    "Pakistan Standard Time",
    "India Standard Time",
    "Nepal Standard Time",
    "Bangladesh Standard Time",
    "SE Asia Standard Time",
    "China Standard Time",
    "Singapore Standard Time",
    "Taipei Standard Time",
    "Tokyo Standard Time",
    "Korea Standard Time",
    "Cen. Australia Standard Time",
    "AUS Central Standard Time",
    "E. Australia Standard Time",
    "AUS Eastern Standard Time",
    "West Pacific Standard Time",
    "New Zealand Standard Time",
    "Tonga Standard Time",
];

fn duration(minutes: i32) -> String {
    let sign = if minutes < 0 { "-" } else { "" };
    let m = minutes.unsigned_abs();
    match (m / 60, m % 60) {
        (0, 0) => "PT0M".to_string(),
        (h, 0) => format!("{sign}PT{h}H"),
        (0, mm) => format!("{sign}PT{mm}M"),
        (h, mm) => format!("{sign}PT{h}H{mm}M"),
    }
}

/// `(UTC+01:00) Europe/Berlin`: the display name of a zone.
pub fn display_name(tz: Tz, year: i32) -> String {
    let z = WinZone::of(tz, year);
    let off = -(z.bias + z.standard.map_or(0, |s| s.bias));
    if off == 0 && z.rules().is_none() {
        return format!("(UTC) {}", tz.name());
    }
    let sign = if off < 0 { '-' } else { '+' };
    format!(
        "(UTC{sign}{:02}:{:02}) {}",
        off.unsigned_abs() / 60,
        off.unsigned_abs() % 60,
        tz.name()
    )
}

/// A `t:TimeZoneDefinition` (Exchange 2010 form) for the zone `id`
/// resolves to, with periods and transitions when `full`.
pub fn definition(local: &str, id: &str, tz: Tz, year: i32, full: bool) -> Element {
    let mut el = Element::new(NS_T, local)
        .with_attr("Id", id)
        .with_attr("Name", display_name(tz, year));
    if !full {
        return el;
    }
    let z = WinZone::of(tz, year);
    let std_id = format!("trule:Outpost/{id}/{year}-Standard");
    let dst_id = format!("trule:Outpost/{id}/{year}-Daylight");
    let to = |kind: &str, target: &str| {
        Element::new(NS_T, "To")
            .with_attr("Kind", kind)
            .with_text(target)
    };
    let mut periods = Element::new(NS_T, "Periods");
    let mut group = Element::new(NS_T, "TransitionsGroup").with_attr("Id", "0");
    match z.rules() {
        Some((s, d)) => {
            periods.push(
                Element::new(NS_T, "Period")
                    .with_attr("Bias", duration(z.bias + s.bias))
                    .with_attr("Name", "Standard")
                    .with_attr("Id", std_id.clone()),
            );
            periods.push(
                Element::new(NS_T, "Period")
                    .with_attr("Bias", duration(z.bias + d.bias))
                    .with_attr("Name", "Daylight")
                    .with_attr("Id", dst_id.clone()),
            );
            for (t, target) in [(d, &dst_id), (s, &std_id)] {
                group.push(
                    Element::new(NS_T, "RecurringDayTransition")
                        .with(to("Period", target))
                        .with(
                            Element::new(NS_T, "TimeOffset")
                                .with_text(duration((t.hour * 60 + t.minute) as i32)),
                        )
                        .with(Element::new(NS_T, "Month").with_text(t.month.to_string()))
                        .with(
                            Element::new(NS_T, "DayOfWeek")
                                .with_text(WEEKDAYS[t.weekday as usize % 7]),
                        )
                        .with(
                            Element::new(NS_T, "Occurrence").with_text(if t.day_order >= 5 {
                                "-1".to_string()
                            } else {
                                t.day_order.to_string()
                            }),
                        ),
                );
            }
        }
        None => {
            periods.push(
                Element::new(NS_T, "Period")
                    .with_attr("Bias", duration(z.bias))
                    .with_attr("Name", "Standard")
                    .with_attr("Id", std_id.clone()),
            );
            group.push(Element::new(NS_T, "Transition").with(to("Period", &std_id)));
        }
    }
    el.push(periods);
    el.push(Element::new(NS_T, "TransitionsGroups").with(group));
    el.push(
        Element::new(NS_T, "Transitions")
            .with(Element::new(NS_T, "Transition").with(to("Group", "0"))),
    );
    el
}

/// The zone of a calendar item's `StartTimeZone`/`EndTimeZone` or of the
/// request's `TimeZoneContext`: its `Id` attribute resolved.
pub fn of_definition(el: &Element) -> Option<Tz> {
    el.attr("Id").and_then(resolve)
}

/// The Windows id of `tz` among [`LISTED`] (the one that resolves to this
/// very zone), as Exchange names a user's zone; `None` for a zone that
/// is not the main one of its Windows zone (Europe/Copenhagen is
/// "Romance Standard Time", which means Europe/Paris).
pub fn windows_id(tz: Tz) -> Option<&'static str> {
    LISTED.iter().copied().find(|id| resolve(id) == Some(tz))
}

/// The current year, for rules written out.
pub fn this_year() -> i32 {
    chrono::Utc::now().year()
}

/// `tz`'s wall time at `utc`.
pub fn wall(tz: Tz, utc: i64) -> NaiveDateTime {
    tz.timestamp_opt(utc, 0)
        .single()
        .map(|t| t.naive_local())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(xml: &str) -> Element {
        outpost_xml::parse(
            format!(r#"<t:TimeZone xmlns:t="{NS_T}">{xml}</t:TimeZone>"#).as_bytes(),
            &Default::default(),
        )
        .unwrap()
    }

    #[test]
    fn windows_form_converts_like_the_iana_zone() {
        // What exchangelib sends for Europe/Copenhagen.
        let z = WinZone::read(&el(
            "<t:Bias>-60</t:Bias>\
             <t:StandardTime><t:Bias>0</t:Bias><t:Time>03:00:00</t:Time><t:DayOrder>5</t:DayOrder><t:Month>10</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek></t:StandardTime>\
             <t:DaylightTime><t:Bias>-60</t:Bias><t:Time>02:00:00</t:Time><t:DayOrder>5</t:DayOrder><t:Month>3</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek></t:DaylightTime>",
        ))
        .unwrap();
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        assert_eq!(z, WinZone::of(berlin, 2026));
        for t in [
            outpost_pim::utc(2026, 1, 15, 12, 0, 0),
            outpost_pim::utc(2026, 3, 29, 0, 59, 0),
            outpost_pim::utc(2026, 3, 29, 1, 0, 0),
            outpost_pim::utc(2026, 7, 1, 12, 0, 0),
            outpost_pim::utc(2026, 10, 25, 0, 59, 0),
            outpost_pim::utc(2026, 10, 25, 2, 0, 0),
        ] {
            assert_eq!(z.local(t), wall(berlin, t), "{t}");
            assert_eq!(z.utc_of(z.local(t)), t);
        }
        // 02:30 on the day back happens twice: the first is taken; 02:30
        // on the day forward never happens: read as 03:30 summer time.
        let d = |y, m, dd, h, mi| {
            NaiveDate::from_ymd_opt(y, m, dd)
                .unwrap()
                .and_hms_opt(h, mi, 0)
                .unwrap()
        };
        assert_eq!(
            z.utc_of(d(2026, 10, 25, 2, 30)),
            outpost_pim::utc(2026, 10, 25, 0, 30, 0)
        );
        assert_eq!(
            z.utc_of(d(2026, 3, 29, 2, 30)),
            outpost_pim::utc(2026, 3, 29, 1, 30, 0)
        );
        // Southern hemisphere: daylight time over the new year.
        let sydney: Tz = "Australia/Sydney".parse().unwrap();
        let s = WinZone::of(sydney, 2026);
        for m in 1..=12 {
            let t = outpost_pim::utc(2026, m, 10, 6, 0, 0);
            assert_eq!(s.local(t), wall(sydney, t), "month {m}");
        }
        let utc = WinZone::read(&el("<t:Bias>0</t:Bias>")).unwrap();
        assert_eq!(utc.offset_at(0), 0);
        assert!(WinZone::read(&el("<t:Bias>x</t:Bias>")).is_err());
    }

    #[test]
    fn definitions_carry_periods_and_transitions() {
        let berlin = resolve("W. Europe Standard Time").unwrap();
        assert_eq!(berlin.name(), "Europe/Berlin");
        let d = definition(
            "TimeZoneDefinition",
            "W. Europe Standard Time",
            berlin,
            2026,
            true,
        );
        let xml = outpost_xml::write(&d, &[(NS_T, "t")]);
        assert!(xml.contains(r#"Bias="-PT1H" Name="Standard""#), "{xml}");
        assert!(xml.contains(r#"Bias="-PT2H" Name="Daylight""#), "{xml}");
        assert!(xml.contains("<t:Occurrence>-1</t:Occurrence>"), "{xml}");
        assert!(xml.contains(r#"<t:To Kind="Group">0</t:To>"#), "{xml}");
        for id in LISTED {
            assert!(resolve(id).is_some(), "{id}");
        }
        assert_eq!(resolve("UTC"), Some(Tz::UTC));
        assert_eq!(resolve("Nowhere Standard Time"), None);
    }
}
