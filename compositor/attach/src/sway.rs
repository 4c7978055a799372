//! sway's side of an attached stream, over its IPC (`$SWAYSOCK`): a headless output of the
//! client's mode, created for the stream and taken away after it.

use anyhow::Context;
use punktfunk_core::mode::Mode;
use std::io::{Read, Seek, Write};
use std::path::PathBuf;
use swayipc::Connection;

/// An output sway made for this stream.
pub struct SwayOutput {
    ipc: Connection,
    pub name: String,
}

fn run(ipc: &mut Connection, command: &str) -> anyhow::Result<()> {
    for outcome in ipc.run_command(command).with_context(|| format!("sway: {command}"))? {
        outcome.with_context(|| format!("sway refused {command:?}"))?;
    }
    Ok(())
}

impl SwayOutput {
    /// Asks sway for a new headless output (`create_output`) and sets it to `mode`.
    /// An output a stream before kept (a sway that cannot remove outputs) is used again.
    pub fn create(mode: Mode) -> anyhow::Result<Self> {
        let mut ipc = Connection::new().context("connecting to sway's IPC ($SWAYSOCK)")?;
        let before: Vec<String> = ipc.get_outputs()?.into_iter().map(|o| o.name).collect();
        let name = match Kept::take(|name| before.iter().any(|n| n == name)) {
            Some(name) => name,
            None => {
                run(&mut ipc, "create_output")?;
                ipc.get_outputs()?
                    .into_iter()
                    .map(|o| o.name)
                    .find(|n| !before.contains(n))
                    .context("sway created no output (only its headless backend can: WLR_BACKENDS=…,headless)")?
            }
        };
        let mut output = Self { ipc, name };
        output.set_mode(mode)?;
        tracing::info!(output = output.name, %mode, "sway output created");
        Ok(output)
    }

    /// Any mode: a headless output takes custom ones.
    pub fn set_mode(&mut self, mode: Mode) -> anyhow::Result<()> {
        let hz = f64::from(mode.refresh_mhz) / 1000.0;
        run(&mut self.ipc, &format!("output {} mode --custom {}x{}@{hz:.3}Hz", self.name, mode.width, mode.height))
    }
}

impl Drop for SwayOutput {
    /// Unplugs the output (sway 1.8+); where sway cannot, keeps it for the next stream and
    /// says so.
    fn drop(&mut self) {
        if run(&mut self.ipc, &format!("output {} unplug", self.name)).is_err() {
            tracing::warn!(output = self.name, "this sway cannot unplug outputs (1.8 can): it stays, for the next stream to use");
            if let Err(e) = Kept::add(&self.name) {
                tracing::warn!("remembering output {}: {e}", self.name);
            }
        }
    }
}

/// The outputs streams left in a sway that cannot remove them, free for the next one: a
/// list in the runtime directory, one name a line, read and changed under a lock (two
/// streams may start at once).
struct Kept;

impl Kept {
    /// In the user's runtime directory (private), per sway instance (its socket's name); none
    /// without one: /tmp is shared with other users.
    fn path() -> std::io::Result<PathBuf> {
        let dir = std::env::var_os("XDG_RUNTIME_DIR").ok_or_else(|| std::io::Error::other("no XDG_RUNTIME_DIR"))?;
        let sway = std::env::var("SWAYSOCK").unwrap_or_default().replace('/', "_");
        Ok(PathBuf::from(dir).join(format!("punktfunk-attach-outputs{sway}")))
    }

    /// Changes the list under its lock.
    fn edit<R>(f: impl FnOnce(&mut Vec<String>) -> R) -> std::io::Result<R> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(Self::path()?)?;
        let _lock = nix::fcntl::Flock::lock(file.try_clone()?, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, e)| e)?;
        let mut text = String::new();
        file.read_to_string(&mut text)?;
        // Only outputs sway's headless backend made are ever ours to take.
        let mut names: Vec<String> = text.lines().filter(|l| l.starts_with("HEADLESS-")).map(str::to_owned).collect();
        let out = f(&mut names);
        file.set_len(0)?;
        file.rewind()?;
        file.write_all(names.iter().map(|n| format!("{n}\n")).collect::<String>().as_bytes())?;
        Ok(out)
    }

    /// A kept output that still exists, taken off the list.
    fn take(exists: impl Fn(&str) -> bool) -> Option<String> {
        Self::edit(|names| {
            names.retain(|n| exists(n));
            names.pop()
        })
        .ok()
        .flatten()
    }

    fn add(name: &str) -> std::io::Result<()> {
        Self::edit(|names| names.push(name.to_owned()))
    }
}
