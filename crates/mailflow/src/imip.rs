//! Incoming iMIP (RFC 6047): a message filed into a hosted user's mailbox
//! that carries a `text/calendar` part with METHOD REQUEST, REPLY,
//! CANCEL or REFRESH is handed to the scheduling engine, which applies it
//! to the user's calendar (or, for a REFRESH, answers it).
//!
//! Why a trait here and not a call: the scheduling engine
//! (`outpost-scheduling`) sends its iMIP mail through
//! [`MailFlow::submit`], so it depends on this crate; calling it from here
//! would be a cycle. The mail flow only finds the calendar parts and says
//! who received them ([`ImipDelivery`]); the engine, installed by the
//! binary with [`MailFlow::set_imip_handler`], decides whether the sender
//! may say what the part says (the originator must be the message's
//! `From:` and must not be a hosted address: hosted users schedule through
//! the server, not by mail) and applies it. The message itself is filed
//! like any other mail; applying the part never fails or delays the
//! delivery (the handler logs what it refused and why).

use std::sync::Arc;

use mail_parser::{MessageParser, MimeHeaders, PartType};

use crate::MailFlow;

/// Largest calendar part handed on; larger ones are left in the mailbox.
pub const MAX_CALENDAR_PART: usize = 1024 * 1024;
/// Calendar parts looked at per message.
const MAX_PARTS: usize = 4;

/// One calendar part received by one hosted user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImipDelivery {
    /// The recipient (its principal and primary address).
    pub principal_id: i64,
    pub address: String,
    /// The envelope sender ("" for the null sender).
    pub mail_from: String,
    /// The addresses of the `From:` header, lower case.
    pub from: Vec<String>,
    /// METHOD, upper case: from the part's `method=` parameter, else from
    /// the calendar's METHOD line.
    pub method: String,
    /// The calendar part, decoded.
    pub calendar: Vec<u8>,
}

/// What applies received iMIP parts (the scheduling engine).
#[async_trait::async_trait]
pub trait ImipHandler: Send + Sync {
    async fn received(&self, delivery: ImipDelivery);
}

/// The calendar parts of a message with a scheduling METHOD: (METHOD,
/// decoded part). A cheap byte scan first, so ordinary mail is not parsed.
pub fn calendar_parts(message: &[u8]) -> (Vec<String>, Vec<(String, Vec<u8>)>) {
    let mut out = Vec::new();
    let needle = b"text/calendar";
    if !message
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
    {
        return (Vec::new(), out);
    }
    let Some(parsed) = MessageParser::default().parse(message) else {
        return (Vec::new(), out);
    };
    let from: Vec<String> = parsed
        .from()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.address())
                .map(|s| s.trim().to_lowercase())
                .collect()
        })
        .unwrap_or_default();
    for part in parsed.parts.iter() {
        if out.len() >= MAX_PARTS {
            break;
        }
        let Some(ct) = part.content_type() else {
            continue;
        };
        if !ct.ctype().eq_ignore_ascii_case("text")
            || !ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("calendar"))
        {
            continue;
        }
        let body: Vec<u8> = match &part.body {
            PartType::Text(t) => t.as_bytes().to_vec(),
            PartType::Binary(b) | PartType::InlineBinary(b) => b.to_vec(),
            _ => continue,
        };
        if body.len() > MAX_CALENDAR_PART {
            continue;
        }
        let method = ct
            .attribute("method")
            .map(|m| m.trim().to_ascii_uppercase())
            .or_else(|| method_line(&body));
        let Some(method) = method else { continue };
        if matches!(method.as_str(), "REQUEST" | "REPLY" | "CANCEL" | "REFRESH") {
            out.push((method, body));
        }
    }
    (from, out)
}

/// METHOD of a VCALENDAR text (an unfolded line `METHOD:...`).
fn method_line(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.lines().map(str::trim_end).find_map(|l| {
        l.get(..7)
            .filter(|p| p.eq_ignore_ascii_case("METHOD:"))
            .map(|_| l[7..].trim().to_ascii_uppercase())
    })
}

impl MailFlow {
    /// Installs what applies received iMIP parts (once; later calls are
    /// ignored and return false). The binary installs the scheduling
    /// engine; without one, calendar mail is filed as mail only.
    pub fn set_imip_handler(&self, handler: Arc<dyn ImipHandler>) -> bool {
        self.imip.set(handler).is_ok()
    }

    /// After a message was filed for `recipients`: hands its calendar
    /// parts to the handler, one call per recipient and part.
    pub(crate) async fn imip_received(
        &self,
        return_path: &str,
        recipients: &[outpost_directory::Recipient],
        message: &[u8],
    ) {
        let Some(handler) = self.imip.get() else {
            return;
        };
        let (from, parts) = calendar_parts(message);
        for (method, calendar) in parts {
            for r in recipients {
                handler
                    .received(ImipDelivery {
                        principal_id: r.principal_id,
                        address: r.address.clone(),
                        mail_from: return_path.to_string(),
                        from: from.clone(),
                        method: method.clone(),
                        calendar: calendar.clone(),
                    })
                    .await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_calendar_part_of_an_imip_message() {
        let m = b"From: Ext <Ext@Outside.test>\r\nTo: bob@example.test\r\nSubject: Invitation\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nYou are invited.\r\n\
--b\r\nContent-Type: text/calendar; charset=utf-8; method=REQUEST\r\n\
Content-Transfer-Encoding: base64\r\n\r\n\
QkVHSU46VkNBTEVOREFSDQpNRVRIT0Q6UkVRVUVTVA0KRU5EOlZDQUxFTkRBUg0K\r\n--b--\r\n";
        let (from, parts) = calendar_parts(m);
        assert_eq!(from, vec!["ext@outside.test".to_string()]);
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].0, "REQUEST");
        assert_eq!(
            parts[0].1,
            b"BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n".to_vec()
        );
    }

    #[test]
    fn method_comes_from_the_body_when_the_header_has_none_and_publish_is_ignored() {
        let m = b"From: a@b.test\r\nContent-Type: text/calendar\r\n\r\nBEGIN:VCALENDAR\r\nMETHOD:cancel\r\nEND:VCALENDAR\r\n";
        assert_eq!(calendar_parts(m).1[0].0, "CANCEL");
        let p = b"From: a@b.test\r\nContent-Type: text/calendar; method=PUBLISH\r\n\r\nBEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n";
        assert!(calendar_parts(p).1.is_empty());
        assert!(calendar_parts(b"Subject: hi\r\n\r\nno calendar here")
            .1
            .is_empty());
        assert!(calendar_parts(b"\xff\xfe text/calendar \x00").1.is_empty());
    }
}
