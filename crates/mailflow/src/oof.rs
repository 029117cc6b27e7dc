//! The one out-of-office, as a service: read and set the managed
//! vacation block ([`outpost_sieve::oof`]) in a user's active Sieve
//! script. ActiveSync Settings, EWS, JMAP VacationResponse and the web UI
//! call these two functions; ManageSieve users see (and may edit) the same
//! script, so there is one source of truth.

use anyhow::{anyhow, Context, Result};
use outpost_sieve::oof::{self, OofContext, OutOfOffice};

use crate::MailFlow;

/// The script created when a user who has no active script sets an
/// out-of-office.
pub const OOF_SCRIPT: &str = "outpost";

impl MailFlow {
    /// The user's out-of-office: the managed block of the active script,
    /// or the default (disabled, no texts) when there is none.
    pub async fn out_of_office(&self, principal: i64) -> Result<OutOfOffice> {
        let active = self.store().sieve_active(principal).await?;
        Ok(active
            .and_then(|s| oof::read(&s.content))
            .unwrap_or_default())
    }

    /// Sets the user's out-of-office: the managed block of the active
    /// script is written (the rest of the script is kept), or a script
    /// [`OOF_SCRIPT`] holding only the block is created and activated when
    /// the user has no active script. The result is compiled by the
    /// delivery engine before it is stored, so a script that delivery
    /// could not run is never written.
    pub async fn set_out_of_office(&self, principal: i64, settings: &OutOfOffice) -> Result<()> {
        let store = self.store();
        let mut addresses: Vec<String> = store
            .addresses_of(principal)
            .await?
            .into_iter()
            .map(|(a, _)| a)
            .collect();
        addresses.sort();
        let internal_domains = store.domains().await?.into_iter().map(|d| d.name).collect();
        let ctx = OofContext {
            addresses,
            internal_domains,
        };
        let active = store.sieve_active(principal).await?;
        // Without an active script, an inactive one of ours (an earlier
        // out-of-office the user switched off over ManageSieve) is
        // reused rather than overwritten blindly.
        let (name, current) = match &active {
            Some(s) => (s.name.clone(), Some(s.content.clone())),
            None => (
                OOF_SCRIPT.to_owned(),
                store
                    .sieve_get(principal, OOF_SCRIPT)
                    .await?
                    .map(|s| s.content),
            ),
        };
        let script = oof::apply(current.as_deref(), settings, &ctx)?;
        self.engine()
            .compile(&script)
            .map_err(|e| anyhow!("the out-of-office script does not compile: {e}"))?;
        store
            .sieve_put(principal, &name, &script)
            .await
            .context("storing the out-of-office script")?;
        if active.is_none() {
            store.sieve_set_active(principal, Some(&name)).await?;
        }
        Ok(())
    }
}
