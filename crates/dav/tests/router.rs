//! The DAV router driven request by request (tower's `oneshot`) over the
//! in-memory store.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
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

fn setup() -> T {
    setup_with(DavConfig::default())
}

fn setup_with(config: DavConfig) -> T {
    let store = Arc::new(MemDavStore::new());
    let alice = store.add_principal(
        ALICE,
        &["a.smith@example.com", "alice@example.org"],
        Some(1 << 20),
    );
    let bob = store.add_principal(BOB, &[], None);
    let app = router(store.clone(), config);
    T {
        app,
        store,
        alice,
        bob,
    }
}

impl T {
    async fn req_as(
        &self,
        who: i64,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let mut req = b.body(body.into()).unwrap();
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
        self.req_as(self.alice, method, path, headers, body.to_string())
            .await
    }

    async fn put_ics(&self, path: &str, ics: &str) -> Resp {
        self.req("PUT", path, &[("content-type", "text/calendar")], ics)
            .await
    }

    async fn coll_id(&self, owner: i64, kind: CollectionKind, name: &str) -> i64 {
        self.store
            .collection(owner, kind, name)
            .await
            .unwrap()
            .unwrap()
            .id
    }
}

const CAL: &str = "/dav/calendars/alice@example.com/personal/";
const CARDS: &str = "/dav/addressbooks/alice@example.com/personal/";

fn event(uid: &str, start: &str, end: &str, extra: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{start}\r\nDTEND:{end}\r\nSUMMARY:Meeting {uid}\r\n{extra}END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

const PROPFIND_ALL: &str =
    r#"<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:allprop/></d:propfind>"#;

#[tokio::test]
async fn options_lists_the_classes_really_supported() {
    let t = setup();
    let r = t.req("OPTIONS", "/dav/", &[], "").await;
    assert_eq!(r.status, StatusCode::OK);
    let dav = r.headers["dav"].to_str().unwrap();
    for c in [
        "1",
        "2",
        "3",
        "calendar-access",
        "addressbook",
        "extended-mkcol",
    ] {
        assert!(dav.split(',').any(|x| x.trim() == c), "{dav}");
    }
    let allow = r.headers["allow"].to_str().unwrap();
    for m in ["REPORT", "LOCK", "UNLOCK"] {
        assert!(allow.split(", ").any(|x| x == m), "{allow}");
    }
}

#[tokio::test]
async fn well_known_redirects_permanently() {
    let t = setup();
    for p in ["/.well-known/caldav", "/.well-known/carddav"] {
        let r = t.req("PROPFIND", p, &[], "").await;
        assert_eq!(r.status, StatusCode::MOVED_PERMANENTLY);
        assert_eq!(r.headers["location"], "/dav/");
    }
}

#[tokio::test]
async fn discovery_from_root_to_homes() {
    let t = setup();
    let body = r#"<d:propfind xmlns:d="DAV:"><d:prop><d:current-user-principal/><d:displayname/></d:prop></d:propfind>"#;
    let r = t.req("PROPFIND", "/", &[("depth", "0")], body).await;
    assert_eq!(r.status, StatusCode::MULTI_STATUS);
    assert!(
        r.body
            .contains("<d:href>/dav/principals/users/alice@example.com/</d:href>"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("404 Not Found"),
        "displayname of / is not there: {}",
        r.body
    );

    let body = r#"<d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:a="urn:ietf:params:xml:ns:carddav">
      <d:prop><c:calendar-home-set/><a:addressbook-home-set/><c:calendar-user-address-set/><d:principal-URL/></d:prop></d:propfind>"#;
    let r = t
        .req(
            "PROPFIND",
            "/dav/principals/users/alice%40example.com/",
            &[("depth", "0")],
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::MULTI_STATUS);
    assert!(
        r.body.contains("/dav/calendars/alice@example.com/"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("/dav/addressbooks/alice@example.com/"),
        "{}",
        r.body
    );
    for a in [
        "mailto:alice@example.com",
        "mailto:a.smith@example.com",
        "mailto:alice@example.org",
    ] {
        assert!(
            r.body.contains(a),
            "every address of the user: {a}: {}",
            r.body
        );
    }
}

#[tokio::test]
async fn depth_infinity_is_refused() {
    let t = setup();
    let r = t
        .req(
            "PROPFIND",
            "/dav/calendars/alice@example.com/",
            &[("depth", "infinity")],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("propfind-finite-depth"), "{}", r.body);
}

#[tokio::test]
async fn home_lists_default_collections_named_as_sogo() {
    let t = setup();
    let r = t
        .req(
            "PROPFIND",
            "/dav/calendars/alice@example.com/",
            &[("depth", "1")],
            PROPFIND_ALL,
        )
        .await;
    assert_eq!(r.status, StatusCode::MULTI_STATUS);
    assert!(
        r.body
            .contains("/dav/calendars/alice@example.com/personal/"),
        "{}",
        r.body
    );
    assert!(r.body.contains("Personal Calendar"));
    assert!(r.body.contains("/dav/calendars/alice@example.com/tasks/"));
    assert!(r.body.contains("<cal:comp name=\"VTODO\"/>"), "{}", r.body);
    let r = t
        .req(
            "PROPFIND",
            "/dav/addressbooks/alice@example.com/",
            &[("depth", "1")],
            "",
        )
        .await;
    assert!(r.body.contains("Personal Address Book"), "{}", r.body);
    assert!(r.body.contains("<card:addressbook/>"), "{}", r.body);
}

#[tokio::test]
async fn mkcalendar_proppatch_and_propname() {
    let t = setup();
    let body = r#"<?xml version="1.0"?><c:mkcalendar xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:x="http://apple.com/ns/ical/">
      <d:set><d:prop><d:displayname>Work</d:displayname><x:calendar-color>#FF0000FF</x:calendar-color>
      <c:supported-calendar-component-set><c:comp name="VEVENT"/></c:supported-calendar-component-set></d:prop></d:set></c:mkcalendar>"#;
    let r = t
        .req(
            "MKCALENDAR",
            "/dav/calendars/alice@example.com/work/",
            &[],
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = t
        .req(
            "MKCALENDAR",
            "/dav/calendars/alice@example.com/work/",
            &[],
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);

    // Thunderbird's colour write and a description.
    let patch = r#"<d:propertyupdate xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:x="http://apple.com/ns/ical/">
      <d:set><d:prop><x:calendar-color>#00ff00</x:calendar-color><c:calendar-description>Job</c:calendar-description></d:prop></d:set>
      <d:remove><d:prop><d:displayname/></d:prop></d:remove></d:propertyupdate>"#;
    let r = t
        .req(
            "PROPPATCH",
            "/dav/calendars/alice@example.com/work/",
            &[],
            patch,
        )
        .await;
    assert_eq!(r.status, StatusCode::MULTI_STATUS);
    assert!(r.body.contains("200 OK"), "{}", r.body);
    let c = t
        .store
        .collection(t.alice, CollectionKind::Calendar, "work")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.color.as_deref(), Some("#00ff00"));
    assert_eq!(c.description.as_deref(), Some("Job"));
    assert_eq!(c.display_name, None);
    assert_eq!(c.components, vec![ComponentKind::VEvent]);

    // A bad colour fails the whole update: 403 for it, 424 for the rest.
    let patch = r#"<d:propertyupdate xmlns:d="DAV:" xmlns:x="http://apple.com/ns/ical/">
      <d:set><d:prop><x:calendar-color>red</x:calendar-color><d:displayname>New</d:displayname><x:unknown/></d:prop></d:set></d:propertyupdate>"#;
    let r = t
        .req(
            "PROPPATCH",
            "/dav/calendars/alice@example.com/work/",
            &[],
            patch,
        )
        .await;
    assert!(
        r.body.contains("403 Forbidden") && r.body.contains("424 Failed Dependency"),
        "{}",
        r.body
    );
    let c = t
        .store
        .collection(t.alice, CollectionKind::Calendar, "work")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.display_name, None);

    let r = t
        .req(
            "PROPFIND",
            "/dav/calendars/alice@example.com/work/",
            &[("depth", "0")],
            r#"<d:propfind xmlns:d="DAV:"><d:propname/></d:propfind>"#,
        )
        .await;
    assert!(
        r.body.contains("<cs:getctag/>") && r.body.contains("<d:sync-token/>"),
        "{}",
        r.body
    );

    // Extended MKCOL of an address book.
    let body = r#"<d:mkcol xmlns:d="DAV:" xmlns:a="urn:ietf:params:xml:ns:carddav"><d:set><d:prop>
      <d:resourcetype><d:collection/><a:addressbook/></d:resourcetype><d:displayname>Friends</d:displayname></d:prop></d:set></d:mkcol>"#;
    let r = t
        .req(
            "MKCOL",
            "/dav/addressbooks/alice@example.com/friends/",
            &[],
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    // A calendar resourcetype in the address book home is refused.
    let body = r#"<d:mkcol xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:set><d:prop>
      <d:resourcetype><d:collection/><c:calendar/></d:resourcetype></d:prop></d:set></d:mkcol>"#;
    let r = t
        .req("MKCOL", "/dav/addressbooks/alice@example.com/x/", &[], body)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("valid-resourcetype"));
}

#[tokio::test]
async fn principal_property_search_finds_principals_by_address() {
    let t = setup();
    let body = r#"<d:principal-property-search xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">
      <d:property-search><d:prop><d:displayname/></d:prop><d:match>bob</d:match></d:property-search>
      <d:prop><d:displayname/><c:calendar-home-set/></d:prop></d:principal-property-search>"#;
    let r = t
        .req("REPORT", "/dav/principals/users/", &[("depth", "0")], body)
        .await;
    assert_eq!(r.status, StatusCode::MULTI_STATUS, "{}", r.body);
    assert!(
        r.body.contains("/dav/principals/users/bob@example.com/"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("/dav/calendars/bob@example.com/"),
        "{}",
        r.body
    );
    assert!(
        !r.body.contains("/dav/principals/users/alice@example.com/"),
        "{}",
        r.body
    );
    // allof: every match must hold; nobody is both.
    let body = r#"<d:principal-property-search xmlns:d="DAV:">
      <d:property-search><d:prop><d:displayname/></d:prop><d:match>bob</d:match></d:property-search>
      <d:property-search><d:prop><d:displayname/></d:prop><d:match>smith</d:match></d:property-search>
      <d:prop><d:displayname/></d:prop></d:principal-property-search>"#;
    let r = t.req("REPORT", "/dav/principals/users/", &[], body).await;
    assert_eq!(r.status, StatusCode::MULTI_STATUS);
    assert!(!r.body.contains("<d:response>"), "{}", r.body);
    // anyof, and an alias address matches.
    let body = r#"<d:principal-property-search xmlns:d="DAV:" test="anyof">
      <d:property-search><d:prop><d:displayname/></d:prop><d:match>bob</d:match></d:property-search>
      <d:property-search><d:prop><d:displayname/></d:prop><d:match>a.smith</d:match></d:property-search>
      <d:prop><d:displayname/></d:prop></d:principal-property-search>"#;
    let r = t.req("REPORT", "/dav/principals/users/", &[], body).await;
    assert!(
        r.body.contains("/dav/principals/users/bob@example.com/"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("/dav/principals/users/alice@example.com/"),
        "{}",
        r.body
    );
    // Not a report for a calendar.
    let r = t.req("REPORT", CAL, &[], body).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn mkcol_with_a_body_that_is_not_xml_is_415() {
    let t = setup();
    // litmus basic.mkcol_with_body (RFC 4918 9.3).
    let r = t
        .req(
            "MKCOL",
            "/dav/calendars/alice@example.com/weird/",
            &[("content-type", "xzy-foo/bar-512")],
            "afafafaf",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = t
        .req(
            "PROPFIND",
            "/dav/calendars/alice@example.com/weird/",
            &[("depth", "0")],
            "",
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "nothing was made: {}",
        r.body
    );
    // An XML body with its type is still taken.
    let body = r#"<d:mkcol xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:set><d:prop>
      <d:resourcetype><d:collection/><c:calendar/></d:resourcetype></d:prop></d:set></d:mkcol>"#;
    let r = t
        .req(
            "MKCOL",
            "/dav/calendars/alice@example.com/weird/",
            &[("content-type", "application/xml; charset=utf-8")],
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn put_get_etags_and_conditions() {
    let t = setup();
    let ev = event("u1", "20260105T100000Z", "20260105T110000Z", "");
    let path = format!("{CAL}u1.ics");
    let r = t
        .req(
            "PUT",
            &path,
            &[("content-type", "text/calendar"), ("if-none-match", "*")],
            &ev,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let etag = r.headers["etag"].to_str().unwrap().to_string();
    assert!(etag.starts_with('"') && !etag.starts_with("W/"));
    // If-None-Match: * on an existing resource.
    let r = t.req("PUT", &path, &[("if-none-match", "*")], &ev).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    // GET and HEAD.
    let r = t.req("GET", &path, &[], "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, ev, "the source is kept byte for byte");
    assert_eq!(r.headers["etag"].to_str().unwrap(), etag);
    let r = t.req("HEAD", &path, &[], "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.is_empty());
    let r = t.req("GET", &path, &[("if-none-match", &etag)], "").await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    // Replace with the wrong and the right If-Match.
    let ev2 = event("u1", "20260105T120000Z", "20260105T130000Z", "");
    let r = t.req("PUT", &path, &[("if-match", "\"nope\"")], &ev2).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    let r = t.req("PUT", &path, &[("if-match", &etag)], &ev2).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_ne!(r.headers["etag"].to_str().unwrap(), etag);
    // DELETE with a stale If-Match, then for real.
    let r = t.req("DELETE", &path, &[("if-match", &etag)], "").await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    let r = t.req("DELETE", &path, &[], "").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = t.req("GET", &path, &[], "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = t.req("DELETE", &path, &[], "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn caldav_preconditions() {
    let t = setup_with(DavConfig {
        max_resource_size: 2000,
        ..DavConfig::default()
    });
    let ev = event("u1", "20260105T100000Z", "20260105T110000Z", "");
    assert_eq!(
        t.put_ics(&format!("{CAL}a.ics"), &ev).await.status,
        StatusCode::CREATED
    );
    let id = t
        .coll_id(t.alice, CollectionKind::Calendar, "personal")
        .await;

    let r = t.put_ics(&format!("{CAL}b.ics"), &ev).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        r.body.contains("no-uid-conflict") && r.body.contains(&format!("{CAL}a.ics")),
        "{}",
        r.body
    );

    let r = t
        .put_ics(&format!("{CAL}c.ics"), "BEGIN:VCALENDAR\r\nthis is not")
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("valid-calendar-data"), "{}", r.body);
    let r = t
        .put_ics(
            &format!("{CAL}c.ics"),
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n",
        )
        .await;
    assert!(
        r.body.contains("valid-calendar-object-resource"),
        "{}",
        r.body
    );

    let todo = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VTODO\r\nUID:t1\r\nSUMMARY:x\r\nEND:VTODO\r\nEND:VCALENDAR\r\n";
    let r = t.put_ics(&format!("{CAL}t.ics"), todo).await;
    assert!(
        r.body.contains("supported-calendar-component"),
        "VTODO in an event calendar: {}",
        r.body
    );
    let r = t
        .put_ics("/dav/calendars/alice@example.com/tasks/t.ics", todo)
        .await;
    assert_eq!(r.status, StatusCode::CREATED);

    let big = event(
        "u9",
        "20260105T100000Z",
        "20260105T110000Z",
        &format!("DESCRIPTION:{}\r\n", "x".repeat(3000)),
    );
    let r = t.put_ics(&format!("{CAL}big.ics"), &big).await;
    assert!(r.body.contains("max-resource-size"), "{}", r.body);

    let r = t
        .req(
            "PUT",
            &format!("{CAL}d.ics"),
            &[("content-type", "application/json")],
            &ev,
        )
        .await;
    assert!(r.body.contains("supported-calendar-data"), "{}", r.body);

    assert_eq!(
        t.store.object_count(id),
        1,
        "nothing but the first event was stored"
    );
}

#[tokio::test]
async fn bad_input_gets_4xx_and_the_store_is_intact() {
    let t = setup_with(DavConfig {
        max_body: 1 << 20,
        ..DavConfig::default()
    });
    let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><d:propfind xmlns:d="DAV:"><d:prop>&lol2;</d:prop></d:propfind>"#;
    let r = t.req("PROPFIND", CAL, &[("depth", "0")], bomb).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("DOCTYPE"), "{}", r.body);

    let xxe = r#"<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><d:propfind xmlns:d="DAV:">&x;</d:propfind>"#;
    assert_eq!(
        t.req("PROPFIND", CAL, &[("depth", "0")], xxe).await.status,
        StatusCode::BAD_REQUEST
    );

    let deep = format!(
        "<d:propfind xmlns:d=\"DAV:\">{}{}</d:propfind>",
        "<d:prop>".repeat(10_000),
        "</d:prop>".repeat(10_000)
    );
    let r = t.req("PROPFIND", CAL, &[("depth", "0")], &deep).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("nesting"), "{}", r.body);

    let r = t
        .req(
            "PROPFIND",
            CAL,
            &[("depth", "0")],
            "<d:propfind xmlns:d=\"DAV:\"><d:prop>",
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let huge = vec![b'x'; 100 << 20];
    let r = t
        .req_as(t.alice, "PUT", &format!("{CAL}huge.ics"), &[], huge)
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);

    let r = t
        .req("REPORT", CAL, &[], r#"<x:foo xmlns:x="urn:x"/>"#)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("supported-report"));
    let id = t
        .coll_id(t.alice, CollectionKind::Calendar, "personal")
        .await;
    assert_eq!(t.store.object_count(id), 0);
}

#[tokio::test]
async fn paths_traversal_and_other_homes() {
    let t = setup();
    for p in [
        "/dav/calendars/alice@example.com/../bob@example.com/",
        "/dav/calendars/alice@example.com/%2e%2e/bob@example.com/",
        "/dav/calendars/alice@example.com/personal%2F..%2Fx/",
    ] {
        let r = t.req("PROPFIND", p, &[("depth", "0")], "").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{p}");
    }
    assert_eq!(
        t.req("PROPFIND", "/etc/passwd", &[], "").await.status,
        StatusCode::NOT_FOUND
    );
    // Bob's home and calendar are not Alice's to see.
    let _ = t
        .req_as(
            t.bob,
            "PROPFIND",
            "/dav/calendars/bob@example.com/",
            &[("depth", "1")],
            "",
        )
        .await;
    let r = t
        .req(
            "PROPFIND",
            "/dav/calendars/bob@example.com/",
            &[("depth", "1")],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let bobcal = "/dav/calendars/bob@example.com/personal/";
    let r = t.req("PROPFIND", bobcal, &[("depth", "1")], "").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = t
        .put_ics(
            &format!("{bobcal}x.ics"),
            &event("x", "20260105T100000Z", "20260105T110000Z", ""),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        t.req(
            "MKCALENDAR",
            "/dav/calendars/bob@example.com/evil/",
            &[],
            ""
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );

    // With a read grant Alice sees it (in her home listing too) but cannot write.
    let id = t.coll_id(t.bob, CollectionKind::Calendar, "personal").await;
    t.store.grant(id, t.alice, Rights::Read);
    let privs = r#"<d:propfind xmlns:d="DAV:"><d:prop><d:current-user-privilege-set/></d:prop></d:propfind>"#;
    let r = t.req("PROPFIND", bobcal, &[("depth", "0")], privs).await;
    assert_eq!(r.status, StatusCode::MULTI_STATUS);
    assert!(
        r.body.contains("<d:read/>") && !r.body.contains("<d:write/>"),
        "{}",
        r.body
    );
    let r = t
        .req(
            "PROPFIND",
            "/dav/calendars/alice@example.com/",
            &[("depth", "1")],
            "",
        )
        .await;
    assert!(r.body.contains(bobcal), "{}", r.body);
    let r = t
        .put_ics(
            &format!("{bobcal}x.ics"),
            &event("x", "20260105T100000Z", "20260105T110000Z", ""),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    t.store.grant(id, t.alice, Rights::ReadWrite);
    let r = t
        .put_ics(
            &format!("{bobcal}x.ics"),
            &event("x", "20260105T100000Z", "20260105T110000Z", ""),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    // The owner sees the ACL with the grant.
    let body = r#"<d:propfind xmlns:d="DAV:"><d:prop><d:acl/><d:owner/></d:prop></d:propfind>"#;
    let r = t
        .req_as(t.bob, "PROPFIND", bobcal, &[("depth", "0")], body)
        .await;
    assert!(
        r.body.contains("/dav/principals/users/alice@example.com/"),
        "{}",
        r.body
    );
}

fn sync_body(token: &str, limit: Option<usize>) -> String {
    let limit = limit
        .map(|l| format!("<d:limit><d:nresults>{l}</d:nresults></d:limit>"))
        .unwrap_or_default();
    format!(
        r#"<d:sync-collection xmlns:d="DAV:"><d:sync-token>{token}</d:sync-token><d:sync-level>1</d:sync-level>{limit}<d:prop><d:getetag/></d:prop></d:sync-collection>"#
    )
}

fn token_of(body: &str) -> String {
    let el = outpost_xml::parse(body.as_bytes(), &Default::default()).unwrap();
    el.child("DAV:", "sync-token").unwrap().text.clone()
}

#[tokio::test]
async fn sync_collection_with_tombstones_paging_and_floor() {
    let t = setup();
    for i in 0..5 {
        let r = t
            .put_ics(
                &format!("{CAL}e{i}.ics"),
                &event(&format!("e{i}"), "20260105T100000Z", "20260105T110000Z", ""),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let r = t
        .req("REPORT", CAL, &[("depth", "0")], &sync_body("", None))
        .await;
    assert_eq!(r.status, StatusCode::MULTI_STATUS);
    assert_eq!(r.body.matches("<d:getetag>").count(), 5, "{}", r.body);
    let t1 = token_of(&r.body);

    // Nothing changed: empty answer, same token.
    let r = t.req("REPORT", CAL, &[], &sync_body(&t1, None)).await;
    assert_eq!(r.body.matches("<d:response>").count(), 0);
    assert_eq!(token_of(&r.body), t1);

    // One change and one removal.
    t.put_ics(
        &format!("{CAL}e1.ics"),
        &event("e1", "20260106T100000Z", "20260106T110000Z", ""),
    )
    .await;
    assert_eq!(
        t.req("DELETE", &format!("{CAL}e2.ics"), &[], "")
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let r = t.req("REPORT", CAL, &[], &sync_body(&t1, None)).await;
    assert!(
        r.body.contains(&format!("{CAL}e1.ics")) && r.body.contains("<d:getetag>"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains(&format!(
            "<d:href>{CAL}e2.ics</d:href><d:status>HTTP/1.1 404 Not Found</d:status>"
        )),
        "{}",
        r.body
    );
    let t2 = token_of(&r.body);
    assert_ne!(t1, t2);

    // Paging: 2 at a time, 507 for the request-URI, the token goes on.
    let mut token = String::new();
    let mut seen = 0;
    for round in 0..10 {
        let r = t.req("REPORT", CAL, &[], &sync_body(&token, Some(2))).await;
        let n = r.body.matches("<d:getetag>").count();
        seen += n;
        token = token_of(&r.body);
        if !r.body.contains("507") {
            assert!(n <= 2);
            break;
        }
        assert!(
            r.body.contains("number-of-matches-within-limits"),
            "{}",
            r.body
        );
        assert_eq!(n, 2, "round {round}");
    }
    assert_eq!(seen, 4, "four live events in all");

    // Bad tokens and tokens below the floor.
    let r = t.req("REPORT", CAL, &[], &sync_body("garbage", None)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("valid-sync-token"));
    let id = t
        .coll_id(t.alice, CollectionKind::Calendar, "personal")
        .await;
    t.store.prune_journal(id);
    let r = t.req("REPORT", CAL, &[], &sync_body(&t1, None)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("valid-sync-token"), "{}", r.body);
}

fn query(filter: &str) -> String {
    format!(
        r#"<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><d:getetag/></d:prop><c:filter>{filter}</c:filter></c:calendar-query>"#
    )
}

#[tokio::test]
async fn calendar_query_time_range_with_recurrence() {
    let t = setup();
    // Weekly from Mon 5 Jan 2026, the 12 Jan instance excluded, the 19 Jan
    // instance moved to 21 Jan (matched by its own DTSTART).
    let weekly = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:w\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260105T100000Z\r\nDTEND:20260105T110000Z\r\nRRULE:FREQ=WEEKLY;COUNT=4\r\nEXDATE:20260112T100000Z\r\nSUMMARY:Weekly\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:w\r\nDTSTAMP:20260101T000000Z\r\nRECURRENCE-ID:20260119T100000Z\r\nDTSTART:20260121T100000Z\r\nDTEND:20260121T110000Z\r\nSUMMARY:Moved\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    assert_eq!(
        t.put_ics(&format!("{CAL}w.ics"), weekly).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        t.put_ics(
            &format!("{CAL}o.ics"),
            &event("o", "20260301T100000Z", "20260301T110000Z", "")
        )
        .await
        .status,
        StatusCode::CREATED
    );
    let tr = |s: &str, e: &str| {
        query(&format!(
            r#"<c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT"><c:time-range start="{s}" end="{e}"/></c:comp-filter></c:comp-filter>"#
        ))
    };
    let hits = |body: &str| (body.contains("w.ics"), body.contains("o.ics"));

    let r = t
        .req(
            "REPORT",
            CAL,
            &[("depth", "1")],
            &tr("20260112T000000Z", "20260113T000000Z"),
        )
        .await;
    assert_eq!(r.status, StatusCode::MULTI_STATUS);
    assert_eq!(
        hits(&r.body),
        (false, false),
        "EXDATE'd instance: {}",
        r.body
    );
    let r = t
        .req(
            "REPORT",
            CAL,
            &[("depth", "1")],
            &tr("20260119T000000Z", "20260120T000000Z"),
        )
        .await;
    assert_eq!(
        hits(&r.body),
        (false, false),
        "the moved instance is not at its RECURRENCE-ID: {}",
        r.body
    );
    let r = t
        .req(
            "REPORT",
            CAL,
            &[("depth", "1")],
            &tr("20260121T000000Z", "20260122T000000Z"),
        )
        .await;
    assert_eq!(hits(&r.body), (true, false), "{}", r.body);
    let r = t
        .req(
            "REPORT",
            CAL,
            &[("depth", "1")],
            &tr("20260126T000000Z", "20260127T000000Z"),
        )
        .await;
    assert_eq!(
        hits(&r.body),
        (true, false),
        "the fourth instance: {}",
        r.body
    );
    let r = t
        .req(
            "REPORT",
            CAL,
            &[("depth", "1")],
            &tr("20260201T000000Z", "20260401T000000Z"),
        )
        .await;
    assert_eq!(hits(&r.body), (false, true), "{}", r.body);

    // Server-side expansion of January: three instances (12 Jan excluded),
    // the moved one with its own times and RECURRENCE-ID.
    let q = r#"<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><c:calendar-data><c:expand start="20260101T000000Z" end="20260201T000000Z"/></c:calendar-data></d:prop><c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT"><c:time-range start="20260101T000000Z" end="20260201T000000Z"/></c:comp-filter></c:comp-filter></c:filter></c:calendar-query>"#;
    let r = t.req("REPORT", CAL, &[("depth", "1")], q).await;
    assert_eq!(r.body.matches("BEGIN:VEVENT").count(), 3, "{}", r.body);
    assert!(
        !r.body.contains("RRULE") && !r.body.contains("EXDATE"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("DTSTART:20260105T100000Z")
            && r.body.contains("RECURRENCE-ID:20260105T100000Z"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("DTSTART:20260121T100000Z")
            && r.body.contains("RECURRENCE-ID:20260119T100000Z"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("DTSTART:20260126T100000Z") && !r.body.contains("DTSTART:20260112"),
        "{}",
        r.body
    );

    // limit-recurrence-set: the master always, the override only when its
    // instance is in the range.
    let lrs = |s: &str, e: &str| {
        format!(
            r#"<c:calendar-multiget xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><c:calendar-data><c:limit-recurrence-set start="{s}" end="{e}"/></c:calendar-data></d:prop><d:href>{CAL}w.ics</d:href></c:calendar-multiget>"#
        )
    };
    let r = t
        .req(
            "REPORT",
            CAL,
            &[],
            &lrs("20260101T000000Z", "20260110T000000Z"),
        )
        .await;
    assert!(
        r.body.contains("RRULE") && !r.body.contains("SUMMARY:Moved"),
        "{}",
        r.body
    );
    let r = t
        .req(
            "REPORT",
            CAL,
            &[],
            &lrs("20260120T000000Z", "20260122T000000Z"),
        )
        .await;
    assert!(
        r.body.contains("RRULE") && r.body.contains("SUMMARY:Moved"),
        "{}",
        r.body
    );

    // Text match on SUMMARY, and is-not-defined.
    let q = query(
        r#"<c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT"><c:prop-filter name="SUMMARY"><c:text-match collation="i;ascii-casemap">MOVED</c:text-match></c:prop-filter></c:comp-filter></c:comp-filter>"#,
    );
    let r = t.req("REPORT", CAL, &[("depth", "1")], &q).await;
    assert_eq!(hits(&r.body), (true, false), "{}", r.body);
    let q = query(
        r#"<c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT"><c:prop-filter name="RRULE"><c:is-not-defined/></c:prop-filter></c:comp-filter></c:comp-filter>"#,
    );
    let r = t.req("REPORT", CAL, &[("depth", "1")], &q).await;
    // w.ics has one VEVENT without RRULE (the override), so both match.
    assert_eq!(hits(&r.body), (true, true), "{}", r.body);
    let q =
        query(r#"<c:comp-filter name="VCALENDAR"><c:comp-filter name="VTODO"/></c:comp-filter>"#);
    let r = t.req("REPORT", CAL, &[("depth", "1")], &q).await;
    assert_eq!(hits(&r.body), (false, false), "{}", r.body);

    // calendar-data in a query answer.
    let q = r#"<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><c:calendar-data/></d:prop><c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT"><c:time-range start="20260301T000000Z"/></c:comp-filter></c:comp-filter></c:filter></c:calendar-query>"#;
    let r = t.req("REPORT", CAL, &[("depth", "1")], q).await;
    assert!(r.body.contains("UID:o"), "{}", r.body);

    let r = t
        .req(
            "REPORT",
            CAL,
            &[],
            &query(r#"<c:comp-filter name="VEVENT"><c:time-range start="bad"/></c:comp-filter>"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn multiget_and_free_busy() {
    let t = setup();
    t.put_ics(
        &format!("{CAL}a.ics"),
        &event("a", "20260105T100000Z", "20260105T110000Z", ""),
    )
    .await;
    t.put_ics(
        &format!("{CAL}b.ics"),
        &event(
            "b",
            "20260105T120000Z",
            "20260105T130000Z",
            "TRANSP:TRANSPARENT\r\n",
        ),
    )
    .await;
    t.put_ics(
        &format!("{CAL}c.ics"),
        &event(
            "c",
            "20260105T140000Z",
            "20260105T150000Z",
            "STATUS:TENTATIVE\r\n",
        ),
    )
    .await;
    let body = format!(
        r#"<c:calendar-multiget xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><d:getetag/><c:calendar-data/></d:prop>
      <d:href>{CAL}a.ics</d:href><d:href>/dav/calendars/alice%40example.com/personal/b.ics</d:href><d:href>{CAL}missing.ics</d:href></c:calendar-multiget>"#
    );
    let r = t.req("REPORT", CAL, &[("depth", "1")], &body).await;
    assert_eq!(r.status, StatusCode::MULTI_STATUS);
    assert!(
        r.body.contains("UID:a") && r.body.contains("UID:b"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains(&format!(
            "<d:href>{CAL}missing.ics</d:href><d:status>HTTP/1.1 404 Not Found"
        )),
        "{}",
        r.body
    );

    let fb = r#"<c:free-busy-query xmlns:c="urn:ietf:params:xml:ns:caldav"><c:time-range start="20260105T000000Z" end="20260106T000000Z"/></c:free-busy-query>"#;
    let r = t.req("REPORT", CAL, &[("depth", "1")], fb).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body
            .contains("FREEBUSY;FBTYPE=BUSY:20260105T100000Z/20260105T110000Z"),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains("FBTYPE=BUSY-TENTATIVE:20260105T140000Z/20260105T150000Z"),
        "{}",
        r.body
    );
    assert!(
        !r.body.contains("20260105T120000Z/"),
        "transparent events are free: {}",
        r.body
    );
    // Free/busy only: bob may ask for free/busy, not read.
    let id = t
        .coll_id(t.alice, CollectionKind::Calendar, "personal")
        .await;
    t.store.grant(id, t.bob, Rights::FreeBusy);
    let r = t.req_as(t.bob, "REPORT", CAL, &[], fb.to_string()).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = t.req_as(t.bob, "REPORT", CAL, &[], body).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

const VCARD3: &str = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:c1\r\nFN:Jürgen Müller\r\nN:Müller;Jürgen;;;\r\nEMAIL;TYPE=INTERNET:jm@example.net\r\nEND:VCARD\r\n";

#[tokio::test]
async fn carddav_query_collations_and_versions() {
    let t = setup();
    let r = t
        .req(
            "PUT",
            &format!("{CARDS}c1.vcf"),
            &[("content-type", "text/vcard")],
            VCARD3,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let other = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:c2\r\nFN:Ann Other\r\nEMAIL:ann@example.org\r\nEND:VCARD\r\n";
    assert_eq!(
        t.req("PUT", &format!("{CARDS}c2.vcf"), &[], other)
            .await
            .status,
        StatusCode::CREATED
    );
    let r = t
        .req(
            "PUT",
            &format!("{CARDS}bad.vcf"),
            &[],
            "BEGIN:VCARD\r\nFN:x\r\n",
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("valid-address-data"));
    let r = t.req("PUT", &format!("{CARDS}dup.vcf"), &[], VCARD3).await;
    assert!(r.body.contains("no-uid-conflict"));

    let q = |m: &str, coll: &str, text: &str| {
        format!(
            r#"<a:addressbook-query xmlns:d="DAV:" xmlns:a="urn:ietf:params:xml:ns:carddav"><d:prop><d:getetag/></d:prop><a:filter><a:prop-filter name="FN"><a:text-match collation="{coll}" match-type="{m}">{text}</a:text-match></a:prop-filter></a:filter></a:addressbook-query>"#
        )
    };
    let r = t
        .req(
            "REPORT",
            CARDS,
            &[("depth", "1")],
            &q("contains", "i;unicode-casemap", "MÜLLER"),
        )
        .await;
    assert_eq!(r.status, StatusCode::MULTI_STATUS);
    assert!(
        r.body.contains("c1.vcf") && !r.body.contains("c2.vcf"),
        "{}",
        r.body
    );
    let r = t
        .req(
            "REPORT",
            CARDS,
            &[("depth", "1")],
            &q("contains", "i;ascii-casemap", "MÜLLER"),
        )
        .await;
    assert!(
        !r.body.contains("c1.vcf"),
        "ascii-casemap does not fold Ü: {}",
        r.body
    );
    let r = t
        .req(
            "REPORT",
            CARDS,
            &[("depth", "1")],
            &q("starts-with", "i;ascii-casemap", "ann"),
        )
        .await;
    assert!(
        r.body.contains("c2.vcf") && !r.body.contains("c1.vcf"),
        "{}",
        r.body
    );
    let r = t
        .req(
            "REPORT",
            CARDS,
            &[("depth", "1")],
            &q("equals", "i;nonsense", "x"),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Email search and a limit.
    let eq = r#"<a:addressbook-query xmlns:d="DAV:" xmlns:a="urn:ietf:params:xml:ns:carddav"><d:prop><d:getetag/></d:prop><a:filter><a:prop-filter name="EMAIL"><a:text-match>example</a:text-match></a:prop-filter></a:filter><a:limit><a:nresults>1</a:nresults></a:limit></a:addressbook-query>"#;
    let r = t.req("REPORT", CARDS, &[("depth", "1")], eq).await;
    assert_eq!(r.body.matches("<d:getetag>").count(), 1, "{}", r.body);
    assert!(
        r.body.contains("507") && r.body.contains("number-of-matches-within-limits"),
        "{}",
        r.body
    );

    // vCard 4.0 by content negotiation, 3.0 as stored.
    let r = t
        .req(
            "GET",
            &format!("{CARDS}c1.vcf"),
            &[("accept", "text/vcard; version=4.0")],
            "",
        )
        .await;
    assert!(r.body.contains("VERSION:4.0"), "{}", r.body);
    assert!(r.body.contains("Müller"));
    let r = t.req("GET", &format!("{CARDS}c1.vcf"), &[], "").await;
    assert_eq!(r.body, VCARD3);
    let mg = format!(
        r#"<a:addressbook-multiget xmlns:d="DAV:" xmlns:a="urn:ietf:params:xml:ns:carddav"><d:prop><a:address-data content-type="text/vcard" version="4.0"/></d:prop><d:href>{CARDS}c1.vcf</d:href></a:addressbook-multiget>"#
    );
    let r = t.req("REPORT", CARDS, &[("depth", "1")], &mg).await;
    assert!(r.body.contains("VERSION:4.0"), "{}", r.body);
}

#[tokio::test]
async fn copy_and_move_inside_the_home() {
    let t = setup();
    let body = r#"<c:mkcalendar xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"/>"#;
    assert_eq!(
        t.req(
            "MKCALENDAR",
            "/dav/calendars/alice@example.com/work/",
            &[],
            body
        )
        .await
        .status,
        StatusCode::CREATED
    );
    t.put_ics(
        &format!("{CAL}a.ics"),
        &event("a", "20260105T100000Z", "20260105T110000Z", ""),
    )
    .await;
    let work = "/dav/calendars/alice@example.com/work/";
    let r = t
        .req(
            "COPY",
            &format!("{CAL}a.ics"),
            &[(
                "destination",
                &format!("https://mail.example.com{work}a.ics"),
            )],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = t
        .req(
            "COPY",
            &format!("{CAL}a.ics"),
            &[("destination", &format!("{work}a.ics")), ("overwrite", "F")],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    let r = t
        .req(
            "MOVE",
            &format!("{CAL}a.ics"),
            &[("destination", &format!("{CAL}renamed.ics"))],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(
        t.req("GET", &format!("{CAL}a.ics"), &[], "").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.req("GET", &format!("{CAL}renamed.ics"), &[], "")
            .await
            .status,
        StatusCode::OK
    );
    // Into another user's calendar: refused.
    let _ = t
        .req_as(
            t.bob,
            "PROPFIND",
            "/dav/calendars/bob@example.com/",
            &[("depth", "1")],
            "",
        )
        .await;
    let r = t
        .req(
            "MOVE",
            &format!("{CAL}renamed.ics"),
            &[(
                "destination",
                "/dav/calendars/bob@example.com/personal/x.ics",
            )],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = t
        .req(
            "COPY",
            &format!("{CAL}renamed.ics"),
            &[("destination", "/dav/calendars/alice@example.com/x/../y.ics")],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn quota_and_privileges() {
    let t = setup();
    t.put_ics(
        &format!("{CAL}a.ics"),
        &event("a", "20260105T100000Z", "20260105T110000Z", ""),
    )
    .await;
    let body = r#"<d:propfind xmlns:d="DAV:"><d:prop><d:quota-used-bytes/><d:quota-available-bytes/><d:current-user-privilege-set/><d:supported-report-set/></d:prop></d:propfind>"#;
    let r = t.req("PROPFIND", CAL, &[("depth", "0")], body).await;
    assert!(!r.body.contains("<d:quota-used-bytes>0<"), "{}", r.body);
    assert!(r.body.contains("<d:quota-available-bytes>"), "{}", r.body);
    assert!(
        r.body.contains("<d:write-properties/>") && r.body.contains("sync-collection"),
        "{}",
        r.body
    );
    let r = t
        .req_as(
            t.bob,
            "PROPFIND",
            "/dav/calendars/bob@example.com/personal/",
            &[("depth", "0")],
            body.to_string(),
        )
        .await;
    assert!(
        !r.body.contains("quota-available-bytes>"),
        "no limit for bob: {}",
        r.body
    );
    // Over quota: 507 with quota-not-exceeded.
    let big = event(
        "q",
        "20260105T100000Z",
        "20260105T110000Z",
        &format!("DESCRIPTION:{}\r\n", "y".repeat(1 << 20)),
    );
    let t2 = setup_with(DavConfig {
        max_resource_size: 4 << 20,
        ..DavConfig::default()
    });
    let r = t2.put_ics(&format!("{CAL}q.ics"), &big).await;
    assert_eq!(r.status, StatusCode::INSUFFICIENT_STORAGE, "{}", r.body);
    assert!(r.body.contains("quota-not-exceeded"));
}

#[tokio::test]
async fn requests_without_a_user_are_refused() {
    let t = setup();
    let req = Request::builder()
        .method("PROPFIND")
        .uri("/dav/")
        .body(Body::empty())
        .unwrap();
    let resp = t.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn floating_times_read_in_the_calendar_timezone() {
    let t = setup();
    let tz = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VTIMEZONE\r\nTZID:America/New_York\r\nBEGIN:STANDARD\r\nDTSTART:19701101T020000\r\nTZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\nRRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU\r\nEND:STANDARD\r\nBEGIN:DAYLIGHT\r\nDTSTART:19700308T020000\r\nTZOFFSETFROM:-0500\r\nTZOFFSETTO:-0400\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\nEND:VCALENDAR\r\n";
    let body = format!(
        r#"<c:mkcalendar xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:set><d:prop><c:calendar-timezone>{tz}</c:calendar-timezone></d:prop></d:set></c:mkcalendar>"#
    );
    let ny = "/dav/calendars/alice@example.com/ny/";
    assert_eq!(
        t.req("MKCALENDAR", ny, &[], &body).await.status,
        StatusCode::CREATED
    );
    let c = t
        .store
        .collection(t.alice, CollectionKind::Calendar, "ny")
        .await
        .unwrap()
        .unwrap();
    assert!(
        c.timezone
            .as_deref()
            .unwrap()
            .contains("TZID:America/New_York"),
        "kept as sent"
    );
    // 23:30 floating on 5 Jan is 04:30Z on 6 Jan in New York.
    let ev = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:f\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260105T233000\r\nDTEND:20260105T234500\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    assert_eq!(
        t.put_ics(&format!("{ny}f.ics"), ev).await.status,
        StatusCode::CREATED
    );
    let tr = |s: &str, e: &str| {
        query(&format!(
            r#"<c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT"><c:time-range start="{s}" end="{e}"/></c:comp-filter></c:comp-filter>"#
        ))
    };
    let r = t
        .req(
            "REPORT",
            ny,
            &[("depth", "1")],
            &tr("20260106T040000Z", "20260106T050000Z"),
        )
        .await;
    assert!(r.body.contains("f.ics"), "{}", r.body);
    let r = t
        .req(
            "REPORT",
            ny,
            &[("depth", "1")],
            &tr("20260105T230000Z", "20260106T000000Z"),
        )
        .await;
    assert!(!r.body.contains("f.ics"), "not at 23:30Z: {}", r.body);
}

#[tokio::test]
async fn etag_lists_weak_tags_and_other_resources() {
    let t = setup();
    let path = format!("{CAL}l.ics");
    let r = t
        .put_ics(
            &path,
            &event("l", "20260105T100000Z", "20260105T110000Z", ""),
        )
        .await;
    let etag = r.headers["etag"].to_str().unwrap().to_string();
    let ev2 = event("l", "20260105T120000Z", "20260105T130000Z", "");
    // A weak tag never matches; a list with the right tag does.
    let weak = format!("W/{etag}");
    let r = t.req("PUT", &path, &[("if-match", &weak)], &ev2).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    let list = format!("\"other\", {etag}");
    let r = t.req("PUT", &path, &[("if-match", &list)], &ev2).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let etag2 = r.headers["etag"].to_str().unwrap().to_string();
    // If-None-Match with the current tag refuses; with another it replaces.
    let r = t
        .req("PUT", &path, &[("if-none-match", &etag2)], &ev2)
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    let r = t
        .req("PUT", &path, &[("if-none-match", "\"x\"")], &ev2)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    // If-Match: * on a missing resource.
    let r = t
        .req("PUT", &format!("{CAL}none.ics"), &[("if-match", "*")], &ev2)
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);

    // PROPFIND of an object with calendar-data; GET of a collection; an
    // unknown method; deleting a collection.
    let body = r#"<d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><d:getetag/><c:calendar-data/></d:prop></d:propfind>"#;
    let r = t.req("PROPFIND", &path, &[("depth", "0")], body).await;
    assert!(
        r.body.contains("UID:l") && r.body.contains("<d:getetag>"),
        "{}",
        r.body
    );
    assert_eq!(
        t.req("GET", CAL, &[], "").await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        t.req("PATCH", &path, &[], "").await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    let id = t
        .coll_id(t.alice, CollectionKind::Calendar, "personal")
        .await;
    t.store.set_read_only(id);
    let r = t
        .put_ics(
            &format!("{CAL}ro.ics"),
            &event("ro", "20260105T100000Z", "20260105T110000Z", ""),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "read-only collection (the GAL)"
    );
    assert_eq!(
        t.req("DELETE", CAL, &[], "").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        t.req("DELETE", "/dav/calendars/alice@example.com/tasks/", &[], "")
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert!(t
        .store
        .collection(t.alice, CollectionKind::Calendar, "tasks")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn an_override_with_its_own_sequence_replaces_its_instance() {
    let t = setup();
    let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:s\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260105T100000Z\r\nDTEND:20260105T110000Z\r\nRRULE:FREQ=DAILY;COUNT=3\r\nSUMMARY:Daily\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:s\r\nDTSTAMP:20260101T000000Z\r\nSEQUENCE:2\r\nRECURRENCE-ID:20260106T100000Z\r\nDTSTART:20260106T150000Z\r\nDTEND:20260106T160000Z\r\nSUMMARY:Later\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    assert_eq!(
        t.put_ics(&format!("{CAL}s.ics"), ics).await.status,
        StatusCode::CREATED
    );
    let q = r#"<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><c:calendar-data><c:expand start="20260101T000000Z" end="20260201T000000Z"/></c:calendar-data></d:prop><c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT"/></c:comp-filter></c:filter></c:calendar-query>"#;
    let r = t.req("REPORT", CAL, &[("depth", "1")], q).await;
    assert_eq!(r.body.matches("BEGIN:VEVENT").count(), 3, "{}", r.body);
    assert!(
        !r.body.contains("DTSTART:20260106T100000Z"),
        "the overridden instance is gone: {}",
        r.body
    );
    assert!(r.body.contains("DTSTART:20260106T150000Z"), "{}", r.body);
    // And a time range at the old time finds nothing.
    let q = query(
        r#"<c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT"><c:time-range start="20260106T090000Z" end="20260106T120000Z"/></c:comp-filter></c:comp-filter>"#,
    );
    let r = t.req("REPORT", CAL, &[("depth", "1")], &q).await;
    assert!(!r.body.contains("s.ics"), "{}", r.body);
}

// --- scheduling (RFC 6638) ------------------------------------------------

const INBOX: &str = "/dav/scheduling/alice@example.com/inbox/";
const OUTBOX: &str = "/dav/scheduling/alice@example.com/outbox/";

fn fb_request(organizer: &str, attendees: &[&str]) -> String {
    let mut s = String::from(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nMETHOD:REQUEST\r\nBEGIN:VFREEBUSY\r\n\
         UID:fb-1\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20300101T000000Z\r\nDTEND:20300102T000000Z\r\n",
    );
    s.push_str(&format!("ORGANIZER:mailto:{organizer}\r\n"));
    for a in attendees {
        s.push_str(&format!("ATTENDEE:mailto:{a}\r\n"));
    }
    s.push_str("END:VFREEBUSY\r\nEND:VCALENDAR\r\n");
    s
}

#[tokio::test]
async fn principal_has_schedule_urls_and_options_announce_auto_schedule() {
    let t = setup();
    let r = t.req("OPTIONS", "/dav/", &[], "").await;
    let dav = r.headers.get("dav").unwrap().to_str().unwrap();
    assert!(dav.contains("calendar-auto-schedule"), "{dav}");
    assert!(r
        .headers
        .get("allow")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("POST"));
    let r = t
        .req(
            "PROPFIND",
            "/dav/principals/users/alice@example.com/",
            &[("depth", "0")],
            r#"<d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop>
               <c:schedule-inbox-URL/><c:schedule-outbox-URL/><c:calendar-user-type/></d:prop></d:propfind>"#,
        )
        .await;
    assert_eq!(r.status, 207, "{}", r.body);
    assert!(
        r.body.contains(INBOX) && r.body.contains(OUTBOX),
        "{}",
        r.body
    );
    assert!(r.body.contains("INDIVIDUAL"), "{}", r.body);
    assert!(!r.body.contains("404"), "{}", r.body);
}

#[tokio::test]
async fn inbox_is_an_empty_schedule_inbox_naming_the_default_calendar() {
    let t = setup();
    let r = t
        .req(
            "PROPFIND",
            INBOX,
            &[("depth", "1")],
            r#"<d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop>
               <d:resourcetype/><c:schedule-default-calendar-URL/></d:prop></d:propfind>"#,
        )
        .await;
    assert_eq!(r.status, 207, "{}", r.body);
    assert!(r.body.contains("schedule-inbox"), "{}", r.body);
    assert!(
        r.body
            .contains("/dav/calendars/alice@example.com/personal/"),
        "{}",
        r.body
    );
    // Depth 1: the inbox itself, no members.
    assert_eq!(r.body.matches(INBOX).count(), 1, "{}", r.body);
    // Another user's inbox is not the caller's.
    let r = t
        .req_as(t.bob, "PROPFIND", INBOX, &[("depth", "0")], "")
        .await;
    assert_eq!(r.status, 403);
    // Nothing can be stored in it.
    let r = t
        .put_ics(
            &format!("{INBOX}x.ics"),
            "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n",
        )
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn outbox_post_answers_free_busy_of_hosted_users() {
    let t = setup();
    // Bob is busy 10:00-11:00 on 2030-01-01, plus a transparent event.
    t.req_as(
        t.bob,
        "PROPFIND",
        "/dav/calendars/bob@example.com/",
        &[("depth", "1")],
        "",
    )
    .await;
    let ev = |uid: &str, extra: &str| {
        format!(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n\
             DTSTAMP:20260101T000000Z\r\nDTSTART:20300101T100000Z\r\nDTEND:20300101T110000Z\r\n{extra}\
             SUMMARY:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        )
    };
    for (name, body) in [
        ("a.ics", ev("a", "")),
        ("b.ics", ev("b", "TRANSP:TRANSPARENT\r\n")),
    ] {
        let r = t
            .req_as(
                t.bob,
                "PUT",
                &format!("/dav/calendars/bob@example.com/personal/{name}"),
                &[("content-type", "text/calendar")],
                body,
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let ct = [("content-type", "text/calendar; charset=utf-8")];
    // Alice asks by one of her other addresses.
    let r = t
        .req(
            "POST",
            OUTBOX,
            &ct,
            &fb_request(
                "a.smith@example.com",
                &[BOB, "nobody@example.com", "x@elsewhere.net"],
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("schedule-response"), "{}", r.body);
    assert!(r.body.contains("mailto:bob@example.com"), "{}", r.body);
    assert_eq!(r.body.matches("2.0;Success").count(), 1, "{}", r.body);
    assert_eq!(r.body.matches("3.7;").count(), 2, "{}", r.body);
    assert!(
        r.body
            .contains("FREEBUSY;FBTYPE=BUSY:20300101T100000Z/20300101T110000Z"),
        "{}",
        r.body
    );
    assert_eq!(r.body.matches("FREEBUSY;").count(), 1, "{}", r.body);
    assert!(r.body.contains("METHOD:REPLY"), "{}", r.body);

    // Someone else as the organizer: organizer-allowed.
    let r = t.req("POST", OUTBOX, &ct, &fb_request(BOB, &[BOB])).await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains("organizer-allowed"), "{}", r.body);
    // Not a VFREEBUSY request, no attendee, a reversed range, not iCalendar.
    for bad in [
        fb_request(ALICE, &[BOB]).replace("METHOD:REQUEST", "METHOD:PUBLISH"),
        fb_request(ALICE, &[]),
        fb_request(ALICE, &[BOB]).replace("DTEND:20300102", "DTEND:20290102"),
        "BEGIN:VCALENDAR\r\ngarbage".to_string(),
        ev("c", "").replace("PRODID", "METHOD:REQUEST\r\nPRODID"),
    ] {
        let r = t.req("POST", OUTBOX, &ct, &bad).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert!(r.body.contains("valid-scheduling-message"), "{}", r.body);
    }
    // Too long a range.
    let long = fb_request(ALICE, &[BOB]).replace("DTEND:20300102", "DTEND:20340102");
    assert_eq!(t.req("POST", OUTBOX, &ct, &long).await.status, 403);
    // Not text/calendar.
    let r = t
        .req(
            "POST",
            OUTBOX,
            &[("content-type", "application/xml")],
            &fb_request(ALICE, &[BOB]),
        )
        .await;
    assert_eq!(r.status, 415);
    // Bob's outbox is not Alice's; the inbox takes no POST.
    let r = t
        .req(
            "POST",
            "/dav/scheduling/bob@example.com/outbox/",
            &ct,
            &fb_request(ALICE, &[BOB]),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        t.req("POST", INBOX, &ct, &fb_request(ALICE, &[BOB]))
            .await
            .status,
        405
    );
    // POST elsewhere is not allowed.
    assert_eq!(
        t.req(
            "POST",
            "/dav/calendars/alice@example.com/personal/",
            &ct,
            ""
        )
        .await
        .status,
        405
    );
}

#[tokio::test]
async fn calendars_say_they_count_for_free_busy() {
    let t = setup();
    let r = t
        .req(
            "PROPFIND",
            CAL,
            &[("depth", "0")],
            r#"<d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop>
               <c:schedule-calendar-transp/></d:prop></d:propfind>"#,
        )
        .await;
    assert_eq!(r.status, 207, "{}", r.body);
    assert!(r.body.contains("opaque"), "{}", r.body);
}
