//! A real `serve` on 127.0.0.1, an in-memory backend, and a tiny SMTP
//! client that makes each exchange one line in a test.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use outpost_net::{
    AuthLayer, AuthThrottle, Authenticator, Conn, ListenerContext, Session, ThrottleConfig,
};
use outpost_smtp::{
    serve, AuthUser, DeliverError, Envelope, Rcpt, Role, SmtpBackend, SmtpContext, TempFail,
};
use outpost_testkit::tls;
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

// ---------------------------------------------------------------------------
// Backend

/// Hosted domain: example.org, with users alice (password "secret", owns
/// alice@ and alice.smith@) and bob ("hunter2", owns bob@), plus the
/// addresses carol@ and team@ that exist for delivery only.
#[derive(Default)]
pub struct FakeBackend {
    pub delivered: Mutex<Vec<(Envelope, Vec<u8>)>>,
    pub queued: Mutex<Vec<(Envelope, Vec<u8>)>>,
    /// Deliveries to these addresses fail with the given error.
    pub failing: Mutex<HashMap<String, DeliverError>>,
    pub auth_calls: AtomicUsize,
    /// The inbound checks take this long (a stalled DNS).
    pub check_delay: Mutex<Option<std::time::Duration>>,
}

impl FakeBackend {
    pub fn new() -> Arc<FakeBackend> {
        Arc::new(FakeBackend::default())
    }

    pub fn delivered(&self) -> Vec<(Envelope, String)> {
        self.delivered
            .lock()
            .unwrap()
            .iter()
            .map(|(e, m)| (e.clone(), String::from_utf8_lossy(m).into_owned()))
            .collect()
    }

    pub fn queued(&self) -> Vec<(Envelope, String)> {
        self.queued
            .lock()
            .unwrap()
            .iter()
            .map(|(e, m)| (e.clone(), String::from_utf8_lossy(m).into_owned()))
            .collect()
    }

    pub fn fail(&self, address: &str, e: DeliverError) {
        self.failing.lock().unwrap().insert(address.into(), e);
    }
}

fn split(address: &str) -> (String, String) {
    let lower = address.to_ascii_lowercase();
    match lower.rsplit_once('@') {
        Some((l, d)) => (l.to_string(), d.to_string()),
        None => (lower, String::new()),
    }
}

#[async_trait]
impl Authenticator for FakeBackend {
    async fn authenticate(
        &self,
        login: &str,
        password: &str,
    ) -> Result<Option<AuthUser>, TempFail> {
        self.auth_calls.fetch_add(1, Ordering::SeqCst);
        let user = |principal_id, login: &str| AuthUser {
            principal_id,
            login: login.into(),
            quota_bytes: 0,
        };
        Ok(match (login, password) {
            ("alice", "secret") => Some(user(1, "alice")),
            ("bob", "hunter2") => Some(user(2, "bob")),
            _ => None,
        })
    }
}

#[async_trait]
impl SmtpBackend for FakeBackend {
    async fn may_send_as(&self, user: &AuthUser, address: &str) -> Result<bool, TempFail> {
        let (local, domain) = split(address);
        Ok(domain == "example.org"
            && match user.principal_id {
                1 => local == "alice" || local == "alice.smith",
                2 => local == "bob",
                _ => false,
            })
    }

    async fn resolve_recipient(&self, address: &str) -> Result<Rcpt, TempFail> {
        let (local, domain) = split(address);
        if domain != "example.org" {
            return Ok(Rcpt::Remote);
        }
        Ok(match local.as_str() {
            "alice" | "alice.smith" | "bob" | "carol" | "team" | "full" => Rcpt::Local,
            "ldap-down" => return Err(TempFail("directory unreachable".into())),
            _ => Rcpt::UnknownLocal,
        })
    }

    async fn deliver(&self, envelope: &Envelope, message: Bytes) -> Vec<Result<(), DeliverError>> {
        let failing = self.failing.lock().unwrap().clone();
        let results: Vec<_> = envelope
            .recipients
            .iter()
            .map(|r| match failing.get(&r.address) {
                Some(e) => Err(e.clone()),
                None => Ok(()),
            })
            .collect();
        let mut ok = envelope.clone();
        ok.recipients = envelope
            .recipients
            .iter()
            .zip(&results)
            .filter(|(_, r)| r.is_ok())
            .map(|(r, _)| r.clone())
            .collect();
        if !ok.recipients.is_empty() {
            self.delivered.lock().unwrap().push((ok, message.to_vec()));
        }
        results
    }

    async fn enqueue(&self, envelope: &Envelope, message: Bytes) -> Result<(), DeliverError> {
        self.queued
            .lock()
            .unwrap()
            .push((envelope.clone(), message.to_vec()));
        Ok(())
    }

    async fn check_inbound(
        &self,
        _envelope: &Envelope,
        _message: &[u8],
    ) -> Result<outpost_smtp::Inbound, DeliverError> {
        let delay = *self.check_delay.lock().unwrap();
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        Ok(outpost_smtp::Inbound::default())
    }
}

// ---------------------------------------------------------------------------
// Server

pub struct TestServer {
    pub addr: SocketAddr,
    pub backend: Arc<FakeBackend>,
    /// Sessions that have ended.
    pub finished: Arc<AtomicUsize>,
    pub cert: CertificateDer<'static>,
}

pub struct Setup {
    pub role: Role,
    pub implicit_tls: bool,
    pub starttls: bool,
    pub tweak: Box<dyn FnOnce(&mut SmtpContext) + Send>,
}

impl Setup {
    pub fn new(role: Role) -> Setup {
        Setup {
            role,
            implicit_tls: false,
            starttls: true,
            tweak: Box::new(|_| {}),
        }
    }
    pub fn implicit_tls(mut self) -> Setup {
        self.implicit_tls = true;
        self
    }
    pub fn no_tls(mut self) -> Setup {
        self.starttls = false;
        self
    }
    pub fn with(mut self, f: impl FnOnce(&mut SmtpContext) + Send + 'static) -> Setup {
        self.tweak = Box::new(f);
        self
    }

    pub async fn start(self) -> TestServer {
        let backend = FakeBackend::new();
        let (acceptor, cert) = tls::self_signed("mx.example.org");
        let auth = AuthLayer::new(
            backend.clone(),
            AuthThrottle::new(ThrottleConfig::default()),
        );
        let listener = ListenerContext::new(
            "mx.example.org",
            (self.starttls || self.implicit_tls).then(|| acceptor.clone()),
            auth,
        );
        let mut ctx = SmtpContext::new(self.role, listener, backend.clone());
        (self.tweak)(&mut ctx);
        let ctx = Arc::new(ctx);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let finished = Arc::new(AtomicUsize::new(0));
        let done = finished.clone();
        let implicit = self.implicit_tls;
        tokio::spawn(async move {
            loop {
                let Ok((tcp, peer)) = listener.accept().await else {
                    return;
                };
                let ctx = ctx.clone();
                let acceptor = acceptor.clone();
                let done = done.clone();
                tokio::spawn(async move {
                    let local = tcp.local_addr().unwrap();
                    let mut conn = Conn::Plain(tcp);
                    if implicit {
                        conn = match conn.into_tls(&acceptor).await {
                            Ok(c) => c,
                            Err(_) => return,
                        };
                    }
                    serve(conn, Session::new(peer, local, "smtp"), ctx).await;
                    done.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        TestServer {
            addr,
            backend,
            finished,
            cert,
        }
    }
}

impl TestServer {
    pub async fn connect(&self) -> Client {
        let c = Client::plain(self.addr).await;
        c.expect_greeting().await
    }

    pub async fn connect_tls(&self) -> Client {
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        let tls = tls_connect(tcp, self.cert.clone()).await;
        let c = Client {
            io: BufReader::new(Box::new(tls)),
            cert: self.cert.clone(),
        };
        c.expect_greeting().await
    }

    /// Waits until `n` sessions have ended.
    pub async fn wait_finished(&self, n: usize) {
        for _ in 0..200 {
            if self.finished.load(Ordering::SeqCst) >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("sessions did not end");
    }
}

// ---------------------------------------------------------------------------
// TLS

async fn tls_connect<S>(
    stream: S,
    cert: CertificateDer<'static>,
) -> tokio_rustls::client::TlsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    tls::connect(stream, "mx.example.org", cert).await
}

// ---------------------------------------------------------------------------
// Client

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub struct Client {
    io: BufReader<Box<dyn Io>>,
    cert: CertificateDer<'static>,
}

const WAIT: Duration = Duration::from_secs(10);

impl Client {
    async fn plain(addr: SocketAddr) -> Client {
        let tcp = TcpStream::connect(addr).await.unwrap();
        Client {
            io: BufReader::new(Box::new(tcp)),
            cert: CertificateDer::from(Vec::new()),
        }
    }

    async fn expect_greeting(mut self) -> Client {
        let g = self.reply().await;
        assert!(g.starts_with("220 mx.example.org "), "greeting: {g}");
        self
    }

    /// Sends raw bytes.
    pub async fn send(&mut self, data: &[u8]) {
        self.io.get_mut().write_all(data).await.unwrap();
        self.io.get_mut().flush().await.unwrap();
    }

    /// One reply (all its lines), CRLFs kept. Empty if the server closed.
    pub async fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(WAIT, self.io.read_line(&mut line))
                .await
                .expect("server did not answer in time")
                .unwrap_or(0);
            if n == 0 {
                return all;
            }
            assert!(line.ends_with("\r\n"), "reply line without CRLF: {line:?}");
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    /// Sends one command line and returns the reply.
    pub async fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }

    /// Sends a command and asserts the reply starts with `prefix`
    /// (e.g. "250 2.1.5").
    pub async fn ok(&mut self, line: &str, prefix: &str) -> String {
        let r = self.cmd(line).await;
        assert!(
            r.starts_with(prefix),
            "{line:?}: expected {prefix:?}, got {r:?}"
        );
        r
    }

    /// True once the server has closed the connection.
    pub async fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(
            tokio::time::timeout(WAIT, self.io.read(&mut b)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }

    /// STARTTLS and the handshake; the caller sends EHLO again.
    pub async fn starttls(mut self, cert: &CertificateDer<'static>) -> Client {
        self.ok("STARTTLS", "220 2.0.0").await;
        self.handshake(cert).await
    }

    /// The TLS handshake, once the server said 220 to STARTTLS.
    pub async fn handshake(self, cert: &CertificateDer<'static>) -> Client {
        assert!(
            self.io.buffer().is_empty(),
            "data after the 220 STARTTLS reply"
        );
        let inner = self.io.into_inner();
        let tls = tls_connect(inner, cert.clone()).await;
        Client {
            io: BufReader::new(Box::new(tls)),
            cert: cert.clone(),
        }
    }

    /// EHLO, STARTTLS, EHLO, AUTH PLAIN as `login`.
    pub async fn login_tls(
        mut self,
        cert: &CertificateDer<'static>,
        login: &str,
        password: &str,
    ) -> Client {
        self.ok("EHLO client.example", "250").await;
        let mut c = self.starttls(cert).await;
        c.ok("EHLO client.example", "250").await;
        c.ok(
            &format!("AUTH PLAIN {}", plain(login, password)),
            "235 2.7.0",
        )
        .await;
        c
    }
}

/// base64 of "\0login\0password".
pub fn plain(login: &str, password: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("\0{login}\0{password}"))
}
