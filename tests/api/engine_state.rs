//! What the engine holds in memory stays true to the store: deliveries whose lease another
//! claim took over are not sent, and registration changes (secret, URL, deactivation, deletion)
//! apply to deliveries already queued in memory before they are sent. A real server and a
//! real receiver that answers slowly, one lane per registration, so that deliveries are queued
//! behind the one in flight when the change happens.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wabridge::delivery::signer::verify_standard;
use wabridge::secret::standard_key_from_secret;

use crate::helpers::*;

const WAIT: Duration = Duration::from_secs(20);
/// Deliveries queued behind the one in flight.
const BACKLOG: usize = 8;
/// How long the receiver holds each request.
const SLOW: Duration = Duration::from_millis(400);

fn message(id: &str) -> Value {
    json!({"event": "message.received", "sessionId": "s1", "data": {
        "id": id, "from": "a@c.us", "to": "b@c.us", "chatId": "a@c.us", "body": "queued",
        "type": "text", "timestamp": 1_764_320_000, "fromMe": false, "isGroup": false
    }})
}

/// An app with one lane per registration, a slow receiver registered with `secret`, and
/// BACKLOG events ingested; returns once the first delivery is at the receiver (the others are
/// held by the engine, queued). Returns the registration and the idempotency keys of every
/// event.
async fn backlog(
    tweak: impl FnOnce(&mut wabridge::config::Config),
) -> (TestApp, Receiver, Value, Vec<String>) {
    let app = spawn_app_with(|c| {
        c.per_webhook_in_flight = 1;
        tweak(c);
    })
    .await;
    let rx = Receiver::start().await;
    rx.set_default(Reply::status(204).delay(SLOW));
    let w = app
        .register(&json!({"url": rx.url, "events": ["message.received"]}))
        .await;
    let mut keys = Vec::new();
    for i in 0..BACKLOG {
        let out = app.ingest_ok(&message(&format!("m{i}"))).await;
        keys.push(out["idempotencyKey"].as_str().unwrap().to_owned());
    }
    let deadline = Instant::now() + WAIT;
    while rx.arrived() == 0 {
        assert!(
            Instant::now() < deadline,
            "the first delivery never arrived"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (app, rx, w, keys)
}

fn key_of(r: &Received) -> String {
    r.json()["idempotencyKey"].as_str().unwrap().to_owned()
}

fn signed_with(secret: &str, r: &Received) -> bool {
    let ts: i64 = r.header("webhook-timestamp").parse().unwrap();
    verify_standard(
        &standard_key_from_secret(secret),
        r.header("webhook-id"),
        ts,
        &r.body,
        r.header("webhook-signature"),
        ts,
        5,
    )
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_signs_every_delivery_sent_after_the_rotation() {
    let new = "whsec_dGhpcyBpcyB0aGUgbmV3IHNlY3JldCBrZXkh";
    let (app, rx, w, keys) = backlog(|_| {}).await;
    let (id, old) = (w["id"].as_str().unwrap(), w["secret"].as_str().unwrap());
    let res = app
        .patch(&format!("/v1/webhooks/{id}"), &json!({"secret": new}))
        .await;
    assert_eq!(res.status(), 200);
    let before = rx.arrived();
    let got = rx.wait_for(BACKLOG, WAIT).await;
    let after: Vec<&Received> = got[before..].iter().collect();
    assert!(
        after.len() >= BACKLOG - 2,
        "most deliveries were still queued at the rotation ({} after it)",
        after.len()
    );
    for r in &after {
        assert!(
            signed_with(new, r),
            "a delivery sent after the rotation is signed with the new secret"
        );
        assert!(!signed_with(old, r));
    }
    verify_officially(new, after[after.len() - 1]);
    let seen: HashSet<String> = got.iter().map(key_of).collect();
    assert_eq!(seen, keys.iter().cloned().collect(), "every event, once");
    rx.assert_stays_at(BACKLOG, Duration::from_millis(500))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_url_takes_the_queued_deliveries_to_the_new_receiver() {
    let (app, rx, w, keys) = backlog(|_| {}).await;
    let id = w["id"].as_str().unwrap();
    let moved = Receiver::start().await;
    let res = app
        .patch(&format!("/v1/webhooks/{id}"), &json!({"url": moved.url}))
        .await;
    assert_eq!(res.status(), 200);
    let before = rx.arrived();
    assert!(before < BACKLOG - 2, "deliveries were queued at the change");
    let got = moved.wait_for(BACKLOG - before, WAIT).await;
    // Nothing more reaches the old receiver.
    tokio::time::sleep(SLOW * 2).await;
    assert_eq!(
        rx.arrived(),
        before,
        "no delivery went to the old URL after the change"
    );
    let mut seen: HashSet<String> = rx.wait_for(before, WAIT).await.iter().map(key_of).collect();
    seen.extend(got.iter().map(key_of));
    assert_eq!(
        seen,
        keys.iter().cloned().collect(),
        "every event, old URL or new"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deactivated_registration_gets_nothing_more_until_reactivated() {
    let (app, rx, w, keys) = backlog(|_| {}).await;
    let id = w["id"].as_str().unwrap();
    let res = app
        .patch(&format!("/v1/webhooks/{id}"), &json!({"active": false}))
        .await;
    assert_eq!(res.status(), 200);
    let before = rx.arrived();
    assert!(before < BACKLOG - 2, "deliveries were queued at the change");
    tokio::time::sleep(SLOW * 4).await;
    assert_eq!(
        rx.arrived(),
        before,
        "nothing is sent to an inactive registration"
    );
    // Not lost: handed back, pending, sent after reactivation.
    let res = app
        .patch(&format!("/v1/webhooks/{id}"), &json!({"active": true}))
        .await;
    assert_eq!(res.status(), 200);
    let got = rx.wait_for(BACKLOG, WAIT).await;
    let seen: HashSet<String> = got.iter().map(key_of).collect();
    assert_eq!(seen, keys.iter().cloned().collect());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_registration_gets_nothing_more() {
    let (app, rx, w, _) = backlog(|_| {}).await;
    let id = w["id"].as_str().unwrap();
    let res = app.delete(&format!("/v1/webhooks/{id}")).await;
    assert_eq!(res.status(), 204);
    let before = rx.arrived();
    assert!(
        before < BACKLOG - 2,
        "deliveries were queued at the deletion"
    );
    tokio::time::sleep(SLOW * 4).await;
    assert_eq!(
        rx.arrived(),
        before,
        "nothing is sent for a deleted registration"
    );
}

/// Another claim takes over the leases this engine holds (as an instance would after this one
/// stalled longer than its lease): at its next renewal the engine learns it lost them and does
/// not send the queued deliveries; the one in flight finishes, its result fenced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_deliveries_whose_lease_was_taken_over_are_not_sent() {
    let (app, rx, _, _) = backlog(|c| c.lease = Some(Duration::from_millis(900))).await;
    let lost_before = counter(&app, "wabridge_leases_lost_total").await;
    let other = wabridge::store::connect(&database_url(&app.db_path))
        .await
        .unwrap();
    let later = wabridge::clock::now_ms() + 3_600_000;
    let taken = other
        .claim_due(later, 3_600_000, 100, 100, &[])
        .await
        .unwrap();
    assert_eq!(taken.len(), BACKLOG, "every lease, taken over");
    let arrived = rx.arrived();
    assert!(arrived <= 2, "deliveries were queued at the takeover");
    // Renewal runs every 300 ms; the one in flight takes SLOW.
    tokio::time::sleep(SLOW * 4).await;
    assert_eq!(
        rx.arrived(),
        arrived,
        "no queued delivery is sent after its lease was lost"
    );
    let lost = counter(&app, "wabridge_leases_lost_total").await - lost_before;
    assert!(lost >= 1.0, "the dropped deliveries are counted ({lost})");
}

/// The value of an unlabelled counter in `/metrics` (0 before its first increment).
async fn counter(app: &TestApp, name: &str) -> f64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}
