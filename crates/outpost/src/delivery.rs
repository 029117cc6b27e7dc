//! The one local delivery function. SMTP (MX and submission to local
//! users), LMTP and `outpost deliver` all file mail through here, so the
//! Sieve engine has one place to hook into (it will choose the target
//! mailboxes per recipient; until then every copy goes to INBOX).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use outpost_directory::Recipient;
use outpost_store::{Store, StoreError, Target};

/// Remembers each user's INBOX id, so that a delivery does not have to look
/// it up every time (a collection's id never changes). A stale entry (the
/// user or mailbox was removed) shows as `NotFound` from the store; the
/// delivery then forgets the entries it used and looks them up again once.
#[derive(Default)]
pub struct InboxCache {
    ids: Mutex<HashMap<i64, i64>>,
}

impl InboxCache {
    /// Bound on remembered users; past it the cache starts over.
    const MAX: usize = 100_000;

    fn get(&self, principal: i64) -> Option<i64> {
        self.ids.lock().unwrap().get(&principal).copied()
    }

    fn put(&self, principal: i64, mailbox: i64) {
        let mut ids = self.ids.lock().unwrap();
        if ids.len() >= Self::MAX {
            ids.clear();
        }
        ids.insert(principal, mailbox);
    }

    fn forget(&self, principals: impl Iterator<Item = i64>) {
        let mut ids = self.ids.lock().unwrap();
        for p in principals {
            ids.remove(&p);
        }
    }
}

/// Delivers one message to local recipients. The blob is stored once and
/// every copy is filed in one transaction; returns after it is durable.
/// `return_path` is the envelope sender ("" for the null sender).
pub async fn deliver_local(
    store: &Store,
    return_path: &str,
    recipients: &[Recipient],
    message: &[u8],
) -> Result<(), StoreError> {
    deliver_local_cached(
        store,
        None,
        return_path,
        recipients,
        message,
        Filing::default(),
    )
    .await
    .map(|_| ())
}

/// What became of a delivery.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivered {
    /// Filed (and whatever the scripts sent is queued).
    Done,
    /// The recipient's Sieve script rejected it, and the caller asked to
    /// refuse in the protocol rather than send a rejection notice.
    Refused(String),
}

/// How a delivery is filed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Filing {
    /// With a single recipient, a Sieve reject/ereject comes back as
    /// [`Delivered::Refused`] (nothing stored), for the SMTP/LMTP server to
    /// answer 550 5.7.1 (RFC 5429 §2.1).
    pub may_refuse: bool,
    /// File as junk: what would go to INBOX (the implicit keep included)
    /// goes to the recipient's \Junk mailbox (DMARC `p=quarantine`).
    pub junk: bool,
}

/// [`deliver_local`] for long-running servers, with the INBOX ids kept in
/// `cache` (not used for junk).
pub async fn deliver_local_cached(
    store: &Store,
    cache: Option<&InboxCache>,
    return_path: &str,
    recipients: &[Recipient],
    message: &[u8],
    filing: Filing,
) -> Result<Delivered, StoreError> {
    if recipients.is_empty() {
        return Ok(Delivered::Done);
    }
    let mut raw = Vec::with_capacity(message.len() + return_path.len() + 20);
    raw.extend_from_slice(format!("Return-Path: <{return_path}>\r\n").as_bytes());
    raw.extend_from_slice(&strip_return_path(message));
    let raw: Arc<[u8]> = Arc::from(raw);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    // Sieve chooses the mailboxes when a global or personal script applies.
    use crate::sieve_delivery::Sieved;
    match crate::sieve_delivery::deliver(store, return_path, recipients, &raw, now, filing).await? {
        Sieved::NoScripts => {}
        Sieved::Delivered => return Ok(Delivered::Done),
        Sieved::Refused(why) => return Ok(Delivered::Refused(why)),
    }
    if filing.junk {
        let mut targets = Vec::with_capacity(recipients.len());
        for r in recipients {
            targets.push(Target {
                mailbox: junk(store, r).await?,
                flags: 0,
                keywords: Vec::new(),
            });
        }
        store.deliver(raw, targets, now).await?;
        return Ok(Delivered::Done);
    }
    let targets = inbox_targets(store, cache, recipients).await?;
    match store.deliver(raw.clone(), targets, now).await {
        Err(StoreError::NotFound(_)) if cache.is_some() => {
            let cache = cache.unwrap();
            cache.forget(recipients.iter().map(|r| r.principal_id));
            let targets = inbox_targets(store, Some(cache), recipients).await?;
            store.deliver(raw, targets, now).await?;
        }
        r => {
            r?;
        }
    }
    Ok(Delivered::Done)
}

async fn inbox_targets(
    store: &Store,
    cache: Option<&InboxCache>,
    recipients: &[Recipient],
) -> Result<Vec<Target>, StoreError> {
    let mut targets = Vec::with_capacity(recipients.len());
    for r in recipients {
        let cached = cache.and_then(|c| c.get(r.principal_id));
        let id = match cached {
            Some(id) => id,
            None => {
                let id = inbox(store, r).await?;
                if let Some(c) = cache {
                    c.put(r.principal_id, id);
                }
                id
            }
        };
        targets.push(Target {
            mailbox: id,
            flags: 0,
            keywords: Vec::new(),
        });
    }
    Ok(targets)
}

/// The user's \Junk mailbox (INBOX when it has none).
pub(crate) async fn junk(store: &Store, r: &Recipient) -> Result<i64, StoreError> {
    match store.mailbox_by_role(r.principal_id, "\\Junk").await? {
        Some(m) => Ok(m.id),
        None => inbox(store, r).await,
    }
}

/// The user's INBOX id; creates the default mailboxes when missing.
async fn inbox(store: &Store, r: &Recipient) -> Result<i64, StoreError> {
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
    Ok(inbox.id)
}

/// RFC 5321 4.4: the delivering server adds Return-Path; any a client
/// supplied is dropped (as Postfix's `message_drop_headers` does). Looks at
/// the whole header section, not just its start: the SMTP server has put
/// its `Received:` in front of the client's fields by now.
fn strip_return_path(message: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let mut pos = 0;
    while pos < message.len() {
        let rest = &message[pos..];
        // An empty line ends the header section.
        if rest.starts_with(b"\r\n") || rest.starts_with(b"\n") {
            break;
        }
        // The field runs to the end of its last folded continuation line.
        let mut end = pos;
        loop {
            match message[end..].iter().position(|&b| b == b'\n') {
                Some(p) => {
                    end += p + 1;
                    if !matches!(message.get(end), Some(b' ') | Some(b'\t')) {
                        break;
                    }
                }
                None => {
                    end = message.len();
                    break;
                }
            }
        }
        let field = &message[pos..end];
        let name = field
            .iter()
            .position(|&b| b == b':')
            .map(|c| field[..c].trim_ascii_end());
        let drop = name.is_some_and(|n| n.eq_ignore_ascii_case(b"return-path"));
        match (&mut out, drop) {
            (None, true) => out = Some(message[..pos].to_vec()),
            (Some(o), false) => o.extend_from_slice(field),
            _ => {}
        }
        pos = end;
    }
    match out {
        Some(mut o) => {
            o.extend_from_slice(&message[pos..]);
            std::borrow::Cow::Owned(o)
        }
        None => std::borrow::Cow::Borrowed(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_return_path_is_dropped() {
        assert_eq!(
            strip_return_path(b"Return-Path: <x@y>\r\nSubject: a\r\n\r\nb"),
            b"Subject: a\r\n\r\nb".as_slice()
        );
        assert_eq!(
            strip_return_path(b"return-path: <x@y>\r\n <z>\r\nA: b\r\n"),
            b"A: b\r\n".as_slice()
        );
        assert_eq!(
            strip_return_path(b"Subject: a\r\n"),
            b"Subject: a\r\n".as_slice()
        );
    }

    #[test]
    fn return_path_below_received_is_dropped_too() {
        let m = b"Received: from x\r\n\tby y; date\r\nReturn-Path : <f@e>\r\nSubject: s\r\n\r\nReturn-Path: <body>\r\n";
        assert_eq!(
            strip_return_path(m),
            b"Received: from x\r\n\tby y; date\r\nSubject: s\r\n\r\nReturn-Path: <body>\r\n"
                .as_slice()
        );
        let lf = b"A: 1\nreturn-path: <x>\nB: 2\n\nbody";
        assert_eq!(strip_return_path(lf), b"A: 1\nB: 2\n\nbody".as_slice());
        // Not a field name, only a prefix of one.
        let other = b"Return-Path-X: 1\r\n\r\n";
        assert_eq!(strip_return_path(other), other.as_slice());
    }
}
