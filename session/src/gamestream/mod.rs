//! The GameStream host: what stock Moonlight clients talk to.

pub mod control;
pub mod http;
pub mod identity;
pub mod rtsp;
pub mod tls;
pub mod xml;
