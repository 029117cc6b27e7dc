//! The TIME_ZONE_INFORMATION blob of MS-ASDTYPE 2.7 (172 bytes, base64 in
//! Calendar:Timezone), built from an IANA zone's rules for one year and
//! matched back to an IANA zone.

use crate::Error;
use base64::Engine;
use chrono::{Datelike, NaiveDate, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// A SYSTEMTIME in its "recurring rule" form: month, day of week, week of
/// month (5 = last), hour, minute. All zero when there is no DST.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rule {
    pub month: u16,
    pub dow: u16,
    pub week: u16,
    pub hour: u16,
    pub minute: u16,
}

/// The decoded blob: biases in minutes (UTC = local + bias).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TimeZoneInfo {
    pub bias: i32,
    pub standard_name: String,
    pub standard: Rule,
    pub standard_bias: i32,
    pub daylight_name: String,
    pub daylight: Rule,
    pub daylight_bias: i32,
}

fn offset_min(tz: Tz, t: chrono::DateTime<Utc>) -> i32 {
    tz.offset_from_utc_datetime(&t.naive_utc())
        .fix()
        .local_minus_utc()
        / 60
}

/// The transitions of `tz` in `year`: (instant, offset before, offset after).
fn transitions(tz: Tz, year: i32) -> Vec<(chrono::DateTime<Utc>, i32, i32)> {
    let Some(start) = NaiveDate::from_ymd_opt(year, 1, 1) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut t = Utc.from_utc_datetime(&start.and_hms_opt(0, 0, 0).unwrap_or_default());
    let mut off = offset_min(tz, t);
    for _ in 0..366 {
        let next = t + chrono::Duration::days(1);
        let o = offset_min(tz, next);
        if o != off {
            // Narrow to the minute by bisection.
            let (mut lo, mut hi) = (t, next);
            while hi - lo > chrono::Duration::minutes(1) {
                let mid = lo + (hi - lo) / 2;
                if offset_min(tz, mid) == off {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            out.push((hi, off, o));
            off = o;
        }
        t = next;
    }
    out
}

fn rule_at(t: chrono::DateTime<Utc>, before: i32) -> Rule {
    let local = t.naive_utc() + chrono::Duration::minutes(before as i64);
    let day = local.day();
    let dim = days_in_month(local.year(), local.month());
    let week = if day + 7 > dim { 5 } else { (day - 1) / 7 + 1 };
    Rule {
        month: local.month() as u16,
        dow: local.weekday().num_days_from_sunday() as u16,
        week: week as u16,
        hour: local.hour() as u16,
        minute: local.minute() as u16,
    }
}

fn days_in_month(y: i32, m: u32) -> u32 {
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    match (
        NaiveDate::from_ymd_opt(ny, nm, 1),
        NaiveDate::from_ymd_opt(y, m, 1),
    ) {
        (Some(a), Some(b)) => (a - b).num_days() as u32,
        _ => 30,
    }
}

/// The blob's fields for `tz` in `year`.
pub fn info_for(tz: Tz, year: i32) -> TimeZoneInfo {
    let tr = transitions(tz, year);
    let jan = Utc.with_ymd_and_hms(year.clamp(1, 9998), 1, 1, 0, 0, 0);
    let name: String = tz.name().chars().take(31).collect();
    // Two transitions, one into DST and one out: a rule. Otherwise the
    // offset standing at the start of the year.
    if tr.len() == 2 {
        let (a, b) = (tr[0], tr[1]);
        let (to_dst, to_std) = if a.2 > a.1 { (a, b) } else { (b, a) };
        let std = to_std.2;
        let dst = to_dst.2;
        return TimeZoneInfo {
            bias: -std,
            standard_name: name.clone(),
            standard: rule_at(to_std.0, to_std.1),
            standard_bias: 0,
            daylight_name: name,
            daylight: rule_at(to_dst.0, to_dst.1),
            daylight_bias: -(dst - std),
        };
    }
    let off = match jan {
        chrono::LocalResult::Single(t) => offset_min(tz, t),
        _ => 0,
    };
    TimeZoneInfo {
        bias: -off,
        standard_name: name.clone(),
        daylight_name: name,
        ..TimeZoneInfo::default()
    }
}

fn put_name(out: &mut Vec<u8>, s: &str) {
    let mut units: Vec<u16> = s.encode_utf16().take(31).collect();
    units.resize(32, 0);
    for u in units {
        out.extend_from_slice(&u.to_le_bytes());
    }
}

fn put_rule(out: &mut Vec<u8>, r: &Rule) {
    for v in [0, r.month, r.dow, r.week, r.hour, r.minute, 0, 0] {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

impl TimeZoneInfo {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut o = Vec::with_capacity(172);
        o.extend_from_slice(&self.bias.to_le_bytes());
        put_name(&mut o, &self.standard_name);
        put_rule(&mut o, &self.standard);
        o.extend_from_slice(&self.standard_bias.to_le_bytes());
        put_name(&mut o, &self.daylight_name);
        put_rule(&mut o, &self.daylight);
        o.extend_from_slice(&self.daylight_bias.to_le_bytes());
        o
    }

    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.to_bytes())
    }

    pub fn from_base64(s: &str) -> Result<TimeZoneInfo, Error> {
        let b = base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .map_err(|_| Error::Invalid("Timezone is not base64".into()))?;
        TimeZoneInfo::from_bytes(&b)
    }

    pub fn from_bytes(b: &[u8]) -> Result<TimeZoneInfo, Error> {
        if b.len() != 172 {
            return Err(Error::Invalid("Timezone blob is not 172 bytes".into()));
        }
        let i32_at = |i: usize| i32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        let name_at = |i: usize| {
            let units: Vec<u16> = (0..32)
                .map(|k| u16_at(i + 2 * k))
                .take_while(|&u| u != 0)
                .collect();
            String::from_utf16_lossy(&units)
        };
        let rule_at = |i: usize| Rule {
            month: u16_at(i + 2),
            dow: u16_at(i + 4),
            week: u16_at(i + 6),
            hour: u16_at(i + 8),
            minute: u16_at(i + 10),
        };
        let info = TimeZoneInfo {
            bias: i32_at(0),
            standard_name: name_at(4),
            standard: rule_at(68),
            standard_bias: i32_at(84),
            daylight_name: name_at(88),
            daylight: rule_at(152),
            daylight_bias: i32_at(168),
        };
        let sane =
            |r: &Rule| r.month <= 12 && r.dow <= 6 && r.week <= 5 && r.hour <= 23 && r.minute <= 59;
        if info.bias.abs() > 14 * 60
            || info.standard_bias.abs() > 180
            || info.daylight_bias.abs() > 180
            || !sane(&info.standard)
            || !sane(&info.daylight)
        {
            return Err(Error::Invalid("Timezone blob out of range".into()));
        }
        Ok(info)
    }

    fn same_rules(&self, o: &TimeZoneInfo) -> bool {
        let has_dst = |i: &TimeZoneInfo| i.daylight.month != 0 && i.daylight_bias != 0;
        if self.bias != o.bias || has_dst(self) != has_dst(o) {
            return false;
        }
        !has_dst(self)
            || (self.standard == o.standard
                && self.daylight == o.daylight
                && self.daylight_bias == o.daylight_bias)
    }

    /// The IANA zone this blob describes in `year`: the zone named in
    /// StandardName (IANA or a known Windows id) when its rules agree, else
    /// the first zone, preferring canonical Area/City names, with the
    /// same bias and rules. `None` for UTC-like blobs with no match.
    pub fn to_iana(&self, year: i32) -> Option<Tz> {
        let named = self
            .standard_name
            .parse::<Tz>()
            .ok()
            .or_else(|| windows_zone(&self.standard_name));
        if let Some(tz) = named {
            if info_for(tz, year).same_rules(self) {
                return Some(tz);
            }
        }
        let mut fallback = None;
        for tz in PREFERRED.iter().filter_map(|n| n.parse::<Tz>().ok()) {
            if info_for(tz, year).same_rules(self) {
                return Some(tz);
            }
        }
        for tz in chrono_tz::TZ_VARIANTS.iter().copied() {
            let n = tz.name();
            if !n.contains('/') || n.starts_with("Etc/") || n.starts_with("US/") {
                continue;
            }
            // Cheap test first: the standard offset is the January or the
            // July one.
            let probe = |m: u32| {
                Utc.with_ymd_and_hms(year.clamp(1, 9998), m, 15, 12, 0, 0)
                    .single()
                    .map(|t| -offset_min(tz, t))
            };
            if probe(1) != Some(self.bias) && probe(7) != Some(self.bias) {
                continue;
            }
            if info_for(tz, year).same_rules(self) {
                fallback = Some(tz);
                break;
            }
        }
        fallback
    }
}

/// Zones tried first when matching a blob by its rules (the commonest zone
/// for each rule set, so a Berlin blob does not come back as Africa/Ceuta).
const PREFERRED: &[&str] = &[
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Helsinki",
    "Europe/Moscow",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Asia/Dubai",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Asia/Singapore",
    "Australia/Sydney",
    "Australia/Brisbane",
    "Australia/Adelaide",
    "Pacific/Auckland",
];

/// The zone a TZID names: an IANA name (also behind a "/mozilla.org/..."
/// style prefix) or a common Windows id.
pub fn zone_named(tzid: &str) -> Option<Tz> {
    let t = tzid.trim().trim_matches('"');
    t.parse::<Tz>()
        .ok()
        .or_else(|| windows_zone(t))
        .or_else(|| {
            // "/mozilla.org/20050126_1/Europe/Berlin": the last two segments.
            let parts: Vec<&str> = t.rsplitn(3, '/').collect();
            match parts.as_slice() {
                [city, area, _] => format!("{area}/{city}").parse().ok(),
                _ => None,
            }
        })
}

/// The common Windows zone ids (CLDR windowsZones, territory 001).
fn windows_zone(name: &str) -> Option<Tz> {
    let iana = match name {
        "UTC" | "Coordinated Universal Time" => "UTC",
        "GMT Standard Time" => "Europe/London",
        "W. Europe Standard Time" => "Europe/Berlin",
        "Romance Standard Time" => "Europe/Paris",
        "Central Europe Standard Time" => "Europe/Budapest",
        "Central European Standard Time" => "Europe/Warsaw",
        "FLE Standard Time" => "Europe/Kiev",
        "GTB Standard Time" => "Europe/Bucharest",
        "Russian Standard Time" => "Europe/Moscow",
        "Eastern Standard Time" => "America/New_York",
        "Central Standard Time" => "America/Chicago",
        "Mountain Standard Time" => "America/Denver",
        "US Mountain Standard Time" => "America/Phoenix",
        "Pacific Standard Time" => "America/Los_Angeles",
        "Alaskan Standard Time" => "America/Anchorage",
        "Hawaiian Standard Time" => "Pacific/Honolulu",
        "India Standard Time" => "Asia/Kolkata",
        "China Standard Time" => "Asia/Shanghai",
        "Tokyo Standard Time" => "Asia/Tokyo",
        "AUS Eastern Standard Time" => "Australia/Sydney",
        "E. Australia Standard Time" => "Australia/Brisbane",
        "New Zealand Standard Time" => "Pacific/Auckland",
        _ => return None,
    };
    iana.parse().ok()
}
