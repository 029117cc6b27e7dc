//! A fuzz target's committed seed corpus, read by its proptest twin.

use std::path::{Path, PathBuf};

/// Every file in `dir`, sorted by name (so failures name the same seed on
/// every machine). Panics when the directory cannot be read or holds fewer
/// than `min` files: a missing corpus must fail the test, not pass it
/// vacuously.
pub fn all(dir: &Path, min: usize) -> Vec<Vec<u8>> {
    named(dir, min)
        .into_iter()
        .map(|(_, bytes)| bytes)
        .collect()
}

/// Like [`all`], with each seed's file name.
pub fn named(dir: &Path, min: usize) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .path();
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, bytes)
        })
        .collect();
    out.sort();
    assert!(
        out.len() >= min,
        "seed corpus missing in {}: {} file(s), want at least {min}",
        dir.display(),
        out.len()
    );
    out.into_iter()
        .map(|(p, b)| (p.file_name().unwrap().to_string_lossy().into_owned(), b))
        .collect()
}

/// Runs `check` on every seed of `dir` (at least `min` of them) once per
/// mode: fuzz targets read their first byte as a mode (role, feeding
/// pattern, ...), so each seed is tried with its first byte set to
/// `mode | (first & keep)` for every `mode`, keeping the bits `keep` selects.
pub fn in_every_mode(
    dir: &Path,
    min: usize,
    modes: impl IntoIterator<Item = u8> + Clone,
    keep: u8,
    mut check: impl FnMut(&[u8]),
) {
    for seed in all(dir, min) {
        for mode in modes.clone() {
            let mut data = seed.clone();
            if let Some(first) = data.first_mut() {
                *first = mode | (*first & keep);
            }
            check(&data);
        }
    }
}

/// Applies generated edits to a seed, never touching its first byte (the
/// fuzz target's mode): each edit `(at, byte, kind)` inserts `byte`
/// (kind 0), removes (kind 1) or overwrites (any other kind) at position
/// `1 + at % len`. Edits that fall off the end are skipped.
pub fn mutate(data: &mut Vec<u8>, edits: &[(usize, u8, u8)]) {
    for &(at, byte, kind) in edits {
        if data.is_empty() {
            return;
        }
        let i = 1 + at % data.len();
        match kind {
            0 => data.insert(i.min(data.len()), byte),
            1 if i < data.len() => {
                data.remove(i);
            }
            _ if i < data.len() => data[i] = byte,
            _ => {}
        }
    }
}

/// One seed by name.
pub fn one(dir: &Path, name: &str) -> Vec<u8> {
    let p = dir.join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sorted_and_insists_on_a_corpus() {
        let dir =
            std::env::temp_dir().join(format!("outpost-testkit-seeds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("b"), b"2").unwrap();
        std::fs::write(dir.join("a"), b"1").unwrap();
        assert_eq!(all(&dir, 2), vec![b"1".to_vec(), b"2".to_vec()]);
        assert_eq!(named(&dir, 1)[1].0, "b");
        assert_eq!(one(&dir, "b"), b"2");
        let mut seen = Vec::new();
        in_every_mode(&dir, 2, [0x10, 0x20], 0x0f, |d| seen.push(d[0]));
        assert_eq!(seen, [0x11, 0x21, 0x12, 0x22]);
        let mut d = b"mabc".to_vec();
        mutate(
            &mut d,
            &[(0, b'X', 0), (0, 0, 1), (1, b'Y', 2), (3, b'Z', 2)],
        );
        assert_eq!(d, b"maYc");
        let short = std::panic::catch_unwind(|| all(&dir, 3));
        assert!(short.is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
