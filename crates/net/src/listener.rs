//! What every mail listener shares before its protocol begins: our host
//! name, the TLS acceptor for STARTTLS/STLS, the one [`AuthLayer`], the
//! plaintext-on-loopback rule ([`ListenerContext`]); the per-connection
//! preamble that logs the session and runs the protocol ([`run_session`]);
//! the TLS handshake with a bound on its duration ([`handshake`]); and how a
//! connection over the limits is turned away ([`refuse`]).

use std::future::Future;
use std::io;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio_rustls::TlsAcceptor;
use tracing::info;

use crate::{AuthLayer, Conn, Session};

/// The part of a listener's context that is the same for SMTP, POP3, IMAP,
/// ManageSieve and HTTP. A protocol's context holds one next to its own
/// backend and limits.
#[derive(Clone)]
pub struct ListenerContext {
    /// Our name: greetings, EHLO replies, `Received:` headers.
    pub hostname: String,
    /// For STARTTLS/STLS on a plain listener. `None`: the upgrade is not
    /// offered (and logins are refused on plain connections unless
    /// [`Self::allow_plaintext_on_loopback`] applies). Implicit TLS is done
    /// before the protocol runs, which then sees `conn.is_tls()`.
    pub tls: Option<TlsAcceptor>,
    /// Every login goes through it: the directory check behind the shared
    /// failed-login throttle.
    pub auth: AuthLayer,
    /// Accept logins on unencrypted connections from loopback addresses (a
    /// local webmail, fetchmail or script). Default `false`: logins need
    /// TLS everywhere.
    pub allow_plaintext_on_loopback: bool,
}

impl ListenerContext {
    /// A context with the safe default: no plaintext logins.
    pub fn new(
        hostname: impl Into<String>,
        tls: Option<TlsAcceptor>,
        auth: AuthLayer,
    ) -> ListenerContext {
        ListenerContext {
            hostname: hostname.into(),
            tls,
            auth,
            allow_plaintext_on_loopback: false,
        }
    }

    /// STARTTLS/STLS can be offered.
    pub fn tls_available(&self) -> bool {
        self.tls.is_some()
    }

    /// Logins may happen without TLS in this session: the context allows it
    /// and the client is on loopback.
    pub fn plaintext_login_allowed(&self, session: &Session) -> bool {
        self.allow_plaintext_on_loopback && session.is_loopback()
    }

    /// Upgrades `conn` in place after the protocol said "go ahead"
    /// (STARTTLS, STLS), within `timeout`. On failure the reason is logged
    /// and returned as the session's end reason.
    pub async fn start_tls(
        &self,
        conn: Conn,
        session: &Session,
        protocol: &str,
        timeout: Duration,
    ) -> Result<Conn, &'static str> {
        let Some(acceptor) = &self.tls else {
            return Err("TLS upgrade without TLS configured");
        };
        handshake(conn, acceptor, session, protocol, timeout).await
    }
}

/// The TLS handshake on a plain connection, bounded by `timeout` (a client
/// that connects and sends nothing must not hold the task forever).
pub async fn handshake(
    conn: Conn,
    acceptor: &TlsAcceptor,
    session: &Session,
    protocol: &str,
    timeout: Duration,
) -> Result<Conn, &'static str> {
    match tokio::time::timeout(timeout, conn.into_tls(acceptor)).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => {
            info!(
                session = session.id,
                "{protocol}: TLS handshake failed: {e}"
            );
            Err("TLS handshake failed")
        }
        Err(_) => Err("TLS handshake timed out"),
    }
}

/// The per-connection preamble every protocol shares: one log line when the
/// client connects (listener, peer, TLS), Nagle off (replies are written in
/// one piece per flush and must not wait for the client's delayed ACK), the
/// protocol's own loop, and one log line saying how the session ended.
pub async fn run_session<F, Fut>(protocol: &'static str, conn: Conn, session: &Session, run: F)
where
    F: FnOnce(Conn) -> Fut,
    Fut: Future<Output = io::Result<&'static str>>,
{
    let id = session.id;
    info!(
        session = id,
        listener = session.listener,
        peer = %session.peer,
        tls = conn.is_tls(),
        "{protocol}: connected"
    );
    let _ = match &conn {
        Conn::Plain(tcp) => tcp.set_nodelay(true),
        Conn::Tls(tls) => tls.get_ref().0.set_nodelay(true),
    };
    match run(conn).await {
        Ok(end) => info!(session = id, "{protocol}: disconnected ({end})"),
        Err(e) => info!(
            session = id,
            "{protocol}: disconnected (connection error: {e})"
        ),
    }
}

/// How long a refused client on an implicit-TLS listener gets to finish
/// the handshake before it is simply closed.
pub const REFUSAL_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Turns away a connection the limits did not admit, in the protocol's own
/// words (`message`, e.g. `421 4.7.0 Too many connections...`). On an
/// implicit-TLS listener (`tls` given) the message goes inside TLS after a
/// handshake bounded by [`REFUSAL_HANDSHAKE_TIMEOUT`]; a client that does
/// not finish it is closed without a word. Plaintext there would only make
/// the client report a TLS error ("wrong version number") instead of the
/// reason.
pub async fn refuse(conn: Conn, tls: Option<&TlsAcceptor>, message: &[u8]) {
    let conn = match tls {
        Some(acceptor) => {
            match tokio::time::timeout(REFUSAL_HANDSHAKE_TIMEOUT, conn.into_tls(acceptor)).await {
                Ok(Ok(c)) => c,
                _ => return,
            }
        }
        None => conn,
    };
    let mut conn = conn;
    let write = async {
        conn.write_all(message).await?;
        conn.flush().await?;
        conn.shutdown().await
    };
    let _ = tokio::time::timeout(REFUSAL_HANDSHAKE_TIMEOUT, write).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AuthThrottle, AuthUser, Authenticator, TempFail, ThrottleConfig};
    use std::sync::Arc;

    struct Nobody;

    #[async_trait::async_trait]
    impl Authenticator for Nobody {
        async fn authenticate(&self, _: &str, _: &str) -> Result<Option<AuthUser>, TempFail> {
            Ok(None)
        }
    }

    fn session(peer: &str) -> Session {
        Session::new(
            peer.parse().unwrap(),
            "127.0.0.1:25".parse().unwrap(),
            "smtp",
        )
    }

    #[test]
    fn plaintext_only_on_loopback_and_only_when_allowed() {
        let auth = AuthLayer::new(
            Arc::new(Nobody),
            AuthThrottle::new(ThrottleConfig::default()),
        );
        let mut ctx = ListenerContext::new("mx.example.org", None, auth);
        assert!(!ctx.tls_available());
        assert!(!ctx.plaintext_login_allowed(&session("127.0.0.1:4000")));
        ctx.allow_plaintext_on_loopback = true;
        assert!(ctx.plaintext_login_allowed(&session("127.0.0.1:4000")));
        assert!(ctx.plaintext_login_allowed(&session("[::1]:4000")));
        assert!(!ctx.plaintext_login_allowed(&session("192.0.2.1:4000")));
    }
}
