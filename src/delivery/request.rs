//! The delivery request, built without I/O: the envelope body and every header, signed for the
//! attempt's timestamp. Pure, so the exact bytes on the wire are testable.

use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;
use serde_json::value::RawValue;

use super::signer::{openwa_signature, standard_signature};
use crate::store::{ClaimedDelivery, DeliveryEvent};

/// `User-Agent` of every delivery.
pub const USER_AGENT: &str = concat!("wabridge/", env!("CARGO_PKG_VERSION"));

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    event: &'a str,
    session_id: &'a str,
    timestamp: &'a str,
    idempotency_key: &'a str,
    delivery_id: &'a str,
    data: &'a RawValue,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    test: bool,
}

/// The JSON body of a delivery: `{event, sessionId, timestamp, idempotencyKey, deliveryId, data}`
/// (plus `test: true` on test deliveries). `data` is copied as stored, not re-serialised.
pub fn envelope_body(d: &ClaimedDelivery) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&Envelope {
        event: &d.event,
        session_id: &d.session_id,
        timestamp: &d.occurred,
        idempotency_key: &d.idempotency_key,
        delivery_id: d.id.as_str(),
        data: serde_json::from_str(&d.data)?,
        test: d.is_test,
    })
}

/// [`envelope_body`] of a stored delivery, from its event alone (the operator page shows the
/// envelope as sent; nothing that signs it is read).
pub fn stored_envelope_body(e: &DeliveryEvent) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&Envelope {
        event: &e.event,
        session_id: &e.session_id,
        timestamp: &e.occurred,
        idempotency_key: &e.idempotency_key,
        delivery_id: e.delivery_id.as_str(),
        data: serde_json::from_str(&e.data)?,
        test: e.is_test,
    })
}

/// Every header of one attempt: the registration's own headers first, then wabridge's, which
/// win (reserved names are refused at registration anyway).
///
/// `attempt` is 1-based; `now_unix` is the attempt's time, signed into `webhook-timestamp`.
pub fn delivery_headers(
    d: &ClaimedDelivery,
    body: &[u8],
    attempt: u32,
    now_unix: i64,
) -> HeaderMap {
    let mut h = HeaderMap::with_capacity(d.headers.len() + 12);
    for (name, value) in &d.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) && !crate::registration::is_reserved_header(name)
        {
            h.insert(n, v);
        }
    }
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(HeaderName::from_static(name), v);
        }
    };
    set("content-type", "application/json".into());
    set("user-agent", USER_AGENT.into());
    let secret = &d.secret;
    set("webhook-id", d.idempotency_key.clone());
    set("webhook-timestamp", now_unix.to_string());
    set(
        "webhook-signature",
        standard_signature(&secret.standard_key(), &d.idempotency_key, now_unix, body),
    );
    set("x-openwa-event", d.event.clone());
    set("x-openwa-idempotency-key", d.idempotency_key.clone());
    set("x-openwa-delivery-id", d.id.to_string());
    set(
        "x-openwa-retry-count",
        attempt.saturating_sub(1).to_string(),
    );
    set(
        "x-openwa-signature",
        openwa_signature(secret.expose(), body),
    );
    if d.is_test {
        set("x-wabridge-test", "true".into());
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::signer::{verify_openwa, verify_standard};
    use crate::secret::WebhookSecret;

    fn claimed() -> ClaimedDelivery {
        ClaimedDelivery {
            id: crate::store::DeliveryId::from_stored("dlv_0193"),
            webhook_id: crate::store::WebhookId::from_stored("wh_1"),
            url: crate::target_url::TargetUrl::parse("https://example.com/hook").unwrap(),
            secret: WebhookSecret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap(),
            headers: [
                ("X-Custom".to_owned(), "yes".to_owned()),
                ("Content-Type".to_owned(), "text/plain".to_owned()),
            ]
            .into_iter()
            .collect(),
            rate_limit: None,
            event: "session.status".into(),
            session_id: "s1".into(),
            idempotency_key: "ses_abc".into(),
            occurred: "2026-11-28T10:00:00Z".into(),
            data: r#"{"sessionId":"s1","status":"ready"}"#.into(),
            is_test: false,
            attempts: 0,
            retry_base: 0,
            claim_token: 1,
        }
    }

    #[test]
    fn envelope_has_the_contract_fields_and_raw_data() {
        let body = envelope_body(&claimed()).unwrap();
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            r#"{"event":"session.status","sessionId":"s1","timestamp":"2026-11-28T10:00:00Z","idempotencyKey":"ses_abc","deliveryId":"dlv_0193","data":{"sessionId":"s1","status":"ready"}}"#
        );
        let mut test = claimed();
        test.is_test = true;
        let v: serde_json::Value = serde_json::from_slice(&envelope_body(&test).unwrap()).unwrap();
        assert_eq!(v["test"], true);
    }

    #[test]
    fn headers_are_signed_and_reserved_names_are_ours() {
        let d = claimed();
        let body = envelope_body(&d).unwrap();
        let h = delivery_headers(&d, &body, 3, 1_764_320_000);
        assert_eq!(h["content-type"], "application/json");
        assert_eq!(h["x-custom"], "yes");
        assert_eq!(h["webhook-id"], "ses_abc");
        assert_eq!(h["webhook-timestamp"], "1764320000");
        assert_eq!(h["x-openwa-retry-count"], "2");
        assert_eq!(h["x-openwa-delivery-id"], "dlv_0193");
        let sig = h["webhook-signature"].to_str().unwrap();
        let key = d.secret.standard_key();
        assert!(
            verify_standard(
                &key,
                "ses_abc",
                1_764_320_000,
                &body,
                sig,
                1_764_320_000,
                300
            )
            .is_ok()
        );
        let openwa = h["x-openwa-signature"].to_str().unwrap();
        assert!(verify_openwa(d.secret.expose(), &body, openwa));
        assert!(!h.contains_key("x-wabridge-test"));
    }
}
