//! Remote login: with `login = true` a stock Moonlight client's stream starts at the login
//! greeter (a real greetd 0.9 and PAM, one greetd per stream). A user that exists only for
//! this test types a wrong password (PAM says no, the greeter asks again), then the right
//! one: the app runs as that user, in the same stream, the client never reconnecting and its
//! frame numbers only rising. A second client logs in a second user beside it. When the
//! first app exits (a logout) its greeter comes back, still in the same stream; the second
//! stream's greetd dies and only that stream ends (its client is told), the host serving on;
//! quitting the first ends its greetd and everything under it. No password reaches the
//! host's log.
//!
//! Needs root (greetd, adding a user), greetd, and the Python environment `.ci/run` builds
//! (`PUNKTFUNK_MOONLIGHT_PYTHON`); says why and passes without them outside CI.

mod common;
#[path = "../../streamer/tests/support/pipewire.rs"]
mod tones;

use common::{api_status, client_report, mark, python, start_daemon_configured, target_dir};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PORT: u16 = 28489;
const API_PORT: u16 = 28491;

/// A user of this test, removed again whatever happens (with anything left running as it).
struct User(String);

impl User {
    fn add(name: &str, password: &str) -> (Self, u32) {
        assert!(Command::new("useradd").args(["--no-create-home", "--shell", "/bin/sh", name]).status().unwrap().success());
        let user = User(name.to_owned());
        let mut chpasswd = Command::new("chpasswd").stdin(Stdio::piped()).spawn().unwrap();
        std::io::Write::write_all(chpasswd.stdin.as_mut().unwrap(), format!("{name}:{password}\n").as_bytes()).unwrap();
        assert!(chpasswd.wait().unwrap().success());
        let uid = nix::unistd::User::from_name(name).unwrap().unwrap().uid.as_raw();
        (user, uid)
    }
}

impl Drop for User {
    fn drop(&mut self) {
        let _ = Command::new("pkill").args(["-KILL", "-u", &self.0]).status();
        let _ = Command::new("userdel").arg(&self.0).status();
    }
}

fn daemon_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default()
}

/// Waits until the daemon's log (greetd's and the greeter's lines are in it) says `want`
/// for the `nth` time.
fn log_says(dir: &Path, want: &str, nth: usize) {
    let since = Instant::now();
    while daemon_log(dir).matches(want).count() < nth {
        assert!(since.elapsed() < Duration::from_secs(60), "the log never said {want:?} ({nth}×):\n{}", daemon_log(dir));
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the host's status says the `nth` stream's login stage is `want`; its id.
fn stage_is(dir: &Path, nth: usize, want: &str) -> u64 {
    let since = Instant::now();
    loop {
        let status = api_status(dir, API_PORT);
        if status["sessions"][nth]["login"] == want {
            return status["sessions"][nth]["id"].as_u64().unwrap();
        }
        assert!(since.elapsed() < Duration::from_secs(60), "the stream never got to {want:?}: {status}\n{}", daemon_log(dir));
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Has the client whose signals are in `dir` type `lines` (each then Enter), and waits
/// until it did.
fn type_lines(dir: &Path, lines: &str) {
    std::fs::write(dir.join("type"), lines).unwrap();
    let since = Instant::now();
    while dir.join("type").exists() {
        assert!(since.elapsed() < Duration::from_secs(30), "the client never typed");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A Moonlight client (its identity and signals in `dir/NAME`) streaming a login stream of
/// the app "Mine": `moonlight_client.py driven`.
fn client(python: &Path, dir: &Path, name: &str) -> std::process::Child {
    let signals = dir.join(name);
    std::fs::create_dir_all(&signals).unwrap();
    Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/moonlight_client.py"))
        .args([&PORT.to_string(), &API_PORT.to_string(), &signals.join("id").display().to_string(), "Mine", "driven"])
        .arg(&signals)
        .env("XDG_STATE_HOME", dir.join("state"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until the file `path` says who wrote it.
fn written_by(path: &Path, dir: &Path) -> u32 {
    let since = Instant::now();
    while std::fs::read_to_string(path).map_or(true, |s| s.trim().is_empty()) {
        assert!(since.elapsed() < Duration::from_secs(30), "the app never ran:\n{}", daemon_log(dir));
        std::thread::sleep(Duration::from_millis(50));
    }
    let said: u32 = std::fs::read_to_string(path).unwrap().trim().parse().unwrap();
    assert_eq!(std::fs::metadata(path).unwrap().uid(), said);
    said
}

#[test]
fn logins_in_the_stream_turn_into_the_users_sessions_and_back() {
    let Some(python) = python() else {
        eprintln!("skipped: PUNKTFUNK_MOONLIGHT_PYTHON is not set");
        return;
    };
    if !nix::unistd::geteuid().is_root() || !Path::new("/usr/sbin/greetd").exists() {
        assert!(std::env::var_os("CI").is_none(), "CI runs as root with greetd installed");
        eprintln!("skipped: needs root and greetd");
        return;
    }
    let dir = std::env::temp_dir().join(format!("pf-login-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // The users' apps leave their marks here.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let tag = std::process::id() % 100_000;
    let (ann, ann_uid) = User::add(&format!("pfann{tag}"), "right-horse-7");
    let (ben, ben_uid) = User::add(&format!("pfben{tag}"), "battery-staple-9");

    // The app says who runs it, plays a 660 Hz tone and shows the test pattern (orange,
    // ff8000) until ended.
    let tone = dir.join("tone.raw");
    tones::tone_file(&tone, &[660.0, 660.0], 2.0);
    std::fs::set_permissions(&tone, std::fs::Permissions::from_mode(0o644)).unwrap();
    let app = format!(
        "id -u > \"{}/who-$(id -u)\"; while pacat --playback --raw --format=float32le --rate=48000 --channels=2 '{}'; do :; done & exec '{}' --color ff8000",
        dir.display(),
        tone.display(),
        target_dir().join("punktfunk-test-pattern").display()
    );
    let app_toml = format!("[[apps]]\ntitle = \"Mine\"\ncommand = {}\n", serde_json::to_string(&["sh", "-c", &app]).unwrap());
    let mut daemon = start_daemon_configured(&[], &dir, PORT, API_PORT, "login = true\nmax_sessions = 2\n", &["true".into()], &app_toml);
    let who = |uid: u32| dir.join(format!("who-{uid}"));

    // Ann's stream: the greeter asks; a wrong password is refused and it asks again.
    let one = client(&python, &dir, "one");
    let signals = dir.join("one");
    log_says(&dir, "prompt \"User name: \"", 1);
    stage_is(&dir, 0, "login greeter");
    mark(&signals, "greeter");
    // The join socket admits only the greeter's user with the greeter's ticket.
    let ann_stream = stage_is(&dir, 0, "login greeter");
    // The daemon says where its login directory is (a fresh one each start).
    let login_dir = daemon_log(&dir)
        .lines()
        .find(|l| l.contains("remote login:"))
        .and_then(|l| l.split(" dir=").nth(1))
        .map(|d| std::path::PathBuf::from(d.trim()))
        .expect("the daemon names its login directory");
    let config = std::fs::read_to_string(login_dir.join(format!("greetd-{ann_stream}.toml"))).unwrap();
    let ticket = config.split("'--ticket' '").nth(1).and_then(|t| t.get(..32)).unwrap();
    for (ticket, who) in [(ticket, "root with the greeter's ticket"), ("00112233445566778899aabbccddeeff", "a made-up ticket")] {
        let mut conn = std::os::unix::net::UnixStream::connect(login_dir.join("join.sock")).unwrap();
        std::io::Write::write_all(&mut conn, format!("{{\"ticket\":\"{ticket}\"}}\n").as_bytes()).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut answer = Vec::new();
        let _ = std::io::Read::read_to_end(&mut conn, &mut answer);
        assert!(answer.is_empty(), "{who} was answered: {}", String::from_utf8_lossy(&answer));
    }
    type_lines(&signals, &ann.0);
    log_says(&dir, "prompt \"Password: \"", 1);
    type_lines(&signals, "wrong-horse");
    log_says(&dir, "[Login incorrect]", 1);
    assert!(!who(ann_uid).exists(), "no session after a wrong password");
    mark(&signals, "refused");
    // The right one: the app runs as Ann, in the same stream.
    type_lines(&signals, &ann.0);
    log_says(&dir, "prompt \"Password: \"", 2);
    type_lines(&signals, "right-horse-7");
    stage_is(&dir, 0, &format!("{}'s session", ann.0));
    assert_eq!(written_by(&who(ann_uid), &dir), ann_uid, "the app runs as {}", ann.0);
    std::thread::sleep(Duration::from_secs(2));
    mark(&signals, "session");

    // Ben logs in beside her, from a second client.
    let two = client(&python, &dir, "two");
    log_says(&dir, "prompt \"User name: \"", 3);
    stage_is(&dir, 1, "login greeter");
    type_lines(&dir.join("two"), &ben.0);
    log_says(&dir, "prompt \"Password: \"", 3);
    type_lines(&dir.join("two"), "battery-staple-9");
    let ben_stream = stage_is(&dir, 1, &format!("{}'s session", ben.0));
    assert_eq!(written_by(&who(ben_uid), &dir), ben_uid, "the second app runs as {}", ben.0);

    // Ann's app ends (a logout): her greeter is back in the same stream.
    assert!(Command::new("pkill").args(["-u", &ann.0, "-f", "punktfunk-test-pattern"]).status().unwrap().success());
    log_says(&dir, "prompt \"User name: \"", 4);
    stage_is(&dir, 0, "login greeter");
    std::thread::sleep(Duration::from_secs(1));
    mark(&signals, "greeter again");

    // Ben's greetd dies: his stream ends, his client is told; Ann's streams on.
    let greetd = |id: u64| format!("{}/greetd-{id}.toml", login_dir.display());
    assert!(Command::new("pkill").args(["-KILL", "-f", &greetd(ben_stream)]).status().unwrap().success());
    let two = client_report(&two.wait_with_output().unwrap(), &dir);
    eprintln!("second client: {two}");
    assert_eq!(two["terminated"], true, "the client of the stream whose greetd died was told it ended");
    let running = |args: &[&str]| Command::new("pgrep").args(args).status().unwrap().success();
    let gone = |what: &[&str]| {
        let since = Instant::now();
        while running(what) {
            assert!(since.elapsed() < Duration::from_secs(15), "{what:?} outlived its stream:\n{}", daemon_log(&dir));
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    gone(&["-u", &ben.0]);
    assert_eq!(api_status(&dir, API_PORT)["sessions"].as_array().map(Vec::len), Some(1), "the host serves on, Ann's stream with it");
    mark(&signals, "after the other ended");

    // Ann quits: greetd and everything under it end.
    std::fs::write(signals.join("stop"), "").unwrap();
    let one = client_report(&one.wait_with_output().unwrap(), &dir);
    eprintln!("first client: {one}");
    let marks = &one["marks"];
    let at = |name: &str| marks[name].as_u64().unwrap_or_else(|| panic!("no mark {name:?}: {one}"));
    assert!(at("refused") > at("greeter") && at("session") > at("refused") + 10, "frames kept coming through the login: {marks}");
    assert!(at("greeter again") > at("session") + 5, "and through the logout: {marks}");
    assert!(at("after the other ended") > at("greeter again"), "and on while the other stream ended: {marks}");
    assert_eq!(one["numbers_rise"], true, "one stream to the client: its frame numbers only rise");
    // The user's app is heard in the stream (a PipeWire started for Ann, who had none).
    let heard: Vec<f64> =
        one["heard"]["session"].as_array().map(|a| a.iter().filter_map(serde_json::Value::as_f64).collect()).unwrap_or_default();
    assert!(heard.iter().filter(|&&hz| (hz - 660.0).abs() <= 20.0).count() >= 5, "Ann's app plays 660 Hz; the client heard {heard:?}");
    assert_eq!(one["terminated"], false, "the client was never disconnected");
    let orange = |b: &serde_json::Value| b[0].as_i64().unwrap_or(0) > 200 && b[2].as_i64().unwrap_or(255) < 80;
    for report in [&one, &two] {
        let bands = report["bands"].as_array().unwrap();
        assert!(!orange(&bands[0]) && bands.iter().any(orange), "the greeter first, then the app's pixels: {bands:?}");
    }
    gone(&["-u", &ann.0]);
    gone(&["-f", &format!("{}/greetd-", login_dir.display())]);
    assert!(daemon.0.try_wait().unwrap().is_none(), "the host runs on");
    let log = daemon_log(&dir);
    for password in ["right-horse", "wrong-horse", "battery-staple"] {
        assert!(!log.contains(password), "a password reached the log");
    }
    // The session's ticket travels in environments, never on a command line (the
    // compositor logs the greeter's) where any local user could read it.
    assert!(log.contains("--pass-env") && !log.contains("PUNKTFUNK_JOIN_TICKET="), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}
