//! Steam's installed games: its libraries (`steamapps/libraryfolders.vdf`) and their app
//! manifests, read with `steamlocate`. A game launches through Steam inside the session
//! (`steam steam://rungameid/ID`); its box art is Steam's own library capsule.

use super::{Found, first_image};
use crate::config::App;
use std::path::{Path, PathBuf};
use steamlocate::app::StateFlag;

/// Apps in Steam's libraries that are not games: its runtimes, Proton, redistributables.
fn is_tool(app_id: u32, name: &str) -> bool {
    const TOOLS: &[u32] = &[228_980 /* Steamworks Common Redistributables */];
    TOOLS.contains(&app_id) || ["Proton ", "Proton-", "Steam Linux Runtime", "Steamworks "].iter().any(|p| name.starts_with(p))
}

/// Where Steam keeps itself under `home` (the native client's places, then Flathub's), and
/// the command that runs it: its own `steam.sh` there (found whatever the session's `PATH`),
/// else `steam`.
fn installation(home: &Path) -> Option<(PathBuf, Vec<String>)> {
    let native = [".local/share/Steam", ".steam/steam", ".steam/debian-installation"];
    let found = native.iter().map(|p| home.join(p)).find(|p| p.join("steamapps").is_dir());
    match found {
        Some(dir) => {
            let script = dir.join("steam.sh");
            let run = if script.is_file() { script.display().to_string() } else { "steam".into() };
            Some((dir, vec![run]))
        }
        None => {
            let flatpak = home.join(".var/app/com.valvesoftware.Steam/.local/share/Steam");
            let run = ["flatpak", "run", "com.valvesoftware.Steam"].map(String::from).to_vec();
            flatpak.join("steamapps").is_dir().then_some((flatpak, run))
        }
    }
}

/// The installed games of the Steam under `home`.
pub(super) fn scan(home: &Path) -> Vec<Found> {
    let Some((dir, steam)) = installation(home) else { return Vec::new() };
    let libraries = match steamlocate::SteamDir::from_dir(&dir).and_then(|s| s.libraries()) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("app catalog: Steam at {}: {e}", dir.display());
            return Vec::new();
        }
    };
    let mut found = Vec::new();
    for library in libraries.filter_map(Result::ok) {
        for app in library.apps().filter_map(Result::ok) {
            let Some(name) = app.name.clone().filter(|n| !n.trim().is_empty()) else { continue };
            let installed = app.state_flags.is_some_and(|f| f.flags().any(|f| f == StateFlag::FullyInstalled));
            if !installed || is_tool(app.app_id, &name) {
                continue;
            }
            let id = app.app_id;
            let cache = dir.join("appcache/librarycache");
            // Steam's portrait capsule: per app in a directory of its own now, beside it before.
            let image = first_image([cache.join(format!("{id}/library_600x900.jpg")), cache.join(format!("{id}_library_600x900.jpg"))]);
            let mut command = steam.clone();
            command.push(format!("steam://rungameid/{id}"));
            found.push(Found { key: id.to_string(), app: App { title: name, command, image, ..App::default() } });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Steam library as Steam lays it out: a game, a tool, a game still downloading.
    #[test]
    fn installed_games_with_their_art_and_nothing_else() {
        let home = std::env::temp_dir().join(format!("pf-steam-scan-{}", std::process::id()));
        let steam = home.join(".local/share/Steam");
        let apps = steam.join("steamapps");
        std::fs::create_dir_all(&apps).unwrap();
        std::fs::create_dir_all(steam.join("appcache/librarycache/620")).unwrap();
        std::fs::write(steam.join("appcache/librarycache/620/library_600x900.jpg"), b"\xff\xd8\xff\xe0JFIF\0").unwrap();
        std::fs::write(
            apps.join("libraryfolders.vdf"),
            format!("\"libraryfolders\"\n{{\n\t\"0\"\n\t{{\n\t\t\"path\"\t\t\"{}\"\n\t\t\"apps\"\n\t\t{{\n\t\t\t\"620\"\t\t\"1\"\n\t\t}}\n\t}}\n}}\n", steam.display()),
        )
        .unwrap();
        let manifest = |id: u32, name: &str, flags: u32| {
            let text = format!(
                "\"AppState\"\n{{\n\t\"appid\"\t\t\"{id}\"\n\t\"name\"\t\t\"{name}\"\n\t\"StateFlags\"\t\t\"{flags}\"\n\t\"installdir\"\t\t\"{name}\"\n}}\n"
            );
            std::fs::write(apps.join(format!("appmanifest_{id}.acf")), text).unwrap();
        };
        manifest(620, "Portal 2", 4);
        manifest(1_493_710, "Proton Experimental", 4);
        manifest(440, "Team Fortress 2", 1026);
        let found = scan(&home);
        let titles: Vec<&str> = found.iter().map(|f| f.app.title.as_str()).collect();
        assert_eq!(titles, ["Portal 2"]);
        assert_eq!(found[0].app.command, ["steam", "steam://rungameid/620"]);
        assert_eq!(found[0].app.image.as_deref(), Some(steam.join("appcache/librarycache/620/library_600x900.jpg").as_path()));
        assert!(scan(&home.join("nobody")).is_empty(), "no Steam, no games");
        let _ = std::fs::remove_dir_all(&home);
    }
}
