//! Forward error correction: GF(2^8) for GameStream, GF(2^16) for punktfunk/1.

pub mod gf256;
pub mod gf65536;

/// Why a code could not be built or a block could not be recovered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FecError {
    #[error("unsupported code shape: {data} data + {parity} parity shards")]
    BadShape { data: usize, parity: usize },
    #[error("shards differ in length")]
    ShardLength,
    #[error("too few shards to recover: need {needed}, have {got}")]
    TooFewShards { needed: usize, got: usize },
    #[error("recovery matrix is singular")]
    Singular,
    #[error("reed-solomon-simd: {0}")]
    Simd(String),
}
