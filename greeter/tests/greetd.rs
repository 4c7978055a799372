//! The greeter against a real greetd 0.9 and PAM (`pam_unix`), inside our headless
//! compositor: a user that exists only for this test types a wrong password (PAM says no,
//! the greeter starts over), then the right one, and greetd starts the session as that user.
//! Keys arrive through the compositor's input path, as a stream client's would.
//!
//! Needs root (greetd and adding a user) and greetd (`.ci/run` installs it); says why and
//! passes without them outside CI.

use punktfunk_compositor::{Config, Control, Frame, InputEvent, bounded_control_channel, run};
use punktfunk_frame::SourceControl;
use std::io::BufRead;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The test's user, removed again whatever happens.
struct User(String, Vec<&'static str>);

impl Drop for User {
    fn drop(&mut self) {
        let _ = privileged(&self.1, &["userdel", &self.0]).status();
    }
}

/// `argv` behind the `sudo` prefix (empty as root).
fn privileged(sudo: &[&str], argv: &[&str]) -> Command {
    let all: Vec<&str> = sudo.iter().chain(argv).copied().collect();
    let mut c = Command::new(all[0]);
    c.args(&all[1..]);
    c
}

fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

/// Waits for a line of greetd's output (the greeter's log is in it) that contains `want`.
fn expect(lines: &mpsc::Receiver<String>, want: &str, seen: &mut Vec<String>) {
    let end = Instant::now() + Duration::from_secs(30);
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) => {
                let found = line.contains(want);
                seen.push(line);
                if found {
                    return;
                }
            }
            Err(_) => break,
        }
    }
    panic!("greetd never said {want:?}; it said:\n{}", seen.join("\n"));
}

#[test]
fn logs_in_through_greetd_after_a_wrong_password() {
    let greetd = "/usr/sbin/greetd";
    let sudo = if nix::unistd::geteuid().is_root() {
        vec![]
    } else if Command::new("sudo").args(["-n", "true"]).status().is_ok_and(|s| s.success()) {
        vec!["sudo", "-n"]
    } else {
        vec!["none"]
    };
    if sudo == ["none"] || !Path::new(greetd).exists() {
        assert!(std::env::var_os("CI").is_none(), "CI has root (or sudo) and greetd");
        eprintln!("skipped: needs root (or password-less sudo) and greetd");
        return;
    }
    let dir = std::env::temp_dir().join(format!("pf-greeter-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("runtime")).unwrap();
    // The session runs as the user and leaves its mark here.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(dir.join("runtime"), std::fs::Permissions::from_mode(0o700)).unwrap();

    let name = format!("pfgreet{}", std::process::id());
    let added = privileged(&sudo, &["useradd", "--no-create-home", "--shell", "/bin/sh", &name]).status().unwrap();
    assert!(added.success(), "useradd {name}");
    let user = User(name, sudo.clone());
    let mut chpasswd = privileged(&sudo, &["chpasswd"]).stdin(Stdio::piped()).spawn().unwrap();
    std::io::Write::write_all(chpasswd.stdin.as_mut().unwrap(), format!("{}:right-horse-7\n", user.0).as_bytes()).unwrap();
    assert!(chpasswd.wait().unwrap().success());

    // Our compositor, in-process: its frames show the greeter, its input path types.
    let mut config = Config::new("960x540@30".parse().unwrap());
    config.socket_name = Some("greeter".into());
    config.runtime_dir = Some(dir.join("runtime"));

    let (control, channel) = bounded_control_channel(64);
    let (frames_tx, frames) = mpsc::channel();
    let sink = move |f: Frame| {
        // The greeter's background colour fills most of a frame it drew.
        let drawn = (0..f.height).step_by(16).flat_map(|y| (0..f.width).step_by(16).map(move |x| (x, y)));
        let background = drawn.filter(|&(x, y)| f.rgb_at(x, y) == (0x1d, 0x23, 0x30)).count();
        let _ = frames_tx.send(background);
        Ok(())
    };
    let compositor = std::thread::spawn(move || run(config, sink, Some(channel)));

    let marker = dir.join("logged-in");
    let greeter = target_dir().join("punktfunk-greeter");
    let toml = format!(
        "[terminal]\nvt = \"none\"\n\n[default_session]\ncommand = \"env WAYLAND_DISPLAY={} {} --title 'Log in to the test host' -- touch {}\"\nuser = \"root\"\n",
        dir.join("runtime/greeter").display(),
        greeter.display(),
        marker.display()
    );
    std::fs::write(dir.join("greetd.toml"), toml).unwrap();
    let config_file = dir.join("greetd.toml").display().to_string();
    let mut daemon = privileged(&sudo, &[greetd, "--config", &config_file]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    for out in [Box::new(daemon.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>, Box::new(daemon.stderr.take().unwrap())] {
        let tx = lines_tx.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    let mut seen = Vec::new();
    let type_line = |text: &str| {
        control.send(Control::Input(InputEvent::Text(text.into())));
        for pressed in [true, false] {
            control.send(Control::Input(InputEvent::Key { code: 28, pressed })); // Enter
        }
    };

    expect(&lines, "prompt \"User name: \"", &mut seen);
    let most = (540 / 16 + 1) * (960 / 16) / 2;
    let mut counts = Vec::new();
    let shown = std::iter::from_fn(|| frames.recv_timeout(Duration::from_secs(10)).ok())
        .take(300)
        .inspect(|&bg| counts.push(bg))
        .any(|bg| bg > most);
    assert!(
        shown,
        "the greeter's screen reached the compositor's frames ({counts:?} of {most} samples); greetd said:\n{}",
        seen.join("\n")
    );

    type_line(&user.0);
    expect(&lines, "prompt \"Password: \"", &mut seen);
    type_line("wrong-horse");
    // PAM says no (after its delay); the greeter says so and asks for the user again.
    expect(&lines, "prompt \"User name: \" [Login incorrect]", &mut seen);
    assert!(!marker.exists(), "no session after a wrong password");

    type_line(&user.0);
    expect(&lines, "prompt \"Password: \"", &mut seen);
    type_line("right-horse-7");
    expect(&lines, "session starting", &mut seen);
    let end = Instant::now() + Duration::from_secs(20);
    while !marker.exists() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    let uid = nix::unistd::User::from_name(&user.0).unwrap().unwrap().uid.as_raw();
    assert_eq!(std::fs::metadata(&marker).map(|m| m.uid()).ok(), Some(uid), "the session ran as {}: {seen:?}", user.0);
    assert!(!seen.iter().any(|l| l.contains("right-horse") || l.contains("wrong-horse")), "a password reached the log");

    // greetd restarts the greeter after the session: end it (and so its greeter).
    let _ = privileged(&sudo, &["pkill", "-f", &config_file]).status();
    let _ = daemon.wait();
    control.send(Control::Stop);
    let _ = compositor.join();
    let _ = std::fs::remove_dir_all(&dir);
}
