//! The web console: the host managed from a browser on the LAN (a phone on the couch
//! included). HTTPS with the host's certificate, on `console_port`, for the addresses
//! `console_access` allows; behind one password; the page is a small script of our own
//! (embedded, no CDN) over the same API the CLI uses, with its events for live figures.
//!
//! Requests that change something must come from the console's own page: the browser's
//! `Origin` must be this host (a form another site posts is refused), and API calls carry
//! the login's CSRF token, which another site cannot read.

pub mod access;
pub mod auth;
mod page;

pub use access::ConsoleAccess;
pub use auth::{PASSWORD_FILE, Password};

use crate::admission::{Admission, PER_ADDRESS, Peers, connection_budget};
use crate::api::{self, StillAllowed};
use crate::host::Host;
use auth::{Failures, Login, Logins};
use axum::extract::{Extension, Form, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// The console's share of the host's state.
pub struct Console {
    pub password: Password,
    logins: Logins,
    failures: Failures,
    /// Password hashing is slow on purpose: a few at once, whoever asks (each permit held
    /// by the hashing itself, so a client that leaves does not free it early).
    hashing: Arc<tokio::sync::Semaphore>,
    /// Setting the first password is one step (checked and set together).
    setting: parking_lot::Mutex<()>,
}

impl Console {
    pub fn new(state: &Path) -> Self {
        Self {
            password: Password::new(state.join(PASSWORD_FILE)),
            logins: Logins::default(),
            failures: Failures::default(),
            hashing: Arc::new(tokio::sync::Semaphore::new(2)),
            setting: parking_lot::Mutex::new(()),
        }
    }

    /// The login the request's cookie names, if live.
    fn login(&self, headers: &HeaderMap) -> Option<(String, Login)> {
        let token = cookie(headers, COOKIE)?;
        let login = self.logins.check(token, Instant::now(), self.password.stamp())?;
        Some((token.to_owned(), login))
    }
}

const COOKIE: &str = "pf_login";

/// The connection's two ends.
#[derive(Clone, Copy)]
struct Peer {
    remote: SocketAddr,
    local: SocketAddr,
}

impl Peer {
    /// Whether the far end is a process of the user the host runs as (or root) on this
    /// machine: only they may set the first password (not another local user, nor whatever
    /// forwards connections to loopback).
    fn is_owner(&self) -> bool {
        let me = nix::unistd::geteuid().as_raw();
        // An IPv4 client of the dual-stack socket has its socket in the IPv4 table.
        let canonical = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
        let (remote, local) = (canonical(self.remote), canonical(self.local));
        remote.ip().is_loopback() && crate::local_peer::owner(remote, local).is_some_and(|uid| uid == me || uid == 0)
    }
}

/// Serves the console on `listener` to the addresses `console_access` allows.
pub async fn serve(host: Arc<Host>, listener: tokio::net::TcpListener, tls: Arc<rustls::ServerConfig>) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let app = router(Arc::clone(&host));
    let admission = Admission::new("console", Peers::PerAddress(PER_ADDRESS), connection_budget());
    let access = host.config.console_access;
    loop {
        let (tcp, remote, slot) = admission.accept(&listener).await;
        // An IPv4 client of the dual-stack socket, as IPv4 (in the log, in the counts).
        let remote = SocketAddr::new(remote.ip().to_canonical(), remote.port());
        if !access.admits(remote.ip()) {
            admission.refused(remote, "an address console_access does not allow");
            continue;
        }
        let Ok(local) = tcp.local_addr() else { continue };
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let Some(tls) = crate::gamestream::http::handshake(&acceptor, tcp, remote).await else { return };
            let svc = app.layer(Extension(Peer { remote, local }));
            crate::gamestream::http::serve_connection(hyper_util::rt::TokioIo::new(tls), svc).await;
        });
    }
}

pub fn router(host: Arc<Host>) -> Router {
    let api = api::routes().fallback(api::not_found).layer(middleware::from_fn_with_state(Arc::clone(&host), authorize));
    Router::new()
        .route("/", get(index))
        .route("/login", post(login))
        .route("/setup", post(setup))
        .route("/logout", post(logout))
        .route("/console.js", get(|| async { asset("text/javascript", page::SCRIPT) }))
        .route("/console.css", get(|| async { asset("text/css", page::STYLE) }))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .nest(api::BASE, api)
        .layer(middleware::from_fn(api::body_in_time))
        .layer(middleware::from_fn(same_origin))
        .layer(middleware::from_fn(hardened))
        .with_state(host)
}

/// Headers every answer carries: only this host's own script and styles run, the page is
/// never framed (clickjacking), nothing is cached or sniffed, no address leaks to other
/// sites (`same-origin`, not `no-referrer`: under that, browsers send `Origin: null` with
/// the page's own forms).
async fn hardened(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// A request that changes something must come from a page of this host: its `Origin` (every
/// browser sends one with such requests) names the host the request is addressed to.
async fn same_origin(request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    let headers = request.headers();
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (origin, host) {
        (Some(origin), Some(host)) if origin.strip_prefix("https://") == Some(host) => next.run(request).await,
        _ => refusal(StatusCode::FORBIDDEN, "this request did not come from the console's own page"),
    }
}

/// The API inside the console: for a logged-in browser; a change also needs the login's
/// CSRF token in `X-CSRF-Token`.
async fn authorize(State(host): State<Arc<Host>>, mut request: Request, next: Next) -> Response {
    let Some((token, login)) = host.console.login(request.headers()) else {
        return refusal(StatusCode::UNAUTHORIZED, "log in to the console first");
    };
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        let given = request.headers().get("x-csrf-token").map(HeaderValue::as_bytes).unwrap_or_default();
        if aws_lc_rs::constant_time::verify_slices_are_equal(given, login.csrf.as_bytes()).is_err() {
            return refusal(StatusCode::FORBIDDEN, "missing or wrong CSRF token");
        }
    }
    let still = Arc::clone(&host);
    let allowed = move || still.console.logins.is_live(&token, Instant::now(), still.console.password.stamp());
    request.extensions_mut().insert(StillAllowed(Arc::new(allowed)));
    next.run(request).await
}

fn refusal(code: StatusCode, why: &str) -> Response {
    (code, Json(serde_json::json!({ "error": why }))).into_response()
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

fn html(code: StatusCode, body: String) -> Response {
    (code, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

/// The console for a logged-in browser; else the login form, or where no password is set
/// yet, the form to set one (on this machine only: the first on the LAN to come would set
/// it otherwise).
async fn index(State(host): State<Arc<Host>>, Extension(peer): Extension<Peer>, headers: HeaderMap) -> Response {
    if let Some((_, login)) = host.console.login(&headers) {
        return html(StatusCode::OK, page::console(&host.name, &login.csrf));
    }
    if host.console.password.is_set() {
        return html(StatusCode::OK, page::login(&host.name, None));
    }
    match peer.is_owner() {
        true => html(StatusCode::OK, page::setup(&host.name, None)),
        false => html(StatusCode::OK, page::no_password(&host.name)),
    }
}

#[derive(Deserialize)]
struct LoginForm {
    password: String,
}

async fn login(State(host): State<Arc<Host>>, Extension(peer): Extension<Peer>, Form(form): Form<LoginForm>) -> Response {
    let (console, ip) = (&host.console, peer.remote.ip());
    // Counted as a failure until it is found right: a client that leaves mid-check has
    // still spent its try.
    if let Err(wait) = console.failures.attempt(ip, Instant::now()) {
        let why = format!("Too many wrong passwords: try again in {} s.", wait.as_secs() + 1);
        return html(StatusCode::TOO_MANY_REQUESTS, page::login(&host.name, Some(&why)));
    }
    let Ok(turn) = Arc::clone(&console.hashing).acquire_owned().await else {
        return refusal(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    };
    let checking = Arc::clone(&host);
    let checked = tokio::task::spawn_blocking(move || {
        let _turn = turn;
        checking.console.password.verify(&form.password)
    })
    .await;
    let Ok(Some(stamp)) = checked else {
        tracing::warn!(peer = %peer.remote, "console: wrong password");
        return html(StatusCode::UNAUTHORIZED, page::login(&host.name, Some("Wrong password.")));
    };
    console.failures.succeeded(ip);
    tracing::info!(peer = %peer.remote, "console: logged in");
    logged_in(console, stamp)
}

/// Where a login goes: the console, with its cookie (only over HTTPS, never to other
/// sites' requests, out of scripts' reach).
fn logged_in(console: &Console, stamp: auth::Stamp) -> Response {
    let token = console.logins.start(Instant::now(), stamp);
    let cookie = format!("{COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}", 7 * 24 * 3600);
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}

#[derive(Deserialize)]
struct SetupForm {
    password: String,
    again: String,
}

async fn setup(State(host): State<Arc<Host>>, Extension(peer): Extension<Peer>, Form(form): Form<SetupForm>) -> Response {
    if !peer.is_owner() {
        return html(StatusCode::FORBIDDEN, page::no_password(&host.name));
    }
    if form.password != form.again {
        return html(StatusCode::BAD_REQUEST, page::setup(&host.name, Some("The two passwords differ.")));
    }
    let Ok(turn) = Arc::clone(&host.console.hashing).acquire_owned().await else {
        return refusal(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    };
    let setting = Arc::clone(&host);
    let set = tokio::task::spawn_blocking(move || {
        let (_turn, _one) = (turn, setting.console.setting.lock());
        match setting.console.password.is_set() {
            true => Err("A password is set already: log in with it.".to_owned()),
            false => setting.console.password.set(&form.password).map_err(|e| format!("{e}.")),
        }
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    match (set, host.console.password.stamp()) {
        (Ok(()), Some(stamp)) => {
            tracing::info!("console: password set");
            logged_in(&host.console, stamp)
        }
        (Err(why), Some(_)) => html(StatusCode::CONFLICT, page::login(&host.name, Some(&why))),
        (Err(why), None) => html(StatusCode::BAD_REQUEST, page::setup(&host.name, Some(&why))),
        (Ok(()), None) => html(StatusCode::INTERNAL_SERVER_ERROR, page::setup(&host.name, Some("The password could not be kept."))),
    }
}

async fn logout(State(host): State<Arc<Host>>, headers: HeaderMap) -> Response {
    if let Some(token) = cookie(&headers, COOKIE) {
        host.console.logins.end(token);
    }
    let clear = format!("{COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, clear)], Redirect::to("/")).into_response()
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_its_cookie_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("theme=dark; pf_login_old=x"));
        assert_eq!(cookie(&headers, COOKIE), None);
        headers.append(header::COOKIE, HeaderValue::from_static("a=b;  pf_login=abc123 ; c=d"));
        assert_eq!(cookie(&headers, COOKIE), Some("abc123"));
    }
}
