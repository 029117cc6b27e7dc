//! The SOAP envelope of EWS: reading a request into a [`Request`] (the
//! header's `RequestServerVersion`, `TimeZoneContext` and impersonation,
//! and the one operation element of the body), and writing answers with
//! `ServerVersionInfo` in the header, as every Exchange answer has it.
//!
//! Faults go out inside HTTP 200. SOAP 1.1 (§6.2) asks for 500, but
//! Outlook for Windows takes a 500 from EWS as a failed login and asks for
//! the password again and again (gromox issue #261); exchangelib reads a
//! fault in a 200 the same way as in a 500.

use outpost_xml::{Element, Limits, XmlError};

pub const NS_SOAP: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const NS_SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";
/// `m:` — the operations and their response messages.
pub const NS_M: &str = "http://schemas.microsoft.com/exchange/services/2006/messages";
/// `t:` — the types (folders, items, ids...).
pub const NS_T: &str = "http://schemas.microsoft.com/exchange/services/2006/types";
/// `e:` — the error detail of a fault.
pub const NS_E: &str = "http://schemas.microsoft.com/exchange/services/2006/errors";
pub const NS_XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// The schema versions a request may name; the answer echoes the one
/// asked for. Exchange2013 up to Exchange2016 behaviour is what this
/// server implements; older names are accepted and answered the same way
/// (clients that name them only use what those versions had).
pub const KNOWN_VERSIONS: &[&str] = &[
    "Exchange2007",
    "Exchange2007_SP1",
    "Exchange2010",
    "Exchange2010_SP1",
    "Exchange2010_SP2",
    "Exchange2013",
    "Exchange2013_SP1",
    "Exchange2015",
    "Exchange2016",
    "Exchange2019",
];
/// What a request without `RequestServerVersion` gets (Exchange answers
/// those as its oldest schema; we answer as the newest we implement).
pub const DEFAULT_VERSION: &str = "Exchange2016";
/// The build in `ServerVersionInfo`: an Exchange 2016 server, as the
/// Autodiscover answers say (`outpost_autodiscover`).
pub const BUILD: (u16, u16, u16, u16) = (15, 1, 2507, 6);

/// A request that is an EWS envelope with one operation.
#[derive(Debug, Clone)]
pub struct Request {
    /// `RequestServerVersion/@Version`, or [`DEFAULT_VERSION`].
    pub version: String,
    /// `TimeZoneContext/TimeZoneDefinition/@Id` (a Windows zone id).
    pub time_zone: Option<String>,
    /// The address in `ExchangeImpersonation`, if any.
    pub impersonate: Option<String>,
    /// The body's operation element, e.g. `{m}GetFolder`.
    pub operation: Element,
}

/// Why a request is answered with a fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The EWS response code in the fault's detail
    /// (`ErrorSchemaValidation`, `ErrorInvalidRequest`, ...).
    pub code: &'static str,
    pub message: String,
}

impl Fault {
    pub fn new(code: &'static str, message: impl Into<String>) -> Fault {
        Fault {
            code,
            message: message.into(),
        }
    }
}

/// The reader's limits for an EWS request: big enough for a CreateItem
/// with a whole message (MimeContent) or attachments, base64 in text.
pub fn limits(max_body: usize) -> Limits {
    Limits {
        max_size: max_body,
        max_depth: 48,
        max_elements: 50_000,
        max_attributes: 16,
        max_text: max_body,
    }
}

/// Reads an envelope.
pub fn parse(body: &[u8], limits: &Limits) -> Result<Request, Fault> {
    let root = outpost_xml::parse(body, limits).map_err(|e| match e {
        XmlError::TooLarge { .. } => Fault::new("ErrorRequestTooLarge", e.to_string()),
        _ => Fault::new("ErrorSchemaValidation", e.to_string()),
    })?;
    if root.is(NS_SOAP12, "Envelope") {
        return Err(Fault::new(
            "ErrorSchemaValidation",
            "EWS speaks SOAP 1.1: the envelope must be in the namespace http://schemas.xmlsoap.org/soap/envelope/",
        ));
    }
    if !root.is(NS_SOAP, "Envelope") {
        return Err(Fault::new(
            "ErrorSchemaValidation",
            "The request is not a SOAP envelope.",
        ));
    }
    let header = root.child(NS_SOAP, "Header");
    let mut version = DEFAULT_VERSION.to_string();
    let mut time_zone = None;
    let mut impersonate = None;
    if let Some(h) = header {
        if let Some(v) = h.child(NS_T, "RequestServerVersion") {
            let asked = v.attr("Version").unwrap_or("").trim();
            if !KNOWN_VERSIONS.contains(&asked) {
                return Err(Fault::new(
                    "ErrorInvalidServerVersion",
                    format!("The RequestServerVersion {asked:?} is not one this server knows."),
                ));
            }
            version = asked.to_string();
        }
        time_zone = h
            .child(NS_T, "TimeZoneContext")
            .and_then(|c| c.child(NS_T, "TimeZoneDefinition"))
            .and_then(|d| d.attr("Id"))
            .map(str::to_string);
        impersonate = h
            .child(NS_T, "ExchangeImpersonation")
            .and_then(|i| i.child(NS_T, "ConnectingSID"))
            .and_then(|s| {
                s.child(NS_T, "PrimarySmtpAddress")
                    .or_else(|| s.child(NS_T, "SmtpAddress"))
                    .or_else(|| s.child(NS_T, "PrincipalName"))
            })
            .map(|e| e.text.trim().to_string());
    }
    let body = root
        .child(NS_SOAP, "Body")
        .ok_or_else(|| Fault::new("ErrorSchemaValidation", "The SOAP envelope has no Body."))?;
    let mut ops = body.children.iter();
    let operation = ops
        .next()
        .ok_or_else(|| Fault::new("ErrorInvalidRequest", "The SOAP Body names no operation."))?;
    if ops.next().is_some() {
        return Err(Fault::new(
            "ErrorSchemaValidation",
            "The SOAP Body holds more than one operation.",
        ));
    }
    Ok(Request {
        version,
        time_zone,
        impersonate,
        operation: operation.clone(),
    })
}

const PREFIXES: &[(&str, &str)] = &[(NS_SOAP, "s"), (NS_M, "m"), (NS_T, "t"), (NS_XSI, "xsi")];

fn server_version_info(version: &str) -> Element {
    let (major, minor, build, rev) = BUILD;
    Element::new(NS_T, "ServerVersionInfo")
        .with_attr("MajorVersion", major.to_string())
        .with_attr("MinorVersion", minor.to_string())
        .with_attr("MajorBuildNumber", build.to_string())
        .with_attr("MinorBuildNumber", rev.to_string())
        .with_attr("Version", version)
}

/// The envelope of an answer: `ServerVersionInfo` for `version` in the
/// header, `body` in the body.
pub fn envelope(version: &str, body: Element) -> String {
    let env = Element::new(NS_SOAP, "Envelope")
        .with(Element::new(NS_SOAP, "Header").with(server_version_info(version)))
        .with(Element::new(NS_SOAP, "Body").with(body));
    outpost_xml::write(&env, PREFIXES)
}

/// A fault envelope: `faultcode` and `faultstring` as SOAP 1.1 has them,
/// the EWS code and message in `detail` where exchangelib and Outlook
/// read them.
pub fn fault(version: &str, f: &Fault) -> String {
    let client_side = !matches!(f.code, "ErrorInternalServerError" | "ErrorServerBusy");
    let fault = Element::new(NS_SOAP, "Fault")
        .with(Element::new("", "faultcode").with_text(if client_side {
            "s:Client"
        } else {
            "s:Server"
        }))
        .with(Element::new("", "faultstring").with_text(f.message.clone()))
        .with(
            Element::new("", "detail")
                .with(Element::new(NS_E, "ResponseCode").with_text(f.code))
                .with(Element::new(NS_E, "Message").with_text(f.message.clone())),
        );
    let env = Element::new(NS_SOAP, "Envelope")
        .with(Element::new(NS_SOAP, "Header").with(server_version_info(version)))
        .with(Element::new(NS_SOAP, "Body").with(fault));
    outpost_xml::write(&env, &[(NS_SOAP, "s"), (NS_E, "e"), (NS_T, "t")])
}

/// `<m:{name}ResponseMessage ResponseClass="Success">` with
/// `ResponseCode` `NoError`; the caller appends the payload.
pub fn success(name: &str) -> Element {
    Element::new(NS_M, &format!("{name}ResponseMessage"))
        .with_attr("ResponseClass", "Success")
        .with(Element::new(NS_M, "ResponseCode").with_text("NoError"))
}

/// `<m:{name}ResponseMessage ResponseClass="Error">` with the text and
/// the code.
pub fn error(name: &str, code: &str, text: impl Into<String>) -> Element {
    Element::new(NS_M, &format!("{name}ResponseMessage"))
        .with_attr("ResponseClass", "Error")
        .with(Element::new(NS_M, "MessageText").with_text(text))
        .with(Element::new(NS_M, "ResponseCode").with_text(code))
        .with(Element::new(NS_M, "DescriptiveLinkKey").with_text("0"))
}

/// An error message of SyncFolderItems/SyncFolderHierarchy. exchangelib
/// 5.6 reads `SyncState` and the `last_in_range` element of every message
/// before it looks at the code, and fails on a message without them; they
/// are given (empty, true) so that the client sees the error itself.
pub fn sync_error(name: &str, last_in_range: &str, code: &str, text: impl Into<String>) -> Element {
    error(name, code, text)
        .with(Element::new(NS_M, "SyncState"))
        .with(Element::new(NS_M, last_in_range).with_text("true"))
}

/// `<m:{name}Response><m:ResponseMessages>…</m:ResponseMessages></m:{name}Response>`.
pub fn response(name: &str, messages: Vec<Element>) -> Element {
    let mut list = Element::new(NS_M, "ResponseMessages");
    list.children = messages;
    Element::new(NS_M, &format!("{name}Response")).with(list)
}

/// A `t:` element with text.
pub fn t(local: &str, text: impl Into<String>) -> Element {
    Element::new(NS_T, local).with_text(text)
}

/// A `m:` element with text.
pub fn m(local: &str, text: impl Into<String>) -> Element {
    Element::new(NS_M, local).with_text(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(header: &str, body: &str) -> String {
        format!(
            r#"<?xml version="1.0"?><s:Envelope xmlns:s="{NS_SOAP}" xmlns:m="{NS_M}" xmlns:t="{NS_T}"><s:Header>{header}</s:Header><s:Body>{body}</s:Body></s:Envelope>"#
        )
    }

    #[test]
    fn reads_version_zone_and_operation() {
        let r = parse(
            env(
                r#"<t:RequestServerVersion Version="Exchange2013_SP1"/><t:TimeZoneContext><t:TimeZoneDefinition Id="W. Europe Standard Time"/></t:TimeZoneContext>"#,
                r#"<m:GetFolder/>"#,
            )
            .as_bytes(),
            &limits(1 << 20),
        )
        .unwrap();
        assert_eq!(r.version, "Exchange2013_SP1");
        assert_eq!(r.time_zone.as_deref(), Some("W. Europe Standard Time"));
        assert!(r.operation.is(NS_M, "GetFolder"));
    }

    #[test]
    fn refuses_what_is_not_an_ews_request() {
        let l = limits(1 << 20);
        assert_eq!(
            parse(env("", "").as_bytes(), &l).unwrap_err().code,
            "ErrorInvalidRequest"
        );
        assert_eq!(
            parse(b"<a/>", &l).unwrap_err().code,
            "ErrorSchemaValidation"
        );
        assert_eq!(
            parse(
                env(
                    r#"<t:RequestServerVersion Version="Exchange1999"/>"#,
                    "<m:X/>"
                )
                .as_bytes(),
                &l
            )
            .unwrap_err()
            .code,
            "ErrorInvalidServerVersion"
        );
        let bomb = format!(
            r#"<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xxxxxxxxxx"><!ENTITY y "&x;&x;&x;&x;">]>{}"#,
            env("", "<m:GetFolder>&y;</m:GetFolder>")
        );
        assert_eq!(
            parse(bomb.as_bytes(), &l).unwrap_err().code,
            "ErrorSchemaValidation"
        );
        assert_eq!(
            parse(env("", "<m:A/>").as_bytes(), &limits(10))
                .unwrap_err()
                .code,
            "ErrorRequestTooLarge"
        );
    }

    #[test]
    fn answers_carry_server_version_info() {
        let out = envelope(
            "Exchange2016",
            response("GetFolder", vec![success("GetFolder")]),
        );
        assert!(out.contains(r#"<t:ServerVersionInfo MajorVersion="15" MinorVersion="1""#));
        assert!(out.contains(r#"Version="Exchange2016""#));
        assert!(out.contains("<m:ResponseCode>NoError</m:ResponseCode>"));
        let f = fault(
            "Exchange2016",
            &Fault::new("ErrorInvalidRequest", "a <b> & c"),
        );
        assert!(f.contains("<e:ResponseCode>ErrorInvalidRequest</e:ResponseCode>"));
        assert!(f.contains("a &lt;b&gt; &amp; c"));
        outpost_xml::parse(f.as_bytes(), &Limits::default()).unwrap();
    }
}
