//! SMTP replies with RFC 2034/3463 enhanced status codes. Written with
//! `smtp_proto::Response`; this module only makes sure that whatever text
//! goes in (a client's address, a hostname) cannot break the reply line.

use std::fmt;

/// RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets with CRLF.
const MAX_TEXT: usize = 400;

/// One single-line reply: `code esc text`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// Enhanced status code (RFC 3463) `class.subject.detail`.
    pub esc: [u8; 3],
    pub text: String,
}

impl Reply {
    /// Builds a reply. Control characters and non-ASCII in `text` are
    /// replaced, and overly long text is cut, so that the reply is always
    /// one well-formed line.
    pub fn new(code: u16, esc: [u8; 3], text: impl AsRef<str>) -> Reply {
        let mut clean = String::with_capacity(text.as_ref().len());
        for c in text.as_ref().chars() {
            if clean.len() >= MAX_TEXT {
                clean.push_str("...");
                break;
            }
            clean.push(match c {
                ' '..='~' => c,
                _ => '?',
            });
        }
        Reply {
            code,
            esc,
            text: clean,
        }
    }

    /// 4xx or 5xx.
    pub fn is_error(&self) -> bool {
        self.code >= 400
    }

    /// Appends the reply, CRLF included, to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let r = smtp_proto::Response::new(
            self.code,
            self.esc[0],
            self.esc[1],
            self.esc[2],
            self.text.as_str(),
        );
        // Writing into a Vec cannot fail.
        let _ = r.write(out);
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}.{}.{} {}",
            self.code, self.esc[0], self.esc[1], self.esc[2], self.text
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_is_one_clean_line() {
        let r = Reply::new(550, [5, 1, 1], "no such user <a\r\nb@é.example>");
        let mut out = Vec::new();
        r.write_to(&mut out);
        assert_eq!(out, b"550 5.1.1 no such user <a??b@?.example>\r\n");
        let long = Reply::new(250, [2, 0, 0], "x".repeat(2000));
        let mut out = Vec::new();
        long.write_to(&mut out);
        assert!(out.len() < 512);
        assert!(out.ends_with(b"...\r\n"));
    }
}
