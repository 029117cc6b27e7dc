//! What the `managesieve` fuzz target checks, kept apart from libFuzzer so
//! that `tests/proptest_managesieve.rs` runs the same code on stable Rust
//! (both include this file with `#[path]`).
//!
//! The ManageSieve session is an async loop over a socket, so the target
//! drives what that loop drives: `codec::parse` over a growing buffer,
//! dropping what each answer says it used, as `serve` does for commands
//! and `continuation` does for SASL responses (which it frames as the
//! arguments of a command `X`). The input's first byte picks the limits,
//! the read size and the mode. Checked, besides "never panics":
//!
//! - bytes arriving in pieces give the same commands and errors, using
//!   the same bytes, as the whole input at once;
//! - a command or error uses at least one byte, never more than it has,
//!   and ends at a line end;
//! - the parser never waits for more input once a command is longer than
//!   a line plus a literal (`max_line + max_literal`): a client cannot make
//!   the server buffer without bound;
//! - every command that parses, written out again (quoted strings or
//!   literals), parses back to itself.

#![allow(dead_code)]

use outpost_sieve::codec::{self, Arg, Command, Parsed};
use outpost_sieve::decode_plain;

/// Limits large enough for any re-encoded command.
const BIG: usize = 1 << 24;

pub struct Setup {
    pub max_line: usize,
    pub max_literal: usize,
    pub chunk: usize,
    /// Frame as a SASL continuation response ("X " + input).
    pub sasl: bool,
}

/// Bits 0-1: max line (16, 64, 200, 8192); bits 2-3: max literal (0, 10,
/// 100, 65536); bits 4-5: bytes per read (1, 5, 64, all); bit 6: SASL
/// response framing.
pub fn setup(b: u8) -> Setup {
    Setup {
        max_line: [16, 64, 200, 8192][(b & 3) as usize],
        max_literal: [0, 10, 100, 65536][((b >> 2) & 3) as usize],
        chunk: [1, 5, 64, usize::MAX][((b >> 4) & 3) as usize],
        sasl: b & 0x40 != 0,
    }
}

/// What the server does with the next bytes. A `Bad` is compared by the
/// bytes it skips, not by its text: which complaint comes first may depend
/// on how much of the line has arrived.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    Command(Command, usize),
    Bad(usize),
    TooBig,
}

/// Parses everything complete in `buf`, dropping what each result used,
/// as the server loop does. Returns the events; `buf` keeps the rest.
/// After `TooBig` the server closes, so nothing more is parsed.
fn drain(buf: &mut Vec<u8>, s: &Setup, events: &mut Vec<Event>) -> bool {
    loop {
        let sasl_framed;
        let (framed, lim_line, lim_lit, prefix): (&[u8], _, _, _) = if s.sasl {
            let mut f = b"X ".to_vec();
            f.extend_from_slice(buf);
            sasl_framed = f;
            (&sasl_framed, s.max_line, s.max_line, 2)
        } else {
            (buf, s.max_line, s.max_literal, 0)
        };
        match codec::parse(framed, lim_line, lim_lit) {
            Parsed::Incomplete => {
                let bound = lim_line.saturating_add(lim_lit);
                assert!(
                    framed.len() <= bound,
                    "parser waits for more after {} bytes (max_line {lim_line} + max_literal {lim_lit} = {bound})",
                    framed.len()
                );
                return true;
            }
            Parsed::TooBig(_) => {
                events.push(Event::TooBig);
                return false;
            }
            Parsed::Bad(_, used) => {
                check_used(framed, used, prefix);
                buf.drain(..used - prefix);
                events.push(Event::Bad(used - prefix));
            }
            Parsed::Command(c, used) => {
                check_used(framed, used, prefix);
                assert!(
                    !c.name.is_empty() && !c.name.bytes().any(|b| b.is_ascii_lowercase()),
                    "command name {:?}",
                    c.name
                );
                round_trip(&c);
                for a in &c.args {
                    if let Some(s) = a.as_str() {
                        let _ = decode_plain(s);
                    }
                }
                buf.drain(..used - prefix);
                events.push(Event::Command(c, used - prefix));
            }
        }
    }
}

fn check_used(framed: &[u8], used: usize, prefix: usize) {
    assert!(used > prefix, "a result that uses no input");
    assert!(
        used <= framed.len(),
        "used {used} of {} bytes",
        framed.len()
    );
    assert!(
        matches!(framed[used - 1], b'\n' | b'\r'),
        "a result that does not end at a line end: {:?}",
        String::from_utf8_lossy(&framed[..used])
    );
}

/// The command as a client would write it: atoms as they are, strings
/// quoted by `codec::string` when it can, else as literals.
pub fn encode(c: &Command) -> Vec<u8> {
    let mut out = c.name.clone().into_bytes();
    for a in &c.args {
        out.push(b' ');
        match a {
            Arg::Atom(s) => out.extend_from_slice(s.as_bytes()),
            Arg::Str(b) => match std::str::from_utf8(b) {
                Ok(s) => out.extend_from_slice(codec::string(s).as_bytes()),
                Err(_) => {
                    out.extend_from_slice(format!("{{{}+}}\r\n", b.len()).as_bytes());
                    out.extend_from_slice(b);
                }
            },
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

pub fn round_trip(c: &Command) {
    let bytes = encode(c);
    match codec::parse(&bytes, BIG, BIG) {
        Parsed::Command(again, used) => {
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

/// The fuzz target's body.
pub fn managesieve(data: &[u8]) -> Vec<Event> {
    let Some((&first, input)) = data.split_first() else {
        return Vec::new();
    };
    let s = setup(first);

    let mut whole = Vec::new();
    let mut buf = input.to_vec();
    drain(&mut buf, &s, &mut whole);

    let mut pieces = Vec::new();
    let mut buf = Vec::new();
    for piece in input.chunks(s.chunk.min(input.len()).max(1)) {
        buf.extend_from_slice(piece);
        if !drain(&mut buf, &s, &mut pieces) {
            break;
        }
    }
    assert_eq!(
        pieces, whole,
        "bytes in pieces parse differently from the whole"
    );
    whole
}
