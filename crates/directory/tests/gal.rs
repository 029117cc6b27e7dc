//! The global address list of the built-in directory, on both backends.

use outpost_directory::*;
use outpost_store::testing::TestStore;
use outpost_store::{NewPrincipal, PrincipalKind};

use outpost_testkit::both;

both!(
    search_by_name_word_and_address,
    listing_groups_and_vcards,
    attributes_update_partially,
    search_over_many_entries,
    search_by_phone_company_and_department,
    search_reads_the_term_index_only
);

async fn setup(s: &TestStore) -> Directory {
    let d = Directory::new(s.store.clone());
    s.add_domain("example.test").await.unwrap();
    d
}

fn attrs(title: &str, dept: &str) -> ContactAttrs {
    ContactAttrs {
        title: Some(title.into()),
        department: Some(dept.into()),
        ..Default::default()
    }
}

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

fn primaries(v: &[GalEntry]) -> Vec<&str> {
    v.iter().map(|e| e.primary()).collect()
}

async fn search_by_name_word_and_address(s: TestStore) {
    let d = setup(&s).await;
    let alice = user(&s, "alice@example.test", "Alice Smith").await;
    user(&s, "bob@example.test", "Bob Jones").await;
    let emile = user(&s, "ez@example.test", "Émile Zola").await;
    s.add_address(alice, "a.smith@example.test").await.unwrap();
    s.set_contact_attrs(
        alice,
        ContactAttrs {
            given_name: Some("Alicia".into()),
            surname: Some("Smith".into()),
            ..attrs("CTO", "Board")
        },
    )
    .await
    .unwrap();
    // Word of the display name, case-insensitive; given name; alias.
    for q in ["smi", "SMITH", "alicia", "a.smith@", "Alice Sm"] {
        let found = d.search_gal(q, 10).await.unwrap();
        assert_eq!(primaries(&found), ["alice@example.test"], "{q}");
    }
    let found = d.search_gal("smith", 10).await.unwrap();
    assert_eq!(
        found[0].addresses,
        ["alice@example.test", "a.smith@example.test"]
    );
    assert_eq!(found[0].attrs.title.as_deref(), Some("CTO"));
    assert_eq!(found[0].uid, format!("principal-{alice}"));
    // Unicode lower-casing on both sides.
    assert_eq!(
        primaries(&d.search_gal("ÉMI", 10).await.unwrap()),
        ["ez@example.test"]
    );
    assert!(
        d.search_gal("mile", 10).await.unwrap().is_empty(),
        "prefix, not substring"
    );
    assert!(d.search_gal("x*", 10).await.unwrap().is_empty());
    // Sorted by name, bounded by the limit; empty query lists everyone.
    assert_eq!(
        primaries(&d.search_gal("", 10).await.unwrap()),
        ["alice@example.test", "bob@example.test", "ez@example.test"]
    );
    assert_eq!(d.search_gal("", 2).await.unwrap().len(), 2);
    assert!(d.search_gal("", 0).await.unwrap().is_empty());
    // The index follows renames, removed aliases and removed principals.
    s.set_display_name(emile, "Victor Hugo".into())
        .await
        .unwrap();
    assert!(d.search_gal("zola", 10).await.unwrap().is_empty());
    assert_eq!(
        primaries(&d.search_gal("hugo", 10).await.unwrap()),
        ["ez@example.test"]
    );
    s.remove_address("a.smith@example.test").await.unwrap();
    assert!(d.search_gal("a.smith", 10).await.unwrap().is_empty());
    s.remove_principal(emile).await.unwrap();
    assert!(d.search_gal("victor", 10).await.unwrap().is_empty());
    // Mailbox owners of an LDAP source are not built-in entries.
    s.ensure_external_principal("ldap", "guid-1", PrincipalKind::User, "Alien Smith")
        .await
        .unwrap();
    assert_eq!(
        primaries(&d.search_gal("al", 10).await.unwrap()),
        ["alice@example.test"]
    );
}

async fn listing_groups_and_vcards(s: TestStore) {
    let d = setup(&s).await;
    let alice = user(&s, "alice@example.test", "Alice Smith").await;
    user(&s, "bob@example.test", "").await;
    let g = d
        .add_group("devs@example.test", "Developers")
        .await
        .unwrap();
    s.add_member(g.id, "alice@example.test").await.unwrap();
    s.add_member(g.id, "friend@outside.example").await.unwrap();
    s.set_contact_attrs(
        alice,
        ContactAttrs {
            given_name: Some("Alice".into()),
            surname: Some("Smith".into()),
            company: Some("Example; Inc.".into()),
            office: Some("B2 R101".into()),
            phone: Some("+1 555 0100".into()),
            mobile: Some("+1 555 0199".into()),
            ..attrs("CTO", "Board")
        },
    )
    .await
    .unwrap();
    let all = d.gal_entries().await.unwrap();
    // Sorted by shown name: Alice Smith, bob@ (no name), Developers.
    assert_eq!(
        primaries(&all),
        [
            "alice@example.test",
            "bob@example.test",
            "devs@example.test"
        ]
    );
    let group = &all[2];
    assert_eq!(group.kind, PrincipalKind::Group);
    assert_eq!(
        group.members,
        ["alice@example.test", "friend@outside.example"]
    );

    let card = to_vcard(&all[0]);
    assert!(card.starts_with("BEGIN:VCARD\r\nVERSION:4.0\r\n"), "{card}");
    for line in [
        &format!("UID:principal-{alice}"),
        "FN:Alice Smith",
        "N:Smith;Alice;;;",
        "EMAIL;TYPE=WORK;PREF=1:alice@example.test",
        "TITLE:CTO",
        "ORG:Example\\; Inc.;Board",
        "ADR;TYPE=WORK:;B2 R101;;;;;",
        "TEL;TYPE=WORK,VOICE:+1 555 0100",
        "TEL;TYPE=CELL:+1 555 0199",
    ] {
        assert!(card.contains(&format!("{line}\r\n")), "{line} in\n{card}");
    }
    // A round trip through calcard's parser keeps the values.
    let parsed = calcard::vcard::VCard::parse(&card).unwrap();
    let org = parsed
        .entries
        .iter()
        .find(|e| e.name == calcard::vcard::VCardProperty::Org)
        .unwrap();
    assert_eq!(org.values[0].as_text(), Some("Example; Inc."));

    let card = to_vcard(&all[1]);
    assert!(card.contains("FN:bob@example.test\r\n"), "{card}");
    let card = to_vcard(group);
    for line in [
        "KIND:group",
        "FN:Developers",
        "MEMBER:mailto:alice@example.test",
        "MEMBER:mailto:friend@outside.example",
    ] {
        assert!(card.contains(&format!("{line}\r\n")), "{line} in\n{card}");
    }
    assert!(!card.contains("\r\nN:"), "{card}");
}

async fn attributes_update_partially(s: TestStore) {
    let d = setup(&s).await;
    let alice = user(&s, "alice@example.test", "Alice").await;
    d.update_contact("alice@example.test", None, attrs("CTO", "Board"))
        .await
        .unwrap();
    d.update_contact(
        "ALICE@example.test",
        Some("Alice Smith".into()),
        ContactAttrs {
            phone: Some("+1 555".into()),
            department: Some("".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let a = s.contact_attrs(alice).await.unwrap();
    assert_eq!(a.title.as_deref(), Some("CTO"), "kept");
    assert_eq!(a.department, None, "cleared");
    assert_eq!(a.phone.as_deref(), Some("+1 555"));
    assert_eq!(
        primaries(&d.search_gal("smith", 5).await.unwrap()),
        ["alice@example.test"]
    );
    // Bad values are refused and change nothing.
    let e = d
        .update_contact("alice@example.test", None, attrs("a\r\nb", "x"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("control"), "{e}");
    assert_eq!(s.contact_attrs(alice).await.unwrap(), a);
    assert!(d
        .update_contact("nobody@example.test", None, attrs("x", "y"))
        .await
        .is_err());
}

async fn search_over_many_entries(s: TestStore) {
    let d = setup(&s).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..1100 {
        let st = s.store.clone();
        tasks.spawn(async move {
            st.create_principal(NewPrincipal {
                kind: PrincipalKind::User,
                address: format!("user{i:04}@example.test"),
                display_name: format!("Person {i:04} Number"),
                password_hash: None,
                source: "internal".into(),
                external_id: None,
                quota_bytes: 0,
            })
            .await
            .unwrap();
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let found = d.search_gal("user012", 50).await.unwrap();
    let want: Vec<String> = (120..130)
        .map(|i| format!("user{i:04}@example.test"))
        .collect();
    assert_eq!(primaries(&found), want);
    assert_eq!(d.search_gal("person", 25).await.unwrap().len(), 25);
    assert_eq!(
        d.search_gal("number", 5000).await.unwrap().len(),
        1000,
        "SEARCH_MAX"
    );
    assert_eq!(d.gal_entries().await.unwrap().len(), 1100);
    let t = std::time::Instant::now();
    for _ in 0..20 {
        d.search_gal("0149", 10).await.unwrap();
    }
    // A word prefix among 1100 entries: an index range, well under the
    // time of reading the table each time (debug build, shared machine).
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(
        primaries(&d.search_gal("0149", 10).await.unwrap()),
        ["user0149@example.test"]
    );
}

async fn search_by_phone_company_and_department(s: TestStore) {
    let d = setup(&s).await;
    let alice = user(&s, "alice@example.test", "Alice Smith").await;
    let bob = user(&s, "bob@example.test", "Bob Jones").await;
    user(&s, "carol@example.test", "Carol Brown").await;
    s.set_contact_attrs(
        alice,
        ContactAttrs {
            company: Some("Example Inc.".into()),
            office: Some("B2 R101".into()),
            phone: Some("+1 555 0100".into()),
            mobile: Some("+1 (555) 0199".into()),
            ..attrs("CTO", "Board")
        },
    )
    .await
    .unwrap();
    s.set_contact_attrs(
        bob,
        ContactAttrs {
            company: Some("Other Corp".into()),
            phone: Some("+44 20 7946 0958".into()),
            ..attrs("Engineer", "Research and Development")
        },
    )
    .await
    .unwrap();
    // Phone numbers by their start or their local part, however spaced.
    for q in [
        "+1 555 0100",
        "1555",
        "555 01",
        "5550199",
        "0100",
        "(555) 0",
    ] {
        assert_eq!(
            primaries(&d.search_gal(q, 10).await.unwrap()),
            ["alice@example.test"],
            "{q}"
        );
    }
    for q in ["+44", "20 7946", "0958"] {
        assert_eq!(
            primaries(&d.search_gal(q, 10).await.unwrap()),
            ["bob@example.test"],
            "{q}"
        );
    }
    // Both numbers start with a 5 somewhere; sorted by name.
    assert_eq!(
        primaries(&d.search_gal("5", 10).await.unwrap()),
        ["alice@example.test"]
    );
    assert!(d.search_gal("999", 10).await.unwrap().is_empty());
    // Company, department, office and title words.
    for (q, want) in [
        ("example inc", "alice@example.test"),
        ("Inc.", "alice@example.test"),
        ("board", "alice@example.test"),
        ("B2", "alice@example.test"),
        ("cto", "alice@example.test"),
        ("other corp", "bob@example.test"),
        ("research", "bob@example.test"),
        ("development", "bob@example.test"),
        ("engin", "bob@example.test"),
    ] {
        assert_eq!(
            primaries(&d.search_gal(q, 10).await.unwrap()),
            [want],
            "{q}"
        );
    }
    // A changed attribute leaves the old terms behind.
    s.set_contact_attrs(
        bob,
        ContactAttrs {
            department: Some("Sales".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(d.search_gal("research", 10).await.unwrap().is_empty());
    assert!(d.search_gal("0958", 10).await.unwrap().is_empty());
    assert_eq!(
        primaries(&d.search_gal("sales", 10).await.unwrap()),
        ["bob@example.test"]
    );
}

/// The search is a range of `directory_terms`' primary key, never a scan
/// of the terms or of every principal: the query plan says so.
async fn search_reads_the_term_index_only(s: TestStore) {
    use outpost_store::Backend;
    use sqlx::Row;
    let d = setup(&s).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..400 {
        let st = s.store.clone();
        tasks.spawn(async move {
            let id = st
                .create_principal(NewPrincipal {
                    kind: PrincipalKind::User,
                    address: format!("p{i}@example.test"),
                    display_name: format!("Person {i}"),
                    password_hash: None,
                    source: "internal".into(),
                    external_id: None,
                    quota_bytes: 0,
                })
                .await
                .unwrap()
                .id;
            st.set_contact_attrs(
                id,
                ContactAttrs {
                    phone: Some(format!("+1 555 {i:04}")),
                    company: Some(format!("Company {i}")),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    assert_eq!(
        primaries(&d.search_gal("555 0042", 10).await.unwrap()),
        ["p42@example.test"]
    );
    let q = outpost_store::SEARCH_SQL
        .replace("$1", "'internal'")
        .replace("$2", "'5550042'")
        .replace("$3", "'5550043'")
        .replace("$4", "10");
    let mut conn = s.pool().acquire().await.unwrap();
    let plan: Vec<String> = match s.backend() {
        Backend::Sqlite => sqlx::query(&format!("EXPLAIN QUERY PLAN {q}"))
            .fetch_all(&mut *conn)
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get::<String, _>(3).unwrap())
            .collect(),
        Backend::Postgres => {
            for stmt in [
                "ANALYZE directory_terms",
                "ANALYZE principals",
                "SET enable_seqscan = off",
            ] {
                sqlx::query(stmt).execute(&mut *conn).await.unwrap();
            }
            let q = q
                .replace("'5550042'", "'5550042'::bytea")
                .replace("'5550043'", "'5550043'::bytea");
            let plan = sqlx::query(&format!("EXPLAIN {q}"))
                .fetch_all(&mut *conn)
                .await
                .unwrap()
                .iter()
                .map(|r| r.try_get::<String, _>(0).unwrap())
                .collect();
            sqlx::query("RESET enable_seqscan")
                .execute(&mut *conn)
                .await
                .unwrap();
            plan
        }
    };
    let text = plan.join("\n");
    match s.backend() {
        Backend::Sqlite => {
            assert!(
                text.contains("SEARCH t USING") && text.contains("term>? AND term<?"),
                "{text}"
            );
            assert!(!text.contains("SCAN t"), "{text}");
        }
        Backend::Postgres => {
            assert!(
                text.contains("directory_terms_pkey") && text.contains("term >="),
                "{text}"
            );
            assert!(!text.contains("Seq Scan on directory_terms"), "{text}");
        }
    }
}
