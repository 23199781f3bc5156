//! Delivery: the engine that claims due deliveries from the store and POSTs them, and the pure
//! pieces it is made of (retry maths, signing, idempotency keys, request building, the outbound
//! network policy). Nothing here knows HTTP *serving* (`http/`), only the outbound client.

mod attempt;
mod engine;
pub mod idempotency;
pub mod net_policy;
pub mod request;
pub mod retry;
pub mod signer;

use std::sync::Arc;

use tokio::sync::Notify;

pub use engine::{Engine, EngineConfig};

/// Wakes the engine when new work was committed, so deliveries leave at once instead of at the
/// next poll.
#[derive(Clone, Default)]
pub struct Wakeup(Arc<Notify>);

impl Wakeup {
    pub fn notify(&self) {
        self.0.notify_one();
    }

    async fn notified(&self) {
        self.0.notified().await;
    }
}
