//! Arbitrary text as an ANNOUNCE body: parsed requests stay within the validated ranges.
#![no_main]
use libfuzzer_sys::fuzz_target;
use punktfunk_core::gamestream::sdp::parse_announce;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(r) = parse_announce(text) {
        assert!(r.packet_size % 16 == 0 && (64..=16384).contains(&r.packet_size));
        assert!(r.width >= 1 && r.height >= 1 && r.fps >= 1);
        // 10 bits only where the codec carries them.
        assert!(!r.format().ten_bit || r.codec != punktfunk_core::stream::Codec::H264);
    }
});
