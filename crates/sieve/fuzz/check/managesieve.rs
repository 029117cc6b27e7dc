//! What the `managesieve` fuzz target checks, kept apart from libFuzzer so
//! that `tests/proptest_managesieve.rs` runs the same code on stable Rust
//! (both include this file with `#[path]`).
//!
//! The input's first byte picks the limits, the connection and how the
//! bytes arrive; the rest is what the client sends. The target drives
//! what the server loop drives: the codec's `Decoder`, in the mode the
//! session asks for, feeding the session `Machine`, whose actions a
//! scripted world answers (a directory where alice/secret logs in, a
//! compiler that refuses scripts containing "error", a model script
//! store). Checked, besides "never panics":
//!
//! - the codec on its own: a command or error uses at least one byte,
//!   never more than it has, and ends at a line end; the parser never
//!   waits for more once a command is longer than a line plus a literal;
//!   every command that parses, written out again, parses back to itself;
//! - the bytes arriving in pieces give the same conversation, byte for
//!   byte, as the whole input at once;
//! - every answer is well formed (RFC 5804 §4): data lines of strings,
//!   then exactly one status line (OK/NO/BYE, an optional response code,
//!   an optional string) at its end, or a lone string for a SASL
//!   challenge or a literal invitation; quoted strings are at most 1024
//!   octets without CR, LF or NUL;
//! - the session keeps the rules: no script operation and no compile
//!   before a login; the store never holds more scripts than the quota,
//!   a script larger than the limit, or one the compiler refused;
//!   LISTSCRIPTS and GETSCRIPT show exactly what the store holds;
//! - once the session closes nothing more is read.

#![allow(dead_code)]

use std::collections::BTreeMap;

use outpost_net::{AuthUser, LoginOutcome, TempFail};
use outpost_sieve::codec::{self, Command, Decoder, Frame, Limits, Mode, Parsed};
use outpost_sieve::session::{
    Action, Answer, Machine, MachineConfig, Op, ScriptInfo, ScriptOpError,
};

/// Limits large enough for any re-encoded command.
const BIG: Limits = Limits {
    max_line: 1 << 24,
    max_literal: 1 << 24,
};

pub struct Setup {
    pub cfg: MachineConfig,
    pub max_line: usize,
    pub chunk: usize,
}

/// Bits 0-1: max line (16, 64, 200, 8192); bits 2-3: max script size, the
/// largest literal in a command (0, 10, 100, 65536); bits 4-5: bytes per
/// read (1, 5, 64, all); bit 6: logins without TLS refused; bit 7: the
/// connection is already TLS.
pub fn setup(b: u8) -> Setup {
    Setup {
        cfg: MachineConfig {
            hostname: "sieve.example.org".into(),
            tls_available: true,
            is_tls: b & 0x80 != 0,
            plaintext_allowed: b & 0x40 == 0,
            max_bad_commands: 12,
            max_scripts: 3,
            max_script_size: [0, 10, 100, 65536][((b >> 2) & 3) as usize],
            sieve_extensions: "fileinto vacation".into(),
            max_redirects: 4,
        },
        max_line: [16, 64, 200, 8192][(b & 3) as usize],
        chunk: [1, 5, 64, usize::MAX][((b >> 4) & 3) as usize],
    }
}

// --- The codec alone -------------------------------------------------------

/// Parses every command complete in `buf` as the decoder does, granting
/// each synchronising literal it asks for; drops what each result used.
/// Returns false after `TooBig`.
fn drain(buf: &mut Vec<u8>, limits: Limits, granted: &mut usize, events: &mut Vec<String>) -> bool {
    loop {
        match codec::parse_command(buf, limits, *granted) {
            Parsed::Incomplete => {
                assert!(
                    buf.len() <= limits.max_command(),
                    "parser waits for more after {} bytes (bound {})",
                    buf.len(),
                    limits.max_command()
                );
                return true;
            }
            Parsed::NeedLiteral { size } => {
                assert!(
                    size <= limits.max_literal,
                    "invited a literal over the limit"
                );
                *granted += 1;
                events.push(format!("literal {size}"));
            }
            Parsed::TooBig(_) => {
                events.push("too big".into());
                return false;
            }
            Parsed::Bad(e, used) => {
                check_used(buf, used);
                buf.drain(..used);
                *granted = 0;
                events.push(format!("bad {used} {e}"));
            }
            Parsed::Done(c, used) => {
                check_used(buf, used);
                round_trip(&c);
                buf.drain(..used);
                *granted = 0;
                events.push(format!("{c:?} {used}"));
            }
        }
    }
}

fn check_used(buf: &[u8], used: usize) {
    assert!(used > 0, "a result that uses no input");
    assert!(used <= buf.len(), "used {used} of {} bytes", buf.len());
    assert!(
        matches!(buf[used - 1], b'\n' | b'\r'),
        "a result that does not end at a line end: {:?}",
        String::from_utf8_lossy(&buf[..used])
    );
}

/// A command written out by `Command::encode` parses back to itself.
pub fn round_trip(c: &Command) {
    let bytes = c.encode();
    match codec::parse_command(&bytes, BIG, 0) {
        Parsed::Done(again, used) => {
            assert_eq!(
                &again,
                c,
                "re-encoded as {:?}",
                String::from_utf8_lossy(&bytes)
            );
            assert_eq!(used, bytes.len());
        }
        other => panic!(
            "{c:?} re-encoded as {:?} gives {other:?}",
            String::from_utf8_lossy(&bytes)
        ),
    }
}

/// The codec over `input`, whole and in pieces of `chunk`: the same events.
fn codec_alone(input: &[u8], limits: Limits, chunk: usize) {
    let mut whole = Vec::new();
    drain(&mut input.to_vec(), limits, &mut 0, &mut whole);
    let mut pieces = Vec::new();
    let mut buf = Vec::new();
    let mut granted = 0;
    for piece in input.chunks(chunk.min(input.len()).max(1)) {
        buf.extend_from_slice(piece);
        if !drain(&mut buf, limits, &mut granted, &mut pieces) {
            break;
        }
    }
    assert_eq!(
        pieces, whole,
        "bytes in pieces parse differently from the whole"
    );
}

// --- Reading what the server sends ----------------------------------------

#[derive(Debug, PartialEq, Eq)]
pub enum Token {
    Str(Vec<u8>),
    Atom(Vec<u8>),
    /// A response code and its argument, if any.
    Code(Vec<u8>, Option<Vec<u8>>),
}

/// A server string at `p`: quoted or a `{N}` literal.
fn read_string(b: &[u8], p: usize) -> (Vec<u8>, usize) {
    match b[p] {
        b'"' => {
            let mut out = Vec::new();
            let mut i = p + 1;
            loop {
                match b.get(i) {
                    Some(b'"') => break,
                    Some(b'\\') => {
                        let c = b.get(i + 1).copied();
                        assert!(
                            matches!(c, Some(b'"' | b'\\')),
                            "bad escape in {:?}",
                            String::from_utf8_lossy(b)
                        );
                        out.push(c.unwrap());
                        i += 2;
                    }
                    Some(&c) => {
                        assert!(
                            !matches!(c, b'\r' | b'\n' | 0),
                            "CR, LF or NUL in a quoted string"
                        );
                        out.push(c);
                        i += 1;
                    }
                    None => panic!(
                        "unterminated quoted string in {:?}",
                        String::from_utf8_lossy(b)
                    ),
                }
            }
            assert!(out.len() <= 1024, "quoted string of {} octets", out.len());
            (out, i + 1)
        }
        b'{' => {
            let close = b[p..]
                .iter()
                .position(|&c| c == b'}')
                .expect("literal without }")
                + p;
            let n: usize = std::str::from_utf8(&b[p + 1..close])
                .unwrap()
                .parse()
                .expect("literal length");
            assert_eq!(
                &b[close + 1..close + 3],
                b"\r\n",
                "literal length must end its line"
            );
            let start = close + 3;
            (b[start..start + n].to_vec(), start + n)
        }
        c => panic!("not a string: {:?}", c as char),
    }
}

/// Splits server output into lines of tokens, checking the framing.
pub fn read_lines(b: &[u8]) -> Vec<Vec<Token>> {
    let mut lines = Vec::new();
    let mut p = 0;
    while p < b.len() {
        let mut line = Vec::new();
        loop {
            match b.get(p) {
                Some(b'\r') => {
                    assert_eq!(b.get(p + 1), Some(&b'\n'), "CR without LF");
                    p += 2;
                    break;
                }
                Some(b'"' | b'{') => {
                    let (s, next) = read_string(b, p);
                    line.push(Token::Str(s));
                    p = next;
                }
                Some(b'(') => {
                    let end = p
                        + 1
                        + b[p + 1..]
                            .iter()
                            .position(|&c| c == b')' || c == b' ')
                            .expect("open code");
                    let name = b[p + 1..end].to_vec();
                    let (arg, next) = if b[end] == b' ' {
                        let (s, next) = read_string(b, end + 1);
                        (Some(s), next)
                    } else {
                        (None, end)
                    };
                    assert_eq!(b.get(next), Some(&b')'), "response code not closed");
                    line.push(Token::Code(name, arg));
                    p = next + 1;
                }
                Some(_) => {
                    let len = b[p..]
                        .iter()
                        .position(|&c| matches!(c, b' ' | b'\r' | b'\n' | b'"' | b'{' | b'('))
                        .unwrap_or(b.len() - p);
                    assert!(len > 0, "stray byte in server output");
                    line.push(Token::Atom(b[p..p + len].to_vec()));
                    p += len;
                }
                None => panic!(
                    "server output does not end with CRLF: {:?}",
                    String::from_utf8_lossy(b)
                ),
            }
            match b.get(p) {
                Some(b' ') => p += 1,
                Some(b'\r') => {}
                other => panic!(
                    "expected SP or CRLF, got {other:?} in {:?}",
                    String::from_utf8_lossy(b)
                ),
            }
        }
        lines.push(line);
    }
    lines
}

fn is_status(line: &[Token]) -> bool {
    matches!(line.first(), Some(Token::Atom(a)) if a == b"OK" || a == b"NO" || a == b"BYE")
}

/// Checks one answer's shape; returns its lines and status word.
fn check_answer(bytes: &[u8]) -> (Vec<Vec<Token>>, Option<Vec<u8>>) {
    let lines = read_lines(bytes);
    assert!(!lines.is_empty(), "empty answer");
    let last = lines.last().unwrap();
    if !is_status(last) {
        // A SASL challenge or a literal invitation: one string alone.
        assert!(
            lines.len() == 1 && matches!(&last[..], [Token::Str(_)]),
            "answer without a status line: {:?}",
            String::from_utf8_lossy(bytes)
        );
        return (lines, None);
    }
    let mut data = &lines[..lines.len() - 1];
    // A refusal that ends the session: NO, then BYE.
    if let (Some(Token::Atom(bye)), Some(no)) = (last.first(), data.last()) {
        if bye == b"BYE" && is_status(no) {
            assert!(
                matches!(no.first(), Some(Token::Atom(a)) if a == b"NO"),
                "{no:?} before BYE"
            );
            data = &data[..data.len() - 1];
        }
    }
    for l in data {
        assert!(
            matches!(l.first(), Some(Token::Str(_))),
            "data line {l:?} does not start with a string"
        );
        assert!(l.len() <= 2, "data line {l:?}");
    }
    match &last[..] {
        [Token::Atom(_)]
        | [Token::Atom(_), Token::Code(..)]
        | [Token::Atom(_), Token::Str(_)]
        | [Token::Atom(_), Token::Code(..), Token::Str(_)] => {}
        other => panic!("bad status line {other:?}"),
    }
    let status = match &last[0] {
        Token::Atom(s) => s.clone(),
        _ => unreachable!("is_status checked it"),
    };
    (lines, Some(status))
}

// --- The scripted world ------------------------------------------------------

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Store {
    /// name -> (script, active)
    pub scripts: BTreeMap<String, (String, bool)>,
}

impl Store {
    fn list(&self) -> Vec<ScriptInfo> {
        self.scripts
            .iter()
            .map(|(n, (s, a))| ScriptInfo {
                name: n.clone(),
                size: s.len(),
                active: *a,
            })
            .collect()
    }

    fn apply(&mut self, op: &Op) -> Answer {
        let s = &mut self.scripts;
        match op {
            Op::List if s.contains_key("tempfail") => {
                Answer::Scripts(Err(TempFail("list failed".into())))
            }
            Op::List => Answer::Scripts(Ok(self.list())),
            Op::Get { name } => Answer::Script(Ok(s.get(name).map(|(c, _)| c.clone()))),
            Op::Put { name, .. } if name.contains('/') => {
                Answer::Done(Err(ScriptOpError::Invalid("no '/'".into())))
            }
            Op::Put { name, .. } if name == "disk" => {
                Answer::Done(Err(ScriptOpError::Temp("disk full".into())))
            }
            Op::Put { name, script } => {
                let active = s.get(name).is_some_and(|(_, a)| *a);
                s.insert(name.clone(), (script.clone(), active));
                Answer::Done(Ok(()))
            }
            Op::Delete { name } => Answer::Done(match s.get(name) {
                None => Err(ScriptOpError::NotFound),
                Some((_, true)) => Err(ScriptOpError::Active),
                Some(_) => {
                    s.remove(name);
                    Ok(())
                }
            }),
            Op::Rename { from, to } => Answer::Done(if !s.contains_key(from) {
                Err(ScriptOpError::NotFound)
            } else if s.contains_key(to) {
                Err(ScriptOpError::Exists)
            } else {
                let v = s.remove(from).unwrap();
                s.insert(to.clone(), v);
                Ok(())
            }),
            Op::SetActive { name: None } => {
                for v in s.values_mut() {
                    v.1 = false;
                }
                Answer::Done(Ok(()))
            }
            Op::SetActive { name: Some(n) } => Answer::Done(if s.contains_key(n) {
                for (k, v) in s.iter_mut() {
                    v.1 = k == n;
                }
                Ok(())
            } else {
                Err(ScriptOpError::NotFound)
            }),
        }
    }
}

fn login(login: &str, password: &str) -> LoginOutcome {
    match (login, password) {
        ("alice", "secret") => LoginOutcome::Success(AuthUser {
            principal_id: 1,
            login: "alice@example.org".into(),
            quota_bytes: 0,
        }),
        ("blocked", _) => LoginOutcome::Blocked,
        ("tempfail", _) => LoginOutcome::Unavailable(TempFail("directory down".into())),
        _ => LoginOutcome::Failed,
    }
}

fn compile(script: &str) -> Result<(), String> {
    match script.find("error") {
        Some(at) => Err(format!("line 1: error at {at}")),
        None => Ok(()),
    }
}

/// What one run came to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Run {
    /// Every command the session got.
    pub commands: Vec<Command>,
    /// All the server sent.
    pub transcript: Vec<u8>,
    pub store: Store,
    pub logins: usize,
    pub stored: usize,
    pub closed: bool,
}

/// One session over `input`, read `chunk` bytes at a time.
fn session(input: &[u8], s: &Setup, chunk: usize) -> Run {
    let cfg = s.cfg.clone();
    let mut m = Machine::new(cfg.clone());
    let mut d = Decoder::new(s.max_line, cfg.max_script_size);
    let mut run = Run::default();
    let greeting = codec::encode(&m.greeting());
    assert_eq!(check_answer(&greeting).1.as_deref(), Some(&b"OK"[..]));
    run.transcript.extend_from_slice(&greeting);
    'read: for piece in input.chunks(chunk.min(input.len()).max(1)) {
        d.push(piece);
        loop {
            let mode = m.input_mode();
            let Some(frame) = d.next_frame(mode) else {
                let bound = match mode {
                    Mode::Command => s.max_line + cfg.max_script_size,
                    Mode::SaslResponse => 2 * s.max_line,
                };
                assert!(
                    d.buffered() <= bound,
                    "{} bytes buffered, bound {bound}",
                    d.buffered()
                );
                break;
            };
            let cmd = match &frame {
                Frame::Command(c) => {
                    assert_eq!(mode, Mode::Command);
                    round_trip(c);
                    run.commands.push(c.clone());
                    Some(c.clone())
                }
                Frame::SaslResponse(_) => {
                    assert_eq!(mode, Mode::SaslResponse);
                    None
                }
                _ => None,
            };
            let mut action = m.on_frame(frame);
            let mut steps = 0;
            let (responses, close, starttls) = loop {
                steps += 1;
                assert!(steps <= 4, "more than three calls out for one frame");
                action = match action {
                    Action::Send(r) => break (r, false, false),
                    Action::Close(r) => break (r, true, false),
                    Action::StartTls(r) => break (r, false, true),
                    Action::Login { login: l, password } => {
                        let outcome = login(&l, &password.0);
                        if matches!(outcome, LoginOutcome::Success(_)) {
                            run.logins += 1;
                        }
                        m.answer(Answer::Login(outcome))
                    }
                    Action::Compile { script } => {
                        assert!(m.user().is_some(), "compile before login");
                        assert!(
                            script.len() <= cfg.max_script_size,
                            "compiling a script over the limit"
                        );
                        m.answer(Answer::Compiled(compile(&script)))
                    }
                    Action::Script(op) => {
                        assert!(m.user().is_some(), "{op:?} before login");
                        if let Op::Put { script, .. } = &op {
                            assert!(
                                script.len() <= cfg.max_script_size,
                                "storing a script over the limit"
                            );
                            assert!(
                                compile(script).is_ok(),
                                "storing a script the compiler refused"
                            );
                            run.stored += 1;
                        }
                        let a = run.store.apply(&op);
                        assert!(run.store.scripts.len() <= cfg.max_scripts, "quota exceeded");
                        m.answer(a)
                    }
                };
            };
            let bytes = codec::encode(&responses);
            let (lines, status) = check_answer(&bytes);
            run.transcript.extend_from_slice(&bytes);
            if status.as_deref() == Some(b"OK") {
                match &cmd {
                    Some(Command::ListScripts) => {
                        let listed: Vec<(Vec<u8>, bool)> = lines[..lines.len() - 1]
                            .iter()
                            .map(|l| match &l[..] {
                                [Token::Str(n)] => (n.clone(), false),
                                [Token::Str(n), Token::Atom(a)] if a == b"ACTIVE" => {
                                    (n.clone(), true)
                                }
                                other => panic!("bad LISTSCRIPTS line {other:?}"),
                            })
                            .collect();
                        let want: Vec<(Vec<u8>, bool)> = run
                            .store
                            .scripts
                            .iter()
                            .map(|(n, (_, a))| (n.clone().into_bytes(), *a))
                            .collect();
                        assert_eq!(listed, want, "LISTSCRIPTS differs from the store");
                    }
                    Some(Command::GetScript { name }) => {
                        let want = &run.store.scripts[name].0;
                        assert!(
                            matches!(&lines[..], [l, _] if l[..] == [Token::Str(want.clone().into_bytes())]),
                            "GETSCRIPT differs from the store"
                        );
                    }
                    _ => {}
                }
            }
            if close {
                assert!(m.is_closed());
                run.closed = true;
                break 'read;
            }
            if starttls {
                // As the loop does: input pipelined after STARTTLS is
                // dropped, then the handshake.
                d.clear();
                let after = codec::encode(&m.tls_started());
                assert_eq!(check_answer(&after).1.as_deref(), Some(&b"OK"[..]));
                run.transcript.extend_from_slice(&after);
                continue 'read;
            }
        }
    }
    run
}

/// The fuzz target's body.
pub fn managesieve(data: &[u8]) -> Run {
    let Some((&first, input)) = data.split_first() else {
        return Run::default();
    };
    let s = setup(first);
    codec_alone(
        input,
        Limits {
            max_line: s.max_line,
            max_literal: s.cfg.max_script_size,
        },
        s.chunk,
    );
    let whole = session(input, &s, usize::MAX);
    // STARTTLS drops what was pipelined after it, which depends on how the
    // bytes arrived; everything else must not.
    if s.chunk != usize::MAX && !whole.commands.contains(&Command::StartTls) {
        let pieces = session(input, &s, s.chunk);
        assert_eq!(
            String::from_utf8_lossy(&pieces.transcript),
            String::from_utf8_lossy(&whole.transcript),
            "bytes in pieces give another conversation"
        );
        assert_eq!(pieces, whole);
    }
    whole
}
