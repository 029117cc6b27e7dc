//! The mail flow against the embedded store, on SQLite and PostgreSQL:
//! delivery to users, aliases and groups, Sieve fileinto and redirect with
//! an SRS sender, DMARC quarantine, postmaster routing, submission (the
//! send-as check, the Sent copy, DKIM) and delivery notices.

use std::collections::HashMap;
use std::sync::Arc;

use outpost_config::Config;
use outpost_directory::{Directory, Lookup};
use outpost_mailflow::{
    dkim, Envelope, Failure, InboundChecks, MailFlow, Notify, Rcpt, Settings, SubmitError,
    SubmitOptions,
};
use outpost_store::testing::TestStore;
use outpost_store::{LeasedGroup, Store};

use outpost_testkit::both;

both!(
    delivers_to_a_user_an_alias_and_a_group,
    sieve_fileinto_and_redirect_with_an_srs_sender,
    dmarc_quarantine_files_into_junk,
    postmaster_of_the_host_name_is_routed,
    submit_refuses_a_from_the_principal_may_not_use,
    submit_delivers_locally_and_files_the_sent_copy,
    submitted_mail_is_dkim_signed,
    a_failure_sends_a_dsn_to_the_sender,
    notify_success_sends_a_notice,
    calendar_parts_of_delivered_mail_reach_the_imip_handler,
    the_out_of_office_is_the_sieve_vacation,
);

const HOST: &str = "mail.example.test";

struct World {
    flow: Arc<MailFlow>,
    alice: i64,
    bob: i64,
    carol: i64,
}

fn config(ts: &TestStore) -> Config {
    let mut cfg = Config::defaults_with(ts.dir.path().join("data"));
    cfg.hostname = HOST.into();
    cfg
}

/// example.test with alice (alias al@), bob (alias robert@), carol, and
/// team@ = bob, carol and an outside member.
async fn world(ts: &TestStore, settings: impl FnOnce(&mut Settings)) -> World {
    let cfg = config(ts);
    let store: &Store = ts;
    store.add_domain("example.test").await.unwrap();
    let dir = Directory::new(store.clone());
    let alice = dir
        .add_user("alice@example.test", "Alice", "pw-alice-1")
        .await
        .unwrap()
        .id;
    let bob = dir
        .add_user("bob@example.test", "Bob", "pw-bob-1")
        .await
        .unwrap()
        .id;
    let carol = dir
        .add_user("carol@example.test", "Carol", "pw-carol-1")
        .await
        .unwrap()
        .id;
    store.add_address(alice, "al@example.test").await.unwrap();
    store.add_address(bob, "robert@example.test").await.unwrap();
    let team = dir.add_group("team@example.test", "Team").await.unwrap().id;
    for m in ["bob@example.test", "carol@example.test", "ext@outside.test"] {
        store.add_member(team, m).await.unwrap();
    }
    let mut s = Settings::from_config(&cfg).unwrap();
    settings(&mut s);
    World {
        flow: Arc::new(MailFlow::new(dir, s)),
        alice,
        bob,
        carol,
    }
}

fn envelope(from: &str, to: &[&str]) -> Envelope {
    Envelope {
        mail_from: from.into(),
        recipients: to.iter().map(|a| Rcpt::new(*a)).collect(),
        message_id: "test.1".into(),
        ..Envelope::default()
    }
}

fn message(from: &str, to: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\nMessage-ID: <{subject}@test>\r\n\r\nHello.\r\n"
    )
    .into_bytes()
}

/// The messages (flags, bytes) in a user's mailbox, by name.
async fn mailbox(store: &Store, principal: i64, name: &str) -> Vec<(i64, String)> {
    let Some(m) = store.mailbox(principal, name).await.unwrap() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for info in store.message_list(m.id).await.unwrap() {
        let raw = store.read_blob(&info.blob_hash).await.unwrap();
        out.push((info.flags, String::from_utf8_lossy(&raw).into_owned()));
    }
    out
}

/// Everything in the queue, leased (so it is not handed out again): the
/// group and its message.
async fn queued(store: &Store) -> Vec<(LeasedGroup, String)> {
    let groups = store
        .queue_lease(outpost_store::now() + 1, 600, 100, 100, HashMap::new())
        .await
        .unwrap();
    let mut out = Vec::new();
    for g in groups {
        let raw = store.read_blob(&g.message.blob_hash).await.unwrap();
        out.push((g, String::from_utf8_lossy(&raw).into_owned()));
    }
    out
}

async fn delivers_to_a_user_an_alias_and_a_group(ts: TestStore) {
    let w = world(&ts, |_| {}).await;
    // alice twice (her address and her alias): one copy.
    let env = envelope(
        "sender@sender.test",
        &["alice@example.test", "al@example.test", "team@example.test"],
    );
    let msg = message("sender@sender.test", "team@example.test", "group");
    for r in &env.recipients {
        assert!(matches!(
            w.flow.resolve_recipient(&r.address).await.unwrap(),
            Lookup::Local(_)
        ));
    }
    let results = w.flow.deliver(&env, &msg).await;
    assert_eq!(results, vec![Ok(()), Ok(()), Ok(())]);
    for (who, n) in [(w.alice, 1), (w.bob, 1), (w.carol, 1)] {
        let inbox = mailbox(&ts, who, "INBOX").await;
        assert_eq!(inbox.len(), n, "principal {who}");
        assert!(inbox[0]
            .1
            .starts_with("Return-Path: <sender@sender.test>\r\n"));
    }
    // The outside member is queued, with an SRS sender in our domain.
    let q = queued(&ts).await;
    assert_eq!(q.len(), 1);
    let (g, raw) = &q[0];
    assert_eq!(g.recipients[0].address, "ext@outside.test");
    assert!(
        g.message.mail_from.starts_with("SRS0=") && g.message.mail_from.ends_with("@example.test"),
        "{}",
        g.message.mail_from
    );
    assert!(raw.contains("Subject: group"));
    // An unknown address of a hosted domain is unknown, a foreign one is not ours.
    assert_eq!(
        w.flow.lookup("nobody@example.test").await.unwrap(),
        Lookup::Unknown
    );
    assert_eq!(
        w.flow.lookup("x@elsewhere.test").await.unwrap(),
        Lookup::NotLocal
    );
}

async fn sieve_fileinto_and_redirect_with_an_srs_sender(ts: TestStore) {
    let w = world(&ts, |_| {}).await;
    let script = "require [\"fileinto\", \"mailbox\"];\r\nfileinto :create \"Work\";\r\nredirect \"fwd@outside.test\";\r\n";
    w.flow.engine().compile(script).unwrap();
    ts.sieve_put(w.bob, "main", script).await.unwrap();
    ts.sieve_set_active(w.bob, Some("main")).await.unwrap();
    let env = envelope("x@sender.test", &["bob@example.test"]);
    let msg = message("x@sender.test", "bob@example.test", "filed");
    assert_eq!(w.flow.deliver(&env, &msg).await, vec![Ok(())]);
    let work = mailbox(&ts, w.bob, "Work").await;
    assert_eq!(work.len(), 1, "fileinto :create Work");
    assert!(work[0].1.contains("Subject: filed"));
    assert!(
        mailbox(&ts, w.bob, "INBOX").await.is_empty(),
        "no implicit keep"
    );
    // The redirect is queued with an SRS sender that leads back.
    let q = queued(&ts).await;
    assert_eq!(q.len(), 1);
    let (g, raw) = &q[0];
    assert_eq!(g.recipients[0].address, "fwd@outside.test");
    let sender = &g.message.mail_from;
    assert!(
        sender.starts_with("SRS0=") && sender.ends_with("@example.test"),
        "{sender}"
    );
    assert!(
        raw.starts_with("Delivered-To: bob@example.test\r\n"),
        "{raw}"
    );
    assert!(
        !raw.contains("Return-Path:"),
        "our Return-Path does not travel"
    );
    assert_eq!(
        w.flow.lookup(sender).await.unwrap(),
        Lookup::Local(outpost_directory::Resolution {
            users: vec![],
            external: vec!["x@sender.test".into()],
        }),
        "a bounce to the SRS address goes back to the original sender"
    );
    // A forged one is refused.
    let forged = sender.replacen("SRS0=", "SRS0=AAAA", 1);
    assert_eq!(w.flow.lookup(&forged).await.unwrap(), Lookup::Unknown);
}

async fn dmarc_quarantine_files_into_junk(ts: TestStore) {
    let records = [
        ("quar.test", "v=spf1 ip4:192.0.2.1 -all"),
        ("_dmarc.quar.test", "v=DMARC1; p=quarantine"),
        ("rej.test", "v=spf1 ip4:192.0.2.1 -all"),
        ("_dmarc.rej.test", "v=DMARC1; p=reject"),
    ];
    let w = world(&ts, |s| {
        s.inbound = Some(InboundChecks {
            auth: outpost_queue::inbound::InboundAuth::with_records(HOST, records).unwrap(),
            dmarc_reject: true,
            dmarc_quarantine_junk: true,
        })
    })
    .await;
    let ip = "127.0.0.1".parse().unwrap();
    let msg = message("a@quar.test", "alice@example.test", "quarantined");
    let v = w
        .flow
        .check_inbound(1, ip, "client.test", "a@quar.test", &msg)
        .await
        .unwrap();
    assert!(v.junk);
    let header = String::from_utf8(v.prepend.clone()).unwrap();
    assert!(header.contains("dmarc=fail"), "{header}");
    let mut env = envelope("a@quar.test", &["alice@example.test"]);
    env.junk = v.junk;
    assert_eq!(w.flow.deliver(&env, &msg).await, vec![Ok(())]);
    assert_eq!(mailbox(&ts, w.alice, "Junk").await.len(), 1);
    assert!(mailbox(&ts, w.alice, "INBOX").await.is_empty());
    // p=reject is refused with a policy answer.
    let msg = message("a@rej.test", "alice@example.test", "rejected");
    let r = w
        .flow
        .check_inbound(1, ip, "client.test", "a@rej.test", &msg)
        .await;
    assert!(matches!(r, Err(Failure::Policy(_))), "{r:?}");
}

async fn postmaster_of_the_host_name_is_routed(ts: TestStore) {
    let w = world(&ts, |_| {}).await;
    ts.add_address(w.carol, "postmaster@example.test")
        .await
        .unwrap();
    // What the SMTP server makes of an unqualified RCPT TO:<Postmaster>.
    let to = format!("postmaster@{HOST}");
    match w.flow.resolve_recipient(&to).await.unwrap() {
        Lookup::Local(res) => assert_eq!(res.users[0].principal_id, w.carol),
        other => panic!("{other:?}"),
    }
    let env = envelope("x@sender.test", &[to.as_str()]);
    let msg = message("x@sender.test", &to, "to postmaster");
    assert_eq!(w.flow.deliver(&env, &msg).await, vec![Ok(())]);
    assert_eq!(mailbox(&ts, w.carol, "INBOX").await.len(), 1);
}

async fn submit_refuses_a_from_the_principal_may_not_use(ts: TestStore) {
    let w = world(&ts, |_| {}).await;
    let f = &w.flow;
    let opts = SubmitOptions::default();
    // bob as alice, in From: and in the envelope.
    let env = envelope("bob@example.test", &["x@outside.test"]);
    let msg = message("alice@example.test", "x@outside.test", "forged");
    assert_eq!(
        f.submit(w.bob, &env, &msg, opts).await,
        Err(SubmitError::NotAllowed("alice@example.test".into()))
    );
    let env = envelope("alice@example.test", &["x@outside.test"]);
    let msg = message("bob@example.test", "x@outside.test", "forged2");
    assert_eq!(
        f.submit(w.bob, &env, &msg, opts).await,
        Err(SubmitError::NotAllowed("alice@example.test".into()))
    );
    // Nor the null sender.
    let env = envelope("", &["x@outside.test"]);
    let msg = message("bob@example.test", "x@outside.test", "null");
    assert_eq!(
        f.submit(w.bob, &env, &msg, opts).await,
        Err(SubmitError::NotAllowed(String::new()))
    );
    assert!(queued(&ts).await.is_empty(), "nothing was queued");
    // His alias, and a group he belongs to, are his to use.
    let env = envelope("robert@example.test", &["x@outside.test"]);
    let msg = message("robert@example.test", "x@outside.test", "alias");
    let done = f.submit(w.bob, &env, &msg, opts).await.unwrap();
    assert!(done.queued.is_some());
    assert!(f.may_send_as(w.bob, "team@example.test").await.unwrap());
    assert!(!f.may_send_as(w.alice, "team@example.test").await.unwrap());
    // An unknown hosted recipient is refused before anything is sent.
    let env = envelope("bob@example.test", &["nobody@example.test"]);
    let msg = message("bob@example.test", "nobody@example.test", "unknown");
    assert_eq!(
        f.submit(w.bob, &env, &msg, opts).await,
        Err(SubmitError::UnknownRecipient("nobody@example.test".into()))
    );
    let q = queued(&ts).await;
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].0.message.mail_from, "robert@example.test");
}

async fn submit_delivers_locally_and_files_the_sent_copy(ts: TestStore) {
    let w = world(&ts, |_| {}).await;
    let env = envelope(
        "bob@example.test",
        &["alice@example.test", "x@outside.test"],
    );
    let msg = message("bob@example.test", "alice@example.test", "hello alice");
    let done = w
        .flow
        .submit(w.bob, &env, &msg, SubmitOptions { save_sent: true })
        .await
        .unwrap();
    assert_eq!(done.delivered, 1);
    assert!(done.queued.is_some());
    let sent_id = ts.mailbox(w.bob, "Sent").await.unwrap().unwrap().id;
    assert_eq!(done.sent_copy, Some(sent_id));
    let sent = mailbox(&ts, w.bob, "Sent").await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0 & outpost_mailmeta::flags::SEEN, 1, "marked read");
    assert!(sent[0].1.contains("Subject: hello alice"));
    let inbox = mailbox(&ts, w.alice, "INBOX").await;
    assert_eq!(inbox.len(), 1);
    assert!(inbox[0].1.starts_with("Return-Path: <bob@example.test>"));
    let q = queued(&ts).await;
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].0.recipients.len(), 1);
    assert_eq!(q[0].0.recipients[0].address, "x@outside.test");
    // Without the option there is no copy.
    let msg = message("bob@example.test", "alice@example.test", "no copy");
    w.flow
        .submit(w.bob, &env, &msg, SubmitOptions::default())
        .await
        .unwrap();
    assert_eq!(mailbox(&ts, w.bob, "Sent").await.len(), 1);
}

async fn submitted_mail_is_dkim_signed(ts: TestStore) {
    let cfg = config(&ts);
    let keys = dkim::key_dir(&cfg);
    let sel = cfg.dkim.selector.clone();
    let (path, created) =
        dkim::ensure_key(&keys, "example.test", &sel, dkim::Algorithm::Ed25519).unwrap();
    assert!(created);
    let again = dkim::ensure_key(&keys, "example.test", &sel, dkim::Algorithm::Ed25519).unwrap();
    assert_eq!(again, (path.clone(), false), "an existing key is kept");
    let w = world(&ts, |_| {}).await;
    let env = envelope("bob@example.test", &["x@outside.test"]);
    let msg = message("bob@example.test", "x@outside.test", "signed");
    w.flow
        .submit(w.bob, &env, &msg, SubmitOptions::default())
        .await
        .unwrap();
    let q = queued(&ts).await;
    let raw = q[0].1.as_bytes();
    // What the runner puts on top when the message leaves.
    let header = w.flow.signer().sign(raw).expect("signed");
    assert!(header.starts_with("DKIM-Signature:"), "{header}");
    assert!(header.contains("d=example.test"), "{header}");
    assert!(header.contains(&format!("s={sel}")), "{header}");
    // And it verifies against the published record.
    let txt = dkim::dns_txt(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let name = format!("{sel}._domainkey.example.test");
    let checker =
        outpost_queue::inbound::InboundAuth::with_records(HOST, [(name.as_str(), txt.as_str())])
            .unwrap();
    let mut signed = header.into_bytes();
    signed.extend_from_slice(raw);
    let v = checker
        .check(
            "192.0.2.9".parse().unwrap(),
            "mail.example.test",
            "bob@example.test",
            &signed,
        )
        .await;
    assert!(v.header.contains("dkim=pass"), "{}", v.header);
    // A domain without a key goes out unsigned.
    assert!(w
        .flow
        .signer()
        .sign(b"From: <a@other.test>\r\n\r\nx\r\n")
        .is_none());
}

async fn a_failure_sends_a_dsn_to_the_sender(ts: TestStore) {
    let w = world(&ts, |_| {}).await;
    let env = envelope("bob@example.test", &["nobody@nowhere.invalid"]);
    let msg = message("bob@example.test", "nobody@nowhere.invalid", "lost");
    w.flow
        .submit(w.bob, &env, &msg, SubmitOptions::default())
        .await
        .unwrap();
    // No DNS: the domain does not exist, a permanent failure.
    let resolver = outpost_queue::FixedResolver::from_pairs(std::iter::empty());
    let runner = outpost_queue::Runner {
        store: ts.store.clone(),
        settings: outpost_queue::QueueSettings {
            hostname: HOST.into(),
            ..Default::default()
        },
        resolver: Arc::new(resolver),
        local: w.flow.clone(),
        signer: Some(w.flow.signer()),
    };
    let groups = ts
        .queue_lease(outpost_store::now() + 1, 600, 10, 10, HashMap::new())
        .await
        .unwrap();
    assert_eq!(groups.len(), 1);
    for g in groups {
        runner.deliver_group(g).await;
    }
    // The notice is filed in bob's INBOX (through the mail flow).
    let inbox = mailbox(&ts, w.bob, "INBOX").await;
    assert_eq!(inbox.len(), 1, "one DSN");
    let dsn = &inbox[0].1;
    assert!(dsn.starts_with("Return-Path: <>\r\n"), "{dsn}");
    assert!(dsn.contains("multipart/report"), "{dsn}");
    assert!(dsn.contains("Action: failed"), "{dsn}");
    assert!(dsn.contains("nobody@nowhere.invalid"), "{dsn}");
    assert!(
        dsn.contains("Subject: lost"),
        "the original's headers: {dsn}"
    );
    assert!(queued(&ts).await.is_empty(), "nothing left in the queue");
}

async fn notify_success_sends_a_notice(ts: TestStore) {
    let w = world(&ts, |_| {}).await;
    let mut env = envelope("alice@example.test", &["bob@example.test"]);
    env.recipients[0].notify = Some(Notify {
        success: true,
        failure: true,
        delay: false,
    });
    let msg = message("alice@example.test", "bob@example.test", "tell me");
    assert_eq!(w.flow.deliver(&env, &msg).await, vec![Ok(())]);
    assert_eq!(mailbox(&ts, w.bob, "INBOX").await.len(), 1);
    let inbox = mailbox(&ts, w.alice, "INBOX").await;
    assert_eq!(inbox.len(), 1, "the success notice");
    assert!(inbox[0].1.contains("Action: delivered"), "{}", inbox[0].1);
}

/// Records what the iMIP hook was handed.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<outpost_mailflow::ImipDelivery>>);

#[async_trait::async_trait]
impl outpost_mailflow::ImipHandler for Recorder {
    async fn received(&self, d: outpost_mailflow::ImipDelivery) {
        self.0.lock().unwrap().push(d);
    }
}

async fn calendar_parts_of_delivered_mail_reach_the_imip_handler(ts: TestStore) {
    let w = world(&ts, |_| {}).await;
    let rec = Arc::new(Recorder::default());
    assert!(w.flow.set_imip_handler(rec.clone()));
    assert!(!w.flow.set_imip_handler(rec.clone()), "installed once");
    // Plain mail: nothing for the handler.
    let env = envelope("ext@outside.test", &["al@example.test"]);
    for r in w
        .flow
        .deliver(
            &env,
            &message("ext@outside.test", "al@example.test", "plain"),
        )
        .await
    {
        r.unwrap();
    }
    assert!(rec.0.lock().unwrap().is_empty());
    let ical = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:u1\r\nDTSTAMP:20261201T000000Z\r\nDTSTART:20261215T100000Z\r\nORGANIZER:mailto:ext@outside.test\r\nATTENDEE:mailto:al@example.test\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let msg = format!(
        "From: <Ext@Outside.test>\r\nTo: <al@example.test>\r\nSubject: Invitation\r\nMIME-Version: 1.0\r\n\
Content-Type: text/calendar; charset=utf-8; method=REQUEST\r\n\r\n{ical}"
    );
    for r in w.flow.deliver(&env, msg.as_bytes()).await {
        r.unwrap();
    }
    let got = rec.0.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].principal_id, w.alice);
    assert_eq!(got[0].method, "REQUEST");
    assert_eq!(got[0].from, vec!["ext@outside.test".to_string()]);
    assert_eq!(got[0].mail_from, "ext@outside.test");
    assert!(String::from_utf8_lossy(&got[0].calendar).contains("UID:u1"));
    // The message itself is filed as mail too.
    assert_eq!(mailbox(&ts, w.alice, "INBOX").await.len(), 2);
}

/// The one out-of-office: set through the mail flow (as ActiveSync, EWS,
/// JMAP and the web UI do), kept in the user's active Sieve script beside
/// the user's own rules, answered at delivery with the internal or the
/// external text, and off outside its period.
async fn the_out_of_office_is_the_sieve_vacation(ts: TestStore) {
    use outpost_mailflow::{Audience, OofState, OutOfOffice};
    let w = world(&ts, |_| {}).await;
    assert_eq!(
        w.flow.out_of_office(w.bob).await.unwrap(),
        OutOfOffice::default()
    );
    // Bob's own filter survives.
    let mine = "require [\"fileinto\", \"mailbox\"];\r\nif header :contains \"subject\" \"work\" { fileinto :create \"Work\"; }\r\n";
    ts.sieve_put(w.bob, "mine", mine).await.unwrap();
    ts.sieve_set_active(w.bob, Some("mine")).await.unwrap();
    let now = outpost_store::now();
    let oof = OutOfOffice {
        state: OofState::Scheduled,
        start: Some(now - 3600),
        end: Some(now + 3600),
        subject: Some("Away".into()),
        internal_reply: "Inside text".into(),
        external_reply: Some("Outside text".into()),
        external_audience: Audience::All,
    };
    w.flow.set_out_of_office(w.bob, &oof).await.unwrap();
    assert_eq!(w.flow.out_of_office(w.bob).await.unwrap(), oof);
    let script = ts.sieve_active(w.bob).await.unwrap().unwrap();
    assert_eq!(
        script.name, "mine",
        "the active script is edited, not replaced"
    );
    assert!(script
        .content
        .ends_with("if header :contains \"subject\" \"work\" { fileinto :create \"Work\"; }\r\n"));

    let outside = envelope("x@sender.test", &["bob@example.test"]);
    let msg = message("x@sender.test", "bob@example.test", "work plan");
    assert_eq!(w.flow.deliver(&outside, &msg).await, vec![Ok(())]);
    assert_eq!(
        mailbox(&ts, w.bob, "Work").await.len(),
        1,
        "the user's rule still runs"
    );
    let inside = envelope("alice@example.test", &["bob@example.test"]);
    let msg = message("alice@example.test", "bob@example.test", "lunch");
    assert_eq!(w.flow.deliver(&inside, &msg).await, vec![Ok(())]);
    let mut replies: Vec<(String, String)> = queued(&ts)
        .await
        .into_iter()
        .map(|(g, raw)| (g.recipients[0].address.clone(), raw))
        .collect();
    replies.sort();
    assert_eq!(replies.len(), 2, "{replies:?}");
    assert_eq!(replies[0].0, "alice@example.test");
    assert!(replies[0].1.contains("Inside text"), "{}", replies[0].1);
    assert_eq!(replies[1].0, "x@sender.test");
    assert!(replies[1].1.contains("Outside text"), "{}", replies[1].1);
    assert!(replies[1].1.contains("Subject: Away"), "{}", replies[1].1);

    // Outside its period it answers nobody; switched off it keeps the texts.
    let later = OutOfOffice {
        start: Some(now + 3600),
        end: Some(now + 7200),
        ..oof.clone()
    };
    w.flow.set_out_of_office(w.bob, &later).await.unwrap();
    let outside = envelope("y@sender.test", &["bob@example.test"]);
    let msg = message("y@sender.test", "bob@example.test", "hello");
    assert_eq!(w.flow.deliver(&outside, &msg).await, vec![Ok(())]);
    assert!(queued(&ts).await.is_empty(), "not in its period yet");
    let off = OutOfOffice {
        state: OofState::Disabled,
        ..oof.clone()
    };
    w.flow.set_out_of_office(w.bob, &off).await.unwrap();
    assert_eq!(w.flow.out_of_office(w.bob).await.unwrap(), off);

    // A user without any script gets one, activated.
    let on = OutOfOffice {
        state: OofState::Enabled,
        internal_reply: "Gone".into(),
        external_audience: Audience::All,
        ..OutOfOffice::default()
    };
    w.flow.set_out_of_office(w.carol, &on).await.unwrap();
    let s = ts.sieve_active(w.carol).await.unwrap().unwrap();
    assert_eq!(s.name, outpost_mailflow::OOF_SCRIPT);
    let outside = envelope("z@sender.test", &["carol@example.test"]);
    let msg = message("z@sender.test", "carol@example.test", "hi");
    assert_eq!(w.flow.deliver(&outside, &msg).await, vec![Ok(())]);
    let q = queued(&ts).await;
    assert_eq!(q.len(), 1);
    assert!(q[0].1.contains("Gone"));
    // Bad settings are refused and change nothing.
    let bad = OutOfOffice {
        state: OofState::Scheduled,
        ..OutOfOffice::default()
    };
    assert!(w.flow.set_out_of_office(w.carol, &bad).await.is_err());
    assert_eq!(w.flow.out_of_office(w.carol).await.unwrap(), on);
}
