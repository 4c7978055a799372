//! A client's or the host's X.509 certificate, and the parts of it GameStream pairing uses
//! (core/GAMESTREAM.md §4.4): its signature value enters the pairing hashes, its RSA key
//! verifies the pairing signatures, and its DER's SHA-256 is how a paired client is known.

use aws_lc_rs::signature::{self, UnparsedPublicKey};

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("not a PEM certificate")]
    Pem,
    #[error("certificate does not parse: {0}")]
    X509(String),
}

/// A certificate and the parts of it the GameStream protocol uses.
#[derive(Clone, Debug)]
pub struct Certificate {
    pem: String,
    der: Vec<u8>,
    /// The signature value: it enters the pairing hashes.
    signature: Vec<u8>,
    /// The RSA public key (PKCS#1), to verify pairing signatures.
    public_key: Vec<u8>,
}

impl Certificate {
    pub fn from_pem(pem: &str) -> Result<Self, CertificateError> {
        let (_, parsed) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|_| CertificateError::Pem)?;
        let mut cert = Self::from_der(&parsed.contents)?;
        cert.pem = pem.to_owned();
        Ok(cert)
    }

    pub fn from_der(der: &[u8]) -> Result<Self, CertificateError> {
        let (_, x509) = x509_parser::parse_x509_certificate(der).map_err(|e| CertificateError::X509(e.to_string()))?;
        Ok(Self {
            pem: String::new(),
            der: der.to_vec(),
            signature: x509.signature_value.data.to_vec(),
            public_key: x509.tbs_certificate.subject_pki.subject_public_key.data.to_vec(),
        })
    }

    /// The PEM text exactly as stored and sent (`plaincert` is its hex).
    pub fn pem(&self) -> &str {
        &self.pem
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The subject's public key (PKCS#1 for RSA).
    pub fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    /// Hex SHA-256 of the DER: how paired clients are recognised.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.der)
    }

    /// Checks an RSA PKCS#1 v1.5 SHA-256 signature made with this certificate's key.
    pub fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &self.public_key).verify(message, sig).is_ok()
    }
}

pub fn fingerprint(der: &[u8]) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}
