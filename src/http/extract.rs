//! Extractors that turn raw requests into typed input, answering with problem+json on failure:
//! JSON bodies, query strings, and the two key roles.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::ApiError;
use super::state::AppState;
use crate::keys::KeySet;
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

/// The raw body, unparsed and of any content type (for an engine whose signature is over these
/// bytes and which is checked before the body is parsed).
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(body_error)
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

/// A body that [`parse_json`] refused, as a problem.
pub fn invalid_json(detail: String) -> ApiError {
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

/// The paging query of a list: `?limit=&cursor=` (the cursor is the last id of the previous
/// page).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 200;

impl Page {
    /// The page size asked for (1 to [`MAX_PAGE`], [`DEFAULT_PAGE`] when not given).
    pub fn limit(&self) -> Result<u32, ApiError> {
        match self.limit.unwrap_or(DEFAULT_PAGE) {
            n @ 1..=MAX_PAGE => Ok(n),
            n => Err(ApiError::BadRequest {
                slug: "invalid-query",
                detail: format!("limit must be 1 to {MAX_PAGE}, got {n}"),
            }),
        }
    }

    /// The cursor, if any.
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }
}

/// Cuts `rows` (read with `limit + 1`) to `limit`, and gives the next page's cursor: the id of
/// the last row kept, when there was more.
pub fn next_page<T>(rows: &mut Vec<T>, limit: u32, id: impl Fn(&T) -> &str) -> Option<String> {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    more.then(|| rows.last().map(|r| id(r).to_owned()))
        .flatten()
}

/// The key presented by a request: `X-API-Key: <key>` or `Authorization: Bearer <key>` (the
/// scheme in any case).
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get("x-api-key") {
        return v.to_str().ok().map(str::trim);
    }
    let auth = headers.get(axum::http::header::AUTHORIZATION)?;
    let auth = auth.to_str().ok()?;
    let (scheme, token) = auth.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Does the request carry a key of this role? The one key check: the `Admin` and `Ingest`
/// extractors use it, and so do the engine routes whose upstream signature is not configured.
pub fn carries_key(headers: &HeaderMap, keys: &KeySet, role: KeyRole) -> bool {
    presented_key(headers).is_some_and(|key| !key.is_empty() && keys.grants(key, role))
}

fn require(parts: &Parts, state: &AppState, role: KeyRole) -> Result<(), ApiError> {
    if carries_key(&parts.headers, &state.keys, role) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
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

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue};

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.insert(*name, HeaderValue::from_static(value));
        }
        h
    }

    #[test]
    fn a_key_comes_from_x_api_key_or_a_bearer_of_any_case() {
        assert_eq!(
            presented_key(&headers(&[("x-api-key", " k1 ")])),
            Some("k1")
        );
        for auth in ["Bearer k2", "bearer k2", "BEARER  k2 "] {
            assert_eq!(
                presented_key(&headers(&[("authorization", auth)])),
                Some("k2"),
                "{auth}"
            );
        }
        assert_eq!(
            presented_key(&headers(&[("authorization", "Basic k3")])),
            None
        );
        assert_eq!(presented_key(&headers(&[("authorization", "k4")])), None);
        assert_eq!(presented_key(&HeaderMap::new()), None);
    }

    #[test]
    fn a_page_is_one_to_the_most_rows_and_names_the_next_cursor() {
        let page = |limit| Page {
            limit,
            cursor: None,
        };
        assert_eq!(page(None).limit().unwrap(), DEFAULT_PAGE);
        assert_eq!(page(Some(MAX_PAGE)).limit().unwrap(), MAX_PAGE);
        assert!(page(Some(0)).limit().is_err());
        assert!(page(Some(MAX_PAGE + 1)).limit().is_err());
        let mut rows = vec!["a", "b", "c"];
        assert_eq!(next_page(&mut rows, 2, |r| r), Some("b".to_owned()));
        assert_eq!(rows, ["a", "b"]);
        assert_eq!(next_page(&mut rows, 2, |r| r), None);
    }
}
