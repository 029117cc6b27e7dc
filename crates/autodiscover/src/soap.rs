//! SOAP Autodiscover ([MS-OXWSADISC]): `GetUserSettings` and
//! `GetDomainSettings` at `/autodiscover/autodiscover.svc`.
//!
//! The request is read into a typed [`SoapRequest`] with the safe XML
//! reader (no DTD, no entities, bounded size and element count); the
//! answer is an element tree written by the project's serializer. What is
//! wrong with a user or a setting is said inside the answer, as Exchange
//! does: an address that is not the caller's own gets `InvalidUser` in its
//! `UserResponse`, a setting this server does not have is listed in
//! `UserSettingErrors` with `SettingIsNotAvailable`. Only a request that is
//! not a SOAP envelope, or names an operation this endpoint does not have,
//! gets a SOAP fault, with HTTP 500 as SOAP 1.1 §6.2 asks (SOAP 1.2 faults
//! too).

use http::StatusCode;
use outpost_xml::{Element, Limits, Name};

use crate::Settings;

pub const NS_SOAP11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const NS_SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";
pub const NS_AUTODISCOVER: &str = "http://schemas.microsoft.com/exchange/2010/Autodiscover";
pub const NS_WSA: &str = "http://www.w3.org/2005/08/addressing";
pub const NS_XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
const NS_XML: &str = "http://www.w3.org/XML/1998/namespace";

/// Largest SOAP request body read: 100 users and every setting fit.
pub const MAX_SOAP_REQUEST_BYTES: usize = 64 * 1024;
/// Users and domains answered in one request, as Exchange allows.
pub const MAX_USERS: usize = 100;

/// The EWS schema versions announced in `EwsSupportedSchemas`.
pub const EWS_SUPPORTED_SCHEMAS: &str =
    "Exchange2013, Exchange2013_SP1, Exchange2015, Exchange2016";
/// The version announced when the request names none (or one unknown).
pub const DEFAULT_SERVER_VERSION: &str = "Exchange2016";
/// `RequestedServerVersion` values that are echoed in `ServerVersionInfo`.
pub const KNOWN_SERVER_VERSIONS: &[&str] = &[
    "Exchange2010",
    "Exchange2010_SP1",
    "Exchange2010_SP2",
    "Exchange2013",
    "Exchange2013_SP1",
    "Exchange2015",
    "Exchange2016",
    "Exchange2019",
];
/// Major, minor, build, revision of the server (an Exchange 2016 CAS as
/// far as clients are concerned); `CasVersion` and `ExternalEwsVersion`.
pub const SERVER_BUILD: (u16, u16, u16, u16) = (15, 1, 0, 0);

/// The envelope version of a request, answered in kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoapVersion {
    V11,
    V12,
}

impl SoapVersion {
    fn ns(self) -> &'static str {
        match self {
            SoapVersion::V11 => NS_SOAP11,
            SoapVersion::V12 => NS_SOAP12,
        }
    }

    /// The HTTP `Content-Type` of an answer.
    pub fn content_type(self) -> &'static str {
        match self {
            SoapVersion::V11 => "text/xml; charset=utf-8",
            SoapVersion::V12 => "application/soap+xml; charset=utf-8",
        }
    }
}

/// A request that parsed as an envelope with a known operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoapRequest {
    pub version: SoapVersion,
    /// `RequestedServerVersion` of the header, trimmed, if present.
    pub requested_server_version: Option<String>,
    pub operation: Operation,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    GetUserSettings(Query),
    GetDomainSettings(Query),
    /// The operation is known but its `Request` is not usable (no users,
    /// no settings, too many users): answered with a Response-level
    /// `InvalidRequest`, not a fault.
    Invalid {
        domain: bool,
        message: &'static str,
    },
}

/// Who or what is asked about (mailboxes or domains) and which settings,
/// each once, in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub subjects: Vec<String>,
    pub settings: Vec<String>,
}

/// Why a request gets a fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub version: SoapVersion,
    /// The request named an operation this endpoint does not have.
    pub action_not_supported: bool,
    pub message: String,
}

fn limits() -> Limits {
    Limits {
        max_size: MAX_SOAP_REQUEST_BYTES,
        max_depth: 12,
        max_elements: 2 * MAX_USERS + 200,
        max_attributes: 16,
        max_text: 2048,
    }
}

/// Reads a request body.
pub fn parse(body: &[u8]) -> Result<SoapRequest, Fault> {
    let bad = |version, message: &str| Fault {
        version,
        action_not_supported: false,
        message: message.to_string(),
    };
    let root = outpost_xml::parse(body, &limits()).map_err(|e| {
        bad(
            SoapVersion::V11,
            &format!("The request is not valid XML: {e}"),
        )
    })?;
    let version = if root.is(NS_SOAP11, "Envelope") {
        SoapVersion::V11
    } else if root.is(NS_SOAP12, "Envelope") {
        SoapVersion::V12
    } else {
        return Err(bad(SoapVersion::V11, "The request is not a SOAP envelope"));
    };
    let ns = version.ns();
    let requested_server_version = root
        .child(ns, "Header")
        .and_then(|h| h.child(NS_AUTODISCOVER, "RequestedServerVersion"))
        .map(|v| v.text.trim().to_string());
    let Some(body) = root.child(ns, "Body") else {
        return Err(bad(version, "The SOAP envelope has no Body"));
    };
    let Some(message) = body.children.first() else {
        return Err(bad(version, "The SOAP Body is empty"));
    };
    let domain = if message.is(NS_AUTODISCOVER, "GetUserSettingsRequestMessage") {
        false
    } else if message.is(NS_AUTODISCOVER, "GetDomainSettingsRequestMessage") {
        true
    } else {
        return Err(Fault {
            version,
            action_not_supported: true,
            message: format!(
                "The operation {} is not supported here; use GetUserSettings or GetDomainSettings",
                message.name
            ),
        });
    };
    let operation = match query(message, domain) {
        Ok(q) if domain => Operation::GetDomainSettings(q),
        Ok(q) => Operation::GetUserSettings(q),
        Err(message) => Operation::Invalid { domain, message },
    };
    Ok(SoapRequest {
        version,
        requested_server_version,
        operation,
    })
}

fn query(message: &Element, domain: bool) -> Result<Query, &'static str> {
    let a = NS_AUTODISCOVER;
    let request = message
        .child(a, "Request")
        .ok_or("The request has no Request element")?;
    let mut subjects: Vec<String> = Vec::new();
    if domain {
        let domains = request
            .child(a, "Domains")
            .ok_or("The request has no Domains")?;
        for d in domains.children_named(a, "Domain") {
            subjects.push(d.text.trim().trim_end_matches('.').to_ascii_lowercase());
        }
    } else {
        let users = request
            .child(a, "Users")
            .ok_or("The request has no Users")?;
        for u in users.children_named(a, "User") {
            let mailbox = u.child(a, "Mailbox").map(|m| m.text.trim()).unwrap_or("");
            subjects.push(mailbox.to_string());
        }
    }
    if subjects.is_empty() || subjects.iter().any(|s| s.is_empty()) {
        return Err(if domain {
            "Every Domain must name a domain"
        } else {
            "Every User must have a Mailbox"
        });
    }
    if subjects.len() > MAX_USERS {
        return Err("A request may ask about 100 users or domains at most");
    }
    let mut settings: Vec<String> = Vec::new();
    if let Some(list) = request.child(a, "RequestedSettings") {
        for s in list.children_named(a, "Setting") {
            let s = s.text.trim();
            if !s.is_empty() && !settings.iter().any(|x| x == s) {
                settings.push(s.to_string());
            }
        }
    }
    if settings.is_empty() {
        return Err("The request must ask for at least one setting");
    }
    Ok(Query { subjects, settings })
}

/// A complete answer: status, content type and document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoapAnswer {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub body: String,
}

/// The caller of `GetUserSettings`, from the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller<'a> {
    pub principal_id: i64,
    pub display_name: &'a str,
    /// Every address of the caller, primary first.
    pub addresses: &'a [String],
}

/// The `ServerVersionInfo/Version` for a request: its
/// `RequestedServerVersion` when that is a known version.
pub fn server_version(requested: Option<&str>) -> &'static str {
    requested
        .and_then(|r| KNOWN_SERVER_VERSIONS.iter().find(|v| **v == r))
        .copied()
        .unwrap_or(DEFAULT_SERVER_VERSION)
}

/// `15.01.0000.000`, as Exchange writes a build.
pub fn build_string() -> String {
    let (a, b, c, d) = SERVER_BUILD;
    format!("{a:02}.{b:02}.{c:04}.{d:03}")
}

/// The legacy Exchange DN of a user (`UserDN`): stable for the principal.
pub fn legacy_dn(principal_id: i64, primary: &str) -> String {
    let local: String = primary
        .split('@')
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(32)
        .collect();
    format!(
        "/o=Outpost/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn={principal_id:x}-{local}"
    )
}

/// A setting's value: a string, or a list of protocol connections.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Text(String),
    Connections(Vec<(String, u16, &'static str)>),
}

/// What this server knows of `name` for the caller, or `None`.
fn user_setting(settings: &Settings, caller: &Caller, name: &str) -> Option<Value> {
    let primary = caller.addresses.first().map(String::as_str).unwrap_or("");
    let text = |s: &str| Some(Value::Text(s.to_string()));
    let connections = |e: &Option<crate::MailEndpoint>| {
        e.as_ref().map(|e| {
            Value::Connections(vec![(
                settings.hostname.clone(),
                e.port,
                if e.implicit_tls { "SSL" } else { "TLS" },
            )])
        })
    };
    match name {
        "UserDisplayName" => text(caller.display_name),
        "UserDN" => text(&legacy_dn(caller.principal_id, primary)),
        "AutoDiscoverSMTPAddress" => text(primary),
        "InternalEwsUrl" | "ExternalEwsUrl" => text(&settings.ews_url()),
        "InternalMailboxServer" | "ExternalMailboxServer" | "ActiveDirectoryServer" => {
            text(&settings.hostname)
        }
        "CasVersion" | "ExternalEwsVersion" => text(&build_string()),
        "EwsSupportedSchemas" => text(EWS_SUPPORTED_SCHEMAS),
        "ExternalMailboxServerRequiresSSL" => text("True"),
        "ExternalMailboxServerAuthenticationMethods" => text("Basic"),
        "InternalImap4Connections" | "ExternalImap4Connections" => connections(&settings.imap),
        "InternalPop3Connections" | "ExternalPop3Connections" => connections(&settings.pop3),
        "InternalSmtpConnections" | "ExternalSmtpConnections" => connections(&settings.smtp),
        _ => None,
    }
}

fn domain_setting(settings: &Settings, name: &str) -> Option<String> {
    match name {
        "ExternalEwsUrl" => Some(settings.ews_url()),
        "ExternalEwsVersion" => Some(build_string()),
        _ => None,
    }
}

fn el(local: &str) -> Element {
    Element::new(NS_AUTODISCOVER, local)
}

fn text_el(local: &str, text: &str) -> Element {
    el(local).with_text(text)
}

fn nil(local: &str) -> Element {
    let mut e = el(local);
    e.attributes.push((Name::new(NS_XSI, "nil"), "true".into()));
    e
}

fn typed(local: &str, xsi_type: &str) -> Element {
    let mut e = el(local);
    e.attributes
        .push((Name::new(NS_XSI, "type"), format!("a:{xsi_type}")));
    e
}

fn setting_error(code: &str, message: &str, name: &str) -> [Element; 3] {
    [
        text_el("ErrorCode", code),
        text_el("ErrorMessage", message),
        text_el("SettingName", name),
    ]
}

/// The answer to `GetUserSettings` from `caller`.
pub fn get_user_settings(
    settings: &Settings,
    request: &SoapRequest,
    query: &Query,
    caller: &Caller,
) -> SoapAnswer {
    let mut responses = el("UserResponses");
    for mailbox in &query.subjects {
        let own = caller
            .addresses
            .iter()
            .any(|a| a.eq_ignore_ascii_case(mailbox));
        let mut r = el("UserResponse");
        if !own {
            // The same answer whether the address exists or not.
            r.push(text_el("ErrorCode", "InvalidUser"));
            r.push(text_el("ErrorMessage", "Invalid user."));
            r.push(nil("RedirectTarget"));
            r.push(el("UserSettingErrors"));
            r.push(el("UserSettings"));
            responses.push(r);
            continue;
        }
        let mut errors = el("UserSettingErrors");
        let mut values = el("UserSettings");
        for name in &query.settings {
            match user_setting(settings, caller, name) {
                Some(Value::Text(v)) => values.push(
                    typed("UserSetting", "StringSetting")
                        .with(text_el("Name", name))
                        .with(text_el("Value", &v)),
                ),
                Some(Value::Connections(list)) => {
                    let mut conns = el("ProtocolConnections");
                    for (host, port, encryption) in list {
                        conns.push(
                            el("ProtocolConnection")
                                .with(text_el("EncryptionMethod", encryption))
                                .with(text_el("Hostname", &host))
                                .with(text_el("Port", &port.to_string())),
                        );
                    }
                    values.push(
                        typed("UserSetting", "ProtocolConnectionCollectionSetting")
                            .with(text_el("Name", name))
                            .with(conns),
                    );
                }
                None => {
                    errors.push(not_available("UserSettingError", name));
                }
            }
        }
        r.push(text_el("ErrorCode", "NoError"));
        r.push(text_el("ErrorMessage", "No error."));
        r.push(nil("RedirectTarget"));
        r.push(errors);
        r.push(values);
        responses.push(r);
    }
    let response = el("Response")
        .with(text_el("ErrorCode", "NoError"))
        .with(el("ErrorMessage"))
        .with(responses);
    envelope(request, "GetUserSettings", response)
}

/// A `UserSettingError`/`DomainSettingError`: a setting this server does
/// not have (answered, never a fault).
fn not_available(kind: &str, name: &str) -> Element {
    let mut e = el(kind);
    e.children.extend(setting_error(
        "SettingIsNotAvailable",
        "The setting is not available on this server.",
        name,
    ));
    e
}

/// The answer to `GetDomainSettings`; `hosted` says whether a domain is
/// one of this server's.
pub fn get_domain_settings(
    settings: &Settings,
    request: &SoapRequest,
    query: &Query,
    hosted: impl Fn(&str) -> bool,
) -> SoapAnswer {
    let mut responses = el("DomainResponses");
    for domain in &query.subjects {
        let mut r = el("DomainResponse");
        if !hosted(domain) {
            r.push(text_el("ErrorCode", "InvalidDomain"));
            r.push(text_el("ErrorMessage", "Invalid domain."));
            r.push(el("DomainSettingErrors"));
            r.push(el("DomainSettings"));
            r.push(nil("RedirectTarget"));
            responses.push(r);
            continue;
        }
        let mut errors = el("DomainSettingErrors");
        let mut values = el("DomainSettings");
        for name in &query.settings {
            match domain_setting(settings, name) {
                Some(v) => values.push(
                    typed("DomainSetting", "DomainStringSetting")
                        .with(text_el("Name", name))
                        .with(text_el("Value", &v)),
                ),
                None => {
                    errors.push(not_available("DomainSettingError", name));
                }
            }
        }
        r.push(text_el("ErrorCode", "NoError"));
        r.push(text_el("ErrorMessage", "No error."));
        r.push(errors);
        r.push(values);
        r.push(nil("RedirectTarget"));
        responses.push(r);
    }
    let response = el("Response")
        .with(text_el("ErrorCode", "NoError"))
        .with(el("ErrorMessage"))
        .with(responses);
    envelope(request, "GetDomainSettings", response)
}

/// The Response-level `InvalidRequest` answer of an operation whose
/// `Request` could not be used.
pub fn invalid_request(request: &SoapRequest, domain: bool, message: &str) -> SoapAnswer {
    let (op, list) = if domain {
        ("GetDomainSettings", "DomainResponses")
    } else {
        ("GetUserSettings", "UserResponses")
    };
    let response = el("Response")
        .with(text_el("ErrorCode", "InvalidRequest"))
        .with(text_el("ErrorMessage", message))
        .with(el(list));
    envelope(request, op, response)
}

fn envelope(request: &SoapRequest, op: &str, response: Element) -> SoapAnswer {
    let s = request.version.ns();
    let mut action = Element::new(NS_WSA, "Action").with_text(format!(
        "http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/{op}Response"
    ));
    action
        .attributes
        .push((Name::new(s, "mustUnderstand"), "1".into()));
    let (major, minor, build, revision) = SERVER_BUILD;
    let version_info = el("ServerVersionInfo")
        .with(text_el("MajorVersion", &major.to_string()))
        .with(text_el("MinorVersion", &minor.to_string()))
        .with(text_el("MajorBuildNumber", &build.to_string()))
        .with(text_el("MinorBuildNumber", &revision.to_string()))
        .with(text_el(
            "Version",
            server_version(request.requested_server_version.as_deref()),
        ));
    let root = Element::new(s, "Envelope")
        .with(Element::new(s, "Header").with(action).with(version_info))
        .with(Element::new(s, "Body").with(el(&format!("{op}ResponseMessage")).with(response)));
    SoapAnswer {
        status: StatusCode::OK,
        content_type: request.version.content_type(),
        body: outpost_xml::write(
            &root,
            &[
                (s, "s"),
                (NS_AUTODISCOVER, "a"),
                (NS_WSA, "wsa"),
                (NS_XSI, "i"),
            ],
        ),
    }
}

/// The fault answer (HTTP 500).
pub fn fault(f: &Fault) -> SoapAnswer {
    let s = f.version.ns();
    let fault = match f.version {
        SoapVersion::V11 => {
            let code = if f.action_not_supported {
                "wsa:ActionNotSupported"
            } else {
                "s:Client"
            };
            Element::new(s, "Fault")
                .with(Element::new("", "faultcode").with_text(code))
                .with(Element::new("", "faultstring").with_text(f.message.clone()))
        }
        SoapVersion::V12 => {
            let mut code =
                Element::new(s, "Code").with(Element::new(s, "Value").with_text("s:Sender"));
            if f.action_not_supported {
                code.push(
                    Element::new(s, "Subcode")
                        .with(Element::new(s, "Value").with_text("wsa:ActionNotSupported")),
                );
            }
            let mut text = Element::new(s, "Text").with_text(f.message.clone());
            text.attributes
                .push((Name::new(NS_XML, "lang"), "en-US".into()));
            Element::new(s, "Fault")
                .with(code)
                .with(Element::new(s, "Reason").with(text))
        }
    };
    let mut prefixes = vec![(s, "s"), (NS_WSA, "wsa")];
    if f.version == SoapVersion::V12 {
        prefixes.push((NS_XML, "xml"));
    }
    let root = Element::new(s, "Envelope").with(Element::new(s, "Body").with(fault));
    SoapAnswer {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        content_type: f.version.content_type(),
        body: outpost_xml::write(&root, &prefixes),
    }
}
