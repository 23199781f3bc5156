//! The OpenAPI 3.1 and AsyncAPI 3.0 documents, served by a real bridge and checked by
//! independent tools: `openapi-spec-validator` (PyPI) and `@asyncapi/parser` (npm,
//! tests/asyncapi). The receivers of docs/integrations.md (tests/receivers, on the official
//! `standardwebhooks` libraries) verify real deliveries. A missing tool fails, never skips.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::*;
use crate::real_binary::free_port;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

async fn document(app: &TestApp, path: &str) -> (Value, Vec<u8>) {
    let res = app.get_public(path).await;
    assert_eq!(res.status(), 200, "{path}");
    assert_eq!(res.headers()["content-type"], "application/json", "{path}");
    let bytes = res.bytes().await.unwrap().to_vec();
    (serde_json::from_slice(&bytes).unwrap(), bytes)
}

/// Runs an independent validator on a file; panics with its output unless it succeeds.
fn validate_with(program: &str, args: &[&str], file: &Path, hint: &str) -> String {
    let out = std::process::Command::new(program)
        .args(args)
        .arg(file)
        .current_dir(REPO)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} ({hint}): {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{program} {args:?} refused the document ({hint}):\n{text}"
    );
    text
}

#[tokio::test]
async fn the_openapi_document_is_valid_for_openapi_spec_validator() {
    let app = spawn_app().await;
    let (doc, bytes) = document(&app, "/v1/openapi.json").await;
    assert_eq!(doc["openapi"], "3.1.0");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, bytes).unwrap();
    let out = validate_with(
        "python3",
        &["-m", "openapi_spec_validator"],
        &file,
        "pip install -r tests/requirements.txt",
    );
    assert!(out.contains("OK"), "{out}");
}

#[tokio::test]
async fn the_asyncapi_document_is_valid_for_the_asyncapi_parser() {
    let app = spawn_app().await;
    let (doc, bytes) = document(&app, "/v1/asyncapi.json").await;
    assert_eq!(doc["asyncapi"], "3.0.0");
    let parser = Path::new(REPO).join("tests/asyncapi/node_modules/@asyncapi/parser");
    assert!(
        parser.is_dir(),
        "the AsyncAPI parser is not installed: run `npm ci` in tests/asyncapi (scripts/test.sh does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("asyncapi.json");
    std::fs::write(&file, bytes).unwrap();
    let out = validate_with(
        "node",
        &["tests/asyncapi/validate.mjs"],
        &file,
        "Node.js and `npm ci` in tests/asyncapi",
    );
    assert!(
        out.contains("asyncapi: valid AsyncAPI 3.0.0 document"),
        "{out}"
    );
}

/// The path of an operation with every parameter filled in.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| match seg {
            "{path}" => "catalog.json",
            s if s.starts_with('{') => "x",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Every documented operation reaches a handler (the unit test in src/http/apidoc/tests.rs
/// checks the other direction: every route of the router is documented).
#[tokio::test]
async fn every_documented_operation_is_served() {
    let app = spawn_app().await;
    let (doc, _) = document(&app, "/v1/openapi.json").await;
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 20);
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let res = app
                .client
                .request(
                    method.to_uppercase().parse().unwrap(),
                    app.url(&concrete(path)),
                )
                .header("X-API-Key", ADMIN_KEY)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            let fallback = (status == 404
                && body["detail"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("no such route")))
                || status == 405;
            assert!(
                !fallback,
                "{method} {path} is documented but not routed: {status} {body}"
            );
            let documented: Vec<&String> = item[method]["responses"]
                .as_object()
                .unwrap()
                .keys()
                .collect();
            assert!(
                documented.iter().any(|s| *s == &status.to_string()),
                "{method} {path} answered {status}, documented {documented:?}: {body}"
            );
        }
    }
}

#[tokio::test]
async fn webhooks_are_the_events_that_can_fire_on_this_bridge() {
    for sources in ["openwa", "openwa@0.4.3"] {
        let app = spawn_app_fed_by(sources).await;
        let (doc, _) = document(&app, "/v1/openapi.json").await;
        let (asyncapi, _) = document(&app, "/v1/asyncapi.json").await;
        let events: Value = app.get_public("/v1/events").await.json().await.unwrap();
        let available: BTreeSet<String> = events["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["status"] == "available")
            .map(|e| e["name"].as_str().unwrap().to_owned())
            .collect();
        let webhooks: BTreeSet<String> = doc["webhooks"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(webhooks, available, "{sources}");
        let messages: BTreeSet<String> = asyncapi["components"]["messages"]
            .as_object()
            .unwrap()
            .values()
            .map(|m| m["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(messages, available, "{sources}");
        // The delivery of each names its event and its payload schema, embedded.
        let hook = &doc["webhooks"]["session.status"]["post"];
        let body = hook["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .unwrap();
        let name = body.rsplit('/').next().unwrap();
        let schema = &doc["components"]["schemas"][name];
        assert_eq!(schema["properties"]["event"]["const"], "session.status");
        assert_eq!(
            schema["properties"]["data"]["$ref"],
            "#/components/schemas/SessionStatusData"
        );
        assert!(
            doc["components"]["schemas"]["SessionStatusData"]["properties"]["status"].is_object()
        );
    }
    let old = spawn_app_fed_by("openwa@0.4.3").await;
    let (doc, _) = document(&old, "/v1/openapi.json").await;
    assert!(doc["webhooks"].get("group.join").is_none());
}

/// The headers a real delivery carries are the ones the document lists, no more, no fewer.
#[tokio::test]
async fn a_real_delivery_carries_exactly_the_documented_headers() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    app.register(&json!({"url": receiver.url, "events": ["session.*"]}))
        .await;
    app.ingest_ok(&session_event("session.status", "s1")).await;
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    let (doc, _) = document(&app, "/v1/openapi.json").await;
    let params = doc["webhooks"]["session.status"]["post"]["parameters"]
        .as_array()
        .unwrap();
    let documented: BTreeSet<String> = params
        .iter()
        .map(|p| {
            let name = p["$ref"].as_str().unwrap().rsplit('/').next().unwrap();
            doc["components"]["parameters"][name]["name"]
                .as_str()
                .unwrap()
                .to_ascii_lowercase()
        })
        .collect();
    let sent: BTreeSet<String> = got[0]
        .headers
        .keys()
        .map(|k| k.as_str().to_owned())
        .filter(|k| !["content-type", "content-length", "host", "accept"].contains(&k.as_str()))
        .collect();
    let required: BTreeSet<String> = params
        .iter()
        .map(|p| p["$ref"].as_str().unwrap().rsplit('/').next().unwrap())
        .filter(|n| doc["components"]["parameters"][n]["required"] == true)
        .map(|n| {
            doc["components"]["parameters"][n]["name"]
                .as_str()
                .unwrap()
                .to_ascii_lowercase()
        })
        .collect();
    assert!(
        sent.is_subset(&documented),
        "sent {sent:?}, documented {documented:?}"
    );
    assert!(
        required.is_subset(&sent),
        "required {required:?}, sent {sent:?}"
    );
}

#[tokio::test]
async fn schemas_export_writes_the_served_documents() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wabridge"))
        .args([
            "schemas",
            "export",
            dir.path().to_str().unwrap(),
            "--public-url",
            &app.base,
        ])
        .env_remove("WABRIDGE_SOURCES")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in ["openapi.json", "asyncapi.json"] {
        let (_, served) = document(&app, &format!("/v1/{name}")).await;
        assert_eq!(
            std::fs::read(dir.path().join(name)).unwrap(),
            served,
            "{name}"
        );
    }
}

// --- The receivers of docs/integrations.md ----------------------------------------------------

/// Starts a receiver program on a free port with the secret, registers it, sends an event,
/// and waits for the receiver to print that it verified the delivery; then checks that a forged
/// request is refused.
async fn receiver_verifies(program: &str, script: &str, secret: &str) {
    let app = spawn_app().await;
    let port = free_port();
    let mut child = tokio::process::Command::new(program)
        .arg(script)
        .current_dir(Path::new(REPO).join("tests/receivers"))
        .env("WABRIDGE_WEBHOOK_SECRET", secret)
        .env("PORT", port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program} {script}: {e}"));
    let url = format!("http://127.0.0.1:{port}/hook");
    // Wait until it listens.
    let mut up = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            up = true;
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            use tokio::io::AsyncReadExt;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .await
                .unwrap();
            panic!(
                "{program} {script} exited with {status}: {err} (install: tests/requirements.txt, npm ci in tests/receivers)"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "{program} {script} does not listen on {port}");

    let reg = app
        .register(&json!({"url": url, "events": ["session.*"], "secret": secret}))
        .await;
    let outcome = app.ingest_ok(&session_event("session.status", "s1")).await;
    let key = outcome["idempotencyKey"].as_str().unwrap().to_owned();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(15), lines.next_line())
        .await
        .unwrap_or_else(|_| panic!("{script} printed nothing within 15 s"))
        .unwrap()
        .unwrap_or_default();
    assert_eq!(line, format!("verified session.status {key}"));

    // The bridge saw the 204.
    let id = reg["id"].as_str().unwrap();
    let mut delivered = false;
    for _ in 0..50 {
        let list: Value = app
            .get(&format!("/v1/webhooks/{id}/deliveries"))
            .await
            .json()
            .await
            .unwrap();
        if list["data"][0]["lastStatus"] == 204 {
            delivered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(delivered, "the bridge did not record the receiver's 204");

    // A forged delivery is refused.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let res = app
        .client
        .post(&url)
        .header("webhook-id", "ses_forged")
        .header("webhook-timestamp", now.to_string())
        .header(
            "webhook-signature",
            "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )
        .header("content-type", "application/json")
        .body(r#"{"event":"session.status"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "{script} accepted a forged delivery");
}

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const PLAIN: &str = "correct-horse-battery-staple";

#[tokio::test]
async fn the_python_receiver_verifies_real_deliveries() {
    receiver_verifies("python3", "receiver.py", WHSEC).await;
    receiver_verifies("python3", "receiver.py", PLAIN).await;
}

#[tokio::test]
async fn the_node_receiver_verifies_real_deliveries() {
    assert!(
        Path::new(REPO)
            .join("tests/receivers/node_modules/standardwebhooks")
            .is_dir(),
        "run `npm ci` in tests/receivers (scripts/test.sh does)"
    );
    receiver_verifies("node", "receiver.mjs", WHSEC).await;
    receiver_verifies("node", "receiver.mjs", PLAIN).await;
}

#[test]
fn docs_integrations_shows_the_tested_receivers_verbatim() {
    let doc = include_str!("../../docs/integrations.md");
    for receiver in [
        include_str!("../receivers/receiver.py"),
        include_str!("../receivers/receiver.mjs"),
    ] {
        assert!(
            doc.contains(receiver.trim_end()),
            "docs/integrations.md must show tests/receivers/* as they are tested"
        );
    }
}
