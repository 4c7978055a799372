//! The receiving side of GameStream video, as moonlight-common-c's RtpVideoQueue behaves:
//! the host never runs it; the tests, the loss harness and the fuzz targets check the
//! packetizer against it.

use super::{ENCRYPTION_PREFIX, FRAME_HEADER_LEN, HEADER_LEN, MAX_BLOCKS, MAX_DATA_SHARDS, VideoConfig, VideoError};
use crate::assembly::{Assembler, Event, Limits, Reject, ShardInfo};
use crate::crypto::Gcm;
use crate::fec::gf256::{Codes, MAX_SHARDS};
use crate::stats::Stats;

/// What the depacketizer hands out.
#[derive(Debug, PartialEq, Eq)]
pub enum VideoEvent<'a> {
    Frame { index: u32, frame_type: u8, recovered_shards: usize, bitstream: &'a [u8] },
    Lost { index: u32 },
}

/// Receives video datagrams as a Moonlight client does and yields whole frames.
pub struct VideoDepacketizer {
    cfg: VideoConfig,
    gcm: Option<Gcm>,
    codes: Codes,
    assembler: Assembler,
    scratch: Vec<u8>,
    frame: Vec<u8>,
    events: Vec<Event>,
}

impl VideoDepacketizer {
    /// `frames_in_flight` bounds memory: at most that many frames of 4 full blocks.
    pub fn new(cfg: VideoConfig, frames_in_flight: usize) -> Result<Self, VideoError> {
        cfg.validate()?;
        Ok(Self {
            gcm: cfg.key.as_ref().map(Gcm::new),
            assembler: Assembler::new(Limits {
                frames: frames_in_flight.max(1),
                blocks: MAX_BLOCKS,
                shards: MAX_DATA_SHARDS.max(MAX_SHARDS),
                shard_len: cfg.shard_len(),
            }),
            cfg,
            codes: Codes::default(),
            scratch: Vec::new(),
            frame: Vec::new(),
            events: Vec::new(),
        })
    }

    pub fn stats(&self) -> &Stats {
        &self.assembler.stats
    }

    /// Takes one datagram; calls `sink` for each frame completed or given up.
    pub fn push(&mut self, datagram: &[u8], mut sink: impl FnMut(VideoEvent<'_>)) -> Result<(), Reject> {
        let shard: &[u8] = match &self.gcm {
            None => datagram,
            Some(gcm) => {
                if datagram.len() < ENCRYPTION_PREFIX + HEADER_LEN || datagram.len() > self.cfg.datagram_len() {
                    self.assembler.stats.packets_invalid += 1;
                    return Err(Reject::Invalid);
                }
                let (head, body) = datagram.split_at(ENCRYPTION_PREFIX);
                self.scratch.clear();
                self.scratch.extend_from_slice(body);
                let iv: [u8; 12] = head[..12].try_into().expect("12 bytes");
                if gcm.open(iv, &[], &mut self.scratch, &head[16..32]).is_err() {
                    self.assembler.stats.packets_invalid += 1;
                    return Err(Reject::Invalid);
                }
                &self.scratch
            }
        };
        let info = parse_header(shard).inspect_err(|_| self.assembler.stats.packets_invalid += 1)?;
        // Events come out even when the shard itself is refused (it may have evicted a frame).
        let result = self.assembler.insert(info, shard, &mut self.codes, &mut self.events);
        for ev in std::mem::take(&mut self.events) {
            match ev {
                Event::Lost { frame } => sink(VideoEvent::Lost { index: frame }),
                Event::Complete { frame, recovered_shards, .. } => {
                    let pl = self.cfg.payload_len();
                    self.frame.clear();
                    for s in self.assembler.frame_data(frame) {
                        self.frame.extend_from_slice(&s[HEADER_LEN..HEADER_LEN + pl]);
                    }
                    let h = &self.frame[..FRAME_HEADER_LEN];
                    let frame_type = h[3];
                    let last = u16::from_le_bytes([h[4], h[5]]) as usize;
                    // lastPayloadLength tells how much of the final shard is real.
                    let len =
                        if (1..=pl).contains(&last) && self.frame.len() >= pl { self.frame.len() - pl + last } else { self.frame.len() };
                    self.assembler.release(frame);
                    sink(VideoEvent::Frame {
                        index: frame,
                        frame_type,
                        recovered_shards,
                        bitstream: &self.frame[FRAME_HEADER_LEN..len.max(FRAME_HEADER_LEN)],
                    });
                }
            }
        }
        result
    }
}

/// Reads where a shard belongs from its RTP + NV header.
pub fn parse_header(shard: &[u8]) -> Result<ShardInfo, Reject> {
    if shard.len() < HEADER_LEN || shard[0] & 0x10 == 0 {
        return Err(Reject::Invalid);
    }
    let fec_info = u32::from_le_bytes(shard[28..32].try_into().expect("4 bytes"));
    let data = (fec_info >> 22) as u16;
    let index = ((fec_info >> 12) & 0x3FF) as u16;
    let percent = (fec_info >> 4) & 0xFF;
    let parity = (u32::from(data) * percent).div_ceil(100) as u16;
    Ok(ShardInfo {
        frame: u32::from_le_bytes(shard[20..24].try_into().expect("4 bytes")),
        block: u16::from((shard[27] >> 4) & 3),
        blocks: u16::from(shard[27] >> 6) + 1,
        index,
        data,
        parity,
        meta: (),
    })
}
