//! Session audio (ARCHITECTURE.md §1): each session gets a virtual PipeWire sink its apps play into
//! and a virtual microphone they record from ([`session`]). The sink's samples are cut into
//! packets ([`framer`]) and Opus-encoded at the layout the client decodes ([`layout`],
//! [`encoder`]) and sent in either protocol's format ([`sender`]). Hosts without a
//! running PipeWire start a private one ([`server`]).

pub mod encoder;
pub mod framer;
pub mod layout;
pub mod node;
pub mod playout;
pub mod queue;
pub mod sender;
pub mod server;
pub mod session;

pub use layout::Channels;
pub use session::SessionAudio;
