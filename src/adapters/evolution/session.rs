//! Session events: `connection.update` and `qrcode.updated`.
//!
//! The rule for `connection.update` (Evolution forwards Baileys' connection state):
//!
//! | state        | session.status | also                                                     |
//! |--------------|----------------|----------------------------------------------------------|
//! | `open`       | `ready`        | `session.authenticated` (phone from `wuid`)              |
//! | `connecting` | `initializing` |                                                          |
//! | `close`      | `disconnected` | `session.disconnected`, reason from `statusReason`       |
//! | `refused`    | `failed`       | `session.disconnected`, reason `QR_CODE_LIMIT_REACHED`   |
//!
//! Evolution sends `close` only when it will not reconnect by itself (status 401 logged out,
//! 403 forbidden, 402, 406); a close it recovers from is followed by a reconnect instead, with
//! no webhook. `refused` follows the last QR code of a session nobody scanned.

use serde_json::{Value, json};

use super::Ctx;
use super::fields::{Obj, Problems, phone_of};
use crate::adapters::Translation;

/// Baileys' `DisconnectReason` codes as words (`statusReason` of a close).
fn disconnect_reason(code: Option<i64>) -> String {
    match code {
        Some(401) => "LOGOUT".into(),
        Some(403) => "FORBIDDEN".into(),
        Some(408) => "CONNECTION_LOST".into(),
        Some(411) => "MULTIDEVICE_MISMATCH".into(),
        Some(428) => "CONNECTION_CLOSED".into(),
        Some(440) => "CONNECTION_REPLACED".into(),
        Some(500) => "BAD_SESSION".into(),
        Some(503) => "UNAVAILABLE_SERVICE".into(),
        Some(515) => "RESTART_REQUIRED".into(),
        Some(code) => format!("CLOSED_{code}"),
        None => "CLOSED".into(),
    }
}

pub(super) fn connection(ctx: &Ctx<'_>, data: &Value, p: &mut Problems) -> Option<Translation> {
    let d = Obj::of(data, "/data", p)?;
    let state = d.req_str("state", "the connection state", p)?;
    let session = ctx.session();
    let status = |s: &str| {
        ctx.event(
            "session.status",
            json!({"sessionId": session, "status": s}),
            None,
        )
    };
    let events = match state {
        "open" => {
            let mut events = vec![status("ready")];
            let phone = d.str("wuid").or(ctx.me_opt()).and_then(phone_of);
            // Without the account's number (no wuid, no sender) only the status can be told.
            if let Some(phone) = phone {
                let push_name = d.str("profileName").map_or(Value::Null, Value::from);
                events.push(ctx.event(
                    "session.authenticated",
                    json!({"sessionId": session, "phone": phone, "pushName": push_name}),
                    None,
                ));
            }
            events
        }
        "connecting" => vec![status("initializing")],
        "close" => vec![
            status("disconnected"),
            ctx.event(
                "session.disconnected",
                json!({"sessionId": session, "reason": disconnect_reason(d.int("statusReason"))}),
                None,
            ),
        ],
        "refused" => vec![
            status("failed"),
            ctx.event(
                "session.disconnected",
                json!({"sessionId": session, "reason": "QR_CODE_LIMIT_REACHED"}),
                None,
            ),
        ],
        other => {
            return Some(ctx.ignored(format!(
                "connection state '{other}' has no catalog session status"
            )));
        }
    };
    Some(Translation::Events(events))
}

/// `qrcode.updated`: `session.qr` with the PNG data URL Evolution renders (`qrcode.base64`, the
/// form OpenWA's current line sends too), or the raw QR content (`qrcode.code`) when there is
/// no image. At the QR limit Evolution sends `{message, statusCode}` instead: ignored here, the
/// `connection.update` (refused) that follows reports it.
pub(super) fn qrcode(ctx: &Ctx<'_>, data: &Value, p: &mut Problems) -> Option<Translation> {
    let d = Obj::of(data, "/data", p)?;
    let Some(qr) = d.obj("qrcode") else {
        if d.get("message").is_some() || d.get("statusCode").is_some() {
            return Some(ctx.ignored(
                "the QR code limit was reached; the connection.update (refused) that follows \
                 gives session.status failed and session.disconnected",
            ));
        }
        p.missing("/data/qrcode".into(), "the QR code");
        return None;
    };
    let image = qr.str("base64").filter(|b| b.starts_with("data:image/"));
    let Some(code) = image.or_else(|| qr.str("code")) else {
        p.missing(qr.ptr("code"), "the QR code content or image");
        return None;
    };
    Some(Translation::Events(vec![ctx.event(
        "session.qr",
        json!({"sessionId": ctx.session(), "qr": code}),
        None,
    )]))
}
