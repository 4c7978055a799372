//! Heroic Games Launcher's installed games: Epic's (through legendary), GOG's and the apps
//! added to it by hand, from its JSON files. A game launches through Heroic inside the
//! session (`heroic --no-gui heroic://launch/RUNNER/APP`); its box art is the square art
//! Heroic cached.

use super::{Found, first_image};
use crate::config::App;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The largest of Heroic's files read (a library of thousands of games is a few MB).
const MAX_FILE: u64 = 32 << 20;

/// Where Heroic keeps its configuration under `home` (the native package's place, then
/// Flathub's), and the command that runs it.
fn installation(home: &Path) -> Option<(PathBuf, Vec<String>)> {
    let native = home.join(".config/heroic");
    let flatpak = home.join(".var/app/com.heroicgameslauncher.hgl/config/heroic");
    if native.is_dir() {
        Some((native, vec!["heroic".into()]))
    } else {
        let run = ["flatpak", "run", "com.heroicgameslauncher.hgl"].map(String::from).to_vec();
        flatpak.is_dir().then_some((flatpak, run))
    }
}

/// A game as Heroic's libraries list it.
#[derive(Deserialize)]
struct Listed {
    app_name: String,
    title: String,
    #[serde(default)]
    is_installed: bool,
    #[serde(default)]
    art_square: Option<String>,
}

#[derive(Deserialize)]
struct Library {
    #[serde(default)]
    games: Vec<Listed>,
}

/// Epic's installed games, as legendary records them: by app name.
#[derive(Deserialize)]
struct EpicInstalled {
    title: String,
    #[serde(default)]
    is_dlc: bool,
}

/// GOG's installed games, as Heroic's gogdl records them.
#[derive(Deserialize)]
struct GogInstalled {
    installed: Vec<GogGame>,
}

#[derive(Deserialize)]
struct GogGame {
    #[serde(rename = "appName")]
    app_name: String,
    #[serde(default)]
    is_dlc: bool,
}

/// The JSON file at `path`, if it is there and parses (bounded in size).
fn read<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    let file = std::fs::File::open(path).ok()?;
    let mut text = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_FILE), &mut text).ok()?;
    match serde_json::from_slice(&text) {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::warn!("app catalog: Heroic's {}: {e}", path.display());
            None
        }
    }
}

/// The installed games of the Heroic under `home`.
pub(super) fn scan(home: &Path) -> Vec<Found> {
    let Some((dir, heroic)) = installation(home) else { return Vec::new() };
    let library = |name: &str| read::<Library>(&dir.join(name)).map(|l| l.games).unwrap_or_default();
    let art_of = |games: &[Listed], app: &str| games.iter().find(|g| g.app_name == app).and_then(|g| g.art_square.clone());
    let mut found: Vec<(&str, String, String, Option<String>)> = Vec::new();

    let epic_library = library("store_cache/legendary_library.json");
    let epic: BTreeMap<String, EpicInstalled> = read(&dir.join("legendaryConfig/legendary/installed.json")).unwrap_or_default();
    for (app, game) in epic.into_iter().filter(|(_, g)| !g.is_dlc) {
        let art = art_of(&epic_library, &app);
        found.push(("legendary", app, game.title, art));
    }
    let gog_library = library("store_cache/gog_library.json");
    let gog = read::<GogInstalled>(&dir.join("gog_store/installed.json")).map(|i| i.installed).unwrap_or_default();
    for game in gog.into_iter().filter(|g| !g.is_dlc) {
        // GOG's installed list names no titles: the library does.
        if let Some(listed) = gog_library.iter().find(|l| l.app_name == game.app_name) {
            found.push(("gog", game.app_name, listed.title.clone(), listed.art_square.clone()));
        }
    }
    for game in library("sideload_apps/library.json").into_iter().filter(|g| g.is_installed) {
        found.push(("sideload", game.app_name, game.title, game.art_square));
    }

    found
        .into_iter()
        .filter(|(_, app, title, _)| !title.trim().is_empty() && !app.contains(['/', '?', '#']))
        .map(|(runner, app, title, art)| {
            let mut command = heroic.clone();
            command.extend(["--no-gui".into(), format!("heroic://launch/{runner}/{app}")]);
            let image = art.and_then(|a| cached_art(&dir, &a));
            Found { key: format!("{runner}/{app}"), app: App { title, command, image, ..App::default() } }
        })
        .collect()
}

/// The local file of art `art`: a path as it is (added by hand), else Heroic's cached copy
/// of the URL (its images cache names each by the URL's SHA-256).
fn cached_art(dir: &Path, art: &str) -> Option<PathBuf> {
    if art.starts_with('/') {
        return first_image([PathBuf::from(art)]);
    }
    if !art.starts_with("https://") && !art.starts_with("http://") {
        return None;
    }
    let hash = hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, art.as_bytes()));
    let cache = dir.join("images-cache");
    first_image(["", ".jpg", ".png"].map(|ext| cache.join(format!("{hash}{ext}"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_epic_gog_and_added_games_with_cached_art() {
        let home = std::env::temp_dir().join(format!("pf-heroic-scan-{}", std::process::id()));
        let dir = home.join(".config/heroic");
        for sub in ["legendaryConfig/legendary", "gog_store", "store_cache", "sideload_apps", "images-cache"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let write = |path: &str, json: serde_json::Value| std::fs::write(dir.join(path), json.to_string()).unwrap();
        write(
            "legendaryConfig/legendary/installed.json",
            serde_json::json!({
                "Sugar": { "app_name": "Sugar", "title": "Celeste", "install_path": "/games/Celeste", "platform": "Windows", "is_dlc": false },
                "SugarDLC": { "app_name": "SugarDLC", "title": "Celeste Farewell", "install_path": "/games/Celeste", "is_dlc": true }
            }),
        );
        let url = "https://cdn1.epicgames.com/celeste-square.jpg";
        write(
            "store_cache/legendary_library.json",
            serde_json::json!({ "library": [], "games": [
                { "runner": "legendary", "app_name": "Sugar", "title": "Celeste", "art_square": url, "is_installed": true }
            ]}),
        );
        let hash = hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, url.as_bytes()));
        std::fs::write(dir.join(format!("images-cache/{hash}")), b"\xff\xd8\xff\xe0JFIF\0").unwrap();
        write(
            "gog_store/installed.json",
            serde_json::json!({ "installed": [
                { "platform": "linux", "install_path": "/games/Hollow", "appName": "1308320804", "is_dlc": false }
            ]}),
        );
        write(
            "store_cache/gog_library.json",
            serde_json::json!({ "games": [
            { "runner": "gog", "app_name": "1308320804", "title": "Hollow Knight", "is_installed": true },
            { "runner": "gog", "app_name": "1207658924", "title": "Not Installed", "is_installed": false }
        ], "totalGames": 2 }),
        );
        write(
            "sideload_apps/library.json",
            serde_json::json!({ "games": [
                { "runner": "sideload", "app_name": "aB3", "title": "Homebrew", "is_installed": true, "art_square": "/nonexistent.png" }
            ]}),
        );
        let found = scan(&home);
        let got: Vec<(&str, &str)> = found.iter().map(|f| (f.app.title.as_str(), f.app.command[2].as_str())).collect();
        assert_eq!(
            got,
            [
                ("Celeste", "heroic://launch/legendary/Sugar"),
                ("Hollow Knight", "heroic://launch/gog/1308320804"),
                ("Homebrew", "heroic://launch/sideload/aB3")
            ]
        );
        assert_eq!(found[0].app.command[..2], ["heroic", "--no-gui"]);
        assert_eq!(found[0].app.image.as_deref(), Some(dir.join(format!("images-cache/{hash}")).as_path()));
        assert!(found[1].app.image.is_none() && found[2].app.image.is_none());
        let _ = std::fs::remove_dir_all(&home);
    }
}
