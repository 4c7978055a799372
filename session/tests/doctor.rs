//! `punktfunk doctor` as a user runs it: against a serving host it finds the host's own
//! ports and says it can serve (exit 0), the API serves the same checks; with the stream
//! binary missing it fails (exit 1) and says how to fix it.

mod common;

use common::{host_cli, output_text, start_daemon_configured};

const PORT: u16 = 17489;
const API_PORT: u16 = 17491;

#[test]
fn doctor_checks_the_host_and_says_how_to_fix_what_is_missing() {
    let dir = std::env::temp_dir().join(format!("pf-doctor-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let daemon = start_daemon_configured(&[], &dir, PORT, API_PORT, "start_pipewire = false\n", &["true".into()], "");
    let out = host_cli(&[], &dir).arg("doctor").output().unwrap();
    let text = output_text(&out);
    eprintln!("{text}");
    assert!(out.status.success(), "the serving host can serve: {text}");
    assert!(text.contains("ok    stream binary:") && text.contains("(this host's)"), "{text}");
    for check in ["encoders:", "GPU:", "Xwayland:", "PipeWire:", "uinput:", "uhid:", "clock:", "state:"] {
        assert!(text.contains(check), "{check} is checked: {text}");
    }
    let api: serde_json::Value = common::api_get(&dir, API_PORT, "/api/v1/doctor");
    let names: Vec<&str> = api.as_array().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
    assert!(names.contains(&"ports") && names.contains(&"encoders"), "the API serves the same checks: {api}");
    drop(daemon);

    // The stream binary gone: the host cannot serve, and doctor says what to do.
    let config = dir.join("config/punktfunk/config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("stream_binary = ", "stream_binary = \"/nonexistent/punktfunk-stream\"\n# was ")).unwrap();
    let out = host_cli(&[], &dir).arg("doctor").output().unwrap();
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL  stream binary: /nonexistent/punktfunk-stream is missing") && text.contains("fix: build it"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
