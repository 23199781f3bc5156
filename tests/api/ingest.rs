//! Ingest through HTTP: validation, idempotency keys per rule, duplicates, session.status only
//! on change (also under concurrency and across a restart), batches, and the OpenWA adapter.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

fn message(event: &str, id: &str) -> Value {
    json!({"event": event, "sessionId": "s1", "data": {
        "id": id, "from": "a@c.us", "to": "b@c.us", "chatId": "a@c.us", "body": "hi",
        "type": "text", "timestamp": 1_764_320_000, "fromMe": false, "isGroup": false
    }})
}

fn ack(id: &str, status: &str, ack: i64) -> Value {
    json!({"event": "message.ack", "sessionId": "s1", "data": {"id": id, "messageId": id, "status": status, "ack": ack}})
}

#[tokio::test]
async fn message_keys_come_from_content_so_a_repeat_is_a_duplicate() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    app.register(&json!({"url": rx.url, "events": ["message.*"]}))
        .await;
    let first = app.ingest_ok(&message("message.received", "m1")).await;
    assert_eq!(first["duplicate"], false);
    assert_eq!(first["dispatched"], true);
    assert_eq!(first["deliveries"].as_array().unwrap().len(), 1);
    assert!(
        first["idempotencyKey"]
            .as_str()
            .unwrap()
            .starts_with("msg_")
    );
    let again = app.ingest_ok(&message("message.received", "m1")).await;
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["dispatched"], false);
    assert_eq!(again["deliveries"], json!([]));
    assert_eq!(again["idempotencyKey"], first["idempotencyKey"]);
    assert_eq!(again["eventId"], first["eventId"]);
    let other = app.ingest_ok(&message("message.received", "m2")).await;
    assert_ne!(other["idempotencyKey"], first["idempotencyKey"]);
    rx.wait_for(2, Duration::from_secs(10)).await;
    rx.assert_stays_at(2, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn ack_keys_include_the_ack_status() {
    let app = spawn_app().await;
    let a = app.ingest_ok(&ack("m1", "server", 1)).await;
    let b = app.ingest_ok(&ack("m1", "device", 2)).await;
    let c = app.ingest_ok(&ack("m1", "device", 2)).await;
    assert_ne!(a["idempotencyKey"], b["idempotencyKey"]);
    assert_eq!(b["idempotencyKey"], c["idempotencyKey"]);
    assert_eq!(c["duplicate"], true);
}

#[tokio::test]
async fn qr_keys_come_from_the_qr_content() {
    let app = spawn_app().await;
    let a = app.ingest_ok(&session_event("session.qr", "s1")).await;
    let b = app.ingest_ok(&session_event("session.qr", "s1")).await;
    assert_eq!(b["duplicate"], true);
    assert_eq!(a["idempotencyKey"], b["idempotencyKey"]);
    let mut other = session_event("session.qr", "s1");
    other["data"]["qr"] = json!("2@another,qr");
    let c = app.ingest_ok(&other).await;
    assert_eq!(c["duplicate"], false);
    assert!(a["idempotencyKey"].as_str().unwrap().starts_with("qr_"));
}

#[tokio::test]
async fn lifecycle_keys_follow_the_occurrence() {
    let app = spawn_app().await;
    // The engine's event id names the occurrence: the same id is a redelivery.
    let mut e = session_event("session.disconnected", "s1");
    e["eventId"] = json!("engine-evt-1");
    let a = app.ingest_ok(&e).await;
    let b = app.ingest_ok(&e).await;
    assert_eq!(b["duplicate"], true);
    assert_eq!(a["idempotencyKey"], b["idempotencyKey"]);
    e["eventId"] = json!("engine-evt-2");
    let c = app.ingest_ok(&e).await;
    assert_eq!(c["duplicate"], false);
    assert_ne!(c["idempotencyKey"], a["idempotencyKey"]);
    // Without an id, occurredAt names it.
    let mut t = session_event("session.authenticated", "s1");
    t["occurredAt"] = json!("2026-11-28T10:00:00Z");
    let d = app.ingest_ok(&t).await;
    let e2 = app.ingest_ok(&t).await;
    assert_eq!(e2["duplicate"], true);
    assert_eq!(d["idempotencyKey"], e2["idempotencyKey"]);
    t["occurredAt"] = json!("2026-11-28T10:00:01Z");
    assert_eq!(app.ingest_ok(&t).await["duplicate"], false);
    // Without either, each ingest is its own occurrence.
    let f = app
        .ingest_ok(&session_event("session.authenticated", "s1"))
        .await;
    let g = app
        .ingest_ok(&session_event("session.authenticated", "s1"))
        .await;
    assert_ne!(f["idempotencyKey"], g["idempotencyKey"]);
    assert!(f["idempotencyKey"].as_str().unwrap().starts_with("ses_"));
}

fn status(s: &str) -> Value {
    json!({"event": "session.status", "sessionId": "s1", "data": {"sessionId": "s1", "status": s}})
}

#[tokio::test]
async fn a_repeated_status_is_delivered_once() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    app.register(&json!({"url": rx.url, "events": ["session.status"]}))
        .await;
    let a = app.ingest_ok(&status("ready")).await;
    assert_eq!(a["dispatched"], true);
    let b = app.ingest_ok(&status("ready")).await;
    assert_eq!(b["dispatched"], false);
    assert_eq!(b["duplicate"], false);
    assert!(b["reason"].as_str().unwrap().contains("already 'ready'"));
    let c = app.ingest_ok(&status("disconnected")).await;
    assert_eq!(c["dispatched"], true);
    let d = app.ingest_ok(&status("ready")).await;
    assert_eq!(d["dispatched"], true);
    // Another session has its own last status.
    let mut other = status("ready");
    other["sessionId"] = json!("s2");
    other["data"]["sessionId"] = json!("s2");
    assert_eq!(app.ingest_ok(&other).await["dispatched"], true);
    let got = rx.wait_for(4, Duration::from_secs(10)).await;
    let statuses: Vec<String> = got
        .iter()
        .map(|r| format!("{}:{}", r.json()["sessionId"], r.json()["data"]["status"]))
        .collect();
    assert_eq!(statuses.len(), 4, "{statuses:?}");
    rx.assert_stays_at(4, Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_ingests_of_one_new_status_dispatch_exactly_once() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    app.register(&json!({"url": rx.url, "events": ["session.status"]}))
        .await;
    let mut handles = Vec::new();
    for _ in 0..16 {
        let client = app.client.clone();
        let url = app.url("/v1/ingest");
        handles.push(tokio::spawn(async move {
            let res = client
                .post(url)
                .header("X-API-Key", INGEST_KEY)
                .json(&status("authenticating"))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 202);
            res.json::<Value>().await.unwrap()
        }));
    }
    let mut dispatched = 0;
    for h in handles {
        if h.await.unwrap()["dispatched"] == true {
            dispatched += 1;
        }
    }
    assert_eq!(dispatched, 1);
    rx.wait_for(1, Duration::from_secs(10)).await;
    rx.assert_stays_at(1, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn the_last_status_survives_a_restart() {
    let mut app = spawn_app().await;
    assert_eq!(app.ingest_ok(&status("ready")).await["dispatched"], true);
    app.stop().await;
    let db = app.db_path.clone();
    let app2 = spawn_app_on(&db, |_| {}).await;
    let again = app2.ingest_ok(&status("ready")).await;
    assert_eq!(again["dispatched"], false);
}

#[tokio::test]
async fn ingest_refuses_reserved_unknown_and_invalid_events_with_pointers() {
    // OpenWA v0.4.3 emits no group event: group.join is reserved on this bridge.
    let app = spawn_app_with(|c| {
        c.sources = wabridge::catalog::parse_specs("openwa@0.4.3").unwrap();
    })
    .await;
    let res = app
        .ingest(&json!({"event": "group.join", "sessionId": "s1", "data": {"groupId": "g", "participantIds": ["p"]}}))
        .await;
    assert_eq!(res.status(), 400);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["errors"][0]["code"], "reserved_event");
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("fed by openwa@0.4.3")
    );

    let res = app
        .ingest(&json!({"event": "session.connected", "sessionId": "s1", "data": {}}))
        .await;
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["errors"][0]["code"], "unknown_event");
    assert_eq!(v["errors"][0]["suggestion"], "session.authenticated");

    // Every payload violation, each with its JSON Pointer. (A message type the catalog does not
    // list yet is fine — engines add kinds — but it must be a string.)
    let res = app
        .ingest(
            &json!({"event": "message.received", "sessionId": "s1", "data": {
            "id": "m1", "from": "a", "to": "b", "body": "x", "type": 7,
            "timestamp": "yesterday", "fromMe": false, "isGroup": false
        }, "extra": 1}),
        )
        .await;
    assert_eq!(res.status(), 400);
    let v: Value = res.json().await.unwrap();
    let pointers: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    for want in ["/extra", "/data/type", "/data/timestamp", "/data"] {
        assert!(pointers.contains(&want), "{want} missing in {pointers:?}");
    }
    let codes: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"invalid_payload") && codes.contains(&"unknown_field"));

    let res = app
        .ingest(&json!({"event": "session.qr", "data": {"sessionId": "s1", "qr": "x"}, "occurredAt": "noon"}))
        .await;
    let v: Value = res.json().await.unwrap();
    let codes: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["required", "invalid_timestamp"]);

    let res = app
        .client
        .post(app.url("/v1/ingest"))
        .header("X-API-Key", INGEST_KEY)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn ingest_needs_the_ingest_key() {
    let app = spawn_app().await;
    let res = app
        .client
        .post(app.url("/v1/ingest"))
        .header("X-API-Key", ADMIN_KEY)
        .json(&status("ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = app
        .client
        .post(app.url("/v1/ingest"))
        .header("Authorization", format!("Bearer {INGEST_KEY}"))
        .json(&status("ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let open = spawn_app_with(|c| c.admin_can_ingest = true).await;
    let res = open
        .client
        .post(open.url("/v1/ingest"))
        .header("X-API-Key", ADMIN_KEY)
        .json(&status("ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
}

#[tokio::test]
async fn a_batch_is_one_transaction() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    app.register(&json!({"url": rx.url, "events": ["*"]})).await;
    let bad = json!([message("message.received", "b1"), {"event": "message.received", "sessionId": "s1", "data": {"id": "b2"}}]);
    let res = app.ingest(&bad).await;
    assert_eq!(res.status(), 400);
    let v: Value = res.json().await.unwrap();
    assert!(
        v["errors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["pointer"].as_str().unwrap().starts_with("/1"))
    );
    // Nothing of the refused batch was stored: b1 is new now.
    let ok = app
        .ingest_ok(&json!([
            message("message.received", "b1"),
            message("message.sent", "b2")
        ]))
        .await;
    let arr = ok.as_array().unwrap();
    assert_eq!(arr.len(), 2);
    assert!(arr.iter().all(|o| o["duplicate"] == false));
    rx.wait_for(2, Duration::from_secs(10)).await;
}

fn openwa_envelope(event: &str, key: &str, data: Value) -> Value {
    json!({
        "event": event,
        "timestamp": "2026-11-28T10:00:00.000Z",
        "sessionId": "s1",
        "idempotencyKey": key,
        "deliveryId": "dlv_1b4e28ba-2fa1-11d2-883f-0016d3cca427",
        "data": data,
    })
}

async fn post_openwa(app: &TestApp, body: &Value, sig: Option<String>) -> reqwest::Response {
    let bytes = serde_json::to_vec(body).unwrap();
    let mut req = app
        .client
        .post(app.url("/v1/ingest/openwa"))
        .header("content-type", "application/json")
        .header("user-agent", "OpenWA-Webhook/1.0.0")
        .header("x-openwa-event", body["event"].as_str().unwrap());
    if let Some(s) = sig {
        req = req.header("x-openwa-signature", s);
    }
    req.body(bytes).send().await.unwrap()
}

fn openwa_sign(secret: &str, body: &Value) -> String {
    wabridge::delivery::signer::openwa_signature(secret, &serde_json::to_vec(body).unwrap())
}

#[tokio::test]
async fn the_openwa_adapter_verifies_feeds_and_ignores() {
    let secret = "upstream-openwa-secret";
    let app = spawn_app_with(|c| c.openwa_secret = Some(secret.into())).await;
    let rx = Receiver::start().await;
    app.register(&json!({"url": rx.url, "events": ["session.*"]}))
        .await;
    let env = openwa_envelope(
        "session.authenticated",
        "auth_s1_abc123",
        json!({"sessionId": "s1", "phone": "628123", "pushName": "Ann"}),
    );
    // No signature, or a wrong one: 401.
    assert_eq!(post_openwa(&app, &env, None).await.status(), 401);
    assert_eq!(
        post_openwa(&app, &env, Some("sha256=00".into()))
            .await
            .status(),
        401
    );
    let res = post_openwa(&app, &env, Some(openwa_sign(secret, &env))).await;
    assert_eq!(res.status(), 202);
    let first: Value = res.json().await.unwrap();
    assert_eq!(first["duplicate"], false);
    // OpenWA redelivers the same occurrence: accepted once.
    let again: Value = post_openwa(&app, &env, Some(openwa_sign(secret, &env)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["duplicate"], true);
    // A new occurrence of the same content: a new key.
    let next = openwa_envelope(
        "session.authenticated",
        "auth_s1_def456",
        json!({"sessionId": "s1", "phone": "628123", "pushName": "Ann"}),
    );
    let third: Value = post_openwa(&app, &next, Some(openwa_sign(secret, &next)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(third["duplicate"], false);
    assert_ne!(third["idempotencyKey"], first["idempotencyKey"]);
    let got = rx.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(got[0].json()["data"]["phone"], "628123");
    // Outside the catalog: acknowledged and ignored, so OpenWA does not retry it forever.
    let poll = openwa_envelope("poll.vote", "poll_1", json!({"from": "x"}));
    let res = post_openwa(&app, &poll, Some(openwa_sign(secret, &poll))).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["ignored"], true);
    // A catalog event with a payload that does not fit: refused, so it is seen upstream.
    let call = openwa_envelope("call.received", "call_1", json!({"from": "x"}));
    let res = post_openwa(&app, &call, Some(openwa_sign(secret, &call))).await;
    assert_eq!(res.status(), 400);
    rx.assert_stays_at(2, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn without_an_upstream_secret_the_openwa_adapter_wants_the_ingest_key() {
    let app = spawn_app().await;
    let env = openwa_envelope(
        "session.qr",
        "qr_s1_x",
        json!({"sessionId": "s1", "qr": "2@x"}),
    );
    assert_eq!(post_openwa(&app, &env, None).await.status(), 401);
    let res = app
        .client
        .post(app.url("/v1/ingest/openwa"))
        .header("X-API-Key", INGEST_KEY)
        .json(&env)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
}

/// The value of one Prometheus sample line `name{labels} value`, 0 when absent.
fn sample(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name_and_labels) && l[name_and_labels.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_ingests_and_deliveries() {
    init_crypto();
    // The bridge as a separate process, so its metrics recorder counts only this test's traffic.
    let dir = tempfile::tempdir().unwrap();
    let port = crate::real_binary::free_port();
    let _bridge = crate::real_binary::start_bridge(&dir.path().join("metrics.db"), port).await;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let rx = Receiver::start().await;
    rx.script([Reply::status(500)]);
    let res = client
        .post(format!("{base}/v1/webhooks"))
        .header("X-API-Key", ADMIN_KEY)
        .json(&json!({"url": rx.url, "events": ["session.status"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let scrape = || async {
        let res = client.get(format!("{base}/metrics")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        res.text().await.unwrap()
    };
    let ingest = |body: Value| {
        let client = client.clone();
        let url = format!("{base}/v1/ingest");
        async move {
            client
                .post(url)
                .header("X-API-Key", INGEST_KEY)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let mut s = status("qr_ready");
    assert_eq!(ingest(s.clone()).await, 202);
    assert_eq!(ingest(s.clone()).await, 202);
    s["data"]["status"] = json!("bogus");
    assert_eq!(ingest(s).await, 400);
    rx.wait_for(2, Duration::from_secs(10)).await;
    // This process served only this test: the counts are exact. The attempt is counted when it
    // ends, its result a moment later, once committed: wait for both.
    let after = crate::delivery::eventually(|| async {
        let t = scrape().await;
        (sample(
            &t,
            r#"wabridge_delivery_attempts_total{outcome="delivered",status_class="2xx"}"#,
        ) >= 1.0
            && sample(&t, r#"wabridge_deliveries{state="delivered"}"#) >= 1.0)
            .then_some(t)
    })
    .await;
    for (line, want) in [
        (
            r#"wabridge_events_ingested_total{event="session.status",outcome="accepted"}"#,
            1.0,
        ),
        (
            r#"wabridge_events_ingested_total{event="session.status",outcome="unchanged"}"#,
            1.0,
        ),
        (
            r#"wabridge_events_ingested_total{event="session.status",outcome="refused"}"#,
            1.0,
        ),
        (
            r#"wabridge_delivery_attempts_total{outcome="retry",status_class="5xx"}"#,
            1.0,
        ),
        (
            r#"wabridge_delivery_attempts_total{outcome="delivered",status_class="2xx"}"#,
            1.0,
        ),
        (r#"wabridge_registrations_active"#, 1.0),
        (r#"wabridge_deliveries{state="delivered"}"#, 1.0),
        (r#"wabridge_deliveries{state="pending"}"#, 0.0),
    ] {
        assert_eq!(sample(&after, line), want, "{line} in\n{after}");
    }
    assert!(after.contains("wabridge_delivery_attempt_duration_seconds_bucket"));
    // No secret ever appears.
    assert!(!after.contains("whsec_"));
}

/// A batch large enough to be validated on a blocking thread (off the async workers) gets the
/// same answers as a small one: every problem at its index, nothing stored; and once valid,
/// every event accepted, in order. A small batch with the same faults answers the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_batch_is_validated_off_the_async_workers_with_the_same_answers() {
    let app = spawn_app().await;
    let large: Vec<Value> = (0..1000)
        .map(|i| message("message.received", &format!("big{i}")))
        .collect();
    let faulty = |mut batch: Vec<Value>, at: &[usize]| {
        batch[at[0]]["data"]["from"] = json!(5);
        batch[at[1]]["event"] = json!("message.recieved");
        batch
    };
    let small: Vec<Value> = large[..4].to_vec();
    let mut answers = Vec::new();
    for (batch, at) in [(large.clone(), [17, 999]), (small, [1, 3])] {
        let n = batch.len();
        let res = app.ingest(&Value::Array(faulty(batch, &at))).await;
        let body = assert_problem(res, 400).await;
        let codes = error_codes(&body);
        let pointers: Vec<&str> = codes.iter().map(|(p, _)| p.as_str()).collect();
        assert!(
            pointers
                .iter()
                .all(|p| p.starts_with(&format!("/{}/", at[0]))
                    || p.starts_with(&format!("/{}/", at[1]))),
            "problems only where the faults are ({n} events): {pointers:?}"
        );
        assert!(
            pointers
                .iter()
                .any(|p| p.starts_with(&format!("/{}/", at[0])))
        );
        assert!(
            pointers
                .iter()
                .any(|p| p.starts_with(&format!("/{}/", at[1])))
        );
        // The same problems, relative to the faulty events.
        let relative: Vec<(String, String)> = codes
            .iter()
            .map(|(p, c)| {
                let rest = p.splitn(3, '/').nth(2).unwrap_or_default().to_owned();
                let which = if p.starts_with(&format!("/{}/", at[0])) {
                    0
                } else {
                    1
                };
                (format!("{which}/{rest}"), c.clone())
            })
            .collect();
        answers.push(relative);
    }
    assert_eq!(
        answers[0], answers[1],
        "a large batch is checked like a small one"
    );
    let ok = app.ingest_ok(&Value::Array(large)).await;
    let arr = ok.as_array().unwrap();
    assert_eq!(arr.len(), 1000);
    assert!(
        arr.iter().all(|o| o["duplicate"] == false),
        "nothing of the refused batch was stored"
    );
}
