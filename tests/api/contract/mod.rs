//! The contract snapshot guard: the published contract (`Catalog::published_contract`) against
//! the committed `tests/snapshots/contract-v<N>.json`, judged by the compatibility check
//! (`compat.rs`), which is test code only and does not ship in the binary. Self-tests show the
//! guard fails on breaking changes (synthetic ones and `tests/snapshots/narrowing-v2.json`).

mod compat;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use wabridge::catalog::{CANONICAL_BASE, Catalog};

use compat::{BreakingChange, breaking_changes};

/// Engine descriptions under `schemas/`: never part of the published contract.
const SOURCES_DIR: &str = "sources/";

fn catalog() -> Catalog {
    Catalog::load(CANONICAL_BASE).expect("the embedded catalog loads")
}

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

const SNAPSHOT_DIR: &str = "tests/snapshots";
const UPDATE_SNAPSHOT: &str = "UPDATE_CONTRACT_SNAPSHOT";

fn snapshot_path(version: u64) -> PathBuf {
    repo_path(SNAPSHOT_DIR).join(format!("contract-v{version}.json"))
}

/// The newest committed snapshot: `tests/snapshots/contract-v<N>.json` with the highest N.
fn latest_snapshot() -> Option<(u64, PathBuf)> {
    std::fs::read_dir(repo_path(SNAPSHOT_DIR))
        .ok()?
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let name = path.file_name()?.to_str()?;
            let version = name
                .strip_prefix("contract-v")?
                .strip_suffix(".json")?
                .parse()
                .ok()?;
            Some((version, path))
        })
        .max_by_key(|(version, _)| *version)
}

fn contract_version(contract: &Value) -> Option<u64> {
    contract.get("contractVersion").and_then(Value::as_u64)
}

/// How the current contract relates to the committed snapshot.
#[derive(Debug)]
enum Verdict {
    /// Nothing changed.
    Unchanged,
    /// Changed without breaking anything (new events, optional fields, descriptions...).
    Additive,
    /// Breaking changes under the same contract version: not allowed.
    Breaking(Vec<BreakingChange>),
    /// The contract version was raised: the snapshot must be recorded anew.
    Bumped {
        from: u64,
        to: u64,
        changes: Vec<BreakingChange>,
    },
    /// The contract version went down.
    Downgraded { from: u64, to: u64 },
}

fn judge(snapshot: &Value, current: &Value) -> Verdict {
    let from = contract_version(snapshot).unwrap_or(0);
    let to = contract_version(current).unwrap_or(0);
    let changes = breaking_changes(snapshot, current);
    match to.cmp(&from) {
        std::cmp::Ordering::Less => Verdict::Downgraded { from, to },
        std::cmp::Ordering::Greater => Verdict::Bumped { from, to, changes },
        std::cmp::Ordering::Equal if !changes.is_empty() => Verdict::Breaking(changes),
        std::cmp::Ordering::Equal if snapshot == current => Verdict::Unchanged,
        std::cmp::Ordering::Equal => Verdict::Additive,
    }
}

fn list(changes: &[BreakingChange]) -> String {
    changes
        .iter()
        .map(|c| format!("  - {}: {}", c.path, c.what))
        .collect::<Vec<_>>()
        .join("\n")
}

fn write_snapshot(version: u64, contract: &Value) -> PathBuf {
    let path = snapshot_path(version);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut text = serde_json::to_string_pretty(contract).unwrap();
    text.push('\n');
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_published_contract_has_no_breaking_change_against_the_snapshot() {
    let current = catalog().published_contract();
    let version = contract_version(&current).expect("contractVersion");
    let update = std::env::var_os(UPDATE_SNAPSHOT).is_some_and(|v| v == "1");
    let Some((_, path)) = latest_snapshot() else {
        if update {
            let path = write_snapshot(version, &current);
            eprintln!("note: recorded the contract snapshot {}", path.display());
            return;
        }
        panic!(
            "no contract snapshot in {SNAPSHOT_DIR}/: record one with\n  \
             {UPDATE_SNAPSHOT}=1 cargo test --test api contract::the_published_contract\n\
             and commit {SNAPSHOT_DIR}/contract-v{version}.json"
        );
    };
    let text = std::fs::read_to_string(&path).unwrap();
    let snapshot: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    match judge(&snapshot, &current) {
        Verdict::Unchanged => {}
        Verdict::Additive if update => {
            write_snapshot(version, &current);
            eprintln!("note: rewrote {} (additive changes)", path.display());
        }
        Verdict::Additive => eprintln!(
            "note: the published contract changed without breaking anything; record it with \
             {UPDATE_SNAPSHOT}=1 so that later changes are judged against it ({})",
            path.display()
        ),
        Verdict::Breaking(changes) => panic!(
            "the published contract has breaking changes against {} (contractVersion {version}):\n\
             {}\n\
             Either bump contractVersion in schemas/catalog.json (and the snapshot: rerun with \
             {UPDATE_SNAPSHOT}=1 after the bump) or make the change additive.",
            path.display(),
            list(&changes)
        ),
        Verdict::Bumped { from, to, changes } if update => {
            let written = write_snapshot(to, &current);
            eprintln!(
                "note: contractVersion {from} -> {to}; recorded {} ({} breaking changes against v{from}:\n{})",
                written.display(),
                changes.len(),
                list(&changes)
            );
        }
        Verdict::Bumped { from, to, changes } => panic!(
            "contractVersion was bumped from {from} to {to}: record the new contract with \
             {UPDATE_SNAPSHOT}=1 (writes {SNAPSHOT_DIR}/contract-v{to}.json) and commit it.\n\
             Breaking changes against v{from}:\n{}",
            list(&changes)
        ),
        Verdict::Downgraded { from, to } => panic!(
            "contractVersion went down from {from} (in {}) to {to}",
            path.display()
        ),
    }
}

fn committed_snapshot() -> Value {
    let (_, path) = latest_snapshot().expect("a committed contract snapshot");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_snapshot_guard_detects_synthetic_breaking_changes() {
    let snapshot = committed_snapshot();
    let current = catalog().published_contract();
    assert!(
        matches!(judge(&snapshot, &snapshot), Verdict::Unchanged),
        "a contract is unchanged against itself"
    );

    let assert_breaking = |contract: &Value, path_part: &str| match judge(&snapshot, contract) {
        Verdict::Breaking(changes) => assert!(
            changes.iter().any(|c| c.path.contains(path_part)),
            "expected a change at {path_part}: {changes:#?}"
        ),
        other => panic!("expected a breaking change at {path_part}, got {other:?}"),
    };

    // An event removed from the catalog.
    let mut removed = current.clone();
    removed["catalog"]["events"]
        .as_array_mut()
        .unwrap()
        .retain(|e| e["name"] != "session.qr");
    assert_breaking(&removed, "catalog.json#/events/session.qr");

    // A schema file removed.
    let mut no_file = current.clone();
    no_file["schemas"]
        .as_object_mut()
        .unwrap()
        .remove("events/message.ack.json");
    assert_breaking(&no_file, "events/message.ack.json");

    // A new required field in a payload.
    let mut required = current.clone();
    let schema = &mut required["schemas"]["events/session.status.json"];
    schema["properties"]["engine"] = json!({"type": "string"});
    schema["required"]
        .as_array_mut()
        .unwrap()
        .push(json!("engine"));
    assert_breaking(&required, "events/session.status.json#/required");

    // A narrowed type.
    let mut narrowed = current.clone();
    narrowed["schemas"]["registration.json"]["properties"]["sessionId"]["type"] = json!("string");
    assert_breaking(&narrowed, "registration.json#/properties/sessionId/type");

    // An enum value removed.
    let mut enum_cut = current.clone();
    enum_cut["schemas"]["events/session.status.json"]["properties"]["status"]["enum"]
        .as_array_mut()
        .unwrap()
        .retain(|v| v != "qr_ready");
    assert_breaking(
        &enum_cut,
        "events/session.status.json#/properties/status/enum",
    );

    // An available event becoming reserved.
    let mut demoted = current.clone();
    for e in demoted["catalog"]["events"].as_array_mut().unwrap() {
        if e["name"] == "message.revoked" {
            e["status"] = json!("reserved");
        }
    }
    assert_breaking(&demoted, "catalog.json#/events/message.revoked/status");

    // The same breaking change passes once the version is bumped.
    let mut bumped = removed.clone();
    let next = contract_version(&snapshot).unwrap() + 1;
    bumped["contractVersion"] = json!(next);
    bumped["catalog"]["contractVersion"] = json!(next);
    match judge(&snapshot, &bumped) {
        Verdict::Bumped { changes, .. } => assert!(!changes.is_empty()),
        other => panic!("expected a bump, got {other:?}"),
    }

    // Going back down is refused.
    let mut down = current.clone();
    down["contractVersion"] = json!(0);
    assert!(matches!(
        judge(&snapshot, &down),
        Verdict::Downgraded { .. }
    ));
}

#[test]
fn additive_changes_pass_the_snapshot_guard() {
    let snapshot = committed_snapshot();
    let mut added = snapshot.clone();
    added["catalog"]["events"]
        .as_array_mut()
        .unwrap()
        .push(json!({
            "name": "message.pinned",
            "status": "available",
            "description": "A message was pinned.",
            "schema": "events/message.pinned.json"
        }));
    added["schemas"]["events/message.pinned.json"] = json!({"type": "object"});
    added["schemas"]["events/session.status.json"]["properties"]["engine"] =
        json!({"type": "string"});
    added["schemas"]["events/session.status.json"]["properties"]["status"]["enum"]
        .as_array_mut()
        .unwrap()
        .push(json!("paused"));
    added["schemas"]["envelope.json"]["description"] = json!("Reworded.");
    assert!(
        matches!(judge(&snapshot, &added), Verdict::Additive),
        "{:?}",
        judge(&snapshot, &added)
    );
}

#[test]
fn the_snapshot_is_the_published_contract_of_the_canonical_catalog() {
    // The committed snapshot has the shape published_contract() produces, so the guard compares
    // like with like (a snapshot of another shape would compare as "everything removed").
    let snapshot = committed_snapshot();
    let current = catalog().published_contract();
    let keys = |v: &Value| -> BTreeSet<String> { v.as_object().unwrap().keys().cloned().collect() };
    assert_eq!(keys(&snapshot), keys(&current));
    assert!(snapshot["catalog"]["events"].as_array().is_some());
    for (path, schema) in snapshot["schemas"].as_object().unwrap() {
        assert!(
            schema["$id"]
                .as_str()
                .is_some_and(|id| id.starts_with(CANONICAL_BASE)),
            "{path}: the snapshot is taken with the canonical base"
        );
    }
}

// ------------------------------------------------------------ contract v1 -> v2 and its guard

fn snapshot(version: u64) -> Value {
    let path = snapshot_path(version);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn contract_v2_is_additive_over_v1_and_is_the_published_contract() {
    let v1 = snapshot(1);
    let v2 = snapshot(2);
    assert_eq!(contract_version(&v1), Some(1));
    assert_eq!(contract_version(&v2), Some(2));
    let changes = breaking_changes(&v1, &v2);
    assert!(
        changes.is_empty(),
        "v1 -> v2 must be additive:\n{}",
        list(&changes)
    );
    match judge(&v1, &v2) {
        Verdict::Bumped {
            from: 1,
            to: 2,
            changes,
        } => assert!(changes.is_empty()),
        other => panic!("expected a bump from 1 to 2, got {other:?}"),
    }
    // The published contract is v2 exactly: every served schema, nothing else.
    let current = catalog().published_contract();
    assert!(
        matches!(judge(&v2, &current), Verdict::Unchanged),
        "the catalog differs from {}: record it with {UPDATE_SNAPSHOT}=1",
        snapshot_path(2).display()
    );
    let files = v2["schemas"].as_object().unwrap();
    assert!(!files.keys().any(|k| k.starts_with(SOURCES_DIR)));
    assert!(files.contains_key("events/message.receipt.json"));
}

#[test]
fn narrowing_edits_of_v2_are_breaking() {
    // tests/snapshots/narrowing-v2.json: deliberate edits of the v2 contract, each narrowing
    // something, with where the guard must report it.
    let cases = serde_json::from_str::<Value>(
        &std::fs::read_to_string(repo_path(SNAPSHOT_DIR).join("narrowing-v2.json")).unwrap(),
    )
    .unwrap();
    let cases = cases["cases"].as_array().unwrap();
    assert!(cases.len() >= 4);
    let v2 = snapshot(2);
    for case in cases {
        let why = case["why"].as_str().unwrap();
        let mut edited = v2.clone();
        for edit in case["edits"].as_array().unwrap() {
            let pointer = edit["pointer"].as_str().unwrap();
            match edit.get("value") {
                Some(value) => {
                    let (parent, last) = pointer.rsplit_once('/').unwrap();
                    let last = last.replace("~1", "/").replace("~0", "~");
                    let target = edited
                        .pointer_mut(parent)
                        .unwrap_or_else(|| panic!("{why}: no {parent}"));
                    match target {
                        Value::Object(map) => {
                            map.insert(last, value.clone());
                        }
                        other => panic!("{why}: {parent} is {other}"),
                    }
                }
                None => {
                    let (parent, last) = pointer.rsplit_once('/').unwrap();
                    let last = last.replace("~1", "/").replace("~0", "~");
                    match edited.pointer_mut(parent) {
                        Some(Value::Object(map)) => assert!(map.remove(&last).is_some(), "{why}"),
                        Some(Value::Array(items)) => {
                            let before = items.len();
                            items.retain(|e| e["name"] != last.as_str());
                            assert!(items.len() < before, "{why}: nothing named {last}");
                        }
                        _ => panic!("{why}: no {parent}"),
                    }
                }
            }
        }
        let expect = case["breaksAt"].as_str().unwrap();
        match judge(&v2, &edited) {
            Verdict::Breaking(changes) => assert!(
                changes.iter().any(|c| c.path == expect),
                "{why}: expected a breaking change at {expect}, got:\n{}",
                list(&changes)
            ),
            other => panic!("{why}: expected breaking, got {other:?}"),
        }
    }
}
