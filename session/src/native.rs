//! punktfunk/1 on the host: the QUIC control server (quinn) beside the GameStream front
//! end, sharing its paired clients, PIN desk and sessions. Each connection's first
//! bidirectional stream carries core's control protocol, whose rules live in core's
//! sans-IO `HostControl`; this drives it with the stream's bytes and the host's answers.
//! Video goes from the stream process over the data plane, never through here.

use crate::admission::{Admission, Peers};
use crate::gamepad::worker::PadWorker;
use crate::gamestream::identity::Certificate;
use crate::gamestream::tls;
use crate::host::Host;
use crate::pin::{Given, PIN_WAIT, PairOutcome, Reporter, printable_name};
use crate::store::{PairedClient, Permissions};
use crate::stream::{Busy, Launch};
use anyhow::Context;
use punktfunk_core::control::host::{HostControl, HostEvent};
use punktfunk_core::control::messages::{Reconfigure, StartRequest, Started};
use punktfunk_core::gamepad::{PadEvent, PadFeedback};
use punktfunk_core::ipc::Command;
use punktfunk_core::mode::Mode;
use punktfunk_core::stream::NativeVideoParams;
use punktfunk_core::stream::{Codec, Format};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Largest video frame a client must reassemble (a 4K key frame at a high bitrate).
const MAX_FRAME: u32 = 8 << 20;
/// Pad feedback (rumble, LED, motion requests) waiting for the control stream, at most.
const PAD_FEEDBACK: usize = 64;

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

/// Connections served at once, and from one address; more are refused.
const MAX_CONNECTIONS: usize = 64;
const PER_ADDRESS: usize = 8;
/// Of those, unpaired ones (pairing, or about to be refused): strangers can never hold the
/// slots paired clients need.
const MAX_UNPAIRED: usize = 16;
const UNPAIRED_PER_ADDRESS: usize = 2;
/// How long a connection may take to open its control stream.
const STREAM_WAIT: Duration = Duration::from_secs(10);
/// How long a refused client gets to read the refusal.
const LINGER: Duration = Duration::from_secs(2);
/// How often a connection looks at its session (ended, taken over) and its pairing.
const CHECK_EVERY: Duration = Duration::from_millis(500);

pub async fn serve(host: Arc<Host>, endpoint: quinn::Endpoint) {
    let everyone = Admission::new("punktfunk/1", Peers::PerAddress(PER_ADDRESS), MAX_CONNECTIONS);
    let strangers = Admission::new("punktfunk/1 unpaired", Peers::PerAddress(UNPAIRED_PER_ADDRESS), MAX_UNPAIRED);
    while let Some(incoming) = endpoint.accept().await {
        // A handshake costs the host a signature: first make the client prove it receives at
        // the address it claims (one round trip), so spoofed floods cost nothing.
        if !incoming.remote_address_validated() && incoming.may_retry() {
            let _ = incoming.retry();
            continue;
        }
        let remote = incoming.remote_address();
        let slot = match everyone.admit(remote, None) {
            Ok(slot) => slot,
            Err(why) => {
                everyone.refused(remote, why);
                incoming.refuse();
                continue;
            }
        };
        let (host, strangers) = (Arc::clone(&host), Arc::clone(&strangers));
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = connection(&host, incoming, &strangers).await {
                tracing::info!(%remote, "punktfunk/1 connection ended: {e:#}");
            }
        });
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

/// One connection: the QUIC stream's bytes through core's [`HostControl`], whose events
/// this answers from the host's state.
async fn connection(host: &Arc<Host>, incoming: quinn::Incoming, strangers: &Arc<Admission>) -> anyhow::Result<()> {
    let conn = incoming.await?;
    let ctl = HostControl::new(punktfunk_net::monotonic_us());
    let certs = conn
        .peer_identity()
        .and_then(|i| i.downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>().ok())
        .context("no client certificate")?;
    let der = certs.first().context("no client certificate")?.to_vec();
    let (send, recv) = tokio::time::timeout(STREAM_WAIT, conn.accept_bi()).await.context("no control stream in time")??;
    let client =
        Client { fingerprint: crate::gamestream::identity::fingerprint(&der), der, addr: conn.remote_address(), name: String::new() };
    let mut c = Connection { host, ctl, client, quic: conn.clone(), session: None, pairing: None, clipboard: None, pads: None };
    // An unpaired client takes one of the few places strangers may hold, or is refused.
    let _stranger_slot = if c.is_paired() {
        None
    } else {
        strangers
            .admit(c.client.addr, None)
            .map_err(|why| {
                strangers.refused(c.client.addr, why);
                c.ctl.refuse("too many unpaired devices are connected; try again later");
            })
            .ok()
    };
    let result = c.run(send, recv).await;
    // Leaving without Stop keeps the session for a later Start (as Moonlight's "disconnect").
    owned(host, c.session, |s| {
        s.send(&Command::StopVideo);
        s.send(&Command::StopAudio);
    });
    result
}

struct Connection<'a> {
    host: &'a Arc<Host>,
    ctl: HostControl,
    client: Client,
    /// The session this connection streams from, once started: its id and this start's token.
    session: Option<(u64, u64)>,
    quic: quinn::Connection,
    /// A pairing under way: whoever gave the PIN, told how it ends.
    pairing: Option<Reporter>,
    /// The client asked for the session's clipboard: the number of the last copy it got.
    clipboard: Option<u64>,
    /// The client's controllers as pads in the session, once one sent something, and what
    /// games ask of them.
    pads: Option<(PadWorker, tokio::sync::mpsc::Receiver<PadFeedback>)>,
}

impl<'a> Connection<'a> {
    async fn run(&mut self, mut send: quinn::SendStream, mut recv: quinn::RecvStream) -> anyhow::Result<()> {
        let mut check = tokio::time::interval(CHECK_EVERY);
        let mut buf = [0u8; 4096];
        loop {
            while let Some(event) = self.ctl.poll_event() {
                self.answer(event).await?;
            }
            send.write_all(&self.ctl.take_output()).await?;
            if self.ctl.is_closed() {
                // Dropping the connection discards what the client has not read yet: let the
                // refusal arrive first (a client that stops reading is not waited for long).
                let _ = send.finish();
                let _ = tokio::time::timeout(LINGER, send.stopped()).await;
                anyhow::bail!("closed by the host");
            }
            let deadline = self.ctl.poll_timeout().map(|t| Duration::from_micros(t.saturating_sub(punktfunk_net::monotonic_us())));
            tokio::select! {
                read = recv.read(&mut buf) => match read? {
                    Some(n) => self.ctl.push(&buf[..n], punktfunk_net::monotonic_us())?,
                    None => return Ok(()),
                },
                _ = check.tick() => self.check(),
                Some(feedback) = async { self.pads.as_mut()?.1.recv().await }, if self.pads.is_some() => {
                    self.ctl.pad_feedback(feedback);
                }
                () = tokio::time::sleep(deadline.unwrap_or(Duration::MAX)), if deadline.is_some() => {
                    self.ctl.handle_timeout(punktfunk_net::monotonic_us());
                }
            }
        }
    }

    fn is_paired(&self) -> bool {
        self.host.clients.lock().is_paired(&self.client.fingerprint)
    }

    /// The session ended or was taken over; the client was removed from the paired list.
    fn check(&mut self) {
        if let Some((id, token)) = self.session {
            let reason = match self.host.streams.with(id, |s| s.native_owner) {
                Some(Some(t)) if t == token => None,
                Some(_) => Some("another connection took over the session"),
                None => Some("the session ended"),
            };
            if let Some(reason) = reason {
                self.session = None;
                self.pads = None;
                self.ctl.ended(reason);
            }
        }
        self.pass_on_copies();
        // A client made view-only while streaming lets go of its pads (held buttons too).
        if self.pads.is_some() && self.host.permissions(&self.client.fingerprint).view_only {
            self.pads = None;
        }
        if self.ctl.is_paired() && !self.is_paired() {
            // Removing a client ends its session (the API does): say so before refusing.
            self.pads = None;
            if self.session.take().is_some() {
                self.ctl.ended("this client was removed from the host");
            }
            self.ctl.unpaired();
        }
    }

    /// Gives the client what the session's apps copied since it last heard, if it asked for
    /// the clipboard and may have it.
    fn pass_on_copies(&mut self) {
        let (Some(seen), Some((id, _))) = (self.clipboard, self.session) else { return };
        if !self.host.permissions(&self.client.fingerprint).clipboard {
            return;
        }
        if let Some(Some((n, text))) = owned(self.host, self.session, |s| s.copied.clone())
            && n > seen
        {
            tracing::debug!(stream = id, bytes = text.len(), "the session's clipboard goes to the client");
            self.ctl.clipboard(&text);
            self.clipboard = Some(n);
        }
    }

    async fn answer(&mut self, event: HostEvent) -> anyhow::Result<()> {
        let host = self.host;
        match event {
            HostEvent::Hello { name } => {
                self.client.name = printable_name(&name);
                if host.config.native_trust_on_first_use && !self.is_paired() {
                    let device = format!("{} (trusted on first use)", self.client.device());
                    tracing::warn!(device, "pairing a punktfunk/1 client without a PIN (native_trust_on_first_use)");
                    remember(host, &self.client, &device).map_err(|e| anyhow::anyhow!("saving the client: {e}"))?;
                }
                self.ctl.welcome(&host.name, self.is_paired(), punktfunk_net::monotonic_us())?;
            }
            HostEvent::PairRequested => self.pair().await?,
            HostEvent::PairConfirmed => {
                let device = self.client.device();
                let pairing = self.pairing.as_mut().context("a confirmation without a pairing")?;
                match remember(host, &self.client, &device) {
                    Ok(()) => {
                        tracing::info!(device, "punktfunk/1 client paired");
                        pairing.report(PairOutcome::Paired { client: device });
                        self.ctl.paired()?;
                    }
                    Err(e) => {
                        pairing.report(PairOutcome::Failed(format!("could not save the client: {e}")));
                        self.ctl.refuse("the host could not save the pairing");
                    }
                }
                self.pairing = None;
            }
            HostEvent::PairFailed { reason } => {
                tracing::warn!(device = self.client.device(), "punktfunk/1 pairing failed: {reason}");
                if let Some(mut pairing) = self.pairing.take() {
                    pairing.report(PairOutcome::Failed(reason));
                }
            }
            HostEvent::Refused { reason } => tracing::info!(device = self.client.device(), "punktfunk/1 client refused: {reason}"),
            HostEvent::Start(req) => match start(host, &self.client, &req).await {
                Ok((id, started)) => {
                    self.session = Some((id, started.token));
                    // Pads belong to the session they were made in.
                    self.pads = None;
                    self.ctl.started(started);
                    // Copies from here on (what was copied before stays in the session).
                    self.clipboard =
                        req.clipboard.then(|| host.streams.with(id, |s| s.copied.as_ref().map_or(0, |(n, _)| *n)).unwrap_or(0));
                }
                Err(reason) => self.ctl.refuse(&reason),
            },
            HostEvent::Reconfigure(r) => self.ctl.reconfigured(reconfigure(host, self.session, &r)),
            HostEvent::Input(e) => {
                // A client that may only watch steers nothing.
                if !host.permissions(&self.client.fingerprint).view_only {
                    owned(host, self.session, |s| s.send(&Command::Input(e)));
                }
            }
            HostEvent::Pad(event) => self.pad(event),
            HostEvent::Clipboard(text) => {
                // Only where the user allowed this client the clipboard, and it may steer.
                let permissions = host.permissions(&self.client.fingerprint);
                if permissions.clipboard && !permissions.view_only {
                    owned(host, self.session, |s| s.send(&Command::Clipboard(text)));
                }
            }
            HostEvent::RequestKeyframe => {
                owned(host, self.session, |s| {
                    s.keyframe_requests += 1;
                    s.send(&Command::RequestIdr);
                });
            }
            HostEvent::FramesLost { first, last } => {
                owned(host, self.session, |s| {
                    s.frames_invalidated += 1;
                    s.send(&Command::InvalidateFrames { first, last });
                });
            }
            HostEvent::Stats(stats) => {
                owned(host, self.session, |s| {
                    // What the client lost since its last report steers the parity.
                    let before = s.received.as_ref().map_or(0, |r| r.video_lost);
                    if let Ok(lost) = u32::try_from(stats.video_lost.saturating_sub(before))
                        && lost > 0
                    {
                        s.send(&Command::DatagramsLost(lost));
                    }
                    if let Ok(burst) = u32::try_from(stats.video_burst)
                        && burst > 1
                    {
                        s.send(&Command::LossBurst(burst));
                    }
                    s.received = Some(stats.clone());
                });
                *host.streams.last_native.lock() = Some(stats);
            }
            HostEvent::Stop => {
                // Only the session this connection still steers.
                self.pads = None;
                if let Some((id, token)) = self.session.take()
                    && owned(host, Some((id, token)), |_| ()).is_some()
                {
                    host.streams.cancel(id);
                }
            }
        }
        Ok(())
    }

    /// One of the client's controllers did something: its pad in the session follows (made
    /// on the first event), where this connection steers a session and may give input.
    fn pad(&mut self, event: PadEvent) {
        let host = self.host;
        let steered = owned(host, self.session, |s| s.input_view.clone());
        if host.permissions(&self.client.fingerprint).view_only || steered.is_none() {
            // Made to only watch, or no longer steering: pads made before go.
            self.pads = None;
            return;
        }
        if self.pads.is_none() {
            let (tell, told) = tokio::sync::mpsc::channel(PAD_FEEDBACK);
            match PadWorker::spawn(host.config.gamepad, steered.flatten(), tell) {
                Ok(worker) => self.pads = Some((worker, told)),
                Err(e) => {
                    tracing::warn!("gamepads: {e}");
                    return;
                }
            }
        }
        if let Some((worker, _)) = &mut self.pads {
            worker.send(event);
        }
    }

    /// PIN pairing: the client shows a PIN, the user enters it on the host (`punktfunk
    /// pair`), SPAKE2 proves both sides know it and binds both certificates.
    async fn pair(&mut self) -> anyhow::Result<()> {
        let host: &'a Host = self.host;
        let device = self.client.device();
        let Some(ticket) = host.pins.wait(device.clone(), self.client.addr.ip()) else {
            self.ctl.refuse("too many devices are waiting for a PIN");
            return Ok(());
        };
        tracing::info!(device, "punktfunk/1 pairing request: waiting for the PIN (punktfunk pair <PIN>)");
        // A client that leaves meanwhile gives its seat back at once.
        let given = tokio::select! {
            given = ticket.pin(PIN_WAIT) => given,
            _ = self.quic.closed() => anyhow::bail!("the client left while waiting for its PIN"),
        };
        let Some(Given { pin, outcome }) = given else {
            self.ctl.refuse("no PIN was entered in time");
            return Ok(());
        };
        self.pairing = Some(outcome);
        let host_fp = sha256(host.identity.certificate().der());
        self.ctl.pair_with_pin(&pin, &sha256(&self.client.der), &host_fp, punktfunk_net::monotonic_us())?;
        Ok(())
    }
}

/// Runs `f` on the session if this connection's start (`session`: id and token) is still the
/// one streaming from it; `None` when it is not.
fn owned<R>(host: &Host, session: Option<(u64, u64)>, f: impl FnOnce(&mut crate::stream::Stream) -> R) -> Option<R> {
    let (id, token) = session?;
    host.streams.with(id, |s| (s.native_owner == Some(token)).then(|| f(s))).flatten()
}

/// Stores the client as paired.
fn remember(host: &Host, client: &Client, name: &str) -> std::io::Result<()> {
    let cert_pem = Certificate::from_der(&client.der).map(|c| c.pem().to_owned()).unwrap_or_default();
    let paired_at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    host.clients.lock().add(PairedClient {
        fingerprint: client.fingerprint.clone(),
        name: name.into(),
        cert_pem,
        paired_at,
        permissions: Permissions::default(),
    })
}

/// Launches the app (or resumes the client's own session of it at the new mode) and starts
/// punktfunk/1 video from its stream process. The reason a start is refused goes to the
/// client.
async fn start(host: &Arc<Host>, client: &Client, req: &StartRequest) -> Result<(u64, Started), String> {
    let Some((app_id, app)) = host.catalog.titled(&req.app) else { return Err(format!("no app called {:?}", req.app)) };
    let permissions = host.permissions(&client.fingerprint);
    if !permissions.may_launch(&app.title) {
        return Err(format!("this client may not launch {}", app.title));
    }
    let mode = Mode::at_fps(req.width, req.height, req.fps).map_err(|e| e.to_string())?;
    // Its own session of the app; without one, another's of it when it may (taking it over).
    let own = host.streams.of_client(&client.fingerprint, |s| s.launch.app_id);
    let resume = |s: &mut crate::stream::Stream| {
        s.launch.fingerprint.clone_from(&client.fingerprint);
        if s.launch.mode != mode {
            s.launch.mode = mode;
            s.send(&Command::SetMode(mode));
        }
        s.id
    };
    let running = match own {
        Some(running) if running != app_id => return Err(Busy::Own.to_string()),
        Some(_) => host.streams.of_client(&client.fingerprint, resume),
        None if permissions.others => host.streams.find(|s| s.launch.app_id == app_id, resume),
        None => None,
    };
    let id = match running {
        Some(id) => id,
        None => {
            let launch = Launch::new(app_id, mode, rand::random(), 0, client.addr.ip(), client.fingerprint.clone());
            let streams = Arc::clone(&host.streams);
            match tokio::task::spawn_blocking(move || streams.launch(launch, &app)).await {
                Ok(Ok(id)) => id,
                Ok(Err(e)) if e.is::<Busy>() => return Err(e.to_string()),
                Ok(Err(e)) => return Err(format!("launch failed: {e}")),
                Err(e) => return Err(e.to_string()),
            }
        }
    };
    let fec = req.fec_percent;
    // A client that takes any parity up to a ceiling lets the parity follow its losses.
    let fec_max = if req.fec_adaptive { u16::from(host.config.fec_max_percent).max(fec) } else { 0 };
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
        fec_max_percent: fec_max,
        max_frame_len: MAX_FRAME,
        key: rand::random(),
        mic_key: rand::random(),
        token: rand::random(),
        encoder: host.config.encoder.clone(),
        pacing: host.config.pacing,
        // A login stream's process gets where it goes on from as it sends (Stream::send).
        resume: None,
        invalidation: req.repairs,
    };
    let data_port = host.streams.with(id, |s| s.ports.native).ok_or("the session ended at once")?;
    let started = Started {
        data_port,
        token: params.token,
        key: params.key,
        mic_key: params.mic_key,
        shard_len: params.shard_len,
        fec_percent: fec,
        fec_max_percent: fec_max,
        max_frame_len: MAX_FRAME,
        width: req.width,
        height: req.height,
        fps: req.fps,
        ten_bit: params.format.ten_bit,
        yuv444: params.format.yuv444,
        repairs: params.invalidation,
    };
    host.streams
        .with(id, |s| {
            s.native_owner = Some(params.token);
            // The new start's client counts its losses from zero.
            s.received = None;
            s.video = Some(format!("{}, {}", params.codec, params.format));
            s.send(&Command::StartNative(params));
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
            && let Ok(mode) = Mode::at_fps(w, h, fps)
        {
            s.launch.mode = mode;
            s.send(&Command::SetMode(mode));
            applied.mode = Some((w, h, fps));
        }
    });
    applied
}
