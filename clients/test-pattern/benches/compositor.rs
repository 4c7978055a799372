//! Compositor CPU render path: per-frame render time with full-screen damage (the test
//! pattern redraws everything each frame), composited and through the direct path (the
//! client's buffer handed on as the frame), and the cost of an idle session. GLES renders
//! BGRX, or NV12 converted on the GPU for a sink that asks for it (as encoders do).
//!
//! `cargo bench -p punktfunk-test-pattern --bench compositor [-- MODE…]`

use punktfunk_compositor::{Config, ConvertChoice, EngineChoice, Frame, Outcome, run};
use punktfunk_streamer::convert::{Colour, Layout, Matrix, Range, Yuv, bgrx_to_yuv};
use punktfunk_streamer::{PixelFormat, SinkWithWants};
use std::time::{Duration, Instant};

fn percentile(v: &mut [u32], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    f64::from(v[((v.len() - 1) as f64 * p).round() as usize]) / 1000.0
}

fn cpu_time() -> Duration {
    let u = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).expect("getrusage");
    let t = |tv: nix::sys::time::TimeVal| Duration::new(tv.tv_sec() as u64, tv.tv_usec() as u32 * 1000);
    t(u.user_time()) + t(u.system_time())
}

const NV12: PixelFormat = PixelFormat::Yuv { layout: Layout::Nv12, colour: Colour { matrix: Matrix::Bt709, range: Range::Limited } };

/// A session's figures: its outcome, CPU and wall time, and for every frame that carries the
/// test pattern, the time from the client stamping it to the frame reaching the sink (µs),
/// and the CPU converter's time for BGRX frames (µs).
struct Run {
    outcome: Outcome,
    cpu: Duration,
    wall: Duration,
    latency: Vec<u32>,
    cpu_convert: Vec<u32>,
}

/// Runs a session with a sink that asks for `wants` (converted on the GPU where `convert`
/// says so) and converts BGRX frames to it on the CPU itself, as the encoder would.
fn session(mode: &str, command: Vec<String>, direct: bool, renderer: EngineChoice, convert: ConvertChoice, wants: PixelFormat) -> Run {
    let mut config = Config::new(mode.parse().unwrap());
    config.direct = direct;
    config.renderer = renderer;
    config.convert = convert;
    config.command = command.into_iter().map(Into::into).collect();
    config.xwayland = false;
    config.show_cursor = false; // the cursor sits at (0, 0), on the pattern's first cells
    let figures = std::sync::Arc::new(parking_lot::Mutex::new((Vec::new(), Vec::new())));
    let sink_figures = std::sync::Arc::clone(&figures);
    let mut yuv = Vec::new();
    let sink = move |f: Frame| {
        let now = punktfunk_test_pattern::now_us();
        let mut figures = sink_figures.lock();
        if let Some((_, stamped)) = punktfunk_test_pattern::decode(f.width, |x, y| f.rgb_at(x, y)) {
            figures.0.push(now.saturating_sub(stamped) as u32);
        }
        if let (PixelFormat::Bgrx8888, PixelFormat::Yuv { layout, colour }) = (f.format, wants) {
            yuv.resize(wants.frame_len(f.width, f.height), 0);
            let t = Instant::now();
            bgrx_to_yuv(&f, colour, Yuv::in_buffer(layout, f.width, f.height, &mut yuv).unwrap()).unwrap();
            figures.1.push(t.elapsed().as_micros() as u32);
        }
        Ok(())
    };
    let (cpu0, wall0) = (cpu_time(), Instant::now());
    let outcome = run(config, SinkWithWants { format: wants, surfaces: None, sink }, None).expect("session runs");
    let (latency, cpu_convert) = std::mem::take(&mut *figures.lock());
    Run { outcome, cpu: cpu_time() - cpu0, wall: wall0.elapsed(), latency, cpu_convert }
}

fn main() {
    punktfunk_core::logging::init();
    let pattern = env!("CARGO_BIN_EXE_punktfunk-test-pattern").to_string();
    println!("| case | frames | render median | render p99 | + CPU NV12 conversion median | client stamp → sink median | p99 |");
    println!("|---|---|---|---|---|---|---|");
    let (cpu, gpu) = (ConvertChoice::Cpu, ConvertChoice::Gpu);
    let cases = [
        (false, EngineChoice::Pixman, cpu),
        (true, EngineChoice::Pixman, cpu),
        (false, EngineChoice::Gles, cpu),
        (false, EngineChoice::Gles, gpu),
    ];
    // Modes to measure: the arguments (`-- 3840x2160@60`), else 720p and 1080p.
    let mut modes: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    if modes.is_empty() {
        modes = vec!["1280x720@60".into(), "1920x1080@60".into()];
    }
    for mode in &modes {
        for (direct, renderer, convert) in cases {
            // The sink asks for NV12, as x264 does, and converts BGRX frames itself.
            let mut r = session(mode, vec![pattern.clone(), "--frames".into(), "300".into()], direct, renderer, convert, NV12);
            let o = &mut r.outcome;
            let (case, us) = if direct { ("direct path", &mut o.direct_us) } else { ("composited", &mut o.frame_us) };
            let into = if o.converted > 0 { "NV12 converted on the GPU" } else { "BGRX" };
            let convert =
                if r.cpu_convert.is_empty() { "—".to_string() } else { format!("{:.3} ms", percentile(&mut r.cpu_convert, 0.5)) };
            println!(
                "| {mode}, full-screen damage, {case} ({}, {into}) | {} | {:.3} ms | {:.3} ms | {convert} | {:.2} ms | {:.2} ms |",
                o.renderer,
                us.len(),
                percentile(us, 0.5),
                percentile(us, 0.99),
                percentile(&mut r.latency, 0.5),
                percentile(&mut r.latency, 0.99)
            );
        }
    }
    // Idle: a session whose only client never draws. The whole process is measured.
    let Run { outcome: mut o, cpu, wall, .. } =
        session("1920x1080@60", vec!["sleep".into(), "5".into()], true, EngineChoice::Auto, ConvertChoice::Auto, PixelFormat::Bgrx8888);
    println!(
        "| 1920x1080@60 idle (nothing to draw) | {} refreshes | {:.3} ms | {:.3} ms | | | |",
        o.idle_us.len(),
        percentile(&mut o.idle_us, 0.5),
        percentile(&mut o.idle_us, 0.99)
    );
    println!("\nidle session: {:.2} % of one core ({:?} CPU over {:?} wall)", 100.0 * cpu.as_secs_f64() / wall.as_secs_f64(), cpu, wall);
}
