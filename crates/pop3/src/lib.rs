//! POP3 server: RFC 1939 (USER, PASS, STAT, LIST, RETR, DELE, NOOP, RSET,
//! QUIT, TOP, UIDL), RFC 2449 CAPA with extended response codes, RFC 2595
//! STLS, RFC 5034 SASL PLAIN (RFC 4616). See `README.md` in this crate for
//! what is implemented per RFC.
//!
//! Layers, each usable alone:
//! - [`codec`]: bytes ⇄ typed commands and responses; no I/O.
//! - [`session`]: the AUTHORIZATION → TRANSACTION → UPDATE state machine;
//!   no I/O.
//! - [`serve`]: the tokio loop that connects the two to a [`Conn`] and the
//!   [`Pop3Backend`].
//!
//! [`Conn`]: outpost_net::Conn

use std::sync::Arc;
use std::time::Duration;

use outpost_net::ListenerContext;

mod backend;
pub mod codec;
mod server;
pub mod session;

pub use backend::{MaildropEntry, MaildropGuard, MaildropLocks, Pop3Backend};
pub use codec::wire_size;
/// The user and failure types of the shared auth layer, re-exported for the
/// fuzz harness and tests.
pub use outpost_net::{AuthUser, TempFail};
pub use server::serve;

/// Everything a POP3 listener needs. Build one per process and share it
/// (in an `Arc`) between the `pop3` and `pop3s` listeners, so that both see
/// the same maildrop locks.
pub struct Pop3Context {
    /// Host name (greeting and sign-off), the TLS acceptor for STLS on the
    /// plain `pop3` listener (`None`: STLS is not offered, and logins are
    /// refused on plain connections unless plaintext is allowed on
    /// loopback), and the shared [`outpost_net::AuthLayer`] every login
    /// goes through.
    pub listener: ListenerContext,
    /// Directory and store.
    pub backend: Arc<dyn Pop3Backend>,
    pub limits: Pop3Limits,
    /// Exclusive per-user maildrop locks (RFC 1939 §8).
    pub locks: MaildropLocks,
}

impl Pop3Context {
    /// A context with safe defaults: [`Pop3Limits::default`], fresh locks.
    pub fn new(listener: ListenerContext, backend: Arc<dyn Pop3Backend>) -> Pop3Context {
        Pop3Context {
            listener,
            backend,
            limits: Pop3Limits::default(),
            locks: MaildropLocks::default(),
        }
    }
}

/// Per-session limits. The defaults are safe on a public server.
#[derive(Clone, Debug)]
pub struct Pop3Limits {
    /// Close a session that sends nothing for this long (also bounds the
    /// TLS handshake and a client that stops reading). RFC 1939 §3 asks
    /// for at least 10 minutes. Default: 10 minutes.
    pub idle_timeout: Duration,
    /// Longest accepted input line, CRLF included. RFC 2449 §4 limits
    /// commands to 255 octets; some clients send longer USER/PASS or SASL
    /// lines, so the default is 1024. Longer lines get `-ERR` and count as a
    /// bad command.
    pub max_line_length: usize,
    /// Close the session after this many bad commands (malformed, unknown,
    /// wrong state, too long, failed logins). Default: 10.
    pub max_bad_commands: u32,
}

impl Default for Pop3Limits {
    fn default() -> Self {
        Pop3Limits {
            idle_timeout: Duration::from_secs(600),
            max_line_length: 1024,
            max_bad_commands: 10,
        }
    }
}
