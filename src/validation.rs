//! Validation errors shared by every check of a request body (registration, ingest, the engine
//! adapters): one problem, pointing at the value with a JSON Pointer, with a stable code.

use serde::Serialize;
use serde_json::Value;

/// Stable, documented error codes (docs/contract.md lists them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidJson,
    InvalidType,
    Required,
    UnknownField,
    EmptyEvents,
    UnknownEvent,
    ReservedEvent,
    InvalidUrl,
    UrlNotAllowed,
    InvalidSecret,
    InvalidSessionId,
    InvalidDescription,
    InvalidHeader,
    ReservedHeader,
    InvalidRateLimit,
    InvalidPayload,
    InvalidTimestamp,
    InvalidEventId,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::InvalidType => "invalid_type",
            Self::Required => "required",
            Self::UnknownField => "unknown_field",
            Self::EmptyEvents => "empty_events",
            Self::UnknownEvent => "unknown_event",
            Self::ReservedEvent => "reserved_event",
            Self::InvalidUrl => "invalid_url",
            Self::UrlNotAllowed => "url_not_allowed",
            Self::InvalidSecret => "invalid_secret",
            Self::InvalidSessionId => "invalid_session_id",
            Self::InvalidDescription => "invalid_description",
            Self::InvalidHeader => "invalid_header",
            Self::ReservedHeader => "reserved_header",
            Self::InvalidRateLimit => "invalid_rate_limit",
            Self::InvalidPayload => "invalid_payload",
            Self::InvalidTimestamp => "invalid_timestamp",
            Self::InvalidEventId => "invalid_event_id",
        }
    }
}

/// Most characters of a string value echoed back in an error.
pub const MAX_ECHOED_CHARS: usize = 200;

/// One problem in a request body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldError {
    /// JSON Pointer (RFC 6901) to the offending value; `""` is the whole body.
    pub pointer: String,
    pub code: ErrorCode,
    /// The offending value (omitted for secrets and missing values).
    #[serde(skip_serializing_if = "Value::is_null")]
    pub value: Value,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
}

impl FieldError {
    pub fn new(pointer: impl Into<String>, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            pointer: pointer.into(),
            code,
            value: Value::Null,
            message: message.into(),
            suggestion: None,
        }
    }

    /// The offending value, echoed back; a long string is cut to its first 200 characters, so
    /// an error never repeats a huge input.
    pub fn with_value(mut self, value: Value) -> Self {
        self.value = match value {
            Value::String(s) => Value::String(clip(&s).into_owned()),
            other => other,
        };
        self
    }

    pub fn with_suggestion(mut self, suggestion: Option<String>) -> Self {
        self.suggestion = suggestion;
        self
    }
}

/// Escapes one reference token of a JSON Pointer (RFC 6901).
pub fn pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// A string as an error may quote it: its first 200 characters, with `…` when cut.
pub fn clip(s: &str) -> std::borrow::Cow<'_, str> {
    match s.char_indices().nth(MAX_ECHOED_CHARS) {
        Some((i, _)) => std::borrow::Cow::Owned(format!("{}…", &s[..i])),
        None => std::borrow::Cow::Borrowed(s),
    }
}

/// The JSON type name of a value, for messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The candidate nearest to `word` (Damerau–Levenshtein distance, ASCII case ignored) when it is
/// at most `max_edits` away; of equally near ones, the first. The one "did you mean" helper.
pub fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    max_edits: usize,
) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    let (best, distance) = candidates
        .into_iter()
        .map(|c| {
            (
                c,
                strsim::damerau_levenshtein(&word, &c.to_ascii_lowercase()),
            )
        })
        .min_by_key(|(_, d)| *d)?;
    (distance <= max_edits).then_some(best)
}
