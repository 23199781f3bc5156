//! The real binary: `wabridge validate`, `wabridge schemas export` and `--help`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

use crate::helpers::*;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wabridge"))
        .args(args)
        .env_remove("WABRIDGE_PUBLIC_URL")
        .output()
        .expect("the wabridge binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn validate_accepts_a_valid_file_and_prints_the_normalized_registration() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "reg.json",
        &json!({
            "url": "https://n8n.example.com/webhook/abc",
            "events": ["session.qr", "message.*", "session.qr"],
            "secret": "a-plain-openwa-secret"
        })
        .to_string(),
    );
    let out = run(&["validate", file.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let (first, rest) = stdout.split_once('\n').unwrap();
    assert!(first.ends_with(": valid"), "{first}");
    let normalized: Value = serde_json::from_str(rest).unwrap();
    assert_eq!(normalized["url"], "https://n8n.example.com/webhook/abc");
    assert_eq!(normalized["events"], json!(["session.qr", "message.*"]));
    assert_eq!(normalized["secret"], "provided");
    assert!(!stdout.contains("a-plain-openwa-secret"), "{stdout}");
}

#[test]
fn validate_reads_standard_input() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wabridge"))
        .args(["validate", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"url": "http://127.0.0.1:5678/hook", "events": ["*"]}"#)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("\"secret\": \"generated\""));
}

#[test]
fn validate_refuses_an_invalid_file_with_pointers_codes_and_suggestions() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "reg.json",
        &json!({
            "url": "https://n8n.example.com/webhook/abc",
            "events": ["group.join", "mesage.received", "session.connected"],
            "secret": "hunter2-secret"
        })
        .to_string(),
    );
    // group.join fires on the default bridge (OpenWA's current line), not on one fed by
    // OpenWA v0.4.3.
    let out = run(&["validate", file.to_str().unwrap()]);
    assert!(
        text(&out.stderr).contains("3 problems"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&[
        "validate",
        "--sources",
        "openwa@0.4.3",
        file.to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(text(&out.stdout).is_empty(), "{}", text(&out.stdout));
    assert!(stderr.contains("4 problems"), "{stderr}");
    for expected in [
        "/events/0  [reserved_event]",
        "would never fire",
        "/events/1  [unknown_event]",
        "suggestion: message.received",
        "/events/2  [unknown_event]",
        "suggestion: session.authenticated",
        "/secret  [invalid_secret]",
    ] {
        assert!(stderr.contains(expected), "{expected:?} in:\n{stderr}");
    }
    assert!(!stderr.contains("hunter2-secret"), "{stderr}");
}

#[test]
fn validate_fails_readably_on_a_missing_file_or_invalid_json() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.json");
    let out = run(&["validate", missing.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot read"), "{stderr}");
    assert!(stderr.contains("missing.json"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let broken = write(dir.path(), "broken.json", "{\"url\": ");
    let out = run(&["validate", broken.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is not valid JSON"), "{stderr}");
    assert!(stderr.contains("broken.json"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test]
async fn schemas_export_writes_every_served_file() {
    let app = spawn_app().await;
    let index: Value = app.get_public("/v1/schemas").await.json().await.unwrap();
    let served = index["schemas"].as_array().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let out = run(&[
        "schemas",
        "export",
        dir.path().to_str().unwrap(),
        "--public-url",
        &app.base,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("wrote {} schema files", served.len())),
        "{}",
        text(&out.stdout)
    );

    let mut written = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            for inner in std::fs::read_dir(&path).unwrap() {
                written.push(inner.unwrap().path());
            }
        } else {
            written.push(path);
        }
    }
    // Every schema file, and the OpenAPI and AsyncAPI documents (tests/api/apidoc.rs).
    assert_eq!(written.len(), served.len() + 2);
    for name in [
        "catalog.json",
        "registration.json",
        "envelope.json",
        "events/session.qr.json",
    ] {
        assert!(dir.path().join(name).is_file(), "{name}");
    }
    assert_eq!(
        std::fs::read_dir(dir.path().join("events"))
            .unwrap()
            .count(),
        24
    );
    // With the server's base, the exported files are byte for byte what it serves.
    for f in served {
        let path = f["path"].as_str().unwrap();
        let exported = std::fs::read(dir.path().join(path)).unwrap();
        let res = app.get_public(&format!("/v1/schemas/{path}")).await;
        assert_eq!(
            res.bytes().await.unwrap().as_ref(),
            exported.as_slice(),
            "{path}"
        );
    }
}

#[test]
fn schemas_export_defaults_to_the_canonical_base() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["schemas", "export", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let reg: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("registration.json")).unwrap())
            .unwrap();
    assert_eq!(
        reg["$id"],
        format!(
            "{}/v1/schemas/registration.json",
            wabridge::catalog::CANONICAL_BASE
        )
    );
    // Identical to the file in the repository.
    let committed: Value = serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schemas/registration.json"
    )))
    .unwrap();
    assert_eq!(reg, committed);
}

#[test]
fn help_describes_the_commands() {
    let out = run(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    for command in ["serve", "validate", "schemas"] {
        assert!(help.contains(command), "{command} in:\n{help}");
    }
    let out = run(&["validate", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("offline"));
    let out = run(&["serve", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    for flag in [
        "--listen",
        "--database-url",
        "--public-url",
        "WABRIDGE_API_KEY",
    ] {
        assert!(help.contains(flag), "{flag} in:\n{help}");
    }
    let out = run(&["no-such-command"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!text(&out.stderr).is_empty());
}
