//! A claim that runs beside the engine's loop.
//!
//! A claim is a round trip to the store and a commit (on PostgreSQL with a synchronous commit,
//! milliseconds). If the loop waited for it, attempts that finish meanwhile would not be reaped
//! and queued deliveries would not start: the lanes would idle for the length of every claim.
//! So the claim runs as its own task, at most one at a time, and the loop takes its result when
//! it is there.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tokio::task::{JoinError, JoinHandle};

use super::lanes::Lanes;
use crate::clock;
use crate::store::{ClaimedDelivery, Store, StoreResult, WebhookId};

/// What a finished claim task returns.
pub(super) type Claimed = Result<StoreResult<Vec<ClaimedDelivery>>, JoinError>;

/// The claim in flight.
pub(super) struct Claiming {
    /// Most deliveries it may return.
    limit: usize,
    /// Most it may return per registration.
    per: u32,
    /// Registrations it left out because their lanes were full when it started.
    busy: Vec<WebhookId>,
    task: JoinHandle<StoreResult<Vec<ClaimedDelivery>>>,
}

impl Claiming {
    /// Starts a claim of at most `room` deliveries (and `CLAIM_BATCH`), leaving out the
    /// registrations whose lanes are full.
    pub fn start(store: Arc<dyn Store>, lanes: &Lanes, room: usize, lease_ms: i64) -> Self {
        let limit = room.min(super::engine::CLAIM_BATCH);
        let busy = lanes.busy();
        let per = u32::try_from(lanes.hold_cap()).unwrap_or(u32::MAX);
        let skip = busy.clone();
        let task = tokio::spawn(async move {
            store
                .claim_due(
                    clock::now_ms(),
                    lease_ms,
                    u32::try_from(limit).unwrap_or(1),
                    per,
                    &skip,
                )
                .await
        });
        Self {
            limit,
            per,
            busy,
            task,
        }
    }

    /// Most deliveries it may still bring (so the engine can keep room for them).
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The registrations it left out.
    pub fn busy(&self) -> &[WebhookId] {
        &self.busy
    }

    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Puts what the claim returned into the lanes; returns whether it was full (more may be
    /// due). Afterwards `more` holds the registrations whose due deliveries it may have left in
    /// the store: the busy ones it skipped, and those it took its per-registration cap from.
    pub fn finish(
        self,
        claimed: Claimed,
        lanes: &mut Lanes,
        more: &mut HashSet<WebhookId>,
    ) -> bool {
        let batch = match claimed {
            Ok(Ok(batch)) => batch,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "claiming deliveries failed");
                return false;
            }
            Err(e) => {
                tracing::error!(error = %e, "the claim task failed");
                return false;
            }
        };
        let full = batch.len() >= self.limit;
        let mut got: HashMap<WebhookId, u32> = HashMap::new();
        for d in batch {
            *got.entry(d.webhook_id.clone()).or_default() += 1;
            lanes.hold(d);
        }
        more.clear();
        more.extend(self.busy);
        more.extend(
            got.into_iter()
                .filter(|(_, n)| *n >= self.per)
                .map(|(w, _)| w),
        );
        full
    }
}

/// Waits for the claim in flight to finish (forever if there is none: guard the call).
pub(super) async fn done(claiming: &mut Option<Claiming>) -> Claimed {
    match claiming {
        Some(c) => (&mut c.task).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::lanes::tests::delivery;
    use crate::store::StoreError;

    /// A claim in flight that brings `batch` (or fails).
    fn claiming(
        limit: usize,
        per: u32,
        busy: &[&str],
        result: StoreResult<Vec<ClaimedDelivery>>,
    ) -> Claiming {
        Claiming {
            limit,
            per,
            busy: busy.iter().map(|w| WebhookId::from_stored(*w)).collect(),
            task: tokio::spawn(async move { result }),
        }
    }

    fn ids(more: &HashSet<WebhookId>) -> Vec<String> {
        let mut v: Vec<String> = more.iter().map(ToString::to_string).collect();
        v.sort();
        v
    }

    /// A claim that filled its limit asks for the next one; the registrations it took its
    /// per-registration cap from, and the busy ones it skipped, may have more in the store.
    #[tokio::test]
    async fn a_full_claim_asks_for_more_and_names_who_may_have_more() {
        let mut lanes = Lanes::new(1);
        let mut more = HashSet::from([WebhookId::from_stored("stale")]);
        let batch: Vec<_> = (0..3)
            .map(|n| delivery("capped", n))
            .chain([delivery("light", 0)])
            .collect();
        let mut c = Some(claiming(4, 3, &["busy"], Ok(batch)));
        let claimed = done(&mut c).await;
        let full = c.take().unwrap().finish(claimed, &mut lanes, &mut more);
        assert!(full, "4 of a limit of 4");
        assert_eq!(lanes.held(), 4);
        assert_eq!(ids(&more), ["busy", "capped"]);

        // One short of the limit: no next claim is asked for.
        let mut c = Some(claiming(5, 3, &[], Ok(vec![delivery("other", 0)])));
        let claimed = done(&mut c).await;
        assert!(!c.take().unwrap().finish(claimed, &mut lanes, &mut more));
        assert_eq!(lanes.held(), 5);
        assert!(more.is_empty());
    }

    /// A failed claim holds nothing and asks for no next claim at once (the loop looks again
    /// within its idle bound).
    #[tokio::test]
    async fn a_failed_claim_holds_nothing() {
        let mut lanes = Lanes::new(1);
        let mut more = HashSet::new();
        let failed = Err(StoreError::Corrupt("the claim failed".into()));
        let mut c = Some(claiming(4, 3, &[], failed));
        let claimed = done(&mut c).await;
        assert!(!c.take().unwrap().finish(claimed, &mut lanes, &mut more));
        assert_eq!(lanes.held(), 0);
    }
}
