//! The wait of a source that is a Wayland client of the desktop: for the desktop's events
//! or the pipeline's wake pipe, whichever comes first.

use anyhow::Context;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;
use wayland_client::EventQueue;

/// Waits for the compositor's events or a command (`wake` readable), at most `limit`
/// (`None`: until one comes); reads and dispatches what came.
pub fn wait<S>(queue: &mut EventQueue<S>, state: &mut S, wake: Option<&OwnedFd>, limit: Option<Duration>) -> anyhow::Result<()> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    queue.dispatch_pending(state)?;
    let Some(guard) = queue.prepare_read() else {
        queue.dispatch_pending(state)?;
        return Ok(());
    };
    let timeout = limit.map_or(PollTimeout::NONE, |l| PollTimeout::from(l.as_millis().min(1000) as u16));
    let mut fds = vec![PollFd::new(guard.connection_fd(), PollFlags::POLLIN)];
    fds.extend(wake.map(|w| PollFd::new(w.as_fd(), PollFlags::POLLIN)));
    match poll(&mut fds, timeout) {
        // A signal: as a timeout (the caller looks again).
        Err(nix::errno::Errno::EINTR) => return Ok(()),
        polled => polled?,
    };
    let (events, woken) = (fds[0].any().unwrap_or(false), fds.get(1).is_some_and(|f| f.any().unwrap_or(false)));
    if events {
        match guard.read() {
            Err(wayland_client::backend::WaylandError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            read => {
                read.context("the desktop's Wayland connection")?;
            }
        }
    } else {
        drop(guard);
    }
    if let Some(wake) = wake.filter(|_| woken) {
        let _ = nix::unistd::read(wake, &mut [0; 64]);
    }
    queue.dispatch_pending(state)?;
    Ok(())
}
