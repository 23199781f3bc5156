//! Evolution API through `POST /v1/ingest/evolution`: every fixture reaches a real receiver with
//! a payload that validates against its catalog schema, retries collapse, the JWT is required
//! when configured, and the `apikey` credential is found in no delivery, row or log line.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use wabridge::adapters::evolution::sign_like_evolution;
use wabridge::catalog::Catalog;

use crate::helpers::*;
use crate::real_binary::{free_port, start_bridge_logging_to};

const JWT_KEY: &str = "evolution-jwt-key-for-tests-0123456789";
/// The `apikey` value in every fixture.
const APIKEY: &str = "7C4F2B1E-93A8-4D6A-B5E0-2F8C1D9A6E34";

fn fixtures() -> Vec<(String, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/evolution");
    let mut all: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            let body = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            (name, body)
        })
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

fn fixture(name: &str) -> Value {
    fixtures()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no fixture {name}"))
        .1
}

fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A token as Evolution mints it for one event.
fn token(key: &str, iat: i64) -> String {
    sign_like_evolution(
        &json!({"iat": iat, "exp": iat + 600, "app": "evolution", "action": "webhook"}),
        key.as_bytes(),
    )
}

async fn post(
    app: &TestApp,
    path: &str,
    auth: Option<(&str, String)>,
    body: &[u8],
) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url(path))
        .header("content-type", "application/json");
    if let Some((name, value)) = auth {
        req = req.header(name, value);
    }
    req.body(body.to_vec()).send().await.unwrap()
}

async fn post_jwt(app: &TestApp, body: &Value) -> reqwest::Response {
    let bearer = format!("Bearer {}", token(JWT_KEY, now_secs()));
    post(
        app,
        "/v1/ingest/evolution",
        Some(("authorization", bearer)),
        &serde_json::to_vec(body).unwrap(),
    )
    .await
}

async fn evolution_app() -> TestApp {
    let sources = wabridge::catalog::parse_specs("evolution").unwrap();
    spawn_app_with(|c| {
        c.sources = sources;
        c.evolution_jwt_key = Some(JWT_KEY.into());
    })
    .await
}

#[tokio::test]
async fn every_fixture_reaches_a_receiver_with_a_payload_that_validates() {
    let app = evolution_app().await;
    let rx = Receiver::start().await;
    app.register(&json!({"url": rx.url, "events": ["*"]})).await;
    let mut expected = 0;
    let mut keys = BTreeSet::new();
    for (name, body) in fixtures() {
        let res = post_jwt(&app, &body).await;
        let status = res.status().as_u16();
        let reply: Value = res.json().await.unwrap();
        match status {
            202 => {
                for e in reply["events"].as_array().unwrap() {
                    if !e["duplicate"].as_bool().unwrap() {
                        assert!(keys.insert(e["idempotencyKey"].as_str().unwrap().to_owned()));
                        expected += e["deliveries"].as_array().unwrap().len();
                    }
                }
            }
            200 => assert_eq!(reply["ignored"], true, "{name}: {reply}"),
            other => panic!("{name}: {other} {reply}"),
        }
    }
    // send.message and the upsert of the same message, and the two reports of one deletion,
    // are one delivery each.
    assert!(expected >= 30, "only {expected} deliveries");
    let got = rx.wait_for(expected, Duration::from_secs(20)).await;
    let catalog = Catalog::load("http://127.0.0.1").unwrap();
    let mut events = BTreeSet::new();
    for r in &got {
        let envelope = r.json();
        let event = envelope["event"].as_str().unwrap().to_owned();
        assert_eq!(envelope["sessionId"], "shop-main");
        let validator = catalog.validator(&event).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&envelope["data"])
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "{event}: {errors:?} in {}",
            envelope["data"]
        );
        assert!(!r.body.windows(APIKEY.len()).any(|w| w == APIKEY.as_bytes()));
        events.insert(event);
    }
    for event in [
        "message.received",
        "message.sent",
        "message.ack",
        "message.failed",
        "message.revoked",
        "message.reaction",
        "message.edited",
        "status.received",
        "session.status",
        "session.authenticated",
        "session.disconnected",
        "session.qr",
        "group.join",
        "group.leave",
        "group.update",
        "presence.update",
        "call.received",
        "call.accepted",
        "call.rejected",
        "call.missed",
    ] {
        assert!(events.contains(event), "no {event} delivered");
    }
    rx.assert_stays_at(expected, Duration::from_millis(300))
        .await;

    // Not in any stored row either.
    let stored = stored_bytes(&app.db_path);
    assert!(
        !stored.windows(APIKEY.len()).any(|w| w == APIKEY.as_bytes()),
        "the apikey is in the database"
    );
}

#[tokio::test]
async fn a_retried_body_is_one_delivery_and_a_new_emit_is_another() {
    let app = evolution_app().await;
    let rx = Receiver::start().await;
    app.register(&json!({"url": rx.url, "events": ["message.reaction", "session.*"]}))
        .await;
    for name in ["messages.upsert-reaction", "connection.update-open"] {
        let body = fixture(name);
        let first: Value = post_jwt(&app, &body).await.json().await.unwrap();
        let again = post_jwt(&app, &body).await;
        assert_eq!(again.status(), 202);
        let again: Value = again.json().await.unwrap();
        assert_eq!(again["duplicate"], true, "{name}: {again}");
        assert_eq!(again["idempotencyKey"], first["idempotencyKey"]);
    }
    // reaction 1 + open (status + authenticated) 2
    rx.wait_for(3, Duration::from_secs(10)).await;
    rx.assert_stays_at(3, Duration::from_millis(300)).await;
    // The same content emitted again (another date_time) is another occurrence. (Its
    // session.status `ready` is unchanged, which the status rule does not deliver again.)
    let mut later = fixture("connection.update-open");
    later["date_time"] = json!("2026-11-28T09:00:00.000Z");
    let res: Value = post_jwt(&app, &later).await.json().await.unwrap();
    let events = res["events"].as_array().unwrap();
    assert_eq!(events[1]["event"], "session.authenticated");
    assert_eq!(events[1]["duplicate"], false, "{res}");
    rx.wait_for(4, Duration::from_secs(10)).await;
}

#[tokio::test]
async fn the_jwt_is_required_and_checked_before_the_body() {
    let app = evolution_app().await;
    let body = serde_json::to_vec(&fixture("messages.upsert-text-conversation")).unwrap();
    let path = "/v1/ingest/evolution";
    let now = now_secs();
    for auth in [
        None,
        Some((
            "authorization",
            format!("Bearer {}", token("another-key", now)),
        )),
        Some((
            "authorization",
            format!("Bearer {}", token(JWT_KEY, now - 3600)),
        )),
        Some(("authorization", "Bearer not.a.jwt".to_owned())),
        Some(("x-api-key", INGEST_KEY.to_owned())),
    ] {
        let res = post(&app, path, auth.clone(), &body).await;
        assert_eq!(res.status(), 401, "{auth:?}");
    }
    // Refused before the body is parsed: not JSON, still 401.
    let res = post(&app, path, None, b"{not json").await;
    assert_eq!(res.status(), 401);
    // A valid token; the byEvents URL takes the same delivery.
    let bearer = format!("Bearer {}", token(JWT_KEY, now));
    let res = post(&app, path, Some(("authorization", bearer.clone())), &body).await;
    assert_eq!(res.status(), 202);
    let res = post(
        &app,
        "/v1/ingest/evolution/messages-upsert",
        Some(("authorization", bearer.clone())),
        &body,
    )
    .await;
    assert_eq!(res.status(), 202);
    let res: Value = res.json().await.unwrap();
    assert_eq!(res["duplicate"], true);
    // A body that is not an Evolution delivery: 400, nothing stored.
    for bad in [
        json!([]),
        json!("x"),
        json!({}),
        json!({"event": "call", "instance": "s"}),
    ] {
        let res = post(
            &app,
            path,
            Some(("authorization", bearer.clone())),
            &serde_json::to_vec(&bad).unwrap(),
        )
        .await;
        let problem = assert_problem(res, 400).await;
        assert!(!problem.to_string().contains(APIKEY));
    }
}

#[tokio::test]
async fn without_a_jwt_key_the_ingest_key_is_required() {
    let sources = wabridge::catalog::parse_specs("evolution").unwrap();
    let app = spawn_app_with(|c| c.sources = sources).await;
    let body = serde_json::to_vec(&fixture("qrcode.updated")).unwrap();
    let path = "/v1/ingest/evolution";
    assert_eq!(post(&app, path, None, &body).await.status(), 401);
    let wrong = Some(("x-api-key", "not-the-ingest-key".to_owned()));
    assert_eq!(post(&app, path, wrong, &body).await.status(), 401);
    let jwt = Some((
        "authorization",
        format!("Bearer {}", token(JWT_KEY, now_secs())),
    ));
    assert_eq!(post(&app, path, jwt, &body).await.status(), 401);
    let key = Some(("x-api-key", INGEST_KEY.to_owned()));
    assert_eq!(post(&app, path, key, &body).await.status(), 202);
}

/// The real binary at debug level: neither the `apikey`, nor the JWT key, nor a token appears
/// in a log line, and the `apikey` is not in the database file.
#[tokio::test]
async fn the_apikey_is_in_no_log_line_at_debug_level() {
    init_crypto();
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("wabridge.log");
    let db_path = dir.path().join("evolution.db");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let env = [
        ("WABRIDGE_SOURCES", "evolution"),
        ("WABRIDGE_EVOLUTION_JWT_KEY", JWT_KEY),
        ("WABRIDGE_RETRY_SCHEDULE", "0,100ms"),
        ("RUST_LOG", "debug"),
    ];
    let mut child = start_bridge_logging_to(&db_path, port, &env, &log_path).await;
    let client = reqwest::Client::new();
    let rx = Receiver::start().await;
    let res = client
        .post(format!("{base}/v1/webhooks"))
        .header("X-API-Key", ADMIN_KEY)
        .json(&json!({"url": rx.url, "events": ["*"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let jwt = token(JWT_KEY, now_secs());
    let mut sent = 0;
    for (_, body) in fixtures() {
        let res = client
            .post(format!("{base}/v1/ingest/evolution"))
            .header("authorization", format!("Bearer {jwt}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success());
        sent += 1;
    }
    // Refusals are logged too: a bad body, a wrong token.
    let bad = json!({"event": "messages.upsert", "instance": "shop-main", "apikey": APIKEY,
        "data": {"key": {"remoteJid": APIKEY}}});
    let res = client
        .post(format!("{base}/v1/ingest/evolution"))
        .header("authorization", format!("Bearer {jwt}"))
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = client
        .post(format!("{base}/v1/ingest/evolution"))
        .header(
            "authorization",
            format!("Bearer {}", token("wrong-key-never-logged", now_secs())),
        )
        .json(&fixture("call-offer"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(sent > 40);
    rx.wait_for(20, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = child.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    child.wait().await.unwrap();

    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(logs.lines().count() > 20, "expected debug logs");
    assert!(logs.contains("evolution"), "the ingests were logged");
    for needle in [APIKEY, JWT_KEY, jwt.as_str(), "wrong-key-never-logged"] {
        assert!(!logs.contains(needle), "a log line contains {needle:?}");
    }
    for r in rx.received() {
        assert!(!String::from_utf8_lossy(&r.body).contains(APIKEY));
    }
    assert_not_stored(&db_path);
}

fn assert_not_stored(db_path: &Path) {
    let stored = stored_bytes(db_path);
    assert!(
        !stored.windows(APIKEY.len()).any(|w| w == APIKEY.as_bytes()),
        "the apikey is in the database"
    );
}
