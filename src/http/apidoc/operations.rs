//! The operation table: every route of the router (`http::router`), described. The router and
//! this table are checked against each other by a test (`tests.rs`), so a route cannot be added
//! without its description.

use serde_json::{Value, json};

use super::components::schema_ref;
use crate::catalog::Catalog;

/// One route and method, described as an OpenAPI operation object.
pub struct Operation {
    /// Lower-case HTTP method.
    pub method: &'static str,
    /// The path as the router writes it (`/v1/schemas/{*path}`).
    pub route: &'static str,
    pub spec: Value,
}

impl Operation {
    /// The path as OpenAPI writes it (`/v1/schemas/{path}`).
    pub fn openapi_path(&self) -> String {
        self.route.replace("{*", "{")
    }
}

fn admin() -> Value {
    json!([{"AdminKey": []}, {"AdminBearer": []}])
}

fn ingest_key() -> Value {
    json!([{"IngestKey": []}, {"IngestBearer": []}])
}

fn problem(name: &str) -> Value {
    json!({"$ref": format!("#/components/responses/{name}")})
}

fn json_body(schema: Value, description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

fn path_param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": description,
           "schema": {"type": "string"}})
}

fn page_params() -> Value {
    json!([
        {"name": "limit", "in": "query", "required": false,
         "description": "Page size, 1 to 200 (default 50).",
         "schema": {"type": "integer", "minimum": 1, "maximum": crate::http::extract::MAX_PAGE}},
        {"name": "cursor", "in": "query", "required": false,
         "description": "nextCursor of the previous page.", "schema": {"type": "string"}}
    ])
}

fn op(method: &'static str, route: &'static str, spec: Value) -> Operation {
    Operation {
        method,
        route,
        spec,
    }
}

/// The request body of an engine's ingest route: the engine's own webhook body.
fn engine_body(engine: &str, url: &str) -> Value {
    json!({
        "required": true,
        "description": format!("A webhook delivery of {engine}, as the engine sends it; translated onto the catalog by its adapter. What it may contain: {url}."),
        "content": {"application/json": {"schema": {"type": "object"}}}
    })
}

/// The responses of an engine's ingest route.
fn engine_responses() -> Value {
    json!({
        "202": json_body(schema_ref("EngineOutcome"), "Became catalog events, stored with their deliveries before this answer."),
        "200": json_body(schema_ref("Ignored"), "Acknowledged without becoming a catalog event (recorded, see GET /v1/ingest/ignored)."),
        "400": problem("BadRequest"),
        "401": problem("Unauthorized"),
        "413": problem("PayloadTooLarge"),
        "500": problem("Internal"),
        "503": problem("StoreUnavailable")
    })
}

/// A file of the operator page: static, no key, answered 304 to a matching `If-None-Match`.
fn ui_file(id: &str, summary: &str, media: &str) -> Value {
    json!({
        "operationId": id, "tags": ["ui"], "summary": summary,
        "responses": {
            "200": {"description": "The file, with a Content-Security-Policy that allows only this bridge.",
                    "content": {media: {"schema": {"type": "string"}}}},
            "304": {"description": "Not modified (ETag)."}
        }
    })
}

/// Every operation of the API.
pub fn operations(catalog: &Catalog) -> Vec<Operation> {
    let schema_paths: Vec<&String> = catalog.files().keys().collect();
    let source_doc = |engine: &str| catalog.schema_url(&format!("sources/{engine}.json"));
    vec![
        op(
            "get",
            "/healthz",
            json!({
                "operationId": "healthz", "tags": ["health"], "summary": "Liveness",
                "responses": {"200": json_body(schema_ref("Status"), "The process is alive.")}
            }),
        ),
        op(
            "get",
            "/readyz",
            json!({
                "operationId": "readyz", "tags": ["health"], "summary": "Readiness: the store is reachable",
                "responses": {
                    "200": json_body(schema_ref("Status"), "Ready."),
                    "503": problem("Unavailable")
                }
            }),
        ),
        op(
            "get",
            "/metrics",
            json!({
                "operationId": "metrics", "tags": ["health"], "summary": "Prometheus metrics",
                "responses": {"200": {"description": "Prometheus text format.",
                    "content": {"text/plain": {"schema": {"type": "string"}}}}}
            }),
        ),
        op(
            "get",
            "/v1/openapi.json",
            json!({
                "operationId": "getOpenApi", "tags": ["contract"],
                "summary": "This document (OpenAPI 3.1)",
                "description": "Generated at start from the catalog and the sources of this bridge: its webhooks are the events that can fire here.",
                "responses": {"200": json_body(json!({"type": "object"}), "The OpenAPI document.")}
            }),
        ),
        op(
            "get",
            "/v1/asyncapi.json",
            json!({
                "operationId": "getAsyncApi", "tags": ["contract"],
                "summary": "The deliveries as an AsyncAPI 3.0 document",
                "responses": {"200": json_body(json!({"type": "object"}), "The AsyncAPI document.")}
            }),
        ),
        op(
            "get",
            "/v1/events",
            json!({
                "operationId": "listEvents", "tags": ["contract"],
                "summary": "The catalog: every event, its status on this bridge and its sources",
                "responses": {"200": json_body(schema_ref("EventList"), "The catalog.")}
            }),
        ),
        op(
            "get",
            "/v1/events/{name}",
            json!({
                "operationId": "getEvent", "tags": ["contract"],
                "summary": "One event with its payload schema and examples",
                "parameters": [{"name": "name", "in": "path", "required": true,
                    "description": "An event name, e.g. session.status.",
                    "schema": {"type": "string"},
                    "examples": {"session.status": {"value": "session.status"}}}],
                "responses": {
                    "200": json_body(schema_ref("EventDetail"), "The event."),
                    "404": problem("NotFound")
                }
            }),
        ),
        op(
            "get",
            "/v1/sources",
            json!({
                "operationId": "listSources", "tags": ["contract"],
                "summary": "The engines this bridge knows and the ones that feed it (WABRIDGE_SOURCES)",
                "responses": {"200": json_body(schema_ref("Sources"), "The sources.")}
            }),
        ),
        op(
            "get",
            "/v1/schemas",
            json!({
                "operationId": "listSchemas", "tags": ["contract"],
                "summary": "The index of the JSON Schema files (draft 2020-12)",
                "responses": {"200": json_body(schema_ref("SchemaIndex"), "The files, with URL and ETag.")}
            }),
        ),
        op(
            "get",
            "/v1/schemas/{*path}",
            json!({
                "operationId": "getSchema", "tags": ["contract"],
                "summary": "One schema file",
                "description": "Served with a strong ETag; send it back in If-None-Match for a 304. The path may contain a slash (events/session.status.json): clients that percent-encode it (events%2Fsession.status.json) are served too.",
                "parameters": [
                    {"name": "path", "in": "path", "required": true,
                     "description": "A path listed by GET /v1/schemas.",
                     "schema": {"type": "string", "enum": schema_paths}},
                    {"name": "If-None-Match", "in": "header", "required": false,
                     "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": {
                        "description": "The file (catalog.json as application/json).",
                        "headers": {
                            "ETag": {"schema": {"type": "string"}},
                            "Cache-Control": {"schema": {"type": "string"}}
                        },
                        "content": {
                            "application/schema+json": {"schema": {"type": "object"}},
                            "application/json": {"schema": {"type": "object"}}
                        }
                    },
                    "304": {"description": "Not modified (the ETag matched).",
                            "headers": {"ETag": {"schema": {"type": "string"}}}},
                    "404": problem("NotFound")
                }
            }),
        ),
        op(
            "get",
            "/v1/webhooks",
            json!({
                "operationId": "listWebhooks", "tags": ["webhooks"], "security": admin(),
                "summary": "List registrations, oldest first",
                "parameters": page_params(),
                "responses": {
                    "200": json_body(schema_ref("WebhookList"), "One page."),
                    "400": problem("BadRequest"), "401": problem("Unauthorized")
                }
            }),
        ),
        op(
            "post",
            "/v1/webhooks",
            json!({
                "operationId": "createWebhook", "tags": ["webhooks"], "security": admin(),
                "summary": "Register a URL for events",
                "description": "Every problem is reported at once. Besides the schema, the network policy applies to url: loopback, private and link-local targets are refused (url_not_allowed) unless the operator allows them (WABRIDGE_ALLOW_TARGETS).",
                "requestBody": {"required": true, "content": {"application/json": {"schema": schema_ref("Registration")}}},
                "responses": {
                    "201": {
                        "description": "Created; the secret is in this answer only.",
                        "headers": {"Location": {"schema": {"type": "string"}, "description": "/v1/webhooks/{id}"}},
                        "content": {"application/json": {"schema": schema_ref("CreatedWebhook")}}
                    },
                    "400": problem("BadRequest"), "401": problem("Unauthorized"),
                    "413": problem("PayloadTooLarge"), "503": problem("StoreUnavailable")
                }
            }),
        ),
        op(
            "post",
            "/v1/webhooks/validate",
            json!({
                "operationId": "validateWebhook", "tags": ["webhooks"], "security": admin(),
                "summary": "Check a registration without storing anything (dry run)",
                "description": "The same rules as POST /v1/webhooks, network policy included. Always 200 with the verdict: a body that is not a valid registration (not JSON, empty, or breaking a rule) gets valid: false with every problem.",
                "requestBody": {"required": false, "content": {"application/json": {"schema": schema_ref("Registration")}}},
                "responses": {
                    "200": json_body(schema_ref("ValidationResult"), "The verdict."),
                    "401": problem("Unauthorized"), "413": problem("PayloadTooLarge")
                }
            }),
        ),
        op(
            "get",
            "/v1/webhooks/{id}",
            json!({
                "operationId": "getWebhook", "tags": ["webhooks"], "security": admin(),
                "summary": "One registration",
                "parameters": [path_param("id", "Registration id (wh_…).")],
                "responses": {
                    "200": json_body(schema_ref("Webhook"), "The registration."),
                    "401": problem("Unauthorized"), "404": problem("NotFound")
                }
            }),
        ),
        op(
            "patch",
            "/v1/webhooks/{id}",
            json!({
                "operationId": "updateWebhook", "tags": ["webhooks"], "security": admin(),
                "summary": "Change the fields given (active: false pauses, true resumes)",
                "parameters": [path_param("id", "Registration id (wh_…).")],
                "requestBody": {"required": true, "content": {"application/json": {"schema": schema_ref("RegistrationPatch")}}},
                "responses": {
                    "200": json_body(schema_ref("Webhook"), "The registration as changed."),
                    "400": problem("BadRequest"), "401": problem("Unauthorized"),
                    "404": problem("NotFound"), "413": problem("PayloadTooLarge"),
                    "503": problem("StoreUnavailable")
                }
            }),
        ),
        op(
            "delete",
            "/v1/webhooks/{id}",
            json!({
                "operationId": "deleteWebhook", "tags": ["webhooks"], "security": admin(),
                "summary": "Delete a registration",
                "parameters": [path_param("id", "Registration id (wh_…).")],
                "responses": {
                    "204": {"description": "Deleted."},
                    "401": problem("Unauthorized"), "404": problem("NotFound"),
                    "503": problem("StoreUnavailable")
                }
            }),
        ),
        op(
            "post",
            "/v1/webhooks/{id}/test",
            json!({
                "operationId": "testWebhook", "tags": ["deliveries"], "security": admin(),
                "summary": "Send a signed test delivery (test: true) of an example payload",
                "parameters": [path_param("id", "Registration id (wh_…).")],
                "requestBody": {"required": false, "content": {"application/json": {"schema": schema_ref("TestRequest")}}},
                "responses": {
                    "202": json_body(schema_ref("TestAccepted"), "Queued."),
                    "400": problem("BadRequest"), "401": problem("Unauthorized"),
                    "404": problem("NotFound"), "413": problem("PayloadTooLarge"),
                    "503": problem("StoreUnavailable")
                }
            }),
        ),
        op(
            "post",
            "/v1/webhooks/{id}/redrive",
            json!({
                "operationId": "redriveWebhook", "tags": ["deliveries"], "security": admin(),
                "summary": "Queue every dead delivery of a registration again (same keys)",
                "parameters": [path_param("id", "Registration id (wh_…).")],
                "responses": {
                    "202": json_body(schema_ref("Redriven"), "Queued."),
                    "401": problem("Unauthorized"), "404": problem("NotFound")
                }
            }),
        ),
        op(
            "get",
            "/v1/webhooks/{id}/deliveries",
            json!({
                "operationId": "listDeliveries", "tags": ["deliveries"], "security": admin(),
                "summary": "Deliveries of a registration, with every attempt",
                "parameters": [path_param("id", "Registration id (wh_…).")],
                "responses": {
                    "200": json_body(schema_ref("DeliveryList"), "One page."),
                    "400": problem("BadRequest"), "401": problem("Unauthorized"),
                    "404": problem("NotFound")
                }
            }),
        ),
        op(
            "get",
            "/v1/webhooks/{id}/deliveries/{delivery_id}",
            json!({
                "operationId": "getDelivery", "tags": ["deliveries"], "security": admin(),
                "summary": "One delivery",
                "parameters": [path_param("id", "Registration id (wh_…)."), path_param("delivery_id", "Delivery id (dlv_…).")],
                "responses": {
                    "200": json_body(schema_ref("Delivery"), "The delivery."),
                    "401": problem("Unauthorized"), "404": problem("NotFound")
                }
            }),
        ),
        op(
            "post",
            "/v1/webhooks/{id}/deliveries/{delivery_id}/redrive",
            json!({
                "operationId": "redriveDelivery", "tags": ["deliveries"], "security": admin(),
                "summary": "Queue one dead delivery again",
                "parameters": [path_param("id", "Registration id (wh_…)."), path_param("delivery_id", "Delivery id (dlv_…).")],
                "responses": {
                    "202": json_body(schema_ref("Redriven"), "Queued."),
                    "400": problem("BadRequest"), "401": problem("Unauthorized"),
                    "404": problem("NotFound")
                }
            }),
        ),
        op(
            "post",
            "/v1/ingest",
            json!({
                "operationId": "ingest", "tags": ["ingest"], "security": ingest_key(),
                "summary": "An engine reports an event (or a batch, in one transaction)",
                "description": "Each accepted event and its deliveries are stored in one transaction before the 202.",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "oneOf": [schema_ref("IngestEvent"), schema_ref("IngestBatch")]
                }}}},
                "responses": {
                    "202": json_body(json!({"oneOf": [schema_ref("IngestOutcome"),
                        {"type": "array", "items": schema_ref("IngestOutcome")}]}),
                        "Stored: the outcome, or one per event of a batch."),
                    "400": problem("BadRequest"), "401": problem("Unauthorized"),
                    "413": problem("PayloadTooLarge"), "503": problem("StoreUnavailable")
                }
            }),
        ),
        op(
            "post",
            "/v1/ingest/openwa",
            json!({
                "operationId": "ingestOpenWa", "tags": ["engines"],
                "security": [{"OpenWASignature": []}, {"IngestKey": []}, {"IngestBearer": []}],
                "summary": "OpenWA's own webhook deliveries",
                "requestBody": engine_body("OpenWA", &source_doc("openwa")),
                "responses": engine_responses()
            }),
        ),
        op(
            "post",
            "/v1/ingest/waha",
            json!({
                "operationId": "ingestWaha", "tags": ["engines"],
                "security": [{"WahaHmac": []}, {"IngestKey": []}, {"IngestBearer": []}],
                "summary": "WAHA's webhook deliveries",
                "requestBody": engine_body("WAHA", &source_doc("waha")),
                "responses": engine_responses()
            }),
        ),
        op(
            "post",
            "/v1/ingest/evolution",
            json!({
                "operationId": "ingestEvolution", "tags": ["engines"],
                "security": [{"EvolutionJwt": []}, {"IngestKey": []}],
                "summary": "Evolution API's webhook deliveries",
                "requestBody": engine_body("Evolution API", &source_doc("evolution")),
                "responses": engine_responses()
            }),
        ),
        op(
            "post",
            "/v1/ingest/evolution/{suffix}",
            json!({
                "operationId": "ingestEvolutionByEvent", "tags": ["engines"],
                "security": [{"EvolutionJwt": []}, {"IngestKey": []}],
                "summary": "Evolution API's deliveries with \"webhook by events\" (the same body; the event comes from it)",
                "parameters": [path_param("suffix", "The event part Evolution appends, e.g. messages-upsert.")],
                "requestBody": engine_body("Evolution API", &source_doc("evolution")),
                "responses": engine_responses()
            }),
        ),
        op(
            "get",
            "/v1/ingest/ignored",
            json!({
                "operationId": "listIgnored", "tags": ["engines"], "security": admin(),
                "summary": "Engine events acknowledged without becoming catalog events, with counts and why",
                "responses": {
                    "200": json_body(schema_ref("IgnoredList"), "Every ignored engine event name."),
                    "401": problem("Unauthorized")
                }
            }),
        ),
        op(
            "get",
            "/v1/stats",
            json!({
                "operationId": "getStats", "tags": ["deliveries"], "security": admin(),
                "summary": "Every delivery by state (the operator page's health view)",
                "responses": {
                    "200": json_body(schema_ref("StateCounts"), "Counts now."),
                    "401": problem("Unauthorized")
                }
            }),
        ),
        op(
            "get",
            "/v1/webhooks/{id}/stats",
            json!({
                "operationId": "getWebhookStats", "tags": ["deliveries"], "security": admin(),
                "summary": "A registration's deliveries by state",
                "parameters": [path_param("id", "Registration id (wh_…).")],
                "responses": {
                    "200": json_body(schema_ref("StateCounts"), "Counts now."),
                    "401": problem("Unauthorized"), "404": problem("NotFound")
                }
            }),
        ),
        op(
            "get",
            "/v1/webhooks/{id}/deliveries/{delivery_id}/envelope",
            json!({
                "operationId": "getDeliveryEnvelope", "tags": ["deliveries"], "security": admin(),
                "summary": "The envelope a delivery sends, byte for byte (the body of every attempt; no headers, no signature)",
                "parameters": [path_param("id", "Registration id (wh_…)."), path_param("delivery_id", "Delivery id (dlv_…).")],
                "responses": {
                    "200": json_body(schema_ref("Envelope"), "The envelope."),
                    "401": problem("Unauthorized"), "404": problem("NotFound")
                }
            }),
        ),
        op(
            "get",
            "/ui",
            ui_file(
                "getUi",
                "The operator page (static HTML; it calls this API with the admin key typed into it)",
                "text/html",
            ),
        ),
        op(
            "get",
            "/ui/app.js",
            ui_file(
                "getUiScript",
                "The operator page's script",
                "text/javascript",
            ),
        ),
        op(
            "get",
            "/ui/app.css",
            ui_file("getUiStyle", "The operator page's style sheet", "text/css"),
        ),
    ]
}
