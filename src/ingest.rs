//! Ingest rules: an engine's event body becomes a [`NewEvent`] ready for the store (validated
//! against the catalog and its payload schema, idempotency key computed), or every problem.

use serde_json::Value;
use time::OffsetDateTime;

use crate::catalog::{Catalog, Lookup, suggest};
use crate::clock;
use crate::delivery::idempotency::{Occurrence, idempotency_key};
use crate::ids;
use crate::registration::{ErrorCode, FieldError, pointer_token, type_name};
use crate::store::{EventSource, NewEvent};

const KNOWN_FIELDS: &[&str] = &["event", "sessionId", "data", "occurredAt", "eventId"];
const MAX_EVENT_ID_LEN: usize = 200;
const MAX_SESSION_ID_LEN: usize = 128;
/// Most events in one batch.
pub const MAX_BATCH: usize = 1000;

/// One ingested event, checked. `prefix` is the JSON Pointer of the item (`""`, or `/3` in a
/// batch); `now` is the ingest time (the occurrence of last resort).
pub fn parse_event(
    catalog: &Catalog,
    body: &Value,
    prefix: &str,
    source: EventSource,
    now: OffsetDateTime,
) -> Result<NewEvent, Vec<FieldError>> {
    let at = |p: &str| format!("{prefix}{p}");
    let Some(obj) = body.as_object() else {
        return Err(vec![FieldError::new(
            at(""),
            ErrorCode::InvalidType,
            format!("an event must be a JSON object, not {}", type_name(body)),
        )]);
    };
    let mut errors = Vec::new();
    for key in obj.keys() {
        if !KNOWN_FIELDS.contains(&key.as_str()) {
            errors.push(FieldError::new(
                at(&format!("/{}", pointer_token(key))),
                ErrorCode::UnknownField,
                format!(
                    "unknown field '{key}'; an event has: {}",
                    KNOWN_FIELDS.join(", ")
                ),
            ));
        }
    }

    let event = match obj.get("event") {
        None => {
            errors.push(FieldError::new(
                at("/event"),
                ErrorCode::Required,
                "'event' is required",
            ));
            None
        }
        Some(Value::String(name)) => match catalog.lookup(name) {
            Lookup::Subscribable if catalog.event(name).is_some() => Some(name.clone()),
            Lookup::Reserved(_) => {
                errors.push(
                    FieldError::new(
                        at("/event"),
                        ErrorCode::ReservedEvent,
                        format!(
                            "{name} is reserved: no engine emits it yet and it cannot be ingested \
                             until the catalog marks it available"
                        ),
                    )
                    .with_value(Value::String(name.clone())),
                );
                None
            }
            _ => {
                let suggestion = suggest(catalog, name).filter(|s| !s.ends_with('*'));
                let hint = suggestion
                    .as_ref()
                    .map(|s| format!("; did you mean '{s}'?"))
                    .unwrap_or_else(|| "; GET /v1/events lists the names".into());
                errors.push(
                    FieldError::new(
                        at("/event"),
                        ErrorCode::UnknownEvent,
                        format!("'{name}' is not an event name{hint}"),
                    )
                    .with_value(Value::String(name.clone()))
                    .with_suggestion(suggestion),
                );
                None
            }
        },
        Some(other) => {
            errors.push(
                FieldError::new(
                    at("/event"),
                    ErrorCode::InvalidType,
                    "'event' must be a string",
                )
                .with_value(other.clone()),
            );
            None
        }
    };

    let session_id = match obj.get("sessionId") {
        None => {
            errors.push(FieldError::new(
                at("/sessionId"),
                ErrorCode::Required,
                "'sessionId' is required",
            ));
            None
        }
        Some(Value::String(s))
            if !s.trim().is_empty()
                && s.len() <= MAX_SESSION_ID_LEN
                && !s.chars().any(char::is_control) =>
        {
            Some(s.clone())
        }
        Some(other) => {
            errors.push(
                FieldError::new(
                    at("/sessionId"),
                    ErrorCode::InvalidSessionId,
                    format!("'sessionId' must be 1 to {MAX_SESSION_ID_LEN} printable characters"),
                )
                .with_value(other.clone()),
            );
            None
        }
    };

    let occurred_at = match obj.get("occurredAt") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match clock::parse_rfc3339(s) {
            Some(t) => Some(t),
            None => {
                errors.push(
                    FieldError::new(
                        at("/occurredAt"),
                        ErrorCode::InvalidTimestamp,
                        "'occurredAt' must be an RFC 3339 date-time, e.g. 2026-11-28T10:00:00Z",
                    )
                    .with_value(Value::String(s.clone())),
                );
                None
            }
        },
        Some(other) => {
            errors.push(
                FieldError::new(
                    at("/occurredAt"),
                    ErrorCode::InvalidTimestamp,
                    "'occurredAt' must be an RFC 3339 date-time string",
                )
                .with_value(other.clone()),
            );
            None
        }
    };

    let event_id = match obj.get("eventId") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_EVENT_ID_LEN => Some(s.clone()),
        Some(other) => {
            errors.push(
                FieldError::new(
                    at("/eventId"),
                    ErrorCode::InvalidEventId,
                    format!("'eventId' must be a string of 1 to {MAX_EVENT_ID_LEN} characters"),
                )
                .with_value(other.clone()),
            );
            None
        }
    };

    let data = match obj.get("data") {
        None => {
            errors.push(FieldError::new(
                at("/data"),
                ErrorCode::Required,
                "'data' is required",
            ));
            None
        }
        Some(d @ Value::Object(_)) => Some(d),
        Some(other) => {
            errors.push(FieldError::new(
                at("/data"),
                ErrorCode::InvalidType,
                format!("'data' must be an object, not {}", type_name(other)),
            ));
            None
        }
    };

    if let (Some(event), Some(data)) = (&event, data)
        && let Some(validator) = catalog.validator(event)
    {
        for e in validator.iter_errors(data) {
            errors.push(
                FieldError::new(
                    at(&format!("/data{}", e.instance_path())),
                    ErrorCode::InvalidPayload,
                    format!("{event} payload: {e}"),
                )
                .with_value(scalar_or_null(e.instance())),
            );
        }
    }

    match (event, session_id, data) {
        (Some(event), Some(session_id), Some(data)) if errors.is_empty() => {
            let occurrence = match (&event_id, occurred_at) {
                (Some(id), _) => Occurrence::EventId(id),
                (None, Some(t)) => Occurrence::OccurredAt(t),
                (None, None) => Occurrence::Ingested(now),
            };
            let key = idempotency_key(&event, &session_id, data, &occurrence);
            let status = (event == "session.status")
                .then(|| {
                    data.get("status")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .flatten();
            Ok(NewEvent {
                id: ids::event_id(),
                idempotency_key: key,
                occurred: clock::rfc3339(occurred_at.unwrap_or(now)),
                event,
                session_id,
                data: data.clone(),
                source,
                status,
                only_webhook: None,
            })
        }
        _ => Err(errors),
    }
}

/// Echo scalars back in errors, never whole (possibly large) objects or arrays.
fn scalar_or_null(v: &Value) -> Value {
    match v {
        Value::Array(_) | Value::Object(_) => Value::Null,
        other => other.clone(),
    }
}
