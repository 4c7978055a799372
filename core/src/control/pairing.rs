//! PIN pairing: SPAKE2 (Ed25519 group) keyed by the PIN the client shows, then key
//! confirmation over both TLS certificate fingerprints. A matching PIN proves to each side
//! that the certificate it sees is the one the other holds; afterwards both pin them.
//! A wrong PIN fails the host's check before the host reveals anything further, and an
//! attacker gets one online guess per attempt.

use aws_lc_rs::hmac;
use spake2::{Ed25519Group, Identity, Password, Spake2};

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PairError {
    #[error("the PINs do not match")]
    WrongPin,
    #[error("malformed pairing message")]
    Malformed,
}

const CLIENT_ID: &[u8] = b"punktfunk/1 client";
const HOST_ID: &[u8] = b"punktfunk/1 host";

/// What both confirmations cover: who is who, by certificate.
fn transcript(client_fp: &[u8; 32], host_fp: &[u8; 32]) -> Vec<u8> {
    [b"punktfunk/1 pairing".as_slice(), client_fp, host_fp].concat()
}

fn mac(key: &[u8], role: &[u8], transcript: &[u8]) -> hmac::Tag {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(role);
    ctx.update(transcript);
    ctx.sign()
}

/// The client's side.
pub struct ClientPairing {
    spake: Spake2<Ed25519Group>,
    transcript: Vec<u8>,
}

impl ClientPairing {
    /// Starts pairing; the message goes in `PairStart`.
    pub fn start(pin: &str, client_fp: &[u8; 32], host_fp: &[u8; 32]) -> (Self, Vec<u8>) {
        let (spake, msg) =
            Spake2::<Ed25519Group>::start_a(&Password::new(pin.as_bytes()), &Identity::new(CLIENT_ID), &Identity::new(HOST_ID));
        (Self { spake, transcript: transcript(client_fp, host_fp) }, msg)
    }

    /// Checks the host's `PairReply`; on success returns the client's confirmation.
    pub fn finish(self, host_spake: &[u8], host_mac: &[u8]) -> Result<Vec<u8>, PairError> {
        let key = self.spake.finish(host_spake).map_err(|_| PairError::Malformed)?;
        hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, &key), &[b"host".as_slice(), &self.transcript].concat(), host_mac)
            .map_err(|_| PairError::WrongPin)?;
        Ok(mac(&key, b"client", &self.transcript).as_ref().to_vec())
    }
}

/// The host's side, once it has the PIN the user typed.
pub struct HostPairing {
    key: Vec<u8>,
    transcript: Vec<u8>,
}

impl HostPairing {
    /// Answers a `PairStart`: the reply's SPAKE2 message and the host's confirmation.
    pub fn respond(
        pin: &str,
        client_fp: &[u8; 32],
        host_fp: &[u8; 32],
        client_spake: &[u8],
    ) -> Result<(Self, Vec<u8>, Vec<u8>), PairError> {
        let (spake, msg) =
            Spake2::<Ed25519Group>::start_b(&Password::new(pin.as_bytes()), &Identity::new(CLIENT_ID), &Identity::new(HOST_ID));
        let key = spake.finish(client_spake).map_err(|_| PairError::Malformed)?;
        let transcript = transcript(client_fp, host_fp);
        let host_mac = mac(&key, b"host", &transcript).as_ref().to_vec();
        Ok((Self { key, transcript }, msg, host_mac))
    }

    /// Checks the client's `PairConfirm`.
    pub fn verify(&self, client_mac: &[u8]) -> Result<(), PairError> {
        hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, &self.key), &[b"client".as_slice(), &self.transcript].concat(), client_mac)
            .map_err(|_| PairError::WrongPin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: [u8; 32] = [1; 32];
    const H: [u8; 32] = [2; 32];

    #[test]
    fn same_pin_pairs_both_ways() {
        let (client, a) = ClientPairing::start("4321", &C, &H);
        let (host, b, host_mac) = HostPairing::respond("4321", &C, &H, &a).unwrap();
        let client_mac = client.finish(&b, &host_mac).unwrap();
        host.verify(&client_mac).unwrap();
    }

    #[test]
    fn a_wrong_pin_fails_on_the_client_first() {
        let (client, a) = ClientPairing::start("4321", &C, &H);
        let (_, b, host_mac) = HostPairing::respond("1234", &C, &H, &a).unwrap();
        assert_eq!(client.finish(&b, &host_mac), Err(PairError::WrongPin));
    }

    #[test]
    fn a_substituted_certificate_fails_even_with_the_right_pin() {
        // A man in the middle shows the client its own certificate: the fingerprints differ.
        let (client, a) = ClientPairing::start("4321", &C, &[9; 32]);
        let (host, b, host_mac) = HostPairing::respond("4321", &C, &H, &a).unwrap();
        assert_eq!(client.finish(&b, &host_mac), Err(PairError::WrongPin));
        assert_eq!(host.verify(&[0; 32]), Err(PairError::WrongPin));
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        assert!(HostPairing::respond("1", &C, &H, &[1, 2, 3]).is_err());
        let (client, _) = ClientPairing::start("1", &C, &H);
        assert!(client.finish(&[], &[]).is_err());
    }
}
