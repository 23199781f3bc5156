//! Reading WAHA payload fields with every problem collected (JSON Pointers), and the small
//! value conversions every WAHA event needs: ids, times, phone numbers.

use serde_json::{Map, Value};

use crate::validation::{ErrorCode, FieldError, pointer_token, type_name};

/// Reads fields of one JSON object, collecting a [`FieldError`] for each missing or mistyped
/// one instead of stopping at the first.
pub(super) struct Reader<'a> {
    obj: &'a Map<String, Value>,
    at: String,
    errors: Vec<FieldError>,
}

impl<'a> Reader<'a> {
    pub(super) fn new(obj: &'a Map<String, Value>, at: impl Into<String>) -> Self {
        Self {
            obj,
            at: at.into(),
            errors: Vec::new(),
        }
    }

    pub(super) fn obj(&self) -> &'a Map<String, Value> {
        self.obj
    }

    pub(super) fn pointer(&self, key: &str) -> String {
        format!("{}/{}", self.at, pointer_token(key))
    }

    pub(super) fn get(&self, key: &str) -> Option<&'a Value> {
        self.obj.get(key).filter(|v| !v.is_null())
    }

    fn wrong(&mut self, key: &str, want: &str, got: &Value) {
        let err = FieldError::new(
            self.pointer(key),
            ErrorCode::InvalidType,
            format!("'{key}' must be {want}, not {}", type_name(got)),
        )
        .with_value(got.clone());
        self.errors.push(err);
    }

    pub(super) fn missing(&mut self, key: &str, what: &str) {
        let err = FieldError::new(
            self.pointer(key),
            ErrorCode::Required,
            format!("'{key}' is required: {what}"),
        );
        self.errors.push(err);
    }

    /// A required, non-empty string.
    pub(super) fn req_str(&mut self, key: &str, what: &str) -> Option<&'a str> {
        match self.get(key) {
            Some(Value::String(s)) if !s.is_empty() => Some(s),
            Some(Value::String(_)) | None => {
                self.missing(key, what);
                None
            }
            Some(other) => {
                self.wrong(key, "a string", other);
                None
            }
        }
    }

    /// An optional string: absent, null and empty give `None`; another type is an error.
    pub(super) fn opt_str(&mut self, key: &str) -> Option<&'a str> {
        match self.get(key) {
            Some(Value::String(s)) if !s.is_empty() => Some(s),
            Some(Value::String(_)) | None => None,
            Some(other) => {
                self.wrong(key, "a string", other);
                None
            }
        }
    }

    /// An optional string that may be empty (a removed reaction is `""`).
    pub(super) fn opt_str_empty(&mut self, key: &str) -> Option<&'a str> {
        match self.get(key) {
            Some(Value::String(s)) => Some(s),
            None => None,
            Some(other) => {
                self.wrong(key, "a string", other);
                None
            }
        }
    }

    pub(super) fn opt_bool(&mut self, key: &str) -> Option<bool> {
        match self.get(key) {
            Some(Value::Bool(b)) => Some(*b),
            // NOWEB once sent fromMe as 1 (fixed in WAHA 2025.9.2); read 0/1 as booleans.
            Some(Value::Number(n)) if n.as_u64() == Some(0) => Some(false),
            Some(Value::Number(n)) if n.as_u64() == Some(1) => Some(true),
            None => None,
            Some(other) => {
                self.wrong(key, "a boolean", other);
                None
            }
        }
    }

    pub(super) fn opt_int(&mut self, key: &str) -> Option<i64> {
        match self.get(key) {
            Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64(),
            None => None,
            Some(other) => {
                self.wrong(key, "an integer", other);
                None
            }
        }
    }

    /// A time in whole seconds. WAHA sends seconds, sometimes with a fraction (reactions) and
    /// in one place milliseconds; anything past the year 5000 in seconds is read as milliseconds.
    pub(super) fn opt_secs(&mut self, key: &str) -> Option<i64> {
        match self.get(key) {
            Some(Value::Number(n)) => match n.as_f64() {
                Some(f) if f.is_finite() && f >= 0.0 => Some(secs_from(f)),
                _ => {
                    self.wrong(
                        key,
                        "a non-negative number of seconds",
                        &Value::Number(n.clone()),
                    );
                    None
                }
            },
            None => None,
            Some(other) => {
                self.wrong(key, "a number of seconds", other);
                None
            }
        }
    }

    /// An optional object, read with its own reader (merge it back with [`Self::absorb`]).
    pub(super) fn opt_obj(&mut self, key: &str) -> Option<Reader<'a>> {
        match self.get(key) {
            Some(Value::Object(o)) => Some(Reader::new(o, self.pointer(key))),
            None => None,
            Some(other) => {
                self.wrong(key, "an object", other);
                None
            }
        }
    }

    pub(super) fn req_obj(&mut self, key: &str, what: &str) -> Option<Reader<'a>> {
        if self.get(key).is_none() {
            self.missing(key, what);
            return None;
        }
        self.opt_obj(key)
    }

    pub(super) fn opt_array(&mut self, key: &str) -> Option<&'a Vec<Value>> {
        match self.get(key) {
            Some(Value::Array(a)) => Some(a),
            None => None,
            Some(other) => {
                self.wrong(key, "an array", other);
                None
            }
        }
    }

    /// Ids from an array of strings or of objects with an `id` (WAHA's participants).
    pub(super) fn ids(&mut self, key: &str) -> Vec<String> {
        let Some(items) = self.opt_array(key) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let id = match item {
                Value::String(s) => Some(s.as_str()),
                Value::Object(o) => o.get("id").and_then(Value::as_str),
                _ => None,
            };
            match id.filter(|s| !s.is_empty()) {
                Some(id) => out.push(user_id(id)),
                None => self.errors.push(
                    FieldError::new(
                        format!("{}/{i}", self.pointer(key)),
                        ErrorCode::InvalidType,
                        format!("each of '{key}' must be an id or an object with an 'id'"),
                    )
                    .with_value(item.clone()),
                ),
            }
        }
        out
    }

    /// Takes over the problems a child reader found.
    pub(super) fn absorb(&mut self, child: Reader<'_>) {
        self.errors.extend(child.errors);
    }

    pub(super) fn into_errors(self) -> Vec<FieldError> {
        self.errors
    }
}

fn secs_from(f: f64) -> i64 {
    const MS_THRESHOLD: f64 = 100_000_000_000.0; // 5138-11-16 in seconds
    let secs = if f >= MS_THRESHOLD { f / 1000.0 } else { f };
    secs.floor() as i64
}

/// A WhatsApp user id in the catalog's form: `…@s.whatsapp.net` (NOWEB, GOWS; possibly with a
/// `:device` suffix) becomes `…@c.us`. Group (`@g.us`), hidden (`@lid`), channel
/// (`@newsletter`) and broadcast ids are kept as they are.
pub(super) fn user_id(id: &str) -> String {
    match id.strip_suffix("@s.whatsapp.net") {
        Some(user) => {
            let user = user.split(':').next().unwrap_or(user);
            format!("{user}@c.us")
        }
        None => id.to_owned(),
    }
}

/// The phone number of a `…@c.us` id (digits, no plus sign), if it is one.
pub(super) fn phone_of(id: &str) -> Option<String> {
    let user = id.strip_suffix("@c.us")?;
    (!user.is_empty() && user.bytes().all(|b| b.is_ascii_digit())).then(|| user.to_owned())
}

pub(super) fn is_group(chat_id: &str) -> bool {
    chat_id.ends_with("@g.us")
}

/// WAHA's serialized message id: `{true|false}_{chatId}_{messageId}[_{participant}]`.
pub(super) struct MessageId<'a> {
    pub from_me: bool,
    pub chat: &'a str,
    pub participant: Option<&'a str>,
}

impl<'a> MessageId<'a> {
    pub(super) fn parse(id: &'a str) -> Option<Self> {
        let mut parts = id.splitn(4, '_');
        let from_me = match parts.next()? {
            "true" => true,
            "false" => false,
            _ => return None,
        };
        let chat = parts.next().filter(|c| c.contains('@'))?;
        parts.next().filter(|k| !k.is_empty())?;
        let participant = parts.next().filter(|p| !p.is_empty());
        Some(Self {
            from_me,
            chat,
            participant,
        })
    }

    /// The same id with another message key (the edited or revoked message).
    pub(super) fn with_key(&self, key: &str) -> String {
        let mut out = format!("{}_{}_{}", self.from_me, self.chat, key);
        if let Some(p) = self.participant {
            out.push('_');
            out.push_str(p);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_take_the_catalog_form() {
        assert_eq!(user_id("15551230001@s.whatsapp.net"), "15551230001@c.us");
        assert_eq!(user_id("15551230001:12@s.whatsapp.net"), "15551230001@c.us");
        assert_eq!(user_id("15551230001@c.us"), "15551230001@c.us");
        assert_eq!(
            user_id("120363041234567890@g.us"),
            "120363041234567890@g.us"
        );
        assert_eq!(user_id("98765432101234@lid"), "98765432101234@lid");
        assert_eq!(
            user_id("120363000000000001@newsletter"),
            "120363000000000001@newsletter"
        );
        assert_eq!(phone_of("15551230001@c.us").as_deref(), Some("15551230001"));
        assert_eq!(phone_of("98765432101234@lid"), None);
    }

    #[test]
    fn message_ids_split_into_their_parts() {
        let id = MessageId::parse("false_120363041234567890@g.us_3EB0AA_15551230002@c.us")
            .expect("parses");
        assert!(!id.from_me);
        assert_eq!(id.chat, "120363041234567890@g.us");
        assert_eq!(id.participant, Some("15551230002@c.us"));
        assert_eq!(
            id.with_key("3EB0BB"),
            "false_120363041234567890@g.us_3EB0BB_15551230002@c.us"
        );
        assert!(MessageId::parse("3EB0AA").is_none());
        assert!(MessageId::parse("maybe_1@c.us_X").is_none());
    }

    #[test]
    fn times_are_whole_seconds() {
        assert_eq!(secs_from(1_710_481_111.853), 1_710_481_111);
        assert_eq!(secs_from(1_741_249_702_485.0), 1_741_249_702);
    }
}
