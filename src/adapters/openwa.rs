//! OpenWA's own webhook deliveries (`{event, timestamp, sessionId, idempotencyKey, deliveryId,
//! data}`, the same envelope in v0.4.3 and the current line) become catalog events.
//!
//! OpenWA's event names are the catalog's names, so the mapping is the engine's source file
//! (`schemas/sources/openwa.json`): a name it lists maps onto that catalog event; a name it does
//! not list (OpenWA's `test` delivery, or an event of a newer OpenWA) is acknowledged and
//! recorded as ignored. OpenWA's `idempotencyKey` names the occurrence: it is stable across
//! OpenWA's retries (and, in the current line, suffixed with `_<webhookId>` of the OpenWA
//! registration), so a redelivery is accepted once.

use serde_json::Value;

use super::{Translated, Translation};
use crate::catalog::SourceDef;
use crate::ingest::time_field;
use crate::validation::{ErrorCode, FieldError, type_name};

/// Translates one OpenWA delivery, or returns every reason it is not one.
pub fn translate(source: &SourceDef, body: &Value) -> Result<Translation, Vec<FieldError>> {
    let Some(env) = body.as_object() else {
        return Err(vec![FieldError::new(
            "",
            ErrorCode::InvalidType,
            format!(
                "an OpenWA webhook delivery is a JSON object with event, sessionId and data, \
                 not {}",
                type_name(body)
            ),
        )]);
    };
    let mut errors = Vec::new();
    let mut string = |name: &str| match env.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        None => {
            errors.push(FieldError::new(
                format!("/{name}"),
                ErrorCode::Required,
                format!("'{name}' is required in an OpenWA delivery"),
            ));
            None
        }
        Some(other) => {
            errors.push(
                FieldError::new(
                    format!("/{name}"),
                    ErrorCode::InvalidType,
                    format!("'{name}' must be a non-empty string"),
                )
                .with_value(scalar(other)),
            );
            None
        }
    };
    let event = string("event");
    let session_id = string("sessionId");
    let data = match env.get("data") {
        Some(d @ Value::Object(_)) => Some(d.clone()),
        None => {
            errors.push(FieldError::new(
                "/data",
                ErrorCode::Required,
                "'data' is required in an OpenWA delivery",
            ));
            None
        }
        Some(other) => {
            errors.push(FieldError::new(
                "/data",
                ErrorCode::InvalidType,
                format!("'data' must be an object, not {}", type_name(other)),
            ));
            None
        }
    };
    let occurrence_id = match env.get("idempotencyKey") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(other) => {
            errors.push(
                FieldError::new(
                    "/idempotencyKey",
                    ErrorCode::InvalidType,
                    "'idempotencyKey' must be a non-empty string",
                )
                .with_value(scalar(other)),
            );
            None
        }
    };
    let occurred_at = time_field(env.get("timestamp"), "/timestamp", "timestamp", &mut errors);
    let (Some(native), Some(session_id), Some(data), true) =
        (event, session_id, data, errors.is_empty())
    else {
        return Err(errors);
    };

    let Some(catalog_event) = source.catalog_events_of(&native).next() else {
        let reason = source
            .unmapped
            .iter()
            .find(|u| u.native == native)
            .map(|u| u.why.clone())
            .unwrap_or_else(|| {
                format!(
                    "'{native}' is not an event wabridge knows {} to send; if a newer {} emits \
                     it, a newer wabridge maps it",
                    source.title, source.title
                )
            });
        return Ok(Translation::Ignored { native, reason });
    };
    Ok(Translation::Events(vec![Translated {
        event: catalog_event.to_owned(),
        native,
        session_id,
        data,
        occurred_at,
        occurrence_id,
    }]))
}

/// Scalars echoed back in errors, never whole objects or arrays.
fn scalar(v: &Value) -> Value {
    match v {
        Value::Array(_) | Value::Object(_) => Value::Null,
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::catalog::Catalog;

    fn openwa() -> SourceDef {
        Catalog::load("http://127.0.0.1")
            .unwrap()
            .sources()
            .engine("openwa")
            .expect("OpenWA is a known source")
            .clone()
    }

    fn envelope(event: &str) -> Value {
        json!({
            "event": event,
            "timestamp": "2026-11-28T10:00:00.000Z",
            "sessionId": "s1",
            "idempotencyKey": "msg_s1_ABC_wh1",
            "deliveryId": "dlv_1",
            "data": {"id": "ABC"}
        })
    }

    #[test]
    fn a_delivery_becomes_its_catalog_event_with_occurrence_and_time() {
        let Translation::Events(events) = translate(&openwa(), &envelope("group.join")).unwrap()
        else {
            panic!("not translated")
        };
        assert_eq!(events.len(), 1);
        let t = &events[0];
        assert_eq!(t.event, "group.join");
        assert_eq!(t.native, "group.join");
        assert_eq!(t.session_id, "s1");
        assert_eq!(t.occurrence_id.as_deref(), Some("msg_s1_ABC_wh1"));
        assert_eq!(t.occurred_at.unwrap().unix_timestamp(), 1_795_860_000);
        assert_eq!(t.data, json!({"id": "ABC"}));
    }

    #[test]
    fn names_outside_the_source_are_ignored_with_a_reason() {
        let Translation::Ignored { native, reason } =
            translate(&openwa(), &envelope("poll.vote")).unwrap()
        else {
            panic!("not ignored")
        };
        assert_eq!(native, "poll.vote");
        assert!(reason.contains("poll.vote"), "{reason}");
        assert!(matches!(
            translate(&openwa(), &envelope("test")).unwrap(),
            Translation::Ignored { .. }
        ));
    }

    #[test]
    fn bodies_that_are_not_envelopes_list_every_problem() {
        for (body, pointers) in [
            (json!([1, 2]), vec![""]),
            (json!("text"), vec![""]),
            (json!({}), vec!["/event", "/sessionId", "/data"]),
            (
                json!({"event": "message.received", "sessionId": "s1"}),
                vec!["/data"],
            ),
            (
                json!({"event": 7, "sessionId": "s1", "data": []}),
                vec!["/event", "/data"],
            ),
            (
                json!({"event": "message.received", "sessionId": "s1", "data": {}, "timestamp": "yesterday"}),
                vec!["/timestamp"],
            ),
        ] {
            let errors = translate(&openwa(), &body).unwrap_err();
            let got: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
            assert_eq!(got, pointers, "{body}");
        }
    }
}
