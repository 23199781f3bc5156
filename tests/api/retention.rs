//! Retention (issue 11): finished deliveries, their attempts and events with no delivery left
//! are pruned after their windows; pending work, the last status of each session and the keys
//! of events still within the window stay. Store tests run on the suite's backend (SQLite, or
//! PostgreSQL with `WABRIDGE_TEST_POSTGRES_URL`), with the time as an input to the prune.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use wabridge::ids::WebhookId;
use wabridge::retention::Retention;
use wabridge::retention::pruner::{PrunerConfig, prune_once};
use wabridge::store::{
    AttemptNext, AttemptRecord, ClaimedDelivery, NewEvent, PruneOutcome, Store, connect as open,
};

use crate::delivery::eventually;
use crate::helpers::store_fixtures::{message, open_store, status, webhook};
use crate::helpers::*;

const MINUTE: i64 = 60_000;
const DAY: i64 = 24 * 60 * MINUTE;
const LEASE: i64 = 10_000;

fn result(d: &ClaimedDelivery, next: AttemptNext) -> AttemptRecord {
    AttemptRecord {
        delivery_id: d.id.clone(),
        webhook_id: d.webhook_id.clone(),
        claim_token: d.claim_token,
        attempt: 1,
        started_at_ms: 0,
        status_code: Some(if next == AttemptNext::Delivered {
            204
        } else {
            400
        }),
        latency_ms: 3,
        error: None,
        next,
    }
}

/// Prunes at `now` in batches of `limit` until a batch comes back short, as the pruner does.
async fn prune_at(s: &dyn Store, now: i64, limit: u32) -> PruneOutcome {
    let cut = Retention::default().cutoffs(now);
    let mut total = PruneOutcome::default();
    loop {
        let o = s.prune(&cut, limit).await.unwrap();
        total.add(&o);
        if !o.full(limit) {
            return total;
        }
    }
}

/// (registration, key) of every delivery the store still lists, with its state.
async fn deliveries(s: &dyn Store) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for w in ["wh_a", "wh_b"] {
        for d in s
            .list_deliveries(&WebhookId::from_stored(w), None, 1000)
            .await
            .unwrap()
        {
            assert_eq!(
                d.attempt_log.len() as u32,
                d.attempts,
                "attempts kept with it"
            );
            out.insert((w.to_owned(), d.idempotency_key, d.state.to_string()));
        }
    }
    out
}

fn row(w: &str, key: &str, state: &str) -> (String, String, String) {
    (w.into(), key.into(), state.into())
}

async fn counts(s: &dyn Store) -> (u64, u64, u64) {
    let c = s.delivery_counts().await.unwrap();
    (c.pending, c.delivered, c.dead)
}

/// Is this key still remembered? Ingesting it again says (and, if not, stores it anew).
async fn duplicate(s: &dyn Store, e: NewEvent, now: i64) -> bool {
    s.ingest(&[e], now).await.unwrap()[0].duplicate
}

#[tokio::test]
async fn prune_takes_exactly_what_the_windows_allow() {
    let dir = tempfile::tempdir().unwrap();
    let s = open_store(&dir.path().join("r.db")).await;
    let s = s.as_ref();
    // Results are stamped with the wall clock: work relative to it, with margins of minutes.
    let t0 = wabridge::clock::now_ms();
    s.create_webhook(&webhook("wh_a", &["*"], t0))
        .await
        .unwrap();
    s.create_webhook(&webhook("wh_b", &["message.*"], t0))
        .await
        .unwrap();
    // m1: both delivered. m2: delivered to a, dead at b. m3: pending at a, delivered to b.
    // st1: a status change (a only). st2: the same status again (no delivery).
    let out = s
        .ingest(
            &[
                message("m1"),
                message("m2"),
                message("m3"),
                status("st1", "s1", "WORKING"),
                status("st2", "s1", "WORKING"),
            ],
            t0,
        )
        .await
        .unwrap();
    assert!(!out[4].dispatched, "an unchanged status is not dispatched");
    // m4: received a week later (an input), delivered now: its event is within the window at
    // the first prune although its delivery is not.
    s.ingest(&[message("m4")], t0 + 7 * DAY).await.unwrap();
    let claimed = s
        .claim_due(t0 + 7 * DAY, LEASE, 100, 100, &[])
        .await
        .unwrap();
    assert_eq!(claimed.len(), 9, "m1–m4 to both, st1 to a");
    let of = |w: &str, k: &str| {
        claimed
            .iter()
            .find(|d| d.webhook_id == w && d.idempotency_key == k)
            .unwrap_or_else(|| panic!("{w} {k} claimed"))
    };
    let results: Vec<AttemptRecord> = [
        ("wh_a", "m1", AttemptNext::Delivered),
        ("wh_b", "m1", AttemptNext::Delivered),
        ("wh_a", "m2", AttemptNext::Delivered),
        ("wh_b", "m2", AttemptNext::Dead),
        ("wh_b", "m3", AttemptNext::Delivered),
        ("wh_a", "st1", AttemptNext::Delivered),
        ("wh_a", "m4", AttemptNext::Delivered),
        ("wh_b", "m4", AttemptNext::Delivered),
    ]
    .into_iter()
    .map(|(w, k, n)| result(of(w, k), n))
    .collect();
    // wh_a's m3 stays pending (still leased: in flight).
    assert_eq!(s.record_attempts(&results[..4]).await.unwrap(), 4);
    assert_eq!(s.record_attempts(&results[4..]).await.unwrap(), 4);
    assert_eq!(counts(s).await, (1, 7, 1));

    // Just inside the delivered window: nothing goes.
    let t1 = wabridge::clock::now_ms();
    let none = prune_at(s, t1 + 7 * DAY - MINUTE, 2).await;
    assert_eq!(none, PruneOutcome::default());
    assert_eq!(deliveries(s).await.len(), 9);

    // Past it (batches of 2): the delivered ones and their attempts, and the events left with
    // nothing (m1, st1, st2: received a week before). m4's event stays (received at t0+7d),
    // although its deliveries go.
    let week = prune_at(s, t1 + 7 * DAY + MINUTE, 2).await;
    assert_eq!(
        week,
        PruneOutcome {
            delivered: 7,
            dead: 0,
            attempts: 7,
            events: 3,
            pages_freed: 0
        }
    );
    assert_eq!(
        deliveries(s).await,
        BTreeSet::from([row("wh_a", "m3", "pending"), row("wh_b", "m2", "dead")])
    );
    assert_eq!(counts(s).await, (1, 0, 1), "the gauges follow the prune");

    // Dedup: keys of kept events are still duplicates (m2, m3: deliveries left; m4: within the
    // window with none left); a pruned key is not (its window is over).
    let later = t1 + 7 * DAY + 2 * MINUTE;
    assert!(duplicate(s, message("m2"), later).await);
    assert!(duplicate(s, message("m3"), later).await);
    assert!(
        duplicate(s, message("m4"), later).await,
        "within the window"
    );
    assert!(
        !duplicate(s, message("m1"), later).await,
        "pruned with its event"
    );
    // Status-change state survives the prune of the events that set it.
    let again = s
        .ingest(&[status("st3", "s1", "WORKING")], later)
        .await
        .unwrap();
    assert!(!again[0].dispatched, "still WORKING: not a change");
    let changed = s
        .ingest(&[status("st4", "s1", "FAILED")], later)
        .await
        .unwrap();
    assert!(changed[0].dispatched, "a change is dispatched");
    // m1 again and st4: 3 new pending deliveries.
    assert_eq!(counts(s).await, (4, 0, 1));

    // Past the dead window: the dead letter goes with its event; pending work never does.
    let month = prune_at(s, t1 + 30 * DAY + MINUTE, 500).await;
    assert_eq!((month.delivered, month.dead, month.attempts), (0, 1, 1));
    // m2, m4 (its window is over too) and st3 (no delivery); m1 and st4 wait for deliveries.
    assert_eq!(month.events, 3);
    assert!(deliveries(s).await.contains(&row("wh_a", "m3", "pending")));
    assert!(!deliveries(s).await.contains(&row("wh_b", "m2", "dead")));
    assert_eq!(counts(s).await, (4, 0, 0));
    assert!(
        duplicate(s, message("m3"), later).await,
        "a pending delivery keeps its event"
    );
    assert!(!duplicate(s, message("m2"), later).await);
    // A new prune finds nothing more.
    assert_eq!(
        prune_at(s, t1 + 30 * DAY + MINUTE, 500).await,
        PruneOutcome::default()
    );
}

/// Deleting a registration leaves its events without deliveries: they become prunable too.
#[tokio::test]
async fn events_of_a_deleted_registration_are_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let s = open_store(&dir.path().join("r.db")).await;
    let t0 = wabridge::clock::now_ms();
    s.create_webhook(&webhook("wh_a", &["*"], t0))
        .await
        .unwrap();
    s.ingest(&[message("d1"), message("d2")], t0).await.unwrap();
    assert!(
        s.delete_webhook(&WebhookId::from_stored("wh_a"))
            .await
            .unwrap()
    );
    let o = prune_at(s.as_ref(), t0 + 7 * DAY + MINUTE, 500).await;
    assert_eq!((o.delivered, o.dead, o.events), (0, 0, 2));
    assert!(!duplicate(s.as_ref(), message("d1"), t0).await);
}

/// The pruner's pass (what the periodic task runs) counts what went in
/// `wabridge_pruned_total` and gives the pages back on SQLite.
#[tokio::test]
async fn a_prune_pass_gives_the_space_back() {
    wabridge::metrics::handle(); // the recorder the counters go to
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    let s = open(&database_url(&db)).await.unwrap();
    let t0 = wabridge::clock::now_ms();
    s.create_webhook(&webhook("wh_a", &["*"], t0))
        .await
        .unwrap();
    let big = "x".repeat(2000);
    for chunk in 0..4 {
        let events: Vec<NewEvent> = (0..250)
            .map(|i| NewEvent {
                data: json!({"id": i, "body": big}),
                ..message(&format!("v{chunk}-{i}"))
            })
            .collect();
        let (_, claimed) = s
            .ingest_and_claim(&events, t0, t0 + LEASE, usize::MAX)
            .await
            .unwrap();
        let results: Vec<AttemptRecord> = claimed
            .iter()
            .map(|d| result(d, AttemptNext::Delivered))
            .collect();
        assert_eq!(s.record_attempts(&results).await.unwrap(), 250);
    }
    let config = PrunerConfig::new(Retention::default(), Duration::from_secs(60));
    let (_stop, stop) = tokio::sync::watch::channel(false);
    let now = wabridge::clock::now_ms() + 7 * DAY + MINUTE;
    let o = prune_once(s.as_ref(), &config, now, &stop).await.unwrap();
    assert_eq!((o.delivered, o.attempts, o.events), (1000, 1000, 1000));
    assert_eq!(counts(s.as_ref()).await, (0, 0, 0));
    let metrics = wabridge::metrics::handle().render();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("wabridge_pruned_total{kind=\"events\"}")),
        "{metrics}"
    );
    if !on_postgres() {
        // 1000 events of 2 KB: about 500 pages of 4 KiB given back.
        assert!(o.pages_freed > 400, "{o:?}");
        let (mode, free) = sqlite_vacuum_state(&db).await;
        assert_eq!(mode, 2, "incremental auto-vacuum");
        assert!(free < 50, "{free} free pages left");
    } else {
        assert_eq!(o.pages_freed, 0);
    }
}

/// (auto_vacuum mode, free pages) of an SQLite file.
async fn sqlite_vacuum_state(db: &std::path::Path) -> (i64, i64) {
    use sqlx::Connection as _;
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let mode: i64 = sqlx::query_scalar("PRAGMA auto_vacuum")
        .fetch_one(&mut c)
        .await
        .unwrap();
    let free: i64 = sqlx::query_scalar("PRAGMA freelist_count")
        .fetch_one(&mut c)
        .await
        .unwrap();
    (mode, free)
}

/// A file made by an earlier version (migrations 1–5, no auto-vacuum) is switched to
/// incremental auto-vacuum once, and its events that never got a delivery become prunable.
#[tokio::test]
async fn an_older_sqlite_file_is_converted() {
    if on_postgres() {
        return; // the file itself is what is tested
    }
    use sqlx::Connection as _;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.db");
    let url = format!("sqlite://{}?mode=rwc", db.display());
    {
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(
            "PRAGMA journal_mode = WAL; \
             CREATE TABLE _migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
        )
        .execute(&mut c)
        .await
        .unwrap();
        let root = env!("CARGO_MANIFEST_DIR");
        for (v, f) in [
            (1, "0001_init"),
            (2, "0002_fanout_index"),
            (3, "0003_ignored_events"),
            (4, "0004_delivery_counts"),
            (5, "0005_claims"),
        ] {
            let sql = std::fs::read_to_string(format!("{root}/migrations/sqlite/{f}.sql")).unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut c)
                .await
                .unwrap();
            sqlx::query("INSERT INTO _migrations VALUES (?, 0)")
                .bind(v)
                .execute(&mut c)
                .await
                .unwrap();
        }
        // Written as the old version did: dispatched = 1, no delivery.
        sqlx::query(
            "INSERT INTO events (id, idempotency_key, event, session_id, data, occurred_rfc3339, \
             received_at, dispatched, source) VALUES ('evt_old', 'old-key', 'message.received', \
             's1', '{}', '2026-01-01T00:00:00Z', 1000, 1, 'api')",
        )
        .execute(&mut c)
        .await
        .unwrap();
        c.close().await.unwrap();
    }
    assert_eq!(
        sqlite_vacuum_state(&db).await.0,
        0,
        "made without auto-vacuum"
    );
    let s = open(&format!("sqlite://{}", db.display())).await.unwrap();
    assert_eq!(sqlite_vacuum_state(&db).await.0, 2, "converted");
    let o = s
        .prune(&Retention::default().cutoffs(10 * DAY), 10)
        .await
        .unwrap();
    assert_eq!(o.events, 1, "the old event without deliveries is found");
}

/// The real server with a 3 s delivered window: a delivered delivery disappears from the
/// listing, a pending one (retried in an hour) stays, and the gauges follow.
#[tokio::test]
async fn the_server_prunes_delivered_work_and_keeps_pending_work() {
    let ok = Receiver::start().await;
    let failing = Receiver::start().await;
    failing.set_default(Reply::status(503));
    let app = spawn_app_with(|c| {
        c.retention = Retention {
            delivered: Duration::from_secs(3),
            dead: Duration::from_secs(3600),
        };
        c.prune_every = Duration::from_millis(200);
        c.retry_schedule = "0,1h".parse().unwrap();
    })
    .await;
    let a = app
        .register(&json!({"url": ok.url, "events": ["session.qr"]}))
        .await;
    let b = app
        .register(&json!({"url": failing.url, "events": ["session.qr"]}))
        .await;
    let (a, b) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    let mut event = session_event("session.qr", "s1");
    event["eventId"] = json!("qr-retention-1");
    let out = app.ingest_ok(&event).await;
    ok.wait_for(1, Duration::from_secs(10)).await;
    failing.wait_for(1, Duration::from_secs(10)).await;
    let list = |id: String| {
        let app = &app;
        async move {
            let v: Value = app
                .get(&format!("/v1/webhooks/{id}/deliveries"))
                .await
                .json()
                .await
                .unwrap();
            v["data"].as_array().unwrap().clone()
        }
    };
    // First seen delivered, then gone.
    let delivered = list(a.to_owned()).await;
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    eventually(|| async { list(a.to_owned()).await.is_empty().then_some(()) }).await;
    // The pending one stays, with its attempt, and its event's key is still a duplicate.
    let pending = list(b.to_owned()).await;
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0]["state"], "pending");
    assert_eq!(pending[0]["attempts"], 1);
    assert_eq!(pending[0]["idempotencyKey"], out["idempotencyKey"]);
    let again = app.ingest_ok(&event).await;
    assert_eq!(again["duplicate"], true, "{again}");
    // The gauges read the counters the prune kept right (other tests share the process-wide
    // recorder: a scrape of theirs may interleave, so look a few times).
    let want = [
        "wabridge_deliveries{state=\"pending\"} 1",
        "wabridge_deliveries{state=\"delivered\"} 0",
        "wabridge_deliveries{state=\"dead\"} 0",
    ];
    eventually(|| async {
        let m = app.get("/metrics").await.text().await.unwrap();
        want.iter()
            .all(|w| m.lines().any(|l| l == *w))
            .then_some(())
    })
    .await;
}
