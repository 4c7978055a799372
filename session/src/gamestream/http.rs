//! The GameStream HTTP (47989) and HTTPS (47984) API (core/GAMESTREAM.md §4): server info, PIN
//! pairing, the app list, launch, resume and cancel. Everything past pairing needs HTTPS
//! with a paired client certificate; an unknown one gets `status_code="401"`.

use super::identity::fingerprint;
use super::xml::Xml;
use crate::admission::{Admission, HEAD_TIMEOUT, PER_ADDRESS, Peers, connection_budget};
use crate::host::{Host, PendingPairing};
use crate::pin::{Given, MAX_WAITING, PIN_WAIT, PairOutcome, printable_name};
use crate::store::{PairedClient, Permissions};
use crate::stream::{Busy, Launch};
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use hyper_util::rt::TokioIo;
use punktfunk_core::gamestream::launch;
use punktfunk_core::gamestream::pairing::Pairing;
use punktfunk_core::throttle::{Throttle, refusals};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

pub const APP_VERSION: &str = "7.1.431.-1";
const GFE_VERSION: &str = "3.23.0.74";
const SCM_H264: u32 = 0x1;
const SCM_HEVC: u32 = 0x100;
const SCM_HEVC_MAIN10: u32 = 0x200;
const SCM_H264_HIGH8_444: u32 = 0x40000;
const SCM_HEVC_REXT8_444: u32 = 0x80000;
const SCM_AV1_MAIN8: u32 = 0x10000;
const SCM_AV1_MAIN10: u32 = 0x20000;
/// How long a client's first pairing request waits for the user's PIN.
/// A pairing abandoned between stages is forgotten after this (and blocks new ones until).
const PAIRING_TTL: Duration = Duration::from_secs(60);

/// Who is asking: the TCP peer and, over HTTPS, its certificate's fingerprint.
#[derive(Clone, Debug)]
pub struct Conn {
    pub remote: SocketAddr,
    pub local: SocketAddr,
    pub https: bool,
    pub cert: Option<String>,
}

type Params = Query<HashMap<String, String>>;

pub fn router(host: Arc<Host>) -> Router {
    Router::new()
        .route("/serverinfo", get(serverinfo))
        .route("/pair", get(pair))
        .route("/unpair", get(unpair))
        .route("/applist", get(applist))
        .route("/appasset", get(appasset))
        .route("/launch", get(launch))
        .route("/resume", get(resume))
        .route("/cancel", get(cancel))
        .with_state(host)
}

/// Serves plain HTTP: one request per connection (clients never reuse them).
pub async fn serve_http(host: Arc<Host>, listener: TcpListener) {
    let app = router(host);
    let admission = Admission::new("HTTP", Peers::PerAddress(PER_ADDRESS), connection_budget());
    loop {
        let (tcp, remote, slot) = admission.accept(&listener).await;
        let Ok(local) = tcp.local_addr() else { continue };
        let svc = app.clone().layer(Extension(Conn { remote, local, https: false, cert: None }));
        tokio::spawn(async move {
            let _slot = slot;
            serve_connection(TokioIo::new(tcp), svc).await;
        });
    }
}

/// Serves HTTPS with client certificates (any is accepted; pairing is checked per request).
pub async fn serve_https(host: Arc<Host>, listener: TcpListener, tls: Arc<rustls::ServerConfig>) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let app = router(host);
    let admission = Admission::new("HTTPS", Peers::PerAddress(PER_ADDRESS), connection_budget());
    loop {
        let (tcp, remote, slot) = admission.accept(&listener).await;
        let Ok(local) = tcp.local_addr() else { continue };
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let Some(tls) = handshake(&acceptor, tcp, remote).await else { return };
            let cert = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| fingerprint(c));
            let svc = app.layer(Extension(Conn { remote, local, https: true, cert }));
            serve_connection(TokioIo::new(tls), svc).await;
        });
    }
}

/// The TLS handshake of a connection from `remote`, due within [`HEAD_TIMEOUT`]; `None`
/// (logged) when it fails or is late.
pub async fn handshake(
    acceptor: &tokio_rustls::TlsAcceptor,
    tcp: tokio::net::TcpStream,
    remote: std::net::SocketAddr,
) -> Option<tokio_rustls::server::TlsStream<tokio::net::TcpStream>> {
    match tokio::time::timeout(HEAD_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => {
            tracing::debug!(%remote, "TLS handshake: {e}");
            None
        }
        Err(_) => {
            tracing::debug!(%remote, "TLS handshake timed out");
            None
        }
    }
}

/// Serves one request on `io` (no keep-alive: clients never reuse connections), its head
/// due within [`HEAD_TIMEOUT`].
pub async fn serve_connection<I>(io: TokioIo<I>, svc: Router)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper_util::service::TowerToHyperService::new(svc);
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive(false)
        // A client that closes ends its request: a pairing request waiting for its PIN
        // gives its seat at the PIN desk back at once.
        .half_close(false)
        .header_read_timeout(HEAD_TIMEOUT)
        .serve_connection(io, svc);
    if let Err(e) = conn.await {
        tracing::debug!("HTTP connection: {e}");
    }
}

fn xml(x: Xml) -> Response {
    ([(header::CONTENT_TYPE, "application/xml")], x.render()).into_response()
}

fn unauthorized() -> Response {
    xml(Xml::error(401, "The client is not authorized. Certificate verification failed."))
}

fn paired(host: &Host, conn: &Conn) -> bool {
    conn.https && host.is_paired(conn.cert.as_deref())
}

async fn serverinfo(State(host): State<Arc<Host>>, Extension(conn): Extension<Conn>) -> Response {
    if conn.https && !paired(&host, &conn) {
        return unauthorized();
    }
    // Each client sees its own session: another client's is not its to resume. Plain HTTP
    // names no client: there, the session launched from its address (clients ask over
    // HTTPS once paired, so this is a guess only for two clients behind one address).
    let current = match conn.cert.as_deref() {
        Some(f) => host.streams.acted_on_by(f, host.permissions(f).others, |s| s.launch.app_id),
        None => host.streams.find(|s| s.launch.client == conn.remote.ip(), |s| s.launch.app_id),
    };
    // Where HEVC is, so is Main10: each encoder does 10 bits (the GPU encoders from NVIDIA
    // Pascal and Intel Kaby Lake / AMD Polaris on; older ones fall back to x265). 4:4:4 at
    // 8 bits.
    let yuv444 = host.yuv444;
    let codecs = SCM_H264
        | if yuv444 { SCM_H264_HIGH8_444 } else { 0 }
        | if host.hevc { SCM_HEVC | SCM_HEVC_MAIN10 | if yuv444 { SCM_HEVC_REXT8_444 } else { 0 } } else { 0 }
        | if host.av1 { SCM_AV1_MAIN8 | SCM_AV1_MAIN10 } else { 0 };
    let state = if current.is_some() { "PUNKTFUNK_SERVER_BUSY" } else { "PUNKTFUNK_SERVER_FREE" };
    xml(Xml::ok()
        .el("hostname", &host.name)
        .el("appversion", APP_VERSION)
        .el("GfeVersion", GFE_VERSION)
        .el("uniqueid", &host.uniqueid)
        .el("HttpsPort", host.config.https_port())
        .el("ExternalPort", host.config.port)
        .el("LocalIP", conn.local.ip())
        // Moonlight keeps it to wake the host (wake-on-LAN): the interface the client reached.
        .el("mac", crate::interfaces::mac_of(conn.local.ip()).unwrap_or_else(|| "00:00:00:00:00:00".into()))
        .el("MaxLumaPixelsHEVC", if host.hevc { 1869449984u32 } else { 0 })
        .el("ServerCodecModeSupport", codecs)
        .el("PairStatus", u8::from(paired(&host, &conn)))
        .el("currentgame", current.unwrap_or(0))
        .el("state", state)
        // Not GameStream: tells punktfunk/1 clients where to connect (others ignore it).
        .el("punktfunk1Port", host.config.native_port))
}

fn hex_param(q: &HashMap<String, String>, name: &str) -> Option<Vec<u8>> {
    hex::decode(q.get(name)?).ok()
}

fn not_paired(reason: &str) -> Response {
    xml(Xml::ok().message(reason).el("paired", 0))
}

async fn pair(State(host): State<Arc<Host>>, Extension(conn): Extension<Conn>, Query(q): Params) -> Response {
    let uid = q.get("uniqueid").cloned().unwrap_or_default();
    if conn.https {
        // Stage 5 proves the client now holds the paired certificate.
        return if q.get("phrase").map(String::as_str) == Some("pairchallenge") && paired(&host, &conn) {
            xml(Xml::ok().el("paired", 1))
        } else {
            unauthorized()
        };
    }
    host.pairings.lock().retain(|_, p| p.started.elapsed() < PAIRING_TTL);
    if q.get("phrase").map(String::as_str) == Some("getservercert") {
        return getservercert(&host, uid, conn.remote, &q).await;
    }
    // Only the address that started a pairing can go on with it (or end it).
    let key = (conn.remote.ip(), uid);
    let Some(mut pending) = host.pairings.lock().remove(&key) else {
        return not_paired("no pairing in progress");
    };
    let step = if let Some(c) = hex_param(&q, "clientchallenge") {
        pending.pairing.client_challenge(host.identity.certificate().signature(), &c).map(|r| Some(("challengeresponse", hex::encode(r))))
    } else if let Some(c) = hex_param(&q, "serverchallengeresp") {
        pending.pairing.server_challenge_resp(|m| host.identity.sign(m), &c).map(|r| Some(("pairingsecret", hex::encode(r))))
    } else if let Some(c) = hex_param(&q, "clientpairingsecret") {
        pending.pairing.client_pairing_secret(&c).map(|()| None)
    } else {
        host.pairings.lock().insert(key, pending);
        return xml(Xml::error(400, "unknown pairing phrase"));
    };
    match step {
        Ok(Some((name, value))) => {
            host.pairings.lock().insert(key, pending);
            xml(Xml::ok().el("paired", 1).el(name, value))
        }
        Ok(None) => {
            let cert = pending.pairing.client();
            let client = PairedClient {
                fingerprint: cert.fingerprint(),
                name: pending.name.clone(),
                cert_pem: cert.pem().to_owned(),
                paired_at: unix_now(),
                permissions: Permissions::default(),
            };
            if let Err(e) = host.clients.lock().add(client) {
                tracing::error!("saving the paired client: {e}");
                pending.outcome.report(PairOutcome::Failed(format!("could not save the client: {e}")));
                return not_paired("could not save the pairing");
            }
            tracing::info!(device = pending.device, "client paired");
            let device = pending.device.clone();
            pending.outcome.report(PairOutcome::Paired { client: device });
            xml(Xml::ok().el("paired", 1))
        }
        Err(e) => {
            tracing::warn!(device = pending.device, "pairing failed: {e}");
            pending.outcome.report(PairOutcome::Failed(e.to_string()));
            not_paired(&e.to_string())
        }
    }
}

/// Stage 1: the client's certificate and salt; answered once the user gave this device's
/// PIN (or it timed out). The device waits at the PIN desk meanwhile, one seat per address.
async fn getservercert(host: &Host, uid: String, remote: SocketAddr, q: &HashMap<String, String>) -> Response {
    let (Some(salt), Some(cert)) = (hex_param(q, "salt"), hex_param(q, "clientcert")) else {
        return xml(Xml::error(400, "salt and clientcert are required"));
    };
    let Ok(cert_pem) = String::from_utf8(cert) else { return xml(Xml::error(400, "clientcert is not PEM text")) };
    let name = printable_name(q.get("devicename").map_or("", String::as_str));
    let device = format!("{name} at {}", remote.ip());
    // Refused as GameStream clients expect a busy host to refuse (no `plaincert`).
    let Some(ticket) = host.pins.wait(device.clone(), remote.ip()) else {
        if let Some(held_back) = PAIRING_REFUSALS.lock().admit(Instant::now()) {
            tracing::warn!(%remote, held_back, "pairing request refused: {MAX_WAITING} other devices wait for a PIN");
        }
        return xml(Xml::ok().el("paired", 0));
    };
    tracing::info!(device, "pairing request: waiting for the PIN (punktfunk pair <PIN>)");
    let Some(Given { pin, mut outcome }) = ticket.pin(PIN_WAIT).await else {
        tracing::info!(device, "no PIN for this device in time");
        return not_paired("no PIN was entered in time");
    };
    match Pairing::new(&salt, &pin, &cert_pem) {
        Ok(pairing) => {
            host.pairings.lock().insert((remote.ip(), uid), PendingPairing { pairing, outcome, name, device, started: Instant::now() });
            xml(Xml::ok().el("paired", 1).el("plaincert", hex::encode(host.identity.certificate().pem())))
        }
        Err(e) => {
            outcome.report(PairOutcome::Failed(e.to_string()));
            not_paired(&e.to_string())
        }
    }
}

/// Pairing requests refused, reported a few a second.
static PAIRING_REFUSALS: parking_lot::Mutex<Throttle> = parking_lot::Mutex::new(refusals());

/// The client gives up pairing: only its own (same address and `uniqueid`).
async fn unpair(State(host): State<Arc<Host>>, Extension(conn): Extension<Conn>, Query(q): Params) -> Response {
    if let Some(uid) = q.get("uniqueid")
        && let Some(mut p) = host.pairings.lock().remove(&(conn.remote.ip(), uid.clone()))
    {
        p.outcome.report(PairOutcome::Failed("the client aborted pairing".into()));
    }
    xml(Xml::ok())
}

async fn applist(State(host): State<Arc<Host>>, Extension(conn): Extension<Conn>) -> Response {
    if !paired(&host, &conn) {
        return unauthorized();
    }
    let permissions = host.permissions(conn.cert.as_deref().unwrap_or_default());
    let mut apps = String::new();
    for entry in host.catalog.entries().into_iter().filter(|e| permissions.may_launch(&e.app.title)) {
        // Moonlight offers its HDR switch (10-bit video) for apps that say so.
        let one = Xml::ok().el("IsHdrSupported", u8::from(host.hevc || host.av1)).el("AppTitle", &entry.app.title).el("ID", entry.id);
        apps += &format!("<App>{}</App>", one.body());
    }
    xml(Xml::ok().raw(&apps))
}

async fn appasset(State(host): State<Arc<Host>>, Extension(conn): Extension<Conn>, Query(q): Params) -> Response {
    if !paired(&host, &conn) {
        return unauthorized();
    }
    // The art of an app this client may see.
    let permissions = host.permissions(conn.cert.as_deref().unwrap_or_default());
    let app = q.get("appid").and_then(|id| id.parse().ok()).and_then(|id| host.catalog.app(id));
    let Some(image) = app.filter(|a| permissions.may_launch(&a.title)).and_then(|a| a.image) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match tokio::task::spawn_blocking(move || crate::catalog::art::read(&image)).await {
        Ok(Some((kind, bytes))) => ([(header::CONTENT_TYPE, kind)], bytes).into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

fn session_url(host: &Host, conn: &Conn, encrypted: bool) -> String {
    let scheme = if encrypted { "rtspenc" } else { "rtsp" };
    match conn.local.ip() {
        std::net::IpAddr::V6(ip) => format!("{scheme}://[{ip}]:{}", host.config.rtsp_port()),
        ip => format!("{scheme}://{ip}:{}", host.config.rtsp_port()),
    }
}

async fn launch(State(host): State<Arc<Host>>, Extension(conn): Extension<Conn>, Query(q): Params) -> Response {
    if !paired(&host, &conn) {
        return unauthorized();
    }
    let request = match launch::launch(|k| q.get(k).map(String::as_str)) {
        Ok(r) => r,
        Err(e) => return xml(Xml::error(400, &e.to_string())),
    };
    let Some(app) = host.catalog.app(request.app_id) else { return xml(Xml::error(404, "no such app")) };
    if !host.permissions(conn.cert.as_deref().unwrap_or_default()).may_launch(&app.title) {
        return xml(Xml::error(403, &format!("this client may not launch {}", app.title)));
    }
    let mut launch = Launch::new(
        request.app_id,
        request.mode,
        request.key.key,
        request.key.key_id,
        conn.remote.ip(),
        conn.cert.clone().unwrap_or_default(),
    );
    launch.encrypted_rtsp = request.corever >= 1;
    launch.audio_channels = request.audio_channels;
    let encrypted = launch.encrypted_rtsp;
    let streams = Arc::clone(&host.streams);
    match tokio::task::spawn_blocking(move || streams.launch(launch, &app)).await {
        Ok(Ok(_)) => xml(Xml::ok().el("sessionUrl0", session_url(&host, &conn, encrypted)).el("gamesession", 1)),
        Ok(Err(e)) => match e.downcast_ref::<Busy>() {
            Some(Busy::Own) => xml(Xml::error(400, &e.to_string())),
            Some(Busy::Full(_)) => xml(Xml::error(503, &e.to_string())),
            None => {
                tracing::error!("launch failed: {e:#}");
                xml(Xml::error(500, &format!("launch failed: {e}")))
            }
        },
        Err(e) => xml(Xml::error(500, &e.to_string())),
    }
}

async fn resume(State(host): State<Arc<Host>>, Extension(conn): Extension<Conn>, Query(q): Params) -> Response {
    if !paired(&host, &conn) {
        return unauthorized();
    }
    let request = match launch::resume(|k| q.get(k).map(String::as_str)) {
        Ok(r) => r,
        Err(e) => return xml(Xml::error(400, &e.to_string())),
    };
    let fingerprint = conn.cert.clone().unwrap_or_default();
    let others = host.permissions(&fingerprint).others;
    // Its own session; another's only when it may (and then it takes it over).
    let resumed = host.streams.acted_on_by(&fingerprint, others, |s| {
        s.launch.rekey(request.key.key, request.key.key_id, conn.remote.ip(), fingerprint.clone());
        s.launch.encrypted_rtsp = request.corever >= 1;
        s.request = None;
    });
    match resumed {
        Some(()) => xml(Xml::ok().el("sessionUrl0", session_url(&host, &conn, request.corever >= 1)).el("resume", 1)),
        None => xml(Xml::error(503, "no session to resume")),
    }
}

async fn cancel(State(host): State<Arc<Host>>, Extension(conn): Extension<Conn>) -> Response {
    if !paired(&host, &conn) {
        return unauthorized();
    }
    // The client's own session; another's only when it may.
    let fingerprint = conn.cert.as_deref().unwrap_or_default();
    if let Some(id) = host.streams.acted_on_by(fingerprint, host.permissions(fingerprint).others, |s| s.id) {
        host.streams.cancel(id);
    }
    xml(Xml::ok().el("cancel", 1))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
