//! The XML form of a WBXML tree, as libwbxml's `wbxml2xml -l ACTIVESYNC`
//! prints it: each code page is a default namespace (`xmlns="AirSync:"`)
//! declared on the root and wherever the page changes, text escaped,
//! opaque data in base64. [`from_xml`] reads that form back (and the
//! prefixed form, `xmlns:email="Email:"`, and namespaces without the
//! colon as MS-ASCMD's examples write them) through the project's safe
//! XML reader: no DTD, no entities, bounded.

use crate::{Element, Error, Limits, Node, Tag};

/// The document as XML, compact (no indentation).
pub fn to_xml(root: &Element) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
    // Iterative, like `encode`: (element, next child).
    open(&mut out, root, None);
    if root.children.is_empty() {
        return out;
    }
    let mut stack: Vec<(&Element, usize)> = vec![(root, 0)];
    while let Some((el, i)) = stack.last_mut() {
        let el: &Element = el;
        let Some(node) = el.children.get(*i) else {
            out.push_str("</");
            out.push_str(el.tag.name());
            out.push('>');
            stack.pop();
            continue;
        };
        *i += 1;
        match node {
            Node::Element(child) => {
                open(&mut out, child, Some(el.tag));
                if !child.children.is_empty() {
                    stack.push((child, 0));
                }
            }
            Node::Text(t) => escape(&mut out, t),
            Node::Opaque(b) => out.push_str(&base64_encode(b)),
        }
    }
    out
}

/// Escapes text as libwbxml does (quotes too); characters XML 1.0
/// cannot carry at all are dropped, a carriage return is a reference so
/// that it survives line-end normalisation.
fn escape(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\t' | '\n' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'.. => {
                out.push(c)
            }
            _ => {}
        }
    }
}

fn open(out: &mut String, el: &Element, parent: Option<Tag>) {
    out.push('<');
    out.push_str(el.tag.name());
    if parent.map(|p| p.page()) != Some(el.tag.page()) {
        out.push_str(" xmlns=\"");
        out.push_str(el.tag.namespace());
        out.push('"');
    }
    out.push_str(if el.children.is_empty() { "/>" } else { ">" });
}

/// Reads the XML form into a tree under `limits` (size, depth, element
/// count; `max_string` bounds each element's text). Refused: a DOCTYPE or
/// entity (by `outpost_xml`), attributes, an element outside the code
/// pages, text beside child elements (ActiveSync has no mixed content),
/// and binary content that is not base64. White space between elements
/// is ignored; an element's own text is kept as it is, and an empty one
/// is an element without content.
pub fn from_xml(input: &[u8], limits: &Limits) -> Result<Element, Error> {
    let xml_limits = outpost_xml::Limits {
        max_size: limits.max_size,
        max_depth: limits.max_depth,
        max_elements: limits.max_elements,
        max_attributes: 0,
        max_text: limits.max_string,
    };
    let root = outpost_xml::parse(input, &xml_limits).map_err(|e| match e {
        outpost_xml::XmlError::TooManyAttributes { name, .. } => Error::XmlAttributes(name),
        e => Error::Xml(e),
    })?;
    convert(root)
}

fn convert(x: outpost_xml::Element) -> Result<Element, Error> {
    let page = crate::page_by_namespace(&x.name.ns)
        .ok_or_else(|| Error::UnknownNamespace(x.name.ns.clone()))?;
    let token = page
        .token_of(&x.name.local)
        .ok_or_else(|| Error::UnknownName {
            page: page.name,
            name: x.name.local.clone(),
        })?;
    let tag = Tag {
        page: page.number,
        token,
    };
    let mut el = Element::new(tag);
    if !x.children.is_empty() {
        if !x.text.trim().is_empty() {
            return Err(Error::MixedContent(tag.to_string()));
        }
        for c in x.children {
            el.children.push(Node::Element(convert(c)?));
        }
    } else if !x.text.is_empty() {
        if tag.is_binary() {
            let bytes = base64_decode(&x.text).ok_or_else(|| Error::Base64(tag.to_string()))?;
            el.children.push(Node::Opaque(bytes));
        } else {
            el.children.push(Node::Text(x.text));
        }
    }
    Ok(el)
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648 section 4).
pub(crate) fn base64_encode(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for chunk in b.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 0x3F) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Reads standard base64, padding optional, white space ignored.
pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    let mut padding = 0;
    for c in s.bytes() {
        if c.is_ascii_whitespace() {
            continue;
        }
        if c == b'=' {
            padding += 1;
            continue;
        }
        if padding > 0 {
            return None;
        }
        let v = ALPHABET.iter().position(|&a| a == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // Left-over bits must be zero padding of at most 4 bits.
    if bits >= 6 || acc != 0 || padding > 2 {
        return None;
    }
    Some(out)
}
