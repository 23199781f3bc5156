//! Ingest rules: an engine's event body becomes a [`NewEvent`] ready for the store (validated
//! against the catalog and its payload schema, idempotency key computed), or every problem.

mod batch;
mod test_event;
mod translation;

use serde_json::Value;
use time::OffsetDateTime;

use crate::adapters::Translated;
use crate::catalog::{Catalog, Lookup, suggest};
use crate::clock;
use crate::delivery::idempotency::{Occurrence, idempotency_key};
use crate::ids;
use crate::registration::clip;
use crate::registration::{ErrorCode, FieldError, pointer_token, type_name};
use crate::store::{EventSource, NewEvent};

pub use batch::{BatchRefusal, MAX_BATCH, check_batch, check_batch_size, check_event, is_heavy};
pub use test_event::{TestEventRefusal, test_event};
pub use translation::{CheckedTranslation, check_translation};

const KNOWN_FIELDS: &[&str] = &["event", "sessionId", "data", "occurredAt", "eventId"];
const MAX_EVENT_ID_LEN: usize = 200;
const MAX_SESSION_ID_LEN: usize = 128;

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
        Some(Value::String(name)) => match name_problem(catalog, name, &at("/event")) {
            None => Some(name.clone()),
            Some(e) => {
                errors.push(e);
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
        Some(v) => check_session_id(v, &at("/sessionId"), &mut errors),
    };

    let occurred_at = time_field(
        obj.get("occurredAt"),
        &at("/occurredAt"),
        "occurredAt",
        &mut errors,
    );

    let event_id = match obj.get("eventId") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= MAX_EVENT_ID_LEN => {
            Some(s.clone())
        }
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

    if let (Some(event), Some(data)) = (&event, data) {
        errors.extend(check_payload(catalog, event, data, &at("/data")));
    }

    match (event, session_id, data) {
        (Some(event), Some(session_id), Some(data)) if errors.is_empty() => {
            let occurrence = match (&event_id, occurred_at) {
                (Some(id), _) => Occurrence::EventId(id),
                (None, Some(t)) => Occurrence::OccurredAt(t),
                (None, None) => Occurrence::Ingested(now),
            };
            Ok(new_event(
                catalog,
                event,
                session_id,
                data.clone(),
                &occurrence,
                occurred_at.unwrap_or(now),
                source,
            ))
        }
        _ => Err(errors),
    }
}

/// An optional RFC 3339 date-time field (`occurredAt`, an engine's `timestamp`): absent or null
/// is `None`; anything else that is not one is a problem at `pointer`, pushed onto `errors`.
pub fn time_field(
    v: Option<&Value>,
    pointer: &str,
    name: &str,
    errors: &mut Vec<FieldError>,
) -> Option<OffsetDateTime> {
    let (message, value) = match v {
        None | Some(Value::Null) => return None,
        Some(Value::String(s)) => match clock::parse_rfc3339(s) {
            Some(t) => return Some(t),
            None => (
                format!("'{name}' must be an RFC 3339 date-time, e.g. 2026-11-28T10:00:00Z"),
                Value::String(s.clone()),
            ),
        },
        Some(other) => (
            format!("'{name}' must be an RFC 3339 date-time string"),
            other.clone(),
        ),
    };
    errors.push(FieldError::new(pointer, ErrorCode::InvalidTimestamp, message).with_value(value));
    None
}

/// Why an engine's translated event was not accepted.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// The event cannot fire on this bridge (no configured source emits it): the delivery is
    /// acknowledged and recorded as ignored, with this reason.
    ReservedHere(String),
    /// The event does not fit the contract: every problem (answered with 400).
    Invalid(Vec<FieldError>),
}

/// The ingest rules for an event an adapter produced: the same name, session and payload rules
/// as [`parse_event`], and the key computed here, once. The engine's occurrence id (if any)
/// names the occurrence, else its time, else the ingest time.
pub fn check_translated(
    catalog: &Catalog,
    t: &Translated,
    source: EventSource,
    now: OffsetDateTime,
) -> Result<NewEvent, Refusal> {
    if catalog.event(&t.event).is_some()
        && let Some(reason) = catalog.reserved_reason(&t.event)
    {
        return Err(Refusal::ReservedHere(reason));
    }
    let mut errors = Vec::new();
    errors.extend(name_problem(catalog, &t.event, "/event"));
    let session_id = check_session_id(
        &Value::String(t.session_id.clone()),
        "/sessionId",
        &mut errors,
    );
    if !t.data.is_object() {
        errors.push(FieldError::new(
            "/data",
            ErrorCode::InvalidType,
            format!("'data' must be an object, not {}", type_name(&t.data)),
        ));
    } else if errors.is_empty() {
        errors.extend(check_payload(catalog, &t.event, &t.data, "/data"));
    }
    match session_id {
        Some(session_id) if errors.is_empty() => {
            let occurrence = match (&t.occurrence_id, t.occurred_at) {
                (Some(id), _) => Occurrence::EventId(id),
                (None, Some(at)) => Occurrence::OccurredAt(at),
                (None, None) => Occurrence::Ingested(now),
            };
            Ok(new_event(
                catalog,
                t.event.clone(),
                session_id,
                t.data.clone(),
                &occurrence,
                t.occurred_at.unwrap_or(now),
                source,
            ))
        }
        _ => Err(Refusal::Invalid(errors)),
    }
}

/// Why a name cannot be ingested here, if it cannot: only a catalog event that can fire on this
/// bridge can.
fn name_problem(catalog: &Catalog, name: &str, pointer: &str) -> Option<FieldError> {
    match catalog.lookup(name) {
        Lookup::Subscribable if catalog.event(name).is_some() => None,
        Lookup::Reserved(_) => Some(
            FieldError::new(
                pointer,
                ErrorCode::ReservedEvent,
                catalog
                    .reserved_reason(name)
                    .unwrap_or_else(|| format!("{name} cannot fire on this bridge")),
            )
            .with_value(Value::String(name.to_owned())),
        ),
        _ => {
            let suggestion = suggest(catalog, name).filter(|s| !s.ends_with('*'));
            let hint = suggestion
                .as_ref()
                .map(|s| format!("; did you mean '{s}'?"))
                .unwrap_or_else(|| "; GET /v1/events lists the names".into());
            Some(
                FieldError::new(
                    pointer,
                    ErrorCode::UnknownEvent,
                    format!("'{}' is not an event name{hint}", clip(name)),
                )
                .with_value(Value::String(name.to_owned()))
                .with_suggestion(suggestion),
            )
        }
    }
}

/// A session id, or a problem pushed onto `errors`.
fn check_session_id(v: &Value, pointer: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    match v {
        Value::String(s)
            if !s.trim().is_empty()
                && s.chars().count() <= MAX_SESSION_ID_LEN
                && !s.chars().any(char::is_control) =>
        {
            Some(s.clone())
        }
        other => {
            errors.push(
                FieldError::new(
                    pointer,
                    ErrorCode::InvalidSessionId,
                    format!("'sessionId' must be 1 to {MAX_SESSION_ID_LEN} printable characters"),
                )
                .with_value(scalar_or_null(other)),
            );
            None
        }
    }
}

/// Every problem of a payload against its event's schema.
fn check_payload(catalog: &Catalog, event: &str, data: &Value, pointer: &str) -> Vec<FieldError> {
    let Some(validator) = catalog.validator(event) else {
        return Vec::new();
    };
    validator
        .iter_errors(data)
        .map(|e| {
            FieldError::new(
                format!("{pointer}{}", e.instance_path()),
                ErrorCode::InvalidPayload,
                format!("{event} payload: {e}"),
            )
            .with_value(scalar_or_null(e.instance()))
        })
        .collect()
}

/// The checked event, its key computed once.
fn new_event(
    catalog: &Catalog,
    event: String,
    session_id: String,
    data: Value,
    occurrence: &Occurrence<'_>,
    occurred: OffsetDateTime,
    source: EventSource,
) -> NewEvent {
    let key = idempotency_key(&event, &session_id, &data, occurrence);
    let status = (event == "session.status")
        .then(|| {
            data.get("status")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .flatten();
    NewEvent {
        id: ids::event_id(),
        idempotency_key: key,
        occurred: clock::rfc3339(occurred),
        subscribed_by: catalog.matching_patterns(&event),
        event,
        session_id,
        data,
        source,
        status,
        only_webhook: None,
    }
}

/// Echo scalars back in errors, never whole (possibly large) objects or arrays.
fn scalar_or_null(v: &Value) -> Value {
    match v {
        Value::Array(_) | Value::Object(_) => Value::Null,
        other => other.clone(),
    }
}
