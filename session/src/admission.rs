//! Who may hold a connection to a TCP listener, and how many: at most a few at once from one
//! address and a bounded number in all, refused at once (closed, not queued) beyond that; on
//! the management API, only this user's own processes. Idle connections are someone else's
//! limit to enforce (each server's request-head timeout); this bounds how many one stranger
//! holds meanwhile, so a slowloris from one machine cannot starve the others.

use parking_lot::Mutex;
use punktfunk_core::throttle::{Throttle, refusals};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

/// How long a client has to send its request head (or TLS handshake): a real one sends it
/// at once.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// Who a listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peers {
    /// Any address, a few connections each (the LAN-facing GameStream ports).
    PerAddress(usize),
    /// Loopback connections from this user's processes (or root's) only: the management API,
    /// whose token other users cannot read and whose slots they must not take either.
    ThisUser,
}

pub struct Admission {
    what: &'static str,
    peers: Peers,
    total: usize,
    held: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    by_address: HashMap<IpAddr, usize>,
    total: usize,
    refusals: Option<Throttle>,
}

/// A connection's place; gives it back when dropped.
pub struct Slot {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.admission.held.lock();
        held.total -= 1;
        if let Some(n) = held.by_address.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                held.by_address.remove(&self.ip);
            }
        }
    }
}

impl Admission {
    /// Admission for the listener named `what` (in logs): `peers` as above, `total` at most.
    pub fn new(what: &'static str, peers: Peers, total: usize) -> Arc<Self> {
        Arc::new(Self { what, peers, total, held: Mutex::new(Held::default()) })
    }

    /// The next connection admitted; refused ones are closed at once. Accept errors (out of
    /// descriptors) back off instead of spinning.
    pub async fn accept(self: &Arc<Self>, listener: &TcpListener) -> (TcpStream, SocketAddr, Slot) {
        loop {
            let (tcp, remote) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("{}: accept: {e}", self.what);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let local = tcp.local_addr().ok();
            match self.admit(remote, local) {
                Ok(slot) => return (tcp, remote, slot),
                Err(why) => self.refused(remote, why),
            }
        }
    }

    /// A slot for a connection from `remote` (to `local`), or why there is none.
    pub fn admit(self: &Arc<Self>, remote: SocketAddr, local: Option<SocketAddr>) -> Result<Slot, &'static str> {
        let ip = remote.ip();
        let per_address = match self.peers {
            Peers::PerAddress(n) => n,
            Peers::ThisUser => {
                let me = nix::unistd::geteuid().as_raw();
                match local.and_then(|l| crate::local_peer::owner(remote, l)) {
                    Some(uid) if uid == me || uid == 0 => usize::MAX,
                    Some(_) => return Err("another user's connection"),
                    None => return Err("not a local connection"),
                }
            }
        };
        let mut held = self.held.lock();
        if held.total >= self.total {
            return Err("too many connections");
        }
        let from_here = held.by_address.entry(ip).or_default();
        if *from_here >= per_address {
            return Err("too many connections from this address");
        }
        *from_here += 1;
        held.total += 1;
        Ok(Slot { admission: Arc::clone(self), ip })
    }

    /// Logs a refusal (a few a second).
    pub fn refused(&self, remote: SocketAddr, why: &str) {
        let mut held = self.held.lock();
        if let Some(held_back) = held.refusals.get_or_insert_with(refusals).admit(Instant::now()) {
            tracing::warn!(%remote, held_back, "{}: connection refused: {why}", self.what);
        }
    }
}

/// Connections one address may hold on a LAN-facing port: clients use one at a time.
pub const PER_ADDRESS: usize = 8;

/// The TCP listeners sharing the descriptor budget: HTTP, HTTPS, RTSP, the API and the
/// console.
const LISTENERS: usize = 5;

/// How many connections each TCP listener may hold in all, from the process's descriptor
/// limit (raised to its hard maximum first), leaving room for everything else.
pub fn connection_budget() -> usize {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let limit = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) => {
            let want = hard.min(65536);
            if want > soft && setrlimit(Resource::RLIMIT_NOFILE, want, hard).is_ok() { want } else { soft }
        }
        Err(_) => 1024,
    };
    (limit.saturating_sub(256) as usize / LISTENERS).clamp(16, 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(ip: [u8; 4], port: u16) -> SocketAddr {
        SocketAddr::from((ip, port))
    }

    #[test]
    fn a_few_per_address_and_a_bounded_total() {
        let a = Admission::new("test", Peers::PerAddress(2), 3);
        let first = a.admit(addr([10, 0, 0, 1], 1), None).unwrap();
        let _second = a.admit(addr([10, 0, 0, 1], 2), None).unwrap();
        assert_eq!(a.admit(addr([10, 0, 0, 1], 3), None).err(), Some("too many connections from this address"));
        let _other = a.admit(addr([10, 0, 0, 2], 1), None).unwrap();
        assert_eq!(a.admit(addr([10, 0, 0, 3], 1), None).err(), Some("too many connections"));
        drop(first);
        assert!(a.admit(addr([10, 0, 0, 1], 4), None).is_ok(), "a closed connection frees its slot");
    }

    #[test]
    fn this_user_only_on_the_api() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let a = Admission::new("api", Peers::ThisUser, 4);
            let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
            let (_, remote, _slot) = a.accept(&listener).await;
            assert_eq!(remote, client.local_addr().unwrap());
            assert_eq!(a.admit(addr([10, 0, 0, 9], 1), Some(addr([127, 0, 0, 1], 1))).err(), Some("not a local connection"));
        });
    }
}
