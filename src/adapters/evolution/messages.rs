//! Message events: `messages.upsert`, `send.message`, `messages.update`, `messages.delete`,
//! `messages.edited`, `send.message.update`.

use serde_json::{Map, Value, json};

use super::fields::{Obj, Problems, as_int, chat_kind, is_group, phone_of, user_id};
use super::{Ctx, at_secs};
use crate::adapters::Translation;

/// Seconds a status post stays visible.
const STATUS_LIFETIME_SECS: i64 = 24 * 60 * 60;

/// The catalog's `type` of a message, from Evolution's `messageType` (Baileys' content key).
fn kind_of(message_type: &str, content: Option<&Map<String, Value>>) -> &'static str {
    match message_type {
        "conversation" | "extendedTextMessage" => "text",
        "imageMessage" => "image",
        "videoMessage" | "ptvMessage" => "video",
        "audioMessage" => {
            if content.and_then(|c| c.get("ptt")).and_then(Value::as_bool) == Some(true) {
                "voice"
            } else {
                "audio"
            }
        }
        "documentMessage" | "documentWithCaptionMessage" => "document",
        "stickerMessage" => "sticker",
        "locationMessage" | "liveLocationMessage" => "location",
        "contactMessage" | "contactsArrayMessage" => "contact",
        "pollCreationMessage" | "pollCreationMessageV2" | "pollCreationMessageV3" => "poll",
        _ => "unknown",
    }
}

const MEDIA_TYPES: &[&str] = &["image", "video", "audio", "voice", "document", "sticker"];

/// The content key of a Baileys message: `messageType` when Evolution sent a usable one, else
/// the first key of `message` that names a content.
fn content_key<'a>(message: &'a Map<String, Value>, message_type: Option<&'a str>) -> &'a str {
    if let Some(t) = message_type.filter(|t| *t != "unknown" && message.contains_key(*t)) {
        return t;
    }
    message
        .keys()
        .map(String::as_str)
        .find(|k| k.ends_with("Message") || *k == "conversation")
        .or(message_type)
        .unwrap_or("unknown")
}

/// The content object of a message (unwrapping `documentWithCaptionMessage`).
fn content<'a>(message: &'a Map<String, Value>, key: &str) -> Option<&'a Map<String, Value>> {
    let c = message.get(key)?.as_object()?;
    if key == "documentWithCaptionMessage" {
        return c
            .get("message")
            .and_then(|m| m.get("documentMessage"))
            .and_then(Value::as_object);
    }
    Some(c)
}

/// The text of a message: `conversation` (Evolution ≥ 2.2.0 rewrites extended text to it),
/// `extendedTextMessage.text` (older releases, and edits), or a media caption.
fn text_of(message: &Map<String, Value>) -> Option<&str> {
    if let Some(t) = message.get("conversation").and_then(Value::as_str) {
        return Some(t);
    }
    if let Some(t) = message
        .get("extendedTextMessage")
        .and_then(|m| m.get("text"))
        .and_then(Value::as_str)
    {
        return Some(t);
    }
    for key in [
        "imageMessage",
        "videoMessage",
        "ptvMessage",
        "documentMessage",
        "documentWithCaptionMessage",
    ] {
        if let Some(t) = content(message, key)
            .and_then(|c| c.get("caption"))
            .and_then(Value::as_str)
        {
            return Some(t);
        }
    }
    None
}

/// The catalog's `media` of a media message: the MIME type and file name from the content, the
/// file itself when Evolution inlined it (`message.base64`, webhook base64 on) or stored it
/// (`message.mediaUrl`, S3 on). WhatsApp's own CDN URL is not passed on: it serves the file
/// encrypted, and the key to it (`mediaKey`) is not forwarded either.
fn media_of(message: &Map<String, Value>, content: Option<&Map<String, Value>>) -> Option<Value> {
    let c = content?;
    let mimetype = c.get("mimetype").and_then(Value::as_str)?;
    if mimetype.is_empty() {
        return None;
    }
    let mut media = Map::new();
    media.insert("mimetype".into(), json!(mimetype));
    if let Some(name) = c.get("fileName").and_then(Value::as_str) {
        media.insert("filename".into(), json!(name));
    }
    if let Some(size) = c.get("fileLength").and_then(as_int).filter(|n| *n >= 0) {
        media.insert("size".into(), json!(size));
    }
    if let Some(data) = message.get("base64").and_then(Value::as_str) {
        media.insert("data".into(), json!(data));
    }
    if let Some(url) = message
        .get("mediaUrl")
        .and_then(Value::as_str)
        .filter(|u| url::Url::parse(u).is_ok())
    {
        media.insert("url".into(), json!(url));
    }
    Some(Value::Object(media))
}

/// Ids mentioned in a message (`contextInfo.mentionedJid`, at the top of `data` as Evolution
/// writes it, or inside the content).
fn mentions(data: &Obj<'_>, content: Option<&Map<String, Value>>) -> Vec<Value> {
    let from_ctx = |ctx: Option<&Value>| {
        ctx.and_then(|c| c.get("mentionedJid"))
            .and_then(Value::as_array)
            .map(|ids| {
                ids.iter()
                    .filter_map(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(|s| json!(user_id(s)))
                    .collect::<Vec<_>>()
            })
    };
    from_ctx(data.get("contextInfo"))
        .or_else(|| from_ctx(content.and_then(|c| c.get("contextInfo"))))
        .unwrap_or_default()
}

/// The key of a message (`data.key`): chat, own flag, id, group member, and the phone-number
/// forms Baileys 7 adds beside `@lid` ids.
struct Key<'a> {
    chat: String,
    id: &'a str,
    from_me: bool,
    participant: Option<String>,
    /// `remoteJidAlt` / `participantAlt`: the phone-number id behind a `@lid` id.
    chat_alt: Option<&'a str>,
    participant_alt: Option<&'a str>,
}

fn read_key<'a>(key: &Obj<'a>, default_from_me: Option<bool>, p: &mut Problems) -> Option<Key<'a>> {
    let remote = key.req_str("remoteJid", "the chat id", p);
    let id = key.req_str("id", "the message id", p);
    let from_me = match default_from_me {
        Some(d) => Some(key.bool("fromMe").unwrap_or(d)),
        None => key.req_bool("fromMe", "whether the instance wrote the message", p),
    };
    Some(Key {
        chat: user_id(remote?),
        id: id?,
        from_me: from_me?,
        participant: key.str("participant").map(user_id),
        chat_alt: key.str("remoteJidAlt"),
        participant_alt: key.str("participantAlt"),
    })
}

/// `messages.upsert` (`sent` false) and `send.message` (`sent` true).
pub(super) fn upsert(
    ctx: &Ctx<'_>,
    data: &Value,
    sent: bool,
    p: &mut Problems,
) -> Option<Translation> {
    let d = Obj::of(data, "/data", p)?;
    let key = d.req_obj("key", "the message key", p);
    let message = d.req_obj("message", "the message content", p);
    let key = read_key(&key?, sent.then_some(true), p)?;
    let message = message?;
    let msg = message.map();
    let message_type = d.str("messageType");
    let ckey = content_key(msg, message_type);

    if ckey == "reactionMessage" {
        return reaction(ctx, &d, &key, &message, p);
    }
    if ckey == "protocolMessage" || msg.contains_key("protocolMessage") {
        return Some(ctx.ignored(
            "a protocol message (edit or revoke); Evolution reports those as messages.edited \
             and messages.delete",
        ));
    }
    if key.chat == "status@broadcast" {
        return status_post(ctx, &d, &key, msg, ckey, p);
    }

    let timestamp = d.req_secs("messageTimestamp", "when WhatsApp recorded the message", p);
    let me = ctx.me(p);
    let (Some(timestamp), Some(me)) = (timestamp, me) else {
        return None;
    };
    let group = is_group(&key.chat);
    let body_content = content(msg, ckey);
    let kind = kind_of(ckey, body_content);
    let from_me = key.from_me || sent;

    let mut out = Map::new();
    out.insert("id".into(), json!(key.id));
    let (from, to) = if from_me {
        (me.to_owned(), key.chat.clone())
    } else {
        (key.chat.clone(), me.to_owned())
    };
    out.insert("from".into(), json!(from));
    out.insert("to".into(), json!(to));
    out.insert("body".into(), json!(text_of(msg).unwrap_or_default()));
    out.insert("type".into(), json!(kind));
    out.insert("timestamp".into(), json!(timestamp));
    out.insert("isGroup".into(), json!(group));
    out.insert("kind".into(), json!(chat_kind(&key.chat)));
    out.insert("fromMe".into(), json!(from_me));
    out.insert("chatId".into(), json!(key.chat));

    // The other party: the writer of an incoming message (the member in a group), the
    // recipient of an outgoing one in a private chat.
    let other = if from_me {
        (!group).then(|| (key.chat.clone(), key.chat_alt))
    } else if group {
        key.participant
            .clone()
            .map(|member| (member, key.participant_alt))
    } else {
        Some((key.chat.clone(), key.chat_alt))
    };
    let phone = other
        .as_ref()
        .and_then(|(id, alt)| phone_of(id).or_else(|| alt.and_then(phone_of)));
    if let Some((id, _)) = &other {
        let mut contact = Map::new();
        contact.insert("id".into(), json!(id));
        if !from_me {
            // Evolution writes "Você" (Portuguese "you") for its own messages without a name;
            // an incoming message's pushName is the writer's.
            if let Some(name) = d.str("pushName") {
                contact.insert("pushName".into(), json!(name));
            }
        }
        if let Some(number) = &phone {
            contact.insert("number".into(), json!(number));
        }
        out.insert("contact".into(), Value::Object(contact));
    }
    if !from_me {
        out.insert("senderPhone".into(), phone.map_or(Value::Null, Value::from));
    }
    if group {
        let author = if from_me {
            Some(me.to_owned())
        } else {
            key.participant.clone()
        };
        if let Some(author) = author {
            out.insert("author".into(), json!(author));
        }
    }
    if MEDIA_TYPES.contains(&kind)
        && let Some(media) = media_of(msg, body_content)
    {
        out.insert("media".into(), media);
    }
    let mentioned = mentions(&d, body_content);
    if !mentioned.is_empty() {
        out.insert("mentionedIds".into(), Value::Array(mentioned));
    }
    let event = if from_me {
        "message.sent"
    } else {
        "message.received"
    };
    Some(Translation::Events(vec![ctx.event(
        event,
        Value::Object(out),
        at_secs(timestamp),
    )]))
}

/// A `reactionMessage`: `message.reaction` on the message its key names.
fn reaction(
    ctx: &Ctx<'_>,
    d: &Obj<'_>,
    key: &Key<'_>,
    message: &Obj<'_>,
    p: &mut Problems,
) -> Option<Translation> {
    let r = message.req_obj("reactionMessage", "the reaction", p)?;
    let target = r.req_obj("key", "the key of the message reacted to", p)?;
    let target_id = target.req_str("id", "the id of the message reacted to", p)?;
    let emoji = match r.get("text") {
        None => "",
        Some(Value::String(s)) => s.as_str(),
        Some(other) => {
            p.wrong(r.ptr("text"), "a string", other);
            return None;
        }
    };
    let sender = if key.from_me {
        ctx.me(p)?.to_owned()
    } else if is_group(&key.chat) {
        key.participant.clone().unwrap_or_else(|| key.chat.clone())
    } else {
        key.chat.clone()
    };
    let secs = r
        .get("senderTimestampMs")
        .and_then(as_int)
        .map(|ms| ms / 1000)
        .or_else(|| d.int("messageTimestamp"));
    let mut out = Map::new();
    out.insert("messageId".into(), json!(target_id));
    out.insert("chatId".into(), json!(key.chat));
    out.insert("reaction".into(), json!(emoji));
    out.insert("senderId".into(), json!(sender));
    if let Some(secs) = secs {
        out.insert("timestamp".into(), json!(secs));
    }
    Some(Translation::Events(vec![ctx.event(
        "message.reaction",
        Value::Object(out),
        secs.and_then(at_secs),
    )]))
}

/// A contact's status post (`status@broadcast`): `status.received`.
fn status_post(
    ctx: &Ctx<'_>,
    d: &Obj<'_>,
    key: &Key<'_>,
    msg: &Map<String, Value>,
    ckey: &str,
    p: &mut Problems,
) -> Option<Translation> {
    if key.from_me {
        return Some(
            ctx.ignored("the instance's own status post; status.received is about contacts' posts"),
        );
    }
    let secs = d.req_secs("messageTimestamp", "when the status was posted", p)?;
    let Some(contact) = key.participant.clone() else {
        p.missing(
            "/data/key/participant".into(),
            "the contact who posted the status",
        );
        return None;
    };
    let c = content(msg, ckey);
    let kind = kind_of(ckey, c);
    let mut out = Map::new();
    out.insert("sessionId".into(), json!(ctx.session()));
    out.insert("statusId".into(), json!(key.id));
    out.insert("contact".into(), json!(contact));
    out.insert("type".into(), json!(kind));
    out.insert(
        "caption".into(),
        text_of(msg).map_or(Value::Null, Value::from),
    );
    let has_media = MEDIA_TYPES.contains(&kind);
    out.insert("hasMedia".into(), json!(has_media));
    out.insert(
        "mediaOmitted".into(),
        json!(has_media && !msg.contains_key("base64") && !msg.contains_key("mediaUrl")),
    );
    out.insert("postedAt".into(), json!(secs * 1000));
    out.insert(
        "expiresAt".into(),
        json!((secs + STATUS_LIFETIME_SECS) * 1000),
    );
    Some(Translation::Events(vec![ctx.event(
        "status.received",
        Value::Object(out),
        at_secs(secs),
    )]))
}

/// Evolution's message statuses (Baileys' `WebMessageInfo.Status` by name) as the catalog's ack
/// state and code.
fn ack_of(status: &str) -> Option<(&'static str, i64)> {
    Some(match status {
        "ERROR" => ("error", -1),
        "PENDING" => ("pending", 0),
        "SERVER_ACK" => ("server", 1),
        "DELIVERY_ACK" => ("device", 2),
        "READ" => ("read", 3),
        "PLAYED" => ("played", 4),
        _ => return None,
    })
}

/// `messages.update`: `{keyId, remoteJid, fromMe, participant, status, …}`.
pub(super) fn update(ctx: &Ctx<'_>, data: &Value, p: &mut Problems) -> Option<Translation> {
    let d = Obj::of(data, "/data", p)?;
    let id = d.req_str("keyId", "the WhatsApp id of the message", p);
    let status = d.req_str("status", "the message's new status", p);
    let (id, status) = (id?, status?);
    if status == "DELETED" {
        let chat = d.req_str("remoteJid", "the chat id", p)?;
        let from_me = d.bool("fromMe");
        let participant = d.str("participant");
        return Some(revoked(ctx, id, chat, from_me, participant));
    }
    let Some((state, code)) = ack_of(status) else {
        return Some(ctx.ignored(format!(
            "message status '{status}' has no catalog delivery state"
        )));
    };
    let from_me = d.req_bool("fromMe", "whether the message is outgoing", p)?;
    if !from_me {
        return Some(ctx.ignored(
            "a status change of an incoming message (read or played on this account); \
             message.ack is about outgoing messages",
        ));
    }
    let ack = ctx.event(
        "message.ack",
        json!({"id": id, "messageId": id, "status": state, "ack": code}),
        None,
    );
    if status == "ERROR" {
        let failed = ctx.event(
            "message.failed",
            json!({
                "id": id,
                "messageId": id,
                "status": "failed",
                "ack": -1,
                "error": "WhatsApp reported an error for the message (Evolution status ERROR)",
            }),
            None,
        );
        return Some(Translation::Events(vec![ack, failed]));
    }
    Some(Translation::Events(vec![ack]))
}

/// `message.revoked` for the message `id`. Evolution does not forward the revocation notice's
/// own id, so `id` and `revokedId` are both the deleted message's id (one key whichever of
/// `messages.delete` and `messages.update` DELETED reports it).
fn revoked(
    ctx: &Ctx<'_>,
    id: &str,
    chat: &str,
    from_me: Option<bool>,
    participant: Option<&str>,
) -> Translation {
    let chat = user_id(chat);
    let mut out = Map::new();
    out.insert("id".into(), json!(id));
    out.insert("revokedId".into(), json!(id));
    out.insert("chatId".into(), json!(chat));
    // Who deleted it: only a message's writer (or a group admin) can; the key says who wrote it.
    let by = match from_me {
        Some(true) => ctx.me_opt().map(str::to_owned),
        Some(false) if is_group(&chat) => participant.map(user_id),
        Some(false) => Some(chat.clone()),
        None => None,
    };
    if let Some(by) = by {
        out.insert("from".into(), json!(by));
    }
    out.insert("type".into(), json!("revoked"));
    out.insert("body".into(), json!(""));
    Translation::Events(vec![ctx.event("message.revoked", Value::Object(out), None)])
}

/// `messages.delete`: the bare key of the deleted message (a revoke seen by the engine), or,
/// after a delete through Evolution's API, the stored message row with its `key`.
pub(super) fn delete(ctx: &Ctx<'_>, data: &Value, p: &mut Problems) -> Option<Translation> {
    let d = Obj::of(data, "/data", p)?;
    // In the stored-row form `id` is Evolution's database id; the WhatsApp id is `key.id`.
    let key = d.obj("key").unwrap_or_else(|| d.clone());
    let id = key.req_str("id", "the WhatsApp id of the deleted message", p);
    let chat = key.req_str("remoteJid", "the chat id", p);
    let (id, chat) = (id?, chat?);
    Some(revoked(
        ctx,
        id,
        chat,
        key.bool("fromMe"),
        key.str("participant"),
    ))
}

/// Baileys' protocol message types (`ProtocolMessage.Type`), by number or name.
fn protocol_type(v: Option<&Value>) -> Option<&'static str> {
    match v? {
        Value::Number(n) => match n.as_i64()? {
            0 => Some("REVOKE"),
            14 => Some("MESSAGE_EDIT"),
            _ => Some("OTHER"),
        },
        Value::String(s) => match s.as_str() {
            "REVOKE" => Some("REVOKE"),
            "MESSAGE_EDIT" => Some("MESSAGE_EDIT"),
            _ => Some("OTHER"),
        },
        _ => None,
    }
}

/// `messages.edited` (any edit the engine sees) and `send.message.update` (an edit made through
/// Evolution's API; `own` true). Both carry the raw protocol message `{key, type, editedMessage,
/// timestampMs}`, whose key is written from the editor's side: for an edit by someone else in a
/// private chat, `remoteJid` is this instance's own id and the chat cannot be told.
pub(super) fn edited(
    ctx: &Ctx<'_>,
    data: &Value,
    own: bool,
    p: &mut Problems,
) -> Option<Translation> {
    let d = Obj::of(data, "/data", p)?;
    match protocol_type(d.get("type")) {
        Some("REVOKE") => {
            return Some(ctx.ignored(
                "a revoke's protocol message; the deletion is reported as messages.delete \
                 (message.revoked)",
            ));
        }
        Some("OTHER") => {
            return Some(ctx.ignored("a protocol message that is not an edit"));
        }
        _ => {}
    }
    let key = d.req_obj("key", "the key of the edited message", p);
    let edited = d.req_obj("editedMessage", "the new content", p);
    let key = read_key(&key?, Some(true), p)?;
    let edited = edited?;
    let me = ctx.me(p)?;
    if key.chat == me {
        return Some(ctx.ignored(
            "an edit by someone else in a private chat: Evolution forwards the edit as its \
             writer addressed it, without the chat it belongs to",
        ));
    }
    let group = is_group(&key.chat);
    let writer = key.participant.clone().filter(|m| m != me && !own);
    let from_me = own || (key.from_me && writer.is_none());
    let sender = match &writer {
        Some(member) => member.clone(),
        None if from_me => me.to_owned(),
        None => key.chat.clone(),
    };
    let msg = edited.map();
    let ckey = content_key(msg, None);
    let c = content(msg, ckey);
    let kind = kind_of(ckey, c);
    let secs = d.get("timestampMs").and_then(as_int).map(|ms| ms / 1000);
    let (from, to) = if from_me {
        (me.to_owned(), key.chat.clone())
    } else {
        (key.chat.clone(), me.to_owned())
    };
    let mut out = Map::new();
    out.insert("messageId".into(), json!(key.id));
    out.insert("chatId".into(), json!(key.chat));
    out.insert("body".into(), json!(text_of(msg).unwrap_or_default()));
    out.insert("senderId".into(), json!(sender));
    out.insert("from".into(), json!(from));
    out.insert("to".into(), json!(to));
    out.insert("fromMe".into(), json!(from_me));
    out.insert("isGroup".into(), json!(group));
    out.insert("type".into(), json!(kind));
    out.insert("hasMedia".into(), json!(MEDIA_TYPES.contains(&kind)));
    if group {
        out.insert("author".into(), json!(sender));
    }
    if let Some(secs) = secs {
        out.insert("timestamp".into(), json!(secs));
    }
    Some(Translation::Events(vec![ctx.event(
        "message.edited",
        Value::Object(out),
        secs.and_then(at_secs),
    )]))
}
