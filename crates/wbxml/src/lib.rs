//! WBXML 1.3 as Exchange ActiveSync uses it (MS-ASWBXML, W3C WBXML 1.3
//! note), without I/O: bytes in, a tree out, and back.
//!
//! - [`decode`] reads a request body into an [`Element`] tree under
//!   [`Limits`] (input size, depth, element count, string length). Every
//!   refusal is an [`Error`], never a panic: truncated input, an unknown
//!   code page or token, attributes (ActiveSync uses none), string-table
//!   references, entities, processing instructions and extension tokens.
//! - [`encode`] writes a tree as ActiveSync expects it: header `03 01 6A
//!   00` (WBXML 1.3, unknown public id, UTF-8, empty string table),
//!   SWITCH_PAGE where the page changes, inline strings (STR_I), OPAQUE
//!   for bytes, END.
//! - [`to_xml`] and [`from_xml`] are the XML form libwbxml's `wbxml2xml`
//!   prints (each code page a default namespace `AirSync:`, `Email:`, ...
//!   declared where it starts), for logs, tests and hand-written requests.
//!
//! The code pages are in [`pages`]: all 26 of protocol 16.1.

pub mod pages;
mod xml;

pub use pages::{page, page_by_namespace, CodePage, PAGES};
pub use xml::{from_xml, to_xml};

/// The global tokens of WBXML 1.3 (section 7.1).
mod token {
    pub const SWITCH_PAGE: u8 = 0x00;
    pub const END: u8 = 0x01;
    pub const ENTITY: u8 = 0x02;
    pub const STR_I: u8 = 0x03;
    pub const LITERAL: u8 = 0x04;
    pub const EXT_I_0: u8 = 0x40;
    pub const EXT_I_2: u8 = 0x42;
    pub const PI: u8 = 0x43;
    pub const LITERAL_C: u8 = 0x44;
    pub const EXT_T_0: u8 = 0x80;
    pub const STR_T: u8 = 0x83;
    pub const LITERAL_A: u8 = 0x84;
    pub const EXT_0: u8 = 0xC0;
    pub const OPAQUE: u8 = 0xC3;
    pub const LITERAL_AC: u8 = 0xC4;
    /// Bit 6 of a tag token: the element has content.
    pub const WITH_CONTENT: u8 = 0x40;
    /// Bit 7 of a tag token: the element has attributes.
    pub const WITH_ATTRIBUTES: u8 = 0x80;
}

/// The IANA MIBenum of UTF-8, the only charset ActiveSync uses.
const UTF8: u32 = 0x6A;

/// A tag known to the code pages: a page and a token that page lists.
/// It cannot hold an unknown pair, so a tree always encodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag {
    page: u8,
    token: u8,
}

impl Tag {
    /// The tag with this token on this page, if the page lists it.
    pub fn new(page: u8, token: u8) -> Option<Tag> {
        pages::page(page)?.name_of(token)?;
        Some(Tag { page, token })
    }

    /// The tag of this name on the page of this name (`"Email"`,
    /// `"Subject"`). Names are case-sensitive, as in XML.
    pub fn named(page: &str, name: &str) -> Option<Tag> {
        let p = pages::PAGES.iter().find(|p| p.name == page)?;
        Some(Tag {
            page: p.number,
            token: p.token_of(name)?,
        })
    }

    pub fn page(self) -> u8 {
        self.page
    }

    pub fn token(self) -> u8 {
        self.token
    }

    pub fn code_page(self) -> &'static CodePage {
        &pages::PAGES[usize::from(self.page)]
    }

    /// The tag name, as MS-ASWBXML spells it.
    pub fn name(self) -> &'static str {
        self.code_page().name_of(self.token).unwrap_or("")
    }

    /// The XML namespace of its page (`"Email:"`).
    pub fn namespace(self) -> &'static str {
        self.code_page().namespace
    }

    /// Whether the tag's content is a byte array (see [`CodePage::binary`]).
    pub fn is_binary(self) -> bool {
        self.code_page().is_binary(self.token)
    }
}

impl std::fmt::Display for Tag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.namespace(), self.name())
    }
}

/// One element: its tag and its content in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub tag: Tag,
    pub children: Vec<Node>,
}

/// What an element holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    /// An inline string (STR_I). U+0000 cannot be written in one and is
    /// dropped by [`encode`].
    Text(String),
    /// Opaque data (OPAQUE): bytes, such as a MIME message or a
    /// conversation id. WBXML gives its length 32 bits: [`encode`] writes
    /// at most 4 GiB - 1 of it (the decoder's `max_string` is far below).
    Opaque(Vec<u8>),
}

impl Element {
    pub fn new(tag: Tag) -> Element {
        Element {
            tag,
            children: Vec::new(),
        }
    }

    /// The element `page`/`name`; panics if the code pages do not list
    /// it, so use it with names written in the source, and [`Tag::named`]
    /// for names from elsewhere.
    pub fn named(page: &str, name: &str) -> Element {
        match Tag::named(page, name) {
            Some(tag) => Element::new(tag),
            None => panic!("no tag {name} on code page {page}"),
        }
    }

    /// Builder: adds a child element.
    pub fn with(mut self, child: Element) -> Element {
        self.children.push(Node::Element(child));
        self
    }

    /// Builder: adds text.
    pub fn with_text(mut self, text: impl Into<String>) -> Element {
        self.children.push(Node::Text(text.into()));
        self
    }

    /// Builder: adds opaque data.
    pub fn with_opaque(mut self, bytes: impl Into<Vec<u8>>) -> Element {
        self.children.push(Node::Opaque(bytes.into()));
        self
    }

    pub fn is(&self, page: &str, name: &str) -> bool {
        self.tag.code_page().name == page && self.tag.name() == name
    }

    /// The child elements.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            _ => None,
        })
    }

    /// The first child element `page`/`name`.
    pub fn child(&self, page: &str, name: &str) -> Option<&Element> {
        self.elements().find(|e| e.is(page, name))
    }

    /// The element's text: its text nodes, concatenated.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for n in &self.children {
            if let Node::Text(t) = n {
                s.push_str(t);
            }
        }
        s
    }

    /// The element's bytes: opaque data and text, concatenated in order.
    pub fn bytes(&self) -> Vec<u8> {
        let mut b = Vec::new();
        for n in &self.children {
            match n {
                Node::Text(t) => b.extend_from_slice(t.as_bytes()),
                Node::Opaque(o) => b.extend_from_slice(o),
                Node::Element(_) => {}
            }
        }
        b
    }
}

/// How much a document may hold. The defaults suit an ActiveSync request
/// body; the server chooses its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of the whole document.
    pub max_size: usize,
    /// Element nesting.
    pub max_depth: usize,
    /// Elements in the document.
    pub max_elements: usize,
    /// Bytes of one inline string or one opaque run.
    pub max_string: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_size: 32 << 20,
            max_depth: 64,
            max_elements: 100_000,
            max_string: 32 << 20,
        }
    }
}

/// Why a document was refused. Offsets count bytes from the start of the
/// input. [`Error::is_unknown_tag`] tells a request that uses a tag this
/// server does not know (ActiveSync status "invalid WBXML" all the same,
/// but worth logging differently) from plain garbage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("WBXML document of {size} bytes is over the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("WBXML nesting deeper than {0} elements")]
    TooDeep(usize),
    #[error("WBXML document has more than {0} elements")]
    TooManyElements(usize),
    #[error("WBXML string or opaque data at byte {offset} is over the limit of {limit} bytes")]
    StringTooLong { offset: usize, limit: usize },
    #[error("WBXML document ends early (at byte {offset}, {what})")]
    Truncated { offset: usize, what: &'static str },
    #[error("WBXML version {0:#04x} is not 1.x")]
    Version(u8),
    #[error("WBXML charset {0} is not UTF-8 (106)")]
    Charset(u32),
    #[error("WBXML multi-byte integer at byte {offset} is over 32 bits")]
    Integer { offset: usize },
    #[error("WBXML code page {page} (at byte {offset}) is not an ActiveSync code page")]
    UnknownPage { page: u8, offset: usize },
    #[error("WBXML token {token:#04x} at byte {offset} is not a tag of code page {page} ({name})")]
    UnknownTag {
        page: u8,
        name: &'static str,
        token: u8,
        offset: usize,
    },
    #[error("WBXML tag at byte {offset} has attributes, which ActiveSync does not use")]
    Attributes { offset: usize },
    #[error("WBXML token {token:#04x} at byte {offset} ({what}) is not used by ActiveSync")]
    Unsupported {
        token: u8,
        offset: usize,
        what: &'static str,
    },
    #[error("WBXML string at byte {offset} is not UTF-8")]
    NotUtf8 { offset: usize },
    #[error("WBXML {what} at byte {offset} outside the root element")]
    OutsideRoot { offset: usize, what: &'static str },
    #[error("WBXML document has no root element")]
    Empty,
    #[error("{0}")]
    Xml(#[from] outpost_xml::XmlError),
    #[error("XML namespace {0:?} is not an ActiveSync code page")]
    UnknownNamespace(String),
    #[error("XML element {name} is not a tag of code page {page}")]
    UnknownName { page: &'static str, name: String },
    #[error("XML element {0} has attributes, which ActiveSync does not use")]
    XmlAttributes(String),
    #[error("XML element {0} mixes text and elements, which ActiveSync does not use")]
    MixedContent(String),
    #[error("XML element {0} holds binary content that is not base64")]
    Base64(String),
}

impl Error {
    /// True when the document was well-formed WBXML (or XML) up to a tag
    /// or code page the tables do not list.
    pub fn is_unknown_tag(&self) -> bool {
        matches!(
            self,
            Error::UnknownPage { .. }
                | Error::UnknownTag { .. }
                | Error::UnknownNamespace(_)
                | Error::UnknownName { .. }
        )
    }
}

/// Reads a WBXML document under `limits`.
///
/// The header may carry any 1.x version, any public identifier and a
/// string table (libwbxml's `xml2wbxml` writes the ActiveSync DTD's name
/// there); the table is skipped and references into it are refused.
/// The charset must be UTF-8.
pub fn decode(input: &[u8], limits: &Limits) -> Result<Element, Error> {
    if input.len() > limits.max_size {
        return Err(Error::TooLarge {
            size: input.len(),
            limit: limits.max_size,
        });
    }
    let mut r = Reader { input, pos: 0 };
    let version = r.byte("the version")?;
    if version >> 4 != 0 {
        return Err(Error::Version(version));
    }
    let public_id = r.mb_u32("the public identifier")?;
    if public_id == 0 {
        // A reference into the string table.
        r.mb_u32("the public identifier's index")?;
    }
    let charset = r.mb_u32("the charset")?;
    if charset != UTF8 {
        return Err(Error::Charset(charset));
    }
    let table = r.mb_u32("the string table's length")? as usize;
    r.take(table, "the string table")?;

    let mut page: u8 = 0;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut elements = 0usize;
    loop {
        let offset = r.pos;
        let Some(t) = r.next() else {
            break;
        };
        match t {
            token::SWITCH_PAGE => {
                let p = r.byte("the code page number")?;
                if pages::page(p).is_none() {
                    return Err(Error::UnknownPage { page: p, offset });
                }
                page = p;
            }
            token::END => {
                let Some(el) = stack.pop() else {
                    return Err(Error::OutsideRoot {
                        offset,
                        what: "END",
                    });
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Element(el)),
                    None => root = Some(el),
                }
            }
            token::STR_I => {
                let bytes = r.until_nul(limits.max_string)?;
                let s = std::str::from_utf8(bytes).map_err(|_| Error::NotUtf8 { offset })?;
                push_content(&mut stack, offset, "a string", Node::Text(s.to_string()))?;
            }
            token::OPAQUE => {
                let len = r.mb_u32("the opaque data's length")? as usize;
                if len > limits.max_string {
                    return Err(Error::StringTooLong {
                        offset,
                        limit: limits.max_string,
                    });
                }
                let bytes = r.take(len, "opaque data")?;
                push_content(
                    &mut stack,
                    offset,
                    "opaque data",
                    Node::Opaque(bytes.to_vec()),
                )?;
            }
            token::ENTITY
            | token::LITERAL
            | token::EXT_I_0..=token::EXT_I_2
            | token::PI
            | token::LITERAL_C
            | token::EXT_T_0..=token::LITERAL_A
            | token::EXT_0..=token::LITERAL_AC => {
                let what = match t {
                    token::ENTITY => "ENTITY",
                    token::PI => "PI",
                    token::STR_T => "STR_T, a string table reference",
                    token::LITERAL | token::LITERAL_A | token::LITERAL_C | token::LITERAL_AC => {
                        "LITERAL, a tag from the string table"
                    }
                    _ => "an extension token",
                };
                return Err(Error::Unsupported {
                    token: t,
                    offset,
                    what,
                });
            }
            _ => {
                if t & token::WITH_ATTRIBUTES != 0 {
                    return Err(Error::Attributes { offset });
                }
                let code = t & 0x3F;
                let Some(tag) = Tag::new(page, code) else {
                    return Err(Error::UnknownTag {
                        page,
                        name: pages::PAGES[usize::from(page)].name,
                        token: code,
                        offset,
                    });
                };
                if root.is_some() {
                    return Err(Error::OutsideRoot {
                        offset,
                        what: "a second root element",
                    });
                }
                elements += 1;
                if elements > limits.max_elements {
                    return Err(Error::TooManyElements(limits.max_elements));
                }
                if stack.len() >= limits.max_depth {
                    return Err(Error::TooDeep(limits.max_depth));
                }
                let el = Element::new(tag);
                if t & token::WITH_CONTENT != 0 {
                    stack.push(el);
                } else {
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(Node::Element(el)),
                        None => root = Some(el),
                    }
                }
            }
        }
    }
    if !stack.is_empty() {
        return Err(Error::Truncated {
            offset: input.len(),
            what: "an element is not closed",
        });
    }
    root.ok_or(Error::Empty)
}

fn push_content(
    stack: &mut [Element],
    offset: usize,
    what: &'static str,
    node: Node,
) -> Result<(), Error> {
    match stack.last_mut() {
        Some(el) => {
            el.children.push(node);
            Ok(())
        }
        None => Err(Error::OutsideRoot { offset, what }),
    }
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn next(&mut self) -> Option<u8> {
        let b = *self.input.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn byte(&mut self, what: &'static str) -> Result<u8, Error> {
        self.next().ok_or(Error::Truncated {
            offset: self.pos,
            what,
        })
    }

    /// A multi-byte unsigned integer (WBXML 1.3 section 5.1): at most
    /// five bytes and 32 bits.
    fn mb_u32(&mut self, what: &'static str) -> Result<u32, Error> {
        let offset = self.pos;
        let mut value: u32 = 0;
        for _ in 0..5 {
            let b = self.byte(what)?;
            if value > (u32::MAX >> 7) {
                return Err(Error::Integer { offset });
            }
            value = (value << 7) | u32::from(b & 0x7F);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Error::Integer { offset })
    }

    fn take(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], Error> {
        if self.input.len() - self.pos < len {
            return Err(Error::Truncated {
                offset: self.input.len(),
                what,
            });
        }
        let s = &self.input[self.pos..self.pos + len];
        self.pos += len;
        Ok(s)
    }

    /// The bytes of an inline string, up to its terminating NUL (which is
    /// consumed).
    fn until_nul(&mut self, limit: usize) -> Result<&'a [u8], Error> {
        let start = self.pos;
        let rest = &self.input[start..];
        match rest.iter().position(|&b| b == 0) {
            Some(n) if n > limit => Err(Error::StringTooLong {
                offset: start - 1,
                limit,
            }),
            Some(n) => {
                self.pos += n + 1;
                Ok(&rest[..n])
            }
            None if rest.len() > limit => Err(Error::StringTooLong {
                offset: start - 1,
                limit,
            }),
            None => Err(Error::Truncated {
                offset: self.input.len(),
                what: "a string without its terminating NUL",
            }),
        }
    }
}

/// Writes `root` as an ActiveSync WBXML document.
pub fn encode(root: &Element) -> Vec<u8> {
    let mut out = vec![0x03, 0x01, UTF8 as u8, 0x00];
    let mut page = 0u8;
    // Iterative, so that a deep tree cannot exhaust the stack: each
    // entry is an element whose children from `next` on are still to be
    // written.
    start_tag(&mut out, &mut page, root);
    if root.children.is_empty() {
        return out;
    }
    let mut stack: Vec<(&Element, usize)> = vec![(root, 0)];
    while let Some((el, i)) = stack.last_mut() {
        let Some(node) = el.children.get(*i) else {
            out.push(token::END);
            stack.pop();
            continue;
        };
        *i += 1;
        match node {
            Node::Element(child) => {
                start_tag(&mut out, &mut page, child);
                if !child.children.is_empty() {
                    stack.push((child, 0));
                }
            }
            Node::Text(t) => {
                out.push(token::STR_I);
                out.extend(t.bytes().filter(|&b| b != 0));
                out.push(0);
            }
            Node::Opaque(b) => {
                let b = &b[..b.len().min(u32::MAX as usize)];
                out.push(token::OPAQUE);
                put_mb_u32(&mut out, b.len() as u32);
                out.extend_from_slice(b);
            }
        }
    }
    out
}

fn start_tag(out: &mut Vec<u8>, page: &mut u8, el: &Element) {
    if el.tag.page != *page {
        out.push(token::SWITCH_PAGE);
        out.push(el.tag.page);
        *page = el.tag.page;
    }
    let content = if el.children.is_empty() {
        0
    } else {
        token::WITH_CONTENT
    };
    out.push(el.tag.token | content);
}

fn put_mb_u32(out: &mut Vec<u8>, mut v: u32) {
    let mut buf = [0u8; 5];
    let mut n = 0;
    loop {
        buf[n] = (v & 0x7F) as u8;
        n += 1;
        v >>= 7;
        if v == 0 {
            break;
        }
    }
    for i in (0..n).rev() {
        out.push(buf[i] | if i > 0 { 0x80 } else { 0 });
    }
}

#[cfg(test)]
mod tests;
