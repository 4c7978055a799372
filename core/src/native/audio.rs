//! punktfunk/1 audio datagrams: one Opus packet each, on the data-plane socket beside video.
//! Host → client carries the session's sound; client → host the microphone. Audio is not
//! FEC-protected (Opus conceals a lost 5 ms packet better than a retransmission could arrive),
//! and always encrypted: AES-128-GCM with the direction's key, nonce `seq ‖ "pf1a"` (sound) or
//! `seq ‖ "pf1m"` (microphone), so it never collides with video's `"pf1v"` under one key.
//!
//! The client's data-plane hello has the same form: kind 4, empty payload, under the
//! microphone's key with nonce `seq ‖ "pf1h"`. Only a client that got the start's keys can
//! make one, and a replayed one is refused, so nobody else can redirect the video.
//!
//! ```text
//! 0 version (1) | 1 kind (2 sound, 3 microphone, 4 hello) | 2..4 flags (0) | 4..12 seq u64 LE
//! 12..20 timestamp_us u64 LE | 20..22 payload length u16 LE | 22.. payload ‖ 16-byte tag
//! ```

use crate::crypto::{Gcm, TAG_LEN};

pub const KIND_SOUND: u8 = 2;
pub const KIND_MIC: u8 = 3;
pub const KIND_HELLO: u8 = 4;
pub const HEADER_LEN: usize = 22;
/// Largest Opus packet carried (120 ms at 510 kbit/s is ~7.7 KB; real packets are far smaller).
pub const MAX_PAYLOAD: usize = 4000;
/// How far back a datagram's sequence may lag the newest one and still be taken.
const WINDOW: u64 = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AudioReject {
    #[error("audio datagram is malformed or of another kind")]
    Malformed,
    #[error("audio datagram failed authentication")]
    Forged,
    #[error("audio datagram is a replay or too late")]
    Stale,
}

/// The kind byte of a data-plane datagram (1 video, 2 sound, 3 microphone, 4 hello).
pub fn kind(datagram: &[u8]) -> Option<u8> {
    (datagram.first() == Some(&1)).then(|| datagram.get(1).copied()).flatten()
}

fn nonce(kind: u8, seq: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&seq.to_le_bytes());
    n[8..].copy_from_slice(match kind {
        KIND_SOUND => b"pf1a",
        KIND_HELLO => b"pf1h",
        _ => b"pf1m",
    });
    n
}

/// Seals Opus packets of one direction.
pub struct AudioSealer {
    gcm: Gcm,
    kind: u8,
    seq: u64,
    out: Vec<u8>,
}

impl AudioSealer {
    pub fn new(key: &[u8; 16], kind: u8) -> Self {
        Self { gcm: Gcm::new(key), kind, seq: 0, out: Vec::with_capacity(HEADER_LEN + MAX_PAYLOAD + TAG_LEN) }
    }

    /// Numbers datagrams from `seq` on: a later process of the stream sending under the same
    /// key starts in a range of its own ([`crate::stream::NativeResume::seq`]).
    pub fn starting_at(mut self, seq: u64) -> Self {
        self.seq = seq;
        self
    }

    /// The datagram for one Opus packet (`None` if the packet is larger than any Opus packet).
    pub fn seal(&mut self, opus: &[u8], timestamp_us: u64) -> Option<&[u8]> {
        if opus.len() > MAX_PAYLOAD {
            return None;
        }
        let seq = self.seq;
        self.seq += 1;
        self.out.clear();
        self.out.extend_from_slice(&[1, self.kind, 0, 0]);
        self.out.extend_from_slice(&seq.to_le_bytes());
        self.out.extend_from_slice(&timestamp_us.to_le_bytes());
        self.out.extend_from_slice(&(opus.len() as u16).to_le_bytes());
        self.out.extend_from_slice(opus);
        let (header, body) = self.out.split_at_mut(HEADER_LEN);
        let tag = self.gcm.seal(nonce(self.kind, seq), header, body);
        self.out.extend_from_slice(&tag);
        Some(&self.out)
    }
}

/// Authenticates and orders one direction's datagrams.
pub struct AudioOpener {
    gcm: Gcm,
    kind: u8,
    newest: Option<u64>,
    /// Sequence numbers seen within [`WINDOW`] of the newest (bit i: newest − i).
    seen: u128,
    seen_hi: u128,
    buf: Vec<u8>,
}

/// One authenticated Opus packet.
#[derive(Debug, PartialEq, Eq)]
pub struct AudioPacket<'a> {
    pub seq: u64,
    pub timestamp_us: u64,
    pub opus: &'a [u8],
}

impl AudioOpener {
    pub fn new(key: &[u8; 16], kind: u8) -> Self {
        Self { gcm: Gcm::new(key), kind, newest: None, seen: 0, seen_hi: 0, buf: Vec::new() }
    }

    /// Takes only datagrams numbered above `seq`, as if it had seen all up to it: a later
    /// process of the stream goes on where the last one's window was, so nothing the last
    /// one took can be replayed into it.
    pub fn after(mut self, seq: Option<u64>) -> Self {
        if seq.is_some() {
            (self.newest, self.seen, self.seen_hi) = (seq, u128::MAX, u128::MAX);
        }
        self
    }

    /// The newest sequence number taken.
    pub fn newest(&self) -> Option<u64> {
        self.newest
    }

    pub fn open(&mut self, d: &[u8]) -> Result<AudioPacket<'_>, AudioReject> {
        if d.len() < HEADER_LEN + TAG_LEN || kind(d) != Some(self.kind) || d[2..4] != [0, 0] {
            return Err(AudioReject::Malformed);
        }
        let seq = u64::from_le_bytes(d[4..12].try_into().expect("8 bytes"));
        let timestamp_us = u64::from_le_bytes(d[12..20].try_into().expect("8 bytes"));
        let len = u16::from_le_bytes([d[20], d[21]]) as usize;
        if len > MAX_PAYLOAD || d.len() != HEADER_LEN + len + TAG_LEN {
            return Err(AudioReject::Malformed);
        }
        if self.already_seen(seq) {
            return Err(AudioReject::Stale);
        }
        self.buf.clear();
        self.buf.extend_from_slice(&d[HEADER_LEN..HEADER_LEN + len]);
        self.gcm.open(nonce(self.kind, seq), &d[..HEADER_LEN], &mut self.buf, &d[HEADER_LEN + len..]).map_err(|_| AudioReject::Forged)?;
        self.mark(seq);
        Ok(AudioPacket { seq, timestamp_us, opus: &self.buf })
    }

    fn bit(&self, back: u64) -> bool {
        if back < 128 { self.seen >> back & 1 == 1 } else { self.seen_hi >> (back - 128) & 1 == 1 }
    }

    fn already_seen(&self, seq: u64) -> bool {
        match self.newest {
            None => false,
            Some(n) if seq > n => false,
            Some(n) => n - seq >= WINDOW || self.bit(n - seq),
        }
    }

    /// Records an authenticated sequence number in the replay window.
    fn mark(&mut self, seq: u64) {
        let n = self.newest.unwrap_or(seq);
        if seq > n || self.newest.is_none() {
            let shift = seq - n;
            // Slide the 256-bit window up by `shift`.
            (self.seen_hi, self.seen) = match shift {
                0 => (self.seen_hi, self.seen),
                1..128 => ((self.seen_hi << shift) | (self.seen >> (128 - shift)), self.seen << shift),
                128..256 => (self.seen << (shift - 128), 0),
                _ => (0, 0),
            };
            self.seen |= 1;
            self.newest = Some(seq);
        } else {
            let back = n - seq;
            if back < 128 { self.seen |= 1 << back } else { self.seen_hi |= 1 << (back - 128) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip_in_and_out_of_order_but_never_twice() {
        let mut tx = AudioSealer::new(&[4; 16], KIND_SOUND);
        let mut rx = AudioOpener::new(&[4; 16], KIND_SOUND);
        let d: Vec<Vec<u8>> = (0..300u64).map(|i| tx.seal(&[i as u8; 60], i * 5000).unwrap().to_vec()).collect();
        assert_eq!(rx.open(&d[1]).unwrap(), AudioPacket { seq: 1, timestamp_us: 5000, opus: &[1; 60] });
        assert_eq!(rx.open(&d[0]).unwrap().seq, 0, "late but within the window");
        assert_eq!(rx.open(&d[1]), Err(AudioReject::Stale), "a replay");
        assert_eq!(rx.open(&d[299]).unwrap().seq, 299);
        assert_eq!(rx.open(&d[2]), Err(AudioReject::Stale), "too old");
        assert_eq!(rx.open(&d[100]).unwrap().seq, 100, "within 256 of the newest");
        assert_eq!(rx.open(&d[100]), Err(AudioReject::Stale));
    }

    #[test]
    fn a_later_process_numbers_on_and_takes_nothing_the_last_one_took() {
        let mut tx = AudioSealer::new(&[4; 16], KIND_MIC);
        let d: Vec<Vec<u8>> = (0..10u64).map(|i| tx.seal(&[i as u8; 8], i).unwrap().to_vec()).collect();
        let mut last = AudioOpener::new(&[4; 16], KIND_MIC);
        for datagram in &d[..6] {
            last.open(datagram).unwrap();
        }
        // The next process's window starts where the last one's was: replays of what it
        // took are refused, what came after is taken.
        let mut next = AudioOpener::new(&[4; 16], KIND_MIC).after(last.newest());
        for datagram in &d[..6] {
            assert_eq!(next.open(datagram), Err(AudioReject::Stale));
        }
        assert_eq!(next.open(&d[7]).unwrap().seq, 7);
        assert_eq!(next.open(&d[6]).unwrap().seq, 6, "a late one past the last window is still taken");
        // A sender of a later process numbers in its own range.
        let mut later = AudioSealer::new(&[4; 16], KIND_MIC).starting_at(1 << 48);
        assert_eq!(next.open(later.seal(b"x", 0).unwrap()).unwrap().seq, 1 << 48);
    }

    #[test]
    fn wrong_key_kind_or_tampering_is_refused() {
        let mut tx = AudioSealer::new(&[4; 16], KIND_MIC);
        let d = tx.seal(b"opus", 1).unwrap().to_vec();
        assert_eq!(AudioOpener::new(&[5; 16], KIND_MIC).open(&d), Err(AudioReject::Forged));
        assert_eq!(AudioOpener::new(&[4; 16], KIND_SOUND).open(&d), Err(AudioReject::Malformed));
        let mut bad = d.clone();
        bad[HEADER_LEN] ^= 1;
        assert_eq!(AudioOpener::new(&[4; 16], KIND_MIC).open(&bad), Err(AudioReject::Forged));
        assert!(AudioOpener::new(&[4; 16], KIND_MIC).open(&d).is_ok());
        assert_eq!(kind(&d), Some(KIND_MIC));
    }

    proptest! {
        #[test]
        fn garbage_is_refused_without_panicking(d in prop::collection::vec(any::<u8>(), 0..200)) {
            prop_assert!(AudioOpener::new(&[4; 16], KIND_SOUND).open(&d).is_err());
        }
    }
}
