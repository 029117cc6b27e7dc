//! outpost-mailmeta: what the mail protocols share about a message without
//! re-reading its blob: the envelope, the MIME structure with byte offsets of
//! every part, the fields SORT/THREAD/SEARCH use, and the system flags
//! ([`flags`]). Computed once at delivery with mail-parser and stored (as
//! JSON) next to the message row by the store, which treats it as opaque;
//! IMAP renders ENVELOPE and BODYSTRUCTURE from it, and the protocols to
//! come (JMAP, ActiveSync, EWS) read the same value.
//!
//! No I/O and no storage here: the store depends on this crate, and so may
//! any protocol crate, without depending on the store.

/// System flags as bits of one integer, the form the store keeps them in.
/// The bit values are part of the stored data: never renumber them.
pub mod flags {
    pub const SEEN: i64 = 1;
    pub const ANSWERED: i64 = 2;
    pub const FLAGGED: i64 = 4;
    pub const DELETED: i64 = 8;
    pub const DRAFT: i64 = 16;

    /// System flags by IMAP name (RFC 9051 §2.3.2).
    pub const SYSTEM_FLAGS: &[(&str, i64)] = &[
        ("\\Seen", SEEN),
        ("\\Answered", ANSWERED),
        ("\\Flagged", FLAGGED),
        ("\\Deleted", DELETED),
        ("\\Draft", DRAFT),
    ];
}

use mail_parser::{
    Address, HeaderName, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType,
};
use serde::{Deserialize, Serialize};

/// An address as IMAP's ENVELOPE lists it. Names are decoded to UTF-8; the
/// protocol layer re-encodes them where its wire format needs ASCII.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeAddress {
    pub name: Option<String>,
    /// Local part; for a group start marker the group name, for its end marker `None`.
    pub mailbox: Option<String>,
    /// Domain; `None` for group markers.
    pub host: Option<String>,
}

/// RFC 3501 ENVELOPE. `date`, `subject`, `in_reply_to` and `message_id` keep
/// the header's raw text (unfolded), as the RFC asks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub date: Option<String>,
    pub subject: Option<String>,
    pub from: Vec<EnvelopeAddress>,
    pub sender: Vec<EnvelopeAddress>,
    pub reply_to: Vec<EnvelopeAddress>,
    pub to: Vec<EnvelopeAddress>,
    pub cc: Vec<EnvelopeAddress>,
    pub bcc: Vec<EnvelopeAddress>,
    pub in_reply_to: Option<String>,
    pub message_id: Option<String>,
}

/// One MIME part with its place in the blob.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BodyPart {
    /// Lower-case type and subtype, e.g. "text", "plain".
    pub mime_type: String,
    pub subtype: String,
    /// Content-Type parameters (names lower-cased), e.g. ("charset","utf-8").
    pub params: Vec<(String, String)>,
    pub id: Option<String>,
    pub description: Option<String>,
    /// Content-Transfer-Encoding as written, upper-cased; "7BIT" when absent.
    pub encoding: String,
    /// Octets of the (still encoded) body.
    pub size: u64,
    /// Lines of the body, for text/* and message/rfc822.
    pub lines: u64,
    pub disposition: Option<(String, Vec<(String, String)>)>,
    pub language: Vec<String>,
    pub location: Option<String>,
    /// Offsets into the blob: start of the part's header, of its body, and end.
    pub header_start: u32,
    pub body_start: u32,
    pub end: u32,
    /// Children of a multipart.
    pub parts: Vec<BodyPart>,
    /// For message/rfc822: the enclosed message's envelope and structure.
    pub message: Option<Box<(Envelope, BodyPart)>>,
}

/// Everything derived from a message at delivery.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageMeta {
    pub envelope: Envelope,
    pub body: BodyPart,
    /// Decoded Subject:, for SORT and SEARCH.
    pub subject: Option<String>,
    /// Date: as a Unix timestamp, if it parses.
    pub sent_date: Option<i64>,
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    /// Octets of the header block of the top-level message.
    pub header_len: u32,
}

impl MessageMeta {
    /// Parses a raw message. Never fails: unparseable input gives a message
    /// that is one text/plain part, as IMAP servers are expected to present it.
    pub fn parse(raw: &[u8]) -> MessageMeta {
        let parser = MessageParser::default();
        match parser.parse(raw) {
            Some(msg) if !msg.parts.is_empty() => {
                let envelope = envelope(&msg, raw);
                let body = body_part(&msg, 0, raw, 0, &mut unseen(&msg));
                let root = &msg.parts[0];
                MessageMeta {
                    envelope,
                    body,
                    subject: msg.subject().map(str::to_string),
                    sent_date: msg.date().map(|d| d.to_timestamp()),
                    message_id: msg.message_id().map(str::to_string),
                    in_reply_to: id_list(msg.in_reply_to()),
                    references: id_list(msg.references()),
                    header_len: root.offset_body.min(raw.len() as u32),
                }
            }
            _ => {
                let header_len = header_end(raw) as u32;
                MessageMeta {
                    body: BodyPart {
                        mime_type: "text".into(),
                        subtype: "plain".into(),
                        params: vec![("charset".into(), "us-ascii".into())],
                        encoding: "7BIT".into(),
                        size: raw.len() as u64 - header_len as u64,
                        lines: count_lines(&raw[header_len as usize..]),
                        header_start: 0,
                        body_start: header_len,
                        end: raw.len() as u32,
                        ..Default::default()
                    },
                    header_len,
                    ..Default::default()
                }
            }
        }
    }
}

fn header_end(raw: &[u8]) -> usize {
    if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
        return p + 4;
    }
    if let Some(p) = raw.windows(2).position(|w| w == b"\n\n") {
        return p + 2;
    }
    raw.len()
}

fn count_lines(b: &[u8]) -> u64 {
    b.iter().filter(|&&c| c == b'\n').count() as u64
}

fn id_list(v: &HeaderValue) -> Vec<String> {
    match v {
        HeaderValue::Text(t) => vec![t.to_string()],
        HeaderValue::TextList(l) => l.iter().map(|s| s.to_string()).collect(),
        _ => Vec::new(),
    }
}

/// The raw, unfolded value of the first header with this name in a part.
fn raw_header(part: &MessagePart, name: HeaderName, raw: &[u8]) -> Option<String> {
    let h = part.headers.iter().find(|h| h.name == name)?;
    let bytes = raw.get(h.offset_start as usize..h.offset_end as usize)?;
    let text = String::from_utf8_lossy(bytes);
    let unfolded: String = text.replace("\r\n", "").replace('\n', "");
    Some(unfolded.trim().to_string())
}

fn addresses(v: Option<&Address>) -> Vec<EnvelopeAddress> {
    let mut out = Vec::new();
    let one = |a: &mail_parser::Addr| {
        let (mailbox, host) = match a.address.as_deref() {
            Some(addr) => match addr.rsplit_once('@') {
                Some((l, d)) => (Some(l.to_string()), Some(d.to_string())),
                None => (Some(addr.to_string()), Some(String::new())),
            },
            None => (None, None),
        };
        EnvelopeAddress {
            name: a.name.as_deref().map(str::to_string),
            mailbox,
            host,
        }
    };
    match v {
        Some(Address::List(list)) => {
            out.extend(list.iter().filter(|a| a.address.is_some()).map(one))
        }
        Some(Address::Group(groups)) => {
            for g in groups {
                match &g.name {
                    Some(name) => {
                        out.push(EnvelopeAddress {
                            name: None,
                            mailbox: Some(name.to_string()),
                            host: None,
                        });
                        out.extend(g.addresses.iter().filter(|a| a.address.is_some()).map(one));
                        out.push(EnvelopeAddress::default());
                    }
                    None => out.extend(g.addresses.iter().filter(|a| a.address.is_some()).map(one)),
                }
            }
        }
        None => {}
    }
    out
}

fn envelope(msg: &Message, raw: &[u8]) -> Envelope {
    let root = &msg.parts[0];
    envelope_of_part(root, raw)
}

fn envelope_of_part(part: &MessagePart, raw: &[u8]) -> Envelope {
    let addr = |name: HeaderName| {
        addresses(
            part.headers
                .iter()
                .find(|h| h.name == name)
                .and_then(|h| h.value.as_address()),
        )
    };
    let from = addr(HeaderName::From);
    let mut sender = addr(HeaderName::Sender);
    if sender.is_empty() {
        sender = from.clone();
    }
    let mut reply_to = addr(HeaderName::ReplyTo);
    if reply_to.is_empty() {
        reply_to = from.clone();
    }
    Envelope {
        date: raw_header(part, HeaderName::Date, raw),
        subject: raw_header(part, HeaderName::Subject, raw),
        from,
        sender,
        reply_to,
        to: addr(HeaderName::To),
        cc: addr(HeaderName::Cc),
        bcc: addr(HeaderName::Bcc),
        in_reply_to: raw_header(part, HeaderName::InReplyTo, raw),
        message_id: raw_header(part, HeaderName::MessageId, raw),
    }
}

fn ct_params(ct: &mail_parser::ContentType) -> Vec<(String, String)> {
    ct.attributes()
        .map(|a| {
            a.iter()
                .map(|at| (at.name.to_ascii_lowercase(), at.value.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// One flag per part of `msg`, the root already seen: `body_part` describes
/// each part once.
fn unseen(msg: &Message) -> Vec<bool> {
    let mut seen = vec![false; msg.parts.len()];
    if let Some(root) = seen.first_mut() {
        *root = true;
    }
    seen
}

fn body_part(msg: &Message, id: usize, raw: &[u8], depth: usize, seen: &mut [bool]) -> BodyPart {
    let part = &msg.parts[id];
    let (mime_type, subtype, params) = match part.content_type() {
        Some(ct) => (
            ct.ctype().to_ascii_lowercase(),
            ct.subtype()
                .map(|s| s.to_ascii_lowercase())
                .unwrap_or_else(|| default_subtype(ct.ctype())),
            ct_params(ct),
        ),
        None => match &part.body {
            PartType::Multipart(_) => ("multipart".into(), "mixed".into(), Vec::new()),
            PartType::Message(_) => ("message".into(), "rfc822".into(), Vec::new()),
            _ => (
                "text".into(),
                "plain".into(),
                vec![("charset".into(), "us-ascii".into())],
            ),
        },
    };
    let start = part.offset_body.min(part.offset_end) as usize;
    let end = (part.offset_end as usize).min(raw.len());
    let body_bytes = raw.get(start..end).unwrap_or_default();
    let mut bp = BodyPart {
        mime_type,
        subtype,
        params,
        id: part.content_id().map(|s| format!("<{s}>")),
        description: part.content_description().map(str::to_string),
        encoding: part
            .content_transfer_encoding()
            .map(|s| s.to_ascii_uppercase())
            .unwrap_or_else(|| "7BIT".into()),
        size: body_bytes.len() as u64,
        lines: 0,
        disposition: part
            .content_disposition()
            .map(|d| (d.ctype().to_ascii_lowercase(), ct_params(d))),
        language: match part.content_language() {
            HeaderValue::Text(t) => vec![t.to_string()],
            HeaderValue::TextList(l) => l.iter().map(|s| s.to_string()).collect(),
            _ => Vec::new(),
        },
        location: part.content_location().map(str::to_string),
        header_start: part.offset_header,
        body_start: part.offset_body,
        end: part.offset_end,
        parts: Vec::new(),
        message: None,
    };
    if depth > 50 {
        // Not described further, but a text leaf keeps its line count.
        if bp.mime_type == "text" && !matches!(part.body, PartType::Multipart(_)) {
            bp.lines = count_lines(body_bytes);
        }
        return bp;
    }
    match &part.body {
        PartType::Multipart(children) => {
            // In a damaged message mail-parser can list a part under two
            // parents, or under itself; following such a list again and
            // again grows the tree exponentially. Each part goes in once.
            for &c in children {
                let c = c as usize;
                if c < seen.len() && !std::mem::replace(&mut seen[c], true) {
                    bp.parts.push(body_part(msg, c, raw, depth + 1, seen));
                }
            }
        }
        PartType::Message(inner) if !inner.parts.is_empty() => {
            bp.lines = count_lines(body_bytes);
            let env = envelope_of_part(&inner.parts[0], raw);
            let body = body_part(inner, 0, raw, depth + 1, &mut unseen(inner));
            bp.message = Some(Box::new((env, body)));
        }
        _ => {
            if bp.mime_type == "text" {
                bp.lines = count_lines(body_bytes);
            }
        }
    }
    bp
}

fn default_subtype(ctype: &str) -> String {
    match ctype.to_ascii_lowercase().as_str() {
        "text" => "plain",
        "multipart" => "mixed",
        "message" => "rfc822",
        _ => "octet-stream",
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MULTI: &[u8] = b"From: =?utf-8?q?J=C3=B6rg?= <joerg@example.org>\r\n\
To: a@example.test, Team: b@example.test, c@example.test;\r\n\
Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\
Date: Tue, 24 Nov 2026 10:00:00 +0000\r\n\
Message-ID: <m1@example.org>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
\r\n\
--b1\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
hello\r\n\
world\r\n\
--b1\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
From: inner@example.net\r\n\
Subject: inner\r\n\
\r\n\
inner body\r\n\
--b1--\r\n";

    #[test]
    fn multipart_with_message() {
        let m = MessageMeta::parse(MULTI);
        assert_eq!(m.subject.as_deref(), Some("Grüße"));
        assert_eq!(
            m.envelope.subject.as_deref(),
            Some("=?utf-8?q?Gr=C3=BC=C3=9Fe?=")
        );
        assert_eq!(m.envelope.from[0].name.as_deref(), Some("Jörg"));
        assert_eq!(m.envelope.from[0].host.as_deref(), Some("example.org"));
        assert_eq!(m.envelope.sender, m.envelope.from);
        // a, group start, b, c, group end
        assert_eq!(m.envelope.to.len(), 5);
        assert_eq!(m.envelope.to[1].mailbox.as_deref(), Some("Team"));
        assert_eq!(m.envelope.to[4], EnvelopeAddress::default());
        assert_eq!(m.body.mime_type, "multipart");
        assert_eq!(m.body.parts.len(), 2);
        let text = &m.body.parts[0];
        assert_eq!(
            (text.mime_type.as_str(), text.subtype.as_str()),
            ("text", "plain")
        );
        let body = &MULTI[text.body_start as usize..text.end as usize];
        assert_eq!(body, b"hello\r\nworld");
        assert_eq!(text.lines, 1);
        let inner = m.body.parts[1].message.as_ref().unwrap();
        assert_eq!(inner.0.subject.as_deref(), Some("inner"));
        assert_eq!(m.sent_date, Some(1_795_514_400));
        assert_eq!(m.message_id.as_deref(), Some("m1@example.org"));
    }

    /// Found by the `delivery` fuzz target (out of memory from 1.7 KB): in
    /// this damaged message mail-parser lists part 1 as a multipart whose
    /// children are parts 0 and 1, a cycle; describing it followed the
    /// cycle 50 levels deep, doubling at each level.
    #[test]
    fn part_listed_under_itself_is_described_once() {
        let raw = b"From: a@example.org\r\n\
Content-Type: multipart/mixed; boundary=x\r\n\r\n\
--x\r\nContent-Type: message/rfc822\r\n\r\n\
Subject: a\r\nContent-Type: message/rfc822\r\n\r\n\r\n\
--x\r\nContent-Type: message/rfc822\r\n\r\ny\r\n\r\n--x--\r\n";
        fn count(p: &BodyPart) -> usize {
            1 + p.parts.iter().map(count).sum::<usize>()
                + p.message.as_ref().map_or(0, |m| count(&m.1))
        }
        let m = MessageMeta::parse(raw);
        assert!(count(&m.body) <= 4, "{}", count(&m.body));
    }

    /// Found by the `delivery` fuzz target: a text part nested deeper than
    /// the 50 levels described (here at level 51) had 0 lines in
    /// BODYSTRUCTURE.
    #[test]
    fn deep_text_part_has_its_lines() {
        let mut raw = Vec::new();
        for i in 0..51 {
            raw.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=\"d{i}\"\r\n\r\n--d{i}\r\n")
                    .as_bytes(),
            );
        }
        raw.extend_from_slice(b"Content-Type: text/plain\r\n\r\none\r\ntwo\r\n");
        for i in (0..51).rev() {
            raw.extend_from_slice(format!("--d{i}--\r\n").as_bytes());
        }
        let m = MessageMeta::parse(&raw);
        let mut p = &m.body;
        while let Some(c) = p.parts.first() {
            p = c;
        }
        assert_eq!(
            (p.mime_type.as_str(), p.subtype.as_str()),
            ("text", "plain")
        );
        let body = &raw[p.body_start as usize..p.end as usize];
        assert!(p.lines > 0);
        assert_eq!(p.lines, body.iter().filter(|&&b| b == b'\n').count() as u64);
    }

    #[test]
    fn garbage_is_one_text_part() {
        let m = MessageMeta::parse(b"\x00\x01 not a message");
        assert_eq!(m.body.mime_type, "text");
        let m = MessageMeta::parse(b"");
        assert_eq!(m.body.size, 0);
    }
}
