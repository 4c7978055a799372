//! Headless sessions with real clients: weston's demo clients, foot, the session command.
//! Each test runs the compositor in-process (its frames go to a test sink) and drives it
//! through the same control channel the daemon uses.

use punktfunk_compositor::{Config, Control, Frame, InputEvent, Mode, Outcome, run};
use smithay::reexports::calloop::channel::{self, Sender};
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What a test sees of each frame.
#[derive(Clone, Debug)]
struct Seen {
    seq: u64,
    width: u32,
    height: u32,
    /// Pixels (sampled every 4th in each direction) that are not black.
    lit: usize,
    /// A cheap content fingerprint, to tell frames apart.
    hash: u64,
    /// Whether each sampled point of `probe` is lit.
    probes: Vec<bool>,
    /// Sampled pixels of the test pattern's blue (#3080ff, give or take encoding-free
    /// rounding): how much of the frame that window shows.
    blue: usize,
}

struct Session {
    control: Sender<Control>,
    frames: Receiver<Seen>,
    done: JoinHandle<anyhow::Result<Outcome>>,
    socket: String,
    runtime: PathBuf,
}

fn runtime_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("punktfunk-test-runtime-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

fn start(mode: &str, command: &[&str], probes: Vec<(u32, u32)>) -> Session {
    start_with(mode, command, probes, |_| {})
}

fn start_with(mode: &str, command: &[&str], probes: Vec<(u32, u32)>, configure: impl FnOnce(&mut Config)) -> Session {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let socket = format!("pf-test-{}-{}", std::process::id(), NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    let runtime = runtime_dir();
    let mut config = Config::new(mode.parse().unwrap());
    config.command = command.iter().map(OsString::from).collect();
    config.socket_name = Some(socket.clone());
    config.runtime_dir = Some(runtime.clone());
    configure(&mut config);
    let (control, control_rx) = channel::channel();
    let (tx, frames) = mpsc::channel();
    let sink = move |f: Frame| {
        let (mut lit, mut blue) = (0, 0);
        let mut hash = 0u64;
        for y in (0..f.height).step_by(4) {
            for x in (0..f.width).step_by(4) {
                let (r, g, b) = f.rgb_at(x, y);
                lit += usize::from((r, g, b) != (0, 0, 0));
                blue += usize::from((r, g, b) == (0x30, 0x80, 0xff));
                hash = hash.rotate_left(5) ^ u64::from(r) ^ (u64::from(g) << 8) ^ (u64::from(b) << 16);
            }
        }
        let probes = probes.iter().map(|&(x, y)| x < f.width && y < f.height && f.rgb_at(x, y) != (0, 0, 0)).collect();
        let _ = tx.send(Seen { seq: f.seq, width: f.width, height: f.height, lit, hash, probes, blue });
        Ok(())
    };
    let done = std::thread::spawn(move || run(config, sink, Some(control_rx)));
    Session { control, frames, done, socket, runtime }
}

impl Session {
    /// Waits for a frame that satisfies `pred`.
    fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&Seen) -> bool) -> Seen {
        let end = Instant::now() + timeout;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.frames.recv_timeout(left) {
                Ok(f) if pred(&f) => return f,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!("timed out waiting for {what}");
    }

    fn input(&self, e: InputEvent) {
        self.control.send(Control::Input(e)).unwrap();
    }

    fn stop(self) -> Outcome {
        let _ = self.control.send(Control::Stop);
        self.done.join().unwrap().unwrap()
    }

    /// Starts a client against this compositor from outside the session.
    fn client(&self, argv: &[&str]) -> std::process::Child {
        std::process::Command::new(argv[0])
            .args(&argv[1..])
            .env("WAYLAND_DISPLAY", &self.socket)
            .env("XDG_RUNTIME_DIR", &self.runtime)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    }
}

const LONG: Duration = Duration::from_secs(20);

#[test]
fn weston_simple_shm_pixels_reach_the_sink_and_animate() {
    let s = start("640x480@60", &["weston-simple-shm"], vec![]);
    // simple-shm draws a 250x250 animated pattern: about 3900 of the sampled pixels.
    let first = s.wait_for("simple-shm content", LONG, |f| f.lit > 2000);
    assert_eq!((first.width, first.height), (640, 480));
    let later = s.wait_for("a changed frame", LONG, |f| f.seq > first.seq + 5 && f.hash != first.hash);
    assert!(later.lit > 2000);
    let outcome = s.stop();
    assert!(outcome.frames >= later.seq);
    assert_eq!(outcome.exit_code, None, "stopped before the command exited");
}

#[test]
fn the_session_ends_with_its_command_and_reports_the_exit_code() {
    let s = start("320x240@30", &["sh", "-c", "exit 3"], vec![]);
    let outcome = s.done.join().unwrap().unwrap();
    assert_eq!(outcome.exit_code, Some(3));
}

#[test]
fn orphaned_children_keep_the_session_alive() {
    let marker = std::env::temp_dir().join(format!("pf-orphan-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let script = format!("(sleep 1; touch {}) & exit 0", marker.display());
    let s = start("320x240@30", &["sh", "-c", &script], vec![]);
    let outcome = s.done.join().unwrap().unwrap();
    assert_eq!(outcome.exit_code, Some(0));
    assert!(marker.exists(), "the session ended before the orphaned child did");
    let _ = std::fs::remove_file(&marker);
}

/// Linux evdev codes for the characters the tests type (US layout, unshifted).
fn evdev(c: char) -> u32 {
    const ROW: [(&str, u32); 4] = [("1234567890", 2), ("qwertyuiop", 16), ("asdfghjkl", 30), ("zxcvbnm", 44)];
    match c {
        ' ' => 57,
        '\n' => 28,
        '-' => 12,
        '/' => 53,
        '.' => 52,
        _ => {
            for (keys, first) in ROW {
                if let Some(i) = keys.find(c) {
                    return first + i as u32;
                }
            }
            panic!("no key for {c:?}")
        }
    }
}

/// Waits up to `LONG` for a file a typed command creates.
fn wait_for_file(path: &std::path::Path) -> bool {
    let end = Instant::now() + LONG;
    while !path.exists() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    path.exists()
}

fn type_text(s: &Session, text: &str) {
    for c in text.chars() {
        let code = evdev(c);
        s.input(InputEvent::Key { code, pressed: true });
        s.input(InputEvent::Key { code, pressed: false });
    }
}

#[test]
fn typed_keys_reach_a_shell_in_foot() {
    let marker = std::env::temp_dir().join(format!("pf-keys-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let s = start("800x600@60", &["foot", "--", "sh"], vec![]);
    s.wait_for("foot's first frame", LONG, |f| f.lit > 1000);
    // Keys typed before the shell reads them wait in the terminal's line buffer.
    type_text(&s, &format!("touch {}\n", marker.display()));
    assert!(wait_for_file(&marker), "typed command did not run");
    let _ = std::fs::remove_file(&marker);
    s.stop();
}

#[test]
fn a_mode_change_resizes_a_fullscreen_client() {
    // Probe a point that exists only in the larger mode.
    let s = start("640x480@60", &["foot"], vec![(900, 650)]);
    s.wait_for("foot at 640x480", LONG, |f| f.lit > 1000 && f.width == 640);
    s.control.send(Control::SetMode("960x720@60".parse::<Mode>().unwrap())).unwrap();
    let big = s.wait_for("foot filling 960x720", LONG, |f| f.width == 960 && f.probes[0]);
    assert_eq!(big.height, 720);
    s.stop();
}

#[test]
fn a_killed_client_leaves_the_compositor_serving() {
    let s = start("640x480@60", &[], vec![]);
    s.wait_for("the compositor's first frame", LONG, |_| true);
    let mut c = s.client(&["weston-simple-shm"]);
    s.wait_for("first client", LONG, |f| f.lit > 2000);
    c.kill().unwrap();
    c.wait().unwrap();
    // Only the cursor (a few sampled pixels) is left.
    s.wait_for("the dead client's window gone", LONG, |f| f.lit < 200);
    let mut again = s.client(&["weston-simple-shm"]);
    s.wait_for("a new client", LONG, |f| f.lit > 2000);
    again.kill().unwrap();
    again.wait().unwrap();
    s.stop();
}

#[test]
fn pointer_buttons_and_scroll_reach_a_client() {
    let log = std::env::temp_dir().join(format!("pf-events-{}", std::process::id()));
    // Line-buffered, or the log is lost in stdio's buffer when the session is stopped.
    let script = format!("exec stdbuf -oL weston-eventdemo --log-button --log-axis > {}", log.display());
    let s = start("640x480@60", &["sh", "-c", &script], vec![]);
    s.wait_for("eventdemo drawn", LONG, |f| f.lit > 1000);
    s.input(InputEvent::PointerMotion { x: 320.0, y: 240.0 });
    s.input(InputEvent::Button { code: 0x110, pressed: true });
    s.input(InputEvent::Button { code: 0x110, pressed: false });
    s.input(InputEvent::Scroll { vertical: true, v120: 120 });
    let end = Instant::now() + LONG;
    let mut text = String::new();
    while Instant::now() < end {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("button") && text.contains("axis") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    s.stop();
    let _ = std::fs::remove_file(&log);
    assert!(text.contains("button"), "no button event reached the client: {text:?}");
    assert!(text.contains("axis"), "no scroll event reached the client: {text:?}");
}

#[test]
fn an_x11_client_renders_through_xwayland() {
    let s = start("640x480@60", &["xeyes"], vec![]);
    // xeyes is configured fullscreen: two large eyes fill much of the frame.
    let f = s.wait_for("xeyes content", LONG, |f| f.lit > 5000);
    assert_eq!((f.width, f.height), (640, 480));
    s.stop();
}

/// X11 and Wayland windows share one stacking order: a Wayland window opened after an X11
/// one is drawn over it (and gets the keyboard), not under it.
#[test]
fn a_newer_wayland_window_stacks_over_an_x11_one() {
    let s = start("640x480@60", &["xterm", "-fa", "DejaVu Sans Mono", "-e", "sh"], vec![]);
    let xterm = s.wait_for("xterm drawn", Duration::from_secs(30), |f| f.lit > 1000);
    assert_eq!(xterm.blue, 0);
    // Built beside this test by `cargo test --workspace` (target/<profile>/).
    let pattern = std::env::current_exe().unwrap().parent().and_then(std::path::Path::parent).unwrap().join("punktfunk-test-pattern");
    assert!(pattern.exists(), "{} missing: build the workspace (cargo test --workspace)", pattern.display());
    let mut app = s.client(&[pattern.to_str().unwrap(), "--color", "3080ff"]);
    // 640x480 sampled every 4th pixel: 19200 samples; the pattern's band is most of them.
    let f = s.wait_for("the Wayland window over xterm", LONG, |f| f.blue > 19200 / 2);
    eprintln!("{} of 19200 samples show the newer Wayland window", f.blue);
    let _ = app.kill();
    let _ = app.wait();
    s.stop();
}

#[test]
fn typed_keys_reach_a_shell_in_xterm() {
    // Typed as text: capitals and '_' need Shift, found through the keymap.
    let marker = std::env::temp_dir().join(format!("pf-X_Keys-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let s = start("800x600@60", &["xterm", "-fa", "DejaVu Sans Mono", "-e", "sh"], vec![]);
    s.wait_for("xterm drawn", Duration::from_secs(30), |f| f.lit > 1000);
    s.input(InputEvent::Text(format!("touch {}\n", marker.display())));
    assert!(wait_for_file(&marker), "typed command did not run in xterm");
    let _ = std::fs::remove_file(&marker);
    s.stop();
}

#[test]
fn nonsense_input_is_ignored_and_the_session_keeps_serving() {
    let s = start("640x480@60", &["weston-simple-shm"], vec![]);
    let before = s.wait_for("simple-shm content", LONG, |f| f.lit > 2000);
    for e in [
        InputEvent::Key { code: u32::MAX, pressed: true },
        InputEvent::Key { code: 60_000, pressed: true },
        InputEvent::Key { code: 60_000, pressed: false },
        InputEvent::Key { code: 30, pressed: false }, // release without press
        InputEvent::PointerMotion { x: f64::NAN, y: f64::INFINITY },
        InputEvent::PointerMotion { x: -1e12, y: 1e12 },
        InputEvent::PointerRelative { dx: f64::NAN, dy: 1e300 },
        InputEvent::Button { code: 0, pressed: false },
        InputEvent::Scroll { vertical: false, v120: i32::MAX },
        InputEvent::Scroll { vertical: true, v120: i32::MIN },
        InputEvent::TouchUp { id: 99 },
        InputEvent::TouchMotion { id: 98, x: 1.0, y: 1.0 },
        InputEvent::TouchDown { id: 1, x: f64::NAN, y: 5.0 },
        InputEvent::Text("\u{0}\u{7f}☃\u{10ffff}".into()),
    ] {
        s.input(e);
    }
    s.wait_for("frames after the nonsense", LONG, |f| f.seq > before.seq + 10 && f.lit > 2000);
    s.stop();
}

#[test]
fn the_cursor_is_drawn_where_the_pointer_is() {
    // Probe a grid around (100, 100) and around (400, 300).
    let grid = |x0: u32, y0: u32| (0..12).flat_map(move |i| (0..12).map(move |j| (x0 + 2 * i, y0 + 2 * j)));
    let probes: Vec<(u32, u32)> = grid(100, 100).chain(grid(400, 300)).collect();
    let s = start("640x480@60", &[], probes);
    s.wait_for("the compositor's first frame", LONG, |_| true);
    s.input(InputEvent::PointerMotion { x: 100.0, y: 100.0 });
    let at = |f: &Seen, first: bool| f.probes[if first { 0..144 } else { 144..288 }].iter().any(|&p| p);
    s.wait_for("the cursor at (100, 100)", LONG, |f| at(f, true) && !at(f, false));
    s.input(InputEvent::PointerMotion { x: 400.0, y: 300.0 });
    s.wait_for("the cursor moved to (400, 300)", LONG, |f| !at(f, true) && at(f, false));
    s.stop();
}

#[test]
fn a_client_breaking_the_protocol_is_dropped_and_others_carry_on() {
    use std::io::{Read, Write};
    let s = start("640x480@60", &[], vec![]);
    s.wait_for("the compositor's first frame", LONG, |_| true);
    let mut rogue = std::os::unix::net::UnixStream::connect(s.runtime.join(&s.socket)).unwrap();
    // wl_display (object 1) has no request 99: a protocol error.
    let header = [1u32.to_ne_bytes(), ((8u32 << 16) | 99).to_ne_bytes()].concat();
    rogue.write_all(&header).unwrap();
    rogue.set_read_timeout(Some(LONG)).unwrap();
    let mut buf = [0u8; 512];
    // The compositor drops the connection (EOF), rather than leaving it hanging.
    let closed = loop {
        match rogue.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => continue,
            Err(_) => break false,
        }
    };
    assert!(closed, "the rogue client was not disconnected");
    let mut good = s.client(&["weston-simple-shm"]);
    s.wait_for("a well-behaved client after the rogue one", LONG, |f| f.lit > 2000);
    good.kill().unwrap();
    good.wait().unwrap();
    s.stop();
}

/// A session whose command runs the shell `steps` with `$out` a fresh directory for what it
/// reads and `until_read WANT CMD…`: runs CMD until it prints WANT (5 s at most), then prints
/// what it prints, so a read waits for the copy it expects without a fixed sleep.
fn clipboard_session(name: &str, steps: &str, configure: impl FnOnce(&mut Config)) -> (Session, PathBuf) {
    let out = std::env::temp_dir().join(format!("pf-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let script = format!(
        r#"out=$1
        until_read() {{ want=$1; shift; i=0; while [ $i -lt 100 ] && [ "$("$@" 2>/dev/null)" != "$want" ]; do i=$((i+1)); sleep 0.05; done; "$@" 2>&1; }}
        {steps}
        exec sleep 60"#
    );
    let s = start_with("320x240@30", &["sh", "-c", &script, "sh", out.to_str().unwrap()], vec![], configure);
    (s, out)
}

/// What the session wrote to `name` in `out` (written whole, by a rename).
fn written(out: &std::path::Path, name: &str) -> String {
    let path = out.join(name);
    assert!(wait_for_file(&path), "{name} never written");
    std::fs::read_to_string(path).unwrap()
}

/// Text copied in a Wayland app pastes in an X11 app and back, for the clipboard and the
/// primary selection: wl-copy/wl-paste (wlr data control) and xclip (through Xwayland's
/// window manager) inside the session.
#[test]
fn the_clipboard_crosses_between_wayland_and_x11_apps() {
    let steps = r#"
        printf 'copied in Wayland' | wl-copy
        until_read 'copied in Wayland' xclip -o -selection clipboard > "$out/x11.tmp"; mv "$out/x11.tmp" "$out/x11-read"
        printf 'copied in X11' | xclip -i -selection clipboard
        until_read 'copied in X11' wl-paste -n > "$out/wayland.tmp"; mv "$out/wayland.tmp" "$out/wayland-read"
        printf 'selected in Wayland' | wl-copy --primary
        until_read 'selected in Wayland' xclip -o -selection primary > "$out/primary.tmp"; mv "$out/primary.tmp" "$out/x11-primary-read"
    "#;
    let (s, out) = clipboard_session("clipboard", steps, |_| {});
    assert_eq!(written(&out, "x11-read"), "copied in Wayland", "an X11 app pastes what a Wayland app copied");
    assert_eq!(written(&out, "wayland-read"), "copied in X11", "a Wayland app pastes what an X11 app copied");
    assert_eq!(written(&out, "x11-primary-read"), "selected in Wayland", "the primary selection crosses too");
    s.stop();
    let _ = std::fs::remove_dir_all(&out);
}

/// The streaming client's clipboard in the session: its text pastes in Wayland and X11 apps,
/// and what they copy afterwards (Wayland, then X11) is handed to the stream in order.
#[test]
fn the_clients_clipboard_joins_the_sessions() {
    // The X11 copy comes a while after the Wayland one, with no X11 request between: the
    // window manager's claim for the Wayland copy must have reached the X server by then.
    let steps = r#"
        until_read 'from the client' wl-paste -n > "$out/w.tmp"; mv "$out/w.tmp" "$out/wayland-read"
        until_read 'from the client' xclip -o -selection clipboard > "$out/x.tmp"; mv "$out/x.tmp" "$out/x11-read"
        printf 'copied in Wayland' | wl-copy
        sleep 0.5
        printf 'copied in X11' | xclip -i -selection clipboard
    "#;
    let (send, copies) = mpsc::channel();
    let (s, out) = clipboard_session("client-clipboard", steps, |c| {
        c.clipboard = Some(punktfunk_compositor::ClipboardSink { send, max_len: 1024 });
    });
    s.control.send(Control::Clipboard("from the client".into())).unwrap();
    assert_eq!(written(&out, "wayland-read"), "from the client", "a Wayland app pastes what the client copied");
    assert_eq!(written(&out, "x11-read"), "from the client", "an X11 app too");
    let copied: Vec<String> = (0..2).filter_map(|_| copies.recv_timeout(LONG).ok()).collect();
    assert_eq!(copied, ["copied in Wayland", "copied in X11"], "the apps' copies go to the stream");
    s.stop();
    let _ = std::fs::remove_dir_all(&out);
}
