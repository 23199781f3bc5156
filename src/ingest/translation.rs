//! What an engine adapter's translation becomes under the ingest rules: events to commit,
//! events recorded as ignored (they cannot fire on this bridge), or every problem.

use time::OffsetDateTime;

use super::{Refusal, check_translated};
use crate::adapters::Translated;
use crate::catalog::Catalog;
use crate::metrics;
use crate::store::{EventSource, IgnoredEvent, NewEvent};
use crate::validation::{FieldError, clip};

/// The translated events of one engine delivery, checked.
#[derive(Debug, Default)]
pub struct CheckedTranslation {
    /// Events that fit the contract, in order, each with its key.
    pub events: Vec<NewEvent>,
    /// Events no configured source emits: acknowledged and recorded as ignored.
    pub ignored: Vec<IgnoredEvent>,
    /// Every problem of the events that do not fit the contract (the whole delivery is refused).
    pub errors: Vec<FieldError>,
}

/// Checks every translated event of one delivery ([`check_translated`]); a refused one is
/// counted under its name when that is a catalog name, else under `other`.
pub fn check_translation(
    catalog: &Catalog,
    source: EventSource,
    translated: &[Translated],
    now: OffsetDateTime,
) -> CheckedTranslation {
    let mut out = CheckedTranslation {
        events: Vec::with_capacity(translated.len()),
        ..CheckedTranslation::default()
    };
    for t in translated {
        match check_translated(catalog, t, source, now) {
            Ok(e) => out.events.push(e),
            Err(Refusal::ReservedHere(reason)) => out.ignored.push(IgnoredEvent {
                source,
                name: clip(&t.native).into_owned(),
                reason: format!("mapped onto {}, but {reason}", t.event),
            }),
            Err(Refusal::Invalid(errs)) => {
                metrics::ingested(
                    if catalog.event(&t.event).is_some() {
                        &t.event
                    } else {
                        "other"
                    },
                    "refused",
                );
                out.errors.extend(errs);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::clock;

    fn translated(event: &str, data: serde_json::Value) -> Translated {
        Translated {
            event: event.into(),
            native: format!("native.{event}"),
            session_id: "s1".into(),
            data,
            occurred_at: None,
            occurrence_id: Some("occ-1".into()),
        }
    }

    #[test]
    fn events_ignored_and_problems_are_told_apart() {
        let catalog = Catalog::load("http://127.0.0.1").unwrap();
        let good = translated(
            "session.disconnected",
            json!({"sessionId": "s1", "reason": "logout"}),
        );
        let bad = translated("session.disconnected", json!({"sessionId": 7}));
        let checked = check_translation(
            &catalog,
            EventSource::Waha,
            &[good.clone(), bad],
            clock::now(),
        );
        assert_eq!(checked.events.len(), 1);
        assert_eq!(checked.events[0].event, "session.disconnected");
        assert!(checked.ignored.is_empty());
        assert!(!checked.errors.is_empty());
        assert!(
            checked
                .errors
                .iter()
                .all(|e| e.pointer.starts_with("/data")),
            "{:?}",
            checked.errors
        );
    }
}
