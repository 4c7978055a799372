//! Where a stream's media go: the address the client's datagrams came from, not one it
//! claims (which a NAT would make wrong).

use parking_lot::Mutex;
use std::net::SocketAddr;
use std::sync::Arc;

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
