//! Autodiscover: how Exchange clients (Outlook, iOS, Android mail apps)
//! find the ActiveSync and EWS URLs from an email address.
//!
//! Implemented forms:
//!
//! - POX v1 (MS-OXDSCLI): `POST /autodiscover/autodiscover.xml`, behind
//!   the login, answering only for the authenticated user's own
//!   addresses. The `mobilesync` response schema carries the ActiveSync
//!   URL; the `outlook` schema carries EXCH/EXPR/WEB blocks pointing at EWS
//!   and ActiveSync and IMAP/SMTP blocks for the configured listeners.
//!   A GET answers an Error/600 document, as Exchange does.
//! - JSON v2: `GET /autodiscover/autodiscover.json?Email=..&Protocol=..`
//!   and `/autodiscover/autodiscover.json/v1.0/{email}?Protocol=..`,
//!   without login (it returns this server's URLs for any address, so it
//!   tells nothing about which addresses exist).
//!
//! Paths are matched case-insensitively: iOS asks
//! `/Autodiscover/Autodiscover.xml`, Outlook the lower-case form.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::Router;
use http::{header, HeaderValue, Method, Response, StatusCode};
use http_body_util::BodyExt;
use outpost_net::AuthUser;
use tower::ServiceExt;

pub mod pox;
#[cfg(test)]
mod tests;

pub use pox::{answer_pox, PoxAnswer};

/// Largest POX request body read; a real one is a few hundred bytes.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// The ActiveSync path (served by the ActiveSync crate).
pub const ACTIVESYNC_PATH: &str = "/Microsoft-Server-ActiveSync";
/// The EWS path.
pub const EWS_PATH: &str = "/EWS/Exchange.asmx";
/// The POX path, as announced in JSON v2 answers.
pub const POX_PATH: &str = "/autodiscover/autodiscover.xml";

/// A mail listener announced in the `outlook` schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailEndpoint {
    pub port: u16,
    /// Implicit TLS (993/465) rather than STARTTLS (143/587).
    pub implicit_tls: bool,
}

/// What the answers point at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Host name clients connect to (`hostname` of the config).
    pub hostname: String,
    /// `https://host[:port]` without a trailing slash.
    pub public_url: String,
    /// IMAP listener announced, if any (implicit TLS preferred).
    pub imap: Option<MailEndpoint>,
    /// Submission listener announced, if any (implicit TLS preferred).
    pub smtp: Option<MailEndpoint>,
}

impl Settings {
    /// The public URL from the host name and the HTTPS port (`:443`
    /// omitted).
    pub fn public_url_for(hostname: &str, https_port: u16) -> String {
        if https_port == 443 {
            format!("https://{hostname}")
        } else {
            format!("https://{hostname}:{https_port}")
        }
    }

    pub fn activesync_url(&self) -> String {
        format!("{}{ACTIVESYNC_PATH}", self.public_url)
    }

    pub fn ews_url(&self) -> String {
        format!("{}{EWS_PATH}", self.public_url)
    }

    pub fn pox_url(&self) -> String {
        format!("{}{POX_PATH}", self.public_url)
    }
}

/// The user's own addresses, from the directory (implemented by the
/// binary; tests use a fake).
#[async_trait::async_trait]
pub trait Accounts: Send + Sync {
    /// Every address of the principal, and its display name.
    async fn addresses(&self, user: &AuthUser) -> Result<(String, Vec<String>), String>;
}

/// True for the paths this crate answers (any letter case).
pub fn handles(path: &str) -> bool {
    let p = path.to_ascii_lowercase();
    p == "/autodiscover/autodiscover.xml"
        || p == "/autodiscover/autodiscover.json"
        || p.starts_with("/autodiscover/autodiscover.json/")
}

/// The Autodiscover router. Every path it does not handle is 404, so the
/// binary can mount it as its fallback.
pub fn router(
    settings: Settings,
    accounts: Arc<dyn Accounts>,
    basic: outpost_http::BasicAuth,
) -> Router {
    let settings = Arc::new(settings);
    let s = settings.clone();
    let pox = Router::new().fallback(move |req: Request| {
        let s = s.clone();
        let accounts = accounts.clone();
        async move { pox_handler(&s, accounts.as_ref(), req).await }
    });
    let pox = outpost_http::require_user(pox, basic);
    Router::new().fallback(move |req: Request| {
        let settings = settings.clone();
        let pox = pox.clone();
        async move {
            let path = req.uri().path().to_ascii_lowercase();
            if path == "/autodiscover/autodiscover.xml" {
                if req.method() == Method::GET || req.method() == Method::HEAD {
                    // Exchange answers a GET with the Error/600 document,
                    // without asking for a login.
                    return xml_response(pox::error_document(600, "Invalid Request"));
                }
                return match pox.oneshot(req).await {
                    Ok(r) => r,
                    Err(never) => match never {},
                };
            }
            if path == "/autodiscover/autodiscover.json"
                || path.starts_with("/autodiscover/autodiscover.json/")
            {
                return json_handler(&settings, &req);
            }
            text(StatusCode::NOT_FOUND, "Not found\n")
        }
    })
}

async fn pox_handler(settings: &Settings, accounts: &dyn Accounts, req: Request) -> Response<Body> {
    if req.method() != Method::POST {
        return xml_response(pox::error_document(600, "Invalid Request"));
    }
    let Some(user) = req.extensions().get::<AuthUser>().cloned() else {
        return text(StatusCode::UNAUTHORIZED, "Log in\n");
    };
    let body = match http_body_util::Limited::new(req.into_body(), MAX_REQUEST_BYTES)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => return text(StatusCode::PAYLOAD_TOO_LARGE, "Request too large\n"),
    };
    let (name, addresses) = match accounts.addresses(&user).await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(user = %user.login, "autodiscover: directory: {e}");
            return text(StatusCode::SERVICE_UNAVAILABLE, "Try again later\n");
        }
    };
    match answer_pox(settings, &body, &name, &addresses) {
        PoxAnswer::Xml(doc) => xml_response(doc),
    }
}

fn json_handler(settings: &Settings, req: &Request) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed\n");
    }
    let protocol = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| k.eq_ignore_ascii_case("protocol"))
        .map(|(_, v)| v.to_string())
        .unwrap_or_default();
    let (status, value) = json_answer(settings, &protocol);
    let mut resp = Response::new(Body::from(value.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}

/// The JSON v2 answer for a `Protocol` value (case-insensitive).
pub fn json_answer(settings: &Settings, protocol: &str) -> (StatusCode, serde_json::Value) {
    let (name, url) = match protocol.to_ascii_lowercase().as_str() {
        "activesync" => ("ActiveSync", settings.activesync_url()),
        "ews" => ("Ews", settings.ews_url()),
        "autodiscoverv1" => ("AutodiscoverV1", settings.pox_url()),
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                serde_json::json!({
                    "ErrorCode": "InvalidProtocol",
                    "ErrorMessage": format!(
                        "The given protocol value '{}' is invalid. Supported values are 'ActiveSync,AutodiscoverV1,Ews'",
                        protocol.chars().take(64).collect::<String>()
                    ),
                }),
            )
        }
    };
    (
        StatusCode::OK,
        serde_json::json!({ "Protocol": name, "Url": url }),
    )
}

fn xml_response(doc: String) -> Response<Body> {
    let mut resp = Response::new(Body::from(doc));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    resp
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}
