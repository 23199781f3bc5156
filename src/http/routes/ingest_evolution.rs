//! `POST /v1/ingest/evolution` (and `/v1/ingest/evolution/{suffix}`, Evolution's "webhook by
//! events" URLs): Evolution API's webhook deliveries, through its adapter, into the ingest
//! pipeline. Authentication is checked before the body is read; the event comes from the body,
//! the suffix only says which URL Evolution chose.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::response::Response;

use super::ingest::{accept_translation, not_an_envelope};
use crate::adapters::evolution;
use crate::clock;
use crate::http::error::ApiError;
use crate::http::extract::RawJsonBody;
use crate::http::extract::carries_key;
use crate::http::state::AppState;
use crate::store::{EventSource, KeyRole};

/// A request Evolution may make: with `WABRIDGE_EVOLUTION_JWT_KEY` set, a valid, unexpired
/// `Authorization: Bearer` JWT (Evolution's `jwt_key` webhook header); without it, an ingest
/// key (`X-API-Key`). Runs before the body extractor, so a refused request is not read.
pub struct EvolutionAuth;

impl FromRequestParts<AppState> for EvolutionAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match state.evolution_jwt_key.as_deref() {
            Some(key) => {
                let header = parts
                    .headers
                    .get(AUTHORIZATION)
                    .and_then(|v| v.to_str().ok());
                evolution::verify_bearer(header, key.as_bytes(), clock::now()).map_err(|e| {
                    tracing::info!(reason = %e, "refused an Evolution webhook");
                    ApiError::Unauthorized
                })?;
            }
            None if carries_key(&parts.headers, &state.keys, KeyRole::Ingest) => {}
            None => return Err(ApiError::Unauthorized),
        }
        Ok(Self)
    }
}

/// `POST /v1/ingest/evolution`.
pub async fn ingest_evolution(
    _: EvolutionAuth,
    State(state): State<AppState>,
    body: RawJsonBody,
) -> Result<Response, ApiError> {
    let translation = evolution::translate(&body.json)
        .map_err(|errors| not_an_envelope(EventSource::Evolution, errors))?;
    accept_translation(&state, EventSource::Evolution, translation).await
}

/// `POST /v1/ingest/evolution/{suffix}` (`/messages-upsert`, …): the same delivery.
pub async fn ingest_evolution_by_event(
    auth: EvolutionAuth,
    state: State<AppState>,
    Path(_suffix): Path<String>,
    body: RawJsonBody,
) -> Result<Response, ApiError> {
    ingest_evolution(auth, state, body).await
}
