//! Sweeps packet loss × FEC strength through both wire formats and prints what the receiver
//! got: frames delivered (intact), of those recovered by FEC, and lost.
//!
//! `cargo run --release -p punktfunk-core --bin loss-harness [frames]`

use punktfunk_core::gamestream::video::{FrameType, VideoConfig, VideoDepacketizer, VideoEvent, VideoFrame, VideoPacketizer};
use punktfunk_core::native::{Frame, FrameEvent, Receiver, Sender, StreamConfig};

/// Loss models: independent drops, or Gilbert-Elliott bursts (good/bad states).
#[derive(Clone, Copy)]
enum Loss {
    Random(f64),
    /// (P(good→bad), P(bad→good)); every packet in the bad state is lost.
    Burst(f64, f64),
}

impl Loss {
    fn name(&self) -> String {
        match self {
            Loss::Random(p) => format!("random {:.0}%", p * 100.0),
            Loss::Burst(g, b) => format!("burst {:.1}%/len {:.0}", 100.0 * g / (g + b), 1.0 / b),
        }
    }
}

/// xorshift64*: deterministic, so every run of the harness prints the same table.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Channel {
    loss: Loss,
    bad: bool,
    rng: Rng,
}

impl Channel {
    fn drops(&mut self) -> bool {
        match self.loss {
            Loss::Random(p) => self.rng.unit() < p,
            Loss::Burst(to_bad, to_good) => {
                let flip = if self.bad { to_good } else { to_bad };
                if self.rng.unit() < flip {
                    self.bad = !self.bad;
                }
                self.bad
            }
        }
    }
}

#[derive(Default)]
struct Tally {
    delivered: u32,
    recovered: u32,
    lost: u32,
    corrupt: u32,
}

/// Frame sizes of a 1080p60 stream at ~30 Mbps: a key frame every 120, P-frames around 60 kB.
fn frame_size(n: u32, rng: &mut Rng) -> usize {
    if n.is_multiple_of(120) { 300_000 } else { 40_000 + (rng.unit() * 40_000.0) as usize }
}

fn content(n: u32, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2654435761).wrapping_add(n) as u8).collect()
}

fn run_moonlight(frames: u32, fec: u8, loss: Loss) -> Tally {
    let cfg = VideoConfig { packet_size: 1392, fec_percent: fec, min_parity: 2, key: Some([7; 16]) };
    let mut tx = VideoPacketizer::new(cfg).expect("valid config");
    let mut rx = VideoDepacketizer::new(cfg, 4).expect("valid config");
    let (mut ch, mut sizes, mut t) = (Channel { loss, bad: false, rng: Rng(0x9E37_79B9_7F4A_7C15) }, Rng(42), Tally::default());
    for n in 1..=frames {
        let sent = content(n, frame_size(n, &mut sizes));
        let f = VideoFrame { index: n, rtp_timestamp: n * 1500, frame_type: FrameType::P, latency_100us: 0, bitstream: &sent };
        let wire: Vec<Vec<u8>> = tx.packetize(&f).expect("frame fits").iter().map(<[u8]>::to_vec).collect();
        for d in wire.iter().filter(|_| !ch.drops()) {
            let _ = rx.push(d, |e| match e {
                VideoEvent::Frame { bitstream, recovered_shards, .. } => {
                    t.delivered += 1;
                    t.recovered += u32::from(recovered_shards > 0);
                    t.corrupt += u32::from(bitstream != &sent[..]);
                }
                VideoEvent::Lost { .. } => {}
            });
        }
    }
    t.lost = frames - t.delivered;
    t
}

fn run_native(frames: u32, fec: u16, loss: Loss) -> Tally {
    let cfg = StreamConfig { fec_percent: fec, key: Some([7; 16]), ..StreamConfig::default() };
    let mut tx = Sender::new(cfg).expect("valid config");
    let mut rx = Receiver::new(cfg).expect("valid config");
    let (mut ch, mut sizes, mut t) = (Channel { loss, bad: false, rng: Rng(0x9E37_79B9_7F4A_7C15) }, Rng(42), Tally::default());
    for n in 1..=frames {
        let sent = content(n, frame_size(n, &mut sizes));
        let f = Frame { id: n, keyframe: n % 120 == 0, repair: false, timestamp_us: 0, data: &sent };
        let wire: Vec<Vec<u8>> = tx.packetize(&f).expect("frame fits").iter().map(<[u8]>::to_vec).collect();
        for d in wire.iter().filter(|_| !ch.drops()) {
            let _ = rx.push(d, |e| match e {
                FrameEvent::Frame { data, recovered_shards, .. } => {
                    t.delivered += 1;
                    t.recovered += u32::from(recovered_shards > 0);
                    t.corrupt += u32::from(data != &sent[..]);
                }
                FrameEvent::Lost { .. } => {}
            });
        }
    }
    t.lost = frames - t.delivered;
    t
}

fn main() {
    let frames: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(600);
    let losses =
        [Loss::Random(0.0), Loss::Random(0.01), Loss::Random(0.05), Loss::Random(0.10), Loss::Burst(0.002, 0.2), Loss::Burst(0.005, 0.1)];
    println!("{frames} frames of a 1080p60 ~30 Mbps stream per cell; AES-GCM on; corrupt must be 0");
    println!("{:<11} {:<20} {:>4} {:>10} {:>10} {:>6} {:>8}", "format", "loss", "fec%", "delivered", "recovered", "lost", "corrupt");
    let mut corrupt = 0;
    for fec in [0u8, 10, 20, 40] {
        for loss in losses {
            for (format, t) in [("gamestream", run_moonlight(frames, fec, loss)), ("punktfunk1", run_native(frames, fec.into(), loss))] {
                println!(
                    "{:<11} {:<20} {:>4} {:>10} {:>10} {:>6} {:>8}",
                    format,
                    loss.name(),
                    fec,
                    t.delivered,
                    t.recovered,
                    t.lost,
                    t.corrupt
                );
                corrupt += t.corrupt;
            }
        }
    }
    if corrupt > 0 {
        eprintln!("error: {corrupt} frames were delivered corrupted");
        std::process::exit(1);
    }
}
