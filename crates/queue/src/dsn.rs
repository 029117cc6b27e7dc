//! Delivery status notifications (RFC 3464): a multipart/report with a
//! human-readable part, a message/delivery-status part, and the original
//! message (RET=FULL, the default here) or its headers (RET=HDRS, and for
//! delay notices).

use rand::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Failed,
    Delayed,
    /// Delivered into a local mailbox (NOTIFY=SUCCESS).
    Delivered,
    /// Handed to a next hop that does not support DSN, so no further
    /// success notice will come (NOTIFY=SUCCESS, RFC 3464 §2.3.3).
    Relayed,
}

#[derive(Debug, Clone)]
pub struct DsnRecipient {
    pub address: String,
    /// ORCPT as given ("rfc822;user@example"), xtext-decoded (as queued).
    pub orcpt: Option<String>,
    pub action: Action,
    /// The reply or reason, e.g. "mx.example said: 550 5.1.1 no such user".
    pub diagnostic: String,
}

pub struct Report<'a> {
    /// Our host name (Reporting-MTA, From: MAILER-DAEMON@).
    pub reporting_mta: &'a str,
    /// The envelope sender the DSN goes to.
    pub to: &'a str,
    pub envid: Option<&'a str>,
    pub arrival: i64,
    pub now: i64,
    pub recipients: &'a [DsnRecipient],
    pub original: &'a [u8],
    /// Return the whole message (RET=FULL) rather than its headers.
    pub full: bool,
    /// For delay notices: until when the queue keeps trying.
    pub retry_until: Option<i64>,
}

/// Whether DSN NOTIFY (RFC 3461 §4.1) asks for this kind of notice. Without
/// NOTIFY, failures and delays are reported, successes not.
pub fn wanted(notify: Option<&str>, action: Action) -> bool {
    let Some(n) = notify else {
        return matches!(action, Action::Failed | Action::Delayed);
    };
    let n = n.to_ascii_lowercase();
    let word = match action {
        Action::Failed => "failure",
        Action::Delayed => "delay",
        Action::Delivered | Action::Relayed => "success",
    };
    n.split(',').any(|w| w.trim() == word)
}

/// The enhanced status code (RFC 3463) in a reply, or a generic one.
pub fn status_code(diagnostic: &str, action: Action) -> String {
    for w in diagnostic.split_whitespace() {
        let p: Vec<&str> = w.split('.').collect();
        if p.len() == 3
            && matches!(p[0], "2" | "4" | "5")
            && p[1..]
                .iter()
                .all(|x| !x.is_empty() && x.len() <= 3 && x.bytes().all(|b| b.is_ascii_digit()))
        {
            return w.to_string();
        }
    }
    match action {
        Action::Failed => "5.0.0".into(),
        Action::Delayed => "4.0.0".into(),
        Action::Delivered | Action::Relayed => "2.0.0".into(),
    }
}

fn date(ts: i64) -> String {
    mail_parser::DateTime::from_timestamp(ts).to_rfc822()
}

/// Keeps a header field value on one line and free of CR/LF.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn headers_of(msg: &[u8]) -> &[u8] {
    match msg.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => &msg[..i + 2],
        None => msg,
    }
}

pub fn build(r: &Report<'_>) -> Vec<u8> {
    let boundary = format!(
        "{:016x}/{}",
        rand::thread_rng().gen::<u64>(),
        r.reporting_mta
    );
    let failed = r.recipients.iter().any(|x| x.action == Action::Failed);
    let delayed = r.recipients.iter().any(|x| x.action == Action::Delayed);
    let subject = if failed {
        "Undelivered Mail Returned to Sender"
    } else if delayed {
        "Delayed Mail (still being retried)"
    } else {
        "Successful Mail Delivery Report"
    };
    let mut m = String::new();
    m.push_str(&format!(
        "From: Mail Delivery System <MAILER-DAEMON@{mta}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nDate: {date}\r\n\
         Message-ID: <dsn.{id:016x}@{mta}>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\"\r\n\r\n\
         This is a MIME-encapsulated delivery status notification.\r\n\r\n",
        mta = r.reporting_mta,
        to = clean(r.to),
        date = date(r.now),
        id = rand::thread_rng().gen::<u64>(),
    ));
    m.push_str(&format!(
        "--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    ));
    if failed {
        m.push_str(&format!(
            "This is the mail system at {}.\r\n\r\nYour message could not be delivered to one or more recipients.\r\nIt is attached below.\r\n\r\n",
            r.reporting_mta
        ));
    } else if delayed {
        m.push_str(&format!(
            "This is the mail system at {}.\r\n\r\nYour message has not been delivered yet to the recipients below.\r\nThe mail system will keep trying{}; you do not need to resend it.\r\n\r\n",
            r.reporting_mta,
            r.retry_until.map(|t| format!(" until {}", date(t))).unwrap_or_default()
        ));
    } else {
        m.push_str(&format!(
            "This is the mail system at {}.\r\n\r\nYour message was delivered to the recipients below, as you asked to be told.\r\n\r\n",
            r.reporting_mta
        ));
        if r.recipients.iter().any(|x| x.action == Action::Relayed) {
            m.push_str("Where it says \"relayed\", the message was passed to a system that\r\ndoes not report delivery, so no further notice will come from there.\r\n\r\n");
        }
    }
    for x in r.recipients {
        m.push_str(&format!(
            "<{}>: {}\r\n",
            clean(&x.address),
            clean(&x.diagnostic)
        ));
    }
    m.push_str(&format!(
        "\r\n--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
    ));
    m.push_str(&format!("Reporting-MTA: dns; {}\r\n", r.reporting_mta));
    if let Some(e) = r.envid {
        m.push_str(&format!("Original-Envelope-Id: {}\r\n", clean(e)));
    }
    m.push_str(&format!("Arrival-Date: {}\r\n", date(r.arrival)));
    for x in r.recipients {
        m.push_str("\r\n");
        if let Some(o) = &x.orcpt {
            m.push_str(&format!(
                "Original-Recipient: {}\r\n",
                clean(&crate::client::with_addr_type(o))
            ));
        }
        m.push_str(&format!(
            "Final-Recipient: rfc822; {}\r\n",
            clean(&x.address)
        ));
        let action = match x.action {
            Action::Failed => "failed",
            Action::Delayed => "delayed",
            Action::Delivered => "delivered",
            Action::Relayed => "relayed",
        };
        let status = status_code(&x.diagnostic, x.action);
        m.push_str(&format!("Action: {action}\r\nStatus: {status}\r\n"));
        if let Some((host, _)) = x.diagnostic.split_once(" said: ") {
            m.push_str(&format!("Remote-MTA: dns; {}\r\n", clean(host)));
        }
        let diag = x
            .diagnostic
            .split_once(" said: ")
            .map(|(_, d)| d)
            .unwrap_or(&x.diagnostic);
        m.push_str(&format!("Diagnostic-Code: smtp; {}\r\n", clean(diag)));
        if let (Action::Delayed, Some(t)) = (x.action, r.retry_until) {
            m.push_str(&format!("Will-Retry-Until: {}\r\n", date(t)));
        }
    }
    let mut out = m.into_bytes();
    if r.full && failed {
        out.extend_from_slice(
            format!("\r\n--{boundary}\r\nContent-Type: message/rfc822\r\n\r\n").as_bytes(),
        );
        out.extend_from_slice(r.original);
        if !r.original.ends_with(b"\r\n") {
            out.extend_from_slice(b"\r\n");
        }
    } else {
        out.extend_from_slice(
            format!("\r\n--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n").as_bytes(),
        );
        out.extend_from_slice(headers_of(r.original));
    }
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

/// Sends a report to `to` from the null sender: filed locally when `to` is
/// hosted here, otherwise queued (with NOTIFY=NEVER, so a report about a
/// report never happens). Returns what was done, for the log.
pub async fn dispatch(
    store: &outpost_store::Store,
    local: &dyn crate::LocalDelivery,
    to: &str,
    report: Vec<u8>,
) -> Result<String, String> {
    if local.deliver_local(to, &report).await? {
        return Ok("delivered locally".into());
    }
    let q = outpost_store::NewQueued {
        mail_from: String::new(),
        recipients: vec![outpost_store::QueuedRecipient {
            address: to.to_string(),
            notify: Some("never".into()),
            orcpt: None,
        }],
        body: if crate::client::is_8bit(&report) {
            "8bitmime"
        } else {
            "7bit"
        }
        .into(),
        ..outpost_store::NewQueued::default()
    };
    let id = store
        .enqueue(std::sync::Arc::from(report), q)
        .await
        .map_err(|e| format!("cannot queue it: {e}"))?;
    Ok(format!("queued as {id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(full: bool, action: Action) -> Vec<u8> {
        build(&Report {
            reporting_mta: "mail.example.test",
            to: "user@example.test",
            envid: Some("abc+def"),
            arrival: 1_700_000_000,
            now: 1_700_000_100,
            recipients: &[DsnRecipient {
                address: "bad@outside.example".into(),
                orcpt: Some("rfc822;Bad@outside.example".into()),
                action,
                diagnostic: "mx.outside.example said: 550 5.1.1 no such user".into(),
            }],
            original: b"Subject: hi\r\nFrom: user@example.test\r\n\r\nbody text\r\n",
            full,
            retry_until: Some(1_700_400_000),
        })
    }

    #[test]
    fn failed_report_parses_as_multipart_report() {
        use mail_parser::MimeHeaders;
        let raw = report(true, Action::Failed);
        let msg = mail_parser::MessageParser::default().parse(&raw).unwrap();
        let ct = msg.content_type().unwrap();
        assert_eq!(ct.ctype(), "multipart");
        assert_eq!(ct.subtype(), Some("report"));
        assert_eq!(ct.attribute("report-type"), Some("delivery-status"));
        let text = String::from_utf8_lossy(&raw);
        assert!(text.contains("Original-Envelope-Id: abc+def\r\n"), "{text}");
        assert!(text.contains("Original-Recipient: rfc822;Bad@outside.example\r\n"));
        assert!(text.contains("Final-Recipient: rfc822; bad@outside.example\r\nAction: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; mx.outside.example\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user\r\n"));
        assert!(text.contains("Content-Type: message/rfc822\r\n\r\nSubject: hi"));
        assert!(text.contains("body text"));
        assert!(text.trim_end().ends_with("--"));
    }

    #[test]
    fn headers_only_and_delay() {
        let text = String::from_utf8(report(false, Action::Failed)).unwrap();
        assert!(text.contains("text/rfc822-headers"));
        assert!(!text.contains("body text"));
        let text = String::from_utf8(report(true, Action::Delayed)).unwrap();
        assert!(text.contains("Action: delayed\r\nStatus: 5.1.1"));
        assert!(text.contains("Will-Retry-Until:"));
        assert!(
            !text.contains("body text"),
            "delay notices carry headers only"
        );
    }

    #[test]
    fn notify_rules() {
        assert!(wanted(None, Action::Failed));
        assert!(!wanted(Some("never"), Action::Failed));
        assert!(wanted(Some("success,failure"), Action::Failed));
        assert!(!wanted(Some("failure"), Action::Delayed));
        assert!(wanted(Some("FAILURE,DELAY"), Action::Delayed));
        assert_eq!(status_code("timeout", Action::Delayed), "4.0.0");
        // Success notices only when asked for.
        assert!(!wanted(None, Action::Delivered));
        assert!(!wanted(Some("failure,delay"), Action::Relayed));
        assert!(wanted(Some("SUCCESS"), Action::Delivered));
        assert!(wanted(Some("success,failure"), Action::Relayed));
        assert_eq!(
            status_code("delivered to mailbox", Action::Delivered),
            "2.0.0"
        );
    }

    #[test]
    fn success_report_says_delivered_with_headers_only() {
        let success = |action| {
            build(&Report {
                reporting_mta: "mail.example.test",
                to: "user@example.test",
                envid: None,
                arrival: 1_700_000_000,
                now: 1_700_000_100,
                recipients: &[DsnRecipient {
                    address: "friend@example.test".into(),
                    orcpt: None,
                    action,
                    diagnostic: "delivered to the mailbox".into(),
                }],
                original: b"Subject: hi\r\nFrom: user@example.test\r\n\r\nbody text\r\n",
                full: true,
                retry_until: None,
            })
        };
        let raw = success(Action::Delivered);
        let text = String::from_utf8_lossy(&raw);
        assert!(
            text.contains("Subject: Successful Mail Delivery Report"),
            "{text}"
        );
        assert!(
            text.contains("Action: delivered\r\nStatus: 2.0.0"),
            "{text}"
        );
        // Only the headers come back with a success notice.
        assert!(
            text.contains("text/rfc822-headers") && !text.contains("body text"),
            "{text}"
        );
        let raw = success(Action::Relayed);
        let text = String::from_utf8_lossy(&raw);
        assert!(text.contains("Action: relayed\r\nStatus: 2.0.0"), "{text}");
        assert!(text.contains("no further notice"), "{text}");
    }
}
