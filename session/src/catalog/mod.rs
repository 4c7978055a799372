//! The app catalog clients see: the configuration's apps (Desktop first, ids from 1), then
//! what the scanners find installed (Steam's libraries, Lutris's and Heroic's games, desktop
//! entries of games), each with an id of its own that stays the same across restarts and
//! rescans, so clients' cached lists and box art stay right. A found app whose title a
//! configured one has is left out: what the user wrote wins. Found apps are looked for when
//! the host starts and again, on a thread of their own, when a client asks for the list and
//! the last look is older than [`RESCAN`].

pub mod art;
mod desktop_entries;
pub mod edit;
mod heroic;
mod lutris;
mod steam;

use crate::config::{App, Config};
use parking_lot::Mutex;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How old the found apps may be when a client asks for the list.
const RESCAN: Duration = Duration::from_secs(10);
/// Found apps kept at most (a library of thousands is cut, not the host's memory).
const MAX_FOUND: usize = 2000;

/// Where an app in the catalog comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Config,
    Steam,
    Lutris,
    Heroic,
    DesktopEntry,
}

impl Source {
    /// Its name in found apps' ids: fixed, so renaming the variant changes no id.
    fn tag(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::Steam => "steam",
            Self::Lutris => "lutris",
            Self::Heroic => "heroic",
            Self::DesktopEntry => "desktop",
        }
    }
}

/// One app of the catalog.
#[derive(Clone, Debug)]
pub struct Entry {
    pub id: u32,
    pub app: App,
    pub source: Source,
}

/// An app a scanner found: a key unique within its source (Steam's app id, the desktop
/// entry's id), from which its catalog id is made.
struct Found {
    key: String,
    app: App,
}

/// Which scanners run, and where they look.
#[derive(Clone, Debug)]
struct Scanners {
    steam: bool,
    lutris: bool,
    heroic: bool,
    desktop_entries: bool,
    home: Option<PathBuf>,
}

pub struct Catalog(Arc<Shared>);

struct Shared {
    /// The configured apps (Desktop first), replaced whole when the console edits them.
    written: Mutex<Arc<Vec<App>>>,
    /// Edits of the configuration file one at a time.
    editing: Mutex<()>,
    scanners: Scanners,
    /// What the last look found, and when it looked.
    found: Mutex<(Instant, Arc<Vec<Entry>>)>,
    /// A look runs now (on a thread of its own: no request waits on the disks).
    looking: AtomicBool,
}

impl Catalog {
    /// The catalog of `config`, with a first look for installed games (before the host
    /// serves, so the first list a client gets has them).
    pub fn new(config: &Config) -> Self {
        let written = Mutex::new(configured(config));
        // With remote login the host runs as root for every user: whose home would it be? Only
        // the machine's desktop entries are looked at then.
        let home = std::env::var_os("HOME").filter(|h| !h.is_empty() && !config.login).map(PathBuf::from);
        let scanners = Scanners {
            steam: config.scan_steam,
            lutris: config.scan_lutris,
            heroic: config.scan_heroic,
            desktop_entries: config.scan_desktop_entries,
            home,
        };
        let shared = Shared {
            written,
            editing: Mutex::new(()),
            scanners,
            found: Mutex::new((Instant::now(), Arc::default())),
            looking: AtomicBool::new(false),
        };
        let found = shared.scan();
        *shared.found.lock() = (Instant::now(), Arc::new(found));
        Self(Arc::new(shared))
    }

    /// Every app, configured ones first; found ones as of the last look (a new look starts
    /// if that is older than [`RESCAN`]; the list after it has what it found).
    pub fn entries(&self) -> Vec<Entry> {
        let configured = self.0.written.lock().clone();
        let written = configured.iter().enumerate().map(|(i, a)| Entry { id: i as u32 + 1, app: a.clone(), source: Source::Config });
        let mut entries: Vec<Entry> = written.collect();
        entries.extend(self.found().iter().cloned());
        entries
    }

    /// The app with catalog id `id`.
    pub fn app(&self, id: u32) -> Option<App> {
        let configured = self.0.written.lock().clone();
        match id.checked_sub(1).and_then(|i| configured.get(i as usize)) {
            Some(app) => Some(app.clone()),
            None => self.found().iter().find(|e| e.id == id).map(|e| e.app.clone()),
        }
    }

    /// The app titled `title`, or with no title the first (Desktop).
    pub fn titled(&self, title: &str) -> Option<(u32, App)> {
        self.entries().into_iter().find(|e| e.app.title == title || (title.is_empty() && e.id == 1)).map(|e| (e.id, e.app))
    }

    /// Changes the configuration file's apps with `edit` (one change at a time), and takes
    /// the configured apps it leaves; found apps whose titles they now take go at the next
    /// look, which starts at once.
    pub fn edit(&self, edit: impl FnOnce() -> anyhow::Result<Config>) -> anyhow::Result<()> {
        let _one = self.0.editing.lock();
        let config = edit()?;
        *self.0.written.lock() = configured(&config);
        if let Some(stale) = Instant::now().checked_sub(RESCAN) {
            self.0.found.lock().0 = stale;
        }
        Ok(())
    }

    /// The found apps; a look for them again starts if the last is older than [`RESCAN`].
    fn found(&self) -> Arc<Vec<Entry>> {
        let (at, found) = self.0.found.lock().clone();
        if at.elapsed() >= RESCAN && !self.0.looking.swap(true, Ordering::AcqRel) {
            let shared = Arc::clone(&self.0);
            let spawned = std::thread::Builder::new().name("catalog-scan".into()).spawn(move || {
                let found = shared.scan();
                *shared.found.lock() = (Instant::now(), Arc::new(found));
                shared.looking.store(false, Ordering::Release);
            });
            if spawned.is_err() {
                self.0.looking.store(false, Ordering::Release);
            }
        }
        found
    }
}

impl Shared {
    fn scan(&self) -> Vec<Entry> {
        let s = &self.scanners;
        let written = self.written.lock().clone();
        let mut sources: Vec<(Source, Vec<Found>)> = Vec::new();
        if let (true, Some(home)) = (s.steam, &s.home) {
            sources.push((Source::Steam, steam::scan(home)));
        }
        if let (true, Some(home)) = (s.lutris, &s.home) {
            sources.push((Source::Lutris, lutris::scan(home)));
        }
        if let (true, Some(home)) = (s.heroic, &s.home) {
            sources.push((Source::Heroic, heroic::scan(home)));
        }
        if s.desktop_entries {
            sources.push((Source::DesktopEntry, desktop_entries::scan(&desktop_entries::dirs(s.home.as_deref()))));
        }
        let mut entries: Vec<Entry> = Vec::new();
        for (source, found) in sources {
            for Found { key, app } in found {
                // What the user wrote, or a scanner before, has the title already.
                let taken = |title: &str| written.iter().any(|a| a.title == title) || entries.iter().any(|e| e.app.title == title);
                if taken(&app.title) || entries.len() >= MAX_FOUND {
                    continue;
                }
                let id = found_id(source, &key);
                if entries.iter().any(|e| e.id == id) {
                    tracing::warn!(title = app.title, "app catalog: two found apps share an id; leaving this one out");
                    continue;
                }
                entries.push(Entry { id, app, source });
            }
        }
        entries
    }
}

/// The configured apps in catalog order: Desktop, then `[[apps]]`.
fn configured(config: &Config) -> Arc<Vec<App>> {
    Arc::new(std::iter::once(config.desktop.clone()).chain(config.apps.iter().cloned()).collect())
}

/// A found app's id: from its source and key, so it is the same on every scan and start;
/// above 2^30, clear of the configured apps' (1, 2, …), and positive as a 32-bit signed
/// number (some clients parse it so).
fn found_id(source: Source, key: &str) -> u32 {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, format!("{}:{key}", source.tag()).as_bytes());
    let bits = u32::from_le_bytes(digest.as_ref()[..4].try_into().expect("4 bytes"));
    (1 << 30) | (bits & ((1 << 30) - 1))
}

/// The first of `candidates` that is a PNG or JPEG file.
fn first_image(candidates: impl IntoIterator<Item = PathBuf>) -> Option<PathBuf> {
    candidates.into_iter().find(|p| art::is_image(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_apps_get_ids_from_one_desktop_first() {
        let config = "scan_steam = false\nscan_desktop_entries = false\n[[apps]]\ntitle = \"Game\"\ncommand = [\"game\", \"--fast\"]\nenv = { A = \"1\" }\n";
        let catalog = Catalog::new(&Config::parse(config).unwrap());
        let ids: Vec<(u32, String)> = catalog.entries().into_iter().map(|e| (e.id, e.app.title)).collect();
        assert_eq!(ids, [(1, "Desktop".to_owned()), (2, "Game".to_owned())]);
        assert_eq!(catalog.app(2).unwrap().env["A"], "1");
        assert!(catalog.app(0).is_none() && catalog.app(3).is_none());
        assert_eq!(catalog.titled("").map(|(id, _)| id), Some(1), "no title: the Desktop");
    }

    #[test]
    fn found_ids_are_stable_distinct_and_clear_of_the_configured_ones() {
        let a = found_id(Source::Steam, "570");
        assert_eq!(a, found_id(Source::Steam, "570"), "the same on every scan");
        assert_ne!(a, found_id(Source::DesktopEntry, "570"), "sources apart");
        assert!(a >= 1 << 30 && a <= i32::MAX as u32);
    }
}
