//! Per-session transport counters, shared by both formats, the web UI and the C ABI.

/// Plain counters; `#[repr(C)]` so the C ABI can hand out a copy as it is.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams handed to the I/O layer (data and parity).
    pub packets_sent: u64,
    pub packets_received: u64,
    /// Data shards rebuilt by FEC.
    pub packets_recovered: u64,
    /// Shards that arrived for a frame already delivered or given up.
    pub packets_late: u64,
    pub packets_duplicate: u64,
    /// Malformed, inconsistent or unauthenticated datagrams.
    pub packets_invalid: u64,
    /// FEC blocks sent (sender) or completed (receiver).
    pub fec_blocks: u64,
    pub frames_sent: u64,
    pub frames_delivered: u64,
    /// Frames delivered that needed FEC.
    pub frames_recovered: u64,
    /// Frames given up by the receiver.
    pub frames_lost: u64,
    /// Frames the sender dropped before sending (queue full, too large).
    pub frames_dropped: u64,
}
