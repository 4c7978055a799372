//! The GameStream host: what stock Moonlight clients talk to.

pub mod identity;
pub mod pairing;
