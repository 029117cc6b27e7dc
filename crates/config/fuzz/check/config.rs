//! What the `config` fuzz target checks, kept apart from libFuzzer so that
//! `tests/proptest_config.rs` runs the same code on stable Rust (both
//! include this file with `#[path]`). The input, read as UTF-8 (invalid
//! sequences replaced), is a config file. Checked, besides "never panics":
//!
//! - an error is one line that starts with "config: " (what `outpost
//!   check` prints);
//! - a config that loads keeps the promises `validate` makes to the rest
//!   of the program: a usable host name, every duration parses, the retry
//!   schedule has one entry per configured wait, no two listeners share an
//!   address, relays are host:port, the Sieve spam scale and SRS age are
//!   usable;
//! - a duration that parses reads back the same when written in seconds.

#![allow(dead_code)]

use std::collections::HashSet;

use outpost_config::{parse_duration, Config};

pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    durations(&text);
    match Config::parse(&text, "fuzz.toml") {
        Ok(cfg) => loaded(&cfg),
        Err(e) => {
            let m = e.to_string();
            assert!(m.starts_with("config: "), "error {m:?}");
            assert!(!m.contains('\n'), "error spans lines: {m:?}");
        }
    }
}

/// Each line of the input, and the whole, as a duration.
fn durations(text: &str) {
    for s in text.lines().chain([text]) {
        if let Ok(d) = parse_duration(s) {
            let secs = d.as_secs();
            assert_eq!(parse_duration(&format!("{secs}s")), Ok(d), "{s:?}");
            assert_eq!(parse_duration(&secs.to_string()), Ok(d), "{s:?}");
        }
    }
}

/// What a loaded config promises.
pub fn loaded(cfg: &Config) {
    assert!(!cfg.hostname.is_empty() && !cfg.hostname.contains(char::is_whitespace));
    assert!(!cfg.queue.retry.is_empty());
    assert_eq!(cfg.queue.retry_schedule().len(), cfg.queue.retry.len());
    parse_duration(&cfg.queue.max_age).expect("max_age validated");
    parse_duration(&cfg.queue.delay_warning).expect("delay_warning validated");
    assert!(cfg.limits.message_size >= 1024);
    assert!(cfg.limits.max_recipients >= 1);
    assert!(cfg.queue.workers >= 1 && cfg.queue.domain_workers >= 1);
    let mut seen = HashSet::new();
    for (name, addr) in cfg.listen.all() {
        assert!(
            addr.port() == 0 || seen.insert(addr),
            "{name} {addr} listed twice"
        );
    }
    for v in cfg.queue.relay.iter().chain(cfg.queue.test_mx.values()) {
        let (h, p) = v.rsplit_once(':').expect("relay validated");
        assert!(!h.is_empty() && p.parse::<u16>().is_ok());
    }
    // Sieve: the spam scale and the SRS age are usable as they are.
    assert!(cfg.sieve.spam_score_max.is_finite() && cfg.sieve.spam_score_max > 0.0);
    assert!((1..=1000).contains(&cfg.sieve.srs_max_age_days));
    let _ = (cfg.storage_url(), cfg.blob_dir(), cfg.tls_paths());
    let _ = cfg.srs_secret_path();
}
