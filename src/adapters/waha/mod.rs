//! WAHA (WhatsApp HTTP API): its webhook deliveries become catalog events.
//!
//! WAHA posts one envelope per event, `{id, timestamp, event, session, metadata, me, payload,
//! environment, engine}`. [`translate`] checks the envelope, maps the event name and reshapes
//! the payload into the catalog's shape for that event (docs/engines/waha.md has the table and
//! every rule). It is pure; [`verify_hmac`] checks WAHA's `X-Webhook-Hmac`, and the QR helpers
//! in `session` build `session.qr` from what the route fetched from WAHA.
//!
//! Problems with the shape of a delivery (not an object, no `event`, `session` or `payload`, a
//! required payload field missing or of the wrong type) are errors: the route answers 400 with
//! every one. A well-formed delivery whose value has no catalog meaning (an unknown ack code or
//! session status, an event outside the catalog) is [`Translation::Ignored`], with the reason.

mod auth;
mod fields;
mod groups;
mod messages;
mod session;
#[cfg(test)]
mod tests;

pub use auth::verify_hmac;
pub use session::{qr_data_url, qr_url, session_qr, wants_qr};

use std::sync::OnceLock;

use serde_json::Value;
use time::OffsetDateTime;

use super::{Translated, Translation};
use crate::validation::{ErrorCode, FieldError, type_name};
use fields::{Reader, user_id};

/// The engine name in sources and metrics.
pub const ENGINE: &str = "waha";

/// What every WAHA event shares: the envelope, read once.
pub(super) struct Envelope<'a> {
    pub native: &'a str,
    pub session: &'a str,
    /// The session's own account (`me.id`, in the catalog's id form), when WAHA sent it.
    pub me: Option<String>,
    pub me_push_name: Option<&'a str>,
    pub occurrence_id: Option<&'a str>,
    pub occurred_at: Option<OffsetDateTime>,
}

impl Envelope<'_> {
    /// One catalog event from this delivery.
    pub(super) fn event(&self, event: &str, data: Value) -> Translated {
        Translated {
            event: event.to_owned(),
            native: self.native.to_owned(),
            session_id: self.session.to_owned(),
            data,
            occurred_at: self.occurred_at,
            occurrence_id: self.occurrence_id.map(str::to_owned),
        }
    }

    pub(super) fn ignored(&self, reason: impl Into<String>) -> Translation {
        Translation::Ignored {
            native: self.native.to_owned(),
            reason: reason.into(),
        }
    }
}

/// WAHA's source file: its `unmapped` list names the WAHA events with no catalog counterpart
/// and why (the one place those reasons are written).
const SOURCE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/schemas/sources/waha.json"
));

/// The reason `native` has no catalog event, from the source file.
fn unmapped_reason(native: &str) -> Option<&'static str> {
    static LIST: OnceLock<Vec<(String, String)>> = OnceLock::new();
    LIST.get_or_init(|| {
        let file: Value = serde_json::from_str(SOURCE).unwrap_or_default();
        file["unmapped"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|u| {
                        Some((
                            u["native"].as_str()?.to_owned(),
                            u["why"].as_str()?.to_owned(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default()
    })
    .iter()
    .find(|(n, _)| n == native)
    .map(|(_, why)| why.as_str())
}

/// Translates one WAHA webhook body; see the module documentation.
pub fn translate(body: &Value) -> Result<Translation, Vec<FieldError>> {
    let Some(obj) = body.as_object() else {
        return Err(vec![
            FieldError::new(
                "",
                ErrorCode::InvalidType,
                format!(
                    "a WAHA webhook body is a JSON object with event, session and payload, not {}",
                    type_name(body)
                ),
            )
            .with_value(short(body)),
        ]);
    };
    let mut r = Reader::new(obj, "");
    let native = r.req_str("event", "the WAHA event name, such as message");
    let session = r.req_str("session", "the WAHA session name");
    let payload = r.req_obj("payload", "the event's data").map(|p| p.obj());
    let occurrence_id = r.opt_str("id");
    let occurred_at = r
        .opt_int("timestamp")
        .and_then(|ms| OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok());
    let (me, me_push_name) = match r.opt_obj("me") {
        Some(mut m) => {
            let id = m.opt_str("id").map(user_id);
            let push = m.opt_str("pushName");
            r.absorb(m);
            (id, push)
        }
        None => (None, None),
    };
    let _ = r.opt_str("engine");
    if let Some(m) = r.opt_obj("metadata") {
        r.absorb(m);
    }
    let errors = r.into_errors();
    let (Some(native), Some(session), Some(payload), true) =
        (native, session, payload, errors.is_empty())
    else {
        return Err(errors);
    };
    let env = Envelope {
        native,
        session,
        me,
        me_push_name,
        occurrence_id,
        occurred_at,
    };
    match native {
        "message" | "message.any" => messages::message(&env, payload),
        "message.ack" | "message.ack.group" => messages::ack(&env, payload),
        "message.reaction" => messages::reaction(&env, payload),
        "message.revoked" => messages::revoked(&env, payload),
        "message.edited" => messages::edited(&env, payload),
        "session.status" => session::status(&env, payload),
        "group.v2.participants" => groups::participants(&env, payload),
        "group.v2.join" => groups::self_joined(&env, payload),
        "group.v2.leave" => groups::self_left(&env, payload),
        "group.v2.update" => groups::update(&env, payload),
        "presence.update" => groups::presence(&env, payload),
        "call.received" | "call.accepted" | "call.rejected" => groups::call(&env, payload),
        other => Ok(env.ignored(match unmapped_reason(other) {
            Some(why) => format!("WAHA's {other}: {why}"),
            None => format!("'{other}' is not a WAHA event this bridge knows"),
        })),
    }
}

/// A refused body is echoed only when short (never a whole unexpected document).
fn short(v: &Value) -> Value {
    match v {
        Value::String(s) if s.len() > 64 => Value::Null,
        Value::Array(_) | Value::Object(_) => Value::Null,
        other => other.clone(),
    }
}
