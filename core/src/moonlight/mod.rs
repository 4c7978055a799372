//! The GameStream (Moonlight) wire formats.

pub mod audio;
pub mod video;
