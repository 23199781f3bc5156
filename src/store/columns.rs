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

/// Statements both dialects read alike (`$N` placeholders: SQLite takes them too), written once.
pub(super) mod shared {
    /// One page of stored secrets, for the reseal walk: after id $1, $2 rows.
    pub const SEALED_PAGE: &str =
        "SELECT id, secret, headers FROM webhooks WHERE id > $1 ORDER BY id LIMIT $2";
    /// A registration by id ($1).
    pub const WEBHOOK_BY_ID: &str = concat!(
        "SELECT ",
        webhook_columns!(),
        " FROM webhooks WHERE id = $1"
    );
    /// Registrations after id $1, $2 of them.
    pub const WEBHOOK_PAGE: &str = concat!(
        "SELECT ",
        webhook_columns!(),
        " FROM webhooks WHERE id > $1 ORDER BY id LIMIT $2"
    );
    /// A registration's ($1) deliveries after id $2, $3 of them.
    pub const DELIVERY_PAGE: &str = concat!(
        delivery_select!(),
        " WHERE d.webhook_id = $1 AND d.id > $2 ORDER BY d.id LIMIT $3"
    );
    /// A delivery by id ($1).
    pub const DELIVERY_BY_ID: &str = concat!(delivery_select!(), " WHERE d.id = $1");
    /// The stored event of a delivery ($1).
    pub const DELIVERY_EVENT: &str = concat!(delivery_event_select!(), " WHERE d.id = $1");
    /// A delivery's ($1) attempt log: what `rows::attempt` reads.
    pub const ATTEMPTS_OF: &str = "SELECT attempt, started_at, status_code, latency_ms, error \
         FROM attempts WHERE delivery_id = $1 ORDER BY attempt";
    /// Every ignored name, most recently seen first: what `rows::ignored` reads.
    pub const IGNORED: &str = "SELECT source, name, count, first_seen_at, last_seen_at, last_reason \
         FROM ignored_events ORDER BY last_seen_at DESC, source, name";
    /// Counts by state of one registration's ($2) deliveries, in flight: leased past $1. What
    /// `rows::state_counts` reads.
    pub const STATE_COUNTS_OF: &str = "SELECT \
         CAST(COALESCE(SUM(CASE WHEN state = 'pending' THEN 1 ELSE 0 END), 0) AS BIGINT) AS pending, \
         CAST(COALESCE(SUM(CASE WHEN state = 'pending' AND lease_until > $1 THEN 1 ELSE 0 END), 0) AS BIGINT) AS in_flight, \
         CAST(COALESCE(SUM(CASE WHEN state = 'delivered' THEN 1 ELSE 0 END), 0) AS BIGINT) AS delivered, \
         CAST(COALESCE(SUM(CASE WHEN state = 'dead' THEN 1 ELSE 0 END), 0) AS BIGINT) AS dead \
         FROM deliveries WHERE webhook_id = $2";
    /// One more ignored delivery of source $1 and name $2 at $3, reason $4.
    pub const RECORD_IGNORED: &str = "INSERT INTO ignored_events \
         (source, name, count, first_seen_at, last_seen_at, last_reason) VALUES ($1, $2, 1, $3, $3, $4) \
         ON CONFLICT (source, name) DO UPDATE SET count = ignored_events.count + 1, \
         last_seen_at = excluded.last_seen_at, last_reason = excluded.last_reason";
    /// Registration $2's dead deliveries (all, or only $3) pending again at $1.
    pub const REDRIVE: &str = "UPDATE deliveries SET state = 'pending', retry_base = attempts, \
         next_attempt_at = $1, lease_until = NULL, updated_at = $1 \
         WHERE webhook_id = $2 AND state = 'dead' AND (CAST($3 AS TEXT) IS NULL OR id = $3)";
    /// Pending deliveries leased past $1.
    pub const IN_FLIGHT: &str =
        "SELECT COUNT(*) FROM deliveries WHERE state = 'pending' AND lease_until > $1";
}
