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
        let mine: Vec<&Instance> = instances.iter().filter(|i| i.component == c.id).collect();
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

/// Texts of which every matching card contains at least one in a name,
/// nickname or e-mail address, when the filter says so: the candidates are
/// then the union of the store's contact searches for them (an index
/// lookup, not a read of every card), and the exact check decides.
///
/// - An allof filter (or one prop-filter) needs one prop-filter that can be
///   narrowed; an anyof filter needs all of them.
/// - A prop-filter on FN, N, NICKNAME or EMAIL, not is-not-defined, with
///   only text-matches: with allof, one usable text-match is enough; with
///   anyof, all must be usable.
/// - A usable text-match is not negated, ASCII (so a store's case folding,
///   SQL `lower()`, cannot miss a match), not empty and without `;`.
pub fn contact_search_texts(f: &CardFilter) -> Option<Vec<String>> {
    let usable = |tm: &crate::proto::TextMatch| {
        !tm.negate && tm.text.is_ascii() && !tm.text.contains(';') && !tm.text.trim().is_empty()
    };
    let prop_texts = |pf: &PropFilter| -> Option<Vec<String>> {
        let named = matches!(pf.name.as_str(), "FN" | "N" | "NICKNAME" | "EMAIL");
        if !named
            || pf.is_not_defined
            || !pf.params.is_empty()
            || pf.time_range.is_some()
            || pf.text_matches.is_empty()
        {
            return None;
        }
        if pf.all_of || pf.text_matches.len() == 1 {
            pf.text_matches
                .iter()
                .find(|tm| usable(tm))
                .map(|tm| vec![tm.text.clone()])
        } else if pf.text_matches.iter().all(usable) {
            Some(pf.text_matches.iter().map(|tm| tm.text.clone()).collect())
        } else {
            None
        }
    };
    if f.props.is_empty() {
        return None;
    }
    if f.all_of || f.props.len() == 1 {
        f.props.iter().find_map(prop_texts)
    } else {
        let mut all: Vec<String> = Vec::new();
        for pf in &f.props {
            for t in prop_texts(pf)? {
                if !all.contains(&t) {
                    all.push(t);
                }
            }
        }
        Some(all)
    }
}

#[cfg(test)]
mod tests {
    use super::contact_search_texts;
    use crate::proto::{parse_report, Report};

    fn texts(filter: &str) -> Option<Vec<String>> {
        let body = format!(
            r#"<C:addressbook-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav"><D:prop><D:getetag/></D:prop>{filter}</C:addressbook-query>"#
        );
        match parse_report(body.as_bytes()).unwrap() {
            Report::AddressbookQuery { filter, .. } => contact_search_texts(&filter),
            _ => panic!("not an addressbook-query"),
        }
    }

    fn tm(t: &str) -> String {
        format!(r#"<C:text-match match-type="contains">{t}</C:text-match>"#)
    }

    #[test]
    fn anyof_over_names_and_addresses_is_a_union() {
        let f = format!(
            r#"<C:filter test="anyof"><C:prop-filter name="FN">{a}</C:prop-filter><C:prop-filter name="EMAIL">{b}</C:prop-filter><C:prop-filter name="NICKNAME">{a}</C:prop-filter></C:filter>"#,
            a = tm("smi"),
            b = tm("smith@")
        );
        assert_eq!(
            texts(&f),
            Some(vec!["smi".to_string(), "smith@".to_string()])
        );
    }

    #[test]
    fn anyof_with_an_unindexed_property_reads_everything() {
        let f = format!(
            r#"<C:filter test="anyof"><C:prop-filter name="FN">{a}</C:prop-filter><C:prop-filter name="TEL">{a}</C:prop-filter></C:filter>"#,
            a = tm("55")
        );
        assert_eq!(texts(&f), None);
    }

    #[test]
    fn allof_needs_one_usable_match() {
        let f = format!(
            r#"<C:filter test="allof"><C:prop-filter name="TEL">{a}</C:prop-filter><C:prop-filter name="EMAIL">{b}</C:prop-filter></C:filter>"#,
            a = tm("55"),
            b = tm("bob")
        );
        assert_eq!(texts(&f), Some(vec!["bob".to_string()]));
        let negated = r#"<C:filter><C:prop-filter name="FN"><C:text-match negate-condition="yes">x</C:text-match></C:prop-filter></C:filter>"#;
        assert_eq!(texts(negated), None);
        let unicode = format!(
            r#"<C:filter><C:prop-filter name="FN">{}</C:prop-filter></C:filter>"#,
            tm("Émi")
        );
        assert_eq!(texts(&unicode), None);
        assert_eq!(texts(""), None);
    }
}
