//! DAV request bodies as typed values. No I/O: bytes in, a request or a
//! [`ProtoError`] out.

use outpost_xml::{parse, Element, Limits, Name, XmlError};

pub const DAV: &str = "DAV:";
pub const CALDAV: &str = "urn:ietf:params:xml:ns:caldav";
pub const CARDDAV: &str = "urn:ietf:params:xml:ns:carddav";
pub const CS: &str = "http://calendarserver.org/ns/";
pub const APPLE: &str = "http://apple.com/ns/ical/";

/// Why a body was refused: 400 with this text, or 413 for size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    #[error(transparent)]
    Xml(#[from] XmlError),
    #[error("{0}")]
    Bad(String),
}

fn bad<T>(s: impl Into<String>) -> Result<T, ProtoError> {
    Err(ProtoError::Bad(s.into()))
}

pub fn xml_limits() -> Limits {
    Limits {
        max_size: 1 << 20,
        max_depth: 32,
        max_elements: 20_000,
        max_attributes: 16,
        max_text: 512 << 10,
    }
}

fn body_root(body: &[u8]) -> Result<Option<Element>, ProtoError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(None);
    }
    Ok(Some(parse(body, &xml_limits())?))
}

/// What a PROPFIND (or a REPORT) asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropRequest {
    AllProp,
    PropName,
    /// The named properties, each with its request element (calendar-data
    /// and address-data carry options).
    Prop(Vec<Element>),
}

impl PropRequest {
    pub fn wants(&self, ns: &str, local: &str) -> Option<&Element> {
        match self {
            PropRequest::Prop(v) => v.iter().find(|e| e.is(ns, local)),
            _ => None,
        }
    }

    /// Whether an answer to this request can hold the property: a `prop`
    /// naming it, or `propname` (which lists every name). `allprop` does
    /// not hold the properties computed at a cost (DAV:acl, the RFC 4331
    /// quota properties: the handler's `answer` leaves them out), so those
    /// are computed only when this says so.
    pub fn asks_for(&self, ns: &str, local: &str) -> bool {
        match self {
            PropRequest::Prop(v) => v.iter().any(|e| e.is(ns, local)),
            PropRequest::PropName => true,
            PropRequest::AllProp => false,
        }
    }
}

fn prop_request_of(el: &Element) -> Option<PropRequest> {
    if let Some(p) = el.child(DAV, "prop") {
        return Some(PropRequest::Prop(p.children.clone()));
    }
    if el.child(DAV, "allprop").is_some() {
        return Some(PropRequest::AllProp);
    }
    if el.child(DAV, "propname").is_some() {
        return Some(PropRequest::PropName);
    }
    None
}

/// PROPFIND body; empty means allprop (RFC 4918 §9.1).
pub fn parse_propfind(body: &[u8]) -> Result<PropRequest, ProtoError> {
    let Some(root) = body_root(body)? else {
        return Ok(PropRequest::AllProp);
    };
    if !root.is(DAV, "propfind") {
        return bad("PROPFIND body must be DAV:propfind");
    }
    prop_request_of(&root).map_or_else(|| bad("DAV:propfind needs prop, allprop or propname"), Ok)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatchOp {
    Set(Element),
    Remove(Name),
}

/// PROPPATCH body: the operations in document order.
pub fn parse_proppatch(body: &[u8]) -> Result<Vec<PatchOp>, ProtoError> {
    let Some(root) = body_root(body)? else {
        return bad("PROPPATCH needs a DAV:propertyupdate body");
    };
    if !root.is(DAV, "propertyupdate") {
        return bad("PROPPATCH body must be DAV:propertyupdate");
    }
    let mut ops = Vec::new();
    for c in &root.children {
        let set = c.is(DAV, "set");
        if !set && !c.is(DAV, "remove") {
            continue;
        }
        for p in c.children_named(DAV, "prop") {
            for prop in &p.children {
                ops.push(if set {
                    PatchOp::Set(prop.clone())
                } else {
                    PatchOp::Remove(prop.name.clone())
                });
            }
        }
    }
    Ok(ops)
}

/// MKCOL (RFC 5689) / MKCALENDAR (RFC 4791 §5.3.1) body: the properties to
/// set, and for extended MKCOL the resource types asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MkcolRequest {
    pub props: Vec<Element>,
    pub resourcetype: Vec<Name>,
}

pub fn parse_mkcol(body: &[u8]) -> Result<MkcolRequest, ProtoError> {
    let Some(root) = body_root(body)? else {
        return Ok(MkcolRequest::default());
    };
    if !(root.is(DAV, "mkcol") || root.is(CALDAV, "mkcalendar")) {
        return bad("MKCOL body must be DAV:mkcol (MKCALENDAR: CALDAV:mkcalendar)");
    }
    let mut req = MkcolRequest::default();
    for set in root.children_named(DAV, "set") {
        for p in set.children_named(DAV, "prop") {
            for prop in &p.children {
                if prop.is(DAV, "resourcetype") {
                    req.resourcetype = prop.children.iter().map(|c| c.name.clone()).collect();
                } else {
                    req.props.push(prop.clone());
                }
            }
        }
    }
    Ok(req)
}

/// A text-match collation (RFC 4790 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collation {
    AsciiCasemap,
    UnicodeCasemap,
    Octet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchType {
    Equals,
    Contains,
    StartsWith,
    EndsWith,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextMatch {
    pub text: String,
    pub collation: Collation,
    pub negate: bool,
    pub match_type: MatchType,
}

impl TextMatch {
    pub fn matches(&self, value: &str) -> bool {
        let (v, t) = match self.collation {
            Collation::Octet => (value.to_string(), self.text.clone()),
            Collation::AsciiCasemap => (value.to_ascii_lowercase(), self.text.to_ascii_lowercase()),
            Collation::UnicodeCasemap => (value.to_lowercase(), self.text.to_lowercase()),
        };
        let m = match self.match_type {
            MatchType::Equals => v == t,
            MatchType::Contains => v.contains(&t),
            MatchType::StartsWith => v.starts_with(&t),
            MatchType::EndsWith => v.ends_with(&t),
        };
        m != self.negate
    }
}

/// Time range, UTC seconds; either end open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub start: Option<i64>,
    pub end: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamFilter {
    pub name: String,
    pub is_not_defined: bool,
    pub text_match: Option<TextMatch>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropFilter {
    pub name: String,
    pub is_not_defined: bool,
    pub time_range: Option<TimeRange>,
    pub text_matches: Vec<TextMatch>,
    pub params: Vec<ParamFilter>,
    /// CardDAV's test="allof" (default anyof); CalDAV is always allof.
    pub all_of: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompFilter {
    pub name: String,
    pub is_not_defined: bool,
    pub time_range: Option<TimeRange>,
    pub props: Vec<PropFilter>,
    pub comps: Vec<CompFilter>,
}

/// calendar-data options (RFC 4791 §9.6).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CalendarDataOptions {
    pub expand: Option<TimeRange>,
    pub limit_recurrence: Option<TimeRange>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardFilter {
    pub all_of: bool,
    pub props: Vec<PropFilter>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    CalendarMultiget {
        props: PropRequest,
        hrefs: Vec<String>,
    },
    CalendarQuery {
        props: PropRequest,
        filter: CompFilter,
    },
    FreeBusy(TimeRange),
    AddressbookMultiget {
        props: PropRequest,
        hrefs: Vec<String>,
    },
    AddressbookQuery {
        props: PropRequest,
        filter: CardFilter,
        limit: Option<usize>,
    },
    /// RFC 3744 9.4 principal-property-search: principals whose searched
    /// properties contain every `matches` text (`any`: one of them).
    PrincipalPropertySearch {
        props: PropRequest,
        matches: Vec<String>,
        any: bool,
    },
    SyncCollection {
        token: String,
        limit: Option<usize>,
        props: PropRequest,
    },
    /// A report this server does not do: 403 DAV:supported-report.
    Unsupported(Name),
}

pub fn parse_report(body: &[u8]) -> Result<Report, ProtoError> {
    let Some(root) = body_root(body)? else {
        return bad("REPORT needs a body");
    };
    let props = || prop_request_of(&root).unwrap_or(PropRequest::AllProp);
    let hrefs = || {
        root.children_named(DAV, "href")
            .map(|h| h.text.trim().to_string())
            .collect::<Vec<_>>()
    };
    Ok(if root.is(CALDAV, "calendar-multiget") {
        Report::CalendarMultiget {
            props: props(),
            hrefs: hrefs(),
        }
    } else if root.is(CARDDAV, "addressbook-multiget") {
        Report::AddressbookMultiget {
            props: props(),
            hrefs: hrefs(),
        }
    } else if root.is(CALDAV, "calendar-query") {
        let f = root
            .child(CALDAV, "filter")
            .and_then(|f| f.child(CALDAV, "comp-filter"))
            .ok_or_else(|| ProtoError::Bad("calendar-query needs filter/comp-filter".into()))?;
        Report::CalendarQuery {
            props: props(),
            filter: comp_filter(f, 0)?,
        }
    } else if root.is(CALDAV, "free-busy-query") {
        let tr = root
            .child(CALDAV, "time-range")
            .ok_or_else(|| ProtoError::Bad("free-busy-query needs time-range".into()))?;
        let tr = time_range(tr)?;
        if tr.start.is_none() || tr.end.is_none() {
            return bad("free-busy-query needs start and end");
        }
        Report::FreeBusy(tr)
    } else if root.is(CARDDAV, "addressbook-query") {
        let f = root.child(CARDDAV, "filter");
        let all_of = f.and_then(|f| f.attr("test")) == Some("allof");
        let mut pf = Vec::new();
        if let Some(f) = f {
            for p in f.children_named(CARDDAV, "prop-filter") {
                pf.push(prop_filter(p, CARDDAV)?);
            }
        }
        let limit = root
            .child(CARDDAV, "limit")
            .and_then(|l| l.child(CARDDAV, "nresults"))
            .map(|n| n.text.trim().parse::<usize>())
            .transpose()
            .map_err(|_| ProtoError::Bad("nresults is not a number".into()))?;
        Report::AddressbookQuery {
            props: props(),
            filter: CardFilter { all_of, props: pf },
            limit,
        }
    } else if root.is(DAV, "sync-collection") {
        let token = root
            .child(DAV, "sync-token")
            .map(|t| t.text.trim().to_string())
            .unwrap_or_default();
        if let Some(level) = root.child(DAV, "sync-level") {
            if level.text.trim() != "1" {
                return bad("only sync-level 1 is supported");
            }
        }
        let limit = root
            .child(DAV, "limit")
            .and_then(|l| l.child(DAV, "nresults"))
            .map(|n| n.text.trim().parse::<usize>())
            .transpose()
            .map_err(|_| ProtoError::Bad("nresults is not a number".into()))?;
        Report::SyncCollection {
            token,
            limit,
            props: props(),
        }
    } else if root.is(DAV, "principal-property-search") {
        let matches = root
            .children_named(DAV, "property-search")
            .filter_map(|p| p.child(DAV, "match"))
            .map(|m| m.text.trim().to_string())
            .collect();
        // Some clients (python caldav 3.x) send the wanted properties as
        // siblings of an empty DAV:prop; take those then.
        let wanted = match prop_request_of(&root) {
            Some(PropRequest::Prop(v)) if v.is_empty() => {
                let siblings: Vec<Element> = root
                    .children
                    .iter()
                    .filter(|c| !c.is(DAV, "property-search") && !c.is(DAV, "prop"))
                    .cloned()
                    .collect();
                PropRequest::Prop(siblings)
            }
            Some(p) => p,
            None => PropRequest::AllProp,
        };
        Report::PrincipalPropertySearch {
            props: wanted,
            matches,
            any: root.attr("test") == Some("anyof"),
        }
    } else {
        Report::Unsupported(root.name.clone())
    })
}

fn comp_filter(el: &Element, depth: usize) -> Result<CompFilter, ProtoError> {
    if depth > 8 {
        return bad("comp-filter nested too deep");
    }
    let name = el
        .attr("name")
        .ok_or_else(|| ProtoError::Bad("comp-filter without name".into()))?
        .to_ascii_uppercase();
    let mut f = CompFilter {
        name,
        is_not_defined: el.child(CALDAV, "is-not-defined").is_some(),
        time_range: el.child(CALDAV, "time-range").map(time_range).transpose()?,
        props: Vec::new(),
        comps: Vec::new(),
    };
    for c in &el.children {
        if c.is(CALDAV, "prop-filter") {
            f.props.push(prop_filter(c, CALDAV)?);
        } else if c.is(CALDAV, "comp-filter") {
            f.comps.push(comp_filter(c, depth + 1)?);
        }
    }
    Ok(f)
}

fn prop_filter(el: &Element, ns: &str) -> Result<PropFilter, ProtoError> {
    let name = el
        .attr("name")
        .ok_or_else(|| ProtoError::Bad("prop-filter without name".into()))?
        .to_ascii_uppercase();
    let mut f = PropFilter {
        name,
        is_not_defined: el.child(ns, "is-not-defined").is_some(),
        time_range: el.child(CALDAV, "time-range").map(time_range).transpose()?,
        text_matches: Vec::new(),
        params: Vec::new(),
        all_of: ns == CALDAV || el.attr("test") == Some("allof"),
    };
    for c in &el.children {
        if c.is(ns, "text-match") {
            f.text_matches.push(text_match(c, ns)?);
        } else if c.is(ns, "param-filter") {
            f.params.push(ParamFilter {
                name: c
                    .attr("name")
                    .ok_or_else(|| ProtoError::Bad("param-filter without name".into()))?
                    .to_ascii_uppercase(),
                is_not_defined: c.child(ns, "is-not-defined").is_some(),
                text_match: c
                    .child(ns, "text-match")
                    .map(|t| text_match(t, ns))
                    .transpose()?,
            });
        }
    }
    Ok(f)
}

/// Refused collations answer CALDAV/CARDDAV:supported-collation.
#[derive(Debug)]
pub struct UnsupportedCollation;

fn text_match(el: &Element, ns: &str) -> Result<TextMatch, ProtoError> {
    let collation = match el.attr("collation").unwrap_or("i;ascii-casemap") {
        "i;ascii-casemap" => Collation::AsciiCasemap,
        "i;unicode-casemap" => Collation::UnicodeCasemap,
        "i;octet" => Collation::Octet,
        other => return bad(format!("unsupported collation {other}")),
    };
    let negate = match el.attr("negate-condition") {
        Some("yes") => true,
        Some("no") | None => false,
        Some(o) => return bad(format!("negate-condition {o:?} is not yes or no")),
    };
    let match_type = if ns == CARDDAV {
        match el.attr("match-type").unwrap_or("contains") {
            "equals" => MatchType::Equals,
            "contains" => MatchType::Contains,
            "starts-with" => MatchType::StartsWith,
            "ends-with" => MatchType::EndsWith,
            o => return bad(format!("match-type {o:?} is not known")),
        }
    } else {
        MatchType::Contains
    };
    Ok(TextMatch {
        text: el.text.clone(),
        collation,
        negate,
        match_type,
    })
}

fn time_range(el: &Element) -> Result<TimeRange, ProtoError> {
    let get = |a: &str| {
        el.attr(a)
            .map(|v| {
                parse_utc(v).ok_or_else(|| {
                    ProtoError::Bad(format!("time-range {a}={v:?} is not a UTC date-time"))
                })
            })
            .transpose()
    };
    let tr = TimeRange {
        start: get("start")?,
        end: get("end")?,
    };
    if tr.start.is_none() && tr.end.is_none() {
        return bad("time-range needs start or end");
    }
    if let (Some(s), Some(e)) = (tr.start, tr.end) {
        if e <= s {
            return bad("time-range end is not after start");
        }
    }
    Ok(tr)
}

/// calendar-data's expand / limit-recurrence-set options.
pub fn calendar_data_options(el: &Element) -> Result<CalendarDataOptions, ProtoError> {
    Ok(CalendarDataOptions {
        expand: el.child(CALDAV, "expand").map(time_range).transpose()?,
        limit_recurrence: el
            .child(CALDAV, "limit-recurrence-set")
            .map(time_range)
            .transpose()?,
    })
}

/// `YYYYMMDDTHHMMSSZ` as UTC seconds.
pub fn parse_utc(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if !t.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, se) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se)
}

/// UTC seconds as `YYYYMMDDTHHMMSSZ`.
pub fn format_utc(t: i64) -> String {
    let days = t.div_euclid(86400);
    let secs = t.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests;
