//! The machine's network interfaces, as clients need to know them.

use std::net::IpAddr;

/// The hardware (MAC) address of the interface that holds `ip`, as `aa:bb:cc:dd:ee:ff`: what
/// a Moonlight client stores to wake the host over the LAN. `None` when no interface holds it
/// or it has no link-layer address.
pub fn mac_of(ip: IpAddr) -> Option<String> {
    let interfaces: Vec<_> = nix::ifaddrs::getifaddrs().ok()?.collect();
    let holds_ip = |a: &nix::ifaddrs::InterfaceAddress| {
        let address = a.address.as_ref();
        let v4 = address.and_then(|s| s.as_sockaddr_in()).map(|s| IpAddr::from(s.ip()));
        let v6 = address.and_then(|s| s.as_sockaddr_in6()).map(|s| IpAddr::from(s.ip()));
        v4.or(v6) == Some(ip.to_canonical())
    };
    let name = &interfaces.iter().find(|a| holds_ip(a))?.interface_name;
    let mac = interfaces.iter().filter(|a| a.interface_name == *name).find_map(|a| a.address.as_ref()?.as_link_addr()?.addr())?;
    Some(mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every interface with an address answers with the MAC the kernel shows in sysfs.
    #[test]
    fn finds_the_mac_the_kernel_shows() {
        let mut checked = 0;
        for a in nix::ifaddrs::getifaddrs().unwrap() {
            let Some(ip) = a.address.as_ref().and_then(|s| s.as_sockaddr_in()).map(|s| IpAddr::from(s.ip())) else { continue };
            let sysfs = std::fs::read_to_string(format!("/sys/class/net/{}/address", a.interface_name)).unwrap();
            assert_eq!(mac_of(ip).as_deref(), Some(sysfs.trim()), "{}", a.interface_name);
            checked += 1;
        }
        assert!(checked > 0, "no interface with an IPv4 address (loopback has one)");
        assert_eq!(mac_of(IpAddr::from([192, 0, 2, 254])), None, "an address no interface holds");
    }
}
