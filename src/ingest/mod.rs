//! Ingest rules: an engine's event body becomes a [`NewEvent`] ready for the store (its shape
//! validated by the compiled `schemas/ingest.json`, its name against the catalog, its payload
//! against the event's schema, idempotency key computed), or every problem.

mod batch;
mod shape;
mod test_event;
mod translation;

use serde_json::Value;
use time::OffsetDateTime;

use crate::adapters::Translated;
use crate::catalog::{Catalog, Lookup, suggest, unknown_event_message};
use crate::clock;
use crate::idempotency::{Occurrence, idempotency_key};
use crate::ids::{self, SessionId};
use crate::store::{EventSource, NewEvent};
use crate::validation::{ErrorCode, FieldError, pointer_token, type_name};
use shape::{Misfit, Shape};

pub use batch::{BatchRefusal, MAX_BATCH, check_batch, check_batch_size, check_event, is_heavy};
pub use test_event::{TestEventRefusal, test_event};
pub use translation::{CheckedTranslation, check_translation};

/// The fields of `ingest.json`, in its order (for messages; a test holds them to the schema).
const KNOWN_FIELDS: &[&str] = &["event", "sessionId", "data", "occurredAt", "eventId"];
/// `ingest.json`'s `eventId` `maxLength` (for messages; a test holds it to the schema).
const MAX_EVENT_ID_LEN: usize = 200;

/// One ingested event, checked: its shape by the compiled `schemas/ingest.json` ([`Shape`]),
/// then what a schema cannot say (the name against this bridge's catalog, the session id's
/// characters, the time parsed, the payload against its event's schema). `prefix` is the JSON
/// Pointer of the item (`""`, or `/3` in a batch); `now` is the ingest time (the occurrence of
/// last resort).
pub fn parse_event(
    catalog: &Catalog,
    body: &Value,
    prefix: &str,
    source: EventSource,
    now: OffsetDateTime,
) -> Result<NewEvent, Vec<FieldError>> {
    let at = |p: &str| format!("{prefix}{p}");
    let shape = Shape::of(catalog.ingest_validator(), body);
    let obj = match body.as_object() {
        Some(obj) if !shape.not_object => obj,
        _ => {
            return Err(vec![FieldError::new(
                at(""),
                ErrorCode::InvalidType,
                format!("an event must be a JSON object, not {}", type_name(body)),
            )]);
        }
    };
    let mut errors = Vec::new();
    for key in obj.keys().filter(|k| shape.unknown.contains(*k)) {
        errors.push(FieldError::new(
            at(&format!("/{}", pointer_token(key))),
            ErrorCode::UnknownField,
            format!(
                "unknown field '{key}'; an event has: {}",
                KNOWN_FIELDS.join(", ")
            ),
        ));
    }
    let required = |field: &str, errors: &mut Vec<FieldError>| {
        let missing = shape.missing.contains(field);
        if missing {
            errors.push(FieldError::new(
                at(&format!("/{field}")),
                ErrorCode::Required,
                format!("'{field}' is required"),
            ));
        }
        !missing
    };

    let event = match obj.get("event") {
        _ if !required("event", &mut errors) => None,
        Some(other) if shape.misfit("event") == Some(Misfit::Type) => {
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
        // An empty name (too short for the schema) is not an event name: the name rule says so.
        Some(Value::String(name)) => match name_problem(catalog, name, &at("/event")) {
            None => Some(name.clone()),
            Some(e) => {
                errors.push(e);
                None
            }
        },
        _ => None,
    };

    let session_id = match obj.get("sessionId") {
        _ if !required("sessionId", &mut errors) => None,
        Some(v) if shape.misfit("sessionId").is_some() => {
            errors.push(session_id_problem(v, &at("/sessionId")));
            None
        }
        Some(v) => check_session_id(v, &at("/sessionId"), &mut errors),
        None => None,
    };

    let occurred_at = time_field(
        obj.get("occurredAt"),
        &at("/occurredAt"),
        "occurredAt",
        &mut errors,
    );

    let event_id = match obj.get("eventId") {
        Some(other) if shape.misfit("eventId").is_some() => {
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
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    };

    let data = match obj.get("data") {
        _ if !required("data", &mut errors) => None,
        Some(other) if shape.misfit("data").is_some() => {
            errors.push(FieldError::new(
                at("/data"),
                ErrorCode::InvalidType,
                format!("'data' must be an object, not {}", type_name(other)),
            ));
            None
        }
        other => other,
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
            let why = catalog.wrong_name(name).map(|w| w.why.as_str());
            Some(
                FieldError::new(
                    pointer,
                    ErrorCode::UnknownEvent,
                    unknown_event_message(name, suggestion.as_deref(), why),
                )
                .with_value(Value::String(name.to_owned()))
                .with_suggestion(suggestion),
            )
        }
    }
}

/// A session id, or a problem pushed onto `errors`: the schema's rules (a string, not empty)
/// and what it cannot say ([`SessionId::parse`]: not only white space, at most 128 characters,
/// no control character; the limit is not in `ingest.json`, whose description of `sessionId`
/// states it in words, since the contract snapshot keeps that file as served).
fn check_session_id(v: &Value, pointer: &str, errors: &mut Vec<FieldError>) -> Option<SessionId> {
    let parsed = v.as_str().and_then(SessionId::parse);
    if parsed.is_none() {
        errors.push(session_id_problem(v, pointer));
    }
    parsed
}

fn session_id_problem(v: &Value, pointer: &str) -> FieldError {
    FieldError::new(
        pointer,
        ErrorCode::InvalidSessionId,
        format!(
            "'sessionId' must be 1 to {} printable characters",
            SessionId::MAX_LEN
        ),
    )
    .with_value(scalar_or_null(v))
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
    session_id: SessionId,
    data: Value,
    occurrence: &Occurrence<'_>,
    occurred: OffsetDateTime,
    source: EventSource,
) -> NewEvent {
    let key = idempotency_key(&event, session_id.as_str(), &data, occurrence);
    let status = (event == "session.status")
        .then(|| {
            data.get("status")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .flatten();
    NewEvent {
        id: ids::EventId::new(),
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

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn catalog() -> Catalog {
        Catalog::load("http://127.0.0.1").unwrap()
    }

    /// The problems of each body in `fixtures/refusals.json` were recorded from the hand-written
    /// rules before `ingest.json` was compiled into them: the answers stay the same.
    #[test]
    fn refusals_are_as_recorded() {
        let catalog = catalog();
        let cases: Vec<Value> =
            serde_json::from_str(include_str!("fixtures/refusals.json")).unwrap();
        for case in cases {
            let body = &case["body"];
            match parse_event(&catalog, body, "", EventSource::Api, clock::now()) {
                Ok(e) => assert_eq!(case["accepted"], Value::String(e.event), "{body}"),
                Err(errors) => {
                    assert_eq!(
                        serde_json::to_value(&errors).unwrap(),
                        case["errors"],
                        "{body}"
                    );
                }
            }
        }
    }

    #[test]
    fn item_pointers_carry_the_batch_prefix() {
        let errors = parse_event(
            &catalog(),
            &serde_json::json!({"sessionId": 5, "x": 1}),
            "/3",
            EventSource::Api,
            clock::now(),
        )
        .unwrap_err();
        let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(pointers, ["/3/x", "/3/event", "/3/sessionId", "/3/data"]);
    }

    #[test]
    fn the_message_constants_are_the_schemas() {
        let catalog = catalog();
        let schema = &catalog.files()["ingest.json"].json;
        let names: Vec<&str> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(names, KNOWN_FIELDS);
        assert_eq!(
            schema["properties"]["eventId"]["maxLength"],
            MAX_EVENT_ID_LEN
        );
    }
}
