//! The public contract: the event catalog and the schema files, for download by any tool.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::catalog::{Catalog, EventDef, family_of, unknown_event_message};
use crate::http::error::ApiError;
use crate::http::state::AppState;

const SCHEMA_CACHE: &str = "public, max-age=300";

/// One event as the catalog routes show it: its status *on this bridge*, the engines that emit
/// it (configured here or not) under their own names, and why it cannot fire when it cannot.
fn event_json(c: &Catalog, e: &EventDef) -> Value {
    let mut v = json!({
        "name": e.name,
        "family": family_of(&e.name),
        "status": c.status(e),
        "optIn": e.opt_in,
        "description": e.description,
        "schemaUrl": c.schema_url(&e.schema),
        "sources": c.sources().emitters(&e.name),
    });
    if let Some(reason) = c.reserved_reason(&e.name) {
        v["reservedReason"] = Value::String(reason);
    }
    v
}

/// The engines known to this bridge, and whether (and at which version) each feeds it.
fn sources_json(c: &Catalog) -> Value {
    let configured: Vec<Value> = c
        .sources()
        .configured()
        .map(|(def, conf)| {
            json!({
                "engine": def.engine,
                "title": def.title,
                "version": conf.spec.version.as_ref().map(ToString::to_string),
                "effectiveVersion": conf.version.to_string(),
                "ingestPath": def.ingest_path,
            })
        })
        .collect();
    let known: Vec<Value> = c
        .sources()
        .known()
        .iter()
        .map(|def| {
            json!({
                "engine": def.engine,
                "title": def.title,
                "homepage": def.homepage,
                "current": def.current.to_string(),
                "configured": c.sources().is_configured(&def.engine),
                "ingestPath": def.ingest_path,
                "schemaUrl": c.schema_url(&format!("sources/{}.json", def.engine)),
            })
        })
        .collect();
    json!({"selection": c.sources().selection(), "configured": configured, "known": known})
}

/// `GET /v1/events`: every event with its status on this bridge, the engines that emit it, its
/// description and payload schema URL.
pub async fn list_events(State(state): State<AppState>) -> Json<Value> {
    let c = &state.catalog;
    let events: Vec<Value> = c.events().iter().map(|e| event_json(c, e)).collect();
    let wrong: Vec<Value> = c
        .wrong_names()
        .iter()
        .map(|w| json!({"name": w.name, "use": w.use_instead, "why": w.why}))
        .collect();
    Json(json!({
        "contractVersion": c.contract_version(),
        "sources": sources_json(c),
        "events": events,
        "subscribable": c.subscribable_patterns(),
        "wrongNames": wrong,
    }))
}

/// `GET /v1/sources`: the engines this bridge knows and the ones that feed it.
pub async fn list_sources(State(state): State<AppState>) -> Json<Value> {
    Json(sources_json(&state.catalog))
}

/// `GET /v1/events/{name}`: one event with its schema and examples.
pub async fn get_event(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let c = &state.catalog;
    let Some(e) = c.event(&name) else {
        let suggestion = crate::catalog::suggest(c, &name);
        return Err(ApiError::not_found(unknown_event_message(
            &name,
            suggestion.as_deref(),
            None,
        )));
    };
    let mut v = event_json(c, e);
    v["schema"] = c
        .files()
        .get(&e.schema)
        .map(|f| f.json.clone())
        .unwrap_or(Value::Null);
    v["examples"] = Value::Array(c.examples(&e.name).to_vec());
    Ok(Json(v))
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
