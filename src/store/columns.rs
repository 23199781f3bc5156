//! The SELECT heads both backends use, written once: the same columns in the same order, which
//! the row mapping in `rows.rs` reads. Each backend appends its WHERE in its own dialect.

/// A registration: what `rows::webhook` reads.
macro_rules! webhook_columns {
    () => {
        "id, url, events, session_id, description, headers, secret, active, rate_limit, disabled_reason, created_at, updated_at"
    };
}

/// A delivery as the API shows it: what `rows::delivery` reads.
macro_rules! delivery_select {
    () => {
        "SELECT d.id, d.webhook_id, d.event_id, e.event, e.idempotency_key, d.state, d.attempts, \
    d.next_attempt_at, d.last_status, d.last_error, d.is_test, d.created_at, d.updated_at \
    FROM deliveries d JOIN events e ON e.id = d.event_id"
    };
}

/// A leased delivery ready to send: what `rows::claimed` reads.
macro_rules! claimed_select {
    () => {
        "SELECT d.id, d.webhook_id, d.attempts, d.retry_base, d.is_test, d.claim_token, w.url, w.secret, w.headers, w.rate_limit, \
                e.event, e.session_id, e.idempotency_key, e.occurred_rfc3339, e.data \
         FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id JOIN events e ON e.id = d.event_id"
    };
}

/// The stored event of one delivery: what `rows::delivery_event` reads.
macro_rules! delivery_event_select {
    () => {
        "SELECT d.id, d.webhook_id, d.is_test, e.event, e.session_id, e.idempotency_key, \
             e.occurred_rfc3339, e.data FROM deliveries d JOIN events e ON e.id = d.event_id"
    };
}
