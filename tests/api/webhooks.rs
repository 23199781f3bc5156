//! Registrations over HTTP: create, read, list, update, delete, the dry run, every registration
//! rule, the refused names explained, every problem in one response, and the network policy.

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::helpers::*;

/// An allowed target in the test config (127.0.0.1/32 is allowlisted). Nothing is delivered in
/// these tests: no event is ingested.
const TARGET: &str = "http://127.0.0.1:5678/webhook/abc";

fn body(events: Value) -> Value {
    json!({"url": TARGET, "events": events})
}

fn with(field: &str, value: Value) -> Value {
    let mut b = body(json!(["message.received"]));
    b[field] = value;
    b
}

/// POSTs a body that must be refused; returns the problem.
async fn refused(app: &TestApp, body: &Value) -> Value {
    assert_problem(app.post("/v1/webhooks", body).await, 400).await
}

async fn list_ids(app: &TestApp) -> Vec<String> {
    let res = app.get("/v1/webhooks?limit=200").await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap().to_owned())
        .collect()
}

// ------------------------------------------------------------------------------- create

#[tokio::test]
async fn create_returns_201_with_every_field_and_a_generated_secret() {
    let app = spawn_app().await;
    let res = app
        .post(
            "/v1/webhooks",
            &json!({
                "url": TARGET,
                "events": ["message.received", "session.*"],
                "sessionId": "shop-main",
                "description": "Order intake",
                "headers": {"X-Workflow": "orders-header-value"},
                "active": true,
                "rateLimit": 5
            }),
        )
        .await;
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let w: Value = res.json().await.unwrap();
    let id = w["id"].as_str().unwrap();
    assert!(!id.is_empty());
    assert_eq!(location, format!("/v1/webhooks/{id}"));
    assert_eq!(w["url"], TARGET);
    assert_eq!(w["events"], json!(["message.received", "session.*"]));
    assert_eq!(w["sessionId"], "shop-main");
    assert_eq!(w["description"], "Order intake");
    assert_eq!(w["active"], true);
    assert_eq!(w["rateLimit"], 5.0);
    assert_eq!(w["headerNames"], json!(["X-Workflow"]));
    assert!(!w.to_string().contains("orders-header-value"), "{w}");
    let created = w["createdAt"].as_str().unwrap();
    assert!(
        time::OffsetDateTime::parse(created, &time::format_description::well_known::Rfc3339)
            .is_ok(),
        "{created}"
    );
    let secret = w["secret"].as_str().unwrap();
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_ form"))
        .unwrap();
    assert_eq!(key.len(), 32);

    // The Location resolves to the registration.
    let got: Value = app.get(&location).await.json().await.unwrap();
    assert_eq!(got["id"], id);
    assert_eq!(got["events"], w["events"]);
}

#[tokio::test]
async fn generated_secrets_differ() {
    let app = spawn_app().await;
    let a = app.register(&body(json!(["*"]))).await;
    let b = app.register(&body(json!(["*"]))).await;
    assert_ne!(a["secret"], b["secret"]);
    assert_ne!(a["id"], b["id"]);
}

#[tokio::test]
async fn given_secrets_are_accepted_in_both_forms() {
    let app = spawn_app().await;
    let whsec = format!("whsec_{}", STANDARD.encode([42u8; 24]));
    for secret in [whsec.as_str(), "a-plain-openwa-secret", "exactly-16-chars"] {
        let w = app.register(&with("secret", json!(secret))).await;
        assert_eq!(w["secret"], secret, "returned once, as given");
    }
}

#[tokio::test]
async fn the_secret_is_never_returned_again() {
    let app = spawn_app().await;
    let w = app
        .register(&with("secret", json!("a-plain-openwa-secret")))
        .await;
    let id = w["id"].as_str().unwrap();
    let generated = app.register(&body(json!(["*"]))).await;
    let generated_secret = generated["secret"].as_str().unwrap().to_owned();

    let assert_hidden = |text: &str| {
        assert!(!text.contains("a-plain-openwa-secret"), "{text}");
        assert!(!text.contains(&generated_secret), "{text}");
        assert!(!text.contains("\"secret\""), "{text}");
    };
    let one = app.get(&format!("/v1/webhooks/{id}")).await;
    assert_eq!(one.status(), 200);
    assert_hidden(&one.text().await.unwrap());
    let list = app.get("/v1/webhooks").await;
    assert_eq!(list.status(), 200);
    assert_hidden(&list.text().await.unwrap());
    let patched = app
        .patch(
            &format!("/v1/webhooks/{id}"),
            &json!({"description": "changed"}),
        )
        .await;
    assert_eq!(patched.status(), 200);
    assert_hidden(&patched.text().await.unwrap());
    // Not even when the PATCH sets a new one.
    let patched = app
        .patch(
            &format!("/v1/webhooks/{id}"),
            &json!({"secret": "another-plain-secret-value"}),
        )
        .await;
    assert_eq!(patched.status(), 200);
    let text = patched.text().await.unwrap();
    assert!(!text.contains("another-plain-secret-value"), "{text}");
}

#[tokio::test]
async fn several_registrations_may_share_a_url_and_events() {
    let app = spawn_app().await;
    let b = with("description", json!("n8n test URL"));
    let a = app.register(&b).await;
    let c = app.register(&b).await;
    assert_ne!(a["id"], c["id"]);
    let ids = list_ids(&app).await;
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&a["id"].as_str().unwrap().to_owned()));
    assert!(ids.contains(&c["id"].as_str().unwrap().to_owned()));
}

// -------------------------------------------------------------------------------- rules

#[tokio::test]
async fn events_are_folded_and_wildcards_accepted() {
    let app = spawn_app().await;
    let w = app
        .register(&body(json!([
            "session.qr",
            "message.*",
            "session.qr",
            "*",
            "message.*"
        ])))
        .await;
    assert_eq!(w["events"], json!(["session.qr", "message.*", "*"]));
    for pattern in ["*", "message.*", "session.*"] {
        let w = app.register(&body(json!([pattern]))).await;
        assert_eq!(w["events"], json!([pattern]));
    }
}

#[tokio::test]
async fn every_rule_is_enforced_over_http() {
    let app = spawn_app().await;
    let too_long = format!("http://127.0.0.1/{}", "a".repeat(2048));
    let cases: Vec<(Value, &str, &str)> = vec![
        (with("url", json!("/webhook/abc")), "/url", "invalid_url"),
        (
            with("url", json!("ftp://127.0.0.1/hook")),
            "/url",
            "invalid_url",
        ),
        (with("url", json!(too_long)), "/url", "invalid_url"),
        (
            with("url", json!("http://127.0.0.1/hook#frag")),
            "/url",
            "invalid_url",
        ),
        (with("url", json!(5)), "/url", "invalid_type"),
        (body(json!([])), "/events", "empty_events"),
        (body(json!("message.received")), "/events", "invalid_type"),
        (
            body(json!(["message.received", 7])),
            "/events/1",
            "invalid_type",
        ),
        (body(json!(["foo.*"])), "/events/0", "unknown_event"),
        (body(json!(["message"])), "/events/0", "unknown_event"),
        (
            with("secret", json!("hunter2")),
            "/secret",
            "invalid_secret",
        ),
        (
            with(
                "secret",
                json!(format!("whsec_{}", STANDARD.encode([1u8; 16]))),
            ),
            "/secret",
            "invalid_secret",
        ),
        (with("secret", json!(12)), "/secret", "invalid_type"),
        (
            with("sessionId", json!("")),
            "/sessionId",
            "invalid_session_id",
        ),
        (
            with("sessionId", json!("s".repeat(129))),
            "/sessionId",
            "invalid_session_id",
        ),
        (
            with("description", json!("d".repeat(1025))),
            "/description",
            "invalid_description",
        ),
        (
            with("headers", json!({"Content-Type": "text/plain"})),
            "/headers/Content-Type",
            "reserved_header",
        ),
        (
            with("headers", json!({"webhook-id": "x"})),
            "/headers/webhook-id",
            "reserved_header",
        ),
        (
            with("headers", json!({"X-OpenWA-Signature": "x"})),
            "/headers/X-OpenWA-Signature",
            "reserved_header",
        ),
        (
            with("headers", json!({"Connection": "close"})),
            "/headers/Connection",
            "reserved_header",
        ),
        (
            with("headers", json!({"bad name": "x"})),
            "/headers/bad name",
            "invalid_header",
        ),
        (
            with("headers", json!({"X-A": "line\nbreak"})),
            "/headers/X-A",
            "invalid_header",
        ),
        (with("headers", json!("X-A: b")), "/headers", "invalid_type"),
        (
            with("rateLimit", json!(0)),
            "/rateLimit",
            "invalid_rate_limit",
        ),
        (
            with("rateLimit", json!(20000)),
            "/rateLimit",
            "invalid_rate_limit",
        ),
        (with("active", json!("yes")), "/active", "invalid_type"),
        (with("sesionId", json!("x")), "/sesionId", "unknown_field"),
        (json!({"events": ["*"]}), "/url", "required"),
        (json!({"url": TARGET}), "/events", "required"),
        (json!([]), "", "invalid_type"),
    ];
    for (b, pointer, code) in cases {
        let p = refused(&app, &b).await;
        assert_eq!(
            error_codes(&p),
            vec![(pointer.to_owned(), code.to_owned())],
            "{b}"
        );
        let e = error_at(&p, pointer);
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
        // With one problem, the detail is its message.
        assert_eq!(p["detail"], e["message"]);
        assert_eq!(p["type"], "urn:wabridge:problem:invalid-request");
    }
    assert!(list_ids(&app).await.is_empty(), "nothing was stored");
}

#[tokio::test]
async fn refusals_never_echo_secrets_passwords_or_header_values() {
    let app = spawn_app().await;
    for (b, hidden) in [
        (
            with("url", json!("http://alice:pa55w0rd@127.0.0.1/hook")),
            "pa55w0rd",
        ),
        (with("secret", json!("hunter2-short")), "hunter2-short"),
        (
            with("headers", json!({"Authorization": "Bearer t0k3n\nX: y"})),
            "t0k3n",
        ),
        (
            with("headers", json!({"X-Openwa-Signature": "s1gnature"})),
            "s1gnature",
        ),
    ] {
        let res = app.post("/v1/webhooks", &b).await;
        assert_eq!(res.status(), 400);
        let text = res.text().await.unwrap();
        assert!(!text.contains(hidden), "{hidden} echoed: {text}");
    }
}

#[tokio::test]
async fn unknown_fields_are_refused_with_a_suggestion() {
    let app = spawn_app().await;
    let p = refused(&app, &with("sesionId", json!("shop-main"))).await;
    let e = error_at(&p, "/sesionId");
    assert_eq!(e["code"], "unknown_field");
    assert_eq!(e["suggestion"], "sessionId");
    assert!(e["message"].as_str().unwrap().contains("sesionId"));
}

#[tokio::test]
async fn the_historical_wrong_names_are_refused_with_the_name_to_use() {
    let app = spawn_app().await;
    for (wrong, right) in [
        ("session.connected", "session.authenticated"),
        ("session.qr_ready", "session.qr"),
    ] {
        let p = refused(&app, &body(json!([wrong]))).await;
        let e = error_at(&p, "/events/0");
        assert_eq!(e["code"], "unknown_event");
        assert_eq!(e["value"], wrong);
        assert_eq!(e["suggestion"], right);
        let message = e["message"].as_str().unwrap();
        assert!(message.contains(&format!("Use '{right}'")), "{message}");
        assert!(message.contains("older OpenWA n8n guide"), "{message}");
    }
}

#[tokio::test]
async fn typos_get_a_suggestion() {
    let app = spawn_app().await;
    for (typed, suggestion) in [
        ("mesage.received", "message.received"),
        ("Session.QR", "session.qr"),
        ("session_status", "session.status"),
    ] {
        let p = refused(&app, &body(json!([typed]))).await;
        let e = error_at(&p, "/events/0");
        assert_eq!(e["code"], "unknown_event");
        assert_eq!(e["suggestion"], suggestion, "{typed}");
    }
    let p = refused(&app, &body(json!(["order.created"]))).await;
    assert!(error_at(&p, "/events/0").get("suggestion").is_none());
}

#[tokio::test]
async fn every_reserved_name_is_refused_with_an_explanation() {
    // group.* are reserved on a bridge fed by OpenWA v0.4.3.
    let app = spawn_app_fed_by("openwa@0.4.3").await;
    for name in [
        "group.join",
        "group.leave",
        "group.update",
        "group.join_request",
        "group.*",
    ] {
        let p = refused(&app, &body(json!([name]))).await;
        assert_eq!(
            error_codes(&p),
            vec![("/events/0".to_owned(), "reserved_event".to_owned())]
        );
        let e = error_at(&p, "/events/0");
        assert_eq!(e["value"], name);
        let message = e["message"].as_str().unwrap();
        for words in [
            "fed by openwa@0.4.3",
            "never fire",
            "OpenWA (openwa) from version",
            "WABRIDGE_SOURCES=openwa@",
            "GET /v1/events",
        ] {
            assert!(message.contains(words), "{name}: {words:?} in {message}");
        }
    }
}

#[tokio::test]
async fn a_mixed_request_reports_every_problem_in_one_response() {
    // group.* are reserved on a bridge fed by OpenWA v0.4.3.
    let app = spawn_app_fed_by("openwa@0.4.3").await;
    let res = app
        .post(
            "/v1/webhooks",
            &json!({
                "url": "ftp://127.0.0.1/hook",
                "events": ["group.join", "message.received", "mesage.sent", "session.connected"],
                "secret": "short",
                "foo": true
            }),
        )
        .await;
    let p = assert_problem(res, 400).await;
    assert_eq!(p["title"], "The request is invalid");
    assert_eq!(p["detail"], "6 problems in the request body; see errors");
    let got: BTreeSet<(String, String)> = error_codes(&p).into_iter().collect();
    let expected: BTreeSet<(String, String)> = [
        ("/foo", "unknown_field"),
        ("/url", "invalid_url"),
        ("/events/0", "reserved_event"),
        ("/events/2", "unknown_event"),
        ("/events/3", "unknown_event"),
        ("/secret", "invalid_secret"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
    .collect();
    assert_eq!(got, expected);
    assert_eq!(error_at(&p, "/events/2")["suggestion"], "message.sent");
    assert_eq!(
        error_at(&p, "/events/3")["suggestion"],
        "session.authenticated"
    );
    assert_eq!(error_at(&p, "/url")["value"], "ftp://127.0.0.1/hook");
    assert!(error_at(&p, "/secret").get("value").is_none());
    assert!(list_ids(&app).await.is_empty());
}

#[tokio::test]
async fn an_unreadable_body_is_a_400_problem() {
    let app = spawn_app().await;
    for raw in ["{not json", "", "   ", "{\"url\": "] {
        let res = app
            .client
            .post(app.url("/v1/webhooks"))
            .header("X-API-Key", ADMIN_KEY)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        let p = assert_problem(res, 400).await;
        assert_eq!(p["type"], "urn:wabridge:problem:invalid-json", "{raw:?}");
    }
}

// --------------------------------------------------------------------- network policy

#[tokio::test]
async fn private_and_metadata_targets_are_not_allowed() {
    let app = spawn_app().await;
    for url in [
        "http://10.0.0.1/hook",
        "http://169.254.169.254/",
        "http://192.168.1.10:5678/webhook",
        "http://[::1]/hook",
        "http://0.0.0.0/",
    ] {
        let p = refused(&app, &with("url", json!(url))).await;
        assert_eq!(
            error_codes(&p),
            vec![("/url".to_owned(), "url_not_allowed".to_owned())],
            "{url}"
        );
        assert!(
            error_at(&p, "/url")["message"]
                .as_str()
                .unwrap()
                .contains("WABRIDGE_ALLOW_TARGETS"),
            "{p}"
        );
    }
    // A public address literal needs no DNS and is allowed.
    let w = app
        .register(&with("url", json!("https://93.184.215.14/hook")))
        .await;
    assert_eq!(w["url"], "https://93.184.215.14/hook");
}

#[tokio::test]
async fn numeric_loopback_forms_are_normalized_then_checked() {
    // The test config allows 127.0.0.1/32: the decimal form is that address.
    let app = spawn_app().await;
    let w = app
        .register(&with("url", json!("http://2130706433/hook")))
        .await;
    assert_eq!(w["url"], "http://127.0.0.1/hook");

    // Without an allowlist, loopback in any spelling is refused.
    let strict = spawn_app_with(|c| c.allow_targets = Default::default()).await;
    for url in [
        "http://2130706433/",
        "http://127.1/",
        "http://0x7f000001/",
        "http://127.0.0.1:5678/hook",
        "http://localhost/hook",
    ] {
        let p = refused(&strict, &with("url", json!(url))).await;
        assert_eq!(
            error_codes(&p),
            vec![("/url".to_owned(), "url_not_allowed".to_owned())],
            "{url}"
        );
    }
}

#[tokio::test]
async fn the_policy_is_checked_only_on_a_well_formed_url_alongside_other_errors() {
    // group.* are reserved on a bridge fed by OpenWA v0.4.3.
    let app = spawn_app_fed_by("openwa@0.4.3").await;
    let p = refused(
        &app,
        &json!({"url": "http://10.0.0.1/hook", "events": ["group.join"]}),
    )
    .await;
    let got: BTreeSet<(String, String)> = error_codes(&p).into_iter().collect();
    assert_eq!(
        got,
        [
            ("/url".to_owned(), "url_not_allowed".to_owned()),
            ("/events/0".to_owned(), "reserved_event".to_owned()),
        ]
        .into_iter()
        .collect()
    );
}

// ----------------------------------------------------------------------- list, get

#[tokio::test]
async fn the_list_is_paginated() {
    let app = spawn_app().await;
    let mut created = Vec::new();
    for i in 0..5 {
        let w = app
            .register(&with("description", json!(format!("n{i}"))))
            .await;
        created.push(w["id"].as_str().unwrap().to_owned());
    }
    let all: Value = app.get("/v1/webhooks").await.json().await.unwrap();
    assert_eq!(all["data"].as_array().unwrap().len(), 5);
    assert_eq!(all["nextCursor"], Value::Null);

    let mut seen = Vec::new();
    let mut path = "/v1/webhooks?limit=2".to_owned();
    let mut pages = 0;
    loop {
        let res = app.get(&path).await;
        assert_eq!(res.status(), 200);
        let page: Value = res.json().await.unwrap();
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 2);
        seen.extend(data.iter().map(|w| w["id"].as_str().unwrap().to_owned()));
        pages += 1;
        match page["nextCursor"].as_str() {
            Some(cursor) => path = format!("/v1/webhooks?limit=2&cursor={cursor}"),
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, created, "every registration once, in creation order");
}

#[tokio::test]
async fn bad_list_parameters_are_400_problems() {
    let app = spawn_app().await;
    for query in [
        "limit=0",
        "limit=500",
        "limit=201",
        "limit=abc",
        "limit=-1",
        "page=2",
    ] {
        let p = assert_problem(app.get(&format!("/v1/webhooks?{query}")).await, 400).await;
        assert_eq!(p["type"], "urn:wabridge:problem:invalid-query", "{query}");
    }
    assert_eq!(app.get("/v1/webhooks?limit=200").await.status(), 200);
    assert_eq!(app.get("/v1/webhooks?limit=1").await.status(), 200);
}

#[tokio::test]
async fn an_unknown_id_is_a_404_problem() {
    let app = spawn_app().await;
    let p = assert_problem(app.get("/v1/webhooks/wh_doesnotexist").await, 404).await;
    assert!(p["detail"].as_str().unwrap().contains("wh_doesnotexist"));
    assert_problem(
        app.patch("/v1/webhooks/wh_doesnotexist", &json!({"active": false}))
            .await,
        404,
    )
    .await;
}

// ---------------------------------------------------------------------------- update

#[tokio::test]
async fn patch_updates_the_fields_given() {
    let app = spawn_app().await;
    let w = app
        .register(&json!({
            "url": TARGET,
            "events": ["message.received"],
            "sessionId": "shop-main",
            "description": "before"
        }))
        .await;
    let path = format!("/v1/webhooks/{}", w["id"].as_str().unwrap());

    let res = app.patch(&path, &json!({"active": false})).await;
    assert_eq!(res.status(), 200);
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["active"], false);
    assert_eq!(p["events"], w["events"], "untouched");
    assert_eq!(p["description"], "before", "untouched");
    let got: Value = app.get(&path).await.json().await.unwrap();
    assert_eq!(got["active"], false, "stored");

    let p: Value = app
        .patch(&path, &json!({"active": true}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(p["active"], true);

    let p: Value = app
        .patch(
            &path,
            &json!({"events": ["session.*", "message.ack", "session.*"], "sessionId": null}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(p["events"], json!(["session.*", "message.ack"]));
    assert_eq!(p["sessionId"], Value::Null);
    let got: Value = app.get(&path).await.json().await.unwrap();
    assert_eq!(got["events"], json!(["session.*", "message.ack"]));
    assert_eq!(got["sessionId"], Value::Null);
    assert_eq!(got["createdAt"], w["createdAt"]);
    assert!(got["updatedAt"].as_str().unwrap() >= w["createdAt"].as_str().unwrap());
}

#[tokio::test]
async fn patch_follows_the_same_rules_and_changes_nothing_when_refused() {
    // group.* are reserved on a bridge fed by OpenWA v0.4.3.
    let app = spawn_app_fed_by("openwa@0.4.3").await;
    let w = app.register(&body(json!(["message.received"]))).await;
    let path = format!("/v1/webhooks/{}", w["id"].as_str().unwrap());

    let p = assert_problem(
        app.patch(
            &path,
            &json!({"events": ["group.join", "session.qr_ready"], "active": "no", "sesionId": 1}),
        )
        .await,
        400,
    )
    .await;
    let got: BTreeSet<(String, String)> = error_codes(&p).into_iter().collect();
    let expected: BTreeSet<(String, String)> = [
        ("/sesionId", "unknown_field"),
        ("/events/0", "reserved_event"),
        ("/events/1", "unknown_event"),
        ("/active", "invalid_type"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
    .collect();
    assert_eq!(got, expected);
    assert_eq!(error_at(&p, "/events/1")["suggestion"], "session.qr");

    let p = assert_problem(app.patch(&path, &json!({"events": []})).await, 400).await;
    assert_eq!(
        error_codes(&p),
        vec![("/events".to_owned(), "empty_events".to_owned())]
    );
    let p = assert_problem(
        app.patch(&path, &json!({"url": "http://169.254.169.254/"}))
            .await,
        400,
    )
    .await;
    assert_eq!(
        error_codes(&p),
        vec![("/url".to_owned(), "url_not_allowed".to_owned())]
    );

    let got: Value = app.get(&path).await.json().await.unwrap();
    assert_eq!(got["events"], json!(["message.received"]));
    assert_eq!(got["url"], TARGET);
    assert_eq!(got["active"], true);
}

// ---------------------------------------------------------------------------- delete

#[tokio::test]
async fn delete_twice_is_204_then_404() {
    let app = spawn_app().await;
    let w = app.register(&body(json!(["*"]))).await;
    let keep = app.register(&body(json!(["*"]))).await;
    let path = format!("/v1/webhooks/{}", w["id"].as_str().unwrap());

    let res = app.delete(&path).await;
    assert_eq!(res.status(), 204);
    assert!(res.bytes().await.unwrap().is_empty());
    let p = assert_problem(app.delete(&path).await, 404).await;
    assert_eq!(p["type"], "urn:wabridge:problem:not-found");
    assert_problem(app.get(&path).await, 404).await;
    assert_problem(app.patch(&path, &json!({"active": true})).await, 404).await;
    assert_eq!(
        list_ids(&app).await,
        vec![keep["id"].as_str().unwrap().to_owned()]
    );
}

// -------------------------------------------------------------------------- validate

#[tokio::test]
async fn validate_returns_the_normalized_registration_and_stores_nothing() {
    let app = spawn_app().await;
    let res = app
        .post(
            "/v1/webhooks/validate",
            &json!({
                "url": "HTTP://127.0.0.1:5678/webhook/abc",
                "events": ["session.qr", "session.qr", "message.*"],
                "secret": "a-plain-openwa-secret",
                "headers": {"X-Workflow": "orders"}
            }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(!text.contains("a-plain-openwa-secret"), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["valid"], true);
    let n = &v["normalized"];
    assert_eq!(n["url"], "http://127.0.0.1:5678/webhook/abc");
    assert_eq!(n["events"], json!(["session.qr", "message.*"]));
    assert_eq!(n["secret"], "provided");
    assert_eq!(n["active"], true);
    assert_eq!(n["sessionId"], Value::Null);

    let v: Value = app
        .post("/v1/webhooks/validate", &body(json!(["*"])))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["normalized"]["secret"], "generated");

    assert!(list_ids(&app).await.is_empty(), "validate stores nothing");
}

#[tokio::test]
async fn validate_reports_every_problem_and_stores_nothing() {
    // group.* are reserved on a bridge fed by OpenWA v0.4.3.
    let app = spawn_app_fed_by("openwa@0.4.3").await;
    let res = app
        .post(
            "/v1/webhooks/validate",
            &json!({
                "url": "http://10.0.0.1/hook",
                "events": ["group.join", "session.connected", "message.received"],
                "secret": "short-secret"
            }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(!text.contains("short-secret"));
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["valid"], false);
    assert!(v.get("normalized").is_none());
    let got: BTreeSet<(String, String)> = error_codes(&v).into_iter().collect();
    let expected: BTreeSet<(String, String)> = [
        ("/url", "url_not_allowed"),
        ("/events/0", "reserved_event"),
        ("/events/1", "unknown_event"),
        ("/secret", "invalid_secret"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
    .collect();
    assert_eq!(got, expected);
    assert_eq!(
        error_at(&v, "/events/1")["suggestion"],
        "session.authenticated"
    );
    assert!(list_ids(&app).await.is_empty());
}

#[tokio::test]
async fn validate_with_invalid_json_says_invalid_json() {
    let app = spawn_app().await;
    for raw in ["{\"url\": ", ""] {
        let res = app
            .client
            .post(app.url("/v1/webhooks/validate"))
            .header("X-API-Key", ADMIN_KEY)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["valid"], false, "{raw:?}");
        assert_eq!(
            error_codes(&v),
            vec![("".to_owned(), "invalid_json".to_owned())]
        );
    }
    assert!(list_ids(&app).await.is_empty());
}

#[tokio::test]
async fn a_host_that_does_not_resolve_yet_is_accepted_and_checked_at_delivery() {
    let app = spawn_app().await;
    // `.invalid` never resolves: refusing it would turn a passing DNS hiccup into a 400.
    let res = app
        .post(
            "/v1/webhooks",
            &serde_json::json!({"url": "http://n8n.invalid/webhook/x", "events": ["*"]}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let hook: serde_json::Value = res.json().await.unwrap();
    let id = hook["id"].as_str().unwrap().to_owned();
    // Each attempt checks the policy again: the name still does not resolve, so the attempt
    // fails with that reason and nothing is sent.
    app.ingest_ok(&session_event("session.qr", "s1")).await;
    let delivery = crate::delivery::eventually(|| async {
        let list: serde_json::Value = app
            .get(&format!("/v1/webhooks/{id}/deliveries"))
            .await
            .json()
            .await
            .unwrap();
        let d = list["data"][0].clone();
        (d["attempts"].as_u64().unwrap_or(0) >= 1).then_some(d)
    })
    .await;
    assert_ne!(delivery["state"], "delivered", "{delivery}");
    let error = delivery["lastError"].as_str().unwrap_or_default();
    assert!(error.contains("n8n.invalid"), "{delivery}");
}

#[tokio::test]
async fn validate_never_echoes_header_values() {
    let app = spawn_app().await;
    let res = app
        .post(
            "/v1/webhooks/validate",
            &serde_json::json!({"url": "http://127.0.0.1:9/hook", "events": ["*"],
                "headers": {"Authorization": "Bearer very-secret-token"}}),
        )
        .await;
    let text = res.text().await.unwrap();
    assert!(!text.contains("very-secret-token"), "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v["normalized"]["headerNames"],
        serde_json::json!(["Authorization"])
    );
}
