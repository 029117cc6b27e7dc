//! `outpost dkim generate` and `outpost dns`: the keys and the DNS records
//! an administrator publishes.

use anyhow::{anyhow, Result};
use outpost_config::Config;
use outpost_queue::dkim::{self, Algorithm};

use outpost_mailflow::dkim::key_dir;

pub fn generate(
    cfg: &Config,
    domain: &str,
    selector: Option<String>,
    algorithm: &str,
) -> Result<()> {
    let alg = match algorithm {
        "rsa" => Algorithm::Rsa,
        "ed25519" => Algorithm::Ed25519,
        other => return Err(anyhow!("--algorithm {other}: use rsa or ed25519")),
    };
    let selector = selector.unwrap_or_else(|| cfg.dkim.selector.clone());
    let domain = domain.trim_end_matches('.').to_lowercase();
    let path = dkim::generate(&key_dir(cfg), &domain, &selector, alg).map_err(|e| anyhow!(e))?;
    let txt = dkim::dns_txt(&std::fs::read_to_string(&path)?).map_err(|e| anyhow!(e))?;
    println!("wrote {}", path.display());
    if selector != cfg.dkim.selector {
        println!(
            "note: outgoing mail is signed with selector {:?} ([dkim] selector); set it to {selector:?} to use this key",
            cfg.dkim.selector
        );
    }
    println!("publish:");
    println!("{selector}._domainkey.{domain}. IN TXT {}", zone_txt(&txt));
    Ok(())
}

/// A TXT value as zone-file strings of at most 255 bytes each.
fn zone_txt(v: &str) -> String {
    let parts: Vec<String> = v
        .as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect();
    if parts.len() == 1 {
        parts[0].clone()
    } else {
        format!("( {} )", parts.join(" "))
    }
}

/// Every record to publish for a hosted domain.
pub fn dns(cfg: &Config, domain: &str) -> Result<()> {
    let d = domain.trim_end_matches('.').to_lowercase();
    let host = cfg.hostname.trim_end_matches('.');
    let sel = &cfg.dkim.selector;
    println!("; DNS records for {d} (served by {host})");
    println!("{d}. IN MX 10 {host}.");
    println!("{d}. IN TXT \"v=spf1 mx -all\"");
    let key = dkim::key_path(&key_dir(cfg), &d, sel);
    match std::fs::read_to_string(&key) {
        Ok(pem) => {
            let txt = dkim::dns_txt(&pem).map_err(|e| anyhow!("{}: {e}", key.display()))?;
            println!("{sel}._domainkey.{d}. IN TXT {}", zone_txt(&txt));
        }
        Err(_) => println!(
            "; no DKIM key for {d} (selector {sel}): run `outpost dkim generate {d}` and print this again"
        ),
    }
    println!("_dmarc.{d}. IN TXT \"v=DMARC1; p=quarantine; rua=mailto:postmaster@{d}\"");
    println!("; RFC 6186: mail client autoconfiguration");
    println!("_submission._tcp.{d}. IN SRV 0 1 587 {host}.");
    println!("_submissions._tcp.{d}. IN SRV 0 1 465 {host}.");
    println!("_imap._tcp.{d}. IN SRV 0 1 143 {host}.");
    println!("_imaps._tcp.{d}. IN SRV 0 1 993 {host}.");
    println!("_pop3s._tcp.{d}. IN SRV 0 1 995 {host}.");
    println!("; Thunderbird autoconfig and Outlook autodiscover");
    println!("autoconfig.{d}. IN CNAME {host}.");
    println!("autodiscover.{d}. IN CNAME {host}.");
    println!("_autodiscover._tcp.{d}. IN SRV 0 1 443 {host}.");
    println!("; RFC 6764: CalDAV and CardDAV service discovery");
    println!("_caldavs._tcp.{d}. IN SRV 0 1 443 {host}.");
    println!("_caldavs._tcp.{d}. IN TXT \"path=/.well-known/caldav\"");
    println!("_carddavs._tcp.{d}. IN SRV 0 1 443 {host}.");
    println!("_carddavs._tcp.{d}. IN TXT \"path=/.well-known/carddav\"");
    Ok(())
}
