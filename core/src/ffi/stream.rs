//! The video data plane: a sender packetizes frames into datagrams, a receiver
//! authenticates, recovers and reassembles them.

use super::{PF_ERR_NULL, PF_ERR_PANIC, PF_ERR_REJECTED, PF_ERR_TOO_LARGE, PF_OK, guard, handle, read_sized, release, slice};
use crate::native::{FrameEvent, Receiver, Sender, StreamConfig};
use crate::stats::Stats;

pub const PF_EVENT_FRAME: u32 = 1;
pub const PF_EVENT_LOST: u32 = 2;

/// Mirrors [`StreamConfig`]; set `struct_size = sizeof(PfStreamConfig)`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PfStreamConfig {
    pub struct_size: u32,
    pub shard_len: u32,
    pub max_data_shards: u32,
    pub fec_percent: u16,
    pub min_parity: u16,
    pub max_frame_len: u32,
    pub frames_in_flight: u32,
    /// Non-zero: encrypt/authenticate with `key`.
    pub encrypted: u8,
    pub key: [u8; 16],
}

/// Datagrams of one frame, back to back; valid until the next call on the same sender.
#[repr(C)]
pub struct PfDatagrams {
    pub data: *const u8,
    pub count: usize,
    pub datagram_len: usize,
}

/// A receiver event; `data` is valid only during the callback.
#[repr(C)]
pub struct PfFrameEvent {
    pub kind: u32,
    pub frame_id: u32,
    pub keyframe: u8,
    /// A repair of a reported loss (`punktfunk_recovery_arrived`); in what was padding
    /// before, so older callers are unaffected.
    pub repair: u8,
    pub timestamp_us: u64,
    pub recovered_shards: u32,
    pub data: *const u8,
    pub len: usize,
}

pub type PfFrameCallback = Option<unsafe extern "C" fn(user: *mut core::ffi::c_void, event: *const PfFrameEvent)>;

/// Opaque sender handle.
pub struct PfSender(Sender);
/// Opaque receiver handle.
pub struct PfReceiver(Receiver);

unsafe fn read_config(cfg: *const PfStreamConfig) -> Option<StreamConfig> {
    let empty = PfStreamConfig {
        struct_size: 0,
        shard_len: 0,
        max_data_shards: 0,
        fec_percent: 0,
        min_parity: 0,
        max_frame_len: 0,
        frames_in_flight: 0,
        encrypted: 0,
        key: [0; 16],
    };
    let c = unsafe { read_sized(cfg, std::mem::offset_of!(PfStreamConfig, key) + 16, empty) }?;
    Some(StreamConfig {
        shard_len: c.shard_len as usize,
        max_data_shards: c.max_data_shards as usize,
        fec_percent: c.fec_percent,
        // The C ABI's streams keep a fixed parity.
        max_fec_percent: 0,
        min_parity: c.min_parity,
        max_frame_len: c.max_frame_len as usize,
        frames_in_flight: c.frames_in_flight as usize,
        key: (c.encrypted != 0).then_some(c.key),
    })
}

/// Fills `out` with the library's defaults (shard 1400 B, 20 % FEC, no key).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn punktfunk_stream_config_default(out: *mut PfStreamConfig) -> i32 {
    let Some(out) = (unsafe { out.as_mut() }) else { return PF_ERR_NULL };
    let d = StreamConfig::default();
    *out = PfStreamConfig {
        struct_size: size_of::<PfStreamConfig>() as u32,
        shard_len: d.shard_len as u32,
        max_data_shards: d.max_data_shards as u32,
        fec_percent: d.fec_percent,
        min_parity: d.min_parity,
        max_frame_len: d.max_frame_len as u32,
        frames_in_flight: d.frames_in_flight as u32,
        encrypted: 0,
        key: [0; 16],
    };
    PF_OK
}

/// Returns NULL if the config is invalid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn punktfunk_sender_new(cfg: *const PfStreamConfig) -> *mut PfSender {
    handle(|| unsafe { read_config(cfg) }.and_then(|c| Sender::new(c).ok()).map(PfSender))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn punktfunk_sender_free(s: *mut PfSender) {
    unsafe { release(s) }
}

/// Packetizes one frame; `out` points into the sender until its next call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn punktfunk_sender_packetize(
    s: *mut PfSender,
    frame_id: u32,
    keyframe: u8,
    timestamp_us: u64,
    data: *const u8,
    len: usize,
    out: *mut PfDatagrams,
) -> i32 {
    guard(PF_ERR_PANIC, || {
        let (Some(s), Some(out)) = (unsafe { s.as_mut() }, unsafe { out.as_mut() }) else { return PF_ERR_NULL };
        let Some(bytes) = (unsafe { slice(data, len) }) else { return PF_ERR_NULL };
        let frame = crate::native::Frame { id: frame_id, keyframe: keyframe != 0, repair: false, timestamp_us, data: bytes };
        match s.0.packetize(&frame) {
            Ok(d) => {
                *out = PfDatagrams { data: d.as_bytes().as_ptr(), count: d.count(), datagram_len: d.datagram_len() };
                PF_OK
            }
            Err(_) => PF_ERR_TOO_LARGE,
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn punktfunk_receiver_new(cfg: *const PfStreamConfig) -> *mut PfReceiver {
    handle(|| unsafe { read_config(cfg) }.and_then(|c| Receiver::new(c).ok()).map(PfReceiver))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn punktfunk_receiver_free(r: *mut PfReceiver) {
    unsafe { release(r) }
}

/// Feeds one received datagram; `cb` is called for each completed or lost frame. The
/// callback must not call back into the same receiver (no push, no free).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn punktfunk_receiver_push(
    r: *mut PfReceiver,
    data: *const u8,
    len: usize,
    cb: PfFrameCallback,
    user: *mut core::ffi::c_void,
) -> i32 {
    guard(PF_ERR_PANIC, || {
        let Some(r) = (unsafe { r.as_mut() }) else { return PF_ERR_NULL };
        let Some(bytes) = (unsafe { slice(data, len) }) else { return PF_ERR_NULL };
        let res = r.0.push(bytes, |ev| {
            let e = match ev {
                FrameEvent::Frame { id, keyframe, repair, timestamp_us, recovered_shards, data } => PfFrameEvent {
                    kind: PF_EVENT_FRAME,
                    frame_id: id,
                    keyframe: keyframe.into(),
                    repair: repair.into(),
                    timestamp_us,
                    recovered_shards: recovered_shards as u32,
                    data: data.as_ptr(),
                    len: data.len(),
                },
                FrameEvent::Lost { id } => PfFrameEvent {
                    kind: PF_EVENT_LOST,
                    frame_id: id,
                    keyframe: 0,
                    repair: 0,
                    timestamp_us: 0,
                    recovered_shards: 0,
                    data: std::ptr::null(),
                    len: 0,
                },
            };
            if let Some(cb) = cb {
                unsafe { cb(user, &e) };
            }
        });
        if res.is_ok() { PF_OK } else { PF_ERR_REJECTED }
    })
}

/// Copies the receiver's counters into `out`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn punktfunk_receiver_stats(r: *const PfReceiver, out: *mut Stats) -> i32 {
    let (Some(r), Some(out)) = (unsafe { r.as_ref() }, unsafe { out.as_mut() }) else { return PF_ERR_NULL };
    *out = *r.0.stats();
    PF_OK
}

/// Copies the sender's counters into `out`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn punktfunk_sender_stats(s: *const PfSender, out: *mut Stats) -> i32 {
    let (Some(s), Some(out)) = (unsafe { s.as_ref() }, unsafe { out.as_mut() }) else { return PF_ERR_NULL };
    *out = s.0.stats;
    PF_OK
}
