//! Request paths: decoded once, segment by segment, so `%40` and `@` (or
//! any other encoding choice of a client) name the same resource; `..`,
//! `.`, encoded slashes and NUL are refused before anything is looked up.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

use crate::store::CollectionKind;

/// Where a request points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DavPath {
    /// `/` or `/dav/`.
    Root,
    /// `/dav/principals/` or `/dav/principals/users/`.
    Principals,
    Principal(String),
    Home(CollectionKind, String),
    Collection(CollectionKind, String, String),
    Object(CollectionKind, String, String, String),
    /// `/dav/scheduling/<login>/inbox/` or `.../outbox/` (RFC 6638).
    Schedule(String, ScheduleBox),
}

/// The scheduling collections of a principal (RFC 6638 §2.1, §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleBox {
    Inbox,
    Outbox,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    /// `..`, `.`, an encoded slash, NUL, or bytes that are not UTF-8.
    Forbidden(String),
    NotFound,
}

pub fn parse_path(raw: &str) -> Result<DavPath, PathError> {
    let mut segs = Vec::new();
    for seg in raw.split('/') {
        if seg.is_empty() {
            continue;
        }
        let decoded = percent_decode_str(seg)
            .decode_utf8()
            .map_err(|_| PathError::Forbidden("path is not UTF-8".into()))?;
        if decoded == ".." || decoded == "." {
            return Err(PathError::Forbidden("dot segment in path".into()));
        }
        if decoded.contains('/') || decoded.contains('\\') || decoded.contains('\0') {
            return Err(PathError::Forbidden(
                "encoded slash or NUL in a path segment".into(),
            ));
        }
        segs.push(decoded.into_owned());
    }
    let s: Vec<&str> = segs.iter().map(|s| s.as_str()).collect();
    let kind = |k: &str| match k {
        "calendars" => Some(CollectionKind::Calendar),
        "addressbooks" => Some(CollectionKind::AddressBook),
        _ => None,
    };
    Ok(match s.as_slice() {
        [] | ["dav"] => DavPath::Root,
        ["dav", "principals"] | ["dav", "principals", "users"] => DavPath::Principals,
        ["dav", "principals", "users", login] => DavPath::Principal(login.to_string()),
        ["dav", "scheduling", login, "inbox"] => {
            DavPath::Schedule(login.to_string(), ScheduleBox::Inbox)
        }
        ["dav", "scheduling", login, "outbox"] => {
            DavPath::Schedule(login.to_string(), ScheduleBox::Outbox)
        }
        ["dav", k, login] if kind(k).is_some() => {
            DavPath::Home(kind(k).unwrap(), login.to_string())
        }
        ["dav", k, login, c] if kind(k).is_some() => {
            DavPath::Collection(kind(k).unwrap(), login.to_string(), c.to_string())
        }
        ["dav", k, login, c, o] if kind(k).is_some() => DavPath::Object(
            kind(k).unwrap(),
            login.to_string(),
            c.to_string(),
            o.to_string(),
        ),
        _ => return Err(PathError::NotFound),
    })
}

/// What an href segment encodes: everything but unreserved characters and
/// `@` (logins are addresses; clients expect them readable).
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}')
    .add(b'&')
    .add(b'+')
    .add(b',')
    .add(b';')
    .add(b'=')
    .add(b':')
    .add(b'\'');

pub fn enc(seg: &str) -> String {
    utf8_percent_encode(seg, SEGMENT).to_string()
}

fn kind_seg(k: CollectionKind) -> &'static str {
    match k {
        CollectionKind::Calendar => "calendars",
        CollectionKind::AddressBook => "addressbooks",
    }
}

pub fn principal_href(login: &str) -> String {
    format!("/dav/principals/users/{}/", enc(login))
}

pub fn schedule_href(login: &str, b: ScheduleBox) -> String {
    let seg = match b {
        ScheduleBox::Inbox => "inbox",
        ScheduleBox::Outbox => "outbox",
    };
    format!("/dav/scheduling/{}/{seg}/", enc(login))
}

pub fn home_href(kind: CollectionKind, login: &str) -> String {
    format!("/dav/{}/{}/", kind_seg(kind), enc(login))
}

pub fn collection_href(kind: CollectionKind, login: &str, name: &str) -> String {
    format!("/dav/{}/{}/{}/", kind_seg(kind), enc(login), enc(name))
}

pub fn object_href(kind: CollectionKind, login: &str, coll: &str, name: &str) -> String {
    format!(
        "/dav/{}/{}/{}/{}",
        kind_seg(kind),
        enc(login),
        enc(coll),
        enc(name)
    )
}

/// An href or Destination value (absolute URL or path) as a path.
pub fn href_path(href: &str) -> &str {
    let h = href.trim();
    if let Some(rest) = h
        .strip_prefix("http://")
        .or_else(|| h.strip_prefix("https://"))
    {
        match rest.find('/') {
            Some(i) => &rest[i..],
            None => "/",
        }
    } else {
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_name_the_same_resource() {
        let a = parse_path("/dav/calendars/bob@example.com/work/x.ics").unwrap();
        let b = parse_path("/dav/calendars/bob%40example.com/w%6Frk/x.ics").unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a,
            DavPath::Object(
                CollectionKind::Calendar,
                "bob@example.com".into(),
                "work".into(),
                "x.ics".into()
            )
        );
    }

    #[test]
    fn traversal_is_refused() {
        for p in [
            "/dav/calendars/bob/../alice/",
            "/dav/calendars/bob/%2e%2e/alice/",
            "/dav/calendars/bob%2Falice/",
            "/dav/calendars/bob/a%5Cb/",
            "/dav/calendars/bob/a%00/",
            "/dav/calendars/%ff/",
        ] {
            assert!(matches!(parse_path(p), Err(PathError::Forbidden(_))), "{p}");
        }
        assert_eq!(parse_path("/etc/passwd"), Err(PathError::NotFound));
    }

    #[test]
    fn hrefs_round_trip() {
        let h = object_href(CollectionKind::AddressBook, "a b@x", "c d", "e%f.vcf");
        assert_eq!(
            parse_path(&h).unwrap(),
            DavPath::Object(
                CollectionKind::AddressBook,
                "a b@x".into(),
                "c d".into(),
                "e%f.vcf".into()
            )
        );
        assert_eq!(href_path("https://h:8443/dav/x/"), "/dav/x/");
    }
}
