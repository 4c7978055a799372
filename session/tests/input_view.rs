//! A session's view of the input devices, with the real keeper (`punktfunk input-view`) and
//! real processes joining it: they see only the nodes shown to them, hot-plugged ones the
//! moment they are shown, masked nodes cannot be read, and the host's own view is left as
//! it was. Run as root (a mount namespace) and again as an unprivileged user (a user
//! namespace too), where the machine allows one. Directories of the test's own stand for
//! /dev/input and /dev (this machine may have neither); the real nodes of virtual pads are
//! shown in the gamepad tests on a real kernel.

use punktfunk_session::input_view::{Dirs, InputView};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn inside(view: &InputView, script: &str) -> String {
    let mut command = Command::new("sh");
    command.arg("-c").arg(script);
    view.enter(&mut command);
    let out = command.output().expect("running a process in the view");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn scenario(base: &Path) {
    let dirs = Dirs { input: base.join("input"), dev: base.join("dev") };
    for dir in [base, &dirs.input, &dirs.dev] {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::set_permissions(dir, PermissionsExt::from_mode(0o755)).unwrap();
    }
    for (file, text) in [(dirs.input.join("event1"), "one"), (dirs.input.join("event2"), "two"), (dirs.dev.join("hidraw0"), "raw")] {
        std::fs::write(&file, text).unwrap();
    }
    let (input, dev) = (dirs.input.display(), dirs.dev.display());
    let view = InputView::new(Path::new(env!("CARGO_BIN_EXE_punktfunk")), &dirs).expect("a view");
    assert_eq!(inside(&view, &format!("ls {input}")), "", "nothing shows until shown");

    view.show("event1").unwrap();
    assert_eq!(inside(&view, &format!("ls {input}; cat {input}/event1")), "event1\none", "the real node, shown");
    assert!(view.show("event9").is_err(), "a node that is not there");
    assert!(view.show("../event2").is_err() && view.show("mice").is_err(), "names only");
    // A pad plugged in after the session started.
    std::fs::write(dirs.input.join("event3"), "three").unwrap();
    view.show("event3").unwrap();
    assert_eq!(inside(&view, &format!("cat {input}/event3")), "three");

    view.mask("hidraw0").unwrap();
    assert_ne!(inside(&view, &format!("cat {dev}/hidraw0 2>/dev/null")), "raw", "another session's node, masked");
    view.unmask("hidraw0").unwrap();
    assert_eq!(inside(&view, &format!("cat {dev}/hidraw0")), "raw");

    view.hide("event1").unwrap();
    assert_eq!(inside(&view, &format!("ls {input}")), "event3");
    assert!(view.hide("event1").is_err(), "hidden already");
    // The host's own view never changed.
    let mut host: Vec<_> = std::fs::read_dir(&dirs.input).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    host.sort();
    assert_eq!(host, ["event1", "event2", "event3"]);
    assert_eq!(std::fs::read_to_string(dirs.dev.join("hidraw0")).unwrap(), "raw");
}

fn base(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("pf-input-view-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn a_session_sees_only_the_nodes_shown_to_it() {
    let dir = base("own");
    scenario(&dir);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same as a user with no privilege (the host as most people run it): run by the test
/// below as `nobody`.
#[test]
#[ignore = "run as an unprivileged user by the test below"]
fn unprivileged_view() {
    scenario(&base("nobody"));
}

#[test]
fn without_privilege_the_view_is_made_in_a_user_namespace() {
    if !nix::unistd::geteuid().is_root() {
        return scenario(&base("user"));
    }
    let me = std::env::current_exe().unwrap();
    let keeper = Path::new(env!("CARGO_BIN_EXE_punktfunk"));
    if !runnable_by_anyone(&me) || !runnable_by_anyone(keeper) {
        // A checkout in root's home: nobody may run its binaries.
        eprintln!("skipped: {} is not reachable for other users", me.display());
        return;
    }
    let run = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&me)
        .args(["--ignored", "--exact", "unprivileged_view", "--test-threads=1"])
        .env("TMPDIR", "/tmp")
        .output()
        .expect("setpriv");
    let text = format!("{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    if text.contains("a user and mount namespace") {
        // Some machines forbid unprivileged user namespaces (the view says so at start).
        eprintln!("skipped: no user namespaces for unprivileged users here: {text}");
        return;
    }
    assert!(run.status.success() && text.contains("1 passed"), "{text}");
}

/// Whether users other than the owner may run the program at `path` (every directory on
/// the way searchable by them).
fn runnable_by_anyone(path: &Path) -> bool {
    let mode = |p: &Path| std::fs::metadata(p).map(|m| m.permissions().mode()).unwrap_or(0);
    mode(path) & 0o001 != 0 && path.ancestors().skip(1).all(|dir| dir.as_os_str().is_empty() || mode(dir) & 0o001 != 0)
}
