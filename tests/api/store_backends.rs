//! The store itself, on the suite's backend (SQLite, or PostgreSQL when
//! `WABRIDGE_TEST_POSTGRES_URL` is set): claims, leases, renewal, start-up recovery, and the
//! ingest invariants when two store handles (two instances) work on one database at once.
//! Time is an input here: every call gets its `now`.

use std::collections::HashSet;
use std::sync::Arc;

use wabridge::ids::{DeliveryId, WebhookId};
use wabridge::store::{
    AttemptNext, AttemptRecord, ClaimedDelivery, HeldLease, NewEvent, Store, WebhookWrite,
    connect as open,
};

use crate::helpers::store_fixtures::{message, open_store, status, webhook};
use crate::helpers::*;

const T0: i64 = 1_800_000_000_000;
const LEASE: i64 = 10_000;

/// A fresh database and `n` handles on it, as `n` instances would hold them. PostgreSQL: `n`
/// separate stores (pools, instance ids). SQLite: one store shared `n` times, since one process
/// owns an SQLite file; its concurrent callers are what is tested there.
async fn stores(n: usize) -> (tempfile::TempDir, Vec<Arc<dyn Store>>) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let mut out = vec![open_store(&db).await];
    for _ in 1..n {
        let next = if on_postgres() {
            open_store(&db).await
        } else {
            Arc::clone(&out[0])
        };
        out.push(next);
    }
    (dir, out)
}

/// A delivered result, recorded under the claim that took `d`.
fn delivered(d: &ClaimedDelivery, attempt: u32) -> AttemptRecord {
    AttemptRecord {
        delivery_id: d.id.clone(),
        webhook_id: d.webhook_id.clone(),
        claim_token: d.claim_token,
        attempt,
        started_at_ms: T0,
        status_code: Some(204),
        latency_ms: 3,
        error: None,
        next: AttemptNext::Delivered,
    }
}

async fn claim(s: &dyn Store, now: i64, limit: u32) -> Vec<ClaimedDelivery> {
    s.claim_due(now, LEASE, limit, 1000, &[]).await.unwrap()
}

/// The leases of these claimed deliveries, as the engine renews them.
fn leases(claimed: &[ClaimedDelivery]) -> Vec<HeldLease> {
    claimed
        .iter()
        .map(|d| HeldLease {
            delivery_id: d.id.clone(),
            claim_token: d.claim_token,
        })
        .collect()
}

async fn claim_ids(s: &dyn Store, now: i64, limit: u32) -> Vec<DeliveryId> {
    claim(s, now, limit)
        .await
        .into_iter()
        .map(|d| d.id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_never_claim_the_same_delivery() {
    let (_dir, s) = stores(2).await;
    s[0].create_webhook(&webhook("wh_a", &["message.*"], T0))
        .await
        .unwrap();
    s[0].create_webhook(&webhook("wh_b", &["*"], T0))
        .await
        .unwrap();
    let events: Vec<NewEvent> = (0..150).map(|i| message(&format!("k{i}"))).collect();
    let out = s[1].ingest(&events, T0).await.unwrap();
    let all: HashSet<DeliveryId> = out.iter().flat_map(|o| o.deliveries.clone()).collect();
    assert_eq!(
        all.len(),
        300,
        "two registrations: two deliveries per event"
    );

    // Both claim in small batches, concurrently, until nothing is left.
    let mut claimers = Vec::new();
    for store in &s {
        let store = Arc::clone(store);
        claimers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch = claim_ids(store.as_ref(), T0, 7).await;
                if batch.is_empty() {
                    return got;
                }
                got.extend(batch);
                tokio::task::yield_now().await;
            }
        }));
    }
    let mut seen = HashSet::new();
    let mut per_claimer = Vec::new();
    for c in claimers {
        let got = c.await.unwrap();
        per_claimer.push(got.len());
        for id in got {
            assert!(seen.insert(id.clone()), "{id} was claimed twice");
        }
    }
    assert_eq!(seen, all, "every delivery is claimed, once");
    eprintln!("claims per instance: {per_claimer:?}");
}

#[tokio::test]
async fn the_per_registration_cap_and_busy_registrations_are_respected() {
    let (_dir, s) = stores(1).await;
    let s = &s[0];
    s.create_webhook(&webhook("wh_a", &["*"], T0))
        .await
        .unwrap();
    s.create_webhook(&webhook("wh_b", &["*"], T0))
        .await
        .unwrap();
    let events: Vec<NewEvent> = (0..5).map(|i| message(&format!("k{i}"))).collect();
    s.ingest(&events, T0).await.unwrap();
    let got = s.claim_due(T0, LEASE, 100, 2, &[]).await.unwrap();
    assert_eq!(got.len(), 4, "two per registration");
    let got = s
        .claim_due(T0, LEASE, 100, 10, &[WebhookId::from_stored("wh_a")])
        .await
        .unwrap();
    assert!(got.iter().all(|d| d.webhook_id == "wh_b"), "wh_a is busy");
    assert_eq!(got.len(), 3, "the rest of wh_b");
    assert_eq!(got[0].idempotency_key, "k2", "oldest first");
}

/// More due rows of one registration than a claim's first look at the head of the due order
/// (`claims::window`), then another registration's: whether the big one is busy or only capped,
/// the claim still reaches the other's rows behind them.
#[tokio::test]
async fn a_claim_keeps_what_the_window_gave_a_capped_registration_and_looks_past_it() {
    let (_dir, s) = stores(1).await;
    let s = &s[0];
    s.create_webhook(&webhook("wh_big", &["message.received"], T0))
        .await
        .unwrap();
    s.create_webhook(&webhook("wh_small", &["session.status"], T0))
        .await
        .unwrap();
    let backlog: Vec<NewEvent> = (0..300).map(|i| message(&format!("m{i}"))).collect();
    s.ingest(&backlog, T0).await.unwrap();
    s.ingest(&[status("s-a", "s1", "WORKING")], T0 + 1)
        .await
        .unwrap();

    // The head of the due order is wh_big's alone; it reaches its cap of 3 there, and the rest of
    // the claim (one more) comes from the registrations behind it.
    let got = s.claim_due(T0 + 2, LEASE, 4, 3, &[]).await.unwrap();
    let keys: Vec<&str> = got.iter().map(|d| d.idempotency_key.as_str()).collect();
    let big: Vec<&str> = got
        .iter()
        .filter(|d| d.webhook_id == "wh_big")
        .map(|d| d.idempotency_key.as_str())
        .collect();
    assert_eq!(big.len(), 3, "wh_big up to its cap: {keys:?}");
    assert!(keys.contains(&"s-a"), "wh_small behind it: {keys:?}");
    assert_eq!(got.len(), 4, "each once: {keys:?}");

    // Its cap again on the next claim: the rows after those it holds.
    let again = s.claim_due(T0 + 3, LEASE, 10, 3, &[]).await.unwrap();
    assert_eq!(again.len(), 3);
    assert!(again.iter().all(|d| d.webhook_id == "wh_big"));
    assert!(again.iter().all(|d| !got.iter().any(|g| g.id == d.id)));
}

#[tokio::test]
async fn a_registration_behind_a_long_backlog_is_still_claimed() {
    let (_dir, s) = stores(1).await;
    let s = &s[0];
    s.create_webhook(&webhook("wh_big", &["message.received"], T0))
        .await
        .unwrap();
    // Between the two in id order, with a backlog too: the fallback's skip scan over
    // registrations with pending rows has to step past it to reach wh_small.
    s.create_webhook(&webhook("wh_mid", &["message.received"], T0))
        .await
        .unwrap();
    s.create_webhook(&webhook("wh_small", &["session.status"], T0))
        .await
        .unwrap();
    let backlog: Vec<NewEvent> = (0..1100).map(|i| message(&format!("m{i}"))).collect();
    s.ingest(&backlog, T0).await.unwrap();
    let behind = [
        status("s-a", "s1", "WORKING"),
        status("s-b", "s2", "WORKING"),
    ];
    s.ingest(&behind, T0 + 1).await.unwrap();

    let busy = [
        WebhookId::from_stored("wh_big"),
        WebhookId::from_stored("wh_mid"),
    ];
    let got = s.claim_due(T0 + 2, LEASE, 10, 10, &busy).await.unwrap();
    let keys: Vec<&str> = got.iter().map(|d| d.idempotency_key.as_str()).collect();
    assert_eq!(
        keys,
        ["s-a", "s-b"],
        "past the busy registrations' backlogs"
    );

    let got = s.claim_due(T0 + 2, LEASE, 10, 3, &[]).await.unwrap();
    for w in ["wh_big", "wh_mid"] {
        let n = got.iter().filter(|d| d.webhook_id == w).count();
        assert_eq!(n, 3, "{w}, up to its cap");
    }
    assert_eq!(got.len(), 6, "wh_small's rows are leased already");

    // Once the leases run out, the head of the due order alone fills a claim, oldest first.
    let got = s
        .claim_due(T0 + LEASE + 10, LEASE, 200, 1000, &[])
        .await
        .unwrap();
    assert_eq!(got.len(), 200);
    assert_eq!(got[0].idempotency_key, "m0");
    assert!(got.iter().all(|d| d.webhook_id != "wh_small"));
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_and_a_renewed_one_is_not() {
    let (_dir, s) = stores(2).await;
    let (a, b) = (&s[0], &s[1]);
    a.create_webhook(&webhook("wh_a", &["*"], T0))
        .await
        .unwrap();
    a.ingest(&[message("k1"), message("k2")], T0).await.unwrap();

    let claimed = claim(a.as_ref(), T0, 10).await;
    let mine: Vec<DeliveryId> = claimed.iter().map(|d| d.id.clone()).collect();
    assert_eq!(mine.len(), 2);
    assert!(
        claim_ids(b.as_ref(), T0 + LEASE - 1, 10).await.is_empty(),
        "leased"
    );
    // A keeps working on the first one: it renews that lease only.
    assert_eq!(
        a.renew_leases(&leases(&claimed[..1]), T0 + 3 * LEASE)
            .await
            .unwrap(),
        mine[..1]
    );
    let taken = claim_ids(b.as_ref(), T0 + LEASE + 1, 10).await;
    assert_eq!(
        taken,
        mine[1..],
        "only the lease that ran out is taken over"
    );
    // A lease taken over belongs to the new claim; the old one cannot renew it (its token is
    // stale), on both backends.
    assert!(
        a.renew_leases(&leases(&claimed[1..]), T0 + 3 * LEASE)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(claim_ids(b.as_ref(), T0 + LEASE + 2, 10).await.is_empty());

    // A result clears the lease; a finished delivery is never renewed or claimed again.
    a.record_attempts(&[delivered(&claimed[0], 1)])
        .await
        .unwrap();
    assert!(
        a.renew_leases(&leases(&claimed[..1]), T0 + 9 * LEASE)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        claim_ids(b.as_ref(), T0 + 10 * LEASE, 10).await,
        mine[1..],
        "only the unfinished one comes back once every lease ran out"
    );
    let d = a.get_delivery(&mine[0]).await.unwrap().unwrap();
    assert_eq!(d.state.as_str(), "delivered");
    assert_eq!(d.attempt_log.len(), 1);
}

#[tokio::test]
async fn start_up_recovery_depends_on_the_backend() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let first = open_store(&db).await;
    first
        .create_webhook(&webhook("wh_a", &["*"], T0))
        .await
        .unwrap();
    first.ingest(&[message("k1")], T0).await.unwrap();
    assert_eq!(claim_ids(first.as_ref(), T0, 10).await.len(), 1);
    drop(first); // "killed" holding the lease

    let next = open_store(&db).await;
    let released = next.recover_leases_on_start().await.unwrap();
    if on_postgres() {
        // Other instances may be alive: nothing is released; the lease runs out instead.
        assert_eq!(released, 0);
        assert!(claim_ids(next.as_ref(), T0 + 1, 10).await.is_empty());
        assert_eq!(claim_ids(next.as_ref(), T0 + LEASE + 1, 10).await.len(), 1);
    } else {
        // One process per SQLite file: whatever it held is void.
        assert_eq!(released, 1);
        assert_eq!(claim_ids(next.as_ref(), T0 + 1, 10).await.len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_key_into_two_instances_at_once_is_accepted_once() {
    let (_dir, s) = stores(2).await;
    s[0].create_webhook(&webhook("wh_a", &["*"], T0))
        .await
        .unwrap();
    for round in 0..30 {
        let key = format!("race-{round}");
        let tasks: Vec<_> = s
            .iter()
            .map(|store| {
                let store = Arc::clone(store);
                let e = message(&key);
                tokio::spawn(async move { store.ingest(&[e], T0).await.unwrap() })
            })
            .collect();
        let mut accepted = 0;
        let mut deliveries = 0;
        let mut ids = HashSet::new();
        for t in tasks {
            let out = t.await.unwrap().remove(0);
            ids.insert(out.event_id.clone());
            if !out.duplicate {
                accepted += 1;
            }
            deliveries += out.deliveries.len();
        }
        assert_eq!(accepted, 1, "round {round}: accepted once");
        assert_eq!(deliveries, 1, "round {round}: delivered to once");
        assert_eq!(ids.len(), 1, "round {round}: both name the stored event");
    }
    assert_eq!(s[1].delivery_counts().await.unwrap().pending, 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_new_status_into_two_instances_at_once_is_dispatched_once() {
    let (_dir, s) = stores(2).await;
    s[0].create_webhook(&webhook("wh_a", &["session.*"], T0))
        .await
        .unwrap();
    let mut dispatched_total = 0;
    for round in 0..30 {
        let new = if round % 2 == 0 {
            "ready"
        } else {
            "disconnected"
        };
        let tasks: Vec<_> = s
            .iter()
            .enumerate()
            .map(|(i, store)| {
                let store = Arc::clone(store);
                // Different keys: both are accepted, only one may dispatch.
                let e = status(&format!("st-{round}-{i}"), "s1", new);
                tokio::spawn(async move { store.ingest(&[e], T0).await.unwrap() })
            })
            .collect();
        let mut dispatched = 0;
        for t in tasks {
            let out = t.await.unwrap().remove(0);
            assert!(!out.duplicate);
            if out.dispatched {
                dispatched += 1;
                assert_eq!(out.deliveries.len(), 1);
            } else {
                assert!(out.deliveries.is_empty());
            }
        }
        assert_eq!(
            dispatched, 1,
            "round {round}: the change to {new} goes out once"
        );
        dispatched_total += dispatched;
    }
    assert_eq!(
        s[1].delivery_counts().await.unwrap().pending,
        dispatched_total
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_batches_in_opposite_orders_both_succeed_without_stalling() {
    let (_dir, s) = stores(2).await;
    s[0].create_webhook(&webhook("wh_a", &["*"], T0))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    for round in 0..10 {
        let mut forward: Vec<NewEvent> =
            (0..20).map(|i| message(&format!("b{round}-{i}"))).collect();
        let new = if round % 2 == 0 {
            "ready"
        } else {
            "disconnected"
        };
        for session in ["sa", "sb", "sc"] {
            forward.push(status(&format!("b{round}-{session}"), session, new));
        }
        let backward: Vec<NewEvent> = forward.iter().rev().cloned().collect();
        let a = Arc::clone(&s[0]);
        let b = Arc::clone(&s[1]);
        let (x, y) = tokio::join!(
            tokio::spawn(async move { a.ingest(&forward, T0).await }),
            tokio::spawn(async move { b.ingest(&backward, T0).await })
        );
        let (x, y) = (
            x.unwrap().expect("batch one"),
            y.unwrap().expect("batch two"),
        );
        let accepted = x.iter().chain(&y).filter(|o| !o.duplicate).count();
        assert_eq!(accepted, 23, "round {round}: each key accepted once");
        let dispatched = x.iter().chain(&y).filter(|o| o.dispatched).count();
        assert_eq!(dispatched, 23, "round {round}: every status changed");
    }
    // A deadlock between the two would cost PostgreSQL's deadlock_timeout (1 s) per round.
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_secs(5),
        "10 rounds took {took:?}: the batches waited on each other"
    );
}

#[tokio::test]
async fn registrations_made_through_one_instance_are_used_by_the_other_at_once() {
    let (_dir, s) = stores(2).await;
    let (a, b) = (&s[0], &s[1]);
    a.create_webhook(&webhook("wh_a", &["message.*"], T0))
        .await
        .unwrap();
    let out = b.ingest(&[message("k1")], T0).await.unwrap();
    assert_eq!(out[0].deliveries.len(), 1, "B fans out to A's registration");

    let mut w = a
        .get_webhook(&WebhookId::from_stored("wh_a"))
        .await
        .unwrap()
        .unwrap();
    let read = w.clone();
    w.active = false;
    assert_eq!(
        a.update_webhook_if_unchanged(&w, &read).await.unwrap(),
        WebhookWrite::Updated
    );
    let out = b.ingest(&[message("k2")], T0).await.unwrap();
    assert!(out[0].deliveries.is_empty(), "B sees the deactivation");
    assert!(claim_ids(b.as_ref(), T0, 10).await.is_empty());
    assert_eq!(b.next_due_at().await.unwrap(), None);

    assert!(
        a.delete_webhook(&WebhookId::from_stored("wh_a"))
            .await
            .unwrap()
    );
    assert!(
        b.get_webhook(&WebhookId::from_stored("wh_a"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(b.delivery_counts().await.unwrap().pending, 0);
}

#[tokio::test]
async fn gone_deactivates_and_redrive_restarts_the_schedule() {
    let (_dir, s) = stores(1).await;
    let s = &s[0];
    s.create_webhook(&webhook("wh_a", &["*"], T0))
        .await
        .unwrap();
    s.ingest(&[message("k1"), message("k2")], T0).await.unwrap();
    let claimed = claim(s.as_ref(), T0, 10).await;
    let ids: Vec<DeliveryId> = claimed.iter().map(|d| d.id.clone()).collect();
    let gone = AttemptRecord {
        status_code: Some(410),
        error: Some("HTTP 410".into()),
        next: AttemptNext::Gone,
        ..delivered(&claimed[0], 1)
    };
    let dead = AttemptRecord {
        status_code: None,
        error: Some("could not connect".into()),
        next: AttemptNext::Dead,
        ..delivered(&claimed[1], 1)
    };
    s.record_attempts(&[gone, dead]).await.unwrap();
    let w = s
        .get_webhook(&WebhookId::from_stored("wh_a"))
        .await
        .unwrap()
        .unwrap();
    assert!(!w.active);
    assert!(w.disabled_reason.unwrap().contains("410"));
    let d = s.get_delivery(&ids[0]).await.unwrap().unwrap();
    assert_eq!((d.state.as_str(), d.last_status), ("dead", Some(410)));
    assert_eq!(d.next_attempt_at_ms, None);

    assert_eq!(
        s.redrive(&WebhookId::from_stored("wh_a"), Some(&ids[1]), T0 + 5)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.redrive(&WebhookId::from_stored("wh_a"), None, T0 + 6)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.redrive(&WebhookId::from_stored("wh_a"), None, T0 + 7)
            .await
            .unwrap(),
        0
    );
    let d = s.get_delivery(&ids[1]).await.unwrap().unwrap();
    assert_eq!(d.state.as_str(), "pending");
    assert_eq!(d.next_attempt_at_ms, Some(T0 + 5));

    let mut w = s
        .get_webhook(&WebhookId::from_stored("wh_a"))
        .await
        .unwrap()
        .unwrap();
    let read = w.clone();
    w.active = true;
    assert_eq!(
        s.update_webhook_if_unchanged(&w, &read).await.unwrap(),
        WebhookWrite::Updated
    );
    let claimed = s.claim_due(T0 + 10, LEASE, 10, 10, &[]).await.unwrap();
    assert_eq!(claimed.len(), 2);
    assert!(
        claimed.iter().all(|c| c.attempts == 1 && c.retry_base == 1),
        "the schedule restarts after the attempts already made"
    );

    let page = s
        .list_deliveries(&WebhookId::from_stored("wh_a"), None, 1)
        .await
        .unwrap();
    let rest = s
        .list_deliveries(
            &WebhookId::from_stored("wh_a"),
            Some(page[0].id.as_str()),
            10,
        )
        .await
        .unwrap();
    assert_eq!(page.len() + rest.len(), 2);
    assert!(page[0].id < rest[0].id);
    assert_eq!(page[0].attempt_log.len(), 1);
    let counts = s.delivery_counts().await.unwrap();
    assert_eq!((counts.pending, counts.dead), (2, 0));
}

#[tokio::test]
async fn keys_are_stored_once_and_listed_by_role() {
    let (_dir, s) = stores(1).await;
    let s = &s[0];
    use wabridge::store::KeyRole;
    assert!(s.insert_first_key(KeyRole::Admin, "aa", T0).await.unwrap());
    assert!(!s.insert_first_key(KeyRole::Admin, "aa", T0).await.unwrap());
    assert!(
        !s.insert_first_key(KeyRole::Admin, "cc", T0).await.unwrap(),
        "a second key of a role is not stored"
    );
    assert!(s.insert_first_key(KeyRole::Ingest, "bb", T0).await.unwrap());
    assert_eq!(s.key_hashes(KeyRole::Admin).await.unwrap(), vec!["aa"]);
    assert_eq!(s.key_hashes(KeyRole::Ingest).await.unwrap(), vec!["bb"]);
    s.ping().await.unwrap();
}

#[tokio::test]
async fn a_postgres_url_is_understood_or_refused_clearly() {
    let err = match open("mysql://localhost/x").await {
        Ok(_) => panic!("mysql is not supported"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("postgres://"), "{err}");
    if on_postgres() {
        let db = tempfile::tempdir().unwrap();
        let url = database_url(&db.path().join("x.db"));
        let sep = if url.contains('?') { '&' } else { '?' };
        let bad = format!("{url}{sep}pool_size=zero");
        let err = match open(&bad).await {
            Ok(_) => panic!("pool_size=zero is refused"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("pool_size"), "{err}");
        let good = format!("{url}{sep}pool_size=2&application_name=wabridge-test");
        open(&good).await.expect("pool_size and libpq parameters");
        let with_password = url.replacen("postgres@", "postgres:hunter2@", 1);
        let err = match open(&format!("{with_password}{sep}pool_size=-1")).await {
            Ok(_) => panic!("refused"),
            Err(e) => e.to_string(),
        };
        assert!(!err.contains("hunter2"), "the password is not shown: {err}");
    }
}

/// The /metrics gauges come from counters kept in the transactions that change states (no
/// `COUNT(*)`): they follow ingest, results, redrive and deletion, read through any instance.
#[tokio::test]
async fn delivery_counts_follow_every_state_change() {
    let (_dir, s) = stores(2).await;
    let (a, b) = (&s[0], &s[1]);
    let counts = |s: &Arc<dyn Store>| {
        let s = Arc::clone(s);
        async move {
            let c = s.delivery_counts().await.unwrap();
            let active = s.active_webhooks().await.unwrap();
            (c.pending, c.delivered, c.dead, active)
        }
    };
    assert_eq!(counts(a).await, (0, 0, 0, 0));
    a.create_webhook(&webhook("wh_a", &["*"], T0))
        .await
        .unwrap();
    b.create_webhook(&webhook("wh_b", &["message.*"], T0))
        .await
        .unwrap();
    a.ingest(&[message("c1"), message("c2"), message("c3")], T0)
        .await
        .unwrap();
    b.ingest(&[message("c1"), message("c4")], T0).await.unwrap();
    assert_eq!(counts(a).await, (8, 0, 0, 2), "4 events × 2 registrations");

    let claimed = a.claim_due(T0, LEASE, 100, 100, &[]).await.unwrap();
    assert_eq!(claimed.len(), 8);
    let of = |w: &str| -> Vec<ClaimedDelivery> {
        claimed
            .iter()
            .filter(|d| d.webhook_id == w)
            .cloned()
            .collect()
    };
    let (ids_a, ids_b) = (of("wh_a"), of("wh_b"));
    let dead = AttemptRecord {
        status_code: Some(400),
        error: Some("HTTP 400".into()),
        next: AttemptNext::Dead,
        ..delivered(&ids_a[1], 1)
    };
    let retry = AttemptRecord {
        status_code: Some(503),
        error: Some("HTTP 503".into()),
        next: AttemptNext::RetryAt(T0 + 60_000),
        ..delivered(&ids_a[2], 1)
    };
    a.record_attempts(&[delivered(&ids_a[0], 1), dead, retry])
        .await
        .unwrap();
    assert_eq!(counts(b).await, (6, 1, 1, 2));
    // The same counts, read again (a fold of the counters changes nothing).
    assert_eq!(counts(a).await, (6, 1, 1, 2));

    assert_eq!(
        a.redrive(&WebhookId::from_stored("wh_a"), None, T0 + 1)
            .await
            .unwrap(),
        1
    );
    assert_eq!(counts(a).await, (7, 1, 0, 2));
    b.record_attempts(&[delivered(&ids_b[0], 1)]).await.unwrap();
    assert_eq!(counts(b).await, (6, 2, 0, 2));

    // Deleting a registration takes its deliveries out of the counts, whatever their state.
    assert!(
        a.delete_webhook(&WebhookId::from_stored("wh_a"))
            .await
            .unwrap()
    );
    assert_eq!(counts(a).await, (3, 1, 0, 1));
    assert!(
        b.delete_webhook(&WebhookId::from_stored("wh_b"))
            .await
            .unwrap()
    );
    assert_eq!(counts(b).await, (0, 0, 0, 0));
}

/// Fencing: a holder that lost its lease (a stall longer than the lease, then a takeover) cannot
/// record over the new holder. Its result is dropped (and reported as not recorded); the new
/// holder's is recorded. On SQLite the two holders are two claims through one store.
#[tokio::test]
async fn a_stale_holder_cannot_record_after_a_takeover() {
    let (_dir, s) = stores(2).await;
    let (a, b) = (&s[0], &s[1]);
    a.create_webhook(&webhook("wh_a", &["*"], T0))
        .await
        .unwrap();
    a.ingest(&[message("f1")], T0).await.unwrap();
    let old = claim(a.as_ref(), T0, 10).await;
    assert_eq!(old.len(), 1);
    // A stalls past its lease; B takes the delivery over.
    let new = claim(b.as_ref(), T0 + LEASE + 1, 10).await;
    assert_eq!(new.len(), 1);
    assert_eq!(new[0].id, old[0].id);
    assert_ne!(new[0].claim_token, old[0].claim_token);

    // A wakes up and records a dead letter: dropped.
    let stale = AttemptRecord {
        status_code: Some(400),
        error: Some("HTTP 400".into()),
        next: AttemptNext::Dead,
        ..delivered(&old[0], 1)
    };
    assert_eq!(
        a.record_attempts(std::slice::from_ref(&stale))
            .await
            .unwrap(),
        0
    );
    let d = a.get_delivery(&old[0].id).await.unwrap().unwrap();
    assert_eq!((d.state.as_str(), d.attempt_log.len()), ("pending", 0));

    // B's result counts; A's, arriving again after it, still does not overwrite it.
    assert_eq!(
        b.record_attempts(&[delivered(&new[0], 1)]).await.unwrap(),
        1
    );
    assert_eq!(a.record_attempts(&[stale]).await.unwrap(), 0);
    let d = b.get_delivery(&new[0].id).await.unwrap().unwrap();
    assert_eq!(
        (d.state.as_str(), d.last_status, d.attempt_log.len()),
        ("delivered", Some(204), 1)
    );
    let c = b.delivery_counts().await.unwrap();
    assert_eq!((c.pending, c.delivered, c.dead), (0, 1, 0));
}

/// The hand-off: an ingest can lease its new deliveries to the caller in its own transaction
/// and return them ready to send; a claim scan then finds nothing until the lease runs out.
/// Status changes stay unleased, for a claim.
#[tokio::test]
async fn ingest_and_claim_hands_off_leased_deliveries() {
    let (_dir, s) = stores(2).await;
    let (a, b) = (&s[0], &s[1]);
    a.create_webhook(&webhook("wh_a", &["*"], T0))
        .await
        .unwrap();
    a.create_webhook(&webhook("wh_b", &["message.received"], T0))
        .await
        .unwrap();
    let (out, handed) = a
        .ingest_and_claim(
            &[message("h1"), message("h2"), status("h3", "s1", "ready")],
            T0,
            T0 + LEASE,
            usize::MAX,
        )
        .await
        .unwrap();
    assert_eq!(out.len(), 3);
    let mut created: Vec<DeliveryId> = out[..2].iter().flat_map(|o| o.deliveries.clone()).collect();
    created.sort();
    let mut got: Vec<DeliveryId> = handed.iter().map(|d| d.id.clone()).collect();
    got.sort();
    assert_eq!(got, created, "every new message delivery is handed off");
    assert!(
        handed
            .iter()
            .all(|d| d.data.contains("\"h1\"") || d.data.contains("\"h2\""))
    );
    assert!(
        handed
            .iter()
            .all(|d| d.url == "http://127.0.0.1:9/hook" && d.attempts == 0)
    );
    // The status change went out to wh_a only, unleased: a claim takes it, nothing else.
    let claimed = claim(b.as_ref(), T0, 10).await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].event, "session.status");
    // The handed-off ones record under their lease's token.
    let results: Vec<AttemptRecord> = handed.iter().map(|d| delivered(d, 1)).collect();
    assert_eq!(a.record_attempts(&results).await.unwrap(), 4);
    let again = claim_ids(b.as_ref(), T0 + 10 * LEASE, 10).await;
    assert_eq!(
        again,
        [claimed[0].id.clone()],
        "only the unrecorded status delivery"
    );
}

/// The hand-off leases no more than the engine has room for: of six new deliveries with room
/// for four, the first four (in the batch's order) are handed off and two stay for a claim.
/// That holds for plain batches and, through their own path, for batches with a status change.
#[tokio::test]
async fn ingest_and_claim_leases_at_most_what_it_is_asked_for() {
    let (_dir, s) = stores(2).await;
    let (a, b) = (&s[0], &s[1]);
    for w in ["wh_a", "wh_b"] {
        a.create_webhook(&webhook(w, &["*"], T0)).await.unwrap();
    }
    for (batch, last) in [
        ("plain", message("p3")),
        ("with a status", status("s3", "s1", "ready")),
    ] {
        let (out, handed) = a
            .ingest_and_claim(
                &[
                    message(&format!("{batch}1")),
                    message(&format!("{batch}2")),
                    last.clone(),
                ],
                T0,
                T0 + LEASE,
                3,
            )
            .await
            .unwrap();
        let created: Vec<DeliveryId> = out.iter().flat_map(|o| o.deliveries.clone()).collect();
        assert_eq!(created.len(), 6, "{batch}");
        let got: HashSet<DeliveryId> = handed.iter().map(|d| d.id.clone()).collect();
        let first: HashSet<DeliveryId> = created[..3].iter().cloned().collect();
        assert_eq!(got, first, "{batch}: the first three are handed off");
        let mut rest: Vec<DeliveryId> = claim_ids(b.as_ref(), T0, 10).await;
        rest.sort();
        let mut want: Vec<DeliveryId> = created[3..].to_vec();
        want.sort();
        assert_eq!(rest, want, "{batch}: the others are pending and unleased");
    }
}

/// Renewal names the leases still held, so that an engine learns which ones it lost: of four
/// claimed deliveries, one taken over by another claim, one finished and one handed back are
/// not renewed; only the fourth is, and only under its own claim's token.
#[tokio::test]
async fn renewal_names_exactly_the_leases_still_held() {
    let (_dir, s) = stores(2).await;
    let (a, b) = (&s[0], &s[1]);
    a.create_webhook(&webhook("wh_a", &["*"], T0))
        .await
        .unwrap();
    a.create_webhook(&webhook("wh_b", &["*"], T0))
        .await
        .unwrap();
    a.ingest(&[message("k1"), message("k2")], T0).await.unwrap();
    let mut claimed = claim(a.as_ref(), T0, 10).await;
    claimed.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(claimed.len(), 4);
    let held = leases(&claimed);
    let all: Vec<DeliveryId> = claimed.iter().map(|d| d.id.clone()).collect();
    let mut renewed = a.renew_leases(&held, T0 + LEASE / 2).await.unwrap();
    renewed.sort();
    assert_eq!(renewed, all, "every lease is held");

    // A wrong token renews nothing, even for a held delivery.
    let forged = HeldLease {
        delivery_id: claimed[0].id.clone(),
        claim_token: claimed[0].claim_token ^ 1,
    };
    assert!(
        a.renew_leases(&[forged], T0 + LEASE)
            .await
            .unwrap()
            .is_empty()
    );

    // 0: its lease ran out (A stalled) and B took it over; 1: finished; 2: handed back, and
    // taken by B too.
    a.renew_leases(&held[1..], T0 + 5 * LEASE).await.unwrap();
    assert_eq!(
        a.renew_leases(&held[2..3], T0 - 1).await.unwrap(),
        all[2..3],
        "a hand-back is a renewal into the past"
    );
    let mut taken = claim(b.as_ref(), T0 + 2 * LEASE, 10).await;
    taken.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(
        taken.iter().map(|d| d.id.clone()).collect::<Vec<_>>(),
        [all[0].clone(), all[2].clone()],
        "the lease A stopped renewing and the one it handed back are taken over"
    );
    a.record_attempts(&[delivered(&claimed[1], 1)])
        .await
        .unwrap();
    let renewed = a.renew_leases(&held, T0 + 3 * LEASE).await.unwrap();
    assert_eq!(renewed, all[3..], "only the lease still held is renewed");
    // The new holder renews its own.
    let mut theirs = b
        .renew_leases(&leases(&taken), T0 + 3 * LEASE)
        .await
        .unwrap();
    theirs.sort();
    assert_eq!(theirs, [all[0].clone(), all[2].clone()]);
}

/// A PATCH that read the registration before the engine turned it off after a 410 does not turn
/// it back on: the store refuses the stale write, and the update merges again into the fresh row.
#[tokio::test]
async fn a_patch_racing_a_gone_deactivation_does_not_undo_it() {
    use wabridge::registration::{RegistrationPatch, UpdateError, update};

    let (_dir, s) = stores(2).await;
    let (api, engine) = (&s[0], &s[1]);
    api.create_webhook(&webhook("wh_a", &["*"], T0))
        .await
        .unwrap();
    let read = api
        .get_webhook(&WebhookId::from_stored("wh_a"))
        .await
        .unwrap()
        .unwrap();
    let patch = RegistrationPatch {
        description: Some(Some("renamed".into())),
        ..RegistrationPatch::default()
    };

    // Meanwhile the engine records a 410 and turns the registration off.
    engine.ingest(&[message("k1")], T0).await.unwrap();
    let claimed = claim(engine.as_ref(), T0, 10).await;
    let gone = AttemptRecord {
        status_code: Some(410),
        error: Some("HTTP 410".into()),
        next: AttemptNext::Gone,
        ..delivered(&claimed[0], 1)
    };
    engine.record_attempts(&[gone]).await.unwrap();

    // The merge into the row read before is refused: nothing written.
    let stale = patch.apply(&read, T0 + 10);
    assert!(stale.active, "the stale merge still says active");
    assert_eq!(
        api.update_webhook_if_unchanged(&stale, &read)
            .await
            .unwrap(),
        WebhookWrite::Changed
    );
    let w = api
        .get_webhook(&WebhookId::from_stored("wh_a"))
        .await
        .unwrap()
        .unwrap();
    assert!(!w.active);
    assert_eq!(w.description, None);

    // The update operation merges again into the fresh row: the deactivation stays.
    let w = update(
        api.as_ref(),
        &WebhookId::from_stored("wh_a"),
        &patch,
        T0 + 20,
    )
    .await
    .unwrap();
    assert_eq!(w.description.as_deref(), Some("renamed"));
    assert!(!w.active);
    assert!(w.disabled_reason.as_deref().unwrap().contains("410"));
    let stored = engine
        .get_webhook(&WebhookId::from_stored("wh_a"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            stored.active,
            stored.description.as_deref(),
            stored.updated_at_ms
        ),
        (false, Some("renamed"), w.updated_at_ms)
    );

    // Turning it back on is an explicit patch, and clears the reason.
    let on = RegistrationPatch {
        active: Some(true),
        ..RegistrationPatch::default()
    };
    let w = update(api.as_ref(), &WebhookId::from_stored("wh_a"), &on, T0 + 30)
        .await
        .unwrap();
    assert!(w.active);
    assert_eq!(w.disabled_reason, None);

    // A registration deleted meanwhile is not found, and not written back.
    assert_eq!(
        api.update_webhook_if_unchanged(&w, &w).await.unwrap(),
        WebhookWrite::Updated
    );
    assert!(
        api.delete_webhook(&WebhookId::from_stored("wh_a"))
            .await
            .unwrap()
    );
    assert_eq!(
        api.update_webhook_if_unchanged(&w, &w).await.unwrap(),
        WebhookWrite::Missing
    );
    assert!(matches!(
        update(
            api.as_ref(),
            &WebhookId::from_stored("wh_a"),
            &patch,
            T0 + 40
        )
        .await,
        Err(UpdateError::NotFound(_))
    ));
}

/// A database made by the hand-written migration runner that came before `sqlx::migrate!`
/// (its record in `_migrations`, migrations 1–6 applied) opens as it is: nothing is applied
/// again, its data stays, and it opens again after that.
#[tokio::test]
async fn a_database_of_the_old_migration_runner_opens() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.db");
    let url = database_url(&db);
    let backend = if on_postgres() { "postgres" } else { "sqlite" };
    let root = env!("CARGO_MANIFEST_DIR");
    let mut script = String::from(
        "CREATE TABLE _migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL);",
    );
    for (v, f) in [
        (1, "0001_init"),
        (2, "0002_fanout_index"),
        (3, "0003_ignored_events"),
        (4, "0004_delivery_counts"),
        (5, "0005_claims"),
        (6, "0006_retention"),
    ] {
        script += &std::fs::read_to_string(format!("{root}/migrations/{backend}/{f}.sql")).unwrap();
        script += &format!("\nINSERT INTO _migrations VALUES ({v}, 0);\n");
    }
    script += "INSERT INTO api_keys (hash, role, created_at) VALUES ('old-hash', 'admin', 1);";
    let applied = "SELECT COUNT(*) FROM _sqlx_migrations";
    let count_applied = |url: String| async move {
        use sqlx::Connection as _;
        if on_postgres() {
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query_scalar::<_, i64>(applied)
                .fetch_one(&mut c)
                .await
                .unwrap()
        } else {
            let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query_scalar::<_, i64>(applied)
                .fetch_one(&mut c)
                .await
                .unwrap()
        }
    };
    {
        use sqlx::Connection as _;
        let script = sqlx::AssertSqlSafe(script);
        if on_postgres() {
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::raw_sql(script).execute(&mut c).await.unwrap();
            c.close().await.unwrap();
        } else {
            let mut c = sqlx::SqliteConnection::connect(&format!("{url}?mode=rwc"))
                .await
                .unwrap();
            sqlx::raw_sql(script).execute(&mut c).await.unwrap();
            c.close().await.unwrap();
        }
    }
    for _ in 0..2 {
        let s = open(&url).await.expect("the old database opens");
        assert_eq!(
            s.key_hashes(wabridge::store::KeyRole::Admin).await.unwrap(),
            ["old-hash"]
        );
        s.create_webhook(&webhook(
            &format!("wh_{}", uuid::Uuid::new_v4().simple()),
            &["*"],
            T0,
        ))
        .await
        .unwrap();
        drop(s);
        assert_eq!(count_applied(url.clone()).await, 6, "carried over, once");
    }
}
