//! The fuzz target's checks (`fuzz/check/request.rs`) on stable Rust:
//! the seed requests, and generated mutations of them.

#[path = "../fuzz/check/request.rs"]
mod check;

use proptest::prelude::*;

fn seeds() -> Vec<Vec<u8>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/seeds/request");
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .expect("seed directory")
        .map(|e| std::fs::read(e.expect("entry").path()).expect("seed"))
        .collect();
    out.sort();
    out
}

#[test]
fn seeds_hold() {
    let s = seeds();
    assert!(s.len() >= 5);
    for seed in s {
        check::request(&seed);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn mutated_seeds_hold(which in 0usize..64, at in 0usize..4096, len in 0usize..64, junk in proptest::collection::vec(any::<u8>(), 0..64)) {
        let s = seeds();
        let mut data = s[which % s.len()].clone();
        let at = at.min(data.len());
        let end = (at + len).min(data.len());
        data.splice(at..end, junk);
        check::request(&data);
    }

    #[test]
    fn any_bytes_hold(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        check::request(&data);
    }
}
