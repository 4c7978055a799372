//! The app catalog's endpoints: list, add, change, reorder, remove and test-launch
//! configured apps (written to the configuration file), and their box art.

use super::{ApiError, ApiResult, Changed, err};
use crate::catalog::Source;
use crate::catalog::art;
use crate::catalog::edit::{self, AppEdit, Slot};
use crate::host::Host;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

/// One app of the catalog, as the API lists it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AppInfo {
    pub id: u32,
    pub title: String,
    pub source: crate::catalog::Source,
    pub command: Vec<String>,
    /// Box art clients get for it (a file the host can read).
    #[schema(value_type = Option<String>)]
    pub box_art: Option<std::path::PathBuf>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub working_dir: Option<std::path::PathBuf>,
}

/// The app catalog: configured apps and what the scanners found.
#[utoipa::path(get, path = "/apps", responses((status = 200, body = Vec<AppInfo>)))]
pub(super) async fn apps(State(host): State<Arc<Host>>) -> Json<Vec<AppInfo>> {
    let entries = tokio::task::spawn_blocking(move || host.catalog.entries()).await.unwrap_or_default();
    Json(
        entries
            .into_iter()
            .map(|e| AppInfo {
                id: e.id,
                title: e.app.title,
                source: e.source,
                command: e.app.command,
                box_art: e.app.image,
                working_dir: e.app.working_dir,
            })
            .collect(),
    )
}

/// A new app's id.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Added {
    pub id: u32,
}

/// The configured apps after Desktop, by id, in their new order.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Order {
    pub ids: Vec<u32>,
}

/// How a test launch went.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Launched {
    /// It started and kept running a moment (the session was then ended).
    pub started: bool,
}

/// A change of the configured apps, written to the configuration file (its comments kept).
async fn edit_catalog(
    host: Arc<Host>,
    change: impl FnOnce(&std::path::Path) -> anyhow::Result<crate::config::Config> + Send + 'static,
) -> Result<(), (StatusCode, Json<ApiError>)> {
    let edited = tokio::task::spawn_blocking(move || host.catalog.edit(|| change(&host.config_path))).await;
    match edited {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(err(StatusCode::BAD_REQUEST, e)),
        Err(e) => Err(err(StatusCode::INTERNAL_SERVER_ERROR, e)),
    }
}

/// The configured app `id` names (found apps are the scanners', not edited here).
fn configured_slot(host: &Host, id: u32) -> Result<Slot, (StatusCode, Json<ApiError>)> {
    match Slot::of(id) {
        Some(slot) if host.catalog.app(id).is_some() => Ok(slot),
        None if host.catalog.app(id).is_some() => {
            Err(err(StatusCode::CONFLICT, "a scanner found this app: change it in its launcher (or give a configured app its title)"))
        }
        _ => Err(err(StatusCode::NOT_FOUND, format!("no app {id}"))),
    }
}

/// Adds an app to the configuration, after the others.
#[utoipa::path(post, path = "/apps", request_body = AppEdit, responses(
    (status = 200, description = "added", body = Added),
    (status = 400, description = "no app to save, or its title is taken", body = ApiError),
))]
pub(super) async fn add_app(State(host): State<Arc<Host>>, Json(app): Json<AppEdit>) -> ApiResult<Added> {
    app.check().map_err(|e| err(StatusCode::BAD_REQUEST, e))?;
    let title = app.title.trim().to_owned();
    edit_catalog(Arc::clone(&host), move |path| edit::add(path, &app)).await?;
    let id = host.catalog.entries().into_iter().find(|e| e.source == Source::Config && e.app.title == title).map(|e| e.id);
    Ok(Json(Added { id: id.unwrap_or_default() }))
}

/// Changes a configured app's title, command, working directory and box art.
#[utoipa::path(put, path = "/apps/{id}", request_body = AppEdit, params(("id" = u32, Path, description = "the app's id")), responses(
    (status = 200, description = "changed", body = Changed),
    (status = 400, description = "no app to save, or its title is taken", body = ApiError),
    (status = 404, description = "no such app", body = ApiError),
    (status = 409, description = "a found app, not a configured one", body = ApiError),
))]
pub(super) async fn edit_app(State(host): State<Arc<Host>>, Path(id): Path<u32>, Json(app): Json<AppEdit>) -> ApiResult<Changed> {
    let slot = configured_slot(&host, id)?;
    app.check().map_err(|e| err(StatusCode::BAD_REQUEST, e))?;
    edit_catalog(host, move |path| edit::replace(path, slot, &app)).await?;
    Ok(Json(Changed { changed: 1 }))
}

/// Removes a configured app (not the Desktop).
#[utoipa::path(delete, path = "/apps/{id}", params(("id" = u32, Path, description = "the app's id")), responses(
    (status = 200, description = "removed", body = Changed),
    (status = 400, description = "the Desktop stays", body = ApiError),
    (status = 404, description = "no such app", body = ApiError),
    (status = 409, description = "a found app, not a configured one", body = ApiError),
))]
pub(super) async fn remove_app(State(host): State<Arc<Host>>, Path(id): Path<u32>) -> ApiResult<Changed> {
    let Slot::App(index) = configured_slot(&host, id)? else {
        return Err(err(StatusCode::BAD_REQUEST, "the Desktop stays (change its command instead)"));
    };
    edit_catalog(host, move |path| edit::remove(path, index)).await?;
    Ok(Json(Changed { changed: 1 }))
}

/// Puts the configured apps after the Desktop in a new order (their ids change with it).
#[utoipa::path(put, path = "/apps/order", request_body = Order, responses(
    (status = 200, description = "reordered", body = Changed),
    (status = 400, description = "not every configured app once", body = ApiError),
))]
pub(super) async fn order_apps(State(host): State<Arc<Host>>, Json(order): Json<Order>) -> ApiResult<Changed> {
    let indices: Option<Vec<usize>> = order
        .ids
        .iter()
        .map(|&id| match Slot::of(id) {
            Some(Slot::App(i)) => Some(i),
            _ => None,
        })
        .collect();
    let indices = indices.ok_or_else(|| err(StatusCode::BAD_REQUEST, "the order names configured apps after the Desktop only"))?;
    let n = indices.len();
    edit_catalog(host, move |path| edit::reorder(path, &indices)).await?;
    Ok(Json(Changed { changed: n }))
}

/// Starts the app in a session of its own (1280x720 at 60 Hz, no client), waits until it
/// has started and kept running a moment, and ends the session: does its command work?
#[utoipa::path(post, path = "/apps/{id}/launch", params(("id" = u32, Path, description = "the app's id")), responses(
    (status = 200, description = "it started", body = Launched),
    (status = 404, description = "no such app", body = ApiError),
    (status = 422, description = "it did not start, and why", body = ApiError),
    (status = 503, description = "the host streams as many sessions as it allows", body = ApiError),
))]
pub(super) async fn launch_app(State(host): State<Arc<Host>>, Path(id): Path<u32>) -> ApiResult<Launched> {
    let app = host.catalog.app(id).ok_or_else(|| err(StatusCode::NOT_FOUND, format!("no app {id}")))?;
    let mode = punktfunk_core::mode::Mode::at_fps(1280, 720, 60).map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    let client = std::net::IpAddr::from([127, 0, 0, 1]);
    let launch = crate::stream::Launch::new(id, mode, rand::random(), 0, client, format!("test launch of app {id}"));
    let launched = tokio::task::spawn_blocking(move || {
        let session = host.streams.launch(launch, &app)?;
        host.streams.cancel(session);
        anyhow::Ok(())
    })
    .await
    .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    match launched {
        Ok(()) => Ok(Json(Launched { started: true })),
        Err(e) if e.downcast_ref::<crate::stream::Busy>().is_some() => Err(err(StatusCode::SERVICE_UNAVAILABLE, e)),
        Err(e) => Err(err(StatusCode::UNPROCESSABLE_ENTITY, e)),
    }
}

/// A picture (PNG or JPEG), as box art travels.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct Picture(#[allow(dead_code)] Vec<u8>);

/// An app's box art, as clients get it (found apps' too).
#[utoipa::path(get, path = "/apps/{id}/art", params(("id" = u32, Path, description = "the app's id")), responses(
    (status = 200, description = "the picture", content((Picture = "image/png"), (Picture = "image/jpeg"))),
    (status = 404, description = "no such app, or it has no art", body = ApiError),
))]
pub(super) async fn art(State(host): State<Arc<Host>>, Path(id): Path<u32>) -> Response {
    let image = host.catalog.app(id).and_then(|a| a.image);
    let read = match image {
        Some(path) => tokio::task::spawn_blocking(move || art::read(&path)).await.ok().flatten(),
        None => None,
    };
    match read {
        Some((kind, bytes)) => ([(header::CONTENT_TYPE, kind)], bytes).into_response(),
        None => err(StatusCode::NOT_FOUND, format!("app {id} has no box art")).into_response(),
    }
}

/// Gives a configured app new box art: the picture is taken as sent (PNG or JPEG, at most
/// 8 MiB), brought down to Moonlight's 628x888 poster where larger, and kept in the host's
/// state directory.
#[utoipa::path(put, path = "/apps/{id}/art", params(("id" = u32, Path, description = "the app's id")),
    request_body(content((Picture = "image/png"), (Picture = "image/jpeg"))), responses(
    (status = 200, description = "the app has it", body = Changed),
    (status = 400, description = "no PNG or JPEG picture", body = ApiError),
    (status = 404, description = "no such app", body = ApiError),
    (status = 409, description = "a found app, not a configured one", body = ApiError),
    (status = 413, description = "larger than 8 MiB", body = ApiError),
))]
pub(super) async fn set_art(State(host): State<Arc<Host>>, Path(id): Path<u32>, upload: Bytes) -> ApiResult<Changed> {
    let slot = configured_slot(&host, id)?;
    let dir = art::dir(&host.state);
    // One picture at a time: decoding one holds up to a few hundred MB, and a prune must not
    // take a file saved but not yet named.
    let one = ART.clone().lock_owned().await;
    let saved = tokio::task::spawn_blocking(move || art::save(&dir, &upload)).await;
    let path = match saved {
        Ok(Ok(path)) => path,
        Ok(Err(e @ art::Refused::Save(_))) => return Err(err(StatusCode::INTERNAL_SERVER_ERROR, e)),
        Ok(Err(e)) => return Err(err(StatusCode::BAD_REQUEST, e)),
        Err(e) => return Err(err(StatusCode::INTERNAL_SERVER_ERROR, e)),
    };
    edit_art(host, slot, Some(path), one).await
}

/// Art changes one at a time.
static ART: std::sync::LazyLock<Arc<tokio::sync::Mutex<()>>> = std::sync::LazyLock::new(Arc::default);

/// Takes a configured app's box art away.
#[utoipa::path(delete, path = "/apps/{id}/art", params(("id" = u32, Path, description = "the app's id")), responses(
    (status = 200, description = "the app has none", body = Changed),
    (status = 404, description = "no such app", body = ApiError),
    (status = 409, description = "a found app, not a configured one", body = ApiError),
))]
pub(super) async fn remove_art(State(host): State<Arc<Host>>, Path(id): Path<u32>) -> ApiResult<Changed> {
    let slot = configured_slot(&host, id)?;
    let one = ART.clone().lock_owned().await;
    edit_art(host, slot, None, one).await
}

/// Names `image` as the art of the app in `slot`, then removes uploaded art no configured
/// app of the new configuration names (within the same edit).
async fn edit_art(
    host: Arc<Host>,
    slot: Slot,
    image: Option<std::path::PathBuf>,
    _one: tokio::sync::OwnedMutexGuard<()>,
) -> ApiResult<Changed> {
    let dir = art::dir(&host.state);
    edit_catalog(host, move |path| {
        let config = edit::set_image(path, slot, image.as_deref())?;
        let used: Vec<_> = std::iter::once(&config.desktop).chain(&config.apps).filter_map(|a| a.image.clone()).collect();
        art::prune(&dir, &used);
        Ok(config)
    })
    .await?;
    Ok(Json(Changed { changed: 1 }))
}
