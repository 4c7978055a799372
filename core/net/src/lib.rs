//! The I/O half of the punktfunk/1 data plane (the sans-IO half is `punktfunk-core`):
//! a UDP socket that sends a frame's datagrams in as few syscalls as the OS allows (UDP GSO:
//! one `sendmsg` per up to 64 equal datagrams) and receives in batches (`recvmmsg`, GRO),
//! with buffers sized for key-frame bursts.

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use punktfunk_core::Datagrams;
use quinn_udp::{RecvMeta, Transmit, UdpSockRef, UdpSocketState};
use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::time::Duration;

/// Socket buffers asked for: a 4K key frame at a few hundred Mbit/s is several MB at once.
pub const BUFFER_BYTES: usize = 32 << 20;
/// Largest UDP payload GSO can cover in one call.
const GSO_BYTES: usize = 65_000;
/// Datagrams one `recv` call can return: batches of GRO buffers.
const RECV_BATCH: usize = 32;
const RECV_BUF: usize = 64 * 1024;
/// How long a send waits for room in a full send buffer before dropping.
pub const SEND_WAIT: Duration = Duration::from_millis(20);

/// What the kernel granted for the socket buffers (it caps them at `net.core.*mem_max`
/// unless the process may force them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buffers {
    pub send: usize,
    pub recv: usize,
}

impl Buffers {
    /// A line for the log when the buffers fall short of [`BUFFER_BYTES`], saying what to do.
    pub fn warning(&self) -> Option<String> {
        // Linux reports twice the size asked for (bookkeeping overhead included).
        let short = |got: usize| got < BUFFER_BYTES;
        (short(self.send) || short(self.recv)).then(|| {
            format!(
                "UDP socket buffers capped by the kernel (send {} KiB, receive {} KiB; want {} KiB): key-frame bursts may be dropped. Raise them: sysctl -w net.core.rmem_max={} net.core.wmem_max={}",
                self.send / 1024,
                self.recv / 1024,
                BUFFER_BYTES / 1024,
                BUFFER_BYTES,
                BUFFER_BYTES
            )
        })
    }
}

pub struct DataSocket {
    socket: UdpSocket,
    state: UdpSocketState,
    buffers: Buffers,
    recv_bufs: Vec<Vec<u8>>,
    meta: Vec<RecvMeta>,
    /// Datagrams the kernel would not take (a full send buffer on a non-blocking socket).
    pub send_drops: u64,
    /// Send calls made (to show the batching).
    pub send_calls: u64,
}

impl DataSocket {
    /// Wraps a bound socket and sizes its buffers (forcing them past the sysctl limits where
    /// the process is allowed to).
    pub fn new(socket: UdpSocket) -> io::Result<Self> {
        // Non-blocking (quinn-udp sets it so, and a blocking recvmmsg would wait for a whole
        // batch): waits happen in `poll`, with deadlines.
        let state = UdpSocketState::new(UdpSockRef::from(&socket))?;
        socket.set_nonblocking(true)?;
        let buffers = size_buffers(&socket, &state);
        Ok(Self {
            socket,
            state,
            buffers,
            recv_bufs: (0..RECV_BATCH).map(|_| vec![0; RECV_BUF]).collect(),
            meta: vec![RecvMeta::default(); RECV_BATCH],
            send_drops: 0,
            send_calls: 0,
        })
    }

    pub fn buffers(&self) -> Buffers {
        self.buffers
    }

    pub fn socket(&self) -> &UdpSocket {
        &self.socket
    }

    /// Datagrams one send call may carry. `PUNKTFUNK_NO_GSO=1` makes it one: for drivers
    /// or tunnels that mishandle GSO, and for loss tests, where a firewall rule must drop
    /// single datagrams as a real link does rather than a whole GSO batch.
    pub fn max_segments(&self) -> usize {
        if std::env::var_os("PUNKTFUNK_NO_GSO").is_some_and(|v| v == "1") {
            return 1;
        }
        self.state.max_gso_segments()
    }

    /// Sends every datagram to `to`, in GSO batches. When the send buffer is full it waits
    /// up to [`SEND_WAIT`] for room, then drops the batch (counted in `send_drops`): a
    /// real-time stream must not stall behind a link that cannot carry it. A batch the
    /// kernel refuses (a firewall's EPERM, an ICMP error reported back) is lost like any
    /// datagram on the wire: counted, and the rest still goes; the first such error is
    /// returned once every batch was tried.
    pub fn send(&mut self, to: SocketAddr, datagrams: &Datagrams<'_>) -> io::Result<()> {
        let len = datagrams.datagram_len();
        let per_call = self.max_segments().min(GSO_BYTES / len).max(1);
        let mut first_error = None;
        for batch in datagrams.as_bytes().chunks(per_call * len) {
            let transmit =
                Transmit { destination: to, ecn: None, contents: batch, segment_size: (batch.len() > len).then_some(len), src_ip: None };
            let deadline = std::time::Instant::now() + SEND_WAIT;
            loop {
                self.send_calls += 1;
                match self.state.try_send(UdpSockRef::from(&self.socket), &transmit) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error() == Some(nix::libc::ENOBUFS) => {
                        let left = deadline.saturating_duration_since(std::time::Instant::now());
                        if left.is_zero() || !self.wait(PollFlags::POLLOUT, left)? {
                            self.send_drops += (batch.len() / len) as u64;
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.send_drops += (batch.len() / len) as u64;
                        first_error.get_or_insert(e);
                        break;
                    }
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Whether the socket became ready for `what` within `timeout`.
    fn wait(&self, what: PollFlags, timeout: Duration) -> io::Result<bool> {
        let mut fds = [PollFd::new(self.socket.as_fd(), what)];
        let ms = PollTimeout::from(timeout.as_millis().min(u128::from(u16::MAX)) as u16);
        match poll(&mut fds, ms) {
            Ok(n) => Ok(n > 0),
            Err(nix::errno::Errno::EINTR) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Waits up to `timeout` for datagrams, then takes what has arrived in one batched call
    /// and hands each datagram to `each` (GRO buffers split at their stride). Returns how
    /// many; 0 when nothing came.
    pub fn recv(&mut self, timeout: Duration, mut each: impl FnMut(SocketAddr, &[u8])) -> io::Result<usize> {
        if !self.wait(PollFlags::POLLIN, timeout)? {
            return Ok(0);
        }
        let mut slices: Vec<IoSliceMut<'_>> = self.recv_bufs.iter_mut().map(|b| IoSliceMut::new(b)).collect();
        let n = match self.state.recv(UdpSockRef::from(&self.socket), &mut slices, &mut self.meta) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut count = 0;
        for (meta, buf) in self.meta.iter().zip(&self.recv_bufs).take(n) {
            for datagram in buf[..meta.len].chunks(meta.stride.max(1)) {
                each(meta.addr, datagram);
                count += 1;
            }
        }
        Ok(count)
    }
}

fn size_buffers(socket: &UdpSocket, state: &UdpSocketState) -> Buffers {
    use nix::sys::socket::{setsockopt, sockopt};
    let sock = || UdpSockRef::from(socket);
    let _ = state.set_send_buffer_size(sock(), BUFFER_BYTES);
    let _ = state.set_recv_buffer_size(sock(), BUFFER_BYTES);
    // The kernel doubles what it grants; below what was asked means the sysctl cap hit.
    let granted = |got: io::Result<usize>| got.unwrap_or(0) / 2;
    if granted(state.send_buffer_size(sock())) < BUFFER_BYTES {
        let _ = setsockopt(socket, sockopt::SndBufForce, &BUFFER_BYTES);
    }
    if granted(state.recv_buffer_size(sock())) < BUFFER_BYTES {
        let _ = setsockopt(socket, sockopt::RcvBufForce, &BUFFER_BYTES);
    }
    Buffers { send: granted(state.send_buffer_size(sock())), recv: granted(state.recv_buffer_size(sock())) }
}

/// Microseconds on the monotonic clock: the same clock in every process of the machine, so a
/// receiver on the same host can subtract a sender's frame timestamps directly.
pub fn monotonic_us() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).expect("the monotonic clock exists");
    t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1000
}

#[cfg(test)]
mod tests {
    use super::*;
    use punktfunk_core::native::config::StreamConfig;
    use punktfunk_core::native::receiver::{FrameEvent, Receiver};
    use punktfunk_core::native::sender::{Frame, Sender};

    #[test]
    fn a_large_frame_crosses_loopback_in_few_calls_and_reassembles() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        let mut rx = DataSocket::new(rx).unwrap();
        let mut tx = DataSocket::new(UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
        let cfg = StreamConfig { key: Some([5; 16]), ..StreamConfig::default() };
        let (mut sender, mut receiver) = (Sender::new(cfg).unwrap(), Receiver::new(cfg).unwrap());
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 + i / 977) as u8).collect();
        let datagrams =
            sender.packetize(&Frame { id: 0, keyframe: true, repair: false, timestamp_us: monotonic_us(), data: &data }).unwrap();
        let count = datagrams.count();
        tx.send(to, &datagrams).unwrap();
        assert!(tx.send_calls < count as u64 / 10, "{} calls for {count} datagrams", tx.send_calls);
        let mut got = None;
        while got.is_none() {
            let n = rx
                .recv(Duration::from_millis(500), |_, d| {
                    receiver
                        .push(d, |e| {
                            if let FrameEvent::Frame { data: f, .. } = e {
                                got = Some(f.to_vec());
                            }
                        })
                        .unwrap();
                })
                .unwrap();
            assert!(n > 0, "the frame did not arrive");
        }
        assert!(got.unwrap() == data);
    }

    #[test]
    fn capped_buffers_are_reported_with_the_fix() {
        let b = Buffers { send: 208 * 1024, recv: BUFFER_BYTES };
        assert!(b.warning().unwrap().contains("net.core.rmem_max=33554432"));
        assert_eq!(Buffers { send: BUFFER_BYTES, recv: BUFFER_BYTES }.warning(), None);
    }
}
