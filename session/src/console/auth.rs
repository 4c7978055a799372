//! Who may use the console: one password (an Argon2id hash in the state directory, set on
//! first use from this machine or with `punktfunk console-password`), logins kept as random
//! cookie tokens with a CSRF token each, and a per-address bound on failed attempts.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

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

    /// Which password is set (a digest of its hash): logins made with another end.
    pub fn stamp(&self) -> Option<Stamp> {
        std::fs::read(&self.path).ok().map(|stored| stamp_of(&stored))
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

    /// Whether `password` is the one set: the stamp of the password it was checked against
    /// (a change meanwhile does not count for it). Slow on purpose: run it off the async
    /// threads.
    pub fn verify(&self, password: &str) -> Option<Stamp> {
        if password.len() > MAX_PASSWORD {
            return None;
        }
        let stored = std::fs::read(&self.path).ok()?;
        let Ok(hash) = std::str::from_utf8(&stored).map_err(|_| ()).and_then(|s| PasswordHash::new(s.trim()).map_err(|_| ())) else {
            tracing::warn!("{}: not a password hash; set the console password again", self.path.display());
            return None;
        };
        Argon2::default().verify_password(password.as_bytes(), &hash).ok().map(|()| stamp_of(&stored))
    }
}

/// Names one setting of the password.
pub type Stamp = [u8; 32];

fn stamp_of(stored: &[u8]) -> Stamp {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, stored).as_ref().try_into().expect("SHA-256 is 32 bytes")
}

/// One browser's login.
#[derive(Clone, Debug)]
pub struct Login {
    /// Sent back on every request that changes something (`X-CSRF-Token`): another site can
    /// make the browser send the cookie, but cannot read this.
    pub csrf: String,
    /// The [`Password::stamp`] of the password it was made with.
    stamp: Stamp,
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
    /// A new login, made with the password `stamp` names: its cookie token.
    pub fn start(&self, now: Instant, stamp: Stamp) -> String {
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

    /// The login `token` names, if it is still live and made with the password set now
    /// (`stamp`); using it keeps it live.
    pub fn check(&self, token: &str, now: Instant, stamp: Option<Stamp>) -> Option<Login> {
        let mut all = self.by_digest.lock();
        let key = digest(token);
        let login = all.get_mut(&key)?;
        if !live(login, now) || Some(login.stamp) != stamp {
            all.remove(&key);
            return None;
        }
        login.last_used = now;
        Some(login.clone())
    }

    /// Whether the login `token` names is live, as [`Logins::check`] without using it (an
    /// open page's event stream does not keep its login from going idle).
    pub fn is_live(&self, token: &str, now: Instant, stamp: Option<Stamp>) -> bool {
        self.by_digest.lock().get(&digest(token)).is_some_and(|l| live(l, now) && Some(l.stamp) == stamp)
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
/// Failed logins allowed from all addresses together in a window (a stranger may take many
/// addresses on a LAN); past them, everyone waits (the CLI still sets a new password).
const ALL_FAILURES: u32 = 50;
const FAILURE_WINDOW: Duration = Duration::from_secs(300);
/// Addresses tracked at once: the oldest entry goes first.
const TRACKED: usize = 1024;

/// Failed logins by address (an IPv6 host by its /64: one machine has many addresses), and
/// in all.
#[derive(Default)]
pub struct Failures {
    inner: Mutex<Tally>,
}

#[derive(Default)]
struct Tally {
    by_address: HashMap<IpAddr, (u32, Instant)>,
    /// Failures of every address in the window since the instant.
    all: Option<(u32, Instant)>,
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

/// How long until a window that began at `since` with `count` of `allowed` ends, if it is
/// full; `None`: there is room.
fn full(count: u32, since: Instant, allowed: u32, now: Instant) -> Option<Duration> {
    let left = FAILURE_WINDOW.checked_sub(now.duration_since(since)).filter(|left| !left.is_zero())?;
    (count >= allowed).then_some(left)
}

impl Failures {
    /// An attempt from `ip`, counted as failed until [`Failures::succeeded`] says otherwise
    /// (an attempt whose client left mid-check still counts); or how long it must wait.
    pub fn attempt(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut tally = self.inner.lock();
        let key = network_of(ip);
        tally.by_address.retain(|_, (_, since)| now.duration_since(*since) < FAILURE_WINDOW);
        if let Some(wait) = tally.by_address.get(&key).and_then(|(n, since)| full(*n, *since, FAILURES, now)) {
            return Err(wait);
        }
        if let Some(wait) = tally.all.and_then(|(n, since)| full(n, since, ALL_FAILURES, now)) {
            return Err(wait);
        }
        if tally.by_address.len() >= TRACKED
            && !tally.by_address.contains_key(&key)
            && let Some(oldest) = tally.by_address.iter().min_by_key(|(_, (_, since))| *since).map(|(k, _)| *k)
        {
            tally.by_address.remove(&oldest);
        }
        tally.by_address.entry(key).or_insert((0, now)).0 += 1;
        let all = match tally.all {
            Some((n, since)) if now.duration_since(since) < FAILURE_WINDOW => (n + 1, since),
            _ => (1, now),
        };
        tally.all = Some(all);
        Ok(())
    }

    /// The attempt from `ip` was right: its address starts afresh (the global count stays).
    pub fn succeeded(&self, ip: IpAddr) {
        self.inner.lock().by_address.remove(&network_of(ip));
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
        assert!(!password.is_set() && password.verify("anything at all").is_none());
        assert!(password.set("short").unwrap_err().to_string().contains("at least 8"));
        assert!(password.set(&"x".repeat(MAX_PASSWORD + 1)).is_err());
        password.set("correct horse").unwrap();
        let stored = std::fs::read_to_string(dir.join(PASSWORD_FILE)).unwrap();
        assert!(stored.starts_with("$argon2id$") && !stored.contains("correct horse"), "{stored}");
        assert!(crate::store::is_private(&dir.join(PASSWORD_FILE)));
        let stamp = password.verify("correct horse");
        assert!(stamp.is_some() && stamp == password.stamp(), "a right password names the password it matched");
        assert!(password.verify("correct horsE").is_none() && password.verify("").is_none());
        // The same password set again is another setting: logins with the first end.
        password.set("correct horse").unwrap();
        assert_ne!(password.stamp(), stamp);
        std::fs::write(dir.join(PASSWORD_FILE), "garbage").unwrap();
        assert!(password.verify("correct horse").is_none(), "a broken file lets nobody in");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn logins_end_when_idle_old_too_many_or_the_password_changed() {
        let logins = Logins::default();
        let t0 = Instant::now();
        let stamp = [7; 32];
        let token = logins.start(t0, stamp);
        let login = logins.check(&token, t0, Some(stamp)).unwrap();
        assert_eq!(login.csrf.len(), 32);
        assert!(logins.check("not a token", t0, Some(stamp)).is_none());
        // Used within the idle time, it lives on; unused past it, it ends.
        let later = t0 + IDLE - Duration::from_secs(1);
        assert!(logins.check(&token, later, Some(stamp)).is_some());
        assert!(logins.is_live(&token, later + IDLE / 2, Some(stamp)));
        assert!(!logins.is_live(&token, later + IDLE, Some(stamp)), "looking does not keep it live");
        assert!(logins.check(&token, later + IDLE, Some(stamp)).is_none());
        // However used, a login ends after the longest time.
        let token = logins.start(t0, stamp);
        let mut t = t0;
        while t.duration_since(t0) < LONGEST - IDLE {
            t += IDLE / 2;
            assert!(logins.check(&token, t, Some(stamp)).is_some());
        }
        assert!(logins.check(&token, t0 + LONGEST, Some(stamp)).is_none());
        // A new password ends the logins made with the old one.
        let token = logins.start(t0, stamp);
        assert!(logins.check(&token, t0, Some([8; 32])).is_none());
        assert!(logins.check(&token, t0, Some(stamp)).is_none(), "ended, not only refused");
        let token = logins.start(t0, stamp);
        assert!(logins.check(&token, t0, None).is_none(), "no password set: no login");
        // A flood of logins pushes out the least recently used, never grows without bound.
        let first = logins.start(t0, stamp);
        for i in 0..MAX_LOGINS as u64 {
            logins.start(t0 + Duration::from_millis(i + 1), stamp);
        }
        assert!(logins.check(&first, t0, Some(stamp)).is_none());
        assert!(logins.by_digest.lock().len() <= MAX_LOGINS);
        let token = logins.start(t0, stamp);
        logins.end(&token);
        assert!(logins.check(&token, t0, Some(stamp)).is_none());
    }

    #[test]
    fn an_address_that_keeps_failing_waits_and_so_does_everyone_after_many() {
        let failures = Failures::default();
        let (ip, t0) = ("192.168.1.7".parse().unwrap(), Instant::now());
        for _ in 0..FAILURES {
            assert_eq!(failures.attempt(ip, t0), Ok(()));
        }
        assert!(failures.attempt(ip, t0).is_err(), "a sixth attempt waits, even before the others were checked");
        assert!(failures.attempt("192.168.1.8".parse().unwrap(), t0).is_ok(), "another machine may still try");
        assert_eq!(failures.attempt(ip, t0 + FAILURE_WINDOW), Ok(()), "after the window it may try again");
        // A right password clears its address.
        let right: IpAddr = "192.168.1.9".parse().unwrap();
        for _ in 0..FAILURES {
            failures.attempt(right, t0).unwrap();
        }
        failures.succeeded(right);
        assert!(failures.attempt(right, t0).is_ok());
        // One IPv6 machine is its /64.
        let a: IpAddr = "fd00:1:2:3::1".parse().unwrap();
        for _ in 0..FAILURES {
            failures.attempt(a, t0).unwrap();
        }
        assert!(failures.attempt("fd00:1:2:3::99".parse().unwrap(), t0).is_err());
        // Many addresses together reach the global budget: then everyone waits.
        let t1 = t0 + FAILURE_WINDOW * 2;
        for i in 0..ALL_FAILURES {
            assert!(failures.attempt(IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i)), t1).is_ok());
        }
        assert!(failures.attempt("10.9.9.9".parse().unwrap(), t1).is_err(), "the global budget is spent");
        assert!(failures.attempt("10.9.9.9".parse().unwrap(), t1 + FAILURE_WINDOW).is_ok());
        // The table stays bounded whoever fails.
        let t2 = t1 + FAILURE_WINDOW * 2;
        for i in 0..(TRACKED as u32 + 10) {
            let _ = failures.attempt(IpAddr::from(std::net::Ipv4Addr::from(0x0b00_0000 + i)), t2);
        }
        assert!(failures.inner.lock().by_address.len() <= TRACKED);
    }
}
