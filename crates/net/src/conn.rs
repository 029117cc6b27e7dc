use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// A client connection: plain TCP, or TLS (implicit, or after STARTTLS).
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Conn {
    pub fn is_tls(&self) -> bool {
        matches!(self, Conn::Tls(_))
    }

    /// Performs the TLS handshake on a plain connection (implicit TLS at
    /// accept time, or STARTTLS/STLS once the protocol said "go ahead").
    pub async fn into_tls(self, acceptor: &TlsAcceptor) -> io::Result<Conn> {
        match self {
            Conn::Plain(tcp) => Ok(Conn::Tls(Box::new(acceptor.accept(tcp).await?))),
            Conn::Tls(_) => Err(io::Error::other("connection is already TLS")),
        }
    }

    /// Protocol version and cipher suite, e.g. "TLSv1.3 TLS13_AES_256_GCM_SHA384",
    /// for Received: headers and logs. `None` for plain connections.
    pub fn tls_description(&self) -> Option<String> {
        match self {
            Conn::Plain(_) => None,
            Conn::Tls(tls) => {
                let (_, state) = tls.get_ref();
                let version = state
                    .protocol_version()
                    .and_then(|v| v.as_str())
                    .unwrap_or("TLS")
                    .replace("TLSv1_", "TLSv1.");
                let cipher = state
                    .negotiated_cipher_suite()
                    .and_then(|c| c.suite().as_str())
                    .unwrap_or("unknown");
                Some(format!("{version} {cipher}"))
            }
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }
    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Plain(s) => s.is_write_vectored(),
            Conn::Tls(s) => s.is_write_vectored(),
        }
    }
}

static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

/// Who is on the other end of a connection, for logs and policy.
#[derive(Clone, Debug)]
pub struct Session {
    /// Process-unique id that every log line of this session carries.
    pub id: u64,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// The listener's name from `[listen]` ("smtp", "imaps", ...).
    pub listener: &'static str,
}

impl Session {
    pub fn new(peer: SocketAddr, local: SocketAddr, listener: &'static str) -> Session {
        Session {
            id: NEXT_SESSION.fetch_add(1, Ordering::Relaxed),
            peer,
            local,
            listener,
        }
    }

    /// True when the client is on the loopback interface (where a config may
    /// allow plaintext logins).
    pub fn is_loopback(&self) -> bool {
        self.peer.ip().is_loopback()
    }
}
