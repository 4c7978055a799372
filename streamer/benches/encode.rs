//! Per-frame colour conversion and software encoding, median and p99, with swscale's
//! default (bicubic) BGRX→NV12 as the baseline in the same run.
//!
//! `cargo bench -p punktfunk-streamer --bench encode`

mod common;

use common::{frame, stats};
use ffmpeg_next as ff;
use punktfunk_streamer::convert::{bgrx_to_yuv420, Colour, Plane, Yuv420};
use punktfunk_streamer::encode::{Backend, Codec, EncoderConfig, FfmpegEncoder, VideoEncoder};
use punktfunk_streamer::BufferPool;
use std::time::Instant;

fn main() {
    ff::init().unwrap();
    ff::util::log::set_level(ff::util::log::Level::Error);
    println!("| case | median | p99 |");
    println!("|---|---|---|");
    for (w, h) in [(1280u32, 720u32), (1920, 1080)] {
        let pool = BufferPool::new((w * h * 4) as usize, 2);
        let f = frame(&pool, w, h, 1);
        // Ours (yuv crate, one thread).
        let (mut y, mut uv) = (vec![0u8; (w * h) as usize], vec![0u8; (w * h / 2) as usize]);
        let ours: Vec<f64> = (0..200)
            .map(|_| {
                let t = Instant::now();
                let out = Yuv420::Nv12 { y: Plane { data: &mut y, stride: w as usize }, uv: Plane { data: &mut uv, stride: w as usize } };
                bgrx_to_yuv420(&f, Colour::default(), out).unwrap();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        // swscale, default flags, same frame (copied into an AVFrame once, outside the timing).
        let mut src = ff::frame::Video::new(ff::format::Pixel::BGRZ, w, h);
        let stride = src.stride(0);
        f.with_data(|d| {
            for row in 0..h as usize {
                src.data_mut(0)[row * stride..row * stride + w as usize * 4].copy_from_slice(&d[row * w as usize * 4..(row + 1) * w as usize * 4]);
            }
        })
        .unwrap();
        let mut dst = ff::frame::Video::new(ff::format::Pixel::NV12, w, h);
        let mut sws = ff::software::scaling::Context::get(ff::format::Pixel::BGRZ, w, h, ff::format::Pixel::NV12, w, h, ff::software::scaling::Flags::BICUBIC).unwrap();
        let swscale: Vec<f64> = (0..50)
            .map(|_| {
                let t = Instant::now();
                sws.run(&src, &mut dst).unwrap();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        let (o50, o99) = stats(ours);
        let (s50, s99) = stats(swscale);
        println!("| {w}x{h} BGRX→NV12, ours (yuv crate, 1 thread) | {o50:.3} ms | {o99:.3} ms |");
        println!("| {w}x{h} BGRX→NV12, swscale default (bicubic) | {s50:.3} ms | {s99:.3} ms |");
        println!("| {w}x{h} ratio swscale / ours | {:.1}x | |", s50 / o50);
        drop(f);
        for codec in [Codec::H264, Codec::Hevc] {
            let mut enc = FfmpegEncoder::new(Backend::Software, EncoderConfig::new(codec, w, h, 60_000, 20_000_000)).unwrap();
            let (mut conv, mut encode, mut total) = (Vec::new(), Vec::new(), Vec::new());
            for n in 0..240 {
                let f = frame(&pool, w, h, n);
                let e = enc.encode(&f, n == 0).unwrap().expect("one in, one out");
                if n >= 30 {
                    conv.push(f64::from(e.convert_us) / 1e3);
                    encode.push(f64::from(e.encode_us) / 1e3);
                    total.push(f64::from(e.convert_us + e.encode_us) / 1e3);
                }
            }
            let name = match codec {
                Codec::H264 => "x264",
                Codec::Hevc => "x265",
            };
            for (what, v) in [("convert", conv), ("encode", encode), ("convert + encode", total)] {
                let (m, p) = stats(v);
                println!("| {w}x{h}@60 20 Mbit/s {name} ultrafast/zerolatency, {what} | {m:.3} ms | {p:.3} ms |");
            }
        }
    }
}
