//! Where a stream's media go: the address the client's datagrams came from, not one it
//! claims (which a NAT would make wrong).

use parking_lot::Mutex;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// The latched client address, shared between the thread that hears the client (pings,
/// hellos) and the senders.
#[derive(Clone, Default)]
pub struct Peer(Arc<Mutex<Option<SocketAddr>>>);

impl Peer {
    pub fn get(&self) -> Option<SocketAddr> {
        *self.0.lock()
    }

    pub fn set(&self, addr: SocketAddr) -> bool {
        let mut p = self.0.lock();
        let changed = *p != Some(addr);
        *p = Some(addr);
        changed
    }
}

/// How long a listener blocks on its socket before it looks at its stop flag: bounds how
/// long stopping it takes.
pub const LISTEN_POLL: Duration = Duration::from_millis(50);

/// A thread that hears the client (pings, hellos) until stopped. Stopping joins it: the
/// media socket is shared with the next sender of the stream, and a stopped listener that
/// still read it would take datagrams meant for that sender's listener.
pub struct Listener {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    /// Runs `listen` on a thread named `name`; it returns once the flag it is given is set.
    pub fn spawn(name: &str, listen: impl FnOnce(Arc<AtomicBool>) + Send + 'static) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new().name(name.into()).spawn(move || listen(flag))?;
        Ok(Self { stop, thread: Some(thread) })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    #[test]
    fn a_stopped_listener_leaves_the_shared_socket_to_the_next() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        let reading = socket.try_clone().unwrap();
        let listener = Listener::spawn("test-listener", move |stop| {
            reading.set_read_timeout(Some(LISTEN_POLL)).unwrap();
            while !stop.load(Ordering::Relaxed) {
                let _ = reading.recv_from(&mut [0; 16]);
            }
        })
        .unwrap();
        drop(listener);
        client.send_to(b"ping", socket.local_addr().unwrap()).unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0; 16];
        let (n, _) = socket.recv_from(&mut buf).expect("the stopped listener took the datagram");
        assert_eq!(&buf[..n], b"ping");
    }
}
