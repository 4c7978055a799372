//! The GameStream (Moonlight) front end's sans-IO pieces and its video and audio senders. The daemon
//! (`session/`) drives the handshake and control stream with these; the compositor process
//! runs [`video::VideoSender`] on its frame path and [`audio::AudioSender`] beside it.

pub mod audio;
pub mod control;
pub mod input;
pub mod keymap;
pub mod rtsp;
pub mod sdp;
pub mod video;
