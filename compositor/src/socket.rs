//! The session's Wayland socket: where it lives and a free name for it.

use anyhow::Context;
use smithay::reexports::wayland_server::ListeningSocket;
use std::path::PathBuf;

/// `XDG_RUNTIME_DIR`, or a private directory made for it (unset on many servers).
pub(crate) fn runtime_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR") {
        return Ok(dir.into());
    }
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let uid = nix::unistd::getuid();
    let dir = std::env::temp_dir().join(format!("punktfunk-runtime-{uid}"));
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
    }
    let meta = std::fs::metadata(&dir)?;
    anyhow::ensure!(
        meta.uid() == uid.as_raw() && meta.permissions().mode() & 0o077 == 0,
        "{} is not a private directory of this user",
        dir.display()
    );
    Ok(dir)
}

pub(crate) fn bind_socket(dir: &std::path::Path, name: Option<&str>) -> anyhow::Result<(ListeningSocket, String)> {
    if let Some(name) = name {
        let s = ListeningSocket::bind_absolute(dir.join(name)).with_context(|| format!("binding wayland socket {name}"))?;
        return Ok((s, name.to_string()));
    }
    for n in 1..=64 {
        let name = format!("punktfunk-{n}");
        if let Ok(s) = ListeningSocket::bind_absolute(dir.join(&name)) {
            return Ok((s, name));
        }
    }
    anyhow::bail!("no free wayland socket name in {}", dir.display())
}
