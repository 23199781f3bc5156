//! Several wabridge processes on one PostgreSQL database: the real binary twice, as child
//! processes, events ingested into both.
//!
//! PostgreSQL only, so these tests are `#[ignore]`d in a plain `cargo test` (which shows them as
//! ignored, not passed) and run with
//!
//!     scripts/with-postgres.sh cargo test -- --include-ignored
//!
//! Run without `WABRIDGE_TEST_POSTGRES_URL`, they fail: a missing PostgreSQL is never a pass.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Row as _;
use tokio::process::Child;

use crate::helpers::*;
use crate::real_binary::{free_port, start_bridge_with};

fn require_postgres() {
    assert!(
        on_postgres(),
        "this test runs several instances on one PostgreSQL database and {POSTGRES_ENV} is not \
         set; run it with: scripts/with-postgres.sh cargo test -- --include-ignored"
    );
}

/// One running instance.
struct Instance {
    child: Child,
    base: String,
}

impl Instance {
    async fn start(db: &Path) -> Self {
        let port = free_port();
        // More in flight per registration than the default, so that a slow receiver still
        // drains the backlog quickly.
        let child = start_bridge_with(db, port, &[("WABRIDGE_PER_WEBHOOK_IN_FLIGHT", "32")]).await;
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }
}

fn message(id: &str) -> Value {
    json!({"event": "message.received", "sessionId": "s1", "data": {
        "id": id, "from": "a@c.us", "to": "b@c.us", "chatId": "a@c.us", "body": "load",
        "type": "text", "timestamp": 1_764_320_000, "fromMe": false, "isGroup": false
    }})
}

fn status(event_id: &str, status: &str) -> Value {
    json!({"event": "session.status", "sessionId": "s1", "eventId": event_id,
           "data": {"sessionId": "s1", "status": status}})
}

async fn post(client: &reqwest::Client, url: String, key: &str, body: &Value) -> reqwest::Response {
    client
        .post(url)
        .header("X-API-Key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// `workers` clients post batches of 5 messages, alternating between the instances, until
/// `until`; returns the keys acknowledged with 202 (a request cut by a kill promises nothing).
async fn load(
    bases: Vec<String>,
    tag: &'static str,
    workers: usize,
    pause: Duration,
    until: Instant,
) -> HashSet<String> {
    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (client, bases, acked) = (client.clone(), bases.clone(), Arc::clone(&acked));
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while Instant::now() < until {
                let batch: Vec<Value> = (0..5)
                    .map(|j| message(&format!("{tag}-{w}-{i}-{j}")))
                    .collect();
                let base = &bases[(w + i) % bases.len()];
                i += 1;
                let sent = client
                    .post(format!("{base}/v1/ingest"))
                    .header("X-API-Key", INGEST_KEY)
                    .json(&batch)
                    .send()
                    .await;
                if let Ok(res) = sent
                    && res.status() == 202
                    && let Ok(body) = res.json::<Value>().await
                {
                    let mut set = acked.lock().unwrap();
                    for o in body.as_array().unwrap() {
                        assert!(
                            !o["deliveries"].as_array().unwrap().is_empty(),
                            "every instance fans out to the registration: {o}"
                        );
                        set.insert(o["idempotencyKey"].as_str().unwrap().to_owned());
                    }
                }
                tokio::time::sleep(pause).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    Arc::try_unwrap(acked).unwrap().into_inner().unwrap()
}

/// Successful receipts per key (the `webhook-id` header is the idempotency key).
fn delivered_counts(rx: &Receiver, keys: &HashSet<String>) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for r in rx.received() {
        let key = r.header("webhook-id").to_owned();
        if (200..300).contains(&r.status) && keys.contains(&key) {
            *counts.entry(key).or_insert(0) += 1;
        }
    }
    counts
}

/// Waits until every key in `keys` was delivered successfully at least once.
async fn wait_all_delivered(rx: &Receiver, keys: &HashSet<String>, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let counts = delivered_counts(rx, keys);
        if counts.len() == keys.len() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} acknowledged events were never delivered",
            keys.len() - counts.len(),
            keys.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: scripts/with-postgres.sh cargo test -- --include-ignored"]
async fn two_instances_deliver_each_event_once_and_take_over_a_killed_ones_leases() {
    require_postgres();
    init_crypto();
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("multi.db");
    let db = sqlx::PgPool::connect(&database_url(&db_path))
        .await
        .unwrap();
    let mut a = Instance::start(&db_path).await;
    let b = Instance::start(&db_path).await;
    let rx = Receiver::start().await;
    rx.set_default(Reply::status(204).delay(Duration::from_millis(2)));
    let client = reqwest::Client::new();

    // Registered through A; B's ingest fans out to it too (asserted in `load`).
    let res = post(
        &client,
        format!("{}/v1/webhooks", a.base),
        ADMIN_KEY,
        &json!({"url": rx.url, "events": ["message.*"]}),
    )
    .await;
    assert_eq!(res.status(), 201);

    // 1. Both healthy: every acknowledged key arrives exactly once, and both did some work.
    let bases = vec![a.base.clone(), b.base.clone()];
    let acked = load(
        bases.clone(),
        "healthy",
        4,
        Duration::ZERO,
        Instant::now() + Duration::from_millis(1500),
    )
    .await;
    assert!(acked.len() > 50, "too little load: {}", acked.len());
    wait_all_delivered(&rx, &acked, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let counts = delivered_counts(&rx, &acked);
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    assert_eq!(rx.received().len(), acked.len(), "nothing else arrived");
    let claimants: i64 = sqlx::query_scalar("SELECT COUNT(DISTINCT claimed_by) FROM deliveries")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(claimants, 2, "both instances claimed deliveries");
    eprintln!(
        "healthy: {} events, each delivered once by two instances",
        acked.len()
    );

    // 2. A slow receiver keeps work in flight; A is killed mid-load. B finishes A's leased work
    //    once those leases run out (3 s here), and everything acknowledged arrives.
    rx.set_default(Reply::status(204).delay(Duration::from_millis(150)));
    let stop_at = Instant::now() + Duration::from_millis(2000);
    let loader = tokio::spawn(load(bases, "kill", 2, Duration::from_millis(40), stop_at));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let a_pid = a.pid();
    a.child.start_kill().unwrap(); // SIGKILL
    a.child.wait().await.unwrap();
    let killed_at_ms = wabridge::clock::now_ms();
    let orphaned = sqlx::query(
        "SELECT d.id, e.idempotency_key, d.lease_until FROM deliveries d JOIN events e ON e.id = d.event_id \
         WHERE d.claimed_by LIKE $1 AND d.state = 'pending' AND d.lease_until IS NOT NULL",
    )
    .bind(format!("%/{a_pid}/%"))
    .fetch_all(&db)
    .await
    .unwrap();
    assert!(
        !orphaned.is_empty(),
        "A held no leases when killed; the test did not exercise the takeover"
    );
    let acked = loader.await.unwrap();
    assert!(acked.len() > 20, "too little load: {}", acked.len());
    wait_all_delivered(&rx, &acked, Duration::from_secs(60)).await;

    let orphaned_keys: HashSet<String> = orphaned
        .iter()
        .map(|r| r.get::<String, _>("idempotency_key"))
        .collect();
    for row in &orphaned {
        let id: String = row.get("id");
        let lease_until: i64 = row.get("lease_until");
        let after = sqlx::query(
            "SELECT d.state, d.claimed_by, (SELECT MAX(started_at) FROM attempts WHERE delivery_id = d.id) AS last \
             FROM deliveries d WHERE d.id = $1",
        )
        .bind(&id)
        .fetch_one(&db)
        .await
        .unwrap();
        assert_eq!(after.get::<String, _>("state"), "delivered", "{id}");
        let by: String = after.get("claimed_by");
        assert!(!by.contains(&format!("/{a_pid}/")), "{id} finished by {by}");
        let last: i64 = after.get("last");
        assert!(
            last >= lease_until,
            "{id} was attempted again {} ms before A's lease ran out",
            lease_until - last
        );
    }
    // Only the killed instance's in-flight work may have arrived twice (sent by A, never
    // recorded, then sent again by B after the lease).
    let counts = delivered_counts(&rx, &acked);
    for (key, n) in &counts {
        assert!(
            *n == 1 || orphaned_keys.contains(key),
            "{key} arrived {n} times but was not in flight at A when it died"
        );
    }
    eprintln!(
        "kill: {} events acknowledged, {} leased by A at the kill (at {killed_at_ms}), all delivered",
        acked.len(),
        orphaned.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: scripts/with-postgres.sh cargo test -- --include-ignored"]
async fn the_same_key_or_status_into_two_instances_at_once_goes_out_once() {
    require_postgres();
    init_crypto();
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("dedup.db");
    let a = Instance::start(&db_path).await;
    let b = Instance::start(&db_path).await;
    let rx = Receiver::start().await;
    let client = reqwest::Client::new();
    let created: Value = post(
        &client,
        format!("{}/v1/webhooks", b.base),
        ADMIN_KEY,
        &json!({"url": rx.url, "events": ["message.*", "session.status"]}),
    )
    .await
    .json()
    .await
    .unwrap();
    let webhook_id = created["id"].as_str().unwrap().to_owned();

    // Posts `to_a` to A and `to_b` to B at the same time; both must be acknowledged.
    let both = |to_a: Value, to_b: Value| {
        let (client, a, b) = (client.clone(), a.base.clone(), b.base.clone());
        async move {
            let (x, y) = tokio::join!(
                post(&client, format!("{a}/v1/ingest"), INGEST_KEY, &to_a),
                post(&client, format!("{b}/v1/ingest"), INGEST_KEY, &to_b)
            );
            assert_eq!((x.status().as_u16(), y.status().as_u16()), (202, 202));
            let x: Value = x.json().await.unwrap();
            let y: Value = y.json().await.unwrap();
            (x, y)
        }
    };

    let rounds = 25;
    for round in 0..rounds {
        // The same key into both at once: accepted once, the other is a duplicate of it.
        let m = message(&format!("same-{round}"));
        let (x, y) = both(m.clone(), m).await;
        let accepted = [&x, &y].iter().filter(|o| o["duplicate"] == false).count();
        assert_eq!(accepted, 1, "round {round}: {x} / {y}");
        assert_eq!(x["eventId"], y["eventId"], "round {round}");

        // The same new status into both at once, as two events (two keys): both accepted,
        // dispatched once.
        let new = if round % 2 == 0 {
            "ready"
        } else {
            "disconnected"
        };
        let (x, y) = both(
            status(&format!("st-{round}-a"), new),
            status(&format!("st-{round}-b"), new),
        )
        .await;
        assert_eq!(
            (&x["duplicate"], &y["duplicate"]),
            (&json!(false), &json!(false))
        );
        let dispatched = [&x, &y].iter().filter(|o| o["dispatched"] == true).count();
        assert_eq!(dispatched, 1, "round {round}: {x} / {y}");
    }
    // One message and one status change per round, each delivered once.
    let expected = 2 * rounds;
    let got = rx.wait_for(expected, Duration::from_secs(30)).await;
    rx.assert_stays_at(expected, Duration::from_millis(1500))
        .await;
    let keys: HashSet<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(keys.len(), expected, "each key once");

    // Registrations changed through one instance apply at the other's next ingest.
    let res = client
        .patch(format!("{}/v1/webhooks/{webhook_id}", a.base))
        .header("X-API-Key", ADMIN_KEY)
        .json(&json!({"active": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let out: Value = post(
        &client,
        format!("{}/v1/ingest", b.base),
        INGEST_KEY,
        &message("after-deactivation"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        out["deliveries"],
        json!([]),
        "B sees A's change at once: {out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: scripts/with-postgres.sh cargo test -- --include-ignored"]
async fn a_rate_limited_attempt_that_outlives_its_lease_is_not_taken_over() {
    require_postgres();
    // Two instances in this process, with 2 s leases; the registration allows one delivery per
    // 2.5 s, so the third attempt waits 5 s after its claim: the claimer must keep renewing,
    // or the other instance would take it over and deliver it a second time.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("renew.db");
    let short_lease = |c: &mut wabridge::config::Config| c.lease = Some(Duration::from_secs(2));
    let a = spawn_app_on(&db, short_lease).await;
    let _b = spawn_app_on(&db, short_lease).await;
    let rx = Receiver::start().await;
    a.register(&json!({"url": rx.url, "events": ["message.*"], "rateLimit": 0.4}))
        .await;
    let batch: Vec<Value> = (0..3).map(|i| message(&format!("slow-{i}"))).collect();
    a.ingest_ok(&json!(batch)).await;
    let got = rx.wait_for(3, Duration::from_secs(20)).await;
    rx.assert_stays_at(3, Duration::from_secs(3)).await;
    let keys: HashSet<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(keys.len(), 3, "each delivered once");
    // Limiters are per instance; of three deliveries one instance had two, 2.5 s apart.
    let span = got[2].at - got[0].at;
    assert!(
        span >= Duration::from_secs(2),
        "the rate limit spaced them (first to last: {span:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: scripts/with-postgres.sh cargo test -- --include-ignored"]
async fn instances_starting_together_on_a_fresh_database_store_one_key_per_role() {
    use wabridge::store::KeyRole;
    require_postgres();
    const N: usize = 8;
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("first-start.db");
    let url = database_url(&db_path);
    // N instances (each its own pool and connections), migrated, then released together into
    // what a first start without configured keys does: `keys::load`, as Application::build
    // calls it.
    let mut stores = Vec::new();
    for _ in 0..N {
        stores.push(wabridge::store::connect(&url).await.unwrap());
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(N));
    let mut starts = Vec::new();
    for store in &stores {
        let (store, barrier) = (Arc::clone(store), Arc::clone(&barrier));
        starts.push(tokio::spawn(async move {
            barrier.wait().await;
            wabridge::keys::load(store.as_ref(), &[], &[], false, wabridge::clock::now_ms())
                .await
                .unwrap()
        }));
    }
    let mut results = Vec::new();
    for s in starts {
        results.push(s.await.unwrap());
    }
    for role in [KeyRole::Admin, KeyRole::Ingest] {
        let shown: Vec<String> = results
            .iter()
            .flat_map(|(_, generated)| generated.iter())
            .filter(|g| g.role == role)
            .map(|g| g.key.clone())
            .collect();
        assert_eq!(
            shown.len(),
            1,
            "exactly one instance shows a generated {role:?} key"
        );
        let stored = stores[0].key_hashes(role).await.unwrap();
        assert_eq!(
            stored,
            vec![hex::encode(wabridge::keys::hash_key(&shown[0]))],
            "exactly one {role:?} key is stored, the one shown"
        );
        for (i, (keys, _)) in results.iter().enumerate() {
            assert!(
                keys.grants(&shown[0], role),
                "instance {i} does not accept the shown {role:?} key"
            );
        }
    }
    // A later start finds the key and generates none.
    let (keys, generated) = wabridge::keys::load(stores[0].as_ref(), &[], &[], false, 0)
        .await
        .unwrap();
    assert!(generated.is_empty());
    let admin = results
        .iter()
        .flat_map(|(_, g)| g.iter())
        .find(|g| g.role == KeyRole::Admin)
        .unwrap();
    assert!(keys.grants(&admin.key, KeyRole::Admin));
}
