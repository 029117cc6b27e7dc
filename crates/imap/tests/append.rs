//! APPEND, MULTIAPPEND, APPENDUID, TRYCREATE, TOOBIG, OVERQUOTA.
mod common;
use common::*;
use outpost_imap::ImapLimits;

#[tokio::test]
async fn append() {
    let s = server().await;
    let mut c = s.login().await;
    let m = "Subject: x\r\n\r\nbody\r\n";
    c.send(&format!(
        "a1 APPEND INBOX (\\Seen) \" 5-Mar-2024 10:00:00 +0100\" {{{}}}",
        m.len()
    ))
    .await;
    assert!(c.line().await.starts_with('+'));
    c.send(m).await;
    let r = c.until("a1").await.ok();
    assert!(r.tagged.contains("[APPENDUID "), "{}", r.tagged);
    assert!(r.tagged.ends_with(" 1] APPEND completed"), "{}", r.tagged);
    c.cmd(&format!(
        "a2 APPEND INBOX {{{}+}}\r\n{m} {{{}+}}\r\n{m}",
        m.len(),
        m.len()
    ))
    .await
    .ok()
    .code(" 2:3]");
    c.cmd(&format!("a3 APPEND Nosuch {{{}+}}\r\n{m}", m.len()))
        .await
        .no()
        .code("[TRYCREATE]");
    c.cmd("a4 SELECT INBOX").await.ok().has("* 3 EXISTS");
    c.cmd("a5 FETCH 1 (FLAGS INTERNALDATE)")
        .await
        .ok()
        .has("\\Seen")
        .has("INTERNALDATE \" 5-Mar-2024 09:00:00 +0000\"");
    // APPEND to the selected mailbox is reported.
    c.cmd(&format!("a6 APPEND INBOX {{{}+}}\r\n{m}", m.len()))
        .await
        .ok()
        .has("* 4 EXISTS");
}

#[tokio::test]
async fn limits_and_quota() {
    let s = server_with(Options {
        quota: 100,
        limits: ImapLimits {
            max_literal: 1000,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let mut c = s.login().await;
    c.cmd("a0 CAPABILITY").await.has("APPENDLIMIT=1000");
    c.cmd("a1 APPEND INBOX {5000}").await.no().code("[TOOBIG]");
    let m = "x".repeat(200);
    c.cmd(&format!("a2 APPEND INBOX {{{}+}}\r\n{m}", m.len()))
        .await
        .no()
        .code("[OVERQUOTA]");
    c.cmd("a3 GETQUOTAROOT INBOX")
        .await
        .ok()
        .has("* QUOTAROOT \"INBOX\" \"\"")
        .has("STORAGE 0 0");
    c.cmd("a4 GETQUOTA \"\"")
        .await
        .ok()
        .has("* QUOTA \"\" (STORAGE 0 0)");
    let m = "y".repeat(60);
    c.cmd(&format!("a5 APPEND INBOX {{{}+}}\r\n{m}", m.len()))
        .await
        .ok();
    c.cmd("a6 SELECT INBOX").await.ok();
    c.cmd("a7 COPY 1 Archive").await.no().code("[OVERQUOTA]");
    c.cmd("a8 MOVE 1 Archive").await.ok();
}
