//! Where mail for a domain goes: MX lookup (RFC 5321 §5.1) behind a
//! [`Resolver`] trait, so tests can use a fixed table and no query ever
//! leaves the machine.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use async_trait::async_trait;
use rand::seq::SliceRandom;

/// One host to try, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub host: String,
    pub port: u16,
}

/// Why a domain has no host to deliver to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// The domain says it takes no mail (null MX, RFC 7505) or does not
    /// exist: a permanent failure.
    Permanent(String),
    /// DNS failed for now: try again later.
    Temporary(String),
}

/// Answer to an MX query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MxAnswer {
    /// (preference, exchange host, port)
    Records(Vec<(u16, String, u16)>),
    /// The domain exists but has no MX records: the implicit MX applies.
    NoRecords,
    /// The domain does not exist.
    NxDomain,
}

#[async_trait]
pub trait Resolver: Send + Sync {
    /// The MX records of `domain`, unordered.
    async fn mx(&self, domain: &str) -> Result<MxAnswer, String>;
    /// Addresses of a host (A and AAAA).
    async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, String>;
}

/// The hosts to try for `domain`, best first: ordered by preference with
/// equal preferences shuffled (RFC 5321 §5.1); the domain itself when it has
/// no MX (implicit MX); a permanent failure for a null MX (RFC 7505) or a
/// domain that does not exist.
pub async fn route(resolver: &dyn Resolver, domain: &str) -> Result<Vec<Hop>, RouteError> {
    match resolver.mx(domain).await.map_err(RouteError::Temporary)? {
        MxAnswer::NxDomain => Err(RouteError::Permanent(format!(
            "domain {domain} does not exist"
        ))),
        MxAnswer::NoRecords => Ok(vec![Hop {
            host: domain.to_string(),
            port: 25,
        }]),
        MxAnswer::Records(records) => order_mx(domain, records, &mut rand::thread_rng()),
    }
}

/// Orders MX records (RFC 5321 §5.1) and recognises a null MX.
pub fn order_mx(
    domain: &str,
    mut records: Vec<(u16, String, u16)>,
    rng: &mut impl rand::Rng,
) -> Result<Vec<Hop>, RouteError> {
    let is_null = |h: &str| h.is_empty() || h == ".";
    // RFC 7505 §3: a single record with an empty exchange means "no mail";
    // a null MX next to real ones is a misconfiguration and is skipped.
    if records.iter().all(|r| is_null(&r.1)) && !records.is_empty() {
        return Err(RouteError::Permanent(format!(
            "{domain} does not accept mail (null MX, RFC 7505)"
        )));
    }
    records.retain(|r| !is_null(&r.1));
    records.shuffle(rng);
    // Stable sort keeps the shuffled order among equal preferences.
    records.sort_by_key(|r| r.0);
    let mut out: Vec<Hop> = Vec::new();
    for (_, host, port) in records {
        let host = host.trim_end_matches('.').to_lowercase();
        if !out.iter().any(|h| h.host == host && h.port == port) {
            out.push(Hop { host, port });
        }
    }
    if out.is_empty() {
        return Err(RouteError::Temporary(format!("no MX hosts for {domain}")));
    }
    Ok(out)
}

/// Which name servers to ask and how long to wait for them.
///
/// A lost UDP packet must not cost a message seconds: within one try
/// hickory resends the query when no answer came after about 1.2 round-trip
/// times (at least 333 ms), and a try that gets no answer at all is given
/// up after `timeout` and repeated `retries` times. The worst a query can
/// take is `timeout × (retries + 1)`; the defaults (1 s, 3 retries) bound
/// it at 4 s where the system resolver's usual 5 s × 3 allowed 15 s.
/// (hickory's round-trip estimate grows by 150 ms with every failed try and
/// with every negative answer (NXDOMAIN, NODATA), and the in-try resend
/// waits 1.2 times that estimate: against a server that answers many
/// `_dmarc.` names with NXDOMAIN it soon stops resending within a try, and
/// each lost packet then costs a whole try, which is why the try must be
/// short. Identical lookups at once must also go through [`Flights`], or
/// one lost try fails them all.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsSettings {
    /// Name servers (UDP and TCP on the same port); empty: the system's
    /// (`/etc/resolv.conf`), whose own timeout and attempts are replaced by
    /// the two below.
    pub servers: Vec<SocketAddr>,
    /// How long one try of a query waits for an answer.
    pub timeout: std::time::Duration,
    /// Further tries after a try that got no answer.
    pub retries: usize,
}

impl Default for DnsSettings {
    fn default() -> Self {
        DnsSettings {
            servers: Vec::new(),
            timeout: std::time::Duration::from_secs(1),
            retries: 3,
        }
    }
}

impl DnsSettings {
    /// The hickory configuration for these settings.
    pub fn resolver_config(
        &self,
    ) -> Result<
        (
            hickory_resolver::config::ResolverConfig,
            hickory_resolver::config::ResolverOpts,
        ),
        String,
    > {
        use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
        let (config, mut opts) = if self.servers.is_empty() {
            hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| format!("cannot read the system's DNS configuration: {e}"))?
        } else {
            let servers = self
                .servers
                .iter()
                .map(|addr| {
                    let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                    for c in &mut ns.connections {
                        c.port = addr.port();
                    }
                    ns
                })
                .collect();
            (
                ResolverConfig::from_parts(None, vec![], servers),
                ResolverOpts::default(),
            )
        };
        opts.timeout = self.timeout;
        opts.attempts = self.retries;
        Ok((config, opts))
    }
}

/// Identical lookups in flight at once, answered by one of them.
///
/// hickory's name server pool shares a query that is already in flight
/// with whoever asks for it again, and keeps the shared (and finished)
/// attempt in its table until the task that started it runs again. A
/// lookup that joined another's attempt and got its timeout retries at
/// once (`RetryDnsHandle`), finds the same finished attempt still listed,
/// and gets the same timeout again: all its retries are spent within
/// microseconds, on the one lost packet of someone else's try. Under 10 %
/// loss that made about 1 % of lookups of a shared name (`_dmarc.` of a
/// common parent domain, the address of a busy MX host) fail after one
/// try instead of four (crates/queue/tests/lossy_dns.rs). Asking hickory
/// for each name only once at a time means every lookup it sees has
/// started its own attempts; callers asking for the same name meanwhile
/// wait for that lookup's result, with all its retries behind it.
pub(crate) struct Flights<V: Clone> {
    map: std::sync::Mutex<
        std::collections::HashMap<String, tokio::sync::watch::Receiver<Option<V>>>,
    >,
}

impl<V: Clone> Default for Flights<V> {
    fn default() -> Self {
        Flights {
            map: Default::default(),
        }
    }
}

/// Takes a finished (or abandoned) lookup out of the table.
struct Landing<'a, V: Clone> {
    flights: &'a Flights<V>,
    key: &'a str,
}

impl<V: Clone> Drop for Landing<'_, V> {
    fn drop(&mut self) {
        self.flights.map.lock().unwrap().remove(self.key);
    }
}

impl<V: Clone> Flights<V> {
    /// `lookup()`'s value, or that of the identical lookup already in
    /// flight under `key`. If that one is abandoned (its caller gave up),
    /// this caller looks up for itself.
    pub(crate) async fn run<F: std::future::Future<Output = V>>(
        &self,
        key: &str,
        lookup: impl FnOnce() -> F,
    ) -> V {
        loop {
            let joined = {
                let mut map = self.map.lock().unwrap();
                match map.get(key) {
                    Some(rx) => Err(rx.clone()),
                    None => {
                        let (tx, rx) = tokio::sync::watch::channel(None);
                        map.insert(key.to_string(), rx);
                        Ok(tx)
                    }
                }
            };
            match joined {
                Ok(tx) => {
                    let _landing = Landing { flights: self, key };
                    let v = lookup().await;
                    tx.send_replace(Some(v.clone()));
                    return v;
                }
                Err(mut rx) => {
                    if let Ok(v) = rx.wait_for(Option::is_some).await {
                        if let Some(v) = v.clone() {
                            return v;
                        }
                    }
                    // Abandoned: its Landing has taken it out; go again.
                }
            }
        }
    }
}

/// DNS through hickory-resolver, for the outbound queue's MX and address
/// lookups.
pub struct DnsResolver {
    inner: hickory_resolver::TokioResolver,
    mx: Flights<Result<MxAnswer, String>>,
    addresses: Flights<Result<Vec<IpAddr>, String>>,
}

impl DnsResolver {
    /// Name servers and timeouts as `dns` says.
    pub fn new(dns: &DnsSettings) -> Result<DnsResolver, String> {
        let (config, opts) = dns.resolver_config()?;
        let inner = hickory_resolver::TokioResolver::builder_with_config(
            config,
            hickory_resolver::net::runtime::TokioRuntimeProvider::default(),
        )
        .with_options(opts)
        .build()
        .map_err(|e| format!("DNS resolver: {e}"))?;
        Ok(DnsResolver {
            inner,
            mx: Flights::default(),
            addresses: Flights::default(),
        })
    }

    /// The system's name servers (`/etc/resolv.conf`) with the short tries
    /// of [`DnsSettings::default`] (1 s, 3 retries) instead of the system's
    /// 5 s: a lost packet delays a delivery attempt by about a second, not
    /// five, and a dead resolver fails the attempt after 4 s, after which
    /// the message stays queued for its next retry.
    pub fn from_system() -> Result<DnsResolver, String> {
        Self::new(&DnsSettings::default())
    }
}

#[async_trait]
impl Resolver for DnsResolver {
    async fn mx(&self, domain: &str) -> Result<MxAnswer, String> {
        let name = format!("{}.", domain.trim_end_matches('.')).to_ascii_lowercase();
        self.mx.run(&name, || self.mx_once(domain, &name)).await
    }

    async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, String> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let name = format!("{}.", host.trim_end_matches('.')).to_ascii_lowercase();
        self.addresses
            .run(&name, || async {
                match self.inner.lookup_ip(name.as_str()).await {
                    Ok(l) => Ok(l.iter().collect()),
                    Err(e) => Err(format!("address lookup for {host} failed: {e}")),
                }
            })
            .await
    }
}

impl DnsResolver {
    async fn mx_once(&self, domain: &str, name: &str) -> Result<MxAnswer, String> {
        match self.inner.mx_lookup(name).await {
            Ok(l) => {
                let mut v = Vec::new();
                for r in l.answers() {
                    if let hickory_resolver::proto::rr::RData::MX(mx) = &r.data {
                        v.push((mx.preference, mx.exchange.to_ascii(), 25));
                    }
                }
                Ok(if v.is_empty() {
                    MxAnswer::NoRecords
                } else {
                    MxAnswer::Records(v)
                })
            }
            Err(e) if e.is_nx_domain() => Ok(MxAnswer::NxDomain),
            Err(e) if e.is_no_records_found() => Ok(MxAnswer::NoRecords),
            Err(e) => Err(format!("MX lookup for {domain} failed: {e}")),
        }
    }
}

/// A fixed table (config `[queue] test_mx`), falling back to another
/// resolver (or to nothing) for domains it does not list. Hosts must be IP
/// literals.
#[derive(Default)]
pub struct FixedResolver {
    pub table: BTreeMap<String, MxAnswer>,
    pub fallback: Option<Box<dyn Resolver>>,
    /// Without a fallback: answer domains not in the table with a
    /// temporary failure (mail stays queued) instead of "does not exist".
    pub unlisted_temporary: bool,
}

impl FixedResolver {
    /// From `domain -> "host:port"` entries.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a String, &'a String)>) -> Self {
        let mut table = BTreeMap::new();
        for (d, hp) in pairs {
            if let Ok(sa) = hp.parse::<SocketAddr>() {
                table.insert(
                    d.to_lowercase(),
                    MxAnswer::Records(vec![(10, sa.ip().to_string(), sa.port())]),
                );
            }
        }
        FixedResolver {
            table,
            ..Default::default()
        }
    }
}

#[async_trait]
impl Resolver for FixedResolver {
    async fn mx(&self, domain: &str) -> Result<MxAnswer, String> {
        match self.table.get(&domain.to_lowercase()) {
            Some(a) => Ok(a.clone()),
            None => match &self.fallback {
                Some(f) => f.mx(domain).await,
                None if self.unlisted_temporary => Err(format!(
                    "{domain}: DNS lookups are off ([queue] dns = false) and it is not in [queue] test_mx"
                )),
                None => Ok(MxAnswer::NxDomain),
            },
        }
    }

    async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, String> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        match &self.fallback {
            Some(f) => f.addresses(host).await,
            None => Err(format!("{host}: not in the fixed resolver table")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rec(p: u16, h: &str) -> (u16, String, u16) {
        (p, h.to_string(), 25)
    }

    #[test]
    fn mx_ordered_by_preference_equals_shuffled() {
        let mut seen_first = std::collections::HashSet::new();
        for seed in 0..64 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let hops = order_mx(
                "d",
                vec![rec(20, "c."), rec(10, "a."), rec(10, "b."), rec(30, "d.")],
                &mut rng,
            )
            .unwrap();
            let hosts: Vec<_> = hops.iter().map(|h| h.host.as_str()).collect();
            assert_eq!(&hosts[2..], &["c", "d"]);
            seen_first.insert(hosts[0].to_string());
        }
        assert_eq!(seen_first.len(), 2, "equal preferences are randomised");
    }

    #[test]
    fn null_mx_is_permanent() {
        let mut rng = rand::thread_rng();
        assert!(matches!(
            order_mx("d", vec![rec(0, ".")], &mut rng),
            Err(RouteError::Permanent(_))
        ));
        // Next to a real MX a null one is ignored.
        let hops = order_mx("d", vec![rec(0, "."), rec(10, "mx.d.")], &mut rng).unwrap();
        assert_eq!(hops[0].host, "mx.d");
    }

    #[tokio::test]
    async fn implicit_mx_and_nxdomain() {
        let mut f = FixedResolver::default();
        f.table.insert("plain.example".into(), MxAnswer::NoRecords);
        f.table
            .insert("null.example".into(), MxAnswer::Records(vec![rec(0, ".")]));
        let hops = route(&f, "plain.example").await.unwrap();
        assert_eq!(
            hops,
            vec![Hop {
                host: "plain.example".into(),
                port: 25
            }]
        );
        assert!(matches!(
            route(&f, "null.example").await,
            Err(RouteError::Permanent(_))
        ));
        assert!(matches!(
            route(&f, "gone.example").await,
            Err(RouteError::Permanent(_))
        ));
    }
}
