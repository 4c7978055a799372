//! A systematic (D, P) Reed-Solomon erasure code over GF(2^8), Moonlight-compatible.

use super::kernel::{Backend, Prepared};
use super::matrix::Matrix;
use crate::fec::FecError;

/// Moonlight's limit: D + P <= 255 whenever there is parity (nanors refuses more).
pub const MAX_SHARDS: usize = 255;

/// One (D, P) code: the parity matrix, expanded once for the fastest backend.
#[derive(Clone, Debug)]
pub struct Code {
    matrix: Matrix,
    encoder: Prepared,
    backend: Backend,
}

impl Code {
    /// The Cauchy code Moonlight clients use for video (and nanors' default).
    pub fn cauchy(data: usize, parity: usize) -> Result<Self, FecError> {
        Self::cauchy_on(Backend::detect(), data, parity)
    }

    /// As [`Code::cauchy`], on a given backend (for tests and benchmarks).
    pub fn cauchy_on(backend: Backend, data: usize, parity: usize) -> Result<Self, FecError> {
        if data == 0 || data + parity > MAX_SHARDS {
            return Err(FecError::BadShape { data, parity });
        }
        Ok(Self::with_matrix_on(backend, Matrix::cauchy(data, parity)))
    }

    /// A code with an explicit parity matrix (P rows of D coefficients): Moonlight audio uses a
    /// fixed 2x4 matrix that is not the Cauchy one.
    pub fn with_matrix(parity_rows: &[&[u8]]) -> Result<Self, FecError> {
        let data = parity_rows.first().map_or(0, |r| r.len());
        let parity = parity_rows.len();
        if data == 0 || data + parity > MAX_SHARDS || parity_rows.iter().any(|r| r.len() != data) {
            return Err(FecError::BadShape { data, parity });
        }
        let matrix = Matrix { rows: parity, cols: data, data: parity_rows.concat() };
        Ok(Self::with_matrix_on(Backend::detect(), matrix))
    }

    fn with_matrix_on(backend: Backend, matrix: Matrix) -> Self {
        Self { encoder: Prepared::new(backend, &matrix), matrix, backend }
    }

    pub fn data_shards(&self) -> usize {
        self.matrix.cols
    }

    pub fn parity_shards(&self) -> usize {
        self.matrix.rows
    }

    /// Computes all parity shards from the data shards (all of one length).
    pub fn encode(&self, data: &[&[u8]], parity: &mut [&mut [u8]]) {
        self.encoder.apply(data, parity, false);
    }

    /// Restores every missing data shard in place from the present ones.
    ///
    /// `shards` holds D data then P parity shards, all the same length; `present[i]` says
    /// which arrived. Parity shards used for recovery are overwritten (with syndromes);
    /// missing parity is not rebuilt. Fails without touching data if too few shards arrived.
    pub fn reconstruct(&self, shards: &mut [&mut [u8]], present: &[bool]) -> Result<(), FecError> {
        let (d, p) = (self.data_shards(), self.parity_shards());
        if shards.len() != d + p || present.len() != d + p {
            return Err(FecError::BadShape { data: shards.len(), parity: present.len() });
        }
        let len = shards[0].len();
        if shards.iter().any(|s| s.len() != len) {
            return Err(FecError::ShardLength);
        }
        let missing: Vec<usize> = (0..d).filter(|&i| !present[i]).collect();
        if missing.is_empty() {
            return Ok(());
        }
        let used: Vec<usize> = (0..p).filter(|&j| present[d + j]).take(missing.len()).collect();
        if used.len() < missing.len() {
            return Err(FecError::TooFewShards { needed: d, got: present.iter().filter(|&&x| x).count() });
        }
        let known: Vec<usize> = (0..d).filter(|&i| present[i]).collect();

        // For the used parity rows R: M[R][missing]·x = parity_R ^ M[R][known]·known.
        let sub = |cols: &[usize]| Matrix {
            rows: used.len(),
            cols: cols.len(),
            data: used.iter().flat_map(|&j| cols.iter().map(move |&i| self.matrix.get(j, i))).collect(),
        };
        let solve = sub(&missing).inverted().ok_or(FecError::Singular)?;
        let (data_half, parity_half) = shards.split_at_mut(d);

        // 1. Syndromes, in place over the used parity shards.
        {
            let inputs: Vec<&[u8]> = known.iter().map(|&i| &*data_half[i]).collect();
            let mut syn: Vec<&mut [u8]> =
                parity_half.iter_mut().enumerate().filter(|(j, _)| used.contains(j)).map(|(_, s)| &mut **s).collect();
            Prepared::new(self.backend, &sub(&known)).apply(&inputs, &mut syn, true);
        }
        // 2. Missing data = M[R][missing]^-1 · syndromes.
        let inputs: Vec<&[u8]> = used.iter().map(|&j| &*parity_half[j]).collect();
        let mut outs: Vec<&mut [u8]> = data_half.iter_mut().enumerate().filter(|(i, _)| !present[*i]).map(|(_, s)| &mut **s).collect();
        Prepared::new(self.backend, &solve).apply(&inputs, &mut outs, false);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference's shards: data byte b of shard i is 16·i + b + 1, 8 bytes each.
    fn reference_data(d: usize) -> Vec<Vec<u8>> {
        (0..d).map(|i| (0..8).map(|b| (16 * i + b + 1) as u8).collect()).collect()
    }

    fn parity_of(code: &Code, data: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let ins: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let mut par = vec![vec![0u8; data[0].len()]; code.parity_shards()];
        let mut outs: Vec<&mut [u8]> = par.iter_mut().map(Vec::as_mut_slice).collect();
        code.encode(&ins, &mut outs);
        par
    }

    #[test]
    fn video_test_vectors_match_nanors() {
        for backend in Backend::available() {
            let p = parity_of(&Code::cauchy_on(backend, 4, 2).unwrap(), &reference_data(4));
            assert_eq!(p[0], [0x92, 0x21, 0xbb, 0x5a, 0xc0, 0x73, 0xe9, 0xac]);
            assert_eq!(p[1], [0xc7, 0x74, 0xee, 0x0f, 0x95, 0x26, 0xbc, 0xf9]);
            let p = parity_of(&Code::cauchy_on(backend, 1, 2).unwrap(), &reference_data(1));
            assert_eq!(p[0], [0x8e, 0x01, 0x8f, 0x02, 0x8c, 0x03, 0x8d, 0x04]);
            assert_eq!(p[1], [0xf4, 0xf5, 0x01, 0xf7, 0x03, 0x02, 0xf6, 0xf3]);
            let p = parity_of(&Code::cauchy_on(backend, 10, 2).unwrap(), &reference_data(10));
            assert_eq!(p[0], [0xbd, 0xcc, 0xe3, 0x2e, 0x01, 0x70, 0x5f, 0xf7]);
            assert_eq!(p[1], [0x77, 0x06, 0x29, 0xe4, 0xcb, 0xba, 0x95, 0x3d]);
        }
    }

    #[test]
    fn audio_test_vector_matches_the_fixed_matrix() {
        let code = Code::with_matrix(&[&[0x77, 0x40, 0x38, 0x0e], &[0xc7, 0xa7, 0x0d, 0x6c]]).unwrap();
        let p = parity_of(&code, &reference_data(4));
        assert_eq!(p[0], [0x1b, 0x18, 0x19, 0x1e, 0x1f, 0x1c, 0x1d, 0x12]);
        assert_eq!(p[1], [0x91, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98]);
    }

    #[test]
    fn shapes_beyond_moonlight_limits_are_refused() {
        assert!(Code::cauchy(0, 2).is_err());
        assert!(Code::cauchy(200, 56).is_err());
        assert!(Code::cauchy(200, 55).is_ok());
    }

    #[test]
    fn too_few_shards_fails_without_touching_data() {
        let code = Code::cauchy(3, 1).unwrap();
        let mut shards = vec![vec![7u8; 4]; 4];
        let mut refs: Vec<&mut [u8]> = shards.iter_mut().map(Vec::as_mut_slice).collect();
        let err = code.reconstruct(&mut refs, &[false, false, true, true]).unwrap_err();
        assert!(matches!(err, FecError::TooFewShards { .. }));
        assert!(shards.iter().all(|s| s == &[7u8; 4]));
    }
}

/// Codes by shape, built on first use: Moonlight frames change (D, P) with their size, and
/// expanding a matrix costs about as much as encoding a small block.
#[derive(Default)]
pub struct Codes {
    codes: std::collections::HashMap<(usize, usize), Code>,
}

impl Codes {
    /// Bounds memory: there are at most ~255·128 shapes, but a stream uses a handful.
    const MAX: usize = 64;

    pub fn get(&mut self, data: usize, parity: usize) -> Result<&Code, FecError> {
        if !self.codes.contains_key(&(data, parity)) {
            if self.codes.len() >= Self::MAX {
                self.codes.clear();
            }
            self.codes.insert((data, parity), Code::cauchy(data, parity)?);
        }
        Ok(&self.codes[&(data, parity)])
    }
}

impl crate::assembly::Recover for Codes {
    fn recover(&mut self, data: usize, shards: &mut [&mut [u8]], present: &[bool]) -> Result<(), FecError> {
        self.get(data, shards.len() - data)?.reconstruct(shards, present)
    }
}
