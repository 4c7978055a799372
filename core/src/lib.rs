//! punktfunk-core: the transport every punktfunk host and client links.
//!
//! Sans-IO, like quinn-proto and rustls: bytes and times go in, datagrams, deadlines and
//! events come out. No sockets, threads, clocks or async in here.
//!
//! - [`fec`]: GF(2^8) Reed-Solomon byte-identical to Moonlight's, and GF(2^16) for punktfunk/1.
//! - [`gamestream`]: Moonlight's protocol (core/GAMESTREAM.md): video and audio RTP
//!   packetizers and depacketizers, RTSP, SDP, control and input messages.
//! - [`native`]: the punktfunk/1 data plane, [`control`] its control messages and pairing
//!   (core/PROTOCOL.md); [`input`] the input events clients send, [`gamepad`] their
//!   controllers (both protocols).
//! - [`mode`], [`colour`], [`channels`] and [`stream`]: what a stream carries (size, refresh,
//!   YUV matrix and range, sound layout, codec) and what each protocol negotiated for it;
//!   [`ipc`] the daemon ↔ stream process messages that carry them.
//! - [`crypto`], [`pacer`], [`stats`], [`throttle`] (how often to report), and [`ffi`], the C ABI.

pub mod assembly;
pub mod channels;
pub mod colour;
pub mod control;
pub mod crypto;
pub mod datagrams;
pub mod fec;
pub mod fec_tuner;
pub mod ffi;
pub mod gamepad;
pub mod gamestream;
pub mod input;
pub mod ipc;
#[cfg(feature = "logging")]
pub mod logging;
pub mod mode;
pub mod native;
pub mod pacer;
pub mod stages;
pub mod stats;
pub mod stream;
pub mod throttle;

pub use datagrams::Datagrams;
pub use stats::Stats;
