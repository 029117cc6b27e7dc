//! SPF/DKIM/DMARC on mail from other servers, and what the mail flow does
//! with the DMARC verdicts: `p=reject` refused, `p=quarantine` filed as
//! junk (see [`crate::Envelope::junk`]).

use std::net::IpAddr;

use tracing::info;

use crate::{Failure, MailFlow};

/// The checker and what to do with DMARC reject and quarantine verdicts.
pub struct InboundChecks {
    pub auth: outpost_queue::inbound::InboundAuth,
    /// Refuse mail that fails DMARC under `p=reject`.
    pub dmarc_reject: bool,
    /// File mail that fails DMARC under `p=quarantine` into Junk.
    pub dmarc_quarantine_junk: bool,
}

/// What the inbound checks decided about a message they let through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboundVerdict {
    /// Header fields to put on top (Authentication-Results), CRLF-ended.
    pub prepend: Vec<u8>,
    /// File it as junk.
    pub junk: bool,
}

impl MailFlow {
    /// Checks a message from another server (not authenticated) before
    /// delivery. `Err(Failure::Policy)` refuses it; `Err(Failure::Unresolved)`
    /// defers it when lost DNS answers leave the DMARC verdict open and that
    /// verdict would be acted on. Without configured
    /// checks everything passes unchanged.
    pub async fn check_inbound(
        &self,
        session_id: u64,
        peer_ip: IpAddr,
        helo: &str,
        mail_from: &str,
        message: &[u8],
    ) -> Result<InboundVerdict, Failure> {
        let Some(checks) = &self.inbound else {
            return Ok(InboundVerdict::default());
        };
        let v = checks.auth.check(peer_ip, helo, mail_from, message).await;
        if let Some(why) = &v.dns_undecided {
            // Only when the verdict would be acted on: a policy that is
            // only reported is no reason to make the sender wait.
            if checks.dmarc_reject || checks.dmarc_quarantine_junk {
                info!(session = session_id, "deferred: {why}");
                return Err(Failure::Unresolved(why.clone()));
            }
        }
        if v.dmarc_reject && checks.dmarc_reject {
            info!(
                session = session_id,
                "refused: DMARC policy of the From: domain is reject"
            );
            return Err(Failure::Policy(
                "Message refused: it fails the DMARC policy (p=reject) of its From: domain".into(),
            ));
        }
        let junk = v.dmarc_quarantine && checks.dmarc_quarantine_junk;
        if junk {
            info!(
                session = session_id,
                "filing as junk: DMARC policy of the From: domain is quarantine"
            );
        }
        Ok(InboundVerdict {
            prepend: v.header.into_bytes(),
            junk,
        })
    }
}
