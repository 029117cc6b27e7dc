//! Which zone a VTIMEZONE stands for (RFC 5545 §3.6.5).
//!
//! The VTIMEZONE in an object defines its TZID. Most carry a name a tz
//! database knows (an IANA name, a Windows name, `X-LIC-LOCATION`,
//! `X-MICROSOFT-CDO-TZID`); that name is trusted. Outlook, Exchange and
//! sometimes iOS send zones under names no database knows
//! (`Customized Time Zone`, `(UTC+01:00) Amsterdam, Berlin, ...`): for those
//! the zone's own STANDARD/DAYLIGHT rules are computed and matched against
//! every zone of the tz database, over the two years the object starts in.
//! A zone whose UTC offsets agree on every sample is the one its times are
//! read in (a zone named after a city in the TZID is preferred, then the
//! database's order; zones that agree give the same UTC times). No match:
//! the TZID is unknown and ingest refuses it rather than guess.
//!
//! The source is never rewritten: the mapping only decides how times are
//! converted.

use std::str::FromStr;

use calcard::common::timezone::Tz;
use calcard::icalendar::{
    ICalendar, ICalendarComponentType, ICalendarFrequency, ICalendarParameterName,
    ICalendarParameterValue, ICalendarProperty, ICalendarValue, ICalendarWeekday,
};
use chrono::{Datelike, NaiveDate, NaiveDateTime, Offset, TimeZone, Weekday};

/// How one VTIMEZONE of an object resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub tzid: String,
    /// `None`: neither the name nor the rules give a known zone.
    pub tz: Option<Tz>,
    /// The zone came from matching the rules, not from the name: the
    /// expansion copy renames the TZID to the zone's own name so calcard
    /// reads it in that zone.
    pub by_rules: bool,
}

/// Every VTIMEZONE of `ical`, resolved. `year` is where the object's
/// times start (the rules are compared from there).
pub(crate) fn resolve_all(ical: &ICalendar, year: i32) -> Vec<Resolved> {
    (0..ical.components.len())
        .filter(|&i| ical.components[i].component_type == ICalendarComponentType::VTimezone)
        .filter_map(|i| resolve_at(ical, i, year))
        .collect()
}

/// The first tz database zone that `agrees`, trying first those named
/// after a city the TZID mentions.
fn best_match(tzid: &str, agrees: impl Fn(&chrono_tz::Tz) -> bool) -> Option<chrono_tz::Tz> {
    let words = tzid.to_ascii_lowercase();
    let city = |z: &chrono_tz::Tz| {
        let c = z.name().rsplit('/').next().unwrap_or("");
        c.len() > 2 && words.contains(&c.replace('_', " ").to_ascii_lowercase())
    };
    let zones = chrono_tz::TZ_VARIANTS.iter();
    zones
        .clone()
        .filter(|z| city(z))
        .find(|z| agrees(z))
        .or_else(|| zones.filter(|z| !city(z)).find(|z| agrees(z)))
        .copied()
}

/// The zone a name stands for without any VTIMEZONE.
pub(crate) fn by_name(name: &str) -> Option<Tz> {
    Tz::from_str(name).ok()
}

/// One STANDARD or DAYLIGHT block.
#[derive(Debug, Clone)]
struct Observance {
    /// Local onset (DTSTART).
    start: NaiveDateTime,
    from: i32,
    to: i32,
    rule: Option<YearlyRule>,
    /// RDATEs (local).
    rdates: Vec<NaiveDateTime>,
}

/// The yearly rules VTIMEZONEs use: a month and the nth (or last)
/// weekday in it, or a weekday within BYMONTHDAY days, or DTSTART's day.
#[derive(Debug, Clone)]
struct YearlyRule {
    month: u32,
    weekday: Option<(Weekday, i16)>,
    monthdays: Vec<i8>,
    until: Option<NaiveDateTime>,
    count: Option<u32>,
}

#[derive(Debug, Clone, Default)]
struct Rules {
    observances: Vec<Observance>,
}

impl Rules {
    fn first_year(&self) -> i32 {
        self.observances
            .iter()
            .map(|o| o.start.year())
            .min()
            .unwrap_or(1970)
    }

    /// Onsets (UTC seconds, offset before, offset after) up to the end of
    /// `year + 1`.
    fn onsets(&self, year: i32) -> Vec<(i64, i32, i32)> {
        let mut out = Vec::new();
        for o in &self.observances {
            let mut local: Vec<NaiveDateTime> = o.rdates.clone();
            local.push(o.start);
            if let Some(r) = &o.rule {
                let mut n = 0u32;
                for y in o.start.year()..year + 2 {
                    let Some(d) = r.day_in(y, o.start) else {
                        continue;
                    };
                    if d < o.start {
                        continue;
                    }
                    n += 1;
                    if r.until
                        .is_some_and(|u| d - chrono::TimeDelta::seconds(i64::from(o.from)) > u)
                        || r.count.is_some_and(|c| n > c)
                    {
                        break;
                    }
                    local.push(d);
                }
            }
            for l in local {
                if l.year() < year + 2 {
                    out.push((l.and_utc().timestamp() - i64::from(o.from), o.from, o.to));
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// The offset the rules give at `t` (UTC seconds).
    fn offset_at(onsets: &[(i64, i32, i32)], t: i64) -> i32 {
        match onsets.iter().rev().find(|o| o.0 <= t) {
            Some(o) => o.2,
            None => onsets.first().map_or(0, |o| o.1),
        }
    }

    /// (UTC instant, offset) pairs over `[year, year + 2)`: twice a month
    /// and two days either side of every onset.
    fn samples(&self, year: i32) -> Vec<(i64, i32)> {
        let onsets = self.onsets(year);
        let mut ts: Vec<i64> = Vec::new();
        for y in year..year + 2 {
            for m in 1..=12 {
                for d in [1, 15] {
                    if let Some(t) =
                        NaiveDate::from_ymd_opt(y, m, d).and_then(|d| d.and_hms_opt(12, 0, 0))
                    {
                        ts.push(t.and_utc().timestamp());
                    }
                }
            }
        }
        let (lo, hi) = (
            ts.first().copied().unwrap_or(0),
            ts.last().copied().unwrap_or(0),
        );
        for o in &onsets {
            if o.0 >= lo && o.0 <= hi {
                ts.push(o.0 - 2 * 86_400);
                ts.push(o.0 + 2 * 86_400);
            }
        }
        ts.into_iter()
            .map(|t| (t, Rules::offset_at(&onsets, t)))
            .collect()
    }
}

impl YearlyRule {
    /// The onset day of year `y`, at DTSTART's time of day.
    fn day_in(&self, y: i32, start: NaiveDateTime) -> Option<NaiveDateTime> {
        let time = start.time();
        let day = match (self.weekday, self.monthdays.is_empty()) {
            (Some((wd, n)), true) if n != 0 => nth_weekday(y, self.month, wd, n)?,
            (Some((wd, _)), _) => {
                let days: Vec<u32> = if self.monthdays.is_empty() {
                    (1..=31).collect()
                } else {
                    self.monthdays
                        .iter()
                        .filter(|&&d| d > 0)
                        .map(|&d| d as u32)
                        .collect()
                };
                days.into_iter()
                    .filter_map(|d| NaiveDate::from_ymd_opt(y, self.month, d))
                    .find(|d| d.weekday() == wd)?
            }
            (None, _) => {
                let d = self
                    .monthdays
                    .first()
                    .map(|&d| d as u32)
                    .unwrap_or(start.day());
                NaiveDate::from_ymd_opt(y, self.month, d)?
            }
        };
        Some(day.and_time(time))
    }
}

/// The `n`th (from the end when negative) `wd` of a month.
fn nth_weekday(y: i32, month: u32, wd: Weekday, n: i16) -> Option<NaiveDate> {
    if n > 0 {
        NaiveDate::from_weekday_of_month_opt(y, month, wd, n as u8)
    } else {
        let next = if month == 12 {
            NaiveDate::from_ymd_opt(y + 1, 1, 1)?
        } else {
            NaiveDate::from_ymd_opt(y, month + 1, 1)?
        };
        let mut d = next.pred_opt()?;
        while d.weekday() != wd {
            d = d.pred_opt()?;
        }
        d.checked_sub_days(chrono::Days::new(7 * (u64::from(n.unsigned_abs()) - 1)))
            .filter(|x| x.month() == month)
    }
}

fn naive_utc(t: i64) -> NaiveDateTime {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap_or_default()
        .naive_utc()
}

fn weekday(w: &ICalendarWeekday) -> Weekday {
    match w {
        ICalendarWeekday::Sunday => Weekday::Sun,
        ICalendarWeekday::Monday => Weekday::Mon,
        ICalendarWeekday::Tuesday => Weekday::Tue,
        ICalendarWeekday::Wednesday => Weekday::Wed,
        ICalendarWeekday::Thursday => Weekday::Thu,
        ICalendarWeekday::Friday => Weekday::Fri,
        ICalendarWeekday::Saturday => Weekday::Sat,
    }
}

fn local_time(v: Option<&ICalendarValue>) -> Option<NaiveDateTime> {
    let d = v?.as_partial_date_time()?;
    NaiveDate::from_ymd_opt(i32::from(d.year?), u32::from(d.month?), u32::from(d.day?))?
        .and_hms_opt(
            u32::from(d.hour.unwrap_or(0)),
            u32::from(d.minute.unwrap_or(0)),
            u32::from(d.second.unwrap_or(0)),
        )
}

fn utc_offset(c: &calcard::icalendar::ICalendarComponent, p: &ICalendarProperty) -> Option<i32> {
    let d = c.property(p)?.values.first()?.as_partial_date_time()?;
    let s = i32::from(d.tz_hour?) * 3600 + i32::from(d.tz_minute.unwrap_or(0)) * 60;
    Some(if d.tz_minus { -s } else { s })
}

/// The observances of the VTIMEZONE at index `id` of `ical`.
fn rules_in(ical: &ICalendar, id: usize) -> Rules {
    let Some(vt) = ical.components.get(id) else {
        return Rules::default();
    };
    let mut observances = Vec::new();
    for &cid in &vt.component_ids {
        let Some(c) = ical.components.get(cid as usize) else {
            continue;
        };
        if !matches!(
            c.component_type,
            ICalendarComponentType::Standard | ICalendarComponentType::Daylight
        ) {
            continue;
        }
        let (Some(start), Some(from), Some(to)) = (
            local_time(
                c.property(&ICalendarProperty::Dtstart)
                    .and_then(|e| e.values.first()),
            ),
            utc_offset(c, &ICalendarProperty::Tzoffsetfrom),
            utc_offset(c, &ICalendarProperty::Tzoffsetto),
        ) else {
            continue;
        };
        let rule = c
            .property(&ICalendarProperty::Rrule)
            .and_then(|e| e.values.first())
            .and_then(|v| match v {
                ICalendarValue::RecurrenceRule(r) => Some(r),
                _ => None,
            })
            .and_then(|r| {
                if r.freq != ICalendarFrequency::Yearly {
                    return None;
                }
                Some(YearlyRule {
                    month: r
                        .bymonth
                        .first()
                        .map(|m| u32::from(m.month()))
                        .unwrap_or(start.month()),
                    weekday: r
                        .byday
                        .first()
                        .map(|d| (weekday(&d.weekday), d.ordwk.unwrap_or(0))),
                    monthdays: r.bymonthday.clone(),
                    until: r.until.as_ref().and_then(|u| {
                        NaiveDate::from_ymd_opt(
                            i32::from(u.year?),
                            u32::from(u.month?),
                            u32::from(u.day?),
                        )?
                        .and_hms_opt(
                            u32::from(u.hour.unwrap_or(23)),
                            u32::from(u.minute.unwrap_or(59)),
                            u32::from(u.second.unwrap_or(59)),
                        )
                    }),
                    count: r.count,
                })
            });
        let rdates = c
            .properties(&ICalendarProperty::Rdate)
            .flat_map(|e| e.values.iter())
            .filter_map(|v| local_time(Some(v)))
            .collect();
        observances.push(Observance {
            start,
            from,
            to,
            rule,
            rdates,
        });
    }
    Rules { observances }
}

/// The zone of the VTIMEZONE at index `id` of `ical` (`None` when it has
/// no TZID).
pub(crate) fn resolve_at(ical: &ICalendar, id: usize, year: i32) -> Option<Resolved> {
    let vt = ical.components.get(id)?;
    let tzid = vt
        .property(&ICalendarProperty::Tzid)
        .and_then(|e| e.values.first())
        .and_then(|v| v.as_text())?
        .to_string();
    let named = vt.timezone().map(|(_, tz)| tz);
    if let Some(tz @ Tz::Tz(z)) = named {
        if !z.name().starts_with("Etc/") {
            return Some(Resolved {
                tzid,
                tz: Some(tz),
                by_rules: false,
            });
        }
    }
    let rules = rules_in(ical, id);
    if rules.observances.is_empty() {
        return Some(Resolved {
            tzid,
            tz: named,
            by_rules: false,
        });
    }
    let from = year.max(rules.first_year()).clamp(1970, 2200);
    let samples = rules.samples(from);
    let agrees = |z: &chrono_tz::Tz| {
        samples.iter().all(|&(t, off)| {
            z.offset_from_utc_datetime(&naive_utc(t))
                .fix()
                .local_minus_utc()
                == off
        })
    };
    if let Some(Tz::Tz(z)) = named {
        if agrees(&z) {
            return Some(Resolved {
                tzid,
                tz: named,
                by_rules: false,
            });
        }
    }
    let found = best_match(&tzid, agrees);
    Some(Resolved {
        tz: found.map(Tz::Tz),
        by_rules: found.is_some(),
        tzid,
    })
}

/// Rewrites, in an expansion copy, each TZID in `renames` (the VTIMEZONE's
/// own and every TZID parameter) to the name of the zone its rules
/// matched, so calcard reads those times in it.
pub(crate) fn apply_renames(ical: &mut ICalendar, renames: &[(String, String)]) {
    let new_name = |old: &str| {
        renames
            .iter()
            .find(|(from, _)| from == old)
            .map(|(_, to)| to.clone())
    };
    for c in &mut ical.components {
        for e in &mut c.entries {
            if e.name == ICalendarProperty::Tzid {
                for v in &mut e.values {
                    if let ICalendarValue::Text(t) = v {
                        if let Some(n) = new_name(t) {
                            *t = n;
                        }
                    }
                }
            }
            for p in &mut e.params {
                if p.name == ICalendarParameterName::Tzid {
                    if let ICalendarParameterValue::Text(t) = &mut p.value {
                        if let Some(n) = new_name(t) {
                            *t = n;
                        }
                    }
                }
            }
        }
    }
}
