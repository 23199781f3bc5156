//! The catalog is data: these tests are what keeps the data, everything derived from it (the
//! enums inside registration.json and envelope.json, the tables in docs/contract.md) and the
//! committed contract snapshot in agreement.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::*;
use crate::registration::parse_registration;

const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// Engine descriptions under `schemas/`: data checked against `schemas/source.json`.
const SOURCES_DIR: &str = "sources/";

fn catalog() -> Catalog {
    Catalog::load(CANONICAL_BASE).expect("the embedded catalog loads")
}

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The raw embedded file at `path` (relative to `schemas/`), parsed.
fn raw(path: &str) -> Value {
    let bytes = embedded()
        .get(path)
        .copied()
        .unwrap_or_else(|| panic!("schemas/{path} is not embedded"));
    serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("schemas/{path} is not JSON: {e}"))
}

/// Paths (relative to `schemas/`) of the JSON Schema documents: everything served except the
/// catalog itself, which is data rather than a schema.
fn schema_paths() -> Vec<&'static str> {
    let paths: Vec<&'static str> = embedded()
        .into_keys()
        .filter(|p| {
            *p != "catalog.json" && !p.starts_with("examples/") && !p.starts_with(SOURCES_DIR)
        })
        .collect();
    // 24 event payloads + registration, envelope, ingest and source: an empty list would make
    // every test below pass without checking anything.
    assert!(paths.len() >= 28, "too few schema files: {paths:?}");
    paths
}

fn compile(schema: &Value) -> jsonschema::Validator {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(schema)
        .unwrap_or_else(|e| panic!("schema does not compile: {e}"))
}

fn errors_of(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

// ------------------------------------------------------------------------- files and schemas

#[test]
fn embedded_files_are_exactly_the_json_files_under_schemas() {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "json") {
                let rel = path.strip_prefix(root).unwrap().to_string_lossy();
                out.insert(rel.replace('\\', "/"));
            }
        }
    }
    let root = repo_path("schemas");
    let mut on_disk = BTreeSet::new();
    walk(&root, &root, &mut on_disk);
    let files = embedded();
    let names: BTreeSet<String> = files.keys().map(|p| (*p).to_owned()).collect();
    assert_eq!(names, on_disk, "rebuild: the embedded files are stale");
    for path in &on_disk {
        let on_disk_bytes = std::fs::read(root.join(path)).unwrap();
        assert_eq!(
            files[path.as_str()],
            on_disk_bytes.as_slice(),
            "schemas/{path} differs from its embedded copy"
        );
    }
}

#[test]
fn every_schema_meta_validates_as_draft_2020_12() {
    for path in schema_paths() {
        let schema = raw(path);
        assert_eq!(
            schema.get("$schema").and_then(Value::as_str),
            Some(DRAFT_2020_12),
            "schemas/{path} must declare $schema {DRAFT_2020_12}"
        );
        if let Err(e) = jsonschema::draft202012::meta::validate(&schema) {
            panic!("schemas/{path} is not a valid draft 2020-12 schema: {e}");
        }
    }
}

#[test]
fn meta_validation_does_reject_a_broken_schema() {
    // Guards the test above: the meta-schema check is not a no-op.
    let broken = json!({"$schema": DRAFT_2020_12, "type": "strnig", "minLength": -1});
    assert!(jsonschema::draft202012::meta::validate(&broken).is_err());
}

#[test]
fn every_schema_has_examples_and_every_example_validates() {
    for path in schema_paths() {
        let schema = raw(path);
        let examples = schema
            .get("examples")
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("schemas/{path} has no examples"));
        assert!(!examples.is_empty(), "schemas/{path} has no examples");
        let validator = compile(&schema);
        for (i, example) in examples.iter().enumerate() {
            let errors = errors_of(&validator, example);
            assert!(
                errors.is_empty(),
                "schemas/{path} examples[{i}] is invalid: {errors:#?}"
            );
        }
    }
}

#[test]
fn catalog_examples_are_the_schema_examples_and_pass_the_compiled_validators() {
    let c = catalog();
    for e in c.events() {
        let examples = c.examples(&e.name);
        assert_eq!(
            examples,
            raw(&e.schema)["examples"].as_array().unwrap().as_slice()
        );
        let validator = c.validator(&e.name).expect("a compiled validator");
        for example in examples {
            assert!(validator.is_valid(example), "{}: {example}", e.name);
        }
        // And the validator is not permissive: a payload of the wrong type fails.
        assert!(!validator.is_valid(&json!("not an object")), "{}", e.name);
    }
}

#[test]
fn every_invalid_example_is_rejected_by_its_schema() {
    let files = embedded();
    let cases: Vec<&str> = files
        .keys()
        .copied()
        .filter(|p| p.starts_with("examples/invalid/"))
        .collect();
    assert!(cases.len() >= 5, "too few invalid examples: {cases:?}");
    let c = catalog();
    for case_path in cases {
        let case = raw(case_path);
        let schema_path = case["schema"]
            .as_str()
            .unwrap_or_else(|| panic!("{case_path}: 'schema' names the schema file"));
        let why = case["why"].as_str().unwrap_or_default();
        assert!(!why.is_empty(), "{case_path}: 'why' explains the case");
        let instance = &case["instance"];
        let schema = &c
            .files()
            .get(schema_path)
            .unwrap_or_else(|| panic!("{case_path}: no schema file {schema_path}"))
            .json;
        assert!(
            !compile(schema).is_valid(instance),
            "{case_path} should be rejected by {schema_path} ({why})"
        );
        // The registration rules and the registration schema agree on these cases.
        if schema_path == "registration.json" {
            assert!(
                parse_registration(&c, instance).is_err(),
                "{case_path} is rejected by the schema but accepted by the registration rules"
            );
        }
    }
}

#[test]
fn registration_schema_examples_pass_the_registration_rules() {
    let c = catalog();
    for example in raw("registration.json")["examples"].as_array().unwrap() {
        if let Err(errors) = parse_registration(&c, example) {
            panic!("{example} is a schema example but the rules refuse it: {errors:#?}");
        }
    }
}

// ------------------------------------------------------------------ the list of names exists once

#[test]
fn registration_events_enum_is_derived_from_the_catalog() {
    let derived = catalog().subscribable_patterns();
    let written = &raw("registration.json")["properties"]["events"]["items"]["enum"];
    assert_eq!(
        written,
        &json!(derived),
        "schemas/registration.json properties.events.items.enum must equal the subscribable \
         patterns derived from schemas/catalog.json; set it to:\n{}",
        serde_json::to_string_pretty(&derived).unwrap()
    );
    // Sanity of the derivation itself.
    assert!(derived.contains(&"*".to_owned()));
    assert!(derived.contains(&"message.*".to_owned()));
    assert!(derived.contains(&"session.*".to_owned()));
    for pattern in [
        "group.*",
        "call.*",
        "presence.*",
        "status.*",
        "message.receipt",
    ] {
        assert!(derived.contains(&pattern.to_owned()), "{pattern}");
    }
}

#[test]
fn envelope_event_enum_is_the_available_names() {
    let available: Vec<String> = catalog().available().map(|e| e.name.clone()).collect();
    let written = &raw("envelope.json")["properties"]["event"]["enum"];
    assert_eq!(
        written,
        &json!(available),
        "schemas/envelope.json properties.event.enum must equal the available events of \
         schemas/catalog.json; set it to:\n{}",
        serde_json::to_string_pretty(&available).unwrap()
    );
}

#[test]
fn the_catalog_holds_the_events_of_the_contract() {
    let c = catalog();
    let names: Vec<&str> = c.events().iter().map(|e| e.name.as_str()).collect();
    // OpenWA's current line: 24 events, none reserved.
    assert_eq!(
        names,
        [
            "message.received",
            "message.sent",
            "message.ack",
            "message.receipt",
            "message.failed",
            "message.revoked",
            "message.reaction",
            "message.edited",
            "status.received",
            "session.qr",
            "session.authenticated",
            "session.disconnected",
            "session.status",
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
        ]
    );
    assert_eq!(c.contract_version(), 2);
    for e in c.events() {
        assert_eq!(e.status, EventStatus::Available, "{}", e.name);
        assert!(
            !e.description.trim().is_empty(),
            "{} has a description",
            e.name
        );
        assert!(
            !e.description.to_lowercase().contains("reserved"),
            "{}: an available event is not described as reserved",
            e.name
        );
        // Only message.receipt is opt-in: high volume, named explicitly, as OpenWA does.
        assert_eq!(e.opt_in, e.name == "message.receipt", "{}", e.name);
    }
    let unique: BTreeSet<&str> = names.iter().copied().collect();
    assert_eq!(unique.len(), names.len(), "event names are unique");
}

#[test]
fn every_event_has_a_schema_file_and_every_schema_file_an_event() {
    let c = catalog();
    let mut referenced = BTreeSet::new();
    for e in c.events() {
        assert_eq!(
            e.schema,
            format!("{EVENT_SCHEMA_DIR}/{}.json", e.name),
            "{}: payload schemas are named after their event",
            e.name
        );
        let file = c
            .files()
            .get(&e.schema)
            .unwrap_or_else(|| panic!("{}: schemas/{} is missing", e.name, e.schema));
        assert_eq!(
            file.json["title"], e.name,
            "{}: its schema's title is the event name",
            e.name
        );
        assert!(referenced.insert(e.schema.clone()), "{} shared", e.schema);
    }
    let event_files: BTreeSet<String> = embedded()
        .into_keys()
        .filter(|p| p.starts_with(&format!("{EVENT_SCHEMA_DIR}/")))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        event_files, referenced,
        "every file under schemas/{EVENT_SCHEMA_DIR}/ belongs to exactly one catalog event"
    );
}

// ----------------------------------------------------------------------------------- $ids

#[test]
fn every_raw_id_is_the_canonical_served_url() {
    for path in schema_paths() {
        assert_eq!(
            raw(path)["$id"],
            format!("{CANONICAL_BASE}/v1/schemas/{path}"),
            "schemas/{path}: $id"
        );
    }
}

#[test]
fn served_ids_use_the_public_url() {
    let public = Catalog::load("https://bridge.example.com/").unwrap();
    let canonical = catalog();
    assert_eq!(public.public_url(), "https://bridge.example.com");
    assert_eq!(
        public.files().keys().collect::<Vec<_>>(),
        canonical.files().keys().collect::<Vec<_>>()
    );
    for path in schema_paths() {
        let file = &public.files()[path];
        let expected = format!("https://bridge.example.com/v1/schemas/{path}");
        assert_eq!(file.json["$id"], expected, "{path}");
        assert_eq!(public.schema_url(path), expected);
        // The bytes served are the document, and the ETag follows the bytes.
        let served: Value = serde_json::from_slice(&file.bytes).unwrap();
        assert_eq!(served, file.json, "{path}");
        assert_ne!(file.etag, canonical.files()[path].etag, "{path}");
        assert!(file.etag.starts_with('"') && file.etag.ends_with('"'));
    }
    // Only the $id changes.
    let mut rewritten = public.files()["events/session.status.json"].json.clone();
    rewritten["$id"] = raw("events/session.status.json")["$id"].clone();
    assert_eq!(rewritten, raw("events/session.status.json"));
    // The validators still work under another base.
    let v = public.validator("session.status").unwrap();
    assert!(v.is_valid(&json!({"sessionId": "s", "status": "ready"})));
    assert!(!v.is_valid(&json!({"sessionId": "s", "status": "online"})));
}

// ---------------------------------------------------------------------------- wrong names

#[test]
fn wrong_names_are_never_event_names_and_point_at_available_events() {
    let c = catalog();
    assert!(!c.wrong_names().is_empty());
    let mut seen = BTreeSet::new();
    for w in c.wrong_names() {
        assert!(seen.insert(w.name.as_str()), "{} listed twice", w.name);
        assert!(c.event(&w.name).is_none(), "{} is an event name", w.name);
        assert_eq!(c.lookup(&w.name), Lookup::Unknown, "{}", w.name);
        assert_eq!(
            c.event(&w.use_instead).map(|e| e.status),
            Some(EventStatus::Available),
            "{} must point at an available event, not {}",
            w.name,
            w.use_instead
        );
        assert!(!w.why.trim().is_empty(), "{} explains why", w.name);
    }
    assert_eq!(
        c.wrong_name("session.connected").unwrap().use_instead,
        "session.authenticated"
    );
    assert_eq!(
        c.wrong_name("session.qr_ready").unwrap().use_instead,
        "session.qr"
    );
}

#[test]
fn suggest_corrects_typos() {
    let c = catalog();
    for (typed, expected) in [
        ("mesage.received", "message.received"),
        ("message.recieved", "message.received"),
        ("Session.QR", "session.qr"),
        ("session_status", "session.status"),
        ("SESSION.STATUS", "session.status"),
        ("session.authenticted", "session.authenticated"),
        ("mesage.*", "message.*"),
        ("*.*", "*"),
        ("session", "session.*"),
        (" message.sent ", "message.sent"),
    ] {
        assert_eq!(suggest(&c, typed).as_deref(), Some(expected), "{typed:?}");
    }
}

#[test]
fn suggest_uses_the_wrong_names_table() {
    let c = catalog();
    for (typed, expected) in [
        ("session.connected", "session.authenticated"),
        ("session.qr_ready", "session.qr"),
        ("Session.Connected", "session.authenticated"),
        ("message.deleted", "message.revoked"),
        ("qr", "session.qr"),
    ] {
        assert_eq!(suggest(&c, typed).as_deref(), Some(expected), "{typed:?}");
    }
}

#[test]
fn suggest_returns_none_for_garbage() {
    let c = catalog();
    // Short garbage is one or two edits away from `*`: it must not be offered "everything".
    for garbage in [
        "",
        "x",
        "ab",
        "🙂",
        "xyzzy",
        "hello world",
        "order.created",
        "12345",
        "foo.*",
    ] {
        assert_eq!(suggest(&c, garbage), None, "{garbage:?}");
    }
}

#[test]
fn lookup_resolves_names_and_patterns() {
    let c = catalog();
    assert_eq!(c.lookup("*"), Lookup::Subscribable);
    assert_eq!(c.lookup("message.received"), Lookup::Subscribable);
    assert_eq!(c.lookup("message.*"), Lookup::Subscribable);
    assert_eq!(c.lookup("session.*"), Lookup::Subscribable);
    assert_eq!(c.lookup("group.join"), Lookup::Subscribable);
    assert_eq!(c.lookup("group.*"), Lookup::Subscribable);
    assert_eq!(c.lookup("call.*"), Lookup::Subscribable);
    assert_eq!(c.lookup("foo.*"), Lookup::Unknown);
    assert_eq!(c.lookup("message"), Lookup::Unknown);
    assert_eq!(c.lookup("Message.Received"), Lookup::Unknown);
    assert_eq!(c.lookup("message.**"), Lookup::Unknown);
    assert!(catalog().pattern_matches("*", "session.qr"));
    assert!(catalog().pattern_matches("session.*", "session.qr"));
    assert!(!catalog().pattern_matches("message.*", "session.qr"));
    assert!(!catalog().pattern_matches("session.q", "session.qr"));
}

// ------------------------------------------------------------------------------------ docs

const DOCS: &str = "docs/contract.md";
const UPDATE_DOCS: &str = "UPDATE_CONTRACT_DOCS";

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn events_table(c: &Catalog) -> String {
    let mut out = String::from("| Event | Status | Description |\n|---|---|---|\n");
    for e in c.events() {
        let status = match e.status {
            EventStatus::Available => "available",
            EventStatus::Reserved => "**reserved**",
        };
        out.push_str(&format!(
            "| `{}` | {status} | {} |\n",
            e.name,
            cell(&e.description)
        ));
    }
    out
}

fn wrong_names_table(c: &Catalog) -> String {
    let mut out = String::from("| Refused name | Use instead | Why |\n|---|---|---|\n");
    for w in c.wrong_names() {
        out.push_str(&format!(
            "| `{}` | `{}` | {} |\n",
            w.name,
            w.use_instead,
            cell(&w.why)
        ));
    }
    out
}

/// Replaces what lies between `<!-- {marker}:begin -->` and `<!-- {marker}:end -->`.
fn replace_section(doc: &str, marker: &str, content: &str) -> Result<String, String> {
    let begin = format!("<!-- {marker}:begin -->");
    let end = format!("<!-- {marker}:end -->");
    let start = doc
        .find(&begin)
        .ok_or_else(|| format!("{DOCS} has no {begin} marker"))?
        + begin.len();
    let stop = doc[start..]
        .find(&end)
        .ok_or_else(|| format!("{DOCS} has no {end} marker after {begin}"))?
        + start;
    // Blank lines around the table keep Markdown from gluing the comments to it.
    Ok(format!("{}\n\n{content}\n{}", &doc[..start], &doc[stop..]))
}

fn generated_docs(doc: &str, c: &Catalog) -> Result<String, String> {
    let doc = replace_section(doc, "events", &events_table(c))?;
    replace_section(&doc, "wrong-names", &wrong_names_table(c))
}

#[test]
fn docs_tables_are_generated_from_the_catalog() {
    let path = repo_path(DOCS);
    let doc = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let expected = generated_docs(&doc, &catalog()).unwrap_or_else(|e| panic!("{e}"));
    if doc == expected {
        return;
    }
    if std::env::var_os(UPDATE_DOCS).is_some_and(|v| v == "1") {
        std::fs::write(&path, &expected).unwrap();
        eprintln!("note: regenerated the tables in {DOCS}");
        return;
    }
    let first_diff = doc
        .lines()
        .zip(expected.lines())
        .position(|(a, b)| a != b)
        .unwrap_or(doc.lines().count().min(expected.lines().count()));
    panic!(
        "the generated tables in {DOCS} are out of date (first difference at line {}); \
         regenerate them with\n  {UPDATE_DOCS}=1 cargo test --lib catalog::tests::docs_tables",
        first_diff + 1
    );
}

#[test]
fn the_docs_generator_notices_a_change() {
    let c = catalog();
    let doc = "intro\n<!-- events:begin -->\nstale\n<!-- events:end -->\nmiddle\n\
               <!-- wrong-names:begin -->\n<!-- wrong-names:end -->\nend\n";
    let generated = generated_docs(doc, &c).unwrap();
    assert!(generated.starts_with("intro\n<!-- events:begin -->\n\n| Event |"));
    assert!(generated.contains("| `group.join` | available |"));
    assert!(generated.contains("| `message.reacted` | `message.reaction` |"));
    assert!(generated.contains("| `session.connected` | `session.authenticated` |"));
    assert!(generated.ends_with("|\n\n<!-- wrong-names:end -->\nend\n"));
    assert!(!generated.contains("stale"));
    // Idempotent.
    assert_eq!(generated_docs(&generated, &c).unwrap(), generated);
    // Missing markers are reported, not ignored.
    assert!(generated_docs("no markers here", &c).is_err());
    let every_name: BTreeMap<&str, bool> = c
        .events()
        .iter()
        .map(|e| {
            (
                e.name.as_str(),
                generated.contains(&format!("`{}`", e.name)),
            )
        })
        .collect();
    assert!(every_name.values().all(|v| *v), "{every_name:?}");
}

// ------------------------------------------------------------------- OpenWA fixtures and sources

const FIXTURES: &str = "tests/fixtures/openwa";

/// The webhook bodies of one fixture directory (`current` or `v0.4.3`), by event name.
fn fixtures(dir: &str) -> BTreeMap<String, Value> {
    let root = repo_path(FIXTURES).join(dir);
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&root).unwrap_or_else(|e| panic!("{}: {e}", root.display())) {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let body: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        out.insert(name, body);
    }
    out
}

/// Checks one OpenWA webhook body: the envelope as OpenWA posts it, and its data against the
/// compiled payload schema of its event.
fn check_openwa_body(c: &Catalog, file: &str, body: &Value, key_suffix: Option<&str>) {
    let envelope = body
        .as_object()
        .unwrap_or_else(|| panic!("{file}: not an object"));
    let keys: BTreeSet<&str> = envelope.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "event",
            "timestamp",
            "sessionId",
            "idempotencyKey",
            "deliveryId",
            "data"
        ]),
        "{file}: OpenWA's envelope fields"
    );
    assert_eq!(body["event"], file, "{file}: named after its event");
    let timestamp = body["timestamp"].as_str().unwrap();
    let date_time = compile(&json!({"type": "string", "format": "date-time"}));
    assert!(
        date_time.is_valid(&body["timestamp"]),
        "{file}: timestamp {timestamp} is ISO 8601"
    );
    assert!(
        body["deliveryId"].as_str().is_some_and(|d| d
            .strip_prefix("dlv_")
            .is_some_and(|u| uuid::Uuid::parse_str(u).is_ok())),
        "{file}: deliveryId is dlv_<uuid>"
    );
    let key = body["idempotencyKey"].as_str().unwrap();
    match key_suffix {
        Some(suffix) => assert!(key.ends_with(suffix), "{file}: key {key} ends in {suffix}"),
        None => assert!(
            !key.contains(OPENWA_WEBHOOK_ID),
            "{file}: v0.4.3 keys carry no webhook id"
        ),
    }
    let validator = c
        .validator(file)
        .unwrap_or_else(|| panic!("{file}: no catalog event of that name"));
    let errors = errors_of(validator, &body["data"]);
    assert!(errors.is_empty(), "{file}: data is refused: {errors:#?}");
}

/// The OpenWA registration id the current-line fixtures were delivered to.
const OPENWA_WEBHOOK_ID: &str = "c7a1e0d4-3b2f-4e8a-9c61-0f5d2b8a7e13";

#[test]
fn every_current_openwa_fixture_validates_and_every_event_has_one() {
    let c = catalog();
    let current = fixtures("current");
    let names: BTreeSet<&str> = current.keys().map(String::as_str).collect();
    let events: BTreeSet<&str> = c.events().iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names, events,
        "one fixture in {FIXTURES}/current per catalog event"
    );
    assert_eq!(names.len(), 24);
    let suffix = format!("_{OPENWA_WEBHOOK_ID}");
    for (file, body) in &current {
        check_openwa_body(&c, file, body, Some(&suffix));
    }
    // The current line's shapes: a QR as a PNG data URL, messages with kind and senderPhone.
    assert!(
        current["session.qr"]["data"]["qr"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,")
    );
    assert!(current["message.received"]["data"]["kind"].is_string());
    assert!(current["message.received"]["data"]["senderPhone"].is_string());
}

#[test]
fn every_v0_4_3_openwa_fixture_still_validates() {
    let c = catalog();
    let old = fixtures("v0.4.3");
    let names: BTreeSet<&str> = old.keys().map(String::as_str).collect();
    let emitted: BTreeSet<&str> = openwa_events_since("0.4.3").into_iter().collect();
    assert_eq!(names, emitted, "one fixture per event v0.4.3 emits");
    assert_eq!(names.len(), 9);
    for (file, body) in &old {
        check_openwa_body(&c, file, body, None);
    }
    let qr = old["session.qr"]["data"]["qr"].as_str().unwrap();
    assert!(!qr.starts_with("data:"), "v0.4.3 sends the raw QR string");
    assert!(old["message.received"]["data"].get("kind").is_none());
}

#[test]
fn payload_schemas_let_unknown_fields_and_new_message_types_through() {
    let c = catalog();
    for (event, body) in fixtures("current") {
        let mut data = body["data"].clone();
        data["fieldAddedByALaterEngine"] = json!({"nested": [1, 2, 3]});
        assert!(
            c.validator(&event).unwrap().is_valid(&data),
            "{event}: an extra field must not make ingest refuse the event"
        );
    }
    let mut message = fixtures("current")["message.received"]["data"].clone();
    message["type"] = json!("a_kind_no_engine_sends_yet");
    message["kind"] = json!("community");
    assert!(c.validator("message.received").unwrap().is_valid(&message));
    // The guaranteed fields stay guaranteed.
    let mut missing = message.clone();
    missing.as_object_mut().unwrap().remove("chatId");
    assert!(!c.validator("message.received").unwrap().is_valid(&missing));
    message["timestamp"] = json!("1794000000");
    assert!(!c.validator("message.received").unwrap().is_valid(&message));
}

fn semver(text: &str) -> (u64, u64, u64) {
    let parts: Vec<u64> = text
        .split('.')
        .map(|p| p.parse().unwrap_or_else(|_| panic!("{text} is not x.y.z")))
        .collect();
    assert_eq!(parts.len(), 3, "{text} is not x.y.z");
    (parts[0], parts[1], parts[2])
}

/// Catalog events OpenWA emits at `version`, from the sources file.
fn openwa_events_since(version: &str) -> Vec<&'static str> {
    let source: &'static Value = Box::leak(Box::new(raw("sources/openwa.json")));
    source["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| semver(e["since"].as_str().unwrap()) <= semver(version))
        .map(|e| e["event"].as_str().unwrap())
        .collect()
}

#[test]
fn the_openwa_source_validates_and_names_every_catalog_event_once() {
    let c = catalog();
    let schema = raw("source.json");
    let source = raw("sources/openwa.json");
    let errors = errors_of(&compile(&schema), &source);
    assert!(errors.is_empty(), "sources/openwa.json: {errors:#?}");

    let events = source["events"].as_array().unwrap();
    let mut seen = BTreeSet::new();
    let current = semver(source["current"].as_str().unwrap());
    for e in events {
        let name = e["event"].as_str().unwrap();
        assert!(seen.insert(name), "{name} listed twice");
        assert!(c.event(name).is_some(), "{name} is not a catalog event");
        assert!(semver(e["since"].as_str().unwrap()) <= current, "{name}");
    }
    let catalog_names: BTreeSet<&str> = c.events().iter().map(|e| e.name.as_str()).collect();
    assert_eq!(seen, catalog_names, "OpenWA emits every catalog event");
    let versions: Vec<(u64, u64, u64)> = source["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| semver(v["version"].as_str().unwrap()))
        .collect();
    assert!(versions.is_sorted(), "versions oldest first");
    assert_eq!(versions.last(), Some(&current));
    let unmapped: Vec<&str> = source["unmapped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["native"].as_str().unwrap())
        .collect();
    assert!(unmapped.contains(&"test"), "the test delivery is listed");
    for native in unmapped {
        assert!(c.event(native).is_none(), "{native} is a catalog event");
    }

    // v0.4.3: the five message events it sends and the four session events of PR #335.
    let at_0_4_3 = openwa_events_since("0.4.3");
    assert_eq!(at_0_4_3.len(), 9, "{at_0_4_3:?}");
    assert!(!at_0_4_3.iter().any(|e| e.starts_with("group.")));
    assert_eq!(openwa_events_since("0.24.0").len(), 24);
}

#[test]
fn the_source_schema_refuses_what_the_loader_would_refuse() {
    let validator = compile(&raw("source.json"));
    let good = raw("sources/openwa.json");
    assert!(validator.is_valid(&good));
    let mut extra = good.clone();
    extra["mystery"] = json!(true);
    assert!(!validator.is_valid(&extra), "unknown top-level key");
    let mut short = good.clone();
    short["events"][0]["since"] = json!("0.4");
    assert!(!validator.is_valid(&short), "since is full semver");
    let mut no_native = good;
    no_native["events"][0]["native"] = json!([]);
    assert!(!validator.is_valid(&no_native), "at least one native name");
}

#[test]
fn openwa_at_0_4_3_reserves_what_it_does_not_emit() {
    let specs = parse_specs("openwa@0.4.3").unwrap();
    let c = Catalog::load_with(CANONICAL_BASE, &specs).unwrap();
    assert_eq!(c.lookup("group.join"), Lookup::Reserved("group.join"));
    assert_eq!(c.lookup("message.received"), Lookup::Subscribable);
    let reason = c
        .reserved_reason("group.join")
        .expect("reserved on this bridge");
    assert!(reason.contains("0.10.3"), "{reason}");
}

/// docs/openwa.md's table of "which OpenWA release first emits each event" is the source file,
/// row for row.
#[test]
fn the_openwa_doc_table_matches_the_source_file() {
    let doc = std::fs::read_to_string(repo_path("docs/openwa.md")).unwrap();
    let c = catalog();
    let openwa = c.sources().engine("openwa").unwrap();
    let rows: Vec<&str> = doc.lines().filter(|l| l.starts_with("| `")).collect();
    assert_eq!(rows.len(), openwa.events.len(), "{rows:#?}");
    for (row, e) in rows.iter().zip(&openwa.events) {
        let want = format!("| `{}` | {} |", e.event, e.since);
        assert!(row.starts_with(&want), "{row} should start with {want}");
    }
    assert_eq!(
        openwa.events.len(),
        c.events().len(),
        "OpenWA emits every event"
    );
}
