//! Plain data for the operator's views (`GET /v1/stats`, `GET /v1/webhooks/{id}/stats`, the
//! envelope of a delivery). No SQL here, no HTTP.

/// Deliveries by state. `in_flight` are the pending ones leased right now (an instance is
/// sending them or holds them ready to send); they are counted in `pending` too.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateCounts {
    pub pending: u64,
    pub in_flight: u64,
    pub delivered: u64,
    pub dead: u64,
}

/// The stored event one delivery carries: everything its envelope is built from, and nothing
/// that signs it.
#[derive(Debug, Clone)]
pub struct DeliveryEvent {
    pub delivery_id: String,
    pub webhook_id: String,
    pub event: String,
    pub session_id: String,
    pub idempotency_key: String,
    /// RFC 3339, when the event occurred (the envelope's `timestamp`).
    pub occurred: String,
    /// The payload as stored (JSON text).
    pub data: String,
    pub is_test: bool,
}
