//! The shape of an event posted to `POST /v1/ingest`, as the compiled `schemas/ingest.json`
//! finds it: which fields are unknown, missing, or of the wrong type or length. The ingest
//! rules turn this into their problems and add what the schema cannot say (the event name
//! against this bridge's catalog, the session id's printable characters, the time parsed, the
//! payload against its event's schema).

use std::collections::{BTreeMap, BTreeSet};

use jsonschema::error::ValidationErrorKind;
use serde_json::Value;

/// What the schema said about one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Misfit {
    /// Not of the type the schema names.
    Type,
    /// Of the right type, but too short or too long.
    Length,
}

/// Every problem the schema found in one event body.
#[derive(Debug, Default)]
pub(super) struct Shape {
    /// The body is not a JSON object (nothing else is checked then).
    pub not_object: bool,
    /// Fields the schema does not name.
    pub unknown: BTreeSet<String>,
    /// Required fields that are absent.
    pub missing: BTreeSet<String>,
    /// The first misfit of each present field.
    pub misfits: BTreeMap<String, Misfit>,
}

impl Shape {
    /// Checks `body` against the compiled `ingest.json`.
    pub fn of(schema: &jsonschema::Validator, body: &Value) -> Self {
        let mut shape = Shape::default();
        if schema.is_valid(body) {
            return shape;
        }
        for e in schema.iter_errors(body) {
            let path = e.instance_path().as_str();
            let field = path.strip_prefix('/').unwrap_or(path);
            match e.kind() {
                ValidationErrorKind::Type { .. } if path.is_empty() => shape.not_object = true,
                ValidationErrorKind::AdditionalProperties { unexpected } => {
                    shape.unknown.extend(unexpected.iter().cloned());
                }
                ValidationErrorKind::Required { property } => {
                    shape.missing.extend(property.as_str().map(str::to_owned));
                }
                kind if !field.is_empty() && !field.contains('/') => {
                    let misfit = match kind {
                        ValidationErrorKind::Type { .. } => Misfit::Type,
                        _ => Misfit::Length,
                    };
                    shape.misfits.entry(unescape(field)).or_insert(misfit);
                }
                _ => {}
            }
        }
        shape
    }

    /// The misfit of a field, if the schema found one.
    pub fn misfit(&self, field: &str) -> Option<Misfit> {
        self.misfits.get(field).copied()
    }
}

/// A JSON Pointer token back to the name it stands for.
fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}
