//! COPY, MOVE, UID variants, COPYUID, EXPUNGE, UID EXPUNGE.
mod common;
use common::*;

#[tokio::test]
async fn copy_and_move() {
    let s = server().await;
    for _ in 0..4 {
        s.deliver("INBOX", MSG).await;
    }
    let mut c = s.login().await;
    c.cmd("a1 SELECT INBOX").await.ok();
    c.cmd("a2 COPY 1:2 Archive")
        .await
        .ok()
        .code("[COPYUID ")
        .code(" 1:2 1:2]");
    c.cmd("a3 COPY 1 Nosuch").await.no().code("[TRYCREATE]");
    c.cmd("a4 UID MOVE 3 Trash")
        .await
        .ok()
        .has("[COPYUID ")
        .has("* 3 EXPUNGE");
    c.cmd("a5 MOVE 1 Trash").await.ok().has("* 1 EXPUNGE");
    c.cmd("a6 STATUS Trash (MESSAGES)")
        .await
        .ok()
        .has("MESSAGES 2");
    c.cmd("a7 STATUS Archive (MESSAGES)")
        .await
        .ok()
        .has("MESSAGES 2");
    c.cmd("a8 FETCH 1:* UID")
        .await
        .ok()
        .has("* 1 FETCH (UID 2)")
        .has("* 2 FETCH (UID 4)");
}

#[tokio::test]
async fn expunge_and_uid_expunge() {
    let s = server().await;
    for _ in 0..4 {
        s.deliver("INBOX", MSG).await;
    }
    let mut c = s.login().await;
    c.cmd("a1 SELECT INBOX").await.ok();
    c.cmd("a2 STORE 1:4 +FLAGS.SILENT (\\Deleted)").await.ok();
    c.cmd("a3 UID EXPUNGE 2:3")
        .await
        .ok()
        .has("* 2 EXPUNGE")
        .count("EXPUNGE");
    c.cmd("a4 FETCH 1:* UID")
        .await
        .ok()
        .has("(UID 1)")
        .has("(UID 4)")
        .lacks("UID 2");
    let r = c.cmd("a5 EXPUNGE").await.ok();
    assert_eq!(r.count("EXPUNGE"), 2, "{:?}", r.lines);
    c.cmd("a6 SELECT INBOX").await.ok().has("* 0 EXISTS");
}
