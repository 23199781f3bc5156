//! Ingest: engines post events here. Each accepted event and every delivery it fans out to are
//! committed in one transaction before the 202 (a transactional outbox).

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::adapters::{Translation, openwa};
use crate::delivery::signer::verify_openwa;
use crate::http::error::ApiError;
use crate::http::extract::{Admin, Ingest, RawJsonBody, carries_key};
use crate::http::state::AppState;
use crate::ingest::{
    BatchRefusal, CheckedTranslation, MAX_BATCH, check_batch, check_event, check_translation,
    is_heavy,
};
use crate::keys::KeySet;
use crate::store::{EventSource, IgnoredEvent, IngestOutcome, KeyRole, NewEvent};
use crate::validation::{FieldError, clip};

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
        v["reason"] = Value::String(r.to_string());
    }
    v
}

pub(crate) async fn commit(
    state: &AppState,
    events: Vec<NewEvent>,
) -> Result<Vec<IngestOutcome>, ApiError> {
    let names: Vec<String> = events.iter().map(|e| e.event.clone()).collect();
    // Through the engine's door: new deliveries are handed to it without a claim scan.
    let outcomes = state
        .wakeup
        .ingest(Arc::clone(&state.store), events, clock::now_ms())
        .await?;
    for (name, o) in names.iter().zip(&outcomes) {
        let outcome = if o.duplicate {
            "duplicate"
        } else if !o.dispatched {
            "unchanged"
        } else {
            "accepted"
        };
        metrics::ingested(name, outcome);
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
    let RawJsonBody { bytes, json } = body;
    match json {
        Value::Array(items) => {
            let checked = if is_heavy(items.len(), bytes.len()) {
                drop(bytes);
                let catalog = Arc::clone(&state.catalog);
                tokio::task::spawn_blocking(move || check_batch(&catalog, &items, now))
                    .await
                    .map_err(|e| ApiError::Internal(e.into()))?
            } else {
                check_batch(&state.catalog, &items, now)
            };
            let events = checked.map_err(|refusal| match refusal {
                BatchRefusal::Size { len, error } => ApiError::invalid(
                    format!("a batch holds 1 to {MAX_BATCH} events, this one {len}"),
                    vec![*error],
                ),
                BatchRefusal::Invalid(errors) => ApiError::invalid(
                    format!("{} problems in the batch; nothing was stored", errors.len()),
                    errors,
                ),
            })?;
            let outcomes = commit(&state, events).await?;
            Ok((
                StatusCode::ACCEPTED,
                Json(Value::Array(outcomes.iter().map(outcome_json).collect())),
            )
                .into_response())
        }
        single => {
            let event = check_event(&state.catalog, &single, "", now).map_err(|errors| {
                let detail = match errors.as_slice() {
                    [one] => one.message.clone(),
                    many => format!("{} problems in the event; nothing was stored", many.len()),
                };
                ApiError::invalid(detail, errors)
            })?;
            let outcomes = commit(&state, vec![event]).await?;
            let body = outcomes.first().map(outcome_json).unwrap_or(Value::Null);
            Ok((StatusCode::ACCEPTED, Json(body)).into_response())
        }
    }
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
        None => carries_key(headers, keys, KeyRole::Ingest),
    }
}

/// The credential an OpenWA delivery must carry, checked from the head alone before the body is
/// read: with an upstream secret, an `X-OpenWA-Signature` header (verified once the body is
/// in); without one, a valid ingest key.
pub struct OpenWaCredential;

impl FromRequestParts<AppState> for OpenWaCredential {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ok = match state.openwa_secret {
            Some(_) => parts.headers.contains_key("x-openwa-signature"),
            None => carries_key(&parts.headers, &state.keys, KeyRole::Ingest),
        };
        if ok {
            Ok(Self)
        } else {
            Err(ApiError::Unauthorized)
        }
    }
}

/// `POST /v1/ingest/openwa`: OpenWA's own webhook deliveries, fed into the same pipeline.
pub async fn ingest_openwa(
    _: OpenWaCredential,
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
    let source = state.catalog.sources().engine("openwa").ok_or_else(|| {
        ApiError::Internal(anyhow::anyhow!("the OpenWA source description is missing"))
    })?;
    let translation = openwa::translate(source, &body.json)
        .map_err(|errors| not_an_envelope(EventSource::OpenWa, errors))?;
    accept_translation(&state, EventSource::OpenWa, translation).await
}

/// A body that is not a delivery of the engine: 400, nothing stored, and a warning in the log
/// (the engine sees the refusal and does not retry it).
pub(crate) fn not_an_envelope(source: EventSource, errors: Vec<FieldError>) -> ApiError {
    tracing::warn!(
        source = source.as_str(),
        problems = errors.len(),
        "refused a body that is not a webhook delivery of this engine"
    );
    metrics::ingested("other", "refused");
    ApiError::invalid(
        format!(
            "the body is not a {} webhook delivery; nothing was stored",
            source.as_str()
        ),
        errors,
    )
}

/// What every engine adapter's route does with a translation: an ignored delivery is recorded
/// (log, metric, `GET /v1/ingest/ignored`) and acknowledged with 200; events are checked by the
/// ingest rules and committed together (202), or every problem is answered with 400. An event
/// no configured source emits is recorded as ignored, with the reason, like one without a
/// catalog counterpart.
pub(crate) async fn accept_translation(
    state: &AppState,
    source: EventSource,
    translation: Translation,
) -> Result<Response, ApiError> {
    let now = clock::now();
    let translated = match translation {
        Translation::Ignored { native, reason } => {
            let ignored = IgnoredEvent {
                source,
                name: clip(&native).into_owned(),
                reason,
            };
            record_ignored(state, &ignored).await?;
            return Ok((StatusCode::OK, Json(ignored_json(&ignored))).into_response());
        }
        Translation::Events(list) => list,
    };
    let CheckedTranslation {
        events,
        ignored,
        errors,
    } = check_translation(&state.catalog, source, &translated, now);
    if !errors.is_empty() {
        tracing::warn!(
            source = source.as_str(),
            problems = errors.len(),
            "refused an engine delivery that does not fit the contract"
        );
        return Err(ApiError::invalid(
            format!(
                "the {} delivery does not fit the wabridge contract; nothing was stored",
                source.as_str()
            ),
            errors,
        ));
    }
    for i in &ignored {
        record_ignored(state, i).await?;
    }
    if events.is_empty() {
        let body = match ignored.first() {
            Some(first) => ignored_json(first),
            None => json!({"ignored": true, "reason": "the delivery carried no event"}),
        };
        return Ok((StatusCode::OK, Json(body)).into_response());
    }
    let names: Vec<String> = events.iter().map(|e| e.event.clone()).collect();
    let outcomes = commit(state, events).await?;
    let mut body = outcomes.first().map(outcome_json).unwrap_or(Value::Null);
    body["event"] = Value::String(names[0].clone());
    body["events"] = names
        .into_iter()
        .zip(&outcomes)
        .map(|(name, o)| {
            let mut v = outcome_json(o);
            v["event"] = Value::String(name);
            v
        })
        .collect();
    if !ignored.is_empty() {
        body["ignored"] = ignored.iter().map(ignored_json).collect();
    }
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

async fn record_ignored(state: &AppState, ignored: &IgnoredEvent) -> Result<(), ApiError> {
    tracing::warn!(
        source = ignored.source.as_str(),
        event = %ignored.name,
        reason = %ignored.reason,
        "acknowledged an engine event that does not become a catalog event"
    );
    metrics::upstream_ignored(ignored.source.as_str(), &ignored.name);
    state
        .store
        .record_ignored(ignored, clock::now_ms())
        .await
        .map_err(ApiError::from)
}

fn ignored_json(i: &IgnoredEvent) -> Value {
    json!({"ignored": true, "source": i.source.as_str(), "event": i.name, "reason": i.reason})
}

/// `GET /v1/ingest/ignored`: every engine event name that was acknowledged without becoming a
/// catalog event, with counts, when it was first and last seen, and why.
pub async fn list_ignored(
    _: Admin,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let list = state.store.list_ignored().await?;
    let items: Vec<Value> = list
        .iter()
        .map(|i| {
            json!({
                "source": i.source,
                "event": i.name,
                "count": i.count,
                "firstSeenAt": clock::rfc3339_ms(i.first_seen_at_ms),
                "lastSeenAt": clock::rfc3339_ms(i.last_seen_at_ms),
                "lastReason": i.last_reason,
            })
        })
        .collect();
    Ok(Json(json!({ "data": items })))
}
