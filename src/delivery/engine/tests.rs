//! The engine loop against a real SQLite store: a panicking attempt, and a claim in flight when
//! the engine stops or a registration changes (held open by `store::gated::GatedClaims`).

use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::delivery::net_policy::build_client;
use crate::secret::WebhookSecret;
use crate::store::gated::GatedClaims;
use crate::store::{DeliveryState, EventSource, NewEvent, SqliteStore, Webhook, WebhookWrite};

fn event(key: &str) -> NewEvent {
    NewEvent {
        id: crate::ids::EventId::new(),
        idempotency_key: key.into(),
        event: "message.received".into(),
        session_id: crate::ids::SessionId::from_stored("s1"),
        data: json!({"id": key}),
        occurred: "2026-11-28T10:00:00Z".into(),
        source: EventSource::Api,
        status: None,
        only_webhook: None,
        subscribed_by: ["message.received".into(), "message.*".into(), "*".into()],
    }
}

/// A fresh store with one registration for every event, sending to `url` (nothing listens on
/// port 9: an attempt fails at once and is recorded), and two pending deliveries to it.
async fn store_with_two_deliveries(
    dir: &tempfile::TempDir,
    url: &str,
) -> (Arc<dyn Store>, Webhook, Vec<DeliveryId>) {
    let db = format!("sqlite://{}", dir.path().join("engine.db").display());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::connect(&db).await.unwrap());
    let now = clock::now_ms();
    let webhook = Webhook {
        id: WebhookId::from_stored("wh_e"),
        url: crate::target_url::TargetUrl::parse(url).unwrap(),
        events: vec!["*".into()],
        session_id: None,
        description: None,
        headers: BTreeMap::new(),
        secret: WebhookSecret::generate(),
        active: true,
        rate_limit: None,
        disabled_reason: None,
        created_at_ms: now,
        updated_at_ms: now,
    };
    store.create_webhook(&webhook).await.unwrap();
    let out = store
        .ingest(&[event("e1"), event("e2")], now)
        .await
        .unwrap();
    let ids: Vec<DeliveryId> = out.iter().flat_map(|o| o.deliveries.clone()).collect();
    assert_eq!(ids.len(), 2);
    (store, webhook, ids)
}

fn context(schedule: &RetrySchedule, panic_on: Option<&str>) -> Arc<AttemptContext> {
    let policy = Arc::new(NetPolicy::default());
    Arc::new(AttemptContext {
        client: build_client(Arc::clone(&policy), Duration::from_secs(5), "test").unwrap(),
        plain: crate::delivery::plain_http::Pool::start(Duration::from_secs(5)),
        policy,
        schedule: schedule.clone(),
        timeout: Duration::from_secs(5),
        panic_on: panic_on.map(str::to_owned),
    })
}

fn config(schedule: RetrySchedule, lanes: usize, lease: Option<Duration>) -> EngineConfig {
    EngineConfig {
        schedule,
        attempt_timeout: Duration::from_secs(5),
        max_in_flight: lanes,
        per_webhook_in_flight: lanes,
        shutdown_grace: Duration::from_secs(1),
        lease,
    }
}

/// The engine's claim has been made (its leases taken) and waits at the gate: returns its size.
async fn claim_waiting(waiting: &mut tokio::sync::mpsc::UnboundedReceiver<usize>) -> usize {
    tokio::time::timeout(Duration::from_secs(10), waiting.recv())
        .await
        .expect("the engine claims at start")
        .unwrap()
}

/// An attempt that panics frees its lane (with one lane, the second delivery still goes
/// out) and is recorded as a failed attempt: the lease is cleared and the delivery is
/// pending again, due on its retry schedule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_attempt_frees_its_lane_and_its_lease() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _, ids) = store_with_two_deliveries(&dir, "http://127.0.0.1:9/panic").await;
    let now = clock::now_ms();
    let schedule = RetrySchedule::new(vec![Duration::ZERO, Duration::from_secs(3600)]).unwrap();
    let ctx = context(&schedule, Some("/panic"));
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(run(
        Arc::clone(&store),
        ctx,
        config(schedule, 1, None),
        Wakeup::default(),
        stop_rx,
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mut done = 0;
        for id in &ids {
            let d = store.get_delivery(id).await.unwrap().unwrap();
            if d.attempts == 1 {
                assert_eq!(d.state, DeliveryState::Pending);
                assert!(
                    d.next_attempt_at_ms.unwrap() > now + 60_000,
                    "due on the schedule, not at once"
                );
                assert!(d.attempt_log[0].error.as_deref().unwrap().contains("panic"));
                done += 1;
            }
        }
        if done == 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "both deliveries are attempted although the first attempt panicked"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The leases were cleared by the records: a claim after the retry time takes both.
    let later = clock::now_ms() + 10 * 3_600_000;
    let _ = stop.send(true);
    task.await.unwrap();
    let again = store.claim_due(later, 1000, 10, 10, &[]).await.unwrap();
    assert_eq!(again.len(), 2);
}

/// Stopped while its claim is in flight, the engine lets the claim land and hands back what it
/// took at once, unattempted: with an hour's lease, only a handed-back delivery is claimable
/// now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_in_flight_at_shutdown_is_handed_back_unattempted() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _, ids) = store_with_two_deliveries(&dir, "http://127.0.0.1:9/x").await;
    let (gated, mut waiting) = GatedClaims::new(Arc::clone(&store));
    let schedule = RetrySchedule::new(vec![Duration::ZERO]).unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(run(
        gated.clone(),
        context(&schedule, None),
        config(schedule, 4, Some(Duration::from_secs(3600))),
        Wakeup::default(),
        stop_rx,
    ));
    assert_eq!(claim_waiting(&mut waiting).await, 2);
    let _ = stop.send(true);
    // The engine reaches its shutdown while the claim still waits.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !task.is_finished(),
        "the engine waits for the claim in flight"
    );
    gated.open();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the engine stops once the claim has landed")
        .unwrap();
    for id in &ids {
        let d = store.get_delivery(id).await.unwrap().unwrap();
        assert_eq!((d.state, d.attempts), (DeliveryState::Pending, 0));
    }
    let again = store
        .claim_due(clock::now_ms(), 1000, 10, 10, &[])
        .await
        .unwrap();
    assert_eq!(again.len(), 2, "the leases the claim took were handed back");
}

/// A registration deactivated while a claim for it is in flight: what the claim brings is not
/// sent (the change applies to it when it lands).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_deactivated_while_its_claim_is_in_flight_gets_nothing_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let (store, webhook, ids) = store_with_two_deliveries(&dir, "http://127.0.0.1:9/x").await;
    let (gated, mut waiting) = GatedClaims::new(Arc::clone(&store));
    let schedule = RetrySchedule::new(vec![Duration::ZERO]).unwrap();
    let wakeup = Wakeup::default();
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(run(
        gated.clone(),
        context(&schedule, None),
        config(schedule, 4, None),
        wakeup.clone(),
        stop_rx,
    ));
    assert_eq!(claim_waiting(&mut waiting).await, 2);
    let inactive = Webhook {
        active: false,
        updated_at_ms: webhook.updated_at_ms + 1,
        ..webhook.clone()
    };
    assert_eq!(
        store
            .update_webhook_if_unchanged(&inactive, &webhook)
            .await
            .unwrap(),
        WebhookWrite::Updated
    );
    wakeup.registration_changed(&webhook.id);
    // The engine takes the change note while the claim still waits.
    tokio::time::sleep(Duration::from_millis(200)).await;
    gated.open();
    // Long enough for an attempt to port 9 to fail and be recorded, had one started.
    tokio::time::sleep(Duration::from_millis(700)).await;
    for id in &ids {
        let d = store.get_delivery(id).await.unwrap().unwrap();
        assert_eq!(
            (d.state, d.attempts),
            (DeliveryState::Pending, 0),
            "nothing sent to a deactivated registration"
        );
    }
    let _ = stop.send(true);
    task.await.unwrap();
}
