//! The contract follows the engines that feed the bridge: every event OpenWA's current line
//! emits goes through its adapter to a real receiver with the key its rule gives; a bridge fed by
//! an older OpenWA reserves what that version lacks, with an explanation; nothing an engine sends
//! vanishes without a trace.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

/// The OpenWA fixtures of one version (`current` or `v0.4.3`), by event name.
fn fixtures(version: &str) -> BTreeMap<String, Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/openwa")
        .join(version);
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let body: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        out.insert(body["event"].as_str().unwrap().to_owned(), body);
    }
    out
}

async fn post_openwa(app: &TestApp, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url("/v1/ingest/openwa"))
        .header("X-API-Key", INGEST_KEY)
        .header("user-agent", "OpenWA-Webhook/1.0.0")
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn accepted(app: &TestApp, body: &Value) -> Value {
    let res = post_openwa(app, body).await;
    let status = res.status();
    let text = res.text().await.unwrap();
    assert_eq!(status, 202, "{}: {text}", body["event"]);
    serde_json::from_str(&text).unwrap()
}

/// The key prefix each event's rule gives (see src/delivery/idempotency.rs).
fn rule_prefix(event: &str) -> &'static str {
    match event {
        "message.received" | "message.sent" | "message.revoked" => "msg_",
        "message.ack" | "message.failed" => "ack_",
        "message.receipt" => "rcp_",
        "message.reaction" | "message.edited" => "mev_",
        "session.qr" => "qr_",
        "presence.update" => "prs_",
        "status.received" => "sts_",
        e if e.starts_with("session.") => "ses_",
        e if e.starts_with("group.") => "grp_",
        e if e.starts_with("call.") => "call_",
        other => panic!("no rule for {other}"),
    }
}

#[tokio::test]
async fn every_current_openwa_event_reaches_a_star_registration_with_its_rule_key() {
    let app = spawn_app().await;
    let all = Receiver::start().await;
    let receipts = Receiver::start().await;
    app.register(&json!({"url": all.url, "events": ["*"]}))
        .await;
    app.register(&json!({"url": receipts.url, "events": ["message.receipt"]}))
        .await;
    let current = fixtures("current");
    assert_eq!(current.len(), 24, "one fixture per OpenWA event");
    let mut keys = BTreeMap::new();
    for (event, body) in &current {
        let out = accepted(&app, body).await;
        assert_eq!(out["event"], *event);
        assert_eq!(out["duplicate"], false, "{event}");
        let key = out["idempotencyKey"].as_str().unwrap().to_owned();
        assert!(key.starts_with(rule_prefix(event)), "{event}: {key}");
        keys.insert(key, event.clone());
    }
    // message.receipt is opt-in: `*` does not include it; a registration naming it gets it.
    let got = all.wait_for(23, Duration::from_secs(20)).await;
    all.assert_stays_at(23, Duration::from_millis(300)).await;
    let only = receipts.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(only[0].json()["event"], "message.receipt");
    for r in &got {
        let body = r.json();
        let event = body["event"].as_str().unwrap();
        assert_ne!(event, "message.receipt");
        let key = r.header("webhook-id");
        assert_eq!(keys.get(key).map(String::as_str), Some(event), "{key}");
        assert_eq!(body["idempotencyKey"], key);
        // The payload passes through as OpenWA sent it.
        assert_eq!(body["data"], current[event]["data"], "{event}");
    }
}

#[tokio::test]
async fn content_keyed_events_collapse_across_openwa_redeliveries_and_occurrence_keyed_ones_do_not()
{
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    app.register(&json!({"url": rx.url, "events": ["call.*", "message.reaction"]}))
        .await;
    let current = fixtures("current");

    // One call, reported twice by OpenWA under two of its own keys: one fact, one delivery.
    let mut call = current["call.received"].clone();
    let first = accepted(&app, &call).await;
    call["idempotencyKey"] = json!("call_other_key_wh2");
    call["deliveryId"] = json!("dlv_other");
    let second = accepted(&app, &call).await;
    assert_eq!(second["duplicate"], true);
    assert_eq!(second["idempotencyKey"], first["idempotencyKey"]);

    // The same reaction twice (reacted, removed, reacted again): two occurrences, two keys;
    // OpenWA's retry of one occurrence (same key) is accepted once.
    let mut reaction = current["message.reaction"].clone();
    let one = accepted(&app, &reaction).await;
    let retry = accepted(&app, &reaction).await;
    assert_eq!(retry["duplicate"], true);
    reaction["idempotencyKey"] = json!("evt_message.reaction_later_occurrence_wh1");
    let again = accepted(&app, &reaction).await;
    assert_eq!(again["duplicate"], false);
    assert_ne!(again["idempotencyKey"], one["idempotencyKey"]);

    rx.wait_for(3, Duration::from_secs(10)).await;
    rx.assert_stays_at(3, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_bridge_fed_by_openwa_0_4_3_takes_its_payloads_and_reserves_what_it_lacks() {
    let app = spawn_app_fed_by("openwa@0.4.3").await;
    let rx = Receiver::start().await;
    app.register(&json!({"url": rx.url, "events": ["*"]})).await;
    let old = fixtures("v0.4.3");
    assert_eq!(old.len(), 9);
    for body in old.values() {
        accepted(&app, body).await;
    }
    let got = rx.wait_for(9, Duration::from_secs(20)).await;
    let qr = got
        .iter()
        .find(|r| r.json()["event"] == "session.qr")
        .unwrap();
    // v0.4.3 sends the raw QR string (the current line a data URL): both fit the contract.
    assert!(
        !qr.json()["data"]["qr"]
            .as_str()
            .unwrap()
            .starts_with("data:")
    );

    // group.join is reserved here; the explanation names the OpenWA version that emits it.
    let events: Value = app.get_public("/v1/events").await.json().await.unwrap();
    let group_join = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "group.join")
        .unwrap();
    let since = group_join["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["engine"] == "openwa")
        .unwrap()["since"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .post(
            "/v1/webhooks",
            &json!({"url": rx.url, "events": ["group.join"]}),
        )
        .await;
    let p = assert_problem(res, 400).await;
    let e = error_at(&p, "/events/0");
    assert_eq!(e["code"], "reserved_event");
    let message = e["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("from version {since}")),
        "{message}"
    );
    assert!(message.contains("WABRIDGE_SOURCES="), "{message}");

    // If the engine sends it anyway (it was upgraded, the setting was not), it is acknowledged,
    // not delivered, and recorded with the reason.
    let res = post_openwa(&app, &fixtures("current")["group.join"]).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["ignored"], true);
    let ignored: Value = app.get("/v1/ingest/ignored").await.json().await.unwrap();
    let row = &ignored["data"][0];
    assert_eq!(row["source"], "openwa");
    assert_eq!(row["event"], "group.join");
    assert!(
        row["lastReason"]
            .as_str()
            .unwrap()
            .contains("fed by openwa@0.4.3")
    );
    rx.assert_stays_at(9, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn bodies_that_are_not_openwa_envelopes_get_400_and_nothing_is_stored() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let hook = app.register(&json!({"url": rx.url, "events": ["*"]})).await;
    for body in [
        json!([]),
        json!([{"event": "message.received"}]),
        json!("message.received"),
        json!({}),
        json!({"event": "message.received", "sessionId": "s1"}),
        json!({"sessionId": "s1", "data": {}}),
        json!({"event": "message.received", "sessionId": "s1", "data": "hi"}),
    ] {
        let res = post_openwa(&app, &body).await;
        let p = assert_problem(res, 400).await;
        assert!(
            p["detail"].as_str().unwrap().contains("not a openwa"),
            "{body}: {p}"
        );
        assert!(!p["errors"].as_array().unwrap().is_empty(), "{body}");
    }
    let id = hook["id"].as_str().unwrap();
    let deliveries: Value = app
        .get(&format!("/v1/webhooks/{id}/deliveries"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(deliveries["data"], json!([]));
    let ignored: Value = app.get("/v1/ingest/ignored").await.json().await.unwrap();
    assert_eq!(ignored["data"], json!([]));
    rx.assert_stays_at(0, Duration::from_millis(200)).await;
}

#[tokio::test]
async fn unknown_openwa_events_are_acknowledged_counted_and_listed() {
    let app = spawn_app().await;
    let envelope = |event: &str| {
        json!({
            "event": event, "timestamp": "2026-12-01T10:00:00.000Z", "sessionId": "s1",
            "idempotencyKey": "k1", "deliveryId": "dlv_1", "data": {"x": 1}
        })
    };
    for event in ["poll.vote", "poll.vote", "test"] {
        let res = post_openwa(&app, &envelope(event)).await;
        assert_eq!(res.status(), 200, "{event}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["ignored"], true);
        assert_eq!(body["event"], event);
        assert!(!body["reason"].as_str().unwrap().is_empty());
    }
    // Only operators see the list.
    assert_eq!(
        app.client
            .get(app.url("/v1/ingest/ignored"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let list: Value = app.get("/v1/ingest/ignored").await.json().await.unwrap();
    let rows = list["data"].as_array().unwrap();
    let poll = rows.iter().find(|r| r["event"] == "poll.vote").unwrap();
    assert_eq!(poll["count"], 2);
    assert_eq!(poll["source"], "openwa");
    assert!(poll["firstSeenAt"].is_string() && poll["lastSeenAt"].is_string());
    assert!(rows.iter().any(|r| r["event"] == "test"));
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"wabridge_upstream_ignored_total{source="openwa",event="poll.vote"}"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_stored_registration_survives_a_change_of_sources_and_says_what_cannot_fire() {
    let mut app = spawn_app().await;
    let rx = Receiver::start().await;
    let hook = app
        .register(&json!({"url": rx.url, "events": ["group.join", "message.received"]}))
        .await;
    let star = app.register(&json!({"url": rx.url, "events": ["*"]})).await;
    assert_eq!(hook["cannotFire"], json!([]));
    app.stop().await;

    let db = app.db_path.clone();
    let sources = wabridge::catalog::parse_specs("openwa@0.4.3").unwrap();
    let mut old = spawn_app_on(&db, |c| c.sources = sources).await;
    let id = hook["id"].as_str().unwrap();
    let got: Value = old
        .get(&format!("/v1/webhooks/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["events"], json!(["group.join", "message.received"]));
    let cannot = got["cannotFire"].as_array().unwrap();
    assert_eq!(cannot.len(), 1);
    assert_eq!(cannot[0]["event"], "group.join");
    assert!(
        cannot[0]["reason"]
            .as_str()
            .unwrap()
            .contains("openwa@0.4.3")
    );
    old.stop().await;

    // Back on the current line, `*` (matched at delivery time) receives group.join at once.
    let app = spawn_app_on(&db, |_| {}).await;
    accepted(&app, &fixtures("current")["group.join"]).await;
    let got = rx.wait_for(2, Duration::from_secs(10)).await;
    assert!(got.iter().all(|r| r.json()["event"] == "group.join"));
    let star_id = star["id"].as_str().unwrap();
    let list: Value = app
        .get(&format!("/v1/webhooks/{star_id}/deliveries"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
}

#[test]
fn serve_refuses_sources_it_cannot_read_with_a_readable_message() {
    for (sources, words) in [
        ("openwa@latest", "not a version"),
        ("wppconnect", "unknown source engine 'wppconnect'"),
        ("openwa,openwa@0.4.3", "named twice"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_wabridge"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("WABRIDGE_SOURCES", sources)
            .env(
                "WABRIDGE_DATABASE_URL",
                format!("sqlite://{}", dir.path().join("db.sqlite").display()),
            )
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{sources}: {stderr}");
        assert!(stderr.contains(words), "{sources}: {stderr}");
        assert!(stderr.contains("WABRIDGE_SOURCES"), "{sources}: {stderr}");
    }
}

#[tokio::test]
async fn session_qr_on_a_waha_only_bridge_needs_wahas_url_and_key() {
    let sources = wabridge::catalog::parse_specs("waha").unwrap();
    let without = spawn_app_with(|c| c.sources = sources.clone()).await;
    let p = assert_problem(
        without
            .post(
                "/v1/webhooks",
                &json!({"url": "https://n8n.example.com/hook", "events": ["session.qr"]}),
            )
            .await,
        400,
    )
    .await;
    let e = error_at(&p, "/events/0");
    assert_eq!(e["code"], "reserved_event");
    let message = e["message"].as_str().unwrap();
    assert!(message.contains("WABRIDGE_WAHA_URL"), "{message}");
    assert!(message.contains("WABRIDGE_WAHA_API_KEY"), "{message}");

    let with = spawn_app_with(|c| {
        c.sources = sources;
        c.waha_url = Some("http://127.0.0.1:3000".into());
        c.waha_api_key = Some("waha-key".into());
    })
    .await;
    let res = with
        .post(
            "/v1/webhooks",
            &json!({"url": "https://n8n.example.com/hook", "events": ["session.qr"]}),
        )
        .await;
    assert_eq!(res.status(), 201);
}
