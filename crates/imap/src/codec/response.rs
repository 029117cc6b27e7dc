//! Server responses and their serialisation into a `Vec<u8>`.
//!
//! Strings are written as quoted strings when that is safe and as literals
//! otherwise (CR, LF, NUL, `"`, `\`, or 8-bit text to a client that has not
//! enabled UTF8=ACCEPT). Mailbox names are written in modified UTF-7 unless
//! UTF8=ACCEPT is on. Both choices come from [`Encoder`].

use super::types::*;
use super::utf7;

/// Encoding state that depends on the session: whether UTF8=ACCEPT is
/// enabled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Encoder {
    pub utf8_accept: bool,
}

/// A response code in `[...]` (RFC 3501, 5530, 4315, 7162, 7889, 8474, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    Alert,
    BadCharset(Vec<String>),
    Capability(Vec<String>),
    Parse,
    /// `PERMANENTFLAGS (flags [\*])`.
    PermanentFlags {
        flags: Vec<Flag>,
        keywords_allowed: bool,
    },
    ReadOnly,
    ReadWrite,
    TryCreate,
    UidNext(u32),
    UidValidity(u32),
    Unseen(u32),
    AppendUid {
        uid_validity: u32,
        uids: SequenceSet,
    },
    CopyUid {
        uid_validity: u32,
        source: SequenceSet,
        destination: SequenceSet,
    },
    UidNotSticky,
    HighestModSeq(u64),
    NoModSeq,
    Modified(SequenceSet),
    Closed,
    TooBig,
    OverQuota,
    Nonexistent,
    AlreadyExists,
    AuthenticationFailed,
    AuthorizationFailed,
    Expired,
    PrivacyRequired,
    ContactAdmin,
    NoPerm,
    InUse,
    ExpungeIssued,
    Corruption,
    ServerBug,
    ClientBug,
    Cannot,
    Limit,
    Unavailable,
    HasChildren,
    UseAttr,
    NotSaved,
    MailboxId(String),
    /// Any other code: an atom and optional text.
    Other(Atom, Option<String>),
}

/// OK, NO, BAD, PREAUTH, BYE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusKind {
    Ok,
    No,
    Bad,
    PreAuth,
    Bye,
}

/// A status response: tagged (`a1 OK ...`) or untagged (`* OK ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusResponse {
    pub tag: Option<Tag>,
    pub kind: StatusKind,
    pub code: Option<Code>,
    pub text: String,
}

impl StatusResponse {
    fn make(tag: Option<Tag>, kind: StatusKind, text: impl Into<String>) -> Self {
        StatusResponse {
            tag,
            kind,
            code: None,
            text: text.into(),
        }
    }

    pub fn ok(tag: Option<Tag>, text: impl Into<String>) -> Self {
        Self::make(tag, StatusKind::Ok, text)
    }

    pub fn no(tag: Option<Tag>, text: impl Into<String>) -> Self {
        Self::make(tag, StatusKind::No, text)
    }

    pub fn bad(tag: Option<Tag>, text: impl Into<String>) -> Self {
        Self::make(tag, StatusKind::Bad, text)
    }

    pub fn bye(text: impl Into<String>) -> Self {
        Self::make(None, StatusKind::Bye, text)
    }

    pub fn preauth(text: impl Into<String>) -> Self {
        Self::make(None, StatusKind::PreAuth, text)
    }

    pub fn with_code(mut self, code: impl Into<Option<Code>>) -> Self {
        self.code = code.into();
        self
    }
}

/// A continuation request (`+ text` or `+ base64`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Continuation {
    Text(String),
    /// A SASL challenge; written as base64 (empty gives `+ `).
    Base64(Vec<u8>),
}

/// Untagged data (`* ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    Capability(Vec<String>),
    Enabled(Vec<String>),
    Exists(u32),
    Recent(u32),
    Expunge(u32),
    /// QRESYNC: `* VANISHED [(EARLIER)] uids`.
    Vanished {
        earlier: bool,
        uids: SequenceSet,
    },
    Flags(Vec<Flag>),
    List(ListItem),
    Lsub(ListItem),
    Status {
        mailbox: Mailbox,
        items: Vec<StatusValue>,
    },
    /// `* SEARCH n...` with CONDSTORE's `(MODSEQ n)`.
    Search {
        ids: Vec<u32>,
        mod_seq: Option<u64>,
    },
    ESearch(ESearch),
    Sort {
        ids: Vec<u32>,
        mod_seq: Option<u64>,
    },
    /// `* THREAD` followed by the threads; each tree is one top-level
    /// thread.
    Thread(Vec<ThreadTree>),
    Fetch {
        seq: u32,
        items: Vec<FetchValue>,
    },
    Namespace {
        personal: Vec<NamespaceEntry>,
        other: Vec<NamespaceEntry>,
        shared: Vec<NamespaceEntry>,
    },
    Quota {
        root: String,
        resources: Vec<QuotaResource>,
    },
    QuotaRoot {
        mailbox: Mailbox,
        roots: Vec<String>,
    },
    Id(Option<Vec<(String, Option<String>)>>),
}

/// One mailbox in a LIST/LSUB response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListItem {
    pub attributes: Vec<MailboxAttr>,
    /// The hierarchy delimiter; `None` for a flat namespace.
    pub delimiter: Option<char>,
    pub mailbox: Mailbox,
    /// `("CHILDINFO" ("SUBSCRIBED"))` for RECURSIVEMATCH.
    pub child_info_subscribed: bool,
    /// `("OLDNAME" ("name"))` (RFC 9051 after RENAME).
    pub old_name: Option<Mailbox>,
}

impl ListItem {
    pub fn new(mailbox: Mailbox, delimiter: Option<char>, attributes: Vec<MailboxAttr>) -> Self {
        ListItem {
            attributes,
            delimiter,
            mailbox,
            child_info_subscribed: false,
            old_name: None,
        }
    }
}

/// A STATUS item with its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusValue {
    Messages(u32),
    Recent(u32),
    UidNext(u32),
    UidValidity(u32),
    Unseen(u32),
    HighestModSeq(u64),
    Size(u64),
    /// `None` writes NIL (no limit).
    AppendLimit(Option<u64>),
    Deleted(u32),
    MailboxId(String),
}

/// `* ESEARCH (TAG "a") UID MIN 1 ...` (RFC 4731).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ESearch {
    pub tag: Option<Tag>,
    pub uid: bool,
    pub min: Option<u32>,
    pub max: Option<u32>,
    pub all: Option<SequenceSet>,
    pub count: Option<u32>,
    pub mod_seq: Option<u64>,
    /// RFC 9394: the range asked for and the matching set (`None` → NIL).
    pub partial: Option<((i32, i32), Option<SequenceSet>)>,
}

impl ESearch {
    pub fn new(tag: Option<Tag>, uid: bool) -> Self {
        ESearch {
            tag,
            uid,
            min: None,
            max: None,
            all: None,
            count: None,
            mod_seq: None,
            partial: None,
        }
    }
}

/// A thread: a message (or a missing parent, `id: None`) and its replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadTree {
    pub id: Option<u32>,
    pub children: Vec<ThreadTree>,
}

/// `("prefix" "delim")` in NAMESPACE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceEntry {
    pub prefix: String,
    pub delimiter: Option<char>,
}

/// `STORAGE usage limit` in QUOTA (usage and limit in the resource's unit;
/// STORAGE is in KiB).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaResource {
    pub name: Atom,
    pub usage: u64,
    pub limit: u64,
}

/// One item of a FETCH response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchValue {
    Flags(Vec<Flag>),
    Uid(u32),
    InternalDate(DateTime),
    Rfc822Size(u64),
    Envelope(Box<Envelope>),
    /// BODY: the structure without extension data.
    Body(Box<BodyStructure>),
    BodyStructure(Box<BodyStructure>),
    /// `BODY[section]<origin> data`; `data: None` writes NIL.
    BodySection {
        section: Section,
        origin: Option<u32>,
        data: Option<Vec<u8>>,
    },
    /// `BINARY[part]<origin> data`, as literal8 when it holds NUL.
    Binary {
        part: Vec<u32>,
        origin: Option<u32>,
        data: Option<Vec<u8>>,
    },
    BinarySize {
        part: Vec<u32>,
        size: u64,
    },
    Rfc822(Option<Vec<u8>>),
    Rfc822Header(Option<Vec<u8>>),
    Rfc822Text(Option<Vec<u8>>),
    ModSeq(u64),
    EmailId(String),
    /// `None` writes NIL (the server does not thread this message).
    ThreadId(Option<String>),
    SaveDate(Option<DateTime>),
}

/// ENVELOPE (RFC 3501 7.4.2). Text fields carry the header as it is in the
/// message (encoded words are not decoded); an empty address list is NIL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    pub date: Option<String>,
    pub subject: Option<String>,
    pub from: Vec<Address>,
    pub sender: Vec<Address>,
    pub reply_to: Vec<Address>,
    pub to: Vec<Address>,
    pub cc: Vec<Address>,
    pub bcc: Vec<Address>,
    pub in_reply_to: Option<String>,
    pub message_id: Option<String>,
}

/// An address in an envelope. A group is written as a start marker
/// ([`Address::group_start`]), its members, and an end marker
/// ([`Address::group_end`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Address {
    pub name: Option<String>,
    pub adl: Option<String>,
    pub mailbox: Option<String>,
    pub host: Option<String>,
}

impl Address {
    /// `name <local@host>`; splits at the last `@`.
    pub fn new(name: Option<String>, address: &str) -> Address {
        let (mailbox, host) = match address.rsplit_once('@') {
            Some((l, h)) => (Some(l.to_string()), Some(h.to_string())),
            None => (Some(address.to_string()), None),
        };
        Address {
            name,
            adl: None,
            mailbox,
            host,
        }
    }

    pub fn group_start(name: &str) -> Address {
        Address {
            mailbox: Some(name.to_string()),
            ..Default::default()
        }
    }

    pub fn group_end() -> Address {
        Address::default()
    }
}

/// BODYSTRUCTURE (RFC 3501 7.4.2, RFC 9051 7.5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyStructure {
    Single {
        fields: BodyFields,
        kind: SingleKind,
        ext: Option<SingleExt>,
    },
    Multipart {
        parts: Vec<BodyStructure>,
        /// Subtype, e.g. `MIXED`.
        subtype: String,
        ext: Option<MultipartExt>,
    },
}

/// The fields every non-multipart part has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyFields {
    /// `TEXT`, `IMAGE`, ...
    pub media_type: String,
    pub subtype: String,
    /// `("CHARSET" "UTF-8")`; empty writes NIL.
    pub params: Vec<(String, String)>,
    pub id: Option<String>,
    pub description: Option<String>,
    /// `7BIT`, `BASE64`, ...
    pub encoding: String,
    /// Size in octets of the encoded body.
    pub size: u32,
}

/// What follows the basic fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SingleKind {
    Basic,
    /// `text/*`: the body's line count.
    Text {
        lines: u32,
    },
    /// `message/rfc822` (and global): the inner message.
    Message {
        envelope: Box<Envelope>,
        body: Box<BodyStructure>,
        lines: u32,
    },
}

/// Extension data of a single part (BODYSTRUCTURE only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SingleExt {
    pub md5: Option<String>,
    pub disposition: Option<Disposition>,
    pub language: Vec<String>,
    pub location: Option<String>,
}

/// Extension data of a multipart (BODYSTRUCTURE only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MultipartExt {
    pub params: Vec<(String, String)>,
    pub disposition: Option<Disposition>,
    pub language: Vec<String>,
    pub location: Option<String>,
}

/// `("ATTACHMENT" ("FILENAME" "a.pdf"))`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disposition {
    pub kind: String,
    pub params: Vec<(String, String)>,
}

/// Anything the server writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Status(StatusResponse),
    Data(Data),
    Continuation(Continuation),
}

impl From<StatusResponse> for Response {
    fn from(s: StatusResponse) -> Self {
        Response::Status(s)
    }
}

impl From<Data> for Response {
    fn from(d: Data) -> Self {
        Response::Data(d)
    }
}

impl From<Continuation> for Response {
    fn from(c: Continuation) -> Self {
        Response::Continuation(c)
    }
}

// ---------------------------------------------------------------------------
// Serialisation

fn num(out: &mut Vec<u8>, n: impl std::fmt::Display) {
    use std::io::Write;
    let _ = write!(out, "{n}");
}

/// Writes `s` as a quoted string if that is safe, else as a literal.
fn string(out: &mut Vec<u8>, s: &[u8], utf8: bool) {
    let needs_literal = s
        .iter()
        .any(|&b| matches!(b, b'\r' | b'\n' | 0 | b'"' | b'\\') || (b >= 0x80 && !utf8))
        || (utf8 && std::str::from_utf8(s).is_err());
    if needs_literal {
        literal(out, s, false);
    } else {
        out.push(b'"');
        out.extend_from_slice(s);
        out.push(b'"');
    }
}

fn literal(out: &mut Vec<u8>, s: &[u8], binary: bool) {
    if binary {
        out.push(b'~');
    }
    out.push(b'{');
    num(out, s.len());
    out.extend_from_slice(b"}\r\n");
    out.extend_from_slice(s);
}

fn nstring(out: &mut Vec<u8>, s: Option<&[u8]>, utf8: bool) {
    match s {
        Some(s) => string(out, s, utf8),
        None => out.extend_from_slice(b"NIL"),
    }
}

fn nstr(out: &mut Vec<u8>, s: &Option<String>, utf8: bool) {
    nstring(out, s.as_deref().map(str::as_bytes), utf8)
}

/// A bare atom when it is one, else a string (for astring positions).
fn astring(out: &mut Vec<u8>, s: &str, utf8: bool) {
    if !s.is_empty() && s.bytes().all(is_astring_char) && !s.eq_ignore_ascii_case("NIL") {
        out.extend_from_slice(s.as_bytes());
    } else {
        string(out, s.as_bytes(), utf8);
    }
}

pub(crate) fn mailbox_name(out: &mut Vec<u8>, name: &str, utf8: bool) {
    if utf8 {
        string(out, name.as_bytes(), true);
    } else {
        string(out, utf7::encode(name).as_bytes(), false);
    }
}

fn delimiter(out: &mut Vec<u8>, d: Option<char>) {
    match d {
        None => out.extend_from_slice(b"NIL"),
        Some('\\') => out.extend_from_slice(b"\"\\\\\""),
        Some('"') => out.extend_from_slice(b"\"\\\"\""),
        Some(c) => {
            out.push(b'"');
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            out.push(b'"');
        }
    }
}

fn space_list<T>(out: &mut Vec<u8>, items: &[T], mut f: impl FnMut(&mut Vec<u8>, &T)) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        f(out, item);
    }
}

fn paren_list<T>(out: &mut Vec<u8>, items: &[T], f: impl FnMut(&mut Vec<u8>, &T)) {
    out.push(b'(');
    space_list(out, items, f);
    out.push(b')');
}

fn display(out: &mut Vec<u8>, v: impl std::fmt::Display) {
    use std::io::Write;
    let _ = write!(out, "{v}");
}

impl Encoder {
    /// Writes any response, CRLF included.
    pub fn encode(&self, response: &Response, out: &mut Vec<u8>) {
        match response {
            Response::Status(s) => self.status(s, out),
            Response::Data(d) => self.data(d, out),
            Response::Continuation(c) => self.continuation(c, out),
        }
    }

    /// Convenience: the bytes of one response.
    pub fn to_bytes(&self, response: &Response) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(response, &mut out);
        out
    }

    pub fn continuation(&self, c: &Continuation, out: &mut Vec<u8>) {
        out.extend_from_slice(b"+ ");
        match c {
            Continuation::Text(t) => out.extend_from_slice(clean_text(t).as_bytes()),
            Continuation::Base64(b) => {
                use base64::Engine as _;
                out.extend_from_slice(
                    base64::engine::general_purpose::STANDARD
                        .encode(b)
                        .as_bytes(),
                )
            }
        }
        out.extend_from_slice(b"\r\n");
    }

    pub fn status(&self, s: &StatusResponse, out: &mut Vec<u8>) {
        match &s.tag {
            Some(t) => out.extend_from_slice(t.as_str().as_bytes()),
            None => out.push(b'*'),
        }
        out.extend_from_slice(match s.kind {
            StatusKind::Ok => b" OK",
            StatusKind::No => b" NO",
            StatusKind::Bad => b" BAD",
            StatusKind::PreAuth => b" PREAUTH",
            StatusKind::Bye => b" BYE",
        });
        if let Some(code) = &s.code {
            out.extend_from_slice(b" [");
            self.code(code, out);
            out.push(b']');
        }
        // resp-text needs at least one character after the SP.
        out.push(b' ');
        let text = clean_text(&s.text);
        if text.is_empty() {
            out.extend_from_slice(b"completed");
        } else {
            out.extend_from_slice(text.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }

    pub fn code(&self, code: &Code, out: &mut Vec<u8>) {
        let simple: &[u8] = match code {
            Code::Alert => b"ALERT",
            Code::Parse => b"PARSE",
            Code::ReadOnly => b"READ-ONLY",
            Code::ReadWrite => b"READ-WRITE",
            Code::TryCreate => b"TRYCREATE",
            Code::UidNotSticky => b"UIDNOTSTICKY",
            Code::NoModSeq => b"NOMODSEQ",
            Code::Closed => b"CLOSED",
            Code::TooBig => b"TOOBIG",
            Code::OverQuota => b"OVERQUOTA",
            Code::Nonexistent => b"NONEXISTENT",
            Code::AlreadyExists => b"ALREADYEXISTS",
            Code::AuthenticationFailed => b"AUTHENTICATIONFAILED",
            Code::AuthorizationFailed => b"AUTHORIZATIONFAILED",
            Code::Expired => b"EXPIRED",
            Code::PrivacyRequired => b"PRIVACYREQUIRED",
            Code::ContactAdmin => b"CONTACTADMIN",
            Code::NoPerm => b"NOPERM",
            Code::InUse => b"INUSE",
            Code::ExpungeIssued => b"EXPUNGEISSUED",
            Code::Corruption => b"CORRUPTION",
            Code::ServerBug => b"SERVERBUG",
            Code::ClientBug => b"CLIENTBUG",
            Code::Cannot => b"CANNOT",
            Code::Limit => b"LIMIT",
            Code::Unavailable => b"UNAVAILABLE",
            Code::HasChildren => b"HASCHILDREN",
            Code::UseAttr => b"USEATTR",
            Code::NotSaved => b"NOTSAVED",
            _ => b"",
        };
        if !simple.is_empty() {
            out.extend_from_slice(simple);
            return;
        }
        match code {
            Code::BadCharset(cs) => {
                out.extend_from_slice(b"BADCHARSET");
                if !cs.is_empty() {
                    out.push(b' ');
                    paren_list(out, cs, |o, c| astring(o, c, false));
                }
            }
            Code::Capability(caps) => {
                out.extend_from_slice(b"CAPABILITY");
                for c in caps {
                    out.push(b' ');
                    out.extend_from_slice(c.as_bytes());
                }
            }
            Code::PermanentFlags {
                flags,
                keywords_allowed,
            } => {
                out.extend_from_slice(b"PERMANENTFLAGS (");
                space_list(out, flags, |o, f| display(o, f));
                if *keywords_allowed {
                    if !flags.is_empty() {
                        out.push(b' ');
                    }
                    out.extend_from_slice(b"\\*");
                }
                out.push(b')');
            }
            Code::UidNext(n) => {
                out.extend_from_slice(b"UIDNEXT ");
                num(out, n);
            }
            Code::UidValidity(n) => {
                out.extend_from_slice(b"UIDVALIDITY ");
                num(out, n);
            }
            Code::Unseen(n) => {
                out.extend_from_slice(b"UNSEEN ");
                num(out, n);
            }
            Code::AppendUid { uid_validity, uids } => {
                out.extend_from_slice(b"APPENDUID ");
                num(out, uid_validity);
                out.push(b' ');
                display(out, uids);
            }
            Code::CopyUid {
                uid_validity,
                source,
                destination,
            } => {
                out.extend_from_slice(b"COPYUID ");
                num(out, uid_validity);
                out.push(b' ');
                display(out, source);
                out.push(b' ');
                display(out, destination);
            }
            Code::HighestModSeq(n) => {
                out.extend_from_slice(b"HIGHESTMODSEQ ");
                num(out, n);
            }
            Code::Modified(set) => {
                out.extend_from_slice(b"MODIFIED ");
                display(out, set);
            }
            Code::MailboxId(id) => {
                out.extend_from_slice(b"MAILBOXID (");
                out.extend_from_slice(id.as_bytes());
                out.push(b')');
            }
            Code::Other(atom, text) => {
                out.extend_from_slice(atom.as_str().as_bytes());
                if let Some(t) = text {
                    out.push(b' ');
                    out.extend_from_slice(clean_text(t).replace(']', " ").as_bytes());
                }
            }
            _ => unreachable!("simple codes handled above"),
        }
    }

    pub fn data(&self, d: &Data, out: &mut Vec<u8>) {
        let utf8 = self.utf8_accept;
        out.extend_from_slice(b"* ");
        match d {
            Data::Capability(caps) => {
                out.extend_from_slice(b"CAPABILITY");
                for c in caps {
                    out.push(b' ');
                    out.extend_from_slice(c.as_bytes());
                }
            }
            Data::Enabled(caps) => {
                out.extend_from_slice(b"ENABLED");
                for c in caps {
                    out.push(b' ');
                    out.extend_from_slice(c.as_bytes());
                }
            }
            Data::Exists(n) => {
                num(out, n);
                out.extend_from_slice(b" EXISTS");
            }
            Data::Recent(n) => {
                num(out, n);
                out.extend_from_slice(b" RECENT");
            }
            Data::Expunge(n) => {
                num(out, n);
                out.extend_from_slice(b" EXPUNGE");
            }
            Data::Vanished { earlier, uids } => {
                out.extend_from_slice(b"VANISHED ");
                if *earlier {
                    out.extend_from_slice(b"(EARLIER) ");
                }
                display(out, uids);
            }
            Data::Flags(flags) => {
                out.extend_from_slice(b"FLAGS ");
                paren_list(out, flags, |o, f| display(o, f));
            }
            Data::List(item) => {
                out.extend_from_slice(b"LIST ");
                self.list_item(item, out);
            }
            Data::Lsub(item) => {
                out.extend_from_slice(b"LSUB ");
                self.list_item(item, out);
            }
            Data::Status { mailbox, items } => {
                out.extend_from_slice(b"STATUS ");
                mailbox_name(out, mailbox.as_str(), utf8);
                out.push(b' ');
                paren_list(out, items, status_value);
            }
            Data::Search { ids, mod_seq } | Data::Sort { ids, mod_seq } => {
                out.extend_from_slice(if matches!(d, Data::Search { .. }) {
                    b"SEARCH"
                } else {
                    b"SORT"
                });
                for id in ids {
                    out.push(b' ');
                    num(out, id);
                }
                if let Some(m) = mod_seq {
                    out.extend_from_slice(b" (MODSEQ ");
                    num(out, m);
                    out.push(b')');
                }
            }
            Data::ESearch(e) => self.esearch(e, out),
            Data::Thread(threads) => {
                out.extend_from_slice(b"THREAD");
                if !threads.is_empty() {
                    out.push(b' ');
                }
                for t in threads {
                    out.push(b'(');
                    thread(out, t, 0);
                    out.push(b')');
                }
            }
            Data::Fetch { seq, items } => {
                num(out, seq);
                out.extend_from_slice(b" FETCH ");
                paren_list(out, items, |o, v| self.fetch_value(v, o));
            }
            Data::Namespace {
                personal,
                other,
                shared,
            } => {
                out.extend_from_slice(b"NAMESPACE");
                for ns in [personal, other, shared] {
                    out.push(b' ');
                    if ns.is_empty() {
                        out.extend_from_slice(b"NIL");
                    } else {
                        out.push(b'(');
                        for e in ns {
                            out.push(b'(');
                            mailbox_name(out, &e.prefix, utf8);
                            out.push(b' ');
                            delimiter(out, e.delimiter);
                            out.push(b')');
                        }
                        out.push(b')');
                    }
                }
            }
            Data::Quota { root, resources } => {
                out.extend_from_slice(b"QUOTA ");
                astring(out, root, utf8);
                out.push(b' ');
                paren_list(out, resources, |o, r| {
                    o.extend_from_slice(r.name.as_str().as_bytes());
                    o.push(b' ');
                    num(o, r.usage);
                    o.push(b' ');
                    num(o, r.limit);
                });
            }
            Data::QuotaRoot { mailbox, roots } => {
                out.extend_from_slice(b"QUOTAROOT ");
                mailbox_name(out, mailbox.as_str(), utf8);
                for r in roots {
                    out.push(b' ');
                    astring(out, r, utf8);
                }
            }
            Data::Id(params) => {
                out.extend_from_slice(b"ID ");
                match params {
                    None => out.extend_from_slice(b"NIL"),
                    Some(p) if p.is_empty() => out.extend_from_slice(b"NIL"),
                    Some(p) => paren_list(out, p, |o, (k, v)| {
                        string(o, k.as_bytes(), utf8);
                        o.push(b' ');
                        nstr(o, v, utf8);
                    }),
                }
            }
        }
        out.extend_from_slice(b"\r\n");
    }

    fn list_item(&self, item: &ListItem, out: &mut Vec<u8>) {
        let utf8 = self.utf8_accept;
        paren_list(out, &item.attributes, |o, a| display(o, a));
        out.push(b' ');
        delimiter(out, item.delimiter);
        out.push(b' ');
        mailbox_name(out, item.mailbox.as_str(), utf8);
        if item.child_info_subscribed || item.old_name.is_some() {
            out.extend_from_slice(b" (");
            if item.child_info_subscribed {
                out.extend_from_slice(b"\"CHILDINFO\" (\"SUBSCRIBED\")");
            }
            if let Some(old) = &item.old_name {
                if item.child_info_subscribed {
                    out.push(b' ');
                }
                out.extend_from_slice(b"\"OLDNAME\" (");
                mailbox_name(out, old.as_str(), utf8);
                out.push(b')');
            }
            out.push(b')');
        }
    }

    fn esearch(&self, e: &ESearch, out: &mut Vec<u8>) {
        out.extend_from_slice(b"ESEARCH");
        if let Some(tag) = &e.tag {
            out.extend_from_slice(b" (TAG ");
            string(out, tag.as_str().as_bytes(), false);
            out.push(b')');
        }
        if e.uid {
            out.extend_from_slice(b" UID");
        }
        if let Some(n) = e.min {
            out.extend_from_slice(b" MIN ");
            num(out, n);
        }
        if let Some(n) = e.max {
            out.extend_from_slice(b" MAX ");
            num(out, n);
        }
        if let Some(set) = &e.all {
            out.extend_from_slice(b" ALL ");
            display(out, set);
        }
        if let Some(n) = e.count {
            out.extend_from_slice(b" COUNT ");
            num(out, n);
        }
        if let Some(((a, b), set)) = &e.partial {
            out.extend_from_slice(b" PARTIAL (");
            num(out, a);
            out.push(b':');
            num(out, b);
            out.push(b' ');
            match set {
                Some(s) if !s.is_empty() => display(out, s),
                _ => out.extend_from_slice(b"NIL"),
            }
            out.push(b')');
        }
        if let Some(m) = e.mod_seq {
            out.extend_from_slice(b" MODSEQ ");
            num(out, m);
        }
    }

    fn fetch_value(&self, v: &FetchValue, out: &mut Vec<u8>) {
        let utf8 = self.utf8_accept;
        match v {
            FetchValue::Flags(flags) => {
                out.extend_from_slice(b"FLAGS ");
                paren_list(out, flags, |o, f| display(o, f));
            }
            FetchValue::Uid(u) => {
                out.extend_from_slice(b"UID ");
                num(out, u);
            }
            FetchValue::InternalDate(dt) => {
                out.extend_from_slice(b"INTERNALDATE \"");
                display(out, dt);
                out.push(b'"');
            }
            FetchValue::Rfc822Size(n) => {
                out.extend_from_slice(b"RFC822.SIZE ");
                num(out, n);
            }
            FetchValue::Envelope(e) => {
                out.extend_from_slice(b"ENVELOPE ");
                envelope(out, e, utf8);
            }
            FetchValue::Body(b) => {
                out.extend_from_slice(b"BODY ");
                body_structure(out, b, false, utf8, 0);
            }
            FetchValue::BodyStructure(b) => {
                out.extend_from_slice(b"BODYSTRUCTURE ");
                body_structure(out, b, true, utf8, 0);
            }
            FetchValue::BodySection {
                section,
                origin,
                data,
            } => {
                out.extend_from_slice(b"BODY[");
                display(out, section);
                out.push(b']');
                if let Some(o) = origin {
                    out.push(b'<');
                    num(out, o);
                    out.push(b'>');
                }
                out.push(b' ');
                body_data(out, data.as_deref(), false);
            }
            FetchValue::Binary { part, origin, data } => {
                out.extend_from_slice(b"BINARY[");
                part_path(out, part);
                out.push(b']');
                if let Some(o) = origin {
                    out.push(b'<');
                    num(out, o);
                    out.push(b'>');
                }
                out.push(b' ');
                body_data(out, data.as_deref(), true);
            }
            FetchValue::BinarySize { part, size } => {
                out.extend_from_slice(b"BINARY.SIZE[");
                part_path(out, part);
                out.extend_from_slice(b"] ");
                num(out, size);
            }
            FetchValue::Rfc822(d) => {
                out.extend_from_slice(b"RFC822 ");
                body_data(out, d.as_deref(), false);
            }
            FetchValue::Rfc822Header(d) => {
                out.extend_from_slice(b"RFC822.HEADER ");
                body_data(out, d.as_deref(), false);
            }
            FetchValue::Rfc822Text(d) => {
                out.extend_from_slice(b"RFC822.TEXT ");
                body_data(out, d.as_deref(), false);
            }
            FetchValue::ModSeq(m) => {
                out.extend_from_slice(b"MODSEQ (");
                num(out, m);
                out.push(b')');
            }
            FetchValue::EmailId(id) => {
                out.extend_from_slice(b"EMAILID (");
                out.extend_from_slice(id.as_bytes());
                out.push(b')');
            }
            FetchValue::ThreadId(id) => match id {
                Some(id) => {
                    out.extend_from_slice(b"THREADID (");
                    out.extend_from_slice(id.as_bytes());
                    out.push(b')');
                }
                None => out.extend_from_slice(b"THREADID NIL"),
            },
            FetchValue::SaveDate(d) => match d {
                Some(d) => {
                    out.extend_from_slice(b"SAVEDATE \"");
                    display(out, d);
                    out.push(b'"');
                }
                None => out.extend_from_slice(b"SAVEDATE NIL"),
            },
        }
    }
}

/// Response text may not contain CR or LF.
/// Human-readable text (RFC 3501 `text`: no CR, LF or NUL). A text that
/// ends in `{n}` would make clients wait for a literal (a BAD that quotes
/// the client's own command can end so), so a `.` is added after a final
/// `}`.
fn clean_text(t: &str) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| c == '\r' || c == '\n' || c == '\0';
    if t.contains(bad) || t.ends_with('}') {
        let mut s = t.replace(bad, " ");
        if s.ends_with('}') {
            s.push('.');
        }
        std::borrow::Cow::Owned(s)
    } else {
        std::borrow::Cow::Borrowed(t)
    }
}

fn part_path(out: &mut Vec<u8>, part: &[u32]) {
    for (i, p) in part.iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        num(out, p);
    }
}

/// Message data: always a literal (it is rarely safe to quote), literal8
/// for BINARY content with NUL.
fn body_data(out: &mut Vec<u8>, data: Option<&[u8]>, binary: bool) {
    match data {
        None => out.extend_from_slice(b"NIL"),
        Some(d) => literal(out, d, binary && d.contains(&0)),
    }
}

fn status_value(out: &mut Vec<u8>, v: &StatusValue) {
    match v {
        StatusValue::Messages(n) => {
            out.extend_from_slice(b"MESSAGES ");
            num(out, n)
        }
        StatusValue::Recent(n) => {
            out.extend_from_slice(b"RECENT ");
            num(out, n)
        }
        StatusValue::UidNext(n) => {
            out.extend_from_slice(b"UIDNEXT ");
            num(out, n)
        }
        StatusValue::UidValidity(n) => {
            out.extend_from_slice(b"UIDVALIDITY ");
            num(out, n)
        }
        StatusValue::Unseen(n) => {
            out.extend_from_slice(b"UNSEEN ");
            num(out, n)
        }
        StatusValue::HighestModSeq(n) => {
            out.extend_from_slice(b"HIGHESTMODSEQ ");
            num(out, n)
        }
        StatusValue::Size(n) => {
            out.extend_from_slice(b"SIZE ");
            num(out, n)
        }
        StatusValue::AppendLimit(n) => {
            out.extend_from_slice(b"APPENDLIMIT ");
            match n {
                Some(n) => num(out, n),
                None => out.extend_from_slice(b"NIL"),
            }
        }
        StatusValue::Deleted(n) => {
            out.extend_from_slice(b"DELETED ");
            num(out, n)
        }
        StatusValue::MailboxId(id) => {
            out.extend_from_slice(b"MAILBOXID (");
            out.extend_from_slice(id.as_bytes());
            out.push(b')');
        }
    }
}

/// Threads nested deeper than this are flattened, so a hostile reference
/// chain cannot exhaust the stack.
const MAX_THREAD_DEPTH: usize = 256;

/// The inside of one thread-list: `id [SP id...] [nested lists]`.
fn thread(out: &mut Vec<u8>, t: &ThreadTree, depth: usize) {
    let mut node = t;
    let mut first = true;
    let mut depth = depth;
    loop {
        if let Some(id) = node.id {
            if !first {
                out.push(b' ');
            }
            num(out, id);
            first = false;
        }
        match node.children.len() {
            0 => return,
            1 if node.id.is_some() => node = &node.children[0],
            _ => {
                if !first {
                    out.push(b' ');
                }
                for c in &node.children {
                    out.push(b'(');
                    if depth < MAX_THREAD_DEPTH {
                        thread(out, c, depth + 1);
                    } else if let Some(id) = c.id {
                        num(out, id);
                    }
                    out.push(b')');
                }
                return;
            }
        }
        depth += 1;
    }
}

fn address_list(out: &mut Vec<u8>, list: &[Address], utf8: bool) {
    if list.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for a in list {
        out.push(b'(');
        nstr(out, &a.name, utf8);
        out.push(b' ');
        nstr(out, &a.adl, utf8);
        out.push(b' ');
        nstr(out, &a.mailbox, utf8);
        out.push(b' ');
        nstr(out, &a.host, utf8);
        out.push(b')');
    }
    out.push(b')');
}

fn envelope(out: &mut Vec<u8>, e: &Envelope, utf8: bool) {
    out.push(b'(');
    nstr(out, &e.date, utf8);
    out.push(b' ');
    nstr(out, &e.subject, utf8);
    // RFC 3501: sender and reply-to default to from when absent; the
    // session decides, the encoder writes what it is given.
    for list in [&e.from, &e.sender, &e.reply_to, &e.to, &e.cc, &e.bcc] {
        out.push(b' ');
        address_list(out, list, utf8);
    }
    out.push(b' ');
    nstr(out, &e.in_reply_to, utf8);
    out.push(b' ');
    nstr(out, &e.message_id, utf8);
    out.push(b')');
}

fn params(out: &mut Vec<u8>, p: &[(String, String)], utf8: bool) {
    if p.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    paren_list(out, p, |o, (k, v)| {
        string(o, k.as_bytes(), utf8);
        o.push(b' ');
        string(o, v.as_bytes(), utf8);
    });
}

fn disposition(out: &mut Vec<u8>, d: &Option<Disposition>, utf8: bool) {
    match d {
        None => out.extend_from_slice(b"NIL"),
        Some(d) => {
            out.push(b'(');
            string(out, d.kind.as_bytes(), utf8);
            out.push(b' ');
            params(out, &d.params, utf8);
            out.push(b')');
        }
    }
}

fn language(out: &mut Vec<u8>, l: &[String], utf8: bool) {
    match l {
        [] => out.extend_from_slice(b"NIL"),
        [one] => string(out, one.as_bytes(), utf8),
        many => paren_list(out, many, |o, s| string(o, s.as_bytes(), utf8)),
    }
}

/// Nesting limit for body structures; deeper parts are cut off (a message
/// that deep is hostile; the parser of the message should not produce it).
const MAX_BODY_DEPTH: usize = 100;

fn body_structure(out: &mut Vec<u8>, b: &BodyStructure, ext: bool, utf8: bool, depth: usize) {
    out.push(b'(');
    match b {
        BodyStructure::Multipart {
            parts,
            subtype,
            ext: mext,
        } => {
            if depth < MAX_BODY_DEPTH {
                for p in parts {
                    body_structure(out, p, ext, utf8, depth + 1);
                }
            }
            if parts.is_empty() || depth >= MAX_BODY_DEPTH {
                // A multipart needs at least one body; give an empty text part.
                out.extend_from_slice(b"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 0 0)");
            }
            out.push(b' ');
            string(out, subtype.as_bytes(), utf8);
            if ext {
                let e = mext.clone().unwrap_or_default();
                out.push(b' ');
                params(out, &e.params, utf8);
                out.push(b' ');
                disposition(out, &e.disposition, utf8);
                out.push(b' ');
                language(out, &e.language, utf8);
                out.push(b' ');
                nstr(out, &e.location, utf8);
            }
        }
        BodyStructure::Single {
            fields,
            kind,
            ext: sext,
        } => {
            string(out, fields.media_type.as_bytes(), utf8);
            out.push(b' ');
            string(out, fields.subtype.as_bytes(), utf8);
            out.push(b' ');
            params(out, &fields.params, utf8);
            out.push(b' ');
            nstr(out, &fields.id, utf8);
            out.push(b' ');
            nstr(out, &fields.description, utf8);
            out.push(b' ');
            string(out, fields.encoding.as_bytes(), utf8);
            out.push(b' ');
            num(out, fields.size);
            match kind {
                SingleKind::Basic => {}
                SingleKind::Text { lines } => {
                    out.push(b' ');
                    num(out, lines);
                }
                SingleKind::Message {
                    envelope: env,
                    body,
                    lines,
                } => {
                    out.push(b' ');
                    envelope(out, env, utf8);
                    out.push(b' ');
                    if depth < MAX_BODY_DEPTH {
                        body_structure(out, body, ext, utf8, depth + 1);
                    } else {
                        out.extend_from_slice(b"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 0 0)");
                    }
                    out.push(b' ');
                    num(out, lines);
                }
            }
            if ext {
                let e = sext.clone().unwrap_or_default();
                out.push(b' ');
                nstr(out, &e.md5, utf8);
                out.push(b' ');
                disposition(out, &e.disposition, utf8);
                out.push(b' ');
                language(out, &e.language, utf8);
                out.push(b' ');
                nstr(out, &e.location, utf8);
            }
        }
    }
    out.push(b')');
}
