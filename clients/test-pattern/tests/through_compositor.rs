//! The test pattern drawn inside a real compositor session and read back from its frames.

use punktfunk_compositor::{run, Config, Frame};
use punktfunk_test_pattern::decode;
use std::sync::mpsc;
use std::time::{SystemTime, UNIX_EPOCH};

#[test]
fn every_frame_reaches_the_sink_in_order_and_readable() {
    let mut config = Config::new("1280x720@60".parse().unwrap());
    config.command = vec![env!("CARGO_BIN_EXE_punktfunk-test-pattern").into(), "--color".into(), "00ff00".into(), "--frames".into(), "90".into()];
    config.xwayland = false;
    config.show_cursor = false; // the cursor sits at (0, 0), on the pattern's first cells
    let (tx, rx) = mpsc::channel();
    let sink = move |f: Frame| {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as u64;
        let _ = tx.send((decode(f.width, |x, y| f.rgb_at(x, y)), f.rgb_at(f.width / 2, f.height - 10), now));
        Ok(())
    };
    let outcome = run(config, sink, None).unwrap();
    assert_eq!(outcome.exit_code, Some(0), "the client exits after its 90 frames");
    let seen: Vec<_> = rx.try_iter().collect();
    let decoded: Vec<(u32, u64, u64)> = seen.iter().filter_map(|(d, _, now)| d.map(|(c, ts)| (c, ts, *now))).collect();
    assert!(decoded.len() >= 60, "only {} of {} frames decoded", decoded.len(), seen.len());
    assert!(decoded.windows(2).all(|w| w[1].0 > w[0].0), "counters go strictly up");
    assert!(seen.iter().any(|(d, band, _)| d.is_some() && *band == (0, 255, 0)), "the green band is there");
    let mut lat: Vec<u64> = decoded.iter().map(|(_, ts, now)| now.saturating_sub(*ts)).collect();
    lat.sort_unstable();
    println!("client draw -> sink: median {} µs, max {} µs over {} frames", lat[lat.len() / 2], lat[lat.len() - 1], lat.len());
}
