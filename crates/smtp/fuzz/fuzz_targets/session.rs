//! Arbitrary client bytes through the SMTP/LMTP session machine, with a
//! scripted backend answering its effects. The checks live in
//! `check/session.rs`, which `tests/proptest_session.rs` also runs on
//! stable Rust.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../check/session.rs"]
mod check;

fuzz_target!(|data: &[u8]| {
    check::session(data);
});
