//! Every registration rule, one at a time, then all at once.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::*;
use crate::catalog::{CANONICAL_BASE, Catalog};
use crate::ids::SessionId;
use crate::target_url::TargetUrl;

fn catalog() -> Catalog {
    Catalog::load(CANONICAL_BASE).expect("the embedded catalog loads")
}

/// A bridge fed by OpenWA v0.4.3, which emits no group.* event: they are reserved here.
fn catalog_fed_by_openwa_0_4_3() -> Catalog {
    let sources = crate::catalog::parse_specs("openwa@0.4.3").unwrap();
    Catalog::load_with(CANONICAL_BASE, &sources).expect("the embedded catalog loads")
}

const URL: &str = "https://n8n.example.com/webhook/abc";

/// A valid body with `field` set to `value`.
fn body_with(field: &str, value: Value) -> Value {
    let mut body = json!({"url": URL, "events": ["message.received"]});
    body[field] = value;
    body
}

fn parse(body: &Value) -> Result<Registration, Vec<FieldError>> {
    parse_registration(&catalog(), body)
}

/// The only error of a body refused by a bridge fed by OpenWA v0.4.3.
fn one_error_on_0_4_3(body: &Value) -> FieldError {
    let errors = parse_registration(&catalog_fed_by_openwa_0_4_3(), body)
        .expect_err("refused on a bridge fed by openwa@0.4.3");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    errors.into_iter().next().unwrap()
}

fn ok(body: &Value) -> Registration {
    parse(body).unwrap_or_else(|errors| panic!("{body} refused: {errors:#?}"))
}

/// The errors of a body that must be refused.
fn refused(body: &Value) -> Vec<FieldError> {
    match parse(body) {
        Ok(r) => panic!("{body} accepted: {r:?}"),
        Err(errors) => {
            assert!(!errors.is_empty());
            errors
        }
    }
}

/// The only error of a body that must be refused for exactly one reason.
fn one_error(body: &Value) -> FieldError {
    let errors = refused(body);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    errors.into_iter().next().unwrap()
}

fn assert_error(e: &FieldError, pointer: &str, code: ErrorCode) {
    assert_eq!((e.pointer.as_str(), e.code), (pointer, code), "{e:#?}");
    assert!(!e.message.is_empty());
}

/// The serialized error, as the API and the CLI show it.
fn shown(e: &FieldError) -> String {
    serde_json::to_string(e).unwrap()
}

fn whsec(bytes: usize) -> String {
    format!("whsec_{}", STANDARD.encode(vec![7u8; bytes]))
}

// ------------------------------------------------------------------------------------ url

#[test]
fn a_minimal_body_is_valid_and_gets_defaults() {
    let r = ok(&json!({"url": URL, "events": ["message.received"]}));
    assert_eq!(r.url, URL);
    assert_eq!(r.events, vec!["message.received"]);
    assert!(r.secret.is_none());
    assert_eq!(r.session_id, None);
    assert_eq!(r.description, None);
    assert!(r.headers.is_empty());
    assert!(r.active);
    assert_eq!(r.rate_limit, None);
    let n = serde_json::to_value(r.normalized()).unwrap();
    assert_eq!(n["secret"], "generated");
    assert_eq!(n["active"], true);
}

#[test]
fn url_is_normalized() {
    let r = ok(&body_with(
        "url",
        json!("HTTPS://N8N.Example.COM:443/webhook/abc?x=1"),
    ));
    assert_eq!(r.url, "https://n8n.example.com/webhook/abc?x=1");
    let r = ok(&body_with("url", json!("http://127.0.0.1:5678")));
    assert_eq!(r.url, "http://127.0.0.1:5678/");
}

#[test]
fn url_must_be_absolute_http_or_https() {
    for bad in [
        "/webhook/abc",
        "n8n.example.com/webhook",
        "ftp://files.example.com/hook",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "http://",
        "",
    ] {
        let e = one_error(&body_with("url", json!(bad)));
        assert_error(&e, "/url", ErrorCode::InvalidUrl);
        assert_eq!(e.value, json!(bad), "{bad}");
    }
    let e = one_error(&body_with("url", json!("ftp://files.example.com/hook")));
    assert!(e.message.contains("http or https"), "{}", e.message);
}

#[test]
fn url_must_be_a_string() {
    for bad in [
        json!(42),
        json!(null),
        json!(["https://a.example"]),
        json!({}),
    ] {
        let e = one_error(&body_with("url", bad.clone()));
        assert_error(&e, "/url", ErrorCode::InvalidType);
        assert_eq!(e.value, bad);
    }
}

#[test]
fn url_with_userinfo_is_refused_without_echoing_the_password() {
    for bad in [
        "https://alice:s3cr3t-pa55@n8n.example.com/hook",
        "https://alice@n8n.example.com/hook",
        "https://:s3cr3t-pa55@n8n.example.com/hook",
    ] {
        let e = one_error(&body_with("url", json!(bad)));
        assert_error(&e, "/url", ErrorCode::InvalidUrl);
        assert_eq!(e.value, Value::Null, "the url is not echoed");
        let text = shown(&e);
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(!text.contains("alice"), "{text}");
        assert!(
            e.message.contains("headers"),
            "points to headers: {}",
            e.message
        );
    }
}

#[test]
fn url_is_at_most_2048_characters() {
    let base = "https://n8n.example.com/";
    let at_limit = format!("{base}{}", "a".repeat(MAX_URL_LEN - base.len()));
    assert_eq!(at_limit.len(), 2048);
    assert_eq!(
        ok(&body_with("url", json!(at_limit))).url.as_str(),
        at_limit
    );

    let too_long = format!("{at_limit}b");
    let e = one_error(&body_with("url", json!(too_long)));
    assert_error(&e, "/url", ErrorCode::InvalidUrl);
    assert!(
        e.message.contains("2049") && e.message.contains("2048"),
        "{}",
        e.message
    );
    let echoed = e.value.as_str().unwrap();
    assert!(
        echoed.chars().count() < 100,
        "the value is shortened: {echoed}"
    );
}

#[test]
fn url_must_not_have_a_fragment() {
    let e = one_error(&body_with(
        "url",
        json!("https://n8n.example.com/hook#part"),
    ));
    assert_error(&e, "/url", ErrorCode::InvalidUrl);
    assert!(e.message.contains("fragment"), "{}", e.message);
}

// --------------------------------------------------------------------------------- events

#[test]
fn events_must_be_a_non_empty_array() {
    let e = one_error(&body_with("events", json!([])));
    assert_error(&e, "/events", ErrorCode::EmptyEvents);

    for bad in [
        json!("message.received"),
        json!(null),
        json!({"0": "x"}),
        json!(3),
    ] {
        let e = one_error(&body_with("events", bad.clone()));
        assert_error(&e, "/events", ErrorCode::InvalidType);
        assert_eq!(e.value, bad);
    }
}

#[test]
fn every_event_item_must_be_a_string() {
    let errors = refused(&body_with(
        "events",
        json!(["message.received", 7, null, {"name": "x"}]),
    ));
    let got: Vec<(&str, ErrorCode)> = errors
        .iter()
        .map(|e| (e.pointer.as_str(), e.code))
        .collect();
    assert_eq!(
        got,
        vec![
            ("/events/1", ErrorCode::InvalidType),
            ("/events/2", ErrorCode::InvalidType),
            ("/events/3", ErrorCode::InvalidType),
        ]
    );
    assert_eq!(errors[0].value, json!(7));
}

#[test]
fn duplicates_are_folded_keeping_the_first_order() {
    let r = ok(&body_with(
        "events",
        json!([
            "session.qr",
            "message.received",
            "session.qr",
            "message.*",
            "message.received",
            "message.*"
        ]),
    ));
    assert_eq!(
        r.events,
        vec!["session.qr", "message.received", "message.*"]
    );
}

#[test]
fn wildcards_of_families_with_available_events_are_accepted() {
    for pattern in ["*", "message.*", "session.*"] {
        assert_eq!(
            ok(&body_with("events", json!([pattern]))).events,
            vec![pattern]
        );
    }
    // A wildcard and names it covers are kept as given.
    let r = ok(&body_with(
        "events",
        json!(["*", "message.*", "session.qr"]),
    ));
    assert_eq!(r.events, vec!["*", "message.*", "session.qr"]);
}

#[test]
fn every_available_event_is_accepted() {
    let c = catalog();
    for e in c.available() {
        let r = parse_registration(&c, &body_with("events", json!([e.name]))).unwrap();
        assert_eq!(r.events, vec![e.name.clone()]);
    }
}

#[test]
fn events_no_configured_source_emits_are_refused_with_an_explanation() {
    for name in [
        "group.join",
        "group.leave",
        "group.update",
        "group.join_request",
        "group.*",
    ] {
        // The default sources (OpenWA's current line) emit them.
        ok(&body_with("events", json!(["message.received", name])));
        let e = one_error_on_0_4_3(&body_with("events", json!(["message.received", name])));
        assert_error(&e, "/events/1", ErrorCode::ReservedEvent);
        assert_eq!(e.value, json!(name));
        assert_eq!(e.suggestion, None, "{name}: nothing to use instead");
        for words in [
            "fed by openwa@0.4.3",
            "would never fire",
            "OpenWA (openwa) from version",
            "WABRIDGE_SOURCES=openwa@",
            "GET /v1/events",
        ] {
            assert!(
                e.message.contains(words),
                "{name}: {words:?} in {}",
                e.message
            );
        }
    }
    let e = one_error_on_0_4_3(&body_with("events", json!(["group.*"])));
    assert!(e.message.contains("family"), "{}", e.message);
}

#[test]
fn every_event_reserved_on_the_bridge_is_refused_and_every_available_one_accepted() {
    let c = catalog_fed_by_openwa_0_4_3();
    let reserved: Vec<_> = c
        .events()
        .iter()
        .filter(|e| c.status(e) == crate::catalog::EventStatus::Reserved)
        .collect();
    // OpenWA v0.4.3 emits 9 of the catalog's events.
    assert_eq!(c.available().count(), 9);
    assert_eq!(reserved.len(), c.events().len() - 9);
    for e in reserved {
        let errors = parse_registration(&c, &body_with("events", json!([e.name]))).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].code, ErrorCode::ReservedEvent, "{}", e.name);
    }
    let current = catalog();
    assert_eq!(current.available().count(), current.events().len());
}

#[test]
fn unknown_names_and_families_are_refused() {
    for (name, suggestion) in [
        ("foo.*", None),
        ("order.created", None),
        ("xyzzy", None),
        ("", None),
        ("mesage.received", Some("message.received")),
        ("Session.QR", Some("session.qr")),
        ("session_status", Some("session.status")),
        ("message.**", Some("message.*")),
    ] {
        let e = one_error(&body_with("events", json!([name])));
        assert_error(&e, "/events/0", ErrorCode::UnknownEvent);
        assert_eq!(e.value, json!(name));
        assert_eq!(e.suggestion.as_deref(), suggestion, "{name:?}");
        match suggestion {
            Some(s) => assert!(
                e.message.contains(&format!("did you mean '{s}'")),
                "{}",
                e.message
            ),
            None => assert!(e.message.contains("GET /v1/events"), "{}", e.message),
        }
    }
}

#[test]
fn the_historical_wrong_names_are_refused_with_the_name_to_use() {
    for (wrong, right) in [
        ("session.connected", "session.authenticated"),
        ("session.qr_ready", "session.qr"),
    ] {
        let e = one_error(&body_with("events", json!([wrong])));
        assert_error(&e, "/events/0", ErrorCode::UnknownEvent);
        assert_eq!(e.suggestion.as_deref(), Some(right));
        assert!(
            e.message.contains(&format!("Use '{right}'")),
            "{}",
            e.message
        );
        // The message carries the catalog's explanation.
        let why = catalog().wrong_name(wrong).unwrap().why.clone();
        assert!(e.message.contains(why.as_str()), "{}", e.message);
    }
}

// --------------------------------------------------------------------------------- secret

#[test]
fn whsec_secrets_decode_to_24_to_64_bytes() {
    for n in [24, 32, 64] {
        let r = ok(&body_with("secret", json!(whsec(n))));
        assert_eq!(r.secret.unwrap().expose(), whsec(n));
    }
    for n in [0, 16, 23, 65] {
        let secret = whsec(n);
        let e = one_error(&body_with("secret", json!(secret)));
        assert_error(&e, "/secret", ErrorCode::InvalidSecret);
        assert!(e.message.contains(&n.to_string()), "{}", e.message);
        assert_eq!(e.value, Value::Null);
        if n > 0 {
            assert!(!shown(&e).contains(&secret[6..]), "{}", shown(&e));
        }
    }
    let e = one_error(&body_with("secret", json!("whsec_not base64!!")));
    assert_error(&e, "/secret", ErrorCode::InvalidSecret);
    assert!(!shown(&e).contains("not base64!!"));
}

#[test]
fn plain_secrets_are_16_to_255_characters() {
    for secret in ["correct-horse-16", &"s".repeat(255), "ünïcödé-secret-16"] {
        let r = ok(&body_with("secret", json!(secret)));
        assert_eq!(r.secret.unwrap().expose(), secret);
        assert_eq!(
            serde_json::to_value(ok(&body_with("secret", json!(secret))).normalized()).unwrap()["secret"],
            "provided"
        );
    }
    for secret in [
        "hunter2",
        "fifteen-chars-x",
        &"s".repeat(256),
        " padded-secret-value ",
    ] {
        let e = one_error(&body_with("secret", json!(secret)));
        assert_error(&e, "/secret", ErrorCode::InvalidSecret);
        assert_eq!(e.value, Value::Null, "never echoed");
        assert!(!shown(&e).contains(secret.trim()), "{}", shown(&e));
        assert!(e.message.contains("omit 'secret'"), "{}", e.message);
    }
}

#[test]
fn a_secret_of_the_wrong_type_is_not_echoed() {
    for bad in [
        json!(1234567890123456789_u64),
        json!(["hunter2-hunter2-hunter2"]),
    ] {
        let e = one_error(&body_with("secret", bad));
        assert_error(&e, "/secret", ErrorCode::InvalidType);
        assert_eq!(e.value, Value::Null);
        assert!(!shown(&e).contains("hunter2"));
        assert!(!shown(&e).contains("1234567890"));
    }
}

#[test]
fn a_null_secret_means_generate_one() {
    assert!(ok(&body_with("secret", json!(null))).secret.is_none());
}

// ------------------------------------------------------------------- sessionId, description

#[test]
fn session_id_is_1_to_128_printable_characters_or_null() {
    assert_eq!(
        ok(&body_with("sessionId", json!("shop-main")))
            .session_id
            .as_ref()
            .map(SessionId::as_str),
        Some("shop-main")
    );
    assert_eq!(ok(&body_with("sessionId", json!(null))).session_id, None);
    let long = "s".repeat(128);
    assert_eq!(
        ok(&body_with("sessionId", json!(long))).session_id,
        SessionId::parse(&long)
    );
    for bad in [
        json!(""),
        json!("   "),
        json!("s".repeat(129)),
        json!("shop\nmain"),
    ] {
        let e = one_error(&body_with("sessionId", bad.clone()));
        assert_error(&e, "/sessionId", ErrorCode::InvalidSessionId);
        assert_eq!(e.value, bad);
    }
    for bad in [json!(5), json!(true), json!(["shop"])] {
        let e = one_error(&body_with("sessionId", bad.clone()));
        assert_error(&e, "/sessionId", ErrorCode::InvalidType);
    }
}

#[test]
fn description_is_at_most_1024_characters_or_null() {
    let long = "é".repeat(1024);
    assert_eq!(
        ok(&body_with("description", json!(long))).description,
        Some(long)
    );
    assert_eq!(ok(&body_with("description", json!(null))).description, None);
    let e = one_error(&body_with("description", json!("d".repeat(1025))));
    assert_error(&e, "/description", ErrorCode::InvalidDescription);
    assert!(e.message.contains("1025"), "{}", e.message);
    let e = one_error(&body_with("description", json!(12)));
    assert_error(&e, "/description", ErrorCode::InvalidType);
}

// -------------------------------------------------------------------------------- headers

#[test]
fn custom_headers_are_accepted() {
    let r = ok(&body_with(
        "headers",
        json!({"Authorization": "Bearer abc", "X-Workflow": "orders"}),
    ));
    assert_eq!(r.headers.len(), 2);
    assert_eq!(r.headers["Authorization"], "Bearer abc");
    assert!(ok(&body_with("headers", json!({}))).headers.is_empty());
}

#[test]
fn reserved_headers_are_refused() {
    for name in [
        "Content-Type",
        "content-length",
        "User-Agent",
        "Host",
        "Connection",
        "Keep-Alive",
        "Transfer-Encoding",
        "Upgrade",
        "TE",
        "Expect",
        "webhook-id",
        "Webhook-Signature",
        "webhook-timestamp",
        "X-OpenWA-Signature",
        "x-openwa-event",
        "Proxy-Authorization",
    ] {
        let e = one_error(&body_with("headers", json!({name: "value-never-echoed"})));
        assert_error(&e, &format!("/headers/{name}"), ErrorCode::ReservedHeader);
        assert_eq!(e.value, json!(name));
        assert!(!shown(&e).contains("value-never-echoed"));
        assert!(is_reserved_header(name));
    }
    assert!(!is_reserved_header("Authorization"));
    assert!(!is_reserved_header("X-Workflow"));
}

#[test]
fn invalid_header_names_are_refused_with_escaped_pointers() {
    for (name, pointer) in [
        ("bad header", "/headers/bad header"),
        ("x:y", "/headers/x:y"),
        ("a/b", "/headers/a~1b"),
        ("t~x(", "/headers/t~0x("),
        ("", "/headers/"),
    ] {
        let e = one_error(&body_with("headers", json!({name: "v"})));
        assert_error(&e, pointer, ErrorCode::InvalidHeader);
        assert_eq!(e.value, json!(name));
    }
}

#[test]
fn header_values_are_checked_and_never_echoed() {
    let e = one_error(&body_with(
        "headers",
        json!({"Authorization": "Bearer tok3n\r\nX-Injected: 1"}),
    ));
    assert_error(&e, "/headers/Authorization", ErrorCode::InvalidHeader);
    assert_eq!(e.value, Value::Null);
    assert!(!shown(&e).contains("tok3n"), "{}", shown(&e));

    let e = one_error(&body_with("headers", json!({"X-Count": 5})));
    assert_error(&e, "/headers/X-Count", ErrorCode::InvalidType);
    assert_eq!(e.value, Value::Null);

    let e = one_error(&body_with("headers", json!(["Authorization: x"])));
    assert_error(&e, "/headers", ErrorCode::InvalidType);
}

#[test]
fn every_header_problem_is_reported() {
    let errors = refused(&body_with(
        "headers",
        json!({"Content-Type": "x", "bad name": "x", "X-Ok": "fine", "X-Num": 1}),
    ));
    let mut got: Vec<(String, ErrorCode)> =
        errors.into_iter().map(|e| (e.pointer, e.code)).collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        vec![
            (
                "/headers/Content-Type".to_owned(),
                ErrorCode::ReservedHeader
            ),
            ("/headers/X-Num".to_owned(), ErrorCode::InvalidType),
            ("/headers/bad name".to_owned(), ErrorCode::InvalidHeader),
        ]
    );
}

#[test]
fn at_most_32_headers() {
    let many: serde_json::Map<String, Value> =
        (0..33).map(|i| (format!("X-H{i}"), json!("v"))).collect();
    let e = one_error(&body_with("headers", Value::Object(many.clone())));
    assert_error(&e, "/headers", ErrorCode::InvalidHeader);
    let enough: serde_json::Map<String, Value> = many.into_iter().take(32).collect();
    assert_eq!(
        ok(&body_with("headers", Value::Object(enough)))
            .headers
            .len(),
        32
    );
}

// ------------------------------------------------------------------------ rateLimit, active

#[test]
fn rate_limit_is_above_0_and_at_most_10000_or_null() {
    for good in [0.5, 1.0, 10_000.0] {
        assert_eq!(
            ok(&body_with("rateLimit", json!(good))).rate_limit,
            Some(good)
        );
    }
    assert_eq!(ok(&body_with("rateLimit", json!(null))).rate_limit, None);
    for bad in [json!(0), json!(-1), json!(10_001), json!(1e300)] {
        let e = one_error(&body_with("rateLimit", bad.clone()));
        assert_error(&e, "/rateLimit", ErrorCode::InvalidRateLimit);
        assert_eq!(e.value, bad);
    }
    let e = one_error(&body_with("rateLimit", json!("5")));
    assert_error(&e, "/rateLimit", ErrorCode::InvalidType);
}

#[test]
fn active_is_a_boolean() {
    assert!(!ok(&body_with("active", json!(false))).active);
    assert!(ok(&body_with("active", json!(true))).active);
    for bad in [json!("yes"), json!(1), json!(null)] {
        let e = one_error(&body_with("active", bad.clone()));
        assert_error(&e, "/active", ErrorCode::InvalidType);
        assert_eq!(e.value, bad);
    }
}

// ---------------------------------------------------------------- body shape, unknown fields

#[test]
fn the_body_must_be_an_object() {
    for bad in [json!([]), json!("x"), json!(null), json!(1)] {
        let e = one_error(&bad);
        assert_error(&e, "", ErrorCode::InvalidType);
    }
}

#[test]
fn url_and_events_are_required() {
    let errors = refused(&json!({}));
    let got: Vec<(&str, ErrorCode)> = errors
        .iter()
        .map(|e| (e.pointer.as_str(), e.code))
        .collect();
    assert_eq!(
        got,
        vec![
            ("/url", ErrorCode::Required),
            ("/events", ErrorCode::Required)
        ]
    );
    let e = one_error(&json!({"url": URL}));
    assert_error(&e, "/events", ErrorCode::Required);
}

#[test]
fn unknown_fields_are_refused_by_name_with_a_suggestion() {
    for (field, suggestion) in [
        ("sesionId", Some("sessionId")),
        ("session_id", Some("sessionId")),
        ("URL", Some("url")),
        ("event", Some("events")),
        ("ratelimit", Some("rateLimit")),
        ("retryCount", None),
        ("callbackUrl", None),
    ] {
        let e = one_error(&body_with(field, json!("x")));
        assert_error(&e, &format!("/{field}"), ErrorCode::UnknownField);
        assert_eq!(e.suggestion.as_deref(), suggestion, "{field}");
        assert!(e.message.contains(field), "{}", e.message);
        // Unknown values are not echoed: they may be credentials under a misspelled name.
        assert_eq!(e.value, Value::Null);
    }
    let e = one_error(&body_with("a/b~", json!(1)));
    assert_eq!(e.pointer, "/a~1b~0");
}

#[test]
fn a_mixed_body_reports_every_problem_at_once() {
    let body = json!({
        "url": "ftp://n8n.example.com/hook",
        "events": ["group.join", "message.received", "mesage.sent", 3, "session.connected", "group.*"],
        "secret": "hunter2",
        "sessionId": "",
        "headers": {"Content-Type": "text/plain", "X-Ok": "fine"},
        "rateLimit": 0,
        "active": "yes",
        "foo": 1,
        "sesionId": "x"
    });
    let errors = parse_registration(&catalog_fed_by_openwa_0_4_3(), &body).unwrap_err();
    let got: Vec<(&str, ErrorCode)> = errors
        .iter()
        .map(|e| (e.pointer.as_str(), e.code))
        .collect();
    assert_eq!(
        got,
        vec![
            ("/foo", ErrorCode::UnknownField),
            ("/sesionId", ErrorCode::UnknownField),
            ("/url", ErrorCode::InvalidUrl),
            ("/events/0", ErrorCode::ReservedEvent),
            ("/events/2", ErrorCode::UnknownEvent),
            ("/events/3", ErrorCode::InvalidType),
            ("/events/4", ErrorCode::UnknownEvent),
            ("/events/5", ErrorCode::ReservedEvent),
            ("/secret", ErrorCode::InvalidSecret),
            ("/sessionId", ErrorCode::InvalidSessionId),
            ("/headers/Content-Type", ErrorCode::ReservedHeader),
            ("/active", ErrorCode::InvalidType),
            ("/rateLimit", ErrorCode::InvalidRateLimit),
        ]
    );
    let by_pointer = |p: &str| errors.iter().find(|e| e.pointer == p).unwrap();
    assert_eq!(
        by_pointer("/events/2").suggestion.as_deref(),
        Some("message.sent")
    );
    assert_eq!(
        by_pointer("/events/4").suggestion.as_deref(),
        Some("session.authenticated")
    );
    assert_eq!(
        by_pointer("/sesionId").suggestion.as_deref(),
        Some("sessionId")
    );
    let all = serde_json::to_string(&errors).unwrap();
    assert!(!all.contains("hunter2"));
    assert!(!all.contains("text/plain"));
}

#[test]
fn error_codes_serialize_as_their_documented_names() {
    for code in [
        ErrorCode::InvalidJson,
        ErrorCode::InvalidType,
        ErrorCode::Required,
        ErrorCode::UnknownField,
        ErrorCode::EmptyEvents,
        ErrorCode::UnknownEvent,
        ErrorCode::ReservedEvent,
        ErrorCode::InvalidUrl,
        ErrorCode::UrlNotAllowed,
        ErrorCode::InvalidSecret,
        ErrorCode::InvalidSessionId,
        ErrorCode::InvalidDescription,
        ErrorCode::InvalidHeader,
        ErrorCode::ReservedHeader,
        ErrorCode::InvalidRateLimit,
        ErrorCode::InvalidPayload,
        ErrorCode::InvalidTimestamp,
        ErrorCode::InvalidEventId,
    ] {
        assert_eq!(serde_json::to_value(code).unwrap(), json!(code.as_str()));
    }
    let e = FieldError::new("/events/0", ErrorCode::UnknownEvent, "m");
    let v = serde_json::to_value(&e).unwrap();
    assert_eq!(
        v,
        json!({"pointer": "/events/0", "code": "unknown_event", "message": "m"})
    );
}

// ----------------------------------------------------------------------------------- patch

#[test]
fn an_empty_patch_changes_nothing() {
    let p = parse_patch(&catalog(), &json!({})).unwrap();
    assert!(p.url.is_none() && p.events.is_none() && p.secret.is_none());
    assert!(p.session_id.is_none() && p.description.is_none() && p.headers.is_none());
    assert!(p.active.is_none() && p.rate_limit.is_none());
}

#[test]
fn a_patch_parses_the_fields_given() {
    let p = parse_patch(
        &catalog(),
        &json!({
            "active": false,
            "events": ["session.*", "session.*", "message.ack"],
            "sessionId": null,
            "description": "paused",
            "url": "https://n8n.example.com/other",
            "secret": "a-plain-openwa-secret",
            "rateLimit": null,
            "headers": {"X-A": "b"}
        }),
    )
    .unwrap();
    assert_eq!(p.active, Some(false));
    assert_eq!(p.events.unwrap(), vec!["session.*", "message.ack"]);
    assert_eq!(p.session_id, Some(None), "null clears the session filter");
    assert_eq!(p.description, Some(Some("paused".to_owned())));
    assert_eq!(
        p.url.as_ref().map(TargetUrl::as_str),
        Some("https://n8n.example.com/other")
    );
    assert_eq!(p.secret.unwrap().expose(), "a-plain-openwa-secret");
    assert_eq!(p.rate_limit, Some(None));
    assert_eq!(p.headers.unwrap().len(), 1);
}

#[test]
fn a_patch_follows_the_same_rules() {
    let errors = parse_patch(
        &catalog(),
        &json!({
            "events": [],
            "url": "https://u:p4ss@n8n.example.com/",
            "active": "no",
            "secret": "short",
            "sesionId": "x"
        }),
    )
    .unwrap_err();
    let got: Vec<(&str, ErrorCode)> = errors
        .iter()
        .map(|e| (e.pointer.as_str(), e.code))
        .collect();
    assert_eq!(
        got,
        vec![
            ("/sesionId", ErrorCode::UnknownField),
            ("/url", ErrorCode::InvalidUrl),
            ("/events", ErrorCode::EmptyEvents),
            ("/secret", ErrorCode::InvalidSecret),
            ("/active", ErrorCode::InvalidType),
        ]
    );
    assert!(!serde_json::to_string(&errors).unwrap().contains("p4ss"));

    let errors = parse_patch(
        &catalog_fed_by_openwa_0_4_3(),
        &json!({"events": ["group.leave"]}),
    )
    .unwrap_err();
    assert_eq!(errors[0].code, ErrorCode::ReservedEvent);
    let errors = parse_patch(&catalog(), &json!([])).unwrap_err();
    assert_eq!(errors[0].code, ErrorCode::InvalidType);
}
