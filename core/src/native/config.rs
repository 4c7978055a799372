//! The negotiated data-plane parameters, shared by sender and receiver.

use crate::fec::gf65536;

/// Agreed over the control connection before the data plane starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamConfig {
    /// Payload bytes per datagram (even; 1400 keeps a datagram under a 1500-byte MTU
    /// with IPv4, UDP, our header and the tag... use 1200 for IPv6 paths with tunnels).
    pub shard_len: usize,
    /// Data shards per FEC block; a frame larger than this spans several blocks.
    pub max_data_shards: usize,
    /// Parity = ceil(data · pct / 100) per block, at least `min_parity` when pct > 0.
    pub fec_percent: u16,
    /// The most parity a sender may move to as the link's loss changes: receivers accept
    /// any parity up to it and size their buffers for it. At or below `fec_percent` the
    /// parity is fixed.
    pub max_fec_percent: u16,
    pub min_parity: u16,
    /// Largest frame the receiver accepts (bounds its memory with `frames_in_flight`).
    pub max_frame_len: usize,
    pub frames_in_flight: usize,
    /// AES-128-GCM key for this direction, if encrypted. Nonces are the datagram sequence
    /// numbers of one `Sender`, which start at 0: a key must never be given to a second
    /// `Sender` (renegotiation derives a new key).
    pub key: Option<[u8; 16]>,
}

/// The most parity shards a sender gives every block of an adaptive stream for a link that
/// loses bursts ([`super::sender::Sender::set_min_parity`]): receivers accept blocks with up
/// to this many, whatever their size.
pub const MAX_BURST_PARITY: u16 = crate::fec_tuner::MAX_BURST_PARITY as u16;

/// Datagram sequence numbers come in ranges of 2^this: a stream's first sender numbers from
/// 0, a later process of the same stream (a login's next stage, under the same key) from the
/// start of a range of its own, so no nonce repeats under the key and the receiver tells a
/// new sender from a gap.
pub const SEQ_RANGE_BITS: u32 = 48;

/// The most reassembly memory a config may ask of a receiver.
pub const MAX_RECEIVER_BYTES: usize = 1 << 30;

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            shard_len: 1400,
            max_data_shards: 1024,
            fec_percent: 20,
            max_fec_percent: 0,
            min_parity: 2,
            max_frame_len: 32 << 20,
            frames_in_flight: 4,
            key: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("stream config is out of range: {0}")]
    Invalid(&'static str),
    #[error("frame of {0} bytes exceeds the negotiated maximum")]
    FrameTooLarge(usize),
}

/// One block of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockShape {
    pub data: usize,
    pub parity: usize,
}

impl StreamConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |why| Err(ConfigError::Invalid(why));
        if self.shard_len < 2 || !self.shard_len.is_multiple_of(2) || self.shard_len > 65_000 {
            return bad("shard_len must be even and in 2..=65000");
        }
        if self.max_data_shards == 0 || self.max_data_shards > 32_768 {
            return bad("max_data_shards must be in 1..=32768");
        }
        if self.frames_in_flight == 0 || self.frames_in_flight > 64 {
            return bad("frames_in_flight must be in 1..=64");
        }
        if self.max_frame_len == 0 || self.max_frame_len > u32::MAX as usize {
            return bad("max_frame_len must fit 32 bits");
        }
        if self.blocks_for(self.max_frame_len) > u16::MAX as usize {
            return bad("max_frame_len needs too many blocks");
        }
        let full = self.largest_block(self.max_data_shards);
        if !gf65536::supports(full.data, full.parity, self.shard_len) {
            return bad("FEC shape not supported by reed-solomon-simd");
        }
        if self.receiver_bytes() > MAX_RECEIVER_BYTES {
            return bad("frames_in_flight x max_frame_len needs more than 1 GiB to reassemble");
        }
        Ok(())
    }

    /// Data shards a frame of `len` bytes occupies (an empty frame still sends one).
    pub fn shards_for(&self, len: usize) -> usize {
        len.div_ceil(self.shard_len).max(1)
    }

    pub fn blocks_for(&self, len: usize) -> usize {
        self.shards_for(len).div_ceil(self.max_data_shards)
    }

    /// The shape of a block holding `data` data shards, at the parity now.
    pub fn block(&self, data: usize) -> BlockShape {
        self.block_at(data, self.fec_percent)
    }

    /// The shape of a block of `data` data shards at the most parity the sender may send
    /// (a block with FEC at all may carry [`MAX_BURST_PARITY`]).
    pub fn largest_block(&self, data: usize) -> BlockShape {
        let b = self.block_at(data, self.parity_ceiling());
        let burst = if b.parity > 0 { MAX_BURST_PARITY as usize } else { 0 };
        BlockShape { parity: b.parity.max(burst), ..b }
    }

    /// The most parity, in percent, a block may carry.
    pub fn parity_ceiling(&self) -> u16 {
        self.fec_percent.max(self.max_fec_percent)
    }

    fn block_at(&self, data: usize, percent: u16) -> BlockShape {
        let parity = match percent {
            0 => 0,
            p => (data * p as usize).div_ceil(100).max(self.min_parity as usize),
        };
        BlockShape { data, parity }
    }

    /// Blocks are filled to `max_data_shards` in order; the last takes the remainder.
    pub fn block_data(&self, len: usize, block: usize) -> usize {
        let shards = self.shards_for(len);
        (shards - block * self.max_data_shards).min(self.max_data_shards)
    }

    /// Most datagrams one frame can take, for sizing buffers.
    pub fn max_datagrams(&self) -> usize {
        let blocks = self.blocks_for(self.max_frame_len);
        blocks * {
            let b = self.largest_block(self.max_data_shards);
            b.data + b.parity
        }
    }

    /// Reassembly memory a receiver may hold: `frames_in_flight` frames plus the spare
    /// blocks it keeps for reuse (`2 × blocks`), each block at its largest shape.
    pub fn receiver_bytes(&self) -> usize {
        let blocks = self.blocks_for(self.max_frame_len);
        let full = self.largest_block(self.max_data_shards);
        (self.frames_in_flight * blocks + 2 * blocks) * (full.data + full.parity) * self.shard_len
    }

    pub fn datagram_len(&self) -> usize {
        super::header::HEADER_LEN + self.shard_len + if self.key.is_some() { crate::crypto::TAG_LEN } else { 0 }
    }
}
