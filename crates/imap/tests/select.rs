//! SELECT, EXAMINE, STATUS, CLOSE, UNSELECT, NOOP updates from other sessions.
mod common;
use common::*;

#[tokio::test]
async fn select_and_examine() {
    let s = server().await;
    s.deliver("INBOX", MSG).await;
    s.deliver("INBOX", MSG).await;
    let mut c = s.login().await;
    c.cmd("a1 SELECT inbox")
        .await
        .ok()
        .code("[READ-WRITE]")
        .has("* 2 EXISTS")
        .has("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)")
        .has("[PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)]")
        .has("[UIDVALIDITY ")
        .has("[UIDNEXT 3]")
        .has("[UNSEEN 1]")
        .has("[HIGHESTMODSEQ ")
        .has("[MAILBOXID (");
    c.cmd("a2 EXAMINE INBOX").await.ok().code("[READ-ONLY]");
    c.cmd("a3 STORE 1 +FLAGS (\\Seen)").await.no();
    c.cmd("a4 FETCH 1 BODY[]").await.ok();
    c.cmd("a5 FETCH 1 FLAGS").await.ok().lacks("\\Seen");
    c.cmd("a6 SELECT nosuch").await.no().code("[NONEXISTENT]");
    c.cmd("a7 FETCH 1 FLAGS").await.bad(); // failed SELECT deselects
}

#[tokio::test]
async fn status_items() {
    let s = server().await;
    s.deliver("INBOX", MSG).await;
    let mut c = s.login().await;
    c.cmd("a1 STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ SIZE APPENDLIMIT DELETED MAILBOXID RECENT)")
        .await
        .ok()
        .has("MESSAGES 1")
        .has("UIDNEXT 2")
        .has("UNSEEN 1")
        .has(&format!("SIZE {}", MSG.len()))
        .has("DELETED 0")
        .has("MAILBOXID (");
    c.cmd("a2 STATUS nosuch (MESSAGES)").await.no();
}

#[tokio::test]
async fn updates_from_other_sessions() {
    let s = server().await;
    s.deliver("INBOX", MSG).await;
    s.deliver("INBOX", MSG).await;
    let mut a = s.login().await;
    let mut b = s.login().await;
    a.cmd("a1 SELECT INBOX").await.ok();
    b.cmd("b1 SELECT INBOX").await.ok();
    s.deliver("INBOX", MSG).await;
    a.cmd("a2 NOOP").await.ok().has("* 3 EXISTS");
    b.cmd("b2 STORE 1 +FLAGS (\\Deleted)").await.ok();
    a.cmd("a3 NOOP")
        .await
        .ok()
        .has("* 1 FETCH (UID 1 FLAGS (\\Deleted))");
    b.cmd("b3 EXPUNGE").await.ok().has("* 1 EXPUNGE");
    // No EXPUNGE during FETCH (RFC 3501 7.4.1) ...
    a.cmd("a4 FETCH 1:* (UID)")
        .await
        .ok()
        .lacks("EXPUNGE")
        .has("* 3 FETCH (UID 3)");
    // ... but at the next NOOP.
    a.cmd("a5 NOOP").await.ok().has("* 1 EXPUNGE");
    a.cmd("a6 FETCH 1:* (UID)")
        .await
        .ok()
        .has("* 2 FETCH (UID 3)");
}

#[tokio::test]
async fn close_expunges_unselect_does_not() {
    let s = server().await;
    s.deliver("INBOX", MSG).await;
    s.deliver("INBOX", MSG).await;
    let mut c = s.login().await;
    c.cmd("a1 SELECT INBOX").await.ok();
    c.cmd("a2 STORE 1 +FLAGS.SILENT (\\Deleted)")
        .await
        .ok()
        .lacks("FETCH");
    c.cmd("a3 UNSELECT").await.ok();
    c.cmd("a4 SELECT INBOX").await.ok().has("* 2 EXISTS");
    c.cmd("a5 CLOSE").await.ok().lacks("EXPUNGE");
    c.cmd("a6 SELECT INBOX").await.ok().has("* 1 EXISTS");
}

#[tokio::test]
async fn storage_down_is_no_not_ok() {
    let s = server().await;
    s.deliver("INBOX", MSG).await;
    let mut c = s.login().await;
    c.cmd("a1 SELECT INBOX").await.ok();
    s.store.set_unavailable(true);
    c.cmd("a2 STATUS INBOX (MESSAGES)")
        .await
        .no()
        .code("[UNAVAILABLE]");
    c.cmd("a3 FETCH 1 BODY.PEEK[]").await.no();
    c.cmd("a4 APPEND INBOX {3+}\r\nx\r\n").await.no();
    c.cmd("a5 NOOP").await.ok();
}
