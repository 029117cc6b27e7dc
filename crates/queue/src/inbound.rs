//! Checks on mail arriving at the MX: SPF (RFC 7208) for the MAIL FROM (or
//! HELO) identity, DKIM (RFC 6376) signatures, ARC (RFC 8617) chains added
//! by forwarders and lists, and DMARC (RFC 7489) on the From: domain, with
//! mail-auth; the outcome as an
//! `Authentication-Results:` field (RFC 8601) for Sieve rules and clients,
//! and whether the domain's DMARC policy asks for rejection.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use mail_auth::common::headers::HeaderWriter;
use mail_auth::dmarc::Policy;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    AuthenticatedMessage, AuthenticationResults, DmarcResult, MessageAuthenticator, Parameters,
    ResolverCache, Txt,
};

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
}

pub struct InboundAuth {
    hostname: String,
    auth: MessageAuthenticator,
    cache: TxtCache,
}

impl InboundAuth {
    /// DNS through the system's resolver configuration.
    pub fn from_system(hostname: &str) -> Result<InboundAuth, String> {
        Ok(InboundAuth {
            hostname: hostname.to_string(),
            auth: MessageAuthenticator::new_system_conf()
                .map_err(|e| format!("cannot read the system's DNS configuration: {e}"))?,
            cache: TxtCache::default(),
        })
    }

    /// Fixed TXT records (name, value) and no DNS server at all: for tests
    /// and closed networks. A name not given has no records.
    pub fn with_records<'a>(
        hostname: &str,
        records: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<InboundAuth, String> {
        use hickory_resolver::config::{ResolverConfig, ResolverOpts};
        use mail_auth::common::parse::TxtRecordParser;
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
                mail_auth::spf::Spf::parse(v).map(Txt::from)
            } else if value.starts_with("v=DMARC1") {
                mail_auth::dmarc::Dmarc::parse(v).map(Txt::from)
            } else {
                mail_auth::common::verify::DomainKey::parse(v).map(Txt::from)
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
        })
    }

    pub async fn check(&self, ip: IpAddr, helo: &str, mail_from: &str, message: &[u8]) -> Verdict {
        let Some(msg) = AuthenticatedMessage::parse(message) else {
            return Verdict {
                header: format!("Authentication-Results: {}; none\r\n", self.hostname),
                dmarc_reject: false,
                dmarc_quarantine: false,
            };
        };
        let dkim = self
            .auth
            .verify_dkim(Parameters::new(&msg).with_txt_cache(&self.cache))
            .await;
        let spf_params = if mail_from.is_empty() {
            SpfParameters::verify_ehlo(ip, helo, &self.hostname)
        } else {
            SpfParameters::verify_mail_from(ip, helo, &self.hostname, mail_from)
        };
        let spf = self
            .auth
            .verify_spf(Parameters::new(spf_params).with_txt_cache(&self.cache))
            .await;
        let mail_from_domain = mail_from
            .rsplit_once('@')
            .map(|(_, d)| d)
            .unwrap_or(helo)
            .to_lowercase();
        let dmarc = self
            .auth
            .verify_dmarc(
                Parameters::new(mail_auth::dmarc::verify::DmarcParameters::new(
                    &msg,
                    &dkim,
                    &mail_from_domain,
                    &spf,
                ))
                .with_txt_cache(&self.cache),
            )
            .await;
        // ARC is reported for Sieve rules and clients; it does not override
        // DMARC here (a local policy on trusted sealers would be needed).
        let arc = self
            .auth
            .verify_arc(Parameters::new(&msg).with_txt_cache(&self.cache))
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
        let error =
            |r: &DmarcResult| matches!(r, DmarcResult::TempError(_) | DmarcResult::PermError(_));
        let (d, s) = (dmarc.dkim_result(), dmarc.spf_result());
        let failed = !pass(d) && !pass(s) && !error(d) && !error(s);
        Verdict {
            header,
            dmarc_reject: failed && dmarc.policy() == Policy::Reject,
            dmarc_quarantine: failed && dmarc.policy() == Policy::Quarantine,
        }
    }
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
