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

/// When the change journal no longer reaches back to the client's modseq
/// (its floor was raised by pruning), QRESYNC SELECT and UID FETCH
/// (CHANGEDSINCE .. VANISHED) report every known UID that does not exist
/// now (RFC 7162 3.2.5.2) instead of failing, and flag changes since the
/// modseq still arrive.
#[tokio::test]
async fn qresync_below_journal_floor() {
    let s = server().await;
    for _ in 0..6 {
        s.deliver("INBOX", MSG).await;
    }
    let inbox = s.mailbox_id("INBOX").await;
    let mut c = s.login().await;
    c.cmd("a0 ENABLE QRESYNC").await.ok();
    let r = c.cmd("a1 SELECT INBOX").await.ok();
    let (m0, v) = (highest(&r), uidvalidity(&r));
    c.cmd("a2 LOGOUT").await.ok();

    let mut o = s.login().await;
    o.cmd("b1 SELECT INBOX").await.ok();
    o.cmd("b2 UID STORE 2,3,5 +FLAGS (\\Deleted)").await.ok();
    o.cmd("b3 EXPUNGE").await.ok();
    o.cmd("b4 UID STORE 4 +FLAGS (\\Answered)").await.ok();
    // The journal forgets everything up to now.
    s.store.set_floor(inbox, s.store.highest_modseq(inbox));

    let mut c = s.login().await;
    c.cmd("a3 ENABLE QRESYNC").await.ok();
    // Without known UIDs: everything below UIDNEXT that is gone.
    c.cmd(&format!("a4 SELECT INBOX (QRESYNC ({v} {m0}))"))
        .await
        .ok()
        .has("* VANISHED (EARLIER) 2:3,5")
        .has("* 2 FETCH (UID 4 FLAGS (\\Answered) MODSEQ (");
    // Known UIDs bound the answer.
    c.cmd(&format!("a5 SELECT INBOX (QRESYNC ({v} {m0} 1:3))"))
        .await
        .ok()
        .has("* VANISHED (EARLIER) 2:3")
        .lacks(",5")
        .lacks("UID 4");
    c.cmd(&format!(
        "a6 UID FETCH 1:* (FLAGS) (CHANGEDSINCE {m0} VANISHED)"
    ))
    .await
    .ok()
    .has("* VANISHED (EARLIER) 2:3,5")
    .has("* 2 FETCH (UID 4 FLAGS (\\Answered) MODSEQ (");
    // CHANGEDSINCE without VANISHED does not need the journal at all.
    c.cmd(&format!("a7 FETCH 1:* (FLAGS) (CHANGEDSINCE {m0})"))
        .await
        .ok()
        .has("* 2 FETCH (FLAGS (\\Answered) MODSEQ (")
        .lacks("* 1 FETCH");
}
