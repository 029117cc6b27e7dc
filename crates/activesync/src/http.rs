//! The axum side: the request line, the headers, the body, the dispatch.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::any;
use axum::Router;
use http::{HeaderValue, Method, StatusCode};
use outpost_net::AuthUser;
use outpost_wbxml::Element;

use crate::query::{self, Command, RequestLine, Version};
use crate::{provision, EasBackend, Fault, Limits, ANNOUNCED_COMMANDS};

/// The path, matched without regard to case.
pub const PATH: &str = "/Microsoft-Server-ActiveSync";

const WBXML: &str = "application/vnd.ms-sync.wbxml";

struct Ctx {
    backend: Arc<dyn EasBackend>,
    limits: Limits,
}

/// The router to mount behind `outpost_http::require_user`. It answers
/// every path; the binary routes [`PATH`] (any case) to it.
pub fn router(backend: Arc<dyn EasBackend>, limits: Limits) -> Router {
    let ctx = Arc::new(Ctx { backend, limits });
    Router::new().fallback(any(handle)).with_state(ctx)
}

/// True for the ActiveSync path in any case.
pub fn is_path(path: &str) -> bool {
    path.eq_ignore_ascii_case(PATH)
}

fn plain(status: StatusCode, text: &str) -> Response {
    let mut r = Response::new(Body::from(format!("{text}\n")));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn wbxml(root: &Element) -> Response {
    let mut r = Response::new(Body::from(outpost_wbxml::encode(root)));
    r.headers_mut()
        .insert(http::header::CONTENT_TYPE, HeaderValue::from_static(WBXML));
    r
}

fn options() -> Response {
    let mut r = Response::new(Body::empty());
    let h = r.headers_mut();
    h.insert("MS-Server-ActiveSync", HeaderValue::from_static("16.1"));
    h.insert(
        "MS-ASProtocolVersions",
        HeaderValue::from_static(Version::ANNOUNCED),
    );
    let cmds: Vec<&str> = ANNOUNCED_COMMANDS.iter().map(|c| c.name()).collect();
    if let Ok(v) = HeaderValue::try_from(cmds.join(",")) {
        h.insert("MS-ASProtocolCommands", v);
    }
    h.insert(
        http::header::ALLOW,
        HeaderValue::from_static("OPTIONS,POST"),
    );
    h.insert("Public", HeaderValue::from_static("OPTIONS,POST"));
    r
}

/// The root element of `command`'s answer with only a Status, for the
/// errors every command shares (142 not provisioned, 144 bad policy key,
/// 2/4 protocol error...), per MS-ASCMD 2.2.2.
pub fn status_document(command: Command, status: u32) -> Element {
    let (page, name) = match command {
        Command::Sync => ("AirSync", "Sync"),
        Command::SendMail => ("ComposeMail", "SendMail"),
        Command::SmartForward => ("ComposeMail", "SmartForward"),
        Command::SmartReply => ("ComposeMail", "SmartReply"),
        Command::FolderSync => ("FolderHierarchy", "FolderSync"),
        Command::FolderCreate => ("FolderHierarchy", "FolderCreate"),
        Command::FolderDelete => ("FolderHierarchy", "FolderDelete"),
        Command::FolderUpdate => ("FolderHierarchy", "FolderUpdate"),
        Command::MoveItems => ("Move", "MoveItems"),
        Command::GetItemEstimate => ("GetItemEstimate", "GetItemEstimate"),
        Command::MeetingResponse => ("MeetingResponse", "MeetingResponse"),
        Command::Search => ("Search", "Search"),
        Command::Settings => ("Settings", "Settings"),
        Command::Ping => ("Ping", "Ping"),
        Command::ItemOperations => ("ItemOperations", "ItemOperations"),
        Command::Provision => ("Provision", "Provision"),
        Command::ResolveRecipients => ("ResolveRecipients", "ResolveRecipients"),
        Command::ValidateCert => ("ValidateCert", "ValidateCert"),
        Command::Find => ("Find", "Find"),
        Command::GetAttachment => ("ItemOperations", "ItemOperations"),
    };
    let status_page = if page == "ComposeMail" {
        "ComposeMail"
    } else {
        page
    };
    Element::named(page, name)
        .with(Element::named(status_page, "Status").with_text(status.to_string()))
}

async fn handle(State(ctx): State<Arc<Ctx>>, req: Request) -> Response {
    if !is_path(req.uri().path()) {
        return plain(StatusCode::NOT_FOUND, "Not found");
    }
    match *req.method() {
        Method::OPTIONS => return options(),
        Method::POST => {}
        _ => {
            let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "Use POST");
            r.headers_mut().insert(
                http::header::ALLOW,
                HeaderValue::from_static("OPTIONS,POST"),
            );
            return r;
        }
    }
    let Some(user) = req.extensions().get::<AuthUser>().cloned() else {
        return plain(StatusCode::UNAUTHORIZED, "Log in");
    };
    let line = match query::parse(req.uri().query().unwrap_or("")) {
        Ok(l) => l,
        Err(e) => return plain(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let (parts, body) = req.into_parts();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let version = match line.version {
        Some(v) => v,
        None => match header("MS-ASProtocolVersion")
            .as_deref()
            .map(Version::parse)
        {
            Some(Some(v)) => v,
            // MS-ASHTTP 3.2.5.1: a version the server does not support.
            _ => {
                return plain(
                    StatusCode::BAD_REQUEST,
                    "MS-ASProtocolVersion missing or unsupported",
                )
            }
        },
    };
    let policy_key = line
        .policy_key
        .or_else(|| header("X-MS-PolicyKey").and_then(|k| k.trim().parse().ok()));
    let user_agent = header("User-Agent");
    let body = match axum::body::to_bytes(body, ctx.limits.max_body).await {
        Ok(b) => b,
        Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large"),
    };
    let exchange = Exchange {
        principal: user.principal_id,
        line,
        version,
        policy_key,
        user_agent,
    };
    match dispatch(&ctx, &exchange, body).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(command = exchange.line.command.name(), "activesync: {e}");
            let mut r = plain(StatusCode::SERVICE_UNAVAILABLE, "Try again later");
            r.headers_mut()
                .insert(http::header::RETRY_AFTER, HeaderValue::from_static("30"));
            r
        }
    }
}

/// One request, read.
pub struct Exchange {
    pub principal: i64,
    pub line: RequestLine,
    pub version: Version,
    pub policy_key: Option<u32>,
    pub user_agent: Option<String>,
}

fn decode(body: &[u8], limits: &Limits) -> Result<Element, Box<Response>> {
    if body.is_empty() {
        return Err(Box::new(plain(StatusCode::BAD_REQUEST, "Empty WBXML body")));
    }
    outpost_wbxml::decode(body, &limits.wbxml).map_err(|e| {
        tracing::info!("activesync: bad WBXML: {e}");
        Box::new(plain(StatusCode::BAD_REQUEST, "Malformed WBXML"))
    })
}

async fn dispatch(ctx: &Ctx, x: &Exchange, body: Bytes) -> Result<Response, crate::BackendError> {
    let command = x.line.command;
    let device = ctx.backend.device(x.principal, &x.line.device_id).await?;
    if command == Command::Provision {
        let root = match decode(&body, &ctx.limits) {
            Ok(r) => r,
            Err(resp) => return Ok(*resp),
        };
        let req = match provision::parse(&root) {
            Ok(r) => r,
            Err(Fault::Status(s)) => return Ok(wbxml(&status_document(command, s))),
            Err(Fault::PolicyType) => {
                return Ok(wbxml(&provision::ack_answer(None, 3, false)));
            }
        };
        let mut dev = device.unwrap_or_default();
        dev.device_type = x.line.device_type.clone();
        if x.user_agent.is_some() {
            dev.user_agent = x.user_agent.clone();
        }
        let (answer, next) = provision::answer(&req, &dev);
        ctx.backend
            .put_device(x.principal, &x.line.device_id, &next)
            .await?;
        return Ok(wbxml(&answer));
    }
    // Every other command needs the final policy key (MS-ASPROV 3.2.5.1:
    // 142 when the device has not provisioned, 144 when the key is not
    // the current one; 14.x and 16.x answer with the command's status, a
    // wiped device is told to provision so it learns of the wipe).
    let status = match &device {
        None => Some(142),
        Some(d) if d.wipe_requested => Some(140),
        Some(d) if d.policy_key.is_none() => Some(142),
        Some(d) if d.policy_key != x.policy_key => Some(144),
        Some(_) => None,
    };
    if let Some(s) = status {
        return Ok(wbxml(&status_document(command, s)));
    }
    let _ = x.version;
    Ok(plain(
        StatusCode::NOT_IMPLEMENTED,
        "Command not implemented",
    ))
}
