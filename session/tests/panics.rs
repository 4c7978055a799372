//! A panic in a daemon thread takes the whole daemon down (to be restarted by its service
//! manager) instead of leaving it half alive: here the control stream's thread, by a fault
//! injected in a debug build.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

const PORT: u16 = 27489;
const API_PORT: u16 = 27491;

#[test]
fn a_panicking_control_thread_aborts_the_daemon() {
    let dir = std::env::temp_dir().join(format!("pf-panics-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // A normal start writes the configuration and state first.
    drop(common::start_daemon(&dir, PORT, API_PORT, &["true".into()], ""));
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_punktfunk"))
        .arg("serve")
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_STATE_HOME", dir.join("state"))
        .env("PUNKTFUNK_FAULT", "control")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = daemon.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = daemon.kill();
            panic!("the daemon lives on with a dead control thread");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut log = String::new();
    std::io::Read::read_to_string(daemon.stderr.as_mut().unwrap(), &mut log).unwrap();
    assert_eq!(status.signal(), Some(nix::libc::SIGABRT), "{status:?}\n{log}");
    assert!(log.contains("fault injected at control"), "the panic is reported:\n{log}");
    let _ = std::fs::remove_dir_all(&dir);
}
