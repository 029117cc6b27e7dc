//! SEARCH key evaluation for one message.

use std::cell::OnceCell;

use mail_parser::DateTime as MailDate;
use outpost_mailmeta::flags::{ANSWERED, DELETED, DRAFT, FLAGGED, SEEN};

use super::text::{
    body_text, contains_fold, decode_header_value, header_block, header_fields, header_text,
};
use super::{email_id, MessageView, SearchContext};
use crate::codec::types::{Date, SearchKey, SequenceSet};
use outpost_mailmeta::EnvelopeAddress;

const DAY: i64 = 86_400;

/// One message under evaluation, with the decoded text computed lazily.
pub(super) struct Evaluator<'m, 'a> {
    msg: &'m MessageView<'a>,
    ctx: &'m SearchContext<'m>,
    header: OnceCell<String>,
    body: OnceCell<String>,
}

impl<'m, 'a> Evaluator<'m, 'a> {
    pub(super) fn new(msg: &'m MessageView<'a>, ctx: &'m SearchContext<'m>) -> Self {
        Evaluator {
            msg,
            ctx,
            header: OnceCell::new(),
            body: OnceCell::new(),
        }
    }

    pub(super) fn matches(&self, key: &SearchKey) -> bool {
        use SearchKey as K;
        let info = self.msg.info;
        let flag = |f: i64| info.flags & f != 0;
        match key {
            K::All => true,
            K::Answered => flag(ANSWERED),
            K::Deleted => flag(DELETED),
            K::Draft => flag(DRAFT),
            K::Flagged => flag(FLAGGED),
            K::Seen => flag(SEEN),
            K::Unanswered => !flag(ANSWERED),
            K::Undeleted => !flag(DELETED),
            K::Undraft => !flag(DRAFT),
            K::Unflagged => !flag(FLAGGED),
            K::Unseen => !flag(SEEN),
            // \Recent is not tracked (RFC 9051 removed it): never recent, so
            // NEW (RECENT UNSEEN) matches nothing and OLD everything.
            K::Recent | K::New => false,
            K::Old => true,
            K::Keyword(k) => info.keywords.iter().any(|w| k.eq_ignore_case(w)),
            K::Unkeyword(k) => !info.keywords.iter().any(|w| k.eq_ignore_case(w)),
            K::Larger(n) => info.size.max(0) as u64 > *n,
            K::Smaller(n) => (info.size.max(0) as u64) < *n,
            K::Before(d) => utc_day(info.internal_date) < d.days_since_epoch(),
            K::On(d) => utc_day(info.internal_date) == d.days_since_epoch(),
            K::Since(d) => utc_day(info.internal_date) >= d.days_since_epoch(),
            K::SentBefore(d) => self.sent_day().is_some_and(|s| s < d.days_since_epoch()),
            K::SentOn(d) => self.sent_day().is_some_and(|s| s == d.days_since_epoch()),
            K::SentSince(d) => self.sent_day().is_some_and(|s| s >= d.days_since_epoch()),
            K::SavedBefore(d) => utc_day(self.save_date()) < d.days_since_epoch(),
            K::SavedOn(d) => utc_day(self.save_date()) == d.days_since_epoch(),
            K::SavedSince(d) => utc_day(self.save_date()) >= d.days_since_epoch(),
            K::SaveDateSupported => true,
            // RFC 5032: OLDER is strictly older, YOUNGER younger or equal.
            K::Older(secs) => self.ctx.now - info.internal_date > *secs as i64,
            K::Younger(secs) => self.ctx.now - info.internal_date <= *secs as i64,
            // Per-flag modseqs are not kept; the message's modseq is an
            // upper bound for each of them, which RFC 7162 3.1.5 allows.
            K::ModSeq { mod_seq, .. } => info.modseq.max(0) as u64 >= *mod_seq,
            K::EmailId(id) => email_id(info) == *id,
            K::ThreadId(_) => false,
            K::Uid(set) => self.in_set(set, uid32(info.uid), self.ctx.last_uid),
            K::SequenceSet(set) => self.in_set(set, self.msg.seq, self.ctx.last_seq),
            K::Not(k) => !self.matches(k),
            K::Or(a, b) => self.matches(a) || self.matches(b),
            K::And(keys) => keys.iter().all(|k| self.matches(k)),
            K::From(s) => self.address_matches(|m| &m.envelope.from, s),
            K::To(s) => self.address_matches(|m| &m.envelope.to, s),
            K::Cc(s) => self.address_matches(|m| &m.envelope.cc, s),
            K::Bcc(s) => self.address_matches(|m| &m.envelope.bcc, s),
            K::Subject(s) => self.msg.meta.is_some_and(|m| {
                let subject = match (&m.subject, &m.envelope.subject) {
                    (Some(decoded), _) => decoded.clone(),
                    (None, Some(raw)) => decode_header_value(raw.as_bytes()),
                    (None, None) => return false,
                };
                contains_fold(&subject, s)
            }),
            K::Header(name, s) => self.header_matches(name, s),
            K::Body(s) => self.body().is_some_and(|b| contains_fold(b, s)),
            K::Text(s) => {
                self.header().is_some_and(|h| contains_fold(h, s))
                    || self.body().is_some_and(|b| contains_fold(b, s))
            }
        }
    }

    fn in_set(&self, set: &SequenceSet, n: u32, last: u32) -> bool {
        match set {
            // `$` holds UIDs (RFC 5182), whether used as UID or sequence set.
            SequenceSet::Saved => self.ctx.saved.contains(&uid32(self.msg.info.uid)),
            _ => last > 0 && set.contains(n, last),
        }
    }

    /// The day of the Date: header in its own zone (RFC 3501: "disregarding
    /// time and timezone"); the internal date's UTC day when there is no
    /// usable Date:.
    fn sent_day(&self) -> Option<i64> {
        let meta = self.msg.meta?;
        let written = meta
            .envelope
            .date
            .as_deref()
            .and_then(MailDate::parse_rfc822)
            .filter(|d| d.is_valid());
        if let Some(d) = written {
            if let Ok(date) = Date::new(d.year, d.month, d.day) {
                return Some(date.days_since_epoch());
            }
        }
        Some(match meta.sent_date {
            Some(ts) => utc_day(ts),
            None => utc_day(self.msg.info.internal_date),
        })
    }

    /// RFC 8514: a message without a save date uses its internal date.
    fn save_date(&self) -> i64 {
        if self.msg.info.save_date > 0 {
            self.msg.info.save_date
        } else {
            self.msg.info.internal_date
        }
    }

    fn address_matches(
        &self,
        list: impl Fn(&outpost_mailmeta::MessageMeta) -> &Vec<EnvelopeAddress>,
        needle: &str,
    ) -> bool {
        let Some(meta) = self.msg.meta else {
            return false;
        };
        let list = list(meta);
        if needle.is_empty() {
            return !list.is_empty();
        }
        list.iter().any(|a| contains_fold(&address_text(a), needle))
    }

    fn header_matches(&self, name: &str, needle: &str) -> bool {
        let Some(raw) = self.msg.raw else {
            return false;
        };
        header_fields(header_block(raw))
            .into_iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .any(|(_, v)| needle.is_empty() || contains_fold(&decode_header_value(v), needle))
    }

    fn header(&self) -> Option<&str> {
        let raw = self.msg.raw?;
        Some(self.header.get_or_init(|| header_text(raw)))
    }

    fn body(&self) -> Option<&str> {
        let raw = self.msg.raw?;
        Some(self.body.get_or_init(|| body_text(raw)))
    }
}

/// An address as FROM/TO/CC/BCC search it: `Name <mailbox@host>`.
fn address_text(a: &EnvelopeAddress) -> String {
    let mut s = String::new();
    if let Some(name) = &a.name {
        s.push_str(name);
        s.push_str(" <");
    }
    if let Some(m) = &a.mailbox {
        s.push_str(m);
    }
    if let Some(h) = &a.host {
        s.push('@');
        s.push_str(h);
    }
    if a.name.is_some() {
        s.push('>');
    }
    s
}

fn utc_day(ts: i64) -> i64 {
    ts.div_euclid(DAY)
}

fn uid32(uid: i64) -> u32 {
    u32::try_from(uid).unwrap_or(0)
}
