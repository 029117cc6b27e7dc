//! The POP3 session as a state machine, without I/O.
//!
//! The connection loop feeds it input lines ([`Machine::on_frame`]) and
//! carries out the [`Action`]s it returns. An action that needs the backend
//! (log in, read a message, expunge) is answered by calling back into the
//! machine ([`Machine::login_result`], [`Machine::message_result`],
//! [`Machine::update_result`]), which then returns the next action.
//!
//! States follow RFC 1939 §3: AUTHORIZATION → TRANSACTION → UPDATE.

use base64::Engine as _;

use crate::backend::{MaildropEntry, TempFail};
use crate::codec::{parse_command, printable, Command, Frame, MsgNum, RespCode, Response, Secret};

/// What the machine needs to know about its connection and settings.
#[derive(Clone, Debug)]
pub struct MachineConfig {
    /// For the greeting and the sign-off.
    pub hostname: String,
    /// A TLS acceptor is configured, so STLS can be offered.
    pub tls_available: bool,
    /// The connection is already TLS (pop3s, or after STLS).
    pub is_tls: bool,
    /// Logins are allowed without TLS (plaintext allowed on loopback and
    /// the client is on loopback).
    pub plaintext_allowed: bool,
    /// After this many bad commands the session is closed.
    pub max_bad_commands: u32,
}

/// What the connection loop must do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Send this and read the next line.
    Send(Response),
    /// Send this and close the connection (no UPDATE unless the machine
    /// asked for [`Action::Expunge`] before).
    Close(Response),
    /// Send this, drop any input buffered after the STLS line, do the TLS
    /// handshake, then call [`Machine::tls_started`].
    StartTls(Response),
    /// Consult the login throttle, check the credentials, take the maildrop
    /// lock, open the maildrop; report with [`Machine::login_result`].
    Login { login: String, password: Secret },
    /// Read message `id`; report with [`Machine::message_result`].
    /// `body_lines` is `Some` for TOP.
    Fetch { id: u64, body_lines: Option<u64> },
    /// Expunge these messages (UPDATE state); report with
    /// [`Machine::update_result`].
    Expunge { ids: Vec<u64> },
}

/// How a login attempt ended, as the connection loop reports it.
#[derive(Debug, PartialEq, Eq)]
pub enum LoginOutcome {
    /// Authenticated, lock held, maildrop opened.
    Ok(Vec<MaildropEntry>),
    /// Unknown user or wrong password.
    BadCredentials,
    /// The throttle refuses this address or account for now.
    Blocked,
    /// Another session holds the maildrop lock.
    InUse,
    /// The backend failed temporarily.
    TempFail,
}

/// The RFC 1939 state, for logs and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Authorization,
    Transaction,
    Update,
}

#[derive(Debug)]
enum State {
    Authorization {
        /// Name from a successful USER, waiting for PASS.
        user: Option<String>,
    },
    /// `AUTH PLAIN` without initial response: the next line is the SASL
    /// response.
    SaslResponse,
    /// Waiting for [`Machine::login_result`].
    LoggingIn,
    Transaction,
    /// Waiting for [`Machine::message_result`].
    Fetching {
        body_lines: Option<u64>,
    },
    /// Waiting for [`Machine::update_result`].
    Update {
        remaining: usize,
        size: u64,
    },
    Closed,
}

#[derive(Debug)]
struct Message {
    entry: MaildropEntry,
    deleted: bool,
}

/// One POP3 session's protocol state.
#[derive(Debug)]
pub struct Machine {
    cfg: MachineConfig,
    state: State,
    messages: Vec<Message>,
    bad_commands: u32,
    end: Option<&'static str>,
}

impl Machine {
    pub fn new(cfg: MachineConfig) -> Machine {
        Machine {
            cfg,
            state: State::Authorization { user: None },
            messages: Vec::new(),
            bad_commands: 0,
            end: None,
        }
    }

    /// The first line the server sends.
    pub fn greeting(&self) -> Response {
        Response::ok(&format!("{} POP3 server ready", self.cfg.hostname))
    }

    pub fn phase(&self) -> Phase {
        match self.state {
            State::Authorization { .. } | State::SaslResponse | State::LoggingIn => {
                Phase::Authorization
            }
            State::Transaction | State::Fetching { .. } => Phase::Transaction,
            State::Update { .. } | State::Closed => Phase::Update,
        }
    }

    /// Why the machine closed the session (after it returned
    /// [`Action::Close`]): "quit", "too many errors", "blocked", ...
    pub fn end_reason(&self) -> Option<&'static str> {
        self.end
    }

    /// Number of messages marked deleted.
    pub fn deleted_count(&self) -> usize {
        self.messages.iter().filter(|m| m.deleted).count()
    }

    /// The TLS handshake after STLS succeeded.
    pub fn tls_started(&mut self) {
        self.cfg.is_tls = true;
    }

    fn login_allowed(&self) -> bool {
        self.cfg.is_tls || self.cfg.plaintext_allowed
    }

    /// Handles one line of client input.
    pub fn on_frame(&mut self, frame: Frame) -> Action {
        let line = match frame {
            Frame::Line(l) => l,
            Frame::TooLong => {
                if matches!(self.state, State::SaslResponse) {
                    self.state = State::Authorization { user: None };
                }
                return self.bad("Line too long");
            }
        };
        match &self.state {
            State::SaslResponse => return self.sasl_response(&line),
            State::Authorization { .. } | State::Transaction => {}
            _ => {
                // The loop waits for the backend before reading on; getting
                // here is a bug in the loop, not the client's fault.
                debug_assert!(false, "line while waiting for the backend");
                return Action::Close(Response::err(Some(RespCode::SysPerm), "Internal error"));
            }
        }
        let cmd = match parse_command(&line) {
            Ok(c) => c,
            Err(e) => return self.bad(&e.to_string()),
        };
        if matches!(self.state, State::Transaction) {
            self.transaction(cmd)
        } else {
            self.authorization(cmd)
        }
    }

    fn bad(&mut self, text: &str) -> Action {
        self.bad_commands += 1;
        if self.bad_commands >= self.cfg.max_bad_commands {
            self.close("too many errors");
            Action::Close(Response::err(
                None,
                &format!("{text}; too many errors, closing connection"),
            ))
        } else {
            Action::Send(Response::err(None, text))
        }
    }

    fn close(&mut self, why: &'static str) {
        self.state = State::Closed;
        self.end = Some(why);
    }

    fn capabilities(&self) -> Response {
        let mut caps = vec!["TOP", "UIDL", "RESP-CODES", "PIPELINING"];
        if matches!(self.state, State::Authorization { .. }) {
            caps.push("AUTH-RESP-CODE");
            // RFC 2595 §6 / §4: don't invite a plaintext password where it
            // would be refused.
            if self.login_allowed() {
                caps.push("USER");
                caps.push("SASL PLAIN");
            }
            if self.cfg.tls_available && !self.cfg.is_tls {
                caps.push("STLS");
            }
        }
        caps.push("IMPLEMENTATION Outpost");
        Response::ok_lines("Capability list follows", caps)
    }

    fn plaintext_refused() -> Action {
        Action::Send(Response::err(
            Some(RespCode::Auth),
            "Plaintext authentication disallowed on non-secure connections; use STLS or port 995",
        ))
    }

    fn authorization(&mut self, cmd: Command) -> Action {
        match cmd {
            Command::Capa => Action::Send(self.capabilities()),
            Command::Quit => {
                self.close("quit");
                Action::Close(Response::ok(&format!(
                    "{} POP3 server signing off",
                    self.cfg.hostname
                )))
            }
            Command::Stls => {
                if self.cfg.is_tls {
                    Action::Send(Response::err(None, "Already using TLS"))
                } else if !self.cfg.tls_available {
                    Action::Send(Response::err(None, "STLS not available"))
                } else {
                    self.state = State::Authorization { user: None };
                    Action::StartTls(Response::ok("Begin TLS negotiation"))
                }
            }
            Command::User(name) => {
                if !self.login_allowed() {
                    return Self::plaintext_refused();
                }
                let r = Response::ok("Send PASS");
                self.state = State::Authorization { user: Some(name) };
                Action::Send(r)
            }
            Command::Pass(password) => {
                let user = match &mut self.state {
                    State::Authorization { user } => user.take(),
                    _ => None,
                };
                match user {
                    None => self.bad("PASS without USER"),
                    Some(login) => {
                        self.state = State::LoggingIn;
                        Action::Login { login, password }
                    }
                }
            }
            Command::Auth { mechanism, initial } => {
                self.state = State::Authorization { user: None };
                let Some(mechanism) = mechanism else {
                    // Pre-RFC 5034 clients (Outlook) list mechanisms this way.
                    let mechs: &[&str] = if self.login_allowed() {
                        &["PLAIN"]
                    } else {
                        &[]
                    };
                    return Action::Send(Response::ok_lines("Mechanisms follow", mechs));
                };
                if mechanism != "PLAIN" {
                    return Action::Send(Response::err(
                        None,
                        "Unsupported authentication mechanism",
                    ));
                }
                if !self.login_allowed() {
                    return Self::plaintext_refused();
                }
                match initial {
                    None => {
                        self.state = State::SaslResponse;
                        Action::Send(Response::continuation(""))
                    }
                    Some(ir) => self.sasl_plain(&ir.0),
                }
            }
            Command::Apop => Action::Send(Response::err(None, "APOP not supported")),
            Command::Stat
            | Command::List(_)
            | Command::Retr(_)
            | Command::Dele(_)
            | Command::Noop
            | Command::Rset
            | Command::Top(..)
            | Command::Uidl(_) => self.bad("Not logged in"),
        }
    }

    fn sasl_response(&mut self, line: &[u8]) -> Action {
        self.state = State::Authorization { user: None };
        if line == b"*" {
            // RFC 5034 §4: the client cancelled.
            return Action::Send(Response::err(None, "AUTH cancelled"));
        }
        match std::str::from_utf8(line) {
            Ok(s) => self.sasl_plain(s),
            Err(_) => self.bad("Malformed AUTH PLAIN response"),
        }
    }

    /// Decodes a PLAIN response (RFC 4616): `authzid NUL authcid NUL passwd`.
    fn sasl_plain(&mut self, b64: &str) -> Action {
        match decode_plain(b64) {
            Ok((login, password)) => {
                self.state = State::LoggingIn;
                Action::Login {
                    login,
                    password: Secret(password),
                }
            }
            Err(PlainError::Malformed) => self.bad("Malformed AUTH PLAIN response"),
            Err(PlainError::Authzid) => {
                // No proxy authorization: acting as another user is refused.
                Action::Send(Response::err(
                    Some(RespCode::Auth),
                    "Authorization identity must be empty or equal the login",
                ))
            }
        }
    }

    /// Reports the result of [`Action::Login`].
    pub fn login_result(&mut self, outcome: LoginOutcome) -> Action {
        debug_assert!(matches!(self.state, State::LoggingIn));
        self.state = State::Authorization { user: None };
        match outcome {
            LoginOutcome::Ok(entries) => {
                self.messages = entries
                    .into_iter()
                    .map(|entry| Message {
                        entry,
                        deleted: false,
                    })
                    .collect();
                self.state = State::Transaction;
                Action::Send(Response::ok(&self.maildrop_summary("Logged in")))
            }
            LoginOutcome::BadCredentials => {
                // A failed login counts as a bad command: one connection
                // cannot try passwords forever.
                let a = self.bad("Authentication failed");
                match a {
                    Action::Send(_) => {
                        Action::Send(Response::err(Some(RespCode::Auth), "Authentication failed"))
                    }
                    Action::Close(_) => Action::Close(Response::err(
                        Some(RespCode::Auth),
                        "Authentication failed; too many errors, closing connection",
                    )),
                    other => other,
                }
            }
            LoginOutcome::Blocked => {
                self.close("blocked");
                Action::Close(Response::err(
                    Some(RespCode::Auth),
                    "Too many failed logins; try again later",
                ))
            }
            LoginOutcome::InUse => Action::Send(Response::err(
                Some(RespCode::InUse),
                "Maildrop is locked by another POP3 session",
            )),
            LoginOutcome::TempFail => Action::Send(Response::err(
                Some(RespCode::SysTemp),
                "Temporary failure; try again later",
            )),
        }
    }

    fn maildrop_summary(&self, prefix: &str) -> String {
        let (n, size) = self.visible();
        format!("{prefix}: maildrop has {n} messages ({size} octets)")
    }

    /// Count and total size of the messages not marked deleted.
    fn visible(&self) -> (usize, u64) {
        self.messages
            .iter()
            .filter(|m| !m.deleted)
            .fold((0, 0), |(n, s), m| (n + 1, s + m.entry.size))
    }

    /// The index of a message that exists and is not deleted.
    fn lookup(&self, n: MsgNum) -> Result<usize, Response> {
        let i = usize::try_from(n.0).unwrap_or(usize::MAX);
        match i
            .checked_sub(1)
            .and_then(|i| self.messages.get(i).map(|m| (i, m)))
        {
            None => Err(Response::err(None, &format!("No such message: {}", n.0))),
            Some((_, m)) if m.deleted => Err(Response::err(
                None,
                &format!("Message {} is already deleted", n.0),
            )),
            Some((i, _)) => Ok(i),
        }
    }

    fn transaction(&mut self, cmd: Command) -> Action {
        match cmd {
            Command::Capa => Action::Send(self.capabilities()),
            Command::Noop => Action::Send(Response::ok("")),
            Command::Stat => {
                let (n, size) = self.visible();
                Action::Send(Response::ok(&format!("{n} {size}")))
            }
            Command::List(None) => {
                let lines = self.listing(|m| m.entry.size.to_string());
                Action::Send(Response::ok_lines(
                    &self.maildrop_summary("Scan list follows"),
                    lines,
                ))
            }
            Command::List(Some(n)) => match self.lookup(n) {
                Ok(i) => Action::Send(Response::ok(&format!(
                    "{} {}",
                    n.0, self.messages[i].entry.size
                ))),
                Err(r) => Action::Send(r),
            },
            Command::Uidl(None) => {
                let lines = self.listing(|m| m.entry.uidl.clone());
                Action::Send(Response::ok_lines("Unique-id listing follows", lines))
            }
            Command::Uidl(Some(n)) => match self.lookup(n) {
                Ok(i) => Action::Send(Response::ok(&format!(
                    "{} {}",
                    n.0, self.messages[i].entry.uidl
                ))),
                Err(r) => Action::Send(r),
            },
            Command::Retr(n) | Command::Top(n, _) => match self.lookup(n) {
                Ok(i) => {
                    let body_lines = match cmd {
                        Command::Top(_, l) => Some(l),
                        _ => None,
                    };
                    let e = &self.messages[i].entry;
                    let action = Action::Fetch {
                        id: e.id,
                        body_lines,
                    };
                    self.state = State::Fetching { body_lines };
                    action
                }
                Err(r) => Action::Send(r),
            },
            Command::Dele(n) => match self.lookup(n) {
                Ok(i) => {
                    self.messages[i].deleted = true;
                    Action::Send(Response::ok(&format!("Message {} deleted", n.0)))
                }
                Err(r) => Action::Send(r),
            },
            Command::Rset => {
                for m in &mut self.messages {
                    m.deleted = false;
                }
                Action::Send(Response::ok(&self.maildrop_summary("Reset")))
            }
            Command::Quit => {
                let ids: Vec<u64> = self
                    .messages
                    .iter()
                    .filter(|m| m.deleted)
                    .map(|m| m.entry.id)
                    .collect();
                let (remaining, size) = self.visible();
                self.state = State::Update { remaining, size };
                if ids.is_empty() {
                    self.update_result(Ok(()))
                } else {
                    Action::Expunge { ids }
                }
            }
            Command::User(_) | Command::Pass(_) | Command::Auth { .. } | Command::Apop => {
                self.bad("Already logged in")
            }
            Command::Stls => self.bad("STLS is only allowed before login"),
        }
    }

    fn listing(&self, f: impl Fn(&Message) -> String) -> Vec<String> {
        self.messages
            .iter()
            .enumerate()
            .filter(|(_, m)| !m.deleted)
            .map(|(i, m)| format!("{} {}", i + 1, f(m)))
            .collect()
    }

    /// Reports the result of [`Action::Fetch`] with the raw message.
    pub fn message_result(&mut self, raw: Result<Option<Vec<u8>>, TempFail>) -> Action {
        let State::Fetching { body_lines } = self.state else {
            debug_assert!(false, "message_result without Fetch");
            return Action::Close(Response::err(Some(RespCode::SysPerm), "Internal error"));
        };
        self.state = State::Transaction;
        match raw {
            Ok(Some(raw)) => {
                let text = match body_lines {
                    Some(_) => "Top of message follows".to_owned(),
                    // The octets actually sent; the snapshot's size should
                    // be the same (see MaildropEntry::size).
                    None => format!("{} octets", crate::codec::wire_size(&raw)),
                };
                Action::Send(Response::message(&text, &raw, body_lines))
            }
            Ok(None) => Action::Send(Response::err(
                None,
                "Message was removed by another session",
            )),
            Err(_) => Action::Send(Response::err(
                Some(RespCode::SysTemp),
                "Cannot read message now; try again later",
            )),
        }
    }

    /// Reports the result of [`Action::Expunge`]; the answer always closes
    /// the session.
    pub fn update_result(&mut self, result: Result<(), TempFail>) -> Action {
        let State::Update { remaining, size } = self.state else {
            debug_assert!(false, "update_result without Expunge");
            return Action::Close(Response::err(Some(RespCode::SysPerm), "Internal error"));
        };
        self.close("quit");
        match result {
            Ok(()) => Action::Close(Response::ok(&format!(
                "{} POP3 server signing off ({remaining} messages, {size} octets left)",
                self.cfg.hostname
            ))),
            // RFC 1939 §6: -ERR if some deleted messages were not removed.
            Err(_) => {
                self.end = Some("quit, expunge failed");
                Action::Close(Response::err(
                    Some(RespCode::SysTemp),
                    "Some deleted messages were not removed; try again later",
                ))
            }
        }
    }
}

enum PlainError {
    Malformed,
    Authzid,
}

fn decode_plain(b64: &str) -> Result<(String, String), PlainError> {
    // RFC 5034 §4: "=" is an empty initial response.
    let raw = if b64 == "=" {
        Vec::new()
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| PlainError::Malformed)?
    };
    let mut parts = raw.split(|&b| b == 0);
    let (Some(authzid), Some(authcid), Some(passwd), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(PlainError::Malformed);
    };
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| PlainError::Malformed);
    let (authzid, authcid, passwd) = (text(authzid)?, text(authcid)?, text(passwd)?);
    if authcid.is_empty() {
        return Err(PlainError::Malformed);
    }
    if !authzid.is_empty() && authzid != authcid {
        return Err(PlainError::Authzid);
    }
    Ok((authcid, passwd))
}

/// For log lines: a login name as the client sent it, made harmless.
pub fn loggable_login(login: &str) -> String {
    printable(login, 64)
}
