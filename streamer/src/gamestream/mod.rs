//! GameStream's video and audio senders: the stream process runs [`video::VideoSender`] on
//! its frame path and an audio sender beside it. The wire formats and the handshake's parsers
//! are core's (`punktfunk_core::gamestream`).

pub mod audio;
pub mod video;
