//! Outgoing iMIP (RFC 6047): one mail per message for its outside
//! recipients, `multipart/alternative` with a short text part and the
//! `text/calendar; method=...` part, sent through the one mail flow as the
//! organizer's or attendee's address.

use mail_builder::headers::content_type::ContentType;
use mail_builder::mime::{BodyPart, MimePart};
use mail_builder::MessageBuilder;
use outpost_mailflow::{Envelope, MailFlow, Rcpt, SubmitOptions};
use outpost_pim::itip::{ItipMessage, Method};

/// The subject line clients show for the message.
pub(crate) fn subject(msg: &ItipMessage) -> String {
    let what = msg.summary.clone().unwrap_or_else(|| "(no title)".into());
    match msg.method {
        Method::Request if msg.sequence > 0 => format!("Updated invitation: {what}"),
        Method::Request => format!("Invitation: {what}"),
        Method::Cancel => format!("Cancelled: {what}"),
        Method::Reply => {
            let answer = match msg.partstat.as_deref() {
                Some("ACCEPTED") => "Accepted",
                Some("DECLINED") => "Declined",
                Some("TENTATIVE") => "Tentative",
                Some("DELEGATED") => "Delegated",
                _ => "Reply",
            };
            format!("{answer}: {what}")
        }
    }
}

fn text(msg: &ItipMessage) -> String {
    let what = msg.summary.clone().unwrap_or_else(|| "(no title)".into());
    match msg.method {
        Method::Request => format!(
            "{} invites you to \"{what}\".\r\nYour calendar program shows the details and lets you answer.\r\n",
            msg.from
        ),
        Method::Cancel => format!("{} has cancelled \"{what}\".\r\n", msg.from),
        Method::Reply => format!(
            "{} has answered \"{what}\": {}.\r\n",
            msg.from,
            msg.partstat.as_deref().unwrap_or("(no answer)").to_lowercase()
        ),
    }
}

/// The mail for `to`.
pub(crate) fn build(msg: &ItipMessage, to: &[String]) -> Vec<u8> {
    let domain = msg
        .from
        .rsplit_once('@')
        .map(|(_, d)| d)
        .unwrap_or("localhost");
    let id = format!("imip.{:032x}@{domain}", rand::random::<u128>());
    let calendar = MimePart::new(
        ContentType::new("text/calendar")
            .attribute("charset", "utf-8")
            .attribute("method", msg.method.as_str()),
        BodyPart::Text(msg.ical.clone().into()),
    );
    let plain = MimePart::new(
        ContentType::new("text/plain").attribute("charset", "utf-8"),
        BodyPart::Text(text(msg).into()),
    );
    let body = MimePart::new(
        ContentType::new("multipart/alternative"),
        BodyPart::Multipart(vec![plain, calendar]),
    );
    let mut b = MessageBuilder::new()
        .from(msg.from.as_str())
        .subject(subject(msg))
        .message_id(id)
        .body(body);
    b = b.to(to
        .iter()
        .map(|a| mail_builder::headers::address::Address::new_address(None::<&str>, a.as_str()))
        .collect::<Vec<_>>());
    b.write_to_vec().unwrap_or_default()
}

/// Sends `msg` to the outside addresses `to` as `principal`.
pub(crate) async fn send(
    flow: &MailFlow,
    principal: i64,
    msg: &ItipMessage,
    to: &[String],
) -> Result<(), String> {
    let bytes = build(msg, to);
    let env = Envelope {
        mail_from: msg.from.clone(),
        recipients: to.iter().map(|a| Rcpt::new(a.clone())).collect(),
        message_id: format!("iMIP {} {}", msg.method.as_str(), msg.uid),
        ..Envelope::default()
    };
    // No Sent copy: the calendar is the user's record of it.
    flow.submit(principal, &env, &bytes, SubmitOptions::default())
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}
