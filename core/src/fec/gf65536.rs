//! GF(2^16) Reed-Solomon for punktfunk/1, over `reed-solomon-simd` (Leopard-style, O(n log n)).
//!
//! Thin wrappers that keep one encoder and one decoder alive for the whole session: the
//! crate's one-shot functions allocate every call, which costs more than the coding itself on
//! small blocks. `reset` reuses the buffers, so steady-state coding does not allocate.

use super::FecError;
use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

fn simd_err(e: reed_solomon_simd::Error) -> FecError {
    FecError::Simd(e.to_string())
}

/// Whether reed-solomon-simd can code a block of this shape (shard length must be even).
pub fn supports(data: usize, parity: usize, shard_len: usize) -> bool {
    data > 0 && shard_len > 0 && shard_len.is_multiple_of(2) && (parity == 0 || ReedSolomonEncoder::supports(data, parity))
}

/// A reusable GF(2^16) encoder.
#[derive(Default)]
pub struct Encoder {
    inner: Option<ReedSolomonEncoder>,
}

impl Encoder {
    /// Encodes one block: `data` shards in order, then `sink(j, parity_j)` for each parity shard.
    pub fn encode<'a>(
        &mut self,
        data: impl ExactSizeIterator<Item = &'a [u8]>,
        parity: usize,
        shard_len: usize,
        mut sink: impl FnMut(usize, &[u8]),
    ) -> Result<(), FecError> {
        let count = data.len();
        if parity == 0 {
            return Ok(());
        }
        if !supports(count, parity, shard_len) {
            return Err(FecError::BadShape { data: count, parity });
        }
        let enc = match &mut self.inner {
            Some(e) => {
                e.reset(count, parity, shard_len).map_err(simd_err)?;
                e
            }
            slot => slot.insert(ReedSolomonEncoder::new(count, parity, shard_len).map_err(simd_err)?),
        };
        for shard in data {
            enc.add_original_shard(shard).map_err(simd_err)?;
        }
        let out = enc.encode().map_err(simd_err)?;
        for (j, p) in out.recovery_iter().enumerate() {
            sink(j, p);
        }
        Ok(())
    }
}

/// A reusable GF(2^16) decoder.
#[derive(Default)]
pub struct Decoder {
    inner: Option<ReedSolomonDecoder>,
}

impl Decoder {
    /// Restores the missing data shards of one block. `shards` holds D data then P parity
    /// shards of `shard_len` bytes each; `present` says which arrived. Missing data shards are
    /// written in place.
    pub fn reconstruct(&mut self, data: usize, shards: &mut [&mut [u8]], present: &[bool]) -> Result<(), FecError> {
        let parity = shards.len().saturating_sub(data);
        let shard_len = shards.first().map_or(0, |s| s.len());
        if data > shards.len() || present.len() != shards.len() || !supports(data, parity, shard_len) {
            return Err(FecError::BadShape { data, parity });
        }
        if present[..data].iter().all(|&p| p) {
            return Ok(());
        }
        let got = present.iter().filter(|&&p| p).count();
        if got < data {
            return Err(FecError::TooFewShards { needed: data, got });
        }
        let dec = match &mut self.inner {
            Some(d) => {
                d.reset(data, parity, shard_len).map_err(simd_err)?;
                d
            }
            slot => slot.insert(ReedSolomonDecoder::new(data, parity, shard_len).map_err(simd_err)?),
        };
        for (i, shard) in shards.iter().enumerate().filter(|(i, _)| present[*i]) {
            if i < data {
                dec.add_original_shard(i, &**shard).map_err(simd_err)?;
            } else {
                dec.add_recovery_shard(i - data, &**shard).map_err(simd_err)?;
            }
        }
        let out = dec.decode().map_err(simd_err)?;
        for (i, restored) in out.restored_original_iter() {
            shards[i].copy_from_slice(restored);
        }
        Ok(())
    }
}

impl crate::assembly::Recover for Decoder {
    fn recover(&mut self, data: usize, shards: &mut [&mut [u8]], present: &[bool]) -> Result<(), FecError> {
        self.reconstruct(data, shards, present)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_reused_instances() {
        let (mut enc, mut dec) = (Encoder::default(), Decoder::default());
        for (d, p, len) in [(10, 3, 64), (522, 105, 1400), (3, 1, 2)] {
            let data: Vec<Vec<u8>> = (0..d).map(|i| (0..len).map(|b| (i * 7 + b) as u8).collect()).collect();
            let mut all = data.clone();
            all.resize(d + p, vec![0; len]);
            enc.encode(data.iter().map(Vec::as_slice), p, len, |j, s| all[d + j].copy_from_slice(s)).unwrap();
            let mut present = vec![true; d + p];
            for i in 0..p {
                present[i * 2 % d] = false;
                all[i * 2 % d].fill(0xAA);
            }
            let mut refs: Vec<&mut [u8]> = all.iter_mut().map(Vec::as_mut_slice).collect();
            dec.reconstruct(d, &mut refs, &present).unwrap();
            assert_eq!(&all[..d], &data[..]);
        }
    }

    #[test]
    fn odd_shard_length_is_refused() {
        let mut enc = Encoder::default();
        let shard = [0u8; 3];
        assert!(enc.encode([&shard[..]].into_iter(), 1, 3, |_, _| {}).is_err());
    }
}
