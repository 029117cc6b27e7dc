//! The thin async loop: reads lines from the connection, feeds the
//! [`Machine`], carries out its actions against the backend, writes replies.

use std::io;
use std::sync::Arc;

use outpost_net::{run_session, AuthUser, Conn, LoginOutcome as Auth, Session};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::{info, warn};

use crate::backend::MaildropGuard;
use crate::codec::{Frame, LineBuffer, Response};
use crate::session::{loggable_login, Action, LoginOutcome, Machine, MachineConfig};
use crate::Pop3Context;

/// Output is sent once this much has piled up, even if more pipelined
/// commands are waiting.
const FLUSH_AT: usize = 64 * 1024;

/// Runs one POP3 session on `conn` until the client quits, the connection
/// drops, the idle timeout passes or the session is closed for misbehaving.
/// Implicit TLS (pop3s) is the caller's job: hand over an already-TLS
/// `conn`. Never panics on client input; all outcomes are logged.
pub async fn serve(conn: Conn, session: Session, ctx: Arc<Pop3Context>) {
    let mut s = Pop3Session {
        ctx: &ctx,
        session: &session,
        user: None,
        _lock: None,
    };
    run_session("pop3", conn, &session, |conn| s.run(conn)).await
}

struct Pop3Session<'a> {
    ctx: &'a Pop3Context,
    session: &'a Session,
    user: Option<AuthUser>,
    /// Held from login to the end of the session; dropping it (normally or
    /// on any error) releases the maildrop.
    _lock: Option<MaildropGuard>,
}

impl Pop3Session<'_> {
    async fn run(&mut self, mut conn: Conn) -> io::Result<&'static str> {
        let ctx = self.ctx;
        let id = self.session.id;
        let limits = &ctx.limits;
        let mut machine = Machine::new(MachineConfig {
            hostname: ctx.listener.hostname.clone(),
            tls_available: ctx.listener.tls_available(),
            is_tls: conn.is_tls(),
            plaintext_allowed: ctx.listener.plaintext_login_allowed(self.session),
            max_bad_commands: limits.max_bad_commands.max(1),
        });
        let mut input = LineBuffer::new(limits.max_line_length);
        let mut out: Vec<u8> = machine.greeting().into_bytes();
        let mut chunk = vec![0u8; 4096];

        loop {
            let frame = match input.next_frame() {
                Some(f) => f,
                None => {
                    // Nothing complete left: send what the pipeline produced
                    // and wait for the client.
                    self.flush(&mut conn, &mut out).await?;
                    let read = tokio::time::timeout(limits.idle_timeout, conn.read(&mut chunk));
                    match read.await {
                        Err(_) => {
                            out.extend_from_slice(
                                Response::err(None, "Idle timeout, closing connection").as_bytes(),
                            );
                            let _ = self.flush(&mut conn, &mut out).await;
                            return Ok("idle timeout");
                        }
                        Ok(Ok(0)) => {
                            return Ok(if input.has_partial() {
                                "client closed mid-line"
                            } else {
                                "client closed"
                            })
                        }
                        Ok(Ok(n)) => input.push(&chunk[..n]),
                        Ok(Err(e)) => return Err(e),
                    }
                    continue;
                }
            };
            if frame == Frame::TooLong {
                info!(session = id, "pop3: line too long");
            }
            let mut action = machine.on_frame(frame);
            // Drive the machine until it wants the next line.
            loop {
                action = match action {
                    Action::Send(r) => {
                        out.extend_from_slice(r.as_bytes());
                        if out.len() >= FLUSH_AT {
                            self.flush(&mut conn, &mut out).await?;
                        }
                        break;
                    }
                    Action::Close(r) => {
                        // RFC 1939 §6: the lock goes before the final reply,
                        // so a client that reconnects at once after +OK
                        // finds its maildrop free.
                        self._lock = None;
                        out.extend_from_slice(r.as_bytes());
                        self.flush(&mut conn, &mut out).await?;
                        let _ = conn.shutdown().await;
                        let why = machine.end_reason().unwrap_or("closed");
                        if why == "too many errors" {
                            info!(session = id, "pop3: too many bad commands");
                        }
                        return Ok(why);
                    }
                    Action::StartTls(r) => {
                        out.extend_from_slice(r.as_bytes());
                        self.flush(&mut conn, &mut out).await?;
                        // Anything pipelined after STLS came in plaintext and
                        // must not run under TLS (RFC 2595 §4, CVE-2011-0411).
                        input.clear();
                        let upgraded = ctx
                            .listener
                            .start_tls(conn, self.session, "pop3", limits.idle_timeout)
                            .await;
                        conn = match upgraded {
                            Ok(c) => c,
                            Err(why) => return Ok(why),
                        };
                        machine.tls_started();
                        info!(
                            session = id,
                            tls = conn.tls_description().unwrap_or_default(),
                            "pop3: STLS done"
                        );
                        break;
                    }
                    Action::Login { login, password } => {
                        let outcome = self.login(&login, &password.0).await;
                        machine.login_result(outcome)
                    }
                    Action::Fetch { id: msg, .. } => {
                        let r = match &self.user {
                            Some(u) => ctx.backend.read(u, msg).await,
                            None => Ok(None),
                        };
                        if let Err(e) = &r {
                            warn!(session = id, "pop3: reading message {msg} failed: {e}");
                        } else if let Ok(None) = &r {
                            info!(session = id, "pop3: message {msg} vanished before RETR/TOP");
                        }
                        machine.message_result(r)
                    }
                    Action::Expunge { ids } => {
                        let r = match &self.user {
                            Some(u) => ctx.backend.expunge(u, &ids).await,
                            None => Ok(()),
                        };
                        match &r {
                            Ok(()) => info!(session = id, deleted = ids.len(), "pop3: expunged"),
                            Err(e) => warn!(
                                session = id,
                                deleted = ids.len(),
                                "pop3: expunge failed, nothing deleted: {e}"
                            ),
                        }
                        machine.update_result(r)
                    }
                };
            }
        }
    }

    async fn flush(&self, conn: &mut Conn, out: &mut Vec<u8>) -> io::Result<()> {
        if out.is_empty() {
            return Ok(());
        }
        let write = async {
            conn.write_all(out).await?;
            conn.flush().await
        };
        match tokio::time::timeout(self.ctx.limits.idle_timeout, write).await {
            Ok(r) => {
                out.clear();
                r
            }
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "client does not read its replies",
            )),
        }
    }

    /// The shared auth layer (throttle, credentials), then the lock and
    /// the maildrop: everything [`Action::Login`] asks for.
    async fn login(&mut self, login: &str, password: &str) -> LoginOutcome {
        let id = self.session.id;
        let shown = loggable_login(login);
        let ip = self.session.peer.ip();
        match self.ctx.listener.auth.login(ip, login, password).await {
            Auth::Success(user) => self.open(user).await,
            Auth::Failed => {
                info!(session = id, login = %shown, "pop3: login failed");
                LoginOutcome::BadCredentials
            }
            Auth::Blocked => {
                info!(session = id, login = %shown, "pop3: login refused, throttled");
                LoginOutcome::Blocked
            }
            Auth::Unavailable(e) => {
                warn!(session = id, login = %shown, "pop3: login temporarily failed: {e}");
                LoginOutcome::TempFail
            }
        }
    }

    async fn open(&mut self, user: AuthUser) -> LoginOutcome {
        let ctx = self.ctx;
        let id = self.session.id;
        let Some(guard) = ctx.locks.try_lock(&user.principal_id.to_string()) else {
            info!(session = id, user = %user.login, "pop3: maildrop in use");
            return LoginOutcome::InUse;
        };
        match ctx.backend.open_maildrop(&user).await {
            Ok(entries) => {
                let bad_uidl = entries.iter().filter(|e| !uidl_ok(&e.uidl)).count();
                if bad_uidl > 0 {
                    warn!(
                        session = id,
                        user = %user.login,
                        "pop3: backend gave {bad_uidl} UIDL values outside RFC 1939 (1-70 chars 0x21-0x7E)"
                    );
                }
                info!(
                    session = id,
                    user = %user.login,
                    messages = entries.len(),
                    octets = entries.iter().map(|e| e.size).sum::<u64>(),
                    "pop3: logged in"
                );
                self.user = Some(user);
                self._lock = Some(guard);
                LoginOutcome::Ok(entries)
            }
            Err(e) => {
                warn!(session = id, user = %user.login, "pop3: opening maildrop failed: {e}");
                LoginOutcome::TempFail
            }
        }
    }
}

/// RFC 1939 §7: a unique-id is 1 to 70 characters in the range 0x21 to 0x7E.
fn uidl_ok(u: &str) -> bool {
    (1..=70).contains(&u.len()) && u.bytes().all(|b| (0x21..=0x7e).contains(&b))
}
