//! Timing of SELECT, `UID FETCH 1:* (FLAGS)`, `UID SEARCH ALL` and
//! `SEARCH UNSEEN` on a 100,000-message
//! mailbox (issue 4 targets: < 1 s and < 2 s in a release build).
//! `cargo test --release -p outpost-imap --test big_mailbox -- --ignored --nocapture`
mod common;
use common::*;
use std::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn select_and_fetch_100k() {
    let n: usize = std::env::var("BIG_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let s = server().await;
    let id = s.mailbox_id("INBOX").await;
    let t = Instant::now();
    for i in 0..n {
        let raw = format!("Subject: m{i}\r\nMessage-ID: <{i}@x>\r\n\r\nbody {i}\r\n");
        s.store.deliver(id, raw.as_bytes(), 0, 1_700_000_000);
    }
    eprintln!("delivered {n} in {:?}", t.elapsed());
    let mut c = s.login().await;
    let t = Instant::now();
    c.cmd("a1 SELECT INBOX")
        .await
        .ok()
        .has(&format!("* {n} EXISTS"));
    let select = t.elapsed();
    let t = Instant::now();
    let r = c.cmd("a2 UID FETCH 1:* (FLAGS)").await.ok();
    let fetch = t.elapsed();
    assert_eq!(r.lines.len(), n);
    let t = Instant::now();
    c.cmd("a3 UID SEARCH ALL").await.ok().has("* SEARCH 1 2 ");
    let search_all = t.elapsed();
    let t = Instant::now();
    c.cmd("a4 SEARCH UNSEEN").await.ok().has("* SEARCH 1 2 ");
    let search_unseen = t.elapsed();
    let t = Instant::now();
    c.cmd("a5 STORE 1:* +FLAGS.SILENT (\\Seen)").await.ok();
    let store = t.elapsed();
    eprintln!(
        "SELECT {select:?}, UID FETCH 1:* (FLAGS) {fetch:?}, UID SEARCH ALL {search_all:?}, \
         SEARCH UNSEEN {search_unseen:?}, STORE 1:* {store:?}"
    );
}

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let l = s.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    l.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Memory per idle authenticated connection in IDLE (issue 4 target:
/// ≤ 20 KiB). Server and clients share the process; the client side keeps
/// only its TcpStream, so the figure is an upper bound for the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn idle_memory_1000() {
    let s = server().await;
    for _ in 0..20 {
        s.deliver("INBOX", MSG).await;
    }
    // Warm up allocator and pools.
    let mut warm = Vec::new();
    for _ in 0..50 {
        let mut c = s.login().await;
        c.cmd("w SELECT INBOX").await.ok();
        warm.push(c);
    }
    drop(warm);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let before = rss_kib();
    let mut held = Vec::new();
    for i in 0..1000 {
        let mut c = s.login().await;
        c.cmd(&format!("s{i} SELECT INBOX")).await.ok();
        c.send("i IDLE").await;
        assert!(c.line().await.starts_with('+'));
        held.push(c.into_inner());
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let after = rss_kib();
    eprintln!(
        "RSS {before} KiB -> {after} KiB: {:.1} KiB per idle connection",
        (after - before) as f64 / 1000.0
    );
}

/// The same over implicit TLS (rustls buffers on both sides count here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn idle_memory_1000_tls() {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
    use std::sync::Arc;
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let der = CertificateDer::from(cert.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der()));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server_cfg = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![der.clone()], key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der).unwrap();
    let client_cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_cfg));
    let s = server_with(Options {
        tls: Some(outpost_net::TlsAcceptor::from(Arc::new(server_cfg))),
        implicit_tls: true,
        ..Default::default()
    })
    .await;
    let open = |i: usize| {
        let connector = connector.clone();
        let addr = s.addr;
        async move {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let tls = connector
                .connect(ServerName::try_from("localhost").unwrap(), tcp)
                .await
                .unwrap();
            let mut c = Client::new(tls);
            c.line().await;
            c.cmd("l LOGIN bob@example.org secret").await.ok();
            c.cmd(&format!("s{i} SELECT INBOX")).await.ok();
            c.send("i IDLE").await;
            assert!(c.line().await.starts_with('+'));
            c.into_inner()
        }
    };
    let mut warm = Vec::new();
    for i in 0..50 {
        warm.push(open(i).await);
    }
    drop(warm);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let before = rss_kib();
    let mut held = Vec::new();
    for i in 0..1000 {
        held.push(open(i).await);
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let after = rss_kib();
    eprintln!(
        "TLS: RSS {before} KiB -> {after} KiB: {:.1} KiB per idle connection (server and client)",
        (after - before) as f64 / 1000.0
    );
}
