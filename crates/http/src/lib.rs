//! The one HTTP stack every HTTP protocol is mounted on (DAV now;
//! Autodiscover, ActiveSync, EWS, JMAP and the web UI later).
//!
//! Protocol crates build an [`axum::Router`]; the binary merges them, wraps
//! the ones that need a login with [`auth::require_user`], and hands the
//! result to [`HttpServer`], which serves it on connections the listener
//! accepted: HTTP/1.1, or HTTP/2 when TLS negotiated `h2` by ALPN (hyper 1
//! through hyper-util's server). What the stack does for every request, so
//! that no protocol has to:
//!
//! - limits: request head size (431), the default body limit that axum's
//!   body extractors enforce (413; a protocol raises or lowers it for its
//!   own routes with [`axum::extract::DefaultBodyLimit`]), the time to send
//!   a request head, the idle time of a kept-alive connection, concurrent
//!   requests per client address (429), HTTP/2 streams per connection;
//! - [`ClientInfo`] (peer address, TLS or not) in every request's
//!   extensions;
//! - the plain-HTTP policy: on a connection without TLS only
//!   `/.well-known/*` and `/mail/config-v1.1.xml` are served; everything else gets a 301 to the same
//!   path and query on `https://` ([`plain`]), unless the settings allow
//!   plaintext from loopback clients and the client is one;
//! - a handler that panics answers 500 and the server goes on;
//! - one structured access-log line per request ([`log`]).

pub mod auth;
mod lean;
mod limit;
pub mod log;
pub mod plain;
mod rewind;
mod trickle;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::Router;
use http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use outpost_net::{Conn, ConnLimiter, Session, TlsAcceptor};
use tokio::sync::watch;
use tower::ServiceExt as _;
use tower_http::catch_panic::CatchPanicLayer;

pub use auth::{require_user, BasicAuth};

/// Who sent a request, inserted into the extensions of every request the
/// stack serves. Handlers read it with
/// `req.extensions().get::<ClientInfo>()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientInfo {
    /// The client's address (as the TCP connection shows it).
    pub peer: SocketAddr,
    /// The request arrived over TLS.
    pub secure: bool,
}

impl ClientInfo {
    /// Plaintext requests from this client may be served like TLS ones:
    /// `allow` (the `[http] allow_plaintext_on_loopback` setting) and the
    /// client is on loopback. Always true over TLS.
    pub fn trusted_transport(&self, allow_plaintext_on_loopback: bool) -> bool {
        self.secure || (allow_plaintext_on_loopback && self.peer.ip().is_loopback())
    }
}

/// The smallest `max_header_size` the stack can enforce (hyper's read
/// buffer cannot be smaller).
pub const MIN_HEADER_SIZE: usize = 8192;

/// How long requests in flight get to finish once the server stops.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// How long a closing connection without requests in flight is left to
/// close by itself before it is dropped.
pub const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// The stack's limits and policy, from the `[http]` config section (see
/// `outpost_config::Http` for why each default is what it is).
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// Our host name: the redirect target when a client sent no usable
    /// `Host`, and the Basic realm.
    pub hostname: String,
    /// Port of the HTTPS listener, for redirects from plain HTTP (443 is
    /// left out of the URL).
    pub https_port: u16,
    /// Largest request head (request line and header fields), in bytes.
    /// Larger: 431 and the connection is closed. On HTTP/2 it bounds the
    /// decoded header list the same way.
    pub max_header_size: usize,
    /// Default largest request body, in bytes, for handlers that read the
    /// body through axum's extractors (413 beyond).
    pub body_limit: usize,
    /// Time a client has to send a complete request head on HTTP/1.1,
    /// counted from when the server starts waiting for it (so it also
    /// bounds the wait for the next request on a kept-alive connection).
    pub header_read_timeout: Duration,
    /// Longest wait for the next piece of a request body (hyper-served
    /// connections); beyond it the request is answered 408 and the
    /// connection closed.
    pub body_read_timeout: Duration,
    /// A connection without a request in flight for this long is closed
    /// (HTTP/1.1) or sent GOAWAY (HTTP/2).
    pub idle_timeout: Duration,
    /// Requests being answered at once for one client address, over all
    /// its connections; more get 429.
    pub requests_per_ip: usize,
    /// Requests held open waiting for a change (ActiveSync Ping and
    /// hanging Sync, see [`LongPoll`]) for one client address. They leave
    /// `requests_per_ip` while they wait, so an office of phones behind
    /// one NAT address is not refused its ordinary requests.
    pub long_polls_per_ip: usize,
    /// Streams one HTTP/2 connection may have open at once.
    pub h2_max_concurrent_streams: u32,
    /// Serve plain-HTTP requests from loopback clients like HTTPS ones (and
    /// let [`auth::require_user`] accept Basic there). Default false.
    pub allow_plaintext_on_loopback: bool,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            hostname: "localhost".into(),
            https_port: 443,
            max_header_size: 16 * 1024,
            body_limit: 1024 * 1024,
            header_read_timeout: Duration::from_secs(20),
            body_read_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            requests_per_ip: 128,
            long_polls_per_ip: 5000,
            h2_max_concurrent_streams: 100,
            allow_plaintext_on_loopback: false,
        }
    }
}

/// The HTTP server: one merged router, the settings, and what is shared
/// between its connections (the per-address request counter). Cheap to
/// clone; clones share everything.
#[derive(Clone)]
pub struct HttpServer {
    inner: Arc<Inner>,
}

struct Inner {
    router: Router,
    settings: HttpSettings,
    /// Requests in flight per client address (the connection limiter's
    /// counter, used for requests).
    requests: ConnLimiter,
    /// Per client address, for requests parked as long polls.
    long_polls: ConnLimiter,
    /// Paths whose HTTP/1.1 connections are served by [`lean`] (see
    /// [`HttpServer::with_long_poll_paths`]).
    lean_paths: Option<fn(&str) -> bool>,
}

impl HttpServer {
    /// Serves `router` (already merged and wrapped by the binary) with the
    /// stack's layers around it: the default body limit (innermost routers'
    /// own `DefaultBodyLimit` override it) and the panic catcher.
    pub fn new(router: Router, settings: HttpSettings) -> HttpServer {
        let router = router
            .layer(DefaultBodyLimit::max(settings.body_limit))
            .layer(CatchPanicLayer::custom(PanicResponse));
        HttpServer {
            inner: Arc::new(Inner {
                router,
                requests: ConnLimiter::new(settings.requests_per_ip.max(1), usize::MAX),
                long_polls: ConnLimiter::new(settings.long_polls_per_ip.max(1), usize::MAX),
                settings,
                lean_paths: None,
            }),
        }
    }

    /// Names the paths of long polls (ActiveSync's): an HTTP/1.1
    /// connection whose requests are for them is served by a codec that
    /// keeps no buffers while a request waits ([`lean`]), so that ten
    /// thousand held Pings cost their TLS state and little else. Anything
    /// else on such a connection hands it to hyper. Call before cloning.
    pub fn with_long_poll_paths(mut self, paths: fn(&str) -> bool) -> HttpServer {
        Arc::get_mut(&mut self.inner)
            .expect("with_long_poll_paths before the server is cloned")
            .lean_paths = Some(paths);
        self
    }

    pub fn settings(&self) -> &HttpSettings {
        &self.inner.settings
    }

    /// The TLS acceptor an HTTPS listener must use: `base` (the server's
    /// certificate and TLS versions) offering `h2` and `http/1.1` by ALPN.
    pub fn tls_acceptor(base: &TlsAcceptor) -> TlsAcceptor {
        let mut config = (**base.config()).clone();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        TlsAcceptor::from(Arc::new(config))
    }

    /// Serves one accepted connection until the client closes it, it stays
    /// idle past the idle timeout, or `stop` turns true (then requests in
    /// flight are finished and the connection is closed: HTTP/1.1 closes
    /// after the current response, HTTP/2 sends GOAWAY). A TLS connection
    /// must come from an acceptor made by [`Self::tls_acceptor`]; it speaks
    /// HTTP/2 when ALPN chose `h2`, HTTP/1.1 otherwise. Plain connections
    /// speak HTTP/1.1 only (no h2c).
    pub async fn serve_connection(
        &self,
        conn: Conn,
        session: &Session,
        mut stop: watch::Receiver<bool>,
    ) {
        let secure = conn.is_tls();
        let h2 = match &conn {
            Conn::Tls(tls) => tls.get_ref().1.alpn_protocol() == Some(b"h2"),
            Conn::Plain(_) => false,
        };
        let client = ClientInfo {
            peer: session.peer,
            secure,
        };
        let activity = Arc::new(limit::Activity::new());
        let mut conn = conn;
        let mut read_ahead = Vec::new();
        if let (false, Some(paths)) = (h2, self.inner.lean_paths) {
            let lean = lean::serve(
                self, &mut conn, client, session.id, &mut stop, &activity, paths,
            );
            match Box::pin(lean).await {
                lean::End::Closed => return,
                lean::End::HandOver(bytes) => read_ahead = bytes,
            }
        }
        // Boxed: a connection served by [`lean`] does not carry room for
        // hyper's connection state.
        let io = rewind::Rewind::new(read_ahead, conn);
        Box::pin(self.serve_hyper(io, h2, client, session, stop, activity)).await
    }

    /// The rest of [`Self::serve_connection`]: hyper serves the connection.
    async fn serve_hyper(
        &self,
        io: rewind::Rewind<Conn>,
        h2: bool,
        client: ClientInfo,
        session: &Session,
        mut stop: watch::Receiver<bool>,
        activity: Arc<limit::Activity>,
    ) {
        let settings = &self.inner.settings;
        let service = {
            let server = self.clone();
            let activity = activity.clone();
            let session_id = session.id;
            // The request's future is boxed: hyper keeps room for the
            // service's future in every connection from its start, so an
            // inline one would make each idle connection (and each held
            // ActiveSync Ping) as large as the largest request's state.
            let body_timeout = settings.body_read_timeout;
            hyper::service::service_fn(move |req: Request<Incoming>| {
                let server = server.clone();
                let activity = activity.clone();
                Box::pin(async move {
                    let stalled = Arc::new(std::sync::atomic::AtomicBool::new(false));
                    let req = req.map(|b| {
                        Body::new(trickle::Guarded::new(b, body_timeout, stalled.clone()))
                    });
                    Ok::<_, Infallible>(
                        server
                            .respond(req, client, session_id, activity, Some(stalled))
                            .await,
                    )
                })
            })
        };

        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            // A request head that does not fit the read buffer is
            // answered 431 and the connection closed (hyper's buffer has
            // a floor of 8 KiB, which the config enforces too).
            .max_buf_size(settings.max_header_size.max(MIN_HEADER_SIZE))
            .header_read_timeout(settings.header_read_timeout)
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(settings.h2_max_concurrent_streams)
            .max_header_list_size(u32::try_from(settings.max_header_size).unwrap_or(u32::MAX))
            // A client that stops reading its responses must not make
            // us buffer them without bound.
            .max_send_buf_size(1024 * 1024);
        let builder = if h2 {
            builder.http2_only()
        } else {
            builder.http1_only()
        };
        let connection = builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(connection);

        // Idle: no request in flight for `idle_timeout`, or, before the
        // first request, for `header_read_timeout` (a client that connects
        // and says nothing, on HTTP/2 too).
        let idle = settings.idle_timeout;
        let first = settings.header_read_timeout;
        // Once closing, the connection is given a moment to finish on its
        // own (GOAWAY sent, responses flushed); one that does not (an
        // HTTP/2 client that never sent its preface, or never reads, so
        // never acknowledges the shutdown) is dropped [`CLOSE_LINGER`] after
        // its last request ended, and at the latest after [`STOP_GRACE`]
        // with requests still in flight.
        let mut closing: Option<(tokio::time::Instant, tokio::time::Instant)> = None;
        let far = tokio::time::Instant::now() + Duration::from_secs(86400 * 365);
        let result = loop {
            let idle_check = tokio::time::sleep_until(activity.idle_deadline(first, idle));
            let cutoff_at = match closing {
                None => far,
                Some((since, hard)) if activity.in_flight() == 0 => {
                    (since.max(activity.last_end()) + CLOSE_LINGER).min(hard)
                }
                Some((_, hard)) => hard,
            };
            let cutoff = tokio::time::sleep_until(cutoff_at);
            let is_closing = closing.is_some();
            tokio::select! {
                r = connection.as_mut() => break r,
                _ = activity.ended.notified() => {}
                _ = stop.changed(), if !is_closing => {
                    let now = tokio::time::Instant::now();
                    closing = Some((now, now + STOP_GRACE));
                    connection.as_mut().graceful_shutdown();
                }
                _ = idle_check, if !is_closing => {
                    if activity.is_idle(first, idle) {
                        tracing::debug!(session = session.id, "http: connection idle; closing");
                        let now = tokio::time::Instant::now();
                        closing = Some((now, now + STOP_GRACE));
                        connection.as_mut().graceful_shutdown();
                    }
                }
                _ = cutoff, if is_closing => {
                    tracing::debug!(session = session.id, "http: connection did not close in time; dropped");
                    break Ok(());
                }
            }
        };
        if let Err(e) = result {
            // Header too large, head timeout, protocol errors, resets: the
            // client is gone or was turned away; nothing for the access log.
            tracing::debug!(session = session.id, "http: connection ended: {e}");
        }
    }

    /// One request, through the plain-HTTP policy, the per-address request
    /// limit and the router, with the access log around it.
    async fn respond(
        &self,
        mut req: Request<Body>,
        client: ClientInfo,
        session: u64,
        activity: Arc<limit::Activity>,
        stalled: Option<Arc<std::sync::atomic::AtomicBool>>,
    ) -> Response<Body> {
        let settings = &self.inner.settings;
        let busy = activity.begin();
        let entry = log::Entry::start(&req, client, session);
        req.extensions_mut().insert(client);
        let served_plain = !client.trusted_transport(settings.allow_plaintext_on_loopback)
            && !plain::is_served_plain(req.uri().path());
        let (response, permit) = if served_plain {
            (plain::redirect(&req, settings), None)
        } else {
            match self.inner.requests.try_acquire(client.peer.ip()) {
                Ok(permit) => {
                    let slot = Arc::new(std::sync::Mutex::new(Some(permit)));
                    req.extensions_mut().insert(LongPoll {
                        slot: slot.clone(),
                        limiter: self.inner.long_polls.clone(),
                        ip: client.peer.ip(),
                    });
                    let resp = match self.inner.router.clone().oneshot(req).await {
                        Ok(r) => r,
                        Err(never) => match never {},
                    };
                    (resp, Some(slot))
                }
                Err(_) => (limit::too_many_requests(), None),
            }
        };
        // A body that stalled past `body_read_timeout` is answered 408
        // whatever the handler made of its read error, and the connection
        // goes (the rest of that body may still come).
        let response = match stalled {
            Some(s) if s.load(std::sync::atomic::Ordering::Relaxed) => {
                tracing::info!(session, "http: request body stalled; 408");
                let mut r = Response::new(Body::from("Request body timed out\n"));
                *r.status_mut() = StatusCode::REQUEST_TIMEOUT;
                let h = r.headers_mut();
                h.insert(http::header::CONNECTION, HeaderValue::from_static("close"));
                h.insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                r
            }
            _ => response,
        };
        entry.finish(response, (busy, permit))
    }
}

/// A request's share of the per-address request limit, which a handler
/// that is about to wait a long time for a change (ActiveSync Ping,
/// hanging Sync) trades for a share of the long-poll limit: see
/// [`LongPoll::park`]. In every request's extensions.
#[derive(Clone)]
pub struct LongPoll {
    slot: Arc<std::sync::Mutex<Option<outpost_net::ConnPermit>>>,
    limiter: ConnLimiter,
    ip: std::net::IpAddr,
}

impl LongPoll {
    /// Moves the request from `requests_per_ip` to `long_polls_per_ip`.
    /// False (and the request keeps its ordinary share) when the client
    /// already holds as many long polls as allowed.
    pub fn park(&self) -> bool {
        match self.limiter.try_acquire(self.ip) {
            Ok(p) => {
                *self.slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
                true
            }
            Err(_) => false,
        }
    }
}

/// The 500 answered when a handler panics. The panic message goes to the
/// log only.
#[derive(Clone, Copy)]
struct PanicResponse;

impl tower_http::catch_panic::ResponseForPanic for PanicResponse {
    type ResponseBody = Body;

    fn response_for_panic(
        &mut self,
        err: Box<dyn std::any::Any + Send + 'static>,
    ) -> Response<Body> {
        let what = err
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| err.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        tracing::error!("http: handler panicked: {what}");
        text_response(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error\n")
    }
}

/// A small `text/plain` answer, for the stack's own errors.
pub(crate) fn text_response(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut resp = Response::new(Body::from(text));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}
