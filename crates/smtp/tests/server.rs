//! `serve` on a real socket, driven by a raw-line client: one test per rule.

mod common;

use std::time::Duration;

use common::{plain, Setup};
use outpost_net::ThrottleConfig;
use outpost_smtp::{DeliverError, Role};

const MESSAGE: &str =
    "From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: hi\r\n\r\nhello\r\n";

#[tokio::test]
async fn mx_pipelined_delivery_with_dot_stuffing() {
    let srv = Setup::new(Role::Mx).start().await;
    let mut c = srv.connect().await;
    let ehlo = c.cmd("EHLO client.example").await;
    for cap in [
        "PIPELINING",
        "SIZE 26214400",
        "STARTTLS",
        "CHUNKING",
        "DSN",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "8BITMIME",
        "BINARYMIME",
    ] {
        assert!(ehlo.contains(cap), "{cap} missing: {ehlo}");
    }
    assert!(!ehlo.contains("AUTH"), "{ehlo}");
    // The whole transaction in one write (RFC 2920).
    c.send(
        b"MAIL FROM:<someone@remote.example>\r\nRCPT TO:<bob@example.org>\r\nRCPT TO:<carol@example.org>\r\nDATA\r\n",
    )
    .await;
    assert!(c.reply().await.starts_with("250 2.1.0"));
    assert!(c.reply().await.starts_with("250 2.1.5"));
    assert!(c.reply().await.starts_with("250 2.1.5"));
    assert!(c.reply().await.starts_with("354"));
    c.send(b"Subject: dots\r\n\r\n..one dot\r\n...two dots\r\n.\r\n")
        .await;
    let r = c.reply().await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    c.ok("QUIT", "221 2.0.0").await;
    assert!(c.closed().await);

    let delivered = srv.backend.delivered();
    assert_eq!(delivered.len(), 1);
    let (env, msg) = &delivered[0];
    assert_eq!(env.mail_from, "someone@remote.example");
    let rcpts: Vec<_> = env.recipients.iter().map(|r| r.address.as_str()).collect();
    assert_eq!(rcpts, ["bob@example.org", "carol@example.org"]);
    assert_eq!(env.helo, "client.example");
    assert!(env.tls.is_none());
    assert!(msg.starts_with("Received: from client.example ([127.0.0.1])\r\n\tby mx.example.org (Outpost) with ESMTP id "), "{msg}");
    let body_start = msg.find("Subject: dots").unwrap();
    assert_eq!(
        &msg[body_start..],
        "Subject: dots\r\n\r\n.one dot\r\n..two dots\r\n"
    );
    assert!(!msg.contains("Return-Path"), "the backend adds Return-Path");
}

#[tokio::test]
async fn mx_refuses_relaying_and_unknown_users_at_rcpt() {
    let srv = Setup::new(Role::Mx).start().await;
    let mut c = srv.connect().await;
    c.ok("EHLO client.example", "250").await;
    c.ok("MAIL FROM:<spammer@remote.example>", "250 2.1.0")
        .await;
    c.ok("RCPT TO:<victim@elsewhere.example>", "554 5.7.1")
        .await;
    c.ok("RCPT TO:<nobody@example.org>", "550 5.1.1").await;
    c.ok("RCPT TO:<ldap-down@example.org>", "451 4.4.3").await;
    c.ok("DATA", "554 5.5.1").await;
    c.ok("RCPT TO:<bob@example.org>", "250 2.1.5").await;
    c.ok("DATA", "354").await;
    c.send(b"Subject: x\r\n\r\nx\r\n.\r\n").await;
    assert!(c.reply().await.starts_with("250 2.0.0"));
    assert_eq!(srv.backend.delivered().len(), 1);
    assert!(srv.backend.queued().is_empty());
}

#[tokio::test]
async fn size_limit_declared_and_actual() {
    let srv = Setup::new(Role::Mx)
        .with(|ctx| ctx.limits.message_size = 1000)
        .start()
        .await;
    let mut c = srv.connect().await;
    let ehlo = c.cmd("EHLO client.example").await;
    assert!(ehlo.contains("SIZE 1000\r\n"), "{ehlo}");
    c.ok("MAIL FROM:<a@remote.example> SIZE=5000", "552 5.3.4")
        .await;
    c.ok("MAIL FROM:<a@remote.example> SIZE=500", "250").await;
    c.ok("RCPT TO:<bob@example.org>", "250").await;
    c.ok("DATA", "354").await;
    let line = format!("{}\r\n", "x".repeat(70));
    for _ in 0..30 {
        c.send(line.as_bytes()).await;
    }
    c.send(b".\r\n").await;
    let r = c.reply().await;
    assert!(r.starts_with("552 5.3.4"), "{r}");
    c.ok("NOOP", "250").await;
    assert!(srv.backend.delivered().is_empty());
}

#[tokio::test]
async fn long_lines_refused_session_goes_on() {
    let srv = Setup::new(Role::Mx).start().await;
    let mut c = srv.connect().await;
    c.ok("EHLO client.example", "250").await;
    c.ok(&format!("NOOP {}", "x".repeat(2000)), "500 5.5.2")
        .await;
    c.ok("MAIL FROM:<a@remote.example>", "250").await;
    c.ok("RCPT TO:<bob@example.org>", "250").await;
    c.ok("DATA", "354").await;
    c.send(format!("Subject: x\r\n\r\n{}\r\n.\r\n", "y".repeat(1200)).as_bytes())
        .await;
    let r = c.reply().await;
    assert!(r.starts_with("500 5.5.2"), "{r}");
    c.ok("NOOP", "250").await;
    assert!(srv.backend.delivered().is_empty());
}

#[tokio::test]
async fn bad_commands_keep_the_session() {
    let srv = Setup::new(Role::Mx).start().await;
    let mut c = srv.connect().await;
    c.ok("BOGUS", "500 5.5.1").await;
    c.ok("MAIL FROM:<a@remote.example>", "503 5.5.1").await;
    c.ok("EHLO client.example", "250").await;
    c.ok("MAIL FROM:a@remote.example", "501").await;
    c.ok("MAIL FROM:<a@remote.example> FROB=1", "555 5.5.4")
        .await;
    c.ok("RCPT TO:<bob@example.org>", "503 5.5.1").await;
    c.ok("VRFY bob", "252").await;
    c.ok("EXPN staff", "502").await;
    c.ok("RSET", "250 2.0.0").await;
    c.ok("MAIL FROM:<a@remote.example>", "250").await;
    c.ok("RCPT TO:<bob@example.org>", "250").await;
}

#[tokio::test]
async fn too_many_errors_ends_with_421() {
    let srv = Setup::new(Role::Mx)
        .with(|ctx| ctx.limits.max_errors = 3)
        .start()
        .await;
    let mut c = srv.connect().await;
    c.ok("BOGUS", "500").await;
    c.ok("BOGUS", "500").await;
    c.send(b"BOGUS\r\n").await;
    let r = c.reply().await;
    assert!(r.starts_with("500"), "{r}");
    let r = c.reply().await;
    assert!(r.starts_with("421 4.7.0"), "{r}");
    assert!(c.closed().await);
}

#[tokio::test]
async fn submission_refuses_auth_before_starttls() {
    let srv = Setup::new(Role::Submission).start().await;
    let mut c = srv.connect().await;
    let ehlo = c.cmd("EHLO client.example").await;
    assert!(ehlo.contains("STARTTLS"), "{ehlo}");
    assert!(!ehlo.contains("AUTH"), "{ehlo}");
    c.ok(
        &format!("AUTH PLAIN {}", plain("alice", "secret")),
        "530 5.7.0 Must issue a STARTTLS command first",
    )
    .await;
    c.ok("MAIL FROM:<alice@example.org>", "530 5.7.0").await;
    assert_eq!(
        srv.backend
            .auth_calls
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
}

#[tokio::test]
async fn submission_starttls_auth_local_and_remote() {
    let srv = Setup::new(Role::Submission).start().await;
    let c = srv.connect().await;
    let mut c = c.login_tls(&srv.cert, "alice", "secret").await;
    c.ok("MAIL FROM:<alice@example.org>", "250 2.1.0").await;
    c.ok("RCPT TO:<bob@example.org>", "250 2.1.5").await;
    c.ok("RCPT TO:<friend@elsewhere.example>", "250 2.1.5")
        .await;
    c.ok("DATA", "354").await;
    c.send(format!("{MESSAGE}.\r\n").as_bytes()).await;
    let r = c.reply().await;
    assert!(r.starts_with("250 2.0.0"), "{r}");

    let delivered = srv.backend.delivered();
    let queued = srv.backend.queued();
    assert_eq!(delivered.len(), 1);
    assert_eq!(queued.len(), 1);
    let (env, msg) = &delivered[0];
    assert_eq!(env.recipients[0].address, "bob@example.org");
    assert_eq!(env.auth.as_ref().unwrap().login, "alice");
    assert!(
        env.tls.as_deref().unwrap().starts_with("TLSv1."),
        "{:?}",
        env.tls
    );
    assert_eq!(
        queued[0].0.recipients[0].address,
        "friend@elsewhere.example"
    );
    assert!(msg.contains(" with ESMTPSA id "), "{msg}");
    assert!(msg.contains("\t(TLSv1."), "{msg}");
    assert!(msg.contains("(authenticated sender: alice)"), "{msg}");
    assert!(!msg.contains("secret"));
    assert_eq!(queued[0].1, *msg, "one message, same bytes for both");
}

#[tokio::test]
async fn starttls_discards_pipelined_plaintext() {
    let srv = Setup::new(Role::Submission).start().await;
    let mut c = srv.connect().await;
    c.ok("EHLO client.example", "250").await;
    // A command injected after STARTTLS in the same packet must not run.
    c.send(b"STARTTLS\r\nRSET\r\n").await;
    // (Client::starttls would send STARTTLS again; do it by hand.)
    let r = c.reply().await;
    assert!(r.starts_with("220 2.0.0"), "{r}");
    let mut c = common_tls_after_220(c, &srv.cert).await;
    let r = c.cmd("EHLO client.example").await;
    assert!(
        r.starts_with("250-mx.example.org"),
        "the RSET must not have been answered: {r}"
    );
    assert!(r.contains("AUTH PLAIN LOGIN"), "{r}");
}

async fn common_tls_after_220(
    c: common::Client,
    cert: &rustls::pki_types::CertificateDer<'static>,
) -> common::Client {
    c.handshake(cert).await
}

#[tokio::test]
async fn submission_refuses_senders_the_user_does_not_own() {
    let srv = Setup::new(Role::Submission).start().await;
    let c = srv.connect().await;
    let mut c = c.login_tls(&srv.cert, "alice", "secret").await;
    c.ok("MAIL FROM:<bob@example.org>", "553 5.7.1").await;
    c.ok("MAIL FROM:<>", "553 5.7.1").await;
    c.ok("MAIL FROM:<alice@example.org>", "250").await;
    c.ok("RCPT TO:<bob@example.org>", "250").await;
    c.ok("DATA", "354").await;
    c.send(b"From: Bob <bob@example.org>\r\nSubject: spoof\r\n\r\nx\r\n.\r\n")
        .await;
    let r = c.reply().await;
    assert!(r.starts_with("553 5.7.1"), "{r}");
    // Another of her own addresses in From: is fine.
    c.ok("MAIL FROM:<alice@example.org>", "250").await;
    c.ok("RCPT TO:<bob@example.org>", "250").await;
    c.ok("DATA", "354").await;
    c.send(b"From: <alice.smith@example.org>\r\nSubject: ok\r\n\r\nx\r\n.\r\n")
        .await;
    let r = c.reply().await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    assert_eq!(srv.backend.delivered().len(), 1);
}

#[tokio::test]
async fn implicit_tls_submission() {
    let srv = Setup::new(Role::Submission).implicit_tls().start().await;
    let mut c = srv.connect_tls().await;
    let ehlo = c.cmd("EHLO client.example").await;
    assert!(ehlo.contains("AUTH PLAIN LOGIN"), "{ehlo}");
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    c.ok("MAIL FROM:<bob@example.org>", "530 5.7.0").await;
    c.ok("AUTH LOGIN", "334 VXNlcm5hbWU6").await;
    c.ok("Ym9i", "334 UGFzc3dvcmQ6").await; // bob
    c.ok("aHVudGVyMg==", "235 2.7.0").await; // hunter2
    c.ok("MAIL FROM:<bob@example.org>", "250").await;
    c.ok("RCPT TO:<alice@example.org>", "250").await;
    c.send(b"BDAT 5 LAST\r\nhello").await;
    let r = c.reply().await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let (env, msg) = &srv.backend.delivered()[0];
    assert_eq!(env.auth.as_ref().unwrap().login, "bob");
    assert!(msg.ends_with("\r\nhello"), "{msg}");
}

#[tokio::test]
async fn failed_logins_are_throttled_then_blocked() {
    let srv = Setup::new(Role::Submission)
        .implicit_tls()
        .with(|ctx| {
            ctx.listener.auth = ctx
                .listener
                .auth
                .with_throttle(outpost_net::AuthThrottle::new(ThrottleConfig {
                    slow_after: 100,
                    block_after: 2,
                    ..Default::default()
                }));
            ctx.limits.max_auth_failures = 10;
        })
        .start()
        .await;
    let mut c = srv.connect_tls().await;
    c.ok("EHLO client.example", "250").await;
    c.ok(
        &format!("AUTH PLAIN {}", plain("alice", "wrong")),
        "535 5.7.8",
    )
    .await;
    c.ok(
        &format!("AUTH PLAIN {}", plain("alice", "wrong")),
        "535 5.7.8",
    )
    .await;
    // Blocked now: not even the right password is checked.
    c.ok(
        &format!("AUTH PLAIN {}", plain("alice", "secret")),
        "421 4.7.0",
    )
    .await;
    assert!(c.closed().await);
    assert_eq!(
        srv.backend
            .auth_calls
            .load(std::sync::atomic::Ordering::SeqCst),
        2
    );
}

#[tokio::test]
async fn plaintext_auth_on_loopback_only_when_allowed() {
    let srv = Setup::new(Role::Submission)
        .no_tls()
        .with(|ctx| ctx.listener.allow_plaintext_on_loopback = true)
        .start()
        .await;
    let mut c = srv.connect().await;
    let ehlo = c.cmd("EHLO client.example").await;
    assert!(ehlo.contains("AUTH PLAIN LOGIN"), "{ehlo}");
    c.ok(&format!("AUTH PLAIN {}", plain("alice", "secret")), "235")
        .await;

    let srv = Setup::new(Role::Submission).no_tls().start().await;
    let mut c = srv.connect().await;
    c.ok("EHLO client.example", "250").await;
    c.ok(
        &format!("AUTH PLAIN {}", plain("alice", "secret")),
        "538 5.7.11",
    )
    .await;
}

#[tokio::test]
async fn bdat_chunking() {
    let srv = Setup::new(Role::Mx).start().await;
    let mut c = srv.connect().await;
    c.ok("EHLO client.example", "250").await;
    c.send(b"MAIL FROM:<a@remote.example> BODY=BINARYMIME\r\nRCPT TO:<bob@example.org>\r\nBDAT 14\r\nSubject: b\r\n\r\n").await;
    assert!(c.reply().await.starts_with("250 2.1.0"));
    assert!(c.reply().await.starts_with("250 2.1.5"));
    let r = c.reply().await;
    assert_eq!(r, "250 2.0.0 14 octets received\r\n");
    // A chunk with a lone "." line and binary bytes, then LAST.
    let mut chunk = b"line\r\n.\r\n".to_vec();
    chunk.extend_from_slice(&[0, 1, 2, 255]);
    c.send(format!("BDAT {} LAST\r\n", chunk.len()).as_bytes())
        .await;
    c.send(&chunk).await;
    let r = c.reply().await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let stored = srv.backend.delivered.lock().unwrap()[0].1.clone();
    assert!(stored.ends_with(b"Subject: b\r\n\r\nline\r\n.\r\n\x00\x01\x02\xff"));
    let env = &srv.backend.delivered()[0].0;
    assert_eq!(env.body, outpost_smtp::Body::BinaryMime);
}

#[tokio::test]
async fn lmtp_replies_per_recipient() {
    let srv = Setup::new(Role::Lmtp).no_tls().start().await;
    srv.backend.fail(
        "full@example.org",
        DeliverError::StorageFull("disk full".into()),
    );
    let mut c = srv.connect().await;
    c.ok("EHLO client.example", "500").await;
    c.ok("LHLO mta.example", "250").await;
    c.ok("MAIL FROM:<someone@remote.example>", "250").await;
    c.ok("RCPT TO:<alice@example.org>", "250").await;
    c.ok("RCPT TO:<full@example.org>", "250").await;
    c.ok("RCPT TO:<bob@example.org>", "250").await;
    c.ok("RCPT TO:<other@elsewhere.example>", "554 5.7.1").await;
    c.ok("DATA", "354").await;
    c.send(format!("{MESSAGE}.\r\n").as_bytes()).await;
    assert_eq!(
        c.reply().await,
        "250 2.0.0 <alice@example.org> delivered\r\n"
    );
    let r = c.reply().await;
    assert!(r.starts_with("452 4.3.1 <full@example.org>"), "{r}");
    assert_eq!(c.reply().await, "250 2.0.0 <bob@example.org> delivered\r\n");
    c.ok("QUIT", "221").await;
    let delivered = srv.backend.delivered();
    assert_eq!(delivered.len(), 1);
    assert!(delivered[0].1.contains(" with LMTP id "));
}

#[tokio::test]
async fn vanishing_client_mid_data_leaves_nothing() {
    let srv = Setup::new(Role::Mx).start().await;
    let mut c = srv.connect().await;
    c.ok("EHLO client.example", "250").await;
    c.ok("MAIL FROM:<a@remote.example>", "250").await;
    c.ok("RCPT TO:<bob@example.org>", "250").await;
    c.ok("DATA", "354").await;
    c.send(b"Subject: half\r\n\r\nonly half of it\r\n").await;
    drop(c);
    srv.wait_finished(1).await;
    assert!(srv.backend.delivered().is_empty());
    assert!(srv.backend.queued().is_empty());
}

#[tokio::test]
async fn idle_client_gets_421() {
    let srv = Setup::new(Role::Mx)
        .with(|ctx| ctx.limits.command_timeout = Duration::from_millis(200))
        .start()
        .await;
    let mut c = srv.connect().await;
    c.ok("EHLO client.example", "250").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let r = c.reply().await;
    assert!(r.starts_with("421 4.4.2"), "{r}");
    assert!(c.closed().await);
}

#[tokio::test]
async fn stalled_inbound_checks_get_451_443_and_the_session_goes_on() {
    let srv = Setup::new(Role::Mx)
        .with(|ctx| ctx.limits.check_timeout = Duration::from_millis(300))
        .start()
        .await;
    *srv.backend.check_delay.lock().unwrap() = Some(Duration::from_secs(60));
    let mut c = srv.connect().await;
    c.ok("EHLO client.example", "250").await;
    c.ok("MAIL FROM:<someone@remote.example>", "250").await;
    c.ok("RCPT TO:<bob@example.org>", "250").await;
    c.ok("DATA", "354").await;
    let started = std::time::Instant::now();
    c.send(format!("{MESSAGE}.\r\n").as_bytes()).await;
    let r = c.reply().await;
    assert!(r.starts_with("451 4.4.3 "), "{r}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(srv.backend.delivered().is_empty());
    // Checks that answer in time let the next message through.
    *srv.backend.check_delay.lock().unwrap() = Some(Duration::from_millis(10));
    c.ok("MAIL FROM:<someone@remote.example>", "250").await;
    c.ok("RCPT TO:<bob@example.org>", "250").await;
    c.ok("DATA", "354").await;
    c.send(format!("{MESSAGE}.\r\n").as_bytes()).await;
    let r = c.reply().await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    assert_eq!(srv.backend.delivered().len(), 1);
}

#[tokio::test]
async fn slowed_logins_wait_out_the_delay() {
    let srv = Setup::new(Role::Submission)
        .implicit_tls()
        .with(|ctx| {
            ctx.listener.auth = ctx
                .listener
                .auth
                .with_throttle(outpost_net::AuthThrottle::new(ThrottleConfig {
                    slow_after: 1,
                    delay: Duration::from_millis(300),
                    block_after: 100,
                    ..Default::default()
                }));
        })
        .start()
        .await;
    let mut c = srv.connect_tls().await;
    c.ok("EHLO client.example", "250").await;
    c.ok(
        &format!("AUTH PLAIN {}", plain("alice", "wrong")),
        "535 5.7.8",
    )
    .await;
    let started = std::time::Instant::now();
    c.ok(
        &format!("AUTH PLAIN {}", plain("alice", "secret")),
        "235 2.7.0",
    )
    .await;
    assert!(started.elapsed() >= Duration::from_millis(300));
}

/// Rough throughput of the protocol layer alone (in-memory backend):
/// `cargo test -p outpost-smtp --release -- --ignored --nocapture throughput`.
#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn throughput_smoke() {
    let srv = Setup::new(Role::Mx).start().await;
    let body = format!(
        "Subject: bench\r\n\r\n{}",
        format!("{}\r\n", "x".repeat(78)).repeat(50)
    );
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let addr = srv.connect().await;
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = addr;
            c.ok("EHLO bench.example", "250").await;
            for _ in 0..250 {
                c.send(b"MAIL FROM:<a@remote.example>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n")
                    .await;
                for _ in 0..3 {
                    c.reply().await;
                }
                c.send(format!("{body}.\r\n").as_bytes()).await;
                let r = c.reply().await;
                assert!(r.starts_with("250"), "{r}");
            }
            c.ok("QUIT", "221").await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let n = srv.backend.delivered().len();
    let secs = started.elapsed().as_secs_f64();
    println!("{n} messages in {secs:.2}s: {:.0} msgs/s", n as f64 / secs);
    assert_eq!(n, 5000);
}
