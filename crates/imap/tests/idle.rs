//! IDLE: woken by the store's change notifications, DONE, timeout.
mod common;
use common::*;
use std::time::{Duration, Instant};

#[tokio::test]
async fn idle_sees_delivery_and_flag_change() {
    let s = server().await;
    s.deliver("INBOX", MSG).await;
    let mut a = s.login().await;
    let mut b = s.login().await;
    a.cmd("a1 SELECT INBOX").await.ok();
    b.cmd("b1 SELECT INBOX").await.ok();
    a.send("a2 IDLE").await;
    assert!(a.line().await.starts_with("+ "));
    let start = Instant::now();
    s.deliver("INBOX", MSG).await;
    assert_eq!(a.line().await, "* 2 EXISTS");
    assert!(start.elapsed() < Duration::from_secs(1));
    b.cmd("b2 STORE 1 +FLAGS (\\Answered)").await.ok();
    assert_eq!(a.line().await, "* 1 FETCH (UID 1 FLAGS (\\Answered))");
    b.cmd("b3 STORE 2 +FLAGS (\\Deleted)").await.ok();
    a.line().await;
    b.cmd("b4 EXPUNGE").await.ok();
    assert_eq!(a.line().await, "* 2 EXPUNGE");
    a.send("DONE").await;
    a.until("a2").await.ok();
    a.cmd("a3 NOOP").await.ok().lacks("EXISTS");
}

#[tokio::test]
async fn idle_timeout() {
    let s = server_with(Options {
        limits: outpost_imap::ImapLimits {
            idle_timeout: Duration::from_millis(300),
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let mut a = s.login().await;
    a.cmd("a1 SELECT INBOX").await.ok();
    a.send("a2 IDLE").await;
    a.line().await;
    assert!(a.line().await.starts_with("* BYE"));
    assert!(a.closed().await);
}

#[tokio::test]
async fn idle_bad_continuation() {
    let s = server().await;
    let mut a = s.login().await;
    a.send("a1 IDLE").await; // authenticated state is fine too
    a.line().await;
    a.send("NOTDONE").await;
    a.until("a1").await.bad();
    a.cmd("a2 NOOP").await.ok();
}
