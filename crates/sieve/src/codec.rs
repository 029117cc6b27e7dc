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
///
/// A whole command is at most `max_line + max_literal` bytes (one
/// full-size literal, a script, plus a line's worth of the rest). A longer
/// one is `TooBig` even where the parser would otherwise wait for more:
/// for the line end after a syntax error, or for yet another literal.
/// Without that bound a client could make the server buffer without limit.
pub fn parse(buf: &[u8], max_line: usize, max_literal: usize) -> Parsed {
    let max_command = max_line.saturating_add(max_literal);
    let too_big = || Parsed::TooBig(format!("command longer than {max_command} bytes"));
    match parse_command(buf, max_line, max_literal) {
        Parsed::Incomplete if buf.len() > max_command => too_big(),
        Parsed::Command(_, used) | Parsed::Bad(_, used) if used > max_command => too_big(),
        parsed => parsed,
    }
}

fn parse_command(buf: &[u8], max_line: usize, max_literal: usize) -> Parsed {
    let bad =
        |at: usize, line_start: usize, why: &str| bad_line(buf, at, why, line_start, max_line);
    // Waiting for more of a line that is already too long is TooBig,
    // wherever the parser waits, so that the answer does not depend on how
    // the bytes were split.
    let wait = |line_start: usize| {
        if buf.len() - line_start > max_line {
            Parsed::TooBig(format!("line longer than {max_line} bytes"))
        } else {
            Parsed::Incomplete
        }
    };
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
                        None => return wait(line_start),
                        Some(b'\\') => match buf.get(p + 1) {
                            None => return wait(line_start),
                            Some(&c @ (b'"' | b'\\')) => {
                                out.push(c);
                                p += 2;
                            }
                            Some(_) => return bad(p, line_start, "bad escape in quoted string"),
                        },
                        Some(b'"') => {
                            p += 1;
                            break;
                        }
                        Some(b'\r' | b'\n') => {
                            return bad(p, line_start, "quoted string runs past the line end")
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
                // The length ends at "}"; a line end before it ends the
                // search (a bad literal, not a wait for more input).
                let close = buf[pos..].iter().position(|&c| c == b'}' || c == b'\n');
                let Some(close) = close.filter(|&i| buf[pos + i] == b'}') else {
                    if close.is_some() || buf.len() - pos > 24 {
                        return bad(pos, line_start, "bad literal");
                    }
                    return wait(line_start);
                };
                if pos + close + 1 - line_start > max_line {
                    return Parsed::TooBig(format!("line longer than {max_line} bytes"));
                }
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
                    None => return bad(pos, line_start, "bad literal length"),
                };
                if n > max_literal {
                    return Parsed::TooBig(format!("literal larger than {max_literal} bytes"));
                }
                let mut p = pos + close + 1;
                match (buf.get(p), buf.get(p + 1)) {
                    (Some(b'\r'), Some(b'\n')) => p += 2,
                    (Some(b'\n'), _) => p += 1,
                    (None, _) | (Some(b'\r'), None) => return Parsed::Incomplete,
                    _ => return bad(p, line_start, "literal length must end the line"),
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
                    return bad(pos, line_start, "unexpected character");
                }
                words.push(Arg::Atom(
                    String::from_utf8_lossy(&buf[start..pos]).into_owned(),
                ));
            }
        }
    }
}

/// A `Bad` that skips to the end of the line holding `at`, or `Incomplete`
/// while that line end has not arrived. A line longer than `max_line` is
/// `TooBig` here too, whether or not its end is in the buffer yet, so that
/// the answer does not depend on how the bytes arrived.
fn bad_line(buf: &[u8], at: usize, why: &str, line_start: usize, max_line: usize) -> Parsed {
    let end = buf[at..].iter().position(|&c| c == b'\n').map(|p| at + p);
    if end.unwrap_or(buf.len()) - line_start > max_line {
        return Parsed::TooBig(format!("line longer than {max_line} bytes"));
    }
    match end {
        Some(lf) => Parsed::Bad(why.into(), lf + 1),
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

    /// Found by the `managesieve` fuzz target: after a syntax error the
    /// parser waited for a line end without limit ("X @" and no LF), and
    /// literal after literal, each within `max_literal`, never ended a
    /// command; the server buffered all of it. And an over-long bad line
    /// was `Bad` when its end had arrived but `TooBig` while it was still
    /// arriving, so the answer depended on how the bytes were split.
    #[test]
    fn input_is_bounded_by_a_line_plus_a_literal() {
        let mut long = b"X \"".to_vec();
        long.extend(vec![b'q'; 200]);
        assert!(matches!(parse(&long, 100, 100), Parsed::TooBig(_)));
        long.extend_from_slice(b"\r\n");
        assert!(matches!(parse(&long, 100, 100), Parsed::TooBig(_)));
        let mut endless = b"X @".to_vec();
        endless.extend(vec![b'a'; 4000]);
        assert!(matches!(parse(&endless, 100, 100), Parsed::TooBig(_)));
        let mut literals = b"X".to_vec();
        for _ in 0..5 {
            literals.extend_from_slice(b" {50+}\r\n");
            literals.extend(vec![b'x'; 50]);
        }
        assert!(matches!(parse(&literals, 100, 100), Parsed::TooBig(_)));
        // Too long a line is TooBig also where the parser waits inside a
        // quoted string or a literal length, and when the line ends in one.
        assert!(matches!(
            parse(b"X \"\\\\\\\\\\", 6, 100),
            Parsed::TooBig(_)
        ));
        assert!(matches!(
            parse(b"X \"\\\\\\\\\\\\", 6, 100),
            Parsed::TooBig(_)
        ));
        assert!(matches!(parse(b"NOOP {12", 6, 100), Parsed::TooBig(_)));
        assert!(matches!(
            parse(b"NOOP {1}\r\nx\r\n", 6, 100),
            Parsed::TooBig(_)
        ));
        assert!(matches!(
            parse(b"NOOP {1}\r\nx\r\n", 8, 100),
            Parsed::Command(..)
        ));
        // A bad literal length followed by the next command is a bad line,
        // not part of a command too long.
        assert_eq!(
            parse(b"X {3x\r\nX {9999999", 16, 0),
            Parsed::Bad("bad literal".into(), 7)
        );
        // A full-size literal with its line still parses, and waits while
        // it arrives.
        let mut put = b"PUTSCRIPT \"s\" {100+}\r\n".to_vec();
        put.extend(vec![b'k'; 100]);
        put.extend_from_slice(b"\r\n");
        assert_eq!(parse(&put[..put.len() - 1], 100, 100), Parsed::Incomplete);
        assert!(matches!(parse(&put, 100, 100), Parsed::Command(..)));
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
