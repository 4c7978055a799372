//! `punktfunk`: the host daemon (`serve`) and its command line.

use anyhow::Context;
use clap::{Parser, Subcommand};
use punktfunk_session::api::{ClientInfo, PinRequest, Status, Waiting};
use punktfunk_session::config::Config;
use punktfunk_session::gamestream::{control, http, rtsp, tls};
use punktfunk_session::host::{Host, Paths};
use punktfunk_session::store::{Permissions, names};
use std::sync::Arc;

/// The version, the commit it was built from and the build profile.
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("PUNKTFUNK_COMMIT"), ", ", env!("PUNKTFUNK_PROFILE"), " build)");

#[derive(Parser)]
#[command(name = "punktfunk", version = VERSION, about = "Low-latency game and desktop streaming host")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
    /// The system service (root): every stream starts at a login greeter and the app runs
    /// as the user who logs in; config in /etc/punktfunk, state in /var/lib/punktfunk.
    #[arg(long, global = true)]
    system: bool,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the host: Moonlight clients can pair, list apps and stream.
    Serve,
    /// Enter the PIN a client shows while pairing.
    Pair {
        pin: String,
        /// The device it is for (name or address, as `punktfunk pair` lists them), when
        /// several wait.
        #[arg(long)]
        device: Option<String>,
    },
    /// List paired clients, remove one, or say what one may do.
    Clients {
        #[command(subcommand)]
        action: Option<ClientsCmd>,
    },
    /// Show the host's state.
    Status,
    /// List the app catalog: the configured apps and the games found installed.
    Apps,
    /// Check what the host needs on this machine; each miss with its fix. Exit status 1
    /// when something stops the host from serving.
    Doctor,
    /// Set the web console's password (typed, or one line on standard input); logins made
    /// with the old one end.
    ConsolePassword,
    /// A session's view of the input devices (started by the host, one per session).
    #[command(hide = true)]
    InputView { input: std::path::PathBuf, dev: std::path::PathBuf },
}

#[derive(Subcommand)]
enum ClientsCmd {
    List,
    /// Remove by name or by fingerprint prefix (≥ 4 hex digits).
    Remove {
        key: String,
    },
    /// Give a client (by name or fingerprint prefix) another name.
    Rename {
        key: String,
        name: String,
    },
    /// Change what a client (by name or fingerprint prefix) may do; what is not given stays.
    Permit {
        key: String,
        /// The apps it may launch and see, by title, comma-separated.
        #[arg(long, value_delimiter = ',', conflicts_with = "all_apps")]
        apps: Option<Vec<String>>,
        /// Every app (the default).
        #[arg(long)]
        all_apps: bool,
        /// true: it only watches (its input is dropped).
        #[arg(long)]
        view_only: Option<bool>,
        /// true: it may resume (take over) and quit other clients' sessions.
        #[arg(long)]
        others: Option<bool>,
        /// true: its clipboard and the session's are shared (punktfunk/1 clients).
        #[arg(long)]
        clipboard: Option<bool>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The keeper needs no configuration (and the system service has no HOME).
    if let Cmd::InputView { input, dev } = &cli.command {
        return punktfunk_session::input_view::keep(&punktfunk_session::input_view::Dirs { input: input.clone(), dev: dev.clone() });
    }
    match cli.command {
        // The daemon keeps its latest lines for its console.
        Cmd::Serve => punktfunk_core::logging::init_keeping_recent(),
        _ => punktfunk_core::logging::init(),
    }
    let paths = if cli.system { Paths::system() } else { Paths::from_env()? };
    match cli.command {
        Cmd::Serve => serve(paths),
        Cmd::InputView { .. } => Ok(()),
        Cmd::Pair { pin, device } => {
            let config = Config::load_or_create(&paths.config)?;
            pair(&Api::new(&paths, &config)?, pin, device)
        }
        Cmd::Apps => {
            let config = Config::load_or_create(&paths.config)?;
            let list: Vec<punktfunk_session::api::AppInfo> = Api::new(&paths, &config)?.get("/apps")?;
            for a in list {
                let art = if a.box_art.is_some() { ", box art" } else { "" };
                println!("{:>10}  {}  ({:?}{art}): {}", a.id, a.title, a.source, a.command.join(" "));
            }
            Ok(())
        }
        Cmd::Clients { action } => {
            let config = Config::load_or_create(&paths.config)?;
            match action.unwrap_or(ClientsCmd::List) {
                ClientsCmd::List => {
                    let list: Vec<ClientInfo> = Api::new(&paths, &config)?.get("/clients")?;
                    if list.is_empty() {
                        println!("no paired clients");
                    }
                    for c in list {
                        let name = punktfunk_session::pin::printable_name(&c.name);
                        println!("{}  {name}  ({})", &c.fingerprint[..16.min(c.fingerprint.len())], describe(&c.permissions));
                    }
                }
                ClientsCmd::Permit { key, apps, all_apps, view_only, others, clipboard } => {
                    let api = Api::new(&paths, &config)?;
                    let list: Vec<ClientInfo> = api.get("/clients")?;
                    let client = list
                        .iter()
                        .find(|c| names(&key, &c.name, &c.fingerprint))
                        .with_context(|| format!("no client named or fingerprinted {key:?} (see `punktfunk clients`)"))?;
                    let mut permissions = client.permissions.clone();
                    if all_apps {
                        permissions.apps = None;
                    }
                    if let Some(apps) = apps {
                        permissions.apps = Some(apps.into_iter().map(|a| a.trim().to_owned()).collect());
                    }
                    permissions.view_only = view_only.unwrap_or(permissions.view_only);
                    permissions.others = others.unwrap_or(permissions.others);
                    permissions.clipboard = clipboard.unwrap_or(permissions.clipboard);
                    let segment = percent_encoding::utf8_percent_encode(&key, percent_encoding::NON_ALPHANUMERIC);
                    let _: serde_json::Value = api.put(&format!("/clients/{segment}/permissions"), &permissions)?;
                    println!("{key}: {}", describe(&permissions));
                }
                ClientsCmd::Rename { key, name } => {
                    let segment = percent_encoding::utf8_percent_encode(&key, percent_encoding::NON_ALPHANUMERIC);
                    let body = punktfunk_session::api::Rename { name };
                    let _: serde_json::Value = Api::new(&paths, &config)?.put(&format!("/clients/{segment}/name"), &body)?;
                    println!("renamed {key} to {}", body.name);
                }
                ClientsCmd::Remove { key } => {
                    // Names have spaces ("punktfunk-client at 10.0.0.5"): one path segment.
                    let segment = percent_encoding::utf8_percent_encode(&key, percent_encoding::NON_ALPHANUMERIC);
                    Api::new(&paths, &config)?.delete(&format!("/clients/{segment}"))?;
                    println!("removed {key}");
                }
            }
            Ok(())
        }
        Cmd::ConsolePassword => {
            punktfunk_session::store::private_dir(&paths.state)?;
            let password = read_password()?;
            punktfunk_session::console::Password::new(paths.state.join(punktfunk_session::console::PASSWORD_FILE)).set(&password)?;
            let config = Config::load_or_create(&paths.config)?;
            println!("console password set: https://THIS-HOST:{}", config.console_port);
            Ok(())
        }
        Cmd::Doctor => {
            let config = Config::load_or_create(&paths.config)?;
            let serving = Api::new(&paths, &config).and_then(|api| api.get::<Status>("/status")).is_ok();
            let checks = punktfunk_session::doctor::run(&config, &paths.state, serving);
            for check in &checks {
                println!("{check}");
            }
            let serves = punktfunk_session::doctor::serves(&checks);
            println!("{}", if serves { "the host can serve" } else { "the host cannot serve until the FAILs are fixed" });
            std::process::exit(if serves { 0 } else { 1 });
        }
        Cmd::Status => {
            let config = Config::load_or_create(&paths.config)?;
            let s: Status = Api::new(&paths, &config)?.get("/status")?;
            println!("{} ({}): {} paired client(s)", s.name, s.uniqueid, s.paired_clients);
            if s.sessions.is_empty() {
                println!("idle");
            }
            if let Some(v) = &s.last_video {
                println!(
                    "last video stream: {} frames, {} key frames, {} repairs, FEC parity at the end {} % (at least {} shards a block; {}; loss seen {:.1} %), host latency p50 {:.1} ms",
                    v.frames,
                    v.keyframes,
                    v.repairs,
                    v.fec_percent,
                    v.min_parity,
                    v.parity_why.describe(),
                    f64::from(v.loss_permille) / 10.0,
                    f64::from(v.host_latency_us_p50) / 1000.0
                );
                println!("  host latency by stage (mean): {}", v.stages_mean_us.describe_ms());
            }
            for session in s.sessions {
                let first = session.launch_to_first_frame_ms.map(|ms| format!(", first frame {ms} ms after launch")).unwrap_or_default();
                println!(
                    "session {}: {} (app {}) for {} at {}, {}{first}",
                    session.id, session.app_title, session.app, session.client, session.address, session.mode
                );
                if let Some(video) = session.video {
                    println!("  video: {video}");
                }
                if let Some(encoding) = session.encoding {
                    println!("  encoding: {encoding}");
                }
                let live = &session.live;
                println!(
                    "  sending: {:.0} fps, {} kbit/s, FEC parity {} % ({}; loss seen {:.1} %), host latency p50 {:.1} ms p99 {:.1} ms; key frames asked for: {}; lost frames reported: {}; FEC blocks repaired: {}, lost: {}",
                    live.fps(),
                    live.kbps(),
                    live.stats.fec_percent,
                    live.stats.parity_why.describe(),
                    f64::from(live.stats.loss_permille) / 10.0,
                    f64::from(live.stats.host_latency_us_p50) / 1000.0,
                    f64::from(live.stats.host_latency_us_p99) / 1000.0,
                    session.keyframe_requests,
                    session.frames_invalidated,
                    session.blocks_repaired,
                    session.blocks_lost
                );
                if live.stats.frames > 0 {
                    println!(
                        "  host latency by stage, mean: {}; p99: {}",
                        live.stats.stages_mean_us.describe_ms(),
                        live.stats.stages_p99_us.describe_ms()
                    );
                }
                if let Some(r) = session.received {
                    println!(
                        "  client received: {} frames, {} lost, {} repaired by FEC, latency p50 {:.1} ms",
                        r.frames_received,
                        r.frames_lost,
                        r.frames_recovered,
                        r.latency_us_p50 as f64 / 1000.0
                    );
                }
            }
            Ok(())
        }
    }
}

/// A password typed on the terminal (not echoed), or the first line of standard input.
fn read_password() -> anyhow::Result<String> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    use std::io::BufRead;
    let stdin = std::io::stdin();
    let terminal = tcgetattr(&stdin).ok();
    if let Some(t) = &terminal {
        eprint!("console password: ");
        let mut quiet = t.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        tcsetattr(&stdin, SetArg::TCSANOW, &quiet)?;
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(t) = &terminal {
        tcsetattr(&stdin, SetArg::TCSANOW, t)?;
        eprintln!();
    }
    read?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// What a client may do, in words.
fn describe(p: &Permissions) -> String {
    let apps = p.apps.as_ref().map_or("every app".to_owned(), |a| format!("apps: {}", a.join(", ")));
    let input = if p.view_only { "view only" } else { "input" };
    let others = if p.others { ", may resume and quit others' sessions" } else { "" };
    let clipboard = if p.clipboard { ", shares the clipboard" } else { "" };
    format!("{apps}; {input}{others}{clipboard}")
}

/// A client of the management API, authorised with the token from the state directory.
struct Api {
    agent: ureq::Agent,
    base: String,
    auth: String,
}

impl Api {
    fn new(paths: &Paths, config: &Config) -> anyhow::Result<Self> {
        let file = paths.state.join(punktfunk_session::host::API_TOKEN_FILE);
        let token = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {} (run this as the user the host runs as)", file.display()))?;
        // Errors come back as JSON with the host's reason: read them rather than a status.
        let agent = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
        let base = format!("http://127.0.0.1:{}{}", config.api_port, punktfunk_session::api::BASE);
        Ok(Self { agent, base, auth: format!("Bearer {}", token.trim()) })
    }

    fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        read(self.agent.get(format!("{}{path}", self.base)).header("Authorization", &self.auth).call())
    }

    fn delete(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        read(self.agent.delete(format!("{}{path}", self.base)).header("Authorization", &self.auth).call())
    }

    fn post<T: serde::de::DeserializeOwned>(&self, path: &str, body: impl serde::Serialize) -> anyhow::Result<T> {
        read(self.agent.post(format!("{}{path}", self.base)).header("Authorization", &self.auth).send_json(body))
    }

    fn put<T: serde::de::DeserializeOwned>(&self, path: &str, body: impl serde::Serialize) -> anyhow::Result<T> {
        read(self.agent.put(format!("{}{path}", self.base)).header("Authorization", &self.auth).send_json(body))
    }
}

/// The answer's JSON, or the host's reason for refusing.
fn read<T: serde::de::DeserializeOwned>(answer: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> anyhow::Result<T> {
    let mut answer = answer.map_err(|e| match e {
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            anyhow::anyhow!("the host is not running (start it with `punktfunk serve`)")
        }
        e => anyhow::anyhow!(e),
    })?;
    if answer.status().is_success() {
        return Ok(answer.body_mut().read_json()?);
    }
    let status = answer.status();
    let body: serde_json::Value = answer.body_mut().read_json().unwrap_or_default();
    match body["error"].as_str() {
        Some(reason) => anyhow::bail!("{reason}"),
        None => anyhow::bail!("the host answered {status}"),
    }
}

/// `punktfunk pair PIN [--device NAME]`: says which device the PIN is for, then how it went.
fn pair(api: &Api, pin: String, device: Option<String>) -> anyhow::Result<()> {
    let waiting: Waiting = api.get("/pairing")?;
    let target = device.clone().or_else(|| (waiting.devices.len() == 1).then(|| waiting.devices[0].clone()));
    match &target {
        Some(device) => println!("pairing {device}…"),
        None if waiting.devices.is_empty() => println!("no device is waiting yet: the PIN goes to the first that asks…"),
        None => {}
    }
    let reply: serde_json::Value = api.post("/pin", PinRequest { pin, device })?;
    println!("paired with {}", reply["paired"].as_str().unwrap_or("the client"));
    Ok(())
}

fn serve(paths: Paths) -> anyhow::Result<()> {
    punktfunk_session::panics::abort_on_panic();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime
        .block_on(async {
            let (host, sockets) = Host::open(&paths).await?;
            let tls = tls::server_config(&host.identity)?;
            control::spawn(Arc::clone(&host), sockets.control)?;
            let _mdns = if host.config.mdns {
                punktfunk_session::mdns::announce(&host.name, host.config.port, host.config.native_port)
                    .map_err(|e| tracing::warn!("mDNS announcement failed: {e}"))
                    .ok()
            } else {
                None
            };
            tokio::spawn(http::serve_http(Arc::clone(&host), sockets.http));
            tokio::spawn(http::serve_https(Arc::clone(&host), sockets.https, tls));
            tokio::spawn(rtsp::serve(Arc::clone(&host), sockets.rtsp));
            tokio::spawn(punktfunk_session::api::serve(Arc::clone(&host), sockets.api));
            if host.config.notify_pairing && !paths.system {
                tokio::spawn(punktfunk_session::notify::show_pairing_requests(Arc::clone(&host)));
            }
            if let Some(listener) = sockets.console {
                let tls = tls::console_server_config(&host.identity)?;
                tokio::spawn(punktfunk_session::console::serve(Arc::clone(&host), listener, tls));
            }
            let native = punktfunk_session::native::endpoint(&host, sockets.native)?;
            tokio::spawn(punktfunk_session::native::serve(Arc::clone(&host), native));
            tracing::info!(
                version = VERSION,
                name = host.name,
                port = host.config.port,
                hevc = host.hevc,
                av1 = host.av1,
                "punktfunk host ready; pair a Moonlight client with `punktfunk pair <PIN>`"
            );
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            tracing::info!("shutting down");
            host.streams.cancel_all();
            // Let the sessions end properly: its app stopped, its undo commands run.
            let streams = Arc::clone(&host.streams);
            let _ = tokio::task::spawn_blocking(move || streams.wait_idle(std::time::Duration::from_secs(8))).await;
            anyhow::Ok(())
        })
        .context("punktfunk serve")
}
