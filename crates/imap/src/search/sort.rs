//! SORT (RFC 5256 section 3, RFC 5957 DISPLAYFROM/DISPLAYTO).

use std::cmp::Ordering;

use outpost_mailmeta::EnvelopeAddress;

use super::subject::extract;
use super::text::{decode_header_value, fold};
use super::MessageView;
use crate::codec::types::{SortCriterion, SortKey};

/// One message's value for one sort key.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Value {
    Int(i64),
    Text(String),
}

pub(crate) fn sort(criteria: &[SortCriterion], msgs: &[MessageView]) -> Vec<usize> {
    let keys: Vec<Vec<Value>> = msgs
        .iter()
        .map(|m| criteria.iter().map(|c| value(c.key, m)).collect())
        .collect();
    let mut order: Vec<usize> = (0..msgs.len()).collect();
    order.sort_by(|&a, &b| {
        for (i, c) in criteria.iter().enumerate() {
            let o = keys[a][i].cmp(&keys[b][i]);
            let o = if c.reverse { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        // RFC 5256: otherwise equal messages go in sequence order.
        msgs[a].seq.cmp(&msgs[b].seq)
    });
    order
}

fn value(key: SortKey, m: &MessageView) -> Value {
    let meta = m.meta;
    let env = meta.map(|m| &m.envelope);
    match key {
        SortKey::Arrival => Value::Int(m.info.internal_date),
        SortKey::Size => Value::Int(m.info.size),
        SortKey::Date => Value::Int(sent_date(m)),
        SortKey::Subject => Value::Text(fold(&base_subject_of(m))),
        SortKey::From => Value::Text(mailbox(env.map(|e| &e.from[..]))),
        SortKey::To => Value::Text(mailbox(env.map(|e| &e.to[..]))),
        SortKey::Cc => Value::Text(mailbox(env.map(|e| &e.cc[..]))),
        SortKey::DisplayFrom => Value::Text(display(env.map(|e| &e.from[..]))),
        SortKey::DisplayTo => Value::Text(display(env.map(|e| &e.to[..]))),
    }
}

/// RFC 5256 DATE: the Date: header in UTC, else the internal date.
pub(crate) fn sent_date(m: &MessageView) -> i64 {
    m.meta
        .and_then(|meta| meta.sent_date)
        .unwrap_or(m.info.internal_date)
}

/// The base subject of a message ("" when it has no Subject:).
pub(crate) fn base_subject_of(m: &MessageView) -> String {
    subject_of(m).map_or_else(String::new, |s| extract(&s).0)
}

pub(crate) fn subject_of(m: &MessageView) -> Option<String> {
    let meta = m.meta?;
    match (&meta.subject, &meta.envelope.subject) {
        (Some(s), _) => Some(s.clone()),
        (None, Some(raw)) => Some(decode_header_value(raw.as_bytes())),
        (None, None) => None,
    }
}

/// The first real address of a list (group markers skipped).
fn first(list: Option<&[EnvelopeAddress]>) -> Option<&EnvelopeAddress> {
    list?.iter().find(|a| a.host.is_some())
}

/// FROM/TO/CC: the local part of the first address, case-folded; empty
/// when there is none (RFC 5256: sorts first).
fn mailbox(list: Option<&[EnvelopeAddress]>) -> String {
    first(list)
        .and_then(|a| a.mailbox.as_deref())
        .map(fold)
        .unwrap_or_default()
}

/// RFC 5957: the display name of the first address, or its addr-spec when
/// the name is missing or empty.
fn display(list: Option<&[EnvelopeAddress]>) -> String {
    let Some(a) = first(list) else {
        return String::new();
    };
    match a.name.as_deref().map(str::trim) {
        Some(name) if !name.is_empty() => fold(name),
        _ => fold(&format!(
            "{}@{}",
            a.mailbox.as_deref().unwrap_or(""),
            a.host.as_deref().unwrap_or("")
        )),
    }
}
