//! The parts both documents share: the schemas of response bodies (which are not contract files
//! in `schemas/`), the problem+json responses, the security schemes, and the headers of a
//! delivery (`delivery/request.rs` sets them).

use serde_json::{Value, json};

use crate::http::error::PROBLEM_JSON;

/// `#/components/schemas/<name>`.
pub fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn nullable(ty: &str) -> Value {
    json!({ "type": [ty, "null"] })
}

fn date_time() -> Value {
    json!({"type": "string", "format": "date-time"})
}

/// Response schemas of the API (the request bodies are the contract files).
pub fn response_schemas() -> Vec<(&'static str, Value)> {
    vec![
        (
            "Problem",
            json!({
                "title": "Problem (RFC 9457)",
                "description": "Every error of the API, served as application/problem+json. Match on `type`; `detail` is for people.",
                "type": "object",
                "required": ["type", "title", "status", "detail"],
                "properties": {
                    "type": {"type": "string", "pattern": "^urn:wabridge:problem:[a-z-]+$",
                             "description": "The kind of problem, e.g. urn:wabridge:problem:invalid-request.",
                             "examples": ["urn:wabridge:problem:invalid-request", "urn:wabridge:problem:unauthorized", "urn:wabridge:problem:not-found"]},
                    "title": {"type": "string"},
                    "status": {"type": "integer", "minimum": 400, "maximum": 599},
                    "detail": {"type": "string"},
                    "errors": {"type": "array", "items": schema_ref("FieldError"),
                               "description": "With invalid-request: every problem found, not only the first."}
                }
            }),
        ),
        (
            "FieldError",
            json!({
                "description": "One problem in a request body.",
                "type": "object",
                "required": ["pointer", "code", "message"],
                "properties": {
                    "pointer": {"type": "string", "description": "JSON Pointer (RFC 6901) to the offending value; \"\" is the body itself."},
                    "code": {"type": "string", "description": "A stable code (docs/contract.md lists them); match on it.",
                             "examples": ["unknown_event", "reserved_event", "invalid_url", "url_not_allowed", "invalid_payload"]},
                    "value": {"description": "The offending value; left out when it may hold a credential or is missing."},
                    "message": {"type": "string"},
                    "suggestion": {"type": "string", "description": "The name to use instead, when there is one."}
                }
            }),
        ),
        (
            "Webhook",
            json!({
                "description": "A registration as the API shows it: never the secret, never header values.",
                "type": "object",
                "required": ["id", "url", "events", "sessionId", "description", "headerNames", "active",
                             "disabledReason", "rateLimit", "createdAt", "updatedAt", "cannotFire"],
                "properties": {
                    "id": {"type": "string", "pattern": "^wh_"},
                    "url": {"type": "string"},
                    "events": {"type": "array", "items": {"type": "string"}},
                    "sessionId": nullable("string"),
                    "description": nullable("string"),
                    "headerNames": {"type": "array", "items": {"type": "string"}},
                    "active": {"type": "boolean"},
                    "disabledReason": nullable("string"),
                    "rateLimit": nullable("number"),
                    "createdAt": date_time(),
                    "updatedAt": date_time(),
                    "cannotFire": {
                        "description": "Events the registration names that no configured source emits (after a change of WABRIDGE_SOURCES).",
                        "type": "array",
                        "items": {"type": "object", "required": ["event", "reason"],
                                  "properties": {"event": {"type": "string"}, "reason": {"type": "string"}}}
                    }
                }
            }),
        ),
        (
            "CreatedWebhook",
            json!({
                "description": "The registration just created, with its secret: the only time the secret is shown.",
                "allOf": [schema_ref("Webhook")],
                "type": "object",
                "required": ["secret"],
                "properties": {"secret": {"type": "string", "description": "Signs every delivery (whsec_… or the plain secret given)."}}
            }),
        ),
        (
            "WebhookList",
            json!({
                "type": "object",
                "required": ["data", "nextCursor"],
                "properties": {
                    "data": {"type": "array", "items": schema_ref("Webhook")},
                    "nextCursor": {"type": ["string", "null"], "description": "Pass as cursor for the next page; null on the last."}
                }
            }),
        ),
        (
            "ValidationResult",
            json!({
                "description": "The dry run's verdict: the normalized registration, or every problem.",
                "oneOf": [
                    {
                        "type": "object",
                        "required": ["valid", "normalized"],
                        "properties": {
                            "valid": {"const": true},
                            "normalized": {
                                "type": "object",
                                "required": ["url", "events", "sessionId", "description", "headerNames", "active", "rateLimit", "secret"],
                                "properties": {
                                    "url": {"type": "string"},
                                    "events": {"type": "array", "items": {"type": "string"}},
                                    "sessionId": nullable("string"),
                                    "description": nullable("string"),
                                    "headerNames": {"type": "array", "items": {"type": "string"}},
                                    "active": {"type": "boolean"},
                                    "rateLimit": nullable("number"),
                                    "secret": {"enum": ["provided", "generated"]}
                                }
                            }
                        }
                    },
                    {
                        "type": "object",
                        "required": ["valid", "errors"],
                        "properties": {
                            "valid": {"const": false},
                            "errors": {"type": "array", "minItems": 1, "items": schema_ref("FieldError")}
                        }
                    }
                ]
            }),
        ),
        (
            "Delivery",
            json!({
                "description": "One event to one registration, with every attempt.",
                "type": "object",
                "required": ["id", "webhookId", "eventId", "event", "idempotencyKey", "state", "attempts",
                             "nextAttemptAt", "lastStatus", "lastError", "test", "createdAt", "updatedAt", "attemptLog"],
                "properties": {
                    "id": {"type": "string", "pattern": "^dlv_"},
                    "webhookId": {"type": "string"},
                    "eventId": {"type": "string"},
                    "event": {"type": "string"},
                    "idempotencyKey": {"type": "string"},
                    "state": {"type": "string", "examples": ["pending", "delivered", "dead"]},
                    "attempts": {"type": "integer", "minimum": 0},
                    "nextAttemptAt": {"type": ["string", "null"], "format": "date-time"},
                    "lastStatus": nullable("integer"),
                    "lastError": nullable("string"),
                    "test": {"type": "boolean"},
                    "createdAt": date_time(),
                    "updatedAt": date_time(),
                    "attemptLog": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["attempt", "startedAt", "statusCode", "latencyMs", "error"],
                            "properties": {
                                "attempt": {"type": "integer", "minimum": 1},
                                "startedAt": date_time(),
                                "statusCode": nullable("integer"),
                                "latencyMs": {"type": "integer"},
                                "error": nullable("string")
                            }
                        }
                    }
                }
            }),
        ),
        (
            "StateCounts",
            json!({
                "description": "Deliveries by state. inFlight: the pending ones leased now (being sent, or held ready to send); they count in pending too.",
                "type": "object",
                "required": ["pending", "inFlight", "delivered", "dead"],
                "properties": {
                    "pending": {"type": "integer", "minimum": 0},
                    "inFlight": {"type": "integer", "minimum": 0},
                    "delivered": {"type": "integer", "minimum": 0},
                    "dead": {"type": "integer", "minimum": 0}
                }
            }),
        ),
        (
            "DeliveryList",
            json!({
                "type": "object",
                "required": ["data", "nextCursor"],
                "properties": {
                    "data": {"type": "array", "items": schema_ref("Delivery")},
                    "nextCursor": nullable("string")
                }
            }),
        ),
        (
            "TestRequest",
            json!({
                "description": "Which subscribed event to send; absent or null: the first one the registration receives.",
                "type": "object",
                "properties": {"event": {"type": ["string", "null"]}}
            }),
        ),
        (
            "TestAccepted",
            json!({
                "type": "object",
                "required": ["deliveryId", "event", "idempotencyKey"],
                "properties": {
                    "deliveryId": nullable("string"),
                    "event": {"type": "string"},
                    "idempotencyKey": {"type": "string"}
                }
            }),
        ),
        (
            "Redriven",
            json!({
                "type": "object",
                "required": ["redriven"],
                "properties": {"redriven": {"type": "integer", "minimum": 0, "description": "How many dead deliveries were queued again."}}
            }),
        ),
        (
            "IngestOutcome",
            json!({
                "description": "What became of one ingested event.",
                "type": "object",
                "required": ["eventId", "idempotencyKey", "duplicate", "dispatched", "deliveries"],
                "properties": {
                    "eventId": {"type": "string"},
                    "idempotencyKey": {"type": "string"},
                    "duplicate": {"type": "boolean", "description": "The same occurrence was ingested before; nothing new is delivered."},
                    "dispatched": {"type": "boolean"},
                    "deliveries": {"type": "array", "items": {"type": "string"}},
                    "reason": {"type": "string", "description": "Why an accepted event was not dispatched (e.g. an unchanged session.status)."}
                }
            }),
        ),
        (
            "IngestBatch",
            json!({
                "type": "array",
                "minItems": 1,
                "maxItems": crate::ingest::MAX_BATCH,
                "items": schema_ref("IngestEvent")
            }),
        ),
        (
            "Ignored",
            json!({
                "description": "An engine delivery acknowledged without becoming a catalog event (listed at GET /v1/ingest/ignored).",
                "type": "object",
                "required": ["ignored", "reason"],
                "properties": {
                    "ignored": {"const": true},
                    "source": {"type": "string"},
                    "event": {"type": "string", "description": "The engine's own event name."},
                    "reason": {"type": "string"}
                }
            }),
        ),
        (
            "EngineOutcome",
            json!({
                "description": "An engine delivery that became catalog events: the first one's outcome, and every event's.",
                "allOf": [schema_ref("IngestOutcome")],
                "type": "object",
                "required": ["event", "events"],
                "properties": {
                    "event": {"type": "string"},
                    "events": {"type": "array", "items": {
                        "allOf": [schema_ref("IngestOutcome")],
                        "type": "object", "required": ["event"], "properties": {"event": {"type": "string"}}
                    }},
                    "ignored": {"type": "array", "items": schema_ref("Ignored")}
                }
            }),
        ),
        (
            "IgnoredList",
            json!({
                "type": "object",
                "required": ["data"],
                "properties": {"data": {"type": "array", "items": {
                    "type": "object",
                    "required": ["source", "event", "count", "firstSeenAt", "lastSeenAt", "lastReason"],
                    "properties": {
                        "source": {"type": "string"},
                        "event": {"type": "string"},
                        "count": {"type": "integer", "minimum": 1},
                        "firstSeenAt": date_time(),
                        "lastSeenAt": date_time(),
                        "lastReason": {"type": "string"}
                    }
                }}}
            }),
        ),
        (
            "Emitter",
            json!({
                "description": "An engine that emits an event, under which of its own names, from which release.",
                "type": "object",
                "required": ["engine", "title", "configured", "since", "native"],
                "properties": {
                    "engine": {"type": "string"},
                    "title": {"type": "string"},
                    "configured": {"type": "boolean"},
                    "since": {"type": "string"},
                    "native": {"type": "array", "items": {"type": "object", "required": ["name"],
                        "properties": {"name": {"type": "string"}, "when": {"type": "string"}}}}
                }
            }),
        ),
        (
            "EventSummary",
            json!({
                "type": "object",
                "required": ["name", "family", "status", "optIn", "description", "schemaUrl", "sources"],
                "properties": {
                    "name": {"type": "string"},
                    "family": nullable("string"),
                    "status": {"enum": ["available", "reserved"], "description": "On this bridge: can it fire here?"},
                    "optIn": {"type": "boolean"},
                    "description": {"type": "string"},
                    "schemaUrl": {"type": "string", "format": "uri"},
                    "sources": {"type": "array", "items": schema_ref("Emitter")},
                    "reservedReason": {"type": "string"}
                }
            }),
        ),
        (
            "EventDetail",
            json!({
                "allOf": [schema_ref("EventSummary")],
                "type": "object",
                "required": ["schema", "examples"],
                "properties": {
                    "schema": {"type": ["object", "null"], "description": "The payload schema (JSON Schema draft 2020-12)."},
                    "examples": {"type": "array"}
                }
            }),
        ),
        (
            "Sources",
            json!({
                "type": "object",
                "required": ["selection", "configured", "known"],
                "properties": {
                    "selection": {"type": "string", "description": "WABRIDGE_SOURCES as resolved, e.g. openwa."},
                    "configured": {"type": "array", "items": {
                        "type": "object",
                        "required": ["engine", "title", "version", "effectiveVersion", "ingestPath"],
                        "properties": {
                            "engine": {"type": "string"}, "title": {"type": "string"},
                            "version": nullable("string"), "effectiveVersion": {"type": "string"},
                            "ingestPath": {"type": "string"}
                        }
                    }},
                    "known": {"type": "array", "items": {
                        "type": "object",
                        "required": ["engine", "title", "homepage", "current", "configured", "ingestPath", "schemaUrl"],
                        "properties": {
                            "engine": {"type": "string"}, "title": {"type": "string"},
                            "homepage": {"type": "string"}, "current": {"type": "string"},
                            "configured": {"type": "boolean"}, "ingestPath": {"type": "string"},
                            "schemaUrl": {"type": "string", "format": "uri"}
                        }
                    }}
                }
            }),
        ),
        (
            "EventList",
            json!({
                "type": "object",
                "required": ["contractVersion", "sources", "events", "subscribable", "wrongNames"],
                "properties": {
                    "contractVersion": {"type": "integer", "minimum": 1},
                    "sources": schema_ref("Sources"),
                    "events": {"type": "array", "items": schema_ref("EventSummary")},
                    "subscribable": {"type": "array", "items": {"type": "string"}},
                    "wrongNames": {"type": "array", "items": {
                        "type": "object", "required": ["name", "use", "why"],
                        "properties": {"name": {"type": "string"}, "use": {"type": "string"}, "why": {"type": "string"}}
                    }}
                }
            }),
        ),
        (
            "SchemaIndex",
            json!({
                "type": "object",
                "required": ["contractVersion", "schemas"],
                "properties": {
                    "contractVersion": {"type": "integer", "minimum": 1},
                    "schemas": {"type": "array", "items": {
                        "type": "object", "required": ["path", "url", "title", "etag"],
                        "properties": {
                            "path": {"type": "string"}, "url": {"type": "string", "format": "uri"},
                            "title": nullable("string"), "etag": {"type": "string"}
                        }
                    }}
                }
            }),
        ),
        (
            "Status",
            json!({"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}}),
        ),
    ]
}

/// The problem+json responses, by name in `#/components/responses`.
pub fn problem_responses() -> Value {
    let problem = |description: &str| {
        json!({
            "description": description,
            "content": {PROBLEM_JSON: {"schema": schema_ref("Problem")}}
        })
    };
    let mut unauthorized =
        problem("No key, or a key without the role (urn:wabridge:problem:unauthorized).");
    unauthorized["headers"] = json!({
        "WWW-Authenticate": {"description": "Bearer realm=\"wabridge\"", "schema": {"type": "string"}}
    });
    json!({
        "BadRequest": problem("The body or query cannot be read (invalid-json, unreadable-body, invalid-query), or breaks the rules (invalid-request, with every problem in errors)."),
        "Unauthorized": unauthorized,
        "NotFound": problem("No such registration, delivery, event or schema file (urn:wabridge:problem:not-found)."),
        "MethodNotAllowed": problem("The route exists but not with this method (urn:wabridge:problem:method-not-allowed)."),
        "PayloadTooLarge": problem("The body is larger than 16 MiB (urn:wabridge:problem:payload-too-large)."),
        "BodyTimeout": problem("The body did not arrive within the server's body timeout; nothing was stored (urn:wabridge:problem:body-timeout)."),
        "UnsupportedMediaType": problem("A body with a Content-Type other than JSON (urn:wabridge:problem:unsupported-media-type)."),
        "Unavailable": problem("The store is not reachable (urn:wabridge:problem:unavailable)."),
        "StoreUnavailable": problem("The database cannot take the request now: disk full, restarting or unreachable. With urn:wabridge:problem:store-unavailable nothing was stored; retry after Retry-After seconds. With urn:wabridge:problem:store-outcome-unknown (PostgreSQL) the connection was lost during the commit and the database could not be asked in time whether it took effect: the request may have been stored, and an ingest sent again is answered as a duplicate if it was."),
        "Internal": problem("A bug or an outage; the cause is logged, not returned (urn:wabridge:problem:internal)."),
    })
}

/// The security schemes: the two key roles (each as `X-API-Key` or a bearer token) and the
/// engines' own signatures on their ingest routes.
pub fn security_schemes() -> Value {
    json!({
        "AdminKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                     "description": "An admin key (WABRIDGE_API_KEY; generated and printed once on first start without one)."},
        "AdminBearer": {"type": "http", "scheme": "bearer",
                        "description": "An admin key as Authorization: Bearer <key>."},
        "IngestKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                      "description": "An ingest key (WABRIDGE_INGEST_KEY), for engines posting events."},
        "IngestBearer": {"type": "http", "scheme": "bearer",
                         "description": "An ingest key as Authorization: Bearer <key>."},
        "OpenWASignature": {"type": "apiKey", "in": "header", "name": "X-OpenWA-Signature",
                            "description": "sha256=<hex HMAC-SHA256 of the raw body> under WABRIDGE_OPENWA_SECRET. With that secret set it is required and the ingest key is not accepted."},
        "WahaHmac": {"type": "apiKey", "in": "header", "name": "X-Webhook-Hmac",
                     "description": "Lowercase hex HMAC-SHA512 of the raw body under WABRIDGE_WAHA_HMAC_KEY (WAHA sends X-Webhook-Hmac-Algorithm: sha512). With that key set it is required and the ingest key is not accepted."},
        "EvolutionJwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                         "description": "Authorization: Bearer <HS256 JWT> signed with WABRIDGE_EVOLUTION_JWT_KEY (Evolution's jwt_key webhook header). With that key set it is required and the ingest key is not accepted."}
    })
}

/// One header of a delivery: (name, required, schema, description).
pub struct DeliveryHeader {
    pub name: &'static str,
    pub required: bool,
    pub schema: Value,
    pub description: &'static str,
}

/// Every header wabridge sets on a delivery (`delivery/request.rs`), besides Content-Type.
pub fn delivery_headers() -> Vec<DeliveryHeader> {
    let h = |name, required, schema, description| DeliveryHeader {
        name,
        required,
        schema,
        description,
    };
    vec![
        h(
            "webhook-id",
            true,
            json!({"type": "string", "pattern": "^[A-Za-z0-9_-]+$"}),
            "Standard Webhooks message id: the idempotency key, the same on every retry and redrive. Deduplicate on it.",
        ),
        h(
            "webhook-timestamp",
            true,
            json!({"type": "string", "pattern": "^[0-9]+$"}),
            "Unix seconds of this attempt (signed), so a late retry still verifies within the usual 5-minute tolerance.",
        ),
        h(
            "webhook-signature",
            true,
            json!({"type": "string", "pattern": "^v1,[A-Za-z0-9+/=]+$"}),
            "v1,<base64 HMAC-SHA256(key, \"{webhook-id}.{webhook-timestamp}.{body}\")>; the key is the base64-decoded part of a whsec_ secret, else the UTF-8 bytes of a plain secret. Verify with any Standard Webhooks library.",
        ),
        h(
            "User-Agent",
            true,
            json!({"type": "string", "pattern": "^wabridge/"}),
            "wabridge/<version>.",
        ),
        h(
            "X-OpenWA-Event",
            true,
            json!({"type": "string"}),
            "The event name (OpenWA-compatible header).",
        ),
        h(
            "X-OpenWA-Idempotency-Key",
            true,
            json!({"type": "string"}),
            "The idempotency key, as webhook-id (OpenWA-compatible header).",
        ),
        h(
            "X-OpenWA-Delivery-Id",
            true,
            json!({"type": "string", "pattern": "^dlv_"}),
            "The delivery id, the same on every retry.",
        ),
        h(
            "X-OpenWA-Retry-Count",
            true,
            json!({"type": "string", "pattern": "^[0-9]+$"}),
            "0 on the first attempt, then the number of attempts before this one.",
        ),
        h(
            "X-OpenWA-Signature",
            true,
            json!({"type": "string", "pattern": "^sha256=[0-9a-f]{64}$"}),
            "sha256=<lowercase hex HMAC-SHA256 of the raw body under the secret's UTF-8 bytes> (OpenWA-compatible).",
        ),
        h(
            "X-Wabridge-Test",
            false,
            json!({"const": "true"}),
            "Present, true, on test deliveries (POST /v1/webhooks/{id}/test) only.",
        ),
    ]
}
