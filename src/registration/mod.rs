//! Registration rules: a webhook registration body becomes a validated [`Registration`] (or a
//! [`RegistrationPatch`]) once, at the edge, or a list of every problem found in it.
//!
//! The rules are pure and offline; `operations.rs` adds the network policy check on the URL
//! (for the API; `wabridge validate` runs the rules alone) and the create and update operations
//! against the store. `apply.rs` turns a registration into the stored model and merges a patch
//! into it.

mod apply;
mod events;
mod fields;
mod operations;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::catalog::Catalog;
use crate::ids::SessionId;
use crate::secret::WebhookSecret;
use crate::target_url::TargetUrl;
use crate::validation::{ErrorCode, FieldError, closest, pointer_token, type_name};

pub use events::check_events;
pub use fields::{MAX_URL_LEN, is_reserved_header};
pub use operations::{
    UPDATE_ATTEMPTS, UpdateError, check_patch, check_registration, create, update,
};

/// Fields a registration body may carry.
pub const KNOWN_FIELDS: &[&str] = &[
    "url",
    "events",
    "secret",
    "sessionId",
    "description",
    "headers",
    "active",
    "rateLimit",
];

/// A complete, valid registration (for create and validate).
#[derive(Debug, Clone)]
pub struct Registration {
    pub url: TargetUrl,
    pub events: Vec<String>,
    pub secret: Option<WebhookSecret>,
    pub session_id: Option<SessionId>,
    pub description: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub active: bool,
    pub rate_limit: Option<f64>,
}

/// A partial update: `None` leaves a field as it is; `Some(None)` clears a nullable one.
#[derive(Debug, Clone, Default)]
pub struct RegistrationPatch {
    pub url: Option<TargetUrl>,
    pub events: Option<Vec<String>>,
    pub secret: Option<WebhookSecret>,
    pub session_id: Option<Option<SessionId>>,
    pub description: Option<Option<String>>,
    pub headers: Option<BTreeMap<String, String>>,
    pub active: Option<bool>,
    pub rate_limit: Option<Option<f64>>,
}

/// The normalised form of a registration, as `POST /v1/webhooks/validate` returns it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Normalized {
    pub url: TargetUrl,
    pub events: Vec<String>,
    pub session_id: Option<SessionId>,
    pub description: Option<String>,
    /// Names of the custom headers (their values may be credentials: never echoed).
    pub header_names: Vec<String>,
    pub active: bool,
    pub rate_limit: Option<f64>,
    /// `provided` or `generated` (a secret is never echoed).
    pub secret: &'static str,
}

impl Registration {
    pub fn normalized(&self) -> Normalized {
        Normalized {
            url: self.url.clone(),
            events: self.events.clone(),
            session_id: self.session_id.clone(),
            description: self.description.clone(),
            header_names: self.headers.keys().cloned().collect(),
            active: self.active,
            rate_limit: self.rate_limit,
            secret: if self.secret.is_some() {
                "provided"
            } else {
                "generated"
            },
        }
    }
}

/// Parses a full registration body, collecting every problem.
pub fn parse_registration(
    catalog: &Catalog,
    body: &Value,
) -> Result<Registration, Vec<FieldError>> {
    let patch = parse_fields(catalog, body, true)?;
    let RegistrationPatch {
        url,
        events,
        secret,
        session_id,
        description,
        headers,
        active,
        rate_limit,
    } = patch;
    match (url, events) {
        (Some(url), Some(events)) => Ok(Registration {
            url,
            events,
            secret,
            session_id: session_id.flatten(),
            description: description.flatten(),
            headers: headers.unwrap_or_default(),
            active: active.unwrap_or(true),
            rate_limit: rate_limit.flatten(),
        }),
        // parse_fields reports missing required fields when `require` is set.
        _ => Err(vec![FieldError::new(
            "",
            ErrorCode::Required,
            "url and events are required",
        )]),
    }
}

/// Parses a partial update body, collecting every problem.
pub fn parse_patch(catalog: &Catalog, body: &Value) -> Result<RegistrationPatch, Vec<FieldError>> {
    parse_fields(catalog, body, false)
}

fn parse_fields(
    catalog: &Catalog,
    body: &Value,
    require: bool,
) -> Result<RegistrationPatch, Vec<FieldError>> {
    let Some(obj) = body.as_object() else {
        return Err(vec![
            FieldError::new("", ErrorCode::InvalidType, "the body must be a JSON object")
                .with_value(type_name(body).into()),
        ]);
    };
    let mut errors = Vec::new();
    let mut patch = RegistrationPatch::default();

    for key in obj.keys() {
        if !KNOWN_FIELDS.contains(&key.as_str()) {
            let suggestion = closest(key, KNOWN_FIELDS.iter().copied(), 2).map(str::to_owned);
            errors.push(
                FieldError::new(
                    format!("/{}", pointer_token(key)),
                    ErrorCode::UnknownField,
                    format!(
                        "unknown field '{key}'; a registration has: {}",
                        KNOWN_FIELDS.join(", ")
                    ),
                )
                .with_suggestion(suggestion),
            );
        }
    }

    if require {
        for field in ["url", "events"] {
            if !obj.contains_key(field) {
                errors.push(FieldError::new(
                    format!("/{field}"),
                    ErrorCode::Required,
                    format!("'{field}' is required"),
                ));
            }
        }
    }

    if let Some(v) = obj.get("url") {
        patch.url = fields::url(v, &mut errors);
    }
    if let Some(v) = obj.get("events") {
        patch.events = check_events(catalog, v, "/events", &mut errors);
    }
    if let Some(v) = obj.get("secret") {
        patch.secret = fields::secret(v, &mut errors).flatten();
    }
    if let Some(v) = obj.get("sessionId") {
        patch.session_id = fields::session_id(v, &mut errors);
    }
    if let Some(v) = obj.get("description") {
        patch.description = fields::description(v, &mut errors);
    }
    if let Some(v) = obj.get("headers") {
        patch.headers = fields::headers(v, &mut errors);
    }
    if let Some(v) = obj.get("active") {
        match v.as_bool() {
            Some(b) => patch.active = Some(b),
            None => errors.push(
                FieldError::new(
                    "/active",
                    ErrorCode::InvalidType,
                    "'active' must be a boolean",
                )
                .with_value(v.clone()),
            ),
        }
    }
    if let Some(v) = obj.get("rateLimit") {
        patch.rate_limit = fields::rate_limit(v, &mut errors);
    }

    if errors.is_empty() {
        Ok(patch)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests;
