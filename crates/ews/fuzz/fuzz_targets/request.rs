//! EWS request bodies through the SOAP envelope reader, the restriction
//! reader and the id decoder. The checks live in `check/request.rs`, which
//! `tests/proptest_request.rs` also runs on stable Rust.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../check/request.rs"]
mod check;

fuzz_target!(|data: &[u8]| {
    check::request(data);
});
