//! Stable-toolchain twin of the `config` fuzz target (`fuzz/`): the same
//! checks (`fuzz/check/config.rs`) over the committed seeds and mutations
//! of them; plus round trips: a duration written with any unit reads back
//! as its value (or is refused when it does not fit), the starter config
//! loads with the host name and directory it was written for, and limits
//! written into a file read back as written or are refused by exactly the
//! documented rules.

#[path = "../fuzz/check/config.rs"]
mod check;

use std::path::{Path, PathBuf};
use std::time::Duration;

use outpost_config::{parse_duration, starter_config, Config};
use proptest::prelude::*;

fn seed(name: &str) -> Vec<u8> {
    outpost_testkit::seeds::one(&outpost_testkit::seed_dir!("config"), name)
}

const SEEDS: &[&str] = &[
    "starter",
    "full",
    "errors",
    "duplicate_listener",
    "bad_toml",
    "durations",
];

#[test]
fn seeds_pass() {
    for name in SEEDS {
        check::config(&seed(name));
    }
    for (name, loads) in [
        ("starter", true),
        ("full", true),
        ("errors", false),
        ("duplicate_listener", false),
    ] {
        let text = String::from_utf8(seed(name)).unwrap();
        assert_eq!(Config::parse(&text, name).is_ok(), loads, "{name}");
    }
}

fn unit() -> impl Strategy<Value = (&'static str, u64)> {
    prop::sample::select(vec![
        ("", 1),
        ("s", 1),
        ("m", 60),
        ("h", 3600),
        ("d", 86400),
    ])
}

fn number() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..10_000,
        any::<u64>(),
        (u64::MAX / 86400 - 2)..=(u64::MAX / 86400 + 2)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn mutated_seeds(which in 0..SEEDS.len(), edits in prop::collection::vec((any::<usize>(), prop_oneof![any::<u8>(), prop::sample::select(b"[]=\"\n,0123456789smhd.:".to_vec())], 0u8..3), 1..8)) {
        let mut data = seed(SEEDS[which]);
        for (at, b, kind) in edits {
            let i = at % (data.len() + 1);
            match kind {
                0 => data.insert(i, b),
                1 if i < data.len() => { data.remove(i); }
                _ if i < data.len() => data[i] = b,
                _ => {}
            }
        }
        check::config(&data);
    }

    /// "N<unit>" reads back as N times the unit, or is refused when that
    /// does not fit in a u64 of seconds.
    #[test]
    fn duration_round_trip((u, mul) in unit(), n in number(), pad in any::<bool>()) {
        let text = if pad { format!(" {n} {u} ") } else { format!("{n}{u}") };
        match n.checked_mul(mul) {
            Some(secs) => prop_assert_eq!(parse_duration(&text), Ok(Duration::from_secs(secs))),
            None => prop_assert!(parse_duration(&text).is_err()),
        }
    }

    /// `outpost init` writes the starter config and loads it straight away.
    #[test]
    fn starter_config_loads(host in "[a-z0-9][a-z0-9.-]{0,40}", dir in "(/[A-Za-z0-9_.-]{1,12}){1,4}") {
        let text = starter_config(&host, Path::new(&dir));
        let cfg = Config::parse(&text, "starter").map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&cfg.hostname, &host);
        prop_assert_eq!(&cfg.data_dir, &PathBuf::from(&dir));
        check::loaded(&cfg);
    }

    /// [limits] written into a file read back as written, unless a rule
    /// documented in `validate` refuses them.
    #[test]
    fn limits_round_trip(message_size in prop_oneof![0u64..2048, any::<u64>().prop_map(|v| v >> 1)], max_recipients in 0usize..5, per_ip in 0usize..5, total in 0usize..5, timeout in any::<u32>()) {
        let text = format!(
            "[limits]\nmessage_size = {message_size}\nmax_recipients = {max_recipients}\n\
             connections_per_ip = {per_ip}\nconnections_total = {total}\nsmtp_command_timeout = {timeout}\n"
        );
        let valid = message_size >= 1024 && max_recipients >= 1 && per_ip >= 1 && total >= 1;
        match Config::parse(&text, "limits") {
            Ok(cfg) => {
                prop_assert!(valid);
                prop_assert_eq!(cfg.limits.message_size, message_size);
                prop_assert_eq!(cfg.limits.max_recipients, max_recipients);
                prop_assert_eq!(cfg.limits.connections_per_ip, Some(per_ip));
                prop_assert_eq!(cfg.limits.connections_total, total);
                prop_assert_eq!(cfg.limits.smtp_command_timeout, u64::from(timeout));
                check::loaded(&cfg);
            }
            Err(e) => {
                prop_assert!(!valid, "refused: {}", e);
                prop_assert!(e.to_string().starts_with("config: limits."), "{}", e);
            }
        }
    }
}
