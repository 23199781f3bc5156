//! WAHA's group, presence and call events: `group.v2.*` → group.join / group.leave /
//! group.update, `presence.update` → presence.update, `call.*` → call.*.

use serde_json::{Map, Value, json};

use super::Envelope;
use super::fields::{Reader, user_id};
use crate::adapters::Translation;
use crate::validation::{ErrorCode, FieldError};

type Result = std::result::Result<Translation, Vec<FieldError>>;

fn group_id(r: &mut Reader<'_>) -> Option<String> {
    let mut g = r.req_obj("group", "the group, with its id")?;
    let id = g.req_str("id", "the group id (…@g.us)").map(user_id);
    r.absorb(g);
    id
}

fn timestamp(env: &Envelope<'_>, t: Option<i64>) -> Option<i64> {
    t.or_else(|| env.occurred_at.map(|at| at.unix_timestamp()))
}

fn with_time(mut data: Map<String, Value>, t: Option<i64>) -> Value {
    if let Some(t) = t {
        data.insert("timestamp".into(), json!(t));
    }
    Value::Object(data)
}

/// `group.v2.participants`: join → group.join, leave → group.leave, promote and demote →
/// group.update with `changes.promoted` / `changes.demoted` (the members whose admin right
/// changed) and the same ids in `participantIds`.
pub(super) fn participants(env: &Envelope<'_>, payload: &Map<String, Value>) -> Result {
    let mut r = Reader::new(payload, "/payload");
    let kind = r.req_str("type", "join, leave, promote or demote");
    let group = group_id(&mut r);
    let ids = r.ids("participants");
    let author = r.opt_str("author").map(user_id);
    let t = r.opt_secs("timestamp");
    if r.get("participants").is_some() && ids.is_empty() {
        r.missing("participants", "at least one member");
    } else if r.get("participants").is_none() {
        r.missing("participants", "the members who changed");
    }
    let errors = r.into_errors();
    let (Some(kind), Some(group), true) = (kind, group, errors.is_empty()) else {
        return Err(errors);
    };
    let mut data = Map::new();
    data.insert("groupId".into(), json!(group));
    let event = match kind {
        "join" => "group.join",
        "leave" => "group.leave",
        "promote" | "demote" => {
            let key = if kind == "promote" {
                "promoted"
            } else {
                "demoted"
            };
            data.insert("changes".into(), json!({ key: ids }));
            "group.update"
        }
        other => {
            return Ok(env.ignored(format!(
                "WAHA's group.v2.participants of type {other:?} has no catalog event"
            )));
        }
    };
    data.insert("participantIds".into(), json!(ids));
    if let Some(author) = author {
        data.insert("actor".into(), json!(author));
        data.insert("actorId".into(), json!(author));
    }
    Ok(Translation::Events(vec![
        env.event(event, with_time(data, timestamp(env, t))),
    ]))
}

/// `group.v2.join` / `group.v2.leave`: the session's own account joined or left; the member
/// is `me` from the envelope.
fn self_change(env: &Envelope<'_>, payload: &Map<String, Value>, event: &str) -> Result {
    let mut r = Reader::new(payload, "/payload");
    let group = group_id(&mut r);
    let subject = r
        .get("group")
        .and_then(|g| g.get("subject"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let t = r.opt_secs("timestamp");
    let errors = r.into_errors();
    let (Some(group), true) = (group, errors.is_empty()) else {
        return Err(errors);
    };
    let Some(me) = env.me.clone() else {
        return Ok(env.ignored(format!(
            "WAHA's {} came without 'me', so the member who {} is unknown",
            env.native,
            if event == "group.join" {
                "joined"
            } else {
                "left"
            }
        )));
    };
    let mut data = Map::new();
    data.insert("groupId".into(), json!(group));
    data.insert("participantIds".into(), json!([me]));
    if let Some(subject) = subject {
        data.insert("subject".into(), json!(subject));
    }
    Ok(Translation::Events(vec![
        env.event(event, with_time(data, timestamp(env, t))),
    ]))
}

pub(super) fn self_joined(env: &Envelope<'_>, payload: &Map<String, Value>) -> Result {
    self_change(env, payload, "group.join")
}

pub(super) fn self_left(env: &Envelope<'_>, payload: &Map<String, Value>) -> Result {
    self_change(env, payload, "group.leave")
}

/// `group.v2.update` → group.update: subject and description as they are, WAHA's
/// `membersCanSendMessages` as the catalog's `announce` (its negation). Other group fields WAHA
/// may send (invite link, approval settings, participants) are not settings the catalog names.
pub(super) fn update(env: &Envelope<'_>, payload: &Map<String, Value>) -> Result {
    let mut r = Reader::new(payload, "/payload");
    let mut changes = Map::new();
    let group = match r.req_obj("group", "the group, with its id and the changed fields") {
        Some(mut g) => {
            let id = g.req_str("id", "the group id (…@g.us)").map(user_id);
            if let Some(subject) = g.opt_str_empty("subject") {
                changes.insert("subject".into(), json!(subject));
            }
            match g.obj().get("description") {
                Some(Value::Null) => {
                    changes.insert("description".into(), Value::Null);
                }
                Some(_) => {
                    if let Some(d) = g.opt_str_empty("description") {
                        changes.insert("description".into(), json!(d));
                    }
                }
                None => {}
            }
            if let Some(can_send) = g.opt_bool("membersCanSendMessages") {
                changes.insert("announce".into(), json!(!can_send));
            }
            r.absorb(g);
            id
        }
        None => None,
    };
    let author = r.opt_str("author").map(user_id);
    let t = r.opt_secs("timestamp");
    let errors = r.into_errors();
    let (Some(group), true) = (group, errors.is_empty()) else {
        return Err(errors);
    };
    let mut data = Map::new();
    data.insert("groupId".into(), json!(group));
    data.insert("changes".into(), Value::Object(changes));
    if let Some(author) = author {
        data.insert("actor".into(), json!(author));
        data.insert("actorId".into(), json!(author));
    }
    Ok(Translation::Events(vec![env.event(
        "group.update",
        with_time(data, timestamp(env, t)),
    )]))
}

/// WAHA's presence words onto the catalog's (WhatsApp's own words, as OpenWA sends them).
fn presence_state(p: &str) -> Option<&'static str> {
    Some(match p {
        "online" => "available",
        "offline" => "unavailable",
        "typing" => "composing",
        "recording" => "recording",
        "paused" => "paused",
        _ => return None,
    })
}

/// `presence.update` → presence.update: the chat and each participant's state.
pub(super) fn presence(env: &Envelope<'_>, payload: &Map<String, Value>) -> Result {
    let mut r = Reader::new(payload, "/payload");
    let chat = r
        .req_str("id", "the chat whose presence changed")
        .map(user_id);
    let items = r.opt_array("presences").cloned().unwrap_or_default();
    if r.get("presences").is_none() {
        r.missing("presences", "each participant's presence");
    }
    let mut participants = Vec::new();
    let mut unknown = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some(obj) = item.as_object() else {
            r.missing(
                &format!("presences/{i}"),
                "an object with participant and lastKnownPresence",
            );
            continue;
        };
        let mut p = Reader::new(obj, format!("/payload/presences/{i}"));
        let id = p
            .req_str("participant", "whose presence this is")
            .map(user_id);
        let state = p.req_str(
            "lastKnownPresence",
            "online, offline, typing, recording or paused",
        );
        let last_seen = p.opt_secs("lastSeen");
        r.absorb(p);
        let (Some(id), Some(state)) = (id, state) else {
            continue;
        };
        let Some(mapped) = presence_state(state) else {
            unknown.push(state.to_owned());
            continue;
        };
        let mut one = Map::new();
        one.insert("id".into(), json!(id));
        one.insert("state".into(), json!(mapped));
        if let Some(seen) = last_seen {
            one.insert("lastSeen".into(), json!(seen));
        }
        participants.push(Value::Object(one));
    }
    let errors = r.into_errors();
    let (Some(chat), true) = (chat, errors.is_empty()) else {
        return Err(errors);
    };
    if participants.is_empty() {
        return Ok(env.ignored(format!(
            "WAHA's presence.update has no presence the catalog knows ({})",
            unknown.join(", ")
        )));
    }
    Ok(Translation::Events(vec![env.event(
        "presence.update",
        json!({"sessionId": env.session, "chatId": chat, "participants": participants}),
    )]))
}

/// `call.received` / `call.accepted` / `call.rejected` → the catalog's call event of the same
/// name; the outcomes carry `outcome` (accepted, rejected) as OpenWA's do.
pub(super) fn call(env: &Envelope<'_>, payload: &Map<String, Value>) -> Result {
    let mut r = Reader::new(payload, "/payload");
    let id = r.req_str("id", "the call id");
    let from = r.req_str("from", "who is calling").map(user_id);
    let is_video = r.opt_bool("isVideo").unwrap_or(false);
    let is_group = r.opt_bool("isGroup").unwrap_or(false);
    let t = r.opt_secs("timestamp");
    let errors = r.into_errors();
    let (Some(id), Some(from), true) = (id, from, errors.is_empty()) else {
        return Err(errors);
    };
    let Some(t) = timestamp(env, t) else {
        return Err(vec![FieldError::new(
            "/payload/timestamp",
            ErrorCode::Required,
            "'timestamp' is required: when the call happened, in seconds",
        )]);
    };
    let event = env.native;
    let mut data = Map::new();
    if event != "call.received" {
        data.insert("sessionId".into(), json!(env.session));
    }
    data.insert("callId".into(), json!(id));
    data.insert("from".into(), json!(from));
    if let Some(outcome) = event.strip_prefix("call.").filter(|o| *o != "received") {
        data.insert("outcome".into(), json!(outcome));
    }
    data.insert("isVideo".into(), json!(is_video));
    data.insert("isGroup".into(), json!(is_group));
    data.insert("timestamp".into(), json!(t));
    Ok(Translation::Events(vec![
        env.event(event, Value::Object(data)),
    ]))
}
