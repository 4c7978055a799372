//! The configured apps as the console and the API change them: the configuration file's
//! `[desktop]` and `[[apps]]` tables, edited in place (toml_edit) so the user's comments,
//! layout and the keys the console does not show (`env`, `prep`, `attach`) stay. A change is
//! parsed as a whole configuration before it is written (atomically): nothing the host would
//! refuse at its next start is ever saved.

use crate::config::Config;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use toml_edit::{Array, ArrayOfTables, DocumentMut, Item, Table, value};

/// What the console edits of an app.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AppEdit {
    pub title: String,
    /// Program and arguments, run inside the session.
    pub command: Vec<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub working_dir: Option<PathBuf>,
    /// Box art: a PNG or JPEG file the host can read.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub image: Option<PathBuf>,
}

/// Titles and commands are bounded: they are shown to every client and run as given.
const MAX_TITLE: usize = 100;
const MAX_ARGS: usize = 64;
const MAX_ARG: usize = 4096;

impl AppEdit {
    /// Why this is no app to save, if it is not one.
    pub fn check(&self) -> Result<(), String> {
        let title = self.title.trim();
        if title.is_empty() || title.chars().count() > MAX_TITLE || title.chars().any(char::is_control) {
            return Err(format!("a title has 1 to {MAX_TITLE} characters, none of them control characters"));
        }
        if self.command.is_empty() || self.command[0].trim().is_empty() {
            return Err("an app needs a command".into());
        }
        if self.command.len() > MAX_ARGS || self.command.iter().any(|a| a.len() > MAX_ARG || a.contains('\0')) {
            return Err(format!("a command has at most {MAX_ARGS} arguments of {MAX_ARG} bytes, without NUL"));
        }
        if let Some(image) = self.image.as_deref().filter(|i| !super::art::is_image(i)) {
            return Err(format!("{} is no PNG or JPEG file the host can read", image.display()));
        }
        Ok(())
    }
}

/// Which configured app: the Desktop, or the `[[apps]]` table at this index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    Desktop,
    App(usize),
}

impl Slot {
    /// The slot of catalog id `id` (configured apps: Desktop 1, then 2, 3, …).
    pub fn of(id: u32) -> Option<Self> {
        match id {
            0 => None,
            1 => Some(Self::Desktop),
            n if n < 1 << 30 => Some(Self::App(n as usize - 2)),
            _ => None,
        }
    }
}

/// Adds an app at the end; the new configuration.
pub fn add(path: &Path, app: &AppEdit) -> anyhow::Result<Config> {
    change(path, |doc| {
        let mut table = Table::new();
        fill(&mut table, app);
        apps(doc).push(table);
        Ok(())
    })
}

/// Changes the app in `slot` (its other keys stay); the new configuration.
pub fn replace(path: &Path, slot: Slot, app: &AppEdit) -> anyhow::Result<Config> {
    change(path, |doc| {
        fill(table(doc, slot)?, app);
        Ok(())
    })
}

/// Gives the app in `slot` this box art, or none; the new configuration.
pub fn set_image(path: &Path, slot: Slot, image: Option<&Path>) -> anyhow::Result<Config> {
    change(path, |doc| {
        set_path(table(doc, slot)?, "image", image);
        Ok(())
    })
}

/// Removes the app at `index`; the new configuration.
pub fn remove(path: &Path, index: usize) -> anyhow::Result<Config> {
    change(path, |doc| {
        let apps = apps(doc);
        anyhow::ensure!(index < apps.len(), "no such app");
        apps.remove(index);
        Ok(())
    })
}

/// Puts the apps in `order` (their present indices, each once); the new configuration.
pub fn reorder(path: &Path, order: &[usize]) -> anyhow::Result<Config> {
    change(path, |doc| {
        let apps = apps(doc);
        let mut sorted = order.to_vec();
        sorted.sort_unstable();
        anyhow::ensure!(sorted == (0..apps.len()).collect::<Vec<_>>(), "the order must name every app once");
        // Tables are written in the order of their positions in the file: the new order
        // takes the places the old one had.
        let places: Vec<Option<isize>> = apps.iter().map(Table::position).collect();
        let tables: Vec<Table> = order.iter().filter_map(|&i| apps.get(i).cloned()).collect();
        apps.clear();
        for (mut table, place) in tables.into_iter().zip(places) {
            if let Some(place) = place {
                table.set_position(place);
            }
            apps.push(table);
        }
        Ok(())
    })
}

/// The `[[apps]]` tables, made if there are none.
fn apps(doc: &mut DocumentMut) -> &mut ArrayOfTables {
    if !doc.contains_key("apps") {
        doc.insert("apps", Item::ArrayOfTables(ArrayOfTables::new()));
    }
    doc["apps"].as_array_of_tables_mut().expect("checked by the configuration's parse: apps is an array of tables")
}

/// The table of the app in `slot` (the Desktop's made if the file has none).
fn table(doc: &mut DocumentMut, slot: Slot) -> anyhow::Result<&mut Table> {
    let table = match slot {
        Slot::Desktop => doc.entry("desktop").or_insert(Item::Table(Table::new())).as_table_mut(),
        Slot::App(i) => apps(doc).get_mut(i),
    };
    table.ok_or_else(|| anyhow::anyhow!("no such app"))
}

fn fill(table: &mut Table, app: &AppEdit) {
    table["title"] = value(app.title.trim());
    table["command"] = value(app.command.iter().map(String::as_str).collect::<Array>());
    set_path(table, "working_dir", app.working_dir.as_deref());
    set_path(table, "image", app.image.as_deref());
}

fn set_path(table: &mut Table, key: &str, path: Option<&Path>) {
    match path {
        Some(p) => table[key] = value(p.display().to_string()),
        None => {
            table.remove(key);
        }
    }
}

/// Reads the file, changes it, checks the result parses as a configuration whose apps have
/// distinct titles, and writes it.
fn change(path: &Path, edit: impl FnOnce(&mut DocumentMut) -> anyhow::Result<()>) -> anyhow::Result<Config> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    // The file parses as a configuration (the host started with it), so its apps are tables.
    Config::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut doc: DocumentMut = text.parse()?;
    edit(&mut doc)?;
    let text = doc.to_string();
    let config = Config::parse(&text).map_err(|e| anyhow::anyhow!("the change makes no valid configuration: {e}"))?;
    let mut titles: Vec<&str> = std::iter::once(&config.desktop).chain(&config.apps).map(|a| a.title.as_str()).collect();
    titles.sort_unstable();
    if let Some(twice) = titles.windows(2).find(|w| w[0] == w[1]) {
        anyhow::bail!("two apps would be called {:?}", twice[0]);
    }
    crate::store::write_atomic(path, text.as_bytes())?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# my host\nport = 47989\n\n[desktop]\ncommand = [\"foot\"]\n\n# games\n[[apps]]\ntitle = \"Steam\"\ncommand = [\"steam\"]\nenv = { A = \"1\" } # keep\n\n[[apps]]\ntitle = \"Chess\"\ncommand = [\"chess\"]\n";

    fn edit(title: &str, command: &[&str]) -> AppEdit {
        AppEdit { title: title.into(), command: command.iter().map(|s| s.to_string()).collect(), working_dir: None, image: None }
    }

    fn file(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pf-edit-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.toml");
        std::fs::write(&path, FILE).unwrap();
        path
    }

    #[test]
    fn changes_keep_the_users_comments_and_other_keys() {
        let path = file("keep");
        let config = add(&path, &edit("Clock", &["clock", "--big"])).unwrap();
        assert_eq!(config.apps.iter().map(|a| a.title.as_str()).collect::<Vec<_>>(), ["Steam", "Chess", "Clock"]);
        let config = replace(&path, Slot::App(0), &edit("Steam Big Picture", &["steam", "-gamepadui"])).unwrap();
        assert_eq!(config.apps[0].command, ["steam", "-gamepadui"]);
        assert_eq!(config.apps[0].env["A"], "1", "keys the console does not show stay");
        let config = reorder(&path, &[2, 0, 1]).unwrap();
        assert_eq!(config.apps.iter().map(|a| a.title.as_str()).collect::<Vec<_>>(), ["Clock", "Steam Big Picture", "Chess"]);
        let config = set_image(&path, Slot::App(1), Some(Path::new("/art/steam.png"))).unwrap();
        assert_eq!(config.apps[1].image.as_deref(), Some(Path::new("/art/steam.png")));
        assert_eq!(config.apps[1].env["A"], "1", "only the art changes");
        assert_eq!(set_image(&path, Slot::App(1), None).unwrap().apps[1].image, None);
        let config = remove(&path, 2).unwrap();
        assert_eq!(config.apps.len(), 2);
        let config = replace(&path, Slot::Desktop, &edit("Desktop", &["weston-terminal"])).unwrap();
        assert_eq!(config.desktop.command, ["weston-terminal"]);
        let text = std::fs::read_to_string(&path).unwrap();
        for kept in ["# my host", "# games", "# keep", "port = 47989"] {
            assert!(text.contains(kept), "{kept:?} kept in:\n{text}");
        }
        assert_eq!(Config::parse(&text).unwrap(), config, "what was written is what was returned");
    }

    #[test]
    fn nothing_invalid_is_written() {
        let path = file("invalid");
        assert!(add(&path, &edit("Chess", &["other"])).unwrap_err().to_string().contains("two apps would be called \"Chess\""));
        assert!(reorder(&path, &[0, 0]).is_err() && reorder(&path, &[1]).is_err());
        assert!(remove(&path, 5).is_err() && replace(&path, Slot::App(9), &edit("X", &["x"])).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), FILE, "untouched");
        assert!(edit("", &["x"]).check().is_err());
        assert!(edit("Bell\u{7}", &["x"]).check().is_err());
        assert!(edit("Game", &[]).check().is_err());
        assert!(edit("Game", &["a\0b"]).check().is_err());
        assert!(AppEdit { image: Some(path.clone()), ..edit("Game", &["game"]) }.check().unwrap_err().contains("no PNG or JPEG"));
        assert!(edit("Game", &["game", "--fast"]).check().is_ok());
        assert_eq!(Slot::of(1), Some(Slot::Desktop));
        assert_eq!(Slot::of(3), Some(Slot::App(1)));
        assert_eq!(Slot::of(0), None);
        assert_eq!(Slot::of(1 << 30), None, "found apps are not configured ones");
    }
}
