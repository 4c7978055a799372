//! Arithmetic in GF(2^8) with the polynomial 0x11D and generator 2: the field nanors (inside
//! every Moonlight client) uses, so our parity is byte-identical to what clients expect.

const POLY: u16 = 0x11D;

const fn build_tables() -> ([u8; 256], [u8; 512]) {
    let mut log = [0u8; 256];
    let mut exp = [0u8; 512];
    let mut x: u16 = 1;
    let mut i = 0;
    while i < 255 {
        exp[i] = x as u8;
        exp[i + 255] = x as u8;
        log[x as usize] = i as u8;
        x <<= 1;
        if x & 0x100 != 0 {
            x ^= POLY;
        }
        i += 1;
    }
    (log, exp)
}

const TABLES: ([u8; 256], [u8; 512]) = build_tables();
const LOG: [u8; 256] = TABLES.0;
const EXP: [u8; 512] = TABLES.1;

#[inline]
pub fn mul(a: u8, b: u8) -> u8 {
    MUL_TABLE[a as usize][b as usize]
}

/// Multiplicative inverse; `inv(0)` is 0 (callers never ask for it on a valid matrix).
#[inline]
pub fn inv(a: u8) -> u8 {
    if a == 0 { 0 } else { EXP[255 - LOG[a as usize] as usize] }
}

const fn build_mul_table() -> [[u8; 256]; 256] {
    // const-evaluable twin of field::mul (carry-less multiply, reduce by 0x11D).
    let mut t = [[0u8; 256]; 256];
    let mut a = 0;
    while a < 256 {
        let mut b = 0;
        while b < 256 {
            let (mut x, mut y, mut p) = (a as u16, b as u16, 0u16);
            while y != 0 {
                if y & 1 != 0 {
                    p ^= x;
                }
                x <<= 1;
                if x & 0x100 != 0 {
                    x ^= 0x11D;
                }
                y >>= 1;
            }
            t[a][b] = p as u8;
            b += 1;
        }
        a += 1;
    }
    t
}

/// Every product, 64 KiB: row `c` multiplies by `c` with one lookup per byte.
pub static MUL_TABLE: [[u8; 256]; 256] = build_mul_table();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_nonzero_element_has_an_inverse() {
        for a in 1..=255u8 {
            assert_eq!(mul(a, inv(a)), 1, "a = {a:#x}");
        }
    }

    #[test]
    fn multiplication_matches_carryless_reduction() {
        fn slow(mut a: u8, mut b: u8) -> u8 {
            let mut p = 0u8;
            while b != 0 {
                if b & 1 != 0 {
                    p ^= a;
                }
                let carry = a & 0x80 != 0;
                a <<= 1;
                if carry {
                    a ^= (POLY & 0xFF) as u8;
                }
                b >>= 1;
            }
            p
        }
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                assert_eq!(mul(a, b), slow(a, b));
            }
        }
    }
}
