//! SEARCH / ESEARCH / SEARCHRES / SORT / THREAD wiring (the evaluator has
//! its own unit tests).
mod common;
use common::*;

const A: &str = "From: carol@example.org\r\nSubject: apples\r\nDate: Tue, 2 Jan 2024 10:00:00 +0000\r\nMessage-ID: <a@x>\r\n\r\nred fruit\r\n";
const B: &str = "From: alice@example.org\r\nSubject: Re: apples\r\nDate: Wed, 3 Jan 2024 10:00:00 +0000\r\nMessage-ID: <b@x>\r\nIn-Reply-To: <a@x>\r\nReferences: <a@x>\r\n\r\ngreen fruit\r\n";
const C: &str = "From: bob@example.org\r\nSubject: bananas\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\nMessage-ID: <c@x>\r\n\r\nyellow\r\n";

#[tokio::test]
async fn search_sort_thread() {
    let s = server().await;
    s.deliver("INBOX", A).await;
    s.deliver("INBOX", B).await;
    s.deliver("INBOX", C).await;
    let mut c = s.login().await;
    c.cmd("a0 CAPABILITY")
        .await
        .ok()
        .has("SORT")
        .has("THREAD=REFERENCES")
        .has("ESORT");
    c.cmd("a1 SELECT INBOX").await.ok();
    c.cmd("a2 SEARCH SUBJECT apples")
        .await
        .ok()
        .has("* SEARCH 1 2");
    c.cmd("a3 UID SEARCH BODY yellow")
        .await
        .ok()
        .has("* SEARCH 3");
    c.cmd("a4 STORE 2 +FLAGS (\\Flagged)").await.ok();
    c.cmd("a5 SEARCH RETURN (MIN MAX COUNT ALL) UNFLAGGED")
        .await
        .ok()
        .has("* ESEARCH (TAG \"a5\") MIN 1 MAX 3 ALL 1,3 COUNT 2");
    c.cmd("a6 SEARCH RETURN (SAVE) FROM alice")
        .await
        .ok()
        .lacks("ESEARCH");
    c.cmd("a7 FETCH $ (UID)")
        .await
        .ok()
        .has("* 2 FETCH (UID 2)");
    c.cmd("a8 SORT (DATE) UTF-8 ALL")
        .await
        .ok()
        .has("* SORT 3 1 2");
    c.cmd("a9 UID SORT (REVERSE SUBJECT) UTF-8 ALL")
        .await
        .ok()
        .has("* SORT 3");
    c.cmd("b1 THREAD REFERENCES UTF-8 ALL")
        .await
        .ok()
        .has("* THREAD ");
    c.cmd("b2 SEARCH MODSEQ 1").await.ok().has("(MODSEQ ");
    c.cmd("b3 SEARCH YOUNGER 999999999")
        .await
        .ok()
        .has("* SEARCH 1 2 3");
}

#[tokio::test]
async fn unknown_charset_is_no_badcharset() {
    let s = server().await;
    let mut c = s.login().await;
    c.cmd("a1 SELECT INBOX").await.ok();
    c.cmd("a2 SEARCH CHARSET X-NOSUCH SUBJECT x")
        .await
        .no()
        .code("[BADCHARSET");
    c.cmd("a3 SEARCH CHARSET UTF-8 SUBJECT x").await.ok();
}

/// Keys that only name messages by number are answered from the session's
/// UID list: right answers, and no storage read (they work with the
/// storage down).
#[tokio::test]
async fn number_only_keys_need_no_storage() {
    let s = server().await;
    for _ in 0..5 {
        s.deliver("INBOX", MSG).await;
    }
    let mut c = s.login().await;
    c.cmd("a1 SELECT INBOX").await.ok();
    c.cmd("a2 STORE 2 +FLAGS (\\Deleted)").await.ok();
    c.cmd("a3 EXPUNGE").await.ok();
    // Now UIDs 1,3,4,5 at sequence numbers 1-4.
    c.cmd("a4 SEARCH RETURN (SAVE) UID 4:5").await.ok();
    s.store.set_unavailable(true);
    c.cmd("b1 UID SEARCH ALL")
        .await
        .ok()
        .has("* SEARCH 1 3 4 5");
    c.cmd("b2 UID SEARCH 2:* NOT UID 4")
        .await
        .ok()
        .has("* SEARCH 3 5");
    c.cmd("b3 SEARCH NOT 1").await.ok().has("* SEARCH 2 3 4");
    c.cmd("b4 SEARCH OR 1 UID 5").await.ok().has("* SEARCH 1 4");
    c.cmd("b5 UID SEARCH $").await.ok().has("* SEARCH 4 5");
    c.cmd("b6 UID SEARCH RETURN (MIN MAX COUNT) 1:*")
        .await
        .ok()
        .has("MIN 1 MAX 5 COUNT 4");
    c.cmd("b7 UID SEARCH 100:*").await.ok().has("* SEARCH 5");
    // A key that looks at the messages does need the storage.
    c.cmd("b8 SEARCH SEEN").await.no();
}

/// Searches on flags, keywords, modseqs and message numbers read the flag
/// rows (or only the UID list), never the message rows; the answers are
/// those of the general path.
#[tokio::test]
async fn flag_searches_read_no_message_rows() {
    let s = server().await;
    for m in [A, B, C] {
        s.deliver("INBOX", m).await;
    }
    let mut c = s.login().await;
    c.cmd("a1 SELECT INBOX").await.ok();
    c.cmd("a2 STORE 1 +FLAGS (\\Seen $Junk)").await.ok();
    c.cmd("a3 STORE 3 +FLAGS (\\Flagged)").await.ok();
    let before = s.store.row_reads();
    c.cmd("b1 UID SEARCH ALL").await.ok().has("* SEARCH 1 2 3");
    c.cmd("b2 SEARCH UNSEEN").await.ok().has("* SEARCH 2 3");
    c.cmd("b3 UID SEARCH KEYWORD $junk")
        .await
        .ok()
        .has("* SEARCH 1");
    c.cmd("b4 SEARCH OR FLAGGED SEEN NOT UID 2")
        .await
        .ok()
        .has("* SEARCH 1 3");
    c.cmd("b5 SEARCH UNKEYWORD $Junk UNFLAGGED 1:*")
        .await
        .ok()
        .has("* SEARCH 2");
    c.cmd("b6 SEARCH MODSEQ 1 SEEN")
        .await
        .ok()
        .has("* SEARCH 1 (MODSEQ ");
    c.cmd("b7 SEARCH RETURN (COUNT) NOT DELETED")
        .await
        .ok()
        .has("COUNT 3");
    assert_eq!(
        s.store.row_reads(),
        before,
        "flag searches read message rows"
    );
    // A key on anything else still reads them.
    c.cmd("c1 SEARCH LARGER 1 UNSEEN")
        .await
        .ok()
        .has("* SEARCH 2 3");
    assert!(s.store.row_reads() > before);
}
