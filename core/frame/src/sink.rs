//! Where finished frames go: a [`FrameSink`] running on its own native thread, fed through
//! a one-slot mailbox that keeps only the newest frame (drop-oldest, never a stale queue).

use crate::frame::{Frame, PixelFormat};
use crate::gpu::GpuSurfaces;
use parking_lot::{Condvar, Mutex};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Consumes frames on the sink thread. Returning an error stops the thread.
pub trait FrameSink: Send + 'static {
    fn consume(&mut self, frame: Frame) -> std::io::Result<()>;
    /// The format this sink would like frames in (read after each frame; the compositor's GPU
    /// engine converts to it, others send BGRX, which every sink takes).
    fn wants(&self) -> PixelFormat {
        PixelFormat::Bgrx8888
    }
    /// Surfaces of the sink's to draw frames into on the GPU, if it has any (read after each
    /// frame, like `wants`; an engine that cannot draw into them sends `wants` frames).
    fn surfaces(&self) -> Option<Arc<GpuSurfaces>> {
        None
    }
    /// How long the sink may go without a frame before [`FrameSink::idle`] is called (read
    /// after each frame and each call; `None`: never).
    fn idle_after(&self) -> Option<Duration> {
        None
    }
    /// No frame came for [`FrameSink::idle_after`] (a still picture makes none).
    fn idle(&mut self) -> std::io::Result<()> {
        Ok(())
    }
    /// Called once when the stream ends.
    fn finish(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<F: FnMut(Frame) -> std::io::Result<()> + Send + 'static> FrameSink for F {
    fn consume(&mut self, frame: Frame) -> std::io::Result<()> {
        self(frame)
    }
}

/// `sink`, asking for frames in `format` or drawn into `surfaces` (tests and benchmarks
/// stand in for an encoder so).
pub struct SinkWithWants<S> {
    pub format: PixelFormat,
    pub surfaces: Option<Arc<GpuSurfaces>>,
    pub sink: S,
}

impl<S: FrameSink> FrameSink for SinkWithWants<S> {
    fn consume(&mut self, frame: Frame) -> std::io::Result<()> {
        self.sink.consume(frame)
    }

    fn wants(&self) -> PixelFormat {
        self.format
    }

    fn surfaces(&self) -> Option<Arc<GpuSurfaces>> {
        self.surfaces.clone()
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.sink.finish()
    }
}

/// Writes every frame's raw pixels back to back: `ffmpeg -f rawvideo -pix_fmt bgr0 -s WxH`
/// (it asks for nothing else, so frames come as BGRX).
pub struct RawFileSink {
    out: BufWriter<File>,
}

impl RawFileSink {
    pub fn create(path: &Path) -> std::io::Result<Self> {
        Ok(Self { out: BufWriter::with_capacity(1 << 20, File::create(path)?) })
    }
}

impl FrameSink for RawFileSink {
    fn consume(&mut self, frame: Frame) -> std::io::Result<()> {
        let out = &mut self.out;
        let planes = frame.planes();
        frame
            .with_data(|data| {
                planes
                    .iter()
                    .flat_map(|p| (0..p.rows).map(move |y| p.offset + y * p.stride..p.offset + y * p.stride + p.row_bytes))
                    .try_for_each(|line| {
                        let line = data.get(line).ok_or_else(|| std::io::Error::other("frame smaller than its size"))?;
                        out.write_all(line)
                    })
            })
            .map_err(std::io::Error::other)?
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

#[derive(Default)]
struct Slot {
    frame: Option<Frame>,
    closed: bool,
    dropped: u64,
    /// What the sink said it wants after its last frame.
    wants: PixelFormat,
    surfaces: Option<Arc<GpuSurfaces>>,
}

/// The sink's thread and its mailbox.
pub struct SinkThread {
    mailbox: Mailbox,
    handle: Option<JoinHandle<std::io::Result<()>>>,
}

/// The sink thread's one-slot mailbox, as a frame source holds it: sources come and go (one
/// compositor after another), the sink and its stream stay.
#[derive(Clone)]
pub struct Mailbox {
    slot: Arc<(Mutex<Slot>, Condvar)>,
}

impl SinkThread {
    pub fn spawn(mut sink: impl FrameSink) -> Self {
        let slot = Arc::new((Mutex::new(Slot { wants: sink.wants(), surfaces: sink.surfaces(), ..Slot::default() }), Condvar::new()));
        let rx = Arc::clone(&slot);
        let handle = std::thread::Builder::new()
            .name("frame-sink".into())
            .spawn(move || {
                loop {
                    let idle_after = sink.idle_after();
                    let frame = {
                        let (lock, cv) = &*rx;
                        let mut s = lock.lock();
                        let mut idle = false;
                        while s.frame.is_none() && !s.closed && !idle {
                            match idle_after {
                                Some(limit) => idle = cv.wait_for(&mut s, limit).timed_out(),
                                None => cv.wait(&mut s),
                            }
                        }
                        match s.frame.take() {
                            Some(f) => f,
                            None if s.closed => break,
                            None => {
                                drop(s);
                                sink.idle()?;
                                continue;
                            }
                        }
                    };
                    sink.consume(frame)?;
                    let (wants, surfaces) = (sink.wants(), sink.surfaces());
                    let mut s = rx.0.lock();
                    (s.wants, s.surfaces) = (wants, surfaces);
                }
                sink.finish()
            })
            .expect("spawn sink thread");
        Self { mailbox: Mailbox { slot }, handle: Some(handle) }
    }

    /// Where sources deliver frames to this sink.
    pub fn mailbox(&self) -> &Mailbox {
        &self.mailbox
    }

    /// Delivers the last frame, stops the thread and returns the sink's result.
    pub fn finish(mut self) -> std::io::Result<()> {
        self.mailbox.close();
        self.handle.take().map_or(Ok(()), |h| h.join().unwrap_or_else(|_| Err(std::io::Error::other("sink thread panicked"))))
    }
}

impl Mailbox {
    /// Hands a frame over; a frame still waiting is replaced (and counted as dropped). The
    /// replaced frame's damage carries over, so the sink's picture of what changed since the
    /// last frame it saw stays complete.
    pub fn offer(&self, mut frame: Frame) {
        let (lock, cv) = &*self.slot;
        let mut s = lock.lock();
        if let Some(old) = s.frame.take() {
            s.dropped += 1;
            frame.damage.extend(old.damage);
        }
        s.frame = Some(frame);
        cv.notify_one();
    }

    /// The format the sink wants frames in.
    pub fn wants(&self) -> PixelFormat {
        self.slot.0.lock().wants
    }

    /// The surfaces the sink lends to draw into, if any.
    pub fn surfaces(&self) -> Option<Arc<GpuSurfaces>> {
        self.slot.0.lock().surfaces.clone()
    }

    /// Frames replaced before the sink took them.
    pub fn dropped(&self) -> u64 {
        self.slot.0.lock().dropped
    }

    fn close(&self) {
        let (lock, cv) = &*self.slot;
        lock.lock().closed = true;
        cv.notify_one();
    }
}

impl Drop for SinkThread {
    fn drop(&mut self) {
        self.mailbox.close();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{BufferPool, PixelFormat};
    use std::sync::mpsc;
    use std::time::Instant;

    fn frame(pool: &BufferPool, seq: u64) -> Frame {
        Frame {
            seq,
            width: 2,
            height: 1,
            stride: 8,
            format: PixelFormat::Bgrx8888,
            pixels: pool.take().unwrap().into(),
            damage: vec![crate::frame::Rect { x: seq as i32, y: 0, width: 1, height: 1 }],
            render_started_at: Instant::now(),
            rendered_at: Instant::now(),
            committed_at: Instant::now(),
        }
    }

    /// A sink that asked to hear of silence: told while no frame comes, and still handed the
    /// next frame and the end.
    #[test]
    fn an_idle_sink_is_told_and_still_gets_frames() {
        struct Quiet(mpsc::Sender<&'static str>);
        impl FrameSink for Quiet {
            fn consume(&mut self, _: Frame) -> std::io::Result<()> {
                self.0.send("frame").map_err(std::io::Error::other)
            }
            fn idle_after(&self) -> Option<Duration> {
                Some(Duration::from_millis(5))
            }
            fn idle(&mut self) -> std::io::Result<()> {
                self.0.send("idle").map_err(std::io::Error::other)
            }
        }
        let (tx, rx) = mpsc::channel();
        let sink = SinkThread::spawn(Quiet(tx));
        let wait = Duration::from_secs(5);
        assert_eq!(rx.recv_timeout(wait), Ok("idle"));
        assert_eq!(rx.recv_timeout(wait), Ok("idle"), "again while the silence lasts");
        let pool = BufferPool::new(8, 8);
        sink.mailbox().offer(frame(&pool, 1));
        assert!(rx.iter().take(50).any(|e| e == "frame"), "the frame after the silence");
        sink.finish().unwrap();
    }

    #[test]
    fn a_busy_sink_sees_the_newest_frame_and_buffers_come_back() {
        let pool = BufferPool::new(8, 8);
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let (seen_tx, seen_rx) = mpsc::channel();
        let sink = SinkThread::spawn(move |f: Frame| {
            seen_tx.send((f.seq, f.damage.len())).unwrap();
            gate_rx.recv().ok();
            Ok(())
        });
        sink.mailbox().offer(frame(&pool, 1));
        assert_eq!(seen_rx.recv().unwrap(), (1, 1));
        // The sink is busy with frame 1: 2 and 3 arrive, 2 is replaced by 3.
        sink.mailbox().offer(frame(&pool, 2));
        sink.mailbox().offer(frame(&pool, 3));
        gate_tx.send(()).unwrap();
        assert_eq!(seen_rx.recv().unwrap(), (3, 2), "frame 3 carries frame 2's damage too");
        gate_tx.send(()).unwrap();
        assert_eq!(sink.mailbox().dropped(), 1);
        sink.finish().unwrap();
        assert_eq!(pool.take().iter().count(), 1, "buffers were returned");
    }
}
