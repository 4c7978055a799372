//! Session audio (ARCHITECTURE.md §1): each session gets a virtual PipeWire sink its apps play into
//! and a virtual microphone they record from ([`session`]). The sink's samples are cut into
//! packets ([`framer`]) and Opus-encoded at the layout the client decodes ([`layout`],
//! [`encoder`]) and sent in either protocol's format ([`sender`]). (Hosts without a
//! running PipeWire get a private one from the daemon.)

pub mod encoder;
pub mod framer;
pub mod queue;
pub mod sender;
pub mod session;

/// The channel layouts and their Opus shapes are core's (the daemon negotiates them).
pub use punktfunk_core::channels as layout;
pub use punktfunk_core::channels::Channels;
/// The PipeWire nodes and the Opus playout buffer are shared with the native client.
pub use punktfunk_sound::{node, playout};
pub use session::{SessionAudio, pipewire_reachable};
