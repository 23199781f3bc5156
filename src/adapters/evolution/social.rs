//! Group membership, presence and calls: `group-participants.update`, `presence.update`, `call`.

use serde_json::{Map, Value, json};

use super::fields::{Obj, Problems, as_int, user_id};
use super::{Ctx, at_secs};
use crate::adapters::Translation;
use crate::clock;

/// `group-participants.update`: `{id, author, participants, action}`. Participants are id
/// strings (Baileys 6, Evolution ≤ 2.3.5, which adds `participantsData`) or objects with an
/// `id` (Baileys 7, Evolution 2.3.6). add → `group.join`, remove → `group.leave`,
/// promote / demote / modify → `group.update` (with `action`, and no settings in `changes`).
pub(super) fn participants(ctx: &Ctx<'_>, data: &Value, p: &mut Problems) -> Option<Translation> {
    let d = Obj::of(data, "/data", p)?;
    let group = d.req_str("id", "the group id", p);
    let action = d.req_str("action", "what happened to the participants", p);
    let list = match d.get("participants") {
        Some(Value::Array(items)) => Some(items),
        None => {
            p.missing(d.ptr("participants"), "the participants concerned");
            None
        }
        Some(other) => {
            p.wrong(d.ptr("participants"), "an array", other);
            None
        }
    };
    let (group, action, list) = (group?, action?, list?);
    let mut ids = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let id = match item {
            Value::String(s) => Some(s.as_str()),
            Value::Object(o) => o.get("id").or_else(|| o.get("jid")).and_then(Value::as_str),
            _ => None,
        };
        match id.filter(|s| !s.is_empty()) {
            Some(id) => ids.push(json!(user_id(id))),
            None => p.wrong(
                format!("{}/{i}", d.ptr("participants")),
                "a participant id or an object with an id",
                item,
            ),
        }
    }
    if ids.is_empty() {
        p.missing(d.ptr("participants"), "at least one participant");
    }
    if !p.is_empty() {
        return None;
    }
    let event = match action {
        "add" => "group.join",
        "remove" => "group.leave",
        "promote" | "demote" | "modify" => "group.update",
        other => {
            return Some(ctx.ignored(format!(
                "group participant action '{other}' has no catalog event"
            )));
        }
    };
    let mut out = Map::new();
    out.insert("groupId".into(), json!(user_id(group)));
    out.insert("participantIds".into(), Value::Array(ids));
    out.insert(
        "actorId".into(),
        d.str("author").map_or(Value::Null, |a| json!(user_id(a))),
    );
    if event == "group.update" {
        out.insert("changes".into(), json!({}));
        out.insert("action".into(), json!(action));
    }
    Some(Translation::Events(vec![ctx.event(
        event,
        Value::Object(out),
        None,
    )]))
}

/// `presence.update`: `{id, presences: {<id>: {lastKnownPresence, lastSeen?}}}`.
pub(super) fn presence(ctx: &Ctx<'_>, data: &Value, p: &mut Problems) -> Option<Translation> {
    let d = Obj::of(data, "/data", p)?;
    let chat = d.req_str("id", "the chat id", p);
    let presences = d.req_obj("presences", "the presences by participant", p);
    let (chat, presences) = (chat?, presences?);
    let mut participants = Vec::new();
    for (id, entry) in presences.map() {
        let mut item = Map::new();
        item.insert("id".into(), json!(user_id(id)));
        if let Some(state) = entry.get("lastKnownPresence").and_then(Value::as_str) {
            item.insert("state".into(), json!(state));
        }
        if let Some(seen) = entry.get("lastSeen").and_then(as_int).filter(|n| *n >= 0) {
            item.insert("lastSeen".into(), json!(seen));
        }
        participants.push(Value::Object(item));
    }
    Some(Translation::Events(vec![ctx.event(
        "presence.update",
        json!({"sessionId": ctx.session(), "chatId": user_id(chat), "participants": participants}),
        None,
    )]))
}

/// When a call started: Baileys' `date` (a JS `Date`, serialised as an ISO string in UTC), or
/// epoch seconds / milliseconds.
fn call_secs(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::String(s) => clock::parse_rfc3339(s).map(|t| t.unix_timestamp()),
        other => as_int(other).map(|n| if n > 100_000_000_000 { n / 1000 } else { n }),
    }
}

/// `call`: Baileys' call event, `{chatId, from, id, date, isVideo, isGroup, groupJid, status,
/// offline, latencyMs}`. offer → `call.received`, accept → `call.accepted`, reject →
/// `call.rejected`, timeout → `call.missed`; ringing and terminate are ignored.
pub(super) fn call(ctx: &Ctx<'_>, data: &Value, p: &mut Problems) -> Option<Translation> {
    let d = Obj::of(data, "/data", p)?;
    let status = d.req_str("status", "the call's state", p);
    let id = d.req_str("id", "the call id", p);
    let from = d.req_str("from", "the caller", p);
    let (status, id, from) = (status?, id?, from?);
    let (event, outcome) = match status {
        "offer" => ("call.received", None),
        "accept" => ("call.accepted", Some("accepted")),
        "reject" => ("call.rejected", Some("rejected")),
        "timeout" => ("call.missed", Some("missed")),
        "ringing" => {
            return Some(ctx.ignored(
                "a call ringing on this account's devices; the call was reported as call.received \
                 on its offer",
            ));
        }
        "terminate" => {
            return Some(ctx.ignored(
                "the end of a call; the catalog reports how a call was answered (accepted, \
                 rejected, missed), not when it ended",
            ));
        }
        other => {
            return Some(ctx.ignored(format!("call state '{other}' has no catalog event")));
        }
    };
    let secs = call_secs(d.get("date"));
    let mut out = Map::new();
    out.insert("sessionId".into(), json!(ctx.session()));
    out.insert("callId".into(), json!(id));
    out.insert("from".into(), json!(user_id(from)));
    out.insert("isVideo".into(), json!(d.bool("isVideo").unwrap_or(false)));
    out.insert("isGroup".into(), json!(d.bool("isGroup").unwrap_or(false)));
    if let Some(secs) = secs {
        out.insert("timestamp".into(), json!(secs));
    }
    if let Some(outcome) = outcome {
        out.insert("outcome".into(), json!(outcome));
    }
    Some(Translation::Events(vec![ctx.event(
        event,
        Value::Object(out),
        secs.and_then(at_secs),
    )]))
}
