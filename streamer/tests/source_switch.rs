//! A stream outlives its frame sources: one compositor session ends, the next starts and
//! feeds the same stream, and the client (core's GameStream depacketizer with the stream's
//! key, then FFmpeg's H.264 decoder) keeps decoding. Across the change, and across a second
//! start of video under the same key (a repeated RTSP PLAY), frame numbers only go up and no
//! AES-GCM IV is used twice; the new source's first frame is a key frame.

use ffmpeg_next as ff;
use punktfunk_compositor::{Config, bounded_control_channel, run_into};
use punktfunk_core::colour::Colour;
use punktfunk_core::gamestream::video::{FrameType, VideoConfig, VideoDepacketizer, VideoEvent};
use punktfunk_streamer::encode::{Codec, Format};
use punktfunk_streamer::gamestream::video::VideoParams;
use punktfunk_streamer::ipc::{self, Command};
use punktfunk_streamer::stream::{Sockets, Stream};
use std::collections::HashSet;
use std::ffi::OsString;
use std::net::UdpSocket;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const KEY: [u8; 16] = [7; 16];
const PING: &str = "0123456789abcdef";
const PACKET_SIZE: usize = 1024;
const RED: u32 = 0xff0000;
const GREEN: u32 = 0x00ff00;

/// What the client received: per frame its number, type and bitstream; every IV seen.
#[derive(Default)]
struct Received {
    frames: Vec<(u32, u8, Vec<u8>)>,
    ivs: Vec<[u8; 12]>,
    rejected: usize,
}

fn binary(name: &str) -> PathBuf {
    // Integration tests run from target/<profile>/deps; the workspace's binaries sit above.
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join(name);
    assert!(path.exists(), "build the workspace first (cargo build --workspace): {} is missing", path.display());
    path
}

fn runtime_dir() -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("pf-switch-runtime-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

fn video_config() -> VideoConfig {
    VideoConfig { packet_size: PACKET_SIZE, fec_percent: 20, min_parity: 2, key: Some(KEY) }
}

/// Pings the host's video socket (so the stream latches this address) and takes in
/// everything that comes back until `stop`.
fn client(host: std::net::SocketAddr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Received> {
    std::thread::spawn(move || {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let mut rx = VideoDepacketizer::new(video_config(), 8).unwrap();
        let mut got = Received::default();
        let mut buf = vec![0u8; 2048];
        let mut ping_seq = 0u32;
        let mut take = |socket: &UdpSocket, got: &mut Received| {
            while let Ok(n) = socket.recv(&mut buf) {
                got.ivs.push(buf[..12].try_into().unwrap());
                let frames = &mut got.frames;
                let pushed = rx.push(&buf[..n], |e| {
                    if let VideoEvent::Frame { index, frame_type, bitstream, .. } = e {
                        frames.push((index, frame_type, bitstream.to_vec()));
                    }
                });
                got.rejected += usize::from(pushed.is_err());
            }
        };
        while !stop.load(Ordering::Relaxed) {
            if ping_seq.is_multiple_of(10) {
                let mut ping = PING.as_bytes().to_vec();
                ping.extend_from_slice(&(ping_seq / 10).to_be_bytes());
                socket.send_to(&ping, host).unwrap();
            }
            ping_seq += 1;
            take(&socket, &mut got);
        }
        // Loopback queues a datagram before the host's send returns: what the host sent
        // before the stop is all here now.
        socket.set_nonblocking(true).unwrap();
        take(&socket, &mut got);
        got
    })
}

/// Runs one compositor session with the test pattern in `rgb` as the stream's source until
/// the app has drawn its frames and exited.
fn run_source(stream: &Stream, rgb: u32, socket: &str) {
    let mut config = Config::new("640x360@60".parse().unwrap());
    let pattern = binary("punktfunk-test-pattern").into_os_string();
    config.command = vec![pattern, "--color".into(), OsString::from(format!("{rgb:06x}")), "--frames".into(), "45".into()];
    config.socket_name = Some(socket.into());
    config.runtime_dir = Some(runtime_dir());
    config.xwayland = false;
    let (control, channel) = bounded_control_channel(64);
    stream.connect_source(control);
    let outcome = run_into(config, stream.mailbox(), Some(channel)).unwrap();
    assert_eq!(outcome.exit_code, Some(0), "the test pattern ran to its end");
}

/// The band colour of each decoded picture, as RED or GREEN (or 0: neither).
fn decode_bands(frames: &[(u32, u8, Vec<u8>)]) -> Vec<(u32, u32)> {
    ff::init().unwrap();
    let mut dec = ff::codec::context::Context::new_with_codec(ff::decoder::find(ff::codec::Id::H264).unwrap()).decoder().video().unwrap();
    let mut picture = ff::frame::Video::empty();
    let (mut bands, mut indices) = (Vec::new(), std::collections::VecDeque::new());
    let mut take = |dec: &mut ff::decoder::Video, indices: &mut std::collections::VecDeque<u32>| {
        while dec.receive_frame(&mut picture).is_ok() {
            // Frames come out in decode order (no B-frames): pair them with their numbers so.
            let index = indices.pop_front().unwrap();
            let (x, y) = (picture.width() / 2, picture.height() * 3 / 4);
            let luma = picture.data(0)[y as usize * picture.stride(0) + x as usize];
            let u = picture.data(1)[(y / 2) as usize * picture.stride(1) + (x / 2) as usize];
            let v = picture.data(2)[(y / 2) as usize * picture.stride(2) + (x / 2) as usize];
            let (r, g, _) = Colour::default().to_rgb(8, [f64::from(luma), f64::from(u), f64::from(v)]);
            let band = match (r > 180, g > 180) {
                (true, false) => RED,
                (false, true) => GREEN,
                _ => 0,
            };
            bands.push((index, band));
        }
    };
    for (index, _, bitstream) in frames {
        dec.send_packet(&ff::Packet::copy(bitstream)).expect("every frame the client gets decodes");
        indices.push_back(*index);
        take(&mut dec, &mut indices);
    }
    dec.send_eof().unwrap();
    take(&mut dec, &mut indices);
    bands
}

#[test]
fn a_stream_goes_on_across_a_change_of_source_and_a_repeated_start() {
    let (mut daemon, ipc) = UnixStream::pair().unwrap();
    let video = UdpSocket::bind("127.0.0.1:0").unwrap();
    let host = video.local_addr().unwrap();
    let native = UdpSocket::bind("127.0.0.1:0").unwrap();
    let stream = Stream::attach(ipc, Sockets { video, native, audio: None }, 0).unwrap();
    let params = VideoParams {
        codec: Codec::H264,
        format: Format::default(),
        bitrate_bps: 4_000_000,
        refresh_mhz: 60_000,
        packet_size: PACKET_SIZE,
        fec_percent: 20,
        fec_max_percent: 0,
        min_parity: 2,
        key: Some(KEY),
        ping_payload: Some(PING.into()),
        client: Some([127, 0, 0, 1].into()),
        encoder: "software".into(),
        resume: None,
        pacing: Default::default(),
        invalidation: false,
    };
    ipc::write(&mut daemon, &Command::StartVideo(params.clone())).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let receiver = client(host, Arc::clone(&stop));

    let socket = format!("pf-switch-{}", std::process::id());
    run_source(&stream, RED, &format!("{socket}-a"));
    // The same stream's video started again under the same key, as a second PLAY does.
    ipc::write(&mut daemon, &Command::StartVideo(params)).unwrap();
    run_source(&stream, GREEN, &format!("{socket}-b"));
    ipc::write(&mut daemon, &Command::Stop).unwrap();
    stream.finish().unwrap();
    // Every datagram was sent once the stream finished (its sink thread joined).
    stop.store(true, Ordering::Relaxed);
    let got = receiver.join().unwrap();

    assert_eq!(got.rejected, 0, "every datagram authenticated");
    let unique: HashSet<_> = got.ivs.iter().collect();
    assert_eq!(unique.len(), got.ivs.len(), "an IV was used twice under the stream's key");
    let numbers: Vec<u32> = got.frames.iter().map(|f| f.0).collect();
    assert!(numbers.len() > 20, "frames arrived: {numbers:?}");
    assert!(numbers.windows(2).all(|w| w[1] > w[0]), "frame numbers only go up: {numbers:?}");

    let bands = decode_bands(&got.frames);
    assert_eq!(bands.len(), got.frames.len(), "every frame decoded to a picture");
    let last_red = bands.iter().rev().find(|b| b.1 == RED).expect("the first source's frames arrived").0;
    let first_green = bands.iter().find(|b| b.1 == GREEN).expect("the second source's frames arrived").0;
    assert!(last_red < first_green, "the first source's pictures all come before the second's: {bands:?}");
    let idr = FrameType::Idr as u8;
    assert!(
        got.frames.iter().any(|f| f.1 == idr && f.0 > last_red && f.0 <= first_green),
        "the second source starts with a key frame: {:?}",
        got.frames.iter().map(|f| (f.0, f.1)).collect::<Vec<_>>()
    );
}
