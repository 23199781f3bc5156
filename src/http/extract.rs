//! Extractors that turn raw requests into typed input, answering with problem+json on failure:
//! JSON bodies, query strings, and the two key roles.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::ApiError;
use super::state::AppState;
use crate::store::KeyRole;

/// A JSON body, parsed into a `Value` (rules are applied by the handler, which reports every
/// problem at once rather than the first serde error).
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        require_json(&req)?;
        let bytes = Bytes::from_request(req, state).await.map_err(body_error)?;
        parse_json(&bytes).map(JsonBody).map_err(invalid_json)
    }
}

/// The raw body with its bytes (for signature checks), plus the parsed JSON.
pub struct RawJsonBody {
    pub bytes: Bytes,
    pub json: Value,
}

impl<S: Send + Sync> FromRequest<S> for RawJsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        require_json(&req)?;
        let bytes = Bytes::from_request(req, state).await.map_err(body_error)?;
        let json = parse_json(&bytes).map_err(invalid_json)?;
        Ok(Self { bytes, json })
    }
}

/// A declared `Content-Type` must be JSON (`application/json` or `application/…+json`); a
/// request without one is read as JSON.
fn require_json(req: &Request) -> Result<(), ApiError> {
    let Some(value) = req.headers().get(axum::http::header::CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
    {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "the body must be JSON, sent with 'Content-Type: application/json', not '{}'",
            essence.chars().take(100).collect::<String>()
        )))
    }
}

fn body_error(e: BytesRejection) -> ApiError {
    if timed_out(&e) {
        return ApiError::BodyTimeout;
    }
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge(e.body_text())
    } else {
        ApiError::BadRequest {
            slug: "unreadable-body",
            detail: e.body_text(),
        }
    }
}

/// Did reading the body stop at the server's body timeout?
fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// Parses a JSON body; the error is a readable sentence.
pub fn parse_json(bytes: &[u8]) -> Result<Value, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err("the request body is empty; send a JSON object".into());
    }
    serde_json::from_slice(bytes).map_err(|e| format!("the body is not valid JSON: {e}"))
}

fn invalid_json(detail: String) -> ApiError {
    ApiError::BadRequest {
        slug: "invalid-json",
        detail,
    }
}

/// A query string parsed into `T`, with a problem+json rejection.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e| ApiError::BadRequest {
                slug: "invalid-query",
                detail: e.body_text(),
            })
    }
}

/// The key presented by a request: `X-API-Key: <key>` or `Authorization: Bearer <key>`.
fn presented_key(parts: &Parts) -> Option<&str> {
    if let Some(v) = parts.headers.get("x-api-key") {
        return v.to_str().ok().map(str::trim);
    }
    let auth = parts.headers.get(axum::http::header::AUTHORIZATION)?;
    let auth = auth.to_str().ok()?;
    let (scheme, token) = auth.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

fn require(parts: &Parts, state: &AppState, role: KeyRole) -> Result<(), ApiError> {
    match presented_key(parts) {
        Some(key) if !key.is_empty() && state.keys.grants(key, role) => Ok(()),
        _ => Err(ApiError::Unauthorized),
    }
}

/// Proof that the request carries an admin key.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        require(parts, state, KeyRole::Admin).map(|()| Admin)
    }
}

/// Proof that the request carries an ingest key.
pub struct Ingest;

impl FromRequestParts<AppState> for Ingest {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        require(parts, state, KeyRole::Ingest).map(|()| Ingest)
    }
}
