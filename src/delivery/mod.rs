//! Delivery: the engine that claims due deliveries from the store and POSTs them, and the pure
//! pieces it is made of (retry maths, signing, request building, the outbound
//! network policy). Nothing here knows HTTP *serving* (`http/`), only the outbound client.

mod attempt;
mod claiming;
mod engine;
mod lanes;
pub mod net_policy;
mod plain_http;
pub mod request;
pub mod retry;
mod room;
pub mod signer;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

pub use engine::{Engine, EngineConfig};

use crate::store::{
    ClaimedDelivery, IngestOutcome, NewEvent, Store, StoreError, StoreResult, WebhookId,
};

/// The door between ingest and the engine.
///
/// - `notify()`: new work may be in the store (a redrive, a reactivation, an ingest that was not
///   handed off): the engine claims at once instead of at the next poll.
/// - `ingest()`: the hand-off. While an engine runs and has room, an ingest leases its new
///   deliveries to this process in the transaction that stores them, and passes them to the
///   engine through memory, by id and ready to send: no claim scan on the hot path. Only the
///   hint lives in memory: the rows are committed, pending and leased, so after a crash the
///   lease runs out (or start-up recovery releases it) and they are claimed from the store.
#[derive(Clone, Default)]
pub struct Wakeup(Arc<Door>);

#[derive(Default)]
struct Door {
    notify: Notify,
    /// Set by `notify()`: the engine should look at the store.
    look: AtomicBool,
    /// Deliveries handed off, not yet taken by the engine.
    handed: Mutex<Vec<ClaimedDelivery>>,
    /// The engine's lease in milliseconds while it takes hand-offs; 0 when none does.
    lease_ms: AtomicI64,
    /// How many more deliveries the engine can be handed now, and what ingests have reserved.
    room: room::Room,
    /// Registrations changed (updated or deleted) since the engine last looked.
    changed: Mutex<HashSet<WebhookId>>,
}

impl Wakeup {
    pub fn notify(&self) {
        self.0.look.store(true, Ordering::Release);
        self.0.notify.notify_one();
    }

    /// A registration was updated or deleted (after the change is committed): the engine
    /// applies its current state to the deliveries it holds queued for it before starting any
    /// of them (new URL, secret, headers; none sent for a deleted or inactive one).
    pub fn registration_changed(&self, webhook_id: &WebhookId) {
        self.0
            .changed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(webhook_id.clone());
        self.0.notify.notify_one();
    }

    /// Stores events and their deliveries (one transaction, as `Store::ingest`), handing the
    /// new deliveries to the engine when it takes them.
    ///
    /// Runs as a task of its own, which the caller awaits: when the caller is dropped (the
    /// client went away before its answer), a commit that goes ahead still hands its leased
    /// deliveries over, instead of leaving them to wait for the lease to run out.
    pub async fn ingest(
        &self,
        store: Arc<dyn Store>,
        events: Vec<NewEvent>,
        now_ms: i64,
    ) -> StoreResult<Vec<IngestOutcome>> {
        let door = self.clone();
        let task =
            tokio::spawn(async move { door.ingest_here(store.as_ref(), &events, now_ms).await });
        match task.await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(StoreError::Unavailable(
                "the ingest was cancelled: the bridge is shutting down".into(),
            )),
        }
    }

    async fn ingest_here(
        &self,
        store: &dyn Store,
        events: &[NewEvent],
        now_ms: i64,
    ) -> StoreResult<Vec<IngestOutcome>> {
        let lease_ms = self.0.lease_ms.load(Ordering::Acquire);
        let reserved = self
            .0
            .room
            .reserve(if lease_ms > 0 { events.len() } else { 0 });
        let granted = reserved.granted();
        if granted == 0 {
            let outcomes = store.ingest(events, now_ms).await?;
            if outcomes.iter().any(|o| !o.deliveries.is_empty()) {
                self.notify();
            }
            return Ok(outcomes);
        }
        let (outcomes, claimed) = store
            .ingest_and_claim(events, now_ms, now_ms + lease_ms, granted)
            .await?;
        let created: usize = outcomes.iter().map(|o| o.deliveries.len()).sum();
        let handed = claimed.len();
        if handed > 0 {
            self.0
                .handed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend(claimed);
        }
        reserved.settle(handed, events.len(), created);
        if created > handed {
            // Some were not handed off (beyond the reservation, status changes, test
            // deliveries): claim them.
            self.0.look.store(true, Ordering::Release);
        }
        if created > 0 {
            self.0.notify.notify_one();
        }
        Ok(outcomes)
    }

    async fn notified(&self) {
        self.0.notify.notified().await;
    }

    /// The engine takes hand-offs, leasing them for `lease_ms`.
    fn open(&self, lease_ms: i64) {
        self.0.lease_ms.store(lease_ms.max(1), Ordering::Release);
    }

    /// The engine stops taking hand-offs (it is shutting down).
    fn close(&self) {
        self.0.lease_ms.store(0, Ordering::Release);
        self.0.room.set_free(0);
    }

    /// The engine can take `free` more deliveries now (beyond what it holds and what its claim
    /// in flight may bring).
    fn set_room(&self, free: usize) {
        self.0.room.set_free(free);
    }

    /// Deliveries handed off since the last call.
    fn take_handed(&self) -> Vec<ClaimedDelivery> {
        let handed = std::mem::take(
            &mut *self
                .0
                .handed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        self.0.room.taken_by_engine(handed.len());
        handed
    }

    /// Registrations changed since the last call.
    fn take_changed(&self) -> HashSet<WebhookId> {
        std::mem::take(
            &mut *self
                .0
                .changed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Whether someone asked the engine to look at the store since the last call.
    fn take_look(&self) -> bool {
        self.0.look.swap(false, Ordering::AcqRel)
    }
}
