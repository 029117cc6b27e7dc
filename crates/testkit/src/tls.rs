//! TLS for in-process test servers: a fresh self-signed certificate, the
//! acceptor a server uses with it, and a client that trusts exactly that
//! certificate (through the one [`outpost_net::RelaxedVerifier`]).

use std::sync::Arc;

use outpost_net::{RelaxedVerifier, TlsAcceptor, Trust};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};

/// A server acceptor with a new self-signed certificate for `name`, and
/// that certificate (to pin in the client).
pub fn self_signed(name: &str) -> (TlsAcceptor, CertificateDer<'static>) {
    let ck = rcgen::generate_simple_self_signed(vec![name.to_string()])
        .expect("self-signed certificate");
    let key = PrivateKeyDer::Pkcs8(ck.key_pair.serialize_der().into());
    let cert = ck.cert.der().clone();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("default TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .expect("certificate and key fit");
    (TlsAcceptor::from(Arc::new(cfg)), cert)
}

/// A client configuration that trusts only `cert` (handshake signatures
/// still checked against it).
pub fn pinned_client(cert: CertificateDer<'static>) -> rustls::ClientConfig {
    RelaxedVerifier::client_config(Trust::Pinned(cert))
}

/// The client side of a handshake on `stream`, trusting only `cert`, with
/// `name` as SNI. Panics if the handshake fails: tests that expect a
/// failure use [`try_connect`].
pub async fn connect<S>(
    stream: S,
    name: &str,
    cert: CertificateDer<'static>,
) -> tokio_rustls::client::TlsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    try_connect(stream, name, cert)
        .await
        .expect("TLS handshake")
}

/// Like [`connect`], returning the handshake's error.
pub async fn try_connect<S>(
    stream: S,
    name: &str,
    cert: CertificateDer<'static>,
) -> std::io::Result<tokio_rustls::client::TlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let server = ServerName::try_from(name.to_string())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    tokio_rustls::TlsConnector::from(Arc::new(pinned_client(cert)))
        .connect(server, stream)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn pinned_client_trusts_its_server_only() {
        let (acceptor, cert) = self_signed("test.example");
        let (_, other) = self_signed("test.example");
        for (trusted, ok) in [(cert, true), (other, false)] {
            let (a, b) = tokio::io::duplex(16 * 1024);
            let acceptor = acceptor.clone();
            let server = tokio::spawn(async move {
                let mut s = acceptor.accept(a).await.ok()?;
                s.write_all(b"hi").await.ok()?;
                s.flush().await.ok()
            });
            match try_connect(b, "test.example", trusted).await {
                Ok(mut c) => {
                    assert!(ok, "an unpinned certificate was trusted");
                    let mut buf = [0u8; 2];
                    c.read_exact(&mut buf).await.unwrap();
                    assert_eq!(&buf, b"hi");
                }
                Err(_) => assert!(!ok, "the pinned certificate was refused"),
            }
            let _ = server.await;
        }
    }
}
