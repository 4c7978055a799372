//! Which addresses may reach the console: by default this machine and the private ranges of
//! a home or office network, never the internet unless the user says so.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// `console_access` in the configuration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsoleAccess {
    /// This machine only.
    Loopback,
    /// This machine and private addresses (RFC 1918, link-local, IPv6 unique-local).
    #[default]
    Lan,
    /// Any address (behind a firewall or VPN the user trusts).
    Any,
}

impl ConsoleAccess {
    pub fn admits(self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        match self {
            Self::Loopback => ip.is_loopback(),
            Self::Lan => ip.is_loopback() || is_private(ip),
            Self::Any => true,
        }
    }
}

/// Addresses a home or office network hands out: not routed on the internet.
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_link_local(),
        // fc00::/7 (unique local), fe80::/10 (link-local).
        IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00 || (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lan_is_private_addresses_and_this_machine() {
        let lan = ConsoleAccess::Lan;
        for ip in ["127.0.0.1", "10.1.2.3", "172.16.0.9", "172.31.255.1", "192.168.1.20", "169.254.3.4", "::1", "fd12::1", "fe80::1"] {
            assert!(lan.admits(ip.parse().unwrap()), "{ip}");
        }
        // An IPv4 peer on a dual-stack socket.
        assert!(lan.admits("::ffff:192.168.1.20".parse().unwrap()));
        for ip in ["8.8.8.8", "172.32.0.1", "100.64.0.1", "2001:db8::1", "::ffff:8.8.8.8"] {
            assert!(!lan.admits(ip.parse().unwrap()), "{ip}");
        }
        assert!(!ConsoleAccess::Loopback.admits("192.168.1.20".parse().unwrap()));
        assert!(ConsoleAccess::Loopback.admits("127.0.0.2".parse().unwrap()));
        assert!(ConsoleAccess::Any.admits("8.8.8.8".parse().unwrap()));
    }
}
