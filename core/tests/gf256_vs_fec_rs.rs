//! Our GF(2^8) code against fec-rs (checked against nanors, the decoder inside Moonlight
//! clients): identical parity on every backend, and recovery from any loss within budget.

use proptest::prelude::*;
use punktfunk_core::fec::FecError;
use punktfunk_core::fec::gf256::{Backend, Code};

fn shards(d: usize, len: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut x = seed | 1;
    (0..d)
        .map(|_| {
            (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect()
        })
        .collect()
}

fn our_parity(code: &Code, data: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let ins: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    let mut par = vec![vec![0u8; data[0].len()]; code.parity_shards()];
    let mut outs: Vec<&mut [u8]> = par.iter_mut().map(Vec::as_mut_slice).collect();
    code.encode(&ins, &mut outs);
    par
}

fn fec_rs_parity(d: usize, p: usize, data: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let rs = fec_rs::ReedSolomon::new(d, p).unwrap();
    let mut all: Vec<Vec<u8>> = data.to_vec();
    all.resize(d + p, vec![0; data[0].len()]);
    rs.encode(&mut all).unwrap();
    all.split_off(d)
}

#[test]
fn parity_is_byte_identical_to_fec_rs_on_the_benchmark_shapes() {
    for (d, p) in [(10, 2), (100, 20), (212, 43), (1, 2), (253, 2)] {
        let data = shards(d, 1392, d as u64);
        let want = fec_rs_parity(d, p, &data);
        for b in Backend::available() {
            let code = Code::cauchy_on(b, d, p).unwrap();
            assert_eq!(our_parity(&code, &data), want, "({d},{p}) on {b:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn any_loss_within_budget_recovers_and_beyond_fails(
        d in 1usize..60,
        p in 0usize..20,
        len in 1usize..200,
        seed in any::<u64>(),
        lost in proptest::collection::vec(any::<proptest::sample::Index>(), 0..25),
    ) {
        prop_assume!(d + p <= 255);
        let data = shards(d, len, seed);
        let code = Code::cauchy(d, p).unwrap();
        let mut all = data.clone();
        all.extend(our_parity(&code, &data));
        let mut present = vec![true; d + p];
        for i in &lost {
            present[i.index(d + p)] = false;
        }
        for (s, &ok) in all.iter_mut().zip(&present) {
            if !ok {
                s.fill(0xEE);
            }
        }
        let arrived = present.iter().filter(|&&x| x).count();
        let mut refs: Vec<&mut [u8]> = all.iter_mut().map(Vec::as_mut_slice).collect();
        match code.reconstruct(&mut refs, &present) {
            Ok(()) => {
                prop_assert!(arrived >= d);
                prop_assert_eq!(&all[..d], &data[..]);
            }
            Err(e) => {
                prop_assert!(arrived < d);
                let is_too_few = matches!(e, FecError::TooFewShards { .. });
                prop_assert!(is_too_few);
            }
        }
    }
}
