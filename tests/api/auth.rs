//! API keys: admin routes need an admin key (X-API-Key or Bearer), /v1/ingest an ingest key, and
//! the public contract none.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

/// Every route that needs the admin key, with a body where it takes one.
fn admin_routes() -> Vec<(Method, &'static str, Option<Value>)> {
    let reg = json!({"url": "http://127.0.0.1:5678/hook", "events": ["*"]});
    vec![
        (Method::GET, "/v1/webhooks", None),
        (Method::POST, "/v1/webhooks", Some(reg.clone())),
        (Method::POST, "/v1/webhooks/validate", Some(reg)),
        (Method::GET, "/v1/webhooks/wh_x", None),
        (
            Method::PATCH,
            "/v1/webhooks/wh_x",
            Some(json!({"active": false})),
        ),
        (Method::DELETE, "/v1/webhooks/wh_x", None),
    ]
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = app.client.request(method, app.url(path));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    req.send().await.unwrap()
}

async fn assert_unauthorized(res: reqwest::Response) {
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let p = assert_problem(res, 401).await;
    assert_eq!(p["type"], "urn:wabridge:problem:unauthorized");
    assert_eq!(challenge.as_deref(), Some("Bearer realm=\"wabridge\""));
}

#[tokio::test]
async fn admin_routes_without_a_key_are_401_problems_with_a_challenge() {
    let app = spawn_app().await;
    for (method, path, body) in admin_routes() {
        let res = send(&app, method, path, body.as_ref(), &[]).await;
        assert_unauthorized(res).await;
    }
    let res = send(
        &app,
        Method::POST,
        "/v1/ingest",
        Some(&session_event("session.qr", "s1")),
        &[],
    )
    .await;
    assert_unauthorized(res).await;
    // Nothing was created by the refused POST.
    let list: Value = app.get("/v1/webhooks").await.json().await.unwrap();
    assert_eq!(list["data"], json!([]));
}

#[tokio::test]
async fn wrong_or_malformed_keys_are_401() {
    let app = spawn_app().await;
    let wrong_bearer = format!("Bearer {ADMIN_KEY}x");
    let basic = format!("Basic {ADMIN_KEY}");
    let bare = ADMIN_KEY.to_owned();
    let prefix = &ADMIN_KEY[..ADMIN_KEY.len() - 1];
    let cases: Vec<(&str, &str)> = vec![
        ("X-API-Key", "wrong-key"),
        ("X-API-Key", ""),
        ("X-API-Key", prefix),
        ("Authorization", &wrong_bearer),
        ("Authorization", &basic),
        ("Authorization", &bare),
        ("Authorization", "Bearer "),
    ];
    for (name, value) in cases {
        for (method, path, body) in admin_routes() {
            let res = send(&app, method, path, body.as_ref(), &[(name, value)]).await;
            assert_eq!(res.status(), 401, "{name}: {value:?} on {path}");
            assert_unauthorized(res).await;
        }
    }
}

#[tokio::test]
async fn the_admin_key_works_as_x_api_key_or_bearer() {
    let app = spawn_app().await;
    let bearer = format!("Bearer {ADMIN_KEY}");
    let lower = format!("bearer {ADMIN_KEY}");
    for (name, value) in [
        ("X-API-Key", ADMIN_KEY),
        ("Authorization", bearer.as_str()),
        ("Authorization", lower.as_str()),
    ] {
        let res = send(&app, Method::GET, "/v1/webhooks", None, &[(name, value)]).await;
        assert_eq!(res.status(), 200, "{name}: {value}");
        let res = send(
            &app,
            Method::POST,
            "/v1/webhooks",
            Some(&json!({"url": "http://127.0.0.1:5678/hook", "events": ["*"]})),
            &[(name, value)],
        )
        .await;
        assert_eq!(res.status(), 201, "{name}: {value}");
    }
}

#[tokio::test]
async fn the_ingest_key_does_not_grant_admin_routes() {
    let app = spawn_app().await;
    let bearer = format!("Bearer {INGEST_KEY}");
    for header in [
        ("X-API-Key", INGEST_KEY),
        ("Authorization", bearer.as_str()),
    ] {
        for (method, path, body) in admin_routes() {
            let res = send(&app, method, path, body.as_ref(), &[header]).await;
            assert_unauthorized(res).await;
        }
    }
    // ...while it does grant ingest.
    let res = app.ingest(&session_event("session.qr", "s1")).await;
    assert_eq!(res.status(), 202);
}

#[tokio::test]
async fn the_admin_key_does_not_grant_ingest_unless_configured() {
    let event = session_event("session.qr", "s1");
    let app = spawn_app().await;
    let res = send(
        &app,
        Method::POST,
        "/v1/ingest",
        Some(&event),
        &[("X-API-Key", ADMIN_KEY)],
    )
    .await;
    assert_unauthorized(res).await;

    let app = spawn_app_with(|c| c.admin_can_ingest = true).await;
    let res = send(
        &app,
        Method::POST,
        "/v1/ingest",
        Some(&event),
        &[("X-API-Key", ADMIN_KEY)],
    )
    .await;
    assert_eq!(res.status(), 202);
    // The ingest key still works, and still not on admin routes.
    assert_eq!(app.ingest(&event).await.status(), 202);
    let res = send(
        &app,
        Method::GET,
        "/v1/webhooks",
        None,
        &[("X-API-Key", INGEST_KEY)],
    )
    .await;
    assert_unauthorized(res).await;
}

#[tokio::test]
async fn public_routes_need_no_key() {
    let app = spawn_app().await;
    for path in [
        "/v1/events",
        "/v1/events/session.qr",
        "/v1/schemas",
        "/v1/schemas/catalog.json",
        "/v1/schemas/registration.json",
        "/v1/schemas/events/message.received.json",
        "/healthz",
        "/readyz",
    ] {
        let res = app.get_public(path).await;
        assert_eq!(res.status(), 200, "{path}");
    }
    // A wrong key on a public route is ignored, not refused.
    let res = send(
        &app,
        Method::GET,
        "/v1/events",
        None,
        &[("X-API-Key", "wrong")],
    )
    .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn several_configured_keys_all_work() {
    let (a, b) = ("first-admin-key-aaaaaaaaaa", "second-admin-key-bbbbbbbbb");
    let app = spawn_app_with(|c| c.api_keys = vec![a.into(), b.into()]).await;
    for key in [a, b] {
        let res = send(
            &app,
            Method::GET,
            "/v1/webhooks",
            None,
            &[("X-API-Key", key)],
        )
        .await;
        assert_eq!(res.status(), 200, "{key}");
    }
    // The default test key is not configured here.
    let res = send(
        &app,
        Method::GET,
        "/v1/webhooks",
        None,
        &[("X-API-Key", ADMIN_KEY)],
    )
    .await;
    assert_unauthorized(res).await;
}
