//! SELECT and EXAMINE, with CONDSTORE and QRESYNC (RFC 7162).

use super::*;

impl Session {
    pub(super) async fn select(
        &mut self,
        tag: &Tag,
        mailbox: Mailbox,
        read_only: bool,
        params: SelectParams,
    ) {
        if let Some(old) = self.deselect() {
            drop(old);
            if self.qresync {
                self.send(
                    StatusResponse::ok(None, "Previous mailbox closed").with_code(Code::Closed),
                );
            }
        }
        if params.qresync.is_some() && !self.qresync {
            self.bad_cmd(Some(tag.clone()), "QRESYNC is not enabled");
            return;
        }
        if params.condstore {
            self.condstore = true;
        }
        let store = self.ctx.storage.clone();
        let mb = match store.mailbox(self.principal(), mailbox.as_str()).await {
            Ok(Some(mb)) => mb,
            Ok(None) => return self.no(tag, Some(Code::Nonexistent), "No such mailbox"),
            Err(e) => return self.send(store_err(tag, &e)),
        };
        let mut watch = store.watch(mb.id);
        watch.borrow_and_update();
        // Read the mailbox again after subscribing so no change falls between.
        let snap = match store.snapshot(mb.id).await {
            Ok(Some(s)) => s,
            Ok(None) => return self.no(tag, Some(Code::Nonexistent), "No such mailbox"),
            Err(e) => return self.send(store_err(tag, &e)),
        };
        let first_unseen = snap.first_unseen;
        let uids = snap.uids;
        let mb = snap.mailbox;
        let sel = Selected {
            id: mb.id,
            read_only,
            uidvalidity: mb.uidvalidity as u32,
            uids,
            pending_expunge: Vec::new(),
            modseq: mb.highest_modseq,
            watch,
            saved: Vec::new(),
        };
        let system = vec![
            Flag::Answered,
            Flag::Flagged,
            Flag::Deleted,
            Flag::Seen,
            Flag::Draft,
        ];
        self.send(Data::Flags(system.clone()));
        self.send(Data::Exists(sel.exists()));
        if !self.rev2 {
            self.send(Data::Recent(0));
            if let Some(i) = first_unseen {
                self.send(
                    StatusResponse::ok(None, "First unseen").with_code(Code::Unseen(i as u32 + 1)),
                );
            }
        }
        let (pflags, kw) = if read_only {
            (vec![], false)
        } else {
            (system, true)
        };
        self.send(
            StatusResponse::ok(None, "Flags permitted").with_code(Code::PermanentFlags {
                flags: pflags,
                keywords_allowed: kw,
            }),
        );
        self.send(
            StatusResponse::ok(None, "UIDs valid").with_code(Code::UidValidity(sel.uidvalidity)),
        );
        self.send(
            StatusResponse::ok(None, "Predicted next UID")
                .with_code(Code::UidNext(mb.uidnext as u32)),
        );
        self.send(
            StatusResponse::ok(None, "Highest")
                .with_code(Code::HighestModSeq(mb.highest_modseq as u64)),
        );
        self.send(StatusResponse::ok(None, "Ok").with_code(Code::MailboxId(mailbox_id(&mb))));
        if let Some(q) = params.qresync {
            if q.uid_validity == sel.uidvalidity {
                if let Err(e) = self.qresync_select(&sel, &q, mb.uidnext as u32).await {
                    return self.send(store_err(tag, &e));
                }
            }
        }
        tracing::debug!(session = self.net.id, mailbox = %mb.name, "imap: select");
        self.enter_selected(Box::new(sel));
        let code = if read_only {
            Code::ReadOnly
        } else {
            Code::ReadWrite
        };
        let verb = if read_only { "EXAMINE" } else { "SELECT" };
        self.send(
            StatusResponse::ok(Some(tag.clone()), format!("{verb} completed")).with_code(code),
        );
    }

    /// RFC 7162 3.2.5: VANISHED (EARLIER) for UIDs expunged since the
    /// client's modseq, FETCH for messages changed since.
    pub(super) async fn qresync_select(
        &mut self,
        sel: &Selected,
        q: &QResyncParams,
        uidnext: u32,
    ) -> Result<(), StorageError> {
        let changes = self
            .ctx
            .storage
            .changes_since(sel.id, q.mod_seq as i64)
            .await?;
        let last = sel.last_uid().max(1);
        let known = |u: u32| match &q.known_uids {
            Some(set) => set.contains(u, last),
            None => true,
        };
        let gone = match changes.expunged {
            Expunged::Uids(expunged) => {
                let gone: Vec<u32> = expunged
                    .iter()
                    .map(|&u| u as u32)
                    .filter(|&u| known(u) && sel.uids.binary_search(&u).is_err())
                    .collect();
                (!gone.is_empty()).then(|| SequenceSet::from_numbers(gone))
            }
            // The journal no longer reaches back to the client's modseq.
            // RFC 7162 3.2.5.2 lets a server that does not know which
            // messages were expunged report every UID the client may hold
            // that does not exist now: the known UIDs it sent, or else all
            // UIDs below UIDNEXT. The client then drops exactly those.
            Expunged::BeforeFloor => {
                let bound = match &q.known_uids {
                    Some(set) => SequenceSet::Ranges(
                        set.resolved(last)
                            .into_iter()
                            .map(|r| SeqRange::new(*r.start(), *r.end()))
                            .collect(),
                    ),
                    None => SequenceSet::range(1, uidnext.saturating_sub(1).max(1)),
                };
                absent_uids(&sel.uids, &bound, last)
            }
        };
        if let Some(uids) = gone {
            self.send(Data::Vanished {
                earlier: true,
                uids,
            });
        }
        for m in &changes.changed {
            if let Some(seq) = sel.seq_of(m.uid as u32) {
                if !known(m.uid as u32) {
                    continue;
                }
                self.send(Data::Fetch {
                    seq,
                    items: vec![
                        crate::codec::response::FetchValue::Uid(m.uid as u32),
                        crate::codec::response::FetchValue::Flags(fetch::flags_of(m)),
                        crate::codec::response::FetchValue::ModSeq(m.modseq as u64),
                    ],
                });
            }
        }
        Ok(())
    }
}

/// The UIDs named by `set` (with `*` = `last`) that are not in `present`
/// (ascending), as ranges; `None` when there are none. Works on ranges so
/// that a client claiming `1:4000000000` costs no more than the mailbox.
pub(super) fn absent_uids(present: &[u32], set: &SequenceSet, last: u32) -> Option<SequenceSet> {
    let mut out: Vec<SeqRange> = Vec::new();
    let mut push = |a: u32, b: u32| {
        if let Some(prev) = out.last_mut() {
            if let (SeqNum::Value(pa), SeqNum::Value(pb)) = (prev.start, prev.end) {
                if pb.checked_add(1) == Some(a) {
                    *prev = SeqRange::new(pa, b);
                    return;
                }
            }
        }
        out.push(SeqRange::new(a, b));
    };
    let mut ranges = set.resolved(last);
    ranges.sort_by_key(|r| *r.start());
    let mut next_free = 0u32; // everything below was already emitted
    for r in ranges {
        let (mut a, b) = ((*r.start()).max(next_free).max(1), *r.end());
        if a > b {
            continue;
        }
        let mut i = present.partition_point(|&u| u < a);
        while a <= b {
            match present.get(i) {
                Some(&u) if u <= b => {
                    if u > a {
                        push(a, u - 1);
                    }
                    a = u.saturating_add(1);
                    i += 1;
                    if u == u32::MAX {
                        break;
                    }
                }
                _ => {
                    push(a, b);
                    break;
                }
            }
        }
        next_free = b.saturating_add(1);
    }
    (!out.is_empty()).then_some(SequenceSet::Ranges(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_uid_ranges() {
        let all = SequenceSet::range(1, 10);
        let show = |s: Option<SequenceSet>| s.map(|s| s.resolved(u32::MAX));
        assert_eq!(
            show(absent_uids(&[2, 3, 7], &all, 7)),
            Some(vec![1..=1, 4..=6, 8..=10])
        );
        assert_eq!(
            show(absent_uids(&[1, 2], &SequenceSet::range(1, 2), 2)),
            None
        );
        let two = SequenceSet::Ranges(vec![SeqRange::new(5, 8), SeqRange::new(1, 3)]);
        assert_eq!(
            show(absent_uids(&[2, 6], &two, 6)),
            Some(vec![1..=1, 3..=3, 5..=5, 7..=8])
        );
        assert_eq!(
            show(absent_uids(&[], &SequenceSet::range(1, 4_000_000_000), 1)),
            Some(vec![1..=4_000_000_000])
        );
    }
}
