//! The ManageSieve server (RFC 5804): the tokio loop over [`codec`] and the
//! command handling against a [`SieveBackend`].
//!
//! [`codec`]: crate::codec

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use outpost_net::{AuthThrottle, Conn, Session, TlsAcceptor, Verdict};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::{info, warn};

use crate::codec::{self, Arg, Command, Parsed};
use crate::engine::{Engine, NOTIFY_METHODS};

/// A temporary failure of the directory or store; logged, not shown.
#[derive(Clone, Debug)]
pub struct TempFail(pub String);

/// Why a script operation did not happen.
#[derive(Clone, Debug)]
pub enum ScriptOpError {
    NotFound,
    Exists,
    /// The script is active (DELETESCRIPT).
    Active,
    Temp(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SieveUser {
    /// The principal id.
    pub id: i64,
    /// Primary address, for logs and OWNER.
    pub name: String,
}

/// A script as LISTSCRIPTS and HAVESPACE need it.
#[derive(Clone, Debug)]
pub struct ScriptInfo {
    pub name: String,
    pub size: usize,
    pub active: bool,
}

/// What ManageSieve needs of the directory and the store.
#[async_trait::async_trait]
pub trait SieveBackend: Send + Sync {
    async fn authenticate(
        &self,
        login: &str,
        password: &str,
    ) -> Result<Option<SieveUser>, TempFail>;
    async fn list(&self, user: &SieveUser) -> Result<Vec<ScriptInfo>, TempFail>;
    async fn get(&self, user: &SieveUser, name: &str) -> Result<Option<String>, TempFail>;
    async fn put(&self, user: &SieveUser, name: &str, content: &str) -> Result<(), ScriptOpError>;
    async fn delete(&self, user: &SieveUser, name: &str) -> Result<(), ScriptOpError>;
    async fn rename(&self, user: &SieveUser, from: &str, to: &str) -> Result<(), ScriptOpError>;
    /// `None` deactivates every script.
    async fn set_active(&self, user: &SieveUser, name: Option<&str>) -> Result<(), ScriptOpError>;
}

#[derive(Clone, Debug)]
pub struct ManageSieveLimits {
    pub idle_timeout: Duration,
    pub max_line_length: usize,
    /// Scripts per user.
    pub max_scripts: usize,
    /// Bytes per script (also the largest literal accepted).
    pub max_script_size: usize,
    pub max_bad_commands: u32,
}

impl Default for ManageSieveLimits {
    fn default() -> Self {
        ManageSieveLimits {
            idle_timeout: Duration::from_secs(600),
            max_line_length: 8192,
            max_scripts: 32,
            max_script_size: 64 * 1024,
            max_bad_commands: 20,
        }
    }
}

pub struct ManageSieveContext {
    pub hostname: String,
    pub tls: Option<TlsAcceptor>,
    pub backend: Arc<dyn SieveBackend>,
    /// Compiles uploaded scripts (PUTSCRIPT, CHECKSCRIPT).
    pub engine: Arc<Engine>,
    pub throttle: AuthThrottle,
    pub limits: ManageSieveLimits,
    /// Allow logins without TLS from loopback addresses.
    pub allow_plaintext_on_loopback: bool,
}

/// Runs one ManageSieve session until LOGOUT, disconnect, idle timeout or
/// too many bad commands. Never panics on client input.
pub async fn serve(conn: Conn, session: Session, ctx: Arc<ManageSieveContext>) {
    let id = session.id;
    info!(session = id, listener = session.listener, peer = %session.peer, tls = conn.is_tls(), "managesieve: connected");
    let mut s = State {
        ctx: &ctx,
        session: &session,
        user: None,
        bad: 0,
    };
    match s.run(conn).await {
        Ok(why) => info!(session = id, "managesieve: disconnected ({why})"),
        Err(e) => info!(
            session = id,
            "managesieve: disconnected (connection error: {e})"
        ),
    }
}

struct State<'a> {
    ctx: &'a ManageSieveContext,
    session: &'a Session,
    user: Option<SieveUser>,
    bad: u32,
}

enum Next {
    Continue,
    StartTls,
    Close(&'static str),
}

impl State<'_> {
    fn login_allowed(&self, tls: bool) -> bool {
        tls || (self.ctx.allow_plaintext_on_loopback && self.session.is_loopback())
    }

    fn capabilities(&self, tls: bool) -> String {
        let mut out = String::new();
        out.push_str("\"IMPLEMENTATION\" \"Outpost\"\r\n");
        out.push_str(&format!(
            "\"SIEVE\" {}\r\n",
            codec::string(&self.ctx.engine.capability())
        ));
        out.push_str(&format!("\"NOTIFY\" \"{}\"\r\n", NOTIFY_METHODS.join(" ")));
        if self.user.is_none() {
            let sasl = if self.login_allowed(tls) {
                "PLAIN LOGIN"
            } else {
                ""
            };
            out.push_str(&format!("\"SASL\" \"{sasl}\"\r\n"));
            if !tls && self.ctx.tls.is_some() {
                out.push_str("\"STARTTLS\"\r\n");
            }
        } else if let Some(u) = &self.user {
            out.push_str(&format!("\"OWNER\" {}\r\n", codec::string(&u.name)));
        }
        out.push_str(&format!(
            "\"MAXREDIRECTS\" \"{}\"\r\n",
            self.ctx.engine.limits().max_redirects
        ));
        out.push_str("\"VERSION\" \"1.0\"\r\n");
        out
    }

    async fn run(&mut self, mut conn: Conn) -> io::Result<&'static str> {
        let limits = self.ctx.limits.clone();
        let mut buf: Vec<u8> = Vec::new();
        let mut out = self.capabilities(conn.is_tls());
        out.push_str(&codec::response(
            "OK",
            None,
            &format!("{} ManageSieve ready", self.ctx.hostname),
        ));
        let mut chunk = vec![0u8; 8192];
        loop {
            let parsed = codec::parse(&buf, limits.max_line_length, limits.max_script_size);
            match parsed {
                Parsed::Incomplete => {
                    write(&mut conn, &mut out, limits.idle_timeout).await?;
                    match tokio::time::timeout(limits.idle_timeout, conn.read(&mut chunk)).await {
                        Err(_) => {
                            out.push_str(&codec::response("BYE", None, "Idle timeout"));
                            let _ = write(&mut conn, &mut out, limits.idle_timeout).await;
                            return Ok("idle timeout");
                        }
                        Ok(Ok(0)) => return Ok("client closed"),
                        Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
                        Ok(Err(e)) => return Err(e),
                    }
                }
                Parsed::TooBig(why) => {
                    out.push_str(&codec::response("BYE", Some("QUOTA/MAXSIZE"), &why));
                    let _ = write(&mut conn, &mut out, limits.idle_timeout).await;
                    return Ok("input too large");
                }
                Parsed::Bad(why, used) => {
                    buf.drain(..used);
                    out.push_str(&codec::response("NO", None, &why));
                    if self.strike() {
                        out.push_str(&codec::response("BYE", None, "Too many errors"));
                        let _ = write(&mut conn, &mut out, limits.idle_timeout).await;
                        return Ok("too many errors");
                    }
                }
                Parsed::Command(cmd, used) => {
                    buf.drain(..used);
                    let tls = conn.is_tls();
                    match self
                        .command(cmd, tls, &mut out, &mut conn, &mut buf)
                        .await?
                    {
                        Next::Continue => {}
                        Next::Close(why) => {
                            let _ = write(&mut conn, &mut out, limits.idle_timeout).await;
                            let _ = conn.shutdown().await;
                            return Ok(why);
                        }
                        Next::StartTls => {
                            write(&mut conn, &mut out, limits.idle_timeout).await?;
                            // Pipelined plaintext must not run under TLS.
                            buf.clear();
                            let Some(acceptor) = &self.ctx.tls else {
                                return Ok("STARTTLS without TLS");
                            };
                            conn = match tokio::time::timeout(
                                limits.idle_timeout,
                                conn.into_tls(acceptor),
                            )
                            .await
                            {
                                Ok(Ok(c)) => c,
                                Ok(Err(e)) => {
                                    info!(
                                        session = self.session.id,
                                        "managesieve: TLS handshake failed: {e}"
                                    );
                                    return Ok("TLS handshake failed");
                                }
                                Err(_) => return Ok("TLS handshake timed out"),
                            };
                            // RFC 5804 §2.2: capabilities again after TLS.
                            out.push_str(&self.capabilities(true));
                            out.push_str(&codec::response("OK", None, "TLS negotiated"));
                        }
                    }
                    if self.bad >= limits.max_bad_commands.max(1) {
                        out.push_str(&codec::response("BYE", None, "Too many errors"));
                        let _ = write(&mut conn, &mut out, limits.idle_timeout).await;
                        return Ok("too many errors");
                    }
                }
            }
        }
    }

    /// Counts a bad command; true when the session should end.
    fn strike(&mut self) -> bool {
        self.bad += 1;
        self.bad >= self.ctx.limits.max_bad_commands.max(1)
    }

    fn no(&mut self, out: &mut String, code: Option<&str>, text: &str) {
        self.bad += 1;
        out.push_str(&codec::response("NO", code, text));
    }

    async fn command(
        &mut self,
        cmd: Command,
        tls: bool,
        out: &mut String,
        conn: &mut Conn,
        buf: &mut Vec<u8>,
    ) -> io::Result<Next> {
        let args: Vec<Option<String>> = cmd
            .args
            .iter()
            .map(|a| a.as_str().map(str::to_string))
            .collect();
        let arg = |i: usize| args.get(i).cloned().flatten();
        let id = self.session.id;
        match cmd.name.as_str() {
            "CAPABILITY" => {
                out.push_str(&self.capabilities(tls));
                out.push_str(&codec::response("OK", None, ""));
            }
            "NOOP" => match arg(0) {
                Some(tag) => {
                    out.push_str(&format!("OK (TAG {}) \"Done\"\r\n", codec::string(&tag)))
                }
                None => out.push_str(&codec::response("OK", None, "Done")),
            },
            "LOGOUT" => {
                out.push_str(&codec::response("OK", None, "Logout"));
                return Ok(Next::Close("logout"));
            }
            "STARTTLS" => {
                if tls || self.ctx.tls.is_none() {
                    self.no(out, None, "TLS not available");
                } else if self.user.is_some() {
                    self.no(out, None, "Already authenticated");
                } else {
                    out.push_str(&codec::response("OK", None, "Begin TLS negotiation"));
                    return Ok(Next::StartTls);
                }
            }
            "AUTHENTICATE" => {
                if self.user.is_some() {
                    self.no(out, None, "Already authenticated");
                } else if !self.login_allowed(tls) {
                    self.no(out, Some("ENCRYPT-NEEDED"), "Use STARTTLS first");
                } else {
                    return self.authenticate(&cmd.args, out, conn, buf).await;
                }
            }
            "UNAUTHENTICATE" if self.user.is_some() => {
                self.user = None;
                out.push_str(&codec::response("OK", None, ""));
            }
            _ if self.user.is_none() => {
                self.no(out, None, "Authenticate first");
            }
            "HAVESPACE" => {
                let (Some(name), Some(size)) =
                    (arg(0), arg(1).and_then(|s| s.parse::<usize>().ok()))
                else {
                    self.no(out, None, "HAVESPACE needs a script name and a size");
                    return Ok(Next::Continue);
                };
                match self.quota(&name, size).await {
                    Ok(()) => out.push_str(&codec::response("OK", None, "")),
                    Err((code, text)) => self.no(out, Some(code), &text),
                }
            }
            "PUTSCRIPT" | "CHECKSCRIPT" => {
                let put = cmd.name == "PUTSCRIPT";
                let (name, content) = if put {
                    (arg(0), arg(1))
                } else {
                    (Some(String::new()), arg(0))
                };
                let (Some(name), Some(content)) = (name, content) else {
                    self.no(out, None, "Expected a script name and content (UTF-8)");
                    return Ok(Next::Continue);
                };
                if content.len() > self.ctx.limits.max_script_size {
                    self.no(out, Some("QUOTA/MAXSIZE"), "Script is too large");
                    return Ok(Next::Continue);
                }
                if let Err(e) = self.ctx.engine.compile(&content) {
                    info!(session = id, "managesieve: script refused: {e}");
                    self.no(out, None, &e.to_string());
                    return Ok(Next::Continue);
                }
                if !put {
                    out.push_str(&codec::response("OK", None, ""));
                    return Ok(Next::Continue);
                }
                if let Err((code, text)) = self.quota(&name, content.len()).await {
                    self.no(out, Some(code), &text);
                    return Ok(Next::Continue);
                }
                let user = self.user.clone().unwrap_or_else(|| SieveUser {
                    id: 0,
                    name: String::new(),
                });
                match self.ctx.backend.put(&user, &name, &content).await {
                    Ok(()) => {
                        info!(session = id, user = %user.name, script = %name, "managesieve: script stored");
                        out.push_str(&codec::response("OK", None, ""));
                    }
                    Err(e) => self.op_error(out, e, &name),
                }
            }
            "LISTSCRIPTS" => {
                let user = self.user.clone().unwrap_or_else(|| SieveUser {
                    id: 0,
                    name: String::new(),
                });
                match self.ctx.backend.list(&user).await {
                    Ok(list) => {
                        for s in list {
                            out.push_str(&codec::string(&s.name));
                            if s.active {
                                out.push_str(" ACTIVE");
                            }
                            out.push_str("\r\n");
                        }
                        out.push_str(&codec::response("OK", None, ""));
                    }
                    Err(e) => self.temp(out, &e.0),
                }
            }
            "GETSCRIPT" => {
                let Some(name) = arg(0) else {
                    self.no(out, None, "GETSCRIPT needs a script name");
                    return Ok(Next::Continue);
                };
                let user = self.user.clone().unwrap_or_else(|| SieveUser {
                    id: 0,
                    name: String::new(),
                });
                match self.ctx.backend.get(&user, &name).await {
                    Ok(Some(content)) => {
                        out.push_str(&format!("{{{}}}\r\n{}\r\n", content.len(), content));
                        out.push_str(&codec::response("OK", None, ""));
                    }
                    Ok(None) => self.no(out, Some("NONEXISTENT"), "No such script"),
                    Err(e) => self.temp(out, &e.0),
                }
            }
            "SETACTIVE" => {
                let Some(name) = arg(0) else {
                    self.no(out, None, "SETACTIVE needs a script name");
                    return Ok(Next::Continue);
                };
                let user = self.user.clone().unwrap_or_else(|| SieveUser {
                    id: 0,
                    name: String::new(),
                });
                let target = if name.is_empty() {
                    None
                } else {
                    Some(name.as_str())
                };
                match self.ctx.backend.set_active(&user, target).await {
                    Ok(()) => out.push_str(&codec::response("OK", None, "")),
                    Err(e) => self.op_error(out, e, &name),
                }
            }
            "DELETESCRIPT" => {
                let Some(name) = arg(0) else {
                    self.no(out, None, "DELETESCRIPT needs a script name");
                    return Ok(Next::Continue);
                };
                let user = self.user.clone().unwrap_or_else(|| SieveUser {
                    id: 0,
                    name: String::new(),
                });
                match self.ctx.backend.delete(&user, &name).await {
                    Ok(()) => out.push_str(&codec::response("OK", None, "")),
                    Err(e) => self.op_error(out, e, &name),
                }
            }
            "RENAMESCRIPT" => {
                let (Some(from), Some(to)) = (arg(0), arg(1)) else {
                    self.no(out, None, "RENAMESCRIPT needs two script names");
                    return Ok(Next::Continue);
                };
                let user = self.user.clone().unwrap_or_else(|| SieveUser {
                    id: 0,
                    name: String::new(),
                });
                match self.ctx.backend.rename(&user, &from, &to).await {
                    Ok(()) => out.push_str(&codec::response("OK", None, "")),
                    Err(e) => self.op_error(out, e, &from),
                }
            }
            _ => self.no(out, None, "Unknown command"),
        }
        Ok(Next::Continue)
    }

    fn op_error(&mut self, out: &mut String, e: ScriptOpError, name: &str) {
        match e {
            ScriptOpError::NotFound => {
                // The name is not echoed: it may be long or full of
                // controls, and the reply is the same for every name.
                let _ = name;
                self.no(out, Some("NONEXISTENT"), "No such script")
            }
            ScriptOpError::Exists => {
                self.no(out, Some("ALREADYEXISTS"), "A script of that name exists")
            }
            ScriptOpError::Active => {
                self.no(out, Some("ACTIVE"), "Script is active; deactivate it first")
            }
            ScriptOpError::Temp(t) => self.temp(out, &t),
        }
    }

    fn temp(&mut self, out: &mut String, why: &str) {
        warn!(
            session = self.session.id,
            "managesieve: backend failure: {why}"
        );
        out.push_str(&codec::response(
            "NO",
            Some("TRYLATER"),
            "Temporary failure, try again later",
        ));
    }

    /// Checks the per-user quota for storing `size` bytes as `name`.
    async fn quota(&self, name: &str, size: usize) -> Result<(), (&'static str, String)> {
        let limits = &self.ctx.limits;
        if size > limits.max_script_size {
            return Err((
                "QUOTA/MAXSIZE",
                format!("Scripts may be at most {} bytes", limits.max_script_size),
            ));
        }
        let Some(user) = &self.user else {
            return Ok(());
        };
        let list = self
            .ctx
            .backend
            .list(user)
            .await
            .map_err(|e| ("TRYLATER", e.0))?;
        if !list.iter().any(|s| s.name == name) && list.len() >= limits.max_scripts {
            return Err((
                "QUOTA/MAXSCRIPTS",
                format!("At most {} scripts per user", limits.max_scripts),
            ));
        }
        Ok(())
    }

    /// AUTHENTICATE "PLAIN"/"LOGIN" with an initial response or
    /// continuations (RFC 5804 §2.1).
    async fn authenticate(
        &mut self,
        args: &[Arg],
        out: &mut String,
        conn: &mut Conn,
        buf: &mut Vec<u8>,
    ) -> io::Result<Next> {
        let mech = args
            .first()
            .and_then(|a| a.as_str())
            .unwrap_or("")
            .to_ascii_uppercase();
        let initial = args.get(1).and_then(|a| a.as_str()).map(str::to_string);
        let (login, password) = match mech.as_str() {
            "PLAIN" => {
                let resp = match initial {
                    Some(r) => r,
                    None => match self.continuation("", out, conn, buf).await? {
                        Some(r) => r,
                        None => return Ok(self.auth_cancelled(out)),
                    },
                };
                match decode_plain(&resp) {
                    Some(c) => c,
                    None => {
                        self.no(out, None, "Malformed PLAIN response");
                        return Ok(Next::Continue);
                    }
                }
            }
            "LOGIN" => {
                let user = match initial {
                    Some(r) => Some(r),
                    None => self.continuation("VXNlcm5hbWU6", out, conn, buf).await?,
                };
                let Some(user) = user.and_then(|u| b64(&u)) else {
                    return Ok(self.auth_cancelled(out));
                };
                let Some(pass) = self
                    .continuation("UGFzc3dvcmQ6", out, conn, buf)
                    .await?
                    .and_then(|p| b64(&p))
                else {
                    return Ok(self.auth_cancelled(out));
                };
                (user, pass)
            }
            _ => {
                self.no(out, None, "Unsupported SASL mechanism");
                return Ok(Next::Continue);
            }
        };
        let id = self.session.id;
        let ip = self.session.peer.ip();
        let shown: String = login.chars().filter(|c| !c.is_control()).take(64).collect();
        let verdict = self.ctx.throttle.check(ip, &login);
        if verdict == Verdict::Blocked {
            info!(session = id, login = %shown, "managesieve: login refused, throttled");
            self.no(out, None, "Too many failed logins, try later");
            return Ok(Next::Continue);
        }
        let started = Instant::now();
        let result = self.ctx.backend.authenticate(&login, &password).await;
        if let Verdict::Delay(d) = verdict {
            if let Some(rest) = d.checked_sub(started.elapsed()) {
                tokio::time::sleep(rest).await;
            }
        }
        match result {
            Ok(Some(user)) => {
                self.ctx.throttle.success(ip);
                info!(session = id, user = %user.name, "managesieve: logged in");
                self.user = Some(user);
                out.push_str(&codec::response("OK", None, "Logged in"));
            }
            Ok(None) => {
                self.ctx.throttle.failure(ip, &login);
                info!(session = id, login = %shown, "managesieve: login failed");
                self.no(out, None, "Authentication failed");
            }
            Err(e) => self.temp(out, &e.0),
        }
        Ok(Next::Continue)
    }

    fn auth_cancelled(&mut self, out: &mut String) -> Next {
        self.no(out, None, "Authentication cancelled or malformed");
        Next::Continue
    }

    /// Sends a SASL challenge and reads the client's string; `None` when
    /// the client cancels ("*") or sends garbage.
    async fn continuation(
        &mut self,
        challenge: &str,
        out: &mut String,
        conn: &mut Conn,
        buf: &mut Vec<u8>,
    ) -> io::Result<Option<String>> {
        out.push_str(&codec::string(challenge));
        out.push_str("\r\n");
        let limits = self.ctx.limits.clone();
        write(conn, out, limits.idle_timeout).await?;
        let mut chunk = vec![0u8; 4096];
        loop {
            // A response is one string (quoted or literal) or "*", then CRLF:
            // parse it as the arguments of an empty command.
            let mut framed = b"X ".to_vec();
            framed.extend_from_slice(buf);
            match codec::parse(&framed, limits.max_line_length, limits.max_line_length) {
                Parsed::Command(c, used) => {
                    buf.drain(..used - 2);
                    return Ok(match c.args.first() {
                        Some(Arg::Str(s)) => String::from_utf8(s.clone()).ok(),
                        Some(Arg::Atom(a)) if a != "*" => Some(a.clone()),
                        _ => None,
                    });
                }
                Parsed::Bad(_, used) => {
                    buf.drain(..used.saturating_sub(2).min(buf.len()));
                    return Ok(None);
                }
                Parsed::TooBig(_) => return Err(io::Error::other("SASL response too long")),
                Parsed::Incomplete => {
                    match tokio::time::timeout(limits.idle_timeout, conn.read(&mut chunk)).await {
                        Ok(Ok(0)) | Err(_) => {
                            return Err(io::Error::other("client gone during SASL"))
                        }
                        Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
                        Ok(Err(e)) => return Err(e),
                    }
                }
            }
        }
    }
}

fn b64(s: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// RFC 4616: authzid NUL authcid NUL password. An authzid other than the
/// login itself is refused (no proxy logins).
pub fn decode_plain(b64text: &str) -> Option<(String, String)> {
    let s = b64(b64text)?;
    let mut parts = s.split('\0');
    let (authz, authc, pass) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || authc.is_empty() || (!authz.is_empty() && authz != authc) {
        return None;
    }
    Some((authc.to_string(), pass.to_string()))
}

async fn write(conn: &mut Conn, out: &mut String, timeout: Duration) -> io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    let w = async {
        conn.write_all(out.as_bytes()).await?;
        conn.flush().await
    };
    match tokio::time::timeout(timeout, w).await {
        Ok(r) => {
            out.clear();
            r
        }
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "client does not read",
        )),
    }
}
