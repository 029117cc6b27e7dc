//! SEARCH, SORT and THREAD evaluation over stored messages (pure: no I/O).
//!
//! The session loads what [`needs`] asks for (nothing, the stored
//! [`MessageMeta`], or the raw blob as well), wraps each message in a
//! [`MessageView`] and calls [`matches`], [`sort`] or [`thread`].
//!
//! Standards: RFC 3501 6.4.4 / RFC 9051 6.4.4 (SEARCH), RFC 5032 (WITHIN),
//! RFC 5182 (SEARCHRES `$`), RFC 7162 (MODSEQ), RFC 8514 (SAVEDATE),
//! RFC 8474 (OBJECTID), RFC 5256 (SORT, THREAD), RFC 5957 (SORT=DISPLAY),
//! RFC 9228 (THREAD=REFS).

use crate::storage::MessageInfo;
use outpost_mailmeta::MessageMeta;

use crate::codec::response::ThreadTree;
use crate::codec::types::{SearchKey, SortCriterion, SortKey, ThreadAlgorithm};

mod eval;
mod sort;
mod subject;
mod text;
mod thread;

#[cfg(test)]
mod tests;

/// IMAP `SEARCH TEXT`'s test, for the other protocols' free-text search
/// (ActiveSync Search, later EWS and JMAP): `needle` in any decoded header
/// field or any text part of the body, case-insensitively.
pub fn text_matches(raw: &[u8], needle: &str) -> bool {
    text::contains_fold(&text::header_text(raw), needle)
        || text::contains_fold(&text::body_text(raw), needle)
}

/// One message as the evaluator sees it.
#[derive(Debug, Clone, Copy)]
pub struct MessageView<'a> {
    /// Message sequence number in the session's view.
    pub seq: u32,
    pub info: &'a MessageInfo,
    /// Required when [`Needs::meta`] (or SORT/THREAD) asked for it; keys that
    /// need it do not match when it is `None`.
    pub meta: Option<&'a MessageMeta>,
    /// The whole message as stored; required when [`Needs::raw`].
    pub raw: Option<&'a [u8]>,
}

/// Mailbox-wide facts a search key may refer to.
#[derive(Debug, Clone, Copy)]
pub struct SearchContext<'a> {
    /// Highest message sequence number (`*` in a sequence set).
    pub last_seq: u32,
    /// Highest UID in the mailbox (`*` in a UID set).
    pub last_uid: u32,
    /// UIDs saved by `SEARCH RETURN (SAVE)` (RFC 5182), what `$` stands for.
    pub saved: &'a [u32],
    /// Current time, seconds since the epoch (for OLDER/YOUNGER).
    pub now: i64,
}

/// What must be loaded for each message before evaluating a key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// The stored [`MessageMeta`] (envelope, subject, sent date).
    pub meta: bool,
    /// The raw message (HEADER, BODY, TEXT).
    pub raw: bool,
}

/// Which number a THREAD response names messages by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadIds {
    /// Message sequence numbers (THREAD).
    Seq,
    /// UIDs (UID THREAD).
    Uid,
}

/// What [`matches`] needs loaded to evaluate `key`.
pub fn needs(key: &SearchKey) -> Needs {
    use SearchKey as K;
    match key {
        K::Bcc(_)
        | K::Cc(_)
        | K::From(_)
        | K::To(_)
        | K::Subject(_)
        | K::SentBefore(_)
        | K::SentOn(_)
        | K::SentSince(_) => Needs {
            meta: true,
            raw: false,
        },
        K::Header(..) | K::Body(_) | K::Text(_) => Needs {
            meta: false,
            raw: true,
        },
        K::Not(k) => needs(k),
        K::Or(a, b) => needs(a).or(needs(b)),
        K::And(keys) => keys.iter().fold(Needs::default(), |n, k| n.or(needs(k))),
        _ => Needs::default(),
    }
}

/// Whether `key` looks only at what a [`crate::storage::FlagRow`] holds
/// (UID, system flags, keywords, modseq) and at message numbers: such a
/// search reads the mailbox's flag rows, one set-based read of an index,
/// not its message rows (`SEARCH UNSEEN`, `UID SEARCH KEYWORD $Junk`, a
/// client's `SEARCH MODSEQ` resync on a large mailbox).
pub fn flags_suffice(key: &SearchKey) -> bool {
    use SearchKey as K;
    match key {
        K::All
        | K::Answered
        | K::Deleted
        | K::Draft
        | K::Flagged
        | K::Seen
        | K::Unanswered
        | K::Undeleted
        | K::Undraft
        | K::Unflagged
        | K::Unseen
        | K::Recent
        | K::New
        | K::Old
        | K::Keyword(_)
        | K::Unkeyword(_)
        | K::ModSeq { .. }
        | K::Uid(_)
        | K::SequenceSet(_)
        | K::SaveDateSupported => true,
        K::Not(k) => flags_suffice(k),
        K::Or(a, b) => flags_suffice(a) && flags_suffice(b),
        K::And(keys) => keys.iter().all(flags_suffice),
        _ => false,
    }
}

impl Needs {
    /// Both sets of needs together.
    pub fn or(self, other: Needs) -> Needs {
        Needs {
            meta: self.meta || other.meta,
            raw: self.raw || other.raw,
        }
    }
}

/// What [`sort`] needs loaded for `criteria` (meta for any envelope key).
pub fn sort_needs(criteria: &[SortCriterion]) -> Needs {
    Needs {
        meta: criteria
            .iter()
            .any(|c| !matches!(c.key, SortKey::Arrival | SortKey::Size)),
        raw: false,
    }
}

/// Whether `msg` satisfies `key` (RFC 3501/9051 6.4.4 and extensions).
///
/// Keys needing data the view lacks (see [`needs`]) do not match. Decoded
/// header and body text is computed at most once per call.
pub fn matches(key: &SearchKey, msg: &MessageView, ctx: &SearchContext) -> bool {
    eval::Evaluator::new(msg, ctx).matches(key)
}

/// The OBJECTID EMAILID of a message: "M" and the first 24 hex digits of
/// its blob hash (the same content gives the same id, as RFC 8474 allows).
pub fn email_id(info: &MessageInfo) -> String {
    let hex: String = info.blob_hash.chars().take(24).collect();
    format!("M{hex}")
}

/// The base subject of RFC 5256 section 2.1: encoded words decoded,
/// whitespace runs folded to one space, `Re:`/`Fw:`/`Fwd:` leaders (with
/// any `[blob]`s), `(fwd)` trailers and `[fwd: ...]` wrappers removed.
/// Case is kept; SORT and THREAD compare base subjects case-insensitively.
pub fn base_subject(subject: &str) -> String {
    subject::extract(subject).0
}

/// SORT (RFC 5256, RFC 5957): indices into `msgs` in sorted order. Strings
/// compare case-insensitively; FROM/TO/CC use the first address's local
/// part, DISPLAYFROM/DISPLAYTO its display name (else the address); DATE
/// is the Date: header, else the internal date. Messages equal on every
/// criterion go in sequence-number order. `meta` must be loaded for any
/// key but ARRIVAL and SIZE (see [`sort_needs`]).
pub fn sort(criteria: &[SortCriterion], msgs: &[MessageView]) -> Vec<usize> {
    sort::sort(criteria, msgs)
}

/// THREAD (RFC 5256 ORDEREDSUBJECT and REFERENCES, RFC 9228 REFS) over
/// `msgs` (the messages that matched the search; `meta` must be loaded).
/// Returns the top-level threads in response order, naming messages by
/// sequence number or UID as `ids` says. Dates are Date: header dates
/// (internal date when missing); REFS orders threads by their latest
/// message.
pub fn thread(alg: ThreadAlgorithm, msgs: &[MessageView], ids: ThreadIds) -> Vec<ThreadTree> {
    match alg {
        ThreadAlgorithm::OrderedSubject => thread::ordered_subject(msgs, ids),
        ThreadAlgorithm::References => thread::references(msgs, ids, true),
        ThreadAlgorithm::Refs => thread::references(msgs, ids, false),
    }
}
