//! Plain HTTP (no TLS): discovery under `/.well-known/` (and Thunderbird's
//! `/mail/config-v1.1.xml`) is served, every other request gets a 301 to
//! the same path and query over HTTPS. Basic
//! credentials must never cross the network in the clear, and a client
//! that followed an `http://` link lands on the right page.
//!
//! 301 and not 308: clients follow it for GET and HEAD, which is what
//! arrives here; a client that sends a body over plain HTTP must be fixed to
//! use HTTPS rather than have the body silently re-sent.

use axum::body::Body;
use http::{HeaderValue, Request, Response, StatusCode};

use crate::HttpSettings;

/// The discovery paths (RFC 8615) served on plain HTTP too: RFC 6764's
/// `/.well-known/caldav` and `carddav`, ACME challenges, autoconfig.
pub fn is_well_known(path: &str) -> bool {
    path.starts_with("/.well-known/")
}

/// Thunderbird's autoconfig path: it asks
/// `http://autoconfig.DOMAIN/mail/config-v1.1.xml` (any letter case is
/// served, as the autodiscover crate matches it).
pub const MOZILLA_AUTOCONFIG: &str = "/mail/config-v1.1.xml";

/// Every path served on plain HTTP: [`is_well_known`] and
/// [`MOZILLA_AUTOCONFIG`]. What they answer needs no login and carries no
/// secret.
pub fn is_served_plain(path: &str) -> bool {
    is_well_known(path) || path.eq_ignore_ascii_case(MOZILLA_AUTOCONFIG)
}

/// The 301 to HTTPS for `req`: the host the client asked for (from `Host`,
/// or the request URI's authority) when it is a plain host name or
/// address, our own name otherwise; the HTTPS listener's port unless it is
/// 443; the same path and query.
pub fn redirect<B>(req: &Request<B>, settings: &HttpSettings) -> Response<Body> {
    let asked = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    let host = asked
        .and_then(host_part)
        .unwrap_or(settings.hostname.as_str());
    let port = match settings.https_port {
        443 => String::new(),
        p => format!(":{p}"),
    };
    let path = req
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    let location = format!("https://{host}{port}{path}");
    let mut resp = crate::text_response(
        StatusCode::MOVED_PERMANENTLY,
        "This server answers over HTTPS only\n",
    );
    match HeaderValue::try_from(location) {
        Ok(v) => {
            resp.headers_mut().insert(http::header::LOCATION, v);
        }
        // Path and host were valid header text already; cannot happen,
        // but a redirect without Location would be worse than a 400.
        Err(_) => *resp.status_mut() = StatusCode::BAD_REQUEST,
    }
    resp
}

/// The host of a `Host` value without its port, when it is a DNS name, an
/// IPv4 address or a bracketed IPv6 address; `None` for anything else (so a
/// crafted header cannot put other text into the Location).
fn host_part(value: &str) -> Option<&str> {
    let value = value.trim();
    let host = if value.starts_with('[') {
        let end = value.find(']')?;
        let inner = &value[1..end];
        inner.parse::<std::net::Ipv6Addr>().ok()?;
        let rest = &value[end + 1..];
        if !(rest.is_empty() || port_ok(rest.strip_prefix(':')?)) {
            return None;
        }
        &value[..=end]
    } else {
        let (host, port) = match value.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (value, None),
        };
        if let Some(p) = port {
            if !port_ok(p) {
                return None;
            }
        }
        host
    };
    let name_ok = host.starts_with('[')
        || (!host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }));
    name_ok.then_some(host)
}

fn port_ok(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location(host: Option<&str>, uri: &str, port: u16) -> String {
        let mut b = Request::builder().uri(uri);
        if let Some(h) = host {
            b = b.header("host", h);
        }
        let req = b.body(()).unwrap();
        let settings = HttpSettings {
            hostname: "mail.example.org".into(),
            https_port: port,
            ..Default::default()
        };
        let resp = redirect(&req, &settings);
        assert_eq!(resp.status(), StatusCode::MOVED_PERMANENTLY);
        resp.headers()["location"].to_str().unwrap().to_string()
    }

    #[test]
    fn keeps_host_path_and_query() {
        assert_eq!(
            location(Some("dav.example.org:80"), "/dav/x?a=1&b=2", 443),
            "https://dav.example.org/dav/x?a=1&b=2"
        );
        assert_eq!(
            location(Some("Example.ORG"), "/", 8443),
            "https://Example.ORG:8443/"
        );
        assert_eq!(
            location(Some("[::1]:8080"), "/p", 4443),
            "https://[::1]:4443/p"
        );
        assert_eq!(
            location(Some("127.0.0.1"), "/p", 443),
            "https://127.0.0.1/p"
        );
    }

    #[test]
    fn odd_hosts_fall_back_to_our_name() {
        for h in [
            "evil.example/x",
            "a b",
            "host:port",
            "[not-v6]",
            "x..y",
            "",
            "user@host",
        ] {
            assert_eq!(
                location(Some(h), "/p", 443),
                "https://mail.example.org/p",
                "{h:?}"
            );
        }
        assert_eq!(location(None, "/p", 443), "https://mail.example.org/p");
    }

    #[test]
    fn well_known() {
        assert!(is_well_known("/.well-known/caldav"));
        assert!(!is_well_known("/.well-known"));
        assert!(!is_well_known("/dav/.well-known/x"));
        assert!(is_served_plain(
            "/.well-known/autoconfig/mail/config-v1.1.xml"
        ));
        assert!(is_served_plain("/mail/config-v1.1.xml"));
        assert!(is_served_plain("/Mail/Config-v1.1.xml"));
        assert!(!is_served_plain("/mail/"));
        assert!(!is_served_plain("/mail/config-v1.1.xml/x"));
        assert!(!is_served_plain("/autodiscover/autodiscover.xml"));
    }
}
