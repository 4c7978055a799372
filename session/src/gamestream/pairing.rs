//! GameStream PIN pairing, stages 1–4 (core/GAMESTREAM.md §4.4), as a state machine: each stage takes
//! the client's bytes and returns the host's, with no I/O. SHA-256 (we claim appversion 7).

use super::identity::{Certificate, Identity};
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
            server_secret: rand::random(),
            server_challenge: rand::random(),
            client_hash: [0; 32],
            stage: Stage::ClientChallenge,
        })
    }

    pub fn client(&self) -> &Certificate {
        &self.client
    }

    /// Stage 2: decrypts the client's challenge, answers `E(K, H(c ‖ sig(host) ‖ secret) ‖ challenge)`.
    pub fn client_challenge(&mut self, host: &Identity, encrypted: &[u8]) -> Result<Vec<u8>, PairingError> {
        self.expect(Stage::ClientChallenge, 2)?;
        let challenge = ecb(&self.key, encrypted, false)?;
        if challenge.len() != 16 {
            return Err(PairingError::Length("client challenge"));
        }
        let hash = sha256(&[&challenge, host.certificate().signature(), &self.server_secret]);
        let mut plain = hash.to_vec();
        plain.extend_from_slice(&self.server_challenge);
        self.stage = Stage::ServerChallengeResp;
        ecb(&self.key, &plain, true)
    }

    /// Stage 3: stores the client's hash, answers the server secret and its signature.
    pub fn server_challenge_resp(&mut self, host: &Identity, encrypted: &[u8]) -> Result<Vec<u8>, PairingError> {
        self.expect(Stage::ServerChallengeResp, 3)?;
        let hash = ecb(&self.key, encrypted, false)?;
        self.client_hash = hash.as_slice().try_into().map_err(|_| PairingError::Length("client hash"))?;
        let mut out = self.server_secret.to_vec();
        out.extend_from_slice(&host.sign(&self.server_secret));
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

    /// Plays the client's side of stages 2–4, as moonlight-common clients do.
    struct TestClient {
        identity: Identity,
        key: [u8; 16],
    }

    impl TestClient {
        fn run(&self, pairing: &mut Pairing, host: &Identity) -> Result<(), PairingError> {
            let c = [5u8; 16];
            let resp = ecb(&self.key, &pairing.client_challenge(host, &ecb(&self.key, &c, true)?)?, false)?;
            let (hash, server_challenge) = resp.split_at(32);
            let client_secret = [6u8; 16];
            let r = sha256(&[server_challenge, self.identity.certificate().signature(), &client_secret]);
            let secret_and_sig = pairing.server_challenge_resp(host, &ecb(&self.key, &r, true)?)?;
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
        let host = Identity::generate("host").unwrap();
        let client = Identity::generate("client").unwrap();
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
        let host = Identity::generate("host").unwrap();
        let client = Identity::generate("client").unwrap();
        let mut p = Pairing::new(&[1; 16], "0000", client.certificate().pem()).unwrap();
        assert_eq!(p.server_challenge_resp(&host, &[0; 32]), Err(PairingError::Order(3)));
        assert_eq!(p.client_challenge(&host, &[0; 15]), Err(PairingError::Length("encrypted block")));
        assert!(matches!(Pairing::new(&[1; 15], "0000", client.certificate().pem()), Err(PairingError::Length("salt"))));
        assert!(matches!(Pairing::new(&[1; 16], "0000", "not a pem"), Err(PairingError::Certificate(_))));
    }
}
