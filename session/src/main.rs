//! `punktfunk`: the host daemon (`serve`) and its command line.

use anyhow::Context;
use clap::{Parser, Subcommand};
use punktfunk_session::api::{ClientInfo, PinRequest, Status};
use punktfunk_session::config::Config;
use punktfunk_session::gamestream::{control, http, rtsp, tls};
use punktfunk_session::host::{Host, Paths};
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "punktfunk", version, about = "Low-latency game and desktop streaming host")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the host: Moonlight clients can pair, list apps and stream.
    Serve,
    /// Enter the PIN a Moonlight client shows while pairing.
    Pair { pin: String },
    /// List paired clients, or remove one.
    Clients {
        #[command(subcommand)]
        action: Option<ClientsCmd>,
    },
    /// Show the host's state.
    Status,
}

#[derive(Subcommand)]
enum ClientsCmd {
    List,
    /// Remove by name or by fingerprint prefix (≥ 4 hex digits).
    Remove { key: String },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let paths = Paths::from_env()?;
    match cli.command {
        Cmd::Serve => serve(paths),
        Cmd::Pair { pin } => {
            let config = Config::load_or_create(&paths.config)?;
            println!("waiting for the client to finish pairing…");
            let reply: serde_json::Value = api(&config)
                .post(&format!("http://127.0.0.1:{}/api/pin", config.api_port))
                .send_json(PinRequest { pin })
                .map_err(api_error)?
                .body_mut()
                .read_json()?;
            println!("paired with {}", reply["paired"].as_str().unwrap_or("the client"));
            Ok(())
        }
        Cmd::Clients { action } => {
            let config = Config::load_or_create(&paths.config)?;
            match action.unwrap_or(ClientsCmd::List) {
                ClientsCmd::List => {
                    let list: Vec<ClientInfo> = api(&config).get(&format!("http://127.0.0.1:{}/api/clients", config.api_port)).call().map_err(api_error)?.body_mut().read_json()?;
                    if list.is_empty() {
                        println!("no paired clients");
                    }
                    for c in list {
                        println!("{}  {}", &c.fingerprint[..16.min(c.fingerprint.len())], c.name);
                    }
                }
                ClientsCmd::Remove { key } => {
                    api(&config).delete(&format!("http://127.0.0.1:{}/api/clients/{key}", config.api_port)).call().map_err(api_error)?;
                    println!("removed {key}");
                }
            }
            Ok(())
        }
        Cmd::Status => {
            let config = Config::load_or_create(&paths.config)?;
            let s: Status = api(&config).get(&format!("http://127.0.0.1:{}/api/status", config.api_port)).call().map_err(api_error)?.body_mut().read_json()?;
            println!("{} ({}): {} paired client(s)", s.name, s.uniqueid, s.paired_clients);
            match s.app {
                Some(app) => println!("streaming app {app}{}", s.launch_to_first_frame_ms.map(|ms| format!(", first frame {ms} ms after launch")).unwrap_or_default()),
                None => println!("idle"),
            }
            Ok(())
        }
    }
}

fn api(_: &Config) -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

fn api_error(e: ureq::Error) -> anyhow::Error {
    match e {
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => anyhow::anyhow!("the host is not running (start it with `punktfunk serve`)"),
        e => anyhow::anyhow!(e),
    }
}

fn serve(paths: Paths) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        let (host, sockets) = Host::open(&paths).await?;
        let tls = tls::server_config(&host.identity)?;
        control::spawn(Arc::clone(&host), sockets.control)?;
        // Audio (its own issue) arrives on this socket; holding the port keeps clients' pings
        // from bouncing with ICMP errors meanwhile.
        let _audio = sockets.audio;
        let _mdns = if host.config.mdns {
            punktfunk_session::mdns::announce(&host.name, host.config.port).map_err(|e| tracing::warn!("mDNS announcement failed: {e}")).ok()
        } else {
            None
        };
        tokio::spawn(http::serve_http(Arc::clone(&host), sockets.http));
        tokio::spawn(http::serve_https(Arc::clone(&host), sockets.https, tls));
        tokio::spawn(rtsp::serve(Arc::clone(&host), sockets.rtsp));
        tokio::spawn(punktfunk_session::api::serve(Arc::clone(&host), sockets.api));
        tracing::info!(name = host.name, port = host.config.port, hevc = host.hevc, "punktfunk host ready; pair a Moonlight client with `punktfunk pair <PIN>`");
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
        host.streams.cancel();
        // Give the compositor a moment to take its app down.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        anyhow::Ok(())
    })
    .context("punktfunk serve")
}
