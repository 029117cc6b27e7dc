//! Arbitrary text through the config loader (`Config::parse`, what
//! `outpost check` and the server run on the config file) and the duration
//! parser. The checks live in `check/config.rs`, which
//! `tests/proptest_config.rs` also runs on stable Rust.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../check/config.rs"]
mod check;

fuzz_target!(|data: &[u8]| {
    check::config(data);
});
