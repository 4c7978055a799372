//! The C ABI for native clients (Apple, Android) and anything else that cannot link Rust:
//! the data plane ([`stream`]: video frames, [`audio`]: sound and microphone datagrams,
//! [`recovery`]: what to decode and ask after a loss) and the control connection's client
//! side ([`control`]) around the platform's own QUIC.
//!
//! Rules: opaque handles; every handle has a `_free`; config structs start with their own
//! size so fields can be appended without breaking old callers; no panic crosses the
//! boundary (every entry point catches and reports `PF_ERR_PANIC`). A handle is used by one
//! thread at a time. Pointers an entry point hands out stay valid until the next call on the
//! same handle.

#![allow(clippy::missing_safety_doc)]

pub mod audio;
pub mod control;
pub mod recovery;
pub mod stream;

use std::panic::{AssertUnwindSafe, catch_unwind};

/// Bumped on any incompatible change to this ABI.
// 3: `PfStarted` (inside `PfControlEvent`) carries `ten_bit` and `yuv444`.
pub const PF_ABI_VERSION: u32 = 3;

pub const PF_OK: i32 = 0;
pub const PF_ERR_NULL: i32 = -1;
pub const PF_ERR_CONFIG: i32 = -2;
pub const PF_ERR_TOO_LARGE: i32 = -3;
/// The datagram was rejected (malformed, unauthenticated, stale or duplicate); not fatal.
pub const PF_ERR_REJECTED: i32 = -4;
/// The call is not valid in the connection's current state (e.g. start before the welcome).
pub const PF_ERR_STATE: i32 = -5;
/// The peer broke the protocol; close the connection.
pub const PF_ERR_PROTOCOL: i32 = -6;
pub const PF_ERR_PANIC: i32 = -99;

/// Bytes handed out by the library; valid until the next call on the same handle.
#[repr(C)]
pub struct PfBytes {
    pub data: *const u8,
    pub len: usize,
}

fn guard<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// A new handle holding what `make` builds; NULL when it builds nothing (or panics).
fn handle<T>(make: impl FnOnce() -> Option<T>) -> *mut T {
    guard(std::ptr::null_mut(), || make().map_or(std::ptr::null_mut(), |h| Box::into_raw(Box::new(h))))
}

/// Releases a handle made by [`handle`]; NULL is ignored.
unsafe fn release<T>(h: *mut T) {
    if !h.is_null() {
        drop(unsafe { Box::from_raw(h) });
    }
}

/// A byte slice from C; `None` for NULL with a non-zero length.
unsafe fn slice<'a>(data: *const u8, len: usize) -> Option<&'a [u8]> {
    match (data.is_null(), len) {
        (_, 0) => Some(&[]),
        (true, _) => None,
        (false, _) => Some(unsafe { std::slice::from_raw_parts(data, len) }),
    }
}

/// Reads a struct that begins with its own `u32` size: a caller built against an older,
/// shorter struct keeps working when fields are appended (the fields it lacks keep `base`'s
/// values). `None` for NULL or a size below `required`.
unsafe fn read_sized<T: Copy>(ptr: *const T, required: usize, mut base: T) -> Option<T> {
    if ptr.is_null() {
        return None;
    }
    let size = unsafe { std::ptr::read_unaligned(ptr.cast::<u32>()) } as usize;
    if size < required {
        return None;
    }
    let n = size.min(size_of::<T>());
    unsafe { std::ptr::copy_nonoverlapping(ptr.cast::<u8>(), (&raw mut base).cast::<u8>(), n) };
    Some(base)
}

/// A 16-byte key from C.
unsafe fn key(ptr: *const u8) -> Option<[u8; 16]> {
    (!ptr.is_null()).then(|| unsafe { std::ptr::read_unaligned(ptr.cast::<[u8; 16]>()) })
}

/// A NUL-terminated UTF-8 string from C.
unsafe fn text<'a>(ptr: *const core::ffi::c_char) -> Option<&'a str> {
    if ptr.is_null() {
        return None;
    }
    unsafe { std::ffi::CStr::from_ptr(ptr) }.to_str().ok()
}

#[unsafe(no_mangle)]
pub extern "C" fn punktfunk_abi_version() -> u32 {
    PF_ABI_VERSION
}
