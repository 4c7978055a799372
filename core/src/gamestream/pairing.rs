//! GameStream PIN pairing, stages 1–4 (core/GAMESTREAM.md §4.4), as a state machine: each
//! stage takes the client's bytes and returns the host's, with no I/O; the host's key signs
//! through a closure, so it never enters here. SHA-256 (the host claims appversion 7).

use super::certificate::Certificate;
use aes::Aes128;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use sha2::{Digest, Sha256};

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PairingError {
    #[error("{0} has the wrong length")]
    Length(&'static str),
    #[error("client certificate: {0}")]
    Certificate(String),
    #[error("stage {0} arrived out of order")]
    Order(u8),
    #[error("the client's pairing secret does not match: wrong PIN or tampering")]
    Mismatch,
}

/// AES-128-ECB without padding: the raw block cipher over each 16-byte block. (No crate
/// offers ECB as a mode worth a dependency; it is five lines over `aes`.)
fn ecb(key: &[u8; 16], data: &[u8], encrypt: bool) -> Result<Vec<u8>, PairingError> {
    if data.is_empty() || !data.len().is_multiple_of(16) {
        return Err(PairingError::Length("encrypted block"));
    }
    let cipher = Aes128::new(key.into());
    let mut out = data.to_vec();
    for block in out.chunks_exact_mut(16) {
        if encrypt {
            cipher.encrypt_block(block.into());
        } else {
            cipher.decrypt_block(block.into());
        }
    }
    Ok(out)
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Sixteen bytes from the system's secure random source.
fn random() -> [u8; 16] {
    let mut b = [0; 16];
    aws_lc_rs::rand::fill(&mut b).expect("the system's random source");
    b
}

/// The AES key both sides derive from the salt and the PIN.
pub fn pin_key(salt: &[u8; 16], pin: &str) -> [u8; 16] {
    sha256(&[salt, pin.as_bytes()])[..16].try_into().unwrap()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    ClientChallenge,
    ServerChallengeResp,
    ClientPairingSecret,
    Done,
}

/// One client's pairing in progress, created when stage 1 has its PIN.
pub struct Pairing {
    key: [u8; 16],
    client: Certificate,
    server_secret: [u8; 16],
    server_challenge: [u8; 16],
    client_hash: [u8; 32],
    stage: Stage,
}

impl Pairing {
    /// Stage 1 (`getservercert`), once the user's PIN is known.
    pub fn new(salt: &[u8], pin: &str, client_cert_pem: &str) -> Result<Self, PairingError> {
        let salt: &[u8; 16] = salt.try_into().map_err(|_| PairingError::Length("salt"))?;
        let client = Certificate::from_pem(client_cert_pem).map_err(|e| PairingError::Certificate(e.to_string()))?;
        Ok(Self {
            key: pin_key(salt, pin),
            client,
            server_secret: random(),
            server_challenge: random(),
            client_hash: [0; 32],
            stage: Stage::ClientChallenge,
        })
    }

    pub fn client(&self) -> &Certificate {
        &self.client
    }

    /// Stage 2: decrypts the client's challenge, answers `E(K, H(c ‖ sig(host) ‖ secret) ‖ challenge)`
    /// (`host_signature`: the host certificate's signature value).
    pub fn client_challenge(&mut self, host_signature: &[u8], encrypted: &[u8]) -> Result<Vec<u8>, PairingError> {
        self.expect(Stage::ClientChallenge, 2)?;
        let challenge = ecb(&self.key, encrypted, false)?;
        if challenge.len() != 16 {
            return Err(PairingError::Length("client challenge"));
        }
        let hash = sha256(&[&challenge, host_signature, &self.server_secret]);
        let mut plain = hash.to_vec();
        plain.extend_from_slice(&self.server_challenge);
        self.stage = Stage::ServerChallengeResp;
        ecb(&self.key, &plain, true)
    }

    /// Stage 3: stores the client's hash, answers the server secret and its signature
    /// (`sign`: RSA PKCS#1 v1.5 SHA-256 with the host's key).
    pub fn server_challenge_resp(&mut self, sign: impl FnOnce(&[u8]) -> Vec<u8>, encrypted: &[u8]) -> Result<Vec<u8>, PairingError> {
        self.expect(Stage::ServerChallengeResp, 3)?;
        let hash = ecb(&self.key, encrypted, false)?;
        self.client_hash = hash.as_slice().try_into().map_err(|_| PairingError::Length("client hash"))?;
        let mut out = self.server_secret.to_vec();
        out.extend_from_slice(&sign(&self.server_secret));
        self.stage = Stage::ClientPairingSecret;
        Ok(out)
    }

    /// Stage 4: the client's secret must reproduce its hash and carry its certificate's
    /// signature. A wrong PIN fails here (the client usually notices at stage 3 already).
    pub fn client_pairing_secret(&mut self, data: &[u8]) -> Result<(), PairingError> {
        self.expect(Stage::ClientPairingSecret, 4)?;
        self.stage = Stage::Done;
        if data.len() <= 16 {
            return Err(PairingError::Length("client pairing secret"));
        }
        let (secret, signature) = data.split_at(16);
        let hash = sha256(&[&self.server_challenge, self.client.signature(), secret]);
        if hash != self.client_hash || !self.client.verify(secret, signature) {
            return Err(PairingError::Mismatch);
        }
        Ok(())
    }

    fn expect(&self, stage: Stage, n: u8) -> Result<(), PairingError> {
        if self.stage == stage { Ok(()) } else { Err(PairingError::Order(n)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::{KeyPair, KeySize};
    use aws_lc_rs::signature::RSA_PKCS1_SHA256;

    /// An RSA-2048 key and its self-signed certificate, as either side of a pairing has.
    struct Identity {
        key: KeyPair,
        cert: Certificate,
    }

    impl Identity {
        fn generate(name: &str) -> Self {
            let key = KeyPair::generate(KeySize::Rsa2048).unwrap();
            let der = rustls_pki_types::PrivatePkcs8KeyDer::from(key.as_der().unwrap().as_ref().to_vec());
            let signing = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_RSA_SHA256).unwrap();
            let cert = rcgen::CertificateParams::new(vec![name.into()]).unwrap().self_signed(&signing).unwrap();
            Self { cert: Certificate::from_pem(&cert.pem()).unwrap(), key }
        }

        fn certificate(&self) -> &Certificate {
            &self.cert
        }

        fn sign(&self, message: &[u8]) -> Vec<u8> {
            let mut sig = vec![0; self.key.public_modulus_len()];
            self.key.sign(&RSA_PKCS1_SHA256, &aws_lc_rs::rand::SystemRandom::new(), message, &mut sig).unwrap();
            sig
        }
    }

    /// Plays the client's side of stages 2–4, as moonlight-common clients do.
    struct TestClient {
        identity: Identity,
        key: [u8; 16],
    }

    impl TestClient {
        fn run(&self, pairing: &mut Pairing, host: &Identity) -> Result<(), PairingError> {
            let c = [5u8; 16];
            let resp = ecb(&self.key, &pairing.client_challenge(host.certificate().signature(), &ecb(&self.key, &c, true)?)?, false)?;
            let (hash, server_challenge) = resp.split_at(32);
            let client_secret = [6u8; 16];
            let r = sha256(&[server_challenge, self.identity.certificate().signature(), &client_secret]);
            let secret_and_sig = pairing.server_challenge_resp(|m| host.sign(m), &ecb(&self.key, &r, true)?)?;
            let (server_secret, sig) = secret_and_sig.split_at(16);
            // What the client checks: the host's signature, and the hash (wrong PIN → differs).
            assert!(host.certificate().verify(server_secret, sig));
            if sha256(&[&c, host.certificate().signature(), server_secret]) != hash {
                return Err(PairingError::Mismatch);
            }
            let mut msg = client_secret.to_vec();
            msg.extend_from_slice(&self.identity.sign(&client_secret));
            pairing.client_pairing_secret(&msg)
        }
    }

    #[test]
    fn right_pin_pairs_wrong_pin_does_not() {
        let host = Identity::generate("host");
        let client = Identity::generate("client");
        let salt = [9u8; 16];
        let mut pairing = Pairing::new(&salt, "1234", client.certificate().pem()).unwrap();
        let tc = TestClient { identity: client, key: pin_key(&salt, "1234") };
        tc.run(&mut pairing, &host).unwrap();

        let mut pairing = Pairing::new(&salt, "1234", tc.identity.certificate().pem()).unwrap();
        let wrong = TestClient { identity: tc.identity, key: pin_key(&salt, "4321") };
        assert_eq!(wrong.run(&mut pairing, &host), Err(PairingError::Mismatch));
    }

    #[test]
    fn stages_out_of_order_and_bad_lengths_fail() {
        let host = Identity::generate("host");
        let client = Identity::generate("client");
        let mut p = Pairing::new(&[1; 16], "0000", client.certificate().pem()).unwrap();
        assert_eq!(p.server_challenge_resp(|m| host.sign(m), &[0; 32]), Err(PairingError::Order(3)));
        assert_eq!(p.client_challenge(host.certificate().signature(), &[0; 15]), Err(PairingError::Length("encrypted block")));
        assert!(matches!(Pairing::new(&[1; 15], "0000", client.certificate().pem()), Err(PairingError::Length("salt"))));
        assert!(matches!(Pairing::new(&[1; 16], "0000", "not a pem"), Err(PairingError::Certificate(_))));
    }
}
