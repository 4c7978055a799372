//! punktfunk-streamer: everything after the compositor on the per-frame path.
//!
//! The frame type the compositor produces ([`frame`]), where frames go ([`sink`]: a native
//! thread fed through a one-slot, drop-oldest mailbox), colour conversion ([`convert`]),
//! encoders ([`encode`]) and the recording sink ([`record`]). The senders plug in as sinks:
//! [`gamestream`] holds the Moonlight wire formats (sans-IO) and its video sender; [`ipc`]
//! is the daemon ↔ compositor socket, and [`input`] the input events that cross it.
//! [`audio`] is the session's sound: PipeWire sink and microphone, packets, Opus.
//! [`native`] is the punktfunk/1 video sender; [`gpu`] the surfaces an encoder lends the
//! compositor so frames never leave the GPU.

pub mod audio;
pub mod convert;
pub mod encode;
pub mod gamestream;
pub mod input;
pub mod join;
pub mod latency;
pub mod native;
pub mod parity;
pub mod peer;
pub mod record;
pub mod repair;
pub mod stages;
pub mod stream;
#[cfg(test)]
mod testing;

// The frame contract with the sources, as the pipeline's own modules.
pub use punktfunk_frame::{BufferPool, Frame, PixelFormat, Pixels, PixelsGone, PooledBuffer, Rect, SharedPixels};
pub use punktfunk_frame::{frame, gpu, sink};
// The daemon ↔ stream messages are core's.
pub use punktfunk_core::ipc;
pub use record::RecordSink;
pub use sink::{FrameSink, RawFileSink, SinkThread, SinkWithWants};
