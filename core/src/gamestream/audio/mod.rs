//! GameStream audio over RTP (core/GAMESTREAM.md §9): one Opus packet per datagram, optional
//! AES-128-CBC, and a fixed 4+2 Reed-Solomon block over the (encrypted) payloads.

use crate::crypto::AudioCipher;
use crate::fec::gf256::Code;
use crate::stats::Stats;

mod depacketizer;
pub use depacketizer::{AudioDepacketizer, AudioEvent};

pub const RTP_HEADER_LEN: usize = 12;
pub const FEC_HEADER_LEN: usize = 12;
const PT_DATA: u8 = 97;
const PT_FEC: u8 = 127;
const DATA_PER_BLOCK: usize = 4;
const PARITY_PER_BLOCK: usize = 2;
/// The client's receive buffer.
pub const MAX_DATAGRAM: usize = 1400;
const MAX_PAYLOAD: usize = MAX_DATAGRAM - RTP_HEADER_LEN - FEC_HEADER_LEN;
/// Packets a block may start ahead of the next expected one (320 ms at 5 ms packets).
const WINDOW: u16 = 64;
/// Consecutive packets beyond the window after which the receiver follows them.
const RESYNC_AFTER: u16 = 8;

/// The audio parity matrix clients decode with (not the Cauchy one).
const PARITY_ROWS: [[u8; 4]; 2] = [[0x77, 0x40, 0x38, 0x0e], [0xc7, 0xa7, 0x0d, 0x6c]];

fn audio_code() -> Code {
    Code::with_matrix(&[&PARITY_ROWS[0], &PARITY_ROWS[1]]).expect("fixed 2x4 matrix is valid")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AudioError {
    #[error("audio packet of {0} bytes does not fit a 1400-byte datagram")]
    TooLarge(usize),
    #[error("audio datagram is malformed")]
    Malformed,
}

fn rtp_header(out: &mut [u8], pt: u8, seq: u16, ts: u32) {
    out[..RTP_HEADER_LEN].fill(0);
    out[0] = 0x80;
    out[1] = pt;
    out[2..4].copy_from_slice(&seq.to_be_bytes());
    out[4..8].copy_from_slice(&ts.to_be_bytes());
}

/// Where an audio packetizer's counters stand. The RTP sequence number is also what the
/// AES-CBC IV is made from: a packetizer resumed here under the same key goes on with the
/// next one instead of starting again at zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AudioPosition {
    pub seq: u16,
    pub timestamp: u32,
}

/// Turns Opus packets into audio datagrams, adding two FEC datagrams after every fourth.
pub struct AudioPacketizer {
    cipher: Option<AudioCipher>,
    code: Code,
    packet_ms: u32,
    seq: u16,
    timestamp: u32,
    /// The current block's payloads (ciphertext when encrypting), `block_len` bytes each.
    block: [[u8; MAX_PAYLOAD]; DATA_PER_BLOCK],
    block_len: Option<usize>,
    out: Vec<u8>,
    pub stats: Stats,
}

impl AudioPacketizer {
    /// `packet_ms` is the negotiated packet duration (5 or 10 ms); `key` = (rikey, rikeyid)
    /// when audio encryption is on.
    pub fn new(packet_ms: u32, key: Option<([u8; 16], u32)>) -> Self {
        Self {
            cipher: key.map(|(k, id)| AudioCipher::new(&k, id)),
            code: audio_code(),
            packet_ms,
            seq: 0,
            timestamp: 0,
            block: [[0; MAX_PAYLOAD]; DATA_PER_BLOCK],
            block_len: None,
            out: vec![0; MAX_DATAGRAM],
            stats: Stats::default(),
        }
    }

    /// A packetizer that goes on from `position` (the same stream's audio started again).
    /// A block it resumes in the middle of goes out without parity.
    pub fn resume(packet_ms: u32, key: Option<([u8; 16], u32)>, position: AudioPosition) -> Self {
        Self { seq: position.seq, timestamp: position.timestamp, ..Self::new(packet_ms, key) }
    }

    /// Its counters now, for [`AudioPacketizer::resume`].
    pub fn position(&self) -> AudioPosition {
        AudioPosition { seq: self.seq, timestamp: self.timestamp }
    }

    /// Whether the next packet starts a FEC block (a sender pausing for silence stops here).
    pub fn at_block_start(&self) -> bool {
        (self.seq as usize).is_multiple_of(DATA_PER_BLOCK)
    }

    /// Sends one Opus packet: `send` is called with the data datagram and, at the end of a
    /// block, with the two FEC datagrams.
    pub fn push(&mut self, opus: &[u8], mut send: impl FnMut(&[u8])) -> Result<(), AudioError> {
        let len = match &self.cipher {
            Some(_) => AudioCipher::sealed_len(opus.len()),
            None => opus.len(),
        };
        if len > MAX_PAYLOAD {
            return Err(AudioError::TooLarge(opus.len()));
        }
        let (seq, ts) = (self.seq, self.timestamp);
        let slot = seq as usize % DATA_PER_BLOCK;
        rtp_header(&mut self.out, PT_DATA, seq, ts);
        let payload = &mut self.out[RTP_HEADER_LEN..RTP_HEADER_LEN + len];
        match &self.cipher {
            Some(c) => {
                c.seal(seq, opus, payload).map_err(|_| AudioError::TooLarge(opus.len()))?;
            }
            None => payload.copy_from_slice(opus),
        }
        self.block[slot][..len].copy_from_slice(payload);
        // FEC needs equal lengths (CBR Opus); a block that varies goes out without parity.
        self.block_len = match (slot, self.block_len) {
            (0, _) => Some(len),
            (_, Some(l)) if l == len => Some(l),
            _ => None,
        };
        send(&self.out[..RTP_HEADER_LEN + len]);
        self.stats.packets_sent += 1;
        self.seq = seq.wrapping_add(1);
        self.timestamp = ts.wrapping_add(self.packet_ms);

        if slot == DATA_PER_BLOCK - 1
            && let Some(l) = self.block_len
        {
            let base_seq = seq.wrapping_sub(3);
            let base_ts = ts.wrapping_sub(3 * self.packet_ms);
            let inputs: Vec<&[u8]> = self.block.iter().map(|b| &b[..l]).collect();
            let mut parity = [[0u8; MAX_PAYLOAD]; PARITY_PER_BLOCK];
            let mut outs: Vec<&mut [u8]> = parity.iter_mut().map(|p| &mut p[..l]).collect();
            self.code.encode(&inputs, &mut outs);
            for (j, p) in parity.iter().enumerate() {
                let o = &mut self.out;
                rtp_header(o, PT_FEC, base_seq.wrapping_add((DATA_PER_BLOCK + j) as u16), 0);
                let h = &mut o[RTP_HEADER_LEN..RTP_HEADER_LEN + FEC_HEADER_LEN];
                h.fill(0);
                h[0] = j as u8;
                h[1] = PT_DATA;
                h[2..4].copy_from_slice(&base_seq.to_be_bytes());
                h[4..8].copy_from_slice(&base_ts.to_be_bytes());
                let at = RTP_HEADER_LEN + FEC_HEADER_LEN;
                o[at..at + l].copy_from_slice(&p[..l]);
                send(&o[..at + l]);
                self.stats.packets_sent += 1;
            }
            self.stats.fec_blocks += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The datagrams for `packets` 60-byte Opus packets (packet n filled with n), FEC included.
    fn wire(packets: u8, key: Option<([u8; 16], u32)>) -> Vec<Vec<u8>> {
        let mut tx = AudioPacketizer::new(5, key);
        let mut wire = Vec::new();
        for n in 0..packets {
            tx.push(&[n; 60], |d| wire.push(d.to_vec())).unwrap();
        }
        wire
    }

    /// Received packets (sequence, payload, recovered) and the sequences reported lost.
    type Received = (Vec<(u16, Vec<u8>, bool)>, Vec<u16>);

    fn run(key: Option<([u8; 16], u32)>, drop: impl Fn(usize) -> bool) -> Received {
        let mut rx = AudioDepacketizer::new(5, key);
        let wire = wire(16, key);
        assert_eq!(wire.len(), 16 + 8, "two FEC packets per four data packets");
        let (mut got, mut lost) = (Vec::new(), Vec::new());
        for (i, d) in wire.iter().enumerate().filter(|(i, _)| !drop(*i)) {
            let _ = i;
            rx.push(d, |e| match e {
                AudioEvent::Packet { seq, opus, recovered, .. } => got.push((seq, opus.to_vec(), recovered)),
                AudioEvent::Lost { seq } => lost.push(seq),
            })
            .unwrap();
        }
        (got, lost)
    }

    #[test]
    fn two_losses_per_block_are_recovered_encrypted_or_not() {
        for key in [None, Some(([9u8; 16], 77))] {
            // Wire order per block: d0 d1 d2 d3 f0 f1 (6 datagrams); drop d1 and d2.
            let (got, lost) = run(key, |i| i % 6 == 1 || i % 6 == 2);
            assert!(lost.is_empty());
            assert_eq!(got.len(), 16);
            for (n, (seq, opus, recovered)) in got.iter().enumerate() {
                assert_eq!(*seq as usize, n);
                assert_eq!(opus, &vec![n as u8; 60]);
                assert_eq!(*recovered, n % 4 == 1 || n % 4 == 2);
            }
        }
    }

    #[test]
    fn three_losses_in_a_block_are_reported() {
        let (got, lost) = run(None, |i| (6..9).contains(&i));
        assert_eq!(lost, [4, 5, 6]);
        assert_eq!(got.len(), 13);
    }

    #[test]
    fn a_block_lost_whole_is_reported_and_old_packets_do_not_rewind() {
        // Block 1 (datagrams 6..12) never arrives; then a stale packet of block 0 shows up.
        let mut rx = AudioDepacketizer::new(5, None);
        let wire = wire(12, None);
        let mut events = Vec::new();
        let mut feed = |d: &[u8], rx: &mut AudioDepacketizer| {
            rx.push(d, |e| {
                events.push(match e {
                    AudioEvent::Packet { seq, .. } => (seq, true),
                    AudioEvent::Lost { seq } => (seq, false),
                })
            })
            .unwrap()
        };
        for d in wire[..6].iter().chain(&wire[12..]) {
            feed(d, &mut rx);
        }
        feed(&wire[1], &mut rx);
        let want: Vec<(u16, bool)> = (0..12).map(|s| (s, !(4..8).contains(&s))).collect();
        assert_eq!(events, want);
        assert_eq!(rx.stats.packets_late, 1);
    }

    #[test]
    fn a_forged_jump_is_ignored_but_a_sustained_one_is_followed() {
        let mut rx = AudioDepacketizer::new(5, None);
        let wire = wire(8, None);
        let with_seq = |seq: u16| {
            let mut d = wire[0].clone();
            d[2..4].copy_from_slice(&seq.to_be_bytes());
            d
        };
        let seqs = std::cell::RefCell::new(Vec::new());
        let feed = |rx: &mut AudioDepacketizer, d: &[u8]| {
            rx.push(d, |e| {
                if let AudioEvent::Packet { seq, .. } = e {
                    seqs.borrow_mut().push(seq)
                }
            })
        };
        for d in &wire[..6] {
            feed(&mut rx, d).unwrap();
        }
        assert!(feed(&mut rx, &with_seq(0x7ff0)).is_err(), "one forged jump is refused");
        for d in &wire[6..] {
            feed(&mut rx, d).unwrap();
        }
        assert_eq!(*seqs.borrow(), (0..8).collect::<Vec<u16>>());
        // A sender that really jumped: after RESYNC_AFTER packets the receiver follows.
        let results: Vec<bool> = (0..12).map(|k| feed(&mut rx, &with_seq(0x7ff0 + k)).is_ok()).collect();
        assert_eq!(results.iter().filter(|&&ok| !ok).count(), RESYNC_AFTER as usize - 1);
        let seqs = seqs.borrow();
        assert_eq!(&seqs[seqs.len() - 4..], &[0x7ff8, 0x7ff9, 0x7ffa, 0x7ffb]);
    }

    #[test]
    fn fec_packet_layout_matches_the_reference() {
        let mut tx = AudioPacketizer::new(5, None);
        let mut wire = Vec::new();
        for n in 0..4u8 {
            tx.push(&[n; 8], |d| wire.push(d.to_vec())).unwrap();
        }
        let f = &wire[4];
        assert_eq!(&f[..2], &[0x80, 127]);
        assert_eq!(f[12], 0);
        assert_eq!(f[13], 97);
        assert_eq!(&f[14..16], &[0, 0]);
        assert_eq!(f.len(), 12 + 12 + 8);
        assert_eq!(u32::from_be_bytes(wire[3][4..8].try_into().unwrap()), 15, "timestamps in ms");
    }
}
