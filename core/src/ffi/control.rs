//! The client side of the control connection ([`ClientControl`]) for clients whose QUIC is
//! the platform's: write what `punktfunk_control_output` holds to the control stream
//! (then `punktfunk_control_consume`), feed what arrives to `punktfunk_control_push`, and
//! handle events from `punktfunk_control_poll_event`. Pairing, message order and the clock
//! offset are done inside.

use super::{
    PF_ERR_NULL, PF_ERR_PANIC, PF_ERR_PROTOCOL, PF_ERR_REJECTED, PF_ERR_STATE, PF_ERR_TOO_LARGE, PF_OK, PfBytes, guard, handle, read_sized,
    release, slice, text,
};
use crate::control::ControlError;
use crate::control::client::{ClientControl, ClientEvent};
use crate::control::messages::{ReceiveStats, Reconfigure, StartRequest, Started};
use crate::input::InputEvent;
use core::ffi::c_char;
use std::ffi::CString;

pub const PF_CONTROL_WELCOME: u32 = 1;
pub const PF_CONTROL_PAIRED: u32 = 2;
pub const PF_CONTROL_PAIR_FAILED: u32 = 3;
pub const PF_CONTROL_REFUSED: u32 = 4;
pub const PF_CONTROL_STARTED: u32 = 5;
pub const PF_CONTROL_RECONFIGURED: u32 = 6;
pub const PF_CONTROL_ENDED: u32 = 7;
pub const PF_CONTROL_CLOCK: u32 = 8;
/// `text`: what an app in the session copied (asked for with PF_START_CLIPBOARD).
pub const PF_CONTROL_CLIPBOARD: u32 = 9;
/// `text`: what a game asked of one of the client's controllers, as punktfunk/1 carries it
/// (JSON, core/PROTOCOL.md "Gamepads"), e.g. `{"rumble":{"number":0,"low":65535,"high":0}}`.
pub const PF_CONTROL_PAD: u32 = 10;

pub const PF_CODEC_H264: u32 = 0;
pub const PF_CODEC_HEVC: u32 = 1;
pub const PF_CODEC_AV1: u32 = 2;
/// `PfStartRequest.flags`: 10-bit video (PF_CODEC_HEVC or PF_CODEC_AV1).
pub const PF_START_TEN_BIT: u32 = 1;
/// `PfStartRequest.flags`: full-resolution chroma (4:4:4).
pub const PF_START_YUV444: u32 = 2;
/// `PfStartRequest.flags`: share the clipboard (where the host permits this client).
pub const PF_START_CLIPBOARD: u32 = 4;
/// `PfStartRequest.flags`: this client follows `punktfunk_recovery_*` after a loss (drops
/// frames until a repair, reports losses with `punktfunk_control_frames_lost`): the host
/// may repair a loss from an older picture instead of sending a key frame.
pub const PF_START_REPAIRS: u32 = 8;

pub const PF_INPUT_KEY: u32 = 1;
pub const PF_INPUT_TEXT: u32 = 2;
pub const PF_INPUT_POINTER_MOTION: u32 = 3;
pub const PF_INPUT_POINTER_RELATIVE: u32 = 4;
pub const PF_INPUT_BUTTON: u32 = 5;
pub const PF_INPUT_SCROLL: u32 = 6;
pub const PF_INPUT_TOUCH_DOWN: u32 = 7;
pub const PF_INPUT_TOUCH_MOTION: u32 = 8;
pub const PF_INPUT_TOUCH_UP: u32 = 9;

/// What a stream needs to run: the host's `Started`, field for field (the conversion below
/// names every field, so one added to `Started` does not build until it is here too).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct PfStarted {
    /// The host's data-plane UDP port: send hellos there (`punktfunk_hello_sealer_new`).
    pub data_port: u16,
    pub token: u64,
    /// Host → client key (video and sound).
    pub key: [u8; 16],
    /// Client → host key (microphone).
    pub mic_key: [u8; 16],
    pub shard_len: u32,
    pub fec_percent: u16,
    pub max_frame_len: u32,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// The video is 10-bit (HEVC Main10, AV1).
    pub ten_bit: bool,
    /// The video is 4:4:4.
    pub yuv444: bool,
    /// The host repairs reported losses (asked for with `PF_START_REPAIRS`); in what was
    /// padding before, so older callers are unaffected.
    pub repairs: bool,
}

impl From<&Started> for PfStarted {
    fn from(s: &Started) -> Self {
        // The C ABI's streams keep a fixed parity (`fec_max_percent` is not passed on).
        let Started {
            data_port,
            token,
            key,
            mic_key,
            shard_len,
            fec_percent,
            max_frame_len,
            width,
            height,
            fps,
            ten_bit,
            yuv444,
            repairs,
            ..
        } = *s;
        Self { data_port, token, key, mic_key, shard_len, fec_percent, max_frame_len, width, height, fps, ten_bit, yuv444, repairs }
    }
}

/// One control event. Which fields mean something depends on `kind`.
#[repr(C)]
pub struct PfControlEvent {
    pub kind: u32,
    /// WELCOME: the host's name; PAIR_FAILED, REFUSED, ENDED: why. NUL-terminated UTF-8,
    /// valid until the next call on the handle; NULL for other kinds.
    pub text: *const c_char,
    /// WELCOME: 1 if the host knows this client's certificate.
    pub paired: u8,
    /// STARTED.
    pub started: PfStarted,
    /// RECONFIGURED: the bitrate and mode now in force (0 where unchanged).
    pub bitrate_kbps: u32,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// CLOCK: host clock − client clock, and the round trip that measured it (µs).
    pub clock_offset_us: i64,
    pub rtt_us: u64,
}

/// What to launch and how to stream it; set `struct_size = sizeof(PfStartRequest)`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PfStartRequest {
    pub struct_size: u32,
    /// App title from the host's catalog; NULL or "" for the desktop.
    pub app: *const c_char,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// PF_CODEC_H264, PF_CODEC_HEVC or PF_CODEC_AV1.
    pub codec: u32,
    pub bitrate_kbps: u32,
    pub fec_percent: u16,
    pub shard_len: u32,
    /// Set to 0. It sits where 64-bit callers built before `flags` had padding (not zeroed
    /// by every compiler), so `flags` starts past it.
    pub reserved: u32,
    /// PF_START_* bits (appended in ABI 2: callers built before it leave it out and get 0).
    pub flags: u32,
}

/// An input event. Positions are in stream pixels.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PfInputEvent {
    /// PF_INPUT_*.
    pub kind: u32,
    /// KEY: Linux evdev key code; BUTTON: evdev button code (BTN_LEFT = 0x110).
    pub code: u32,
    /// KEY, BUTTON: 1 pressed, 0 released.
    pub pressed: u8,
    /// POINTER_MOTION, TOUCH_*: position; POINTER_RELATIVE: the motion.
    pub x: f64,
    pub y: f64,
    /// SCROLL: 1/120 detents, positive down or right; `vertical` 1 for the vertical axis.
    pub v120: i32,
    pub vertical: u8,
    /// TOUCH_*: which finger.
    pub touch_id: u32,
    /// TEXT: NUL-terminated UTF-8.
    pub text: *const c_char,
}

/// The client's receive figures, reported to the host about once a second.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PfReceiveStats {
    pub frames_received: u64,
    pub frames_lost: u64,
    pub frames_recovered: u64,
    pub datagrams: u64,
    pub audio_packets: u64,
    pub latency_us_p50: u64,
}

/// Opaque control-connection handle.
pub struct PfControl {
    control: ClientControl,
    /// The text of the last event handed out.
    text: CString,
}

fn code(r: Result<(), ControlError>) -> i32 {
    match r {
        Ok(()) => PF_OK,
        Err(ControlError::State(_)) => PF_ERR_STATE,
        Err(_) => PF_ERR_PROTOCOL,
    }
}

/// Runs `f` on the handle, mapping the outcome to a status code.
unsafe fn with(h: *mut PfControl, f: impl FnOnce(&mut PfControl) -> i32) -> i32 {
    guard(PF_ERR_PANIC, || match unsafe { h.as_mut() } {
        Some(h) => f(h),
        None => PF_ERR_NULL,
    })
}

/// A new connection, hello queued; `name` is what the host calls this client.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn punktfunk_control_new(name: *const c_char) -> *mut PfControl {
    handle(|| unsafe { text(name) }.map(|name| PfControl { control: ClientControl::new(name), text: CString::default() }))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn punktfunk_control_free(h: *mut PfControl) {
    unsafe { release(h) }
}

/// Bytes the host sent on the control stream. `now_us`: a monotonic clock in µs (the one
/// passed to `punktfunk_control_ping`). PF_ERR_PROTOCOL: close the connection.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn punktfunk_control_push(h: *mut PfControl, data: *const u8, len: usize, now_us: u64) -> i32 {
    unsafe {
        with(h, |h| match slice(data, len) {
            Some(bytes) => code(h.control.push(bytes, now_us)),
            None => PF_ERR_NULL,
        })
    }
}

/// The bytes waiting to be written to the control stream (possibly none).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn punktfunk_control_output(h: *mut PfControl, out: *mut PfBytes) -> i32 {
    unsafe {
        with(h, |h| match out.as_mut() {
            Some(out) => {
                *out = PfBytes { data: h.control.output().as_ptr(), len: h.control.output().len() };
                PF_OK
            }
            None => PF_ERR_NULL,
        })
    }
}

/// Marks `written` bytes of the output as sent.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn punktfunk_control_consume(h: *mut PfControl, written: usize) -> i32 {
    unsafe {
        with(h, |h| {
            h.control.consume_output(written);
            PF_OK
        })
    }
}

/// Writes the next event to `out` and returns 1, or returns 0 when there is none.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn punktfunk_control_poll_event(h: *mut PfControl, out: *mut PfControlEvent) -> i32 {
    unsafe {
        with(h, |h| {
            let Some(out) = out.as_mut() else { return PF_ERR_NULL };
            let Some(event) = h.control.poll_event() else { return 0 };
            let mut e = PfControlEvent {
                kind: 0,
                text: std::ptr::null(),
                paired: 0,
                started: PfStarted::default(),
                bitrate_kbps: 0,
                width: 0,
                height: 0,
                fps: 0,
                clock_offset_us: 0,
                rtt_us: 0,
            };
            let mut say = |s: String| {
                h.text = CString::new(s.replace('\0', " ")).expect("NULs replaced");
                h.text.as_ptr()
            };
            match event {
                ClientEvent::Welcome { name, paired } => (e.kind, e.text, e.paired) = (PF_CONTROL_WELCOME, say(name), paired.into()),
                ClientEvent::Paired => e.kind = PF_CONTROL_PAIRED,
                ClientEvent::PairFailed { reason } => (e.kind, e.text) = (PF_CONTROL_PAIR_FAILED, say(reason)),
                ClientEvent::Refused { reason } => (e.kind, e.text) = (PF_CONTROL_REFUSED, say(reason)),
                ClientEvent::Ended { reason } => (e.kind, e.text) = (PF_CONTROL_ENDED, say(reason)),
                ClientEvent::Started(s) => {
                    e.kind = PF_CONTROL_STARTED;
                    e.started = PfStarted::from(&s);
                }
                ClientEvent::Reconfigured(r) => {
                    e.kind = PF_CONTROL_RECONFIGURED;
                    e.bitrate_kbps = r.bitrate_kbps.unwrap_or(0);
                    (e.width, e.height, e.fps) = r.mode.unwrap_or_default();
                }
                ClientEvent::Clock { offset_us, rtt_us } => (e.kind, e.clock_offset_us, e.rtt_us) = (PF_CONTROL_CLOCK, offset_us, rtt_us),
                ClientEvent::Clipboard { text } => (e.kind, e.text) = (PF_CONTROL_CLIPBOARD, say(text)),
                ClientEvent::Pad(feedback) => {
                    let json = serde_json::to_string(&feedback).expect("a plain enum serializes");
                    (e.kind, e.text) = (PF_CONTROL_PAD, say(json))
                }
            }
            *out = e;
            1
        })
    }
}

/// Starts PIN pairing. `pin`: the PIN this client shows its user; `client_fp`, `host_fp`:
/// SHA-256 (32 bytes) of this client's certificate and of the one the host showed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn punktfunk_control_pair(h: *mut PfControl, pin: *const c_char, client_fp: *const u8, host_fp: *const u8) -> i32 {
    unsafe {
        with(h, |h| {
            let (Some(pin), false, false) = (text(pin), client_fp.is_null(), host_fp.is_null()) else { return PF_ERR_NULL };
            let (c, s) = (std::ptr::read_unaligned(client_fp.cast::<[u8; 32]>()), std::ptr::read_unaligned(host_fp.cast::<[u8; 32]>()));
            code(h.control.pair(pin, &c, &s))
        })
    }
}

/// What callers built before `flags` pass: the fields up to `shard_len`.
const OLD_START_REQUEST: usize = std::mem::offset_of!(PfStartRequest, reserved);
const EMPTY_START_REQUEST: PfStartRequest = PfStartRequest {
    struct_size: 0,
    app: std::ptr::null(),
    width: 0,
    height: 0,
    fps: 0,
    codec: 0,
    bitrate_kbps: 0,
    fec_percent: 0,
    shard_len: 0,
    reserved: 0,
    flags: 0,
};

/// Launches (or resumes) an app and starts streaming. PF_ERR_STATE also for a request the
/// host could not serve (mode, codec, shard length out of range).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn punktfunk_control_start(h: *mut PfControl, request: *const PfStartRequest) -> i32 {
    unsafe {
        with(h, |h| {
            let Some(r) = read_sized(request, OLD_START_REQUEST, EMPTY_START_REQUEST) else { return PF_ERR_NULL };
            let app = if r.app.is_null() {
                ""
            } else {
                match text(r.app) {
                    Some(a) => a,
                    None => return PF_ERR_STATE,
                }
            };
            let codec = match r.codec {
                PF_CODEC_H264 => "h264",
                PF_CODEC_HEVC => "hevc",
                PF_CODEC_AV1 => "av1",
                _ => return PF_ERR_STATE,
            };
            let req = StartRequest {
                app: app.into(),
                width: r.width,
                height: r.height,
                fps: r.fps,
                codec: codec.into(),
                bitrate_kbps: r.bitrate_kbps,
                fec_percent: r.fec_percent,
                shard_len: r.shard_len,
                ten_bit: r.flags & PF_START_TEN_BIT != 0,
                yuv444: r.flags & PF_START_YUV444 != 0,
                // The C ABI's receivers keep the parity they agreed.
                fec_adaptive: false,
                clipboard: r.flags & PF_START_CLIPBOARD != 0,
                repairs: r.flags & PF_START_REPAIRS != 0,
            };
            code(h.control.start(&req))
        })
    }
}

/// Changes the running stream: a bitrate (0 keeps it) and/or a mode (all three 0 keep it).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn punktfunk_control_reconfigure(h: *mut PfControl, bitrate_kbps: u32, width: u32, height: u32, fps: u32) -> i32 {
    unsafe {
        with(h, |h| {
            let mode = (width, height, fps) != (0, 0, 0);
            code(h.control.reconfigure(Reconfigure {
                bitrate_kbps: (bitrate_kbps > 0).then_some(bitrate_kbps),
                mode: mode.then_some((width, height, fps)),
            }))
        })
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn punktfunk_control_input(h: *mut PfControl, event: *const PfInputEvent) -> i32 {
    unsafe {
        with(h, |h| {
            let Some(e) = event.as_ref() else { return PF_ERR_NULL };
            let input = match e.kind {
                PF_INPUT_KEY => InputEvent::Key { code: e.code, pressed: e.pressed != 0 },
                PF_INPUT_TEXT => match text(e.text) {
                    Some(t) => InputEvent::Text(t.into()),
                    None => return PF_ERR_NULL,
                },
                PF_INPUT_POINTER_MOTION => InputEvent::PointerMotion { x: e.x, y: e.y },
                PF_INPUT_POINTER_RELATIVE => InputEvent::PointerRelative { dx: e.x, dy: e.y },
                PF_INPUT_BUTTON => InputEvent::Button { code: e.code, pressed: e.pressed != 0 },
                PF_INPUT_SCROLL => InputEvent::Scroll { vertical: e.vertical != 0, v120: e.v120 },
                PF_INPUT_TOUCH_DOWN => InputEvent::TouchDown { id: e.touch_id, x: e.x, y: e.y },
                PF_INPUT_TOUCH_MOTION => InputEvent::TouchMotion { id: e.touch_id, x: e.x, y: e.y },
                PF_INPUT_TOUCH_UP => InputEvent::TouchUp { id: e.touch_id },
                _ => return PF_ERR_STATE,
            };
            code(h.control.input(input))
        })
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn punktfunk_control_request_keyframe(h: *mut PfControl) -> i32 {
    unsafe { with(h, |h| code(h.control.request_keyframe())) }
}

/// Frames `first..=last` were lost (what `punktfunk_recovery_lost` asks); a key frame
/// request where the host did not agree to repairs.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn punktfunk_control_frames_lost(h: *mut PfControl, first: u32, last: u32) -> i32 {
    unsafe { with(h, |h| code(h.control.frames_lost(first, last))) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn punktfunk_control_report(h: *mut PfControl, stats: *const PfReceiveStats) -> i32 {
    unsafe {
        with(h, |h| {
            let Some(s) = stats.as_ref() else { return PF_ERR_NULL };
            code(h.control.report(ReceiveStats {
                frames_received: s.frames_received,
                frames_lost: s.frames_lost,
                frames_recovered: s.frames_recovered,
                datagrams: s.datagrams,
                audio_packets: s.audio_packets,
                latency_us_p50: s.latency_us_p50,
                // C ABI streams keep a fixed parity: nothing for the tuner.
                video_lost: 0,
                video_burst: 0,
            }))
        })
    }
}

/// Asks for the host's clock; the answer arrives as a CLOCK event. About once a second.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn punktfunk_control_ping(h: *mut PfControl, now_us: u64) -> i32 {
    unsafe { with(h, |h| code(h.control.ping(now_us))) }
}

/// Tells the host this client's clipboard holds `text` (UTF-8); PF_ERR_TOO_LARGE (nothing
/// sent) beyond the protocol's 32 KiB.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn punktfunk_control_clipboard(h: *mut PfControl, text: *const c_char) -> i32 {
    unsafe {
        with(h, |h| {
            let Some(text) = super::text(text) else { return PF_ERR_NULL };
            match h.control.clipboard(text) {
                Ok(true) => PF_OK,
                Ok(false) => PF_ERR_TOO_LARGE,
                Err(e) => code(Err(e)),
            }
        })
    }
}

/// Tells the host what one of this client's controllers did: `event` is a punktfunk/1 pad
/// event as JSON (core/PROTOCOL.md "Gamepads"), e.g.
/// `{"state":{"number":0,"active_mask":1,"buttons":4096,…}}`; PF_ERR_REJECTED if it is not one.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn punktfunk_control_pad(h: *mut PfControl, event: *const c_char) -> i32 {
    unsafe {
        with(h, |h| {
            let Some(event) = text(event) else { return PF_ERR_NULL };
            match serde_json::from_str(event) {
                Ok(event) => code(h.control.pad(event)),
                Err(_) => PF_ERR_REJECTED,
            }
        })
    }
}

/// Ends the session (the host quits the app and answers ENDED).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn punktfunk_control_stop(h: *mut PfControl) -> i32 {
    unsafe { with(h, |h| code(h.control.stop())) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_old_callers_start_request_has_no_flags_whatever_its_padding_holds() {
        // A caller built before `flags`: its struct ends where `reserved` starts (64-bit
        // compilers pad it to 48 bytes, and the padding may hold anything).
        let old = PfStartRequest {
            struct_size: std::mem::offset_of!(PfStartRequest, reserved).next_multiple_of(align_of::<PfStartRequest>()) as u32,
            reserved: !0,
            flags: !0,
            codec: PF_CODEC_HEVC,
            ..EMPTY_START_REQUEST
        };
        let r = unsafe { read_sized(&old, OLD_START_REQUEST, EMPTY_START_REQUEST) }.unwrap();
        assert_eq!((r.codec, r.flags), (PF_CODEC_HEVC, 0));
        let new = PfStartRequest { struct_size: size_of::<PfStartRequest>() as u32, flags: PF_START_TEN_BIT, ..old };
        assert_eq!(unsafe { read_sized(&new, OLD_START_REQUEST, EMPTY_START_REQUEST) }.unwrap().flags, PF_START_TEN_BIT);
    }
}
