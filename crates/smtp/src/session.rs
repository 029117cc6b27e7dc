//! The SMTP/LMTP session as a sans-I/O state machine.
//!
//! Bytes from the client go in with [`Machine::feed`]; [`Machine::poll`]
//! works through them and says what it needs next: more input, an
//! [`Effect`] carried out by the caller (TLS handshake, a directory lookup,
//! the delivery), or the end of the session. The answer to an effect comes
//! back through [`Machine::answer`]. Replies pile up in an output buffer
//! that the caller sends with [`Machine::take_output`] whenever the machine
//! wants input — which is what RFC 2920 (PIPELINING) asks of a server.
//!
//! Framing: command lines are split here (with our own length limit, see
//! `next_line`) and each complete line is parsed by
//! `smtp_proto::Request::parse`; message content goes through
//! `smtp_proto`'s `DataReceiver` (dot-unstuffing, the end-of-data marker)
//! and `BdatReceiver` (CHUNKING).

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use bytes::{Buf, Bytes, BytesMut};
use mail_parser::{HeaderName, HeaderValue, MessageParser};
use smtp_proto::request::receiver::{BdatReceiver, DataReceiver, DummyDataReceiver};
use smtp_proto::{EhloResponse, MailFrom, RcptTo, Request};
use tracing::{debug, info, warn};

use outpost_net::auth::sasl::{self, SaslError};
use outpost_net::LoginOutcome;

use crate::backend::{
    AuthUser, Body, DeliverError, Envelope, Notify, Rcpt, Recipient, Ret, TempFail,
};
use crate::received::Trace;
use crate::reply::Reply;
use crate::{Role, SmtpLimits};

/// RFC 4954 §4: AUTH command and continuation lines may be this long.
const MAX_AUTH_LINE: usize = 12288;

/// Who the session talks to and under which rules.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    pub role: Role,
    pub hostname: String,
    pub limits: SmtpLimits,
    pub session_id: u64,
    pub peer_ip: IpAddr,
    /// A TLS acceptor is configured, so STARTTLS can be offered.
    pub tls_available: bool,
    /// `Some(description)` when the connection is already TLS (implicit
    /// TLS on 465).
    pub tls: Option<String>,
    /// AUTH may be offered without TLS (the context flag is set and the
    /// client is on loopback).
    pub plaintext_auth_allowed: bool,
}

/// What the machine wants next.
#[derive(Debug)]
pub enum Step {
    /// Send the output, then read more from the client and [`Machine::feed`] it.
    NeedInput,
    /// Carry this out, then call [`Machine::answer`].
    Effect(Effect),
    /// Send the output and close the connection.
    Close,
}

/// A password that does not show up in `Debug` output.
pub struct Password(pub String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Work for the caller. Each has exactly one matching [`Answer`].
#[derive(Debug)]
pub enum Effect {
    /// The "220 Ready to start TLS" reply is in the output: send it, do the
    /// handshake, answer [`Answer::TlsStarted`] (or end the session if the
    /// handshake fails).
    StartTls,
    /// [`outpost_net::AuthLayer::login`] (throttle, then the directory):
    /// [`Answer::Auth`].
    Authenticate { login: String, password: Password },
    /// [`crate::SmtpBackend::may_send_as`]: [`Answer::MaySendAs`].
    MaySendAs { user: AuthUser, address: String },
    /// [`crate::SmtpBackend::resolve_recipient`]: [`Answer::Recipient`].
    ResolveRecipient { address: String },
    /// Deliver locally and/or queue: [`Answer::Delivered`].
    Deliver(Box<Delivery>),
}

/// A complete message, ready for the backend.
#[derive(Debug)]
pub struct Delivery {
    /// For [`crate::SmtpBackend::deliver`]: the local recipients.
    pub local: Option<Envelope>,
    /// For [`crate::SmtpBackend::enqueue`]: the remote recipients.
    pub remote: Option<Envelope>,
    /// The message with our `Received:` header on top.
    pub message: Bytes,
}

/// The outcome of an [`Effect`].
#[derive(Debug)]
pub enum Answer {
    TlsStarted {
        description: String,
    },
    /// What the shared auth layer said; `Blocked` when the throttle refused
    /// to even check the credentials.
    Auth(LoginOutcome),
    MaySendAs(Result<bool, TempFail>),
    Recipient(Result<Rcpt, TempFail>),
    /// One result per local recipient (in order), and the queueing result
    /// if there were remote recipients.
    Delivered {
        local: Vec<Result<(), DeliverError>>,
        remote: Option<Result<(), DeliverError>>,
    },
}

/// The mail transaction between MAIL and the end of the message.
struct Transaction {
    mail_from: String,
    body: Body,
    ret: Option<Ret>,
    envid: Option<String>,
    smtputf8: bool,
    /// Accepted recipients, each `Local` or `Remote`.
    rcpts: Vec<(Recipient, Rcpt)>,
    /// The message as received so far.
    data: Vec<u8>,
    /// BDAT chunks have started (DATA is no longer allowed).
    bdat: bool,
}

enum DataRx {
    Keep(DataReceiver),
    /// Over a limit: find the end of the message, store nothing.
    Skip(DummyDataReceiver),
}

struct DataState {
    rx: DataRx,
    /// Octets since the last LF.
    line_len: usize,
    too_long: bool,
    too_big: bool,
}

enum BdatRx {
    Keep(BdatReceiver),
    Skip(DummyDataReceiver),
}

struct BdatState {
    rx: BdatRx,
    last: bool,
    size: usize,
    /// Reply once the chunk has been read (and thrown away).
    error: Option<Reply>,
}

enum Phase {
    Command,
    AuthPlain,
    AuthLoginUser,
    AuthLoginPass(String),
    Data(DataState),
    Bdat(BdatState),
    /// An effect is out; see `Machine::waiting`.
    Waiting,
}

enum Waiting {
    Tls,
    Auth {
        login: String,
    },
    MailFrom(Transaction),
    Rcpt(Recipient),
    /// `From:` header addresses still to check; the transaction stays in
    /// `Machine::tx`.
    HeaderFrom(Vec<String>),
    Deliver {
        message_id: String,
        size: usize,
    },
}

enum Line {
    Complete(BytesMut),
    TooLong,
}

/// One SMTP/LMTP session.
pub struct Machine {
    cfg: SessionConfig,
    input: BytesMut,
    out: Vec<u8>,
    phase: Phase,
    waiting: Option<Waiting>,
    effect: Option<Effect>,
    helo: Option<String>,
    auth: Option<AuthUser>,
    tx: Option<Transaction>,
    errors: u32,
    auth_failures: u32,
    transactions: u32,
    /// Inside an over-long line: drop input until its LF.
    discarding_line: bool,
    closed: Option<&'static str>,
}

impl Machine {
    pub fn new(cfg: SessionConfig) -> Machine {
        Machine {
            cfg,
            input: BytesMut::new(),
            out: Vec::new(),
            phase: Phase::Command,
            waiting: None,
            effect: None,
            helo: None,
            auth: None,
            tx: None,
            errors: 0,
            auth_failures: 0,
            transactions: 0,
            discarding_line: false,
            closed: None,
        }
    }

    /// Puts the 220 greeting into the output.
    pub fn greeting(&mut self) {
        let kind = if self.cfg.role == Role::Lmtp {
            "LMTP"
        } else {
            "ESMTP"
        };
        // RFC 2034 §3: no enhanced code in the greeting.
        let line = format!("220 {} {kind} Outpost ready\r\n", self.cfg.hostname);
        self.out.extend_from_slice(line.as_bytes());
    }

    /// Adds bytes read from the client.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.closed.is_none() {
            self.input.extend_from_slice(bytes);
        }
    }

    /// Replies produced so far, to be sent to the client.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    pub fn output_len(&self) -> usize {
        self.out.len()
    }

    /// How long to wait for the client's next bytes.
    pub fn read_timeout(&self) -> Duration {
        match self.phase {
            Phase::Data(_) | Phase::Bdat(_) => self.cfg.limits.data_timeout,
            _ => self.cfg.limits.command_timeout,
        }
    }

    /// The client was silent for [`Machine::read_timeout`].
    pub fn timed_out(&mut self) {
        let text = format!("{} Timeout, closing connection", self.cfg.hostname);
        self.write(Reply::new(421, [4, 4, 2], text));
        self.close("timeout");
    }

    /// Why the session ended (once [`Step::Close`] was returned), or what
    /// the client was doing when its connection went away.
    pub fn end_reason(&self) -> &'static str {
        if let Some(r) = self.closed {
            return r;
        }
        match self.phase {
            Phase::Data(_) | Phase::Bdat(_) => "client vanished mid-message, message discarded",
            _ if self.tx.is_some() => "client vanished mid-transaction",
            _ => "client closed the connection",
        }
    }

    /// True while message content (DATA or a BDAT chunk) is being read.
    pub fn in_message(&self) -> bool {
        matches!(self.phase, Phase::Data(_) | Phase::Bdat(_))
    }

    /// The authenticated user, if any.
    pub fn user(&self) -> Option<&AuthUser> {
        self.auth.as_ref()
    }

    /// Works through the buffered input until the machine needs something.
    pub fn poll(&mut self) -> Step {
        loop {
            if self.closed.is_some() {
                return Step::Close;
            }
            if let Some(e) = self.effect.take() {
                return Step::Effect(e);
            }
            match self.phase {
                Phase::Waiting => {
                    // The caller polled without answering the last effect.
                    debug_assert!(false, "poll() while an effect is outstanding");
                    self.close("internal error");
                }
                Phase::Data(_) => {
                    if self.input.is_empty() {
                        return Step::NeedInput;
                    }
                    self.pump_data();
                }
                Phase::Bdat(_) => {
                    if !self.pump_bdat() {
                        return Step::NeedInput;
                    }
                }
                Phase::Command
                | Phase::AuthPlain
                | Phase::AuthLoginUser
                | Phase::AuthLoginPass(_) => match self.next_line() {
                    None => return Step::NeedInput,
                    Some(Line::TooLong) => {
                        debug!(session = self.cfg.session_id, "smtp: line too long");
                        self.phase = Phase::Command;
                        self.error(Reply::new(500, [5, 5, 2], "Line too long"));
                    }
                    Some(Line::Complete(line)) => self.on_line(&line),
                },
            }
        }
    }

    /// Delivers the outcome of the effect last returned by [`Machine::poll`].
    pub fn answer(&mut self, answer: Answer) {
        let Some(waiting) = self.waiting.take() else {
            debug_assert!(false, "answer() without an outstanding effect");
            return;
        };
        self.phase = Phase::Command;
        let id = self.cfg.session_id;
        match (waiting, answer) {
            (Waiting::Tls, Answer::TlsStarted { description }) => {
                // RFC 3207 §4.2: forget everything learned before TLS.
                info!(session = id, tls = %description, "smtp: STARTTLS done");
                self.cfg.tls = Some(description);
                self.helo = None;
                self.auth = None;
                self.tx = None;
            }
            (Waiting::Auth { login }, Answer::Auth(LoginOutcome::Success(user))) => {
                info!(session = id, login = %loggable(&login), principal = user.principal_id, "smtp: authenticated");
                self.auth = Some(user);
                self.write(Reply::new(235, [2, 7, 0], "Authentication successful"));
            }
            (Waiting::Auth { login }, Answer::Auth(LoginOutcome::Failed)) => {
                info!(session = id, login = %loggable(&login), "smtp: authentication failed");
                self.auth_failed();
            }
            (Waiting::Auth { login }, Answer::Auth(LoginOutcome::Unavailable(e))) => {
                warn!(session = id, login = %loggable(&login), "smtp: authentication temporarily failed: {e}");
                self.error(Reply::new(
                    454,
                    [4, 7, 0],
                    "Temporary authentication failure, try again later",
                ));
            }
            (Waiting::Auth { login }, Answer::Auth(LoginOutcome::Blocked)) => {
                info!(session = id, login = %loggable(&login), "smtp: authentication refused, throttled");
                self.write(Reply::new(
                    421,
                    [4, 7, 0],
                    "Too many failed logins, try again later",
                ));
                self.close("login throttled");
            }
            (Waiting::MailFrom(tx), Answer::MaySendAs(Ok(true))) => self.mail_accepted(tx),
            (Waiting::MailFrom(tx), Answer::MaySendAs(Ok(false))) => {
                info!(session = id, from = %tx.mail_from, user = %self.login(), "smtp: sender refused, not owned by user");
                self.error(Reply::new(
                    553,
                    [5, 7, 1],
                    format!(
                        "<{}>: Sender address not owned by user {}",
                        tx.mail_from,
                        self.login()
                    ),
                ));
            }
            (Waiting::MailFrom(_), Answer::MaySendAs(Err(e))) => {
                warn!(session = id, "smtp: sender check failed: {e}");
                self.error(Reply::new(
                    451,
                    [4, 3, 0],
                    "Temporary failure checking the sender, try again later",
                ));
            }
            (Waiting::Rcpt(rcpt), Answer::Recipient(r)) => self.rcpt_resolved(rcpt, r),
            (Waiting::HeaderFrom(remaining), Answer::MaySendAs(Ok(true))) => {
                self.check_header_from(remaining)
            }
            (Waiting::HeaderFrom(_), Answer::MaySendAs(Ok(false))) => {
                info!(session = id, user = %self.login(), "smtp: message refused, From: header not owned by user");
                let text = format!("From: header address not owned by user {}", self.login());
                self.message_failed(Reply::new(553, [5, 7, 1], text));
            }
            (Waiting::HeaderFrom(_), Answer::MaySendAs(Err(e))) => {
                warn!(session = id, "smtp: From: header check failed: {e}");
                self.message_failed(Reply::new(
                    451,
                    [4, 3, 0],
                    "Temporary failure checking the sender, try again later",
                ));
            }
            (Waiting::Deliver { message_id, size }, Answer::Delivered { local, remote }) => {
                self.delivered(&message_id, size, local, remote)
            }
            (_, answer) => {
                debug_assert!(false, "answer does not fit the effect: {answer:?}");
                self.close("internal error");
            }
        }
    }

    // ---- output helpers ----

    fn write(&mut self, r: Reply) {
        r.write_to(&mut self.out);
    }

    /// An error reply to a command: counts towards `max_errors`.
    fn error(&mut self, r: Reply) {
        self.write(r);
        self.errors += 1;
        if self.errors >= self.cfg.limits.max_errors && self.closed.is_none() {
            info!(
                session = self.cfg.session_id,
                errors = self.errors,
                "smtp: too many errors, closing"
            );
            self.write(Reply::new(
                421,
                [4, 7, 0],
                "Too many errors, closing connection",
            ));
            self.close("too many errors");
        }
    }

    fn close(&mut self, why: &'static str) {
        if self.closed.is_none() {
            self.closed = Some(why);
        }
    }

    fn wait(&mut self, w: Waiting, e: Effect) {
        self.phase = Phase::Waiting;
        self.waiting = Some(w);
        self.effect = Some(e);
    }

    fn login(&self) -> String {
        self.auth
            .as_ref()
            .map(|u| u.login.clone())
            .unwrap_or_default()
    }

    fn is_lmtp(&self) -> bool {
        self.cfg.role == Role::Lmtp
    }

    fn auth_allowed(&self) -> bool {
        !self.is_lmtp() && (self.cfg.tls.is_some() || self.cfg.plaintext_auth_allowed)
    }

    // ---- framing ----

    /// The next complete line, CRLF included. A line longer than the limit
    /// is dropped up to its LF and reported once as `TooLong`.
    ///
    /// Not `smtp_proto::RequestReceiver`: its 4096-octet limit is fixed and
    /// it cannot tell AUTH lines (which may be longer) from others.
    fn next_line(&mut self) -> Option<Line> {
        let limit = match self.phase {
            Phase::Command => {
                let head = &self.input[..self.input.len().min(5)];
                if head.len() == 5 && head.eq_ignore_ascii_case(b"AUTH ") {
                    MAX_AUTH_LINE
                } else {
                    self.cfg.limits.max_line_length
                }
            }
            _ => MAX_AUTH_LINE,
        };
        match self.input.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let line = self.input.split_to(i + 1);
                if std::mem::take(&mut self.discarding_line) || line.len() > limit {
                    Some(Line::TooLong)
                } else {
                    Some(Line::Complete(line))
                }
            }
            None => {
                if self.discarding_line || self.input.len() > limit {
                    self.discarding_line = true;
                    self.input.clear();
                }
                None
            }
        }
    }

    fn on_line(&mut self, line: &[u8]) {
        match std::mem::replace(&mut self.phase, Phase::Command) {
            Phase::Command => self.on_command(line),
            Phase::AuthPlain => {
                if let Some(bytes) = self.auth_response(line) {
                    self.auth_plain(&bytes);
                }
            }
            Phase::AuthLoginUser => {
                if let Some(bytes) = self.auth_response(line) {
                    self.auth_login_field(bytes, "Login", |m, login| m.auth_login_user(login));
                }
            }
            Phase::AuthLoginPass(login) => {
                if let Some(bytes) = self.auth_response(line) {
                    self.auth_login_field(bytes, "Password", |m, password| {
                        m.authenticate(login, password)
                    });
                }
            }
            _ => unreachable!("on_line outside a line phase"),
        }
    }

    // ---- commands ----

    fn on_command(&mut self, line: &[u8]) {
        // RFC 5321 §4.1.1.3: `RCPT TO:<Postmaster>` without a domain MUST be
        // accepted. smtp-proto's parser wants a domain: give it this
        // server's name (the backend routes it to a hosted postmaster).
        let qualified;
        let line = match unqualified_postmaster(line) {
            Some(rest) => {
                qualified = [
                    &b"RCPT TO:<postmaster@"[..],
                    self.cfg.hostname.as_bytes(),
                    b">",
                    rest,
                ]
                .concat();
                &qualified[..]
            }
            None => line,
        };
        let request = match Request::parse(&mut line.iter()) {
            Ok(r) => r,
            Err(e) => {
                if self.helo.is_none() && looks_like_http(line) {
                    // Cross-protocol requests (a browser or proxy pointed
                    // at port 25): hang up, as Postfix does.
                    info!(
                        session = self.cfg.session_id,
                        "smtp: HTTP request on an SMTP port, closing"
                    );
                    self.write(Reply::new(421, [4, 7, 0], "This is an SMTP server"));
                    return self.close("HTTP request");
                }
                let r = parse_error_reply(e);
                debug!(session = self.cfg.session_id, reply = %r, "smtp: bad command");
                return self.error(r);
            }
        };
        let lmtp = self.is_lmtp();
        match request {
            Request::Ehlo { host } | Request::Helo { host } if lmtp => {
                let _ = host;
                self.error(Reply::new(500, [5, 5, 1], "This is LMTP: send LHLO"))
            }
            Request::Lhlo { .. } if !lmtp => {
                self.error(Reply::new(500, [5, 5, 1], "LHLO is for LMTP: send EHLO"))
            }
            Request::Ehlo { host } | Request::Lhlo { host } => self.hello(host, true),
            Request::Helo { host } => self.hello(host, false),
            Request::StartTls => self.starttls(),
            Request::Auth {
                mechanism,
                initial_response,
            } => self.auth(mechanism, initial_response),
            Request::Mail { from } => self.mail(from),
            Request::Rcpt { to } => self.rcpt(to),
            Request::Data => self.data(),
            Request::Bdat {
                chunk_size,
                is_last,
            } => self.bdat(chunk_size, is_last),
            Request::Rset => {
                self.tx = None;
                self.write(Reply::new(250, [2, 0, 0], "OK"));
            }
            Request::Noop { .. } => self.write(Reply::new(250, [2, 0, 0], "OK")),
            Request::Quit => {
                let text = format!("{} closing connection", self.cfg.hostname);
                self.write(Reply::new(221, [2, 0, 0], text));
                self.close("quit");
            }
            // RFC 5321 §3.5.3: 252 when we will not say whether an address exists.
            Request::Vrfy { .. } => self.write(Reply::new(
                252,
                [2, 5, 2],
                "Cannot VRFY user, but will accept message and attempt delivery",
            )),
            Request::Expn { .. } => self.error(Reply::new(502, [5, 5, 1], "EXPN not available")),
            Request::Help { .. } => self.write(Reply::new(
                214,
                [2, 0, 0],
                "See RFC 5321 (https://www.rfc-editor.org/rfc/rfc5321)",
            )),
            Request::Etrn { .. } | Request::Atrn { .. } | Request::Burl { .. } => {
                self.error(Reply::new(502, [5, 5, 1], "Command not implemented"))
            }
        }
    }

    fn hello(&mut self, host: String, extended: bool) {
        debug!(session = self.cfg.session_id, helo = %host, "smtp: hello");
        // RFC 5321 §4.1.4: EHLO/HELO resets the transaction.
        self.tx = None;
        if extended {
            let mut ehlo = EhloResponse::new(self.cfg.hostname.as_str());
            ehlo.capabilities = smtp_proto::EXT_PIPELINING
                | smtp_proto::EXT_SIZE
                | smtp_proto::EXT_8BIT_MIME
                | smtp_proto::EXT_SMTP_UTF8
                | smtp_proto::EXT_ENHANCED_STATUS_CODES
                | smtp_proto::EXT_DSN
                | smtp_proto::EXT_CHUNKING
                | smtp_proto::EXT_BINARY_MIME;
            if self.cfg.tls_available && self.cfg.tls.is_none() {
                ehlo.capabilities |= smtp_proto::EXT_START_TLS;
            }
            // RFC 4954 §4: no AUTH once authenticated.
            if self.auth_allowed() && self.auth.is_none() {
                ehlo.capabilities |= smtp_proto::EXT_AUTH;
                ehlo.auth_mechanisms = smtp_proto::AUTH_PLAIN | smtp_proto::AUTH_LOGIN;
            }
            ehlo.size = self.cfg.limits.message_size;
            // smtp-proto writes a fixed first line ("<hostname> you had me
            // at EHLO"); we keep its capability lines and write our own
            // greeting line instead.
            let mut lines = Vec::with_capacity(256);
            let _ = ehlo.write(&mut lines);
            let caps = lines
                .iter()
                .position(|&b| b == b'\n')
                .map_or(&lines[..0], |i| &lines[i + 1..]);
            let first = format!("250-{} Hello {}\r\n", self.cfg.hostname, helo_shown(&host));
            self.out.extend_from_slice(first.as_bytes());
            self.out.extend_from_slice(caps);
        } else {
            // RFC 2034 §3: no enhanced code in the HELO reply either.
            let line = format!("250 {}\r\n", self.cfg.hostname);
            self.out.extend_from_slice(line.as_bytes());
        }
        self.helo = Some(host);
    }

    fn starttls(&mut self) {
        if !self.cfg.tls_available {
            return self.error(Reply::new(454, [4, 7, 0], "TLS not available"));
        }
        if self.cfg.tls.is_some() {
            return self.error(Reply::new(503, [5, 5, 1], "Already using TLS"));
        }
        self.write(Reply::new(220, [2, 0, 0], "Ready to start TLS"));
        // RFC 3207 §4 / CVE-2011-0411: whatever was pipelined after
        // STARTTLS arrived in plaintext and must not be acted on under TLS.
        if !self.input.is_empty() {
            info!(
                session = self.cfg.session_id,
                octets = self.input.len(),
                "smtp: discarding input pipelined after STARTTLS"
            );
            self.input.clear();
        }
        self.wait(Waiting::Tls, Effect::StartTls);
    }

    fn auth(&mut self, mechanism: u64, initial: String) {
        if self.is_lmtp() {
            return self.error(Reply::new(502, [5, 5, 1], "AUTH not available in LMTP"));
        }
        if !self.auth_allowed() {
            return if self.cfg.tls_available {
                self.error(Reply::new(
                    530,
                    [5, 7, 0],
                    "Must issue a STARTTLS command first",
                ))
            } else {
                self.error(Reply::new(
                    538,
                    [5, 7, 11],
                    "Encryption required for requested authentication mechanism",
                ))
            };
        }
        if self.auth.is_some() {
            return self.error(Reply::new(503, [5, 5, 1], "Already authenticated"));
        }
        if self.helo.is_none() {
            return self.error(Reply::new(503, [5, 5, 1], "Send EHLO first"));
        }
        if self.tx.is_some() {
            return self.error(Reply::new(
                503,
                [5, 5, 1],
                "AUTH not allowed during a mail transaction",
            ));
        }
        match mechanism {
            smtp_proto::AUTH_PLAIN => {
                if initial.is_empty() {
                    self.out.extend_from_slice(b"334 \r\n");
                    self.phase = Phase::AuthPlain;
                } else if let Some(bytes) = self.decode_initial(&initial) {
                    self.auth_plain(&bytes);
                }
            }
            smtp_proto::AUTH_LOGIN => {
                if initial.is_empty() {
                    self.out.extend_from_slice(
                        format!("334 {}\r\n", sasl::LOGIN_USERNAME_CHALLENGE).as_bytes(),
                    );
                    self.phase = Phase::AuthLoginUser;
                } else if let Some(bytes) = self.decode_initial(&initial) {
                    self.auth_login_field(bytes, "Login", |m, login| m.auth_login_user(login));
                }
            }
            _ => self.error(Reply::new(
                504,
                [5, 5, 4],
                "Unrecognized authentication mechanism",
            )),
        }
    }

    /// RFC 4954 §4: "=" is an empty initial response. A `*` here is not a
    /// cancellation (that is for continuation lines), just bad base64.
    fn decode_initial(&mut self, initial: &str) -> Option<Vec<u8>> {
        match sasl::decode_response(initial) {
            Ok(b) => Some(b),
            Err(_) => {
                self.error(Reply::new(501, [5, 5, 2], "Invalid base64 data"));
                None
            }
        }
    }

    /// A continuation line: `*` cancels, anything else is base64.
    fn auth_response(&mut self, line: &[u8]) -> Option<Vec<u8>> {
        let Ok(text) = std::str::from_utf8(trim_crlf(line)) else {
            self.error(Reply::new(501, [5, 5, 2], "Invalid base64 data"));
            return None;
        };
        match sasl::decode_response(text) {
            Ok(b) => Some(b),
            Err(SaslError::Cancelled) => {
                self.error(Reply::new(501, [5, 0, 0], "Authentication cancelled"));
                None
            }
            Err(_) => {
                self.error(Reply::new(501, [5, 5, 2], "Invalid base64 data"));
                None
            }
        }
    }

    /// One decoded LOGIN field (user name or password): it must be UTF-8.
    fn auth_login_field(
        &mut self,
        bytes: Vec<u8>,
        what: &str,
        then: impl FnOnce(&mut Self, String),
    ) {
        match String::from_utf8(bytes) {
            Ok(text) => then(self, text),
            Err(_) => self.error(Reply::new(501, [5, 5, 2], format!("{what} is not UTF-8"))),
        }
    }

    fn auth_login_user(&mut self, login: String) {
        self.out
            .extend_from_slice(format!("334 {}\r\n", sasl::LOGIN_PASSWORD_CHALLENGE).as_bytes());
        self.phase = Phase::AuthLoginPass(login);
    }

    /// RFC 4616 PLAIN, decoded by the shared [`sasl::plain`].
    fn auth_plain(&mut self, bytes: &[u8]) {
        match sasl::plain(bytes) {
            Ok(c) => self.authenticate(c.login, c.password),
            Err(SaslError::Authzid) => {
                // Acting as someone else is not supported.
                info!(
                    session = self.cfg.session_id,
                    "smtp: authentication failed, authorization identity differs"
                );
                self.auth_failed()
            }
            // An empty authentication identity is a failed login, as before
            // the shared decoder (which calls it malformed).
            Err(_) if plain_without_login(bytes) => self.auth_failed(),
            Err(_) if bytes.split(|&b| b == 0).count() == 3 => {
                self.error(Reply::new(501, [5, 5, 2], "Credentials are not UTF-8"))
            }
            Err(_) => self.error(Reply::new(501, [5, 5, 2], "Malformed PLAIN response")),
        }
    }

    fn authenticate(&mut self, login: String, password: String) {
        if login.is_empty() {
            return self.auth_failed();
        }
        self.wait(
            Waiting::Auth {
                login: login.clone(),
            },
            Effect::Authenticate {
                login,
                password: Password(password),
            },
        );
    }

    fn auth_failed(&mut self) {
        self.auth_failures += 1;
        self.error(Reply::new(
            535,
            [5, 7, 8],
            "Authentication credentials invalid",
        ));
        if self.auth_failures >= self.cfg.limits.max_auth_failures && self.closed.is_none() {
            self.write(Reply::new(
                421,
                [4, 7, 0],
                "Too many failed logins, closing connection",
            ));
            self.close("too many failed logins");
        }
    }

    fn mail(&mut self, from: MailFrom<String>) {
        use smtp_proto::*;
        if self.helo.is_none() {
            let hello = if self.is_lmtp() { "LHLO" } else { "EHLO/HELO" };
            return self.error(Reply::new(503, [5, 5, 1], format!("Send {hello} first")));
        }
        if self.tx.is_some() {
            return self.error(Reply::new(503, [5, 5, 1], "Nested MAIL command"));
        }
        if self.cfg.role == Role::Submission && self.auth.is_none() {
            return self.error(Reply::new(530, [5, 7, 0], "Authentication required"));
        }
        let unsupported_flags =
            MAIL_REQUIRETLS | MAIL_CONPERM | MAIL_BY_NOTIFY | MAIL_BY_RETURN | MAIL_BY_TRACE;
        if from.flags & unsupported_flags != 0
            || from.by != 0
            || from.hold_for != 0
            || from.hold_until != 0
            || from.mt_priority != 0
            || from.solicit.is_some()
            || from.mtrk.is_some()
            || from.trans_id.is_some()
        {
            return self.error(Reply::new(
                555,
                [5, 5, 4],
                "MAIL FROM parameter not supported",
            ));
        }
        if from.size > self.cfg.limits.message_size {
            return self.error(Reply::new(
                552,
                [5, 3, 4],
                format!(
                    "Message size exceeds the limit of {} bytes",
                    self.cfg.limits.message_size
                ),
            ));
        }
        let smtputf8 = from.flags & MAIL_SMTPUTF8 != 0;
        if !smtputf8 && !from.address.is_ascii() {
            return self.error(Reply::new(
                553,
                [5, 6, 7],
                "Non-ASCII sender address requires SMTPUTF8",
            ));
        }
        let body = if from.flags & MAIL_BODY_BINARYMIME != 0 {
            Body::BinaryMime
        } else if from.flags & MAIL_BODY_8BITMIME != 0 {
            Body::EightBitMime
        } else {
            Body::SevenBit
        };
        let ret = if from.flags & MAIL_RET_FULL != 0 {
            Some(Ret::Full)
        } else if from.flags & MAIL_RET_HDRS != 0 {
            Some(Ret::Headers)
        } else {
            None
        };
        let tx = Transaction {
            mail_from: from.address,
            body,
            ret,
            envid: from.env_id,
            smtputf8,
            rcpts: Vec::new(),
            data: Vec::new(),
            bdat: false,
        };
        match &self.auth {
            Some(user) => {
                let effect = Effect::MaySendAs {
                    user: user.clone(),
                    address: tx.mail_from.clone(),
                };
                self.wait(Waiting::MailFrom(tx), effect);
            }
            None => self.mail_accepted(tx),
        }
    }

    fn mail_accepted(&mut self, tx: Transaction) {
        debug!(session = self.cfg.session_id, from = %tx.mail_from, "smtp: sender accepted");
        self.tx = Some(tx);
        self.write(Reply::new(250, [2, 1, 0], "Sender OK"));
    }

    fn rcpt(&mut self, to: RcptTo<String>) {
        use smtp_proto::*;
        let max = self.cfg.limits.max_recipients;
        let Some(tx) = &self.tx else {
            return self.error(Reply::new(503, [5, 5, 1], "Need MAIL command first"));
        };
        if tx.rcpts.len() >= max {
            return self.error(Reply::new(452, [4, 5, 3], "Too many recipients"));
        }
        if to.address.is_empty() {
            return self.error(Reply::new(501, [5, 1, 3], "Empty recipient address"));
        }
        if to.flags & (RCPT_CONNEG | RCPT_RRVS_REJECT | RCPT_RRVS_CONTINUE) != 0 || to.rrvs != 0 {
            return self.error(Reply::new(
                555,
                [5, 5, 4],
                "RCPT TO parameter not supported",
            ));
        }
        if !tx.smtputf8 && !to.address.is_ascii() {
            return self.error(Reply::new(
                553,
                [5, 6, 7],
                "Non-ASCII recipient address requires SMTPUTF8",
            ));
        }
        let notify_bits =
            RCPT_NOTIFY_SUCCESS | RCPT_NOTIFY_FAILURE | RCPT_NOTIFY_DELAY | RCPT_NOTIFY_NEVER;
        let notify = (to.flags & notify_bits != 0).then_some(Notify {
            success: to.flags & RCPT_NOTIFY_SUCCESS != 0,
            failure: to.flags & RCPT_NOTIFY_FAILURE != 0,
            delay: to.flags & RCPT_NOTIFY_DELAY != 0,
        });
        let rcpt = Recipient {
            address: to.address,
            notify,
            orcpt: to.orcpt,
        };
        let effect = Effect::ResolveRecipient {
            address: rcpt.address.clone(),
        };
        self.wait(Waiting::Rcpt(rcpt), effect);
    }

    fn rcpt_resolved(&mut self, rcpt: Recipient, r: Result<Rcpt, TempFail>) {
        let id = self.cfg.session_id;
        let may_relay = !self.is_lmtp() && self.auth.is_some();
        let Some(tx) = self.tx.as_mut() else {
            // Cannot happen: nothing runs while a lookup is out. Still answer.
            return self.error(Reply::new(503, [5, 5, 1], "Need MAIL command first"));
        };
        match r {
            Ok(Rcpt::Local) => {
                tx.rcpts.push((rcpt, Rcpt::Local));
                self.write(Reply::new(250, [2, 1, 5], "Recipient OK"));
            }
            Ok(Rcpt::Remote) if may_relay => {
                tx.rcpts.push((rcpt, Rcpt::Remote));
                self.write(Reply::new(250, [2, 1, 5], "Recipient OK"));
            }
            Ok(Rcpt::Remote) => {
                info!(session = id, from = %tx.mail_from, to = %rcpt.address, "smtp: relaying denied");
                self.error(Reply::new(
                    554,
                    [5, 7, 1],
                    format!("<{}>: Relay access denied", rcpt.address),
                ));
            }
            Ok(Rcpt::UnknownLocal) => {
                info!(session = id, from = %tx.mail_from, to = %rcpt.address, "smtp: unknown recipient");
                self.error(Reply::new(
                    550,
                    [5, 1, 1],
                    format!(
                        "<{}>: Recipient address rejected: User unknown",
                        rcpt.address
                    ),
                ));
            }
            Err(e) => {
                warn!(session = id, to = %rcpt.address, "smtp: recipient lookup failed: {e}");
                self.error(Reply::new(
                    451,
                    [4, 4, 3],
                    "Temporary failure looking up the recipient, try again later",
                ));
            }
        }
    }

    fn data(&mut self) {
        let Some(tx) = self.tx.as_mut() else {
            return self.error(Reply::new(503, [5, 5, 1], "Need MAIL command first"));
        };
        if tx.rcpts.is_empty() {
            return self.error(Reply::new(554, [5, 5, 1], "No valid recipients"));
        }
        if tx.body == Body::BinaryMime {
            return self.error(Reply::new(503, [5, 5, 1], "BODY=BINARYMIME requires BDAT"));
        }
        if tx.bdat {
            return self.error(Reply::new(503, [5, 5, 1], "DATA not allowed after BDAT"));
        }
        let rx = primed_data_receiver(&mut tx.data);
        self.phase = Phase::Data(DataState {
            rx: DataRx::Keep(rx),
            line_len: 0,
            too_long: false,
            too_big: false,
        });
        // RFC 2034: 354 is not a completion reply, so no enhanced code.
        self.out
            .extend_from_slice(b"354 End data with <CR><LF>.<CR><LF>\r\n");
    }

    fn bdat(&mut self, size: usize, last: bool) {
        let limit = self.cfg.limits.message_size;
        // Whatever happens, the chunk's octets must be read: otherwise they
        // would be taken for commands.
        let error = match &self.tx {
            None => Some(Reply::new(503, [5, 5, 1], "Need MAIL command first")),
            Some(tx) if tx.rcpts.is_empty() => {
                Some(Reply::new(554, [5, 5, 1], "No valid recipients"))
            }
            Some(tx) if tx.data.len().saturating_add(size) > limit => Some(Reply::new(
                552,
                [5, 3, 4],
                format!("Message size exceeds the limit of {limit} bytes"),
            )),
            Some(_) => None,
        };
        let rx = match (&error, self.tx.as_mut()) {
            (None, Some(tx)) => {
                tx.bdat = true;
                BdatRx::Keep(BdatReceiver::new(size, last))
            }
            _ => {
                // RFC 3030 §2: after a failed chunk the transaction is over.
                self.tx = None;
                BdatRx::Skip(DummyDataReceiver::new_bdat(size))
            }
        };
        self.phase = Phase::Bdat(BdatState {
            rx,
            last,
            size,
            error,
        });
    }

    // ---- message content ----

    fn pump_data(&mut self) {
        if self.tx.is_none() {
            // Cannot happen (DATA starts only inside a transaction); never
            // spin on it.
            self.phase = Phase::Command;
            return;
        }
        let Machine {
            phase,
            tx,
            input,
            cfg,
            ..
        } = self;
        let (Phase::Data(st), Some(tx)) = (phase, tx.as_mut()) else {
            return;
        };
        let mut it = input.iter();
        let done = match &mut st.rx {
            DataRx::Keep(rx) => rx.ingest(&mut it, &mut tx.data),
            DataRx::Skip(rx) => rx.ingest(&mut it),
        };
        let used = input.len() - it.as_slice().len();
        let max_line = cfg.limits.max_data_line_length;
        if max_line > 0 && !st.too_long {
            for &b in &input[..used] {
                if b == b'\n' {
                    st.line_len = 0;
                } else {
                    st.line_len += 1;
                    // `line_len` + the LF is the line's full length.
                    if st.line_len >= max_line {
                        st.too_long = true;
                        break;
                    }
                }
            }
        }
        input.advance(used);
        if done {
            if let DataRx::Keep(_) = st.rx {
                finish_primed_data(&mut tx.data);
                if tx.data.len() > cfg.limits.message_size {
                    st.too_big = true;
                }
            }
            let Phase::Data(st) = std::mem::replace(&mut self.phase, Phase::Command) else {
                unreachable!()
            };
            self.data_done(st);
            return;
        }
        // Over a limit: keep reading to the final dot, but store nothing.
        let over_size = tx.data.len().saturating_sub(2) > cfg.limits.message_size;
        if let DataRx::Keep(rx) = &st.rx {
            if over_size || st.too_long {
                st.too_big |= over_size;
                st.rx = DataRx::Skip(DummyDataReceiver::new_data(rx));
                tx.data = Vec::new();
            }
        }
    }

    fn data_done(&mut self, st: DataState) {
        let limits = &self.cfg.limits;
        if st.too_big {
            let text = format!(
                "Message size exceeds the limit of {} bytes",
                limits.message_size
            );
            info!(
                session = self.cfg.session_id,
                "smtp: message refused, too big"
            );
            return self.message_failed(Reply::new(552, [5, 3, 4], text));
        }
        if st.too_long {
            let text = format!(
                "Line too long (the limit is {} octets with CRLF)",
                limits.max_data_line_length
            );
            info!(
                session = self.cfg.session_id,
                "smtp: message refused, line too long"
            );
            return self.message_failed(Reply::new(500, [5, 5, 2], text));
        }
        self.message_complete();
    }

    /// Reads the rest of a BDAT chunk; true once it is complete.
    fn pump_bdat(&mut self) -> bool {
        let Machine {
            phase, tx, input, ..
        } = self;
        let Phase::Bdat(st) = phase else {
            return true;
        };
        let mut it = input.iter();
        let done = match (&mut st.rx, tx.as_mut()) {
            (BdatRx::Keep(rx), Some(tx)) => rx.ingest(&mut it, &mut tx.data),
            (BdatRx::Skip(rx), _) => rx.ingest(&mut it),
            // Cannot happen (Keep is chosen only inside a transaction).
            (BdatRx::Keep(_), None) => true,
        };
        let used = input.len() - it.as_slice().len();
        input.advance(used);
        if !done {
            return false;
        }
        let Phase::Bdat(st) = std::mem::replace(&mut self.phase, Phase::Command) else {
            unreachable!()
        };
        if let Some(r) = st.error {
            info!(session = self.cfg.session_id, reply = %r, "smtp: BDAT chunk refused");
            self.error(r);
        } else if st.last {
            self.message_complete();
        } else {
            self.write(Reply::new(
                250,
                [2, 0, 0],
                format!("{} octets received", st.size),
            ));
        }
        true
    }

    /// The message failed as a whole: one reply, or (LMTP) one per
    /// recipient. The transaction is over.
    fn message_failed(&mut self, r: Reply) {
        let n = match (&self.tx, self.is_lmtp()) {
            (Some(tx), true) => tx.rcpts.len().max(1),
            _ => 1,
        };
        for _ in 0..n {
            self.write(r.clone());
        }
        self.tx = None;
    }

    /// The whole message is in `tx.data`: check `From:` (authenticated
    /// sessions), then deliver.
    fn message_complete(&mut self) {
        let Some(tx) = &self.tx else {
            return;
        };
        if self.auth.is_some() {
            match header_from_addresses(&tx.data) {
                HeaderFrom::Absent => {}
                HeaderFrom::Unusable => {
                    info!(
                        session = self.cfg.session_id,
                        "smtp: message refused, From: header without a usable address"
                    );
                    return self.message_failed(Reply::new(
                        553,
                        [5, 7, 1],
                        "From: header has no usable address",
                    ));
                }
                HeaderFrom::Addresses(mut list) => {
                    // The envelope sender was checked already.
                    list.retain(|a| !a.eq_ignore_ascii_case(&tx.mail_from));
                    list.sort_by_key(|a| a.to_ascii_lowercase());
                    list.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
                    list.reverse(); // popped from the back
                    return self.check_header_from(list);
                }
            }
        }
        self.start_delivery();
    }

    fn check_header_from(&mut self, mut remaining: Vec<String>) {
        match (remaining.pop(), &self.auth) {
            (Some(address), Some(user)) => {
                let effect = Effect::MaySendAs {
                    user: user.clone(),
                    address,
                };
                self.wait(Waiting::HeaderFrom(remaining), effect);
            }
            _ => self.start_delivery(),
        }
    }

    fn start_delivery(&mut self) {
        let Some(tx) = self.tx.as_mut() else {
            return;
        };
        self.transactions += 1;
        let message_id = format!("{}.{}", self.cfg.session_id, self.transactions);
        let helo = self.helo.clone().unwrap_or_default();
        let single = match &tx.rcpts[..] {
            [(r, _)] => Some(r.address.as_str()),
            _ => None,
        };
        let trace = Trace {
            helo: &helo,
            peer_ip: self.cfg.peer_ip,
            by: &self.cfg.hostname,
            base_protocol: match self.cfg.role {
                Role::Lmtp => "LMTP",
                _ => "ESMTP",
            },
            smtputf8: tx.smtputf8,
            tls: self.cfg.tls.as_deref(),
            auth_login: self.auth.as_ref().map(|u| u.login.as_str()),
            id: &message_id,
            single_recipient: single,
            now: SystemTime::now(),
        };
        let header = trace.header();
        let data = std::mem::take(&mut tx.data);
        let size = data.len();
        let mut message = Vec::with_capacity(header.len() + data.len());
        message.extend_from_slice(header.as_bytes());
        message.extend_from_slice(&data);
        drop(data);

        let lmtp = self.cfg.role == crate::Role::Lmtp;
        let envelope = |rcpts: Vec<Recipient>| Envelope {
            mail_from: tx.mail_from.clone(),
            recipients: rcpts,
            ret: tx.ret,
            envid: tx.envid.clone(),
            body: tx.body,
            smtputf8: tx.smtputf8,
            auth: self.auth.clone(),
            peer_ip: self.cfg.peer_ip,
            helo: helo.clone(),
            session_id: self.cfg.session_id,
            message_id: message_id.clone(),
            tls: self.cfg.tls.clone(),
            junk: false,
            per_recipient: lmtp,
        };
        let (local, remote): (Vec<_>, Vec<_>) =
            tx.rcpts.iter().partition(|(_, kind)| *kind == Rcpt::Local);
        let strip = |v: Vec<&(Recipient, Rcpt)>| v.into_iter().map(|(r, _)| r.clone()).collect();
        let local: Vec<Recipient> = strip(local);
        let remote: Vec<Recipient> = strip(remote);
        let delivery = Delivery {
            local: (!local.is_empty()).then(|| envelope(local)),
            remote: (!remote.is_empty()).then(|| envelope(remote)),
            message: Bytes::from(message),
        };
        self.wait(
            Waiting::Deliver { message_id, size },
            Effect::Deliver(Box::new(delivery)),
        );
    }

    fn delivered(
        &mut self,
        message_id: &str,
        size: usize,
        local: Vec<Result<(), DeliverError>>,
        remote: Option<Result<(), DeliverError>>,
    ) {
        let id = self.cfg.session_id;
        let Some(tx) = self.tx.take() else {
            // Cannot happen: nothing runs while a delivery is out.
            return self.write(Reply::new(451, [4, 3, 0], "Transaction lost, try again"));
        };
        let mut results = local.into_iter();
        // Pair every recipient with its outcome; a missing result counts
        // as a temporary failure.
        let outcomes: Vec<(&Recipient, Result<(), DeliverError>)> = tx
            .rcpts
            .iter()
            .map(|(r, kind)| {
                let res = match kind {
                    Rcpt::Local => results.next().unwrap_or_else(|| {
                        Err(DeliverError::Temporary(
                            "backend returned no result for this recipient".into(),
                        ))
                    }),
                    _ => remote
                        .clone()
                        .unwrap_or_else(|| Err(DeliverError::Temporary("no queue result".into()))),
                };
                (r, res)
            })
            .collect();
        for (r, res) in &outcomes {
            match res {
                Ok(()) => {
                    info!(session = id, msg = message_id, from = %tx.mail_from, to = %r.address, size, "smtp: delivered")
                }
                Err(e) => {
                    warn!(session = id, msg = message_id, from = %tx.mail_from, to = %r.address, size, "smtp: delivery failed: {e}")
                }
            }
        }
        if self.is_lmtp() {
            // RFC 2033 §4.2: one reply per accepted recipient, in order.
            for (r, res) in outcomes {
                let reply = match res {
                    Ok(()) => Reply::new(250, [2, 0, 0], format!("<{}> delivered", r.address)),
                    Err(e) => {
                        let base = deliver_error_reply(&e);
                        Reply::new(
                            base.code,
                            base.esc,
                            format!("<{}> {}", r.address, base.text),
                        )
                    }
                };
                self.write(reply);
            }
            return;
        }
        // SMTP has one reply for the message. Any failure fails it all:
        // the client retries every recipient, so a recipient that got the
        // message may get it twice — better than one that never gets it.
        // Temporary failures win, so that a retry stays possible.
        let errors: Vec<DeliverError> = outcomes.into_iter().filter_map(|(_, r)| r.err()).collect();
        let worst = errors
            .iter()
            .find(|e| is_temporary(e))
            .or_else(|| errors.first());
        match worst {
            None => self.write(Reply::new(
                250,
                [2, 0, 0],
                format!("Message accepted as {message_id}"),
            )),
            Some(e) => {
                let r = deliver_error_reply(e);
                self.write(r);
            }
        }
    }
}

fn is_temporary(e: &DeliverError) -> bool {
    matches!(
        e,
        DeliverError::StorageFull(_) | DeliverError::Temporary(_) | DeliverError::Unresolved(_)
    )
}

fn deliver_error_reply(e: &DeliverError) -> Reply {
    match e {
        DeliverError::StorageFull(_) => Reply::new(
            452,
            [4, 3, 1],
            "Insufficient system storage, try again later",
        ),
        DeliverError::Temporary(_) => {
            Reply::new(451, [4, 3, 0], "Temporary local problem, try again later")
        }
        DeliverError::MailboxFull(_) => Reply::new(552, [5, 2, 2], "Mailbox full"),
        DeliverError::Permanent(_) => Reply::new(550, [5, 2, 0], "Delivery failed"),
        DeliverError::Policy(why) => Reply::new(550, [5, 7, 1], why.clone()),
        DeliverError::Unresolved(_) => Reply::new(
            451,
            [4, 4, 3],
            "Sender checks could not be completed (DNS), try again later",
        ),
    }
}

fn parse_error_reply(e: smtp_proto::Error) -> Reply {
    use smtp_proto::Error as E;
    match e {
        E::UnknownCommand => Reply::new(500, [5, 5, 1], "Unknown command"),
        E::InvalidSenderAddress => Reply::new(501, [5, 1, 7], "Invalid sender address"),
        E::InvalidRecipientAddress => Reply::new(501, [5, 1, 3], "Invalid recipient address"),
        E::SyntaxError { syntax } => Reply::new(501, [5, 5, 2], format!("Syntax: {syntax}")),
        E::InvalidParameter { param } => {
            Reply::new(501, [5, 5, 4], format!("Invalid value for {param}"))
        }
        E::UnsupportedParameter { param } => {
            Reply::new(555, [5, 5, 4], format!("Unsupported parameter {param}"))
        }
        _ => Reply::new(501, [5, 5, 2], "Syntax error"),
    }
}

/// smtp-proto's `DataReceiver` recognises the final "." only after a CRLF
/// it has seen itself, so an empty message (".\r\n" right after DATA)
/// would never end. We feed it the CRLF that ended the DATA command; it
/// lands in `buf`, and [`finish_primed_data`] takes it off again.
fn primed_data_receiver(buf: &mut Vec<u8>) -> DataReceiver {
    let mut rx = DataReceiver::new();
    buf.clear();
    rx.ingest(&mut b"\r\n".iter(), buf);
    rx
}

/// After the final dot the receiver's buffer holds our CRLF primer and the
/// content without the CRLF that ended its last line (smtp-proto counts
/// that CRLF as part of the terminator). Turns it into the message.
fn finish_primed_data(buf: &mut Vec<u8>) {
    if buf.len() < 2 {
        buf.clear(); // the empty message
    } else {
        buf.drain(..2);
        buf.extend_from_slice(b"\r\n");
    }
}

enum HeaderFrom {
    Absent,
    /// A `From:` header that yields no address.
    Unusable,
    Addresses(Vec<String>),
}

/// Every address in every `From:` header of the message.
fn header_from_addresses(message: &[u8]) -> HeaderFrom {
    let Some(parsed) = MessageParser::new().parse_headers(message) else {
        return HeaderFrom::Absent;
    };
    let mut seen_header = false;
    let mut out = Vec::new();
    for value in parsed.header_values(HeaderName::From) {
        seen_header = true;
        let HeaderValue::Address(a) = value else {
            return HeaderFrom::Unusable;
        };
        let before = out.len();
        out.extend(a.iter().filter_map(|x| x.address()).map(str::to_string));
        if out.len() == before {
            return HeaderFrom::Unusable;
        }
    }
    if seen_header {
        HeaderFrom::Addresses(out)
    } else {
        HeaderFrom::Absent
    }
}

/// "GET / HTTP/1.1" and friends.
/// For `RCPT TO:<Postmaster>` (any case, no domain), what follows the
/// address (parameters and the line end).
fn unqualified_postmaster(line: &[u8]) -> Option<&[u8]> {
    const HEAD: &[u8] = b"rcpt to:";
    if line.len() < HEAD.len() || !line[..HEAD.len()].eq_ignore_ascii_case(HEAD) {
        return None;
    }
    let mut rest = &line[HEAD.len()..];
    while let [b' ', tail @ ..] = rest {
        rest = tail;
    }
    const ADDR: &[u8] = b"<postmaster>";
    if rest.len() < ADDR.len() || !rest[..ADDR.len()].eq_ignore_ascii_case(ADDR) {
        return None;
    }
    Some(&rest[ADDR.len()..])
}

fn looks_like_http(line: &[u8]) -> bool {
    let line = trim_crlf(line);
    let methods: [&[u8]; 6] = [
        b"GET ",
        b"POST ",
        b"HEAD ",
        b"PUT ",
        b"CONNECT ",
        b"OPTIONS ",
    ];
    methods.iter().any(|m| line.starts_with(m))
        && line.windows(6).any(|w| w.eq_ignore_ascii_case(b" HTTP/"))
}

/// The client's EHLO argument as we echo it: printable ASCII, bounded.
fn helo_shown(host: &str) -> String {
    host.chars()
        .take(64)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}

/// A PLAIN response of three fields whose authentication identity (the
/// second) is empty.
fn plain_without_login(raw: &[u8]) -> bool {
    let fields: Vec<&[u8]> = raw.split(|&b| b == 0).collect();
    fields.len() == 3 && fields[1].is_empty()
}

fn trim_crlf(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// A login name as it may appear in logs: printable, bounded.
fn loggable(login: &str) -> String {
    login
        .chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests;
