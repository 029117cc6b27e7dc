//! Test harness: a real IMAP server on 127.0.0.1:0 over the in-memory
//! storage, a fake directory, and a tiny client that makes each exchange
//! one line of test code (`tc.cmd("a1 select inbox").ok()`). The
//! end-to-end tests in `tests/test_imap_*.py` drive the real store.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use outpost_imap::memory::MemStorage;
use outpost_imap::{ImapContext, ImapLimits};
use outpost_net::auth::{AuthLayer, AuthUser, Authenticator, TempFail};
use outpost_net::{AuthThrottle, Conn, ListenerContext, Session, ThrottleConfig, TlsAcceptor};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

pub const MSG: &str = "From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: hello\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\nMessage-ID: <m1@example.org>\r\n\r\nHello Bob,\r\nhow are you?\r\n";

pub struct FakeAuth {
    pub principal: i64,
    pub quota: i64,
}

#[async_trait::async_trait]
impl Authenticator for FakeAuth {
    async fn authenticate(
        &self,
        login: &str,
        password: &str,
    ) -> Result<Option<AuthUser>, TempFail> {
        if login == "tempfail" {
            return Err(TempFail("directory down".into()));
        }
        Ok(
            (login == "bob@example.org" && password == "secret").then(|| AuthUser {
                principal_id: self.principal,
                login: login.into(),
                quota_bytes: self.quota,
            }),
        )
    }
}

pub struct Server {
    pub addr: SocketAddr,
    pub store: MemStorage,
    pub principal: i64,
    pub ctx: Arc<ImapContext>,
}

pub struct Options {
    pub tls: Option<TlsAcceptor>,
    pub plaintext: bool,
    pub quota: i64,
    pub limits: ImapLimits,
    pub implicit_tls: bool,
    pub throttle: Option<ThrottleConfig>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            tls: None,
            plaintext: true,
            quota: 0,
            limits: ImapLimits::default(),
            implicit_tls: false,
            throttle: None,
        }
    }
}

pub async fn server() -> Server {
    server_with(Options::default()).await
}

pub async fn server_with(o: Options) -> Server {
    let store = MemStorage::new();
    let p = store.add_principal();
    let throttle = AuthThrottle::new(o.throttle.clone().unwrap_or(ThrottleConfig {
        window: Duration::from_secs(60),
        slow_after: 100,
        delay: Duration::from_millis(1),
        block_after: 1000,
        block_for: Duration::from_secs(1),
    }));
    let ctx = Arc::new(ImapContext {
        listener: ListenerContext {
            hostname: "mail.example.org".into(),
            tls: o.tls.clone(),
            auth: AuthLayer::new(
                Arc::new(FakeAuth {
                    principal: p,
                    quota: o.quota,
                }),
                throttle,
            ),
            allow_plaintext_on_loopback: o.plaintext,
        },
        storage: Arc::new(store.clone()),
        limits: o.limits,
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let c2 = ctx.clone();
    let implicit = o.implicit_tls;
    tokio::spawn(async move {
        loop {
            let Ok((tcp, peer)) = listener.accept().await else {
                return;
            };
            let ctx = c2.clone();
            tokio::spawn(async move {
                let local = tcp.local_addr().unwrap();
                let mut conn = Conn::Plain(tcp);
                let name = if implicit { "imaps" } else { "imap" };
                if implicit {
                    let acc = ctx.listener.tls.clone().unwrap();
                    conn = match conn.into_tls(&acc).await {
                        Ok(c) => c,
                        Err(_) => return,
                    };
                }
                outpost_imap::serve(conn, Session::new(peer, local, name), ctx).await;
            });
        }
    });
    Server {
        addr,
        store,
        principal: p,
        ctx,
    }
}

impl Server {
    pub async fn client(&self) -> Client<TcpStream> {
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        let mut c = Client::new(tcp);
        let g = c.line().await;
        assert!(g.starts_with("* OK"), "greeting: {g}");
        c
    }

    /// A client that has logged in.
    pub async fn login(&self) -> Client<TcpStream> {
        let mut c = self.client().await;
        c.cmd("l1 LOGIN bob@example.org secret").await.ok();
        c
    }

    pub async fn mailbox_id(&self, name: &str) -> i64 {
        self.store.mailbox_id(self.principal, name).unwrap()
    }

    /// Delivers a message as SMTP would.
    pub async fn deliver(&self, mailbox: &str, raw: &str) -> i64 {
        let id = self.mailbox_id(mailbox).await;
        self.store.deliver(id, raw.as_bytes(), 0, 1_700_000_000)
    }
}

/// The client: every response line up to the tagged one, literals inline.
pub struct Client<S> {
    r: BufReader<S>,
}

pub struct Reply {
    pub lines: Vec<String>,
    pub tagged: String,
}

impl Reply {
    #[track_caller]
    pub fn ok(self) -> Reply {
        let t = self.tagged.split(' ').nth(1).unwrap_or("");
        assert_eq!(
            t, "OK",
            "expected OK, got {:?} after {:#?}",
            self.tagged, self.lines
        );
        self
    }
    #[track_caller]
    pub fn no(self) -> Reply {
        let t = self.tagged.split(' ').nth(1).unwrap_or("");
        assert_eq!(
            t, "NO",
            "expected NO, got {:?} after {:#?}",
            self.tagged, self.lines
        );
        self
    }
    #[track_caller]
    pub fn bad(self) -> Reply {
        let t = self.tagged.split(' ').nth(1).unwrap_or("");
        assert_eq!(
            t, "BAD",
            "expected BAD, got {:?} after {:#?}",
            self.tagged, self.lines
        );
        self
    }
    /// Some untagged line contains `s`.
    #[track_caller]
    pub fn has(self, s: &str) -> Reply {
        assert!(
            self.lines.iter().any(|l| l.contains(s)),
            "no line contains {s:?}: {:#?}",
            self.lines
        );
        self
    }
    #[track_caller]
    pub fn lacks(self, s: &str) -> Reply {
        assert!(
            !self.lines.iter().any(|l| l.contains(s)),
            "a line contains {s:?}: {:#?}",
            self.lines
        );
        self
    }
    #[track_caller]
    pub fn code(self, s: &str) -> Reply {
        assert!(
            self.tagged.contains(s),
            "tagged {:?} lacks {s:?}",
            self.tagged
        );
        self
    }
    pub fn count(&self, s: &str) -> usize {
        self.lines.iter().filter(|l| l.contains(s)).count()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    pub fn new(s: S) -> Self {
        Client {
            r: BufReader::new(s),
        }
    }

    pub fn into_inner(self) -> S {
        self.r.into_inner()
    }

    pub async fn send(&mut self, s: &str) {
        let mut b = Vec::with_capacity(s.len() + 2);
        b.extend_from_slice(s.as_bytes());
        b.extend_from_slice(b"\r\n");
        self.r.get_mut().write_all(&b).await.unwrap();
    }

    pub async fn send_raw(&mut self, b: &[u8]) {
        self.r.get_mut().write_all(b).await.unwrap();
    }

    /// One response line; a trailing literal `{n}` is read and appended.
    pub async fn line(&mut self) -> String {
        let mut out = String::new();
        loop {
            let mut l = String::new();
            let n = tokio::time::timeout(Duration::from_secs(10), self.r.read_line(&mut l))
                .await
                .expect("timed out waiting for the server")
                .unwrap();
            assert!(n > 0, "server closed the connection; so far {out:?}");
            let l = l.trim_end_matches(['\r', '\n']).to_string();
            out.push_str(&l);
            let lit = l
                .strip_suffix('}')
                .and_then(|x| x.rsplit_once('{'))
                .and_then(|(_, n)| n.trim_end_matches('+').parse::<usize>().ok());
            match lit {
                Some(n) => {
                    let mut b = vec![0u8; n];
                    self.r.read_exact(&mut b).await.unwrap();
                    out.push_str(&String::from_utf8_lossy(&b));
                }
                None => return out,
            }
        }
    }

    /// Reads until the line tagged with `tag`.
    pub async fn until(&mut self, tag: &str) -> Reply {
        let mut lines = Vec::new();
        loop {
            let l = self.line().await;
            if l.starts_with(&format!("{tag} ")) {
                return Reply { lines, tagged: l };
            }
            lines.push(l);
        }
    }

    /// Sends a command (`tag rest`) and reads its reply.
    pub async fn cmd(&mut self, c: &str) -> Reply {
        self.send(c).await;
        let tag = c.split(' ').next().unwrap().to_string();
        self.until(&tag).await
    }

    /// True when the server closed the connection (after draining).
    pub async fn closed(&mut self) -> bool {
        let mut b = [0u8; 4096];
        loop {
            match tokio::time::timeout(Duration::from_secs(5), self.r.read(&mut b)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }
}

/// Shortcut for `cmd` that awaits: `tc!(c, "a1 noop").ok();`
#[macro_export]
macro_rules! tc {
    ($c:expr, $s:expr) => {
        $c.cmd($s).await
    };
}
