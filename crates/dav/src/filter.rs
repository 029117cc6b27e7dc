//! calendar-query (RFC 4791 §9.7) and addressbook-query (RFC 6352 §10.5)
//! filters, evaluated on a parsed object. No I/O.

use crate::content::{overlaps, Comp, Instance, Prop};
use crate::proto::{parse_utc, CardFilter, CompFilter, ParamFilter, PropFilter};

/// Does the calendar object (its VCALENDAR `root`) match `filter` (a
/// comp-filter named VCALENDAR)?
pub fn calendar_matches(root: &Comp, instances: &[Instance], filter: &CompFilter) -> bool {
    if filter.name != root.name {
        return filter.is_not_defined;
    }
    if filter.is_not_defined {
        return false;
    }
    comp_body_matches(root, instances, filter)
}

fn comp_body_matches(c: &Comp, instances: &[Instance], f: &CompFilter) -> bool {
    if let Some(tr) = f.time_range {
        let mine: Vec<&Instance> = instances.iter().filter(|i| i.comp == c.id).collect();
        let ok = if mine.is_empty() {
            // RFC 4791 §9.9: a VTODO without any date matches every range.
            c.name == "VTODO"
        } else {
            mine.iter()
                .any(|i| overlaps(i.start, i.end, tr.start, tr.end))
        };
        if !ok {
            return false;
        }
    }
    f.props.iter().all(|pf| prop_filter_matches(&c.props, pf))
        && f.comps.iter().all(|cf| {
            let mut named = c.children.iter().filter(|k| k.name == cf.name);
            if cf.is_not_defined {
                named.next().is_none()
            } else {
                named.any(|k| comp_body_matches(k, instances, cf))
            }
        })
}

fn prop_filter_matches(props: &[Prop], pf: &PropFilter) -> bool {
    let mut named = props.iter().filter(|p| p.name == pf.name).peekable();
    if pf.is_not_defined {
        return named.peek().is_none();
    }
    named.any(|p| one_prop_matches(p, pf))
}

fn one_prop_matches(p: &Prop, pf: &PropFilter) -> bool {
    let mut tests: Vec<bool> = Vec::new();
    if let Some(tr) = pf.time_range {
        let t = parse_utc(p.value.trim());
        tests.push(t.is_some_and(|t| overlaps(t, t, tr.start, tr.end)));
    }
    for tm in &pf.text_matches {
        tests.push(tm.matches(&p.value));
    }
    for prm in &pf.params {
        tests.push(param_matches(&p.params, prm));
    }
    if tests.is_empty() {
        return true;
    }
    if pf.all_of {
        tests.iter().all(|t| *t)
    } else {
        tests.iter().any(|t| *t)
    }
}

fn param_matches(params: &[(String, String)], pf: &ParamFilter) -> bool {
    let mut named = params.iter().filter(|(n, _)| *n == pf.name).peekable();
    if pf.is_not_defined {
        return named.peek().is_none();
    }
    match &pf.text_match {
        None => named.peek().is_some(),
        Some(tm) => named.any(|(_, v)| v.split(',').any(|x| tm.matches(x))),
    }
}

/// Does the vCard (its properties) match the addressbook-query filter?
pub fn card_matches(props: &[Prop], f: &CardFilter) -> bool {
    if f.props.is_empty() {
        return true;
    }
    let mut results = f.props.iter().map(|pf| prop_filter_matches(props, pf));
    if f.all_of {
        results.all(|r| r)
    } else {
        results.any(|r| r)
    }
}

/// A text every matching card must contain in a name or e-mail address,
/// when the filter has one: a non-negated text-match on FN, N or EMAIL that
/// must hold (the only prop-filter, or one of an allof), in a property
/// filter with one test. ASCII only, so a store's case folding (SQL
/// `lower()`) cannot miss a match.
pub fn contact_search_text(f: &CardFilter) -> Option<String> {
    if f.props.len() != 1 && !f.all_of {
        return None;
    }
    f.props.iter().find_map(|pf| {
        let named = matches!(pf.name.as_str(), "FN" | "N" | "EMAIL");
        let single = pf.text_matches.len() == 1 && pf.params.is_empty() && pf.time_range.is_none();
        let tm = pf.text_matches.first()?;
        (named
            && single
            && !pf.is_not_defined
            && !tm.negate
            && tm.text.is_ascii()
            && !tm.text.contains(';')
            && !tm.text.trim().is_empty())
        .then(|| tm.text.clone())
    })
}
