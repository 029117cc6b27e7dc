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

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use outpost_directory::Lookup;
use outpost_smtp::{DeliverError, Envelope, Rcpt, SmtpBackend};

/// SPF/DKIM/DMARC on mail from other servers, and what to do with DMARC
/// reject and quarantine verdicts.
pub struct InboundChecks {
    pub auth: outpost_queue::inbound::InboundAuth,
    pub dmarc_reject: bool,
    pub dmarc_quarantine_junk: bool,
}

pub struct SmtpStore {
    pub dir: Directory,
    inbound: Option<InboundChecks>,
    /// INBOX ids by user, for delivery.
    inboxes: crate::delivery::InboxCache,
    /// What each local address resolved to at RCPT time, so that delivery
    /// files the message where the RCPT reply promised without asking the
    /// directory again (the issue: "recipients resolved at RCPT time").
    resolved: ResolvedCache,
    /// Our host name, the Reporting-MTA of success notices.
    hostname: String,
}

/// Recent RCPT-time resolutions, by lower-cased address. Every transaction
/// resolves its recipients at RCPT, which (re)writes the entry, so the entry
/// that `deliver` finds is never older than its own transaction's lookup
/// unless it was dropped or expired; then `deliver` asks the directory
/// again. A lookup that no longer finds the address removes the entry.
#[derive(Default)]
struct ResolvedCache {
    map: std::sync::Mutex<HashMap<String, (Instant, outpost_directory::Resolution)>>,
}

impl ResolvedCache {
    /// Longer than any normal transaction; older entries are looked up again.
    const TTL: Duration = Duration::from_secs(120);
    /// Past this many entries, expired ones are dropped (then all, if need be).
    const MAX: usize = 20_000;

    fn put(&self, address: &str, res: outpost_directory::Resolution) {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap();
        if map.len() >= Self::MAX {
            map.retain(|_, (at, _)| now.duration_since(*at) < Self::TTL);
            if map.len() >= Self::MAX {
                map.clear();
            }
        }
        map.insert(address.to_ascii_lowercase(), (now, res));
    }

    fn get(&self, address: &str) -> Option<outpost_directory::Resolution> {
        let map = self.map.lock().unwrap();
        match map.get(&address.to_ascii_lowercase()) {
            Some((at, res)) if at.elapsed() < Self::TTL => Some(res.clone()),
            _ => None,
        }
    }

    fn forget(&self, address: &str) {
        self.map
            .lock()
            .unwrap()
            .remove(&address.to_ascii_lowercase());
    }
}

fn deliver_error(e: &StoreError) -> DeliverError {
    match e {
        StoreError::Full(m) => DeliverError::StorageFull(m.clone()),
        StoreError::NotFound(m) | StoreError::Invalid(m) => DeliverError::Permanent(m.clone()),
        other => DeliverError::Temporary(other.to_string()),
    }
}

impl SmtpStore {
    /// NOTIFY=SUCCESS (RFC 3461): tells the sender which of its local
    /// recipients got the message. Headers only; never for the null sender.
    /// A failure to send the notice is logged; the delivery stands.
    async fn success_notices(&self, envelope: &Envelope, message: &[u8]) {
        if envelope.mail_from.is_empty() {
            return;
        }
        let recipients: Vec<outpost_queue::dsn::DsnRecipient> = envelope
            .recipients
            .iter()
            .filter(|r| r.notify.is_some_and(|n| n.success))
            .map(|r| outpost_queue::dsn::DsnRecipient {
                address: r.address.clone(),
                orcpt: r.orcpt.clone(),
                action: outpost_queue::dsn::Action::Delivered,
                diagnostic: "delivered to the mailbox".into(),
            })
            .collect();
        if recipients.is_empty() {
            return;
        }
        let now = outpost_store::now();
        let report = outpost_queue::dsn::build(&outpost_queue::dsn::Report {
            reporting_mta: &self.hostname,
            to: &envelope.mail_from,
            envid: envelope.envid.as_deref(),
            arrival: now,
            now,
            recipients: &recipients,
            original: message,
            full: false,
            retry_until: None,
        });
        let local = crate::outbound::LocalDsn {
            dir: self.dir.clone(),
        };
        match outpost_queue::dsn::dispatch(self.dir.store(), &local, &envelope.mail_from, report)
            .await
        {
            Ok(how) => tracing::info!(
                session = envelope.session_id,
                "success notice for {} to {}: {how}",
                envelope.message_id,
                envelope.mail_from
            ),
            Err(e) => tracing::warn!(
                session = envelope.session_id,
                "success notice for {} not sent: {e}",
                envelope.message_id
            ),
        }
    }

    /// The directory's answer for `address`, after checking whether it is
    /// an SRS address of ours (a bounce of redirected mail): a valid one
    /// resolves to the original sender (sent on through the queue), a
    /// forged or expired one is unknown (550).
    async fn lookup(&self, address: &str) -> Result<Lookup, StoreError> {
        use crate::sieve_delivery::SrsRoute;
        match crate::sieve_delivery::srs_route(&self.dir, address).await? {
            SrsRoute::NotSrs => {
                let address = self.postmaster_route(address).await?;
                self.dir.resolve(&address).await
            }
            SrsRoute::Forward(to) => {
                tracing::info!("SRS address {address} leads back to {to}");
                Ok(Lookup::Local(outpost_directory::Resolution {
                    users: Vec::new(),
                    external: vec![to],
                }))
            }
            SrsRoute::Invalid(e) => {
                tracing::info!("refused {address}: {e}");
                Ok(Lookup::Unknown)
            }
        }
    }

    /// `postmaster@<this server's name>`, which the SMTP server makes of an
    /// unqualified `RCPT TO:<Postmaster>` (RFC 5321 §4.1.1.3), is the
    /// postmaster of the hosted domain the server's name is in
    /// (`mail.example.org` → `example.org`), else of the first hosted
    /// domain. Any other address is returned as it is.
    async fn postmaster_route(&self, address: &str) -> Result<String, StoreError> {
        let Some((local, domain)) = address.rsplit_once('@') else {
            return Ok(address.to_string());
        };
        if !local.eq_ignore_ascii_case("postmaster") || !domain.eq_ignore_ascii_case(&self.hostname)
        {
            return Ok(address.to_string());
        }
        let mut d = domain.to_ascii_lowercase();
        loop {
            if self.dir.is_local_domain(&d).await? {
                return Ok(format!("postmaster@{d}"));
            }
            match d.split_once('.') {
                Some((_, parent)) if parent.contains('.') => d = parent.to_string(),
                _ => break,
            }
        }
        Ok(match self.dir.store().domains().await?.first() {
            Some(first) => format!("postmaster@{}", first.name),
            None => address.to_string(),
        })
    }

    /// Delivers to every recipient of `envelope` in one go: one result for
    /// all of them. Users in `done` already have the message (or refused it)
    /// and are left out; the users this delivery reaches are added.
    async fn deliver_set(
        &self,
        envelope: &Envelope,
        message: bytes::Bytes,
        done: &mut HashSet<i64>,
    ) -> Vec<Result<(), DeliverError>> {
        let n = envelope.recipients.len();
        let mut users: Vec<outpost_directory::Recipient> = Vec::new();
        // Outside members of groups (and aliases), with the hosted address
        // that expanded to them (it signs the SRS sender).
        let mut external: Vec<(outpost_store::QueuedRecipient, &str)> = Vec::new();
        for r in &envelope.recipients {
            let lookup = match self.resolved.get(&r.address) {
                Some(res) => Ok(Lookup::Local(res)),
                None => self.lookup(&r.address).await,
            };
            match lookup {
                Ok(Lookup::Local(res)) => {
                    for u in res.users {
                        if !users.iter().any(|x| x.principal_id == u.principal_id) {
                            users.push(u);
                        }
                    }
                    for x in res.external {
                        if !external.iter().any(|(e, _)| e.address == x) {
                            external.push((
                                outpost_store::QueuedRecipient {
                                    address: x,
                                    notify: notify_text(&r.notify),
                                    orcpt: None,
                                },
                                r.address.as_str(),
                            ));
                        }
                    }
                }
                Ok(_) => {
                    return vec![
                        Err(DeliverError::Temporary(format!(
                            "{} no longer resolves",
                            r.address
                        )));
                        n
                    ];
                }
                Err(e) => return vec![Err(deliver_error(&e)); n],
            }
        }
        users.retain(|u| !done.contains(&u.principal_id));
        // One recipient that is one mailbox: a Sieve reject can refuse the
        // message in the protocol instead of sending a notice afterwards.
        let may_refuse = n == 1 && users.len() == 1 && external.is_empty();
        let res = crate::delivery::deliver_local_cached(
            self.dir.store(),
            Some(&self.inboxes),
            &envelope.mail_from,
            &users,
            &message,
            crate::delivery::Filing {
                may_refuse,
                junk: envelope.junk,
            },
        )
        .await;
        let res = match res {
            Ok(crate::delivery::Delivered::Done) => self.queue(envelope, external, &message).await,
            Ok(crate::delivery::Delivered::Refused(why)) => {
                // Its script has decided: another recipient of the same
                // transaction that reaches this user does not ask again.
                done.extend(users.iter().map(|u| u.principal_id));
                tracing::info!(
                    session = envelope.session_id,
                    "{} refused: the recipient's Sieve script rejects it",
                    envelope.message_id
                );
                let text = if why.trim().is_empty() {
                    "Message rejected by the recipient's filter".to_string()
                } else {
                    format!(
                        "Message rejected: {}",
                        why.split_whitespace().collect::<Vec<_>>().join(" ")
                    )
                };
                return vec![Err(DeliverError::Policy(text)); n];
            }
            Err(e) => Err(e),
        };
        match res {
            Ok(()) => {
                done.extend(users.iter().map(|u| u.principal_id));
                tracing::info!(
                    session = envelope.session_id,
                    "delivered {} to {} mailbox(es)",
                    envelope.message_id,
                    users.len()
                );
                self.success_notices(envelope, &message).await;
                vec![Ok(()); n]
            }
            Err(e) => {
                tracing::warn!(
                    session = envelope.session_id,
                    "delivery of {} failed: {e}",
                    envelope.message_id
                );
                vec![Err(deliver_error(&e)); n]
            }
        }
    }

    /// Queues the message for outside members of groups and aliases. The
    /// envelope sender is SRS-rewritten into the forwarding address's
    /// domain, as for a Sieve redirect (`[sieve] redirect_sender`): one
    /// queue entry per resulting sender.
    async fn queue(
        &self,
        envelope: &Envelope,
        addresses: Vec<(outpost_store::QueuedRecipient, &str)>,
        message: &[u8],
    ) -> Result<(), StoreError> {
        let now = outpost_store::now();
        let mut by_sender: Vec<(String, Vec<outpost_store::QueuedRecipient>)> = Vec::new();
        for (rcpt, via) in addresses {
            let sender = crate::sieve_delivery::forwarding_sender(
                self.dir.store(),
                via,
                &envelope.mail_from,
                now,
            )
            .await;
            match by_sender.iter_mut().find(|(s, _)| *s == sender) {
                Some((_, list)) => list.push(rcpt),
                None => by_sender.push((sender, vec![rcpt])),
            }
        }
        for (sender, recipients) in by_sender {
            self.enqueue_as(envelope, sender, recipients, message)
                .await?;
        }
        Ok(())
    }

    /// Queues the message for `recipients` with the envelope sender
    /// `mail_from`.
    async fn enqueue_as(
        &self,
        envelope: &Envelope,
        mail_from: String,
        recipients: Vec<outpost_store::QueuedRecipient>,
        message: &[u8],
    ) -> Result<(), StoreError> {
        let q = outpost_store::NewQueued {
            mail_from,
            recipients,
            envid: envelope.envid.clone(),
            ret: envelope.ret.map(|r| match r {
                outpost_smtp::Ret::Full => "full".to_string(),
                outpost_smtp::Ret::Headers => "headers".to_string(),
            }),
            body: match envelope.body {
                outpost_smtp::Body::SevenBit => "7bit",
                outpost_smtp::Body::EightBitMime => "8bitmime",
                outpost_smtp::Body::BinaryMime => "binarymime",
            }
            .to_string(),
            smtputf8: envelope.smtputf8,
            submitted_by: envelope.auth.as_ref().map(|a| a.principal_id),
        };
        let id = self.dir.store().enqueue(Arc::from(message), q).await?;
        tracing::info!(
            session = envelope.session_id,
            "queued for outbound delivery as {id}"
        );
        Ok(())
    }
}

fn notify_text(n: &Option<outpost_smtp::Notify>) -> Option<String> {
    n.map(|n| {
        let mut v = Vec::new();
        if n.success {
            v.push("success");
        }
        if n.failure {
            v.push("failure");
        }
        if n.delay {
            v.push("delay");
        }
        if v.is_empty() {
            "never".to_string()
        } else {
            v.join(",")
        }
    })
}

#[async_trait]
impl SmtpBackend for SmtpStore {
    async fn may_send_as(&self, user: &AuthUser, address: &str) -> Result<bool, TempFail> {
        if address.is_empty() {
            return Ok(false);
        }
        self.dir
            .may_send_as(user.principal_id, address)
            .await
            .map_err(temp)
    }

    async fn resolve_recipient(&self, address: &str) -> Result<Rcpt, TempFail> {
        Ok(match self.lookup(address).await.map_err(temp)? {
            Lookup::Local(res) => {
                self.resolved.put(address, res);
                Rcpt::Local
            }
            Lookup::Unknown => {
                self.resolved.forget(address);
                Rcpt::UnknownLocal
            }
            Lookup::NotLocal => {
                self.resolved.forget(address);
                Rcpt::Remote
            }
        })
    }

    async fn deliver(
        &self,
        envelope: &Envelope,
        message: bytes::Bytes,
    ) -> Vec<Result<(), DeliverError>> {
        // LMTP answers each recipient: deliver them one by one, so that one
        // recipient's Sieve reject refuses only that recipient (as
        // Pigeonhole does behind Dovecot's LMTP). A user reached through
        // two recipients still gets one copy.
        if envelope.per_recipient && envelope.recipients.len() > 1 {
            let mut done = HashSet::new();
            let mut out = Vec::with_capacity(envelope.recipients.len());
            for r in &envelope.recipients {
                let one = Envelope {
                    recipients: vec![r.clone()],
                    ..envelope.clone()
                };
                out.extend(self.deliver_set(&one, message.clone(), &mut done).await);
            }
            return out;
        }
        self.deliver_set(envelope, message, &mut HashSet::new())
            .await
    }

    async fn check_inbound(
        &self,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<outpost_smtp::Inbound, DeliverError> {
        let Some(checks) = &self.inbound else {
            return Ok(outpost_smtp::Inbound::default());
        };
        let v = checks
            .auth
            .check(
                envelope.peer_ip,
                &envelope.helo,
                &envelope.mail_from,
                message,
            )
            .await;
        if v.dmarc_reject && checks.dmarc_reject {
            tracing::info!(
                session = envelope.session_id,
                "refused: DMARC policy of the From: domain is reject"
            );
            return Err(DeliverError::Policy(
                "Message refused: it fails the DMARC policy (p=reject) of its From: domain".into(),
            ));
        }
        let junk = v.dmarc_quarantine && checks.dmarc_quarantine_junk;
        if junk {
            tracing::info!(
                session = envelope.session_id,
                "filing as junk: DMARC policy of the From: domain is quarantine"
            );
        }
        Ok(outpost_smtp::Inbound {
            prepend: v.header.into_bytes(),
            junk,
        })
    }

    async fn enqueue(
        &self,
        envelope: &Envelope,
        message: bytes::Bytes,
    ) -> Result<(), DeliverError> {
        let rcpts = envelope
            .recipients
            .iter()
            .map(|r| outpost_store::QueuedRecipient {
                address: r.address.clone(),
                notify: notify_text(&r.notify),
                orcpt: r.orcpt.clone(),
            })
            .collect();
        // Queued mail gets a Return-Path only when it is finally delivered.
        self.enqueue_as(envelope, envelope.mail_from.clone(), rcpts, &message)
            .await
            .map_err(|e| deliver_error(&e))
    }
}

pub fn smtp_backend(
    dir: Directory,
    inbound: Option<InboundChecks>,
    hostname: &str,
) -> Arc<dyn SmtpBackend> {
    Arc::new(SmtpStore {
        dir,
        inbound,
        inboxes: Default::default(),
        resolved: Default::default(),
        hostname: hostname.to_string(),
    })
}
