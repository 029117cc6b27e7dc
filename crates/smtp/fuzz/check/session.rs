//! What the `session` fuzz target checks, kept apart from libFuzzer so that
//! `tests/proptest_session.rs` runs the same code on stable Rust (both
//! include this file with `#[path]`).
//!
//! The input's first byte sets up the session (role, TLS, limits, how the
//! bytes arrive); the rest is what the client sends. A scripted backend
//! answers every effect. Checked, besides "never panics":
//!
//! - every reply is well formed: CRLF-terminated lines of at most 512
//!   octets, a 2xx-5xx code, continuation lines carrying the same code, and
//!   smtp-proto's client-side parser reads each reply back with its code
//!   (EHLO replies with the EHLO parser);
//! - fed one byte at a time, a command line gets exactly one reply, sent
//!   when its LF arrives and not before (RFC 5321 §4.2, RFC 2920); message
//!   content gets no reply until it ends, then exactly one (LMTP: one or
//!   more, one per recipient, RFC 2033 §4.2);
//! - once the session closes it ignores input, and a timeout gives a 421.

#![allow(dead_code)]

use std::time::Duration;

use outpost_smtp::session::{Answer, Delivery, Effect, Machine, SessionConfig, Step};
use outpost_smtp::{AuthUser, DeliverError, LoginOutcome, Rcpt, Role, SmtpLimits, TempFail};
use smtp_proto::response::parser::ResponseReceiver;

/// The session and feeding mode the first input byte selects.
pub struct Setup {
    pub cfg: SessionConfig,
    /// `None`: one byte at a time (the strict reply-count checks);
    /// `Some(n)`: `n` bytes at a time.
    pub chunk: Option<usize>,
}

/// Bits 0-1: role (Mx, Submission, Lmtp, Mx); bit 2: a TLS certificate is
/// configured; bit 3: the connection is already TLS; bit 4: plaintext AUTH
/// allowed; bit 5: small limits; bit 6-7: 0 or 1 byte-wise, 2 in chunks of
/// 13 bytes, 3 all at once.
pub fn setup(b: u8) -> Setup {
    let role = match b & 3 {
        1 => Role::Submission,
        2 => Role::Lmtp,
        _ => Role::Mx,
    };
    let limits = if b & 0x20 != 0 {
        SmtpLimits {
            message_size: 300,
            max_recipients: 3,
            max_line_length: 80,
            max_data_line_length: 100,
            max_errors: 6,
            max_auth_failures: 2,
            ..SmtpLimits::default()
        }
    } else {
        SmtpLimits {
            message_size: 64 * 1024,
            ..SmtpLimits::default()
        }
    };
    let cfg = SessionConfig {
        role,
        hostname: "mx.example.org".into(),
        limits,
        session_id: 7,
        peer_ip: "192.0.2.1".parse().unwrap(),
        tls_available: b & 0x04 != 0,
        tls: (b & 0x08 != 0).then(|| "TLSv1.3 FUZZ".to_string()),
        plaintext_auth_allowed: b & 0x10 != 0,
    };
    let chunk = match b >> 6 {
        0 | 1 => None,
        2 => Some(13),
        _ => Some(usize::MAX),
    };
    Setup { cfg, chunk }
}

/// The scripted backend. Addresses and logins pick the answer, so that a
/// fuzzer (or a seed) can reach every branch.
#[derive(Default)]
pub struct Fake {
    pub delivered: Vec<Delivery>,
    effects: usize,
}

impl Fake {
    pub fn carry_out(&mut self, e: Effect) -> Answer {
        self.effects += 1;
        match e {
            Effect::StartTls => Answer::TlsStarted {
                description: "TLSv1.3 FUZZ".into(),
            },
            Effect::Authenticate { login, password } => {
                assert!(!login.is_empty(), "Authenticate with an empty login");
                match login.as_str() {
                    "blocked" => Answer::Auth(LoginOutcome::Blocked),
                    "tempfail" => {
                        Answer::Auth(LoginOutcome::Unavailable(TempFail("directory down".into())))
                    }
                    _ if password.0 == "secret" => Answer::Auth(LoginOutcome::Success(AuthUser {
                        principal_id: 1,
                        login,
                        quota_bytes: 0,
                    })),
                    _ => Answer::Auth(LoginOutcome::Failed),
                }
            }
            Effect::MaySendAs { address, .. } => {
                Answer::MaySendAs(if address.contains("tempfail") {
                    Err(TempFail("directory down".into()))
                } else {
                    Ok(!address.contains("other"))
                })
            }
            Effect::ResolveRecipient { address } => {
                assert!(
                    !address.is_empty(),
                    "ResolveRecipient with an empty address"
                );
                Answer::Recipient(if address.starts_with("tempfail") {
                    Err(TempFail("directory down".into()))
                } else if address.starts_with("unknown") {
                    Ok(Rcpt::UnknownLocal)
                } else if address.ends_with(".test") {
                    Ok(Rcpt::Remote)
                } else {
                    Ok(Rcpt::Local)
                })
            }
            Effect::Deliver(d) => {
                assert!(
                    d.message.starts_with(b"Received: "),
                    "delivered message does not start with our Received: header"
                );
                let local = d
                    .local
                    .as_ref()
                    .map(|env| {
                        env.recipients
                            .iter()
                            .map(|r| deliver_result(&r.address))
                            .collect()
                    })
                    .unwrap_or_default();
                let remote = d.remote.as_ref().map(|_| Ok(()));
                assert!(
                    d.local.is_some() || d.remote.is_some(),
                    "delivery without recipients"
                );
                self.delivered.push(*d);
                Answer::Delivered { local, remote }
            }
        }
    }
}

fn deliver_result(address: &str) -> Result<(), DeliverError> {
    let why = String::from("fuzz");
    if address.contains("full") {
        Err(DeliverError::MailboxFull(why))
    } else if address.contains("temp") {
        Err(DeliverError::Temporary(why))
    } else if address.contains("perm") {
        Err(DeliverError::Permanent(why))
    } else if address.contains("policy") {
        Err(DeliverError::Policy("refused by policy".into()))
    } else if address.contains("disk") {
        Err(DeliverError::StorageFull(why))
    } else {
        Ok(())
    }
}

/// Runs the machine until it wants input or closes; returns the output
/// produced meanwhile and whether it closed.
pub fn drive(m: &mut Machine, fake: &mut Fake) -> (Vec<u8>, bool) {
    for _ in 0..100_000 {
        match m.poll() {
            Step::NeedInput => return (m.take_output(), false),
            Step::Close => return (m.take_output(), true),
            Step::Effect(e) => {
                let a = fake.carry_out(e);
                m.answer(a);
            }
        }
    }
    panic!("the machine keeps asking for effects without reading input");
}

/// Checks that `out` is a sequence of whole, well-formed replies and returns
/// the code of each (one per reply, multi-line replies counted once).
pub fn replies(out: &[u8]) -> Vec<u16> {
    if out.is_empty() {
        return Vec::new();
    }
    assert!(
        out.ends_with(b"\r\n"),
        "output does not end with CRLF: {:?}",
        String::from_utf8_lossy(out)
    );
    let mut codes = Vec::new();
    let mut open: Option<u16> = None; // code of an unfinished multi-line reply
    for line in out.split_inclusive(|&b| b == b'\n') {
        let line = line
            .strip_suffix(b"\r\n")
            .unwrap_or_else(|| panic!("bare LF in output: {:?}", String::from_utf8_lossy(out)));
        let shown = String::from_utf8_lossy(line);
        assert!(!line.contains(&b'\r'), "bare CR in reply line {shown:?}");
        assert!(
            line.len() + 2 <= 512,
            "reply line longer than 512 octets: {shown:?}"
        );
        assert!(
            line.len() >= 4 && line[..3].iter().all(u8::is_ascii_digit),
            "reply line without a code: {shown:?}"
        );
        let code: u16 = std::str::from_utf8(&line[..3]).unwrap().parse().unwrap();
        assert!(
            (200..600).contains(&code),
            "reply code out of range: {shown:?}"
        );
        if let Some(c) = open {
            assert_eq!(c, code, "multi-line reply changes its code: {shown:?}");
        }
        match line[3] {
            b'-' => open = Some(code),
            b' ' => {
                open = None;
                codes.push(code);
            }
            _ => panic!("reply line without ' ' or '-' after the code: {shown:?}"),
        }
    }
    assert!(
        open.is_none(),
        "unfinished multi-line reply: {:?}",
        String::from_utf8_lossy(out)
    );
    // A client reads the same replies back.
    let mut it = out.iter();
    for &code in &codes {
        let before = it.as_slice();
        let mut rx = ResponseReceiver::default();
        let r = rx.parse(&mut it).unwrap_or_else(|e| {
            panic!(
                "smtp-proto cannot read reply {:?}: {e:?}",
                String::from_utf8_lossy(before)
            )
        });
        assert_eq!(r.code, code, "client parser reads another code");
        let used = before.len() - it.as_slice().len();
        let reply = &before[..used];
        if code == 250 && reply.starts_with(b"250-") && contains(reply, b" Hello ") {
            smtp_proto::EhloResponse::parse(&mut reply.iter()).unwrap_or_else(|e| {
                panic!(
                    "EHLO reply does not parse: {e:?} {:?}",
                    String::from_utf8_lossy(reply)
                )
            });
        }
    }
    assert!(it.as_slice().is_empty(), "bytes left after the last reply");
    codes
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The fuzz target's body.
pub fn session(data: &[u8]) {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    let s = setup(first);
    let lmtp = s.cfg.role == Role::Lmtp;
    let mut m = Machine::new(s.cfg);
    let mut fake = Fake::default();
    m.greeting();
    let (greeting, closed) = drive(&mut m, &mut fake);
    assert_eq!(replies(&greeting), [220]);
    assert!(!closed);
    let mut closed = false;
    match s.chunk {
        None => {
            for &b in input {
                let was_in_message = m.in_message();
                m.feed(&[b]);
                let (out, now_closed) = drive(&mut m, &mut fake);
                let codes = replies(&out);
                let n = codes.len();
                if now_closed {
                    assert!(n >= 1, "closed without a reply");
                    closed = true;
                    break;
                }
                match (was_in_message, m.in_message()) {
                    (false, false) if b == b'\n' => {
                        if lmtp {
                            assert!(n >= 1, "command line without a reply");
                        } else {
                            assert_eq!(n, 1, "command line must get one reply: {codes:?}");
                        }
                    }
                    (false, false) => assert_eq!(n, 0, "reply before the end of the line"),
                    (false, true) => {
                        assert_eq!(b, b'\n', "message started inside a command line");
                        assert!(
                            codes.is_empty() || codes == [354],
                            "DATA/BDAT answered with {codes:?}"
                        );
                    }
                    (true, true) => assert_eq!(n, 0, "reply in the middle of message content"),
                    (true, false) => {
                        if lmtp {
                            assert!(n >= 1, "message end without a reply");
                        } else {
                            assert_eq!(n, 1, "message end must get one reply: {codes:?}");
                        }
                    }
                }
            }
        }
        Some(size) => {
            for piece in input.chunks(size.min(input.len()).max(1)) {
                m.feed(piece);
                let (out, now_closed) = drive(&mut m, &mut fake);
                replies(&out);
                if now_closed {
                    closed = true;
                    break;
                }
            }
        }
    }
    if closed {
        // Closed means closed: more input is ignored.
        m.feed(b"NOOP\r\n");
        let (out, still_closed) = drive(&mut m, &mut fake);
        assert!(out.is_empty(), "output after close");
        assert!(still_closed, "session reopened");
    } else {
        m.timed_out();
        let (out, closed) = drive(&mut m, &mut fake);
        assert_eq!(replies(&out), [421]);
        assert!(closed, "a timeout must end the session");
        assert!(m.read_timeout() >= Duration::from_secs(1));
    }
}
