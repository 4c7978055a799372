//! The punktfunk/1 data-plane header (core/PROTOCOL.md has the table).

use crate::assembly::{Reject, ShardInfo};

pub const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 40;

/// Datagram kinds; only video shards exist so far (audio rides QUIC datagrams).
pub const KIND_VIDEO: u8 = 1;

pub const FLAG_KEYFRAME: u16 = 0x0001;
pub const FLAG_ENCRYPTED: u16 = 0x0002;
/// A P-frame that refers only to pictures from before a loss the client reported: where a
/// receiver that dropped frames since the loss decodes again. Set only for a client that
/// asked for repairs (`StartRequest::repairs`).
pub const FLAG_REPAIR: u16 = 0x0004;
const KNOWN_FLAGS: u16 = FLAG_KEYFRAME | FLAG_ENCRYPTED | FLAG_REPAIR;

/// Per-frame facts that every shard of the frame repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FrameMeta {
    pub len: u32,
    pub flags: u16,
    /// Sender clock (µs) when the frame was submitted, for latency measurement.
    pub timestamp_us: u64,
}

/// One datagram's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub seq: u64,
    pub frame: u32,
    pub block: u16,
    pub blocks: u16,
    pub index: u16,
    pub data: u16,
    pub parity: u16,
    pub shard_len: u16,
    pub meta: FrameMeta,
}

impl Header {
    pub fn write(&self, out: &mut [u8]) {
        let o = &mut out[..HEADER_LEN];
        o[0] = VERSION;
        o[1] = KIND_VIDEO;
        o[2..4].copy_from_slice(&self.meta.flags.to_le_bytes());
        o[4..12].copy_from_slice(&self.seq.to_le_bytes());
        o[12..16].copy_from_slice(&self.frame.to_le_bytes());
        o[16..20].copy_from_slice(&self.meta.len.to_le_bytes());
        o[20..22].copy_from_slice(&self.block.to_le_bytes());
        o[22..24].copy_from_slice(&self.blocks.to_le_bytes());
        o[24..26].copy_from_slice(&self.index.to_le_bytes());
        o[26..28].copy_from_slice(&self.data.to_le_bytes());
        o[28..30].copy_from_slice(&self.parity.to_le_bytes());
        o[30..32].copy_from_slice(&self.shard_len.to_le_bytes());
        o[32..40].copy_from_slice(&self.meta.timestamp_us.to_le_bytes());
    }

    /// Parses and checks everything that can be checked without the stream config.
    pub fn parse(b: &[u8]) -> Result<Self, Reject> {
        let b = b.get(..HEADER_LEN).ok_or(Reject::Invalid)?;
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let flags = u16_at(2);
        if b[0] != VERSION || b[1] != KIND_VIDEO || flags & !KNOWN_FLAGS != 0 {
            return Err(Reject::Invalid);
        }
        let h = Self {
            seq: u64_at(4),
            frame: u32_at(12),
            block: u16_at(20),
            blocks: u16_at(22),
            index: u16_at(24),
            data: u16_at(26),
            parity: u16_at(28),
            shard_len: u16_at(30),
            meta: FrameMeta { len: u32_at(16), flags, timestamp_us: u64_at(32) },
        };
        if h.blocks == 0 || h.block >= h.blocks || h.data == 0 || h.index as u32 >= h.data as u32 + h.parity as u32 {
            return Err(Reject::Invalid);
        }
        Ok(h)
    }

    pub fn shard_info(&self) -> ShardInfo<FrameMeta> {
        ShardInfo {
            frame: self.frame,
            block: self.block,
            blocks: self.blocks,
            index: self.index,
            data: self.data,
            parity: self.parity,
            meta: self.meta,
        }
    }

    /// The AES-GCM nonce: the datagram's unique sequence number, then a direction label.
    pub fn nonce(&self) -> [u8; 12] {
        let mut n = [0u8; 12];
        n[..8].copy_from_slice(&self.seq.to_le_bytes());
        n[8..].copy_from_slice(b"pf1v");
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_rejects_garbage() {
        let h = Header {
            seq: 0x0102_0304_0506_0708,
            frame: 9,
            block: 1,
            blocks: 2,
            index: 3,
            data: 4,
            parity: 1,
            shard_len: 1400,
            meta: FrameMeta { len: 12345, flags: FLAG_KEYFRAME, timestamp_us: 77 },
        };
        let mut b = [0u8; HEADER_LEN];
        h.write(&mut b);
        assert_eq!(Header::parse(&b), Ok(h));
        assert!(Header::parse(&b[..39]).is_err());
        let repair = Header { meta: FrameMeta { flags: FLAG_REPAIR | FLAG_ENCRYPTED, ..h.meta }, ..h };
        let mut r = [0u8; HEADER_LEN];
        repair.write(&mut r);
        assert_eq!(Header::parse(&r), Ok(repair), "a repair's flag is known");
        let mut bad = b;
        bad[0] = 2;
        assert!(Header::parse(&bad).is_err());
        let mut bad = b;
        bad[24] = 5; // index 5 >= 4 + 1
        assert!(Header::parse(&bad).is_err());
        let mut bad = b;
        bad[3] = 0x80; // unknown flag
        assert!(Header::parse(&bad).is_err());
    }
}
