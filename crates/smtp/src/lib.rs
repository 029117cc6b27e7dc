//! SMTP server (RFC 5321) in three roles: MX (`listen.smtp`), submission
//! (`listen.submission` with STARTTLS, `listen.submissions` with implicit
//! TLS; AUTH required), and LMTP (RFC 2033, `listen.lmtp`). See
//! `RFC.md` in this crate for what is implemented per RFC.
//!
//! Layers, each usable alone:
//! - the wire format is `smtp-proto` (command parsing, DATA dot-unstuffing,
//!   BDAT chunks, the EHLO reply); [`reply`] formats the other replies;
//! - [`session`]: the sans-I/O state machine: bytes in, replies and
//!   [`session::Effect`]s out;
//! - [`serve`]: the tokio loop that connects the machine to a
//!   [`outpost_net::Conn`] and carries out its effects on the
//!   [`SmtpBackend`].

use std::sync::Arc;
use std::time::Duration;

use outpost_net::ListenerContext;

mod backend;
pub mod received;
pub mod reply;
mod server;
pub mod session;

pub use backend::{
    Body, DeliverError, Envelope, Inbound, Notify, Rcpt, Recipient, Ret, SmtpBackend,
};
/// The user and failure types of the shared auth layer, re-exported for the
/// fuzz harness and tests.
pub use outpost_net::{AuthUser, LoginOutcome, TempFail};
pub use server::serve;

/// Which service a listener offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Port 25: mail for hosted domains from anyone; relaying only after
    /// AUTH (over TLS). STARTTLS offered when a certificate is configured.
    Mx,
    /// Ports 587 (STARTTLS, then AUTH) and 465 (implicit TLS, done by the
    /// caller before [`serve`]): AUTH required before MAIL; the sender
    /// must belong to the user.
    Submission,
    /// RFC 2033 LMTP for an MTA that stays in front of Outpost: LHLO instead
    /// of EHLO, one reply per recipient after the message, no AUTH, local
    /// recipients only.
    Lmtp,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Mx => "smtp",
            Role::Submission => "submission",
            Role::Lmtp => "lmtp",
        }
    }
}

/// Everything an SMTP listener needs. Build one per listener role and share
/// it (in an `Arc`) between that listener's sessions.
pub struct SmtpContext {
    pub role: Role,
    /// Host name (greeting, EHLO reply, `Received:` headers), the TLS
    /// acceptor for STARTTLS, the shared [`outpost_net::AuthLayer`] behind
    /// AUTH, and whether AUTH is allowed without TLS on loopback. Without a
    /// TLS acceptor STARTTLS is not offered; implicit TLS (465) is done by
    /// the caller before [`serve`], which then sees `conn.is_tls()`.
    pub listener: ListenerContext,
    /// Directory and store.
    pub backend: Arc<dyn SmtpBackend>,
    pub limits: SmtpLimits,
}

impl SmtpContext {
    /// A context with safe defaults: [`SmtpLimits::default`].
    pub fn new(
        role: Role,
        listener: ListenerContext,
        backend: Arc<dyn SmtpBackend>,
    ) -> SmtpContext {
        SmtpContext {
            role,
            listener,
            backend,
            limits: SmtpLimits::default(),
        }
    }
}

/// Per-session limits (`[limits]` in the config). The defaults are safe on a
/// public server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtpLimits {
    /// Largest accepted message in bytes, as the client sends it (before our
    /// `Received:` header). Advertised as `SIZE`; a larger `SIZE=` in MAIL
    /// FROM, or a larger message, gets 552 5.3.4. Messages are held in memory
    /// until delivered, so this also bounds memory per session.
    /// Default: 25 MiB.
    pub message_size: usize,
    /// Most recipients per message; the next RCPT gets 452 4.5.3 and the
    /// client sends the rest in another transaction. RFC 5321 §4.5.3.1.8
    /// requires at least 100. Default: 100.
    pub max_recipients: usize,
    /// Longest command line, CRLF included (RFC 5321 §4.5.3.1.4 asks for
    /// 512; longer is tolerated up to this). Longer lines get 500 5.5.2 and
    /// are discarded. AUTH lines may be up to 12288 octets regardless
    /// (RFC 4954 §4). Default: 1000.
    pub max_line_length: usize,
    /// Longest line inside a message sent with DATA, CRLF included (RFC 5321
    /// §4.5.3.1.6: 1000). A message with a longer line is refused after its
    /// final dot with 500 5.5.2. 0 turns the check off. BDAT messages are
    /// not checked (BINARYMIME has no lines). Default: 1000.
    pub max_data_line_length: usize,
    /// How long to wait for the next command (RFC 5321 §4.5.3.2.7 asks for
    /// at least 5 minutes); also bounds the TLS handshake and a client that
    /// does not read its replies. Then 421 4.4.2 and close. Default: 5 min.
    pub command_timeout: Duration,
    /// How long to wait for the next piece of message data after DATA or
    /// BDAT (RFC 5321 §4.5.3.2.6: 10 minutes for the final dot; we apply it
    /// per read). Default: 10 min.
    pub data_timeout: Duration,
    /// Error replies (4xx/5xx to commands: bad syntax, wrong sequence,
    /// refused recipients, failed AUTH) after which the session is closed
    /// with 421 4.7.0. Default: 20 (Postfix's `smtpd_hard_error_limit`).
    pub max_errors: u32,
    /// Failed AUTH attempts in one session before it is closed with 421
    /// 4.7.0. Counting across sessions and protocols is the shared
    /// `AuthLayer`'s job. Default: 3.
    pub max_auth_failures: u32,
    /// Longest wait for the inbound checks (SPF/DKIM/DMARC, on DNS) of one
    /// message before its final reply: then 451 4.4.3, the transaction is
    /// over and the session goes on. Default: 20 s (RFC 7208 §4.6.4 asks
    /// an SPF check to be allowed at least 20 s).
    pub check_timeout: Duration,
}

impl Default for SmtpLimits {
    fn default() -> Self {
        SmtpLimits {
            message_size: 25 * 1024 * 1024,
            max_recipients: 100,
            max_line_length: 1000,
            max_data_line_length: 1000,
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(600),
            max_errors: 20,
            max_auth_failures: 3,
            check_timeout: Duration::from_secs(20),
        }
    }
}
