//! Attach mode against a real KWin (Plasma's compositor, headless on its virtual backend):
//! KWin offers its fake input and screencast protocols only to a program its desktop file
//! names, so the packaged desktop file (its Exec pointed at this test) is what lets the
//! test in; clicks, keys and typed text reach the test pattern in KWin through fake input.
//! The virtual output: KWin 5.27 makes them only on real displays (on its virtual backend it
//! never answers), so there the stream must fail within its wait, saying so.
//!
//! Needs kwin_wayland (`.ci/run` installs it); says why and passes without it outside CI.

#[path = "support/cost.rs"]
mod cost;
#[path = "support/kwin.rs"]
mod kwin;

use cost::target_dir;
use punktfunk_attach::kwin::Kwin;
use punktfunk_attach::{Desktop, control_channel};
use punktfunk_frame::{Frame, InputEvent, Mode, SinkThread, SourceCommand, SourceControl};
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The packaged desktop file, naming `exe` instead of the installed binary.
fn desktop_file(data: &Path, exe: &Path) {
    let shipped =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/kde/punktfunk-stream.desktop")).unwrap();
    assert!(shipped.contains("Exec=/usr/bin/punktfunk-stream\n"));
    let ours = shipped.replace("Exec=/usr/bin/punktfunk-stream", &format!("Exec={}", exe.display()));
    std::fs::create_dir_all(data.join("applications")).unwrap();
    std::fs::write(data.join("applications/punktfunk-stream.desktop"), ours).unwrap();
}

fn wait_for_log(log: &Path, line: &str, what: &str) {
    let since = Instant::now();
    while !std::fs::read_to_string(log).unwrap_or_default().lines().any(|l| l == line) {
        assert!(since.elapsed() < Duration::from_secs(15), "{what} never arrived: {}", std::fs::read_to_string(log).unwrap_or_default());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_running_kwin() {
    if !kwin::installed() {
        assert!(std::env::var_os("CI").is_none(), "CI installs kwin-wayland");
        eprintln!("skipped: kwin_wayland is not installed");
        return;
    }
    let dir = std::env::temp_dir().join(format!("pf-attach-kwin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (nothing, data) = (dir.join("no-desktop-files"), dir.join("data"));
    std::fs::create_dir_all(&nothing).unwrap();
    desktop_file(&data, &std::env::current_exe().unwrap().canonicalize().unwrap());

    // Without the desktop file KWin hides fake input from us, and the error says what to do.
    let plain = kwin::start(&dir, "plain", &nothing, true, (1024, 768));
    // SAFETY: this binary's one test sets them before any of its threads starts.
    unsafe {
        std::env::set_var("XDG_RUNTIME_DIR", &plain.runtime);
        std::env::set_var("WAYLAND_DISPLAY", &plain.display);
    }
    let refused = Kwin::connect("us").err().expect("KWin hides fake input from a program no desktop file names");
    eprintln!("without the desktop file: {refused:#}");
    assert!(format!("{refused:#}").contains("X-KDE-Wayland-Interfaces"), "{refused:#}");
    drop(plain);

    // With it, fake input reaches the test pattern.
    let kwin = kwin::start(&dir, "granted", &data, true, (1024, 768));
    unsafe {
        std::env::set_var("XDG_RUNTIME_DIR", &kwin.runtime);
        std::env::set_var("WAYLAND_DISPLAY", &kwin.display);
    }
    let log = dir.join("input.log");
    let pattern = target_dir().join("punktfunk-test-pattern");
    assert!(pattern.exists(), "build the workspace first: {} is missing", pattern.display());
    let mut app = Command::new(&pattern).args(["--color", "00ff00", "--input-log"]).arg(&log).spawn().unwrap();
    let mut desktop = Kwin::connect("us").unwrap_or_else(|e| panic!("{e:#}\n{}", kwin.log()));
    let output = desktop.outputs().first().cloned().expect("KWin's output");
    // The window (640x480, placed by KWin) covers the output's middle whether KWin puts it
    // in the corner or in the middle; the pointer is there once the window is.
    let since = Instant::now();
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("motion") {
        assert!(since.elapsed() < Duration::from_secs(15), "the pointer never reached the window:\n{}", kwin.log());
        desktop.input(&output, InputEvent::PointerMotion { x: 512.0, y: 384.0 }).unwrap();
        desktop.input(&output, InputEvent::PointerMotion { x: 513.0, y: 384.0 }).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    for pressed in [true, false] {
        desktop.input(&output, InputEvent::Button { code: 0x110, pressed }).unwrap();
    }
    wait_for_log(&log, "button 272 up", "the click");
    for pressed in [true, false] {
        desktop.input(&output, InputEvent::Key { code: 30, pressed }).unwrap();
    }
    wait_for_log(&log, "key 30 up", "the key");
    desktop.input(&output, InputEvent::Text("Hi".into())).unwrap();
    wait_for_log(&log, "key 23 up", "the typed text");
    let typed = std::fs::read_to_string(&log).unwrap();
    eprintln!("input log:\n{typed}");
    let keys: Vec<&str> = typed.lines().filter(|l| l.starts_with("key ")).collect();
    // H is Shift+h, then i.
    assert_eq!(keys, ["key 30 down", "key 30 up", "key 42 down", "key 35 down", "key 35 up", "key 42 up", "key 23 down", "key 23 up"]);

    // The virtual output.
    let sink = SinkThread::spawn(|_: Frame| Ok(()));
    let mailbox = sink.mailbox().clone();
    let (control, commands) = control_channel(64).unwrap();
    let (ready_tx, ready) = mpsc::channel();
    let mode = Mode::new(1000, 562, 30.0).unwrap();
    let source = std::thread::spawn(move || {
        punktfunk_attach::run(Desktop::Kwin, mode, "us", &mailbox, commands, move || ready_tx.send(()).unwrap())
    });
    let version = kwin::version(&dir);
    if version.starts_with("5.") {
        let failed = source.join().unwrap().expect_err("KWin 5 makes no virtual output on its virtual backend");
        eprintln!("KWin {version}: {failed:#}");
        assert!(format!("{failed:#}").contains("made no virtual output"), "{failed:#}");
        assert!(ready.try_recv().is_err(), "never ready");
    } else {
        // Plasma 6 makes them here, but streams them only with PipeWire running: a check
        // for the machine that has it.
        eprintln!("KWin {version}: the virtual output is not checked here");
        control.send(SourceCommand::Stop);
        let _ = source.join().unwrap();
    }
    sink.finish().unwrap();
    let _ = app.kill();
    let _ = app.wait();
    drop(kwin);
    let _ = std::fs::remove_dir_all(&dir);
}
