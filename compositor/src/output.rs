//! The output's frames: the renderer, the mailbox its frames go to, and the frame clock that
//! says when to render and when clients get their frame callbacks.

use crate::frame_clock::FrameClock;
use crate::render::Renderer;
use crate::state::State;
use punktfunk_frame::Mailbox;
use smithay::desktop::layer_map_for_output;
use smithay::desktop::utils::{OutputPresentationFeedback, send_frames_surface_tree};
use smithay::input::pointer::CursorImageStatus;
use smithay::reexports::wayland_protocols::wp::presentation_time::server::wp_presentation_feedback;
use smithay::wayland::presentation::Refresh;
use std::time::{Duration, Instant};

/// The renderer and the sink thread, driven by the frame timer.
pub(crate) struct FrameOutput {
    pub renderer: Renderer,
    pub mailbox: Mailbox,
    pub presented: u64,
    pub clock: FrameClock,
}

impl FrameOutput {
    /// Runs whatever is due; returns when to wake next.
    pub fn wake(&mut self, state: &mut State) -> Instant {
        let now = Instant::now();
        if self.callbacks_due(now, state) {
            self.send_callbacks(state);
        }
        if self.clock.render_due(now) {
            // A commit made this cycle's frame already: what else changed goes with the next.
            let produced = self.clock.tick_renders() && self.render(state);
            self.clock.rendered(now, state.mode.frame_interval(), produced);
            if self.callbacks_due(now, state) {
                self.send_callbacks(state);
            }
        }
        self.clock.next_wake(now, self.renderer.backlogged(state))
    }

    /// This cycle's callbacks are due, and a client that double-buffers has a buffer free to
    /// draw into: none of its older ones is still with the consumer (the direct path).
    fn callbacks_due(&self, now: Instant, state: &State) -> bool {
        self.clock.callbacks_due(now) && !self.renderer.backlogged(state)
    }

    /// A client committed: the first commit after the callbacks measures the clients'
    /// drawing time and, while the cycle has no frame yet, is rendered at once.
    pub fn committed(&mut self, state: &mut State) {
        self.clock.committed(Instant::now());
        if self.clock.slot_open() && self.render(state) {
            self.clock.slot_taken();
        }
    }

    /// The consumer gave a client's buffer back: send callbacks held for it, and the
    /// buffer's release.
    pub fn returned(&mut self, state: &mut State) {
        if self.callbacks_due(Instant::now(), state) {
            self.send_callbacks(state);
        }
        let _ = state.dh.flush_clients();
    }

    /// Renders what changed; returns whether that made a frame.
    pub fn render(&mut self, state: &mut State) -> bool {
        if state.mode_changed {
            self.renderer.resize(state);
            state.mode_changed = false;
        }
        if std::mem::take(&mut state.redraw) {
            self.renderer.redraw(state);
        }
        state.update_keyboard_focus();
        let now = state.clock.now();
        let output = state.output.clone();
        let (wants, surfaces) = (self.mailbox.wants(), self.mailbox.surfaces());
        let committed = state.last_commit.take();
        let started = Instant::now();
        let produced = match self.renderer.render(state, wants, surfaces) {
            Ok(Some(mut frame)) => {
                frame.render_started_at = started;
                frame.committed_at = committed.unwrap_or(started);
                let mut feedback = OutputPresentationFeedback::new(&output);
                for w in state.space.elements() {
                    w.take_presentation_feedback(
                        &mut feedback,
                        |_, _| Some(output.clone()),
                        |_, _| wp_presentation_feedback::Kind::empty(),
                    );
                }
                self.presented += 1;
                feedback.presented(
                    now,
                    Refresh::fixed(state.mode.frame_interval()),
                    self.presented,
                    wp_presentation_feedback::Kind::empty(),
                );
                self.mailbox.offer(frame);
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::error!("render: {e}");
                false
            }
        };
        state.space.refresh();
        state.popups.cleanup();
        produced
    }

    /// One frame callback per surface per refresh: this is that refresh's.
    pub fn send_callbacks(&mut self, state: &mut State) {
        self.clock.callbacks_sent(Instant::now());
        let now = state.clock.now();
        let output = state.output.clone();
        let throttle = Some(Duration::ZERO);
        for w in state.space.elements() {
            w.send_frame(&output, now, throttle, |_, _| Some(output.clone()));
        }
        for layer in layer_map_for_output(&output).layers() {
            layer.send_frame(&output, now, throttle, |_, _| Some(output.clone()));
        }
        if let CursorImageStatus::Surface(s) = &state.cursor {
            send_frames_surface_tree(s, &output, now, throttle, |_, _| Some(output.clone()));
        }
        // Xwayland waits for frame callbacks on its surfaces like any client.
        state.xwayland.resolve(&state.dh);
        for (wl, _, _) in state.xwayland.visible() {
            send_frames_surface_tree(wl, &output, now, throttle, |_, _| Some(output.clone()));
        }
        let _ = state.dh.flush_clients();
    }
}
