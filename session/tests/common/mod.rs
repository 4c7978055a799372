//! Starting and stopping `punktfunk serve` for the end-to-end tests.
// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Daemon(pub Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.0.id() as i32), nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
    }
}

/// The Python with moonlight-python (`.ci/run` builds it); outside CI, `None` skips a test.
pub fn python() -> Option<PathBuf> {
    match std::env::var_os("PUNKTFUNK_MOONLIGHT_PYTHON") {
        Some(p) => Some(p.into()),
        None if std::env::var_os("CI").is_some() => panic!("PUNKTFUNK_MOONLIGHT_PYTHON must name moonlight-python's interpreter on CI"),
        None => None,
    }
}

/// The JSON `moonlight_client.py` printed last; on failure, the client's and the daemon's
/// logs (from `dir`) in the panic message.
pub fn client_report(output: &std::process::Output, dir: &Path) -> serde_json::Value {
    let log = std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default();
    assert!(output.status.success(), "client failed: {}\n--- daemon log ---\n{log}", String::from_utf8_lossy(&output.stderr));
    let last = output.stdout.rsplit(|&b| b == b'\n').find(|l| !l.is_empty()).unwrap_or_default();
    serde_json::from_slice(last).unwrap_or_else(|e| {
        panic!("client output is not JSON ({e}): {}\n--- daemon log ---\n{log}", String::from_utf8_lossy(&output.stdout))
    })
}

/// `argv` behind `wrapper` (e.g. `ip netns exec NS`; empty for none).
fn wrapped(wrapper: &[&str], program: &Path) -> Command {
    let mut argv: Vec<std::ffi::OsString> = wrapper.iter().map(Into::into).collect();
    argv.push(program.into());
    let mut c = Command::new(&argv[0]);
    c.args(&argv[1..]);
    c
}

/// `punktfunk-client` with its configuration under `config`.
pub fn native_client(wrapper: &[&str], config: &Path) -> Command {
    let exe = target_dir().join("punktfunk-client");
    assert!(exe.exists(), "build the workspace first: {} is missing", exe.display());
    let mut c = wrapped(wrapper, &exe);
    c.env("XDG_CONFIG_HOME", config);
    c
}

/// The `punktfunk` CLI of the daemon whose files are under `dir`.
pub fn host_cli(wrapper: &[&str], dir: &Path) -> Command {
    let mut c = wrapped(wrapper, Path::new(env!("CARGO_BIN_EXE_punktfunk")));
    c.env("XDG_CONFIG_HOME", dir.join("config")).env("XDG_STATE_HOME", dir.join("state"));
    c
}

/// punktfunk/1 pairing: the client (configuration in `config`) shows `client_pin`, the user
/// types `host_pin` on the host. Returns both commands' output.
pub fn pair_native(
    wrapper: &[&str],
    dir: &Path,
    config: &Path,
    native_port: u16,
    client_pin: &str,
    host_pin: &str,
) -> (std::process::Output, std::process::Output) {
    let pairing = native_client(wrapper, config)
        .args(["pair", &format!("127.0.0.1:{native_port}"), "--pin", client_pin])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The PIN may come before or after the client asks: the host keeps it a while.
    let typed = host_cli(wrapper, dir).args(["pair", host_pin]).output().unwrap();
    (pairing.wait_with_output().unwrap(), typed)
}

/// Streams headless with `punktfunk-client` (options `args` after the host) into `out`, and
/// returns its `stats.json`; a failing client fails the test with both sides' logs.
pub fn stream_native(wrapper: &[&str], dir: &Path, config: &Path, native_port: u16, args: &[&str], out: &Path) -> serde_json::Value {
    let streamed = native_client(wrapper, config)
        .args(["stream", &format!("127.0.0.1:{native_port}"), "--headless"])
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    let log = std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default();
    assert!(streamed.status.success(), "client: {}\n--- daemon ---\n{log}", output_text(&streamed));
    serde_json::from_slice(&std::fs::read(out.join("stats.json")).unwrap()).unwrap()
}

/// Gives this test process (and so the daemon, its compositors and their apps) a runtime
/// directory of its own, with no PipeWire in it, and no session bus: the host starts its own.
/// Call first thing in a test binary's only test.
pub fn private_runtime(dir: &Path) -> PathBuf {
    let runtime = dir.join("runtime");
    // SAFETY: the only test of its binary calls this before it starts any thread.
    unsafe {
        std::env::set_var("XDG_RUNTIME_DIR", &runtime);
        std::env::remove_var("DBUS_SESSION_BUS_ADDRESS");
    }
    runtime
}

/// The host's `/api/v1/status` (the daemon's files under `dir`); null while it does not answer.
pub fn api_status(dir: &Path, api_port: u16) -> serde_json::Value {
    api_get(dir, api_port, "/api/v1/status")
}

/// A GET of the host's management API (the daemon's files under `dir`); null while it does
/// not answer.
pub fn api_get(dir: &Path, api_port: u16, path: &str) -> serde_json::Value {
    let token = std::fs::read_to_string(dir.join("state/punktfunk/api-token")).unwrap_or_default();
    ureq::Agent::new_with_defaults()
        .get(format!("http://127.0.0.1:{api_port}{path}"))
        .header("Authorization", format!("Bearer {}", token.trim()))
        .call()
        .ok()
        .and_then(|mut r| r.body_mut().read_json().ok())
        .unwrap_or_default()
}

/// A command's stdout and stderr, for messages.
pub fn output_text(o: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

pub fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_punktfunk")).parent().unwrap().to_path_buf()
}

/// Starts the daemon with its files under `dir`, base port `port`, and one extra app
/// "Input Test" running `app_cmd`, with `app_toml` lines added to its table.
pub fn start_daemon(dir: &Path, port: u16, api_port: u16, app_cmd: &[String], app_toml: &str) -> Daemon {
    start_daemon_with(&[], dir, port, api_port, app_cmd, app_toml)
}

/// As [`start_daemon`], the command prefixed by `wrapper` (e.g. `ip netns exec NS`). Tests
/// share the machine's runtime directory, so the daemon starts no PipeWire of its own.
pub fn start_daemon_with(wrapper: &[&str], dir: &Path, port: u16, api_port: u16, app_cmd: &[String], app_toml: &str) -> Daemon {
    start_daemon_configured(wrapper, dir, port, api_port, "start_pipewire = false\n", app_cmd, app_toml)
}

/// As [`start_daemon_with`], with `host_toml` as the top-level settings.
pub fn start_daemon_configured(
    wrapper: &[&str],
    dir: &Path,
    port: u16,
    api_port: u16,
    host_toml: &str,
    app_cmd: &[String],
    app_toml: &str,
) -> Daemon {
    let compositor = target_dir().join("punktfunk-stream");
    assert!(compositor.exists(), "build the workspace first (cargo build --workspace): {} is missing", compositor.display());
    // A developer's own desktop is left alone: no notifications of the tests' pairings.
    let notify = if host_toml.contains("notify_pairing") { "" } else { "notify_pairing = false\n" };
    let config = format!(
        "port = {port}\napi_port = {api_port}\nconsole_port = {}\nnative_port = {}\nmdns = false\nencoder = \"software\"\nstream_binary = {:?}\n{notify}{host_toml}\n[[apps]]\ntitle = \"Input Test\"\ncommand = {}\n{app_toml}\n",
        port + 3,
        port + 50,
        compositor.display().to_string(),
        serde_json::to_string(app_cmd).unwrap()
    );
    std::fs::create_dir_all(dir.join("config/punktfunk")).unwrap();
    std::fs::write(dir.join("config/punktfunk/config.toml"), config).unwrap();
    let daemon = env!("CARGO_BIN_EXE_punktfunk");
    let argv: Vec<&str> = wrapper.iter().copied().chain([daemon, "serve"]).collect();
    let mut child = Command::new(argv[0])
        .args(&argv[1..])
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_STATE_HOME", dir.join("state"))
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("DISPLAY")
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting punktfunk serve");
    // Ready once it says so; its log then goes to a file the test prints on failure.
    let stderr = child.stderr.take().unwrap();
    let log_path = dir.join("daemon.log");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut log = std::fs::File::create(log_path).unwrap();
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("host ready") {
                let _ = tx.send(());
            }
            let _ = std::io::Write::write_all(&mut log, format!("{line}\n").as_bytes());
        }
    });
    rx.recv_timeout(Duration::from_secs(60)).expect("punktfunk serve did not become ready");
    Daemon(child)
}

/// A TCP connection from `from` (any 127/8 address is this machine: another machine, as the
/// host sees it) to `port` on 127.0.0.1.
pub fn connect_from(from: [u8; 4], port: u16) -> std::io::Result<std::net::TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&std::net::SocketAddr::from((from, 0)).into())?;
    socket.connect_timeout(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into(), Duration::from_secs(5))?;
    Ok(socket.into())
}

/// Accepts any host certificate: for tests that only need the TLS session, not to know
/// whom they talk to (the host's certificate is self-signed).
#[derive(Debug)]
pub struct AnyServerCertificate;

impl rustls::client::danger::ServerCertVerifier for AnyServerCertificate {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms.supported_schemes()
    }
}

/// Prints a measured figure and keeps it in `target/tmp/figures.txt`, which CI shows after the
/// tests (cargo shows a passing test's output only with `--nocapture`).
pub fn figure(line: &str) {
    println!("{line}");
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("figures.txt");
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = std::io::Write::write_all(&mut f, format!("{line}\n").as_bytes());
    }
}

/// A tone's onset: the app noted when it started the tone (µs of CLOCK_REALTIME in the file
/// `started`), the client when it first heard it (`heard`, from its `report`). Printed as a
/// figure; the client must have heard it, and not before it started.
pub fn onset_figure(started: &Path, heard: &serde_json::Value, what: &str, report: &serde_json::Value) {
    let started: i64 = std::fs::read_to_string(started).unwrap().trim().parse().unwrap();
    let heard = heard.as_i64().unwrap_or_else(|| panic!("the client heard no onset: {report}"));
    figure(&format!("sound onset (µs) {what}: {}", heard - started));
    assert!(heard > started, "the tone was heard before it started: {report}");
}

/// A stream's host latency by stage (`VideoStats` as the API gives it): printed as a figure;
/// the stages' means must add up to the mean host latency (each mean is rounded down to a
/// µs), and the encoder must have taken time.
pub fn stages_figure(what: &str, video: &serde_json::Value) {
    let mean = video["host_latency_us_mean"].as_i64().unwrap_or(0);
    let stages = video["stages_mean_us"].as_object().unwrap_or_else(|| panic!("no stages: {video}"));
    let sum: i64 = stages.values().map(|v| v.as_i64().unwrap()).sum();
    figure(&format!(
        "host latency (µs) {what}, commit → last datagram: mean {mean}, p99 {}; by stage, mean {}, p50 {}, p99 {}",
        video["host_latency_us_p99"], video["stages_mean_us"], video["stages_p50_us"], video["stages_p99_us"]
    ));
    assert!(
        mean > 0 && (0..=stages.len() as i64).contains(&(mean - sum)),
        "the stages ({sum} µs) add up to the whole ({mean} µs): {video}"
    );
    assert!(stages["encode"].as_i64().unwrap() > 0, "encoding takes time: {video}");
}

/// Notes in a driven Moonlight client's report (`moonlight_client.py driven`, signals in
/// `dir`) how many frames it had decoded by now, and what it heard in the second before.
pub fn mark(dir: &Path, name: &str) {
    std::fs::write(dir.join("mark"), name).unwrap();
    let since = Instant::now();
    while dir.join("mark").exists() {
        assert!(since.elapsed() < Duration::from_secs(30), "the client stopped decoding before {name:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Mean RGB of the band the test pattern colours (below the counter digits) in a PPM.
pub fn band(ppm: &Path) -> [f64; 3] {
    let bytes = std::fs::read(ppm).unwrap();
    let header: Vec<&[u8]> = bytes.splitn(4, |b| *b == b'\n').collect();
    let dims: Vec<usize> = std::str::from_utf8(header[1]).unwrap().split(' ').map(|v| v.parse().unwrap()).collect();
    let (w, h, pixels) = (dims[0], dims[1], header[3]);
    let mut sum = [0f64; 3];
    let mut n = 0f64;
    for y in h / 2..h - 10 {
        for x in w / 2..w - 10 {
            for (c, s) in sum.iter_mut().enumerate() {
                *s += f64::from(pixels[(y * w + x) * 3 + c]);
            }
            n += 1.0;
        }
    }
    sum.map(|s| s / n)
}
