//! The HTTP API described for other tools: an OpenAPI 3.1 document (every route, and a
//! `webhooks` entry per event that can fire on this bridge) and an AsyncAPI 3.0 document (the
//! same deliveries as channels, operations and messages).
//!
//! Both are generated once at start from the catalog (the schema files in `schemas/`, embedded
//! into the documents) and the operation table in [`operations`], and served as built. Nothing
//! here is hand-maintained JSON: a new event appears in both documents by itself, and a test
//! (`tests.rs`) fails when the router has a route that the operation table lacks.

mod asyncapi;
mod components;
mod openapi;
mod operations;
#[cfg(test)]
mod tests;

use axum::body::Bytes;
use serde_json::{Map, Value};

use crate::catalog::Catalog;

pub use operations::{Operation, operations};

/// Both documents of one bridge, serialised once.
pub struct ApiDocs {
    openapi: Bytes,
    asyncapi: Bytes,
}

impl ApiDocs {
    /// Generates both documents for the catalog (and so the sources) of this bridge.
    pub fn build(catalog: &Catalog) -> Self {
        Self {
            openapi: pretty(&openapi_document(catalog)),
            asyncapi: pretty(&asyncapi_document(catalog)),
        }
    }

    /// `openapi.json`, as served.
    pub fn openapi(&self) -> Bytes {
        self.openapi.clone()
    }

    /// `asyncapi.json`, as served.
    pub fn asyncapi(&self) -> Bytes {
        self.asyncapi.clone()
    }
}

/// The OpenAPI 3.1 document of a bridge with this catalog.
pub fn openapi_document(catalog: &Catalog) -> Value {
    openapi::document(catalog)
}

/// The AsyncAPI 3.0 document of a bridge with this catalog.
pub fn asyncapi_document(catalog: &Catalog) -> Value {
    asyncapi::document(catalog)
}

fn pretty(v: &Value) -> Bytes {
    let mut bytes = serde_json::to_vec_pretty(v).unwrap_or_default();
    bytes.push(b'\n');
    bytes.into()
}

/// The type name of an event in generated code: `session.reconnect_loop` → `SessionReconnectLoop`.
pub(crate) fn type_name(event: &str) -> String {
    event
        .split(['.', '_', '-'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

/// A schema file of the contract as a schema inside a document: its served JSON without `$id`
/// and `$schema` (the document is the resource; the file stays downloadable at its URL).
pub(crate) fn contract_schema(catalog: &Catalog, path: &str) -> Value {
    let mut v = catalog
        .files()
        .get(path)
        .map(|f| f.json.clone())
        .unwrap_or_else(|| Value::Object(Map::new()));
    if let Some(obj) = v.as_object_mut() {
        obj.remove("$id");
        obj.remove("$schema");
    }
    v
}

/// An example delivery envelope of `event`, built from the event's first example payload.
pub(crate) fn example_envelope(catalog: &Catalog, event: &str) -> Value {
    let data = catalog
        .examples(event)
        .first()
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    let session = data
        .get("sessionId")
        .and_then(Value::as_str)
        .unwrap_or("shop-main")
        .to_owned();
    serde_json::json!({
        "event": event,
        "sessionId": session,
        "timestamp": "2026-11-28T15:56:55.161Z",
        "idempotencyKey": format!("{}_5b0e2c3c0c1f4e7a9d8b6a5f4e3d2c1b", &event[..3.min(event.len())]),
        "deliveryId": "dlv_01a222dfb1fa74aa9d5d4659e99ae488",
        "data": data,
    })
}
