//! Compatibility check between two published contracts.
//!
//! A contract is `{"contractVersion": N, "catalog": <catalog.json>, "schemas": {"<path>": <schema>}}`
//! where each key of `schemas` is a file path relative to `schemas/` (for example
//! `events/session.status.json`). [`breaking_changes`] lists every difference that can break a
//! consumer or an engine that relied on the old contract. It is pure: no I/O, no clock, and it
//! never panics on malformed input (a missing or ill-typed part counts as empty).
//!
//! What counts as breaking:
//! - catalog: an event name removed; an event's status moving away from `available`; the
//!   schema file an event points to changing;
//! - files: a schema file removed (entries under `examples/` and `catalog.json` itself are not
//!   schemas and are skipped);
//! - inside a schema, walking old and new in parallel: a property removed, a name added to
//!   `required`, `type` narrowed (no `type` means every type, or the types of the `enum`/`const`
//!   values when there is one; `integer` is covered by `number`),
//!   `enum` values removed or an `enum` added, `const` added or changed, `additionalProperties`
//!   becoming `false`, a lower bound raised or newly set, an upper bound lowered or newly set,
//!   `pattern`, `format`, `multipleOf` or `$ref` added or changed, `uniqueItems` turned on, an
//!   `anyOf`/`oneOf` added or losing branches, a `oneOf` gaining branches (an instance that
//!   matches two branches fails), `if` or `not` added or changed, and any change to a
//!   constraining keyword this module does not analyse (listed in `UNANALYSED`).
//!
//! Annotations (`$id`, `title`, `description`, `examples`, ...) are ignored, so the `$id`
//! rewriting done when serving the schemas never shows up. Additions (new events, new optional
//! properties, new enum values, new files, new `wrongNames`) are not breaking.

use crate::validation::pointer_token;
use serde_json::{Map, Value};

/// One breaking difference between an old and a new published contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakingChange {
    /// Where, as `<file>#<JSON pointer>`, e.g. `events/session.status.json#/properties/status/enum`.
    /// Catalog events are addressed by name: `catalog.json#/events/message.ack/status`.
    pub path: String,
    /// What changed, in words.
    pub what: String,
}

/// A contract: `{"contractVersion": N, "catalog": <catalog.json>, "schemas": {"<file path>": <schema>, ...}}`.
pub fn breaking_changes(old: &Value, new: &Value) -> Vec<BreakingChange> {
    let mut out = Report::default();
    compare_catalog(
        old.get("catalog").unwrap_or(&Value::Null),
        new.get("catalog").unwrap_or(&Value::Null),
        &mut out,
    );
    compare_files(
        old.get("schemas").unwrap_or(&Value::Null),
        new.get("schemas").unwrap_or(&Value::Null),
        &mut out,
    );
    out.0
}

#[derive(Default)]
struct Report(Vec<BreakingChange>);

impl Report {
    fn push(&mut self, path: impl Into<String>, what: impl Into<String>) {
        self.0.push(BreakingChange {
            path: path.into(),
            what: what.into(),
        });
    }
}

/// The schema that accepts everything; stands in for an absent subschema.
const ANY: &Value = &Value::Bool(true);

/// Keywords that carry no validation meaning here.
const ANNOTATIONS: &[&str] = &[
    "$id",
    "$schema",
    "$comment",
    "$anchor",
    "$vocabulary",
    "title",
    "description",
    "examples",
    "default",
    "deprecated",
    "readOnly",
    "writeOnly",
    "contentEncoding",
    "contentMediaType",
    "contentSchema",
];

/// Constraining keywords not analysed in detail: any addition or change is reported.
const UNANALYSED: &[&str] = &[
    "dependentRequired",
    "dependentSchemas",
    "unevaluatedProperties",
    "unevaluatedItems",
    "minContains",
    "maxContains",
    "$dynamicRef",
    "$dynamicAnchor",
    "$recursiveRef",
    "dependencies",
];

/// Lower bounds and the value their absence stands for.
const LOWER_BOUNDS: &[(&str, f64)] = &[
    ("minLength", 0.0),
    ("minItems", 0.0),
    ("minProperties", 0.0),
    ("minimum", f64::NEG_INFINITY),
    ("exclusiveMinimum", f64::NEG_INFINITY),
];

/// Upper bounds; their absence stands for +infinity.
const UPPER_BOUNDS: &[&str] = &[
    "maxLength",
    "maxItems",
    "maxProperties",
    "maximum",
    "exclusiveMaximum",
];

/// Keywords whose new value must equal the old one (added or changed is breaking).
const EXACT: &[&str] = &["pattern", "format", "multipleOf", "$ref"];

/// Keywords holding a map from names to subschemas.
const NAMED_SCHEMAS: &[&str] = &[
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
];

const ALL_TYPES: &[&str] = &[
    "array", "boolean", "integer", "null", "number", "object", "string",
];

// ------------------------------------------------------------------------------------- catalog

fn catalog_events(catalog: &Value) -> Vec<(&str, &Map<String, Value>)> {
    catalog
        .get("events")
        .and_then(Value::as_array)
        .map(|events| {
            events
                .iter()
                .filter_map(|e| {
                    let entry = e.as_object()?;
                    let name = entry.get("name")?.as_str()?;
                    Some((name, entry))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn compare_catalog(old: &Value, new: &Value, out: &mut Report) {
    let new_events = catalog_events(new);
    for (name, old_entry) in catalog_events(old) {
        let path = format!("catalog.json#/events/{}", pointer_token(name));
        let Some((_, new_entry)) = new_events.iter().find(|(n, _)| *n == name) else {
            out.push(path, format!("event {name} removed"));
            continue;
        };
        let old_status = old_entry.get("status").and_then(Value::as_str);
        let new_status = new_entry.get("status").and_then(Value::as_str);
        if old_status == Some("available") && new_status != Some("available") {
            out.push(
                format!("{path}/status"),
                format!(
                    "event {name} is no longer available (status {})",
                    new_status.unwrap_or("missing")
                ),
            );
        }
        let old_schema = old_entry.get("schema");
        let new_schema = new_entry.get("schema");
        if old_schema.is_some() && old_schema != new_schema {
            out.push(
                format!("{path}/schema"),
                format!(
                    "event {name} points to another schema file ({} -> {})",
                    show(old_schema),
                    show(new_schema)
                ),
            );
        }
    }
}

// --------------------------------------------------------------------------------------- files

fn is_schema_file(path: &str) -> bool {
    path != "catalog.json" && !path.starts_with("examples/")
}

fn compare_files(old: &Value, new: &Value, out: &mut Report) {
    let Some(old_files) = old.as_object() else {
        return;
    };
    let empty = Map::new();
    let new_files = new.as_object().unwrap_or(&empty);
    for (file, old_schema) in old_files {
        if !is_schema_file(file) {
            continue;
        }
        match new_files.get(file) {
            None => out.push(file.clone(), "schema file removed"),
            Some(new_schema) => compare_schema(old_schema, new_schema, &format!("{file}#"), out),
        }
    }
}

// -------------------------------------------------------------------------------------- schema

/// Compares two subschemas at `at` (a `<file>#<pointer>` prefix).
fn compare_schema(old: &Value, new: &Value, at: &str, out: &mut Report) {
    if old == &Value::Bool(false) {
        return; // nothing was accepted before: anything is wider
    }
    if new == &Value::Bool(false) {
        out.push(at, "schema now rejects every value");
        return;
    }
    let empty = Map::new();
    let o = old.as_object().unwrap_or(&empty);
    let n = new.as_object().unwrap_or(&empty);

    compare_type(o, n, at, out);
    compare_enum(o, n, at, out);
    compare_const(o, n, at, out);
    compare_exact(o, n, at, out);
    compare_bounds(o, n, at, out);
    compare_required(o, n, at, out);
    if n.get("uniqueItems") == Some(&Value::Bool(true))
        && o.get("uniqueItems") != Some(&Value::Bool(true))
    {
        out.push(format!("{at}/uniqueItems"), "items must now be unique");
    }

    for keyword in NAMED_SCHEMAS {
        compare_named(o, n, keyword, at, out);
    }
    compare_additional_properties(o, n, at, out);
    for keyword in ["propertyNames", "then", "else"] {
        compare_optional(o, n, keyword, at, out);
    }
    compare_items(o, n, at, out);
    compare_indexed(o, n, "prefixItems", at, out);
    if let Some(new_contains) = n.get("contains") {
        match o.get("contains") {
            None => out.push(format!("{at}/contains"), "contains added"),
            Some(old_contains) => {
                compare_schema(old_contains, new_contains, &format!("{at}/contains"), out)
            }
        }
    }
    compare_indexed(o, n, "allOf", at, out);
    compare_alternatives(o, n, "anyOf", at, out);
    compare_alternatives(o, n, "oneOf", at, out);
    for keyword in ["if", "not"] {
        if let Some(new_value) = n.get(keyword) {
            match o.get(keyword) {
                None => out.push(format!("{at}/{keyword}"), format!("{keyword} added")),
                Some(old_value) if !same_schema(old_value, new_value) => {
                    out.push(format!("{at}/{keyword}"), format!("{keyword} changed"))
                }
                Some(_) => {}
            }
        }
    }
    for keyword in UNANALYSED {
        if let Some(new_value) = n.get(*keyword) {
            let changed = o
                .get(*keyword)
                .is_none_or(|old_value| !same_schema(old_value, new_value));
            if changed {
                out.push(
                    format!("{at}/{keyword}"),
                    format!("{keyword} added or changed"),
                );
            }
        }
    }
}

fn type_set(schema: &Map<String, Value>) -> Option<Vec<&str>> {
    match schema.get("type")? {
        Value::String(t) => Some(vec![t.as_str()]),
        Value::Array(ts) => Some(ts.iter().filter_map(Value::as_str).collect()),
        _ => None,
    }
}

fn compare_type(o: &Map<String, Value>, n: &Map<String, Value>, at: &str, out: &mut Report) {
    let Some(new_types) = type_set(n) else {
        return; // every type is allowed now
    };
    let old_types = type_set(o)
        .or_else(|| value_types(o))
        .unwrap_or_else(|| ALL_TYPES.to_vec());
    let covered =
        |t: &str| new_types.contains(&t) || (t == "integer" && new_types.contains(&"number"));
    let lost: Vec<&str> = old_types.into_iter().filter(|t| !covered(t)).collect();
    if !lost.is_empty() {
        out.push(
            format!("{at}/type"),
            format!("type narrowed: {} no longer allowed", lost.join(", ")),
        );
    }
}

/// Without `type`, an `enum` or `const` still limits the types an old schema accepted: an enum of
/// strings only ever accepted strings, so adding `"type": "string"` (and dropping the enum, which
/// opens the values) narrows nothing.
fn value_types(schema: &Map<String, Value>) -> Option<Vec<&'static str>> {
    let values: Vec<&Value> = match (schema.get("enum"), schema.get("const")) {
        (Some(Value::Array(values)), _) => values.iter().collect(),
        (None, Some(value)) => vec![value],
        _ => return None,
    };
    let mut types: Vec<&'static str> = Vec::new();
    for value in values {
        let t = match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        if !types.contains(&t) {
            types.push(t);
        }
    }
    Some(types)
}

fn compare_enum(o: &Map<String, Value>, n: &Map<String, Value>, at: &str, out: &mut Report) {
    let Some(new_values) = n.get("enum") else {
        return;
    };
    let new_values = new_values.as_array().map(Vec::as_slice).unwrap_or_default();
    match o.get("enum") {
        None => out.push(format!("{at}/enum"), "enum added"),
        Some(old_values) => {
            let removed: Vec<String> = old_values
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter(|v| !new_values.contains(v))
                .map(Value::to_string)
                .collect();
            if !removed.is_empty() {
                out.push(
                    format!("{at}/enum"),
                    format!("enum values removed: {}", removed.join(", ")),
                );
            }
        }
    }
}

fn compare_const(o: &Map<String, Value>, n: &Map<String, Value>, at: &str, out: &mut Report) {
    let Some(new_value) = n.get("const") else {
        return;
    };
    match o.get("const") {
        None => out.push(format!("{at}/const"), format!("const {new_value} added")),
        Some(old_value) if old_value != new_value => out.push(
            format!("{at}/const"),
            format!("const changed from {old_value} to {new_value}"),
        ),
        Some(_) => {}
    }
}

fn compare_exact(o: &Map<String, Value>, n: &Map<String, Value>, at: &str, out: &mut Report) {
    for keyword in EXACT {
        let Some(new_value) = n.get(*keyword) else {
            continue;
        };
        match o.get(*keyword) {
            None => out.push(
                format!("{at}/{keyword}"),
                format!("{keyword} {new_value} added"),
            ),
            Some(old_value) if old_value != new_value => out.push(
                format!("{at}/{keyword}"),
                format!("{keyword} changed from {old_value} to {new_value}"),
            ),
            Some(_) => {}
        }
    }
}

fn compare_bounds(o: &Map<String, Value>, n: &Map<String, Value>, at: &str, out: &mut Report) {
    for (keyword, absent) in LOWER_BOUNDS {
        if let Some(new_value) = n.get(*keyword) {
            let old_value = o.get(*keyword);
            let old_bound = old_value.map_or(Some(*absent), Value::as_f64);
            let tighter = match (old_bound, new_value.as_f64()) {
                (Some(before), Some(now)) => now > before,
                _ => old_value != Some(new_value),
            };
            if tighter {
                out.push(
                    format!("{at}/{keyword}"),
                    bound_message(keyword, old_value, new_value, "raised"),
                );
            }
        }
    }
    for keyword in UPPER_BOUNDS {
        if let Some(new_value) = n.get(*keyword) {
            let old_value = o.get(*keyword);
            let old_bound = old_value.map_or(Some(f64::INFINITY), Value::as_f64);
            let tighter = match (old_bound, new_value.as_f64()) {
                (Some(before), Some(now)) => now < before,
                _ => old_value != Some(new_value),
            };
            if tighter {
                out.push(
                    format!("{at}/{keyword}"),
                    bound_message(keyword, old_value, new_value, "lowered"),
                );
            }
        }
    }
}

fn bound_message(keyword: &str, old: Option<&Value>, new: &Value, verb: &str) -> String {
    match old {
        None => format!("{keyword} {new} newly set"),
        Some(old) => format!("{keyword} {verb} from {old} to {new}"),
    }
}

fn compare_required(o: &Map<String, Value>, n: &Map<String, Value>, at: &str, out: &mut Report) {
    let names = |m: &Map<String, Value>| -> Vec<String> {
        m.get("required")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let before = names(o);
    for name in names(n) {
        if !before.contains(&name) {
            out.push(
                format!("{at}/required"),
                format!("{name:?} is now required"),
            );
        }
    }
}

fn compare_named(
    o: &Map<String, Value>,
    n: &Map<String, Value>,
    keyword: &str,
    at: &str,
    out: &mut Report,
) {
    let Some(old_map) = o.get(keyword).and_then(Value::as_object) else {
        return;
    };
    let empty = Map::new();
    let new_map = n.get(keyword).and_then(Value::as_object).unwrap_or(&empty);
    for (name, old_sub) in old_map {
        let path = format!("{at}/{keyword}/{}", pointer_token(name));
        match new_map.get(name) {
            None => out.push(path, format!("{} {name:?} removed", named_noun(keyword))),
            Some(new_sub) => compare_schema(old_sub, new_sub, &path, out),
        }
    }
}

fn named_noun(keyword: &str) -> &'static str {
    match keyword {
        "properties" => "property",
        "patternProperties" => "pattern property",
        "dependentSchemas" => "dependent schema",
        _ => "definition",
    }
}

fn compare_additional_properties(
    o: &Map<String, Value>,
    n: &Map<String, Value>,
    at: &str,
    out: &mut Report,
) {
    if !o.contains_key("additionalProperties") && !n.contains_key("additionalProperties") {
        return;
    }
    let old_value = o.get("additionalProperties").unwrap_or(ANY);
    let new_value = n.get("additionalProperties").unwrap_or(ANY);
    let path = format!("{at}/additionalProperties");
    if new_value == &Value::Bool(false) && old_value != &Value::Bool(false) {
        out.push(
            path,
            "additionalProperties is now false: extra fields are refused",
        );
    } else {
        compare_schema(old_value, new_value, &path, out);
    }
}

/// A subschema keyword whose absence means "accept everything".
fn compare_optional(
    o: &Map<String, Value>,
    n: &Map<String, Value>,
    keyword: &str,
    at: &str,
    out: &mut Report,
) {
    if o.contains_key(keyword) || n.contains_key(keyword) {
        compare_schema(
            o.get(keyword).unwrap_or(ANY),
            n.get(keyword).unwrap_or(ANY),
            &format!("{at}/{keyword}"),
            out,
        );
    }
}

fn compare_items(o: &Map<String, Value>, n: &Map<String, Value>, at: &str, out: &mut Report) {
    // Drafts before 2020-12 allowed an array here, meaning what prefixItems means now.
    let is_array = |m: &Map<String, Value>| m.get("items").is_some_and(Value::is_array);
    if is_array(o) || is_array(n) {
        compare_indexed(o, n, "items", at, out);
    } else {
        compare_optional(o, n, "items", at, out);
    }
}

/// Arrays of subschemas compared by index; a missing entry accepts everything.
fn compare_indexed(
    o: &Map<String, Value>,
    n: &Map<String, Value>,
    keyword: &str,
    at: &str,
    out: &mut Report,
) {
    let old_list = subschemas(o, keyword);
    let new_list = subschemas(n, keyword);
    for i in 0..old_list.len().max(new_list.len()) {
        compare_schema(
            old_list.get(i).unwrap_or(ANY),
            new_list.get(i).unwrap_or(ANY),
            &format!("{at}/{keyword}/{i}"),
            out,
        );
    }
}

/// `anyOf` / `oneOf`: matching branches are compared by index; losing a branch narrows.
fn compare_alternatives(
    o: &Map<String, Value>,
    n: &Map<String, Value>,
    keyword: &str,
    at: &str,
    out: &mut Report,
) {
    if !n.contains_key(keyword) {
        return; // removing the whole alternative only widens
    }
    let path = format!("{at}/{keyword}");
    if !o.contains_key(keyword) {
        out.push(path, format!("{keyword} added"));
        return;
    }
    let old_list = subschemas(o, keyword);
    let new_list = subschemas(n, keyword);
    for (i, (old_sub, new_sub)) in old_list.iter().zip(new_list).enumerate() {
        compare_schema(old_sub, new_sub, &format!("{path}/{i}"), out);
    }
    if new_list.len() < old_list.len() {
        out.push(
            path,
            format!(
                "{keyword} lost branches ({} -> {})",
                old_list.len(),
                new_list.len()
            ),
        );
    } else if keyword == "oneOf" && new_list.len() > old_list.len() {
        out.push(
            path,
            format!(
                "oneOf gained branches ({} -> {}): a value matching two of them is refused",
                old_list.len(),
                new_list.len()
            ),
        );
    }
}

fn subschemas<'a>(m: &'a Map<String, Value>, keyword: &str) -> &'a [Value] {
    m.get(keyword)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// Structural equality of two schemas, ignoring annotations.
fn same_schema(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            let keys = |m: &Map<String, Value>| -> Vec<String> {
                let mut k: Vec<String> = m
                    .keys()
                    .filter(|k| !ANNOTATIONS.contains(&k.as_str()))
                    .cloned()
                    .collect();
                k.sort();
                k
            };
            keys(a) == keys(b)
                && a.iter()
                    .filter(|(k, _)| !ANNOTATIONS.contains(&k.as_str()))
                    .all(|(k, va)| b.get(k).is_some_and(|vb| same_keyword(k, va, vb)))
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_schema(x, y))
        }
        _ => a == b,
    }
}

fn same_keyword(keyword: &str, a: &Value, b: &Value) -> bool {
    if NAMED_SCHEMAS.contains(&keyword) {
        // Names are data, not keywords: compare them exactly, their values as schemas.
        return match (a, b) {
            (Value::Object(a), Value::Object(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .all(|(k, va)| b.get(k).is_some_and(|vb| same_schema(va, vb)))
            }
            _ => a == b,
        };
    }
    match keyword {
        "enum" | "const" | "required" | "type" | "dependentRequired" => a == b,
        _ => same_schema(a, b),
    }
}

fn show(v: Option<&Value>) -> String {
    v.map_or_else(|| "none".to_owned(), Value::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FILE: &str = "events/x.json";

    fn contract(catalog: Value, schemas: Value) -> Value {
        json!({"contractVersion": 1, "catalog": catalog, "schemas": schemas})
    }

    /// Breaking changes between two versions of one schema file.
    fn diff(old: Value, new: Value) -> Vec<BreakingChange> {
        breaking_changes(
            &contract(json!({"events": []}), json!({ FILE: old })),
            &contract(json!({"events": []}), json!({ FILE: new })),
        )
    }

    fn paths(changes: &[BreakingChange]) -> Vec<&str> {
        changes.iter().map(|c| c.path.as_str()).collect()
    }

    #[track_caller]
    fn assert_breaks(old: Value, new: Value, path: &str) {
        let changes = diff(old, new);
        assert!(
            paths(&changes).contains(&path),
            "expected a breaking change at {path}, got {changes:#?}"
        );
    }

    #[track_caller]
    fn assert_compatible(old: Value, new: Value) {
        let changes = diff(old, new);
        assert!(
            changes.is_empty(),
            "expected no breaking change, got {changes:#?}"
        );
    }

    fn event(name: &str, status: &str) -> Value {
        json!({"name": name, "status": status, "description": "d", "schema": format!("events/{name}.json")})
    }

    fn catalog(events: Vec<Value>) -> Value {
        json!({"contractVersion": 1, "events": events, "wrongNames": []})
    }

    // --- catalog and files

    #[test]
    fn removing_an_event_is_breaking() {
        let old = contract(
            catalog(vec![event("a.b", "available"), event("c.d", "reserved")]),
            json!({}),
        );
        let new = contract(catalog(vec![event("a.b", "available")]), json!({}));
        let changes = breaking_changes(&old, &new);
        assert_eq!(paths(&changes), ["catalog.json#/events/c.d"]);
    }

    #[test]
    fn adding_an_event_or_a_wrong_name_is_not_breaking() {
        let old = contract(catalog(vec![event("a.b", "available")]), json!({}));
        let mut new_catalog = catalog(vec![event("a.b", "available"), event("c.d", "reserved")]);
        new_catalog["wrongNames"] = json!([{"name": "a.c", "use": "a.b", "why": "typo"}]);
        let new = contract(new_catalog, json!({}));
        assert_eq!(breaking_changes(&old, &new), []);
    }

    #[test]
    fn available_event_becoming_reserved_is_breaking() {
        let old = contract(catalog(vec![event("a.b", "available")]), json!({}));
        let new = contract(catalog(vec![event("a.b", "reserved")]), json!({}));
        assert_eq!(
            paths(&breaking_changes(&old, &new)),
            ["catalog.json#/events/a.b/status"]
        );
    }

    #[test]
    fn reserved_event_becoming_available_is_not_breaking() {
        let old = contract(catalog(vec![event("a.b", "reserved")]), json!({}));
        let new = contract(catalog(vec![event("a.b", "available")]), json!({}));
        assert_eq!(breaking_changes(&old, &new), []);
    }

    #[test]
    fn event_pointing_to_another_schema_file_is_breaking() {
        let old = contract(catalog(vec![event("a.b", "available")]), json!({}));
        let mut moved = event("a.b", "available");
        moved["schema"] = json!("events/other.json");
        let new = contract(catalog(vec![moved]), json!({}));
        assert_eq!(
            paths(&breaking_changes(&old, &new)),
            ["catalog.json#/events/a.b/schema"]
        );
    }

    #[test]
    fn removing_a_schema_file_is_breaking_adding_one_is_not() {
        let old = contract(json!({}), json!({"a.json": {}, "b.json": {}}));
        let new = contract(
            json!({}),
            json!({"a.json": {}, "c.json": {"type": "string"}}),
        );
        assert_eq!(paths(&breaking_changes(&old, &new)), ["b.json"]);
    }

    #[test]
    fn examples_and_catalog_entries_in_the_schema_map_are_skipped() {
        let old = contract(
            json!({}),
            json!({"examples/invalid/x.json": {"instance": 1}, "catalog.json": {"events": []}}),
        );
        let new = contract(json!({}), json!({"catalog.json": {"events": [1]}}));
        assert_eq!(breaking_changes(&old, &new), []);
    }

    #[test]
    fn malformed_contracts_do_not_panic() {
        assert_eq!(breaking_changes(&json!(null), &json!(42)), []);
        let old = contract(json!({"events": [1, {"name": 2}]}), json!({"a.json": 7}));
        assert_eq!(paths(&breaking_changes(&old, &json!({}))), ["a.json"]);
    }

    // --- annotations and $id

    #[test]
    fn annotations_are_ignored() {
        assert_compatible(
            json!({"$id": "http://127.0.0.1:8787/v1/schemas/events/x.json", "title": "x",
                   "description": "old", "examples": [{"a": 1}],
                   "properties": {"a": {"description": "old", "type": "string"}}}),
            json!({"$id": "https://bridge.example.com/v1/schemas/events/x.json", "title": "y",
                   "description": "new", "examples": [],
                   "properties": {"a": {"description": "new", "type": "string"}}}),
        );
    }

    #[test]
    fn published_schemas_compare_clean_after_id_rewrite() {
        let files = [
            (
                "events/session.status.json",
                include_str!("../../schemas/events/session.status.json"),
            ),
            (
                "events/message.received.json",
                include_str!("../../schemas/events/message.received.json"),
            ),
            (
                "registration.json",
                include_str!("../../schemas/registration.json"),
            ),
            ("envelope.json", include_str!("../../schemas/envelope.json")),
        ];
        let catalog: Value = serde_json::from_str(include_str!("../../schemas/catalog.json"))
            .expect("catalog.json parses");
        let mut old_schemas = Map::new();
        let mut new_schemas = Map::new();
        for (path, text) in files {
            let schema: Value = serde_json::from_str(text).expect("schema parses");
            let mut rewritten = schema.clone();
            rewritten["$id"] = json!(format!("https://public.example.com/v1/schemas/{path}"));
            old_schemas.insert(path.to_owned(), schema);
            new_schemas.insert(path.to_owned(), rewritten);
        }
        let old = contract(catalog.clone(), Value::Object(old_schemas));
        let new = contract(catalog, Value::Object(new_schemas));
        assert_eq!(breaking_changes(&old, &new), []);
        assert_eq!(breaking_changes(&new, &old), []);
    }

    // --- properties and required

    #[test]
    fn removing_a_property_is_breaking() {
        assert_breaks(
            json!({"properties": {"a": {}, "b": {}}}),
            json!({"properties": {"a": {}}}),
            "events/x.json#/properties/b",
        );
    }

    #[test]
    fn adding_an_optional_property_is_not_breaking() {
        assert_compatible(
            json!({"properties": {"a": {}}, "required": ["a"]}),
            json!({"properties": {"a": {}, "b": {"type": "string"}}, "required": ["a"]}),
        );
    }

    #[test]
    fn adding_a_required_name_is_breaking() {
        assert_breaks(
            json!({"properties": {"a": {}}, "required": ["a"]}),
            json!({"properties": {"a": {}, "b": {}}, "required": ["a", "b"]}),
            "events/x.json#/required",
        );
    }

    #[test]
    fn dropping_or_reordering_required_is_not_breaking() {
        assert_compatible(json!({"required": ["a", "b"]}), json!({"required": ["b"]}));
        assert_compatible(
            json!({"required": ["a", "b"]}),
            json!({"required": ["b", "a"]}),
        );
    }

    #[test]
    fn nested_properties_are_walked() {
        assert_breaks(
            json!({"properties": {"media": {"properties": {"url": {"type": "string"}}}}}),
            json!({"properties": {"media": {"properties": {"url": {"type": "string", "format": "uri"}}}}}),
            "events/x.json#/properties/media/properties/url/format",
        );
    }

    #[test]
    fn property_names_are_escaped_in_paths() {
        assert_breaks(
            json!({"properties": {"a/b~c": {}}}),
            json!({"properties": {}}),
            "events/x.json#/properties/a~1b~0c",
        );
    }

    // --- type

    #[test]
    fn narrowing_type_is_breaking() {
        assert_breaks(
            json!({"type": ["string", "null"]}),
            json!({"type": "string"}),
            "events/x.json#/type",
        );
        assert_breaks(
            json!({"type": "number"}),
            json!({"type": "integer"}),
            "events/x.json#/type",
        );
    }

    #[test]
    fn adding_type_where_there_was_none_is_breaking() {
        assert_breaks(json!({}), json!({"type": "object"}), "events/x.json#/type");
    }

    #[test]
    fn widening_type_is_not_breaking() {
        assert_compatible(
            json!({"type": "string"}),
            json!({"type": ["string", "null"]}),
        );
        assert_compatible(json!({"type": "integer"}), json!({"type": "number"}));
        assert_compatible(json!({"type": "string"}), json!({}));
    }

    #[test]
    fn typing_a_string_enum_as_string_is_not_breaking() {
        // An enum of strings only ever accepted strings: typing it as a string and dropping the
        // enum opens the values without narrowing anything (message type in contract v2).
        assert_compatible(
            json!({"enum": ["text", "image"]}),
            json!({"type": "string", "examples": ["text", "image", "poll"]}),
        );
        assert_compatible(json!({"const": -1}), json!({"type": "integer"}));
        assert_compatible(json!({"enum": [1, 2.5]}), json!({"type": "number"}));
    }

    #[test]
    fn typing_an_enum_narrower_than_its_values_is_breaking() {
        assert_breaks(
            json!({"enum": ["a", 1]}),
            json!({"type": "string"}),
            "events/x.json#/type",
        );
        assert_breaks(
            json!({"enum": [1.5]}),
            json!({"type": "integer"}),
            "events/x.json#/type",
        );
        // Keeping the enum while typing it still reports nothing wider than before.
        assert_breaks(
            json!({"enum": ["a", "b"]}),
            json!({"type": "string", "enum": ["a"]}),
            "events/x.json#/enum",
        );
    }

    // --- enum and const

    #[test]
    fn removing_an_enum_value_is_breaking() {
        let changes = diff(
            json!({"enum": ["a", "b", "c"]}),
            json!({"enum": ["a", "c"]}),
        );
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].path, "events/x.json#/enum");
        assert!(changes[0].what.contains("\"b\""), "{changes:?}");
    }

    #[test]
    fn adding_an_enum_is_breaking() {
        assert_breaks(
            json!({"type": "string"}),
            json!({"type": "string", "enum": ["a"]}),
            "events/x.json#/enum",
        );
    }

    #[test]
    fn adding_enum_values_or_dropping_the_enum_is_not_breaking() {
        assert_compatible(json!({"enum": ["a"]}), json!({"enum": ["a", "b"]}));
        assert_compatible(json!({"enum": ["a"]}), json!({}));
    }

    #[test]
    fn adding_or_changing_const_is_breaking() {
        assert_breaks(
            json!({"type": "integer"}),
            json!({"type": "integer", "const": -1}),
            "events/x.json#/const",
        );
        assert_breaks(
            json!({"const": "failed"}),
            json!({"const": "error"}),
            "events/x.json#/const",
        );
    }

    #[test]
    fn keeping_or_dropping_const_is_not_breaking() {
        assert_compatible(json!({"const": 1}), json!({"const": 1}));
        assert_compatible(json!({"const": 1}), json!({}));
    }

    // --- additionalProperties

    #[test]
    fn additional_properties_becoming_false_is_breaking() {
        assert_breaks(
            json!({}),
            json!({"additionalProperties": false}),
            "events/x.json#/additionalProperties",
        );
        assert_breaks(
            json!({"additionalProperties": true}),
            json!({"additionalProperties": false}),
            "events/x.json#/additionalProperties",
        );
    }

    #[test]
    fn additional_properties_opening_up_is_not_breaking() {
        assert_compatible(json!({"additionalProperties": false}), json!({}));
        assert_compatible(
            json!({"additionalProperties": false}),
            json!({"additionalProperties": {"type": "string"}}),
        );
    }

    #[test]
    fn additional_properties_schemas_are_walked() {
        assert_breaks(
            json!({"additionalProperties": {"type": ["string", "number"]}}),
            json!({"additionalProperties": {"type": "string"}}),
            "events/x.json#/additionalProperties/type",
        );
        assert_compatible(
            json!({"additionalProperties": {"type": "string"}}),
            json!({"additionalProperties": {"type": "string", "description": "header value"}}),
        );
    }

    // --- bounds

    #[test]
    fn raising_a_lower_bound_is_breaking() {
        assert_breaks(
            json!({"minLength": 1}),
            json!({"minLength": 2}),
            "events/x.json#/minLength",
        );
        assert_breaks(
            json!({"minimum": -1}),
            json!({"minimum": 0}),
            "events/x.json#/minimum",
        );
        assert_breaks(
            json!({"minItems": 0}),
            json!({"minItems": 1}),
            "events/x.json#/minItems",
        );
    }

    #[test]
    fn newly_setting_a_bound_is_breaking() {
        assert_breaks(
            json!({}),
            json!({"minLength": 1}),
            "events/x.json#/minLength",
        );
        assert_breaks(json!({}), json!({"minimum": 0}), "events/x.json#/minimum");
        assert_breaks(
            json!({}),
            json!({"maxLength": 2048}),
            "events/x.json#/maxLength",
        );
        assert_breaks(
            json!({}),
            json!({"maxItems": 10}),
            "events/x.json#/maxItems",
        );
        assert_breaks(
            json!({}),
            json!({"exclusiveMinimum": 0}),
            "events/x.json#/exclusiveMinimum",
        );
    }

    #[test]
    fn lowering_an_upper_bound_is_breaking() {
        assert_breaks(
            json!({"maxLength": 255}),
            json!({"maxLength": 128}),
            "events/x.json#/maxLength",
        );
        assert_breaks(
            json!({"maximum": 4}),
            json!({"maximum": 3}),
            "events/x.json#/maximum",
        );
        assert_breaks(
            json!({"maxItems": 5}),
            json!({"maxItems": 4.5}),
            "events/x.json#/maxItems",
        );
    }

    #[test]
    fn loosening_or_keeping_bounds_is_not_breaking() {
        assert_compatible(json!({"minLength": 16}), json!({"minLength": 8}));
        assert_compatible(json!({"minimum": 0}), json!({}));
        assert_compatible(json!({"maxLength": 128}), json!({"maxLength": 255}));
        assert_compatible(json!({"maximum": 4}), json!({"maximum": 4.0}));
        assert_compatible(json!({}), json!({"minLength": 0, "minItems": 0}));
    }

    // --- pattern, format and friends

    #[test]
    fn adding_or_changing_pattern_or_format_is_breaking() {
        assert_breaks(
            json!({"type": "string"}),
            json!({"type": "string", "pattern": "^a"}),
            "events/x.json#/pattern",
        );
        assert_breaks(
            json!({"pattern": "^a"}),
            json!({"pattern": "^b"}),
            "events/x.json#/pattern",
        );
        assert_breaks(
            json!({}),
            json!({"format": "date-time"}),
            "events/x.json#/format",
        );
        assert_breaks(
            json!({"format": "uri"}),
            json!({"format": "email"}),
            "events/x.json#/format",
        );
    }

    #[test]
    fn keeping_or_dropping_pattern_or_format_is_not_breaking() {
        assert_compatible(
            json!({"pattern": "^a", "format": "uri"}),
            json!({"pattern": "^a", "format": "uri"}),
        );
        assert_compatible(json!({"pattern": "^a", "format": "uri"}), json!({}));
    }

    #[test]
    fn ref_and_unique_items_changes_are_breaking() {
        assert_breaks(
            json!({"$ref": "#/$defs/a"}),
            json!({"$ref": "#/$defs/b"}),
            "events/x.json#/$ref",
        );
        assert_breaks(
            json!({"type": "array"}),
            json!({"type": "array", "uniqueItems": true}),
            "events/x.json#/uniqueItems",
        );
        assert_compatible(json!({"uniqueItems": true}), json!({"uniqueItems": false}));
    }

    #[test]
    fn unanalysed_constraints_are_breaking_when_added() {
        assert_breaks(
            json!({}),
            json!({"unevaluatedProperties": false}),
            "events/x.json#/unevaluatedProperties",
        );
        assert_compatible(
            json!({"dependentRequired": {"a": ["b"]}}),
            json!({"dependentRequired": {"a": ["b"]}, "description": "x"}),
        );
    }

    // --- items, prefixItems, $defs

    #[test]
    fn items_are_walked() {
        assert_breaks(
            json!({"type": "array", "items": {"type": "string"}}),
            json!({"type": "array", "items": {"type": "string", "minLength": 1}}),
            "events/x.json#/items/minLength",
        );
        assert_breaks(
            json!({"type": "array"}),
            json!({"type": "array", "items": {"type": "string"}}),
            "events/x.json#/items/type",
        );
        assert_compatible(
            json!({"items": {"type": "string", "minLength": 1}}),
            json!({"items": {"type": "string"}}),
        );
    }

    #[test]
    fn prefix_items_are_walked_by_index() {
        assert_breaks(
            json!({"prefixItems": [{"type": "string"}, {"type": "integer"}]}),
            json!({"prefixItems": [{"type": "string"}, {"type": "integer", "minimum": 0}]}),
            "events/x.json#/prefixItems/1/minimum",
        );
        assert_breaks(
            json!({"prefixItems": [{}]}),
            json!({"prefixItems": [{}, {"type": "string"}]}),
            "events/x.json#/prefixItems/1/type",
        );
        assert_compatible(
            json!({"prefixItems": [{}, {"type": "string"}]}),
            json!({"prefixItems": [{}]}),
        );
    }

    #[test]
    fn defs_are_walked_and_removal_is_breaking() {
        assert_breaks(
            json!({"$defs": {"id": {"type": "string"}}}),
            json!({"$defs": {"id": {"type": "string", "minLength": 1}}}),
            "events/x.json#/$defs/id/minLength",
        );
        assert_breaks(
            json!({"$defs": {"id": {}}}),
            json!({}),
            "events/x.json#/$defs/id",
        );
        assert_compatible(
            json!({"$defs": {"id": {}}}),
            json!({"$defs": {"id": {}, "more": {"type": "string"}}}),
        );
    }

    // --- combinators

    #[test]
    fn any_of_branches_are_walked_by_index() {
        assert_breaks(
            json!({"anyOf": [{"pattern": "^a"}, {"minLength": 16}]}),
            json!({"anyOf": [{"pattern": "^a"}, {"minLength": 20}]}),
            "events/x.json#/anyOf/1/minLength",
        );
    }

    #[test]
    fn losing_an_alternative_is_breaking_gaining_an_any_of_branch_is_not() {
        assert_breaks(
            json!({"anyOf": [{}, {}]}),
            json!({"anyOf": [{}]}),
            "events/x.json#/anyOf",
        );
        assert_breaks(
            json!({"oneOf": [{}, {}]}),
            json!({"oneOf": [{}]}),
            "events/x.json#/oneOf",
        );
        assert_compatible(
            json!({"anyOf": [{"type": "string"}]}),
            json!({"anyOf": [{"type": "string"}, {"type": "null"}]}),
        );
        assert_compatible(json!({"anyOf": [{"type": "string"}]}), json!({}));
    }

    #[test]
    fn adding_an_alternative_list_or_a_one_of_branch_is_breaking() {
        assert_breaks(
            json!({}),
            json!({"anyOf": [{"type": "string"}]}),
            "events/x.json#/anyOf",
        );
        assert_breaks(
            json!({"oneOf": [{"type": "string"}]}),
            json!({"oneOf": [{"type": "string"}, {"minLength": 1}]}),
            "events/x.json#/oneOf",
        );
    }

    #[test]
    fn all_of_is_walked_and_new_conjuncts_are_checked() {
        assert_breaks(
            json!({"allOf": [{"required": ["a"]}]}),
            json!({"allOf": [{"required": ["a", "b"]}]}),
            "events/x.json#/allOf/0/required",
        );
        assert_breaks(
            json!({}),
            json!({"allOf": [{"type": "object"}]}),
            "events/x.json#/allOf/0/type",
        );
        assert_compatible(json!({"allOf": [{"required": ["a"]}]}), json!({}));
    }

    #[test]
    fn if_then_else_is_walked() {
        let old = json!({"if": {"properties": {"k": {"const": "a"}}}, "then": {"required": ["x"]}, "else": {}});
        assert_breaks(
            old.clone(),
            json!({"if": {"properties": {"k": {"const": "a"}}}, "then": {"required": ["x"]}, "else": {"required": ["y"]}}),
            "events/x.json#/else/required",
        );
        assert_breaks(
            old.clone(),
            json!({"if": {"properties": {"k": {"const": "b"}}}, "then": {"required": ["x"]}, "else": {}}),
            "events/x.json#/if",
        );
        assert_compatible(
            old,
            json!({"if": {"properties": {"k": {"const": "a", "description": "kind"}}}, "then": {}, "else": {}}),
        );
    }

    #[test]
    fn adding_not_is_breaking() {
        assert_breaks(
            json!({}),
            json!({"not": {"pattern": "^whsec_"}}),
            "events/x.json#/not",
        );
        assert_compatible(json!({"not": {"pattern": "^whsec_"}}), json!({}));
    }

    // --- boolean schemas

    #[test]
    fn boolean_schemas_are_understood() {
        assert_breaks(
            json!({"properties": {"a": true}}),
            json!({"properties": {"a": false}}),
            "events/x.json#/properties/a",
        );
        assert_compatible(
            json!({"properties": {"a": false}}),
            json!({"properties": {"a": {"type": "string"}}}),
        );
        assert_compatible(
            json!({"properties": {"a": {}}}),
            json!({"properties": {"a": true}}),
        );
    }

    #[test]
    fn identical_schemas_have_no_breaking_changes() {
        let schema = json!({
            "type": "object",
            "properties": {"a": {"type": "string", "minLength": 1, "pattern": "^x", "enum": ["x1"]}},
            "required": ["a"],
            "additionalProperties": false,
            "anyOf": [{"required": ["a"]}],
            "$defs": {"d": {"type": "integer", "maximum": 3}}
        });
        assert_compatible(schema.clone(), schema);
    }
}
