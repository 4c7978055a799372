//! Frames through both wire formats with loss: exact bytes when the loss fits the parity,
//! reported lost otherwise, never delivered corrupted; garbage never panics.

use proptest::prelude::*;
use punktfunk_core::gamestream::video::{FrameType, VideoConfig, VideoDepacketizer, VideoEvent, VideoFrame, VideoPacketizer};
use punktfunk_core::native::bursts::REORDER;
use punktfunk_core::native::config::{MAX_BURST_PARITY, SEQ_RANGE_BITS};
use punktfunk_core::native::{Frame, FrameEvent, Receiver, Sender, StreamConfig};

fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

/// A delivered frame carries whether its bytes matched what was sent (not the bytes: a
/// failing assert would print megabytes).
#[derive(Debug, PartialEq)]
enum Got {
    Frame(u32, bool),
    Lost(u32),
}

fn all_exact(frames: &[Vec<u8>], first: u32) -> Vec<Got> {
    (0..frames.len()).map(|i| Got::Frame(i as u32 + first, true)).collect()
}

fn moonlight_run(cfg: VideoConfig, frames: &[Vec<u8>], drop: &dyn Fn(u32, usize) -> bool) -> Vec<Got> {
    let mut tx = VideoPacketizer::new(cfg).unwrap();
    let mut rx = VideoDepacketizer::new(cfg, 4).unwrap();
    let mut got = Vec::new();
    for (n, f) in frames.iter().enumerate() {
        let index = n as u32 + 1;
        let frame = VideoFrame { index, rtp_timestamp: index * 1500, frame_type: FrameType::P, latency_100us: 0, bitstream: f };
        let wire: Vec<Vec<u8>> = tx.packetize(&frame).unwrap().iter().map(<[u8]>::to_vec).collect();
        for (i, d) in wire.iter().enumerate() {
            if drop(index, i) {
                continue;
            }
            rx.push(d, |e| match e {
                VideoEvent::Frame { index, bitstream, .. } => {
                    got.push(Got::Frame(index, frames.get(index as usize - 1).is_some_and(|f| f[..] == *bitstream)))
                }
                VideoEvent::Lost { index } => got.push(Got::Lost(index)),
            })
            .unwrap();
        }
    }
    got
}

#[test]
fn moonlight_frames_survive_loss_within_parity_encrypted_and_not() {
    for key in [None, Some([5u8; 16])] {
        let cfg = VideoConfig { packet_size: 1024, fec_percent: 20, min_parity: 2, key };
        // 100 kB: one block of ~100 shards with 20 parity. Drop 20 data shards of frame 2.
        let frames: Vec<Vec<u8>> = (0..3).map(|i| bytes(100_000, i)).collect();
        let got = moonlight_run(cfg, &frames, &|f, i| f == 2 && i % 5 == 0 && i < 100);
        assert_eq!(got, all_exact(&frames, 1));
    }
}

#[test]
fn moonlight_frame_beyond_parity_is_lost_not_corrupted() {
    let cfg = VideoConfig { packet_size: 1024, fec_percent: 10, min_parity: 2, key: None };
    let frames: Vec<Vec<u8>> = (0..3).map(|i| bytes(30_000, i)).collect();
    let got = moonlight_run(cfg, &frames, &|f, i| f == 2 && i < 6);
    assert_eq!(got, vec![Got::Frame(1, true), Got::Lost(2), Got::Frame(3, true)]);
}

#[test]
fn moonlight_multi_block_frame_round_trips() {
    let cfg = VideoConfig { packet_size: 1392, fec_percent: 20, min_parity: 2, key: None };
    // ~700 shards: 4 blocks.
    let frames = vec![bytes(950_000, 9)];
    let got = moonlight_run(cfg, &frames, &|_, i| i % 7 == 3);
    assert_eq!(got, all_exact(&frames, 1));
}

fn native_run(cfg: StreamConfig, frames: &[Vec<u8>], drop: &dyn Fn(u32, usize) -> bool) -> Vec<Got> {
    let mut tx = Sender::new(cfg).unwrap();
    let mut rx = Receiver::new(cfg).unwrap();
    let mut got = Vec::new();
    for (n, f) in frames.iter().enumerate() {
        let id = n as u32;
        let wire: Vec<Vec<u8>> = tx
            .packetize(&Frame { id, keyframe: n == 0, repair: false, timestamp_us: 1000 * n as u64, data: f })
            .unwrap()
            .iter()
            .map(<[u8]>::to_vec)
            .collect();
        for (i, d) in wire.iter().enumerate().rev() {
            if drop(id, i) {
                continue;
            }
            rx.push(d, |e| match e {
                FrameEvent::Frame { id, data, .. } => got.push(Got::Frame(id, frames.get(id as usize).is_some_and(|f| f[..] == *data))),
                FrameEvent::Lost { id } => got.push(Got::Lost(id)),
            })
            .unwrap();
        }
    }
    got
}

#[test]
fn native_large_frames_span_blocks_and_recover_reordered() {
    let cfg = StreamConfig { max_data_shards: 1000, key: Some([1; 16]), ..StreamConfig::default() };
    // 10 MB frame: 7490 shards in 8 blocks; 3 % loss spread evenly is within 20 % parity.
    let frames = vec![bytes(10 << 20, 1), bytes(0, 2), bytes(1, 3)];
    let got = native_run(cfg, &frames, &|_, i| i % 33 == 0);
    assert_eq!(got, all_exact(&frames, 0));
}

#[test]
fn native_frames_lost_whole_are_reported() {
    let cfg = StreamConfig { key: Some([3; 16]), ..StreamConfig::default() };
    let frames: Vec<Vec<u8>> = (0..5).map(|i| bytes(3000, i)).collect();
    // Frames 1 and 2 never arrive at all: nothing of theirs tells the receiver they existed.
    let got = native_run(cfg, &frames, &|f, _| f == 1 || f == 2);
    assert_eq!(got, [Got::Frame(0, true), Got::Lost(1), Got::Lost(2), Got::Frame(3, true), Got::Frame(4, true)]);
}

/// A sender that moves its parity frame by frame within the agreed ceiling: every frame
/// arrives, the heavier parity rebuilding losses the lighter could not; a receiver that
/// agreed to no ceiling refuses the heavier blocks. The receiver counts what never came.
#[test]
fn native_parity_moves_within_the_ceiling() {
    let cfg = StreamConfig { key: Some([4; 16]), fec_percent: 20, max_fec_percent: 60, ..StreamConfig::default() };
    let mut tx = Sender::new(cfg).unwrap();
    let mut rx = Receiver::new(cfg).unwrap();
    let mut fixed = Receiver::new(StreamConfig { max_fec_percent: 0, ..cfg }).unwrap();
    let (mut delivered, mut refused) = (Vec::new(), 0);
    let mut dropped = 0;
    for (n, percent) in [20u16, 60, 10, 60, 200].into_iter().enumerate() {
        tx.set_fec_percent(percent);
        let data = bytes(28_000, n as u8); // 20 data shards
        let wire: Vec<Vec<u8>> = tx
            .packetize(&Frame { id: n as u32, keyframe: n == 0, repair: false, timestamp_us: 0, data: &data })
            .unwrap()
            .iter()
            .map(<[u8]>::to_vec)
            .collect();
        // At 60 % (12 parity), losing 5 data shards is rebuilt; frames of less parity lose one.
        let lose = if percent >= 60 { 5 } else { 1 };
        for (i, d) in wire.iter().enumerate() {
            if i < lose {
                dropped += 1;
                continue;
            }
            rx.push(d, |e| {
                if let FrameEvent::Frame { id, data: got, .. } = e {
                    delivered.push((id, got == &data[..]));
                }
            })
            .unwrap();
            refused += usize::from(fixed.push(d, |_| {}).is_err());
        }
    }
    assert_eq!(delivered, [(0, true), (1, true), (2, true), (3, true), (4, true)], "200 % is held to the 60 % ceiling");
    assert!(refused >= 3 * 12, "a receiver without the ceiling refuses the heavier blocks ({refused})");
    // The last frame's trailing parity was never missing; what was dropped was, once newer
    // datagrams settled it.
    settle(&mut tx, &mut rx, 5);
    assert_eq!(rx.packets_missing(), dropped);
}

/// A link that loses bursts: a one-shard frame's 1 + 2 datagrams are taken whole by a burst
/// of 3, but with the least parity raised to the burst it is rebuilt. The receiver says how
/// long the longest burst was; any receiver (fixed parity too) takes the raised parity.
#[test]
fn native_min_parity_outlives_a_burst() {
    let cfg = StreamConfig { key: Some([5; 16]), fec_percent: 20, max_fec_percent: 80, ..StreamConfig::default() };
    let mut tx = Sender::new(cfg).unwrap();
    let mut rx = Receiver::new(cfg).unwrap();
    let mut fixed = Receiver::new(StreamConfig { max_fec_percent: 0, ..cfg }).unwrap();
    let mut delivered = Vec::new();
    for (id, min_parity) in [(0u32, 2u16), (1, 3), (2, 9), (3, 3)] {
        tx.set_min_parity(min_parity);
        let data = bytes(700, id as u8);
        let wire: Vec<Vec<u8>> = tx
            .packetize(&Frame { id, keyframe: true, repair: false, timestamp_us: 0, data: &data })
            .unwrap()
            .iter()
            .map(<[u8]>::to_vec)
            .collect();
        assert_eq!(wire.len(), 1 + usize::from(min_parity.clamp(2, MAX_BURST_PARITY)), "frame {id}");
        // A burst of 3 takes the frame's first datagrams.
        for d in &wire[3.min(wire.len())..] {
            rx.push(d, |e| {
                if let FrameEvent::Frame { id, data: got, .. } = e {
                    delivered.push((id, got == &data[..]));
                }
            })
            .unwrap();
            fixed.push(d, |_| {}).expect("a fixed-parity receiver takes burst parity too");
        }
    }
    assert_eq!(delivered, [(1, true), (2, true), (3, true)], "frame 0 (1 + 2) is lost to the burst, the others are rebuilt");
    assert_eq!(rx.take_longest_gap(), 0, "the missing datagrams may only be late, as yet");
    settle(&mut tx, &mut rx, 4);
    // Frame 0's three datagrams and frame 1's first three went in one run.
    assert_eq!(rx.take_longest_gap(), 6, "the longest run lost");
    assert_eq!(rx.take_longest_gap(), 0, "taken");
}

/// A login stream's next process goes on under the same key: its sender numbers datagrams in
/// a range of its own and its frames where the last one's stopped. The receiver takes every
/// frame of both, counts only what either sender's datagrams really missed (not the jump),
/// and ignores the first sender's stragglers arriving after the second began.
#[test]
fn native_a_later_process_goes_on_under_the_same_key() {
    let cfg = StreamConfig { key: Some([6; 16]), fec_percent: 20, ..StreamConfig::default() };
    let mut rx = Receiver::new(cfg).unwrap();
    let (mut first, mut second) = (Sender::new(cfg).unwrap(), Sender::new(cfg).unwrap().starting_at(2 << SEQ_RANGE_BITS));
    let mut delivered = Vec::new();
    let mut push = |rx: &mut Receiver, d: &[u8]| {
        rx.push(d, |e| match e {
            FrameEvent::Frame { id, .. } => delivered.push(Got::Frame(id, true)),
            FrameEvent::Lost { id } => delivered.push(Got::Lost(id)),
        })
    };
    let wire = |tx: &mut Sender, id: u32| -> Vec<Vec<u8>> {
        let data = bytes(3000, id as u8);
        tx.packetize(&Frame { id, keyframe: false, repair: false, timestamp_us: 0, data: &data })
            .unwrap()
            .iter()
            .map(<[u8]>::to_vec)
            .collect()
    };
    let mut straggler = Vec::new();
    for id in 0..5 {
        let w = wire(&mut first, id);
        // One data datagram of frame 2 is lost (its parity rebuilds it); the last frame's
        // last datagram arrives late, after the next sender's first.
        for (i, d) in w.iter().enumerate() {
            match (id, i) {
                (2, 0) => {}
                (4, i) if i == w.len() - 1 => straggler = d.clone(),
                _ => push(&mut rx, d).unwrap(),
            }
        }
    }
    assert_eq!(rx.packets_missing(), 0, "not settled as yet");
    for id in 5..8 {
        for (i, d) in wire(&mut second, id).iter().enumerate() {
            if (id, i) == (6, 1) {
                continue;
            }
            push(&mut rx, d).unwrap();
        }
        if id == 5 {
            assert_eq!(rx.packets_missing(), 1, "the first sender's drop, settled as its range ended");
            // Its frame was complete: refused as late, whatever else.
            let _ = push(&mut rx, &straggler);
        }
    }
    assert_eq!(delivered, (0..8).map(|id| Got::Frame(id, true)).collect::<Vec<_>>(), "every frame, none lost");
    settle(&mut second, &mut rx, 8);
    assert_eq!(rx.packets_missing(), 2, "the two datagrams dropped; neither the jump nor the straggler");
    assert_eq!(rx.take_longest_gap(), 1, "no burst from the jump");
}

/// Frames that never came, more than a receiver reports one by one (a link gone for seconds,
/// a stream's process that died): the first of them is reported lost, once and not counted,
/// so that a client waits for a key frame instead of decoding from pictures it lacks.
#[test]
fn native_a_long_gap_is_one_loss() {
    let cfg = StreamConfig { key: Some([7; 16]), ..StreamConfig::default() };
    let (mut tx, mut rx) = (Sender::new(cfg).unwrap(), Receiver::new(cfg).unwrap());
    let mut got = Vec::new();
    for id in [0, 1, 100, 101] {
        let data = bytes(900, id as u8);
        for d in tx.packetize(&Frame { id, keyframe: id == 100, repair: false, timestamp_us: 0, data: &data }).unwrap().iter() {
            rx.push(d, |e| match e {
                FrameEvent::Frame { id, .. } => got.push(Got::Frame(id, true)),
                FrameEvent::Lost { id } => got.push(Got::Lost(id)),
            })
            .unwrap();
        }
    }
    assert_eq!(got, [Got::Frame(0, true), Got::Frame(1, true), Got::Lost(2), Got::Frame(100, true), Got::Frame(101, true)]);
    assert_eq!(rx.stats().frames_lost, 0, "a jump is not counted as frames lost");
}

/// Clean frames from `tx` to `rx`, numbered from `id`, until [`REORDER`] datagrams went: what
/// went missing before them settles as lost.
fn settle(tx: &mut Sender, rx: &mut Receiver, mut id: u32) {
    let mut sent = 0;
    while sent < REORDER {
        let data = bytes(700, id as u8);
        for d in tx.packetize(&Frame { id, keyframe: false, repair: false, timestamp_us: 0, data: &data }).unwrap().iter() {
            rx.push(d, |_| {}).unwrap();
            sent += 1;
        }
        id += 1;
    }
}

/// Every frame before the newest one delivered is accounted for exactly once.
fn accounted_once(got: &[Got]) -> bool {
    let ids: Vec<u32> = got
        .iter()
        .map(|g| match g {
            Got::Frame(id, _) | Got::Lost(id) => *id,
        })
        .collect();
    let newest = got.iter().filter_map(|g| if let Got::Frame(id, _) = g { Some(*id) } else { None }).max();
    let unique: std::collections::BTreeSet<u32> = ids.iter().copied().collect();
    unique.len() == ids.len() && newest.is_none_or(|n| (0..=n).all(|i| unique.contains(&i)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn native_frames_are_exact_or_lost(
        lens in proptest::collection::vec(0usize..40_000, 1..6),
        loss in proptest::collection::vec(any::<bool>(), 0..200),
        fec in 0u16..60,
    ) {
        let cfg = StreamConfig { shard_len: 512, max_data_shards: 32, fec_percent: fec, ..StreamConfig::default() };
        let frames: Vec<Vec<u8>> = lens.iter().enumerate().map(|(i, &l)| bytes(l, i as u8)).collect();
        let got = native_run(cfg, &frames, &|f, i| loss.get((f as usize * 37 + i) % 200).copied().unwrap_or(false));
        prop_assert!(got.iter().all(|g| !matches!(g, Got::Frame(_, false))));
        prop_assert!(accounted_once(&got), "{:?}", got);
    }

    #[test]
    fn moonlight_frames_are_exact_or_lost(
        lens in proptest::collection::vec(0usize..300_000, 1..5),
        loss in proptest::collection::vec(any::<bool>(), 0..300),
        fec in 0u8..80,
    ) {
        let cfg = VideoConfig { packet_size: 1024, fec_percent: fec, min_parity: 2, key: None };
        let frames: Vec<Vec<u8>> = lens.iter().enumerate().map(|(i, &l)| bytes(l, i as u8)).collect();
        let got = moonlight_run(cfg, &frames, &|f, i| loss.get((f as usize * 41 + i) % 300).copied().unwrap_or(false));
        prop_assert!(got.iter().all(|g| !matches!(g, Got::Frame(_, false))));
    }

    #[test]
    fn garbage_datagrams_never_panic(datagrams in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..1600), 1..50)) {
        let mut n = Receiver::new(StreamConfig { shard_len: 1400, ..StreamConfig::default() }).unwrap();
        let mut m = VideoDepacketizer::new(VideoConfig { packet_size: 1024, fec_percent: 20, min_parity: 2, key: None }, 4).unwrap();
        for d in &datagrams {
            let _ = n.push(d, |_| {});
            let _ = m.push(d, |_| {});
        }
    }
}
