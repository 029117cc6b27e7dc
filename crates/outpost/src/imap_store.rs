//! The IMAP session's storage trait over the real store: each method is
//! one store call, with the store's types turned into the imap crate's.

use std::collections::HashMap;

use async_trait::async_trait;
use outpost_imap::storage::{
    Appended, Changes, Copied, Expunged, FlagChange, FlagOp, FlagResult, FlagRow, MailStorage,
    MailboxInfo, MailboxStatus, MessageInfo, NewMessage, Snapshot, StorageError, StorageResult,
};
use outpost_mailmeta::flags::SEEN;
use outpost_mailmeta::MessageMeta;
use outpost_store::{Store, StoreError, Target};
use tokio::sync::watch;

/// [`MailStorage`] on the store.
pub struct ImapStore {
    pub store: Store,
}

fn err(e: StoreError) -> StorageError {
    match e {
        StoreError::Unavailable(m) => StorageError::Unavailable(m),
        StoreError::Full(m) => StorageError::Full(m),
        StoreError::NotFound(m) => StorageError::NotFound(m),
        StoreError::Exists(m) => StorageError::Exists(m),
        StoreError::Invalid(m) => StorageError::Invalid(m),
        StoreError::Conflict => StorageError::Conflict,
        StoreError::Internal(m) => StorageError::Internal(m),
    }
}

fn mailbox(m: outpost_store::Mailbox) -> MailboxInfo {
    MailboxInfo {
        id: m.id,
        name: m.name,
        special_use: m.special_use,
        subscribed: m.subscribed,
        uidvalidity: m.uidvalidity,
        uidnext: m.uidnext,
        highest_modseq: m.highest_modseq,
    }
}

fn message(m: outpost_store::MessageInfo) -> MessageInfo {
    MessageInfo {
        id: m.id,
        uid: m.uid,
        flags: m.flags,
        keywords: m.keywords,
        modseq: m.modseq,
        size: m.size,
        internal_date: m.internal_date,
        save_date: m.save_date,
        blob_hash: m.blob_hash,
    }
}

fn messages(v: Vec<outpost_store::MessageInfo>) -> Vec<MessageInfo> {
    v.into_iter().map(message).collect()
}

#[async_trait]
impl MailStorage for ImapStore {
    async fn mailboxes(&self, principal: i64) -> StorageResult<Vec<MailboxInfo>> {
        let v = self.store.mailboxes(principal).await.map_err(err)?;
        Ok(v.into_iter().map(mailbox).collect())
    }

    async fn mailbox(&self, principal: i64, name: &str) -> StorageResult<Option<MailboxInfo>> {
        let m = self.store.mailbox(principal, name).await.map_err(err)?;
        Ok(m.map(mailbox))
    }

    async fn create_mailbox(
        &self,
        principal: i64,
        name: &str,
        special_use: Option<String>,
    ) -> StorageResult<()> {
        self.store
            .create_mailbox(principal, name, special_use)
            .await
            .map(|_| ())
            .map_err(err)
    }

    async fn delete_mailbox(&self, id: i64) -> StorageResult<()> {
        self.store.delete_mailbox(id).await.map_err(err)
    }

    async fn rename_mailbox(&self, principal: i64, from: &str, to: &str) -> StorageResult<()> {
        self.store
            .rename_mailbox(principal, from, to)
            .await
            .map_err(err)
    }

    async fn set_subscribed(&self, id: i64, on: bool) -> StorageResult<()> {
        self.store.set_subscribed(id, on).await.map_err(err)
    }

    async fn status(&self, id: i64) -> StorageResult<MailboxStatus> {
        let s = self.store.status(id).await.map_err(err)?;
        Ok(MailboxStatus {
            messages: s.messages,
            unseen: s.unseen,
            deleted: s.deleted,
            size: s.size,
            uidnext: s.uidnext,
            uidvalidity: s.uidvalidity,
            highest_modseq: s.highest_modseq,
        })
    }

    fn watch(&self, id: i64) -> watch::Receiver<i64> {
        self.store.subscribe(id)
    }

    async fn snapshot(&self, id: i64) -> StorageResult<Option<Snapshot>> {
        let Some(mb) = self.store.mailbox_by_id(id).await.map_err(err)? else {
            return Ok(None);
        };
        let list = self.store.uids_and_flags(id).await.map_err(err)?;
        Ok(Some(Snapshot {
            mailbox: mailbox(mb),
            first_unseen: list.iter().position(|(_, f)| f & SEEN == 0),
            uids: list.iter().map(|(u, _)| *u as u32).collect(),
        }))
    }

    async fn messages(&self, id: i64) -> StorageResult<Vec<MessageInfo>> {
        Ok(messages(self.store.message_list(id).await.map_err(err)?))
    }

    async fn flags_in_uid_range(&self, id: i64, lo: i64, hi: i64) -> StorageResult<Vec<FlagRow>> {
        let v = self
            .store
            .message_flags_in_uid_range(id, lo, hi)
            .await
            .map_err(err)?;
        Ok(v.into_iter()
            .map(|m| FlagRow {
                uid: m.uid,
                flags: m.flags,
                keywords: m.keywords,
                modseq: m.modseq,
            })
            .collect())
    }
    async fn messages_in_uid_range(
        &self,
        id: i64,
        lo: i64,
        hi: i64,
    ) -> StorageResult<Vec<MessageInfo>> {
        let v = self
            .store
            .messages_in_uid_range(id, lo, hi)
            .await
            .map_err(err)?;
        Ok(messages(v))
    }

    async fn message_meta(
        &self,
        id: i64,
        uids: &[i64],
    ) -> StorageResult<HashMap<i64, MessageMeta>> {
        self.store.message_meta(id, uids).await.map_err(err)
    }

    async fn read_body(&self, m: &MessageInfo) -> StorageResult<Vec<u8>> {
        self.store.read_blob(&m.blob_hash).await.map_err(err)
    }

    async fn store_flags(
        &self,
        id: i64,
        uids: Vec<i64>,
        change: FlagChange,
    ) -> StorageResult<FlagResult> {
        let op = match change.op {
            FlagOp::Add => outpost_store::FlagOp::Add,
            FlagOp::Remove => outpost_store::FlagOp::Remove,
            FlagOp::Replace => outpost_store::FlagOp::Replace,
        };
        let r = self
            .store
            .store_flags(
                id,
                uids,
                op,
                change.flags,
                change.keywords,
                change.unchanged_since,
            )
            .await
            .map_err(err)?;
        Ok(FlagResult {
            modseq: r.modseq,
            changed: messages(r.changed),
            modified: r.modified,
        })
    }

    async fn append(&self, id: i64, list: Vec<NewMessage>) -> StorageResult<Vec<Appended>> {
        let items = list
            .into_iter()
            .map(|m| {
                let target = Target {
                    mailbox: id,
                    flags: m.flags,
                    keywords: m.keywords,
                };
                (m.data, vec![target], m.internal_date)
            })
            .collect();
        let filed = self.store.deliver_many(items).await.map_err(err)?;
        Ok(filed
            .iter()
            .filter_map(|copies| copies.first())
            .map(|d| Appended {
                uidvalidity: d.uidvalidity,
                uid: d.uid,
            })
            .collect())
    }

    async fn copy_messages(
        &self,
        from: i64,
        uids: &[i64],
        to: i64,
        remove: bool,
    ) -> StorageResult<Copied> {
        let (uidvalidity, pairs) = self
            .store
            .copy_messages(from, uids, to, remove)
            .await
            .map_err(err)?;
        Ok(Copied { uidvalidity, pairs })
    }

    async fn expunge(&self, id: i64, uids: Option<Vec<i64>>) -> StorageResult<Vec<i64>> {
        self.store.expunge(id, uids).await.map_err(err)
    }

    async fn changes_since(&self, id: i64, modseq: i64) -> StorageResult<Changes> {
        let (changed, expunged) = self.store.changes_since(id, modseq).await.map_err(err)?;
        // Read after the changes: the floor only rises, so a pruning in
        // between errs on the side of "too old" (RFC 7162 3.2.5.2's
        // fallback), never of a VANISHED list with holes.
        let state = self.store.journal_state(id).await.map_err(err)?;
        let expunged = if modseq < state.floor {
            Expunged::BeforeFloor
        } else {
            Expunged::Uids(expunged)
        };
        Ok(Changes {
            changed: messages(changed),
            expunged,
        })
    }

    async fn usage(&self, principal: i64) -> StorageResult<i64> {
        self.store.usage(principal).await.map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use outpost_store::{NewPrincipal, PrincipalKind};

    async fn below_floor(ts: outpost_store::testing::TestStore) {
        let store = ts.store.clone();
        store.add_domain("example.org").await.unwrap();
        let p = store
            .create_principal(NewPrincipal {
                kind: PrincipalKind::User,
                address: "bob@example.org".into(),
                display_name: "Bob".into(),
                password_hash: None,
                source: "local".into(),
                external_id: None,
                quota_bytes: 0,
            })
            .await
            .unwrap();
        let inbox = store.mailbox(p.id, "INBOX").await.unwrap().unwrap().id;
        let a = ImapStore {
            store: store.clone(),
        };
        let before = a.status(inbox).await.unwrap().highest_modseq;
        let mut list = Vec::new();
        for i in 0..3 {
            let raw = format!("Subject: {i}\r\n\r\nx\r\n");
            list.push(NewMessage {
                data: raw.into_bytes().into(),
                flags: outpost_mailmeta::flags::DELETED * (i % 2),
                keywords: vec![],
                internal_date: 1_700_000_000,
            });
        }
        a.append(inbox, list).await.unwrap();
        assert_eq!(a.expunge(inbox, None).await.unwrap(), vec![2]);
        let c = a.changes_since(inbox, before).await.unwrap();
        assert_eq!(c.expunged, Expunged::Uids(vec![2]));
        // Prune everything written so far: the floor rises past `before`.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        store.prune_journals(0).await.unwrap();
        let c = a.changes_since(inbox, before).await.unwrap();
        assert_eq!(c.expunged, Expunged::BeforeFloor);
        let uids: Vec<i64> = c.changed.iter().map(|m| m.uid).collect();
        assert_eq!(uids, vec![1, 3], "flag changes do not need the journal");
        let now = a.status(inbox).await.unwrap().highest_modseq;
        let c = a.changes_since(inbox, now).await.unwrap();
        assert_eq!(c.expunged, Expunged::Uids(vec![]));
    }

    #[tokio::test]
    async fn below_the_journal_floor_sqlite() {
        below_floor(outpost_store::testing::sqlite().await).await;
    }

    #[tokio::test]
    async fn below_the_journal_floor_postgres() {
        let Some(ts) = outpost_store::testing::postgres().await else {
            eprintln!("PostgreSQL not reachable; skipped");
            return;
        };
        below_floor(ts).await;
    }
}
