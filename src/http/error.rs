//! The one place where errors become HTTP responses: RFC 9457 `application/problem+json`.
//! Client errors carry a stable body; anything unexpected is logged and answered with a bare 500.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::store::StoreError;
use crate::validation::FieldError;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An API error, rendered as problem+json.
#[derive(Debug)]
pub enum ApiError {
    /// 400 with every problem found in the body.
    Invalid {
        title: &'static str,
        detail: String,
        errors: Vec<FieldError>,
    },
    /// 400 for a request that cannot be read at all.
    BadRequest {
        slug: &'static str,
        detail: String,
    },
    Unauthorized,
    NotFound(String),
    PayloadTooLarge(String),
    /// 408: the client did not send its body in time.
    BodyTimeout,
    /// 415: a body that is not JSON.
    UnsupportedMediaType(String),
    /// 503: a dependency is down (readiness).
    Unavailable(String),
    /// 503 with `Retry-After`: the database cannot take the request now (disk full, restarting,
    /// unreachable); nothing was stored.
    StoreUnavailable,
    Internal(anyhow::Error),
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [FieldError]>,
}

/// The `type` URI of a problem.
pub fn problem_type(slug: &str) -> String {
    format!("urn:wabridge:problem:{slug}")
}

impl ApiError {
    pub fn invalid(detail: impl Into<String>, errors: Vec<FieldError>) -> Self {
        Self::Invalid {
            title: "The request is invalid",
            detail: detail.into(),
            errors,
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound(what.into())
    }
}

/// Seconds a client is asked to wait after a 503 for a database that cannot take requests.
pub const STORE_RETRY_AFTER_SECS: u32 = 5;

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            tracing::warn!(error = %e, "the database cannot take requests now; answered 503");
            Self::StoreUnavailable
        } else {
            Self::Internal(e.into())
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, slug, title, detail, errors) = match &self {
            ApiError::Invalid {
                title,
                detail,
                errors,
            } => (
                StatusCode::BAD_REQUEST,
                "invalid-request",
                *title,
                detail.clone(),
                Some(errors.as_slice()),
            ),
            ApiError::BadRequest { slug, detail } => (
                StatusCode::BAD_REQUEST,
                *slug,
                "The request cannot be read",
                detail.clone(),
                None,
            ),
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Missing or wrong API key",
                "send the key as 'X-API-Key: <key>' or 'Authorization: Bearer <key>'".to_owned(),
                None,
            ),
            ApiError::NotFound(what) => (
                StatusCode::NOT_FOUND,
                "not-found",
                "Not found",
                what.clone(),
                None,
            ),
            ApiError::PayloadTooLarge(detail) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "The request body is too large",
                detail.clone(),
                None,
            ),
            ApiError::BodyTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                "body-timeout",
                "The request body did not arrive in time",
                "the body was not received within the server's body timeout; nothing was stored"
                    .to_owned(),
                None,
            ),
            ApiError::UnsupportedMediaType(detail) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "The body must be JSON",
                detail.clone(),
                None,
            ),
            ApiError::Unavailable(detail) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Not ready",
                detail.clone(),
                None,
            ),
            ApiError::StoreUnavailable => {
                let mut res = problem(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store-unavailable",
                    "The database cannot take requests now",
                    "the database is full, restarting or unreachable; nothing was stored; retry later",
                    None,
                );
                res.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(STORE_RETRY_AFTER_SECS),
                );
                return res;
            }
            ApiError::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Internal error",
                    "the error was logged".to_owned(),
                    None,
                )
            }
        };
        problem(status, slug, title, &detail, errors)
    }
}

/// Renders one problem response.
pub fn problem(
    status: StatusCode,
    slug: &str,
    title: &str,
    detail: &str,
    errors: Option<&[FieldError]>,
) -> Response {
    let body = Problem {
        kind: problem_type(slug),
        title,
        status: status.as_u16(),
        detail,
        errors,
    };
    let mut res = (status, axum::Json(body)).into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    if status == StatusCode::UNAUTHORIZED {
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"wabridge\""),
        );
    }
    res
}
