//! Checks on mail arriving at the MX: SPF (RFC 7208) for the MAIL FROM (or
//! HELO) identity, DKIM (RFC 6376) signatures, ARC (RFC 8617) chains added
//! by forwarders and lists, and DMARC (RFC 7489) on the From: domain, with
//! mail-auth; the outcome as an
//! `Authentication-Results:` field (RFC 8601) for Sieve rules and clients,
//! and whether the domain's DMARC policy asks for rejection.
//!
//! DNS is the slow part, and on a lossy network the part that stalls a
//! session. So every TXT record a message's checks are known to need (SPF
//! of the HELO and MAIL FROM domains, the DKIM and ARC keys its signatures
//! name, the DMARC tree walk of its From: domain) is asked for at once,
//! before the checks run; the answers, and the failures, are kept for the
//! rest of that message's checks, which then run side by side. Queries are
//! short and retried ([`DnsSettings`]); answers are cached by their TTL
//! (here for parsed records, in hickory for whole responses, negative ones
//! included). When DNS leaves a decision open (the From: domain's DMARC
//! policy unknown, or a pass or fail that hangs on a failed query) the
//! verdict says so, and the caller answers `451 4.4.3` (RFC 7208 §8.6)
//! instead of guessing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use mail_auth::common::headers::HeaderWriter;
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::resolver::UnwrapTxtRecord;
use mail_auth::common::verify::{DomainKey, VerifySignature};
use mail_auth::dmarc::{Dmarc, Policy};
use mail_auth::spf::verify::SpfParameters;
use mail_auth::spf::Spf;
use mail_auth::{
    AuthenticatedMessage, AuthenticationResults, DmarcResult, MessageAuthenticator, Parameters,
    ResolverCache, Txt,
};

pub use crate::resolve::DnsSettings;
use crate::resolve::Flights;

/// A small TXT cache (SPF, DKIM keys, DMARC records) that honours the
/// records' TTL; entries inserted by [`InboundAuth::with_records`] never
/// expire.
/// A record and when it expires (never: None).
type Entry = (Txt, Option<Instant>);

#[derive(Default)]
pub struct TxtCache {
    map: Mutex<HashMap<Box<str>, Entry>>,
    /// Fixed records only: a name not in the map has no records (NXDOMAIN)
    /// rather than being asked of a DNS server.
    closed: bool,
}

impl TxtCache {
    const MAX: usize = 10_000;
}

impl ResolverCache<Box<str>, Txt> for TxtCache {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        let map = self.map.lock().unwrap();
        match map.get(name) {
            Some((v, None)) => Some(v.clone()),
            Some((v, Some(until))) if *until > Instant::now() => Some(v.clone()),
            _ if self.closed => Some(Txt::Error(mail_auth::Error::Dns(
                mail_auth::DnsError::RecordNotFound(
                    hickory_resolver::proto::op::ResponseCode::NXDomain,
                ),
            ))),
            _ => None,
        }
    }

    fn remove<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.map.lock().unwrap().remove(name).map(|(v, _)| v)
    }

    fn insert(&self, key: Box<str>, value: Txt, valid_until: Instant) {
        let mut map = self.map.lock().unwrap();
        if map.len() >= Self::MAX {
            map.retain(|_, (_, until)| until.is_none());
        }
        map.insert(key, (value, Some(valid_until)));
    }
}

/// The result of the checks on one message.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// `Authentication-Results: ...` with CRLF, to put on top.
    pub header: String,
    /// DMARC failed and the From: domain publishes p=reject.
    pub dmarc_reject: bool,
    /// DMARC failed and the From: domain publishes p=quarantine.
    pub dmarc_quarantine: bool,
    /// DNS left the DMARC outcome open: the From: domain's policy could not
    /// be fetched, or it asks for reject or quarantine and the mechanisms
    /// that could pass it failed to resolve. Enforcing the policy now would
    /// be a guess; the message should be deferred (451 4.4.3) if the
    /// policy would be acted on. The reason, for the log.
    pub dns_undecided: Option<String>,
}

/// One message's view of the TXT cache: what its prefetch and its checks
/// learned, failures included (mail-auth caches only answers it could
/// parse), on top of the shared cache. Lives for one call of
/// [`InboundAuth::check`], so a lost query is paid for once per message,
/// not once per check that needs the record.
struct MessageCache<'a> {
    shared: &'a TxtCache,
    local: Mutex<HashMap<Box<str>, Txt>>,
}

impl ResolverCache<Box<str>, Txt> for MessageCache<'_> {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        if let Some(v) = self.local.lock().unwrap().get(name) {
            return Some(v.clone());
        }
        self.shared.get(name)
    }

    fn remove<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        let local = self.local.lock().unwrap().remove(name);
        self.shared.remove(name).or(local)
    }

    fn insert(&self, key: Box<str>, value: Txt, valid_until: Instant) {
        self.local
            .lock()
            .unwrap()
            .insert(key.clone(), value.clone());
        self.shared.insert(key, value, valid_until);
    }
}

/// `name` as a lower-case absolute name, as mail-auth keys its cache.
fn fqdn(name: &str) -> String {
    let mut n = name.trim_end_matches('.').to_ascii_lowercase();
    n.push('.');
    n
}

/// Looks like a domain name worth asking DNS about (not an address
/// literal, not a bare word).
fn is_domain(d: &str) -> bool {
    let d = d.trim_end_matches('.');
    d.contains('.')
        && d.parse::<IpAddr>().is_err()
        && !d.starts_with('[')
        && d.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
}

/// The names the DMARC tree walk (RFC 9989 §4.10, as mail-auth 0.13 does
/// it) asks for `domain`: `_dmarc.` on the domain itself, then on its
/// ancestors, starting at 7 labels for long names, down to the TLD.
fn dmarc_walk(domain: &str) -> Vec<String> {
    let labels: Vec<&str> = domain
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
        .collect();
    let total = labels.len();
    let mut out = Vec::new();
    if total < 2 {
        return out;
    }
    let mut count = total;
    loop {
        out.push(format!("_dmarc.{}.", labels[total - count..].join(".")));
        if count == 1 {
            break;
        }
        count = if count >= 8 { 7 } else { count - 1 };
    }
    out
}

pub struct InboundAuth {
    hostname: String,
    auth: MessageAuthenticator,
    cache: TxtCache,
    /// Prefetches in flight, by name.
    flights: Flights<Option<Txt>>,
}

impl InboundAuth {
    /// DNS as `dns` says: the system's name servers or the given ones, with
    /// its timeouts.
    pub fn new(hostname: &str, dns: &DnsSettings) -> Result<InboundAuth, String> {
        let (config, opts) = dns.resolver_config()?;
        Ok(InboundAuth {
            hostname: hostname.to_string(),
            auth: MessageAuthenticator::new(config, opts)
                .map_err(|e| format!("DNS resolver: {e}"))?,
            cache: TxtCache::default(),
            flights: Flights::default(),
        })
    }

    /// DNS through the system's resolver configuration, with the default
    /// timeouts of [`DnsSettings`].
    pub fn from_system(hostname: &str) -> Result<InboundAuth, String> {
        Self::new(hostname, &DnsSettings::default())
    }

    /// Fixed TXT records (name, value) and no DNS server at all: for tests
    /// and closed networks. A name not given has no records.
    pub fn with_records<'a>(
        hostname: &str,
        records: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<InboundAuth, String> {
        use hickory_resolver::config::{ResolverConfig, ResolverOpts};
        let auth = MessageAuthenticator::new(
            ResolverConfig::from_parts(None, vec![], vec![]),
            ResolverOpts::default(),
        )
        .map_err(|e| e.to_string())?;
        let cache = TxtCache {
            closed: true,
            ..TxtCache::default()
        };
        for (name, value) in records {
            let v = value.as_bytes();
            let txt: Txt = if value.starts_with("v=spf1") {
                Spf::parse(v).map(Txt::from)
            } else if value.starts_with("v=DMARC1") {
                Dmarc::parse(v).map(Txt::from)
            } else {
                DomainKey::parse(v).map(Txt::from)
            }
            .map_err(|e| format!("{name}: {value:?}: {e}"))?;
            let fqdn = format!("{}.", name.trim_end_matches('.'));
            let mut map = cache.map.lock().unwrap();
            map.insert(fqdn.clone().into(), (txt.clone(), None));
            map.insert(fqdn.trim_end_matches('.').into(), (txt, None));
        }
        Ok(InboundAuth {
            hostname: hostname.to_string(),
            auth,
            cache,
            flights: Flights::default(),
        })
    }

    /// Asks for one TXT record ahead of the checks; a failure is kept in
    /// the message's cache so that the check needing it does not ask again.
    async fn prefetch<T: TxtRecordParser + Into<Txt> + UnwrapTxtRecord>(
        &self,
        cache: &MessageCache<'_>,
        name: String,
    ) {
        // One lookup per name at a time across messages (see
        // [`Flights`]): the others wait for its answer, or its failure
        // after all its tries, and keep it as their own.
        let key = fqdn(&name);
        let got = self
            .flights
            .run(&key, || async {
                match self.auth.txt_lookup::<T>(name.as_str(), Some(cache)).await {
                    // mail-auth put what it parsed into this message's cache
                    // (nothing when the shared cache answered).
                    Ok(_) => cache.local.lock().unwrap().get(key.as_str()).cloned(),
                    Err(e) => Some(Txt::Error(e)),
                }
            })
            .await;
        if let Some(txt) = got {
            cache.local.lock().unwrap().insert(key.into(), txt);
        }
    }

    /// Every TXT record the checks of `msg` are known to need before they
    /// start, asked for side by side: SPF of the HELO and MAIL FROM
    /// domains, the keys of the DKIM and ARC signatures, the DMARC walk of
    /// the From: domain (and of the MAIL FROM and signing domains under the
    /// same parent, whose organizational domain DMARC alignment may need).
    async fn prefetch_all(
        &self,
        cache: &MessageCache<'_>,
        msg: &AuthenticatedMessage<'_>,
        helo: &str,
        mail_from_domain: &str,
    ) {
        let mut spf: Vec<String> = Vec::new();
        let mut keys: Vec<String> = Vec::new();
        let mut dmarc: Vec<String> = Vec::new();
        let push = |v: &mut Vec<String>, n: String| {
            if !v.contains(&n) {
                v.push(n);
            }
        };
        for d in [helo, mail_from_domain] {
            if is_domain(d) {
                push(&mut spf, fqdn(d));
            }
        }
        for h in &msg.dkim_headers {
            push(&mut keys, h.header.domain_key().to_ascii_lowercase());
        }
        for h in &msg.ams_headers {
            push(&mut keys, h.header.domain_key().to_ascii_lowercase());
        }
        for h in &msg.as_headers {
            push(&mut keys, h.header.domain_key().to_ascii_lowercase());
        }
        // DMARC looks at a single From: domain only.
        let from_domain = msg
            .from
            .first()
            .and_then(|f| f.rsplit_once('@'))
            .map(|(_, d)| mail_auth::common::to_a_label(d).to_ascii_lowercase());
        if let Some(from) = from_domain.filter(|d| is_domain(d)) {
            let parent = |d: &str| {
                let l: Vec<&str> = d.trim_end_matches('.').rsplitn(3, '.').collect();
                l.get(1).map(|p| format!("{p}.{}", l[0]))
            };
            let mut domains = vec![from.clone()];
            let signers = msg.dkim_headers.iter().map(|h| h.header.domain());
            for d in std::iter::once(mail_from_domain).chain(signers) {
                let d = d.to_ascii_lowercase();
                if d != from && is_domain(&d) && parent(&d) == parent(&from) {
                    domains.push(d);
                }
            }
            for d in domains {
                for n in dmarc_walk(&d) {
                    push(&mut dmarc, n);
                }
            }
        }
        let spf = spf.into_iter().map(|n| self.prefetch::<Spf>(cache, n));
        let keys = keys
            .into_iter()
            .map(|n| self.prefetch::<DomainKey>(cache, n));
        let dmarc = dmarc.into_iter().map(|n| self.prefetch::<Dmarc>(cache, n));
        tokio::join!(
            join_all(spf.collect()),
            join_all(keys.collect()),
            join_all(dmarc.collect())
        );
    }

    pub async fn check(&self, ip: IpAddr, helo: &str, mail_from: &str, message: &[u8]) -> Verdict {
        let Some(msg) = AuthenticatedMessage::parse(message) else {
            return Verdict {
                header: format!("Authentication-Results: {}; none\r\n", self.hostname),
                dmarc_reject: false,
                dmarc_quarantine: false,
                dns_undecided: None,
            };
        };
        let mail_from_domain = mail_from
            .rsplit_once('@')
            .map(|(_, d)| d)
            .unwrap_or(helo)
            .to_lowercase();
        let cache = MessageCache {
            shared: &self.cache,
            local: Mutex::default(),
        };
        self.prefetch_all(&cache, &msg, helo, &mail_from_domain)
            .await;

        // DKIM, SPF (whose include: and redirect= chains are only known as
        // they resolve) and ARC side by side; DMARC needs the first two.
        let spf_params = if mail_from.is_empty() {
            SpfParameters::verify_ehlo(ip, helo, &self.hostname)
        } else {
            SpfParameters::verify_mail_from(ip, helo, &self.hostname, mail_from)
        };
        let (dkim, spf, arc) = tokio::join!(
            self.auth
                .verify_dkim(Parameters::new(&msg).with_txt_cache(&cache)),
            self.auth
                .verify_spf(Parameters::new(spf_params).with_txt_cache(&cache)),
            // ARC is reported for Sieve rules and clients; it does not
            // override DMARC here (a local policy on trusted sealers would
            // be needed).
            self.auth
                .verify_arc(Parameters::new(&msg).with_txt_cache(&cache)),
        );
        let dmarc = self
            .auth
            .verify_dmarc(
                Parameters::new(mail_auth::dmarc::verify::DmarcParameters::new(
                    &msg,
                    &dkim,
                    &mail_from_domain,
                    &spf,
                ))
                .with_txt_cache(&cache),
            )
            .await;
        let header = AuthenticationResults::new(&self.hostname)
            .with_dkim_results(&dkim, msg.from())
            .with_spf_mailfrom_result(&spf, ip, mail_from, helo)
            .with_arc_result(&arc, ip)
            .with_dmarc_result(&dmarc)
            .to_header();
        // RFC 7489 §6.6.2: DMARC passes when either aligned mechanism
        // passes; the policy applies only to a definite failure, never to
        // a temporary or permanent error in the checks.
        let pass = |r: &DmarcResult| matches!(r, DmarcResult::Pass);
        let temp = |r: &DmarcResult| matches!(r, DmarcResult::TempError(_));
        let error = |r: &DmarcResult| temp(r) || matches!(r, DmarcResult::PermError(_));
        let (d, s) = (dmarc.dkim_result(), dmarc.spf_result());
        let failed = !pass(d) && !pass(s) && !error(d) && !error(s);
        // Open because of DNS: the policy lookup itself failed (mail-auth
        // then reports the walk's error as both results), or a policy that
        // acts is in force and neither mechanism passed while one of them
        // could not be resolved.
        let policy_acts = matches!(dmarc.policy(), Policy::Reject | Policy::Quarantine);
        let dns_undecided = if !pass(d) && !pass(s) && (temp(d) || temp(s)) {
            if dmarc.dmarc_record().is_none() && temp(d) && temp(s) {
                Some(format!(
                    "the DMARC policy of {} could not be fetched from DNS",
                    dmarc.domain()
                ))
            } else if policy_acts {
                Some(format!(
                    "DNS left the DMARC result for {} open",
                    dmarc.domain()
                ))
            } else {
                None
            }
        } else {
            None
        };
        Verdict {
            header,
            dmarc_reject: failed && dmarc.policy() == Policy::Reject,
            dmarc_quarantine: failed && dmarc.policy() == Policy::Quarantine,
            dns_undecided,
        }
    }
}

async fn join_all<F: std::future::Future>(fs: Vec<F>) -> Vec<F::Output> {
    futures::future::join_all(fs).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dkim::{self, Algorithm};
    use crate::Signer;

    #[tokio::test]
    async fn spf_dkim_dmarc_pass_and_reject() {
        let dir = tempfile::tempdir().unwrap();
        let path = dkim::generate(dir.path(), "sender.example", "s1", Algorithm::Ed25519).unwrap();
        let key_txt = dkim::dns_txt(&std::fs::read_to_string(path).unwrap()).unwrap();
        let checks = InboundAuth::with_records(
            "mx.example.test",
            [
                ("sender.example", "v=spf1 ip4:192.0.2.1 -all"),
                ("s1._domainkey.sender.example", key_txt.as_str()),
                ("_dmarc.sender.example", "v=DMARC1; p=reject"),
            ],
        )
        .unwrap();
        let msg = b"From: A <a@sender.example>\r\nTo: b@example.test\r\nSubject: hi\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\nMessage-ID: <x@sender.example>\r\n\r\nHello\r\n";
        let signer = dkim::KeyDir::new(dir.path().to_path_buf(), "s1".into());
        let mut signed = signer.sign(msg).unwrap().into_bytes();
        signed.extend_from_slice(msg);

        let ok: IpAddr = "192.0.2.1".parse().unwrap();
        let bad: IpAddr = "198.51.100.7".parse().unwrap();
        let v = checks
            .check(ok, "mail.sender.example", "a@sender.example", &signed)
            .await;
        assert!(
            v.header
                .starts_with("Authentication-Results: mx.example.test;"),
            "{}",
            v.header
        );
        for want in ["dkim=pass", "spf=pass", "dmarc=pass"] {
            assert!(v.header.contains(want), "{want} in {}", v.header);
        }
        assert!(!v.dmarc_reject);

        // Signed but from an address SPF does not allow: DKIM carries DMARC.
        let v = checks
            .check(bad, "mail.sender.example", "a@sender.example", &signed)
            .await;
        assert!(
            v.header.contains("spf=fail") && v.header.contains("dmarc=pass"),
            "{}",
            v.header
        );
        assert!(!v.dmarc_reject);

        // Unsigned from the wrong address: DMARC fails, p=reject.
        let v = checks
            .check(bad, "mail.sender.example", "a@sender.example", msg)
            .await;
        assert!(v.header.contains("dmarc=fail"), "{}", v.header);
        assert!(v.dmarc_reject);

        // Without ARC headers the chain is reported as none.
        assert!(v.header.contains("arc=none"), "{}", v.header);

        // Tampered body: the signature no longer passes (mail-auth says
        // "neutral (body hash did not verify)").
        let tampered = String::from_utf8(signed).unwrap().replace("Hello", "Hullo");
        let v = checks
            .check(ok, "h", "a@sender.example", tampered.as_bytes())
            .await;
        assert!(
            !v.header.contains("dkim=pass") && v.header.contains("body hash"),
            "{}",
            v.header
        );
    }

    /// A DNS server on 127.0.0.1 (UDP) for the TXT records of `zone`, with
    /// TTL 0 (nothing cached) and NXDOMAIN for names it does not have; the
    /// n-th query (from 0) goes unanswered when `lose(n)`. Returns its
    /// address and the number of queries it got.
    async fn dns_server(
        zone: Vec<(&'static str, String)>,
        lose: impl Fn(usize) -> bool + Send + 'static,
    ) -> (
        std::net::SocketAddr,
        std::sync::Arc<std::sync::atomic::AtomicUsize>,
    ) {
        use hickory_resolver::proto::op::{Message, ResponseCode};
        use hickory_resolver::proto::rr::rdata::TXT;
        use hickory_resolver::proto::rr::{RData, Record, RecordType};
        use std::sync::atomic::Ordering;
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = count.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((n, peer)) = sock.recv_from(&mut buf).await {
                if lose(seen.fetch_add(1, Ordering::SeqCst)) {
                    continue;
                }
                let Ok(q) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let Some(query) = q.queries.first().cloned() else {
                    continue;
                };
                let mut r = Message::response(q.metadata.id, q.metadata.op_code);
                r.metadata.authoritative = true;
                r.metadata.recursion_desired = q.metadata.recursion_desired;
                let name = query
                    .name()
                    .to_ascii()
                    .trim_end_matches('.')
                    .to_ascii_lowercase();
                let found: Vec<&String> = zone
                    .iter()
                    .filter(|(n, _)| *n == name)
                    .map(|(_, v)| v)
                    .collect();
                if found.is_empty() {
                    r.metadata.response_code = ResponseCode::NXDomain;
                } else if query.query_type() == RecordType::TXT {
                    for v in found {
                        r.add_answer(Record::from_rdata(
                            query.name().clone(),
                            0,
                            RData::TXT(TXT::new(vec![v.clone()])),
                        ));
                    }
                }
                r.add_query(query);
                let _ = sock.send_to(&r.to_vec().unwrap(), peer).await;
            }
        });
        (addr, count)
    }

    fn signed_message(dir: &std::path::Path) -> (String, Vec<u8>, Vec<u8>) {
        let path = dkim::generate(dir, "sender.example", "s1", Algorithm::Ed25519).unwrap();
        let key_txt = dkim::dns_txt(&std::fs::read_to_string(path).unwrap()).unwrap();
        let msg = b"From: A <a@sender.example>\r\nTo: b@example.test\r\nSubject: hi\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\nMessage-ID: <x@sender.example>\r\n\r\nHello\r\n";
        let signer = dkim::KeyDir::new(dir.to_path_buf(), "s1".into());
        let mut signed = signer.sign(msg).unwrap().into_bytes();
        signed.extend_from_slice(msg);
        (key_txt, msg.to_vec(), signed)
    }

    /// A real DNS server that loses every third query: the checks still
    /// pass and fail as they should, the lost packets resent within a try.
    #[tokio::test]
    async fn lossy_dns_still_decides() {
        let dir = tempfile::tempdir().unwrap();
        let (key_txt, msg, signed) = signed_message(dir.path());
        let zone = vec![
            ("sender.example", "v=spf1 ip4:192.0.2.1 -all".to_string()),
            (
                "mail.sender.example",
                "v=spf1 ip4:192.0.2.1 -all".to_string(),
            ),
            ("s1._domainkey.sender.example", key_txt),
            ("_dmarc.sender.example", "v=DMARC1; p=reject".to_string()),
        ];
        let (addr, queries) = dns_server(zone, |n| n % 3 == 1).await;
        let dns = DnsSettings {
            servers: vec![addr],
            timeout: std::time::Duration::from_millis(1500),
            retries: 1,
        };
        let checks = InboundAuth::new("mx.example.test", &dns).unwrap();
        let ok: IpAddr = "192.0.2.1".parse().unwrap();
        let bad: IpAddr = "198.51.100.7".parse().unwrap();
        let started = Instant::now();
        let v = checks
            .check(ok, "mail.sender.example", "a@sender.example", &signed)
            .await;
        for want in ["dkim=pass", "spf=pass", "dmarc=pass"] {
            assert!(v.header.contains(want), "{want} in {}", v.header);
        }
        assert!(v.dns_undecided.is_none() && !v.dmarc_reject);
        let v = checks
            .check(bad, "mail.sender.example", "a@sender.example", &msg)
            .await;
        assert!(v.header.contains("dmarc=fail"), "{}", v.header);
        assert!(v.dmarc_reject && v.dns_undecided.is_none());
        let asked = queries.load(std::sync::atomic::Ordering::SeqCst);
        assert!(asked >= 8, "{asked} queries");
        // A lost packet is resent after about a third of a second, not
        // after the 1.5 s try.
        let took = started.elapsed();
        assert!(took < std::time::Duration::from_millis(1400), "{took:?}");
    }

    /// A name server that never answers: every record the checks need is
    /// asked for at once and each failure is remembered for the message,
    /// so the verdict ("DMARC policy unknown") comes after one query's
    /// give-up time, not after one per record.
    #[tokio::test]
    async fn dead_dns_leaves_dmarc_open_after_one_query_time() {
        let dir = tempfile::tempdir().unwrap();
        let (_, _, signed) = signed_message(dir.path());
        let (addr, queries) = dns_server(vec![], |_| true).await;
        let dns = DnsSettings {
            servers: vec![addr],
            timeout: std::time::Duration::from_millis(300),
            retries: 1,
        };
        let checks = InboundAuth::new("mx.example.test", &dns).unwrap();
        let started = Instant::now();
        let v = checks
            .check(
                "192.0.2.1".parse().unwrap(),
                "mail.other.example",
                "a@sender.example",
                &signed,
            )
            .await;
        let took = started.elapsed();
        assert!(v.dns_undecided.is_some(), "{}", v.header);
        assert!(!v.dmarc_reject && !v.dmarc_quarantine);
        assert!(v.header.contains("temperror"), "{}", v.header);
        // A query gives up after 2 × 0.3 s. SPF of the HELO and MAIL FROM
        // domains, the DKIM key and the DMARC walk one after another would
        // need four of those; DKIM and SPF side by side, then DMARC, two.
        assert!(
            took < std::time::Duration::from_millis(1000),
            "{took:?}, {} queries",
            queries.load(std::sync::atomic::Ordering::SeqCst)
        );
    }

    /// A forwarder's ARC set (made with mail-auth's sealer and an RSA key
    /// whose record the checker knows) verifies as arc=pass; a body changed
    /// after sealing makes it fail.
    #[tokio::test]
    async fn arc_chain_pass_and_fail() {
        use mail_auth::arc::ArcSealer;
        use mail_auth::common::crypto::{RsaKey, Sha256};
        let dir = tempfile::tempdir().unwrap();
        let path = dkim::generate(dir.path(), "forwarder.example", "arc", Algorithm::Rsa).unwrap();
        let pem = std::fs::read_to_string(path).unwrap();
        let key_txt = dkim::dns_txt(&pem).unwrap();
        let checks = InboundAuth::with_records(
            "mx.example.test",
            [("arc._domainkey.forwarder.example", key_txt.as_str())],
        )
        .unwrap();
        let msg = b"From: A <a@origin.example>\r\nTo: list@forwarder.example\r\nSubject: via a list\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\nMessage-ID: <y@origin.example>\r\n\r\nHello list\r\n";
        // The forwarder checks what it received and seals it.
        let forwarder = InboundAuth::with_records("forwarder.example", []).unwrap();
        let parsed = AuthenticatedMessage::parse(msg).unwrap();
        let arc_in = forwarder
            .auth
            .verify_arc(Parameters::new(&parsed).with_txt_cache(&forwarder.cache))
            .await;
        let results = AuthenticationResults::new("forwarder.example")
            .with_arc_result(&arc_in, "192.0.2.9".parse().unwrap());
        #[allow(deprecated)]
        let key = RsaKey::<Sha256>::from_pkcs8_pem(&pem).unwrap();
        let set = ArcSealer::from_key(key)
            .domain("forwarder.example")
            .selector("arc")
            .headers(["From", "To", "Subject", "Date", "Message-ID"])
            .seal(&parsed, &results, &arc_in)
            .unwrap();
        let mut sealed = set.to_header().into_bytes();
        sealed.extend_from_slice(msg);

        let ip: IpAddr = "198.51.100.20".parse().unwrap();
        let v = checks.check(ip, "forwarder.example", "", &sealed).await;
        assert!(v.header.contains("arc=pass"), "{}", v.header);

        let tampered = String::from_utf8(sealed)
            .unwrap()
            .replace("Hello list", "Hello there");
        let v = checks
            .check(ip, "forwarder.example", "", tampered.as_bytes())
            .await;
        assert!(
            v.header.contains("arc=") && !v.header.contains("arc=pass"),
            "{}",
            v.header
        );
    }
}
