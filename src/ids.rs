//! Identifiers: a short type prefix and a time-ordered UUID (v7), so ids sort by creation time
//! and a stray id says what it names.

use uuid::Uuid;

fn prefixed(prefix: &str) -> String {
    format!("{prefix}_{}", Uuid::now_v7().simple())
}

/// `wh_…`: a registration.
pub fn webhook_id() -> String {
    prefixed("wh")
}

/// `evt_…`: an ingested event.
pub fn event_id() -> String {
    prefixed("evt")
}

/// `dlv_…`: one delivery of one event to one registration.
pub fn delivery_id() -> String {
    prefixed("dlv")
}
