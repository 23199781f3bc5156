//! The periodic task that applies the retention rule: every `every` (tokio's interval), prunes
//! in batches of `batch` rows until a batch comes back short, then gives the space back
//! (`Store::reclaim_space`, a bounded number of pages at a time). Each batch is its own short
//! write, so ingest and results interleave with a long prune instead of waiting behind it.
//! Stops between batches when asked to.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Retention;
use crate::store::{PruneOutcome, Store, StoreResult};

/// How the pruner runs.
#[derive(Debug, Clone, Copy)]
pub struct PrunerConfig {
    pub retention: Retention,
    /// How often a prune pass starts (the first one at start).
    pub every: Duration,
    /// Most deliveries (and most events) one batch deletes.
    pub batch: u32,
    /// Most pages one space-reclaiming step frees (SQLite: `incremental_vacuum(N)`).
    pub vacuum_pages: u32,
}

impl PrunerConfig {
    pub fn new(retention: Retention, every: Duration) -> Self {
        Self {
            retention,
            every,
            batch: 500,
            vacuum_pages: 256,
        }
    }
}

/// The running task.
pub struct Pruner {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Pruner {
    pub fn start(store: Arc<dyn Store>, config: PrunerConfig) -> Self {
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run(store, config, stop_rx));
        Self { stop, task }
    }

    /// Stops after the batch in progress, if any.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the pruner task failed");
        }
    }
}

async fn run(store: Arc<dyn Store>, config: PrunerConfig, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(config.every.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let now = crate::clock::now_ms();
        match prune_once(store.as_ref(), &config, now, &stop).await {
            Ok(o) if o.any() => tracing::info!(
                delivered = o.delivered,
                dead = o.dead,
                attempts = o.attempts,
                events = o.events,
                pages_freed = o.pages_freed,
                "pruned finished work past its retention window"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "pruning failed; trying again at the next tick"),
        }
    }
}

/// One prune pass at `now_ms`: batches until one comes back short (or `stop` is set), then the
/// space is given back. Counts what went in `wabridge_pruned_total`.
pub async fn prune_once(
    store: &dyn Store,
    config: &PrunerConfig,
    now_ms: i64,
    stop: &watch::Receiver<bool>,
) -> StoreResult<PruneOutcome> {
    let cutoffs = config.retention.cutoffs(now_ms);
    let mut total = PruneOutcome::default();
    loop {
        let o = store.prune(&cutoffs, config.batch).await?;
        crate::metrics::pruned(&o);
        total.add(&o);
        if !o.full(config.batch) || *stop.borrow() {
            break;
        }
        // Let other writers in between batches.
        tokio::task::yield_now().await;
    }
    if total.any() {
        loop {
            let freed = store.reclaim_space(config.vacuum_pages).await?;
            total.pages_freed += freed;
            if freed < u64::from(config.vacuum_pages) || *stop.borrow() {
                break;
            }
            tokio::task::yield_now().await;
        }
    }
    Ok(total)
}
