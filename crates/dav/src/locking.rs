//! WebDAV class 2 (RFC 4918 §6, §7, §9.10, §9.11): LOCK, UNLOCK, the
//! `If` header and lock enforcement, for calendars, address books and
//! their objects.
//!
//! - Every request with an `If` header has it evaluated first (§10.4): a
//!   false header is 412, a malformed one 400.
//! - PUT, DELETE, PROPPATCH, MKCOL/MKCALENDAR, the source of MOVE and the
//!   destination of COPY/MOVE need the token of every lock whose scope
//!   includes the resource, and, when they add or remove a member, of the
//!   parent collection's Depth 0 locks (§7.5; so does a LOCK that makes
//!   a locked empty resource); DELETE and MOVE also of the locks below a
//!   collection. A token counts only in a request of the principal that
//!   took the lock. Missing ones: 423 with `DAV:lock-token-submitted` and
//!   the lock roots. The owner of a collection may UNLOCK a sharee's lock
//!   on it.
//! - LOCK of an unmapped URL answers 201 and makes a locked empty
//!   resource (§7.3): GET gives an empty body, PROPFIND its lock; it is
//!   not listed in its collection (a calendar cannot hold an empty
//!   object) and goes away with its lock unless a PUT gave it content.
//!
//! Locks bind DAV requests only: a change through another protocol, the
//! CLI or a scheduling delivery does not look at them.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use outpost_xml::Element;

use crate::handler::*;
use crate::ifheader::{self, IfHeader, ResourceState};
use crate::lock::{self, ActiveLock, LockRefusal, NewLock, Scope};
use crate::path::{self, DavPath};
use crate::proto::{self, DAV};
use crate::response::*;
use crate::store::*;

/// Longest `Lock-Token` header taken.
const MAX_LOCK_TOKEN: usize = 512;

/// The lock key of a path: its canonical href with the login in lower
/// case (logins are matched without case), or `None` for what cannot be
/// locked or lie under a lock (the root, principals, schedule boxes).
pub(crate) fn lock_key(p: &DavPath) -> Option<String> {
    match p {
        DavPath::Home(k, login) => Some(path::home_href(*k, &login.to_lowercase())),
        DavPath::Collection(k, login, c) => {
            Some(path::collection_href(*k, &login.to_lowercase(), c))
        }
        DavPath::Object(k, login, c, o) => Some(path::object_href(*k, &login.to_lowercase(), c, o)),
        _ => None,
    }
}

/// An href (an `If` tag, a `Destination`) as a path and its lock key.
fn href_key(h: &str) -> Option<(DavPath, String)> {
    let p = path::parse_path(path::href_path(h)).ok()?;
    let k = lock_key(&p)?;
    Some((p, k))
}

pub(crate) fn collection_key(c: &Coll) -> String {
    path::collection_href(c.c.kind, &c.owner.login.to_lowercase(), &c.c.name)
}

pub(crate) fn object_key(c: &Coll, name: &str) -> String {
    path::object_href(c.c.kind, &c.owner.login.to_lowercase(), &c.c.name, name)
}

/// The request's `If` header, once it has been found true.
pub(crate) struct Gate {
    if_header: Option<IfHeader>,
}

impl Gate {
    fn submitted(&self) -> Vec<&str> {
        self.if_header
            .as_ref()
            .map(IfHeader::tokens)
            .unwrap_or_default()
    }
}

fn locked(roots: Vec<String>) -> Fail {
    let mut hrefs: Vec<String> = Vec::new();
    for r in roots {
        if !hrefs.contains(&r) {
            hrefs.push(r);
        }
    }
    Fail::Cond(
        StatusCode::LOCKED,
        DAV,
        "lock-token-submitted",
        hrefs.iter().map(|h| href(h)).collect(),
    )
}

fn lock_body(l: &ActiveLock, now: u64) -> String {
    to_xml(&dav("prop").with(lock::lockdiscovery(std::slice::from_ref(l), now)))
}

impl<S: DavStore> Ctx<'_, S> {
    fn locks(&self) -> &lock::LockTable {
        &self.dav.locks
    }

    /// `lockdiscovery` of a resource, and `supportedlock` where the caller
    /// may lock it.
    /// (`key` is only made when there are locks at all.)
    pub(crate) fn lock_props(
        &self,
        key: impl FnOnce() -> String,
        lockable: bool,
        v: &mut Vec<Element>,
    ) {
        let now = self.locks().now();
        let locks = if self.locks().is_empty(now) {
            Vec::new()
        } else {
            self.locks().covering(&key(), now)
        };
        v.push(lock::lockdiscovery(&locks, now));
        if lockable {
            v.push(lock::supportedlock());
        }
    }

    /// The stored object's ETag, `None` for anything else.
    async fn target_etag(&self, target: &Target) -> R<Option<String>> {
        Ok(match target {
            Target::Object(c, name) => self
                .store()
                .object(c.c.id, name)
                .await?
                .map(|o| o.meta.etag),
            _ => None,
        })
    }

    async fn target_exists(&self, target: &Target) -> R<bool> {
        Ok(match target {
            Target::Object(c, name) => self.store().object(c.c.id, name).await?.is_some(),
            Target::NewCollection(..) => false,
            _ => true,
        })
    }

    fn tokens_on(&self, key: &str, now: u64) -> Vec<String> {
        self.locks()
            .covering(key, now)
            .into_iter()
            .map(|l| l.token)
            .collect()
    }

    /// Evaluates the `If` header (412 when false) and checks that the
    /// request holds the tokens of the locks it would break (423). Runs
    /// before every method but OPTIONS.
    pub(crate) async fn lock_gate(
        &self,
        method: &str,
        dpath: &DavPath,
        target: &Target,
        headers: &HeaderMap,
    ) -> R<Gate> {
        let if_header = match headers.get("if") {
            None => None,
            Some(v) => {
                let v = v
                    .to_str()
                    .map_err(|_| st(StatusCode::BAD_REQUEST, "the If header is not ASCII"))?;
                Some(ifheader::parse(v).map_err(|e| st(StatusCode::BAD_REQUEST, e.to_string()))?)
            }
        };
        let now = self.locks().now();
        let key = lock_key(dpath);
        if let Some(h) = &if_header {
            let mine = ResourceState {
                etag: if h.needs_etag(None) {
                    self.target_etag(target).await?
                } else {
                    None
                },
                tokens: key
                    .as_deref()
                    .map(|k| self.tokens_on(k, now))
                    .unwrap_or_default(),
            };
            let mut tagged: Vec<(&str, Option<ResourceState>)> = Vec::new();
            for tag in h.resources() {
                let state = match href_key(tag) {
                    None => None,
                    Some((p, k)) => {
                        let etag = if h.needs_etag(Some(tag)) {
                            match self.resolve(&p).await {
                                Ok(t) => self.target_etag(&t).await?,
                                // What the caller cannot see has no ETag
                                // for it.
                                Err(_) => None,
                            }
                        } else {
                            None
                        };
                        Some(ResourceState {
                            etag,
                            tokens: self.tokens_on(&k, now),
                        })
                    }
                };
                tagged.push((tag, state));
            }
            let ok = h.evaluate(|r| match r {
                None => Some(&mine),
                Some(tag) => tagged
                    .iter()
                    .find(|(t, _)| *t == tag)
                    .and_then(|(_, s)| s.as_ref()),
            });
            if !ok {
                return Err(st(
                    StatusCode::PRECONDITION_FAILED,
                    "the If header's conditions are not met",
                ));
            }
        }
        let gate = Gate { if_header };
        let Some(key) = key else { return Ok(gate) };
        if self.locks().is_empty(now) {
            return Ok(gate);
        }
        let mut needed: Vec<ActiveLock> = Vec::new();
        match method {
            "PUT" => needed.extend(self.needed_for_write(&key, target, now).await?),
            "PROPPATCH" => needed.extend(self.locks().covering(&key, now)),
            "DELETE" => needed.extend(self.needed(&key, true, true, now)),
            "MKCOL" | "MKCALENDAR" => needed.extend(self.needed(&key, true, false, now)),
            "COPY" | "MOVE" => {
                if method == "MOVE" {
                    needed.extend(self.needed(&key, true, true, now));
                }
                let dest = headers
                    .get("destination")
                    .and_then(|v| v.to_str().ok())
                    .and_then(href_key);
                if let Some((p, k)) = dest {
                    // A destination the caller cannot reach fails in the
                    // method itself.
                    if let Ok(t) = self.resolve(&p).await {
                        needed.extend(self.needed_for_write(&k, &t, now).await?);
                    }
                }
            }
            _ => {}
        }
        let submitted = gate.submitted();
        let missing: Vec<String> = needed
            .into_iter()
            .filter(|l| !(l.principal == self.me.id && submitted.contains(&l.token.as_str())))
            .map(|l| l.root)
            .collect();
        if !missing.is_empty() {
            return Err(locked(missing));
        }
        Ok(gate)
    }

    /// The locks a change of `key` must hold: those whose scope includes
    /// it; with `membership`, the Depth 0 locks of its parent collection
    /// (the change adds or removes a member); with `below`, those on its
    /// members.
    fn needed(&self, key: &str, membership: bool, below: bool, now: u64) -> Vec<ActiveLock> {
        let mut v = self.locks().covering(key, now);
        if below {
            v.extend(self.locks().within(key, now));
        }
        if membership {
            if let Some(p) = lock::parent(key) {
                v.extend(
                    self.locks()
                        .rooted_at(p, now)
                        .into_iter()
                        .filter(|l| !l.infinite),
                );
            }
        }
        v
    }

    /// PUT (or a COPY/MOVE destination) at `key`: a new member needs the
    /// parent's Depth 0 locks too.
    async fn needed_for_write(&self, key: &str, target: &Target, now: u64) -> R<Vec<ActiveLock>> {
        let parent_locked = lock::parent(key)
            .is_some_and(|p| self.locks().rooted_at(p, now).iter().any(|l| !l.infinite));
        let membership = parent_locked && !self.target_exists(target).await?;
        Ok(self.needed(key, membership, false, now))
    }

    /// LOCK: a new lock (RFC 4918 §9.10) or, with no body, a refresh of the
    /// lock the `If` header names (§9.10.2).
    pub(crate) async fn lock(
        &self,
        target: Target,
        dpath: &DavPath,
        headers: &HeaderMap,
        body: &[u8],
        gate: &Gate,
    ) -> R<Response> {
        let key = lock_key(dpath);
        let exists = match &target {
            Target::Object(c, _) | Target::Collection(c) if !c.can_write() => {
                return Err(cond(StatusCode::FORBIDDEN, DAV, "need-privileges"))
            }
            Target::Object(..) | Target::Collection(..) | Target::NewCollection(..) => {
                self.target_exists(&target).await?
            }
            _ => {
                return Err(st(
                    StatusCode::FORBIDDEN,
                    "only calendars, address books and their objects can be locked",
                ))
            }
        };
        let Some(key) = key else {
            return Err(st(StatusCode::FORBIDDEN, "this resource cannot be locked"));
        };
        let limits = self.locks().limits();
        let timeout = lock::parse_timeout(
            headers.get("timeout").and_then(|v| v.to_str().ok()),
            limits.max_timeout,
        );
        let now = self.locks().now();
        let Some(info) = lock::parse_lockinfo(body)? else {
            return self.refresh(&key, timeout, gate, now);
        };
        let infinite = match headers
            .get("depth")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.trim().to_ascii_lowercase())
        {
            None => true,
            Some(d) if d == "infinity" => true,
            Some(d) if d == "0" => false,
            Some(_) => {
                return Err(st(
                    StatusCode::BAD_REQUEST,
                    "LOCK takes Depth 0 or infinity",
                ))
            }
        };
        if !exists {
            // A locked empty resource is a new member: a Depth 0 lock on
            // the collection guards that (§7.5), as for a PUT.
            let submitted = gate.submitted();
            let missing: Vec<String> = lock::parent(&key)
                .map(|p| self.locks().rooted_at(p, now))
                .unwrap_or_default()
                .into_iter()
                .filter(|l| !l.infinite)
                .filter(|l| !(l.principal == self.me.id && submitted.contains(&l.token.as_str())))
                .map(|l| l.root)
                .collect();
            if !missing.is_empty() {
                return Err(locked(missing));
            }
        }
        let new = NewLock {
            // Depth infinity means something only on a collection.
            infinite: infinite && key.ends_with('/'),
            root: key,
            scope: info.scope,
            owner: info.owner,
            principal: self.me.id,
            timeout,
        };
        match self.locks().create(new, now) {
            Ok(l) => {
                tracing::info!(
                    principal = self.me.id,
                    root = %l.root,
                    exclusive = l.scope == Scope::Exclusive,
                    timeout = l.timeout,
                    "dav: lock"
                );
                let code = if exists {
                    StatusCode::OK
                } else {
                    StatusCode::CREATED
                };
                let mut r = xml_response(code, lock_body(&l, now));
                if let Ok(v) = HeaderValue::from_str(&format!("<{}>", l.token)) {
                    r.headers_mut().insert("lock-token", v);
                }
                Ok(r)
            }
            Err(LockRefusal::Conflict(roots)) => Err(Fail::Cond(
                StatusCode::LOCKED,
                DAV,
                "no-conflicting-lock",
                roots.iter().map(|h| href(h)).collect(),
            )),
            Err(LockRefusal::TooMany) => Err(st(
                StatusCode::INSUFFICIENT_STORAGE,
                format!(
                    "too many locks (at most {} per user, {} in all): unlock some or wait for them to expire",
                    limits.per_principal, limits.total
                ),
            )),
        }
    }

    fn refresh(&self, key: &str, timeout: u64, gate: &Gate, now: u64) -> R<Response> {
        if gate.if_header.is_none() {
            return Err(st(
                StatusCode::BAD_REQUEST,
                "a LOCK without a body refreshes a lock: it needs an If header with the lock token",
            ));
        }
        let submitted = gate.submitted();
        let Some(l) = self
            .locks()
            .covering(key, now)
            .into_iter()
            .find(|l| submitted.contains(&l.token.as_str()))
        else {
            return Err(cond(
                StatusCode::PRECONDITION_FAILED,
                DAV,
                "lock-token-matches-request-uri",
            ));
        };
        if l.principal != self.me.id {
            return Err(cond(StatusCode::FORBIDDEN, DAV, "need-privileges"));
        }
        let l = self
            .locks()
            .refresh(&l.token, timeout, now)
            .ok_or_else(|| {
                cond(
                    StatusCode::PRECONDITION_FAILED,
                    DAV,
                    "lock-token-matches-request-uri",
                )
            })?;
        Ok(xml_response(StatusCode::OK, lock_body(&l, now)))
    }

    /// UNLOCK (RFC 4918 §9.11): 204, 409 `lock-token-matches-request-uri`
    /// for a token that is not a lock here, 403 for another principal's,
    /// unless the caller owns the calendar or address book: an owner may
    /// break a sharee's lock on their own collection (§9.11 lets a server
    /// allow that; RFC 3744's DAV:unlock), though not write through it.
    pub(crate) fn unlock(
        &self,
        target: &Target,
        dpath: &DavPath,
        headers: &HeaderMap,
    ) -> R<Response> {
        let token = headers
            .get("lock-token")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|t| t.len() <= MAX_LOCK_TOKEN)
            // A Coded-URL, `<token>`; a bare token is taken too.
            .map(|t| {
                t.strip_prefix('<')
                    .and_then(|t| t.strip_suffix('>'))
                    .unwrap_or(t)
            })
            .filter(|t| !t.is_empty() && !t.contains(['<', '>']))
            .ok_or_else(|| {
                st(
                    StatusCode::BAD_REQUEST,
                    "UNLOCK needs a Lock-Token header: <token>",
                )
            })?;
        let now = self.locks().now();
        let l = lock_key(dpath)
            .and_then(|k| self.locks().get(token, now).filter(|l| l.covers(&k)))
            .ok_or_else(|| cond(StatusCode::CONFLICT, DAV, "lock-token-matches-request-uri"))?;
        let owns_collection = match target {
            Target::Collection(c) | Target::Object(c, _) => c.rights == Rights::Owner && !c.bound,
            _ => false,
        };
        if l.principal != self.me.id && !owns_collection {
            return Err(cond(StatusCode::FORBIDDEN, DAV, "need-privileges"));
        }
        self.locks().remove(&l.token, now);
        tracing::info!(
            principal = self.me.id,
            holder = l.principal,
            root = %l.root,
            "dav: unlock"
        );
        Ok(StatusCode::NO_CONTENT.into_response())
    }

    /// The resource at `dpath` was deleted or moved away: its locks and
    /// those below it go.
    pub(crate) fn forget_locks(&self, dpath: &DavPath) {
        if let Some(k) = lock_key(dpath) {
            let now = self.locks().now();
            self.locks().remove_under(&k, now);
        }
    }

    /// GET, HEAD, PROPFIND and DELETE of a locked empty resource (an
    /// unmapped URL that was locked, RFC 4918 §7.3); `None` for anything
    /// else. Runs after [`Ctx::lock_gate`].
    pub(crate) async fn lock_null(
        &self,
        method: &str,
        dpath: &DavPath,
        target: &Target,
        body: &[u8],
    ) -> R<Option<Response>> {
        if !matches!(method, "GET" | "HEAD" | "PROPFIND" | "DELETE") {
            return Ok(None);
        }
        let Some(key) = lock_key(dpath) else {
            return Ok(None);
        };
        let now = self.locks().now();
        if self.locks().rooted_at(&key, now).is_empty()
            || !matches!(target, Target::Object(..) | Target::NewCollection(..))
            || self.target_exists(target).await?
        {
            return Ok(None);
        }
        Ok(Some(match method {
            "GET" | "HEAD" => {
                let mut r = Response::new(Body::empty());
                r.headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(0));
                r
            }
            "DELETE" => {
                self.locks().remove_under(&key, now);
                StatusCode::NO_CONTENT.into_response()
            }
            _ => {
                let req = proto::parse_propfind(body)?;
                let mut v = vec![dav("resourcetype"), text(DAV, "getcontentlength", "0")];
                self.lock_props(|| key.clone(), true, &mut v);
                self.common_props(&mut v);
                multi(vec![prop_response(&key, self.answer(&req, v, None)?)], None)
            }
        }))
    }
}
