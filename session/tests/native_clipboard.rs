//! The clipboard between a punktfunk/1 client and its session, both ways, only where the
//! user allowed that client: text the client copies pastes in a Wayland app (wl-paste) and
//! an X11 app (xclip) in the session; what a Wayland and an X11 app copy reaches the client.

mod common;

use common::{host_cli, output_text, pair_native, start_daemon, stream_native, target_dir};

const PORT: u16 = 33489;
const API_PORT: u16 = 33491;
const NATIVE: u16 = PORT + 50;

#[test]
fn the_clipboard_is_shared_with_a_client_allowed_it() {
    let dir = std::env::temp_dir().join(format!("pf-native-clipboard-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("session");
    std::fs::create_dir_all(&out).unwrap();
    // The session's apps: each read retried until the client's copy arrived (5 s at most),
    // then two copies of their own, from Wayland and then X11, then the paste watched.
    let script = format!(
        r#"
        out='{}'
        until_read() {{ want=$1; shift; i=0; while [ $i -lt 100 ] && [ "$("$@" 2>/dev/null)" != "$want" ]; do i=$((i+1)); sleep 0.05; done; "$@" 2>&1; }}
        until_read 'from the client' wl-paste -n > "$out/w.tmp"; mv "$out/w.tmp" "$out/wayland-read"
        until_read 'from the client' xclip -o -selection clipboard > "$out/x.tmp"; mv "$out/x.tmp" "$out/x11-read"
        printf 'copied in Wayland' | wl-copy
        sleep 1.5
        printf 'copied in X11' | xclip -i -selection clipboard
        while true; do wl-paste -n > "$out/l.tmp" 2>/dev/null && mv "$out/l.tmp" "$out/latest"; sleep 0.1; done
        "#,
        out.display()
    );
    let pattern = target_dir().join("punktfunk-test-pattern");
    let app = format!("({script}) & exec '{}' --color 3080ff", pattern.display());
    let _daemon = start_daemon(&dir, PORT, API_PORT, &["sh".into(), "-c".into(), app], "");
    let config = dir.join("client");
    let (c, h) = pair_native(&[], &dir, &config, NATIVE, "4321", "4321");
    assert!(c.status.success() && h.status.success(), "pairing: {}\n{}", output_text(&c), output_text(&h));
    let permit = |on: &str| {
        let o = host_cli(&[], &dir).args(["clients", "permit", "punktfunk-client at 127.0.0.1", "--clipboard", on]).output().unwrap();
        assert!(o.status.success(), "{}", output_text(&o));
        output_text(&o)
    };
    assert!(permit("true").contains("shares the clipboard"), "the CLI says what it allowed");

    let args = ["--app", "Input Test", "--mode", "320x240@30", "--frames", "150", "--clipboard", "--copy", "from the client"];
    let stats = stream_native(&[], &dir, &config, NATIVE, &args, &dir.join("allowed"));
    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap_or_else(|_| panic!("{name} never written"));
    assert_eq!(read("wayland-read"), "from the client", "a Wayland app pastes what the client copied");
    assert_eq!(read("x11-read"), "from the client", "an X11 app too");
    assert_eq!(stats["copied"], serde_json::json!(["copied in Wayland", "copied in X11"]), "the client got both apps' copies: {stats}");

    // Not allowed any more: the client's copy stays out of the session, the session's out of
    // the client.
    permit("false");
    let args = ["--app", "Input Test", "--mode", "320x240@30", "--frames", "30", "--clipboard", "--copy", "not allowed", "--stop"];
    let stats = stream_native(&[], &dir, &config, NATIVE, &args, &dir.join("refused"));
    assert_eq!(stats["copied"], serde_json::json!([]), "{stats}");
    assert_eq!(read("latest"), "copied in X11", "the session's clipboard is its own again");
    let _ = std::fs::remove_dir_all(&dir);
}
