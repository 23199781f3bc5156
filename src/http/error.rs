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
    /// 503 with `Retry-After`: the database went away during the commit and whether it took
    /// effect is unknown; sending the same request again is safe.
    StoreOutcomeUnknown,
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
        if matches!(e, StoreError::OutcomeUnknown(_)) {
            tracing::warn!(error = %e, "answered 503: the outcome of a commit is unknown");
            Self::StoreOutcomeUnknown
        } else if e.is_unavailable() {
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
                return retry_later(problem(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store-unavailable",
                    "The database cannot take requests now",
                    "the database is full, restarting or unreachable; nothing was stored; retry later",
                    None,
                ));
            }
            ApiError::StoreOutcomeUnknown => {
                return retry_later(problem(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store-outcome-unknown",
                    "Whether the request was stored is unknown",
                    "the database went away while the request was being committed, and it may have \
                     been stored; an ingest may be sent again (an event already stored is answered \
                     as a duplicate); check a registration change with GET before making it again",
                    None,
                ));
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

/// A 503 from the store, with the `Retry-After` its clients are asked to wait.
fn retry_later(mut res: Response) -> Response {
    res.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(STORE_RETRY_AFTER_SECS),
    );
    res
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn rendered(e: StoreError) -> (StatusCode, Option<String>, serde_json::Value) {
        let res = ApiError::from(e).into_response();
        let retry = res
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_owned());
        let status = res.status();
        let body = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, retry, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn a_store_that_went_away_is_a_503_that_says_whether_anything_was_stored() {
        let (status, retry, p) = rendered(StoreError::Unavailable("disk full".into())).await;
        assert_eq!(
            (status, retry.as_deref()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("5"))
        );
        assert_eq!(p["type"], "urn:wabridge:problem:store-unavailable");
        assert!(p["detail"].as_str().unwrap().contains("nothing was stored"));

        let (status, retry, p) = rendered(StoreError::OutcomeUnknown("lost".into())).await;
        assert_eq!(
            (status, retry.as_deref()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("5"))
        );
        assert_eq!(p["type"], "urn:wabridge:problem:store-outcome-unknown");
        assert!(
            p["detail"]
                .as_str()
                .unwrap()
                .contains("may have been stored")
        );
        // The cause stays in the log.
        assert!(!p.to_string().contains("lost"));
    }
}
