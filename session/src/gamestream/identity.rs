//! The host's identity: an RSA-2048 key and self-signed certificate, generated once and kept
//! in the state directory (clients pin the certificate, and pairing signs with the key).

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, KeyPair, RsaKeyPair};
pub use punktfunk_core::gamestream::certificate::{Certificate, CertificateError, fingerprint};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(transparent)]
    Certificate(#[from] CertificateError),
    #[error("key: {0}")]
    Key(String),
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

pub struct Identity {
    cert: Certificate,
    key_der: Vec<u8>,
    key: RsaKeyPair,
}

impl Identity {
    /// A fresh RSA-2048 key and a self-signed SHA-256 certificate valid for 20 years.
    pub fn generate(common_name: &str) -> Result<Self, IdentityError> {
        let key = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|e| IdentityError::Key(e.to_string()))?;
        let key_der = key.as_der().map_err(|e| IdentityError::Key(e.to_string()))?.as_ref().to_vec();
        let pkcs8 = rustls::pki_types::PrivatePkcs8KeyDer::from(key_der.clone());
        let signing = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &rcgen::PKCS_RSA_SHA256)?;
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(rcgen::DnType::CommonName, common_name);
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2045, 1, 1);
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&rand::random::<[u8; 16]>()));
        let cert = params.self_signed(&signing)?;
        Self::from_parts(&cert.pem(), key_der)
    }

    fn from_parts(cert_pem: &str, key_der: Vec<u8>) -> Result<Self, IdentityError> {
        let key = RsaKeyPair::from_pkcs8(&key_der).map_err(|e| IdentityError::Key(e.to_string()))?;
        let cert = Certificate::from_pem(cert_pem)?;
        if key.public_key().as_ref() != cert.public_key() {
            return Err(IdentityError::Key("the key does not belong to the certificate".into()));
        }
        Ok(Self { cert, key_der, key })
    }

    /// Loads `host.pem` and `host.key` from `dir`, creating them the first time.
    pub fn load_or_create(dir: &Path) -> Result<Self, IdentityError> {
        let (cert_path, key_path) = (dir.join("host.pem"), dir.join("host.key"));
        match (std::fs::read_to_string(&cert_path), std::fs::read(&key_path)) {
            (Ok(pem), Ok(key)) => Self::from_parts(&pem, key),
            (Err(e), _) | (_, Err(e)) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => {
                let id = Self::generate("punktfunk GameStream host")?;
                // The half that exists goes first: a crash anywhere below leaves a key without
                // a certificate (made anew on the next start), never a pair that does not match.
                match std::fs::remove_file(&cert_path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                    _ => {}
                }
                crate::store::write_private(&key_path, &id.key_der)?;
                crate::store::write_atomic(&cert_path, id.cert.pem().as_bytes())?;
                tracing::info!("created the host certificate {}", cert_path.display());
                Ok(id)
            }
        }
    }

    pub fn certificate(&self) -> &Certificate {
        &self.cert
    }

    /// The private key (PKCS#8 DER) for the TLS listener.
    pub fn key_der(&self) -> &[u8] {
        &self.key_der
    }

    /// RSA PKCS#1 v1.5 with SHA-256, as pairing stage 3 needs.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let mut sig = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(&signature::RSA_PKCS1_SHA256, &aws_lc_rs::rand::SystemRandom::new(), message, &mut sig)
            .expect("RSA signing with a valid key");
        sig
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_identity_signs_verifiably_and_persists() {
        let dir = std::env::temp_dir().join(format!("pf-identity-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let a = Identity::load_or_create(&dir).unwrap();
        let b = Identity::load_or_create(&dir).unwrap();
        assert_eq!(a.certificate().pem(), b.certificate().pem(), "the same certificate after a restart");
        assert_eq!(a.certificate().signature().len(), 256, "RSA-2048 signature value");
        let sig = b.sign(b"secret");
        assert!(a.certificate().verify(b"secret", &sig));
        assert!(!a.certificate().verify(b"secreT", &sig));
    }

    /// Every state a crash while creating the identity can leave starts.
    #[test]
    fn a_half_written_identity_is_made_anew() {
        let dir = std::env::temp_dir().join(format!("pf-identity-half-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = Identity::load_or_create(&dir).unwrap();
        std::fs::remove_file(dir.join("host.key")).unwrap();
        let second = Identity::load_or_create(&dir).expect("a certificate without its key");
        assert_ne!(first.certificate().pem(), second.certificate().pem());
        std::fs::remove_file(dir.join("host.pem")).unwrap();
        let third = Identity::load_or_create(&dir).expect("a key without its certificate");
        assert_eq!(Identity::load_or_create(&dir).unwrap().certificate().pem(), third.certificate().pem());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
