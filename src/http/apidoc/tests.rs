//! The router and the operation table agree: every route of `http::router` (read from its
//! source, `src/http/mod.rs`) is described, and every described operation is routed.

use std::collections::BTreeSet;

use super::operations;
use crate::catalog::{CANONICAL_BASE, Catalog};

const ROUTER_SOURCE: &str = include_str!("../mod.rs");

/// `(method, path)` of every `.route(path, get(..).post(..))` in the router's source.
fn routed() -> BTreeSet<(String, String)> {
    for unsupported in [".nest(", ".merge(", ".route_service(", ".nest_service("] {
        assert!(
            !ROUTER_SOURCE.contains(unsupported),
            "the router uses {unsupported}: teach this test to read it, so that the OpenAPI document cannot miss its routes"
        );
    }
    let mut out = BTreeSet::new();
    for chunk in ROUTER_SOURCE.split(".route(").skip(1) {
        let chunk = chunk.trim_start();
        let path = chunk
            .strip_prefix('"')
            .and_then(|c| c.split('"').next())
            .expect("a .route( call starts with a path literal");
        // The method router is the rest of the call, up to the parenthesis that closes it.
        let rest = &chunk[path.len() + 2..];
        let mut depth = 1;
        let mut end = rest.len();
        for (i, ch) in rest.char_indices() {
            match ch {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let methods = &rest[..end];
        let mut found = false;
        for m in ["get", "post", "put", "patch", "delete", "head", "options"] {
            let calls = methods
                .match_indices(&format!("{m}("))
                .filter(|(i, _)| {
                    *i == 0
                        || !methods[..*i]
                            .chars()
                            .last()
                            .is_some_and(|c| c.is_alphanumeric() || c == '_')
                })
                .count();
            if calls > 0 {
                found = true;
                out.insert((m.to_owned(), path.to_owned()));
            }
        }
        assert!(found, "no method found for the route {path}: {methods}");
    }
    out
}

#[test]
fn every_routed_operation_is_described_and_every_described_one_is_routed() {
    let catalog = Catalog::load(CANONICAL_BASE).unwrap();
    let routed = routed();
    assert!(
        routed.len() >= 20,
        "the router source was not read: {routed:?}"
    );
    let described: BTreeSet<(String, String)> = operations(&catalog)
        .iter()
        .map(|o| (o.method.to_owned(), o.route.to_owned()))
        .collect();
    let missing: Vec<_> = routed.difference(&described).collect();
    assert!(
        missing.is_empty(),
        "routes without a description in src/http/apidoc/operations.rs: {missing:?}"
    );
    let stale: Vec<_> = described.difference(&routed).collect();
    assert!(
        stale.is_empty(),
        "described operations the router does not have: {stale:?}"
    );
}

#[test]
fn operation_ids_are_unique() {
    let catalog = Catalog::load(CANONICAL_BASE).unwrap();
    let mut seen = BTreeSet::new();
    for o in operations(&catalog) {
        let id = o.spec["operationId"].as_str().unwrap().to_owned();
        assert!(seen.insert(id.clone()), "operationId {id} twice");
    }
}

#[test]
fn webhooks_follow_the_events_that_can_fire() {
    let specs = crate::catalog::parse_specs("openwa@0.4.3").unwrap();
    let old = Catalog::load_with(CANONICAL_BASE, &specs).unwrap();
    let current = Catalog::load(CANONICAL_BASE).unwrap();
    for catalog in [&old, &current] {
        let doc = super::openapi_document(catalog);
        let names: BTreeSet<&str> = doc["webhooks"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let available: BTreeSet<&str> = catalog.available().map(|e| e.name.as_str()).collect();
        assert_eq!(names, available);
        let asyncapi = super::asyncapi_document(catalog);
        assert_eq!(
            asyncapi["operations"].as_object().unwrap().len(),
            available.len()
        );
    }
    assert!(
        !super::openapi_document(&old)["webhooks"]
            .as_object()
            .unwrap()
            .contains_key("group.join")
    );
    assert!(
        super::openapi_document(&current)["webhooks"]
            .as_object()
            .unwrap()
            .contains_key("group.join")
    );
}

#[test]
fn type_names_are_identifiers() {
    assert_eq!(
        super::type_name("session.reconnect_loop"),
        "SessionReconnectLoop"
    );
    assert_eq!(super::type_name("group.join_request"), "GroupJoinRequest");
}
