//! The request line of an ActiveSync request (MS-ASHTTP 2.2.1.1.1): the
//! plain form `?Cmd=Sync&User=u&DeviceId=d&DeviceType=t` and the
//! base64-encoded form (2.2.1.1.1.1), in which the protocol version and
//! the policy key travel inside the query instead of in headers.

use base64::Engine;
use percent_encoding::percent_decode_str;

/// Bytes of a device id or device type, both forms (MS-ASHTTP allows 32
/// for the id; some clients send a little more, none sends more than 64).
pub const MAX_ID: usize = 64;
/// Bytes of a whole query string.
pub const MAX_QUERY: usize = 2048;

/// The commands of MS-ASCMD with their base64-form codes (MS-ASHTTP
/// 2.2.1.1.1.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    Sync,
    SendMail,
    SmartForward,
    SmartReply,
    GetAttachment,
    FolderSync,
    FolderCreate,
    FolderDelete,
    FolderUpdate,
    MoveItems,
    GetItemEstimate,
    MeetingResponse,
    Search,
    Settings,
    Ping,
    ItemOperations,
    Provision,
    ResolveRecipients,
    ValidateCert,
    Find,
}

const COMMANDS: &[(Command, &str, u8)] = &[
    (Command::Sync, "Sync", 0),
    (Command::SendMail, "SendMail", 1),
    (Command::SmartForward, "SmartForward", 2),
    (Command::SmartReply, "SmartReply", 3),
    (Command::GetAttachment, "GetAttachment", 4),
    (Command::FolderSync, "FolderSync", 9),
    (Command::FolderCreate, "FolderCreate", 10),
    (Command::FolderDelete, "FolderDelete", 11),
    (Command::FolderUpdate, "FolderUpdate", 12),
    (Command::MoveItems, "MoveItems", 13),
    (Command::GetItemEstimate, "GetItemEstimate", 14),
    (Command::MeetingResponse, "MeetingResponse", 15),
    (Command::Search, "Search", 16),
    (Command::Settings, "Settings", 17),
    (Command::Ping, "Ping", 18),
    (Command::ItemOperations, "ItemOperations", 19),
    (Command::Provision, "Provision", 20),
    (Command::ResolveRecipients, "ResolveRecipients", 21),
    (Command::ValidateCert, "ValidateCert", 22),
    (Command::Find, "Find", 23),
];

impl Command {
    /// The command named `name` (case-insensitive, as clients differ).
    pub fn from_name(name: &str) -> Option<Command> {
        COMMANDS
            .iter()
            .find(|(_, n, _)| n.eq_ignore_ascii_case(name))
            .map(|(c, _, _)| *c)
    }

    pub fn from_code(code: u8) -> Option<Command> {
        COMMANDS
            .iter()
            .find(|(_, _, k)| *k == code)
            .map(|(c, _, _)| *c)
    }

    pub fn name(self) -> &'static str {
        COMMANDS
            .iter()
            .find(|(c, _, _)| *c == self)
            .map(|(_, n, _)| *n)
            .unwrap_or("?")
    }

    pub fn code(self) -> u8 {
        COMMANDS
            .iter()
            .find(|(c, _, _)| *c == self)
            .map(|(_, _, k)| *k)
            .unwrap_or(0)
    }

    /// Every command, in code order (for `MS-ASProtocolCommands`).
    pub fn all() -> impl Iterator<Item = Command> {
        COMMANDS.iter().map(|(c, _, _)| *c)
    }
}

/// An ActiveSync protocol version this server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    V140,
    V141,
    V160,
    V161,
}

impl Version {
    /// What `OPTIONS` announces in `MS-ASProtocolVersions`.
    pub const ANNOUNCED: &'static str = "14.0,14.1,16.0,16.1";

    pub fn parse(s: &str) -> Option<Version> {
        match s.trim() {
            "14.0" => Some(Version::V140),
            "14.1" => Some(Version::V141),
            "16.0" => Some(Version::V160),
            "16.1" => Some(Version::V161),
            _ => None,
        }
    }

    /// The base64 form's byte: the version times ten.
    pub fn from_byte(b: u8) -> Option<Version> {
        match b {
            140 => Some(Version::V140),
            141 => Some(Version::V141),
            160 => Some(Version::V160),
            161 => Some(Version::V161),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Version::V140 => "14.0",
            Version::V141 => "14.1",
            Version::V160 => "16.0",
            Version::V161 => "16.1",
        }
    }

    /// 16.0 and later (status codes instead of HTTP 449, Drafts sync).
    pub fn is_16(self) -> bool {
        self >= Version::V160
    }
}

/// What the request line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLine {
    pub command: Command,
    /// The `User` parameter (informational: the login is what counts).
    pub user: Option<String>,
    pub device_id: String,
    pub device_type: String,
    /// Only the base64 form carries these two; the plain form has them
    /// in the `MS-ASProtocolVersion` and `X-MS-PolicyKey` headers.
    pub version: Option<Version>,
    pub policy_key: Option<u32>,
    /// Other parameters (ItemId, CollectionId, AttachmentName, LongId,
    /// Occurrence, SaveInSent), names as the plain form spells them.
    pub params: Vec<(String, String)>,
}

impl RequestLine {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `SaveInSent=T` in the plain form, or the base64 form's Options
    /// bit 0x01.
    pub fn save_in_sent(&self) -> bool {
        self.param("SaveInSent")
            .is_some_and(|v| v.eq_ignore_ascii_case("T"))
    }
}

/// Why a request line was refused (HTTP 400 for all of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryError {
    TooLong,
    NoCommand,
    UnknownCommand(String),
    NoDeviceId,
    BadDeviceId,
    NoDeviceType,
    Base64,
    Truncated,
    BadVersion(u8),
    NotUtf8,
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueryError::TooLong => write!(f, "query string over {MAX_QUERY} bytes"),
            QueryError::NoCommand => write!(f, "no Cmd parameter"),
            QueryError::UnknownCommand(c) => write!(f, "unknown command {c:?}"),
            QueryError::NoDeviceId => write!(f, "no DeviceId parameter"),
            QueryError::BadDeviceId => {
                write!(f, "DeviceId or DeviceType empty or over {MAX_ID} bytes")
            }
            QueryError::NoDeviceType => write!(f, "no DeviceType parameter"),
            QueryError::Base64 => write!(f, "query is neither parameters nor base64"),
            QueryError::Truncated => write!(f, "base64 query ends early"),
            QueryError::BadVersion(v) => write!(f, "base64 query protocol version {v} unknown"),
            QueryError::NotUtf8 => write!(f, "query parameter is not UTF-8"),
        }
    }
}

/// Reads either form. A query with a `=` in it is the plain form; one
/// without is base64.
pub fn parse(query: &str) -> Result<RequestLine, QueryError> {
    if query.len() > MAX_QUERY {
        return Err(QueryError::TooLong);
    }
    // Base64 has no '&' and cannot start with "Cmd=" (its first byte,
    // the version, encodes as 'j' or 'o').
    if query.contains('&')
        || query
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("cmd="))
    {
        parse_plain(query)
    } else {
        parse_base64(query)
    }
}

fn decode_component(s: &str) -> Result<String, QueryError> {
    let s = s.replace('+', " ");
    percent_decode_str(&s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| QueryError::NotUtf8)
}

fn check_id(s: &str) -> Result<(), QueryError> {
    if s.is_empty() || s.len() > MAX_ID || s.chars().any(|c| c.is_control()) {
        Err(QueryError::BadDeviceId)
    } else {
        Ok(())
    }
}

fn parse_plain(query: &str) -> Result<RequestLine, QueryError> {
    let mut command = None;
    let mut user = None;
    let mut device_id = None;
    let mut device_type = None;
    let mut params = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = decode_component(k)?;
        let v = decode_component(v)?;
        if k.eq_ignore_ascii_case("Cmd") {
            command = Some(Command::from_name(&v).ok_or(QueryError::UnknownCommand(v))?);
        } else if k.eq_ignore_ascii_case("User") {
            user = Some(v);
        } else if k.eq_ignore_ascii_case("DeviceId") {
            device_id = Some(v);
        } else if k.eq_ignore_ascii_case("DeviceType") {
            device_type = Some(v);
        } else {
            params.push((k, v));
        }
    }
    let device_id = device_id.ok_or(QueryError::NoDeviceId)?;
    let device_type = device_type.ok_or(QueryError::NoDeviceType)?;
    check_id(&device_id)?;
    check_id(&device_type)?;
    Ok(RequestLine {
        command: command.ok_or(QueryError::NoCommand)?,
        user,
        device_id,
        device_type,
        version: None,
        policy_key: None,
        params,
    })
}

struct Bytes<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Bytes<'a> {
    fn byte(&mut self) -> Result<u8, QueryError> {
        let b = *self.b.get(self.pos).ok_or(QueryError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], QueryError> {
        let end = self.pos.checked_add(n).ok_or(QueryError::Truncated)?;
        let s = self.b.get(self.pos..end).ok_or(QueryError::Truncated)?;
        self.pos = end;
        Ok(s)
    }
    fn done(&self) -> bool {
        self.pos >= self.b.len()
    }
}

/// The base64 form (MS-ASHTTP 2.2.1.1.1.1): version, command code,
/// locale, then length-prefixed device id, policy key and device type,
/// then tag/length/value parameters.
fn parse_base64(query: &str) -> Result<RequestLine, QueryError> {
    // '+' is a base64 digit here, not a space.
    let text = percent_decode_str(query)
        .decode_utf8()
        .map_err(|_| QueryError::NotUtf8)?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| QueryError::Base64)?;
    let mut r = Bytes { b: &raw, pos: 0 };
    let v = r.byte()?;
    let version = Version::from_byte(v).ok_or(QueryError::BadVersion(v))?;
    let code = r.byte()?;
    let command =
        Command::from_code(code).ok_or_else(|| QueryError::UnknownCommand(code.to_string()))?;
    let _locale = r.take(2)?;
    let n = r.byte()? as usize;
    let id = r.take(n)?;
    // MS-ASHTTP: the device id is sent as its bytes; a client's text id
    // is ASCII in practice, anything else is shown as hex.
    let device_id = match std::str::from_utf8(id) {
        Ok(s) if s.chars().all(|c| c.is_ascii_graphic()) => s.to_string(),
        _ => id.iter().map(|b| format!("{b:02x}")).collect(),
    };
    let n = r.byte()? as usize;
    let key = r.take(n)?;
    let policy_key = match key {
        [a, b, c, d] => Some(u32::from_le_bytes([*a, *b, *c, *d])),
        _ => None,
    };
    let n = r.byte()? as usize;
    let device_type = std::str::from_utf8(r.take(n)?)
        .map_err(|_| QueryError::NotUtf8)?
        .to_string();
    check_id(&device_id)?;
    check_id(&device_type)?;
    let mut user = None;
    let mut params = Vec::new();
    while !r.done() {
        let tag = r.byte()?;
        let n = r.byte()? as usize;
        let value = r.take(n)?;
        let text = || {
            std::str::from_utf8(value)
                .map(str::to_string)
                .map_err(|_| QueryError::NotUtf8)
        };
        match tag {
            0 => params.push(("AttachmentName".into(), text()?)),
            1 => params.push(("CollectionId".into(), text()?)),
            3 => params.push(("ItemId".into(), text()?)),
            4 => params.push(("LongId".into(), text()?)),
            6 => params.push(("Occurrence".into(), text()?)),
            7 => {
                // Options: 0x01 SaveInSent, 0x02 AcceptMultiPart.
                let bits = value.first().copied().unwrap_or(0);
                if bits & 0x01 != 0 {
                    params.push(("SaveInSent".into(), "T".into()));
                }
                if bits & 0x02 != 0 {
                    params.push(("AcceptMultiPart".into(), "T".into()));
                }
            }
            8 => user = Some(text()?),
            _ => {}
        }
    }
    Ok(RequestLine {
        command,
        user,
        device_id,
        device_type,
        version: Some(version),
        policy_key,
        params,
    })
}

/// Writes the base64 form (for tests and for clients built on this crate).
pub fn encode_base64(line: &RequestLine) -> String {
    let mut b = vec![
        line.version
            .unwrap_or(Version::V161)
            .as_str()
            .replace('.', "")
            .parse::<u8>()
            .unwrap_or(161),
        line.command.code(),
        0x09,
        0x04,
    ];
    b.push(line.device_id.len().min(255) as u8);
    b.extend_from_slice(&line.device_id.as_bytes()[..line.device_id.len().min(255)]);
    match line.policy_key {
        Some(k) => {
            b.push(4);
            b.extend_from_slice(&k.to_le_bytes());
        }
        None => b.push(0),
    }
    b.push(line.device_type.len().min(255) as u8);
    b.extend_from_slice(&line.device_type.as_bytes()[..line.device_type.len().min(255)]);
    for (k, v) in &line.params {
        let tag = match k.as_str() {
            "AttachmentName" => 0,
            "CollectionId" => 1,
            "ItemId" => 3,
            "LongId" => 4,
            "Occurrence" => 6,
            _ => continue,
        };
        b.push(tag);
        b.push(v.len().min(255) as u8);
        b.extend_from_slice(&v.as_bytes()[..v.len().min(255)]);
    }
    if let Some(u) = &line.user {
        b.push(8);
        b.push(u.len().min(255) as u8);
        b.extend_from_slice(&u.as_bytes()[..u.len().min(255)]);
    }
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_form() {
        let l =
            parse("Cmd=Sync&User=alice%40example.org&DeviceId=ABC123&DeviceType=iPhone").unwrap();
        assert_eq!(l.command, Command::Sync);
        assert_eq!(l.user.as_deref(), Some("alice@example.org"));
        assert_eq!(l.device_id, "ABC123");
        assert_eq!(l.device_type, "iPhone");
        let l = parse("cmd=sendmail&deviceid=d&devicetype=t&SaveInSent=T").unwrap();
        assert_eq!(l.command, Command::SendMail);
        assert!(l.save_in_sent());
    }

    #[test]
    fn plain_form_errors() {
        assert_eq!(
            parse("Cmd=Nope&DeviceId=a&DeviceType=b"),
            Err(QueryError::UnknownCommand("Nope".into()))
        );
        assert_eq!(parse("Cmd=Sync&DeviceType=b"), Err(QueryError::NoDeviceId));
        assert_eq!(parse("Cmd=Sync&DeviceId=a"), Err(QueryError::NoDeviceType));
        assert_eq!(
            parse("Cmd=Sync&DeviceId=&DeviceType=b"),
            Err(QueryError::BadDeviceId)
        );
        assert_eq!(parse(&"a".repeat(3000)), Err(QueryError::TooLong));
    }

    #[test]
    fn base64_form() {
        // MS-ASHTTP 2.2.1.1.1.1 example shape: 14.1, Sync, en-US.
        let line = RequestLine {
            command: Command::SmartReply,
            user: Some("bob".into()),
            device_id: "dev1".into(),
            device_type: "SP".into(),
            version: Some(Version::V141),
            policy_key: Some(0x1234_5678),
            params: vec![("ItemId".into(), "5:12".into())],
        };
        let q = encode_base64(&line);
        assert_eq!(parse(&q).unwrap(), line);
        assert_eq!(parse("!!!!"), Err(QueryError::Base64));
        assert_eq!(parse("jQ=="), Err(QueryError::Truncated));
    }

    proptest! {
        #[test]
        fn base64_round_trip(id in "[A-Za-z0-9]{1,32}", ty in "[A-Za-z]{1,16}",
                             key in proptest::option::of(any::<u32>()),
                             item in "[0-9:]{0,20}", code in 0usize..20) {
            let command = Command::all().nth(code).unwrap();
            let line = RequestLine {
                command,
                user: None,
                device_id: id,
                device_type: ty,
                version: Some(Version::V161),
                policy_key: key,
                params: if item.is_empty() { vec![] } else { vec![("ItemId".into(), item)] },
            };
            prop_assert_eq!(parse(&encode_base64(&line)).unwrap(), line);
        }

        #[test]
        fn never_panics(q in ".{0,300}") {
            let _ = parse(&q);
        }
    }
}
