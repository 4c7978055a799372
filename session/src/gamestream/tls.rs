//! The HTTPS listener's TLS: the host certificate, and client authentication that accepts
//! any certificate during the handshake (Moonlight's are bare self-signed ones no CA
//! verifier takes). Whether that certificate is paired is decided per request, from its
//! fingerprint, so an unpaired client gets a clean "401" answer instead of a TLS failure.

use super::identity::Identity;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use std::sync::Arc;

#[derive(Debug)]
struct AnyClientCertificate {
    algorithms: WebPkiSupportedAlgorithms,
    /// punktfunk/1 clients always have one; Moonlight's unpaired requests may come without.
    mandatory: bool,
}

impl ClientCertVerifier for AnyClientCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    // The handshake signature is still checked: the client must hold the certificate's key.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms).or_else(|e| verify_rsa_directly(message, cert, dss).ok_or(e))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms).or_else(|e| verify_rsa_directly(message, cert, dss).ok_or(e))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// webpki refuses X.509 v1 certificates, which OpenSSL writes for a certificate without
/// extensions (some Moonlight clients' own). Check their RSA signature from the key itself.
fn verify_rsa_directly(message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Option<HandshakeSignatureValid> {
    use aws_lc_rs::signature as sig;
    let (_, x509) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let algorithm: &dyn sig::VerificationAlgorithm = match dss.scheme {
        SignatureScheme::RSA_PKCS1_SHA256 => &sig::RSA_PKCS1_2048_8192_SHA256,
        SignatureScheme::RSA_PKCS1_SHA384 => &sig::RSA_PKCS1_2048_8192_SHA384,
        SignatureScheme::RSA_PKCS1_SHA512 => &sig::RSA_PKCS1_2048_8192_SHA512,
        SignatureScheme::RSA_PSS_SHA256 => &sig::RSA_PSS_2048_8192_SHA256,
        SignatureScheme::RSA_PSS_SHA384 => &sig::RSA_PSS_2048_8192_SHA384,
        SignatureScheme::RSA_PSS_SHA512 => &sig::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    };
    let key = &x509.public_key().subject_public_key.data;
    sig::UnparsedPublicKey::new(algorithm, key.as_ref())
        .verify(message, dss.signature())
        .ok()
        .map(|()| HandshakeSignatureValid::assertion())
}

pub fn server_config(identity: &Identity) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    Ok(Arc::new(config(identity, &[&rustls::version::TLS12, &rustls::version::TLS13], false)?))
}

/// The web console's TLS: the same host certificate, and no client certificate asked for (a
/// browser would offer the user's own certificates in a prompt).
pub fn console_server_config(identity: &Identity) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let cert = CertificateDer::from(identity.certificate().der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.key_der().to_vec()));
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The punktfunk/1 QUIC listener's TLS: the same host certificate, TLS 1.3 (QUIC's), a client
/// certificate required, the protocol's ALPN.
pub fn quic_server_config(identity: &Identity) -> anyhow::Result<rustls::ServerConfig> {
    let mut config = config(identity, &[&rustls::version::TLS13], true)?;
    config.alpn_protocols = vec![punktfunk_core::control::ALPN.to_vec()];
    Ok(config)
}

fn config(
    identity: &Identity,
    versions: &[&'static rustls::SupportedProtocolVersion],
    mandatory: bool,
) -> anyhow::Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(AnyClientCertificate { algorithms: provider.signature_verification_algorithms, mandatory });
    let cert = CertificateDer::from(identity.certificate().der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.key_der().to_vec()));
    Ok(rustls::ServerConfig::builder_with_provider(Arc::clone(&provider) as Arc<CryptoProvider>)
        .with_protocol_versions(versions)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert], key)?)
}
