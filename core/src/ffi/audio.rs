//! The small sealed datagrams beside video: open the host's sound (then decode the Opus
//! packet with the platform's Opus); seal the data-plane hello and the microphone's Opus
//! packets for the host. All share the data-plane socket with video;
//! `punktfunk_datagram_kind` tells them apart.

use super::{PF_ERR_NULL, PF_ERR_PANIC, PF_ERR_REJECTED, PF_ERR_TOO_LARGE, PF_OK, PfBytes, guard, handle, key, release, slice};
use crate::native::audio::{AudioOpener, AudioSealer, KIND_HELLO, KIND_MIC, KIND_SOUND, kind};

pub const PF_DATAGRAM_UNKNOWN: u32 = 0;
pub const PF_DATAGRAM_VIDEO: u32 = 1;
pub const PF_DATAGRAM_SOUND: u32 = 2;
pub const PF_DATAGRAM_MIC: u32 = 3;
pub const PF_DATAGRAM_HELLO: u32 = 4;

/// One authenticated sound packet; `opus` is valid until the next call on the opener.
#[repr(C)]
pub struct PfAudioPacket {
    pub seq: u64,
    pub timestamp_us: u64,
    pub opus: *const u8,
    pub len: usize,
}

/// Opaque handle: authenticates and de-duplicates the host's sound datagrams.
pub struct PfSoundOpener(AudioOpener);
/// Opaque handle: seals the client's datagrams of one kind (hellos, or microphone packets).
pub struct PfSealer(AudioSealer);

/// What a data-plane datagram carries (PF_DATAGRAM_*), from its first bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn punktfunk_datagram_kind(data: *const u8, len: usize) -> u32 {
    match unsafe { slice(data, len) }.and_then(kind) {
        Some(k @ 1..=4) => u32::from(k),
        _ => PF_DATAGRAM_UNKNOWN,
    }
}

/// `key`: the 16-byte host → client key of `PfStarted`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn punktfunk_sound_opener_new(key_: *const u8) -> *mut PfSoundOpener {
    handle(|| unsafe { key(key_) }.map(|k| PfSoundOpener(AudioOpener::new(&k, KIND_SOUND))))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn punktfunk_sound_opener_free(o: *mut PfSoundOpener) {
    unsafe { release(o) }
}

/// Opens a sound datagram. PF_ERR_REJECTED: malformed, forged, replayed or too late.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn punktfunk_sound_open(o: *mut PfSoundOpener, data: *const u8, len: usize, out: *mut PfAudioPacket) -> i32 {
    guard(PF_ERR_PANIC, || {
        let (Some(o), Some(out), Some(d)) = (unsafe { o.as_mut() }, unsafe { out.as_mut() }, unsafe { slice(data, len) }) else {
            return PF_ERR_NULL;
        };
        match o.0.open(d) {
            Ok(p) => {
                *out = PfAudioPacket { seq: p.seq, timestamp_us: p.timestamp_us, opus: p.opus.as_ptr(), len: p.opus.len() };
                PF_OK
            }
            Err(_) => PF_ERR_REJECTED,
        }
    })
}

fn sealer(key_: *const u8, kind: u8) -> *mut PfSealer {
    handle(|| unsafe { key(key_) }.map(|k| PfSealer(AudioSealer::new(&k, kind))))
}

/// Seals data-plane hellos (`punktfunk_seal` with no payload): send one from the data socket
/// to the host's data port every 100 ms until video arrives, then every second (a changed
/// address, after a NAT rebinding, is followed). `key`: `PfStarted.mic_key` (16 bytes).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn punktfunk_hello_sealer_new(key_: *const u8) -> *mut PfSealer {
    sealer(key_, KIND_HELLO)
}

/// Seals microphone Opus packets. `key`: `PfStarted.mic_key` (16 bytes). Make one sealer of
/// each kind per start and keep it (an audio route change included): a second one under the
/// same key would reuse its nonces. A new start brings a new key.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn punktfunk_mic_sealer_new(key_: *const u8) -> *mut PfSealer {
    sealer(key_, KIND_MIC)
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn punktfunk_sealer_free(s: *mut PfSealer) {
    unsafe { release(s) }
}

/// Seals one payload; `out` holds the datagram until the next call on the sealer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn punktfunk_seal(s: *mut PfSealer, payload: *const u8, len: usize, timestamp_us: u64, out: *mut PfBytes) -> i32 {
    guard(PF_ERR_PANIC, || {
        let (Some(s), Some(out), Some(payload)) = (unsafe { s.as_mut() }, unsafe { out.as_mut() }, unsafe { slice(payload, len) }) else {
            return PF_ERR_NULL;
        };
        match s.0.seal(payload, timestamp_us) {
            Some(d) => {
                *out = PfBytes { data: d.as_ptr(), len: d.len() };
                PF_OK
            }
            None => PF_ERR_TOO_LARGE,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_microphone_and_opened_sound_agree_with_the_rust_side() {
        let k = [7u8; 16];
        unsafe {
            let mic = punktfunk_mic_sealer_new(k.as_ptr());
            let mut d = PfBytes { data: std::ptr::null(), len: 0 };
            assert_eq!(punktfunk_seal(mic, b"opus".as_ptr(), 4, 99, &mut d), PF_OK);
            let sealed = std::slice::from_raw_parts(d.data, d.len).to_vec();
            punktfunk_sealer_free(mic);
            let mut host = AudioOpener::new(&k, KIND_MIC);
            let p = host.open(&sealed).unwrap();
            assert_eq!((p.seq, p.timestamp_us, p.opus), (0, 99, &b"opus"[..]));

            let mut host = AudioSealer::new(&k, KIND_SOUND);
            let sound = host.seal(b"sound", 5).unwrap().to_vec();
            assert_eq!(punktfunk_datagram_kind(sound.as_ptr(), sound.len()), PF_DATAGRAM_SOUND);
            let opener = punktfunk_sound_opener_new(k.as_ptr());
            let mut p = PfAudioPacket { seq: 9, timestamp_us: 0, opus: std::ptr::null(), len: 0 };
            assert_eq!(punktfunk_sound_open(opener, sound.as_ptr(), sound.len(), &mut p), PF_OK);
            assert_eq!(std::slice::from_raw_parts(p.opus, p.len), b"sound");
            assert_eq!(punktfunk_sound_open(opener, sound.as_ptr(), sound.len(), &mut p), PF_ERR_REJECTED, "a replay is refused");
            punktfunk_sound_opener_free(opener);
            assert!(punktfunk_sound_opener_new(std::ptr::null()).is_null());

            // A hello opens only as a hello, under the microphone's key.
            let hello = punktfunk_hello_sealer_new(k.as_ptr());
            assert_eq!(punktfunk_seal(hello, std::ptr::null(), 0, 1, &mut d), PF_OK);
            let sealed = std::slice::from_raw_parts(d.data, d.len).to_vec();
            punktfunk_sealer_free(hello);
            assert_eq!(punktfunk_datagram_kind(sealed.as_ptr(), sealed.len()), PF_DATAGRAM_HELLO);
            assert!(AudioOpener::new(&k, KIND_MIC).open(&sealed).is_err());
            assert!(AudioOpener::new(&[8; 16], KIND_HELLO).open(&sealed).is_err());
            assert_eq!(AudioOpener::new(&k, KIND_HELLO).open(&sealed).unwrap().seq, 0);
        }
    }
}
