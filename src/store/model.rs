//! Plain data the store reads and writes. No SQL here, no HTTP.

use std::collections::BTreeMap;

use serde_json::Value;

pub use crate::ids::{DeliveryId, EventId, SessionId, WebhookId};
pub use crate::outcome::{DisabledReason, NotDispatched};
use crate::secret::WebhookSecret;
pub use crate::target_url::TargetUrl;

/// Who a key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRole {
    /// Manages registrations.
    Admin,
    /// Engines posting events.
    Ingest,
}

impl KeyRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Ingest => "ingest",
        }
    }
}

/// A stored registration. `secret` is needed to sign deliveries; it never leaves through the API
/// after creation.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub id: WebhookId,
    pub url: TargetUrl,
    pub events: Vec<String>,
    pub session_id: Option<SessionId>,
    pub description: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub secret: WebhookSecret,
    pub active: bool,
    pub rate_limit: Option<f64>,
    pub disabled_reason: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// An event ready to be stored (already validated, key already computed).
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub id: EventId,
    pub idempotency_key: String,
    pub event: String,
    pub session_id: SessionId,
    pub data: Value,
    /// RFC 3339, when the event occurred.
    pub occurred: String,
    pub source: EventSource,
    /// For session.status: the status, so that only changes are dispatched.
    pub status: Option<String>,
    /// Deliver only to this registration (test deliveries), ignoring subscriptions.
    pub only_webhook: Option<WebhookId>,
    /// The subscription patterns that receive this event (`Catalog::matching_patterns`: its
    /// name, its family wildcard and `*`, or only its name for an opt-in event). The store
    /// matches stored patterns against exactly these; the rule itself lives in the catalog.
    pub subscribed_by: [String; 3],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventSource {
    Api,
    OpenWa,
    Waha,
    Evolution,
    Test,
}

impl EventSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::OpenWa => "openwa",
            Self::Waha => "waha",
            Self::Evolution => "evolution",
            Self::Test => "test",
        }
    }
}

/// What happened to one ingested event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestOutcome {
    /// The stored event's id (the earlier one for a duplicate).
    pub event_id: EventId,
    pub idempotency_key: String,
    /// The key had already been accepted: nothing new was stored.
    pub duplicate: bool,
    /// Deliveries were fanned out (false for duplicates and unchanged statuses).
    pub dispatched: bool,
    /// Why it was not (a duplicate, an unchanged status); `None` when it was dispatched.
    pub reason: Option<NotDispatched>,
    /// Ids of the deliveries created.
    pub deliveries: Vec<DeliveryId>,
}

/// A leased delivery with everything needed to send it.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub id: DeliveryId,
    pub webhook_id: WebhookId,
    pub url: TargetUrl,
    pub secret: WebhookSecret,
    pub headers: BTreeMap<String, String>,
    pub rate_limit: Option<f64>,
    pub event: String,
    pub session_id: String,
    pub idempotency_key: String,
    pub occurred: String,
    /// The event's payload, as stored (JSON text).
    pub data: String,
    pub is_test: bool,
    /// Attempts already made.
    pub attempts: u32,
    /// Attempts made before the last redrive (the schedule restarts there).
    pub retry_base: u32,
    /// The claim that holds this delivery (see [`new_claim_token`]); its result is recorded
    /// only with this token.
    pub claim_token: i64,
}

/// A lease an engine holds: the delivery and the token of the claim that leased it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldLease {
    pub delivery_id: DeliveryId,
    pub claim_token: i64,
}

/// A fresh claim token: a random positive 63-bit number, new for every claim, so that a result
/// from a claim that lost its lease (and was taken over) is recognised and dropped.
pub fn new_claim_token() -> i64 {
    i64::try_from(rand::random::<u64>() >> 1).unwrap_or(1)
}

/// The result of one attempt, to be recorded.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub delivery_id: DeliveryId,
    pub webhook_id: WebhookId,
    /// The token of the claim the attempt was made under (`ClaimedDelivery::claim_token`).
    pub claim_token: i64,
    /// 1-based attempt number.
    pub attempt: u32,
    pub started_at_ms: i64,
    pub status_code: Option<u16>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub next: AttemptNext,
}

/// What follows an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptNext {
    Delivered,
    RetryAt(i64),
    Dead,
    /// 410 Gone: dead, and the registration is deactivated.
    Gone,
}

/// A delivery as the API shows it.
#[derive(Debug, Clone)]
pub struct DeliveryInfo {
    pub id: DeliveryId,
    pub webhook_id: WebhookId,
    pub event_id: EventId,
    pub event: String,
    pub idempotency_key: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_attempt_at_ms: Option<i64>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub is_test: bool,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub attempt_log: Vec<AttemptInfo>,
}

#[derive(Debug, Clone)]
pub struct AttemptInfo {
    pub attempt: u32,
    pub started_at_ms: i64,
    pub status_code: Option<u16>,
    pub latency_ms: i64,
    pub error: Option<String>,
}

/// Where a delivery stands. Stored as its [`DeliveryState::as_str`] text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeliveryState {
    /// Waiting for its next attempt (or leased for one right now).
    Pending,
    /// A 2xx answer was received.
    Delivered,
    /// Given up (attempts exhausted, a permanent failure, 410 Gone); can be redriven.
    Dead,
}

impl DeliveryState {
    pub const ALL: [Self; 3] = [Self::Pending, Self::Delivered, Self::Dead];

    /// The text in the `state` column, in the API and in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }

    /// The state a stored text names, if any.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl std::fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for DeliveryState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Deliveries by state. `in_flight` are the pending ones leased right now (an instance is
/// sending them or holds them ready to send); they are counted in `pending` too.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateCounts {
    pub pending: u64,
    pub in_flight: u64,
    pub delivered: u64,
    pub dead: u64,
}

impl StateCounts {
    /// Adds `n` deliveries in `state` (not in flight).
    pub fn add(&mut self, state: DeliveryState, n: u64) {
        match state {
            DeliveryState::Pending => self.pending += n,
            DeliveryState::Delivered => self.delivered += n,
            DeliveryState::Dead => self.dead += n,
        }
    }
}

/// An engine delivery acknowledged without becoming a catalog event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredEvent {
    pub source: EventSource,
    /// The engine's event name (cut to a bounded length by the caller).
    pub name: String,
    pub reason: String,
}

/// What the store knows of one ignored name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredSummary {
    pub source: String,
    pub name: String,
    pub count: u64,
    pub first_seen_at_ms: i64,
    pub last_seen_at_ms: i64,
    pub last_reason: String,
}

/// What one prune removed (see `crate::retention`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneOutcome {
    /// Delivered deliveries removed.
    pub delivered: u64,
    /// Dead deliveries removed.
    pub dead: u64,
    /// Attempts removed with them.
    pub attempts: u64,
    /// Events removed (no delivery left, past the window), with their idempotency keys.
    pub events: u64,
    /// Pages given back to the file system afterwards (SQLite's incremental vacuum; 0 on
    /// PostgreSQL, whose autovacuum reuses the space).
    pub pages_freed: u64,
}

impl PruneOutcome {
    pub fn add(&mut self, o: &Self) {
        self.delivered += o.delivered;
        self.dead += o.dead;
        self.attempts += o.attempts;
        self.events += o.events;
        self.pages_freed += o.pages_freed;
    }

    /// Did anything go?
    pub fn any(&self) -> bool {
        self.delivered + self.dead + self.attempts + self.events > 0
    }

    /// Was a batch of at most `limit` rows full (so more may be left)?
    pub fn full(&self, limit: u32) -> bool {
        let limit = u64::from(limit);
        self.delivered + self.dead >= limit || self.events >= limit
    }
}

/// What [`super::Store::reseal_secrets`] found, and rewrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResealReport {
    /// Registrations read (every one decrypted).
    pub registrations: u64,
    /// Of those, stored otherwise than this store writes (plaintext, or an older key).
    pub not_current: u64,
    /// Of those, rewritten.
    pub rewritten: u64,
}
