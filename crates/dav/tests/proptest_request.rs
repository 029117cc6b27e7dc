//! Stable-toolchain twin of the `request` fuzz target (`fuzz/`): the same
//! checks (`fuzz/check/request.rs`) over the committed seeds and mutations
//! of them.

#[path = "../fuzz/check/request.rs"]
mod check;

use proptest::prelude::*;

fn seeds() -> Vec<Vec<u8>> {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/request");
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    v.sort();
    assert!(v.len() >= 8, "seeds missing in {}", dir.display());
    v
}

#[test]
fn seeds_pass() {
    for s in seeds() {
        check::request(&s);
    }
}

proptest! {
    #[test]
    fn mutated_seeds_pass(pick in 0usize..8, at in any::<prop::sample::Index>(), bytes in proptest::collection::vec(any::<u8>(), 0..16), cut in any::<prop::sample::Index>()) {
        let seeds = seeds();
        let mut s = seeds[pick % seeds.len()].clone();
        let i = at.index(s.len().max(1)).min(s.len());
        s.splice(i..i, bytes);
        let c = cut.index(s.len().max(1)).max(1);
        s.truncate(c.max(s.len() / 2));
        check::request(&s);
    }

    #[test]
    fn arbitrary_bytes_pass(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        check::request(&data);
    }
}
