//! WAHA's `session.status` → session.status, plus session.authenticated and
//! session.disconnected on the transitions into and out of WORKING, and the QR helpers.
//!
//! The rule (docs/engines/waha.md, "Session events"): WAHA's payload carries `statuses`, its
//! last few statuses with times (WAHA 2025.9.4 and later). The previous status is the newest
//! entry before the current one.
//! - Into WORKING (previous is not WORKING, or unknown) → also session.authenticated, when the
//!   envelope's `me` gives the account's phone number.
//! - Out of WORKING (previous is WORKING, current is anything else) → also
//!   session.disconnected, `reason` = WAHA's new status (`STOPPED`, `FAILED`, `STARTING`,
//!   `SCAN_QR_CODE`, …).
//! - FAILED after anything but FAILED → also session.disconnected (WAHA: the link is lost or
//!   must be authorized again), so without `statuses` a FAILED still gives it.
//! - Without `statuses` (older WAHA) the previous status is unknown: WORKING gives
//!   session.authenticated and FAILED session.disconnected; nothing else is derived.

use serde_json::{Map, Value, json};

use super::Envelope;
use super::fields::{Reader, phone_of};
use crate::adapters::{Translated, Translation};
use crate::validation::FieldError;

const WORKING: &str = "WORKING";
const FAILED: &str = "FAILED";

/// WAHA's session statuses onto the catalog's.
fn catalog_status(status: &str) -> Option<&'static str> {
    Some(match status {
        "STOPPED" => "disconnected",
        "STARTING" => "initializing",
        "SCAN_QR_CODE" => "qr_ready",
        "WORKING" => "ready",
        "FAILED" => "failed",
        "PASSKEY_REQUIRED" | "PASSKEY_CONFIRMATION_REQUIRED" => "action_required",
        _ => return None,
    })
}

/// The status before `current`, from WAHA's `statuses` (oldest first; sorted by time to be safe).
fn previous<'a>(statuses: &'a [Value], current: &str) -> Option<&'a str> {
    let mut list: Vec<(i64, &str)> = statuses
        .iter()
        .filter_map(|s| {
            let status = s.get("status")?.as_str()?;
            let at = s.get("timestamp").and_then(Value::as_i64).unwrap_or(0);
            Some((at, status))
        })
        .collect();
    list.sort_by_key(|(at, _)| *at);
    match list.as_slice() {
        [.., (_, prev), (_, last)] if *last == current => Some(prev),
        [.., (_, last)] if *last != current => Some(last),
        _ => None,
    }
}

pub(super) fn status(
    env: &Envelope<'_>,
    payload: &Map<String, Value>,
) -> Result<Translation, Vec<FieldError>> {
    let mut r = Reader::new(payload, "/payload");
    let current = r.req_str("status", "the session's new WAHA status");
    let statuses = r.opt_array("statuses");
    let errors = r.into_errors();
    let (Some(current), true) = (current, errors.is_empty()) else {
        return Err(errors);
    };
    let Some(status) = catalog_status(current) else {
        return Ok(env.ignored(format!(
            "WAHA session status {current:?} has no catalog status"
        )));
    };
    let previous = statuses.and_then(|s| previous(s, current));
    let mut events = vec![env.event(
        "session.status",
        json!({"sessionId": env.session, "status": status}),
    )];
    if current == WORKING
        && previous != Some(WORKING)
        && let Some(phone) = env.me.as_deref().and_then(phone_of)
    {
        events.push(env.event(
            "session.authenticated",
            json!({"sessionId": env.session, "phone": phone, "pushName": env.me_push_name}),
        ));
    }
    let left_working = current != WORKING && previous == Some(WORKING);
    let failed = current == FAILED && previous != Some(FAILED);
    if left_working || failed {
        events.push(env.event(
            "session.disconnected",
            json!({"sessionId": env.session, "reason": current}),
        ));
    }
    Ok(Translation::Events(events))
}

/// Is this the session.status of a WAHA SCAN_QR_CODE, for which the route fetches the QR?
pub fn wants_qr(t: &Translated) -> bool {
    t.native == "session.status"
        && t.event == "session.status"
        && t.data.get("status").and_then(Value::as_str) == Some("qr_ready")
}

/// `{base}/api/{session}/auth/qr`, the session name escaped as one path segment.
pub fn qr_url(base: &str, session: &str) -> Option<url::Url> {
    let mut url = url::Url::parse(base).ok()?;
    if url.cannot_be_a_base() || !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    url.path_segments_mut()
        .ok()?
        .pop_if_empty()
        .extend(["api", session, "auth", "qr"]);
    Some(url)
}

/// The QR from WAHA's answer to `GET …/auth/qr` with `Accept: application/json`:
/// `{mimetype, data}` (base64 image) becomes a data URL; `{value}` (`?format=raw`) is kept raw.
pub fn qr_data_url(body: &Value) -> Option<String> {
    if let (Some(mime), Some(data)) = (
        body.get("mimetype").and_then(Value::as_str),
        body.get("data").and_then(Value::as_str),
    ) && !mime.is_empty()
        && !data.is_empty()
    {
        return Some(format!("data:{mime};base64,{data}"));
    }
    body.get("value")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// session.qr for the SCAN_QR_CODE status `from`, with the QR the route fetched.
pub fn session_qr(from: &Translated, qr: String) -> Translated {
    Translated {
        event: "session.qr".to_owned(),
        native: from.native.clone(),
        session_id: from.session_id.clone(),
        data: json!({"sessionId": from.session_id, "qr": qr}),
        occurred_at: from.occurred_at,
        occurrence_id: from.occurrence_id.clone(),
    }
}
