//! Compositor CPU render path: per-frame render time with full-screen damage (the test
//! pattern redraws everything each frame), composited and through the direct path (the
//! client's buffer handed on as the frame), and the cost of an idle session.
//!
//! `cargo bench -p punktfunk-test-pattern --bench compositor`

use punktfunk_compositor::{run, Config, EngineChoice, Frame, Outcome};
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

/// Runs a session; returns its outcome, CPU and wall time, and for every frame that carries
/// the test pattern, the time from the client stamping it to the frame reaching the sink (µs).
fn session(mode: &str, command: Vec<String>, direct: bool, renderer: EngineChoice) -> (Outcome, Duration, Duration, Vec<u32>) {
    let mut config = Config::new(mode.parse().unwrap());
    config.direct = direct;
    config.renderer = renderer;
    config.command = command.into_iter().map(Into::into).collect();
    config.xwayland = false;
    config.show_cursor = false; // the cursor sits at (0, 0), on the pattern's first cells
    let latencies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink_lat = std::sync::Arc::clone(&latencies);
    let sink = move |f: Frame| {
        if let Some((_, stamped)) = punktfunk_test_pattern::decode(f.width, |x, y| f.rgb_at(x, y)) {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as u64;
            sink_lat.lock().unwrap().push(now.saturating_sub(stamped) as u32);
        }
        Ok(())
    };
    let (cpu0, wall0) = (cpu_time(), Instant::now());
    let outcome = run(config, sink, None).expect("session runs");
    let lat = std::mem::take(&mut *latencies.lock().unwrap());
    (outcome, cpu_time() - cpu0, wall0.elapsed(), lat)
}

fn main() {
    let pattern = env!("CARGO_BIN_EXE_punktfunk-test-pattern").to_string();
    println!("| case | frames | render median | render p99 | client stamp → sink median | p99 |");
    println!("|---|---|---|---|---|---|");
    let cases = [(false, EngineChoice::Pixman), (true, EngineChoice::Pixman), (false, EngineChoice::Gles)];
    for mode in ["1280x720@60", "1920x1080@60"] {
        for (direct, renderer) in cases {
            let (mut o, _, _, mut lat) = session(mode, vec![pattern.clone(), "--frames".into(), "300".into()], direct, renderer);
            let (case, us) = if direct { ("direct path", &mut o.direct_us) } else { ("composited", &mut o.frame_us) };
            println!(
                "| {mode}, full-screen damage, {case} ({}) | {} | {:.3} ms | {:.3} ms | {:.2} ms | {:.2} ms |",
                o.renderer,
                us.len(),
                percentile(us, 0.5),
                percentile(us, 0.99),
                percentile(&mut lat, 0.5),
                percentile(&mut lat, 0.99)
            );
        }
    }
    // Idle: a session whose only client never draws. The whole process is measured.
    let (mut o, cpu, wall, _) = session("1920x1080@60", vec!["sleep".into(), "5".into()], true, EngineChoice::Auto);
    println!(
        "| 1920x1080@60 idle (nothing to draw) | {} refreshes | {:.3} ms | {:.3} ms | | |",
        o.idle_us.len(),
        percentile(&mut o.idle_us, 0.5),
        percentile(&mut o.idle_us, 0.99)
    );
    println!("\nidle session: {:.2} % of one core ({:?} CPU over {:?} wall)", 100.0 * cpu.as_secs_f64() / wall.as_secs_f64(), cpu, wall);
}
