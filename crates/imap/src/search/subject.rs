//! Base subject extraction (RFC 5256 section 2.1).

use super::text::decode_header_value;

/// The base subject and whether the subject marked a reply or forward
/// (it had a `Re:`/`Fwd:` leader, a `(fwd)` trailer or a `[fwd: ...]`
/// wrapper), which REFERENCES threading needs.
pub(crate) fn extract(subject: &str) -> (String, bool) {
    // (1) Decode encoded words; every run of whitespace becomes one space.
    let decoded = if subject.contains("=?") {
        decode_header_value(subject.as_bytes())
    } else {
        subject.to_string()
    };
    let mut s = String::with_capacity(decoded.len());
    let mut in_space = false;
    for c in decoded.chars() {
        if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
            if !in_space {
                s.push(' ');
            }
            in_space = true;
        } else {
            s.push(c);
            in_space = false;
        }
    }

    let mut reply = false;
    loop {
        // (2) Remove trailing "(fwd)" and whitespace, repeatedly.
        loop {
            let trimmed = s.trim_end_matches(' ').len();
            s.truncate(trimmed);
            if ends_with_ignore_case(&s, "(fwd)") {
                s.truncate(s.len() - 5);
                reply = true;
            } else {
                break;
            }
        }
        // (5) Repeat (3) and (4) until nothing changes.
        loop {
            let mut changed = false;
            // (3) Remove leading whitespace and subj-refwd leaders.
            loop {
                if s.starts_with(' ') {
                    s.remove(0);
                } else if let Some(n) = leader_len(&s) {
                    s.drain(..n);
                    reply = true;
                } else {
                    break;
                }
                changed = true;
            }
            // (4) Remove a leading blob if something is left after it.
            if let Some(n) = blob_len(&s) {
                if n < s.len() {
                    s.drain(..n);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        // (6) "[fwd: subject]": unwrap and start again from (2).
        if s.len() >= 6 && starts_with_ignore_case(&s, "[fwd:") && s.ends_with(']') {
            s = s[5..s.len() - 1].to_string();
            reply = true;
            continue;
        }
        return (s, reply);
    }
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

fn ends_with_ignore_case(s: &str, suffix: &str) -> bool {
    s.len() >= suffix.len()
        && s.as_bytes()[s.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
}

/// `subj-blob = "[" *BLOBCHAR "]" *WSP`: its length at the start of `s`.
fn blob_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if b.first() != Some(&b'[') {
        return None;
    }
    let close = 1 + b[1..].iter().position(|&c| c == b'[' || c == b']')?;
    if b[close] != b']' {
        return None;
    }
    Some(close + 1 + spaces(&b[close + 1..]))
}

fn spaces(b: &[u8]) -> usize {
    b.iter().take_while(|&&c| c == b' ').count()
}

/// `*subj-blob subj-refwd` where
/// `subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"`.
fn leader_len(s: &str) -> Option<usize> {
    let mut pos = 0;
    while let Some(n) = blob_len(&s[pos..]) {
        pos += n;
    }
    let rest = &s[pos..];
    for word in ["re", "fwd", "fw"] {
        if !starts_with_ignore_case(rest, word) {
            continue;
        }
        let mut p = pos + word.len();
        p += spaces(&s.as_bytes()[p..]);
        if let Some(n) = blob_len(&s[p..]) {
            p += n;
        }
        if s.as_bytes().get(p) == Some(&b':') {
            return Some(p + 1);
        }
    }
    None
}
