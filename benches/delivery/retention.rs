//! The `retention` part: N delivered events in an SQLite file (the store driven in-process,
//! no HTTP: filling is not what is measured), then one prune pass as the pruner runs it
//! (batches of `PrunerConfig::batch`, then the incremental vacuum), a week and a minute later.
//! Reports the file before, right after the pass, and after the next WAL checkpoint; the pass's
//! time and its longest single write (what ingest would wait behind).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use wabridge::retention::Retention;
use wabridge::retention::pruner::PrunerConfig;
use wabridge::store::{AttemptNext, AttemptRecord, EventSource, NewEvent, PruneOutcome, Webhook};

use crate::bridge::message_event;

#[derive(Debug, Clone, Default)]
pub struct RetentionRun {
    pub events: usize,
    pub fill: Duration,
    /// Main file and WAL, bytes.
    pub before: (u64, u64),
    pub after_pass: (u64, u64),
    pub after_checkpoint: (u64, u64),
    pub pruned: PruneOutcome,
    pub prune: Duration,
    pub batches: usize,
    pub longest_batch: Duration,
    pub vacuum: Duration,
    pub vacuum_steps: usize,
    pub longest_vacuum_step: Duration,
}

fn sizes(db: &Path) -> (u64, u64) {
    let len = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    (len(db), len(Path::new(&wal)))
}

pub async fn retention(events: usize) -> RetentionRun {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("retention.db");
    let store = wabridge::store::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let t0 = wabridge::clock::now_ms();
    store
        .create_webhook(&Webhook {
            id: wabridge::ids::WebhookId::from_stored("wh_bench"),
            url: wabridge::target_url::TargetUrl::parse("http://127.0.0.1:9/hook").unwrap(),
            events: vec!["*".into()],
            session_id: None,
            description: None,
            headers: Default::default(),
            secret: wabridge::secret::WebhookSecret::generate(),
            active: true,
            rate_limit: None,
            disabled_reason: None,
            created_at_ms: t0,
            updated_at_ms: t0,
        })
        .await
        .unwrap();
    let started = Instant::now();
    let mut done = 0;
    while done < events {
        let n = (events - done).min(1000);
        let batch: Vec<NewEvent> = (done..done + n)
            .map(|i| {
                let key = format!("ret-{i}");
                let data: Value = message_event(&key, "bench")["data"].clone();
                NewEvent {
                    id: wabridge::ids::EventId::new(),
                    idempotency_key: key,
                    event: "message.received".into(),
                    session_id: wabridge::ids::SessionId::from_stored("bench"),
                    data,
                    occurred: "2026-12-03T10:00:00Z".into(),
                    source: EventSource::Api,
                    status: None,
                    only_webhook: None,
                    subscribed_by: ["message.received".into(), "message.*".into(), "*".into()],
                }
            })
            .collect();
        let (_, claimed) = store
            .ingest_and_claim(&batch, t0, t0 + 60_000, usize::MAX)
            .await
            .unwrap();
        let results: Vec<AttemptRecord> = claimed
            .iter()
            .map(|d| AttemptRecord {
                delivery_id: d.id.clone(),
                webhook_id: d.webhook_id.clone(),
                claim_token: d.claim_token,
                attempt: 1,
                started_at_ms: t0,
                status_code: Some(204),
                latency_ms: 2,
                error: None,
                next: AttemptNext::Delivered,
            })
            .collect();
        store.record_attempts(&results).await.unwrap();
        done += n;
        if done % 100_000 == 0 {
            eprintln!("  {done} delivered events stored");
        }
    }
    let fill = started.elapsed();
    let before = sizes(&db);

    // One pass, as `retention::pruner::prune_once` runs it, with each write timed.
    let config = PrunerConfig::new(Retention::default(), Duration::from_secs(60));
    let now = wabridge::clock::now_ms() + 7 * 86_400_000 + 60_000;
    let cut = config.retention.cutoffs(now);
    let mut run = RetentionRun {
        events,
        fill,
        before,
        ..Default::default()
    };
    let started = Instant::now();
    loop {
        let t = Instant::now();
        let o = store.prune(&cut, config.batch).await.unwrap();
        run.longest_batch = run.longest_batch.max(t.elapsed());
        run.batches += 1;
        run.pruned.add(&o);
        if !o.full(config.batch) {
            break;
        }
    }
    run.prune = started.elapsed();
    let started = Instant::now();
    loop {
        let t = Instant::now();
        let freed = store.reclaim_space(config.vacuum_pages).await.unwrap();
        run.longest_vacuum_step = run.longest_vacuum_step.max(t.elapsed());
        run.vacuum_steps += 1;
        run.pruned.pages_freed += freed;
        if freed < u64::from(config.vacuum_pages) {
            break;
        }
    }
    run.vacuum = started.elapsed();
    run.after_pass = sizes(&db);
    checkpoint(&db).await;
    run.after_checkpoint = sizes(&db);
    drop(store);
    run
}

/// What SQLite's automatic checkpoint does after enough writes, done now (TRUNCATE also empties
/// the WAL file).
async fn checkpoint(db: &Path) {
    use sqlx::Connection as _;
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
}
