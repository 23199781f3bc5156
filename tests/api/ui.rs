//! The operator page (`/ui`): served without a key, with a strict Content-Security-Policy and
//! no secrets in its files; and the API routes it reads besides the others (delivery counts by
//! state, the envelope of a delivery). The page itself is tested in a browser by tests/ui/run.sh.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_KEY, INGEST_KEY, Receiver, session_event, spawn_app};

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn the_page_and_its_files_are_served_without_a_key_under_a_strict_policy() {
    let app = spawn_app().await;
    let mut bodies = Vec::new();
    for (path, media) in [
        ("/ui", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/app.css", "text/css"),
    ] {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let h = res.headers().clone();
        let header = |name: &str| {
            h.get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert!(
            header("content-type").starts_with(media),
            "{path}: {}",
            header("content-type")
        );
        let csp = header("content-security-policy");
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(
                csp.contains(directive),
                "{path}: CSP lacks {directive}: {csp}"
            );
        }
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval") && !csp.contains('*'),
            "{csp}"
        );
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("cache-control"), "no-cache", "{path}");
        let etag = header("etag");
        assert!(etag.starts_with('"'), "{path}: etag {etag}");
        let again = app
            .client
            .get(app.url(path))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
        bodies.push((path, res.text().await.unwrap()));
    }
    // The HTML loads only the bridge's own files: no inline script or style, nothing remote.
    let html = &bodies[0].1;
    assert!(html.contains(r#"<script src="/ui/app.js" defer></script>"#));
    assert!(html.contains(r#"<link rel="stylesheet" href="/ui/app.css">"#));
    assert_eq!(html.matches("<script").count(), 1, "one script, by src");
    assert!(
        !html.contains("<style") && !html.contains(" style="),
        "no inline style"
    );
    assert!(html.contains(r#"<label for="key">Admin key</label>"#));
    let js = &bodies[1].1;
    assert!(js.contains("sessionStorage"));
    for (path, body) in &bodies {
        let lower = body.to_lowercase();
        for needle in [
            "localstorage",
            "document.cookie",
            "innerhtml",
            "eval(",
            "https://",
            "whsec_",
        ] {
            assert!(!lower.contains(needle), "{path} contains {needle}");
        }
        // The only absolute URL is the SVG namespace, which is a name, not a fetch.
        assert_eq!(
            lower.matches("http://").count(),
            lower.matches("http://www.w3.org/2000/svg").count(),
            "{path} names a remote URL"
        );
        assert!(
            !body.contains(ADMIN_KEY) && !body.contains(INGEST_KEY),
            "{path} carries a key"
        );
        for word in ["secret", "password", "api_key", "apikey", "token"] {
            for assigned in [
                format!("{word}=\""),
                format!("{word}: \""),
                format!("{word}: '"),
                format!("{word} = \""),
                format!("{word} = '"),
            ] {
                assert!(
                    !lower.contains(&assigned),
                    "{path} assigns a {word}: {assigned}"
                );
            }
        }
    }
    // The page is static and public, but its data is not: the API still wants the key.
    let res = app.client.get(app.url("/v1/stats")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn counts_by_state_and_the_envelope_as_sent() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let w = app
        .register(&json!({"url": rx.url, "events": ["session.status"]}))
        .await;
    let id = w["id"].as_str().unwrap();
    let other = app
        .register(&json!({"url": rx.url, "events": ["session.qr"]}))
        .await;
    let out = app.ingest_ok(&session_event("session.status", "s1")).await;
    let delivery = out["deliveries"][0].as_str().unwrap().to_owned();
    let got = rx.wait_for(1, WAIT).await;

    let mut counts = Value::Null;
    for _ in 0..100 {
        counts = app
            .get(&format!("/v1/webhooks/{id}/stats"))
            .await
            .json()
            .await
            .unwrap();
        if counts["delivered"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        counts,
        json!({"pending": 0, "inFlight": 0, "delivered": 1, "dead": 0})
    );
    let none: Value = app
        .get(&format!(
            "/v1/webhooks/{}/stats",
            other["id"].as_str().unwrap()
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        none,
        json!({"pending": 0, "inFlight": 0, "delivered": 0, "dead": 0})
    );
    let all: Value = app.get("/v1/stats").await.json().await.unwrap();
    assert_eq!(all["delivered"], 1, "{all}");
    assert_eq!(all["dead"], 0, "{all}");
    assert_eq!(
        app.get("/v1/webhooks/wh_nope/stats").await.status(),
        StatusCode::NOT_FOUND
    );

    // The envelope, byte for byte as the receiver got it; and only under its registration.
    let res = app
        .get(&format!("/v1/webhooks/{id}/deliveries/{delivery}/envelope"))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/json");
    let body = res.bytes().await.unwrap();
    assert_eq!(body, got[0].body, "the envelope shown is the one sent");
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(!text.contains(w["secret"].as_str().unwrap()));
    let wrong = app
        .get(&format!(
            "/v1/webhooks/{}/deliveries/{delivery}/envelope",
            other["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(wrong.status(), StatusCode::NOT_FOUND);
    let anonymous = app
        .client
        .get(app.url(&format!("/v1/webhooks/{id}/deliveries/{delivery}/envelope")))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}
