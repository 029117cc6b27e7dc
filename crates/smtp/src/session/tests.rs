//! State machine tests: bytes in, replies and effects out, with a tiny
//! scripted "backend" answering the effects.

use super::*;

const HOST: &str = "mx.example.org";

fn config(role: Role) -> SessionConfig {
    SessionConfig {
        role,
        hostname: HOST.into(),
        limits: SmtpLimits::default(),
        session_id: 42,
        peer_ip: "192.0.2.1".parse().unwrap(),
        tls_available: true,
        tls: None,
        plaintext_auth_allowed: false,
    }
}

/// A machine plus what its effects did.
struct T {
    m: Machine,
    delivered: Vec<Delivery>,
    effects: Vec<String>,
    /// Results the fake backend gives per local recipient, by address.
    fail: Vec<(String, DeliverError)>,
}

impl T {
    fn new(cfg: SessionConfig) -> T {
        let mut m = Machine::new(cfg);
        m.greeting();
        T {
            m,
            delivered: Vec::new(),
            effects: Vec::new(),
            fail: Vec::new(),
        }
    }
    fn mx() -> T {
        T::new(config(Role::Mx))
    }

    /// Feeds `input` and runs until the machine wants more input or closes;
    /// returns the output produced meanwhile.
    fn send(&mut self, input: &str) -> String {
        self.send_bytes(input.as_bytes())
    }

    fn send_bytes(&mut self, input: &[u8]) -> String {
        self.m.feed(input);
        loop {
            match self.m.poll() {
                Step::NeedInput | Step::Close => break,
                Step::Effect(e) => {
                    let answer = self.carry_out(e);
                    self.m.answer(answer);
                }
            }
        }
        String::from_utf8(self.m.take_output()).unwrap()
    }

    fn carry_out(&mut self, e: Effect) -> Answer {
        match e {
            Effect::StartTls => {
                self.effects.push("starttls".into());
                Answer::TlsStarted {
                    description: "TLSv1.3 TEST".into(),
                }
            }
            Effect::Authenticate { login, password } => {
                self.effects.push(format!("auth {login}"));
                Answer::Auth(if login == "tempfail" {
                    LoginOutcome::Unavailable(TempFail("db down".into()))
                } else if login == "alice" && password.0 == "secret" {
                    LoginOutcome::Success(AuthUser {
                        principal_id: 1,
                        login,
                        quota_bytes: 0,
                    })
                } else {
                    LoginOutcome::Failed
                })
            }
            Effect::MaySendAs { user, address } => {
                self.effects
                    .push(format!("may_send_as {} {address}", user.login));
                Answer::MaySendAs(Ok(
                    address.starts_with("alice") && address.ends_with("@example.org")
                ))
            }
            Effect::ResolveRecipient { address } => {
                self.effects.push(format!("resolve {address}"));
                Answer::Recipient(if address.starts_with("unknown@") {
                    Ok(Rcpt::UnknownLocal)
                } else if address.starts_with("tempfail@") {
                    Err(TempFail("ldap down".into()))
                } else if address.ends_with("@example.org") {
                    Ok(Rcpt::Local)
                } else {
                    Ok(Rcpt::Remote)
                })
            }
            Effect::Deliver(d) => {
                self.effects.push("deliver".into());
                let local = d
                    .local
                    .as_ref()
                    .map(|env| {
                        env.recipients
                            .iter()
                            .map(|r| match self.fail.iter().find(|(a, _)| *a == r.address) {
                                Some((_, e)) => Err(e.clone()),
                                None => Ok(()),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let remote = d.remote.as_ref().map(|_| Ok(()));
                self.delivered.push(*d);
                Answer::Delivered { local, remote }
            }
        }
    }

    fn body(&self, i: usize) -> String {
        let msg = String::from_utf8(self.delivered[i].message.to_vec()).unwrap();
        // Drop our Received: header (it ends at the date line).
        let end = msg.find(" +0000\r\n").expect("Received header") + " +0000\r\n".len();
        msg[end..].to_string()
    }

    fn closed(&mut self) -> bool {
        matches!(self.m.poll(), Step::Close)
    }
}

/// Reply codes, one per line, continuation lines skipped.
fn codes(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| l.len() >= 4 && &l[3..4] == " ")
        .map(|l| &l[..3])
        .collect()
}

#[test]
fn greeting_and_ehlo_on_plain_mx() {
    let mut t = T::mx();
    let out = t.send("EHLO client.example\r\n");
    assert!(out.starts_with("220 mx.example.org ESMTP"), "{out}");
    assert!(
        out.contains("\r\n250-mx.example.org Hello client.example\r\n"),
        "{out}"
    );
    for cap in [
        "PIPELINING",
        "SIZE 26214400",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "STARTTLS",
        "DSN",
        "CHUNKING",
        "BINARYMIME",
    ] {
        assert!(
            out.contains(&format!("250-{cap}\r\n")) || out.contains(&format!("250 {cap}\r\n")),
            "{cap} missing in {out}"
        );
    }
    assert!(
        !out.contains("AUTH"),
        "AUTH must not be offered in plaintext: {out}"
    );
    // Every line ends in CRLF and the last line has "250 ".
    assert!(out.ends_with("\r\n"));
    let last = out.trim_end().lines().last().unwrap();
    assert!(last.starts_with("250 "), "{out}");
}

#[test]
fn ehlo_after_tls_offers_auth_not_starttls() {
    let mut t = T::new(SessionConfig {
        tls: Some("TLSv1.3 X".into()),
        ..config(Role::Submission)
    });
    let out = t.send("EHLO c\r\n");
    assert!(out.contains("AUTH PLAIN LOGIN\r\n"), "{out}");
    assert!(!out.contains("STARTTLS"), "{out}");
}

#[test]
fn mx_accepts_local_mail_with_pipelining() {
    let mut t = T::mx();
    t.send("EHLO c\r\n");
    let out = t.send(
        "MAIL FROM:<sender@remote.example> BODY=8BITMIME\r\nRCPT TO:<bob@example.org>\r\n\
         RCPT TO:<carol@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;carol+2Bx@example.org\r\nDATA\r\n",
    );
    assert_eq!(codes(&out), ["250", "250", "250", "354"], "{out}");
    let out = t.send("Subject: hi\r\n\r\nhello\r\n.\r\nQUIT\r\n");
    assert_eq!(codes(&out), ["250", "221"], "{out}");
    assert!(out.starts_with("250 2.0.0 "), "{out}");
    assert!(t.closed());
    let d = &t.delivered[0];
    assert!(d.remote.is_none());
    let env = d.local.as_ref().unwrap();
    assert_eq!(env.mail_from, "sender@remote.example");
    assert_eq!(env.body, Body::EightBitMime);
    assert_eq!(env.recipients.len(), 2);
    assert_eq!(env.recipients[0].notify, None);
    assert_eq!(
        env.recipients[1].notify,
        Some(Notify {
            success: true,
            failure: true,
            delay: false
        })
    );
    assert_eq!(
        env.recipients[1].orcpt.as_deref(),
        Some("carol+x@example.org")
    );
    assert_eq!(env.helo, "c");
    assert_eq!(env.auth, None);
    assert_eq!(t.body(0), "Subject: hi\r\n\r\nhello\r\n");
    let msg = String::from_utf8(d.message.to_vec()).unwrap();
    assert!(
        msg.starts_with(
            "Received: from c ([192.0.2.1])\r\n\tby mx.example.org (Outpost) with ESMTP id 42.1"
        ),
        "{msg}"
    );
}

#[test]
fn dot_stuffing_and_empty_message() {
    let mut t = T::mx();
    t.send("EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n");
    // Split the input at awkward places.
    t.send("..leading dot\r");
    t.send("\n\r\n..");
    t.send("\r\n.");
    assert_eq!(t.delivered.len(), 0);
    let out = t.send("\r\n");
    assert_eq!(codes(&out), ["250"], "{out}");
    assert_eq!(t.body(0), ".leading dot\r\n\r\n.\r\n");

    let out = t.send("MAIL FROM:<>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n.\r\n");
    assert_eq!(codes(&out), ["250", "250", "354", "250"], "{out}");
    assert_eq!(t.body(1), "");
    assert_eq!(t.delivered[1].local.as_ref().unwrap().mail_from, "");
}

#[test]
fn data_end_needs_crlf_dot_crlf() {
    // "\n.\n" (bare LF) must not end the message: SMTP smuggling.
    let mut t = T::mx();
    t.send("EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n");
    let out = t.send("a\n.\nMAIL FROM:<evil@x>\r\n");
    assert_eq!(out, "");
    let out = t.send(".\r\n");
    assert_eq!(codes(&out), ["250"]);
    assert_eq!(t.delivered.len(), 1);
    assert!(t.body(0).contains("MAIL FROM:<evil@x>"));
}

#[test]
fn message_size_limits() {
    let mut t = T::new(SessionConfig {
        limits: SmtpLimits {
            message_size: 100,
            ..Default::default()
        },
        ..config(Role::Mx)
    });
    t.send("EHLO c\r\n");
    let out = t.send("MAIL FROM:<a@b.example> SIZE=101\r\n");
    assert!(out.starts_with("552 5.3.4 "), "{out}");
    let out = t.send("MAIL FROM:<a@b.example> SIZE=100\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n");
    assert_eq!(codes(&out), ["250", "250", "354"]);
    let big = format!("{}\r\n", "x".repeat(80)).repeat(3);
    let out = t.send(&big);
    assert_eq!(out, "");
    let out = t.send(".\r\nNOOP\r\n");
    assert_eq!(codes(&out), ["552", "250"], "{out}");
    assert!(out.starts_with("552 5.3.4 "));
    assert!(t.delivered.is_empty());
    // The session goes on, with a fresh transaction.
    let out = t.send("RCPT TO:<bob@example.org>\r\n");
    assert!(out.starts_with("503 5.5.1"), "{out}");
}

#[test]
fn command_line_too_long_keeps_session() {
    let mut t = T::mx();
    t.send("EHLO c\r\n");
    let out = t.send(&format!("NOOP {}", "x".repeat(1500)));
    assert_eq!(out, "");
    let out = t.send(&format!("{}\r\nNOOP\r\n", "y".repeat(3000)));
    assert_eq!(out, "500 5.5.2 Line too long\r\n250 2.0.0 OK\r\n");
}

#[test]
fn data_line_too_long() {
    let mut t = T::mx();
    t.send("EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n");
    // 998 octets + CRLF is fine, 999 is not.
    let out = t.send(&format!("{}\r\n.\r\n", "a".repeat(998)));
    assert_eq!(codes(&out), ["250"], "{out}");
    let out = t.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n");
    assert_eq!(codes(&out), ["250", "250", "354"]);
    let out = t.send(&format!("{}\r\n.\r\n", "a".repeat(999)));
    assert!(out.starts_with("500 5.5.2 "), "{out}");
    assert_eq!(t.delivered.len(), 1);
}

#[test]
fn relay_refused_unknown_user_refused_tempfail() {
    let mut t = T::mx();
    t.send("EHLO c\r\nMAIL FROM:<a@b.example>\r\n");
    let out = t.send("RCPT TO:<someone@elsewhere.example>\r\n");
    assert!(out.starts_with("554 5.7.1 "), "{out}");
    let out = t.send("RCPT TO:<unknown@example.org>\r\n");
    assert!(out.starts_with("550 5.1.1 "), "{out}");
    let out = t.send("RCPT TO:<tempfail@example.org>\r\n");
    assert!(out.starts_with("451 4.4.3 "), "{out}");
    let out = t.send("DATA\r\n");
    assert!(out.starts_with("554 5.5.1 "), "{out}");
}

#[test]
fn submission_requires_starttls_then_auth() {
    let mut t = T::new(config(Role::Submission));
    t.send("EHLO c\r\n");
    let out = t.send("AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n");
    assert_eq!(out, "530 5.7.0 Must issue a STARTTLS command first\r\n");
    let out = t.send("MAIL FROM:<alice@example.org>\r\n");
    assert!(out.starts_with("530 5.7.0 "), "{out}");
    // Pipelined junk after STARTTLS is thrown away.
    let out = t.send("STARTTLS\r\nMAIL FROM:<x@y>\r\n");
    assert_eq!(out, "220 2.0.0 Ready to start TLS\r\n");
    assert!(t.effects.contains(&"starttls".to_string()));
    let out = t.send("MAIL FROM:<alice@example.org>\r\n");
    assert!(
        out.starts_with("503 5.5.1 "),
        "EHLO needed again after TLS: {out}"
    );
    let out = t.send("EHLO c\r\n");
    assert!(out.contains("AUTH PLAIN LOGIN"), "{out}");
    // base64("\0alice\0secret")
    let out = t.send("AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n");
    assert_eq!(out, "235 2.7.0 Authentication successful\r\n");
    let out = t.send("MAIL FROM:<alice@example.org>\r\nRCPT TO:<friend@elsewhere.example>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n");
    assert_eq!(codes(&out), ["250", "250", "250", "354"], "{out}");
    let out = t.send("From: Alice <alice@example.org>\r\nTo: x\r\n\r\nhi\r\n.\r\n");
    assert_eq!(codes(&out), ["250"], "{out}");
    let d = &t.delivered[0];
    let local = d.local.as_ref().unwrap();
    let remote = d.remote.as_ref().unwrap();
    assert_eq!(local.recipients[0].address, "bob@example.org");
    assert_eq!(remote.recipients[0].address, "friend@elsewhere.example");
    assert_eq!(local.auth.as_ref().unwrap().login, "alice");
    assert_eq!(local.tls.as_deref(), Some("TLSv1.3 TEST"));
    let msg = String::from_utf8(d.message.to_vec()).unwrap();
    assert!(msg.contains("with ESMTPSA"), "{msg}");
    assert!(msg.contains("(authenticated sender: alice)"), "{msg}");
    assert!(!msg.contains("secret"));
}

#[test]
fn auth_login_and_failures() {
    let mut t = T::new(SessionConfig {
        tls: Some("TLS".into()),
        ..config(Role::Submission)
    });
    t.send("EHLO c\r\n");
    let out = t.send("AUTH LOGIN\r\n");
    assert_eq!(out, "334 VXNlcm5hbWU6\r\n");
    let out = t.send("YWxpY2U=\r\n"); // alice
    assert_eq!(out, "334 UGFzc3dvcmQ6\r\n");
    let out = t.send("d3Jvbmc=\r\n"); // wrong
    assert_eq!(out, "535 5.7.8 Authentication credentials invalid\r\n");
    let out = t.send("AUTH LOGIN YWxpY2U=\r\n*\r\n");
    assert_eq!(codes(&out), ["334", "501"], "{out}");
    let out = t.send("AUTH PLAIN\r\n!!notbase64\r\n");
    assert_eq!(codes(&out), ["334", "501"], "{out}");
    let out = t.send("AUTH CRAM-MD5\r\n");
    assert!(out.starts_with("504 5.5.4"), "{out}");
    let out = t.send("AUTH PLAIN AHRlbXBmYWlsAHg=\r\n"); // tempfail
    assert!(out.starts_with("454 4.7.0"), "{out}");
    // Third wrong password in the session: 535 then 421.
    t.send("AUTH PLAIN AGFsaWNlAHg=\r\n");
    let out = t.send("AUTH PLAIN AGFsaWNlAHg=\r\n");
    assert_eq!(codes(&out), ["535", "421"], "{out}");
    assert!(t.closed());
}

#[test]
fn auth_blocked_closes() {
    let mut m = Machine::new(SessionConfig {
        tls: Some("TLS".into()),
        ..config(Role::Submission)
    });
    m.feed(b"EHLO c\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n");
    let Step::Effect(Effect::Authenticate { login, .. }) = m.poll() else {
        panic!("expected an auth effect")
    };
    assert_eq!(login, "alice");
    m.answer(Answer::Auth(LoginOutcome::Blocked));
    assert!(matches!(m.poll(), Step::Close));
    let out = String::from_utf8(m.take_output()).unwrap();
    assert!(
        out.ends_with("421 4.7.0 Too many failed logins, try again later\r\n"),
        "{out}"
    );
}

#[test]
fn password_not_in_debug_output() {
    let e = Effect::Authenticate {
        login: "alice".into(),
        password: Password("hunter2".into()),
    };
    assert!(!format!("{e:?}").contains("hunter2"));
}

#[test]
fn sender_mismatch_envelope_and_header() {
    let mut t = T::new(SessionConfig {
        tls: Some("TLS".into()),
        ..config(Role::Submission)
    });
    t.send("EHLO c\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n");
    let out = t.send("MAIL FROM:<bob@example.org>\r\n");
    assert!(out.starts_with("553 5.7.1 "), "{out}");
    let out = t.send("MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n");
    assert_eq!(codes(&out), ["250", "250", "354"], "{out}");
    let out = t.send("From: Bob <bob@example.org>\r\n\r\nspoof\r\n.\r\n");
    assert!(out.starts_with("553 5.7.1 "), "{out}");
    assert!(t.delivered.is_empty());
    // A second From address that is not hers fails too; one that is passes.
    let out = t.send("MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n");
    assert_eq!(codes(&out), ["250", "250", "354"]);
    let out = t.send("From: alice.other@example.org, mallory@example.org\r\n\r\nx\r\n.\r\n");
    assert!(out.starts_with("553 5.7.1 "), "{out}");
    let out = t.send("MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n");
    assert_eq!(codes(&out), ["250", "250", "354"]);
    let out = t.send("From: alice.other@example.org\r\n\r\nx\r\n.\r\n");
    assert_eq!(codes(&out), ["250"], "{out}");
    assert!(t
        .effects
        .contains(&"may_send_as alice alice.other@example.org".to_string()));
    // An unparsable From: is refused.
    let out = t.send("MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n");
    assert_eq!(codes(&out), ["250", "250", "354"]);
    let out = t.send("From: nobody\r\n\r\nx\r\n.\r\n");
    assert!(out.starts_with("553 5.7.1 "), "{out}");
    assert_eq!(t.delivered.len(), 1);
}

#[test]
fn bdat_chunks() {
    let mut t = T::mx();
    t.send("EHLO c\r\n");
    let out =
        t.send("MAIL FROM:<a@b.example> BODY=BINARYMIME\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n");
    assert_eq!(
        codes(&out),
        ["250", "250", "503"],
        "DATA refused with BINARYMIME: {out}"
    );
    // Chunk data containing what looks like commands and a lone dot.
    let out = t.send("BDAT 11\r\nQUIT\r\n.\r\nab");
    assert_eq!(out, "250 2.0.0 11 octets received\r\n");
    let out = t.send("BDAT 3 LAST\r\nxyz");
    assert_eq!(codes(&out), ["250"], "{out}");
    assert_eq!(t.body(0), "QUIT\r\n.\r\nabxyz");
    assert_eq!(
        t.delivered[0].local.as_ref().unwrap().body,
        Body::BinaryMime
    );
    // BDAT 0 LAST ends an (empty) message.
    let out = t.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<bob@example.org>\r\nBDAT 0 LAST\r\n");
    assert_eq!(codes(&out), ["250", "250", "250"], "{out}");
    assert_eq!(t.body(1), "");
    // BDAT without MAIL: the chunk is still skipped, not run as commands.
    let out = t.send("BDAT 6\r\nQUIT\r\nNOOP\r\n");
    assert_eq!(codes(&out), ["503", "250"], "{out}");
    assert!(!t.closed());
}

#[test]
fn bdat_too_big() {
    let mut t = T::new(SessionConfig {
        limits: SmtpLimits {
            message_size: 10,
            ..Default::default()
        },
        ..config(Role::Mx)
    });
    t.send("EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<bob@example.org>\r\n");
    let out = t.send("BDAT 6\r\n123456BDAT 6 LAST\r\n123456NOOP\r\n");
    assert_eq!(codes(&out), ["250", "552", "250"], "{out}");
    assert!(t.delivered.is_empty());
}

#[test]
fn lmtp_per_recipient_replies() {
    let mut t = T::new(SessionConfig {
        tls_available: false,
        ..config(Role::Lmtp)
    });
    t.fail = vec![
        (
            "full@example.org".into(),
            DeliverError::StorageFull("disk".into()),
        ),
        (
            "gone@example.org".into(),
            DeliverError::Permanent("disabled".into()),
        ),
    ];
    let out = t.send("EHLO c\r\n");
    assert!(out.contains("LMTP"));
    assert!(
        out.ends_with("500 5.5.1 This is LMTP: send LHLO\r\n"),
        "{out}"
    );
    let out = t.send("LHLO c\r\n");
    assert!(out.starts_with("250-"), "{out}");
    let out = t.send(
        "MAIL FROM:<a@b.example>\r\nRCPT TO:<bob@example.org>\r\nRCPT TO:<full@example.org>\r\n\
         RCPT TO:<x@elsewhere.example>\r\nRCPT TO:<gone@example.org>\r\nDATA\r\n",
    );
    assert_eq!(
        codes(&out),
        ["250", "250", "250", "554", "250", "354"],
        "{out}"
    );
    let out = t.send("Subject: x\r\n\r\nbody\r\n.\r\n");
    assert_eq!(
        out,
        "250 2.0.0 <bob@example.org> delivered\r\n\
         452 4.3.1 <full@example.org> Insufficient system storage, try again later\r\n\
         550 5.2.0 <gone@example.org> Delivery failed\r\n"
    );
    let msg = String::from_utf8(t.delivered[0].message.to_vec()).unwrap();
    assert!(msg.contains(" with LMTP id "), "{msg}");
}

#[test]
fn lmtp_too_big_replies_per_recipient() {
    let mut t = T::new(SessionConfig {
        limits: SmtpLimits {
            message_size: 5,
            ..Default::default()
        },
        ..config(Role::Lmtp)
    });
    t.send("LHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<bob@example.org>\r\nRCPT TO:<carol@example.org>\r\nDATA\r\n");
    let out = t.send("0123456789\r\n.\r\n");
    assert_eq!(codes(&out), ["552", "552"], "{out}");
}

#[test]
fn smtp_delivery_failure_fails_message() {
    let mut t = T::mx();
    t.fail = vec![(
        "full@example.org".into(),
        DeliverError::StorageFull("disk".into()),
    )];
    t.send("EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<bob@example.org>\r\nRCPT TO:<full@example.org>\r\nDATA\r\n");
    let out = t.send("x\r\n.\r\n");
    assert_eq!(
        out,
        "452 4.3.1 Insufficient system storage, try again later\r\n"
    );
}

#[test]
fn unresolved_checks_give_451_443() {
    let mut t = T::mx();
    t.fail = vec![(
        "bob@example.org".into(),
        DeliverError::Unresolved("DNS".into()),
    )];
    t.send("EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n");
    let out = t.send("x\r\n.\r\nNOOP\r\n");
    assert_eq!(
        out,
        "451 4.4.3 Sender checks could not be completed (DNS), try again later\r\n250 2.0.0 OK\r\n"
    );
}

#[test]
fn bad_commands_keep_session_until_error_limit() {
    let mut t = T::mx();
    let out = t.send("FOO\r\n\r\nMAIL FROM:<a@b.example>\r\nMAIL FROM:bad\r\nHELO c\r\nRCPT TO:<x@example.org>\r\nEXPN staff\r\nVRFY bob\r\nHELP\r\nRSET\r\nNOOP\r\n");
    assert_eq!(
        codes(&out),
        ["220", "500", "500", "503", "501", "250", "503", "502", "252", "214", "250", "250"],
        "{out}"
    );
    assert!(out.contains("250 mx.example.org\r\n"));
    for _ in 0..20 {
        t.send("FOO\r\n");
    }
    assert!(t.closed());
}

#[test]
fn http_request_hangs_up() {
    let mut t = T::mx();
    let out = t.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        out.ends_with("421 4.7.0 This is an SMTP server\r\n"),
        "{out}"
    );
    assert!(t.closed());
}

#[test]
fn too_many_recipients() {
    let mut t = T::new(SessionConfig {
        limits: SmtpLimits {
            max_recipients: 2,
            ..Default::default()
        },
        ..config(Role::Mx)
    });
    let out = t.send("EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\n");
    assert!(out.ends_with("452 4.5.3 Too many recipients\r\n"), "{out}");
}

#[test]
fn smtputf8_required_for_non_ascii() {
    let mut t = T::mx();
    t.send("EHLO c\r\n");
    let out = t.send("MAIL FROM:<jöran@b.example>\r\n");
    assert!(out.starts_with("553 5.6.7"), "{out}");
    let out = t.send("MAIL FROM:<jöran@b.example> SMTPUTF8\r\nRCPT TO:<bjørn@example.org>\r\n");
    assert_eq!(codes(&out), ["250", "250"], "{out}");
}

#[test]
fn unsupported_parameters() {
    let mut t = T::mx();
    t.send("EHLO c\r\n");
    let out = t.send("MAIL FROM:<a@b.example> REQUIRETLS\r\nMAIL FROM:<a@b.example> FOO=bar\r\n");
    assert_eq!(codes(&out), ["555", "555"], "{out}");
}

#[test]
fn timeout_closes_with_421() {
    let mut t = T::mx();
    t.send("EHLO c\r\n");
    t.m.timed_out();
    assert!(t.closed());
    let out = String::from_utf8(t.m.take_output()).unwrap();
    assert_eq!(
        out,
        "421 4.4.2 mx.example.org Timeout, closing connection\r\n"
    );
}

#[test]
fn auth_on_mx_allows_relay() {
    let mut t = T::new(SessionConfig {
        tls: Some("TLS".into()),
        ..config(Role::Mx)
    });
    let out = t.send("EHLO c\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<x@elsewhere.example>\r\n");
    assert!(out.ends_with("235 2.7.0 Authentication successful\r\n250 2.1.0 Sender OK\r\n250 2.1.5 Recipient OK\r\n"), "{out}");
}

/// Random garbage, random splits, random (valid-looking) commands mixed
/// in: the machine never panics, never wedges, and its output is always
/// whole CRLF-terminated reply lines.
#[test]
fn random_input_never_panics() {
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        // xorshift64*
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        seed.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let pieces: [&[u8]; 16] = [
        b"EHLO c\r\n",
        b"LHLO c\r\n",
        b"MAIL FROM:<a@b.example> SIZE=10\r\n",
        b"MAIL FROM:<alice@example.org> BODY=BINARYMIME\r\n",
        b"RCPT TO:<bob@example.org>\r\n",
        b"RCPT TO:<x@elsewhere.example> NOTIFY=NEVER\r\n",
        b"DATA\r\n",
        b"BDAT 3\r\n",
        b"BDAT 0 LAST\r\n",
        b".\r\n",
        b"\r\n.\r\n",
        b"AUTH PLAIN\r\n",
        b"AUTH LOGIN YWxpY2U=\r\n",
        b"STARTTLS\r\n",
        b"RSET\r\n",
        b"\xff\x00\r\n",
    ];
    for role in [Role::Mx, Role::Submission, Role::Lmtp] {
        for round in 0..300 {
            let mut t = T::new(SessionConfig {
                plaintext_auth_allowed: round % 2 == 0,
                limits: SmtpLimits {
                    max_errors: 1000,
                    max_auth_failures: 1000,
                    message_size: 64,
                    max_line_length: 40,
                    ..Default::default()
                },
                ..config(role)
            });
            let mut input = Vec::new();
            for _ in 0..(next() % 40) {
                match next() % 4 {
                    0 => {
                        let n = (next() % 20) as usize;
                        input.extend((0..n).map(|_| (next() % 256) as u8));
                    }
                    _ => input.extend_from_slice(pieces[(next() % 16) as usize]),
                }
            }
            let mut out = String::new();
            let mut rest = &input[..];
            while !rest.is_empty() {
                let n = ((next() % 17) as usize + 1).min(rest.len());
                out.push_str(&t.send_bytes(&rest[..n]));
                rest = &rest[n..];
            }
            assert!(out.is_empty() || out.ends_with("\r\n"), "{out:?}");
            for line in out.split_terminator("\r\n") {
                assert!(
                    line.len() >= 3 && line.as_bytes()[..3].iter().all(u8::is_ascii_digit),
                    "{line:?} in {out:?}"
                );
            }
        }
    }
}

#[test]
fn unqualified_postmaster_is_qualified_with_the_host_name() {
    assert_eq!(
        unqualified_postmaster(b"RCPT TO:<Postmaster>\r\n"),
        Some(&b"\r\n"[..])
    );
    assert_eq!(
        unqualified_postmaster(b"rcpt to:  <POSTMASTER> NOTIFY=NEVER\r\n"),
        Some(&b" NOTIFY=NEVER\r\n"[..])
    );
    assert_eq!(
        unqualified_postmaster(b"RCPT TO:<postmaster@a.example>\r\n"),
        None
    );
    assert_eq!(unqualified_postmaster(b"RCPT TO:<postmasterx>\r\n"), None);
    assert_eq!(unqualified_postmaster(b"MAIL FROM:<Postmaster>\r\n"), None);
    assert_eq!(unqualified_postmaster(b"RCPT"), None);
}
