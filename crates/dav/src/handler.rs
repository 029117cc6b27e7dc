//! The handler layer: an HTTP request in, store calls, a response out.
//! Parsing and rendering live in [`crate::proto`] and [`crate::response`].

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Extension, Router};
use outpost_net::auth::AuthUser;
use outpost_xml::{Element, Name};

use crate::content::{self, VcardVersion};
use crate::path::{self, DavPath, PathError};
use crate::proto::{self, *};
use crate::response::*;
use crate::schedule::{schedule_tag_header, schedule_tag_prop};
use crate::store::*;
use outpost_pim::{InstanceStatus, Limits, Window};

/// Limits and settings of the DAV router.
#[derive(Debug, Clone)]
pub struct DavConfig {
    /// Largest request body (413 above it).
    pub max_body: usize,
    /// Largest calendar or address object (CALDAV/CARDDAV:max-resource-size).
    pub max_resource_size: usize,
    /// Most responses in one sync-collection answer when the client asks
    /// for no limit (the rest come with 507 and a token to go on).
    pub sync_page: usize,
    /// Bounds of the WebDAV lock table (longest lock, most locks per user
    /// and in all). Locks live in memory, per process (crate::lock).
    pub locks: crate::lock::LockLimits,
}

impl Default for DavConfig {
    fn default() -> Self {
        DavConfig {
            max_body: 10 << 20,
            max_resource_size: 4 << 20,
            sync_page: 1000,
            locks: crate::lock::LockLimits::default(),
        }
    }
}

pub(crate) struct Dav<S> {
    pub(crate) store: Arc<S>,
    pub(crate) config: DavConfig,
    pub(crate) locks: crate::lock::LockTable,
    /// Homes (owner, kind) known to hold collections since this process
    /// started, so the first-use check of [`Ctx::ensure_defaults`] is not
    /// a query on every request. A user who later deletes every calendar
    /// gets the defaults back at the next start, not at once.
    pub(crate) homes_filled: std::sync::Mutex<std::collections::HashSet<(i64, CollectionKind)>>,
}

/// Most principals one principal-property-search answers.
const PRINCIPAL_SEARCH_LIMIT: usize = 100;
const SYNC_PREFIX: &str = "http://outpost.invalid/ns/sync/";
const DAV_CLASSES: &str =
    "1, 2, 3, access-control, calendar-access, calendar-auto-schedule, addressbook, extended-mkcol";
pub(crate) const ALLOW: &str =
    "OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, PROPPATCH, MKCOL, MKCALENDAR, REPORT, COPY, MOVE, POST, LOCK, UNLOCK";

/// The DAV router: `/.well-known/caldav|carddav`, `/` and `/dav/...`.
/// Mount it behind `outpost_http::auth::require_user` (every route but the
/// well-known redirects needs the `AuthUser` extension).
pub fn router<S: DavStore>(store: Arc<S>, config: DavConfig) -> Router {
    let limit = config.max_body;
    let locks = crate::lock::LockTable::new(config.locks);
    let state = Arc::new(Dav {
        store,
        config,
        locks,
        homes_filled: Default::default(),
    });
    Router::new()
        .route("/.well-known/caldav", any(well_known))
        .route("/.well-known/carddav", any(well_known))
        .route("/", any(handle::<S>))
        .route("/dav", any(handle::<S>))
        .route("/dav/", any(handle::<S>))
        .route("/dav/{*rest}", any(handle::<S>))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

async fn well_known() -> Response {
    (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, "/dav/")]).into_response()
}

/// Errors as DAV answers them.
pub(crate) enum Fail {
    Status(StatusCode, String),
    /// A precondition: status plus `<d:error>` body.
    Cond(StatusCode, &'static str, &'static str, Vec<Element>),
    /// A precondition with a message saying what was wrong (a refused
    /// object: which TZID, which line).
    Refused(StatusCode, &'static str, &'static str, String),
}

pub(crate) type R<T> = Result<T, Fail>;

pub(crate) fn st(code: StatusCode, msg: impl Into<String>) -> Fail {
    Fail::Status(code, msg.into())
}

pub(crate) fn cond(code: StatusCode, ns: &'static str, c: &'static str) -> Fail {
    Fail::Cond(code, ns, c, Vec::new())
}

impl From<DavStoreError> for Fail {
    fn from(e: DavStoreError) -> Fail {
        match e {
            DavStoreError::Unavailable(m) => st(StatusCode::SERVICE_UNAVAILABLE, m),
            DavStoreError::Full(_) => {
                cond(StatusCode::INSUFFICIENT_STORAGE, DAV, "quota-not-exceeded")
            }
            DavStoreError::NotFound(m) => st(StatusCode::NOT_FOUND, m),
            DavStoreError::Exists(m) => st(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{m} already exists"),
            ),
            DavStoreError::Invalid(m) => st(StatusCode::FORBIDDEN, m),
            DavStoreError::Internal(m) => {
                tracing::warn!(error = %m, "dav: storage error");
                st(StatusCode::INTERNAL_SERVER_ERROR, "storage error")
            }
        }
    }
}

impl From<ProtoError> for Fail {
    fn from(e: ProtoError) -> Fail {
        st(StatusCode::BAD_REQUEST, e.to_string())
    }
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        match self {
            Fail::Status(code, msg) => {
                let mut r = (code, format!("{msg}\n")).into_response();
                if code == StatusCode::SERVICE_UNAVAILABLE {
                    r.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
                }
                r
            }
            Fail::Cond(code, ns, c, inner) => xml_response(code, error_body(ns, c, inner)),
            Fail::Refused(code, ns, c, msg) => xml_response(code, error_message_body(ns, c, &msg)),
        }
    }
}

pub(crate) fn xml_response(code: StatusCode, body: String) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

pub(crate) fn multi(responses: Vec<Element>, token: Option<String>) -> Response {
    xml_response(
        StatusCode::MULTI_STATUS,
        to_xml(&multistatus(responses, token)),
    )
}

/// What a request path names, resolved against the store and checked
/// against the caller's rights.
pub(crate) enum Target {
    Root,
    Principals,
    Principal(DavPrincipal),
    Home(CollectionKind, DavPrincipal),
    Collection(Coll),
    /// An object path; the object itself may not exist yet (PUT).
    Object(Coll, String),
    /// A collection path that does not exist yet (MKCOL).
    NewCollection(CollectionKind, String),
}

#[derive(Clone)]
pub(crate) struct Coll {
    pub(crate) c: DavCollection,
    /// Whose home the collection is shown in: its owner, or for a
    /// directory collection (the GAL) the user looking at it.
    pub(crate) owner: DavPrincipal,
    pub(crate) rights: Rights,
    /// A directory collection shown in the user's own home
    /// (`DavStore::directory_collections`): no DAV:owner, no quota.
    pub(crate) bound: bool,
}

impl Coll {
    fn href(&self) -> String {
        path::collection_href(self.c.kind, &self.owner.login, &self.c.name)
    }
    fn obj_href(&self, name: &str) -> String {
        path::object_href(self.c.kind, &self.owner.login, &self.c.name, name)
    }
    pub(crate) fn can_write(&self) -> bool {
        self.rights >= Rights::ReadWrite && !self.c.read_only
    }
    fn can_read(&self) -> bool {
        self.rights >= Rights::Read
    }
}

pub(crate) struct Ctx<'a, S> {
    pub(crate) dav: &'a Dav<S>,
    pub(crate) me: DavPrincipal,
}

#[allow(clippy::too_many_arguments)]
async fn handle<S: DavStore>(
    State(dav): State<Arc<Dav<S>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    user: Option<Extension<AuthUser>>,
    body: Bytes,
) -> Response {
    let Some(Extension(user)) = user else {
        return st(StatusCode::UNAUTHORIZED, "authentication required").into_response();
    };
    match run(&dav, method, uri, headers, user, body).await {
        Ok(r) => r,
        Err(f) => f.into_response(),
    }
}

async fn run<S: DavStore>(
    dav: &Dav<S>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    user: AuthUser,
    body: Bytes,
) -> R<Response> {
    if method == Method::OPTIONS {
        return Ok((
            StatusCode::OK,
            [
                (header::HeaderName::from_static("dav"), DAV_CLASSES),
                (header::ALLOW, ALLOW),
            ],
        )
            .into_response());
    }
    let me = dav
        .store
        .principal(user.principal_id)
        .await?
        .ok_or_else(|| st(StatusCode::FORBIDDEN, "no such principal"))?;
    let ctx = Ctx { dav, me };
    let raw_path = uri.path();
    let dpath = match path::parse_path(raw_path) {
        Ok(p) => p,
        Err(PathError::Forbidden(m)) => return Err(st(StatusCode::FORBIDDEN, m)),
        Err(PathError::NotFound) => return Err(st(StatusCode::NOT_FOUND, "not found")),
    };
    if let DavPath::Schedule(login, b) = &dpath {
        return ctx
            .schedule_box(login, *b, method.as_str(), &headers, &body)
            .await;
    }
    let target = ctx.resolve(&dpath).await?;
    let gate = ctx
        .lock_gate(method.as_str(), &dpath, &target, &headers)
        .await?;
    if let Some(r) = ctx
        .lock_null(method.as_str(), &dpath, &target, &body)
        .await?
    {
        return Ok(r);
    }
    match method.as_str() {
        "PROPFIND" => ctx.propfind(raw_path, target, &headers, &body).await,
        "PROPPATCH" => ctx.proppatch(target, &body).await,
        "MKCOL" | "MKCALENDAR" => {
            // RFC 4918 9.3: a body of a type the server does not understand
            // is 415; extended MKCOL and MKCALENDAR bodies are XML.
            if !body.is_empty() && !xml_content_type(&headers) {
                return Err(st(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "MKCOL and MKCALENDAR bodies are XML",
                ));
            }
            ctx.mkcol(target, method.as_str() == "MKCALENDAR", &body)
                .await
        }
        "GET" | "HEAD" => ctx.get(target, &headers, method == Method::HEAD).await,
        "PUT" => ctx.put(target, &headers, body).await,
        "DELETE" => {
            let r = ctx.delete(target, &headers).await?;
            ctx.forget_locks(&dpath);
            Ok(r)
        }
        "COPY" | "MOVE" => {
            let is_move = method.as_str() == "MOVE";
            let r = ctx.transfer(target, &headers, is_move).await?;
            if is_move {
                ctx.forget_locks(&dpath);
            }
            Ok(r)
        }
        "LOCK" => ctx.lock(target, &dpath, &headers, &body, &gate).await,
        "UNLOCK" => ctx.unlock(&target, &dpath, &headers),
        "REPORT" => ctx.report(target, &headers, &body).await,
        _ => Ok((StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, ALLOW)]).into_response()),
    }
}

/// No Content-Type (clients often send none), or an XML one.
pub(crate) fn xml_content_type(headers: &HeaderMap) -> bool {
    let Some(v) = headers.get(header::CONTENT_TYPE) else {
        return true;
    };
    let Ok(v) = v.to_str() else { return false };
    let mime = v
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/xml" || mime == "text/xml" || mime.ends_with("+xml")
}

pub(crate) fn privileges(rights: Rights, read_only: bool) -> Vec<Element> {
    let mut v: Vec<Element> = Vec::new();
    let p = |ns: &str, n: &str| dav("privilege").with(Element::new(ns, n));
    if rights >= Rights::FreeBusy {
        v.push(p(CALDAV, "read-free-busy"));
    }
    if rights >= Rights::Read {
        v.push(p(DAV, "read"));
        v.push(p(DAV, "read-current-user-privilege-set"));
    }
    if rights >= Rights::ReadWrite && !read_only {
        for n in ["write", "write-content", "bind", "unbind"] {
            v.push(p(DAV, n));
        }
    }
    if rights == Rights::Owner {
        if !read_only {
            v.push(p(DAV, "write-properties"));
        }
        v.push(p(DAV, "read-acl"));
    }
    v
}

pub(crate) fn text(ns: &str, n: &str, t: impl Into<String>) -> Element {
    Element::new(ns, n).with_text(t)
}

pub(crate) fn href_prop(ns: &str, n: &str, h: &str) -> Element {
    Element::new(ns, n).with(href(h))
}

pub(crate) fn etag_header(e: &str) -> String {
    format!("\"{e}\"")
}

fn sync_token(modseq: i64) -> String {
    format!("{SYNC_PREFIX}{modseq}")
}

/// `If-Match` / `If-None-Match` ETag values without quotes (`W/` weak tags
/// never match a strong comparison).
/// An `If-Match` / `If-None-Match` value: `*` or a list of entity tags.
#[derive(Debug, PartialEq, Eq)]
enum EtagCond {
    Any,
    /// Strong tags without quotes; weak (`W/`) tags are dropped, as they
    /// never match a strong comparison (RFC 9110 §13.1.1).
    Tags(Vec<String>),
}

impl EtagCond {
    fn matches(&self, etag: Option<&str>) -> bool {
        match (self, etag) {
            (_, None) => false,
            (EtagCond::Any, Some(_)) => true,
            (EtagCond::Tags(t), Some(e)) => t.iter().any(|x| x == e),
        }
    }
}

fn etag_cond(headers: &HeaderMap, name: header::HeaderName) -> Option<EtagCond> {
    let v = headers.get(name)?.to_str().ok()?.trim();
    if v == "*" {
        return Some(EtagCond::Any);
    }
    Some(EtagCond::Tags(
        v.split(',')
            .map(str::trim)
            .filter(|t| !t.starts_with("W/"))
            .map(|t| t.trim_matches('"').to_string())
            .filter(|t| !t.is_empty())
            .collect(),
    ))
}

impl<S: DavStore> Ctx<'_, S> {
    pub(crate) fn store(&self) -> &S {
        &self.dav.store
    }

    pub(crate) async fn owner(&self, login: &str) -> R<DavPrincipal> {
        if login.eq_ignore_ascii_case(&self.me.login) {
            return Ok(self.me.clone());
        }
        self.store()
            .principal_by_login(login)
            .await?
            .ok_or_else(|| st(StatusCode::NOT_FOUND, "no such principal"))
    }

    /// The default collections on first use (the store names them as
    /// SOGo does).
    pub(crate) async fn ensure_defaults(&self, kind: CollectionKind) -> R<()> {
        let key = (self.me.id, kind);
        if self.dav.homes_filled.lock().unwrap().contains(&key) {
            return Ok(());
        }
        if self
            .store()
            .list_collections(self.me.id, kind)
            .await?
            .is_empty()
        {
            self.store().ensure_defaults(self.me.id).await?;
        }
        let mut filled = self.dav.homes_filled.lock().unwrap();
        // Bounded: a process serving more homes than this re-checks them.
        if filled.len() >= 100_000 {
            filled.clear();
        }
        filled.insert(key);
        Ok(())
    }

    async fn coll(&self, kind: CollectionKind, login: &str, name: &str) -> R<Option<Coll>> {
        let owner = self.owner(login).await?;
        if owner.id == self.me.id {
            self.ensure_defaults(kind).await?;
        }
        let (c, bound) = match self.store().collection(owner.id, kind, name).await? {
            Some(c) => (c, false),
            // The user's own collections come first; a directory
            // collection (the GAL) fills a name they do not use.
            None if owner.id == self.me.id => {
                match self
                    .store()
                    .directory_collections(self.me.id, kind)
                    .await?
                    .into_iter()
                    .find(|c| c.name == name)
                {
                    Some(c) => (c, true),
                    None => return Ok(None),
                }
            }
            None => return Ok(None),
        };
        let rights = self
            .store()
            .rights(self.me.id, c.id)
            .await?
            .ok_or_else(|| st(StatusCode::FORBIDDEN, "no access to this collection"))?;
        Ok(Some(Coll {
            c,
            owner,
            rights,
            bound,
        }))
    }

    pub(crate) async fn resolve(&self, p: &DavPath) -> R<Target> {
        Ok(match p {
            DavPath::Root => Target::Root,
            DavPath::Principals => Target::Principals,
            DavPath::Principal(login) => Target::Principal(self.owner(login).await?),
            DavPath::Home(kind, login) => {
                let owner = self.owner(login).await?;
                if owner.id != self.me.id {
                    return Err(st(StatusCode::FORBIDDEN, "another user's home"));
                }
                self.ensure_defaults(*kind).await?;
                Target::Home(*kind, owner)
            }
            DavPath::Collection(kind, login, name) => match self.coll(*kind, login, name).await? {
                Some(c) => Target::Collection(c),
                None => {
                    let owner = self.owner(login).await?;
                    if owner.id != self.me.id {
                        return Err(st(StatusCode::FORBIDDEN, "another user's home"));
                    }
                    Target::NewCollection(*kind, name.clone())
                }
            },
            DavPath::Schedule(..) => return Err(st(StatusCode::NOT_FOUND, "not found")),
            DavPath::Object(kind, login, cname, name) => {
                match self.coll(*kind, login, cname).await? {
                    Some(c) if c.rights >= Rights::Read => Target::Object(c, name.clone()),
                    Some(_) => return Err(st(StatusCode::FORBIDDEN, "no read access")),
                    None => return Err(st(StatusCode::CONFLICT, "the collection does not exist")),
                }
            }
        })
    }

    // --- properties -------------------------------------------------------

    pub(crate) fn common_props(&self, v: &mut Vec<Element>) {
        v.push(href_prop(
            DAV,
            "current-user-principal",
            &path::principal_href(&self.me.login),
        ));
        v.push(href_prop(
            DAV,
            "principal-collection-set",
            "/dav/principals/users/",
        ));
    }

    /// The RFC 4331 quota properties, when `req` asks for them (they sum
    /// the owner's usage).
    async fn quota_props(&self, req: &PropRequest, owner: i64, v: &mut Vec<Element>) -> R<()> {
        if !req.asks_for(DAV, "quota-used-bytes") && !req.asks_for(DAV, "quota-available-bytes") {
            return Ok(());
        }
        let q = self.store().quota(owner).await?;
        v.push(text(DAV, "quota-used-bytes", q.used_bytes.to_string()));
        if let Some(a) = q.available_bytes {
            v.push(text(DAV, "quota-available-bytes", a.to_string()));
        }
        Ok(())
    }

    fn principal_props(&self, p: &DavPrincipal) -> Vec<Element> {
        let mut v = vec![
            dav("resourcetype").with(dav("principal")),
            text(
                DAV,
                "displayname",
                p.display_name.clone().unwrap_or_else(|| p.login.clone()),
            ),
            href_prop(DAV, "principal-URL", &path::principal_href(&p.login)),
            href_prop(DAV, "owner", &path::principal_href(&p.login)),
            text(CALDAV, "calendar-user-type", p.calendar_user_type.clone()),
        ];
        if p.id == self.me.id {
            v.push(href_prop(
                CALDAV,
                "calendar-home-set",
                &path::home_href(CollectionKind::Calendar, &p.login),
            ));
            v.push(href_prop(
                CARDDAV,
                "addressbook-home-set",
                &path::home_href(CollectionKind::AddressBook, &p.login),
            ));
            self.schedule_principal_props(p, &mut v);
        }
        let mut set = Element::new(CALDAV, "calendar-user-address-set");
        for a in &p.addresses {
            set.push(href(&format!("mailto:{a}")));
        }
        set.push(href(&path::principal_href(&p.login)));
        v.push(set);
        // expand-property is not implemented.
        v.push(self.report_set(&[(DAV, "principal-property-search")]));
        let mut cups = dav("current-user-privilege-set");
        for p in privileges(Rights::Read, true) {
            cups.push(p);
        }
        v.push(cups);
        self.common_props(&mut v);
        v
    }

    fn report_set(&self, reports: &[(&str, &str)]) -> Element {
        let mut s = dav("supported-report-set");
        for (ns, r) in reports {
            s.push(dav("supported-report").with(dav("report").with(Element::new(ns, r))));
        }
        s
    }

    /// A collection's properties for an answer to `req` (the costly ones,
    /// DAV:acl and quota, only when `req` asks for them).
    async fn collection_props(&self, c: &Coll, req: &PropRequest) -> R<Vec<Element>> {
        let cal = c.c.kind == CollectionKind::Calendar;
        let mut rt = dav("resourcetype").with(dav("collection"));
        rt.push(if cal {
            Element::new(CALDAV, "calendar")
        } else {
            Element::new(CARDDAV, "addressbook")
        });
        let mut v = vec![rt];
        v.push(text(
            DAV,
            "displayname",
            c.c.display_name.clone().unwrap_or_else(|| c.c.name.clone()),
        ));
        v.push(text(CS, "getctag", c.c.ctag.to_string()));
        v.push(text(DAV, "sync-token", sync_token(c.c.ctag)));
        if !c.bound {
            v.push(href_prop(
                DAV,
                "owner",
                &path::principal_href(&c.owner.login),
            ));
        }
        if cal {
            if let Some(col) = &c.c.color {
                v.push(text(APPLE, "calendar-color", col.clone()));
            }
            if let Some(o) = c.c.order {
                v.push(text(APPLE, "calendar-order", o.to_string()));
            }
            if let Some(d) = &c.c.description {
                v.push(text(CALDAV, "calendar-description", d.clone()));
            }
            if let Some(tz) = &c.c.timezone {
                v.push(text(CALDAV, "calendar-timezone", tz.clone()));
            }
            let mut set = Element::new(CALDAV, "supported-calendar-component-set");
            for k in &c.c.components {
                set.push(Element::new(CALDAV, "comp").with_attr("name", k.as_str()));
            }
            v.push(set);
            v.push(
                Element::new(CALDAV, "supported-calendar-data").with(
                    Element::new(CALDAV, "calendar-data")
                        .with_attr("content-type", "text/calendar")
                        .with_attr("version", "2.0"),
                ),
            );
            v.push(text(
                CALDAV,
                "max-resource-size",
                self.dav.config.max_resource_size.to_string(),
            ));
            // Every calendar counts for free/busy (RFC 6638 §9.1).
            v.push(
                Element::new(CALDAV, "schedule-calendar-transp")
                    .with(Element::new(CALDAV, "opaque")),
            );
            v.push(self.report_set(&[
                (CALDAV, "calendar-query"),
                (CALDAV, "calendar-multiget"),
                (CALDAV, "free-busy-query"),
                (DAV, "sync-collection"),
            ]));
        } else {
            if let Some(d) = &c.c.description {
                v.push(text(CARDDAV, "addressbook-description", d.clone()));
            }
            let mut set = Element::new(CARDDAV, "supported-address-data");
            for ver in ["3.0", "4.0"] {
                set.push(
                    Element::new(CARDDAV, "address-data-type")
                        .with_attr("content-type", "text/vcard")
                        .with_attr("version", ver),
                );
            }
            v.push(set);
            v.push(text(
                CARDDAV,
                "max-resource-size",
                self.dav.config.max_resource_size.to_string(),
            ));
            v.push(self.report_set(&[
                (CARDDAV, "addressbook-query"),
                (CARDDAV, "addressbook-multiget"),
                (DAV, "sync-collection"),
            ]));
        }
        let mut cups = dav("current-user-privilege-set");
        for p in privileges(c.rights, c.c.read_only) {
            cups.push(p);
        }
        v.push(cups);
        if c.rights == Rights::Owner && req.asks_for(DAV, "acl") {
            v.push(self.acl(c).await?);
        }
        if !c.bound {
            self.quota_props(req, c.owner.id, &mut v).await?;
        }
        self.lock_props(|| crate::locking::collection_key(c), c.can_write(), &mut v);
        self.common_props(&mut v);
        Ok(v)
    }

    /// DAV:acl (RFC 3744 §5.5), read-only: the owner's ACE and one per grant.
    async fn acl(&self, c: &Coll) -> R<Element> {
        let mut acl = dav("acl");
        let ace = |h: &str, rights: Rights, protected: bool| {
            let mut g = dav("grant");
            for p in privileges(rights, c.c.read_only) {
                g.push(p);
            }
            let mut a = dav("ace").with(dav("principal").with(href(h))).with(g);
            if protected {
                a.push(dav("protected"));
            }
            a
        };
        acl.push(ace(
            &path::principal_href(&c.owner.login),
            Rights::Owner,
            true,
        ));
        for g in self.store().grants(c.c.id).await? {
            acl.push(ace(
                &path::principal_href(&g.grantee_login),
                g.rights,
                false,
            ));
        }
        Ok(acl)
    }

    fn home_props(&self, kind: CollectionKind, owner: &DavPrincipal) -> Vec<Element> {
        let mut v = vec![
            dav("resourcetype").with(dav("collection")),
            text(DAV, "displayname", owner.login.clone()),
            href_prop(DAV, "owner", &path::principal_href(&owner.login)),
        ];
        let mut cups = dav("current-user-privilege-set");
        for p in privileges(Rights::Owner, false) {
            cups.push(p);
        }
        v.push(cups);
        let _ = kind;
        self.common_props(&mut v);
        v
    }

    fn object_props(&self, c: &Coll, m: &ObjectMeta) -> Vec<Element> {
        let ct = match m.kind {
            ComponentKind::VCard => "text/vcard; charset=utf-8".to_string(),
            k => format!(
                "text/calendar; charset=utf-8; component={}",
                k.as_str().to_ascii_lowercase()
            ),
        };
        let mut v = vec![
            dav("resourcetype"),
            text(DAV, "getetag", etag_header(&m.etag)),
            text(DAV, "getcontenttype", ct),
            text(DAV, "getcontentlength", m.size.to_string()),
        ];
        if !c.bound {
            v.push(href_prop(
                DAV,
                "owner",
                &path::principal_href(&c.owner.login),
            ));
        }
        v.extend(schedule_tag_prop(m));
        let mut cups = dav("current-user-privilege-set");
        for p in privileges(c.rights, c.c.read_only) {
            cups.push(p);
        }
        v.push(cups);
        self.lock_props(
            || crate::locking::object_key(c, &m.name),
            c.can_write(),
            &mut v,
        );
        self.common_props(&mut v);
        v
    }

    /// Splits `available` into 200 and 404 groups for the request; adds
    /// calendar-data/address-data from `data` when asked.
    pub(crate) fn answer(
        &self,
        req: &PropRequest,
        available: Vec<Element>,
        data: Option<ObjectData<'_>>,
    ) -> R<Vec<(u16, Vec<Element>)>> {
        match req {
            PropRequest::AllProp => {
                let v = available
                    .into_iter()
                    .filter(|e| {
                        !(e.is(DAV, "acl")
                            || e.is(DAV, "current-user-privilege-set")
                            || e.is(DAV, "supported-report-set")
                            || e.name.ns == DAV && e.name.local.starts_with("quota"))
                    })
                    .collect();
                Ok(vec![(200, v)])
            }
            PropRequest::PropName => Ok(vec![(
                200,
                available.iter().map(|e| empty(&e.name)).collect(),
            )]),
            PropRequest::Prop(want) => {
                let mut found = Vec::new();
                let mut missing = Vec::new();
                for w in want {
                    if w.is(CALDAV, "calendar-data") || w.is(CARDDAV, "address-data") {
                        match data {
                            Some(d) => found.push(self.object_data(w, d)?),
                            None => missing.push(empty(&w.name)),
                        }
                        continue;
                    }
                    match available.iter().find(|e| e.name == w.name) {
                        Some(e) => found.push(e.clone()),
                        None => missing.push(empty(&w.name)),
                    }
                }
                Ok(vec![(200, found), (404, missing)])
            }
        }
    }

    fn object_data(&self, want: &Element, d: ObjectData<'_>) -> R<Element> {
        let (bytes, tz) = (d.bytes, d.tz);
        if want.is(CALDAV, "calendar-data") {
            let opts = proto::calendar_data_options(want)?;
            let source = || String::from_utf8_lossy(bytes).into_owned();
            let text = if opts.expand.is_none() && opts.limit_recurrence.is_none() {
                source()
            } else {
                let limits = content::read_limits();
                // A calendar-query has parsed the object already.
                let parsed = match d.parsed {
                    Some(p) => Some(std::borrow::Cow::Borrowed(p)),
                    None => content::stored_calendar(bytes, &content::read_options(tz))
                        .map(std::borrow::Cow::Owned),
                };
                let written = parsed.and_then(|cal| match (opts.expand, opts.limit_recurrence) {
                    (Some(tr), _) => cal
                        .write_expanded(Window::between(tr.start, tr.end), &limits)
                        .ok(),
                    (None, Some(tr)) => cal
                        .write_limited(Window::between(tr.start, tr.end), &limits)
                        .ok(),
                    (None, None) => None,
                });
                written.unwrap_or_else(source)
            };
            Ok(Element::new(CALDAV, "calendar-data").with_text(text))
        } else {
            let version = match want.attr("version") {
                Some("4.0") => Some(VcardVersion::V4),
                Some("3.0") => Some(VcardVersion::V3),
                _ => None,
            };
            Ok(Element::new(CARDDAV, "address-data").with_text(card_in_version(bytes, version)))
        }
    }

    // --- methods ------------------------------------------------------------

    async fn propfind(
        &self,
        raw_path: &str,
        target: Target,
        headers: &HeaderMap,
        body: &[u8],
    ) -> R<Response> {
        let depth = match headers
            .get("depth")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.trim().to_ascii_lowercase())
        {
            None => 0,
            Some(d) if d == "0" => 0,
            Some(d) if d == "1" => 1,
            Some(_) => return Err(cond(StatusCode::FORBIDDEN, DAV, "propfind-finite-depth")),
        };
        let req = proto::parse_propfind(body)?;
        let mut out = Vec::new();
        match target {
            Target::Root => {
                let mut v = vec![dav("resourcetype").with(dav("collection"))];
                self.common_props(&mut v);
                let h = if raw_path.starts_with("/dav") {
                    "/dav/"
                } else {
                    "/"
                };
                out.push(prop_response(h, self.answer(&req, v, None)?));
                if depth == 1 {
                    out.push(prop_response(
                        &path::principal_href(&self.me.login),
                        self.answer(&req, self.principal_props(&self.me), None)?,
                    ));
                    for k in [CollectionKind::Calendar, CollectionKind::AddressBook] {
                        self.ensure_defaults(k).await?;
                        out.push(prop_response(
                            &path::home_href(k, &self.me.login),
                            self.answer(&req, self.home_props(k, &self.me), None)?,
                        ));
                    }
                }
            }
            Target::Principals => {
                let mut v = vec![dav("resourcetype").with(dav("collection"))];
                self.common_props(&mut v);
                out.push(prop_response(
                    "/dav/principals/users/",
                    self.answer(&req, v, None)?,
                ));
                if depth == 1 {
                    out.push(prop_response(
                        &path::principal_href(&self.me.login),
                        self.answer(&req, self.principal_props(&self.me), None)?,
                    ));
                }
            }
            Target::Principal(p) => {
                out.push(prop_response(
                    &path::principal_href(&p.login),
                    self.answer(&req, self.principal_props(&p), None)?,
                ));
            }
            Target::Home(kind, owner) => {
                let mut v = self.home_props(kind, &owner);
                self.quota_props(&req, owner.id, &mut v).await?;
                out.push(prop_response(
                    &path::home_href(kind, &owner.login),
                    self.answer(&req, v, None)?,
                ));
                if depth == 1 {
                    let mut colls: Vec<Coll> = self
                        .store()
                        .list_collections(owner.id, kind)
                        .await?
                        .into_iter()
                        .map(|c| Coll {
                            c,
                            owner: owner.clone(),
                            rights: Rights::Owner,
                            bound: false,
                        })
                        .collect();
                    for c in self.store().directory_collections(owner.id, kind).await? {
                        if colls.iter().any(|o| o.c.name == c.name) {
                            continue;
                        }
                        if let Some(rights) = self.store().rights(self.me.id, c.id).await? {
                            colls.push(Coll {
                                c,
                                owner: owner.clone(),
                                rights,
                                bound: true,
                            });
                        }
                    }
                    for (c, rights) in self.store().shared_with(self.me.id, kind).await? {
                        if rights < Rights::Read {
                            continue;
                        }
                        if let Some(o) = self.store().principal(c.owner).await? {
                            colls.push(Coll {
                                c,
                                owner: o,
                                rights,
                                bound: false,
                            });
                        }
                    }
                    for c in colls {
                        let v = self.collection_props(&c, &req).await?;
                        out.push(prop_response(&c.href(), self.answer(&req, v, None)?));
                    }
                }
            }
            Target::Collection(c) => {
                if !c.can_read() {
                    return Err(st(StatusCode::FORBIDDEN, "no read access"));
                }
                let v = self.collection_props(&c, &req).await?;
                out.push(prop_response(&c.href(), self.answer(&req, v, None)?));
                if depth == 1 {
                    let metas = self.store().list_objects(c.c.id).await?;
                    out.extend(self.object_responses(&c, &req, metas).await?);
                }
            }
            Target::Object(c, name) => {
                let Some(o) = self.store().object(c.c.id, &name).await? else {
                    return Err(st(StatusCode::NOT_FOUND, "no such object"));
                };
                let v = self.object_props(&c, &o.meta);
                out.push(prop_response(
                    &c.obj_href(&name),
                    self.answer(
                        &req,
                        v,
                        Some(ObjectData::new(&o.data, c.c.timezone.as_deref())),
                    )?,
                ));
            }
            Target::NewCollection(..) => {
                return Err(st(StatusCode::NOT_FOUND, "no such collection"))
            }
        }
        Ok(multi(out, None))
    }

    /// Responses for objects, fetching bytes only when data is asked for.
    async fn object_responses(
        &self,
        c: &Coll,
        req: &PropRequest,
        metas: Vec<ObjectMeta>,
    ) -> R<Vec<Element>> {
        let wants_data = req.wants(CALDAV, "calendar-data").is_some()
            || req.wants(CARDDAV, "address-data").is_some();
        let mut out = Vec::new();
        if wants_data {
            for chunk in metas.chunks(100) {
                let names: Vec<String> = chunk.iter().map(|m| m.name.clone()).collect();
                for o in self.store().objects(c.c.id, &names).await? {
                    let v = self.object_props(c, &o.meta);
                    out.push(prop_response(
                        &c.obj_href(&o.meta.name),
                        self.answer(
                            req,
                            v,
                            Some(ObjectData::new(&o.data, c.c.timezone.as_deref())),
                        )?,
                    ));
                }
            }
        } else {
            for m in metas {
                let v = self.object_props(c, &m);
                out.push(prop_response(
                    &c.obj_href(&m.name),
                    self.answer(req, v, None)?,
                ));
            }
        }
        Ok(out)
    }

    async fn proppatch(&self, target: Target, body: &[u8]) -> R<Response> {
        let ops = proto::parse_proppatch(body)?;
        let (c, href) = match target {
            Target::Collection(c) => {
                let h = c.href();
                (c, h)
            }
            Target::NewCollection(..) => {
                return Err(st(StatusCode::NOT_FOUND, "no such collection"))
            }
            _ => {
                return Err(st(
                    StatusCode::FORBIDDEN,
                    "properties of this resource cannot be changed",
                ))
            }
        };
        if c.rights != Rights::Owner || c.c.read_only {
            return Err(cond(StatusCode::FORBIDDEN, DAV, "need-privileges"));
        }
        let mut patch = CollectionPatch::default();
        let mut ok = Vec::new();
        let mut failed = Vec::new();
        for op in &ops {
            let (name, value) = match op {
                PatchOp::Set(e) => (&e.name, Some(e)),
                PatchOp::Remove(n) => (n, None),
            };
            match apply_prop(&mut patch, c.c.kind, name, value) {
                Ok(()) => ok.push(empty(name)),
                Err(()) => failed.push(empty(name)),
            }
        }
        let groups = if failed.is_empty() {
            if !patch.is_empty() {
                self.store().update_collection(c.c.id, patch).await?;
            }
            vec![(200, ok)]
        } else {
            vec![(403, failed), (424, ok)]
        };
        Ok(multi(vec![prop_response(&href, groups)], None))
    }

    async fn mkcol(&self, target: Target, is_mkcalendar: bool, body: &[u8]) -> R<Response> {
        let (kind, name) = match target {
            Target::NewCollection(k, n) => (k, n),
            Target::Collection(_) => {
                return Err(st(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "the collection already exists",
                ))
            }
            Target::Object(..) => {
                return Err(st(StatusCode::FORBIDDEN, "collections cannot be nested"))
            }
            _ => return Err(st(StatusCode::FORBIDDEN, "no collection can be made here")),
        };
        let req = proto::parse_mkcol(body)?;
        if is_mkcalendar && kind != CollectionKind::Calendar {
            return Err(st(
                StatusCode::FORBIDDEN,
                "MKCALENDAR only in a calendar home",
            ));
        }
        if !req.resourcetype.is_empty() {
            let want_cal = req.resourcetype.iter().any(|n| n.is(CALDAV, "calendar"));
            let want_ab = req
                .resourcetype
                .iter()
                .any(|n| n.is(CARDDAV, "addressbook"));
            if (kind == CollectionKind::Calendar && !want_cal)
                || (kind == CollectionKind::AddressBook && !want_ab)
            {
                return Err(cond(StatusCode::FORBIDDEN, DAV, "valid-resourcetype"));
            }
        }
        let mut patch = CollectionPatch::default();
        let mut components = Vec::new();
        for p in &req.props {
            if p.is(CALDAV, "supported-calendar-component-set") && kind == CollectionKind::Calendar
            {
                for comp in p.children_named(CALDAV, "comp") {
                    match comp.attr("name").and_then(ComponentKind::parse) {
                        Some(k) if k != ComponentKind::VCard => components.push(k),
                        _ => {
                            return Err(cond(
                                StatusCode::FORBIDDEN,
                                CALDAV,
                                "supported-calendar-component",
                            ))
                        }
                    }
                }
                continue;
            }
            // Properties this server does not keep are ignored (clients send
            // many); bad values of the ones it keeps fail the request.
            let known = is_known_prop(kind, &p.name);
            if known && apply_prop(&mut patch, kind, &p.name, Some(p)).is_err() {
                return Err(cond(StatusCode::FORBIDDEN, CALDAV, "valid-calendar-data"));
            }
        }
        let new = NewCollection {
            name,
            display_name: patch.display_name.flatten(),
            color: patch.color.flatten(),
            description: patch.description.flatten(),
            timezone: patch.timezone.flatten(),
            components,
            order: patch.order.flatten(),
        };
        self.store()
            .create_collection(self.me.id, kind, new)
            .await?;
        Ok(StatusCode::CREATED.into_response())
    }

    async fn get(&self, target: Target, headers: &HeaderMap, head: bool) -> R<Response> {
        let Target::Object(c, name) = target else {
            return Ok((StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, ALLOW)]).into_response());
        };
        let o = self
            .store()
            .object(c.c.id, &name)
            .await?
            .ok_or_else(|| st(StatusCode::NOT_FOUND, "no such object"))?;
        if etag_cond(headers, header::IF_NONE_MATCH).is_some_and(|c| c.matches(Some(&o.meta.etag)))
        {
            return Ok((
                StatusCode::NOT_MODIFIED,
                [(header::ETAG, etag_header(&o.meta.etag))],
            )
                .into_response());
        }
        let (ct, body) = if o.meta.kind == ComponentKind::VCard {
            let accept = headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let version = if accept.contains("version=4.0") {
                Some(VcardVersion::V4)
            } else if accept.contains("version=3.0") {
                Some(VcardVersion::V3)
            } else {
                None
            };
            let body = card_in_version(&o.data, version).into_bytes();
            ("text/vcard; charset=utf-8", body)
        } else {
            ("text/calendar; charset=utf-8", o.data)
        };
        let len = body.len();
        let mut r = Response::new(if head {
            Body::empty()
        } else {
            Body::from(body)
        });
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        if let Ok(v) = HeaderValue::from_str(&etag_header(&o.meta.etag)) {
            h.insert(header::ETAG, v);
        }
        schedule_tag_header(h, &o.meta);
        Ok(r)
    }

    async fn put(&self, target: Target, headers: &HeaderMap, body: Bytes) -> R<Response> {
        let Target::Object(c, name) = target else {
            return Err(st(
                StatusCode::METHOD_NOT_ALLOWED,
                "PUT only creates objects in a collection",
            ));
        };
        if !c.can_write() {
            return Err(cond(StatusCode::FORBIDDEN, DAV, "need-privileges"));
        }
        let cal = c.c.kind == CollectionKind::Calendar;
        let ns = if cal { CALDAV } else { CARDDAV };
        if body.len() > self.dav.config.max_resource_size {
            return Err(cond(StatusCode::FORBIDDEN, ns, "max-resource-size"));
        }
        let ctype = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let object = if cal {
            if !ctype.is_empty() && !ctype.starts_with("text/calendar") {
                return Err(cond(
                    StatusCode::FORBIDDEN,
                    CALDAV,
                    "supported-calendar-data",
                ));
            }
            // The ingest the store indexes is the validation: parsed once.
            let opts = content::options(c.c.timezone.as_deref(), self.dav.config.max_resource_size);
            let parsed = outpost_pim::ingest_icalendar(&body, &opts).map_err(|e| {
                let (ns, c) = content::calendar_refusal(&e);
                Fail::Refused(StatusCode::FORBIDDEN, ns, c, e.to_string())
            })?;
            if !c
                .c
                .components
                .contains(&content::kind_of(parsed.index.kind))
            {
                return Err(cond(
                    StatusCode::FORBIDDEN,
                    CALDAV,
                    "supported-calendar-component",
                ));
            }
            NewObject::Calendar(Box::new(parsed))
        } else {
            if !(ctype.is_empty()
                || ctype.starts_with("text/vcard")
                || ctype.starts_with("text/x-vcard"))
            {
                return Err(cond(
                    StatusCode::FORBIDDEN,
                    CARDDAV,
                    "supported-address-data",
                ));
            }
            let limits = Limits {
                max_bytes: self.dav.config.max_resource_size,
                ..Limits::default()
            };
            let index = outpost_pim::ingest_vcard(&body, &limits).map_err(|e| {
                let (ns, c) = content::card_refusal(&e);
                Fail::Refused(StatusCode::FORBIDDEN, ns, c, e.to_string())
            })?;
            NewObject::Contact(Box::new(index))
        };
        let if_match = etag_cond(headers, header::IF_MATCH);
        let if_none = etag_cond(headers, header::IF_NONE_MATCH);
        let condition = match (&if_match, &if_none) {
            (None, None) => PutCondition::None,
            (None, Some(EtagCond::Any)) => PutCondition::IfNoneMatchAny,
            _ => {
                // Compare with the current version, then let the store
                // check that it is still the one replaced.
                let current = self
                    .store()
                    .object(c.c.id, &name)
                    .await?
                    .map(|o| o.meta.etag);
                let ok = if_match
                    .as_ref()
                    .is_none_or(|m| m.matches(current.as_deref()))
                    && !if_none
                        .as_ref()
                        .is_some_and(|n| n.matches(current.as_deref()));
                if !ok {
                    return Err(st(StatusCode::PRECONDITION_FAILED, "precondition failed"));
                }
                match current {
                    Some(e) => PutCondition::IfMatch(e),
                    None => PutCondition::IfNoneMatchAny,
                }
            }
        };
        let (condition, data) = self
            .if_schedule_tag(c.c.id, &c.owner, &name, headers, condition, &body)
            .await?;
        // The organizer's copy with the attendees' stored answers kept
        // (If-Schedule-Tag-Match) is what is written: ingested again.
        let object = if data.as_slice() != &body[..] {
            let opts = content::options(c.c.timezone.as_deref(), self.dav.config.max_resource_size);
            let parsed = outpost_pim::ingest_icalendar(&data, &opts).map_err(|e| {
                let (ns, c) = content::calendar_refusal(&e);
                Fail::Refused(StatusCode::FORBIDDEN, ns, c, e.to_string())
            })?;
            NewObject::Calendar(Box::new(parsed))
        } else {
            object
        };
        match self
            .store()
            .put_object(
                c.c.id,
                &name,
                data,
                object,
                condition,
                schedule_reply(headers),
            )
            .await?
        {
            PutOutcome::Created { etag } => {
                self.put_done(StatusCode::CREATED, c.c.id, &name, &etag, &body)
                    .await
            }
            PutOutcome::Replaced { etag } => {
                self.put_done(StatusCode::NO_CONTENT, c.c.id, &name, &etag, &body)
                    .await
            }
            PutOutcome::PreconditionFailed => {
                Err(st(StatusCode::PRECONDITION_FAILED, "precondition failed"))
            }
            PutOutcome::UidConflict { existing } => Err(Fail::Cond(
                StatusCode::FORBIDDEN,
                ns,
                "no-uid-conflict",
                vec![href(&c.obj_href(&existing))],
            )),
        }
    }

    async fn delete(&self, target: Target, headers: &HeaderMap) -> R<Response> {
        match target {
            Target::Object(c, name) => {
                if !c.can_write() {
                    return Err(cond(StatusCode::FORBIDDEN, DAV, "need-privileges"));
                }
                let if_match = etag_cond(headers, header::IF_MATCH);
                let if_tag = self.schedule_tag_wanted(headers)?;
                // The current version when a condition names it; its ETag
                // then guards the delete, so a change in between fails it.
                let if_match = if if_match.is_none() && if_tag.is_none() {
                    None
                } else {
                    let current = self.store().object(c.c.id, &name).await?;
                    let etag = current.as_ref().map(|o| o.meta.etag.clone());
                    if if_match
                        .as_ref()
                        .is_some_and(|m| !m.matches(etag.as_deref()))
                    {
                        return Err(st(StatusCode::PRECONDITION_FAILED, "precondition failed"));
                    }
                    // RFC 6638 §8.3: If-Schedule-Tag-Match applies to DELETE too.
                    if let Some(want) = &if_tag {
                        if current
                            .as_ref()
                            .and_then(|o| o.meta.schedule_tag.as_deref())
                            != Some(want.as_str())
                        {
                            return Err(st(
                                StatusCode::PRECONDITION_FAILED,
                                "the Schedule-Tag does not match",
                            ));
                        }
                    }
                    etag
                };
                match self
                    .store()
                    .delete_object(c.c.id, &name, if_match.as_deref(), schedule_reply(headers))
                    .await?
                {
                    DeleteOutcome::Deleted => Ok(StatusCode::NO_CONTENT.into_response()),
                    DeleteOutcome::NotFound => Err(st(StatusCode::NOT_FOUND, "no such object")),
                    DeleteOutcome::PreconditionFailed => {
                        Err(st(StatusCode::PRECONDITION_FAILED, "precondition failed"))
                    }
                }
            }
            Target::Collection(c) => {
                if c.rights != Rights::Owner || c.c.read_only {
                    return Err(cond(StatusCode::FORBIDDEN, DAV, "need-privileges"));
                }
                self.store().delete_collection(c.c.id).await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            }
            Target::NewCollection(..) => Err(st(StatusCode::NOT_FOUND, "no such collection")),
            _ => Err(st(StatusCode::FORBIDDEN, "this resource cannot be deleted")),
        }
    }

    async fn transfer(&self, target: Target, headers: &HeaderMap, is_move: bool) -> R<Response> {
        let Target::Object(src, name) = target else {
            return Err(st(
                StatusCode::FORBIDDEN,
                "only objects can be copied or moved",
            ));
        };
        let dest = headers
            .get("destination")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| st(StatusCode::BAD_REQUEST, "Destination header missing"))?;
        let dpath = match path::parse_path(path::href_path(dest)) {
            Ok(p) => p,
            Err(PathError::Forbidden(m)) => return Err(st(StatusCode::FORBIDDEN, m)),
            Err(PathError::NotFound) => {
                return Err(st(
                    StatusCode::BAD_GATEWAY,
                    "destination is not on this server's DAV tree",
                ))
            }
        };
        let Target::Object(dst, new_name) = self.resolve(&dpath).await? else {
            return Err(st(
                StatusCode::FORBIDDEN,
                "the destination must be an object in a collection",
            ));
        };
        if dst.c.owner != src.c.owner || dst.c.kind != src.c.kind {
            return Err(st(
                StatusCode::FORBIDDEN,
                "objects move only inside the owner's homes",
            ));
        }
        if !dst.can_write() || (is_move && !src.can_write()) {
            return Err(cond(StatusCode::FORBIDDEN, DAV, "need-privileges"));
        }
        let overwrite = !matches!(headers.get("overwrite").and_then(|v| v.to_str().ok()), Some(v) if v.trim().eq_ignore_ascii_case("f"));
        if let Some(o) = self.store().object(src.c.id, &name).await? {
            if dst.c.kind == CollectionKind::Calendar && !dst.c.components.contains(&o.meta.kind) {
                return Err(cond(
                    StatusCode::FORBIDDEN,
                    CALDAV,
                    "supported-calendar-component",
                ));
            }
        }
        let ns = if dst.c.kind == CollectionKind::Calendar {
            CALDAV
        } else {
            CARDDAV
        };
        match self
            .store()
            .transfer_object(src.c.id, &name, dst.c.id, &new_name, overwrite, is_move)
            .await?
        {
            PutOutcome::Created { .. } => Ok(StatusCode::CREATED.into_response()),
            PutOutcome::Replaced { .. } => Ok(StatusCode::NO_CONTENT.into_response()),
            PutOutcome::PreconditionFailed => Err(st(
                StatusCode::PRECONDITION_FAILED,
                "the destination exists (Overwrite: F) or is the source",
            )),
            PutOutcome::UidConflict { existing } => Err(Fail::Cond(
                StatusCode::FORBIDDEN,
                ns,
                "no-uid-conflict",
                vec![href(&dst.obj_href(&existing))],
            )),
        }
    }

    // --- reports ------------------------------------------------------------

    async fn report(&self, target: Target, headers: &HeaderMap, body: &[u8]) -> R<Response> {
        let _ = headers;
        let report = proto::parse_report(body)?;
        if let Report::PrincipalPropertySearch {
            props,
            matches,
            any,
        } = &report
        {
            return match target {
                Target::Root | Target::Principals | Target::Principal(_) => {
                    self.principal_search(props, matches, *any).await
                }
                _ => Err(cond(StatusCode::FORBIDDEN, DAV, "supported-report")),
            };
        }
        let c = match target {
            Target::Collection(c) => c,
            Target::NewCollection(..) => {
                return Err(st(StatusCode::NOT_FOUND, "no such collection"))
            }
            _ => return Err(cond(StatusCode::FORBIDDEN, DAV, "supported-report")),
        };
        let cal = c.c.kind == CollectionKind::Calendar;
        if let Report::FreeBusy(tr) = &report {
            if !cal {
                return Err(cond(StatusCode::FORBIDDEN, DAV, "supported-report"));
            }
            return self.free_busy(&c, *tr).await;
        }
        if !c.can_read() {
            return Err(cond(StatusCode::FORBIDDEN, DAV, "need-privileges"));
        }
        match report {
            Report::CalendarMultiget { props, hrefs } if cal => {
                self.multiget(&c, &props, &hrefs).await
            }
            Report::AddressbookMultiget { props, hrefs } if !cal => {
                self.multiget(&c, &props, &hrefs).await
            }
            Report::CalendarQuery { props, filter } if cal => {
                self.calendar_query(&c, &props, &filter).await
            }
            Report::AddressbookQuery {
                props,
                filter,
                limit,
            } if !cal => self.addressbook_query(&c, &props, &filter, limit).await,
            Report::SyncCollection {
                token,
                limit,
                props,
            } => self.sync(&c, &props, &token, limit).await,
            _ => Err(cond(StatusCode::FORBIDDEN, DAV, "supported-report")),
        }
    }

    /// RFC 3744 9.4 over the directory: the first text narrows the search,
    /// the others are checked here; at most [`PRINCIPAL_SEARCH_LIMIT`].
    async fn principal_search(
        &self,
        props: &PropRequest,
        matches: &[String],
        any: bool,
    ) -> R<Response> {
        let found: Vec<DavPrincipal> = if any {
            let mut v: Vec<DavPrincipal> = Vec::new();
            for m in matches {
                for p in self
                    .store()
                    .search_principals(m, PRINCIPAL_SEARCH_LIMIT)
                    .await?
                {
                    if !v.iter().any(|x| x.id == p.id) {
                        v.push(p);
                    }
                }
            }
            v.truncate(PRINCIPAL_SEARCH_LIMIT);
            v
        } else {
            let first = matches.first().map(String::as_str).unwrap_or("");
            let contains = |p: &DavPrincipal, t: &str| {
                let t = t.to_lowercase();
                p.display_name
                    .as_deref()
                    .is_some_and(|n| n.to_lowercase().contains(&t))
                    || p.addresses.iter().any(|a| a.to_lowercase().contains(&t))
            };
            self.store()
                .search_principals(first, PRINCIPAL_SEARCH_LIMIT)
                .await?
                .into_iter()
                .filter(|p| matches.iter().skip(1).all(|m| contains(p, m)))
                .collect()
        };
        let mut out = Vec::new();
        for p in &found {
            let mut v = self.principal_props(p);
            if p.id != self.me.id {
                // Clients take the homes of the principals they find (for
                // free/busy and invitations); the homes still answer only
                // their owner.
                v.push(href_prop(
                    CALDAV,
                    "calendar-home-set",
                    &path::home_href(CollectionKind::Calendar, &p.login),
                ));
                v.push(href_prop(
                    CARDDAV,
                    "addressbook-home-set",
                    &path::home_href(CollectionKind::AddressBook, &p.login),
                ));
            }
            out.push(prop_response(
                &path::principal_href(&p.login),
                self.answer(props, v, None)?,
            ));
        }
        Ok(multi(out, None))
    }

    async fn multiget(&self, c: &Coll, props: &PropRequest, hrefs: &[String]) -> R<Response> {
        let mut names = Vec::new();
        let mut out = Vec::new();
        for h in hrefs {
            match path::parse_path(path::href_path(h)) {
                Ok(DavPath::Object(k, login, cname, name))
                    if k == c.c.kind
                        && login.eq_ignore_ascii_case(&c.owner.login)
                        && cname == c.c.name =>
                {
                    names.push((h.clone(), name))
                }
                _ => out.push(status_response(h, 404)),
            }
        }
        let wanted: Vec<String> = names.iter().map(|(_, n)| n.clone()).collect();
        let mut found = std::collections::HashMap::new();
        for chunk in wanted.chunks(100) {
            for o in self.store().objects(c.c.id, chunk).await? {
                found.insert(o.meta.name.clone(), o);
            }
        }
        for (h, n) in names {
            match found.get(&n) {
                Some(o) => {
                    let v = self.object_props(c, &o.meta);
                    out.push(prop_response(
                        &h,
                        self.answer(
                            props,
                            v,
                            Some(ObjectData::new(&o.data, c.c.timezone.as_deref())),
                        )?,
                    ));
                }
                None => out.push(status_response(&h, 404)),
            }
        }
        Ok(multi(out, None))
    }

    async fn calendar_query(
        &self,
        c: &Coll,
        props: &PropRequest,
        filter: &CompFilter,
    ) -> R<Response> {
        if filter.name != "VCALENDAR" {
            return Err(cond(StatusCode::FORBIDDEN, CALDAV, "valid-filter"));
        }
        // Candidates: from the instances index when the query names a
        // component with a time range, else every object.
        let mut candidates: Option<Vec<Candidate>> = None;
        // The filter is a VEVENT time range and nothing else: an exact
        // candidate (the index saw an instance in the range) matches
        // without a parse.
        let mut range_only = false;
        if let [inner] = filter.comps.as_slice() {
            if let (Some(kind), Some(tr), false) = (
                ComponentKind::parse(&inner.name),
                inner.time_range,
                inner.is_not_defined,
            ) {
                range_only = kind == ComponentKind::VEvent
                    && filter.props.is_empty()
                    && filter.time_range.is_none()
                    && !filter.is_not_defined
                    && inner.props.is_empty()
                    && inner.comps.is_empty();
                candidates = Some(
                    self.store()
                        .time_range_candidates(c.c.id, kind, tr.start, tr.end)
                        .await?,
                );
            }
        }
        let candidates = match candidates {
            Some(n) => n,
            None => self
                .store()
                .list_objects(c.c.id)
                .await?
                .into_iter()
                .map(|m| Candidate {
                    name: m.name,
                    exact: false,
                })
                .collect(),
        };
        let exact: std::collections::HashSet<&str> = candidates
            .iter()
            .filter(|x| range_only && x.exact)
            .map(|x| x.name.as_str())
            .collect();
        let names: Vec<String> = candidates.iter().map(|x| x.name.clone()).collect();
        let mut out = Vec::new();
        let read = content::read_options(c.c.timezone.as_deref());
        for chunk in names.chunks(100) {
            for o in self.store().objects(c.c.id, chunk).await? {
                // An exact candidate of a range-only filter matches without
                // a parse (calendar-data parses it if it expands).
                let parsed = if exact.contains(o.meta.name.as_str()) {
                    None
                } else {
                    let Some(parsed) = content::stored_calendar(&o.data, &read) else {
                        continue;
                    };
                    let instances = content::filter_instances(&parsed, filter);
                    if !crate::filter::calendar_matches(&parsed.tree(), &instances, filter) {
                        continue;
                    }
                    Some(parsed)
                };
                let v = self.object_props(c, &o.meta);
                let data = ObjectData {
                    parsed: parsed.as_ref(),
                    ..ObjectData::new(&o.data, c.c.timezone.as_deref())
                };
                out.push(prop_response(
                    &c.obj_href(&o.meta.name),
                    self.answer(props, v, Some(data))?,
                ));
            }
        }
        Ok(multi(out, None))
    }

    async fn addressbook_query(
        &self,
        c: &Coll,
        props: &PropRequest,
        filter: &CardFilter,
        limit: Option<usize>,
    ) -> R<Response> {
        // The store's contact search narrows the candidates when the
        // filter's text-matches on names and addresses say which cards can
        // match (the GAL is never read whole for a name search); the exact
        // check below decides.
        let names: Vec<String> = match crate::filter::contact_search_texts(filter) {
            Some(texts) => {
                let mut names: Vec<String> = Vec::new();
                for text in texts {
                    for n in self.store().search_contacts(c.c.id, &text).await? {
                        if !names.contains(&n) {
                            names.push(n);
                        }
                    }
                }
                names
            }
            None => self
                .store()
                .list_objects(c.c.id)
                .await?
                .into_iter()
                .map(|m| m.name)
                .collect(),
        };
        let mut out = Vec::new();
        let mut truncated = false;
        'outer: for chunk in names.chunks(100) {
            for o in self.store().objects(c.c.id, chunk).await? {
                let Ok(card) = outpost_pim::parse_vcard(&o.data, &content::read_limits()) else {
                    continue;
                };
                if !crate::filter::card_matches(&card.props(), filter) {
                    continue;
                }
                if limit.is_some_and(|l| out.len() >= l) {
                    truncated = true;
                    break 'outer;
                }
                let v = self.object_props(c, &o.meta);
                out.push(prop_response(
                    &c.obj_href(&o.meta.name),
                    self.answer(
                        props,
                        v,
                        Some(ObjectData::new(&o.data, c.c.timezone.as_deref())),
                    )?,
                ));
            }
        }
        if truncated {
            out.push(
                status_response(&c.href(), 507)
                    .with(dav("error").with(dav("number-of-matches-within-limits"))),
            );
        }
        Ok(multi(out, None))
    }

    async fn sync(
        &self,
        c: &Coll,
        props: &PropRequest,
        token: &str,
        limit: Option<usize>,
    ) -> R<Response> {
        let page = limit
            .unwrap_or(self.dav.config.sync_page)
            .min(self.dav.config.sync_page);
        if page == 0 {
            return Err(cond(
                StatusCode::FORBIDDEN,
                DAV,
                "number-of-matches-within-limits",
            ));
        }
        // Everything after the token, in modseq order: (modseq, live meta
        // or removed name).
        let mut items: Vec<(i64, Result<ObjectMeta, String>)> = Vec::new();
        let highest;
        if token.is_empty() {
            let metas = self.store().list_objects(c.c.id).await?;
            highest = c.c.ctag;
            items.extend(metas.into_iter().map(|m| (m.modseq, Ok(m))));
        } else {
            let t: i64 = token
                .strip_prefix(SYNC_PREFIX)
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| cond(StatusCode::FORBIDDEN, DAV, "valid-sync-token"))?;
            match self.store().changes_since(c.c.id, t).await? {
                SyncAnswer::TooOld => {
                    return Err(cond(StatusCode::FORBIDDEN, DAV, "valid-sync-token"))
                }
                SyncAnswer::Changes {
                    highest: h,
                    changed,
                    removed,
                } => {
                    highest = h;
                    items.extend(changed.into_iter().map(|m| (m.modseq, Ok(m))));
                    items.extend(removed.into_iter().map(|(n, m)| (m, Err(n))));
                }
            }
        }
        items.sort_by_key(|(m, _)| *m);
        let mut next = highest;
        let truncated = items.len() > page;
        if truncated {
            items.truncate(page);
            next = items.last().map(|(m, _)| *m).unwrap_or(highest);
        }
        let mut out = Vec::new();
        let mut live = Vec::new();
        for (_, it) in items {
            match it {
                Ok(m) => live.push(m),
                Err(name) => out.push(status_response(&c.obj_href(&name), 404)),
            }
        }
        out.extend(self.object_responses(c, props, live).await?);
        if truncated {
            out.push(
                status_response(&c.href(), 507)
                    .with(dav("error").with(dav("number-of-matches-within-limits"))),
            );
        }
        Ok(multi(out, Some(sync_token(next))))
    }

    async fn free_busy(&self, c: &Coll, tr: TimeRange) -> R<Response> {
        if c.rights < Rights::FreeBusy {
            return Err(cond(StatusCode::FORBIDDEN, DAV, "need-privileges"));
        }
        let (start, end) = (tr.start.unwrap_or(0), tr.end.unwrap_or(0));
        let names: Vec<String> = self
            .store()
            .time_range_candidates(c.c.id, ComponentKind::VEvent, Some(start), Some(end))
            .await?
            .into_iter()
            .map(|x| x.name)
            .collect();
        let mut periods = Vec::new();
        let read = content::read_options(c.c.timezone.as_deref());
        for chunk in names.chunks(100) {
            for o in self.store().objects(c.c.id, chunk).await? {
                let Some(cal) = content::stored_calendar(&o.data, &read) else {
                    continue;
                };
                let Ok(x) = cal.expand(Window { start, end }, &content::read_limits()) else {
                    continue;
                };
                for i in x.instances {
                    if i.transparent || i.status == InstanceStatus::Cancelled {
                        continue;
                    }
                    let tentative = i.status == InstanceStatus::Tentative;
                    periods.push((i.start.max(start), i.end.min(end), tentative));
                }
            }
        }
        periods.sort();
        let mut s = String::from(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Outpost//DAV//EN\r\nBEGIN:VFREEBUSY\r\n",
        );
        s.push_str(&format!(
            "DTSTAMP:{}\r\nDTSTART:{}\r\nDTEND:{}\r\n",
            proto::format_utc(start),
            proto::format_utc(start),
            proto::format_utc(end)
        ));
        for (a, b, tentative) in periods {
            let kind = if tentative { "BUSY-TENTATIVE" } else { "BUSY" };
            s.push_str(&format!(
                "FREEBUSY;FBTYPE={kind}:{}/{}\r\n",
                proto::format_utc(a),
                proto::format_utc(b)
            ));
        }
        s.push_str("END:VFREEBUSY\r\nEND:VCALENDAR\r\n");
        Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/calendar; charset=utf-8")],
            s,
        )
            .into_response())
    }
}

fn is_known_prop(kind: CollectionKind, n: &Name) -> bool {
    n.is(DAV, "displayname")
        || (kind == CollectionKind::Calendar
            && (n.is(APPLE, "calendar-color")
                || n.is(APPLE, "calendar-order")
                || n.is(CALDAV, "calendar-description")
                || n.is(CALDAV, "calendar-timezone")))
        || (kind == CollectionKind::AddressBook && n.is(CARDDAV, "addressbook-description"))
}

/// One PROPPATCH/MKCOL property into the patch; `Err` when this server does
/// not let it be set or the value is not valid.
fn apply_prop(
    patch: &mut CollectionPatch,
    kind: CollectionKind,
    name: &Name,
    value: Option<&Element>,
) -> Result<(), ()> {
    if !is_known_prop(kind, name) {
        return Err(());
    }
    let v = value
        .map(|e| e.text.trim().to_string())
        .filter(|s| !s.is_empty());
    if name.is(DAV, "displayname") {
        patch.display_name = Some(v);
    } else if name.is(APPLE, "calendar-color") {
        if let Some(c) = &v {
            let hex = c.strip_prefix('#').ok_or(())?;
            if !(hex.len() == 6 || hex.len() == 8) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(());
            }
        }
        patch.color = Some(v);
    } else if name.is(APPLE, "calendar-order") {
        patch.order = Some(match v {
            Some(s) => Some(s.parse::<i32>().map_err(|_| ())?),
            None => None,
        });
    } else if name.is(CALDAV, "calendar-description") || name.is(CARDDAV, "addressbook-description")
    {
        patch.description = Some(v);
    } else if name.is(CALDAV, "calendar-timezone") {
        if let Some(tz) = &v {
            // Kept as sent; it must at least be a VCALENDAR with a VTIMEZONE.
            if outpost_pim::check_calendar_timezone(tz).is_err() {
                return Err(());
            }
        }
        patch.timezone = Some(
            value
                .map(|e| e.text.clone())
                .filter(|s| !s.trim().is_empty()),
        );
    }
    Ok(())
}

/// A stored object's source for calendar-data/address-data, with the
/// calendar's timezone and, when the caller has parsed it already, the
/// parsed object (so it is not parsed twice).
#[derive(Clone, Copy)]
pub(crate) struct ObjectData<'a> {
    pub bytes: &'a [u8],
    pub tz: Option<&'a str>,
    pub parsed: Option<&'a outpost_pim::CalendarObject>,
}

impl<'a> ObjectData<'a> {
    pub fn new(bytes: &'a [u8], tz: Option<&'a str>) -> ObjectData<'a> {
        ObjectData {
            bytes,
            tz,
            parsed: None,
        }
    }
}

/// The stored vCard, converted when the client asked for the other version.
fn card_in_version(bytes: &[u8], want: Option<VcardVersion>) -> String {
    let text = String::from_utf8_lossy(bytes);
    let Some(want) = want else {
        return text.into_owned();
    };
    let is_v4 = text.contains("VERSION:4.0");
    if (want == VcardVersion::V4) == is_v4 {
        return text.into_owned();
    }
    outpost_pim::convert_vcard(bytes, want, &content::read_limits())
        .unwrap_or_else(|_| text.into_owned())
}

/// RFC 6638 §8.1: `Schedule-Reply: F` asks that an attendee's change or
/// delete send no reply to the organizer; anything else (or no header)
/// is the default, T.
fn schedule_reply(headers: &HeaderMap) -> bool {
    !headers
        .get("schedule-reply")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("f"))
}
