//! The management API (JSON, versioned: `/api/v1/…`): PIN entry, paired clients and their
//! permissions, the app catalog, status, and a stream of events. Served twice: on 127.0.0.1
//! for the CLI (`punktfunk pair`, `punktfunk clients`), every request carrying
//! `Authorization: Bearer <token>` from the owner-only `api-token` file (loopback alone would
//! let any local user pair a device); and inside the console, behind its login.

mod apps;

pub use apps::{Added, AppInfo, Launched, Order};

use crate::admission::{Admission, Peers, connection_budget};
use crate::catalog::art;
use crate::host::Host;
use crate::pin::{GiveError, PIN_LIFETIME, PairOutcome, valid_pin};
use crate::store::Permissions;
use axum::extract::{DefaultBodyLimit, Extension, Path, Query, Request, State};
use axum::handler::Handler;
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use punktfunk_core::control::messages::ReceiveStats;
use punktfunk_core::stream::LiveVideo;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{OpenApi, ToSchema};

/// The API's OpenAPI document, generated from the handlers and types below
/// (`GET /openapi.json`).
#[derive(OpenApi)]
#[openapi(
    info(title = "punktfunk management API", description = "Pairing, paired clients, the app catalog, sessions and events of a punktfunk host."),
    paths(
        pin, pairing, clients, remove_client, rename_client, permit, status, apps::apps, apps::add_app, apps::edit_app,
        apps::remove_app, apps::order_apps, apps::launch_app, apps::art, apps::set_art, apps::remove_art, doctor, logs, events,
        openapi
    ),
    modifiers(&Authorization),
    security(("token" = []), ("console" = []))
)]
pub struct ApiDoc;

/// How callers authorize: the API token (loopback), or a console login (its cookie, and on
/// changes its CSRF token in `X-CSRF-Token`).
struct Authorization;

impl utoipa::Modify for Authorization {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme("token", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
        components.add_security_scheme("console", SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("pf_login"))));
        doc.servers = Some(vec![utoipa::openapi::Server::new(BASE)]);
    }
}

/// What a refused request answers.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApiError {
    /// Why, in words.
    pub error: String,
}

/// A finished pairing (`POST /pin`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Paired {
    /// The client's name.
    pub paired: String,
}

/// How many clients a change touched.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Changed {
    pub changed: usize,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PinRequest {
    pub pin: String,
    /// Which waiting device the PIN is for (name, address or both); needed only when more
    /// than one waits.
    #[serde(default)]
    pub device: Option<String>,
}

/// Who waits for a PIN (`GET /pairing`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Waiting {
    pub devices: Vec<String>,
}

/// A paired client.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ClientInfo {
    pub fingerprint: String,
    pub name: String,
    pub paired_at: u64,
    #[serde(default)]
    pub permissions: Permissions,
}

/// One running session, as `GET /status` lists it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionInfo {
    pub id: u64,
    /// The app's id in the catalog, and its title.
    pub app: u32,
    pub app_title: String,
    /// The paired client's name, and the address it streams to.
    pub client: String,
    pub address: String,
    /// The output's mode ("1280x720@60").
    pub mode: String,
    /// The stream's video ("HEVC, 10-bit 4:2:0, BT.709 limited range"), once one started.
    pub video: Option<String>,
    /// How its frames reach the client ("libx264, frames converted on the CPU").
    pub encoding: Option<String>,
    /// Milliseconds from /launch to the first frame sent, once there was one.
    pub launch_to_first_frame_ms: Option<u64>,
    /// The video over its last second: what it sends (0 while the picture is still).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub live: LiveVideo,
    /// Key frames the client asked for since the launch: each a loss FEC could not repair.
    #[serde(default)]
    pub keyframe_requests: u64,
    /// Reports of frames the client lost (Moonlight's invalidation requests, punktfunk/1's
    /// `frames_lost`), repaired from a picture it held where the encoder can
    /// (`live.stats.repairs`), else with a key frame.
    #[serde(default)]
    pub frames_invalidated: u64,
    /// FEC blocks a Moonlight client needed parity for and rebuilt with it, and those it
    /// lost (its FEC status reports).
    #[serde(default)]
    pub blocks_repaired: u64,
    #[serde(default)]
    pub blocks_lost: u64,
    /// What a punktfunk/1 client last said it received (frames lost and repaired, latency).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub received: Option<ReceiveStats>,
    /// A login stream's stage: "login greeter", "NAME's session" or "between processes".
    #[serde(default)]
    pub login: Option<String>,
}

/// Live figures older than this are of a picture that stopped changing: none are sent.
const LIVE_STALE: std::time::Duration = std::time::Duration::from_secs(3);

/// The host and its sessions.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Status {
    pub name: String,
    pub uniqueid: String,
    pub paired_clients: usize,
    /// The running sessions, in launch order.
    #[serde(default)]
    pub sessions: Vec<SessionInfo>,
    /// Figures of the last video stream that stopped.
    #[schema(value_type = Option<Object>)]
    pub last_video: Option<punktfunk_core::stream::VideoStats>,
    #[schema(value_type = Option<Object>)]
    pub last_audio: Option<punktfunk_core::stream::AudioStats>,
    /// What the last punktfunk/1 client reported receiving.
    #[schema(value_type = Option<Object>)]
    pub last_native_client: Option<punktfunk_core::control::messages::ReceiveStats>,
}

type ApiResult<T> = Result<Json<T>, (StatusCode, Json<ApiError>)>;

fn err(code: StatusCode, msg: impl std::fmt::Display) -> (StatusCode, Json<ApiError>) {
    (code, Json(ApiError { error: msg.to_string() }))
}

/// Where the API's paths start.
pub const BASE: &str = "/api/v1";

/// The largest request body the API reads: its requests are a PIN, a name, a permission set.
const MAX_BODY: usize = 64 * 1024;

/// The API's routes under [`BASE`], for a caller to put behind its own authorization.
pub fn routes() -> Router<Arc<Host>> {
    Router::new()
        .route("/pin", post(pin))
        .route("/pairing", get(pairing))
        .route("/clients", get(clients))
        .route("/clients/{key}", delete(remove_client))
        .route("/clients/{key}/name", put(rename_client))
        .route("/clients/{key}/permissions", put(permit))
        .route("/status", get(status))
        .route("/apps", get(apps::apps).post(apps::add_app))
        .route("/apps/order", put(apps::order_apps))
        .route("/apps/{id}", put(apps::edit_app).delete(apps::remove_app))
        .route("/apps/{id}/launch", post(apps::launch_app))
        .route(
            "/apps/{id}/art",
            get(apps::art)
                .put(apps::set_art.layer(middleware::from_fn(upload_in_time)).layer(DefaultBodyLimit::max(art::MAX_BYTES)))
                .delete(apps::remove_art),
        )
        .route("/doctor", get(doctor))
        .route("/logs", get(logs))
        .route("/events", get(events))
        .route("/openapi.json", get(openapi))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(errors_as_json))
}

/// How long a request's body may take to arrive: a real client sends it at once.
const BODY_TIME: std::time::Duration = std::time::Duration::from_secs(10);
/// How long a picture may take (8 MiB over a slow Wi-Fi).
const UPLOAD_TIME: std::time::Duration = std::time::Duration::from_secs(60);

/// Reads a request's body (at most [`MAX_BODY`], within [`BODY_TIME`]) before its handler
/// runs: a stranger trickling a body holds no connection long, nor fills memory. Box art
/// uploads pass, for [`upload_in_time`] behind the caller's authorization.
pub async fn body_in_time(request: Request, next: Next) -> Response {
    if request.method() == axum::http::Method::PUT && request.uri().path().ends_with("/art") {
        return next.run(request).await;
    }
    read_body(request, next, MAX_BODY, BODY_TIME).await
}

/// [`body_in_time`] for box art: larger, and slower.
async fn upload_in_time(request: Request, next: Next) -> Response {
    read_body(request, next, art::MAX_BYTES, UPLOAD_TIME).await
}

async fn read_body(request: Request, next: Next, limit: usize, time: std::time::Duration) -> Response {
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(time, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await,
        Ok(Err(_)) => err(StatusCode::PAYLOAD_TOO_LARGE, format!("the body is larger than {limit} bytes, or broken")).into_response(),
        Err(_) => err(StatusCode::REQUEST_TIMEOUT, "the body did not arrive in time").into_response(),
    }
}

/// Refusals axum makes itself (a body that is no JSON, too large, a bad query) say why in
/// plain text: as JSON, like every other answer of the API.
async fn errors_as_json(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let json = response.headers().get(header::CONTENT_TYPE).is_some_and(|t| t.as_bytes().starts_with(b"application/json"));
    if !(response.status().is_client_error() || response.status().is_server_error()) || json {
        return response;
    }
    let status = response.status();
    let text = axum::body::to_bytes(response.into_body(), 4096).await.unwrap_or_default();
    let why = String::from_utf8_lossy(&text);
    err(status, if why.is_empty() { status.to_string() } else { why.into_owned() }).into_response()
}

/// The API on loopback, for the bearer of the API token.
pub fn router(host: Arc<Host>) -> Router {
    Router::new()
        .nest(BASE, routes())
        .fallback(not_found)
        .layer(middleware::from_fn(body_in_time))
        .layer(middleware::from_fn_with_state(Arc::clone(&host), authorize))
        .with_state(host)
}

/// What an unknown path answers (JSON, as the rest).
pub async fn not_found() -> Response {
    err(StatusCode::NOT_FOUND, format!("no such API path (the API is under {BASE})")).into_response()
}

async fn authorize(State(host): State<Arc<Host>>, request: Request, next: Next) -> Response {
    let given = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    // Constant-time comparison: the token is a secret.
    let ok = given.is_some_and(|g| aws_lc_rs::constant_time::verify_slices_are_equal(g.as_bytes(), host.api_token.as_bytes()).is_ok());
    if !ok {
        return err(StatusCode::UNAUTHORIZED, "missing or wrong API token (the api-token file in the host's state directory)")
            .into_response();
    }
    next.run(request).await
}

/// Whether the caller may still listen (a console login may end while its event stream
/// runs); put in a request's extensions by the authorization in front.
#[derive(Clone)]
pub struct StillAllowed(pub Arc<dyn Fn() -> bool + Send + Sync>);

/// Serves the API to this user's processes alone (other local users cannot take its
/// connections either), each request's head due within the admission timeout.
pub async fn serve(host: Arc<Host>, listener: tokio::net::TcpListener) {
    let app = router(host);
    let admission = Admission::new("API", Peers::ThisUser, connection_budget());
    loop {
        let (tcp, _, slot) = admission.accept(&listener).await;
        let app = app.clone();
        tokio::spawn(async move {
            let _slot = slot;
            crate::gamestream::http::serve_connection(hyper_util::rt::TokioIo::new(tcp), app).await;
        });
    }
}

/// Gives the PIN a client shows and waits for that pairing to finish.
#[utoipa::path(post, path = "/pin", request_body = PinRequest, responses(
    (status = 200, description = "paired", body = Paired),
    (status = 400, description = "not a PIN", body = ApiError),
    (status = 403, description = "the PIN was wrong or the pairing abandoned", body = ApiError),
    (status = 404, description = "no such device waits", body = ApiError),
    (status = 409, description = "several devices wait: name one", body = ApiError),
    (status = 504, description = "no client used the PIN in time", body = ApiError),
))]
async fn pin(State(host): State<Arc<Host>>, Json(req): Json<PinRequest>) -> ApiResult<Paired> {
    if !valid_pin(&req.pin) {
        return Err(err(StatusCode::BAD_REQUEST, "a PIN is 4 digits"));
    }
    let outcome = match host.pins.give(req.pin, req.device.as_deref()) {
        Ok(outcome) => outcome,
        Err(e @ GiveError::NoSuchDevice(_)) => return Err(err(StatusCode::NOT_FOUND, e)),
        Err(e @ GiveError::WhichDevice(_)) => return Err(err(StatusCode::CONFLICT, e)),
    };
    match tokio::time::timeout(PIN_LIFETIME, outcome).await {
        Ok(Ok(PairOutcome::Paired { client })) => Ok(Json(Paired { paired: client })),
        Ok(Ok(PairOutcome::Failed(reason))) => Err(err(StatusCode::FORBIDDEN, reason)),
        Ok(Err(_)) => Err(err(StatusCode::FORBIDDEN, "the pairing was abandoned")),
        Err(_) => Err(err(StatusCode::GATEWAY_TIMEOUT, "no client used the PIN")),
    }
}

/// The devices waiting for a PIN.
#[utoipa::path(get, path = "/pairing", responses((status = 200, body = Waiting)))]
async fn pairing(State(host): State<Arc<Host>>) -> Json<Waiting> {
    Json(Waiting { devices: host.pins.waiting() })
}

/// The paired clients.
#[utoipa::path(get, path = "/clients", responses((status = 200, body = Vec<ClientInfo>)))]
async fn clients(State(host): State<Arc<Host>>) -> Json<Vec<ClientInfo>> {
    Json(client_list(&host))
}

/// Unpairs the clients `key` names (a name, or ≥ 4 hex digits of a fingerprint) and ends
/// what they stream.
#[utoipa::path(delete, path = "/clients/{key}", params(("key" = String, Path, description = "a client's name or fingerprint prefix")), responses(
    (status = 200, description = "removed", body = Changed),
    (status = 404, description = "no such client", body = ApiError),
))]
async fn remove_client(State(host): State<Arc<Host>>, Path(key): Path<String>) -> ApiResult<Changed> {
    let removed = host.clients.lock().remove(&key).map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    if removed == 0 {
        return Err(err(StatusCode::NOT_FOUND, format!("no client named or fingerprinted {key:?}")));
    }
    // Revoking a device ends what it is streaming, over either protocol.
    for (id, fingerprint) in host.streams.list(|s| (s.id, s.launch.fingerprint.clone())) {
        if !host.clients.lock().is_paired(&fingerprint) {
            tracing::info!(stream = id, "its client was removed: ending the session");
            host.streams.cancel(id);
        }
    }
    Ok(Json(Changed { changed: removed }))
}

/// A client's new name (`PUT /clients/{key}/name`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Rename {
    pub name: String,
}

/// Renames the one client `key` names.
#[utoipa::path(put, path = "/clients/{key}/name", request_body = Rename, params(("key" = String, Path, description = "a client's name or fingerprint prefix")), responses(
    (status = 200, description = "renamed", body = Changed),
    (status = 400, description = "not a name", body = ApiError),
    (status = 404, description = "no such client", body = ApiError),
    (status = 409, description = "the key names several clients", body = ApiError),
))]
async fn rename_client(State(host): State<Arc<Host>>, Path(key): Path<String>, Json(rename): Json<Rename>) -> ApiResult<Changed> {
    let name = rename.name.trim();
    if name.is_empty() || name.chars().count() > crate::store::MAX_NAME || name.chars().any(char::is_control) {
        return Err(err(
            StatusCode::BAD_REQUEST,
            format!("a name has 1 to {} characters, none of them control characters", crate::store::MAX_NAME),
        ));
    }
    let named = host.clients.lock().rename(&key, name);
    changed_one(&key, named)
}

/// The answer to a change of the one client `key` names, from how many it names.
fn changed_one(key: &str, named: std::io::Result<usize>) -> ApiResult<Changed> {
    match named {
        Ok(1) => Ok(Json(Changed { changed: 1 })),
        Ok(0) => Err(err(StatusCode::NOT_FOUND, format!("no client named or fingerprinted {key:?}"))),
        Ok(n) => Err(err(StatusCode::CONFLICT, format!("{key:?} names {n} clients: give more of the fingerprint"))),
        Err(e) => Err(err(StatusCode::INTERNAL_SERVER_ERROR, e)),
    }
}

/// Sets what the one client `key` names may do (the whole set: read it from `GET /clients`
/// first to change one thing). Applies from its next launch, input at once.
#[utoipa::path(put, path = "/clients/{key}/permissions", request_body = Permissions, params(("key" = String, Path, description = "a client's name or fingerprint prefix")), responses(
    (status = 200, description = "changed", body = Changed),
    (status = 400, description = "an app not in the catalog", body = ApiError),
    (status = 404, description = "no such client", body = ApiError),
    (status = 409, description = "the key names several clients", body = ApiError),
))]
async fn permit(State(host): State<Arc<Host>>, Path(key): Path<String>, Json(permissions): Json<Permissions>) -> ApiResult<Changed> {
    let catalog = host.catalog.entries();
    if let Some(unknown) = permissions.apps.iter().flatten().find(|title| !catalog.iter().any(|e| e.app.title == **title)) {
        return Err(err(StatusCode::BAD_REQUEST, format!("no app called {unknown:?} in the catalog")));
    }
    let named = host.clients.lock().permit(&key, &permissions);
    changed_one(&key, named)
}

/// `punktfunk doctor`'s checks, as the running host sees them.
#[utoipa::path(get, path = "/doctor", responses((status = 200, body = Vec<crate::doctor::Check>)))]
async fn doctor(State(host): State<Arc<Host>>) -> Json<Vec<crate::doctor::Check>> {
    let checks = tokio::task::spawn_blocking(move || crate::doctor::run(&host.config, &host.state, true)).await;
    Json(checks.unwrap_or_default())
}

/// One line of the host's log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LogLine {
    /// Lines are numbered from 1 in the order they were written.
    pub seq: u64,
    pub line: String,
}

/// Which log lines (`GET /logs?after=N`).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct After {
    /// Only lines numbered above this.
    #[serde(default)]
    pub after: u64,
}

/// The host's latest log lines (the last 500 at most), oldest first.
#[utoipa::path(get, path = "/logs", params(After), responses(
    (status = 200, body = Vec<LogLine>),
    (status = 400, description = "`after` is no number", body = ApiError),
))]
async fn logs(Query(after): Query<After>) -> Json<Vec<LogLine>> {
    Json(log_after(after.after))
}

fn log_after(seq: u64) -> Vec<LogLine> {
    let lines = punktfunk_core::logging::recent().map(|r| r.after(seq)).unwrap_or_default();
    lines.into_iter().map(|(seq, line)| LogLine { seq, line }).collect()
}

/// The host, its running sessions and the last stream's figures.
#[utoipa::path(get, path = "/status", responses((status = 200, body = Status)))]
async fn status(State(host): State<Arc<Host>>) -> Json<Status> {
    Json(status_of(&host))
}

fn status_of(host: &Host) -> Status {
    let names = host.clients.lock().list().iter().map(|c| (c.fingerprint.clone(), c.name.clone())).collect::<Vec<_>>();
    let catalog = host.catalog.entries();
    let sessions = host.streams.list(|s| SessionInfo {
        id: s.id,
        app: s.launch.app_id,
        app_title: catalog.iter().find(|e| e.id == s.launch.app_id).map(|e| e.app.title.clone()).unwrap_or_default(),
        client: names.iter().find(|(f, _)| *f == s.launch.fingerprint).map(|(_, n)| n.clone()).unwrap_or_default(),
        address: s.launch.client.to_string(),
        mode: s.launch.mode.to_string(),
        video: s.video.clone(),
        encoding: s.encoding.clone(),
        launch_to_first_frame_ms: s.first_frame_at.map(|t| t.duration_since(s.launched_at).as_millis() as u64),
        live: s.live.as_ref().filter(|(at, _)| at.elapsed() < LIVE_STALE).map(|(_, l)| l.clone()).unwrap_or_default(),
        keyframe_requests: s.keyframe_requests,
        frames_invalidated: s.frames_invalidated,
        blocks_repaired: s.blocks_repaired,
        blocks_lost: s.blocks_lost,
        received: s.received.clone(),
        login: s.login.as_ref().map(|l| l.stage.to_string()),
    });
    Status {
        name: host.name.clone(),
        uniqueid: host.uniqueid.clone(),
        paired_clients: host.clients.lock().list().len(),
        sessions,
        last_video: host.streams.last_video.lock().clone(),
        last_audio: host.streams.last_audio.lock().clone(),
        last_native_client: host.streams.last_native.lock().clone(),
    }
}

fn client_list(host: &Host) -> Vec<ClientInfo> {
    host.clients
        .lock()
        .list()
        .iter()
        .map(|c| ClientInfo {
            fingerprint: c.fingerprint.clone(),
            name: c.name.clone(),
            paired_at: c.paired_at,
            permissions: c.permissions.clone(),
        })
        .collect()
}

/// How often the event stream looks for news.
const EVENT_TICK: std::time::Duration = std::time::Duration::from_millis(250);

/// Server-sent events: `pairing` (who waits for a PIN) and `clients` (the paired clients)
/// when they change, `status` (as `GET /status`) every second, `log` with new log lines;
/// each first at once.
#[utoipa::path(get, path = "/events", responses((status = 200, description = "events `pairing` (Waiting), `clients` ([ClientInfo]), `status` (Status) and `log` ([LogLine]), each data a JSON document", content_type = "text/event-stream", body = String)))]
async fn events(State(host): State<Arc<Host>>, allowed: Option<Extension<StillAllowed>>) -> Response {
    struct Watch {
        host: Arc<Host>,
        allowed: Option<StillAllowed>,
        ticks: u64,
        pairing: Option<Vec<String>>,
        clients: Option<Vec<ClientInfo>>,
        /// The last log line sent.
        logged: u64,
        queue: std::collections::VecDeque<Event>,
        interval: tokio::time::Interval,
    }
    let watch = Watch {
        host,
        allowed: allowed.map(|Extension(a)| a),
        ticks: 0,
        pairing: None,
        clients: None,
        logged: 0,
        queue: Default::default(),
        interval: tokio::time::interval(EVENT_TICK),
    };
    let stream = futures_util::stream::unfold(watch, |mut w| async move {
        loop {
            if let Some(event) = w.queue.pop_front() {
                return Some((Ok::<_, std::convert::Infallible>(event), w));
            }
            w.interval.tick().await;
            if w.allowed.as_ref().is_some_and(|a| !(a.0)()) {
                return None;
            }
            let waiting = w.host.pins.waiting();
            if w.pairing.as_ref() != Some(&waiting) {
                w.queue.push_back(json_event("pairing", &Waiting { devices: waiting.clone() }));
                w.pairing = Some(waiting);
            }
            let clients = client_list(&w.host);
            if w.clients.as_ref().map(|c| serde_json::to_value(c).ok()) != Some(serde_json::to_value(&clients).ok()) {
                w.queue.push_back(json_event("clients", &clients));
                w.clients = Some(clients);
            }
            let lines = log_after(w.logged);
            if let Some(last) = lines.last() {
                w.logged = last.seq;
                w.queue.push_back(json_event("log", &lines));
            }
            if w.ticks % 4 == 0 {
                w.queue.push_back(json_event("status", &status_of(&w.host)));
            }
            w.ticks += 1;
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", responses((status = 200, description = "the OpenAPI document", body = Object)))]
async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

fn json_event(name: &str, data: &impl Serialize) -> Event {
    Event::default().event(name).data(serde_json::to_string(data).unwrap_or_default())
}
