//! Every fixture in `tests/fixtures/evolution/` through the adapter, its payloads validated
//! against the catalog schemas.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::translate;
use crate::adapters::{Translated, Translation};
use crate::catalog::Catalog;
use crate::validation::FieldError;

/// The `apikey` value written into every fixture.
const APIKEY: &str = "7C4F2B1E-93A8-4D6A-B5E0-2F8C1D9A6E34";

/// What each fixture must become: catalog events in order, or `ignored`.
const EXPECTED: &[(&str, &[&str])] = &[
    ("messages.upsert-text-conversation", &["message.received"]),
    ("messages.upsert-text-extended", &["message.received"]),
    ("messages.upsert-group", &["message.received"]),
    ("messages.upsert-lid", &["message.received"]),
    ("messages.upsert-from-me", &["message.sent"]),
    ("messages.upsert-image", &["message.received"]),
    ("messages.upsert-voice", &["message.received"]),
    ("messages.upsert-reaction", &["message.reaction"]),
    ("messages.upsert-status", &["status.received"]),
    ("send.message", &["message.sent"]),
    ("messages.update-error", &["message.ack", "message.failed"]),
    ("messages.update-pending", &["message.ack"]),
    ("messages.update-server_ack", &["message.ack"]),
    ("messages.update-delivery_ack", &["message.ack"]),
    ("messages.update-read", &["message.ack"]),
    ("messages.update-played", &["message.ack"]),
    ("messages.update-deleted", &["message.revoked"]),
    ("messages.update-incoming-read", &[]),
    ("messages.delete", &["message.revoked"]),
    ("messages.delete-api", &["message.revoked"]),
    ("messages.edited", &["message.edited"]),
    ("messages.edited-group", &["message.edited"]),
    ("messages.edited-revoke", &[]),
    ("send.message.update", &["message.edited"]),
    (
        "connection.update-open",
        &["session.status", "session.authenticated"],
    ),
    (
        "connection.update-close",
        &["session.status", "session.disconnected"],
    ),
    ("connection.update-connecting", &["session.status"]),
    (
        "connection.update-refused",
        &["session.status", "session.disconnected"],
    ),
    ("qrcode.updated", &["session.qr"]),
    ("qrcode.updated-limit", &[]),
    ("group-participants.update-add", &["group.join"]),
    ("group-participants.update-remove", &["group.leave"]),
    ("group-participants.update-promote", &["group.update"]),
    ("group-participants.update-demote", &["group.update"]),
    ("presence.update", &["presence.update"]),
    ("presence.update-group", &["presence.update"]),
    ("call-offer", &["call.received"]),
    ("call-accept", &["call.accepted"]),
    ("call-reject", &["call.rejected"]),
    ("call-timeout", &["call.missed"]),
    ("call-terminate", &[]),
    ("contacts.upsert", &[]),
    ("chats.update", &[]),
    ("logout.instance", &[]),
];

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/evolution")
}

fn fixture(name: &str) -> Value {
    let path = fixtures_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

fn events(name: &str) -> Vec<Translated> {
    match translate(&fixture(name)) {
        Ok(Translation::Events(events)) => events,
        other => panic!("{name}: expected events, got {other:?}"),
    }
}

fn one(name: &str) -> Translated {
    let mut all = events(name);
    assert_eq!(all.len(), 1, "{name}");
    all.remove(0)
}

fn catalog() -> Catalog {
    Catalog::load("http://127.0.0.1").expect("the embedded catalog loads")
}

fn assert_valid(catalog: &Catalog, name: &str, t: &Translated) {
    let validator = catalog
        .validator(&t.event)
        .unwrap_or_else(|| panic!("{name}: no schema for {}", t.event));
    let problems: Vec<String> = validator
        .iter_errors(&t.data)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        problems.is_empty(),
        "{name} → {}: {problems:?}\n{}",
        t.event,
        t.data
    );
}

#[test]
fn every_fixture_translates_as_expected_and_validates() {
    let catalog = catalog();
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(fixtures_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        assert!(
            EXPECTED.iter().any(|(n, _)| *n == name),
            "fixture {name} has no expectation in EXPECTED"
        );
        seen.push(name);
    }
    for (name, expected) in EXPECTED {
        assert!(
            seen.iter().any(|s| s == name),
            "fixture {name}.json is missing"
        );
        let body = fixture(name);
        let result = translate(&body);
        let text = format!("{result:?}");
        assert!(!text.contains(APIKEY), "{name}: the apikey leaked: {text}");
        match result {
            Ok(Translation::Events(events)) => {
                let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
                assert_eq!(&names, expected, "{name}");
                for t in &events {
                    assert_eq!(t.session_id, "shop-main", "{name}");
                    assert_eq!(Some(t.native.as_str()), body["event"].as_str(), "{name}");
                    assert!(t.occurrence_id.is_some(), "{name}");
                    assert_valid(&catalog, name, t);
                }
            }
            Ok(Translation::Ignored { native, reason }) => {
                assert!(expected.is_empty(), "{name} was ignored: {reason}");
                assert_eq!(Some(native.as_str()), body["event"].as_str());
                assert!(!reason.is_empty());
            }
            Err(errors) => panic!("{name}: {errors:?}"),
        }
    }
}

#[test]
fn both_text_forms_give_the_same_message() {
    let conversation = one("messages.upsert-text-conversation").data;
    let extended = one("messages.upsert-text-extended").data;
    assert_eq!(conversation["body"], "Hi, is my order ready?");
    assert_eq!(
        extended["body"],
        "Is it at https://shop.example.com/orders/42 ?"
    );
    for d in [&conversation, &extended] {
        assert_eq!(d["type"], "text");
        assert_eq!(d["from"], "15551230001@c.us");
        assert_eq!(d["to"], "15559870000@c.us");
        assert_eq!(d["chatId"], "15551230001@c.us");
        assert_eq!(d["fromMe"], false);
        assert_eq!(d["isGroup"], false);
        assert_eq!(d["kind"], "individual");
        assert_eq!(d["senderPhone"], "15551230001");
        assert_eq!(d["contact"]["pushName"], "Dana");
    }
}

/// The same incoming text through OpenWA (its current line) and through Evolution differs in
/// no field the schema guarantees apart from ids and times.
#[test]
fn an_incoming_text_matches_openwa_in_every_guaranteed_field() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/openwa/current/message.received.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return; // the OpenWA fixtures belong to another change; nothing to compare yet
    };
    let openwa: Value = serde_json::from_str(&text).unwrap();
    let evolution = one("messages.upsert-text-conversation").data;
    let catalog = catalog();
    let schema = &catalog.files()["events/message.received.json"].json;
    for field in schema["required"].as_array().unwrap() {
        let field = field.as_str().unwrap();
        if ["id", "timestamp"].contains(&field) {
            continue;
        }
        assert_eq!(
            evolution[field], openwa["data"][field],
            "field {field} differs between Evolution and OpenWA"
        );
    }
}

#[test]
fn groups_mentions_media_and_lid_chats() {
    let group = one("messages.upsert-group").data;
    assert_eq!(group["from"], "120363041234567890@g.us");
    assert_eq!(group["author"], "15551230002@c.us");
    assert_eq!(group["isGroup"], true);
    assert_eq!(group["mentionedIds"], json!(["15559870000@c.us"]));
    assert_eq!(group["contact"]["id"], "15551230002@c.us");

    let image = one("messages.upsert-image").data;
    assert_eq!(image["type"], "image");
    assert_eq!(image["body"], "My receipt");
    assert_eq!(image["media"]["mimetype"], "image/jpeg");
    assert_eq!(image["media"]["size"], 48213);
    assert!(image["media"]["data"].is_string());
    assert!(
        image["media"].get("url").is_none(),
        "WhatsApp's encrypted CDN URL is not a download URL"
    );
    assert!(!image.to_string().contains("mediaKey"));

    assert_eq!(one("messages.upsert-voice").data["type"], "voice");

    let lid = one("messages.upsert-lid").data;
    assert_eq!(lid["from"], "208123456789012@lid");
    assert_eq!(lid["senderPhone"], "15551230005");
    assert_eq!(lid["contact"]["number"], "15551230005");
}

#[test]
fn send_message_and_its_upsert_share_the_message_id() {
    let sent = one("send.message");
    let upsert = one("messages.upsert-from-me");
    assert_eq!(sent.event, "message.sent");
    assert_eq!(upsert.event, "message.sent");
    assert_eq!(sent.data["id"], upsert.data["id"]);
    assert_eq!(sent.data["from"], "15559870000@c.us");
    assert_eq!(sent.data["to"], "15551230001@c.us");
    assert!(
        sent.data["contact"].get("pushName").is_none(),
        "Evolution's 'Você' is not the recipient's name"
    );
}

#[test]
fn acks_follow_the_status_and_deletions_are_revocations() {
    for (fixture, status, ack) in [
        ("messages.update-error", "error", -1),
        ("messages.update-pending", "pending", 0),
        ("messages.update-server_ack", "server", 1),
        ("messages.update-delivery_ack", "device", 2),
        ("messages.update-read", "read", 3),
        ("messages.update-played", "played", 4),
    ] {
        let t = &events(fixture)[0];
        assert_eq!(t.data["status"], status, "{fixture}");
        assert_eq!(t.data["ack"], ack, "{fixture}");
        assert_eq!(t.data["messageId"], "3EB0F00DCAFE12345678");
    }
    let failed = &events("messages.update-error")[1];
    assert_eq!(failed.data["status"], "failed");
    // The three ways a deletion arrives name the deleted message alike.
    for fixture in ["messages.update-deleted", "messages.delete-api"] {
        let t = one(fixture);
        assert_eq!(t.data["id"], "3EB0F00DCAFE12345678", "{fixture}");
        assert_eq!(t.data["revokedId"], "3EB0F00DCAFE12345678", "{fixture}");
        assert_eq!(t.data["from"], "15559870000@c.us", "{fixture}");
    }
    let bare = one("messages.delete").data;
    assert_eq!(bare["id"], "3EB0A1C2D3E4F5A6B7C8");
    assert_eq!(bare["from"], "15551230001@c.us");
}

#[test]
fn edits_reactions_sessions_groups_presence_and_calls() {
    let edit = one("messages.edited").data;
    assert_eq!(edit["messageId"], "3EB0F00DCAFE12345678");
    assert_eq!(edit["body"], "Yes, you can pick it up after 4 pm.");
    assert_eq!(edit["fromMe"], true);
    assert_eq!(edit["timestamp"], 1_794_000_090);
    let group_edit = one("messages.edited-group").data;
    assert_eq!(group_edit["fromMe"], false);
    assert_eq!(group_edit["senderId"], "15551230002@c.us");
    assert_eq!(group_edit["body"], "Receipt is ready now");

    let reaction = one("messages.upsert-reaction").data;
    assert_eq!(reaction["messageId"], "3EB0F00DCAFE12345678");
    assert_eq!(reaction["reaction"], "👍");
    assert_eq!(reaction["senderId"], "15551230001@c.us");
    assert_eq!(reaction["timestamp"], 1_794_000_200);

    let open = events("connection.update-open");
    assert_eq!(open[0].data["status"], "ready");
    assert_eq!(open[1].data["phone"], "15559870000");
    assert_eq!(open[1].data["pushName"], "Corner Shop");
    assert_eq!(
        events("connection.update-close")[1].data["reason"],
        "LOGOUT"
    );
    assert_eq!(
        events("connection.update-refused")[0].data["status"],
        "failed"
    );
    assert_eq!(
        one("connection.update-connecting").data["status"],
        "initializing"
    );
    let qr = one("qrcode.updated").data;
    assert!(
        qr["qr"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,")
    );

    let add = one("group-participants.update-add").data;
    assert_eq!(add["participantIds"], json!(["15551230003@c.us"]));
    assert_eq!(add["actorId"], "15559870000@c.us");
    let remove = one("group-participants.update-remove").data;
    assert_eq!(
        remove["participantIds"],
        json!(["15551230004@c.us", "208123456789099@lid"])
    );
    assert_eq!(
        one("group-participants.update-promote").data["action"],
        "promote"
    );

    let presence = one("presence.update-group").data;
    assert_eq!(presence["chatId"], "120363041234567890@g.us");
    assert_eq!(presence["participants"][0]["lastSeen"], 1_794_001_200);
    assert_eq!(presence["participants"][1]["id"], "208123456789099@lid");

    let offer = one("call-offer");
    assert_eq!(offer.data["callId"], "5B3C9A0F1E2D4C6B8A7F");
    assert_eq!(offer.data["timestamp"], 1_795_860_100);
    assert_eq!(
        offer.occurred_at.map(|t| t.unix_timestamp()),
        Some(1_795_860_100)
    );
    assert_eq!(one("call-timeout").data["outcome"], "missed");
    assert_eq!(one("call-reject").data["isVideo"], true);
}

#[test]
fn occurred_at_comes_from_engine_epochs_never_from_date_time() {
    let received = one("messages.upsert-text-conversation");
    assert_eq!(
        received.occurred_at.map(|t| t.unix_timestamp()),
        Some(1_794_000_000)
    );
    for name in [
        "connection.update-open",
        "qrcode.updated",
        "presence.update",
    ] {
        for t in events(name) {
            assert_eq!(t.occurred_at, None, "{name}: date_time must not be used");
        }
    }
}

#[test]
fn the_occurrence_is_a_digest_of_the_body_without_apikey() {
    let body = fixture("connection.update-open");
    let first = &events("connection.update-open")[0];
    let occurrence = |body: &Value| match translate(body) {
        Ok(Translation::Events(e)) => e[0].occurrence_id.clone().unwrap(),
        other => panic!("{other:?}"),
    };
    // A retry is the same body: the same occurrence.
    assert_eq!(occurrence(&body), first.occurrence_id.clone().unwrap());
    // The credential is not part of it (another token, or none, names the same occurrence).
    let mut other_key = body.clone();
    other_key["apikey"] = json!("0000AAAA-1111-2222-3333-444455556666");
    assert_eq!(occurrence(&other_key), occurrence(&body));
    let mut no_key = body.clone();
    no_key.as_object_mut().unwrap().remove("apikey");
    assert_eq!(occurrence(&no_key), occurrence(&body));
    // The key order does not matter; another emit (another date_time) is another occurrence.
    let reordered: serde_json::Map<String, Value> = body
        .as_object()
        .unwrap()
        .iter()
        .rev()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(occurrence(&Value::Object(reordered)), occurrence(&body));
    let mut later = body.clone();
    later["date_time"] = json!("2026-11-28T07:30:00.000Z");
    assert_ne!(occurrence(&later), occurrence(&body));
    assert!(!first.occurrence_id.as_ref().unwrap().contains(APIKEY));
}

fn errors_of(body: &Value) -> Vec<FieldError> {
    match translate(body) {
        Err(errors) => errors,
        other => panic!("expected errors for {body}, got {other:?}"),
    }
}

#[test]
fn a_body_that_is_not_an_evolution_envelope_is_refused_with_every_problem() {
    for body in [json!([]), json!("messages.upsert"), json!(17), json!(null)] {
        let errors = errors_of(&body);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].pointer, "");
    }
    let errors = errors_of(&json!({}));
    let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
    assert_eq!(pointers, ["/event", "/instance", "/data"]);

    let errors = errors_of(&json!({
        "event": 5, "instance": "", "data": {}, "sender": 7, "apikey": {"token": APIKEY}
    }));
    let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
    assert_eq!(pointers, ["/event", "/instance", "/apikey", "/sender"]);
    assert!(!format!("{errors:?}").contains(APIKEY));

    // A mapped event whose data misses what the catalog needs.
    let errors = errors_of(&json!({
        "event": "messages.upsert", "instance": "shop-main", "apikey": APIKEY,
        "sender": "15559870000@s.whatsapp.net",
        "data": {"key": {"remoteJid": APIKEY, "fromMe": "no"}, "message": {"conversation": APIKEY}}
    }));
    let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
    assert_eq!(pointers, ["/data/key/id", "/data/key/fromMe"]);
    assert!(!format!("{errors:?}").contains(APIKEY));
}

#[test]
fn the_apikey_never_reaches_a_payload_even_when_it_hides_in_data() {
    let mut body = fixture("messages.upsert-text-conversation");
    body["data"]["message"]["conversation"] = json!(format!("token {APIKEY}"));
    body["data"]["pushName"] = json!(APIKEY);
    let t = one_of(&body);
    let text = format!("{t:?}");
    assert!(!text.contains(APIKEY), "{text}");
    // An event name carrying it is not echoed either.
    let mut odd = fixture("contacts.upsert");
    odd["event"] = json!(APIKEY);
    assert!(!format!("{:?}", translate(&odd)).contains(APIKEY));
}

fn one_of(body: &Value) -> Translated {
    match translate(body) {
        Ok(Translation::Events(mut e)) if e.len() == 1 => e.remove(0),
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_unmapped_event_is_ignored_with_its_reason() {
    for (name, why) in super::UNMAPPED {
        let body = json!({"event": name, "instance": "shop-main", "data": null, "apikey": APIKEY});
        assert_eq!(
            translate(&body),
            Ok(Translation::Ignored {
                native: (*name).to_owned(),
                reason: (*why).to_owned()
            })
        );
    }
    let unknown = json!({"event": "something.new", "instance": "shop-main", "data": {}});
    assert!(matches!(
        translate(&unknown),
        Ok(Translation::Ignored { .. })
    ));
}

/// `schemas/sources/evolution.json` and this adapter tell the same story.
#[test]
fn the_sources_file_matches_the_adapter() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas/sources/evolution.json");
    let file: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let catalog = catalog();
    let mut produced = std::collections::BTreeSet::new();
    for (name, _) in EXPECTED {
        if let Ok(Translation::Events(events)) = translate(&fixture(name)) {
            produced.extend(events.into_iter().map(|e| (e.event, e.native)));
        }
    }
    let mut listed = std::collections::BTreeSet::new();
    for e in file["events"].as_array().unwrap() {
        let event = e["event"].as_str().unwrap();
        assert!(
            catalog.event(event).is_some(),
            "{event} is not in the catalog"
        );
        for n in e["native"].as_array().unwrap() {
            let native = n["name"].as_str().unwrap();
            assert!(
                super::MAPPED.contains(&native),
                "{event}: {native} is not mapped"
            );
            listed.insert((event.to_owned(), native.to_owned()));
        }
    }
    for pair in &produced {
        assert!(
            listed.contains(pair),
            "{pair:?} is produced but not in the sources file"
        );
    }
    let unmapped: Vec<(&str, &str)> = file["unmapped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["native"].as_str().unwrap(), u["why"].as_str().unwrap()))
        .collect();
    assert_eq!(unmapped, super::UNMAPPED);
}
