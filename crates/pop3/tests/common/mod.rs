//! Test harness: an in-memory backend, a real server on 127.0.0.1:0, and a
//! tiny POP3 client that makes each exchange one line of test code.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use outpost_net::{
    AuthLayer, AuthThrottle, AuthUser, Authenticator, Conn, ListenerContext, Session,
    ThrottleConfig, TlsAcceptor,
};
use outpost_pop3::{serve, wire_size, MaildropEntry, Pop3Backend, Pop3Context, TempFail};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

// ---------------------------------------------------------------------------
// Backend

#[derive(Default)]
pub struct FakeBackend {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// login → (password, principal id)
    accounts: HashMap<String, (String, i64)>,
    /// principal id → messages (id, raw)
    mail: HashMap<i64, Vec<(u64, Vec<u8>)>>,
    next_principal: i64,
    next_id: u64,
    /// Every expunge call: (maildrop lock key, ids)
    pub expunges: Vec<(String, Vec<u64>)>,
    /// Logins whose maildrop cannot be opened.
    broken: Vec<String>,
}

impl FakeBackend {
    pub fn new() -> Arc<FakeBackend> {
        Arc::new(FakeBackend::default())
    }

    pub fn add_user(&self, login: &str, password: &str) {
        let mut st = self.inner.lock().unwrap();
        st.next_principal += 1;
        let id = st.next_principal;
        st.accounts.insert(login.into(), (password.into(), id));
        st.mail.entry(id).or_default();
    }

    /// Adds an alias login for an existing user (same id, same maildrop).
    pub fn add_alias(&self, alias: &str, login: &str) {
        let mut st = self.inner.lock().unwrap();
        let acct = st.accounts[login].clone();
        st.accounts.insert(alias.into(), acct);
    }

    pub fn deliver(&self, login: &str, raw: &[u8]) -> u64 {
        let mut st = self.inner.lock().unwrap();
        st.next_id += 1;
        let id = st.next_id;
        let uid = st.accounts[login].1;
        st.mail.get_mut(&uid).unwrap().push((id, raw.to_vec()));
        id
    }

    /// Removes a message behind POP3's back (as an IMAP session would).
    pub fn remove(&self, login: &str, id: u64) {
        let mut st = self.inner.lock().unwrap();
        let uid = st.accounts[login].1;
        st.mail.get_mut(&uid).unwrap().retain(|(i, _)| *i != id);
    }

    pub fn count(&self, login: &str) -> usize {
        let st = self.inner.lock().unwrap();
        st.mail[&st.accounts[login].1].len()
    }

    pub fn expunges(&self) -> Vec<(String, Vec<u64>)> {
        self.inner.lock().unwrap().expunges.clone()
    }

    pub fn break_maildrop(&self, login: &str) {
        self.inner.lock().unwrap().broken.push(login.into());
    }
}

#[async_trait::async_trait]
impl Authenticator for FakeBackend {
    async fn authenticate(
        &self,
        login: &str,
        password: &str,
    ) -> Result<Option<AuthUser>, TempFail> {
        if login == "tempfail" {
            return Err(TempFail("directory down".into()));
        }
        let st = self.inner.lock().unwrap();
        Ok(st
            .accounts
            .get(login)
            .filter(|(p, _)| p == password)
            .map(|(_, id)| AuthUser {
                principal_id: *id,
                login: login.into(),
                quota_bytes: 0,
            }))
    }
}

#[async_trait::async_trait]
impl Pop3Backend for FakeBackend {
    async fn open_maildrop(&self, user: &AuthUser) -> Result<Vec<MaildropEntry>, TempFail> {
        let st = self.inner.lock().unwrap();
        if st.broken.contains(&user.login) {
            return Err(TempFail("store down".into()));
        }
        Ok(st.mail[&user.principal_id]
            .iter()
            .map(|(id, raw)| MaildropEntry {
                id: *id,
                size: wire_size(raw),
                uidl: format!("0000002a{id:08x}"),
            })
            .collect())
    }

    async fn read(&self, user: &AuthUser, id: u64) -> Result<Option<Vec<u8>>, TempFail> {
        let st = self.inner.lock().unwrap();
        Ok(st.mail[&user.principal_id]
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, raw)| raw.clone()))
    }

    async fn expunge(&self, user: &AuthUser, ids: &[u64]) -> Result<(), TempFail> {
        let mut st = self.inner.lock().unwrap();
        st.mail
            .get_mut(&user.principal_id)
            .unwrap()
            .retain(|(i, _)| !ids.contains(i));
        st.expunges
            .push((user.principal_id.to_string(), ids.to_vec()));
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Server

pub struct TestServer {
    pub addr: SocketAddr,
    pub ctx: Arc<Pop3Context>,
}

/// A context with plaintext allowed on loopback (the tests' client is on
/// loopback) and a throttle that never gets in the way.
pub fn context(backend: Arc<FakeBackend>) -> Pop3Context {
    let auth = AuthLayer::new(
        backend.clone(),
        AuthThrottle::new(ThrottleConfig {
            slow_after: 1000,
            block_after: 1000,
            ..Default::default()
        }),
    );
    let mut listener = ListenerContext::new("pop.test", None, auth);
    listener.allow_plaintext_on_loopback = true;
    Pop3Context::new(listener, backend)
}

/// The maildrop lock keys (principal ids) of the fixture's users.
pub const ALICE: &str = "1";
pub const BOB: &str = "2";

/// Serves `ctx` on 127.0.0.1:0. With `implicit_tls`, every connection is
/// TLS from the start (pop3s) using `ctx.tls`.
pub async fn start(ctx: Pop3Context, implicit_tls: bool) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let ctx = Arc::new(ctx);
    let c = ctx.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = listener.accept().await.unwrap();
            let ctx = c.clone();
            tokio::spawn(async move {
                let session = Session::new(peer, addr, if implicit_tls { "pop3s" } else { "pop3" });
                let mut conn = Conn::Plain(tcp);
                if implicit_tls {
                    conn = match conn.into_tls(ctx.listener.tls.as_ref().unwrap()).await {
                        Ok(c) => c,
                        Err(_) => return,
                    };
                }
                serve(conn, session, ctx).await;
            });
        }
    });
    TestServer { addr, ctx }
}

/// A server with the standard fixture: alice (password "secret") with
/// three messages, bob with none.
pub async fn standard() -> (TestServer, Arc<FakeBackend>) {
    let b = fixture();
    (start(context(b.clone()), false).await, b)
}

pub const MSG1: &[u8] = b"From: a@example.org\r\nSubject: one\r\n\r\nHello\r\n";
pub const MSG2: &[u8] = b"From: b@example.org\nSubject: two\n\nline 1\nline 2\nline 3\nline 4\n";
pub const MSG3: &[u8] = b"Subject: dots\n\n.\n..two\n.hidden\nlone\rcr\r\nno final newline";

pub fn fixture() -> Arc<FakeBackend> {
    let b = FakeBackend::new();
    b.add_user("alice", "secret");
    b.add_user("bob", "hunter2");
    b.deliver("alice", MSG1);
    b.deliver("alice", MSG2);
    b.deliver("alice", MSG3);
    b
}

// ---------------------------------------------------------------------------
// TLS

pub fn tls_acceptor() -> TlsAcceptor {
    outpost_testkit::tls::self_signed("localhost").0
}

/// The client side of the handshake. The tests look at POP3, not at the
/// certificate, so any certificate is accepted.
async fn tls_connect<S>(stream: S) -> tokio_rustls::client::TlsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let cfg = outpost_net::RelaxedVerifier::client_config(outpost_net::Trust::AnyCertificate);
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect("localhost".try_into().unwrap(), stream)
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------
// Client

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub struct Client {
    io: BufReader<Box<dyn Io>>,
}

const WAIT: Duration = Duration::from_secs(10);

impl Client {
    /// Connects and reads the greeting.
    pub async fn connect(addr: SocketAddr) -> Client {
        let mut c = Client::connect_no_greeting(addr).await;
        let g = c.line().await;
        assert!(g.starts_with("+OK "), "greeting: {g}");
        c
    }

    pub async fn connect_no_greeting(addr: SocketAddr) -> Client {
        let tcp = TcpStream::connect(addr).await.unwrap();
        Client {
            io: BufReader::new(Box::new(tcp)),
        }
    }

    /// Connects with implicit TLS (pop3s) and reads the greeting.
    pub async fn connect_tls(addr: SocketAddr) -> Client {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let tls = tls_connect(tcp).await;
        let mut c = Client {
            io: BufReader::new(Box::new(tls)),
        };
        let g = c.line().await;
        assert!(g.starts_with("+OK "), "greeting: {g}");
        c
    }

    /// Sends STLS, expects +OK, and does the handshake.
    pub async fn stls(self) -> Client {
        let mut c = self;
        c.ok("STLS").await;
        c.into_tls_after_ok().await
    }

    /// The TLS handshake, once the server has said +OK to STLS.
    pub async fn into_tls_after_ok(self) -> Client {
        assert!(
            self.io.buffer().is_empty(),
            "server sent data after STLS +OK"
        );
        let inner = self.io.into_inner();
        let tls = tls_connect(inner).await;
        Client {
            io: BufReader::new(Box::new(tls)),
        }
    }

    pub async fn send(&mut self, data: &[u8]) {
        self.io.get_mut().write_all(data).await.unwrap();
        self.io.get_mut().flush().await.unwrap();
    }

    /// One line without its CRLF; panics on EOF, a bare LF or a timeout.
    pub async fn line(&mut self) -> String {
        let raw = self.raw_line().await;
        assert!(!raw.is_empty(), "connection closed");
        assert!(raw.ends_with(b"\r\n"), "line without CRLF: {raw:?}");
        String::from_utf8(raw[..raw.len() - 2].to_vec()).unwrap()
    }

    /// One line as received, CRLF included; empty at EOF.
    pub async fn raw_line(&mut self) -> Vec<u8> {
        let mut buf = Vec::new();
        tokio::time::timeout(WAIT, self.io.read_until(b'\n', &mut buf))
            .await
            .expect("timed out waiting for the server")
            .unwrap();
        buf
    }

    /// Sends a command and returns the status line.
    pub async fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.line().await
    }

    /// Sends a command, asserts `+OK`, returns the status line.
    pub async fn ok(&mut self, line: &str) -> String {
        let r = self.cmd(line).await;
        assert!(r.starts_with("+OK"), "{line:?} → {r:?}");
        r
    }

    /// Sends a command, asserts `-ERR`, returns the status line.
    pub async fn err(&mut self, line: &str) -> String {
        let r = self.cmd(line).await;
        assert!(r.starts_with("-ERR"), "{line:?} → {r:?}");
        r
    }

    /// Reads a multi-line body up to the terminator; returns it exactly as
    /// sent (still dot-stuffed, terminator excluded).
    pub async fn body(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let l = self.raw_line().await;
            assert!(
                !l.is_empty(),
                "connection closed inside a multi-line response"
            );
            assert!(l.ends_with(b"\r\n"), "line without CRLF: {l:?}");
            if l == b".\r\n" {
                return out;
            }
            out.extend_from_slice(&l);
        }
    }

    /// Sends a command that answers multi-line: status line and body lines
    /// (unstuffed, without CRLF).
    pub async fn multi(&mut self, line: &str) -> (String, Vec<String>) {
        let status = self.ok(line).await;
        let body = self.body().await;
        let lines = String::from_utf8(outpost_pop3::codec::unstuff(
            &[&body[..], b".\r\n"].concat(),
        ))
        .unwrap()
        .split_terminator("\r\n")
        .map(str::to_owned)
        .collect();
        (status, lines)
    }

    /// USER/PASS, expecting success.
    pub async fn login(&mut self, user: &str, pass: &str) -> String {
        self.ok(&format!("USER {user}")).await;
        self.ok(&format!("PASS {pass}")).await
    }

    /// Asserts the server closes the connection (EOF) without sending more.
    pub async fn expect_eof(&mut self) {
        let mut rest = Vec::new();
        tokio::time::timeout(WAIT, self.io.read_to_end(&mut rest))
            .await
            .expect("server did not close")
            .ok();
        assert!(
            rest.is_empty(),
            "unexpected data: {:?}",
            String::from_utf8_lossy(&rest)
        );
    }
}

/// Waits until the server has noticed a closed session and released the
/// maildrop lock of `user_id`.
pub async fn wait_unlocked(ctx: &Pop3Context, user_id: &str) {
    for _ in 0..500 {
        if !ctx.locks.is_locked(user_id) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("maildrop of {user_id} still locked");
}
