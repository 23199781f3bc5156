//! The public contract: the event catalog and the schema files, for download by any tool.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::http::error::ApiError;
use crate::http::state::AppState;

const SCHEMA_CACHE: &str = "public, max-age=300";

/// `GET /v1/events`: every event with its status, description and payload schema URL.
pub async fn list_events(State(state): State<AppState>) -> Json<Value> {
    let c = &state.catalog;
    let events: Vec<Value> = c
        .events()
        .iter()
        .map(|e| {
            json!({
                "name": e.name,
                "status": e.status,
                "description": e.description,
                "schemaUrl": c.schema_url(&e.schema),
            })
        })
        .collect();
    let wrong: Vec<Value> = c
        .wrong_names()
        .iter()
        .map(|w| json!({"name": w.name, "use": w.use_instead, "why": w.why}))
        .collect();
    Json(json!({
        "contractVersion": c.contract_version(),
        "events": events,
        "subscribable": c.subscribable_patterns(),
        "wrongNames": wrong,
    }))
}

/// `GET /v1/events/{name}`: one event with its schema and examples.
pub async fn get_event(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let c = &state.catalog;
    let Some(e) = c.event(&name) else {
        let hint = crate::catalog::suggest(c, &name)
            .map(|s| format!("; did you mean '{s}'?"))
            .unwrap_or_default();
        return Err(ApiError::not_found(format!(
            "'{name}' is not an event name{hint}"
        )));
    };
    Ok(Json(json!({
        "name": e.name,
        "status": e.status,
        "description": e.description,
        "schemaUrl": c.schema_url(&e.schema),
        "schema": c.files().get(&e.schema).map(|f| &f.json),
        "examples": c.examples(&e.name),
    })))
}

/// `GET /v1/schemas`: the index of served schema files.
pub async fn schema_index(State(state): State<AppState>) -> Json<Value> {
    let c = &state.catalog;
    let files: Vec<Value> = c
        .files()
        .iter()
        .map(|(path, f)| {
            json!({
                "path": path,
                "url": c.schema_url(path),
                "title": f.json.get("title"),
                "etag": f.etag,
            })
        })
        .collect();
    Json(json!({"contractVersion": c.contract_version(), "schemas": files}))
}

/// `GET /v1/schemas/{*path}`: one schema file, with ETag and Cache-Control.
pub async fn schema_file(
    State(state): State<AppState>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(file) = state.catalog.files().get(path.trim_start_matches('/')) else {
        return Err(ApiError::not_found(format!(
            "no schema file '{path}'; GET /v1/schemas lists them"
        )));
    };
    let etag = HeaderValue::from_str(&file.etag).map_err(|e| ApiError::Internal(e.into()))?;
    let cache = HeaderValue::from_static(SCHEMA_CACHE);
    if etag_matches(&headers, &file.etag) {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag), (header::CACHE_CONTROL, cache)],
        )
            .into_response());
    }
    let content_type = if path == "catalog.json" {
        "application/json"
    } else {
        "application/schema+json"
    };
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::ETAG, etag),
            (header::CACHE_CONTROL, cache),
        ],
        file.bytes.clone(),
    )
        .into_response())
}

/// Does `If-None-Match` name this ETag (or `*`)? Weak comparison, as RFC 9110 asks for GET.
fn etag_matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == etag)
}
