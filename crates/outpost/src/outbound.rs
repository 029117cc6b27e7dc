//! Wiring of the outbound queue runner (crate outpost-queue): settings
//! from `[queue]`, DSNs to hosted senders through local delivery, DKIM
//! keys from `<data_dir>/dkim`.

use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use outpost_config::{parse_duration, Config};
use outpost_directory::{Directory, Lookup};
use outpost_queue::{FixedResolver, Hop, LocalDelivery, QueueSettings, Resolver, Runner};
use outpost_store::Store;

pub fn settings(cfg: &Config) -> Result<QueueSettings> {
    let q = &cfg.queue;
    let relay = match &q.relay {
        Some(r) => {
            let (host, port) = r
                .rsplit_once(':')
                .ok_or_else(|| anyhow!("queue.relay: write \"host:port\""))?;
            Some(Hop {
                host: host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string(),
                port: port.parse().context("queue.relay: port")?,
            })
        }
        None => None,
    };
    let relay_auth = match (&q.relay_username, &q.relay_password_file) {
        (Some(u), Some(f)) => {
            let p = std::fs::read_to_string(f).with_context(|| {
                format!("queue.relay_password_file: cannot read {}", f.display())
            })?;
            Some((u.clone(), p.lines().next().unwrap_or("").to_string()))
        }
        _ => None,
    };
    let dur = |key: &str, v: &str| parse_duration(v).map_err(|m| anyhow!("queue.{key}: {m}"));
    Ok(QueueSettings {
        hostname: cfg.hostname.clone(),
        workers: q.workers,
        domain_workers: q.domain_workers,
        retry: q.retry_schedule(),
        max_age: dur("max_age", &q.max_age)?,
        delay_warning: dur("delay_warning", &q.delay_warning)?,
        relay,
        relay_auth,
        require_tls_domains: q.require_tls_domains.clone(),
        ..QueueSettings::default()
    })
}

/// The resolver: the `[queue] test_mx` table first, DNS for the rest.
pub fn resolver(cfg: &Config) -> Arc<dyn Resolver> {
    let mut fixed = FixedResolver::from_pairs(cfg.queue.test_mx.iter());
    fixed.unlisted_temporary = !cfg.queue.dns;
    if !cfg.queue.dns {
        return Arc::new(fixed);
    }
    match outpost_queue::DnsResolver::from_system() {
        Ok(d) => fixed.fallback = Some(Box::new(d)),
        Err(e) => tracing::warn!("queue: {e}; only [queue] test_mx destinations are reachable"),
    }
    Arc::new(fixed)
}

/// DSNs for hosted senders are filed like any local delivery.
/// Files reports (DSNs) for hosted addresses into their mailboxes.
pub(crate) struct LocalDsn {
    pub(crate) dir: Directory,
}

#[async_trait::async_trait]
impl LocalDelivery for LocalDsn {
    async fn deliver_local(&self, to: &str, message: &[u8]) -> Result<bool, String> {
        use crate::sieve_delivery::SrsRoute;
        // A DSN for mail a Sieve redirect sent with an SRS sender goes on
        // to the original sender.
        match crate::sieve_delivery::srs_route(&self.dir, to)
            .await
            .map_err(|e| e.to_string())?
        {
            SrsRoute::NotSrs => {}
            SrsRoute::Forward(orig) => {
                let q = outpost_store::NewQueued {
                    mail_from: String::new(),
                    recipients: vec![outpost_store::QueuedRecipient {
                        address: orig,
                        notify: Some("never".into()),
                        orcpt: None,
                    }],
                    body: "8bitmime".into(),
                    ..outpost_store::NewQueued::default()
                };
                self.dir
                    .store()
                    .enqueue(std::sync::Arc::from(message), q)
                    .await
                    .map_err(|e| e.to_string())?;
                return Ok(true);
            }
            SrsRoute::Invalid(e) => return Err(format!("{to}: {e}")),
        }
        match self.dir.resolve(to).await.map_err(|e| e.to_string())? {
            Lookup::Local(res) => {
                crate::delivery::deliver_local(self.dir.store(), "", &res.users, message)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(true)
            }
            Lookup::Unknown => Err(format!("{to} is in a hosted domain but has no mailbox")),
            Lookup::NotLocal => Ok(false),
        }
    }
}

pub fn runner(cfg: &Config, store: Store) -> Result<Arc<Runner>> {
    let signer = crate::dkim::signer(cfg)?;
    Ok(Arc::new(Runner {
        store: store.clone(),
        settings: settings(cfg)?,
        resolver: resolver(cfg),
        local: Arc::new(LocalDsn {
            dir: crate::setup::directory(store),
        }),
        signer,
    }))
}
