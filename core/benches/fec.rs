//! FEC, crypto and whole-path throughput. `cargo bench -p punktfunk-core --bench fec`.
//! Baselines run in the same process: fec-rs (Moonlight-exact, used by moonshine) for
//! GF(2^8), raw reed-solomon-simd for GF(2^16), ring and RustCrypto for AES-GCM.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use punktfunk_core::crypto::Gcm;
use punktfunk_core::fec::gf256::{Backend, Code};
use punktfunk_core::fec::gf65536;
use punktfunk_core::gamestream::annexb::without_sei;
use punktfunk_core::gamestream::video::{FrameType, VideoConfig, VideoFrame, VideoPacketizer};
use punktfunk_core::native::{Frame, Receiver, Sender, StreamConfig};
use std::hint::black_box;

const MOONLIGHT_SHARD: usize = 1392;

fn data(n: usize, len: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| (0..len).map(|b| (i * 131 + b * 7) as u8).collect()).collect()
}

fn gf256(c: &mut Criterion) {
    let mut g = c.benchmark_group("gf256_encode");
    for (d, p) in [(10, 2), (100, 20), (212, 43)] {
        let shards = data(d, MOONLIGHT_SHARD);
        let ins: Vec<&[u8]> = shards.iter().map(Vec::as_slice).collect();
        g.throughput(Throughput::Bytes((d * MOONLIGHT_SHARD) as u64));
        for backend in Backend::available() {
            let code = Code::cauchy_on(backend, d, p).unwrap();
            let mut par = vec![vec![0u8; MOONLIGHT_SHARD]; p];
            g.bench_function(BenchmarkId::new(format!("{backend:?}"), format!("{d}+{p}")), |b| {
                b.iter(|| {
                    let mut outs: Vec<&mut [u8]> = par.iter_mut().map(Vec::as_mut_slice).collect();
                    code.encode(black_box(&ins), &mut outs);
                })
            });
        }
        let rs = fec_rs::ReedSolomon::new(d, p).unwrap();
        let mut all = shards.clone();
        all.resize(d + p, vec![0; MOONLIGHT_SHARD]);
        g.bench_function(BenchmarkId::new("fec-rs", format!("{d}+{p}")), |b| b.iter(|| rs.encode(black_box(&mut all)).unwrap()));
    }
    g.finish();

    // Decode with every parity shard used (the worst case the receiver meets).
    let mut g = c.benchmark_group("gf256_decode_all_parity");
    for (d, p) in [(10, 2), (100, 20), (212, 43)] {
        let code = Code::cauchy(d, p).unwrap();
        let shards = data(d, MOONLIGHT_SHARD);
        let ins: Vec<&[u8]> = shards.iter().map(Vec::as_slice).collect();
        let mut par = vec![vec![0u8; MOONLIGHT_SHARD]; p];
        let mut outs: Vec<&mut [u8]> = par.iter_mut().map(Vec::as_mut_slice).collect();
        code.encode(&ins, &mut outs);
        let mut all = shards.clone();
        all.extend(par);
        let present: Vec<bool> = (0..d + p).map(|i| i >= p).collect();
        g.throughput(Throughput::Bytes((d * MOONLIGHT_SHARD) as u64));
        g.bench_function(BenchmarkId::new("ours", format!("{d}+{p}")), |b| {
            b.iter(|| {
                let mut work = all.clone();
                let mut refs: Vec<&mut [u8]> = work.iter_mut().map(Vec::as_mut_slice).collect();
                code.reconstruct(&mut refs, &present).unwrap();
            })
        });
        let rs = fec_rs::ReedSolomon::new(d, p).unwrap();
        g.bench_function(BenchmarkId::new("fec-rs", format!("{d}+{p}")), |b| {
            b.iter(|| {
                let mut work: Vec<Option<Vec<u8>>> = all.iter().enumerate().map(|(i, s)| present[i].then(|| s.clone())).collect();
                rs.reconstruct_data(&mut work).unwrap();
            })
        });
    }
    g.finish();
}

fn gf65536(c: &mut Criterion) {
    const SHARD: usize = 1400;
    // Blocks as StreamConfig::default() frames them: 5120x1440@240 at 1.4 Gbps is 0.73 MB a
    // frame (522 + 105 shards); a 10 MB frame spans several blocks. The raw
    // reed-solomon-simd baseline codes the same blocks in the same run.
    let cfg = StreamConfig::default();
    let blocks_of = |len: usize| -> Vec<(usize, usize)> {
        (0..cfg.blocks_for(len)).map(|b| cfg.block(cfg.block_data(len, b))).map(|s| (s.data, s.parity)).collect()
    };
    for (name, blocks) in [("0.73MB", blocks_of(522 * SHARD)), ("10MB", blocks_of(10_485_760))] {
        let bytes: usize = blocks.iter().map(|(d, _)| d * SHARD).sum();
        let data: Vec<Vec<Vec<u8>>> = blocks.iter().map(|&(d, _)| data(d, SHARD)).collect();
        let mut g = c.benchmark_group(format!("gf65536_{name}"));
        g.throughput(Throughput::Bytes(bytes as u64));
        g.sample_size(20);
        let mut enc = gf65536::Encoder::default();
        g.bench_function("encode_ours", |b| {
            b.iter(|| {
                for (shards, &(_, p)) in data.iter().zip(&blocks) {
                    enc.encode(shards.iter().map(Vec::as_slice), p, SHARD, |_, s| {
                        black_box(s);
                    })
                    .unwrap()
                }
            })
        });
        let mut raw = reed_solomon_simd::ReedSolomonEncoder::new(522, 105, SHARD).unwrap();
        g.bench_function("encode_raw_reed_solomon_simd", |b| {
            b.iter(|| {
                for (shards, &(d, p)) in data.iter().zip(&blocks) {
                    raw.reset(d, p, SHARD).unwrap();
                    for s in shards {
                        raw.add_original_shard(s).unwrap();
                    }
                    black_box(raw.encode().unwrap().recovery_iter().count());
                }
            })
        });
        // Decode with every parity shard standing in for a lost data shard.
        let mut coded: Vec<(Vec<Vec<u8>>, Vec<bool>, usize)> = Vec::new();
        for (shards, &(d, p)) in data.iter().zip(&blocks) {
            let mut all = shards.clone();
            all.resize(d + p, vec![0; SHARD]);
            enc.encode(shards.iter().map(Vec::as_slice), p, SHARD, |j, s| all[d + j].copy_from_slice(s)).unwrap();
            coded.push((all, (0..d + p).map(|i| i >= p).collect(), d));
        }
        let mut dec = gf65536::Decoder::default();
        g.bench_function("decode_all_parity_ours", |b| {
            b.iter(|| {
                for (all, present, d) in coded.iter_mut() {
                    let mut refs: Vec<&mut [u8]> = all.iter_mut().map(Vec::as_mut_slice).collect();
                    dec.reconstruct(*d, &mut refs, present).unwrap();
                }
            })
        });
        g.finish();
    }
}

fn aes_gcm(c: &mut Criterion) {
    let mut g = c.benchmark_group("aes128gcm_1400B");
    let mut buf = vec![0u8; 1400];
    g.throughput(Throughput::Bytes(1400));
    let ours = Gcm::new(&[1; 16]);
    g.bench_function("aws-lc-rs", |b| b.iter(|| ours.seal([2; 12], &[], black_box(&mut buf))));
    let ring_key = ring::aead::LessSafeKey::new(ring::aead::UnboundKey::new(&ring::aead::AES_128_GCM, &[1; 16]).unwrap());
    g.bench_function("ring", |b| {
        b.iter(|| {
            ring_key
                .seal_in_place_separate_tag(
                    ring::aead::Nonce::assume_unique_for_key([2; 12]),
                    ring::aead::Aad::empty(),
                    black_box(&mut buf),
                )
                .unwrap()
        })
    });
    use aes_gcm::aead::{AeadInPlace, KeyInit};
    let rc = aes_gcm::Aes128Gcm::new(&[1u8; 16].into());
    g.bench_function("rustcrypto-aes-gcm", |b| {
        b.iter(|| rc.encrypt_in_place_detached(&[2u8; 12].into(), &[], black_box(&mut buf)).unwrap())
    });
    g.finish();
}

fn whole_path(c: &mut Criterion) {
    // A 1080p frame at 50 Mbps/60 fps is ~100 kB; key frames are several times that.
    let frame = vec![0x5Au8; 250_000];
    let mut g = c.benchmark_group("packetize_fec20_encrypt_250kB");
    g.throughput(Throughput::Bytes(frame.len() as u64));
    let mut ml = VideoPacketizer::new(VideoConfig { packet_size: 1392, fec_percent: 20, min_parity: 2, key: Some([3; 16]) }).unwrap();
    let mut index = 0;
    g.bench_function("moonlight", |b| {
        b.iter(|| {
            index += 1;
            let f = VideoFrame { index, rtp_timestamp: 0, frame_type: FrameType::P, latency_100us: 0, bitstream: &frame };
            black_box(ml.packetize(&f).unwrap().count());
        })
    });
    let mut pf = Sender::new(StreamConfig { key: Some([3; 16]), ..StreamConfig::default() }).unwrap();
    g.bench_function("punktfunk1", |b| {
        b.iter(|| {
            index += 1;
            black_box(pf.packetize(&Frame { id: index, keyframe: false, repair: false, timestamp_us: 0, data: &frame }).unwrap().count());
        })
    });
    g.finish();
}

/// punktfunk/1's receiving side of the same frame: every datagram authenticated, decrypted,
/// counted (losses and bursts told from reordering) and put in its frame.
fn receive_path(c: &mut Criterion) {
    let frame = vec![0x5Au8; 250_000];
    let cfg = StreamConfig { key: Some([3; 16]), ..StreamConfig::default() };
    let mut g = c.benchmark_group("receive_decrypt_assemble_250kB");
    g.throughput(Throughput::Bytes(frame.len() as u64));
    let (mut tx, mut rx) = (Sender::new(cfg).unwrap(), Receiver::new(cfg).unwrap());
    let mut id = 0;
    g.bench_function("punktfunk1", |b| {
        b.iter_batched(
            || {
                id += 1;
                tx.packetize(&Frame { id, keyframe: false, repair: false, timestamp_us: 0, data: &frame })
                    .unwrap()
                    .iter()
                    .map(<[u8]>::to_vec)
                    .collect::<Vec<_>>()
            },
            |wire| {
                let mut delivered = 0;
                for d in &wire {
                    rx.push(d, |_| delivered += 1).unwrap();
                }
                black_box(delivered)
            },
            criterion::BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// GameStream key frames lose their SEI before packetizing: a scan for start codes, and a
/// copy when there is an SEI to drop.
fn key_frame_sei(c: &mut Criterion) {
    let unit = |header: &[u8], len: usize| -> Vec<u8> { [&[0, 0, 0, 1][..], header, &vec![0x5A; len]].concat() };
    let clean = [unit(&[0x40, 0x01], 24), unit(&[0x42, 0x01], 40), unit(&[0x44, 0x01], 6), unit(&[0x26, 0x01], 250_000)].concat();
    let with_sei =
        [unit(&[0x40, 0x01], 24), unit(&[0x42, 0x01], 40), unit(&[0x44, 0x01], 6), unit(&[0x4e, 0x01], 2400), unit(&[0x26, 0x01], 250_000)]
            .concat();
    let mut g = c.benchmark_group("key_frame_without_sei_250kB");
    g.throughput(Throughput::Bytes(clean.len() as u64));
    g.bench_function("no_sei", |b| b.iter(|| black_box(without_sei(black_box(&clean), true).len())));
    g.bench_function("sei_dropped", |b| b.iter(|| black_box(without_sei(black_box(&with_sei), true).len())));
    g.finish();
}

criterion_group!(benches, gf256, gf65536, aes_gcm, whole_path, receive_path, key_frame_sei);
criterion_main!(benches);
