//! The one tracing set-up every punktfunk binary uses (the daemon, the stream process, the
//! client): human-readable lines on stderr, coloured only on a terminal, `RUST_LOG` to
//! choose what is shown (`info` when unset). The stream processes inherit the daemon's
//! stderr, so their lines land in the same journal.

/// Installs the subscriber; call once, first thing in `main`.
pub fn init() {
    let stderr = std::io::stderr();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&stderr))
        .init();
}
