//! The `session` fuzz target's checks (`fuzz/check/session.rs`) on stable
//! Rust: every committed seed as it is, then mutated seeds.

use proptest::prelude::*;

#[path = "../fuzz/check/session.rs"]
mod check;

fn seeds() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/session");
    let mut v: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .expect("fuzz/seeds/session")
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no seeds in {}", dir.display());
    v
}

#[test]
fn seeds_pass() {
    for s in seeds() {
        let o = check::session(&s);
        let shown = String::from_utf8_lossy(&s[1..s.len().min(40)]).into_owned();
        assert!(
            o.authenticated && o.tagged_ok >= 4,
            "seed {shown:?} got only {o:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(300)
    ))]

    #[test]
    fn mutated_seeds(
        seed in any::<prop::sample::Index>(),
        setup in any::<u8>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..8),
    ) {
        let seeds = seeds();
        let mut data = seeds[seed.index(seeds.len())].clone();
        data[0] = setup;
        for (at, b, kind) in edits {
            let i = 1 + at.index(data.len());
            match kind {
                0 if i < data.len() => data[i] = b,
                1 if i < data.len() => { data.remove(i); }
                _ => data.insert(i.min(data.len()), b),
            }
        }
        let _ = check::session(&data);
    }
}
