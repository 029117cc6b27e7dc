//! Arbitrary client bytes through the ManageSieve command parser, framed
//! the way the server loop frames them. The checks live in
//! `check/managesieve.rs`, which `tests/proptest_managesieve.rs` also runs
//! on stable Rust.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../check/managesieve.rs"]
mod check;

fuzz_target!(|data: &[u8]| {
    check::managesieve(data);
});
