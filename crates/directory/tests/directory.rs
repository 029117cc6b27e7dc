use outpost_directory::*;
use outpost_store::testing::{self, TestStore};

use outpost_testkit::both;

both!(
    nested_group_loop_expands_once,
    login_by_alias,
    sender_check,
    unknown_and_catchall,
    admin_errors_say_what_to_do,
    cached_login_ends_when_password_changes_elsewhere
);

async fn setup(s: &TestStore) -> Directory {
    let d = Directory::new(s.store.clone());
    s.add_domain("example.test").await.unwrap();
    d
}

async fn nested_group_loop_expands_once(s: TestStore) {
    let d = setup(&s).await;
    let a = d
        .add_user("a@example.test", "A", "password-a")
        .await
        .unwrap();
    let b = d
        .add_user("b@example.test", "B", "password-b")
        .await
        .unwrap();
    let g1 = d.add_group("team@example.test", "Team").await.unwrap();
    let g2 = d.add_group("all@example.test", "All").await.unwrap();
    s.add_member(g1.id, "a@example.test").await.unwrap();
    s.add_member(g1.id, "all@example.test").await.unwrap(); // loop: team -> all -> team
    s.add_member(g2.id, "team@example.test").await.unwrap();
    s.add_member(g2.id, "b@example.test").await.unwrap();
    s.add_member(g2.id, "a@example.test").await.unwrap(); // a twice
    s.add_member(g2.id, "friend@outside.example").await.unwrap();
    let Lookup::Local(r) = d.resolve("team@example.test").await.unwrap() else {
        panic!()
    };
    let mut ids: Vec<i64> = r.users.iter().map(|u| u.principal_id).collect();
    ids.sort();
    assert_eq!(ids, vec![a.id, b.id]);
    assert_eq!(r.external, vec!["friend@outside.example".to_string()]);
}

async fn login_by_alias(s: TestStore) {
    let d = setup(&s).await;
    let a = d
        .add_user("alice@example.test", "Alice", "correct horse")
        .await
        .unwrap();
    d.add_alias("ali@example.test", "alice@example.test")
        .await
        .unwrap();
    assert_eq!(
        d.authenticate("alice@example.test", "correct horse")
            .await
            .unwrap()
            .unwrap()
            .id,
        a.id
    );
    assert_eq!(
        d.authenticate("ALI@example.test", "correct horse")
            .await
            .unwrap()
            .unwrap()
            .id,
        a.id
    );
    assert!(d
        .authenticate("alice@example.test", "wrong horse")
        .await
        .unwrap()
        .is_none());
    assert!(d
        .authenticate("nobody@example.test", "correct horse")
        .await
        .unwrap()
        .is_none());
    d.set_password("ali@example.test", "battery staple")
        .await
        .unwrap();
    assert!(d
        .authenticate("alice@example.test", "correct horse")
        .await
        .unwrap()
        .is_none());
    assert!(d
        .authenticate("alice@example.test", "battery staple")
        .await
        .unwrap()
        .is_some());
    s.set_disabled(a.id, true).await.unwrap();
    assert!(d
        .authenticate("alice@example.test", "battery staple")
        .await
        .unwrap()
        .is_none());
}

async fn sender_check(s: TestStore) {
    let d = setup(&s).await;
    let a = d
        .add_user("a@example.test", "A", "password-a")
        .await
        .unwrap();
    d.add_user("b@example.test", "B", "password-b")
        .await
        .unwrap();
    d.add_alias("sales@example.test", "a@example.test")
        .await
        .unwrap();
    let g = d.add_group("team@example.test", "Team").await.unwrap();
    s.add_member(g.id, "a@example.test").await.unwrap();
    assert!(d.may_send_as(a.id, "A@example.test").await.unwrap());
    assert!(d.may_send_as(a.id, "sales@example.test").await.unwrap());
    assert!(d.may_send_as(a.id, "team@example.test").await.unwrap());
    assert!(!d.may_send_as(a.id, "b@example.test").await.unwrap());
    assert!(!d.may_send_as(a.id, "x@elsewhere.example").await.unwrap());
}

async fn unknown_and_catchall(s: TestStore) {
    let d = setup(&s).await;
    let a = d
        .add_user("a@example.test", "A", "password-a")
        .await
        .unwrap();
    assert_eq!(d.resolve("zz@example.test").await.unwrap(), Lookup::Unknown);
    assert_eq!(
        d.resolve("x@elsewhere.example").await.unwrap(),
        Lookup::NotLocal
    );
    let Lookup::Local(r) = d.resolve("a+news@example.test").await.unwrap() else {
        panic!("subaddress")
    };
    assert_eq!(r.users[0].principal_id, a.id);
    s.set_catchall("example.test", Some("a@example.test".into()))
        .await
        .unwrap();
    let Lookup::Local(r) = d.resolve("zz@example.test").await.unwrap() else {
        panic!("catch-all")
    };
    assert_eq!(r.users[0].principal_id, a.id);
}

async fn admin_errors_say_what_to_do(s: TestStore) {
    let d = setup(&s).await;
    let e = d
        .add_user("bob@unknown.test", "Bob", "password-b")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown.test is not a hosted domain")
            && e.contains("outpost domain add unknown.test"),
        "{e}"
    );
    let e = d
        .add_user("bob@example.test", "Bob", "short")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("at least 8"), "{e}");
    d.add_user("bob@example.test", "Bob", "password-b")
        .await
        .unwrap();
    let e = d
        .add_user("bob@example.test", "Bob", "password-b")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("already exists"), "{e}");
    let e = d
        .add_alias("x@example.test", "nobody@example.test")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("nobody@example.test"), "{e}");
}

#[test]
fn hashes_are_argon2id() {
    let h = hash_password("secret password").unwrap();
    assert!(h.starts_with("$argon2id$"));
    assert!(verify_password("secret password", &h));
    assert!(!verify_password("other", &h));
    let _ = testing::pg_base();
}

/// The login cache of a running server must not keep an old password alive
/// after another process (the CLI, another node) changed it.
async fn cached_login_ends_when_password_changes_elsewhere(s: TestStore) {
    let server = setup(&s).await;
    let cli = Directory::new(s.store.clone());
    server
        .add_user("u@example.test", "U", "old-password")
        .await
        .unwrap();
    cli.add_alias("alias@example.test", "u@example.test")
        .await
        .unwrap();
    assert!(server
        .authenticate("u@example.test", "old-password")
        .await
        .unwrap()
        .is_some());
    assert!(server
        .authenticate("alias@example.test", "old-password")
        .await
        .unwrap()
        .is_some());
    cli.set_password("u@example.test", "new-password")
        .await
        .unwrap();
    assert!(server
        .authenticate("u@example.test", "old-password")
        .await
        .unwrap()
        .is_none());
    assert!(server
        .authenticate("u@example.test", "new-password")
        .await
        .unwrap()
        .is_some());
    assert!(server
        .authenticate("alias@example.test", "new-password")
        .await
        .unwrap()
        .is_some());
    s.store.remove_address("alias@example.test").await.unwrap();
    assert!(server
        .authenticate("alias@example.test", "new-password")
        .await
        .unwrap()
        .is_none());
}
