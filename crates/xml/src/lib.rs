//! Safe XML for every XML protocol of the project (DAV now; Autodiscover,
//! EWS later), on quick-xml.
//!
//! Reading: [`parse`] turns a request body into a small tree of
//! namespace-resolved [`Element`]s under [`Limits`] (total size, depth,
//! element count, attributes per element, text size). A DOCTYPE (and with
//! it any DTD or entity declaration) is refused, and so is every entity
//! reference other than the five predefined ones and numeric character
//! references: an XML bomb or an external entity is an error, never an
//! expansion or a fetch.
//!
//! Writing: build an [`Element`] tree and serialize it with [`write`]; the
//! serializer declares the namespace prefixes it is given on the root and
//! escapes every text and attribute value, so the output is well-formed
//! whatever the values hold.

use std::fmt::Write as _;

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

/// How much a document may hold. The defaults suit a DAV request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of the whole document.
    pub max_size: usize,
    /// Element nesting.
    pub max_depth: usize,
    /// Elements in the document.
    pub max_elements: usize,
    /// Attributes on one element.
    pub max_attributes: usize,
    /// Bytes of text in one element (after resolving references).
    pub max_text: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_size: 1 << 20,
            max_depth: 64,
            max_elements: 10_000,
            max_attributes: 32,
            max_text: 1 << 20,
        }
    }
}

/// Why a document was refused. The message says what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("XML document of {size} bytes is over the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("XML nesting deeper than {0} elements")]
    TooDeep(usize),
    #[error("XML document has more than {0} elements")]
    TooManyElements(usize),
    #[error("XML element <{name}> has more than {limit} attributes")]
    TooManyAttributes { name: String, limit: usize },
    #[error("XML text in <{name}> is over the limit of {limit} bytes")]
    TextTooLarge { name: String, limit: usize },
    #[error("XML DOCTYPE/DTD is not accepted")]
    Doctype,
    #[error("XML entity reference &{0}; is not accepted (only the five predefined entities and character references are)")]
    Entity(String),
    #[error("XML document is not UTF-8")]
    NotUtf8,
    #[error("XML document has no root element")]
    Empty,
    #[error("XML namespace prefix {0:?} is not declared")]
    UnboundPrefix(String),
    #[error("malformed XML at byte {position}: {message}")]
    Malformed { position: u64, message: String },
}

/// A namespace-resolved name: namespace URI (empty for none) and local name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name {
    pub ns: String,
    pub local: String,
}

impl Name {
    pub fn new(ns: impl Into<String>, local: impl Into<String>) -> Name {
        Name {
            ns: ns.into(),
            local: local.into(),
        }
    }

    pub fn is(&self, ns: &str, local: &str) -> bool {
        self.ns == ns && self.local == local
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{{{}}}{}", self.ns, self.local)
    }
}

/// One element: its name, attributes, children and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub name: Name,
    pub attributes: Vec<(Name, String)>,
    pub children: Vec<Element>,
    /// The element's own character data (text and CDATA), concatenated.
    pub text: String,
}

impl Element {
    pub fn new(ns: &str, local: &str) -> Element {
        Element {
            name: Name::new(ns, local),
            attributes: Vec::new(),
            children: Vec::new(),
            text: String::new(),
        }
    }

    /// Builder: adds a child.
    pub fn with(mut self, child: Element) -> Element {
        self.children.push(child);
        self
    }

    /// Builder: sets the text.
    pub fn with_text(mut self, text: impl Into<String>) -> Element {
        self.text = text.into();
        self
    }

    /// Builder: adds an attribute without namespace.
    pub fn with_attr(mut self, local: &str, value: impl Into<String>) -> Element {
        self.attributes.push((Name::new("", local), value.into()));
        self
    }

    pub fn push(&mut self, child: Element) {
        self.children.push(child);
    }

    pub fn is(&self, ns: &str, local: &str) -> bool {
        self.name.is(ns, local)
    }

    /// The first child of that name.
    pub fn child(&self, ns: &str, local: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(ns, local))
    }

    /// Every child of that name.
    pub fn children_named<'a>(
        &'a self,
        ns: &'a str,
        local: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.is(ns, local))
    }

    /// An attribute without namespace.
    pub fn attr(&self, local: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n.ns.is_empty() && n.local == local)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses `input` under `limits` into its root element.
pub fn parse(input: &[u8], limits: &Limits) -> Result<Element, XmlError> {
    if input.len() > limits.max_size {
        return Err(XmlError::TooLarge {
            size: input.len(),
            limit: limits.max_size,
        });
    }
    let text = std::str::from_utf8(input).map_err(|_| XmlError::NotUtf8)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // XML 1.0 §2.2: a document holds only Chars (no NUL, no C0 controls
    // but tab, CR and LF). What is read must be writable again.
    if let Some((at, c)) = text.char_indices().find(|&(_, c)| !is_xml_char(c)) {
        return Err(XmlError::Malformed {
            position: at as u64,
            message: format!("character U+{:04X} is not allowed in XML", c as u32),
        });
    }
    let mut reader = NsReader::from_str(text);
    {
        let config = reader.config_mut();
        config.check_end_names = true;
        config.check_comments = false;
        config.expand_empty_elements = false;
        config.allow_dangling_amp = false;
    }

    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut elements = 0usize;

    loop {
        let position = reader.buffer_position();
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|e| malformed(position, e))?;
        let ns = resolved(&ns, position)?;
        match event {
            Event::Start(ref start) | Event::Empty(ref start) => {
                let is_empty = matches!(event, Event::Empty(_));
                if root.is_some() {
                    return Err(XmlError::Malformed {
                        position,
                        message: "content after the root element".into(),
                    });
                }
                elements += 1;
                if elements > limits.max_elements {
                    return Err(XmlError::TooManyElements(limits.max_elements));
                }
                if stack.len() + 1 > limits.max_depth {
                    return Err(XmlError::TooDeep(limits.max_depth));
                }
                let local = start.local_name().into_inner().to_string();
                let mut el = Element {
                    name: Name { ns, local },
                    attributes: Vec::new(),
                    children: Vec::new(),
                    text: String::new(),
                };
                for attr in start.attributes() {
                    let attr = attr.map_err(|e| XmlError::Malformed {
                        position,
                        message: e.to_string(),
                    })?;
                    let key = attr.key.into_inner();
                    if key == "xmlns" || key.starts_with("xmlns:") {
                        continue;
                    }
                    if el.attributes.len() >= limits.max_attributes {
                        return Err(XmlError::TooManyAttributes {
                            name: el.name.local.clone(),
                            limit: limits.max_attributes,
                        });
                    }
                    let (ans, alocal) = reader.resolver().resolve_attribute(attr.key);
                    let ans = resolved(&ans, position)?;
                    let value = attribute_value(&attr.value, position)?;
                    el.attributes
                        .push((Name::new(ans, alocal.into_inner()), value));
                }
                if is_empty {
                    attach(&mut stack, &mut root, el);
                } else {
                    stack.push(el);
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or_else(|| XmlError::Malformed {
                    position,
                    message: "end tag without start tag".into(),
                })?;
                attach(&mut stack, &mut root, el);
            }
            Event::Text(t) => {
                let content = t.xml10_content();
                push_text(&mut stack, &content, limits, position)?;
            }
            Event::CData(c) => {
                let content = c.xml10_content();
                push_text(&mut stack, &content, limits, position)?;
            }
            Event::GeneralRef(r) => {
                let resolved = if r.is_char_ref() {
                    match r.resolve_char_ref() {
                        Ok(Some(c)) if is_xml_char(c) => c.to_string(),
                        _ => return Err(XmlError::Entity(r.xml10_content().into_owned())),
                    }
                } else {
                    let name = r.xml10_content();
                    match quick_xml::escape::resolve_predefined_entity(&name) {
                        Some(s) => s.to_string(),
                        None => return Err(XmlError::Entity(name.into_owned())),
                    }
                };
                push_text(&mut stack, &resolved, limits, position)?;
            }
            Event::DocType(_) => return Err(XmlError::Doctype),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(XmlError::Malformed {
            position: reader.buffer_position(),
            message: format!("unclosed element <{}>", stack.last().unwrap().name.local),
        });
    }
    root.ok_or(XmlError::Empty)
}

fn malformed(position: u64, e: quick_xml::Error) -> XmlError {
    XmlError::Malformed {
        position,
        message: e.to_string(),
    }
}

/// The namespace an element or attribute is in: the `xmlns` attribute's
/// value with its references resolved (`&amp;` is `&` there too).
fn resolved(r: &ResolveResult<'_>, position: u64) -> Result<String, XmlError> {
    match r {
        ResolveResult::Unbound => Ok(String::new()),
        ResolveResult::Bound(ns) => attribute_value(ns.into_inner(), position),
        ResolveResult::Unknown(prefix) => Err(XmlError::UnboundPrefix(prefix.clone())),
    }
}

/// An attribute value with references resolved, refusing every entity but
/// the predefined ones.
fn attribute_value(raw: &str, position: u64) -> Result<String, XmlError> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let semi = after.find(';').ok_or_else(|| XmlError::Malformed {
            position,
            message: "unterminated reference in an attribute value".into(),
        })?;
        let name = &after[..semi];
        if let Some(num) = name.strip_prefix('#') {
            let code = if let Some(hex) = num.strip_prefix('x') {
                u32::from_str_radix(hex, 16).ok()
            } else {
                num.parse::<u32>().ok()
            };
            match code.and_then(char::from_u32) {
                Some(c) if is_xml_char(c) => out.push(c),
                _ => return Err(XmlError::Entity(name.to_string())),
            }
        } else {
            match quick_xml::escape::resolve_predefined_entity(name) {
                Some(s) => out.push_str(s),
                None => return Err(XmlError::Entity(name.to_string())),
            }
        }
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    // XML 1.0 attribute-value normalization of literal white space.
    Ok(out)
}

fn push_text(
    stack: &mut [Element],
    text: &str,
    limits: &Limits,
    position: u64,
) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(el) => {
            if el.text.len() + text.len() > limits.max_text {
                return Err(XmlError::TextTooLarge {
                    name: el.name.local.clone(),
                    limit: limits.max_text,
                });
            }
            el.text.push_str(text);
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None => Err(XmlError::Malformed {
            position,
            message: "text outside the root element".into(),
        }),
    }
}

fn attach(stack: &mut [Element], root: &mut Option<Element>, el: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(el),
        None => *root = Some(el),
    }
}

/// Serializes `root` as a document. `prefixes` maps namespace URIs to the
/// prefixes declared on the root (e.g. `("DAV:", "d")`); a namespace
/// missing from it gets a generated prefix declared where it is used.
pub fn write(root: &Element, prefixes: &[(&str, &str)]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    let mut w = Writer {
        out: &mut out,
        prefixes,
        generated: 0,
    };
    w.element(root, true, &mut Vec::new());
    out
}

struct Writer<'a> {
    out: &'a mut String,
    prefixes: &'a [(&'a str, &'a str)],
    generated: usize,
}

impl Writer<'_> {
    fn prefix_of(&self, ns: &str, scoped: &[(String, String)]) -> Option<String> {
        if let Some((_, p)) = self.prefixes.iter().find(|(u, _)| *u == ns) {
            return Some((*p).to_string());
        }
        scoped
            .iter()
            .rev()
            .find(|(u, _)| u == ns)
            .map(|(_, p)| p.clone())
    }

    fn element(&mut self, el: &Element, is_root: bool, scoped: &mut Vec<(String, String)>) {
        let depth = scoped.len();
        let mut declare = Vec::new();
        let qname = self.qname(&el.name, scoped, &mut declare);
        self.out.push('<');
        self.out.push_str(&qname);
        if is_root {
            for (uri, p) in self.prefixes {
                let _ = write!(self.out, " xmlns:{}=\"{}\"", p, escape_attr(uri));
            }
        }
        let mut attrs = Vec::new();
        for (name, value) in &el.attributes {
            let q = if name.ns.is_empty() {
                name.local.clone()
            } else {
                self.qname(name, scoped, &mut declare)
            };
            attrs.push((q, value));
        }
        for (uri, p) in &declare {
            let _ = write!(self.out, " xmlns:{}=\"{}\"", p, escape_attr(uri));
        }
        for (q, v) in attrs {
            let _ = write!(self.out, " {}=\"{}\"", q, escape_attr(v));
        }
        if el.children.is_empty() && el.text.is_empty() {
            self.out.push_str("/>");
        } else {
            self.out.push('>');
            self.out.push_str(&escape_text(&el.text));
            for c in &el.children {
                self.element(c, false, scoped);
            }
            let _ = write!(self.out, "</{}>", qname);
        }
        scoped.truncate(depth);
    }

    fn qname(
        &mut self,
        name: &Name,
        scoped: &mut Vec<(String, String)>,
        declare: &mut Vec<(String, String)>,
    ) -> String {
        if name.ns.is_empty() {
            return name.local.clone();
        }
        let p = match self.prefix_of(&name.ns, scoped) {
            Some(p) => p,
            None => {
                self.generated += 1;
                let p = format!("x{}", self.generated);
                scoped.push((name.ns.clone(), p.clone()));
                declare.push((name.ns.clone(), p.clone()));
                p
            }
        };
        format!("{}:{}", p, name.local)
    }
}

/// Escapes character data; characters XML 1.0 cannot carry at all are
/// dropped (they cannot be written even as references).
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\r' => out.push_str("&#13;"),
            c if is_xml_char(c) => out.push(c),
            _ => {}
        }
    }
    out
}

fn escape_attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if is_xml_char(c) => out.push(c),
            _ => {}
        }
    }
    out
}

fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

#[cfg(test)]
mod tests;
