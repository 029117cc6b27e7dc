//! Every RFC 1939 / 2449 command against a real server over TCP.

mod common;

use common::*;
use outpost_pop3::wire_size;

#[tokio::test]
async fn greeting_capa_and_quit_before_login() {
    let (srv, _) = standard().await;
    let mut c = Client::connect(srv.addr).await;
    let (_, caps) = c.multi("CAPA").await;
    for cap in [
        "TOP",
        "UIDL",
        "RESP-CODES",
        "AUTH-RESP-CODE",
        "PIPELINING",
        "USER",
        "SASL PLAIN",
        "IMPLEMENTATION Outpost",
    ] {
        assert!(caps.iter().any(|c| c == cap), "{cap} missing from {caps:?}");
    }
    // no TLS acceptor configured: no STLS
    assert!(!caps.iter().any(|c| c == "STLS"));
    let bye = c.ok("QUIT").await;
    assert!(bye.contains("pop.test"));
    c.expect_eof().await;
}

#[tokio::test]
async fn user_pass_stat_list_uidl() {
    let (srv, _) = standard().await;
    let mut c = Client::connect(srv.addr).await;
    c.ok("USER alice").await;
    let r = c.ok("PASS secret").await;
    let total: u64 = [MSG1, MSG2, MSG3].iter().map(|m| wire_size(m)).sum();
    assert!(r.contains(&format!("3 messages ({total} octets)")), "{r}");
    assert_eq!(c.ok("STAT").await, format!("+OK 3 {total}"));

    let (_, list) = c.multi("LIST").await;
    assert_eq!(
        list,
        vec![
            format!("1 {}", wire_size(MSG1)),
            format!("2 {}", wire_size(MSG2)),
            format!("3 {}", wire_size(MSG3)),
        ]
    );
    assert_eq!(c.ok("LIST 2").await, format!("+OK 2 {}", wire_size(MSG2)));
    assert!(c.err("LIST 4").await.contains("No such message"));
    assert!(c.err("LIST 0").await.contains("No such message"));

    let (_, uidl) = c.multi("UIDL").await;
    assert_eq!(
        uidl,
        vec![
            "1 0000002a00000001",
            "2 0000002a00000002",
            "3 0000002a00000003"
        ]
    );
    assert_eq!(c.ok("UIDL 3").await, "+OK 3 0000002a00000003");
    assert!(c.err("UIDL 9").await.contains("No such message"));
    assert_eq!(c.ok("NOOP").await, "+OK");
    c.ok("QUIT").await;
    c.expect_eof().await;
}

#[tokio::test]
async fn wrong_password_then_right_one() {
    let (srv, _) = standard().await;
    let mut c = Client::connect(srv.addr).await;
    c.ok("USER alice").await;
    assert!(c.err("PASS wrong").await.starts_with("-ERR [AUTH]"));
    // USER must be given again
    assert!(c.err("PASS secret").await.contains("PASS without USER"));
    c.ok("USER nobody").await;
    assert!(c.err("PASS secret").await.starts_with("-ERR [AUTH]"));
    c.login("alice", "secret").await;
    c.ok("STAT").await;
}

#[tokio::test]
async fn commands_in_wrong_state() {
    let mut ctx = context(fixture());
    ctx.limits.max_bad_commands = 20;
    let srv = start(ctx, false).await;
    let mut c = Client::connect(srv.addr).await;
    for cmd in [
        "STAT", "LIST", "RETR 1", "DELE 1", "NOOP", "RSET", "TOP 1 1", "UIDL",
    ] {
        assert!(c.err(cmd).await.contains("Not logged in"), "{cmd}");
    }
    c.err("APOP alice c4c9334bac560ecc979e58001b3e22fb").await;
    c.login("alice", "secret").await;
    assert!(c.err("USER bob").await.contains("Already logged in"));
    assert!(c.err("PASS x").await.contains("Already logged in"));
    assert!(c.err("AUTH PLAIN").await.contains("Already logged in"));
    let (_, caps) = c.multi("CAPA").await;
    assert!(!caps.iter().any(|c| c == "USER"));
}

#[tokio::test]
async fn retr_is_exact_for_any_line_endings() {
    let (srv, _) = standard().await;
    let mut c = Client::connect(srv.addr).await;
    c.login("alice", "secret").await;

    let r = c.ok("RETR 1").await;
    assert_eq!(r, format!("+OK {} octets", wire_size(MSG1)));
    assert_eq!(c.body().await, MSG1);

    // lone LFs become CRLF
    c.ok("RETR 2").await;
    let body = c.body().await;
    assert_eq!(
        body,
        b"From: b@example.org\r\nSubject: two\r\n\r\nline 1\r\nline 2\r\nline 3\r\nline 4\r\n"
    );
    assert_eq!(body.len() as u64, wire_size(MSG2));

    // dot-stuffing, lone CR, missing final newline
    let r = c.ok("RETR 3").await;
    assert_eq!(r, format!("+OK {} octets", wire_size(MSG3)));
    let body = c.body().await;
    assert_eq!(
        String::from_utf8(body.clone()).unwrap(),
        "Subject: dots\r\n\r\n..\r\n...two\r\n..hidden\r\nlone\r\ncr\r\nno final newline\r\n"
    );
    // LIST's size equals the octets delivered once unstuffed (what poplib
    // and fetchmail count)
    let unstuffed = outpost_pop3::codec::unstuff(&[&body[..], b".\r\n"].concat());
    assert_eq!(unstuffed.len() as u64, wire_size(MSG3));
    assert_eq!(c.ok("LIST 3").await, format!("+OK 3 {}", unstuffed.len()));

    assert!(c.err("RETR 4").await.contains("No such message"));
    assert!(c.err("RETR abc").await.contains("invalid number"));
}

#[tokio::test]
async fn top_with_n_lines() {
    let (srv, _) = standard().await;
    let mut c = Client::connect(srv.addr).await;
    c.login("alice", "secret").await;
    let (_, l) = c.multi("TOP 2 0").await;
    assert_eq!(l, vec!["From: b@example.org", "Subject: two", ""]);
    let (_, l) = c.multi("TOP 2 2").await;
    assert_eq!(
        l,
        vec![
            "From: b@example.org",
            "Subject: two",
            "",
            "line 1",
            "line 2"
        ]
    );
    let (_, l) = c.multi("TOP 2 100").await;
    assert_eq!(l.len(), 7);
    // stuffing applies to TOP too
    c.ok("TOP 3 2").await;
    assert_eq!(c.body().await, b"Subject: dots\r\n\r\n..\r\n...two\r\n");
    assert!(c.err("TOP 2").await.contains("missing argument"));
    assert!(c.err("TOP 9 1").await.contains("No such message"));
}

#[tokio::test]
async fn dele_then_rset_keeps_everything() {
    let (srv, backend) = standard().await;
    let mut c = Client::connect(srv.addr).await;
    c.login("alice", "secret").await;
    c.ok("DELE 1").await;
    c.ok("DELE 3").await;
    assert!(c.err("DELE 1").await.contains("already deleted"));
    assert!(c.err("RETR 1").await.contains("already deleted"));
    assert_eq!(c.ok("STAT").await, format!("+OK 1 {}", wire_size(MSG2)));
    let (_, list) = c.multi("LIST").await;
    assert_eq!(list, vec![format!("2 {}", wire_size(MSG2))]);
    let (_, uidl) = c.multi("UIDL").await;
    assert_eq!(uidl, vec!["2 0000002a00000002"]);
    assert!(c.ok("RSET").await.contains("3 messages"));
    c.ok("RETR 1").await;
    c.body().await;
    c.ok("QUIT").await;
    c.expect_eof().await;
    assert!(backend.expunges().is_empty());
    assert_eq!(backend.count("alice"), 3);
}

#[tokio::test]
async fn quit_expunges_deleted_messages() {
    let (srv, backend) = standard().await;
    let mut c = Client::connect(srv.addr).await;
    c.login("alice", "secret").await;
    c.ok("DELE 1").await;
    c.ok("DELE 3").await;
    let bye = c.ok("QUIT").await;
    assert!(bye.contains("1 messages"), "{bye}");
    c.expect_eof().await;
    assert_eq!(backend.expunges(), vec![(ALICE.to_string(), vec![1, 3])]);
    assert_eq!(backend.count("alice"), 1);

    // the next session sees what is left, renumbered, same UIDL
    wait_unlocked(&srv.ctx, ALICE).await;
    let mut c = Client::connect(srv.addr).await;
    c.login("alice", "secret").await;
    assert_eq!(c.ok("STAT").await, format!("+OK 1 {}", wire_size(MSG2)));
    assert_eq!(c.ok("UIDL 1").await, "+OK 1 0000002a00000002");
}

#[tokio::test]
async fn dropped_connection_deletes_nothing() {
    let (srv, backend) = standard().await;
    let mut c = Client::connect(srv.addr).await;
    c.login("alice", "secret").await;
    c.ok("DELE 1").await;
    c.ok("DELE 2").await;
    drop(c);
    wait_unlocked(&srv.ctx, ALICE).await;
    assert!(backend.expunges().is_empty());
    assert_eq!(backend.count("alice"), 3);
    let mut c = Client::connect(srv.addr).await;
    c.login("alice", "secret").await;
    assert!(c.ok("STAT").await.starts_with("+OK 3 "));
}

#[tokio::test]
async fn maildrop_is_a_snapshot_at_login() {
    let (srv, backend) = standard().await;
    let mut c = Client::connect(srv.addr).await;
    c.login("alice", "secret").await;
    backend.deliver("alice", b"Subject: late\r\n\r\nlate\r\n");
    assert!(c.ok("STAT").await.starts_with("+OK 3 "));
    assert!(c.err("RETR 4").await.contains("No such message"));
    // a message removed by another protocol meanwhile
    backend.remove("alice", 2);
    assert!(c.err("RETR 2").await.contains("removed"));
    c.ok("QUIT").await;
}

#[tokio::test]
async fn empty_maildrop() {
    let (srv, _) = standard().await;
    let mut c = Client::connect(srv.addr).await;
    c.login("bob", "hunter2").await;
    assert_eq!(c.ok("STAT").await, "+OK 0 0");
    assert_eq!(c.multi("LIST").await.1, Vec::<String>::new());
    assert_eq!(c.multi("UIDL").await.1, Vec::<String>::new());
    assert!(c.err("RETR 1").await.contains("No such message"));
    c.ok("QUIT").await;
}

#[tokio::test]
async fn auth_plain_initial_response_and_continuation() {
    let (srv, _) = standard().await;
    let mut c = Client::connect(srv.addr).await;
    let (_, mechs) = c.multi("AUTH").await;
    assert_eq!(mechs, vec!["PLAIN"]);
    // wrong password: [AUTH]
    // "\0alice\0wrong"
    assert!(c
        .err("AUTH PLAIN AGFsaWNlAHdyb25n")
        .await
        .starts_with("-ERR [AUTH]"));
    // continuation, cancelled
    assert_eq!(c.cmd("AUTH PLAIN").await, "+ ");
    c.err("*").await;
    // continuation, garbage
    assert_eq!(c.cmd("AUTH PLAIN").await, "+ ");
    assert!(c.err("not base64!").await.contains("Malformed"));
    // continuation, good: "\0alice\0secret"
    assert_eq!(c.cmd("AUTH PLAIN").await, "+ ");
    let r = c.ok("AGFsaWNlAHNlY3JldA==").await;
    assert!(r.contains("3 messages"), "{r}");
    c.ok("QUIT").await;

    wait_unlocked(&srv.ctx, ALICE).await;
    let mut c = Client::connect(srv.addr).await;
    c.ok("AUTH PLAIN AGFsaWNlAHNlY3JldA==").await;
    assert!(c.ok("STAT").await.starts_with("+OK 3"));
}

#[tokio::test]
async fn pipelined_commands_answer_in_order() {
    let (srv, _) = standard().await;
    let mut c = Client::connect(srv.addr).await;
    c.send(b"USER alice\r\nPASS secret\r\nSTAT\r\nLIST 1\r\nUIDL\r\nRETR 1\r\nBOGUS\r\nNOOP\r\n")
        .await;
    assert!(c.line().await.starts_with("+OK"));
    assert!(c.line().await.starts_with("+OK Logged in"));
    assert!(c.line().await.starts_with("+OK 3 "));
    assert_eq!(c.line().await, format!("+OK 1 {}", wire_size(MSG1)));
    assert!(c.line().await.starts_with("+OK"));
    assert_eq!(c.body().await.split(|&b| b == b'\n').count(), 4);
    assert!(c.line().await.starts_with("+OK"));
    assert_eq!(c.body().await, MSG1);
    assert!(c.line().await.starts_with("-ERR Unknown command"));
    assert_eq!(c.line().await, "+OK");
}

#[tokio::test]
async fn malformed_commands_keep_the_session() {
    let (srv, _) = standard().await;
    let mut c = Client::connect(srv.addr).await;
    c.login("alice", "secret").await;
    c.err("").await;
    c.err("HELO there").await;
    c.err("STAT 1").await;
    c.err("LIST 1 2").await;
    c.send(b"USER \xff\xfe\r\n").await;
    assert!(c.line().await.contains("UTF-8"));
    // bare LF line endings from the client are accepted
    c.send(b"NOOP\n").await;
    assert_eq!(c.line().await, "+OK");
    assert!(c.ok("STAT").await.starts_with("+OK 3"));
}

#[tokio::test]
async fn lowercase_commands() {
    let (srv, _) = standard().await;
    let mut c = Client::connect(srv.addr).await;
    c.ok("user alice").await;
    c.ok("pass secret").await;
    c.ok("stat").await;
    c.multi("list").await;
    c.ok("quit").await;
}
