//! DAV request bodies through the safe XML reader and every request
//! parser, and iCalendar/vCard through the content module. The checks live
//! in `check/request.rs`, which `tests/proptest_request.rs` also runs on
//! stable Rust.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../check/request.rs"]
mod check;

fuzz_target!(|data: &[u8]| {
    check::request(data);
});
