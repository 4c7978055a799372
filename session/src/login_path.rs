//! The `PATH` a user's own terminal has: a daemon started by systemd (or any service
//! manager) gets a short default one, without what the login shell's profile adds
//! (`/usr/games` on Debian, `~/.local/bin`, a distribution's game launchers), so an app
//! entry that works in the user's terminal would fail with "No such file" here.

use std::ffi::OsString;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

/// What `shell -l` (with `home`) sets `PATH` to; `None` if it fails or takes too long.
pub fn login_shell_path(shell: &Path, home: &Path) -> Option<OsString> {
    let mut child = Command::new(shell)
        .args(["-l", "-c", "printf %s \"$PATH\""])
        .env("HOME", home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .current_dir(home)
        .spawn()
        .ok()?;
    let since = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if since.elapsed() < PROFILE_LIMIT => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    };
    let mut out = Vec::new();
    child.stdout.take()?.take(64 * 1024).read_to_end(&mut out).ok()?;
    let path = String::from_utf8(out).ok()?;
    (status.success() && path.split(':').any(|d| d.starts_with('/'))).then(|| path.trim().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_s_path_is_found_and_a_broken_shell_gives_none() {
        let home = std::env::temp_dir().join(format!("pf-login-path-{}", std::process::id()));
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(home.join(".profile"), "PATH=\"$PATH:/opt/pf-games\"\n").unwrap();
        let path = login_shell_path(Path::new("/bin/sh"), &home).expect("a PATH");
        assert!(path.to_string_lossy().ends_with(":/opt/pf-games"), "{path:?}");
        assert_eq!(login_shell_path(Path::new("/nonexistent/shell"), &home), None);
        assert_eq!(login_shell_path(Path::new("/bin/false"), &home), None);
        let _ = std::fs::remove_dir_all(&home);
    }
}
