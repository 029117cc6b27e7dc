//! STORE and UID STORE, keywords, .SILENT.
mod common;
use common::*;

#[tokio::test]
async fn store_flags() {
    let s = server().await;
    for _ in 0..3 {
        s.deliver("INBOX", MSG).await;
    }
    let mut c = s.login().await;
    c.cmd("a1 SELECT INBOX").await.ok();
    c.cmd("a2 STORE 1:2 +FLAGS (\\Flagged $Forwarded)")
        .await
        .ok()
        .has("* 1 FETCH (FLAGS (\\Flagged $Forwarded))")
        .has("* 2 FETCH (FLAGS (\\Flagged $Forwarded))");
    c.cmd("a3 STORE 1 -FLAGS.SILENT (\\Flagged)")
        .await
        .ok()
        .lacks("FETCH");
    c.cmd("a4 UID STORE 3 FLAGS (\\Seen \\Answered)")
        .await
        .ok()
        .has("* 3 FETCH (UID 3 FLAGS (\\Seen \\Answered))");
    c.cmd("a5 FETCH 1:3 FLAGS")
        .await
        .ok()
        .has("* 1 FETCH (FLAGS ($Forwarded))")
        .has("* 2 FETCH (FLAGS (\\Flagged $Forwarded))");
    // Our own change is not reported back as an update.
    c.cmd("a6 NOOP").await.ok().lacks("FETCH");
    c.cmd("a7 STORE 1 +FLAGS (\\Recent)").await;
}
