//! The access log: one structured line per request, written when its
//! response has been sent (or abandoned), with the target
//! `outpost::http::access`:
//!
//! ```text
//! INFO outpost::http::access: request session=12 peer=192.0.2.7:50312 version=HTTP/2.0 method=PROPFIND path=/dav/calendars/alice@example.org/ status=207 bytes=1843 ms=4 user=alice@example.org
//! ```
//!
//! The query string is never logged (tokens and passwords travel there in
//! some protocols), nor any header or body. `user` is the login when the
//! request was authenticated ([`crate::auth::require_user`]), `-` when not;
//! `complete=false` says the client went away before the whole body was
//! sent.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, Version};
use http_body::{Body as _, Frame, SizeHint};
use outpost_net::AuthUser;

use crate::ClientInfo;

/// Longest path written to the log; the rest is cut (a path is the
/// client's to choose, a log line should stay a line).
const MAX_LOGGED_PATH: usize = 512;

/// What is known about a request when it arrives.
pub(crate) struct Entry {
    session: u64,
    client: ClientInfo,
    method: Method,
    path: String,
    version: Version,
    started: Instant,
}

impl Entry {
    pub(crate) fn start<B>(req: &Request<B>, client: ClientInfo, session: u64) -> Entry {
        let path = req.uri().path();
        let path = match path.char_indices().nth(MAX_LOGGED_PATH) {
            Some((i, _)) => format!("{}...", &path[..i]),
            None => path.to_string(),
        };
        Entry {
            session,
            client,
            method: req.method().clone(),
            path,
            version: req.version(),
            started: Instant::now(),
        }
    }

    /// Wraps the response body so that the line is written when it ends.
    /// `guard` is dropped at the same moment (the request's share of the
    /// limits is held until then).
    pub(crate) fn finish<G: Send + 'static>(
        self,
        response: Response<Body>,
        guard: G,
    ) -> Response<Body> {
        let user = response
            .extensions()
            .get::<AuthUser>()
            .map(|u| u.login.clone());
        let (parts, body) = response.into_parts();
        let logged = LoggedBody {
            inner: body,
            line: Some(Line {
                entry: self,
                status: parts.status,
                user,
                bytes: 0,
            }),
            guard: Some(Box::new(guard)),
        };
        Response::from_parts(parts, Body::new(logged))
    }
}

struct Line {
    entry: Entry,
    status: StatusCode,
    user: Option<String>,
    bytes: u64,
}

impl Line {
    fn write(&self, complete: bool) {
        let e = &self.entry;
        tracing::info!(
            target: "outpost::http::access",
            session = e.session,
            peer = %e.client.peer,
            tls = e.client.secure,
            version = ?e.version,
            method = %e.method,
            path = %e.path,
            status = self.status.as_u16(),
            bytes = self.bytes,
            ms = e.started.elapsed().as_millis() as u64,
            user = %self.user.as_deref().unwrap_or("-"),
            complete,
            "request"
        );
    }
}

struct LoggedBody {
    inner: Body,
    line: Option<Line>,
    guard: Option<Box<dyn Send>>,
}

impl LoggedBody {
    fn done(&mut self, complete: bool) {
        if let Some(line) = self.line.take() {
            line.write(complete);
        }
        self.guard = None;
    }
}

impl http_body::Body for LoggedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(line)) = (frame.data_ref(), this.line.as_mut()) {
                    line.bytes += data.len() as u64;
                }
            }
            Poll::Ready(Some(Err(_))) => this.done(false),
            Poll::Ready(None) => this.done(true),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        // An empty body may never be polled (hyper looks at is_end_stream);
        // that is a complete response all the same.
        let complete = self.inner.is_end_stream();
        self.done(complete);
    }
}
