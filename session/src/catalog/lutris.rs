//! Lutris's installed games: its database (`pga.db`, SQLite, table `games`), read-only. A
//! game launches through Lutris inside the session (`lutris lutris:rungameid/ID`); its box
//! art is Lutris's cover art.

use super::{Found, first_image};
use crate::config::App;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where Lutris keeps its data under `home` (the native package's place, then Flathub's), and
/// the command that runs it.
fn installation(home: &Path) -> Option<(PathBuf, Vec<String>)> {
    let native = home.join(".local/share/lutris");
    let flatpak = home.join(".var/app/net.lutris.Lutris/data/lutris");
    if native.join("pga.db").is_file() {
        Some((native, vec!["lutris".into()]))
    } else {
        let run = ["flatpak", "run", "net.lutris.Lutris"].map(String::from).to_vec();
        flatpak.join("pga.db").is_file().then_some((flatpak, run))
    }
}

/// The installed games of the Lutris under `home`.
pub(super) fn scan(home: &Path) -> Vec<Found> {
    let Some((dir, lutris)) = installation(home) else { return Vec::new() };
    match games(&dir.join("pga.db")) {
        Ok(games) => games
            .into_iter()
            .map(|(id, name, slug)| {
                // Cover art where Lutris keeps it now (its cache), or kept it before.
                let cache = home.join(".cache/lutris");
                let art = [&cache, &dir].into_iter().flat_map(|d| ["coverart", "banners"].map(|kind| d.join(format!("{kind}/{slug}.jpg"))));
                let mut command = lutris.clone();
                command.push(format!("lutris:rungameid/{id}"));
                Found { key: id.to_string(), app: App { title: name, command, image: first_image(art), ..App::default() } }
            })
            .collect(),
        Err(e) => {
            tracing::warn!("app catalog: Lutris's games in {}: {e}", dir.display());
            Vec::new()
        }
    }
}

/// (id, name, slug) of each installed game, hidden ones left out where the database says
/// which (older versions have a `hidden` column; newer ones a `.hidden` category).
fn games(db: &Path) -> rusqlite::Result<Vec<(i64, String, String)>> {
    let db = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    // Lutris may be writing: wait a moment for its lock rather than failing the scan.
    db.busy_timeout(Duration::from_millis(500))?;
    let has = |table: &str, column: &str| -> bool { db.prepare(&format!("SELECT {column} FROM {table} LIMIT 0")).is_ok() };
    let mut query = String::from("SELECT id, name, slug FROM games WHERE installed = 1 AND name IS NOT NULL AND slug IS NOT NULL");
    if has("games", "hidden") {
        query.push_str(" AND COALESCE(hidden, 0) = 0");
    }
    if has("games_categories", "game_id") && has("categories", "name") {
        query.push_str(
            " AND id NOT IN (SELECT gc.game_id FROM games_categories gc JOIN categories c ON c.id = gc.category_id WHERE c.name = '.hidden')",
        );
    }
    query.push_str(" ORDER BY name LIMIT 2000");
    let mut statement = db.prepare(&query)?;
    let rows = statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Lutris database under `home` as Lutris makes it (the columns it has), with `games`
    /// (id, name, slug, installed) and a `.hidden` category holding `hidden`.
    fn lutris_library(home: &Path, games: &[(i64, &str, &str, bool)], hidden: &[i64]) {
        let dir = home.join(".local/share/lutris");
        std::fs::create_dir_all(&dir).unwrap();
        let db = Connection::open(dir.join("pga.db")).unwrap();
        db.execute_batch(
            "CREATE TABLE games (id INTEGER PRIMARY KEY, name TEXT, sortname TEXT, slug TEXT, installer_slug TEXT, parent_slug TEXT,
                platform TEXT, runner TEXT, executable TEXT, directory TEXT, updated DATETIME, lastplayed INTEGER, installed INTEGER,
                installed_at INTEGER, year INTEGER, configpath TEXT, has_custom_banner INTEGER, has_custom_icon INTEGER,
                has_custom_coverart_big INTEGER, playtime REAL, service TEXT, service_id TEXT, discord_id TEXT);
             CREATE TABLE categories (id INTEGER PRIMARY KEY, name TEXT UNIQUE);
             CREATE TABLE games_categories (game_id INTEGER, category_id INTEGER);
             INSERT INTO categories (id, name) VALUES (1, '.hidden');",
        )
        .unwrap();
        for (id, name, slug, installed) in games {
            db.execute(
                "INSERT INTO games (id, name, slug, runner, installed, configpath) VALUES (?1, ?2, ?3, 'linux', ?4, ?3)",
                rusqlite::params![id, name, slug, i32::from(*installed)],
            )
            .unwrap();
        }
        for id in hidden {
            db.execute("INSERT INTO games_categories (game_id, category_id) VALUES (?1, 1)", [id]).unwrap();
        }
    }

    #[test]
    fn installed_games_not_hidden_with_their_cover_art() {
        let home = std::env::temp_dir().join(format!("pf-lutris-scan-{}", std::process::id()));
        lutris_library(
            &home,
            &[(3, "SuperTuxKart", "supertuxkart", true), (4, "Quake", "quake", false), (5, "Secret", "secret", true)],
            &[5],
        );
        std::fs::create_dir_all(home.join(".cache/lutris/coverart")).unwrap();
        std::fs::write(home.join(".cache/lutris/coverart/supertuxkart.jpg"), b"\xff\xd8\xff\xe0JFIF\0").unwrap();
        let found = scan(&home);
        let got: Vec<(&str, &[String])> = found.iter().map(|f| (f.app.title.as_str(), f.app.command.as_slice())).collect();
        assert_eq!(got, [("SuperTuxKart", &["lutris".to_owned(), "lutris:rungameid/3".to_owned()][..])]);
        assert_eq!(found[0].app.image.as_deref(), Some(home.join(".cache/lutris/coverart/supertuxkart.jpg").as_path()));
        let _ = std::fs::remove_dir_all(&home);
    }
}
