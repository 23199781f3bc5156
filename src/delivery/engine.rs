//! The delivery engine: claims due deliveries from the store (work lives in the store, not in
//! memory), runs attempts with bounded concurrency overall and per registration, and records
//! results in batches through one recorder task.
//!
//! Work reaches the engine two ways: handed off by ingest (leased in the ingest's own
//! transaction and passed through memory, see [`Wakeup`]: the hot path, no claim scan), and
//! claimed from the store (start-up, retries that fall due, redrives, ingests that were not
//! handed off, other instances' expired leases).
//!
//! Crash safety: a claim is a lease in the store. Results clear it; while an attempt runs, the
//! engine renews its lease. A process killed mid-attempt leaves leased rows that are claimed
//! again after a restart (SQLite) or, once the lease runs out, by another instance (PostgreSQL),
//! so every acknowledged event is delivered at least once, with its original idempotency key.
//! Results are fenced by the claim's token: one from a claim that lost its lease is dropped
//! (and counted). An attempt that panics frees its lane and is recorded as a failed attempt, so
//! the delivery is retried on its schedule.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::{Id, JoinHandle, JoinSet};
use tokio::time::Instant;

use super::Wakeup;
use super::attempt::{self, AttemptContext};
use super::claiming::{self, Claimed, Claiming};
use super::lanes::Lanes;
use super::net_policy::NetPolicy;
use super::plain_http;
use super::retry::{RetrySchedule, jitter_sample};
use crate::clock;
use crate::store::{AttemptNext, AttemptRecord, DeliveryId, HeldLease, Store, WebhookId};

/// Longest idle wait between two looks at the store.
const MAX_IDLE: Duration = Duration::from_secs(1);
/// Shortest wait after a claim found nothing, so busy registrations do not spin the loop.
const MIN_IDLE: Duration = Duration::from_millis(20);
/// How long the store's next due time, once read, stands. The engine turns idle after every
/// batch of hand-offs it finishes, and each read is a query the loop waits for; within this
/// bound it reuses the last answer. Its own retries it knows without asking (`Running::retry_at`).
const DUE_READ_STANDS: Duration = MIN_IDLE;
/// Most deliveries claimed at once.
pub(super) const CLAIM_BATCH: usize = 256;
/// How often the registrations of queued deliveries are read again, so that a change made
/// through another instance (which this one gets no message about) applies within this bound.
const REFRESH_EVERY: Duration = Duration::from_secs(2);
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
            plain: plain_http::Pool::start(config.attempt_timeout.min(Duration::from_secs(10))),
            policy,
            schedule: config.schedule.clone(),
            timeout: config.attempt_timeout,
            #[cfg(test)]
            panic_on: None,
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

/// What the engine knows of an attempt it started, to book it if its task panics.
struct Started {
    webhook_id: WebhookId,
    delivery_id: DeliveryId,
    attempts: u32,
    retry_base: u32,
    claim_token: i64,
}

/// Starts every queued delivery that has a lane and a global slot.
fn start_ready(
    lanes: &mut Lanes,
    tasks: &mut JoinSet<Done>,
    started: &mut HashMap<Id, Started>,
    ctx: &Arc<AttemptContext>,
    results: &mpsc::Sender<AttemptRecord>,
    max_in_flight: usize,
) {
    for d in lanes.ready(max_in_flight.saturating_sub(tasks.len())) {
        let limiter = lanes.limiter(&d);
        let ctx = Arc::clone(ctx);
        let results = results.clone();
        let info = Started {
            webhook_id: d.webhook_id.clone(),
            delivery_id: d.id.clone(),
            attempts: d.attempts,
            retry_base: d.retry_base,
            claim_token: d.claim_token,
        };
        let handle = tasks.spawn(async move {
            let rec = attempt::run(&ctx, &d, limiter).await;
            let retry_at = match rec.next {
                AttemptNext::RetryAt(at) => Some(at),
                _ => None,
            };
            if results.send(rec).await.is_err() {
                tracing::error!(delivery_id = %d.id, "result recorder is gone");
            }
            (d.webhook_id, d.id, retry_at)
        });
        started.insert(handle.id(), info);
    }
}

/// What an attempt task returns: its registration, its delivery, and when it is due again if
/// the attempt scheduled a retry (Unix ms).
type Done = (WebhookId, DeliveryId, Option<i64>);

/// The engine's state between two turns of its loop.
struct Running {
    store: Arc<dyn Store>,
    ctx: Arc<AttemptContext>,
    lanes: Lanes,
    tasks: JoinSet<Done>,
    started: HashMap<Id, Started>,
    results: mpsc::Sender<AttemptRecord>,
    /// Registrations that may have due deliveries in the store that a claim did not take.
    more: HashSet<WebhookId>,
    want_claim: bool,
    /// The claim in flight, if any.
    claiming: Option<Claiming>,
    /// Registrations changed while the claim was in flight: what it brings for them is read
    /// again when it lands.
    changed_in_flight: HashSet<WebhookId>,
    /// The earliest retry this engine's own attempts scheduled that has not come yet.
    retry_at: Option<Instant>,
    /// The last read of the store's next due time: when, and the time it gave.
    due_read: Option<(Instant, Instant)>,
}

impl Running {
    /// Books a finished (or panicked) attempt.
    fn finished(&mut self, done: Result<(Id, Done), tokio::task::JoinError>) {
        let (webhook_id, delivery_id) = match done {
            Ok((id, (webhook_id, delivery_id, retry_at))) => {
                self.started.remove(&id);
                if let Some(at) = retry_at {
                    let wait = u64::try_from(at - clock::now_ms()).unwrap_or(0);
                    let at = Instant::now() + Duration::from_millis(wait);
                    self.retry_at = Some(self.retry_at.map_or(at, |r| r.min(at)));
                }
                (webhook_id, delivery_id)
            }
            Err(e) => {
                let Some(s) = self.started.remove(&e.id()) else {
                    tracing::error!(error = %e, "delivery attempt task failed");
                    return;
                };
                tracing::error!(error = %e, delivery_id = %s.delivery_id, "delivery attempt panicked; recorded as a failed attempt");
                // Recorded like any failed attempt (fenced by the claim's token), so the lease
                // is cleared and the delivery retried on its schedule.
                let rec = panicked(&self.ctx, &s);
                if self.results.try_send(rec).is_err() {
                    tracing::warn!(delivery_id = %s.delivery_id, "result queue full; the lease of the panicked attempt will run out");
                }
                (s.webhook_id, s.delivery_id)
            }
        };
        if self.lanes.finished(&webhook_id, &delivery_id) && self.more.contains(&webhook_id) {
            self.want_claim = true;
        }
    }

    /// When the store next has a delivery due (read again only once [`DUE_READ_STANDS`] has
    /// passed, or the time it gave has come).
    async fn store_due(&mut self) -> Instant {
        let now = Instant::now();
        if let Some((read_at, due)) = self.due_read
            && now.duration_since(read_at) < DUE_READ_STANDS
            && due > now
        {
            return due;
        }
        let due = now + idle_for(self.store.as_ref()).await;
        self.due_read = Some((now, due));
        due
    }
}

/// The record of an attempt whose task panicked: failed, retried on the schedule.
fn panicked(ctx: &AttemptContext, s: &Started) -> AttemptRecord {
    let attempt = s.attempts + 1;
    let made = attempt.saturating_sub(s.retry_base);
    let now = clock::now_ms();
    let next = match ctx
        .schedule
        .next_delay(made, jitter_sample(&mut rand::rng()), None)
    {
        Some(delay) => {
            AttemptNext::RetryAt(now + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2))
        }
        None => AttemptNext::Dead,
    };
    AttemptRecord {
        delivery_id: s.delivery_id.clone(),
        webhook_id: s.webhook_id.clone(),
        claim_token: s.claim_token,
        attempt,
        started_at_ms: now,
        status_code: None,
        latency_ms: 0,
        error: Some("the attempt failed inside wabridge (panic); it will be retried".into()),
        next,
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
    let mut e = Running {
        store,
        ctx,
        lanes: Lanes::new(config.per_webhook_in_flight),
        tasks: JoinSet::new(),
        started: HashMap::new(),
        results,
        more: HashSet::new(),
        want_claim: true,
        claiming: None,
        changed_in_flight: HashSet::new(),
        retry_at: None,
        due_read: None,
    };
    // Claimed deliveries held at most: every lane busy plus one claim batch queued.
    let hold_limit = config.max_in_flight + CLAIM_BATCH;
    let lease_ms = i64::try_from(config.lease().as_millis()).unwrap_or(i64::MAX / 4);
    let renew_every = (config.lease() / 3).max(Duration::from_millis(100));
    let mut renewed_at = Instant::now();
    let mut refreshed_at = Instant::now();
    // The next look at the store whatever happens meanwhile (retries falling due, leases of
    // other instances running out), so a steady stream of hand-offs cannot starve them.
    let mut next_look = Instant::now();
    wakeup.open(lease_ms);

    loop {
        if *stop.borrow() {
            break;
        }
        if renewed_at.elapsed() >= renew_every {
            renew(e.store.as_ref(), &mut e.lanes, lease_ms).await;
            renewed_at = Instant::now();
        }
        take_handed(&wakeup, &mut e, hold_limit).await;
        // Registration changes apply to queued deliveries before any of them starts: at once
        // for a change made through this process (a message from the handler), and within
        // REFRESH_EVERY for one made through another instance.
        let mut changed = wakeup.take_changed();
        if refreshed_at.elapsed() >= REFRESH_EVERY {
            changed.extend(e.lanes.with_queued());
            refreshed_at = Instant::now();
        }
        if e.claiming.is_some() {
            e.changed_in_flight.extend(changed.iter().cloned());
        }
        refresh(&mut e, changed).await;
        if e.claiming.as_ref().is_some_and(Claiming::is_finished) {
            let claimed = claiming::done(&mut e.claiming).await;
            land_claim(&mut e, claimed).await;
        }
        if wakeup.take_look() || Instant::now() >= next_look {
            e.want_claim = true;
            next_look = Instant::now() + MAX_IDLE;
        }
        let room = hold_limit.saturating_sub(e.lanes.held());
        if e.want_claim && room > 0 && e.claiming.is_none() {
            // Lanes freed for these while the claim runs call for the next one.
            let c = Claiming::start(Arc::clone(&e.store), &e.lanes, room, lease_ms);
            e.more.extend(c.busy().iter().cloned());
            e.claiming = Some(c);
            e.want_claim = false;
        }
        start_ready(
            &mut e.lanes,
            &mut e.tasks,
            &mut e.started,
            &e.ctx,
            &e.results,
            config.max_in_flight,
        );
        let mut reaped = false;
        while let Some(done) = e.tasks.try_join_next_with_id() {
            e.finished(done);
            reaped = true;
        }
        if reaped {
            start_ready(
                &mut e.lanes,
                &mut e.tasks,
                &mut e.started,
                &e.ctx,
                &e.results,
                config.max_in_flight,
            );
        }
        // What the claim in flight may still bring counts as held.
        let coming = e.claiming.as_ref().map_or(0, Claiming::limit);
        wakeup.set_room(hold_limit.saturating_sub(e.lanes.held() + coming));
        if e.want_claim && e.claiming.is_none() && e.lanes.held() < hold_limit {
            continue;
        }
        if e.lanes.held() == 0 && e.claiming.is_none() {
            next_look = next_look.min(e.store_due().await);
        }
        if let Some(at) = e.retry_at {
            next_look = next_look.min(at);
            if at <= Instant::now() {
                e.retry_at = None;
            }
        }
        tokio::select! {
            () = wakeup.notified() => {}
            Some(done) = e.tasks.join_next_with_id(), if !e.tasks.is_empty() => e.finished(done),
            claimed = claiming::done(&mut e.claiming), if e.claiming.is_some() => {
                land_claim(&mut e, claimed).await;
            }
            () = tokio::time::sleep_until(next_look) => {}
            _ = stop.changed() => {}
        }
    }

    // A claim still in flight lands first, so that what it took is handed back below.
    if e.claiming.is_some() {
        let claimed = claiming::done(&mut e.claiming).await;
        land_claim(&mut e, claimed).await;
    }

    // No more hand-offs; claimed but never started: hand them back at once (their leases would
    // only run out).
    wakeup.close();
    let mut queued = e.lanes.take_queued();
    queued.extend(wakeup.take_handed().into_iter().map(|d| HeldLease {
        delivery_id: d.id,
        claim_token: d.claim_token,
    }));
    if !queued.is_empty()
        && let Err(err) = e.store.renew_leases(&queued, clock::now_ms() - 1).await
    {
        tracing::warn!(error = %err, "handing back queued deliveries failed; their leases will run out");
    }
    let drained = tokio::time::timeout(config.shutdown_grace, async {
        let mut renewal = tokio::time::interval_at(renewed_at + renew_every, renew_every);
        loop {
            tokio::select! {
                done = e.tasks.join_next_with_id() => match done {
                    Some(done) => e.finished(done),
                    None => break,
                },
                _ = renewal.tick() => renew(e.store.as_ref(), &mut e.lanes, lease_ms).await,
            }
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            left = e.tasks.len(),
            "shutdown grace period over; unfinished attempts stay pending"
        );
        e.tasks.abort_all();
    }
    drop(e);
    if let Err(err) = recorder.await {
        tracing::error!(error = %err, "result recorder failed");
    }
}

/// Puts what the claim in flight brought into the lanes, with the current values of the
/// registrations that changed while it ran.
async fn land_claim(e: &mut Running, claimed: Claimed) {
    let Some(c) = e.claiming.take() else {
        return;
    };
    if c.finish(claimed, &mut e.lanes, &mut e.more) {
        e.want_claim = true;
    }
    let changed = std::mem::take(&mut e.changed_in_flight);
    refresh(e, changed).await;
}

/// Takes the deliveries ingest handed off into the lanes. Beyond what the engine holds at most
/// (an ingest can hand off more than the room it saw), they are handed back to the store at
/// once, to be claimed when there is room.
async fn take_handed(wakeup: &Wakeup, e: &mut Running, hold_limit: usize) {
    let handed = wakeup.take_handed();
    if handed.is_empty() {
        return;
    }
    let mut back = Vec::new();
    for d in handed {
        if e.lanes.held() >= hold_limit {
            e.more.insert(d.webhook_id.clone());
            back.push(HeldLease {
                delivery_id: d.id,
                claim_token: d.claim_token,
            });
        } else {
            e.lanes.hold(d);
        }
    }
    if !back.is_empty() {
        tracing::debug!(
            count = back.len(),
            "handed-off deliveries beyond the engine's room go back to the store"
        );
        if let Err(err) = e.store.renew_leases(&back, clock::now_ms() - 1).await {
            tracing::warn!(error = %err, "handing back deliveries failed; their leases will run out");
        }
    }
}

/// Extends the leases of every delivery held (in flight or queued), so that no other instance
/// takes them over while this one still works on them (a rate-limited attempt can wait longer
/// than a lease). A lease that was not extended is lost: another claim holds the delivery now
/// (this process stalled longer than the lease). Queued ones are dropped, never sent from here,
/// and counted in `wabridge_leases_lost_total`; a running one is only no longer renewed (its
/// result is fenced by the claim token, and counted in `wabridge_stale_results_total`).
async fn renew(store: &dyn Store, lanes: &mut Lanes, lease_ms: i64) {
    let held = lanes.leases();
    if held.is_empty() {
        return;
    }
    let renewed = match store.renew_leases(&held, clock::now_ms() + lease_ms).await {
        Ok(renewed) => renewed,
        Err(e) => {
            tracing::error!(error = %e, "renewing leases failed");
            return;
        }
    };
    if renewed.len() >= held.len() {
        return;
    }
    let renewed: HashSet<DeliveryId> = renewed.into_iter().collect();
    // Also here: running attempts whose result was recorded a moment ago (lease cleared) but
    // that the loop has not reaped yet. Forgetting those is harmless; only queued ones count.
    let lost: Vec<DeliveryId> = held
        .into_iter()
        .filter(|l| !renewed.contains(&l.delivery_id))
        .map(|l| l.delivery_id)
        .collect();
    let dropped = lanes.lost(&lost);
    if dropped > 0 {
        tracing::warn!(
            dropped,
            "leases of queued deliveries were taken over by another claim; they are not sent from here"
        );
        metrics::counter!("wabridge_leases_lost_total").increment(dropped as u64);
    }
}

/// Applies the current state of changed registrations to the deliveries queued for them: new
/// URL, secret, headers, rate limit; for a deleted registration they are dropped (their rows are
/// gone), for an inactive one dropped and their leases handed back (they stay pending, claimed
/// again when it is reactivated).
async fn refresh(e: &mut Running, changed: HashSet<WebhookId>) {
    let mut back = Vec::new();
    for webhook_id in changed {
        if !e.lanes.has_queued(&webhook_id) {
            continue;
        }
        let current = match e.store.get_webhook(&webhook_id).await {
            Ok(w) => w,
            Err(err) => {
                tracing::error!(error = %err, %webhook_id, "reading a changed registration failed; its queued deliveries keep the values they were claimed with");
                continue;
            }
        };
        let r = e.lanes.refresh(&webhook_id, current.as_ref());
        if !r.dropped.is_empty() {
            tracing::info!(%webhook_id, dropped = r.dropped.len(), "registration deleted or deactivated; its queued deliveries are not sent");
            if current.is_some() {
                back.extend(r.dropped);
            }
        }
    }
    if !back.is_empty()
        && let Err(err) = e.store.renew_leases(&back, clock::now_ms() - 1).await
    {
        tracing::warn!(error = %err, "handing back deliveries of a deactivated registration failed; their leases will run out");
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
/// Results the store drops because their claim no longer holds the delivery (a stale holder
/// after a takeover) are counted in `wabridge_stale_results_total`.
async fn record(store: Arc<dyn Store>, mut rx: mpsc::Receiver<AttemptRecord>) {
    let mut buf = Vec::with_capacity(RECORD_BATCH);
    while rx.recv_many(&mut buf, RECORD_BATCH).await > 0 {
        for tries in 1..=5u32 {
            match store.record_attempts(&buf).await {
                Ok(recorded) => {
                    let stale = (buf.len() as u64).saturating_sub(recorded);
                    if stale > 0 {
                        tracing::warn!(
                            stale,
                            "results of claims that no longer hold their deliveries were dropped"
                        );
                        metrics::counter!("wabridge_stale_results_total").increment(stale);
                    }
                    break;
                }
                Err(e) => {
                    tracing::error!(error = %e, tries, "recording attempt results failed");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(tries))).await;
                }
            }
        }
        buf.clear();
    }
}

#[cfg(test)]
mod tests;
