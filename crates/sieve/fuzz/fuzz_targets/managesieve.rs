//! Arbitrary client bytes through the ManageSieve codec and session,
//! driven the way the server loop drives them, with a scripted directory,
//! compiler and script store. The checks live in `check/managesieve.rs`,
//! which `tests/proptest_managesieve.rs` also runs on stable Rust.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../check/managesieve.rs"]
mod check;

fuzz_target!(|data: &[u8]| {
    check::managesieve(data);
});
