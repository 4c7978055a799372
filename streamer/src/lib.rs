//! punktfunk-streamer: everything after the compositor on the per-frame path.
//!
//! For now: the frame type the compositor produces ([`frame`]) and where frames go
//! ([`sink`]): a native thread fed through a one-slot, drop-oldest mailbox. Encoders
//! (issue #4) and the senders plug in as sinks.

pub mod frame;
pub mod sink;

pub use frame::{BufferPool, Frame, PixelFormat, PooledBuffer, Rect};
pub use sink::{FrameSink, RawFileSink, SinkThread};
