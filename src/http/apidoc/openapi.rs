//! The OpenAPI 3.1 document: the operation table as `paths`, one `webhooks` entry per event that
//! can fire on this bridge, and the contract files embedded as component schemas, so the
//! document is self-contained.

use serde_json::{Map, Value, json};

use super::components::{
    delivery_headers, problem_responses, response_schemas, schema_ref, security_schemes,
};
use super::{contract_schema, example_envelope, operations, type_name};
use crate::catalog::Catalog;
use crate::ids::SessionId;

/// Every operation of every path may also answer these (a wrong method, an outage), and every
/// one that takes a body these (a body not JSON, or too slow).
fn common_responses(spec: &mut Value) {
    let takes_body = spec.get("requestBody").is_some();
    if let Some(responses) = spec.get_mut("responses").and_then(Value::as_object_mut) {
        if takes_body {
            responses
                .entry("408")
                .or_insert_with(|| json!({"$ref": "#/components/responses/BodyTimeout"}));
            responses
                .entry("415")
                .or_insert_with(|| json!({"$ref": "#/components/responses/UnsupportedMediaType"}));
        }
        responses
            .entry("405")
            .or_insert_with(|| json!({"$ref": "#/components/responses/MethodNotAllowed"}));
        responses
            .entry("500")
            .or_insert_with(|| json!({"$ref": "#/components/responses/Internal"}));
    }
}

fn paths(catalog: &Catalog) -> Value {
    let mut paths = Map::new();
    for op in operations(catalog) {
        let mut spec = op.spec.clone();
        common_responses(&mut spec);
        let item = paths
            .entry(op.openapi_path())
            .or_insert_with(|| Value::Object(Map::new()));
        item[op.method] = spec;
    }
    Value::Object(paths)
}

/// Lets the optional fields `names` of an object schema be `null` too, as the server reads a
/// `null` there as absent.
fn null_as_absent(schema: &mut Value, names: &[&str]) {
    for name in names {
        if let Some(field) = schema.pointer_mut(&format!("/properties/{name}"))
            && let Some(ty) = field.get("type").and_then(Value::as_str)
        {
            field["type"] = json!([ty, "null"]);
        }
    }
}

/// What the server checks of a session id beyond the contract file ([`SessionId::parse`]): at
/// most [`SessionId::MAX_LEN`] characters, not blank, no control characters.
fn session_id_rules(schema: &mut Value) {
    if let Some(field) = schema.pointer_mut("/properties/sessionId") {
        field["maxLength"] = json!(SessionId::MAX_LEN);
        field["pattern"] = json!(SESSION_ID_PATTERN);
    }
}

/// Printable (no Unicode control character, category Cc) and not only white space.
const SESSION_ID_PATTERN: &str = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$";

/// `registration.json` for this bridge: its `events` limited to the patterns that can be
/// subscribed to here (reserved events are refused by the server), `secret: null` read as
/// absent.
fn registration(catalog: &Catalog) -> Value {
    let mut schema = contract_schema(catalog, "registration.json");
    if let Some(items) = schema.pointer_mut("/properties/events/items") {
        items["enum"] = json!(catalog.subscribable_patterns());
    }
    null_as_absent(&mut schema, &["secret"]);
    session_id_rules(&mut schema);
    // The server also takes an internationalized host name, and stores it in its ASCII form.
    if let Some(url) = schema.pointer_mut("/properties/url") {
        url["format"] = json!("iri");
    }
    schema
}

/// `ingest.json` for this bridge: one variant per event that can fire here, whose `data` is
/// that event's payload schema (the server checks it against exactly that); `occurredAt` and
/// `eventId` may be `null` (read as absent).
fn ingest_event(catalog: &Catalog) -> Value {
    let mut schema = contract_schema(catalog, "ingest.json");
    null_as_absent(&mut schema, &["occurredAt", "eventId"]);
    session_id_rules(&mut schema);
    let variants: Vec<Value> = catalog
        .available()
        .map(|e| {
            json!({
                "title": e.name,
                "properties": {
                    "event": {"const": e.name},
                    "data": schema_ref(&format!("{}Data", type_name(&e.name)))
                }
            })
        })
        .collect();
    schema["oneOf"] = Value::Array(variants);
    schema
}

/// The same body for PATCH: every field optional.
fn registration_patch(catalog: &Catalog) -> Value {
    let mut schema = registration(catalog);
    if let Some(obj) = schema.as_object_mut() {
        obj.remove("required");
        obj.remove("examples");
        obj.insert("title".into(), json!("Webhook registration change"));
        obj.insert(
            "description".into(),
            json!("Body of PATCH /v1/webhooks/{id}: the fields to change, with the rules of a registration."),
        );
    }
    schema
}

/// Component schemas: the contract files, one payload schema and one delivery per event, and
/// the response bodies.
pub(super) fn schemas(catalog: &Catalog) -> Map<String, Value> {
    let mut s = Map::new();
    s.insert("Envelope".into(), contract_schema(catalog, "envelope.json"));
    s.insert("Registration".into(), registration(catalog));
    s.insert("RegistrationPatch".into(), registration_patch(catalog));
    s.insert("IngestEvent".into(), ingest_event(catalog));
    for e in catalog.events() {
        s.insert(
            format!("{}Data", type_name(&e.name)),
            contract_schema(catalog, &e.schema),
        );
    }
    for e in catalog.available() {
        s.insert(
            format!("{}Delivery", type_name(&e.name)),
            json!({
                "title": format!("{} delivery", e.name),
                "description": format!("The envelope of a {} delivery: {}", e.name, e.description),
                "allOf": [schema_ref("Envelope")],
                "type": "object",
                "properties": {
                    "event": {"const": e.name},
                    "data": schema_ref(&format!("{}Data", type_name(&e.name)))
                },
                "examples": [example_envelope(catalog, &e.name)]
            }),
        );
    }
    for (name, schema) in response_schemas() {
        s.insert(name.into(), schema);
    }
    s
}

fn header_parameters() -> Map<String, Value> {
    delivery_headers()
        .into_iter()
        .map(|h| {
            (
                parameter_name(h.name),
                json!({
                    "name": h.name, "in": "header", "required": h.required,
                    "description": h.description, "schema": h.schema
                }),
            )
        })
        .collect()
}

/// `X-OpenWA-Event` → `XOpenWAEvent`, a component key.
fn parameter_name(header: &str) -> String {
    header
        .split('-')
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

/// One entry of `webhooks` per event that can fire on this bridge.
fn webhooks(catalog: &Catalog) -> Value {
    let params: Vec<Value> = delivery_headers()
        .iter()
        .map(|h| json!({"$ref": format!("#/components/parameters/{}", parameter_name(h.name))}))
        .collect();
    let mut out = Map::new();
    for e in catalog.available() {
        let opt_in = if e.opt_in {
            " Opt-in: only a registration that names it receives it (`*` and the family wildcard do not)."
        } else {
            ""
        };
        out.insert(
            e.name.clone(),
            json!({"post": {
                "operationId": format!("deliver{}", type_name(&e.name)),
                "tags": ["deliveries"],
                "summary": e.name,
                "description": format!(
                    "{}{opt_in} Sent to every active registration whose events match it, signed (Standard Webhooks and OpenWA-compatible headers), at least once: deduplicate on webhook-id.",
                    e.description),
                "parameters": params,
                "requestBody": {"required": true, "content": {"application/json": {
                    "schema": schema_ref(&format!("{}Delivery", type_name(&e.name)))
                }}},
                "responses": {
                    "2XX": {"description": "Delivered; the body is ignored."},
                    "410": {"description": "Gone: the registration is deactivated (PATCH active: true resumes) and the delivery stops."},
                    "429": {"description": "Retried, no sooner than Retry-After (capped at one hour).",
                            "headers": {"Retry-After": {"schema": {"type": "string"}}}},
                    "503": {"description": "Retried, no sooner than Retry-After (capped at one hour).",
                            "headers": {"Retry-After": {"schema": {"type": "string"}}}},
                    "default": {"description": "Any other answer (3xx included: redirects are not followed), a timeout or a network error: retried on the schedule, then dead-lettered."}
                }
            }}),
        );
    }
    Value::Object(out)
}

pub(super) fn document(catalog: &Catalog) -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "wabridge",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "A stable trigger contract between WhatsApp gateway engines and automation tools.",
            "description": format!(
                "Generated by this bridge at start from its event catalog (contract version {}) and the engines that feed it ({}). `webhooks` lists the events that can fire here. Errors are RFC 9457 problem+json. Every response carries an x-request-id header.",
                catalog.contract_version(), catalog.sources().selection()),
            "license": {"name": env!("CARGO_PKG_LICENSE"), "identifier": env!("CARGO_PKG_LICENSE")},
            "x-contract-version": catalog.contract_version()
        },
        "servers": [{"url": catalog.public_url(), "description": "This bridge"}],
        "tags": [
            {"name": "contract", "description": "The event catalog and its schemas; no key needed."},
            {"name": "webhooks", "description": "Registrations (admin key)."},
            {"name": "deliveries", "description": "Deliveries: inspection, redrive, tests; and, under webhooks, what arrives at a registered URL."},
            {"name": "ingest", "description": "Engines report events (ingest key)."},
            {"name": "engines", "description": "Engines' own webhook formats, translated by adapters."},
            {"name": "health", "description": "Liveness, readiness, metrics."},
            {"name": "ui", "description": "The operator page (docs/operator.md): static files; its data comes from this API with the admin key."}
        ],
        "paths": paths(catalog),
        "webhooks": webhooks(catalog),
        "components": {
            "schemas": schemas(catalog),
            "responses": problem_responses(),
            "parameters": header_parameters(),
            "securitySchemes": security_schemes()
        }
    })
}
