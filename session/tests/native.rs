//! punktfunk/1 end to end: `punktfunk-client` pairs with `punktfunk serve` through SPAKE2
//! (the PIN entered with `punktfunk pair`), a wrong PIN fails on both sides, an unpaired
//! client gets no stream, and a paired one launches the test-pattern app in a real headless
//! session, receives and decodes its frames over the punktfunk/1 data plane (GF(2^16) FEC,
//! AES-GCM), renegotiates the mode mid-stream, and ends the session; strangers holding
//! connections cannot lock a paired client out.

mod common;

use common::{band, host_cli, native_client, output_text as text, pair_native, start_daemon, stream_native, target_dir};
use std::path::PathBuf;

const PORT: u16 = 23989;
const API_PORT: u16 = 23991;
/// `common` puts punktfunk/1 at port + 50.
const NATIVE: u16 = PORT + 50;

#[test]
fn pairs_streams_renegotiates_and_refuses_strangers() {
    let dir = std::env::temp_dir().join(format!("pf-native-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let app = vec![target_dir().join("punktfunk-test-pattern").display().to_string(), "--color".into(), "3080ff".into()];
    let _daemon = start_daemon(&dir, PORT, API_PORT, &app, "");
    let (alice, mallory): (PathBuf, PathBuf) = (dir.join("alice"), dir.join("mallory"));

    // A wrong PIN fails on both sides, and nothing is stored.
    let (c, h) = pair_native(&[], &dir, &mallory, NATIVE, "1111", "2222");
    assert!(!c.status.success() && text(&c).contains("PINs do not match"), "client: {}", text(&c));
    assert!(!h.status.success(), "punktfunk pair reports the failure: {}", text(&h));
    assert!(!mallory.join("punktfunk-client/hosts.json").exists());

    // This host wants a PIN: trusting on first use is refused.
    let tofu = native_client(&[], &mallory).args(["pair", &format!("127.0.0.1:{NATIVE}"), "--trust"]).output().unwrap();
    assert!(!tofu.status.success() && text(&tofu).contains("wants a PIN"), "{}", text(&tofu));

    // The right PIN pairs both ways.
    let (c, h) = pair_native(&[], &dir, &alice, NATIVE, "4321", "4321");
    assert!(c.status.success(), "client: {}", text(&c));
    assert!(h.status.success() && text(&h).contains("paired with punktfunk-client at 127.0.0.1"), "host: {}", text(&h));
    let clients = text(&host_cli(&[], &dir).args(["clients"]).output().unwrap());
    assert!(clients.contains("punktfunk-client at 127.0.0.1"), "{clients}");

    // A client the host does not know gets no stream, even if it knows the host.
    std::fs::create_dir_all(mallory.join("punktfunk-client")).unwrap();
    std::fs::copy(alice.join("punktfunk-client/hosts.json"), mallory.join("punktfunk-client/hosts.json")).unwrap();
    let out = dir.join("mallory-frames");
    let stranger = native_client(&[], &mallory)
        .args(["stream", &format!("127.0.0.1:{NATIVE}"), "--headless", "--frames", "5", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!stranger.status.success() && text(&stranger).contains("pair again"), "{}", text(&stranger));
    assert!(!out.join("frame-00001.ppm").exists());

    // Stream: 40 frames of the app at 640x360, then the mode changes mid-stream.
    let out = dir.join("frames");
    let args = [
        "--app",
        "Input Test",
        "--mode",
        "640x360@30",
        "--bitrate-kbps",
        "4000",
        "--frames",
        "40",
        "--switch-mode",
        "320x240@30",
        "--switch-after",
        "20",
        "--stop",
    ];
    let stats = stream_native(&[], &dir, &alice, NATIVE, &args, &out);
    eprintln!("punktfunk/1 client: {stats}");
    assert!(stats["frames_decoded"].as_u64().unwrap() >= 40);
    assert_eq!(stats["frames_lost"], 0);
    assert_eq!(stats["datagrams_invalid"], 0);
    assert_eq!(stats["sizes"], serde_json::json!([[640, 360], [320, 240]]), "the renegotiated mode reached the stream");
    // Host and client share a clock here, so the measured offset must be 0 within the
    // estimate's bound (half the round trip), and latency is counted through it.
    let (offset, rtt) = (stats["clock_offset_us"].as_i64().unwrap(), stats["clock_rtt_us"].as_u64().unwrap());
    assert!(offset.unsigned_abs() <= rtt / 2 + 1, "clock offset {offset} µs over a {rtt} µs round trip: {stats}");
    // Measured: on loopback a small frame arrives within the offset's error (up to half the
    // round trip), so the median may read 0 (latencies are clamped there); the tail does not.
    assert!(stats["latency_us_p99"].as_u64().unwrap() > 0, "{stats}");
    assert!(stats["decoder"].as_str().unwrap().starts_with("video decoder: "), "{stats}");
    for n in [20, 40] {
        let b = band(&out.join(format!("frame-{n:05}.ppm")));
        assert!(
            (b[0] - 48.0).abs() < 40.0 && (b[1] - 128.0).abs() < 40.0 && (b[2] - 255.0).abs() < 40.0,
            "frame {n} band {b:?} is not the app's #3080ff"
        );
    }
    // The client reported what it received over the control connection.
    let token = std::fs::read_to_string(dir.join("state/punktfunk/api-token")).unwrap();
    let mut api = std::net::TcpStream::connect(("127.0.0.1", API_PORT)).unwrap();
    std::io::Write::write_all(
        &mut api,
        format!("GET /api/v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n", token.trim()).as_bytes(),
    )
    .unwrap();
    let mut reply = String::new();
    std::io::Read::read_to_string(&mut api, &mut reply).unwrap();
    let status: serde_json::Value = serde_json::from_str(reply.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert!(status["last_native_client"]["frames_received"].as_u64().unwrap() > 0, "{status}");
    // --stop ended the session.
    let status = text(&host_cli(&[], &dir).args(["status"]).output().unwrap());
    assert!(status.contains("idle"), "{status}");

    // 10-bit HEVC (Main10), 4:4:4 and AV1 when asked for: decoded as such, the app's colour intact.
    for (name, args, format) in [
        ("ten-bit", &["--codec", "hevc", "--ten-bit"][..], "yuv420p10le"),
        ("yuv444", &["--codec", "h264", "--yuv444"], "yuv444p"),
        ("av1", &["--codec", "av1"], "yuv420p"),
    ] {
        let out = dir.join(name);
        let args = [&["--app", "Input Test", "--mode", "320x240@30", "--frames", "20", "--stop"][..], args].concat();
        let stats = stream_native(&[], &dir, &alice, NATIVE, &args, &out);
        assert_eq!(stats["pixel_formats"], serde_json::json!([format]), "{stats}");
        assert_eq!(stats["frames_lost"], 0);
        let b = band(&out.join("frame-00020.ppm"));
        assert!(
            (b[0] - 48.0).abs() < 40.0 && (b[1] - 128.0).abs() < 40.0 && (b[2] - 255.0).abs() < 40.0,
            "{name}: band {b:?} is not the app's #3080ff"
        );
    }

    // Latency from the app's draw to the frame's first datagram and to its decoded picture
    // at the client: the client's latency probe reads the pattern's stamp from each decoded
    // picture. Printed, not asserted (timing depends on the machine); the stamps must
    // decode, and causality holds.
    for mode in ["1280x720@60", "1280x720@30", "1280x720@120", "1920x1080@60"] {
        let out = dir.join(format!("latency-{mode}"));
        let args = ["--app", "Input Test", "--mode", mode, "--bitrate-kbps", "10000", "--frames", "90", "--stop"];
        let stats = stream_native(&[], &dir, &alice, NATIVE, &args, &out);
        let probe = &stats["probe"];
        let host = &common::api_status(&dir, API_PORT)["last_video"];
        let at = |what: &str| {
            let p = &probe[what];
            (p["n"].as_i64().unwrap_or(0), p["p50_us"].as_i64().unwrap_or(0), p["p99_us"].as_i64().unwrap_or(0))
        };
        let (wire, decoded) = (at("draw_to_first_datagram"), at("draw_to_decoded"));
        common::figure(&format!(
            "latency (µs) punktfunk/1 {mode} H.264, from the app's draw (n, p50, p99): draw → first datagram {wire:?}, after 30 frames {:?}; draw → decoded {decoded:?}, after 30 frames {:?}; clocks' offset {} ± {}/2; host, commit → last datagram p50/p99 {}/{}",
            at("steady_draw_to_first_datagram"),
            at("steady_draw_to_decoded"),
            stats["clock_offset_us"],
            stats["clock_rtt_us"],
            host["host_latency_us_p50"],
            host["host_latency_us_p99"]
        ));
        common::stages_figure(&format!("punktfunk/1 {mode}"), host);
        assert!(decoded.0 >= 80, "the pattern's stamps decode from the stream: {stats}");
        assert!(0 < wire.1 && wire.1 <= decoded.1, "draw → first datagram within draw → decoded: {wire:?} {decoded:?}");
    }

    // What a user runs on their own network: headless with no frames written, the probe's
    // figures printed.
    let probed = native_client(&[], &alice)
        .args(["stream", &format!("127.0.0.1:{NATIVE}"), "--headless", "--app", "Input Test", "--frames", "60", "--stop"])
        .output()
        .unwrap();
    let said = text(&probed);
    assert!(probed.status.success() && said.contains("latency probe, ") && said.contains("app's draw → decoded here p50 "), "{said}");

    // Removing a client on the host ends what it is streaming.
    let out = dir.join("revoked");
    let mut streaming = native_client(&[], &alice)
        .args([
            "stream",
            &format!("127.0.0.1:{NATIVE}"),
            "--headless",
            "--app",
            "Input Test",
            "--mode",
            "320x240@30",
            "--frames",
            "100000",
            "--out",
        ])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.join("revoked.log")).unwrap())
        .spawn()
        .unwrap();
    let streaming_since = std::time::Instant::now();
    while !out.join("frame-00005.ppm").exists() {
        assert!(
            streaming_since.elapsed().as_secs() < 30,
            "no frames before the removal: {}",
            std::fs::read_to_string(dir.join("revoked.log")).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let status = text(&host_cli(&[], &dir).args(["status"]).output().unwrap());
    assert!(status.contains("video: H.264, 8-bit 4:2:0, BT.709 limited range"), "the host says what it streams: {status}");
    assert!(status.contains("encoding: libx264, frames converted on the CPU"), "and how: {status}");
    let removed = host_cli(&[], &dir).args(["clients", "remove", "punktfunk-client at 127.0.0.1"]).output().unwrap();
    assert!(removed.status.success(), "{}", text(&removed));
    let removed_at = std::time::Instant::now();
    while streaming.try_wait().unwrap().is_none() {
        if removed_at.elapsed().as_secs() > 20 {
            let _ = streaming.kill();
            panic!("the removed client kept streaming");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let stats: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("stats.json")).unwrap()).unwrap();
    assert!(stats["ended"].is_string(), "the host ended the session: {stats}");
    let status = text(&host_cli(&[], &dir).args(["status"]).output().unwrap());
    assert!(status.contains("idle"), "{status}");
    assert!(status.contains("host latency by stage (mean): wait "), "the last stream's latency, stage by stage: {status}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A host that trusts on first use pairs a client without a PIN (and says so in its list).
#[test]
fn trust_on_first_use_when_the_host_allows_it() {
    let dir = std::env::temp_dir().join(format!("pf-native-tofu-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (port, api) = (PORT + 200, API_PORT + 200);
    let _daemon = common::start_daemon_configured(
        &[],
        &dir,
        port,
        api,
        "start_pipewire = false\nnative_trust_on_first_use = true\n",
        &["true".into()],
        "",
    );
    let config = dir.join("client");
    let paired = native_client(&[], &config).args(["pair", &format!("127.0.0.1:{}", port + 50), "--trust"]).output().unwrap();
    assert!(paired.status.success(), "{}", text(&paired));
    assert!(config.join("punktfunk-client/hosts.json").exists());
    let clients = text(&host_cli(&[], &dir).args(["clients"]).output().unwrap());
    assert!(clients.contains("trusted on first use"), "{clients}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A host told to composite with GLES and convert on the GPU (`renderer = "gles"`,
/// `convert = "gpu"`: llvmpipe here) streams frames the compositor converted to the
/// encoder's YUV: the client decodes the app's colour, in 4:2:0 and in 10-bit 4:2:0.
#[test]
fn frames_converted_on_the_gpu_reach_the_client() {
    let dir = std::env::temp_dir().join(format!("pf-native-gpu-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (port, api) = (PORT + 300, API_PORT + 300);
    let app = vec![target_dir().join("punktfunk-test-pattern").display().to_string(), "--color".into(), "3080ff".into()];
    let host = "start_pipewire = false\nnative_trust_on_first_use = true\nsoftware_hevc = true\nrenderer = \"gles\"\nconvert = \"gpu\"\n";
    let _daemon = common::start_daemon_configured(&[], &dir, port, api, host, &app, "");
    let config = dir.join("client");
    let paired = native_client(&[], &config).args(["pair", &format!("127.0.0.1:{}", port + 50), "--trust"]).output().unwrap();
    assert!(paired.status.success(), "{}", text(&paired));
    for (name, codec, format) in [("nv12", &["--codec", "h264"][..], "yuv420p"), ("p010", &["--codec", "hevc", "--ten-bit"], "yuv420p10le")]
    {
        let out = dir.join(name);
        let args = [&["--app", "Input Test", "--mode", "320x240@30", "--frames", "20", "--stop"][..], codec].concat();
        let stats = stream_native(&[], &dir, &config, port + 50, &args, &out);
        assert_eq!(stats["pixel_formats"], serde_json::json!([format]), "{stats}");
        assert_eq!(stats["frames_lost"], 0);
        let b = band(&out.join("frame-00020.ppm"));
        assert!(
            (b[0] - 48.0).abs() < 40.0 && (b[1] - 128.0).abs() < 40.0 && (b[2] - 255.0).abs() < 40.0,
            "{name}: band {b:?} is not the app's #3080ff"
        );
    }
    // The sessions' compositors said what they did (their log is the daemon's), the last one
    // as it ends, after its client left.
    let since = std::time::Instant::now();
    let log = loop {
        let log = std::fs::read_to_string(dir.join("daemon.log")).unwrap();
        if log.matches("stream session ended").count() >= 2 || since.elapsed() > std::time::Duration::from_secs(20) {
            break log;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(log.contains("converting frames to YUV on it"), "{log}");
    assert!(
        log.contains("video: libx264, frames converted on the GPU") && log.contains("video: libx265, frames converted on the GPU"),
        "the host says how frames went: {log}"
    );
    let converted: Vec<u64> = log
        .lines()
        .filter(|l| l.contains("stream session ended"))
        .filter_map(|l| l.split(" converted=").nth(1)?.split_whitespace().next()?.parse().ok())
        .collect();
    assert!(converted.len() == 2 && converted.iter().all(|&n| n >= 10), "frames converted per session: {converted:?}\n{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// An unpaired device from `from` that connects, says hello and stays: what a stranger
/// needs to hold a slot. Returns its connection (open while held) once the hello is out.
type Squatter = (quinn::Endpoint, quinn::Connection, quinn::SendStream, quinn::RecvStream);

async fn squat(from: [u8; 4], host: std::net::SocketAddr) -> anyhow::Result<Squatter> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let cert = rcgen::CertificateParams::new(vec!["squatter".into()])?.self_signed(&key)?;
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(common::AnyServerCertificate))
        .with_client_auth_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der())),
        )?;
    tls.alpn_protocols = vec![punktfunk_core::control::ALPN.to_vec()];
    let config = quinn::ClientConfig::new(std::sync::Arc::new(quinn::crypto::rustls::QuicClientConfig::try_from(tls)?));
    let mut endpoint = quinn::Endpoint::client(std::net::SocketAddr::from((from, 0)))?;
    endpoint.set_default_client_config(config);
    let conn = endpoint.connect(host, "punktfunk-host")?.await?;
    let (mut send, recv) = conn.open_bi().await?;
    send.write_all(&punktfunk_core::control::client::ClientControl::new("squatter").take_output()).await?;
    Ok((endpoint, conn, send, recv))
}

/// 64 unpaired devices, each from its own address, connect and stay (as many as the host
/// serves at once): a paired client still pairs its stream, because strangers may hold only
/// a few of the places.
#[test]
fn strangers_cannot_lock_out_a_paired_client() {
    let dir = std::env::temp_dir().join(format!("pf-native-squat-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (port, api) = (PORT + 400, API_PORT + 400);
    let app = vec![target_dir().join("punktfunk-test-pattern").display().to_string(), "--color".into(), "3080ff".into()];
    let _daemon = common::start_daemon(&dir, port, api, &app, "");
    let alice = dir.join("alice");
    let (c, h) = pair_native(&[], &dir, &alice, port + 50, "4321", "4321");
    assert!(c.status.success() && h.status.success(), "pairing: {} / {}", text(&c), text(&h));

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let host = std::net::SocketAddr::from(([127, 0, 0, 1], port + 50));
    let squatters: Vec<_> = runtime.block_on(async {
        let tries = (0..64u8).map(|n| tokio::spawn(squat([127, 0, 1, n + 1], host)));
        let mut held = Vec::new();
        for t in tries {
            if let Ok(Ok(s)) = t.await {
                held.push(s);
            }
        }
        held
    });
    let open = squatters.iter().filter(|(_, conn, ..)| conn.close_reason().is_none()).count();
    println!("{} of 64 strangers got a connection, {open} still open", squatters.len());

    let out = dir.join("frames");
    let args = ["--app", "Input Test", "--mode", "320x240@30", "--frames", "10", "--stop"];
    let stats = stream_native(&[], &dir, &alice, port + 50, &args, &out);
    assert!(stats["frames_decoded"].as_u64().unwrap_or(0) >= 10, "{stats}");
    let open = squatters.iter().filter(|(_, conn, ..)| conn.close_reason().is_none()).count();
    println!("{open} strangers still connected while the paired client streamed");
    drop(squatters);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A picture that stops changing keeps coming at the floor rate (`min_fps`, 10 by default):
/// the app draws 15 frames and then nothing, and the client still decodes 45.
#[test]
fn a_still_picture_keeps_coming() {
    let dir = std::env::temp_dir().join(format!("pf-native-still-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (port, api) = (PORT + 500, API_PORT + 500);
    let still = target_dir().join("punktfunk-test-pattern").display().to_string();
    let app = vec![still, "--color".into(), "3080ff".into(), "--still-after".into(), "15".into()];
    let host = "start_pipewire = false\nnative_trust_on_first_use = true\n";
    let daemon = common::start_daemon_configured(&[], &dir, port, api, host, &app, "");
    let config = dir.join("client");
    let paired = native_client(&[], &config).args(["pair", &format!("127.0.0.1:{}", port + 50), "--trust"]).output().unwrap();
    assert!(paired.status.success(), "{}", text(&paired));
    let out = dir.join("frames");
    let args = ["--app", "Input Test", "--mode", "320x240@30", "--frames", "45", "--timeout", "30", "--stop"];
    let stats = stream_native(&[], &dir, &config, port + 50, &args, &out);
    assert!(stats["frames_decoded"].as_u64().unwrap_or(0) >= 45, "{stats}");
    let b = band(&out.join("frame-00045.ppm"));
    assert!((b[0] - 48.0).abs() < 40.0 && (b[2] - 255.0).abs() < 40.0, "the still picture is the app's: {b:?}");

    // What a still picture costs at 720p60: the host's live figures (the last second) and
    // the stream process's CPU time over 3 s once the app stopped drawing. Printed.
    let mut watching = native_client(&[], &config)
        .args(["stream", &format!("127.0.0.1:{}", port + 50), "--headless", "--app", "Input Test", "--mode", "1280x720@60"])
        .args(["--frames", "1000000", "--timeout", "20", "--stop"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let live = |k: &str| common::api_status(&dir, api)["sessions"][0]["live"]["stats"][k].as_u64().unwrap_or(0);
    let since = std::time::Instant::now();
    while live("frames") == 0 || live("frames") > 20 {
        assert!(since.elapsed().as_secs() < 20, "no still stream: {}", common::api_status(&dir, api));
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let cpu = || stream_cpu_ticks(daemon.0.id()).expect("the stream's process");
    let (ticks, at) = (cpu(), std::time::Instant::now());
    std::thread::sleep(std::time::Duration::from_secs(3));
    let share = (cpu() - ticks) as f64
        / nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).unwrap().unwrap() as f64
        / at.elapsed().as_secs_f64();
    let status = common::api_status(&dir, api);
    let window = &status["sessions"][0]["live"];
    common::figure(&format!(
        "a still 1280x720@60 picture at min_fps 10: in the last {} ms {} frames of {} bytes of video in {} datagrams (FEC and padding to whole datagrams included); the stream process uses {:.1} % of a core",
        window["window_ms"],
        window["stats"]["frames"],
        window["stats"]["bytes"],
        window["stats"]["datagrams"],
        share * 100.0
    ));
    let _ = watching.kill();
    let _ = watching.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// User and system CPU ticks of the daemon `daemon`'s stream process (its child named
/// `punktfunk-stream`).
fn stream_cpu_ticks(daemon: u32) -> Option<u64> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
        // After the command's name in parentheses: state, ppid, … utime (14th), stime (15th).
        let (name, rest) = stat.split_once(" (")?.1.rsplit_once(") ")?;
        let fields: Vec<&str> = rest.split(' ').collect();
        let number = |i: usize| fields.get(i)?.parse::<u64>().ok();
        (name.starts_with("punktfunk-strea") && number(1)? == u64::from(daemon)).then_some(number(11)? + number(12)?)
    })
}
