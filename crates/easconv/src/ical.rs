//! A small, bounded content-line model of iCalendar (RFC 5545 section 3.1):
//! enough to read the properties ActiveSync carries and to write back an
//! object with every other property untouched.

use crate::{Error, MAX_INPUT, MAX_LINES};

/// One property: name (upper case), parameters, raw (still escaped) value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prop {
    /// A vCard group ("item1" of "item1.TEL"), empty when none.
    pub group: String,
    pub name: String,
    pub params: Vec<(String, String)>,
    pub value: String,
}

impl Prop {
    pub fn new(name: &str, value: impl Into<String>) -> Prop {
        Prop {
            group: String::new(),
            name: name.to_string(),
            params: Vec::new(),
            value: value.into(),
        }
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn with_param(mut self, name: &str, value: impl Into<String>) -> Prop {
        self.params.push((name.to_string(), value.into()));
        self
    }

    /// The value as text, unescaped.
    pub fn text(&self) -> String {
        unescape(&self.value)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Component {
    pub name: String,
    pub props: Vec<Prop>,
    pub subs: Vec<Component>,
}

impl Component {
    pub fn new(name: &str) -> Component {
        Component {
            name: name.to_string(),
            ..Component::default()
        }
    }

    pub fn prop(&self, name: &str) -> Option<&Prop> {
        self.props.iter().find(|p| p.name == name)
    }

    pub fn props<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Prop> + 'a {
        self.props.iter().filter(move |p| p.name == name)
    }

    pub fn remove(&mut self, name: &str) {
        self.props.retain(|p| p.name != name);
    }

    pub fn set(&mut self, p: Prop) {
        self.remove(&p.name.clone());
        self.props.push(p);
    }

    pub fn write(&self, out: &mut String) {
        out.push_str("BEGIN:");
        out.push_str(&self.name);
        out.push_str("\r\n");
        for p in &self.props {
            let mut line = if p.group.is_empty() {
                p.name.clone()
            } else {
                format!("{}.{}", p.group, p.name)
            };
            for (n, v) in &p.params {
                // No control characters in parameters, ever (a CN with a
                // line break would start a property of its own).
                let v: String = v.chars().filter(|c| !c.is_control()).collect();
                let v = &v;
                line.push(';');
                line.push_str(n);
                line.push('=');
                if v.contains([':', ';']) || (v.contains(',') && n != "TYPE") {
                    line.push('"');
                    line.push_str(&v.replace('"', ""));
                    line.push('"');
                } else {
                    line.push_str(v);
                }
            }
            line.push(':');
            // Likewise a raw line break in a value (an address from a
            // client): written escaped, never as a new content line.
            for c in p.value.chars() {
                match c {
                    '\n' => line.push_str("\\n"),
                    c if c.is_control() && c != '\t' => {}
                    c => line.push(c),
                }
            }
            fold(&line, out);
        }
        for s in &self.subs {
            s.write(out);
        }
        out.push_str("END:");
        out.push_str(&self.name);
        out.push_str("\r\n");
    }
}

fn fold(line: &str, out: &mut String) {
    let mut n = 0;
    for c in line.chars() {
        if n + c.len_utf8() > 75 {
            out.push_str("\r\n ");
            n = 1;
        }
        out.push(c);
        n += c.len_utf8();
    }
    out.push_str("\r\n");
}

pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            ';' => o.push_str("\\;"),
            ',' => o.push_str("\\,"),
            '\n' => o.push_str("\\n"),
            '\r' => {}
            c => o.push(c),
        }
    }
    o
}

pub fn unescape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('n') | Some('N') => o.push('\n'),
                Some(c) => o.push(c),
                None => {}
            }
        } else {
            o.push(c);
        }
    }
    o
}

fn parse_line(line: &str) -> Result<Prop, Error> {
    // Name, then parameters until the first ':' outside quotes.
    let mut in_q = false;
    let mut colon = None;
    for (i, c) in line.char_indices() {
        match c {
            '"' => in_q = !in_q,
            ':' if !in_q => {
                colon = Some(i);
                break;
            }
            _ => {}
        }
    }
    let colon = colon.ok_or_else(|| Error::Invalid("content line without ':'".into()))?;
    let (head, value) = (&line[..colon], &line[colon + 1..]);
    let mut parts = Vec::new();
    let mut cur = String::new();
    in_q = false;
    for c in head.chars() {
        match c {
            '"' => in_q = !in_q,
            ';' if !in_q => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    parts.push(cur);
    let (group, name) = match parts[0].split_once('.') {
        Some((g, n)) => (g.to_string(), n.to_ascii_uppercase()),
        None => (String::new(), parts[0].to_ascii_uppercase()),
    };
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(Error::Invalid(format!("bad property name {name:?}")));
    }
    let mut params = Vec::new();
    for p in &parts[1..] {
        let (n, v) = p.split_once('=').unwrap_or((p, ""));
        params.push((n.to_ascii_uppercase(), v.to_string()));
    }
    Ok(Prop {
        group,
        name,
        params,
        value: value.to_string(),
    })
}

/// Parses one object (a VCALENDAR or a VCARD) into its component tree.
pub fn parse(input: &str) -> Result<Component, Error> {
    if input.len() > MAX_INPUT {
        return Err(Error::TooLarge("object"));
    }
    let mut lines: Vec<String> = Vec::new();
    for raw in input.split('\n') {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if let Some(cont) = raw.strip_prefix([' ', '\t']) {
            match lines.last_mut() {
                Some(l) => l.push_str(cont),
                None => return Err(Error::Invalid("continuation first".into())),
            }
        } else if !raw.is_empty() {
            if lines.len() >= MAX_LINES {
                return Err(Error::TooLarge("lines"));
            }
            lines.push(raw.to_string());
        }
    }
    let mut stack: Vec<Component> = Vec::new();
    let mut root = None;
    for l in &lines {
        let p = parse_line(l)?;
        match p.name.as_str() {
            "BEGIN" => {
                if stack.len() >= 8 {
                    return Err(Error::TooLarge("nesting"));
                }
                stack.push(Component::new(&p.value.to_ascii_uppercase()));
            }
            "END" => {
                let c = stack
                    .pop()
                    .ok_or_else(|| Error::Invalid("END without BEGIN".into()))?;
                if !c.name.eq_ignore_ascii_case(&p.value) {
                    return Err(Error::Invalid("mismatched END".into()));
                }
                match stack.last_mut() {
                    Some(parent) => parent.subs.push(c),
                    None => {
                        root = Some(c);
                        break;
                    }
                }
            }
            _ => match stack.last_mut() {
                Some(c) => c.props.push(p),
                None => return Err(Error::Invalid("property outside a component".into())),
            },
        }
    }
    root.ok_or_else(|| Error::Invalid("no complete component".into()))
}
