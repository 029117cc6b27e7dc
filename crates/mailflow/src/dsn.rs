//! Delivery notices (RFC 3464) and the mail flow: success notices at local
//! delivery (NOTIFY=SUCCESS), and the queue's notices to hosted senders
//! filed here. The notice format is `outpost_queue::dsn` (see the crate
//! docs for why it stays there).

use std::sync::Arc;

use outpost_directory::Lookup;
use outpost_queue::dsn::{self, Action, DsnRecipient};
use outpost_queue::LocalDelivery;
use outpost_store::{NewQueued, QueuedRecipient};
use tracing::{info, warn};

use crate::sieve::SrsRoute;
use crate::{Envelope, MailFlow};

impl MailFlow {
    /// NOTIFY=SUCCESS (RFC 3461): tells the sender which of its local
    /// recipients got the message. Headers only; never for the null sender.
    /// A failure to send the notice is logged; the delivery stands.
    pub(crate) async fn success_notices(&self, envelope: &Envelope, message: &[u8]) {
        if envelope.mail_from.is_empty() {
            return;
        }
        let recipients: Vec<DsnRecipient> = envelope
            .recipients
            .iter()
            .filter(|r| r.notify.is_some_and(|n| n.success))
            .map(|r| DsnRecipient {
                address: r.address.clone(),
                orcpt: r.orcpt.clone(),
                action: Action::Delivered,
                diagnostic: "delivered to the mailbox".into(),
            })
            .collect();
        if recipients.is_empty() {
            return;
        }
        let now = outpost_store::now();
        let report = dsn::build(&dsn::Report {
            reporting_mta: &self.hostname,
            to: &envelope.mail_from,
            envid: envelope.envid.as_deref(),
            arrival: now,
            now,
            recipients: &recipients,
            original: message,
            full: false,
            retry_until: None,
        });
        match dsn::dispatch(self.store(), self, &envelope.mail_from, report).await {
            Ok(how) => info!(
                session = envelope.session_id,
                "success notice for {} to {}: {how}", envelope.message_id, envelope.mail_from
            ),
            Err(e) => warn!(
                session = envelope.session_id,
                "success notice for {} not sent: {e}", envelope.message_id
            ),
        }
    }
}

/// Notices from the queue runner to hosted senders are filed like any
/// local delivery (Sieve included); one to an SRS address of ours (mail a
/// redirect or group sent on) goes on to the original sender.
#[async_trait::async_trait]
impl LocalDelivery for MailFlow {
    async fn deliver_local(&self, to: &str, message: &[u8]) -> Result<bool, String> {
        match self.srs_route(to).await.map_err(|e| e.to_string())? {
            SrsRoute::NotSrs => {}
            SrsRoute::Forward(orig) => {
                let q = NewQueued {
                    mail_from: String::new(),
                    recipients: vec![QueuedRecipient {
                        address: orig,
                        notify: Some("never".into()),
                        orcpt: None,
                    }],
                    body: "8bitmime".into(),
                    ..NewQueued::default()
                };
                self.store()
                    .enqueue(Arc::from(message), q)
                    .await
                    .map_err(|e| e.to_string())?;
                return Ok(true);
            }
            SrsRoute::Invalid(e) => return Err(format!("{to}: {e}")),
        }
        match self.dir.resolve(to).await.map_err(|e| e.to_string())? {
            Lookup::Local(res) => {
                MailFlow::deliver_local(self, "", &res.users, message)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(true)
            }
            Lookup::Unknown => Err(format!("{to} is in a hosted domain but has no mailbox")),
            Lookup::NotLocal => Ok(false),
        }
    }
}
