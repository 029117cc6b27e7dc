//! CONDSTORE and QRESYNC (RFC 7162).
mod common;
use common::*;

fn highest(r: &Reply) -> u64 {
    let l = r
        .lines
        .iter()
        .find(|l| l.contains("HIGHESTMODSEQ"))
        .unwrap();
    let n = l.split("HIGHESTMODSEQ ").nth(1).unwrap();
    n.split(']').next().unwrap().parse().unwrap()
}

fn uidvalidity(r: &Reply) -> u64 {
    let l = r.lines.iter().find(|l| l.contains("UIDVALIDITY")).unwrap();
    let n = l.split("UIDVALIDITY ").nth(1).unwrap();
    n.split(']').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn condstore() {
    let s = server().await;
    for _ in 0..3 {
        s.deliver("INBOX", MSG).await;
    }
    let mut c = s.login().await;
    let r = c.cmd("a1 SELECT INBOX (CONDSTORE)").await.ok();
    let m0 = highest(&r);
    c.cmd("a2 STORE 1 +FLAGS (\\Seen)")
        .await
        .ok()
        .has("* 1 FETCH (UID 1 FLAGS (\\Seen) MODSEQ (");
    c.cmd(&format!("a3 FETCH 1:* (FLAGS) (CHANGEDSINCE {m0})"))
        .await
        .ok()
        .has("* 1 FETCH (FLAGS (\\Seen) MODSEQ (")
        .lacks("* 2 FETCH");
    c.cmd(&format!(
        "a4 STORE 1,2 (UNCHANGEDSINCE {m0}) +FLAGS (\\Flagged)"
    ))
    .await
    .ok()
    .code("[MODIFIED 1]")
    .has("* 2 FETCH");
    c.cmd("a5 STATUS INBOX (HIGHESTMODSEQ)")
        .await
        .ok()
        .has("HIGHESTMODSEQ");
}

#[tokio::test]
async fn qresync() {
    let s = server().await;
    for _ in 0..4 {
        s.deliver("INBOX", MSG).await;
    }
    let mut c = s.login().await;
    c.cmd("a0 ENABLE QRESYNC").await.ok();
    let r = c.cmd("a1 SELECT INBOX").await.ok();
    let (m0, v) = (highest(&r), uidvalidity(&r));
    c.cmd("a2 LOGOUT").await.ok();

    let mut o = s.login().await;
    o.cmd("b1 SELECT INBOX").await.ok();
    o.cmd("b2 STORE 1,3 +FLAGS (\\Deleted)").await.ok();
    o.cmd("b3 EXPUNGE").await.ok();
    o.cmd("b4 STORE 2 +FLAGS (\\Answered)").await.ok();

    let mut c = s.login().await;
    c.cmd("a3 ENABLE QRESYNC").await.ok();
    c.cmd(&format!("a4 SELECT INBOX (QRESYNC ({v} {m0} 1:4))"))
        .await
        .ok()
        .has("* VANISHED (EARLIER) 1,3")
        .has("* 2 FETCH (UID 4 FLAGS (\\Answered) MODSEQ (");
    c.cmd(&format!(
        "a5 UID FETCH 1:* (FLAGS) (CHANGEDSINCE {m0} VANISHED)"
    ))
    .await
    .ok()
    .has("* VANISHED (EARLIER) 1,3");
    // Expunges by others arrive as VANISHED.
    o.cmd("b5 STORE 1 +FLAGS (\\Deleted)").await.ok();
    o.cmd("b6 EXPUNGE").await.ok();
    c.cmd("a6 NOOP").await.ok().has("* VANISHED 2");
    c.cmd("a7 SELECT Trash").await.ok().has("[CLOSED]");
}
