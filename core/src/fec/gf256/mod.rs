//! GF(2^8) Reed-Solomon, byte-identical to the nanors code inside Moonlight clients.

mod code;
mod field;
mod kernel;
mod matrix;

pub use code::{Code, Codes, MAX_SHARDS};
pub use kernel::Backend;
