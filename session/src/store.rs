//! Host state on disk: paired clients, written atomically so a crash or a full disk never
//! leaves a half-written file (and never loses the previous pairings).

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` via a temporary file in the same directory, fsync and rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_mode(path, bytes, 0o644)
}

/// [`write_atomic`] for secrets: the file is readable by its owner only from the start.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_mode(path, bytes, 0o600)
}

fn write_atomic_mode(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{}.tmp{}", path.file_name().and_then(|n| n.to_str()).unwrap_or("state"), std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A paired client, identified by its certificate (never by the `uniqueid` it sends).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairedClient {
    /// Hex SHA-256 of the certificate's DER: what the HTTPS listener compares.
    pub fingerprint: String,
    pub name: String,
    pub cert_pem: String,
    /// Seconds since the Unix epoch.
    pub paired_at: u64,
}

/// The paired-client list, loaded at start and rewritten on every change.
pub struct Clients {
    path: PathBuf,
    list: Vec<PairedClient>,
}

impl Clients {
    pub fn load(path: PathBuf) -> anyhow::Result<Self> {
        let list = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(anyhow::anyhow!("reading {}: {e}", path.display())),
        };
        Ok(Self { path, list })
    }

    pub fn list(&self) -> &[PairedClient] {
        &self.list
    }

    pub fn is_paired(&self, fingerprint: &str) -> bool {
        self.list.iter().any(|c| c.fingerprint == fingerprint)
    }

    /// Adds (or replaces, re-pairing the same certificate) a client and saves.
    pub fn add(&mut self, client: PairedClient) -> std::io::Result<()> {
        let mut next = self.list.clone();
        next.retain(|c| c.fingerprint != client.fingerprint);
        next.push(client);
        self.save(next)
    }

    /// Removes clients whose fingerprint starts with `prefix` (at least 4 hex digits) or whose
    /// name equals it; returns how many.
    pub fn remove(&mut self, key: &str) -> std::io::Result<usize> {
        let matches = |c: &PairedClient| c.name == key || (key.len() >= 4 && c.fingerprint.starts_with(&key.to_ascii_lowercase()));
        let next: Vec<PairedClient> = self.list.iter().filter(|c| !matches(c)).cloned().collect();
        let removed = self.list.len() - next.len();
        if removed > 0 {
            self.save(next)?;
        }
        Ok(removed)
    }

    fn save(&mut self, next: Vec<PairedClient>) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(&next).map_err(std::io::Error::other)?;
        // Names and addresses of the user's devices: the owner's business only.
        write_private(&self.path, &json)?;
        self.list = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(fp: &str, name: &str) -> PairedClient {
        PairedClient { fingerprint: fp.into(), name: name.into(), cert_pem: "PEM".into(), paired_at: 1 }
    }

    #[test]
    fn add_remove_and_reload() {
        let dir = std::env::temp_dir().join(format!("pf-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("clients.json");
        let mut c = Clients::load(path.clone()).unwrap();
        c.add(client("abcdef01", "tv")).unwrap();
        c.add(client("12345678", "deck")).unwrap();
        c.add(client("abcdef01", "tv-again")).unwrap();
        assert_eq!(Clients::load(path.clone()).unwrap().list(), &[client("12345678", "deck"), client("abcdef01", "tv-again")]);
        assert_eq!(c.remove("abc").unwrap(), 0, "prefixes shorter than 4 match nothing");
        assert_eq!(c.remove("ABCD").unwrap(), 1);
        assert_eq!(c.remove("deck").unwrap(), 1);
        assert!(Clients::load(path.clone()).unwrap().list().is_empty());
        // No temporary files left behind.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    }

    #[test]
    fn a_corrupt_file_is_an_error_not_an_empty_list() {
        let dir = std::env::temp_dir().join(format!("pf-store-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("clients.json");
        std::fs::write(&path, b"[{").unwrap();
        assert!(Clients::load(path).is_err());
    }
}
