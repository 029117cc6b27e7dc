//! STORE, EXPUNGE, COPY and MOVE.

use super::*;

impl Session {
    /// Removes `gone` (ascending UIDs) from the view and reports them.
    pub(super) fn report_expunged(&mut self, sel: &mut Selected, gone: &[u32]) {
        sel.pending_expunge
            .retain(|u| gone.binary_search(u).is_err());
        if self.qresync {
            sel.uids.retain(|u| gone.binary_search(u).is_err());
            if !gone.is_empty() {
                let d = Data::Vanished {
                    earlier: false,
                    uids: SequenceSet::from_numbers(gone.iter().copied()),
                };
                self.send(d);
            }
            return;
        }
        let mut seqs = Vec::new();
        for u in gone.iter().rev() {
            if let Ok(i) = sel.uids.binary_search(u) {
                sel.uids.remove(i);
                seqs.push(i as u32 + 1);
            }
        }
        for s in seqs {
            self.send(Data::Expunge(s));
        }
    }

    pub(super) async fn expunge(
        &mut self,
        sel: &mut Selected,
        tag: &Tag,
        set: Option<SequenceSet>,
    ) {
        if sel.read_only {
            return self.no(tag, Some(Code::Cannot), "Mailbox is read-only");
        }
        let uids = set.map(|s| {
            sel.resolve(&s, true)
                .into_iter()
                .map(|i| sel.uids[i] as i64)
                .collect::<Vec<_>>()
        });
        let id = sel.id;
        match self.ctx.storage.expunge(id, uids).await {
            Ok(gone) => {
                let gone: Vec<u32> = gone.into_iter().map(|u| u as u32).collect();
                self.report_expunged(sel, &gone);
                self.ok(tag, "EXPUNGE completed");
            }
            Err(e) => self.send(store_err(tag, &e)),
        }
    }

    pub(super) async fn store(&mut self, sel: &mut Selected, tag: &Tag, s: StoreCommand) {
        if sel.read_only {
            return self.no(tag, Some(Code::Cannot), "Mailbox is read-only");
        }
        let idx = sel.resolve(&s.set, s.uid);
        let uids: Vec<i64> = idx.iter().map(|&i| sel.uids[i] as i64).collect();
        let id = sel.id;
        let (bits, kw) = flag_bits(&s.flags);
        let op = match s.kind {
            StoreKind::Add => FlagOp::Add,
            StoreKind::Remove => FlagOp::Remove,
            StoreKind::Replace => FlagOp::Replace,
        };
        if s.unchanged_since.is_some() {
            self.condstore = true;
        }
        let res = match self
            .ctx
            .storage
            .store_flags(
                id,
                uids,
                FlagChange {
                    op,
                    flags: bits,
                    keywords: kw,
                    unchanged_since: s.unchanged_since.map(|v| v as i64),
                },
            )
            .await
        {
            Ok(r) => r,
            Err(e) => return self.send(store_err(tag, &e)),
        };
        if res.modseq == sel.modseq + 1 {
            // Nobody else changed the mailbox in between: our own change
            // need not come back as an update.
            sel.modseq = res.modseq;
        }
        if !s.silent || s.unchanged_since.is_some() {
            let mut out = Vec::new();
            for m in &res.changed {
                let Some(seq) = sel.seq_of(m.uid as u32) else {
                    continue;
                };
                let mut items = Vec::new();
                if s.uid || self.condstore {
                    items.push(crate::codec::response::FetchValue::Uid(m.uid as u32));
                }
                if !s.silent {
                    items.push(crate::codec::response::FetchValue::Flags(fetch::flags_of(
                        m,
                    )));
                }
                if self.condstore {
                    items.push(crate::codec::response::FetchValue::ModSeq(m.modseq as u64));
                }
                if !items.is_empty() {
                    out.push(Data::Fetch { seq, items });
                }
            }
            for d in out {
                self.send(d);
            }
        }
        if res.modified.is_empty() {
            self.ok(tag, "STORE completed");
        } else {
            let ids: Vec<u32> = if s.uid {
                res.modified.iter().map(|&u| u as u32).collect()
            } else {
                res.modified
                    .iter()
                    .filter_map(|&u| sel.seq_of(u as u32))
                    .collect()
            };
            self.send(
                StatusResponse::ok(Some(tag.clone()), "Conditional STORE failed")
                    .with_code(Code::Modified(SequenceSet::from_numbers(ids))),
            );
        }
    }

    pub(super) async fn copy(
        &mut self,
        sel: &mut Selected,
        tag: &Tag,
        uid: bool,
        set: SequenceSet,
        mailbox: Mailbox,
        mv: bool,
    ) {
        if mv && sel.read_only {
            return self.no(tag, Some(Code::Cannot), "Mailbox is read-only");
        }
        let idx = sel.resolve(&set, uid);
        let uids: Vec<i64> = idx.iter().map(|&i| sel.uids[i] as i64).collect();
        let from = sel.id;
        let store = self.ctx.storage.clone();
        let dest = match store.mailbox(self.principal(), mailbox.as_str()).await {
            Ok(Some(mb)) => mb,
            Ok(None) => return self.no(tag, Some(Code::TryCreate), "No such mailbox"),
            Err(e) => return self.send(store_err(tag, &e)),
        };
        let verb = if mv { "MOVE" } else { "COPY" };
        if uids.is_empty() {
            return self.ok(tag, &format!("{verb} completed (nothing matched)"));
        }
        let quota = self.user().map_or(0, |u| u.quota_bytes);
        if quota > 0 && !mv {
            // A copy takes space again as far as the quota goes (RFC 9208 4.2).
            let size: i64 = match self.load_infos(sel, &idx).await {
                Ok(m) => m.values().map(|m| m.size).sum(),
                Err(e) => return self.send(store_err(tag, &e)),
            };
            match store.usage(self.principal()).await {
                Ok(used) if used + size > quota => {
                    return self.no(tag, Some(Code::OverQuota), "Quota exceeded");
                }
                Ok(_) => {}
                Err(e) => return self.send(store_err(tag, &e)),
            }
        }
        match store.copy_messages(from, &uids, dest.id, mv).await {
            Ok(crate::storage::Copied { uidvalidity, pairs }) => {
                let code = Code::CopyUid {
                    uid_validity: uidvalidity as u32,
                    source: SequenceSet::from_numbers(pairs.iter().map(|p| p.0 as u32)),
                    destination: SequenceSet::from_numbers(pairs.iter().map(|p| p.1 as u32)),
                };
                if mv {
                    self.send(StatusResponse::ok(None, "Moved").with_code(code));
                    let mut gone: Vec<u32> = pairs.iter().map(|p| p.0 as u32).collect();
                    gone.sort_unstable();
                    self.report_expunged(sel, &gone);
                    self.ok(tag, "MOVE completed");
                } else {
                    self.send(
                        StatusResponse::ok(Some(tag.clone()), "COPY completed").with_code(code),
                    );
                }
            }
            Err(e) => self.send(store_err(tag, &e)),
        }
    }
}
