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
    last: Mutex<Instant>,
}

impl Activity {
    pub(crate) fn new() -> Activity {
        Activity {
            in_flight: AtomicUsize::new(0),
            last: Mutex::new(Instant::now()),
        }
    }

    /// A request started; the connection is busy until the guard is
    /// dropped (when its response body has been sent or abandoned).
    pub(crate) fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        Busy(self.clone())
    }

    /// When the connection would have been idle for `idle`, if nothing
    /// happens before (a busy connection is checked again after `idle`).
    pub(crate) fn idle_deadline(&self, idle: Duration) -> Instant {
        let last = *self.last.lock().unwrap();
        let now = Instant::now();
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return now + idle;
        }
        (last + idle).max(now + Duration::from_millis(10))
    }

    pub(crate) fn is_idle_for(&self, idle: Duration) -> bool {
        self.in_flight.load(Ordering::SeqCst) == 0 && self.last.lock().unwrap().elapsed() >= idle
    }
}

/// Held while a request is being answered.
pub(crate) struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        *self.0.last.lock().unwrap() = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
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
