//! The WebDAV `If` request header (RFC 4918 §10.4): parsed into lists of
//! conditions and evaluated against the state of the resources it names.
//! No I/O: the caller says what each resource's ETag and lock tokens are.
//!
//! ```text
//! If = ( 1*No-tag-list | 1*Tagged-list )
//! No-tag-list = List
//! Tagged-list = Resource-Tag 1*List
//! List = "(" 1*Condition ")"
//! Condition = ["Not"] ( State-token | "[" entity-tag "]" )
//! ```
//!
//! The header is true when one of its lists is (§10.4.3); a list is true
//! when each of its conditions is. Untagged lists are about the request
//! URI, tagged ones about the resource their tag names. A token that
//! appears anywhere in a true header counts as submitted (§10.4.1).

/// Longest `If` value taken (400 above it).
pub const MAX_LEN: usize = 8192;
/// Most lists, conditions and resource tags in one header.
pub const MAX_LISTS: usize = 64;
pub const MAX_CONDITIONS: usize = 256;
/// Most distinct resource tags (each may cost the server a lookup).
pub const MAX_RESOURCES: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// A state token (a lock token, or something else such as
    /// `DAV:no-lock` that never matches).
    Token(String),
    /// An entity tag without quotes and without `W/`.
    ETag(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub not: bool,
    pub check: Check,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List {
    /// The Resource-Tag as written (an absolute URI or path); `None` for
    /// the request URI.
    pub resource: Option<String>,
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfHeader {
    pub lists: Vec<List>,
}

/// What the evaluation needs to know of one resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceState {
    /// Strong ETag without quotes; `None` for a collection or an unmapped
    /// URL.
    pub etag: Option<String>,
    /// Tokens of the locks whose scope includes the resource.
    pub tokens: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed If header: {0}")]
pub struct IfError(pub &'static str);

struct P<'a> {
    s: &'a [u8],
    i: usize,
}

impl P<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\r' | b'\n') {
            self.i += 1;
        }
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    /// Up to `end` (not included); the cursor goes past it.
    fn until(&mut self, end: u8, what: &'static str) -> Result<String, IfError> {
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i] != end {
            self.i += 1;
        }
        if self.i >= self.s.len() {
            return Err(IfError(what));
        }
        let v = std::str::from_utf8(&self.s[start..self.i]).map_err(|_| IfError("not UTF-8"))?;
        self.i += 1;
        Ok(v.to_string())
    }
    /// `<...>`: a Coded-URL or Resource-Tag.
    fn angle(&mut self) -> Result<String, IfError> {
        self.i += 1;
        let v = self.until(b'>', "unterminated <...>")?;
        if v.is_empty() || v.bytes().any(|b| b.is_ascii_whitespace() || b == b'<') {
            return Err(IfError("bad URI in <...>"));
        }
        Ok(v)
    }
    fn list(&mut self, resource: Option<String>, total: &mut usize) -> Result<List, IfError> {
        self.i += 1; // '('
        let mut conditions = Vec::new();
        loop {
            self.ws();
            let not = self.s[self.i..].len() >= 3
                && self.s[self.i..self.i + 3].eq_ignore_ascii_case(b"not");
            if not {
                self.i += 3;
                self.ws();
            }
            let check = match self.peek() {
                Some(b'<') => Check::Token(self.angle()?),
                Some(b'[') => {
                    self.i += 1;
                    self.ws();
                    if self.s[self.i..].starts_with(b"W/") {
                        self.i += 2;
                    }
                    if self.peek() != Some(b'"') {
                        return Err(IfError("entity tag must be quoted"));
                    }
                    self.i += 1;
                    let tag = self.until(b'"', "unterminated entity tag")?;
                    self.ws();
                    if self.peek() != Some(b']') {
                        return Err(IfError("entity tag must end with ]"));
                    }
                    self.i += 1;
                    Check::ETag(tag)
                }
                Some(b')') if !not && !conditions.is_empty() => {
                    self.i += 1;
                    return Ok(List {
                        resource,
                        conditions,
                    });
                }
                _ => return Err(IfError("expected a state token or an entity tag")),
            };
            *total += 1;
            if *total > MAX_CONDITIONS {
                return Err(IfError("too many conditions"));
            }
            conditions.push(Condition { not, check });
        }
    }
}

pub fn parse(value: &str) -> Result<IfHeader, IfError> {
    if value.len() > MAX_LEN {
        return Err(IfError("too long"));
    }
    let mut p = P {
        s: value.as_bytes(),
        i: 0,
    };
    let mut lists = Vec::new();
    let mut total = 0;
    let mut tagged: Option<bool> = None;
    let mut resource: Option<String> = None;
    loop {
        p.ws();
        match p.peek() {
            None => break,
            Some(b'<') => {
                if tagged == Some(false) {
                    return Err(IfError("tagged and untagged lists mixed"));
                }
                tagged = Some(true);
                resource = Some(p.angle()?);
                p.ws();
                if p.peek() != Some(b'(') {
                    return Err(IfError("a resource tag without a list"));
                }
            }
            Some(b'(') => {
                if tagged.is_none() {
                    tagged = Some(false);
                }
                lists.push(p.list(resource.clone(), &mut total)?);
                if lists.len() > MAX_LISTS {
                    return Err(IfError("too many lists"));
                }
            }
            Some(_) => return Err(IfError("expected ( or <")),
        }
    }
    if lists.is_empty() {
        return Err(IfError("no list"));
    }
    let h = IfHeader { lists };
    if h.resources().len() > MAX_RESOURCES {
        return Err(IfError("too many resource tags"));
    }
    Ok(h)
}

impl IfHeader {
    /// The distinct resource tags, as written.
    pub fn resources(&self) -> Vec<&str> {
        let mut v: Vec<&str> = Vec::new();
        for l in &self.lists {
            if let Some(r) = l.resource.as_deref() {
                if !v.contains(&r) {
                    v.push(r);
                }
            }
        }
        v
    }

    /// Whether some list about `resource` (`None`: the request URI) has an
    /// ETag condition (the caller then needs the resource's ETag).
    pub fn needs_etag(&self, resource: Option<&str>) -> bool {
        self.lists.iter().any(|l| {
            l.resource.as_deref() == resource
                && l.conditions
                    .iter()
                    .any(|c| matches!(c.check, Check::ETag(_)))
        })
    }

    /// Every state token in the header.
    pub fn tokens(&self) -> Vec<&str> {
        let mut v: Vec<&str> = Vec::new();
        for l in &self.lists {
            for c in &l.conditions {
                if let Check::Token(t) = &c.check {
                    if !v.contains(&t.as_str()) {
                        v.push(t);
                    }
                }
            }
        }
        v
    }

    /// RFC 4918 §10.4.3. `state(None)` is the request URI's state,
    /// `state(Some(tag))` a tagged resource's; `None` from it is a URL this
    /// server does not map (every condition on it is false, §10.4.4).
    pub fn evaluate<'a>(&self, state: impl Fn(Option<&str>) -> Option<&'a ResourceState>) -> bool {
        self.lists.iter().any(|l| {
            let s = state(l.resource.as_deref());
            l.conditions.iter().all(|c| {
                let hit = match (&c.check, s) {
                    (_, None) => false,
                    (Check::Token(t), Some(s)) => s.tokens.iter().any(|x| x == t),
                    (Check::ETag(e), Some(s)) => s.etag.as_deref() == Some(e.as_str()),
                };
                hit != c.not
            })
        })
    }
}

/// The header written back (canonical spacing, `W/` dropped): what
/// [`parse`] reads to the same value.
impl std::fmt::Display for IfHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut last: Option<&str> = None;
        for (i, l) in self.lists.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            if let Some(r) = l.resource.as_deref() {
                if last != Some(r) || i == 0 {
                    write!(f, "<{r}> ")?;
                }
                last = Some(r);
            }
            f.write_str("(")?;
            for (j, c) in l.conditions.iter().enumerate() {
                if j > 0 {
                    f.write_str(" ")?;
                }
                if c.not {
                    f.write_str("Not ")?;
                }
                match &c.check {
                    Check::Token(t) => write!(f, "<{t}>")?,
                    Check::ETag(e) => write!(f, "[\"{e}\"]")?,
                }
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(t: &str) -> Condition {
        Condition {
            not: false,
            check: Check::Token(t.into()),
        }
    }

    #[test]
    fn parses_the_rfc_examples() {
        let h = parse("(<urn:uuid:181d4fae-7d8c-11d0-a765-00a0c91e6bf2> [\"I am an ETag\"]) ([\"I am another ETag\"])").unwrap();
        assert_eq!(h.lists.len(), 2);
        assert_eq!(h.lists[0].resource, None);
        assert_eq!(
            h.lists[0].conditions,
            vec![
                tok("urn:uuid:181d4fae-7d8c-11d0-a765-00a0c91e6bf2"),
                Condition {
                    not: false,
                    check: Check::ETag("I am an ETag".into())
                }
            ]
        );
        let h = parse("(Not <urn:uuid:x> <urn:uuid:y>)").unwrap();
        assert!(h.lists[0].conditions[0].not && !h.lists[0].conditions[1].not);
        let h = parse(
            "<http://www.example.com/specs/> (<urn:uuid:a>) </a/b> (<urn:uuid:b>) (not [W/\"e\"])",
        )
        .unwrap();
        assert_eq!(h.resources(), ["http://www.example.com/specs/", "/a/b"]);
        assert_eq!(h.lists[2].resource.as_deref(), Some("/a/b"));
        assert_eq!(h.lists[2].conditions[0].check, Check::ETag("e".into()));
        assert_eq!(h.tokens(), ["urn:uuid:a", "urn:uuid:b"]);
        assert!(h.needs_etag(Some("/a/b")) && !h.needs_etag(None));
        assert_eq!(
            h.to_string(),
            "<http://www.example.com/specs/> (<urn:uuid:a>) </a/b> (<urn:uuid:b>) (Not [\"e\"])"
        );
        assert_eq!(parse(&h.to_string()).unwrap(), h);
    }

    #[test]
    fn refuses_malformed_headers() {
        for bad in [
            "",
            "()",
            "(<a>",
            "(<a> [\"x\")",
            "(<a>) <http://x/> (<b>)",
            "<http://x/> (<b>) (<c>) <http://y/>",
            "<http://x/>",
            "(Not)",
            "(<>)",
            "([x])",
            "junk",
            "(<a b>)",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(parse(&format!("({})", "<a> ".repeat(MAX_CONDITIONS + 1))).is_err());
        assert!(parse(&"(<a>)".repeat(MAX_LISTS + 1)).is_err());
        let tags: String = (0..=MAX_RESOURCES)
            .map(|i| format!("</r{i}> (<a>) "))
            .collect();
        assert!(parse(&tags).is_err());
        let tags: String = (0..MAX_RESOURCES)
            .map(|i| format!("</r{i}> (<a>) "))
            .collect();
        assert!(parse(&tags).is_ok());
        assert!(parse(&format!("(<{}>)", "a".repeat(MAX_LEN))).is_err());
    }

    #[test]
    fn evaluates_lists_as_or_of_ands() {
        let locked = ResourceState {
            etag: Some("e1".into()),
            tokens: vec!["urn:uuid:t".into()],
        };
        let eval = |h: &str| {
            parse(h).unwrap().evaluate(|r| match r {
                None => Some(&locked),
                Some("/other") => None,
                Some(_) => Some(&locked),
            })
        };
        assert!(eval("(<urn:uuid:t> [\"e1\"])"));
        assert!(!eval("(<urn:uuid:t> [\"e2\"])"));
        assert!(!eval("(<DAV:no-lock>)"));
        assert!(eval("(<DAV:no-lock>) (Not <DAV:no-lock>)"));
        assert!(eval("(<urn:uuid:tx>) (Not <DAV:no-lock>)"));
        assert!(!eval(
            "(<urn:uuid:t> [\"e2\"]) (Not <DAV:no-lock> [\"e2\"])"
        ));
        assert!(eval("(<urn:uuid:t> [\"e1\"]) (Not <DAV:no-lock> [\"e1\"])"));
        // An unmapped tagged resource has no state: only Not holds there.
        assert!(!eval("</other> (<urn:uuid:t>)"));
        assert!(eval("</other> (Not <urn:uuid:t>)"));
        assert!(eval("</other> (<urn:uuid:t>) </x> ([W/\"e1\"])"));
    }
}
