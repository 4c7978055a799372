//! Attach mode against a real Mutter (headless, with no monitor of its own): the stream's
//! virtual monitor appears at the client's odd mode, the test pattern opened on it comes
//! through the screencast at that size with its colour, a click and keys through the remote
//! desktop session reach it, a mode change makes a monitor of the new mode, the monitor goes
//! when the stream stops, and a stream ends with an error when Mutter goes away.
//!
//! Needs mutter, PipeWire and WirePlumber (`.ci/run` installs them); says why and passes
//! without them outside CI.

#[path = "support/cost.rs"]
mod cost;
#[path = "support/mutter.rs"]
mod mutter;

use cost::target_dir;
use punktfunk_attach::{Desktop, control_channel};
use punktfunk_frame::{Frame, InputEvent, Mode, SinkThread, SourceCommand, SourceControl};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn near(a: (u8, u8, u8), b: (u8, u8, u8)) -> bool {
    a.0.abs_diff(b.0) < 30 && a.1.abs_diff(b.1) < 30 && a.2.abs_diff(b.2) < 30
}

#[test]
fn a_virtual_monitor_of_the_clients_mode_in_a_running_mutter() {
    if !mutter::installed() {
        assert!(std::env::var_os("CI").is_none(), "CI installs mutter, PipeWire and WirePlumber");
        eprintln!("skipped: needs mutter, pipewire, wireplumber and dbus-daemon");
        return;
    }
    let dir = std::env::temp_dir().join(format!("pf-attach-mutter-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let gnome = mutter::start(&dir);
    // SAFETY: this test sets them before any thread reads them (the measurement below is
    // ignored, so never run beside it).
    unsafe {
        gnome.enter();
        std::env::set_var("XDG_CURRENT_DESKTOP", "GNOME");
        std::env::remove_var("SWAYSOCK");
    }
    assert_eq!(Desktop::find("auto").unwrap(), Desktop::Mutter);

    let (frames_tx, frames) = mpsc::channel::<(u32, u32, (u8, u8, u8))>();
    let sink = SinkThread::spawn(move |f: Frame| {
        let _ = frames_tx.send((f.width, f.height, f.rgb_at(f.width / 2, f.height / 2)));
        Ok(())
    });
    let mailbox = sink.mailbox().clone();
    let (control, commands) = control_channel(64).unwrap();
    let (ready_tx, ready) = mpsc::channel();
    let mode = Mode::new(1000, 562, 30.0).unwrap();
    let source = std::thread::spawn(move || {
        punktfunk_attach::run(Desktop::Mutter, mode, "us", &mailbox, commands, move || ready_tx.send(()).unwrap())
    });
    if ready.recv_timeout(Duration::from_secs(30)).is_err() {
        panic!("not attached: {:?}\n{}", source.join(), std::fs::read_to_string(dir.join("mutter.log")).unwrap_or_default());
    }
    let ours = gnome.monitors();
    assert_eq!(ours.iter().map(|m| m.1).collect::<Vec<_>>(), [(1000, 562)], "one monitor, the stream's: {ours:?}");

    // The test pattern (green) opens on the only monitor: the stream's.
    let log = dir.join("input.log");
    let pattern = target_dir().join("punktfunk-test-pattern");
    assert!(pattern.exists(), "build the workspace first: {} is missing", pattern.display());
    let mut app = Command::new(&pattern).args(["--color", "00ff00", "--input-log"]).arg(&log).spawn().unwrap();
    let wait_for = |want: (u8, u8, u8), what: &str| {
        let since = Instant::now();
        let mut seen = Vec::new();
        loop {
            if let Ok((w, h, rgb)) = frames.recv_timeout(Duration::from_millis(500)) {
                seen.push((w, h, rgb));
                if near(rgb, want) {
                    return (w, h);
                }
            }
            assert!(
                since.elapsed() < Duration::from_secs(30),
                "{what} never came through; frames: {:?}",
                &seen[seen.len().saturating_sub(5)..]
            );
        }
    };
    assert_eq!(wait_for((0, 255, 0), "the pattern"), (1000, 562), "frames of the client's mode");

    // A click on the window focuses it and flips the band; a key flips it back; text types.
    control.send(SourceCommand::Input(InputEvent::PointerMotion { x: 500.0, y: 281.0 }));
    control.send(SourceCommand::Input(InputEvent::Button { code: 0x110, pressed: true }));
    control.send(SourceCommand::Input(InputEvent::Button { code: 0x110, pressed: false }));
    wait_for((255, 0, 255), "the click's flip");
    control.send(SourceCommand::Input(InputEvent::Key { code: 30, pressed: true }));
    control.send(SourceCommand::Input(InputEvent::Key { code: 30, pressed: false }));
    wait_for((0, 255, 0), "the key's flip");
    control.send(SourceCommand::Input(InputEvent::Text("Hi".into())));
    let since = Instant::now();
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("key 23 up") {
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "typed text never arrived: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let typed = std::fs::read_to_string(&log).unwrap();
    eprintln!("input log:\n{typed}");
    assert!(typed.contains("button 272 down") && typed.contains("key 30 down"), "the click and the key");
    assert!(typed.contains("key 35 down"), "the typed i");

    // Another mode: a monitor of that size takes the old one's place.
    control.send(SourceCommand::SetMode(Mode::new(800, 600, 60.0).unwrap()));
    let since = Instant::now();
    while frames.recv_timeout(Duration::from_millis(500)).map(|f| (f.0, f.1)).ok() != Some((800, 600)) {
        assert!(since.elapsed() < Duration::from_secs(30), "the new mode never came through");
    }
    assert_eq!(gnome.monitors().iter().map(|m| m.1).collect::<Vec<_>>(), [(800, 600)], "the old monitor went");

    // The end: the monitor goes.
    control.send(SourceCommand::Stop);
    source.join().unwrap().expect("the stream ended cleanly");
    sink.finish().unwrap();
    let since = Instant::now();
    while !gnome.monitors().is_empty() {
        assert!(since.elapsed() < Duration::from_secs(10), "the monitor stayed: {:?}", gnome.monitors());
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = app.kill();
    let _ = app.wait();

    // The desktop going away mid-stream ends the stream with an error, not a frozen picture.
    let sink = SinkThread::spawn(|_: Frame| Ok(()));
    let mailbox = sink.mailbox().clone();
    let (_control, commands) = control_channel(8).unwrap();
    let (ready_tx, ready) = mpsc::channel();
    let source = std::thread::spawn(move || {
        punktfunk_attach::run(Desktop::Mutter, Mode::new(640, 360, 30.0).unwrap(), "us", &mailbox, commands, move || {
            ready_tx.send(()).unwrap()
        })
    });
    ready.recv_timeout(Duration::from_secs(30)).expect("attached again");
    drop(gnome);
    let since = Instant::now();
    while !source.is_finished() {
        assert!(since.elapsed() < Duration::from_secs(15), "the stream outlived the desktop");
        std::thread::sleep(Duration::from_millis(50));
    }
    let ended = source.join().unwrap().expect_err("an error, saying the desktop went");
    eprintln!("when Mutter went: {ended:#}");
    sink.finish().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// What capturing costs: the test pattern redrawing its window every frame on the stream's
/// 1280x720@60 virtual monitor, captured for five seconds; frames a second and this
/// process's CPU time per frame (the copy out of PipeWire's buffers), beside Mutter's own
/// CPU time. A measurement:
/// `cargo test --release -p punktfunk-attach --test mutter -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement; run by hand in release"]
fn capture_cost() {
    let dir = std::env::temp_dir().join(format!("pf-attach-mutter-cost-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let gnome = mutter::start(&dir);
    // SAFETY: this test sets them before the capture's threads start.
    unsafe { gnome.enter() };
    let mut app = None;
    cost::measure(Desktop::Mutter, "Mutter", gnome.mutter_pid(), || {
        app = Some(Command::new(target_dir().join("punktfunk-test-pattern")).spawn().unwrap());
    });
    let mut app = app.expect("opened");
    let _ = app.kill();
    let _ = app.wait();
    drop(gnome);
    let _ = std::fs::remove_dir_all(&dir);
}
