//! FETCH, resumable: a long answer is produced in parts of [`OUT_CHUNK`].

use super::*;

/// Output size at which a long FETCH hands control back to the loop so
/// that it can write (and the session's buffer stays small).
const OUT_CHUNK: usize = 64 * 1024;

/// A FETCH still producing responses; see [`Session::resume`].
pub(crate) struct FetchJob {
    pub(super) tag: Tag,
    pub(super) attrs: Vec<FetchAttr>,
    pub(super) needs: fetch::Needs,
    /// Only FLAGS, UID and MODSEQ are asked for: rows come from
    /// [`MailStorage::flags_in_uid_range`] and responses are written by
    /// [`fetch::write_flags_fetch`], without building full rows or values.
    pub(super) lean: bool,
    pub(super) changed_since: Option<u64>,
    pub(super) read_only: bool,
    pub(super) id: i64,
    /// View indices to answer for, ascending.
    pub(super) idx: Vec<usize>,
    /// Next index into `idx`.
    pub(super) pos: usize,
    pub(super) chunk_size: usize,
    /// The loaded rows for `idx[..chunk.end]`.
    pub(super) chunk: Option<FetchChunk>,
    pub(super) failed: Option<String>,
    pub(super) expunge_ok: bool,
}

pub(super) struct FetchChunk {
    pub(super) end: usize,
    /// Lean jobs: the flag rows of the chunk's range, ascending UID.
    pub(super) flags: Vec<FlagRow>,
    /// Lean jobs: the first row of `flags` not yet passed.
    pub(super) cursor: usize,
    pub(super) infos: HashMap<u32, MessageInfo>,
    pub(super) metas: HashMap<i64, MessageMeta>,
    pub(super) seen_set: std::collections::HashSet<u32>,
}

impl Session {
    /// Loads message rows for the given view indices, keyed by UID.
    pub(super) async fn load_infos(
        &self,
        sel: &Selected,
        idx: &[usize],
    ) -> Result<HashMap<u32, MessageInfo>, StorageError> {
        let mut out = HashMap::with_capacity(idx.len());
        if idx.is_empty() {
            return Ok(out);
        }
        let lo = sel.uids[idx[0]] as i64;
        let hi = sel.uids[*idx.last().unwrap()] as i64;
        for m in self
            .ctx
            .storage
            .messages_in_uid_range(sel.id, lo, hi)
            .await?
        {
            let u = m.uid as u32;
            if let Ok(i) = sel.uids.binary_search(&u) {
                if idx.binary_search(&i).is_ok() {
                    out.insert(u, m);
                }
            }
        }
        Ok(out)
    }

    pub(super) async fn fetch(&mut self, sel: &mut Selected, tag: &Tag, f: FetchCommand) -> Next {
        let mut attrs = f.items.attrs();
        if f.uid && !attrs.contains(&FetchAttr::Uid) {
            attrs.insert(0, FetchAttr::Uid);
        }
        if f.changed_since.is_some() && !attrs.contains(&FetchAttr::ModSeq) {
            attrs.push(FetchAttr::ModSeq);
        }
        if attrs.contains(&FetchAttr::ModSeq) {
            self.condstore = true;
        }
        if f.vanished && !(f.uid && f.changed_since.is_some() && self.qresync) {
            self.bad_cmd(
                Some(tag.clone()),
                "VANISHED needs UID FETCH, CHANGEDSINCE and QRESYNC",
            );
            return Next::Continue;
        }
        let needs = fetch::needs(&attrs);
        let read_only = sel.read_only;
        let id = sel.id;
        let idx = sel.resolve(&f.set, f.uid);
        if f.vanished {
            let last = sel.last_uid();
            match self
                .ctx
                .storage
                .changes_since(id, f.changed_since.unwrap_or(0) as i64)
                .await
            {
                Ok(changes) => {
                    let gone = match changes.expunged {
                        Expunged::Uids(gone) => {
                            let gone: Vec<u32> = gone
                                .into_iter()
                                .map(|u| u as u32)
                                .filter(|&u| f.set.contains(u, last.max(u)))
                                .collect();
                            (!gone.is_empty()).then(|| SequenceSet::from_numbers(gone))
                        }
                        // Older than the journal's floor: every UID of the
                        // set that does not exist (RFC 7162 3.2.5.2).
                        Expunged::BeforeFloor => absent_uids(&sel.uids, &f.set, last),
                    };
                    if let Some(uids) = gone {
                        self.send(Data::Vanished {
                            earlier: true,
                            uids,
                        });
                    }
                }
                Err(e) => {
                    self.send(store_err(tag, &e));
                    return Next::Continue;
                }
            }
        }
        let lean = fetch::flags_only(&attrs);
        let job = FetchJob {
            tag: tag.clone(),
            chunk_size: if needs.raw {
                50
            } else if lean {
                20_000
            } else {
                5000
            },
            lean,
            attrs,
            needs,
            changed_since: f.changed_since,
            read_only,
            id,
            idx,
            pos: 0,
            chunk: None,
            failed: None,
            expunge_ok: f.uid,
        };
        self.run_fetch(sel, Box::new(job)).await
    }

    /// Produces FETCH responses until the output holds [`OUT_CHUNK`]
    /// octets (then parks the job in `self.pending` and answers
    /// [`Next::More`]) or the command is done.
    pub(super) async fn run_fetch(&mut self, sel: &mut Selected, mut job: Box<FetchJob>) -> Next {
        while job.pos < job.idx.len() {
            let mut chunk = match job.chunk.take() {
                Some(c) if job.pos < c.end => c,
                _ => {
                    let end = (job.pos + job.chunk_size).min(job.idx.len());
                    match self.load_fetch_chunk(sel, &job, end).await {
                        Ok(c) => c,
                        Err(e) => {
                            self.send(store_err(&job.tag, &e));
                            return Next::Continue;
                        }
                    }
                }
            };
            while job.pos < chunk.end {
                let i = job.idx[job.pos];
                job.pos += 1;
                if job.lean {
                    // The view's indices and the chunk's rows both ascend
                    // by UID: one cursor finds each row. Rows the view does
                    // not name (outside the set, or not yet announced to
                    // this session) are skipped over, never answered.
                    let uid = sel.uids[i] as i64;
                    let rows = &chunk.flags;
                    while chunk.cursor < rows.len() && rows[chunk.cursor].uid < uid {
                        chunk.cursor += 1;
                    }
                    if let Some(row) = rows.get(chunk.cursor).filter(|r| r.uid == uid) {
                        fetch::write_flags_fetch(&mut self.out, i as u32 + 1, &job.attrs, row);
                    }
                } else {
                    self.fetch_one(sel, &mut job, &chunk, i).await;
                }
                if self.out.len() >= OUT_CHUNK && job.pos < job.idx.len() {
                    job.chunk = Some(chunk);
                    self.pending = Some(job);
                    return Next::More;
                }
            }
        }
        let tag = job.tag.clone();
        match job.failed.take() {
            None => self.ok(&tag, "FETCH completed"),
            Some(m) => self.no(&tag, None, &m),
        }
        Next::Continue
    }

    /// Rows, metadata and (for a non-PEEK body fetch) the implicit `\Seen`
    /// of the messages `job.idx[job.pos..end]`.
    async fn load_fetch_chunk(
        &mut self,
        sel: &Selected,
        job: &FetchJob,
        end: usize,
    ) -> Result<FetchChunk, StorageError> {
        let slice = &job.idx[job.pos..end];
        if job.lean {
            let mut flags = Vec::new();
            if let (Some(&a), Some(&b)) = (slice.first(), slice.last()) {
                let (lo, hi) = (sel.uids[a] as i64, sel.uids[b] as i64);
                flags = self.ctx.storage.flags_in_uid_range(job.id, lo, hi).await?;
                if let Some(since) = job.changed_since {
                    flags.retain(|m| m.modseq as u64 > since);
                }
            }
            // Ascending, as the trait promises; the cursor relies on it.
            if !flags.is_sorted_by_key(|m| m.uid) {
                flags.sort_by_key(|m| m.uid);
            }
            return Ok(FetchChunk {
                end,
                flags,
                cursor: 0,
                infos: HashMap::new(),
                metas: HashMap::new(),
                seen_set: Default::default(),
            });
        }
        let mut infos = self.load_infos(sel, slice).await?;
        if let Some(since) = job.changed_since {
            infos.retain(|_, m| m.modseq as u64 > since);
        }
        let mut seen_set = std::collections::HashSet::new();
        if job.needs.sets_seen && !job.read_only {
            let unseen: Vec<i64> = infos
                .values()
                .filter(|m| m.flags & SEEN == 0)
                .map(|m| m.uid)
                .collect();
            if !unseen.is_empty() {
                let change = FlagChange {
                    op: FlagOp::Add,
                    flags: SEEN,
                    keywords: vec![],
                    unchanged_since: None,
                };
                let res = self.ctx.storage.store_flags(job.id, unseen, change).await?;
                for m in res.changed {
                    seen_set.insert(m.uid as u32);
                    infos.insert(m.uid as u32, m);
                }
            }
        }
        let metas = if job.needs.meta {
            let uids: Vec<i64> = infos.keys().map(|&u| u as i64).collect();
            self.ctx.storage.message_meta(job.id, &uids).await?
        } else {
            HashMap::new()
        };
        Ok(FetchChunk {
            end,
            flags: Vec::new(),
            cursor: 0,
            infos,
            metas,
            seen_set,
        })
    }

    /// The FETCH response for the message at view index `i`.
    async fn fetch_one(
        &mut self,
        sel: &Selected,
        job: &mut FetchJob,
        chunk: &FetchChunk,
        i: usize,
    ) {
        let Some(uid) = sel.uids.get(i).copied() else {
            return;
        };
        let Some(info) = chunk.infos.get(&uid) else {
            return;
        };
        let meta = chunk.metas.get(&(uid as i64));
        let envelope_raw = job.attrs.contains(&FetchAttr::Envelope)
            && meta.is_some_and(|m| fetch::envelope_needs_raw(&m.envelope));
        let raw = if job.needs.raw || envelope_raw {
            match self.ctx.storage.read_body(info).await {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(session = self.net.id, "imap: blob read failed: {e}");
                    job.failed = Some("Message data unavailable".into());
                    return;
                }
            }
        } else {
            None
        };
        let extra;
        let a: &[FetchAttr] = if chunk.seen_set.contains(&uid) {
            // \Seen was set: report the new flags, and with
            // CONDSTORE also UID and MODSEQ (RFC 7162 3.2).
            let mut v = job.attrs.clone();
            let mut want = vec![FetchAttr::Flags];
            if self.condstore {
                want.extend([FetchAttr::Uid, FetchAttr::ModSeq]);
            }
            for w in want {
                if !v.contains(&w) {
                    v.push(w);
                }
            }
            extra = v;
            &extra
        } else {
            &job.attrs
        };
        match fetch::render(a, info, meta, raw.as_deref(), false, self.enc.utf8_accept) {
            Ok(items) => self.send(Data::Fetch {
                seq: i as u32 + 1,
                items,
            }),
            Err(msg) => job.failed = Some(msg),
        }
    }
}
