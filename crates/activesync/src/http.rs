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

use crate::folders::{self, Folder, HierarchyState};
use crate::query::{self, Command, RequestLine, Version};
use crate::state::{self, ClientKey, Match, StoredState};
use crate::sync::{self, Caller};
use crate::{
    compose, estimate, itemops, meeting, moves, ping, provision, resolve, search, settings,
    EasBackend, Fault, Limits, ANNOUNCED_COMMANDS,
};

/// The path, matched without regard to case.
pub const PATH: &str = "/Microsoft-Server-ActiveSync";

const WBXML: &str = "application/vnd.ms-sync.wbxml";

struct Ctx {
    backend: Arc<dyn EasBackend>,
    limits: Limits,
    waiters: Arc<ping::Waiters>,
    loops: Arc<crate::loops::LoopGuard>,
}

/// The router to mount behind `outpost_http::require_user`. It answers
/// every path; the binary routes [`PATH`] (any case) to it.
pub fn router(backend: Arc<dyn EasBackend>, limits: Limits) -> Router {
    let ctx = Arc::new(Ctx {
        backend,
        limits,
        waiters: Arc::default(),
        loops: Arc::default(),
    });
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
    let long_poll = req.extensions().get::<outpost_http::LongPoll>().cloned();
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
    // The headers are read: a held Ping does not keep them.
    drop(parts);
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
        long_poll,
    };
    // Boxed: a held Ping or hanging Sync keeps only what its own command
    // needs, not the largest command's state (the request future of every
    // connection would otherwise be as large as the largest command's).
    match Box::pin(dispatch(&ctx, &exchange, body)).await {
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
    pub long_poll: Option<outpost_http::LongPoll>,
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
    // Not needed past here; a held Ping does not keep it.
    drop(device);
    let who = Caller {
        principal: x.principal,
        device_id: &x.line.device_id,
        is16: x.version.is_16(),
        long_poll: x.long_poll.clone(),
        waiters: Some(ctx.waiters.clone()),
        loops: Some(ctx.loops.clone()),
        addresses: Default::default(),
    };
    let b = ctx.backend.as_ref();
    match command {
        Command::FolderSync => {
            let root = match decode(&body, &ctx.limits) {
                Ok(r) => r,
                Err(resp) => return Ok(*resp),
            };
            return Ok(wbxml(&Box::pin(folder_sync(b, &who, &root)).await?));
        }
        Command::FolderCreate | Command::FolderUpdate | Command::FolderDelete => {
            let root = match decode(&body, &ctx.limits) {
                Ok(r) => r,
                Err(resp) => return Ok(*resp),
            };
            return Ok(wbxml(&Box::pin(folder_op(b, &who, command, &root)).await?));
        }
        Command::Sync => return Box::pin(sync_command(b, &who, &body, &ctx.limits)).await,
        Command::GetItemEstimate => {
            let root = match decode(&body, &ctx.limits) {
                Ok(r) => r,
                Err(resp) => return Ok(*resp),
            };
            let folders = b.folders(who.principal).await?;
            return Ok(wbxml(
                &Box::pin(estimate::answer(b, &who, &folders, &root)).await?,
            ));
        }
        Command::ItemOperations => {
            let root = match decode(&body, &ctx.limits) {
                Ok(r) => r,
                Err(resp) => return Ok(*resp),
            };
            let folders = b.folders(who.principal).await?;
            return Ok(wbxml(
                &Box::pin(itemops::answer(b, &who, &folders, &root)).await?,
            ));
        }
        Command::Search => {
            let root = match decode(&body, &ctx.limits) {
                Ok(r) => r,
                Err(resp) => return Ok(*resp),
            };
            let folders = b.folders(who.principal).await?;
            return Ok(wbxml(
                &Box::pin(search::search(b, &who, &folders, &root)).await?,
            ));
        }
        Command::MeetingResponse => {
            let root = match decode(&body, &ctx.limits) {
                Ok(r) => r,
                Err(resp) => return Ok(*resp),
            };
            let folders = b.folders(who.principal).await?;
            return Ok(
                match Box::pin(meeting::answer(b, &who, &folders, &root)).await? {
                    Some(a) => wbxml(&a),
                    None => wbxml(&status_document(command, 2)),
                },
            );
        }
        Command::ResolveRecipients => {
            let root = match decode(&body, &ctx.limits) {
                Ok(r) => r,
                Err(resp) => return Ok(*resp),
            };
            return Ok(wbxml(&Box::pin(resolve::answer(b, &who, &root)).await?));
        }
        Command::Find => {
            let root = match decode(&body, &ctx.limits) {
                Ok(r) => r,
                Err(resp) => return Ok(*resp),
            };
            let folders = b.folders(who.principal).await?;
            return Ok(wbxml(
                &Box::pin(search::find(b, &who, &folders, &root)).await?,
            ));
        }
        Command::Settings => {
            let root = match decode(&body, &ctx.limits) {
                Ok(r) => r,
                Err(resp) => return Ok(*resp),
            };
            return Ok(wbxml(&Box::pin(settings::answer(b, &who, &root)).await?));
        }
        Command::SendMail | Command::SmartReply | Command::SmartForward => {
            // 14.0 and later send WBXML; the 12.x form (the bare MIME
            // message, parameters on the request line) is still sent by
            // some clients and is accepted too. WBXML starts with its
            // version byte 0x03; a MIME message never does.
            let root = if body.first() == Some(&0x03) {
                match decode(&body, &ctx.limits) {
                    Ok(r) => Some(r),
                    Err(_) => {
                        return Ok(wbxml(&status_document(
                            command,
                            compose::status::INVALID_WBXML,
                        )))
                    }
                }
            } else {
                None
            };
            let req = match compose::parse(command, &x.line, root.as_ref(), &body) {
                Ok(r) => r,
                Err(code) => return Ok(wbxml(&status_document(command, code))),
            };
            return Ok(
                match Box::pin(compose::answer(b, &who, command, &req)).await? {
                    None => Response::new(Body::empty()),
                    Some(a) => wbxml(&a),
                },
            );
        }
        Command::MoveItems => {
            let root = match decode(&body, &ctx.limits) {
                Ok(r) => r,
                Err(resp) => return Ok(*resp),
            };
            let folders = b.folders(who.principal).await?;
            return Ok(
                match Box::pin(moves::answer(b, &who, &folders, &root)).await? {
                    Some(a) => wbxml(&a),
                    None => wbxml(&status_document(command, 2)),
                },
            );
        }
        Command::Ping => {
            // An empty Ping reuses the last one's parameters.
            let root = if body.is_empty() {
                None
            } else {
                match decode(&body, &ctx.limits) {
                    Ok(r) => Some(r),
                    Err(resp) => return Ok(*resp),
                }
            };
            let folders = b.folders(who.principal).await?;
            let moved = folders::hierarchy_changed(b, &who, &folders).await?;
            return Ok(wbxml(
                &Box::pin(ping::ping(b, &who, folders, root, moved)).await?,
            ));
        }
        _ => {}
    }
    Ok(plain(
        StatusCode::NOT_IMPLEMENTED,
        "Command not implemented",
    ))
}

async fn folder_sync(
    b: &dyn EasBackend,
    who: &Caller<'_>,
    root: &Element,
) -> Result<Element, crate::BackendError> {
    let key = match (
        root.is("FolderHierarchy", "FolderSync"),
        folders::child_text(root, "FolderHierarchy", "SyncKey"),
    ) {
        (true, Some(k)) => k,
        _ => return Ok(folders::status_answer("FolderSync", 10)),
    };
    let now = b.folders(who.principal).await?;
    let seq = b.hierarchy_seq(who.principal).await?;
    let key = match state::parse_key(&key) {
        ClientKey::Initial => {
            let st = HierarchyState {
                seq,
                folders: folders::map(&now),
            };
            let key = state::first_key();
            let changes = folders::diff(&Default::default(), &now);
            b.put_sync_state(
                who.principal,
                who.device_id,
                state::HIERARCHY,
                None,
                &StoredState::first(key, &st),
            )
            .await?;
            return Ok(folders::sync_answer(key, &changes));
        }
        ClientKey::Invalid => return Ok(folders::status_answer("FolderSync", 9)),
        ClientKey::Key(k) => k,
    };
    let stored = b
        .sync_state(who.principal, who.device_id, state::HIERARCHY)
        .await?;
    let stored = match state::match_key(stored.as_ref(), key) {
        Match::Current(s) => s.clone(),
        Match::Replay(a) => return Ok(a),
        Match::Mismatch => return Ok(folders::status_answer("FolderSync", 9)),
    };
    let Some(mut st) = stored.parse::<HierarchyState>() else {
        return Ok(folders::status_answer("FolderSync", 9));
    };
    let changes = if st.seq == seq {
        Default::default()
    } else {
        folders::diff(&st.folders, &now)
    };
    if changes.is_empty() {
        if st.seq != seq {
            st.seq = seq;
            let same = StoredState {
                state: serde_json::to_string(&st).unwrap_or_default(),
                ..stored.clone()
            };
            b.put_sync_state(
                who.principal,
                who.device_id,
                state::HIERARCHY,
                Some(key),
                &same,
            )
            .await?;
        }
        return Ok(folders::sync_answer(key, &changes));
    }
    let next_state = HierarchyState {
        seq,
        folders: folders::map(&now),
    };
    let answer = folders::sync_answer(key + 1, &changes);
    if !b
        .put_sync_state(
            who.principal,
            who.device_id,
            state::HIERARCHY,
            Some(key),
            &stored.next(&next_state, &answer),
        )
        .await?
    {
        return Ok(folders::status_answer("FolderSync", 9));
    }
    Ok(answer)
}

async fn folder_op(
    b: &dyn EasBackend,
    who: &Caller<'_>,
    command: Command,
    root: &Element,
) -> Result<Element, crate::BackendError> {
    let name = command.name();
    let Some(req) = folders::parse_request(root, name) else {
        return Ok(folders::status_answer(name, 10));
    };
    let stored = b
        .sync_state(who.principal, who.device_id, state::HIERARCHY)
        .await?;
    let (key, stored) = match (state::parse_key(&req.sync_key), stored) {
        (ClientKey::Key(k), Some(s)) if s.sync_key == k => (k, s),
        _ => return Ok(folders::status_answer(name, 9)),
    };
    let Some(mut st) = stored.parse::<HierarchyState>() else {
        return Ok(folders::status_answer(name, 9));
    };
    use crate::FolderOpError as E;
    let mut created = None;
    let result = match command {
        Command::FolderCreate => {
            let (parent, display, ty) = (
                req.parent.unwrap_or(0),
                req.name.clone().unwrap_or_default(),
                req.folder_type.unwrap_or(12),
            );
            match b.create_folder(who.principal, parent, &display, ty).await? {
                Ok(id) => {
                    st.folders.insert(
                        id,
                        Folder {
                            id,
                            parent,
                            name: display,
                            folder_type: ty,
                        },
                    );
                    created = Some(id);
                    Ok(())
                }
                Err(e) => Err(match e {
                    E::Exists => 2,
                    E::Special => 3,
                    E::ParentMissing | E::NotFound => 5,
                    E::Invalid => 10,
                }),
            }
        }
        Command::FolderUpdate => {
            let (id, parent, display) = (
                req.server_id.unwrap_or(0),
                req.parent.unwrap_or(0),
                req.name.clone().unwrap_or_default(),
            );
            match b.update_folder(who.principal, id, parent, &display).await? {
                Ok(()) => {
                    if let Some(f) = st.folders.get_mut(&id) {
                        f.parent = parent;
                        f.name = display;
                    }
                    Ok(())
                }
                Err(e) => Err(match e {
                    E::Exists | E::Special => 2,
                    E::NotFound => 4,
                    E::ParentMissing => 5,
                    E::Invalid => 10,
                }),
            }
        }
        _ => {
            let id = req.server_id.unwrap_or(0);
            match b.delete_folder(who.principal, id).await? {
                Ok(()) => {
                    st.folders.remove(&id);
                    Ok(())
                }
                Err(e) => Err(match e {
                    E::Special => 3,
                    E::NotFound => 4,
                    _ => 6,
                }),
            }
        }
    };
    if let Err(status) = result {
        return Ok(folders::status_answer(name, status));
    }
    let next = StoredState {
        sync_key: key + 1,
        state: serde_json::to_string(&st).unwrap_or_default(),
        prev_key: None,
        prev_answer: None,
    };
    if !b
        .put_sync_state(
            who.principal,
            who.device_id,
            state::HIERARCHY,
            Some(key),
            &next,
        )
        .await?
    {
        return Ok(folders::status_answer(name, 9));
    }
    let mut answer = Element::named("FolderHierarchy", name)
        .with(Element::named("FolderHierarchy", "Status").with_text("1"))
        .with(Element::named("FolderHierarchy", "SyncKey").with_text((key + 1).to_string()));
    if let Some(id) = created {
        answer =
            answer.with(Element::named("FolderHierarchy", "ServerId").with_text(id.to_string()));
    }
    Ok(answer)
}

async fn sync_command(
    b: &dyn EasBackend,
    who: &Caller<'_>,
    body: &[u8],
    limits: &Limits,
) -> Result<Response, crate::BackendError> {
    let folders = b.folders(who.principal).await?;
    let mut req = if body.is_empty() {
        None
    } else {
        let root = match decode(body, limits) {
            Ok(r) => r,
            Err(resp) => return Ok(*resp),
        };
        match sync::parse(&root) {
            Some(r) => Some(r),
            None => return Ok(wbxml(&sync::status_answer(4))),
        }
    };
    if req.as_ref().is_some_and(|r| !r.collections.is_empty()) {
        // Kept for an empty Sync to reuse (MS-ASCMD 2.2.1.21.1).
        let keep = StoredState {
            sync_key: 0,
            state: String::new(),
            prev_key: None,
            prev_answer: Some(body.to_vec()),
        };
        b.put_sync_state(who.principal, who.device_id, state::LAST_SYNC, None, &keep)
            .await?;
    } else {
        // An empty Sync, or one with only Wait/WindowSize: the last
        // request's collections at their current keys, without commands.
        let last = b
            .sync_state(who.principal, who.device_id, state::LAST_SYNC)
            .await?;
        let cached = last
            .and_then(|l| l.prev_answer)
            .and_then(|bytes| outpost_wbxml::decode(&bytes, &limits.wbxml).ok())
            .and_then(|root| sync::parse(&root));
        let Some(mut cached) = cached else {
            return Ok(wbxml(&sync::status_answer(13)));
        };
        for c in &mut cached.collections {
            c.commands.clear();
            if let Ok(id) = c.collection_id.parse::<i64>() {
                if let Some(s) = b.sync_state(who.principal, who.device_id, id).await? {
                    c.sync_key = s.sync_key.to_string();
                }
            }
        }
        if let Some(r) = &req {
            cached.wait = r.wait.or(cached.wait);
            cached.window = r.window.or(cached.window);
        }
        req = Some(cached);
    }
    let req = req.unwrap_or_default();
    if let Some(w) = req.wait {
        if !(ping::MIN_HEARTBEAT..=ping::MAX_HEARTBEAT).contains(&w) {
            let limit = if w < ping::MIN_HEARTBEAT {
                ping::MIN_HEARTBEAT
            } else {
                ping::MAX_HEARTBEAT
            };
            return Ok(wbxml(
                &Element::named("AirSync", "Sync")
                    .with(Element::named("AirSync", "Status").with_text("14"))
                    .with(Element::named("AirSync", "Limit").with_text(limit.to_string())),
            ));
        }
    }
    let total = req
        .window
        .unwrap_or(sync::MAX_WINDOW)
        .clamp(1, sync::MAX_WINDOW);
    let mut waited = false;
    loop {
        let mut left = total;
        let mut out = Vec::new();
        let mut news = false;
        for c in &req.collections {
            let window = c
                .window
                .unwrap_or(sync::DEFAULT_WINDOW)
                .clamp(1, sync::MAX_WINDOW)
                .min(left.max(1));
            let o = sync::sync_collection(b, who, &folders, c, window).await?;
            if let (Some(g), Ok(id)) = (&who.loops, c.collection_id.parse::<i64>()) {
                g.synced(who.principal, who.device_id, id);
            }
            left = left.saturating_sub(window);
            news |= o.news;
            out.push(o.element);
        }
        if news {
            if let Some(g) = &who.loops {
                g.news(who.principal, who.device_id);
            }
        }
        if news || waited {
            if !news {
                // The wait ran out with nothing new: an empty answer
                // (MS-ASCMD 2.2.1.21: no changes).
                return Ok(Response::new(Body::empty()));
            }
            return Ok(wbxml(&sync::answer(out)));
        }
        let wait = match req.wait {
            Some(w) => w,
            None => {
                // Nothing for the device and no wait asked: a device
                // sending these back to back is held (crate::loops).
                let looping = who
                    .loops
                    .as_ref()
                    .is_some_and(|g| g.empty_sync(who.principal, who.device_id));
                if !looping {
                    return Ok(wbxml(&sync::answer(out)));
                }
                crate::loops::SLOW_DOWN.as_secs()
            }
        };
        let ids: Vec<i64> = req
            .collections
            .iter()
            .filter_map(|c| c.collection_id.parse().ok())
            .collect();
        let waited_for =
            ping::wait_or_hierarchy(b, who, &ids, std::time::Duration::from_secs(wait), false)
                .await?;
        match waited_for {
            ping::Waited::Changed(_) => {}
            ping::Waited::Nothing => return Ok(Response::new(Body::empty())),
            // The folder list changed under a hanging Sync: the device
            // must FolderSync first (MS-ASCMD 2.2.3.177.17, status 12).
            ping::Waited::Hierarchy => return Ok(wbxml(&sync::status_answer(12))),
        }
        waited = true;
    }
}
