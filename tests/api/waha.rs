//! WAHA through `POST /v1/ingest/waha`: every fixture reaches a real receiver with a payload
//! that validates against its catalog schema, the HMAC is required when configured (and checked
//! before the body is parsed), WAHA's redeliveries collapse, and SCAN_QR_CODE gives session.qr
//! with the QR fetched from a local stand-in for WAHA's API.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha512;
use wabridge::catalog::Catalog;

use crate::helpers::*;

const HMAC_KEY: &str = "waha-hmac-key-for-tests-0123456789";
const WAHA_API_KEY: &str = "waha-api-key-for-tests-9876543210";
/// The QR image the stand-in serves (base64 of a tiny PNG header is enough here).
const QR_PNG_BASE64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAcCBlCwAAAABJRU5ErkJggg==";

fn fixtures() -> Vec<(String, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/waha");
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

/// What WAHA puts in `X-Webhook-Hmac`.
fn hmac_of(key: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha512>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

async fn post_raw(app: &TestApp, headers: &[(&str, String)], body: &[u8]) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url("/v1/ingest/waha"))
        .header("content-type", "application/json");
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    req.body(body.to_vec()).send().await.unwrap()
}

/// Posts as WAHA does with an HMAC key: the body signed, with the algorithm header.
async fn post_signed(app: &TestApp, body: &Value) -> reqwest::Response {
    let bytes = serde_json::to_vec(body).unwrap();
    let sig = hmac_of(HMAC_KEY, &bytes);
    post_raw(
        app,
        &[
            ("x-webhook-hmac", sig),
            ("x-webhook-hmac-algorithm", "sha512".into()),
            ("x-webhook-request-id", "req-1".into()),
        ],
        &bytes,
    )
    .await
}

/// A stand-in for WAHA's `GET /api/{session}/auth/qr`: answers JSON when asked with the API key,
/// and records the paths and headers it was asked with.
#[derive(Clone, Default)]
struct QrStandIn {
    asked: Arc<Mutex<Vec<(String, HeaderMap)>>>,
}

impl QrStandIn {
    async fn start(&self) -> String {
        let asked = Arc::clone(&self.asked);
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri, headers: HeaderMap| {
            let asked = Arc::clone(&asked);
            async move {
                let ok = headers.get("x-api-key").and_then(|v| v.to_str().ok())
                    == Some(WAHA_API_KEY)
                    && headers.get("accept").and_then(|v| v.to_str().ok())
                        == Some("application/json");
                asked.lock().unwrap().push((uri.path().to_owned(), headers));
                if ok && uri.path().ends_with("/auth/qr") {
                    axum::response::IntoResponse::into_response(axum::Json(
                        json!({"mimetype": "image/png", "data": QR_PNG_BASE64}),
                    ))
                } else {
                    axum::response::IntoResponse::into_response(
                        axum::http::StatusCode::UNAUTHORIZED,
                    )
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        format!("http://{addr}")
    }

    fn asked(&self) -> Vec<(String, HeaderMap)> {
        self.asked.lock().unwrap().clone()
    }
}

async fn waha_app(qr_url: Option<String>) -> TestApp {
    let sources = wabridge::catalog::parse_specs("waha").unwrap();
    spawn_app_with(|c| {
        c.sources = sources;
        c.waha_hmac_key = Some(HMAC_KEY.into());
        if let Some(url) = qr_url {
            c.waha_url = Some(url);
            c.waha_api_key = Some(WAHA_API_KEY.into());
        }
    })
    .await
}

#[tokio::test]
async fn every_fixture_reaches_a_receiver_with_a_payload_that_validates() {
    let stand_in = QrStandIn::default();
    let app = waha_app(Some(stand_in.start().await)).await;
    let rx = Receiver::start().await;
    app.register(&json!({"url": rx.url, "events": ["*"]})).await;
    let mut expected = 0;
    let mut keys = BTreeSet::new();
    let mut duplicates = Vec::new();
    for (name, body) in fixtures() {
        let res = post_signed(&app, &body).await;
        let status = res.status().as_u16();
        let reply: Value = res.json().await.unwrap();
        match status {
            202 => {
                for e in reply["events"].as_array().unwrap() {
                    if e["duplicate"].as_bool().unwrap() {
                        duplicates.push(name.clone());
                    } else {
                        assert!(keys.insert(e["idempotencyKey"].as_str().unwrap().to_owned()));
                        expected += e["deliveries"].as_array().unwrap().len();
                    }
                }
            }
            200 => assert_eq!(reply["ignored"], true, "{name}: {reply}"),
            other => panic!("{name}: {other} {reply}"),
        }
    }
    // message and message.any of one incoming message: one delivery.
    assert_eq!(duplicates, ["message_text_private"]);
    assert!(expected >= 35, "only {expected} deliveries");
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
    ] {
        assert!(events.contains(event), "no {event} delivered");
    }
    rx.assert_stays_at(expected, Duration::from_millis(300))
        .await;

    // The unmapped events are on the operator's list, with WAHA as their source.
    let ignored: Value = app.get("/v1/ingest/ignored").await.json().await.unwrap();
    let text = ignored.to_string();
    for name in ["poll.vote", "label.upsert", "group.join"] {
        assert!(text.contains(name), "{name} not listed: {text}");
    }
}

#[tokio::test]
async fn the_hmac_is_required_and_checked_before_the_body_is_parsed() {
    let app = waha_app(None).await;
    let body = serde_json::to_vec(&fixture("message_text_private")).unwrap();
    let good = hmac_of(HMAC_KEY, &body);
    let wrong = hmac_of("another-key-entirely-0123456789", &body);

    assert_eq!(post_raw(&app, &[], &body).await.status(), 401);
    let res = post_raw(&app, &[("x-webhook-hmac", wrong)], &body).await;
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    // The ingest key does not replace the HMAC once one is configured.
    let res = post_raw(&app, &[("x-api-key", INGEST_KEY.into())], &body).await;
    assert_eq!(res.status(), 401);
    // Not JSON, unsigned: 401, not 400 (nothing is parsed before the HMAC).
    assert_eq!(post_raw(&app, &[], b"{not json").await.status(), 401);
    // Not JSON, signed: 400.
    let sig = hmac_of(HMAC_KEY, b"{not json");
    assert_eq!(
        post_raw(&app, &[("x-webhook-hmac", sig)], b"{not json")
            .await
            .status(),
        400
    );
    let res = post_raw(&app, &[("x-webhook-hmac", good)], &body).await;
    assert_eq!(res.status(), 202);
}

#[tokio::test]
async fn without_an_hmac_key_the_ingest_key_is_required() {
    let sources = wabridge::catalog::parse_specs("waha").unwrap();
    let app = spawn_app_with(|c| c.sources = sources).await;
    let body = serde_json::to_vec(&fixture("call_received")).unwrap();
    assert_eq!(post_raw(&app, &[], &body).await.status(), 401);
    assert_eq!(
        post_raw(&app, &[("x-api-key", "not-the-key".into())], &body)
            .await
            .status(),
        401
    );
    let res = post_raw(&app, &[("x-api-key", INGEST_KEY.into())], &body).await;
    assert_eq!(res.status(), 202);

    // Not a WAHA envelope: 400 with every problem, nothing stored.
    for bad in [json!([]), json!("message"), json!({})] {
        let res = post_raw(
            &app,
            &[("x-api-key", INGEST_KEY.into())],
            &serde_json::to_vec(&bad).unwrap(),
        )
        .await;
        let problem = assert_problem(res, 400).await;
        assert!(
            !problem["errors"].as_array().unwrap().is_empty(),
            "{problem}"
        );
    }
}

#[tokio::test]
async fn a_redelivery_is_one_delivery_and_a_new_occurrence_is_another() {
    let app = waha_app(None).await;
    let rx = Receiver::start().await;
    app.register(&json!({"url": rx.url, "events": ["session.*", "group.join"]}))
        .await;
    for name in ["session_status_working", "group_v2_participants_join"] {
        let body = fixture(name);
        let first = post_signed(&app, &body).await;
        assert_eq!(first.status(), 202);
        let first: Value = first.json().await.unwrap();
        let again = post_signed(&app, &body).await;
        assert_eq!(again.status(), 202);
        let again: Value = again.json().await.unwrap();
        assert_eq!(again["duplicate"], true, "{name}: {again}");
        assert_eq!(again["idempotencyKey"], first["idempotencyKey"]);
    }
    // WORKING: session.status + session.authenticated; the join: group.join.
    rx.wait_for(3, Duration::from_secs(10)).await;
    rx.assert_stays_at(3, Duration::from_millis(300)).await;
    // The same change under a new envelope id is a new occurrence.
    let mut later = fixture("group_v2_participants_join");
    later["id"] = json!("evt_01jv3k8m2q4r6t8w0y2a4c9999");
    let res: Value = post_signed(&app, &later).await.json().await.unwrap();
    assert_eq!(res["duplicate"], false);
    rx.wait_for(4, Duration::from_secs(10)).await;
}

#[tokio::test]
async fn scan_qr_code_gives_session_qr_with_the_code_from_waha() {
    let stand_in = QrStandIn::default();
    let app = waha_app(Some(stand_in.start().await)).await;
    let rx = Receiver::start().await;
    app.register(&json!({"url": rx.url, "events": ["session.qr"]}))
        .await;
    let res = post_signed(&app, &fixture("session_status_scan_qr_code")).await;
    assert_eq!(res.status(), 202);
    let got = rx.wait_for(1, Duration::from_secs(10)).await;
    let envelope = got[0].json();
    assert_eq!(envelope["event"], "session.qr");
    assert_eq!(
        envelope["data"],
        json!({"sessionId": "shop-main", "qr": format!("data:image/png;base64,{QR_PNG_BASE64}")})
    );
    let asked = stand_in.asked();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].0, "/api/shop-main/auth/qr");
    assert_eq!(asked[0].1["x-api-key"], WAHA_API_KEY);

    // A status that is not SCAN_QR_CODE asks nothing.
    post_signed(&app, &fixture("session_status_working")).await;
    assert_eq!(stand_in.asked().len(), 1);
}

#[tokio::test]
async fn a_failing_qr_fetch_still_delivers_the_status() {
    // Nothing listens at this address: the fetch fails, the status is delivered anyway.
    let app = waha_app(Some("http://127.0.0.1:9".into())).await;
    let rx = Receiver::start().await;
    app.register(&json!({"url": rx.url, "events": ["session.status", "session.qr"]}))
        .await;
    let res = post_signed(&app, &fixture("session_status_scan_qr_code")).await;
    assert_eq!(res.status(), 202);
    let got = rx.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].json()["event"], "session.status");
    rx.assert_stays_at(1, Duration::from_millis(300)).await;
}
