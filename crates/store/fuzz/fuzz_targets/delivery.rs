//! Arbitrary bytes as a delivered message: line-end normalisation and MIME
//! parsing exactly as `Store::deliver` does them, then the JSON the
//! metadata is stored as. The checks live in `check/delivery.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../check/delivery.rs"]
mod check;

fuzz_target!(|data: &[u8]| {
    check::delivery(data);
});
