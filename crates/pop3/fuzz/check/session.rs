//! What the POP3 `session` fuzz target checks, kept apart from libFuzzer so
//! that `tests/proptest_session.rs` runs the same code on stable Rust (both
//! include this file with `#[path]`).
//!
//! The input's first byte sets up the session (TLS, limits, how the bytes
//! arrive); the rest is what the client sends, and also the content of
//! message 3 of the maildrop. Checked, besides "never panics":
//!
//! - every input line gets exactly one response, and a response is one
//!   status line (`+OK`, `-ERR`, or a `+ ` SASL continuation) unless it is
//!   the `+OK` to a command the client knows to be multi-line (CAPA, LIST
//!   and UIDL without argument, RETR, TOP, AUTH alone), which then is
//!   dot-stuffed and ends at the first lone `.` (RFC 1939 §3);
//! - RETR and TOP give back, once unstuffed, the stored message with CRLF
//!   line ends (TOP: the header and the first n body lines), and RETR's
//!   octet count is what it sends;
//! - the machine agrees with a model of the maildrop: STAT and LIST count
//!   what is not deleted, QUIT expunges exactly what DELE marked;
//! - every command that parses survives `to_line` and the line framer
//!   unchanged.

#![allow(dead_code)]

use std::collections::BTreeSet;

use outpost_pop3::codec::{parse_command, unstuff, Command, Frame, LineBuffer};
use outpost_pop3::session::{Action, LoginOutcome, Machine, MachineConfig};
use outpost_pop3::{MaildropEntry, TempFail};

/// The session and feeding mode the first input byte selects.
pub struct Setup {
    pub cfg: MachineConfig,
    pub max_line: usize,
    pub chunk: usize,
}

/// Bit 0: a TLS certificate is configured; bit 1: already TLS; bit 2:
/// plaintext logins allowed; bit 3: small limits; bits 4-5: bytes per
/// read (1, 7, 64, all).
pub fn setup(b: u8) -> Setup {
    let small = b & 0x08 != 0;
    Setup {
        cfg: MachineConfig {
            hostname: "pop.example.org".into(),
            tls_available: b & 0x01 != 0,
            is_tls: b & 0x02 != 0,
            plaintext_allowed: b & 0x04 != 0,
            max_bad_commands: if small { 3 } else { 10 },
        },
        max_line: if small { 40 } else { 1024 },
        chunk: match (b >> 4) & 3 {
            0 => 1,
            1 => 7,
            2 => 64,
            _ => usize::MAX,
        },
    }
}

/// The maildrop: a few fixed messages, and the fuzz input itself as
/// message 3. Message 4 vanishes before RETR, message 5 cannot be read.
pub struct Maildrop {
    pub raw: Vec<Vec<u8>>,
}

const IDS: [u64; 5] = [101, 102, 103, 104, 105];

impl Maildrop {
    pub fn new(input: &[u8]) -> Maildrop {
        Maildrop {
            raw: vec![
                b"Subject: one\r\n\r\nhello\r\n.\r\n..two dots\r\n.\r\n".to_vec(),
                b"Subject: two\n\nbare LF\nlines\rand a lone CR".to_vec(),
                input.to_vec(),
                b"Subject: vanished\r\n\r\nx\r\n".to_vec(),
                b"Subject: unreadable\r\n\r\nx\r\n".to_vec(),
            ],
        }
    }

    fn entries(&self) -> Vec<MaildropEntry> {
        self.raw
            .iter()
            .zip(IDS)
            .map(|(raw, id)| MaildropEntry {
                id,
                size: wire(raw, None).len() as u64,
                uidl: format!("uid{id}"),
            })
            .collect()
    }

    fn read(&self, id: u64) -> Result<Option<Vec<u8>>, TempFail> {
        match id {
            104 => Ok(None),
            105 => Err(TempFail("disk on fire".into())),
            _ => {
                let i = IDS
                    .iter()
                    .position(|&x| x == id)
                    .expect("Fetch of an unknown id");
                Ok(Some(self.raw[i].clone()))
            }
        }
    }
}

/// The lines of a stored message: split at CRLF, lone CR and lone LF; an
/// ending at the very end starts no further line.
pub fn lines(raw: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'\r' | b'\n' => {
                out.push(&raw[start..i]);
                if raw[i] == b'\r' && raw.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < raw.len() {
        out.push(&raw[start..]);
    }
    out
}

/// The message as RETR (`None`) or TOP n sends it, before dot-stuffing.
pub fn wire(raw: &[u8], top: Option<u64>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut in_header = true;
    let mut left = top;
    for l in lines(raw) {
        if !in_header {
            match left.as_mut() {
                Some(0) => break,
                Some(n) => *n -= 1,
                None => {}
            }
        }
        out.extend_from_slice(l);
        out.extend_from_slice(b"\r\n");
        if l.is_empty() {
            in_header = false;
        }
    }
    out
}

/// The model: which messages (1-based) are marked deleted.
struct Model {
    logged_in: bool,
    deleted: BTreeSet<u64>,
    sizes: Vec<u64>,
}

impl Model {
    fn visible(&self) -> (usize, u64) {
        let mut n = 0;
        let mut size = 0;
        for (i, s) in self.sizes.iter().enumerate() {
            if !self.deleted.contains(&(i as u64 + 1)) {
                n += 1;
                size += s;
            }
        }
        (n, size)
    }
}

/// Splits a response into its status line (without CRLF) and the rest,
/// checking that the status line is one clean line.
fn status_line(r: &[u8]) -> (&[u8], &[u8]) {
    let eol = r
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or_else(|| panic!("response without CRLF: {:?}", String::from_utf8_lossy(r)));
    let status = &r[..eol];
    assert!(
        !status.contains(&b'\r') && !status.contains(&b'\n'),
        "stray CR/LF in status line {:?}",
        String::from_utf8_lossy(status)
    );
    assert!(
        status == b"+OK"
            || status.starts_with(b"+OK ")
            || status == b"-ERR"
            || status.starts_with(b"-ERR ")
            || status.starts_with(b"+ "),
        "bad status line {:?}",
        String::from_utf8_lossy(status)
    );
    (status, &r[eol + 2..])
}

/// Checks a multi-line body: CRLF lines, no bare CR/LF, ending at the
/// first lone "." which must be the end of the response.
fn multi_line_body(body: &[u8]) {
    let mut rest = body;
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .unwrap_or_else(|| {
                panic!(
                    "multi-line response not terminated: {:?}",
                    String::from_utf8_lossy(body)
                )
            });
        let line = &rest[..eol];
        assert!(
            !line.contains(&b'\r') && !line.contains(&b'\n'),
            "bare CR/LF in a multi-line response"
        );
        rest = &rest[eol + 2..];
        if line == b"." {
            assert!(rest.is_empty(), "bytes after the terminating dot");
            return;
        }
    }
}

/// Every command that parses must come back unchanged from `to_line`, also
/// through the line framer.
pub fn round_trip(line: &[u8]) {
    let Ok(cmd) = parse_command(line) else {
        return;
    };
    let text = cmd.to_line();
    let body = text.strip_suffix("\r\n").expect("to_line ends with CRLF");
    let again = parse_command(body.as_bytes());
    assert_eq!(again.as_ref(), Ok(&cmd), "to_line gave {text:?}");
    if !body.contains('\n') {
        let mut lb = LineBuffer::new(text.len() + 1);
        lb.push(text.as_bytes());
        match lb.next_frame() {
            Some(Frame::Line(l)) => assert_eq!(parse_command(&l).as_ref(), Ok(&cmd)),
            other => panic!("{text:?} framed as {other:?}"),
        }
    }
}

fn is_multi_line_command(cmd: &Command) -> bool {
    matches!(
        cmd,
        Command::Capa
            | Command::List(None)
            | Command::Uidl(None)
            | Command::Retr(_)
            | Command::Top(..)
            | Command::Auth {
                mechanism: None,
                ..
            }
    )
}

/// What a run got to, so tests can tell that seeds reach the deep paths.
#[derive(Debug, Default)]
pub struct Reached {
    pub logins: usize,
    pub fetches: usize,
    pub expunges: usize,
}

/// The fuzz target's body.
pub fn session(data: &[u8]) -> Reached {
    let mut reached = Reached::default();
    let Some((&first, input)) = data.split_first() else {
        return reached;
    };
    let s = setup(first);
    let maildrop = Maildrop::new(input);
    let mut m = Machine::new(s.cfg);
    let greeting = m.greeting().into_bytes();
    let (status, rest) = status_line(&greeting);
    assert!(status.starts_with(b"+OK ") && rest.is_empty());

    let mut lb = LineBuffer::new(s.max_line);
    let mut model = Model {
        logged_in: false,
        deleted: BTreeSet::new(),
        sizes: maildrop.entries().iter().map(|e| e.size).collect(),
    };
    let mut sasl_pending = false;
    for piece in input.chunks(s.chunk.min(input.len()).max(1)) {
        lb.push(piece);
        while let Some(frame) = lb.next_frame() {
            // What the client sent, as far as it is a command.
            let cmd = match (&frame, sasl_pending) {
                (Frame::Line(l), false) => {
                    assert!(l.len() < s.max_line, "framer passed an over-long line");
                    assert!(!l.contains(&b'\n'), "framer passed a line with LF");
                    round_trip(l);
                    parse_command(l).ok()
                }
                _ => None,
            };
            let mut action = m.on_frame(frame);
            let mut steps = 0;
            // Drive the machine until it produces the response.
            let (response, close, starttls) = loop {
                steps += 1;
                assert!(steps <= 3, "more than two backend calls for one line");
                action = match action {
                    Action::Send(r) => break (r.into_bytes(), false, false),
                    Action::Close(r) => break (r.into_bytes(), true, false),
                    Action::StartTls(r) => break (r.into_bytes(), false, true),
                    Action::Login { login, password } => {
                        let outcome = match (login.as_str(), password.0.as_str()) {
                            ("inuse", _) => LoginOutcome::InUse,
                            ("blocked", _) => LoginOutcome::Blocked,
                            ("tempfail", _) => LoginOutcome::TempFail,
                            (_, "secret") => LoginOutcome::Ok(maildrop.entries()),
                            _ => LoginOutcome::BadCredentials,
                        };
                        let ok = matches!(outcome, LoginOutcome::Ok(_));
                        let a = m.login_result(outcome);
                        if ok {
                            model.logged_in = true;
                            reached.logins += 1;
                        }
                        assert!(
                            matches!(a, Action::Send(_) | Action::Close(_)),
                            "login answered with {a:?}"
                        );
                        a
                    }
                    Action::Fetch { id, body_lines } => {
                        reached.fetches += 1;
                        let raw = maildrop.read(id);
                        let a = m.message_result(raw.clone());
                        if let (Ok(Some(raw)), Action::Send(r)) = (&raw, &a) {
                            let (status, body) = status_line(r.as_bytes());
                            assert!(status.starts_with(b"+OK"));
                            multi_line_body(body);
                            let want = wire(raw, body_lines);
                            assert_eq!(
                                unstuff(body),
                                want,
                                "RETR/TOP content differs from the stored message"
                            );
                            if body_lines.is_none() {
                                let octets = format!("+OK {} octets", want.len());
                                assert_eq!(status, octets.as_bytes());
                            }
                        }
                        assert!(matches!(a, Action::Send(_)), "fetch answered with {a:?}");
                        a
                    }
                    Action::Expunge { ids } => {
                        let want: Vec<u64> =
                            model.deleted.iter().map(|&n| IDS[n as usize - 1]).collect();
                        assert_eq!(ids, want, "QUIT expunges other messages than DELE marked");
                        reached.expunges += 1;
                        let r = if ids.contains(&105) {
                            Err(TempFail("expunge failed".into()))
                        } else {
                            Ok(())
                        };
                        let a = m.update_result(r);
                        assert!(matches!(a, Action::Close(_)), "expunge answered with {a:?}");
                        a
                    }
                };
            };
            let (status, body) = status_line(&response);
            let ok = status.starts_with(b"+OK");
            sasl_pending = status.starts_with(b"+ ");
            match &cmd {
                Some(c) if ok && is_multi_line_command(c) => multi_line_body(body),
                _ => assert!(
                    body.is_empty(),
                    "more than one line in a single-line response: {:?}",
                    String::from_utf8_lossy(&response)
                ),
            }
            if ok && model.logged_in {
                match cmd {
                    Some(Command::Dele(n)) => {
                        assert!(
                            model.deleted.insert(n.0),
                            "DELE of a deleted message succeeded"
                        );
                    }
                    Some(Command::Rset) => model.deleted.clear(),
                    Some(Command::Stat) => {
                        let (n, size) = model.visible();
                        assert_eq!(status, format!("+OK {n} {size}").as_bytes());
                    }
                    Some(Command::List(Some(n))) => {
                        let size = model.sizes[n.0 as usize - 1];
                        assert!(!model.deleted.contains(&n.0));
                        assert_eq!(status, format!("+OK {} {size}", n.0).as_bytes());
                    }
                    Some(Command::List(None)) => {
                        let listed = body.split(|&b| b == b'\n').count() - 2;
                        assert_eq!(listed, model.visible().0, "LIST shows deleted messages");
                    }
                    _ => {}
                }
            }
            if close {
                return reached;
            }
            if starttls {
                // As the server loop does: plaintext pipelined after STLS
                // is dropped, then the handshake.
                lb.clear();
                m.tls_started();
                break;
            }
        }
    }
    reached
}
