//! The AsyncAPI 3.0 document: what the bridge sends. One channel, the URL of a registration, and
//! per event that can fire on this bridge one message (the envelope with that event's data
//! schema, and the delivery headers) and one `send` operation, with HTTP bindings.

use serde_json::{Map, Value, json};

use super::components::{delivery_headers, schema_ref};
use super::{example_envelope, openapi, type_name};
use crate::catalog::Catalog;

/// The `headers` schema of a delivery message.
fn headers_schema() -> Value {
    let headers = delivery_headers();
    let required: Vec<&str> = headers
        .iter()
        .filter(|h| h.required)
        .map(|h| h.name)
        .collect();
    let properties: Map<String, Value> = headers
        .into_iter()
        .map(|h| {
            let mut schema = h.schema;
            schema["description"] = json!(h.description);
            (h.name.to_owned(), schema)
        })
        .collect();
    json!({"type": "object", "required": required, "properties": properties})
}

/// Example headers of a delivery of `event` (the signature values are placeholders).
fn example_headers(event: &str, envelope: &Value) -> Value {
    json!({
        "webhook-id": envelope["idempotencyKey"],
        "webhook-timestamp": "1795881415",
        "webhook-signature": "v1,D1mJGHqs8HdWbA4SEieylVjOrGkZbq991LysIQ4gv0Y=",
        "User-Agent": crate::delivery::request::USER_AGENT,
        "X-OpenWA-Event": event,
        "X-OpenWA-Idempotency-Key": envelope["idempotencyKey"],
        "X-OpenWA-Delivery-Id": envelope["deliveryId"],
        "X-OpenWA-Retry-Count": "0",
        "X-OpenWA-Signature": "sha256=da8aa4a7e54a5a43f438c1472f97693d1dce1d6047b88f4c9cc96b47a5df3093"
    })
}

pub(super) fn document(catalog: &Catalog) -> Value {
    let mut messages = Map::new();
    let mut channel_messages = Map::new();
    let mut operations = Map::new();
    for e in catalog.available() {
        let key = type_name(&e.name);
        let envelope = example_envelope(catalog, &e.name);
        messages.insert(
            key.clone(),
            json!({
                "name": e.name,
                "title": e.name,
                "summary": e.description,
                "contentType": "application/json",
                "headers": {"$ref": "#/components/schemas/DeliveryHeaders"},
                "payload": schema_ref(&format!("{key}Delivery")),
                "correlationId": {
                    "description": "The idempotency key: the same on every retry of this occurrence.",
                    "location": "$message.header#/webhook-id"
                },
                "bindings": {"http": {"bindingVersion": "0.3.0"}},
                "examples": [{
                    "name": format!("{}-example", e.name.replace('.', "-")),
                    "headers": example_headers(&e.name, &envelope),
                    "payload": envelope
                }]
            }),
        );
        channel_messages.insert(
            key.clone(),
            json!({"$ref": format!("#/components/messages/{key}")}),
        );
        operations.insert(
            format!("send{key}"),
            json!({
                "action": "send",
                "channel": {"$ref": "#/channels/registration"},
                "title": format!("Deliver {}", e.name),
                "summary": format!("POST a {} delivery to every registration subscribed to it.", e.name),
                "messages": [{"$ref": format!("#/channels/registration/messages/{key}")}],
                "bindings": {"http": {"method": "POST", "bindingVersion": "0.3.0"}}
            }),
        );
    }
    // The envelope and the payload schemas, shared with the OpenAPI document.
    let all = openapi::schemas(catalog);
    let mut schemas: Map<String, Value> = all
        .into_iter()
        .filter(|(name, _)| {
            name == "Envelope" || name.ends_with("Data") || name.ends_with("Delivery")
        })
        .collect();
    schemas.insert("DeliveryHeaders".into(), headers_schema());
    json!({
        "asyncapi": "3.0.0",
        "id": "urn:wabridge:deliveries",
        "info": {
            "title": "wabridge deliveries",
            "version": env!("CARGO_PKG_VERSION"),
            "description": format!(
                "What this bridge POSTs to a registered URL (contract version {}, sources {}): one message per event that can fire here. Verify webhook-signature with any Standard Webhooks library; deduplicate on webhook-id. Registrations are made through the HTTP API ({}/v1/openapi.json).",
                catalog.contract_version(), catalog.sources().selection(), catalog.public_url()),
            "license": {"name": env!("CARGO_PKG_LICENSE")},
            "tags": [{"name": "deliveries"}]
        },
        "defaultContentType": "application/json",
        "channels": {
            "registration": {
                "address": null,
                "title": "A registered URL",
                "description": "The url of a registration (POST /v1/webhooks); it receives the events its patterns match.",
                "messages": channel_messages
            }
        },
        "operations": operations,
        "components": {
            "schemas": schemas,
            "messages": messages
        }
    })
}
