//! The management API against its own OpenAPI document: the document is valid OpenAPI
//! 3.1 (checked by `openapi-spec-validator` where the test's Python has it), and every
//! operation it lists is called here and answers one of the statuses it documents, with
//! the one this request must get. A new endpoint without a request here fails the test.

mod common;

use common::start_daemon;
use image::GenericImageView;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::Command;

const PORT: u16 = 34989;
const API_PORT: u16 = 34991;

struct Api {
    agent: ureq::Agent,
    token: String,
}

impl Api {
    /// (status, JSON body) of `method path` with `body`.
    fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let (status, _, bytes) = self.send(method, path, "application/json", body.unwrap_or_default().as_bytes());
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// (status, content type, body) of `method path` with a body of `kind`.
    fn send(&self, method: &str, path: &str, kind: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("http://127.0.0.1:{API_PORT}/api/v1{path}"))
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Content-Type", kind)
            .body(body.to_vec())
            .unwrap();
        let mut answer = self.agent.run(request).unwrap();
        let kind = answer.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let bytes = answer.body_mut().with_config().limit(16 << 20).read_to_vec().unwrap_or_default();
        (answer.status().as_u16(), kind, bytes)
    }
}

/// A `width` x `height` PNG.
fn png(width: u32, height: u32) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(image::RgbImage::new(width, height)).write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[test]
fn every_documented_operation_answers_as_documented() {
    let dir = std::env::temp_dir().join(format!("pf-api-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let _daemon = start_daemon(&dir, PORT, API_PORT, &["true".into()], "# a note of the user's\n");
    let token = std::fs::read_to_string(dir.join("state/punktfunk/api-token")).unwrap().trim().to_owned();
    let api = Api { agent: ureq::Agent::config_builder().http_status_as_error(false).build().new_agent(), token };

    let (status, doc) = api.call("GET", "/openapi.json", None);
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{}", doc["openapi"]);
    assert_eq!(doc["servers"][0]["url"], "/api/v1");
    if let Some(python) = common::python() {
        let spec = dir.join("openapi.json");
        std::fs::write(&spec, doc.to_string()).unwrap();
        let check = Command::new(python)
            .args([
                "-c",
                "import json, sys; from openapi_spec_validator import validate; validate(json.load(open(sys.argv[1]))); print('valid')",
            ])
            .arg(&spec)
            .output()
            .unwrap();
        assert!(check.status.success(), "the document is not valid OpenAPI: {}", common::output_text(&check));
    }

    // (method, path as documented, path called, body, the status it must answer).
    let no_one = "/clients/nobody";
    let calls: &[(&str, &str, &str, Option<&str>, u16)] = &[
        ("get", "/pairing", "/pairing", None, 200),
        ("post", "/pin", "/pin", Some(r#"{"pin":"12"}"#), 400),
        ("post", "/pin", "/pin", Some(r#"{"pin":"1234","device":"nobody"}"#), 404),
        ("get", "/clients", "/clients", None, 200),
        ("delete", "/clients/{key}", no_one, None, 404),
        ("put", "/clients/{key}/name", "/clients/nobody/name", Some(r#"{"name":"Den"}"#), 404),
        ("put", "/clients/{key}/name", "/clients/nobody/name", Some(r#"{"name":""}"#), 400),
        ("put", "/clients/{key}/permissions", "/clients/nobody/permissions", Some("{}"), 404),
        ("put", "/clients/{key}/permissions", "/clients/nobody/permissions", Some(r#"{"apps":["No Such App"]}"#), 400),
        ("get", "/status", "/status", None, 200),
        ("get", "/apps", "/apps", None, 200),
        ("get", "/doctor", "/doctor", None, 200),
        ("get", "/logs", "/logs", None, 200),
        ("get", "/logs", "/logs?after=abc", None, 400),
        ("get", "/openapi.json", "/openapi.json", None, 200),
        // The configured apps: Desktop (1) and Input Test (2, which exits at once) to begin.
        ("post", "/apps", "/apps", Some(r#"{"title":"","command":["x"]}"#), 400),
        ("post", "/apps", "/apps", Some(r#"{"title":"Input Test","command":["x"]}"#), 400),
        ("post", "/apps", "/apps", Some(r#"{"title":"Clock","command":["true"]}"#), 200),
        ("put", "/apps/{id}", "/apps/3", Some(r#"{"title":"Long clock","command":["sleep","60"]}"#), 200),
        ("put", "/apps/{id}", "/apps/99", Some(r#"{"title":"X","command":["x"]}"#), 404),
        ("put", "/apps/order", "/apps/order", Some(r#"{"ids":[3,2]}"#), 200),
        ("put", "/apps/order", "/apps/order", Some(r#"{"ids":[2]}"#), 400),
        ("post", "/apps/{id}/launch", "/apps/2/launch", None, 200),
        ("post", "/apps/{id}/launch", "/apps/3/launch", None, 422),
        ("post", "/apps/{id}/launch", "/apps/77/launch", None, 404),
        ("delete", "/apps/{id}", "/apps/1", None, 400),
        ("delete", "/apps/{id}", "/apps/3", None, 200),
    ];
    let mut called = BTreeSet::new();
    for &(method, documented, path, body, want) in calls {
        let (status, answer) = api.call(&method.to_uppercase(), path, body);
        assert_eq!(status, want, "{method} {path}: {answer}");
        let operation = &doc["paths"][documented][method];
        assert!(operation["responses"][status.to_string()].is_object(), "{method} {documented} does not document {status}");
        if status >= 400 {
            assert!(answer["error"].is_string(), "{method} {path}: errors say why: {answer}");
        }
        called.insert((method.to_owned(), documented.to_owned()));
    }
    // Box art for Long clock (now 2): a tall picture, served back brought to Moonlight's
    // poster; what is no picture, or too large, refused; then taken away.
    let art_calls: &[(&str, &str, Vec<u8>, u16)] = &[
        ("put", "/apps/2/art", png(1000, 2000), 200),
        ("get", "/apps/2/art", vec![], 200),
        ("put", "/apps/2/art", b"GIF89a, no".to_vec(), 400),
        ("put", "/apps/2/art", vec![0; 9 << 20], 413),
        ("put", "/apps/99/art", png(10, 10), 404),
        ("delete", "/apps/2/art", vec![], 200),
        ("get", "/apps/2/art", vec![], 404),
        ("delete", "/apps/99/art", vec![], 404),
    ];
    for (method, path, body, want) in art_calls {
        let (status, kind, answer) = api.send(&method.to_uppercase(), path, "image/png", body);
        assert_eq!(status, *want, "{method} {path}: {}", String::from_utf8_lossy(&answer));
        assert!(
            doc["paths"]["/apps/{id}/art"][method]["responses"][status.to_string()].is_object(),
            "{method} {path}: {status} undocumented"
        );
        if status == 200 && *method == "get" {
            assert_eq!(kind, "image/png");
            assert_eq!(image::load_from_memory(&answer).unwrap().dimensions(), (444, 888), "fitted to 628x888, its shape kept");
        }
        if status >= 400 {
            assert!(serde_json::from_slice::<Value>(&answer).unwrap()["error"].is_string(), "{method} {path}: errors say why");
        }
        called.insert((method.to_string(), "/apps/{id}/art".to_owned()));
    }
    let art = dir.join("state/punktfunk/art");
    assert_eq!(std::fs::read_dir(&art).map(|d| d.count()).unwrap_or(0), 0, "art no app names is removed");

    // What the app calls left: Long clock first, Input Test gone, the user's note kept.
    let (_, apps) = api.call("GET", "/apps", None);
    let titles: Vec<&str> = apps.as_array().unwrap().iter().filter_map(|a| a["title"].as_str()).collect();
    assert_eq!(titles, ["Desktop", "Long clock"]);
    let file = std::fs::read_to_string(dir.join("config/punktfunk/config.toml")).unwrap();
    assert!(file.contains("# a note of the user's") && file.contains("command = [\"sleep\", \"60\"]"), "{file}");
    // The event stream: its first events at once, as documented.
    let request = ureq::http::Request::builder()
        .uri(format!("http://127.0.0.1:{API_PORT}/api/v1/events"))
        .header("Authorization", format!("Bearer {}", api.token))
        .body(())
        .unwrap();
    let answer = api.agent.run(request).unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["content-type"], "text/event-stream");
    let mut events = BTreeSet::new();
    for line in BufReader::new(answer.into_body().into_reader()).lines() {
        let line = line.unwrap();
        if let Some(name) = line.strip_prefix("event: ") {
            events.insert(name.to_owned());
        }
        if let Some(data) = line.strip_prefix("data: ")
            && events.contains("status")
        {
            let status: Value = serde_json::from_str(data).unwrap();
            assert_eq!(status["sessions"], json!([]));
            break;
        }
    }
    assert_eq!(events, ["clients", "log", "pairing", "status"].map(String::from).into(), "every kind of event comes first at once");
    called.insert(("get".into(), "/events".into()));

    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| ops.as_object().unwrap().keys().map(move |m| (m.clone(), path.clone())))
        .collect();
    assert_eq!(called, documented, "every documented operation is called, and nothing else");

    // What the document cannot show: no token, an unknown path, bodies that are no JSON or
    // too large.
    let bare = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
    assert_eq!(bare.get(format!("http://127.0.0.1:{API_PORT}/api/v1/status")).call().unwrap().status(), 401);
    assert_eq!(api.call("GET", "/nonexistent", None).0, 404);
    for (body, want) in [(r#"{"name":"#.to_owned(), 400), (format!(r#"{{"name":"{}"}}"#, "x".repeat(100_000)), 413)] {
        let (status, answer) = api.call("PUT", "/clients/nobody/name", Some(&body));
        assert_eq!(status, want, "{answer}");
        assert!(answer["error"].is_string(), "refusals say why, as JSON: {answer}");
    }
    // The log: the daemon's own lines, numbered; later ones only after a number.
    let (_, lines) = api.call("GET", "/logs", None);
    let lines = lines.as_array().unwrap();
    assert!(lines.iter().any(|l| l["line"].as_str().unwrap().contains("host ready")), "{lines:?}");
    let last = lines.last().unwrap()["seq"].as_u64().unwrap();
    let (_, later) = api.call("GET", &format!("/logs?after={last}"), None);
    assert!(later.as_array().unwrap().iter().all(|l| l["seq"].as_u64().unwrap() > last));
    let _ = std::fs::remove_dir_all(&dir);
}
