//! Submission: a principal sends a message. Every way of sending (SMTP
//! submission today; ActiveSync SendMail/SmartReply, EWS CreateItem, JMAP
//! EmailSubmission and web compose to come) calls [`MailFlow::submit`],
//! and whether a principal may use an address is decided in one place,
//! [`MailFlow::may_send_as`] (the SMTP session asks it for MAIL FROM and
//! each `From:` address while the transaction is open; `submit` asks it
//! again for what it is given, so no caller can skip it).

use std::sync::Arc;

use mail_parser::{HeaderName, HeaderValue, MessageParser};
use outpost_directory::Lookup;
use outpost_store::{QueuedRecipient, StoreError, Target};
use tracing::{info, warn};

use crate::{Envelope, Failure, MailFlow};

/// How a submission is carried out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubmitOptions {
    /// File a copy (marked \Seen) in the sender's \Sent mailbox. SMTP
    /// clients keep their own copy over IMAP and leave this off;
    /// ActiveSync (SaveInSentItems), EWS and web compose ask for it.
    pub save_sent: bool,
}

/// What a submission did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Submitted {
    /// The queue entry for the recipients elsewhere, if there were any.
    pub queued: Option<i64>,
    /// Hosted recipients delivered to.
    pub delivered: usize,
    /// The mailbox the Sent copy went to, when one was asked for and
    /// filed (a failure to file it is logged: the message is sent all the
    /// same, and reporting failure would only make the client send it
    /// twice).
    pub sent_copy: Option<i64>,
}

/// Why a submission was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitError {
    /// The principal may not send as this address (the envelope sender, or
    /// an address of the `From:` header): SMTP's 553 5.7.1.
    NotAllowed(String),
    /// A `From:` header without a usable address.
    BadFrom,
    /// A recipient in a hosted domain that nobody has.
    UnknownRecipient(String),
    /// No recipients at all.
    NoRecipients,
    /// Delivery or queueing failed.
    Failed(Failure),
}

impl std::fmt::Display for SubmitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubmitError::NotAllowed(a) => write!(f, "not allowed to send as <{a}>"),
            SubmitError::BadFrom => f.write_str("From: header without a usable address"),
            SubmitError::UnknownRecipient(a) => write!(f, "no such recipient <{a}>"),
            SubmitError::NoRecipients => f.write_str("no recipients"),
            SubmitError::Failed(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SubmitError {}

impl From<StoreError> for SubmitError {
    fn from(e: StoreError) -> SubmitError {
        SubmitError::Failed(Failure::from(&e))
    }
}

/// Every address of every `From:` header; `Err` for a header that yields
/// none. No header at all is an empty list.
pub(crate) fn from_addresses(message: &[u8]) -> Result<Vec<String>, SubmitError> {
    let Some(parsed) = MessageParser::new().parse_headers(message) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for value in parsed.header_values(HeaderName::From) {
        let HeaderValue::Address(a) = value else {
            return Err(SubmitError::BadFrom);
        };
        let before = out.len();
        out.extend(a.iter().filter_map(|x| x.address()).map(str::to_string));
        if out.len() == before {
            return Err(SubmitError::BadFrom);
        }
    }
    Ok(out)
}

impl MailFlow {
    /// May `principal` use `address` as envelope sender or in `From:`? Yes
    /// for the principal's own addresses and aliases, and for groups it
    /// belongs to (directly or through nested groups). Never the null
    /// sender: a person does not send bounces.
    pub async fn may_send_as(&self, principal: i64, address: &str) -> Result<bool, StoreError> {
        if address.is_empty() {
            return Ok(false);
        }
        self.dir.may_send_as(principal, address).await
    }

    /// Refuses an envelope sender or `From:` address `principal` may not
    /// use.
    pub async fn check_sender(
        &self,
        principal: i64,
        mail_from: &str,
        message: &[u8],
    ) -> Result<(), SubmitError> {
        let mut addresses = vec![mail_from.to_string()];
        for a in from_addresses(message)? {
            if !addresses.iter().any(|x| x.eq_ignore_ascii_case(&a)) {
                addresses.push(a);
            }
        }
        for a in addresses {
            if !self.may_send_as(principal, &a).await? {
                return Err(SubmitError::NotAllowed(a));
            }
        }
        Ok(())
    }

    /// Sends `message` as `principal`: checks the envelope sender and the
    /// `From:` addresses ([`MailFlow::may_send_as`]), delivers to hosted
    /// recipients (their Sieve scripts run), queues the others (signed
    /// with the From: domain's DKIM key when it leaves), and files the
    /// Sent copy when `options.save_sent`. Nothing is sent unless every
    /// recipient can be handled; `Ok` once everything is durable.
    pub async fn submit(
        &self,
        principal: i64,
        envelope: &Envelope,
        message: &[u8],
        options: SubmitOptions,
    ) -> Result<Submitted, SubmitError> {
        if envelope.recipients.is_empty() {
            return Err(SubmitError::NoRecipients);
        }
        if let Err(e) = self
            .check_sender(principal, &envelope.mail_from, message)
            .await
        {
            info!(
                session = envelope.session_id,
                principal, "submission of {} refused: {e}", envelope.message_id
            );
            return Err(e);
        }
        let mut local = Vec::new();
        let mut remote = Vec::new();
        for r in &envelope.recipients {
            match self.lookup(&r.address).await? {
                Lookup::Local(_) => local.push(r.clone()),
                Lookup::NotLocal => remote.push(QueuedRecipient {
                    address: r.address.clone(),
                    notify: r.notify.map(|n| n.as_text()),
                    orcpt: r.orcpt.clone(),
                }),
                Lookup::Unknown => return Err(SubmitError::UnknownRecipient(r.address.clone())),
            }
        }
        let envelope = Envelope {
            submitted_by: Some(principal),
            ..envelope.clone()
        };
        let mut done = Submitted::default();
        if !local.is_empty() {
            let n = local.len();
            let here = Envelope {
                recipients: local,
                per_recipient: false,
                junk: false,
                ..envelope.clone()
            };
            if let Some(Err(e)) = self.deliver(&here, message).await.into_iter().next() {
                return Err(SubmitError::Failed(e));
            }
            done.delivered = n;
        }
        if !remote.is_empty() {
            let id = self
                .enqueue_as(&envelope, envelope.mail_from.clone(), remote, message)
                .await?;
            done.queued = Some(id);
        }
        if options.save_sent {
            match self.save_sent(principal, message).await {
                Ok(m) => done.sent_copy = Some(m),
                Err(e) => warn!(
                    session = envelope.session_id,
                    principal, "sent copy of {} not filed: {e}", envelope.message_id
                ),
            }
        }
        Ok(done)
    }

    /// Files `message` as read in the principal's \Sent mailbox (INBOX
    /// when it has none).
    async fn save_sent(&self, principal: i64, message: &[u8]) -> Result<i64, StoreError> {
        let mailbox = self.mailbox_by_role(principal, "\\Sent").await?;
        let target = Target {
            mailbox,
            flags: outpost_mailmeta::flags::SEEN,
            keywords: Vec::new(),
        };
        self.store()
            .deliver(Arc::from(message), vec![target], outpost_store::now())
            .await?;
        Ok(mailbox)
    }
}
