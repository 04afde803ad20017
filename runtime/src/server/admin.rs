//! The admin API (`/api/v1/admin/...`): deploy, inspect, roll back, remove and
//! dry-run backends. Every route needs `Authorization: Bearer <token>`; with
//! no token configured the whole API answers 403 and is never open.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Multipart, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::reply::error;
use crate::authoring::dry_run;
use crate::authoring::fixtures::FixtureFile;
use crate::deploy::{DeployError, UploadSettings};

pub fn routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    let body_limit = state.deployer.max_component_bytes() + (4 << 20);
    Router::new()
        .route("/backends", get(list))
        .route("/backends/{name}", get(show).put(upload).delete(remove))
        .route("/backends/{name}/rollback", post(rollback))
        .route("/backends/{name}/try", post(try_backend))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(state, authenticate))
}

fn deploy_error(e: DeployError) -> Response {
    let status = match &e {
        DeployError::Invalid(_) | DeployError::FixturesFailed(_) => StatusCode::UNPROCESSABLE_ENTITY,
        DeployError::Conflict(_) => StatusCode::CONFLICT,
        DeployError::NotFound(_) => StatusCode::NOT_FOUND,
        DeployError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        DeployError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
        DeployError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, e.to_string())
}

/// Compares without an early exit, so timing does not reveal the token.
fn same_token(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn authenticate(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    match token_refusal(&state, &headers) {
        None => next.run(request).await,
        Some(refused) => refused,
    }
}

/// The admin token's check (the admin API, and `/metrics` when it is not
/// open): nothing when the token is right, else the answer to give: 403 when
/// there is no token to check against, 401 for a wrong or missing one.
pub(super) fn token_refusal(state: &AppState, headers: &HeaderMap) -> Option<Response> {
    let Some(expected) = &state.admin_token else {
        let disabled = "the admin API is disabled: set SMSGW_ADMIN_TOKEN or admin_token_file";
        return Some(error(StatusCode::FORBIDDEN, disabled));
    };
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(token) if same_token(token.as_bytes(), expected.as_bytes()) => None,
        _ => Some((StatusCode::UNAUTHORIZED, [("www-authenticate", "Bearer")], "").into_response()),
    }
}

/// One backend as the admin API shows it.
async fn describe(state: &AppState, name: &str) -> Result<Value, DeployError> {
    let mounted = state.registry.get(name);
    let versions = state.deployer.versions(name).await?;
    if mounted.is_none() && versions.is_empty() {
        return Err(DeployError::NotFound(format!("no backend named '{name}'")));
    }
    let active_settings = versions
        .iter()
        .find(|v| v.active)
        .and_then(|v| serde_json::from_str::<UploadSettings>(&v.settings).ok())
        .map(|s| s.redacted());
    let config = match (&active_settings, &mounted) {
        (Some(s), _) => s.clone(),
        (None, Some(m)) => json!({
            "allowed_hosts": m.config.allowed_hosts,
            "config": m.config.config,
            "secrets": crate::secrets::redacted_names(m.config.secrets.keys()),
            "limits": m.config.limits,
        }),
        (None, None) => Value::Null,
    };
    Ok(json!({
        "name": name,
        "source": if state.deployer.is_from_config(name) { "config" } else { "upload" },
        "mounted": mounted.is_some(),
        "active_version": mounted.as_ref().and_then(|m| m.version),
        "sha256": mounted.as_ref().map(|m| m.sha256.clone()),
        "size": mounted.as_ref().map(|m| m.size),
        "component": mounted.as_ref().map(|m| m.source.clone()),
        "versions": versions,
        "config": config,
        "counters": mounted.as_ref().map(|m| {
            let mut counters = m.stats().to_json();
            counters["log_lines_dropped"] = m.sandbox().guest_log().dropped().into();
            counters
        }),
        "reserved_instance_slots": mounted.as_ref().map(|m| m.sandbox().reserved_slots()),
        "paused_until": mounted.as_ref().and_then(|m| m.paused_until()),
    }))
}

async fn list(State(state): State<Arc<AppState>>) -> Response {
    let mut out = Vec::new();
    for name in state.registry.names() {
        match describe(&state, &name).await {
            Ok(v) => out.push(v),
            Err(e) => return deploy_error(e),
        }
    }
    Json(json!({ "backends": out })).into_response()
}

async fn show(State(state): State<Arc<AppState>>, Path(name): Path<String>) -> Response {
    match describe(&state, &name).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => deploy_error(e),
    }
}

/// `PUT` with multipart (`component`, `config`, optional `fixtures`), or a
/// JSON body of settings alone to reconfigure the active component.
async fn upload(State(state): State<Arc<AppState>>, Path(name): Path<String>, request: Request) -> Response {
    let content_type =
        request.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let (wasm, settings, fixtures) = if content_type.starts_with("multipart/form-data") {
        let multipart = match Multipart::from_request(request, &state).await {
            Ok(m) => m,
            Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
        };
        match read_parts(multipart).await {
            Ok(parts) => parts,
            Err(r) => return r,
        }
    } else if content_type.starts_with("application/json") {
        let bytes = match axum::body::to_bytes(request.into_body(), 1 << 20).await {
            Ok(b) => b,
            Err(_) => return error(StatusCode::PAYLOAD_TOO_LARGE, "settings larger than 1 MiB"),
        };
        match serde_json::from_slice::<UploadSettings>(&bytes) {
            Ok(s) => (None, s, None),
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid settings: {e}")),
        }
    } else {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send multipart/form-data with 'component' (the .wasm) and 'config' (JSON), or JSON settings alone",
        );
    };
    match state.deployer.upload(&name, wasm, settings, fixtures).await {
        Ok(report) => (StatusCode::OK, Json(report)).into_response(),
        Err(e) => deploy_error(e),
    }
}

type Parts = (Option<Vec<u8>>, UploadSettings, Option<FixtureFile>);

async fn read_parts(mut multipart: Multipart) -> Result<Parts, Response> {
    let mut wasm = None;
    let mut settings = None;
    let mut fixtures = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(error(e.status(), e.body_text())),
        };
        let name = field.name().unwrap_or("").to_string();
        let bytes = field.bytes().await.map_err(|e| error(e.status(), e.body_text()))?;
        match name.as_str() {
            "component" => wasm = Some(bytes.to_vec()),
            "config" => {
                settings = Some(
                    serde_json::from_slice::<UploadSettings>(&bytes)
                        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("invalid 'config' part: {e}")))?,
                )
            }
            "fixtures" => {
                fixtures = Some(
                    serde_json::from_slice::<FixtureFile>(&bytes)
                        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("invalid 'fixtures' part: {e}")))?,
                )
            }
            other => {
                return Err(error(StatusCode::BAD_REQUEST, format!("unexpected part '{other}'")));
            }
        }
    }
    if wasm.is_none() {
        return Err(error(StatusCode::BAD_REQUEST, "missing 'component' part (the .wasm file)"));
    }
    Ok((wasm, settings.unwrap_or_default(), fixtures))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RollbackRequest {
    version: Option<i64>,
}

async fn rollback(State(state): State<Arc<AppState>>, Path(name): Path<String>, body: axum::body::Bytes) -> Response {
    let req: RollbackRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RollbackRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid body: {e}")),
        }
    };
    match state.deployer.rollback(&name, req.version).await {
        Ok(v) => Json(json!({ "name": name, "active_version": v.version, "sha256": v.sha256 })).into_response(),
        Err(e) => deploy_error(e),
    }
}

async fn remove(State(state): State<Arc<AppState>>, Path(name): Path<String>) -> Response {
    match state.deployer.delete(&name).await {
        Ok(failed) => Json(json!({ "name": name, "deleted": true, "queued_messages_failed": failed })).into_response(),
        Err(e) => deploy_error(e),
    }
}

async fn try_backend(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: Result<Json<dry_run::TryRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let Some(backend) = state.registry.get(&name) else {
        return error(StatusCode::NOT_FOUND, format!("no backend named '{name}'"));
    };
    match dry_run::run(&state.registry, &backend, req).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, e),
    }
}

use axum::extract::FromRequest as _;
