//! Arbitrary datagrams into the GameStream audio depacketizer, plain and encrypted.
#![no_main]
use libfuzzer_sys::fuzz_target;
use punktfunk_core::gamestream::audio::AudioDepacketizer;

fuzz_target!(|data: &[u8]| {
    for key in [None, Some(([1u8; 16], 7))] {
        let mut rx = AudioDepacketizer::new(5, key);
        let mut rest = data;
        while let Some((&len, tail)) = rest.split_first() {
            let n = (len as usize).min(tail.len());
            let _ = rx.push(&tail[..n], |_| {});
            rest = &tail[n..];
        }
    }
});
