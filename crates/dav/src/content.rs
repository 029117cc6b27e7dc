//! iCalendar and vCard for the DAV handlers, all through `outpost_pim`
//! (the one parser every protocol and the store use): how a collection's
//! settings become ingest options, which CalDAV/CardDAV precondition a
//! refusal is, and the few views the handlers read of a stored object.

use std::time::{SystemTime, UNIX_EPOCH};

use outpost_pim::{CalendarObject, IngestOptions, Limits, PimError, Window};

use crate::proto::{CompFilter, CALDAV, CARDDAV};
use crate::store::ComponentKind;

pub use outpost_pim::{Comp, Instance, Prop, VcardVersion};

/// Ingest options for a calendar whose `calendar-timezone` is `tz`:
/// floating times and dates are read in it (RFC 4791 §7.3), instances are
/// indexed over the store's window around now.
pub fn options(tz: Option<&str>, max_bytes: usize) -> IngestOptions {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut o = IngestOptions::new(now);
    o.limits.max_bytes = max_bytes;
    o.floating_tz = tz.and_then(outpost_pim::timezone_of_vtimezone);
    // What a PUT ingests is the store's index: finite series whole, as the
    // store's own ingest does, so a time range anywhere is an index lookup.
    o.whole_finite = true;
    o
}

/// Limits for reading objects already stored (accepted once, whatever the
/// size limit is now).
pub fn read_limits() -> Limits {
    Limits {
        max_bytes: usize::MAX,
        ..Limits::default()
    }
}

/// Options for reading a calendar's stored objects (its timezone resolved
/// once per request, not per object).
pub fn read_options(tz: Option<&str>) -> IngestOptions {
    let mut o = options(tz, usize::MAX);
    o.limits = read_limits();
    o.whole_finite = false;
    o
}

/// A stored calendar object, parsed for a query (not expanded).
pub fn stored_calendar(bytes: &[u8], opts: &IngestOptions) -> Option<CalendarObject> {
    outpost_pim::parse_icalendar(bytes, opts).ok()
}

/// The CalDAV precondition a refused calendar object answers (RFC 4791
/// §5.3.2.1): the data itself, or what a calendar object resource may hold.
pub fn calendar_refusal(e: &PimError) -> (&'static str, &'static str) {
    let c = match e {
        PimError::TooLarge { .. } => "max-resource-size",
        PimError::NoComponent
        | PimError::UnsupportedComponent(_)
        | PimError::MixedComponents(..)
        | PimError::MissingUid
        | PimError::MultipleUids(..)
        | PimError::DuplicateMaster
        | PimError::DuplicateRecurrenceId(_)
        | PimError::MethodNotAllowed => "valid-calendar-object-resource",
        PimError::NotUtf8
        | PimError::Parse(_)
        | PimError::TooManyComponents(_)
        | PimError::TooManyAttendees(_)
        | PimError::UnknownTimezone(_)
        | PimError::InvalidDates(_) => "valid-calendar-data",
    };
    (CALDAV, c)
}

/// The CardDAV precondition a refused vCard answers (RFC 6352 §6.3.2.1).
pub fn card_refusal(e: &PimError) -> (&'static str, &'static str) {
    match e {
        PimError::TooLarge { .. } => (CARDDAV, "max-resource-size"),
        _ => (CARDDAV, "valid-address-data"),
    }
}

/// The dav crate's name for a calendar object's kind.
pub fn kind_of(k: outpost_pim::ComponentKind) -> ComponentKind {
    match k {
        outpost_pim::ComponentKind::Event => ComponentKind::VEvent,
        outpost_pim::ComponentKind::Todo => ComponentKind::VTodo,
        outpost_pim::ComponentKind::Journal => ComponentKind::VJournal,
        outpost_pim::ComponentKind::Card => ComponentKind::VCard,
    }
}

/// The instances a calendar-query filter needs: over the span of its
/// time-ranges, none when it has none.
pub fn filter_instances(obj: &CalendarObject, filter: &CompFilter) -> Vec<Instance> {
    let mut span: Option<(Option<i64>, Option<i64>)> = None;
    collect_ranges(filter, &mut span);
    let Some((start, end)) = span else {
        return Vec::new();
    };
    obj.expand(Window::between(start, end), &read_limits())
        .map(|x| x.instances)
        .unwrap_or_default()
}

fn collect_ranges(f: &CompFilter, span: &mut Option<(Option<i64>, Option<i64>)>) {
    if let Some(tr) = f.time_range {
        *span = Some(match *span {
            None => (tr.start, tr.end),
            Some((s, e)) => (
                s.zip(tr.start).map(|(a, b)| a.min(b)),
                e.zip(tr.end).map(|(a, b)| a.max(b)),
            ),
        });
    }
    for c in &f.comps {
        collect_ranges(c, span);
    }
}

/// RFC 4791 §9.9: does an instance `[s, e)` overlap the range (either end
/// open)? A zero-length instance at `start` counts.
pub fn overlaps(inst_start: i64, inst_end: i64, start: Option<i64>, end: Option<i64>) -> bool {
    Window::between(start, end).overlaps(inst_start, inst_end)
}
