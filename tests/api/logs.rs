//! Logs: structured (JSON on request), with a request id, and never a secret — checked on the
//! real binary at debug level while secrets pass through every path.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;
use crate::real_binary::{free_port, start_bridge_logging_to};

#[tokio::test]
async fn json_logs_carry_request_ids_and_never_a_secret() {
    init_crypto();
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("wabridge.log");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let env = [
        ("WABRIDGE_RETRY_SCHEDULE", "0,100ms"),
        ("RUST_LOG", "debug"),
    ];
    let db = dir.path().join("logs.db");
    let mut child = start_bridge_logging_to(&db, port, &env, &log_path).await;
    let client = reqwest::Client::new();
    let rx = Receiver::start().await;
    rx.script([Reply::status(500)]);
    let secret = "plain-secret-never-logged-123";
    let header_token = "header-token-never-logged";
    let res = client
        .post(format!("{base}/v1/webhooks"))
        .header("X-API-Key", ADMIN_KEY)
        .header("x-request-id", "req-from-the-client")
        .json(&json!({"url": rx.url, "events": ["*"], "secret": secret,
            "headers": {"Authorization": format!("Bearer {header_token}")}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["x-request-id"], "req-from-the-client");
    // A request without an id gets one.
    let res = client
        .get(format!("{base}/v1/events"))
        .header("X-API-Key", "wrong-key-never-logged")
        .send()
        .await
        .unwrap();
    assert!(!res.headers()["x-request-id"].is_empty());
    let res = client
        .post(format!("{base}/v1/webhooks"))
        .header("X-API-Key", "wrong-key-never-logged")
        .json(&json!({"url": rx.url, "events": ["*"], "secret": "another-secret-never-logged"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = client
        .post(format!("{base}/v1/ingest"))
        .header("X-API-Key", INGEST_KEY)
        .json(&session_event("session.qr", "s1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let got = rx.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(
        got[1].header("authorization"),
        format!("Bearer {header_token}")
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = child.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    child.wait().await.unwrap();

    let logs = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not a JSON log line: {l}")))
        .collect();
    assert!(lines.len() > 5, "expected debug logs, got {}", lines.len());
    assert!(
        logs.contains("req-from-the-client"),
        "the request id is in the request span"
    );
    for needle in [
        secret,
        header_token,
        "another-secret-never-logged",
        "wrong-key-never-logged",
        ADMIN_KEY,
        INGEST_KEY,
        "whsec_",
    ] {
        assert!(!logs.contains(needle), "a log line contains {needle:?}");
    }
}
