//! Video over an imperfect link: host and client in their own network namespace, where
//! nftables drops a share of the host's video datagrams, at random or in bursts (this
//! kernel has no `sch_netem`, so `tc netem loss` is not available; drop rules give the same
//! loss models), or where `tc netem` delays every datagram (on a kernel that has it: the
//! latency probe's test runs in `.ci/drm-vm`). The client's own statistics must show FEC
//! recovering packets, and the stream keeps going.
//!
//! Needs root (or password-less sudo), `ip` and `nft` (`.ci/run` installs them) and the
//! Moonlight client's Python.

mod common;

use common::{client_report, output_text, pair_native, stream_native, target_dir};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const PORT: u16 = 20989;
const API_PORT: u16 = 20991;
const LOSS_PERCENT: u32 = 5;
/// `LOSS_PERCENT` of the datagrams, each dropped independently.
const RANDOM: &str = "numgen random mod 100 '<' 5";
/// Bursts: 3 datagrams in a row out of every 60 (5 %), as a Wi-Fi retry storm or a short
/// queue overflow loses them.
const BURSTS: &str = "numgen inc mod 60 '<' 3";

/// A network namespace; `sudo` is the prefix that makes commands privileged (empty as root).
struct Netns {
    name: String,
    sudo: Vec<&'static str>,
}

impl Netns {
    /// A namespace whose loopback drops the UDP datagrams sent from `port` that `model` (an
    /// nftables expression: [`RANDOM`], [`BURSTS`]) picks.
    fn create(name: &str, sudo: Vec<&'static str>, port: u16, model: &str) -> Self {
        let ns = Self::lossless(name, sudo);
        ns.nft(&format!("add rule inet loss out udp sport {port} {model} drop"));
        ns
    }

    /// A namespace whose loopback drops nothing until [`Netns::drop_all_from`].
    fn lossless(name: &str, sudo: Vec<&'static str>) -> Self {
        let ns = Self { name: name.to_owned(), sudo };
        ns.delete();
        ns.run(&["ip", "netns", "add", name]);
        ns.run(&["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"]);
        ns.nft("add table inet loss");
        ns.nft("add chain inet loss out '{ type filter hook output priority 0; }'");
        ns
    }

    /// Every UDP datagram sent from `port` is dropped from now on (`false`: none is).
    fn drop_all_from(&self, port: u16, dropping: bool) {
        match dropping {
            true => self.nft(&format!("add rule inet loss out udp sport {port} drop")),
            false => self.nft("flush chain inet loss out"),
        }
    }

    fn nft(&self, rule: &str) {
        self.run(&["ip", "netns", "exec", &self.name, "sh", "-c", &format!("nft {rule}")]);
    }

    fn run(&self, args: &[&str]) {
        let st = privileged(&self.sudo, args).status().unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert!(st.success(), "{args:?} failed");
    }
}

impl Netns {
    /// A namespace whose loopback holds every datagram as netem's `spec` says (`delay 20ms`:
    /// 20 ms before delivering it, both ways: a link of 40 ms round trip).
    fn delayed(name: &str, sudo: Vec<&'static str>, spec: &str) -> Self {
        let ns = Self { name: name.to_owned(), sudo };
        ns.delete();
        for args in [
            &["ip", "netns", "add", name][..],
            &["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"],
            &["ip", "netns", "exec", name, "sh", "-c", &format!("tc qdisc add dev lo root netem {spec}")],
        ] {
            let st = privileged(&ns.sudo, args).status().unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert!(st.success(), "{args:?} failed");
        }
        ns
    }

    /// `argv` run inside the namespace.
    fn exec<'a>(&'a self, argv: &[&'a str]) -> Vec<&'a str> {
        self.sudo.iter().copied().chain(["ip", "netns", "exec", &self.name]).chain(argv.iter().copied()).collect()
    }

    fn delete(&self) {
        let _ = privileged(&self.sudo, &["ip", "netns", "del", &self.name]).status();
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.delete();
    }
}

/// `argv` behind the `sudo` prefix (which is empty as root).
fn privileged(sudo: &[&str], argv: &[&str]) -> Command {
    let all: Vec<&str> = sudo.iter().chain(argv).copied().collect();
    let mut c = Command::new(all[0]);
    c.args(&all[1..]);
    c
}

/// The client's Python and how to get privileges, or why the test cannot run here.
fn requirements() -> Result<(std::path::PathBuf, Vec<&'static str>), &'static str> {
    let python =
        std::env::var_os("PUNKTFUNK_MOONLIGHT_PYTHON").map(std::path::PathBuf::from).ok_or("PUNKTFUNK_MOONLIGHT_PYTHON is not set")?;
    let sudo = if nix::unistd::geteuid().is_root() {
        vec![]
    } else if Command::new("sudo").args(["-n", "true"]).status().is_ok_and(|s| s.success()) {
        // -E: the daemon finds its configuration through XDG_* variables.
        vec!["sudo", "-n", "-E"]
    } else {
        return Err("needs root or password-less sudo");
    };
    let tool = |t: &str| privileged(&sudo, &[t, "-V"]).output().is_ok_and(|o| o.status.success());
    if !tool("ip") || !tool("nft") {
        return Err("needs ip (iproute2) and nft (nftables)");
    }
    Ok((python, sudo))
}

/// [`requirements`], or `None` after saying why the test is skipped. CI installs everything
/// these tests need: there, a missing piece is a failure.
fn requirements_or_skip() -> Option<(std::path::PathBuf, Vec<&'static str>)> {
    match requirements() {
        Ok(r) => Some(r),
        Err(why) if std::env::var_os("CI").is_some() => panic!("loss test cannot run on CI: {why}"),
        Err(why) => {
            eprintln!("skipped: {why}");
            None
        }
    }
}

#[test]
fn fec_recovers_video_over_a_lossy_link() {
    let Some(out) = moonlight_over(RANDOM, "random", "", &test_pattern(), &[], &[]) else { return };
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
    // The client's reports of the blocks that needed parity, counted per session.
    let session = &out["live_status"]["sessions"][0];
    eprintln!("figures: the client reported {} blocks repaired by FEC, {} lost", session["blocks_repaired"], session["blocks_lost"]);
    assert!(n(&session["blocks_repaired"]) > 0, "repaired blocks are counted: {session}");
    assert!(dropped >= 10, "the link dropped too little to tell: {host}");
    assert!(
        (gaps as f64) < dropped_data / 2.0,
        "{gaps} frames lost for ≈{dropped_data:.0} dropped data datagrams: FEC did not recover them"
    );
}

/// A stock Moonlight client (moonlight-python) streaming `app` (1280x720@60, 10 Mbit/s, 300
/// decoded frames) from a host configured with `host_toml` too, through a link that drops
/// what `model` picks of the host's video datagrams: the client's report, the host's status
/// in it (`None`: skipped, this machine lacks what the test needs). The client's own
/// arguments after its mode, and its environment, are `client_args` and `client_env`.
fn moonlight_over(
    model: &str,
    label: &str,
    host_toml: &str,
    app: &[String],
    client_args: &[&str],
    client_env: &[(&str, &str)],
) -> Option<serde_json::Value> {
    let (python, sudo) = requirements_or_skip()?;
    let name = format!("pf-loss-{label}-{}", std::process::id());
    let ns = Netns::create(&name, sudo, PORT + 9, model);
    let dir = std::env::temp_dir().join(&name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let wrapper = ns.exec(&[]);
    let host = format!("start_pipewire = false\n{host_toml}");
    let daemon = common::start_daemon_configured(&wrapper, &dir, PORT, API_PORT, &host, app, "");
    let output = Command::new(wrapper[0])
        .args(&wrapper[1..])
        .arg(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/moonlight_client.py"))
        .args([PORT.to_string(), API_PORT.to_string(), dir.join("client").display().to_string(), "Input Test".into(), "loss".into()])
        .args(client_args)
        .envs(client_env.iter().copied())
        .env("XDG_STATE_HOME", dir.join("state"))
        .output()
        .expect("running the Moonlight client");
    let out = client_report(&output, &dir);
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
    Some(out)
}

/// The test pattern, in a colour of its own.
fn test_pattern() -> Vec<String> {
    vec![target_dir().join("punktfunk-test-pattern").display().to_string(), "--color".into(), "3080ff".into()]
}

/// 10 % of the host's video datagrams dropped at random and the parity held at 20 %, so that
/// about one frame in ten is lost beyond FEC. A client whose decoder takes reference frame
/// invalidation reports each loss and the host repairs it with a P-frame from a picture the
/// client still holds; against the same link with a client that asks for key frames, in the
/// same run. The test pattern moves (`--moving`: bars that scroll a bar a frame, noise that
/// makes frames as large as the bitrate allows), and every stamped picture either client
/// decoded is checked to show its own frame's bars: a repair that referred to a picture the
/// client lacks would leave the pictures after it showing other frames' bars.
#[test]
fn a_frame_lost_beyond_fec_is_repaired_from_a_picture_the_client_holds() {
    let app: Vec<String> = test_pattern().into_iter().chain(["--moving".into()]).collect();
    let mut runs = Vec::new();
    for (label, env) in [("keyframes", &[][..]), ("invalidation", &[("PUNKTFUNK_TEST_RFI", "1")][..])] {
        let link = "numgen random mod 100 '<' 10";
        let Some(out) = moonlight_over(link, label, "fec_max_percent = 20\n", &app, &["moving"], env) else { return };
        let (host, session) = (out["status"]["last_video"].clone(), out["live_status"]["sessions"][0].clone());
        let n = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"));
        let mut freezes: Vec<f64> = out["freezes_ms"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        freezes.sort_by(f64::total_cmp);
        let per = |bytes: u64, count: u64| bytes.checked_div(count).unwrap_or(0);
        common::figure(&format!(
            "repair after a loss beyond FEC, Moonlight at 10 % loss, 20 % parity, {label}: {} frames decoded, {} numbers skipped, {} freezes p50 {:.1} ms longest {:.1} ms; host sent {} key frames ({} B each on average) and {} repairs ({} B each), {} reports of lost frames; {} pictures checked, {} showed the bars of the picture before",
            out["frames"],
            out["frame_gaps"],
            freezes.len(),
            freezes.get(freezes.len() / 2).copied().unwrap_or(0.0),
            freezes.last().copied().unwrap_or(0.0),
            n(&host, "keyframes"),
            per(n(&host, "keyframe_bytes"), n(&host, "keyframes")),
            n(&host, "repairs"),
            per(n(&host, "repair_bytes"), n(&host, "repairs")),
            n(&session, "frames_invalidated"),
            out["pictures_checked"],
            out["pictures_wrong"].as_array().map_or(0, Vec::len),
        ));
        assert_eq!(out["frames"], 300, "the stream went on: {out}");
        assert!(n(&out, "pictures_checked") >= 200, "the pictures were read: {out}");
        // An encoder short of bits (after a key frame or a repair, the noise takes the rest)
        // may leave the bars of one picture where the last one had them: one picture, mended
        // by the next. A repair from a picture the client lacks would leave every picture
        // after it wrong, the error carried along with the bars until the next key frame.
        assert!(n(&out, "longest_wrong_run") <= 2, "{label}: pictures decoded from the wrong reference: {out}");
        assert!(n(&out, "frame_gaps") > 0, "{label}: the link lost frames beyond FEC, as it must for the test: {out}");
        runs.push((host, session));
    }
    let n = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap();
    let ((keyed, keyed_session), (repaired, session)) = (&runs[0], &runs[1]);
    // Without invalidation each loss costs a key frame; with it, a P-frame.
    assert_eq!(n(keyed, "repairs"), 0, "{keyed}");
    assert_eq!(n(keyed_session, "frames_invalidated"), 0, "{keyed_session}");
    assert!(n(session, "frames_invalidated") > 0, "the client reported its losses: {session}");
    assert!(n(repaired, "repairs") >= 3, "losses were repaired from older pictures: {repaired}");
    assert!(
        n(repaired, "keyframes") * 2 < n(keyed, "keyframes"),
        "repairs took the place of key frames: {} against {}",
        n(repaired, "keyframes"),
        n(keyed, "keyframes")
    );
    // What each costs in bytes is not compared here: the noise fills every frame to the
    // bitrate's cap, key frame or not (a key frame costs picture quality instead). The
    // encoder's own test measures it on a picture that leaves room.
}

/// The same for punktfunk/1: 10 % of the host's data-plane datagrams dropped at random, the
/// parity held at 20 %, the moving test pattern. `punktfunk-client` drops every frame after
/// a loss until its repair and reports the loss by number; the host repairs it with a P-frame
/// from a picture before it. Against a client that asks for key frames (`--no-repairs`) in
/// the same run; both check every stamped picture's bars (a repair that referred to a picture
/// the client lacks would show other frames' bars until the next key frame).
#[test]
fn punktfunk1_repairs_a_frame_lost_beyond_fec_from_a_picture_the_client_holds() {
    let app: Vec<String> = test_pattern().into_iter().chain(["--moving".into()]).collect();
    let mut runs = Vec::new();
    for (label, args) in [("keyframes", &["--check-bars", "--no-repairs"][..]), ("repairs", &["--check-bars"][..])] {
        let link = "numgen random mod 100 '<' 10";
        let Some((stats, status)) = native_streaming(link, &format!("repair-{label}"), "fec_max_percent = 20\n", &app, 10_000, args) else {
            return;
        };
        let n = |k: &str| stats[k].as_u64().unwrap_or_else(|| panic!("{k} in {stats}"));
        let bars = &stats["bars"];
        let (keyframes, repairs) = (said_after(&status, "frames, "), said_after(&status, "key frames, "));
        let recovery = &stats["recovery"];
        common::figure(&format!(
            "repair after a loss beyond FEC, punktfunk/1 at 10 % loss, 20 % parity, {label}: {} frames decoded, {} lost, {} dropped waiting; waits (noticed → next picture) {} p50 {:.1} ms p99 {:.1} ms; host sent {keyframes} key frames and {repairs} repairs; asked {} key frames, {} repairs; {} pictures checked, {} wrong, longest run {}",
            n("frames_decoded"),
            n("frames_lost"),
            n("frames_dropped"),
            recovery["n"],
            recovery["p50_us"].as_f64().unwrap_or(0.0) / 1000.0,
            recovery["p99_us"].as_f64().unwrap_or(0.0) / 1000.0,
            n("keyframe_requests"),
            n("repair_requests"),
            bars["checked"],
            bars["wrong"],
            bars["longest_wrong_run"],
        ));
        assert!(bars["checked"].as_u64() >= Some(200), "the pictures were read: {stats}");
        // An encoder short of bits (after a key frame most, the noise taking the rest) may
        // leave the bars where the last picture had them for a few pictures (up to 6 seen);
        // a picture decoded from a missing reference leaves every picture
        // after it wrong until the next key frame, which comes rarely with repairs (78 in a
        // row when the host flagged repairs without invalidating).
        assert!(bars["longest_wrong_run"].as_u64() <= Some(8), "{label}: pictures decoded from the wrong reference: {stats}");
        assert!(n("frames_lost") > 0, "{label}: the link lost frames beyond FEC, as it must for the test: {stats}");
        runs.push((keyframes, repairs, stats));
    }
    let ((keyed_keyframes, keyed_repairs, keyed), (keyframes, repairs, repaired)) = (&runs[0], &runs[1]);
    assert_eq!((*keyed_repairs, keyed["repair_requests"].as_u64()), (0, Some(0)), "a client that asks for key frames gets them");
    assert!(repaired["repair_requests"].as_u64() > Some(0), "the client reported its losses: {repaired}");
    assert!(*repairs >= 3 && repaired["repairs"].as_u64() >= Some(3), "losses were repaired from older pictures: {repaired}");
    assert!(keyframes * 2 < *keyed_keyframes, "repairs took the place of key frames: {keyframes} against {keyed_keyframes}");
}

/// The same link for punktfunk/1: 5 % of the host's data-plane datagrams dropped at random;
/// GF(2^16) FEC rebuilds the frames they belonged to.
#[test]
fn fec_recovers_punktfunk1_video_over_a_lossy_link() {
    let Some((stats, _)) = native_over(RANDOM, "random", "") else { return };
    let n = |k: &str| stats[k].as_u64().unwrap();
    // ~45 of ~900 datagrams drop, but most of this pattern's frames are 1 data + 2 parity
    // shards: only a third of the drops hit data (8–16 frames rebuilt in runs here).
    assert!(n("frames_recovered") >= 3, "too few frames needed FEC to tell: {stats}");
    // A frame is lost only when more datagrams of one block drop than it has parity: rare
    // at 5 % (all three of a 1 + 2 frame: 1 in 8000, so one loss in 300 frames about one run
    // in thirty), and the client then asks for a key frame. Without FEC every dropped data
    // datagram would lose its frame (≈15 here).
    assert!(n("frames_lost") <= 2 && n("frames_lost") * 5 <= n("frames_recovered"), "FEC did not recover: {stats}");
}

/// punktfunk/1 through bursts: 3 datagrams in a row lost every 60. A burst is rebuilt when
/// the blocks it hits have that much parity. At a fixed parity, frames of 11 data shards and
/// more have it (20 %), but a small frame (1 data + 2 parity shards, most of this test
/// pattern's) that a burst covers whole is lost: the client asks for a key frame and the
/// stream goes on, no burst costing more than that one frame. With the parity following the
/// link, the client reports its longest burst (3) and every block gets 3 parity shards
/// within a second: after that, small frames outlive the bursts too. Which frames a burst
/// meets depends on where the drop counter stands (audio and pings count too), so the counts
/// vary from run to run; both runs go in one test so they meet the same machine.
#[test]
fn fec_recovers_punktfunk1_video_through_burst_loss() {
    let Some((fixed, fixed_host)) = native_over(BURSTS, "bursts-fixed", "fec_max_percent = 20\n") else { return };
    let Some((adaptive, adaptive_host)) = native_over(BURSTS, "bursts-adaptive", "") else { return };
    let n = |stats: &serde_json::Value, k: &str| stats[k].as_u64().unwrap();
    assert_eq!(said_after(&fixed_host, "at least "), 2, "a fixed parity stays as configured");
    // 3, or more where the host's own socket dropped a datagram next to a burst: the
    // adaptive run's client saw the bursts too.
    assert!(said_after(&adaptive_host, "at least ") >= 3, "every block got the burst's length in parity");
    // The link dropped what it should. Not asked of the adaptive run: with 3 parity shards a
    // small frame is 4 datagrams, the bursts come every 60 (15 such frames), so a run whose
    // bursts start on parity keeps hitting parity and rebuilds few frames (2 in one CI run).
    assert!(n(&fixed, "frames_recovered") >= 5, "too few frames needed FEC to tell: {fixed}");
    for stats in [&fixed, &adaptive] {
        let bursts = n(stats, "datagrams").div_ceil(60) + 1;
        assert!(n(stats, "frames_lost") <= bursts, "a burst cost more than one frame: {stats}");
        let asked = n(stats, "keyframe_requests") + n(stats, "repair_requests");
        assert!(asked >= n(stats, "frames_lost"), "every loss asks for a repair: {stats}");
    }
    common::figure(&format!(
        "bursts of 3 in 60 datagrams, punktfunk/1 720p60 test pattern, 300 frames: frames lost at fixed 20 % parity {} ({} rebuilt), following the bursts {} ({} rebuilt)",
        n(&fixed, "frames_lost"),
        n(&fixed, "frames_recovered"),
        n(&adaptive, "frames_lost"),
        n(&adaptive, "frames_recovered")
    ));
}

/// 300 frames of 720p60 punktfunk/1 through a link that drops what `model` picks, from a host
/// configured with `host_toml` too; the client's figures and the host's (`None`: skipped,
/// this machine lacks what the test needs).
fn native_over(model: &str, label: &str, host_toml: &str) -> Option<(serde_json::Value, String)> {
    native_streaming(model, label, host_toml, &test_pattern(), 20_000, &[])
}

/// [`native_over`] with `app` at `bitrate_kbps`, and the client's own `client_args`.
fn native_streaming(
    model: &str,
    label: &str,
    host_toml: &str,
    app: &[String],
    bitrate_kbps: u32,
    client_args: &[&str],
) -> Option<(serde_json::Value, String)> {
    let (_, sudo) = requirements_or_skip()?;
    let name = format!("pf-loss-native-{label}-{}", std::process::id());
    // `common` puts punktfunk/1 at port + 50, its data plane one above.
    let native = PORT + 50;
    let ns = Netns::create(&name, sudo, native + 1, model);
    let dir = std::env::temp_dir().join(&name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // One datagram per send: the drop rule then takes single datagrams, as a lossy link
    // does, not whole GSO batches (the daemon's compositor inherits this).
    let wrapper = ns.exec(&["env", "PUNKTFUNK_NO_GSO=1"]);
    let host = format!("start_pipewire = false\n{host_toml}");
    let daemon = common::start_daemon_configured(&wrapper, &dir, PORT, API_PORT, &host, app, "");
    let config = dir.join("client");
    let (c, h) = pair_native(&wrapper, &dir, &config, native, "4321", "4321");
    assert!(c.status.success() && h.status.success(), "pairing: {}\n{}", output_text(&c), output_text(&h));
    let bitrate = bitrate_kbps.to_string();
    let mut args = vec!["--app", "Input Test", "--mode", "1280x720@60", "--bitrate-kbps", &bitrate, "--frames", "300", "--stop"];
    args.extend_from_slice(client_args);
    let stats = stream_native(&wrapper, &dir, &config, native, &args, &dir.join("frames"));
    eprintln!("figures: punktfunk/1 through {label} loss — {stats}");
    assert!(stats["frames_decoded"].as_u64().unwrap() >= 300, "the stream stalled: {stats}");
    let host = last_stream_status(&wrapper, &dir);
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
    Some((stats, host))
}

/// `punktfunk status` once it tells of the last stream (the stream reports its figures as it
/// ends, after the client left).
fn last_stream_status(wrapper: &[&str], dir: &Path) -> String {
    let since = std::time::Instant::now();
    loop {
        let status = output_text(&common::host_cli(wrapper, dir).arg("status").output().unwrap());
        if status.contains("FEC parity at the end") || since.elapsed() > Duration::from_secs(15) {
            return status;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A number `punktfunk status` says right after `before`.
fn said_after(status: &str, before: &str) -> u64 {
    status
        .split(before)
        .nth(1)
        .and_then(|r| r.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("the host says {before:?}: {status}"))
}

/// The typed character that does not appear: a still screen (the test pattern stops drawing
/// after 15 frames, then shows each key press once) whose one change is lost on the link. A
/// stock Moonlight client presses a key while every video datagram is dropped, then the link
/// is clean again. With the host's floor (`min_fps`, 10 by default) the still picture keeps
/// coming, the client sees the gap, asks for a key frame and shows the change; without it
/// (`min_fps = 0`) nothing more is sent and the client keeps the old picture. How long the
/// repair took is printed (timing is not asserted).
#[test]
fn a_lost_change_to_a_still_screen_is_repaired() {
    let Some((python, sudo)) = requirements_or_skip() else { return };
    for (label, host) in [("floor", ""), ("no floor", "min_fps = 0\n")] {
        let name = format!("pf-still-{}-{}", label.replace(' ', "-"), std::process::id());
        let ns = Netns::lossless(&name, sudo.clone());
        let dir = std::env::temp_dir().join(&name);
        let _ = std::fs::remove_dir_all(&dir);
        let signals = dir.join("signals");
        std::fs::create_dir_all(&signals).unwrap();
        let app = vec![
            target_dir().join("punktfunk-test-pattern").display().to_string(),
            "--color".into(),
            "3080ff".into(),
            "--still-after".into(),
            "15".into(),
        ];
        let wrapper = ns.exec(&[]);
        let host = format!("start_pipewire = false\n{host}");
        let _daemon = common::start_daemon_configured(&wrapper, &dir, PORT, API_PORT, &host, &app, "");
        let client = Command::new(wrapper[0])
            .args(&wrapper[1..])
            .arg(&python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/moonlight_client.py"))
            .args([PORT.to_string(), API_PORT.to_string(), dir.join("client").display().to_string(), "Input Test".into(), "driven".into()])
            .arg(&signals)
            .env("XDG_STATE_HOME", dir.join("state"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("running the Moonlight client");
        // Streaming: the app's 15 frames came, the screen is still.
        common::mark(&signals, "still");
        std::thread::sleep(Duration::from_secs(2));
        ns.drop_all_from(PORT + 9, true);
        std::fs::write(signals.join("type"), "\n").unwrap();
        while signals.join("type").exists() {
            std::thread::sleep(Duration::from_millis(20));
        }
        // The change is drawn, encoded and sent into the drop.
        std::thread::sleep(Duration::from_millis(500));
        ns.drop_all_from(PORT + 9, false);
        // The client's clock (CLOCK_MONOTONIC, its `time.monotonic()`).
        let clean =
            nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).map(|t| t.tv_sec() as f64 + t.tv_nsec() as f64 * 1e-9).unwrap();
        std::thread::sleep(Duration::from_secs(3));
        std::fs::write(signals.join("stop"), "").unwrap();
        let out = client_report(&client.wait_with_output().unwrap(), &dir);
        // The band's complement, #cf7f00, once the press is shown.
        let changed = |c: &serde_json::Value| c[1][0].as_f64().unwrap_or(0.0) > 150.0 && c[1][2].as_f64().unwrap_or(255.0) < 100.0;
        let shown = out["colour_changes"].as_array().unwrap().iter().find(|c| changed(c)).map(|c| c[0].as_f64().unwrap() - clean);
        common::figure(&format!(
            "a still screen's lost change, Moonlight, {label}: shown {} after the link was clean again",
            shown.map_or("never".into(), |s| format!("{:.0} ms", s * 1000.0))
        ));
        match label {
            "floor" => assert!(shown.is_some(), "the floor repaired the lost change: {out}"),
            _ => assert!(shown.is_none(), "without the floor nothing repairs it: {out}"),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// 10 % of the host's video datagrams dropped at random, with a moving GL app (larger frames
/// than the test pattern's, where the percentage decides): the parity the host sends
/// follows the loss Moonlight reports (its FEC status messages) and the key frames that
/// unrecoverable frames cost fall, against the same link at a fixed 20 % in the same run.
#[test]
fn parity_follows_the_loss_the_client_reports() {
    let mut runs = Vec::new();
    for (label, host) in [("fixed", "fec_max_percent = 20\n"), ("adaptive", "")] {
        let Some(out) = moonlight_over("numgen random mod 100 '<' 10", label, host, &["weston-simple-egl".into()], &[], &[]) else {
            return;
        };
        let host = out["status"]["last_video"].clone();
        eprintln!(
            "figures: 10 % loss, {label} parity — {} frames decoded, {} numbers skipped; host: {} frames, {} key frames, {} datagrams ({} data), parity at the end {} %",
            out["frames"],
            out["frame_gaps"],
            host["frames"],
            host["keyframes"],
            host["datagrams"],
            host["data_datagrams"],
            host["fec_percent"]
        );
        assert_eq!(out["frames"], 300, "the stream stalled: {out}");
        // Each unrecoverable loss froze the picture until a key frame decoded: how long.
        let mut freezes: Vec<f64> = out["freezes_ms"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        freezes.sort_by(f64::total_cmp);
        common::figure(&format!(
            "recovery (ms) Moonlight at 10 % loss, {label} parity: {} freezes (a lost frame → the next decoded one), p50 {}, longest {}",
            freezes.len(),
            freezes.get(freezes.len() / 2).copied().unwrap_or(0.0),
            freezes.last().copied().unwrap_or(0.0)
        ));
        assert!(out["frame_gaps"] == 0 || !freezes.is_empty(), "every gap is a freeze: {out}");
        // The stream's figures as it ran, read as the 300th frame was decoded (once the
        // client stops reporting, the loss estimate and the parity fall).
        runs.push((host, out["live_status"]["sessions"][0]["live"]["stats"].clone()));
    }
    let n = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap();
    let ((fixed, fixed_live), (adaptive, live)) = (&runs[0], &runs[1]);
    assert_eq!(n(fixed_live, "fec_percent"), 20, "fixed stays fixed: {fixed_live}");
    assert_eq!(fixed_live["parity_why"], "fixed", "{fixed_live}");
    // The parity sent: the percentage, or the least parity every block got where blocks
    // lost several datagrams at once (at 10 % random loss, many do).
    let share = |v: &serde_json::Value| n(v, "datagrams") as f64 / n(v, "data_datagrams").max(1) as f64 - 1.0;
    assert!(share(live) >= 0.3, "10 % loss raised the parity: {live}");
    // The host says why, and what loss it saw (the link drops 10 % of the video datagrams;
    // Moonlight reports what frames that needed FEC missed).
    assert!(matches!(live["parity_why"].as_str(), Some("loss" | "unrecoverable" | "cleared")), "{live}");
    assert!((40..=200).contains(&n(live, "loss_permille")), "loss seen: {live}");
    assert!(
        n(adaptive, "keyframes") < n(fixed, "keyframes"),
        "more parity, fewer frames lost and key frames sent: adaptive {adaptive}, fixed {fixed}"
    );
}

/// punktfunk/1 at 10 % random loss with a moving GL app: the host's parity follows the loss
/// the client counts (gaps in the datagram sequence, reported each second), against the
/// same link at a fixed 20 % in the same run.
#[test]
fn punktfunk1_parity_follows_the_loss_the_client_counts() {
    let mut runs = Vec::new();
    for (label, host) in [("fixed", "fec_max_percent = 20\n"), ("adaptive", "")] {
        let model = "numgen random mod 100 '<' 10";
        let Some((stats, status)) = native_streaming(model, &format!("adaptive-{label}"), host, &["weston-simple-egl".into()], 10_000, &[])
        else {
            return;
        };
        let parity = said_after(&status, "FEC parity at the end ");
        let fixed = status.contains("fixed as configured");
        assert_eq!(fixed, label == "fixed", "the host says why: {status}");
        assert!(!status.contains("where streams start"), "the parity moved from its start: {status}");
        eprintln!(
            "figures: punktfunk/1 at 10 % loss, {label} parity — {} frames decoded, {} lost, {} rebuilt by FEC, {} repairs and {} key frames asked for; parity at the end {parity} %",
            stats["frames_decoded"], stats["frames_lost"], stats["frames_recovered"], stats["repair_requests"], stats["keyframe_requests"]
        );
        let recovery = &stats["recovery"];
        common::figure(&format!(
            "recovery (µs) punktfunk/1 at 10 % loss, {label} parity: {} losses (noticed → the next picture decoded, a repair or a key frame), p50 {}, p99 {}",
            recovery["n"], recovery["p50_us"], recovery["p99_us"]
        ));
        let lost = stats["frames_lost"].as_u64().unwrap();
        assert!(lost < 2 || recovery["n"].as_u64() >= Some(1), "losses before the end recover: {stats}");
        runs.push((parity, lost));
    }
    let ((fixed_parity, fixed_lost), (parity, lost)) = (runs[0], runs[1]);
    assert_eq!(fixed_parity, 20);
    assert!(parity >= 30, "10 % loss raised the parity: {parity} %");
    assert!(lost < fixed_lost, "more parity, fewer frames lost: {lost} against {fixed_lost}");
}

/// The latency probe through a link with delay: `punktfunk-client` streams the test pattern
/// over punktfunk/1 through a loopback `tc netem` holds 20 ms each way, and again with no
/// delay, in the same run. The probe reads each picture's draw stamp through the clock
/// offset its pings measure across the delayed link: on one machine the true offset is 0,
/// so the estimate must be within its own bound (half the best ping's round trip), and the
/// pings must have crossed the delay. The figures (printed, not asserted: timing) show the
/// delay in the probe's latencies.
#[test]
#[ignore = "needs sch_netem (.ci/drm-vm)"]
fn the_latency_probe_reads_through_a_delayed_link() {
    let sudo = if nix::unistd::geteuid().is_root() { vec![] } else { vec!["sudo", "-n", "-E"] };
    const DELAY_MS: u32 = 20;
    let native = PORT + 50;
    for delay_ms in [0, DELAY_MS] {
        let name = format!("pf-delay-{delay_ms}-{}", std::process::id());
        let ns = Netns::delayed(&name, sudo.clone(), &format!("delay {delay_ms}ms"));
        let dir = std::env::temp_dir().join(&name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let app = vec![target_dir().join("punktfunk-test-pattern").display().to_string()];
        let wrapper = ns.exec(&[]);
        let host = "start_pipewire = false\nrenderer = \"pixman\"\n";
        let _daemon = common::start_daemon_configured(&wrapper, &dir, PORT, API_PORT, host, &app, "");
        let config = dir.join("client");
        let (c, h) = pair_native(&wrapper, &dir, &config, native, "4321", "4321");
        assert!(c.status.success() && h.status.success(), "pairing: {}\n{}", output_text(&c), output_text(&h));
        let args = ["--app", "Input Test", "--mode", "640x360@30", "--bitrate-kbps", "4000", "--frames", "120", "--stop"];
        let stats = stream_native(&wrapper, &dir, &config, native, &args, &dir.join("frames"));
        let probe = &stats["probe"];
        let at = |what: &str, k: &str| probe[what][k].as_i64().unwrap_or_else(|| panic!("the probe's {what}.{k}: {stats}"));
        let (offset, rtt) = (stats["clock_offset_us"].as_i64().unwrap(), stats["clock_rtt_us"].as_i64().unwrap());
        common::figure(&format!(
            "latency (µs) punktfunk/1 640x360@30 through {delay_ms} ms each way, from the app's draw after 30 pictures (n, p50, p99): → first datagram ({}, {}, {}), → decoded ({}, {}, {}); clocks' offset {offset} ± {rtt}/2",
            at("steady_draw_to_first_datagram", "n"),
            at("steady_draw_to_first_datagram", "p50_us"),
            at("steady_draw_to_first_datagram", "p99_us"),
            at("steady_draw_to_decoded", "n"),
            at("steady_draw_to_decoded", "p50_us"),
            at("steady_draw_to_decoded", "p99_us"),
        ));
        // The first pictures are the desktop before the app's window (no stamp): in the
        // emulated machine that can be most of the stream's start.
        assert!(at("steady_draw_to_decoded", "n") >= 10, "the stamps decode: {stats}");
        assert!(rtt >= 2_000 * i64::from(delay_ms), "the pings crossed the delayed link: {stats}");
        assert!(offset.abs() <= rtt / 2 + 1, "one machine's clocks agree within the estimate's bound: {stats}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A link that delays every datagram 10 ms ± 5 ms (uniform jitter, so datagrams overtake each
/// other: netem reorders what jitter reorders) and sends a quarter of them at once, ahead of
/// the rest: punktfunk/1's receiver puts each frame together from its datagrams in whatever
/// order they come (it holds several frames open), so nothing is lost and the client asks
/// for no key frame beyond the first. Reordered datagrams are not losses: the parity stays at
/// its floor.
#[test]
#[ignore = "needs sch_netem (.ci/drm-vm)"]
fn punktfunk1_video_goes_on_through_jitter_and_reordering() {
    const NETEM: &str = "delay 10ms 5ms reorder 25% 25%";
    let sudo = if nix::unistd::geteuid().is_root() { vec![] } else { vec!["sudo", "-n", "-E"] };
    let name = format!("pf-jitter-{}", std::process::id());
    let ns = Netns::delayed(&name, sudo, NETEM);
    let dir = std::env::temp_dir().join(&name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let native = PORT + 50;
    // One datagram per send, so that datagrams of one frame can overtake each other.
    let wrapper = ns.exec(&["env", "PUNKTFUNK_NO_GSO=1"]);
    let host = "start_pipewire = false\nrenderer = \"pixman\"\n";
    let daemon = common::start_daemon_configured(&wrapper, &dir, PORT, API_PORT, host, &test_pattern(), "");
    let config = dir.join("client");
    let (c, h) = pair_native(&wrapper, &dir, &config, native, "4321", "4321");
    assert!(c.status.success() && h.status.success(), "pairing: {}\n{}", output_text(&c), output_text(&h));
    let args = ["--app", "Input Test", "--mode", "640x360@30", "--bitrate-kbps", "8000", "--frames", "150", "--stop"];
    let stats = stream_native(&wrapper, &dir, &config, native, &args, &dir.join("frames"));
    let host = last_stream_status(&wrapper, &dir);
    drop(daemon);
    let n = |k: &str| stats[k].as_u64().unwrap_or_else(|| panic!("{k}: {stats}"));
    common::figure(&format!(
        "punktfunk/1 640x360@30 through netem {NETEM}: {} frames decoded, {} lost, {} key frames asked for, {} datagrams",
        n("frames_decoded"),
        n("frames_lost"),
        n("keyframe_requests"),
        n("datagrams")
    ));
    assert!(n("frames_decoded") >= 150, "the stream stalled: {stats}");
    assert_eq!(n("frames_lost"), 0, "reordered datagrams lost frames: {stats}");
    assert!(n("keyframe_requests") <= 1, "key frames asked for beyond the first: {stats}");
    assert_eq!(said_after(&host, "FEC parity at the end "), 20, "the parity came down to its floor: {host}");
    assert_eq!(said_after(&host, "at least "), 2, "no burst was seen: {host}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The loss matrix: random loss and bursts (3 datagrams in a row) at 1, 5, 10 and 20 % of the
/// host's video datagrams, a moving GL app at 1280x720@60, 10 Mbit/s, 300 decoded frames,
/// for a stock Moonlight client and for `punktfunk-client`, parity fixed at 20 % against
/// following the link, each cell its own stream. Prints one line per cell for BENCHMARKS.md:
/// `PUNKTFUNK_MOONLIGHT_PYTHON=… cargo test -p punktfunk-session --test loss loss_matrix --
/// --ignored --nocapture`; `PUNKTFUNK_LOSS_CELLS="5 % bursts"` measures only the cells whose
/// name contains it.
#[test]
#[ignore = "a measurement (about ten minutes); run by hand"]
fn loss_matrix() {
    let app = ["weston-simple-egl".to_owned()];
    let mut rows = Vec::new();
    for percent in [1u32, 5, 10, 20] {
        let random = format!("numgen random mod 100 '<' {percent}");
        let bursts = format!("numgen inc mod {} '<' 3", 300 / percent);
        for (kind, model) in [("random", random), ("bursts of 3", bursts)] {
            if !format!("{percent} % {kind}").contains(&std::env::var("PUNKTFUNK_LOSS_CELLS").unwrap_or_default()) {
                continue;
            }
            for (parity, host) in [("fixed 20 %", "fec_max_percent = 20\n"), ("adaptive", "")] {
                let label = format!("matrix-{percent}-{}-{}", kind.len(), host.len());
                let Some(out) = moonlight_over(&model, &label, host, &app, &[], &[]) else { return };
                let (h, live) = (&out["status"]["last_video"], &out["live_status"]["sessions"][0]["live"]["stats"]);
                rows.push(format!(
                    "| {percent} % {kind} | Moonlight | {parity} | {} / {} | {} | {} | {} % |",
                    out["frames"], h["frames"], out["frame_gaps"], h["keyframes"], live["fec_percent"]
                ));
                let Some((stats, status)) = native_streaming(&model, &label, host, &app, 10_000, &[]) else { return };
                rows.push(format!(
                    "| {percent} % {kind} | punktfunk/1 | {parity} | {} / {} | {} | {} (+{} repairs) | {} % |",
                    stats["frames_decoded"],
                    stats["frames_decoded"].as_u64().unwrap_or(0) + stats["frames_lost"].as_u64().unwrap_or(0),
                    stats["frames_lost"],
                    stats["keyframe_requests"],
                    stats["repairs"],
                    said_after(&status, "FEC parity at the end ")
                ));
                eprintln!("{}\n{}", rows[rows.len() - 2], rows[rows.len() - 1]);
            }
        }
    }
    eprintln!("| loss | client | parity | frames decoded / sent | frames lost | key frames | parity at the end |");
    eprintln!("|---|---|---|---|---|---|---|");
    for row in rows {
        eprintln!("{row}");
    }
}
