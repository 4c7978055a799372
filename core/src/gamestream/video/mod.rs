//! GameStream video over RTP (core/GAMESTREAM.md §8): packetizer for the host, depacketizer that
//! behaves like moonlight-common-c's RtpVideoQueue for tests and the loss harness.

use crate::crypto::{Gcm, TAG_LEN};
use crate::datagrams::Datagrams;
use crate::fec::gf256::{Codes, MAX_SHARDS};
use crate::stats::Stats;

mod depacketizer;
pub use depacketizer::{VideoDepacketizer, VideoEvent, parse_header};

/// RTP header (16, with the extension area) plus NV video header (16).
pub const HEADER_LEN: usize = 32;
/// Prefix of an encrypted datagram: IV (12), frame number (4), tag (16).
pub const ENCRYPTION_PREFIX: usize = 32;
/// The frame header in front of the bitstream (core/GAMESTREAM.md §8.3).
pub const FRAME_HEADER_LEN: usize = 8;
/// At most 4 FEC blocks per frame (a 2-bit field).
pub const MAX_BLOCKS: usize = 4;
/// Data shards per block fit a 10-bit field.
const MAX_DATA_SHARDS: usize = 1023;

const FLAG_PIC_DATA: u8 = 0x01;
const FLAG_EOF: u8 = 0x02;
const FLAG_SOF: u8 = 0x04;
const MULTI_FEC_FLAGS: u8 = 0x10;

/// The negotiated video stream parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VideoConfig {
    /// `x-nv-video[0].packetSize` from ANNOUNCE (a multiple of 16, already reduced for
    /// encryption). Each shard is `packet_size + 16` bytes.
    pub packet_size: usize,
    /// FEC percentage (parity = ceil(data · pct / 100) per block).
    pub fec_percent: u8,
    /// `minRequiredFecPackets` from ANNOUNCE.
    pub min_parity: u8,
    /// AES-128-GCM key (`rikey`) when video encryption was negotiated.
    pub key: Option<[u8; 16]>,
}

impl VideoConfig {
    pub fn shard_len(&self) -> usize {
        self.packet_size + 16
    }

    fn payload_len(&self) -> usize {
        self.packet_size - 16
    }

    fn prefix(&self) -> usize {
        if self.key.is_some() { ENCRYPTION_PREFIX } else { 0 }
    }

    /// Length of every datagram on the wire.
    pub fn datagram_len(&self) -> usize {
        self.prefix() + self.shard_len()
    }

    fn validate(&self) -> Result<(), VideoError> {
        if self.packet_size < 32 || !self.packet_size.is_multiple_of(16) || self.packet_size > 65_000 {
            return Err(VideoError::PacketSize(self.packet_size));
        }
        Ok(())
    }
}

/// What kind of frame the client is told it gets (frame header byte 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameType {
    P = 1,
    Idr = 2,
    IntraRefresh = 4,
    AfterInvalidation = 5,
}

/// One encoded frame to send.
#[derive(Clone, Copy, Debug)]
pub struct VideoFrame<'a> {
    /// First frame is 1, then +1 per frame.
    pub index: u32,
    /// 90 kHz capture time.
    pub rtp_timestamp: u32,
    pub frame_type: FrameType,
    /// Host capture-to-send latency in 0.1 ms (0 = unknown).
    pub latency_100us: u16,
    /// Annex B H.264/HEVC or AV1 OBUs.
    pub bitstream: &'a [u8],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VideoError {
    #[error("packet size {0} is not a multiple of 16 in 32..=65000")]
    PacketSize(usize),
    #[error("frame of {0} bytes needs more than 4 blocks of 1023 shards")]
    FrameTooLarge(usize),
}

/// One FEC block of a frame: a run of data shards and how much parity protects it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct BlockPlan {
    first_shard: usize,
    data: usize,
    parity: usize,
    /// The percentage advertised in `fecInfo`, from which the client recomputes `parity`.
    percent: usize,
}

/// Splits `shards` data shards into blocks as core/GAMESTREAM.md §8.4 describes.
fn plan_blocks(shards: usize, fec_percent: u8, min_parity: u8) -> Result<([BlockPlan; MAX_BLOCKS], usize), usize> {
    let mut pct = fec_percent as usize;
    let min_parity = min_parity as usize;
    // Room for the minimum parity too (plus 2 for the percentage's granularity: one step
    // adds up to ceil(D/100) shards), so a block never exceeds 255 shards.
    let max_data = match pct {
        0 => MAX_DATA_SHARDS,
        _ => (MAX_SHARDS * 100 / (100 + pct)).min(MAX_SHARDS.saturating_sub(min_parity + 2)).max(1),
    };
    let mut count = shards.div_ceil(max_data);
    if count > MAX_BLOCKS {
        // Too big to protect: send it bare in 4 blocks, as Sunshine does.
        pct = 0;
        count = MAX_BLOCKS;
        if shards > MAX_BLOCKS * MAX_DATA_SHARDS {
            return Err(shards);
        }
    }
    let mut plan = [BlockPlan { first_shard: 0, data: 0, parity: 0, percent: 0 }; MAX_BLOCKS];
    let (base, extra) = (shards / count, shards % count);
    let mut first = 0;
    for (b, slot) in plan.iter_mut().enumerate().take(count) {
        let data = base + usize::from(b < extra);
        // The client derives parity from the advertised percentage alone, so choose the
        // percentage and derive parity from it. Below the minimum, advertise Sunshine's
        // floor(100·m/D) where that yields m (D <= 100), else the smallest percentage that
        // does; then the largest that still fits 255 shards.
        let parity_at = |q: usize| (data * q).div_ceil(100);
        let mut percent = pct;
        if pct > 0 && parity_at(pct) < min_parity {
            percent = (100 * min_parity / data).min(255);
            if parity_at(percent) < min_parity {
                percent = (100 * (min_parity - 1) / data + 1).min(255);
            }
        }
        while percent > 0 && data + parity_at(percent) > MAX_SHARDS {
            percent -= 1;
        }
        *slot = BlockPlan { first_shard: first, data, parity: parity_at(percent), percent };
        first += data;
    }
    Ok((plan, count))
}

fn le32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn be(b: &mut [u8], at: usize, v: &[u8]) {
    b[at..at + v.len()].copy_from_slice(v);
}

/// Where a packetizer's counters stand: a packetizer resumed here under the same key goes on
/// with the next RTP sequence number and the next IV, never one used before.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketizerPosition {
    pub seq: u32,
    pub iv_counter: u64,
}

/// Cuts encoded frames into FEC-protected, optionally encrypted RTP datagrams.
pub struct VideoPacketizer {
    cfg: VideoConfig,
    codes: Codes,
    gcm: Option<Gcm>,
    /// Running RTP sequence; its low 24 bits are also the `streamPacketIndex`.
    seq: u32,
    iv_counter: u64,
    arena: Vec<u8>,
    pub stats: Stats,
}

impl VideoPacketizer {
    pub fn new(cfg: VideoConfig) -> Result<Self, VideoError> {
        cfg.validate()?;
        Ok(Self {
            gcm: cfg.key.as_ref().map(Gcm::new),
            cfg,
            codes: Codes::default(),
            seq: 0,
            iv_counter: 0,
            arena: Vec::new(),
            stats: Stats::default(),
        })
    }

    /// A packetizer that goes on from `position` (a stream restarted under the same key).
    pub fn resume(cfg: VideoConfig, position: PacketizerPosition) -> Result<Self, VideoError> {
        let mut p = Self::new(cfg)?;
        (p.seq, p.iv_counter) = (position.seq, position.iv_counter);
        Ok(p)
    }

    /// Its counters now, for [`VideoPacketizer::resume`].
    pub fn position(&self) -> PacketizerPosition {
        PacketizerPosition { seq: self.seq, iv_counter: self.iv_counter }
    }

    pub fn config(&self) -> &VideoConfig {
        &self.cfg
    }

    /// Changes FEC strength from the next frame on (e.g. from the client's loss reports).
    pub fn set_fec_percent(&mut self, pct: u8) {
        self.cfg.fec_percent = pct;
    }

    /// Changes every block's least parity from the next frame on (bursts the client saw).
    /// A block's parity is what its advertised percentage (at most 255) gives: a one-shard
    /// block gets 3 at most.
    pub fn set_min_parity(&mut self, parity: u8) {
        self.cfg.min_parity = parity;
    }

    /// Packetizes one frame. The datagrams borrow an internal buffer reused by the next call.
    pub fn packetize(&mut self, frame: &VideoFrame) -> Result<Datagrams<'_>, VideoError> {
        let (pl, shard_len, prefix) = (self.cfg.payload_len(), self.cfg.shard_len(), self.cfg.prefix());
        let stride = prefix + shard_len;
        let total = FRAME_HEADER_LEN + frame.bitstream.len();
        let shards = total.div_ceil(pl);
        let (plan, blocks) = plan_blocks(shards, self.cfg.fec_percent, self.cfg.min_parity).map_err(|_| {
            self.stats.frames_dropped += 1;
            VideoError::FrameTooLarge(frame.bitstream.len())
        })?;
        let plan = &plan[..blocks];
        let datagrams: usize = plan.iter().map(|b| b.data + b.parity).sum();
        if self.arena.len() < datagrams * stride {
            self.arena.resize(datagrams * stride, 0);
        }

        let mut header = [0u8; FRAME_HEADER_LEN];
        header[0] = 0x01;
        header[1..3].copy_from_slice(&frame.latency_100us.to_le_bytes());
        header[3] = frame.frame_type as u8;
        let last = match total % pl {
            0 => pl,
            r => r,
        };
        header[4..6].copy_from_slice(&(last as u16).to_le_bytes());

        let mut pos = 0;
        for (b, block) in plan.iter().enumerate() {
            let multi_fec = ((b as u8) << 4) | (((blocks - 1) as u8) << 6);
            let fec_info = |i: usize| ((block.data as u32) << 22) | ((i as u32) << 12) | ((block.percent as u32) << 4);
            let region = &mut self.arena[pos * stride..(pos + block.data + block.parity) * stride];
            let mut shards_mut: Vec<&mut [u8]> = region.chunks_exact_mut(stride).map(|c| &mut c[prefix..]).collect();
            for (i, s) in shards_mut[..block.data].iter_mut().enumerate() {
                let seq = self.seq.wrapping_add(i as u32);
                s[..HEADER_LEN].fill(0);
                s[0] = 0x90;
                be(s, 2, &(seq as u16).to_be_bytes());
                be(s, 4, &frame.rtp_timestamp.to_be_bytes());
                le32(s, 16, (seq & 0xFF_FFFF) << 8);
                le32(s, 20, frame.index);
                s[24] = FLAG_PIC_DATA | if i == 0 { FLAG_SOF } else { 0 } | if i == block.data - 1 { FLAG_EOF } else { 0 };
                s[26] = MULTI_FEC_FLAGS;
                s[27] = multi_fec;
                le32(s, 28, fec_info(i));
                // Payload: bytes [k·pl, (k+1)·pl) of header ‖ bitstream, zero-padded.
                let start = (block.first_shard + i) * pl;
                let payload = &mut s[HEADER_LEN..];
                payload.fill(0);
                let mut at = start;
                while at < (start + pl).min(total) {
                    let (src, from) = if at < FRAME_HEADER_LEN { (&header[..], at) } else { (frame.bitstream, at - FRAME_HEADER_LEN) };
                    let n = (src.len() - from).min(start + pl - at);
                    payload[at - start..at - start + n].copy_from_slice(&src[from..from + n]);
                    at += n;
                }
            }
            if block.parity > 0 {
                let (data, parity) = shards_mut.split_at_mut(block.data);
                let inputs: Vec<&[u8]> = data.iter().map(|s| &**s).collect();
                let code = self.codes.get(block.data, block.parity).expect("plan keeps D + P <= 255");
                code.encode(&inputs, parity);
                for (j, s) in parity.iter_mut().enumerate() {
                    let i = block.data + j;
                    // Stamp only what the client reads from parity; bytes 16..20, 24 and 25
                    // must stay parity (the client recovers them from it).
                    s[0] = 0x90;
                    be(s, 2, &(self.seq.wrapping_add(i as u32) as u16).to_be_bytes());
                    be(s, 4, &frame.rtp_timestamp.to_be_bytes());
                    le32(s, 20, frame.index);
                    s[27] = multi_fec;
                    le32(s, 28, fec_info(i));
                }
            }
            self.seq = self.seq.wrapping_add((block.data + block.parity) as u32);
            pos += block.data + block.parity;
        }

        if let Some(gcm) = &self.gcm {
            for d in self.arena[..datagrams * stride].chunks_exact_mut(stride) {
                let mut iv = [0u8; 12];
                iv[..8].copy_from_slice(&self.iv_counter.to_le_bytes());
                iv[11] = b'V';
                self.iv_counter += 1;
                let (head, body) = d.split_at_mut(ENCRYPTION_PREFIX);
                let tag = gcm.seal(iv, &[], body);
                head[..12].copy_from_slice(&iv);
                head[12..16].copy_from_slice(&frame.index.to_le_bytes());
                head[16..16 + TAG_LEN].copy_from_slice(&tag);
            }
        }
        self.stats.frames_sent += 1;
        self.stats.packets_sent += datagrams as u64;
        self.stats.fec_blocks += blocks as u64;
        Ok(Datagrams::new(&self.arena[..datagrams * stride], stride))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_example_from_the_reference() {
        // S = 1024, p = 20, m = 2, 2500-byte frame: D = 3, P = 2 advertised as 66 %.
        let cfg = VideoConfig { packet_size: 1024, fec_percent: 20, min_parity: 2, key: None };
        let mut p = VideoPacketizer::new(cfg).unwrap();
        let bits = vec![0x5Au8; 2500];
        let frame = VideoFrame { index: 1, rtp_timestamp: 0, frame_type: FrameType::Idr, latency_100us: 0, bitstream: &bits };
        let d = p.packetize(&frame).unwrap();
        assert_eq!(d.count(), 5);
        assert_eq!(d.datagram_len(), 1040);
        for (i, s) in d.iter().enumerate() {
            let fec_info = u32::from_le_bytes(s[28..32].try_into().unwrap());
            assert_eq!(fec_info, 0x00C0_0420 + ((i as u32) << 12));
            assert_eq!(s[27], 0);
            assert_eq!(u16::from_be_bytes([s[2], s[3]]), i as u16);
        }
        let flags: Vec<u8> = d.iter().take(3).map(|s| s[24]).collect();
        assert_eq!(flags, [0x05, 0x01, 0x03]);
        let first = d.iter().next().unwrap();
        assert_eq!(u16::from_le_bytes([first[36], first[37]]), 492, "lastPayloadLength");
        assert_eq!(&first[32..36], &[0x01, 0, 0, 2]);
    }

    /// Bursts the client saw raise every block's least parity from the next frame on, as
    /// far as a percentage can say it.
    #[test]
    fn the_least_parity_follows_bursts() {
        let cfg = VideoConfig { packet_size: 1024, fec_percent: 20, min_parity: 2, key: None };
        let mut p = VideoPacketizer::new(cfg).unwrap();
        let bits = vec![0x5Au8; 500];
        let frame = VideoFrame { index: 1, rtp_timestamp: 0, frame_type: FrameType::P, latency_100us: 0, bitstream: &bits };
        assert_eq!(p.packetize(&frame).unwrap().count(), 3, "1 data + 2 parity");
        p.set_min_parity(3);
        assert_eq!(p.packetize(&frame).unwrap().count(), 4, "1 data + 3 parity (255 %)");
        p.set_min_parity(6);
        assert_eq!(p.packetize(&frame).unwrap().count(), 4, "a one-shard block gets no more than 255 % says");
    }

    #[test]
    fn plans_follow_the_client_invariant() {
        for shards in 1..=900 {
            for (pct, min) in [(0u8, 2u8), (5, 2), (20, 2), (50, 2), (100, 2), (255, 2), (1, 6), (20, 45), (1, 3), (3, 255)] {
                let (plan, n) = plan_blocks(shards, pct, min).unwrap();
                assert_eq!(plan[..n].iter().map(|b| b.data).sum::<usize>(), shards);
                for b in &plan[..n] {
                    assert!(b.data >= 1 && b.data <= MAX_DATA_SHARDS);
                    assert!(b.percent <= 255);
                    assert_eq!(b.parity, (b.data * b.percent).div_ceil(100));
                    if b.parity > 0 {
                        assert!(b.data + b.parity <= MAX_SHARDS);
                    }
                    let reachable = (b.data * 255).div_ceil(100).min(MAX_SHARDS.saturating_sub(b.data));
                    let protected = plan[..n].iter().any(|b| b.percent > 0); // else: too big, sent bare
                    if pct > 0 && protected && reachable >= min as usize {
                        assert!(b.parity >= min as usize, "{shards} shards, {pct} %, min {min}: {b:?}");
                    }
                }
            }
        }
        assert!(plan_blocks(4 * 1023 + 1, 20, 2).is_err());
    }
}
