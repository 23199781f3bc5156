//! The batch rules of `POST /v1/ingest`: one event, or an array of 1 to [`MAX_BATCH`] events
//! checked together (every problem of every item, or every event).

use serde_json::Value;
use time::OffsetDateTime;

use super::parse_event;
use crate::catalog::Catalog;
use crate::metrics;
use crate::store::{EventSource, NewEvent};
use crate::validation::{ErrorCode, FieldError};

/// Most events in one batch.
pub const MAX_BATCH: usize = 1000;

/// Batches of at least this many events, or bodies of at least this many bytes, are worth
/// checking off the async workers: checking up to [`MAX_BATCH`] payloads against their schemas
/// is CPU work that would otherwise hold a worker (and every request waiting on it).
pub fn is_heavy(events: usize, body_bytes: usize) -> bool {
    const HEAVY_EVENTS: usize = 32;
    const HEAVY_BYTES: usize = 64 * 1024;
    events >= HEAVY_EVENTS || body_bytes >= HEAVY_BYTES
}

/// Why a batch was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchRefusal {
    /// Empty, or more than [`MAX_BATCH`] events (`len` of them).
    Size { len: usize, error: Box<FieldError> },
    /// Every problem of every item.
    Invalid(Vec<FieldError>),
}

/// The size rule of a batch: 1 to [`MAX_BATCH`] events.
pub fn check_batch_size(len: usize) -> Result<(), BatchRefusal> {
    if len == 0 || len > MAX_BATCH {
        return Err(BatchRefusal::Size {
            len,
            error: Box::new(FieldError::new(
                "",
                ErrorCode::InvalidType,
                format!("a batch holds 1 to {MAX_BATCH} events"),
            )),
        });
    }
    Ok(())
}

/// Every event of a batch checked: the events, or every problem found (item `i` under `/i`).
pub fn check_batch(
    catalog: &Catalog,
    items: &[Value],
    now: OffsetDateTime,
) -> Result<Vec<NewEvent>, BatchRefusal> {
    check_batch_size(items.len())?;
    let mut events = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match check_event(catalog, item, &format!("/{i}"), now) {
            Ok(e) => events.push(e),
            Err(errs) => errors.extend(errs),
        }
    }
    if errors.is_empty() {
        Ok(events)
    } else {
        Err(BatchRefusal::Invalid(errors))
    }
}

/// One event posted to the API, checked ([`parse_event`]); a refused one is counted under its
/// name when that is a catalog name, else under `other`.
pub fn check_event(
    catalog: &Catalog,
    item: &Value,
    prefix: &str,
    now: OffsetDateTime,
) -> Result<NewEvent, Vec<FieldError>> {
    parse_event(catalog, item, prefix, EventSource::Api, now).inspect_err(|_| {
        let name = item
            .get("event")
            .and_then(Value::as_str)
            .filter(|n| catalog.event(n).is_some())
            .unwrap_or("other");
        metrics::ingested(name, "refused");
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::clock;

    fn catalog() -> Catalog {
        Catalog::load("http://127.0.0.1").unwrap()
    }

    fn disconnected(session: &str) -> Value {
        json!({"event": "session.disconnected", "sessionId": session,
               "data": {"sessionId": session, "reason": "logout"}})
    }

    #[test]
    fn a_batch_holds_one_to_the_most_events() {
        assert!(check_batch_size(1).is_ok());
        assert!(check_batch_size(MAX_BATCH).is_ok());
        for len in [0, MAX_BATCH + 1] {
            let Err(BatchRefusal::Size { len: got, error }) = check_batch_size(len) else {
                panic!("{len} accepted")
            };
            assert_eq!(got, len);
            assert_eq!(error.pointer, "");
        }
        assert!(matches!(
            check_batch(&catalog(), &[], clock::now()),
            Err(BatchRefusal::Size { len: 0, .. })
        ));
    }

    #[test]
    fn every_problem_of_every_item_under_its_index() {
        let items = [
            disconnected("s1"),
            json!({"event": "session.disconnected"}),
            json!(7),
        ];
        let Err(BatchRefusal::Invalid(errors)) = check_batch(&catalog(), &items, clock::now())
        else {
            panic!("accepted")
        };
        let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(pointers, ["/1/sessionId", "/1/data", "/2"]);
    }

    #[test]
    fn a_good_batch_gives_every_event_in_order() {
        let items = [disconnected("s1"), disconnected("s2")];
        let events = check_batch(&catalog(), &items, clock::now()).unwrap();
        let sessions: Vec<&str> = events.iter().map(|e| e.session_id.as_str()).collect();
        assert_eq!(sessions, ["s1", "s2"]);
    }

    #[test]
    fn heavy_batches_are_many_events_or_many_bytes() {
        assert!(!is_heavy(1, 100));
        assert!(is_heavy(32, 100));
        assert!(is_heavy(1, 64 * 1024));
    }
}
