//! One connection's pads on a thread of their own, for punktfunk/1: its control connection
//! runs on tokio, but pads are devices read with poll(2) (games' force feedback, the
//! DualSense driver's requests) and written with blocking calls, which must never hold up
//! the control plane. Events go in through a bounded queue (an eventfd wakes the thread at
//! once: no polling delay on input), feedback comes out through a bounded channel. The
//! pads go when the worker is dropped: with the connection, also when it fails.

use super::Gamepads;
use super::layout::GamepadChoice;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use punktfunk_core::gamepad::{PadEvent, PadFeedback};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::time::{Duration, Instant};

/// Pad events queued at most: a few seconds of a busy client's controllers; beyond it the
/// client sends faster than pads can take, and events are dropped (a state is sent whole,
/// so the next one repairs it).
const QUEUE: usize = 1024;
/// Feedback the connection has not taken yet, kept at most (the oldest goes first).
const PENDING: usize = 64;
/// How soon feedback the connection could not take is offered again.
const RETRY: Duration = Duration::from_millis(10);

pub struct PadWorker {
    events: Option<SyncSender<PadEvent>>,
    wake: Arc<EventFd>,
    thread: Option<std::thread::JoinHandle<()>>,
    dropped: u64,
}

impl PadWorker {
    /// Starts the thread; what games ask of the pads goes to `feedback`.
    pub fn spawn(
        choice: GamepadChoice,
        view: Option<Arc<crate::input_view::InputView>>,
        feedback: tokio::sync::mpsc::Sender<PadFeedback>,
    ) -> std::io::Result<Self> {
        let wake = Arc::new(EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)?);
        let (events, queue) = std::sync::mpsc::sync_channel(QUEUE);
        let woken = Arc::clone(&wake);
        let thread = std::thread::Builder::new()
            .name("pads".into())
            .spawn(move || run(Gamepads::new(choice).in_view(view), queue, &woken, feedback))?;
        Ok(Self { events: Some(events), wake, thread: Some(thread), dropped: 0 })
    }

    /// Hands one event to the pads (dropped, with a warning now and then, when the queue is full).
    pub fn send(&mut self, event: PadEvent) {
        let Some(events) = &self.events else { return };
        match events.try_send(event) {
            Ok(()) => {
                let _ = self.wake.write(1);
            }
            Err(TrySendError::Full(_)) => {
                self.dropped += 1;
                if self.dropped.is_power_of_two() {
                    tracing::warn!(dropped = self.dropped, "gamepad events arrive faster than the pads take them: dropped");
                }
            }
            Err(TrySendError::Disconnected(_)) => self.events = None,
        }
    }
}

impl Drop for PadWorker {
    fn drop(&mut self) {
        // The thread sees the queue closed, removes its pads and ends.
        self.events = None;
        let _ = self.wake.write(1);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(mut pads: Gamepads, queue: Receiver<PadEvent>, wake: &EventFd, feedback: tokio::sync::mpsc::Sender<PadFeedback>) {
    let (mut out, mut pending) = (Vec::new(), std::collections::VecDeque::new());
    loop {
        let now = Instant::now();
        let due = pads.next_change(now).map(|t| t.saturating_duration_since(now));
        let due = if pending.is_empty() { due } else { Some(due.map_or(RETRY, |d| d.min(RETRY))) };
        // Rounded up: a wake a little early would only spin until the effect's moment.
        let timeout = due.map_or(PollTimeout::NONE, |d| PollTimeout::from(d.as_micros().div_ceil(1000).min(1000) as u16));
        let mut fds = vec![PollFd::new(wake.as_fd(), PollFlags::POLLIN)];
        fds.extend(pads.fds().map(|fd| PollFd::new(fd, PollFlags::POLLIN)));
        let _ = nix::poll::poll(&mut fds, timeout);
        drop(fds);
        let _ = wake.read();
        loop {
            match queue.try_recv() {
                Ok(event) => pads.handle(event),
                Err(TryRecvError::Empty) => break,
                // The connection is gone: its pads with it (dropping them removes the devices).
                Err(TryRecvError::Disconnected) => return,
            }
        }
        pads.service(Instant::now(), &mut out);
        pending.extend(out.drain(..));
        while pending.len() > PENDING {
            pending.pop_front();
        }
        while let Some(f) = pending.pop_front() {
            match feedback.try_send(f) {
                Ok(()) => {}
                Err(tokio::sync::mpsc::error::TrySendError::Full(f)) => {
                    pending.push_front(f);
                    break;
                }
                // Nobody listens any more; the queue's end follows.
                Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => pending.clear(),
            }
        }
    }
}
