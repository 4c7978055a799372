//! The test pattern drawn inside a real compositor session and read back from its frames,
//! through the direct path (the client's buffer is the frame) and through compositing.

use punktfunk_compositor::{Config, Control, ConvertChoice, EngineChoice, Frame, InputEvent, Outcome, Pixels, control_channel, run};
use punktfunk_streamer::convert::{Colour, Layout, Matrix, Range};
use punktfunk_streamer::gpu::{DRM_FORMAT_GR88, DRM_FORMAT_R8, DmabufPlane, GpuSurfaces};
use punktfunk_streamer::{PixelFormat, SinkWithWants};
use punktfunk_test_pattern::{decode, now_us};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

/// What the sink saw of one frame.
struct Seen {
    /// (counter, client timestamp µs), if the pattern decoded.
    pattern: Option<(u32, u64)>,
    /// The band's colour near the bottom.
    band: (u8, u8, u8),
    /// The frame was the client's buffer passed through.
    direct: bool,
    /// Pixels that are not the band's colour just right of and below `POINTER`.
    near_pointer: usize,
    at_us: u64,
    /// When the app committed what the frame shows (wall clock, µs), and how long before
    /// the render that was.
    committed_us: u64,
    commit_to_render: Duration,
}

/// The band's colour: red and blue differ, so a renderer swapping them is caught.
const BAND: (u8, u8, u8) = (0xff, 0x80, 0x00);

/// The band's colour: exactly in BGRX, within a level or two through YUV.
fn is_band((r, g, b): (u8, u8, u8)) -> bool {
    r.abs_diff(BAND.0).max(g.abs_diff(BAND.1)).max(b.abs_diff(BAND.2)) <= 3
}

/// Where tests that show the cursor put the pointer: on the band.
const POINTER: (u32, u32) = (1200, 600);

/// Runs the test pattern (band colour `BAND`) for `frames` frames at 1280x720 under `config`, with a sink
/// that takes `sink_time` per frame; `pointer` moves the pointer there first.
fn pattern(
    frames: u32,
    extra: &[&str],
    configure: impl FnOnce(&mut Config),
    sink_time: Duration,
    pointer: Option<(f64, f64)>,
) -> (Outcome, Vec<Seen>) {
    pattern_as(PixelFormat::Bgrx8888, None, frames, extra, configure, sink_time, pointer)
}

/// [`pattern`] with a sink that wants frames in `wants`, or drawn into `surfaces`.
fn pattern_as(
    wants: PixelFormat,
    surfaces: Option<Arc<GpuSurfaces>>,
    frames: u32,
    extra: &[&str],
    configure: impl FnOnce(&mut Config),
    sink_time: Duration,
    pointer: Option<(f64, f64)>,
) -> (Outcome, Vec<Seen>) {
    let mut config = Config::new("1280x720@60".parse().unwrap());
    config.command = vec![
        env!("CARGO_BIN_EXE_punktfunk-test-pattern").into(),
        "--color".into(),
        "ff8000".into(),
        "--frames".into(),
        frames.to_string().into(),
    ];
    config.command.extend(extra.iter().map(Into::into));
    config.xwayland = false;
    config.show_cursor = false; // the cursor sits at (0, 0), on the pattern's first cells
    configure(&mut config);
    let (control, control_rx) = control_channel();
    if let Some((x, y)) = pointer {
        control.send(Control::Input(InputEvent::PointerMotion { x, y })).unwrap();
    }
    let (tx, rx) = mpsc::channel();
    let sink = move |f: Frame| {
        let near_pointer = (POINTER.1..POINTER.1 + 16)
            .flat_map(|y| (POINTER.0..POINTER.0 + 12).map(move |x| (x, y)))
            .filter(|&(x, y)| !is_band(f.rgb_at(x, y)))
            .count();
        assert!(f.format == wants || f.format == PixelFormat::Bgrx8888, "{:?}", f.format);
        let seen = Seen {
            pattern: decode(f.width, |x, y| f.rgb_at(x, y)),
            band: f.rgb_at(f.width / 2, f.height - 10),
            direct: matches!(f.pixels, Pixels::Shared(_)),
            near_pointer,
            at_us: now_us(),
            committed_us: now_us() - f.committed_at.elapsed().as_micros() as u64,
            commit_to_render: f.rendered_at.saturating_duration_since(f.committed_at),
        };
        assert!(f.committed_at <= f.rendered_at, "a frame's content is committed before it is rendered");
        let _ = tx.send(seen);
        std::thread::sleep(sink_time);
        Ok(())
    };
    let outcome = run(config, SinkWithWants { format: wants, surfaces, sink }, Some(control_rx)).unwrap();
    assert_eq!(outcome.exit_code, Some(0), "the client draws its {frames} frames and exits");
    (outcome, rx.try_iter().collect())
}

fn decoded(seen: &[Seen]) -> Vec<&Seen> {
    let decoded: Vec<&Seen> = seen.iter().filter(|s| s.pattern.is_some()).collect();
    assert!(
        decoded.windows(2).all(|w| w[1].pattern.unwrap().0 > w[0].pattern.unwrap().0),
        "counters go strictly up: {:?}",
        decoded.iter().map(|s| s.pattern.unwrap().0).collect::<Vec<_>>()
    );
    assert!(decoded.iter().any(|s| is_band(s.band)), "the band is there: {:?}", decoded.iter().map(|s| s.band).collect::<Vec<_>>());
    decoded
}

#[test]
fn every_frame_reaches_the_sink_in_order_and_readable() {
    let (outcome, seen) = pattern(90, &[], |_| {}, Duration::ZERO, None);
    let decoded = decoded(&seen);
    assert!(decoded.len() >= 60, "only {} of {} frames decoded", decoded.len(), seen.len());
    // The fullscreen client's buffer is the whole frame: nothing is composited.
    assert!(decoded.iter().all(|s| s.direct), "every frame of the pattern is its buffer, passed through");
    assert!(outcome.direct as usize >= decoded.len());
    let mut lat: Vec<u64> = decoded.iter().map(|s| s.at_us.saturating_sub(s.pattern.unwrap().1)).collect();
    lat.sort_unstable();
    println!("client draw -> sink: median {} µs, max {} µs over {} frames", lat[lat.len() / 2], lat[lat.len() - 1], lat.len());
    // Frames say when their content was committed: after the app drew it (1 ms for the
    // clock conversion) and, for most frames, before the render that picked it up.
    assert!(decoded.iter().all(|s| s.committed_us + 1000 >= s.pattern.unwrap().1), "a frame's commit comes after its draw");
    let earlier = decoded.iter().filter(|s| !s.commit_to_render.is_zero()).count();
    assert!(earlier * 2 > decoded.len(), "only {earlier} of {} frames were committed before their render", decoded.len());
    let mut waits: Vec<Duration> = decoded.iter().map(|s| s.commit_to_render).collect();
    waits.sort_unstable();
    println!("commit -> render: median {:?}, max {:?}", waits[waits.len() / 2], waits[waits.len() - 1]);
}

#[test]
fn with_the_direct_path_off_the_same_frames_are_composited() {
    let (outcome, seen) = pattern(60, &[], |c| c.direct = false, Duration::ZERO, None);
    assert!(decoded(&seen).len() >= 40, "{} frames", seen.len());
    assert!(seen.iter().all(|s| !s.direct));
    assert_eq!(outcome.direct, 0);
}

#[test]
fn a_visible_cursor_is_composited_over_the_client() {
    let pointer = Some((f64::from(POINTER.0), f64::from(POINTER.1)));
    let (outcome, seen) = pattern(60, &[], |c| c.show_cursor = true, Duration::ZERO, pointer);
    let decoded = decoded(&seen);
    assert!(decoded.len() >= 20, "the pattern shows beside the cursor");
    assert!(decoded.iter().all(|s| s.near_pointer > 10), "the cursor is drawn at the pointer");
    assert!(seen.iter().all(|s| !s.direct), "so no frame is the client's buffer alone");
    assert_eq!(outcome.direct, 0);
}

/// A consumer slower than the refresh holds the client's buffers: the compositor must hold
/// frame callbacks until one comes back (the client fails with `--strict` otherwise).
#[test]
fn a_slow_consumer_never_leaves_a_double_buffered_client_without_a_buffer() {
    let (outcome, seen) = pattern(20, &["--strict"], |_| {}, Duration::from_millis(40), None);
    assert!(decoded(&seen).len() >= 10, "{} frames", seen.len());
    assert!(outcome.direct >= 10);
}

/// The GPU engine, on Mesa's software device here (llvmpipe): the same pattern and the
/// cursor, composited by GLES and read back.
#[test]
fn the_gles_engine_composites_the_same_frames() {
    let pointer = Some((f64::from(POINTER.0), f64::from(POINTER.1)));
    let (outcome, seen) = pattern(60, &[], |c| (c.show_cursor, c.renderer) = (true, EngineChoice::Gles), Duration::ZERO, pointer);
    assert_eq!(outcome.renderer, "gles");
    let decoded = decoded(&seen);
    assert!(decoded.len() >= 20, "{} frames", seen.len());
    assert!(decoded.iter().all(|s| s.near_pointer > 10 && !s.direct), "the cursor is composited by GLES too");
    // Without the cursor the client's buffer passes GLES by as it does pixman.
    let (outcome, plain) = pattern(30, &[], |c| c.renderer = EngineChoice::Gles, Duration::ZERO, None);
    let passed = self::decoded(&plain);
    assert!(passed.iter().all(|s| s.direct) && outcome.direct >= 15, "{} direct frames", outcome.direct);
}

/// With a sink that wants YUV (an encoder), GLES converts frames on the GPU (llvmpipe here):
/// the pattern, the band's colour and the cursor come through each layout and colour.
#[test]
fn gles_converts_frames_to_the_yuv_the_sink_wants() {
    let pointer = Some((f64::from(POINTER.0), f64::from(POINTER.1)));
    let formats = [
        (Layout::Nv12, Colour::default()),
        (Layout::P010, Colour { matrix: Matrix::Bt2020, range: Range::Limited }),
        (Layout::I444, Colour { matrix: Matrix::Bt601, range: Range::Full }),
    ];
    for (layout, colour) in formats {
        let wants = PixelFormat::Yuv { layout, colour };
        let (outcome, seen) = pattern_as(
            wants,
            None,
            45,
            &[],
            |c| (c.show_cursor, c.renderer, c.convert) = (true, EngineChoice::Gles, ConvertChoice::Gpu),
            Duration::ZERO,
            pointer,
        );
        let decoded = decoded(&seen);
        assert!(decoded.len() >= 20, "{layout}: {} frames decoded", decoded.len());
        assert!(decoded.iter().all(|s| s.near_pointer > 10), "{layout}: the cursor is drawn");
        assert!(outcome.converted as usize >= decoded.len(), "{layout}: {} frames converted", outcome.converted);
    }
    // Converting stays off unless asked for (llvmpipe) and the sink wants it.
    let (outcome, _) = pattern_as(
        PixelFormat::Yuv { layout: Layout::Nv12, colour: Colour::default() },
        None,
        20,
        &[],
        |c| (c.show_cursor, c.renderer) = (true, EngineChoice::Gles),
        Duration::ZERO,
        pointer,
    );
    assert_eq!(outcome.converted, 0);
    let (outcome, _) = pattern_as(
        PixelFormat::Bgrx8888,
        None,
        20,
        &[],
        |c| (c.show_cursor, c.renderer, c.convert) = (true, EngineChoice::Gles, ConvertChoice::Gpu),
        Duration::ZERO,
        pointer,
    );
    assert_eq!(outcome.converted, 0);
}

/// Surfaces that cannot be drawn into (llvmpipe is not the GPU they are on, and these are no
/// dmabufs) are refused once, and frames come converted through the CPU as before: the session goes
/// on, nothing is drawn "into" them.
#[test]
fn surfaces_the_gpu_cannot_draw_into_fall_back_to_read_back_frames() {
    let plane = |fourcc, (width, height)| DmabufPlane {
        fd: std::fs::File::open("/dev/null").unwrap().into(),
        fourcc,
        modifier: 0,
        offset: 0,
        pitch: width,
        width,
        height,
    };
    let surface = || vec![plane(DRM_FORMAT_R8, (1280, 720)), plane(DRM_FORMAT_GR88, (640, 360))];
    let surfaces = GpuSurfaces::new(0, 1280, 720, Colour::default(), (0..3).map(|_| surface()).collect());
    let pointer = Some((f64::from(POINTER.0), f64::from(POINTER.1)));
    let wants = PixelFormat::Yuv { layout: Layout::Nv12, colour: Colour::default() };
    let (outcome, seen) = pattern_as(
        wants,
        Some(surfaces),
        30,
        &[],
        |c| (c.show_cursor, c.renderer, c.convert) = (true, EngineChoice::Gles, ConvertChoice::Gpu),
        Duration::ZERO,
        pointer,
    );
    assert!(decoded(&seen).len() >= 15, "{} frames", seen.len());
    assert_eq!(outcome.zero_copy, 0);
    assert!(outcome.converted >= 15, "read back converted instead: {}", outcome.converted);
}

/// GLES reads back only what changed since each pool buffer's frame: a cursor moving over a
/// still background must leave no trail in any frame (a buffer missing the rows the cursor
/// left frames ago would show it twice).
#[test]
fn gles_read_back_leaves_no_cursor_trail() {
    no_cursor_trail(PixelFormat::Bgrx8888);
}

/// The same through the GPU's conversion, which converts only the rows that changed.
#[test]
fn gles_conversion_leaves_no_cursor_trail() {
    no_cursor_trail(PixelFormat::Yuv { layout: Layout::Nv12, colour: Colour::default() });
}

fn no_cursor_trail(wants: PixelFormat) {
    let mut config = Config::new("640x480@60".parse().unwrap());
    (config.renderer, config.convert, config.xwayland, config.command) =
        (EngineChoice::Gles, ConvertChoice::Gpu, false, vec!["sleep".into(), "3".into()]);
    let (control, control_rx) = control_channel();
    let (tx, rx) = mpsc::channel();
    // Nothing but the cursor is drawn (the session runs no client): count what is not black.
    let sink = SinkWithWants {
        format: wants,
        surfaces: None,
        sink: move |f: Frame| {
            assert_eq!(f.format, wants);
            let luma = f.planes()[0];
            let lit = f
                .with_data(|d| match f.format {
                    PixelFormat::Bgrx8888 => d.chunks_exact(4).filter(|p| p[..3] != [0, 0, 0]).count(),
                    // Black is 16 in limited range.
                    PixelFormat::Yuv { .. } => d[..luma.stride * luma.rows]
                        .chunks_exact(luma.stride)
                        .flat_map(|row| &row[..luma.row_bytes])
                        .filter(|&&y| y > 20)
                        .count(),
                })
                .unwrap();
            let _ = tx.send(lit);
            // Slower than the refresh: pool buffers rotate, so most come back several frames old.
            std::thread::sleep(Duration::from_millis(30));
            Ok(())
        },
    };
    let mover = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        for step in 0..60 {
            let _ = control.send(Control::Input(InputEvent::PointerMotion { x: 300.0, y: 20.0 + 7.0 * f64::from(step) }));
            std::thread::sleep(Duration::from_millis(25));
        }
    });
    let outcome = run(config, sink, Some(control_rx)).unwrap();
    mover.join().unwrap();
    assert_eq!(outcome.renderer, "gles");
    let lit: Vec<usize> = rx.try_iter().filter(|&n| n > 0).collect();
    assert!(lit.len() >= 20, "the moving cursor was seen in {} frames", lit.len());
    let (least, most) = (lit.iter().min().unwrap(), lit.iter().max().unwrap());
    assert!(*most <= least + least / 4, "one cursor's worth of pixels in every frame, not a trail: {lit:?}");
}
