//! The app catalog fills itself: a Steam library, a Lutris database, Heroic's lists of Epic
//! games and a desktop entry of a game, laid out in their real formats in a home directory
//! made for the test, appear in a stock Moonlight client's app list beside the configured
//! apps, with their box art, and launch from it. The Steam game runs through the library's
//! own `steam.sh` with its `steam://rungameid/` URL, the Lutris game through `lutris` with
//! `lutris:rungameid/`, the Epic game through `heroic --no-gui heroic://launch/…` (stand-ins
//! that check what they are given: the launchers themselves cannot run in a test); the
//! desktop entry through its `Exec`.

mod common;

use common::{client_report, python, start_daemon_configured, target_dir};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

const PORT: u16 = 16489;
const API_PORT: u16 = 16491;

/// JPEG and PNG files as far as their first bytes go: what the host serves is told apart by
/// them.
const JPEG: &[u8] = b"\xff\xd8\xff\xe0steam-capsule";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\nchess-icon";
const LUTRIS_COVER: &[u8] = b"\xff\xd8\xff\xe0lutris-cover";
const HEROIC_SQUARE: &[u8] = b"\x89PNG\r\n\x1a\nheroic-square";

/// A Steam installation under `home` with one game (Portal 2, app 620), its capsule art, a
/// tool that is no game, and a `steam.sh` that shows `colour` for that game's URL.
fn steam_library(home: &Path, colour: &str) {
    let steam = home.join(".local/share/Steam");
    let apps = steam.join("steamapps");
    std::fs::create_dir_all(steam.join("appcache/librarycache/620")).unwrap();
    std::fs::create_dir_all(&apps).unwrap();
    std::fs::write(steam.join("appcache/librarycache/620/library_600x900.jpg"), JPEG).unwrap();
    let folders = format!(
        "\"libraryfolders\"\n{{\n\t\"0\"\n\t{{\n\t\t\"path\"\t\t\"{}\"\n\t\t\"label\"\t\t\"\"\n\t\t\"apps\"\n\t\t{{\n\t\t\t\"620\"\t\t\"12000000000\"\n\t\t\t\"1628350\"\t\t\"500000000\"\n\t\t}}\n\t}}\n}}\n",
        steam.display()
    );
    std::fs::write(apps.join("libraryfolders.vdf"), folders).unwrap();
    for (id, name) in [(620, "Portal 2"), (1_628_350, "Steam Linux Runtime 3.0 (sniper)")] {
        let manifest = format!(
            "\"AppState\"\n{{\n\t\"appid\"\t\t\"{id}\"\n\t\"Universe\"\t\t\"1\"\n\t\"name\"\t\t\"{name}\"\n\t\"StateFlags\"\t\t\"4\"\n\t\"installdir\"\t\t\"{name}\"\n\t\"LastUpdated\"\t\t\"1700000000\"\n\t\"SizeOnDisk\"\t\t\"12000000000\"\n\t\"buildid\"\t\t\"1\"\n}}\n"
        );
        std::fs::write(apps.join(format!("appmanifest_{id}.acf")), manifest).unwrap();
    }
    let script = steam.join("steam.sh");
    let pattern = target_dir().join("punktfunk-test-pattern");
    let body = format!("#!/bin/sh\n[ \"$1\" = steam://rungameid/620 ] && exec '{}' --color {colour}\nexit 1\n", pattern.display());
    std::fs::write(&script, body).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A stand-in for a launcher, `bin/NAME`: shows `colour` when given exactly `args`, else fails.
fn launcher(bin: &Path, name: &str, args: &[&str], colour: &str) {
    std::fs::create_dir_all(bin).unwrap();
    let pattern = target_dir().join("punktfunk-test-pattern");
    let wanted = args.join(" ");
    let body =
        format!("#!/bin/sh\n[ \"$*\" = '{wanted}' ] && exec '{}' --color {colour}\necho \"{name}: $*\" >&2\nexit 1\n", pattern.display());
    let script = bin.join(name);
    std::fs::write(&script, body).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Lutris under `home` with one installed game (Hades, id 7) and its cover art in Lutris's
/// cache, one not installed; `lutris` in `bin` shows `colour` for the game.
fn lutris_library(home: &Path, bin: &Path, colour: &str) {
    let dir = home.join(".local/share/lutris");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(home.join(".cache/lutris/coverart")).unwrap();
    std::fs::write(home.join(".cache/lutris/coverart/hades.jpg"), LUTRIS_COVER).unwrap();
    let db = rusqlite::Connection::open(dir.join("pga.db")).unwrap();
    // The columns Lutris 0.5 makes (those read and a few around them).
    db.execute_batch(
        "CREATE TABLE games (id INTEGER PRIMARY KEY, name TEXT, sortname TEXT, slug TEXT, installer_slug TEXT, parent_slug TEXT,
            platform TEXT, runner TEXT, executable TEXT, directory TEXT, updated DATETIME, lastplayed INTEGER, installed INTEGER,
            installed_at INTEGER, year INTEGER, configpath TEXT, has_custom_banner INTEGER, has_custom_icon INTEGER,
            has_custom_coverart_big INTEGER, playtime REAL, service TEXT, service_id TEXT, discord_id TEXT);
         INSERT INTO games (id, name, slug, runner, installed, configpath) VALUES (7, 'Hades', 'hades', 'wine', 1, 'hades-1');
         INSERT INTO games (id, name, slug, runner, installed, configpath) VALUES (8, 'Braid', 'braid', 'linux', 0, 'braid-1');",
    )
    .unwrap();
    launcher(bin, "lutris", &["lutris:rungameid/7"], colour);
}

/// Heroic under `home` with one Epic game installed through legendary (Celeste, app "Sugar")
/// and its square art in Heroic's image cache; `heroic` in `bin` shows `colour` for it.
fn heroic_library(home: &Path, bin: &Path, colour: &str) {
    let dir = home.join(".config/heroic");
    for sub in ["legendaryConfig/legendary", "store_cache", "images-cache"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let installed =
        r#"{"Sugar": {"app_name": "Sugar", "title": "Celeste", "install_path": "/games/Celeste", "platform": "Windows", "is_dlc": false}}"#;
    std::fs::write(dir.join("legendaryConfig/legendary/installed.json"), installed).unwrap();
    let url = "https://cdn1.epicgames.com/celeste-square.png";
    let library = format!(
        r#"{{"library": [], "games": [{{"runner": "legendary", "app_name": "Sugar", "title": "Celeste", "art_square": "{url}", "is_installed": true}}]}}"#
    );
    std::fs::write(dir.join("store_cache/legendary_library.json"), library).unwrap();
    let hash = hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, url.as_bytes()));
    std::fs::write(dir.join(format!("images-cache/{hash}")), HEROIC_SQUARE).unwrap();
    launcher(bin, "heroic", &["--no-gui", "heroic://launch/legendary/Sugar"], colour);
}

/// A desktop entry of a game ("Chess", showing `colour`) with its icon in the hicolor theme,
/// and one of "Solitaire".
fn desktop_game(home: &Path, colour: &str) {
    let data = home.join(".local/share");
    std::fs::create_dir_all(data.join("applications")).unwrap();
    std::fs::create_dir_all(data.join("icons/hicolor/256x256/apps")).unwrap();
    std::fs::write(data.join("icons/hicolor/256x256/apps/pf-chess.png"), PNG).unwrap();
    let pattern = target_dir().join("punktfunk-test-pattern");
    let entry = format!(
        "[Desktop Entry]\nType=Application\nName=Chess\nExec=\"{}\" --color {colour} %U\nIcon=pf-chess\nCategories=Game;BoardGame;\n",
        pattern.display()
    );
    std::fs::write(data.join("applications/pf-chess.desktop"), entry).unwrap();
    let solitaire = "[Desktop Entry]\nType=Application\nName=Solitaire\nExec=false\nCategories=Game;CardGame;\n";
    std::fs::write(data.join("applications/pf-solitaire.desktop"), solitaire).unwrap();
}

#[test]
fn installed_games_appear_in_moonlight_with_art_and_launch() {
    let Some(python) = python() else {
        eprintln!("skipped: set PUNKTFUNK_MOONLIGHT_PYTHON (see .ci/run)");
        return;
    };
    let dir = std::env::temp_dir().join(format!("pf-catalog-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let home = dir.join("home");
    steam_library(&home, "c03090");
    desktop_game(&home, "30c030");
    let bin = dir.join("bin");
    lutris_library(&home, &bin, "3060c0");
    heroic_library(&home, &bin, "c0a030");
    let path = std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())));
    // SAFETY: the only test of its binary, before it starts any thread: the host (its child)
    // scans this home, and its sessions find the launchers on this PATH.
    unsafe {
        std::env::set_var("HOME", &home);
        std::env::remove_var("XDG_DATA_HOME");
        std::env::remove_var("XDG_CONFIG_HOME");
        std::env::remove_var("XDG_CACHE_HOME");
        std::env::set_var("PATH", path.unwrap());
    }
    // A configured app of the same title as a found one wins.
    let apps = "[[apps]]\ntitle = \"Solitaire\"\ncommand = [\"true\"]\n";
    let _daemon = start_daemon_configured(&[], &dir, PORT, API_PORT, "", &["true".into()], apps);

    let output = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/moonlight_client.py"))
        .args([
            &PORT.to_string(),
            &API_PORT.to_string(),
            &dir.join("client").display().to_string(),
            "Desktop",
            "catalog",
            "Portal 2",
            "Chess",
            "Hades",
            "Celeste",
        ])
        .env("XDG_STATE_HOME", dir.join("state"))
        .output()
        .unwrap();
    let out = client_report(&output, &dir);
    eprintln!("client: {out}");
    let listed = out["apps"].as_object().unwrap();
    for title in ["Desktop", "Input Test", "Solitaire", "Portal 2", "Chess", "Hades", "Celeste"] {
        assert!(listed.contains_key(title), "{title} is listed: {listed:?}");
    }
    assert!(!listed.keys().any(|t| t.contains("Runtime")), "Steam's runtimes are no games: {listed:?}");
    assert!(!listed.contains_key("Braid"), "Lutris's uninstalled game is left out: {listed:?}");
    assert_eq!(listed["Desktop"], 1, "configured apps keep their ids");
    assert!(listed["Portal 2"].as_u64().unwrap() >= 1 << 30, "found apps have ids of their own");
    let art = &out["art"];
    assert_eq!((&art["Portal 2"]["type"], &art["Portal 2"]["bytes"]), (&"image/jpeg".into(), &hex::encode(JPEG).into()), "Steam's capsule");
    assert_eq!((&art["Chess"]["type"], &art["Chess"]["bytes"]), (&"image/png".into(), &hex::encode(PNG).into()), "the entry's icon");
    assert_eq!(
        (&art["Hades"]["type"], &art["Hades"]["bytes"]),
        (&"image/jpeg".into(), &hex::encode(LUTRIS_COVER).into()),
        "Lutris's cover"
    );
    assert_eq!(
        (&art["Celeste"]["type"], &art["Celeste"]["bytes"]),
        (&"image/png".into(), &hex::encode(HEROIC_SQUARE).into()),
        "Heroic's art"
    );
    assert_eq!(art["Desktop"]["status"], 404, "no art, none served");
    let bands = &out["bands"];
    let near = |band: &serde_json::Value, want: [i64; 3]| (0..3).all(|i| (band[i].as_i64().unwrap() - want[i]).abs() < 40);
    assert!(near(&bands["Portal 2"], [0xc0, 0x30, 0x90]), "Portal 2 ran through Steam: {bands}");
    assert!(near(&bands["Chess"], [0x30, 0xc0, 0x30]), "Chess ran from its desktop entry: {bands}");
    assert!(near(&bands["Hades"], [0x30, 0x60, 0xc0]), "Hades ran through Lutris: {bands}");
    assert!(near(&bands["Celeste"], [0xc0, 0xa0, 0x30]), "Celeste ran through Heroic: {bands}");

    // The same catalog through the CLI (the API).
    let cli = common::host_cli(&[], &dir).arg("apps").output().unwrap();
    let text = String::from_utf8_lossy(&cli.stdout);
    for line in ["Portal 2  (Steam, box art)", "Chess  (DesktopEntry, box art)", "Hades  (Lutris, box art)", "Celeste  (Heroic, box art)"] {
        assert!(text.contains(line), "{line}: {text}");
    }
    assert!(text.contains("Solitaire  (Config)") && text.matches("Solitaire").count() == 1, "the configured Solitaire, alone: {text}");
    let _ = std::fs::remove_dir_all(&dir);
}
