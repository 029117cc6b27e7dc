//! The POP3 wire format, without I/O.
//!
//! - [`LineBuffer`] frames client input into lines and enforces the line
//!   length limit.
//! - [`parse_command`] turns one line into a typed [`Command`].
//! - [`Response`] builds status lines and multi-line responses; [`Lines`],
//!   [`wire_size`] and [`Response::message`] do the line-ending
//!   normalisation and dot-stuffing of message bodies (RFC 1939 §3).

use std::fmt;

/// A message number as the client wrote it (1-based, RFC 1939 §3).
/// Whether it names a message is for the session to decide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsgNum(pub u64);

/// A password or SASL payload. Its `Debug` never shows the content, so a
/// stray `{:?}` in a log line cannot leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A client command (RFC 1939 §4–§7, RFC 2449 CAPA, RFC 2595 STLS,
/// RFC 5034 AUTH).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    User(String),
    /// The whole rest of the line: RFC 1939 §7 allows spaces in passwords.
    Pass(Secret),
    /// `AUTH` alone (list mechanisms) or `AUTH mechanism [initial-response]`.
    /// The initial response is still base64; `=` stands for an empty one.
    Auth {
        mechanism: Option<String>,
        initial: Option<Secret>,
    },
    Apop,
    Capa,
    Stls,
    Quit,
    Stat,
    List(Option<MsgNum>),
    Retr(MsgNum),
    Dele(MsgNum),
    Noop,
    Rset,
    /// Message number and the number of body lines.
    Top(MsgNum, u64),
    Uidl(Option<MsgNum>),
}

/// Why a line is not a command. The `Display` text is what the client sees
/// after `-ERR `.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    Empty,
    NotUtf8,
    Unknown(String),
    MissingArgument(&'static str),
    TooManyArguments(&'static str),
    BadNumber(&'static str),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Empty => f.write_str("Empty command"),
            ParseError::NotUtf8 => f.write_str("Command is not valid UTF-8"),
            ParseError::Unknown(k) => write!(f, "Unknown command: {}", printable(k, 16)),
            ParseError::MissingArgument(k) => write!(f, "{k}: missing argument"),
            ParseError::TooManyArguments(k) => write!(f, "{k}: too many arguments"),
            ParseError::BadNumber(k) => write!(f, "{k}: invalid number"),
        }
    }
}

impl std::error::Error for ParseError {}

/// Parses one command line, without its line ending.
pub fn parse_command(line: &[u8]) -> Result<Command, ParseError> {
    let line = std::str::from_utf8(line).map_err(|_| ParseError::NotUtf8)?;
    let (keyword, rest) = match line.find(' ') {
        Some(i) => (&line[..i], Some(&line[i + 1..])),
        None => (line, None),
    };
    if keyword.is_empty() {
        return Err(ParseError::Empty);
    }
    let kw = keyword.to_ascii_uppercase();
    // PASS keeps its argument verbatim; everything else is space-separated
    // tokens, tolerating extra spaces a sloppy client may send.
    if kw == "PASS" {
        return match rest {
            Some(p) => Ok(Command::Pass(Secret(p.to_owned()))),
            None => Err(ParseError::MissingArgument("PASS")),
        };
    }
    let args: Vec<&str> = rest
        .map(|r| r.split_ascii_whitespace().collect())
        .unwrap_or_default();
    let cmd = match kw.as_str() {
        "USER" => {
            let [name] = exact::<1>(&args, "USER")?;
            Command::User(name.to_owned())
        }
        "AUTH" => match args.as_slice() {
            [] => Command::Auth {
                mechanism: None,
                initial: None,
            },
            [m] => Command::Auth {
                mechanism: Some(m.to_ascii_uppercase()),
                initial: None,
            },
            [m, ir] => Command::Auth {
                mechanism: Some(m.to_ascii_uppercase()),
                initial: Some(Secret((*ir).to_owned())),
            },
            _ => return Err(ParseError::TooManyArguments("AUTH")),
        },
        "APOP" => Command::Apop,
        "CAPA" => none(&args, "CAPA", Command::Capa)?,
        "STLS" => none(&args, "STLS", Command::Stls)?,
        "QUIT" => none(&args, "QUIT", Command::Quit)?,
        "STAT" => none(&args, "STAT", Command::Stat)?,
        "NOOP" => none(&args, "NOOP", Command::Noop)?,
        "RSET" => none(&args, "RSET", Command::Rset)?,
        "LIST" => Command::List(optional_num(&args, "LIST")?),
        "UIDL" => Command::Uidl(optional_num(&args, "UIDL")?),
        "RETR" => {
            let [n] = exact::<1>(&args, "RETR")?;
            Command::Retr(msg_num(n, "RETR")?)
        }
        "DELE" => {
            let [n] = exact::<1>(&args, "DELE")?;
            Command::Dele(msg_num(n, "DELE")?)
        }
        "TOP" => {
            let [n, lines] = exact::<2>(&args, "TOP")?;
            Command::Top(msg_num(n, "TOP")?, number(lines, "TOP", true)?)
        }
        _ => return Err(ParseError::Unknown(keyword.to_owned())),
    };
    Ok(cmd)
}

fn exact<'a, const N: usize>(
    args: &[&'a str],
    kw: &'static str,
) -> Result<[&'a str; N], ParseError> {
    if args.len() < N {
        return Err(ParseError::MissingArgument(kw));
    }
    <[&str; N]>::try_from(args).map_err(|_| ParseError::TooManyArguments(kw))
}

fn none(args: &[&str], kw: &'static str, cmd: Command) -> Result<Command, ParseError> {
    if args.is_empty() {
        Ok(cmd)
    } else {
        Err(ParseError::TooManyArguments(kw))
    }
}

fn optional_num(args: &[&str], kw: &'static str) -> Result<Option<MsgNum>, ParseError> {
    match args {
        [] => Ok(None),
        [n] => Ok(Some(msg_num(n, kw)?)),
        _ => Err(ParseError::TooManyArguments(kw)),
    }
}

fn msg_num(s: &str, kw: &'static str) -> Result<MsgNum, ParseError> {
    number(s, kw, false).map(MsgNum)
}

/// Decimal digits only (no sign, no spaces). `saturate` clamps huge values
/// (a TOP line count of 10^30 simply means "all of it").
fn number(s: &str, kw: &'static str, saturate: bool) -> Result<u64, ParseError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::BadNumber(kw));
    }
    match s.parse::<u64>() {
        Ok(n) => Ok(n),
        Err(_) if saturate => Ok(u64::MAX),
        Err(_) => Err(ParseError::BadNumber(kw)),
    }
}

impl Command {
    /// The command as a client would send it, with CRLF. Parsing the result
    /// gives the same command back (used by the codec's round-trip tests).
    pub fn to_line(&self) -> String {
        let n = |m: &Option<MsgNum>| m.map(|m| format!(" {}", m.0)).unwrap_or_default();
        let body = match self {
            Command::User(u) => format!("USER {u}"),
            Command::Pass(p) => format!("PASS {}", p.0),
            Command::Auth { mechanism, initial } => {
                let mut s = "AUTH".to_owned();
                if let Some(m) = mechanism {
                    s.push(' ');
                    s.push_str(m);
                }
                if let Some(ir) = initial {
                    s.push(' ');
                    s.push_str(&ir.0);
                }
                s
            }
            Command::Apop => "APOP".into(),
            Command::Capa => "CAPA".into(),
            Command::Stls => "STLS".into(),
            Command::Quit => "QUIT".into(),
            Command::Stat => "STAT".into(),
            Command::List(m) => format!("LIST{}", n(m)),
            Command::Retr(m) => format!("RETR {}", m.0),
            Command::Dele(m) => format!("DELE {}", m.0),
            Command::Noop => "NOOP".into(),
            Command::Rset => "RSET".into(),
            Command::Top(m, l) => format!("TOP {} {l}", m.0),
            Command::Uidl(m) => format!("UIDL{}", n(m)),
        };
        body + "\r\n"
    }
}

/// Shortens and strips control characters so client input can be echoed in
/// a status line or a log without breaking either.
pub fn printable(s: &str, max: usize) -> String {
    s.chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

// ---------------------------------------------------------------------------
// Framing

/// One framed input line, or the news that a line was too long (its bytes
/// have been thrown away up to and including its line ending).
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    Line(Vec<u8>),
    TooLong,
}

/// Splits client input into lines. A line ends at LF; a CR before it is
/// dropped (bare LF is tolerated, as most servers do). Lines longer than
/// `max` octets including the line ending are reported as
/// [`Frame::TooLong`] and skipped without buffering them.
#[derive(Debug)]
pub struct LineBuffer {
    buf: Vec<u8>,
    max: usize,
    /// Inside an overlong line: drop everything up to the next LF.
    discarding: bool,
}

impl LineBuffer {
    pub fn new(max: usize) -> LineBuffer {
        LineBuffer {
            buf: Vec::new(),
            max: max.max(3),
            discarding: false,
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Drops buffered input. Needed after STLS: anything the client sent
    /// after the STLS line arrived in plaintext and must not be executed
    /// under TLS (the STARTTLS command-injection attack).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.discarding = false;
    }

    /// True when bytes are buffered that do not yet form a whole line.
    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty()
    }

    /// The next whole line, if one is buffered.
    pub fn next_frame(&mut self) -> Option<Frame> {
        match self.buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let mut line: Vec<u8> = self.buf.drain(..=i).collect();
                if self.discarding {
                    self.discarding = false;
                    return Some(Frame::TooLong);
                }
                if line.len() > self.max {
                    return Some(Frame::TooLong);
                }
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                Some(Frame::Line(line))
            }
            None => {
                if self.buf.len() >= self.max {
                    // Keep memory bounded: forget the overlong prefix and
                    // remember to drop the rest of the line.
                    self.buf.clear();
                    self.discarding = true;
                }
                None
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Responses

/// Extended response codes (RFC 2449 §8, RFC 3206).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RespCode {
    /// `[AUTH]`: the credentials were wrong or may not be used (RFC 3206).
    Auth,
    /// `[SYS/TEMP]`: a temporary failure; try again later (RFC 3206).
    SysTemp,
    /// `[SYS/PERM]`: a permanent system failure (RFC 3206).
    SysPerm,
    /// `[IN-USE]`: the maildrop is locked by another session (RFC 2449).
    InUse,
}

impl RespCode {
    pub fn as_str(self) -> &'static str {
        match self {
            RespCode::Auth => "AUTH",
            RespCode::SysTemp => "SYS/TEMP",
            RespCode::SysPerm => "SYS/PERM",
            RespCode::InUse => "IN-USE",
        }
    }
}

/// Serialized server output for one command: a status line, optionally
/// followed by a dot-stuffed multi-line body and its terminator.
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    bytes: Vec<u8>,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Response({:?})", String::from_utf8_lossy(&self.bytes))
    }
}

impl Response {
    /// `+OK text`.
    pub fn ok(text: &str) -> Response {
        let mut r = Response { bytes: Vec::new() };
        r.status("+OK", None, text);
        r
    }

    /// `-ERR [CODE] text`.
    pub fn err(code: Option<RespCode>, text: &str) -> Response {
        let mut r = Response { bytes: Vec::new() };
        r.status("-ERR", code, text);
        r
    }

    /// The SASL continuation `+ challenge` (RFC 5034 §4), challenge in base64.
    pub fn continuation(challenge: &str) -> Response {
        let mut r = Response { bytes: Vec::new() };
        r.status("+", None, challenge);
        r
    }

    /// `+OK text`, then one line per item (dot-stuffed), then `.`. Items
    /// must not contain line breaks; any that do are split into lines.
    pub fn ok_lines<I, L>(text: &str, lines: I) -> Response
    where
        I: IntoIterator<Item = L>,
        L: AsRef<[u8]>,
    {
        let mut r = Response::ok(text);
        for l in lines {
            for part in Lines::new(l.as_ref()) {
                r.stuffed_line(part);
            }
        }
        r.bytes.extend_from_slice(b".\r\n");
        r
    }

    /// `+OK text` followed by a message (RETR), or its header and the first
    /// `body_lines` lines of its body (TOP), with line endings normalised to
    /// CRLF and lines starting with `.` stuffed. See [`Lines`] for what
    /// counts as a line ending.
    pub fn message(text: &str, raw: &[u8], body_lines: Option<u64>) -> Response {
        let mut r = Response::ok(text);
        r.bytes.reserve(raw.len() + raw.len() / 32 + 5);
        let mut in_header = true;
        let mut remaining = body_lines;
        for line in Lines::new(raw) {
            if !in_header {
                match remaining.as_mut() {
                    Some(0) => break,
                    Some(n) => *n -= 1,
                    None => {}
                }
            }
            r.stuffed_line(line);
            if line.is_empty() {
                in_header = false;
            }
        }
        r.bytes.extend_from_slice(b".\r\n");
        r
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// True for `+OK` (and `+` continuations).
    pub fn is_ok(&self) -> bool {
        self.bytes.first() == Some(&b'+')
    }

    fn status(&mut self, indicator: &str, code: Option<RespCode>, text: &str) {
        self.bytes.extend_from_slice(indicator.as_bytes());
        if code.is_some() || !text.is_empty() || indicator == "+" {
            self.bytes.push(b' ');
        }
        if let Some(c) = code {
            self.bytes.push(b'[');
            self.bytes.extend_from_slice(c.as_str().as_bytes());
            self.bytes.push(b']');
            if !text.is_empty() {
                self.bytes.push(b' ');
            }
        }
        // A status line is one line: never let text smuggle a line break.
        self.bytes.extend(
            text.bytes()
                .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
        self.bytes.extend_from_slice(b"\r\n");
    }

    fn stuffed_line(&mut self, line: &[u8]) {
        if line.first() == Some(&b'.') {
            self.bytes.push(b'.');
        }
        self.bytes.extend_from_slice(line);
        self.bytes.extend_from_slice(b"\r\n");
    }
}

/// The lines of a message as POP3 sends them. A line ends at CRLF, at a
/// lone LF or at a lone CR; each becomes exactly one CRLF on the wire, so
/// no stray CR or LF ever reaches the client. The last line need not have
/// an ending (one is added on the wire); an ending at the very end of the
/// data does not start another, empty, line.
#[derive(Clone, Debug)]
pub struct Lines<'a> {
    rest: &'a [u8],
}

impl<'a> Lines<'a> {
    pub fn new(data: &'a [u8]) -> Lines<'a> {
        Lines { rest: data }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        match self.rest.iter().position(|&b| b == b'\r' || b == b'\n') {
            None => {
                let line = self.rest;
                self.rest = &[];
                Some(line)
            }
            Some(i) => {
                let line = &self.rest[..i];
                let crlf = self.rest[i] == b'\r' && self.rest.get(i + 1) == Some(&b'\n');
                self.rest = &self.rest[i + if crlf { 2 } else { 1 }..];
                Some(line)
            }
        }
    }
}

/// The size POP3 reports for a message (STAT, LIST, `RETR`'s `+OK n
/// octets`): the octets of the message as [`Response::message`] sends it
/// before dot-stuffing, i.e. with every line ending as CRLF and a final
/// CRLF. This is what clients such as Python's poplib count.
pub fn wire_size(raw: &[u8]) -> u64 {
    Lines::new(raw).map(|l| l.len() as u64 + 2).sum()
}

/// Undoes [`Response::message`]'s body encoding: takes the lines after the
/// status line up to (not including) the `.` terminator and removes the
/// stuffing. For tests and for anyone checking a server's output.
pub fn unstuff(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut rest = body;
    while let Some(i) = rest.windows(2).position(|w| w == b"\r\n") {
        let line = &rest[..i];
        rest = &rest[i + 2..];
        if line == b"." {
            break;
        }
        let line = line.strip_prefix(b".").unwrap_or(line);
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Command, ParseError> {
        parse_command(s.as_bytes())
    }

    #[test]
    fn parses_every_command() {
        assert_eq!(p("user alice"), Ok(Command::User("alice".into())));
        assert_eq!(
            p("PASS a b  c "),
            Ok(Command::Pass(Secret("a b  c ".into())))
        );
        assert_eq!(p("PASS "), Ok(Command::Pass(Secret("".into()))));
        assert_eq!(
            p("AUTH"),
            Ok(Command::Auth {
                mechanism: None,
                initial: None
            })
        );
        assert_eq!(
            p("auth plain"),
            Ok(Command::Auth {
                mechanism: Some("PLAIN".into()),
                initial: None
            })
        );
        assert_eq!(
            p("AUTH PLAIN AGEAYg=="),
            Ok(Command::Auth {
                mechanism: Some("PLAIN".into()),
                initial: Some(Secret("AGEAYg==".into()))
            })
        );
        assert_eq!(p("APOP alice 0123"), Ok(Command::Apop));
        assert_eq!(p("Capa"), Ok(Command::Capa));
        assert_eq!(p("STLS"), Ok(Command::Stls));
        assert_eq!(p("QUIT"), Ok(Command::Quit));
        assert_eq!(p("STAT"), Ok(Command::Stat));
        assert_eq!(p("NOOP"), Ok(Command::Noop));
        assert_eq!(p("RSET"), Ok(Command::Rset));
        assert_eq!(p("LIST"), Ok(Command::List(None)));
        assert_eq!(p("LIST 3"), Ok(Command::List(Some(MsgNum(3)))));
        assert_eq!(p("LIST 3 "), Ok(Command::List(Some(MsgNum(3)))));
        assert_eq!(p("UIDL"), Ok(Command::Uidl(None)));
        assert_eq!(p("UIDL 12"), Ok(Command::Uidl(Some(MsgNum(12)))));
        assert_eq!(p("RETR 1"), Ok(Command::Retr(MsgNum(1))));
        assert_eq!(p("DELE 2"), Ok(Command::Dele(MsgNum(2))));
        assert_eq!(p("TOP 1 0"), Ok(Command::Top(MsgNum(1), 0)));
        assert_eq!(
            p("TOP 1 99999999999999999999999"),
            Ok(Command::Top(MsgNum(1), u64::MAX))
        );
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(p(""), Err(ParseError::Empty));
        assert_eq!(p(" STAT"), Err(ParseError::Empty));
        assert_eq!(p("FOO"), Err(ParseError::Unknown("FOO".into())));
        assert_eq!(p("USER"), Err(ParseError::MissingArgument("USER")));
        assert_eq!(p("USER a b"), Err(ParseError::TooManyArguments("USER")));
        assert_eq!(p("PASS"), Err(ParseError::MissingArgument("PASS")));
        assert_eq!(p("RETR"), Err(ParseError::MissingArgument("RETR")));
        assert_eq!(p("RETR x"), Err(ParseError::BadNumber("RETR")));
        assert_eq!(p("RETR -1"), Err(ParseError::BadNumber("RETR")));
        assert_eq!(p("RETR +1"), Err(ParseError::BadNumber("RETR")));
        assert_eq!(
            p("RETR 99999999999999999999999"),
            Err(ParseError::BadNumber("RETR"))
        );
        assert_eq!(p("TOP 1"), Err(ParseError::MissingArgument("TOP")));
        assert_eq!(p("TOP 1 2 3"), Err(ParseError::TooManyArguments("TOP")));
        assert_eq!(p("STAT 1"), Err(ParseError::TooManyArguments("STAT")));
        assert_eq!(p("LIST 1 2"), Err(ParseError::TooManyArguments("LIST")));
        assert_eq!(p("AUTH A B C"), Err(ParseError::TooManyArguments("AUTH")));
        assert_eq!(parse_command(b"USER \xff"), Err(ParseError::NotUtf8));
        // the error text never carries control characters back to the client
        let e = p("FO\x07O").unwrap_err().to_string();
        assert!(!e.contains('\x07'), "{e}");
    }

    #[test]
    fn round_trip() {
        let cmds = [
            Command::User("bob@example.org".into()),
            Command::Pass(Secret(" spaced pass ".into())),
            Command::Auth {
                mechanism: None,
                initial: None,
            },
            Command::Auth {
                mechanism: Some("PLAIN".into()),
                initial: Some(Secret("=".into())),
            },
            Command::Capa,
            Command::Stls,
            Command::Quit,
            Command::Stat,
            Command::List(None),
            Command::List(Some(MsgNum(7))),
            Command::Retr(MsgNum(1)),
            Command::Dele(MsgNum(2)),
            Command::Noop,
            Command::Rset,
            Command::Top(MsgNum(3), 10),
            Command::Uidl(None),
            Command::Uidl(Some(MsgNum(4))),
        ];
        for c in cmds {
            let line = c.to_line();
            let line = line.strip_suffix("\r\n").unwrap();
            assert_eq!(parse_command(line.as_bytes()), Ok(c));
        }
    }

    /// Arbitrary bytes never panic the parser, and whatever parses
    /// re-serializes to something that parses to the same command.
    #[test]
    fn random_input_round_trips() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let alphabet = b"USERPASTOLIDQNCHuserpastolidqnch 0123456789.=+/\r\n\xff\x00";
        for _ in 0..20_000 {
            let len = (next() % 24) as usize;
            let mut line: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            if next() % 2 == 0 {
                let kws = ["USER ", "PASS ", "TOP ", "LIST ", "AUTH ", "RETR "];
                let kw = kws[(next() % kws.len() as u64) as usize];
                line.splice(0..0, kw.bytes());
            }
            if let Ok(c) = parse_command(&line) {
                let again = c.to_line();
                let again = again.strip_suffix("\r\n").unwrap();
                assert_eq!(parse_command(again.as_bytes()), Ok(c.clone()), "{line:?}");
            }
            // and any bytes as a message body survive stuffing unchanged
            // apart from line-ending normalisation
            let r = Response::message("", &line, None).into_bytes();
            let body = &r[b"+OK\r\n".len()..];
            let back = unstuff(body);
            assert_eq!(back.len() as u64, wire_size(&line));
            let expect: Vec<u8> = Lines::new(&line)
                .flat_map(|l| [l, b"\r\n"].concat())
                .collect();
            assert_eq!(back, expect);
            assert!(body.ends_with(b"\r\n.\r\n") || body == b".\r\n");
        }
    }

    #[test]
    fn framing() {
        let mut b = LineBuffer::new(10);
        b.push(b"STAT\r\nLIST 1\nNO");
        assert_eq!(b.next_frame(), Some(Frame::Line(b"STAT".to_vec())));
        assert_eq!(b.next_frame(), Some(Frame::Line(b"LIST 1".to_vec())));
        assert_eq!(b.next_frame(), None);
        assert!(b.has_partial());
        b.push(b"OP\r\n");
        assert_eq!(b.next_frame(), Some(Frame::Line(b"NOOP".to_vec())));
        // exactly at the limit (CRLF included) is fine
        b.push(b"12345678\r\n");
        assert_eq!(b.next_frame(), Some(Frame::Line(b"12345678".to_vec())));
        // one over, all in one piece
        b.push(b"123456789\r\nQUIT\r\n");
        assert_eq!(b.next_frame(), Some(Frame::TooLong));
        assert_eq!(b.next_frame(), Some(Frame::Line(b"QUIT".to_vec())));
        // a long line arriving in pieces is dropped without buffering it
        b.push(b"0123456789abcdef");
        assert_eq!(b.next_frame(), None);
        b.push(b"0123456789abcdef");
        assert_eq!(b.next_frame(), None);
        assert!(b.buf.len() < 20);
        b.push(b"xyz\r\nNOOP\r\n");
        assert_eq!(b.next_frame(), Some(Frame::TooLong));
        assert_eq!(b.next_frame(), Some(Frame::Line(b"NOOP".to_vec())));
        b.push(b"STLS\r\nUSER evil\r\n");
        assert!(b.next_frame().is_some());
        b.clear();
        assert_eq!(b.next_frame(), None);
    }

    #[test]
    fn status_lines() {
        assert_eq!(Response::ok("hi").as_bytes(), b"+OK hi\r\n");
        assert_eq!(Response::ok("").as_bytes(), b"+OK\r\n");
        assert_eq!(
            Response::err(Some(RespCode::SysTemp), "later").as_bytes(),
            b"-ERR [SYS/TEMP] later\r\n"
        );
        assert_eq!(
            Response::err(Some(RespCode::InUse), "").as_bytes(),
            b"-ERR [IN-USE]\r\n"
        );
        assert_eq!(Response::err(None, "a\r\nb").as_bytes(), b"-ERR a  b\r\n");
        assert_eq!(Response::continuation("").as_bytes(), b"+ \r\n");
        assert_eq!(
            Response::ok_lines("list", ["1 10", ".x"]).as_bytes(),
            b"+OK list\r\n1 10\r\n..x\r\n.\r\n"
        );
        assert_eq!(
            Response::ok_lines("empty", Vec::<&str>::new()).as_bytes(),
            b"+OK empty\r\n.\r\n"
        );
    }

    #[test]
    fn message_normalisation_and_stuffing() {
        let raw = b"Subject: x\nFrom: a\r\n\r\n.\nline\rtwo\r\n..dots\n.\r\nlast";
        let r = Response::message("m", raw, None);
        assert_eq!(
            r.as_bytes(),
            &b"+OK m\r\nSubject: x\r\nFrom: a\r\n\r\n..\r\nline\r\ntwo\r\n...dots\r\n..\r\nlast\r\n.\r\n"[..]
        );
        assert_eq!(wire_size(raw), unstuff(&r.as_bytes()[7..]).len() as u64);
        // CR CR LF: a lone CR, then a CRLF
        assert_eq!(
            Response::message("", b"a\r\r\nb\n", None).as_bytes(),
            b"+OK\r\na\r\n\r\nb\r\n.\r\n"
        );
        // LF CR: two line endings
        assert_eq!(wire_size(b"a\n\rb"), 3 + 2 + 3);
        assert_eq!(wire_size(b""), 0);
        assert_eq!(Response::message("", b"", None).as_bytes(), b"+OK\r\n.\r\n");
        assert_eq!(wire_size(b"abc\r\n"), 5);
        assert_eq!(wire_size(b"abc"), 5);
    }

    #[test]
    fn top_lines() {
        let raw = b"A: 1\nB: 2\n\nbody1\n.body2\nbody3\n";
        let top = |n| Response::message("", raw, Some(n)).into_bytes();
        assert_eq!(top(0), b"+OK\r\nA: 1\r\nB: 2\r\n\r\n.\r\n");
        assert_eq!(
            top(2),
            b"+OK\r\nA: 1\r\nB: 2\r\n\r\nbody1\r\n..body2\r\n.\r\n"
        );
        assert_eq!(top(99), Response::message("", raw, None).into_bytes());
        // no body at all: the header is the whole message
        assert_eq!(
            Response::message("", b"A: 1\r\n", Some(0)).as_bytes(),
            b"+OK\r\nA: 1\r\n.\r\n"
        );
    }
}
