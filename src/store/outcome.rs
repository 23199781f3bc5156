//! The outcomes both backends build, written once: what one ingested event became, and the
//! state an attempt result leaves its delivery in.

use super::{AttemptNext, DeliveryId, DeliveryState, EventId, IngestOutcome, NotDispatched};

impl IngestOutcome {
    /// The key was accepted before (as `event_id`): nothing new was stored.
    pub(super) fn duplicate(event_id: String, key: &str) -> Self {
        Self {
            event_id: EventId::from_stored(event_id),
            idempotency_key: key.to_owned(),
            duplicate: true,
            dispatched: false,
            reason: Some(NotDispatched::Duplicate),
            deliveries: Vec::new(),
        }
    }

    /// Stored, but not fanned out: a `session.status` that changes nothing.
    pub(super) fn status_unchanged(
        event_id: String,
        key: &str,
        session_id: &str,
        status: &str,
    ) -> Self {
        Self {
            event_id: EventId::from_stored(event_id),
            idempotency_key: key.to_owned(),
            duplicate: false,
            dispatched: false,
            reason: Some(NotDispatched::StatusUnchanged {
                session_id: session_id.to_owned(),
                status: status.to_owned(),
            }),
            deliveries: Vec::new(),
        }
    }

    /// Stored and fanned out to these deliveries (perhaps none).
    pub(super) fn dispatched(event_id: String, key: &str, deliveries: Vec<DeliveryId>) -> Self {
        Self {
            event_id: EventId::from_stored(event_id),
            idempotency_key: key.to_owned(),
            duplicate: false,
            dispatched: true,
            reason: None,
            deliveries,
        }
    }
}

impl AttemptNext {
    /// The state this result leaves the delivery in, and when it is due again (a retry only).
    pub(super) fn state(&self) -> (DeliveryState, Option<i64>) {
        match self {
            Self::Delivered => (DeliveryState::Delivered, None),
            Self::RetryAt(at) => (DeliveryState::Pending, Some(*at)),
            Self::Dead | Self::Gone => (DeliveryState::Dead, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attempt_result_sets_the_state() {
        assert_eq!(
            AttemptNext::Delivered.state(),
            (DeliveryState::Delivered, None)
        );
        assert_eq!(
            AttemptNext::RetryAt(7).state(),
            (DeliveryState::Pending, Some(7))
        );
        assert_eq!(AttemptNext::Dead.state(), (DeliveryState::Dead, None));
        assert_eq!(AttemptNext::Gone.state(), (DeliveryState::Dead, None));
    }

    #[test]
    fn outcomes_say_why_nothing_was_dispatched() {
        let d = IngestOutcome::duplicate("ev1".into(), "k");
        assert!(d.duplicate && !d.dispatched);
        assert_eq!(d.reason, Some(NotDispatched::Duplicate));
        let u = IngestOutcome::status_unchanged("ev2".into(), "k", "s", "CONNECTED");
        assert!(!u.duplicate && !u.dispatched);
        let ok = IngestOutcome::dispatched("ev3".into(), "k", vec![DeliveryId::from_stored("dl1")]);
        assert!(ok.dispatched && ok.reason.is_none());
        assert_eq!(ok.deliveries, ["dl1"]);
    }

    #[test]
    fn states_read_back_from_their_text() {
        for s in DeliveryState::ALL {
            assert_eq!(DeliveryState::parse(s.as_str()), Some(s));
        }
        assert_eq!(DeliveryState::parse("leased"), None);
    }
}
