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

use common::{
    api_status, band, client_report, figure, mark, native_client, output_text, pair_native, python, start_daemon_configured, target_dir,
};
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

/// How many times a greeter showed `prompt` ready for typing (not waiting on greetd). Each
/// greeter's lines are in the log, and one prints its prompt again as keys arrive, so a
/// test waits for one more than it saw before its step ([`prompt_after`]).
fn ready_prompts(dir: &Path, prompt: &str) -> usize {
    let shown = format!("prompt \"{prompt}\"");
    daemon_log(dir).lines().filter(|l| l.split_once(&shown).is_some_and(|(_, rest)| !rest.starts_with(" (waiting)"))).count()
}

/// Waits until a greeter shows `prompt` ready for typing more often than `seen` times.
fn prompt_after(dir: &Path, prompt: &str, seen: usize) {
    let since = Instant::now();
    while ready_prompts(dir, prompt) <= seen {
        assert!(since.elapsed() < Duration::from_secs(60), "no greeter asked {prompt:?} again:\n{}", daemon_log(dir));
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the host's status (API on `api_port`) says the `nth` stream's login stage is
/// `want`; its id.
fn stage_is(dir: &Path, api_port: u16, nth: usize, want: &str) -> u64 {
    let since = Instant::now();
    loop {
        let status = api_status(dir, api_port);
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

/// The app "Mine" of a test whose files are in `dir`: it says who runs it (`dir/who-UID`),
/// plays a 660 Hz tone and shows the test pattern (orange, ff8000) until ended.
fn users_app(dir: &Path) -> String {
    let tone = dir.join("tone.raw");
    tones::tone_file(&tone, &[660.0, 660.0], 2.0);
    std::fs::set_permissions(&tone, std::fs::Permissions::from_mode(0o644)).unwrap();
    let app = format!(
        "id -u > \"{}/who-$(id -u)\"; while pacat --playback --raw --format=float32le --rate=48000 --channels=2 '{}'; do :; done & exec '{}' --color ff8000",
        dir.display(),
        tone.display(),
        target_dir().join("punktfunk-test-pattern").display()
    );
    format!("[[apps]]\ntitle = \"Mine\"\ncommand = {}\n", serde_json::to_string(&["sh", "-c", &app]).unwrap())
}

/// A fresh directory for a test's files, which the users' apps may write to.
fn test_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("pf-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

/// Whether this machine can run a login test (root, greetd); outside CI it says why not.
fn can_log_in() -> bool {
    if !nix::unistd::geteuid().is_root() || !Path::new("/usr/sbin/greetd").exists() {
        assert!(std::env::var_os("CI").is_none(), "CI runs as root with greetd installed");
        eprintln!("skipped: needs root and greetd");
        return false;
    }
    true
}

/// The login tests take turns: each runs a host, greetd and users' sessions.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn logins_in_the_stream_turn_into_the_users_sessions_and_back() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(python) = python() else {
        eprintln!("skipped: PUNKTFUNK_MOONLIGHT_PYTHON is not set");
        return;
    };
    if !can_log_in() {
        return;
    }
    let dir = test_dir("login");
    let tag = std::process::id() % 100_000;
    let (ann, ann_uid) = User::add(&format!("pfann{tag}"), "right-horse-7");
    let (ben, ben_uid) = User::add(&format!("pfben{tag}"), "battery-staple-9");

    let app_toml = users_app(&dir);
    let mut daemon = start_daemon_configured(&[], &dir, PORT, API_PORT, "login = true\nmax_sessions = 2\n", &["true".into()], &app_toml);
    let who = |uid: u32| dir.join(format!("who-{uid}"));

    // Ann's stream: the greeter asks; a wrong password is refused and it asks again.
    let one = client(&python, &dir, "one");
    let signals = dir.join("one");
    prompt_after(&dir, "User name: ", 0);
    stage_is(&dir, API_PORT, 0, "login greeter");
    mark(&signals, "greeter");
    // The join socket admits only the greeter's user with the greeter's ticket.
    let ann_stream = stage_is(&dir, API_PORT, 0, "login greeter");
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
    let asked = ready_prompts(&dir, "Password: ");
    type_lines(&signals, &ann.0);
    prompt_after(&dir, "Password: ", asked);
    let named = ready_prompts(&dir, "User name: ");
    type_lines(&signals, "wrong-horse");
    log_says(&dir, "[Login incorrect]", 1);
    prompt_after(&dir, "User name: ", named);
    assert!(!who(ann_uid).exists(), "no session after a wrong password");
    mark(&signals, "refused");
    // The right one: the app runs as Ann, in the same stream.
    let asked = ready_prompts(&dir, "Password: ");
    type_lines(&signals, &ann.0);
    prompt_after(&dir, "Password: ", asked);
    type_lines(&signals, "right-horse-7");
    stage_is(&dir, API_PORT, 0, &format!("{}'s session", ann.0));
    assert_eq!(written_by(&who(ann_uid), &dir), ann_uid, "the app runs as {}", ann.0);
    std::thread::sleep(Duration::from_secs(2));
    mark(&signals, "session");

    // Ben logs in beside her, from a second client.
    let asked = ready_prompts(&dir, "User name: ");
    let two = client(&python, &dir, "two");
    prompt_after(&dir, "User name: ", asked);
    stage_is(&dir, API_PORT, 1, "login greeter");
    let asked = ready_prompts(&dir, "Password: ");
    type_lines(&dir.join("two"), &ben.0);
    prompt_after(&dir, "Password: ", asked);
    type_lines(&dir.join("two"), "battery-staple-9");
    let ben_stream = stage_is(&dir, API_PORT, 1, &format!("{}'s session", ben.0));
    assert_eq!(written_by(&who(ben_uid), &dir), ben_uid, "the second app runs as {}", ben.0);

    // Ann's app ends (a logout): her greeter is back in the same stream.
    let asked = ready_prompts(&dir, "User name: ");
    assert!(Command::new("pkill").args(["-u", &ann.0, "-f", "punktfunk-test-pattern"]).status().unwrap().success());
    prompt_after(&dir, "User name: ", asked);
    stage_is(&dir, API_PORT, 0, "login greeter");
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

/// The newest frame file `punktfunk-client` wrote into `out` that is surely whole (the one
/// before the newest), and how many it wrote.
fn newest_frame(out: &Path) -> Option<(u64, std::path::PathBuf)> {
    let numbers = std::fs::read_dir(out)
        .ok()?
        .flatten()
        .filter_map(|f| f.file_name().to_str()?.strip_prefix("frame-")?.strip_suffix(".ppm")?.parse::<u64>().ok());
    let newest = numbers.max()?.checked_sub(1).filter(|n| *n > 0)?;
    Some((newest, out.join(format!("frame-{newest:05}.ppm"))))
}

/// Waits until the client's newest frame, past frame `after`, shows the app (`orange`) or
/// not; its number.
fn client_shows(out: &Path, dir: &Path, orange: bool, after: u64) -> u64 {
    let since = Instant::now();
    loop {
        if let Some((n, file)) = newest_frame(out).filter(|(n, _)| *n > after) {
            let [r, _, b] = band(&file);
            if (r > 200.0 && b < 80.0) == orange {
                return n;
            }
        }
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "the client never showed {}:\n{}",
            if orange { "the app" } else { "the greeter" },
            daemon_log(dir)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A punktfunk/1 client follows a login stream too: it streams the greeter, types the user
/// name and password (its own encrypted control stream), and goes on receiving the same
/// stream from the user's session (the same keys, each process numbering its datagrams in a
/// range of its own, frame ids rising) and from the greeter again after a logout, never told
/// the stream ended, nothing lost, hearing the user's app.
#[test]
fn punktfunk1_clients_follow_the_login_into_the_session_and_back() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !can_log_in() {
        return;
    }
    const PORT: u16 = 28589;
    const API_PORT: u16 = 28591;
    let dir = test_dir("login-native");
    let tag = std::process::id() % 100_000;
    let (cat, cat_uid) = User::add(&format!("pfcat{tag}"), "cobalt-lamp-3");
    let _daemon = start_daemon_configured(&[], &dir, PORT, API_PORT, "login = true\n", &["true".into()], &users_app(&dir));
    let config = dir.join("client");
    let (paired, typed) = pair_native(&[], &dir, &config, PORT + 50, "2468", "2468");
    assert!(paired.status.success() && typed.status.success(), "pairing: {}", output_text(&paired));

    let out = dir.join("frames");
    let mut client = native_client(&[], &config)
        .args(["stream", &format!("127.0.0.1:{}", PORT + 50), "--headless", "--app", "Mine", "--mode", "256x144@20"])
        .args(["--frames", "100000", "--timeout", "150", "--type-stdin", "--out"])
        .arg(&out)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut keys = client.stdin.take().unwrap();
    let mut type_line = |line: &str| std::io::Write::write_all(&mut keys, format!("{line}\n").as_bytes()).unwrap();

    prompt_after(&dir, "User name: ", 0);
    stage_is(&dir, API_PORT, 0, "login greeter");
    let greeter = client_shows(&out, &dir, false, 3);
    type_line(&cat.0);
    prompt_after(&dir, "Password: ", 0);
    type_line("cobalt-lamp-3");
    stage_is(&dir, API_PORT, 0, &format!("{}'s session", cat.0));
    assert_eq!(written_by(&dir.join(format!("who-{cat_uid}")), &dir), cat_uid, "the app runs as {}", cat.0);
    let session = client_shows(&out, &dir, true, greeter);
    std::thread::sleep(Duration::from_secs(2));

    // A logout: the greeter is back in the same stream.
    assert!(Command::new("pkill").args(["-u", &cat.0, "-f", "punktfunk-test-pattern"]).status().unwrap().success());
    log_says(&dir, "login greeter joined", 2);
    let joined = newest_frame(&out).map_or(0, |(n, _)| n);
    let again = client_shows(&out, &dir, false, joined + 3);
    std::thread::sleep(Duration::from_secs(1));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(client.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let streamed = client.wait_with_output().unwrap();
    assert!(streamed.status.success(), "client: {}\n{}", output_text(&streamed), daemon_log(&dir));
    let stats: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("stats.json")).unwrap()).unwrap();
    eprintln!("frames: greeter {greeter}, session {session}, greeter again {again}; client: {stats}");
    assert!(greeter > 0 && session > greeter && again > session, "frames through the login and the logout");
    assert!(stats["frames_decoded"].as_u64().unwrap() > again, "{stats}");
    assert_eq!(stats["ended"], serde_json::Value::Null, "never told the stream ended");
    assert_eq!(stats["frames_lost"], 0, "no frame lost at either hand-over: {stats}");
    assert_eq!(stats["datagrams_invalid"], 0, "every datagram of each process opens with the stream's keys: {stats}");
    assert_eq!(stats["sizes"], serde_json::json!([[256, 144]]), "one stream, one mode");
    assert!(stats["audio_packets"].as_u64().unwrap() > 100 && stats["sound_onset_us"].is_u64(), "the user's app was heard: {stats}");
    assert!(stats["audio_lost"].as_u64().unwrap() < 50, "no sequence jump counted as lost sound: {stats}");
    // The longest the client went without a new picture: a hand-over (the frames' files are
    // written as they decode).
    let written: Vec<std::time::SystemTime> =
        (1..=again).filter_map(|n| std::fs::metadata(out.join(format!("frame-{n:05}.ppm"))).and_then(|m| m.modified()).ok()).collect();
    let gap = written.windows(2).filter_map(|w| w[1].duration_since(w[0]).ok()).max().unwrap_or_default();
    figure(&format!(
        "login hand-overs, punktfunk/1 (256x144@20, greeter → session → greeter): longest without a new picture {} ms",
        gap.as_millis()
    ));
    let log = daemon_log(&dir);
    assert!(!log.contains("cobalt-lamp"), "the password reached the log");
    assert!(log.matches("punktfunk/1 client latched").count() >= 3, "each process latched the client from its hellos");
    let _ = std::fs::remove_dir_all(&dir);
}
