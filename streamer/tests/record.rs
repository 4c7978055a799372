//! `punktfunk-stream --record`: the recording decodes with the real ffprobe/ffmpeg, has
//! one frame per rendered frame, and shows what the client drew.

use std::process::Command;

#[test]
fn recording_a_session_gives_a_stream_ffmpeg_decodes() {
    assert_eq!(record("session.h264", "h264", 30, &[]), 0, "pixman leaves conversion to the encoder");
}

#[test]
fn recording_in_av1_gives_a_stream_ffmpeg_decodes() {
    // libaom's real-time mode is slower than x264 here: fewer frames reach the file.
    record("session.obu", "av1", 20, &[]);
}

/// Frames converted to the encoder's YUV by GLES (on llvmpipe here) are copied into the
/// encoder as they are, and the recording shows the same picture.
#[test]
fn recording_frames_converted_on_the_gpu() {
    let converted = record("gpu.h264", "h264", 30, &["--renderer", "gles", "--convert", "gpu"]);
    assert!(converted > 30, "GLES converted {converted} frames");
}

/// Records a 2 s session into `file` with more compositor `options` and checks it: `codec`
/// as ffprobe names it, more than `at_least` frames, exactly the frames the recorder saw, the
/// client's picture in it. Returns how many frames the compositor converted to YUV.
fn record(file: &str, codec: &str, at_least: u64, options: &[&str]) -> u64 {
    let dir = std::env::temp_dir().join(format!("pf-record-{file}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(file);
    let run = Command::new(env!("CARGO_BIN_EXE_punktfunk-stream"))
        .args(["--mode", "1280x720@60", "--no-xwayland", "--record"])
        .arg(&out)
        .args(options)
        .args(["--", "sh", "-c", "weston-simple-shm & sleep 2; kill $!"])
        .env("XDG_RUNTIME_DIR", &dir)
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "compositor failed: {log}");
    // The compositor reports frames rendered and frames the (slower) recorder never saw;
    // the file must hold exactly the difference.
    let field = |name: &str| -> u64 {
        log.lines()
            .find(|l| l.contains("session ended"))
            .and_then(|l| l.split(&format!(" {name}=")).nth(1))
            .and_then(|s| s.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in the log: {log}"))
    };
    let rendered = field("frames") - field("dropped");
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames,width,height,codec_name",
            "-of",
            "csv=p=0",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let probe = String::from_utf8_lossy(&probe.stdout).trim().to_string();
    assert_eq!(probe, format!("{codec},1280,720,{rendered}"), "ffprobe says {probe:?}, the compositor rendered {rendered}");
    assert!(rendered > at_least, "a 2 s session at 60 Hz records over {at_least} frames, got {rendered}");
    // A late frame, decoded by ffmpeg: simple-shm's 250x250 pattern sits at the top left,
    // the rest of the output is black.
    let frame = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&out)
        .args(["-vf", "select=eq(n\\,20)", "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .unwrap();
    let px = frame.stdout;
    assert_eq!(px.len(), 1280 * 720 * 3);
    let lit = |x0: usize, y0: usize, x1: usize, y1: usize| {
        let mut n = 0;
        for y in y0..y1 {
            for x in x0..x1 {
                let i = (y * 1280 + x) * 3;
                n += usize::from(px[i] as u32 + px[i + 1] as u32 + px[i + 2] as u32 > 60);
            }
        }
        n as f64 / ((x1 - x0) * (y1 - y0)) as f64
    };
    assert!(lit(20, 20, 230, 230) > 0.5, "the client's pattern is in the recording");
    assert!(lit(600, 300, 1200, 700) < 0.01, "the rest of the output is black");
    let _ = std::fs::remove_dir_all(&dir);
    field("converted")
}

/// Whether process `parent` has a child running `command`.
fn has_child(parent: u32, command: &str) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else { return false };
    entries.filter_map(Result::ok).any(|e| {
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        // pid (comm) state ppid …: the comm may hold spaces, so split after its ')'.
        let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        ppid == Some(parent) && stat.contains(&format!("({command})"))
    })
}

#[test]
fn sigterm_to_the_compositor_is_forwarded_to_the_session() {
    let dir = std::env::temp_dir().join(format!("pf-signal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_punktfunk-stream"))
        .args(["--mode", "320x240@30", "--no-xwayland", "--", "sleep", "60"])
        .env("XDG_RUNTIME_DIR", &dir)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Once the session command runs, the signal is the session's to get.
    let started = std::time::Instant::now();
    while !has_child(child.id(), "sleep") {
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "the session command never started");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let start = std::time::Instant::now();
    let status = child.wait().unwrap();
    // sleep died of the forwarded SIGTERM: the session ends with 128 + 15, well before 60 s.
    assert_eq!(status.code(), Some(143));
    assert!(start.elapsed() < std::time::Duration::from_secs(30));
    let _ = std::fs::remove_dir_all(&dir);
}
