//! HTTP/1.1 served without hyper, for connections that spend their life
//! waiting: a phone's ActiveSync connection holds a Ping (or a hanging
//! Sync) for up to an hour, sends the next, and holds that one.
//!
//! hyper keeps an 8 KiB read buffer and an 8 KiB write buffer in every
//! HTTP/1.1 connection from its start to its end, and a request body it
//! read in one piece pins the read buffer it was cut from. Here nothing is
//! buffered while a request is being answered: the request head is parsed
//! from a buffer that is freed once the request is built, the body is
//! copied out at its own size, and the response is written from a buffer
//! that lives only while it is written. A held Ping costs the TLS state and
//! what the Ping itself keeps (docs/benchmarks.md, "ActiveSync").
//!
//! Served here: requests on the paths the binary names
//! ([`crate::HttpServer::with_long_poll_paths`]) in HTTP/1.1 with no body
//! or a body of known length up to [`MAX_BODY`]. The first request that is
//! anything else (another path, a chunked or larger body, `Expect`,
//! `Upgrade`, HTTP/1.0, a head this parser does not take) hands the
//! connection and what was read of it to hyper, which serves it from then
//! on as if it had read every byte itself. What hyper does for each
//! connection is done the same way here: the request-head size limit (by
//! handing over: hyper answers 431), the head timeout, keep-alive,
//! pipelining, dropping the handler when the client closes while it is
//! answered, and a graceful stop.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body::Body as _;
use http_body_util::BodyExt as _;
use outpost_net::Conn;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::limit::Activity;
use crate::{ClientInfo, HttpServer, CLOSE_LINGER, STOP_GRACE};

/// Largest request body read here; a longer one goes to hyper (which
/// streams it to the handler under the route's own limit).
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// Header fields a request served here may have.
const MAX_HEADERS: usize = 64;

/// How much is read from the connection at a time.
const READ_CHUNK: usize = 2048;

/// A response body of known length up to this is written with its head in
/// one piece (one TLS record for a Ping's answer).
const GATHER: usize = 16 * 1024;

/// Bytes a client may send ahead (pipelined) while its request is being
/// answered; reading stops beyond, as it does in hyper.
const AHEAD: usize = 64 * 1024;

/// How the lean part of a connection ended.
pub(crate) enum End {
    /// Closed (by either side, a timeout or a stop): nothing more to do.
    Closed,
    /// The next request is not one for this codec: hyper serves the rest
    /// of the connection, starting with these bytes already read.
    HandOver(Vec<u8>),
}

/// What [`read_head`] found.
enum Head {
    /// A complete request head of this many bytes at the start of the
    /// buffer, read into a request if it is one for this codec.
    Complete(usize, Option<Box<Parsed>>),
    /// A head this codec does not take (too long, too many fields, not
    /// what httparse reads): hyper is to judge it.
    NotMine,
    /// The client closed, timed out or the server is stopping.
    Closed,
}

/// The request line and fields, owned.
struct Parsed {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body_len: usize,
    close: bool,
}

/// Serves requests on `conn` while they are ones for this codec.
pub(crate) async fn serve(
    server: &HttpServer,
    conn: &mut Conn,
    client: ClientInfo,
    session: u64,
    stop: &mut watch::Receiver<bool>,
    activity: &Arc<Activity>,
    lean_path: fn(&str) -> bool,
) -> End {
    let settings = &server.inner.settings;
    let max_head = settings.max_header_size.max(crate::MIN_HEADER_SIZE);
    let mut buf: Vec<u8> = Vec::new();
    loop {
        // The head timeout counts from when the server starts waiting, so
        // it also bounds a kept-alive connection's wait (as in hyper).
        let deadline = Instant::now() + settings.header_read_timeout;
        // Reading a head and writing a response are boxed while they run:
        // the connection's future keeps no room for them while a request
        // waits.
        let (head_len, parsed) = match Box::pin(read_head(
            conn, &mut buf, max_head, deadline, stop, lean_path,
        ))
        .await
        {
            Head::Complete(n, Some(p)) => (n, *p),
            Head::Complete(_, None) | Head::NotMine => return End::HandOver(buf),
            Head::Closed => return End::Closed,
        };
        // The body, at its own size.
        let end = head_len + parsed.body_len;
        while buf.len() < end {
            let want = end - buf.len();
            if !read_more(conn, &mut buf, want, deadline).await {
                return End::Closed;
            }
        }
        let body = if parsed.body_len == 0 {
            Body::empty()
        } else {
            Body::from(Bytes::copy_from_slice(&buf[head_len..end]))
        };
        buf.drain(..end);
        if buf.is_empty() {
            // Nothing read ahead: the buffer's memory goes while the
            // request is answered.
            buf = Vec::new();
        }
        let head_only = parsed.method == Method::HEAD;
        let close = parsed.close;
        let mut req = Request::new(body);
        *req.method_mut() = parsed.method;
        *req.uri_mut() = parsed.uri;
        *req.version_mut() = http::Version::HTTP_11;
        *req.headers_mut() = parsed.headers;

        let mut answer = Box::pin(server.respond(req, client, session, activity.clone(), None));
        let mut stopping = *stop.borrow();
        let mut grace = Instant::now() + STOP_GRACE;
        let response = loop {
            let mut probe = [0u8; 64];
            let room = buf.len() < AHEAD;
            tokio::select! {
                r = &mut answer => break r,
                // Watching the connection while the request is answered: a
                // client that closed takes its request with it (the handler
                // is dropped, as hyper does); what it sends ahead is kept
                // for the next head.
                n = conn.read(&mut probe), if room => match n {
                    Ok(0) | Err(_) => return End::Closed,
                    Ok(n) => buf.extend_from_slice(&probe[..n]),
                },
                _ = stop.changed(), if !stopping => {
                    stopping = true;
                    grace = Instant::now() + STOP_GRACE;
                }
                _ = tokio::time::sleep_until(grace), if stopping => return End::Closed,
            }
        };
        drop(answer);
        let keep = match Box::pin(write_response(
            conn,
            response,
            head_only,
            close || stopping,
            settings.idle_timeout,
        ))
        .await
        {
            Ok(keep) => keep,
            Err(e) => {
                tracing::debug!(session, "http: lean connection write failed: {e}");
                return End::Closed;
            }
        };
        if !keep || stopping || *stop.borrow() {
            let _ = tokio::time::timeout(CLOSE_LINGER, conn.shutdown()).await;
            return End::Closed;
        }
    }
}

/// Reads until `buf` starts with a complete request head.
async fn read_head(
    conn: &mut Conn,
    buf: &mut Vec<u8>,
    max_head: usize,
    deadline: Instant,
    stop: &mut watch::Receiver<bool>,
    lean_path: fn(&str) -> bool,
) -> Head {
    loop {
        if buf.is_empty() && *stop.borrow() {
            // Stopping, and no request begun: close.
            return Head::Closed;
        }
        if !buf.is_empty() {
            let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut req = httparse::Request::new(&mut fields);
            match req.parse(buf) {
                Ok(httparse::Status::Complete(n)) if n <= max_head => {
                    return Head::Complete(n, request(&req, lean_path).map(Box::new))
                }
                Ok(httparse::Status::Complete(_)) => return Head::NotMine,
                Ok(httparse::Status::Partial) if buf.len() >= max_head => return Head::NotMine,
                Ok(httparse::Status::Partial) => {}
                Err(_) => return Head::NotMine,
            }
        }
        let idle = buf.is_empty();
        tokio::select! {
            more = read_more(conn, buf, READ_CHUNK, deadline) => {
                if !more {
                    return Head::Closed;
                }
            }
            // Between requests a stop closes at once; a head being sent
            // is waited for (its request will be answered, then closed).
            _ = stop.changed(), if idle => return Head::Closed,
        }
    }
}

/// Reads up to `want` more bytes onto `buf` before `deadline`; false when
/// the client closed, the read failed or the time ran out.
async fn read_more(conn: &mut Conn, buf: &mut Vec<u8>, want: usize, deadline: Instant) -> bool {
    buf.reserve(want.min(READ_CHUNK));
    let before = buf.len();
    let spare = buf.capacity() - before;
    let read = async {
        let mut limited = (&mut *conn).take(spare as u64);
        limited.read_buf(buf).await
    };
    match tokio::time::timeout_at(deadline, read).await {
        Ok(Ok(n)) => n > 0 && buf.len() > before,
        _ => false,
    }
}

/// The parsed head as a request, when it is one for this codec.
fn request(req: &httparse::Request<'_, '_>, lean_path: fn(&str) -> bool) -> Option<Parsed> {
    if req.version != Some(1) {
        return None;
    }
    let method = Method::from_bytes(req.method?.as_bytes()).ok()?;
    let uri: Uri = req.path?.parse().ok()?;
    if !lean_path(uri.path()) {
        return None;
    }
    let mut headers = HeaderMap::with_capacity(req.headers.len());
    let mut body_len: Option<usize> = None;
    let mut close = false;
    for f in req.headers.iter() {
        let name = HeaderName::from_bytes(f.name.as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(f.value).ok()?;
        if name == http::header::TRANSFER_ENCODING
            || name == http::header::EXPECT
            || name == http::header::UPGRADE
        {
            return None;
        }
        if name == http::header::CONTENT_LENGTH {
            let s = value.to_str().ok()?.trim();
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || body_len.is_some() {
                return None;
            }
            let n: usize = s.parse().ok()?;
            if n > MAX_BODY {
                return None;
            }
            body_len = Some(n);
        }
        if name == http::header::CONNECTION {
            let v = value.to_str().ok()?;
            for token in v.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    close = true;
                } else if token.eq_ignore_ascii_case("upgrade") {
                    return None;
                }
            }
        }
        headers.append(name, value);
    }
    Some(Parsed {
        method,
        uri,
        headers,
        body_len: body_len.unwrap_or(0),
        close,
    })
}

/// Writes `resp`; whether the connection may carry another request.
async fn write_response(
    conn: &mut Conn,
    resp: Response<Body>,
    head_only: bool,
    close: bool,
    timeout: Duration,
) -> std::io::Result<bool> {
    let (parts, mut body) = resp.into_parts();
    let status = parts.status;
    let mut close = close
        || parts
            .headers
            .get_all(http::header::CONNECTION)
            .iter()
            .any(|v| {
                v.to_str()
                    .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
            });
    // RFC 9112 §6.3: no body for 1xx, 204 and 304.
    let bodiless = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let exact = body.size_hint().exact();
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in parts.headers.iter() {
        if name == http::header::CONTENT_LENGTH
            || name == http::header::TRANSFER_ENCODING
            || name == http::header::CONNECTION
        {
            continue;
        }
        put_field(&mut out, name.as_str().as_bytes(), value.as_bytes());
    }
    if !parts.headers.contains_key(http::header::DATE) {
        put_field(
            &mut out,
            b"date",
            httpdate::fmt_http_date(std::time::SystemTime::now()).as_bytes(),
        );
    }
    let chunked = !bodiless && exact.is_none();
    if !bodiless {
        match exact {
            Some(n) => put_field(&mut out, b"content-length", n.to_string().as_bytes()),
            // A HEAD answer of unknown length says nothing of it.
            None if head_only => {}
            None => put_field(&mut out, b"transfer-encoding", b"chunked"),
        }
    }
    if close {
        put_field(&mut out, b"connection", b"close");
    }
    out.extend_from_slice(b"\r\n");

    if bodiless || head_only {
        // The body is not sent; dropping it ends the request (and its
        // access-log line).
        drop(body);
        write(conn, &out, timeout).await?;
        conn.flush().await?;
        return Ok(!close);
    }
    let gather = exact.is_some_and(|n| n as usize <= GATHER);
    if !gather {
        write(conn, &std::mem::take(&mut out), timeout).await?;
    }
    let mut sent: u64 = 0;
    loop {
        let frame = match body.frame().await {
            None => break,
            Some(Ok(f)) => f,
            Some(Err(e)) => {
                // Mid-body: nothing to do but close, so the client sees a
                // short response rather than a wrong one.
                tracing::debug!("http: response body failed: {e}");
                return Ok(false);
            }
        };
        let Ok(data) = frame.into_data() else {
            // Trailers: not sent over HTTP/1.1.
            continue;
        };
        if data.is_empty() {
            continue;
        }
        sent += data.len() as u64;
        if exact.is_some_and(|n| sent > n) {
            tracing::warn!("http: response body longer than its length; connection closed");
            return Ok(false);
        }
        if gather {
            out.extend_from_slice(&data);
        } else if chunked {
            let mut piece = Vec::with_capacity(data.len() + 12);
            piece.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
            piece.extend_from_slice(&data);
            piece.extend_from_slice(b"\r\n");
            write(conn, &piece, timeout).await?;
        } else {
            write(conn, &data, timeout).await?;
        }
    }
    drop(body);
    if exact.is_some_and(|n| sent != n) {
        tracing::warn!("http: response body shorter than its length; connection closed");
        close = true;
    }
    if gather {
        write(conn, &out, timeout).await?;
    } else if chunked {
        write(conn, b"0\r\n\r\n", timeout).await?;
    }
    conn.flush().await?;
    Ok(!close)
}

/// Writes all of `bytes`, failing when the client takes longer than
/// `timeout` to take them (it does not read its response).
async fn write(conn: &mut Conn, bytes: &[u8], timeout: Duration) -> std::io::Result<()> {
    match tokio::time::timeout(timeout, conn.write_all(bytes)).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "client does not read its response",
        )),
    }
}

fn put_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A whole head through [`request`].
    fn parse(head: &[u8], lean_path: fn(&str) -> bool) -> Option<Parsed> {
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut fields);
        match req.parse(head) {
            Ok(httparse::Status::Complete(_)) => request(&req, lean_path),
            _ => None,
        }
    }

    fn all(_: &str) -> bool {
        true
    }

    fn none(_: &str) -> bool {
        false
    }

    #[test]
    fn takes_simple_requests_and_leaves_the_rest_to_hyper() {
        let p = parse(
            b"POST /a?b=c HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n",
            all,
        )
        .unwrap();
        assert_eq!(p.method, Method::POST);
        assert_eq!(p.uri.path(), "/a");
        assert_eq!(p.uri.query(), Some("b=c"));
        assert_eq!(p.body_len, 3);
        assert!(!p.close);
        assert!(
            parse(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", all)
                .unwrap()
                .close
        );
        // Not this codec's: another path, HTTP/1.0, chunked, Expect,
        // Upgrade, a body too long, two lengths, a length that is not one.
        for head in [
            &b"GET / HTTP/1.0\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
            b"GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 70000\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
        ] {
            assert!(
                parse(head, all).is_none(),
                "{}",
                String::from_utf8_lossy(head)
            );
        }
        assert!(parse(b"GET / HTTP/1.1\r\n\r\n", none).is_none());
    }
}
