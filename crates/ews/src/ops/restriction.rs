//! Restrictions (MS-OXWSSRCH 2.2.4.31): the search expressions of
//! FindFolder and FindItem, read into a [`Filter`] over named fields
//! (`folder:DisplayName`, `item:Subject`, `message:IsRead`...). What can be
//! tested is decided by the caller's field getter: an expression over a
//! field it does not know is refused with `ErrorUnsupportedQueryFilter`
//! rather than answered wrongly.

use outpost_xml::Element;

use super::folders::EwsFolder;
use crate::soap::NS_T;

/// A restriction over fields named by their `FieldURI`.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    Compare {
        field: String,
        op: Cmp,
        value: String,
    },
    Contains {
        field: String,
        value: String,
        /// `ContainmentMode`: FullString, Prefixed, Substring...
        mode: String,
        ignore_case: bool,
    },
    Exists(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

const MAX_DEPTH: usize = 16;

/// The field an expression tests: a `FieldURI` by its name, an
/// `ExtendedFieldURI` as `ext:KEY` (see [`super::props::key`]).
fn field_of(el: &Element) -> Option<String> {
    el.child(NS_T, "FieldURI")
        .and_then(|f| f.attr("FieldURI"))
        .map(str::to_string)
        .or_else(|| {
            el.child(NS_T, "ExtendedFieldURI")
                .and_then(super::props::field_name)
        })
}

fn constant(el: &Element) -> Option<String> {
    el.child(NS_T, "FieldURIOrConstant")
        .and_then(|c| c.child(NS_T, "Constant"))
        .or_else(|| el.child(NS_T, "Constant"))
        .and_then(|c| c.attr("Value"))
        .map(str::to_string)
}

impl Filter {
    /// Reads the expression inside `m:Restriction`.
    pub fn read(restriction: &Element) -> Result<Filter, &'static str> {
        let inner = restriction
            .children
            .first()
            .ok_or("The Restriction is empty.")?;
        Self::expr(inner, 0)
    }

    fn expr(el: &Element, depth: usize) -> Result<Filter, &'static str> {
        if depth > MAX_DEPTH || el.name.ns != NS_T {
            return Err("The restriction is not one this server evaluates.");
        }
        let list = |el: &Element| -> Result<Vec<Filter>, &'static str> {
            el.children
                .iter()
                .map(|c| Self::expr(c, depth + 1))
                .collect()
        };
        let cmp = |op| -> Result<Filter, &'static str> {
            Ok(Filter::Compare {
                field: field_of(el).ok_or("Only FieldURI fields can be compared.")?,
                op,
                value: constant(el).ok_or("Only constants can be compared with.")?,
            })
        };
        match el.name.local.as_str() {
            "And" => Ok(Filter::And(list(el)?)),
            "Or" => Ok(Filter::Or(list(el)?)),
            "Not" => Ok(Filter::Not(Box::new(Self::expr(
                el.children.first().ok_or("Not is empty.")?,
                depth + 1,
            )?))),
            "IsEqualTo" => cmp(Cmp::Eq),
            "IsNotEqualTo" => cmp(Cmp::Ne),
            "IsLessThan" => cmp(Cmp::Lt),
            "IsLessThanOrEqualTo" => cmp(Cmp::Le),
            "IsGreaterThan" => cmp(Cmp::Gt),
            "IsGreaterThanOrEqualTo" => cmp(Cmp::Ge),
            "Exists" => Ok(Filter::Exists(
                field_of(el).ok_or("Only FieldURI fields can be tested.")?,
            )),
            "Contains" => Ok(Filter::Contains {
                field: field_of(el).ok_or("Only FieldURI fields can be searched.")?,
                value: constant(el).ok_or("Contains needs a Constant.")?,
                mode: el
                    .attr("ContainmentMode")
                    .unwrap_or("Substring")
                    .to_string(),
                ignore_case: el
                    .attr("ContainmentComparison")
                    .is_some_and(|c| c.contains("IgnoreCase")),
            }),
            _ => Err("The restriction is not one this server evaluates."),
        }
    }

    /// Every field the expression reads.
    pub fn fields(&self) -> Vec<&str> {
        match self {
            Filter::And(l) | Filter::Or(l) => l.iter().flat_map(|f| f.fields()).collect(),
            Filter::Not(f) => f.fields(),
            Filter::Compare { field, .. } | Filter::Contains { field, .. } => vec![field],
            Filter::Exists(f) => vec![f],
        }
    }

    /// Evaluates with `get` giving a field's value (`None`: the object has
    /// no such value). Numbers, booleans and xs:dateTime values compare
    /// as such, the rest as strings, case-insensitively for equality (as
    /// Exchange does).
    pub fn eval(&self, get: &dyn Fn(&str) -> Option<String>) -> bool {
        match self {
            Filter::And(l) => l.iter().all(|f| f.eval(get)),
            Filter::Or(l) => l.iter().any(|f| f.eval(get)),
            Filter::Not(f) => !f.eval(get),
            Filter::Exists(field) => get(field).is_some(),
            Filter::Compare { field, op, value } => {
                let Some(have) = get(field) else {
                    return *op == Cmp::Ne;
                };
                let ord = compare(&have, value);
                match op {
                    Cmp::Eq => ord == std::cmp::Ordering::Equal,
                    Cmp::Ne => ord != std::cmp::Ordering::Equal,
                    Cmp::Lt => ord == std::cmp::Ordering::Less,
                    Cmp::Le => ord != std::cmp::Ordering::Greater,
                    Cmp::Gt => ord == std::cmp::Ordering::Greater,
                    Cmp::Ge => ord != std::cmp::Ordering::Less,
                }
            }
            Filter::Contains {
                field,
                value,
                mode,
                ignore_case,
            } => {
                let Some(have) = get(field) else {
                    return false;
                };
                let (h, v) = if *ignore_case {
                    (have.to_lowercase(), value.to_lowercase())
                } else {
                    (have, value.clone())
                };
                match mode.as_str() {
                    "FullString" => h == v,
                    "Prefixed" => h.starts_with(&v),
                    "PrefixOnWords" => h.split_whitespace().any(|w| w.starts_with(&v)),
                    _ => h.contains(&v),
                }
            }
        }
    }
}

fn compare(a: &str, b: &str) -> std::cmp::Ordering {
    if let (Ok(x), Ok(y)) = (a.parse::<f64>(), b.parse::<f64>()) {
        return x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal);
    }
    if let (Some(x), Some(y)) = (super::oof::parse_time(a), super::oof::parse_time(b)) {
        return x.cmp(&y);
    }
    // xs:boolean also spells its values 1 and 0 (exchangelib does).
    let bool_of = |s: &str| match s.to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    };
    if let (Some(x), Some(y)) = (bool_of(a), bool_of(b)) {
        return x.cmp(&y);
    }
    a.to_lowercase().cmp(&b.to_lowercase())
}

/// A restriction over folders (FindFolder).
pub struct FolderFilter(Filter);

impl FolderFilter {
    pub fn read(restriction: &Element) -> Result<FolderFilter, &'static str> {
        let f = Filter::read(restriction)?;
        if f.fields().iter().any(|n| {
            !matches!(
                *n,
                "folder:DisplayName"
                    | "folder:FolderClass"
                    | "folder:DistinguishedFolderId"
                    | "ext:0x3613"
                    | "ext:0x3001"
            )
        }) {
            return Err("Folders can be searched by DisplayName and FolderClass only.");
        }
        Ok(FolderFilter(f))
    }

    pub fn matches(&self, folder: &EwsFolder) -> bool {
        self.0.eval(&|field| match field {
            "folder:DisplayName" => Some(folder.name.clone()),
            "folder:FolderClass" | "ext:0x3613" => folder.kind.folder_class().map(str::to_string),
            "ext:0x3001" => Some(folder.name.clone()),
            "folder:DistinguishedFolderId" => folder.distinguished.map(str::to_string),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(xml: &str) -> Element {
        outpost_xml::parse(
            format!(r#"<m:Restriction xmlns:m="m" xmlns:t="{NS_T}">{xml}</m:Restriction>"#)
                .as_bytes(),
            &Default::default(),
        )
        .unwrap()
    }

    #[test]
    fn evaluates() {
        let f = Filter::read(&r(r#"<t:And><t:IsEqualTo><t:FieldURI FieldURI="message:IsRead"/><t:FieldURIOrConstant><t:Constant Value="false"/></t:FieldURIOrConstant></t:IsEqualTo><t:Contains ContainmentMode="Substring" ContainmentComparison="IgnoreCase"><t:FieldURI FieldURI="item:Subject"/><t:Constant Value="HELLO"/></t:Contains></t:And>"#)).unwrap();
        let get = |read: &'static str, subj: &'static str| {
            move |f: &str| match f {
                "message:IsRead" => Some(read.to_string()),
                "item:Subject" => Some(subj.to_string()),
                _ => None,
            }
        };
        assert!(f.eval(&get("false", "well hello there")));
        assert!(!f.eval(&get("true", "well hello there")));
        assert!(!f.eval(&get("false", "bye")));
        let zero = Filter::read(&r(r#"<t:IsEqualTo><t:FieldURI FieldURI="message:IsRead"/><t:FieldURIOrConstant><t:Constant Value="0"/></t:FieldURIOrConstant></t:IsEqualTo>"#)).unwrap();
        assert!(zero.eval(&|_| Some("false".into())));
        assert!(!zero.eval(&|_| Some("true".into())));
        let t = Filter::read(&r(r#"<t:IsGreaterThan><t:FieldURI FieldURI="item:DateTimeReceived"/><t:FieldURIOrConstant><t:Constant Value="2026-01-01T00:00:00Z"/></t:FieldURIOrConstant></t:IsGreaterThan>"#)).unwrap();
        assert!(t.eval(&|_| Some("2026-06-01T00:00:00Z".into())));
        assert!(!t.eval(&|_| Some("2025-06-01T00:00:00Z".into())));
        assert!(Filter::read(&r("<t:Excludes/>")).is_err());
    }
}
