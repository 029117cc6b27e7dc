//! Local delivery: recipients resolved, Sieve run, copies filed. SMTP (MX,
//! LMTP, and the local recipients of a submission), `outpost deliver`,
//! Sieve redirects and delivery notices all file mail through here.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use outpost_directory::{Lookup, Recipient, Resolution};
use outpost_store::{NewQueued, QueuedRecipient, StoreError, Target};
use tracing::{info, warn};

use crate::sieve::{Sieved, SrsRoute};
use crate::{Envelope, Failure, MailFlow};

/// Remembers each user's INBOX id, so that a delivery does not have to look
/// it up every time (a collection's id never changes). A stale entry (the
/// user or mailbox was removed) shows as `NotFound` from the store; the
/// delivery then forgets the entries it used and looks them up again once.
#[derive(Default)]
pub(crate) struct InboxCache {
    ids: Mutex<HashMap<i64, i64>>,
}

impl InboxCache {
    /// Bound on remembered users; past it the cache starts over.
    const MAX: usize = 100_000;

    fn get(&self, principal: i64) -> Option<i64> {
        self.ids.lock().unwrap().get(&principal).copied()
    }

    fn put(&self, principal: i64, mailbox: i64) {
        let mut ids = self.ids.lock().unwrap();
        if ids.len() >= Self::MAX {
            ids.clear();
        }
        ids.insert(principal, mailbox);
    }

    fn forget(&self, principals: impl Iterator<Item = i64>) {
        let mut ids = self.ids.lock().unwrap();
        for p in principals {
            ids.remove(&p);
        }
    }
}

/// Recent RCPT-time resolutions, by lower-cased address, so that delivery
/// files the message where the RCPT reply promised without asking the
/// directory again. Every transaction resolves its recipients at RCPT,
/// which (re)writes the entry, so the entry that delivery finds is never
/// older than its own transaction's lookup unless it was dropped or
/// expired; then delivery asks the directory again. A lookup that no
/// longer finds the address removes the entry.
#[derive(Default)]
pub(crate) struct ResolvedCache {
    map: Mutex<HashMap<String, (Instant, Resolution)>>,
}

impl ResolvedCache {
    /// Longer than any normal transaction; older entries are looked up again.
    const TTL: Duration = Duration::from_secs(120);
    /// Past this many entries, expired ones are dropped (then all, if need be).
    const MAX: usize = 20_000;

    fn put(&self, address: &str, res: Resolution) {
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

    fn get(&self, address: &str) -> Option<Resolution> {
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

/// What became of a delivery.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivered {
    /// Filed (and whatever the scripts sent is queued).
    Done,
    /// The recipient's Sieve script rejected it, and the caller asked to
    /// refuse in the protocol rather than send a rejection notice.
    Refused(String),
}

/// How a delivery is filed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Filing {
    /// With a single recipient, a Sieve reject/ereject comes back as
    /// [`Delivered::Refused`] (nothing stored), for the SMTP/LMTP server to
    /// answer 550 5.7.1 (RFC 5429 §2.1).
    pub may_refuse: bool,
    /// File as junk: what would go to INBOX (the implicit keep included)
    /// goes to the recipient's \Junk mailbox (DMARC `p=quarantine`).
    pub junk: bool,
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl MailFlow {
    /// Where mail to `address` goes: an SRS address of ours (a bounce of
    /// forwarded mail) leads back to the original sender (sent on through
    /// the queue), a forged or expired one is unknown; `postmaster@` our
    /// host name is a hosted domain's postmaster; anything else is the
    /// directory's answer.
    pub async fn lookup(&self, address: &str) -> Result<Lookup, StoreError> {
        match self.srs_route(address).await? {
            SrsRoute::NotSrs => {
                let address = self.postmaster_route(address).await?;
                self.dir.resolve(&address).await
            }
            SrsRoute::Forward(to) => {
                info!("SRS address {address} leads back to {to}");
                Ok(Lookup::Local(Resolution {
                    users: Vec::new(),
                    external: vec![to],
                }))
            }
            SrsRoute::Invalid(e) => {
                info!("refused {address}: {e}");
                Ok(Lookup::Unknown)
            }
        }
    }

    /// [`MailFlow::lookup`] at RCPT time: the answer is remembered for the
    /// delivery that follows ([`MailFlow::deliver`]).
    pub async fn resolve_recipient(&self, address: &str) -> Result<Lookup, StoreError> {
        let lookup = self.lookup(address).await?;
        match &lookup {
            Lookup::Local(res) => self.resolved.put(address, res.clone()),
            Lookup::Unknown | Lookup::NotLocal => self.resolved.forget(address),
        }
        Ok(lookup)
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

    /// Delivers `message` to the hosted recipients of `envelope` (all
    /// resolved as local): aliases and groups expanded, Sieve run, copies
    /// filed, outside members of groups queued with an SRS sender, success
    /// notices sent. Durable when it returns `Ok`. One result per
    /// recipient, in order: one result for all of them, unless
    /// `envelope.per_recipient` (LMTP), where each recipient is delivered
    /// on its own, so that one recipient's Sieve reject refuses only that
    /// recipient (as Pigeonhole does behind Dovecot's LMTP); a user reached
    /// through two recipients still gets one copy.
    pub async fn deliver(&self, envelope: &Envelope, message: &[u8]) -> Vec<Result<(), Failure>> {
        if envelope.per_recipient && envelope.recipients.len() > 1 {
            let mut done = HashSet::new();
            let mut out = Vec::with_capacity(envelope.recipients.len());
            for r in &envelope.recipients {
                let one = Envelope {
                    recipients: vec![r.clone()],
                    ..envelope.clone()
                };
                out.extend(self.deliver_set(&one, message, &mut done).await);
            }
            return out;
        }
        self.deliver_set(envelope, message, &mut HashSet::new())
            .await
    }

    /// Delivers to every recipient of `envelope` in one go: one result for
    /// all of them. Users in `done` already have the message (or refused it)
    /// and are left out; the users this delivery reaches are added.
    async fn deliver_set(
        &self,
        envelope: &Envelope,
        message: &[u8],
        done: &mut HashSet<i64>,
    ) -> Vec<Result<(), Failure>> {
        let n = envelope.recipients.len();
        let mut users: Vec<Recipient> = Vec::new();
        // Outside members of groups (and aliases), with the hosted address
        // that expanded to them (it signs the SRS sender).
        let mut external: Vec<(QueuedRecipient, &str)> = Vec::new();
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
                                QueuedRecipient {
                                    address: x,
                                    notify: r.notify.map(|n| n.as_text()),
                                    orcpt: None,
                                },
                                r.address.as_str(),
                            ));
                        }
                    }
                }
                Ok(_) => {
                    return vec![
                        Err(Failure::Temporary(format!(
                            "{} no longer resolves",
                            r.address
                        )));
                        n
                    ];
                }
                Err(e) => return vec![Err(Failure::from(&e)); n],
            }
        }
        users.retain(|u| !done.contains(&u.principal_id));
        // One recipient that is one mailbox: a Sieve reject can refuse the
        // message in the protocol instead of sending a notice afterwards.
        let may_refuse = n == 1 && users.len() == 1 && external.is_empty();
        let res = self
            .file(
                true,
                &envelope.mail_from,
                &users,
                message,
                Filing {
                    may_refuse,
                    junk: envelope.junk,
                },
            )
            .await;
        let res = match res {
            Ok(Delivered::Done) => self.queue_external(envelope, external, message).await,
            Ok(Delivered::Refused(why)) => {
                // Its script has decided: another recipient of the same
                // transaction that reaches this user does not ask again.
                done.extend(users.iter().map(|u| u.principal_id));
                info!(
                    session = envelope.session_id,
                    "{} refused: the recipient's Sieve script rejects it", envelope.message_id
                );
                let text = if why.trim().is_empty() {
                    "Message rejected by the recipient's filter".to_string()
                } else {
                    format!(
                        "Message rejected: {}",
                        why.split_whitespace().collect::<Vec<_>>().join(" ")
                    )
                };
                return vec![Err(Failure::Policy(text)); n];
            }
            Err(e) => Err(e),
        };
        match res {
            Ok(()) => {
                done.extend(users.iter().map(|u| u.principal_id));
                info!(
                    session = envelope.session_id,
                    "delivered {} to {} mailbox(es)",
                    envelope.message_id,
                    users.len()
                );
                self.success_notices(envelope, message).await;
                vec![Ok(()); n]
            }
            Err(e) => {
                warn!(
                    session = envelope.session_id,
                    "delivery of {} failed: {e}", envelope.message_id
                );
                vec![Err(Failure::from(&e)); n]
            }
        }
    }

    /// Queues the message for outside members of groups and aliases. The
    /// envelope sender is SRS-rewritten into the forwarding address's
    /// domain, as for a Sieve redirect (`[sieve] redirect_sender`): one
    /// queue entry per resulting sender.
    async fn queue_external(
        &self,
        envelope: &Envelope,
        addresses: Vec<(QueuedRecipient, &str)>,
        message: &[u8],
    ) -> Result<(), StoreError> {
        let now = unix_now();
        let mut by_sender: Vec<(String, Vec<QueuedRecipient>)> = Vec::new();
        for (rcpt, via) in addresses {
            let sender = self.forwarding_sender(via, &envelope.mail_from, now).await;
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
    /// `mail_from` and the rest of `envelope`'s parameters. Queued mail
    /// gets a Return-Path only when it is finally delivered.
    pub(crate) async fn enqueue_as(
        &self,
        envelope: &Envelope,
        mail_from: String,
        recipients: Vec<QueuedRecipient>,
        message: &[u8],
    ) -> Result<i64, StoreError> {
        let q = NewQueued {
            mail_from,
            recipients,
            envid: envelope.envid.clone(),
            ret: envelope.ret.map(|r| match r {
                crate::Ret::Full => "full".to_string(),
                crate::Ret::Headers => "headers".to_string(),
            }),
            body: envelope.body.as_str().to_string(),
            smtputf8: envelope.smtputf8,
            submitted_by: envelope.submitted_by,
        };
        let id = self.dir.store().enqueue(Arc::from(message), q).await?;
        info!(
            session = envelope.session_id,
            "queued for outbound delivery as {id}"
        );
        Ok(id)
    }

    /// Delivers one message to local users (already resolved). The blob is
    /// stored once and every copy is filed in one transaction; returns
    /// after it is durable. `return_path` is the envelope sender ("" for
    /// the null sender). A Sieve reject is answered with a notice.
    pub async fn deliver_local(
        &self,
        return_path: &str,
        recipients: &[Recipient],
        message: &[u8],
    ) -> Result<(), StoreError> {
        Box::pin(self.file(false, return_path, recipients, message, Filing::default()))
            .await
            .map(|_| ())
    }

    /// Files a message for `recipients`: Return-Path added, Sieve run,
    /// copies filed (INBOX when no script applies, with the INBOX ids kept
    /// in the cache when `cached`). Once filed, calendar parts go to the
    /// iMIP handler ([`crate::imip`]).
    pub(crate) async fn file(
        &self,
        cached: bool,
        return_path: &str,
        recipients: &[Recipient],
        message: &[u8],
        filing: Filing,
    ) -> Result<Delivered, StoreError> {
        let done = self
            .file_unhooked(cached, return_path, recipients, message, filing)
            .await?;
        if done == Delivered::Done {
            self.imip_received(return_path, recipients, message).await;
        }
        Ok(done)
    }

    async fn file_unhooked(
        &self,
        cached: bool,
        return_path: &str,
        recipients: &[Recipient],
        message: &[u8],
        filing: Filing,
    ) -> Result<Delivered, StoreError> {
        if recipients.is_empty() {
            return Ok(Delivered::Done);
        }
        let store = self.dir.store();
        let cache = cached.then_some(&self.inboxes);
        let mut raw = Vec::with_capacity(message.len() + return_path.len() + 20);
        raw.extend_from_slice(format!("Return-Path: <{return_path}>\r\n").as_bytes());
        raw.extend_from_slice(&strip_return_path(message));
        let raw: Arc<[u8]> = Arc::from(raw);
        let now = unix_now();
        // Sieve chooses the mailboxes when a global or personal script applies.
        match self
            .sieve_deliver(return_path, recipients, &raw, now, filing)
            .await?
        {
            Sieved::NoScripts => {}
            Sieved::Delivered => return Ok(Delivered::Done),
            Sieved::Refused(why) => return Ok(Delivered::Refused(why)),
        }
        if filing.junk {
            let mut targets = Vec::with_capacity(recipients.len());
            for r in recipients {
                targets.push(Target {
                    mailbox: self.junk(r.principal_id).await?,
                    flags: 0,
                    keywords: Vec::new(),
                });
            }
            store.deliver(raw, targets, now).await?;
            return Ok(Delivered::Done);
        }
        let targets = self.inbox_targets(cache, recipients).await?;
        match store.deliver(raw.clone(), targets, now).await {
            Err(StoreError::NotFound(_)) if cache.is_some() => {
                let cache = cache.unwrap();
                cache.forget(recipients.iter().map(|r| r.principal_id));
                let targets = self.inbox_targets(Some(cache), recipients).await?;
                store.deliver(raw, targets, now).await?;
            }
            r => {
                r?;
            }
        }
        Ok(Delivered::Done)
    }

    async fn inbox_targets(
        &self,
        cache: Option<&InboxCache>,
        recipients: &[Recipient],
    ) -> Result<Vec<Target>, StoreError> {
        let mut targets = Vec::with_capacity(recipients.len());
        for r in recipients {
            let cached = cache.and_then(|c| c.get(r.principal_id));
            let id = match cached {
                Some(id) => id,
                None => {
                    let id = self.inbox(r.principal_id).await?;
                    if let Some(c) = cache {
                        c.put(r.principal_id, id);
                    }
                    id
                }
            };
            targets.push(Target {
                mailbox: id,
                flags: 0,
                keywords: Vec::new(),
            });
        }
        Ok(targets)
    }

    /// The user's mailbox with special use `role` (e.g. `\Junk`,
    /// `\Sent`), INBOX when it has none.
    pub(crate) async fn mailbox_by_role(
        &self,
        principal: i64,
        role: &str,
    ) -> Result<i64, StoreError> {
        match self.dir.store().mailbox_by_role(principal, role).await? {
            Some(m) => Ok(m.id),
            None => {
                self.dir.store().ensure_default_mailboxes(principal).await?;
                match self.dir.store().mailbox_by_role(principal, role).await? {
                    Some(m) => Ok(m.id),
                    None => self.inbox(principal).await,
                }
            }
        }
    }

    /// The user's \Junk mailbox (INBOX when it has none).
    pub(crate) async fn junk(&self, principal: i64) -> Result<i64, StoreError> {
        self.mailbox_by_role(principal, "\\Junk").await
    }

    /// The user's INBOX id; creates the default mailboxes when missing.
    pub(crate) async fn inbox(&self, principal: i64) -> Result<i64, StoreError> {
        let store = self.dir.store();
        if let Some(m) = store.mailbox(principal, "INBOX").await? {
            return Ok(m.id);
        }
        store.ensure_default_mailboxes(principal).await?;
        store
            .mailbox(principal, "INBOX")
            .await?
            .map(|m| m.id)
            .ok_or_else(|| StoreError::Internal(format!("no INBOX for principal {principal}")))
    }
}

/// RFC 5321 4.4: the delivering server adds Return-Path; any a client
/// supplied is dropped (as Postfix's `message_drop_headers` does). Looks at
/// the whole header section, not just its start: the SMTP server has put
/// its `Received:` in front of the client's fields by now.
fn strip_return_path(message: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let mut pos = 0;
    while pos < message.len() {
        let rest = &message[pos..];
        // An empty line ends the header section.
        if rest.starts_with(b"\r\n") || rest.starts_with(b"\n") {
            break;
        }
        // The field runs to the end of its last folded continuation line.
        let mut end = pos;
        loop {
            match message[end..].iter().position(|&b| b == b'\n') {
                Some(p) => {
                    end += p + 1;
                    if !matches!(message.get(end), Some(b' ') | Some(b'\t')) {
                        break;
                    }
                }
                None => {
                    end = message.len();
                    break;
                }
            }
        }
        let field = &message[pos..end];
        let name = field
            .iter()
            .position(|&b| b == b':')
            .map(|c| field[..c].trim_ascii_end());
        let drop = name.is_some_and(|n| n.eq_ignore_ascii_case(b"return-path"));
        match (&mut out, drop) {
            (None, true) => out = Some(message[..pos].to_vec()),
            (Some(o), false) => o.extend_from_slice(field),
            _ => {}
        }
        pos = end;
    }
    match out {
        Some(mut o) => {
            o.extend_from_slice(&message[pos..]);
            std::borrow::Cow::Owned(o)
        }
        None => std::borrow::Cow::Borrowed(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_return_path_is_dropped() {
        assert_eq!(
            strip_return_path(b"Return-Path: <x@y>\r\nSubject: a\r\n\r\nb"),
            b"Subject: a\r\n\r\nb".as_slice()
        );
        assert_eq!(
            strip_return_path(b"return-path: <x@y>\r\n <z>\r\nA: b\r\n"),
            b"A: b\r\n".as_slice()
        );
        assert_eq!(
            strip_return_path(b"Subject: a\r\n"),
            b"Subject: a\r\n".as_slice()
        );
    }

    #[test]
    fn return_path_below_received_is_dropped_too() {
        let m = b"Received: from x\r\n\tby y; date\r\nReturn-Path : <f@e>\r\nSubject: s\r\n\r\nReturn-Path: <body>\r\n";
        assert_eq!(
            strip_return_path(m),
            b"Received: from x\r\n\tby y; date\r\nSubject: s\r\n\r\nReturn-Path: <body>\r\n"
                .as_slice()
        );
        let lf = b"A: 1\nreturn-path: <x>\nB: 2\n\nbody";
        assert_eq!(strip_return_path(lf), b"A: 1\nB: 2\n\nbody".as_slice());
        // Not a field name, only a prefix of one.
        let other = b"Return-Path-X: 1\r\n\r\n";
        assert_eq!(strip_return_path(other), other.as_slice());
    }
}
