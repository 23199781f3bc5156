//! The delivery engine: claims due deliveries from the store (work lives in the store, not in
//! memory), runs attempts with bounded concurrency overall and per registration, and records
//! results in batches through one recorder task.
//!
//! Crash safety: a claim is a lease in the store. Results clear it; while an attempt runs, the
//! engine renews its lease. A process killed mid-attempt leaves leased rows that are claimed
//! again after a restart (SQLite) or, once the lease runs out, by another instance (PostgreSQL),
//! so every acknowledged event is delivered at least once, with its original idempotency key.

use std::collections::{HashMap, HashSet, VecDeque};
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
/// Deliveries held (in flight or queued) per registration, in lanes' worth.
const HOLD_FACTOR: usize = 4;
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

/// Deliveries held for one registration: in flight, and claimed ones waiting for a lane.
#[derive(Default)]
struct Lane {
    in_flight: usize,
    queued: VecDeque<ClaimedDelivery>,
}

impl Lane {
    fn held(&self) -> usize {
        self.in_flight + self.queued.len()
    }
}

/// What the engine holds: claimed (leased) deliveries, in flight or queued per registration.
/// Claiming ahead lets a finished attempt start the next one at once, without a claim
/// transaction per delivery.
struct Lanes {
    per_webhook: HashMap<String, Lane>,
    /// Every held delivery id (a claim may return one again if its lease ran out meanwhile).
    ids: HashSet<String>,
    /// Rate limiters of rate-limited registrations, with the rate they were built for.
    limiters: HashMap<String, (f64, Arc<DefaultDirectRateLimiter>)>,
    /// Lanes per registration.
    per_webhook_cap: usize,
}

impl Lanes {
    /// Most deliveries held per registration.
    fn hold_cap(&self) -> usize {
        self.per_webhook_cap * HOLD_FACTOR
    }

    /// Registrations holding enough that claiming more for them is pointless now.
    fn busy(&self) -> Vec<String> {
        let half = self.hold_cap() / 2;
        self.per_webhook
            .iter()
            .filter(|(_, lane)| lane.held() >= half.max(1))
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn held(&self) -> usize {
        self.ids.len()
    }

    /// Queues a claimed delivery; false if it is already held.
    fn hold(&mut self, d: ClaimedDelivery) -> bool {
        if !self.ids.insert(d.id.clone()) {
            return false;
        }
        self.per_webhook
            .entry(d.webhook_id.clone())
            .or_default()
            .queued
            .push_back(d);
        true
    }

    /// Takes the next queued deliveries that have a free lane, as long as `room` allows.
    fn ready(&mut self, mut room: usize) -> Vec<ClaimedDelivery> {
        let mut out = Vec::new();
        for lane in self.per_webhook.values_mut() {
            while room > 0 && lane.in_flight < self.per_webhook_cap {
                let Some(d) = lane.queued.pop_front() else {
                    break;
                };
                lane.in_flight += 1;
                room -= 1;
                out.push(d);
            }
            if room == 0 {
                break;
            }
        }
        out
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

    /// An attempt finished. True when its registration now holds little enough that claiming
    /// more for it is worth a look.
    fn finished(&mut self, webhook_id: &str, delivery_id: &str) -> bool {
        self.ids.remove(delivery_id);
        let half = (self.hold_cap() / 2).max(1);
        let Some(lane) = self.per_webhook.get_mut(webhook_id) else {
            return true;
        };
        lane.in_flight = lane.in_flight.saturating_sub(1);
        let held = lane.held();
        if held == 0 {
            self.per_webhook.remove(webhook_id);
        }
        held < half
    }

    /// Ids of claimed deliveries that were never started (to hand back on shutdown).
    fn queued_ids(&self) -> Vec<String> {
        self.per_webhook
            .values()
            .flat_map(|lane| lane.queued.iter().map(|d| d.id.clone()))
            .collect()
    }
}

/// Claims due deliveries into the lanes; returns how many were new and whether the claim was
/// full (more may be due).
async fn claim(store: &dyn Store, lanes: &mut Lanes, room: usize, lease_ms: i64) -> (usize, bool) {
    let limit = room.min(CLAIM_BATCH);
    let busy = lanes.busy();
    let per = u32::try_from(lanes.hold_cap()).unwrap_or(u32::MAX);
    let batch = match store
        .claim_due(
            clock::now_ms(),
            lease_ms,
            u32::try_from(limit).unwrap_or(1),
            per,
            &busy,
        )
        .await
    {
        Ok(batch) => batch,
        Err(e) => {
            tracing::error!(error = %e, "claiming deliveries failed");
            return (0, false);
        }
    };
    let full = batch.len() >= limit;
    let mut new = 0;
    for d in batch {
        if lanes.hold(d) {
            new += 1;
        }
    }
    (new, full)
}

/// Starts every queued delivery that has a lane and a global slot.
fn start_ready(
    lanes: &mut Lanes,
    tasks: &mut JoinSet<(String, String)>,
    ctx: &Arc<AttemptContext>,
    results: &mpsc::Sender<AttemptRecord>,
    max_in_flight: usize,
) {
    for d in lanes.ready(max_in_flight.saturating_sub(tasks.len())) {
        let limiter = lanes.limiter(&d);
        let ctx = Arc::clone(ctx);
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
        per_webhook_cap: config.per_webhook_in_flight,
    };
    // Claimed deliveries held at most: every lane busy plus one claim batch queued.
    let hold_limit = config.max_in_flight + CLAIM_BATCH;
    let lease_ms = i64::try_from(config.lease().as_millis()).unwrap_or(i64::MAX / 4);
    let renew_every = (config.lease() / 3).max(Duration::from_millis(100));
    let mut renewed_at = tokio::time::Instant::now();
    let mut want_claim = true;

    loop {
        if *stop.borrow() {
            break;
        }
        if renewed_at.elapsed() >= renew_every {
            renew(store.as_ref(), &lanes, lease_ms).await;
            renewed_at = tokio::time::Instant::now();
        }
        let room = hold_limit.saturating_sub(lanes.held());
        if want_claim && room > 0 {
            let (_, full) = claim(store.as_ref(), &mut lanes, room, lease_ms).await;
            want_claim = full;
        }
        start_ready(&mut lanes, &mut tasks, &ctx, &results, config.max_in_flight);
        let mut reaped = false;
        while let Some(done) = tasks.try_join_next() {
            want_claim |= finished(&mut lanes, done);
            reaped = true;
        }
        if reaped {
            start_ready(&mut lanes, &mut tasks, &ctx, &results, config.max_in_flight);
        }
        if want_claim && lanes.held() < hold_limit {
            continue;
        }
        let idle = if lanes.held() > 0 {
            MAX_IDLE
        } else {
            idle_for(store.as_ref()).await
        };
        tokio::select! {
            () = wakeup.notified() => want_claim = true,
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                want_claim |= finished(&mut lanes, done);
            }
            () = tokio::time::sleep(idle) => want_claim = true,
            _ = stop.changed() => {}
        }
    }

    // Claimed but never started: hand them back at once (their leases would only run out).
    let queued = lanes.queued_ids();
    if !queued.is_empty()
        && let Err(e) = store.renew_leases(&queued, clock::now_ms() - 1).await
    {
        tracing::warn!(error = %e, "handing back queued deliveries failed; their leases will run out");
    }
    for id in &queued {
        lanes.ids.remove(id);
    }
    let drained = tokio::time::timeout(config.shutdown_grace, async {
        let mut renewal = tokio::time::interval_at(renewed_at + renew_every, renew_every);
        loop {
            tokio::select! {
                done = tasks.join_next() => match done {
                    Some(done) => { finished(&mut lanes, done); }
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

/// Books a finished attempt; true when its registration may take more claims.
fn finished(lanes: &mut Lanes, done: Result<(String, String), tokio::task::JoinError>) -> bool {
    match done {
        Ok((webhook_id, delivery_id)) => lanes.finished(&webhook_id, &delivery_id),
        Err(e) => {
            tracing::error!(error = %e, "delivery attempt task failed");
            true
        }
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
