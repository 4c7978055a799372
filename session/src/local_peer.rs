//! Who owns the other end of a loopback TCP connection: the kernel lists every TCP socket
//! with its owner's uid in /proc/net/tcp (and tcp6); the peer's socket is the one whose
//! local address is our remote one and whose remote address is our local one. TCP has no
//! SO_PEERCRED; this is how identd-style servers tell local users apart.

use std::net::{IpAddr, SocketAddr};

/// The uid owning the socket at `remote` connected to our `local`, when both are on this
/// machine and the kernel lists it.
pub fn owner(remote: SocketAddr, local: SocketAddr) -> Option<u32> {
    let table = match remote.ip() {
        IpAddr::V4(_) => "/proc/net/tcp",
        IpAddr::V6(_) => "/proc/net/tcp6",
    };
    find(&std::fs::read_to_string(table).ok()?, remote, local)
}

/// The uid in a /proc/net/tcp table of the socket `local_there` → `remote_there`.
fn find(table: &str, local_there: SocketAddr, remote_there: SocketAddr) -> Option<u32> {
    let (want_local, want_remote) = (proc_address(local_there), proc_address(remote_there));
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(1) == Some(&want_local.as_str()) && fields.get(2) == Some(&want_remote.as_str()))
            .then(|| fields.get(7)?.parse().ok())
            .flatten()
    })
}

/// An address as the kernel prints it there: the address's 32-bit words in this machine's
/// byte order, in hex, then the port.
fn proc_address(addr: SocketAddr) -> String {
    let words: String = match addr.ip() {
        IpAddr::V4(ip) => format!("{:08X}", u32::from_ne_bytes(ip.octets())),
        IpAddr::V6(ip) => ip.octets().chunks(4).map(|w| format!("{:08X}", u32::from_ne_bytes([w[0], w[1], w[2], w[3]]))).collect(),
    };
    format!("{words}:{:04X}", addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn finds_our_own_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, remote) = listener.accept().unwrap();
        assert_eq!(remote, client.local_addr().unwrap());
        assert_eq!(owner(remote, server.local_addr().unwrap()), Some(nix::unistd::geteuid().as_raw()));
        assert_eq!(owner(SocketAddr::from(([127, 0, 0, 1], 1)), server.local_addr().unwrap()), None, "no such socket");
    }

    #[test]
    fn reads_the_kernels_table() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:9C40 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 12345 1 0 20 4 30 10 -1\n";
        if cfg!(target_endian = "little") {
            let (there, here) = (SocketAddr::from(([127, 0, 0, 1], 0x9c40)), SocketAddr::from(([127, 0, 0, 1], 0x1f90)));
            assert_eq!(find(table, there, here), Some(1000));
            assert_eq!(find(table, here, there), None);
        }
    }
}
