//! Format-independent frame reassembly: shards arrive in any order, blocks are recovered
//! with FEC as soon as enough shards are in, frames are handed out whole and in order.
//!
//! Memory is bounded by [`Limits`]: at most `frames` frames in flight, each of at most
//! `blocks` blocks of at most `shards` shards of exactly `shard_len` bytes. Anything that
//! would exceed a limit, contradicts what earlier shards of the same frame said, or belongs
//! to a frame already delivered or given up is rejected with a reason, never a panic.

use crate::fec::FecError;
use crate::stats::Stats;
use std::collections::VecDeque;

/// Where one shard belongs, as parsed from its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardInfo<M = ()> {
    pub frame: u32,
    pub block: u16,
    pub blocks: u16,
    /// Index in the block: data shards first, then parity.
    pub index: u16,
    pub data: u16,
    pub parity: u16,
    /// Per-frame facts every shard repeats (length, flags, timestamps); must agree.
    pub meta: M,
}

/// Bounds on what the assembler holds; from the negotiated stream config.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub frames: usize,
    pub blocks: usize,
    /// Data + parity shards in one block.
    pub shards: usize,
    pub shard_len: usize,
}

/// Why a shard was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    #[error("shard header is inconsistent or beyond the negotiated limits")]
    Invalid,
    #[error("shard belongs to a frame that was already delivered or dropped")]
    Stale,
    #[error("shard was already received")]
    Duplicate,
}

/// Something the receiver should act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<M = ()> {
    /// The frame is complete; read it with [`Assembler::frame_data`], then call
    /// [`Assembler::release`].
    Complete { frame: u32, recovered_shards: usize, meta: M },
    /// The frame cannot be completed any more (a newer one completed first, or too many
    /// frames were in flight). A decoder should ask for a key frame.
    Lost { frame: u32 },
}

struct Block {
    data: usize,
    parity: usize,
    buf: Vec<u8>,
    present: Vec<bool>,
    received: usize,
    done: bool,
}

struct Frame<M> {
    id: u32,
    meta: M,
    blocks: Vec<Block>,
    done_blocks: usize,
    recovered: usize,
}

/// Recovers a block in place; GF(2^8) or GF(2^16) depending on the format.
pub trait Recover {
    fn recover(&mut self, data: usize, shards: &mut [&mut [u8]], present: &[bool]) -> Result<(), FecError>;
}

pub struct Assembler<M = ()> {
    limits: Limits,
    frames: VecDeque<Frame<M>>,
    /// Frames at or before this id are finished (delivered or lost); `None` before the first.
    horizon: Option<u32>,
    /// The newest completed frame: its leftover parity is expected, not an error.
    last_complete: Option<u32>,
    /// Consecutive shards whose frame id was far outside the window (see `WINDOW`).
    out_of_window: u32,
    spare: Vec<Block>,
    pub stats: Stats,
}

/// Frame ids this far from the newest finished frame are out of the window. Far above any
/// reordering or burst of lost frames (about 4 s at 60 fps); a sender restart is farther.
const WINDOW: u32 = 256;
/// Consecutive out-of-window shards after which the assembler follows them (a restart).
const RESYNC_AFTER: u32 = 64;

/// `a` is before `b` in wrapping frame-id order (up to 2^31 frames before).
pub fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

impl<M: Copy + PartialEq> Assembler<M> {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            frames: VecDeque::new(),
            horizon: None,
            last_complete: None,
            out_of_window: 0,
            spare: Vec::new(),
            stats: Stats::default(),
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Takes one shard (`bytes` shorter than `shard_len` is zero-filled, as Moonlight does).
    /// Pushes at most a few events: frames lost on the way and at most one completed frame.
    pub fn insert(&mut self, info: ShardInfo<M>, bytes: &[u8], fec: &mut impl Recover, events: &mut Vec<Event<M>>) -> Result<(), Reject> {
        self.stats.packets_received += 1;
        let r = self.insert_inner(info, bytes, fec, events);
        match r {
            Err(Reject::Invalid) => self.stats.packets_invalid += 1,
            Err(Reject::Stale) => self.stats.packets_late += 1,
            Err(Reject::Duplicate) => self.stats.packets_duplicate += 1,
            Ok(()) => {}
        }
        r
    }

    fn insert_inner(&mut self, info: ShardInfo<M>, bytes: &[u8], fec: &mut impl Recover, events: &mut Vec<Event<M>>) -> Result<(), Reject> {
        let l = self.limits;
        let (data, parity) = (info.data as usize, info.parity as usize);
        if info.blocks == 0
            || info.blocks as usize > l.blocks
            || info.block >= info.blocks
            || data == 0
            || data + parity > l.shards
            || info.index as usize >= data + parity
            || bytes.len() > l.shard_len
        {
            return Err(Reject::Invalid);
        }
        if self.last_complete == Some(info.frame) {
            return Ok(());
        }
        if let Some(h) = self.horizon {
            let ahead = info.frame.wrapping_sub(h) as i32;
            if ahead.unsigned_abs() > WINDOW {
                // Far from anything we know: a forged id, or a sender that restarted. Only
                // a sustained run of such shards moves the stream there.
                self.out_of_window += 1;
                if self.out_of_window < RESYNC_AFTER {
                    return Err(if ahead > 0 { Reject::Invalid } else { Reject::Stale });
                }
                self.reset(events);
            } else if ahead <= 0 {
                return Err(Reject::Stale);
            }
        }
        self.out_of_window = 0;
        let pos = match self.frames.iter().position(|f| f.id == info.frame) {
            Some(p) => p,
            None => self.open_frame(info.frame, info.blocks as usize, info.meta, events)?,
        };
        let spare = &mut self.spare;
        let frame = &mut self.frames[pos];
        if frame.blocks.len() != info.blocks as usize || frame.meta != info.meta {
            return Err(Reject::Invalid);
        }
        let block = &mut frame.blocks[info.block as usize];
        if block.data == 0 {
            let mut fresh =
                spare.pop().unwrap_or_else(|| Block { data: 0, parity: 0, buf: Vec::new(), present: Vec::new(), received: 0, done: false });
            fresh.data = data;
            fresh.parity = parity;
            // No zeroing: every slot is written on arrival, and missing data is rebuilt.
            if fresh.buf.len() < (data + parity) * l.shard_len {
                fresh.buf.resize((data + parity) * l.shard_len, 0);
            }
            fresh.present.clear();
            fresh.present.resize(data + parity, false);
            fresh.received = 0;
            fresh.done = false;
            *block = fresh;
        } else if block.data != data || block.parity != parity {
            return Err(Reject::Invalid);
        }
        let i = info.index as usize;
        if block.done {
            return Ok(()); // parity beyond what recovery needed
        }
        if block.present[i] {
            return Err(Reject::Duplicate);
        }
        let slot = &mut block.buf[i * l.shard_len..(i + 1) * l.shard_len];
        slot[..bytes.len()].copy_from_slice(bytes);
        slot[bytes.len()..].fill(0);
        block.present[i] = true;
        block.received += 1;
        if block.received < data {
            return Ok(());
        }
        let missing = block.present[..data].iter().filter(|&&p| !p).count();
        if missing > 0 {
            let mut shards: Vec<&mut [u8]> = block.buf[..(data + parity) * l.shard_len].chunks_exact_mut(l.shard_len).collect();
            if fec.recover(data, &mut shards, &block.present).is_err() {
                // Cannot happen for a valid code with >= D shards; treat as a garbage block.
                return Err(Reject::Invalid);
            }
            frame.recovered += missing;
            self.stats.packets_recovered += missing as u64;
        }
        block.done = true;
        self.stats.fec_blocks += 1;
        frame.done_blocks += 1;
        if frame.done_blocks == frame.blocks.len() {
            let id = frame.id;
            let (recovered, meta) = (frame.recovered, frame.meta);
            // Everything older is now unrecoverable in order: give it up.
            while self.frames.front().is_some_and(|f| f.id != id) {
                self.drop_front(events);
            }
            self.horizon = Some(id);
            self.last_complete = Some(id);
            if recovered > 0 {
                self.stats.frames_recovered += 1;
            }
            self.stats.frames_delivered += 1;
            events.push(Event::Complete { frame: id, recovered_shards: recovered, meta });
        }
        Ok(())
    }

    fn open_frame(&mut self, id: u32, blocks: usize, meta: M, events: &mut Vec<Event<M>>) -> Result<usize, Reject> {
        if self.frames.len() >= self.limits.frames {
            // Full: give up the oldest, unless the newcomer is older still.
            if self.frames.front().is_some_and(|f| before(id, f.id)) {
                return Err(Reject::Stale);
            }
            self.drop_front(events);
        }
        let frame = Frame {
            id,
            meta,
            blocks: (0..blocks)
                .map(|_| Block { data: 0, parity: 0, buf: Vec::new(), present: Vec::new(), received: 0, done: false })
                .collect(),
            done_blocks: 0,
            recovered: 0,
        };
        // Keep frames sorted by id so the front is always the oldest.
        let pos = self.frames.iter().position(|f| before(id, f.id)).unwrap_or(self.frames.len());
        self.frames.insert(pos, frame);
        Ok(pos)
    }

    /// Forgets everything: pending frames are lost, any frame id is acceptable again.
    fn reset(&mut self, events: &mut Vec<Event<M>>) {
        while !self.frames.is_empty() {
            self.drop_front(events);
        }
        self.horizon = None;
        self.last_complete = None;
        self.out_of_window = 0;
    }

    fn drop_front(&mut self, events: &mut Vec<Event<M>>) {
        if let Some(f) = self.frames.pop_front() {
            if f.done_blocks < f.blocks.len() {
                self.stats.frames_lost += 1;
                events.push(Event::Lost { frame: f.id });
            }
            self.horizon = Some(match self.horizon {
                Some(h) if before(f.id, h) => h,
                _ => f.id,
            });
            self.recycle(f);
        }
    }

    fn recycle(&mut self, f: Frame<M>) {
        // Keep a few block buffers for the next frames; drop the rest.
        for b in f.blocks {
            if b.data > 0 && self.spare.len() < self.limits.blocks * 2 {
                self.spare.push(b);
            }
        }
    }

    /// The data shards of a completed frame, in order.
    pub fn frame_data(&self, frame: u32) -> impl Iterator<Item = &[u8]> {
        let shard_len = self.limits.shard_len;
        self.frames
            .iter()
            .filter(move |f| f.id == frame && f.done_blocks == f.blocks.len())
            .flat_map(|f| f.blocks.iter())
            .flat_map(move |b| b.buf[..b.data * shard_len].chunks_exact(shard_len))
    }

    /// Forgets a completed frame once its data has been read.
    pub fn release(&mut self, frame: u32) {
        if let Some(pos) = self.frames.iter().position(|f| f.id == frame)
            && let Some(f) = self.frames.remove(pos)
        {
            self.recycle(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoFec;
    impl Recover for NoFec {
        fn recover(&mut self, _: usize, _: &mut [&mut [u8]], _: &[bool]) -> Result<(), FecError> {
            Err(FecError::Singular)
        }
    }

    fn asm() -> Assembler {
        Assembler::new(Limits { frames: 4, blocks: 1, shards: 8, shard_len: 4 })
    }

    fn shard(frame: u32, index: u16, data: u16) -> ShardInfo {
        ShardInfo { frame, block: 0, blocks: 1, index, data, parity: 0, meta: () }
    }

    fn push(a: &mut Assembler, frame: u32, index: u16, data: u16) -> (Result<(), Reject>, Vec<Event>) {
        let mut ev = Vec::new();
        let r = a.insert(shard(frame, index, data), &[1, 2, 3, 4], &mut NoFec, &mut ev);
        for e in &ev {
            if let Event::Complete { frame, .. } = e {
                a.release(*frame);
            }
        }
        (r, ev)
    }

    #[test]
    fn a_forged_far_future_frame_does_not_stall_the_stream() {
        let mut a = asm();
        assert_eq!(push(&mut a, 1, 0, 1).1, [Event::Complete { frame: 1, recovered_shards: 0, meta: () }]);
        assert_eq!(push(&mut a, 1 + 0x7fff_0000, 0, 1).0, Err(Reject::Invalid));
        assert_eq!(push(&mut a, 2, 0, 1).1, [Event::Complete { frame: 2, recovered_shards: 0, meta: () }]);
    }

    #[test]
    fn a_restarted_sender_is_followed_after_a_run_of_shards() {
        let mut a = asm();
        let _ = push(&mut a, 100_000, 0, 1);
        let mut delivered = None;
        for i in 0..RESYNC_AFTER {
            let (_, ev) = push(&mut a, 1 + i, 0, 1);
            if let Some(Event::Complete { frame, .. }) = ev.first() {
                delivered = Some((*frame, i));
                break;
            }
        }
        assert_eq!(delivered, Some((RESYNC_AFTER, RESYNC_AFTER - 1)));
    }

    #[test]
    fn a_full_queue_never_takes_a_frame_older_than_its_oldest() {
        let mut a = asm();
        let _ = push(&mut a, 3, 0, 1);
        for f in 10..14 {
            assert_eq!(push(&mut a, f, 0, 2).0, Ok(()));
        }
        // Frame 5 is newer than the horizon (3) but older than everything queued.
        assert_eq!(push(&mut a, 5, 0, 1).0, Err(Reject::Stale));
        let (r, ev) = push(&mut a, 10, 1, 2);
        assert_eq!(r, Ok(()));
        assert_eq!(ev, [Event::Complete { frame: 10, recovered_shards: 0, meta: () }]);
    }

    #[test]
    fn completing_a_frame_gives_up_older_ones_in_order() {
        let mut a = asm();
        let _ = push(&mut a, 1, 0, 2);
        let _ = push(&mut a, 2, 0, 2);
        let (_, ev) = push(&mut a, 3, 0, 1);
        assert_eq!(ev, [Event::Lost { frame: 1 }, Event::Lost { frame: 2 }, Event::Complete { frame: 3, recovered_shards: 0, meta: () }]);
        assert_eq!(push(&mut a, 2, 1, 2).0, Err(Reject::Stale));
    }
}
