//! Crash safety: the real binary as a child process, killed with SIGKILL under load, restarted on
//! the same database. Every event acknowledged with 202 must still be delivered, with its key.
//! Runs on the suite's backend: on SQLite the restart releases the dead run's leases; on
//! PostgreSQL it waits for them to run out (a short lease, `WABRIDGE_LEASE`, keeps that quick).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;
use crate::real_binary::{free_port, start_bridge};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nothing_acknowledged_is_lost_when_the_process_is_killed() {
    init_crypto();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let rx = Receiver::start().await;
    // Failing at first, then slow (half a second an answer, at most 8 at once: fewer than 12
    // can succeed before the kill, under any load), so that at the kill some deliveries are in
    // flight, some pending and some scheduled for a retry.
    rx.script(std::iter::repeat_n(Reply::status(503), 40));
    rx.set_default(Reply::status(204).delay(Duration::from_millis(500)));

    let mut child = start_bridge(&db, port).await;
    let client = reqwest::Client::new();
    let res = client
        .post(format!("{base}/v1/webhooks"))
        .header("X-API-Key", ADMIN_KEY)
        .json(&json!({"url": rx.url, "events": ["message.*"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);

    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    let stop_at = Instant::now() + Duration::from_millis(1500);
    let mut load = Vec::new();
    for worker in 0..4 {
        let client = client.clone();
        let base = base.clone();
        let acked = Arc::clone(&acked);
        load.push(tokio::spawn(async move {
            let mut i = 0;
            while Instant::now() < stop_at {
                let batch: Vec<Value> = (0..5)
                    .map(|j| {
                        json!({"event": "message.received", "sessionId": "s1", "data": {
                            "id": format!("w{worker}-{i}-{j}"), "from": "a@c.us", "to": "b@c.us",
                            "chatId": "a@c.us", "body": "load", "type": "text",
                            "timestamp": 1_764_320_000, "fromMe": false, "isGroup": false
                        }})
                    })
                    .collect();
                i += 1;
                let sent = client
                    .post(format!("{base}/v1/ingest"))
                    .header("X-API-Key", INGEST_KEY)
                    .json(&batch)
                    .send()
                    .await;
                // Only a 202 acknowledges; a request cut by the kill promises nothing.
                if let Ok(res) = sent
                    && res.status() == 202
                    && let Ok(body) = res.json::<Value>().await
                {
                    let mut set = acked.lock().unwrap();
                    for o in body.as_array().unwrap() {
                        set.insert(o["idempotencyKey"].as_str().unwrap().to_owned());
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    child.start_kill().unwrap(); // SIGKILL
    child.wait().await.unwrap();
    // The restarted bridge meets a fast receiver, so the test does not wait on the slow one.
    rx.set_default(Reply::status(204).delay(Duration::from_millis(5)));
    for h in load {
        h.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 20,
        "the load acknowledged too little: {}",
        acked.len()
    );
    let before_restart: HashSet<String> = rx
        .received()
        .iter()
        .filter(|r| (200..300).contains(&r.status))
        .map(|r| r.header("webhook-id").to_owned())
        .collect();
    // The kill must have left work behind, or the restart proves nothing.
    let undelivered = acked.difference(&before_restart).count();
    assert!(
        undelivered > 0,
        "every acknowledged event was delivered before the kill: nothing was at stake"
    );

    let _child = start_bridge(&db, port).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let delivered: HashSet<String> = rx
            .received()
            .iter()
            .filter(|r| (200..300).contains(&r.status))
            .map(|r| r.header("webhook-id").to_owned())
            .collect();
        let missing: Vec<&String> = acked.difference(&delivered).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} acknowledged events never arrived after the restart (e.g. {:?})",
            missing.len(),
            acked.len(),
            missing.first()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "acknowledged {} events; {} had been delivered before the kill",
        acked.len(),
        before_restart.len()
    );
}

#[tokio::test]
async fn sigterm_shuts_down_gracefully() {
    init_crypto();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = start_bridge(&dir.path().join("term.db"), port).await;
    let pid = child.id().unwrap().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("wabridge exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
}
