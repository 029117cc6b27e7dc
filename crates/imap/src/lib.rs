//! outpost-imap: the IMAP4rev1 / IMAP4rev2 server.
//!
//! Layers: the wire codec, [`codec`] (a pure parser and serializer with no
//! I/O, unit-tested with bytes and fuzzed in `fuzz/`); the search evaluator,
//! [`search`]; the session state machine (`session/`, with `mailbox.rs`
//! for the selected mailbox and `fetch.rs` for FETCH rendering), which
//! reaches storage only through [`storage::MailStorage`]; the sans-I/O
//! [`connection`] that feeds it; and the tokio loop, [`serve`]. See
//! `README.md` for the RFC status.
//!
//! # Why our own codec rather than `imap-codec`
//!
//! `imap-codec` 2.0 is well made (typed values that cannot be invalid, a
//! fuzzed parser), and this codec borrows that idea. We still write our own
//! because the server needs, on day one, exactly the extensions `imap-codec`
//! lacks or has only in alpha: ESEARCH / SEARCHRES (`$`), LIST-STATUS,
//! CONDSTORE/QRESYNC select parameters and VANISHED, CATENATE, PARTIAL,
//! OBJECTID, SAVEDATE, STATUS=SIZE, and the server-side framing policy
//! (LITERAL+/LITERAL-, APPENDLIMIT with `[TOOBIG]`, discarding an over-size
//! non-synchronizing literal and resynchronising). Covering those on top of a
//! 2.0 alpha would mean patching its types in many places and following its
//! API churn; a hand-written recursive-descent parser over one framed command
//! is a few thousand lines we fully control, with types shaped for the
//! session (e.g. SELECT/EXAMINE as one variant, mailbox names already
//! decoded from modified UTF-7 and INBOX-normalised).
//!
//! # What the codec covers
//!
//! IMAP4rev1 (RFC 3501) and IMAP4rev2 (RFC 9051) commands, plus LITERAL+ /
//! LITERAL- (RFC 7888), SASL-IR (4959), ENABLE (5161), ID (2971), IDLE
//! (2177), UNSELECT (3691), UIDPLUS (4315), MOVE (6851), NAMESPACE (2342),
//! LIST-EXTENDED (5258), LIST-STATUS (5819), SPECIAL-USE (6154), CHILDREN
//! (3348), CONDSTORE/QRESYNC (7162), ESEARCH (4731), SEARCHRES (5182),
//! CONTEXT=SEARCH return options (5267), PARTIAL (9394), WITHIN (5032),
//! SORT/THREAD (5256), SORT=DISPLAY (5957), ESORT (5267), MULTIAPPEND (3502),
//! CATENATE (4469), BINARY (3516), UTF8=ACCEPT (6855), QUOTA (9208),
//! APPENDLIMIT (7889), OBJECTID (8474), SAVEDATE (8514), STATUS=SIZE (8438),
//! response codes from RFC 5530.

pub mod codec;
pub mod search;

pub mod connection;
mod fetch;
mod mailbox;
#[cfg(any(test, feature = "testing"))]
pub mod memory;
mod server;
mod session;
pub mod storage;

use std::sync::Arc;
use std::time::Duration;

pub use outpost_net::auth::{AuthLayer, AuthUser};
pub use outpost_net::{ListenerContext, TlsAcceptor};
pub use server::serve;
pub use storage::MailStorage;

/// Everything an IMAP listener needs. Build one per process and share it
/// (in an `Arc`) between the `imap` and `imaps` listeners.
pub struct ImapContext {
    /// What every listener shares: our name (greeting, sign-off), the
    /// acceptor for STARTTLS on the plain `imap` listener (`None`: STARTTLS
    /// is not offered; `imaps` does the handshake before [`serve`]), the
    /// one [`AuthLayer`], and whether logins without TLS are allowed from
    /// loopback (otherwise LOGINDISABLED is advertised).
    pub listener: ListenerContext,
    /// The mailboxes, reached only through this trait.
    pub storage: Arc<dyn MailStorage>,
    pub limits: ImapLimits,
}

impl ImapContext {
    /// A context with [`ImapLimits::default`].
    pub fn new(listener: ListenerContext, storage: Arc<dyn MailStorage>) -> ImapContext {
        ImapContext {
            listener,
            storage,
            limits: ImapLimits::default(),
        }
    }
}

/// Per-session limits. The defaults are safe on a public server.
#[derive(Clone, Debug)]
pub struct ImapLimits {
    /// Longest command text, literals excluded. Default 64 KiB (RFC 7162
    /// section 4 asks servers to accept at least 8,192 octets).
    pub max_line: usize,
    /// Largest message APPEND accepts, advertised as APPENDLIMIT (RFC
    /// 7889); larger literals get `NO [TOOBIG]`. Default 50 MiB.
    pub max_literal: u64,
    /// Largest whole command, literals included (bounds MULTIAPPEND).
    /// Default 100 MiB.
    pub max_command: u64,
    /// How long IDLE may last without any client input (RFC 2177 asks
    /// clients to re-issue IDLE at least every 29 minutes). Default 30 min.
    pub idle_timeout: Duration,
    /// How long a session may sit between commands (outside IDLE) before
    /// it is closed; RFC 9051 5.4 requires at least 30 minutes.
    /// Default 30 min.
    pub command_timeout: Duration,
    /// Time allowed for a pre-login client (greeting to LOGIN), which is
    /// shorter so that idle unauthenticated sockets do not pile up.
    /// Default 60 s.
    pub login_timeout: Duration,
    /// Malformed or refused commands in a row before `* BYE`. Default 20.
    pub max_bad_commands: u32,
}

impl Default for ImapLimits {
    fn default() -> Self {
        ImapLimits {
            max_line: 64 * 1024,
            max_literal: 50 * 1024 * 1024,
            max_command: 100 * 1024 * 1024,
            idle_timeout: Duration::from_secs(30 * 60),
            command_timeout: Duration::from_secs(30 * 60),
            login_timeout: Duration::from_secs(60),
            max_bad_commands: 20,
        }
    }
}
