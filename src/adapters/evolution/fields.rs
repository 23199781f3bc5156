//! Reading Evolution's JSON: typed getters that record a [`FieldError`] (with a JSON Pointer into
//! the delivery) for every missing or mistyped field, and the WhatsApp id helpers.

use serde_json::{Map, Value};

use crate::validation::{ErrorCode, FieldError, pointer_token, type_name};

/// One JSON object of the delivery, with the pointer it sits at.
#[derive(Clone)]
pub(super) struct Obj<'a> {
    map: &'a Map<String, Value>,
    at: String,
}

/// Collects every problem found while reading one delivery.
#[derive(Default)]
pub(super) struct Problems(pub(super) Vec<FieldError>);

impl Problems {
    pub(super) fn missing(&mut self, at: String, what: &str) {
        self.0.push(FieldError::new(
            at.clone(),
            ErrorCode::Required,
            format!("'{at}' ({what}) is required in this Evolution event"),
        ));
    }

    /// A value of the wrong type. Only its type is reported, never the value itself: a body
    /// of a credential-carrying engine is not echoed back.
    pub(super) fn wrong(&mut self, at: String, expected: &str, got: &Value) {
        self.0.push(FieldError::new(
            at.clone(),
            ErrorCode::InvalidType,
            format!("'{at}' must be {expected}, not {}", type_name(got)),
        ));
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> Obj<'a> {
    pub(super) fn new(map: &'a Map<String, Value>, at: &str) -> Self {
        Self {
            map,
            at: at.to_owned(),
        }
    }

    /// `value` as an object, or a recorded problem (`None`).
    pub(super) fn of(value: &'a Value, at: &str, p: &mut Problems) -> Option<Self> {
        match value {
            Value::Object(map) => Some(Self::new(map, at)),
            other => {
                p.wrong(at.to_owned(), "an object", other);
                None
            }
        }
    }

    pub(super) fn ptr(&self, key: &str) -> String {
        format!("{}/{}", self.at, pointer_token(key))
    }

    /// The value under `key`; JSON null counts as absent.
    pub(super) fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub(super) fn map(&self) -> &'a Map<String, Value> {
        self.map
    }

    /// A required non-empty string.
    pub(super) fn req_str(&self, key: &str, what: &str, p: &mut Problems) -> Option<&'a str> {
        match self.get(key) {
            Some(Value::String(s)) if !s.is_empty() => Some(s),
            None => {
                p.missing(self.ptr(key), what);
                None
            }
            Some(other) => {
                p.wrong(self.ptr(key), "a non-empty string", other);
                None
            }
        }
    }

    /// An optional non-empty string; other types count as absent.
    pub(super) fn str(&self, key: &str) -> Option<&'a str> {
        self.get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    pub(super) fn req_bool(&self, key: &str, what: &str, p: &mut Problems) -> Option<bool> {
        match self.get(key) {
            Some(Value::Bool(b)) => Some(*b),
            None => {
                p.missing(self.ptr(key), what);
                None
            }
            Some(other) => {
                p.wrong(self.ptr(key), "a boolean", other);
                None
            }
        }
    }

    pub(super) fn bool(&self, key: &str) -> Option<bool> {
        self.get(key).and_then(Value::as_bool)
    }

    /// A required object.
    pub(super) fn req_obj(&self, key: &str, what: &str, p: &mut Problems) -> Option<Obj<'a>> {
        match self.get(key) {
            Some(Value::Object(map)) => Some(Obj::new(map, &self.ptr(key))),
            None => {
                p.missing(self.ptr(key), what);
                None
            }
            Some(other) => {
                p.wrong(self.ptr(key), "an object", other);
                None
            }
        }
    }

    /// An optional object; other types count as absent.
    pub(super) fn obj(&self, key: &str) -> Option<Obj<'a>> {
        match self.get(key) {
            Some(Value::Object(map)) => Some(Obj::new(map, &self.ptr(key))),
            _ => None,
        }
    }

    /// A required integer count of whole seconds since the epoch (a JSON number, or a numeric
    /// string as protobuf longs serialise).
    pub(super) fn req_secs(&self, key: &str, what: &str, p: &mut Problems) -> Option<i64> {
        match self.get(key) {
            None => {
                p.missing(self.ptr(key), what);
                None
            }
            Some(v) => match as_int(v) {
                Some(n) if n >= 0 => Some(n),
                _ => {
                    p.wrong(self.ptr(key), "seconds since the epoch", v);
                    None
                }
            },
        }
    }

    /// An optional non-negative integer (number or numeric string).
    pub(super) fn int(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(as_int).filter(|n| *n >= 0)
    }
}

/// An integer from a JSON number or a numeric string (protobuf longs arrive as strings).
pub(super) fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        Value::Object(o) => {
            // A protobuf Long that escaped conversion: {low, high, unsigned}.
            let low = o.get("low")?.as_i64()?;
            let high = o.get("high")?.as_i64()?;
            Some((high << 32) | (low & 0xffff_ffff))
        }
        _ => None,
    }
}

/// A WhatsApp id in the catalog's form: user ids (`…@s.whatsapp.net`) become `…@c.us`, a device
/// suffix (`:12`) is dropped; group (`@g.us`), `@lid`, broadcast and channel ids stay as they are.
pub(super) fn user_id(jid: &str) -> String {
    match jid.split_once('@') {
        Some((user, "s.whatsapp.net" | "c.us")) => {
            let user = user.split_once(':').map_or(user, |(u, _)| u);
            format!("{user}@c.us")
        }
        _ => jid.to_owned(),
    }
}

/// The phone number behind a phone-number id (`15551230001@s.whatsapp.net` → `15551230001`);
/// `None` for `@lid`, groups and anything that is not digits.
pub(super) fn phone_of(jid: &str) -> Option<String> {
    let (user, server) = jid.split_once('@')?;
    if !matches!(server, "s.whatsapp.net" | "c.us") {
        return None;
    }
    let user = user.split_once(':').map_or(user, |(u, _)| u);
    (!user.is_empty() && user.bytes().all(|b| b.is_ascii_digit())).then(|| user.to_owned())
}

pub(super) fn is_group(jid: &str) -> bool {
    jid.ends_with("@g.us")
}

/// The kind of chat, as the catalog's messages name it.
pub(super) fn chat_kind(jid: &str) -> &'static str {
    match jid.split_once('@').map(|(_, server)| server) {
        _ if jid == "status@broadcast" => "status",
        Some("g.us") => "group",
        Some("s.whatsapp.net" | "c.us" | "lid") => "individual",
        Some("newsletter") => "channel",
        Some("broadcast") => "broadcast",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_take_the_catalog_form() {
        assert_eq!(user_id("15551230001@s.whatsapp.net"), "15551230001@c.us");
        assert_eq!(user_id("15551230001:7@s.whatsapp.net"), "15551230001@c.us");
        assert_eq!(user_id("15551230001@c.us"), "15551230001@c.us");
        assert_eq!(
            user_id("120363041234567890@g.us"),
            "120363041234567890@g.us"
        );
        assert_eq!(user_id("208123456789012@lid"), "208123456789012@lid");
        assert_eq!(user_id("status@broadcast"), "status@broadcast");
        assert_eq!(
            phone_of("15551230001:3@s.whatsapp.net").as_deref(),
            Some("15551230001")
        );
        assert_eq!(phone_of("208123456789012@lid"), None);
        assert_eq!(chat_kind("status@broadcast"), "status");
        assert_eq!(chat_kind("208123456789012@lid"), "individual");
    }

    #[test]
    fn integers_come_as_numbers_strings_or_longs() {
        assert_eq!(as_int(&serde_json::json!(17)), Some(17));
        assert_eq!(
            as_int(&serde_json::json!("1794000090000")),
            Some(1_794_000_090_000)
        );
        assert_eq!(
            as_int(&serde_json::json!({"low": 5, "high": 0, "unsigned": true})),
            Some(5)
        );
        assert_eq!(as_int(&serde_json::json!("x")), None);
    }
}
