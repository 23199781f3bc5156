//! Ingest: engines post events here. Each accepted event and every delivery it fans out to are
//! committed in one transaction before the 202 (a transactional outbox).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::catalog::{EventStatus, Lookup};
use crate::delivery::signer::verify_openwa;
use crate::http::error::ApiError;
use crate::http::extract::{Ingest, RawJsonBody};
use crate::http::state::AppState;
use crate::ingest::{MAX_BATCH, parse_event};
use crate::keys::KeySet;
use crate::registration::{ErrorCode, FieldError};
use crate::store::{EventSource, IngestOutcome, KeyRole, NewEvent};
use crate::{clock, metrics};

fn outcome_json(o: &IngestOutcome) -> Value {
    let mut v = json!({
        "eventId": o.event_id,
        "idempotencyKey": o.idempotency_key,
        "duplicate": o.duplicate,
        "dispatched": o.dispatched,
        "deliveries": o.deliveries,
    });
    if let Some(r) = &o.reason {
        v["reason"] = Value::String(r.clone());
    }
    v
}

async fn commit(state: &AppState, events: &[NewEvent]) -> Result<Vec<IngestOutcome>, ApiError> {
    let outcomes = state.store.ingest(events, clock::now_ms()).await?;
    for (e, o) in events.iter().zip(&outcomes) {
        let outcome = if o.duplicate {
            "duplicate"
        } else if !o.dispatched {
            "unchanged"
        } else {
            "accepted"
        };
        metrics::ingested(&e.event, outcome);
    }
    if outcomes.iter().any(|o| !o.deliveries.is_empty()) {
        state.wakeup.notify();
    }
    Ok(outcomes)
}

/// `POST /v1/ingest`: one event object, or an array of them (one transaction).
pub async fn ingest(
    _: Ingest,
    State(state): State<AppState>,
    body: RawJsonBody,
) -> Result<Response, ApiError> {
    let now = clock::now();
    match &body.json {
        Value::Array(items) => {
            if items.is_empty() || items.len() > MAX_BATCH {
                return Err(ApiError::invalid(
                    format!(
                        "a batch holds 1 to {MAX_BATCH} events, this one {}",
                        items.len()
                    ),
                    vec![FieldError::new(
                        "",
                        ErrorCode::InvalidType,
                        format!("a batch holds 1 to {MAX_BATCH} events"),
                    )],
                ));
            }
            let mut events = Vec::with_capacity(items.len());
            let mut errors = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match parse_event(
                    &state.catalog,
                    item,
                    &format!("/{i}"),
                    EventSource::Api,
                    now,
                ) {
                    Ok(e) => events.push(e),
                    Err(errs) => {
                        refused(&state, item);
                        errors.extend(errs);
                    }
                }
            }
            if !errors.is_empty() {
                return Err(ApiError::invalid(
                    format!("{} problems in the batch; nothing was stored", errors.len()),
                    errors,
                ));
            }
            let outcomes = commit(&state, &events).await?;
            Ok((
                StatusCode::ACCEPTED,
                Json(Value::Array(outcomes.iter().map(outcome_json).collect())),
            )
                .into_response())
        }
        single => {
            let event = parse_event(&state.catalog, single, "", EventSource::Api, now).map_err(
                |errors| {
                    refused(&state, single);
                    let detail = match errors.as_slice() {
                        [one] => one.message.clone(),
                        many => format!("{} problems in the event; nothing was stored", many.len()),
                    };
                    ApiError::invalid(detail, errors)
                },
            )?;
            let outcomes = commit(&state, std::slice::from_ref(&event)).await?;
            let body = outcomes.first().map(outcome_json).unwrap_or(Value::Null);
            Ok((StatusCode::ACCEPTED, Json(body)).into_response())
        }
    }
}

/// Counts a refused event under its name when that is a catalog name, else under `other`.
fn refused(state: &AppState, item: &Value) {
    let name = item
        .get("event")
        .and_then(Value::as_str)
        .filter(|n| state.catalog.event(n).is_some())
        .unwrap_or("other");
    metrics::ingested(name, "refused");
}

/// May this request use the OpenWA adapter? With an upstream secret configured, a valid
/// `X-OpenWA-Signature` is required; without one, an ingest key.
fn openwa_authorized(
    headers: &HeaderMap,
    body: &[u8],
    secret: Option<&str>,
    keys: &KeySet,
) -> bool {
    match secret {
        Some(secret) => headers
            .get("x-openwa-signature")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|sig| verify_openwa(secret, body, sig)),
        None => {
            let key = headers
                .get("x-api-key")
                .and_then(|v| v.to_str().ok())
                .or_else(|| {
                    headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.strip_prefix("Bearer "))
                });
            key.is_some_and(|k| keys.grants(k.trim(), KeyRole::Ingest))
        }
    }
}

/// `POST /v1/ingest/openwa`: OpenWA's own webhook deliveries, fed into the same pipeline.
/// OpenWA's `idempotencyKey` names the occurrence, so its redeliveries are accepted once.
/// Events outside the catalog are acknowledged and ignored, so OpenWA does not retry them.
pub async fn ingest_openwa(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: RawJsonBody,
) -> Result<Response, ApiError> {
    if !openwa_authorized(
        &headers,
        &body.bytes,
        state.openwa_secret.as_deref(),
        &state.keys,
    ) {
        return Err(ApiError::Unauthorized);
    }
    let env = &body.json;
    let event = env.get("event").and_then(Value::as_str).unwrap_or_default();
    let known = matches!(state.catalog.lookup(event), Lookup::Subscribable)
        && state
            .catalog
            .event(event)
            .is_some_and(|e| e.status == EventStatus::Available);
    if !known {
        metrics::openwa_ignored();
        tracing::info!(event, "ignored an OpenWA event outside the catalog");
        return Ok((
            StatusCode::OK,
            Json(json!({
                "ignored": true,
                "reason": format!("'{event}' is not an available event in the wabridge catalog"),
            })),
        )
            .into_response());
    }
    let mut item = serde_json::Map::new();
    item.insert("event".into(), Value::String(event.to_owned()));
    for (from, to) in [
        ("sessionId", "sessionId"),
        ("data", "data"),
        ("timestamp", "occurredAt"),
        ("idempotencyKey", "eventId"),
    ] {
        if let Some(v) = env.get(from) {
            item.insert(to.into(), v.clone());
        }
    }
    let event = parse_event(
        &state.catalog,
        &Value::Object(item),
        "",
        EventSource::OpenWa,
        clock::now(),
    )
    .map_err(|errors| {
        ApiError::invalid(
            "the OpenWA delivery does not fit the wabridge contract",
            errors,
        )
    })?;
    let outcomes = commit(&state, std::slice::from_ref(&event)).await?;
    let body = outcomes.first().map(outcome_json).unwrap_or(Value::Null);
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}
