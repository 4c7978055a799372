//! A device asking to pair shows on the host's desktop: a real notification server (mako on
//! a headless sway, on a session bus of the test's own) shows "Pair a device?" naming the
//! device a real Moonlight client (moonlight-python) pairs from; its "Enter PIN" action opens
//! the console in the desktop's browser (`xdg-open`, here a stand-in that records the
//! address); once the PIN is given (`punktfunk pair`) and the device paired, the
//! notification is gone.

mod common;
#[path = "../../compositor/attach/tests/support/sway.rs"]
mod sway;

use common::{client_report, python, start_daemon_configured};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PORT: u16 = 35989;
const API_PORT: u16 = 35991;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn present(program: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {program}")]).stdout(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// mako's notifications from the app `app` (`makoctl list`, its JSON).
fn notifications(app: &str) -> Vec<Value> {
    let out = Command::new("makoctl").arg("list").output().unwrap();
    let list: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    list["data"][0].as_array().into_iter().flatten().filter(|n| n["app-name"]["data"] == app).cloned().collect()
}

/// Waits (at most 30 s) until `done` holds.
fn until<T>(what: &str, mut done: impl FnMut() -> Option<T>) -> T {
    let since = Instant::now();
    loop {
        if let Some(v) = done() {
            return v;
        }
        assert!(since.elapsed() < Duration::from_secs(30), "never: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_device_asking_to_pair_shows_on_the_desktop_until_it_paired() {
    let tools = ["mako", "makoctl", "busctl", "dbus-daemon"];
    let Some(python) = python().filter(|_| sway::installed() && tools.into_iter().all(present)) else {
        assert!(std::env::var_os("CI").is_none(), "CI installs sway, mako, dbus and the Moonlight client");
        return eprintln!("skipped: needs sway, mako, dbus-daemon and PUNKTFUNK_MOONLIGHT_PYTHON");
    };
    let dir = std::env::temp_dir().join(format!("pf-notify-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (_sway, _) = sway::start_sway(&dir);
    let bus = dir.join("bus");
    let _dbus = Killed(
        Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--nopidfile", &format!("--address=unix:path={}", bus.display())])
            .spawn()
            .unwrap(),
    );
    until("the session bus listens", || bus.exists().then_some(()));
    let address = format!("unix:path={}", bus.display());
    let mako_runtime = dir.join("mako-runtime");
    std::fs::create_dir_all(&mako_runtime).unwrap();
    std::fs::set_permissions(&mako_runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    let _mako = Killed(
        Command::new("mako")
            .env("WAYLAND_DISPLAY", dir.join("runtime/wayland-1"))
            .env("XDG_RUNTIME_DIR", &mako_runtime)
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .stderr(std::fs::File::create(dir.join("mako.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    // The desktop's browser, as far as the test goes: it records what it was asked to open.
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("xdg-open"), format!("#!/bin/sh\necho \"$1\" > {}\n", dir.join("opened").display())).unwrap();
    std::fs::set_permissions(bin.join("xdg-open"), std::fs::Permissions::from_mode(0o755)).unwrap();
    // SAFETY: the only test of its binary, before it starts any thread: the host (its child)
    // and makoctl use this desktop's bus, and the stand-in browser.
    unsafe {
        std::env::set_var("DBUS_SESSION_BUS_ADDRESS", &address);
        std::env::set_var("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default()));
    }
    until("mako serves notifications", || {
        let names = Command::new("busctl").args(["--user", "list", "--acquired"]).output().ok()?;
        String::from_utf8_lossy(&names.stdout).contains("org.freedesktop.Notifications").then_some(())
    });
    let host = "start_pipewire = false\nnotify_pairing = true\n";
    let _daemon = start_daemon_configured(&[], &dir, PORT, API_PORT, host, &["true".into()], "");

    let client = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/moonlight_client.py"))
        .args([&PORT.to_string(), &API_PORT.to_string(), &dir.join("client").display().to_string(), "Desktop", "pair_only", "5678"])
        .env("XDG_STATE_HOME", dir.join("state"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let shown = until("the pairing request is shown", || notifications("punktfunk").pop());
    eprintln!("notification: {shown}");
    assert_eq!(shown["summary"]["data"], "Pair a device?");
    let body = shown["body"]["data"].as_str().unwrap();
    assert!(body.contains("roth at 127.0.0.1") && body.contains("Enter the PIN it shows"), "{body}");
    assert_eq!(shown["actions"]["data"]["enter-pin"], "Enter PIN");

    let id = shown["id"]["data"].to_string();
    let invoked = Command::new("makoctl").args(["invoke", "-n", &id, "enter-pin"]).status().unwrap();
    assert!(invoked.success());
    let opened = until("the console is opened", || std::fs::read_to_string(dir.join("opened")).ok());
    assert_eq!(opened.trim(), format!("https://localhost:{}/", PORT + 3));

    let pair = common::host_cli(&[], &dir).args(["pair", "5678"]).output().unwrap();
    assert!(pair.status.success(), "{}", common::output_text(&pair));
    let out = client_report(&client.wait_with_output().unwrap(), &dir);
    assert_eq!(out["pair"], "paired");
    until("the notification goes once the device paired", || notifications("punktfunk").is_empty().then_some(()));
    let _ = std::fs::remove_dir_all(&dir);
}
