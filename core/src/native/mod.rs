//! punktfunk/1 data plane: GF(2^16) FEC over any frame size, AES-GCM, latency stamps; and
//! the audio datagrams beside the video ([`audio`]).
//! The wire format is specified in core/PROTOCOL.md.

pub mod audio;
pub mod bursts;
pub mod config;
pub mod header;
pub mod receiver;
pub mod recovery;
pub mod sender;

pub use config::StreamConfig;
pub use receiver::{FrameEvent, Receiver};
pub use sender::{Frame, Sender};
