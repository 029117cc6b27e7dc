//! The HTTP stack served on real sockets (127.0.0.1:0), over TLS with the
//! project's rustls setup and over plain TCP, talked to with hyper's own
//! HTTP/1.1 and HTTP/2 clients.
//!
//! The tests that speak HTTP/1.1 run twice: as written, and (module `lean`)
//! with every path named a long-poll path, so that HTTP/1.1 is served by
//! the stack's own codec and hands over to hyper for what it does not take;
//! the answers must be the same.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Request};
use axum::routing::{any, get, post};
use axum::Router;
use base64::Engine as _;
use http::{Method, StatusCode, Version};
use http_body_util::BodyExt as _;
use hyper_util::rt::{TokioExecutor, TokioIo};
use outpost_http::{require_user, BasicAuth, ClientInfo, HttpServer, HttpSettings};
use outpost_net::{
    AuthLayer, AuthThrottle, AuthUser, Authenticator, Conn, Session, TempFail, ThrottleConfig,
};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const NAME: &str = "dav.example.test";

// ---------------------------------------------------------------- server

struct TestServer {
    tls: SocketAddr,
    plain: SocketAddr,
    cert: CertificateDer<'static>,
    stop: watch::Sender<bool>,
}

thread_local! {
    /// Serve HTTP/1.1 with the lean codec for every path (the tests in
    /// module `lean`; each test runs on its own thread).
    static LEAN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Serves `router` on one TLS and one plain listener, as `outpost serve`
/// does: accept, TLS handshake with the ALPN acceptor, then the stack.
async fn start(router: Router, settings: HttpSettings) -> TestServer {
    let (base, cert) = outpost_testkit::tls::self_signed(NAME);
    let acceptor = HttpServer::tls_acceptor(&base);
    let mut server = HttpServer::new(router, settings);
    if LEAN.with(|l| l.get()) {
        server = server.with_long_poll_paths(|_| true);
    }
    let (stop, stop_rx) = watch::channel(false);
    let tls_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plain_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (tls, plain) = (tls_l.local_addr().unwrap(), plain_l.local_addr().unwrap());
    for (listener, secure) in [(tls_l, true), (plain_l, false)] {
        let server = server.clone();
        let acceptor = acceptor.clone();
        let stop_rx = stop_rx.clone();
        tokio::spawn(async move {
            loop {
                let (tcp, peer) = listener.accept().await.unwrap();
                let server = server.clone();
                let acceptor = acceptor.clone();
                let stop_rx = stop_rx.clone();
                tokio::spawn(async move {
                    let local = tcp.local_addr().unwrap();
                    let session = Session::new(peer, local, if secure { "https" } else { "http" });
                    let mut conn = Conn::Plain(tcp);
                    if secure {
                        conn = match conn.into_tls(&acceptor).await {
                            Ok(c) => c,
                            Err(_) => return,
                        };
                    }
                    server.serve_connection(conn, &session, stop_rx).await;
                });
            }
        });
    }
    TestServer {
        tls,
        plain,
        cert,
        stop,
    }
}

// ---------------------------------------------------------------- clients

type Sender1 = hyper::client::conn::http1::SendRequest<Body>;
type Sender2 = hyper::client::conn::http2::SendRequest<Body>;

async fn tls_stream(
    srv: &TestServer,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut cfg = outpost_testkit::tls::pinned_client(srv.cert.clone());
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(srv.tls).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from(NAME).unwrap(), tcp)
        .await
        .unwrap()
}

/// An HTTP/2 connection over TLS, after checking that ALPN chose `h2`.
/// The second value ends when the connection does.
async fn h2(srv: &TestServer) -> (Sender2, tokio::task::JoinHandle<()>) {
    let tls = tls_stream(srv, &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    (sender, task)
}

/// HTTP/1.1 over TLS (ALPN offering only http/1.1).
async fn h1_tls(srv: &TestServer) -> Sender1 {
    let tls = tls_stream(srv, &[b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender
}

/// HTTP/1.1 over plain TCP.
async fn h1_plain(srv: &TestServer) -> Sender1 {
    let tcp = TcpStream::connect(srv.plain).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender
}

fn req(method: Method, uri: &str) -> http::request::Builder {
    req_no_host(method, uri).header("host", NAME)
}

fn req_no_host(method: Method, uri: &str) -> http::request::Builder {
    http::Request::builder().method(method).uri(uri)
}

fn get_req(uri: &str) -> http::Request<Body> {
    req(Method::GET, uri).body(Body::empty()).unwrap()
}

/// For HTTP/2 the URI must be absolute.
fn h2_uri(path: &str) -> String {
    format!("https://{NAME}{path}")
}

async fn text(resp: http::Response<hyper::body::Incoming>) -> (StatusCode, String) {
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn basic(login: &str, password: &str) -> String {
    let b = base64::engine::general_purpose::STANDARD.encode(format!("{login}:{password}"));
    format!("Basic {b}")
}

// ---------------------------------------------------------------- routers

async fn whoami(req: Request) -> String {
    let c = req.extensions().get::<ClientInfo>().copied().unwrap();
    let user = req
        .extensions()
        .get::<AuthUser>()
        .map(|u| u.login.clone())
        .unwrap_or_else(|| "-".into());
    format!("{:?} secure={} user={user}", req.version(), c.secure)
}

fn test_router() -> Router {
    Router::new()
        .route("/hello", get(whoami))
        .route("/.well-known/probe", get(whoami))
        .route(
            "/panic",
            get(|| async {
                if true {
                    panic!("handler bug");
                }
                "unreachable"
            }),
        )
        .route(
            "/upload",
            post(|b: Bytes| async move { format!("{}", b.len()) }),
        )
        .route(
            "/big-upload",
            post(|b: Bytes| async move { format!("{}", b.len()) })
                .layer(DefaultBodyLimit::max(4 * 1024 * 1024)),
        )
}

fn settings() -> HttpSettings {
    HttpSettings {
        hostname: NAME.into(),
        https_port: 8443,
        ..Default::default()
    }
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn h2_is_negotiated_by_alpn_and_h1_still_works() {
    let srv = start(test_router(), settings()).await;
    let (mut s2, _) = h2(&srv).await;
    let resp = s2.send_request(get_req(&h2_uri("/hello"))).await.unwrap();
    assert_eq!(resp.version(), Version::HTTP_2);
    assert_eq!(
        text(resp).await,
        (StatusCode::OK, "HTTP/2.0 secure=true user=-".into())
    );

    let mut s1 = h1_tls(&srv).await;
    let resp = s1.send_request(get_req("/hello")).await.unwrap();
    assert_eq!(resp.version(), Version::HTTP_11);
    assert_eq!(
        text(resp).await,
        (StatusCode::OK, "HTTP/1.1 secure=true user=-".into())
    );

    // No ALPN at all: HTTP/1.1.
    let tls = tls_stream(&srv, &[]).await;
    let (mut s, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let resp = s.send_request(get_req("/nothing-here")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_header_too_large_is_431() {
    let srv = start(test_router(), settings()).await;
    let huge = "x".repeat(20 * 1024);
    let mut s1 = h1_tls(&srv).await;
    let resp = s1
        .send_request(
            req(Method::GET, "/hello")
                .header("x-huge", &huge)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);

    let (mut s2, _) = h2(&srv).await;
    let resp = s2
        .send_request(
            req(Method::GET, &h2_uri("/hello"))
                .header("x-huge", &huge)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);

    // A head just under the limit is fine.
    let mut s1 = h1_tls(&srv).await;
    let resp = s1
        .send_request(
            req(Method::GET, "/hello")
                .header("x-big", "y".repeat(12 * 1024))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_and_a_route_may_raise_it() {
    let srv = start(test_router(), settings()).await;
    let two_mb = vec![b'a'; 2 * 1024 * 1024];
    for path in ["/upload", "/big-upload"] {
        let (mut s2, _) = h2(&srv).await;
        let resp = s2
            .send_request(
                req(Method::POST, &h2_uri(path))
                    .body(Body::from(two_mb.clone()))
                    .unwrap(),
            )
            .await
            .unwrap();
        let (status, body) = text(resp).await;
        if path == "/upload" {
            assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        } else {
            assert_eq!((status, body), (StatusCode::OK, "2097152".into()), "{path}");
        }
    }
    // Small bodies pass the default limit.
    let mut s1 = h1_tls(&srv).await;
    let resp = s1
        .send_request(
            req(Method::POST, "/upload")
                .body(Body::from("hello"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(text(resp).await, (StatusCode::OK, "5".into()));
}

#[tokio::test]
async fn a_stalled_body_is_answered_408_and_a_slow_one_is_read() {
    let srv = start(
        test_router(),
        HttpSettings {
            body_read_timeout: Duration::from_secs(1),
            allow_plaintext_on_loopback: true,
            ..settings()
        },
    )
    .await;
    // A slow body whose pieces each come within the timeout is read whole.
    let mut tcp = TcpStream::connect(srv.plain).await.unwrap();
    tcp.write_all(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n")
        .await
        .unwrap();
    for b in [b"a", b"b", b"c", b"d"] {
        tokio::time::sleep(Duration::from_millis(400)).await;
        tcp.write_all(b).await.unwrap();
    }
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(4), tcp.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.ends_with("\r\n\r\n4"), "{head}");

    // A body that stops: 408, and the connection closes.
    let mut tcp = TcpStream::connect(srv.plain).await.unwrap();
    tcp.write_all(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut got = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "connection still open after 5 s");
    let got = String::from_utf8_lossy(&got).to_string();
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn slow_headers_get_the_connection_closed() {
    let srv = start(
        test_router(),
        HttpSettings {
            header_read_timeout: Duration::from_secs(1),
            allow_plaintext_on_loopback: true,
            ..settings()
        },
    )
    .await;
    let mut tcp = TcpStream::connect(srv.plain).await.unwrap();
    tcp.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    // Keep dribbling one header byte at a time; the server must still cut
    // us off once the head took longer than the timeout.
    let mut buf = [0u8; 1024];
    let closed = loop {
        if started.elapsed() > Duration::from_secs(5) {
            break false;
        }
        if tcp.write_all(b"X").await.is_err() {
            break true;
        }
        match tokio::time::timeout(Duration::from_millis(200), tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(_)) => {} // a 408 or similar, then EOF
            Err(_) => {}
        }
    };
    assert!(closed, "connection still open after 5 s");
    assert!(started.elapsed() >= Duration::from_millis(900));

    // A client that connects and sends nothing is closed too.
    let mut tcp = TcpStream::connect(srv.plain).await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(4), tcp.read(&mut buf)).await;
    assert!(matches!(r, Ok(Ok(0)) | Ok(Err(_))), "{r:?}");

    // So is one that finishes TLS with h2 and never sends the preface.
    // (The server's SETTINGS may come first; read until the end.)
    let mut tls = tls_stream(&srv, &[b"h2"]).await;
    let r = tokio::time::timeout(Duration::from_secs(4), async {
        loop {
            match tls.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(r.is_ok(), "silent h2 connection still open after 4 s");
}

#[tokio::test]
async fn a_panicking_handler_answers_500_and_the_next_request_works() {
    let srv = start(test_router(), settings()).await;
    let mut s1 = h1_tls(&srv).await;
    let resp = s1.send_request(get_req("/panic")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let _ = text(resp).await;
    // Same connection, next request.
    let resp = s1.send_request(get_req("/hello")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    let (mut s2, _) = h2(&srv).await;
    let resp = s2.send_request(get_req(&h2_uri("/panic"))).await.unwrap();
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let resp = s2.send_request(get_req(&h2_uri("/hello"))).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

/// alice / right is the only good login; `down` makes the directory fail.
struct FakeDirectory {
    calls: AtomicU32,
    down: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl Authenticator for FakeDirectory {
    async fn authenticate(
        &self,
        login: &str,
        password: &str,
    ) -> Result<Option<AuthUser>, TempFail> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(TempFail("directory down".into()));
        }
        Ok((login == "alice" && password == "right").then(|| AuthUser {
            principal_id: 7,
            login: "alice@example.test".into(),
            quota_bytes: 0,
        }))
    }
}

fn auth_router(dir: Arc<FakeDirectory>, block_after: u32, plaintext_ok: bool) -> Router {
    let layer = AuthLayer::new(
        dir,
        AuthThrottle::new(ThrottleConfig {
            slow_after: 100,
            block_after,
            block_for: Duration::from_secs(120),
            ..Default::default()
        }),
    );
    let basic = BasicAuth::new(layer, NAME, plaintext_ok);
    let protected = require_user(
        Router::new()
            .route("/dav/", any(whoami))
            .route("/.well-known/secret", get(whoami)),
        basic,
    );
    Router::new()
        .merge(protected)
        .route("/.well-known/probe", get(whoami))
}

fn fake_dir() -> Arc<FakeDirectory> {
    Arc::new(FakeDirectory {
        calls: AtomicU32::new(0),
        down: false.into(),
    })
}

#[tokio::test]
async fn basic_auth_good_bad_absent_throttled_unavailable() {
    let dir = fake_dir();
    let srv = start(auth_router(dir.clone(), 3, false), settings()).await;
    let (mut s2, _) = h2(&srv).await;
    let send = |s2: &mut Sender2, auth: Option<String>| {
        let mut b = req(Method::GET, &h2_uri("/dav/"));
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        s2.send_request(b.body(Body::empty()).unwrap())
    };

    // Absent: 401 with exactly the Basic challenge.
    let resp = send(&mut s2, None).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let challenges: Vec<_> = resp.headers().get_all("www-authenticate").iter().collect();
    assert_eq!(
        challenges,
        [format!("Basic realm=\"{NAME}\", charset=\"UTF-8\"").as_str()]
    );
    assert_eq!(dir.calls.load(Ordering::SeqCst), 0);

    // Good: the handler sees the user.
    let resp = send(&mut s2, Some(basic("alice", "right"))).await.unwrap();
    assert_eq!(
        text(resp).await,
        (
            StatusCode::OK,
            "HTTP/2.0 secure=true user=alice@example.test".into()
        )
    );

    // Malformed and other schemes: 401 challenge, no directory call.
    let before = dir.calls.load(Ordering::SeqCst);
    for bad in ["Basic !!!", "Bearer abc", "Basic"] {
        let resp = send(&mut s2, Some(bad.into())).await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{bad}");
        assert!(resp.headers().contains_key("www-authenticate"));
    }
    assert_eq!(dir.calls.load(Ordering::SeqCst), before);

    // Bad password: 401, counted; after 3 failures the address is blocked:
    // 429 with Retry-After, and not even the right password is checked.
    for _ in 0..3 {
        let resp = send(&mut s2, Some(basic("alice", "wrong"))).await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    let calls = dir.calls.load(Ordering::SeqCst);
    let resp = send(&mut s2, Some(basic("alice", "right"))).await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "120");
    assert_eq!(dir.calls.load(Ordering::SeqCst), calls);

    // A route outside the layer is not affected.
    let resp = s2
        .send_request(get_req(&h2_uri("/.well-known/probe")))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn basic_auth_directory_down_is_503() {
    let dir = fake_dir();
    dir.down.store(true, Ordering::SeqCst);
    let srv = start(auth_router(dir.clone(), 3, false), settings()).await;
    let mut s1 = h1_tls(&srv).await;
    for _ in 0..5 {
        let resp = s1
            .send_request(
                req(Method::GET, "/dav/")
                    .header("authorization", basic("alice", "right"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(resp.headers().contains_key("retry-after"));
        let _ = text(resp).await;
    }
    // Not counted as failures: once the directory is back, the login works.
    dir.down.store(false, Ordering::SeqCst);
    let resp = s1
        .send_request(
            req(Method::GET, "/dav/")
                .header("authorization", basic("alice", "right"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn plain_http_redirects_to_https_except_well_known() {
    let srv = start(auth_router(fake_dir(), 3, false), settings()).await;
    let mut s = h1_plain(&srv).await;
    let resp = s
        .send_request(
            req_no_host(Method::GET, "/dav/calendars/x/?a=1&b=%20")
                .header("host", "mail.example.test:8080")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        resp.headers()["location"],
        "https://mail.example.test:8443/dav/calendars/x/?a=1&b=%20"
    );
    let _ = text(resp).await;
    // Even with good credentials: nothing but a redirect.
    let resp = s
        .send_request(
            req(Method::from_bytes(b"PROPFIND").unwrap(), "/dav/")
                .header("authorization", basic("alice", "right"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::MOVED_PERMANENTLY);
    let _ = text(resp).await;
    // Discovery is served.
    let resp = s.send_request(get_req("/.well-known/probe")).await.unwrap();
    assert_eq!(
        text(resp).await,
        (StatusCode::OK, "HTTP/1.1 secure=false user=-".into())
    );
    // ...but no login happens in the clear there either.
    let resp = s
        .send_request(
            req(Method::GET, "/.well-known/secret")
                .header("authorization", basic("alice", "right"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(!resp.headers().contains_key("www-authenticate"));
}

#[tokio::test]
async fn plaintext_on_loopback_is_served_when_allowed() {
    let srv = start(
        auth_router(fake_dir(), 3, true),
        HttpSettings {
            allow_plaintext_on_loopback: true,
            ..settings()
        },
    )
    .await;
    let mut s = h1_plain(&srv).await;
    let resp = s
        .send_request(
            req(Method::GET, "/dav/")
                .header("authorization", basic("alice", "right"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        text(resp).await,
        (
            StatusCode::OK,
            "HTTP/1.1 secure=false user=alice@example.test".into()
        )
    );
}

#[tokio::test]
async fn concurrent_requests_per_address_are_limited() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let entered = Arc::new(tokio::sync::Notify::new());
    let router = {
        let gate = gate.clone();
        let entered = entered.clone();
        Router::new().route(
            "/slow",
            get(move || {
                let gate = gate.clone();
                let entered = entered.clone();
                async move {
                    entered.notify_one();
                    let _ = gate.acquire().await.unwrap();
                    "done"
                }
            }),
        )
    };
    let srv = start(
        router,
        HttpSettings {
            requests_per_ip: 2,
            ..settings()
        },
    )
    .await;
    let (s2, _) = h2(&srv).await;
    let mut in_flight = Vec::new();
    for _ in 0..2 {
        let mut s = s2.clone();
        in_flight.push(tokio::spawn(async move {
            text(s.send_request(get_req(&h2_uri("/slow"))).await.unwrap()).await
        }));
        entered.notified().await;
    }
    // Two are in the handler: the third, even on another connection, is 429.
    let mut s1 = h1_tls(&srv).await;
    let resp = s1.send_request(get_req("/slow")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().contains_key("retry-after"));
    let _ = text(resp).await;
    gate.add_permits(10);
    for t in in_flight {
        assert_eq!(t.await.unwrap(), (StatusCode::OK, "done".into()));
    }
    // Capacity is back once they are answered.
    let resp = s1.send_request(get_req("/slow")).await.unwrap();
    assert_eq!(text(resp).await, (StatusCode::OK, "done".into()));
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let srv = start(
        test_router(),
        HttpSettings {
            idle_timeout: Duration::from_secs(1),
            ..settings()
        },
    )
    .await;
    let (mut s2, conn) = h2(&srv).await;
    let resp = s2.send_request(get_req(&h2_uri("/hello"))).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let _ = text(resp).await;
    tokio::time::timeout(Duration::from_secs(5), conn)
        .await
        .expect("idle h2 connection not closed")
        .unwrap();
}

#[tokio::test]
async fn stop_finishes_the_request_in_flight_then_closes() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let entered = Arc::new(tokio::sync::Notify::new());
    let router = {
        let gate = gate.clone();
        let entered = entered.clone();
        Router::new().route(
            "/slow",
            get(move || {
                let gate = gate.clone();
                let entered = entered.clone();
                async move {
                    entered.notify_one();
                    let _ = gate.acquire().await.unwrap();
                    "done"
                }
            }),
        )
    };
    let srv = start(router, settings()).await;
    let (s2, conn) = h2(&srv).await;
    let mut s = s2.clone();
    let pending = tokio::spawn(async move {
        text(s.send_request(get_req(&h2_uri("/slow"))).await.unwrap()).await
    });
    entered.notified().await;
    srv.stop.send(true).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    gate.add_permits(1);
    assert_eq!(pending.await.unwrap(), (StatusCode::OK, "done".into()));
    tokio::time::timeout(Duration::from_secs(5), conn)
        .await
        .expect("connection not closed after stop")
        .unwrap();
}

/// Collects what the fmt subscriber writes.
#[derive(Clone, Default)]
struct LogBuffer(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_access_log_has_one_line_per_request_without_the_query() {
    // #[tokio::test] runs everything on this thread: a thread-local
    // subscriber sees the server's tasks too.
    let buf = LogBuffer::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let srv = start(auth_router(fake_dir(), 3, false), settings()).await;
    let (mut s2, _) = h2(&srv).await;
    let resp = s2
        .send_request(
            req(Method::GET, &h2_uri("/dav/?token=s3cr3t"))
                .header("authorization", basic("alice", "right"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let (status, body) = text(resp).await;
    assert_eq!(status, StatusCode::OK);
    let resp = s2.send_request(get_req(&h2_uri("/dav/"))).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let _ = text(resp).await;

    let lines = || {
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .filter(|l| l.contains("outpost::http::access"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    for _ in 0..100 {
        if lines().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let lines = lines();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    let ok = &lines[0];
    for part in [
        "method=GET",
        "path=/dav/ ",
        "status=200",
        "version=HTTP/2.0",
        "user=alice@example.test",
        "tls=true",
        "complete=true",
        &format!("bytes={}", body.len()),
        "peer=127.0.0.1:",
    ] {
        assert!(ok.contains(part), "{part:?} not in {ok}");
    }
    assert!(!ok.contains("s3cr3t"), "{ok}");
    assert!(!ok.contains("Basic"), "{ok}");
    assert!(
        lines[1].contains("status=401") && lines[1].contains("user=- "),
        "{}",
        lines[1]
    );
}

/// A 401 answered before the handler read the body (PROPFIND with its XML,
/// then the retry with credentials, as requests/niquests do) keeps the
/// HTTP/1.1 connection: the body is read, the next request on the same
/// connection is answered. A body too large to read is answered with
/// `Connection: close`, said rather than done silently.
#[tokio::test]
async fn a_401_with_an_unread_body_keeps_the_connection() {
    let srv = start(auth_router(fake_dir(), 100, false), settings()).await;
    let mut s1 = h1_tls(&srv).await;
    let body = "<?xml version=\"1.0\"?><propfind xmlns=\"DAV:\"><allprop/></propfind>".repeat(50);
    for round in 0..3 {
        let resp = s1
            .send_request(
                req(Method::from_bytes(b"PROPFIND").unwrap(), "/dav/")
                    .body(Body::from(body.clone()))
                    .unwrap(),
            )
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert!(resp.headers().get("connection").is_none());
        let _ = text(resp).await;
        let resp = s1
            .send_request(
                req(Method::GET, "/dav/")
                    .header("authorization", basic("alice", "right"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap_or_else(|e| panic!("round {round}, with credentials: {e}"));
        assert_eq!(resp.status(), StatusCode::OK);
        let _ = text(resp).await;
    }
    // Over the drain limit: answered, and the close is announced.
    let mut s1 = h1_tls(&srv).await;
    let resp = s1
        .send_request(
            req(Method::PUT, "/dav/")
                .body(Body::from(vec![b'x'; 300 * 1024]))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["connection"], "close");
}

/// The HTTP/1.1 tests again, served by the lean codec.
mod lean {
    macro_rules! lean_too {
        ($($name:ident),* $(,)?) => {$(
            #[test]
            fn $name() {
                super::LEAN.with(|l| l.set(true));
                super::$name()
            }
        )*};
    }
    lean_too!(
        h2_is_negotiated_by_alpn_and_h1_still_works,
        a_header_too_large_is_431,
        a_body_over_the_limit_is_413_and_a_route_may_raise_it,
        slow_headers_get_the_connection_closed,
        a_panicking_handler_answers_500_and_the_next_request_works,
        basic_auth_directory_down_is_503,
        plain_http_redirects_to_https_except_well_known,
        plaintext_on_loopback_is_served_when_allowed,
        concurrent_requests_per_address_are_limited,
        a_401_with_an_unread_body_keeps_the_connection,
        h1_stop_finishes_the_request_in_flight_then_closes,
        h1_chunked_and_expect_requests_hand_the_connection_to_hyper,
        h1_pipelined_requests_are_answered_in_order,
        h1_a_client_that_closes_drops_its_request,
        h1_bodies_of_unknown_length_and_bodiless_answers,
    );
}

/// The router of the HTTP/1.1 codec tests: a slow route released by
/// `gate` that records whether its handler was dropped before it ended, a
/// streamed body of unknown length, 204 and HEAD.
struct Probe {
    gate: Arc<tokio::sync::Semaphore>,
    entered: Arc<tokio::sync::Notify>,
    dropped: Arc<std::sync::atomic::AtomicBool>,
}

fn probe_router() -> (Router, Probe) {
    let probe = Probe {
        gate: Arc::new(tokio::sync::Semaphore::new(0)),
        entered: Arc::new(tokio::sync::Notify::new()),
        dropped: Arc::new(std::sync::atomic::AtomicBool::new(false)),
    };
    struct Flag(Arc<std::sync::atomic::AtomicBool>, bool);
    impl Drop for Flag {
        fn drop(&mut self) {
            if !self.1 {
                self.0.store(true, Ordering::SeqCst);
            }
        }
    }
    let (gate, entered, dropped) = (
        probe.gate.clone(),
        probe.entered.clone(),
        probe.dropped.clone(),
    );
    let router = Router::new()
        .route(
            "/slow",
            get(move || {
                let (gate, entered, dropped) = (gate.clone(), entered.clone(), dropped.clone());
                async move {
                    let mut flag = Flag(dropped, false);
                    entered.notify_one();
                    let _ = gate.acquire().await.unwrap();
                    flag.1 = true;
                    "done"
                }
            }),
        )
        .route("/echo", post(|b: Bytes| async move { b }))
        .route(
            "/stream",
            get(|| async {
                let chunks = ["one,", "two,", "three"]
                    .into_iter()
                    .map(|c| Ok::<_, std::io::Error>(Bytes::from(c)));
                Body::from_stream(futures::stream::iter(chunks))
            }),
        )
        .route("/nothing", get(|| async { StatusCode::NO_CONTENT }));
    (router, probe)
}

#[tokio::test]
async fn h1_stop_finishes_the_request_in_flight_then_closes() {
    let (router, probe) = probe_router();
    let srv = start(router, settings()).await;
    let tls = tls_stream(&srv, &[b"http/1.1"]).await;
    let (mut s, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    let pending = tokio::spawn(async move {
        let r = text(s.send_request(get_req("/slow")).await.unwrap()).await;
        (r, s)
    });
    probe.entered.notified().await;
    srv.stop.send(true).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    probe.gate.add_permits(1);
    let (r, _s) = pending.await.unwrap();
    assert_eq!(r, (StatusCode::OK, "done".into()));
    tokio::time::timeout(Duration::from_secs(5), conn)
        .await
        .expect("connection not closed after stop")
        .unwrap()
        .unwrap();
}

/// A chunked body and `Expect: 100-continue` are hyper's to serve: the
/// connection is handed over mid-way and keeps working.
#[tokio::test]
async fn h1_chunked_and_expect_requests_hand_the_connection_to_hyper() {
    let (router, _probe) = probe_router();
    let srv = start(router, settings()).await;
    let mut s1 = h1_tls(&srv).await;
    let resp = s1
        .send_request(
            req(Method::POST, "/echo")
                .body(Body::from("plain"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(text(resp).await, (StatusCode::OK, "plain".into()));
    // A body of unknown length: hyper's client sends it chunked.
    let chunked = Body::from_stream(futures::stream::iter(
        ["chun", "ked"]
            .into_iter()
            .map(|c| Ok::<_, std::io::Error>(Bytes::from(c))),
    ));
    let resp = s1
        .send_request(req(Method::POST, "/echo").body(chunked).unwrap())
        .await
        .unwrap();
    assert_eq!(text(resp).await, (StatusCode::OK, "chunked".into()));
    let resp = s1
        .send_request(
            req(Method::POST, "/echo")
                .body(Body::from("after"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(text(resp).await, (StatusCode::OK, "after".into()));

    // Expect: 100-continue over a raw connection.
    let mut tls = tls_stream(&srv, &[b"http/1.1"]).await;
    tls.write_all(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n",
    )
    .await
    .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains("100 Continue") {
        let n = tls.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before 100 Continue");
        got.extend_from_slice(&buf[..n]);
    }
    tls.write_all(b"ping").await.unwrap();
    while !String::from_utf8_lossy(&got).ends_with("ping") {
        let n = tls.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before the answer");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&got).contains("HTTP/1.1 200 OK"));
}

/// Requests sent back to back in one write are answered in order, and
/// malformed input after them gets hyper's 400.
#[tokio::test]
async fn h1_pipelined_requests_are_answered_in_order() {
    let (router, _probe) = probe_router();
    let srv = start(router, settings()).await;
    let mut tls = tls_stream(&srv, &[b"http/1.1"]).await;
    tls.write_all(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nfirstPOST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nsecondGET /nothing HTTP/1.1\r\nHost: x\r\n\r\nNOT HTTP AT ALL\r\n\r\n",
    )
    .await
    .unwrap();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut got)).await;
    let got = String::from_utf8_lossy(&got);
    let first = got.find("first").expect("first answered");
    let second = got.find("second").expect("second answered");
    let nothing = got.find("204 No Content").expect("204 answered");
    let bad = got.find("400 Bad Request").expect("garbage answered 400");
    assert!(first < second && second < nothing && nothing < bad, "{got}");
}

/// A client that goes away while its request waits takes the request with
/// it: the handler is dropped, as hyper does.
#[tokio::test]
async fn h1_a_client_that_closes_drops_its_request() {
    let (router, probe) = probe_router();
    let srv = start(router, settings()).await;
    let mut tls = tls_stream(&srv, &[b"http/1.1"]).await;
    tls.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    probe.entered.notified().await;
    drop(tls);
    for _ in 0..200 {
        if probe.dropped.load(Ordering::SeqCst) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the handler of a closed connection still runs");
}

/// A body of unknown length is sent chunked; 204 and HEAD have none.
#[tokio::test]
async fn h1_bodies_of_unknown_length_and_bodiless_answers() {
    let (router, _probe) = probe_router();
    let srv = start(router, settings()).await;
    let mut s1 = h1_tls(&srv).await;
    let resp = s1.send_request(get_req("/stream")).await.unwrap();
    assert_eq!(text(resp).await, (StatusCode::OK, "one,two,three".into()));
    let resp = s1.send_request(get_req("/nothing")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(resp.headers().get("content-length").is_none());
    let _ = text(resp).await;
    let resp = s1
        .send_request(req(Method::HEAD, "/hello").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = s1
        .send_request(
            req(Method::POST, "/echo")
                .body(Body::from("still here"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(text(resp).await, (StatusCode::OK, "still here".into()));
    // The raw answer carries a date and, for the stream, chunked framing.
    let mut tls = tls_stream(&srv, &[b"http/1.1"]).await;
    tls.write_all(b"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut got)).await;
    let got = String::from_utf8_lossy(&got).to_lowercase();
    assert!(got.contains("date: "), "{got}");
    assert!(got.contains("transfer-encoding: chunked"), "{got}");
    assert!(got.ends_with("0\r\n\r\n"), "{got}");
}
