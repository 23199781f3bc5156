//! The `events` rule: at least one; each an available name, `*`, or a family wildcard with
//! available events; duplicates folded; reserved names explained; unknown names suggested.

use serde_json::Value;

use super::{ErrorCode, FieldError};
use crate::catalog::{Catalog, Lookup, suggest};

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
            Lookup::Reserved(_) => errors.push(reserved(name, at)),
            Lookup::Unknown => errors.push(unknown(catalog, name, at)),
        }
    }
    (errors.len() == before).then_some(folded)
}

fn reserved(name: &str, pointer: String) -> FieldError {
    let what = if name.ends_with(".*") {
        format!("every event of the {name} family is reserved")
    } else {
        format!("{name} is reserved")
    };
    FieldError::new(
        pointer,
        ErrorCode::ReservedEvent,
        format!(
            "{what}: no engine emits it yet, so a registration for it would never fire. \
             It is named in the catalog so that nobody invents it; GET /v1/events shows its \
             status and docs/contract.md explains reserved events"
        ),
    )
    .with_value(Value::String(name.to_owned()))
}

fn unknown(catalog: &Catalog, name: &str, pointer: String) -> FieldError {
    let suggestion = suggest(catalog, name);
    let wrong = catalog.wrong_name(name);
    let message = match (&suggestion, wrong) {
        (Some(s), Some(w)) => format!("'{name}' is not an event name: {} Use '{s}'.", w.why),
        (Some(s), None) => format!("'{name}' is not an event name; did you mean '{s}'?"),
        (None, _) => format!("'{name}' is not an event name; GET /v1/events lists the names"),
    };
    FieldError::new(pointer, ErrorCode::UnknownEvent, message)
        .with_value(Value::String(name.to_owned()))
        .with_suggestion(suggestion)
}
