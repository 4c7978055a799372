//! Video over a lossy link: host and Moonlight client in their own network namespace, where
//! nftables drops a share of the host's video datagrams at random (this kernel has no
//! `sch_netem`, so `tc netem loss` is not available; a random drop rule is the same loss
//! model). The client's own statistics must show FEC recovering packets, and the stream
//! keeps going.
//!
//! Needs root, `ip` and `nft` (`.ci/run` installs them) and the Moonlight client's Python.

mod common;

use common::{start_daemon_with, target_dir};
use std::path::Path;
use std::process::Command;

const PORT: u16 = 40989;
const API_PORT: u16 = 40991;
const LOSS_PERCENT: u32 = 5;

struct Netns(String);

impl Netns {
    fn create(name: &str) -> Self {
        let run = |args: &[&str]| {
            let st = Command::new(args[0]).args(&args[1..]).status().unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert!(st.success(), "{args:?} failed");
        };
        let _ = Command::new("ip").args(["netns", "del", name]).status();
        run(&["ip", "netns", "add", name]);
        let ns = Self(name.to_owned());
        run(&["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"]);
        let nft = |rule: &str| run(&["ip", "netns", "exec", name, "sh", "-c", &format!("nft {rule}")]);
        nft("add table inet loss");
        nft("add chain inet loss out '{ type filter hook output priority 0; }'");
        nft(&format!("add rule inet loss out udp sport {} numgen random mod 100 '<' {LOSS_PERCENT} drop", PORT + 9));
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn can_run() -> Option<std::path::PathBuf> {
    let ci = std::env::var_os("CI").is_some();
    let python = std::env::var_os("PUNKTFUNK_MOONLIGHT_PYTHON").map(std::path::PathBuf::from);
    let tools = nix::unistd::geteuid().is_root() && ["ip", "nft"].iter().all(|t| Command::new(t).arg("-V").output().is_ok());
    match (python, tools) {
        (Some(p), true) => Some(p),
        _ if ci => panic!("the loss test needs root, ip, nft and PUNKTFUNK_MOONLIGHT_PYTHON on CI"),
        _ => None,
    }
}

#[test]
fn fec_recovers_video_over_a_lossy_link() {
    let Some(python) = can_run() else {
        eprintln!("skipped: needs root, ip, nft and PUNKTFUNK_MOONLIGHT_PYTHON");
        return;
    };
    let name = format!("pf-loss-{}", std::process::id());
    let ns = Netns::create(&name);
    let dir = std::env::temp_dir().join(&name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let app = vec![target_dir().join("punktfunk-test-pattern").display().to_string(), "--color".into(), "3080ff".into()];
    let _daemon = start_daemon_with(&["ip", "netns", "exec", &ns.0], &dir, PORT, API_PORT, &app, "");

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/moonlight_client.py");
    let output = Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .arg(&python)
        .arg(&script)
        .args([PORT.to_string(), API_PORT.to_string(), dir.join("client").display().to_string(), "Input Test".into(), "loss".into()])
        .output()
        .expect("running the Moonlight client");
    let log = std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default();
    assert!(output.status.success(), "client failed: {}\n--- daemon log ---\n{log}", String::from_utf8_lossy(&output.stderr));
    let last = output.stdout.rsplit(|&b| b == b'\n').find(|l| !l.is_empty()).unwrap();
    let out: serde_json::Value = serde_json::from_slice(last).unwrap();
    eprintln!("{LOSS_PERCENT} % loss: {out}");
    // moonlight-common-c's video statistics count the data and parity datagrams that arrived
    // (it never fills in its "recovered" counter for video); the host knows how many it sent
    // and how many the link dropped. Without FEC every dropped data datagram would cost its
    // frame; with it, almost every frame still decodes.
    let client = &out["video_stats"];
    let host = &out["status"]["last_video"];
    let n = |v: &serde_json::Value| v.as_u64().unwrap();
    let (datagrams, data, dropped) = (n(&host["datagrams"]), n(&host["data_datagrams"]), n(&host["unsent"]));
    let dropped_data = dropped as f64 * data as f64 / datagrams as f64;
    let gaps = n(&out["frame_gaps"]);
    eprintln!(
        "figures: {LOSS_PERCENT} % loss — host sent {datagrams} datagrams ({data} data), the link dropped {dropped} (≈{dropped_data:.0} of them data); the client received {} data + {} parity datagrams and decoded {} frames with {gaps} frame numbers skipped",
        client["packetCountVideo"], client["packetCountFec"], out["frames"]
    );
    assert_eq!(out["frames"], 300, "the stream stalled: {out}");
    assert!(dropped >= 10, "the link dropped too little to tell: {host}");
    assert!((gaps as f64) < dropped_data / 2.0, "{gaps} frames lost for ≈{dropped_data:.0} dropped data datagrams: FEC did not recover them");
}
