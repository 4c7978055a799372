//! `punktfunk-transport-bench` end to end at a low rate: both processes start, both modes
//! deliver every frame, and punktfunk/1 rebuilds every frame hit by 1 % random loss (the
//! figures themselves are for BENCHMARKS.md, not asserted).

use std::process::Command;

#[test]
fn the_transport_bench_delivers_every_frame_and_recovers_loss() {
    let out = Command::new(env!("CARGO_BIN_EXE_punktfunk-transport-bench"))
        .args(["--rates", "0.2", "--seconds", "1", "--loss", "1"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<Vec<&str>> = text.lines().filter(|l| l.starts_with("| 0.20 |")).map(|l| l.split('|').map(str::trim).collect()).collect();
    assert_eq!(rows.len(), 3, "plain, punktfunk/1, punktfunk/1 under loss:\n{text}");
    for row in &rows {
        assert_eq!(row[4], "0 / 240", "frames lost: {row:?}");
    }
    let recovered: u32 = rows[2][5].parse().unwrap();
    assert!(recovered > 100, "1 % loss hits most 100 KB frames; FEC rebuilt {recovered}:\n{text}");
    assert_eq!(rows[1][5], "0", "nothing to recover without loss");
}
