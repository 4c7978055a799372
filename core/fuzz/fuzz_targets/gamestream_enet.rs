//! Arbitrary datagrams at the control port's admission: classified without panicking, and
//! only a CONNECT long enough to carry its data is one.
#![no_main]
use libfuzzer_sys::fuzz_target;
use punktfunk_core::gamestream::enet::{Datagram, classify};

fuzz_target!(|data: &[u8]| {
    for checksum in [false, true] {
        if let Datagram::Connect { .. } = classify(data, checksum) {
            assert!(data.len() >= 2 + 48);
        }
    }
});
