//! Modified UTF-7 for mailbox names (RFC 3501 section 5.1.3).
//!
//! Printable US-ASCII other than `&` stands for itself, `&` is written `&-`,
//! and every other run of characters is UTF-16BE in a base64 variant (`,`
//! instead of `/`, no padding) between `&` and `-`.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

fn b64_value(c: u8) -> Option<u32> {
    match c {
        b'A'..=b'Z' => Some((c - b'A') as u32),
        b'a'..=b'z' => Some((c - b'a') as u32 + 26),
        b'0'..=b'9' => Some((c - b'0') as u32 + 52),
        b'+' => Some(62),
        b',' => Some(63),
        _ => None,
    }
}

/// Encodes a Unicode mailbox name as modified UTF-7.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    for ch in name.chars() {
        if (' '..='~').contains(&ch) {
            flush(&mut pending, &mut out);
            if ch == '&' {
                out.push_str("&-");
            } else {
                out.push(ch);
            }
        } else {
            let mut units = [0u16; 2];
            pending.extend_from_slice(ch.encode_utf16(&mut units));
        }
    }
    flush(&mut pending, &mut out);
    out
}

fn flush(units: &mut Vec<u16>, out: &mut String) {
    if units.is_empty() {
        return;
    }
    out.push('&');
    let mut bits: u32 = 0;
    let mut nbits = 0;
    for unit in units.drain(..) {
        bits = (bits << 16) | unit as u32;
        nbits += 16;
        while nbits >= 6 {
            nbits -= 6;
            out.push(ALPHABET[((bits >> nbits) & 0x3f) as usize] as char);
        }
        bits &= (1 << nbits) - 1;
    }
    if nbits > 0 {
        out.push(ALPHABET[((bits << (6 - nbits)) & 0x3f) as usize] as char);
    }
    out.push('-');
}

/// Why a name is not valid modified UTF-7.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Utf7Error;

impl std::fmt::Display for Utf7Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("mailbox name is not valid modified UTF-7")
    }
}

impl std::error::Error for Utf7Error {}

/// Decodes a modified UTF-7 mailbox name.
pub fn decode(name: &[u8]) -> Result<String, Utf7Error> {
    let mut out = String::with_capacity(name.len());
    let mut i = 0;
    while i < name.len() {
        let c = name[i];
        if c == b'&' {
            let start = i + 1;
            let end = start
                + name[start..]
                    .iter()
                    .position(|&b| b == b'-')
                    .ok_or(Utf7Error)?;
            if end == start {
                out.push('&');
            } else {
                decode_run(&name[start..end], &mut out)?;
            }
            i = end + 1;
        } else if (0x20..=0x7e).contains(&c) {
            out.push(c as char);
            i += 1;
        } else {
            return Err(Utf7Error);
        }
    }
    Ok(out)
}

fn decode_run(run: &[u8], out: &mut String) -> Result<(), Utf7Error> {
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut units = Vec::with_capacity(run.len() * 6 / 16);
    for &c in run {
        bits = (bits << 6) | b64_value(c).ok_or(Utf7Error)?;
        nbits += 6;
        if nbits >= 16 {
            nbits -= 16;
            units.push(((bits >> nbits) & 0xffff) as u16);
            bits &= (1 << nbits) - 1;
        }
    }
    // Leftover bits are padding: fewer than 6 of them, all zero.
    if nbits >= 6 || bits != 0 {
        return Err(Utf7Error);
    }
    let mut any = false;
    for ch in char::decode_utf16(units) {
        let ch = ch.map_err(|_| Utf7Error)?;
        // A shifted run must not encode what could have been written directly.
        if (' '..='~').contains(&ch) {
            return Err(Utf7Error);
        }
        out.push(ch);
        any = true;
    }
    if any {
        Ok(())
    } else {
        Err(Utf7Error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_examples() {
        assert_eq!(
            decode(b"~peter/mail/&U,BTFw-/&ZeVnLIqe-").unwrap(),
            "~peter/mail/台北/日本語"
        );
        assert_eq!(
            encode("~peter/mail/台北/日本語"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
        assert_eq!(decode(b"Tom &- Jerry").unwrap(), "Tom & Jerry");
        assert_eq!(encode("Tom & Jerry"), "Tom &- Jerry");
    }

    #[test]
    fn common_names() {
        assert_eq!(encode("Entwürfe"), "Entw&APw-rfe");
        assert_eq!(decode(b"Entw&APw-rfe").unwrap(), "Entwürfe");
        assert_eq!(encode("Gesendete Objekte"), "Gesendete Objekte");
        assert_eq!(encode("Корзина"), "&BBoEPgRABDcEOAQ9BDA-");
        assert_eq!(encode("😀"), "&2D3eAA-");
        assert_eq!(decode(b"&2D3eAA-").unwrap(), "😀");
    }

    #[test]
    fn rejects_bad_input() {
        assert!(decode(b"&U,BTFw").is_err()); // unterminated
        assert!(decode(b"&AGE-").is_err()); // encodes plain 'a'
        assert!(decode(b"&!!-").is_err());
        assert!(decode(b"caf\xc3\xa9").is_err());
        assert!(decode(b"&2D0-").is_err()); // lone surrogate
    }

    #[test]
    fn roundtrip_many() {
        for s in [
            "",
            "a",
            "&",
            "&&",
            "ü&ü",
            "a\u{7f}b",
            "日本語 & 中文",
            "x\u{10ffff}y",
        ] {
            assert_eq!(decode(encode(s).as_bytes()).unwrap(), s, "{s:?}");
        }
    }
}
