//! Greeting, CAPABILITY, LOGIN/AUTHENTICATE, bad input, LOGOUT, ID,
//! NAMESPACE, ENABLE.
mod common;
use common::*;

#[tokio::test]
async fn login_capability_logout() {
    let s = server().await;
    let mut c = s.client().await;
    c.cmd("a1 CAPABILITY")
        .await
        .ok()
        .has("IMAP4rev1")
        .has("AUTH=PLAIN")
        .lacks("LOGINDISABLED");
    c.cmd("a2 LOGIN bob@example.org wrong")
        .await
        .no()
        .code("[AUTHENTICATIONFAILED]");
    c.cmd("a3 SELECT INBOX").await.bad();
    c.cmd("a4 LOGIN bob@example.org secret")
        .await
        .ok()
        .code("[CAPABILITY");
    c.cmd("a5 LOGIN bob@example.org secret").await.bad();
    c.cmd("a6 ID (\"name\" \"test\")").await.ok().has("* ID");
    c.cmd("a7 NAMESPACE")
        .await
        .ok()
        .has("* NAMESPACE ((\"\" \"/\")) NIL NIL");
    c.cmd("a8 ENABLE CONDSTORE QRESYNC")
        .await
        .ok()
        .has("* ENABLED CONDSTORE QRESYNC");
    c.cmd("a9 LOGOUT").await.ok().has("* BYE");
    assert!(c.closed().await);
}

#[tokio::test]
async fn authenticate_plain() {
    let s = server().await;
    let mut c = s.client().await;
    // SASL-IR: "\0bob@example.org\0secret"
    c.cmd("a1 AUTHENTICATE PLAIN AGJvYkBleGFtcGxlLm9yZwBzZWNyZXQ=")
        .await
        .ok();
    let mut c = s.client().await;
    c.send("a1 AUTHENTICATE PLAIN").await;
    assert_eq!(c.line().await.trim_end(), "+");
    c.send("AGJvYkBleGFtcGxlLm9yZwB3cm9uZw==").await;
    c.until("a1").await.no();
    c.send("a2 AUTHENTICATE PLAIN").await;
    c.line().await;
    c.send("*").await;
    c.until("a2").await.bad();
    let mut c = s.client().await;
    c.send("b1 AUTHENTICATE PLAIN").await;
    c.line().await;
    c.send("AGJvYkBleGFtcGxlLm9yZwBzZWNyZXQ=").await;
    c.until("b1").await.ok();
    c.cmd("b2 SELECT INBOX").await.ok();
}

#[tokio::test]
async fn authenticate_login() {
    let s = server().await;
    let mut c = s.client().await;
    c.cmd("a0 CAPABILITY").await.ok().has("AUTH=LOGIN");
    c.send("a1 AUTHENTICATE LOGIN").await;
    // base64 "Username:" and "Password:"
    assert_eq!(c.line().await.trim_end(), "+ VXNlcm5hbWU6");
    c.send("Ym9iQGV4YW1wbGUub3Jn").await;
    assert_eq!(c.line().await.trim_end(), "+ UGFzc3dvcmQ6");
    c.send("d3Jvbmc=").await;
    c.until("a1").await.no().code("[AUTHENTICATIONFAILED]");
    c.send("a2 AUTHENTICATE LOGIN").await;
    c.line().await;
    c.send("*").await;
    c.until("a2").await.bad();
    c.send("a3 AUTHENTICATE LOGIN").await;
    c.line().await;
    c.send("Ym9iQGV4YW1wbGUub3Jn").await;
    c.line().await;
    c.send("c2VjcmV0").await;
    c.until("a3").await.ok();
    c.cmd("a4 SELECT INBOX").await.ok();
}

#[tokio::test]
async fn tempfail_is_unavailable() {
    let s = server().await;
    let mut c = s.client().await;
    c.cmd("a1 LOGIN tempfail x")
        .await
        .no()
        .code("[UNAVAILABLE]");
}

#[tokio::test]
async fn plaintext_refused_without_tls() {
    let s = server_with(Options {
        plaintext: false,
        ..Default::default()
    })
    .await;
    let mut c = s.client().await;
    c.cmd("a1 CAPABILITY")
        .await
        .ok()
        .has("LOGINDISABLED")
        .lacks("AUTH=PLAIN");
    c.cmd("a2 LOGIN bob@example.org secret")
        .await
        .no()
        .code("[PRIVACYREQUIRED]");
    c.cmd("a3 AUTHENTICATE PLAIN AGJvYkBleGFtcGxlLm9yZwBzZWNyZXQ=")
        .await
        .no();
}

#[tokio::test]
async fn bad_commands_then_bye() {
    let s = server().await;
    let mut c = s.login().await;
    c.cmd("a1 FROBNICATE").await.bad();
    c.cmd("a2 FETCH 1 FLAGS").await.bad(); // nothing selected
    c.cmd("a3 NOOP").await.ok();
    for i in 0..25 {
        c.send(&format!("x{i} BOGUS")).await;
    }
    assert!(c.closed().await);
}

#[tokio::test]
async fn literal_login_and_too_big_literal() {
    let s = server().await;
    let mut c = s.client().await;
    c.send("a1 LOGIN {15}").await;
    assert!(c.line().await.starts_with('+'));
    c.send_raw(b"bob@example.org {6+}\r\nsecret\r\n").await;
    c.until("a1").await.ok();
    let mut c = s.client().await;
    c.cmd("a2 LOGIN bob {999999}").await.no().code("[TOOBIG]");
    c.cmd("a3 NOOP").await.ok();
}

#[tokio::test]
async fn failed_logins_are_throttled() {
    let s = server_with(Options {
        throttle: Some(outpost_net::ThrottleConfig {
            window: std::time::Duration::from_secs(60),
            slow_after: 1,
            delay: std::time::Duration::from_millis(200),
            block_after: 3,
            block_for: std::time::Duration::from_secs(60),
        }),
        ..Default::default()
    })
    .await;
    let mut c = s.client().await;
    c.cmd("a1 LOGIN bob@example.org x").await.no();
    let t = std::time::Instant::now();
    c.cmd("a2 LOGIN bob@example.org x").await.no();
    assert!(t.elapsed() >= std::time::Duration::from_millis(150));
    c.cmd("a3 LOGIN bob@example.org x").await.no();
    // Blocked now, even with the right password.
    c.cmd("a4 LOGIN bob@example.org secret")
        .await
        .no()
        .code("[UNAVAILABLE]");
}

#[tokio::test]
async fn garbage_does_not_hurt_other_sessions() {
    let s = server().await;
    s.deliver("INBOX", MSG).await;
    let mut good = s.login().await;
    good.cmd("g1 SELECT INBOX").await.ok();
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    for round in 0..20 {
        let mut c = s.login().await;
        c.cmd("x SELECT INBOX").await.ok();
        let mut junk = Vec::new();
        for _ in 0..2000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let pool = b"a1 FETCH STORE UID ( ) [ ] { } 1:* \\ \" ~ * % BODY[] \r\n\0\xff~{3}";
            junk.push(pool[(seed % pool.len() as u64) as usize]);
        }
        c.send_raw(&junk).await;
        c.send_raw(format!("\r\nz{round} NOOP\r\n").as_bytes())
            .await;
        drop(c);
    }
    good.cmd("g2 FETCH 1 (FLAGS BODY.PEEK[])")
        .await
        .ok()
        .has("Hello Bob");
}
