//! One IMAP connection without the socket: client bytes go in
//! ([`Connection::push`]), responses come out ([`Connection::output`]),
//! and [`Connection::step`] says what the I/O loop must do next (read,
//! write and come back, do the TLS handshake, wait in IDLE, close).
//!
//! It owns the framer and the exchanges that span several client lines
//! (AUTHENTICATE challenges, IDLE until `DONE`), so that the tokio loop
//! in [`crate::server`] only moves bytes and waits, and the fuzz target
//! drives exactly what the server runs.

use std::sync::Arc;
use std::time::Duration;

use outpost_net::auth::sasl::Mechanism;
use tokio::sync::watch;

use crate::codec::framing::{Frame, FrameError, Framer, FramerLimits};
use crate::codec::parse::{parse_command, ParseOptions};
use crate::codec::response::{Code, Continuation, StatusResponse};
use crate::codec::types::Tag;
use crate::session::{Next, Session};
use crate::ImapContext;

/// Literal size accepted before login (LOGIN with a literal password).
const PRE_AUTH_LITERAL: u64 = 8 * 1024;

/// What the I/O loop does next. Before acting on any of them it writes
/// [`Connection::output`].
#[derive(Debug)]
pub enum Step {
    /// Read more client bytes, [`push`](Connection::push) them and step
    /// again. When nothing arrives within `timeout`, call
    /// [`timed_out`](Connection::timed_out).
    NeedInput { timeout: Duration },
    /// More output follows: write what there is and step again.
    Flush,
    /// Do the TLS handshake, then call
    /// [`tls_started`](Connection::tls_started).
    StartTls,
    /// In IDLE: wait for client bytes (push, step), for `watch` to change
    /// (call [`mailbox_changed`](Connection::mailbox_changed)), or for
    /// `timeout` (call [`timed_out`](Connection::timed_out)).
    Idle {
        watch: Option<watch::Receiver<i64>>,
        timeout: Duration,
    },
    /// Close the connection; `logout` when the client asked for it.
    Close { logout: bool },
}

enum Mode {
    Commands,
    /// AUTHENTICATE: the challenges still to send after the one sent, and
    /// the client's answers so far.
    Auth {
        tag: Tag,
        mechanism: Mechanism,
        left: Vec<&'static [u8]>,
        answers: Vec<String>,
    },
    Idle {
        tag: Tag,
    },
}

pub struct Connection {
    session: Session,
    framer: Framer,
    mode: Mode,
    authed_limits: bool,
    /// The session has a command in progress ([`Next::More`]).
    resuming: bool,
}

fn framer_limits(ctx: &ImapContext, authed: bool) -> FramerLimits {
    FramerLimits {
        max_line: ctx.limits.max_line,
        max_literal: if authed {
            ctx.limits.max_literal
        } else {
            PRE_AUTH_LITERAL
        },
        max_non_sync_literal: None,
        max_command: if authed {
            ctx.limits.max_command
        } else {
            ctx.limits.max_line as u64 + 2 * PRE_AUTH_LITERAL
        },
    }
}

impl Connection {
    /// A new connection; the greeting is already in the output. `tls`:
    /// the handshake was done before (imaps).
    pub fn new(ctx: Arc<ImapContext>, net: outpost_net::Session, tls: bool) -> Connection {
        let framer = Framer::new(framer_limits(&ctx, false));
        let mut session = Session::new(ctx.clone(), net, tls);
        let greeting = StatusResponse::ok(None, format!("{} IMAP ready", ctx.listener.hostname))
            .with_code(Code::Capability(session.capabilities()));
        session.send(greeting);
        Connection {
            session,
            framer,
            mode: Mode::Commands,
            authed_limits: false,
            resuming: false,
        }
    }

    /// The session id, for logs.
    pub fn id(&self) -> u64 {
        self.session.net.id
    }

    /// Client bytes as they arrived.
    pub fn push(&mut self, bytes: &[u8]) {
        self.framer.push(bytes);
    }

    /// Client bytes received but not yet consumed.
    pub fn buffered(&self) -> usize {
        self.framer.buffered()
    }

    /// Responses to write. The loop writes and clears them (and may
    /// replace a large emptied buffer to give the memory back).
    pub fn output(&mut self) -> &mut Vec<u8> {
        &mut self.session.out
    }

    /// The acceptor for [`Step::StartTls`].
    pub fn tls_acceptor(&self) -> Option<crate::TlsAcceptor> {
        self.session.ctx.listener.tls.clone()
    }

    /// After [`Step::StartTls`]'s handshake.
    pub fn tls_started(&mut self) {
        self.session.tls = true;
        self.framer.clear();
        tracing::info!(session = self.id(), "imap: starttls");
    }

    /// The client sent nothing in time: say why before the loop closes.
    pub fn timed_out(&mut self) {
        let text = match self.mode {
            Mode::Idle { .. } => "IDLE timed out",
            _ => "Autologout; idle for too long",
        };
        self.bye(text);
    }

    /// In IDLE, the selected mailbox changed: report it.
    pub async fn mailbox_changed(&mut self) {
        self.session.sync(true).await;
    }

    fn bye(&mut self, text: &str) {
        tracing::info!(session = self.id(), "imap: bye: {text}");
        self.session.send(StatusResponse::bye(text));
    }

    fn too_many_bad(&mut self) -> bool {
        if self.session.bad > self.session.ctx.limits.max_bad_commands {
            self.bye("Too many bad commands");
            return true;
        }
        false
    }

    fn wait(&self) -> Duration {
        let limits = &self.session.ctx.limits;
        match (&self.mode, self.session.user().is_some()) {
            (Mode::Auth { .. }, _) | (_, false) => limits.login_timeout,
            _ => limits.command_timeout,
        }
    }

    /// Works through the buffered input until the loop has to act.
    pub async fn step(&mut self) -> Step {
        loop {
            if self.resuming {
                let next = Box::pin(self.session.resume()).await;
                if let Some(step) = self.after(next).await {
                    return step;
                }
                continue;
            }
            match &mut self.mode {
                Mode::Commands => {}
                Mode::Auth { .. } => match self.framer.poll_line() {
                    Ok(None) => {
                        return Step::NeedInput {
                            timeout: self.wait(),
                        }
                    }
                    Ok(Some(line)) => {
                        self.auth_line(&line).await;
                        continue;
                    }
                    Err(_) => {
                        self.auth_line(b"").await;
                        continue;
                    }
                },
                Mode::Idle { tag } => match self.framer.poll_line() {
                    Ok(None) => {
                        let watch = self.session.selected().map(|s| s.watch.clone());
                        let timeout = self.session.ctx.limits.idle_timeout;
                        return Step::Idle { watch, timeout };
                    }
                    line => {
                        let tag = tag.clone();
                        let line = line.ok().flatten().unwrap_or_default();
                        self.mode = Mode::Commands;
                        self.session.idle_done(tag, &line);
                        continue;
                    }
                },
            }
            let frame = match self.framer.poll() {
                Ok(Some(f)) => f,
                Ok(None) => {
                    return Step::NeedInput {
                        timeout: self.wait(),
                    }
                }
                Err(e) => {
                    self.frame_error(e);
                    if self.too_many_bad() {
                        return Step::Close { logout: false };
                    }
                    continue;
                }
            };
            let bytes = match frame {
                Frame::NeedContinuation { .. } => {
                    self.session
                        .send(Continuation::Text("Ready for literal data".into()));
                    continue;
                }
                Frame::Command(bytes) => bytes,
            };
            let cmd = match parse_command(&bytes, &ParseOptions::default()) {
                Ok(c) => c,
                Err(e) if matches!(e.code, Some(Code::BadCharset(_))) => {
                    // RFC 3501 6.4.4: an unknown charset is NO [BADCHARSET].
                    self.session
                        .send(StatusResponse::no(e.tag, e.message).with_code(e.code));
                    continue;
                }
                Err(e) => {
                    self.session.bad += 1;
                    self.session
                        .send(StatusResponse::bad(e.tag, e.message).with_code(e.code));
                    if self.too_many_bad() {
                        return Step::Close { logout: false };
                    }
                    continue;
                }
            };
            drop(bytes);
            let bad_before = self.session.bad;
            let next = Box::pin(self.session.handle(cmd)).await;
            if self.session.bad == bad_before {
                // Only bad commands in a row count.
                self.session.bad = 0;
            }
            if let Some(step) = self.after(next).await {
                return step;
            }
        }
    }

    /// What a command's outcome asks of the loop, if anything.
    async fn after(&mut self, next: Next) -> Option<Step> {
        self.resuming = matches!(next, Next::More);
        if !self.authed_limits && self.session.user().is_some() {
            self.framer
                .set_limits(framer_limits(&self.session.ctx, true));
            self.authed_limits = true;
        }
        if self.too_many_bad() {
            return Some(Step::Close { logout: false });
        }
        match next {
            Next::Continue => None,
            Next::More => Some(Step::Flush),
            Next::Logout => Some(Step::Close { logout: true }),
            Next::StartTls if self.framer.buffered() > 0 => {
                // Pipelined past STARTTLS (CVE-2011-0411).
                Some(Step::Close { logout: false })
            }
            Next::StartTls => Some(Step::StartTls),
            Next::Authenticate(tag, mechanism) => {
                // PLAIN: one empty challenge; LOGIN: "Username:" and
                // "Password:" (sasl::LOGIN_*_CHALLENGE in base64).
                let mut left: Vec<&'static [u8]> = match mechanism {
                    Mechanism::Plain => vec![b""],
                    Mechanism::Login => vec![b"Username:", b"Password:"],
                };
                let first = left.remove(0);
                self.session.send(Continuation::Base64(first.to_vec()));
                self.mode = Mode::Auth {
                    tag,
                    mechanism,
                    left,
                    answers: Vec::new(),
                };
                None
            }
            Next::Idle(tag) => {
                self.mode = Mode::Idle { tag };
                Box::pin(self.session.idle_start()).await;
                None
            }
        }
    }

    async fn auth_line(&mut self, line: &[u8]) {
        let Mode::Auth {
            tag,
            mechanism,
            left,
            answers,
        } = &mut self.mode
        else {
            return;
        };
        answers.push(String::from_utf8_lossy(line).into_owned());
        if line.trim_ascii() != b"*" && !left.is_empty() {
            let next = left.remove(0);
            self.session.send(Continuation::Base64(next.to_vec()));
            return;
        }
        let (tag, mechanism, answers) = (tag.clone(), *mechanism, std::mem::take(answers));
        self.mode = Mode::Commands;
        Box::pin(self.session.auth_exchange(&tag, mechanism, &answers)).await;
        if !self.authed_limits && self.session.user().is_some() {
            self.framer
                .set_limits(framer_limits(&self.session.ctx, true));
            self.authed_limits = true;
        }
    }

    fn frame_error(&mut self, e: FrameError) {
        let tag = e.tag().cloned();
        match e {
            FrameError::LiteralTooBig { .. } => {
                self.session.bad += 1;
                self.session
                    .send(StatusResponse::no(tag, e.to_string()).with_code(Code::TooBig));
            }
            _ => self.session.bad_cmd(tag, &e.to_string()),
        }
    }

    /// Whether the client is logged in (for tests and the fuzz check).
    pub fn authenticated(&self) -> bool {
        self.session.user().is_some()
    }

    /// Messages in the selected mailbox as this session has told the
    /// client (EXISTS minus reported expunges); `None` when nothing is
    /// selected.
    pub fn selected_exists(&self) -> Option<u32> {
        self.session.selected().map(|s| s.exists())
    }
}
