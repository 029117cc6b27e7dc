//! The tokio loop: moves bytes between the socket and the sans-I/O
//! [`Connection`], writes its output, and waits where it says (client
//! input with a timeout, the TLS handshake, IDLE's mailbox watch).
//!
//! Memory while idle is kept small: the read buffer shrinks back to 1 KiB,
//! the output buffer is released after large responses, and command
//! handling is boxed so its future does not sit in the idle task.

use std::sync::Arc;
use std::time::Duration;

use outpost_net::{Conn, Session as NetSession};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::connection::{Connection, Step};
use crate::ImapContext;

const SMALL_READ: usize = 1024;
const BIG_READ: usize = 64 * 1024;

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

async fn run(mut conn: Conn, net: NetSession, ctx: Arc<ImapContext>) -> std::io::Result<Ended> {
    let tls = conn.is_tls();
    let mut c = Connection::new(ctx, net, tls);
    let mut buf = vec![0u8; SMALL_READ];
    // Set when IDLE's watch reported its sender gone, so it is not polled
    // again until IDLE ends.
    let mut watch_gone = false;
    // IDLE's limit runs from when it began, whatever the mailbox does.
    let mut idle_deadline: Option<tokio::time::Instant> = None;
    loop {
        let step = c.step().await;
        flush(&mut conn, &mut c).await?;
        match step {
            Step::Flush => {}
            Step::Close { logout } => {
                let _ = conn.shutdown().await;
                return Ok(if logout { Ended::Logout } else { Ended::Closed });
            }
            Step::StartTls => {
                let acceptor = c.tls_acceptor().expect("checked by the session");
                conn = tokio::time::timeout(Duration::from_secs(30), conn.into_tls(&acceptor))
                    .await
                    .map_err(|_| std::io::Error::other("TLS handshake timed out"))??;
                c.tls_started();
            }
            Step::NeedInput { timeout } => {
                watch_gone = false;
                idle_deadline = None;
                if buf.len() > SMALL_READ && c.buffered() == 0 {
                    buf = vec![0u8; SMALL_READ];
                }
                let n = match tokio::time::timeout(timeout, conn.read(&mut buf)).await {
                    Ok(r) => r?,
                    Err(_) => return timed_out(&mut conn, &mut c).await,
                };
                if n == 0 {
                    return Ok(Ended::Closed);
                }
                c.push(&buf[..n]);
                if n == buf.len() && buf.len() < BIG_READ {
                    buf = vec![0u8; (buf.len() * 4).min(BIG_READ)];
                }
            }
            Step::Idle { watch, timeout } => {
                if buf.len() > SMALL_READ {
                    buf = vec![0u8; SMALL_READ];
                }
                let deadline =
                    *idle_deadline.get_or_insert_with(|| tokio::time::Instant::now() + timeout);
                let mut watch = watch.filter(|_| !watch_gone);
                tokio::select! {
                    r = conn.read(&mut buf) => {
                        let n = r?;
                        if n == 0 {
                            return Ok(Ended::Closed);
                        }
                        c.push(&buf[..n]);
                    }
                    changed = async {
                        match watch.as_mut() {
                            Some(w) => w.changed().await.is_ok(),
                            None => std::future::pending().await,
                        }
                    } => {
                        watch_gone = !changed;
                        // `watch` is a clone: the session's own receiver
                        // still sees the change as unseen and syncs.
                        c.mailbox_changed().await;
                    }
                    _ = tokio::time::sleep_until(deadline) => {
                        return timed_out(&mut conn, &mut c).await;
                    }
                }
            }
        }
    }
}

async fn timed_out(conn: &mut Conn, c: &mut Connection) -> std::io::Result<Ended> {
    c.timed_out();
    let _ = flush(conn, c).await;
    let _ = conn.shutdown().await;
    Ok(Ended::Closed)
}

async fn flush(conn: &mut Conn, c: &mut Connection) -> std::io::Result<()> {
    let out = c.output();
    if !out.is_empty() {
        conn.write_all(out).await?;
        conn.flush().await?;
        out.clear();
    }
    if out.capacity() > 16 * 1024 {
        *out = Vec::new();
    }
    Ok(())
}
