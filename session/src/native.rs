//! punktfunk/1 on the host: the QUIC control server (quinn) beside the GameStream front
//! end, sharing its paired clients, PIN desk and sessions. Each connection's first
//! bidirectional stream carries core's control messages (`punktfunk_core::control`); video
//! goes from the compositor over the data plane, never through here.

use crate::gamestream::identity::Certificate;
use crate::gamestream::tls;
use crate::host::Host;
use crate::pin::{PIN_WAIT, PairOutcome};
use crate::store::PairedClient;
use crate::stream::{Busy, Launch};
use anyhow::Context;
use punktfunk_core::control::VERSION;
use punktfunk_core::control::framing::{self, Reader};
use punktfunk_core::control::messages::{ClientMessage, HostMessage, Reconfigure, StartRequest, Started};
use punktfunk_core::control::pairing::HostPairing;
use punktfunk_core::ipc::Command;
use punktfunk_core::stream::NativeVideoParams;
use punktfunk_core::stream::{Codec, Format};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Largest video frame a client must reassemble (a 4K key frame at a high bitrate).
const MAX_FRAME: u32 = 8 << 20;

pub fn endpoint(host: &Host, socket: std::net::UdpSocket) -> anyhow::Result<quinn::Endpoint> {
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls::quic_server_config(&host.identity)?)?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    // A client that vanishes is noticed within seconds; a live one keeps the path open.
    transport.max_idle_timeout(Some(Duration::from_secs(10).try_into()?)).keep_alive_interval(Some(Duration::from_secs(2)));
    // One control stream of small messages per connection: what anyone may make the host
    // buffer before saying who they are stays small.
    transport
        .max_concurrent_bidi_streams(1u32.into())
        .max_concurrent_uni_streams(0u32.into())
        .stream_receive_window((256u32 << 10).into())
        .receive_window((512u32 << 10).into())
        .datagram_receive_buffer_size(None);
    server.transport_config(Arc::new(transport));
    Ok(quinn::Endpoint::new(quinn::EndpointConfig::default(), Some(server), socket, Arc::new(quinn::TokioRuntime))?)
}

/// Connections served at once; more are refused.
const MAX_CONNECTIONS: usize = 64;
/// How long a connection may take to open its stream and say hello.
const HELLO_WAIT: Duration = Duration::from_secs(10);
/// How long an unpaired connection may stay: long enough to pair (the PIN wait and the
/// confirmation), not forever.
const UNPAIRED_STAY: Duration = Duration::from_secs(150);
/// How long the host waits for a client's pairing confirmation.
const CONFIRM_WAIT: Duration = Duration::from_secs(15);

pub async fn serve(host: Arc<Host>, endpoint: quinn::Endpoint) {
    while let Some(incoming) = endpoint.accept().await {
        if endpoint.open_connections() >= MAX_CONNECTIONS {
            tracing::warn!(remote = %incoming.remote_address(), "punktfunk/1: too many connections, refusing one");
            incoming.refuse();
            continue;
        }
        // A handshake costs the host a signature: first make the client prove it receives at
        // the address it claims (one round trip), so spoofed floods cost nothing.
        if !incoming.remote_address_validated() && incoming.may_retry() {
            let _ = incoming.retry();
            continue;
        }
        let host = Arc::clone(&host);
        tokio::spawn(async move {
            let remote = incoming.remote_address();
            if let Err(e) = connection(&host, incoming).await {
                tracing::info!(%remote, "punktfunk/1 connection ended: {e:#}");
            }
        });
    }
}

/// The connection's control stream.
struct Control {
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    reader: Reader,
}

impl Control {
    async fn say(&mut self, msg: &HostMessage) -> anyhow::Result<()> {
        self.send.write_all(&framing::encode(msg)).await?;
        Ok(())
    }

    /// The next message; `None` when the client closed the stream.
    async fn next(&mut self) -> anyhow::Result<Option<ClientMessage>> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(m) = self.reader.next_message()? {
                return Ok(Some(m));
            }
            match self.recv.read(&mut buf).await? {
                Some(n) => self.reader.push(&buf[..n]),
                None => return Ok(None),
            }
        }
    }

    async fn refuse(&mut self, reason: &str) -> anyhow::Result<()> {
        self.say(&HostMessage::Refused { reason: reason.into() }).await?;
        let _ = self.send.finish();
        anyhow::bail!("refused: {reason}")
    }
}

/// Who is on the other end, by the certificate it proved it holds.
struct Client {
    der: Vec<u8>,
    fingerprint: String,
    addr: SocketAddr,
    name: String,
}

impl Client {
    fn device(&self) -> String {
        format!("{} at {}", self.name, self.addr.ip())
    }
}

fn sha256(der: &[u8]) -> [u8; 32] {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der).as_ref().try_into().expect("32 bytes")
}

async fn connection(host: &Arc<Host>, incoming: quinn::Incoming) -> anyhow::Result<()> {
    let conn = incoming.await?;
    let certs = conn
        .peer_identity()
        .and_then(|i| i.downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>().ok())
        .context("no client certificate")?;
    let der = certs.first().context("no client certificate")?.to_vec();
    let (send, recv) = tokio::time::timeout(HELLO_WAIT, conn.accept_bi()).await.context("no control stream in time")??;
    let mut ctl = Control { send, recv, reader: Reader::default() };
    let mut client =
        Client { fingerprint: crate::gamestream::identity::fingerprint(&der), der, addr: conn.remote_address(), name: String::new() };
    let opened = std::time::Instant::now();
    match tokio::time::timeout(HELLO_WAIT, ctl.next()).await.context("no hello in time")?? {
        // The name reaches logs and the paired-client list: printable characters only.
        Some(ClientMessage::Hello { version: VERSION, name }) => client.name = name.chars().filter(|c| !c.is_control()).take(64).collect(),
        Some(ClientMessage::Hello { version, .. }) => return ctl.refuse(&format!("protocol version {version} is not {VERSION}")).await,
        _ => anyhow::bail!("the client did not say hello"),
    }
    let paired = |host: &Host, c: &Client| host.clients.lock().unwrap().is_paired(&c.fingerprint);
    if host.config.native_trust_on_first_use && !paired(host, &client) {
        let device = format!("{} (trusted on first use)", client.device());
        tracing::warn!(device, "pairing a punktfunk/1 client without a PIN (native_trust_on_first_use)");
        remember(host, &client, &device).map_err(|e| anyhow::anyhow!("saving the client: {e}"))?;
    }
    ctl.say(&HostMessage::Welcome { version: VERSION, name: host.name.clone(), paired: paired(host, &client) }).await?;

    // The session this connection streams from, once started: its id and this start's token.
    let mut session: Option<(u64, u64)> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let result = loop {
        let msg = tokio::select! {
            m = ctl.next() => m,
            _ = tick.tick() => {
                if !paired(host, &client) && opened.elapsed() > UNPAIRED_STAY {
                    break ctl.refuse("not paired").await;
                }
                if let Some((id, token)) = session {
                    let owner = host.streams.with(|s| (s.id, s.native_owner));
                    let reason = match owner {
                        Some((i, Some(t))) if i == id && t == token => continue,
                        Some((i, _)) if i == id => "another client took over the session",
                        _ => "the session ended",
                    };
                    session = None;
                    if let Err(e) = ctl.say(&HostMessage::Ended { reason: reason.into() }).await {
                        break Err(e);
                    }
                }
                continue;
            }
        };
        let msg = match msg {
            Ok(Some(m)) => m,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        if !matches!(msg, ClientMessage::PairStart { .. }) && !paired(host, &client) {
            break ctl.refuse("this client is not paired").await;
        }
        // What to answer; a failed write ends the connection through the clean-up below.
        let answer = match msg {
            ClientMessage::Hello { .. } => break Err(anyhow::anyhow!("a second hello")),
            ClientMessage::PairStart { spake } => {
                if let Err(e) = pair(host, &mut ctl, &client, &spake).await {
                    break Err(e);
                }
                None
            }
            ClientMessage::PairConfirm { .. } => break Err(anyhow::anyhow!("a confirmation without a pairing")),
            ClientMessage::Start(req) => match start(host, &client, &req).await {
                Ok((id, started)) => {
                    session = Some((id, started.token));
                    Some(HostMessage::Started(started))
                }
                Err(reason) => break ctl.refuse(&reason).await,
            },
            ClientMessage::Reconfigure(r) => Some(HostMessage::Reconfigured(reconfigure(host, session, &r))),
            ClientMessage::Input(e) => {
                owned(host, session, |s| s.send(&Command::Input(e)));
                None
            }
            ClientMessage::RequestKeyframe => {
                owned(host, session, |s| s.send(&Command::RequestIdr));
                None
            }
            ClientMessage::Stats(stats) => {
                *host.streams.last_native.lock().unwrap() = Some(stats);
                None
            }
            // The frames' timestamps are this clock (the compositor stamps them with it).
            ClientMessage::Ping { client_us } => Some(HostMessage::Pong { client_us, host_us: punktfunk_net::monotonic_us() }),
            ClientMessage::Stop => {
                // Only the session this connection still steers.
                if let Some((id, token)) = session.take()
                    && owned(host, Some((id, token)), |_| ()).is_some()
                {
                    host.streams.cancel_if(id);
                }
                Some(HostMessage::Ended { reason: "stopped by the client".into() })
            }
        };
        if let Some(answer) = answer
            && let Err(e) = ctl.say(&answer).await
        {
            break Err(e);
        }
    };
    // Leaving without Stop keeps the session for a later Start (as Moonlight's "disconnect").
    owned(host, session, |s| {
        s.send(&Command::StopVideo);
        s.send(&Command::StopAudio);
    });
    result
}

/// Runs `f` on the session if this connection's start (`session`: id and token) is still the
/// one streaming from it; `None` when it is not.
fn owned<R>(host: &Host, session: Option<(u64, u64)>, f: impl FnOnce(&mut crate::stream::Stream) -> R) -> Option<R> {
    let (id, token) = session?;
    host.streams.with(|s| (s.id == id && s.native_owner == Some(token)).then(|| f(s))).flatten()
}

/// PIN pairing: the client shows a PIN, the user enters it on the host (`punktfunk pair`),
/// SPAKE2 proves both sides know it and binds both certificates.
async fn pair(host: &Host, ctl: &mut Control, client: &Client, spake: &[u8]) -> anyhow::Result<()> {
    let device = client.device();
    let Some(_waiting) = host.claim_pin() else { return ctl.refuse("another pairing is in progress").await };
    tracing::info!(device, "punktfunk/1 pairing request: waiting for the PIN (punktfunk pair <PIN>)");
    let Some((pin, outcome)) = host.pins.take(PIN_WAIT).await else { return ctl.refuse("no PIN was entered in time").await };
    let report = |o: PairOutcome| {
        if let Some(tx) = outcome {
            let _ = tx.send(o);
        }
    };
    let host_fp = sha256(host.identity.certificate().der());
    let (pairing, reply, mac) = match HostPairing::respond(&pin, &sha256(&client.der), &host_fp, spake) {
        Ok(r) => r,
        Err(e) => {
            report(PairOutcome::Failed(e.to_string()));
            return ctl.refuse(&e.to_string()).await;
        }
    };
    ctl.say(&HostMessage::PairReply { spake: reply, mac }).await?;
    let confirmed = match tokio::time::timeout(CONFIRM_WAIT, ctl.next()).await {
        Ok(Ok(Some(ClientMessage::PairConfirm { mac }))) => pairing.verify(&mac).map_err(|e| e.to_string()),
        Err(_) => Err("the client did not confirm in time".into()),
        _ => Err("the client gave up (a wrong PIN on its side)".into()),
    };
    if let Err(reason) = confirmed {
        tracing::warn!(device, "punktfunk/1 pairing failed: {reason}");
        report(PairOutcome::Failed(reason.clone()));
        return ctl.refuse(&reason).await;
    }
    if let Err(e) = remember(host, client, &device) {
        report(PairOutcome::Failed(format!("could not save the client: {e}")));
        return ctl.refuse("the host could not save the pairing").await;
    }
    tracing::info!(device, "punktfunk/1 client paired");
    report(PairOutcome::Paired { client: device });
    ctl.say(&HostMessage::Paired).await
}

/// Stores the client as paired.
fn remember(host: &Host, client: &Client, name: &str) -> std::io::Result<()> {
    let cert_pem = Certificate::from_der(&client.der).map(|c| c.pem().to_owned()).unwrap_or_default();
    let paired_at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    host.clients.lock().unwrap().add(PairedClient { fingerprint: client.fingerprint.clone(), name: name.into(), cert_pem, paired_at })
}

/// Launches the app (or resumes it at the new mode) and starts punktfunk/1 video from its
/// compositor. The reason a start is refused goes to the client.
async fn start(host: &Arc<Host>, client: &Client, req: &StartRequest) -> Result<(u64, Started), String> {
    req.validate()?;
    let wanted = host.config.apps().find(|(id, a)| a.title == req.app || (req.app.is_empty() && *id == 1)).map(|(id, a)| (id, a.clone()));
    let Some((app_id, app)) = wanted else { return Err(format!("no app called {:?}", req.app)) };
    let mode = (req.width, req.height, req.fps);
    let running = host.streams.with(|s| {
        if s.launch.app_id != app_id {
            return None;
        }
        if (s.launch.width, s.launch.height, s.launch.fps) != mode {
            (s.launch.width, s.launch.height, s.launch.fps) = mode;
            s.send(&Command::SetMode { width: req.width, height: req.height, fps: req.fps });
        }
        Some(s.id)
    });
    let id = match running {
        Some(Some(id)) => id,
        Some(None) => return Err(Busy.to_string()),
        None => {
            let launch = Launch::new(app_id, mode, rand::random(), 0, client.addr.ip(), client.fingerprint.clone());
            let streams = Arc::clone(&host.streams);
            match tokio::task::spawn_blocking(move || streams.launch(launch, &app)).await {
                Ok(Ok(id)) => id,
                Ok(Err(e)) => return Err(format!("launch failed: {e}")),
                Err(e) => return Err(e.to_string()),
            }
        }
    };
    let fec = req.fec_percent;
    let kbps = u64::from(req.bitrate_kbps.min(host.config.max_bitrate_kbps));
    let params = NativeVideoParams {
        codec: match req.codec.as_str() {
            "hevc" => Codec::Hevc,
            "av1" => Codec::Av1,
            _ => Codec::H264,
        },
        // BT.709 limited, like every video player expects without being told.
        format: Format { ten_bit: req.ten_bit, yuv444: req.yuv444, ..Format::default() },
        // The bitrate the client budgets also carries the FEC parity.
        bitrate_bps: kbps * 1000 * 100 / (100 + u64::from(fec)),
        refresh_mhz: req.fps * 1000,
        shard_len: req.shard_len,
        fec_percent: fec,
        max_frame_len: MAX_FRAME,
        key: rand::random(),
        mic_key: rand::random(),
        token: rand::random(),
        encoder: host.config.encoder.clone(),
    };
    let started = Started {
        data_port: host.config.native_data_port(),
        token: params.token,
        key: params.key,
        mic_key: params.mic_key,
        shard_len: params.shard_len,
        fec_percent: fec,
        max_frame_len: MAX_FRAME,
        width: req.width,
        height: req.height,
        fps: req.fps,
        ten_bit: params.format.ten_bit,
        yuv444: params.format.yuv444,
    };
    host.streams
        .with(|s| {
            if s.id == id {
                s.native_owner = Some(params.token);
                s.video = Some(format!("{}, {}", params.codec, params.format));
                s.send(&Command::StartNative(params));
            }
        })
        .ok_or("the session ended at once")?;
    tracing::info!(
        stream = id,
        client = client.device(),
        w = req.width,
        h = req.height,
        fps = req.fps,
        codec = req.codec,
        ten_bit = req.ten_bit,
        yuv444 = req.yuv444,
        kbps,
        "punktfunk/1 stream started"
    );
    Ok((id, started))
}

/// Applies what it can of a renegotiation to the running session, and says what it did.
fn reconfigure(host: &Host, session: Option<(u64, u64)>, r: &Reconfigure) -> Reconfigure {
    let mut applied = Reconfigure::default();
    owned(host, session, |s| {
        if let Some(kbps) = r.bitrate_kbps.filter(|k| *k > 0) {
            let kbps = kbps.min(host.config.max_bitrate_kbps);
            s.send(&Command::SetBitrate { bps: u64::from(kbps) * 1000 });
            applied.bitrate_kbps = Some(kbps);
        }
        if let Some((w, h, fps)) =
            r.mode.filter(|&(w, h, fps)| (16..=8192).contains(&w) && (16..=8192).contains(&h) && (1..=480).contains(&fps))
        {
            (s.launch.width, s.launch.height, s.launch.fps) = (w, h, fps);
            s.send(&Command::SetMode { width: w, height: h, fps });
            applied.mode = Some((w, h, fps));
        }
    });
    applied
}
