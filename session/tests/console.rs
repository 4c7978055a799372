//! The web console as its users meet it: a real Chromium (driven by Playwright) sets the
//! password on first use (on the host itself), enters the PIN a real Moonlight client (moonlight-python) shows while pairing, sees the
//! client listed, renames it, gives apps box art, watches its stream plotted live, removes it, and the host then
//! refuses the client; a new password set with `punktfunk console-password` ends its login.
//! Between, an attacker's requests from other addresses: no login, another site's forms and
//! calls, guessed passwords, bad JSON, an oversized body, a body that never comes. Screenshots are kept in
//! `target/tmp/console/`.

mod common;

use common::{client_report, python, start_daemon, target_dir};
use std::path::Path;
use std::process::Command;

const PORT: u16 = 34489;
const API_PORT: u16 = 34491;
/// `console_port` of the daemons the tests start: their port + 3.
const CONSOLE_PORT: u16 = PORT + 3;
const PASSWORD: &str = "couch potato 42";

fn chromium() -> Option<String> {
    let path = std::env::var("PUNKTFUNK_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    Path::new(&path).exists().then_some(path)
}

#[test]
fn pairing_renaming_watching_and_removing_a_client_from_a_browser() {
    let (Some(python), Some(chromium)) = (python(), chromium()) else {
        // CI installs both (.ci/run); a developer's machine may lack them.
        assert!(std::env::var_os("CI").is_none(), "CI must run the browser test: set PUNKTFUNK_MOONLIGHT_PYTHON and install chromium");
        eprintln!("skipped: set PUNKTFUNK_MOONLIGHT_PYTHON and install chromium (see .ci/run)");
        return;
    };
    let dir = std::env::temp_dir().join(format!("pf-console-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let pattern = vec![target_dir().join("punktfunk-test-pattern").display().to_string(), "--color".into(), "2080c0".into()];
    let _daemon = start_daemon(&dir, PORT, API_PORT, &pattern, "");

    let shots = target_dir().parent().unwrap().join("tmp/console");
    let output = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/moonlight_client.py"))
        .args([&PORT.to_string(), &API_PORT.to_string(), &dir.join("client").display().to_string(), "Input Test", "console"])
        .args([&CONSOLE_PORT.to_string(), PASSWORD, &shots.display().to_string()])
        .env("XDG_STATE_HOME", dir.join("state"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("PUNKTFUNK_BIN", env!("CARGO_BIN_EXE_punktfunk"))
        .env("PUNKTFUNK_CHROMIUM", &chromium)
        .output()
        .unwrap();
    let out = client_report(&output, &dir);
    eprintln!("client: {out}");

    let h = &out["hostile"];
    assert_eq!(h["api_without_login"], 401);
    assert_eq!(h["login_from_another_site"], 403, "another site's form is refused");
    assert_eq!(h["login_without_origin"], 403);
    assert_eq!(h["wrong_passwords"], serde_json::json!([401, 401, 401, 401, 401, 429]), "a guesser waits after five");
    assert_eq!(h["right_password_while_waiting"], 429, "even the right password waits");
    assert_eq!(h["login"], 303, "another machine logs in at once");
    let cookie = h["set_cookie"].as_str().unwrap();
    for flag in ["Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    assert_eq!(h["page_headers"]["x-frame-options"], "DENY");
    assert!(h["page_headers"]["content-security-policy"].as_str().unwrap().contains("script-src 'self'"));
    assert_eq!(h["change_without_csrf"], 403);
    assert_eq!(h["change_with_a_wrong_csrf"], 403);
    assert_eq!(h["change_from_another_site"], 403);
    assert_eq!(h["bad_json"], 400);
    assert_eq!(h["oversized_body"], 413);
    assert_eq!(h["control_characters"], 400);
    assert_eq!(h["unknown_client"], 404);
    assert_eq!(h["trickled_body"], "HTTP/1.1 408 Request Timeout", "a body that never comes is given up on");
    assert!(h["trickled_body_held_s"].as_u64().unwrap() <= 15);
    assert_eq!(h["logout"], 303);
    assert_eq!(h["api_after_logout"], 401, "a logged-out cookie opens nothing");

    let b = &out["browser"];
    assert!(b["waiting"].as_str().unwrap().contains("127.0.0.1"), "the page says which device asks: {}", b["waiting"]);
    assert_eq!(b["client"], "paired", "the PIN typed in the page paired the Moonlight client");
    assert!(b["pair_result"].as_str().unwrap().starts_with("Paired with"));
    assert_eq!(b["renamed"], serde_json::json!(["Living room TV"]));
    assert_eq!(
        b["permissions"],
        serde_json::json!({"apps": ["Input Test"], "view_only": true, "others": false, "clipboard": false}),
        "the permissions set in the page are the client's"
    );
    let health: Vec<&str> = b["health"].as_array().unwrap().iter().filter_map(|c| c.as_str()).collect();
    assert!(health.iter().any(|c| c.starts_with("OK") && c.contains("ports")), "the host's health is shown: {health:?}");
    assert_eq!(b["log"], serde_json::json!({"logins": 1, "guesses": 5}), "the host's log shows the other machine's login and the guesses");
    let apps = b["apps"].as_array().unwrap();
    assert_eq!(apps[1], serde_json::json!(["Green clock", ["sleep", "60"]]), "added, renamed and moved up in the page: {apps:?}");
    assert_eq!(apps[2][0], "Input Test");
    let config = std::fs::read_to_string(dir.join("config/punktfunk/config.toml")).unwrap();
    assert!(config.contains("title = \"Green clock\""), "the configuration file has it: {config}");
    // Box art: uploaded larger than Moonlight's poster, scaled to fit it (its shape kept),
    // shown in the page and served to the Moonlight client; removed, its file goes.
    let uploaded = b["uploaded"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect::<Vec<_>>();
    let scaled = [628, (uploaded[1] * 628.0 / uploaded[0]).round() as u64];
    assert!(uploaded[0] > 628.0, "the upload is larger: {uploaded:?}");
    assert_eq!(b["clock_art"], serde_json::json!(scaled), "the thumbnail shows the scaled art");
    assert_eq!(b["appasset"], serde_json::json!({"status": 200, "type": "image/png", "size": scaled}), "Moonlight gets it");
    assert_eq!(b["art_removed"], true);
    let art: Vec<_> = std::fs::read_dir(dir.join("state/punktfunk/art")).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(art.len(), 1, "only the art an app names is kept: {art:?}");
    assert!(config.contains(&art[0].display().to_string()), "{config}");
    let points = b["plot_points"].as_array().unwrap();
    assert!(points[1].as_u64() > points[0].as_u64(), "the plot moves: {points:?}");
    let session = b["session"].as_str().unwrap();
    assert!(session.contains("Input Test for Living room TV") && session.contains("640x360"), "{session}");
    assert_eq!(b["remove_asks"], "Really remove?");
    assert_eq!(b["after_removal"], 401, "a removed client is refused");
    assert_eq!(b["cli_password"], 0);
    assert_eq!(b["logged_out_by_new_password"], true, "a new password set on the host ends the old logins");
    assert_eq!(b["logged_out"], true);
    for shot in ["0-set-password", "1-logged-in", "2-device-waits", "2b-permissions", "2c-apps", "3-session-plotted", "4-removed"] {
        assert!(shots.join(format!("{shot}.png")).exists(), "{shot}.png");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
