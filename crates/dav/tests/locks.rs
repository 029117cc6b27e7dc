//! WebDAV class 2 over the in-memory store: LOCK, UNLOCK, the If header
//! and lock enforcement (RFC 4918 §6, §7, §9.10, §9.11, §10.4).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use outpost_dav::lock::LockLimits;
use outpost_dav::memory::MemDavStore;
use outpost_dav::*;
use outpost_net::auth::AuthUser;
use tower::ServiceExt;

struct T {
    app: Router,
    store: Arc<MemDavStore>,
    alice: i64,
    bob: i64,
}

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const CAL: &str = "/dav/calendars/alice@example.com/personal/";
const EV: &str = "/dav/calendars/alice@example.com/personal/ev.ics";

fn setup() -> T {
    setup_with(DavConfig::default())
}

fn setup_with(config: DavConfig) -> T {
    let store = Arc::new(MemDavStore::new());
    let alice = store.add_principal(ALICE, &[], None);
    let bob = store.add_principal(BOB, &[], None);
    let app = router(store.clone(), config);
    T {
        app,
        store,
        alice,
        bob,
    }
}

fn event(uid: &str, summary: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260301T100000Z\r\nDTEND:20260301T110000Z\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

fn lockinfo(scope: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:{scope}/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner><D:href>mailto:{scope}@example.com</D:href></D:owner></D:lockinfo>"#
    )
}

const PROPFIND_LOCKS: &str = r#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:lockdiscovery/><D:supportedlock/><D:getetag/></D:prop></D:propfind>"#;

impl T {
    async fn req_as(
        &self,
        who: i64,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let mut req = b.body(Body::from(body.to_string())).unwrap();
        let login = if who == self.alice { ALICE } else { BOB };
        req.extensions_mut().insert(AuthUser {
            principal_id: who,
            login: login.into(),
            quota_bytes: 0,
        });
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = String::from_utf8_lossy(&resp.into_body().collect().await.unwrap().to_bytes())
            .into_owned();
        Resp {
            status,
            headers,
            body,
        }
    }

    async fn req(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
        self.req_as(self.alice, method, path, headers, body).await
    }

    async fn put_as(&self, who: i64, path: &str, summary: &str, headers: &[(&str, &str)]) -> Resp {
        let mut h = vec![("content-type", "text/calendar")];
        h.extend_from_slice(headers);
        let uid = path.rsplit('/').next().unwrap();
        self.req_as(who, "PUT", path, &h, &event(uid, summary))
            .await
    }

    /// LOCK as `who`; the token.
    async fn lock_as(&self, who: i64, path: &str, scope: &str, depth: &str) -> String {
        let r = self
            .req_as(
                who,
                "LOCK",
                path,
                &[("depth", depth), ("timeout", "Second-600")],
                &lockinfo(scope),
            )
            .await;
        assert!(
            r.status == StatusCode::OK || r.status == StatusCode::CREATED,
            "{} {}",
            r.status,
            r.body
        );
        let tok = r.headers["lock-token"].to_str().unwrap();
        let tok = tok
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_string();
        assert!(r.body.contains(&tok), "{}", r.body);
        tok
    }

    async fn share(&self, rights: Rights) {
        // Alice's defaults exist once she has looked at her home.
        self.req("PROPFIND", CAL, &[("depth", "0")], "").await;
        let id = self
            .store
            .collection(self.alice, CollectionKind::Calendar, "personal")
            .await
            .unwrap()
            .unwrap()
            .id;
        self.store.grant(id, self.bob, rights);
    }
}

fn if_token(tok: &str) -> String {
    format!("(<{tok}>)")
}

#[tokio::test]
async fn an_exclusive_lock_on_an_object_needs_its_token() {
    let t = setup();
    assert_eq!(
        t.put_as(t.alice, EV, "one", &[]).await.status,
        StatusCode::CREATED
    );
    let r = t
        .req("LOCK", EV, &[("depth", "0")], &lockinfo("exclusive"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "an existing resource: 200");
    assert!(r.headers["content-type"].to_str().unwrap().contains("xml"));
    let tok = r.headers["lock-token"].to_str().unwrap().to_string();
    assert!(tok.starts_with("<urn:uuid:") && tok.ends_with('>'), "{tok}");
    let tok = tok[1..tok.len() - 1].to_string();
    for want in [
        "<d:exclusive/>",
        "<d:write/>",
        "<d:depth>0</d:depth>",
        "mailto:exclusive@example.com",
        "Second-",
        &tok,
        "<d:lockroot><d:href>/dav/calendars/alice@example.com/personal/ev.ics</d:href>",
    ] {
        assert!(r.body.contains(want), "{want} in {}", r.body);
    }

    // PROPFIND shows it, and what can be locked.
    let r = t
        .req("PROPFIND", EV, &[("depth", "0")], PROPFIND_LOCKS)
        .await;
    assert_eq!(r.status, StatusCode::MULTI_STATUS);
    assert!(
        r.body.contains(&tok) && r.body.contains("<d:lockentry>"),
        "{}",
        r.body
    );
    assert!(r.body.contains("<d:shared/>"), "{}", r.body);

    // Without the token: 423 with the lock's root.
    for (m, body) in [("PUT", event("ev.ics", "two")), ("DELETE", String::new())] {
        let r = t
            .req(m, EV, &[("content-type", "text/calendar")], &body)
            .await;
        assert_eq!(r.status, StatusCode::LOCKED, "{m}");
        assert!(
            r.body.contains("lock-token-submitted") && r.body.contains("personal/ev.ics</d:href>"),
            "{}",
            r.body
        );
    }
    let r = t
        .req(
            "PROPPATCH",
            EV,
            &[],
            r#"<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:displayname>x</D:displayname></D:prop></D:set></D:propertyupdate>"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::LOCKED);

    // With it, untagged or tagged with the resource's URL.
    let r = t
        .put_as(t.alice, EV, "two", &[("if", &if_token(&tok))])
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let tagged = format!("<http://localhost{EV}> (<{tok}>)");
    let r = t.put_as(t.alice, EV, "three", &[("if", &tagged)]).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    // The token of the lock, tagged with another resource, is not this
    // resource's state: the header is false.
    let other = format!("<http://localhost{CAL}other.ics> (<{tok}>)");
    let r = t.put_as(t.alice, EV, "four", &[("if", &other)]).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);

    // UNLOCK: a wrong token is 409, no header 400, the right one 204.
    let r = t
        .req("UNLOCK", EV, &[("lock-token", "<urn:uuid:nope>")], "")
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(
        r.body.contains("lock-token-matches-request-uri"),
        "{}",
        r.body
    );
    assert_eq!(
        t.req("UNLOCK", EV, &[], "").await.status,
        StatusCode::BAD_REQUEST
    );
    let r = t
        .req("UNLOCK", EV, &[("lock-token", &format!("<{tok}>"))], "")
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        t.put_as(t.alice, EV, "five", &[]).await.status,
        StatusCode::NO_CONTENT
    );
    let r = t
        .req("PROPFIND", EV, &[("depth", "0")], PROPFIND_LOCKS)
        .await;
    assert!(!r.body.contains("activelock"), "{}", r.body);
}

#[tokio::test]
async fn another_user_cannot_use_or_remove_the_lock() {
    let t = setup();
    t.share(Rights::ReadWrite).await;
    assert_eq!(
        t.put_as(t.alice, EV, "one", &[]).await.status,
        StatusCode::CREATED
    );
    let tok = t.lock_as(t.alice, EV, "exclusive", "0").await;
    // Bob may write the calendar, but not through Alice's lock, even with
    // her token.
    let r = t.put_as(t.bob, EV, "bob", &[("if", &if_token(&tok))]).await;
    assert_eq!(r.status, StatusCode::LOCKED, "{}", r.body);
    let r = t
        .req_as(t.bob, "DELETE", EV, &[("if", &if_token(&tok))], "")
        .await;
    assert_eq!(r.status, StatusCode::LOCKED);
    let r = t
        .req_as(
            t.bob,
            "UNLOCK",
            EV,
            &[("lock-token", &format!("<{tok}>"))],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = t
        .req_as(t.bob, "LOCK", EV, &[("depth", "0")], &lockinfo("exclusive"))
        .await;
    assert_eq!(r.status, StatusCode::LOCKED);
    assert!(r.body.contains("no-conflicting-lock"), "{}", r.body);
    // A refresh of someone else's lock.
    let r = t
        .req_as(t.bob, "LOCK", EV, &[("if", &if_token(&tok))], "")
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Bob can see it.
    let r = t
        .req_as(t.bob, "PROPFIND", EV, &[("depth", "0")], PROPFIND_LOCKS)
        .await;
    assert!(r.body.contains(&tok), "{}", r.body);
    // Alice still writes with it; once unlocked Bob writes again.
    let r = t
        .put_as(t.alice, EV, "alice", &[("if", &if_token(&tok))])
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = t
        .req("UNLOCK", EV, &[("lock-token", &format!("<{tok}>"))], "")
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        t.put_as(t.bob, EV, "bob", &[]).await.status,
        StatusCode::NO_CONTENT
    );

    // Bob's lock binds Alice the same way; as the calendar's owner she may
    // break it, not write through it.
    let tok = t.lock_as(t.bob, EV, "exclusive", "0").await;
    let r = t
        .put_as(t.alice, EV, "alice", &[("if", &if_token(&tok))])
        .await;
    assert_eq!(r.status, StatusCode::LOCKED);
    let r = t.req("UNLOCK", EV, &[("lock-token", &tok)], "").await;
    assert_eq!(
        r.status,
        StatusCode::NO_CONTENT,
        "a bare token is taken too"
    );
    assert_eq!(
        t.put_as(t.alice, EV, "alice", &[]).await.status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn read_only_sharees_cannot_lock() {
    let t = setup();
    t.share(Rights::Read).await;
    assert_eq!(
        t.put_as(t.alice, EV, "one", &[]).await.status,
        StatusCode::CREATED
    );
    let r = t
        .req_as(t.bob, "LOCK", EV, &[("depth", "0")], &lockinfo("shared"))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = t
        .req_as(t.bob, "PROPFIND", EV, &[("depth", "0")], PROPFIND_LOCKS)
        .await;
    assert!(
        !r.body.contains("<d:lockentry>"),
        "no supportedlock for a reader: {}",
        r.body
    );
    // The principal's home and the root cannot be locked.
    let r = t
        .req(
            "LOCK",
            "/dav/calendars/alice@example.com/",
            &[],
            &lockinfo("exclusive"),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn shared_locks_share_and_exclusive_ones_do_not() {
    let t = setup();
    t.share(Rights::ReadWrite).await;
    assert_eq!(
        t.put_as(t.alice, EV, "one", &[]).await.status,
        StatusCode::CREATED
    );
    let a = t.lock_as(t.alice, EV, "shared", "0").await;
    let b = t.lock_as(t.bob, EV, "shared", "0").await;
    assert_ne!(a, b);
    let r = t
        .req("LOCK", EV, &[("depth", "0")], &lockinfo("exclusive"))
        .await;
    assert_eq!(r.status, StatusCode::LOCKED);
    // A write needs every lock's token: Alice holds only hers.
    let r = t.put_as(t.alice, EV, "two", &[("if", &if_token(&a))]).await;
    assert_eq!(r.status, StatusCode::LOCKED);
    let r = t
        .req_as(
            t.bob,
            "UNLOCK",
            EV,
            &[("lock-token", &format!("<{b}>"))],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = t.put_as(t.alice, EV, "two", &[("if", &if_token(&a))]).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn an_unmapped_url_locked_is_an_empty_locked_resource() {
    let t = setup();
    t.req("PROPFIND", CAL, &[("depth", "0")], "").await;
    let new = format!("{CAL}new.ics");
    let r = t
        .req("LOCK", &new, &[("depth", "0")], &lockinfo("exclusive"))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let tok = r.headers["lock-token"].to_str().unwrap().to_string();
    let tok = tok[1..tok.len() - 1].to_string();
    let r = t.req("GET", &new, &[], "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.is_empty() && !r.headers.contains_key("etag"));
    let r = t
        .req("PROPFIND", &new, &[("depth", "0")], PROPFIND_LOCKS)
        .await;
    assert_eq!(r.status, StatusCode::MULTI_STATUS);
    assert!(r.body.contains(&tok), "{}", r.body);
    // Not a calendar object: the collection does not list it.
    let r = t
        .req("PROPFIND", CAL, &[("depth", "1")], PROPFIND_LOCKS)
        .await;
    assert!(!r.body.contains("new.ics"), "{}", r.body);
    // Content needs the token; then it is an ordinary locked object.
    assert_eq!(
        t.put_as(t.alice, &new, "n", &[]).await.status,
        StatusCode::LOCKED
    );
    let r = t
        .put_as(t.alice, &new, "n", &[("if", &if_token(&tok))])
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(
        t.put_as(t.alice, &new, "m", &[]).await.status,
        StatusCode::LOCKED
    );
    let r = t
        .req("UNLOCK", &new, &[("lock-token", &format!("<{tok}>"))], "")
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(t.req("GET", &new, &[], "").await.status, StatusCode::OK);

    // Locked, never written, unlocked: gone again.
    let gone = format!("{CAL}gone.ics");
    let tok = t.lock_as(t.alice, &gone, "exclusive", "0").await;
    let r = t
        .req("UNLOCK", &gone, &[("lock-token", &format!("<{tok}>"))], "")
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        t.req("GET", &gone, &[], "").await.status,
        StatusCode::NOT_FOUND
    );
    // DELETE of a locked empty resource with its token drops it.
    let tok = t.lock_as(t.alice, &gone, "exclusive", "0").await;
    assert_eq!(
        t.req("DELETE", &gone, &[], "").await.status,
        StatusCode::LOCKED
    );
    let r = t.req("DELETE", &gone, &[("if", &if_token(&tok))], "").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        t.req("GET", &gone, &[], "").await.status,
        StatusCode::NOT_FOUND
    );
    // In a collection that does not exist: 409.
    let r = t
        .req(
            "LOCK",
            "/dav/calendars/alice@example.com/nocal/x.ics",
            &[],
            &lockinfo("exclusive"),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_collection_lock_covers_its_members() {
    let t = setup();
    assert_eq!(
        t.put_as(t.alice, EV, "one", &[]).await.status,
        StatusCode::CREATED
    );
    let tok = t.lock_as(t.alice, CAL, "exclusive", "infinity").await;
    let r = t
        .req("PROPFIND", CAL, &[("depth", "0")], PROPFIND_LOCKS)
        .await;
    assert!(r.body.contains("<d:depth>infinity</d:depth>"), "{}", r.body);
    // A new member and an existing one both need the token.
    let new = format!("{CAL}new.ics");
    let r = t.put_as(t.alice, &new, "n", &[]).await;
    assert_eq!(r.status, StatusCode::LOCKED);
    assert!(r.body.contains(&format!("{CAL}</d:href>")), "{}", r.body);
    assert_eq!(
        t.put_as(t.alice, EV, "x", &[]).await.status,
        StatusCode::LOCKED
    );
    // neon sends the collection's lock tagged with the collection.
    let tagged = format!("<http://localhost{CAL}> (<{tok}>)");
    assert_eq!(
        t.put_as(t.alice, &new, "n", &[("if", &tagged)])
            .await
            .status,
        StatusCode::CREATED
    );
    // The member shows the inherited lock; a refresh through it works.
    let r = t
        .req("PROPFIND", &new, &[("depth", "0")], PROPFIND_LOCKS)
        .await;
    assert!(r.body.contains(&tok), "{}", r.body);
    let r = t
        .req(
            "LOCK",
            &new,
            &[("if", &if_token(&tok)), ("timeout", "Second-100")],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("Second-100") && r.body.contains(&format!("{CAL}</d:href>")));
    // No member can be locked exclusively inside it.
    let r = t
        .req("LOCK", EV, &[("depth", "0")], &lockinfo("exclusive"))
        .await;
    assert_eq!(r.status, StatusCode::LOCKED);
    // Deleting the calendar needs the token too; unlock frees everything.
    assert_eq!(
        t.req("DELETE", &new, &[], "").await.status,
        StatusCode::LOCKED
    );
    let r = t
        .req("UNLOCK", &new, &[("lock-token", &format!("<{tok}>"))], "")
        .await;
    assert_eq!(
        r.status,
        StatusCode::NO_CONTENT,
        "UNLOCK through a member of the scope"
    );
    assert_eq!(
        t.put_as(t.alice, EV, "y", &[]).await.status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn a_depth_0_collection_lock_guards_membership_only() {
    let t = setup();
    assert_eq!(
        t.put_as(t.alice, EV, "one", &[]).await.status,
        StatusCode::CREATED
    );
    let tok = t.lock_as(t.alice, CAL, "exclusive", "0").await;
    // Replacing a member is not a change of the collection...
    assert_eq!(
        t.put_as(t.alice, EV, "two", &[]).await.status,
        StatusCode::NO_CONTENT
    );
    // ...adding or removing one is (RFC 4918 §7.5).
    let new = format!("{CAL}new.ics");
    assert_eq!(
        t.put_as(t.alice, &new, "n", &[]).await.status,
        StatusCode::LOCKED
    );
    assert_eq!(
        t.req("DELETE", EV, &[], "").await.status,
        StatusCode::LOCKED
    );
    // The lock is the collection's, not the member's: an untagged list is
    // about the member and false; the client tags it with the collection.
    let r = t
        .put_as(t.alice, &new, "n", &[("if", &if_token(&tok))])
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    let tagged = format!("<{CAL}> (<{tok}>)");
    let r = t.put_as(t.alice, &new, "n", &[("if", &tagged)]).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = t.req("DELETE", EV, &[("if", &tagged)], "").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    // Locking an unmapped URL in it adds a member too.
    let empty = format!("{CAL}empty.ics");
    let r = t
        .req("LOCK", &empty, &[("depth", "0")], &lockinfo("exclusive"))
        .await;
    assert_eq!(r.status, StatusCode::LOCKED);
    let r = t
        .req(
            "LOCK",
            &empty,
            &[("depth", "0"), ("if", &tagged)],
            &lockinfo("exclusive"),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn copy_and_move_respect_locks_and_locks_do_not_follow() {
    let t = setup();
    assert_eq!(
        t.put_as(t.alice, EV, "one", &[]).await.status,
        StatusCode::CREATED
    );
    let other = format!("{CAL}other.ics");
    assert_eq!(
        t.put_as(t.alice, &other, "o", &[]).await.status,
        StatusCode::CREATED
    );
    let tok = t.lock_as(t.alice, EV, "exclusive", "0").await;
    let work = "/dav/calendars/alice@example.com/work/";
    assert_eq!(
        t.req("MKCALENDAR", work, &[], "").await.status,
        StatusCode::CREATED
    );
    // Copying a locked resource away is fine, and the copy is not locked.
    let copy = format!("{work}copy.ics");
    let r = t
        .req(
            "COPY",
            EV,
            &[("destination", &format!("http://localhost{copy}"))],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = t
        .req("PROPFIND", &copy, &[("depth", "0")], PROPFIND_LOCKS)
        .await;
    assert!(!r.body.contains("activelock"), "{}", r.body);
    assert_eq!(
        t.req("DELETE", &copy, &[], "").await.status,
        StatusCode::NO_CONTENT
    );
    // Onto it, or moving it, needs the token.
    let r = t
        .req(
            "COPY",
            &other,
            &[("destination", EV), ("overwrite", "T")],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::LOCKED);
    let moved = format!("{work}moved.ics");
    assert_eq!(
        t.req("MOVE", EV, &[("destination", &moved)], "")
            .await
            .status,
        StatusCode::LOCKED
    );
    let r = t
        .req(
            "MOVE",
            EV,
            &[("destination", &moved), ("if", &if_token(&tok))],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // The lock stayed behind and went with the source.
    let r = t
        .req("PROPFIND", &moved, &[("depth", "0")], PROPFIND_LOCKS)
        .await;
    assert!(!r.body.contains("activelock"), "{}", r.body);
    assert_eq!(
        t.put_as(t.alice, EV, "back", &[]).await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn the_if_header_is_evaluated_with_etags_and_not() {
    let t = setup();
    let r = t.put_as(t.alice, EV, "one", &[]).await;
    let etag = r.headers["etag"].to_str().unwrap().to_string();
    let put = |h: String| {
        let t = &t;
        async move { t.put_as(t.alice, EV, "x", &[("if", &h)]).await.status }
    };
    assert_eq!(put(format!("([{etag}])")).await, StatusCode::NO_CONTENT);
    // The content changed: the old ETag is stale now.
    assert_eq!(
        put(format!("([{etag}])")).await,
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(
        put("(<DAV:no-lock>)".into()).await,
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(
        put("(Not <DAV:no-lock>)".into()).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        put("(<DAV:no-lock>) ([\"nope\"]) (Not [\"nope\"])".into()).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(put("(<unterminated".into()).await, StatusCode::BAD_REQUEST);
    assert_eq!(put("(Not)".into()).await, StatusCode::BAD_REQUEST);
    // Any method: a false If on GET is 412 too.
    let r = t.req("GET", EV, &[("if", "(<DAV:no-lock>)")], "").await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    // A tagged resource the user cannot reach has no state.
    let r = t
        .req(
            "GET",
            EV,
            &[(
                "if",
                "</dav/calendars/bob@example.com/personal/x.ics> ([\"x\"])",
            )],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
}

#[tokio::test]
async fn timeouts_are_capped_and_locks_expire() {
    let t = setup_with(DavConfig {
        locks: LockLimits {
            max_timeout: 1,
            ..LockLimits::default()
        },
        ..DavConfig::default()
    });
    assert_eq!(
        t.put_as(t.alice, EV, "one", &[]).await.status,
        StatusCode::CREATED
    );
    let r = t
        .req(
            "LOCK",
            EV,
            &[("timeout", "Infinite, Second-4100000000")],
            &lockinfo("exclusive"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body.contains("<d:timeout>Second-1</d:timeout>"),
        "{}",
        r.body
    );
    assert_eq!(
        t.put_as(t.alice, EV, "two", &[]).await.status,
        StatusCode::LOCKED
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        t.put_as(t.alice, EV, "two", &[]).await.status,
        StatusCode::NO_CONTENT
    );
    // A refresh needs the token in If.
    let r = t.req("LOCK", EV, &[], "").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = t
        .req("LOCK", EV, &[("if", "(Not <DAV:no-lock>)")], "")
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
}

#[tokio::test]
async fn locks_are_bounded_per_user() {
    let t = setup_with(DavConfig {
        locks: LockLimits {
            per_principal: 2,
            ..LockLimits::default()
        },
        ..DavConfig::default()
    });
    t.req("PROPFIND", CAL, &[("depth", "0")], "").await;
    for i in 0..2 {
        t.lock_as(t.alice, &format!("{CAL}{i}.ics"), "exclusive", "0")
            .await;
    }
    let r = t
        .req("LOCK", &format!("{CAL}2.ics"), &[], &lockinfo("exclusive"))
        .await;
    assert_eq!(r.status, StatusCode::INSUFFICIENT_STORAGE);
    // Bad requests.
    let r = t
        .req("LOCK", EV, &[("depth", "1")], &lockinfo("exclusive"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = t
        .req("LOCK", EV, &[], r#"<D:lockinfo xmlns:D="DAV:"/>"#)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}
