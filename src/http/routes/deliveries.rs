//! Delivery inspection, redrive and test deliveries of a registration.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::webhooks::{load, webhook_id};
use crate::clock;
use crate::http::error::ApiError;
use crate::http::extract::{Admin, ApiQuery, Page, RawBody, invalid_json, next_page, parse_json};
use crate::http::state::AppState;
use crate::ingest::{TestEventRefusal, test_event};
use crate::store::{DeliveryId, DeliveryInfo, DeliveryState, WebhookId};
use crate::validation::{ErrorCode, FieldError};

fn delivery_json(d: &DeliveryInfo) -> Value {
    json!({
        "id": d.id,
        "webhookId": d.webhook_id,
        "eventId": d.event_id,
        "event": d.event,
        "idempotencyKey": d.idempotency_key,
        "state": d.state,
        "attempts": d.attempts,
        "nextAttemptAt": d.next_attempt_at_ms.map(clock::rfc3339_ms),
        "lastStatus": d.last_status,
        "lastError": d.last_error,
        "test": d.is_test,
        "createdAt": clock::rfc3339_ms(d.created_at_ms),
        "updatedAt": clock::rfc3339_ms(d.updated_at_ms),
        "attemptLog": d.attempt_log.iter().map(|a| json!({
            "attempt": a.attempt,
            "startedAt": clock::rfc3339_ms(a.started_at_ms),
            "statusCode": a.status_code,
            "latencyMs": a.latency_ms,
            "error": a.error,
        })).collect::<Vec<_>>(),
    })
}

/// `GET /v1/webhooks/{id}/deliveries`: deliveries with every attempt.
pub async fn list(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<Value>, ApiError> {
    let id = webhook_id(&id)?;
    load(&state, &id).await?;
    let limit = page.limit()?;
    let mut rows = state
        .store
        .list_deliveries(&id, page.cursor(), limit + 1)
        .await?;
    let next = next_page(&mut rows, limit, |d| d.id.as_str());
    Ok(Json(json!({
        "data": rows.iter().map(delivery_json).collect::<Vec<_>>(),
        "nextCursor": next,
    })))
}

/// The registration and delivery ids in a URL's path. Text that is not an id of its kind names
/// no delivery: the same 404 as a delivery that is not stored, or not the registration's.
pub(super) fn delivery_path(
    webhook_id: &str,
    delivery_id: &str,
) -> Result<(WebhookId, DeliveryId), ApiError> {
    match (WebhookId::parse(webhook_id), DeliveryId::parse(delivery_id)) {
        (Ok(w), Ok(d)) => Ok((w, d)),
        _ => Err(no_delivery(webhook_id, delivery_id)),
    }
}

pub(super) fn no_delivery(webhook_id: &str, delivery_id: &str) -> ApiError {
    ApiError::not_found(format!(
        "no delivery '{delivery_id}' for registration '{webhook_id}'"
    ))
}

/// The delivery, if it is stored and is the registration's.
async fn load_delivery(
    state: &AppState,
    webhook_id: &WebhookId,
    id: &DeliveryId,
) -> Result<DeliveryInfo, ApiError> {
    match state.store.get_delivery(id).await? {
        Some(d) if d.webhook_id == *webhook_id => Ok(d),
        _ => Err(no_delivery(webhook_id.as_str(), id.as_str())),
    }
}

/// `GET /v1/webhooks/{id}/deliveries/{delivery_id}`
pub async fn get(
    _: Admin,
    State(state): State<AppState>,
    Path((id, delivery_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (id, delivery_id) = delivery_path(&id, &delivery_id)?;
    Ok(Json(delivery_json(
        &load_delivery(&state, &id, &delivery_id).await?,
    )))
}

/// `POST /v1/webhooks/{id}/redrive`: every dead delivery of the registration again, with the
/// same idempotency keys.
pub async fn redrive_all(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = webhook_id(&id)?;
    load(&state, &id).await?;
    let n = state.store.redrive(&id, None, clock::now_ms()).await?;
    state.wakeup.notify();
    Ok((StatusCode::ACCEPTED, Json(json!({"redriven": n}))))
}

/// `POST /v1/webhooks/{id}/deliveries/{delivery_id}/redrive`: one dead delivery again.
pub async fn redrive_one(
    _: Admin,
    State(state): State<AppState>,
    Path((id, delivery_id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (id, delivery_id) = delivery_path(&id, &delivery_id)?;
    let d = load_delivery(&state, &id, &delivery_id).await?;
    if d.state != DeliveryState::Dead {
        return Err(ApiError::invalid(
            format!(
                "delivery '{delivery_id}' is {}, only dead deliveries can be redriven",
                d.state
            ),
            vec![FieldError::new("", ErrorCode::InvalidType, "not dead")],
        ));
    }
    let n = state
        .store
        .redrive(&d.webhook_id, Some(&delivery_id), clock::now_ms())
        .await?;
    state.wakeup.notify();
    Ok((StatusCode::ACCEPTED, Json(json!({"redriven": n}))))
}

/// `POST /v1/webhooks/{id}/test` body `{event?}`: a signed delivery of an example payload of one
/// subscribed event, marked `test: true`.
pub async fn test(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawBody(body): RawBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let w = load(&state, &webhook_id(&id)?).await?;
    let wanted = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let v = parse_json(&body).map_err(invalid_json)?;
        if !v.is_object() {
            return Err(ApiError::invalid(
                "the body must be a JSON object, {\"event\": \"<name>\"}, or empty",
                vec![FieldError::new(
                    "",
                    ErrorCode::InvalidType,
                    "the body must be a JSON object, {\"event\": \"<name>\"}, or empty",
                )],
            ));
        }
        match v.get("event") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                return Err(ApiError::invalid(
                    "'event' must be a string",
                    vec![
                        FieldError::new(
                            "/event",
                            ErrorCode::InvalidType,
                            "'event' must be a string",
                        )
                        .with_value(other.clone()),
                    ],
                ));
            }
        }
    };
    let new =
        test_event(&state.catalog, &w, wanted.as_deref(), clock::now()).map_err(|refusal| {
            match refusal {
                TestEventRefusal::NotSubscribed { event, error } => ApiError::invalid(
                    format!("registration '{id}' is not subscribed to '{event}'"),
                    vec![*error],
                ),
                TestEventRefusal::NothingAvailable => {
                    ApiError::not_found("the registration receives no available event")
                }
            }
        })?;
    let outcomes = state
        .store
        .ingest(std::slice::from_ref(&new), clock::now_ms())
        .await?;
    state.wakeup.notify();
    let delivery_id = outcomes.first().and_then(|o| o.deliveries.first().cloned());
    Ok((
        StatusCode::ACCEPTED,
        Json(
            json!({"deliveryId": delivery_id, "event": new.event, "idempotencyKey": new.idempotency_key}),
        ),
    ))
}
