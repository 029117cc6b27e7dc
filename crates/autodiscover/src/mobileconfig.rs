//! The Apple configuration profile (`.mobileconfig`) for iOS, iPadOS and
//! macOS: one Exchange ActiveSync account (mail, calendars, contacts,
//! tasks), plus CalDAV and CardDAV accounts for the apps that use those.
//!
//! The profile holds no password (the device asks for it when the profile
//! is installed) and is not signed: a device shows it as "Unsigned",
//! which is the honest label for a profile straight from the server that
//! the user fetched over HTTPS after logging in.
//!
//! Payload UUIDs are derived from the host name, the login and the payload
//! kind (SHA-256, RFC 9562 version 8), so installing the profile again
//! replaces the old one instead of adding a second account, and two users
//! on one device get different profiles.

use outpost_xml::Element;
use sha2::{Digest, Sha256};

use crate::Settings;

/// The media type iOS installs profiles from.
pub const CONTENT_TYPE: &str = "application/x-apple-aspen-config";

const DOCTYPE: &str = "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n";

/// A plist value.
enum V {
    S(String),
    I(u64),
    B(bool),
    D(Vec<(&'static str, V)>),
    A(Vec<V>),
}

fn s(v: impl Into<String>) -> V {
    V::S(v.into())
}

fn element(v: &V) -> Element {
    match v {
        V::S(t) => Element::new("", "string").with_text(t.clone()),
        V::I(n) => Element::new("", "integer").with_text(n.to_string()),
        V::B(true) => Element::new("", "true"),
        V::B(false) => Element::new("", "false"),
        V::D(entries) => {
            let mut d = Element::new("", "dict");
            for (k, v) in entries {
                d.push(Element::new("", "key").with_text(*k));
                d.push(element(v));
            }
            d
        }
        V::A(items) => {
            let mut a = Element::new("", "array");
            for v in items {
                a.push(element(v));
            }
            a
        }
    }
}

/// A version 8 UUID from SHA-256 of the parts, upper case as Apple writes
/// them.
pub fn derived_uuid(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update(b"outpost mobileconfig");
    for p in parts {
        h.update([0u8]);
        h.update(p.as_bytes());
    }
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02X}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// `mail.example.org` → `org.example.mail`, for payload identifiers.
fn reverse_dns(host: &str) -> String {
    let labels: Vec<String> = host
        .split('.')
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect()
        })
        .collect();
    labels.into_iter().rev().collect::<Vec<_>>().join(".")
}

/// A path segment percent-encoded (letters, digits and `@._-~` kept), as
/// the DAV paths accept it.
fn segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"@._-~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The https port of the public URL (443 when it names none).
fn https_port(settings: &Settings) -> u16 {
    settings
        .public_url
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or(443)
}

/// The profile for `login` (the user name the device logs in with),
/// setting up the address `email`.
pub fn profile(settings: &Settings, login: &str, email: &str) -> String {
    let host = settings.hostname.as_str();
    let port = https_port(settings);
    let login_key = login.to_ascii_lowercase();
    let uuid = |kind: &str| derived_uuid(&[host, &login_key, kind]);
    let id = format!(
        "{}.outpost.{}",
        reverse_dns(host),
        &uuid("profile")[..8].to_ascii_lowercase()
    );
    // Exchange takes a host, with the port when it is not 443.
    let eas_host = if port == 443 {
        host.to_string()
    } else {
        format!("{host}:{port}")
    };
    let principal = format!("/dav/principals/users/{}/", segment(login));
    let common = |kind: &'static str, what: &str, ptype: &str| {
        vec![
            ("PayloadType", s(ptype)),
            ("PayloadVersion", V::I(1)),
            ("PayloadIdentifier", s(format!("{id}.{kind}"))),
            ("PayloadUUID", s(uuid(kind))),
            ("PayloadDisplayName", s(what)),
            (
                "PayloadDescription",
                s(format!("{what} for {email} on {host}")),
            ),
        ]
    };
    let mut eas = vec![
        ("EmailAddress", s(email)),
        ("Host", s(eas_host)),
        ("SSL", V::B(true)),
        ("UserName", s(login)),
    ];
    eas.extend(common(
        "eas",
        "Exchange ActiveSync",
        "com.apple.eas.account",
    ));
    let mut caldav = vec![
        (
            "CalDAVAccountDescription",
            s(format!("Calendars ({email})")),
        ),
        ("CalDAVHostName", s(host)),
        ("CalDAVPort", V::I(port.into())),
        ("CalDAVUseSSL", V::B(true)),
        ("CalDAVUsername", s(login)),
        ("CalDAVPrincipalURL", s(principal.clone())),
    ];
    caldav.extend(common("caldav", "CalDAV", "com.apple.caldav.account"));
    let mut carddav = vec![
        (
            "CardDAVAccountDescription",
            s(format!("Contacts ({email})")),
        ),
        ("CardDAVHostName", s(host)),
        ("CardDAVPort", V::I(port.into())),
        ("CardDAVUseSSL", V::B(true)),
        ("CardDAVUsername", s(login)),
        ("CardDAVPrincipalURL", s(principal)),
    ];
    carddav.extend(common("carddav", "CardDAV", "com.apple.carddav.account"));
    let root = V::D(vec![
        (
            "PayloadContent",
            V::A(vec![V::D(eas), V::D(caldav), V::D(carddav)]),
        ),
        ("PayloadDisplayName", s(format!("{email} ({host})"))),
        (
            "PayloadDescription",
            s(format!(
                "Mail, calendars and contacts of {email} on {host}. The password is asked for on installation."
            )),
        ),
        ("PayloadIdentifier", s(id.clone())),
        ("PayloadOrganization", s(host)),
        ("PayloadRemovalDisallowed", V::B(false)),
        ("PayloadType", s("Configuration")),
        ("PayloadUUID", s(uuid("profile"))),
        ("PayloadVersion", V::I(1)),
    ]);
    let plist = Element::new("", "plist")
        .with_attr("version", "1.0")
        .with(element(&root));
    let doc = outpost_xml::write(&plist, &[]);
    // The serializer writes the XML declaration and a newline; the DOCTYPE
    // Apple's tools write goes right after it.
    match doc.split_once('\n') {
        Some((decl, rest)) => format!("{decl}\n{DOCTYPE}{rest}"),
        None => doc,
    }
}

/// A file name for `Content-Disposition`: the host name's letters, digits,
/// dots and dashes.
pub fn file_name(settings: &Settings) -> String {
    let h: String = settings
        .hostname
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
        .collect();
    format!("{}.mobileconfig", if h.is_empty() { "outpost" } else { &h })
}
