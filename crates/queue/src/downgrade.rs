//! 8BITMIME downgrade (RFC 6152 §3, RFC 1652 §3): when the next hop does not
//! announce 8BITMIME, a message whose body has 8-bit octets is converted to
//! 7-bit MIME instead of being returned: every 8-bit leaf part is
//! re-encoded (quoted-printable for text, base64 for anything else), its
//! Content-Transfer-Encoding replaced, and containers that claimed 8bit say
//! 7bit. Nested messages are converted recursively. Header fields are left
//! alone: 8-bit header fields need SMTPUTF8 and cannot be downgraded.

use mail_builder::encoders::base64::Base64Encoder;
use mail_builder::encoders::quoted_printable::QuotedPrintableEncoder;
use mail_parser::{MessageParser, MimeHeaders, PartType};

/// True if any octet has the high bit set.
pub fn has_8bit(data: &[u8]) -> bool {
    data.iter().any(|b| *b >= 0x80)
}

/// Returns a 7-bit version of `raw` (unchanged bytes when it is already
/// 7-bit), or why it cannot be made.
pub fn to_7bit(raw: &[u8]) -> Result<Vec<u8>, String> {
    if !has_8bit(raw) {
        return Ok(raw.to_vec());
    }
    to_7bit_depth(raw, 0)
}

fn to_7bit_depth(raw: &[u8], depth: usize) -> Result<Vec<u8>, String> {
    if depth > 20 {
        return Err("message nesting too deep to convert to 7 bit".into());
    }
    let msg = MessageParser::default()
        .parse(raw)
        .ok_or("the message cannot be parsed as MIME")?;
    let root_body = msg.root_part().offset_body as usize;
    if has_8bit(&raw[..root_body.min(raw.len())]) {
        return Err("8-bit header fields need SMTPUTF8".into());
    }
    // (start, end, replacement), non-overlapping: header blocks and leaf
    // bodies never overlap each other.
    let mut edits: Vec<(usize, usize, Vec<u8>)> = Vec::new();
    for (i, part) in msg.parts.iter().enumerate() {
        let (hs, bs, be) = (
            part.offset_header as usize,
            part.offset_body as usize,
            (part.offset_end as usize).min(raw.len()),
        );
        let body = &raw[bs.min(be)..be];
        let declared = part
            .content_transfer_encoding()
            .map(|s| s.trim().to_ascii_lowercase());
        let identity = matches!(declared.as_deref(), None | Some("7bit" | "8bit" | "binary"));
        match &part.body {
            PartType::Multipart(_) => {
                if matches!(declared.as_deref(), Some("8bit" | "binary")) {
                    edits.push((hs, bs, set_cte(&raw[hs..bs], "7bit", false)));
                }
            }
            PartType::Message(_) => {
                if has_8bit(body) {
                    if !identity {
                        return Err("an encoded part contains 8-bit octets".into());
                    }
                    edits.push((hs, bs, set_cte(&raw[hs..bs], "7bit", false)));
                    edits.push((bs, be, to_7bit_depth(body, depth + 1)?));
                }
            }
            PartType::Text(_)
            | PartType::Html(_)
            | PartType::Binary(_)
            | PartType::InlineBinary(_) => {
                if !has_8bit(body) {
                    continue;
                }
                if !identity {
                    return Err("an encoded part contains 8-bit octets".into());
                }
                let text = matches!(part.body, PartType::Text(_) | PartType::Html(_));
                let (cte, encoded) = if text {
                    let mut e = QuotedPrintableEncoder::new()
                        .preserve_line_breaks()
                        .encode(body)
                        .map_err(|e| e.to_string())?;
                    if body.ends_with(b"\n") && !e.ends_with(b"\r\n") {
                        e.extend_from_slice(b"\r\n");
                    }
                    ("quoted-printable", e)
                } else {
                    let mut e = Base64Encoder::new()
                        .wrap_lines()
                        .encode(body)
                        .map_err(|e| e.to_string())?;
                    if !e.ends_with(b"\r\n") {
                        e.extend_from_slice(b"\r\n");
                    }
                    ("base64", e)
                };
                // A plain 8-bit message without MIME header fields becomes a
                // MIME message: say what it is.
                let add_mime = i == 0 && part.content_type().is_none();
                edits.push((hs, bs, set_cte(&raw[hs..bs], cte, add_mime)));
                edits.push((bs, be, encoded));
            }
        }
    }
    edits.sort_by_key(|e| e.0);
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 3);
    let mut at = 0;
    for (start, end, rep) in edits {
        if start < at {
            return Err("overlapping MIME parts".into());
        }
        out.extend_from_slice(&raw[at..start]);
        out.extend_from_slice(&rep);
        at = end;
    }
    out.extend_from_slice(&raw[at..]);
    if has_8bit(&out) {
        return Err("8-bit octets remain outside any MIME part".into());
    }
    Ok(out)
}

/// A header block (ending with its empty line) with every
/// Content-Transfer-Encoding field replaced by one saying `cte`.
fn set_cte(block: &[u8], cte: &str, add_mime: bool) -> Vec<u8> {
    let mut fields: Vec<&[u8]> = Vec::new();
    let mut rest = block;
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|b| *b == b'\n')
            .map(|p| p + 1)
            .unwrap_or(rest.len());
        fields.push(&rest[..end]);
        rest = &rest[end..];
    }
    let mut out = Vec::with_capacity(block.len() + 64);
    let mut skipping = false;
    let mut has_mime_version = false;
    for line in &fields {
        let blank = line.iter().all(|b| *b == b'\r' || *b == b'\n');
        if blank {
            break;
        }
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !continuation {
            let name = line.split(|b| *b == b':').next().unwrap_or_default();
            let name = String::from_utf8_lossy(name).trim().to_ascii_lowercase();
            skipping = name == "content-transfer-encoding";
            has_mime_version |= name == "mime-version";
        }
        if !skipping {
            out.extend_from_slice(line);
        }
    }
    if add_mime {
        if !has_mime_version {
            out.extend_from_slice(b"MIME-Version: 1.0\r\n");
        }
        // Without a declared charset the octets are of unknown meaning
        // (RFC 1428).
        out.extend_from_slice(b"Content-Type: text/plain; charset=unknown-8bit\r\n");
    }
    out.extend_from_slice(format!("Content-Transfer-Encoding: {cte}\r\n\r\n").as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8]) -> mail_parser::Message<'_> {
        MessageParser::default().parse(raw).unwrap()
    }

    #[test]
    fn seven_bit_message_is_unchanged() {
        let m = b"Subject: a\r\n\r\nplain\r\n";
        assert_eq!(to_7bit(m).unwrap(), m);
    }

    #[test]
    fn single_part_text_becomes_quoted_printable() {
        let m = "From: a@b.example\r\nSubject: Gruesse\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGr\u{fc}\u{df}e aus K\u{f6}ln\r\nzweite Zeile\r\n".to_string();
        let out = to_7bit(m.as_bytes()).unwrap();
        assert!(!has_8bit(&out));
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(
            text.contains("Content-Transfer-Encoding: quoted-printable\r\n"),
            "{text}"
        );
        assert!(!text.contains("8bit"), "{text}");
        let body = parse(&out).body_text(0).unwrap().replace("\r\n", "\n");
        assert_eq!(
            body.trim_end(),
            "Gr\u{fc}\u{df}e aus K\u{f6}ln\nzweite Zeile"
        );
    }

    #[test]
    fn multipart_with_8bit_text_and_binary() {
        let m = b"From: a@b.example\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
preamble\r\n--XX\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\ncaf\xe9\r\n\
--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\x01\xff\xfe\r\n\
--XX\r\nContent-Type: text/plain\r\n\r\nascii only\r\n--XX--\r\n";
        let out = to_7bit(m).unwrap();
        assert!(!has_8bit(&out), "{}", String::from_utf8_lossy(&out));
        let parsed = parse(&out);
        assert_eq!(parsed.body_text(0).unwrap().trim_end(), "caf\u{e9}");
        let att = parsed.attachment(0).unwrap();
        assert_eq!(att.contents(), b"\x00\x01\xff\xfe");
        assert_eq!(parsed.body_text(1).unwrap().trim_end(), "ascii only");
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(
                "Content-Type: multipart/mixed; boundary=XX\r\nContent-Transfer-Encoding: 7bit\r\n"
            ),
            "{text}"
        );
        assert!(text.contains("--XX--"));
    }

    #[test]
    fn bare_8bit_message_gets_mime_fields() {
        let m = b"From: a@b.example\r\nSubject: x\r\n\r\nna\xefve\r\n";
        let out = to_7bit(m).unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.contains("MIME-Version: 1.0\r\n"), "{text}");
        assert!(text.contains("charset=unknown-8bit"), "{text}");
        assert!(
            text.contains("Content-Transfer-Encoding: quoted-printable"),
            "{text}"
        );
        assert!(text.contains("na=EFve"), "{text}");
    }

    #[test]
    fn nested_message_is_converted() {
        let m = b"From: a@b.example\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=O\r\n\r\n--O\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n\
--O\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\nFrom: c@d.example\r\nSubject: inner\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\xc3\xa9t\xc3\xa9\r\n--O--\r\n";
        let out = to_7bit(m).unwrap();
        assert!(!has_8bit(&out), "{}", String::from_utf8_lossy(&out));
        let parsed = parse(&out);
        let inner = parsed.attachment(0).unwrap().message().unwrap();
        assert_eq!(inner.body_text(0).unwrap().trim_end(), "\u{e9}t\u{e9}");
    }

    #[test]
    fn eight_bit_headers_and_bad_encodings_are_refused() {
        assert!(to_7bit(b"Subject: caf\xc3\xa9\r\n\r\nbody\r\n").is_err());
        let bad =
            b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n\xff\xff\r\n";
        assert!(to_7bit(bad).is_err());
    }
}
