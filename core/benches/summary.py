#!/usr/bin/env python3
"""Prints criterion's latest medians (time and throughput) as a Markdown table.

Usage: python3 core/benches/summary.py [target/criterion]
"""
import json
import pathlib
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
print("| benchmark | median time | median throughput |")
print("|---|---|---|")
for est in sorted(root.glob("**/new/estimates.json")):
    bench = json.loads((est.parent / "benchmark.json").read_text())
    ns = json.loads(est.read_text())["median"]["point_estimate"]
    tp = bench.get("throughput") or {}
    rate = ""
    if "Bytes" in tp:
        gbps = tp["Bytes"] / ns  # bytes per ns = GB/s
        rate = f"{gbps:.2f} GB/s ({gbps * 8:.1f} Gbit/s)" if gbps >= 1 else f"{gbps * 1000:.0f} MB/s"
    t = f"{ns / 1000:.2f} µs" if ns >= 1000 else f"{ns:.0f} ns"
    print(f"| {bench['full_id']} | {t} | {rate} |")
