//! The delivery engine: claims due deliveries from the store (work lives in the store, not in
//! memory), runs attempts with bounded concurrency overall and per registration, and records
//! results in batches through one recorder task.
//!
//! Crash safety: a claim is a lease in the store. Results clear it; while an attempt runs, the
//! engine renews its lease. A process killed mid-attempt leaves leased rows that are claimed
//! again after a restart (SQLite) or, once the lease runs out, by another instance (PostgreSQL),
//! so every acknowledged event is delivered at least once, with its original idempotency key.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use governor::DefaultDirectRateLimiter;
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

use super::Wakeup;
use super::attempt::{self, AttemptContext};
use super::net_policy::NetPolicy;
use super::retry::RetrySchedule;
use crate::clock;
use crate::store::{AttemptRecord, ClaimedDelivery, Store};

/// Longest idle wait between two looks at the store.
const MAX_IDLE: Duration = Duration::from_secs(1);
/// Shortest wait after a claim found nothing, so busy registrations do not spin the loop.
const MIN_IDLE: Duration = Duration::from_millis(20);
/// Most deliveries claimed at once.
const CLAIM_BATCH: usize = 256;
/// Most results written in one transaction.
const RECORD_BATCH: usize = 512;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub schedule: RetrySchedule,
    pub attempt_timeout: Duration,
    pub max_in_flight: usize,
    pub per_webhook_in_flight: usize,
    pub shutdown_grace: Duration,
    /// How long a claim holds a delivery without renewal; `None`: the attempt's timeout plus a
    /// generous margin. The engine renews the leases of its in-flight deliveries every third of
    /// it, so an attempt may outlive it (e.g. waiting on a rate limit); it only runs out when
    /// this process stops renewing (killed, hung, database lost), and then another instance, or
    /// the next run, takes the work over.
    pub lease: Option<Duration>,
}

impl EngineConfig {
    fn lease(&self) -> Duration {
        self.lease
            .unwrap_or(self.attempt_timeout + Duration::from_secs(60))
    }
}

/// A running engine.
pub struct Engine {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Engine {
    pub fn start(
        store: Arc<dyn Store>,
        client: reqwest::Client,
        policy: Arc<NetPolicy>,
        config: EngineConfig,
        wakeup: Wakeup,
    ) -> Self {
        let (stop, stop_rx) = watch::channel(false);
        let ctx = Arc::new(AttemptContext {
            client,
            policy,
            schedule: config.schedule.clone(),
            timeout: config.attempt_timeout,
        });
        let task = tokio::spawn(run(store, ctx, config, wakeup, stop_rx));
        Self { stop, task }
    }

    /// Stops claiming, lets in-flight attempts finish within the grace period, records their
    /// results, and returns. Deliveries not attempted stay pending in the store.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "delivery engine task failed");
        }
    }
}

struct Lanes {
    /// Deliveries in flight per registration.
    per_webhook: HashMap<String, usize>,
    /// Delivery ids in flight (a claim may return one again if its lease ran out meanwhile).
    ids: HashSet<String>,
    /// Rate limiters of rate-limited registrations, with the rate they were built for.
    limiters: HashMap<String, (f64, Arc<DefaultDirectRateLimiter>)>,
}

impl Lanes {
    fn busy(&self, cap: usize) -> Vec<String> {
        self.per_webhook
            .iter()
            .filter(|(_, n)| **n >= cap)
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn limiter(&mut self, d: &ClaimedDelivery) -> Option<Arc<DefaultDirectRateLimiter>> {
        let Some(rate) = d.rate_limit else {
            self.limiters.remove(&d.webhook_id);
            return None;
        };
        if let Some((r, l)) = self.limiters.get(&d.webhook_id)
            && *r == rate
        {
            return Some(Arc::clone(l));
        }
        let l = Arc::new(attempt::limiter(rate)?);
        self.limiters
            .insert(d.webhook_id.clone(), (rate, Arc::clone(&l)));
        Some(l)
    }

    fn finished(&mut self, webhook_id: &str, delivery_id: &str) {
        self.ids.remove(delivery_id);
        if let Some(n) = self.per_webhook.get_mut(webhook_id) {
            *n -= 1;
            if *n == 0 {
                self.per_webhook.remove(webhook_id);
            }
        }
    }
}

async fn run(
    store: Arc<dyn Store>,
    ctx: Arc<AttemptContext>,
    config: EngineConfig,
    wakeup: Wakeup,
    mut stop: watch::Receiver<bool>,
) {
    let (results, results_rx) = mpsc::channel::<AttemptRecord>(RECORD_BATCH * 2);
    let recorder = tokio::spawn(record(Arc::clone(&store), results_rx));
    let mut tasks: JoinSet<(String, String)> = JoinSet::new();
    let mut lanes = Lanes {
        per_webhook: HashMap::new(),
        ids: HashSet::new(),
        limiters: HashMap::new(),
    };
    let lease_ms = i64::try_from(config.lease().as_millis()).unwrap_or(i64::MAX / 4);
    let renew_every = (config.lease() / 3).max(Duration::from_millis(100));
    let mut renewed_at = tokio::time::Instant::now();

    loop {
        if *stop.borrow() {
            break;
        }
        if renewed_at.elapsed() >= renew_every {
            renew(store.as_ref(), &lanes, lease_ms).await;
            renewed_at = tokio::time::Instant::now();
        }
        let free = config.max_in_flight.saturating_sub(tasks.len());
        let mut claimed = 0;
        if free > 0 {
            let busy = lanes.busy(config.per_webhook_in_flight);
            let limit = u32::try_from(free.min(CLAIM_BATCH)).unwrap_or(1);
            let per = u32::try_from(config.per_webhook_in_flight).unwrap_or(1);
            match store
                .claim_due(clock::now_ms(), lease_ms, limit, per, &busy)
                .await
            {
                Ok(batch) => {
                    for d in batch {
                        if !lanes.ids.insert(d.id.clone()) {
                            continue;
                        }
                        claimed += 1;
                        *lanes.per_webhook.entry(d.webhook_id.clone()).or_insert(0) += 1;
                        let limiter = lanes.limiter(&d);
                        let ctx = Arc::clone(&ctx);
                        let results = results.clone();
                        tasks.spawn(async move {
                            let rec = attempt::run(&ctx, &d, limiter).await;
                            if results.send(rec).await.is_err() {
                                tracing::error!(delivery_id = %d.id, "result recorder is gone");
                            }
                            (d.webhook_id, d.id)
                        });
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "claiming deliveries failed");
                }
            }
        }
        while let Some(done) = tasks.try_join_next() {
            finished(&mut lanes, done);
        }
        if claimed > 0 && tasks.len() < config.max_in_flight {
            continue;
        }
        let idle = if claimed > 0 {
            MAX_IDLE
        } else {
            idle_for(store.as_ref()).await
        };
        tokio::select! {
            () = wakeup.notified() => {}
            Some(done) = tasks.join_next(), if !tasks.is_empty() => finished(&mut lanes, done),
            () = tokio::time::sleep(idle) => {}
            _ = stop.changed() => {}
        }
    }

    let drained = tokio::time::timeout(config.shutdown_grace, async {
        let mut renewal = tokio::time::interval_at(renewed_at + renew_every, renew_every);
        loop {
            tokio::select! {
                done = tasks.join_next() => match done {
                    Some(done) => finished(&mut lanes, done),
                    None => break,
                },
                _ = renewal.tick() => renew(store.as_ref(), &lanes, lease_ms).await,
            }
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            left = tasks.len(),
            "shutdown grace period over; unfinished attempts stay pending"
        );
        tasks.abort_all();
    }
    drop(results);
    if let Err(e) = recorder.await {
        tracing::error!(error = %e, "result recorder failed");
    }
}

fn finished(lanes: &mut Lanes, done: Result<(String, String), tokio::task::JoinError>) {
    match done {
        Ok((webhook_id, delivery_id)) => lanes.finished(&webhook_id, &delivery_id),
        Err(e) => tracing::error!(error = %e, "delivery attempt task failed"),
    }
}

/// Extends the leases of the deliveries in flight, so that no other instance takes them over
/// while this one still works on them (a rate-limited attempt can wait longer than a lease).
async fn renew(store: &dyn Store, lanes: &Lanes, lease_ms: i64) {
    if lanes.ids.is_empty() {
        return;
    }
    let ids: Vec<String> = lanes.ids.iter().cloned().collect();
    if let Err(e) = store.renew_leases(&ids, clock::now_ms() + lease_ms).await {
        tracing::error!(error = %e, "renewing leases failed");
    }
}

/// How long to wait before looking again: until the next due delivery, within bounds.
async fn idle_for(store: &dyn Store) -> Duration {
    match store.next_due_at().await {
        Ok(Some(at)) => {
            let wait = u64::try_from(at - clock::now_ms()).unwrap_or(0);
            Duration::from_millis(wait).clamp(MIN_IDLE, MAX_IDLE)
        }
        Ok(None) => MAX_IDLE,
        Err(e) => {
            tracing::error!(error = %e, "reading the next due time failed");
            MAX_IDLE
        }
    }
}

/// Writes attempt results in batches. A batch that cannot be written is retried a few times;
/// if it still fails, its leases run out and the deliveries are attempted again (at least once).
async fn record(store: Arc<dyn Store>, mut rx: mpsc::Receiver<AttemptRecord>) {
    let mut buf = Vec::with_capacity(RECORD_BATCH);
    while rx.recv_many(&mut buf, RECORD_BATCH).await > 0 {
        for tries in 1..=5u32 {
            match store.record_attempts(&buf).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::error!(error = %e, tries, "recording attempt results failed");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(tries))).await;
                }
            }
        }
        buf.clear();
    }
}
