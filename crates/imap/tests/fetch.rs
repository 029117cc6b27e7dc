//! FETCH: flags, envelope, body structure, sections, partial, BINARY, \Seen.
mod common;
use common::*;

const MULTI: &str = "From: =?UTF-8?Q?J=C3=B6rg?= <j@example.org>\r\nTo: bob@example.org\r\nSubject: parts\r\nMessage-ID: <p1@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9\r\n--XX\r\nContent-Type: application/octet-stream; name=a.bin\r\nContent-Disposition: attachment; filename=a.bin\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n--XX--\r\n";

#[tokio::test]
async fn fetch_items() {
    let s = server().await;
    s.deliver("INBOX", MSG).await;
    s.deliver("INBOX", MULTI).await;
    let mut c = s.login().await;
    c.cmd("a1 SELECT INBOX").await.ok();
    c.cmd("a2 FETCH 1 (FLAGS UID RFC822.SIZE INTERNALDATE)")
        .await
        .ok()
        .has(&format!(
            "* 1 FETCH (FLAGS () UID 1 RFC822.SIZE {} INTERNALDATE \"14-Nov-2023 22:13:20 +0000\")",
            MSG.len()
        ));
    c.cmd("a3 FETCH 1 ENVELOPE")
        .await
        .ok()
        .has("ENVELOPE (\"Mon, 1 Jan 2024 10:00:00 +0000\" \"hello\" ((\"Alice\" NIL \"alice\" \"example.org\"))");
    c.cmd("a4 FETCH 2 BODYSTRUCTURE")
        .await
        .ok()
        .has("BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\"")
        .has("\"MIXED\" (\"BOUNDARY\" \"XX\")");
    c.cmd("a5 FETCH 2 ENVELOPE")
        .await
        .ok()
        .has("((\"=?UTF-8?Q?J=C3=B6rg?=\" NIL \"j\" \"example.org\"))");
    c.cmd("a6 FETCH 2 BODY.PEEK[1]")
        .await
        .ok()
        .has("BODY[1] {9}caf=C3=A9");
    c.cmd("a7 FETCH 2 BINARY.PEEK[1]")
        .await
        .ok()
        .has("BINARY[1] {5}café");
    c.cmd("a8 FETCH 2 BINARY.SIZE[2]")
        .await
        .ok()
        .has("BINARY.SIZE[2] 4");
    c.cmd("a9 FETCH 2 BODY.PEEK[2.MIME]")
        .await
        .ok()
        .has("Content-Disposition: attachment");
    c.cmd("b1 FETCH 1 BODY.PEEK[HEADER.FIELDS (Subject)]")
        .await
        .ok()
        .has("{18}Subject: hello");
    c.cmd("b2 FETCH 1 BODY.PEEK[HEADER.FIELDS.NOT (Subject From To Date)]")
        .await
        .ok()
        .has("Message-ID: <m1@example.org>")
        .lacks("Subject:");
    c.cmd("b3 FETCH 1 BODY.PEEK[TEXT]<0.5>")
        .await
        .ok()
        .has("BODY[TEXT]<0> {5}Hello");
    c.cmd("b4 FETCH 1 BODY.PEEK[5]")
        .await
        .ok()
        .has("BODY[5] NIL");
    c.cmd("b5 FETCH 1 (FLAGS)").await.ok().lacks("\\Seen");
    c.cmd("b6 FETCH 1 BODY[]").await.ok().has("\\Seen");
    c.cmd("b7 FETCH 1 (FLAGS)").await.ok().has("\\Seen");
    c.cmd("b8 FETCH 1:* (EMAILID THREADID SAVEDATE MODSEQ)")
        .await
        .ok()
        .has("EMAILID (M")
        .has("THREADID NIL")
        .has("MODSEQ (");
    c.cmd("b9 UID FETCH 2 RFC822.HEADER")
        .await
        .ok()
        .has("UID 2")
        .has("Subject: parts");
    c.cmd("c1 FETCH 1:* FAST").await.ok();
    c.cmd("c2 FETCH 1 BODY")
        .await
        .ok()
        .has("BODY (\"TEXT\" \"PLAIN\"");
    c.cmd("c3 UID FETCH 99 FLAGS").await.ok().lacks("FETCH (");
}

#[tokio::test]
async fn sequence_number_beyond_exists_is_bad() {
    let s = server().await;
    s.deliver("INBOX", MSG).await;
    let mut c = s.login().await;
    c.cmd("a1 SELECT INBOX").await.ok();
    c.cmd("a2 FETCH 5 (FLAGS)").await.bad();
    c.cmd("a3 STORE 2 +FLAGS (\\Seen)").await.bad();
    c.cmd("a4 COPY 1:3 Trash").await.bad();
    c.cmd("a5 FETCH 1:* (FLAGS)").await.ok();
    c.cmd("a6 FETCH 5:* (FLAGS)").await.ok();
    c.cmd("a7 UID FETCH 5 (FLAGS)").await.ok();
}

/// A FETCH whose answer is far larger than one output chunk comes out
/// whole and in order, and changes made meanwhile by another session are
/// reported before the tagged reply, not in the middle of it.
#[tokio::test]
async fn long_fetch_comes_out_whole() {
    let s = server().await;
    let body = "x".repeat(20_000);
    for i in 0..40 {
        s.deliver("INBOX", &format!("Subject: m{i}\r\n\r\n{body}\r\n"))
            .await;
    }
    let mut o = s.login().await;
    o.cmd("b1 SELECT INBOX").await.ok();
    let mut c = s.login().await;
    c.cmd("a1 SELECT INBOX").await.ok();
    o.cmd("b2 STORE 40 +FLAGS (\\Flagged)").await.ok();
    let r = c.cmd("a2 FETCH 1:* (BODY.PEEK[])").await.ok();
    let bodies: Vec<&String> = r.lines.iter().filter(|l| l.contains("BODY[]")).collect();
    assert_eq!(bodies.len(), 40);
    for (i, l) in bodies.iter().enumerate() {
        assert!(l.starts_with(&format!("* {} FETCH", i + 1)), "{}", &l[..40]);
        assert!(l.contains(&format!("Subject: m{i}\r\n")) || l.contains(&format!("Subject: m{i}")));
        assert!(l.contains(&body));
    }
    let last = r.lines.last().unwrap();
    assert!(last.contains("FLAGS (\\Flagged)"), "{last:.80}");
}

/// A FETCH of flags alone (the lean path: flag rows of the range, written
/// without building values) answers exactly the messages the set names in
/// this session's view: not expunged gaps, not messages delivered after
/// SELECT and not yet announced, with keywords and in order, over more
/// than one output chunk.
#[tokio::test]
async fn flags_only_fetch_follows_the_view() {
    let s = server().await;
    for i in 0..3000 {
        s.deliver("INBOX", &format!("Subject: m{i}\r\n\r\nx\r\n"))
            .await;
    }
    let mut c = s.login().await;
    c.cmd("a1 SELECT INBOX").await.ok();
    c.cmd("a2 STORE 2:3 +FLAGS (\\Deleted)").await.ok();
    c.cmd("a3 EXPUNGE").await.ok();
    c.cmd("a4 STORE 1 +FLAGS (\\Seen $Work)").await.ok();
    // Delivered behind the session's back: in storage, not in the view.
    s.deliver("INBOX", "Subject: late\r\n\r\nx\r\n").await;
    let r = c.cmd("a5 UID FETCH 1:* (FLAGS)").await.ok();
    let fetches: Vec<&String> = r.lines.iter().filter(|l| l.contains(" FETCH (")).collect();
    assert_eq!(fetches.len(), 2998, "{:?}", &r.lines[..3]);
    assert_eq!(fetches[0], "* 1 FETCH (UID 1 FLAGS (\\Seen $Work))");
    assert_eq!(fetches[1], "* 2 FETCH (UID 4 FLAGS ())");
    assert_eq!(fetches[2997], "* 2998 FETCH (UID 3000 FLAGS ())");
    let r = c.cmd("a6 FETCH 1,3:4 (MODSEQ FLAGS)").await.ok();
    let fetches: Vec<&String> = r.lines.iter().filter(|l| l.contains(" FETCH (")).collect();
    assert_eq!(fetches.len(), 3);
    assert!(
        fetches[0].starts_with("* 1 FETCH (MODSEQ ("),
        "{}",
        fetches[0]
    );
    assert!(
        fetches[0].ends_with(" FLAGS (\\Seen $Work))"),
        "{}",
        fetches[0]
    );
    assert!(
        fetches[2].starts_with("* 4 FETCH (MODSEQ ("),
        "{}",
        fetches[2]
    );
    // Once announced (by the end of a5 or by this NOOP), the late
    // message is fetched too.
    c.cmd("a7 NOOP").await.ok();
    c.cmd("a8 UID FETCH 3001 (FLAGS)")
        .await
        .ok()
        .has("* 2999 FETCH (UID 3001 FLAGS ())");
}
