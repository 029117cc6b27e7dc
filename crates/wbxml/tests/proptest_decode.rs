//! Stable-toolchain twin of the WBXML `decode` fuzz target (`fuzz/`):
//! the same checks (`fuzz/check/decode.rs`) over the committed seeds,
//! mutations of them and arbitrary bytes; plus round trips from the tree
//! side: decode(encode(tree)) == tree for generated trees, and
//! from_xml(to_xml(tree)) == tree for trees the XML form can hold.

#[path = "../fuzz/check/decode.rs"]
mod check;

use std::path::PathBuf;

use outpost_wbxml::{decode, encode, from_xml, to_xml, Element, Limits, Node, Tag, PAGES};
use proptest::prelude::*;

fn seeds() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/decode");
    let mut seeds: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    seeds.sort();
    assert!(
        seeds.len() >= 20,
        "{} seeds in {}",
        seeds.len(),
        dir.display()
    );
    seeds
}

/// Every seed in every setup: limits small or default, header added or
/// not.
#[test]
fn seeds_pass_in_every_mode() {
    for (_, seed) in seeds() {
        for setup in 0..4u8 {
            let mut data = seed.clone();
            data[0] = (seed[0] & !0x03) | setup;
            let _ = check::decode(&data);
        }
    }
}

/// The seeds reach what they are named for, so the checks really run.
#[test]
fn seeds_decode_as_named() {
    let seeds = seeds();
    let get = |n: &str| &seeds.iter().find(|(name, _)| name == n).unwrap().1;
    for good in [
        "spec_contact",
        "ping",
        "opaque",
        "conversation",
        "find",
        "libwbxml_foldersync",
        "libwbxml_provision",
        "libwbxml_settings_oof",
    ] {
        let o = check::decode(get(good));
        assert!(o.decoded && o.xml_round_trip, "{good}: {o:?}");
    }
    let mixed = check::decode(get("mixed"));
    assert!(mixed.decoded && !mixed.xml_round_trip);
    for bad in [
        "deep_small",
        "many_small",
        "long_string_small",
        "unknown_page",
        "unknown_token",
        "attributes",
        "str_t",
        "entity",
        "opaque_overflow",
        "mb_too_long",
        "truncated",
        "second_root",
        "not_utf8",
    ] {
        assert!(!check::decode(get(bad)).decoded, "{bad}");
    }
}

fn tag() -> impl Strategy<Value = Tag> {
    (0..PAGES.len(), any::<prop::sample::Index>()).prop_map(|(p, i)| {
        let page = &PAGES[p];
        let (token, _) = page.tags[i.index(page.tags.len())];
        Tag::new(page.number, token).unwrap()
    })
}

fn content() -> impl Strategy<Value = Node> {
    prop_oneof![
        "[^\u{0}]{0,12}".prop_map(Node::Text),
        proptest::collection::vec(any::<u8>(), 0..24).prop_map(Node::Opaque),
    ]
}

/// Any tree: elements, text and opaque data in any order.
fn tree() -> impl Strategy<Value = Element> {
    let leaf = (tag(), proptest::collection::vec(content(), 0..3))
        .prop_map(|(tag, children)| Element { tag, children });
    leaf.prop_recursive(6, 64, 4, |inner| {
        (
            tag(),
            proptest::collection::vec(prop_oneof![inner.prop_map(Node::Element), content()], 0..5),
        )
            .prop_map(|(tag, children)| Element { tag, children })
    })
}

/// A tree the XML form holds exactly: text only in text tags, bytes only
/// in binary tags, no mixed content.
fn xml_tree() -> impl Strategy<Value = Element> {
    let leaf = (
        tag(),
        "[a-zA-Z0-9 &<>\"'\t\n\r\u{e9}\u{4e2d}\u{1F600}]{0,16}",
        proptest::collection::vec(any::<u8>(), 0..24),
    )
        .prop_map(|(tag, text, bytes)| {
            let mut el = Element::new(tag);
            if tag.is_binary() {
                if !bytes.is_empty() {
                    el.children.push(Node::Opaque(bytes));
                }
            } else if !text.is_empty() {
                el.children.push(Node::Text(text));
            }
            el
        });
    leaf.prop_recursive(6, 64, 4, |inner| {
        (tag(), proptest::collection::vec(inner, 0..5)).prop_map(|(tag, children)| Element {
            tag,
            children: children.into_iter().map(Node::Element).collect(),
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = check::decode(&data);
    }

    #[test]
    fn mutated_seeds(i in any::<prop::sample::Index>(), edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let seeds = seeds();
        let mut data = seeds[i.index(seeds.len())].1.clone();
        for (at, b) in edits {
            let n = at.index(data.len());
            data[n] = b;
        }
        let _ = check::decode(&data);
    }

    #[test]
    fn truncated_seeds(i in any::<prop::sample::Index>(), cut in any::<prop::sample::Index>()) {
        let seeds = seeds();
        let data = &seeds[i.index(seeds.len())].1;
        let _ = check::decode(&data[..cut.index(data.len()).max(1)]);
    }

    #[test]
    fn encode_then_decode(tree in tree()) {
        let bytes = encode(&tree);
        prop_assert_eq!(decode(&bytes, &Limits::default()), Ok(tree.clone()));
        let mut data = vec![0x00];
        data.extend_from_slice(&bytes);
        let outcome = check::decode(&data);
        prop_assert!(outcome.decoded);
    }

    #[test]
    fn xml_then_back(tree in xml_tree()) {
        let xml = to_xml(&tree);
        prop_assert_eq!(from_xml(xml.as_bytes(), &Limits::default()), Ok(tree.clone()));
        let mut data = vec![0x00];
        data.extend_from_slice(&encode(&tree));
        let outcome = check::decode(&data);
        prop_assert!(outcome.decoded && outcome.xml_round_trip);
    }
}
