//! The test event of a registration (`POST /v1/webhooks/{id}/test`): an example payload of one
//! event the registration receives, for that registration only, keyed by the ingest key rules
//! like every other event.

use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::catalog::Catalog;
use crate::clock;
use crate::idempotency::test_key;
use crate::ids::{self, SessionId};
use crate::store::{EventSource, NewEvent, Webhook};
use crate::validation::{ErrorCode, FieldError};

/// Why no test event can be made for a registration.
#[derive(Debug, Clone, PartialEq)]
pub enum TestEventRefusal {
    /// The event asked for is not one the registration receives on this bridge (400).
    NotSubscribed {
        event: String,
        error: Box<FieldError>,
    },
    /// The registration receives no event available on this bridge (404).
    NothingAvailable,
}

/// The test event for `webhook`: `wanted` if the registration receives it, else the first
/// available event it receives; the payload is the event's first example, the session the
/// registration's (else the example's, else `test`). Its key is computed here, once.
pub fn test_event(
    catalog: &Catalog,
    webhook: &Webhook,
    wanted: Option<&str>,
    now: OffsetDateTime,
) -> Result<NewEvent, TestEventRefusal> {
    let subscribed = |name: &str| {
        webhook
            .events
            .iter()
            .any(|p| catalog.pattern_matches(p, name))
    };
    let event = match wanted {
        Some(name) if catalog.available().any(|e| e.name == name) && subscribed(name) => {
            name.to_owned()
        }
        Some(name) => {
            return Err(TestEventRefusal::NotSubscribed {
                event: name.to_owned(),
                error: Box::new(
                    FieldError::new(
                        "/event",
                        ErrorCode::UnknownEvent,
                        format!(
                            "pick one of the events this registration receives: {}",
                            webhook.events.join(", ")
                        ),
                    )
                    .with_value(Value::String(name.to_owned())),
                ),
            });
        }
        None => catalog
            .available()
            .map(|e| e.name.clone())
            .find(|n| subscribed(n))
            .ok_or(TestEventRefusal::NothingAvailable)?,
    };
    let data = catalog
        .examples(&event)
        .first()
        .cloned()
        .unwrap_or_else(|| json!({}));
    let session_id = webhook
        .session_id
        .clone()
        .or_else(|| {
            // The catalog's own example: taken as it is.
            data.get("sessionId")
                .and_then(Value::as_str)
                .map(SessionId::from_stored)
        })
        .unwrap_or_else(|| SessionId::from_stored("test"));
    let id = ids::EventId::new();
    Ok(NewEvent {
        idempotency_key: test_key(id.as_str()),
        id,
        subscribed_by: catalog.matching_patterns(&event),
        event,
        session_id,
        data,
        occurred: clock::rfc3339(now),
        source: EventSource::Test,
        status: None,
        only_webhook: Some(webhook.id.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::WebhookSecret;

    fn catalog() -> Catalog {
        Catalog::load("http://127.0.0.1").unwrap()
    }

    fn webhook(events: &[&str], session: Option<&str>) -> Webhook {
        Webhook {
            id: crate::store::WebhookId::from_stored("wh_1"),
            url: crate::target_url::TargetUrl::parse("http://127.0.0.1/hook").unwrap(),
            events: events.iter().map(|e| (*e).to_owned()).collect(),
            session_id: session.map(SessionId::from_stored),
            description: None,
            headers: Default::default(),
            secret: WebhookSecret::generate(),
            active: true,
            rate_limit: None,
            disabled_reason: None,
            created_at_ms: 0,
            updated_at_ms: 0,
        }
    }

    #[test]
    fn the_event_asked_for_with_its_example_for_this_registration_only() {
        let catalog = catalog();
        let w = webhook(&["session.disconnected", "message.*"], Some("s9"));
        let now = clock::now();
        let e = test_event(&catalog, &w, Some("session.disconnected"), now).unwrap();
        assert_eq!(e.event, "session.disconnected");
        assert_eq!(e.session_id, "s9");
        assert_eq!(e.source, EventSource::Test);
        assert_eq!(e.only_webhook.as_ref().map(|w| w.as_str()), Some("wh_1"));
        assert_eq!(&e.data, &catalog.examples("session.disconnected")[0]);
        assert_eq!(e.idempotency_key, test_key(e.id.as_str()));
        assert_eq!(e.occurred, clock::rfc3339(now));
        // Each test is its own fact: a second one gets another key.
        let again = test_event(&catalog, &w, Some("session.disconnected"), now).unwrap();
        assert_ne!(again.idempotency_key, e.idempotency_key);
    }

    #[test]
    fn without_a_name_the_first_available_event_received() {
        let catalog = catalog();
        let w = webhook(&["message.*"], None);
        let e = test_event(&catalog, &w, None, clock::now()).unwrap();
        assert!(e.event.starts_with("message."), "{}", e.event);
        assert!(!e.session_id.as_str().is_empty());
    }

    #[test]
    fn an_event_not_received_is_refused_and_nothing_received_is_not_found() {
        let catalog = catalog();
        let w = webhook(&["session.disconnected"], None);
        let Err(TestEventRefusal::NotSubscribed { event, error }) =
            test_event(&catalog, &w, Some("session.qr"), clock::now())
        else {
            panic!("not refused")
        };
        assert_eq!(event, "session.qr");
        assert_eq!(error.pointer, "/event");
        let none = webhook(&[], None);
        assert!(matches!(
            test_event(&catalog, &none, None, clock::now()),
            Err(TestEventRefusal::NothingAvailable)
        ));
    }
}
