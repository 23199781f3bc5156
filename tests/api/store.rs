//! The store boundary itself, for behaviour that HTTP cannot force reliably.

use serde_json::json;
use wabridge::ids::WebhookId;
use wabridge::secret::WebhookSecret;
use wabridge::store::{AttemptNext, AttemptRecord, EventSource, NewEvent, Webhook};

use crate::helpers::store_fixtures::open_store;

#[tokio::test]
async fn results_of_deleted_deliveries_do_not_sink_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir.path().join("s.db")).await;
    let now = wabridge::clock::now_ms();
    let webhook = |id: &str| Webhook {
        id: WebhookId::from_stored(id),
        url: wabridge::target_url::TargetUrl::parse("https://example.com/hook").unwrap(),
        events: vec!["*".into()],
        session_id: None,
        description: None,
        headers: Default::default(),
        secret: WebhookSecret::generate(),
        active: true,
        rate_limit: None,
        disabled_reason: None,
        created_at_ms: now,
        updated_at_ms: now,
    };
    store.create_webhook(&webhook("wh_a")).await.unwrap();
    store.create_webhook(&webhook("wh_b")).await.unwrap();
    let event = NewEvent {
        id: wabridge::ids::EventId::from_stored("evt_1"),
        idempotency_key: "qr_1".into(),
        event: "session.qr".into(),
        session_id: wabridge::ids::SessionId::from_stored("s1"),
        data: json!({"sessionId": "s1", "qr": "x"}),
        occurred: "2026-11-28T10:00:00Z".into(),
        source: EventSource::Api,
        status: None,
        only_webhook: None,
        subscribed_by: ["session.qr".into(), "session.*".into(), "*".into()],
    };
    let out = store.ingest(&[event], now).await.unwrap();
    assert_eq!(out[0].deliveries.len(), 2);
    let claimed = store.claim_due(now, 60_000, 10, 8, &[]).await.unwrap();
    assert_eq!(claimed.len(), 2);
    // A claimed delivery is leased: a second claim gets nothing.
    assert!(
        store
            .claim_due(now, 60_000, 10, 8, &[])
            .await
            .unwrap()
            .is_empty()
    );
    let a = claimed.iter().find(|d| d.webhook_id == "wh_a").unwrap();
    let b = claimed.iter().find(|d| d.webhook_id == "wh_b").unwrap();
    assert!(
        store
            .delete_webhook(&WebhookId::from_stored("wh_a"))
            .await
            .unwrap()
    );
    let record = |d: &wabridge::store::ClaimedDelivery| AttemptRecord {
        delivery_id: d.id.clone(),
        webhook_id: d.webhook_id.clone(),
        claim_token: d.claim_token,
        attempt: 1,
        started_at_ms: now,
        status_code: Some(200),
        latency_ms: 3,
        error: None,
        next: AttemptNext::Delivered,
    };
    store
        .record_attempts(&[record(a), record(b)])
        .await
        .unwrap();
    let got = store.get_delivery(&b.id).await.unwrap().unwrap();
    assert_eq!(got.state.as_str(), "delivered");
    assert_eq!(got.attempt_log.len(), 1);
    assert!(store.get_delivery(&a.id).await.unwrap().is_none());
}
