//! Email-class items (MS-ASEMAIL, MS-ASAIRS): a message's ApplicationData
//! from its MIME bytes (mail-parser), the body in the form the client
//! prefers, attachments by FileReference, and the flag fields a client
//! changes.

use mail_parser::{Address, MessageParser, MimeHeaders};
use outpost_wbxml::Element;

/// One BodyPreference of a Sync Options, ItemOperations or Search request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyPreference {
    /// 1 plain text, 2 HTML, 3 RTF, 4 MIME.
    pub body_type: u8,
    pub truncation_size: Option<u32>,
    pub all_or_none: bool,
    pub preview: Option<u32>,
}

/// Plain text cut at this many bytes when the client names no preference.
pub const DEFAULT_TRUNCATION: usize = 32 * 1024;

fn num<T: std::str::FromStr>(e: &Element, page: &str, name: &str) -> Option<T> {
    e.child(page, name)
        .and_then(|c| c.text().trim().parse().ok())
}

/// Every AirSyncBase:BodyPreference of an Options element; the 12.x form
/// (AirSync:MIMESupport 2) as a MIME preference.
pub fn body_preferences(options: &Element) -> Vec<BodyPreference> {
    let mut prefs: Vec<BodyPreference> = options
        .elements()
        .filter(|e| e.is("AirSyncBase", "BodyPreference"))
        .map(|e| BodyPreference {
            body_type: num(e, "AirSyncBase", "Type").unwrap_or(1),
            truncation_size: num(e, "AirSyncBase", "TruncationSize"),
            all_or_none: num::<u8>(e, "AirSyncBase", "AllOrNone") == Some(1),
            preview: num(e, "AirSyncBase", "Preview"),
        })
        .collect();
    if num::<u8>(options, "AirSync", "MIMESupport") == Some(2) {
        prefs.insert(
            0,
            BodyPreference {
                body_type: 4,
                truncation_size: num(options, "AirSync", "MIMETruncation")
                    .and_then(mime_truncation),
                all_or_none: false,
                preview: None,
            },
        );
    }
    prefs
}

/// MS-ASCMD 2.2.3.108: MIMETruncation codes.
fn mime_truncation(code: u8) -> Option<u32> {
    match code {
        0 => Some(0),
        1 => Some(4096),
        2 => Some(5120),
        3 => Some(7168),
        4 => Some(10240),
        5 => Some(20480),
        6 => Some(51200),
        7 => Some(102_400),
        _ => None,
    }
}

/// What the store knows about a message besides its bytes.
#[derive(Debug, Clone, Default)]
pub struct MessageState {
    pub read: bool,
    pub flagged: bool,
    pub answered: bool,
    pub forwarded: bool,
    /// Unix seconds.
    pub internal_date: i64,
    pub categories: Vec<String>,
}

fn em(name: &str, v: impl Into<String>) -> Element {
    Element::named("Email", name).with_text(v)
}

fn base(name: &str, v: impl Into<String>) -> Element {
    Element::named("AirSyncBase", name).with_text(v)
}

/// RFC 5322 text of an address list: `"Name" <a@b>, c@d`.
fn addresses(a: Option<&Address>) -> Option<String> {
    let a = a?;
    let list: Vec<String> = a
        .iter()
        .filter_map(|x| {
            let addr = x.address()?;
            Some(match x.name() {
                Some(n) if !n.is_empty() => format!("\"{}\" <{addr}>", n.replace(['"', '\\'], "")),
                _ => addr.to_string(),
            })
        })
        .collect();
    (!list.is_empty()).then(|| list.join(", "))
}

fn display_names(a: Option<&Address>) -> Option<String> {
    let list: Vec<String> = a?
        .iter()
        .filter_map(|x| {
            x.name()
                .filter(|n| !n.is_empty())
                .or(x.address())
                .map(str::to_string)
        })
        .collect();
    (!list.is_empty()).then(|| list.join("; "))
}

/// `2026-11-24T10:00:00.000Z`.
pub fn eas_date(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Cuts `s` at `max` bytes on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut i = max;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    &s[..i]
}

/// The Body element for the first preference the message satisfies.
fn body(raw: &[u8], msg: Option<&mail_parser::Message>, prefs: &[BodyPreference]) -> Element {
    let text = msg
        .and_then(|m| m.body_text(0))
        .map(|t| t.into_owned())
        .unwrap_or_default();
    let html = msg
        .filter(|m| m.html_body_count() > 0 && m.html_part(0).is_some_and(|p| p.is_text_html()))
        .and_then(|m| m.body_html(0))
        .map(|h| h.into_owned());
    let default = BodyPreference {
        body_type: 1,
        truncation_size: Some(DEFAULT_TRUNCATION as u32),
        all_or_none: false,
        preview: None,
    };
    let pref = prefs
        .iter()
        .find(|p| matches!(p.body_type, 1 | 2 | 4))
        .unwrap_or(&default);
    let (ty, data): (u8, Vec<u8>) = match pref.body_type {
        4 => (4, raw.to_vec()),
        2 if html.is_some() => (2, html.clone().unwrap_or_default().into_bytes()),
        _ => (1, text.clone().into_bytes()),
    };
    let full = data.len();
    let limit = pref.truncation_size.map(|t| t as usize);
    let truncated = limit.is_some_and(|l| full > l);
    let mut el = Element::named("AirSyncBase", "Body")
        .with(base("Type", ty.to_string()))
        .with(base("EstimatedDataSize", full.to_string()));
    if truncated && pref.all_or_none {
        // All or none: none, and say it was cut.
        return el.with(base("Truncated", "1"));
    }
    let shown = match (limit, ty) {
        (Some(l), 4) if truncated => String::from_utf8_lossy(&data[..l]).into_owned(),
        (Some(l), _) if truncated => cut(&String::from_utf8_lossy(&data), l).to_string(),
        _ => String::from_utf8_lossy(&data).into_owned(),
    };
    if truncated {
        el = el.with(base("Truncated", "1"));
    }
    el = el.with(base("Data", shown));
    if let Some(n) = pref.preview.filter(|n| *n > 0) {
        el = el.with(base(
            "Preview",
            cut(text.trim(), n.min(255) as usize).to_string(),
        ));
    }
    el
}

/// The ApplicationData of a message. `file_ref_prefix` is the item's
/// ServerId: attachment `i` is `{prefix}:{i}`.
pub fn application_data(
    raw: &[u8],
    state: &MessageState,
    prefs: &[BodyPreference],
    file_ref_prefix: &str,
    is16: bool,
) -> Element {
    let parsed = MessageParser::default().parse(raw);
    let msg = parsed.as_ref();
    let mut d = Element::named("AirSync", "ApplicationData");
    if let Some(to) = addresses(msg.and_then(|m| m.to())) {
        d = d.with(em("To", to));
    }
    if let Some(cc) = addresses(msg.and_then(|m| m.cc())) {
        d = d.with(em("Cc", cc));
    }
    if let Some(from) = addresses(msg.and_then(|m| m.from())) {
        d = d.with(em("From", from));
    }
    let subject = msg.and_then(|m| m.subject()).unwrap_or("").to_string();
    d = d.with(em("Subject", subject.clone()));
    if let Some(r) = addresses(msg.and_then(|m| m.reply_to())) {
        d = d.with(em("ReplyTo", r));
    }
    d = d.with(em("DateReceived", eas_date(state.internal_date)));
    if let Some(t) = display_names(msg.and_then(|m| m.to())) {
        d = d.with(em("DisplayTo", t));
    }
    d = d.with(em(
        "ThreadTopic",
        msg.and_then(|m| m.thread_name())
            .unwrap_or(&subject)
            .to_string(),
    ));
    let importance = msg
        .and_then(|m| m.header_raw("Importance").or(m.header_raw("X-Priority")))
        .map(|v| v.trim().to_ascii_lowercase());
    let importance = match importance.as_deref() {
        Some("high") | Some("1") | Some("2") => "2",
        Some("low") | Some("4") | Some("5") => "0",
        _ => "1",
    };
    d = d.with(em("Importance", importance));
    d = d.with(em("Read", if state.read { "1" } else { "0" }));
    // Attachments.
    if let Some(m) = msg {
        let mut atts = Element::named("AirSyncBase", "Attachments");
        let mut any = false;
        for (i, part) in m.attachments().enumerate() {
            any = true;
            let name = part
                .attachment_name()
                .map(str::to_string)
                .unwrap_or_else(|| format!("attachment-{}", i + 1));
            let mut a = Element::named("AirSyncBase", "Attachment")
                .with(base("DisplayName", name))
                .with(base("FileReference", format!("{file_ref_prefix}:{i}")))
                .with(base("Method", if part.is_message() { "5" } else { "1" }))
                .with(base("EstimatedDataSize", part.contents().len().to_string()));
            if let Some(cid) = part.content_id() {
                a = a.with(base("ContentId", cid.trim_matches(['<', '>']).to_string()));
            }
            let inline = part
                .content_disposition()
                .is_some_and(|cd| cd.ctype().eq_ignore_ascii_case("inline"));
            if inline {
                a = a.with(base("IsInline", "1"));
            }
            atts = atts.with(a);
        }
        if any {
            d = d.with(atts);
        }
    }
    d = d.with(body(raw, msg, prefs));
    let meeting = msg.is_some_and(|m| {
        m.parts.iter().any(|p| {
            p.content_type().is_some_and(|ct| {
                ct.ctype().eq_ignore_ascii_case("text")
                    && ct
                        .subtype()
                        .is_some_and(|s| s.eq_ignore_ascii_case("calendar"))
                    && ct
                        .attribute("method")
                        .is_some_and(|v| v.eq_ignore_ascii_case("REQUEST"))
            })
        })
    });
    d = d.with(em(
        "MessageClass",
        if meeting {
            "IPM.Schedule.Meeting.Request"
        } else {
            "IPM.Note"
        },
    ));
    d = d.with(em("InternetCPID", "65001"));
    let flag = if state.flagged {
        Element::named("Email", "Flag")
            .with(em("Status", "2"))
            .with(em("FlagType", "Flag for follow up"))
    } else {
        Element::named("Email", "Flag")
    };
    d = d.with(flag);
    d = d.with(em("ContentClass", "urn:content-classes:message"));
    let native = if msg.is_some_and(|m| {
        m.html_body_count() > 0 && m.html_part(0).is_some_and(|p| p.is_text_html())
    }) {
        "2"
    } else {
        "1"
    };
    d = d.with(base("NativeBodyType", native));
    if !state.categories.is_empty() {
        let mut c = Element::named("Email", "Categories");
        for k in &state.categories {
            c = c.with(em("Category", k.clone()));
        }
        d = d.with(c);
    }
    if state.answered || state.forwarded {
        // MS-ASEMAIL 2.2.2.46 LastVerbExecuted: 1 reply, 3 forward.
        d = d.with(
            Element::named("Email2", "LastVerbExecuted").with_text(if state.answered {
                "1"
            } else {
                "3"
            }),
        );
    }
    if is16 {
        d = d.with(Element::named("Email2", "IsDraft").with_text("0"));
    }
    strip_nul(&mut d);
    d
}

/// WBXML strings end at U+0000: take it out of text a message carries, so
/// what is sent is what was built.
fn strip_nul(e: &mut Element) {
    for c in &mut e.children {
        match c {
            outpost_wbxml::Node::Element(x) => strip_nul(x),
            outpost_wbxml::Node::Text(t) if t.contains('\0') => t.retain(|ch| ch != '\0'),
            _ => {}
        }
    }
}

/// A part's `type/subtype`, `application/octet-stream` when it has none.
pub fn content_type(part: &mail_parser::MessagePart<'_>) -> String {
    part.content_type()
        .map(|ct| match ct.subtype() {
            Some(s) => format!("{}/{}", ct.ctype(), s),
            None => ct.ctype().to_string(),
        })
        .unwrap_or_else(|| "application/octet-stream".into())
}

/// Attachment `index` of the message: (content type, decoded bytes).
pub fn attachment(raw: &[u8], index: usize) -> Option<(String, Vec<u8>)> {
    let m = MessageParser::default().parse(raw)?;
    let part = m.attachments().nth(index)?;
    let ct = content_type(part);
    let bytes = if part.is_message() {
        // An attached message: its own bytes.
        raw.get(part.raw_header_offset() as usize..part.raw_end_offset() as usize)
            .map(<[u8]>::to_vec)
            .unwrap_or_else(|| part.contents().to_vec())
    } else {
        part.contents().to_vec()
    };
    Some((ct, bytes))
}

/// The fields of a client's Change a server applies to flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagChange {
    pub read: Option<bool>,
    pub flagged: Option<bool>,
    pub categories: Option<Vec<String>>,
}

pub fn flag_change(data: &Element) -> FlagChange {
    FlagChange {
        read: data.child("Email", "Read").map(|r| r.text().trim() == "1"),
        // An empty Flag clears it; Status 2 is active, 1 complete, 0 cleared.
        flagged: data.child("Email", "Flag").map(|f| {
            f.child("Email", "Status")
                .is_some_and(|s| s.text().trim() == "2")
        }),
        categories: data.child("Email", "Categories").map(|c| {
            c.elements()
                .filter(|e| e.is("Email", "Category"))
                .map(|e| e.text().trim().to_string())
                .collect()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text_of(d: &Element, page: &str, name: &str) -> Option<String> {
        d.child(page, name).map(|c| c.text())
    }

    const PLAIN: &[u8] = b"From: \"Ann Example\" <ann@example.org>\r\nTo: Bob <bob@example.test>, carol@example.test\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\n\r\nHello there\r\n";

    #[test]
    fn plain_message() {
        let st = MessageState {
            read: true,
            internal_date: 1_795_600_000,
            ..Default::default()
        };
        let d = application_data(PLAIN, &st, &[], "5:1", true);
        assert_eq!(text_of(&d, "Email", "Subject").as_deref(), Some("Grüße"));
        assert_eq!(
            text_of(&d, "Email", "From").as_deref(),
            Some("\"Ann Example\" <ann@example.org>")
        );
        assert_eq!(
            text_of(&d, "Email", "To").as_deref(),
            Some("\"Bob\" <bob@example.test>, carol@example.test")
        );
        assert_eq!(
            text_of(&d, "Email", "DisplayTo").as_deref(),
            Some("Bob; carol@example.test")
        );
        assert_eq!(text_of(&d, "Email", "Read").as_deref(), Some("1"));
        let body = d.child("AirSyncBase", "Body").unwrap();
        assert_eq!(text_of(body, "AirSyncBase", "Type").as_deref(), Some("1"));
        assert!(text_of(body, "AirSyncBase", "Data")
            .unwrap()
            .contains("Hello there"));
        assert_eq!(eas_date(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(eas_date(1_795_514_400), "2026-11-24T10:00:00.000Z");
    }

    #[test]
    fn preferences_truncation_and_mime() {
        let prefs = [BodyPreference {
            body_type: 4,
            truncation_size: Some(10),
            all_or_none: false,
            preview: None,
        }];
        let d = application_data(PLAIN, &MessageState::default(), &prefs, "5:1", false);
        let body = d.child("AirSyncBase", "Body").unwrap();
        assert_eq!(text_of(body, "AirSyncBase", "Type").as_deref(), Some("4"));
        assert_eq!(
            text_of(body, "AirSyncBase", "Truncated").as_deref(),
            Some("1")
        );
        assert_eq!(
            text_of(body, "AirSyncBase", "EstimatedDataSize"),
            Some(PLAIN.len().to_string())
        );
        assert_eq!(text_of(body, "AirSyncBase", "Data").unwrap().len(), 10);
        // HTML asked, only plain there: plain.
        let prefs = [BodyPreference {
            body_type: 2,
            truncation_size: None,
            all_or_none: false,
            preview: None,
        }];
        let d = application_data(PLAIN, &MessageState::default(), &prefs, "5:1", false);
        assert_eq!(
            text_of(
                d.child("AirSyncBase", "Body").unwrap(),
                "AirSyncBase",
                "Type"
            )
            .as_deref(),
            Some("1")
        );
        let opts = Element::named("AirSync", "Options").with(
            Element::named("AirSyncBase", "BodyPreference")
                .with(base("Type", "2"))
                .with(base("TruncationSize", "200"))
                .with(base("AllOrNone", "1")),
        );
        assert_eq!(
            body_preferences(&opts),
            vec![BodyPreference {
                body_type: 2,
                truncation_size: Some(200),
                all_or_none: true,
                preview: None
            }]
        );
    }

    #[test]
    fn html_and_attachments() {
        let raw = b"From: a@b.c\r\nSubject: s\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\n--X\r\nContent-Type: multipart/alternative; boundary=Y\r\n\r\n--Y\r\nContent-Type: text/plain\r\n\r\nplain part\r\n--Y\r\nContent-Type: text/html\r\n\r\n<p>html <b>part</b></p>\r\n--Y--\r\n--X\r\nContent-Type: application/pdf; name=\"r.pdf\"\r\nContent-Disposition: attachment; filename=\"r.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQ=\r\n--X--\r\n";
        let prefs = [BodyPreference {
            body_type: 2,
            truncation_size: None,
            all_or_none: false,
            preview: None,
        }];
        let d = application_data(raw, &MessageState::default(), &prefs, "7:3", true);
        let body = d.child("AirSyncBase", "Body").unwrap();
        assert_eq!(text_of(body, "AirSyncBase", "Type").as_deref(), Some("2"));
        assert!(text_of(body, "AirSyncBase", "Data")
            .unwrap()
            .contains("<b>part</b>"));
        let att = d
            .child("AirSyncBase", "Attachments")
            .unwrap()
            .child("AirSyncBase", "Attachment")
            .unwrap();
        assert_eq!(
            text_of(att, "AirSyncBase", "DisplayName").as_deref(),
            Some("r.pdf")
        );
        assert_eq!(
            text_of(att, "AirSyncBase", "FileReference").as_deref(),
            Some("7:3:0")
        );
        assert_eq!(
            attachment(raw, 0),
            Some(("application/pdf".into(), b"%PDF-1.4".to_vec()))
        );
        assert_eq!(attachment(raw, 1), None);
    }

    #[test]
    fn flags_from_a_change() {
        let d = Element::named("AirSync", "ApplicationData")
            .with(em("Read", "1"))
            .with(Element::named("Email", "Flag").with(em("Status", "2")));
        assert_eq!(
            flag_change(&d),
            FlagChange {
                read: Some(true),
                flagged: Some(true),
                categories: None
            }
        );
        let d = Element::named("AirSync", "ApplicationData").with(Element::named("Email", "Flag"));
        assert_eq!(flag_change(&d).flagged, Some(false));
    }

    proptest! {
        #[test]
        fn any_bytes_render_and_round_trip(raw in proptest::collection::vec(any::<u8>(), 0..600)) {
            let d = application_data(&raw, &MessageState::default(), &[], "1:1", true);
            let root = Element::named("AirSync", "Sync").with(d);
            let bytes = outpost_wbxml::encode(&root);
            let back = outpost_wbxml::decode(&bytes, &outpost_wbxml::Limits::default()).unwrap();
            prop_assert_eq!(back, root);
            let _ = attachment(&raw, 0);
        }
    }
}
