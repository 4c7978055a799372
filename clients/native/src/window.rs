//! The client's window (winit, drawn with softbuffer on the CPU): shows the newest decoded
//! picture scaled to the window, and turns keyboard, pointer and wheel events into the
//! host's input events. Runs the event loop on the main thread; the stream feeds it.

use crate::decode::Picture;
use parking_lot::Mutex;
use punktfunk_core::input::InputEvent;
use std::num::NonZeroU32;
use std::rc::Rc;
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;
use winit::application::ApplicationHandler;
use winit::event::{ElementState, MouseButton, MouseScrollDelta, WindowEvent};
use winit::event_loop::{ActiveEventLoop, EventLoop, EventLoopProxy};
use winit::platform::scancode::PhysicalKeyExtScancode;
use winit::window::{Window, WindowId};

/// What the stream tells the window.
#[derive(Debug)]
pub enum Wake {
    /// A new picture is in the shared slot.
    Picture,
    /// The stream is over: close.
    Done,
}

/// The newest picture, replaced as new ones arrive (the window draws what is current).
pub type Latest = Arc<Mutex<Option<Picture>>>;

pub fn event_loop() -> anyhow::Result<EventLoop<Wake>> {
    Ok(EventLoop::<Wake>::with_user_event().build()?)
}

pub type Proxy = EventLoopProxy<Wake>;

struct App {
    title: String,
    latest: Latest,
    input: UnboundedSender<InputEvent>,
    window: Option<Rc<Window>>,
    surface: Option<softbuffer::Surface<Rc<Window>, Rc<Window>>>,
    /// The size of the picture shown, for mapping the pointer into stream pixels.
    stream: (u32, u32),
}

/// Runs the window until the stream ends or the user closes it.
pub fn run(event_loop: EventLoop<Wake>, title: String, latest: Latest, input: UnboundedSender<InputEvent>) -> anyhow::Result<()> {
    let mut app = App { title, latest, input, window: None, surface: None, stream: (1, 1) };
    event_loop.run_app(&mut app)?;
    Ok(())
}

impl App {
    fn draw(&mut self) {
        let (Some(window), Some(surface)) = (&self.window, &mut self.surface) else { return };
        let size = window.inner_size();
        let (Some(w), Some(h)) = (NonZeroU32::new(size.width), NonZeroU32::new(size.height)) else { return };
        if surface.resize(w, h).is_err() {
            return;
        }
        let Ok(mut buffer) = surface.buffer_mut() else { return };
        match self.latest.lock().as_ref() {
            Some(p) => {
                self.stream = (p.width, p.height);
                scale_into(p, &mut buffer, size.width, size.height);
            }
            None => buffer.fill(0),
        }
        let _ = buffer.present();
    }

    fn send(&self, e: InputEvent) {
        let _ = self.input.send(e);
    }
}

/// Nearest-neighbour scaling of packed RGB into 0RGB pixels.
fn scale_into(p: &Picture, out: &mut [u32], w: u32, h: u32) {
    for y in 0..h {
        let sy = (u64::from(y) * u64::from(p.height) / u64::from(h)) as u32;
        let row = &p.rgb[(sy * p.width * 3) as usize..];
        for x in 0..w {
            let sx = (u64::from(x) * u64::from(p.width) / u64::from(w)) as usize * 3;
            out[(y * w + x) as usize] = u32::from(row[sx]) << 16 | u32::from(row[sx + 1]) << 8 | u32::from(row[sx + 2]);
        }
    }
}

impl ApplicationHandler<Wake> for App {
    fn resumed(&mut self, event_loop: &ActiveEventLoop) {
        if self.window.is_some() {
            return;
        }
        let created = event_loop
            .create_window(Window::default_attributes().with_title(self.title.clone()))
            .map(Rc::new)
            .map_err(anyhow::Error::from)
            .and_then(|window| {
                let context = softbuffer::Context::new(Rc::clone(&window)).map_err(|e| anyhow::anyhow!("{e}"))?;
                let surface = softbuffer::Surface::new(&context, Rc::clone(&window)).map_err(|e| anyhow::anyhow!("{e}"))?;
                Ok((window, surface))
            });
        match created {
            Ok((window, surface)) => (self.window, self.surface) = (Some(window), Some(surface)),
            Err(e) => {
                tracing::error!("cannot open a window: {e}");
                event_loop.exit();
            }
        }
    }

    fn user_event(&mut self, event_loop: &ActiveEventLoop, wake: Wake) {
        match wake {
            Wake::Picture => {
                if let Some(w) = &self.window {
                    w.request_redraw();
                }
            }
            Wake::Done => event_loop.exit(),
        }
    }

    fn window_event(&mut self, event_loop: &ActiveEventLoop, _: WindowId, event: WindowEvent) {
        match event {
            WindowEvent::CloseRequested => event_loop.exit(),
            WindowEvent::RedrawRequested => self.draw(),
            // Linux scancodes are evdev key codes: what the host's seat takes.
            WindowEvent::KeyboardInput { event, .. } if !event.repeat => {
                if let Some(code) = event.physical_key.to_scancode() {
                    self.send(InputEvent::Key { code, pressed: event.state == ElementState::Pressed });
                }
            }
            WindowEvent::CursorMoved { position, .. } => {
                let Some(window) = &self.window else { return };
                let size = window.inner_size();
                let (sw, sh) = self.stream;
                let x = position.x * f64::from(sw) / f64::from(size.width.max(1));
                let y = position.y * f64::from(sh) / f64::from(size.height.max(1));
                self.send(InputEvent::PointerMotion { x, y });
            }
            WindowEvent::MouseInput { state, button, .. } => {
                let code = match button {
                    MouseButton::Left => 0x110,
                    MouseButton::Right => 0x111,
                    MouseButton::Middle => 0x112,
                    MouseButton::Back => 0x116,
                    MouseButton::Forward => 0x115,
                    MouseButton::Other(_) => return,
                };
                self.send(InputEvent::Button { code, pressed: state == ElementState::Pressed });
            }
            WindowEvent::MouseWheel { delta, .. } => {
                // winit: positive is up/left; the host's v120: positive is down/right.
                let (dx, dy) = match delta {
                    MouseScrollDelta::LineDelta(x, y) => (f64::from(x) * 120.0, f64::from(y) * 120.0),
                    MouseScrollDelta::PixelDelta(p) => (p.x * 8.0, p.y * 8.0),
                };
                if dy != 0.0 {
                    self.send(InputEvent::Scroll { vertical: true, v120: (-dy).round() as i32 });
                }
                if dx != 0.0 {
                    self.send(InputEvent::Scroll { vertical: false, v120: (-dx).round() as i32 });
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_keeps_colours_where_they_belong() {
        // 2x1: red, blue → 4x2.
        let p = Picture { width: 2, height: 1, rgb: vec![255, 0, 0, 0, 0, 255], pixel_format: "yuv420p" };
        let mut out = vec![0u32; 8];
        scale_into(&p, &mut out, 4, 2);
        assert_eq!(out, [0xff0000, 0xff0000, 0x0000ff, 0x0000ff, 0xff0000, 0xff0000, 0x0000ff, 0x0000ff]);
    }
}
