//! SendMail, SmartReply and SmartForward (MS-ASCMD 2.2.1.15, 2.2.1.17,
//! 2.2.1.18): the device hands over a MIME message; the server sends it
//! through the one mail flow (the backend calls `MailFlow::submit`, which
//! decides whether the user may send as its From:), files the Sent copy
//! when asked, and for a reply or forward adds the original (quoted, or
//! forwarded with its attachments) unless the device says ReplaceMime.
//!
//! Success is an empty HTTP 200 body; a failure is the command's element
//! with a Status from the common codes (MS-ASCMD 2.2.2).

use outpost_wbxml::Element;
use serde::{Deserialize, Serialize};

use crate::folders::child_text;
use crate::query::{Command, RequestLine};
use crate::state::{self, StoredState};
use crate::sync::Caller;
use crate::{BackendError, EasBackend, SendRefused, Smart};

/// Status codes of MS-ASCMD 2.2.2 these commands answer.
pub mod status {
    pub const INVALID_CONTENT: u32 = 101;
    pub const INVALID_WBXML: u32 = 102;
    pub const INVALID_MIME: u32 = 107;
    pub const SERVER_ERROR: u32 = 110;
    pub const RETRY_LATER: u32 = 111;
    pub const ACCESS_DENIED: u32 = 112;
    pub const MAILBOX_FULL: u32 = 113;
    pub const RECIPIENT_UNRESOLVED: u32 = 116;
    pub const PREVIOUSLY_SENT: u32 = 118;
    pub const NO_RECIPIENT: u32 = 119;
    pub const SUBMISSION_FAILED: u32 = 120;
    pub const REPLY_FAILED: u32 = 121;
    pub const ITEM_NOT_FOUND: u32 = 150;
}

/// The device's own message id list per device (not a collection).
pub const SENT_IDS: i64 = -3;
/// How many ClientIds are remembered per device.
const KEEP_IDS: usize = 64;

/// A SendMail, SmartReply or SmartForward, read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub client_id: Option<String>,
    pub save_sent: bool,
    pub replace_mime: bool,
    /// The original: folder and item ServerIds, or a Search result's
    /// LongId.
    pub folder_id: Option<String>,
    pub item_id: Option<String>,
    pub long_id: Option<String>,
    pub mime: Vec<u8>,
}

/// Reads the request: WBXML (14.0 and later) or, as 12.x sent it and some
/// clients still do, the bare MIME message with the parameters on the
/// request line. `Err(status)` when it cannot be read.
pub fn parse(
    command: Command,
    line: &RequestLine,
    root: Option<&Element>,
    body: &[u8],
) -> Result<Request, u32> {
    let Some(root) = root else {
        if body.is_empty() {
            return Err(status::INVALID_CONTENT);
        }
        return Ok(Request {
            client_id: None,
            save_sent: line.save_in_sent(),
            replace_mime: false,
            folder_id: line.param("CollectionId").map(str::to_string),
            item_id: line.param("ItemId").map(str::to_string),
            long_id: line.param("LongId").map(str::to_string),
            mime: body.to_vec(),
        });
    };
    let name = match command {
        Command::SendMail => "SendMail",
        Command::SmartReply => "SmartReply",
        _ => "SmartForward",
    };
    if !root.is("ComposeMail", name) {
        return Err(status::INVALID_CONTENT);
    }
    let mime = root
        .child("ComposeMail", "Mime")
        .map(|m| m.bytes())
        .filter(|m| !m.is_empty())
        .ok_or(status::INVALID_MIME)?;
    let source = root.child("ComposeMail", "Source");
    let src = |n: &str| source.and_then(|s| child_text(s, "ComposeMail", n));
    Ok(Request {
        client_id: child_text(root, "ComposeMail", "ClientId"),
        save_sent: root.child("ComposeMail", "SaveInSentItems").is_some(),
        replace_mime: root.child("ComposeMail", "ReplaceMime").is_some(),
        folder_id: src("FolderId"),
        item_id: src("ItemId"),
        long_id: src("LongId"),
        mime,
    })
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct SentIds {
    ids: Vec<String>,
}

fn failure(command: Command, code: u32) -> Element {
    crate::http::status_document(command, code)
}

/// Answers the command: `None` for success (an empty body), else the
/// status document.
pub async fn answer(
    b: &dyn EasBackend,
    who: &Caller<'_>,
    command: Command,
    req: &Request,
) -> Result<Option<Element>, BackendError> {
    let seen = b.sync_state(who.principal, who.device_id, SENT_IDS).await?;
    if let (Some(id), Some(s)) = (&req.client_id, &seen) {
        if s.parse::<SentIds>()
            .is_some_and(|l| l.ids.iter().any(|x| x == id))
        {
            return Ok(Some(failure(command, status::PREVIOUSLY_SENT)));
        }
    }
    let mut smart = None;
    let mut original = None;
    if command != Command::SendMail {
        let Some((coll, uid)) = source_ids(req) else {
            return Ok(Some(failure(command, status::ITEM_NOT_FOUND)));
        };
        let Some(raw) = b.mail_raw(who.principal, coll, uid).await? else {
            return Ok(Some(failure(command, status::ITEM_NOT_FOUND)));
        };
        if !req.replace_mime {
            let kind = if command == Command::SmartReply {
                Smart::Reply
            } else {
                Smart::Forward
            };
            smart = Some((kind, raw));
        }
        original = Some((coll, uid));
    }
    let sent = b
        .send_mail(who.principal, &req.mime, req.save_sent, smart)
        .await?;
    if let Err(r) = sent {
        let code = match r {
            SendRefused::NotAllowed => status::ACCESS_DENIED,
            SendRefused::BadMessage => status::INVALID_MIME,
            SendRefused::ReplyFailed => status::REPLY_FAILED,
            SendRefused::UnknownRecipient => status::RECIPIENT_UNRESOLVED,
            SendRefused::NoRecipients => status::NO_RECIPIENT,
            SendRefused::Full => status::MAILBOX_FULL,
            SendRefused::Temporary => status::RETRY_LATER,
            SendRefused::Failed => status::SUBMISSION_FAILED,
        };
        return Ok(Some(failure(command, code)));
    }
    if let Some((coll, uid)) = original {
        b.mark_replied(who.principal, coll, uid, command == Command::SmartForward)
            .await?;
    }
    if let Some(id) = &req.client_id {
        remember(b, who, seen, id).await?;
    }
    Ok(None)
}

/// The original's folder and UID from FolderId + ItemId (`folder:uid`),
/// or from the LongId of a Search result (the same form).
fn source_ids(req: &Request) -> Option<(i64, i64)> {
    if let Some(long) = req.long_id.as_deref() {
        let (f, u) = long.split_once(':')?;
        return Some((f.parse().ok()?, u.parse().ok()?));
    }
    let item = req.item_id.as_deref()?;
    let (f, u) = item.split_once(':')?;
    let (coll, uid) = (f.parse::<i64>().ok()?, u.parse::<i64>().ok()?);
    if let Some(folder) = &req.folder_id {
        if folder.parse::<i64>().ok()? != coll {
            return None;
        }
    }
    Some((coll, uid))
}

/// Keeps the ClientId so that a resend of the same message is answered 118
/// instead of being sent twice (a device that lost the answer sends
/// again).
async fn remember(
    b: &dyn EasBackend,
    who: &Caller<'_>,
    seen: Option<StoredState>,
    id: &str,
) -> Result<(), BackendError> {
    let mut list = seen
        .as_ref()
        .and_then(|s| s.parse::<SentIds>())
        .unwrap_or_default();
    list.ids.push(id.to_string());
    if list.ids.len() > KEEP_IDS {
        let cut = list.ids.len() - KEEP_IDS;
        list.ids.drain(..cut);
    }
    let expected = seen.as_ref().map(|s| s.sync_key);
    let key = expected.map_or_else(state::first_key, |k| k + 1);
    // A lost race means another send wrote the list meanwhile: this id is
    // then missing from it, which costs at most one duplicate on a resend.
    let _ = b
        .put_sync_state(
            who.principal,
            who.device_id,
            SENT_IDS,
            expected,
            &StoredState::first(key, &list),
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(params: &[(&str, &str)]) -> RequestLine {
        RequestLine {
            command: Command::SendMail,
            user: None,
            device_id: "d".into(),
            device_type: "t".into(),
            version: None,
            policy_key: None,
            params: params
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        }
    }

    #[test]
    fn wbxml_form() {
        let root = Element::named("ComposeMail", "SmartReply")
            .with(Element::named("ComposeMail", "ClientId").with_text("c1"))
            .with(Element::named("ComposeMail", "SaveInSentItems"))
            .with(
                Element::named("ComposeMail", "Source")
                    .with(Element::named("ComposeMail", "FolderId").with_text("7"))
                    .with(Element::named("ComposeMail", "ItemId").with_text("7:12")),
            )
            .with(
                Element::named("ComposeMail", "Mime").with_opaque(b"To: a@b.c\r\n\r\nhi".to_vec()),
            );
        let r = parse(Command::SmartReply, &line(&[]), Some(&root), b"x").unwrap();
        assert_eq!(r.client_id.as_deref(), Some("c1"));
        assert!(r.save_sent && !r.replace_mime);
        assert_eq!(source_ids(&r), Some((7, 12)));
        assert_eq!(r.mime, b"To: a@b.c\r\n\r\nhi");
        // The wrong root, no Mime.
        assert_eq!(
            parse(Command::SendMail, &line(&[]), Some(&root), b"x"),
            Err(status::INVALID_CONTENT)
        );
        let empty = Element::named("ComposeMail", "SendMail");
        assert_eq!(
            parse(Command::SendMail, &line(&[]), Some(&empty), b"x"),
            Err(status::INVALID_MIME)
        );
    }

    #[test]
    fn mime_form_and_source_checks() {
        let r = parse(
            Command::SmartForward,
            &line(&[
                ("SaveInSent", "T"),
                ("ItemId", "3:9"),
                ("CollectionId", "3"),
            ]),
            None,
            b"To: a@b.c\r\n\r\nhi",
        )
        .unwrap();
        assert!(r.save_sent);
        assert_eq!(source_ids(&r), Some((3, 9)));
        let mut bad = r.clone();
        bad.folder_id = Some("4".into());
        assert_eq!(source_ids(&bad), None);
        bad.folder_id = None;
        bad.item_id = Some("3:x".into());
        assert_eq!(source_ids(&bad), None);
        assert_eq!(
            parse(Command::SendMail, &line(&[]), None, b""),
            Err(status::INVALID_CONTENT)
        );
    }
}
