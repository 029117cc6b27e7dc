//! The ManageSieve server's thin async loop: reads bytes, frames them with
//! the [`codec`], feeds the [`session`] machine, carries out its actions
//! against the auth layer, the Sieve engine and a [`SieveBackend`], and
//! writes the replies.
//!
//! [`codec`]: crate::codec
//! [`session`]: crate::session

use std::io;
use std::sync::Arc;
use std::time::Duration;

use outpost_net::{AuthUser, Conn, ListenerContext, LoginOutcome, Session, TempFail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::{info, warn};

use crate::codec::{self, Decoder, Frame};
use crate::engine::Engine;
use crate::session::{Action, Answer, Machine, MachineConfig, Op, ScriptInfo, ScriptOpError};

/// What ManageSieve needs of the store: the user's scripts. Logins go
/// through [`AuthLayer`].
#[async_trait::async_trait]
pub trait SieveBackend: Send + Sync {
    async fn list(&self, user: &AuthUser) -> Result<Vec<ScriptInfo>, TempFail>;
    async fn get(&self, user: &AuthUser, name: &str) -> Result<Option<String>, TempFail>;
    async fn put(&self, user: &AuthUser, name: &str, content: &str) -> Result<(), ScriptOpError>;
    async fn delete(&self, user: &AuthUser, name: &str) -> Result<(), ScriptOpError>;
    async fn rename(&self, user: &AuthUser, from: &str, to: &str) -> Result<(), ScriptOpError>;
    /// `None` deactivates every script.
    async fn set_active(&self, user: &AuthUser, name: Option<&str>) -> Result<(), ScriptOpError>;
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
    /// What every listener shares: host name, STARTTLS acceptor, the one
    /// [`AuthLayer`](outpost_net::AuthLayer), the plaintext-on-loopback rule.
    pub listener: ListenerContext,
    pub backend: Arc<dyn SieveBackend>,
    /// Compiles uploaded scripts (PUTSCRIPT, CHECKSCRIPT).
    pub engine: Arc<Engine>,
    pub limits: ManageSieveLimits,
}

/// Output is sent once this much has piled up, even if more pipelined
/// commands are waiting.
const FLUSH_AT: usize = 64 * 1024;

/// Runs one ManageSieve session until LOGOUT, disconnect, idle timeout or
/// too many bad commands. Never panics on client input.
pub async fn serve(conn: Conn, session: Session, ctx: Arc<ManageSieveContext>) {
    let id = session.id;
    info!(session = id, listener = session.listener, peer = %session.peer, tls = conn.is_tls(), "managesieve: connected");
    match run(conn, &session, &ctx).await {
        Ok(why) => info!(session = id, "managesieve: disconnected ({why})"),
        Err(e) => info!(
            session = id,
            "managesieve: disconnected (connection error: {e})"
        ),
    }
}

async fn run(
    mut conn: Conn,
    session: &Session,
    ctx: &ManageSieveContext,
) -> io::Result<&'static str> {
    let id = session.id;
    let limits = &ctx.limits;
    let mut m = Machine::new(MachineConfig {
        hostname: ctx.listener.hostname.clone(),
        tls_available: ctx.listener.tls.is_some(),
        is_tls: conn.is_tls(),
        plaintext_allowed: ctx.listener.allow_plaintext_on_loopback && session.is_loopback(),
        max_bad_commands: limits.max_bad_commands.max(1),
        max_scripts: limits.max_scripts,
        max_script_size: limits.max_script_size,
        sieve_extensions: ctx.engine.capability(),
        max_redirects: ctx.engine.limits().max_redirects,
    });
    let mut input = Decoder::new(limits.max_line_length, limits.max_script_size);
    let mut out = codec::encode(&m.greeting());
    let mut chunk = vec![0u8; 8192];
    loop {
        let Some(frame) = input.next_frame(m.input_mode()) else {
            // Nothing complete left: send what the pipeline produced and
            // wait for the client.
            flush(&mut conn, &mut out, limits.idle_timeout).await?;
            match tokio::time::timeout(limits.idle_timeout, conn.read(&mut chunk)).await {
                Err(_) => {
                    m.timed_out().encode_into(&mut out);
                    let _ = flush(&mut conn, &mut out, limits.idle_timeout).await;
                    return Ok("idle timeout");
                }
                Ok(Ok(0)) => return Ok("client closed"),
                Ok(Ok(n)) => input.push(&chunk[..n]),
                Ok(Err(e)) => return Err(e),
            }
            continue;
        };
        if let Frame::TooBig(why) = &frame {
            info!(session = id, "managesieve: input too large: {why}");
        }
        let mut action = m.on_frame(frame);
        // Drive the machine until it wants more input.
        loop {
            action = match action {
                Action::Send(rs) => {
                    out.extend_from_slice(&codec::encode(&rs));
                    if out.len() >= FLUSH_AT {
                        flush(&mut conn, &mut out, limits.idle_timeout).await?;
                    }
                    break;
                }
                Action::Close(rs) => {
                    out.extend_from_slice(&codec::encode(&rs));
                    let _ = flush(&mut conn, &mut out, limits.idle_timeout).await;
                    let _ = conn.shutdown().await;
                    return Ok(m.end_reason().unwrap_or("closed"));
                }
                Action::StartTls(rs) => {
                    out.extend_from_slice(&codec::encode(&rs));
                    flush(&mut conn, &mut out, limits.idle_timeout).await?;
                    // Pipelined plaintext must not run under TLS.
                    input.clear();
                    let Some(acceptor) = &ctx.listener.tls else {
                        return Ok("STARTTLS without TLS");
                    };
                    let handshake = conn.into_tls(acceptor);
                    conn = match tokio::time::timeout(limits.idle_timeout, handshake).await {
                        Ok(Ok(c)) => c,
                        Ok(Err(e)) => {
                            info!(session = id, "managesieve: TLS handshake failed: {e}");
                            return Ok("TLS handshake failed");
                        }
                        Err(_) => return Ok("TLS handshake timed out"),
                    };
                    Action::Send(m.tls_started())
                }
                Action::Login { login, password } => {
                    let shown: String =
                        login.chars().filter(|c| !c.is_control()).take(64).collect();
                    let outcome = ctx
                        .listener
                        .auth
                        .login(session.peer.ip(), &login, &password.0)
                        .await;
                    match &outcome {
                        LoginOutcome::Success(u) => {
                            info!(session = id, user = %u.login, "managesieve: logged in")
                        }
                        LoginOutcome::Failed => {
                            info!(session = id, login = %shown, "managesieve: login failed")
                        }
                        LoginOutcome::Blocked => {
                            info!(session = id, login = %shown, "managesieve: login refused, throttled")
                        }
                        LoginOutcome::Unavailable(e) => {
                            warn!(session = id, login = %shown, "managesieve: login temporarily failed: {e}")
                        }
                    }
                    m.answer(Answer::Login(outcome))
                }
                Action::Compile { script } => {
                    let r = ctx.engine.compile(&script).map(|_| ()).map_err(|e| {
                        info!(session = id, "managesieve: script refused: {e}");
                        e.to_string()
                    });
                    m.answer(Answer::Compiled(r))
                }
                Action::Script(op) => {
                    let Some(user) = m.user().cloned() else {
                        // The machine asks only when logged in.
                        return Ok("script operation without a user");
                    };
                    let answer = script_op(ctx, id, &user, op).await;
                    m.answer(answer)
                }
            };
        }
    }
}

/// Carries out one script operation, logging failures.
async fn script_op(ctx: &ManageSieveContext, id: u64, user: &AuthUser, op: Op) -> Answer {
    let b = &ctx.backend;
    let temp = |e: &str| warn!(session = id, "managesieve: backend failure: {e}");
    match op {
        Op::List => {
            let r = b.list(user).await;
            if let Err(e) = &r {
                temp(&e.0);
            }
            Answer::Scripts(r)
        }
        Op::Get { name } => {
            let r = b.get(user, &name).await;
            if let Err(e) = &r {
                temp(&e.0);
            }
            Answer::Script(r)
        }
        Op::Put { name, script } => {
            let r = b.put(user, &name, &script).await;
            match &r {
                Ok(()) => {
                    info!(session = id, user = %user.login, script = %name, "managesieve: script stored")
                }
                Err(ScriptOpError::Temp(e)) => temp(e),
                Err(_) => {}
            }
            Answer::Done(r)
        }
        Op::Delete { name } => done(b.delete(user, &name).await, temp),
        Op::Rename { from, to } => done(b.rename(user, &from, &to).await, temp),
        Op::SetActive { name } => done(b.set_active(user, name.as_deref()).await, temp),
    }
}

fn done(r: Result<(), ScriptOpError>, temp: impl Fn(&str)) -> Answer {
    if let Err(ScriptOpError::Temp(e)) = &r {
        temp(e);
    }
    Answer::Done(r)
}

async fn flush(conn: &mut Conn, out: &mut Vec<u8>, timeout: Duration) -> io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    let w = async {
        conn.write_all(out).await?;
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
