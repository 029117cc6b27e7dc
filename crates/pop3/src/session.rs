//! The POP3 session as a state machine, without I/O.
//!
//! The connection loop feeds it input lines ([`Machine::on_frame`]) and
//! carries out the [`Action`]s it returns. An action that needs the backend
//! (log in, read a message, expunge) is answered by calling back into the
//! machine ([`Machine::login_result`], [`Machine::message_result`],
//! [`Machine::update_result`]), which then returns the next action.
//!
//! States follow RFC 1939 §3: AUTHORIZATION → TRANSACTION → UPDATE.

use outpost_net::auth::sasl::{self, SaslError};

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
        match sasl::plain_base64(b64) {
            Ok(sasl::Credentials { login, password }) => {
                self.state = State::LoggingIn;
                Action::Login {
                    login,
                    password: Secret(password),
                }
            }
            Err(SaslError::Malformed | SaslError::Cancelled) => {
                self.bad("Malformed AUTH PLAIN response")
            }
            Err(SaslError::Authzid) => {
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

/// For log lines: a login name as the client sent it, made harmless.
pub fn loggable_login(login: &str) -> String {
    printable(login, 64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> MachineConfig {
        MachineConfig {
            hostname: "mail.example.org".into(),
            tls_available: true,
            is_tls: false,
            plaintext_allowed: false,
            max_bad_commands: 5,
        }
    }

    fn line(m: &mut Machine, l: &str) -> Action {
        m.on_frame(Frame::Line(l.as_bytes().to_vec()))
    }

    /// The text the client would see for a plain Send.
    fn sent(a: Action) -> String {
        match a {
            Action::Send(r) => String::from_utf8(r.into_bytes()).unwrap(),
            other => panic!("expected Send, got {other:?}"),
        }
    }

    fn entries() -> Vec<MaildropEntry> {
        (1..=3)
            .map(|i| MaildropEntry {
                id: 100 + i,
                size: 10 * i,
                uidl: format!("u{i}"),
            })
            .collect()
    }

    fn logged_in() -> Machine {
        let mut m = Machine::new(MachineConfig {
            is_tls: true,
            ..cfg()
        });
        assert!(matches!(line(&mut m, "USER a"), Action::Send(_)));
        assert!(matches!(line(&mut m, "PASS p"), Action::Login { .. }));
        assert!(sent(m.login_result(LoginOutcome::Ok(entries())))
            .starts_with("+OK Logged in: maildrop has 3 messages (60 octets)"));
        assert_eq!(m.phase(), Phase::Transaction);
        m
    }

    #[test]
    fn plaintext_login_refused_before_tls() {
        let mut m = Machine::new(cfg());
        let capa = sent(line(&mut m, "CAPA"));
        assert!(capa.contains("STLS\r\n"));
        assert!(!capa.contains("USER\r\n"));
        assert!(!capa.contains("SASL"));
        assert!(sent(line(&mut m, "USER a")).starts_with("-ERR [AUTH] Plaintext"));
        assert!(sent(line(&mut m, "AUTH PLAIN AGEAYg==")).starts_with("-ERR [AUTH] Plaintext"));
        assert!(sent(line(&mut m, "PASS x")).starts_with("-ERR PASS without USER"));
        assert_eq!(
            line(&mut m, "STLS"),
            Action::StartTls(Response::ok("Begin TLS negotiation"))
        );
        m.tls_started();
        let capa = sent(line(&mut m, "CAPA"));
        assert!(!capa.contains("STLS"));
        assert!(capa.contains("USER\r\n") && capa.contains("SASL PLAIN\r\n"));
        assert!(sent(line(&mut m, "STLS")).starts_with("-ERR Already"));
        assert!(sent(line(&mut m, "USER a")).starts_with("+OK"));
    }

    #[test]
    fn plaintext_allowed_on_loopback() {
        let mut m = Machine::new(MachineConfig {
            plaintext_allowed: true,
            tls_available: false,
            ..cfg()
        });
        let capa = sent(line(&mut m, "CAPA"));
        assert!(capa.contains("USER\r\n") && !capa.contains("STLS"));
        assert!(sent(line(&mut m, "STLS")).starts_with("-ERR STLS not available"));
        assert!(sent(line(&mut m, "USER a")).starts_with("+OK"));
        assert_eq!(
            line(&mut m, "PASS two words"),
            Action::Login {
                login: "a".into(),
                password: Secret("two words".into())
            }
        );
    }

    #[test]
    fn auth_plain_both_forms() {
        let mut m = Machine::new(MachineConfig {
            is_tls: true,
            ..cfg()
        });
        // \0alice\0secret
        assert_eq!(
            line(&mut m, "AUTH PLAIN AGFsaWNlAHNlY3JldA=="),
            Action::Login {
                login: "alice".into(),
                password: Secret("secret".into())
            }
        );
        assert!(sent(m.login_result(LoginOutcome::BadCredentials))
            .starts_with("-ERR [AUTH] Authentication failed"));
        assert_eq!(
            line(&mut m, "AUTH PLAIN"),
            Action::Send(Response::continuation(""))
        );
        // alice\0alice\0secret: authzid equal to authcid is fine
        assert_eq!(
            line(&mut m, "YWxpY2UAYWxpY2UAc2VjcmV0"),
            Action::Login {
                login: "alice".into(),
                password: Secret("secret".into())
            }
        );
        m.login_result(LoginOutcome::BadCredentials);
        // cancel
        assert_eq!(
            line(&mut m, "AUTH PLAIN"),
            Action::Send(Response::continuation(""))
        );
        assert!(sent(line(&mut m, "*")).starts_with("-ERR AUTH cancelled"));
        // garbage
        assert!(sent(line(&mut m, "AUTH PLAIN !!!")).starts_with("-ERR Malformed"));
        assert!(sent(line(&mut m, "AUTH PLAIN =")).starts_with("-ERR Malformed"));
        // bob\0alice\0secret: no proxy authorization
        assert!(sent(line(&mut m, "AUTH PLAIN Ym9iAGFsaWNlAHNlY3JldA=="))
            .starts_with("-ERR [AUTH] Authorization identity"));
        assert!(sent(line(&mut m, "AUTH LOGIN")).starts_with("-ERR Unsupported"));
        assert_eq!(
            sent(line(&mut m, "AUTH")),
            "+OK Mechanisms follow\r\nPLAIN\r\n.\r\n"
        );
    }

    #[test]
    fn login_outcomes() {
        let mut m = Machine::new(MachineConfig {
            is_tls: true,
            ..cfg()
        });
        line(&mut m, "USER a");
        line(&mut m, "PASS p");
        assert!(sent(m.login_result(LoginOutcome::InUse)).starts_with("-ERR [IN-USE]"));
        line(&mut m, "USER a");
        line(&mut m, "PASS p");
        assert!(sent(m.login_result(LoginOutcome::TempFail)).starts_with("-ERR [SYS/TEMP]"));
        assert_eq!(m.phase(), Phase::Authorization);
        line(&mut m, "USER a");
        line(&mut m, "PASS p");
        match m.login_result(LoginOutcome::Blocked) {
            Action::Close(r) => assert!(r.as_bytes().starts_with(b"-ERR [AUTH]")),
            other => panic!("{other:?}"),
        }
        assert_eq!(m.end_reason(), Some("blocked"));
    }

    #[test]
    fn transaction_commands() {
        let mut m = logged_in();
        assert_eq!(sent(line(&mut m, "STAT")), "+OK 3 60\r\n");
        assert_eq!(
            sent(line(&mut m, "LIST")),
            "+OK Scan list follows: maildrop has 3 messages (60 octets)\r\n1 10\r\n2 20\r\n3 30\r\n.\r\n"
        );
        assert_eq!(sent(line(&mut m, "LIST 2")), "+OK 2 20\r\n");
        assert!(sent(line(&mut m, "LIST 4")).starts_with("-ERR No such message"));
        assert!(sent(line(&mut m, "LIST 0")).starts_with("-ERR No such message"));
        assert_eq!(
            sent(line(&mut m, "UIDL")),
            "+OK Unique-id listing follows\r\n1 u1\r\n2 u2\r\n3 u3\r\n.\r\n"
        );
        assert_eq!(sent(line(&mut m, "UIDL 3")), "+OK 3 u3\r\n");
        assert_eq!(sent(line(&mut m, "NOOP")), "+OK\r\n");
        assert!(sent(line(&mut m, "DELE 2")).starts_with("+OK"));
        assert!(sent(line(&mut m, "DELE 2")).starts_with("-ERR Message 2 is already deleted"));
        assert!(sent(line(&mut m, "RETR 2")).starts_with("-ERR"));
        assert!(sent(line(&mut m, "TOP 2 1")).starts_with("-ERR"));
        assert!(sent(line(&mut m, "LIST 2")).starts_with("-ERR"));
        assert_eq!(sent(line(&mut m, "STAT")), "+OK 2 40\r\n");
        assert_eq!(
            sent(line(&mut m, "UIDL")),
            "+OK Unique-id listing follows\r\n1 u1\r\n3 u3\r\n.\r\n"
        );
        assert!(sent(line(&mut m, "RSET")).contains("3 messages (60 octets)"));
        assert_eq!(sent(line(&mut m, "STAT")), "+OK 3 60\r\n");
        let capa = sent(line(&mut m, "CAPA"));
        assert!(capa.contains("TOP\r\n") && !capa.contains("USER") && !capa.contains("STLS"));
        assert!(sent(line(&mut m, "USER b")).starts_with("-ERR Already logged in"));
        assert!(sent(line(&mut m, "STLS")).starts_with("-ERR"));
    }

    #[test]
    fn retr_and_top() {
        let mut m = logged_in();
        assert_eq!(
            line(&mut m, "RETR 1"),
            Action::Fetch {
                id: 101,
                body_lines: None
            }
        );
        assert_eq!(
            sent(m.message_result(Ok(Some(b"A: b\n\n.x\n".to_vec())))),
            "+OK 12 octets\r\nA: b\r\n\r\n..x\r\n.\r\n"
        );
        assert_eq!(
            line(&mut m, "TOP 3 0"),
            Action::Fetch {
                id: 103,
                body_lines: Some(0)
            }
        );
        assert_eq!(
            sent(m.message_result(Ok(Some(b"A: b\n\nbody\n".to_vec())))),
            "+OK Top of message follows\r\nA: b\r\n\r\n.\r\n"
        );
        line(&mut m, "RETR 1");
        assert!(sent(m.message_result(Ok(None))).starts_with("-ERR Message was removed"));
        line(&mut m, "RETR 1");
        assert!(sent(m.message_result(Err(TempFail("db".into())))).starts_with("-ERR [SYS/TEMP]"));
        assert_eq!(m.phase(), Phase::Transaction);
    }

    #[test]
    fn quit_expunges_only_deleted() {
        let mut m = logged_in();
        line(&mut m, "DELE 1");
        line(&mut m, "DELE 3");
        assert_eq!(
            line(&mut m, "QUIT"),
            Action::Expunge {
                ids: vec![101, 103]
            }
        );
        assert_eq!(m.phase(), Phase::Update);
        match m.update_result(Ok(())) {
            Action::Close(r) => assert!(r.is_ok(), "{r:?}"),
            other => panic!("{other:?}"),
        }
        // nothing deleted: no expunge at all
        let mut m = logged_in();
        assert!(matches!(line(&mut m, "QUIT"), Action::Close(r) if r.is_ok()));
        // a failed expunge is reported
        let mut m = logged_in();
        line(&mut m, "DELE 1");
        line(&mut m, "QUIT");
        match m.update_result(Err(TempFail("x".into()))) {
            Action::Close(r) => assert!(r.as_bytes().starts_with(b"-ERR [SYS/TEMP]")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn quit_in_authorization_and_wrong_state() {
        let mut m = Machine::new(cfg());
        assert!(sent(line(&mut m, "STAT")).starts_with("-ERR Not logged in"));
        assert!(sent(line(&mut m, "APOP a b")).starts_with("-ERR APOP"));
        assert!(matches!(line(&mut m, "QUIT"), Action::Close(r) if r.is_ok()));
        assert_eq!(m.end_reason(), Some("quit"));
    }

    #[test]
    fn too_many_errors_close() {
        let mut m = Machine::new(cfg());
        for _ in 0..4 {
            assert!(sent(line(&mut m, "BOGUS")).starts_with("-ERR Unknown command"));
        }
        // NOOP before login is the fifth error
        assert!(matches!(line(&mut m, "NOOP"), Action::Close(_)));
        let mut m = Machine::new(cfg());
        for _ in 0..4 {
            m.on_frame(Frame::TooLong);
        }
        match line(&mut m, "XYZ") {
            Action::Close(r) => {
                assert!(String::from_utf8_lossy(r.as_bytes()).contains("too many errors"))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(m.end_reason(), Some("too many errors"));
    }

    #[test]
    fn malformed_keeps_session() {
        let mut m = logged_in();
        assert!(sent(line(&mut m, "RETR x")).starts_with("-ERR RETR: invalid number"));
        assert!(sent(line(&mut m, "TOP 1")).starts_with("-ERR TOP: missing argument"));
        assert_eq!(sent(line(&mut m, "STAT")), "+OK 3 60\r\n");
    }
}
