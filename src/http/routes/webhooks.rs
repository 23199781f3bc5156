//! Registrations: create, list, read, update, delete, and the dry-run validation.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::catalog::Catalog;
use crate::clock;
use crate::http::error::ApiError;
use crate::http::extract::{Admin, ApiQuery, JsonBody, Page, next_page, parse_json};
use crate::http::state::AppState;
use crate::registration::{self, UpdateError, check_patch, check_registration};
use crate::store::{Webhook, WebhookId};
use crate::validation::{ErrorCode, FieldError};

/// The public view of a registration: never the secret, never header values. `cannotFire`
/// lists the events it names that no configured source emits (after a change of sources).
pub fn webhook_json(catalog: &Catalog, w: &Webhook) -> Value {
    let cannot_fire: Vec<Value> = catalog
        .cannot_fire(&w.events)
        .into_iter()
        .map(|(event, reason)| json!({"event": event, "reason": reason}))
        .collect();
    json!({
        "id": w.id,
        "url": w.url,
        "events": w.events,
        "sessionId": w.session_id,
        "description": w.description,
        "headerNames": w.headers.keys().collect::<Vec<_>>(),
        "active": w.active,
        "disabledReason": w.disabled_reason,
        "rateLimit": w.rate_limit,
        "createdAt": clock::rfc3339_ms(w.created_at_ms),
        "updatedAt": clock::rfc3339_ms(w.updated_at_ms),
        "cannotFire": cannot_fire,
    })
}

fn summary(errors: &[FieldError]) -> String {
    match errors {
        [one] => one.message.clone(),
        many => format!("{} problems in the request body; see errors", many.len()),
    }
}

/// `POST /v1/webhooks`
pub async fn create(
    _: Admin,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let reg = check_registration(&state.catalog, &state.policy, &body)
        .await
        .map_err(|errors| ApiError::invalid(summary(&errors), errors))?;
    let webhook = registration::create(state.store.as_ref(), reg, clock::now_ms()).await?;
    tracing::info!(webhook_id = %webhook.id, events = ?webhook.events, "registration created");
    let mut view = webhook_json(&state.catalog, &webhook);
    view["secret"] = Value::String(webhook.secret.expose().to_owned());
    let location = HeaderValue::from_str(&format!("/v1/webhooks/{}", webhook.id))
        .map_err(|e| ApiError::Internal(e.into()))?;
    // The one response that carries the secret: no cache may keep it.
    Ok((
        StatusCode::CREATED,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        Json(view),
    )
        .into_response())
}

/// `POST /v1/webhooks/validate`: the same rules, nothing stored.
pub async fn validate(_: Admin, State(state): State<AppState>, bytes: Bytes) -> Json<Value> {
    let body = match parse_json(&bytes) {
        Ok(v) => v,
        Err(detail) => {
            let e = FieldError::new("", ErrorCode::InvalidJson, detail);
            return Json(json!({"valid": false, "errors": [e]}));
        }
    };
    match check_registration(&state.catalog, &state.policy, &body).await {
        Ok(reg) => Json(json!({"valid": true, "normalized": reg.normalized()})),
        Err(errors) => Json(json!({"valid": false, "errors": errors})),
    }
}

/// `GET /v1/webhooks?limit=&cursor=`
pub async fn list(
    _: Admin,
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<Value>, ApiError> {
    let limit = page.limit()?;
    let mut rows = state.store.list_webhooks(page.cursor(), limit + 1).await?;
    let next = next_page(&mut rows, limit, |w| w.id.as_str());
    Ok(Json(json!({
        "data": rows.iter().map(|w| webhook_json(&state.catalog, w)).collect::<Vec<_>>(),
        "nextCursor": next,
    })))
}

/// The registration id in a URL's path. Text that is not one names no registration: the same
/// 404 as an id that is not stored.
pub fn webhook_id(raw: &str) -> Result<WebhookId, ApiError> {
    WebhookId::parse(raw).map_err(|_| no_registration(raw))
}

fn no_registration(id: &str) -> ApiError {
    ApiError::not_found(format!("no registration '{id}'"))
}

pub async fn load(state: &AppState, id: &WebhookId) -> Result<Webhook, ApiError> {
    state
        .store
        .get_webhook(id)
        .await?
        .ok_or_else(|| no_registration(id.as_str()))
}

/// `GET /v1/webhooks/{id}`
pub async fn get(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(webhook_json(
        &state.catalog,
        &load(&state, &webhook_id(&id)?).await?,
    )))
}

/// `PATCH /v1/webhooks/{id}`: the same rules on the fields given.
pub async fn update(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let patch = check_patch(&state.catalog, &state.policy, &body)
        .await
        .map_err(|errors| ApiError::invalid(summary(&errors), errors))?;
    // After the body's rules, as when an unknown id was looked up: a bad body is a 400 first.
    let id = webhook_id(&id)?;
    let w = registration::update(state.store.as_ref(), &id, &patch, clock::now_ms())
        .await
        .map_err(|e| match e {
            UpdateError::NotFound(_) => ApiError::not_found(e.to_string()),
            UpdateError::Contended(_) => ApiError::Internal(e.into()),
            UpdateError::Store(e) => e.into(),
        })?;
    state.wakeup.registration_changed(&w.id);
    state.wakeup.notify();
    tracing::info!(webhook_id = %w.id, "registration updated");
    Ok(Json(webhook_json(&state.catalog, &w)))
}

/// `DELETE /v1/webhooks/{id}`: 204, or 404 when there is no such registration.
pub async fn delete(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = webhook_id(&id)?;
    if state.store.delete_webhook(&id).await? {
        state.wakeup.registration_changed(&id);
        tracing::info!(webhook_id = %id, "registration deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_registration(id.as_str()))
    }
}
