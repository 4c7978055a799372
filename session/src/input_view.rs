//! A session's own view of the input devices: its apps see the nodes of its own virtual pads
//! in /dev/input and nothing else there, and other sessions' DualSense hidraw nodes not at
//! all, so a game (SDL, Steam Input, Wine) in one session never picks up another's pads or
//! the host's. Pads are hot-plugged: a node shows the moment the host made it.
//!
//! How: a keeper process per session (`punktfunk input-view`, this binary again) makes a
//! mount namespace (inside a user namespace of its own when the host is not root: no
//! privilege needed) in which an empty tmpfs covers /dev/input, keeping a handle on the real
//! directory beneath; asked to show a node, it binds the real one onto a file of the same
//! name there. The session's processes join that namespace before they run (setns between
//! fork and exec). It keeps well-behaved programs apart; it is no wall against a program
//! of the same user that sets out to reach another session's pads.
//!
//! Written by hand: no crate keeps a namespace that way; the protocol with the keeper is
//! one line per request (`show event5`, `hide event5`, `mask hidraw2`, `unmask hidraw2`)
//! and one answer line (`ok` or `error: …`).

use anyhow::Context;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;

/// A node name the keeper takes: `event12`, `js0`, `hidraw3` — never a path.
fn valid_node(name: &str) -> bool {
    let digits = ["event", "js", "hidraw"].iter().find_map(|p| name.strip_prefix(p));
    digits.is_some_and(|d| !d.is_empty() && d.len() <= 5 && d.bytes().all(|b| b.is_ascii_digit()))
}

/// Where the keeper works: /dev/input and /dev (tests give directories of their own).
#[derive(Clone, Debug)]
pub struct Dirs {
    pub input: PathBuf,
    pub dev: PathBuf,
}

impl Default for Dirs {
    fn default() -> Self {
        Self { input: "/dev/input".into(), dev: "/dev".into() }
    }
}

/// One session's view, held by the host; dropping it ends the keeper.
pub struct InputView {
    keeper: Child,
    io: parking_lot::Mutex<(ChildStdin, BufReader<ChildStdout>)>,
    /// The namespaces the session's processes join (the user namespace where there is one).
    user_ns: Option<OwnedFd>,
    mount_ns: OwnedFd,
    /// The keeper's root directory: joining a mount namespace moves a process to the
    /// namespace's root, not to the root the host runs in (a chroot, a container's).
    root: OwnedFd,
}

impl InputView {
    /// Starts a keeper (`exe input-view`) for a view of `dirs`.
    pub fn new(exe: &Path, dirs: &Dirs) -> anyhow::Result<Self> {
        let mut keeper = Command::new(exe)
            .arg("input-view")
            .arg(&dirs.input)
            .arg(&dirs.dev)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {} input-view", exe.display()))?;
        let (stdin, stdout) = (keeper.stdin.take().expect("piped"), keeper.stdout.take().expect("piped"));
        let mut io = (stdin, BufReader::new(stdout));
        let ready = answer(&mut io.1);
        let opened = ready.and_then(|()| {
            let pid = keeper.id();
            let open = |ns: &str| std::fs::File::open(format!("/proc/{pid}/ns/{ns}")).map(OwnedFd::from);
            let own_user = std::fs::read_link("/proc/self/ns/user")?;
            let user_ns = (std::fs::read_link(format!("/proc/{pid}/ns/user"))? != own_user).then(|| open("user")).transpose()?;
            let root = nix::fcntl::open(
                format!("/proc/{pid}/root").as_str(),
                nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )?;
            Ok((user_ns, open("mnt")?, root))
        });
        match opened {
            Ok((user_ns, mount_ns, root)) => {
                let view = Self { keeper, io: parking_lot::Mutex::new(io), user_ns, mount_ns, root };
                // A process must be able to join (seccomp, a hardened unit may say no): tried
                // once here, so that a session never fails to start for it.
                let mut trial = Command::new("/bin/true");
                view.enter(&mut trial);
                let joined = trial.status().map_err(anyhow::Error::from).and_then(|s| {
                    anyhow::ensure!(s.success(), "{s}");
                    Ok(())
                });
                joined.context("joining the input view")?;
                Ok(view)
            }
            Err(e) => {
                let _ = keeper.kill();
                let _ = keeper.wait();
                Err(anyhow::anyhow!("the input view's keeper: {e}"))
            }
        }
    }

    /// Shows /dev/input/`name` (a node of this session's pad) in the view.
    pub fn show(&self, name: &str) -> std::io::Result<()> {
        self.ask("show", name)
    }

    /// Takes /dev/input/`name` out of the view.
    pub fn hide(&self, name: &str) -> std::io::Result<()> {
        self.ask("hide", name)
    }

    /// Covers /dev/`name` (another session's hidraw node) in the view: it cannot be opened.
    pub fn mask(&self, name: &str) -> std::io::Result<()> {
        self.ask("mask", name)
    }

    pub fn unmask(&self, name: &str) -> std::io::Result<()> {
        self.ask("unmask", name)
    }

    fn ask(&self, verb: &str, name: &str) -> std::io::Result<()> {
        if !valid_node(name) {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("no input node: {name:?}")));
        }
        let mut io = self.io.lock();
        writeln!(io.0, "{verb} {name}")?;
        answer(&mut io.1)
    }

    /// Makes `command` run inside the view (its children stay there), in its working
    /// directory as the view has it.
    pub fn enter(&self, command: &mut Command) {
        let user = self.user_ns.as_ref().map(|fd| fd.as_raw_fd());
        let (mount, root) = (self.mount_ns.as_raw_fd(), self.root.as_raw_fd());
        let here = std::env::current_dir().unwrap_or_else(|_| "/".into());
        let dir = command.get_current_dir().map_or_else(|| here.clone(), |d| here.join(d));
        let dir = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(dir.as_os_str())).unwrap_or_else(|_| c"/".into());
        // SAFETY: between fork and exec only setns, fchdir, chroot and chdir, all
        // async-signal-safe; the descriptors stay open in the parent (self outlives the
        // spawn) and the directory's name was made before the fork.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(command, move || {
                let borrow = |fd| std::os::fd::BorrowedFd::borrow_raw(fd);
                if let Some(user) = user {
                    setns(borrow(user), CloneFlags::CLONE_NEWUSER)?;
                }
                setns(borrow(mount), CloneFlags::CLONE_NEWNS)?;
                // Back to the host's root and the working directory, as seen in the view.
                nix::unistd::fchdir(borrow(root))?;
                nix::unistd::chroot(".")?;
                nix::unistd::chdir(dir.as_c_str())?;
                Ok(())
            });
        }
    }
}

impl Drop for InputView {
    fn drop(&mut self) {
        // The keeper ends when its requests do (and is killed should it not).
        let _ = self.keeper.kill();
        let _ = self.keeper.wait();
    }
}

/// Every session's view, and the hidraw nodes of pads (a DualSense's, which Steam and SDL
/// open directly), each masked in every view but its own session's.
static VIEWS: parking_lot::Mutex<Registry> = parking_lot::Mutex::new(Registry { views: Vec::new(), hidraw: Vec::new() });

struct Registry {
    views: Vec<std::sync::Weak<InputView>>,
    /// The node, and the view of the session whose pad it is (none: a session without one).
    hidraw: Vec<(String, Option<std::sync::Weak<InputView>>)>,
}

impl Registry {
    fn others<'a>(&'a self, own: Option<&'a Arc<InputView>>) -> impl Iterator<Item = Arc<InputView>> + 'a {
        self.views.iter().filter_map(std::sync::Weak::upgrade).filter(move |v| own.is_none_or(|own| !Arc::ptr_eq(v, own)))
    }
}

/// Makes `view` known: the pads' hidraw nodes of other sessions are masked in it from now.
pub fn register(view: &Arc<InputView>) {
    let masked: Vec<String> = {
        let mut registry = VIEWS.lock();
        registry.views.retain(|v| v.strong_count() > 0);
        registry.views.push(Arc::downgrade(view));
        registry.hidraw.iter().map(|(name, _)| name.clone()).collect()
    };
    for name in masked {
        let _ = view.mask(&name);
    }
}

/// Masks hidraw node `name` (of a pad of the session whose view is `own`) in every other view.
pub fn claim_hidraw(name: &str, own: Option<&Arc<InputView>>) {
    let others: Vec<_> = {
        let mut registry = VIEWS.lock();
        registry.hidraw.push((name.to_owned(), own.map(Arc::downgrade)));
        registry.others(own).collect()
    };
    for view in others {
        if let Err(e) = view.mask(name) {
            tracing::warn!("masking {name} in another session's input view: {e}");
        }
    }
}

/// The pad of hidraw node `name` is gone: no view masks it any more.
pub fn release_hidraw(name: &str, own: Option<&Arc<InputView>>) {
    let others: Vec<_> = {
        let mut registry = VIEWS.lock();
        registry.hidraw.retain(|(n, _)| n != name);
        registry.others(own).collect()
    };
    for view in others {
        let _ = view.unmask(name);
    }
}

/// Reads the keeper's answer line.
fn answer<R: BufRead>(from: &mut R) -> std::io::Result<()> {
    let mut line = String::new();
    Read::take(from, 4096).read_line(&mut line)?;
    match line.trim_end() {
        "ok" => Ok(()),
        "" => Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the input view's keeper ended")),
        why => Err(std::io::Error::other(why.strip_prefix("error: ").unwrap_or(why).to_owned())),
    }
}

/// The keeper (`punktfunk input-view INPUT DEV`): makes the view, answers `ok` when it
/// stands, then one answer per request until its standard input closes.
pub fn keep(dirs: &Dirs) -> anyhow::Result<()> {
    let view = match make_view(dirs) {
        Ok(view) => {
            println!("ok");
            view
        }
        Err(e) => {
            println!("error: {e:#}");
            return Err(e);
        }
    };
    let mut out = std::io::stdout().lock();
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let reply = match line.split_once(' ') {
            Some((verb, name)) if valid_node(name) => view.apply(verb, name),
            _ => Err(anyhow::anyhow!("no request: {line:?}")),
        };
        match reply {
            Ok(()) => writeln!(out, "ok")?,
            Err(e) => writeln!(out, "error: {e:#}")?,
        }
        out.flush()?;
    }
    Ok(())
}

struct View {
    dirs: Dirs,
    /// The real input directory, beneath the tmpfs.
    real: OwnedFd,
    /// A file nobody may open, bound over masked nodes.
    closed: PathBuf,
}

fn make_view(dirs: &Dirs) -> anyhow::Result<View> {
    let (uid, gid) = (nix::unistd::geteuid(), nix::unistd::getegid());
    if uid.is_root() {
        unshare(CloneFlags::CLONE_NEWNS).context("a mount namespace")?;
    } else {
        unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS).context("a user and mount namespace")?;
        std::fs::write("/proc/self/setgroups", "deny")?;
        std::fs::write("/proc/self/uid_map", format!("{uid} {uid} 1"))?;
        std::fs::write("/proc/self/gid_map", format!("{gid} {gid} 1"))?;
    }
    // Nothing mounted here reaches the host's namespace; what the host mounts later (a USB
    // stick, a user's runtime directory) still reaches this one.
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_SLAVE, None::<&str>).context("making mounts one-way")?;
    // …and what is mounted here later (a pad's node) reaches the session's own containers
    // (Flatpak's, Steam's pressure-vessel), made from this view before the pad came.
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_SHARED, None::<&str>).context("sharing mounts inward")?;
    let real: OwnedFd = nix::fcntl::open(
        &dirs.input,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("{} (no input devices on this machine?)", dirs.input.display()))?;
    let tmpfs = |at: &Path, what: &str| {
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
        mount(Some("tmpfs"), at, Some("tmpfs"), flags, Some("mode=0755,size=64k")).with_context(|| format!("covering {what}"))
    };
    tmpfs(&dirs.input, &dirs.input.display().to_string())?;
    // What masks nodes: a file nobody may open (programs look for event* and js* here).
    let closed = dirs.input.join(".closed");
    std::fs::write(&closed, b"")?;
    std::fs::set_permissions(&closed, std::os::unix::fs::PermissionsExt::from_mode(0o000))?;
    Ok(View { dirs: dirs.clone(), real, closed })
}

impl View {
    fn apply(&self, verb: &str, name: &str) -> anyhow::Result<()> {
        match verb {
            "show" => {
                let at = self.dirs.input.join(name);
                std::fs::File::create(&at)?;
                let real = format!("/proc/self/fd/{}/{name}", self.real.as_fd().as_raw_fd());
                bind(Path::new(&real), &at).inspect_err(|_| {
                    let _ = std::fs::remove_file(&at);
                })
            }
            "hide" => {
                let at = self.dirs.input.join(name);
                let _ = umount2(&at, MntFlags::MNT_DETACH);
                std::fs::remove_file(&at).with_context(|| format!("{name} was not shown"))
            }
            "mask" => bind(&self.closed, &self.dirs.dev.join(name)),
            "unmask" => Ok(umount2(&self.dirs.dev.join(name), MntFlags::MNT_DETACH)?),
            _ => anyhow::bail!("no request: {verb:?}"),
        }
    }
}

fn bind(from: &Path, to: &Path) -> anyhow::Result<()> {
    mount(Some(from), to, None::<&str>, MsFlags::MS_BIND, None::<&str>).with_context(|| format!("binding {}", to.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_node_names_are_taken() {
        for ok in ["event0", "event123", "js2", "hidraw7"] {
            assert!(valid_node(ok), "{ok}");
        }
        for bad in ["", "event", "event-1", "../event1", "event1/x", "mice", "event123456", "hidraw 1", "sda"] {
            assert!(!valid_node(bad), "{bad}");
        }
    }
}
