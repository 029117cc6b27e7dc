//! The one client-side certificate verifier for the cases where the usual
//! web-PKI check does not apply: opportunistic STARTTLS to an MX (RFC 7435:
//! any certificate beats plaintext), an LDAP server the administrator chose
//! not to verify (`tls_verify = false`), and tests that trust exactly their
//! own self-signed server. Handshake signatures are always checked, so the
//! peer must hold the key of the certificate it shows.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// Which server certificates to accept.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Any certificate (no chain, name or expiry check).
    AnyCertificate,
    /// Exactly this certificate.
    Pinned(CertificateDer<'static>),
}

#[derive(Debug)]
pub struct RelaxedVerifier {
    trust: Trust,
    provider: Arc<CryptoProvider>,
}

impl RelaxedVerifier {
    pub fn new(trust: Trust) -> Arc<RelaxedVerifier> {
        Arc::new(RelaxedVerifier {
            trust,
            provider: Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
        })
    }

    /// A rustls client configuration that trusts as `trust` says.
    pub fn client_config(trust: Trust) -> rustls::ClientConfig {
        let verifier = RelaxedVerifier::new(trust);
        rustls::ClientConfig::builder_with_provider(verifier.provider.clone())
            .with_safe_default_protocol_versions()
            .expect("aws-lc-rs supports the default versions")
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth()
    }
}

impl ServerCertVerifier for RelaxedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.trust {
            Trust::AnyCertificate => Ok(ServerCertVerified::assertion()),
            Trust::Pinned(cert) if cert.as_ref() == end_entity.as_ref() => {
                Ok(ServerCertVerified::assertion())
            }
            Trust::Pinned(_) => Err(rustls::Error::General("not the pinned certificate".into())),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
