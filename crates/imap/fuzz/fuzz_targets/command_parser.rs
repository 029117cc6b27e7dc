//! Arbitrary bytes through the framer and the parser; every command that
//! parses must round-trip through the encoder. The logic lives in
//! `outpost_imap::codec::fuzzing` so that `cargo test` runs it too.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    outpost_imap::codec::fuzzing::command_parser(data);
});
