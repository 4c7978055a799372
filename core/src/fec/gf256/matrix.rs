//! Coefficient matrices: the Cauchy parity matrix Moonlight clients decode with, and
//! Gauss-Jordan inversion for recovery.

use super::field::{MUL_TABLE, inv};

/// A dense row-major matrix over GF(2^8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<u8>,
}

impl Matrix {
    pub fn zero(rows: usize, cols: usize) -> Self {
        Self { rows, cols, data: vec![0; rows * cols] }
    }

    /// nanors' parity rows: `M[j][i] = inv((P + i) ^ j)`. Depends on P, so encoder and decoder
    /// must agree on (D, P). Requires D + P <= 256 so that `(P + i) ^ j` never hits zero.
    pub fn cauchy(data: usize, parity: usize) -> Self {
        let mut m = Self::zero(parity, data);
        for j in 0..parity {
            for i in 0..data {
                m.data[j * data + i] = inv(((parity + i) ^ j) as u8);
            }
        }
        m
    }

    #[inline]
    pub fn get(&self, r: usize, c: usize) -> u8 {
        self.data[r * self.cols + c]
    }

    #[cfg(test)]
    pub fn row(&self, r: usize) -> &[u8] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }

    /// The inverse of a square matrix, or `None` if it is singular.
    pub fn inverted(&self) -> Option<Self> {
        assert_eq!(self.rows, self.cols);
        let n = self.rows;
        let mut a = self.clone();
        let mut out = Self::zero(n, n);
        for i in 0..n {
            out.data[i * n + i] = 1;
        }
        for col in 0..n {
            let pivot = (col..n).find(|&r| a.get(r, col) != 0)?;
            if pivot != col {
                for c in 0..n {
                    a.data.swap(pivot * n + c, col * n + c);
                    out.data.swap(pivot * n + c, col * n + c);
                }
            }
            let scale = &MUL_TABLE[inv(a.get(col, col)) as usize];
            for c in 0..n {
                a.data[col * n + c] = scale[a.data[col * n + c] as usize];
                out.data[col * n + c] = scale[out.data[col * n + c] as usize];
            }
            let (pivot_a, pivot_out) = (a.data[col * n..(col + 1) * n].to_vec(), out.data[col * n..(col + 1) * n].to_vec());
            for r in 0..n {
                let f = a.get(r, col);
                if r == col || f == 0 {
                    continue;
                }
                let t = &MUL_TABLE[f as usize];
                for (x, &p) in a.data[r * n..(r + 1) * n].iter_mut().zip(&pivot_a) {
                    *x ^= t[p as usize];
                }
                for (x, &p) in out.data[r * n..(r + 1) * n].iter_mut().zip(&pivot_out) {
                    *x ^= t[p as usize];
                }
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cauchy_rows_match_the_reference_vectors() {
        let m = Matrix::cauchy(4, 2);
        assert_eq!(m.row(0), [0x8e, 0xf4, 0x47, 0xa7]);
        assert_eq!(m.row(1), [0xf4, 0x8e, 0xa7, 0x47]);
        let m = Matrix::cauchy(10, 2);
        assert_eq!(m.row(0), [0x8e, 0xf4, 0x47, 0xa7, 0x7a, 0xba, 0xad, 0x9d, 0xdd, 0x98]);
    }

    #[test]
    fn inverse_times_matrix_is_identity() {
        use super::super::field::mul;
        let m = Matrix::cauchy(7, 7);
        let i = m.inverted().expect("Cauchy matrices are invertible");
        for r in 0..7 {
            for c in 0..7 {
                let v = (0..7).fold(0, |acc, k| acc ^ mul(i.get(r, k), m.get(k, c)));
                assert_eq!(v, u8::from(r == c));
            }
        }
    }

    #[test]
    fn singular_matrix_has_no_inverse() {
        let m = Matrix { rows: 2, cols: 2, data: vec![3, 3, 3, 3] };
        assert!(m.inverted().is_none());
    }
}
