//! Game launch, gamescope-style: the session command runs in its own process group with the
//! compositor's sockets in its environment; the session ends when that whole group is gone.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

/// The launched command's process group.
pub struct App {
    pgid: Pid,
}

impl App {
    /// Starts `argv` in a new process group. The compositor becomes a child subreaper, so
    /// descendants orphaned by a launcher (`steam` forks and exits) are still waited for.
    /// `on_exit` runs on a reaper thread once no process of the group is left, with the
    /// first process's exit code (128 + signal if it was killed).
    pub fn spawn(argv: &[OsString], env: &[(&str, OsString)], on_exit: impl FnOnce(i32) + Send + 'static) -> std::io::Result<Self> {
        let (program, args) = argv.split_first().ok_or_else(|| std::io::Error::other("empty command"))?;
        nix::sys::prctl::set_child_subreaper(true).map_err(std::io::Error::from)?;
        let child = Command::new(program).args(args).envs(env.iter().map(|(k, v)| (k, v))).process_group(0).spawn()?;
        let pgid = Pid::from_raw(child.id() as i32);
        tracing::info!(pid = pgid.as_raw(), command = ?argv, "launched session command");
        std::thread::Builder::new().name("reaper".into()).spawn(move || {
            let mut code = 0;
            loop {
                // Waits for any process of the group; ECHILD once none is left.
                match waitpid(Pid::from_raw(-pgid.as_raw()), None) {
                    Ok(WaitStatus::Exited(pid, c)) if pid == pgid => code = c,
                    Ok(WaitStatus::Signaled(pid, sig, _)) if pid == pgid => code = 128 + sig as i32,
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(_) => break,
                }
            }
            drop(child);
            on_exit(code);
        })?;
        Ok(Self { pgid })
    }

    /// The first process's pid (the group's id).
    pub fn pid(&self) -> u32 {
        self.pgid.as_raw() as u32
    }

    /// Asks the whole group to stop (SIGTERM), and kills what is left after `grace`: an app
    /// that ignores the request must not outlive its session.
    pub fn terminate(&self, grace: std::time::Duration) {
        self.signal(Signal::SIGTERM);
        let deadline = std::time::Instant::now() + grace;
        while std::time::Instant::now() < deadline {
            if killpg(self.pgid, None) == Err(Errno::ESRCH) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        tracing::warn!("the session's processes ignored SIGTERM for {grace:?}: killing them");
        self.signal(Signal::SIGKILL);
    }

    /// Forwards a signal to every process of the group.
    pub fn signal(&self, signal: Signal) {
        if let Err(e) = killpg(self.pgid, signal)
            && e != Errno::ESRCH
        {
            tracing::warn!("forwarding {signal} to the session: {e}");
        }
    }
}
