//! Writing commands back to the wire, as a client would send them.
//!
//! The server itself never sends commands; this exists for tests (the
//! round-trip property `parse(encode(c)) == c`), the fuzz target, and tools
//! such as a migration client. Literals are written synchronizing (`{N}`),
//! inline, as the framer hands them to the parser.

use std::io::Write;

use super::types::*;
use super::utf7;

fn string(out: &mut Vec<u8>, s: &[u8]) {
    if s.iter()
        .any(|&b| matches!(b, b'\r' | b'\n' | 0 | b'"' | b'\\') || b >= 0x80)
    {
        literal(out, s, s.contains(&0));
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
    let _ = write!(out, "{{{}}}\r\n", s.len());
    out.extend_from_slice(s);
}

fn astring(out: &mut Vec<u8>, s: &[u8]) {
    if !s.is_empty() && s.iter().all(|&b| is_astring_char(b)) {
        out.extend_from_slice(s);
    } else {
        string(out, s);
    }
}

fn name(s: &str, utf8: bool) -> Vec<u8> {
    if utf8 {
        s.as_bytes().to_vec()
    } else {
        utf7::encode(s).into_bytes()
    }
}

fn mailbox(out: &mut Vec<u8>, m: &str, utf8: bool) {
    astring(out, &name(m, utf8));
}

fn list_mailbox(out: &mut Vec<u8>, m: &str, utf8: bool) {
    let n = name(m, utf8);
    if !n.is_empty()
        && n.iter()
            .all(|&b| is_astring_char(b) || b == b'%' || b == b'*')
    {
        out.extend_from_slice(&n);
    } else {
        string(out, &n);
    }
}

fn d(out: &mut Vec<u8>, v: impl std::fmt::Display) {
    let _ = write!(out, "{v}");
}

fn list<T>(out: &mut Vec<u8>, items: &[T], mut f: impl FnMut(&mut Vec<u8>, &T)) {
    out.push(b'(');
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        f(out, it);
    }
    out.push(b')');
}

fn search_returns(out: &mut Vec<u8>, r: &Option<Vec<SearchReturn>>) {
    if let Some(r) = r {
        out.extend_from_slice(b" RETURN ");
        list(out, r, |o, r| match r {
            SearchReturn::Min => o.extend_from_slice(b"MIN"),
            SearchReturn::Max => o.extend_from_slice(b"MAX"),
            SearchReturn::All => o.extend_from_slice(b"ALL"),
            SearchReturn::Count => o.extend_from_slice(b"COUNT"),
            SearchReturn::Save => o.extend_from_slice(b"SAVE"),
            SearchReturn::Update => o.extend_from_slice(b"UPDATE"),
            SearchReturn::Context => o.extend_from_slice(b"CONTEXT"),
            SearchReturn::Partial(a, b) => {
                let _ = write!(o, "PARTIAL {a}:{b}");
            }
        });
    }
}

/// Whether search strings are to be written in ISO-8859-1 (the only
/// charset besides UTF-8 the parser understands).
fn is_latin1(charset: Option<&str>) -> bool {
    matches!(
        charset.map(|c| c.to_ascii_uppercase()).as_deref(),
        Some("ISO-8859-1" | "LATIN1" | "ISO8859-1")
    )
}

/// A search string in the command's charset.
fn search_string(out: &mut Vec<u8>, v: &str, latin1: bool) {
    if latin1 && v.chars().all(|c| (c as u32) < 0x100) {
        let bytes: Vec<u8> = v.chars().map(|c| c as u8).collect();
        astring(out, &bytes);
    } else {
        astring(out, v.as_bytes());
    }
}

/// Writes the keys of a top-level `And` separated by spaces, or one key.
fn search_program(out: &mut Vec<u8>, k: &SearchKey, latin1: bool) {
    match k {
        SearchKey::And(keys) if !keys.is_empty() => {
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                search_key(out, k, latin1);
            }
        }
        other => search_key(out, other, latin1),
    }
}

fn search_key(out: &mut Vec<u8>, k: &SearchKey, latin1: bool) {
    use SearchKey as K;
    let s = |out: &mut Vec<u8>, kw: &str, v: &str| {
        out.extend_from_slice(kw.as_bytes());
        out.push(b' ');
        search_string(out, v, latin1);
    };
    let date = |out: &mut Vec<u8>, kw: &str, v: &Date| {
        let _ = write!(out, "{kw} {v}");
    };
    match k {
        K::All => out.extend_from_slice(b"ALL"),
        K::Answered => out.extend_from_slice(b"ANSWERED"),
        K::Bcc(v) => s(out, "BCC", v),
        K::Before(v) => date(out, "BEFORE", v),
        K::Body(v) => s(out, "BODY", v),
        K::Cc(v) => s(out, "CC", v),
        K::Deleted => out.extend_from_slice(b"DELETED"),
        K::Draft => out.extend_from_slice(b"DRAFT"),
        K::Flagged => out.extend_from_slice(b"FLAGGED"),
        K::From(v) => s(out, "FROM", v),
        K::Header(h, v) => {
            s(out, "HEADER", h);
            out.push(b' ');
            search_string(out, v, latin1);
        }
        K::Keyword(a) => {
            let _ = write!(out, "KEYWORD {a}");
        }
        K::Larger(n) => {
            let _ = write!(out, "LARGER {n}");
        }
        K::New => out.extend_from_slice(b"NEW"),
        K::Not(k) => {
            out.extend_from_slice(b"NOT ");
            search_key(out, k, latin1);
        }
        K::Old => out.extend_from_slice(b"OLD"),
        K::On(v) => date(out, "ON", v),
        K::Or(a, b) => {
            out.extend_from_slice(b"OR ");
            search_key(out, a, latin1);
            out.push(b' ');
            search_key(out, b, latin1);
        }
        K::Recent => out.extend_from_slice(b"RECENT"),
        K::Seen => out.extend_from_slice(b"SEEN"),
        K::SentBefore(v) => date(out, "SENTBEFORE", v),
        K::SentOn(v) => date(out, "SENTON", v),
        K::SentSince(v) => date(out, "SENTSINCE", v),
        K::Since(v) => date(out, "SINCE", v),
        K::Smaller(n) => {
            let _ = write!(out, "SMALLER {n}");
        }
        K::Subject(v) => s(out, "SUBJECT", v),
        K::Text(v) => s(out, "TEXT", v),
        K::To(v) => s(out, "TO", v),
        K::Uid(set) => {
            let _ = write!(out, "UID {set}");
        }
        K::Unanswered => out.extend_from_slice(b"UNANSWERED"),
        K::Undeleted => out.extend_from_slice(b"UNDELETED"),
        K::Undraft => out.extend_from_slice(b"UNDRAFT"),
        K::Unflagged => out.extend_from_slice(b"UNFLAGGED"),
        K::Unkeyword(a) => {
            let _ = write!(out, "UNKEYWORD {a}");
        }
        K::Unseen => out.extend_from_slice(b"UNSEEN"),
        K::SequenceSet(set) => d(out, set),
        K::And(keys) => {
            if keys.is_empty() {
                out.extend_from_slice(b"ALL");
            } else {
                list(out, keys, |o, k| search_key(o, k, latin1));
            }
        }
        K::ModSeq { entry, mod_seq } => {
            out.extend_from_slice(b"MODSEQ ");
            if let Some((name, t)) = entry {
                string(out, name.as_bytes());
                out.extend_from_slice(match t {
                    EntryType::Private => b" priv ",
                    EntryType::Shared => b" shared ",
                    EntryType::All => b" all ",
                });
            }
            d(out, mod_seq);
        }
        K::Older(n) => {
            let _ = write!(out, "OLDER {n}");
        }
        K::Younger(n) => {
            let _ = write!(out, "YOUNGER {n}");
        }
        K::SavedBefore(v) => date(out, "SAVEDBEFORE", v),
        K::SavedOn(v) => date(out, "SAVEDON", v),
        K::SavedSince(v) => date(out, "SAVEDSINCE", v),
        K::SaveDateSupported => out.extend_from_slice(b"SAVEDATESUPPORTED"),
        K::EmailId(id) => {
            let _ = write!(out, "EMAILID {id}");
        }
        K::ThreadId(id) => {
            let _ = write!(out, "THREADID {id}");
        }
    }
}

fn partial(out: &mut Vec<u8>, p: &Option<Partial>) {
    if let Some(p) = p {
        let _ = write!(out, "<{}.{}>", p.offset, p.length);
    }
}

fn part_path(out: &mut Vec<u8>, part: &[u32]) {
    for (i, p) in part.iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        d(out, p);
    }
}

fn section(out: &mut Vec<u8>, s: &Section) {
    part_path(out, &s.part);
    if let Some(text) = &s.text {
        if !s.part.is_empty() {
            out.push(b'.');
        }
        match text {
            SectionText::Header => out.extend_from_slice(b"HEADER"),
            SectionText::Text => out.extend_from_slice(b"TEXT"),
            SectionText::Mime => out.extend_from_slice(b"MIME"),
            SectionText::HeaderFields(f) | SectionText::HeaderFieldsNot(f) => {
                out.extend_from_slice(if matches!(text, SectionText::HeaderFields(_)) {
                    b"HEADER.FIELDS "
                } else {
                    b"HEADER.FIELDS.NOT "
                });
                list(out, f, |o, h| astring(o, h.as_bytes()));
            }
        }
    }
}

fn fetch_attr(out: &mut Vec<u8>, a: &FetchAttr) {
    use FetchAttr as A;
    match a {
        A::Envelope => out.extend_from_slice(b"ENVELOPE"),
        A::Flags => out.extend_from_slice(b"FLAGS"),
        A::InternalDate => out.extend_from_slice(b"INTERNALDATE"),
        A::Rfc822 => out.extend_from_slice(b"RFC822"),
        A::Rfc822Header => out.extend_from_slice(b"RFC822.HEADER"),
        A::Rfc822Size => out.extend_from_slice(b"RFC822.SIZE"),
        A::Rfc822Text => out.extend_from_slice(b"RFC822.TEXT"),
        A::Body => out.extend_from_slice(b"BODY"),
        A::BodyStructure => out.extend_from_slice(b"BODYSTRUCTURE"),
        A::Uid => out.extend_from_slice(b"UID"),
        A::BodySection {
            peek,
            section: s,
            partial: p,
        } => {
            out.extend_from_slice(if *peek { b"BODY.PEEK[" } else { b"BODY[" });
            section(out, s);
            out.push(b']');
            partial(out, p);
        }
        A::Binary {
            peek,
            part,
            partial: p,
        } => {
            out.extend_from_slice(if *peek {
                b"BINARY.PEEK[" as &[u8]
            } else {
                b"BINARY["
            });
            part_path(out, part);
            out.push(b']');
            partial(out, p);
        }
        A::BinarySize { part } => {
            out.extend_from_slice(b"BINARY.SIZE[");
            part_path(out, part);
            out.push(b']');
        }
        A::ModSeq => out.extend_from_slice(b"MODSEQ"),
        A::EmailId => out.extend_from_slice(b"EMAILID"),
        A::ThreadId => out.extend_from_slice(b"THREADID"),
        A::SaveDate => out.extend_from_slice(b"SAVEDATE"),
    }
}

fn status_items(out: &mut Vec<u8>, items: &[StatusItem]) {
    list(out, items, |o, i| o.extend_from_slice(i.name().as_bytes()));
}

impl Command {
    /// The command as a client would send it, literals inline and without
    /// the final CRLF. Mailbox names are written in modified UTF-7 unless
    /// `utf8` (UTF8=ACCEPT).
    pub fn encode(&self, out: &mut Vec<u8>, utf8: bool) {
        out.extend_from_slice(self.tag.as_str().as_bytes());
        out.push(b' ');
        use CommandBody as C;
        match &self.body {
            C::Capability
            | C::Noop
            | C::Logout
            | C::Idle
            | C::Check
            | C::Close
            | C::Unselect
            | C::Expunge
            | C::Namespace => out.extend_from_slice(self.body.name().as_bytes()),
            C::StartTls => out.extend_from_slice(b"STARTTLS"),
            C::Authenticate {
                mechanism,
                initial_response,
            } => {
                let _ = write!(out, "AUTHENTICATE {mechanism}");
                if let Some(ir) = initial_response {
                    out.push(b' ');
                    if ir.is_empty() {
                        out.push(b'=');
                    } else {
                        use base64::Engine as _;
                        out.extend_from_slice(
                            base64::engine::general_purpose::STANDARD
                                .encode(ir)
                                .as_bytes(),
                        );
                    }
                }
            }
            C::Login { username, password } => {
                out.extend_from_slice(b"LOGIN ");
                astring(out, username.as_bytes());
                out.push(b' ');
                astring(out, password.as_bytes());
            }
            C::Enable(caps) => {
                out.extend_from_slice(b"ENABLE");
                for c in caps {
                    out.push(b' ');
                    out.extend_from_slice(c.as_str().as_bytes());
                }
            }
            C::Select {
                mailbox: m,
                read_only,
                params,
            } => {
                out.extend_from_slice(if *read_only { b"EXAMINE " } else { b"SELECT " });
                mailbox(out, m.as_str(), utf8);
                let mut ps: Vec<Vec<u8>> = Vec::new();
                if params.condstore {
                    ps.push(b"CONDSTORE".to_vec());
                }
                if let Some(q) = &params.qresync {
                    let mut p = Vec::new();
                    let _ = write!(p, "QRESYNC ({} {}", q.uid_validity, q.mod_seq);
                    if let Some(k) = &q.known_uids {
                        let _ = write!(p, " {k}");
                    }
                    if let Some((a, b)) = &q.seq_match {
                        let _ = write!(p, " ({a} {b})");
                    }
                    p.push(b')');
                    ps.push(p);
                }
                if !ps.is_empty() {
                    out.push(b' ');
                    list(out, &ps, |o, p| o.extend_from_slice(p));
                }
            }
            C::Create {
                mailbox: m,
                special_use,
            } => {
                out.extend_from_slice(b"CREATE ");
                mailbox(out, m.as_str(), utf8);
                if !special_use.is_empty() {
                    out.extend_from_slice(b" (USE ");
                    list(out, special_use, |o, a| d(o, a));
                    out.push(b')');
                }
            }
            C::Delete(m) | C::Subscribe(m) | C::Unsubscribe(m) | C::GetQuotaRoot(m) => {
                out.extend_from_slice(self.body.name().as_bytes());
                out.push(b' ');
                mailbox(out, m.as_str(), utf8);
            }
            C::Rename { from, to } => {
                out.extend_from_slice(b"RENAME ");
                mailbox(out, from.as_str(), utf8);
                out.push(b' ');
                mailbox(out, to.as_str(), utf8);
            }
            C::List(l) => {
                out.extend_from_slice(b"LIST ");
                let s = &l.selection;
                let mut sel: Vec<&str> = Vec::new();
                if s.subscribed {
                    sel.push("SUBSCRIBED");
                }
                if s.remote {
                    sel.push("REMOTE");
                }
                if s.special_use {
                    sel.push("SPECIAL-USE");
                }
                if s.recursive_match {
                    sel.push("RECURSIVEMATCH");
                }
                if !sel.is_empty() {
                    list(out, &sel, |o, s| o.extend_from_slice(s.as_bytes()));
                    out.push(b' ');
                }
                string_or_astring_name(out, &l.reference, utf8);
                out.push(b' ');
                if l.patterns.len() == 1 {
                    list_mailbox(out, &l.patterns[0], utf8);
                } else {
                    list(out, &l.patterns, |o, p| list_mailbox(o, p, utf8));
                }
                let r = &l.returns;
                if *r != ListReturn::default() {
                    let mut opts: Vec<Vec<u8>> = Vec::new();
                    if r.children {
                        opts.push(b"CHILDREN".to_vec());
                    }
                    if r.subscribed {
                        opts.push(b"SUBSCRIBED".to_vec());
                    }
                    if r.special_use {
                        opts.push(b"SPECIAL-USE".to_vec());
                    }
                    if let Some(items) = &r.status {
                        let mut p = b"STATUS ".to_vec();
                        status_items(&mut p, items);
                        opts.push(p);
                    }
                    out.extend_from_slice(b" RETURN ");
                    list(out, &opts, |o, p| o.extend_from_slice(p));
                }
            }
            C::Lsub { reference, pattern } => {
                out.extend_from_slice(b"LSUB ");
                string_or_astring_name(out, reference, utf8);
                out.push(b' ');
                list_mailbox(out, pattern, utf8);
            }
            C::Status { mailbox: m, items } => {
                out.extend_from_slice(b"STATUS ");
                mailbox(out, m.as_str(), utf8);
                out.push(b' ');
                status_items(out, items);
            }
            C::Append {
                mailbox: m,
                messages,
            } => {
                out.extend_from_slice(b"APPEND ");
                mailbox(out, m.as_str(), utf8);
                for msg in messages {
                    if !msg.flags.is_empty() {
                        out.push(b' ');
                        list(out, &msg.flags, |o, f| d(o, f));
                    }
                    if let Some(dt) = &msg.date {
                        let _ = write!(out, " \"{dt}\"");
                    }
                    out.push(b' ');
                    match &msg.content {
                        AppendContent::Literal { data, binary, utf8 } => {
                            if *utf8 {
                                out.extend_from_slice(b"UTF8 (");
                                literal(out, data, true);
                                out.push(b')');
                            } else {
                                literal(out, data, *binary);
                            }
                        }
                        AppendContent::Catenate(parts) => {
                            out.extend_from_slice(b"CATENATE ");
                            list(out, parts, |o, p| match p {
                                CatenatePart::Url(u) => {
                                    o.extend_from_slice(b"URL ");
                                    astring(o, u.as_bytes());
                                }
                                CatenatePart::Text { data, binary } => {
                                    o.extend_from_slice(b"TEXT ");
                                    literal(o, data, *binary);
                                }
                            });
                        }
                    }
                }
            }
            C::UidExpunge(set) => {
                let _ = write!(out, "UID EXPUNGE {set}");
            }
            C::Search(s) => {
                if s.uid {
                    out.extend_from_slice(b"UID ");
                }
                out.extend_from_slice(b"SEARCH");
                search_returns(out, &s.returns);
                if let Some(cs) = &s.charset {
                    out.extend_from_slice(b" CHARSET ");
                    astring(out, cs.as_bytes());
                }
                out.push(b' ');
                search_program(out, &s.criteria, is_latin1(s.charset.as_deref()));
            }
            C::Sort(s) => {
                if s.uid {
                    out.extend_from_slice(b"UID ");
                }
                out.extend_from_slice(b"SORT");
                search_returns(out, &s.returns);
                out.push(b' ');
                list(out, &s.criteria, |o, c| {
                    if c.reverse {
                        o.extend_from_slice(b"REVERSE ");
                    }
                    o.extend_from_slice(c.key.name().as_bytes());
                });
                out.push(b' ');
                astring(out, s.charset.as_bytes());
                out.push(b' ');
                search_program(out, &s.search, is_latin1(Some(&s.charset)));
            }
            C::Thread(t) => {
                if t.uid {
                    out.extend_from_slice(b"UID ");
                }
                let _ = write!(out, "THREAD {} ", t.algorithm.name());
                astring(out, t.charset.as_bytes());
                out.push(b' ');
                search_program(out, &t.search, is_latin1(Some(&t.charset)));
            }
            C::Fetch(f) => {
                if f.uid {
                    out.extend_from_slice(b"UID ");
                }
                let _ = write!(out, "FETCH {} ", f.set);
                match &f.items {
                    FetchItems::All => out.extend_from_slice(b"ALL"),
                    FetchItems::Fast => out.extend_from_slice(b"FAST"),
                    FetchItems::Full => out.extend_from_slice(b"FULL"),
                    FetchItems::Attrs(a) => list(out, a, fetch_attr),
                }
                let mut mods: Vec<String> = Vec::new();
                if let Some(m) = f.changed_since {
                    mods.push(format!("CHANGEDSINCE {m}"));
                }
                if f.vanished {
                    mods.push("VANISHED".into());
                }
                if !mods.is_empty() {
                    out.push(b' ');
                    list(out, &mods, |o, m| o.extend_from_slice(m.as_bytes()));
                }
            }
            C::Store(s) => {
                if s.uid {
                    out.extend_from_slice(b"UID ");
                }
                let _ = write!(out, "STORE {} ", s.set);
                if let Some(m) = s.unchanged_since {
                    let _ = write!(out, "(UNCHANGEDSINCE {m}) ");
                }
                out.extend_from_slice(match s.kind {
                    StoreKind::Replace => b"",
                    StoreKind::Add => b"+",
                    StoreKind::Remove => b"-",
                });
                out.extend_from_slice(if s.silent {
                    b"FLAGS.SILENT " as &[u8]
                } else {
                    b"FLAGS "
                });
                list(out, &s.flags, |o, f| d(o, f));
            }
            C::Copy {
                uid,
                set,
                mailbox: m,
            }
            | C::Move {
                uid,
                set,
                mailbox: m,
            } => {
                if *uid {
                    out.extend_from_slice(b"UID ");
                }
                out.extend_from_slice(if matches!(self.body, C::Copy { .. }) {
                    b"COPY "
                } else {
                    b"MOVE "
                });
                d(out, set);
                out.push(b' ');
                mailbox(out, m.as_str(), utf8);
            }
            C::GetQuota(root) => {
                out.extend_from_slice(b"GETQUOTA ");
                astring(out, root.as_bytes());
            }
            C::SetQuota { root, limits } => {
                out.extend_from_slice(b"SETQUOTA ");
                astring(out, root.as_bytes());
                out.push(b' ');
                list(out, limits, |o, l| {
                    let _ = write!(o, "{} {}", l.resource, l.limit);
                });
            }
            C::Id(params) => {
                out.extend_from_slice(b"ID ");
                match params {
                    None => out.extend_from_slice(b"NIL"),
                    Some(p) => list(out, p, |o, (k, v)| {
                        string(o, k.as_bytes());
                        o.push(b' ');
                        match v {
                            Some(v) => string(o, v.as_bytes()),
                            None => o.extend_from_slice(b"NIL"),
                        }
                    }),
                }
            }
        }
    }

    /// [`encode`](Command::encode) into a new vector.
    pub fn to_bytes(&self, utf8: bool) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out, utf8);
        out
    }
}

fn string_or_astring_name(out: &mut Vec<u8>, s: &str, utf8: bool) {
    let n = name(s, utf8);
    if n.is_empty() {
        out.extend_from_slice(b"\"\"");
    } else {
        astring(out, &n);
    }
}
