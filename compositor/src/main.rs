//! `punktfunk-compositor --mode 1920x1080@60 [--raw-output FILE] -- command …`
//!
//! Runs one headless streaming session; exits with the session command's exit code.

use anyhow::Context;
use punktfunk_compositor::{run, Config, Frame, KeyboardLayout, Mode};
use punktfunk_streamer::RawFileSink;
use std::ffi::OsString;
use std::path::PathBuf;

const USAGE: &str = "usage: punktfunk-compositor --mode WxH@HZ [--socket NAME] [--raw-output FILE] [--no-cursor] [--keyboard-layout LAYOUT] [-- COMMAND ARGS...]";

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let mut args = std::env::args_os().skip(1);
    let mut mode: Option<Mode> = None;
    let mut config = Config::new(Mode::new(1280, 720, 60.0)?);
    let mut raw_output: Option<PathBuf> = None;
    let text = |v: Option<OsString>, flag: &str| -> anyhow::Result<String> {
        v.and_then(|s| s.into_string().ok()).with_context(|| format!("{flag} needs a value\n{USAGE}"))
    };
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--mode") => mode = Some(text(args.next(), "--mode")?.parse()?),
            Some("--socket") => config.socket_name = Some(text(args.next(), "--socket")?),
            Some("--raw-output") => raw_output = Some(PathBuf::from(args.next().context("--raw-output needs a file")?)),
            Some("--no-cursor") => config.show_cursor = false,
            Some("--keyboard-layout") => config.keyboard = KeyboardLayout { layout: text(args.next(), "--keyboard-layout")?, ..Default::default() },
            Some("--") => {
                config.command = args.by_ref().collect();
                break;
            }
            Some("-h" | "--help") => {
                println!("{USAGE}");
                return Ok(());
            }
            _ => anyhow::bail!("unexpected argument {arg:?}\n{USAGE}"),
        }
    }
    config.mode = mode.with_context(|| format!("--mode is required\n{USAGE}"))?;
    config.handle_signals = true;
    let outcome = match raw_output {
        Some(path) => run(config, RawFileSink::create(&path).with_context(|| format!("creating {}", path.display()))?, None)?,
        None => run(config, |_: Frame| Ok(()), None)?,
    };
    tracing::info!(frames = outcome.frames, skipped = outcome.skipped, "session ended");
    std::process::exit(outcome.exit_code.unwrap_or(0));
}
