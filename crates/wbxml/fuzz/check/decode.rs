//! What the WBXML `decode` fuzz target checks, kept apart from libFuzzer
//! so that `tests/proptest_decode.rs` runs the same code on stable Rust
//! (both include this file with `#[path]`).
//!
//! The first input byte chooses the setup; the rest is the document:
//!
//! - bit 0: small limits (depth 4, 16 elements, strings of 16 bytes,
//!   512 bytes in all), which make every limit reachable with short
//!   inputs; otherwise the defaults;
//! - bit 1: the ActiveSync header `03 01 6A 00` is put in front, so the
//!   fuzzer spends its time on the body.
//!
//! Checked, besides "never panics, never hangs": a refusal has a message;
//! a document that decodes stays within the limits, encodes to at most
//! its own size, and decodes from that encoding to the same tree under
//! the same limits (decode(encode(tree)) == tree), whose encoding is
//! then the same bytes again (the encoding is canonical); its XML form
//! reads back (`from_xml`) to the same tree whenever the tree has no
//! mixed content, no text in a binary tag and no opaque data in a text
//! tag (the XML form cannot tell those apart), and never panics when it
//! has.

#![allow(dead_code)]

use outpost_wbxml::{decode as wbxml_decode, encode, from_xml, to_xml, Element, Limits, Node};

pub const HEADER: [u8; 4] = [0x03, 0x01, 0x6A, 0x00];

pub fn limits(setup: u8) -> Limits {
    if setup & 0x01 != 0 {
        Limits {
            max_size: 512,
            max_depth: 4,
            max_elements: 16,
            max_string: 16,
        }
    } else {
        Limits::default()
    }
}

/// What one input did, for the property tests' own assertions.
#[derive(Debug, Default)]
pub struct Outcome {
    pub decoded: bool,
    pub xml_round_trip: bool,
}

pub fn decode(data: &[u8]) -> Outcome {
    let mut outcome = Outcome::default();
    let Some((&setup, rest)) = data.split_first() else {
        return outcome;
    };
    let limits = limits(setup);
    let doc: Vec<u8> = if setup & 0x02 != 0 {
        [&HEADER[..], rest].concat()
    } else {
        rest.to_vec()
    };
    let tree = match wbxml_decode(&doc, &limits) {
        Ok(tree) => tree,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return outcome;
        }
    };
    outcome.decoded = true;
    within_limits(&tree, &limits);

    let bytes = encode(&tree);
    assert!(bytes.len() <= doc.len(), "the encoding grew");
    let again = wbxml_decode(&bytes, &limits).expect("our encoding decodes");
    assert_eq!(again, tree, "decode(encode(tree)) differs");
    assert_eq!(encode(&again), bytes, "the encoding is not canonical");

    let xml = to_xml(&tree);
    let read = from_xml(xml.as_bytes(), &Limits::default());
    if xml_representable(&tree) {
        assert_eq!(read.as_ref(), Ok(&tree), "XML form: {xml}");
        outcome.xml_round_trip = true;
    }
    outcome
}

/// Depth, element count and string sizes of a decoded tree.
pub fn within_limits(tree: &Element, limits: &Limits) {
    let mut elements = 0;
    let mut stack = vec![(tree, 1usize)];
    while let Some((el, depth)) = stack.pop() {
        elements += 1;
        assert!(depth <= limits.max_depth);
        for n in &el.children {
            match n {
                Node::Element(c) => stack.push((c, depth + 1)),
                Node::Text(t) => {
                    assert!(t.len() <= limits.max_string);
                    assert!(!t.contains('\0'));
                }
                Node::Opaque(b) => assert!(b.len() <= limits.max_string),
            }
        }
    }
    assert!(elements <= limits.max_elements);
}

/// Whether the XML form can hold the tree exactly: each element has only
/// child elements, or a single non-empty text of characters XML can
/// carry (in a tag that is not binary), or a single non-empty opaque run
/// (in a binary tag), or nothing.
pub fn xml_representable(tree: &Element) -> bool {
    let mut stack = vec![tree];
    while let Some(el) = stack.pop() {
        let elements = el
            .children
            .iter()
            .filter(|n| matches!(n, Node::Element(_)))
            .count();
        if elements == el.children.len() {
            stack.extend(el.elements());
            continue;
        }
        let ok = match el.children.as_slice() {
            [Node::Text(t)] => !el.tag.is_binary() && !t.is_empty() && t.chars().all(xml_char),
            [Node::Opaque(b)] => el.tag.is_binary() && !b.is_empty(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}
