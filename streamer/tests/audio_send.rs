//! The GameStream audio sender over loopback UDP, fed like the session's sink would feed it:
//! nothing goes out before the client pings; sound arrives as encrypted RTP the core's
//! depacketizer and an Opus decoder turn back into the tone, after the 600 ms of silence a
//! stream starts with (Moonlight drops its first 500 ms); silence stops the packets after
//! the hangover, at a FEC block boundary; sound brings them back. A sender started again for
//! the same stream goes on with its sequence numbers (the AES-CBC IVs are made from them).

use punktfunk_core::gamestream::audio::{AudioDepacketizer, AudioEvent};
use punktfunk_streamer::audio::layout::Channels;
use punktfunk_streamer::audio::queue::{Chunk, PcmQueue};
use punktfunk_streamer::gamestream::audio::{self, AudioParams};
use std::net::UdpSocket;
use std::sync::Arc;
use std::time::{Duration, Instant};

const KEY: ([u8; 16], u32) = ([0x42; 16], 0xfedc_ba98);
const PAYLOAD: &str = "0123456789abcdef";
/// Longer than the sender's idle wait (200 ms), after which it notices the client and
/// starts its silence.
const PRIMER_WAIT: Duration = Duration::from_millis(300);
/// One 5 ms graph cycle of 5.1 (the session's sink), the stream is stereo.
const CYCLE: usize = 240;

fn cycle(n: usize, freq: f32) -> Chunk {
    let samples = (0..CYCLE * 6)
        .map(|i| {
            let t = (n * CYCLE + i / 6) as f32 / 48_000.0;
            if i % 6 < 2 { (t * freq * std::f32::consts::TAU).sin() * 0.4 } else { 0.0 }
        })
        .collect();
    Chunk { samples, captured: Instant::now() }
}

/// Pushes `chunks` twenty at a time (100 ms of sound, no more than a socket buffer holds),
/// collecting what the sender sends after each batch.
fn exchange(queue: &PcmQueue, client: &UdpSocket, chunks: impl Iterator<Item = Chunk>) -> Vec<Vec<u8>> {
    let (mut got, mut chunks) = (Vec::new(), chunks.peekable());
    while chunks.peek().is_some() {
        for c in chunks.by_ref().take(20) {
            queue.push(c);
        }
        got.extend(drain(client, Duration::from_millis(100)));
    }
    got
}

/// Datagrams until none arrives for `wait`.
fn drain(client: &UdpSocket, wait: Duration) -> Vec<Vec<u8>> {
    client.set_read_timeout(Some(wait)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1500];
    while let Ok(n) = client.recv(&mut buf) {
        got.push(buf[..n].to_vec());
    }
    got
}

/// Pings until the sender has heard it, as Moonlight keeps pinging (a ping is a datagram:
/// one may be lost).
fn ping_until_heard(sender: &punktfunk_streamer::audio::sender::AudioSender, client: &UdpSocket, ping: &[u8]) {
    let end = Instant::now() + Duration::from_secs(30);
    while sender.peer().is_none() {
        assert!(Instant::now() < end, "the sender never heard the ping");
        client.send(ping).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stereo in 5 ms packets, encrypted, for a client on this machine.
fn params() -> AudioParams {
    AudioParams {
        channels: Channels::Stereo,
        high_quality: false,
        packet_ms: 5,
        key: Some(KEY),
        ping_payload: Some(PAYLOAD.into()),
        client: Some([127, 0, 0, 1].into()),
        resume: None,
    }
}

#[test]
fn sends_sound_encrypted_with_fec_and_stays_quiet_in_silence() {
    let host = UdpSocket::bind("127.0.0.1:0").unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.connect(host.local_addr().unwrap()).unwrap();
    let queue = Arc::new(PcmQueue::new(1024));
    let params = params();
    let sender = audio::start(params, host.try_clone().unwrap(), Arc::clone(&queue), Channels::Surround51, None).unwrap();

    // Before any ping there is nobody to send to.
    for n in 0..20 {
        queue.push(cycle(n, 440.0));
    }
    assert!(drain(&client, Duration::from_millis(300)).is_empty(), "sent before the client pinged");

    let mut ping = PAYLOAD.as_bytes().to_vec();
    ping.extend_from_slice(&1u32.to_be_bytes());
    ping_until_heard(&sender, &client, &ping);
    // The session is silent: 600 ms of silence go out first (Moonlight drops the first
    // 500 ms it receives), at a packet's pace, then nothing.
    let primer = drain(&client, PRIMER_WAIT);
    assert_eq!(data_seqs(&primer), (0..120).collect::<Vec<u16>>(), "the primer's packets");
    let sound = exchange(&queue, &client, (0..400).map(|n| cycle(n, 440.0)));

    let mut depacketizer = AudioDepacketizer::new(5, Some(KEY));
    let mut decoder = opus::Decoder::new(48_000, opus::Channels::Stereo).unwrap();
    let (mut pcm, mut packets) = (Vec::new(), 0);
    for d in &sound {
        depacketizer
            .push(d, |event| {
                if let AudioEvent::Packet { opus, .. } = event {
                    packets += 1;
                    let mut out = [0f32; 480];
                    let n = decoder.decode_float(opus, &mut out, false).unwrap();
                    pcm.extend_from_slice(&out[..n * 2]);
                }
            })
            .unwrap();
    }
    // 400 cycles of 240 samples are 400 packets of 5 ms, plus two parity per four.
    assert_eq!((packets, sound.len()), (400, 600), "data and FEC datagrams");
    let tail = &pcm[pcm.len() / 2..];
    let power = |freq: f32| {
        let w = std::f32::consts::TAU * freq / 48_000.0;
        let (re, im) = tail
            .iter()
            .step_by(2)
            .enumerate()
            .fold((0.0f32, 0.0f32), |(re, im), (i, s)| (re + s * (w * i as f32).cos(), im + s * (w * i as f32).sin()));
        re * re + im * im
    };
    assert!(power(440.0) > 1000.0 * power(880.0), "the tone survived: {} vs {}", power(440.0), power(880.0));

    // Two seconds of digital silence: the hangover (200 ms = 40 packets), rounded up to the
    // end of a FEC block, goes out; the rest does not.
    let silence = (400..800).map(|n| {
        let mut c = cycle(n, 440.0);
        c.samples.fill(0.0);
        c
    });
    let quiet = exchange(&queue, &client, silence);
    let quiet_data = quiet.iter().filter(|d| d[1] == 97).count();
    assert!((40..=44).contains(&quiet_data), "{quiet_data} packets of silence sent");
    assert_eq!(quiet.len(), quiet_data * 3 / 2, "every block was completed with its parity");

    assert_eq!(
        exchange(&queue, &client, (800..840).map(|n| cycle(n, 440.0))).iter().filter(|d| d[1] == 97).count(),
        40,
        "sound reopens the gate"
    );

    let (stats, _) = sender.stop();
    assert_eq!(stats.packets, 120 + 400 + quiet_data as u64 + 40);
    assert_eq!(stats.silent, 400 - quiet_data as u64);
    assert!(stats.capture_to_send_us_p99 > 0);
}

/// The RTP sequence numbers of the data datagrams (payload type 97) among `datagrams`.
fn data_seqs(datagrams: &[Vec<u8>]) -> Vec<u16> {
    datagrams.iter().filter(|d| d[1] == 97).map(|d| u16::from_be_bytes([d[2], d[3]])).collect()
}

#[test]
fn a_sender_started_again_for_the_same_stream_goes_on_with_its_sequence() {
    let host = UdpSocket::bind("127.0.0.1:0").unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.connect(host.local_addr().unwrap()).unwrap();
    let params = params();
    let mut ping = PAYLOAD.as_bytes().to_vec();
    ping.extend_from_slice(&1u32.to_be_bytes());
    let run = |resume, from: usize| {
        let queue = Arc::new(PcmQueue::new(1024));
        let sender = audio::start(params.clone(), host.try_clone().unwrap(), Arc::clone(&queue), Channels::Surround51, resume).unwrap();
        ping_until_heard(&sender, &client, &ping);
        // Each start sends its 600 ms of silence first (a reconnected Moonlight drops the
        // first 500 ms again).
        let primer = drain(&client, PRIMER_WAIT);
        let sent = exchange(&queue, &client, (from..from + 10).map(|n| cycle(n, 440.0)));
        let (_, position) = sender.stop();
        ([data_seqs(&primer), data_seqs(&sent)].concat(), position.expect("a GameStream sender says where it stopped"))
    };
    let (first, stopped) = run(None, 0);
    assert_eq!(first, (0..130).collect::<Vec<u16>>());
    assert_eq!(stopped.seq, 130);
    let (second, _) = run(Some(stopped), 10);
    assert_eq!(second, (130..260).collect::<Vec<u16>>(), "the sequence, and with it the IV, goes on");
}
