//! Arbitrary `/launch` and `/resume` queries (`key=value&…`): parsed or refused with an error,
//! and what parses is within the documented bounds.
#![no_main]
use libfuzzer_sys::fuzz_target;
use punktfunk_core::gamestream::launch;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let pairs: Vec<(&str, &str)> = text.split('&').filter_map(|p| p.split_once('=')).collect();
    let param = |k: &str| pairs.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
    if let Ok(l) = launch::launch(param) {
        assert!((16..=8192).contains(&l.mode.width) && (16..=8192).contains(&l.mode.height));
        assert!(l.mode.refresh_mhz >= 1000 && l.mode.refresh_mhz <= 480_000);
    }
    let _ = launch::resume(param);
});
