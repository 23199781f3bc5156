//! Every fixture in tests/fixtures/waha through the adapter; produced data validated against
//! the catalog's payload schemas.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::{qr_data_url, qr_url, session_qr, translate, wants_qr};
use crate::adapters::{Translated, Translation};
use crate::catalog::Catalog;
use crate::validation::ErrorCode;

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/waha")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn events(name: &str) -> Vec<Translated> {
    match translate(&fixture(name)) {
        Ok(Translation::Events(events)) => events,
        other => panic!("{name}: expected events, got {other:?}"),
    }
}

fn names(events: &[Translated]) -> Vec<&str> {
    events.iter().map(|e| e.event.as_str()).collect()
}

/// Fixture → the catalog events it gives, in order (empty: acknowledged and ignored).
const EXPECTED: &[(&str, &[&str])] = &[
    ("message_text_private", &["message.received"]),
    ("message_any_incoming", &["message.received"]),
    ("message_any_from_me", &["message.sent"]),
    ("message_group", &["message.received"]),
    ("message_noweb_voice", &["message.received"]),
    ("message_ack_error", &["message.ack", "message.failed"]),
    ("message_ack_pending", &["message.ack"]),
    ("message_ack_server", &["message.ack"]),
    ("message_ack_device", &["message.ack"]),
    ("message_ack_read", &["message.ack"]),
    ("message_ack_played", &["message.ack"]),
    ("message_ack_group", &["message.ack"]),
    ("message_reaction", &["message.reaction"]),
    ("message_reaction_removed", &["message.reaction"]),
    ("message_revoked", &["message.revoked"]),
    ("message_edited", &["message.edited"]),
    (
        "session_status_stopped",
        &["session.status", "session.disconnected"],
    ),
    ("session_status_starting", &["session.status"]),
    ("session_status_scan_qr_code", &["session.status"]),
    (
        "session_status_working",
        &["session.status", "session.authenticated"],
    ),
    (
        "session_status_failed",
        &["session.status", "session.disconnected"],
    ),
    (
        "session_status_working_without_statuses",
        &["session.status", "session.authenticated"],
    ),
    ("session_status_passkey_required", &["session.status"]),
    ("group_v2_participants_join", &["group.join"]),
    ("group_v2_participants_leave", &["group.leave"]),
    ("group_v2_participants_promote", &["group.update"]),
    ("group_v2_participants_demote", &["group.update"]),
    ("group_v2_join", &["group.join"]),
    ("group_v2_leave", &["group.leave"]),
    ("group_v2_update", &["group.update"]),
    ("presence_update", &["presence.update"]),
    ("call_received", &["call.received"]),
    ("call_accepted", &["call.accepted"]),
    ("call_rejected", &["call.rejected"]),
    ("poll_vote", &[]),
    ("label_upsert", &[]),
    ("group_join_deprecated", &[]),
];

#[test]
fn every_fixture_is_listed() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/waha");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixtures directory")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".json").map(str::to_owned)
        })
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = EXPECTED.iter().map(|(n, _)| (*n).to_owned()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}

#[test]
fn every_fixture_translates_and_validates_against_the_catalog() {
    let catalog = Catalog::load("http://127.0.0.1").expect("catalog");
    let mut not_in_catalog = Vec::new();
    for (name, expected) in EXPECTED {
        let body = fixture(name);
        let translation = translate(&body).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let events = match translation {
            Translation::Events(events) => events,
            Translation::Ignored { native, reason } => {
                assert!(expected.is_empty(), "{name}: ignored ({reason})");
                assert_eq!(native, body["event"].as_str().unwrap());
                assert!(reason.contains(&native), "{name}: {reason}");
                continue;
            }
        };
        assert_eq!(names(&events), *expected, "{name}");
        for e in &events {
            assert_eq!(e.native, body["event"].as_str().unwrap(), "{name}");
            assert_eq!(e.session_id, "shop-main", "{name}");
            assert_eq!(e.occurrence_id.as_deref(), body["id"].as_str(), "{name}");
            let ms = body["timestamp"].as_i64().unwrap();
            assert_eq!(
                e.occurred_at
                    .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64),
                Some(ms),
                "{name}"
            );
            match catalog.validator(&e.event) {
                Some(v) => {
                    let problems: Vec<String> =
                        v.iter_errors(&e.data).map(|p| p.to_string()).collect();
                    assert!(
                        problems.is_empty(),
                        "{name}: {} data {} does not validate: {problems:?}",
                        e.event,
                        e.data
                    );
                }
                None => not_in_catalog.push(format!("{name} → {}", e.event)),
            }
        }
    }
    assert!(
        not_in_catalog.is_empty(),
        "not catalog events: {not_in_catalog:?}"
    );
}

#[test]
fn message_and_message_any_of_one_message_give_the_same_data() {
    let a = events("message_text_private");
    let b = events("message_any_incoming");
    assert_eq!(a[0].event, b[0].event);
    assert_eq!(a[0].data, b[0].data);
    assert_ne!(a[0].occurrence_id, b[0].occurrence_id);
}

#[test]
fn an_incoming_text_matches_what_openwa_sends_for_it() {
    let data = &events("message_text_private")[0].data;
    // The same message as OpenWA delivers it (message.received), ids and times aside.
    let openwa = json!({
        "from": "15551230001@c.us",
        "to": "15559870000@c.us",
        "chatId": "15551230001@c.us",
        "body": "Is my order ready for pickup?",
        "type": "text",
        "fromMe": false,
        "isGroup": false,
    });
    for (field, value) in openwa.as_object().unwrap() {
        assert_eq!(&data[field], value, "{field}");
    }
    assert_eq!(data["id"], "false_15551230001@c.us_3EB0C0FFEE0011223344");
    assert_eq!(data["timestamp"], 1_794_000_000);
    assert_eq!(
        data["contact"],
        json!({"id": "15551230001@c.us", "pushName": "Dana", "number": "15551230001"})
    );
    assert!(data.get("author").is_none());
}

#[test]
fn outgoing_group_and_noweb_messages() {
    let sent = &events("message_any_from_me")[0].data;
    assert_eq!(sent["from"], "15559870000@c.us");
    assert_eq!(sent["to"], "15551230001@c.us");
    assert_eq!(sent["chatId"], "15551230001@c.us");
    assert_eq!(sent["fromMe"], true);
    assert_eq!(sent["contact"]["id"], "15551230001@c.us");

    let group = &events("message_group")[0].data;
    assert_eq!(group["chatId"], "120363041234567890@g.us");
    assert_eq!(group["from"], "120363041234567890@g.us");
    assert_eq!(group["author"], "15551230002@c.us");
    assert_eq!(group["isGroup"], true);
    assert_eq!(group["type"], "image");
    assert_eq!(group["media"]["mimetype"], "image/jpeg");
    assert!(
        group["media"]["url"]
            .as_str()
            .unwrap()
            .starts_with("http://")
    );
    assert_eq!(group["contact"]["pushName"], "Lee");

    let voice = &events("message_noweb_voice")[0].data;
    assert_eq!(voice["from"], "15551230001@c.us");
    assert_eq!(voice["to"], "15559870000@c.us");
    assert_eq!(voice["type"], "voice");
    assert_eq!(voice["contact"]["pushName"], "Dana");
}

#[test]
fn ack_codes_map_onto_catalog_states() {
    for (name, status, code) in [
        ("message_ack_error", "failed", -1),
        ("message_ack_pending", "pending", 0),
        ("message_ack_server", "server", 1),
        ("message_ack_device", "device", 2),
        ("message_ack_read", "read", 3),
        ("message_ack_played", "played", 4),
    ] {
        let e = events(name);
        assert_eq!(e[0].data["status"], status, "{name}");
        assert_eq!(e[0].data["ack"], code, "{name}");
        assert_eq!(
            e[0].data["id"],
            "true_15551230001@c.us_3EB0F00DCAFE12345678"
        );
        assert_eq!(e[0].data["messageId"], e[0].data["id"]);
    }
    let failed = &events("message_ack_error")[1];
    assert_eq!(failed.event, "message.failed");
    assert_eq!(failed.data["status"], "failed");
    assert_eq!(failed.data["ack"], -1);

    let group = &events("message_ack_group")[0].data;
    assert_eq!(
        group["id"],
        "true_120363041234567890@g.us_3EB0AB12CD34EF567890"
    );
    assert_eq!(group["participant"], "98765432101234@lid");
}

#[test]
fn unknown_ack_codes_and_statuses_are_ignored_with_a_reason() {
    let mut body = fixture("message_ack_read");
    body["payload"]["ack"] = json!(7);
    body["payload"]["ackName"] = json!("UNKNOWN");
    assert!(
        matches!(translate(&body), Ok(Translation::Ignored { reason, .. }) if reason.contains('7'))
    );
    let mut body = fixture("session_status_working");
    body["payload"]["status"] = json!("HIBERNATING");
    assert!(matches!(
        translate(&body),
        Ok(Translation::Ignored { reason, .. }) if reason.contains("HIBERNATING")
    ));
}

#[test]
fn reactions_revocations_and_edits_point_at_the_original_message() {
    let original = "false_15551230001@c.us_3EB0C0FFEE0011223344";
    let r = &events("message_reaction")[0].data;
    assert_eq!(r["messageId"], "true_15551230001@c.us_3EB0F00DCAFE12345678");
    assert_eq!(r["reaction"], "👍");
    assert_eq!(r["senderId"], "15551230001@c.us");
    assert_eq!(r["chatId"], "15551230001@c.us");
    assert_eq!(r["timestamp"], 1_794_000_070);
    assert_eq!(events("message_reaction_removed")[0].data["reaction"], "");

    let revoked = &events("message_revoked")[0].data;
    assert_eq!(revoked["id"], "false_15551230001@c.us_3EB0777766665555AAAA");
    assert_eq!(revoked["revokedId"], original);
    assert_eq!(revoked["from"], "15551230001@c.us");

    let edited = &events("message_edited")[0].data;
    assert_eq!(edited["messageId"], original);
    assert_eq!(edited["body"], "Is my order ready for pickup today?");
    assert_eq!(edited["senderId"], "15551230001@c.us");
}

#[test]
fn session_statuses_and_the_working_rule() {
    for (name, status) in [
        ("session_status_stopped", "disconnected"),
        ("session_status_starting", "initializing"),
        ("session_status_scan_qr_code", "qr_ready"),
        ("session_status_working", "ready"),
        ("session_status_failed", "failed"),
        ("session_status_passkey_required", "action_required"),
    ] {
        let e = events(name);
        assert_eq!(
            e[0].data,
            json!({"sessionId": "shop-main", "status": status})
        );
    }
    let working = events("session_status_working");
    assert_eq!(
        working[1].data,
        json!({"sessionId": "shop-main", "phone": "15559870000", "pushName": "Corner Shop"})
    );
    assert_eq!(
        events("session_status_stopped")[1].data,
        json!({"sessionId": "shop-main", "reason": "STOPPED"})
    );
    assert_eq!(events("session_status_failed")[1].data["reason"], "FAILED");

    // WORKING again after WORKING (a repeated status) gives no second session.authenticated.
    let mut body = fixture("session_status_working");
    body["payload"]["statuses"] = json!([
        {"status": "SCAN_QR_CODE", "timestamp": 1},
        {"status": "WORKING", "timestamp": 2},
        {"status": "WORKING", "timestamp": 3},
    ]);
    let Ok(Translation::Events(e)) = translate(&body) else {
        panic!()
    };
    assert_eq!(names(&e), ["session.status"]);

    // Leaving WORKING for SCAN_QR_CODE (logged out on the phone) is a disconnection.
    let mut body = fixture("session_status_scan_qr_code");
    body["payload"]["statuses"] = json!([
        {"status": "STARTING", "timestamp": 1},
        {"status": "WORKING", "timestamp": 2},
        {"status": "SCAN_QR_CODE", "timestamp": 3},
    ]);
    let Ok(Translation::Events(e)) = translate(&body) else {
        panic!()
    };
    assert_eq!(names(&e), ["session.status", "session.disconnected"]);
    assert_eq!(e[1].data["reason"], "SCAN_QR_CODE");

    // Without statuses, STOPPED derives nothing; FAILED still gives session.disconnected.
    let mut body = fixture("session_status_stopped");
    body["payload"].as_object_mut().unwrap().remove("statuses");
    let Ok(Translation::Events(e)) = translate(&body) else {
        panic!()
    };
    assert_eq!(names(&e), ["session.status"]);
    let mut body = fixture("session_status_failed");
    body["payload"].as_object_mut().unwrap().remove("statuses");
    let Ok(Translation::Events(e)) = translate(&body) else {
        panic!()
    };
    assert_eq!(names(&e), ["session.status", "session.disconnected"]);

    // WORKING without `me`: only session.status (the phone number is unknown).
    let mut body = fixture("session_status_working");
    body.as_object_mut().unwrap().remove("me");
    let Ok(Translation::Events(e)) = translate(&body) else {
        panic!()
    };
    assert_eq!(names(&e), ["session.status"]);
}

#[test]
fn groups_presence_and_calls() {
    let join = &events("group_v2_participants_join")[0].data;
    assert_eq!(join["groupId"], "120363041234567890@g.us");
    assert_eq!(join["participantIds"], json!(["15551230003@c.us"]));
    assert_eq!(join["timestamp"], 1_794_000_500);
    let promote = &events("group_v2_participants_promote")[0].data;
    assert_eq!(
        promote["changes"],
        json!({"promoted": ["15551230002@c.us"]})
    );
    let demote = &events("group_v2_participants_demote")[0].data;
    assert_eq!(demote["changes"], json!({"demoted": ["15551230002@c.us"]}));
    let me_joined = &events("group_v2_join")[0].data;
    assert_eq!(me_joined["participantIds"], json!(["15559870000@c.us"]));
    let update = &events("group_v2_update")[0].data;
    assert_eq!(
        update["changes"],
        json!({"subject": "Corner Shop regulars 2027", "announce": true})
    );

    let presence = &events("presence_update")[0].data;
    assert_eq!(presence["chatId"], "120363041234567890@g.us");
    assert_eq!(presence["participants"][0]["state"], "composing");
    assert_eq!(presence["participants"][1]["id"], "15551230003@c.us");
    assert_eq!(presence["participants"][1]["state"], "unavailable");
    assert_eq!(presence["participants"][1]["lastSeen"], 1_794_000_650);
    assert!(presence["participants"][0].get("lastSeen").is_none());

    let received = &events("call_received")[0].data;
    assert_eq!(received["callId"], "CA11DE5E0F0A1B2C3D4E5F6071829304");
    assert!(received.get("outcome").is_none());
    assert_eq!(events("call_accepted")[0].data["outcome"], "accepted");
    assert_eq!(events("call_rejected")[0].data["outcome"], "rejected");
}

#[test]
fn non_envelopes_are_refused_with_every_problem() {
    for body in [json!([]), json!("message"), json!(null), json!(42)] {
        let errors = translate(&body).expect_err("refused");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].pointer, "");
        assert_eq!(errors[0].code, ErrorCode::InvalidType);
    }
    let errors = translate(&json!({})).expect_err("refused");
    let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
    assert_eq!(pointers, ["/event", "/session", "/payload"]);
    assert!(errors.iter().all(|e| e.code == ErrorCode::Required));

    let errors = translate(&json!({
        "event": 7, "session": ["default"], "payload": "hi", "timestamp": "now", "me": "me"
    }))
    .expect_err("refused");
    let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
    assert_eq!(
        pointers,
        ["/event", "/session", "/payload", "/timestamp", "/me"]
    );
    assert!(errors.iter().all(|e| e.code == ErrorCode::InvalidType));

    // A known event whose payload lacks what the catalog needs: every problem, with pointers.
    let mut body = fixture("message_text_private");
    let payload = body["payload"].as_object_mut().unwrap();
    payload.remove("id");
    payload.insert("body".into(), json!(12));
    let errors = translate(&body).expect_err("refused");
    let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
    assert_eq!(pointers, ["/payload/id", "/payload/body"]);
}

#[test]
fn an_unknown_event_is_acknowledged_and_named() {
    let body = json!({"event": "chat.pinned", "session": "default", "payload": {}});
    let Ok(Translation::Ignored { native, reason }) = translate(&body) else {
        panic!()
    };
    assert_eq!(native, "chat.pinned");
    assert!(reason.contains("chat.pinned"));
}

#[test]
fn the_qr_is_fetched_on_scan_qr_code_and_becomes_session_qr() {
    let status = &events("session_status_scan_qr_code")[0];
    assert!(wants_qr(status));
    assert!(!wants_qr(&events("session_status_working")[0]));
    let answer = json!({"mimetype": "image/png", "data": "iVBORw0KGgo="});
    let qr = qr_data_url(&answer).expect("qr");
    assert_eq!(qr, "data:image/png;base64,iVBORw0KGgo=");
    assert_eq!(
        qr_data_url(&json!({"value": "2@AbC,dEf=="})).as_deref(),
        Some("2@AbC,dEf==")
    );
    assert_eq!(qr_data_url(&json!({"mimetype": "image/png"})), None);
    let event = session_qr(status, qr);
    assert_eq!(event.event, "session.qr");
    assert_eq!(event.occurrence_id, status.occurrence_id);
    let catalog = Catalog::load("http://127.0.0.1").expect("catalog");
    assert!(
        catalog
            .validator("session.qr")
            .unwrap()
            .is_valid(&event.data)
    );

    assert_eq!(
        qr_url("http://waha.internal:3000", "shop main")
            .unwrap()
            .as_str(),
        "http://waha.internal:3000/api/shop%20main/auth/qr"
    );
    assert_eq!(
        qr_url("https://example.com/waha/", "a/b").unwrap().as_str(),
        "https://example.com/waha/api/a%2Fb/auth/qr"
    );
    assert!(qr_url("ftp://x", "a").is_none());
}

#[test]
fn the_source_file_matches_the_adapter() {
    let source: Value = serde_json::from_str(super::SOURCE).expect("waha.json is JSON");
    let schema: Value = serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schemas/source.json"
    )))
    .expect("source.json is JSON");
    let validator = jsonschema::draft202012::options()
        .build(&schema)
        .expect("source.json compiles");
    let problems: Vec<String> = validator
        .iter_errors(&source)
        .map(|e| e.to_string())
        .collect();
    assert!(problems.is_empty(), "{problems:?}");

    // Every unmapped name is acknowledged with its reason.
    for u in source["unmapped"].as_array().unwrap() {
        let native = u["native"].as_str().unwrap();
        let body = json!({"event": native, "session": "default", "payload": {}});
        let Ok(Translation::Ignored { reason, .. }) = translate(&body) else {
            panic!("{native} is not ignored")
        };
        assert!(reason.contains(u["why"].as_str().unwrap()), "{reason}");
    }
    // Every native name of a mapped event is one the adapter translates, and each event it
    // produces from the fixtures is listed in the source file under that native name.
    let mapped: Vec<(String, String)> = source["events"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| {
            let event = e["event"].as_str().unwrap().to_owned();
            e["native"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |n| (event.clone(), n["name"].as_str().unwrap().to_owned()))
        })
        .collect();
    for (name, _) in EXPECTED {
        if let Ok(Translation::Events(events)) = translate(&fixture(name)) {
            for e in events {
                let pair = (e.event.clone(), e.native.clone());
                assert!(mapped.contains(&pair), "{name}: {pair:?} not in waha.json");
            }
        }
    }
    for (_, native) in &mapped {
        let body = json!({"event": native, "session": "default", "payload": {}});
        if let Ok(Translation::Ignored { reason, .. }) = translate(&body) {
            panic!("{native} is listed as mapped but ignored: {reason}");
        }
    }
}
