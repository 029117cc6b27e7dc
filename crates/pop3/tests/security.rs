//! TLS, plaintext refusal, throttling, locks and limits.

mod common;

use std::time::{Duration, Instant};

use common::*;
use outpost_net::{AuthThrottle, ThrottleConfig};

/// A server as on the internet: STLS offered, plaintext logins refused.
async fn internet_facing() -> TestServer {
    let mut ctx = context(fixture());
    ctx.listener.tls = Some(tls_acceptor());
    ctx.listener.allow_plaintext_on_loopback = false;
    start(ctx, false).await
}

#[tokio::test]
async fn plaintext_logins_refused_before_stls() {
    let srv = internet_facing().await;
    let mut c = Client::connect(srv.addr).await;
    let (_, caps) = c.multi("CAPA").await;
    assert!(caps.iter().any(|c| c == "STLS"), "{caps:?}");
    assert!(
        !caps.iter().any(|c| c == "USER" || c.starts_with("SASL")),
        "{caps:?}"
    );
    assert!(c
        .err("USER alice")
        .await
        .starts_with("-ERR [AUTH] Plaintext"));
    assert!(c.err("PASS secret").await.starts_with("-ERR"));
    assert!(c
        .err("AUTH PLAIN AGFsaWNlAHNlY3JldA==")
        .await
        .starts_with("-ERR [AUTH] Plaintext"));
    assert!(c
        .err("AUTH PLAIN")
        .await
        .starts_with("-ERR [AUTH] Plaintext"));
    assert!(c.err("STAT").await.contains("Not logged in"));

    // after STLS everything works
    let mut c = c.stls().await;
    let (_, caps) = c.multi("CAPA").await;
    assert!(!caps.iter().any(|c| c == "STLS"), "{caps:?}");
    assert!(caps.iter().any(|c| c == "USER"));
    assert!(caps.iter().any(|c| c == "SASL PLAIN"));
    assert!(c.err("STLS").await.contains("Already"));
    c.login("alice", "secret").await;
    c.ok("RETR 3").await;
    assert!(c.body().await.starts_with(b"Subject: dots\r\n\r\n..\r\n"));
    c.ok("DELE 1").await;
    c.ok("QUIT").await;
    c.expect_eof().await;
}

#[tokio::test]
async fn auth_plain_over_stls() {
    let srv = internet_facing().await;
    let c = Client::connect(srv.addr).await;
    let mut c = c.stls().await;
    assert_eq!(c.cmd("AUTH PLAIN").await, "+ ");
    c.ok("AGFsaWNlAHNlY3JldA==").await;
    assert!(c.ok("STAT").await.starts_with("+OK 3 "));
}

#[tokio::test]
async fn plaintext_not_allowed_on_loopback_without_the_setting() {
    // no TLS at all and plaintext not allowed: nobody can log in
    let mut ctx = context(fixture());
    ctx.listener.allow_plaintext_on_loopback = false;
    let srv = start(ctx, false).await;
    let mut c = Client::connect(srv.addr).await;
    assert!(c.err("STLS").await.contains("not available"));
    assert!(c.err("USER alice").await.starts_with("-ERR [AUTH]"));
    assert_eq!(c.multi("AUTH").await.1, Vec::<String>::new());
}

#[tokio::test]
async fn commands_pipelined_after_stls_are_discarded() {
    let srv = internet_facing().await;
    let mut c = Client::connect(srv.addr).await;
    // The classic STARTTLS injection: plaintext sent behind STLS must not be
    // executed inside the TLS session.
    c.send(b"STLS\r\nCAPA\r\n").await;
    assert!(c.line().await.starts_with("+OK"));
    // hand the raw stream to TLS without another STLS
    let mut c = c.into_tls_after_ok().await;
    assert_eq!(c.cmd("USER alice").await, "+OK Send PASS");
}

#[tokio::test]
async fn implicit_tls_pop3s() {
    let mut ctx = context(fixture());
    ctx.listener.tls = Some(tls_acceptor());
    ctx.listener.allow_plaintext_on_loopback = false;
    let srv = start(ctx, true).await;
    let mut c = Client::connect_tls(srv.addr).await;
    let (_, caps) = c.multi("CAPA").await;
    assert!(!caps.iter().any(|c| c == "STLS"));
    assert!(caps.iter().any(|c| c == "USER"));
    c.login("alice", "secret").await;
    c.ok("RETR 2").await;
    assert!(c.body().await.ends_with(b"line 4\r\n"));
    c.ok("QUIT").await;
}

#[tokio::test]
async fn second_session_gets_in_use() {
    let b = fixture();
    b.add_alias("alice@example.org", "alice");
    let srv = start(context(b), false).await;
    let mut one = Client::connect(srv.addr).await;
    one.login("alice", "secret").await;
    let mut two = Client::connect(srv.addr).await;
    two.ok("USER alice@example.org").await;
    assert!(two.err("PASS secret").await.starts_with("-ERR [IN-USE]"));
    // other users are not affected
    let mut bob = Client::connect(srv.addr).await;
    bob.login("bob", "hunter2").await;
    one.ok("QUIT").await;
    one.expect_eof().await;
    wait_unlocked(&srv.ctx, ALICE).await;
    two.login("alice", "secret").await;
}

#[tokio::test]
async fn throttle_delays_then_blocks() {
    let mut ctx = context(fixture());
    ctx.listener.auth = ctx
        .listener
        .auth
        .with_throttle(AuthThrottle::new(ThrottleConfig {
            slow_after: 1,
            delay: Duration::from_millis(300),
            block_after: 3,
            ..Default::default()
        }));
    ctx.limits.max_bad_commands = 100;
    let srv = start(ctx, false).await;
    let mut c = Client::connect(srv.addr).await;
    c.ok("USER alice").await;
    let t = Instant::now();
    assert!(c.err("PASS wrong1").await.starts_with("-ERR [AUTH]"));
    assert!(
        t.elapsed() < Duration::from_millis(250),
        "first failure is not slowed"
    );
    c.ok("USER alice").await;
    let t = Instant::now();
    assert!(c.err("PASS wrong2").await.starts_with("-ERR [AUTH]"));
    assert!(
        t.elapsed() >= Duration::from_millis(290),
        "second is slowed"
    );
    // a right password is slowed too: the delay tells nothing
    let t = Instant::now();
    c.ok("USER bob").await;
    c.ok("PASS hunter2").await;
    assert!(t.elapsed() >= Duration::from_millis(290));
    c.ok("QUIT").await;

    let mut c = Client::connect(srv.addr).await;
    c.ok("USER alice").await;
    c.err("PASS wrong3").await;
    // blocked now: refused without checking, connection closed
    c.ok("USER alice").await;
    let r = c.err("PASS secret").await;
    assert!(
        r.starts_with("-ERR [AUTH]") && r.contains("Too many"),
        "{r}"
    );
    c.expect_eof().await;
    // AUTH PLAIN is throttled by the same counts
    let mut c = Client::connect(srv.addr).await;
    assert!(c
        .err("AUTH PLAIN AGFsaWNlAHNlY3JldA==")
        .await
        .contains("Too many"));
}

#[tokio::test]
async fn failed_logins_count_towards_the_error_limit() {
    let mut ctx = context(fixture());
    ctx.limits.max_bad_commands = 3;
    let srv = start(ctx, false).await;
    let mut c = Client::connect(srv.addr).await;
    for _ in 0..2 {
        c.ok("USER alice").await;
        c.err("PASS nope").await;
    }
    c.ok("USER alice").await;
    assert!(c.err("PASS nope").await.contains("closing"));
    c.expect_eof().await;
}

#[tokio::test]
async fn temporary_failures() {
    let b = fixture();
    b.break_maildrop("bob");
    let srv = start(context(b), false).await;
    let mut c = Client::connect(srv.addr).await;
    c.ok("USER tempfail").await;
    assert!(c.err("PASS x").await.starts_with("-ERR [SYS/TEMP]"));
    c.ok("USER bob").await;
    assert!(c.err("PASS hunter2").await.starts_with("-ERR [SYS/TEMP]"));
    // the lock taken for bob was released again
    assert!(!srv.ctx.locks.is_locked(BOB));
    c.login("alice", "secret").await;
}

#[tokio::test]
async fn idle_timeout_closes() {
    let mut ctx = context(fixture());
    ctx.limits.idle_timeout = Duration::from_millis(200);
    let srv = start(ctx, false).await;
    let mut c = Client::connect(srv.addr).await;
    c.login("alice", "secret").await;
    c.ok("DELE 1").await;
    let r = c.line().await;
    assert!(r.starts_with("-ERR") && r.contains("Idle"), "{r}");
    c.expect_eof().await;
    wait_unlocked(&srv.ctx, ALICE).await;
    assert!(srv.ctx.locks.try_lock(ALICE).is_some());
}

#[tokio::test]
async fn overlong_lines_get_err_and_the_session_goes_on() {
    let (srv, _) = standard().await;
    let mut c = Client::connect(srv.addr).await;
    let long = format!("USER {}\r\n", "a".repeat(5000));
    c.send(long.as_bytes()).await;
    assert!(c.line().await.contains("too long"));
    // just within the default limit
    let ok = format!("USER {}", "b".repeat(1000));
    c.ok(&ok).await;
    c.login("alice", "secret").await;
    assert!(c.ok("STAT").await.starts_with("+OK 3"));
}

#[tokio::test]
async fn too_many_bad_commands_close() {
    let (srv, _) = standard().await;
    let mut c = Client::connect(srv.addr).await;
    for _ in 0..9 {
        c.err("XYZZY").await;
    }
    assert!(c.err("XYZZY").await.contains("closing"));
    c.expect_eof().await;
}

#[tokio::test]
async fn garbage_does_not_hurt_other_sessions() {
    let (srv, _) = standard().await;
    let mut good = Client::connect(srv.addr).await;
    good.login("alice", "secret").await;
    let mut bad = Client::connect_no_greeting(srv.addr).await;
    bad.send(&[0u8, 0xff, b'\r', b'\n', 0x16, 0x03, 0x01, b'\n'])
        .await;
    bad.send(&vec![b'x'; 100_000]).await;
    drop(bad);
    assert!(good.ok("STAT").await.starts_with("+OK 3"));
}
