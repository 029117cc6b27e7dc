//! The queue runner: leases due recipients from the store, delivers them
//! with a bounded number of workers (and a cap per destination domain, so
//! a slow or dead destination never takes them all), records each
//! recipient's outcome and sends DSNs. State lives only in the store:
//! after a restart or a crash the runner carries on from there, and a
//! lease held by a dead process runs out after `lease`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use outpost_store::{LeasedGroup, RecipientOutcome, Store};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::client::{self, ClientOptions, RcptResult, SessionError, Transaction};
use crate::dsn::{self, Action, DsnRecipient};
use crate::resolve::{route, Hop, Resolver, RouteError};

/// Settings of the runner (from `[queue]`).
#[derive(Clone)]
pub struct QueueSettings {
    /// Our host name: EHLO, Reporting-MTA, MAILER-DAEMON@.
    pub hostname: String,
    pub workers: usize,
    pub domain_workers: usize,
    /// Waits between attempts; the last one repeats.
    pub retry: Vec<Duration>,
    pub max_age: Duration,
    pub delay_warning: Duration,
    /// Smarthost; None: deliver by MX.
    pub relay: Option<Hop>,
    pub relay_auth: Option<(String, String)>,
    pub require_tls_domains: Vec<String>,
    /// How often the store is asked for due work (new entries made by this
    /// process wake the runner at once; this catches retries coming due and
    /// entries made by other nodes).
    pub poll: Duration,
    /// How long a leased recipient stays ours without renewal; a running
    /// attempt renews it every third of this. After a crash, its
    /// recipients are due again when the lease runs out.
    pub lease: Duration,
    /// Per SMTP command.
    pub command_timeout: Duration,
    /// A whole delivery attempt (all hosts tried).
    pub attempt_timeout: Duration,
}

impl Default for QueueSettings {
    fn default() -> Self {
        QueueSettings {
            hostname: "localhost".into(),
            workers: 16,
            domain_workers: 4,
            retry: [60, 300, 900, 3600, 14400]
                .map(Duration::from_secs)
                .to_vec(),
            max_age: Duration::from_secs(5 * 86400),
            delay_warning: Duration::from_secs(4 * 3600),
            relay: None,
            relay_auth: None,
            require_tls_domains: Vec::new(),
            poll: Duration::from_secs(1),
            lease: Duration::from_secs(120),
            command_timeout: Duration::from_secs(300),
            attempt_timeout: Duration::from_secs(600),
        }
    }
}

/// The wait before attempt `attempts + 1`, after `attempts` failed ones.
pub fn retry_delay(schedule: &[Duration], attempts: i64) -> Duration {
    if schedule.is_empty() {
        return Duration::from_secs(300);
    }
    let i = (attempts.max(1) as usize - 1).min(schedule.len() - 1);
    schedule[i]
}

/// Where DSNs to hosted senders go: the binary files them through its
/// local delivery (Sieve included). Returns Ok(false) when `to` is not a
/// hosted address; the runner then queues the DSN for outbound delivery.
#[async_trait]
pub trait LocalDelivery: Send + Sync {
    async fn deliver_local(&self, to: &str, message: &[u8]) -> Result<bool, String>;
}

/// Signs outgoing mail: returns header field(s) to put on top, CRLF-ended.
pub trait Signer: Send + Sync {
    fn sign(&self, message: &[u8]) -> Option<String>;
}

pub struct Runner {
    pub store: Store,
    pub settings: QueueSettings,
    pub resolver: Arc<dyn Resolver>,
    pub local: Arc<dyn LocalDelivery>,
    pub signer: Option<Arc<dyn Signer>>,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Runner {
    /// Runs until `stop` turns true; then waits a little for deliveries in
    /// flight (their leases run out if they are cut off).
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let in_flight: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let done = Arc::new(tokio::sync::Notify::new());
        let mut tasks = tokio::task::JoinSet::new();
        info!(
            "queue: runner started ({} workers, {} per domain, {})",
            self.settings.workers,
            self.settings.domain_workers,
            match &self.settings.relay {
                Some(h) => format!("relay {}:{}", h.host, h.port),
                None => "delivery by MX".into(),
            }
        );
        loop {
            while tasks.try_join_next().is_some() {}
            if *stop.borrow() {
                break;
            }
            let busy = in_flight.lock().unwrap().clone();
            let total: usize = busy.values().sum();
            let free = self.settings.workers.saturating_sub(total);
            // A cheap read first: the lease is a write transaction, not
            // worth an fsync a second on an idle queue.
            let due = free > 0
                && match self.store.queue_next_due().await {
                    Ok(Some(t)) => t <= now(),
                    Ok(None) => false,
                    Err(e) => {
                        warn!("queue: cannot read the queue: {e}");
                        false
                    }
                };
            let leased = if due {
                self.store
                    .queue_lease(
                        now(),
                        self.settings.lease.as_secs() as i64,
                        free,
                        self.settings.domain_workers,
                        busy,
                    )
                    .await
            } else {
                Ok(Vec::new())
            };
            match leased {
                Ok(groups) => {
                    for g in groups {
                        *in_flight
                            .lock()
                            .unwrap()
                            .entry(g.domain.clone())
                            .or_insert(0) += 1;
                        let me = self.clone();
                        let in_flight = in_flight.clone();
                        let done = done.clone();
                        tasks.spawn(async move {
                            let domain = g.domain.clone();
                            me.deliver_group(g).await;
                            let mut f = in_flight.lock().unwrap();
                            if let Some(n) = f.get_mut(&domain) {
                                *n -= 1;
                                if *n == 0 {
                                    f.remove(&domain);
                                }
                            }
                            drop(f);
                            done.notify_one();
                        });
                    }
                }
                Err(e) => warn!("queue: cannot read the queue: {e}"),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.settings.poll) => {}
                _ = self.store.queue_changed() => {}
                _ = done.notified() => {}
                _ = stop.changed() => {}
            }
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !tasks.is_empty() {
            if tokio::time::timeout_at(deadline, tasks.join_next())
                .await
                .is_err()
            {
                warn!(
                    "queue: {} delivery attempt(s) cut off by shutdown; they are retried after their lease",
                    tasks.len()
                );
                tasks.abort_all();
                break;
            }
        }
        info!("queue: runner stopped");
    }

    /// One attempt for the recipients of one message at one domain.
    pub async fn deliver_group(&self, g: LeasedGroup) {
        let renewal = self.renew_lease(&g);
        self.deliver_group_leased(&g).await;
        renewal.abort();
    }

    /// Keeps the group's lease alive while its attempt runs.
    fn renew_lease(&self, g: &LeasedGroup) -> tokio::task::JoinHandle<()> {
        let store = self.store.clone();
        let lease = self.settings.lease;
        let ids: Vec<i64> = g.recipients.iter().map(|r| r.id).collect();
        tokio::spawn(async move {
            let every = (lease / 3).max(Duration::from_secs(1));
            loop {
                tokio::time::sleep(every).await;
                let t = now();
                if let Err(e) = store
                    .queue_renew(ids.clone(), t, t + lease.as_secs() as i64)
                    .await
                {
                    warn!("queue: cannot renew a lease: {e}");
                }
            }
        })
    }

    async fn deliver_group_leased(&self, g: &LeasedGroup) {
        let m = &g.message;
        let results: Vec<RcptResult> = match self.store.read_blob(&m.blob_hash).await {
            Err(e) => g
                .recipients
                .iter()
                .map(|_| RcptResult::Temporary(format!("cannot read the queued message: {e}")))
                .collect(),
            Ok(raw) => {
                let signed = self.sign(&raw);
                // For peers without 8BITMIME: the 7-bit form, signed as
                // such (a signature over the 8-bit form would break).
                let seven_bit = if client::is_8bit(&raw) {
                    match crate::downgrade::to_7bit(&raw) {
                        Ok(m) => Some(self.sign(&m)),
                        Err(e) => {
                            info!(queue = m.id, "queue: no 7-bit form of the message: {e}");
                            None
                        }
                    }
                } else {
                    None
                };
                match tokio::time::timeout(
                    self.settings.attempt_timeout,
                    self.attempt(g, &signed, seven_bit.as_deref()),
                )
                .await
                {
                    Ok(r) => r,
                    Err(_) => g
                        .recipients
                        .iter()
                        .map(|_| RcptResult::Temporary("delivery attempt timed out".into()))
                        .collect(),
                }
            }
        };
        self.settle(g, results).await;
    }

    fn sign(&self, raw: &[u8]) -> Vec<u8> {
        match self.signer.as_ref().and_then(|s| s.sign(raw)) {
            Some(h) => {
                let mut v = h.into_bytes();
                v.extend_from_slice(raw);
                v
            }
            None => raw.to_vec(),
        }
    }

    async fn attempt(
        &self,
        g: &LeasedGroup,
        message: &[u8],
        seven_bit: Option<&[u8]>,
    ) -> Vec<RcptResult> {
        let all = |r: RcptResult| vec![r; g.recipients.len()];
        let (hops, via_relay) = match &self.settings.relay {
            Some(h) => (vec![h.clone()], true),
            None => match route(self.resolver.as_ref(), &g.domain).await {
                Ok(h) => (h, false),
                Err(RouteError::Permanent(e)) => return all(RcptResult::Permanent(e)),
                Err(RouteError::Temporary(e)) => return all(RcptResult::Temporary(e)),
            },
        };
        let require_tls = !via_relay
            && self
                .settings
                .require_tls_domains
                .iter()
                .any(|d| d.eq_ignore_ascii_case(&g.domain));
        let opts = ClientOptions {
            helo: self.settings.hostname.clone(),
            require_tls,
            verify_tls: require_tls,
            auth: if via_relay {
                self.settings.relay_auth.clone()
            } else {
                None
            },
            timeout: self.settings.command_timeout,
        };
        let rcpts: Vec<client::Recipient> = g
            .recipients
            .iter()
            .map(|r| client::Recipient {
                address: r.address.clone(),
                notify: r.notify.clone(),
                orcpt: r.orcpt.clone(),
            })
            .collect();
        let tx = Transaction {
            mail_from: &g.message.mail_from,
            recipients: &rcpts,
            envid: g.message.envid.as_deref(),
            ret: g.message.ret.as_deref(),
            smtputf8: g.message.smtputf8,
            message,
            seven_bit,
        };
        let mut last = format!("no host to deliver to for {}", g.domain);
        for hop in &hops {
            let addrs: Vec<SocketAddr> = match self.resolver.addresses(&hop.host).await {
                Ok(ips) => ips
                    .into_iter()
                    .map(|ip| SocketAddr::new(ip, hop.port))
                    .collect(),
                Err(e) => {
                    last = e;
                    continue;
                }
            };
            for addr in addrs {
                let tcp = match tokio::time::timeout(
                    Duration::from_secs(30),
                    tokio::net::TcpStream::connect(addr),
                )
                .await
                {
                    Ok(Ok(t)) => t,
                    Ok(Err(e)) => {
                        last = format!("cannot connect to {} ({addr}): {e}", hop.host);
                        continue;
                    }
                    Err(_) => {
                        last = format!("connecting to {} ({addr}) timed out", hop.host);
                        continue;
                    }
                };
                match client::transact(tcp, &hop.host, &opts, &tx).await {
                    Ok(r) => return r,
                    Err(SessionError::Permanent(e)) => return all(RcptResult::Permanent(e)),
                    Err(SessionError::Temporary(e)) => last = e,
                }
            }
        }
        all(RcptResult::Temporary(last))
    }

    async fn settle(&self, g: &LeasedGroup, results: Vec<RcptResult>) {
        let m = &g.message;
        let t = now();
        let age = (t - m.created_at).max(0) as u64;
        let expired = age >= self.settings.max_age.as_secs();
        let warn_delay = age >= self.settings.delay_warning.as_secs();
        let mut outcomes = Vec::new();
        let mut failed = Vec::new();
        let mut delayed = Vec::new();
        let mut relayed = Vec::new();
        for (r, res) in g.recipients.iter().zip(results) {
            let outcome = match res {
                RcptResult::Delivered(reply) => {
                    info!(queue = m.id, rcpt = %r.address, "queue: delivered: {reply}");
                    RecipientOutcome::Delivered(reply)
                }
                RcptResult::Relayed(reply) => {
                    info!(queue = m.id, rcpt = %r.address, "queue: delivered (to a peer without DSN): {reply}");
                    if dsn::wanted(r.notify.as_deref(), Action::Relayed) {
                        relayed.push((r, reply.clone()));
                    }
                    RecipientOutcome::Delivered(reply)
                }
                RcptResult::Permanent(e) => {
                    warn!(queue = m.id, rcpt = %r.address, "queue: failed: {e}");
                    failed.push((r, e.clone()));
                    RecipientOutcome::Failed(e)
                }
                RcptResult::Temporary(e) if expired => {
                    let e = format!("gave up after {} attempt(s): {e}", r.attempts + 1);
                    warn!(queue = m.id, rcpt = %r.address, "queue: expired: {e}");
                    failed.push((r, e.clone()));
                    RecipientOutcome::Failed(e)
                }
                RcptResult::Temporary(e) => {
                    let wait = retry_delay(&self.settings.retry, r.attempts + 1);
                    info!(queue = m.id, rcpt = %r.address, "queue: deferred for {}s: {e}", wait.as_secs());
                    let notify_now = warn_delay && !r.delay_notified;
                    if notify_now && dsn::wanted(r.notify.as_deref(), Action::Delayed) {
                        delayed.push((r, e.clone()));
                    }
                    RecipientOutcome::Deferred {
                        next_attempt: t + wait.as_secs() as i64,
                        error: e,
                        delay_notified: notify_now,
                    }
                }
            };
            outcomes.push((r.id, outcome));
        }
        let failed: Vec<_> = failed
            .into_iter()
            .filter(|(r, _)| dsn::wanted(r.notify.as_deref(), Action::Failed))
            .collect();
        if !m.mail_from.is_empty() {
            for (list, action) in [
                (failed, Action::Failed),
                (delayed, Action::Delayed),
                (relayed, Action::Relayed),
            ] {
                if !list.is_empty() {
                    self.notify_sender(g, action, &list).await;
                }
            }
        }
        if let Err(e) = self.store.queue_settle(m.id, outcomes).await {
            warn!(
                queue = m.id,
                "queue: cannot record delivery results (they are retried after the lease): {e}"
            );
        }
    }

    async fn notify_sender(
        &self,
        g: &LeasedGroup,
        action: Action,
        list: &[(&outpost_store::LeasedRecipient, String)],
    ) {
        let m = &g.message;
        let original = match self.store.read_blob(&m.blob_hash).await {
            Ok(b) => b,
            Err(e) => {
                warn!(queue = m.id, "queue: no DSN: cannot read the message: {e}");
                return;
            }
        };
        let recipients: Vec<DsnRecipient> = list
            .iter()
            .map(|(r, e)| DsnRecipient {
                address: r.address.clone(),
                orcpt: r.orcpt.clone(),
                action,
                diagnostic: e.clone(),
            })
            .collect();
        let report = dsn::build(&dsn::Report {
            reporting_mta: &self.settings.hostname,
            to: &m.mail_from,
            envid: m.envid.as_deref(),
            arrival: m.created_at,
            now: now(),
            recipients: &recipients,
            original: &original,
            full: action == Action::Failed && m.ret.as_deref() != Some("headers"),
            retry_until: Some(m.created_at + self.settings.max_age.as_secs() as i64),
        });
        match dsn::dispatch(&self.store, self.local.as_ref(), &m.mail_from, report).await {
            Ok(how) => info!(queue = m.id, to = %m.mail_from, "queue: DSN ({action:?}) {how}"),
            Err(e) => {
                warn!(queue = m.id, to = %m.mail_from, "queue: DSN ({action:?}) not sent: {e}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_steps_then_repeats_last() {
        let s: Vec<Duration> = [1, 2, 5].map(Duration::from_secs).to_vec();
        assert_eq!(retry_delay(&s, 1), Duration::from_secs(1));
        assert_eq!(retry_delay(&s, 2), Duration::from_secs(2));
        assert_eq!(retry_delay(&s, 3), Duration::from_secs(5));
        assert_eq!(retry_delay(&s, 30), Duration::from_secs(5));
        assert_eq!(retry_delay(&s, 0), Duration::from_secs(1));
    }
}
