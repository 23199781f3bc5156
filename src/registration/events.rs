//! The `events` rule: at least one; each an available name, `*`, or a family wildcard with
//! available events; duplicates folded; reserved names explained; unknown names suggested.

use serde_json::Value;

use crate::catalog::{Catalog, Lookup, suggest, unknown_event_message};
use crate::validation::{ErrorCode, FieldError};

/// Checks an `events` value at `pointer`; pushes every problem and returns the folded list when
/// there was none.
pub fn check_events(
    catalog: &Catalog,
    value: &Value,
    pointer: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Vec<String>> {
    let Some(items) = value.as_array() else {
        errors.push(
            FieldError::new(
                pointer,
                ErrorCode::InvalidType,
                "'events' must be an array of event names",
            )
            .with_value(value.clone()),
        );
        return None;
    };
    if items.is_empty() {
        errors.push(FieldError::new(
            pointer,
            ErrorCode::EmptyEvents,
            "'events' must name at least one event; GET /v1/events lists them",
        ));
        return None;
    }
    let before = errors.len();
    let mut folded: Vec<String> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("{pointer}/{i}");
        let Some(name) = item.as_str() else {
            errors.push(
                FieldError::new(at, ErrorCode::InvalidType, "an event name must be a string")
                    .with_value(item.clone()),
            );
            continue;
        };
        match catalog.lookup(name) {
            Lookup::Subscribable => {
                if !folded.iter().any(|f| f == name) {
                    folded.push(name.to_owned());
                }
            }
            Lookup::Reserved(_) => errors.push(reserved(catalog, name, at)),
            Lookup::Unknown => errors.push(unknown(catalog, name, at)),
        }
    }
    (errors.len() == before).then_some(folded)
}

fn reserved(catalog: &Catalog, name: &str, pointer: String) -> FieldError {
    let message = match name.strip_suffix(".*") {
        Some(family) => {
            let members: Vec<&str> = catalog
                .events()
                .iter()
                .filter(|e| crate::catalog::family_of(&e.name) == Some(family))
                .map(|e| e.name.as_str())
                .collect();
            let first = members
                .first()
                .and_then(|m| catalog.reserved_reason(m))
                .unwrap_or_default();
            format!(
                "no event of the {name} family ({}) can fire on this bridge. For example: {first}",
                members.join(", ")
            )
        }
        None => catalog
            .reserved_reason(name)
            .unwrap_or_else(|| format!("{name} cannot fire on this bridge")),
    };
    FieldError::new(
        pointer,
        ErrorCode::ReservedEvent,
        format!("{message}. GET /v1/events shows which engines emit each event"),
    )
    .with_value(Value::String(name.to_owned()))
}

fn unknown(catalog: &Catalog, full_name: &str, pointer: String) -> FieldError {
    let suggestion = suggest(catalog, full_name);
    let why = catalog.wrong_name(full_name).map(|w| w.why.as_str());
    let message = unknown_event_message(full_name, suggestion.as_deref(), why);
    FieldError::new(pointer, ErrorCode::UnknownEvent, message)
        .with_value(Value::String(full_name.to_owned()))
        .with_suggestion(suggestion)
}
