//! The app catalog fills itself: a Steam library and a desktop entry of a game, laid out in
//! their real formats in a home directory made for the test, appear in a stock Moonlight
//! client's app list beside the configured apps, with their box art, and launch from it. The
//! Steam game runs through the library's own `steam.sh` (a stand-in here: Steam itself
//! cannot run in a test) with its `steam://rungameid/` URL; the desktop entry's `Exec`.

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
fn steam_and_desktop_games_appear_in_moonlight_with_art_and_launch() {
    let Some(python) = python() else {
        eprintln!("skipped: set PUNKTFUNK_MOONLIGHT_PYTHON (see .ci/run)");
        return;
    };
    let dir = std::env::temp_dir().join(format!("pf-catalog-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let home = dir.join("home");
    steam_library(&home, "c03090");
    desktop_game(&home, "30c030");
    // SAFETY: the only test of its binary, before it starts any thread: the host (its child)
    // scans this home.
    unsafe {
        std::env::set_var("HOME", &home);
        std::env::remove_var("XDG_DATA_HOME");
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
        ])
        .env("XDG_STATE_HOME", dir.join("state"))
        .output()
        .unwrap();
    let out = client_report(&output, &dir);
    eprintln!("client: {out}");
    let listed = out["apps"].as_object().unwrap();
    for title in ["Desktop", "Input Test", "Solitaire", "Portal 2", "Chess"] {
        assert!(listed.contains_key(title), "{title} is listed: {listed:?}");
    }
    assert!(!listed.keys().any(|t| t.contains("Runtime")), "Steam's runtimes are no games: {listed:?}");
    assert_eq!(listed["Desktop"], 1, "configured apps keep their ids");
    assert!(listed["Portal 2"].as_u64().unwrap() >= 1 << 30, "found apps have ids of their own");
    let art = &out["art"];
    assert_eq!((&art["Portal 2"]["type"], &art["Portal 2"]["bytes"]), (&"image/jpeg".into(), &hex::encode(JPEG).into()), "Steam's capsule");
    assert_eq!((&art["Chess"]["type"], &art["Chess"]["bytes"]), (&"image/png".into(), &hex::encode(PNG).into()), "the entry's icon");
    assert_eq!(art["Desktop"]["status"], 404, "no art, none served");
    let bands = &out["bands"];
    let near = |band: &serde_json::Value, want: [i64; 3]| (0..3).all(|i| (band[i].as_i64().unwrap() - want[i]).abs() < 40);
    assert!(near(&bands["Portal 2"], [0xc0, 0x30, 0x90]), "Portal 2 ran through Steam: {bands}");
    assert!(near(&bands["Chess"], [0x30, 0xc0, 0x30]), "Chess ran from its desktop entry: {bands}");

    // The same catalog through the CLI (the API).
    let cli = common::host_cli(&[], &dir).arg("apps").output().unwrap();
    let text = String::from_utf8_lossy(&cli.stdout);
    assert!(text.contains("Portal 2  (Steam, box art)") && text.contains("Chess  (DesktopEntry, box art)"), "{text}");
    assert!(text.contains("Solitaire  (Config)") && text.matches("Solitaire").count() == 1, "the configured Solitaire, alone: {text}");
    let _ = std::fs::remove_dir_all(&dir);
}
