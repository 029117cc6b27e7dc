//! SEARCH, SORT and THREAD over the selected mailbox.

use super::*;

fn contains_modseq(k: &SearchKey) -> bool {
    match k {
        SearchKey::ModSeq { .. } => true,
        SearchKey::Not(k) => contains_modseq(k),
        SearchKey::Or(a, b) => contains_modseq(a) || contains_modseq(b),
        SearchKey::And(v) => v.iter().any(contains_modseq),
        _ => false,
    }
}

impl Session {
    /// Evaluates a search key over the view; returns matching indices.
    pub(super) async fn run_search(
        &mut self,
        sel: &Selected,
        key: &SearchKey,
        meta_for_sort: bool,
    ) -> Result<(Vec<usize>, Vec<MessageInfo>, HashMap<i64, MessageMeta>), StorageError> {
        if !meta_for_sort {
            if let Some(hits) = set_hits(key, sel) {
                // Answered from the UID list alone: no rows are read.
                return Ok((hits, Vec::new(), HashMap::new()));
            }
        }
        let id = sel.id;
        let rows: Vec<MessageInfo> = if !meta_for_sort && search::flags_suffice(key) {
            // Flags, keywords and modseqs are all the key looks at: read
            // the flag rows of the view's UID range (a covering index in
            // the store), not every message row.
            match (sel.uids.first(), sel.uids.last()) {
                (Some(&lo), Some(&hi)) => self
                    .ctx
                    .storage
                    .flags_in_uid_range(id, lo as i64, hi as i64)
                    .await?
                    .into_iter()
                    .map(flag_row_info)
                    .collect(),
                _ => Vec::new(),
            }
        } else {
            self.ctx.storage.messages(id).await?
        };
        // Only messages this session knows about, in its sequence order,
        // each with its index in the view.
        let (list, view_idx) = in_view(&sel.uids, rows);
        let needs = search::needs(key);
        let metas = if needs.meta || needs.raw || meta_for_sort {
            let uids: Vec<i64> = list.iter().map(|m| m.uid).collect();
            self.ctx.storage.message_meta(id, &uids).await?
        } else {
            HashMap::new()
        };
        let saved = sel.saved.clone();
        let ctx = search::SearchContext {
            last_seq: sel.exists(),
            last_uid: sel.last_uid(),
            saved: &saved,
            now: now(),
        };
        let mut hits = Vec::new();
        for (m, &i) in list.iter().zip(&view_idx) {
            let raw = if needs.raw {
                Some(self.ctx.storage.read_body(m).await?)
            } else {
                None
            };
            let seq = i as u32 + 1;
            let view = search::MessageView {
                seq,
                info: m,
                meta: metas.get(&m.uid),
                raw: raw.as_deref(),
            };
            if search::matches(key, &view, &ctx) {
                hits.push(seq as usize - 1);
            }
        }
        Ok((hits, list, metas))
    }

    pub(super) async fn search(&mut self, sel: &mut Selected, tag: &Tag, mut s: SearchCommand) {
        // RFC 9051 6.4.4: under IMAP4rev2, SEARCH without RETURN answers
        // with ESEARCH, as if RETURN (ALL) had been given.
        if self.rev2 && s.returns.is_none() {
            s.returns = Some(Vec::new());
        }
        let (hits, list, _) = match self.run_search(sel, &s.criteria, false).await {
            Ok(r) => r,
            Err(e) => return self.send(store_err(tag, &e)),
        };
        let uid_of = |i: usize| sel.uids[i];
        let ids: Vec<u32> = hits
            .iter()
            .map(|&i| if s.uid { uid_of(i) } else { i as u32 + 1 })
            .collect();
        let mod_seq = if contains_modseq(&s.criteria) && !hits.is_empty() {
            self.condstore = true;
            let hit_uids: std::collections::HashSet<u32> =
                hits.iter().map(|&i| sel.uids[i]).collect();
            list.iter()
                .filter(|m| hit_uids.contains(&(m.uid as u32)))
                .map(|m| m.modseq as u64)
                .max()
        } else {
            None
        };
        match s.returns {
            None => {
                self.send(Data::Search { ids, mod_seq });
            }
            Some(ret) => {
                let ret = if ret.is_empty() {
                    vec![SearchReturn::All]
                } else {
                    ret
                };
                if ret.contains(&SearchReturn::Save) {
                    sel.saved = hits.iter().map(|&i| sel.uids[i]).collect();
                }
                let only_save = ret.iter().all(|r| *r == SearchReturn::Save);
                if !only_save {
                    let mut e = ESearch::new(Some(tag.clone()), s.uid);
                    for r in &ret {
                        match r {
                            SearchReturn::Min => e.min = ids.first().copied(),
                            SearchReturn::Max => e.max = ids.last().copied(),
                            SearchReturn::Count => e.count = Some(ids.len() as u32),
                            SearchReturn::All if !ids.is_empty() => {
                                e.all = Some(SequenceSet::from_numbers(ids.iter().copied()))
                            }
                            _ => {}
                        }
                    }
                    e.mod_seq = mod_seq;
                    self.send(Data::ESearch(e));
                }
            }
        }
        self.ok(tag, "SEARCH completed");
    }

    pub(super) async fn sort(&mut self, sel: &mut Selected, tag: &Tag, s: SortCommand) {
        let (hits, list, metas) = match self.run_search(sel, &s.search, true).await {
            Ok(r) => r,
            Err(e) => return self.send(store_err(tag, &e)),
        };
        let views = hit_views(&hits, &sel.uids, &list, &metas);
        let order = search::sort(&s.criteria, &views);
        let ids: Vec<u32> = order
            .iter()
            .map(|&k| {
                if s.uid {
                    views[k].info.uid as u32
                } else {
                    views[k].seq
                }
            })
            .collect();
        match s.returns {
            None => self.send(Data::Sort { ids, mod_seq: None }),
            Some(ret) => {
                let ret = if ret.is_empty() {
                    vec![SearchReturn::All]
                } else {
                    ret
                };
                let mut e = ESearch::new(Some(tag.clone()), s.uid);
                for r in &ret {
                    match r {
                        SearchReturn::Min => e.min = ids.iter().min().copied(),
                        SearchReturn::Max => e.max = ids.iter().max().copied(),
                        SearchReturn::Count => e.count = Some(ids.len() as u32),
                        SearchReturn::All if !ids.is_empty() => {
                            e.all = Some(SequenceSet::Ranges(
                                ids.iter().map(|&u| SeqRange::single(u)).collect(),
                            ))
                        }
                        _ => {}
                    }
                }
                self.send(Data::ESearch(e));
            }
        }
        self.ok(tag, "SORT completed");
    }

    pub(super) async fn thread(&mut self, sel: &mut Selected, tag: &Tag, t: ThreadCommand) {
        let (hits, list, metas) = match self.run_search(sel, &t.search, true).await {
            Ok(r) => r,
            Err(e) => return self.send(store_err(tag, &e)),
        };
        let views = hit_views(&hits, &sel.uids, &list, &metas);
        let ids = if t.uid {
            search::ThreadIds::Uid
        } else {
            search::ThreadIds::Seq
        };
        let threads = search::thread(t.algorithm, &views, ids);
        self.send(Data::Thread(threads));
        self.ok(tag, "THREAD completed");
    }
}

/// The rows the view holds, in UID order, and the index in `uids` (the
/// view's ascending UID list) of each: one merge walk, not a search per
/// row. Rows come in ascending UID order (the [`MailStorage`] contract);
/// they are sorted first if not.
///
/// [`MailStorage`]: crate::storage::MailStorage
fn in_view(uids: &[u32], mut rows: Vec<MessageInfo>) -> (Vec<MessageInfo>, Vec<usize>) {
    if !rows.is_sorted_by_key(|m| m.uid) {
        rows.sort_by_key(|m| m.uid);
    }
    let mut idx = Vec::with_capacity(rows.len().min(uids.len()));
    let mut i = 0;
    rows.retain(|m| {
        while i < uids.len() && (uids[i] as i64) < m.uid {
            i += 1;
        }
        let held = i < uids.len() && uids[i] as i64 == m.uid;
        if held {
            idx.push(i);
        }
        held
    });
    (rows, idx)
}

/// A flag row as the evaluator's message row, for keys that
/// [`search::flags_suffice`] for: size, dates and blob hash stay empty
/// (no such key reads them), and nothing is allocated but the keywords the
/// row already holds.
fn flag_row_info(m: FlagRow) -> MessageInfo {
    MessageInfo {
        id: 0,
        uid: m.uid,
        flags: m.flags,
        keywords: m.keywords,
        modseq: m.modseq,
        size: 0,
        internal_date: 0,
        save_date: 0,
        blob_hash: String::new(),
    }
}

/// The search hits (indices into the selected mailbox's UID list) as views
/// for SORT and THREAD, with their metadata.
fn hit_views<'a>(
    hits: &[usize],
    uids: &[u32],
    list: &'a [MessageInfo],
    metas: &'a HashMap<i64, MessageMeta>,
) -> Vec<search::MessageView<'a>> {
    let by_uid: HashMap<u32, &MessageInfo> = list.iter().map(|m| (m.uid as u32, m)).collect();
    hits.iter()
        .filter_map(|&i| {
            let info = *by_uid.get(&uids[i])?;
            Some(search::MessageView {
                seq: i as u32 + 1,
                info,
                meta: metas.get(&info.uid),
                raw: None,
            })
        })
        .collect()
}

/// Matches for keys that only name messages by number (ALL, UID sets,
/// sequence sets, `$`, and AND/OR/NOT of them), computed on the session's
/// UID list as sets of view indices. `None` when the key looks at
/// anything else. This keeps `UID SEARCH ALL` on a large mailbox from
/// loading every message row.
fn set_hits(key: &SearchKey, sel: &Selected) -> Option<Vec<usize>> {
    Some(match key {
        SearchKey::All => (0..sel.uids.len()).collect(),
        SearchKey::Uid(set) => sel.resolve(set, true),
        SearchKey::SequenceSet(set) => sel.resolve(set, false),
        SearchKey::And(keys) => {
            let mut acc: Option<Vec<usize>> = None;
            for k in keys {
                let h = set_hits(k, sel)?;
                acc = Some(match acc {
                    None => h,
                    Some(a) => a
                        .into_iter()
                        .filter(|i| h.binary_search(i).is_ok())
                        .collect(),
                });
            }
            acc.unwrap_or_else(|| (0..sel.uids.len()).collect())
        }
        SearchKey::Or(a, b) => {
            let mut v = set_hits(a, sel)?;
            v.extend(set_hits(b, sel)?);
            v.sort_unstable();
            v.dedup();
            v
        }
        SearchKey::Not(k) => {
            let h = set_hits(k, sel)?;
            (0..sel.uids.len())
                .filter(|i| h.binary_search(i).is_err())
                .collect()
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(uid: i64) -> MessageInfo {
        flag_row_info(FlagRow {
            uid,
            ..FlagRow::default()
        })
    }

    #[test]
    fn in_view_pairs_rows_with_view_indices() {
        // Rows the view does not hold (2: not yet announced; 9: beyond it)
        // are dropped; order is restored first.
        let rows = vec![row(5), row(1), row(2), row(3), row(9)];
        let (list, idx) = in_view(&[1, 3, 5, 7], rows);
        let uids: Vec<i64> = list.iter().map(|m| m.uid).collect();
        assert_eq!(uids, [1, 3, 5]);
        assert_eq!(idx, [0, 1, 2]);
        let (list, idx) = in_view(&[], vec![row(1)]);
        assert!(list.is_empty() && idx.is_empty());
    }
}
