//! Arbitrary datagrams into the GameStream video depacketizer, plain and encrypted.
#![no_main]
use libfuzzer_sys::fuzz_target;
use punktfunk_core::gamestream::video::{VideoConfig, VideoDepacketizer};

fuzz_target!(|data: &[u8]| {
    for key in [None, Some([1u8; 16])] {
        let cfg = VideoConfig { packet_size: 128, fec_percent: 20, min_parity: 2, key };
        let mut rx = VideoDepacketizer::new(cfg, 4).unwrap();
        // The input is a sequence of datagrams, each prefixed by one length byte.
        let mut rest = data;
        while let Some((&len, tail)) = rest.split_first() {
            let n = (len as usize).min(tail.len());
            let _ = rx.push(&tail[..n], |_| {});
            rest = &tail[n..];
        }
    }
});
