//! Arbitrary client bytes through the IMAP connection driver (framer,
//! parser, session) over the in-memory storage. The checks live in
//! `check/session.rs`, which `tests/proptest_session.rs` also runs on
//! stable Rust.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../check/session.rs"]
mod check;

fuzz_target!(|data: &[u8]| {
    let _ = check::session(data);
});
