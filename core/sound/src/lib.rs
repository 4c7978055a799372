//! punktfunk-sound: sound I/O both ends of a stream share. The host's stream process makes a
//! session's sink and microphone with it; the native client plays the stream's sound and
//! records its microphone with it.
//!
//! - [`node`]: a virtual PipeWire node (sink or source) on a thread of its own.
//! - [`playout`]: a bounded buffer that decodes Opus packets and plays them out, silence
//!   when none arrived.

pub mod node;
pub mod playout;
