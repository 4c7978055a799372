//! Slowloris at every TCP port of a running `punktfunk serve`: hundreds of connections from
//! one address that never finish a request. Another machine (another loopback address)
//! still gets `/serverinfo` over HTTP and HTTPS and an RTSP answer, the owner's CLI still
//! reaches the API, and the idle connections are closed rather than held.

mod common;

use common::{AnyServerCertificate, connect_from, start_daemon};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

const PORT: u16 = 21489;
const API_PORT: u16 = 21491;
const HTTPS: u16 = PORT - 5;
const RTSP: u16 = PORT + 21;
const IDLE: usize = 300;

/// Sends `request` from `from` and returns the answer and how long it took.
fn ask(from: [u8; 4], port: u16, request: &[u8]) -> (String, Duration) {
    let start = Instant::now();
    let mut s = connect_from(from, port).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    (String::from_utf8_lossy(&out).into_owned(), start.elapsed())
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn idle_connections_starve_nobody() {
    let dir = std::env::temp_dir().join(format!("pf-slowloris-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let daemon = start_daemon(&dir, PORT, API_PORT, &["true".into()], "");
    let pid = daemon.0.id();
    let baseline = open_fds(pid);

    // The attacker: IDLE connections to each port, each sending half a request head.
    let mut idle = Vec::new();
    for port in [PORT, HTTPS, RTSP, API_PORT] {
        for _ in 0..IDLE {
            if let Ok(mut s) = connect_from([127, 0, 0, 1], port) {
                let _ = s.write_all(b"GET /serverinfo HTTP/1.1\r\nX: ");
                idle.push(s);
            }
        }
    }
    assert!(idle.len() >= 4 * IDLE - 10, "the attack could not even connect ({} sockets)", idle.len());

    // Another machine is served meanwhile.
    let serverinfo = b"GET /serverinfo?uniqueid=0123456789ABCDEF HTTP/1.1\r\nHost: x\r\n\r\n";
    let (http, http_took) = ask([127, 0, 0, 2], PORT, serverinfo);
    assert!(http.contains("<root status_code=\"200\">"), "serverinfo: {http:?}");
    let (rtsp, rtsp_took) = ask([127, 0, 0, 2], RTSP, b"OPTIONS rtsp://127.0.0.1 RTSP/1.0\r\nCSeq: 1\r\n\r\n");
    assert!(rtsp.starts_with("RTSP/1.0 "), "RTSP: {rtsp:?}");
    let https_took = {
        let start = Instant::now();
        let tcp = connect_from([127, 0, 0, 2], HTTPS).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let config = rustls::ClientConfig::builder()
            .dangerous()
            .with_custom_certificate_verifier(std::sync::Arc::new(AnyServerCertificate))
            .with_no_client_auth();
        let mut tls = rustls::StreamOwned::new(
            rustls::ClientConnection::new(std::sync::Arc::new(config), "punktfunk".try_into().unwrap()).unwrap(),
            tcp,
        );
        tls.write_all(serverinfo).unwrap();
        let mut out = Vec::new();
        let _ = tls.read_to_end(&mut out);
        assert!(String::from_utf8_lossy(&out).contains("status_code=\"401\""), "HTTPS without a paired certificate: 401");
        start.elapsed()
    };
    // The owner's CLI, from the attacker's own address and user (the API is loopback only).
    let start = Instant::now();
    let status = common::host_cli(&[], &dir).arg("status").output().unwrap();
    let cli_took = start.elapsed();
    assert!(status.status.success(), "punktfunk status: {}", common::output_text(&status));
    println!(
        "under {IDLE} idle connections per port: serverinfo {http_took:?}, HTTPS {https_took:?}, RTSP {rtsp_took:?}, punktfunk status {cli_took:?}"
    );

    // The idle connections are closed once their request head is overdue: the daemon's
    // descriptors come back to where they were.
    let deadline = Instant::now() + Duration::from_secs(60);
    while open_fds(pid) > baseline + 20 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(open_fds(pid) <= baseline + 20, "the daemon still holds {} descriptors (from {baseline})", open_fds(pid));
    drop(idle);
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}
