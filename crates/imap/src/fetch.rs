//! FETCH item rendering (RFC 3501 6.4.5 / 7.4.2, RFC 9051 7.5.2, BINARY
//! RFC 3516, CONDSTORE RFC 7162, OBJECTID RFC 8474, SAVEDATE RFC 8514):
//! from the store's [`MessageInfo`], [`MessageMeta`] and the raw blob to
//! codec values. Pure: the session loads what [`needs`] asks for.

use crate::storage::{FlagRow, MessageInfo};
use base64::Engine as _;
use outpost_mailmeta::flags::{ANSWERED, DELETED, DRAFT, FLAGGED, SEEN};
use outpost_mailmeta::MessageMeta;
use outpost_mailmeta::{BodyPart, Envelope as StoreEnvelope, EnvelopeAddress};

use crate::codec::response::{
    Address, BodyFields, BodyStructure, Disposition, Envelope, FetchValue, MultipartExt, SingleExt,
    SingleKind,
};
use crate::codec::types::{Atom, DateTime, FetchAttr, Flag, Partial, Section, SectionText};

/// What must be loaded to answer a list of attributes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Needs {
    pub meta: bool,
    pub raw: bool,
    /// A non-PEEK body section: sets \Seen in a read-write mailbox.
    pub sets_seen: bool,
}

pub(crate) fn needs(attrs: &[FetchAttr]) -> Needs {
    let mut n = Needs::default();
    for a in attrs {
        match a {
            FetchAttr::Envelope | FetchAttr::Body | FetchAttr::BodyStructure => n.meta = true,
            FetchAttr::Rfc822 | FetchAttr::Rfc822Text => {
                n.raw = true;
                n.meta = true;
                n.sets_seen = true;
            }
            FetchAttr::Rfc822Header => {
                n.raw = true;
                n.meta = true;
            }
            FetchAttr::BodySection { peek, .. } | FetchAttr::Binary { peek, .. } => {
                n.raw = true;
                n.meta = true;
                n.sets_seen |= !peek;
            }
            FetchAttr::BinarySize { .. } => {
                n.raw = true;
                n.meta = true;
            }
            _ => {}
        }
    }
    n
}

/// Whether the attributes are only FLAGS, UID and MODSEQ, which a
/// [`FlagRow`] answers (`UID FETCH 1:* (FLAGS)`, a client's resync).
pub(crate) fn flags_only(attrs: &[FetchAttr]) -> bool {
    attrs
        .iter()
        .all(|a| matches!(a, FetchAttr::Flags | FetchAttr::Uid | FetchAttr::ModSeq))
}

/// Appends `n` in decimal.
fn push_num(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Writes the FETCH response of a [`flags_only`] attribute list straight
/// into `out`: the bytes the general encoder writes for the values
/// [`render`] makes from the same row, without building them.
pub(crate) fn write_flags_fetch(out: &mut Vec<u8>, seq: u32, attrs: &[FetchAttr], row: &FlagRow) {
    out.extend_from_slice(b"* ");
    push_num(out, seq as u64);
    out.extend_from_slice(b" FETCH (");
    for (n, a) in attrs.iter().enumerate() {
        if n > 0 {
            out.push(b' ');
        }
        match a {
            FetchAttr::Uid => {
                out.extend_from_slice(b"UID ");
                push_num(out, row.uid as u32 as u64);
            }
            FetchAttr::ModSeq => {
                out.extend_from_slice(b"MODSEQ (");
                push_num(out, row.modseq as u64);
                out.push(b')');
            }
            FetchAttr::Flags => {
                out.extend_from_slice(b"FLAGS (");
                let mut first = true;
                let mut sep = |out: &mut Vec<u8>| {
                    if !std::mem::take(&mut first) {
                        out.push(b' ');
                    }
                };
                for (bit, name) in [
                    (SEEN, &b"\\Seen"[..]),
                    (ANSWERED, b"\\Answered"),
                    (FLAGGED, b"\\Flagged"),
                    (DELETED, b"\\Deleted"),
                    (DRAFT, b"\\Draft"),
                ] {
                    if row.flags & bit != 0 {
                        sep(out);
                        out.extend_from_slice(name);
                    }
                }
                for k in &row.keywords {
                    if Atom::new(k.as_str()).is_ok() {
                        sep(out);
                        out.extend_from_slice(k.as_bytes());
                    }
                }
                out.push(b')');
            }
            // Not produced for a `flags_only` list.
            _ => debug_assert!(false, "write_flags_fetch: {a:?}"),
        }
    }
    out.extend_from_slice(b")\r\n");
}

/// System flags and keywords of a message as IMAP flags.
pub(crate) fn flags_of(m: &MessageInfo) -> Vec<Flag> {
    let mut v = Vec::with_capacity(2 + m.keywords.len());
    for (bit, f) in [
        (SEEN, Flag::Seen),
        (ANSWERED, Flag::Answered),
        (FLAGGED, Flag::Flagged),
        (DELETED, Flag::Deleted),
        (DRAFT, Flag::Draft),
    ] {
        if m.flags & bit != 0 {
            v.push(f);
        }
    }
    for k in &m.keywords {
        if let Ok(a) = Atom::new(k.as_str()) {
            v.push(Flag::Keyword(a));
        }
    }
    v
}

/// The OBJECTID EMAILID (RFC 8474): "M" and the first 24 hex digits of the
/// blob hash, so the same content gives the same id.
pub(crate) fn email_id(m: &MessageInfo) -> String {
    let hex: String = m.blob_hash.chars().take(24).collect();
    format!("M{hex}")
}

pub(crate) fn datetime(ts: i64) -> DateTime {
    DateTime::from_unix_timestamp(ts, 0)
}

/// One message's FETCH items. `Err` is a message for `NO` (a section that
/// cannot be decoded, RFC 3516 `[UNKNOWN-CTE]`).
pub(crate) fn render(
    attrs: &[FetchAttr],
    info: &MessageInfo,
    meta: Option<&MessageMeta>,
    raw: Option<&[u8]>,
    modseq: bool,
    utf8: bool,
) -> Result<Vec<FetchValue>, String> {
    let mut out = Vec::with_capacity(attrs.len() + 2);
    let empty = MessageMeta::default();
    let meta = meta.unwrap_or(&empty);
    let raw = raw.unwrap_or_default();
    for a in attrs {
        let v = match a {
            FetchAttr::Flags => FetchValue::Flags(flags_of(info)),
            FetchAttr::Uid => FetchValue::Uid(info.uid as u32),
            FetchAttr::InternalDate => FetchValue::InternalDate(datetime(info.internal_date)),
            FetchAttr::Rfc822Size => FetchValue::Rfc822Size(info.size as u64),
            FetchAttr::Envelope => {
                let mut env = envelope(&meta.envelope, utf8);
                if !raw.is_empty() {
                    raw_address_names(&mut env, slice(raw, 0, meta.body.body_start));
                }
                FetchValue::Envelope(Box::new(env))
            }
            FetchAttr::Body => FetchValue::Body(Box::new(structure(&meta.body, false, utf8))),
            FetchAttr::BodyStructure => {
                FetchValue::BodyStructure(Box::new(structure(&meta.body, true, utf8)))
            }
            FetchAttr::ModSeq => FetchValue::ModSeq(info.modseq as u64),
            FetchAttr::EmailId => FetchValue::EmailId(email_id(info)),
            FetchAttr::ThreadId => FetchValue::ThreadId(None),
            FetchAttr::SaveDate => FetchValue::SaveDate(Some(datetime(info.save_date))),
            FetchAttr::Rfc822 => FetchValue::Rfc822(Some(raw.to_vec())),
            FetchAttr::Rfc822Header => {
                FetchValue::Rfc822Header(Some(slice(raw, 0, meta.body.body_start).to_vec()))
            }
            FetchAttr::Rfc822Text => FetchValue::Rfc822Text(Some(
                slice(raw, meta.body.body_start, raw.len() as u32).to_vec(),
            )),
            FetchAttr::BodySection {
                section, partial, ..
            } => {
                let data = section_bytes(section, &meta.body, raw);
                let (origin, data) = apply_partial(data, *partial);
                FetchValue::BodySection {
                    section: section.clone(),
                    origin,
                    data,
                }
            }
            FetchAttr::Binary { part, partial, .. } => {
                let data = binary(part, &meta.body, raw)?;
                let (origin, data) = apply_partial(data, *partial);
                FetchValue::Binary {
                    part: part.clone(),
                    origin,
                    data,
                }
            }
            FetchAttr::BinarySize { part } => {
                let size = binary(part, &meta.body, raw)?.map(|d| d.len()).unwrap_or(0);
                FetchValue::BinarySize {
                    part: part.clone(),
                    size: size as u64,
                }
            }
        };
        out.push(v);
    }
    if modseq && !attrs.contains(&FetchAttr::ModSeq) {
        out.push(FetchValue::ModSeq(info.modseq as u64));
    }
    Ok(out)
}

fn slice(raw: &[u8], a: u32, b: u32) -> &[u8] {
    let a = (a as usize).min(raw.len());
    let b = (b as usize).clamp(a, raw.len());
    &raw[a..b]
}

fn apply_partial(
    data: Option<Vec<u8>>,
    partial: Option<Partial>,
) -> (Option<u32>, Option<Vec<u8>>) {
    match (partial, data) {
        (Some(p), Some(d)) => {
            let a = (p.offset as usize).min(d.len());
            let b = a.saturating_add(p.length as usize).min(d.len());
            (Some(p.offset), Some(d[a..b].to_vec()))
        }
        (Some(p), None) => (Some(p.offset), None),
        (None, d) => (None, d),
    }
}

/// The part a section path names (RFC 3501 6.4.5): in a multipart, `n` is
/// its n-th child; in a message/rfc822 part, numbers go on into the
/// enclosed message; a single part is its own part 1.
pub(crate) fn find_part<'a>(root: &'a BodyPart, path: &[u32]) -> Option<&'a BodyPart> {
    let mut cur = root;
    for (i, &n) in path.iter().enumerate() {
        if i > 0 {
            if let Some(m) = &cur.message {
                cur = &m.1;
            }
        }
        if cur.mime_type == "multipart" {
            cur = cur.parts.get((n as usize).checked_sub(1)?)?;
        } else if n != 1 {
            return None;
        }
    }
    Some(cur)
}

/// The bytes of a BODY[section]; `None` (NIL) when the part does not exist.
fn section_bytes(section: &Section, root: &BodyPart, raw: &[u8]) -> Option<Vec<u8>> {
    let whole_end = raw.len() as u32;
    if section.part.is_empty() {
        let (hs, bs) = (0, root.body_start);
        return Some(match &section.text {
            None => raw.to_vec(),
            Some(SectionText::Header) => slice(raw, hs, bs).to_vec(),
            Some(SectionText::Text) => slice(raw, bs, whole_end).to_vec(),
            Some(SectionText::HeaderFields(f)) => header_fields(slice(raw, hs, bs), f, false),
            Some(SectionText::HeaderFieldsNot(f)) => header_fields(slice(raw, hs, bs), f, true),
            Some(SectionText::Mime) => return None,
        });
    }
    let part = find_part(root, &section.part)?;
    Some(match &section.text {
        None => slice(raw, part.body_start, part.end).to_vec(),
        Some(SectionText::Mime) => slice(raw, part.header_start, part.body_start).to_vec(),
        Some(t) => {
            // HEADER/TEXT of a part: of the message a message/rfc822 part holds.
            let inner = &part.message.as_ref()?.1;
            let (hs, bs, end) = (inner.header_start, inner.body_start, part.end);
            match t {
                SectionText::Header => slice(raw, hs, bs).to_vec(),
                SectionText::Text => slice(raw, bs, end).to_vec(),
                SectionText::HeaderFields(f) => header_fields(slice(raw, hs, bs), f, false),
                SectionText::HeaderFieldsNot(f) => header_fields(slice(raw, hs, bs), f, true),
                SectionText::Mime => unreachable!("handled above"),
            }
        }
    })
}

/// The header fields named (or, with `not`, all others), each with its
/// continuation lines, followed by the blank line (RFC 3501 6.4.5).
fn header_fields(header: &[u8], names: &[String], not: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut keep = false;
    for line in header.split_inclusive(|&b| b == b'\n') {
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if line[0] != b' ' && line[0] != b'\t' {
            let name = line.split(|&b| b == b':').next().unwrap_or_default();
            let name = std::str::from_utf8(name).unwrap_or("").trim();
            let listed = names.iter().any(|n| n.eq_ignore_ascii_case(name));
            keep = listed != not;
        }
        if keep {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// BINARY[part]: the part's body with its transfer encoding removed.
/// `Ok(None)` when the part does not exist.
fn binary(path: &[u32], root: &BodyPart, raw: &[u8]) -> Result<Option<Vec<u8>>, String> {
    if path.is_empty() {
        return Ok(Some(raw.to_vec()));
    }
    let Some(part) = find_part(root, path) else {
        return Ok(None);
    };
    let body = slice(raw, part.body_start, part.end);
    Ok(Some(match part.encoding.as_str() {
        "7BIT" | "8BIT" | "BINARY" | "" => body.to_vec(),
        "BASE64" => {
            let clean: Vec<u8> = body
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            base64::engine::general_purpose::STANDARD
                .decode(&clean)
                .or_else(|_| {
                    base64::engine::general_purpose::STANDARD_NO_PAD
                        .decode(clean.trim_ascii_end_eq())
                })
                .map_err(|_| "[UNKNOWN-CTE] bad base64 in this part".to_string())?
        }
        "QUOTED-PRINTABLE" => qp_decode(body),
        _ => return Err("[UNKNOWN-CTE] unknown Content-Transfer-Encoding".into()),
    }))
}

trait TrimPad {
    fn trim_ascii_end_eq(&self) -> &[u8];
}

impl TrimPad for Vec<u8> {
    fn trim_ascii_end_eq(&self) -> &[u8] {
        let mut s: &[u8] = self;
        while let [rest @ .., b'='] = s {
            s = rest;
        }
        s
    }
}

fn qp_decode(b: &[u8]) -> Vec<u8> {
    let hex = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' {
            if b.get(i + 1) == Some(&b'\r') && b.get(i + 2) == Some(&b'\n') {
                i += 3;
                continue;
            }
            if b.get(i + 1) == Some(&b'\n') {
                i += 2;
                continue;
            }
            if let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Whether ENVELOPE needs the raw header: the stored display names are
/// decoded, and RFC 3501 7.4.2 wants them as written; for ASCII names the
/// two are the same.
pub(crate) fn envelope_needs_raw(e: &StoreEnvelope) -> bool {
    [&e.from, &e.sender, &e.reply_to, &e.to, &e.cc, &e.bcc]
        .iter()
        .any(|l| {
            l.iter()
                .any(|a| a.name.as_deref().is_some_and(|n| !n.is_ascii()))
        })
}

/// The unfolded value of the first header field `name`.
fn raw_field(header: &[u8], name: &str) -> Option<String> {
    let mut value: Option<Vec<u8>> = None;
    for line in header.split_inclusive(|&b| b == b'\n') {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        if body.is_empty() {
            break;
        }
        if body[0] == b' ' || body[0] == b'\t' {
            if let Some(v) = value.as_mut() {
                v.extend_from_slice(body);
            }
            continue;
        }
        if value.is_some() {
            break;
        }
        if let Some(colon) = body.iter().position(|&b| b == b':') {
            if body[..colon]
                .trim_ascii()
                .eq_ignore_ascii_case(name.as_bytes())
            {
                value = Some(body[colon + 1..].to_vec());
            }
        }
    }
    value.map(|v| String::from_utf8_lossy(&v).into_owned())
}

/// Puts the display names back as the header writes them (encoded words
/// or raw UTF-8), matching each address by its `<local@domain>`.
fn raw_address_names(env: &mut Envelope, header: &[u8]) {
    raw_names_of_fields(env, header);
    // Sender and Reply-To default to From (RFC 3501 7.4.2).
    if raw_field(header, "Sender").is_none() {
        env.sender = env.from.clone();
    }
    if raw_field(header, "Reply-To").is_none() {
        env.reply_to = env.from.clone();
    }
}

fn raw_names_of_fields(env: &mut Envelope, header: &[u8]) {
    let fields: [(&str, &mut Vec<Address>); 6] = [
        ("From", &mut env.from),
        ("Sender", &mut env.sender),
        ("Reply-To", &mut env.reply_to),
        ("To", &mut env.to),
        ("Cc", &mut env.cc),
        ("Bcc", &mut env.bcc),
    ];
    for (name, list) in fields {
        if !list.iter().any(|a| a.name.is_some()) {
            continue;
        }
        let Some(value) = raw_field(header, name) else {
            continue;
        };
        let lower = value.to_ascii_lowercase();
        let mut cursor = 0;
        for a in list.iter_mut() {
            let (Some(m), Some(h)) = (&a.mailbox, &a.host) else {
                continue;
            };
            let needle = format!("<{m}@{h}>").to_ascii_lowercase();
            let Some(pos) = lower[cursor..].find(&needle).map(|p| p + cursor) else {
                continue;
            };
            if a.name.is_some() {
                let mut display = value[cursor..pos].trim();
                // Drop what belongs to earlier addresses or a group name.
                if let Some(i) = last_unquoted(display, &[',', ':', ';']) {
                    display = display[i + 1..].trim();
                }
                if let Some(q) = display.strip_prefix('"').and_then(|d| d.strip_suffix('"')) {
                    let mut out = String::with_capacity(q.len());
                    let mut esc = false;
                    for c in q.chars() {
                        if c == '\\' && !esc {
                            esc = true;
                            continue;
                        }
                        esc = false;
                        out.push(c);
                    }
                    a.name = Some(out);
                } else if !display.is_empty() {
                    a.name = Some(display.to_string());
                }
            }
            cursor = pos + needle.len();
        }
    }
}

/// Byte index of the last of `chars` outside double quotes.
fn last_unquoted(s: &str, chars: &[char]) -> Option<usize> {
    let mut quoted = false;
    let mut esc = false;
    let mut last = None;
    for (i, c) in s.char_indices() {
        if esc {
            esc = false;
            continue;
        }
        match c {
            '\\' if quoted => esc = true,
            '"' => quoted = !quoted,
            c if !quoted && chars.contains(&c) => last = Some(i),
            _ => {}
        }
    }
    last
}

/// RFC 2047-encodes a decoded header text that is not ASCII (unless the
/// client enabled UTF8=ACCEPT).
fn text(s: &Option<String>, utf8: bool) -> Option<String> {
    s.as_ref().map(|s| encode_word(s, utf8))
}

fn encode_word(s: &str, utf8: bool) -> String {
    if utf8 || s.is_ascii() {
        s.to_string()
    } else {
        format!(
            "=?UTF-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
        )
    }
}

fn addresses(list: &[EnvelopeAddress], utf8: bool) -> Vec<Address> {
    list.iter()
        .map(|a| Address {
            name: text(&a.name, utf8),
            adl: None,
            mailbox: a.mailbox.clone(),
            host: a.host.clone(),
        })
        .collect()
}

pub(crate) fn envelope(e: &StoreEnvelope, utf8: bool) -> Envelope {
    Envelope {
        date: e.date.clone(),
        subject: e.subject.clone(),
        from: addresses(&e.from, utf8),
        sender: addresses(&e.sender, utf8),
        reply_to: addresses(&e.reply_to, utf8),
        to: addresses(&e.to, utf8),
        cc: addresses(&e.cc, utf8),
        bcc: addresses(&e.bcc, utf8),
        in_reply_to: e.in_reply_to.clone(),
        message_id: e.message_id.clone(),
    }
}

fn upper(params: &[(String, String)]) -> Vec<(String, String)> {
    params
        .iter()
        .map(|(k, v)| (k.to_ascii_uppercase(), v.clone()))
        .collect()
}

/// BODY (`ext` false) or BODYSTRUCTURE (`ext` true) of a part.
pub(crate) fn structure(p: &BodyPart, ext: bool, utf8: bool) -> BodyStructure {
    let disposition = p.disposition.as_ref().map(|(k, params)| Disposition {
        kind: k.to_ascii_uppercase(),
        params: upper(params),
    });
    if p.mime_type == "multipart" && !p.parts.is_empty() {
        return BodyStructure::Multipart {
            parts: p.parts.iter().map(|c| structure(c, ext, utf8)).collect(),
            subtype: p.subtype.to_ascii_uppercase(),
            ext: ext.then(|| MultipartExt {
                params: upper(&p.params),
                disposition,
                language: p.language.clone(),
                location: p.location.clone(),
            }),
        };
    }
    let media_type = if p.mime_type == "multipart" {
        // A multipart without parts is shown as an empty text part.
        "TEXT".to_string()
    } else {
        p.mime_type.to_ascii_uppercase()
    };
    let kind = match (&p.message, media_type.as_str()) {
        (Some(m), _) => SingleKind::Message {
            envelope: Box::new(envelope(&m.0, utf8)),
            body: Box::new(structure(&m.1, ext, utf8)),
            lines: p.lines as u32,
        },
        (None, "TEXT") => SingleKind::Text {
            lines: p.lines as u32,
        },
        _ => SingleKind::Basic,
    };
    BodyStructure::Single {
        fields: BodyFields {
            media_type,
            subtype: p.subtype.to_ascii_uppercase(),
            params: upper(&p.params),
            id: p.id.clone(),
            description: p.description.clone(),
            encoding: if p.encoding.is_empty() {
                "7BIT".into()
            } else {
                p.encoding.clone()
            },
            size: p.size as u32,
        },
        kind,
        ext: ext.then(|| SingleExt {
            md5: None,
            disposition,
            language: p.language.clone(),
            location: p.location.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lean writer and the general path (render, then the encoder)
    /// give the same bytes, for every combination of system flags, with
    /// keywords (one of them not an atom), large numbers and attribute
    /// orders.
    #[test]
    fn lean_flags_fetch_matches_the_encoder() {
        use crate::codec::response::{Data, Encoder, Response};
        let enc = Encoder::default();
        let lists: [&[FetchAttr]; 6] = [
            &[FetchAttr::Flags],
            &[FetchAttr::Uid, FetchAttr::Flags],
            &[FetchAttr::Flags, FetchAttr::Uid, FetchAttr::ModSeq],
            &[FetchAttr::ModSeq, FetchAttr::Uid],
            &[FetchAttr::Uid],
            &[],
        ];
        for attrs in lists {
            assert!(flags_only(attrs));
            for bits in 0..32i64 {
                for keywords in [
                    vec![],
                    vec!["$Junk".to_string(), "bad kw".into(), "work".into()],
                ] {
                    let row = FlagRow {
                        uid: 4_000_000_000 + bits,
                        flags: bits,
                        keywords: keywords.clone(),
                        modseq: 1 << 40 | bits,
                    };
                    let info = MessageInfo {
                        id: 1,
                        uid: row.uid,
                        flags: bits,
                        keywords,
                        modseq: row.modseq,
                        size: 10,
                        internal_date: 0,
                        save_date: 0,
                        blob_hash: String::new(),
                    };
                    let seq = 100_000 + bits as u32;
                    let items = render(attrs, &info, None, None, false, false).unwrap();
                    let want = enc.to_bytes(&Response::Data(Data::Fetch { seq, items }));
                    let mut got = Vec::new();
                    write_flags_fetch(&mut got, seq, attrs, &row);
                    assert_eq!(
                        String::from_utf8_lossy(&got),
                        String::from_utf8_lossy(&want),
                        "{attrs:?} {bits}"
                    );
                }
            }
        }
        assert!(!flags_only(&[FetchAttr::Flags, FetchAttr::Rfc822Size]));
        assert!(!flags_only(&[FetchAttr::InternalDate]));
    }

    const MULTI: &[u8] = b"From: a@b\r\nSubject: x\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\n--X\r\nContent-Type: text/plain\r\n\r\nhello\r\n--X\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29ybGQ=\r\n--X--\r\n";

    #[test]
    fn sections_of_multipart() {
        let meta = MessageMeta::parse(MULTI);
        let s = |part: Vec<u32>, text| {
            section_bytes(&Section { part, text }, &meta.body, MULTI)
                .map(|v| String::from_utf8(v).unwrap())
        };
        assert_eq!(s(vec![1], None).unwrap(), "hello");
        assert_eq!(
            s(vec![1], Some(SectionText::Mime)).unwrap(),
            "Content-Type: text/plain\r\n\r\n"
        );
        assert!(s(vec![3], None).is_none());
        assert_eq!(
            s(
                vec![],
                Some(SectionText::HeaderFields(vec!["subject".into()]))
            )
            .unwrap(),
            "Subject: x\r\n\r\n"
        );
        assert_eq!(
            binary(&[2], &meta.body, MULTI).unwrap().unwrap(),
            b"hello world"
        );
    }

    fn info() -> MessageInfo {
        MessageInfo {
            id: 1,
            uid: 1,
            flags: 0,
            keywords: vec![],
            modseq: 1,
            size: 0,
            internal_date: 0,
            save_date: 0,
            blob_hash: String::new(),
        }
    }

    #[test]
    fn raw_display_names() {
        let raw = b"From: =?UTF-8?Q?J=C3=BCrgen?= <j@x.org>, \"Doe, Jane\" <jane@x.org>\r\nTo: Ren\xc3\xa9\r\n <r@x.org>\r\nSubject: s\r\n\r\nbody";
        let meta = MessageMeta::parse(raw);
        assert!(envelope_needs_raw(&meta.envelope));
        let out = render(
            &[FetchAttr::Envelope],
            &info(),
            Some(&meta),
            Some(raw),
            false,
            false,
        )
        .unwrap();
        let FetchValue::Envelope(e) = &out[0] else {
            panic!()
        };
        assert_eq!(e.from[0].name.as_deref(), Some("=?UTF-8?Q?J=C3=BCrgen?="));
        assert_eq!(e.from[1].name.as_deref(), Some("Doe, Jane"));
        assert_eq!(e.to[0].name.as_deref(), Some("René"));
        assert_eq!(e.sender, e.from);
        assert_eq!(e.reply_to, e.from);
    }

    #[test]
    fn quoted_printable() {
        assert_eq!(qp_decode(b"a=3Db=\r\nc"), b"a=bc");
    }
}
