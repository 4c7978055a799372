//! The `PATH` a user's own terminal has: a daemon started by systemd (or any service
//! manager) gets a short default one, without what the login shell's profile adds
//! (`/usr/games` on Debian, `~/.local/bin`, a distribution's game launchers), so an app
//! entry that works in the user's terminal would fail with "No such file" here.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// How long a login shell's profile may take.
const PROFILE_LIMIT: Duration = Duration::from_secs(5);

/// The `PATH` of this user's login shell (from the user database), if it says one in time.
pub fn of_this_user() -> Option<OsString> {
    let user = nix::unistd::User::from_uid(nix::unistd::getuid()).ok()??;
    let path = login_shell_path(&user.shell, &user.dir);
    if path.is_none() {
        tracing::warn!(shell = %user.shell.display(), "the login shell said no PATH: apps are found on the daemon's own");
    }
    path
}

/// What `shell -l` (with `home`) sets `PATH` to; `None` if it fails or does not answer in
/// time. The shell runs in a process group of its own, all of it killed at the limit (a
/// profile that starts something in the background cannot hold us); what the profile
/// prints is told apart from the answer by a marker, and only absolute directories count.
pub fn login_shell_path(shell: &Path, home: &Path) -> Option<OsString> {
    const MARK: &str = "\u{1}punktfunk-path\u{1}";
    let mut child = Command::new(shell)
        .args(["-l", "-c", &format!("printf '%s%s' '{MARK}' \"$PATH\"")])
        .env("HOME", home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .current_dir(home)
        .process_group(0)
        .spawn()
        .ok()?;
    let group = nix::unistd::Pid::from_raw(child.id() as i32);
    let mut stdout = child.stdout.take()?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let read = (&mut stdout).take(64 * 1024).read_to_end(&mut out);
        let _ = tx.send(read.map(|_| out));
    });
    let since = std::time::Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if since.elapsed() < PROFILE_LIMIT => std::thread::sleep(Duration::from_millis(10)),
            _ => break None,
        }
    };
    // Whatever the profile left running goes with the shell (and lets go of the pipe).
    let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
    let _ = child.wait();
    let out = String::from_utf8(rx.recv_timeout(Duration::from_secs(1)).ok()?.ok()?).ok()?;
    let status = status?;
    let path = out.rsplit_once(MARK)?.1;
    let dirs: Vec<&str> = path.split(':').filter(|d| d.starts_with('/')).collect();
    (status.success() && !dirs.is_empty()).then(|| dirs.join(":").into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_s_path_is_found_and_a_broken_shell_gives_none() {
        let home = std::env::temp_dir().join(format!("pf-login-path-{}", std::process::id()));
        std::fs::create_dir_all(&home).unwrap();
        // A chatty profile that also leaves something running: the answer comes in time, the
        // chatter and relative entries left out.
        std::fs::write(home.join(".profile"), "echo welcome\nsleep 60 &\nPATH=\"$PATH:/opt/pf-games:bin\"\n").unwrap();
        let since = std::time::Instant::now();
        let path = login_shell_path(Path::new("/bin/sh"), &home).expect("a PATH");
        assert!(since.elapsed() < PROFILE_LIMIT, "did not wait for the profile's background job");
        assert!(path.to_string_lossy().ends_with(":/opt/pf-games"), "{path:?}");
        assert!(!path.to_string_lossy().contains("welcome"));
        assert_eq!(login_shell_path(Path::new("/nonexistent/shell"), &home), None);
        assert_eq!(login_shell_path(Path::new("/bin/false"), &home), None);
        let _ = std::fs::remove_dir_all(&home);
    }
}
