//! The public contract over HTTP: the event list, the schema files (ETag, Cache-Control, $ids
//! under the public URL), health, and the problem+json answers for unknown routes and methods.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::*;

/// The 24 events OpenWA's current line emits: the catalog of contract version 2.
const EVENTS: &[&str] = &[
    "message.received",
    "message.sent",
    "message.ack",
    "message.receipt",
    "message.failed",
    "message.revoked",
    "message.reaction",
    "message.edited",
    "status.received",
    "session.status",
    "session.qr",
    "session.authenticated",
    "session.disconnected",
    "session.reconnect_loop",
    "session.restriction",
    "presence.update",
    "group.join",
    "group.leave",
    "group.update",
    "group.join_request",
    "call.received",
    "call.accepted",
    "call.rejected",
    "call.missed",
];
/// What OpenWA v0.4.3 emits: on a bridge fed by it, every other event is reserved.
const OPENWA_0_4_3: &[&str] = &[
    "message.received",
    "message.sent",
    "message.ack",
    "message.failed",
    "message.revoked",
    "session.qr",
    "session.authenticated",
    "session.disconnected",
    "session.status",
];

async fn json(res: reqwest::Response) -> Value {
    let status = res.status();
    let text = res.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn events_lists_every_event_with_status_description_and_schema_url() {
    let app = spawn_app().await;
    let body = json(app.get_public("/v1/events").await).await;
    assert_eq!(body["contractVersion"], 2);
    assert_eq!(body["sources"]["selection"], "openwa");
    let events = body["events"].as_array().unwrap();
    let names: BTreeSet<&str> = events.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, EVENTS.iter().copied().collect::<BTreeSet<_>>());
    for e in events {
        let name = e["name"].as_str().unwrap();
        // The default bridge is fed by OpenWA's current line, which emits every event.
        assert_eq!(e["status"], "available", "{name}");
        assert!(e.get("reservedReason").is_none(), "{name}");
        assert_eq!(e["family"], name.split('.').next().unwrap(), "{name}");
        assert_eq!(e["optIn"], name == "message.receipt", "{name}");
        let openwa = e["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["engine"] == "openwa")
            .unwrap_or_else(|| panic!("{name}: OpenWA emits it"));
        assert_eq!(openwa["configured"], true, "{name}");
        assert_eq!(openwa["native"][0]["name"], name, "{name}");
        assert!(openwa["since"].as_str().is_some(), "{name}");
        assert!(
            e["description"].as_str().is_some_and(|d| d.len() > 20),
            "{name}: {e}"
        );
        assert_eq!(
            e["schemaUrl"],
            format!("{}/v1/schemas/events/{name}.json", app.base),
            "{name}"
        );
    }
    let subscribable: BTreeSet<&str> = body["subscribable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    let mut expected: BTreeSet<&str> = EVENTS.iter().copied().collect();
    expected.extend([
        "*",
        "message.*",
        "status.*",
        "session.*",
        "presence.*",
        "group.*",
        "call.*",
    ]);
    assert_eq!(subscribable, expected);
    let wrong = body["wrongNames"].as_array().unwrap();
    for (name, use_instead) in [
        ("session.connected", "session.authenticated"),
        ("session.qr_ready", "session.qr"),
    ] {
        let w = wrong.iter().find(|w| w["name"] == name).unwrap();
        assert_eq!(w["use"], use_instead);
        assert!(w["why"].as_str().is_some_and(|s| !s.is_empty()));
    }
}

#[tokio::test]
async fn on_a_bridge_fed_by_an_older_engine_the_events_it_lacks_are_reserved_with_a_reason() {
    let app = spawn_app_with(|c| {
        c.sources = wabridge::catalog::parse_specs("openwa@0.4.3").unwrap();
    })
    .await;
    let body = json(app.get_public("/v1/events").await).await;
    assert_eq!(body["sources"]["selection"], "openwa@0.4.3");
    assert_eq!(
        body["sources"]["configured"][0]["effectiveVersion"],
        "0.4.3"
    );
    for e in body["events"].as_array().unwrap() {
        let name = e["name"].as_str().unwrap();
        if OPENWA_0_4_3.contains(&name) {
            assert_eq!(e["status"], "available", "{name}");
        } else {
            assert_eq!(e["status"], "reserved", "{name}");
            let why = e["reservedReason"].as_str().unwrap();
            assert!(why.contains("fed by openwa@0.4.3"), "{name}: {why}");
            let openwa = e["sources"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["engine"] == "openwa")
                .unwrap();
            assert_eq!(openwa["configured"], false, "{name}");
        }
    }
    let subscribable = body["subscribable"].as_array().unwrap();
    assert!(
        !subscribable
            .iter()
            .any(|p| p == "group.*" || p == "group.join")
    );
    let one = json(app.get_public("/v1/events/group.join").await).await;
    assert_eq!(one["status"], "reserved");
    assert!(
        one["reservedReason"]
            .as_str()
            .unwrap()
            .contains("OpenWA (openwa) from version")
    );
}

#[tokio::test]
async fn every_schema_url_resolves_to_a_schema_with_that_id() {
    let app = spawn_app().await;
    let body = json(app.get_public("/v1/events").await).await;
    for e in body["events"].as_array().unwrap() {
        let url = e["schemaUrl"].as_str().unwrap();
        let res = app.client.get(url).send().await.unwrap();
        assert_eq!(res.status(), 200, "{url}");
        assert_eq!(
            res.headers()["content-type"],
            "application/schema+json",
            "{url}"
        );
        let schema: Value = res.json().await.unwrap();
        assert_eq!(schema["$id"], url);
        assert_eq!(schema["title"], e["name"]);
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
    }
}

#[tokio::test]
async fn one_event_is_served_with_its_schema_and_examples() {
    let app = spawn_app().await;
    let e = json(app.get_public("/v1/events/session.status").await).await;
    assert_eq!(e["name"], "session.status");
    assert_eq!(e["status"], "available");
    assert_eq!(
        e["schemaUrl"],
        format!("{}/v1/schemas/events/session.status.json", app.base)
    );
    assert_eq!(e["schema"]["$id"], e["schemaUrl"]);
    let examples = e["examples"].as_array().unwrap();
    assert!(!examples.is_empty());
    assert!(examples.iter().all(|x| x["sessionId"].is_string()));

    let group = json(app.get_public("/v1/events/group.join").await).await;
    assert_eq!(group["status"], "available");
    assert!(group["examples"].as_array().is_some_and(|x| !x.is_empty()));
}

#[tokio::test]
async fn an_unknown_event_is_a_404_problem_with_a_suggestion() {
    let app = spawn_app().await;
    let p = assert_problem(app.get_public("/v1/events/mesage.received").await, 404).await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("did you mean 'message.received'"),
        "{p}"
    );
    let p = assert_problem(app.get_public("/v1/events/session.connected").await, 404).await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("did you mean 'session.authenticated'"),
        "{p}"
    );
    let p = assert_problem(app.get_public("/v1/events/xyzzy").await, 404).await;
    assert!(
        !p["detail"].as_str().unwrap().contains("did you mean"),
        "{p}"
    );
}

#[tokio::test]
async fn the_schema_index_lists_every_served_file() {
    let app = spawn_app().await;
    let index = json(app.get_public("/v1/schemas").await).await;
    assert_eq!(index["contractVersion"], 2);
    let files = index["schemas"].as_array().unwrap();
    let paths: BTreeSet<&str> = files.iter().map(|f| f["path"].as_str().unwrap()).collect();
    let mut expected: BTreeSet<String> = [
        "catalog.json",
        "registration.json",
        "envelope.json",
        "ingest.json",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for name in EVENTS {
        expected.insert(format!("events/{name}.json"));
    }
    // The sources: one file per engine and their schema.
    expected.insert("source.json".to_owned());
    for engine in ["openwa", "waha", "evolution"] {
        expected.insert(format!("sources/{engine}.json"));
    }
    assert_eq!(
        paths,
        expected.iter().map(String::as_str).collect::<BTreeSet<_>>()
    );
    assert!(
        !paths.iter().any(|p| p.starts_with("examples/")),
        "test fixtures are not served"
    );
    for f in files {
        let path = f["path"].as_str().unwrap();
        assert_eq!(f["url"], format!("{}/v1/schemas/{path}", app.base));
        let res = app.get_public(&format!("/v1/schemas/{path}")).await;
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers()["etag"], f["etag"].as_str().unwrap(), "{path}");
        let doc: Value = res.json().await.unwrap();
        if path == "catalog.json" {
            assert_eq!(doc["contractVersion"], 2);
        } else if path.starts_with("sources/") {
            assert_eq!(
                path,
                format!("sources/{}.json", doc["engine"].as_str().unwrap())
            );
        } else {
            assert_eq!(doc["$id"], f["url"], "{path}");
            assert_eq!(doc["title"], f["title"], "{path}");
        }
    }
}

#[tokio::test]
async fn schema_files_carry_etag_and_cache_control_and_answer_304() {
    let app = spawn_app().await;
    let path = "/v1/schemas/registration.json";
    let res = app.get_public(path).await;
    assert_eq!(res.status(), 200);
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() > 10,
        "a strong ETag: {etag}"
    );
    assert_eq!(res.headers()["cache-control"], "public, max-age=300");
    assert_eq!(res.headers()["content-type"], "application/schema+json");
    let first = res.bytes().await.unwrap();

    // Stable across requests.
    let again = app.get_public(path).await;
    assert_eq!(again.headers()["etag"], etag.as_str());
    assert_eq!(again.bytes().await.unwrap(), first);

    for if_none_match in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"other\", {etag}"),
        "*".to_owned(),
    ] {
        let res = app
            .client
            .get(app.url(path))
            .header("If-None-Match", &if_none_match)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 304, "If-None-Match: {if_none_match}");
        assert_eq!(res.headers()["etag"], etag.as_str());
        assert_eq!(res.headers()["cache-control"], "public, max-age=300");
        assert!(res.bytes().await.unwrap().is_empty());
    }

    let res = app
        .client
        .get(app.url(path))
        .header("If-None-Match", "\"not-the-etag\"")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().await.unwrap(), first);

    // Each file has its own ETag.
    let other = app.get_public("/v1/schemas/envelope.json").await;
    assert_ne!(other.headers()["etag"], etag.as_str());

    let catalog = app.get_public("/v1/schemas/catalog.json").await;
    assert_eq!(catalog.headers()["content-type"], "application/json");
}

#[tokio::test]
async fn an_unknown_schema_file_is_a_404_problem() {
    let app = spawn_app().await;
    for path in [
        "/v1/schemas/nope.json",
        "/v1/schemas/events/session.connected.json",
        "/v1/schemas/examples/invalid/registration-empty-events.json",
        "/v1/schemas/events/",
    ] {
        let p = assert_problem(app.get_public(path).await, 404).await;
        assert_eq!(p["type"], "urn:wabridge:problem:not-found", "{path}");
    }
}

#[tokio::test]
async fn a_configured_public_url_is_used_in_every_id_and_schema_url() {
    let app = spawn_app_with(|c| c.public_url = Some("https://bridge.example.com".into())).await;
    let events = json(app.get_public("/v1/events").await).await;
    for e in events["events"].as_array().unwrap() {
        let name = e["name"].as_str().unwrap();
        assert_eq!(
            e["schemaUrl"],
            format!("https://bridge.example.com/v1/schemas/events/{name}.json")
        );
        // Served here, identified by the public URL.
        let schema = json(
            app.get_public(&format!("/v1/schemas/events/{name}.json"))
                .await,
        )
        .await;
        assert_eq!(schema["$id"], e["schemaUrl"]);
    }
    let index = json(app.get_public("/v1/schemas").await).await;
    for f in index["schemas"].as_array().unwrap() {
        assert!(
            f["url"]
                .as_str()
                .unwrap()
                .starts_with("https://bridge.example.com/v1/schemas/"),
            "{f}"
        );
    }
    let reg = json(app.get_public("/v1/schemas/registration.json").await).await;
    assert_eq!(
        reg["$id"],
        "https://bridge.example.com/v1/schemas/registration.json"
    );

    // Another base is other bytes, hence another ETag.
    let default_app = spawn_app().await;
    let a = app.get_public("/v1/schemas/registration.json").await;
    let b = default_app
        .get_public("/v1/schemas/registration.json")
        .await;
    assert_ne!(a.headers()["etag"], b.headers()["etag"]);
}

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    let h = json(app.get_public("/healthz").await).await;
    assert_eq!(h["status"], "ok");
    let r = json(app.get_public("/readyz").await).await;
    assert_eq!(r["status"], "ready");
}

#[tokio::test]
async fn an_unknown_route_is_a_404_problem() {
    let app = spawn_app().await;
    for path in ["/", "/nope", "/v1", "/v2/events", "/v1/event"] {
        let p = assert_problem(app.get_public(path).await, 404).await;
        assert_eq!(p["type"], "urn:wabridge:problem:not-found", "{path}");
        assert!(p["detail"].as_str().unwrap().contains("/v1"), "{p}");
    }
}

#[tokio::test]
async fn a_wrong_method_is_a_405_problem() {
    let app = spawn_app().await;
    let cases = [
        (reqwest::Method::DELETE, "/v1/events"),
        (reqwest::Method::POST, "/v1/events/session.qr"),
        (reqwest::Method::POST, "/v1/schemas/registration.json"),
        (reqwest::Method::PUT, "/v1/webhooks"),
        (reqwest::Method::GET, "/v1/webhooks/validate"),
        (reqwest::Method::POST, "/healthz"),
    ];
    for (method, path) in cases {
        let res = app
            .client
            .request(method.clone(), app.url(path))
            .header("X-API-Key", ADMIN_KEY)
            .send()
            .await
            .unwrap();
        let p = assert_problem(res, 405).await;
        assert_eq!(
            p["type"], "urn:wabridge:problem:method-not-allowed",
            "{method} {path}"
        );
    }
}
