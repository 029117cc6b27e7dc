//! A message a client composed, made ready for [`MailFlow::submit`]: the
//! envelope read from its headers, `Bcc:` taken out, and for a reply or a
//! forward the server-side part (the original quoted below the client's
//! text, or forwarded with its attachments), as ActiveSync
//! SmartReply/SmartForward and EWS ReplyToItem/ForwardItem ask of the
//! server. Pure functions over bytes; [`MailFlow::submit_composed`] is the
//! one way such a message is sent.

use std::borrow::Cow;

use mail_builder::headers::content_type::ContentType;
use mail_builder::MessageBuilder;
use mail_parser::{Address, HeaderName, HeaderValue, Message, MessageParser, MimeHeaders};

use crate::{Envelope, MailFlow, Rcpt, SubmitError, SubmitOptions, Submitted};

/// A composed message with its envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The envelope sender: the `Sender:` address, else the first `From:`
    /// address, else `default_from`.
    pub mail_from: String,
    /// `To:`, `Cc:` and `Bcc:` addresses, each once (first spelling).
    pub recipients: Vec<String>,
    /// The message as it is sent: no `Bcc:`, and `From:`, `Date:` and
    /// `Message-ID:` added when the client left them out.
    pub message: Vec<u8>,
}

/// What the server adds to a client's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Smart {
    /// The original's text quoted below the client's.
    Reply,
    /// The original's text below the client's under a header block, and
    /// its attachments attached again.
    Forward,
}

/// The header section and the body of a message (split at the first empty
/// line; a message without one is all header).
fn split(raw: &[u8]) -> (&[u8], &[u8]) {
    let mut i = 0;
    while i < raw.len() {
        if raw[i..].starts_with(b"\r\n") {
            return (&raw[..i], &raw[i + 2..]);
        }
        if raw[i] == b'\n' {
            return (&raw[..i], &raw[i + 1..]);
        }
        match raw[i..].iter().position(|&b| b == b'\n') {
            Some(p) => i += p + 1,
            None => return (raw, &[]),
        }
    }
    (raw, &[])
}

/// The header fields of a header section, each with its continuation
/// lines and its line end.
fn fields(head: &[u8]) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < head.len() {
        let end = head[i..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(head.len(), |p| i + p + 1);
        if i > start && !matches!(head[i], b' ' | b'\t') {
            out.push(&head[start..i]);
            start = i;
        }
        i = end;
    }
    if start < head.len() {
        out.push(&head[start..]);
    }
    out
}

fn field_name(field: &[u8]) -> &[u8] {
    let n = field.iter().position(|&b| b == b':').unwrap_or(field.len());
    field[..n].trim_ascii()
}

fn is_named(field: &[u8], name: &str) -> bool {
    field_name(field).eq_ignore_ascii_case(name.as_bytes())
}

/// A field as written, ending in CRLF.
fn line(field: &[u8]) -> Vec<u8> {
    let mut v = field.trim_ascii_end().to_vec();
    v.extend_from_slice(b"\r\n");
    v
}

fn addresses_of(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Address(a) => a
            .iter()
            .filter_map(|x| x.address())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

fn new_message_id(hostname: &str) -> String {
    let n: u128 = rand::random();
    format!("<{n:032x}@{hostname}>")
}

/// Reads the envelope off a composed message and makes the message fit to
/// send. `Err(BadFrom)` for a `From:` without an address, `NoRecipients`
/// for a message addressed to nobody.
pub fn prepare(raw: &[u8], default_from: &str, hostname: &str) -> Result<Outgoing, SubmitError> {
    let parsed = MessageParser::new()
        .parse_headers(raw)
        .ok_or(SubmitError::BadFrom)?;
    let mut recipients: Vec<String> = Vec::new();
    for name in [HeaderName::To, HeaderName::Cc, HeaderName::Bcc] {
        for v in parsed.header_values(name) {
            for a in addresses_of(v) {
                if !recipients.iter().any(|r| r.eq_ignore_ascii_case(&a)) {
                    recipients.push(a);
                }
            }
        }
    }
    if recipients.is_empty() {
        return Err(SubmitError::NoRecipients);
    }
    let from = crate::submit::from_addresses(raw)?;
    let sender = parsed
        .header_values(HeaderName::Sender)
        .flat_map(addresses_of)
        .next();
    let mail_from = sender
        .or_else(|| from.first().cloned())
        .unwrap_or_else(|| default_from.to_string());
    let (head, body) = split(raw);
    let fs = fields(head);
    let mut out = Vec::with_capacity(raw.len() + 128);
    if from.is_empty() {
        out.extend_from_slice(format!("From: <{default_from}>\r\n").as_bytes());
    }
    if !fs.iter().any(|f| is_named(f, "Date")) {
        let date = mail_builder::headers::date::Date::now().to_rfc822();
        out.extend_from_slice(format!("Date: {date}\r\n").as_bytes());
    }
    if !fs.iter().any(|f| is_named(f, "Message-ID")) {
        out.extend_from_slice(format!("Message-ID: {}\r\n", new_message_id(hostname)).as_bytes());
    }
    for f in fs.iter().filter(|f| !is_named(f, "Bcc")) {
        out.extend_from_slice(&line(f));
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    Ok(Outgoing {
        mail_from,
        recipients,
        message: out,
    })
}

fn escape_html(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            _ => o.push(c),
        }
    }
    o
}

fn text_as_html(s: &str) -> String {
    escape_html(s).replace("\r\n", "\n").replace('\n', "<br>\n")
}

/// What is inside `<body>`, or the whole text when there is no body tag.
fn html_inner(html: &str) -> &str {
    let lower = html.to_ascii_lowercase();
    let Some(open) = lower.find("<body") else {
        return html;
    };
    let Some(gt) = lower[open..].find('>') else {
        return html;
    };
    let start = open + gt + 1;
    let end = lower[start..]
        .rfind("</body")
        .map_or(html.len(), |e| start + e);
    &html[start..end]
}

/// `html` with `tail` added at the end of its body.
fn append_html(html: &str, tail: &str) -> String {
    let lower = html.to_ascii_lowercase();
    match lower.rfind("</body") {
        Some(i) => format!("{}{tail}{}", &html[..i], &html[i..]),
        None => format!("{html}{tail}"),
    }
}

fn header_text(m: &Message<'_>, name: HeaderName<'_>) -> Option<String> {
    let raw = m.header_raw(name)?;
    let v = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    // Decode encoded words for display.
    let decoded = MessageParser::new()
        .parse_headers(format!("X: {v}\r\n\r\n").as_bytes())
        .and_then(|p| p.header("X").and_then(|h| h.as_text()).map(str::to_string));
    Some(decoded.unwrap_or(v))
}

fn address_text(a: Option<&Address<'_>>) -> Option<String> {
    let a = a?;
    let list: Vec<String> = a
        .iter()
        .map(|x| match (x.name(), x.address()) {
            (Some(n), Some(e)) => format!("{n} <{e}>"),
            (None, Some(e)) => e.to_string(),
            (Some(n), None) => n.to_string(),
            (None, None) => String::new(),
        })
        .filter(|s| !s.is_empty())
        .collect();
    (!list.is_empty()).then(|| list.join(", "))
}

fn has_html(m: &Message<'_>) -> bool {
    m.html_body_count() > 0 && m.html_part(0).is_some_and(|p| p.is_text_html())
}

fn content_type(p: &mail_parser::MessagePart<'_>) -> String {
    p.content_type()
        .map(|ct| match ct.subtype() {
            Some(s) => format!("{}/{}", ct.ctype(), s),
            None => ct.ctype().to_string(),
        })
        .unwrap_or_else(|| "application/octet-stream".into())
}

/// An attachment to carry over: type, name, Content-ID when inline, bytes.
struct Carried {
    ctype: String,
    name: String,
    cid: Option<String>,
    bytes: Vec<u8>,
}

fn attachments(m: &Message<'_>, raw: &[u8]) -> Vec<Carried> {
    m.attachments()
        .enumerate()
        .map(|(i, p)| {
            let bytes = if p.is_message() {
                raw.get(p.raw_body_offset() as usize..p.raw_end_offset() as usize)
                    .map(<[u8]>::to_vec)
                    .unwrap_or_else(|| p.contents().to_vec())
            } else {
                p.contents().to_vec()
            };
            let inline = p
                .content_disposition()
                .is_some_and(|d| d.ctype().eq_ignore_ascii_case("inline"));
            Carried {
                ctype: content_type(p),
                name: p
                    .attachment_name()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("attachment-{}", i + 1)),
                cid: p
                    .content_id()
                    .filter(|_| inline)
                    .map(|c| c.trim_matches(['<', '>']).to_string()),
                bytes,
            }
        })
        .collect()
}

/// The client's message with the server's part added: for a reply the
/// original quoted (text, and HTML when the client wrote HTML), for a
/// forward the original below a header block and its attachments. The
/// client's own header fields are kept as they are (but for the
/// `Content-*` ones, which describe the new body), and a reply gets
/// `In-Reply-To:`/`References:` when the client did not set them.
/// `None` when the client's message cannot be read.
pub fn smart(client: &[u8], original: &[u8], kind: Smart) -> Option<Vec<u8>> {
    let c = MessageParser::new().parse(client)?;
    let o = MessageParser::new().parse(original);
    let mut text = c.body_text(0).map(Cow::into_owned).unwrap_or_default();
    let mut html = has_html(&c).then(|| c.body_html(0).map(Cow::into_owned).unwrap_or_default());
    let mut carried = attachments(&c, client);
    if let Some(o) = &o {
        let o_text = o.body_text(0).map(Cow::into_owned).unwrap_or_default();
        let o_html = if has_html(o) {
            o.body_html(0)
                .map(|h| html_inner(&h).to_string())
                .unwrap_or_default()
        } else {
            text_as_html(&o_text)
        };
        let from = address_text(o.from()).unwrap_or_default();
        let date = header_text(o, HeaderName::Date).unwrap_or_default();
        match kind {
            Smart::Reply => {
                let who = if date.is_empty() {
                    format!("{from} wrote:")
                } else {
                    format!("On {date}, {from} wrote:")
                };
                let quoted: String = o_text
                    .lines()
                    .map(|l| {
                        if l.starts_with('>') {
                            format!(">{l}\r\n")
                        } else {
                            format!("> {l}\r\n")
                        }
                    })
                    .collect();
                text = format!("{}\r\n\r\n{who}\r\n{quoted}", text.trim_end());
                html = html.map(|h| {
                    append_html(
                        &h,
                        &format!(
                            "<div>{}</div><blockquote type=\"cite\">{o_html}</blockquote>",
                            escape_html(&who)
                        ),
                    )
                });
            }
            Smart::Forward => {
                let mut block = vec![("From", from), ("Date", date)];
                if let Some(s) = o.subject() {
                    block.push(("Subject", s.to_string()));
                }
                if let Some(t) = address_text(o.to()) {
                    block.push(("To", t));
                }
                if let Some(t) = address_text(o.cc()) {
                    block.push(("Cc", t));
                }
                let block: Vec<(&str, String)> =
                    block.into_iter().filter(|(_, v)| !v.is_empty()).collect();
                let text_block: String =
                    block.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
                text = format!(
                    "{}\r\n\r\n-------- Forwarded message --------\r\n{text_block}\r\n{o_text}",
                    text.trim_end()
                );
                let html_block: String = block
                    .iter()
                    .map(|(k, v)| format!("<b>{k}:</b> {}<br>", escape_html(v)))
                    .collect();
                html = html.map(|h| {
                    append_html(
                        &h,
                        &format!(
                            "<div>-------- Forwarded message --------<br>{html_block}</div><br>{o_html}"
                        ),
                    )
                });
                carried.extend(attachments(o, original));
            }
        }
    }
    let mut b = MessageBuilder::new().text_body(text);
    if let Some(h) = html {
        b = b.html_body(h);
    }
    for a in carried {
        let ct = ContentType::new(a.ctype);
        b = match a.cid {
            Some(cid) => b.inline(ct, cid, a.bytes),
            None => b.attachment(ct, a.name, a.bytes),
        };
    }
    let mut body = Vec::new();
    b.serialize_body(&mut body);
    let (head, _) = split(client);
    let fs = fields(head);
    let mut out = Vec::with_capacity(body.len() + head.len() + 200);
    for f in fs.iter().filter(|f| {
        let n = field_name(f);
        let content = n.len() >= 8 && n[..8].eq_ignore_ascii_case(b"content-");
        !(content || is_named(f, "MIME-Version"))
    }) {
        out.extend_from_slice(&line(f));
    }
    if kind == Smart::Reply {
        if let Some(id) = o.as_ref().and_then(|o| o.message_id()) {
            if !fs.iter().any(|f| is_named(f, "In-Reply-To")) {
                out.extend_from_slice(format!("In-Reply-To: <{id}>\r\n").as_bytes());
            }
            if !fs.iter().any(|f| is_named(f, "References")) {
                let mut refs: Vec<String> = o
                    .as_ref()
                    .and_then(|o| o.references().as_text_list())
                    .unwrap_or_default()
                    .iter()
                    .map(|r| format!("<{r}>"))
                    .collect();
                refs.push(format!("<{id}>"));
                out.extend_from_slice(format!("References: {}\r\n", refs.join(" ")).as_bytes());
            }
        }
    }
    out.extend_from_slice(b"MIME-Version: 1.0\r\n");
    out.extend_from_slice(&body);
    Some(out)
}

/// A message from its fields, as a client that does not write MIME hands
/// it over (an ActiveSync 16.x draft; EWS CreateItem and JMAP Email/set
/// later).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Draft {
    /// `Name <address>` or an address.
    pub from: String,
    /// Address lists as written (`a@x, "B" <b@y>`).
    pub to: Option<String>,
    pub cc: Option<String>,
    pub bcc: Option<String>,
    pub subject: Option<String>,
    /// 0 low, 1 normal, 2 high.
    pub importance: Option<u8>,
    pub text: Option<String>,
    pub html: Option<String>,
    pub attachments: Vec<DraftAttachment>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DraftAttachment {
    pub name: String,
    pub content_type: String,
    /// For an inline part referred to by `cid:` from the HTML.
    pub content_id: Option<String>,
    pub data: Vec<u8>,
}

/// The header value of an address list: kept when it parses as one, else
/// `None` (a draft with a garbled To: is refused rather than sent wrong).
fn address_header(v: &str) -> Option<String> {
    let v: String = v.chars().filter(|c| !c.is_control()).collect();
    let head = format!("To: {v}\r\n\r\n");
    let parsed = MessageParser::new().parse_headers(head.as_bytes())?;
    let ok = parsed
        .header_values(HeaderName::To)
        .any(|h| !addresses_of(h).is_empty());
    ok.then_some(v)
}

/// The MIME message of a draft; `None` when an address list does not
/// read as one.
pub fn build_draft(d: &Draft, hostname: &str) -> Option<Vec<u8>> {
    use mail_builder::headers::raw::Raw;
    let clean = |s: &str| s.chars().filter(|c| !c.is_control()).collect::<String>();
    let id = new_message_id(hostname);
    let mut b = MessageBuilder::new()
        .header("From", Raw::new(clean(&d.from)))
        .message_id(id.trim_matches(['<', '>']).to_string());
    for (name, v) in [("To", &d.to), ("Cc", &d.cc), ("Bcc", &d.bcc)] {
        if let Some(v) = v.as_deref().filter(|v| !v.trim().is_empty()) {
            b = b.header(name, Raw::new(address_header(v)?));
        }
    }
    if let Some(s) = &d.subject {
        b = b.subject(clean(s));
    }
    match d.importance {
        Some(0) => b = b.header("Importance", Raw::new("low")),
        Some(2) => b = b.header("Importance", Raw::new("high")),
        _ => {}
    }
    match (&d.text, &d.html) {
        (None, None) => b = b.text_body(String::new()),
        (t, h) => {
            if let Some(t) = t {
                b = b.text_body(t.clone());
            }
            if let Some(h) = h {
                b = b.html_body(h.clone());
            }
        }
    }
    for a in &d.attachments {
        let ct = ContentType::new(a.content_type.clone());
        b = match &a.content_id {
            Some(cid) => b.inline(ct, cid.clone(), a.data.clone()),
            None => b.attachment(ct, a.name.clone(), a.data.clone()),
        };
    }
    b.write_to_vec().ok()
}

impl MailFlow {
    /// Sends a message a client composed as `principal`: the envelope from
    /// its headers ([`prepare`]; the principal's first address fills in a
    /// missing `From:`), then [`MailFlow::submit`], which decides whether
    /// the principal may send as those addresses.
    pub async fn submit_composed(
        &self,
        principal: i64,
        raw: &[u8],
        default_from: &str,
        options: SubmitOptions,
        protocol: &str,
    ) -> Result<Submitted, SubmitError> {
        let out = prepare(raw, default_from, &self.hostname)?;
        let envelope = Envelope {
            mail_from: out.mail_from.clone(),
            recipients: out.recipients.iter().map(Rcpt::new).collect(),
            body: if out.message.iter().any(|b| *b >= 0x80) {
                crate::Body::EightBitMime
            } else {
                crate::Body::SevenBit
            },
            message_id: protocol.to_string(),
            ..Envelope::default()
        };
        self.submit(principal, &envelope, &out.message, options)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8]) -> Message<'_> {
        MessageParser::new().parse(raw).expect("parses")
    }

    #[test]
    fn prepare_reads_the_envelope_and_drops_bcc() {
        let raw = b"From: Alice <alice@example.test>\r\nTo: bob@example.test, Carol <carol@x.test>\r\nCc: BOB@example.test\r\nBcc: secret@y.test,\r\n  other@y.test\r\nSubject: hi\r\n\r\nbody\r\n";
        let o = prepare(raw, "fallback@example.test", "mx.example.test").unwrap();
        assert_eq!(o.mail_from, "alice@example.test");
        assert_eq!(
            o.recipients,
            [
                "bob@example.test",
                "carol@x.test",
                "secret@y.test",
                "other@y.test"
            ]
        );
        let text = String::from_utf8(o.message.clone()).unwrap();
        assert!(!text.to_ascii_lowercase().contains("bcc"), "{text}");
        assert!(!text.contains("secret@"), "{text}");
        assert!(text.contains("Message-ID: <"), "{text}");
        assert!(text.contains("\r\nDate: ") || text.starts_with("Date: "));
        assert!(text.ends_with("\r\n\r\nbody\r\n"));
        let m = parse(&o.message);
        assert_eq!(m.subject(), Some("hi"));
    }

    #[test]
    fn prepare_fills_in_from_and_refuses_nobody() {
        let o = prepare(b"To: b@x.test\r\n\r\nhi", "me@example.test", "h").unwrap();
        assert_eq!(o.mail_from, "me@example.test");
        assert!(o.message.starts_with(b"From: <me@example.test>\r\n"));
        assert_eq!(
            prepare(b"From: a@x.test\r\nSubject: s\r\n\r\nhi", "me@x", "h"),
            Err(SubmitError::NoRecipients)
        );
        assert_eq!(
            prepare(b"From: nobody\r\nTo: b@x.test\r\n\r\nhi", "me@x", "h"),
            Err(SubmitError::BadFrom)
        );
        let s = prepare(
            b"From: a@x.test\r\nSender: sec@x.test\r\nTo: b@x.test\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <1@x>\r\n\r\nhi",
            "me@x",
            "h",
        )
        .unwrap();
        assert_eq!(s.mail_from, "sec@x.test");
        assert_eq!(s.message.windows(5).filter(|w| w == b"Date:").count(), 1);
    }

    const ORIGINAL: &[u8] = b"From: Bob <bob@example.test>\r\nTo: alice@example.test\r\nSubject: Lunch\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\nMessage-ID: <orig-1@example.test>\r\nReferences: <older@example.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nShall we meet at noon?\r\n> earlier quote\r\n--B\r\nContent-Type: application/pdf; name=menu.pdf\r\nContent-Disposition: attachment; filename=menu.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQ=\r\n--B--\r\n";

    #[test]
    fn reply_quotes_the_original_and_threads() {
        let client = b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: Re: Lunch\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nYes, noon is fine.\r\n";
        let out = smart(client, ORIGINAL, Smart::Reply).unwrap();
        let m = parse(&out);
        assert_eq!(m.subject(), Some("Re: Lunch"));
        let text = m.body_text(0).unwrap();
        assert!(text.starts_with("Yes, noon is fine."), "{text}");
        assert!(text.contains("Bob <bob@example.test> wrote:"), "{text}");
        assert!(text.contains("> Shall we meet at noon?"), "{text}");
        assert!(text.contains(">> earlier quote"), "{text}");
        assert_eq!(m.in_reply_to().as_text(), Some("orig-1@example.test"));
        let refs: Vec<&str> = m
            .references()
            .as_text_list()
            .unwrap_or_default()
            .iter()
            .map(|r| r.as_ref())
            .collect();
        assert_eq!(refs, ["older@example.test", "orig-1@example.test"]);
        // A reply does not carry the original's attachments.
        assert_eq!(m.attachment_count(), 0);
        // One Content-Type, the new one.
        let s = String::from_utf8_lossy(&out);
        assert_eq!(s.matches("charset=utf-8\r\n\r\nYes").count(), 0);
    }

    #[test]
    fn html_reply_quotes_in_a_blockquote() {
        let client = b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: Re: Lunch\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=A\r\n\r\n--A\r\nContent-Type: text/plain\r\n\r\nYes.\r\n--A\r\nContent-Type: text/html\r\n\r\n<html><body><p>Yes.</p></body></html>\r\n--A--\r\n";
        let out = smart(client, ORIGINAL, Smart::Reply).unwrap();
        let m = parse(&out);
        let html = m.body_html(0).unwrap();
        let quote = html.find("<blockquote").expect("quoted");
        assert!(html.find("<p>Yes.</p>").unwrap() < quote);
        assert!(html[quote..].contains("Shall we meet at noon?"));
        assert!(html.contains("&lt;bob@example.test&gt;"), "{html}");
        assert!(html.trim_end().ends_with("</html>"), "{html}");
    }

    #[test]
    fn forward_carries_the_attachments_and_a_header_block() {
        let client = b"From: alice@example.test\r\nTo: carol@x.test\r\nSubject: Fwd: Lunch\r\n\r\nSee below.\r\n";
        let out = smart(client, ORIGINAL, Smart::Forward).unwrap();
        let m = parse(&out);
        let text = m.body_text(0).unwrap();
        assert!(text.starts_with("See below."));
        assert!(text.contains("-------- Forwarded message --------"));
        assert!(text.contains("Subject: Lunch"), "{text}");
        assert!(text.contains("Shall we meet at noon?"));
        assert_eq!(m.attachment_count(), 1);
        let a = m.attachment(0).unwrap();
        assert_eq!(a.attachment_name(), Some("menu.pdf"));
        assert_eq!(a.contents(), b"%PDF-1.4");
        assert!(m.in_reply_to().as_text().is_none());
    }

    #[test]
    fn the_client_attachments_stay_and_an_unreadable_original_is_left_out() {
        let client = b"From: alice@example.test\r\nTo: carol@x.test\r\nSubject: Fwd\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=Q\r\n\r\n--Q\r\nContent-Type: text/plain\r\n\r\nmine\r\n--Q\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename=a.png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw==\r\n--Q--\r\n";
        let out = smart(client, b"", Smart::Forward).unwrap();
        let m = parse(&out);
        assert!(m.body_text(0).unwrap().starts_with("mine"));
        assert_eq!(m.attachment_count(), 1);
        assert_eq!(m.attachment(0).unwrap().attachment_name(), Some("a.png"));
    }

    #[test]
    fn drafts_become_messages() {
        let d = Draft {
            from: "Test User <user@example.test>".into(),
            to: Some("bob@example.test, \"Carol C\" <carol@x.test>".into()),
            bcc: Some("hidden@x.test".into()),
            subject: Some("Grüße".into()),
            importance: Some(2),
            text: Some("Hello\r\nthere".into()),
            attachments: vec![DraftAttachment {
                name: "a.txt".into(),
                content_type: "text/plain".into(),
                content_id: None,
                data: b"attached".to_vec(),
            }],
            ..Draft::default()
        };
        let raw = build_draft(&d, "mx.example.test").unwrap();
        let m = parse(&raw);
        assert_eq!(m.subject(), Some("Grüße"));
        assert_eq!(m.to().unwrap().iter().count(), 2);
        assert_eq!(
            m.bcc().unwrap().first().unwrap().address(),
            Some("hidden@x.test")
        );
        assert!(m.message_id().unwrap().ends_with("@mx.example.test"));
        assert_eq!(m.header_raw("Importance").map(str::trim), Some("high"));
        assert!(m.body_text(0).unwrap().starts_with("Hello"));
        assert_eq!(m.attachment(0).unwrap().contents(), b"attached");
        // Sent, the Bcc goes away and is a recipient.
        let o = prepare(&raw, "x@y", "h").unwrap();
        assert!(o.recipients.contains(&"hidden@x.test".to_string()));
        // A To: that is no address list, a header injected by a line break.
        let bad = Draft {
            to: Some("not an address".into()),
            ..d.clone()
        };
        assert!(build_draft(&bad, "h").is_none());
        let inj = Draft {
            subject: Some("x\r\nBcc: evil@x.test".into()),
            ..d
        };
        let raw = build_draft(&inj, "h").unwrap();
        assert!(!String::from_utf8_lossy(&raw).contains("\r\nBcc: evil"));
    }

    #[test]
    fn fields_keep_continuations() {
        let head = b"A: 1\r\nB: 2\r\n  2b\r\nC: 3";
        let f = fields(head);
        assert_eq!(f, vec![&b"A: 1\r\n"[..], b"B: 2\r\n  2b\r\n", b"C: 3"]);
        assert_eq!(
            split(b"A: 1\nB: 2\n\nbody"),
            (&b"A: 1\nB: 2\n"[..], &b"body"[..])
        );
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_do_not_panic(c in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
                                  o in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let _ = prepare(&c, "a@b.c", "h");
            let _ = smart(&c, &o, Smart::Reply);
            let _ = smart(&c, &o, Smart::Forward);
        }
    }
}
