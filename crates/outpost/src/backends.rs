//! The protocol crates' backend traits, implemented on the store and the
//! directory. Each protocol asks only for what it needs.

use std::sync::Arc;

use async_trait::async_trait;
use outpost_directory::Directory;
use outpost_pop3::{MaildropEntry, Pop3Backend, Pop3User, TempFail};
use outpost_store::{Store, StoreError};

pub struct Pop3Store {
    pub dir: Directory,
}

fn temp(e: StoreError) -> TempFail {
    TempFail(e.to_string())
}

impl Pop3Store {
    fn store(&self) -> &Store {
        self.dir.store()
    }

    async fn inbox(&self, user: &Pop3User) -> Result<outpost_store::Mailbox, TempFail> {
        let id: i64 = user
            .id
            .parse()
            .map_err(|_| TempFail(format!("bad user id {}", user.id)))?;
        match self.store().mailbox(id, "INBOX").await.map_err(temp)? {
            Some(m) => Ok(m),
            None => {
                self.store()
                    .ensure_default_mailboxes(id)
                    .await
                    .map_err(temp)?;
                self.store()
                    .mailbox(id, "INBOX")
                    .await
                    .map_err(temp)?
                    .ok_or_else(|| TempFail("no INBOX".into()))
            }
        }
    }
}

#[async_trait]
impl Pop3Backend for Pop3Store {
    async fn authenticate(
        &self,
        login: &str,
        password: &str,
    ) -> Result<Option<Pop3User>, TempFail> {
        Ok(self
            .dir
            .authenticate(login, password)
            .await
            .map_err(temp)?
            .map(|p| Pop3User {
                id: p.id.to_string(),
                name: p.address.unwrap_or_default(),
            }))
    }

    async fn open_maildrop(&self, user: &Pop3User) -> Result<Vec<MaildropEntry>, TempFail> {
        let inbox = self.inbox(user).await?;
        let list = self.store().message_list(inbox.id).await.map_err(temp)?;
        // The store keeps messages with CRLF line endings, so the POP3 size
        // (pop3::wire_size) is the stored size, plus the CRLF that POP3 adds
        // when a message (e.g. from `outpost deliver` or IMAP APPEND) lacks
        // a final one. Only the blob's last two bytes tell.
        let blobs = self.store().blobs().clone();
        let sized = tokio::task::spawn_blocking(move || {
            list.into_iter()
                .map(|m| {
                    let extra = if m.size > 0 && !ends_with_crlf(&blobs.path(&m.blob_hash)) {
                        2
                    } else {
                        0
                    };
                    (m.uid, m.size as u64 + extra)
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| TempFail(e.to_string()))?;
        Ok(sized
            .into_iter()
            .map(|(uid, size)| MaildropEntry {
                id: uid as u64,
                size,
                uidl: format!("{:08x}{:08x}", inbox.uidvalidity, uid),
            })
            .collect())
    }

    async fn read(&self, user: &Pop3User, id: u64) -> Result<Option<Vec<u8>>, TempFail> {
        let inbox = self.inbox(user).await?;
        let msg = self
            .store()
            .message_by_uid(inbox.id, id as i64)
            .await
            .map_err(temp)?;
        match msg {
            Some(m) => match self.store().read_blob(&m.blob_hash).await {
                Ok(b) => Ok(Some(b)),
                Err(StoreError::NotFound(_)) => Ok(None),
                Err(e) => Err(temp(e)),
            },
            None => Ok(None),
        }
    }

    async fn expunge(&self, user: &Pop3User, ids: &[u64]) -> Result<(), TempFail> {
        let inbox = self.inbox(user).await?;
        let uids: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
        self.store()
            .store_flags(
                inbox.id,
                uids.clone(),
                outpost_store::FlagOp::Add,
                outpost_store::DELETED,
                vec![],
                None,
            )
            .await
            .map_err(temp)?;
        self.store()
            .expunge(inbox.id, Some(uids))
            .await
            .map_err(temp)?;
        Ok(())
    }
}

/// True if the file ends in CRLF (a missing or unreadable file counts as
/// true: RETR will report it, and the size then matters to no one).
fn ends_with_crlf(path: &std::path::Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return true;
    };
    match f.metadata() {
        Ok(m) if m.len() < 2 => return false,
        Ok(_) => {}
        Err(_) => return true,
    }
    let mut tail = [0u8; 2];
    if f.seek(SeekFrom::End(-2)).is_err() || f.read_exact(&mut tail).is_err() {
        return true;
    }
    tail == *b"\r\n"
}

pub fn pop3_backend(dir: Directory) -> Arc<dyn Pop3Backend> {
    Arc::new(Pop3Store { dir })
}
