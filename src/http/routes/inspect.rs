//! What the operator page reads besides the registration and delivery routes: delivery counts
//! by state (all, or of one registration) and the envelope a delivery carries.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::deliveries::{delivery_path, no_delivery};
use super::webhooks::{load, webhook_id};
use crate::clock;
use crate::delivery::request::stored_envelope_body;
use crate::http::error::ApiError;
use crate::http::extract::Admin;
use crate::http::state::AppState;
use crate::store::StateCounts;

fn counts_json(c: StateCounts) -> Value {
    json!({
        "pending": c.pending,
        "inFlight": c.in_flight,
        "delivered": c.delivered,
        "dead": c.dead,
    })
}

/// `GET /v1/stats`: every delivery by state.
pub async fn stats(_: Admin, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let c = state.store.state_counts(None, clock::now_ms()).await?;
    Ok(Json(counts_json(c)))
}

/// `GET /v1/webhooks/{id}/stats`: the registration's deliveries by state.
pub async fn webhook_stats(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = webhook_id(&id)?;
    load(&state, &id).await?;
    let c = state.store.state_counts(Some(&id), clock::now_ms()).await?;
    Ok(Json(counts_json(c)))
}

/// `GET /v1/webhooks/{id}/deliveries/{delivery_id}/envelope`: the JSON body every attempt of
/// the delivery sends, byte for byte (built by the same function as the attempts; headers and
/// signatures are not part of it).
pub async fn envelope(
    _: Admin,
    State(state): State<AppState>,
    Path((id, delivery_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (id, delivery_id) = delivery_path(&id, &delivery_id)?;
    let e = match state.store.delivery_event(&delivery_id).await? {
        Some(e) if e.webhook_id == id => e,
        _ => return Err(no_delivery(id.as_str(), delivery_id.as_str())),
    };
    let body = stored_envelope_body(&e).map_err(|e| ApiError::Internal(e.into()))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}
