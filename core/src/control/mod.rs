//! The punktfunk/1 control plane, sans-IO: the messages host and client exchange over their
//! QUIC connection ([`messages`]), how they are framed on a stream ([`framing`]), PIN
//! pairing with SPAKE2 that binds both TLS certificates ([`pairing`]), the client's and the
//! host's sides as state machines ([`client`], [`host`]) and the host-client clock offset
//! ([`clock`]). The QUIC endpoints (quinn) live in the host daemon and the client; the wire
//! format is in core/PROTOCOL.md.

pub mod client;
pub mod clock;
pub mod framing;
pub mod host;
pub mod messages;
pub mod pairing;

/// ALPN of the control connection.
pub const ALPN: &[u8] = b"punktfunk/1";
pub const VERSION: u32 = 1;

/// Why a control state machine cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(transparent)]
    Framing(#[from] framing::FrameError),
    #[error("the peer broke the protocol: {0}")]
    Protocol(&'static str),
    #[error("not now: {0}")]
    State(&'static str),
}
