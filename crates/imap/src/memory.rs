//! An in-memory [`MailStorage`] for the crate's tests and the fuzz target.
//!
//! It keeps what the real store keeps where the session can see it: UIDs
//! and UIDVALIDITY per mailbox, one modseq per change, a journal of
//! expunges with a floor below which it no longer answers, keyword and
//! flag changes with UNCHANGEDSINCE, MULTIAPPEND and MOVE as one step, and
//! a watch channel per mailbox that wakes IDLE. It also fails on demand
//! ([`MemStorage::set_unavailable`]) so the session's answers to a storage
//! outage can be tested.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use outpost_mailmeta::flags::{DELETED, SEEN};
use outpost_mailmeta::MessageMeta;
use tokio::sync::watch;

use crate::storage::*;

/// The mailboxes a new principal gets, like the real store's.
const DEFAULT_MAILBOXES: &[(&str, Option<&str>)] = &[
    ("INBOX", None),
    ("Sent", Some("\\Sent")),
    ("Drafts", Some("\\Drafts")),
    ("Trash", Some("\\Trash")),
    ("Junk", Some("\\Junk")),
    ("Archive", Some("\\Archive")),
];

#[derive(Clone)]
struct Message {
    info: MessageInfo,
    body: Arc<[u8]>,
    meta: Arc<MessageMeta>,
}

struct Mailbox {
    principal: i64,
    info: MailboxInfo,
    messages: BTreeMap<i64, Message>,
    /// (modseq, uid) of expunges, ascending.
    expunged: Vec<(i64, i64)>,
    /// The oldest modseq the journal still answers for.
    floor: i64,
}

#[derive(Default)]
struct State {
    next_mailbox: i64,
    next_message: i64,
    next_uidvalidity: i64,
    mailboxes: BTreeMap<i64, Mailbox>,
}

/// See the module documentation. Cheap to clone; clones share the data.
#[derive(Clone, Default)]
pub struct MemStorage {
    state: Arc<Mutex<State>>,
    watchers: Arc<Mutex<HashMap<i64, watch::Sender<i64>>>>,
    unavailable: Arc<AtomicBool>,
    /// Calls that read whole message rows (see [`MemStorage::row_reads`]).
    row_reads: Arc<AtomicUsize>,
}

fn canonical(name: &str) -> String {
    let n = name.trim_matches('/');
    if n.eq_ignore_ascii_case("inbox") {
        "INBOX".into()
    } else if n.len() > 6 && n.is_char_boundary(6) && n[..6].eq_ignore_ascii_case("inbox/") {
        format!("INBOX/{}", &n[6..])
    } else {
        n.to_string()
    }
}

fn check_name(name: &str) -> StorageResult<()> {
    let bad = name.is_empty()
        || name.len() > 512
        || name
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
        || name.chars().any(|c| c.is_control() || c == '*' || c == '%');
    if bad {
        return Err(StorageError::Invalid(format!(
            "invalid mailbox name {name:?}"
        )));
    }
    Ok(())
}

fn content_hash(data: &[u8]) -> String {
    let mut out = String::with_capacity(32);
    for seed in [0x9e37_79b9_u64, 0x85eb_ca6b] {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        seed.hash(&mut h);
        data.hash(&mut h);
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl State {
    fn mailbox(&self, id: i64) -> StorageResult<&Mailbox> {
        self.mailboxes
            .get(&id)
            .ok_or_else(|| StorageError::NotFound(format!("mailbox {id}")))
    }

    fn mailbox_mut(&mut self, id: i64) -> StorageResult<&mut Mailbox> {
        self.mailboxes
            .get_mut(&id)
            .ok_or_else(|| StorageError::NotFound(format!("mailbox {id}")))
    }

    fn find(&self, principal: i64, name: &str) -> Option<&Mailbox> {
        let name = canonical(name);
        self.mailboxes
            .values()
            .find(|m| m.principal == principal && m.info.name == name)
    }

    fn create(
        &mut self,
        principal: i64,
        name: &str,
        special_use: Option<String>,
    ) -> StorageResult<i64> {
        let name = canonical(name);
        check_name(&name)?;
        if self.find(principal, &name).is_some() {
            return Err(StorageError::Exists(format!("mailbox {name}")));
        }
        self.next_mailbox += 1;
        self.next_uidvalidity += 1;
        let id = self.next_mailbox;
        self.mailboxes.insert(
            id,
            Mailbox {
                principal,
                info: MailboxInfo {
                    id,
                    name,
                    special_use,
                    subscribed: false,
                    uidvalidity: 1_000 + self.next_uidvalidity,
                    uidnext: 1,
                    highest_modseq: 1,
                },
                messages: BTreeMap::new(),
                expunged: Vec::new(),
                floor: 0,
            },
        );
        Ok(id)
    }

    /// Files one message; returns its UID and modseq.
    fn file(&mut self, mailbox: i64, m: Message, modseq: Option<i64>) -> StorageResult<Message> {
        self.next_message += 1;
        let id = self.next_message;
        let mb = self.mailbox_mut(mailbox)?;
        let modseq = modseq.unwrap_or_else(|| {
            mb.info.highest_modseq += 1;
            mb.info.highest_modseq
        });
        let mut m = m;
        m.info.id = id;
        m.info.uid = mb.info.uidnext;
        m.info.modseq = modseq;
        mb.info.uidnext += 1;
        mb.messages.insert(m.info.uid, m.clone());
        Ok(m)
    }
}

impl MemStorage {
    pub fn new() -> MemStorage {
        MemStorage::default()
    }

    /// How many times whole message rows were read (`messages`,
    /// `messages_in_uid_range`), for tests that check a command gets by
    /// with flag rows or the UID list.
    pub fn row_reads(&self) -> usize {
        self.row_reads.load(Ordering::SeqCst)
    }

    fn lock(&self) -> StorageResult<std::sync::MutexGuard<'_, State>> {
        if self.unavailable.load(Ordering::Relaxed) {
            return Err(StorageError::Unavailable("storage switched off".into()));
        }
        Ok(self.state.lock().unwrap())
    }

    fn notify(&self, changes: &[(i64, i64)]) {
        let w = self.watchers.lock().unwrap();
        for &(mailbox, modseq) in changes {
            if let Some(tx) = w.get(&mailbox) {
                tx.send_replace(modseq);
            }
        }
    }

    /// Makes every call fail with [`StorageError::Unavailable`] (or work
    /// again), as a database outage would.
    pub fn set_unavailable(&self, down: bool) {
        self.unavailable.store(down, Ordering::Relaxed);
    }

    /// A new principal with the default mailboxes; returns its id.
    pub fn add_principal(&self) -> i64 {
        let mut s = self.state.lock().unwrap();
        let principal = 1 + s.mailboxes.values().map(|m| m.principal).max().unwrap_or(0);
        for (name, su) in DEFAULT_MAILBOXES {
            let id = s
                .create(principal, name, su.map(str::to_string))
                .expect("default mailbox");
            s.mailboxes.get_mut(&id).unwrap().info.subscribed = true;
        }
        principal
    }

    /// The id of the principal's mailbox `name`.
    pub fn mailbox_id(&self, principal: i64, name: &str) -> Option<i64> {
        let s = self.state.lock().unwrap();
        s.find(principal, name).map(|m| m.info.id)
    }

    /// Files a message as delivery would; returns its UID.
    pub fn deliver(&self, mailbox: i64, raw: &[u8], flags: i64, internal_date: i64) -> i64 {
        let m = Message {
            info: MessageInfo {
                id: 0,
                uid: 0,
                flags,
                keywords: Vec::new(),
                modseq: 0,
                size: raw.len() as i64,
                internal_date,
                save_date: internal_date,
                blob_hash: content_hash(raw),
            },
            body: raw.into(),
            meta: Arc::new(MessageMeta::parse(raw)),
        };
        let m = self
            .state
            .lock()
            .unwrap()
            .file(mailbox, m, None)
            .expect("mailbox exists");
        self.notify(&[(mailbox, m.info.modseq)]);
        m.info.uid
    }

    /// Forgets the journal's expunges at or below `modseq`: older
    /// `changes_since` calls get [`Expunged::BeforeFloor`], as a pruned
    /// store journal answers.
    pub fn set_floor(&self, mailbox: i64, modseq: i64) {
        let mut s = self.state.lock().unwrap();
        if let Some(mb) = s.mailboxes.get_mut(&mailbox) {
            mb.floor = modseq;
            mb.expunged.retain(|&(m, _)| m > modseq);
        }
    }

    /// The mailbox's highest modseq.
    pub fn highest_modseq(&self, mailbox: i64) -> i64 {
        let s = self.state.lock().unwrap();
        s.mailboxes
            .get(&mailbox)
            .map(|m| m.info.highest_modseq)
            .unwrap_or(0)
    }

    fn remove(mb: &mut Mailbox, uids: &[i64]) -> i64 {
        mb.info.highest_modseq += 1;
        let modseq = mb.info.highest_modseq;
        for &u in uids {
            mb.messages.remove(&u);
            mb.expunged.push((modseq, u));
        }
        modseq
    }
}

#[async_trait::async_trait]
impl MailStorage for MemStorage {
    async fn mailboxes(&self, principal: i64) -> StorageResult<Vec<MailboxInfo>> {
        let s = self.lock()?;
        let mut v: Vec<MailboxInfo> = s
            .mailboxes
            .values()
            .filter(|m| m.principal == principal)
            .map(|m| m.info.clone())
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }

    async fn mailbox(&self, principal: i64, name: &str) -> StorageResult<Option<MailboxInfo>> {
        Ok(self.lock()?.find(principal, name).map(|m| m.info.clone()))
    }

    async fn create_mailbox(
        &self,
        principal: i64,
        name: &str,
        special_use: Option<String>,
    ) -> StorageResult<()> {
        self.lock()?
            .create(principal, name, special_use)
            .map(|_| ())
    }

    async fn delete_mailbox(&self, mailbox: i64) -> StorageResult<()> {
        self.lock()?
            .mailboxes
            .remove(&mailbox)
            .ok_or_else(|| StorageError::NotFound(format!("mailbox {mailbox}")))?;
        self.notify(&[(mailbox, i64::MAX)]);
        Ok(())
    }

    async fn rename_mailbox(&self, principal: i64, from: &str, to: &str) -> StorageResult<()> {
        let (from, to) = (canonical(from), canonical(to));
        check_name(&to)?;
        let mut s = self.lock()?;
        if s.find(principal, &to).is_some() {
            return Err(StorageError::Exists(format!("mailbox {to}")));
        }
        let source = s
            .find(principal, &from)
            .ok_or_else(|| StorageError::NotFound(format!("mailbox {from}")))?
            .info
            .id;
        let mut touched = Vec::new();
        if from == "INBOX" {
            let dest = s.create(principal, &to, None)?;
            let mb = s.mailbox_mut(source)?;
            let msgs: Vec<Message> = mb.messages.values().cloned().collect();
            let uids: Vec<i64> = msgs.iter().map(|m| m.info.uid).collect();
            touched.push((source, Self::remove(mb, &uids)));
            for m in msgs {
                let m = s.file(dest, m, None)?;
                touched.push((dest, m.info.modseq));
            }
        } else {
            let prefix = format!("{from}/");
            for mb in s.mailboxes.values_mut() {
                if mb.principal != principal
                    || !(mb.info.name == from || mb.info.name.starts_with(&prefix))
                {
                    continue;
                }
                mb.info.name = format!("{to}{}", &mb.info.name[from.len()..]);
                mb.info.highest_modseq += 1;
                touched.push((mb.info.id, mb.info.highest_modseq));
            }
        }
        drop(s);
        self.notify(&touched);
        Ok(())
    }

    async fn set_subscribed(&self, mailbox: i64, on: bool) -> StorageResult<()> {
        self.lock()?.mailbox_mut(mailbox)?.info.subscribed = on;
        Ok(())
    }

    async fn status(&self, mailbox: i64) -> StorageResult<MailboxStatus> {
        let s = self.lock()?;
        let mb = s.mailbox(mailbox)?;
        let msgs = mb.messages.values();
        Ok(MailboxStatus {
            messages: mb.messages.len() as i64,
            unseen: msgs.clone().filter(|m| m.info.flags & SEEN == 0).count() as i64,
            deleted: msgs.clone().filter(|m| m.info.flags & DELETED != 0).count() as i64,
            size: msgs.map(|m| m.info.size).sum(),
            uidnext: mb.info.uidnext,
            uidvalidity: mb.info.uidvalidity,
            highest_modseq: mb.info.highest_modseq,
        })
    }

    fn watch(&self, mailbox: i64) -> watch::Receiver<i64> {
        let mut w = self.watchers.lock().unwrap();
        w.entry(mailbox)
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    async fn snapshot(&self, mailbox: i64) -> StorageResult<Option<Snapshot>> {
        let s = self.lock()?;
        let Some(mb) = s.mailboxes.get(&mailbox) else {
            return Ok(None);
        };
        let uids: Vec<u32> = mb.messages.keys().map(|&u| u as u32).collect();
        let first_unseen = mb.messages.values().position(|m| m.info.flags & SEEN == 0);
        Ok(Some(Snapshot {
            mailbox: mb.info.clone(),
            uids,
            first_unseen,
        }))
    }

    async fn messages(&self, mailbox: i64) -> StorageResult<Vec<MessageInfo>> {
        self.row_reads.fetch_add(1, Ordering::SeqCst);
        let s = self.lock()?;
        Ok(s.mailbox(mailbox)?
            .messages
            .values()
            .map(|m| m.info.clone())
            .collect())
    }

    async fn messages_in_uid_range(
        &self,
        mailbox: i64,
        lo: i64,
        hi: i64,
    ) -> StorageResult<Vec<MessageInfo>> {
        self.row_reads.fetch_add(1, Ordering::SeqCst);
        let s = self.lock()?;
        if lo > hi {
            return Ok(Vec::new());
        }
        Ok(s.mailbox(mailbox)?
            .messages
            .range(lo..=hi)
            .map(|(_, m)| m.info.clone())
            .collect())
    }

    async fn flags_in_uid_range(
        &self,
        mailbox: i64,
        lo: i64,
        hi: i64,
    ) -> StorageResult<Vec<FlagRow>> {
        let s = self.lock()?;
        if lo > hi {
            return Ok(Vec::new());
        }
        Ok(s.mailbox(mailbox)?
            .messages
            .range(lo..=hi)
            .map(|(_, m)| {
                let mut keywords = m.info.keywords.clone();
                keywords.sort();
                FlagRow {
                    uid: m.info.uid,
                    flags: m.info.flags,
                    keywords,
                    modseq: m.info.modseq,
                }
            })
            .collect())
    }

    async fn message_meta(
        &self,
        mailbox: i64,
        uids: &[i64],
    ) -> StorageResult<HashMap<i64, MessageMeta>> {
        let s = self.lock()?;
        let mb = s.mailbox(mailbox)?;
        Ok(uids
            .iter()
            .filter_map(|u| mb.messages.get(u).map(|m| (*u, (*m.meta).clone())))
            .collect())
    }

    async fn read_body(&self, message: &MessageInfo) -> StorageResult<Vec<u8>> {
        let s = self.lock()?;
        s.mailboxes
            .values()
            .flat_map(|mb| mb.messages.values())
            .find(|m| m.info.id == message.id)
            .map(|m| m.body.to_vec())
            .ok_or_else(|| StorageError::NotFound(format!("message {}", message.id)))
    }

    async fn store_flags(
        &self,
        mailbox: i64,
        uids: Vec<i64>,
        change: FlagChange,
    ) -> StorageResult<FlagResult> {
        let mut s = self.lock()?;
        let mb = s.mailbox_mut(mailbox)?;
        let mut res = FlagResult::default();
        let mut uids = uids;
        uids.sort_unstable();
        uids.dedup();
        let mut modseq = 0;
        for u in uids {
            let Some(m) = mb.messages.get(&u) else {
                continue;
            };
            if let Some(since) = change.unchanged_since {
                if m.info.modseq > since {
                    res.modified.push(u);
                    continue;
                }
            }
            let flags = match change.op {
                FlagOp::Add => m.info.flags | change.flags,
                FlagOp::Remove => m.info.flags & !change.flags,
                FlagOp::Replace => change.flags,
            };
            let has = |k: &String, list: &[String]| list.iter().any(|x| x.eq_ignore_ascii_case(k));
            let mut kw: Vec<String> = match change.op {
                FlagOp::Add => {
                    let mut k = m.info.keywords.clone();
                    for w in &change.keywords {
                        if !has(w, &k) {
                            k.push(w.clone());
                        }
                    }
                    k
                }
                FlagOp::Remove => m
                    .info
                    .keywords
                    .iter()
                    .filter(|x| !has(x, &change.keywords))
                    .cloned()
                    .collect(),
                FlagOp::Replace => change.keywords.clone(),
            };
            kw.sort();
            kw.dedup();
            let mut old = m.info.keywords.clone();
            old.sort();
            if flags == m.info.flags && kw == old {
                continue;
            }
            if modseq == 0 {
                mb.info.highest_modseq += 1;
                modseq = mb.info.highest_modseq;
            }
            let m = mb.messages.get_mut(&u).unwrap();
            m.info.flags = flags;
            m.info.keywords = kw;
            m.info.modseq = modseq;
            res.changed.push(m.info.clone());
        }
        res.modseq = modseq;
        drop(s);
        if modseq > 0 {
            self.notify(&[(mailbox, modseq)]);
        }
        Ok(res)
    }

    async fn append(
        &self,
        mailbox: i64,
        messages: Vec<NewMessage>,
    ) -> StorageResult<Vec<Appended>> {
        let mut s = self.lock()?;
        let uidvalidity = s.mailbox(mailbox)?.info.uidvalidity;
        let mut out = Vec::with_capacity(messages.len());
        let mut last = 0;
        for n in messages {
            let m = Message {
                info: MessageInfo {
                    id: 0,
                    uid: 0,
                    flags: n.flags,
                    keywords: n.keywords,
                    modseq: 0,
                    size: n.data.len() as i64,
                    internal_date: n.internal_date,
                    save_date: now(),
                    blob_hash: content_hash(&n.data),
                },
                meta: Arc::new(MessageMeta::parse(&n.data)),
                body: n.data,
            };
            let m = s.file(mailbox, m, None)?;
            last = m.info.modseq;
            out.push(Appended {
                uidvalidity,
                uid: m.info.uid,
            });
        }
        drop(s);
        if last > 0 {
            self.notify(&[(mailbox, last)]);
        }
        Ok(out)
    }

    async fn copy_messages(
        &self,
        from: i64,
        uids: &[i64],
        to: i64,
        remove: bool,
    ) -> StorageResult<Copied> {
        let mut s = self.lock()?;
        let uidvalidity = s.mailbox(to)?.info.uidvalidity;
        let src = s.mailbox(from)?;
        let mut wanted: Vec<i64> = uids.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        let msgs: Vec<Message> = wanted
            .iter()
            .filter_map(|u| src.messages.get(u).cloned())
            .collect();
        let mut out = Copied {
            uidvalidity,
            pairs: Vec::new(),
        };
        let mut touched = Vec::new();
        for m in msgs {
            let old = m.info.uid;
            let mut copy = m;
            copy.info.save_date = now();
            let copy = s.file(to, copy, None)?;
            touched.push((to, copy.info.modseq));
            out.pairs.push((old, copy.info.uid));
        }
        if remove && !out.pairs.is_empty() {
            let gone: Vec<i64> = out.pairs.iter().map(|p| p.0).collect();
            let mb = s.mailbox_mut(from)?;
            touched.push((from, Self::remove(mb, &gone)));
        }
        drop(s);
        self.notify(&touched);
        Ok(out)
    }

    async fn expunge(&self, mailbox: i64, uids: Option<Vec<i64>>) -> StorageResult<Vec<i64>> {
        let mut s = self.lock()?;
        let mb = s.mailbox_mut(mailbox)?;
        let mut doomed: Vec<i64> = mb
            .messages
            .values()
            .filter(|m| m.info.flags & DELETED != 0)
            .map(|m| m.info.uid)
            .collect();
        if let Some(only) = uids {
            doomed.retain(|u| only.contains(u));
        }
        if doomed.is_empty() {
            return Ok(doomed);
        }
        let modseq = Self::remove(mb, &doomed);
        drop(s);
        self.notify(&[(mailbox, modseq)]);
        Ok(doomed)
    }

    async fn changes_since(&self, mailbox: i64, modseq: i64) -> StorageResult<Changes> {
        let s = self.lock()?;
        let mb = s.mailbox(mailbox)?;
        let changed = mb
            .messages
            .values()
            .filter(|m| m.info.modseq > modseq)
            .map(|m| m.info.clone())
            .collect();
        let expunged = if modseq < mb.floor {
            Expunged::BeforeFloor
        } else {
            let mut v: Vec<i64> = mb
                .expunged
                .iter()
                .filter(|&&(m, _)| m > modseq)
                .map(|&(_, u)| u)
                .collect();
            v.sort_unstable();
            Expunged::Uids(v)
        };
        Ok(Changes { changed, expunged })
    }

    async fn usage(&self, principal: i64) -> StorageResult<i64> {
        let s = self.lock()?;
        Ok(s.mailboxes
            .values()
            .filter(|m| m.principal == principal)
            .flat_map(|m| m.messages.values())
            .map(|m| m.info.size)
            .sum())
    }
}
