//! Failed-login throttling shared by every protocol.
//!
//! Failures are counted per client address and per account name within a
//! sliding window. Past `slow_after` failures the protocol delays its answer
//! (`Verdict::Delay`); past `block_after` the address (or account) is refused
//! outright for `block_for`. Each block is logged once with the target
//! `outpost::auth`, in a fixed format that fail2ban can match:
//! `auth blocked: ip=203.0.113.9 reason=too-many-failures`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct ThrottleConfig {
    /// Failures counted within this window.
    pub window: Duration,
    /// After this many failures, each further attempt is answered slowly.
    pub slow_after: u32,
    /// How long a slowed answer waits.
    pub delay: Duration,
    /// After this many failures, attempts are refused until `block_for` passes.
    pub block_after: u32,
    pub block_for: Duration,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            window: Duration::from_secs(600),
            slow_after: 3,
            delay: Duration::from_secs(2),
            block_after: 10,
            block_for: Duration::from_secs(900),
        }
    }
}

/// What a protocol should do with a login attempt before checking it.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Check the credentials, but answer only after this delay.
    Delay(Duration),
    /// Refuse without checking.
    Blocked,
}

#[derive(Clone)]
pub struct AuthThrottle {
    cfg: ThrottleConfig,
    state: Arc<Mutex<HashMap<Key, Entry>>>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum Key {
    Ip(IpAddr),
    Account(String),
}

struct Entry {
    failures: u32,
    first: Instant,
    blocked_until: Option<Instant>,
}

impl AuthThrottle {
    pub fn new(cfg: ThrottleConfig) -> AuthThrottle {
        AuthThrottle {
            cfg,
            state: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The settings it was made with (an HTTP 429 says `Retry-After`
    /// from `block_for`).
    pub fn config(&self) -> &ThrottleConfig {
        &self.cfg
    }

    /// Consult before checking a password. `account` may be empty when the
    /// protocol does not know it yet.
    pub fn check(&self, ip: IpAddr, account: &str) -> Verdict {
        let now = Instant::now();
        let mut st = self.state.lock().unwrap();
        let mut worst = 0;
        for key in keys(ip, account) {
            if let Some(e) = st.get_mut(&key) {
                if let Some(until) = e.blocked_until {
                    if until > now {
                        return Verdict::Blocked;
                    }
                    st.remove(&key);
                    continue;
                }
                if now.duration_since(e.first) > self.cfg.window {
                    st.remove(&key);
                    continue;
                }
                worst = worst.max(e.failures);
            }
        }
        if worst >= self.cfg.slow_after {
            Verdict::Delay(self.cfg.delay)
        } else {
            Verdict::Allow
        }
    }

    /// Record a failed attempt.
    pub fn failure(&self, ip: IpAddr, account: &str) {
        let now = Instant::now();
        let mut st = self.state.lock().unwrap();
        if st.len() > 100_000 {
            // Bound memory under a distributed attack: forget expired entries.
            let window = self.cfg.window;
            st.retain(|_, e| {
                e.blocked_until.is_some_and(|u| u > now) || now.duration_since(e.first) <= window
            });
        }
        for key in keys(ip, account) {
            let e = st.entry(key.clone()).or_insert(Entry {
                failures: 0,
                first: now,
                blocked_until: None,
            });
            if now.duration_since(e.first) > self.cfg.window {
                *e = Entry {
                    failures: 0,
                    first: now,
                    blocked_until: None,
                };
            }
            e.failures += 1;
            if e.failures >= self.cfg.block_after && e.blocked_until.is_none() {
                e.blocked_until = Some(now + self.cfg.block_for);
                match &key {
                    Key::Ip(ip) => {
                        tracing::warn!(target: "outpost::auth", "auth blocked: ip={ip} reason=too-many-failures")
                    }
                    Key::Account(a) => {
                        tracing::warn!(target: "outpost::auth", "auth blocked: account={a} ip={ip} reason=too-many-failures")
                    }
                }
            }
        }
    }

    /// A successful login clears the address's count (not the account's:
    /// a guesser who also knows one valid password gains nothing).
    pub fn success(&self, ip: IpAddr) {
        self.state.lock().unwrap().remove(&Key::Ip(ip));
    }
}

fn keys(ip: IpAddr, account: &str) -> Vec<Key> {
    let mut v = vec![Key::Ip(ip)];
    if !account.is_empty() {
        v.push(Key::Account(account.to_ascii_lowercase()));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slows_then_blocks() {
        let t = AuthThrottle::new(ThrottleConfig {
            slow_after: 2,
            block_after: 4,
            ..Default::default()
        });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(t.check(ip, "a"), Verdict::Allow);
        t.failure(ip, "a");
        t.failure(ip, "b");
        assert!(matches!(t.check(ip, "c"), Verdict::Delay(_)));
        t.failure(ip, "c");
        t.failure(ip, "d");
        assert_eq!(t.check(ip, "e"), Verdict::Blocked);
        // another address guessing the same account is slowed by the account count
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(t.check(other, "z"), Verdict::Allow);
    }
}
