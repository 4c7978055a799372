//! The compositor and its clients in one thread, stepped by the test: clients connect over
//! socket pairs, round-trips replace sleeps, and frames are rendered when the test says, so
//! what a test sees follows from what it did and not from timing.

use super::client::Client;
use crate::state::ClientState;
use crate::{Compositor, Config, EngineChoice, Mode, Pacing};
use punktfunk_frame::{Frame, SinkThread};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

/// What a test sees of a frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub width: u32,
    pub height: u32,
    pub centre: (u8, u8, u8),
    pub corner: (u8, u8, u8),
}

impl Seen {
    fn of(f: &Frame) -> Self {
        Self { width: f.width, height: f.height, centre: f.rgb_at(f.width / 2, f.height / 2), corner: f.rgb_at(1, 1) }
    }
}

pub struct Fixture {
    // Dropped in this order: the compositor before the sink thread its frames go to.
    compositor: Compositor,
    _sink: SinkThread,
    frames: Receiver<Seen>,
    clients: Vec<Client>,
    runtime: PathBuf,
}

/// How long a frame may take to cross the sink thread (it only summarises it): a bound for a
/// hang, not a pace.
const FRAME_WAIT: Duration = Duration::from_secs(10);
/// Steps a round-trip may take before the test fails instead of spinning.
const MAX_STEPS: usize = 1000;

impl Fixture {
    /// A compositor at `mode` compositing with pixman, no Xwayland, no session command, no
    /// cursor: only what the test's clients draw.
    pub fn new(mode: &str) -> Self {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let runtime = std::env::temp_dir().join(format!("pf-fixture-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
        std::fs::create_dir_all(&runtime).expect("runtime dir");
        let mut config = Config::new(mode.parse().expect("a mode"));
        (config.renderer, config.xwayland, config.show_cursor) = (EngineChoice::Pixman, false, false);
        config.runtime_dir = Some(runtime.clone());
        let (tx, frames) = mpsc::channel();
        let sink = SinkThread::spawn(move |f: Frame| {
            let _ = tx.send(Seen::of(&f));
            Ok(())
        });
        let compositor = Compositor::new(&config, sink.mailbox(), None, Pacing::Caller).expect("compositor");
        Self { compositor, _sink: sink, frames, clients: Vec::new(), runtime }
    }

    /// Connects a client and binds its globals; returns its index.
    pub fn add_client(&mut self) -> usize {
        let (server, client) = UnixStream::pair().expect("socket pair");
        self.compositor.state.dh.insert_client(server, Arc::new(ClientState::default())).expect("client inserted");
        self.clients.push(Client::new(client));
        let id = self.clients.len() - 1;
        self.roundtrip(id);
        id
    }

    pub fn client(&mut self, id: usize) -> &mut Client {
        &mut self.clients[id]
    }

    /// Disconnects a client, as a crash would.
    pub fn kill_client(&mut self, id: usize) {
        let _ = self.clients.remove(id);
        self.dispatch();
    }

    /// One step of the compositor and of every client, none waiting.
    pub fn dispatch(&mut self) {
        let c = &mut self.compositor;
        c.event_loop.dispatch(Duration::ZERO, &mut c.state).expect("compositor dispatch");
        let _ = c.state.dh.flush_clients();
        for client in &mut self.clients {
            client.dispatch();
        }
    }

    /// Steps until the compositor has handled everything client `id` sent, and the client
    /// everything the compositor answered.
    pub fn roundtrip(&mut self, id: usize) {
        let done = self.clients[id].sync();
        for _ in 0..MAX_STEPS {
            self.dispatch();
            if done.load(Ordering::Acquire) {
                return;
            }
        }
        panic!("client {id}'s round-trip did not finish");
    }

    /// Renders the output now, as the frame timer would; `None` when nothing changed.
    pub fn render(&mut self) -> Option<Seen> {
        let c = &mut self.compositor;
        let before = c.frames.borrow().presented;
        c.frames.borrow_mut().render(&mut c.state);
        let _ = c.state.dh.flush_clients();
        (c.frames.borrow().presented > before).then(|| self.frames.recv_timeout(FRAME_WAIT).expect("the rendered frame"))
    }

    /// Switches the output's mode, as a client resuming at another one does.
    pub fn set_mode(&mut self, mode: &str) {
        self.compositor.state.set_mode(mode.parse::<Mode>().expect("a mode"));
    }

    /// Frame callbacks due at this refresh go out, as the frame clock sends them.
    pub fn send_frame_callbacks(&mut self) {
        let c = &mut self.compositor;
        c.frames.borrow_mut().send_callbacks(&mut c.state);
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.runtime);
    }
}
