//! Plain data for the operator's views (`GET /v1/stats`, `GET /v1/webhooks/{id}/stats`, the
//! envelope of a delivery). No SQL here, no HTTP.

/// The stored event one delivery carries: everything its envelope is built from, and nothing
/// that signs it.
#[derive(Debug, Clone)]
pub struct DeliveryEvent {
    pub delivery_id: super::DeliveryId,
    pub webhook_id: super::WebhookId,
    pub event: String,
    pub session_id: String,
    pub idempotency_key: String,
    /// RFC 3339, when the event occurred (the envelope's `timestamp`).
    pub occurred: String,
    /// The payload as stored (JSON text).
    pub data: String,
    pub is_test: bool,
}
