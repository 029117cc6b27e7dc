//! Arbitrary bytes through the framer and the parser; every command that
//! parses must round-trip through the encoder. The logic lives in
//! `outpost_imap::codec::fuzzing` so that `cargo test` runs it too.
//!
//! Also checked here (fuzzing only): the framer never holds more than one
//! command (at most `max_command`, literals included) plus a line, whatever
//! the client sends, so a client cannot make the server buffer without
//! bound.

#![no_main]

use libfuzzer_sys::fuzz_target;
use outpost_imap::codec::framing::{Frame, Framer, FramerLimits};

fuzz_target!(|data: &[u8]| {
    outpost_imap::codec::fuzzing::command_parser(data);
    framer_memory_is_bounded(data);
});

fn framer_memory_is_bounded(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let limits = FramerLimits {
        max_line: 256,
        max_literal: 1024,
        max_non_sync_literal: (first & 1 != 0).then_some(64),
        max_command: 2048,
    };
    let bound = 2048 + 256 + 64;
    let mut framer = Framer::new(limits);
    let chunk = ((first as usize >> 2) & 0x3f).max(1);
    for piece in rest.chunks(chunk) {
        framer.push(piece);
        loop {
            match framer.poll() {
                Ok(None) => {
                    assert!(
                        framer.buffered() <= bound,
                        "framer holds {} bytes waiting for more (limits {limits:?})",
                        framer.buffered()
                    );
                    break;
                }
                Ok(Some(Frame::NeedContinuation { .. })) if first & 2 != 0 => {
                    framer.reject_literal()
                }
                Ok(Some(_)) | Err(_) => {}
            }
        }
    }
}
