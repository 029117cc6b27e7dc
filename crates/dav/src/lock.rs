//! WebDAV write locks (RFC 4918 §6, §7): the lock table, the LOCK request
//! body, the `Timeout` header and the `lockdiscovery`/`supportedlock`
//! properties. No I/O; the table takes the time from its caller's clock
//! ([`LockTable::now`]) so tests can move it.
//!
//! Locks live in the memory of the process: they do not survive a restart
//! and each node of a cluster has its own (RFC 4918 lets a server lose
//! locks; a client sees its token stop working and locks again). The table
//! is bounded per principal and in total, and every lock expires: the
//! `Timeout` a client asks for is capped by [`LockLimits::max_timeout`].
//!
//! Resources are named by their canonical href (`lock_key` in
//! `crate::locking`): a collection's ends in `/`, so a Depth infinity
//! lock on it covers every href it prefixes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Instant;

use outpost_xml::{parse, Element};

use crate::proto::{xml_limits, ProtoError, DAV};
use crate::response::{dav, href, to_xml};

/// Bounds of the lock table (`DavConfig`).
#[derive(Debug, Clone, Copy)]
pub struct LockLimits {
    /// Longest lock, in seconds: `Timeout: Infinite`, no `Timeout`, and
    /// longer requests get this.
    pub max_timeout: u64,
    /// Most live locks one principal holds.
    pub per_principal: usize,
    /// Most live locks in the process.
    pub total: usize,
}

impl Default for LockLimits {
    fn default() -> Self {
        LockLimits {
            max_timeout: 3600,
            per_principal: 100,
            total: 10_000,
        }
    }
}

/// Largest `DAV:owner` kept with a lock, serialized (bytes).
pub const MAX_OWNER: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Exclusive,
    Shared,
}

/// One granted lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveLock {
    /// `urn:uuid:...`
    pub token: String,
    /// The href the lock was taken on (its lockroot).
    pub root: String,
    /// Depth infinity (on a collection: every member, present and future).
    pub infinite: bool,
    pub scope: Scope,
    /// The client's `DAV:owner`, as sent.
    pub owner: Option<Element>,
    /// The principal that took it: the only one whose requests may use the
    /// token.
    pub principal: i64,
    /// Seconds granted at the last LOCK or refresh.
    pub timeout: u64,
    /// Table clock second at which it lapses.
    pub expires: u64,
}

impl ActiveLock {
    /// The lock's scope includes `key`.
    pub fn covers(&self, key: &str) -> bool {
        self.root == key
            || (self.infinite && self.root.ends_with('/') && key.starts_with(&self.root))
    }
}

/// Why a lock was not granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockRefusal {
    /// Conflicting locks: their roots (423, DAV:no-conflicting-lock).
    Conflict(Vec<String>),
    /// The principal or the process holds as many locks as allowed.
    TooMany,
}

/// A new lock's request.
#[derive(Debug, Clone)]
pub struct NewLock {
    pub root: String,
    pub infinite: bool,
    pub scope: Scope,
    pub owner: Option<Element>,
    pub principal: i64,
    pub timeout: u64,
}

#[derive(Default)]
struct Inner {
    /// token -> lock.
    locks: HashMap<String, ActiveLock>,
    /// root -> tokens of the locks taken there.
    by_root: BTreeMap<String, Vec<String>>,
    /// (expires, token), soonest first.
    expiry: BTreeSet<(u64, String)>,
    per_principal: HashMap<i64, usize>,
}

impl Inner {
    fn purge(&mut self, now: u64) {
        while let Some((at, token)) = self.expiry.first().cloned() {
            if at > now {
                break;
            }
            self.remove(&token);
        }
    }

    fn remove(&mut self, token: &str) -> Option<ActiveLock> {
        let l = self.locks.remove(token)?;
        self.expiry.remove(&(l.expires, l.token.clone()));
        if let Some(v) = self.by_root.get_mut(&l.root) {
            v.retain(|t| t != token);
            if v.is_empty() {
                self.by_root.remove(&l.root);
            }
        }
        if let Some(n) = self.per_principal.get_mut(&l.principal) {
            *n -= 1;
            if *n == 0 {
                self.per_principal.remove(&l.principal);
            }
        }
        Some(l)
    }

    fn rooted_at<'a>(&'a self, key: &str) -> impl Iterator<Item = &'a ActiveLock> + 'a {
        self.by_root
            .get(key)
            .into_iter()
            .flatten()
            .filter_map(|t| self.locks.get(t))
    }

    /// Locks whose scope includes `key`: taken on it, or Depth infinity
    /// on a collection above it.
    fn covering(&self, key: &str) -> Vec<ActiveLock> {
        let mut out: Vec<ActiveLock> = self.rooted_at(key).cloned().collect();
        for a in ancestors(key) {
            out.extend(self.rooted_at(a).filter(|l| l.infinite).cloned());
        }
        out
    }

    /// Locks taken on members below the collection `key` (not on it).
    fn within(&self, key: &str) -> Vec<ActiveLock> {
        if !key.ends_with('/') {
            return Vec::new();
        }
        self.by_root
            .range::<str, _>((std::ops::Bound::Excluded(key), std::ops::Bound::Unbounded))
            .take_while(|(root, _)| root.starts_with(key))
            .flat_map(|(_, tokens)| tokens.iter().filter_map(|t| self.locks.get(t)))
            .cloned()
            .collect()
    }
}

/// The collections above `key`, nearest first: `/a/b/c` and `/a/b/c/`
/// give `/a/b/`, `/a/`, `/`.
pub fn ancestors(key: &str) -> impl Iterator<Item = &str> {
    let body = key.strip_suffix('/').unwrap_or(key);
    body.rmatch_indices('/').map(move |(i, _)| &key[..=i])
}

/// The collection directly above `key`.
pub fn parent(key: &str) -> Option<&str> {
    ancestors(key).next()
}

/// The process's locks.
pub struct LockTable {
    limits: LockLimits,
    start: Instant,
    inner: Mutex<Inner>,
}

impl LockTable {
    pub fn new(limits: LockLimits) -> LockTable {
        LockTable {
            limits,
            start: Instant::now(),
            inner: Mutex::new(Inner::default()),
        }
    }

    pub fn limits(&self) -> LockLimits {
        self.limits
    }

    /// The table's clock: whole seconds since it was made.
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_secs()
    }

    fn inner(&self, now: u64) -> std::sync::MutexGuard<'_, Inner> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.purge(now);
        g
    }

    /// No live lock at all (the common case: lock lookups are skipped).
    pub fn is_empty(&self, now: u64) -> bool {
        self.inner(now).locks.is_empty()
    }

    pub fn len(&self, now: u64) -> usize {
        self.inner(now).locks.len()
    }

    pub fn get(&self, token: &str, now: u64) -> Option<ActiveLock> {
        self.inner(now).locks.get(token).cloned()
    }

    pub fn covering(&self, key: &str, now: u64) -> Vec<ActiveLock> {
        let g = self.inner(now);
        if g.locks.is_empty() {
            return Vec::new();
        }
        g.covering(key)
    }

    pub fn within(&self, key: &str, now: u64) -> Vec<ActiveLock> {
        let g = self.inner(now);
        if g.locks.is_empty() {
            return Vec::new();
        }
        g.within(key)
    }

    pub fn rooted_at(&self, key: &str, now: u64) -> Vec<ActiveLock> {
        self.inner(now).rooted_at(key).cloned().collect()
    }

    /// Grants a lock unless it conflicts (RFC 4918 §6.1: an exclusive lock
    /// shares its scope with no other lock; shared locks share with shared
    /// ones) or a bound is reached. Checked and granted under one guard,
    /// so two LOCKs cannot both win.
    pub fn create(&self, new: NewLock, now: u64) -> Result<ActiveLock, LockRefusal> {
        let mut g = self.inner(now);
        let mut others = g.covering(&new.root);
        if new.infinite {
            others.extend(g.within(&new.root));
        }
        let conflicts: Vec<String> = others
            .iter()
            .filter(|l| new.scope == Scope::Exclusive || l.scope == Scope::Exclusive)
            .map(|l| l.root.clone())
            .collect();
        if !conflicts.is_empty() {
            return Err(LockRefusal::Conflict(conflicts));
        }
        if g.locks.len() >= self.limits.total
            || g.per_principal.get(&new.principal).copied().unwrap_or(0)
                >= self.limits.per_principal
        {
            return Err(LockRefusal::TooMany);
        }
        let timeout = new.timeout.clamp(1, self.limits.max_timeout.max(1));
        let lock = ActiveLock {
            token: new_token(),
            root: new.root,
            infinite: new.infinite,
            scope: new.scope,
            owner: new.owner,
            principal: new.principal,
            timeout,
            expires: now + timeout,
        };
        g.expiry.insert((lock.expires, lock.token.clone()));
        g.by_root
            .entry(lock.root.clone())
            .or_default()
            .push(lock.token.clone());
        *g.per_principal.entry(lock.principal).or_default() += 1;
        g.locks.insert(lock.token.clone(), lock.clone());
        Ok(lock)
    }

    /// A new timeout for a live lock (RFC 4918 §9.10.2).
    pub fn refresh(&self, token: &str, timeout: u64, now: u64) -> Option<ActiveLock> {
        let mut g = self.inner(now);
        let mut l = g.locks.get(token)?.clone();
        g.expiry.remove(&(l.expires, l.token.clone()));
        l.timeout = timeout.clamp(1, self.limits.max_timeout.max(1));
        l.expires = now + l.timeout;
        g.expiry.insert((l.expires, l.token.clone()));
        g.locks.insert(l.token.clone(), l.clone());
        Some(l)
    }

    pub fn remove(&self, token: &str, now: u64) -> Option<ActiveLock> {
        self.inner(now).remove(token)
    }

    /// Drops the locks taken on `key` or below it: the resource was
    /// deleted or moved away (RFC 4918 §7: a lock does not follow a MOVE
    /// and goes with the resource it was on).
    pub fn remove_under(&self, key: &str, now: u64) {
        let mut g = self.inner(now);
        let mut tokens: Vec<String> = g.rooted_at(key).map(|l| l.token.clone()).collect();
        tokens.extend(g.within(key).into_iter().map(|l| l.token));
        for t in tokens {
            g.remove(&t);
        }
    }
}

/// A fresh lock token: a random (version 4) UUID URN (RFC 4918 §6.5).
fn new_token() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The `Timeout` header (RFC 4918 §10.7): the first value this server
/// understands, capped at `max`; `Infinite`, none or nothing understood
/// gives `max`.
pub fn parse_timeout(value: Option<&str>, max: u64) -> u64 {
    let Some(v) = value else { return max };
    for t in v.split(',').map(str::trim) {
        if t.eq_ignore_ascii_case("infinite") {
            return max;
        }
        if let Some(n) = t
            .get(..7)
            .filter(|p| p.eq_ignore_ascii_case("second-"))
            .and_then(|_| t[7..].parse::<u64>().ok())
        {
            return n.clamp(1, max.max(1));
        }
        // "Second-" with more digits than u64 holds: as long as allowed.
        if t.len() > 7
            && t[..7].eq_ignore_ascii_case("second-")
            && t[7..].bytes().all(|b| b.is_ascii_digit())
        {
            return max;
        }
    }
    max
}

/// A LOCK body (RFC 4918 §14.11 lockinfo).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockInfo {
    pub scope: Scope,
    pub owner: Option<Element>,
}

/// `None` for an empty body (a refresh, §9.10.2).
pub fn parse_lockinfo(body: &[u8]) -> Result<Option<LockInfo>, ProtoError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(None);
    }
    let bad = |s: &str| Err(ProtoError::Bad(s.to_string()));
    let root = parse(body, &xml_limits())?;
    if !root.is(DAV, "lockinfo") {
        return bad("LOCK body must be DAV:lockinfo");
    }
    let scope = match root.child(DAV, "lockscope") {
        Some(s) if s.child(DAV, "exclusive").is_some() => Scope::Exclusive,
        Some(s) if s.child(DAV, "shared").is_some() => Scope::Shared,
        _ => return bad("DAV:lockinfo needs a lockscope of exclusive or shared"),
    };
    match root.child(DAV, "locktype") {
        Some(t) if t.child(DAV, "write").is_some() => {}
        _ => return bad("DAV:lockinfo needs a locktype of write (the only one there is)"),
    }
    let owner = root.child(DAV, "owner").cloned();
    if let Some(o) = &owner {
        if to_xml(o).len() > MAX_OWNER {
            return bad("DAV:owner is too long");
        }
    }
    Ok(Some(LockInfo { scope, owner }))
}

/// `DAV:activelock` of a lock at clock second `now`.
pub fn activelock(l: &ActiveLock, now: u64) -> Element {
    let scope = match l.scope {
        Scope::Exclusive => dav("exclusive"),
        Scope::Shared => dav("shared"),
    };
    let mut a = dav("activelock")
        .with(dav("locktype").with(dav("write")))
        .with(dav("lockscope").with(scope))
        .with(dav("depth").with_text(if l.infinite { "infinity" } else { "0" }));
    if let Some(o) = &l.owner {
        a.push(o.clone());
    }
    a.push(dav("timeout").with_text(format!("Second-{}", l.expires.saturating_sub(now).max(1))));
    a.push(dav("locktoken").with(href(&l.token)));
    a.push(dav("lockroot").with(href(&l.root)));
    a
}

pub fn lockdiscovery(locks: &[ActiveLock], now: u64) -> Element {
    let mut d = dav("lockdiscovery");
    for l in locks {
        d.push(activelock(l, now));
    }
    d
}

/// `DAV:supportedlock`: exclusive and shared write locks.
pub fn supportedlock() -> Element {
    let entry = |scope: &str| {
        dav("lockentry")
            .with(dav("lockscope").with(dav(scope)))
            .with(dav("locktype").with(dav("write")))
    };
    dav("supportedlock")
        .with(entry("exclusive"))
        .with(entry("shared"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(root: &str, infinite: bool, scope: Scope, principal: i64) -> NewLock {
        NewLock {
            root: root.into(),
            infinite,
            scope,
            owner: None,
            principal,
            timeout: 60,
        }
    }

    const CAL: &str = "/dav/calendars/a/personal/";
    const OBJ: &str = "/dav/calendars/a/personal/x.ics";

    #[test]
    fn ancestors_of_objects_and_collections() {
        assert_eq!(
            ancestors(OBJ).collect::<Vec<_>>(),
            [
                "/dav/calendars/a/personal/",
                "/dav/calendars/a/",
                "/dav/calendars/",
                "/dav/",
                "/"
            ]
        );
        assert_eq!(parent(CAL), Some("/dav/calendars/a/"));
        assert_eq!(parent("/"), None);
    }

    #[test]
    fn exclusive_conflicts_shared_shares() {
        let t = LockTable::new(LockLimits::default());
        let a = t.create(new(OBJ, false, Scope::Exclusive, 1), 0).unwrap();
        assert!(a.token.starts_with("urn:uuid:") && a.token.len() == 45);
        assert_eq!(
            t.create(new(OBJ, false, Scope::Shared, 2), 0),
            Err(LockRefusal::Conflict(vec![OBJ.into()]))
        );
        // A depth-infinity lock on the collection meets the member's.
        assert!(matches!(
            t.create(new(CAL, true, Scope::Shared, 1), 0),
            Err(LockRefusal::Conflict(_))
        ));
        // Depth 0 on the collection does not cover members.
        t.create(new(CAL, false, Scope::Exclusive, 2), 0).unwrap();
        t.remove(&a.token, 0).unwrap();
        let s1 = t.create(new(OBJ, false, Scope::Shared, 1), 0).unwrap();
        let s2 = t.create(new(OBJ, false, Scope::Shared, 2), 0).unwrap();
        assert_ne!(s1.token, s2.token);
        assert_eq!(t.covering(OBJ, 0).len(), 2);
        assert!(matches!(
            t.create(new(OBJ, false, Scope::Exclusive, 1), 0),
            Err(LockRefusal::Conflict(_))
        ));
    }

    #[test]
    fn infinity_covers_members_and_not_neighbours() {
        let t = LockTable::new(LockLimits::default());
        let l = t.create(new(CAL, true, Scope::Exclusive, 1), 0).unwrap();
        assert_eq!(t.covering(OBJ, 0), vec![l.clone()]);
        assert!(t.covering("/dav/calendars/a/personal2/x.ics", 0).is_empty());
        assert!(t.covering("/dav/calendars/a/", 0).is_empty());
        assert_eq!(t.within("/dav/calendars/a/", 0), vec![l.clone()]);
        t.remove_under("/dav/calendars/a/", 0);
        assert!(t.is_empty(0));
    }

    #[test]
    fn locks_expire_and_refresh() {
        let t = LockTable::new(LockLimits {
            max_timeout: 100,
            ..LockLimits::default()
        });
        let mut n = new(OBJ, false, Scope::Exclusive, 1);
        n.timeout = 10_000;
        let l = t.create(n, 0).unwrap();
        assert_eq!(l.timeout, 100, "capped at the server's maximum");
        assert!(t.refresh(&l.token, 50, 90).is_some());
        assert!(t.get(&l.token, 139).is_some());
        assert!(t.get(&l.token, 140).is_none(), "expired");
        assert!(t.refresh(&l.token, 50, 141).is_none());
        // The expired lock no longer conflicts or counts.
        t.create(new(OBJ, false, Scope::Exclusive, 2), 141).unwrap();
        assert_eq!(t.len(141), 1);
    }

    #[test]
    fn bounded_per_principal_and_in_total() {
        let t = LockTable::new(LockLimits {
            max_timeout: 100,
            per_principal: 2,
            total: 3,
        });
        for i in 0..2 {
            t.create(new(&format!("{CAL}{i}"), false, Scope::Exclusive, 1), 0)
                .unwrap();
        }
        assert_eq!(
            t.create(new(&format!("{CAL}x"), false, Scope::Exclusive, 1), 0),
            Err(LockRefusal::TooMany)
        );
        t.create(new(&format!("{CAL}y"), false, Scope::Exclusive, 2), 0)
            .unwrap();
        assert_eq!(
            t.create(new(&format!("{CAL}z"), false, Scope::Exclusive, 3), 0),
            Err(LockRefusal::TooMany)
        );
        // Expiry gives the room back.
        t.create(new(&format!("{CAL}x"), false, Scope::Exclusive, 1), 100)
            .unwrap();
    }

    #[test]
    fn timeout_header() {
        assert_eq!(parse_timeout(None, 3600), 3600);
        assert_eq!(
            parse_timeout(Some("Infinite, Second-4100000000"), 3600),
            3600
        );
        assert_eq!(parse_timeout(Some("Second-600"), 3600), 600);
        assert_eq!(parse_timeout(Some("second-7200"), 3600), 3600);
        assert_eq!(parse_timeout(Some("Second-0"), 3600), 1);
        assert_eq!(
            parse_timeout(Some("Second-99999999999999999999999"), 3600),
            3600
        );
        assert_eq!(parse_timeout(Some("Minute-5, Second-30"), 3600), 30);
        assert_eq!(parse_timeout(Some("garbage"), 3600), 3600);
    }

    #[test]
    fn lockinfo_bodies() {
        let b = br#"<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:shared/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner><D:href>mailto:a@b</D:href></D:owner></D:lockinfo>"#;
        let li = parse_lockinfo(b).unwrap().unwrap();
        assert_eq!(li.scope, Scope::Shared);
        assert_eq!(
            li.owner.unwrap().child(DAV, "href").unwrap().text,
            "mailto:a@b"
        );
        assert_eq!(parse_lockinfo(b"  \r\n").unwrap(), None);
        for bad in [
            &br#"<D:propfind xmlns:D="DAV:"/>"#[..],
            br#"<D:lockinfo xmlns:D="DAV:"><D:locktype><D:write/></D:locktype></D:lockinfo>"#,
            br#"<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:read/></D:locktype></D:lockinfo>"#,
            b"<not xml",
        ] {
            assert!(parse_lockinfo(bad).is_err());
        }
        let long = format!(
            r#"<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>{}</D:owner></D:lockinfo>"#,
            "x".repeat(MAX_OWNER)
        );
        assert!(parse_lockinfo(long.as_bytes()).is_err());
    }

    #[test]
    fn activelock_reads_back() {
        let t = LockTable::new(LockLimits::default());
        let mut n = new(CAL, true, Scope::Exclusive, 1);
        n.owner = Some(dav("owner").with_text("litmus & co"));
        let l = t.create(n, 5).unwrap();
        let xml = to_xml(&lockdiscovery(std::slice::from_ref(&l), 5));
        let back = outpost_xml::parse(xml.as_bytes(), &Default::default()).unwrap();
        let a = back.child(DAV, "activelock").unwrap();
        assert_eq!(a.child(DAV, "depth").unwrap().text, "infinity");
        assert_eq!(a.child(DAV, "owner").unwrap().text, "litmus & co");
        assert_eq!(a.child(DAV, "timeout").unwrap().text, "Second-60");
        let tok = a
            .child(DAV, "locktoken")
            .unwrap()
            .child(DAV, "href")
            .unwrap();
        assert_eq!(tok.text, l.token);
        let root = a
            .child(DAV, "lockroot")
            .unwrap()
            .child(DAV, "href")
            .unwrap();
        assert_eq!(root.text, CAL);
    }
}
