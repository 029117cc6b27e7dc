//! LIST, LSUB, CREATE, DELETE, RENAME, SUBSCRIBE, special-use.
mod common;
use common::*;

#[tokio::test]
async fn list_patterns_and_attributes() {
    let s = server().await;
    let mut c = s.login().await;
    c.cmd("a1 LIST \"\" \"\"")
        .await
        .ok()
        .has("* LIST (\\Noselect) \"/\" \"\"");
    c.cmd("a2 LIST \"\" *")
        .await
        .ok()
        .has("* LIST (\\HasNoChildren) \"/\" \"INBOX\"")
        .has("* LIST (\\Sent \\HasNoChildren) \"/\" \"Sent\"")
        .has("\\Trash")
        .has("\\Junk");
    c.cmd("a3 CREATE Work/Projects/2024/").await.ok();
    c.cmd("a4 LIST \"\" %")
        .await
        .ok()
        .has("(\\HasChildren) \"/\" \"Work\"")
        .lacks("Projects");
    c.cmd("a5 LIST \"\" Work/*")
        .await
        .ok()
        .has("Work/Projects")
        .has("Work/Projects/2024");
    c.cmd("a6 LIST Work/ %")
        .await
        .ok()
        .has("Work/Projects")
        .lacks("2024");
    c.cmd("a7 LIST \"\" inbox").await.ok().has("INBOX");
    c.cmd("a8 CREATE Work").await.no().code("[ALREADYEXISTS]");
    c.cmd("a9 LIST (SPECIAL-USE) \"\" *")
        .await
        .ok()
        .has("Sent")
        .lacks("Work");
    c.cmd("b1 LIST \"\" * RETURN (STATUS (MESSAGES UIDNEXT))")
        .await
        .ok()
        .has("* STATUS \"INBOX\" (MESSAGES 0 UIDNEXT 1)");
    c.cmd("b2 CREATE Receipts (USE (\\Archive))").await.ok();
    c.cmd("b3 LIST \"\" Receipts").await.ok().has("\\Archive");
}

#[tokio::test]
async fn subscriptions() {
    let s = server().await;
    let mut c = s.login().await;
    for m in ["INBOX", "Trash", "Drafts", "Junk", "Archive", "Sent"] {
        c.cmd(&format!("u UNSUBSCRIBE {m}")).await.ok();
    }
    c.cmd("a1 SUBSCRIBE Sent").await.ok();
    c.cmd("a2 LSUB \"\" *")
        .await
        .ok()
        .has("* LSUB () \"/\" \"Sent\"")
        .lacks("Trash");
    c.cmd("a3 LIST (SUBSCRIBED) \"\" *")
        .await
        .ok()
        .has("(\\Subscribed")
        .lacks("Trash");
    c.cmd("a4 LIST \"\" * RETURN (SUBSCRIBED)")
        .await
        .ok()
        .has("\\Subscribed")
        .has("Trash");
    c.cmd("a5 UNSUBSCRIBE Sent").await.ok();
    c.cmd("a6 LSUB \"\" *").await.ok().lacks("Sent");
    c.cmd("a7 SUBSCRIBE Nosuch").await.no();
}

#[tokio::test]
async fn delete_and_rename() {
    let s = server().await;
    s.deliver("INBOX", MSG).await;
    let mut c = s.login().await;
    c.cmd("a1 DELETE INBOX").await.no();
    c.cmd("a2 DELETE Nosuch").await.no().code("[NONEXISTENT]");
    c.cmd("a3 CREATE a/b").await.ok();
    c.cmd("a4 RENAME a x").await.ok();
    c.cmd("a5 LIST \"\" *")
        .await
        .ok()
        .has("\"/\" \"x/b\"")
        .lacks("\"/\" \"a");
    c.cmd("a6 RENAME x Sent").await.no().code("[ALREADYEXISTS]");
    c.cmd("a7 RENAME INBOX Old").await.ok();
    c.cmd("a8 STATUS INBOX (MESSAGES)")
        .await
        .ok()
        .has("MESSAGES 0");
    c.cmd("a9 STATUS Old (MESSAGES)")
        .await
        .ok()
        .has("MESSAGES 1");
    c.cmd("b1 DELETE x").await.ok();
    c.cmd("b2 LIST \"\" x*").await.ok().has("x/b");
}
