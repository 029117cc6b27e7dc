//! Mozilla autoconfig (Thunderbird and the mail apps that read it): the
//! `clientConfig` version 1.1 document served at
//! `/.well-known/autoconfig/mail/config-v1.1.xml` and
//! `/mail/config-v1.1.xml` (the path Thunderbird asks on
//! `http://autoconfig.DOMAIN/`), without a login: it names this server's
//! listeners, nothing about users.
//!
//! `emailProvider` lists the IMAP (implicit TLS preferred, else STARTTLS),
//! POP3 and submission listeners, login `%EMAILADDRESS%` with
//! `password-cleartext` (over TLS); `addressBook` and `calendar` point
//! CardDAV and CalDAV clients at `/dav/`, where `current-user-principal`
//! leads to the user's homes.

use outpost_xml::Element;

use crate::{MailEndpoint, Settings};

/// The DAV root announced to CalDAV/CardDAV clients (it answers
/// `current-user-principal`; see docs/dav.md).
pub const DAV_ROOT: &str = "/dav/";

fn el(name: &str) -> Element {
    Element::new("", name)
}

fn text(name: &str, value: &str) -> Element {
    el(name).with_text(value)
}

fn server(kind: &str, tag: &str, host: &str, e: &MailEndpoint) -> Element {
    el(tag)
        .with_attr("type", kind)
        .with(text("hostname", host))
        .with(text("port", &e.port.to_string()))
        .with(text(
            "socketType",
            if e.implicit_tls { "SSL" } else { "STARTTLS" },
        ))
        .with(text("authentication", "password-cleartext"))
        .with(text("username", "%EMAILADDRESS%"))
}

fn dav(tag: &str, kind: &str, url: &str) -> Element {
    el(tag)
        .with_attr("type", kind)
        .with(text("username", "%EMAILADDRESS%"))
        .with(text("authentication", "http-basic"))
        .with(text("serverURL", url))
}

/// The document for the provider `id` (a hosted domain) serving `domains`.
pub fn client_config(settings: &Settings, id: &str, domains: &[String]) -> String {
    let host = settings.hostname.as_str();
    let mut provider = el("emailProvider").with_attr("id", id);
    for d in domains {
        provider.push(text("domain", d));
    }
    provider.push(text("displayName", id));
    provider.push(text("displayShortName", id.split('.').next().unwrap_or(id)));
    if let Some(e) = &settings.imap {
        provider.push(server("imap", "incomingServer", host, e));
    }
    if let Some(e) = &settings.pop3 {
        provider.push(server("pop3", "incomingServer", host, e));
    }
    if let Some(e) = &settings.smtp {
        provider.push(server("smtp", "outgoingServer", host, e));
    }
    let dav_url = format!("{}{DAV_ROOT}", settings.public_url);
    let root = el("clientConfig")
        .with_attr("version", "1.1")
        .with(provider)
        .with(dav("addressBook", "carddav", &dav_url))
        .with(dav("calendar", "caldav", &dav_url));
    outpost_xml::write(&root, &[])
}

/// The domain of an address (lower case), if it has one.
pub fn domain_of(address: &str) -> Option<String> {
    let (local, domain) = address.trim().rsplit_once('@')?;
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    (!local.is_empty() && !domain.is_empty()).then_some(domain)
}

/// The domain a request is about: the `emailaddress` query parameter's,
/// else the `autoconfig.DOMAIN` the client asked for (`Host`); `None` when
/// it names neither.
pub fn asked_domain(email: Option<&str>, host: Option<&str>) -> Option<String> {
    if let Some(e) = email {
        return domain_of(e);
    }
    let host = host?.trim();
    let host = match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    let d = host.to_ascii_lowercase();
    d.strip_prefix("autoconfig.")
        .map(|d| d.trim_end_matches('.').to_string())
}
