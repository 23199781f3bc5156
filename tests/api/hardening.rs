//! Small things a hostile or careless client could exploit, each tried over HTTP.

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn a_client_request_id_that_is_not_a_plain_token_is_replaced() {
    let app = spawn_app().await;
    for (sent, kept) in [
        ("n8n-exec_42.retry:1", true),
        ("evil request_id=forged", false),
        ("a\tb", false),
    ] {
        let res = app
            .client
            .get(app.url("/healthz"))
            .header("x-request-id", sent)
            .send()
            .await
            .unwrap();
        let got = res.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_eq!(got == sent, kept, "{sent:?} → {got:?}");
        assert!(!got.is_empty());
    }
}

#[tokio::test]
async fn responses_say_nosniff_and_a_new_secret_is_never_cached() {
    let app = spawn_app().await;
    let res = app.get_public("/v1/events").await;
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    let res = app
        .post(
            "/v1/webhooks",
            &json!({"url": "https://n8n.example.com/hook", "events": ["*"]}),
        )
        .await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    let p = assert_problem(app.get_public("/nowhere").await, 404).await;
    assert!(p["detail"].is_string());
}

#[tokio::test]
async fn a_body_declared_as_something_else_than_json_is_415() {
    let app = spawn_app().await;
    let res = app
        .client
        .post(app.url("/v1/webhooks"))
        .header("X-API-Key", ADMIN_KEY)
        .header("content-type", "text/plain")
        .body(r#"{"url": "https://n8n.example.com/hook", "events": ["*"]}"#)
        .send()
        .await
        .unwrap();
    let p = assert_problem(res, 415).await;
    assert!(p["detail"].as_str().unwrap().contains("application/json"));
    // JSON with parameters, or a +json type, is fine.
    let res = app
        .client
        .post(app.url("/v1/webhooks/validate"))
        .header("X-API-Key", ADMIN_KEY)
        .header("content-type", "application/json; charset=utf-8")
        .body(r#"{"url": "https://n8n.example.com/hook", "events": ["*"]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn hosts_under_localhost_and_wabridge_headers_are_refused_at_registration() {
    let app = spawn_app_with(|c| c.allow_targets = Default::default()).await;
    let p = assert_problem(
        app.post(
            "/v1/webhooks",
            &json!({"url": "http://n8n.localhost/hook", "events": ["*"]}),
        )
        .await,
        400,
    )
    .await;
    assert_eq!(error_at(&p, "/url")["code"], "url_not_allowed");
    let p = assert_problem(
        app.post(
            "/v1/webhooks",
            &json!({"url": "https://n8n.example.com/hook", "events": ["*"],
                    "headers": {"X-Wabridge-Test": "true"}}),
        )
        .await,
        400,
    )
    .await;
    assert_eq!(
        error_at(&p, "/headers/X-Wabridge-Test")["code"],
        "reserved_header"
    );
}

#[tokio::test]
async fn a_huge_unknown_name_is_refused_quickly_and_not_echoed_whole() {
    let app = spawn_app().await;
    let name = "x".repeat(2_000_000);
    let started = std::time::Instant::now();
    let res = app
        .post(
            "/v1/webhooks",
            &json!({"url": "https://n8n.example.com/hook", "events": [name]}),
        )
        .await;
    let text = res.text().await.unwrap();
    assert!(text.len() < 10_000, "the error echoes {} bytes", text.len());
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["errors"][0]["code"], "unknown_event");
    assert!(v["errors"][0]["suggestion"].is_null());
    // Not a timing target: a did-you-mean over 2 MB would take many seconds on any machine.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[cfg(unix)]
#[tokio::test]
async fn the_database_files_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    if on_postgres() {
        return; // PostgreSQL keeps its own files.
    }
    init_crypto();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("private.db");
    let port = crate::real_binary::free_port();
    let mut child = crate::real_binary::start_bridge(&db, port).await;
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let res = client
        .post(format!("{base}/v1/webhooks"))
        .header("X-API-Key", ADMIN_KEY)
        .json(&json!({"url": "https://n8n.example.com/hook", "events": ["*"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let mut seen = 0;
    for name in ["private.db", "private.db-wal", "private.db-shm"] {
        let path = dir.path().join(name);
        if let Ok(meta) = std::fs::metadata(&path) {
            seen += 1;
            assert_eq!(
                meta.permissions().mode() & 0o077,
                0,
                "{name} is readable by others"
            );
        }
    }
    assert!(seen >= 2, "the database and its WAL exist");
    child.start_kill().unwrap();
}
