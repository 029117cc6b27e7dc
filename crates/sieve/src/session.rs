//! The ManageSieve session (RFC 5804) as a state machine, without I/O.
//!
//! The connection loop frames the client's bytes with
//! [`codec::Decoder`](crate::codec::Decoder) in the mode
//! [`Machine::input_mode`] asks for, feeds each frame to
//! [`Machine::on_frame`] and carries out the [`Action`] it returns. An
//! action that needs the outside world (check a password, compile a
//! script, read or change the user's scripts) is answered with
//! [`Machine::answer`], which returns the next action. A SASL exchange
//! waiting for the client's response is a state of its own: the loop never
//! reads on the machine's behalf.

use outpost_net::auth::sasl::{self, Mechanism, SaslError};
use outpost_net::{AuthUser, LoginOutcome, TempFail};

use crate::codec::{Command, Frame, Mode, Response, ResponseCode, SaslResponse, Secret};
use crate::engine::NOTIFY_METHODS;

/// What the machine needs to know about its connection and settings.
#[derive(Clone, Debug)]
pub struct MachineConfig {
    /// For the greeting.
    pub hostname: String,
    /// A TLS acceptor is configured, so STARTTLS can be offered.
    pub tls_available: bool,
    /// The connection is already TLS.
    pub is_tls: bool,
    /// Logins are allowed without TLS (plaintext allowed on loopback and
    /// the client is on loopback).
    pub plaintext_allowed: bool,
    /// After this many refused commands the session is closed.
    pub max_bad_commands: u32,
    /// Scripts per user.
    pub max_scripts: usize,
    /// Bytes per script.
    pub max_script_size: usize,
    /// The SIEVE capability: the extensions scripts may require.
    pub sieve_extensions: String,
    /// The MAXREDIRECTS capability.
    pub max_redirects: usize,
}

/// A script as LISTSCRIPTS and the quota check need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptInfo {
    pub name: String,
    pub size: usize,
    pub active: bool,
}

/// Why a script operation did not happen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScriptOpError {
    NotFound,
    Exists,
    /// The script is active (DELETESCRIPT).
    Active,
    /// The store refuses the name or content; the text says why.
    Invalid(String),
    /// A temporary failure; logged, not shown.
    Temp(String),
}

/// A script operation for the user who is logged in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Answer with [`Answer::Scripts`].
    List,
    /// Answer with [`Answer::Script`].
    Get { name: String },
    /// Store (create or replace); answer with [`Answer::Done`].
    Put { name: String, script: String },
    /// Answer with [`Answer::Done`].
    Delete { name: String },
    /// Answer with [`Answer::Done`].
    Rename { from: String, to: String },
    /// `None` deactivates every script; answer with [`Answer::Done`].
    SetActive { name: Option<String> },
}

/// What the connection loop must do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Send these and read on.
    Send(Vec<Response>),
    /// Send these and close the connection.
    Close(Vec<Response>),
    /// Send these, drop any input buffered after the STARTTLS line, do the
    /// TLS handshake, then send what [`Machine::tls_started`] returns.
    StartTls(Vec<Response>),
    /// Check the credentials through the auth layer (throttle and
    /// directory); answer with [`Answer::Login`].
    Login { login: String, password: Secret },
    /// Compile the script with the Sieve engine; answer with
    /// [`Answer::Compiled`].
    Compile { script: String },
    /// Do this to the logged-in user's scripts ([`Machine::user`]).
    Script(Op),
}

/// The result of an [`Action`], as the loop reports it.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    Login(LoginOutcome),
    /// `Err` holds the compiler's message (with the line), shown to the
    /// client.
    Compiled(Result<(), String>),
    Scripts(Result<Vec<ScriptInfo>, TempFail>),
    Script(Result<Option<String>, TempFail>),
    Done(Result<(), ScriptOpError>),
}

#[derive(Debug)]
enum SaslStep {
    /// PLAIN without an initial response: the next line is the response.
    Plain,
    /// LOGIN: the next line is the user name.
    LoginUser,
    /// LOGIN: the next line is the password.
    LoginPassword(String),
}

/// What the machine waits for.
#[derive(Debug)]
enum Pending {
    Login,
    /// HAVESPACE: the list, for the count of scripts.
    HaveSpace {
        name: String,
    },
    /// CHECKSCRIPT: the compiler.
    Check,
    /// PUTSCRIPT, first the compiler, then the list (quota), then the
    /// store.
    PutCompile {
        name: String,
        script: String,
    },
    PutQuota {
        name: String,
        script: String,
    },
    Put,
    List,
    Get,
    /// SETACTIVE, DELETESCRIPT, RENAMESCRIPT.
    Change,
}

#[derive(Debug)]
enum State {
    /// Reading commands.
    Ready,
    /// A SASL challenge was sent; reading the client's response.
    Sasl(SaslStep),
    /// Waiting for [`Machine::answer`].
    Waiting(Pending),
    Closed,
}

/// One ManageSieve session's protocol state.
#[derive(Debug)]
pub struct Machine {
    cfg: MachineConfig,
    state: State,
    user: Option<AuthUser>,
    bad_commands: u32,
    end: Option<&'static str>,
}

const TEMP_FAILURE: &str = "Temporary failure, try again later";

impl Machine {
    pub fn new(cfg: MachineConfig) -> Machine {
        Machine {
            cfg,
            state: State::Ready,
            user: None,
            bad_commands: 0,
            end: None,
        }
    }

    /// What the server sends first: its capabilities, then OK.
    pub fn greeting(&self) -> Vec<Response> {
        let mut out = self.capabilities();
        out.push(Response::ok(&format!(
            "{} ManageSieve ready",
            self.cfg.hostname
        )));
        out
    }

    /// How the loop must frame the next input.
    pub fn input_mode(&self) -> Mode {
        match self.state {
            State::Sasl(_) => Mode::SaslResponse,
            _ => Mode::Command,
        }
    }

    /// The user who is logged in.
    pub fn user(&self) -> Option<&AuthUser> {
        self.user.as_ref()
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Why the machine closed the session (after it returned
    /// [`Action::Close`]): "logout", "too many errors", ...
    pub fn end_reason(&self) -> Option<&'static str> {
        self.end
    }

    /// The TLS handshake after STARTTLS succeeded: RFC 5804 §2.2 has the
    /// server send its capabilities again.
    pub fn tls_started(&mut self) -> Vec<Response> {
        self.cfg.is_tls = true;
        let mut out = self.capabilities();
        out.push(Response::ok("TLS negotiated"));
        out
    }

    /// The client said nothing for too long.
    pub fn timed_out(&mut self) -> Response {
        self.close("idle timeout");
        Response::bye(None, "Idle timeout")
    }

    fn login_allowed(&self) -> bool {
        self.cfg.is_tls || self.cfg.plaintext_allowed
    }

    fn close(&mut self, why: &'static str) {
        self.state = State::Closed;
        self.end = Some(why);
    }

    /// RFC 5804 §1.7.
    fn capabilities(&self) -> Vec<Response> {
        let cap = Response::capability;
        let mut out = vec![
            cap("IMPLEMENTATION", Some("Outpost")),
            cap("SIEVE", Some(&self.cfg.sieve_extensions)),
            cap("NOTIFY", Some(&NOTIFY_METHODS.join(" "))),
        ];
        match &self.user {
            None => {
                // Don't invite a password where it would be refused.
                let sasl = if self.login_allowed() {
                    "PLAIN LOGIN"
                } else {
                    ""
                };
                out.push(cap("SASL", Some(sasl)));
                if !self.cfg.is_tls && self.cfg.tls_available {
                    out.push(cap("STARTTLS", None));
                }
            }
            Some(u) => out.push(cap("OWNER", Some(&u.login))),
        }
        out.push(cap(
            "MAXREDIRECTS",
            Some(&self.cfg.max_redirects.to_string()),
        ));
        out.push(cap("UNAUTHENTICATE", None));
        out.push(cap("VERSION", Some("1.0")));
        out
    }

    /// Counts a refused command and answers NO; after too many, BYE too.
    fn refuse(&mut self, code: Option<ResponseCode>, text: &str) -> Action {
        self.bad_commands += 1;
        let no = Response::no(code, text);
        if self.bad_commands >= self.cfg.max_bad_commands.max(1) {
            self.close("too many errors");
            Action::Close(vec![no, Response::bye(None, "Too many errors")])
        } else {
            Action::Send(vec![no])
        }
    }

    /// A NO that is an answer, not a fault of the client's (no such
    /// script, over quota): not counted.
    fn no(code: Option<ResponseCode>, text: &str) -> Action {
        Action::Send(vec![Response::no(code, text)])
    }

    fn ok() -> Action {
        Action::Send(vec![Response::ok("")])
    }

    fn temp() -> Action {
        Machine::no(Some(ResponseCode::TryLater), TEMP_FAILURE)
    }

    fn wait(&mut self, pending: Pending, action: Action) -> Action {
        self.state = State::Waiting(pending);
        action
    }

    /// Handles one frame of client input.
    pub fn on_frame(&mut self, frame: Frame) -> Action {
        match &self.state {
            State::Closed => return Action::Close(Vec::new()),
            State::Waiting(_) => {
                // The loop answers before it reads on; getting here is a
                // bug in the loop, not the client's fault.
                debug_assert!(false, "input while waiting for an answer");
                self.close("internal error");
                return Action::Close(vec![Response::bye(None, "Internal error")]);
            }
            State::Ready | State::Sasl(_) => {}
        }
        match frame {
            Frame::TooBig(why) => {
                self.close("input too large");
                Action::Close(vec![Response::bye(Some(ResponseCode::QuotaMaxSize), &why)])
            }
            Frame::LiteralWanted(_) => Action::Send(vec![Response::Continue]),
            Frame::Bad(e) => {
                if matches!(self.state, State::Sasl(_)) {
                    self.state = State::Ready;
                    return self.refuse(None, &format!("Malformed SASL response: {e}"));
                }
                self.refuse(None, &e.to_string())
            }
            Frame::SaslResponse(r) => match std::mem::replace(&mut self.state, State::Ready) {
                State::Sasl(step) => self.sasl_step(step, r),
                _ => self.refuse(None, "Unexpected SASL response"),
            },
            Frame::Command(c) => {
                if matches!(self.state, State::Sasl(_)) {
                    self.state = State::Ready;
                    return self.refuse(None, "Expected a SASL response");
                }
                self.command(c)
            }
        }
    }

    fn command(&mut self, cmd: Command) -> Action {
        match cmd {
            Command::Capability => {
                let mut out = self.capabilities();
                out.push(Response::ok(""));
                Action::Send(out)
            }
            Command::Noop { tag } => Action::Send(vec![match tag {
                Some(t) => Response::ok_tag(&t),
                None => Response::ok("Done"),
            }]),
            Command::Logout => {
                self.close("logout");
                Action::Close(vec![Response::ok("Logout")])
            }
            Command::StartTls => {
                if self.cfg.is_tls {
                    self.refuse(None, "Already using TLS")
                } else if !self.cfg.tls_available {
                    self.refuse(None, "TLS not available")
                } else if self.user.is_some() {
                    // RFC 5804 §2.2: only before authentication.
                    self.refuse(None, "STARTTLS is only allowed before login")
                } else {
                    Action::StartTls(vec![Response::ok("Begin TLS negotiation")])
                }
            }
            Command::Authenticate { mechanism, initial } => {
                if self.user.is_some() {
                    return self.refuse(None, "Already authenticated");
                }
                if !self.login_allowed() {
                    return self.refuse(Some(ResponseCode::EncryptNeeded), "Use STARTTLS first");
                }
                match (Mechanism::parse(&mechanism), initial) {
                    (None, _) => self.refuse(None, "Unsupported SASL mechanism"),
                    (Some(Mechanism::Plain), Some(ir)) => {
                        self.sasl_step(SaslStep::Plain, SaslResponse::Data(ir))
                    }
                    (Some(Mechanism::Login), Some(ir)) => {
                        self.sasl_step(SaslStep::LoginUser, SaslResponse::Data(ir))
                    }
                    (Some(Mechanism::Plain), None) => {
                        self.state = State::Sasl(SaslStep::Plain);
                        Action::Send(vec![Response::Challenge(String::new())])
                    }
                    (Some(Mechanism::Login), None) => {
                        self.state = State::Sasl(SaslStep::LoginUser);
                        Action::Send(vec![Response::Challenge(
                            sasl::LOGIN_USERNAME_CHALLENGE.into(),
                        )])
                    }
                }
            }
            _ if self.user.is_none() => self.refuse(None, "Authenticate first"),
            Command::Unauthenticate => {
                // RFC 5804 §2.14: back to the non-authenticated state.
                self.user = None;
                Machine::ok()
            }
            Command::HaveSpace { name, size } => {
                if size > self.cfg.max_script_size as u64 {
                    return self.too_large();
                }
                self.wait(Pending::HaveSpace { name }, Action::Script(Op::List))
            }
            Command::PutScript { name, script } => {
                if script.len() > self.cfg.max_script_size {
                    return self.too_large();
                }
                if !valid_name(&name) {
                    return Machine::no(None, "Invalid script name");
                }
                let compile = Action::Compile {
                    script: script.clone(),
                };
                self.wait(Pending::PutCompile { name, script }, compile)
            }
            Command::CheckScript { script } => {
                if script.len() > self.cfg.max_script_size {
                    return self.too_large();
                }
                self.wait(Pending::Check, Action::Compile { script })
            }
            Command::ListScripts => self.wait(Pending::List, Action::Script(Op::List)),
            Command::GetScript { name } => {
                self.wait(Pending::Get, Action::Script(Op::Get { name }))
            }
            Command::SetActive { name } => {
                let name = (!name.is_empty()).then_some(name);
                self.wait(Pending::Change, Action::Script(Op::SetActive { name }))
            }
            Command::DeleteScript { name } => {
                self.wait(Pending::Change, Action::Script(Op::Delete { name }))
            }
            Command::RenameScript { from, to } => {
                if !valid_name(&to) {
                    return Machine::no(None, "Invalid script name");
                }
                self.wait(Pending::Change, Action::Script(Op::Rename { from, to }))
            }
        }
    }

    fn too_large(&self) -> Action {
        Machine::no(
            Some(ResponseCode::QuotaMaxSize),
            &format!("Scripts may be at most {} bytes", self.cfg.max_script_size),
        )
    }

    /// One client response in a SASL exchange (RFC 5804 §2.1); the initial
    /// response of AUTHENTICATE comes here too.
    fn sasl_step(&mut self, step: SaslStep, response: SaslResponse) -> Action {
        self.state = State::Ready;
        let SaslResponse::Data(text) = response else {
            return self.refuse(None, "Authentication cancelled");
        };
        let result = match step {
            SaslStep::Plain => sasl::plain_base64(&text.0).map(|c| (c.login, c.password)),
            SaslStep::LoginUser => match sasl::login_field(&text.0) {
                Ok(login) => {
                    self.state = State::Sasl(SaslStep::LoginPassword(login));
                    return Action::Send(vec![Response::Challenge(
                        sasl::LOGIN_PASSWORD_CHALLENGE.into(),
                    )]);
                }
                Err(e) => Err(e),
            },
            SaslStep::LoginPassword(login) => sasl::login_field(&text.0).map(|p| (login, p)),
        };
        match result {
            Ok((login, password)) => self.wait(
                Pending::Login,
                Action::Login {
                    login,
                    password: Secret(password),
                },
            ),
            Err(SaslError::Cancelled) => self.refuse(None, "Authentication cancelled"),
            Err(SaslError::Authzid) => self.refuse(
                None,
                "Authorization identity must be empty or equal the login",
            ),
            Err(SaslError::Malformed) => self.refuse(None, "Malformed SASL response"),
        }
    }

    /// Reports the result of the last action.
    pub fn answer(&mut self, answer: Answer) -> Action {
        let State::Waiting(pending) = std::mem::replace(&mut self.state, State::Ready) else {
            debug_assert!(false, "answer without a pending action");
            self.close("internal error");
            return Action::Close(vec![Response::bye(None, "Internal error")]);
        };
        match (pending, answer) {
            (Pending::Login, Answer::Login(outcome)) => match outcome {
                LoginOutcome::Success(user) => {
                    self.user = Some(user);
                    Action::Send(vec![Response::ok("Logged in")])
                }
                // A failed login counts as a refused command: one
                // connection cannot try passwords forever.
                LoginOutcome::Failed => self.refuse(None, "Authentication failed"),
                LoginOutcome::Blocked => {
                    self.refuse(None, "Too many failed logins, try again later")
                }
                LoginOutcome::Unavailable(_) => Machine::temp(),
            },
            (Pending::Check, Answer::Compiled(r)) => match r {
                Ok(()) => Machine::ok(),
                Err(e) => Machine::no(None, &e),
            },
            (Pending::PutCompile { name, script }, Answer::Compiled(r)) => match r {
                Ok(()) => self.wait(Pending::PutQuota { name, script }, Action::Script(Op::List)),
                Err(e) => Machine::no(None, &e),
            },
            (Pending::HaveSpace { name }, Answer::Scripts(r)) => match r {
                Ok(list) => match self.quota(&list, &name) {
                    Ok(()) => Machine::ok(),
                    Err(a) => a,
                },
                Err(_) => Machine::temp(),
            },
            (Pending::PutQuota { name, script }, Answer::Scripts(r)) => match r {
                Ok(list) => match self.quota(&list, &name) {
                    Ok(()) => self.wait(Pending::Put, Action::Script(Op::Put { name, script })),
                    Err(a) => a,
                },
                Err(_) => Machine::temp(),
            },
            (Pending::List, Answer::Scripts(r)) => match r {
                Ok(list) => {
                    let mut out: Vec<Response> = list
                        .into_iter()
                        .map(|s| Response::Listed {
                            name: s.name,
                            active: s.active,
                        })
                        .collect();
                    out.push(Response::ok(""));
                    Action::Send(out)
                }
                Err(_) => Machine::temp(),
            },
            (Pending::Get, Answer::Script(r)) => match r {
                Ok(Some(script)) => Action::Send(vec![Response::Script(script), Response::ok("")]),
                Ok(None) => Machine::no(Some(ResponseCode::Nonexistent), "No such script"),
                Err(_) => Machine::temp(),
            },
            (Pending::Put | Pending::Change, Answer::Done(r)) => match r {
                Ok(()) => Machine::ok(),
                // The name is not echoed: it may be long or full of
                // controls, and the reply is the same for every name.
                Err(ScriptOpError::NotFound) => {
                    Machine::no(Some(ResponseCode::Nonexistent), "No such script")
                }
                Err(ScriptOpError::Exists) => Machine::no(
                    Some(ResponseCode::AlreadyExists),
                    "A script of that name exists",
                ),
                Err(ScriptOpError::Active) => Machine::no(
                    Some(ResponseCode::Active),
                    "Script is active; deactivate it first",
                ),
                Err(ScriptOpError::Invalid(why)) => Machine::no(None, &why),
                Err(ScriptOpError::Temp(_)) => Machine::temp(),
            },
            (pending, answer) => {
                debug_assert!(false, "{answer:?} does not answer {pending:?}");
                self.close("internal error");
                Action::Close(vec![Response::bye(None, "Internal error")])
            }
        }
    }

    /// May one more script named `name` be stored next to `list`?
    fn quota(&self, list: &[ScriptInfo], name: &str) -> Result<(), Action> {
        if !list.iter().any(|s| s.name == name) && list.len() >= self.cfg.max_scripts {
            return Err(Machine::no(
                Some(ResponseCode::QuotaMaxScripts),
                &format!("At most {} scripts per user", self.cfg.max_scripts),
            ));
        }
        Ok(())
    }
}

/// RFC 5804 §1.6: a script name is not empty and holds no control
/// characters (U+0000-U+001F, U+007F-U+009F) nor line or paragraph
/// separators.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{self, Decoder, Status};
    use base64::Engine as _;

    fn cfg() -> MachineConfig {
        MachineConfig {
            hostname: "mail.example.org".into(),
            tls_available: true,
            is_tls: false,
            plaintext_allowed: false,
            max_bad_commands: 5,
            max_scripts: 2,
            max_script_size: 100,
            sieve_extensions: "fileinto vacation".into(),
            max_redirects: 3,
        }
    }

    fn tls() -> MachineConfig {
        MachineConfig {
            is_tls: true,
            ..cfg()
        }
    }

    /// Feeds client bytes through a decoder, as the loop does, and returns
    /// the last action.
    struct Client {
        m: Machine,
        d: Decoder,
    }

    impl Client {
        fn new(cfg: MachineConfig) -> Client {
            Client {
                m: Machine::new(cfg),
                d: Decoder::new(200, 100),
            }
        }

        /// All actions for these bytes (answers still to be given).
        fn send(&mut self, bytes: &[u8]) -> Vec<Action> {
            self.d.push(bytes);
            let mut out = Vec::new();
            while let Some(f) = self.d.next_frame(self.m.input_mode()) {
                let a = self.m.on_frame(f);
                let stop = !matches!(a, Action::Send(_));
                out.push(a);
                if stop {
                    break;
                }
            }
            out
        }

        /// The one action for a line.
        fn line(&mut self, l: &str) -> Action {
            let mut v = self.send(format!("{l}\r\n").as_bytes());
            assert_eq!(v.len(), 1, "{l:?} gave {v:?}");
            v.remove(0)
        }

        fn login(&mut self) {
            let ir = b64(b"\0alice\0pw");
            let a = self.line(&format!("AUTHENTICATE \"PLAIN\" \"{ir}\""));
            assert_eq!(
                a,
                Action::Login {
                    login: "alice".into(),
                    password: Secret("pw".into())
                }
            );
            assert_eq!(
                text(self.m.answer(Answer::Login(LoginOutcome::Success(alice())))),
                "OK \"Logged in\"\r\n"
            );
        }
    }

    fn alice() -> AuthUser {
        AuthUser {
            principal_id: 7,
            login: "alice@example.org".into(),
            quota_bytes: 0,
        }
    }

    fn b64(b: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(b)
    }

    /// What the client would read for a Send.
    fn text(a: Action) -> String {
        match a {
            Action::Send(r) => String::from_utf8(codec::encode(&r)).unwrap(),
            other => panic!("expected Send, got {other:?}"),
        }
    }

    fn status(a: &Action) -> Option<Status> {
        match a {
            Action::Send(r) | Action::Close(r) | Action::StartTls(r) => {
                r.last().and_then(Response::status_of)
            }
            _ => None,
        }
    }

    #[test]
    fn greeting_and_capabilities_follow_the_state() {
        let m = Machine::new(cfg());
        let g = String::from_utf8(codec::encode(&m.greeting())).unwrap();
        assert!(g.starts_with("\"IMPLEMENTATION\" \"Outpost\"\r\n"), "{g}");
        assert!(g.contains("\"SIEVE\" \"fileinto vacation\"\r\n"));
        assert!(
            g.contains("\"SASL\" \"\"\r\n"),
            "no password offered in plaintext"
        );
        assert!(g.contains("\"STARTTLS\"\r\n"));
        assert!(g.contains("\"MAXREDIRECTS\" \"3\"\r\n"));
        assert!(g.ends_with("OK \"mail.example.org ManageSieve ready\"\r\n"));
        let mut c = Client::new(tls());
        let caps = text(c.line("CAPABILITY"));
        assert!(caps.contains("\"SASL\" \"PLAIN LOGIN\"\r\n"));
        assert!(!caps.contains("STARTTLS"));
        c.login();
        let caps = text(c.line("CAPABILITY"));
        assert!(caps.contains("\"OWNER\" \"alice@example.org\"\r\n"));
        assert!(!caps.contains("SASL"));
        assert!(caps.ends_with("OK\r\n"));
    }

    #[test]
    fn plaintext_login_is_refused_and_starttls_offered() {
        let mut c = Client::new(cfg());
        let ir = b64(b"\0alice\0pw");
        assert_eq!(
            text(c.line(&format!("AUTHENTICATE \"PLAIN\" \"{ir}\""))),
            "NO (ENCRYPT-NEEDED) \"Use STARTTLS first\"\r\n"
        );
        assert_eq!(text(c.line("LISTSCRIPTS")), "NO \"Authenticate first\"\r\n");
        match c.line("STARTTLS") {
            Action::StartTls(r) => {
                assert_eq!(codec::encode(&r), b"OK \"Begin TLS negotiation\"\r\n")
            }
            other => panic!("{other:?}"),
        }
        let after = String::from_utf8(codec::encode(&c.m.tls_started())).unwrap();
        assert!(after.contains("\"SASL\" \"PLAIN LOGIN\"") && !after.contains("\"STARTTLS\""));
        assert!(after.ends_with("OK \"TLS negotiated\"\r\n"));
        assert_eq!(text(c.line("STARTTLS")), "NO \"Already using TLS\"\r\n");
        c.login();
    }

    #[test]
    fn starttls_only_before_login() {
        let mut c = Client::new(MachineConfig {
            plaintext_allowed: true,
            ..cfg()
        });
        c.login();
        assert_eq!(
            text(c.line("STARTTLS")),
            "NO \"STARTTLS is only allowed before login\"\r\n"
        );
        let mut none = Client::new(MachineConfig {
            tls_available: false,
            ..cfg()
        });
        assert_eq!(text(none.line("STARTTLS")), "NO \"TLS not available\"\r\n");
    }

    #[test]
    fn sasl_plain_with_continuation() {
        let mut c = Client::new(tls());
        assert_eq!(text(c.line("AUTHENTICATE \"PLAIN\"")), "\"\"\r\n");
        assert_eq!(c.m.input_mode(), Mode::SaslResponse);
        let resp = b64(b"alice\0alice\0pw");
        match c.line(&format!("\"{resp}\"")) {
            Action::Login { login, password } => {
                assert_eq!((login.as_str(), password.0.as_str()), ("alice", "pw"))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            text(c.m.answer(Answer::Login(LoginOutcome::Failed))),
            "NO \"Authentication failed\"\r\n"
        );
        assert!(c.m.user().is_none());
        // As a literal, then a good login.
        assert_eq!(text(c.line("AUTHENTICATE \"plain\"")), "\"\"\r\n");
        let resp = b64(b"\0alice\0pw");
        let a = c.send(format!("{{{}+}}\r\n{resp}\r\n", resp.len()).as_bytes());
        assert!(matches!(a[..], [Action::Login { .. }]), "{a:?}");
        c.m.answer(Answer::Login(LoginOutcome::Success(alice())));
        assert_eq!(c.m.user(), Some(&alice()));
        assert_eq!(
            text(c.line("AUTHENTICATE \"PLAIN\"")),
            "NO \"Already authenticated\"\r\n"
        );
    }

    #[test]
    fn sasl_login_with_and_without_initial_response() {
        let mut c = Client::new(tls());
        assert_eq!(
            text(c.line("AUTHENTICATE \"LOGIN\"")),
            "\"VXNlcm5hbWU6\"\r\n"
        );
        assert_eq!(
            text(c.line(&format!("\"{}\"", b64(b"alice")))),
            "\"UGFzc3dvcmQ6\"\r\n"
        );
        assert_eq!(c.m.input_mode(), Mode::SaslResponse);
        assert_eq!(
            c.line(&format!("\"{}\"", b64(b"pw"))),
            Action::Login {
                login: "alice".into(),
                password: Secret("pw".into())
            }
        );
        c.m.answer(Answer::Login(LoginOutcome::Blocked));
        // The user name as initial response: only the password is asked.
        assert_eq!(
            text(c.line(&format!("AUTHENTICATE \"LOGIN\" \"{}\"", b64(b"alice")))),
            "\"UGFzc3dvcmQ6\"\r\n"
        );
        assert_eq!(
            c.line(&format!("\"{}\"", b64(b"pw"))),
            Action::Login {
                login: "alice".into(),
                password: Secret("pw".into())
            }
        );
        assert_eq!(
            text(c.m.answer(Answer::Login(LoginOutcome::Unavailable(TempFail(
                "ldap down".into()
            ))))),
            "NO (TRYLATER) \"Temporary failure, try again later\"\r\n"
        );
    }

    #[test]
    fn star_cancels_and_bad_responses_end_the_exchange() {
        let mut c = Client::new(MachineConfig {
            max_bad_commands: 8,
            ..tls()
        });
        for cancel in ["*", "\"*\""] {
            c.line("AUTHENTICATE \"PLAIN\"");
            assert_eq!(text(c.line(cancel)), "NO \"Authentication cancelled\"\r\n");
            assert_eq!(c.m.input_mode(), Mode::Command);
        }
        c.line("AUTHENTICATE \"LOGIN\"");
        c.line(&format!("\"{}\"", b64(b"alice")));
        assert_eq!(text(c.line("*")), "NO \"Authentication cancelled\"\r\n");
        // Not base64, two strings, a bad authzid: NO, and commands again.
        c.line("AUTHENTICATE \"PLAIN\"");
        assert_eq!(
            text(c.line("\"not base64!\"")),
            "NO \"Malformed SASL response\"\r\n"
        );
        c.line("AUTHENTICATE \"PLAIN\"");
        assert!(text(c.line("\"a\" \"b\"")).starts_with("NO \"Malformed SASL response: "));
        assert_eq!(
            text(c.line(&format!(
                "AUTHENTICATE \"PLAIN\" \"{}\"",
                b64(b"bob\0alice\0pw")
            ))),
            "NO \"Authorization identity must be empty or equal the login\"\r\n"
        );
        assert_eq!(
            text(c.line("AUTHENTICATE \"CRAM-MD5\"")),
            "NO \"Unsupported SASL mechanism\"\r\n"
        );
        // Seven refusals so far; the eighth of eight ends the session.
        let a = c.line("AUTHENTICATE \"PLAIN\" \"x\"");
        match a {
            Action::Close(r) => assert_eq!(
                codec::encode(&r),
                b"NO \"Malformed SASL response\"\r\nBYE \"Too many errors\"\r\n"
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(c.m.end_reason(), Some("too many errors"));
    }

    #[test]
    fn bad_input_gets_no_and_the_session_goes_on() {
        let mut c = Client::new(tls());
        let a = c.send(b"BOGUS \"x\r\nFROB\r\nGETSCRIPT\r\n\"x\"\r\nNOOP\r\n");
        let texts: Vec<String> = a.into_iter().map(text).collect();
        assert_eq!(
            texts,
            [
                "NO \"quoted string runs past the line end\"\r\n",
                "NO \"Unknown command\"\r\n",
                "NO \"GETSCRIPT takes a script name\"\r\n",
                "NO \"expected a command name\"\r\n",
                "OK \"Done\"\r\n",
            ]
        );
        assert_eq!(
            text(c.line("NOOP \"t\\\"1\"")),
            "OK (TAG \"t\\\"1\") \"Done\"\r\n"
        );
    }

    #[test]
    fn too_big_input_gets_bye_and_closes() {
        let mut c = Client::new(tls());
        let a = c.send(b"PUTSCRIPT \"a\" {101+}\r\n");
        match &a[..] {
            [Action::Close(r)] => {
                let t = String::from_utf8(codec::encode(r)).unwrap();
                assert_eq!(
                    t,
                    "BYE (QUOTA/MAXSIZE) \"Input too large: at most 200 bytes per line and 100 per literal\"\r\n"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(c.m.is_closed());
        let mut c = Client::new(tls());
        let a = c.send(&[b'A'; 300]);
        assert!(matches!(&a[..], [Action::Close(_)]), "{a:?}");
    }

    #[test]
    fn synchronising_literal_gets_a_continuation() {
        let mut c = Client::new(tls());
        c.login();
        let a = c.send(b"CHECKSCRIPT {5}\r\n");
        assert_eq!(a.len(), 1);
        assert_eq!(
            text(a.into_iter().next().unwrap()),
            "\"Ready for literal data\"\r\n"
        );
        let a = c.send(b"keep;\r\n");
        assert_eq!(
            a,
            [Action::Compile {
                script: "keep;".into()
            }]
        );
        assert_eq!(text(c.m.answer(Answer::Compiled(Ok(())))), "OK\r\n");
        // {N+} needs none.
        let a = c.send(b"CHECKSCRIPT {5+}\r\nkeep;\r\n");
        assert!(matches!(a[..], [Action::Compile { .. }]));
        assert_eq!(
            text(c.m.answer(Answer::Compiled(Err("line 1: bad".into())))),
            "NO \"line 1: bad\"\r\n"
        );
    }

    #[test]
    fn putscript_compiles_checks_the_quota_then_stores() {
        let mut c = Client::new(tls());
        c.login();
        let a = c.line("PUTSCRIPT \"s\" \"keep;\"");
        assert_eq!(
            a,
            Action::Compile {
                script: "keep;".into()
            }
        );
        assert_eq!(
            c.m.answer(Answer::Compiled(Ok(()))),
            Action::Script(Op::List)
        );
        let two = vec![
            ScriptInfo {
                name: "a".into(),
                size: 1,
                active: false,
            },
            ScriptInfo {
                name: "s".into(),
                size: 1,
                active: true,
            },
        ];
        // Replacing one of two is fine with a quota of two.
        assert_eq!(
            c.m.answer(Answer::Scripts(Ok(two.clone()))),
            Action::Script(Op::Put {
                name: "s".into(),
                script: "keep;".into()
            })
        );
        assert_eq!(text(c.m.answer(Answer::Done(Ok(())))), "OK\r\n");
        // A third is not.
        c.line("PUTSCRIPT \"t\" \"keep;\"");
        c.m.answer(Answer::Compiled(Ok(())));
        assert_eq!(
            text(c.m.answer(Answer::Scripts(Ok(two.clone())))),
            "NO (QUOTA/MAXSCRIPTS) \"At most 2 scripts per user\"\r\n"
        );
        // HAVESPACE asks the same.
        assert_eq!(c.line("HAVESPACE \"t\" 10"), Action::Script(Op::List));
        assert!(text(c.m.answer(Answer::Scripts(Ok(two)))).starts_with("NO (QUOTA/MAXSCRIPTS)"));
        assert_eq!(
            text(c.line("HAVESPACE \"t\" 101")),
            "NO (QUOTA/MAXSIZE) \"Scripts may be at most 100 bytes\"\r\n"
        );
        // Bad names and store refusals.
        assert_eq!(
            text(c.line("PUTSCRIPT \"a\\\\\u{2028}\" \"keep;\"")),
            "NO \"Invalid script name\"\r\n"
        );
        c.line("PUTSCRIPT \"x\" \"keep;\"");
        c.m.answer(Answer::Compiled(Ok(())));
        c.m.answer(Answer::Scripts(Ok(Vec::new())));
        assert_eq!(
            text(c.m.answer(Answer::Done(Err(ScriptOpError::Temp("disk".into()))))),
            "NO (TRYLATER) \"Temporary failure, try again later\"\r\n"
        );
    }

    #[test]
    fn script_operations_and_their_answers() {
        let mut c = Client::new(tls());
        c.login();
        assert_eq!(c.line("LISTSCRIPTS"), Action::Script(Op::List));
        assert_eq!(
            text(c.m.answer(Answer::Scripts(Ok(vec![
                ScriptInfo {
                    name: "a".into(),
                    size: 1,
                    active: true
                },
                ScriptInfo {
                    name: "b \"c\"".into(),
                    size: 1,
                    active: false
                },
            ])))),
            "\"a\" ACTIVE\r\n\"b \\\"c\\\"\"\r\nOK\r\n"
        );
        assert_eq!(
            c.line("GETSCRIPT \"a\""),
            Action::Script(Op::Get { name: "a".into() })
        );
        assert_eq!(
            text(c.m.answer(Answer::Script(Ok(Some("keep;\n".into()))))),
            "{6}\r\nkeep;\n\r\nOK\r\n"
        );
        c.line("GETSCRIPT \"zz\"");
        assert_eq!(
            text(c.m.answer(Answer::Script(Ok(None)))),
            "NO (NONEXISTENT) \"No such script\"\r\n"
        );
        assert_eq!(
            c.line("SETACTIVE \"\""),
            Action::Script(Op::SetActive { name: None })
        );
        c.m.answer(Answer::Done(Ok(())));
        assert_eq!(
            c.line("DELETESCRIPT \"a\""),
            Action::Script(Op::Delete { name: "a".into() })
        );
        assert_eq!(
            text(c.m.answer(Answer::Done(Err(ScriptOpError::Active)))),
            "NO (ACTIVE) \"Script is active; deactivate it first\"\r\n"
        );
        assert_eq!(
            c.line("RENAMESCRIPT \"a\" \"b\""),
            Action::Script(Op::Rename {
                from: "a".into(),
                to: "b".into()
            })
        );
        assert_eq!(
            text(c.m.answer(Answer::Done(Err(ScriptOpError::Exists)))),
            "NO (ALREADYEXISTS) \"A script of that name exists\"\r\n"
        );
        // Answers are not refusals: many of them do not end the session.
        for _ in 0..10 {
            c.line("GETSCRIPT \"zz\"");
            assert_eq!(
                status(&c.m.answer(Answer::Script(Ok(None)))),
                Some(Status::No)
            );
        }
        assert!(!c.m.is_closed());
        assert_eq!(text(c.line("UNAUTHENTICATE")), "OK\r\n");
        assert!(c.m.user().is_none());
        assert_eq!(
            text(c.line("UNAUTHENTICATE")),
            "NO \"Authenticate first\"\r\n"
        );
        match c.line("LOGOUT") {
            Action::Close(r) => assert_eq!(codec::encode(&r), b"OK \"Logout\"\r\n"),
            other => panic!("{other:?}"),
        }
        assert_eq!(c.m.end_reason(), Some("logout"));
    }

    #[test]
    fn names_per_rfc_5804() {
        assert!(valid_name("vacation 2024"));
        assert!(valid_name("ünïcødé"));
        assert!(!valid_name(""));
        for bad in ["a\0", "a\r", "\u{7f}", "\u{85}", "a\u{2029}"] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }
}
