//! The GAL refresh: the domain's GAL address book follows the built-in
//! directory, writing only what changed, on both backends.

use outpost_directory::gal_sync::gal_resource_name;
use outpost_directory::*;
use outpost_store::testing::TestStore;
use outpost_store::{NewPrincipal, PrincipalKind, Since};

use outpost_testkit::both;

both!(
    refresh_fills_and_applies_only_the_difference,
    domains_get_their_own_entries,
    directory_version_moves_with_changes
);

async fn user(s: &TestStore, address: &str, name: &str) -> i64 {
    s.create_principal(NewPrincipal {
        kind: PrincipalKind::User,
        address: address.into(),
        display_name: name.into(),
        password_hash: None,
        source: "internal".into(),
        external_id: None,
        quota_bytes: 0,
    })
    .await
    .unwrap()
    .id
}

async fn refresh_fills_and_applies_only_the_difference(s: TestStore) {
    let d = Directory::new(s.store.clone());
    s.add_domain("example.test").await.unwrap();
    let alice = user(&s, "alice@example.test", "Alice Smith").await;
    let bob = user(&s, "bob@example.test", "Bob Jones").await;
    let first = refresh_gal(&d).await.unwrap();
    assert_eq!((first.added, first.changed, first.removed), (2, 0, 0));
    let gal = s.gal_address_book("example.test").await.unwrap();
    let objs = s.groupware_objects(gal.id).await.unwrap();
    let mut names: Vec<String> = objs.iter().map(|o| o.name.clone()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            format!("principal-{alice}.vcf"),
            format!("principal-{bob}.vcf")
        ]
    );
    let card = s
        .groupware_object(gal.id, &format!("principal-{alice}.vcf"))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(card.data).unwrap();
    assert!(text.contains("FN:Alice Smith"), "{text}");
    assert!(text.contains("alice@example.test"), "{text}");

    // Nothing changed: nothing written, the collection's modseq stays.
    let ctag = s.gal_address_book("example.test").await.unwrap().ctag;
    let again = refresh_gal(&d).await.unwrap();
    assert_eq!(
        (again.added, again.changed, again.removed, again.unchanged),
        (0, 0, 0, 2)
    );
    assert_eq!(s.gal_address_book("example.test").await.unwrap().ctag, ctag);

    // One new user, one changed, one removed: the journal after the last
    // token holds exactly those three.
    let carol = user(&s, "carol@example.test", "Carol King").await;
    d.update_contact(
        "alice@example.test",
        None,
        ContactAttrs {
            title: Some("CTO".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    s.remove_principal(bob).await.unwrap();
    let third = refresh_gal(&d).await.unwrap();
    assert_eq!(
        (third.added, third.changed, third.removed, third.unchanged),
        (1, 1, 1, 0)
    );
    let Since::Changes(c) = s.journal_since(gal.id, ctag).await.unwrap() else {
        panic!("token too old")
    };
    assert_eq!(c.added.len(), 1);
    assert_eq!(c.changed.len(), 1);
    assert_eq!(c.removed.len(), 1);
    assert_eq!(
        c.removed[0].name.as_deref(),
        Some(format!("principal-{bob}.vcf").as_str())
    );
    let alice_card = s
        .groupware_object(gal.id, &format!("principal-{alice}.vcf"))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8(alice_card.data)
        .unwrap()
        .contains("TITLE:CTO"));
    assert!(s
        .groupware_object(gal.id, &format!("principal-{carol}.vcf"))
        .await
        .unwrap()
        .is_some());
    // The GAL is searchable like any address book.
    let hits = s.search_contacts(&[gal.id], "king", 10).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].name, format!("principal-{carol}.vcf"));
}

async fn domains_get_their_own_entries(s: TestStore) {
    let d = Directory::new(s.store.clone());
    s.add_domain("one.test").await.unwrap();
    s.add_domain("two.test").await.unwrap();
    user(&s, "ann@one.test", "Ann").await;
    let tom = user(&s, "tom@two.test", "Tom").await;
    // An alias in the other domain does not move Tom.
    s.add_address(tom, "tom@one.test").await.unwrap();
    let r = refresh_gal(&d).await.unwrap();
    assert_eq!((r.domains, r.added), (2, 2));
    let one = s.gal_address_book("one.test").await.unwrap();
    let two = s.gal_address_book("two.test").await.unwrap();
    assert_ne!(one.id, two.id);
    assert_eq!(s.groupware_objects(one.id).await.unwrap().len(), 1);
    let in_two = s.groupware_objects(two.id).await.unwrap();
    assert_eq!(in_two.len(), 1);
    assert_eq!(in_two[0].name, format!("principal-{tom}.vcf"));
    let e = d.search_gal("tom", 10).await.unwrap();
    assert_eq!(gal_resource_name(&e[0]), in_two[0].name);
}

async fn directory_version_moves_with_changes(s: TestStore) {
    let d = Directory::new(s.store.clone());
    s.add_domain("example.test").await.unwrap();
    let v0 = s.directory_version().await.unwrap();
    let g = d.add_group("team@example.test", "Team").await.unwrap();
    let v1 = s.directory_version().await.unwrap();
    assert!(v1 > v0);
    s.add_member(g.id, "x@example.test").await.unwrap();
    let v2 = s.directory_version().await.unwrap();
    assert!(v2 > v1);
    s.remove_principal(g.id).await.unwrap();
    assert!(s.directory_version().await.unwrap() > v2);
}
