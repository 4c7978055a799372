//! The windowed `punktfunk-client`, as a user runs it: a Wayland window inside a real
//! compositor (ours, run in-process here as the "desktop" the client sits on). It shows the
//! host's stream — the test-pattern app's colour reaches the desktop's frames — and what is
//! typed and clicked into the window reaches the app on the host, whose colour flips; with
//! `--clipboard`, the desktop's clipboard and the session's are one.

mod common;

use common::{host_cli, output_text, pair_native, start_daemon, target_dir};
use punktfunk_compositor::{ClipboardSink, Config, Control, Frame, InputEvent, control_channel, run};
use std::ffi::OsString;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const PORT: u16 = 25989;
const API_PORT: u16 = 25991;
const NATIVE: u16 = PORT + 50;
const COLOUR: [i32; 3] = [0x30, 0x80, 0xff];

/// Mean colour of the lower right of a desktop frame, where the window shows the band.
fn band(f: &Frame) -> [i32; 3] {
    let (mut sum, mut n) = ([0i32; 3], 0);
    for y in (f.height / 2 + 10..f.height - 20).step_by(6) {
        for x in (f.width / 2 + 10..f.width - 20).step_by(6) {
            let (r, g, b) = f.rgb_at(x, y);
            for (s, v) in sum.iter_mut().zip([r, g, b]) {
                *s += i32::from(v);
            }
            n += 1;
        }
    }
    sum.map(|s| s / n.max(1))
}

fn near(a: [i32; 3], b: [i32; 3]) -> bool {
    a.iter().zip(b).all(|(x, y)| (x - y).abs() < 40)
}

#[test]
fn the_window_shows_the_stream_and_sends_input() {
    let dir = std::env::temp_dir().join(format!("pf-native-window-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (log, pasted) = (dir.join("input.log"), dir.join("pasted"));
    // The app, and beside it one that pastes what the desktop copied (waiting for it up to
    // 20 s), then copies in the session.
    let clipboard = format!(
        "i=0; while [ $i -lt 400 ] && [ \"$(wl-paste -n 2>/dev/null)\" != 'from the desktop' ]; do i=$((i+1)); sleep 0.05; done; wl-paste -n > '{0}.tmp'; mv '{0}.tmp' '{0}'; printf 'from the session' | wl-copy",
        pasted.display()
    );
    let pattern = target_dir().join("punktfunk-test-pattern");
    let app = format!("({clipboard}) & exec '{}' --color 3080ff --input-log '{}'", pattern.display(), log.display());
    let _daemon = start_daemon(&dir, PORT, API_PORT, &["sh".into(), "-c".into(), app], "");
    let config = dir.join("client");
    let (c, h) = pair_native(&[], &dir, &config, NATIVE, "4321", "4321");
    assert!(c.status.success() && h.status.success(), "pairing: {}\n{}", output_text(&c), output_text(&h));
    let permit = host_cli(&[], &dir).args(["clients", "permit", "punktfunk-client at 127.0.0.1", "--clipboard", "true"]).output().unwrap();
    assert!(permit.status.success(), "{}", output_text(&permit));

    // The desktop: our compositor at 640x480 running the windowed client.
    let runtime = dir.join("desktop-runtime");
    std::fs::create_dir_all(&runtime).unwrap();
    std::fs::set_permissions(&runtime, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let mut desktop = Config::new("640x480@30".parse().unwrap());
    desktop.runtime_dir = Some(runtime);
    desktop.xwayland = false;
    desktop.command = [target_dir().join("punktfunk-client").into_os_string()]
        .into_iter()
        .chain(
            [
                "stream",
                &format!("127.0.0.1:{NATIVE}"),
                "--app",
                "Input Test",
                "--mode",
                "320x240@30",
                "--bitrate-kbps",
                "2000",
                "--clipboard",
            ]
            .map(OsString::from),
        )
        .collect();
    desktop.env = vec![("XDG_CONFIG_HOME", config.into_os_string())];
    // What the client sets as the desktop's clipboard reaches this sink.
    let (desktop_copies, desktop_copied) = mpsc::channel();
    desktop.clipboard = Some(ClipboardSink { send: desktop_copies, max_len: 1024 });
    let (control, control_rx) = control_channel();
    let (tx, bands) = mpsc::channel();
    let sink = move |f: Frame| {
        let _ = tx.send(band(&f));
        Ok(())
    };
    let session = std::thread::spawn(move || run(desktop, sink, Some(control_rx)));
    let wait_for = |want: [i32; 3], what: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut last = [0; 3];
        while Instant::now() < deadline {
            if let Ok(b) = bands.recv_timeout(Duration::from_millis(200)) {
                last = b;
                if near(b, want) {
                    return;
                }
            }
        }
        panic!("{what}: the desktop shows {last:?}, not {want:?}");
    };

    wait_for(COLOUR, "the stream in the window");
    // A key typed into the window: the app on the host flips its colour.
    let input = |e: InputEvent| control.send(Control::Input(e)).unwrap();
    input(InputEvent::Key { code: 30, pressed: true });
    input(InputEvent::Key { code: 30, pressed: false });
    wait_for(COLOUR.map(|c| 255 - c), "after a key press in the window");
    // A click in the window flips it back.
    // (The first motion only enters the window, and the app's surface: move twice.)
    input(InputEvent::PointerMotion { x: 320.0, y: 240.0 });
    input(InputEvent::PointerMotion { x: 330.0, y: 250.0 });
    input(InputEvent::Button { code: 0x110, pressed: true });
    input(InputEvent::Button { code: 0x110, pressed: false });
    wait_for(COLOUR, "after a click in the window");

    // The clipboard: text copied on the desktop pastes in the session, and what the session
    // copies becomes the desktop's clipboard text.
    control.send(Control::Clipboard("from the desktop".into())).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pasted.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(std::fs::read_to_string(&pasted).unwrap_or_default(), "from the desktop", "the session pastes the desktop's copy");
    assert_eq!(
        desktop_copied.recv_timeout(Duration::from_secs(20)).ok().as_deref(),
        Some("from the session"),
        "the session's copy is the desktop's clipboard"
    );

    let _ = control.send(Control::Stop);
    session.join().unwrap().unwrap();
    let events = std::fs::read_to_string(&log).unwrap();
    for want in ["key 30 down", "key 30 up", "button 272 down"] {
        assert!(events.lines().any(|l| l.starts_with(want)), "the app never saw `{want}`:\n{events}");
    }
    // The window maps its 640x480 onto the 320x240 stream: (330, 250) lands at (165, 125).
    assert!(events.lines().any(|l| l == "motion 165.0 125.0"), "{events}");
    let _ = std::fs::remove_dir_all(&dir);
}
