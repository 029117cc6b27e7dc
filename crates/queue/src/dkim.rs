//! DKIM signing (RFC 6376) of outgoing mail with mail-auth: rsa-sha256 and
//! ed25519-sha256 (RFC 8463). One key per domain and selector, as PKCS#8
//! PEM in `<dir>/<domain>.<selector>.key`; the signing domain is the
//! From: address's domain, so the signature aligns for DMARC. Mail from a
//! domain without a key goes out unsigned.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine;
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Rsa,
    Ed25519,
}

/// Header fields signed when present (RFC 6376 §5.4.1's recommendations).
pub const SIGNED_HEADERS: &[&str] = &[
    "From",
    "Reply-To",
    "Subject",
    "Date",
    "To",
    "Cc",
    "Message-ID",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "List-Unsubscribe",
];

pub fn key_path(dir: &Path, domain: &str, selector: &str) -> PathBuf {
    dir.join(format!("{}.{selector}.key", domain.to_lowercase()))
}

/// Generates a key (RSA 2048 or Ed25519) and writes it, readable by the
/// owner only. Refuses to replace an existing key.
pub fn generate(
    dir: &Path,
    domain: &str,
    selector: &str,
    alg: Algorithm,
) -> Result<PathBuf, String> {
    let path = key_path(dir, domain, selector);
    if path.exists() {
        return Err(format!(
            "{} exists; remove it first or choose another selector with --selector",
            path.display()
        ));
    }
    let kp = match alg {
        Algorithm::Rsa => {
            rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
        }
        Algorithm::Ed25519 => rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519),
    }
    .map_err(|e| format!("key generation failed: {e}"))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let tmp = path.with_extension("key.tmp");
    {
        use std::io::Write;
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        let mut f = o
            .open(&tmp)
            .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        f.write_all(kp.serialize_pem().as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    }
    std::fs::rename(&tmp, &path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// The TXT record value to publish at `<selector>._domainkey.<domain>`.
pub fn dns_txt(pem: &str) -> Result<String, String> {
    let kp = rcgen::KeyPair::from_pem(pem).map_err(|e| format!("not a PKCS#8 PEM key: {e}"))?;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    if kp.algorithm() == &rcgen::PKCS_ED25519 {
        Ok(format!(
            "v=DKIM1; k=ed25519; p={}",
            b64(kp.public_key_raw())
        ))
    } else {
        Ok(format!("v=DKIM1; k=rsa; p={}", b64(&kp.public_key_der())))
    }
}

enum Key {
    Rsa(RsaKey<Sha256>),
    Ed25519(Ed25519Key),
}

/// A key bound to its domain and selector, ready to sign.
enum Bound {
    Rsa(DkimSigner<RsaKey<Sha256>, Done>),
    Ed25519(DkimSigner<Ed25519Key, Done>),
}

fn bind(key: Key, domain: &str, selector: &str) -> Bound {
    match key {
        Key::Rsa(k) => Bound::Rsa(
            DkimSigner::from_key(k)
                .domain(domain)
                .selector(selector)
                .headers(SIGNED_HEADERS.iter().copied())
                .header_canonicalization(Canonicalization::Relaxed)
                .body_canonicalization(Canonicalization::Relaxed),
        ),
        Key::Ed25519(k) => Bound::Ed25519(
            DkimSigner::from_key(k)
                .domain(domain)
                .selector(selector)
                .headers(SIGNED_HEADERS.iter().copied())
                .header_canonicalization(Canonicalization::Relaxed)
                .body_canonicalization(Canonicalization::Relaxed),
        ),
    }
}

fn load(pem: &str) -> Result<Key, String> {
    let kp = rcgen::KeyPair::from_pem(pem).map_err(|e| format!("not a PKCS#8 PEM key: {e}"))?;
    if kp.algorithm() == &rcgen::PKCS_ED25519 {
        Ed25519Key::from_pkcs8_maybe_unchecked_der(&kp.serialize_der())
            .map(Key::Ed25519)
            .map_err(|e| format!("Ed25519 key: {e}"))
    } else {
        #[allow(deprecated)] // from_key_der needs the same PEM decoding done by hand
        RsaKey::<Sha256>::from_pkcs8_pem(pem)
            .map(Key::Rsa)
            .map_err(|e| format!("RSA key: {e}"))
    }
}

/// Signs `message`; returns the DKIM-Signature field, CRLF-ended.
fn sign_with(key: &Bound, message: &[u8]) -> Result<String, String> {
    let sig = match key {
        Bound::Rsa(k) => k.sign(message),
        Bound::Ed25519(k) => k.sign(message),
    }
    .map_err(|e| format!("DKIM signing failed: {e}"))?;
    Ok(sig.to_header())
}

/// The From: address's domain, lowercased.
pub fn from_domain(message: &[u8]) -> Option<String> {
    let m = mail_parser::MessageParser::default().parse_headers(message)?;
    let addr = m.from()?.first()?.address()?.to_string();
    addr.rsplit_once('@').map(|(_, d)| d.to_lowercase())
}

/// Keys from a directory, loaded on first use per domain.
pub struct KeyDir {
    dir: PathBuf,
    selector: String,
    keys: Mutex<HashMap<String, Arc<Bound>>>,
}

impl KeyDir {
    pub fn new(dir: PathBuf, selector: String) -> KeyDir {
        KeyDir {
            dir,
            selector,
            keys: Mutex::default(),
        }
    }

    fn key(&self, domain: &str) -> Option<Arc<Bound>> {
        if let Some(k) = self.keys.lock().unwrap().get(domain) {
            return Some(k.clone());
        }
        let path = key_path(&self.dir, domain, &self.selector);
        let pem = std::fs::read_to_string(&path).ok()?;
        match load(&pem) {
            Ok(k) => {
                let k = Arc::new(bind(k, domain, &self.selector));
                self.keys
                    .lock()
                    .unwrap()
                    .insert(domain.to_string(), k.clone());
                Some(k)
            }
            Err(e) => {
                tracing::warn!(
                    "dkim: {}: {e}; mail from {domain} goes out unsigned",
                    path.display()
                );
                None
            }
        }
    }
}

impl crate::Signer for KeyDir {
    fn sign(&self, message: &[u8]) -> Option<String> {
        let domain = from_domain(message)?;
        let key = self.key(&domain)?;
        match sign_with(&key, message) {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::warn!("dkim: {domain}: {e}");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Signer;
    use mail_auth::common::parse::TxtRecordParser;
    use mail_auth::common::verify::DomainKey;
    use mail_auth::{
        AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters, ResolverCache, Txt,
    };
    use std::borrow::Borrow;
    use std::hash::Hash;

    #[derive(Default)]
    struct TxtCache(Mutex<HashMap<Box<str>, Txt>>);

    impl ResolverCache<Box<str>, Txt> for TxtCache {
        fn get<Q>(&self, name: &Q) -> Option<Txt>
        where
            Box<str>: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            self.0.lock().unwrap().get(name).cloned()
        }
        fn remove<Q>(&self, name: &Q) -> Option<Txt>
        where
            Box<str>: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            self.0.lock().unwrap().remove(name)
        }
        fn insert(&self, key: Box<str>, value: Txt, _: std::time::Instant) {
            self.0.lock().unwrap().insert(key, value);
        }
    }

    async fn round_trip(alg: Algorithm) {
        let dir = tempfile::tempdir().unwrap();
        let path = generate(dir.path(), "example.test", "sel", alg).unwrap();
        assert!(
            generate(dir.path(), "example.test", "sel", alg).is_err(),
            "no overwrite"
        );
        let txt = dns_txt(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let signer = KeyDir::new(dir.path().to_path_buf(), "sel".into());
        let msg = b"From: User <user@example.test>\r\nTo: x@outside.example\r\nSubject: hi\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@example.test>\r\n\r\nHello\r\n";
        let header = signer.sign(msg).expect("signed");
        assert!(header.starts_with("DKIM-Signature:"));
        let mut signed = header.into_bytes();
        signed.extend_from_slice(msg);

        // Only the cache answers: no query leaves the machine.
        let auth = MessageAuthenticator::new_cloudflare_tls().unwrap();
        let cache = TxtCache::default();
        for name in [
            "sel._domainkey.example.test.",
            "sel._domainkey.example.test",
        ] {
            let record: DomainKey = TxtRecordParser::parse(txt.as_bytes()).unwrap();
            cache
                .0
                .lock()
                .unwrap()
                .insert(name.into(), Txt::from(record));
        }
        let m = AuthenticatedMessage::parse(&signed).unwrap();
        let out = auth
            .verify_dkim(Parameters::new(&m).with_txt_cache(&cache))
            .await;
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].result(), &DkimResult::Pass, "{txt}");
        // Tampering breaks it.
        let bad = String::from_utf8(signed).unwrap().replace("Hello", "Hullo");
        let m = AuthenticatedMessage::parse(bad.as_bytes()).unwrap();
        let out = auth
            .verify_dkim(Parameters::new(&m).with_txt_cache(&cache))
            .await;
        assert_ne!(out[0].result(), &DkimResult::Pass);
        // No key: unsigned.
        assert!(signer.sign(b"From: a@other.test\r\n\r\nx\r\n").is_none());
    }

    #[tokio::test]
    async fn rsa_sign_verify() {
        round_trip(Algorithm::Rsa).await;
    }

    #[tokio::test]
    async fn ed25519_sign_verify() {
        round_trip(Algorithm::Ed25519).await;
    }
}
