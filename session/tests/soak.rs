//! A bounded soak, not part of CI: `punktfunk serve` under launch/stream/quit cycles with a
//! stock Moonlight client while strangers keep opening idle connections and sending junk,
//! printing the daemon's memory, descriptors, threads and child processes every minute (and
//! the stream processes, PipeWire nodes aside, that outlive their session).
//!
//! `PUNKTFUNK_MOONLIGHT_PYTHON=… SOAK_MINUTES=30 cargo test --release -p punktfunk-session
//! --test soak -- --ignored --nocapture`

mod common;

use common::{client_report, connect_from, python, start_daemon, target_dir};
use std::io::Write;
use std::net::UdpSocket;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const PORT: u16 = 29489;
const API_PORT: u16 = 29491;

/// (RSS in KiB, descriptors, threads) of `pid`.
fn usage(pid: u32) -> (u64, usize, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field =
        |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0);
    (field("VmRSS:"), fds, field("Threads:") as usize)
}

/// Processes whose parent is `pid`, by name.
fn children(pid: u32) -> Vec<String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // "pid (comm) state ppid …": the name may hold spaces, so split after its ')'.
        let Some((name, rest)) = stat.split_once(" (").and_then(|(_, r)| r.rsplit_once(") ")) else { continue };
        if rest.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok()) == Some(pid) {
            names.push(name.to_owned());
        }
    }
    names.sort();
    names
}

/// Ten seconds' worth of strangers: idle connections to every TCP port and junk at the
/// control port, from another loopback address.
fn abuse(port: u16) {
    let mut idle = Vec::new();
    for p in [port, port - 5, port + 21] {
        for _ in 0..50 {
            if let Ok(mut s) = connect_from([127, 0, 0, 3], p) {
                let _ = s.write_all(b"GET / HTTP/1.1\r\nX: ");
                idle.push(s);
            }
        }
    }
    let udp = UdpSocket::bind("127.0.0.3:0").unwrap();
    for n in 0..500u32 {
        let _ = udp.send_to(&n.to_be_bytes().repeat(12), ("127.0.0.1", port + 10));
    }
    std::thread::sleep(Duration::from_secs(10));
}

#[test]
#[ignore = "a soak of SOAK_MINUTES (30) minutes; run by hand"]
fn soak() {
    let Some(python) = python() else { return eprintln!("skipped: set PUNKTFUNK_MOONLIGHT_PYTHON") };
    let minutes: u64 = std::env::var("SOAK_MINUTES").ok().and_then(|m| m.parse().ok()).unwrap_or(30);
    let dir = std::env::temp_dir().join(format!("pf-soak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let app = vec![target_dir().join("punktfunk-test-pattern").display().to_string(), "--color".into(), "3080ff".into()];
    let daemon = start_daemon(&dir, PORT, API_PORT, &app, "");
    let pid = daemon.0.id();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/moonlight_client.py");
    let seconds = (minutes * 60).to_string();
    let client = Command::new(&python)
        .arg(&script)
        .args([PORT.to_string(), API_PORT.to_string(), dir.join("client").display().to_string(), "Input Test".into()])
        .args(["soak", &seconds])
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_STATE_HOME", dir.join("state"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let abuser = std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(minutes * 60);
        while Instant::now() < end {
            abuse(PORT);
        }
    });
    println!("minute  rss_kib  fds  threads  children");
    let start = Instant::now();
    for minute in 0..=minutes {
        while start.elapsed() < Duration::from_secs(minute * 60) {
            std::thread::sleep(Duration::from_millis(500));
        }
        let (rss, fds, threads) = usage(pid);
        println!("{minute:>6}  {rss:>7}  {fds:>3}  {threads:>7}  {:?}", children(pid));
    }
    abuser.join().unwrap();
    let output = client.wait_with_output().unwrap();
    let out = client_report(&output, &dir);
    println!("client: {}", out["soak"]);
    std::thread::sleep(Duration::from_secs(3));
    let (rss, fds, threads) = usage(pid);
    println!("after:  rss {rss} KiB, {fds} fds, {threads} threads, children {:?}", children(pid));
    assert_eq!(out["soak"]["failures"], serde_json::json!([]), "cycles failed");
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}
