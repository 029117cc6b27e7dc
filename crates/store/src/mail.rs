//! Mailboxes and messages: reads through the pool, writes through the
//! group-commit writer. Every write that changes a mailbox bumps its
//! `highest_modseq` once and journals each item in `changes`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::blobs::{acquire_blob, release_blob};
use crate::meta::MessageMeta;
use crate::sync::{CollectionChangeKind, Tombstone};
use crate::{now, BlobRef, Result, Store, StoreError, Touched};

pub use outpost_mailmeta::flags::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub id: i64,
    pub principal_id: i64,
    pub name: String,
    pub special_use: Option<String>,
    pub subscribed: bool,
    pub uidvalidity: i64,
    pub uidnext: i64,
    pub highest_modseq: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageInfo {
    pub id: i64,
    pub uid: i64,
    pub flags: i64,
    pub keywords: Vec<String>,
    pub modseq: i64,
    pub size: i64,
    pub internal_date: i64,
    pub save_date: i64,
    pub blob_hash: String,
}

/// A message without its content or blob: see
/// [`Store::message_summaries`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageSummary {
    pub uid: i64,
    pub flags: i64,
    pub modseq: i64,
    pub size: i64,
    pub internal_date: i64,
    /// Sorted.
    pub keywords: Vec<String>,
}

/// A message's flags and nothing else: what IMAP `FETCH (FLAGS)` over a
/// large range reads, without the columns and the string a full
/// [`MessageInfo`] carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageFlags {
    pub uid: i64,
    pub flags: i64,
    pub modseq: i64,
    /// Sorted.
    pub keywords: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailboxStatus {
    pub messages: i64,
    pub unseen: i64,
    pub deleted: i64,
    pub size: i64,
    pub uidnext: i64,
    pub uidvalidity: i64,
    pub highest_modseq: i64,
}

/// One copy of a message to file: where, and with which flags.
#[derive(Debug, Clone)]
pub struct Target {
    pub mailbox: i64,
    pub flags: i64,
    pub keywords: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub mailbox: i64,
    pub uidvalidity: i64,
    pub uid: i64,
    pub modseq: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    Add,
    Remove,
    Replace,
}

#[derive(Debug, Clone, Default)]
pub struct FlagResult {
    /// The modseq given to the changed messages (0 when nothing changed).
    pub modseq: i64,
    /// Messages whose flags changed, as they are now.
    pub changed: Vec<MessageInfo>,
    /// UIDs that failed an UNCHANGEDSINCE test (RFC 7162 MODIFIED).
    pub modified: Vec<i64>,
}

pub(crate) fn new_uidvalidity() -> i64 {
    // Seconds since 2020 fit u32 for a century and grow, so a re-created
    // mailbox gets a new, larger UIDVALIDITY.
    (now() - 1_577_836_800).max(1)
}

const MAILBOX_COLS: &str =
    "id, principal_id, name, special_use, subscribed, uidvalidity, uidnext, highest_modseq";

fn mailbox_row(r: &AnyRow) -> Result<Mailbox> {
    Ok(Mailbox {
        id: r.try_get("id")?,
        principal_id: r.try_get("principal_id")?,
        name: r.try_get("name")?,
        special_use: r.try_get("special_use")?,
        subscribed: r.try_get::<i64, _>("subscribed")? != 0,
        uidvalidity: r.try_get("uidvalidity")?,
        uidnext: r.try_get("uidnext")?,
        highest_modseq: r.try_get("highest_modseq")?,
    })
}

const MSG_COLS: &str = "id, uid, flags, modseq, size, internal_date, save_date, blob_hash";

fn message_row(r: &AnyRow) -> Result<MessageInfo> {
    Ok(MessageInfo {
        id: r.try_get("id")?,
        uid: r.try_get("uid")?,
        flags: r.try_get("flags")?,
        keywords: Vec::new(),
        modseq: r.try_get("modseq")?,
        size: r.try_get("size")?,
        internal_date: r.try_get("internal_date")?,
        save_date: r.try_get("save_date")?,
        blob_hash: r.try_get("blob_hash")?,
    })
}

/// Mailbox names: `/` separates levels; INBOX is case-insensitive.
pub fn canonical_mailbox_name(name: &str) -> String {
    let n = name.trim_matches('/');
    if n.eq_ignore_ascii_case("inbox") {
        "INBOX".into()
    } else if n.len() > 6 && n[..6].eq_ignore_ascii_case("inbox/") {
        format!("INBOX/{}", &n[6..])
    } else {
        n.to_string()
    }
}

/// Refuses names that cannot be stored or would confuse a hierarchy.
pub fn check_mailbox_name(name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.len() > 512
        || name
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
        || name.chars().any(|c| c.is_control() || c == '*' || c == '%');
    if bad {
        return Err(StoreError::Invalid(format!(
            "invalid mailbox name {name:?}"
        )));
    }
    Ok(())
}

impl Store {
    pub async fn mailboxes(&self, principal: i64) -> Result<Vec<Mailbox>> {
        let q = format!("SELECT {MAILBOX_COLS} FROM collections WHERE principal_id = $1 AND kind = 'mailbox' ORDER BY name");
        sqlx::query(&q)
            .bind(principal)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(mailbox_row)
            .collect()
    }

    pub async fn mailbox(&self, principal: i64, name: &str) -> Result<Option<Mailbox>> {
        let q = format!(
            "SELECT {MAILBOX_COLS} FROM collections WHERE principal_id = $1 AND kind = 'mailbox' AND name = $2"
        );
        sqlx::query(&q)
            .bind(principal)
            .bind(canonical_mailbox_name(name))
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(mailbox_row)
            .transpose()
    }

    pub async fn mailbox_by_id(&self, id: i64) -> Result<Option<Mailbox>> {
        let q =
            format!("SELECT {MAILBOX_COLS} FROM collections WHERE id = $1 AND kind = 'mailbox'");
        sqlx::query(&q)
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(mailbox_row)
            .transpose()
    }

    /// The mailbox with a special-use role (e.g. "\\Junk"), if any.
    pub async fn mailbox_by_role(&self, principal: i64, role: &str) -> Result<Option<Mailbox>> {
        let q = format!(
            "SELECT {MAILBOX_COLS} FROM collections WHERE principal_id = $1 AND kind = 'mailbox' AND special_use = $2 ORDER BY id LIMIT 1"
        );
        sqlx::query(&q)
            .bind(principal)
            .bind(role)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(mailbox_row)
            .transpose()
    }

    pub async fn create_mailbox(
        &self,
        principal: i64,
        name: &str,
        special_use: Option<String>,
    ) -> Result<Mailbox> {
        let name = canonical_mailbox_name(name);
        check_mailbox_name(&name)?;
        self.write(move |c, t| {
            Box::pin(async move {
                let uidvalidity = new_uidvalidity();
                let q = format!(
                    "INSERT INTO collections (principal_id, kind, name, special_use, subscribed, uidvalidity, created_at) \
                     VALUES ($1, 'mailbox', $2, $3, 0, $4, $5) RETURNING {MAILBOX_COLS}"
                );
                let row = sqlx::query(&q)
                    .bind(principal)
                    .bind(&name)
                    .bind(special_use)
                    .bind(uidvalidity)
                    .bind(now())
                    .fetch_one(&mut *c)
                    .await
                    .map_err(|e| match StoreError::from(e) {
                        StoreError::Exists(_) => StoreError::Exists(format!("mailbox {name}")),
                        e => e,
                    })?;
                let mb = mailbox_row(&row)?;
                journal(c, mb.id, mb.highest_modseq, 0, "create").await?;
                crate::sync::journal_collection(c, t, principal, mb.id, "mailbox", CollectionChangeKind::Created, &mb.name, None).await?;
                t.add(mb.id, mb.highest_modseq);
                Ok(mb)
            })
        })
        .await
    }

    /// Deletes a mailbox and its messages. Children are left alone (IMAP
    /// semantics: the caller refuses when it wants to). The collection's
    /// journal goes with it; its principal's journal records the deletion.
    pub async fn delete_mailbox(&self, id: i64) -> Result<()> {
        self.write(move |c, t| {
            Box::pin(async move {
                let (principal, kind, name): (i64, String, String) =
                    sqlx::query_as("SELECT principal_id, kind, name FROM collections WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&mut *c)
                        .await?
                        .ok_or_else(|| StoreError::NotFound(format!("mailbox {id}")))?;
                let rows = sqlx::query("SELECT blob_hash, COUNT(*) AS n FROM messages WHERE collection_id = $1 GROUP BY blob_hash")
                    .bind(id)
                    .fetch_all(&mut *c)
                    .await?;
                for r in &rows {
                    release_blob(c, &r.try_get::<String, _>("blob_hash")?, r.try_get("n")?).await?;
                }
                sqlx::query("DELETE FROM message_keywords WHERE message_id IN (SELECT id FROM messages WHERE collection_id = $1)")
                    .bind(id)
                    .execute(&mut *c)
                    .await?;
                sqlx::query("DELETE FROM messages WHERE collection_id = $1").bind(id).execute(&mut *c).await?;
                sqlx::query("DELETE FROM changes WHERE collection_id = $1").bind(id).execute(&mut *c).await?;
                let n = sqlx::query("DELETE FROM collections WHERE id = $1").bind(id).execute(&mut *c).await?.rows_affected();
                if n == 0 {
                    return Err(StoreError::NotFound(format!("mailbox {id}")));
                }
                crate::sync::journal_collection(c, t, principal, id, &kind, CollectionChangeKind::Deleted, &name, None).await?;
                t.add(id, i64::MAX);
                Ok(())
            })
        })
        .await
    }

    /// Renames a mailbox and everything below it. Renaming INBOX moves its
    /// messages into a new mailbox and leaves INBOX empty (RFC 3501 6.3.5).
    pub async fn rename_mailbox(&self, principal: i64, from: &str, to: &str) -> Result<()> {
        let from = canonical_mailbox_name(from);
        let to = canonical_mailbox_name(to);
        check_mailbox_name(&to)?;
        if from == "INBOX" {
            let inbox = self
                .mailbox(principal, "INBOX")
                .await?
                .ok_or_else(|| StoreError::NotFound("INBOX".into()))?;
            let dest = self.create_mailbox(principal, &to, None).await?;
            let uids: Vec<i64> = self
                .message_list(inbox.id)
                .await?
                .iter()
                .map(|m| m.uid)
                .collect();
            self.copy_messages(inbox.id, &uids, dest.id, true).await?;
            return Ok(());
        }
        self.write(move |c, t| {
            Box::pin(async move {
                let exists: Option<i64> = sqlx::query_scalar(
                    "SELECT id FROM collections WHERE principal_id = $1 AND kind = 'mailbox' AND name = $2",
                )
                .bind(principal)
                .bind(&to)
                .fetch_optional(&mut *c)
                .await?;
                if exists.is_some() {
                    return Err(StoreError::Exists(format!("mailbox {to}")));
                }
                let rows = sqlx::query(
                    "SELECT id, name FROM collections WHERE principal_id = $1 AND kind = 'mailbox' AND (name = $2 OR name LIKE $3) ORDER BY name",
                )
                .bind(principal)
                .bind(&from)
                .bind(format!("{}/%", like_escape(&from)))
                .fetch_all(&mut *c)
                .await?;
                if !rows.iter().any(|r| r.try_get::<String, _>("name").ok().as_deref() == Some(from.as_str())) {
                    return Err(StoreError::NotFound(format!("mailbox {from}")));
                }
                for r in &rows {
                    let id: i64 = r.try_get("id")?;
                    let name: String = r.try_get("name")?;
                    if name != from && !name.starts_with(&format!("{from}/")) {
                        continue; // LIKE matched through an escaped wildcard
                    }
                    let new = format!("{to}{}", &name[from.len()..]);
                    let modseq: i64 = sqlx::query_scalar(
                        "UPDATE collections SET name = $1, highest_modseq = highest_modseq + 1 WHERE id = $2 RETURNING highest_modseq",
                    )
                    .bind(&new)
                    .bind(id)
                    .fetch_one(&mut *c)
                    .await?;
                    journal(c, id, modseq, 0, "rename").await?;
                    crate::sync::journal_collection(
                        c,
                        t,
                        principal,
                        id,
                        "mailbox",
                        CollectionChangeKind::for_rename(&name, &new),
                        &new,
                        Some(&name),
                    )
                    .await?;
                    t.add(id, modseq);
                }
                Ok(())
            })
        })
        .await
    }

    pub async fn set_subscribed(&self, id: i64, subscribed: bool) -> Result<()> {
        self.write(move |c, _| {
            Box::pin(async move {
                sqlx::query("UPDATE collections SET subscribed = $1 WHERE id = $2")
                    .bind(subscribed as i64)
                    .bind(id)
                    .execute(&mut *c)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    /// Every message of a mailbox in UID order, with flags and keywords.
    pub async fn message_list(&self, mailbox: i64) -> Result<Vec<MessageInfo>> {
        let q = format!("SELECT {MSG_COLS} FROM messages WHERE collection_id = $1 ORDER BY uid");
        let mut list: Vec<MessageInfo> = sqlx::query(&q)
            .bind(mailbox)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(message_row)
            .collect::<Result<_>>()?;
        let kw = sqlx::query(
            "SELECT k.message_id, k.keyword FROM message_keywords k JOIN messages m ON m.id = k.message_id \
             WHERE m.collection_id = $1",
        )
        .bind(mailbox)
        .fetch_all(self.pool())
        .await?;
        attach_keywords(&mut list, &kw)?;
        Ok(list)
    }

    /// One message by UID.
    pub async fn message_by_uid(&self, mailbox: i64, uid: i64) -> Result<Option<MessageInfo>> {
        let q = format!("SELECT {MSG_COLS} FROM messages WHERE collection_id = $1 AND uid = $2");
        let Some(r) = sqlx::query(&q)
            .bind(mailbox)
            .bind(uid)
            .fetch_optional(self.pool())
            .await?
        else {
            return Ok(None);
        };
        let mut m = message_row(&r)?;
        m.keywords = sqlx::query_scalar(
            "SELECT keyword FROM message_keywords WHERE message_id = $1 ORDER BY keyword",
        )
        .bind(m.id)
        .fetch_all(self.pool())
        .await?;
        Ok(Some(m))
    }

    /// Messages changed (added or flags changed) after `modseq`, and UIDs
    /// expunged after it, from the change journal. IMAP's view, kept for
    /// its callers: it does not look at the journal floor, so a `modseq`
    /// below it misses expunges that were pruned; [`Store::journal_since`]
    /// says when that is the case.
    pub async fn changes_since(
        &self,
        mailbox: i64,
        modseq: i64,
    ) -> Result<(Vec<MessageInfo>, Vec<i64>)> {
        let q = format!(
            "SELECT {MSG_COLS} FROM messages WHERE collection_id = $1 AND modseq > $2 ORDER BY uid"
        );
        let mut changed: Vec<MessageInfo> = sqlx::query(&q)
            .bind(mailbox)
            .bind(modseq)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(message_row)
            .collect::<Result<_>>()?;
        if !changed.is_empty() {
            let kw = sqlx::query(
                "SELECT k.message_id, k.keyword FROM message_keywords k JOIN messages m ON m.id = k.message_id \
                 WHERE m.collection_id = $1 AND m.modseq > $2",
            )
            .bind(mailbox)
            .bind(modseq)
            .fetch_all(self.pool())
            .await?;
            attach_keywords(&mut changed, &kw)?;
        }
        let expunged: Vec<i64> = sqlx::query_scalar(
            "SELECT item FROM changes WHERE collection_id = $1 AND modseq > $2 AND kind = 'remove' ORDER BY item",
        )
        .bind(mailbox)
        .bind(modseq)
        .fetch_all(self.pool())
        .await?;
        Ok((changed, expunged))
    }

    pub async fn status(&self, mailbox: i64) -> Result<MailboxStatus> {
        let r = sqlx::query(
            "SELECT uidnext, uidvalidity, highest_modseq, \
             (SELECT COUNT(*) FROM messages WHERE collection_id = $1) AS messages, \
             (SELECT COUNT(*) FROM messages WHERE collection_id = $1 AND (flags & 1) = 0) AS unseen, \
             (SELECT COUNT(*) FROM messages WHERE collection_id = $1 AND (flags & 8) <> 0) AS deleted, \
             (SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM messages WHERE collection_id = $1) AS size \
             FROM collections WHERE id = $1",
        )
        .bind(mailbox)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox}")))?;
        Ok(MailboxStatus {
            messages: r.try_get("messages")?,
            unseen: r.try_get("unseen")?,
            deleted: r.try_get("deleted")?,
            size: r.try_get("size")?,
            uidnext: r.try_get("uidnext")?,
            uidvalidity: r.try_get("uidvalidity")?,
            highest_modseq: r.try_get("highest_modseq")?,
        })
    }

    /// Parsed metadata of messages by UID.
    pub async fn message_meta(
        &self,
        mailbox: i64,
        uids: &[i64],
    ) -> Result<HashMap<i64, MessageMeta>> {
        let mut out = HashMap::with_capacity(uids.len());
        for chunk in uids.chunks(500) {
            let list = id_list(chunk);
            let q = format!(
                "SELECT uid, meta FROM messages WHERE collection_id = $1 AND uid IN ({list})"
            );
            for r in sqlx::query(&q).bind(mailbox).fetch_all(self.pool()).await? {
                let json: String = r.try_get("meta")?;
                let meta = serde_json::from_str(&json)
                    .map_err(|e| StoreError::Internal(format!("bad meta: {e}")))?;
                out.insert(r.try_get("uid")?, meta);
            }
        }
        Ok(out)
    }

    /// Stores a message once and files it into every target mailbox in one
    /// transaction. Returns only when the blob and the rows are durable.
    pub async fn deliver(
        &self,
        raw: Arc<[u8]>,
        targets: Vec<Target>,
        internal_date: i64,
    ) -> Result<Vec<Delivered>> {
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        let req = self.delivery_request(raw, targets, internal_date).await?;
        let mut out = crate::writer::submit_delivery(self.writer(), vec![req]).await?;
        Ok(out.pop().unwrap_or_default())
    }

    /// Files several messages (each: body, targets, internal date) in one
    /// transaction: all of them or, on any error, none (IMAP MULTIAPPEND,
    /// RFC 3502). Returns each message's copies, in order.
    pub async fn deliver_many(
        &self,
        messages: Vec<(Arc<[u8]>, Vec<Target>, i64)>,
    ) -> Result<Vec<Vec<Delivered>>> {
        let mut reqs = Vec::with_capacity(messages.len());
        let mut filed = Vec::with_capacity(messages.len());
        for (raw, targets, date) in messages {
            // A message with no target is filed nowhere (and leaves no blob).
            filed.push(!targets.is_empty());
            if !targets.is_empty() {
                reqs.push(self.delivery_request(raw, targets, date).await?);
            }
        }
        if reqs.is_empty() {
            return Ok(filed.iter().map(|_| Vec::new()).collect());
        }
        let mut done = crate::writer::submit_delivery(self.writer(), reqs)
            .await?
            .into_iter();
        Ok(filed
            .into_iter()
            .map(|f| {
                if f {
                    done.next().unwrap_or_default()
                } else {
                    Vec::new()
                }
            })
            .collect())
    }

    /// A message ready for the writer: line ends normalised, metadata
    /// parsed, the body stored or bound for a pack.
    async fn delivery_request(
        &self,
        raw: Arc<[u8]>,
        targets: Vec<Target>,
        internal_date: i64,
    ) -> Result<crate::bulk::DeliverReq> {
        let raw = crlf_normalized(raw);
        let parse = |input: &[u8]| {
            let m = MessageMeta::parse(input);
            let json = serde_json::to_string(&m).unwrap_or_else(|_| "{}".into());
            (m, json)
        };
        // Parsing a small message takes microseconds: doing it here costs
        // less than handing it to the blocking pool and back. Large ones
        // go there so they cannot hold up other tasks.
        let meta = if raw.len() <= 256 * 1024 {
            parse(&raw)
        } else {
            let input = raw.clone();
            tokio::task::spawn_blocking(move || parse(&input))
                .await
                .map_err(|e| StoreError::Internal(e.to_string()))?
        };
        let deferred = cfg!(target_os = "linux");
        let ends_crlf = raw.ends_with(b"\r\n");
        let blob = self.put_blob(raw, deferred).await?;
        Ok(crate::bulk::DeliverReq {
            // Pack-bound bodies are flushed with their pack, inline ones with
            // the commit; only a file of its own needs the file-system flush.
            needs_sync: deferred && blob.inline.is_none() && blob.packed.is_none(),
            blob,
            ends_crlf,
            targets,
            internal_date,
            meta: Arc::new(meta),
        })
    }

    /// Changes flags of the given UIDs. With `unchanged_since`, messages
    /// whose modseq is higher are left alone and reported (RFC 7162).
    pub async fn store_flags(
        &self,
        mailbox: i64,
        uids: Vec<i64>,
        op: FlagOp,
        flags: i64,
        keywords: Vec<String>,
        unchanged_since: Option<i64>,
    ) -> Result<FlagResult> {
        self.write(move |c, t| {
            Box::pin(async move {
                let mut res = FlagResult::default();
                let current = load_messages(c, mailbox, &uids).await?;
                let mut modseq = 0;
                // Indexes into res.changed of messages whose keywords changed.
                let mut kw_changed = Vec::new();
                for mut m in current {
                    if let Some(since) = unchanged_since {
                        if m.modseq > since {
                            res.modified.push(m.uid);
                            continue;
                        }
                    }
                    let new_flags = match op {
                        FlagOp::Add => m.flags | flags,
                        FlagOp::Remove => m.flags & !flags,
                        FlagOp::Replace => flags,
                    };
                    let mut new_kw: Vec<String> = match op {
                        FlagOp::Add => {
                            let mut k = m.keywords.clone();
                            for w in &keywords {
                                if !k.iter().any(|x| x.eq_ignore_ascii_case(w)) {
                                    k.push(w.clone());
                                }
                            }
                            k
                        }
                        FlagOp::Remove => m
                            .keywords
                            .iter()
                            .filter(|x| !keywords.iter().any(|w| w.eq_ignore_ascii_case(x)))
                            .cloned()
                            .collect(),
                        FlagOp::Replace => keywords.clone(),
                    };
                    new_kw.sort();
                    new_kw.dedup();
                    let mut old_kw = m.keywords.clone();
                    old_kw.sort();
                    if new_flags == m.flags && new_kw == old_kw {
                        continue;
                    }
                    if modseq == 0 {
                        modseq = bump_modseq(c, mailbox).await?;
                    }
                    if new_kw != old_kw {
                        kw_changed.push(res.changed.len());
                    }
                    m.flags = new_flags;
                    m.keywords = new_kw;
                    m.modseq = modseq;
                    res.changed.push(m);
                }
                if modseq > 0 {
                    write_flag_changes(c, mailbox, modseq, &res.changed, &kw_changed).await?;
                }
                res.modseq = modseq;
                if modseq > 0 {
                    t.add(mailbox, modseq);
                }
                Ok(res)
            })
        })
        .await
    }

    /// Removes messages flagged \Deleted; with `uids`, only those of them
    /// (UID EXPUNGE). Returns the expunged UIDs in ascending order.
    pub async fn expunge(&self, mailbox: i64, uids: Option<Vec<i64>>) -> Result<Vec<i64>> {
        self.write(move |c, t| {
            Box::pin(async move {
                let candidates = match &uids {
                    Some(u) => load_messages(c, mailbox, u).await?,
                    None => {
                        let q = format!("SELECT {MSG_COLS} FROM messages WHERE collection_id = $1 AND (flags & 8) <> 0 ORDER BY uid");
                        sqlx::query(&q).bind(mailbox).fetch_all(&mut *c).await?.iter().map(message_row).collect::<Result<_>>()?
                    }
                };
                let doomed: Vec<MessageInfo> = candidates.into_iter().filter(|m| m.flags & DELETED != 0).collect();
                remove_messages(c, t, mailbox, &doomed).await
            })
        })
        .await
    }

    /// Copies (or moves) messages to another mailbox in one transaction.
    /// Returns (source uid, new uid) pairs and the destination UIDVALIDITY.
    pub async fn copy_messages(
        &self,
        from: i64,
        uids: &[i64],
        to: i64,
        remove: bool,
    ) -> Result<(i64, Vec<(i64, i64)>)> {
        let uids = uids.to_vec();
        let blobs = self.blobs().clone();
        self.write(move |c, t| {
            Box::pin(async move {
                let msgs = load_messages(c, from, &uids).await?;
                let uidvalidity: i64 = sqlx::query_scalar("SELECT uidvalidity FROM collections WHERE id = $1")
                    .bind(to)
                    .fetch_optional(&mut *c)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("mailbox {to}")))?;
                let mut pairs = Vec::with_capacity(msgs.len());
                for m in &msgs {
                    let meta: String = sqlx::query_scalar("SELECT meta FROM messages WHERE id = $1").bind(m.id).fetch_one(&mut *c).await?;
                    let blob = BlobRef { hash: m.blob_hash.clone(), size: m.size as u64, inline: None, packed: None };
                    acquire_blob(c, &blobs, &blob, 1).await?;
                    let (uid, modseq) = next_uid(c, to).await?;
                    let new_id: i64 = sqlx::query_scalar(
                        "INSERT INTO messages (collection_id, uid, blob_hash, size, internal_date, save_date, flags, modseq, subject, sent_date, message_id, meta) \
                         SELECT $1, $2, blob_hash, size, internal_date, $3, flags, $4, subject, sent_date, message_id, $5 FROM messages WHERE id = $6 RETURNING id",
                    )
                    .bind(to)
                    .bind(uid)
                    .bind(now())
                    .bind(modseq)
                    .bind(meta)
                    .bind(m.id)
                    .fetch_one(&mut *c)
                    .await?;
                    for k in &m.keywords {
                        sqlx::query("INSERT INTO message_keywords (message_id, keyword) VALUES ($1, $2)")
                            .bind(new_id)
                            .bind(k)
                            .execute(&mut *c)
                            .await?;
                    }
                    journal(c, to, modseq, uid, "add").await?;
                    t.add(to, modseq);
                    pairs.push((m.uid, uid));
                }
                if remove {
                    remove_messages(c, t, from, &msgs).await?;
                }
                Ok((uidvalidity, pairs))
            })
        })
        .await
    }

    /// UIDs and system flags of every message of a mailbox, in UID order.
    /// Lean on purpose: IMAP SELECT of a 100,000-message mailbox needs only
    /// these. Aggregated into one value, as in
    /// [`message_flags_in_uid_range`](Self::message_flags_in_uid_range).
    pub async fn uids_and_flags(&self, mailbox: i64) -> Result<Vec<(i64, i64)>> {
        let packed: Option<String> = sqlx::query_scalar(
            "SELECT string_agg(CAST(uid AS TEXT) || ' ' || CAST(flags AS TEXT), ',') \
             FROM messages WHERE collection_id = $1",
        )
        .bind(mailbox)
        .fetch_one(self.pool())
        .await?;
        let mut list: Vec<(i64, i64)> = parse_packed::<2>(packed.as_deref().unwrap_or(""))?
            .into_iter()
            .map(|[uid, flags]| (uid, flags))
            .collect();
        list.sort_unstable_by_key(|m| m.0);
        Ok(list)
    }

    /// UID, flags, modseq, size and internal date of every message of a
    /// mailbox, with its keywords, in UID order: what EWS FindItem sorts,
    /// filters and pages over. Read aggregated, as
    /// [`message_flags_in_uid_range`](Self::message_flags_in_uid_range)
    /// is, since the driver's cost is per row.
    pub async fn message_summaries(&self, mailbox: i64) -> Result<Vec<MessageSummary>> {
        let packed: Option<String> = sqlx::query_scalar(
            "SELECT string_agg(CAST(uid AS TEXT) || ' ' || CAST(flags AS TEXT) || ' ' || CAST(modseq AS TEXT) \
             || ' ' || CAST(size AS TEXT) || ' ' || CAST(internal_date AS TEXT), ',') \
             FROM messages WHERE collection_id = $1",
        )
        .bind(mailbox)
        .fetch_one(self.pool())
        .await?;
        let mut list: Vec<MessageSummary> = parse_packed::<5>(packed.as_deref().unwrap_or(""))?
            .into_iter()
            .map(|[uid, flags, modseq, size, internal_date]| MessageSummary {
                uid,
                flags,
                modseq,
                size,
                internal_date,
                keywords: Vec::new(),
            })
            .collect();
        list.sort_unstable_by_key(|m| m.uid);
        let kw = sqlx::query(
            "SELECT m.uid, k.keyword FROM message_keywords k JOIN messages m ON m.id = k.message_id \
             WHERE m.collection_id = $1 ORDER BY k.keyword",
        )
        .bind(mailbox)
        .fetch_all(self.pool())
        .await?;
        for r in &kw {
            let uid: i64 = r.try_get(0)?;
            let keyword: String = r.try_get(1)?;
            if let Ok(i) = list.binary_search_by_key(&uid, |m| m.uid) {
                list[i].keywords.push(keyword);
            }
        }
        Ok(list)
    }

    /// UID, flags, keywords and modseq of the messages whose UID is in
    /// `lo..=hi`, in UID order: one read of the range for each table.
    ///
    /// The rows come back aggregated into one text value
    /// (`uid flags modseq,...`): the database driver's cost is per row
    /// (a copy of every value, a channel send and a conversion), and on a
    /// 100,000-message range it was most of the time `FETCH 1:* (FLAGS)`
    /// took. `string_agg` is in PostgreSQL and in SQLite since 3.44.
    pub async fn message_flags_in_uid_range(
        &self,
        mailbox: i64,
        lo: i64,
        hi: i64,
    ) -> Result<Vec<MessageFlags>> {
        let packed: Option<String> = sqlx::query_scalar(
            "SELECT string_agg(CAST(uid AS TEXT) || ' ' || CAST(flags AS TEXT) || ' ' || CAST(modseq AS TEXT), ',') \
             FROM messages WHERE collection_id = $1 AND uid >= $2 AND uid <= $3",
        )
        .bind(mailbox)
        .bind(lo)
        .bind(hi)
        .fetch_one(self.pool())
        .await?;
        let mut list: Vec<MessageFlags> = parse_packed::<3>(packed.as_deref().unwrap_or(""))?
            .into_iter()
            .map(|[uid, flags, modseq]| MessageFlags {
                uid,
                flags,
                modseq,
                keywords: Vec::new(),
            })
            .collect();
        list.sort_unstable_by_key(|m| m.uid);
        if list.is_empty() {
            return Ok(list);
        }
        let kw = sqlx::query(
            "SELECT m.uid, k.keyword FROM message_keywords k JOIN messages m ON m.id = k.message_id \
             WHERE m.collection_id = $1 AND m.uid >= $2 AND m.uid <= $3",
        )
        .bind(mailbox)
        .bind(lo)
        .bind(hi)
        .fetch_all(self.pool())
        .await?;
        for r in &kw {
            let uid: i64 = r.try_get(0)?;
            if let Ok(i) = list.binary_search_by_key(&uid, |m| m.uid) {
                list[i].keywords.push(r.try_get(1)?);
            }
        }
        if !kw.is_empty() {
            for m in &mut list {
                m.keywords.sort();
            }
        }
        Ok(list)
    }

    /// Up to `limit` messages with a UID below `below` and an internal
    /// date at or after `since` (unix seconds), highest UID first, with
    /// keywords: an ActiveSync initial sync sends the newest mail first.
    pub async fn messages_below(
        &self,
        mailbox: i64,
        below: i64,
        since: i64,
        limit: i64,
    ) -> Result<Vec<MessageInfo>> {
        let q = format!(
            "SELECT {MSG_COLS} FROM messages WHERE collection_id = $1 AND uid < $2 \
             AND internal_date >= $3 ORDER BY uid DESC LIMIT $4"
        );
        let mut list: Vec<MessageInfo> = sqlx::query(&q)
            .bind(mailbox)
            .bind(below)
            .bind(since)
            .bind(limit)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(message_row)
            .collect::<Result<_>>()?;
        if let (Some(lo), Some(hi)) = (list.last().map(|m| m.uid), list.first().map(|m| m.uid)) {
            let kw = sqlx::query(
                "SELECT k.message_id, k.keyword FROM message_keywords k JOIN messages m ON m.id = k.message_id \
                 WHERE m.collection_id = $1 AND m.uid >= $2 AND m.uid <= $3",
            )
            .bind(mailbox)
            .bind(lo)
            .bind(hi)
            .fetch_all(self.pool())
            .await?;
            attach_keywords(&mut list, &kw)?;
        }
        Ok(list)
    }

    /// How many messages [`Store::messages_below`] would list without a
    /// limit.
    pub async fn count_below(&self, mailbox: i64, below: i64, since: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM messages WHERE collection_id = $1 AND uid < $2 AND internal_date >= $3",
        )
        .bind(mailbox)
        .bind(below)
        .bind(since)
        .fetch_one(self.pool())
        .await?)
    }

    /// Messages whose UID is in `lo..=hi`, in UID order, with keywords
    /// (IMAP FETCH of a UID range without listing the whole mailbox).
    pub async fn messages_in_uid_range(
        &self,
        mailbox: i64,
        lo: i64,
        hi: i64,
    ) -> Result<Vec<MessageInfo>> {
        let q = format!(
            "SELECT {MSG_COLS} FROM messages WHERE collection_id = $1 AND uid >= $2 AND uid <= $3 ORDER BY uid"
        );
        let mut list: Vec<MessageInfo> = sqlx::query(&q)
            .bind(mailbox)
            .bind(lo)
            .bind(hi)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(message_row)
            .collect::<Result<_>>()?;
        if !list.is_empty() {
            let kw = sqlx::query(
                "SELECT k.message_id, k.keyword FROM message_keywords k JOIN messages m ON m.id = k.message_id \
                 WHERE m.collection_id = $1 AND m.uid >= $2 AND m.uid <= $3",
            )
            .bind(mailbox)
            .bind(lo)
            .bind(hi)
            .fetch_all(self.pool())
            .await?;
            attach_keywords(&mut list, &kw)?;
        }
        Ok(list)
    }
}

/// Messages are stored with CRLF line endings (as SMTP carries them), so
/// that every protocol's size equals the octets it sends.
///
/// Messages with a part labelled `Content-Transfer-Encoding: binary`
/// (BINARYMIME, RFC 3030) are kept byte for byte: there, CR and LF may be
/// data.
pub fn crlf_normalized(raw: Arc<[u8]>) -> Arc<[u8]> {
    // Only line ends are looked at (memchr), so a message that is already
    // CRLF throughout costs one fast scan.
    let needs = memchr::memchr2_iter(b'\r', b'\n', &raw).any(|i| match raw[i] {
        b'\n' => i == 0 || raw[i - 1] != b'\r',
        _ => raw.get(i + 1) != Some(&b'\n'),
    });
    if !needs || has_binary_part(&raw) {
        return raw;
    }
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 20);
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'\r' if raw.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 2;
                continue;
            }
            b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    out.into()
}

fn has_binary_part(raw: &[u8]) -> bool {
    const NEEDLE: &[u8] = b"content-transfer-encoding:";
    let mut i = 0;
    while let Some(p) = raw[i..]
        .windows(NEEDLE.len())
        .position(|w| w.eq_ignore_ascii_case(NEEDLE))
    {
        let start = i + p + NEEDLE.len();
        let value: Vec<u8> = raw[start..]
            .iter()
            .take(40)
            .take_while(|&&b| b != b'\r' && b != b'\n')
            .copied()
            .collect();
        if String::from_utf8_lossy(&value)
            .trim()
            .eq_ignore_ascii_case("binary")
        {
            return true;
        }
        i = start;
    }
    false
}

fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Parses rows of `N` integers separated by spaces, rows separated by
/// commas, as the aggregated reads above return them.
fn parse_packed<const N: usize>(s: &str) -> Result<Vec<[i64; N]>> {
    let mut out = Vec::with_capacity(s.len() / (6 * N));
    if s.is_empty() {
        return Ok(out);
    }
    for row in s.split(',') {
        let mut v = [0i64; N];
        let mut it = row.split(' ');
        for x in v.iter_mut() {
            *x = it
                .next()
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| StoreError::Internal(format!("bad packed row {row:.40}")))?;
        }
        if it.next().is_some() {
            return Err(StoreError::Internal(format!("bad packed row {row:.40}")));
        }
        out.push(v);
    }
    Ok(out)
}

fn attach_keywords(list: &mut [MessageInfo], rows: &[AnyRow]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut by_id: HashMap<i64, Vec<String>> = HashMap::new();
    for r in rows {
        by_id
            .entry(r.try_get("message_id")?)
            .or_default()
            .push(r.try_get("keyword")?);
    }
    for m in list {
        if let Some(mut k) = by_id.remove(&m.id) {
            k.sort();
            m.keywords = k;
        }
    }
    Ok(())
}

async fn load_messages(
    c: &mut AnyConnection,
    mailbox: i64,
    uids: &[i64],
) -> Result<Vec<MessageInfo>> {
    let mut out = Vec::with_capacity(uids.len());
    for chunk in uids.chunks(500) {
        let list = id_list(chunk);
        let q = format!("SELECT {MSG_COLS} FROM messages WHERE collection_id = $1 AND uid IN ({list}) ORDER BY uid");
        let mut part: Vec<MessageInfo> = sqlx::query(&q)
            .bind(mailbox)
            .fetch_all(&mut *c)
            .await?
            .iter()
            .map(message_row)
            .collect::<Result<_>>()?;
        let kq = format!(
            "SELECT k.message_id, k.keyword FROM message_keywords k JOIN messages m ON m.id = k.message_id \
             WHERE m.collection_id = $1 AND m.uid IN ({list})"
        );
        let kw = sqlx::query(&kq).bind(mailbox).fetch_all(&mut *c).await?;
        attach_keywords(&mut part, &kw)?;
        out.extend(part);
    }
    out.sort_by_key(|m| m.uid);
    Ok(out)
}

async fn remove_messages(
    c: &mut AnyConnection,
    t: &mut Touched,
    mailbox: i64,
    msgs: &[MessageInfo],
) -> Result<Vec<i64>> {
    if msgs.is_empty() {
        return Ok(Vec::new());
    }
    let modseq = bump_modseq(c, mailbox).await?;
    let mut uids = Vec::with_capacity(msgs.len());
    let tombstones: Vec<Tombstone> = msgs
        .iter()
        .map(|m| Tombstone {
            item: m.uid,
            item_id: Some(m.id),
            name: None,
            object_uid: None,
            modseq,
        })
        .collect();
    crate::sync::journal_removals(c, mailbox, modseq, &tombstones).await?;
    for m in msgs {
        sqlx::query("DELETE FROM message_keywords WHERE message_id = $1")
            .bind(m.id)
            .execute(&mut *c)
            .await?;
        sqlx::query("DELETE FROM messages WHERE id = $1")
            .bind(m.id)
            .execute(&mut *c)
            .await?;
        release_blob(c, &m.blob_hash, 1).await?;
        uids.push(m.uid);
    }
    t.add(mailbox, modseq);
    Ok(uids)
}

/// Writes the new flags, keywords and modseq of `changed` (all at `modseq`)
/// with a few set-based statements: one UPDATE per distinct flag value and
/// chunk of ids, multi-row inserts for keywords and journal rows.
async fn write_flag_changes(
    c: &mut AnyConnection,
    mailbox: i64,
    modseq: i64,
    changed: &[MessageInfo],
    kw_changed: &[usize],
) -> Result<()> {
    const CHUNK: usize = 500;
    let mut by_flags: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for m in changed {
        by_flags.entry(m.flags).or_default().push(m.id);
    }
    for (flags, ids) in by_flags {
        for chunk in ids.chunks(CHUNK) {
            let q = format!(
                "UPDATE messages SET flags = $1, modseq = $2 WHERE id IN ({})",
                id_list(chunk)
            );
            sqlx::query(&q)
                .bind(flags)
                .bind(modseq)
                .execute(&mut *c)
                .await?;
        }
    }
    let kw_msgs: Vec<&MessageInfo> = kw_changed.iter().map(|&i| &changed[i]).collect();
    for chunk in kw_msgs.chunks(CHUNK) {
        let ids: Vec<i64> = chunk.iter().map(|m| m.id).collect();
        let q = format!(
            "DELETE FROM message_keywords WHERE message_id IN ({})",
            id_list(&ids)
        );
        sqlx::query(&q).execute(&mut *c).await?;
        let pairs: Vec<(i64, &str)> = chunk
            .iter()
            .flat_map(|m| m.keywords.iter().map(move |k| (m.id, k.as_str())))
            .collect();
        for rows in pairs.chunks(200) {
            let q = format!(
                "INSERT INTO message_keywords (message_id, keyword) VALUES {}",
                crate::bulk::placeholders(rows.len(), 2)
            );
            let mut query = sqlx::query(&q);
            for (id, k) in rows {
                query = query.bind(*id).bind(*k);
            }
            query.execute(&mut *c).await?;
        }
    }
    let at = now();
    for rows in changed.chunks(200) {
        let q = format!(
            "INSERT INTO changes (collection_id, modseq, item, kind, at) VALUES {}",
            crate::bulk::placeholders(rows.len(), 5)
        );
        let mut query = sqlx::query(&q);
        for m in rows {
            query = query
                .bind(mailbox)
                .bind(modseq)
                .bind(m.uid)
                .bind("change")
                .bind(at);
        }
        query.execute(&mut *c).await?;
    }
    Ok(())
}

/// "1,2,3": integers are safe to inline in SQL.
pub(crate) fn id_list(ids: &[i64]) -> String {
    ids.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

async fn journal(
    c: &mut AnyConnection,
    collection: i64,
    modseq: i64,
    item: i64,
    kind: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO changes (collection_id, modseq, item, kind, at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(collection)
    .bind(modseq)
    .bind(item)
    .bind(kind)
    .bind(now())
    .execute(&mut *c)
    .await?;
    Ok(())
}

async fn bump_modseq(c: &mut AnyConnection, mailbox: i64) -> Result<i64> {
    sqlx::query_scalar("UPDATE collections SET highest_modseq = highest_modseq + 1 WHERE id = $1 RETURNING highest_modseq")
        .bind(mailbox)
        .fetch_optional(&mut *c)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox}")))
}

/// Allocates the next UID and modseq of a mailbox.
async fn next_uid(c: &mut AnyConnection, mailbox: i64) -> Result<(i64, i64)> {
    let (uid, modseq, _) = next_uid_full(c, mailbox).await?;
    Ok((uid, modseq))
}

/// Allocates the next UID and modseq; also returns the UIDVALIDITY.
async fn next_uid_full(c: &mut AnyConnection, mailbox: i64) -> Result<(i64, i64, i64)> {
    let r = sqlx::query(
        "UPDATE collections SET uidnext = uidnext + 1, highest_modseq = highest_modseq + 1 WHERE id = $1 \
         RETURNING uidnext - 1 AS uid, highest_modseq, uidvalidity",
    )
    .bind(mailbox)
    .fetch_optional(&mut *c)
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox}")))?;
    Ok((
        r.try_get("uid")?,
        r.try_get("highest_modseq")?,
        r.try_get("uidvalidity")?,
    ))
}
