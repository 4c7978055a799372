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
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("state");
    // Named by writer, so two processes never write one temporary file; a writer killed
    // mid-write leaves its file behind, which the next write (or start) removes.
    let tmp = dir.join(format!("{}{}", temp_prefix(name), std::process::id()));
    sweep_temp_files(dir, Some(name));
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

fn temp_prefix(name: &str) -> String {
    format!(".{name}.tmp")
}

/// Removes the temporary files in `dir` (of the state file `name`, or all) whose writer is
/// gone: what a writer killed between creating and renaming one left.
pub fn sweep_temp_files(dir: &Path, name: Option<&str>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(file) = file.to_str() else { continue };
        let Some((stem, pid)) = file.strip_prefix('.').and_then(|f| f.rsplit_once(".tmp")) else { continue };
        let Ok(pid) = pid.parse::<i32>() else { continue };
        let writer_alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) != Err(nix::errno::Errno::ESRCH);
        if name.is_none_or(|n| n == stem) && !writer_alive {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Creates `dir` (and its parents) and makes it its owner's alone: the host's key, its API
/// token and the client list live there.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Whether a secret file may be trusted: owned by this user and unreadable by others (a
/// token another user could have read is no secret).
pub fn is_private(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file() && m.uid() == nix::unistd::geteuid().as_raw() && m.mode() & 0o077 == 0)
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
    /// What it may do; files from before permissions existed give every client the defaults.
    #[serde(default)]
    pub permissions: Permissions,
}

impl PairedClient {
    /// Whether `key` names this client: its name, or a prefix of its fingerprint of at least
    /// 4 hex digits (what `punktfunk clients` shows).
    pub fn is_named(&self, key: &str) -> bool {
        names(key, &self.name, &self.fingerprint)
    }
}

/// Whether `key` names the client called `name` with `fingerprint` (see
/// [`PairedClient::is_named`]).
pub fn names(key: &str, name: &str, fingerprint: &str) -> bool {
    // A whole fingerprint names that client alone: a device may call itself anything, a
    // fingerprint of another included.
    if key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return fingerprint == key.to_ascii_lowercase();
    }
    name == key || (key.len() >= 4 && fingerprint.starts_with(&key.to_ascii_lowercase()))
}

/// What a paired client may do on this host, kept with it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Permissions {
    /// The titles of the apps it may launch (and sees in its app list); `None`: every app.
    pub apps: Option<Vec<String>>,
    /// It watches only: its keyboard, mouse, touch and gamepad input is dropped.
    pub view_only: bool,
    /// It may resume (take over) or quit other clients' sessions, as on a host with one
    /// session: the user's phone continuing what the user's laptop started.
    pub others: bool,
    /// Its clipboard and the session's are one (punktfunk/1 clients that ask for it): text
    /// it copies pastes in the session's apps, and what they copy reaches it. Off unless
    /// the user turns it on: a clipboard holds passwords.
    pub clipboard: bool,
}

impl Permissions {
    pub fn may_launch(&self, title: &str) -> bool {
        self.apps.as_ref().is_none_or(|apps| apps.iter().any(|a| a == title))
    }
}

/// The longest name a client may be given (in characters).
pub const MAX_NAME: usize = 64;

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

    /// The permissions of the paired client `fingerprint`; `None` when it is not paired.
    pub fn permissions(&self, fingerprint: &str) -> Option<Permissions> {
        self.list.iter().find(|c| c.fingerprint == fingerprint).map(|c| c.permissions.clone())
    }

    /// Adds (or replaces, re-pairing the same certificate, which keeps its permissions) a
    /// client and saves.
    pub fn add(&mut self, mut client: PairedClient) -> std::io::Result<()> {
        let mut next = self.list.clone();
        if let Some(old) = next.iter().find(|c| c.fingerprint == client.fingerprint) {
            client.permissions = old.permissions.clone();
        }
        next.retain(|c| c.fingerprint != client.fingerprint);
        next.push(client);
        self.save(next)
    }

    /// Gives the client `key` names (see [`PairedClient::is_named`]) `permissions`, and
    /// saves, only when it names one; returns how many it names.
    pub fn permit(&mut self, key: &str, permissions: &Permissions) -> std::io::Result<usize> {
        self.change_one(key, |c| c.permissions = permissions.clone())
    }

    /// Renames the client `key` names, and saves, only when it names one; returns how many
    /// it names.
    pub fn rename(&mut self, key: &str, name: &str) -> std::io::Result<usize> {
        self.change_one(key, |c| c.name = name.to_owned())
    }

    /// Changes the client `key` names and saves, only when it names one (a device may take
    /// another's name: what is meant for one must not reach the other); returns how many
    /// it names.
    fn change_one(&mut self, key: &str, change: impl FnOnce(&mut PairedClient)) -> std::io::Result<usize> {
        let named = self.list.iter().filter(|c| c.is_named(key)).count();
        if named == 1 {
            let mut next = self.list.clone();
            if let Some(client) = next.iter_mut().find(|c| c.is_named(key)) {
                change(client);
            }
            self.save(next)?;
        }
        Ok(named)
    }

    /// Removes the clients `key` names (see [`PairedClient::is_named`]); returns how many.
    pub fn remove(&mut self, key: &str) -> std::io::Result<usize> {
        let next: Vec<PairedClient> = self.list.iter().filter(|c| !c.is_named(key)).cloned().collect();
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

    #[test]
    fn temp_files_of_dead_writers_are_swept() {
        let dir = std::env::temp_dir().join(format!("pf-sweep-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = dir.join(format!(".clients.json.tmp{dead}"));
        let live = dir.join(format!(".host.key.tmp{}", std::process::id()));
        let other = dir.join(format!(".host.key.tmp{dead}"));
        for f in [&stale, &live, &other] {
            std::fs::write(f, b"half").unwrap();
        }
        write_private(&dir.join("clients.json"), b"[]").unwrap();
        assert!(!stale.exists(), "a write removes its file's stale temporaries");
        assert!(other.exists(), "and only its own");
        sweep_temp_files(&dir, None);
        assert!(!other.exists(), "a sweep removes every dead writer's");
        assert!(live.exists(), "but never a live writer's");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn secrets_others_could_read_are_not_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("pf-private-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        private_dir(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        let token = dir.join("api-token");
        write_private(&token, b"secret").unwrap();
        assert!(is_private(&token));
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(!is_private(&token));
        assert!(!is_private(&dir.join("missing")));
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn client(fp: &str, name: &str) -> PairedClient {
        PairedClient {
            fingerprint: fp.into(),
            name: name.into(),
            cert_pem: "PEM".into(),
            paired_at: 1,
            permissions: Permissions::default(),
        }
    }

    #[test]
    fn permissions_are_kept_with_the_client() {
        let dir = std::env::temp_dir().join(format!("pf-store-perm-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("clients.json");
        let mut c = Clients::load(path.clone()).unwrap();
        c.add(client("abcdef01", "tv")).unwrap();
        c.add(client("12345678", "deck")).unwrap();
        let tv = Permissions { apps: Some(vec!["Desktop".into()]), view_only: true, others: false, clipboard: false };
        assert_eq!(c.permit("tv", &tv).unwrap(), 1);
        assert_eq!(c.permit("nobody", &tv).unwrap(), 0);
        // Re-pairing the same certificate keeps what it may do.
        c.add(client("abcdef01", "tv")).unwrap();
        let loaded = Clients::load(path.clone()).unwrap();
        assert_eq!(loaded.permissions("abcdef01"), Some(tv.clone()));
        assert_eq!(loaded.permissions("12345678"), Some(Permissions::default()));
        assert_eq!(loaded.permissions("ffff0000"), None);
        assert!(tv.may_launch("Desktop") && !tv.may_launch("Steam") && Permissions::default().may_launch("Steam"));
        // A file from before permissions: every client gets the defaults.
        std::fs::write(&path, br#"[{"fingerprint":"aa11","name":"old","cert_pem":"","paired_at":0}]"#).unwrap();
        assert_eq!(Clients::load(path).unwrap().permissions("aa11"), Some(Permissions::default()));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_device_named_like_another_gets_nothing_meant_for_that_one() {
        let dir = std::env::temp_dir().join(format!("pf-store-names-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut c = Clients::load(dir.join("clients.json")).unwrap();
        let victim = "ab".repeat(32);
        c.add(client(&victim, "tv")).unwrap();
        // A stranger pairs calling itself by the victim's fingerprint, and by its name.
        c.add(client(&"cd".repeat(32), &victim)).unwrap();
        c.add(client(&"ef".repeat(32), "tv")).unwrap();
        let others = Permissions { others: true, ..Permissions::default() };
        assert_eq!(c.permit(&victim, &others).unwrap(), 1, "a whole fingerprint names that client alone");
        assert_eq!(c.permissions(&"cd".repeat(32)), Some(Permissions::default()));
        assert_eq!(c.permit("tv", &others).unwrap(), 2, "an ambiguous name changes nobody");
        assert_eq!(c.permissions(&"ef".repeat(32)), Some(Permissions::default()));
        assert_eq!(c.rename(&victim, "living room").unwrap(), 1);
        assert_eq!(c.rename("tv", "x").unwrap(), 1, "the only one still called tv");
        let _ = std::fs::remove_dir_all(&dir);
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
