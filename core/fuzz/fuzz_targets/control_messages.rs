//! Arbitrary bytes on a punktfunk/1 control stream (both directions' messages, and into the
//! client's state machine, welcomed and pairing) and as pairing messages: errors, never
//! panics or unbounded buffering.
#![no_main]
use libfuzzer_sys::fuzz_target;
use punktfunk_core::control::client::ClientControl;
use punktfunk_core::control::framing::{self, Reader};
use punktfunk_core::control::messages::{ClientMessage, HostMessage};
use punktfunk_core::control::pairing::{ClientPairing, HostPairing};

fuzz_target!(|data: &[u8]| {
    let (mut host, mut client) = (Reader::default(), Reader::default());
    for chunk in data.chunks(97) {
        host.push(chunk);
        client.push(chunk);
        while let Ok(Some(_)) = host.next_message::<ClientMessage>() {}
        while let Ok(Some(_)) = client.next_message::<HostMessage>() {}
    }
    let mut c = ClientControl::new("fuzz");
    let _ = c.push(&framing::encode(&HostMessage::Welcome { version: 1, name: "h".into(), paired: false }), 0);
    let _ = c.pair("1234", &[1; 32], &[2; 32]);
    for (i, chunk) in data.chunks(61).enumerate() {
        let _ = c.push(chunk, i as u64);
        while c.poll_event().is_some() {}
        let _ = c.ping(i as u64);
        c.take_output();
    }
    let _ = HostPairing::respond("1234", &[1; 32], &[2; 32], data).map(|(h, _, _)| h.verify(data));
    let (pairing, _) = ClientPairing::start("1234", &[1; 32], &[2; 32]);
    let half = data.len() / 2;
    let _ = pairing.finish(&data[..half], &data[half..]);
});
