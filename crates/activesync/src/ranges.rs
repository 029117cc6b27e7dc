//! A set of item numbers kept as sorted, disjoint, non-adjacent ranges:
//! the items a device has, which after an initial sync is one or a few
//! runs of UIDs, so the state stays small for a large folder.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Ranges(Vec<(i64, i64)>);

impl Ranges {
    pub fn new() -> Ranges {
        Ranges::default()
    }

    /// The index of the first range whose end is at or above `n`.
    fn find(&self, n: i64) -> usize {
        self.0.partition_point(|&(_, hi)| hi < n)
    }

    pub fn contains(&self, n: i64) -> bool {
        let i = self.find(n);
        i < self.0.len() && self.0[i].0 <= n
    }

    pub fn insert(&mut self, n: i64) {
        let i = self.find(n);
        if i < self.0.len() && self.0[i].0 <= n {
            return;
        }
        let joins_prev = i > 0 && self.0[i - 1].1 + 1 == n;
        let joins_next = i < self.0.len() && self.0[i].0 - 1 == n;
        match (joins_prev, joins_next) {
            (true, true) => {
                self.0[i - 1].1 = self.0[i].1;
                self.0.remove(i);
            }
            (true, false) => self.0[i - 1].1 = n,
            (false, true) => self.0[i].0 = n,
            (false, false) => self.0.insert(i, (n, n)),
        }
    }

    pub fn remove(&mut self, n: i64) {
        let i = self.find(n);
        if i >= self.0.len() || self.0[i].0 > n {
            return;
        }
        let (lo, hi) = self.0[i];
        match (lo == n, hi == n) {
            (true, true) => {
                self.0.remove(i);
            }
            (true, false) => self.0[i].0 = n + 1,
            (false, true) => self.0[i].1 = n - 1,
            (false, false) => {
                self.0[i].1 = n - 1;
                self.0.insert(i + 1, (n + 1, hi));
            }
        }
    }

    /// How many numbers the set holds.
    pub fn len(&self) -> i64 {
        self.0.iter().map(|(lo, hi)| hi - lo + 1).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every number, in order.
    pub fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        self.0.iter().flat_map(|&(lo, hi)| lo..=hi)
    }

    /// How many numbers are below `n`.
    pub fn count_below(&self, n: i64) -> i64 {
        self.0
            .iter()
            .take_while(|(lo, _)| *lo < n)
            .map(|&(lo, hi)| hi.min(n - 1) - lo + 1)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn joins_and_splits() {
        let mut r = Ranges::new();
        for n in [5, 3, 4, 10, 9, 1] {
            r.insert(n);
        }
        assert_eq!(r.0, vec![(1, 1), (3, 5), (9, 10)]);
        r.insert(2);
        assert_eq!(r.0, vec![(1, 5), (9, 10)]);
        r.remove(3);
        assert_eq!(r.0, vec![(1, 2), (4, 5), (9, 10)]);
        r.remove(1);
        r.remove(10);
        r.remove(7);
        assert_eq!(r.0, vec![(2, 2), (4, 5), (9, 9)]);
        assert_eq!(r.len(), 4);
        assert_eq!(r.count_below(5), 2);
        assert!(r.contains(4) && !r.contains(3));
    }

    proptest! {
        #[test]
        fn behaves_like_a_set(ops in proptest::collection::vec((any::<bool>(), 0i64..60), 0..200)) {
            let mut r = Ranges::new();
            let mut s = BTreeSet::new();
            for (add, n) in ops {
                if add { r.insert(n); s.insert(n); } else { r.remove(n); s.remove(&n); }
                let got: Vec<i64> = r.iter().collect();
                let want: Vec<i64> = s.iter().copied().collect();
                prop_assert_eq!(got, want);
                for w in r.0.windows(2) {
                    prop_assert!(w[0].1 + 1 < w[1].0);
                }
                prop_assert_eq!(r.count_below(30), s.range(..30).count() as i64);
            }
        }
    }
}
