//! What the IMAP `session` fuzz target checks, kept apart from libFuzzer so
//! that `tests/proptest_session.rs` runs the same code on stable Rust (both
//! include this file with `#[path]`).
//!
//! The input's first byte chooses how the bytes arrive (1, 7, 64 octets or
//! all at once per read) and whether the storage fails half-way; the rest
//! is what the client sends, and is also filed as message 3 of INBOX. The
//! bytes go through the same [`Connection`] the server runs, over the
//! in-memory storage. Checked, besides "never panics and always ends":
//!
//! - the output is a well-formed response stream: CRLF-terminated lines,
//!   `{n}` literals followed by exactly n octets, and every response
//!   untagged (`* `), a continuation (`+`), or `tag OK|NO|BAD`;
//! - the client's view of the selected mailbox stays consistent
//!   (RFC 3501 7.4.1): counting `EXISTS`, `EXPUNGE` and `VANISHED` as a
//!   client does gives the number of messages the session believes the
//!   client knows, and no `FETCH` or `EXPUNGE` names a sequence number
//!   beyond it.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use outpost_imap::connection::{Connection, Step};
use outpost_imap::memory::MemStorage;
use outpost_imap::{AuthLayer, ImapContext, ImapLimits};
use outpost_net::auth::{AuthUser, Authenticator, TempFail};
use outpost_net::{AuthThrottle, ThrottleConfig};

struct Auth {
    principal: i64,
}

#[async_trait::async_trait]
impl Authenticator for Auth {
    async fn authenticate(
        &self,
        login: &str,
        password: &str,
    ) -> Result<Option<AuthUser>, TempFail> {
        if login == "down" {
            return Err(TempFail("directory down".into()));
        }
        Ok((login == "bob" && password == "secret").then(|| AuthUser {
            principal_id: self.principal,
            login: login.into(),
            quota_bytes: 1_000_000,
        }))
    }
}

/// How far an input got, so that seed tests can tell a seed that drives
/// the session deep from one that stops at the door.
#[derive(Debug, Default, Clone, Copy)]
pub struct Outcome {
    pub tagged_ok: usize,
    pub authenticated: bool,
    /// Some mailbox was selected at some point.
    pub selected: bool,
}

/// Runs one input; panics when a check fails.
pub fn session(data: &[u8]) -> Outcome {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(run(data))
}

async fn run(data: &[u8]) -> Outcome {
    let (setup, input) = match data.split_first() {
        Some((b, rest)) => (*b, rest),
        None => (0, &[][..]),
    };
    let chunk = match setup & 3 {
        0 => 1,
        1 => 7,
        2 => 64,
        _ => usize::MAX,
    };
    let fail_half_way = setup & 4 != 0;

    let store = MemStorage::new();
    let principal = store.add_principal();
    let inbox = store.mailbox_id(principal, "INBOX").unwrap();
    store.deliver(
        inbox,
        b"Subject: one\r\nFrom: a@b.c\r\n\r\nhello\r\n",
        0,
        1_700_000_000,
    );
    store.deliver(
        inbox,
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\npart\r\n--x--\r\n",
        1,
        1_700_000_100,
    );
    store.deliver(inbox, input, 8, 1_700_000_200);
    let limits = ImapLimits {
        max_line: 4096,
        max_literal: 64 * 1024,
        max_command: 256 * 1024,
        max_bad_commands: 50,
        ..Default::default()
    };
    let throttle = AuthThrottle::new(ThrottleConfig {
        window: Duration::from_secs(60),
        slow_after: u32::MAX,
        delay: Duration::ZERO,
        block_after: u32::MAX,
        block_for: Duration::from_secs(1),
    });
    let ctx = Arc::new(ImapContext {
        listener: outpost_net::ListenerContext {
            hostname: "imap.example.org".into(),
            tls: None,
            auth: AuthLayer::new(Arc::new(Auth { principal }), throttle),
            allow_plaintext_on_loopback: true,
        },
        storage: Arc::new(store.clone()),
        limits,
    });
    let peer = "127.0.0.1:40000".parse().unwrap();
    let local = "127.0.0.1:143".parse().unwrap();
    let net = outpost_net::Session::new(peer, local, "imap");
    let mut c = Connection::new(ctx, net, false);

    let mut view = View::default();
    let mut fed = 0;
    let mut changes = 0;
    // Bounded: every step consumes input, or ends, or (IDLE) causes at
    // most a few changes before input is fed.
    for _ in 0..100_000 {
        let step = c.step().await;
        let out = std::mem::take(c.output());
        view.read(&out);
        let settled = matches!(step, Step::NeedInput { .. } | Step::Idle { .. });
        if settled {
            if let (Some(model), Some(session)) = (view.exists, c.selected_exists()) {
                assert_eq!(
                    model, session,
                    "client's count of messages disagrees with the session"
                );
            }
        }
        if fail_half_way && fed >= input.len() / 2 {
            store.set_unavailable(true);
        }
        match step {
            Step::Flush => continue,
            Step::Close { .. } => return view.outcome,
            Step::StartTls => c.tls_started(),
            Step::Idle { .. } if changes < 3 => {
                changes += 1;
                store.set_unavailable(false);
                store.deliver(inbox, b"Subject: new\r\n\r\nnew\r\n", 0, 1_700_000_300);
                c.mailbox_changed().await;
                continue;
            }
            Step::Idle { .. } | Step::NeedInput { .. } => {}
        }
        if fed >= input.len() {
            return view.outcome;
        }
        let end = fed.saturating_add(chunk).min(input.len());
        c.push(&input[fed..end]);
        fed = end;
    }
    panic!("the connection did not finish");
}

/// The selected mailbox as a client following the responses sees it.
#[derive(Default)]
struct View {
    exists: Option<u32>,
    outcome: Outcome,
}

impl View {
    /// Checks one batch of output (always whole responses) and follows
    /// the message count.
    fn read(&mut self, out: &[u8]) {
        let mut pos = 0;
        while pos < out.len() {
            let mut text = Vec::new();
            loop {
                let rest = &out[pos..];
                let eol = rest
                    .windows(2)
                    .position(|w| w == b"\r\n")
                    .unwrap_or_else(|| {
                        panic!("response without CRLF: {:?}", String::from_utf8_lossy(rest))
                    });
                let line = &rest[..eol];
                text.extend_from_slice(line);
                pos += eol + 2;
                match literal_len(line) {
                    Some(n) => {
                        assert!(
                            out.len() - pos >= n,
                            "literal of {n} octets cut short in {:?}",
                            String::from_utf8_lossy(&out[..out.len().min(2000)])
                        );
                        pos += n;
                    }
                    None => break,
                }
            }
            self.response(&text);
        }
    }

    fn response(&mut self, r: &[u8]) {
        let s = String::from_utf8_lossy(r);
        if s.starts_with('+') {
            return;
        }
        let mut words = s.split(' ');
        let first = words.next().unwrap_or("");
        let second = words.next().unwrap_or("");
        if first != "*" {
            assert!(
                !first.is_empty() && matches!(second, "OK" | "NO" | "BAD"),
                "not a response: {s:?}"
            );
            if s.contains("[CLOSED]") {
                self.exists = None;
            }
            if second == "OK" {
                self.outcome.tagged_ok += 1;
                self.outcome.authenticated |= s.contains("Logged in");
                self.outcome.selected |= s.contains("[READ-WRITE]") || s.contains("[READ-ONLY]");
            }
            return;
        }
        let third = words.next().unwrap_or("");
        if let Ok(n) = second.parse::<u32>() {
            match third {
                "EXISTS" => self.exists = Some(n),
                "EXPUNGE" => {
                    let e = self.exists.expect("EXPUNGE without a selected mailbox");
                    assert!(n >= 1 && n <= e, "EXPUNGE {n} with {e} messages");
                    self.exists = Some(e - 1);
                }
                "FETCH" => {
                    let e = self.exists.expect("FETCH without a selected mailbox");
                    assert!(n >= 1 && n <= e, "FETCH {n} with {e} messages");
                }
                _ => {}
            }
        } else if second == "VANISHED" && third != "(EARLIER)" {
            let e = self.exists.expect("VANISHED without a selected mailbox");
            let gone = count_set(third);
            assert!(gone <= e as u64, "VANISHED {third} with {e} messages");
            self.exists = Some(e - gone as u32);
        } else if second == "OK" && (s.contains("[CLOSED]")) {
            self.exists = None;
        }
    }
}

fn literal_len(line: &[u8]) -> Option<usize> {
    let line = line.strip_suffix(b"}")?;
    let open = line.iter().rposition(|&b| b == b'{')?;
    let digits = line[open + 1..]
        .strip_suffix(b"+")
        .unwrap_or(&line[open + 1..]);
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn count_set(set: &str) -> u64 {
    set.split(',')
        .map(|r| match r.split_once(':') {
            Some((a, b)) => {
                let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
                a.max(b) - a.min(b) + 1
            }
            None => 1,
        })
        .sum()
}
