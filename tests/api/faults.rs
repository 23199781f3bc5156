//! Faults, as tests: a subscriber down for a long time and the disk full during ingest
//! (PostgreSQL going away is in `postgres_faults.rs`). Each checks that everything acknowledged (202) is delivered,
//! by idempotency key (exact set), and prints the figures docs/reliability.md quotes.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;
use crate::real_binary::free_port;

pub(crate) fn message(id: &str, body: &str) -> Value {
    json!({"event": "message.received", "sessionId": "s1", "data": {
        "id": id, "from": "a@c.us", "to": "b@c.us", "chatId": "a@c.us", "body": body,
        "type": "text", "timestamp": 1_764_320_000, "fromMe": false, "isGroup": false
    }})
}

fn key_of(r: &Received) -> String {
    r.json()["idempotencyKey"].as_str().unwrap().to_owned()
}

/// Waits until the receiver has seen every key of `expected` (panics after `timeout`), then
/// returns how many deliveries each key got.
pub(crate) async fn all_delivered(
    rx: &Receiver,
    expected: &HashSet<String>,
    timeout: Duration,
) -> HashMap<String, usize> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for r in rx.received().iter().filter(|r| r.status < 300) {
            *counts.entry(key_of(r)).or_default() += 1;
        }
        let seen: HashSet<String> = counts.keys().cloned().collect();
        if expected.is_subset(&seen) {
            assert_eq!(
                &seen, expected,
                "only acknowledged events are delivered, with their keys"
            );
            return counts;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} acknowledged events were never delivered",
            expected.difference(&seen).count(),
            expected.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The subscriber is down (nothing listens on its port) for several seconds while events keep
/// coming; with a shortened retry schedule every delivery fails many times over the outage.
/// Then it comes back on the same address: every event is delivered, with its key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_down_for_a_long_time_gets_everything_when_it_is_back() {
    const EVENTS: usize = 60;
    const OUTAGE: Duration = Duration::from_secs(6);
    let app = spawn_app_with(|c| {
        // 30 attempts 250 ms apart (plus jitter): about 7 s of retries, longer than the outage.
        c.retry_schedule = std::iter::once("0".to_owned())
            .chain(std::iter::repeat_n("250ms".to_owned(), 30))
            .collect::<Vec<_>>()
            .join(",")
            .parse()
            .unwrap();
    })
    .await;
    let port = free_port();
    let w = app
        .register(&json!({"url": format!("http://127.0.0.1:{port}/hook"), "events": ["message.received"]}))
        .await;
    let id = w["id"].as_str().unwrap().to_owned();
    let down_since = Instant::now();
    let mut keys = HashSet::new();
    for i in 0..EVENTS {
        let out = app
            .ingest_ok(&message(&format!("out{i}"), "during the outage"))
            .await;
        keys.insert(out["idempotencyKey"].as_str().unwrap().to_owned());
        tokio::time::sleep(OUTAGE / (2 * EVENTS as u32)).await;
    }
    tokio::time::sleep(OUTAGE.saturating_sub(down_since.elapsed())).await;
    // Still nothing delivered, and attempts were made and failed.
    let page = app
        .get(&format!("/v1/webhooks/{id}/deliveries?limit=200"))
        .await
        .json::<Value>()
        .await
        .unwrap();
    let deliveries = page["data"].as_array().unwrap();
    assert_eq!(deliveries.len(), EVENTS);
    let failed: u64 = deliveries
        .iter()
        .map(|d| d["attempts"].as_u64().unwrap())
        .sum();
    assert!(
        deliveries.iter().all(|d| d["state"] == "pending"),
        "nothing delivered or dead during the outage"
    );
    assert!(
        failed >= 5 * EVENTS as u64,
        "every delivery failed several times during the outage ({failed} attempts)"
    );

    let rx = Receiver::start_on(port).await;
    let back = Instant::now();
    let counts = all_delivered(&rx, &keys, Duration::from_secs(30)).await;
    let extra: usize = counts.values().map(|n| n - 1).sum();
    eprintln!(
        "subscriber outage: {EVENTS} events, {:.1} s down, {failed} failed attempts, all delivered \
         {:.2} s after it came back, {extra} repeated deliveries",
        OUTAGE.as_secs_f64(),
        back.elapsed().as_secs_f64()
    );
    // Every repeat is a redelivery of an acknowledged key (at least once), never a new one.
    assert!(
        extra <= EVENTS,
        "few repeats: {extra} (at most one per delivery whose result raced its retry)"
    );
}

/// Mounts a tmpfs of `size` at `dir`. The tests run as root; a mount that fails is a failure,
/// unless WABRIDGE_TEST_NO_TMPFS=1 opts out (then the caller skips, saying so).
fn mount_tmpfs(dir: &Path, size: &str) -> bool {
    if std::env::var("WABRIDGE_TEST_NO_TMPFS").as_deref() == Ok("1") {
        eprintln!("WABRIDGE_TEST_NO_TMPFS=1: the disk-full test is skipped");
        return false;
    }
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .output()
        .expect("mount can be run");
    assert!(
        out.status.success(),
        "mounting a {size} tmpfs at {} failed ({}): this test needs root and mount; set \
         WABRIDGE_TEST_NO_TMPFS=1 to skip it explicitly",
        dir.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    true
}

struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The SQLite database on a small tmpfs, nearly filled by a ballast file: ingest goes on until
/// the disk is full. Every ingest is then answered 202 or 503 problem+json with `Retry-After`
/// (never a 500). The ballast is removed: every event that got 202 is delivered (exact set).
/// SQLite only (the fault is the bridge's own disk); it runs on the SQLite file in any suite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    if !mount_tmpfs(dir.path(), "16m") {
        return;
    }
    let _unmount = Unmount(dir.path().to_owned());
    let db = dir.path().join("full.db");
    let ballast = dir.path().join("ballast");
    let rx = Receiver::start().await;
    // A slow receiver, so that deliveries are pending or in flight when the disk fills (their
    // results cannot be recorded then: their leases run out and they are sent again).
    rx.set_default(Reply::status(204).delay(Duration::from_millis(20)));
    let app = spawn_app_on(&db, |c| {
        c.database_url = format!("sqlite://{}", db.display());
        c.lease = Some(Duration::from_secs(2));
    })
    .await;
    app.register(&json!({"url": rx.url, "events": ["message.received"]}))
        .await;
    // Leave about 6 MiB free (each commit appends some 20 KiB to the WAL).
    let free = free_bytes(dir.path());
    std::fs::write(&ballast, vec![0u8; (free - 6 * 1024 * 1024) as usize]).unwrap();

    let body = "x".repeat(2000);
    let mut acked = HashSet::new();
    let mut refused = 0;
    let mut i = 0;
    while refused < 20 {
        i += 1;
        assert!(i < 5000, "the disk never filled");
        let res = app.ingest(&message(&format!("full{i}"), &body)).await;
        match res.status().as_u16() {
            202 => {
                let v: Value = res.json().await.unwrap();
                acked.insert(v["idempotencyKey"].as_str().unwrap().to_owned());
            }
            503 => {
                assert!(
                    res.headers().contains_key("retry-after"),
                    "503 with Retry-After"
                );
                let p = assert_problem(res, 503).await;
                assert_eq!(p["type"], "urn:wabridge:problem:store-unavailable");
                refused += 1;
            }
            other => panic!(
                "ingest on a full disk answered {other}: {}",
                res.text().await.unwrap_or_default()
            ),
        }
    }
    assert!(
        acked.len() > 50,
        "events were acknowledged before the disk filled: {} of {i}",
        acked.len()
    );
    let acked_at_full = acked.len();

    // Space comes back.
    std::fs::remove_file(&ballast).unwrap();
    let after = app.ingest_ok(&message("after-full", "space again")).await;
    acked.insert(after["idempotencyKey"].as_str().unwrap().to_owned());
    let t = Instant::now();
    let counts = all_delivered(&rx, &acked, Duration::from_secs(60)).await;
    eprintln!(
        "disk full: {acked_at_full} events acknowledged before the 16 MiB tmpfs filled, {refused} \
         answered 503 with Retry-After, all {} delivered {:.2} s after space came back ({} repeats)",
        acked.len(),
        t.elapsed().as_secs_f64(),
        counts.values().map(|n| n - 1).sum::<usize>()
    );
}

fn free_bytes(dir: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(dir)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}
