//! Extended (MAPI) properties: `t:ExtendedFieldURI` in shapes,
//! restrictions and answers. Clients built on the WebDAV-era Exchange
//! model (DavMail) ask for folders and items by property tag rather than
//! by EWS field; the values this server has are given under the same tags,
//! the rest are left out of the answer, as Exchange leaves out a property
//! an object does not have.

use outpost_xml::Element;

use crate::soap::NS_T;

/// The canonical key of an `ExtendedFieldURI`, e.g. `0x3613`,
/// `Common/0x8570` or `InternetHeaders/from`; `None` when it names none.
pub fn key(uri: &Element) -> Option<String> {
    let set = uri
        .attr("DistinguishedPropertySetId")
        .or_else(|| uri.attr("PropertySetId"));
    let tag = uri
        .attr("PropertyTag")
        .or_else(|| uri.attr("PropertyId"))
        .map(normal_tag);
    let name = uri.attr("PropertyName").map(|n| n.to_ascii_lowercase());
    match (set, tag, name) {
        (None, Some(t), _) => Some(t),
        (Some(s), Some(t), _) => Some(format!("{s}/{t}")),
        (Some(s), None, Some(n)) => Some(format!("{s}/{n}")),
        _ => None,
    }
}

/// `0x0E23`, `0xe23` and `3619` as one spelling: `0x0e23`.
fn normal_tag(t: &str) -> String {
    let t = t.trim();
    let n = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => t.parse::<u32>().ok(),
    };
    match n {
        Some(n) => format!("0x{n:04x}"),
        None => t.to_ascii_lowercase(),
    }
}

/// The field name restrictions use for an extended property: `ext:KEY`.
pub fn field_name(uri: &Element) -> Option<String> {
    key(uri).map(|k| format!("ext:{k}"))
}

/// The `ExtendedFieldURI`s a shape's `AdditionalProperties` asks for.
pub fn requested(shape: Option<&Element>) -> Vec<&Element> {
    shape
        .and_then(|s| s.child(NS_T, "AdditionalProperties"))
        .map(|a| {
            a.children
                .iter()
                .filter(|c| c.is(NS_T, "ExtendedFieldURI"))
                .collect()
        })
        .unwrap_or_default()
}

/// `<t:ExtendedProperty>` answering `uri` with `value`.
pub fn answer(uri: &Element, value: String) -> Element {
    let mut echo = Element::new(NS_T, "ExtendedFieldURI");
    echo.attributes = uri.attributes.clone();
    Element::new(NS_T, "ExtendedProperty")
        .with(echo)
        .with(Element::new(NS_T, "Value").with_text(value))
}

/// A value of an extended (MAPI) property: one, or several for the
/// multi-valued types (`StringArray`...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtValue {
    One(String),
    Many(Vec<String>),
}

impl ExtValue {
    /// As restrictions compare it: the values joined by commas.
    pub fn joined(self) -> String {
        match self {
            ExtValue::One(s) => s,
            ExtValue::Many(l) => l.join(","),
        }
    }
}

/// `<t:ExtendedProperty>` answering `uri` with `value` (`t:Values` for
/// several).
pub fn answer_value(uri: &Element, value: ExtValue) -> Element {
    match value {
        ExtValue::One(s) => answer(uri, s),
        ExtValue::Many(list) => {
            let mut echo = Element::new(NS_T, "ExtendedFieldURI");
            echo.attributes = uri.attributes.clone();
            let mut values = Element::new(NS_T, "Values");
            for x in list {
                values.push(Element::new(NS_T, "Value").with_text(x));
            }
            Element::new(NS_T, "ExtendedProperty")
                .with(echo)
                .with(values)
        }
    }
}

/// The answers for the requested properties that `value` knows.
pub fn answers(shape: Option<&Element>, value: &dyn Fn(&str) -> Option<String>) -> Vec<Element> {
    requested(shape)
        .into_iter()
        .filter_map(|uri| key(uri).and_then(|k| value(&k)).map(|v| answer(uri, v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(attrs: &[(&str, &str)]) -> Element {
        let mut e = Element::new(NS_T, "ExtendedFieldURI");
        for (k, v) in attrs {
            e = e.with_attr(k, *v);
        }
        e
    }

    #[test]
    fn keys() {
        assert_eq!(
            key(&uri(&[
                ("PropertyTag", "0x0E23"),
                ("PropertyType", "Integer")
            ]))
            .as_deref(),
            Some("0x0e23")
        );
        assert_eq!(
            key(&uri(&[("PropertyTag", "3619")])).as_deref(),
            Some("0x0e23")
        );
        assert_eq!(
            key(&uri(&[
                ("DistinguishedPropertySetId", "Common"),
                ("PropertyId", "34160")
            ]))
            .as_deref(),
            Some("Common/0x8570")
        );
        assert_eq!(
            key(&uri(&[
                ("DistinguishedPropertySetId", "InternetHeaders"),
                ("PropertyName", "From")
            ]))
            .as_deref(),
            Some("InternetHeaders/from")
        );
        assert_eq!(key(&uri(&[])), None);
    }
}
