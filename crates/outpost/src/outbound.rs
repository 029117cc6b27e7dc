//! Wiring of the outbound queue runner (crate outpost-queue): settings
//! from `[queue]`; DSNs to hosted senders and DKIM signing come from the
//! mail flow (crate outpost-mailflow).

use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use outpost_config::{parse_duration, Config};
use outpost_queue::{FixedResolver, Hop, QueueSettings, Resolver, Runner};
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

/// The runner: notices to hosted senders are filed by the mail flow, and
/// the mail flow's DKIM keys sign what leaves.
pub fn runner(
    cfg: &Config,
    store: Store,
    flow: Arc<outpost_mailflow::MailFlow>,
) -> Result<Arc<Runner>> {
    Ok(Arc::new(Runner {
        store,
        settings: settings(cfg)?,
        resolver: resolver(cfg),
        signer: Some(flow.signer()),
        local: flow,
    }))
}
