//! The GameStream (Moonlight) front end's sans-IO pieces and its video sender. The daemon
//! (`session/`) drives the handshake and control stream with these; the compositor process
//! runs [`video::VideoSender`] on its frame path.

pub mod control;
pub mod input;
pub mod keymap;
pub mod rtsp;
pub mod sdp;
pub mod video;
