//! The punktfunk/1 data plane between two processes on
//! loopback, against plain UDP measured the same way in the same run.
//!
//! The sender (this process) submits synthetic frames at a fixed frame rate and size for a
//! target bitrate, through the real path: core `Sender` (GF(2^16) FEC, AES-GCM) and
//! [`DataSocket`] (UDP GSO). A receiver process (this binary again) reads with recvmmsg/GRO
//! into core's `Receiver` and reports frames delivered, recovered and lost, submit →
//! reassembled latency (both processes read the same monotonic clock) and its CPU time.
//! "Plain UDP" sends the same frames as bare datagrams of the same size (a 24-byte header,
//! no FEC, no crypto) and counts a frame when all of its datagrams arrived: the ceiling.
//! Loss, when asked for, is a random drop at the sender just before the send call.

use anyhow::Context;
use punktfunk_core::Datagrams;
use punktfunk_core::native::config::StreamConfig;
use punktfunk_core::native::receiver::{FrameEvent, Receiver};
use punktfunk_core::native::sender::{Frame, Sender};
use punktfunk_net::{DataSocket, monotonic_us};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Datagram payload for both modes (a 1500-byte MTU with IPv4, UDP and our overheads).
const SHARD: usize = 1400;
const PLAIN_HEADER: usize = 24;
const FPS: u32 = 240;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum Mode {
    /// Bare datagrams: what the machine moves without FEC or crypto.
    Plain,
    /// punktfunk/1: FEC 20 %, AES-128-GCM.
    Pf1,
}

/// What the receiver process reports.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Received {
    pub frames: u64,
    pub recovered: u64,
    pub lost: u64,
    pub bytes: u64,
    pub datagrams: u64,
    pub latency_us_p50: u64,
    pub latency_us_p99: u64,
    pub cpu_us: u64,
}

/// One run's figures.
pub struct Outcome {
    pub mode: Mode,
    pub target_gbps: f64,
    pub sent_frames: u64,
    pub received: Received,
    pub goodput_gbps: f64,
    /// Sender plus receiver CPU, in cores busy per Gbit/s of goodput.
    pub cores_per_gbps: f64,
    pub send_calls: u64,
    pub datagrams_sent: u64,
}

fn cpu_us() -> u64 {
    let u = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).expect("getrusage");
    let us = |t: nix::sys::time::TimeVal| t.tv_sec() as u64 * 1_000_000 + t.tv_usec() as u64;
    us(u.user_time()) + us(u.system_time())
}

fn config(fec_percent: u16) -> StreamConfig {
    StreamConfig { shard_len: SHARD, fec_percent, key: Some([0x5a; 16]), ..StreamConfig::default() }
}

/// Runs one mode at one bitrate for `seconds`, the receiver in a child process.
pub fn run(mode: Mode, gbps: f64, seconds: f64, loss_percent: f64) -> anyhow::Result<Outcome> {
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .args(["receive", "--mode", if mode == Mode::Plain { "plain" } else { "pf1" }, "--seconds", &seconds.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the receiver process")?;
    let mut lines = BufReader::new(child.stdout.take().context("receiver stdout")?).lines();
    let to: SocketAddr = lines.next().context("the receiver said nothing")??.parse().context("the receiver's address")?;

    let mut socket = DataSocket::new(UdpSocket::bind("127.0.0.1:0")?)?;
    let frame_len = (gbps * 1e9 / 8.0 / f64::from(FPS)) as usize;
    let data: Vec<u8> = (0..frame_len).map(|i| (i * 31 + i / 4099) as u8).collect();
    let frames = (seconds * f64::from(FPS)) as u64;
    let mut sender = Sender::new(config(20))?;
    let mut plain = vec![0u8; frame_len.div_ceil(SHARD) * (PLAIN_HEADER + SHARD)];
    let mut loss = Loss::new(loss_percent);
    let (cpu0, start) = (cpu_us(), Instant::now());
    let mut datagrams_sent = 0u64;
    for id in 0..frames {
        let due = start + Duration::from_secs_f64(id as f64 / f64::from(FPS));
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let ts = monotonic_us();
        let batch = match mode {
            Mode::Pf1 => sender.packetize(&Frame { id: id as u32, keyframe: id == 0, repair: false, timestamp_us: ts, data: &data })?,
            Mode::Plain => plain_frame(&mut plain, id as u32, ts, &data),
        };
        datagrams_sent += batch.count() as u64;
        loss.send(&mut socket, to, &batch)?;
    }
    let (sender_cpu, elapsed) = (cpu_us() - cpu0, start.elapsed());
    let status = child.wait()?;
    anyhow::ensure!(status.success(), "the receiver failed: {status}");
    let received: Received = serde_json::from_str(&lines.next().context("the receiver reported nothing")??)?;
    let secs = elapsed.as_secs_f64();
    let goodput_gbps = received.bytes as f64 * 8.0 / secs / 1e9;
    let cores = (sender_cpu + received.cpu_us) as f64 / 1e6 / secs;
    Ok(Outcome {
        mode,
        target_gbps: gbps,
        sent_frames: frames,
        received,
        goodput_gbps,
        cores_per_gbps: cores / goodput_gbps.max(1e-9),
        send_calls: socket.send_calls,
        datagrams_sent,
    })
}

/// Lays `data` out as plain datagrams: frame id, index, count, timestamp, then the bytes.
fn plain_frame<'a>(buf: &'a mut [u8], id: u32, ts: u64, data: &[u8]) -> Datagrams<'a> {
    let stride = PLAIN_HEADER + SHARD;
    let count = data.len().div_ceil(SHARD);
    for (i, chunk) in data.chunks(SHARD).enumerate() {
        let d = &mut buf[i * stride..(i + 1) * stride];
        d[..4].copy_from_slice(&id.to_le_bytes());
        d[4..8].copy_from_slice(&(i as u32).to_le_bytes());
        d[8..12].copy_from_slice(&(count as u32).to_le_bytes());
        d[16..24].copy_from_slice(&ts.to_le_bytes());
        d[PLAIN_HEADER..PLAIN_HEADER + chunk.len()].copy_from_slice(chunk);
    }
    Datagrams::new(&buf[..count * stride], stride)
}

/// Random loss before the send call (xorshift, seeded: runs are repeatable).
struct Loss {
    per_million: u64,
    state: u64,
}

impl Loss {
    fn new(percent: f64) -> Self {
        Self { per_million: (percent * 10_000.0) as u64, state: 0x9e37_79b9_7f4a_7c15 }
    }

    fn lost(&mut self) -> bool {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state % 1_000_000 < self.per_million
    }

    /// Sends the batch, minus the datagrams the loss model takes, in runs around the gaps.
    fn send(&mut self, socket: &mut DataSocket, to: SocketAddr, batch: &Datagrams<'_>) -> std::io::Result<()> {
        if self.per_million == 0 {
            return socket.send(to, batch);
        }
        let mut run_start = 0;
        for i in 0..batch.count() {
            if self.lost() {
                if run_start < i {
                    socket.send(to, &batch.range(run_start, i))?;
                }
                run_start = i + 1;
            }
        }
        if run_start < batch.count() {
            socket.send(to, &batch.range(run_start, batch.count()))?;
        }
        Ok(())
    }
}

/// The receiver process: prints its address, receives until the sender has been quiet for
/// half a second (or `seconds` + 5 s passed), prints its figures as JSON.
pub fn receive(mode: Mode, seconds: f64) -> anyhow::Result<()> {
    let mut socket = DataSocket::new(UdpSocket::bind("127.0.0.1:0")?)?;
    if let Some(w) = socket.buffers().warning() {
        eprintln!("{w}");
    }
    println!("{}", socket.socket().local_addr()?);
    let mut receiver = Receiver::new(config(20))?;
    let mut plain = PlainReceiver::default();
    let (mut r, mut latencies) = (Received::default(), Vec::new());
    let (cpu0, deadline) = (cpu_us(), Instant::now() + Duration::from_secs_f64(seconds + 5.0));
    let mut started = false;
    while Instant::now() < deadline {
        let got = socket.recv(Duration::from_millis(500), |_, d| {
            r.datagrams += 1;
            match mode {
                Mode::Pf1 => {
                    let _ = receiver.push(d, |e| match e {
                        FrameEvent::Frame { timestamp_us, recovered_shards, data, .. } => {
                            r.frames += 1;
                            r.bytes += data.len() as u64;
                            r.recovered += u64::from(recovered_shards > 0);
                            latencies.push(monotonic_us().saturating_sub(timestamp_us));
                        }
                        FrameEvent::Lost { .. } => r.lost += 1,
                    });
                }
                Mode::Plain => {
                    if let Some((bytes, ts)) = plain.push(d) {
                        r.frames += 1;
                        r.bytes += bytes;
                        latencies.push(monotonic_us().saturating_sub(ts));
                    }
                }
            }
        });
        match got? {
            0 if started => break,
            0 => {}
            _ => started = true,
        }
    }
    if mode == Mode::Plain {
        r.lost = plain.incomplete();
    }
    latencies.sort_unstable();
    let at = |q: f64| latencies.get(((latencies.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0);
    (r.latency_us_p50, r.latency_us_p99) = (at(0.5), at(0.99));
    r.cpu_us = cpu_us() - cpu0;
    println!("{}", serde_json::to_string(&r)?);
    Ok(())
}

/// Counts plain frames whose datagrams all arrived.
#[derive(Default)]
struct PlainReceiver {
    /// frame id → (datagrams seen, datagrams expected, bytes, timestamp)
    open: BTreeMap<u32, (u32, u32, u64, u64)>,
    completed: u64,
    highest: Option<u32>,
}

impl PlainReceiver {
    /// A complete frame's payload bytes and timestamp.
    fn push(&mut self, d: &[u8]) -> Option<(u64, u64)> {
        let field = |at: usize| u32::from_le_bytes(d[at..at + 4].try_into().expect("4 bytes"));
        if d.len() < PLAIN_HEADER {
            return None;
        }
        let (id, count) = (field(0), field(8));
        let ts = u64::from_le_bytes(d[16..24].try_into().expect("8 bytes"));
        self.highest = Some(self.highest.map_or(id, |h| h.max(id)));
        let e = self.open.entry(id).or_insert((0, count, 0, ts));
        e.0 += 1;
        e.2 += (d.len() - PLAIN_HEADER) as u64;
        if e.0 == e.1 {
            let (_, _, bytes, ts) = self.open.remove(&id).expect("just seen");
            self.completed += 1;
            return Some((bytes, ts));
        }
        None
    }

    fn incomplete(&self) -> u64 {
        self.highest.map_or(0, |h| u64::from(h) + 1 - self.completed)
    }
}

/// Both modes at each rate, then punktfunk/1 under loss.
pub fn transport(rates: &[f64], seconds: f64, loss_percent: f64) -> anyhow::Result<()> {
    println!("{FPS} frames/s for {seconds} s per run; {SHARD}-byte payloads; punktfunk/1 with 20 % FEC and AES-128-GCM");
    println!(
        "| target Gbit/s | mode | goodput Gbit/s | frames lost / sent | recovered | latency p50 / p99 | CPU cores per Gbit/s | datagrams per send call |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut best: BTreeMap<&str, f64> = BTreeMap::new();
    for &gbps in rates {
        for mode in [Mode::Plain, Mode::Pf1] {
            let o = run(mode, gbps, seconds, 0.0)?;
            print_row(&o);
            if o.received.lost == 0 && o.received.frames == o.sent_frames {
                let b = best.entry(if mode == Mode::Plain { "plain" } else { "pf1" }).or_default();
                *b = b.max(o.goodput_gbps);
            }
        }
    }
    let (plain, pf1) = (best.get("plain").copied().unwrap_or(0.0), best.get("pf1").copied().unwrap_or(0.0));
    println!(
        "\nHighest goodput with every frame delivered: plain UDP {plain:.2} Gbit/s, punktfunk/1 {pf1:.2} Gbit/s ({:.2} of plain)",
        pf1 / plain.max(1e-9)
    );
    if loss_percent > 0.0 {
        println!("\nWith {loss_percent} % random loss:\n");
        println!(
            "| target Gbit/s | mode | goodput Gbit/s | frames lost / sent | recovered | latency p50 / p99 | CPU cores per Gbit/s | datagrams per send call |"
        );
        println!("|---|---|---|---|---|---|---|---|");
        for &gbps in rates {
            print_row(&run(Mode::Pf1, gbps, seconds, loss_percent)?);
        }
    }
    Ok(())
}

fn print_row(o: &Outcome) {
    let r = &o.received;
    println!(
        "| {:.2} | {} | {:.2} | {} / {} | {} | {} / {} µs | {:.2} | {:.1} |",
        o.target_gbps,
        if o.mode == Mode::Plain { "plain UDP" } else { "punktfunk/1" },
        o.goodput_gbps,
        o.sent_frames - r.frames,
        o.sent_frames,
        r.recovered,
        r.latency_us_p50,
        r.latency_us_p99,
        o.cores_per_gbps,
        o.datagrams_sent as f64 / o.send_calls.max(1) as f64
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_frames_count_only_when_whole() {
        let data = vec![7u8; SHARD * 3 - 10];
        let mut buf = vec![0u8; 3 * (PLAIN_HEADER + SHARD)];
        let batch: Vec<Vec<u8>> = plain_frame(&mut buf, 4, 99, &data).iter().map(<[u8]>::to_vec).collect();
        let mut rx = PlainReceiver::default();
        assert_eq!(rx.push(&batch[0]), None);
        assert_eq!(rx.push(&batch[2]), None);
        assert_eq!(rx.push(&batch[1]), Some((3 * SHARD as u64, 99)));
        assert_eq!(rx.incomplete(), 4, "frames 0..3 never came");
    }

    #[test]
    fn loss_model_drops_about_the_share_asked_for() {
        let mut loss = Loss::new(1.0);
        let dropped = (0..100_000).filter(|_| loss.lost()).count();
        assert!((800..1200).contains(&dropped), "{dropped}");
        assert!(!Loss::new(0.0).lost());
    }
}
