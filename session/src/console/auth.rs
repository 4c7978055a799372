//! Who may use the console: one password (an Argon2id hash in the state directory, set on
//! first use from this machine or with `punktfunk console-password`), logins kept as random
//! cookie tokens with a CSRF token each, and a per-address bound on failed attempts.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

/// The console password's file in the state directory.
pub const PASSWORD_FILE: &str = "console-password";

/// Shorter passwords are refused when set.
pub const MIN_PASSWORD: usize = 8;
/// Longer ones too: hashing is bounded work.
pub const MAX_PASSWORD: usize = 256;

/// The password, read from its file at each use: `punktfunk console-password` may change it
/// while the daemon runs.
pub struct Password {
    path: PathBuf,
}

impl Password {
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    pub fn is_set(&self) -> bool {
        self.path.exists()
    }

    /// When the password was last set: logins from before a change end with it.
    pub fn stamp(&self) -> Option<SystemTime> {
        std::fs::metadata(&self.path).and_then(|m| m.modified()).ok()
    }

    /// Stores `password`'s hash (owner-only, replaced atomically).
    pub fn set(&self, password: &str) -> anyhow::Result<()> {
        let length = password.chars().count();
        anyhow::ensure!(length >= MIN_PASSWORD, "the password needs at least {MIN_PASSWORD} characters");
        anyhow::ensure!(password.len() <= MAX_PASSWORD, "the password may have at most {MAX_PASSWORD} bytes");
        let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
        let hash = Argon2::default().hash_password(password.as_bytes(), &salt).map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
        crate::store::write_private(&self.path, hash.to_string().as_bytes())?;
        Ok(())
    }

    /// Whether `password` is the one set (slow on purpose: run it off the async threads).
    pub fn verify(&self, password: &str) -> bool {
        if password.len() > MAX_PASSWORD {
            return false;
        }
        let Ok(stored) = std::fs::read_to_string(&self.path) else { return false };
        let Ok(hash) = PasswordHash::new(stored.trim()) else {
            tracing::warn!("{}: not a password hash; set the console password again", self.path.display());
            return false;
        };
        Argon2::default().verify_password(password.as_bytes(), &hash).is_ok()
    }
}

/// One browser's login.
#[derive(Clone, Debug)]
pub struct Login {
    /// Sent back on every request that changes something (`X-CSRF-Token`): another site can
    /// make the browser send the cookie, but cannot read this.
    pub csrf: String,
    /// The password's [`Password::stamp`] when it was given.
    stamp: Option<SystemTime>,
    started: Instant,
    last_used: Instant,
}

/// The logins at once: the oldest goes when a new one would exceed it.
const MAX_LOGINS: usize = 32;
/// A login unused this long ends…
const IDLE: Duration = Duration::from_secs(12 * 3600);
/// … and any after this long.
const LONGEST: Duration = Duration::from_secs(7 * 24 * 3600);

/// The logins, by the SHA-256 of their cookie token (a lookup leaks nothing of the token).
#[derive(Default)]
pub struct Logins {
    by_digest: Mutex<HashMap<[u8; 32], Login>>,
}

fn digest(token: &str) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    d.as_ref().try_into().expect("SHA-256 is 32 bytes")
}

impl Logins {
    /// A new login with the password as of `stamp`: its cookie token.
    pub fn start(&self, now: Instant, stamp: Option<SystemTime>) -> String {
        let token = hex::encode(rand::random::<[u8; 32]>());
        let login = Login { csrf: hex::encode(rand::random::<[u8; 16]>()), stamp, started: now, last_used: now };
        let mut all = self.by_digest.lock();
        all.retain(|_, l| live(l, now));
        if all.len() >= MAX_LOGINS
            && let Some(oldest) = all.iter().min_by_key(|(_, l)| l.last_used).map(|(k, _)| *k)
        {
            all.remove(&oldest);
        }
        all.insert(digest(&token), login);
        token
    }

    /// The login `token` names, if it is still live and the password still the one given
    /// (`stamp`); using it keeps it live.
    pub fn check(&self, token: &str, now: Instant, stamp: Option<SystemTime>) -> Option<Login> {
        let mut all = self.by_digest.lock();
        let key = digest(token);
        let login = all.get_mut(&key)?;
        if !live(login, now) || login.stamp != stamp {
            all.remove(&key);
            return None;
        }
        login.last_used = now;
        Some(login.clone())
    }

    pub fn end(&self, token: &str) {
        self.by_digest.lock().remove(&digest(token));
    }
}

fn live(login: &Login, now: Instant) -> bool {
    now.duration_since(login.last_used) < IDLE && now.duration_since(login.started) < LONGEST
}

/// Failed logins allowed per address in a window; past them, that address waits.
const FAILURES: u32 = 5;
const FAILURE_WINDOW: Duration = Duration::from_secs(300);
/// Addresses tracked at once: the oldest entry goes first.
const TRACKED: usize = 1024;

/// Failed logins by address (an IPv6 host by its /64: one machine has many addresses).
#[derive(Default)]
pub struct Failures {
    by_address: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

fn network_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::from([s[0], s[1], s[2], s[3], 0, 0, 0, 0])
        }
        v4 => v4,
    }
}

impl Failures {
    /// How long `ip` must wait before it may try again; `None`: it may now.
    pub fn wait(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let all = self.by_address.lock();
        let (count, since) = all.get(&network_of(ip))?;
        let left = FAILURE_WINDOW.checked_sub(now.duration_since(*since)).filter(|left| !left.is_zero())?;
        (*count >= FAILURES).then_some(left)
    }

    pub fn failed(&self, ip: IpAddr, now: Instant) {
        let mut all = self.by_address.lock();
        all.retain(|_, (_, since)| now.duration_since(*since) < FAILURE_WINDOW);
        if all.len() >= TRACKED
            && let Some(oldest) = all.iter().min_by_key(|(_, (_, since))| *since).map(|(k, _)| *k)
        {
            all.remove(&oldest);
        }
        let entry = all.entry(network_of(ip)).or_insert((0, now));
        entry.0 += 1;
    }

    pub fn succeeded(&self, ip: IpAddr) {
        self.by_address.lock().remove(&network_of(ip));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_stored_hashed_and_checked() {
        let dir = std::env::temp_dir().join(format!("pf-console-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let password = Password::new(dir.join(PASSWORD_FILE));
        assert!(!password.is_set() && !password.verify("anything at all"));
        assert!(password.set("short").unwrap_err().to_string().contains("at least 8"));
        assert!(password.set(&"x".repeat(MAX_PASSWORD + 1)).is_err());
        password.set("correct horse").unwrap();
        let stored = std::fs::read_to_string(dir.join(PASSWORD_FILE)).unwrap();
        assert!(stored.starts_with("$argon2id$") && !stored.contains("correct horse"), "{stored}");
        assert!(crate::store::is_private(&dir.join(PASSWORD_FILE)));
        assert!(password.verify("correct horse"));
        assert!(!password.verify("correct horsE") && !password.verify(""));
        std::fs::write(dir.join(PASSWORD_FILE), "garbage").unwrap();
        assert!(!password.verify("correct horse"), "a broken file lets nobody in");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn logins_end_when_idle_old_too_many_or_the_password_changed() {
        let logins = Logins::default();
        let t0 = Instant::now();
        let stamp = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000));
        let token = logins.start(t0, stamp);
        let login = logins.check(&token, t0, stamp).unwrap();
        assert_eq!(login.csrf.len(), 32);
        assert!(logins.check("not a token", t0, stamp).is_none());
        // Used within the idle time, it lives on; unused past it, it ends.
        let later = t0 + IDLE - Duration::from_secs(1);
        assert!(logins.check(&token, later, stamp).is_some());
        assert!(logins.check(&token, later + IDLE, stamp).is_none());
        // However used, a login ends after the longest time.
        let token = logins.start(t0, stamp);
        let mut t = t0;
        while t.duration_since(t0) < LONGEST - IDLE {
            t += IDLE / 2;
            assert!(logins.check(&token, t, stamp).is_some());
        }
        assert!(logins.check(&token, t0 + LONGEST, stamp).is_none());
        // A new password ends the logins made with the old one.
        let token = logins.start(t0, stamp);
        assert!(logins.check(&token, t0, Some(SystemTime::UNIX_EPOCH)).is_none());
        assert!(logins.check(&token, t0, stamp).is_none(), "ended, not only refused");
        // A flood of logins pushes out the least recently used, never grows without bound.
        let first = logins.start(t0, stamp);
        for i in 0..MAX_LOGINS as u64 {
            logins.start(t0 + Duration::from_millis(i + 1), stamp);
        }
        assert!(logins.check(&first, t0, stamp).is_none());
        assert!(logins.by_digest.lock().len() <= MAX_LOGINS);
        let token = logins.start(t0, stamp);
        logins.end(&token);
        assert!(logins.check(&token, t0, stamp).is_none());
    }

    #[test]
    fn an_address_that_keeps_failing_waits() {
        let failures = Failures::default();
        let (ip, t0) = ("192.168.1.7".parse().unwrap(), Instant::now());
        for _ in 0..FAILURES {
            assert_eq!(failures.wait(ip, t0), None);
            failures.failed(ip, t0);
        }
        assert!(failures.wait(ip, t0).is_some());
        assert!(failures.wait("192.168.1.8".parse().unwrap(), t0).is_none(), "another machine may still try");
        assert_eq!(failures.wait(ip, t0 + FAILURE_WINDOW), None, "after the window it may try again");
        // One IPv6 machine is its /64.
        let a: IpAddr = "fd00:1:2:3::1".parse().unwrap();
        for _ in 0..FAILURES {
            failures.failed(a, t0);
        }
        assert!(failures.wait("fd00:1:2:3::99".parse().unwrap(), t0).is_some());
        // The table stays bounded whoever fails.
        for i in 0..(TRACKED as u32 + 10) {
            failures.failed(IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i)), t0);
        }
        assert!(failures.by_address.lock().len() <= TRACKED);
    }
}
