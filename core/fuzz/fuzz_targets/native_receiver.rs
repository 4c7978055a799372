//! Arbitrary datagrams into the punktfunk/1 receiver (unencrypted, so headers that parse
//! reach reassembly and FEC).
#![no_main]
use libfuzzer_sys::fuzz_target;
use punktfunk_core::native::{Receiver, StreamConfig};

fuzz_target!(|data: &[u8]| {
    let cfg = StreamConfig { shard_len: 16, max_data_shards: 8, max_frame_len: 4096, ..StreamConfig::default() };
    let mut rx = Receiver::new(cfg).unwrap();
    let len = cfg.datagram_len();
    // Fixed-size datagrams: anything else is rejected before the header is read.
    for d in data.chunks(len) {
        let _ = rx.push(d, |_| {});
    }
});
