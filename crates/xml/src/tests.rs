use super::*;
use proptest::prelude::*;

fn p(s: &str) -> Result<Element, XmlError> {
    parse(s.as_bytes(), &Limits::default())
}

#[test]
fn propfind_with_namespaces() {
    let el = p(r#"<?xml version="1.0"?>
        <d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">
          <d:prop><d:displayname/><c:calendar-data content-type="text/calendar"/></d:prop>
        </d:propfind>"#)
    .unwrap();
    assert!(el.is("DAV:", "propfind"));
    let prop = el.child("DAV:", "prop").unwrap();
    assert_eq!(prop.children.len(), 2);
    let cd = prop
        .child("urn:ietf:params:xml:ns:caldav", "calendar-data")
        .unwrap();
    assert_eq!(cd.attr("content-type"), Some("text/calendar"));
}

#[test]
fn namespace_uris_have_their_references_resolved() {
    // The same name whether the URI spells `&` as `&amp;` or `&#38;`, and
    // written back it reads the same again.
    let el = p(r#"<x:a xmlns:x="u&amp;v" xmlns="w&#38;z"><b x:c="1"/></x:a>"#).unwrap();
    assert!(el.is("u&v", "a"));
    let b = el.child("w&z", "b").unwrap();
    assert_eq!(b.attributes[0].0, Name::new("u&v", "c"));
    let again = parse(write(&el, &[]).as_bytes(), &Limits::default()).unwrap();
    assert_eq!(again, el);
}

#[test]
fn default_namespace_and_references() {
    let el = p(
        r#"<a xmlns="DAV:"><b>x &amp; y &#65;&#x42; &lt;&gt;&quot;&apos;</b><![CDATA[<raw>]]></a>"#,
    )
    .unwrap();
    assert!(el.is("DAV:", "a"));
    assert_eq!(el.child("DAV:", "b").unwrap().text, "x & y AB <>\"'");
    assert_eq!(el.text, "<raw>");
}

#[test]
fn billion_laughs_is_refused() {
    let bomb = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<lolz>&lol3;</lolz>"#;
    assert_eq!(p(bomb), Err(XmlError::Doctype));
}

#[test]
fn undeclared_entity_without_doctype_is_refused() {
    assert_eq!(p("<a>&lol;</a>"), Err(XmlError::Entity("lol".into())));
    assert_eq!(p(r#"<a b="&lol;"/>"#), Err(XmlError::Entity("lol".into())));
}

#[test]
fn external_entity_is_refused() {
    let xxe = r#"<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><foo>&xxe;</foo>"#;
    assert_eq!(p(xxe), Err(XmlError::Doctype));
}

#[test]
fn deep_nesting_is_refused_without_stack_overflow() {
    let mut s = String::new();
    for _ in 0..10_000 {
        s.push_str("<a>");
    }
    for _ in 0..10_000 {
        s.push_str("</a>");
    }
    assert_eq!(p(&s), Err(XmlError::TooDeep(64)));
}

#[test]
fn limits_are_enforced() {
    let limits = Limits {
        max_size: 100,
        ..Limits::default()
    };
    let big = format!("<a>{}</a>", "x".repeat(200));
    assert!(matches!(
        parse(big.as_bytes(), &limits),
        Err(XmlError::TooLarge { .. })
    ));
    let limits = Limits {
        max_elements: 3,
        ..Limits::default()
    };
    assert_eq!(
        parse(b"<a><b/><b/><b/></a>", &limits),
        Err(XmlError::TooManyElements(3))
    );
    let limits = Limits {
        max_attributes: 1,
        ..Limits::default()
    };
    assert!(matches!(
        parse(br#"<a x="1" y="2"/>"#, &limits),
        Err(XmlError::TooManyAttributes { .. })
    ));
    let limits = Limits {
        max_text: 4,
        ..Limits::default()
    };
    assert!(matches!(
        parse(b"<a>hello</a>", &limits),
        Err(XmlError::TextTooLarge { .. })
    ));
}

#[test]
fn malformed_input_is_an_error() {
    for bad in [
        "",
        "<a>",
        "<a></b>",
        "</a>",
        "<a/><b/>",
        "text",
        "<a x=1/>",
        "<p:a/>",
        "<a>&</a>",
        "<a>&#0;</a>",
        "<a>&#xD800;</a>",
    ] {
        assert!(p(bad).is_err(), "{bad:?} should be refused");
    }
    assert_eq!(
        parse(&[0xff, 0xfe], &Limits::default()),
        Err(XmlError::NotUtf8)
    );
    assert_eq!(p("<p:a/>"), Err(XmlError::UnboundPrefix("p".into())));
}

#[test]
fn writer_escapes_and_declares() {
    let el = Element::new("DAV:", "multistatus").with(
        Element::new("DAV:", "response")
            .with(Element::new("DAV:", "href").with_text("/a&b<c>"))
            .with(Element::new("http://example.com/ns", "x").with_attr("v", "\"q\"&")),
    );
    let s = write(&el, &[("DAV:", "d")]);
    assert!(s.contains("<d:multistatus xmlns:d=\"DAV:\">"), "{s}");
    assert!(s.contains("<d:href>/a&amp;b&lt;c&gt;</d:href>"), "{s}");
    assert!(s.contains("xmlns:x1=\"http://example.com/ns\""), "{s}");
    let back = p(&s).unwrap();
    assert_eq!(back, el);
}

fn arb_name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,8}"
}

fn arb_element() -> impl Strategy<Value = Element> {
    let leaf = (
        prop_oneof![
            Just("DAV:".to_string()),
            Just("urn:x".to_string()),
            Just(String::new())
        ],
        arb_name(),
        "\\PC{0,20}",
        proptest::collection::vec((arb_name(), "\\PC{0,10}"), 0..3),
    )
        .prop_map(|(ns, local, text, attrs)| {
            let mut e = Element::new(&ns, &local).with_text(text.trim().to_string());
            let mut seen = std::collections::BTreeSet::new();
            for (k, v) in attrs {
                if seen.insert(k.clone()) {
                    e = e.with_attr(&k, v);
                }
            }
            e
        });
    leaf.prop_recursive(4, 32, 4, |inner| {
        (inner.clone(), proptest::collection::vec(inner, 0..4)).prop_map(|(mut e, kids)| {
            e.children = kids;
            e.text.clear();
            e
        })
    })
}

fn clean(mut e: Element) -> Element {
    e.text = e.text.chars().filter(|c| is_xml_char(*c)).collect();
    e.attributes = e
        .attributes
        .into_iter()
        .map(|(k, v)| (k, v.chars().filter(|c| is_xml_char(*c)).collect()))
        .collect();
    e.children = e.children.into_iter().map(clean).collect();
    e
}

proptest! {
    #[test]
    fn never_panics(input in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&input, &Limits::default());
    }

    #[test]
    fn never_panics_on_xmlish(input in "[<>/a-c:=\"' &;#x0-9!\\[\\]DOCTYPE-]{0,200}") {
        let _ = parse(input.as_bytes(), &Limits::default());
    }

    #[test]
    fn write_then_parse_round_trips(el in arb_element()) {
        let s = write(&el, &[("DAV:", "d")]);
        let back = parse(s.as_bytes(), &Limits::default()).unwrap();
        prop_assert_eq!(back, clean(el));
    }
}

#[test]
fn characters_xml_cannot_hold_are_refused() {
    for doc in [
        "<a>\u{0}</a>",
        "<a b=\"\u{1}\"/>",
        "<a xmlns=\"u\u{0}\"/>",
        "<a>&#0;</a>",
        "<a>&#x1;</a>",
        "<a b=\"&#x2;\"/>",
    ] {
        assert!(
            matches!(
                parse(doc.as_bytes(), &Limits::default()),
                Err(XmlError::Malformed { .. } | XmlError::Entity(_))
            ),
            "{doc:?}"
        );
    }
    assert_eq!(
        parse(b"<a>\t&#x9;\n</a>", &Limits::default()).unwrap().text,
        "\t\t\n"
    );
}
