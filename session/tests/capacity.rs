//! How many sessions this machine streams at full frame rate, not part of CI: for each count
//! N in `SESSIONS` (default 1,2,3), `punktfunk serve` with `max_sessions = N` and N stock
//! Moonlight clients (moonlight-python, each its own identity) streaming the test pattern at
//! `MODE` (default 1280x720x60) over x264. For `SECONDS` (default 20) it samples, every
//! second, what each session sent (the host's live figures) and the CPU each session's
//! process tree used (stream process, app), and prints a table. The clients decode on the
//! same machine, so on a small one the figures are a floor.
//!
//! `PUNKTFUNK_MOONLIGHT_PYTHON=… cargo test --release -p punktfunk-session --test capacity --
//! --ignored --nocapture`

mod common;

use common::{client_report, python, start_daemon_configured, target_dir};
use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PORT: u16 = 31989;
const API_PORT: u16 = 31991;

/// (parent, utime + stime in clock ticks, name) of every process.
fn processes() -> HashMap<u32, (u32, u64, String)> {
    let mut all = HashMap::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // "pid (comm) state ppid …": the name may hold spaces, so split after its ')'.
        let Some((name, rest)) = stat.split_once(" (").and_then(|(_, r)| r.rsplit_once(") ")) else { continue };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let (Some(ppid), Some(utime), Some(stime)) = (
            fields.get(1).and_then(|v| v.parse().ok()),
            fields.get(11).and_then(|v| v.parse::<u64>().ok()),
            fields.get(12).and_then(|v| v.parse::<u64>().ok()),
        ) else {
            continue;
        };
        all.insert(pid, (ppid, utime + stime, name.to_owned()));
    }
    all
}

/// CPU ticks of each stream process's tree (it and its descendants), by stream pid.
fn session_ticks() -> HashMap<u32, u64> {
    let all = processes();
    let root_of = |mut pid: u32| {
        for _ in 0..64 {
            let (ppid, _, name) = all.get(&pid)?;
            if name == "punktfunk-strea" || name == "punktfunk-stream" {
                return Some(pid);
            }
            pid = *ppid;
        }
        None
    };
    let mut ticks = HashMap::new();
    for (pid, (_, t, _)) in &all {
        if let Some(root) = root_of(*pid) {
            *ticks.entry(root).or_default() += t;
        }
    }
    ticks
}

fn status() -> serde_json::Value {
    common::api_status(&std::env::temp_dir().join(format!("pf-capacity-{}", std::process::id())), API_PORT)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

#[test]
#[ignore = "a measurement; run by hand in release"]
fn sessions_at_full_frame_rate() {
    let Some(python) = python() else { return eprintln!("skipped: set PUNKTFUNK_MOONLIGHT_PYTHON") };
    let counts: Vec<usize> =
        std::env::var("SESSIONS").unwrap_or_else(|_| "1,2,3".into()).split(',').filter_map(|n| n.trim().parse().ok()).collect();
    let mode = std::env::var("MODE").unwrap_or_else(|_| "1280x720x60".into());
    let seconds: u64 = std::env::var("SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let fps: f64 = mode.rsplit('x').next().and_then(|f| f.parse().ok()).unwrap_or(60.0);
    // SAFETY: sysconf reads a constant of the system.
    let tick = 1.0 / unsafe { nix::libc::sysconf(nix::libc::_SC_CLK_TCK) }.max(1) as f64;
    let mut table = Vec::new();
    for n in counts {
        let dir = std::env::temp_dir().join(format!("pf-capacity-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let pattern = vec![target_dir().join("punktfunk-test-pattern").display().to_string()];
        let host = format!("start_pipewire = false\nmax_sessions = {n}\n");
        let daemon = start_daemon_configured(&[], &dir, PORT, API_PORT, &host, &pattern, "");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/moonlight_client.py");
        let mut clients: Vec<(String, Child)> = Vec::new();
        for i in 0..n {
            let name = format!("client{i}");
            let child = Command::new(&python)
                .arg(&script)
                .args([&PORT.to_string(), &API_PORT.to_string(), &dir.join(&name).display().to_string(), "Input Test", "beside", &mode])
                .arg(&dir)
                .env("XDG_STATE_HOME", dir.join("state"))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let since = Instant::now();
            while !dir.join(format!("{name}.streaming")).exists() {
                assert!(since.elapsed() < Duration::from_secs(120), "{name} never streamed");
                std::thread::sleep(Duration::from_millis(100));
            }
            clients.push((name, child));
        }
        std::thread::sleep(Duration::from_secs(3));
        let (mut fps_samples, mut before, start) = (Vec::new(), session_ticks(), Instant::now());
        let cpu_before = processes().values().map(|(_, t, _)| t).sum::<u64>();
        for _ in 0..seconds {
            std::thread::sleep(Duration::from_secs(1));
            let s = status();
            for session in s["sessions"].as_array().into_iter().flatten() {
                let live = &session["live"];
                let window = live["window_ms"].as_f64().unwrap_or(0.0);
                if window > 0.0 {
                    fps_samples.push(live["stats"]["frames"].as_f64().unwrap_or(0.0) * 1000.0 / window);
                }
            }
        }
        let elapsed = start.elapsed().as_secs_f64();
        let after = session_ticks();
        let per_session: Vec<f64> =
            after.iter().map(|(pid, t)| (t - before.remove(pid).unwrap_or(0)) as f64 * tick / elapsed * 100.0).collect();
        let all = (processes().values().map(|(_, t, _)| t).sum::<u64>() - cpu_before) as f64 * tick / elapsed * 100.0;
        let lowest = fps_samples.iter().copied().fold(f64::INFINITY, f64::min);
        let row =
            format!("| {n} | {:.1} | {:.1} | {:.0} % | {:.0} % |", median(fps_samples.clone()), lowest, median(per_session.clone()), all);
        eprintln!("{row}  (per-session CPU samples {per_session:.0?})");
        table.push(row);
        for (name, _) in &clients {
            std::fs::write(dir.join(format!("{name}.until")), "").unwrap();
        }
        for (_, child) in clients {
            let out = client_report(&child.wait_with_output().unwrap(), &dir);
            assert!(out["frames"].as_u64().unwrap_or(0) > 0, "{out}");
        }
        drop(daemon);
        let _ = std::fs::remove_dir_all(&dir);
    }
    println!("{mode} x264, {fps} fps asked; per second over {seconds} s:");
    println!(
        "| sessions | sent fps per session (median) | lowest second | CPU per session (stream process + app, median) | CPU of everything (clients too) |"
    );
    println!("|---|---|---|---|---|");
    for row in table {
        println!("{row}");
    }
}
