//! Login streams' processes joining them (ARCHITECTURE.md §5): the join socket's server,
//! the admission of each process greetd starts for a stream, and the sockets' eviction from
//! processes that outlive their stream.

use super::{IPC_WRITE_LIMIT, MediaSockets, Streams};
use crate::login::{self, Stage};
use punktfunk_core::ipc::{Command, Joined};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Login joiners being admitted at once.
const MAX_ADMITTING: usize = 8;
/// Processes one login stream may have (logins and logouts): each numbers punktfunk/1
/// datagrams in a range of its own of the 2^16 under the stream's keys.
const MAX_JOINS: u32 = u16::MAX as u32;

impl Streams {
    /// Serves the join socket of login streams: each process greetd starts for a stream
    /// (greeter or session) joins it here.
    pub fn serve_logins(self: &Arc<Self>) -> anyhow::Result<()> {
        let Some(desk) = &self.login else { return Ok(()) };
        let listener = desk.listen()?;
        let streams = Arc::clone(self);
        let admitting = Arc::new(AtomicUsize::new(0));
        std::thread::Builder::new().name("login-joins".into()).spawn(move || {
            for conn in listener.incoming() {
                let conn = match conn {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of descriptors, most likely: wait rather than spin.
                        tracing::warn!("login join socket: {e}");
                        std::thread::sleep(Duration::from_millis(100));
                        continue;
                    }
                };
                // A local process that connects and says nothing holds a thread for the
                // read's timeout: a few at a time.
                if admitting.fetch_add(1, Ordering::AcqRel) >= MAX_ADMITTING {
                    admitting.fetch_sub(1, Ordering::AcqRel);
                    continue;
                }
                let (streams, admitting) = (Arc::clone(&streams), Arc::clone(&admitting));
                let _ = std::thread::Builder::new().name("login-join".into()).spawn(move || {
                    let joined = streams.join(conn, &admitting);
                    if let Err(e) = joined {
                        tracing::warn!("login join refused: {e}");
                    }
                });
            }
        })?;
        Ok(())
    }

    /// Admits a process to the stream its ticket names, hands it the stream's sockets and
    /// what to run, goes on with the stream's video in it, and reads its reports.
    fn join(&self, conn: UnixStream, admitting: &AtomicUsize) -> anyhow::Result<()> {
        let desk = self.login.as_ref().expect("joins are served only for login streams");
        let admitted = desk.admit(&conn);
        admitting.fetch_sub(1, Ordering::AcqRel);
        let admission = admitted?;
        let (id, stage) = (admission.stream, admission.stage.clone());
        // Before taking the sessions' lock: starting a PipeWire takes a moment.
        let (mut sound, sound_env) = desk.user_sound(&admission);
        let (join, news) = self
            .with(id, |s| -> anyhow::Result<_> {
                anyhow::ensure!(s.commands.is_none(), "stream {id} has a process already");
                let Some(login) = s.login.as_mut() else { anyhow::bail!("stream {id} is no login stream") };
                // Each process sends in a range of its own under the stream's keys.
                anyhow::ensure!(login.joins < MAX_JOINS, "stream {id} had {MAX_JOINS} processes, as many as its keys allow");
                desk.spend(&admission);
                let (command, mut env) = desk.command(id, &stage, &login.app);
                env.extend(sound_env);
                let joined = Joined {
                    mode: s.launch.mode,
                    encoder: self.engines.encoder.clone(),
                    renderer: self.engines.renderer.clone(),
                    convert: self.engines.convert.clone(),
                    gpu: self.engines.gpu.clone(),
                    min_fps: self.engines.min_fps,
                    xwayland: stage != Stage::Greeter,
                    audio_channels: s.launch.audio_channels.count() as u8,
                    command,
                    env,
                };
                let mut line = serde_json::to_vec(&joined)?;
                line.push(b'\n');
                let sockets = &self.slots[s.slot].sockets;
                login::send_with_sockets(&conn, &line, &[&sockets.video, &sockets.native, &sockets.audio])?;
                conn.set_write_timeout(Some(IPC_WRITE_LIMIT))?;
                login.joins += 1;
                login.stage = stage;
                login.pipewire = sound.take();
                tracing::info!(stream = id, "{} joined", login.stage);
                let (video, native, audio) = (login.video.clone(), login.native.clone(), login.audio.clone());
                (s.commands, s.stalled) = (Some(conn.try_clone()?), false);
                // The stream goes on in this process where the last left it.
                if let Some(params) = video {
                    s.send(&Command::StartVideo(params));
                }
                if let Some(params) = native {
                    s.send(&Command::StartNative(params));
                }
                if let Some(params) = audio {
                    s.send(&Command::StartAudio(params));
                }
                let news = s.news.clone().unwrap_or_else(|| std::sync::mpsc::channel().0);
                Ok((s.login.as_ref().map_or(0, |l| l.joins), news))
            })
            .ok_or_else(|| anyhow::anyhow!("stream {id} ended"))??;
        self.share_cores();
        self.read_reports(id, conn, news, Some(join));
        Ok(())
    }
}

/// Kills every process but this one that holds one of `sockets` (found by their inodes in
/// `/proc/*/fd`).
pub(super) fn evict_holders(sockets: &MediaSockets) {
    let inodes: Vec<u64> = [&sockets.video, &sockets.native, &sockets.audio]
        .into_iter()
        .filter_map(|s| nix::sys::stat::fstat(s).ok().map(|st| st.st_ino))
        .collect();
    let me = std::process::id();
    let socket_inode = |link: PathBuf| -> Option<u64> { link.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok() };
    for process in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = process.file_name().to_str().and_then(|p| p.parse::<u32>().ok()).filter(|&p| p != me) else { continue };
        let Ok(fds) = std::fs::read_dir(process.path().join("fd")) else { continue };
        let holds = fds.flatten().any(|fd| std::fs::read_link(fd.path()).ok().and_then(socket_inode).is_some_and(|i| inodes.contains(&i)));
        if holds {
            tracing::warn!(pid, "a process outlived its login stream holding the stream's sockets: killing it");
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    /// A process that kept a copy of a slot's socket is found and ended; others are not.
    #[test]
    fn processes_holding_a_slots_sockets_are_evicted() {
        let bind = || UdpSocket::bind("127.0.0.1:0").unwrap();
        let sockets = MediaSockets { video: bind(), native: bind(), audio: bind() };
        let spawn = |inherit: Option<i32>| {
            let mut cmd = std::process::Command::new("sleep");
            cmd.arg("30");
            if let Some(fd) = inherit {
                // SAFETY: only fcntl between fork and exec.
                unsafe {
                    std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                        nix::libc::fcntl(fd, nix::libc::F_SETFD, 0);
                        Ok(())
                    });
                }
            }
            cmd.spawn().unwrap()
        };
        let mut keeper = spawn(Some(sockets.native.as_raw_fd()));
        let mut bystander = spawn(None);
        evict_holders(&sockets);
        let status = keeper.wait().unwrap();
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9), "the keeper was killed");
        assert!(bystander.try_wait().unwrap().is_none(), "the bystander runs on");
        let _ = bystander.kill();
        let _ = bystander.wait();
    }
}
