//! A workflow survives a change of gateway: one incoming text message, as OpenWA, WAHA and
//! Evolution API each send it (their documented shapes), reaches the same registration through
//! each engine's adapter, and the three deliveries differ in no field the schema guarantees,
//! apart from ids and times.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

const TEXT: &str = "Hi, is my order ready?";

fn fixture(path: &str) -> Value {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path);
    serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap()
}

async fn post(app: &TestApp, path: &str, body: &Value) {
    let res = app
        .client
        .post(app.url(path))
        .header("X-API-Key", INGEST_KEY)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    assert_eq!(status, 202, "{path}: {text}");
}

#[tokio::test]
async fn one_message_through_three_gateways_is_the_same_contract() {
    let app = spawn_app_fed_by("openwa,waha,evolution").await;
    let rx = Receiver::start().await;
    app.register(&json!({"url": rx.url, "events": ["message.received"]}))
        .await;

    let openwa = fixture("openwa/current/message.received.json");
    assert_eq!(openwa["data"]["body"], TEXT);
    let mut waha = fixture("waha/message_text_private.json");
    waha["payload"]["body"] = json!(TEXT);
    let mut evolution = fixture("evolution/messages.upsert-text-conversation.json");
    evolution["data"]["message"]["conversation"] = json!(TEXT);

    post(&app, "/v1/ingest/openwa", &openwa).await;
    post(&app, "/v1/ingest/waha", &waha).await;
    post(&app, "/v1/ingest/evolution", &evolution).await;
    let got = rx.wait_for(3, Duration::from_secs(15)).await;
    rx.assert_stays_at(3, Duration::from_millis(300)).await;

    let schema: Value =
        serde_json::from_slice(&std::fs::read("schemas/events/message.received.json").unwrap())
            .unwrap();
    let guaranteed: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .filter(|f| !matches!(*f, "id" | "timestamp"))
        .collect();
    assert!(guaranteed.len() >= 5, "{guaranteed:?}");
    let data: Vec<Value> = got.iter().map(|r| r.json()["data"].clone()).collect();
    for field in &guaranteed {
        let values: Vec<&Value> = data.iter().map(|d| &d[*field]).collect();
        assert!(
            values.iter().all(|v| *v == values[0] && !v.is_null()),
            "{field} differs between gateways: {values:?}"
        );
    }
    assert!(data.iter().all(|d| d["body"] == TEXT));
    // Every delivery is signed the same way, whatever the gateway offered.
    for r in &got {
        assert!(r.header("webhook-signature").starts_with("v1,"));
        assert_eq!(r.json()["event"], "message.received");
    }
}
