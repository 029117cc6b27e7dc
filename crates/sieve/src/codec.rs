//! ManageSieve wire format (RFC 5804 §4): commands are an atom followed by
//! quoted strings, literals (`{N}` or `{N+}` then N octets) and numbers,
//! ended by CRLF. No I/O here: bytes in, a command (and how many bytes it
//! used) out; responses as bytes.

/// One argument of a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arg {
    /// A quoted string or literal, as bytes.
    Str(Vec<u8>),
    /// An unquoted number or atom.
    Atom(String),
}

impl Arg {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Arg::Str(b) => std::str::from_utf8(b).ok(),
            Arg::Atom(a) => Some(a),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// Upper-cased command name.
    pub name: String,
    pub args: Vec<Arg>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole command using this many bytes of the buffer.
    Command(Command, usize),
    /// Not enough input yet.
    Incomplete,
    /// Malformed: answer NO with the text and drop this many bytes (through
    /// the end of the offending line).
    Bad(String, usize),
    /// A line or literal beyond the limits: answer and close, since the
    /// rest of the client's input cannot be framed safely.
    TooBig(String),
}

/// Parses the first command in `buf`.
pub fn parse(buf: &[u8], max_line: usize, max_literal: usize) -> Parsed {
    let mut pos = 0;
    let mut line_start = 0;
    let mut words: Vec<Arg> = Vec::new();
    loop {
        if pos - line_start > max_line {
            return Parsed::TooBig(format!("line longer than {max_line} bytes"));
        }
        let Some(&b) = buf.get(pos) else {
            return Parsed::Incomplete;
        };
        match b {
            b' ' | b'\t' => pos += 1,
            b'\r' | b'\n' => {
                let end = if b == b'\r' {
                    match buf.get(pos + 1) {
                        None => return Parsed::Incomplete,
                        Some(b'\n') => pos + 2,
                        Some(_) => pos + 1,
                    }
                } else {
                    pos + 1
                };
                let mut it = words.into_iter();
                return match it.next() {
                    None => Parsed::Bad("empty command".into(), end),
                    Some(Arg::Atom(name)) => Parsed::Command(
                        Command {
                            name: name.to_ascii_uppercase(),
                            args: it.collect(),
                        },
                        end,
                    ),
                    Some(Arg::Str(_)) => Parsed::Bad("expected a command name".into(), end),
                };
            }
            b'"' => {
                let mut out = Vec::new();
                let mut p = pos + 1;
                loop {
                    match buf.get(p) {
                        None => {
                            if p - line_start > max_line {
                                return Parsed::TooBig(format!(
                                    "line longer than {max_line} bytes"
                                ));
                            }
                            return Parsed::Incomplete;
                        }
                        Some(b'\\') => match buf.get(p + 1) {
                            None => return Parsed::Incomplete,
                            Some(&c @ (b'"' | b'\\')) => {
                                out.push(c);
                                p += 2;
                            }
                            Some(_) => return bad_line(buf, p, "bad escape in quoted string"),
                        },
                        Some(b'"') => {
                            p += 1;
                            break;
                        }
                        Some(b'\r' | b'\n') => {
                            return bad_line(buf, p, "quoted string runs past the line end")
                        }
                        Some(&c) => {
                            out.push(c);
                            p += 1;
                        }
                    }
                }
                words.push(Arg::Str(out));
                pos = p;
            }
            b'{' => {
                let Some(close) = buf[pos..].iter().position(|&c| c == b'}') else {
                    if buf.len() - pos > 24 {
                        return bad_line(buf, pos, "bad literal");
                    }
                    return Parsed::Incomplete;
                };
                let spec = &buf[pos + 1..pos + close];
                let digits = spec.strip_suffix(b"+").unwrap_or(spec);
                let n: usize = match std::str::from_utf8(digits).ok().and_then(|d| {
                    if d.is_empty() || d.len() > 12 || !d.bytes().all(|c| c.is_ascii_digit()) {
                        None
                    } else {
                        d.parse().ok()
                    }
                }) {
                    Some(n) => n,
                    None if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) => {
                        return Parsed::TooBig(format!("literal larger than {max_literal} bytes"))
                    }
                    None => return bad_line(buf, pos, "bad literal length"),
                };
                if n > max_literal {
                    return Parsed::TooBig(format!("literal larger than {max_literal} bytes"));
                }
                let mut p = pos + close + 1;
                match (buf.get(p), buf.get(p + 1)) {
                    (Some(b'\r'), Some(b'\n')) => p += 2,
                    (Some(b'\n'), _) => p += 1,
                    (None, _) | (Some(b'\r'), None) => return Parsed::Incomplete,
                    _ => return bad_line(buf, p, "literal length must end the line"),
                }
                if buf.len() < p + n {
                    return Parsed::Incomplete;
                }
                words.push(Arg::Str(buf[p..p + n].to_vec()));
                pos = p + n;
                line_start = pos;
            }
            _ => {
                let start = pos;
                while let Some(&c) = buf.get(pos) {
                    if c.is_ascii_alphanumeric()
                        || matches!(c, b'-' | b'_' | b'.' | b'*' | b'+' | b'=' | b'/')
                    {
                        pos += 1;
                    } else {
                        break;
                    }
                }
                if pos == start {
                    return bad_line(buf, pos, "unexpected character");
                }
                words.push(Arg::Atom(
                    String::from_utf8_lossy(&buf[start..pos]).into_owned(),
                ));
            }
        }
    }
}

/// A `Bad` that skips to the end of the line holding `at`, or `Incomplete`
/// while that line end has not arrived.
fn bad_line(buf: &[u8], at: usize, why: &str) -> Parsed {
    match buf[at..].iter().position(|&c| c == b'\n') {
        Some(p) => Parsed::Bad(why.into(), at + p + 1),
        None => Parsed::Incomplete,
    }
}

/// A string as ManageSieve sends it: quoted when it can be, else a literal.
pub fn string(s: &str) -> String {
    if s.len() <= 1024 && !s.contains(['\r', '\n', '\0']) {
        let mut out = String::with_capacity(s.len() + 2);
        out.push('"');
        for c in s.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
        out
    } else {
        format!("{{{}}}\r\n{}", s.len(), s)
    }
}

/// `OK`/`NO`/`BYE` with an optional response code and text.
pub fn response(kind: &str, code: Option<&str>, text: &str) -> String {
    let mut out = String::from(kind);
    if let Some(c) = code {
        out.push_str(" (");
        out.push_str(c);
        out.push(')');
    }
    if !text.is_empty() {
        out.push(' ');
        out.push_str(&string(text));
    }
    out.push_str("\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(name: &str, args: Vec<Arg>) -> Command {
        Command {
            name: name.into(),
            args,
        }
    }

    #[test]
    fn commands_strings_and_literals() {
        assert_eq!(
            parse(b"capability\r\n", 100, 100),
            Parsed::Command(cmd("CAPABILITY", vec![]), 12)
        );
        let b = b"PUTSCRIPT \"my \\\"s\\\\\" {5+}\r\nkeep;\r\nNOOP\r\n";
        match parse(b, 100, 100) {
            Parsed::Command(c, used) => {
                assert_eq!(c.name, "PUTSCRIPT");
                assert_eq!(
                    c.args,
                    vec![Arg::Str(b"my \"s\\".to_vec()), Arg::Str(b"keep;".to_vec())]
                );
                assert_eq!(&b[used..], b"NOOP\r\n");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse(b"HAVESPACE \"a\" 123\r\n", 100, 100),
            Parsed::Command(
                cmd(
                    "HAVESPACE",
                    vec![Arg::Str(b"a".to_vec()), Arg::Atom("123".into())]
                ),
                19
            )
        );
        // Synchronizing literal, lone LF line ends.
        assert_eq!(
            parse(b"CHECKSCRIPT {2}\nab\n", 100, 100),
            Parsed::Command(cmd("CHECKSCRIPT", vec![Arg::Str(b"ab".to_vec())]), 19)
        );
    }

    #[test]
    fn incomplete_bad_and_too_big() {
        assert_eq!(parse(b"NOOP", 100, 100), Parsed::Incomplete);
        assert_eq!(
            parse(b"PUTSCRIPT \"a\" {10+}\r\nkeep", 100, 100),
            Parsed::Incomplete
        );
        assert_eq!(
            parse(b"\"x\"\r\n", 100, 100),
            Parsed::Bad("expected a command name".into(), 5)
        );
        assert!(matches!(
            parse(b"GETSCRIPT \"a\r\nNOOP\r\n", 100, 100),
            Parsed::Bad(_, 14)
        ));
        assert!(matches!(parse(b"X {abc}\r\n", 100, 100), Parsed::Bad(_, 9)));
        assert!(matches!(
            parse(b"X {999999999999999}\r\n", 100, 100),
            Parsed::TooBig(_)
        ));
        assert!(matches!(
            parse(b"X {101+}\r\n", 100, 100),
            Parsed::TooBig(_)
        ));
        assert!(matches!(parse(&[b'A'; 200], 100, 100), Parsed::TooBig(_)));
        assert!(matches!(parse(b"\r\n", 100, 100), Parsed::Bad(_, 2)));
        assert!(matches!(parse(b"X @\r\n", 100, 100), Parsed::Bad(_, 5)));
    }

    #[test]
    fn responses() {
        assert_eq!(response("OK", None, ""), "OK\r\n");
        assert_eq!(
            response("NO", Some("QUOTA/MAXSIZE"), "too \"big\""),
            "NO (QUOTA/MAXSIZE) \"too \\\"big\\\"\"\r\n"
        );
        assert_eq!(string("a\r\nb"), "{4}\r\na\r\nb");
    }
}
