//! The one local delivery function. SMTP (MX and submission to local
//! users), LMTP and `outpost deliver` all file mail through here, so the
//! Sieve engine has one place to hook into (it will choose the target
//! mailboxes per recipient; until then every copy goes to INBOX).

use std::sync::Arc;

use outpost_directory::Recipient;
use outpost_store::{Store, StoreError, Target};

/// Delivers one message to local recipients. The blob is stored once and
/// every copy is filed in one transaction; returns after it is durable.
/// `return_path` is the envelope sender ("" for the null sender).
pub async fn deliver_local(
    store: &Store,
    return_path: &str,
    recipients: &[Recipient],
    message: &[u8],
) -> Result<(), StoreError> {
    if recipients.is_empty() {
        return Ok(());
    }
    let mut raw = Vec::with_capacity(message.len() + return_path.len() + 20);
    raw.extend_from_slice(format!("Return-Path: <{return_path}>\r\n").as_bytes());
    raw.extend_from_slice(strip_return_path(message));
    let mut targets = Vec::with_capacity(recipients.len());
    for r in recipients {
        let inbox = match store.mailbox(r.principal_id, "INBOX").await? {
            Some(m) => m,
            None => {
                store.ensure_default_mailboxes(r.principal_id).await?;
                store
                    .mailbox(r.principal_id, "INBOX")
                    .await?
                    .ok_or_else(|| StoreError::Internal(format!("no INBOX for {}", r.address)))?
            }
        };
        targets.push(Target {
            mailbox: inbox.id,
            flags: 0,
            keywords: Vec::new(),
        });
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    store.deliver(Arc::from(raw), targets, now).await?;
    Ok(())
}

/// RFC 5321 4.4: the delivering server adds Return-Path; one a client
/// supplied is dropped.
fn strip_return_path(message: &[u8]) -> &[u8] {
    let mut m = message;
    while m.len() > 12 && m[..12].eq_ignore_ascii_case(b"return-path:") {
        // Skip the field with its folded continuation lines.
        let mut end = 0;
        loop {
            match m[end..].iter().position(|&b| b == b'\n') {
                Some(p) => {
                    end += p + 1;
                    if !matches!(m.get(end), Some(b' ') | Some(b'\t')) {
                        break;
                    }
                }
                None => {
                    end = m.len();
                    break;
                }
            }
        }
        m = &m[end..];
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_return_path_is_dropped() {
        assert_eq!(
            strip_return_path(b"Return-Path: <x@y>\r\nSubject: a\r\n\r\nb"),
            b"Subject: a\r\n\r\nb"
        );
        assert_eq!(
            strip_return_path(b"return-path: <x@y>\r\n <z>\r\nA: b\r\n"),
            b"A: b\r\n"
        );
        assert_eq!(strip_return_path(b"Subject: a\r\n"), b"Subject: a\r\n");
    }
}
