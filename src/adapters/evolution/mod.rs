//! Evolution API (v2) webhook deliveries become catalog events.
//!
//! Evolution POSTs `{event, instance, data, destination, date_time, sender, server_url, apikey}`
//! (its `WebhookController.emit`). The mapping, per native event (docs/engines/evolution.md has
//! the full table and `schemas/sources/evolution.json` the same as data):
//!
//! * `messages.upsert` → `message.received` / `message.sent` by `key.fromMe`; a
//!   `reactionMessage` → `message.reaction`; a contact's status post (`status@broadcast`) →
//!   `status.received`. `send.message` → `message.sent` (same `data.id`, the WhatsApp message
//!   id, as the upsert of that message, so the content-based key makes them one delivery).
//! * `messages.update` of an outgoing message → `message.ack` by status (ERROR also gives
//!   `message.failed`); DELETED → `message.revoked`. `messages.delete` → `message.revoked`.
//! * `messages.edited` / `send.message.update` (a raw protocol message) → `message.edited`.
//! * `connection.update` → `session.status`, plus `session.authenticated` on `open` and
//!   `session.disconnected` on `close` / `refused`. `qrcode.updated` → `session.qr`.
//! * `group-participants.update` → `group.join` / `group.leave` / `group.update`;
//!   `presence.update` → `presence.update`; `call` → `call.*` by status.
//! * Everything else → [`Translation::Ignored`] with the reason.
//!
//! **`apikey` is a live credential** (the instance's API token). It is taken out of the body
//! before anything else reads it: the payloads are built field by field from `data` (nothing is
//! passed through), every string produced is checked for the token's value, no error carries a
//! value of the body, and the occurrence digest is computed without it.
//!
//! **Occurrences.** Evolution sends no event id and resends the very same body on its retries,
//! so [`Translated::occurrence_id`] is a SHA-256 of the body without `apikey`: its retries
//! collapse, while two emits differ at least by `date_time` (milliseconds).
//!
//! **Dates.** `date_time` is local wall-clock time written with a `Z` (Evolution subtracts the
//! server's UTC offset before formatting), so it is UTC only on a server that runs in UTC. It is
//! never used as the occurrence time: `occurred_at` comes from the engine's epoch fields
//! (`messageTimestamp`, an edit's `timestampMs`, a call's `date`), else it is left `None` and the
//! ingest time is used.

mod auth;
mod fields;
mod messages;
mod session;
mod social;
#[cfg(test)]
mod tests;

pub use auth::{CLOCK_SKEW_SECS, JwtError, WebhookClaims, sign_like_evolution, verify_bearer};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use self::fields::{Obj, Problems, user_id};
use super::{Translated, Translation};
use crate::validation::{ErrorCode, FieldError, type_name};

/// Evolution's events that have no catalog counterpart, and why. Acknowledged and recorded as
/// ignored, never refused (Evolution would otherwise retry them).
pub const UNMAPPED: &[(&str, &str)] = &[
    (
        "application.startup",
        "Evolution's own start-up notice, not a WhatsApp event",
    ),
    (
        "instance.create",
        "an Evolution instance was created; the catalog has no instance events",
    ),
    (
        "instance.delete",
        "an Evolution instance was deleted; the catalog has no instance events",
    ),
    (
        "remove.instance",
        "an Evolution instance was removed; the catalog has no instance events",
    ),
    (
        "logout.instance",
        "an instance logout through Evolution's API; the disconnection itself arrives as \
         connection.update (close), which gives session.disconnected",
    ),
    (
        "status.instance",
        "sent together with connection.update (close), which gives session.disconnected; \
         mapping both would deliver one disconnection twice",
    ),
    (
        "messages.set",
        "history sync (a batch of old messages), not new messages",
    ),
    ("messaging-history.set", "history sync, not new messages"),
    (
        "contacts.set",
        "address-book sync; the catalog has no contact events",
    ),
    (
        "contacts.upsert",
        "address-book change; the catalog has no contact events",
    ),
    (
        "contacts.update",
        "address-book change; the catalog has no contact events",
    ),
    (
        "chats.set",
        "chat-list sync; the catalog has no chat events",
    ),
    (
        "chats.upsert",
        "chat-list change; the catalog has no chat events",
    ),
    (
        "chats.update",
        "chat-list change (unread counts, names); the catalog has no chat events",
    ),
    (
        "chats.delete",
        "chat-list change; the catalog has no chat events",
    ),
    (
        "groups.upsert",
        "the full metadata of groups (on join or sync), not a change",
    ),
    (
        "groups.update",
        "not delivered by Evolution 2.3.6 (its webhook event list says GROUP_UPDATE where the \
         emitter looks for GROUPS_UPDATE), and it carries no author or time",
    ),
    (
        "labels.edit",
        "WhatsApp Business labels; the catalog has no label events",
    ),
    (
        "labels.association",
        "WhatsApp Business labels; the catalog has no label events",
    ),
    (
        "typebot.start",
        "Evolution's Typebot integration, not a WhatsApp event",
    ),
    (
        "typebot.change-status",
        "Evolution's Typebot integration, not a WhatsApp event",
    ),
    (
        "creds.update",
        "the engine's own credentials store, not a WhatsApp event",
    ),
];

/// The placeholder Evolution writes when an instance has no token: not a secret.
const NO_TOKEN: &str = "Apikey not found";
/// Shortest `apikey` value that is scrubbed from produced strings (shorter values would match
/// ordinary text; Evolution's tokens are UUIDs or longer).
const MIN_SCRUB_LEN: usize = 8;

/// Translates one Evolution delivery, or returns every reason it is not one. `apikey` never
/// reaches the result, and no error echoes a value of the body.
pub fn translate(body: &Value) -> Result<Translation, Vec<FieldError>> {
    let Some(obj) = body.as_object() else {
        return Err(vec![FieldError::new(
            "",
            ErrorCode::InvalidType,
            format!(
                "an Evolution API webhook delivery is a JSON object with event, instance and \
                 data, not {}",
                type_name(body)
            ),
        )]);
    };
    // The credential leaves first; everything below reads `env`.
    let mut env = obj.clone();
    let apikey = env.remove("apikey");
    let secret = match &apikey {
        Some(Value::String(s)) if s.len() >= MIN_SCRUB_LEN && s != NO_TOKEN => Some(s.clone()),
        _ => None,
    };
    let result = translate_envelope(&env, apikey.as_ref());
    match (result, secret) {
        (Ok(t), Some(secret)) => Ok(scrub_translation(t, &secret)),
        (Err(errors), Some(secret)) => Err(scrub_errors(errors, &secret)),
        (r, None) => r,
    }
}

/// The catalog names an Evolution event can map onto, for the sources file check.
pub const MAPPED: &[&str] = &[
    "messages.upsert",
    "send.message",
    "messages.update",
    "messages.delete",
    "messages.edited",
    "send.message.update",
    "connection.update",
    "qrcode.updated",
    "group-participants.update",
    "presence.update",
    "call",
];

fn translate_envelope(
    env: &Map<String, Value>,
    apikey: Option<&Value>,
) -> Result<Translation, Vec<FieldError>> {
    let root = Obj::new(env, "");
    let mut p = Problems::default();
    let event = root.req_str("event", "the event name", &mut p);
    let instance = root.req_str("instance", "the instance name", &mut p);
    let data = match env.get("data") {
        Some(d) => Some(d),
        None => {
            p.missing("/data".into(), "the event's payload");
            None
        }
    };
    match apikey {
        None | Some(Value::Null | Value::String(_)) => {}
        Some(other) => p.0.push(FieldError::new(
            "/apikey",
            ErrorCode::InvalidType,
            format!(
                "'/apikey' must be a string or null, not {}",
                type_name(other)
            ),
        )),
    }
    for name in ["sender", "date_time", "server_url", "destination"] {
        match env.get(name) {
            None | Some(Value::Null | Value::String(_)) => {}
            Some(other) => p.wrong(format!("/{name}"), "a string or null", other),
        }
    }
    let (Some(event), Some(instance), Some(data), true) = (event, instance, data, p.is_empty())
    else {
        return Err(p.0);
    };
    let ctx = Ctx {
        native: event,
        session: instance,
        me: root.str("sender").map(user_id),
        occurrence: digest(env),
    };
    let translation = match event {
        "messages.upsert" => messages::upsert(&ctx, data, false, &mut p),
        "send.message" => messages::upsert(&ctx, data, true, &mut p),
        "messages.update" => messages::update(&ctx, data, &mut p),
        "messages.delete" => messages::delete(&ctx, data, &mut p),
        "messages.edited" => messages::edited(&ctx, data, false, &mut p),
        "send.message.update" => messages::edited(&ctx, data, true, &mut p),
        "connection.update" => session::connection(&ctx, data, &mut p),
        "qrcode.updated" => session::qrcode(&ctx, data, &mut p),
        "group-participants.update" => social::participants(&ctx, data, &mut p),
        "presence.update" => social::presence(&ctx, data, &mut p),
        "call" => social::call(&ctx, data, &mut p),
        other => Some(match UNMAPPED.iter().find(|(name, _)| *name == other) {
            Some((_, why)) => ctx.ignored(*why),
            None => ctx.ignored(format!(
                "'{other}' is not an Evolution API event this bridge knows (it knows those of \
                 v2.3.6)"
            )),
        }),
    };
    match translation {
        Some(t) if p.is_empty() => Ok(t),
        _ => Err(p.0),
    }
}

/// What every mapping needs from the envelope.
struct Ctx<'a> {
    /// Evolution's event name.
    native: &'a str,
    /// The instance name, which is the catalog's session id.
    session: &'a str,
    /// The instance's own WhatsApp id (`sender`), in the catalog's form, when Evolution knows it.
    me: Option<String>,
    /// Digest of the body without `apikey`.
    occurrence: String,
}

impl Ctx<'_> {
    fn event(&self, event: &str, data: Value, occurred_at: Option<OffsetDateTime>) -> Translated {
        Translated {
            event: event.to_owned(),
            native: self.native.to_owned(),
            session_id: self.session.to_owned(),
            data,
            occurred_at,
            occurrence_id: Some(self.occurrence.clone()),
        }
    }

    fn ignored(&self, reason: impl Into<String>) -> Translation {
        Translation::Ignored {
            native: self.native.to_owned(),
            reason: reason.into(),
        }
    }

    fn session(&self) -> &str {
        self.session
    }

    /// The instance's own id, or a problem pointing at `sender` (message events need it for
    /// their `from` / `to`).
    fn me(&self, p: &mut Problems) -> Option<&str> {
        if self.me.is_none() {
            p.missing(
                "/sender".into(),
                "the instance's own WhatsApp id, needed for the message's from and to",
            );
        }
        self.me.as_deref()
    }

    fn me_opt(&self) -> Option<&str> {
        self.me.as_deref()
    }
}

/// Epoch seconds as a time (`None` when out of range).
fn at_secs(secs: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(secs).ok()
}

/// Hex SHA-256 of the envelope (already without `apikey`), over JSON with object keys sorted,
/// so the digest does not depend on key order.
fn digest(env: &Map<String, Value>) -> String {
    let mut canonical = String::new();
    write_canonical(&Value::Object(env.clone()), &mut canonical);
    let mut hasher = Sha256::new();
    hasher.update(b"wabridge-evolution-occurrence-v1\n");
    hasher.update(canonical.as_bytes());
    hex::encode(hasher.finalize().as_slice())
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

const REDACTED: &str = "[redacted]";

/// Replaces every produced string that contains the credential (a second line of defence: the
/// mappings copy named fields only).
fn scrub_translation(t: Translation, secret: &str) -> Translation {
    match t {
        Translation::Events(events) => Translation::Events(
            events
                .into_iter()
                .map(|mut e| {
                    scrub_value(&mut e.data, secret);
                    e
                })
                .collect(),
        ),
        Translation::Ignored { native, reason } => Translation::Ignored {
            native: scrub_str(native, secret),
            reason: scrub_str(reason, secret),
        },
    }
}

fn scrub_value(v: &mut Value, secret: &str) {
    match v {
        Value::String(s) if s.contains(secret) => *s = REDACTED.to_owned(),
        Value::Array(items) => items.iter_mut().for_each(|i| scrub_value(i, secret)),
        Value::Object(map) => map.values_mut().for_each(|i| scrub_value(i, secret)),
        _ => {}
    }
}

fn scrub_str(s: String, secret: &str) -> String {
    if s.contains(secret) {
        s.replace(secret, REDACTED)
    } else {
        s
    }
}

fn scrub_errors(errors: Vec<FieldError>, secret: &str) -> Vec<FieldError> {
    errors
        .into_iter()
        .map(|mut e| {
            e.pointer = scrub_str(e.pointer, secret);
            e.message = scrub_str(e.message, secret);
            e.suggestion = e.suggestion.map(|s| scrub_str(s, secret));
            scrub_value(&mut e.value, secret);
            e
        })
        .collect()
}
