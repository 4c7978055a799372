//! The client's own certificate and the hosts it paired with, in
//! `$XDG_CONFIG_HOME/punktfunk-client/` (`~/.config/…`). Files are written atomically.

use anyhow::Context;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub struct Identity {
    pub cert_der: Vec<u8>,
    pub key_der: Vec<u8>,
}

pub fn dir() -> anyhow::Result<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .context("neither XDG_CONFIG_HOME nor HOME is set")?;
    Ok(base.join("punktfunk-client"))
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(tmp, path)
}

use std::os::unix::fs::OpenOptionsExt;

impl Identity {
    /// Loads the client certificate, creating an ECDSA P-256 one the first time.
    pub fn load_or_create(dir: &Path) -> anyhow::Result<Self> {
        let (cert, key) = (dir.join("client.der"), dir.join("client.key"));
        if let (Ok(cert_der), Ok(key_der)) = (std::fs::read(&cert), std::fs::read(&key)) {
            return Ok(Self { cert_der, key_der });
        }
        std::fs::create_dir_all(dir)?;
        let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = rcgen::CertificateParams::new(vec!["punktfunk-client".into()])?;
        params.not_after = rcgen::date_time_ymd(2045, 1, 1);
        let cert_der = params.self_signed(&key_pair)?.der().to_vec();
        let key_der = key_pair.serialize_der();
        write_atomic(&key, &key_der)?;
        write_atomic(&cert, &cert_der)?;
        Ok(Self { cert_der, key_der })
    }

    pub fn fingerprint(&self) -> [u8; 32] {
        sha256(&self.cert_der)
    }
}

pub fn sha256(der: &[u8]) -> [u8; 32] {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der).as_ref().try_into().expect("32 bytes")
}

/// Paired hosts: address → the host certificate's SHA-256 (hex).
pub struct Hosts {
    path: PathBuf,
    pub known: BTreeMap<String, String>,
}

impl Hosts {
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join("hosts.json");
        let known = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).with_context(|| format!("{} is corrupt", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e.into()),
        };
        Ok(Self { path, known })
    }

    pub fn pinned(&self, host: &str) -> Option<[u8; 32]> {
        hex::decode(self.known.get(host)?).ok()?.try_into().ok()
    }

    pub fn add(&mut self, host: &str, fingerprint: &[u8; 32]) -> anyhow::Result<()> {
        self.known.insert(host.to_owned(), hex::encode(fingerprint));
        std::fs::create_dir_all(self.path.parent().expect("in a directory"))?;
        write_atomic(&self.path, &serde_json::to_vec_pretty(&self.known)?)?;
        Ok(())
    }
}
