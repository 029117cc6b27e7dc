//! The selected mailbox as one session sees it: the UID ↔ sequence number
//! map, the modseq up to which changes have been reported, and expunges
//! that happened elsewhere but may not be announced yet (RFC 3501 7.4.1).
//!
//! Kept small on purpose (a `Vec<u32>` of UIDs, no per-message structs):
//! an idle session in a 100,000-message INBOX holds 400 KB here, an idle
//! session in a typical one a few KB.

use tokio::sync::watch;

use crate::codec::response::{Data, FetchValue};
use crate::codec::types::SequenceSet;
use crate::fetch::flags_of;
use crate::storage::{Expunged, MailStorage, StorageResult};

pub(crate) struct Selected {
    pub id: i64,
    pub read_only: bool,
    pub uidvalidity: u32,
    /// UIDs of the messages in sequence order (ascending).
    pub uids: Vec<u32>,
    /// UIDs removed by other sessions, still in `uids` until reported.
    pub pending_expunge: Vec<u32>,
    /// Changes up to this modseq have been reported.
    pub modseq: i64,
    /// Woken by the store after each commit that changes this mailbox.
    pub watch: watch::Receiver<i64>,
    /// `SEARCH RETURN (SAVE)` result as UIDs (RFC 5182 `$`).
    pub saved: Vec<u32>,
}

/// What to say about changes found by [`Selected::sync`].
#[derive(Clone, Copy)]
pub(crate) struct SyncMode {
    /// EXPUNGE/VANISHED may be sent now.
    pub expunge: bool,
    pub condstore: bool,
    pub qresync: bool,
}

impl Selected {
    pub fn exists(&self) -> u32 {
        self.uids.len() as u32
    }

    pub fn last_uid(&self) -> u32 {
        self.uids.last().copied().unwrap_or(0)
    }

    pub fn seq_of(&self, uid: u32) -> Option<u32> {
        self.uids.binary_search(&uid).ok().map(|i| i as u32 + 1)
    }

    /// Indices into `uids` (ascending, no duplicates) that a sequence set
    /// names; numbers that do not exist are ignored.
    pub fn resolve(&self, set: &SequenceSet, uid: bool) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        match set {
            SequenceSet::Saved => {
                for u in &self.saved {
                    if let Ok(i) = self.uids.binary_search(u) {
                        out.push(i);
                    }
                }
            }
            SequenceSet::Ranges(_) if uid => {
                for r in set.resolved(self.last_uid()) {
                    let a = self.uids.partition_point(|&u| u < *r.start());
                    let b = self.uids.partition_point(|&u| u <= *r.end());
                    out.extend(a..b);
                }
            }
            SequenceSet::Ranges(_) => {
                let n = self.uids.len() as u32;
                for r in set.resolved(n) {
                    let a = (*r.start()).max(1);
                    let b = (*r.end()).min(n);
                    if a <= b {
                        out.extend((a as usize - 1)..(b as usize));
                    }
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// False when a message sequence set names a number beyond EXISTS
    /// (RFC 3501 9, seq-number: the server answers BAD). Ranges that use
    /// `*` are valid, except in an empty mailbox ("This includes "*" if the
    /// selected mailbox is empty").
    pub fn seqset_valid(&self, set: &SequenceSet) -> bool {
        use crate::codec::types::SeqNum;
        let n = self.exists();
        match set {
            SequenceSet::Saved => true,
            SequenceSet::Ranges(_) if n == 0 => false,
            SequenceSet::Ranges(r) => r.iter().all(|r| match (r.start, r.end) {
                (SeqNum::Value(a), SeqNum::Value(b)) => a <= n && b <= n,
                _ => true,
            }),
        }
    }

    /// Whether some other session may have changed the mailbox since the
    /// last sync (or expunges are waiting to be reported).
    pub fn maybe_changed(&self, mode: SyncMode) -> bool {
        self.watch.has_changed().unwrap_or(false)
            || (mode.expunge && !self.pending_expunge.is_empty())
    }

    /// Reads the change journal since the last report and appends the
    /// untagged responses to `out`: EXPUNGE (or VANISHED) when allowed,
    /// EXISTS for new messages, FETCH for changed flags.
    pub async fn sync(
        &mut self,
        storage: &dyn MailStorage,
        mode: SyncMode,
        out: &mut Vec<Data>,
    ) -> StorageResult<()> {
        if !self.maybe_changed(mode) {
            return Ok(());
        }
        let announced = *self.watch.borrow_and_update();
        let (changed, expunged) = if announced == i64::MAX {
            // The mailbox was deleted under us; nothing more will come.
            (Vec::new(), Vec::new())
        } else {
            let c = storage.changes_since(self.id, self.modseq).await?;
            let expunged = match c.expunged {
                Expunged::Uids(u) => u,
                // The journal no longer reaches back to what this session
                // reported: whatever it shows that is gone now was expunged.
                Expunged::BeforeFloor => match storage.snapshot(self.id).await? {
                    Some(snap) => self
                        .uids
                        .iter()
                        .filter(|u| snap.uids.binary_search(u).is_err())
                        .map(|&u| u as i64)
                        .collect(),
                    None => Vec::new(),
                },
            };
            (c.changed, expunged)
        };
        let mut cursor = self.modseq;
        if announced != i64::MAX {
            cursor = cursor.max(announced);
        }
        for m in &changed {
            cursor = cursor.max(m.modseq);
        }
        for u in expunged {
            let u = u as u32;
            if self.uids.binary_search(&u).is_ok() && !self.pending_expunge.contains(&u) {
                self.pending_expunge.push(u);
            }
        }
        if mode.expunge && !self.pending_expunge.is_empty() {
            let mut gone = std::mem::take(&mut self.pending_expunge);
            gone.sort_unstable();
            if mode.qresync {
                self.uids.retain(|u| gone.binary_search(u).is_err());
                out.push(Data::Vanished {
                    earlier: false,
                    uids: SequenceSet::from_numbers(gone.iter().copied()),
                });
            } else {
                // Highest first, so each number is valid when it is read.
                for u in gone.iter().rev() {
                    if let Ok(i) = self.uids.binary_search(u) {
                        self.uids.remove(i);
                        out.push(Data::Expunge(i as u32 + 1));
                    }
                }
            }
        }
        let before = self.uids.len();
        let mut updates = Vec::new();
        for m in &changed {
            let u = m.uid as u32;
            if u > self.last_uid() {
                self.uids.push(u);
            } else if let Some(seq) = self.seq_of(u) {
                let mut items = vec![FetchValue::Uid(u), FetchValue::Flags(flags_of(m))];
                if mode.condstore {
                    items.push(FetchValue::ModSeq(m.modseq as u64));
                }
                updates.push(Data::Fetch { seq, items });
            }
        }
        if self.uids.len() != before {
            out.push(Data::Exists(self.uids.len() as u32));
        }
        out.extend(updates);
        self.modseq = cursor;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::types::{SeqNum, SeqRange};

    fn sel(uids: &[u32]) -> Selected {
        Selected {
            id: 1,
            read_only: false,
            uidvalidity: 1,
            uids: uids.to_vec(),
            pending_expunge: vec![],
            modseq: 0,
            watch: tokio::sync::watch::channel(0).1,
            saved: vec![7],
        }
    }

    #[test]
    fn resolve_sets() {
        let s = sel(&[3, 5, 7, 20]);
        let star = |a| {
            SequenceSet::Ranges(vec![SeqRange {
                start: SeqNum::Value(a),
                end: SeqNum::Last,
            }])
        };
        assert_eq!(s.resolve(&star(2), false), vec![1, 2, 3]);
        assert_eq!(s.resolve(&star(6), true), vec![2, 3]);
        // n:* with n above the highest UID still names the last message.
        assert_eq!(s.resolve(&star(100), true), vec![3]);
        assert_eq!(s.resolve(&SequenceSet::range(4, 9), false), vec![3]);
        assert_eq!(
            s.resolve(&SequenceSet::from_numbers([4, 5, 6]), true),
            vec![1]
        );
        assert_eq!(s.resolve(&SequenceSet::Saved, true), vec![2]);
        assert_eq!(s.seq_of(20), Some(4));
        assert_eq!(s.seq_of(4), None);
        assert!(sel(&[]).resolve(&star(1), true).is_empty());
    }
}
