//! Software encoding round trips through FFmpeg's own decoder.

use ffmpeg_next as ff;
use punktfunk_streamer::convert::{Colour, Layout, Matrix, Plane, Range, Yuv, bgrx_to_yuv};
use punktfunk_streamer::encode::{Backend, Choice, Codec, EncodedFrame, EncoderConfig, Format, SessionEncoder, software};
use punktfunk_streamer::gpu::GpuSurfaces;
use punktfunk_streamer::{BufferPool, Frame, PixelFormat, Pixels, Rect};
use std::time::Instant;

/// A gradient with a box moving across it; `noise` adds per-frame random pixels (hard to
/// compress, so the bitrate limit shows).
fn synthetic(pool: &BufferPool, w: u32, h: u32, n: u64, noise: bool) -> Frame {
    let mut buffer = pool.take().expect("pool has room");
    let data = buffer.as_mut_slice();
    let mut rng = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for y in 0..h {
        for x in 0..w {
            let i = ((y * w + x) * 4) as usize;
            let in_box = (x + 400).wrapping_sub(n as u32 * 8) % w < 160 && (200..360).contains(&y);
            let mut px = if in_box { [40, 200, 240, 255] } else { [(x * 255 / w) as u8, (y * 255 / h) as u8, 128, 255] };
            if noise {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                px[0] = px[0].wrapping_add((rng & 63) as u8);
            }
            data[i..i + 4].copy_from_slice(&px);
        }
    }
    Frame {
        seq: n,
        width: w,
        height: h,
        stride: w as usize * 4,
        format: PixelFormat::Bgrx8888,
        pixels: buffer.into(),
        damage: vec![Rect { x: 0, y: 0, width: w as i32, height: h as i32 }],
        render_started_at: Instant::now(),
        rendered_at: Instant::now(),
        committed_at: Instant::now(),
    }
}

fn decode_all(codec: Codec, units: &[EncodedFrame]) -> Vec<ff::frame::Video> {
    ff::init().unwrap();
    let id = match codec {
        Codec::H264 => ff::codec::Id::H264,
        Codec::Hevc => ff::codec::Id::HEVC,
        Codec::Av1 => ff::codec::Id::AV1,
    };
    let mut ctx = ff::codec::context::Context::new_with_codec(ff::decoder::find(id).unwrap());
    ctx.set_threading(ff::threading::Config { kind: ff::threading::Type::Frame, count: 4, ..Default::default() });
    let mut dec = ctx.decoder().video().unwrap();
    let mut out = Vec::new();
    let mut f = ff::frame::Video::empty();
    for u in units {
        dec.send_packet(&ff::Packet::copy(&u.data)).unwrap();
        while dec.receive_frame(&mut f).is_ok() {
            out.push(f.clone());
        }
    }
    dec.send_eof().unwrap();
    while dec.receive_frame(&mut f).is_ok() {
        out.push(f.clone());
    }
    out
}

fn psnr_y(a: &[u8], a_stride: usize, b: &[u8], b_stride: usize, w: usize, h: usize) -> f64 {
    let mut se = 0f64;
    for y in 0..h {
        for x in 0..w {
            let d = f64::from(a[y * a_stride + x]) - f64::from(b[y * b_stride + x]);
            se += d * d;
        }
    }
    let mse = se / (w * h) as f64;
    if mse == 0.0 { f64::INFINITY } else { 10.0 * (255.0 * 255.0 / mse).log10() }
}

#[test]
fn encode_decode_round_trip_keeps_the_picture() {
    for codec in [Codec::H264, Codec::Hevc, Codec::Av1] {
        let (w, h) = (640, 480);
        let pool = BufferPool::new((w * h * 4) as usize, 2);
        let mut enc = software(EncoderConfig::new(codec, w, h, 60_000, 8_000_000)).unwrap();
        let mut units = Vec::new();
        let mut last_y = Vec::new();
        for n in 0..30 {
            let f = synthetic(&pool, w, h, n, false);
            units.extend(enc.encode(&f, n == 0).unwrap());
            if n == 29 {
                let (mut y, mut uv) = (vec![0u8; (w * h) as usize], vec![0u8; (w * h / 2) as usize]);
                bgrx_to_yuv(
                    &f,
                    Colour::default(),
                    Yuv::Nv12 { y: Plane { data: &mut y, stride: w as usize }, uv: Plane { data: &mut uv, stride: w as usize } },
                )
                .unwrap();
                last_y = y;
            }
        }
        assert_eq!(units.len(), 30, "{codec:?}: zerolatency gives one access unit per frame");
        assert!(units[0].keyframe);
        let decoded = decode_all(codec, &units);
        assert_eq!(decoded.len(), 30);
        let d = decoded.last().unwrap();
        let psnr = psnr_y(&last_y, w as usize, d.data(0), d.stride(0), w as usize, h as usize);
        assert!(psnr > 35.0, "{codec:?}: PSNR {psnr:.1} dB");
        // Chroma is averaged over each 2x2 block; H.264 and HEVC say so (AV1 cannot).
        let sited = if codec == Codec::Av1 { ff::util::chroma::Location::Unspecified } else { ff::util::chroma::Location::Center };
        assert_eq!(d.chroma_location(), sited, "{codec:?}");
    }
}

#[test]
fn a_forced_idr_lands_on_the_requested_frame() {
    let (w, h) = (320, 240);
    let pool = BufferPool::new((w * h * 4) as usize, 2);
    for codec in [Codec::H264, Codec::Hevc, Codec::Av1] {
        let mut enc = software(EncoderConfig::new(codec, w, h, 60_000, 4_000_000)).unwrap();
        let kinds: Vec<bool> = (0..20).map(|n| enc.encode(&synthetic(&pool, w, h, n, false), n == 12).unwrap().unwrap().keyframe).collect();
        let keys: Vec<usize> = kinds.iter().enumerate().filter(|(_, k)| **k).map(|(i, _)| i).collect();
        assert_eq!(keys, [0, 12], "{codec:?}: key frames only at the start and where asked, one frame out per frame in");
    }
}

#[test]
fn a_bitrate_change_takes_effect() {
    let (w, h) = (640, 480);
    let pool = BufferPool::new((w * h * 4) as usize, 2);
    let mut enc = software(EncoderConfig::new(Codec::H264, w, h, 60_000, 20_000_000)).unwrap();
    let mut sizes = Vec::new();
    for n in 0..120 {
        if n == 60 {
            enc.set_bitrate(2_000_000);
        }
        sizes.push(enc.encode(&synthetic(&pool, w, h, n, true), false).unwrap().unwrap().data.len());
    }
    let avg = |r: std::ops::Range<usize>| sizes[r.clone()].iter().sum::<usize>() as f64 / r.len() as f64;
    let (before, after) = (avg(30..60), avg(90..120));
    // 20 Mbit/s at 60 fps is ~41.7 kB a frame, 2 Mbit/s ~4.2 kB.
    assert!(after < before * 0.5, "frame size {before:.0} B -> {after:.0} B");
}

#[test]
fn odd_sizes_are_refused_with_a_clear_error() {
    let e = software(EncoderConfig::new(Codec::H264, 641, 480, 60_000, 1_000_000)).err().unwrap();
    assert!(e.to_string().contains("must be even"));
}

#[test]
fn ten_bit_video_decodes_as_ten_bit_and_keeps_the_picture() {
    for codec in [Codec::Hevc, Codec::Av1] {
        ten_bit_round_trip(codec);
    }
}

fn ten_bit_round_trip(codec: Codec) {
    let (w, h) = (640, 480);
    let pool = BufferPool::new((w * h * 4) as usize, 2);
    let mut config = EncoderConfig::new(codec, w, h, 60_000, 8_000_000);
    config.format.ten_bit = true;
    let mut enc = software(config).unwrap();
    let units: Vec<EncodedFrame> = (0..10).filter_map(|n| enc.encode(&synthetic(&pool, w, h, n, false), n == 0).unwrap()).collect();
    let decoded = decode_all(codec, &units);
    assert_eq!(decoded.len(), 10);
    let d = decoded.last().unwrap();
    assert_eq!(d.format(), ff::format::Pixel::YUV420P10LE, "{codec:?}: the decoder gives 10-bit pictures only for a 10-bit stream");
    // The 10-bit luma, scaled to 8 bits, against the 8-bit conversion of the same frame.
    let f = synthetic(&pool, w, h, 9, false);
    let (mut y, mut uv) = (vec![0u8; (w * h) as usize], vec![0u8; (w * h / 2) as usize]);
    bgrx_to_yuv(
        &f,
        Colour::default(),
        Yuv::Nv12 { y: Plane { data: &mut y, stride: w as usize }, uv: Plane { data: &mut uv, stride: w as usize } },
    )
    .unwrap();
    let eight: Vec<u8> = (0..(w * h) as usize)
        .map(|i| {
            let (row, col) = (i / w as usize, i % w as usize);
            let at = row * d.stride(0) + col * 2;
            (u16::from_le_bytes([d.data(0)[at], d.data(0)[at + 1]]) >> 2) as u8
        })
        .collect();
    let psnr = psnr_y(&y, w as usize, &eight, w as usize, w as usize, h as usize);
    assert!(psnr > 35.0, "{codec:?}: PSNR {psnr:.1} dB");
}

#[test]
fn ten_bit_h264_is_refused_with_a_clear_error() {
    let mut config = EncoderConfig::new(Codec::H264, 320, 240, 60_000, 1_000_000);
    config.format.ten_bit = true;
    let e = software(config).err().unwrap();
    assert!(e.to_string().contains("needs HEVC"), "{e}");
}

#[test]
fn the_stream_carries_the_matrix_and_range_the_client_asked_for() {
    use ff::color::{Range as FfRange, Space};
    use punktfunk_streamer::convert::{Matrix, Range};
    let (w, h) = (320, 240);
    let pool = BufferPool::new((w * h * 4) as usize, 2);
    // One flat colour, R 240 G 200 B 40: its luma and blue-difference under each matrix.
    let (r, g, b) = (240.0, 200.0, 40.0);
    // Under BT.709 limited range this colour's luma is 185.1, under BT.2020 188.6, BT.601 full 193.7.
    for (matrix, range, space, kr, kb) in [
        (Matrix::Bt601, Range::Full, Space::BT470BG, 0.299, 0.114),
        (Matrix::Bt709, Range::Limited, Space::BT709, 0.2126, 0.0722),
        (Matrix::Bt2020, Range::Limited, Space::BT2020NCL, 0.2627, 0.0593),
    ] {
        for ten_bit in [false, true] {
            let mut config = EncoderConfig::new(Codec::Hevc, w, h, 60_000, 4_000_000);
            config.format = Format { colour: Colour { matrix, range }, ten_bit, yuv444: false };
            let mut enc = software(config).unwrap();
            let units: Vec<EncodedFrame> = (0..3)
                .filter_map(|n| {
                    let mut buffer = pool.take().unwrap();
                    buffer.as_mut_slice().chunks_exact_mut(4).for_each(|px| px.copy_from_slice(&[b as u8, g as u8, r as u8, 255]));
                    let f = Frame {
                        seq: n,
                        width: w,
                        height: h,
                        stride: w as usize * 4,
                        format: PixelFormat::Bgrx8888,
                        pixels: buffer.into(),
                        damage: vec![Rect { x: 0, y: 0, width: w as i32, height: h as i32 }],
                        render_started_at: Instant::now(),
                        rendered_at: Instant::now(),
                        committed_at: Instant::now(),
                    };
                    enc.encode(&f, n == 0).unwrap()
                })
                .collect();
            let d = decode_all(Codec::Hevc, &units).pop().unwrap();
            let want_range = if range == Range::Full { FfRange::JPEG } else { FfRange::MPEG };
            assert_eq!((d.color_space(), d.color_range()), (space, want_range), "{matrix:?} {range:?}");
            assert_eq!(d.chroma_location(), ff::util::chroma::Location::Center, "chroma sited where the converters put it");
            let luma = kr * r + (1.0 - kr - kb) * g + kb * b;
            let cb = (b - luma) / (2.0 * (1.0 - kb));
            let (y_want, cb_want) =
                if range == Range::Full { (luma, 128.0 + cb) } else { (16.0 + luma * 219.0 / 255.0, 128.0 + cb * 224.0 / 255.0) };
            // The centre sample of Y and of Cb, in 8-bit units (full range spans 0..=1023 in
            // 10 bits, limited range is 8-bit limited range times 4).
            let ten_scale = if range == Range::Full { 1023.0 / 255.0 } else { 4.0 };
            let sample = |plane: usize, x: usize, y: usize| -> f64 {
                let (data, stride) = (d.data(plane), d.stride(plane));
                if ten_bit {
                    f64::from(u16::from_le_bytes([data[y * stride + x * 2], data[y * stride + x * 2 + 1]])) / ten_scale
                } else {
                    f64::from(data[y * stride + x])
                }
            };
            let (y_got, cb_got) = (sample(0, w as usize / 2, h as usize / 2), sample(1, w as usize / 4, h as usize / 4));
            // Within 2: the 8-bit converter's fast fixed point is off by up to 1.8 here.
            assert!(
                (y_got - y_want).abs() < 2.0 && (cb_got - cb_want).abs() < 2.0,
                "{matrix:?} {range:?} ten_bit {ten_bit}: Y {y_got} Cb {cb_got}, want {y_want:.1} {cb_want:.1}"
            );
        }
    }
}

#[test]
fn four_four_four_keeps_one_pixel_colour_detail() {
    // One-pixel red and blue columns: 4:2:0 would give every pair the same (purple) chroma.
    let (w, h) = (128u32, 64u32);
    let pool = BufferPool::new((w * h * 4) as usize, 2);
    for codec in [Codec::H264, Codec::Hevc] {
        let mut config = EncoderConfig::new(codec, w, h, 30_000, 8_000_000);
        config.format.yuv444 = true;
        let mut enc = software(config).unwrap();
        let units: Vec<EncodedFrame> = (0..3)
            .filter_map(|n| {
                let mut buffer = pool.take().unwrap();
                for (i, px) in buffer.as_mut_slice().chunks_exact_mut(4).enumerate() {
                    px.copy_from_slice(if i % 2 == 0 { &[0, 0, 255, 255] } else { &[255, 0, 0, 255] });
                }
                let f = Frame {
                    seq: n,
                    width: w,
                    height: h,
                    stride: w as usize * 4,
                    format: PixelFormat::Bgrx8888,
                    pixels: buffer.into(),
                    damage: vec![Rect { x: 0, y: 0, width: w as i32, height: h as i32 }],
                    render_started_at: Instant::now(),
                    rendered_at: Instant::now(),
                    committed_at: Instant::now(),
                };
                enc.encode(&f, n == 0).unwrap()
            })
            .collect();
        let d = decode_all(codec, &units).pop().unwrap();
        assert_eq!(d.format(), ff::format::Pixel::YUV444P, "{codec:?}");
        // Red's Cb is 102, blue's 240 (BT.709 limited): neighbours must stay far apart.
        let row = &d.data(1)[(h as usize / 2) * d.stride(1)..][..w as usize];
        let contrast = row.windows(2).map(|p| (i32::from(p[0]) - i32::from(p[1])).abs()).sum::<i32>() / (w as i32 - 1);
        assert!(contrast > 100, "{codec:?}: neighbouring Cb differ by {contrast} on average");
    }
}

/// `frame` converted on the CPU into a frame in `format` (as the compositor's GPU engine
/// delivers them).
fn converted(frame: &Frame, format: PixelFormat) -> Frame {
    let PixelFormat::Yuv { layout, colour } = format else { panic!("a YUV format") };
    let pool = BufferPool::new(format.frame_len(frame.width, frame.height), 1);
    let mut buffer = pool.take().unwrap();
    bgrx_to_yuv(frame, colour, Yuv::in_buffer(layout, frame.width, frame.height, buffer.as_mut_slice()).unwrap()).unwrap();
    let stride = layout.planes(frame.width, frame.height)[0].stride;
    Frame {
        seq: frame.seq,
        width: frame.width,
        height: frame.height,
        stride,
        format,
        pixels: buffer.into(),
        damage: frame.damage.clone(),
        render_started_at: frame.render_started_at,
        rendered_at: frame.rendered_at,
        committed_at: frame.committed_at,
    }
}

/// Frames converted already, in the layout and colour the encoder takes, are copied in as
/// they are: the bitstream is the one the same pictures give through the encoder's own
/// conversion, byte for byte. Frames converted for another encoder are refused, or skipped
/// by a session's encoder (which keeps a key frame asked for until a frame it takes).
#[test]
fn frames_converted_already_are_taken_as_they_are() {
    let (w, h) = (320, 240);
    let pool = BufferPool::new((w * h * 4) as usize, 2);
    for (codec, ten_bit, yuv444) in [(Codec::H264, false, false), (Codec::Hevc, true, false), (Codec::H264, false, true)] {
        let mut config = EncoderConfig::new(codec, w, h, 60_000, 4_000_000);
        (config.threads, config.format.ten_bit, config.format.yuv444) = (1, ten_bit, yuv444);
        let mut plain = software(config).unwrap();
        let mut copying = software(config).unwrap();
        let takes = copying.takes();
        assert!(matches!(takes, PixelFormat::Yuv { colour, .. } if colour == config.format.colour), "{takes:?}");
        for n in 0..5 {
            let f = synthetic(&pool, w, h, n, false);
            let a = plain.encode(&f, n == 0).unwrap().map(|e| e.data);
            let b = copying.encode(&converted(&f, takes), n == 0).unwrap().map(|e| e.data);
            assert!(a.is_some() && a == b, "{codec:?} {takes:?} frame {n}: the same bitstream");
        }
        let PixelFormat::Yuv { layout, .. } = takes else { unreachable!() };
        let other = PixelFormat::Yuv { layout, colour: Colour { matrix: Matrix::Bt601, range: Range::Full } };
        let err = copying.encode(&converted(&synthetic(&pool, w, h, 9, false), other), false).unwrap_err();
        assert!(err.to_string().contains("frame for"), "{err}");
    }
    // A session's encoder skips a frame converted for its predecessor, keeping the key frame.
    let idr = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut session = SessionEncoder::new(Codec::H264, Format::default(), 60_000, 4_000_000, Choice::Only(Backend::Software), idr);
    assert_eq!(session.wants(), PixelFormat::Bgrx8888, "nothing asked for before the first frame");
    assert!(session.encode(&synthetic(&pool, w, h, 0, false)).unwrap().is_some_and(|e| e.keyframe));
    let wants = session.wants();
    assert!(matches!(wants, PixelFormat::Yuv { .. }));
    session.request_keyframe();
    let stale = PixelFormat::Yuv { layout: Layout::I444, colour: Colour::default() };
    assert!(session.encode(&converted(&synthetic(&pool, w, h, 1, false), stale)).unwrap().is_none());
    let next = session.encode(&converted(&synthetic(&pool, w, h, 2, false), wants)).unwrap().unwrap();
    assert!(next.keyframe, "the key frame asked for comes with the first frame taken");
}

/// A frame drawn into surfaces this encoder did not lend (another encoder's, before a
/// reopen) is skipped by a session's encoder, the key frame asked for kept; a bare encoder
/// refuses it. Software encoders lend none.
#[test]
fn frames_in_surfaces_the_encoder_did_not_lend_are_skipped() {
    let (w, h) = (320, 240);
    let pool = BufferPool::new((w * h * 4) as usize, 2);
    let surfaces = GpuSurfaces::new(0, w, h, Colour::default(), vec![Vec::new()]);
    let in_surface = |n| Frame {
        seq: n,
        width: w,
        height: h,
        stride: 0,
        format: PixelFormat::Yuv { layout: Layout::Nv12, colour: Colour::default() },
        pixels: Pixels::Gpu(surfaces.take().unwrap()),
        damage: Vec::new(),
        render_started_at: Instant::now(),
        rendered_at: Instant::now(),
        committed_at: Instant::now(),
    };
    let mut bare = software(EncoderConfig::new(Codec::H264, w, h, 60_000, 4_000_000)).unwrap();
    assert!(bare.surfaces().is_none(), "x264 lends no surfaces");
    assert!(bare.encode(&in_surface(1), false).is_err());
    let idr = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut session = SessionEncoder::new(Codec::H264, Format::default(), 60_000, 4_000_000, Choice::Only(Backend::Software), idr);
    assert!(session.encode(&synthetic(&pool, w, h, 0, false)).unwrap().is_some());
    session.request_keyframe();
    assert!(session.encode(&in_surface(2)).unwrap().is_none(), "skipped");
    assert!(session.encode(&synthetic(&pool, w, h, 3, false)).unwrap().unwrap().keyframe, "the key frame waited for a frame it takes");
    assert_eq!(surfaces.take().map(|l| l.index()), Some(0), "the skipped frame's surface came back");
}

/// Frame `n`'s luma as the encoder's input holds it.
fn source_luma(pool: &BufferPool, w: u32, h: u32, n: u64) -> Vec<u8> {
    let (mut y, mut uv) = (vec![0u8; (w * h) as usize], vec![0u8; (w * h / 2) as usize]);
    let planes = Yuv::Nv12 { y: Plane { data: &mut y, stride: w as usize }, uv: Plane { data: &mut uv, stride: w as usize } };
    bgrx_to_yuv(&synthetic(pool, w, h, n, false), Colour::default(), planes).unwrap();
    y
}

#[test]
fn a_lost_frame_is_repaired_from_an_older_picture_without_a_key_frame() {
    let (w, h) = (640, 480);
    let pool = BufferPool::new((w * h * 4) as usize, 2);
    // Frame 20 is lost; 21 and 22 left before the client's report came, and the client drops
    // them too (they refer to 20). Then frame 23 is encoded, after invalidating from 20 or not.
    let through_a_loss = |invalidate: bool| {
        let mut config = EncoderConfig::new(Codec::H264, w, h, 60_000, 8_000_000);
        config.invalidation = true;
        let mut enc = software(config).unwrap();
        let (mut received, mut sizes) = (Vec::new(), Vec::new());
        for n in 0..40u64 {
            if n == 23 && invalidate {
                assert!(enc.invalidate_from(20));
            }
            if n == 31 && invalidate {
                assert!(enc.invalidate_from(30));
            }
            let unit = enc.encode(&synthetic(&pool, w, h, n, false), n == 0).unwrap().expect("one in, one out");
            sizes.push((unit.data.len(), unit.keyframe));
            if !(20..23).contains(&n) && n != 30 {
                received.push(unit);
            }
        }
        let decoded = decode_all(Codec::H264, &received);
        assert_eq!(decoded.len(), received.len(), "the decoder shows what it got, and nothing in the gap");
        // The worst picture from the repair on (frames 23..40 are decoded[20..]).
        let worst = (23..40u64)
            .filter(|&n| n != 30)
            .map(|n| {
                let d = &decoded[n as usize - if n > 30 { 4 } else { 3 }];
                psnr_y(&source_luma(&pool, w, h, n), w as usize, d.data(0), d.stride(0), w as usize, h as usize)
            })
            .fold(f64::INFINITY, f64::min);
        (sizes, worst)
    };
    let (sizes, worst) = through_a_loss(true);
    let (repair, key) = (sizes[23], sizes[0]);
    println!("repair {} B (a P-frame), key frame {} B; worst picture after: {worst:.1} dB", repair.0, key.0);
    assert!(!repair.1, "the repair is a P-frame from frame 19");
    assert!(repair.0 * 2 < key.0, "a repair costs far less than a key frame: {} B against {} B", repair.0, key.0);
    assert!(worst > 35.0, "every picture from the repair on is right: {worst:.1} dB");
    // The same loss without the repair: frame 23 refers to 22, which the client never had.
    let (_, broken) = through_a_loss(false);
    println!("without invalidating: worst picture {broken:.1} dB");
    assert!(broken < 30.0, "without invalidation the picture is wrong ({broken:.1} dB): the test sees a bad repair");
}

#[test]
fn a_loss_older_than_the_pictures_kept_is_repaired_with_a_key_frame() {
    let (w, h) = (320, 240);
    let pool = BufferPool::new((w * h * 4) as usize, 2);
    let mut config = EncoderConfig::new(Codec::H264, w, h, 60_000, 2_000_000);
    config.invalidation = true;
    let mut enc = software(config).unwrap();
    for n in 0..16 {
        enc.encode(&synthetic(&pool, w, h, n, false), n == 0).unwrap();
    }
    // Eight pictures kept at this size (frames 8 to 15): from frame 3 on, none is left, and
    // x264 makes the next frame a key frame itself.
    assert!(enc.invalidate_from(3));
    assert!(enc.encode(&synthetic(&pool, w, h, 16, false), false).unwrap().unwrap().keyframe);
    // A frame it no longer remembers is no repair either, nor one before a key frame (the
    // client lacks the key frame too: frame 16 was one).
    assert!(!enc.invalidate_from(1000));
    enc.encode(&synthetic(&pool, w, h, 17, false), false).unwrap();
    assert!(!enc.invalidate_from(15));
    assert!(enc.invalidate_from(17));
    // An encoder opened without older pictures cannot repair: the caller asks for a key frame.
    let mut plain = software(EncoderConfig::new(Codec::H264, w, h, 60_000, 2_000_000)).unwrap();
    plain.encode(&synthetic(&pool, w, h, 0, false), true).unwrap();
    assert!(!plain.invalidate_from(0));
}

#[test]
fn every_picture_after_a_repair_is_shown_wherever_the_loss_falls() {
    // Frame numbers count modulo 16 here: a loss at each of two cycles' positions, each
    // repaired (or answered with a key frame where the encoder says it must be).
    let (w, h) = (320, 240);
    let pool = BufferPool::new((w * h * 4) as usize, 2);
    let mut keyed = Vec::new();
    for lost in 17..=48u64 {
        let mut config = EncoderConfig::new(Codec::H264, w, h, 60_000, 2_000_000);
        config.invalidation = true;
        let mut enc = software(config).unwrap();
        let mut received = Vec::new();
        for n in 0..70u64 {
            let repair = n == lost + 1 && !enc.invalidate_from(lost);
            let unit = enc.encode(&synthetic(&pool, w, h, n, false), n == 0 || repair).unwrap().unwrap();
            if repair {
                keyed.push(lost);
            }
            if n != lost {
                received.push(unit);
            }
        }
        // FFmpeg's decoder holds back pictures it numbers out of order: none may be.
        assert_eq!(decode_all(Codec::H264, &received).len(), received.len(), "a loss at frame {lost}");
    }
    // Frames 32 and 48 have frame number 0: their stand-ins would wrap.
    assert_eq!(keyed, [32, 48]);
}
