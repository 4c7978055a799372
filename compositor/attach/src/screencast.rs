//! A desktop's screencast as frames: a PipeWire consumer of the node a compositor made for
//! the stream (Mutter's virtual monitor), on a thread of its own. Its format offer is what
//! sizes the monitor: BGRx (or BGRA) at the stream's size, any frame rate up to the
//! stream's (a fixed rate does not negotiate with Mutter). Buffers arrive only when the
//! screen changed; each is offered to the stream ([`Pictures`]; the sink repeats the last
//! picture on a still screen).

use crate::pictures::Pictures;
use anyhow::Context;
use pipewire as pw;
use punktfunk_core::mode::Mode;
use punktfunk_frame::Mailbox;
use pw::spa;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long the first picture may take (negotiation, the monitor's first paint).
const FIRST_FRAME: Duration = Duration::from_secs(10);

/// The consumer's thread; dropping it disconnects from the node.
pub struct Screencast {
    quit: pw::channel::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The desktop ended the screencast (the user stopped sharing, the shell restarted).
    ended: Arc<AtomicBool>,
}

/// What the consumer tells the thread that started it.
enum Event {
    FirstFrame,
    Failed(String),
}

impl Screencast {
    /// Consumes `node` at `mode`'s size into `mailbox`; returns once the first picture came.
    pub fn start(node: u32, mode: Mode, mailbox: Mailbox) -> anyhow::Result<Self> {
        let (quit, quit_rx) = pw::channel::channel::<()>();
        let (events, event) = mpsc::channel();
        let ended = Arc::new(AtomicBool::new(false));
        let gone = Arc::clone(&ended);
        let thread = std::thread::Builder::new().name("screencast".into()).spawn(move || {
            if let Err(e) = consume(node, mode, &mailbox, quit_rx, &events, &gone) {
                let _ = events.send(Event::Failed(e.to_string()));
            }
            gone.store(true, Ordering::Release);
        })?;
        let this = Self { quit, thread: Some(thread), ended };
        match event.recv_timeout(FIRST_FRAME) {
            Ok(Event::FirstFrame) => Ok(this),
            Ok(Event::Failed(why)) => anyhow::bail!("the desktop's screencast: {why}"),
            Err(_) => anyhow::bail!("the desktop's screencast gave no picture in {} s", FIRST_FRAME.as_secs()),
        }
    }
}

impl Screencast {
    /// Whether the desktop ended the screencast (nothing more will come).
    pub fn ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }
}

impl Drop for Screencast {
    fn drop(&mut self) {
        let _ = self.quit.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The negotiated picture: size and row stride come with each buffer.
#[derive(Clone, Copy, Default)]
struct Negotiated {
    width: u32,
    height: u32,
}

fn consume(
    node: u32,
    mode: Mode,
    mailbox: &Mailbox,
    quit: pw::channel::Receiver<()>,
    events: &mpsc::Sender<Event>,
    ended: &Arc<AtomicBool>,
) -> anyhow::Result<()> {
    pw::init();
    let mainloop = pw::main_loop::MainLoopRc::new(None)?;
    let context = pw::context::ContextRc::new(&mainloop, None)?;
    let core = context.connect_rc(None).context("connecting to PipeWire")?;
    let stopper = mainloop.clone();
    let _quit = quit.attach(mainloop.loop_(), move |()| stopper.quit());
    let props = pw::properties::properties! {
        *pw::keys::MEDIA_TYPE => "Video",
        *pw::keys::MEDIA_CATEGORY => "Capture",
        *pw::keys::MEDIA_ROLE => "Screen",
    };
    let stream = pw::stream::StreamRc::new(core, "punktfunk-attach", props)?;
    let negotiated = std::rc::Rc::new(std::cell::Cell::new(Negotiated::default()));
    let (seen, lost) = (std::rc::Rc::clone(&negotiated), mainloop.clone());
    let (mailbox, first) = (mailbox.clone(), events.clone());
    let (mut pictures, mut told) = (Pictures::default(), false);
    let _listener = stream
        .add_local_listener_with_user_data(())
        .param_changed(move |_, _, id, param| {
            let Some(param) = param.filter(|_| id == spa::param::ParamType::Format.as_raw()) else { return };
            let mut info = spa::param::video::VideoInfoRaw::new();
            if info.parse(param).is_ok() {
                let size = info.size();
                seen.set(Negotiated { width: size.width, height: size.height });
                tracing::info!(width = size.width, height = size.height, format = ?info.format(), "screencast negotiated");
            }
        })
        .state_changed(move |_, _, _, new| match new {
            pw::stream::StreamState::Error(e) => {
                tracing::warn!("screencast stream: {e}");
                lost.quit();
            }
            // The node went away (the desktop stopped the screencast).
            pw::stream::StreamState::Unconnected => {
                tracing::warn!("the desktop ended the screencast");
                lost.quit();
            }
            _ => {}
        })
        .process(move |stream, _| {
            let Some(mut buffer) = stream.dequeue_buffer() else { return };
            let Negotiated { width, height } = negotiated.get();
            let Some(data) = buffer.datas_mut().first_mut() else { return };
            let chunk = data.chunk();
            let (offset, size, stride) = (chunk.offset() as usize, chunk.size() as usize, chunk.stride().max(0) as usize);
            let row = width as usize * 4;
            // A buffer without a picture (the cursor moved, a corrupt one) is skipped; sizes
            // from the compositor bound every row copied, and only the size offered is taken
            // (our memory is sized by the stream, not by the other process).
            if (width, height) != (mode.width, mode.height) || size == 0 || stride < row {
                return;
            }
            let Some(bytes) = data.data().and_then(|b| b.get(offset..offset.saturating_add(size))) else { return };
            if bytes.len() < stride * (height as usize - 1) + row {
                return;
            }
            // The desktop says nothing of when it drew: arrival is the earliest time known.
            // A picture the sink had no room for is dropped; Mutter's next one is whole.
            if pictures.offer(&mailbox, (width, height), |y| &bytes[y * stride..], None, Instant::now()) && !told {
                told = true;
                let _ = first.send(Event::FirstFrame);
            }
        })
        .register()?;
    let format = format_pod(mode);
    let mut params = [spa::pod::Pod::from_bytes(&format).context("the format offer")?];
    stream.connect(
        spa::utils::Direction::Input,
        Some(node),
        // Never linked to another video source when this one goes.
        pw::stream::StreamFlags::AUTOCONNECT | pw::stream::StreamFlags::MAP_BUFFERS | pw::stream::StreamFlags::DONT_RECONNECT,
        &mut params,
    )?;
    mainloop.run();
    let _ = stream.disconnect();
    // Asked to quit or not: once here, nothing more comes.
    ended.store(true, Ordering::Release);
    Ok(())
}

/// BGRx or BGRA (B, G, R, X in memory: what the encoders read) at `mode`'s size, any rate up
/// to `mode`'s.
fn format_pod(mode: Mode) -> Vec<u8> {
    use spa::param::format::{FormatProperties, MediaSubtype, MediaType};
    use spa::param::video::VideoFormat;
    use spa::utils::{Fraction, Rectangle};
    let fps = mode.refresh_mhz.div_ceil(1000).max(1);
    let object = spa::pod::object!(
        spa::utils::SpaTypes::ObjectParamFormat,
        spa::param::ParamType::EnumFormat,
        spa::pod::property!(FormatProperties::MediaType, Id, MediaType::Video),
        spa::pod::property!(FormatProperties::MediaSubtype, Id, MediaSubtype::Raw),
        spa::pod::property!(FormatProperties::VideoFormat, Choice, Enum, Id, VideoFormat::BGRx, VideoFormat::BGRx, VideoFormat::BGRA),
        spa::pod::property!(FormatProperties::VideoSize, Rectangle, Rectangle { width: mode.width, height: mode.height }),
        spa::pod::property!(FormatProperties::VideoFramerate, Fraction, Fraction { num: 0, denom: 1 }),
        spa::pod::property!(
            FormatProperties::VideoMaxFramerate,
            Choice,
            Range,
            Fraction,
            Fraction { num: fps, denom: 1 },
            Fraction { num: 1, denom: 1 },
            Fraction { num: fps, denom: 1 }
        ),
    );
    spa::pod::serialize::PodSerializer::serialize(std::io::Cursor::new(Vec::new()), &spa::pod::Value::Object(object))
        .expect("a format pod serializes")
        .0
        .into_inner()
}
