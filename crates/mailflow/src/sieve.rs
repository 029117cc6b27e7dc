//! Sieve at delivery: runs the global and personal scripts for each local
//! recipient (from [`crate::delivery`]) and carries out the outcome —
//! copies filed (one blob for all recipients with the same message bytes),
//! redirects delivered locally or queued, vacation replies and
//! notifications queued from the null sender.

use std::sync::Arc;

use outpost_config::RedirectSender;
use outpost_directory::{Lookup, Recipient};
use outpost_sieve::{ActiveScript, DeliveryEnvelope, Outcome, SieveHost};
use outpost_store::{NewQueued, QueuedRecipient, Store, StoreError, Target};
use tracing::{info, warn};

use crate::deliver::Filing;
use crate::srs::{is_srs, SrsError};
use crate::MailFlow;

/// Targets that get the same body: `None` is the message as received, `Some`
/// a version a Sieve `editheader` changed.
type Group = (Option<Arc<[u8]>>, Vec<Target>);

/// Where mail to an SRS address of a hosted domain goes.
pub enum SrsRoute {
    /// Not an SRS address of ours: resolve it as usual.
    NotSrs,
    /// A valid SRS address: send on to this (original sender's) address.
    Forward(String),
    /// Forged, broken or expired: refuse (550).
    Invalid(SrsError),
}

/// Received:/Delivered-To: fields beyond which a message is not redirected
/// again (a forwarding loop between servers).
const MAX_HOPS: usize = 30;

struct Host<'a> {
    store: &'a Store,
    principal: i64,
}

#[async_trait::async_trait]
impl SieveHost for Host<'_> {
    async fn mailbox_exists(&self, name: &str) -> bool {
        matches!(self.store.mailbox(self.principal, name).await, Ok(Some(_)))
    }
    async fn special_use_exists(&self, role: &str) -> bool {
        matches!(
            self.store.mailbox_by_role(self.principal, role).await,
            Ok(Some(_))
        )
    }
    async fn duplicate(&self, id: &str, period_secs: u64) -> bool {
        !self
            .store
            .vacation_should_send(self.principal, "", &format!("dup:{id}"), period_secs as i64)
            .await
            .unwrap_or(true)
    }
    async fn personal_script(&self, name: &str) -> Option<(String, i64)> {
        let s = self.store.sieve_get(self.principal, name).await.ok()??;
        Some((s.content, s.updated_at))
    }
}

/// What [`MailFlow::sieve_deliver`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Sieved {
    /// No script applies; nothing was done (the caller files into INBOX).
    NoScripts,
    /// Filed and sent as the scripts said.
    Delivered,
    /// The single recipient's script rejected the message and the caller
    /// may refuse it in the protocol (RFC 5429 §2.1): nothing was done.
    Refused(String),
}

impl MailFlow {
    /// Checks `address` for an SRS address in one of our domains (a bounce
    /// of forwarded mail coming back).
    pub async fn srs_route(&self, address: &str) -> Result<SrsRoute, StoreError> {
        let Some((local, domain)) = address.rsplit_once('@') else {
            return Ok(SrsRoute::NotSrs);
        };
        if !is_srs(local)
            || !self
                .dir
                .is_local_domain(&domain.to_ascii_lowercase())
                .await?
        {
            return Ok(SrsRoute::NotSrs);
        }
        let Some(srs) = self.srs() else {
            return Err(StoreError::Internal(
                "the SRS secret is not available".into(),
            ));
        };
        Ok(match srs.reverse(address, crate::deliver::unix_now()) {
            Ok(Some(to)) => SrsRoute::Forward(to),
            Ok(None) => SrsRoute::NotSrs,
            Err(e) => SrsRoute::Invalid(e),
        })
    }

    /// Runs Sieve for `recipients` and delivers accordingly. `raw` already
    /// carries our Return-Path. Returns [`Sieved::NoScripts`] without doing
    /// anything when no script applies (no global scripts, no active user
    /// script), so the caller takes its fast path. With `may_refuse` and one
    /// recipient, a reject/ereject is returned as [`Sieved::Refused`] instead
    /// of being answered with a rejection notice.
    pub(crate) async fn sieve_deliver(
        &self,
        return_path: &str,
        recipients: &[Recipient],
        raw: &Arc<[u8]>,
        now: i64,
        filing: Filing,
    ) -> Result<Sieved, StoreError> {
        let store = self.dir.store();
        let may_refuse = filing.may_refuse && recipients.len() == 1;
        let engine = &self.engine;
        let mut actives = Vec::with_capacity(recipients.len());
        for r in recipients {
            actives.push(store.sieve_active(r.principal_id).await?);
        }
        if !engine.has_global_scripts() && actives.iter().all(Option::is_none) {
            return Ok(Sieved::NoScripts);
        }
        // Message bytes (None: as delivered) -> targets.
        let mut groups: Vec<Group> = vec![(None, Vec::new())];
        for (r, active) in recipients.iter().zip(actives) {
            let active = active.map(|s| ActiveScript {
                owner: r.principal_id,
                name: s.name,
                content: s.content,
                updated_at: s.updated_at,
            });
            let name = store
                .principal(r.principal_id)
                .await?
                .map(|p| p.display_name)
                .unwrap_or_default();
            let env = DeliveryEnvelope {
                from: return_path.to_string(),
                to: r.address.clone(),
                to_name: name,
            };
            let host = Host {
                store,
                principal: r.principal_id,
            };
            let outcome = engine.run(raw, &env, active.as_ref(), &host).await;
            for n in &outcome.notes {
                info!(rcpt = %r.address, "sieve: {n}");
            }
            if let (true, Some(reason)) = (may_refuse, &outcome.reject) {
                info!(rcpt = %r.address, "sieve: message refused at end of data (reject)");
                return Ok(Sieved::Refused(reason.clone()));
            }
            self.file_copies(r, &outcome, filing.junk, &mut groups)
                .await?;
            self.send(r, return_path, raw, &outcome, now).await;
        }
        for (bytes, targets) in groups {
            if targets.is_empty() {
                continue;
            }
            let body = bytes.unwrap_or_else(|| raw.clone());
            store.deliver(body, targets, now).await?;
        }
        Ok(Sieved::Delivered)
    }

    /// Chooses the mailbox for one fileinto: the named one; for "Spam"/"Junk"
    /// without such a mailbox the \Junk special-use one; created with
    /// `:create`; otherwise INBOX (logged).
    async fn target_mailbox(
        &self,
        r: &Recipient,
        f: &outpost_sieve::FileInto,
    ) -> Result<i64, StoreError> {
        let store = self.dir.store();
        let p = r.principal_id;
        if f.mailbox.eq_ignore_ascii_case("INBOX") {
            return self.inbox(p).await;
        }
        if let Some(role) = &f.special_use {
            if let Some(m) = store.mailbox_by_role(p, role).await? {
                return Ok(m.id);
            }
        }
        if let Some(m) = store.mailbox(p, &f.mailbox).await? {
            return Ok(m.id);
        }
        if f.mailbox.eq_ignore_ascii_case("Junk") || f.mailbox.eq_ignore_ascii_case("Spam") {
            if let Some(m) = store.mailbox_by_role(p, "\\Junk").await? {
                return Ok(m.id);
            }
        }
        if f.create {
            match store.create_mailbox(p, &f.mailbox, None).await {
                Ok(m) => {
                    info!(rcpt = %r.address, mailbox = %f.mailbox, "sieve: created mailbox");
                    return Ok(m.id);
                }
                Err(StoreError::Exists(_)) => {
                    if let Some(m) = store.mailbox(p, &f.mailbox).await? {
                        return Ok(m.id);
                    }
                }
                Err(e) => {
                    warn!(rcpt = %r.address, mailbox = %f.mailbox, "sieve: cannot create mailbox ({e}); filing into INBOX");
                }
            }
        } else {
            info!(rcpt = %r.address, mailbox = %f.mailbox, "sieve: fileinto a missing mailbox without :create; filing into INBOX");
        }
        self.inbox(p).await
    }

    async fn file_copies(
        &self,
        r: &Recipient,
        outcome: &Outcome,
        junk: bool,
        groups: &mut Vec<Group>,
    ) -> Result<(), StoreError> {
        if outcome.reject.is_some() {
            return Ok(());
        }
        for f in &outcome.file_into {
            let mailbox = if junk && f.mailbox.eq_ignore_ascii_case("INBOX") {
                self.junk(r.principal_id).await?
            } else {
                self.target_mailbox(r, f).await?
            };
            let mut flags = 0;
            let mut keywords = Vec::new();
            for flag in &f.flags {
                match outpost_mailmeta::flags::SYSTEM_FLAGS
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(flag))
                {
                    Some((_, bit)) => flags |= bit,
                    None if !flag.starts_with('\\') && !flag.is_empty() => {
                        keywords.push(flag.clone())
                    }
                    None => {}
                }
            }
            let gi = match groups.iter().position(|(b, _)| *b == f.edited) {
                Some(i) => i,
                None => {
                    groups.push((f.edited.clone(), Vec::new()));
                    groups.len() - 1
                }
            };
            let targets = &mut groups[gi].1;
            // One copy per mailbox and message; flags merge.
            match targets.iter_mut().find(|t| t.mailbox == mailbox) {
                Some(t) => {
                    t.flags |= flags;
                    for k in keywords {
                        if !t.keywords.contains(&k) {
                            t.keywords.push(k);
                        }
                    }
                }
                None => targets.push(Target {
                    mailbox,
                    flags,
                    keywords,
                }),
            }
        }
        Ok(())
    }

    /// Redirects, vacation replies, notifications, reject notices. Failures
    /// are logged: the copies are filed regardless.
    async fn send(
        &self,
        r: &Recipient,
        return_path: &str,
        raw: &Arc<[u8]>,
        outcome: &Outcome,
        now: i64,
    ) {
        let store = self.dir.store();
        for rd in &outcome.redirects {
            if let Err(e) = self.redirect(r, return_path, raw, rd, now).await {
                warn!(rcpt = %r.address, to = %rd.address, "sieve: redirect failed: {e}");
            }
        }
        for v in &outcome.vacations {
            match store
                .vacation_should_send(r.principal_id, &v.to, &v.handle, v.period_secs as i64)
                .await
            {
                Ok(true) => {
                    let q = queued("", &v.to);
                    match store.enqueue(Arc::from(v.message.clone()), q).await {
                        Ok(id) => {
                            info!(rcpt = %r.address, to = %v.to, queue = id, "sieve: vacation reply queued")
                        }
                        Err(e) => {
                            warn!(rcpt = %r.address, "sieve: queueing vacation reply failed: {e}")
                        }
                    }
                }
                Ok(false) => {
                    info!(rcpt = %r.address, to = %v.to, "sieve: vacation already answered within its period")
                }
                Err(e) => warn!(rcpt = %r.address, "sieve: vacation log failed: {e}"),
            }
        }
        for n in &outcome.notifies {
            for to in &n.to {
                if let Err(e) = store
                    .enqueue(Arc::from(n.message.clone()), queued("", to))
                    .await
                {
                    warn!(rcpt = %r.address, "sieve: queueing notification failed: {e}");
                }
            }
        }
        if let Some(reason) = &outcome.reject {
            if outpost_sieve::no_auto_reply(raw, return_path).is_none() {
                let notice = format!(
                    "From: Mail Delivery System <MAILER-DAEMON@{domain}>\r\nTo: <{return_path}>\r\nSubject: Message rejected\r\nAuto-Submitted: auto-replied\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nYour message to <{rcpt}> was rejected by the recipient's filter:\r\n\r\n{reason}\r\n",
                    domain = outpost_store::domain_of(&r.address).unwrap_or("localhost"),
                    rcpt = r.address,
                );
                if let Err(e) = store
                    .enqueue(Arc::from(notice.into_bytes()), queued("", return_path))
                    .await
                {
                    warn!(rcpt = %r.address, "sieve: queueing reject notice failed: {e}");
                }
            }
            info!(rcpt = %r.address, "sieve: message rejected");
        }
    }

    /// Sends the message on unchanged but for a `Delivered-To:` naming the
    /// recipient (RFC 9228), refusing when that field is already there (a
    /// loop) or the message has passed too many hops. Local targets are
    /// delivered at once (their own scripts run), others are queued.
    async fn redirect(
        &self,
        r: &Recipient,
        return_path: &str,
        raw: &Arc<[u8]>,
        rd: &outpost_sieve::Redirect,
        now: i64,
    ) -> Result<(), StoreError> {
        let store = self.dir.store();
        let body: &[u8] = rd.edited.as_deref().unwrap_or(raw);
        // Our own Return-Path goes; the next delivery adds its own.
        let body = strip_first_return_path(body);
        let (delivered_to, hops) = trace_fields(body, &r.address);
        if delivered_to {
            warn!(rcpt = %r.address, to = %rd.address, "sieve: redirect loop (Delivered-To already names the recipient); not sent");
            return Ok(());
        }
        if hops >= MAX_HOPS {
            warn!(rcpt = %r.address, to = %rd.address, "sieve: redirect refused after {hops} hops");
            return Ok(());
        }
        let mut out = Vec::with_capacity(body.len() + r.address.len() + 20);
        out.extend_from_slice(format!("Delivered-To: {}\r\n", r.address).as_bytes());
        out.extend_from_slice(body);
        match self.dir.resolve(&rd.address).await? {
            Lookup::Local(res) => {
                let users: Vec<Recipient> = res
                    .users
                    .into_iter()
                    .filter(|u| u.principal_id != r.principal_id)
                    .collect();
                if !users.is_empty() {
                    Box::pin(self.deliver_local(return_path, &users, &out)).await?;
                    info!(rcpt = %r.address, to = %rd.address, "sieve: redirected locally");
                }
                let sender = self.forwarding_sender(&r.address, return_path, now).await;
                for x in res.external {
                    store
                        .enqueue(Arc::from(out.clone()), queued(&sender, &x))
                        .await?;
                }
            }
            Lookup::Unknown => {
                warn!(rcpt = %r.address, to = %rd.address, "sieve: redirect to an unknown local address; not sent");
            }
            Lookup::NotLocal => {
                let sender = self.forwarding_sender(&r.address, return_path, now).await;
                let id = store
                    .enqueue(Arc::from(out), queued(&sender, &rd.address))
                    .await?;
                info!(rcpt = %r.address, to = %rd.address, from = %sender, queue = id, "sieve: redirect queued");
            }
        }
        Ok(())
    }

    /// The envelope sender for mail sent on to another server by the hosted
    /// address `via` (a Sieve redirect, or a group or alias with outside
    /// members): SRS-rewritten into `via`'s domain unless `[sieve]
    /// redirect_sender = "original"`, the sender is null, or it is in a hosted
    /// domain (SPF passes for those already).
    pub async fn forwarding_sender(&self, via: &str, return_path: &str, now: i64) -> String {
        let store = self.dir.store();
        if self.redirect_sender == RedirectSender::Original || return_path.is_empty() {
            return return_path.to_string();
        }
        let Some(sender_domain) = outpost_store::domain_of(return_path) else {
            return return_path.to_string();
        };
        let hosted = matches!(
            store.domain(&sender_domain.to_ascii_lowercase()).await,
            Ok(Some(_))
        );
        if hosted && !is_srs(return_path) {
            return return_path.to_string();
        }
        let Some(our_domain) = outpost_store::domain_of(via) else {
            return return_path.to_string();
        };
        match self.srs() {
            Some(srs) => srs.forward(return_path, our_domain, now),
            None => {
                warn!(rcpt = %via, "no SRS secret; forwarding with the original sender");
                return_path.to_string()
            }
        }
    }
}

pub(crate) fn queued(from: &str, to: &str) -> NewQueued {
    NewQueued {
        mail_from: from.to_string(),
        recipients: vec![QueuedRecipient {
            address: to.to_string(),
            notify: Some("never".into()),
            orcpt: None,
        }],
        body: "8bitmime".into(),
        ..NewQueued::default()
    }
}

fn strip_first_return_path(m: &[u8]) -> &[u8] {
    if m.len() > 12 && m[..12].eq_ignore_ascii_case(b"return-path:") {
        if let Some(p) = m.iter().position(|&b| b == b'\n') {
            return &m[p + 1..];
        }
    }
    m
}

/// (a Delivered-To: field names `rcpt`, number of Received:/Delivered-To:
/// fields) in the header section.
fn trace_fields(m: &[u8], rcpt: &str) -> (bool, usize) {
    let end = m
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(m.len());
    let head = String::from_utf8_lossy(&m[..end]);
    let mut hops = 0;
    let mut looped = false;
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("received") {
            hops += 1;
        } else if name.eq_ignore_ascii_case("delivered-to") {
            hops += 1;
            let v = value.trim().trim_start_matches('<').trim_end_matches('>');
            if v.eq_ignore_ascii_case(rcpt) {
                looped = true;
            }
        }
    }
    (looped, hops)
}
