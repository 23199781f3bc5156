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

use serde_json::{Map, Value};
use wabridge::validation::pointer_token;

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
mod tests;
