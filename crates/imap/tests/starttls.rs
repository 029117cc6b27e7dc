//! STARTTLS and implicit TLS with a self-signed rcgen certificate.
mod common;
use common::*;
use std::sync::Arc;

use outpost_net::TlsAcceptor;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::net::TcpStream;

fn tls_pair() -> (TlsAcceptor, tokio_rustls::TlsConnector) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let der = CertificateDer::from(cert.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der()));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![der.clone()], key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (
        TlsAcceptor::from(Arc::new(server)),
        tokio_rustls::TlsConnector::from(Arc::new(client)),
    )
}

#[tokio::test]
async fn starttls_then_login() {
    let (acc, conn) = tls_pair();
    let s = server_with(Options {
        tls: Some(acc),
        plaintext: false,
        ..Default::default()
    })
    .await;
    let mut c = s.client().await;
    c.cmd("a1 CAPABILITY")
        .await
        .ok()
        .has("STARTTLS")
        .has("LOGINDISABLED");
    c.cmd("a2 LOGIN bob@example.org secret").await.no();
    c.cmd("a3 STARTTLS").await.ok();
    let tcp: TcpStream = c.into_inner();
    let tls = conn
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let mut c = Client::new(tls);
    c.cmd("b1 CAPABILITY")
        .await
        .ok()
        .has("AUTH=PLAIN")
        .lacks("STARTTLS")
        .lacks("LOGINDISABLED");
    c.cmd("b2 LOGIN bob@example.org secret").await.ok();
    c.cmd("b3 SELECT INBOX").await.ok();
    c.cmd("b4 STARTTLS").await.bad();
}

#[tokio::test]
async fn implicit_tls() {
    let (acc, conn) = tls_pair();
    let s = server_with(Options {
        tls: Some(acc),
        plaintext: false,
        implicit_tls: true,
        ..Default::default()
    })
    .await;
    let tcp = TcpStream::connect(s.addr).await.unwrap();
    let tls = conn
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let mut c = Client::new(tls);
    assert!(c.line().await.starts_with("* OK"));
    c.cmd("a1 CAPABILITY")
        .await
        .ok()
        .lacks("STARTTLS")
        .has("AUTH=PLAIN");
    c.cmd("a2 LOGIN bob@example.org secret").await.ok();
}

#[tokio::test]
async fn pipelining_past_starttls_is_dropped() {
    let (acc, _) = tls_pair();
    let s = server_with(Options {
        tls: Some(acc),
        plaintext: false,
        ..Default::default()
    })
    .await;
    let mut c = s.client().await;
    c.send("a1 STARTTLS\r\na2 NOOP").await;
    c.until("a1").await.ok();
    assert!(c.closed().await);
}
