//! The one hot loop of GF(2^8) coding: `out[r] (^)= Σ_c m[r][c] · in[c]` over whole shards.
//!
//! Written by hand because no crate does this with the register tiling that matters here:
//! fec-rs (and nanors) multiply one (coefficient, shard) pair at a time, streaming every
//! output shard through memory once per input. We keep up to 16 output rows in registers for
//! a 64-byte column and read each input byte once per row group, so the loop is bound by the
//! multiply units, not by memory. Backends are chosen at runtime; all give identical bytes.

use super::field::{MUL_TABLE, mul};
use super::matrix::Matrix;
use std::sync::LazyLock;

/// Which instruction set the kernel runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// 64 KiB product table, one byte at a time: runs everywhere.
    Scalar,
    /// AVX2 `vpshufb` nibble tables, 32 bytes at a time.
    Avx2,
    /// AVX-512 with GFNI: one `vgf2p8affineqb` multiplies 64 bytes by a constant.
    Avx512Gfni,
}

impl Backend {
    /// The fastest backend this CPU supports.
    pub fn detect() -> Self {
        *Self::available().last().expect("scalar is always available")
    }

    /// Whether this CPU can run the backend.
    pub fn is_supported(self) -> bool {
        match self {
            Self::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Self::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Self::Avx512Gfni => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("gfni")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// Every backend this CPU can run, slowest first.
    pub fn available() -> Vec<Self> {
        [Self::Scalar, Self::Avx2, Self::Avx512Gfni].into_iter().filter(|b| b.is_supported()).collect()
    }
}

/// A coefficient matrix expanded into the form its backend multiplies with.
#[derive(Clone, Debug)]
pub struct Prepared {
    backend: Backend,
    rows: usize,
    cols: usize,
    /// Scalar: unused. Avx2: 4 words (16-byte low- and high-nibble tables) per coefficient.
    /// Avx512Gfni: one 8x8 bit matrix per coefficient.
    words: Vec<u64>,
    coefs: Vec<u8>,
}

impl Prepared {
    /// Expands `m` for `backend`, or for the scalar kernel if this CPU cannot run `backend`
    /// (so the SIMD kernels below only ever run where their features exist).
    pub fn new(backend: Backend, m: &Matrix) -> Self {
        let backend = if backend.is_supported() { backend } else { Backend::Scalar };
        let words = match backend {
            Backend::Scalar => Vec::new(),
            Backend::Avx2 => m.data.iter().flat_map(|&c| NIBBLE_TABLES[c as usize]).collect(),
            Backend::Avx512Gfni => m.data.iter().map(|&c| AFFINE_MATRICES[c as usize]).collect(),
        };
        Self { backend, rows: m.rows, cols: m.cols, words, coefs: m.data.clone() }
    }

    /// `outputs[r] = Σ_c m[r][c]·inputs[c]`, or `^=` that sum when `accumulate`.
    ///
    /// Panics if the shard counts do not match the matrix or the shards differ in length;
    /// callers validate network input before it gets here.
    pub fn apply(&self, inputs: &[&[u8]], outputs: &mut [&mut [u8]], accumulate: bool) {
        assert_eq!(inputs.len(), self.cols, "input shard count");
        assert_eq!(outputs.len(), self.rows, "output shard count");
        let len = match (outputs.first(), inputs.first()) {
            (Some(o), _) => o.len(),
            (None, Some(i)) => i.len(),
            (None, None) => 0,
        };
        assert!(inputs.iter().all(|s| s.len() == len), "input shards differ in length");
        assert!(outputs.iter().all(|s| s.len() == len), "output shards differ in length");
        if self.rows == 0 {
            return;
        }
        if self.cols == 0 || len == 0 {
            if !accumulate {
                outputs.iter_mut().for_each(|o| o.fill(0));
            }
            return;
        }
        match self.backend {
            Backend::Scalar => self.apply_scalar(inputs, outputs, accumulate),
            // SAFETY: `Prepared::new` only keeps a SIMD backend after checking the CPU has it.
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => unsafe { x86::apply_avx2(self, inputs, outputs, accumulate) },
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512Gfni => unsafe { x86::apply_gfni(self, inputs, outputs, accumulate) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => self.apply_scalar(inputs, outputs, accumulate),
        }
    }

    fn apply_scalar(&self, inputs: &[&[u8]], outputs: &mut [&mut [u8]], accumulate: bool) {
        for (r, out) in outputs.iter_mut().enumerate() {
            if !accumulate {
                out.fill(0);
            }
            for (c, input) in inputs.iter().enumerate() {
                let table = &MUL_TABLE[self.coefs[r * self.cols + c] as usize];
                for (o, &x) in out.iter_mut().zip(input.iter()) {
                    *o ^= table[x as usize];
                }
            }
        }
    }
}

/// Per-coefficient SIMD operands, built once: expanding a recovery matrix is then a table
/// lookup per coefficient, not 64 field multiplications.
static NIBBLE_TABLES: LazyLock<Box<[[u64; 4]; 256]>> = LazyLock::new(|| Box::new(std::array::from_fn(|c| nibble_tables(c as u8))));
static AFFINE_MATRICES: LazyLock<Box<[u64; 256]>> = LazyLock::new(|| Box::new(std::array::from_fn(|c| affine_matrix(c as u8))));

/// `c·x` for the 16 low nibbles, then for the 16 high nibbles, as four little-endian words.
fn nibble_tables(c: u8) -> [u64; 4] {
    let mut bytes = [0u8; 32];
    for n in 0..16u8 {
        bytes[n as usize] = mul(c, n);
        bytes[16 + n as usize] = mul(c, n << 4);
    }
    std::array::from_fn(|i| u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap()))
}

/// The 8x8 bit matrix that `vgf2p8affineqb` applies to multiply by `c` in our field.
/// Output bit i is the parity of (byte 7-i of the matrix AND x), so byte 7-i holds, in bit k,
/// bit i of `c·2^k`.
fn affine_matrix(c: u8) -> u64 {
    let mut m = 0u64;
    for i in 0..8 {
        let mut row = 0u8;
        for k in 0..8 {
            row |= ((mul(c, 1 << k) >> i) & 1) << k;
        }
        m |= u64::from(row) << (8 * (7 - i));
    }
    m
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{MUL_TABLE, Prepared};
    use std::arch::x86_64::*;

    /// Spread `rows` evenly over groups of at most `max` and call `$f::<N>` for each group.
    macro_rules! for_row_groups {
        ($rows:expr, $max:expr, |$r0:ident, $n:ident| $body:ident!) => {{
            let groups = $rows.div_ceil($max);
            let per = $rows.div_ceil(groups);
            let mut $r0 = 0;
            while $r0 < $rows {
                let $n = per.min($rows - $r0);
                $body!($r0, $n);
                $r0 += $n;
            }
        }};
    }

    /// Monomorphize a row-group kernel over its accumulator count.
    macro_rules! dispatch {
        ($n:expr, $f:ident, $args:tt; $($k:literal)*) => {
            match $n {
                $($k => $f::<$k> $args,)*
                _ => unreachable!(),
            }
        };
    }

    #[target_feature(enable = "avx512f,avx512bw,gfni")]
    pub(super) unsafe fn apply_gfni(p: &Prepared, inputs: &[&[u8]], outputs: &mut [&mut [u8]], acc: bool) {
        let len = inputs[0].len();
        let mut off = 0;
        while off < len {
            let n = (len - off).min(64);
            let mask: __mmask64 = if n == 64 { !0 } else { (1u64 << n) - 1 };
            macro_rules! go {
                ($r0:expr, $n:expr) => {
                    unsafe {
                        dispatch!($n, gfni_rows, (p, inputs, outputs, $r0, off, mask, acc);
                            1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16)
                    }
                };
            }
            for_row_groups!(p.rows, 16, |r0, n| go!);
            off += 64;
        }
    }

    #[target_feature(enable = "avx512f,avx512bw,gfni")]
    #[inline]
    // `k` indexes accumulators, output rows and coefficients alike: an index reads clearest.
    #[allow(clippy::needless_range_loop)]
    unsafe fn gfni_rows<const N: usize>(
        p: &Prepared,
        inputs: &[&[u8]],
        outputs: &mut [&mut [u8]],
        r0: usize,
        off: usize,
        mask: __mmask64,
        acc: bool,
    ) {
        unsafe {
            let mut a = [_mm512_setzero_si512(); N];
            if acc {
                for k in 0..N {
                    a[k] = _mm512_maskz_loadu_epi8(mask, outputs[r0 + k].as_ptr().add(off).cast());
                }
            }
            let m = p.words.as_ptr();
            for (c, input) in inputs.iter().enumerate() {
                let x = _mm512_maskz_loadu_epi8(mask, input.as_ptr().add(off).cast());
                for k in 0..N {
                    let coef = _mm512_set1_epi64(*m.add((r0 + k) * p.cols + c) as i64);
                    a[k] = _mm512_xor_si512(a[k], _mm512_gf2p8affine_epi64_epi8::<0>(x, coef));
                }
            }
            for k in 0..N {
                _mm512_mask_storeu_epi8(outputs[r0 + k].as_mut_ptr().add(off).cast(), mask, a[k]);
            }
        }
    }

    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn apply_avx2(p: &Prepared, inputs: &[&[u8]], outputs: &mut [&mut [u8]], acc: bool) {
        let len = inputs[0].len();
        let whole = len - len % 32;
        let mut off = 0;
        while off < whole {
            macro_rules! go {
                ($r0:expr, $n:expr) => {
                    unsafe {
                        dispatch!($n, avx2_rows, (p, inputs, outputs, $r0, off, acc); 1 2 3 4 5 6 7 8)
                    }
                };
            }
            for_row_groups!(p.rows, 8, |r0, n| go!);
            off += 32;
        }
        if whole < len {
            // The ragged tail: at most 31 bytes a shard, done a byte at a time.
            for (r, out) in outputs.iter_mut().enumerate() {
                for b in whole..len {
                    let mut v = if acc { out[b] } else { 0 };
                    for (c, input) in inputs.iter().enumerate() {
                        v ^= MUL_TABLE[p.coefs[r * p.cols + c] as usize][input[b] as usize];
                    }
                    out[b] = v;
                }
            }
        }
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    // `k` indexes accumulators, output rows and coefficients alike: an index reads clearest.
    #[allow(clippy::needless_range_loop)]
    unsafe fn avx2_rows<const N: usize>(p: &Prepared, inputs: &[&[u8]], outputs: &mut [&mut [u8]], r0: usize, off: usize, acc: bool) {
        unsafe {
            let low = _mm256_set1_epi8(0x0f);
            let mut a = [_mm256_setzero_si256(); N];
            if acc {
                for k in 0..N {
                    a[k] = _mm256_loadu_si256(outputs[r0 + k].as_ptr().add(off).cast());
                }
            }
            let t = p.words.as_ptr().cast::<__m128i>();
            for (c, input) in inputs.iter().enumerate() {
                let x = _mm256_loadu_si256(input.as_ptr().add(off).cast());
                let lo = _mm256_and_si256(x, low);
                let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(x), low);
                for k in 0..N {
                    let i = ((r0 + k) * p.cols + c) * 2;
                    let tl = _mm256_broadcastsi128_si256(_mm_loadu_si128(t.add(i)));
                    let th = _mm256_broadcastsi128_si256(_mm_loadu_si128(t.add(i + 1)));
                    let prod = _mm256_xor_si256(_mm256_shuffle_epi8(tl, lo), _mm256_shuffle_epi8(th, hi));
                    a[k] = _mm256_xor_si256(a[k], prod);
                }
            }
            for k in 0..N {
                _mm256_storeu_si256(outputs[r0 + k].as_mut_ptr().add(off).cast(), a[k]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(backend: Backend, m: &Matrix, inputs: &[Vec<u8>], seed: &[Vec<u8>], acc: bool) -> Vec<Vec<u8>> {
        let p = Prepared::new(backend, m);
        let ins: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
        let mut outs = seed.to_vec();
        let mut refs: Vec<&mut [u8]> = outs.iter_mut().map(Vec::as_mut_slice).collect();
        p.apply(&ins, &mut refs, acc);
        outs
    }

    #[test]
    fn all_backends_agree_on_every_length_and_shape() {
        let mut rng = 0x1234_5678_9abc_def0u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng as u8
        };
        for &(rows, cols) in &[(1, 1), (2, 4), (3, 17), (17, 5), (43, 212), (8, 9)] {
            for len in [1, 15, 31, 32, 33, 63, 64, 65, 100, 1392] {
                let m = Matrix { rows, cols, data: (0..rows * cols).map(|_| next()).collect() };
                let inputs: Vec<Vec<u8>> = (0..cols).map(|_| (0..len).map(|_| next()).collect()).collect();
                let seed: Vec<Vec<u8>> = (0..rows).map(|_| (0..len).map(|_| next()).collect()).collect();
                for acc in [false, true] {
                    let want = run(Backend::Scalar, &m, &inputs, &seed, acc);
                    for b in Backend::available() {
                        assert_eq!(run(b, &m, &inputs, &seed, acc), want, "{b:?} {rows}x{cols} len {len} acc {acc}");
                    }
                }
            }
        }
    }
}
