//! The server's own limits, tried over raw TCP as a slow or hostile client would: a head that
//! never ends, an idle keep-alive connection, a body that stalls, more connections than allowed,
//! and a client that has no credential for a signed engine route.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

const SHORT: Duration = Duration::from_millis(400);

/// Reads until the server closes the connection (or `within` passes); returns what was read and
/// whether it closed.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (String, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&out).into_owned(), true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&out).into_owned(), false),
        }
    }
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_head_that_never_ends_and_an_idle_connection_are_closed() {
    let app = spawn_app_with(|c| c.header_read_timeout = SHORT).await;
    let mut half = connect(&app).await;
    half.write_all(b"POST /v1/ingest HTTP/1.1\r\nHost: x\r\nX-Api-Key: ")
        .await
        .unwrap();
    let (_, closed) = read_until_closed(&mut half, Duration::from_secs(5)).await;
    assert!(closed, "a half-sent head must not hold the connection");

    let mut idle = connect(&app).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let (text, closed) = read_until_closed(&mut idle, Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(closed, "an idle keep-alive connection must be closed");
    assert!(started.elapsed() >= SHORT / 2, "closed before it was idle");
}

#[tokio::test]
async fn a_body_that_stalls_is_cut_off() {
    let app = spawn_app_with(|c| c.body_timeout = SHORT).await;
    let mut s = connect(&app).await;
    let head = format!(
        "POST /v1/webhooks HTTP/1.1\r\nHost: x\r\nX-API-Key: {ADMIN_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"url\":"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let (text, _) = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");

    // The same on the routes that read a raw body (WAHA's, signed over its bytes; a test delivery).
    for (path, key) in [
        ("/v1/ingest/waha", INGEST_KEY),
        ("/v1/webhooks/wh_x/test", ADMIN_KEY),
    ] {
        let mut s = connect(&app).await;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\n\
             Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"event\":"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let (text, _) = read_until_closed(&mut s, Duration::from_secs(5)).await;
        assert!(text.starts_with("HTTP/1.1 408"), "{path}: {text}");
        assert!(text.contains("application/problem+json"), "{path}: {text}");
    }
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_one() {
    let app = spawn_app_with(|c| {
        c.max_connections = 2;
        c.header_read_timeout = Duration::from_secs(1);
    })
    .await;
    // Two silent connections take both places…
    let _a = connect(&app).await;
    let _b = connect(&app).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // …so a third is not served until the head deadline frees one of them.
    let started = Instant::now();
    let res = tokio::time::timeout(Duration::from_secs(10), app.get_public("/healthz"))
        .await
        .expect("served once a place is free");
    assert_eq!(res.status(), 200);
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "served at once: the cap is not applied ({:?})",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_signed_engine_route_refuses_a_request_without_its_signature_before_reading_the_body() {
    let app = spawn_app_with(|c| c.openwa_secret = Some("upstream-openwa-secret".into())).await;
    let mut s = connect(&app).await;
    // A head announcing 10 MB, and no body at all: the refusal comes at once.
    s.write_all(
        b"POST /v1/ingest/openwa HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 10000000\r\n\r\n",
    )
    .await
    .unwrap();
    let (text, _) = read_until_closed(&mut s, Duration::from_secs(2)).await;
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_committed_for_a_client_that_went_away_are_delivered_at_once() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let hook = app
        .register(&serde_json::json!({"url": rx.url, "events": ["message.*"]}))
        .await;
    let id = hook["id"].as_str().unwrap().to_owned();
    // Clients that send a whole ingest and hang up before the answer: some commits go ahead
    // without anyone awaiting them. They must still reach the engine now, not when their lease
    // runs out (75 s with these settings).
    let mut clients = Vec::new();
    for i in 0..40 {
        let base = app.base.clone();
        clients.push(tokio::spawn(async move {
            let body = serde_json::json!({"event": "message.received", "sessionId": "s1", "data": {
                "id": format!("gone-{i}"), "from": "a@c.us", "to": "b@c.us", "chatId": "a@c.us",
                "body": "hi", "type": "text", "timestamp": 1_764_320_000, "fromMe": false,
                "isGroup": false}})
            .to_string();
            let mut s = TcpStream::connect(base.trim_start_matches("http://"))
                .await
                .unwrap();
            let head = format!(
                "POST /v1/ingest HTTP/1.1\r\nHost: x\r\nX-API-Key: {INGEST_KEY}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            s.write_all(format!("{head}{body}").as_bytes())
                .await
                .unwrap();
            drop(s);
        }));
    }
    for c in clients {
        c.await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let list: serde_json::Value = app
        .get(&format!("/v1/webhooks/{id}/deliveries?limit=100"))
        .await
        .json()
        .await
        .unwrap();
    let stored = list["data"].as_array().unwrap().len();
    assert!(
        stored > 0,
        "no ingest was committed: the test proves nothing"
    );
    let got = rx.wait_for(stored, Duration::from_secs(10)).await;
    assert_eq!(
        got.len(),
        stored,
        "{stored} stored, {} delivered within 10 s: the rest wait for their lease",
        got.len()
    );
}
