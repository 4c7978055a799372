//! A stream process that greetd started joins its stream (ARCHITECTURE.md §5): the greeter's
//! compositor, then the user's session after a login, connect to the daemon's join socket,
//! name their stream with a ticket, and get back what to run and the stream's media
//! sockets. The connection goes on as the stream's command socket.

use crate::ipc::{self, Join, Joined};
use anyhow::Context;
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
use std::io::IoSliceMut;
use std::net::UdpSocket;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// What the daemon handed a joining process.
pub struct Joining {
    pub ipc: UnixStream,
    pub joined: Joined,
    pub video: UdpSocket,
    pub native: UdpSocket,
    /// GameStream audio.
    pub audio: UdpSocket,
}

/// How long the daemon may take to answer.
const ANSWER: Duration = Duration::from_secs(10);

/// Joins the stream `ticket` names at the daemon's socket `path`.
pub fn join(path: &Path, ticket: &str) -> anyhow::Result<Joining> {
    let mut ipc = UnixStream::connect(path).with_context(|| format!("connecting to the daemon at {}", path.display()))?;
    let runtime_dir = std::env::var_os("XDG_RUNTIME_DIR").map(Into::into);
    ipc::write(&mut ipc, &Join { ticket: ticket.to_owned(), runtime_dir })?;
    ipc.set_read_timeout(Some(ANSWER))?;
    // The answer's line comes with the sockets. Read a byte at a time so that nothing the
    // daemon sends after it (the stream's first commands) is taken from the socket here.
    let (mut line, mut fds) = (Vec::new(), Vec::<OwnedFd>::new());
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 3]);
    loop {
        let mut byte = [0u8; 1];
        let mut iov = [IoSliceMut::new(&mut byte)];
        let msg = recvmsg::<()>(ipc.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
            .context("reading the daemon's answer")?;
        for cmsg in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(received) = cmsg {
                // SAFETY: the kernel just installed these descriptors in this process; nothing
                // else owns them.
                fds.extend(received.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
            }
        }
        anyhow::ensure!(msg.bytes == 1, "the daemon closed the join socket: the ticket was refused");
        if byte[0] == b'\n' {
            break;
        }
        line.push(byte[0]);
        anyhow::ensure!(line.len() <= ipc::MAX_LINE, "the daemon's answer is too long");
    }
    ipc.set_read_timeout(None)?;
    let joined: Joined = serde_json::from_slice(&line).context("the daemon's answer")?;
    let mut fds = fds.into_iter();
    let (Some(video), Some(native), Some(audio), None) = (fds.next(), fds.next(), fds.next(), fds.next()) else {
        anyhow::bail!("the daemon's answer came without the stream's three sockets");
    };
    let socket = UdpSocket::from;
    Ok(Joining { ipc, joined, video: socket(video), native: socket(native), audio: socket(audio) })
}
