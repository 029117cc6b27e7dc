//! The body of the `command_parser` fuzz target (`fuzz/`), here so that
//! ordinary tests run it over a seed corpus and mutations on stable Rust.

use super::framing::{Frame, Framer, FramerLimits};
use super::parse::{parse_command, ParseOptions};

/// Feeds `data` through the framer and parser. The first byte picks the
/// chunk size, UTF8=ACCEPT and LITERAL-. Every command that parses must
/// survive encode → parse unchanged; anything else must not panic.
pub fn command_parser(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let utf8 = first & 1 == 1;
    let chunk = ((first as usize >> 1) & 0x3f).max(1);
    let opts = ParseOptions { utf8_accept: utf8 };
    let mut framer = Framer::new(FramerLimits {
        max_line: 1024,
        max_literal: 4096,
        max_non_sync_literal: if first & 0x80 != 0 { Some(64) } else { None },
        max_command: 8192,
    });
    for piece in rest.chunks(chunk) {
        framer.push(piece);
        loop {
            match framer.poll() {
                Ok(None) => break,
                Ok(Some(Frame::NeedContinuation { literal_size, .. })) => {
                    if literal_size > 1024 {
                        framer.reject_literal();
                    }
                }
                Ok(Some(Frame::Command(bytes))) => check_round_trip(&bytes, opts),
                Err(_) => {}
            }
        }
    }
    // The whole input as one command too, without framing.
    check_round_trip(rest, opts);
}

fn check_round_trip(bytes: &[u8], opts: ParseOptions) {
    if let Ok(cmd) = parse_command(bytes, &opts) {
        let again = cmd.to_bytes(opts.utf8_accept);
        match parse_command(&again, &opts) {
            Ok(reparsed) => assert_eq!(
                reparsed,
                cmd,
                "round trip changed {:?} (re-encoded as {:?})",
                String::from_utf8_lossy(bytes),
                String::from_utf8_lossy(&again)
            ),
            Err(e) => panic!(
                "{:?} parsed, but its encoding {:?} does not: {e}",
                String::from_utf8_lossy(bytes),
                String::from_utf8_lossy(&again)
            ),
        }
    }
}
