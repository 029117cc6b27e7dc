//! POX Autodiscover v1 (MS-OXDSCLI): the request parsed with the safe XML
//! reader, the `mobilesync` and `outlook` answers, and the error documents.

use outpost_xml::{escape_text, Limits};

use crate::{Settings, MAX_REQUEST_BYTES};

pub const NS_RESPONSE: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006";
pub const NS_OUTLOOK_REQ: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006";
pub const NS_OUTLOOK_RESP: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a";
pub const NS_MOBILE_REQ: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006";
pub const NS_MOBILE_RESP: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006";

/// What a POX request gets: always an XML document with status 200, as
/// Exchange answers (errors are inside the document).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoxAnswer {
    Xml(String),
}

fn limits() -> Limits {
    Limits {
        max_size: MAX_REQUEST_BYTES,
        max_depth: 8,
        max_elements: 32,
        max_attributes: 8,
        max_text: 1024,
    }
}

/// The request's (EMailAddress, AcceptableResponseSchema), or why not.
pub fn parse_request(body: &[u8]) -> Result<(String, String), &'static str> {
    let root = outpost_xml::parse(body, &limits()).map_err(|_| "Invalid Request")?;
    if root.name.local != "Autodiscover" {
        return Err("Invalid Request");
    }
    let ns = root.name.ns.clone();
    let req = root.child(&ns, "Request").ok_or("Invalid Request")?;
    let email = req
        .child(&ns, "EMailAddress")
        .map(|e| e.text.trim().to_string())
        .filter(|e| !e.is_empty())
        .ok_or("Invalid Request")?;
    let schema = req
        .child(&ns, "AcceptableResponseSchema")
        .map(|e| e.text.trim().to_string())
        .unwrap_or_default();
    Ok((email, schema))
}

/// The answer to a POX request body from a user called `name` who owns
/// `addresses`.
pub fn answer_pox(settings: &Settings, body: &[u8], name: &str, addresses: &[String]) -> PoxAnswer {
    let (email, schema) = match parse_request(body) {
        Ok(r) => r,
        Err(msg) => return PoxAnswer::Xml(error_document(600, msg)),
    };
    let own = addresses.iter().any(|a| a.eq_ignore_ascii_case(&email));
    match schema.as_str() {
        NS_MOBILE_RESP => {
            if !own {
                return PoxAnswer::Xml(mobile_error(&email));
            }
            PoxAnswer::Xml(mobilesync(settings, name, &email))
        }
        NS_OUTLOOK_RESP => {
            if !own {
                return PoxAnswer::Xml(outlook_error(500, "The e-mail address cannot be found."));
            }
            PoxAnswer::Xml(outlook(settings, name, &email))
        }
        _ => PoxAnswer::Xml(error_document(
            601,
            "Provider is not available for the AcceptableResponseSchema",
        )),
    }
}

const HEAD: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n";

/// The generic error document (responseschema/2006): 600 for a bad
/// request, 601 for an unknown response schema.
pub fn error_document(code: u16, message: &str) -> String {
    format!(
        "{HEAD}<Autodiscover xmlns=\"{NS_RESPONSE}\"><Response><Error Time=\"00:00:00\" Id=\"0\"><ErrorCode>{code}</ErrorCode><Message>{}</Message><DebugData /></Error></Response></Autodiscover>",
        escape_text(message)
    )
}

fn outlook_error(code: u16, message: &str) -> String {
    format!(
        "{HEAD}<Autodiscover xmlns=\"{NS_RESPONSE}\"><Response xmlns=\"{NS_OUTLOOK_RESP}\"><Error Time=\"00:00:00\" Id=\"0\"><ErrorCode>{code}</ErrorCode><Message>{}</Message><DebugData /></Error></Response></Autodiscover>",
        escape_text(message)
    )
}

fn mobile_error(email: &str) -> String {
    format!(
        "{HEAD}<Autodiscover xmlns=\"{NS_RESPONSE}\"><Response xmlns=\"{NS_MOBILE_RESP}\"><Culture>en:us</Culture><User><EMailAddress>{}</EMailAddress></User><Action><Error><Status>1</Status><Message>The e-mail address cannot be found.</Message><DebugData>MailUser</DebugData><ErrorCode>600</ErrorCode></Error></Action></Response></Autodiscover>",
        escape_text(email)
    )
}

fn mobilesync(settings: &Settings, name: &str, email: &str) -> String {
    format!(
        "{HEAD}<Autodiscover xmlns=\"{NS_RESPONSE}\"><Response xmlns=\"{NS_MOBILE_RESP}\"><Culture>en:us</Culture><User><DisplayName>{}</DisplayName><EMailAddress>{}</EMailAddress></User><Action><Settings><Server><Type>MobileSync</Type><Url>{}</Url><Name>{}</Name></Server></Settings></Action></Response></Autodiscover>",
        escape_text(name),
        escape_text(email),
        escape_text(&settings.activesync_url()),
        escape_text(&settings.activesync_url()),
    )
}

fn outlook(settings: &Settings, name: &str, email: &str) -> String {
    let host = escape_text(&settings.hostname);
    let ews = escape_text(&settings.ews_url());
    let eas = escape_text(&settings.activesync_url());
    let mut protocols = String::new();
    for kind in ["EXCH", "EXPR"] {
        protocols.push_str(&format!(
            "<Protocol><Type>{kind}</Type><Server>{host}</Server><ASUrl>{ews}</ASUrl><EwsUrl>{ews}</EwsUrl><EmwsUrl>{ews}</EmwsUrl><OOFUrl>{ews}</OOFUrl><OABUrl></OABUrl><UMUrl>{ews}</UMUrl><SSL>On</SSL><AuthPackage>Basic</AuthPackage><ServerExclusiveConnect>On</ServerExclusiveConnect></Protocol>"
        ));
    }
    protocols.push_str(&format!(
        "<Protocol><Type>WEB</Type><Internal><OWAUrl AuthenticationMethod=\"Basic\">{}/</OWAUrl><Protocol><Type>EXCH</Type><ASUrl>{ews}</ASUrl></Protocol></Internal><External><OWAUrl AuthenticationMethod=\"Basic\">{}/</OWAUrl><Protocol><Type>EXPR</Type><ASUrl>{ews}</ASUrl></Protocol></External></Protocol>",
        escape_text(&settings.public_url),
        escape_text(&settings.public_url),
    ));
    protocols.push_str(&format!(
        "<Protocol><Type>MobileSync</Type><Server>{eas}</Server></Protocol>"
    ));
    let mail = |kind: &str, e: &crate::MailEndpoint| {
        let (ssl, encryption) = if e.implicit_tls {
            ("on", "SSL")
        } else {
            ("off", "TLS")
        };
        format!(
            "<Protocol><Type>{kind}</Type><Server>{host}</Server><Port>{}</Port><LoginName>{}</LoginName><DomainRequired>off</DomainRequired><SPA>off</SPA><SSL>{ssl}</SSL><Encryption>{encryption}</Encryption><AuthRequired>on</AuthRequired></Protocol>",
            e.port,
            escape_text(email),
        )
    };
    if let Some(e) = &settings.imap {
        protocols.push_str(&mail("IMAP", e));
    }
    if let Some(e) = &settings.smtp {
        protocols.push_str(&mail("SMTP", e));
    }
    format!(
        "{HEAD}<Autodiscover xmlns=\"{NS_RESPONSE}\"><Response xmlns=\"{NS_OUTLOOK_RESP}\"><User><DisplayName>{}</DisplayName><AutoDiscoverSMTPAddress>{}</AutoDiscoverSMTPAddress></User><Account><AccountType>email</AccountType><Action>settings</Action><MicrosoftOnline>False</MicrosoftOnline>{protocols}</Account></Response></Autodiscover>",
        escape_text(name),
        escape_text(email),
    )
}
