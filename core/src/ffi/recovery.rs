//! Mending lost frames ([`Recovery`]): after a loss, which frames to decode and what to ask
//! the host. A client that sets `PF_START_REPAIRS` feeds it every receiver event and follows
//! it: frames it says to drop never reach the decoder, and each ask goes to the host
//! (`punktfunk_control_frames_lost` or `punktfunk_control_request_keyframe`).

use super::{PF_ERR_NULL, PF_ERR_PANIC, guard, handle, release};
use crate::native::recovery::{Ask, Recovery, Verdict};

/// `PfAsk.kind`: report frames `first..=last` lost (`punktfunk_control_frames_lost`).
pub const PF_ASK_REPAIR: u32 = 1;
/// `PfAsk.kind`: ask for a key frame (`punktfunk_control_request_keyframe`).
pub const PF_ASK_KEYFRAME: u32 = 2;

/// What to tell the host.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct PfAsk {
    pub kind: u32,
    pub first: u32,
    pub last: u32,
}

/// Opaque recovery handle.
pub struct PfRecovery(Recovery);

/// Writes `ask` (if any) to `out`: 1 when there is one, 0 when not.
fn answer(ask: Option<Ask>, out: &mut PfAsk) -> i32 {
    *out = match ask {
        Some(Ask::Repair { first, last }) => PfAsk { kind: PF_ASK_REPAIR, first, last },
        Some(Ask::Keyframe) => PfAsk { kind: PF_ASK_KEYFRAME, first: 0, last: 0 },
        None => return 0,
    };
    1
}

/// `repairs`: the host's `started.repairs` (non-zero: it repairs reported losses).
#[unsafe(no_mangle)]
pub extern "C" fn punktfunk_recovery_new(repairs: u8) -> *mut PfRecovery {
    handle(|| Some(PfRecovery(Recovery::new(repairs != 0))))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn punktfunk_recovery_free(r: *mut PfRecovery) {
    unsafe { release(r) }
}

/// A `PF_EVENT_LOST` for `frame_id` at `now_us` (any monotonic µs clock): 1 and `out` filled
/// when the host must be told, 0 when not.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn punktfunk_recovery_lost(r: *mut PfRecovery, frame_id: u32, now_us: u64, out: *mut PfAsk) -> i32 {
    guard(PF_ERR_PANIC, || {
        let (Some(r), Some(out)) = (unsafe { r.as_mut() }, unsafe { out.as_mut() }) else { return PF_ERR_NULL };
        answer(r.0.lost(frame_id, now_us), out)
    })
}

/// A `PF_EVENT_FRAME`: 1 to decode it, 0 to drop it (it refers to a picture the decoder
/// lacks).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn punktfunk_recovery_arrived(r: *mut PfRecovery, frame_id: u32, keyframe: u8, repair: u8) -> i32 {
    guard(PF_ERR_PANIC, || {
        let Some(r) = (unsafe { r.as_mut() }) else { return PF_ERR_NULL };
        i32::from(r.0.arrived(frame_id, keyframe != 0, repair != 0) == Verdict::Decode)
    })
}

/// The decoder refused a frame: `out` says to ask for a key frame (returns 1).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn punktfunk_recovery_refused(r: *mut PfRecovery, now_us: u64, out: *mut PfAsk) -> i32 {
    guard(PF_ERR_PANIC, || {
        let (Some(r), Some(out)) = (unsafe { r.as_mut() }, unsafe { out.as_mut() }) else { return PF_ERR_NULL };
        answer(Some(r.0.refused(now_us)), out)
    })
}

/// Call now and then (each received datagram, or every 100 ms): 1 and `out` filled when a
/// wait has gone on too long and a key frame must be asked for.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn punktfunk_recovery_poll(r: *mut PfRecovery, now_us: u64, out: *mut PfAsk) -> i32 {
    guard(PF_ERR_PANIC, || {
        let (Some(r), Some(out)) = (unsafe { r.as_mut() }, unsafe { out.as_mut() }) else { return PF_ERR_NULL };
        answer(r.0.poll(now_us), out)
    })
}
