//! The storage ActiveSync needs (`outpost_activesync::EasBackend`) over
//! the store: devices and their policy keys, sync states, mail folders as
//! ActiveSync folders (ServerId = collection id), messages by UID.

use async_trait::async_trait;
use outpost_activesync::{
    BackendError, Device, EasBackend, Folder, FolderOpError, Journal, MailItem, StoredState,
};
use outpost_directory::Directory;
use outpost_store::activesync::{EasDevice, EasSyncState};
use outpost_store::{
    FlagOp, Mailbox, MessageInfo, Since, StoreError, ANSWERED, DELETED, FLAGGED, SEEN,
};

pub struct EasStore {
    dir: Directory,
    flow: std::sync::Arc<outpost_mailflow::MailFlow>,
}

impl EasStore {
    pub fn new(flow: std::sync::Arc<outpost_mailflow::MailFlow>) -> EasStore {
        EasStore {
            dir: flow.directory().clone(),
            flow,
        }
    }
}

fn unavailable(e: outpost_store::StoreError) -> BackendError {
    BackendError::Unavailable(e.to_string())
}

/// The FolderSync Type of a mailbox (MS-ASCMD 2.2.3.186.3).
fn folder_type(mb: &Mailbox) -> u8 {
    if mb.name == "INBOX" {
        return 2;
    }
    match mb.special_use.as_deref() {
        Some("\\Drafts") => 3,
        Some("\\Trash") => 4,
        Some("\\Sent") => 5,
        _ => 12,
    }
}

fn is_special(mb: &Mailbox) -> bool {
    folder_type(mb) != 12
}

/// Mailboxes as folders: the parent is the nearest existing ancestor by
/// name (`a/b/c` under `a/b`, or under `a` when there is no `a/b`), the
/// display name what is left of the name below it.
fn as_folders(mailboxes: &[Mailbox]) -> Vec<Folder> {
    let by_name: std::collections::HashMap<&str, i64> =
        mailboxes.iter().map(|m| (m.name.as_str(), m.id)).collect();
    mailboxes
        .iter()
        .map(|m| {
            let mut parent = 0;
            let mut display = m.name.as_str();
            let mut prefix = m.name.as_str();
            while let Some((p, _)) = prefix.rsplit_once('/') {
                if let Some(&id) = by_name.get(p) {
                    parent = id;
                    display = &m.name[p.len() + 1..];
                    break;
                }
                prefix = p;
            }
            Folder {
                id: m.id,
                parent,
                name: display.to_string(),
                folder_type: folder_type(m),
            }
        })
        .collect()
}

fn item(m: &MessageInfo) -> MailItem {
    MailItem {
        uid: m.uid,
        modseq: m.modseq,
        internal_date: m.internal_date,
        read: m.flags & SEEN != 0,
        flagged: m.flags & FLAGGED != 0,
        answered: m.flags & ANSWERED != 0,
        forwarded: m
            .keywords
            .iter()
            .any(|k| k.eq_ignore_ascii_case("$Forwarded")),
        keywords: m.keywords.clone(),
    }
}

fn stored(s: EasSyncState) -> StoredState {
    StoredState {
        sync_key: s.sync_key,
        state: s.state,
        prev_key: s.prev_key,
        prev_answer: s.prev_answer,
    }
}

impl EasStore {
    /// The principal's own mailbox `id`.
    async fn own(&self, principal: i64, id: i64) -> Result<Option<Mailbox>, BackendError> {
        Ok(self
            .dir
            .store()
            .mailbox_by_id(id)
            .await
            .map_err(unavailable)?
            .filter(|m| m.principal_id == principal))
    }

    /// The full mailbox name for `display` under folder `parent` (0: top).
    async fn full_name(
        &self,
        principal: i64,
        parent: i64,
        display: &str,
    ) -> Result<Result<String, FolderOpError>, BackendError> {
        let display = display.trim();
        if display.is_empty() || display.contains('/') || display.chars().any(char::is_control) {
            return Ok(Err(FolderOpError::Invalid));
        }
        if parent == 0 {
            return Ok(Ok(display.to_string()));
        }
        match self.own(principal, parent).await? {
            Some(p) => Ok(Ok(format!("{}/{display}", p.name))),
            None => Ok(Err(FolderOpError::ParentMissing)),
        }
    }
}

#[async_trait]
impl EasBackend for EasStore {
    async fn device(
        &self,
        principal: i64,
        device_id: &str,
    ) -> Result<Option<Device>, BackendError> {
        let d = self
            .dir
            .store()
            .eas_device(principal, device_id)
            .await
            .map_err(unavailable)?;
        Ok(d.map(|d| Device {
            device_type: d.device_type,
            user_agent: d.user_agent,
            policy_key: d.policy_key,
            pending_key: d.pending_key,
            wipe_requested: d.wipe_requested.is_some(),
            wipe_acknowledged: d.wipe_acknowledged.is_some(),
        }))
    }

    async fn put_device(
        &self,
        principal: i64,
        device_id: &str,
        device: &Device,
    ) -> Result<(), BackendError> {
        let store = self.dir.store();
        let old = store
            .eas_device(principal, device_id)
            .await
            .map_err(unavailable)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        // Keep the times the wipe was asked for and acknowledged.
        let wipe_requested = device
            .wipe_requested
            .then(|| old.as_ref().and_then(|o| o.wipe_requested).unwrap_or(now));
        let wipe_acknowledged = device.wipe_acknowledged.then(|| {
            old.as_ref()
                .and_then(|o| o.wipe_acknowledged)
                .unwrap_or(now)
        });
        store
            .eas_put_device(
                principal,
                &EasDevice {
                    device_id: device_id.to_string(),
                    device_type: device.device_type.clone(),
                    user_agent: device.user_agent.clone(),
                    policy_key: device.policy_key,
                    pending_key: device.pending_key,
                    wipe_requested,
                    wipe_acknowledged,
                    last_seen: now,
                },
            )
            .await
            .map_err(unavailable)
    }

    async fn folders(&self, principal: i64) -> Result<Vec<Folder>, BackendError> {
        let mailboxes = self
            .dir
            .store()
            .mailboxes(principal)
            .await
            .map_err(unavailable)?;
        Ok(as_folders(&mailboxes))
    }

    async fn hierarchy_seq(&self, principal: i64) -> Result<i64, BackendError> {
        Ok(self
            .dir
            .store()
            .principal_journal_state(principal)
            .await
            .map_err(unavailable)?
            .highest)
    }

    async fn create_folder(
        &self,
        principal: i64,
        parent: i64,
        name: &str,
        folder_type: u8,
    ) -> Result<Result<i64, FolderOpError>, BackendError> {
        // Mail folders only: calendars and contacts come with their
        // classes (type 1 is "generic", which clients use for mail too).
        if folder_type != 12 && folder_type != 1 {
            return Ok(Err(FolderOpError::Invalid));
        }
        let full = match self.full_name(principal, parent, name).await? {
            Ok(n) => n,
            Err(e) => return Ok(Err(e)),
        };
        match self
            .dir
            .store()
            .create_mailbox(principal, &full, None)
            .await
        {
            Ok(mb) => Ok(Ok(mb.id)),
            Err(StoreError::Exists(_)) => Ok(Err(FolderOpError::Exists)),
            Err(StoreError::Invalid(_)) => Ok(Err(FolderOpError::Invalid)),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn update_folder(
        &self,
        principal: i64,
        id: i64,
        parent: i64,
        name: &str,
    ) -> Result<Result<(), FolderOpError>, BackendError> {
        let Some(mb) = self.own(principal, id).await? else {
            return Ok(Err(FolderOpError::NotFound));
        };
        if is_special(&mb) {
            return Ok(Err(FolderOpError::Special));
        }
        if parent == id {
            return Ok(Err(FolderOpError::ParentMissing));
        }
        let full = match self.full_name(principal, parent, name).await? {
            Ok(n) => n,
            Err(e) => return Ok(Err(e)),
        };
        if full == mb.name {
            return Ok(Ok(()));
        }
        if full.starts_with(&format!("{}/", mb.name)) {
            // Into its own subtree.
            return Ok(Err(FolderOpError::ParentMissing));
        }
        match self
            .dir
            .store()
            .rename_mailbox(principal, &mb.name, &full)
            .await
        {
            Ok(()) => Ok(Ok(())),
            Err(StoreError::Exists(_)) => Ok(Err(FolderOpError::Exists)),
            Err(StoreError::NotFound(_)) => Ok(Err(FolderOpError::NotFound)),
            Err(StoreError::Invalid(_)) => Ok(Err(FolderOpError::Invalid)),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn delete_folder(
        &self,
        principal: i64,
        id: i64,
    ) -> Result<Result<(), FolderOpError>, BackendError> {
        let Some(mb) = self.own(principal, id).await? else {
            return Ok(Err(FolderOpError::NotFound));
        };
        if is_special(&mb) {
            return Ok(Err(FolderOpError::Special));
        }
        // The folders below go too: a device shows a tree, and deleting a
        // folder there deletes what is in it.
        let store = self.dir.store();
        let mut doomed: Vec<Mailbox> = store
            .mailboxes(principal)
            .await
            .map_err(unavailable)?
            .into_iter()
            .filter(|m| m.id == mb.id || m.name.starts_with(&format!("{}/", mb.name)))
            .collect();
        doomed.sort_by_key(|m| std::cmp::Reverse(m.name.len()));
        for m in doomed {
            match store.delete_mailbox(m.id).await {
                Ok(()) | Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(unavailable(e)),
            }
        }
        Ok(Ok(()))
    }

    async fn sync_state(
        &self,
        principal: i64,
        device_id: &str,
        collection: i64,
    ) -> Result<Option<StoredState>, BackendError> {
        Ok(self
            .dir
            .store()
            .eas_sync_state(principal, device_id, collection)
            .await
            .map_err(unavailable)?
            .map(stored))
    }

    async fn put_sync_state(
        &self,
        principal: i64,
        device_id: &str,
        collection: i64,
        expected: Option<i64>,
        state: &StoredState,
    ) -> Result<bool, BackendError> {
        self.dir
            .store()
            .eas_put_sync_state(
                principal,
                device_id,
                collection,
                expected,
                &EasSyncState {
                    sync_key: state.sync_key,
                    state: state.state.clone(),
                    prev_key: state.prev_key,
                    prev_answer: state.prev_answer.clone(),
                },
            )
            .await
            .map_err(unavailable)
    }

    async fn journal(
        &self,
        principal: i64,
        collection: i64,
        since: i64,
    ) -> Result<Journal, BackendError> {
        if self.own(principal, collection).await?.is_none() {
            return Ok(Journal::Missing);
        }
        match self.dir.store().journal_since(collection, since).await {
            Ok(Since::Changes(c)) => Ok(Journal::Changes {
                highest: c.highest_modseq,
                live: c
                    .added
                    .iter()
                    .chain(c.changed.iter())
                    .map(|i| (i.item, i.modseq))
                    .collect(),
                removed: c.removed.iter().map(|t| (t.item, t.modseq)).collect(),
            }),
            Ok(Since::TooOld(_)) => Ok(Journal::TooOld),
            Err(StoreError::NotFound(_)) => Ok(Journal::Missing),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn mail_point(
        &self,
        principal: i64,
        collection: i64,
    ) -> Result<Option<(i64, i64)>, BackendError> {
        Ok(self
            .own(principal, collection)
            .await?
            .map(|m| (m.highest_modseq, m.uidnext)))
    }

    async fn mail_below(
        &self,
        principal: i64,
        collection: i64,
        below: i64,
        since: i64,
        limit: usize,
    ) -> Result<Vec<MailItem>, BackendError> {
        if self.own(principal, collection).await?.is_none() {
            return Ok(Vec::new());
        }
        let list = self
            .dir
            .store()
            .messages_below(collection, below, since, limit as i64)
            .await
            .map_err(unavailable)?;
        Ok(list.iter().map(item).collect())
    }

    async fn mail_count_below(
        &self,
        principal: i64,
        collection: i64,
        below: i64,
        since: i64,
    ) -> Result<i64, BackendError> {
        if self.own(principal, collection).await?.is_none() {
            return Ok(0);
        }
        self.dir
            .store()
            .count_below(collection, below, since)
            .await
            .map_err(unavailable)
    }

    async fn mail_item(
        &self,
        principal: i64,
        collection: i64,
        uid: i64,
    ) -> Result<Option<MailItem>, BackendError> {
        if self.own(principal, collection).await?.is_none() {
            return Ok(None);
        }
        Ok(self
            .dir
            .store()
            .message_by_uid(collection, uid)
            .await
            .map_err(unavailable)?
            .as_ref()
            .map(item))
    }

    async fn mail_raw(
        &self,
        principal: i64,
        collection: i64,
        uid: i64,
    ) -> Result<Option<Vec<u8>>, BackendError> {
        if self.own(principal, collection).await?.is_none() {
            return Ok(None);
        }
        let store = self.dir.store();
        let Some(m) = store
            .message_by_uid(collection, uid)
            .await
            .map_err(unavailable)?
        else {
            return Ok(None);
        };
        match store.read_blob(&m.blob_hash).await {
            Ok(b) => Ok(Some(b)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn set_mail_flags(
        &self,
        principal: i64,
        collection: i64,
        uid: i64,
        read: Option<bool>,
        flagged: Option<bool>,
    ) -> Result<Option<i64>, BackendError> {
        if self.own(principal, collection).await?.is_none() {
            return Ok(None);
        }
        let store = self.dir.store();
        let Some(m) = store
            .message_by_uid(collection, uid)
            .await
            .map_err(unavailable)?
        else {
            return Ok(None);
        };
        let mut modseq = m.modseq;
        for (want, bit) in [(read, SEEN), (flagged, FLAGGED)] {
            let Some(on) = want else { continue };
            if (m.flags & bit != 0) == on {
                continue;
            }
            let op = if on { FlagOp::Add } else { FlagOp::Remove };
            let r = store
                .store_flags(collection, vec![uid], op, bit, vec![], None)
                .await
                .map_err(unavailable)?;
            if r.modseq > 0 {
                modseq = r.modseq;
            }
        }
        Ok(Some(modseq))
    }

    async fn move_mail(
        &self,
        principal: i64,
        from: i64,
        uids: &[i64],
        to: i64,
    ) -> Result<Vec<(i64, i64)>, BackendError> {
        if self.own(principal, from).await?.is_none() || self.own(principal, to).await?.is_none() {
            return Ok(Vec::new());
        }
        match self.dir.store().copy_messages(from, uids, to, true).await {
            Ok((_, moved)) => Ok(moved),
            Err(StoreError::NotFound(_)) => Ok(Vec::new()),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn expunge_mail(
        &self,
        principal: i64,
        collection: i64,
        uids: &[i64],
    ) -> Result<Vec<i64>, BackendError> {
        if self.own(principal, collection).await?.is_none() {
            return Ok(Vec::new());
        }
        let store = self.dir.store();
        store
            .store_flags(
                collection,
                uids.to_vec(),
                FlagOp::Add,
                DELETED,
                vec![],
                None,
            )
            .await
            .map_err(unavailable)?;
        store
            .expunge(collection, Some(uids.to_vec()))
            .await
            .map_err(unavailable)
    }

    async fn out_of_office(
        &self,
        principal: i64,
    ) -> Result<outpost_activesync::settings::Oof, BackendError> {
        use outpost_sieve::oof::{Audience, OofState};
        let o = self
            .flow
            .out_of_office(principal)
            .await
            .map_err(|e| BackendError::Unavailable(e.to_string()))?;
        Ok(outpost_activesync::settings::Oof {
            state: match o.state {
                OofState::Disabled => 0,
                OofState::Enabled => 1,
                OofState::Scheduled => 2,
            },
            start: o.start,
            end: o.end,
            internal: o.internal_reply,
            external: o.external_reply,
            audience: match o.external_audience {
                Audience::None => 0,
                Audience::Known => 1,
                Audience::All => 2,
            },
        })
    }

    async fn set_out_of_office(
        &self,
        principal: i64,
        oof: &outpost_activesync::settings::Oof,
    ) -> Result<bool, BackendError> {
        use outpost_sieve::oof::{Audience, OofState, OutOfOffice};
        // The subject is not an ActiveSync setting: keep the one set
        // elsewhere.
        let old = self
            .flow
            .out_of_office(principal)
            .await
            .map_err(|e| BackendError::Unavailable(e.to_string()))?;
        let new = OutOfOffice {
            state: match oof.state {
                1 => OofState::Enabled,
                2 => OofState::Scheduled,
                _ => OofState::Disabled,
            },
            start: oof.start,
            end: oof.end,
            subject: old.subject,
            internal_reply: oof.internal.clone(),
            external_reply: oof.external.clone(),
            external_audience: match oof.audience {
                1 => Audience::Known,
                2 => Audience::All,
                _ => Audience::None,
            },
        };
        match self.flow.set_out_of_office(principal, &new).await {
            Ok(()) => Ok(true),
            Err(e) => {
                tracing::warn!("activesync: out-of-office not set: {e}");
                Ok(false)
            }
        }
    }

    async fn addresses(&self, principal: i64) -> Result<Vec<String>, BackendError> {
        self.dir
            .addresses_of(principal)
            .await
            .map_err(|e| BackendError::Unavailable(e.to_string()))
    }

    fn watch(&self, collection: i64) -> Option<tokio::sync::watch::Receiver<i64>> {
        Some(self.dir.store().subscribe(collection))
    }
}
