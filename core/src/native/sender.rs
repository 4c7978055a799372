//! punktfunk/1 sender: frame → FEC blocks → authenticated datagrams.

use super::config::{ConfigError, MAX_BURST_PARITY, StreamConfig};
use super::header::{FLAG_ENCRYPTED, FLAG_KEYFRAME, FLAG_REPAIR, FrameMeta, HEADER_LEN, Header};
use crate::crypto::{Gcm, TAG_LEN};
use crate::datagrams::Datagrams;
use crate::fec::gf65536::Encoder;
use crate::stats::Stats;

/// One frame to send.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    pub id: u32,
    pub keyframe: bool,
    /// Repairs a loss the client reported ([`FLAG_REPAIR`]).
    pub repair: bool,
    /// Sender clock in µs at submission; the receiver reports latency against it.
    pub timestamp_us: u64,
    pub data: &'a [u8],
}

pub struct Sender {
    cfg: StreamConfig,
    gcm: Option<Gcm>,
    fec: Encoder,
    seq: u64,
    arena: Vec<u8>,
    pub stats: Stats,
}

impl Sender {
    pub fn new(cfg: StreamConfig) -> Result<Self, ConfigError> {
        cfg.validate()?;
        Ok(Self { gcm: cfg.key.as_ref().map(Gcm::new), cfg, fec: Encoder::default(), seq: 0, arena: Vec::new(), stats: Stats::default() })
    }

    /// Numbers datagrams from `seq` on: a later process of the stream sending under the same
    /// key starts in a range of its own ([`crate::stream::NativeResume::seq`]).
    pub fn starting_at(mut self, seq: u64) -> Self {
        self.seq = seq;
        self
    }

    pub fn config(&self) -> &StreamConfig {
        &self.cfg
    }

    /// The parity for the next frames, within the ceiling agreed with the receiver.
    pub fn set_fec_percent(&mut self, percent: u16) {
        self.cfg.max_fec_percent = self.cfg.parity_ceiling();
        self.cfg.fec_percent = percent.min(self.cfg.max_fec_percent);
    }

    /// Every block's least parity from the next frame on, up to [`MAX_BURST_PARITY`]: a link
    /// that loses `n` datagrams in a row takes a block with fewer than `n` parity shards
    /// whole, however small the frame (with FEC off, nothing changes).
    pub fn set_min_parity(&mut self, parity: u16) {
        self.cfg.min_parity = parity.min(MAX_BURST_PARITY);
    }

    /// Packetizes one frame into an internal buffer that the next call reuses.
    pub fn packetize(&mut self, frame: &Frame) -> Result<Datagrams<'_>, ConfigError> {
        let cfg = self.cfg;
        if frame.data.len() > cfg.max_frame_len {
            self.stats.frames_dropped += 1;
            return Err(ConfigError::FrameTooLarge(frame.data.len()));
        }
        let stride = cfg.datagram_len();
        let blocks = cfg.blocks_for(frame.data.len());
        let total: usize = (0..blocks)
            .map(|b| {
                let s = cfg.block(cfg.block_data(frame.data.len(), b));
                s.data + s.parity
            })
            .sum();
        if self.arena.len() < total * stride {
            self.arena.resize(total * stride, 0);
        }
        let meta = FrameMeta {
            len: frame.data.len() as u32,
            flags: if frame.keyframe { FLAG_KEYFRAME } else { 0 }
                | if frame.repair { FLAG_REPAIR } else { 0 }
                | if self.gcm.is_some() { FLAG_ENCRYPTED } else { 0 },
            timestamp_us: frame.timestamp_us,
        };
        let mut pos = 0;
        let mut chunks = frame.data.chunks(cfg.shard_len);
        for b in 0..blocks {
            let shape = cfg.block(cfg.block_data(frame.data.len(), b));
            let region = &mut self.arena[pos * stride..(pos + shape.data + shape.parity) * stride];
            let (data, parity) = region.split_at_mut(shape.data * stride);
            for d in data.chunks_exact_mut(stride) {
                let payload = &mut d[HEADER_LEN..HEADER_LEN + cfg.shard_len];
                let chunk = chunks.next().unwrap_or(&[]);
                payload[..chunk.len()].copy_from_slice(chunk);
                payload[chunk.len()..].fill(0);
            }
            let payloads = data.chunks_exact(stride).map(|d| &d[HEADER_LEN..HEADER_LEN + cfg.shard_len]);
            self.fec
                .encode(payloads, shape.parity, cfg.shard_len, |j, p| {
                    parity[j * stride + HEADER_LEN..j * stride + HEADER_LEN + cfg.shard_len].copy_from_slice(p);
                })
                .map_err(|_| ConfigError::Invalid("FEC shape"))?;
            let count = shape.data + shape.parity;
            for (i, d) in self.arena[pos * stride..(pos + count) * stride].chunks_exact_mut(stride).enumerate() {
                let h = Header {
                    seq: self.seq,
                    frame: frame.id,
                    block: b as u16,
                    blocks: blocks as u16,
                    index: i as u16,
                    data: shape.data as u16,
                    parity: shape.parity as u16,
                    shard_len: cfg.shard_len as u16,
                    meta,
                };
                self.seq += 1;
                h.write(d);
                if let Some(gcm) = &self.gcm {
                    let (head, rest) = d.split_at_mut(HEADER_LEN);
                    let (body, tag) = rest.split_at_mut(cfg.shard_len);
                    tag[..TAG_LEN].copy_from_slice(&gcm.seal(h.nonce(), head, body));
                }
            }
            pos += shape.data + shape.parity;
            self.stats.fec_blocks += 1;
        }
        self.stats.frames_sent += 1;
        self.stats.packets_sent += total as u64;
        Ok(Datagrams::new(&self.arena[..total * stride], stride))
    }
}
