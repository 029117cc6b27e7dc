//! Per-connection activity (for the idle timeout) and the answer when a
//! client address has too many requests in flight.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use http::{HeaderValue, Response, StatusCode};
use tokio::time::Instant;

/// Requests in flight on one connection and when the last one ended.
pub(crate) struct Activity {
    in_flight: AtomicUsize,
    /// When the last request ended, and whether there was one.
    last: Mutex<(Instant, bool)>,
    /// Woken when a request ends (the idle deadline moves).
    pub(crate) ended: tokio::sync::Notify,
}

impl Activity {
    pub(crate) fn new() -> Activity {
        Activity {
            in_flight: AtomicUsize::new(0),
            last: Mutex::new((Instant::now(), false)),
            ended: tokio::sync::Notify::new(),
        }
    }

    /// A request started; the connection is busy until the guard is
    /// dropped (when its response body has been sent or abandoned).
    pub(crate) fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        Busy(self.clone())
    }

    /// How long the connection may sit without a request in flight: `first`
    /// until its first request, `idle` after.
    fn allowed(&self, first: Duration, idle: Duration) -> (Instant, Duration) {
        let (last, served) = *self.last.lock().unwrap();
        (last, if served { idle } else { first })
    }

    /// When the connection would become idle (see [`Self::is_idle`]) if
    /// nothing happens before; a busy connection is checked again later.
    pub(crate) fn idle_deadline(&self, first: Duration, idle: Duration) -> Instant {
        let (last, allowed) = self.allowed(first, idle);
        let now = Instant::now();
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return now + allowed;
        }
        (last + allowed).max(now + Duration::from_millis(10))
    }

    /// Requests being answered now.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// When the last request ended (or the connection started).
    pub(crate) fn last_end(&self) -> Instant {
        self.last.lock().unwrap().0
    }

    /// No request in flight, and none for `first` since the connection
    /// started (no request yet) or `idle` since the last one ended.
    pub(crate) fn is_idle(&self, first: Duration, idle: Duration) -> bool {
        let (last, allowed) = self.allowed(first, idle);
        self.in_flight.load(Ordering::SeqCst) == 0 && last.elapsed() >= allowed
    }
}

/// Held while a request is being answered.
pub(crate) struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        *self.0.last.lock().unwrap() = (Instant::now(), true);
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.0.ended.notify_one();
    }
}

/// Seconds a client over its concurrent-request limit is asked to wait.
const RETRY_AFTER_SECONDS: &str = "1";

/// 429 (RFC 6585 §4) for a client address with too many requests in
/// flight: it is this client that is over its share, not the server that is
/// down, so not 503.
pub(crate) fn too_many_requests() -> Response<Body> {
    let mut resp = crate::text_response(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many requests from your address at once, try again shortly\n",
    );
    resp.headers_mut().insert(
        http::header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER_SECONDS),
    );
    resp
}
