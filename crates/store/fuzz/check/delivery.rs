//! What the `delivery` fuzz target checks: the message path of
//! `Store::deliver` without the database. The input is the message as the
//! SMTP or LMTP server hands it over. Checked, besides "never panics":
//!
//! - `crlf_normalized` turns every line end (CRLF, lone LF, lone CR) into
//!   CRLF and changes nothing else, leaves messages with a
//!   `Content-Transfer-Encoding: binary` part alone, and is idempotent;
//! - `MessageMeta::parse` of the result, written as JSON (as delivery
//!   stores it) and read back (as IMAP does), is the same value: a message
//!   whose metadata cannot be read back could never be fetched;
//! - every part's size and line count are those of the octets IMAP sends
//!   for it (`BODY[n]` takes the same offsets, clamped to the message).

use std::sync::Arc;

use outpost_store::meta::BodyPart;
use outpost_store::{crlf_normalized, MessageMeta};

/// Every line end as CRLF, written independently of the store's code.
pub fn expected_crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                if raw.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// How IMAP's FETCH cuts a part out of the stored message.
fn slice(raw: &[u8], a: u32, b: u32) -> &[u8] {
    let a = (a as usize).min(raw.len());
    let b = (b as usize).clamp(a, raw.len());
    &raw[a..b]
}

fn check_part(p: &BodyPart, raw: &[u8], depth: usize) {
    assert!(depth < 200, "part tree deeper than the parser's limit");
    let body = slice(raw, p.body_start, p.end);
    assert_eq!(
        p.size,
        body.len() as u64,
        "part size differs from its octets"
    );
    if p.mime_type == "text" && p.parts.is_empty() {
        let lines = body.iter().filter(|&&b| b == b'\n').count() as u64;
        assert_eq!(p.lines, lines, "text part line count");
    }
    assert_eq!(p.mime_type, p.mime_type.to_ascii_lowercase());
    assert_eq!(p.subtype, p.subtype.to_ascii_lowercase());
    for c in &p.parts {
        check_part(c, raw, depth + 1);
    }
    if let Some(inner) = &p.message {
        check_part(&inner.1, raw, depth + 1);
    }
}

/// The fuzz target's body.
pub fn delivery(data: &[u8]) {
    let raw: Arc<[u8]> = Arc::from(data);
    let norm = crlf_normalized(raw.clone());
    let want = expected_crlf(data);
    if *norm != *want {
        // Left alone: only for a message that declares a binary part.
        assert_eq!(&*norm, data, "normalisation changed more than line ends");
        let lower = data.to_ascii_lowercase();
        let label = b"content-transfer-encoding:";
        assert!(
            lower.windows(label.len()).any(|w| w == label)
                && lower.windows(6).any(|w| w == b"binary"),
            "bare line ends kept in a message without a binary part"
        );
    }
    let again = crlf_normalized(norm.clone());
    assert_eq!(*again, *norm, "normalisation is not idempotent");

    let meta = MessageMeta::parse(&norm);
    assert!(meta.header_len as usize <= norm.len());
    check_part(&meta.body, &norm, 0);
    let json = serde_json::to_string(&meta).expect("metadata serialises");
    let back: MessageMeta = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("stored metadata does not read back: {e}"));
    assert!(back == meta, "metadata changes through JSON");
}
