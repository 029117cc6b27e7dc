//! Autodiscover: how mail clients (Outlook, iOS/macOS Mail, Android mail
//! apps, Thunderbird) find the ActiveSync, EWS, IMAP, SMTP and DAV
//! endpoints from an email address.
//!
//! Implemented forms:
//!
//! - POX v1 (MS-OXDSCLI): `POST /autodiscover/autodiscover.xml`, behind
//!   the login, answering only for the authenticated user's own
//!   addresses. The `mobilesync` response schema carries the ActiveSync
//!   URL; the `outlook` schema carries EXCH/EXPR/WEB blocks pointing at EWS
//!   and ActiveSync and IMAP/SMTP blocks for the configured listeners.
//!   A GET answers an Error/600 document, as Exchange does.
//! - SOAP ([MS-OXWSADISC]): `POST /autodiscover/autodiscover.svc`, behind
//!   the login: `GetUserSettings` for the user's own addresses and
//!   `GetDomainSettings` for hosted domains ([`soap`]).
//! - JSON v2: `GET /autodiscover/autodiscover.json?Email=..&Protocol=..`
//!   and `/autodiscover/autodiscover.json/v1.0/{email}?Protocol=..`,
//!   without login (it returns this server's URLs for any address, so it
//!   tells nothing about which addresses exist).
//! - Mozilla autoconfig: `GET /.well-known/autoconfig/mail/config-v1.1.xml`
//!   and `/mail/config-v1.1.xml`, without login, for hosted domains only
//!   ([`autoconfig`]); served on plain HTTP too.
//! - Apple profile: `GET /mobileconfig[?email=..]`, behind the login
//!   ([`mobileconfig`]).
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

pub mod autoconfig;
pub mod mobileconfig;
pub mod pox;
pub mod soap;
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
/// The SOAP path (lower case; matched in any case).
pub const SOAP_PATH: &str = "/autodiscover/autodiscover.svc";
/// The Mozilla autoconfig paths (lower case; matched in any case): the
/// RFC 8615 one and the one Thunderbird asks on `autoconfig.DOMAIN`.
pub const AUTOCONFIG_PATHS: [&str; 2] = [
    "/.well-known/autoconfig/mail/config-v1.1.xml",
    "/mail/config-v1.1.xml",
];
/// The Apple configuration profile path (lower case; matched in any case).
pub const MOBILECONFIG_PATH: &str = "/mobileconfig";

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
    /// POP3 listener announced, if any (implicit TLS preferred).
    pub pop3: Option<MailEndpoint>,
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

    /// Every hosted domain, lower case.
    async fn domains(&self) -> Result<Vec<String>, String>;
}

/// True for the paths this crate answers (any letter case).
pub fn handles(path: &str) -> bool {
    route(path).is_some()
}

/// Which of the crate's services a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Pox,
    Soap,
    Json,
    Autoconfig,
    Mobileconfig,
}

fn route(path: &str) -> Option<Route> {
    let p = path.to_ascii_lowercase();
    if p == POX_PATH {
        Some(Route::Pox)
    } else if p == SOAP_PATH {
        Some(Route::Soap)
    } else if p == "/autodiscover/autodiscover.json"
        || p.starts_with("/autodiscover/autodiscover.json/")
    {
        Some(Route::Json)
    } else if AUTOCONFIG_PATHS.contains(&p.as_str()) {
        Some(Route::Autoconfig)
    } else if p == MOBILECONFIG_PATH {
        Some(Route::Mobileconfig)
    } else {
        None
    }
}

/// The Autodiscover router. Every path it does not handle is 404, so the
/// binary can mount it as its fallback.
pub fn router(
    settings: Settings,
    accounts: Arc<dyn Accounts>,
    basic: outpost_http::BasicAuth,
) -> Router {
    let settings = Arc::new(settings);
    // The services behind the login: POX, SOAP and the profile.
    let (s, a) = (settings.clone(), accounts.clone());
    let private = Router::new().fallback(move |req: Request| {
        let s = s.clone();
        let a = a.clone();
        async move {
            match route(req.uri().path()) {
                Some(Route::Pox) => pox_handler(&s, a.as_ref(), req).await,
                Some(Route::Soap) => soap_handler(&s, a.as_ref(), req).await,
                Some(Route::Mobileconfig) => mobileconfig_handler(&s, a.as_ref(), req).await,
                _ => text(StatusCode::NOT_FOUND, "Not found\n"),
            }
        }
    });
    let private = outpost_http::require_user(private, basic);
    Router::new().fallback(move |req: Request| {
        let settings = settings.clone();
        let accounts = accounts.clone();
        let private = private.clone();
        async move {
            match route(req.uri().path()) {
                // Exchange answers a GET with the Error/600 document,
                // without asking for a login.
                Some(Route::Pox) if req.method() == Method::GET || req.method() == Method::HEAD => {
                    xml_response(pox::error_document(600, "Invalid Request"))
                }
                Some(Route::Pox | Route::Soap | Route::Mobileconfig) => {
                    match private.oneshot(req).await {
                        Ok(r) => r,
                        Err(never) => match never {},
                    }
                }
                Some(Route::Json) => json_handler(&settings, &req),
                Some(Route::Autoconfig) => {
                    autoconfig_handler(&settings, accounts.as_ref(), req).await
                }
                None => text(StatusCode::NOT_FOUND, "Not found\n"),
            }
        }
    })
}

/// The body of a request, at most `limit` bytes (`Err` is the 413 answer).
async fn read_body(req: Request, limit: usize) -> Result<axum::body::Bytes, Response<Body>> {
    match http_body_util::Limited::new(req.into_body(), limit)
        .collect()
        .await
    {
        Ok(b) => Ok(b.to_bytes()),
        Err(_) => Err(text(StatusCode::PAYLOAD_TOO_LARGE, "Request too large\n")),
    }
}

/// A query parameter (name in any case), percent-decoded.
fn query_param(req: &Request, name: &str) -> Option<String> {
    req.uri()
        .query()?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
}

async fn pox_handler(settings: &Settings, accounts: &dyn Accounts, req: Request) -> Response<Body> {
    if req.method() != Method::POST {
        return xml_response(pox::error_document(600, "Invalid Request"));
    }
    let Some(user) = req.extensions().get::<AuthUser>().cloned() else {
        return text(StatusCode::UNAUTHORIZED, "Log in\n");
    };
    let body = match read_body(req, MAX_REQUEST_BYTES).await {
        Ok(b) => b,
        Err(resp) => return resp,
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

async fn soap_handler(
    settings: &Settings,
    accounts: &dyn Accounts,
    req: Request,
) -> Response<Body> {
    if req.method() != Method::POST {
        let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, "POST a SOAP request\n");
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return resp;
    }
    let Some(user) = req.extensions().get::<AuthUser>().cloned() else {
        return text(StatusCode::UNAUTHORIZED, "Log in\n");
    };
    let body = match read_body(req, soap::MAX_SOAP_REQUEST_BYTES).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let request = match soap::parse(&body) {
        Ok(r) => r,
        Err(f) => return soap_response(soap::fault(&f)),
    };
    let answer = match &request.operation {
        soap::Operation::Invalid { domain, message } => {
            soap::invalid_request(&request, *domain, message)
        }
        soap::Operation::GetUserSettings(q) => {
            let (name, addresses) = match accounts.addresses(&user).await {
                Ok(a) => a,
                Err(e) => return unavailable(&user, &e),
            };
            let caller = soap::Caller {
                principal_id: user.principal_id,
                display_name: &name,
                addresses: &addresses,
            };
            soap::get_user_settings(settings, &request, q, &caller)
        }
        soap::Operation::GetDomainSettings(q) => {
            let domains = match accounts.domains().await {
                Ok(d) => d,
                Err(e) => return unavailable(&user, &e),
            };
            soap::get_domain_settings(settings, &request, q, |d| {
                domains.iter().any(|h| h.eq_ignore_ascii_case(d))
            })
        }
    };
    soap_response(answer)
}

fn soap_response(a: soap::SoapAnswer) -> Response<Body> {
    let mut resp = Response::new(Body::from(a.body));
    *resp.status_mut() = a.status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(a.content_type),
    );
    resp
}

fn unavailable(user: &AuthUser, e: &str) -> Response<Body> {
    tracing::warn!(user = %user.login, "autodiscover: directory: {e}");
    text(StatusCode::SERVICE_UNAVAILABLE, "Try again later\n")
}

async fn autoconfig_handler(
    settings: &Settings,
    accounts: &dyn Accounts,
    req: Request,
) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed\n");
    }
    let email = query_param(&req, "emailaddress");
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().host())
        .map(str::to_string);
    drop(req);
    if email
        .as_deref()
        .is_some_and(|e| autoconfig::domain_of(e).is_none())
    {
        return text(StatusCode::BAD_REQUEST, "emailaddress is not an address\n");
    }
    let domains = match accounts.domains().await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!("autoconfig: directory: {e}");
            return text(StatusCode::SERVICE_UNAVAILABLE, "Try again later\n");
        }
    };
    let asked = autoconfig::asked_domain(email.as_deref(), host.as_deref())
        .filter(|d| email.is_some() || domains.contains(d));
    let doc = match asked {
        Some(d) if domains.contains(&d) => {
            autoconfig::client_config(settings, &d, std::slice::from_ref(&d))
        }
        // An address of a domain this server does not host.
        Some(_) => return text(StatusCode::NOT_FOUND, "Not a domain of this server\n"),
        None if domains.is_empty() => {
            return text(StatusCode::NOT_FOUND, "No domain is hosted here\n")
        }
        None => autoconfig::client_config(settings, &settings.hostname, &domains),
    };
    xml_response(doc)
}

async fn mobileconfig_handler(
    settings: &Settings,
    accounts: &dyn Accounts,
    req: Request,
) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed\n");
    }
    let Some(user) = req.extensions().get::<AuthUser>().cloned() else {
        return text(StatusCode::UNAUTHORIZED, "Log in\n");
    };
    let (_, addresses) = match accounts.addresses(&user).await {
        Ok(a) => a,
        Err(e) => return unavailable(&user, &e),
    };
    let email = match query_param(&req, "email") {
        Some(e) => match addresses.iter().find(|a| a.eq_ignore_ascii_case(e.trim())) {
            Some(a) => a.clone(),
            None => return text(StatusCode::FORBIDDEN, "That is not one of your addresses\n"),
        },
        None => addresses
            .first()
            .cloned()
            .unwrap_or_else(|| user.login.clone()),
    };
    let mut resp = Response::new(Body::from(mobileconfig::profile(
        settings,
        &user.login,
        &email,
    )));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(mobileconfig::CONTENT_TYPE),
    );
    if let Ok(v) = HeaderValue::try_from(format!(
        "attachment; filename=\"{}\"",
        mobileconfig::file_name(settings)
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
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
