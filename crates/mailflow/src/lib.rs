//! The mail flow: what happens to a message between a protocol that took it
//! in and the mailboxes or the outbound queue.
//!
//! - **Delivery** ([`MailFlow::deliver`], [`MailFlow::deliver_local`]):
//!   recipients are resolved (users, aliases, groups, catch-alls, SRS
//!   addresses of bounces coming back, `postmaster@` the host name), the
//!   global and personal Sieve scripts run, the copies are filed (one blob
//!   for all), redirects and outside group members are sent on with an SRS
//!   sender, a DMARC `p=quarantine` failure goes to Junk, and NOTIFY=SUCCESS
//!   notices are sent.
//! - **Submission** ([`MailFlow::submit`]): a principal sends a message. The
//!   one check of whether a principal may use an address
//!   ([`MailFlow::may_send_as`]) lives here; local recipients are delivered,
//!   the others queued, and a copy is filed in the sender's Sent mailbox
//!   when the caller asks. SMTP submission calls it today; ActiveSync
//!   SendMail, EWS CreateItem, JMAP EmailSubmission and web compose will.
//! - **DKIM** ([`MailFlow::signer`], [`dkim`]): the keys in
//!   `<data_dir>/dkim`, one per domain and selector. The queue runner signs
//!   with this signer when a message leaves, not at enqueue: a peer without
//!   8BITMIME gets a 7-bit form, and the signature must cover what is sent.
//!   Everything queued is signed that way: submissions, vacation replies,
//!   notices.
//! - **Calendar mail** ([`imip`]): a delivered message with a
//!   `text/calendar` REQUEST/REPLY/CANCEL part is handed, after filing, to
//!   the [`ImipHandler`] the binary installs (the scheduling engine, which
//!   depends on this crate to send its own iMIP mail).
//! - **Delivery notices**: [`MailFlow`] is the queue's
//!   [`outpost_queue::LocalDelivery`] (notices to hosted senders are filed
//!   here, through Sieve; to an SRS address they go on to the original
//!   sender), and success notices are written at local delivery. The
//!   RFC 3464 formatter stays in `outpost_queue::dsn`: the runner writes
//!   failure and delay notices at the moment a remote server refuses, and
//!   this crate depends on the queue (for its signer, inbound checks and
//!   the notice format). Moving the formatter here would make the queue
//!   depend on the mail flow, a cycle; the trait keeps the direction one
//!   way (mail flow → queue → store).
//!
//! No process globals: everything (Sieve engine, SRS secret, directory with
//! its LDAP source, caches) is in one [`MailFlow`] built by `serve` (or a
//! command) and shared as an `Arc`.

pub mod compose;
pub mod deliver;
pub mod dkim;
mod dsn;
pub mod imip;
mod inbound;
mod oof;
mod sieve;
pub mod srs;
pub(crate) mod submit;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result};
use outpost_config::{Config, RedirectSender};
use outpost_directory::Directory;
use outpost_sieve::{Engine, EngineLimits, Scanners};
use tracing::warn;

pub use compose::{Draft, DraftAttachment, Outgoing, Smart};
pub use deliver::{Delivered, Filing};
pub use imip::{ImipDelivery, ImipHandler};
pub use inbound::{InboundChecks, InboundVerdict};
pub use oof::OOF_SCRIPT;
pub use outpost_sieve::oof::{Audience, OofState, OutOfOffice};
pub use sieve::SrsRoute;
pub use submit::{SubmitError, SubmitOptions, Submitted};

/// The DSN `NOTIFY=` of one recipient (RFC 3461 §4.1). All `false` is
/// `NOTIFY=NEVER`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Notify {
    pub success: bool,
    pub failure: bool,
    pub delay: bool,
}

impl Notify {
    /// The form the queue keeps: "success,failure", or "never".
    pub fn as_text(&self) -> String {
        let mut v = Vec::new();
        if self.success {
            v.push("success");
        }
        if self.failure {
            v.push("failure");
        }
        if self.delay {
            v.push("delay");
        }
        if v.is_empty() {
            "never".to_string()
        } else {
            v.join(",")
        }
    }
}

/// DSN `RET=` (RFC 3461 §4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ret {
    Full,
    Headers,
}

/// The message's body type (`BODY=`, RFC 6152 / RFC 3030).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Body {
    #[default]
    SevenBit,
    EightBitMime,
    BinaryMime,
}

impl Body {
    fn as_str(self) -> &'static str {
        match self {
            Body::SevenBit => "7bit",
            Body::EightBitMime => "8bitmime",
            Body::BinaryMime => "binarymime",
        }
    }
}

/// One envelope recipient.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rcpt {
    pub address: String,
    /// `None`: the sender did not say (failure and delay).
    pub notify: Option<Notify>,
    /// `ORCPT=`, xtext-decoded.
    pub orcpt: Option<String>,
}

impl Rcpt {
    pub fn new(address: impl Into<String>) -> Rcpt {
        Rcpt {
            address: address.into(),
            ..Rcpt::default()
        }
    }
}

/// Everything about a message besides its bytes, whichever protocol it
/// came from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse path, empty for the null sender.
    pub mail_from: String,
    pub recipients: Vec<Rcpt>,
    pub envid: Option<String>,
    pub ret: Option<Ret>,
    pub body: Body,
    pub smtputf8: bool,
    /// The principal that sent it (an authenticated session), recorded
    /// with queued mail.
    pub submitted_by: Option<i64>,
    /// For log lines: the session id, 0 when there is none.
    pub session_id: u64,
    /// For log lines: how the protocol names the message.
    pub message_id: String,
    /// File what would go to INBOX into Junk (DMARC `p=quarantine`).
    pub junk: bool,
    /// Every recipient gets its own result and its own Sieve verdict
    /// (LMTP).
    pub per_recipient: bool,
}

/// Why a delivery or submission did not happen, by what the protocol must
/// answer. The texts are for logs (and [`Failure::Policy`] for the client).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Out of storage: try again later.
    StorageFull(String),
    /// Anything else temporary (database, directory unreachable).
    Temporary(String),
    /// Never deliverable (recipient vanished, invalid).
    Permanent(String),
    /// Refused by policy (a Sieve reject, DMARC p=reject): this text.
    Policy(String),
    /// DNS could not answer what a decision needs (the inbound DMARC
    /// verdict): try again later (SMTP `451 4.4.3`).
    Unresolved(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::StorageFull(m) => write!(f, "insufficient storage: {m}"),
            Failure::Temporary(m) => write!(f, "temporary failure: {m}"),
            Failure::Permanent(m) => write!(f, "permanent failure: {m}"),
            Failure::Policy(m) => write!(f, "refused by policy: {m}"),
            Failure::Unresolved(m) => write!(f, "DNS could not decide: {m}"),
        }
    }
}

impl From<&outpost_store::StoreError> for Failure {
    fn from(e: &outpost_store::StoreError) -> Failure {
        use outpost_store::StoreError;
        match e {
            StoreError::Full(m) => Failure::StorageFull(m.clone()),
            StoreError::NotFound(m) | StoreError::Invalid(m) => Failure::Permanent(m.clone()),
            other => Failure::Temporary(other.to_string()),
        }
    }
}

/// What the mail flow needs from the configuration, read once.
pub struct Settings {
    /// Our host name: Reporting-MTA of notices, the Sieve engine's name,
    /// the `postmaster@` that an unqualified `Postmaster` becomes.
    pub hostname: String,
    pub engine: Arc<Engine>,
    /// `[sieve] redirect_sender`.
    pub redirect_sender: RedirectSender,
    /// The SRS secret's file (created on first use).
    pub srs_secret: PathBuf,
    pub srs_max_age_days: u32,
    /// `<data_dir>/dkim`.
    pub dkim_dir: PathBuf,
    pub dkim_selector: String,
    /// Inbound SPF/DKIM/DMARC and what to do with its verdicts.
    pub inbound: Option<InboundChecks>,
}

impl Settings {
    /// From the config: builds the Sieve engine (reading the global
    /// scripts; errors name the file and line). No inbound checks: the
    /// caller sets [`Settings::inbound`] (they need DNS).
    pub fn from_config(cfg: &Config) -> Result<Settings> {
        Ok(Settings {
            hostname: cfg.hostname.clone(),
            engine: Arc::new(sieve_engine(cfg)?),
            redirect_sender: cfg.sieve.redirect_sender,
            srs_secret: cfg.srs_secret_path(),
            srs_max_age_days: cfg.sieve.srs_max_age_days,
            dkim_dir: dkim::key_dir(cfg),
            dkim_selector: cfg.dkim.selector.clone(),
            inbound: None,
        })
    }
}

/// The Sieve engine `[sieve]` describes, with its global scripts.
pub fn sieve_engine(cfg: &Config) -> Result<Engine> {
    let read = |paths: &[PathBuf]| -> Result<Vec<(String, String)>> {
        paths
            .iter()
            .map(|p| {
                std::fs::read_to_string(p)
                    .with_context(|| format!("sieve: reading global script {}", p.display()))
                    .map(|s| (p.display().to_string(), s))
            })
            .collect()
    };
    let limits = EngineLimits {
        cpu_limit: cfg.sieve.cpu_limit,
        max_redirects: cfg.sieve.max_redirects,
        max_script_size: cfg.sieve.max_script_size,
        ..EngineLimits::default()
    };
    let scanners = Scanners {
        spam_header: cfg.sieve.spam_score_header.clone(),
        spam_max: cfg.sieve.spam_score_max,
        virus_header: cfg.sieve.virus_header.clone(),
    };
    Engine::with_scanners(
        &cfg.hostname,
        limits,
        scanners,
        read(&cfg.sieve.before)?,
        read(&cfg.sieve.after)?,
    )
    .map_err(|e| anyhow::anyhow!("config: sieve: {e}"))
}

/// The mail-flow services of one server: built once, shared as an `Arc`
/// by every listener, the queue runner and the commands.
pub struct MailFlow {
    dir: Directory,
    hostname: String,
    engine: Arc<Engine>,
    redirect_sender: RedirectSender,
    srs_secret: PathBuf,
    srs_max_age_days: u32,
    /// Loaded (or generated) on first use; retried after a failure.
    srs: Mutex<Option<Arc<srs::Srs>>>,
    keys: Arc<outpost_queue::KeyDir>,
    inbound: Option<InboundChecks>,
    inboxes: deliver::InboxCache,
    resolved: deliver::ResolvedCache,
    /// Applies calendar parts of delivered mail (the scheduling engine).
    imip: std::sync::OnceLock<Arc<dyn imip::ImipHandler>>,
}

impl MailFlow {
    pub fn new(dir: Directory, s: Settings) -> MailFlow {
        MailFlow {
            dir,
            hostname: s.hostname,
            engine: s.engine,
            redirect_sender: s.redirect_sender,
            srs_secret: s.srs_secret,
            srs_max_age_days: s.srs_max_age_days,
            srs: Mutex::new(None),
            keys: Arc::new(outpost_queue::KeyDir::new(s.dkim_dir, s.dkim_selector)),
            inbound: s.inbound,
            inboxes: Default::default(),
            resolved: Default::default(),
            imip: std::sync::OnceLock::new(),
        }
    }

    /// [`Settings::from_config`] and [`MailFlow::new`] in one.
    pub fn from_config(cfg: &Config, dir: Directory) -> Result<MailFlow> {
        Ok(MailFlow::new(dir, Settings::from_config(cfg)?))
    }

    /// Our host name (Message-IDs, Reporting-MTA).
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    pub fn directory(&self) -> &Directory {
        &self.dir
    }

    pub fn store(&self) -> &outpost_store::Store {
        self.dir.store()
    }

    /// The Sieve engine deliveries use (ManageSieve checks scripts with it).
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The DKIM signer for what leaves (the queue runner's).
    pub fn signer(&self) -> Arc<dyn outpost_queue::Signer> {
        self.keys.clone()
    }

    /// The SRS signer/verifier, if its secret can be read or made.
    fn srs(&self) -> Option<Arc<srs::Srs>> {
        let mut loaded = self.srs.lock().unwrap_or_else(|e| e.into_inner());
        if loaded.is_none() {
            match srs::Srs::load_or_create(&self.srs_secret, self.srs_max_age_days) {
                Ok(v) => *loaded = Some(Arc::new(v)),
                Err(e) => warn!("{e:#}"),
            }
        }
        loaded.clone()
    }
}
