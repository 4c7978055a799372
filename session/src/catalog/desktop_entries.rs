//! Games among the desktop entries (`applications/*.desktop` in the XDG data directories,
//! Flatpak's exports too): entries in the `Game` category that menus show, parsed with
//! `freedesktop-desktop-entry`. Their `Exec` line (field codes dropped) runs in the session;
//! their icon, from the icon theme, is the box art.

use super::{Found, first_image};
use crate::config::App;
use freedesktop_desktop_entry::DesktopEntry;
use std::path::{Path, PathBuf};

/// Where desktop entries are, most important first: the user's data directory, then
/// `XDG_DATA_DIRS` (or its default), then Flatpak's exports.
pub(super) fn dirs(home: Option<&Path>) -> Vec<PathBuf> {
    let env_dir = |var: &str| std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from);
    let mut data: Vec<PathBuf> = env_dir("XDG_DATA_HOME").or_else(|| home.map(|h| h.join(".local/share"))).into_iter().collect();
    let system = std::env::var("XDG_DATA_DIRS").ok().filter(|d| !d.is_empty()).unwrap_or_else(|| "/usr/local/share:/usr/share".into());
    data.extend(system.split(':').filter(|d| d.starts_with('/')).map(PathBuf::from));
    data.extend(home.map(|h| h.join(".local/share/flatpak/exports/share")));
    data.push("/var/lib/flatpak/exports/share".into());
    // Each once, in order (XDG_DATA_DIRS often names Flatpak's already).
    let mut seen = std::collections::HashSet::new();
    data.retain(|d| seen.insert(d.clone()));
    data
}

/// The games among the desktop entries under `data_dirs`' `applications`.
pub(super) fn scan(data_dirs: &[PathBuf]) -> Vec<Found> {
    let mut found: Vec<Found> = Vec::new();
    let applications = data_dirs.iter().map(|d| d.join("applications"));
    for path in freedesktop_desktop_entry::Iter::new(applications) {
        let Ok(entry) = DesktopEntry::from_path(&path, None::<&[&str]>) else { continue };
        // An entry in a more important directory hides one of the same id after it.
        if found.iter().any(|f| f.key == entry.id()) {
            continue;
        }
        let game = entry.categories().is_some_and(|c| c.contains(&"Game"));
        let shown = entry.desktop_entry("Type") == Some("Application") && !entry.no_display() && !entry.hidden();
        if !(game && shown) {
            // Still hides its id from less important directories (an override to hide it).
            found.push(Found { key: entry.id().to_owned(), app: App::default() });
            continue;
        }
        let runnable = entry.try_exec().is_none_or(on_path);
        let (Some(name), Ok(command), true) = (entry.name(&[] as &[&str]), entry.parse_exec(), runnable) else {
            // Broken or not installed: it still hides its id from less important directories.
            found.push(Found { key: entry.id().to_owned(), app: App::default() });
            continue;
        };
        let image = entry.icon().and_then(|icon| icon_file(icon, data_dirs));
        let app = App { title: name.into_owned(), command, image, ..App::default() };
        found.push(Found { key: entry.id().to_owned(), app });
    }
    found.retain(|f| !f.app.command.is_empty());
    found
}

/// Whether `program` (a `TryExec`) is there: a path that exists, or a name on `PATH`.
fn on_path(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).is_file();
    }
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// The file of icon `icon`: a path as it is, else the largest PNG of it in the hicolor theme,
/// else in `pixmaps`.
fn icon_file(icon: &str, data_dirs: &[PathBuf]) -> Option<PathBuf> {
    if icon.starts_with('/') {
        return first_image([PathBuf::from(icon)]);
    }
    if icon.contains('/') || icon.starts_with('.') {
        return None;
    }
    let sizes = ["512x512", "256x256", "128x128", "96x96", "64x64", "48x48"];
    let themed = sizes.iter().flat_map(|size| data_dirs.iter().map(move |d| d.join(format!("icons/hicolor/{size}/apps/{icon}.png"))));
    let pixmaps = data_dirs.iter().map(|d| d.join(format!("pixmaps/{icon}.png")));
    first_image(themed.chain(pixmaps))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn games_menus_show_with_their_icons_and_overrides_honoured() {
        let root = std::env::temp_dir().join(format!("pf-desktop-scan-{}", std::process::id()));
        let (user, system) = (root.join("user"), root.join("system"));
        for d in [&user, &system] {
            std::fs::create_dir_all(d.join("applications")).unwrap();
        }
        std::fs::create_dir_all(system.join("icons/hicolor/256x256/apps")).unwrap();
        std::fs::write(system.join("icons/hicolor/256x256/apps/chess.png"), b"\x89PNG\r\n\x1a\n").unwrap();
        let entry = |dir: &Path, id: &str, body: &str| {
            std::fs::write(dir.join(format!("applications/{id}.desktop")), format!("[Desktop Entry]\nType=Application\n{body}")).unwrap();
        };
        entry(&system, "chess", "Name=Chess\nExec=chess --fullscreen %U\nIcon=chess\nCategories=Game;BoardGame;\n");
        entry(&system, "editor", "Name=Editor\nExec=editor %F\nCategories=Utility;\n");
        entry(&system, "hidden-game", "Name=Hidden\nExec=hidden\nCategories=Game;\nNoDisplay=true\n");
        entry(&system, "tetris", "Name=Tetris\nExec=tetris\nCategories=Game;\n");
        entry(&system, "gone", "Name=Gone\nExec=gone\nTryExec=/nonexistent/gone\nCategories=Game;\n");
        // The user hid the system's Tetris.
        entry(&user, "tetris", "Name=Tetris\nExec=tetris\nCategories=Game;\nHidden=true\n");
        let found = scan(&[user, system.clone()]);
        let got: Vec<(&str, &[String])> = found.iter().map(|f| (f.app.title.as_str(), f.app.command.as_slice())).collect();
        assert_eq!(got, [("Chess", &["chess".to_owned(), "--fullscreen".to_owned()][..])]);
        assert_eq!(found[0].app.image.as_deref(), Some(system.join("icons/hicolor/256x256/apps/chess.png").as_path()));
        assert!(dirs(Some(Path::new("/home/me"))).contains(&PathBuf::from("/home/me/.local/share/flatpak/exports/share")));
        let _ = std::fs::remove_dir_all(&root);
    }
}
