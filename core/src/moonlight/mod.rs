//! The GameStream (Moonlight) wire formats.

pub mod annexb;
pub mod audio;
pub mod video;
