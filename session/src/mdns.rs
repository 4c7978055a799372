//! mDNS: announces `_nvstream._tcp` so Moonlight clients list the host without typing an
//! address; its `punktfunk1` TXT record tells punktfunk/1 clients where the QUIC port is.

use mdns_sd::{ServiceDaemon, ServiceInfo};

/// Registers the service; keep the daemon alive for as long as the host runs.
pub fn announce(name: &str, port: u16, native_port: u16) -> anyhow::Result<ServiceDaemon> {
    let daemon = ServiceDaemon::new()?;
    let host = format!("{}.local.", name.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "-"));
    let txt = [("punktfunk1", native_port.to_string())];
    let info = ServiceInfo::new("_nvstream._tcp.local.", name, &host, "", port, &txt[..])?.enable_addr_auto();
    daemon.register(info)?;
    Ok(daemon)
}
