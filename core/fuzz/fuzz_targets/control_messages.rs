//! Arbitrary bytes on a punktfunk/1 control stream (both directions' messages) and as
//! pairing messages: errors, never panics or unbounded buffering.
#![no_main]
use libfuzzer_sys::fuzz_target;
use punktfunk_core::control::framing::Reader;
use punktfunk_core::control::messages::{ClientMessage, HostMessage};
use punktfunk_core::control::pairing::{ClientPairing, HostPairing};

fuzz_target!(|data: &[u8]| {
    let (mut host, mut client) = (Reader::default(), Reader::default());
    for chunk in data.chunks(97) {
        host.push(chunk);
        client.push(chunk);
        while let Ok(Some(_)) = host.next::<ClientMessage>() {}
        while let Ok(Some(_)) = client.next::<HostMessage>() {}
    }
    let _ = HostPairing::respond("1234", &[1; 32], &[2; 32], data).map(|(h, _, _)| h.verify(data));
    let (pairing, _) = ClientPairing::start("1234", &[1; 32], &[2; 32]);
    let half = data.len() / 2;
    let _ = pairing.finish(&data[..half], &data[half..]);
});
