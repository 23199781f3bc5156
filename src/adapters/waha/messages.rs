//! WAHA's message events: `message`, `message.any`, `message.ack(.group)`, `message.reaction`,
//! `message.revoked` and `message.edited`, in the catalog's message shapes (the same fields,
//! with the same meaning, as OpenWA's).

use serde_json::{Map, Value, json};

use super::Envelope;
use super::fields::{MessageId, Reader, is_group, phone_of, user_id};
use crate::adapters::Translation;
use crate::validation::FieldError;

type Result = std::result::Result<Translation, Vec<FieldError>>;

/// The parts of a WAHA message (`message`, `message.any`, `message.edited`, `revoked.after`)
/// the catalog needs, read with every problem collected.
struct Message<'a> {
    id: String,
    from_me: bool,
    from: String,
    to: String,
    chat_id: String,
    group: bool,
    /// The member who wrote it, in groups.
    author: Option<String>,
    body: String,
    kind: &'static str,
    timestamp: Option<i64>,
    has_media: bool,
    media: Option<Value>,
    push_name: Option<&'a str>,
}

fn read_message<'a>(env: &Envelope<'_>, r: &mut Reader<'a>) -> Option<Message<'a>> {
    let id = r.req_str("id", "the WAHA message id");
    let parsed = id.and_then(MessageId::parse);
    let from_me = r.opt_bool("fromMe").or(parsed.as_ref().map(|p| p.from_me));
    let from = r.opt_str("from").map(user_id);
    let to = r.opt_str("to").map(user_id);
    let participant = r.opt_str("participant").map(user_id);
    let author = r.opt_str("author").map(user_id);
    let body = r.opt_str_empty("body").unwrap_or_default().to_owned();
    let timestamp = r.opt_secs("timestamp");
    let has_media = r.opt_bool("hasMedia").unwrap_or(false);
    let media = r.opt_obj("media").and_then(|mut m| {
        let out = media(&mut m);
        r.absorb(m);
        out
    });
    let _ = r.opt_array("vCards");
    let push_name = push_name(r.obj());
    let id = id?;
    let Some(from_me) = from_me else {
        r.missing(
            "fromMe",
            "whether the session's own account wrote the message",
        );
        return None;
    };
    // The chat is part of the message id; `from`/`to` are the fallback.
    let chat_id = parsed
        .as_ref()
        .map(|p| user_id(p.chat))
        .or_else(|| if from_me { to.clone() } else { from.clone() });
    let Some(chat_id) = chat_id else {
        r.missing(
            if from_me { "to" } else { "from" },
            "the chat of the message (it is not in the message id either)",
        );
        return None;
    };
    let group = is_group(&chat_id);
    let me = env.me.clone();
    let from = from
        .or_else(|| if from_me { me.clone() } else { None })
        .unwrap_or_else(|| chat_id.clone());
    let to = to
        .or_else(|| if from_me { None } else { me.clone() })
        .unwrap_or_else(|| chat_id.clone());
    let author = if group {
        participant.or(author).or_else(|| {
            parsed
                .as_ref()
                .and_then(|p| p.participant)
                .map(user_id)
                .or(if from_me { me } else { None })
        })
    } else {
        None
    };
    let kind = kind(r.obj(), has_media, media.as_ref());
    Some(Message {
        id: id.to_owned(),
        from_me,
        from,
        to,
        chat_id,
        group,
        author,
        body,
        kind,
        timestamp,
        has_media,
        media,
        push_name,
    })
}

/// The catalog's media object from WAHA's `media` (`null` when WAHA did not download it).
fn media(m: &mut Reader<'_>) -> Option<Value> {
    let mimetype = m.opt_str("mimetype");
    let filename = m.opt_str("filename");
    let url = m
        .opt_str("url")
        .filter(|u| url::Url::parse(u).is_ok_and(|u| u.has_host()));
    let mut out = Map::new();
    out.insert("mimetype".into(), json!(mimetype?));
    out.insert("filename".into(), json!(filename));
    if let Some(url) = url {
        out.insert("url".into(), json!(url));
    }
    Some(Value::Object(out))
}

/// The sender's display name, where the engine's raw `_data` carries it (WEBJS `notifyName`,
/// NOWEB `pushName`, GOWS `Info.PushName`).
fn push_name(payload: &Map<String, Value>) -> Option<&str> {
    let data = payload.get("_data")?;
    [
        data.get("notifyName"),
        data.get("pushName"),
        data.get("Info").and_then(|i| i.get("PushName")),
    ]
    .into_iter()
    .flatten()
    .find_map(Value::as_str)
    .filter(|s| !s.is_empty())
}

/// The catalog's message type. WAHA has no engine-neutral type field: WEBJS says it in
/// `_data.type`, NOWEB in the key of `_data.message`; otherwise it follows from the location,
/// vCards and media fields, and a message without media is text.
fn kind(payload: &Map<String, Value>, has_media: bool, media: Option<&Value>) -> &'static str {
    let data = payload.get("_data");
    if let Some(t) = data.and_then(|d| d.get("type")).and_then(Value::as_str) {
        let k = match t {
            "chat" => "text",
            "image" => "image",
            "video" | "gif" => "video",
            "audio" => "audio",
            "ptt" => "voice",
            "document" => "document",
            "sticker" => "sticker",
            "location" | "live_location" => "location",
            "vcard" | "multi_vcard" => "contact",
            "revoked" => "revoked",
            "call_log" => "call",
            _ => "",
        };
        if !k.is_empty() {
            return k;
        }
    }
    if let Some(m) = data
        .and_then(|d| d.get("message"))
        .and_then(Value::as_object)
    {
        let k = if m.contains_key("conversation") || m.contains_key("extendedTextMessage") {
            "text"
        } else if m.contains_key("imageMessage") {
            "image"
        } else if m.contains_key("videoMessage") {
            "video"
        } else if let Some(a) = m.get("audioMessage") {
            if a.get("ptt").and_then(Value::as_bool) == Some(true) {
                "voice"
            } else {
                "audio"
            }
        } else if m.contains_key("documentMessage") {
            "document"
        } else if m.contains_key("stickerMessage") {
            "sticker"
        } else if m.contains_key("locationMessage") || m.contains_key("liveLocationMessage") {
            "location"
        } else if m.contains_key("contactMessage") || m.contains_key("contactsArrayMessage") {
            "contact"
        } else {
            ""
        };
        if !k.is_empty() {
            return k;
        }
    }
    if payload.get("location").is_some_and(Value::is_object) {
        return "location";
    }
    if payload
        .get("vCards")
        .and_then(Value::as_array)
        .is_some_and(|v| !v.is_empty())
    {
        return "contact";
    }
    let mimetype = media
        .and_then(|m| m.get("mimetype"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    match mimetype.split('/').next().unwrap_or_default() {
        "image" if mimetype == "image/webp" => "sticker",
        "image" => "image",
        "video" => "video",
        "audio" if mimetype.starts_with("audio/ogg") => "voice",
        "audio" => "audio",
        "application" | "text" => "document",
        _ if has_media => "unknown",
        _ => "text",
    }
}

fn timestamp_or_envelope(env: &Envelope<'_>, t: Option<i64>) -> Option<i64> {
    t.or_else(|| env.occurred_at.map(|at| at.unix_timestamp()))
}

/// `message` and `message.any`: message.sent when the session's own account wrote it, else
/// message.received. The same WhatsApp message through both gives the same `data` (and so the
/// same content key downstream): one delivery.
pub(super) fn message(env: &Envelope<'_>, payload: &Map<String, Value>) -> Result {
    let mut r = Reader::new(payload, "/payload");
    let m = read_message(env, &mut r);
    let errors = r.into_errors();
    let (Some(m), true) = (m, errors.is_empty()) else {
        return Err(errors);
    };
    let Some(timestamp) = timestamp_or_envelope(env, m.timestamp) else {
        return Err(vec![FieldError::new(
            "/payload/timestamp",
            crate::validation::ErrorCode::Required,
            "'timestamp' is required: when WhatsApp recorded the message, in seconds",
        )]);
    };
    let mut data = Map::new();
    data.insert("id".into(), json!(m.id));
    data.insert("from".into(), json!(m.from));
    data.insert("to".into(), json!(m.to));
    data.insert("chatId".into(), json!(m.chat_id));
    data.insert("body".into(), json!(m.body));
    data.insert("type".into(), json!(m.kind));
    data.insert("timestamp".into(), json!(timestamp));
    data.insert("fromMe".into(), json!(m.from_me));
    data.insert("isGroup".into(), json!(m.group));
    if let Some(author) = &m.author {
        data.insert("author".into(), json!(author));
    }
    // The other party: the sender of an incoming message, the recipient of an outgoing one.
    let other = match (m.from_me, m.group) {
        (false, true) => m.author.clone(),
        (false, false) => Some(m.from.clone()),
        (true, false) => Some(m.to.clone()),
        (true, true) => None,
    };
    if let Some(other) = other {
        let mut contact = Map::new();
        contact.insert("id".into(), json!(other));
        if !m.from_me {
            contact.insert("pushName".into(), json!(m.push_name));
        }
        if let Some(number) = phone_of(&other) {
            contact.insert("number".into(), json!(number));
        }
        data.insert("contact".into(), Value::Object(contact));
    }
    if let Some(media) = m.media {
        data.insert("media".into(), media);
    }
    let event = if m.from_me {
        "message.sent"
    } else {
        "message.received"
    };
    Ok(Translation::Events(vec![
        env.event(event, Value::Object(data)),
    ]))
}

/// WAHA's ack codes and names onto the catalog's delivery states.
fn ack_status(code: i64) -> Option<&'static str> {
    Some(match code {
        -1 => "failed",
        0 => "pending",
        1 => "server",
        2 => "device",
        3 => "read",
        4 => "played",
        _ => return None,
    })
}

fn ack_code(name: &str) -> Option<i64> {
    Some(match name {
        "ERROR" => -1,
        "PENDING" => 0,
        "SERVER" => 1,
        "DEVICE" => 2,
        "READ" => 3,
        "PLAYED" => 4,
        _ => return None,
    })
}

/// `message.ack` and `message.ack.group` → message.ack (and message.failed for ERROR).
///
/// WAHA's ERROR (-1) is final: WAHA does not resend, so it is the catalog's `failed`, published
/// as message.ack (status failed) and as message.failed. A group ack names the member who
/// acknowledged (`participant`) and WAHA appends that member to the message id; the suffix is
/// removed, so `id` is the id of the message.sent event, and the member is kept in
/// `participant`.
pub(super) fn ack(env: &Envelope<'_>, payload: &Map<String, Value>) -> Result {
    let mut r = Reader::new(payload, "/payload");
    let id = r.req_str("id", "the id of the acknowledged message");
    let code = r.opt_int("ack");
    let name = r.opt_str("ackName");
    let participant = r.opt_str("participant");
    let _ = r.opt_str("from");
    let errors = r.into_errors();
    let (Some(id), true) = (id, errors.is_empty()) else {
        return Err(errors);
    };
    let Some(code) = code.or_else(|| name.and_then(ack_code)) else {
        if name.is_none() {
            return Err(vec![FieldError::new(
                "/payload/ack",
                crate::validation::ErrorCode::Required,
                "'ack' (or 'ackName') is required: the new delivery state",
            )]);
        }
        return Ok(env.ignored(format!(
            "WAHA's {} with ackName {:?} has no catalog delivery state",
            env.native,
            name.unwrap_or_default()
        )));
    };
    let Some(status) = ack_status(code) else {
        return Ok(env.ignored(format!(
            "WAHA's {} with ack {code} has no catalog delivery state",
            env.native
        )));
    };
    let message_id = match participant {
        Some(p) if env.native == "message.ack.group" => id
            .strip_suffix(p)
            .and_then(|s| s.strip_suffix('_'))
            .filter(|s| MessageId::parse(s).is_some())
            .unwrap_or(id),
        _ => id,
    };
    let mut data = Map::new();
    data.insert("id".into(), json!(message_id));
    data.insert("messageId".into(), json!(message_id));
    data.insert("status".into(), json!(status));
    data.insert("ack".into(), json!(code));
    if env.native == "message.ack.group"
        && let Some(p) = participant
    {
        data.insert("participant".into(), json!(user_id(p)));
    }
    let mut events = vec![env.event("message.ack", Value::Object(data.clone()))];
    if code == -1 {
        data.remove("participant");
        data.insert("error".into(), json!("WAHA reported ack ERROR"));
        events.push(env.event("message.failed", Value::Object(data)));
    }
    Ok(Translation::Events(events))
}

/// `message.reaction` → message.reaction; an empty `reaction.text` means the reaction was
/// removed and is delivered as `reaction: ""`.
pub(super) fn reaction(env: &Envelope<'_>, payload: &Map<String, Value>) -> Result {
    let mut r = Reader::new(payload, "/payload");
    let id = r.opt_str("id");
    let from_me = r.opt_bool("fromMe");
    let from = r.opt_str("from").map(user_id);
    let to = r.opt_str("to").map(user_id);
    let participant = r.opt_str("participant").map(user_id);
    let timestamp = r.opt_secs("timestamp");
    let (text, target) = match r.req_obj("reaction", "the reaction: text and messageId") {
        Some(mut re) => {
            let text = re.opt_str_empty("text");
            let target = re.req_str("messageId", "the id of the message reacted to");
            r.absorb(re);
            (text, target)
        }
        None => (None, None),
    };
    let errors = r.into_errors();
    let (Some(target), true) = (target, errors.is_empty()) else {
        return Err(errors);
    };
    let from_me = from_me.unwrap_or(false);
    let chat_id = MessageId::parse(target)
        .map(|p| user_id(p.chat))
        .or_else(|| id.and_then(MessageId::parse).map(|p| user_id(p.chat)))
        .or_else(|| if from_me { to.clone() } else { from.clone() });
    let Some(chat_id) = chat_id else {
        return Err(vec![FieldError::new(
            "/payload/from",
            crate::validation::ErrorCode::Required,
            "'from' is required: the chat of the reaction (it is not in the message ids)",
        )]);
    };
    let sender = participant
        .or_else(|| {
            if from_me {
                env.me.clone()
            } else {
                from.clone()
            }
        })
        .or(from)
        .unwrap_or_else(|| chat_id.clone());
    let mut data = Map::new();
    data.insert("messageId".into(), json!(target));
    data.insert("chatId".into(), json!(chat_id));
    data.insert("reaction".into(), json!(text.unwrap_or_default()));
    data.insert("senderId".into(), json!(sender));
    data.insert("fromMe".into(), json!(from_me));
    if let Some(t) = timestamp_or_envelope(env, timestamp) {
        data.insert("timestamp".into(), json!(t));
    }
    Ok(Translation::Events(vec![
        env.event("message.reaction", Value::Object(data)),
    ]))
}

/// `message.revoked` → message.revoked. `after.id` is the revocation notice; WAHA gives the
/// deleted message's own key (`revokedMessageId`, without the chat), which is completed into a
/// full id with the chat and participant of the notice.
pub(super) fn revoked(env: &Envelope<'_>, payload: &Map<String, Value>) -> Result {
    let mut r = Reader::new(payload, "/payload");
    let revoked_key = r.opt_str("revokedMessageId");
    let after = r
        .req_obj("after", "the revocation notice (a message)")
        .map(|mut a| {
            let m = read_message(env, &mut a);
            r.absorb(a);
            m
        });
    let errors = r.into_errors();
    let (Some(Some(after)), true) = (after, errors.is_empty()) else {
        return Err(errors);
    };
    let revoked_id = match revoked_key {
        Some(key) if key.contains('_') => Some(key.to_owned()),
        Some(key) => MessageId::parse(&after.id).map(|p| p.with_key(key)),
        None => None,
    };
    let by = if after.group {
        after.author.clone()
    } else if after.from_me {
        env.me.clone().or(Some(after.from.clone()))
    } else {
        Some(after.from.clone())
    };
    let mut data = Map::new();
    data.insert("id".into(), json!(after.id));
    if let Some(revoked_id) = revoked_id {
        data.insert("revokedId".into(), json!(revoked_id));
    }
    data.insert("chatId".into(), json!(after.chat_id));
    if let Some(by) = by {
        data.insert("from".into(), json!(by));
    }
    data.insert("to".into(), json!(after.to));
    data.insert("type".into(), json!("revoked"));
    data.insert("body".into(), json!(""));
    if let Some(t) = timestamp_or_envelope(env, after.timestamp) {
        data.insert("timestamp".into(), json!(t));
    }
    Ok(Translation::Events(vec![
        env.event("message.revoked", Value::Object(data)),
    ]))
}

/// `message.edited` → message.edited: the new body of an earlier message. `messageId` is the
/// edited message's full id (WAHA's `editedMessageId` completed like a revoked id); `editId` is
/// the id of the edit itself.
pub(super) fn edited(env: &Envelope<'_>, payload: &Map<String, Value>) -> Result {
    let mut r = Reader::new(payload, "/payload");
    let edited_key = r.opt_str("editedMessageId");
    let m = read_message(env, &mut r);
    let errors = r.into_errors();
    let (Some(m), true) = (m, errors.is_empty()) else {
        return Err(errors);
    };
    let message_id = match edited_key {
        Some(key) if key.contains('_') => key.to_owned(),
        Some(key) => MessageId::parse(&m.id)
            .map(|p| p.with_key(key))
            .unwrap_or_else(|| key.to_owned()),
        None => m.id.clone(),
    };
    let sender = m.author.clone().unwrap_or_else(|| m.from.clone());
    let mut data = Map::new();
    data.insert("messageId".into(), json!(message_id));
    data.insert("editId".into(), json!(m.id));
    data.insert("chatId".into(), json!(m.chat_id));
    data.insert("body".into(), json!(m.body));
    data.insert("senderId".into(), json!(sender));
    data.insert("from".into(), json!(m.from));
    data.insert("to".into(), json!(m.to));
    data.insert("fromMe".into(), json!(m.from_me));
    data.insert("isGroup".into(), json!(m.group));
    data.insert("type".into(), json!(m.kind));
    data.insert("hasMedia".into(), json!(m.has_media));
    if let Some(author) = &m.author {
        data.insert("author".into(), json!(author));
    }
    if let Some(t) = timestamp_or_envelope(env, m.timestamp) {
        data.insert("timestamp".into(), json!(t));
    }
    Ok(Translation::Events(vec![
        env.event("message.edited", Value::Object(data)),
    ]))
}
