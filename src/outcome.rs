//! Why something did not happen, as plain values, and how each is said. The store reports these
//! (and keeps their text in its records); `http/` renders them. No SQL here, no HTTP.

use std::fmt;

/// Why an accepted event was not fanned out to deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotDispatched {
    /// The idempotency key had already been accepted: nothing new was stored.
    Duplicate,
    /// A `session.status` event that does not change the session's stored status.
    StatusUnchanged { session_id: String, status: String },
}

impl fmt::Display for NotDispatched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Duplicate => {
                f.write_str("this idempotency key was already accepted; nothing new was stored")
            }
            Self::StatusUnchanged { session_id, status } => write!(
                f,
                "session {session_id} is already '{status}': session.status is dispatched only when it changes"
            ),
        }
    }
}

/// Why the bridge itself deactivated a registration (kept as its `disabled_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisabledReason {
    /// The endpoint answered 410 Gone.
    Gone,
}

impl fmt::Display for DisabledReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Gone => {
                f.write_str("the endpoint answered 410 Gone; set active to true to resume")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_the_ones_clients_know() {
        assert_eq!(
            NotDispatched::Duplicate.to_string(),
            "this idempotency key was already accepted; nothing new was stored"
        );
        let unchanged = NotDispatched::StatusUnchanged {
            session_id: "s1".into(),
            status: "CONNECTED".into(),
        };
        assert_eq!(
            unchanged.to_string(),
            "session s1 is already 'CONNECTED': session.status is dispatched only when it changes"
        );
        assert_eq!(
            DisabledReason::Gone.to_string(),
            "the endpoint answered 410 Gone; set active to true to resume"
        );
    }
}
