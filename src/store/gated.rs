//! A store whose claims wait at a gate (tests only). A claim is made (its leases taken), then
//! held until the test opens the gate, so that a test can act while the engine has a claim in
//! flight. Everything else goes straight to the store inside.

use tokio::sync::{mpsc, watch};

use super::*;

pub struct GatedClaims {
    inner: Arc<dyn Store>,
    /// A message each time a claim has been made and waits at the gate: how many it took.
    claimed: mpsc::UnboundedSender<usize>,
    open: watch::Sender<bool>,
}

impl GatedClaims {
    /// The store, and the receiver of "a claim is waiting at the gate" (with its size).
    pub fn new(inner: Arc<dyn Store>) -> (Arc<Self>, mpsc::UnboundedReceiver<usize>) {
        let (claimed, waiting) = mpsc::unbounded_channel();
        let (open, _) = watch::channel(false);
        let gated = Arc::new(Self {
            inner,
            claimed,
            open,
        });
        (gated, waiting)
    }

    /// Lets every claim through, waiting or to come.
    pub fn open(&self) {
        self.open.send_replace(true);
    }
}

#[async_trait]
impl Store for GatedClaims {
    async fn claim_due(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
        per_webhook: u32,
        busy: &[WebhookId],
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let claimed = self
            .inner
            .claim_due(now_ms, lease_ms, limit, per_webhook, busy)
            .await?;
        let mut open = self.open.subscribe();
        if !*open.borrow() {
            let _ = self.claimed.send(claimed.len());
            let _ = open.wait_for(|o| *o).await;
        }
        Ok(claimed)
    }

    async fn ping(&self) -> StoreResult<()> {
        self.inner.ping().await
    }
    async fn key_hashes(&self, role: KeyRole) -> StoreResult<Vec<String>> {
        self.inner.key_hashes(role).await
    }
    async fn insert_first_key(&self, role: KeyRole, hash: &str, now_ms: i64) -> StoreResult<bool> {
        self.inner.insert_first_key(role, hash, now_ms).await
    }
    async fn reseal_secrets(&self, rewrite: bool) -> StoreResult<ResealReport> {
        self.inner.reseal_secrets(rewrite).await
    }
    async fn create_webhook(&self, webhook: &Webhook) -> StoreResult<()> {
        self.inner.create_webhook(webhook).await
    }
    async fn get_webhook(&self, id: &WebhookId) -> StoreResult<Option<Webhook>> {
        self.inner.get_webhook(id).await
    }
    async fn list_webhooks(&self, after: Option<&str>, limit: u32) -> StoreResult<Vec<Webhook>> {
        self.inner.list_webhooks(after, limit).await
    }
    async fn delete_webhook(&self, id: &WebhookId) -> StoreResult<bool> {
        self.inner.delete_webhook(id).await
    }
    async fn ingest(&self, events: &[NewEvent], now_ms: i64) -> StoreResult<Vec<IngestOutcome>> {
        self.inner.ingest(events, now_ms).await
    }
    async fn ingest_and_claim(
        &self,
        events: &[NewEvent],
        now_ms: i64,
        lease_until_ms: i64,
        at_most: usize,
    ) -> StoreResult<(Vec<IngestOutcome>, Vec<ClaimedDelivery>)> {
        self.inner
            .ingest_and_claim(events, now_ms, lease_until_ms, at_most)
            .await
    }
    async fn next_due_at(&self) -> StoreResult<Option<i64>> {
        self.inner.next_due_at().await
    }
    async fn record_attempts(&self, results: &[AttemptRecord]) -> StoreResult<u64> {
        self.inner.record_attempts(results).await
    }
    async fn renew_leases(
        &self,
        leases: &[HeldLease],
        until_ms: i64,
    ) -> StoreResult<Vec<DeliveryId>> {
        self.inner.renew_leases(leases, until_ms).await
    }
    async fn recover_leases_on_start(&self) -> StoreResult<u64> {
        self.inner.recover_leases_on_start().await
    }
    async fn list_deliveries(
        &self,
        webhook_id: &WebhookId,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<DeliveryInfo>> {
        self.inner.list_deliveries(webhook_id, after, limit).await
    }
    async fn get_delivery(&self, id: &DeliveryId) -> StoreResult<Option<DeliveryInfo>> {
        self.inner.get_delivery(id).await
    }
    async fn redrive(
        &self,
        webhook_id: &WebhookId,
        delivery_id: Option<&DeliveryId>,
        now_ms: i64,
    ) -> StoreResult<u64> {
        self.inner.redrive(webhook_id, delivery_id, now_ms).await
    }
    async fn delivery_counts(&self) -> StoreResult<StateCounts> {
        self.inner.delivery_counts().await
    }
    async fn active_webhooks(&self) -> StoreResult<u64> {
        self.inner.active_webhooks().await
    }
    async fn prune(&self, cutoffs: &PruneCutoffs, limit: u32) -> StoreResult<PruneOutcome> {
        self.inner.prune(cutoffs, limit).await
    }
    async fn reclaim_space(&self, max_pages: u32) -> StoreResult<u64> {
        self.inner.reclaim_space(max_pages).await
    }
    async fn record_ignored(&self, ignored: &IgnoredEvent, now_ms: i64) -> StoreResult<()> {
        self.inner.record_ignored(ignored, now_ms).await
    }
    async fn list_ignored(&self) -> StoreResult<Vec<IgnoredSummary>> {
        self.inner.list_ignored().await
    }
    async fn state_counts(
        &self,
        webhook_id: Option<&WebhookId>,
        now_ms: i64,
    ) -> StoreResult<StateCounts> {
        self.inner.state_counts(webhook_id, now_ms).await
    }
    async fn delivery_event(&self, delivery_id: &DeliveryId) -> StoreResult<Option<DeliveryEvent>> {
        self.inner.delivery_event(delivery_id).await
    }
    async fn update_webhook_if_unchanged(
        &self,
        webhook: &Webhook,
        read: &Webhook,
    ) -> StoreResult<WebhookWrite> {
        self.inner.update_webhook_if_unchanged(webhook, read).await
    }
}
