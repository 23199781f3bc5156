//! Delivery through a real receiver: shape, headers, signatures checked by the official
//! Standard Webhooks library, fan-out, retries, dead letters, redrive, test deliveries,
//! isolation, rate limits and the network policy at delivery time.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn each_session_event_arrives_signed_and_verifiable_by_the_official_library() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let w = app
        .register(&json!({"url": rx.url, "events": ["session.*"], "headers": {"X-Custom": "kept"}}))
        .await;
    let secret = w["secret"].as_str().unwrap().to_owned();
    let events = [
        "session.qr",
        "session.authenticated",
        "session.disconnected",
        "session.status",
    ];
    for e in events {
        app.ingest_ok(&session_event(e, "s1")).await;
    }
    let got = rx.wait_for(4, WAIT).await;
    let mut seen: Vec<String> = Vec::new();
    for r in &got {
        verify_officially(&secret, r);
        let body = r.json();
        let event = body["event"].as_str().unwrap().to_owned();
        assert_eq!(r.path, "/hook");
        assert_eq!(r.header("content-type"), "application/json");
        assert!(r.header("user-agent").starts_with("wabridge/"));
        assert_eq!(r.header("x-custom"), "kept");
        assert_eq!(r.header("x-openwa-event"), event);
        assert_eq!(r.header("webhook-id"), body["idempotencyKey"]);
        assert_eq!(r.header("x-openwa-idempotency-key"), body["idempotencyKey"]);
        assert_eq!(r.header("x-openwa-delivery-id"), body["deliveryId"]);
        assert_eq!(r.header("x-openwa-retry-count"), "0");
        assert!(!r.header("webhook-id").contains('.'));
        assert!(body["deliveryId"].as_str().unwrap().starts_with("dlv_"));
        assert_eq!(body["sessionId"], "s1");
        assert_eq!(body["data"]["sessionId"], "s1");
        assert!(body["timestamp"].as_str().unwrap().contains('T'));
        let ts: i64 = r.header("webhook-timestamp").parse().unwrap();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        assert!(
            (now - ts).abs() < 60,
            "webhook-timestamp is the attempt time"
        );
        let keys: Vec<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "event",
                "sessionId",
                "timestamp",
                "idempotencyKey",
                "deliveryId",
                "data"
            ]
        );
        seen.push(event);
    }
    seen.sort();
    let mut want: Vec<String> = events.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(seen, want);
}

#[tokio::test]
async fn a_tampered_body_fails_the_official_verifier() {
    // Guards the guard: the verifier really rejects a changed body.
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let w = app
        .register(&json!({"url": rx.url, "events": ["session.status"]}))
        .await;
    app.ingest_ok(&session_event("session.status", "s1")).await;
    let mut r = rx.wait_for(1, WAIT).await.remove(0);
    r.body = axum::body::Bytes::from(
        String::from_utf8(r.body.to_vec())
            .unwrap()
            .replace("ready", "failed"),
    );
    let secret = w["secret"].as_str().unwrap().to_owned();
    let verdict = official_verdict(&secret, &r);
    assert!(
        verdict
            .as_ref()
            .is_err_and(|why| why.contains("verification failed")),
        "a tampered body must not verify: {verdict:?}"
    );
}

#[tokio::test]
async fn a_plain_openwa_style_secret_signs_with_its_utf8_bytes() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let secret = "my-openwa-secret-1234";
    app.register(&json!({"url": rx.url, "events": ["*"], "secret": secret}))
        .await;
    app.ingest_ok(&session_event("session.qr", "s9")).await;
    let r = rx.wait_for(1, WAIT).await.remove(0);
    verify_officially(secret, &r);
}

#[tokio::test]
async fn repeated_identical_lifecycle_occurrences_arrive_with_distinct_keys() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    app.register(
        &json!({"url": rx.url, "events": ["session.authenticated", "session.disconnected"]}),
    )
    .await;
    for _ in 0..2 {
        let a = app
            .ingest_ok(&session_event("session.authenticated", "s1"))
            .await;
        assert_eq!(a["duplicate"], false);
        let d = app
            .ingest_ok(&session_event("session.disconnected", "s1"))
            .await;
        assert_eq!(d["duplicate"], false);
    }
    let got = rx.wait_for(4, WAIT).await;
    let mut keys: Vec<String> = got
        .iter()
        .map(|r| r.header("webhook-id").to_owned())
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 4, "every occurrence has its own key");
}

#[tokio::test]
async fn a_retried_delivery_keeps_its_key_and_counts_retries() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    rx.script([Reply::status(500), Reply::status(503)]);
    let w = app
        .register(&json!({"url": rx.url, "events": ["session.status"]}))
        .await;
    let out = app.ingest_ok(&session_event("session.status", "s1")).await;
    let got = rx.wait_for(3, WAIT).await;
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.header("webhook-id"), out["idempotencyKey"]);
        assert_eq!(r.json()["idempotencyKey"], out["idempotencyKey"]);
        assert_eq!(r.json()["deliveryId"], got[0].json()["deliveryId"]);
        assert_eq!(r.header("x-openwa-retry-count"), i.to_string());
        verify_officially(w["secret"].as_str().unwrap(), r);
    }
    // The attempt log tells the story.
    let id = w["id"].as_str().unwrap();
    let log = first_delivery_in(&app, id, "delivered").await;
    let d = &log["data"][0];
    assert_eq!(d["attempts"], 3);
    let codes: Vec<Value> = d["attemptLog"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["statusCode"].clone())
        .collect();
    assert_eq!(codes, vec![json!(500), json!(503), json!(204)]);
    rx.assert_stays_at(3, Duration::from_millis(400)).await;
}

/// Polls the deliveries of registration `id` until the first is in `state`; the listing.
async fn first_delivery_in(app: &TestApp, id: &str, state: &str) -> Value {
    eventually(|| async {
        let v: Value = app
            .get(&format!("/v1/webhooks/{id}/deliveries"))
            .await
            .json()
            .await
            .unwrap();
        (v["data"][0]["state"] == state).then_some(v)
    })
    .await
}

/// Polls `f` until it yields a value (10 s at most).
pub async fn eventually<T, F, Fut>(mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "condition not met in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn exhausted_deliveries_are_dead_lettered_and_redrive_keeps_the_key() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    rx.set_default(Reply::status(500));
    let w = app
        .register(&json!({"url": rx.url, "events": ["session.qr"]}))
        .await;
    let id = w["id"].as_str().unwrap().to_owned();
    let out = app.ingest_ok(&session_event("session.qr", "s1")).await;
    // Schedule "0,100ms,200ms": three attempts, then dead.
    rx.wait_for(3, WAIT).await;
    let list = first_delivery_in(&app, &id, "dead").await;
    let d = &list["data"][0];
    assert_eq!(d["attempts"], 3);
    assert_eq!(d["lastStatus"], 500);
    assert_eq!(d["lastError"], "HTTP 500");
    rx.assert_stays_at(3, Duration::from_millis(500)).await;

    // The subscriber recovers; redrive all dead deliveries.
    rx.set_default(Reply::status(200));
    let res = app
        .post(&format!("/v1/webhooks/{id}/redrive"), &json!({}))
        .await;
    assert_eq!(res.status(), 202);
    assert_eq!(res.json::<Value>().await.unwrap()["redriven"], 1);
    let got = rx.wait_for(4, WAIT).await;
    assert_eq!(got[3].header("webhook-id"), out["idempotencyKey"]);
    assert_eq!(got[3].header("x-openwa-retry-count"), "3");
    let one = first_delivery_in(&app, &id, "delivered").await;
    assert_eq!(one["data"][0]["attempts"], 4);
}

/// A retry the engine scheduled itself goes out when it falls due, not at the engine's next
/// look at the store (once a second when idle). Without the engine keeping its own retry times,
/// the read of the store right after the failed attempt still sees the attempt's lease, and the
/// retry waits for that look: about a second here instead of 200 ms (± 20% jitter).
#[tokio::test]
async fn a_retry_goes_out_when_it_falls_due() {
    let app = spawn_app_with(|c| c.retry_schedule = "0,200ms".parse().unwrap()).await;
    let rx = Receiver::start().await;
    rx.script([Reply::status(500)]);
    app.register(&json!({"url": rx.url, "events": ["session.qr"]}))
        .await;
    app.ingest_ok(&session_event("session.qr", "a")).await;
    let got = rx.wait_for(2, WAIT).await;
    assert_eq!(got[0].status, 500);
    assert_eq!(got[1].header("x-openwa-retry-count"), "1");
    let gap = got[1].at.duration_since(got[0].at);
    assert!(
        gap >= Duration::from_millis(150) && gap < Duration::from_millis(750),
        "the retry went out {gap:?} after the failed attempt; it was due after 160-240 ms"
    );
}

#[tokio::test]
async fn redrive_of_one_delivery() {
    let app = spawn_app_with(|c| c.retry_schedule = "0".parse().unwrap()).await;
    let rx = Receiver::start().await;
    rx.script([Reply::status(500), Reply::status(500)]);
    let w = app
        .register(&json!({"url": rx.url, "events": ["session.qr"]}))
        .await;
    let id = w["id"].as_str().unwrap().to_owned();
    app.ingest_ok(&session_event("session.qr", "a")).await;
    app.ingest_ok(&session_event("session.qr", "b")).await;
    rx.wait_for(2, WAIT).await;
    let list = eventually(|| async {
        let v: Value = app
            .get(&format!("/v1/webhooks/{id}/deliveries"))
            .await
            .json()
            .await
            .unwrap();
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["state"] == "dead")
            .then_some(v)
    })
    .await;
    let first = list["data"][0]["id"].as_str().unwrap().to_owned();
    let res = app
        .post(
            &format!("/v1/webhooks/{id}/deliveries/{first}/redrive"),
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), 202);
    let got = rx.wait_for(3, WAIT).await;
    assert_eq!(got[2].json()["deliveryId"], first);
    rx.assert_stays_at(3, Duration::from_millis(400)).await;
    // Redriving a delivery that is not dead is refused; an unknown one is 404.
    let again = eventually(|| async {
        let res = app
            .post(
                &format!("/v1/webhooks/{id}/deliveries/{first}/redrive"),
                &json!({}),
            )
            .await;
        (res.status() == 400).then_some(res)
    })
    .await;
    assert_eq!(again.headers()["content-type"], "application/problem+json");
    let missing = app
        .post(
            &format!("/v1/webhooks/{id}/deliveries/dlv_nope/redrive"),
            &json!({}),
        )
        .await;
    assert_eq!(missing.status(), 404);
    // Text that is not an id of its kind names no delivery: the same 404, with the text as given,
    // on every route that takes a delivery id.
    for (webhook, delivery) in [
        (id.as_str(), "dlv_nope"),
        (id.as_str(), "not-an-id"),
        ("wh_nope", first.as_str()),
        ("wh_nope", "dlv_nope"),
    ] {
        let detail = format!("no delivery '{delivery}' for registration '{webhook}'");
        let base = format!("/v1/webhooks/{webhook}/deliveries/{delivery}");
        for res in [
            app.get(&base).await,
            app.get(&format!("{base}/envelope")).await,
            app.post(&format!("{base}/redrive"), &json!({})).await,
        ] {
            let p = assert_problem(res, 404).await;
            assert_eq!(p["detail"], detail.as_str());
        }
    }
}

#[tokio::test]
async fn gone_deactivates_the_registration_and_stops_retries() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    rx.set_default(Reply::status(410));
    let w = app
        .register(&json!({"url": rx.url, "events": ["session.status"]}))
        .await;
    let id = w["id"].as_str().unwrap().to_owned();
    app.ingest_ok(&session_event("session.status", "s1")).await;
    rx.wait_for(1, WAIT).await;
    let reg = eventually(|| async {
        let v: Value = app
            .get(&format!("/v1/webhooks/{id}"))
            .await
            .json()
            .await
            .unwrap();
        (v["active"] == false).then_some(v)
    })
    .await;
    assert!(reg["disabledReason"].as_str().unwrap().contains("410"));
    // Further events do not reach a deactivated registration.
    let mut ev = session_event("session.status", "s1");
    ev["data"]["status"] = json!("disconnected");
    let out = app.ingest_ok(&ev).await;
    assert_eq!(out["deliveries"], json!([]));
    rx.assert_stays_at(1, Duration::from_millis(500)).await;
}

#[tokio::test]
async fn retry_after_is_honoured_on_429() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    rx.script([Reply::status(429).header("retry-after", "1")]);
    app.register(&json!({"url": rx.url, "events": ["session.qr"]}))
        .await;
    app.ingest_ok(&session_event("session.qr", "s1")).await;
    let got = rx.wait_for(2, WAIT).await;
    let gap = got[1].at - got[0].at;
    // The schedule alone would retry after ~100 ms.
    assert!(gap >= Duration::from_millis(900), "retried after {gap:?}");
}

#[tokio::test]
async fn redirects_are_failures_and_not_followed() {
    let app = spawn_app_with(|c| c.retry_schedule = "0".parse().unwrap()).await;
    let rx = Receiver::start().await;
    let other = Receiver::start().await;
    rx.set_default(Reply::status(302).header("location", &other.url));
    let w = app
        .register(&json!({"url": rx.url, "events": ["session.qr"]}))
        .await;
    app.ingest_ok(&session_event("session.qr", "s1")).await;
    rx.wait_for(1, WAIT).await;
    let id = w["id"].as_str().unwrap();
    let list = first_delivery_in(&app, id, "dead").await;
    assert_eq!(list["data"][0]["lastStatus"], 302);
    other.assert_stays_at(0, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_slow_attempt_times_out_and_is_retried() {
    let app = spawn_app_with(|c| c.attempt_timeout = Duration::from_millis(300)).await;
    let rx = Receiver::start().await;
    rx.script([Reply::status(200).delay(Duration::from_secs(2))]);
    let w = app
        .register(&json!({"url": rx.url, "events": ["session.qr"]}))
        .await;
    app.ingest_ok(&session_event("session.qr", "s1")).await;
    let id = w["id"].as_str().unwrap();
    let v = first_delivery_in(&app, id, "delivered").await;
    let log = v["data"][0]["attemptLog"].as_array().unwrap().clone();
    assert!(
        log[0]["error"].as_str().unwrap().contains("timed out"),
        "{log:?}"
    );
    assert_eq!(log.last().unwrap()["statusCode"], 204);
}

#[tokio::test]
async fn fan_out_follows_patterns_sessions_and_activity() {
    let app = spawn_app().await;
    let exact = Receiver::start().await;
    let family = Receiver::start().await;
    let all = Receiver::start().await;
    let scoped = Receiver::start().await;
    let other_session = Receiver::start().await;
    let inactive = Receiver::start().await;
    let messages = Receiver::start().await;
    app.register(&json!({"url": exact.url, "events": ["session.qr"]}))
        .await;
    app.register(&json!({"url": family.url, "events": ["session.*"]}))
        .await;
    app.register(&json!({"url": all.url, "events": ["*"]}))
        .await;
    app.register(&json!({"url": scoped.url, "events": ["*"], "sessionId": "s1"}))
        .await;
    app.register(&json!({"url": other_session.url, "events": ["*"], "sessionId": "s2"}))
        .await;
    app.register(&json!({"url": inactive.url, "events": ["*"], "active": false}))
        .await;
    app.register(&json!({"url": messages.url, "events": ["message.*"]}))
        .await;
    let out = app.ingest_ok(&session_event("session.qr", "s1")).await;
    assert_eq!(out["deliveries"].as_array().unwrap().len(), 4);
    for rx in [&exact, &family, &all, &scoped] {
        rx.wait_for(1, WAIT).await;
    }
    for rx in [&other_session, &inactive, &messages] {
        rx.assert_stays_at(0, Duration::from_millis(200)).await;
    }
    // One event to each of several registrations carries one key but distinct delivery ids.
    let keys: Vec<String> = [&exact, &family, &all, &scoped]
        .iter()
        .map(|r| r.received()[0].header("webhook-id").to_owned())
        .collect();
    assert!(keys.iter().all(|k| *k == keys[0]));
}

/// One batch whose events share some fan-out keys (event name and session) and not others:
/// each event reaches exactly the registrations its own name and session match.
#[tokio::test]
async fn a_batch_fans_out_each_event_by_its_own_name_and_session() {
    let app = spawn_app().await;
    let qr_s1 = Receiver::start().await;
    let messages = Receiver::start().await;
    let all_s2 = Receiver::start().await;
    app.register(&json!({"url": qr_s1.url, "events": ["session.qr"], "sessionId": "s1"}))
        .await;
    app.register(&json!({"url": messages.url, "events": ["message.*"]}))
        .await;
    app.register(&json!({"url": all_s2.url, "events": ["*"], "sessionId": "s2"}))
        .await;
    let qr = |session: &str, code: &str| json!({"event": "session.qr", "sessionId": session, "data": {"sessionId": session, "qr": code}});
    let message = |session: &str, id: &str| {
        json!({"event": "message.received", "sessionId": session, "data": {
            "id": id, "from": "a@c.us", "to": "b@c.us", "chatId": "a@c.us", "body": "hi",
            "type": "text", "timestamp": 1_764_320_000, "fromMe": false, "isGroup": false
        }})
    };
    let batch = json!([
        qr("s1", "qr-1"),
        message("s2", "m1"),
        qr("s1", "qr-2"),
        message("s1", "m2"),
        qr("s2", "qr-3"),
    ]);
    let out = app.ingest_ok(&batch).await;
    let counts: Vec<usize> = out
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["deliveries"].as_array().unwrap().len())
        .collect();
    assert_eq!(counts, [1, 2, 1, 1, 1]);
    let sorted = |rx: &Receiver| {
        let mut got: Vec<(String, String)> = rx
            .received()
            .iter()
            .map(|r| {
                let body = r.json();
                (
                    body["sessionId"].as_str().unwrap().to_owned(),
                    body["event"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        got.sort();
        got
    };
    qr_s1.wait_for(2, WAIT).await;
    messages.wait_for(2, WAIT).await;
    all_s2.wait_for(2, WAIT).await;
    for rx in [&qr_s1, &messages, &all_s2] {
        rx.assert_stays_at(2, Duration::from_millis(200)).await;
    }
    let pair = |s: &str, e: &str| (s.to_owned(), e.to_owned());
    assert_eq!(
        sorted(&qr_s1),
        [pair("s1", "session.qr"), pair("s1", "session.qr")]
    );
    assert_eq!(
        sorted(&messages),
        [
            pair("s1", "message.received"),
            pair("s2", "message.received")
        ]
    );
    assert_eq!(
        sorted(&all_s2),
        [pair("s2", "message.received"), pair("s2", "session.qr")]
    );
}

#[tokio::test]
async fn a_slow_subscriber_does_not_delay_the_others() {
    let app = spawn_app_with(|c| {
        c.per_webhook_in_flight = 2;
        c.attempt_timeout = Duration::from_secs(10);
    })
    .await;
    let slow = Receiver::start().await;
    slow.set_default(Reply::status(200).delay(Duration::from_secs(3)));
    let fast = Receiver::start().await;
    app.register(&json!({"url": slow.url, "events": ["message.*"]}))
        .await;
    app.register(&json!({"url": fast.url, "events": ["message.*"]}))
        .await;
    let batch: Vec<Value> = (0..20)
        .map(|i| {
            json!({"event": "message.received", "sessionId": "s1", "data": {
                "id": format!("m{i}"), "from": "a@c.us", "to": "b@c.us", "chatId": "a@c.us",
                "body": "hi", "type": "text", "timestamp": 1_764_320_000, "fromMe": false, "isGroup": false
            }})
        })
        .collect();
    let started = std::time::Instant::now();
    app.ingest_ok(&Value::Array(batch)).await;
    fast.wait_for(20, WAIT).await;
    // The slow one (3 s per request, 2 at a time) is nowhere near done: isolation holds.
    assert!(
        (1..=2).contains(&slow.arrived()),
        "{} arrived",
        slow.arrived()
    );
    assert!(slow.received().is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "fast subscriber waited on the slow one"
    );
}

#[tokio::test]
async fn a_rate_limit_spreads_deliveries() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    app.register(&json!({"url": rx.url, "events": ["session.qr"], "rateLimit": 5}))
        .await;
    let batch: Vec<Value> = (0..6)
        .map(|i| {
            json!({"event": "session.qr", "sessionId": "s1", "data": {"sessionId": "s1", "qr": format!("qr-{i}")}})
        })
        .collect();
    app.ingest_ok(&Value::Array(batch)).await;
    let got = rx.wait_for(6, WAIT).await;
    // 5 per second: six deliveries need at least a second.
    let span = got[5].at - got[0].at;
    assert!(
        span >= Duration::from_millis(900),
        "6 deliveries in {span:?}"
    );
}

#[tokio::test]
async fn a_test_delivery_shows_the_exact_shape() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let w = app
        .register(&json!({"url": rx.url, "events": ["session.disconnected", "message.*"]}))
        .await;
    let id = w["id"].as_str().unwrap();
    let res = app
        .post(
            &format!("/v1/webhooks/{id}/test"),
            &json!({"event": "session.disconnected"}),
        )
        .await;
    assert_eq!(res.status(), 202);
    let out: Value = res.json().await.unwrap();
    let r = rx.wait_for(1, WAIT).await.remove(0);
    verify_officially(w["secret"].as_str().unwrap(), &r);
    let body = r.json();
    assert_eq!(body["test"], true);
    assert_eq!(body["event"], "session.disconnected");
    assert_eq!(body["deliveryId"], out["deliveryId"]);
    assert!(body["data"]["reason"].is_string());
    assert_eq!(r.header("x-wabridge-test"), "true");
    // Without an event, the first subscribed one; an unsubscribed one is refused.
    let res = app
        .post(&format!("/v1/webhooks/{id}/test"), &json!({}))
        .await;
    assert_eq!(res.status(), 202);
    let res = app
        .post(
            &format!("/v1/webhooks/{id}/test"),
            &json!({"event": "session.qr"}),
        )
        .await;
    assert_eq!(res.status(), 400);
    let res = app.post("/v1/webhooks/wh_nope/test", &json!({})).await;
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn the_network_policy_is_checked_again_at_delivery() {
    // Registered while loopback was allowed; the operator then closes it.
    let mut app = spawn_app().await;
    let rx = Receiver::start().await;
    let w = app
        .register(&json!({"url": rx.url, "events": ["session.qr"]}))
        .await;
    let id = w["id"].as_str().unwrap().to_owned();
    app.stop().await;
    let db = app.db_path.clone();
    let app2 = spawn_app_on(&db, |c| {
        c.allow_targets = Default::default();
        c.retry_schedule = "0".parse().unwrap();
    })
    .await;
    app2.ingest_ok(&session_event("session.qr", "s1")).await;
    let v = first_delivery_in(&app2, &id, "dead").await;
    let err = v["data"][0]["lastError"].as_str().unwrap();
    assert!(
        err.contains("network policy") || err.contains("loopback"),
        "{err}"
    );
    rx.assert_stays_at(0, Duration::from_millis(200)).await;

    // A host name that resolves to loopback is refused by the resolver as well.
    let res = app2
        .post(
            "/v1/webhooks",
            &json!({"url": format!("http://localhost:{}/hook", rx.addr.port()), "events": ["*"]}),
        )
        .await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "url_not_allowed");
}

#[tokio::test]
async fn shutdown_lets_in_flight_attempts_finish_and_records_them() {
    let mut app = spawn_app().await;
    let rx = Receiver::start().await;
    rx.set_default(Reply::status(200).delay(Duration::from_millis(800)));
    let w = app
        .register(&json!({"url": rx.url, "events": ["session.qr"]}))
        .await;
    app.ingest_ok(&session_event("session.qr", "s1")).await;
    // Let the attempt start, then stop while it is in flight.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(rx.received().is_empty());
    app.stop().await;
    assert_eq!(rx.received().len(), 1, "the in-flight attempt finished");
    // Its result was recorded: after a restart it is not sent again.
    let db = app.db_path.clone();
    let app2 = spawn_app_on(&db, |_| {}).await;
    let id = w["id"].as_str().unwrap();
    let v: Value = app2
        .get(&format!("/v1/webhooks/{id}/deliveries"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["data"][0]["state"], "delivered");
    rx.assert_stays_at(1, Duration::from_millis(1200)).await;
}
