//! Arbitrary bytes as an RTSP request, plaintext and as a sealed (`rtspenc://`) message.
#![no_main]
use libfuzzer_sys::fuzz_target;
use punktfunk_core::crypto::Gcm;
use punktfunk_core::gamestream::rtsp;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((req, used))) = rtsp::parse(data) {
        assert!(used <= data.len());
        let _ = req.cseq();
    }
    let gcm = Gcm::new(&[5; 16]);
    let _ = rtsp::sealed_len(data);
    let _ = rtsp::open(&gcm, data);
    // A validly sealed message around the same bytes must open to them.
    let sealed = rtsp::seal_as_client(&gcm, 1, data);
    if data.len() <= rtsp::MAX_HEAD + rtsp::MAX_BODY {
        assert_eq!(rtsp::open(&gcm, &sealed).unwrap(), data);
    }
});
