//! HTTP Basic authentication (RFC 7617) through the one auth layer
//! ([`outpost_net::AuthLayer`]): the same directory check and the same
//! failed-login throttle as IMAP, POP3, SMTP and ManageSieve.
//!
//! The binary wraps each protocol router that needs a login:
//!
//! ```ignore
//! let dav = outpost_http::require_user(dav_router, basic.clone());
//! ```
//!
//! On success the [`AuthUser`] is in the request's extensions
//! (`req.extensions().get::<AuthUser>()`). Otherwise the answer is:
//!
//! - 401 with `WWW-Authenticate: Basic realm="<hostname>", charset="UTF-8"`
//!   when credentials are absent, malformed or wrong (Basic is the only
//!   scheme offered, because it is the only one implemented);
//! - 429 with `Retry-After` when the throttle blocks the client address or
//!   the account (the password was not checked);
//! - 503 with `Retry-After` when the directory could not answer;
//! - 403 on a plaintext connection that is not an allowed loopback one:
//!   credentials are not asked for where they would cross the network in
//!   the clear (the plain listener redirects such requests to HTTPS before
//!   they get here; this guards routes served on plain HTTP, such as
//!   `/.well-known`).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::Router;
use http::{HeaderValue, Response, StatusCode};
use outpost_net::auth::basic;
use outpost_net::{AuthLayer, AuthUser, LoginOutcome};

use crate::ClientInfo;

/// Seconds a client is asked to wait when the directory is unavailable.
const UNAVAILABLE_RETRY_AFTER: &str = "30";

/// What [`require_user`] needs: the shared auth layer, the realm shown to
/// users, and whether plaintext loopback clients may log in.
#[derive(Clone)]
pub struct BasicAuth {
    layer: AuthLayer,
    challenge: HeaderValue,
    allow_plaintext_on_loopback: bool,
}

impl BasicAuth {
    /// `realm` is normally the server's host name; `allow_plaintext_on_loopback`
    /// is the `[http]` setting of the same name.
    pub fn new(layer: AuthLayer, realm: &str, allow_plaintext_on_loopback: bool) -> BasicAuth {
        // A realm is a quoted-string: drop what would end or escape it.
        let realm: String = realm
            .chars()
            .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
            .collect();
        let challenge =
            HeaderValue::try_from(format!("Basic realm=\"{realm}\", charset=\"UTF-8\""))
                .unwrap_or_else(|_| {
                    HeaderValue::from_static("Basic realm=\"outpost\", charset=\"UTF-8\"")
                });
        BasicAuth {
            layer,
            challenge,
            allow_plaintext_on_loopback,
        }
    }
}

/// Wraps every route of `router` (its fallback included) so that it runs
/// only for an authenticated user, whose [`AuthUser`] it then finds in the
/// request's extensions.
pub fn require_user<S>(router: Router<S>, auth: BasicAuth) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router.layer(axum::middleware::from_fn_with_state(auth, check))
}

async fn check(State(auth): State<BasicAuth>, mut req: Request, next: Next) -> Response<Body> {
    let client = req.extensions().get::<ClientInfo>().copied();
    let Some(client) = client.filter(|c| c.trusted_transport(auth.allow_plaintext_on_loopback))
    else {
        return crate::text_response(StatusCode::FORBIDDEN, "Log in over HTTPS\n");
    };
    let credentials = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| basic::parse(v).ok());
    let Some(credentials) = credentials else {
        return unread_body_answered(req, challenge(&auth)).await;
    };
    match auth
        .layer
        .login(client.peer.ip(), &credentials.login, &credentials.password)
        .await
    {
        LoginOutcome::Success(user) => {
            req.extensions_mut().insert(user.clone());
            let mut resp = next.run(req).await;
            // For the access log, which sits outside this layer.
            resp.extensions_mut().insert::<AuthUser>(user);
            resp
        }
        LoginOutcome::Failed => {
            tracing::info!(
                peer = %client.peer,
                login = ?credentials.login,
                "http: authentication failed"
            );
            unread_body_answered(req, challenge(&auth)).await
        }
        LoginOutcome::Blocked => {
            let secs = auth.layer.throttle().config().block_for.as_secs().max(1);
            let mut resp = crate::text_response(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many failed logins, try again later\n",
            );
            resp.headers_mut()
                .insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
            unread_body_answered(req, resp).await
        }
        LoginOutcome::Unavailable(e) => {
            tracing::warn!(peer = %client.peer, "http: cannot check login: {e}");
            let mut resp = crate::text_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "Authentication is unavailable, try again later\n",
            );
            resp.headers_mut().insert(
                http::header::RETRY_AFTER,
                HeaderValue::from_static(UNAVAILABLE_RETRY_AFTER),
            );
            unread_body_answered(req, resp).await
        }
    }
}

/// Most of a refused request's body read (and dropped) to keep the
/// connection.
const DRAIN_MAX: usize = 256 * 1024;
/// How long reading it may take.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// `resp` for a request answered without reading its body (a 401 before
/// the handler runs). HTTP/1.1 can only reuse the connection once the body
/// is read: left unread, hyper closes the connection after the answer,
/// and a client that sent its next request on it meanwhile (the usual
/// request, 401, request with credentials of Python's requests/niquests)
/// sees "connection closed without response". So a small body is read
/// here; a larger or slower one gets `Connection: close` said, not done
/// silently.
async fn unread_body_answered(req: Request, mut resp: Response<Body>) -> Response<Body> {
    let drained =
        tokio::time::timeout(DRAIN_TIME, axum::body::to_bytes(req.into_body(), DRAIN_MAX))
            .await
            .is_ok_and(|r| r.is_ok());
    if !drained {
        resp.headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

fn challenge(auth: &BasicAuth) -> Response<Body> {
    let mut resp = crate::text_response(StatusCode::UNAUTHORIZED, "Authentication required\n");
    resp.headers_mut()
        .insert(http::header::WWW_AUTHENTICATE, auth.challenge.clone());
    resp
}
