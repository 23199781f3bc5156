//! Engine adapters: each engine's own webhook delivery becomes zero or more catalog events.
//!
//! An adapter is pure: it takes the parsed body of one delivery and returns a [`Translation`],
//! or every problem when the body is not a delivery of that engine (answered with 400, so the
//! engine sees the refusal). It does no I/O and does not know HTTP; authentication lives beside
//! it (`auth` functions, pure), and the route in `http/routes/` only parses, calls and renders.
//! What an adapter returns still goes through the ingest rules (`ingest::check_translated`):
//! the event must be able to fire on this bridge, its payload must validate against the
//! catalog schema, and its idempotency key is computed there, once.

pub mod evolution;
pub mod openwa;
pub mod waha;

use serde_json::Value;
use time::OffsetDateTime;

/// One catalog event, produced from an engine's delivery, before the ingest rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Translated {
    /// The catalog name (`message.received`).
    pub event: String,
    /// The engine's name for what it sent (`message.any`), for logs and the source's trace.
    pub native: String,
    pub session_id: String,
    /// The payload in the catalog's shape for `event`.
    pub data: Value,
    /// When the engine says the event occurred, if it says so reliably.
    pub occurred_at: Option<OffsetDateTime>,
    /// The engine's own name for this occurrence, stable across the engine's retries (OpenWA's
    /// `idempotencyKey`, WAHA's envelope `id`, a digest of Evolution's body). Occurrence-keyed
    /// events use it, so an engine's redelivery is accepted once; content-keyed events ignore it.
    pub occurrence_id: Option<String>,
}

/// What an adapter made of one well-formed delivery.
#[derive(Debug, Clone, PartialEq)]
pub enum Translation {
    /// Catalog events to ingest, in order (a WAHA status change may give two).
    Events(Vec<Translated>),
    /// A delivery with no catalog counterpart: acknowledged (so the engine does not retry it),
    /// logged, counted and listed at `GET /v1/ingest/ignored`. Never silently dropped.
    Ignored {
        /// The engine's event name.
        native: String,
        /// Why it has no catalog event, for the operator.
        reason: String,
    },
}
