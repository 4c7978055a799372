//! punktfunk-frame: the contract between whatever produces a stream's frames (a frame source:
//! the headless compositor today) and the pipeline that encodes and sends them.
//!
//! - [`frame`]: a finished frame (CPU pixels in a pool buffer, a client's buffer, or a GPU
//!   surface on loan), its damage and when it was rendered.
//! - [`sink`]: where frames go: a [`FrameSink`] on its own native thread behind a one-slot,
//!   drop-oldest mailbox ([`SinkThread`]); the sink says which format it wants.
//! - [`layout`]: the YUV layouts encoders read and where their planes lie.
//! - [`source`]: what the pipeline asks of the source feeding it (input, mode, redraw, stop).
//! - [`gpu`]: surfaces an encoder lends for frames that never leave the GPU, and DRM node
//!   lookup.
//! - [`text`]: text a client typed, as the key chords of a source's keymap.
//!
//! Stream modes, colours and input events are core's (the daemon speaks them too).

pub mod frame;
pub mod gpu;
pub mod layout;
pub mod sink;
pub mod source;
pub mod text;

pub use frame::{BufferPool, Frame, PixelFormat, Pixels, PixelsGone, PooledBuffer, Rect, SharedPixels};
pub use punktfunk_core::colour::{Colour, Matrix, Range};
pub use punktfunk_core::input::InputEvent;
pub use punktfunk_core::mode::Mode;
pub use sink::{FrameSink, Mailbox, RawFileSink, SinkThread, SinkWithWants};
pub use source::{SourceCommand, SourceControl};
