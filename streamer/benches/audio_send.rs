//! The audio path per 5 ms packet, and per stream.
//!
//! 1. Synthetic: Opus encode alone (baseline) against the whole per-packet path (encode,
//!    AES-CBC, 4+2 FEC, UDP send on loopback) for stereo, 5.1 and 7.1 high quality.
//! 2. Real, when PipeWire is installed: a private PipeWire, a session sink, `pacat` playing a
//!    tone into it, [`AudioSender`] sending to a loopback client for 10 s. Reports the
//!    capture → send latency the sender measured and this process's CPU (sink thread, sender,
//!    ping listener) as a share of one core.
//!
//! `cargo bench -p punktfunk-streamer --bench audio_send`

mod common;

use common::stats;
use punktfunk_core::gamestream::audio::AudioPacketizer;
use punktfunk_session::pipewire::PipeWireServer;
use punktfunk_streamer::audio::SessionAudio;
use punktfunk_streamer::audio::encoder::AudioEncoder;
use punktfunk_streamer::audio::layout::{Channels, OpusLayout};
use punktfunk_streamer::gamestream::audio::{self, AudioParams};
use std::net::UdpSocket;
use std::time::{Duration, Instant};

const PACKETS: usize = 4000;

fn main() {
    // Before any thread: PipeWire clients in this process find the private daemon here.
    let dir = std::env::temp_dir().join(format!("punktfunk-audio-bench-{}", std::process::id()));
    let runtime = dir.join("runtime");
    // SAFETY: single-threaded so far.
    unsafe { std::env::set_var("XDG_RUNTIME_DIR", &runtime) };

    println!("| layout | Opus encode median / p99 | whole packet path median / p99 | ratio | CPU per stream |");
    println!("|---|---|---|---|---|");
    let host = UdpSocket::bind("127.0.0.1:0").unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    let drain = client.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while drain.recv(&mut buf).is_ok() {}
    });
    let to = client.local_addr().unwrap();
    for (name, channels, hq) in
        [("stereo", Channels::Stereo, false), ("5.1", Channels::Surround51, false), ("7.1 HQ", Channels::Surround71, true)]
    {
        let layout = OpusLayout::new(channels, hq);
        let n = channels.count();
        let pcm: Vec<f32> = (0..240 * n * PACKETS)
            .map(|i| ((i / n) as f32 * (300.0 + 100.0 * (i % n) as f32) / 48_000.0 * std::f32::consts::TAU).sin() * 0.3)
            .collect();
        let mut enc = AudioEncoder::new(layout, 5).unwrap();
        let frames = || pcm.chunks_exact(240 * n);
        let encode: Vec<f64> = frames()
            .map(|f| {
                let t = Instant::now();
                std::hint::black_box(enc.encode(f).unwrap());
                t.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        let mut enc = AudioEncoder::new(layout, 5).unwrap();
        let mut packetizer = AudioPacketizer::new(5, Some(([7; 16], 1)));
        let whole: Vec<f64> = frames()
            .map(|f| {
                let t = Instant::now();
                let opus = enc.encode(f).unwrap();
                packetizer
                    .push(opus, |d| {
                        let _ = host.send_to(d, to);
                    })
                    .unwrap();
                t.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        let ((e50, e99), (w50, w99)) = (stats(encode), stats(whole));
        // 200 packets a second.
        println!(
            "| {name} ({} kbit/s) | {e50:.1} / {e99:.1} µs | {w50:.1} / {w99:.1} µs | {:.2}x | {:.2} % of a core |",
            layout.bitrate / 1000,
            w50 / e50,
            w50 * 200.0 / 1e4
        );
    }

    if which("pipewire") && which("pacat") {
        real_pipewire(&dir, &runtime);
    } else {
        println!("\n(PipeWire or pacat not installed: no capture figures)");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).exists()))
}

/// CPU time this process used so far (user + system).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<u64> = after_name.split(' ').skip(11).take(2).map(|f| f.parse().unwrap()).collect();
    // Clock ticks of 10 ms (USER_HZ is 100 on Linux).
    Duration::from_millis((fields[0] + fields[1]) * 10)
}

fn real_pipewire(dir: &std::path::Path, runtime: &std::path::Path) {
    let server = PipeWireServer::start(runtime, Some(dir)).unwrap();
    let session = SessionAudio::start("bench", Channels::Stereo, Duration::from_secs(5)).unwrap();
    let tone = dir.join("tone.raw");
    let samples: Vec<u8> = (0..48_000 * 15)
        .flat_map(|i| {
            let s = ((i as f32 / 48_000.0 * 440.0 * std::f32::consts::TAU).sin() * 0.4).to_le_bytes();
            [s, s].concat()
        })
        .collect();
    std::fs::write(&tone, samples).unwrap();
    let mut app = std::process::Command::new("pacat")
        .args(["--playback", "--raw", "--format=float32le", "--rate=48000", "--channels=2"])
        .arg(&tone)
        .envs(server.env().iter().cloned())
        .envs(session.env())
        .spawn()
        .unwrap();

    let host = UdpSocket::bind("127.0.0.1:0").unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    let params = AudioParams {
        channels: Channels::Stereo,
        high_quality: false,
        packet_ms: 5,
        key: Some(([7; 16], 1)),
        ping_payload: None,
        client: None,
        resume: None,
    };
    let sender = audio::start(params, host.try_clone().unwrap(), session.subscribe(), Channels::Stereo, None).unwrap();
    client.send_to(b"PING", host.local_addr().unwrap()).unwrap();
    let drain = client.try_clone().unwrap();
    drain.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let received = std::thread::spawn(move || {
        let (mut buf, mut n) = ([0u8; 2048], 0u64);
        while drain.recv(&mut buf).is_ok() {
            n += 1;
        }
        n
    });
    std::thread::sleep(Duration::from_secs(1));
    let (cpu0, t0) = (cpu_time(), Instant::now());
    std::thread::sleep(Duration::from_secs(10));
    let (cpu, wall) = (cpu_time() - cpu0, t0.elapsed());
    let (stats, _) = sender.stop();
    let _ = app.kill();
    let _ = app.wait();
    let datagrams = received.join().unwrap();
    println!(
        "\nReal PipeWire, stereo tone, 10 s: {} packets ({} datagrams received), capture → send p50 {} µs, p99 {} µs; this process used {:.2} % of one core ({:?} CPU in {:?})",
        stats.packets,
        datagrams,
        stats.capture_to_send_us_p50,
        stats.capture_to_send_us_p99,
        cpu.as_secs_f64() / wall.as_secs_f64() * 100.0,
        cpu,
        wall
    );
    drop(session);
    drop(server);
}
