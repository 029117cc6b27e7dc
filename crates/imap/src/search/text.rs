//! Text the SEARCH string keys look in: decoded header fields and decoded
//! body text, and the case-insensitive substring test they share.

use mail_parser::decoders::html::html_to_text;
use mail_parser::parsers::MessageStream;
use mail_parser::{Message, MessageParser, PartType};

/// Case-insensitive substring test (RFC 3501 6.4.4: "the field contains
/// the string"). Folds with Unicode lower-casing, which is close to
/// i;unicode-casemap for the scripts mail uses. An empty needle matches.
pub(crate) fn contains_fold(haystack: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    fold(haystack).contains(&fold(needle))
}

/// The comparison form of a string: lower-cased, whitespace runs kept.
pub(crate) fn fold(s: &str) -> String {
    if s.is_ascii() {
        s.to_ascii_lowercase()
    } else {
        s.to_lowercase()
    }
}

/// Unfolds a raw header value and decodes its RFC 2047 encoded words
/// (whitespace between two adjacent encoded words is dropped, RFC 2047 6.2).
/// Unknown charsets and malformed words are left as written.
pub(crate) fn decode_header_value(raw: &[u8]) -> String {
    // Unfold: CRLF (or LF) followed by whitespace is just the whitespace.
    let mut unfolded = Vec::with_capacity(raw.len());
    for &b in raw {
        if b != b'\r' && b != b'\n' {
            unfolded.push(b);
        }
    }
    let v = &unfolded[..];
    let mut out = String::with_capacity(v.len());
    let mut i = 0;
    let mut plain_start = 0;
    // Where the text since the last encoded word is only whitespace, this
    // is the length of `out` before that whitespace.
    let mut after_word: Option<usize> = None;
    while i < v.len() {
        if v[i] == b'=' && v.get(i + 1) == Some(&b'?') {
            let mut stream = MessageStream::new(&v[i + 1..]);
            if let Some(word) = stream.decode_rfc2047() {
                let consumed = stream.offset();
                let between = &v[plain_start..i];
                match after_word {
                    Some(_) if between.iter().all(|b| b.is_ascii_whitespace()) => {}
                    _ => out.push_str(&bytes_to_string(between)),
                }
                out.push_str(&word);
                i += 1 + consumed;
                plain_start = i;
                after_word = Some(out.len());
                continue;
            }
        }
        if !v[i].is_ascii_whitespace() {
            after_word = None;
        }
        i += 1;
    }
    out.push_str(&bytes_to_string(&v[plain_start..]));
    out
}

/// UTF-8 if it is; otherwise Latin-1 (raw 8-bit headers in the wild).
fn bytes_to_string(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        Err(_) => b.iter().map(|&c| c as char).collect(),
    }
}

/// The header fields of a header block, in order: (name, raw value with
/// its folding still in).
pub(crate) fn header_fields(block: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut fields = Vec::new();
    let mut start: Option<usize> = None;
    let mut pos = 0;
    while pos < block.len() {
        let end = block[pos..]
            .iter()
            .position(|&c| c == b'\n')
            .map_or(block.len(), |p| pos + p + 1);
        let line = &block[pos..end];
        if line.iter().all(|&c| c == b'\r' || c == b'\n') {
            break;
        }
        if line[0] != b' ' && line[0] != b'\t' {
            if let Some(s) = start {
                push_field(&mut fields, &block[s..pos]);
            }
            start = Some(pos);
        }
        pos = end;
    }
    if let Some(s) = start {
        push_field(&mut fields, &block[s..pos]);
    }
    fields
}

fn push_field<'b>(fields: &mut Vec<(&'b [u8], &'b [u8])>, field: &'b [u8]) {
    if let Some(colon) = field.iter().position(|&c| c == b':') {
        let name = trim(&field[..colon]);
        if !name.is_empty() {
            fields.push((name, trim(&field[colon + 1..])));
        }
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let s = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let e = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(s, |p| p + 1);
    &b[s..e.max(s)]
}

/// The header block at the start of a raw message (up to and including the
/// blank line, or everything when there is none).
pub(crate) fn header_block(raw: &[u8]) -> &[u8] {
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\n' {
            match raw.get(i + 1) {
                Some(b'\n') => return &raw[..i + 2],
                Some(b'\r') if raw.get(i + 2) == Some(&b'\n') => return &raw[..i + 3],
                _ => {}
            }
        }
        i += 1;
    }
    raw
}

/// All header fields of the top-level message, decoded, as "Name: value"
/// lines (what TEXT searches besides the body).
pub(crate) fn header_text(raw: &[u8]) -> String {
    let mut out = String::new();
    for (name, value) in header_fields(header_block(raw)) {
        out.push_str(&bytes_to_string(name));
        out.push_str(": ");
        out.push_str(&decode_header_value(value));
        out.push('\n');
    }
    out
}

/// The decoded text of every text part of the body (transfer encoding and
/// charset undone; HTML reduced to its text), nested messages' headers and
/// text included. Parts are separated by newlines.
pub(crate) fn body_text(raw: &[u8]) -> String {
    let mut out = String::new();
    match MessageParser::default().parse(raw) {
        Some(msg) => collect_body(&msg, &mut out, 0),
        None => {
            let h = header_block(raw).len();
            out.push_str(&bytes_to_string(&raw[h..]));
        }
    }
    out
}

/// Nested message/rfc822 deeper than this is not searched.
const MAX_NESTING: usize = 8;

fn collect_body(msg: &Message, out: &mut String, depth: usize) {
    // Part 0 is the message itself: its body is a leaf or the multipart
    // container whose children are listed after it.
    for part in &msg.parts {
        match &part.body {
            PartType::Text(t) => {
                out.push_str(t);
                out.push('\n');
            }
            PartType::Html(h) => {
                out.push_str(&html_to_text(h));
                out.push('\n');
            }
            PartType::Message(inner) if depth < MAX_NESTING => {
                out.push_str(&header_text(inner.raw_message()));
                collect_body(inner, out, depth + 1);
            }
            _ => {}
        }
    }
}
