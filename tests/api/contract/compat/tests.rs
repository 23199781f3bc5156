//! The compatibility check on small hand-made contracts, one rule at a time.

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
            include_str!("../../../../schemas/events/session.status.json"),
        ),
        (
            "events/message.received.json",
            include_str!("../../../../schemas/events/message.received.json"),
        ),
        (
            "registration.json",
            include_str!("../../../../schemas/registration.json"),
        ),
        (
            "envelope.json",
            include_str!("../../../../schemas/envelope.json"),
        ),
    ];
    let catalog: Value = serde_json::from_str(include_str!("../../../../schemas/catalog.json"))
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
