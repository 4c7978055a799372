//! A private PipeWire for hosts where none runs (a headless server, a system service): the
//! session bus if there is none, pipewire, wireplumber (routing) and pipewire-pulse (for the
//! PulseAudio clients most games are), as children that die with the host.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether a PipeWire daemon answers in `runtime` (its socket accepts a connection).
pub fn reachable(runtime: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(runtime.join("pipewire-0")).is_ok()
}

pub struct PipeWireServer {
    children: Vec<(&'static str, Child)>,
    env: Vec<(&'static str, OsString)>,
    /// Another user's (uid, gid) the daemons run as, in an environment of their own.
    owner: Option<(u32, u32)>,
    /// The runtime directory made for them, removed with them.
    made: Option<PathBuf>,
}

impl PipeWireServer {
    /// Starts the daemons with their sockets in `runtime` (created 0700 if missing) and
    /// waits until PipeWire and its PulseAudio server accept connections. Output goes to
    /// `log_dir/<daemon>.log` when given, else nowhere.
    pub fn start(runtime: &Path, log_dir: Option<&Path>) -> std::io::Result<Self> {
        Self::start_for(runtime, log_dir, None)
    }

    /// As [`PipeWireServer::start`], the daemons running as the user `owner` (uid, gid): a
    /// login stream's user where logind started none. Their sockets go in `runtime`, the
    /// user's own runtime directory (which the caller checked is theirs: nothing is done in
    /// it as root), or with none in a fresh directory made for them and removed with them.
    pub fn start_as(runtime: Option<&Path>, owner: (u32, u32)) -> std::io::Result<Self> {
        let Some(runtime) = runtime else {
            // mkdtemp's directory is new (never someone's link) and 0700.
            let made = nix::unistd::mkdtemp(&std::env::temp_dir().join("punktfunk-run-XXXXXX"))?;
            let started =
                std::os::unix::fs::chown(&made, Some(owner.0), Some(owner.1)).and_then(|()| Self::start_for(&made, None, Some(owner)));
            return match started {
                Ok(mut server) => {
                    server.made = Some(made);
                    Ok(server)
                }
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&made);
                    Err(e)
                }
            };
        };
        Self::start_for(runtime, None, Some(owner))
    }

    fn start_for(runtime: &Path, log_dir: Option<&Path>, owner: Option<(u32, u32)>) -> std::io::Result<Self> {
        if owner.is_none() {
            std::fs::create_dir_all(runtime)?;
            std::fs::set_permissions(runtime, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
        }
        let mut env = vec![("XDG_RUNTIME_DIR", runtime.as_os_str().to_owned())];
        if owner.is_some() {
            // Nothing of the daemon's own environment (its HOME, its state directories).
            env.extend([("HOME", runtime.as_os_str().to_owned()), ("PATH", "/usr/local/bin:/usr/bin:/bin".into())]);
        }
        let mut server = Self { children: Vec::new(), env: Vec::new(), owner, made: None };
        // WirePlumber wants a session bus; a service started outside a login has none.
        match std::env::var_os("DBUS_SESSION_BUS_ADDRESS").filter(|_| owner.is_none()) {
            Some(bus) => env.push(("DBUS_SESSION_BUS_ADDRESS", bus)),
            None => {
                let socket = runtime.join("bus");
                if owner.is_none() {
                    let _ = std::fs::remove_file(&socket);
                }
                let address = format!("unix:path={}", socket.display());
                server.spawn("dbus-daemon", &["--session", "--nofork", "--nopidfile", "--address", &address], &env, log_dir)?;
                wait_for(&socket, "dbus-daemon")?;
                env.push(("DBUS_SESSION_BUS_ADDRESS", address.into()));
            }
        }
        server.env = env;
        let env = server.env.clone();
        server.spawn("pipewire", &[], &env, log_dir)?;
        wait_for(&runtime.join("pipewire-0"), "pipewire")?;
        server.spawn("wireplumber", &[], &env, log_dir)?;
        server.spawn("pipewire-pulse", &[], &env, log_dir)?;
        wait_for(&runtime.join("pulse/native"), "pipewire-pulse")?;
        tracing::info!(runtime = %runtime.display(), "started a private PipeWire for the sessions' sound");
        Ok(server)
    }

    fn spawn(
        &mut self,
        program: &'static str,
        args: &[&str],
        env: &[(&'static str, OsString)],
        log_dir: Option<&Path>,
    ) -> std::io::Result<()> {
        let output = || -> std::io::Result<Stdio> {
            Ok(match log_dir {
                Some(d) => std::fs::File::options().create(true).append(true).open(d.join(format!("{program}.log")))?.into(),
                None => Stdio::null(),
            })
        };
        let mut command = Command::new(program);
        if let Some((uid, gid)) = self.owner {
            command.env_clear().uid(uid).gid(gid);
        }
        command.args(args).envs(env.iter().cloned()).stdin(Stdio::null()).stdout(output()?).stderr(output()?);
        // SAFETY: prctl is async-signal-safe. The daemon must not outlive the host, even
        // one killed without a chance to clean up.
        unsafe {
            command.pre_exec(|| nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM).map_err(std::io::Error::from));
        }
        let child = command.spawn().map_err(|e| std::io::Error::new(e.kind(), format!("starting {program}: {e}")))?;
        self.children.push((program, child));
        Ok(())
    }

    /// What processes need in their environment to use this PipeWire.
    pub fn env(&self) -> &[(&'static str, OsString)] {
        &self.env
    }
}

impl Drop for PipeWireServer {
    fn drop(&mut self) {
        for (_, child) in self.children.iter_mut().rev() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM);
        }
        for (program, child) in self.children.iter_mut().rev() {
            let deadline = Instant::now() + Duration::from_secs(2);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if matches!(child.try_wait(), Ok(None)) {
                tracing::warn!("{program} ignored SIGTERM: killing it");
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if let Some(dir) = &self.made {
            // Never follows a link put in its place.
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn wait_for(socket: &Path, program: &str) -> std::io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(socket).is_err() {
        if Instant::now() > deadline {
            return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, format!("{program} did not open {} in 10 s", socket.display())));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// The runtime directory sessions use: `XDG_RUNTIME_DIR`, or the private one the compositor
/// also falls back to when it is unset.
pub fn runtime_dir() -> PathBuf {
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join(format!("punktfunk-runtime-{}", nix::unistd::getuid())))
}
