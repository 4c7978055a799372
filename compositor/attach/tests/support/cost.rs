//! What capturing a desktop costs, measured the same way for every desktop: a 1280x720@60
//! stream of it, the app opened on the stream's output, five seconds counted; frames a
//! second and CPU time per frame of this process (the capture) and of the desktop's.
#![allow(dead_code)]

use punktfunk_attach::{Desktop, control_channel};
use punktfunk_frame::{Frame, Mode, SinkThread, SourceCommand, SourceControl};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

/// Streams `desktop`, calls `open_app` once attached, and prints the figures, the desktop's
/// process (`desktop_pid`) named `name`.
pub fn measure(desktop: Desktop, name: &str, desktop_pid: u32, open_app: impl FnOnce()) {
    let (count_tx, counted) = mpsc::channel::<Instant>();
    let sink = SinkThread::spawn(move |_: Frame| {
        let _ = count_tx.send(Instant::now());
        Ok(())
    });
    let mailbox = sink.mailbox().clone();
    let (control, commands) = control_channel(64).unwrap();
    let (ready_tx, ready) = mpsc::channel();
    let mode = Mode::new(1280, 720, 60.0).unwrap();
    let source =
        std::thread::spawn(move || punktfunk_attach::run(desktop, mode, "us", &mailbox, commands, move || ready_tx.send(()).unwrap()));
    ready.recv_timeout(Duration::from_secs(30)).unwrap();
    open_app();
    std::thread::sleep(Duration::from_secs(2));
    while counted.try_recv().is_ok() {}
    // User and system time from /proc, in ms (at 100 ticks a second).
    let cpu = |pid: u32| -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
        (fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap()) * 10.0
    };
    let ours = std::process::id();
    let (ours0, theirs0, t0) = (cpu(ours), cpu(desktop_pid), Instant::now());
    std::thread::sleep(Duration::from_secs(5));
    let frames = counted.try_iter().count() as f64;
    let secs = t0.elapsed().as_secs_f64();
    let (ours_ms, theirs_ms) = (cpu(ours) - ours0, cpu(desktop_pid) - theirs0);
    eprintln!(
        "1280x720@60 animated: {:.1} frames/s; capture {:.2} ms CPU per frame ({:.0} % of a core); {name} {:.2} ms per frame ({:.0} %)",
        frames / secs,
        ours_ms / frames,
        ours_ms / secs / 10.0,
        theirs_ms / frames,
        theirs_ms / secs / 10.0
    );
    control.send(SourceCommand::Stop);
    source.join().unwrap().unwrap();
    sink.finish().unwrap();
}
