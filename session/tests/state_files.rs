//! The host's files survive being killed at any moment: `punktfunk serve` killed with
//! SIGKILL again and again while it creates its state (identity, token, client list) starts
//! afterwards with a usable identity, leaves no temporary file behind, and keeps its state
//! directory and secrets to its owner.

mod common;

use common::start_daemon;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

const PORT: u16 = 26989;
const API_PORT: u16 = 26991;

fn temp_files(dir: &std::path::Path) -> Vec<String> {
    let names = std::fs::read_dir(dir).map(|d| d.flatten().filter_map(|e| e.file_name().into_string().ok()).collect()).unwrap_or(vec![]);
    names.into_iter().filter(|n: &String| n.contains(".tmp")).collect()
}

#[test]
fn killed_while_creating_its_state_it_starts_clean() {
    let dir = std::env::temp_dir().join(format!("pf-state-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let state = dir.join("state/punktfunk");
    // The first start writes the config; the kills then land at every stage of creating
    // the state, from nothing yet to a finished start. The state is removed every few kills
    // so creation is hit again.
    drop(start_daemon(&dir, PORT, API_PORT, &["true".into()], ""));
    for round in 0..24u64 {
        if round % 3 == 0 {
            let _ = std::fs::remove_dir_all(&state);
        }
        let mut daemon = Command::new(env!("CARGO_BIN_EXE_punktfunk"))
            .arg("serve")
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .env("XDG_STATE_HOME", dir.join("state"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(round * 15));
        daemon.kill().unwrap();
        daemon.wait().unwrap();
    }
    let _daemon = start_daemon(&dir, PORT, API_PORT, &["true".into()], "");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(temp_files(&state), Vec::<String>::new(), "temporary files left in the state directory");
    assert_eq!(temp_files(&dir.join("config/punktfunk")), Vec::<String>::new(), "temporary files left by the config");
    assert_eq!(mode(&state), 0o700, "the state directory is the owner's");
    assert_eq!(mode(&state.join("host.key")), 0o600);
    assert_eq!(mode(&state.join("api-token")), 0o600);
    drop(_daemon);

    // A token another user could read is replaced.
    let token = std::fs::read_to_string(state.join("api-token")).unwrap();
    std::fs::set_permissions(state.join("api-token"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let _daemon = start_daemon(&dir, PORT, API_PORT, &["true".into()], "");
    assert_ne!(std::fs::read_to_string(state.join("api-token")).unwrap(), token, "a token others could read is used again");
    assert_eq!(mode(&state.join("api-token")), 0o600);
    drop(_daemon);
    let _ = std::fs::remove_dir_all(&dir);
}
