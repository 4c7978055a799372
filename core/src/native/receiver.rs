//! punktfunk/1 receiver: datagrams → authenticated shards → recovered, ordered frames.

use super::bursts::Bursts;
use super::config::{ConfigError, SEQ_RANGE_BITS, StreamConfig};
use super::header::{FLAG_ENCRYPTED, FLAG_KEYFRAME, FLAG_REPAIR, FrameMeta, HEADER_LEN, Header};
use crate::assembly::{Assembler, Event, Limits, Reject};
use crate::crypto::{Gcm, TAG_LEN};
use crate::fec::gf65536::Decoder;
use crate::stats::Stats;

/// What the receiver hands out.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameEvent<'a> {
    Frame {
        id: u32,
        keyframe: bool,
        /// A repair of a reported loss (see [`super::recovery::Recovery`]).
        repair: bool,
        timestamp_us: u64,
        recovered_shards: usize,
        data: &'a [u8],
    },
    /// Gone for good: ask for a key frame, or report it for a repair.
    Lost { id: u32 },
}

pub struct Receiver {
    cfg: StreamConfig,
    gcm: Option<Gcm>,
    fec: Decoder,
    assembler: Assembler<FrameMeta>,
    scratch: Vec<u8>,
    frame: Vec<u8>,
    events: Vec<Event<FrameMeta>>,
    /// The id after the newest frame delivered or given up: a frame arriving past it means
    /// the ones between were lost whole (no datagram of theirs arrived to tell).
    next_id: u32,
    /// The highest sequence number authenticated. A sender numbers from the start of a range
    /// of 2^[`SEQ_RANGE_BITS`] (0 for the first; a later process of a login stream, under
    /// the same key, in one of its own): a later range is a new sender, not a gap.
    highest_seq: Option<u64>,
    /// Datagrams lost, and runs of them lost in a row (not those only reordered).
    bursts: Bursts,
}

/// Frames reported lost at once for a gap in ids, at most (a longer gap is a restart).
const MAX_GAP: u32 = 64;

/// The first sequence number of the range `seq` is in.
fn range_start(seq: u64) -> u64 {
    seq >> SEQ_RANGE_BITS << SEQ_RANGE_BITS
}

impl Receiver {
    pub fn new(cfg: StreamConfig) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let full = cfg.largest_block(cfg.max_data_shards);
        Ok(Self {
            gcm: cfg.key.as_ref().map(Gcm::new),
            assembler: Assembler::new(Limits {
                frames: cfg.frames_in_flight,
                blocks: cfg.blocks_for(cfg.max_frame_len),
                shards: full.data + full.parity,
                shard_len: cfg.shard_len,
            }),
            cfg,
            fec: Decoder::default(),
            scratch: vec![0; cfg.shard_len],
            frame: Vec::new(),
            events: Vec::new(),
            // Each sender (each key) numbers its frames from 0.
            next_id: 0,
            highest_seq: None,
            bursts: Bursts::default(),
        })
    }

    pub fn stats(&self) -> &Stats {
        &self.assembler.stats
    }

    /// Datagrams that never arrived: a gap in the sequence numbers counts once
    /// [`REORDER`](super::bursts::REORDER) newer datagrams came (one only reordered arrives
    /// before). Not in [`Stats`], whose C layout is fixed.
    pub fn packets_missing(&self) -> u64 {
        self.bursts.lost()
    }

    /// Takes one datagram; calls `sink` for each frame completed or given up.
    pub fn push(&mut self, datagram: &[u8], mut sink: impl FnMut(FrameEvent<'_>)) -> Result<(), Reject> {
        let r = self.check(datagram);
        let h = match r {
            Ok(h) => h,
            Err(e) => {
                self.assembler.stats.packets_received += 1;
                self.assembler.stats.packets_invalid += 1;
                return Err(e);
            }
        };
        if !self.count_seq(h.seq) {
            // A straggler of a sender whose range is over: its frames were given up.
            self.assembler.stats.packets_received += 1;
            self.assembler.stats.packets_late += 1;
            return Err(Reject::Stale);
        }
        // Events come out even when the shard itself is refused (it may have evicted a frame).
        let result = self.assembler.insert(h.shard_info(), &self.scratch, &mut self.fec, &mut self.events);
        for ev in std::mem::take(&mut self.events) {
            let id = match &ev {
                Event::Lost { frame } | Event::Complete { frame, .. } => *frame,
            };
            self.account(id, &mut sink);
            match ev {
                Event::Lost { frame } => sink(FrameEvent::Lost { id: frame }),
                Event::Complete { frame, recovered_shards, meta } => {
                    self.frame.clear();
                    for s in self.assembler.frame_data(frame) {
                        self.frame.extend_from_slice(s);
                    }
                    self.frame.truncate(meta.len as usize);
                    self.assembler.release(frame);
                    sink(FrameEvent::Frame {
                        id: frame,
                        keyframe: meta.flags & FLAG_KEYFRAME != 0,
                        repair: meta.flags & FLAG_REPAIR != 0,
                        timestamp_us: meta.timestamp_us,
                        recovered_shards,
                        data: &self.frame,
                    });
                }
            }
        }
        result
    }

    /// Counts an authenticated datagram (see [`Receiver::packets_missing`]); false for a
    /// straggler of a sender whose range is over, which counts for nothing.
    fn count_seq(&mut self, seq: u64) -> bool {
        match self.highest_seq {
            Some(h) if range_start(seq) < range_start(h) => return false,
            // A later sender's range: what the last one missed stays counted.
            Some(h) if range_start(seq) > range_start(h) => {
                self.highest_seq = None;
                self.bursts.restart(range_start(seq));
            }
            Some(_) => {}
            None => self.bursts.restart(range_start(seq)),
        }
        self.bursts.arrived(seq);
        self.highest_seq = Some(self.highest_seq.map_or(seq, |h| h.max(seq)));
        true
    }

    /// The most datagrams lost in a row since the last call (0: none), for the sender's
    /// parity: a block needs that much parity to outlive such a burst. A run counts once
    /// [`REORDER`](super::bursts::REORDER) newer datagrams came: until then its datagrams may
    /// only be late.
    pub fn take_longest_gap(&mut self) -> u64 {
        self.bursts.take_longest()
    }

    /// Reports the frames between the last one accounted for and `id` as lost: each, or for
    /// a longer gap (a restart, or a link gone for seconds) only its first, uncounted: the
    /// decoder lacks the pictures all the same.
    fn account(&mut self, id: u32, sink: &mut impl FnMut(FrameEvent<'_>)) {
        let next = self.next_id;
        let ahead = id.wrapping_sub(next);
        if ahead >= 1 << 31 {
            return; // older than what was accounted for: already reported
        }
        if ahead <= MAX_GAP {
            for gone in 0..ahead {
                self.assembler.stats.frames_lost += 1;
                sink(FrameEvent::Lost { id: next.wrapping_add(gone) });
            }
        } else {
            sink(FrameEvent::Lost { id: next });
        }
        self.next_id = id.wrapping_add(1);
    }

    /// Authenticates the datagram into `scratch` and checks its header against the config.
    fn check(&mut self, d: &[u8]) -> Result<Header, Reject> {
        let cfg = &self.cfg;
        if d.len() != cfg.datagram_len() {
            return Err(Reject::Invalid);
        }
        let h = Header::parse(d)?;
        let len = h.meta.len as usize;
        let encrypted = h.meta.flags & FLAG_ENCRYPTED != 0;
        if encrypted != self.gcm.is_some()
            || h.shard_len as usize != cfg.shard_len
            || len > cfg.max_frame_len
            || h.blocks as usize != cfg.blocks_for(len)
        {
            return Err(Reject::Invalid);
        }
        // The sender moves its parity with the link's loss, up to the agreed ceiling.
        let shape = cfg.largest_block(cfg.block_data(len, h.block as usize));
        if h.data as usize != shape.data || h.parity as usize > shape.parity {
            return Err(Reject::Invalid);
        }
        let body = &d[HEADER_LEN..HEADER_LEN + cfg.shard_len];
        self.scratch.copy_from_slice(body);
        if let Some(gcm) = &self.gcm {
            let tag = &d[HEADER_LEN + cfg.shard_len..HEADER_LEN + cfg.shard_len + TAG_LEN];
            gcm.open(h.nonce(), &d[..HEADER_LEN], &mut self.scratch, tag).map_err(|_| Reject::Invalid)?;
        }
        Ok(h)
    }
}
