//! Per-frame colour conversion (8 and 10 bits) and software encoding, median and p99, with
//! swscale's default (bicubic) conversion as the baseline in the same run.
//!
//! `cargo bench -p punktfunk-streamer --bench encode`

mod common;

use common::{frame, stats};
use ffmpeg_next as ff;
use punktfunk_streamer::convert::{Colour, Layout, Plane, Yuv, bgrx_to_ten_bit_scalar, bgrx_to_yuv, frame_rows_to_yuv};
use punktfunk_streamer::encode::{Backend, Codec, EncoderConfig, FfmpegEncoder, VideoEncoder, software};
use punktfunk_streamer::{BufferPool, Frame, PixelFormat};
use std::time::Instant;

fn main() {
    ff::init().unwrap();
    ff::util::log::set_level(ff::util::log::Level::Error);
    println!("| case | median | p99 |");
    println!("|---|---|---|");
    for (w, h) in [(1280u32, 720u32), (1920, 1080)] {
        let pool = BufferPool::new((w * h * 4) as usize, 2);
        let f = frame(&pool, w, h, 1);
        let (s, c) = (w as usize, Colour::default());
        // Ours (yuv crate, one thread).
        let (mut y, mut uv) = (vec![0u8; (w * h) as usize], vec![0u8; (w * h / 2) as usize]);
        let ours = timed(200, || {
            bgrx_to_yuv(&f, c, Yuv::Nv12 { y: Plane { data: &mut y, stride: s }, uv: Plane { data: &mut uv, stride: s } }).unwrap()
        });
        // 4:4:4: full-resolution chroma planes.
        let (mut y8, mut u8_, mut v8) = (vec![0u8; (w * h) as usize], vec![0u8; (w * h) as usize], vec![0u8; (w * h) as usize]);
        let i444 = timed(200, || {
            bgrx_to_yuv(
                &f,
                c,
                Yuv::I444 {
                    y: Plane { data: &mut y8, stride: s },
                    u: Plane { data: &mut u8_, stride: s },
                    v: Plane { data: &mut v8, stride: s },
                },
            )
            .unwrap()
        });
        // 10 bits (HEVC Main10): x265's planar I010 and the GPU encoders' P010.
        let (mut y16, mut u16_, mut v16, mut uv16) = (
            vec![0u8; (w * h * 2) as usize],
            vec![0u8; (w * h / 2) as usize],
            vec![0u8; (w * h / 2) as usize],
            vec![0u8; (w * h) as usize],
        );
        let i010 = timed(200, || {
            bgrx_to_yuv(
                &f,
                c,
                Yuv::I010 {
                    y: Plane { data: &mut y16, stride: 2 * s },
                    u: Plane { data: &mut u16_, stride: s },
                    v: Plane { data: &mut v16, stride: s },
                },
            )
            .unwrap()
        });
        let p010 = timed(200, || {
            bgrx_to_yuv(&f, c, Yuv::P010 { y: Plane { data: &mut y16, stride: 2 * s }, uv: Plane { data: &mut uv16, stride: 2 * s } })
                .unwrap()
        });
        // The same with the scalar kernel CPUs without AVX2 get (the crate's is wrong there).
        let p010_scalar = timed(50, || {
            bgrx_to_ten_bit_scalar(
                &f,
                c,
                Yuv::P010 { y: Plane { data: &mut y16, stride: 2 * s }, uv: Plane { data: &mut uv16, stride: 2 * s } },
            )
            .unwrap()
        });
        // swscale, default flags, same frame (copied into an AVFrame once, outside the timing).
        let mut src = ff::frame::Video::new(ff::format::Pixel::BGRZ, w, h);
        let stride = src.stride(0);
        f.with_data(|d| {
            for row in 0..h as usize {
                src.data_mut(0)[row * stride..row * stride + w as usize * 4]
                    .copy_from_slice(&d[row * w as usize * 4..(row + 1) * w as usize * 4]);
            }
        })
        .unwrap();
        let swscale_to = |to: ff::format::Pixel| {
            let mut dst = ff::frame::Video::new(to, w, h);
            let mut sws =
                ff::software::scaling::Context::get(ff::format::Pixel::BGRZ, w, h, to, w, h, ff::software::scaling::Flags::BICUBIC)
                    .unwrap();
            timed(50, || sws.run(&src, &mut dst).unwrap())
        };
        let (swscale, swscale10) = (swscale_to(ff::format::Pixel::NV12), swscale_to(ff::format::Pixel::YUV420P10LE));
        // A frame the GPU converted already: the encoder copies its planes in.
        let nv12 = PixelFormat::Yuv { layout: Layout::Nv12, colour: c };
        let yuv_pool = BufferPool::new(nv12.frame_len(w, h), 1);
        let mut converted = yuv_pool.take().unwrap();
        bgrx_to_yuv(&f, c, Yuv::in_buffer(Layout::Nv12, w, h, converted.as_mut_slice()).unwrap()).unwrap();
        let g = Frame {
            seq: f.seq,
            width: w,
            height: h,
            stride: s,
            format: nv12,
            pixels: converted.into(),
            damage: f.damage.clone(),
            render_started_at: f.render_started_at,
            rendered_at: f.rendered_at,
            committed_at: f.committed_at,
        };
        let copy = timed(200, || {
            frame_rows_to_yuv(&g, c, Yuv::Nv12 { y: Plane { data: &mut y, stride: s }, uv: Plane { data: &mut uv, stride: s } }, 0..h)
                .unwrap()
        });
        let (o50, o99) = stats(ours);
        let (s50, s99) = stats(swscale);
        println!("| {w}x{h} BGRX→NV12, ours (yuv crate, 1 thread) | {o50:.3} ms | {o99:.3} ms |");
        println!("| {w}x{h} BGRX→NV12, swscale default (bicubic) | {s50:.3} ms | {s99:.3} ms |");
        println!("| {w}x{h} ratio swscale / ours | {:.1}x | |", s50 / o50);
        let (c50, c99) = stats(copy);
        println!("| {w}x{h} NV12 frame converted already (on the GPU): copied in | {c50:.3} ms | {c99:.3} ms |");
        println!("| {w}x{h} ratio ours / copy | {:.1}x | |", o50 / c50);
        let ((i50, i99), (p50, p99), (t50, t99), (f50, f99)) = (stats(i010), stats(p010), stats(swscale10), stats(i444));
        println!("| {w}x{h} BGRX→I444 (4:4:4), ours | {f50:.3} ms | {f99:.3} ms |");
        println!("| {w}x{h} BGRX→I010 (10-bit, x265), ours | {i50:.3} ms | {i99:.3} ms |");
        println!("| {w}x{h} BGRX→P010 (10-bit, NVENC/VAAPI), ours | {p50:.3} ms | {p99:.3} ms |");
        let (q50, q99) = stats(p010_scalar);
        println!("| {w}x{h} BGRX→P010, scalar kernel (CPUs without AVX2) | {q50:.3} ms | {q99:.3} ms |");
        println!("| {w}x{h} ratio scalar / SIMD kernel, P010 | {:.1}x | |", q50 / p50);
        println!("| {w}x{h} BGRX→yuv420p10le, swscale default (bicubic) | {t50:.3} ms | {t99:.3} ms |");
        println!("| {w}x{h} ratio swscale / ours, 10-bit | {:.1}x | |", t50 / i50);
        drop(f);
        // H.264 three ways in the same run: through FFmpeg's libx264 wrapper (what streams
        // used before), libx264 called directly (what they use now), and directly keeping
        // older pictures for reference invalidation (a client that invalidates).
        let mut h264 = Vec::new();
        for (codec, ten_bit, yuv444, via) in [
            (Codec::H264, false, false, Via::Ffmpeg),
            (Codec::H264, false, false, Via::Direct),
            (Codec::H264, false, false, Via::Invalidating),
            (Codec::H264, false, true, Via::Direct),
            (Codec::Hevc, false, false, Via::Ffmpeg),
            (Codec::Hevc, true, false, Via::Ffmpeg),
            (Codec::Av1, false, false, Via::Ffmpeg),
        ] {
            let mut config = EncoderConfig::new(codec, w, h, 60_000, 20_000_000);
            (config.format.ten_bit, config.format.yuv444) = (ten_bit, yuv444);
            config.invalidation = via == Via::Invalidating;
            let mut enc: Box<dyn VideoEncoder> = match via {
                Via::Ffmpeg => Box::new(FfmpegEncoder::new(Backend::Software, config).unwrap()),
                Via::Direct | Via::Invalidating => software(config).unwrap(),
            };
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
            let name = match (codec, ten_bit, yuv444, via) {
                (Codec::H264, _, false, Via::Ffmpeg) => "x264 through FFmpeg ultrafast/zerolatency",
                (Codec::H264, _, false, Via::Direct) => "x264 ultrafast/zerolatency",
                (Codec::H264, _, false, Via::Invalidating) => "x264 keeping pictures to invalidate, ultrafast/zerolatency",
                (Codec::H264, _, true, _) => "x264 4:4:4 ultrafast/zerolatency",
                (Codec::Hevc, false, ..) => "x265 ultrafast/zerolatency",
                (Codec::Hevc, true, ..) => "x265 Main10 ultrafast/zerolatency",
                (Codec::Av1, ..) => "AV1 libaom realtime cpu-used 8",
            };
            for (what, v) in [("convert", conv), ("encode", encode), ("convert + encode", total)] {
                let (m, p) = stats(v);
                println!("| {w}x{h}@60 20 Mbit/s {name}, {what} | {m:.3} ms | {p:.3} ms |");
                if codec == Codec::H264 && !yuv444 && what == "convert + encode" {
                    h264.push(m);
                }
            }
        }
        if let [ffmpeg, direct, invalidating] = h264[..] {
            println!("| {w}x{h} ratio x264 direct / through FFmpeg, convert + encode | {:.2}x | |", direct / ffmpeg);
            println!("| {w}x{h} ratio keeping pictures / not | {:.2}x | |", invalidating / direct);
        }
    }
}

/// How the bench reaches an encoder.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Via {
    Ffmpeg,
    Direct,
    Invalidating,
}

/// `runs` timings of `f`, in milliseconds.
fn timed(runs: usize, mut f: impl FnMut()) -> Vec<f64> {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect()
}
