//! The GameStream video hot path per frame: encode (libx264), packetize with FEC (20 %),
//! encrypt (AES-GCM) and send over loopback UDP, as [`VideoSender`] runs it in the
//! compositor process, paced for Wi-Fi (every frame spread out) and for a wired link (a
//! frame's first 64 datagrams at once). Baseline in the same run: the encoder alone on the
//! same frames.
//!
//! `cargo bench -p punktfunk-streamer --bench gamestream_send`

use punktfunk_streamer::encode::{Choice, Codec, EncoderConfig, open};
use punktfunk_streamer::gamestream::video::{Peer, Pings, VideoParams, VideoSender, listen_for_pings};
mod common;

use common::{frame, stats};
use punktfunk_core::stream::Pacing;
use punktfunk_streamer::BufferPool;
use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

const FRAMES: u64 = 240;

fn main() {
    println!("| case | median | p99 |");
    println!("|---|---|---|");
    for (w, h, kbps) in [(1280u32, 720u32, 10_000u64), (1920, 1080, 20_000)] {
        let pool = BufferPool::new((w * h * 4) as usize, 2);
        // Baseline: the encoder alone.
        let mut enc =
            open(Choice::Only(punktfunk_streamer::encode::Backend::Software), EncoderConfig::new(Codec::H264, w, h, 60_000, kbps * 1000))
                .unwrap()
                .encoder;
        let encode: Vec<f64> = (0..FRAMES)
            .map(|n| {
                let f = frame(&pool, w, h, n);
                let t = Instant::now();
                enc.encode(&f, n == 0).unwrap();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();

        let (em, ep) = stats(encode);
        println!("| {w}x{h} x264 encode only (baseline) | {em:.2} ms | {ep:.2} ms |");
        for pacing in [Pacing::Wifi, Pacing::Wired] {
            let (tm, tp) = stats(send_path(&pool, w, h, kbps, pacing));
            println!("| {w}x{h} encode + FEC + encrypt + send, {pacing:?} pacing | {tm:.2} ms ({:.2}× baseline) | {tp:.2} ms |", tm / em);
        }
    }
}

/// Per-frame times of the whole path to a client on loopback that drains its socket.
fn send_path(pool: &BufferPool, w: u32, h: u32, kbps: u64, pacing: Pacing) -> Vec<f64> {
    let host = UdpSocket::bind("127.0.0.1:0").unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    let peer = Peer::default();
    let stop = Arc::new(AtomicBool::new(false));
    let (listener, listener_peer, listener_stop) = (host.try_clone().unwrap(), peer.clone(), Arc::clone(&stop));
    std::thread::spawn(move || listen_for_pings(listener, Pings::default(), listener_peer, listener_stop, || {}));
    client.send_to(b"PING", host.local_addr().unwrap()).unwrap();
    while peer.get().is_none() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let drain = client.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while drain.recv(&mut buf).is_ok() {}
    });
    let params = VideoParams {
        codec: Codec::H264,
        format: Default::default(),
        bitrate_bps: kbps * 1000,
        refresh_mhz: 60_000,
        packet_size: 1360,
        fec_percent: 20,
        fec_max_percent: 0,
        min_parity: 2,
        key: Some([7; 16]),
        ping_payload: None,
        client: None,
        encoder: "software".into(),
        resume: None,
        pacing,
        invalidation: false,
    };
    let mut sender = VideoSender::new(params, host, peer, Arc::new(AtomicBool::new(false)), None).unwrap();
    let mut total = Vec::new();
    for n in 0..FRAMES {
        let f = frame(pool, w, h, n);
        let t = Instant::now();
        if sender.send(f).unwrap().is_some() {
            total.push(t.elapsed().as_secs_f64() * 1e3);
        }
        // Real frames come every 16.7 ms; the pacer spreads a frame over part of that.
        std::thread::sleep(Duration::from_millis(16).saturating_sub(t.elapsed()));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    total
}
