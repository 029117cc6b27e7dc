//! What the SMTP server needs from the directory and the store. The binary
//! implements [`SmtpBackend`]; tests use an in-memory fake. Logins do not
//! come here: they go through the shared [`outpost_net::AuthLayer`].

use std::net::IpAddr;

use async_trait::async_trait;
use bytes::Bytes;
pub use outpost_net::{AuthUser, TempFail};

/// Where a recipient address leads, as decided at RCPT time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rcpt {
    /// A hosted address that exists: a user, an alias, a group, or a
    /// domain's catch-all. Delivered through [`SmtpBackend::deliver`].
    Local,
    /// The domain is hosted here but nobody has this address
    /// (550 5.1.1 at RCPT, never a later bounce).
    UnknownLocal,
    /// The domain is not hosted here. Accepted only from authenticated
    /// clients, then handed to [`SmtpBackend::enqueue`]; otherwise it is
    /// relaying (554 5.7.1).
    Remote,
}

/// Why a delivery did not happen. The reason strings go to the log only.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeliverError {
    /// Out of disk or database space: 452 4.3.1, the client retries later.
    #[error("insufficient storage: {0}")]
    StorageFull(String),
    /// Any other temporary failure (database unreachable, lock timeout):
    /// 451 4.3.0, the client retries later.
    #[error("temporary failure: {0}")]
    Temporary(String),
    /// The recipient's mailbox is over its quota: 552 5.2.2.
    #[error("mailbox full: {0}")]
    MailboxFull(String),
    /// The message can never be delivered to this recipient (mailbox
    /// disabled, recipient vanished since RCPT): 550 5.2.0.
    #[error("permanent failure: {0}")]
    Permanent(String),
    /// Refused by policy (e.g. DMARC p=reject): 550 5.7.1 with this text.
    #[error("refused by policy: {0}")]
    Policy(String),
    /// A lookup the decision needs did not answer in time (DNS for the
    /// inbound SPF/DKIM/DMARC checks): 451 4.4.3 (RFC 7208 §8.6, RFC 3463
    /// "directory server failure"), the client retries later.
    #[error("lookup failed: {0}")]
    Unresolved(String),
}

/// The `BODY=` parameter of MAIL FROM (RFC 6152, RFC 3030).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Body {
    /// No `BODY=` given, or `BODY=7BIT`.
    #[default]
    SevenBit,
    /// `BODY=8BITMIME` (RFC 6152).
    EightBitMime,
    /// `BODY=BINARYMIME` (RFC 3030); the message came with BDAT.
    BinaryMime,
}

/// The DSN `RET=` parameter of MAIL FROM (RFC 3461 §4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ret {
    /// Return the full message in a bounce.
    Full,
    /// Return the headers only.
    Headers,
}

/// The DSN `NOTIFY=` parameter of RCPT TO (RFC 3461 §4.1). All `false`
/// means `NOTIFY=NEVER`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Notify {
    pub success: bool,
    pub failure: bool,
    pub delay: bool,
}

/// One envelope recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    /// The address as the client gave it in RCPT TO (no angle brackets).
    pub address: String,
    /// `NOTIFY=`; `None` when the client did not say (the default is
    /// "failure and delay", RFC 3461 §4.1).
    pub notify: Option<Notify>,
    /// `ORCPT=rfc822;...`, the original recipient, xtext-decoded.
    pub orcpt: Option<String>,
}

/// Everything known about a message besides its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse path from MAIL FROM, without angle brackets; empty for
    /// the null sender `<>` (bounces). The backend writes it into
    /// `Return-Path:` at delivery.
    pub mail_from: String,
    /// The recipients this call is about: only local ones for
    /// [`SmtpBackend::deliver`], only remote ones for
    /// [`SmtpBackend::enqueue`]. In the order the client gave them.
    pub recipients: Vec<Recipient>,
    /// DSN `RET=`.
    pub ret: Option<Ret>,
    /// DSN `ENVID=`, xtext-decoded.
    pub envid: Option<String>,
    /// `BODY=`.
    pub body: Body,
    /// The client asked for SMTPUTF8 (RFC 6531).
    pub smtputf8: bool,
    /// Set when the client authenticated (submission, or AUTH on the MX).
    pub auth: Option<AuthUser>,
    /// The client's address.
    pub peer_ip: IpAddr,
    /// What the client said in EHLO/HELO/LHLO.
    pub helo: String,
    /// The session id that every log line of this session carries.
    pub session_id: u64,
    /// Identifies the message in logs and in the `Received:` header
    /// (`<session id>.<transaction number>`, the session id as in the logs).
    pub message_id: String,
    /// TLS version and cipher, e.g. "TLSv1.3 TLS13_AES_256_GCM_SHA384";
    /// `None` on a plain connection.
    pub tls: Option<String>,
    /// The inbound checks ask for the message to be filed as junk (a DMARC
    /// failure under `p=quarantine`): what would go to a recipient's INBOX
    /// goes to its Junk mailbox.
    pub junk: bool,
    /// Every recipient gets a reply of its own (LMTP, RFC 2033): the
    /// backend may refuse some recipients and accept others.
    pub per_recipient: bool,
}

/// What the inbound checks decided about a message they let through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inbound {
    /// Header fields to put on top of the message (Authentication-Results).
    pub prepend: Vec<u8>,
    /// File it as junk (see [`Envelope::junk`]).
    pub junk: bool,
}

/// The directory and store, as the SMTP server sees them. One instance is
/// shared by every session of every SMTP listener.
#[async_trait]
pub trait SmtpBackend: Send + Sync {
    /// May `user` send with `address` as envelope sender or in the
    /// `From:` header? True when the address belongs to the user (any of
    /// their addresses or aliases) or to a group the user may send as.
    /// Asked for MAIL FROM and for every `From:` header address whenever
    /// the session is authenticated; `false` gives 553 5.7.1 (Postfix's
    /// `reject_sender_login_mismatch`). `address` may be empty (the null
    /// sender); answering `false` for it is the safe choice.
    async fn may_send_as(&self, user: &AuthUser, address: &str) -> Result<bool, TempFail>;

    /// Resolves a RCPT TO address (no angle brackets, as the client wrote
    /// it): hosted and existing (users, aliases, groups, catch-all), hosted
    /// but unknown, or not hosted at all. `Err` gives 451 4.4.3 at RCPT.
    async fn resolve_recipient(&self, address: &str) -> Result<Rcpt, TempFail>;

    /// Delivers `message` durably to the local recipients in
    /// `envelope.recipients` (all resolved as [`Rcpt::Local`]): expand
    /// aliases and groups, add `Return-Path:`, file into each mailbox
    /// (INBOX for now; Sieve hooks in here later). `message` already
    /// carries our `Received:` header.
    ///
    /// Returns exactly one result per `envelope.recipients` entry, in the
    /// same order. `Ok` means the message is on stable storage for that
    /// recipient: the server answers 250 only after this returns. SMTP
    /// sends one reply for the whole message (any error fails it; the
    /// client then retries all recipients, so prefer one transaction for
    /// the whole recipient set); LMTP replies per recipient.
    async fn deliver(&self, envelope: &Envelope, message: Bytes) -> Vec<Result<(), DeliverError>>;

    /// Puts `message` durably into the outbound queue for the remote
    /// recipients in `envelope.recipients` (only reached for authenticated
    /// sessions). `Ok` only once it is on stable storage.
    async fn enqueue(&self, envelope: &Envelope, message: Bytes) -> Result<(), DeliverError>;

    /// Checks a message arriving from another server (MX role, not
    /// authenticated) before it is delivered: SPF, DKIM, DMARC. Returns the
    /// header fields to put on top of the message (Authentication-Results)
    /// and whether to file it as junk, or `Err(DeliverError::Policy)` to
    /// refuse it with 550 5.7.1, or `Err(DeliverError::Unresolved)` to
    /// defer it when DNS left the decision open. The server waits for it at
    /// most [`crate::SmtpLimits::check_timeout`], then answers 451 4.4.3.
    /// The default accepts everything unchanged.
    async fn check_inbound(
        &self,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<Inbound, DeliverError> {
        let _ = (envelope, message);
        Ok(Inbound::default())
    }
}
