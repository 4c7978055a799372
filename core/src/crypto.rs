//! Stream ciphers: AES-128-GCM (GameStream control and video, punktfunk/1) and AES-128-CBC
//! (GameStream audio), on aws-lc-rs.
//!
//! Backend chosen by measurement (BENCHMARKS.md): aws-lc-rs runs AES-GCM with VAES/AVX-512
//! here, several times RustCrypto's `aes-gcm`, and ahead of ring. rustls uses it too, so the
//! host links one crypto library.

use aws_lc_rs::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{AES_128, DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext, UnboundCipherKey};
use aws_lc_rs::iv::FixedLength;

pub const KEY_LEN: usize = 16;
pub const TAG_LEN: usize = 16;
pub const NONCE_LEN: usize = 12;

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("authentication failed")]
    Auth,
    #[error("ciphertext length or padding is invalid")]
    Length,
}

/// AES-128-GCM with caller-chosen nonces and detached tags.
pub struct Gcm {
    key: LessSafeKey,
}

impl Gcm {
    pub fn new(key: &[u8; KEY_LEN]) -> Self {
        let key = UnboundKey::new(&AES_128_GCM, key).expect("16-byte key is valid for AES-128");
        Self { key: LessSafeKey::new(key) }
    }

    /// Encrypts `in_out` in place and returns the tag. The nonce must never repeat for a key.
    pub fn seal(&self, nonce: [u8; NONCE_LEN], aad: &[u8], in_out: &mut [u8]) -> [u8; TAG_LEN] {
        let tag = self
            .key
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), in_out)
            .expect("AES-GCM seal fails only past 64 GiB per message");
        tag.as_ref().try_into().expect("GCM tags are 16 bytes")
    }

    /// Decrypts `in_out` in place if the tag matches; on failure its content is unspecified.
    pub fn open(&self, nonce: [u8; NONCE_LEN], aad: &[u8], in_out: &mut [u8], tag: &[u8]) -> Result<(), CryptoError> {
        self.key
            .open_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), tag, in_out)
            .map(|_| ())
            .map_err(|_| CryptoError::Auth)
    }
}

/// GameStream audio: AES-128-CBC with PKCS#7, a fresh IV per packet derived from the key id
/// and the RTP sequence number (core/GAMESTREAM.md §9.4).
pub struct AudioCipher {
    enc: EncryptingKey,
    dec: DecryptingKey,
    key_id: u32,
}

impl AudioCipher {
    pub fn new(key: &[u8; KEY_LEN], key_id: u32) -> Self {
        let unbound = || UnboundCipherKey::new(&AES_128, key).expect("16-byte key is valid for AES-128");
        Self {
            enc: EncryptingKey::cbc(unbound()).expect("CBC is supported"),
            dec: DecryptingKey::cbc(unbound()).expect("CBC is supported"),
            key_id,
        }
    }

    fn iv(&self, seq: u16) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv[..4].copy_from_slice(&self.key_id.wrapping_add(u32::from(seq)).to_be_bytes());
        iv
    }

    /// The ciphertext length for a plaintext of `len` bytes (PKCS#7 always adds 1..=16).
    pub fn sealed_len(len: usize) -> usize {
        (len / 16 + 1) * 16
    }

    /// Encrypts `plain` into `out` (which must hold [`Self::sealed_len`] bytes); returns that length.
    pub fn seal(&self, seq: u16, plain: &[u8], out: &mut [u8]) -> Result<usize, CryptoError> {
        let n = Self::sealed_len(plain.len());
        let out = out.get_mut(..n).ok_or(CryptoError::Length)?;
        out[..plain.len()].copy_from_slice(plain);
        out[plain.len()..].fill((n - plain.len()) as u8);
        let ctx = EncryptionContext::Iv128(FixedLength::from(self.iv(seq)));
        self.enc.less_safe_encrypt(out, ctx).map_err(|_| CryptoError::Length)?;
        Ok(n)
    }

    /// Decrypts in place and returns the plaintext length after removing the padding.
    pub fn open(&self, seq: u16, in_out: &mut [u8]) -> Result<usize, CryptoError> {
        if in_out.is_empty() || !in_out.len().is_multiple_of(16) {
            return Err(CryptoError::Length);
        }
        let ctx = DecryptionContext::Iv128(FixedLength::from(self.iv(seq)));
        let plain = self.dec.decrypt(in_out, ctx).map_err(|_| CryptoError::Length)?;
        let pad = *plain.last().ok_or(CryptoError::Length)? as usize;
        if pad == 0 || pad > 16 || plain[plain.len() - pad..].iter().any(|&b| b as usize != pad) {
            return Err(CryptoError::Length);
        }
        Ok(plain.len() - pad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcm_round_trip_and_tamper_detection() {
        let g = Gcm::new(&[7; 16]);
        let mut buf = *b"hello moonlight!";
        let tag = g.seal([1; 12], b"hdr", &mut buf);
        assert_ne!(&buf, b"hello moonlight!");
        let mut copy = buf;
        g.open([1; 12], b"hdr", &mut copy, &tag).unwrap();
        assert_eq!(&copy, b"hello moonlight!");
        let mut copy = buf;
        assert_eq!(g.open([1; 12], b"hdX", &mut copy, &tag), Err(CryptoError::Auth));
        buf[0] ^= 1;
        assert_eq!(g.open([1; 12], b"hdr", &mut buf, &tag), Err(CryptoError::Auth));
    }

    #[test]
    fn gcm_matches_an_independent_implementation() {
        use aes_gcm::aead::{AeadInPlace, KeyInit};
        let key = [0x42u8; 16];
        let nonce = [9u8; 12];
        let mut ours = vec![0xA5u8; 1000];
        let tag = Gcm::new(&key).seal(nonce, b"", &mut ours);
        let mut theirs = vec![0xA5u8; 1000];
        let t = aes_gcm::Aes128Gcm::new(&key.into()).encrypt_in_place_detached(&nonce.into(), b"", &mut theirs).unwrap();
        assert_eq!(ours, theirs);
        assert_eq!(&tag[..], &t[..]);
    }

    #[test]
    fn audio_cbc_pads_and_derives_iv_from_key_id_and_sequence() {
        let c = AudioCipher::new(&[3; 16], 0xFFFF_FFFF);
        let plain = [0x11u8; 60];
        let mut out = [0u8; 64];
        assert_eq!(c.seal(1, &plain, &mut out), Ok(64));
        // IV is BE32(keyid + seq) with wrapping: 0xFFFFFFFF + 1 = 0, i.e. an all-zero IV.
        let zero_iv = AudioCipher::new(&[3; 16], 0);
        let mut again = [0u8; 64];
        zero_iv.seal(0, &plain, &mut again).unwrap();
        assert_eq!(out, again);
        let n = c.open(1, &mut out).unwrap();
        assert_eq!(&out[..n], &plain[..]);
        let mut bad = [0u8; 17];
        assert_eq!(c.open(1, &mut bad), Err(CryptoError::Length));
    }
}
