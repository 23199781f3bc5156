//! Stable idempotency keys for events.
//!
//! The key is computed once, when an event is ingested, and every retry of every delivery of
//! that event carries it unchanged. It is also sent as the Standard Webhooks `webhook-id`, so it
//! only contains `[A-Za-z0-9_]` (never `.`): a short prefix naming the rule plus 32 lowercase hex
//! characters of a SHA-256 over length-prefixed parts.
//!
//! * Message events (`message.received|sent|revoked`) are keyed by content only
//!   (event, session, message id), so a gateway re-emitting the same message gets the same key.
//! * Acks (`message.ack|failed`) by event, session, message id and ack status.
//! * `session.qr` by session and QR content.
//! * Receipts (`message.receipt`) by message id, participant and status: one reader reading one
//!   message is one fact.
//! * Calls (`call.received|accepted|rejected|missed`) by call id (and the event, so each outcome
//!   of a call is its own fact).
//! * A contact's status post (`status.received`) by its status id.
//! * Events that recur with identical content — lifecycle (`session.status|authenticated|
//!   disconnected|reconnect_loop|restriction`), reactions and edits (one message can be reacted
//!   to or edited the same way twice), presence, every `group.*` — and unknown events by content
//!   *and* occurrence, so a second identical occurrence gets a new key while retries of one
//!   occurrence keep theirs.
//!
//! When the identifying field is missing, the key falls back to content plus occurrence so that
//! distinct events never collapse into one key.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Number of hex characters of the digest kept in a key (128 bits).
const KEY_HEX_LEN: usize = 32;
/// Domain separator: changes if the key derivation ever changes.
const SCHEME: &[u8] = b"wabridge-idempotency-v1";

/// When (or as what) an event occurred, used to tell apart identical occurrences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occurrence<'a> {
    /// An event id assigned by the source gateway.
    EventId(&'a str),
    /// The time the source says the event occurred.
    OccurredAt(time::OffsetDateTime),
    /// The time the bridge ingested the event (the fallback).
    Ingested(time::OffsetDateTime),
}

impl Occurrence<'_> {
    fn part(&self) -> String {
        match self {
            Occurrence::EventId(id) => format!("id:{id}"),
            Occurrence::OccurredAt(at) | Occurrence::Ingested(at) => {
                format!("at:{}", at.unix_timestamp_nanos())
            }
        }
    }
}

/// The idempotency key of an event; see the module documentation for the rules.
pub fn idempotency_key(
    event: &str,
    session_id: &str,
    data: &Value,
    occurrence: &Occurrence<'_>,
) -> String {
    match event {
        "message.received" | "message.sent" | "message.revoked" => match field(data, "id") {
            Some(id) => key("msg_", &[event, session_id, &id]),
            None => with_occurrence("msg_", event, session_id, data, occurrence),
        },
        "message.ack" | "message.failed" => {
            match field(data, "messageId").or_else(|| field(data, "id")) {
                Some(id) => {
                    let status = field(data, "status").unwrap_or_default();
                    key("ack_", &[event, session_id, &id, &status])
                }
                None => with_occurrence("ack_", event, session_id, data, occurrence),
            }
        }
        "session.qr" => match field(data, "qr") {
            Some(qr) => key("qr_", &[event, session_id, &qr]),
            None => with_occurrence("qr_", event, session_id, data, occurrence),
        },
        "message.receipt" => match field(data, "messageId").or_else(|| field(data, "id")) {
            Some(id) => {
                let participant = field(data, "participant").unwrap_or_default();
                let status = field(data, "status").unwrap_or_default();
                key("rcp_", &[event, session_id, &id, &participant, &status])
            }
            None => with_occurrence("rcp_", event, session_id, data, occurrence),
        },
        "call.received" | "call.accepted" | "call.rejected" | "call.missed" => {
            match field(data, "callId") {
                Some(id) => key("call_", &[event, session_id, &id]),
                None => with_occurrence("call_", event, session_id, data, occurrence),
            }
        }
        "status.received" => match field(data, "statusId") {
            Some(id) => key("sts_", &[event, session_id, &id]),
            None => with_occurrence("sts_", event, session_id, data, occurrence),
        },
        "session.status"
        | "session.authenticated"
        | "session.disconnected"
        | "session.reconnect_loop"
        | "session.restriction" => with_occurrence("ses_", event, session_id, data, occurrence),
        "message.reaction" | "message.edited" => {
            with_occurrence("mev_", event, session_id, data, occurrence)
        }
        "presence.update" => with_occurrence("prs_", event, session_id, data, occurrence),
        _ if event.starts_with("group.") => {
            with_occurrence("grp_", event, session_id, data, occurrence)
        }
        _ => with_occurrence("evt_", event, session_id, data, occurrence),
    }
}

/// The key of a test delivery (`POST /v1/webhooks/{id}/test`): each test is its own fact, so
/// it is keyed by its event id alone (`test_` and 32 hex characters), never by content, and
/// never collides with a real event's key.
pub fn test_key(event_id: &str) -> String {
    key("test_", &[event_id])
}

fn with_occurrence(
    prefix: &str,
    event: &str,
    session_id: &str,
    data: &Value,
    occurrence: &Occurrence<'_>,
) -> String {
    let content = canonical_json(data);
    let occurrence = occurrence.part();
    key(prefix, &[event, session_id, &content, &occurrence])
}

/// `data[name]` as a key part: strings as they are, other non-null values as canonical JSON;
/// `None` when missing, null or empty.
fn field(data: &Value, name: &str) -> Option<String> {
    match data.get(name)? {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        other => Some(canonical_json(other)),
    }
}

/// `prefix` + the first 32 hex chars of SHA-256 over the scheme tag, the prefix and each part,
/// every one preceded by its length (u64 big-endian), so no two part lists hash the same input.
fn key(prefix: &str, parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in [SCHEME, prefix.as_bytes()]
        .into_iter()
        .chain(parts.iter().map(|p| p.as_bytes()))
    {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    let mut hex = hex::encode(hasher.finalize().as_slice());
    hex.truncate(KEY_HEX_LEN);
    format!("{prefix}{hex}")
}

/// Compact JSON with object keys sorted recursively (serde_json keeps insertion order here
/// because of the `preserve_order` feature, so the sorting is done by hand).
pub fn canonical_json(value: &Value) -> String {
    sorted(value).to_string()
}

fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let mut out = Map::with_capacity(entries.len());
            for (k, v) in entries {
                out.insert(k.clone(), sorted(v));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    const T1: time::OffsetDateTime = datetime!(2026-11-02 10:00:00 UTC);
    const T2: time::OffsetDateTime = datetime!(2026-11-02 10:00:00.000000001 UTC);

    fn occurrences() -> Vec<Occurrence<'static>> {
        vec![
            Occurrence::Ingested(T1),
            Occurrence::Ingested(T2),
            Occurrence::OccurredAt(T1),
            Occurrence::EventId("evt-1"),
            Occurrence::EventId("evt-2"),
        ]
    }

    fn assert_well_formed(key: &str, prefix: &str) {
        assert!(key.starts_with(prefix), "{key}");
        assert_eq!(key.len(), prefix.len() + KEY_HEX_LEN, "{key}");
        assert!(!key.contains('.'), "{key}");
        assert!(
            key.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
            "{key}"
        );
        assert!(
            key[prefix.len()..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{key}"
        );
    }

    #[test]
    fn message_events_are_keyed_by_content_only() {
        let data = json!({"id": "true_123@c.us_ABC", "from": "123@c.us", "body": "hi"});
        for event in ["message.received", "message.sent", "message.revoked"] {
            let keys: Vec<String> = occurrences()
                .iter()
                .map(|o| idempotency_key(event, "s1", &data, o))
                .collect();
            assert!(keys.iter().all(|k| k == &keys[0]), "{event}: {keys:?}");
            assert_well_formed(&keys[0], "msg_");
            // Other fields do not matter; the id, session and event do.
            let edited = json!({"id": "true_123@c.us_ABC", "body": "changed"});
            assert_eq!(
                idempotency_key(event, "s1", &edited, &Occurrence::Ingested(T1)),
                keys[0]
            );
            let other_id = json!({"id": "true_123@c.us_XYZ"});
            assert_ne!(
                idempotency_key(event, "s1", &other_id, &Occurrence::Ingested(T1)),
                keys[0]
            );
            assert_ne!(
                idempotency_key(event, "s2", &data, &Occurrence::Ingested(T1)),
                keys[0]
            );
        }
        let o = Occurrence::Ingested(T1);
        assert_ne!(
            idempotency_key("message.received", "s1", &data, &o),
            idempotency_key("message.sent", "s1", &data, &o)
        );
    }

    #[test]
    fn ack_events_use_message_id_and_status() {
        let o1 = Occurrence::Ingested(T1);
        let o2 = Occurrence::EventId("x");
        let delivered = json!({"id": "m1", "messageId": "m1", "status": "delivered", "ack": 2});
        let read = json!({"id": "m1", "messageId": "m1", "status": "read", "ack": 3});
        let k = idempotency_key("message.ack", "s1", &delivered, &o1);
        assert_well_formed(&k, "ack_");
        assert_eq!(k, idempotency_key("message.ack", "s1", &delivered, &o2));
        assert_ne!(k, idempotency_key("message.ack", "s1", &read, &o1));
        // messageId wins over id; without messageId, id is used.
        let by_message_id = json!({"id": "other", "messageId": "m1", "status": "delivered"});
        assert_eq!(k, idempotency_key("message.ack", "s1", &by_message_id, &o1));
        let by_id = json!({"id": "m1", "status": "delivered"});
        assert_eq!(k, idempotency_key("message.ack", "s1", &by_id, &o1));
        let failed = json!({"id": "m1", "messageId": "m1", "status": "failed", "ack": -1});
        let kf = idempotency_key("message.failed", "s1", &failed, &o1);
        assert_well_formed(&kf, "ack_");
        assert_eq!(kf, idempotency_key("message.failed", "s1", &failed, &o2));
        assert_ne!(kf, idempotency_key("message.ack", "s1", &failed, &o1));
    }

    #[test]
    fn qr_is_keyed_by_qr_content() {
        let qr1 = json!({"sessionId": "s1", "qr": "2@abc"});
        let qr2 = json!({"sessionId": "s1", "qr": "2@def"});
        let k = idempotency_key("session.qr", "s1", &qr1, &Occurrence::Ingested(T1));
        assert_well_formed(&k, "qr_");
        assert_eq!(
            k,
            idempotency_key("session.qr", "s1", &qr1, &Occurrence::Ingested(T2))
        );
        assert_ne!(
            k,
            idempotency_key("session.qr", "s1", &qr2, &Occurrence::Ingested(T1))
        );
        assert_ne!(
            k,
            idempotency_key("session.qr", "s2", &qr1, &Occurrence::Ingested(T1))
        );
    }

    #[test]
    fn lifecycle_events_are_keyed_by_content_and_occurrence() {
        for event in [
            "session.status",
            "session.authenticated",
            "session.disconnected",
        ] {
            let data = json!({"sessionId": "s1", "status": "ready"});
            let keys: Vec<String> = occurrences()
                .iter()
                .map(|o| idempotency_key(event, "s1", &data, o))
                .collect();
            for k in &keys {
                assert_well_formed(k, "ses_");
            }
            // Ingested(T1) and OccurredAt(T1) encode the same instant: same key.
            assert_eq!(keys[0], keys[2]);
            let mut distinct = keys.clone();
            distinct.sort();
            distinct.dedup();
            assert_eq!(distinct.len(), 4, "{event}: {keys:?}");
            // The same occurrence (a retry) keeps its key.
            assert_eq!(
                keys[1],
                idempotency_key(event, "s1", &data, &Occurrence::Ingested(T2))
            );
            // Different content, same occurrence: different key.
            let other = json!({"sessionId": "s1", "status": "disconnected"});
            assert_ne!(
                keys[0],
                idempotency_key(event, "s1", &other, &Occurrence::Ingested(T1))
            );
        }
    }

    #[test]
    fn unknown_events_behave_like_lifecycle_events() {
        let data = json!({"chatId": "1@g.us", "participant": "2@c.us"});
        let a = idempotency_key("thing.happened", "s1", &data, &Occurrence::Ingested(T1));
        let b = idempotency_key("thing.happened", "s1", &data, &Occurrence::Ingested(T2));
        assert_well_formed(&a, "evt_");
        assert_ne!(a, b);
        assert_eq!(
            a,
            idempotency_key("thing.happened", "s1", &data, &Occurrence::Ingested(T1))
        );
        assert_ne!(
            a,
            idempotency_key("thing.undone", "s1", &data, &Occurrence::Ingested(T1))
        );
    }

    #[test]
    fn stable_across_field_order() {
        let a: Value = serde_json::from_str(
            r#"{"sessionId":"s1","status":"ready","x":{"b":1,"a":[{"d":1,"c":2}]}}"#,
        )
        .unwrap();
        let b: Value = serde_json::from_str(
            r#"{"x":{"a":[{"c":2,"d":1}],"b":1},"status":"ready","sessionId":"s1"}"#,
        )
        .unwrap();
        // preserve_order keeps the two serialisations different...
        assert_ne!(a.to_string(), b.to_string());
        // ...but the canonical form and the keys agree.
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(
            canonical_json(&a),
            r#"{"sessionId":"s1","status":"ready","x":{"a":[{"c":2,"d":1}],"b":1}}"#
        );
        for event in ["session.status", "group.update", "message.received"] {
            let o = Occurrence::Ingested(T1);
            assert_eq!(
                idempotency_key(event, "s1", &a, &o),
                idempotency_key(event, "s1", &b, &o)
            );
        }
        // Array order does matter.
        let c = json!({"list": [1, 2]});
        let d = json!({"list": [2, 1]});
        assert_ne!(canonical_json(&c), canonical_json(&d));
    }

    #[test]
    fn missing_fields_do_not_panic_or_collapse() {
        let o1 = Occurrence::Ingested(T1);
        let o2 = Occurrence::Ingested(T2);
        let datas = [
            json!({}),
            json!(null),
            json!([1, 2]),
            json!("text"),
            json!({"id": null}),
            json!({"id": ""}),
        ];
        for event in [
            "message.received",
            "message.ack",
            "message.failed",
            "session.qr",
            "session.status",
            "",
            "x",
        ] {
            for data in &datas {
                let a = idempotency_key(event, "", data, &o1);
                let b = idempotency_key(event, "", data, &o2);
                assert!(!a.contains('.'));
                // Without an identifying field, two occurrences stay distinct.
                assert_ne!(a, b, "{event} {data}");
            }
        }
        // Two distinct id-less messages with different content get different keys.
        let m1 = json!({"body": "hello"});
        let m2 = json!({"body": "bye"});
        assert_ne!(
            idempotency_key("message.received", "s1", &m1, &o1),
            idempotency_key("message.received", "s1", &m2, &o1)
        );
        // Missing ack status is an empty part, not a panic.
        let k = idempotency_key("message.ack", "s1", &json!({"messageId": "m1"}), &o1);
        assert_well_formed(&k, "ack_");
        assert_eq!(
            k,
            idempotency_key("message.ack", "s1", &json!({"messageId": "m1"}), &o2)
        );
    }

    #[test]
    fn numeric_ids_are_accepted() {
        let o = Occurrence::Ingested(T1);
        let k = idempotency_key("message.received", "s1", &json!({"id": 42}), &o);
        assert_well_formed(&k, "msg_");
        assert_eq!(
            k,
            idempotency_key(
                "message.received",
                "s1",
                &json!({"id": 42}),
                &Occurrence::Ingested(T2)
            )
        );
    }

    #[test]
    fn parts_are_unambiguous() {
        // Without length prefixes "a.b" + "c" and "a" + "b.c" (or any separator) could collide.
        assert_ne!(key("evt_", &["ab", "c"]), key("evt_", &["a", "bc"]));
        assert_ne!(key("evt_", &["a", ""]), key("evt_", &["a"]));
        assert_ne!(key("evt_", &["", "a"]), key("evt_", &["a", ""]));
        assert_ne!(key("msg_", &["a"])[4..], key("evt_", &["a"])[4..]);
        let o = Occurrence::EventId("1");
        assert_ne!(
            idempotency_key("session.status", "s1", &json!({}), &o),
            idempotency_key(
                "session.status",
                "s",
                &json!({}),
                &Occurrence::EventId("11")
            )
        );
    }

    #[test]
    fn test_keys_are_per_event_id() {
        let a = test_key("evt_1");
        assert_well_formed(&a, "test_");
        assert_eq!(a, test_key("evt_1"));
        assert_ne!(a, test_key("evt_2"));
    }

    #[test]
    fn keys_are_pinned() {
        // Changing the derivation would re-key stored events and break consumers' dedup.
        let k = idempotency_key(
            "message.received",
            "s1",
            &json!({"id": "m1"}),
            &Occurrence::Ingested(T1),
        );
        // python3: sha256 over (u64 BE length || bytes) of each of
        // "wabridge-idempotency-v1", "msg_", "message.received", "s1", "m1"; first 32 hex chars.
        assert_eq!(k, "msg_f83f94e5245d8a1923b2a14c5d1c782e");
        assert_eq!(k, key("msg_", &["message.received", "s1", "m1"]));
        assert_eq!(k.len(), 36);
    }

    #[test]
    fn receipts_calls_and_status_posts_are_keyed_by_content_only() {
        let cases = [
            (
                "message.receipt",
                json!({"id": "r1", "messageId": "M1", "chatId": "g@g.us", "participant": "1@c.us", "status": "read"}),
                json!({"id": "r2", "messageId": "M1", "chatId": "g@g.us", "participant": "2@c.us", "status": "read"}),
                "rcp_",
            ),
            (
                "call.received",
                json!({"callId": "C1", "from": "1@c.us", "isVideo": false, "isGroup": false}),
                json!({"callId": "C2", "from": "1@c.us", "isVideo": false, "isGroup": false}),
                "call_",
            ),
            (
                "call.missed",
                json!({"sessionId": "s1", "callId": "C1", "from": "1@c.us", "outcome": "missed"}),
                json!({"sessionId": "s1", "callId": "C2", "from": "1@c.us", "outcome": "missed"}),
                "call_",
            ),
            (
                "status.received",
                json!({"sessionId": "s1", "statusId": "S1", "contact": "1@c.us"}),
                json!({"sessionId": "s1", "statusId": "S2", "contact": "1@c.us"}),
                "sts_",
            ),
        ];
        for (event, data, other, prefix) in cases {
            let keys: Vec<String> = occurrences()
                .iter()
                .map(|o| idempotency_key(event, "s1", &data, o))
                .collect();
            assert!(keys.iter().all(|k| k == &keys[0]), "{event}: {keys:?}");
            assert_well_formed(&keys[0], prefix);
            assert_ne!(
                idempotency_key(event, "s1", &other, &Occurrence::Ingested(T1)),
                keys[0],
                "{event}: another fact"
            );
            assert_ne!(
                idempotency_key(event, "s2", &data, &Occurrence::Ingested(T1)),
                keys[0],
                "{event}: another session"
            );
        }
        // Each outcome of one call is its own fact.
        let call = json!({"callId": "C1"});
        assert_ne!(
            idempotency_key("call.received", "s1", &call, &Occurrence::Ingested(T1)),
            idempotency_key("call.missed", "s1", &call, &Occurrence::Ingested(T1))
        );
    }

    #[test]
    fn recurring_events_are_keyed_per_occurrence() {
        let cases = [
            (
                "message.reaction",
                json!({"messageId": "M1", "chatId": "1@c.us", "reaction": "👍", "senderId": "1@c.us"}),
                "mev_",
            ),
            (
                "message.edited",
                json!({"messageId": "M1", "chatId": "1@c.us", "body": "fixed", "fromMe": false}),
                "mev_",
            ),
            (
                "presence.update",
                json!({"sessionId": "s1", "chatId": "1@c.us", "participants": [{"id": "1@c.us", "state": "typing"}]}),
                "prs_",
            ),
            (
                "group.join",
                json!({"groupId": "g@g.us", "participantIds": ["1@c.us"]}),
                "grp_",
            ),
            (
                "group.leave",
                json!({"groupId": "g@g.us", "participantIds": ["1@c.us"]}),
                "grp_",
            ),
            (
                "group.update",
                json!({"groupId": "g@g.us", "changes": {"subject": "x"}}),
                "grp_",
            ),
            (
                "group.join_request",
                json!({"groupId": "g@g.us", "participantIds": ["1@c.us"]}),
                "grp_",
            ),
            (
                "session.reconnect_loop",
                json!({"sessionId": "s1", "attempts": 5, "nextDelayMs": 1000}),
                "ses_",
            ),
            (
                "session.restriction",
                json!({"sessionId": "s1", "active": true, "kind": "temporary"}),
                "ses_",
            ),
        ];
        for (event, data, prefix) in cases {
            let first = idempotency_key(event, "s1", &data, &Occurrence::EventId("evt-1"));
            assert_well_formed(&first, prefix);
            // A retry of the same occurrence keeps its key…
            assert_eq!(
                first,
                idempotency_key(event, "s1", &data, &Occurrence::EventId("evt-1")),
                "{event}"
            );
            // …and a second identical occurrence gets a new one.
            assert_ne!(
                first,
                idempotency_key(event, "s1", &data, &Occurrence::EventId("evt-2")),
                "{event}"
            );
            assert_ne!(
                idempotency_key(event, "s1", &data, &Occurrence::Ingested(T1)),
                idempotency_key(event, "s1", &data, &Occurrence::Ingested(T2)),
                "{event}"
            );
        }
    }
}
