//! The thin async loop: reads from the connection, feeds the
//! [`Machine`], carries out its effects against the backend, writes replies.

use std::io;
use std::sync::Arc;

use outpost_net::{run_session, Conn, Session};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::{info, warn};

use crate::backend::DeliverError;
use crate::session::{Answer, Delivery, Effect, Machine, SessionConfig, Step};
use crate::SmtpContext;

/// Output is sent once this much has piled up, even if more pipelined
/// commands are waiting (a client that pipelines without reading must not
/// grow our buffer without bound).
const FLUSH_AT: usize = 16 * 1024;

/// Read buffer size.
const READ_CHUNK: usize = 64 * 1024;

/// Runs one SMTP, submission or LMTP session on `conn` until the client
/// quits, the connection drops, a timeout passes or the session is closed
/// for misbehaving. Implicit TLS (465) is the caller's job: hand over an
/// already-TLS `conn`. Never panics on client input; every outcome is
/// logged with the session id.
pub async fn serve(conn: Conn, session: Session, ctx: Arc<SmtpContext>) {
    run_session("smtp", conn, &session, |conn| run(conn, &session, &ctx)).await
}

async fn run(mut conn: Conn, session: &Session, ctx: &SmtpContext) -> io::Result<&'static str> {
    let limits = &ctx.limits;
    let mut m = Machine::new(SessionConfig {
        role: ctx.role,
        hostname: ctx.listener.hostname.clone(),
        limits: limits.clone(),
        session_id: session.id,
        peer_ip: session.peer.ip(),
        tls_available: ctx.listener.tls_available(),
        tls: conn.tls_description(),
        plaintext_auth_allowed: ctx.listener.plaintext_login_allowed(session),
    });
    m.greeting();
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let step = m.poll();
        match step {
            Step::NeedInput => {
                flush(&mut conn, &mut m, ctx).await?;
                match tokio::time::timeout(m.read_timeout(), conn.read(&mut buf)).await {
                    Err(_) => {
                        info!(
                            session = session.id,
                            in_message = m.in_message(),
                            "smtp: timeout"
                        );
                        m.timed_out();
                    }
                    Ok(Ok(0)) => return Ok(m.end_reason()),
                    Ok(Ok(n)) => m.feed(&buf[..n]),
                    Ok(Err(e)) => {
                        if m.in_message() {
                            info!(
                                session = session.id,
                                "smtp: connection lost mid-message, message discarded"
                            );
                        }
                        return Err(e);
                    }
                }
            }
            Step::Close => {
                let _ = flush(&mut conn, &mut m, ctx).await;
                let _ = tokio::time::timeout(limits.command_timeout, conn.shutdown()).await;
                return Ok(m.end_reason());
            }
            Step::Effect(Effect::StartTls) => {
                flush(&mut conn, &mut m, ctx).await?;
                let upgraded = ctx
                    .listener
                    .start_tls(conn, session, "smtp", limits.command_timeout)
                    .await;
                conn = match upgraded {
                    Ok(c) => c,
                    Err(why) => return Ok(why),
                };
                let description = conn.tls_description().unwrap_or_else(|| "TLS".into());
                m.answer(Answer::TlsStarted { description });
            }
            Step::Effect(Effect::Authenticate { login, password }) => {
                let outcome = ctx
                    .listener
                    .auth
                    .login(session.peer.ip(), &login, &password.0)
                    .await;
                m.answer(Answer::Auth(outcome));
            }
            Step::Effect(Effect::MaySendAs { user, address }) => {
                let r = ctx.backend.may_send_as(&user, &address).await;
                m.answer(Answer::MaySendAs(r));
            }
            Step::Effect(Effect::ResolveRecipient { address }) => {
                let r = ctx.backend.resolve_recipient(&address).await;
                m.answer(Answer::Recipient(r));
            }
            Step::Effect(Effect::Deliver(delivery)) => {
                let answer = deliver(ctx, *delivery).await;
                m.answer(answer);
            }
        }
        if m.output_len() >= FLUSH_AT {
            flush(&mut conn, &mut m, ctx).await?;
        }
    }
}

/// Sends the machine's output, bounded by the command timeout (a client
/// that does not read its replies is dropped).
async fn flush(conn: &mut Conn, m: &mut Machine, ctx: &SmtpContext) -> io::Result<()> {
    let out = m.take_output();
    if out.is_empty() {
        return Ok(());
    }
    let write = async {
        conn.write_all(&out).await?;
        conn.flush().await
    };
    match tokio::time::timeout(ctx.limits.command_timeout, write).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "client does not read its replies",
        )),
    }
}

/// Local delivery, then the outbound queue. Both are durable before they
/// return `Ok`.
async fn deliver(ctx: &SmtpContext, mut d: Delivery) -> Answer {
    // Mail from other servers is checked (SPF/DKIM/DMARC) before delivery.
    if ctx.role == crate::Role::Mx {
        if let Some(env) = d.local.as_mut().filter(|e| e.auth.is_none()) {
            let bound = ctx.limits.check_timeout;
            let checked = tokio::time::timeout(bound, ctx.backend.check_inbound(env, &d.message))
                .await
                .unwrap_or_else(|_| {
                    Err(DeliverError::Unresolved(format!(
                        "inbound checks unfinished after {} s",
                        bound.as_secs_f32()
                    )))
                });
            match checked {
                Ok(verdict) => {
                    env.junk = verdict.junk;
                    let prepend = verdict.prepend;
                    if !prepend.is_empty() {
                        let mut m = Vec::with_capacity(prepend.len() + d.message.len());
                        // Keep our Received: first; the results go right
                        // below it.
                        let split = received_end(&d.message);
                        m.extend_from_slice(&d.message[..split]);
                        m.extend_from_slice(&prepend);
                        m.extend_from_slice(&d.message[split..]);
                        d.message = bytes::Bytes::from(m);
                    }
                }
                Err(e) => {
                    let n = env.recipients.len();
                    return Answer::Delivered {
                        local: vec![Err(e); n],
                        remote: None,
                    };
                }
            }
        }
    }
    let local = match &d.local {
        Some(env) => {
            let results = ctx.backend.deliver(env, d.message.clone()).await;
            if results.len() != env.recipients.len() {
                warn!(
                    session = env.session_id,
                    expected = env.recipients.len(),
                    got = results.len(),
                    "smtp: backend returned the wrong number of delivery results"
                );
            }
            results
        }
        None => Vec::new(),
    };
    let remote = match &d.remote {
        Some(env) => Some(ctx.backend.enqueue(env, d.message.clone()).await),
        None => None::<Result<(), DeliverError>>,
    };
    Answer::Delivered { local, remote }
}

/// End of the first header field (our Received:, with its continuation lines).
fn received_end(m: &[u8]) -> usize {
    let mut i = 0;
    while let Some(p) = m[i..].iter().position(|&b| b == b'\n') {
        i += p + 1;
        if !matches!(m.get(i), Some(b' ') | Some(b'\t')) {
            return i;
        }
    }
    0
}
