//! The Sender Rewriting Scheme for mail that Sieve `redirect` sends on to
//! other servers: the envelope sender becomes an address in our own domain
//! (so SPF passes at the destination), from which a bounce can find its way
//! back to the original sender — but only with a valid signature and
//! within its age, so the address cannot be used as an open relay.
//!
//! Format (as in Shevek's SRS paper, Mail::SRS and libsrs2):
//!
//! ```text
//! SRS0=HHHH=TT=orig-domain=orig-local@our-domain
//! SRS1=HHHH=first-forwarder==HHHH=TT=orig-domain=orig-local@our-domain
//! ```
//!
//! `TT` is the day number (days since the epoch, modulo 1024) in two base32
//! characters; `HHHH` the first four base64 characters of HMAC-SHA1 over the
//! lower-cased fields after it. An address that already is SRS0 (from a
//! forwarder before us) is wrapped as SRS1, so a bounce goes straight back
//! to that forwarder. Input separators `=`, `+` and `-` after the tag are
//! accepted, hashes are compared case-insensitively (some MTAs fold case).

use std::path::Path;

use anyhow::{Context as _, Result};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const HASH_LEN: usize = 4;
/// The day stamp wraps after 1024 days.
const STAMP_DAYS: u64 = 1024;

#[derive(Clone)]
pub struct Srs {
    /// The first signs; all verify.
    secrets: Vec<Vec<u8>>,
    max_age_days: u64,
}

/// Why an SRS address was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SrsError {
    /// Not of the SRS0/SRS1 shape.
    Malformed,
    /// The hash does not match any secret.
    BadHash,
    /// Older than the configured age (or from the future).
    Expired,
}

impl std::fmt::Display for SrsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SrsError::Malformed => "malformed SRS address",
            SrsError::BadHash => "SRS address with a wrong signature",
            SrsError::Expired => "SRS address too old",
        })
    }
}

impl std::error::Error for SrsError {}

/// True if the local part looks like an SRS address (whether or not valid).
pub fn is_srs(address: &str) -> bool {
    let l = address.as_bytes();
    l.len() > 5
        && (l[..4].eq_ignore_ascii_case(b"SRS0") || l[..4].eq_ignore_ascii_case(b"SRS1"))
        && matches!(l[4], b'=' | b'+' | b'-')
}

fn split_sep(s: &str) -> Option<&str> {
    let (tag, rest) = s.split_at_checked(4)?;
    let _ = tag;
    rest.strip_prefix(['=', '+', '-'])
}

impl Srs {
    pub fn new(secrets: Vec<Vec<u8>>, max_age_days: u32) -> Srs {
        assert!(!secrets.is_empty(), "at least one SRS secret");
        Srs {
            secrets,
            max_age_days: max_age_days as u64,
        }
    }

    /// Reads the secret file (one secret per non-empty line), creating it
    /// with a random secret (mode 0600) when it does not exist.
    pub fn load_or_create(path: &Path, max_age_days: u32) -> Result<Srs> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                create_secret(path)?;
                std::fs::read_to_string(path)
                    .with_context(|| format!("sieve: reading SRS secret {}", path.display()))?
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("sieve: reading SRS secret {}", path.display()))
            }
        };
        let secrets: Vec<Vec<u8>> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| l.as_bytes().to_vec())
            .collect();
        if secrets.is_empty() {
            anyhow::bail!(
                "sieve: SRS secret file {} has no secret; put a long random line in it or remove it to have one generated",
                path.display()
            );
        }
        Ok(Srs::new(secrets, max_age_days))
    }

    fn hash_with(secret: &[u8], parts: &[&str]) -> String {
        let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC takes any key length");
        for p in parts {
            mac.update(p.to_ascii_lowercase().as_bytes());
        }
        let digest = mac.finalize().into_bytes();
        let mut b64 = base64::engine::general_purpose::STANDARD.encode(digest);
        b64.truncate(HASH_LEN);
        b64
    }

    fn hash(&self, parts: &[&str]) -> String {
        Srs::hash_with(&self.secrets[0], parts)
    }

    fn hash_ok(&self, hash: &str, parts: &[&str]) -> bool {
        hash.len() == HASH_LEN
            && self
                .secrets
                .iter()
                .any(|s| Srs::hash_with(s, parts).eq_ignore_ascii_case(hash))
    }

    /// Rewrites `sender` (local@domain) as an address at `our_domain`.
    /// `now` is Unix seconds.
    pub fn forward(&self, sender: &str, our_domain: &str, now: i64) -> String {
        let Some((local, domain)) = sender.rsplit_once('@') else {
            return sender.to_string();
        };
        if is_srs(local) && local[..4].eq_ignore_ascii_case("SRS1") {
            // SRS1=HHHH=first==rest: keep the first forwarder, new hash.
            if let Some((first, rest)) = split_sep(local).and_then(|r| {
                let (_hash, r) = r.split_once('=')?;
                r.split_once("==")
            }) {
                let h = self.hash(&[first, rest]);
                return format!("SRS1={h}={first}=={rest}@{our_domain}");
            }
        }
        if is_srs(local) && local[..4].eq_ignore_ascii_case("SRS0") {
            // A forwarder before us: bounces go back to it directly.
            if let Some(rest) = split_sep(local) {
                let h = self.hash(&[domain, rest]);
                return format!("SRS1={h}={domain}=={rest}@{our_domain}");
            }
        }
        let stamp = timestamp(now);
        let h = self.hash(&[&stamp, domain, local]);
        format!("SRS0={h}={stamp}={domain}={local}@{our_domain}")
    }

    /// Where a bounce to `address` goes: `Ok(None)` if it is no SRS
    /// address, the original (or previous forwarder's) address if it is
    /// valid, an error if it is forged, broken or too old.
    pub fn reverse(&self, address: &str, now: i64) -> Result<Option<String>, SrsError> {
        let Some((local, _our)) = address.rsplit_once('@') else {
            return Ok(None);
        };
        if !is_srs(local) {
            return Ok(None);
        }
        let rest = split_sep(local).ok_or(SrsError::Malformed)?;
        if local[..4].eq_ignore_ascii_case("SRS1") {
            let (hash, r) = rest.split_once('=').ok_or(SrsError::Malformed)?;
            let (first, srs0) = r.split_once("==").ok_or(SrsError::Malformed)?;
            if first.is_empty() || srs0.is_empty() {
                return Err(SrsError::Malformed);
            }
            if !self.hash_ok(hash, &[first, srs0]) {
                return Err(SrsError::BadHash);
            }
            return Ok(Some(format!("SRS0={srs0}@{first}")));
        }
        let mut it = rest.splitn(4, '=');
        let (Some(hash), Some(stamp), Some(domain), Some(orig_local)) =
            (it.next(), it.next(), it.next(), it.next())
        else {
            return Err(SrsError::Malformed);
        };
        if domain.is_empty() || orig_local.is_empty() || stamp.len() != 2 {
            return Err(SrsError::Malformed);
        }
        if !self.hash_ok(hash, &[stamp, domain, orig_local]) {
            return Err(SrsError::BadHash);
        }
        let then = decode_stamp(stamp).ok_or(SrsError::Malformed)?;
        let today = day(now) % STAMP_DAYS;
        let age = (today + STAMP_DAYS - then) % STAMP_DAYS;
        if age > self.max_age_days {
            return Err(SrsError::Expired);
        }
        Ok(Some(format!("{orig_local}@{domain}")))
    }
}

fn day(now: i64) -> u64 {
    (now.max(0) as u64) / 86_400
}

fn timestamp(now: i64) -> String {
    let t = day(now) % STAMP_DAYS;
    let mut s = String::with_capacity(2);
    s.push(BASE32[(t >> 5) as usize & 31] as char);
    s.push(BASE32[t as usize & 31] as char);
    s
}

fn decode_stamp(s: &str) -> Option<u64> {
    let mut t = 0u64;
    for c in s.bytes() {
        let v = BASE32.iter().position(|&b| b == c.to_ascii_uppercase())?;
        t = (t << 5) | v as u64;
    }
    Some(t)
}

fn create_secret(path: &Path) -> Result<()> {
    use rand::RngCore;
    use std::io::Write;
    let mut raw = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut raw);
    let line = format!(
        "{}\n",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(raw)
    );
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("sieve: creating {}", dir.display()))?;
    }
    // Written to a temporary file and linked into place, so that two
    // processes starting at once agree on one secret.
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("sieve: creating the SRS secret in {}", dir.display()))?;
    tmp.write_all(line.as_bytes())?;
    tmp.as_file().sync_all()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o600))?;
    }
    match tmp.persist_noclobber(path) {
        Ok(_) => {
            tracing::info!("sieve: generated the SRS secret {}", path.display());
            Ok(())
        }
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => {
            Err(e.error).with_context(|| format!("sieve: writing SRS secret {}", path.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_000_000;

    fn srs() -> Srs {
        Srs::new(vec![b"secret one".to_vec()], 21)
    }

    #[test]
    fn round_trip() {
        let s = srs();
        let a = s.forward("Ann.Lee@Outside.example", "example.org", NOW);
        assert!(a.starts_with("SRS0="), "{a}");
        assert!(a.ends_with("=Outside.example=Ann.Lee@example.org"), "{a}");
        let parts: Vec<&str> = a.split('=').collect();
        assert_eq!(parts[1].len(), 4);
        assert_eq!(parts[2].len(), 2);
        assert_eq!(
            s.reverse(&a, NOW).unwrap().as_deref(),
            Some("Ann.Lee@Outside.example")
        );
        // Case folded by some MTA on the way back.
        assert_eq!(
            s.reverse(&a.to_ascii_lowercase(), NOW).unwrap().as_deref(),
            Some("ann.lee@outside.example")
        );
        // '+' separator accepted on input.
        let plus = a.replacen("SRS0=", "SRS0+", 1);
        assert!(s.reverse(&plus, NOW).unwrap().is_some());
        // The local part may itself contain '='.
        let b = s.forward("a=b@x.example", "example.org", NOW);
        assert_eq!(
            s.reverse(&b, NOW).unwrap().as_deref(),
            Some("a=b@x.example")
        );
    }

    #[test]
    fn forged_old_and_malformed() {
        let s = srs();
        let a = s.forward("ann@outside.example", "example.org", NOW);
        let other = Srs::new(vec![b"other".to_vec()], 21);
        assert_eq!(other.reverse(&a, NOW), Err(SrsError::BadHash));
        let forged = a.replace("outside.example", "victim.example");
        assert_eq!(s.reverse(&forged, NOW), Err(SrsError::BadHash));
        assert_eq!(
            s.reverse(&a, NOW + 21 * 86_400),
            Ok(Some("ann@outside.example".into()))
        );
        assert_eq!(s.reverse(&a, NOW + 22 * 86_400), Err(SrsError::Expired));
        assert_eq!(
            s.reverse("SRS0=abc@example.org", NOW),
            Err(SrsError::Malformed)
        );
        assert_eq!(
            s.reverse("SRS0=zzzz=ZZ=x=y@example.org", NOW),
            Err(SrsError::BadHash)
        );
        assert_eq!(s.reverse("someone@example.org", NOW), Ok(None));
        assert_eq!(s.reverse("srs0@example.org", NOW), Ok(None));
    }

    #[test]
    fn rotated_secret_still_verifies() {
        let old = srs();
        let a = old.forward("ann@outside.example", "example.org", NOW);
        let new = Srs::new(vec![b"new".to_vec(), b"secret one".to_vec()], 21);
        assert!(new.reverse(&a, NOW).unwrap().is_some());
        assert!(new.forward("ann@outside.example", "example.org", NOW) != a);
    }

    #[test]
    fn stamp_wraps() {
        assert_eq!(decode_stamp(&timestamp(NOW)), Some(day(NOW) % 1024));
        let s = srs();
        // Issued on day 1023 of a cycle, returned on day 3 of the next.
        let issued = (1023 * 86_400) as i64;
        let a = s.forward("ann@outside.example", "example.org", issued);
        assert!(s.reverse(&a, issued + 4 * 86_400).unwrap().is_some());
    }

    #[test]
    fn srs0_from_a_previous_forwarder_becomes_srs1() {
        let first = Srs::new(vec![b"first".to_vec()], 21);
        let s0 = first.forward("ann@outside.example", "fwd.example", NOW);
        let s = srs();
        let s1 = s.forward(&s0, "example.org", NOW);
        assert!(s1.starts_with("SRS1="), "{s1}");
        assert!(s1.ends_with("@example.org"));
        let back = s.reverse(&s1, NOW).unwrap().unwrap();
        assert!(back.eq_ignore_ascii_case(&s0), "{back} vs {s0}");
        assert_eq!(
            first.reverse(&back, NOW).unwrap().as_deref(),
            Some("ann@outside.example")
        );
        // Forwarded once more: still one hop back to the first forwarder.
        let again = Srs::new(vec![b"third".to_vec()], 21);
        let s1b = again.forward(&s1, "third.example", NOW);
        assert!(
            s1b.starts_with("SRS1=") && s1b.contains("=fwd.example=="),
            "{s1b}"
        );
        assert!(again
            .reverse(&s1b, NOW)
            .unwrap()
            .unwrap()
            .ends_with("@fwd.example"));
    }

    proptest::proptest! {
        /// Whatever arrives at RCPT: no panic, and only addresses made
        /// with our secret lead anywhere.
        #[test]
        fn reverse_never_panics(addr in "\\PC{0,80}", tail in "[A-Za-z0-9=+/.@-]{0,40}") {
            let s = srs();
            for a in [addr.clone(), format!("SRS0={tail}"), format!("srs1+{tail}"), format!("SRS0={addr}@x")] {
                if let Ok(Some(to)) = s.reverse(&a, NOW) {
                    let ok = s.forward(&to, "x", NOW).eq_ignore_ascii_case(&a)
                        || a.to_ascii_uppercase().starts_with("SRS1");
                    proptest::prop_assert!(ok, "{} -> {}", a, to);
                }
            }
        }

        #[test]
        fn forward_then_reverse(local in "[A-Za-z0-9._=+-]{1,30}", domain in "[a-z0-9-]{1,20}\\.[a-z]{2,6}",
                                age in 0i64..=21) {
            let s = srs();
            let sender = format!("{local}@{domain}");
            let a = s.forward(&sender, "example.org", NOW);
            proptest::prop_assert!(a.ends_with("@example.org"));
            let back = s.reverse(&a, NOW + age * 86_400).unwrap().unwrap();
            if is_srs(&local) {
                // Wrapped as SRS1: goes back one hop, to the previous forwarder.
                let suffix = format!("@{domain}");
                let ok = back.to_ascii_lowercase().ends_with(&suffix);
                proptest::prop_assert!(ok, "{} -> {}", a, back);
            } else {
                proptest::prop_assert_eq!(back, sender);
            }
        }
    }

    #[test]
    fn secret_file_is_created_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("srs.key");
        let a = Srs::load_or_create(&p, 21).unwrap();
        let b = Srs::load_or_create(&p, 21).unwrap();
        assert_eq!(a.secrets, b.secrets);
        assert!(a.secrets[0].len() >= 40);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&p, "\n# none\n").unwrap();
        assert!(Srs::load_or_create(&p, 21).is_err());
    }
}
