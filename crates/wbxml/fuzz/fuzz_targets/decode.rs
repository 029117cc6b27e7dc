//! Arbitrary bytes through the WBXML decoder, and every document it
//! accepts through the encoder, the decoder again and the XML form. The
//! checks live in `check/decode.rs`, which `tests/proptest_decode.rs`
//! also runs on stable Rust.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../check/decode.rs"]
mod check;

fuzz_target!(|data: &[u8]| {
    let _ = check::decode(data);
});
