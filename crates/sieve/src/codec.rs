//! ManageSieve wire format (RFC 5804 §4), with no I/O: client bytes in,
//! typed [`Command`]s (or SASL responses) out, and typed [`Response`]s to
//! bytes.
//!
//! A command is an atom (its name) followed by arguments, each a quoted
//! string, a literal (`{N+}` or `{N}`, CRLF, then N octets) or a number,
//! ended by CRLF. [`parse_command`] answers with a command and how many
//! bytes it used, "incomplete, need more", "a synchronising literal of N
//! bytes was announced" (the server must invite it before the client
//! sends it), or an error: [`ParseError`] for input the server answers with
//! `NO` and then reads on, `TooBig` for a line or literal beyond the limits
//! (answered with `BYE`: the rest of such input cannot be framed safely).
//! [`Decoder`] keeps the buffer and the literals already invited, for the
//! connection loop and the fuzz target.

use std::fmt;

/// How much one command may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes in one line (the command line, or the rest of it after a
    /// literal).
    pub max_line: usize,
    /// Bytes in one literal (for commands: the largest script).
    pub max_literal: usize,
}

impl Limits {
    /// A whole command is at most a line plus one full-size literal (a
    /// script and the rest of its line). Without a bound on the whole, a
    /// client could send literal after literal and make the server buffer
    /// without limit.
    pub fn max_command(&self) -> usize {
        self.max_line.saturating_add(self.max_literal)
    }
}

/// A client string carrying a password (a SASL response). `Debug` does not
/// show it, so it stays out of logs and test output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// A ManageSieve command (RFC 5804 §2) with its arguments. Strings are
/// UTF-8 (§4: every string is), so script names and scripts are `String`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// §2.1: a SASL mechanism name and an optional initial response.
    Authenticate {
        mechanism: String,
        initial: Option<Secret>,
    },
    /// §2.2.
    StartTls,
    /// §2.3.
    Logout,
    /// §2.4.
    Capability,
    /// §2.5: may a script of this name and size be stored?
    HaveSpace { name: String, size: u64 },
    /// §2.6.
    PutScript { name: String, script: String },
    /// §2.7.
    ListScripts,
    /// §2.8: the empty name deactivates every script.
    SetActive { name: String },
    /// §2.9.
    GetScript { name: String },
    /// §2.10.
    DeleteScript { name: String },
    /// §2.11.1.
    RenameScript { from: String, to: String },
    /// §2.12: compile without storing.
    CheckScript { script: String },
    /// §2.13: the tag, if any, comes back in `OK (TAG ...)`.
    Noop { tag: Option<String> },
    /// §2.14.
    Unauthenticate,
}

impl Command {
    /// The command's name as sent on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Authenticate { .. } => "AUTHENTICATE",
            Command::StartTls => "STARTTLS",
            Command::Logout => "LOGOUT",
            Command::Capability => "CAPABILITY",
            Command::HaveSpace { .. } => "HAVESPACE",
            Command::PutScript { .. } => "PUTSCRIPT",
            Command::ListScripts => "LISTSCRIPTS",
            Command::SetActive { .. } => "SETACTIVE",
            Command::GetScript { .. } => "GETSCRIPT",
            Command::DeleteScript { .. } => "DELETESCRIPT",
            Command::RenameScript { .. } => "RENAMESCRIPT",
            Command::CheckScript { .. } => "CHECKSCRIPT",
            Command::Noop { .. } => "NOOP",
            Command::Unauthenticate => "UNAUTHENTICATE",
        }
    }

    /// The command as a client writes it: strings quoted where they can
    /// be, else as non-synchronising literals (`{N+}`, the only kind
    /// RFC 5804 §4 lets clients send).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.name().as_bytes().to_vec();
        let mut arg = |s: &str| {
            out.push(b' ');
            if quotable(s) {
                quote(&mut out, s);
            } else {
                out.extend_from_slice(format!("{{{}+}}\r\n", s.len()).as_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        };
        match self {
            Command::Authenticate { mechanism, initial } => {
                arg(mechanism);
                if let Some(i) = initial {
                    arg(&i.0);
                }
            }
            Command::HaveSpace { name, size } => {
                arg(name);
                out.extend_from_slice(format!(" {size}").as_bytes());
            }
            Command::PutScript { name, script } => {
                arg(name);
                arg(script);
            }
            Command::SetActive { name }
            | Command::GetScript { name }
            | Command::DeleteScript { name } => arg(name),
            Command::RenameScript { from, to } => {
                arg(from);
                arg(to);
            }
            Command::CheckScript { script } => arg(script),
            Command::Noop { tag: Some(t) } => arg(t),
            Command::Noop { tag: None }
            | Command::StartTls
            | Command::Logout
            | Command::Capability
            | Command::ListScripts
            | Command::Unauthenticate => {}
        }
        out.extend_from_slice(b"\r\n");
        out
    }
}

/// What the client sends while an AUTHENTICATE exchange waits for it
/// (RFC 5804 §2.1): a string holding base64, or `*` (bare or quoted) to
/// cancel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SaslResponse {
    Data(Secret),
    Cancel,
}

/// Why a command line was refused. The server answers `NO` with this text
/// and reads the next command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Not a ManageSieve line: bad quoting, a bad literal, a stray byte.
    Syntax(&'static str),
    /// A well-formed line whose first word is no command we know.
    UnknownCommand,
    /// A known command with the wrong arguments: the command and what it
    /// takes.
    Arguments(&'static str, &'static str),
    /// A string that is not UTF-8 (RFC 5804 §4 requires UTF-8).
    NotUtf8,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Syntax(why) => f.write_str(why),
            ParseError::UnknownCommand => f.write_str("Unknown command"),
            ParseError::Arguments(cmd, takes) => write!(f, "{cmd} takes {takes}"),
            ParseError::NotUtf8 => f.write_str("Strings must be UTF-8"),
        }
    }
}

/// The first thing in a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<T> {
    /// A whole command (or SASL response) using this many bytes.
    Done(T, usize),
    /// Not enough input yet.
    Incomplete,
    /// A synchronising literal (`{N}`) of this size was announced: the
    /// server sends [`Response::Continue`] and parses again with one more
    /// literal granted. (`{N+}` needs no invitation.)
    NeedLiteral { size: usize },
    /// Malformed: answer `NO` with the error and drop this many bytes
    /// (through the end of the offending line).
    Bad(ParseError, usize),
    /// A line or literal beyond the limits: answer `BYE` and close.
    TooBig(String),
}

/// One word of a line.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Word {
    /// A quoted string or literal, as bytes.
    Str(Vec<u8>),
    /// An unquoted atom or number.
    Atom(String),
}

/// Parses the first command in `buf`. `granted` is how many synchronising
/// literals of this command the server has already invited.
pub fn parse_command(buf: &[u8], limits: Limits, granted: usize) -> Parsed<Command> {
    parse_with(buf, limits, granted, command)
}

/// Parses the client's answer to a SASL challenge: one string or `*`.
pub fn parse_sasl_response(buf: &[u8], limits: Limits, granted: usize) -> Parsed<SaslResponse> {
    parse_with(buf, limits, granted, sasl_response)
}

fn parse_with<T>(
    buf: &[u8],
    limits: Limits,
    granted: usize,
    typed: fn(Vec<Word>) -> Result<T, ParseError>,
) -> Parsed<T> {
    let max_command = limits.max_command();
    let too_big = || Parsed::TooBig(format!("command longer than {max_command} bytes"));
    match lex(buf, limits, granted) {
        Lexed::Incomplete if buf.len() > max_command => too_big(),
        Lexed::Incomplete => Parsed::Incomplete,
        Lexed::NeedLiteral { end, .. } | Lexed::Line(_, end) | Lexed::Bad(_, end)
            if end > max_command =>
        {
            too_big()
        }
        Lexed::NeedLiteral { size, .. } => Parsed::NeedLiteral { size },
        Lexed::Line(words, used) => match typed(words) {
            Ok(t) => Parsed::Done(t, used),
            Err(e) => Parsed::Bad(e, used),
        },
        Lexed::Bad(why, used) => Parsed::Bad(ParseError::Syntax(why), used),
        Lexed::TooBig(why) => Parsed::TooBig(why),
    }
}

enum Lexed {
    Line(Vec<Word>, usize),
    Incomplete,
    /// `end`: where the announced literal would end.
    NeedLiteral {
        size: usize,
        end: usize,
    },
    Bad(&'static str, usize),
    TooBig(String),
}

fn line_too_long(max_line: usize) -> Lexed {
    Lexed::TooBig(format!("line longer than {max_line} bytes"))
}

/// Splits the first line (with its literals) into words.
fn lex(buf: &[u8], limits: Limits, granted: usize) -> Lexed {
    let Limits {
        max_line,
        max_literal,
    } = limits;
    let bad = |at: usize, line_start: usize, why: &'static str| {
        bad_line(buf, at, why, line_start, max_line)
    };
    // Waiting for more of a line that is already too long is TooBig,
    // wherever the lexer waits, so that the answer does not depend on how
    // the bytes were split.
    let wait = |line_start: usize| {
        if buf.len() - line_start > max_line {
            line_too_long(max_line)
        } else {
            Lexed::Incomplete
        }
    };
    let mut pos = 0;
    let mut line_start = 0;
    let mut sync_literals = 0;
    let mut words: Vec<Word> = Vec::new();
    loop {
        if pos - line_start > max_line {
            return line_too_long(max_line);
        }
        let Some(&b) = buf.get(pos) else {
            return Lexed::Incomplete;
        };
        match b {
            b' ' | b'\t' => pos += 1,
            b'\r' | b'\n' => {
                let end = if b == b'\r' {
                    match buf.get(pos + 1) {
                        None => return Lexed::Incomplete,
                        Some(b'\n') => pos + 2,
                        Some(_) => pos + 1,
                    }
                } else {
                    pos + 1
                };
                return Lexed::Line(words, end);
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
                words.push(Word::Str(out));
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
                    return line_too_long(max_line);
                }
                let spec = &buf[pos + 1..pos + close];
                let (digits, sync) = match spec.strip_suffix(b"+") {
                    Some(d) => (d, false),
                    None => (spec, true),
                };
                let n: usize = match std::str::from_utf8(digits).ok().and_then(|d| {
                    if d.is_empty() || d.len() > 12 || !d.bytes().all(|c| c.is_ascii_digit()) {
                        None
                    } else {
                        d.parse().ok()
                    }
                }) {
                    Some(n) => n,
                    None if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) => {
                        return Lexed::TooBig(format!("literal larger than {max_literal} bytes"))
                    }
                    None => return bad(pos, line_start, "bad literal length"),
                };
                if n > max_literal {
                    return Lexed::TooBig(format!("literal larger than {max_literal} bytes"));
                }
                let mut p = pos + close + 1;
                match (buf.get(p), buf.get(p + 1)) {
                    (Some(b'\r'), Some(b'\n')) => p += 2,
                    (Some(b'\n'), _) => p += 1,
                    (None, _) | (Some(b'\r'), None) => return Lexed::Incomplete,
                    _ => return bad(p, line_start, "literal length must end the line"),
                }
                if sync {
                    // Every `{N}` is invited, whether or not its bytes are
                    // already here, so that what the server sends does
                    // not depend on how the client's bytes arrived.
                    if sync_literals >= granted {
                        return Lexed::NeedLiteral {
                            size: n,
                            end: p + n,
                        };
                    }
                    sync_literals += 1;
                }
                if buf.len() < p + n {
                    return Lexed::Incomplete;
                }
                words.push(Word::Str(buf[p..p + n].to_vec()));
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
                words.push(Word::Atom(
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
fn bad_line(buf: &[u8], at: usize, why: &'static str, line_start: usize, max_line: usize) -> Lexed {
    let end = buf[at..].iter().position(|&c| c == b'\n').map(|p| at + p);
    if end.unwrap_or(buf.len()) - line_start > max_line {
        return line_too_long(max_line);
    }
    match end {
        Some(lf) => Lexed::Bad(why, lf + 1),
        None => Lexed::Incomplete,
    }
}

fn text(w: Word) -> Result<String, ParseError> {
    match w {
        Word::Str(b) => String::from_utf8(b).map_err(|_| ParseError::NotUtf8),
        Word::Atom(_) => Err(ParseError::Syntax("expected a quoted string or literal")),
    }
}

/// The words of a line as a typed command.
fn command(words: Vec<Word>) -> Result<Command, ParseError> {
    let mut it = words.into_iter();
    let name = match it.next() {
        None => return Err(ParseError::Syntax("empty command")),
        Some(Word::Atom(a)) => a.to_ascii_uppercase(),
        Some(Word::Str(_)) => return Err(ParseError::Syntax("expected a command name")),
    };
    let args: Vec<Word> = it.collect();
    // (name, what it takes), for the error.
    let (cmd, takes): (&'static str, &'static str) = match name.as_str() {
        "AUTHENTICATE" => (
            "AUTHENTICATE",
            "a SASL mechanism and an optional initial response",
        ),
        "STARTTLS" => ("STARTTLS", "no arguments"),
        "LOGOUT" => ("LOGOUT", "no arguments"),
        "CAPABILITY" => ("CAPABILITY", "no arguments"),
        "HAVESPACE" => ("HAVESPACE", "a script name and a size"),
        "PUTSCRIPT" => ("PUTSCRIPT", "a script name and the script"),
        "LISTSCRIPTS" => ("LISTSCRIPTS", "no arguments"),
        "SETACTIVE" => ("SETACTIVE", "a script name (empty to deactivate)"),
        "GETSCRIPT" => ("GETSCRIPT", "a script name"),
        "DELETESCRIPT" => ("DELETESCRIPT", "a script name"),
        "RENAMESCRIPT" => ("RENAMESCRIPT", "the old and the new script name"),
        "CHECKSCRIPT" => ("CHECKSCRIPT", "the script"),
        "NOOP" => ("NOOP", "an optional tag"),
        "UNAUTHENTICATE" => ("UNAUTHENTICATE", "no arguments"),
        _ => return Err(ParseError::UnknownCommand),
    };
    let wrong = || ParseError::Arguments(cmd, takes);
    let strings = |args: Vec<Word>, n: std::ops::RangeInclusive<usize>| {
        if !n.contains(&args.len()) {
            return Err(wrong());
        }
        args.into_iter().map(text).collect::<Result<Vec<_>, _>>()
    };
    let one = |args: Vec<Word>| strings(args, 1..=1).map(|mut v| v.remove(0));
    let two = |args: Vec<Word>| {
        strings(args, 2..=2).map(|mut v| {
            let b = v.remove(1);
            (v.remove(0), b)
        })
    };
    Ok(match cmd {
        "AUTHENTICATE" => {
            let mut v = strings(args, 1..=2)?.into_iter();
            let mechanism = v.next().unwrap_or_default();
            Command::Authenticate {
                mechanism,
                initial: v.next().map(Secret),
            }
        }
        "HAVESPACE" => {
            let mut it = args.into_iter();
            let (Some(name), Some(Word::Atom(size)), None) = (it.next(), it.next(), it.next())
            else {
                return Err(wrong());
            };
            if size.is_empty() || !size.bytes().all(|b| b.is_ascii_digit()) {
                return Err(wrong());
            }
            Command::HaveSpace {
                name: text(name)?,
                // Beyond u64 is beyond any quota.
                size: size.parse().unwrap_or(u64::MAX),
            }
        }
        "PUTSCRIPT" => {
            let (name, script) = two(args)?;
            Command::PutScript { name, script }
        }
        "SETACTIVE" => Command::SetActive { name: one(args)? },
        "GETSCRIPT" => Command::GetScript { name: one(args)? },
        "DELETESCRIPT" => Command::DeleteScript { name: one(args)? },
        "RENAMESCRIPT" => {
            let (from, to) = two(args)?;
            Command::RenameScript { from, to }
        }
        "CHECKSCRIPT" => Command::CheckScript { script: one(args)? },
        "NOOP" => Command::Noop {
            tag: strings(args, 0..=1)?.pop(),
        },
        _ => {
            if !args.is_empty() {
                return Err(wrong());
            }
            match cmd {
                "STARTTLS" => Command::StartTls,
                "LOGOUT" => Command::Logout,
                "CAPABILITY" => Command::Capability,
                "LISTSCRIPTS" => Command::ListScripts,
                _ => Command::Unauthenticate,
            }
        }
    })
}

/// The words of a line as a SASL response: one string (or, leniently, one
/// atom holding base64), or `*`.
fn sasl_response(words: Vec<Word>) -> Result<SaslResponse, ParseError> {
    let mut it = words.into_iter();
    let (Some(w), None) = (it.next(), it.next()) else {
        return Err(ParseError::Syntax(
            "expected one string as the SASL response",
        ));
    };
    let s = match w {
        Word::Atom(a) => a,
        w => text(w)?,
    };
    Ok(if s == "*" {
        SaslResponse::Cancel
    } else {
        SaslResponse::Data(Secret(s))
    })
}

/// Which kind of client input comes next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Command,
    /// The session has sent a SASL challenge.
    SaslResponse,
}

/// One unit of client input, as the session takes it.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    Command(Command),
    SaslResponse(SaslResponse),
    /// A synchronising literal of this size was announced; invite it.
    LiteralWanted(usize),
    /// A malformed line (already skipped).
    Bad(ParseError),
    /// Input beyond the limits (the text says which); the connection
    /// must close.
    TooBig(String),
}

/// The client's bytes not yet framed, and the synchronising literals of
/// the current command already invited.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    granted: usize,
    commands: Limits,
    sasl: Limits,
}

impl Decoder {
    /// `max_literal` bounds literals in commands (scripts); a SASL response
    /// is at most a line, also when sent as a literal.
    pub fn new(max_line: usize, max_literal: usize) -> Decoder {
        Decoder {
            buf: Vec::new(),
            granted: 0,
            commands: Limits {
                max_line,
                max_literal,
            },
            sasl: Limits {
                max_line,
                max_literal: max_line,
            },
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Drops everything buffered (input pipelined before a TLS handshake
    /// must not be read after it).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.granted = 0;
    }

    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next frame, or `None` when more input is needed.
    pub fn next_frame(&mut self, mode: Mode) -> Option<Frame> {
        let parsed = match mode {
            Mode::Command => map_parsed(
                parse_command(&self.buf, self.commands, self.granted),
                Frame::Command,
            ),
            Mode::SaslResponse => map_parsed(
                parse_sasl_response(&self.buf, self.sasl, self.granted),
                Frame::SaslResponse,
            ),
        };
        match parsed {
            Parsed::Incomplete => None,
            Parsed::NeedLiteral { size } => {
                self.granted += 1;
                Some(Frame::LiteralWanted(size))
            }
            Parsed::Done(frame, used) => {
                self.buf.drain(..used);
                self.granted = 0;
                Some(frame)
            }
            Parsed::Bad(e, used) => {
                self.buf.drain(..used);
                self.granted = 0;
                Some(Frame::Bad(e))
            }
            Parsed::TooBig(_) => {
                // Which limit is hit first can depend on how much has
                // arrived; the answer must not, so it names both.
                let l = match mode {
                    Mode::Command => self.commands,
                    Mode::SaslResponse => self.sasl,
                };
                self.clear();
                Some(Frame::TooBig(format!(
                    "Input too large: at most {} bytes per line and {} per literal",
                    l.max_line, l.max_literal
                )))
            }
        }
    }
}

fn map_parsed<T>(p: Parsed<T>, f: fn(T) -> Frame) -> Parsed<Frame> {
    match p {
        Parsed::Done(t, used) => Parsed::Done(f(t), used),
        Parsed::Incomplete => Parsed::Incomplete,
        Parsed::NeedLiteral { size } => Parsed::NeedLiteral { size },
        Parsed::Bad(e, used) => Parsed::Bad(e, used),
        Parsed::TooBig(why) => Parsed::TooBig(why),
    }
}

// --- Responses -----------------------------------------------------------

/// `OK`, `NO` or `BYE` (RFC 5804 §1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bye,
}

/// Response codes (RFC 5804 §1.3) that this server sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResponseCode {
    AuthTooWeak,
    EncryptNeeded,
    Quota,
    QuotaMaxScripts,
    QuotaMaxSize,
    TransitionNeeded,
    TryLater,
    Active,
    Nonexistent,
    AlreadyExists,
    Warnings,
    /// NOOP's tag, echoed.
    Tag(String),
}

/// One piece of server output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// The status line that ends every answer.
    Status {
        status: Status,
        code: Option<ResponseCode>,
        text: Option<String>,
    },
    /// A capability line: `"NAME"` or `"NAME" "value"` (§1.7).
    Capability { name: String, value: Option<String> },
    /// A LISTSCRIPTS line: the name, and `ACTIVE` for the active one.
    Listed { name: String, active: bool },
    /// GETSCRIPT's script: a literal, then CRLF.
    Script(String),
    /// A SASL server challenge (base64), on a line of its own.
    Challenge(String),
    /// The invitation to send a synchronising literal. RFC 5804 §4 gives
    /// clients only `{N+}`; a client that sends `{N}` anyway may wait for
    /// this, so it gets a string line, as a SASL challenge is written.
    Continue,
}

impl Response {
    pub fn ok(text: &str) -> Response {
        Response::status(Status::Ok, None, text)
    }

    pub fn no(code: Option<ResponseCode>, text: &str) -> Response {
        Response::status(Status::No, code, text)
    }

    pub fn bye(code: Option<ResponseCode>, text: &str) -> Response {
        Response::status(Status::Bye, code, text)
    }

    pub fn status(status: Status, code: Option<ResponseCode>, text: &str) -> Response {
        Response::Status {
            status,
            code,
            text: (!text.is_empty()).then(|| text.to_string()),
        }
    }

    /// NOOP's answer with its tag echoed (RFC 5804 §2.13).
    pub fn ok_tag(tag: &str) -> Response {
        Response::Status {
            status: Status::Ok,
            code: Some(ResponseCode::Tag(tag.to_string())),
            text: Some("Done".into()),
        }
    }

    pub fn capability(name: &str, value: Option<&str>) -> Response {
        Response::Capability {
            name: name.to_string(),
            value: value.map(str::to_string),
        }
    }

    /// The status of a status line.
    pub fn status_of(&self) -> Option<Status> {
        match self {
            Response::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Response::Status { status, code, text } => {
                out.extend_from_slice(match status {
                    Status::Ok => b"OK",
                    Status::No => b"NO",
                    Status::Bye => b"BYE",
                });
                if let Some(c) = code {
                    out.extend_from_slice(b" (");
                    let word: &[u8] = match c {
                        ResponseCode::AuthTooWeak => b"AUTH-TOO-WEAK",
                        ResponseCode::EncryptNeeded => b"ENCRYPT-NEEDED",
                        ResponseCode::Quota => b"QUOTA",
                        ResponseCode::QuotaMaxScripts => b"QUOTA/MAXSCRIPTS",
                        ResponseCode::QuotaMaxSize => b"QUOTA/MAXSIZE",
                        ResponseCode::TransitionNeeded => b"TRANSITION-NEEDED",
                        ResponseCode::TryLater => b"TRYLATER",
                        ResponseCode::Active => b"ACTIVE",
                        ResponseCode::Nonexistent => b"NONEXISTENT",
                        ResponseCode::AlreadyExists => b"ALREADYEXISTS",
                        ResponseCode::Warnings => b"WARNINGS",
                        ResponseCode::Tag(_) => b"TAG",
                    };
                    out.extend_from_slice(word);
                    if let ResponseCode::Tag(t) = c {
                        out.push(b' ');
                        encode_string(out, t);
                    }
                    out.push(b')');
                }
                if let Some(t) = text {
                    out.push(b' ');
                    encode_string(out, t);
                }
            }
            Response::Capability { name, value } => {
                encode_string(out, name);
                if let Some(v) = value {
                    out.push(b' ');
                    encode_string(out, v);
                }
            }
            Response::Listed { name, active } => {
                encode_string(out, name);
                if *active {
                    out.extend_from_slice(b" ACTIVE");
                }
            }
            Response::Script(s) => literal(out, s),
            Response::Challenge(c) => encode_string(out, c),
            Response::Continue => encode_string(out, "Ready for literal data"),
        }
        out.extend_from_slice(b"\r\n");
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }
}

/// All of `responses`, in order, as bytes.
pub fn encode(responses: &[Response]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in responses {
        r.encode_into(&mut out);
    }
    out
}

/// RFC 5804 §4: a quoted string holds at most 1024 octets and no CR, LF or
/// NUL.
fn quotable(s: &str) -> bool {
    s.len() <= 1024 && !s.contains(['\r', '\n', '\0'])
}

fn quote(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for &b in s.as_bytes() {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// A server-to-client literal: `{N}`, CRLF, the octets.
fn literal(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A string as the server sends it: quoted when it can be, else a literal.
pub fn encode_string(out: &mut Vec<u8>, s: &str) {
    if quotable(s) {
        quote(out, s);
    } else {
        literal(out, s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits {
        max_line: 100,
        max_literal: 100,
    };

    fn lim(max_line: usize, max_literal: usize) -> Limits {
        Limits {
            max_line,
            max_literal,
        }
    }

    fn done(c: Command, used: usize) -> Parsed<Command> {
        Parsed::Done(c, used)
    }

    #[test]
    fn commands_with_strings_literals_and_numbers() {
        assert_eq!(
            parse_command(b"capability\r\n", L, 0),
            done(Command::Capability, 12)
        );
        let b = b"PUTSCRIPT \"my \\\"s\\\\\" {5+}\r\nkeep;\r\nNOOP\r\n";
        match parse_command(b, L, 0) {
            Parsed::Done(c, used) => {
                assert_eq!(
                    c,
                    Command::PutScript {
                        name: "my \"s\\".into(),
                        script: "keep;".into()
                    }
                );
                assert_eq!(&b[used..], b"NOOP\r\n");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse_command(b"HaveSpace \"a\" 123\r\n", L, 0),
            done(
                Command::HaveSpace {
                    name: "a".into(),
                    size: 123
                },
                19
            )
        );
        assert_eq!(
            parse_command(b"AUTHENTICATE \"PLAIN\" \"AGEAYg==\"\r\n", L, 0),
            done(
                Command::Authenticate {
                    mechanism: "PLAIN".into(),
                    initial: Some(Secret("AGEAYg==".into()))
                },
                33
            )
        );
        assert_eq!(
            parse_command(b"AUTHENTICATE \"LOGIN\"\n", L, 0),
            done(
                Command::Authenticate {
                    mechanism: "LOGIN".into(),
                    initial: None
                },
                21
            )
        );
        assert_eq!(
            parse_command(b"NOOP \"t1\"\r\n", L, 0),
            done(
                Command::Noop {
                    tag: Some("t1".into())
                },
                11
            )
        );
        assert_eq!(
            parse_command(b"SETACTIVE \"\"\r\n", L, 0),
            done(
                Command::SetActive {
                    name: String::new()
                },
                14
            )
        );
        assert_eq!(
            parse_command(b"RENAMESCRIPT \"a\" \"b\"\r\n", L, 0),
            done(
                Command::RenameScript {
                    from: "a".into(),
                    to: "b".into()
                },
                22
            )
        );
        for (line, cmd) in [
            ("STARTTLS", Command::StartTls),
            ("LOGOUT", Command::Logout),
            ("LISTSCRIPTS", Command::ListScripts),
            ("UNAUTHENTICATE", Command::Unauthenticate),
            ("GETSCRIPT \"x\"", Command::GetScript { name: "x".into() }),
            (
                "DELETESCRIPT \"x\"",
                Command::DeleteScript { name: "x".into() },
            ),
        ] {
            let b = format!("{line}\r\n");
            assert_eq!(parse_command(b.as_bytes(), L, 0), done(cmd, b.len()));
        }
    }

    #[test]
    fn synchronising_literals_are_invited_one_by_one() {
        let b = b"PUTSCRIPT {1}\r\na {2}\r\nbc\r\n";
        assert_eq!(
            parse_command(&b[..15], L, 0),
            Parsed::NeedLiteral { size: 1 }
        );
        // Asked for even when the bytes are already there.
        assert_eq!(parse_command(b, L, 0), Parsed::NeedLiteral { size: 1 });
        assert_eq!(parse_command(&b[..15], L, 1), Parsed::Incomplete);
        assert_eq!(parse_command(b, L, 1), Parsed::NeedLiteral { size: 2 });
        assert_eq!(
            parse_command(b, L, 2),
            done(
                Command::PutScript {
                    name: "a".into(),
                    script: "bc".into()
                },
                b.len()
            )
        );
        // A non-synchronising literal is not.
        assert!(matches!(
            parse_command(b"CHECKSCRIPT {2+}\nab\n", L, 0),
            Parsed::Done(Command::CheckScript { .. }, 20)
        ));
        // The decoder grants them itself.
        let mut d = Decoder::new(100, 100);
        d.push(b"CHECKSCRIPT {5}\r\n");
        assert_eq!(d.next_frame(Mode::Command), Some(Frame::LiteralWanted(5)));
        assert_eq!(d.next_frame(Mode::Command), None);
        d.push(b"keep;\r\nNOOP\r\n");
        assert_eq!(
            d.next_frame(Mode::Command),
            Some(Frame::Command(Command::CheckScript {
                script: "keep;".into()
            }))
        );
        assert_eq!(
            d.next_frame(Mode::Command),
            Some(Frame::Command(Command::Noop { tag: None }))
        );
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn literal_limits() {
        // Too big a literal is refused from its announcement, before any of
        // it arrives, whether synchronising or not.
        assert!(matches!(
            parse_command(b"PUTSCRIPT \"a\" {101+}\r\n", L, 0),
            Parsed::TooBig(_)
        ));
        assert!(matches!(
            parse_command(b"PUTSCRIPT \"a\" {101}\r\n", L, 0),
            Parsed::TooBig(_)
        ));
        assert!(matches!(
            parse_command(b"X {999999999999999}\r\n", L, 0),
            Parsed::TooBig(_)
        ));
        // A full-size literal with its line is fine.
        let mut put = b"PUTSCRIPT \"s\" {100+}\r\n".to_vec();
        put.extend(vec![b'k'; 100]);
        put.extend_from_slice(b"\r\n");
        assert_eq!(
            parse_command(&put[..put.len() - 1], L, 0),
            Parsed::Incomplete
        );
        assert!(matches!(parse_command(&put, L, 0), Parsed::Done(..)));
        // A SASL response is bounded by the line length, also as a literal.
        let mut d = Decoder::new(20, 1000);
        d.push(b"{21+}\r\n");
        assert!(matches!(
            d.next_frame(Mode::SaslResponse),
            Some(Frame::TooBig(_))
        ));
    }

    #[test]
    fn bad_input_is_skipped_to_the_line_end() {
        assert_eq!(parse_command(b"NOOP", L, 0), Parsed::Incomplete);
        assert_eq!(
            parse_command(b"\"x\"\r\n", L, 0),
            Parsed::Bad(ParseError::Syntax("expected a command name"), 5)
        );
        assert!(matches!(
            parse_command(b"GETSCRIPT \"a\r\nNOOP\r\n", L, 0),
            Parsed::Bad(ParseError::Syntax(_), 14)
        ));
        assert!(matches!(
            parse_command(b"X {abc}\r\n", L, 0),
            Parsed::Bad(_, 9)
        ));
        assert!(matches!(parse_command(b"\r\n", L, 0), Parsed::Bad(_, 2)));
        assert!(matches!(parse_command(b"X @\r\n", L, 0), Parsed::Bad(_, 5)));
        assert_eq!(
            parse_command(b"FROB\r\n", L, 0),
            Parsed::Bad(ParseError::UnknownCommand, 6)
        );
        // Wrong arguments for known commands.
        for line in [
            &b"GETSCRIPT\r\n"[..],
            b"GETSCRIPT x\r\n",
            b"GETSCRIPT \"a\" \"b\"\r\n",
            b"HAVESPACE \"a\" \"1\"\r\n",
            b"HAVESPACE \"a\" 1x\r\n",
            b"PUTSCRIPT \"a\"\r\n",
            b"LOGOUT \"now\"\r\n",
            b"AUTHENTICATE\r\n",
            b"NOOP \"a\" \"b\"\r\n",
        ] {
            assert!(
                matches!(
                    parse_command(line, L, 0),
                    Parsed::Bad(ParseError::Arguments(..) | ParseError::Syntax(_), n) if n == line.len()
                ),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
        assert_eq!(
            parse_command(b"GETSCRIPT {2+}\r\n\xff\xfe\r\n", L, 0),
            Parsed::Bad(ParseError::NotUtf8, 20)
        );
        assert_eq!(
            ParseError::Arguments("GETSCRIPT", "a script name").to_string(),
            "GETSCRIPT takes a script name"
        );
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
        assert!(matches!(parse_command(&long, L, 0), Parsed::TooBig(_)));
        long.extend_from_slice(b"\r\n");
        assert!(matches!(parse_command(&long, L, 0), Parsed::TooBig(_)));
        let mut endless = b"X @".to_vec();
        endless.extend(vec![b'a'; 4000]);
        assert!(matches!(parse_command(&endless, L, 0), Parsed::TooBig(_)));
        let mut literals = b"X".to_vec();
        for _ in 0..5 {
            literals.extend_from_slice(b" {50+}\r\n");
            literals.extend(vec![b'x'; 50]);
        }
        assert!(matches!(parse_command(&literals, L, 0), Parsed::TooBig(_)));
        // Synchronising ones too, as soon as one would pass the bound.
        let mut sync = b"X {99}\r\n".to_vec();
        sync.extend(vec![b'x'; 99]);
        sync.extend_from_slice(b" {99}\r\n");
        assert!(matches!(parse_command(&sync, L, 1), Parsed::TooBig(_)));
        // Too long a line is TooBig also where the parser waits inside a
        // quoted string or a literal length, and when the line ends in one.
        assert!(matches!(
            parse_command(b"X \"\\\\\\\\\\", lim(6, 100), 0),
            Parsed::TooBig(_)
        ));
        assert!(matches!(
            parse_command(b"X \"\\\\\\\\\\\\", lim(6, 100), 0),
            Parsed::TooBig(_)
        ));
        assert!(matches!(
            parse_command(b"NOOP {12", lim(6, 100), 0),
            Parsed::TooBig(_)
        ));
        assert!(matches!(
            parse_command(b"NOOP {1+}\r\nx\r\n", lim(7, 100), 0),
            Parsed::TooBig(_)
        ));
        assert!(matches!(
            parse_command(b"NOOP {1+}\r\nx\r\n", lim(9, 100), 0),
            Parsed::Done(..)
        ));
        // A bad literal length followed by the next command is a bad line,
        // not part of a command too long.
        assert_eq!(
            parse_command(b"X {3x\r\nX {9999999", lim(16, 0), 0),
            Parsed::Bad(ParseError::Syntax("bad literal"), 7)
        );
    }

    #[test]
    fn sasl_responses() {
        let p = |b: &[u8]| parse_sasl_response(b, L, 0);
        assert_eq!(
            p(b"\"AGEAYg==\"\r\n"),
            Parsed::Done(SaslResponse::Data(Secret("AGEAYg==".into())), 12)
        );
        assert_eq!(
            p(b"AGEAYg==\r\n"),
            Parsed::Done(SaslResponse::Data(Secret("AGEAYg==".into())), 10)
        );
        assert_eq!(
            p(b"{4+}\r\nabcd\r\n"),
            Parsed::Done(SaslResponse::Data(Secret("abcd".into())), 12)
        );
        assert_eq!(p(b"*\r\n"), Parsed::Done(SaslResponse::Cancel, 3));
        assert_eq!(p(b"\"*\"\r\n"), Parsed::Done(SaslResponse::Cancel, 5));
        assert!(matches!(p(b"\r\n"), Parsed::Bad(_, 2)));
        assert!(matches!(p(b"\"a\" \"b\"\r\n"), Parsed::Bad(_, 9)));
        assert_eq!(p(b"\"abc"), Parsed::Incomplete);
        assert_eq!(p(b"{3}\r\n"), Parsed::NeedLiteral { size: 3 });
    }

    #[test]
    fn commands_encode_and_parse_back() {
        let big = "x".repeat(2000);
        for c in [
            Command::PutScript {
                name: "a \"q\" \\".into(),
                script: "keep;\r\n".into(),
            },
            Command::CheckScript {
                script: big.clone(),
            },
            Command::HaveSpace {
                name: "n".into(),
                size: 42,
            },
            Command::Authenticate {
                mechanism: "PLAIN".into(),
                initial: Some(Secret("=".into())),
            },
            Command::Noop { tag: None },
            Command::Noop {
                tag: Some("\0".into()),
            },
        ] {
            let b = c.encode();
            let l = lim(1 << 20, 1 << 20);
            assert_eq!(parse_command(&b, l, 0), Parsed::Done(c, b.len()));
        }
    }

    #[test]
    fn responses() {
        assert_eq!(Response::ok("").to_bytes(), b"OK\r\n");
        assert_eq!(
            Response::no(Some(ResponseCode::QuotaMaxSize), "too \"big\"").to_bytes(),
            b"NO (QUOTA/MAXSIZE) \"too \\\"big\\\"\"\r\n"
        );
        assert_eq!(
            Response::ok_tag("a\"b").to_bytes(),
            b"OK (TAG \"a\\\"b\") \"Done\"\r\n"
        );
        assert_eq!(
            Response::bye(None, "a\r\nb").to_bytes(),
            b"BYE {4}\r\na\r\nb\r\n"
        );
        assert_eq!(
            encode(&[
                Response::capability("IMPLEMENTATION", Some("Outpost")),
                Response::capability("STARTTLS", None),
                Response::Listed {
                    name: "s".into(),
                    active: true
                },
                Response::Listed {
                    name: "t".into(),
                    active: false
                },
                Response::Script("keep;\r\n".into()),
                Response::Challenge(String::new()),
            ]),
            b"\"IMPLEMENTATION\" \"Outpost\"\r\n\"STARTTLS\"\r\n\"s\" ACTIVE\r\n\"t\"\r\n{7}\r\nkeep;\r\n\r\n\"\"\r\n"
        );
        let mut long = Vec::new();
        encode_string(&mut long, &"a".repeat(1025));
        assert!(long.starts_with(b"{1025}\r\naaa"));
    }
}
