//! The protocol crates' backend traits, implemented on the store and the
//! directory. Each protocol asks only for what it needs.

use std::sync::Arc;

use async_trait::async_trait;
use outpost_directory::Directory;
use outpost_net::{AuthUser, Authenticator, TempFail};
use outpost_pop3::{MaildropEntry, Pop3Backend};
use outpost_store::{Store, StoreError};

// --- Logins (every protocol) -----------------------------------------------

/// The one directory check behind every listener's
/// [`outpost_net::AuthLayer`].
pub struct DirectoryAuth {
    pub dir: Directory,
}

#[async_trait]
impl Authenticator for DirectoryAuth {
    async fn authenticate(
        &self,
        login: &str,
        password: &str,
    ) -> Result<Option<AuthUser>, TempFail> {
        let p = self
            .dir
            .authenticate(login, password)
            .await
            .map_err(|e| TempFail(e.to_string()))?;
        Ok(p.map(|p| AuthUser {
            principal_id: p.id,
            login: p.address.unwrap_or_else(|| login.to_string()),
            quota_bytes: p.quota_bytes,
        }))
    }
}

pub fn authenticator(dir: Directory) -> Arc<dyn Authenticator> {
    Arc::new(DirectoryAuth { dir })
}

// --- POP3 ------------------------------------------------------------------

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

    async fn inbox(&self, user: &AuthUser) -> Result<outpost_store::Mailbox, TempFail> {
        let id = user.principal_id;
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
    async fn open_maildrop(&self, user: &AuthUser) -> Result<Vec<MaildropEntry>, TempFail> {
        let inbox = self.inbox(user).await?;
        let list = self.store().message_list(inbox.id).await.map_err(temp)?;
        // The store keeps messages with CRLF line endings, so the POP3 size
        // (pop3::wire_size) is the stored size, plus the CRLF that POP3 adds
        // when a non-empty message (e.g. from `outpost deliver` or IMAP
        // APPEND) lacks a final one (RFC 1939 §3: a multi-line response
        // ends with CRLF "." CRLF, so the last line must be terminated).
        let open = self
            .store()
            .uids_not_ending_in_crlf(inbox.id)
            .await
            .map_err(temp)?;
        let sized = list.into_iter().map(|m| {
            let extra = if m.size > 0 && open.contains(&m.uid) {
                2
            } else {
                0
            };
            (m.uid, m.size as u64 + extra)
        });
        Ok(sized
            .into_iter()
            .map(|(uid, size)| MaildropEntry {
                id: uid as u64,
                size,
                uidl: format!("{:08x}{:08x}", inbox.uidvalidity, uid),
            })
            .collect())
    }

    async fn read(&self, user: &AuthUser, id: u64) -> Result<Option<Vec<u8>>, TempFail> {
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

    async fn expunge(&self, user: &AuthUser, ids: &[u64]) -> Result<(), TempFail> {
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

pub fn pop3_backend(dir: Directory) -> Arc<dyn Pop3Backend> {
    Arc::new(Pop3Store { dir })
}

// --- SMTP ------------------------------------------------------------------

use outpost_directory::Lookup;
use outpost_mailflow::{Failure, MailFlow};
use outpost_smtp::{DeliverError, Envelope, Rcpt, SmtpBackend};

/// The SMTP server's backend: it only translates types; everything about
/// the mail itself is the mail flow's (crate outpost-mailflow), and logins
/// are the shared AuthLayer's.
pub struct SmtpStore {
    flow: Arc<MailFlow>,
}

fn deliver_error(e: Failure) -> DeliverError {
    match e {
        Failure::StorageFull(m) => DeliverError::StorageFull(m),
        Failure::Temporary(m) => DeliverError::Temporary(m),
        Failure::Permanent(m) => DeliverError::Permanent(m),
        Failure::Policy(m) => DeliverError::Policy(m),
        Failure::Unresolved(m) => DeliverError::Unresolved(m),
    }
}

/// The mail flow's view of an SMTP envelope.
fn flow_envelope(e: &Envelope) -> outpost_mailflow::Envelope {
    outpost_mailflow::Envelope {
        mail_from: e.mail_from.clone(),
        recipients: e
            .recipients
            .iter()
            .map(|r| outpost_mailflow::Rcpt {
                address: r.address.clone(),
                notify: r.notify.map(|n| outpost_mailflow::Notify {
                    success: n.success,
                    failure: n.failure,
                    delay: n.delay,
                }),
                orcpt: r.orcpt.clone(),
            })
            .collect(),
        envid: e.envid.clone(),
        ret: e.ret.map(|r| match r {
            outpost_smtp::Ret::Full => outpost_mailflow::Ret::Full,
            outpost_smtp::Ret::Headers => outpost_mailflow::Ret::Headers,
        }),
        body: match e.body {
            outpost_smtp::Body::SevenBit => outpost_mailflow::Body::SevenBit,
            outpost_smtp::Body::EightBitMime => outpost_mailflow::Body::EightBitMime,
            outpost_smtp::Body::BinaryMime => outpost_mailflow::Body::BinaryMime,
        },
        smtputf8: e.smtputf8,
        submitted_by: e.auth.as_ref().map(|a| a.principal_id),
        session_id: e.session_id,
        message_id: e.message_id.clone(),
        junk: e.junk,
        per_recipient: e.per_recipient,
    }
}

#[async_trait]
impl SmtpBackend for SmtpStore {
    async fn may_send_as(&self, user: &AuthUser, address: &str) -> Result<bool, TempFail> {
        self.flow
            .may_send_as(user.principal_id, address)
            .await
            .map_err(temp)
    }

    async fn resolve_recipient(&self, address: &str) -> Result<Rcpt, TempFail> {
        Ok(
            match self.flow.resolve_recipient(address).await.map_err(temp)? {
                Lookup::Local(_) => Rcpt::Local,
                Lookup::Unknown => Rcpt::UnknownLocal,
                Lookup::NotLocal => Rcpt::Remote,
            },
        )
    }

    async fn deliver(
        &self,
        envelope: &Envelope,
        message: bytes::Bytes,
    ) -> Vec<Result<(), DeliverError>> {
        self.flow
            .deliver(&flow_envelope(envelope), &message)
            .await
            .into_iter()
            .map(|r| r.map_err(deliver_error))
            .collect()
    }

    async fn check_inbound(
        &self,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<outpost_smtp::Inbound, DeliverError> {
        let v = self
            .flow
            .check_inbound(
                envelope.session_id,
                envelope.peer_ip,
                &envelope.helo,
                &envelope.mail_from,
                message,
            )
            .await
            .map_err(deliver_error)?;
        Ok(outpost_smtp::Inbound {
            prepend: v.prepend,
            junk: v.junk,
        })
    }

    /// Mail for other servers from an authenticated session: a submission
    /// by its principal. The client keeps its own Sent copy (over IMAP).
    async fn enqueue(
        &self,
        envelope: &Envelope,
        message: bytes::Bytes,
    ) -> Result<(), DeliverError> {
        use outpost_mailflow::SubmitError;
        let Some(user) = &envelope.auth else {
            return Err(DeliverError::Permanent(
                "relaying needs an authenticated session".into(),
            ));
        };
        let options = outpost_mailflow::SubmitOptions { save_sent: false };
        match self
            .flow
            .submit(
                user.principal_id,
                &flow_envelope(envelope),
                &message,
                options,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(SubmitError::Failed(e)) => Err(deliver_error(e)),
            Err(SubmitError::NotAllowed(a)) => Err(DeliverError::Policy(format!(
                "Sender address <{a}> not owned by user {}",
                user.login
            ))),
            Err(e) => Err(DeliverError::Permanent(e.to_string())),
        }
    }
}

pub fn smtp_backend(flow: Arc<MailFlow>) -> Arc<dyn SmtpBackend> {
    Arc::new(SmtpStore { flow })
}

// --- Autodiscover ----------------------------------------------------------

/// The user's addresses and display name, for Autodiscover's check that a
/// user asks about an address of their own.
pub struct AutodiscoverAccounts {
    pub dir: Directory,
}

#[async_trait]
impl outpost_autodiscover::Accounts for AutodiscoverAccounts {
    async fn addresses(&self, user: &AuthUser) -> Result<(String, Vec<String>), String> {
        let addresses = self
            .dir
            .addresses_of(user.principal_id)
            .await
            .map_err(|e| e.to_string())?;
        let name = self
            .dir
            .store()
            .principal(user.principal_id)
            .await
            .map_err(|e| e.to_string())?
            .map(|p| p.display_name)
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| user.login.clone());
        Ok((name, addresses))
    }

    async fn domains(&self) -> Result<Vec<String>, String> {
        let domains = self
            .dir
            .store()
            .domains()
            .await
            .map_err(|e| e.to_string())?;
        Ok(domains
            .into_iter()
            .map(|d| d.name.to_ascii_lowercase())
            .collect())
    }
}
