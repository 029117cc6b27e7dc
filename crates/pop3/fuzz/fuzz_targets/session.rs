//! Arbitrary client bytes through the POP3 line framer, command parser and
//! session machine, with a scripted backend. The checks live in
//! `check/session.rs`, which `tests/proptest_session.rs` also runs on
//! stable Rust.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../check/session.rs"]
mod check;

fuzz_target!(|data: &[u8]| {
    let _ = check::session(data);
});
