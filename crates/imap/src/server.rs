//! The tokio loop: reads bytes into the framer, hands whole commands to
//! the [`Session`], writes its responses, and runs the exchanges that need
//! more client input (STARTTLS, AUTHENTICATE, IDLE).
//!
//! Memory while idle is kept small: the read buffer shrinks back to 1 KiB,
//! the output buffer is released after large responses, and command
//! handling is boxed so its future does not sit in the idle task.

use std::sync::Arc;
use std::time::Duration;

use outpost_net::auth::sasl::Mechanism;
use outpost_net::{Conn, Session as NetSession};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::codec::framing::{Frame, FrameError, Framer, FramerLimits};
use crate::codec::parse::{parse_command, ParseOptions};
use crate::codec::response::{Code, Continuation, StatusResponse};
use crate::codec::types::Tag;
use crate::session::{Next, Session};
use crate::ImapContext;

const SMALL_READ: usize = 1024;
const BIG_READ: usize = 64 * 1024;
/// Literal size accepted before login (LOGIN with a literal password).
const PRE_AUTH_LITERAL: u64 = 8 * 1024;

enum Ended {
    Logout,
    Closed,
}

/// Serves one IMAP connection until LOGOUT, timeout or disconnect. The
/// caller has done the TLS handshake for `imaps`.
pub async fn serve(conn: Conn, session: NetSession, ctx: Arc<ImapContext>) {
    let id = session.id;
    let peer = session.peer;
    tracing::info!(session = id, %peer, listener = session.listener, tls = conn.is_tls(), "imap: connect");
    // Responses are written whole; Nagle would only add round-trip stalls.
    let _ = match &conn {
        Conn::Plain(tcp) => tcp.set_nodelay(true),
        Conn::Tls(tls) => tls.get_ref().0.set_nodelay(true),
    };
    let r = run(conn, session, ctx).await;
    match r {
        Ok(Ended::Logout) => tracing::info!(session = id, "imap: logout"),
        Ok(Ended::Closed) => tracing::info!(session = id, "imap: disconnect"),
        Err(e) => tracing::info!(session = id, "imap: connection ended: {e}"),
    }
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

async fn run(mut conn: Conn, net: NetSession, ctx: Arc<ImapContext>) -> std::io::Result<Ended> {
    let mut s = Session::new(ctx.clone(), net, conn.is_tls());
    let mut framer = Framer::new(framer_limits(&ctx, false));
    let mut authed_limits = false;
    let mut buf = vec![0u8; SMALL_READ];
    let greeting = StatusResponse::ok(None, format!("{} IMAP ready", ctx.hostname))
        .with_code(Code::Capability(s.capabilities()));
    s.send(greeting);
    loop {
        // Answer every whole command already buffered.
        loop {
            let frame = match framer.poll() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    frame_error(&mut s, e);
                    if s.bad > ctx.limits.max_bad_commands {
                        return bye(&mut conn, &mut s, "Too many bad commands").await;
                    }
                    continue;
                }
            };
            match frame {
                Frame::NeedContinuation { .. } => {
                    s.send(Continuation::Text("Ready for literal data".into()));
                }
                Frame::Command(bytes) => {
                    let cmd = match parse_command(&bytes, &ParseOptions::default()) {
                        Ok(c) => c,
                        Err(e) if matches!(e.code, Some(Code::BadCharset(_))) => {
                            // RFC 3501 6.4.4: an unknown charset is NO [BADCHARSET].
                            s.send(StatusResponse::no(e.tag, e.message).with_code(e.code));
                            continue;
                        }
                        Err(e) => {
                            s.bad += 1;
                            s.send(StatusResponse::bad(e.tag, e.message).with_code(e.code));
                            if s.bad > ctx.limits.max_bad_commands {
                                return bye(&mut conn, &mut s, "Too many bad commands").await;
                            }
                            continue;
                        }
                    };
                    drop(bytes);
                    let bad_before = s.bad;
                    let next = Box::pin(s.handle(cmd, &mut conn)).await?;
                    if s.bad == bad_before {
                        // Only bad commands in a row count.
                        s.bad = 0;
                    }
                    if s.bad > ctx.limits.max_bad_commands {
                        return bye(&mut conn, &mut s, "Too many bad commands").await;
                    }
                    match next {
                        Next::Continue => {}
                        Next::Logout => {
                            flush(&mut conn, &mut s).await?;
                            let _ = conn.shutdown().await;
                            return Ok(Ended::Logout);
                        }
                        Next::StartTls => {
                            flush(&mut conn, &mut s).await?;
                            if framer.buffered() > 0 {
                                // Pipelined past STARTTLS (CVE-2011-0411).
                                return Ok(Ended::Closed);
                            }
                            let acceptor = ctx.tls.clone().expect("checked by the session");
                            conn = tokio::time::timeout(
                                Duration::from_secs(30),
                                conn.into_tls(&acceptor),
                            )
                            .await
                            .map_err(|_| std::io::Error::other("TLS handshake timed out"))??;
                            s.tls = true;
                            framer.clear();
                            tracing::info!(session = s.net.id, "imap: starttls");
                        }
                        Next::Authenticate(tag, mechanism) => {
                            let mut answers = Vec::new();
                            // PLAIN: one empty challenge; LOGIN: "Username:"
                            // and "Password:" (sasl::LOGIN_*_CHALLENGE).
                            let challenges: &[&[u8]] = match mechanism {
                                Mechanism::Plain => &[b""],
                                Mechanism::Login => &[b"Username:", b"Password:"],
                            };
                            for challenge in challenges {
                                s.send(Continuation::Base64(challenge.to_vec()));
                                flush(&mut conn, &mut s).await?;
                                let line = read_line(
                                    &mut conn,
                                    &mut framer,
                                    &mut buf,
                                    ctx.limits.login_timeout,
                                )
                                .await?;
                                let Some(line) = line else {
                                    return Ok(Ended::Closed);
                                };
                                answers.push(String::from_utf8_lossy(&line).into_owned());
                                if line.trim_ascii() == b"*" {
                                    break;
                                }
                            }
                            Box::pin(s.auth_exchange(&tag, mechanism, &answers)).await;
                        }
                        Next::Idle(tag) => {
                            if idle(&mut conn, &mut s, &mut framer, &mut buf, tag).await? {
                                return Ok(Ended::Closed);
                            }
                        }
                    }
                    if !authed_limits && s.user.is_some() {
                        framer.set_limits(framer_limits(&ctx, true));
                        authed_limits = true;
                    }
                }
            }
        }
        flush(&mut conn, &mut s).await?;
        if buf.len() > SMALL_READ && framer.buffered() == 0 {
            buf = vec![0u8; SMALL_READ];
        }
        let wait = if s.user.is_some() {
            ctx.limits.command_timeout
        } else {
            ctx.limits.login_timeout
        };
        let n = match tokio::time::timeout(wait, conn.read(&mut buf)).await {
            Ok(r) => r?,
            Err(_) => return bye(&mut conn, &mut s, "Autologout; idle for too long").await,
        };
        if n == 0 {
            return Ok(Ended::Closed);
        }
        framer.push(&buf[..n]);
        if n == buf.len() && buf.len() < BIG_READ {
            buf = vec![0u8; (buf.len() * 4).min(BIG_READ)];
        }
    }
}

fn frame_error(s: &mut Session, e: FrameError) {
    let tag = e.tag().cloned();
    match e {
        FrameError::LiteralTooBig { .. } => {
            s.bad += 1;
            s.send(StatusResponse::no(tag, e.to_string()).with_code(Code::TooBig));
        }
        _ => s.bad_cmd(tag, &e.to_string()),
    }
}

async fn flush(conn: &mut Conn, s: &mut Session) -> std::io::Result<()> {
    if !s.out.is_empty() {
        conn.write_all(&s.out).await?;
        conn.flush().await?;
        s.out.clear();
    }
    if s.out.capacity() > 16 * 1024 {
        s.out = Vec::new();
    }
    Ok(())
}

async fn bye(conn: &mut Conn, s: &mut Session, text: &str) -> std::io::Result<Ended> {
    tracing::info!(session = s.net.id, "imap: bye: {text}");
    s.send(StatusResponse::bye(text));
    let _ = flush(conn, s).await;
    let _ = conn.shutdown().await;
    Ok(Ended::Closed)
}

/// Reads one plain line (AUTHENTICATE response, IDLE's DONE). `None` on
/// disconnect.
async fn read_line(
    conn: &mut Conn,
    framer: &mut Framer,
    buf: &mut [u8],
    wait: Duration,
) -> std::io::Result<Option<Vec<u8>>> {
    loop {
        match framer.poll_line() {
            Ok(Some(line)) => return Ok(Some(line)),
            Ok(None) => {}
            Err(_) => return Ok(Some(Vec::new())),
        }
        let n = tokio::time::timeout(wait, conn.read(buf))
            .await
            .map_err(|_| std::io::Error::other("timed out waiting for the client"))??;
        if n == 0 {
            return Ok(None);
        }
        framer.push(&buf[..n]);
    }
}

/// IDLE (RFC 2177): report changes as the store announces them until the
/// client sends DONE. Returns true when the connection should close.
async fn idle(
    conn: &mut Conn,
    s: &mut Session,
    framer: &mut Framer,
    buf: &mut Vec<u8>,
    tag: Tag,
) -> std::io::Result<bool> {
    s.send(Continuation::Text("idling".into()));
    s.sync(true).await;
    flush(conn, s).await?;
    if buf.len() > SMALL_READ {
        *buf = vec![0u8; SMALL_READ];
    }
    let deadline = tokio::time::Instant::now() + s.ctx.limits.idle_timeout;
    let mut watch = s.sel.as_ref().map(|sel| sel.watch.clone());
    loop {
        if let Ok(Some(line)) = framer.poll_line() {
            if line.trim_ascii().eq_ignore_ascii_case(b"DONE") {
                s.send(StatusResponse::ok(Some(tag), "IDLE terminated"));
            } else {
                s.bad_cmd(Some(tag), "Expected DONE");
            }
            return Ok(false);
        }
        tokio::select! {
            r = conn.read(buf) => {
                let n = r?;
                if n == 0 {
                    return Ok(true);
                }
                framer.push(&buf[..n]);
            }
            changed = async {
                match watch.as_mut() {
                    Some(w) => w.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            } => {
                if !changed {
                    watch = None;
                }
                // `watch` is a clone: the session's own receiver still sees
                // the change as unseen and syncs.
                s.sync(true).await;
                flush(conn, s).await?;
            }
            _ = tokio::time::sleep_until(deadline) => {
                s.send(StatusResponse::bye("IDLE timed out"));
                flush(conn, s).await?;
                return Ok(true);
            }
        }
    }
}
