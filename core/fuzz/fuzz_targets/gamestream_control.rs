//! Arbitrary control-stream packets, raw and validly encrypted around arbitrary inner
//! messages, then input translation: errors are fine, panics are not.
#![no_main]
use libfuzzer_sys::fuzz_target;
use punktfunk_core::gamestream::control::{ControlCipher, Message, TYPE_INPUT};
use punktfunk_core::gamestream::input::{Translator, parse};

fuzz_target!(|data: &[u8]| {
    let cipher = ControlCipher::new(&[9; 16]);
    let _ = cipher.decode(data);
    let mut t = Translator::new((1920, 1080));
    let mut out = Vec::new();
    if let Ok(Message::Input(p)) = cipher.decode(&cipher.seal_as_client(0, TYPE_INPUT, data)) {
        t.translate(p, &mut out);
    }
    if let Ok(p) = parse(data) {
        t.translate(p, &mut out);
    }
    for e in &out {
        if let punktfunk_core::input::InputEvent::PointerMotion { x, y } = e {
            assert!(x.is_finite() && y.is_finite());
        }
    }
});
