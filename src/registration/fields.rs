//! The rules of the scalar registration fields: url, secret, sessionId, description, headers,
//! rateLimit. Each pushes its problems and returns the parsed value when there was none.

use std::collections::BTreeMap;

use http::{HeaderName, HeaderValue};
use serde_json::Value;

use crate::ids::SessionId;
use crate::secret::WebhookSecret;
pub use crate::target_url::MAX_URL_LEN;
use crate::target_url::{TargetUrl, UrlProblem};
use crate::validation::{ErrorCode, FieldError, pointer_token, type_name};

const MAX_DESCRIPTION_LEN: usize = 1024;
const MAX_HEADERS: usize = 32;

/// Headers a registration may not set: wabridge owns them on every delivery.
pub fn is_reserved_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "content-type"
            | "content-length"
            | "user-agent"
            | "host"
            | "connection"
            | "keep-alive"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "expect"
    ) || n.starts_with("webhook-")
        || n.starts_with("x-openwa-")
        || n.starts_with("x-wabridge-")
        || n.starts_with("proxy-")
}

fn wrong_type(pointer: &str, what: &str, v: &Value) -> FieldError {
    FieldError::new(
        pointer,
        ErrorCode::InvalidType,
        format!("'{}' must be {what}, not {}", &pointer[1..], type_name(v)),
    )
    .with_value(v.clone())
}

pub fn url(v: &Value, errors: &mut Vec<FieldError>) -> Option<TargetUrl> {
    let Some(raw) = v.as_str() else {
        errors.push(wrong_type("/url", "a string", v));
        return None;
    };
    let problem = match TargetUrl::parse(raw) {
        Ok(url) => return Some(url),
        Err(problem) => problem,
    };
    let fail = |msg: String| {
        FieldError::new("/url", ErrorCode::InvalidUrl, msg).with_value(Value::String(raw.into()))
    };
    errors.push(match problem {
        UrlProblem::TooLong(len) => FieldError::new(
            "/url",
            ErrorCode::InvalidUrl,
            format!("the url has {len} characters; at most {MAX_URL_LEN}"),
        )
        .with_value(Value::String(
            raw.chars().take(64).collect::<String>() + "…",
        )),
        UrlProblem::NotAUrl(e) => fail(format!(
            "not an absolute http or https URL ({e}), e.g. https://n8n.example.com/webhook/abc"
        )),
        UrlProblem::Scheme(scheme) => {
            fail(format!("the scheme must be http or https, not {scheme}"))
        }
        UrlProblem::NoHost => fail("the url has no host".into()),
        // The value may hold a password: do not echo it.
        UrlProblem::Credentials => FieldError::new(
            "/url",
            ErrorCode::InvalidUrl,
            "the url must not carry a user name or password; use 'headers' (e.g. Authorization) instead",
        ),
        UrlProblem::Fragment => fail("the url must not have a #fragment".into()),
    });
    None
}

/// `Ok(None)`: no secret given (null), one will be generated on create.
pub fn secret(v: &Value, errors: &mut Vec<FieldError>) -> Option<Option<WebhookSecret>> {
    if v.is_null() {
        return Some(None);
    }
    let Some(raw) = v.as_str() else {
        // Never echo what may be a secret.
        errors.push(FieldError::new(
            "/secret",
            ErrorCode::InvalidType,
            format!("'secret' must be a string, not {}", type_name(v)),
        ));
        return None;
    };
    match WebhookSecret::parse(raw) {
        Ok(s) => Some(Some(s)),
        Err(e) => {
            errors.push(FieldError::new(
                "/secret",
                ErrorCode::InvalidSecret,
                format!("{e}; omit 'secret' to have one generated"),
            ));
            None
        }
    }
}

pub fn session_id(v: &Value, errors: &mut Vec<FieldError>) -> Option<Option<SessionId>> {
    match v {
        Value::Null => Some(None),
        Value::String(s) => {
            let parsed = SessionId::parse(s);
            if parsed.is_none() {
                errors.push(
                    FieldError::new(
                        "/sessionId",
                        ErrorCode::InvalidSessionId,
                        format!(
                            "'sessionId' must be 1 to {} printable characters, or null for every session",
                            SessionId::MAX_LEN
                        ),
                    )
                    .with_value(v.clone()),
                );
            }
            parsed.map(Some)
        }
        _ => {
            errors.push(wrong_type("/sessionId", "a string or null", v));
            None
        }
    }
}

pub fn description(v: &Value, errors: &mut Vec<FieldError>) -> Option<Option<String>> {
    match v {
        Value::Null => Some(None),
        Value::String(s) if s.chars().count() <= MAX_DESCRIPTION_LEN => Some(Some(s.clone())),
        Value::String(s) => {
            errors.push(FieldError::new(
                "/description",
                ErrorCode::InvalidDescription,
                format!(
                    "'description' has {} characters; at most {MAX_DESCRIPTION_LEN}",
                    s.chars().count()
                ),
            ));
            None
        }
        _ => {
            errors.push(wrong_type("/description", "a string or null", v));
            None
        }
    }
}

pub fn headers(v: &Value, errors: &mut Vec<FieldError>) -> Option<BTreeMap<String, String>> {
    let Some(map) = v.as_object() else {
        errors.push(wrong_type(
            "/headers",
            "an object of header names to values",
            v,
        ));
        return None;
    };
    let before = errors.len();
    if map.len() > MAX_HEADERS {
        errors.push(FieldError::new(
            "/headers",
            ErrorCode::InvalidHeader,
            format!("at most {MAX_HEADERS} custom headers, got {}", map.len()),
        ));
    }
    let mut out = BTreeMap::new();
    for (name, value) in map {
        let at = format!("/headers/{}", pointer_token(name));
        if HeaderName::from_bytes(name.as_bytes()).is_err() {
            errors.push(
                FieldError::new(
                    &at,
                    ErrorCode::InvalidHeader,
                    format!("'{name}' is not a valid header name"),
                )
                .with_value(Value::String(name.clone())),
            );
            continue;
        }
        if is_reserved_header(name) {
            errors.push(
                FieldError::new(
                    &at,
                    ErrorCode::ReservedHeader,
                    format!(
                        "'{name}' is set by wabridge on every delivery and cannot be overridden \
                         (content-type, user-agent, host, webhook-*, x-openwa-*, x-wabridge-* and hop-by-hop headers are reserved)"
                    ),
                )
                .with_value(Value::String(name.clone())),
            );
            continue;
        }
        match value.as_str() {
            Some(s) if HeaderValue::from_str(s).is_ok() => {
                out.insert(name.clone(), s.to_owned());
            }
            // Header values often hold credentials: never echo them.
            Some(_) => errors.push(FieldError::new(
                &at,
                ErrorCode::InvalidHeader,
                format!("the value of '{name}' is not a valid header value (visible ASCII only)"),
            )),
            None => errors.push(FieldError::new(
                &at,
                ErrorCode::InvalidType,
                format!(
                    "the value of '{name}' must be a string, not {}",
                    type_name(value)
                ),
            )),
        }
    }
    (errors.len() == before).then_some(out)
}

pub fn rate_limit(v: &Value, errors: &mut Vec<FieldError>) -> Option<Option<f64>> {
    match v {
        Value::Null => Some(None),
        Value::Number(n) => match n.as_f64() {
            Some(x) if x > 0.0 && x <= 10_000.0 => Some(Some(x)),
            _ => {
                errors.push(
                    FieldError::new(
                        "/rateLimit",
                        ErrorCode::InvalidRateLimit,
                        "'rateLimit' is deliveries per second: a number above 0 and at most 10000, or null for no limit",
                    )
                    .with_value(v.clone()),
                );
                None
            }
        },
        _ => {
            errors.push(wrong_type("/rateLimit", "a number or null", v));
            None
        }
    }
}
