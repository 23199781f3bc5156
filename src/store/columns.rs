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
        claimed_select!("deliveries")
    };
    // The rows of `d` come from `$deliveries` (a table or a CTE with the deliveries' columns).
    ($deliveries:literal) => {
        concat!(
            "SELECT d.id, d.webhook_id, d.attempts, d.retry_base, d.is_test, d.claim_token, w.url, w.secret, w.headers, w.rate_limit, \
                e.event, e.session_id, e.idempotency_key, e.occurred_rfc3339, e.data \
         FROM ",
            $deliveries,
            " d JOIN webhooks w ON w.id = d.webhook_id JOIN events e ON e.id = d.event_id"
        )
    };
}

/// The stored event of one delivery: what `rows::delivery_event` reads.
macro_rules! delivery_event_select {
    () => {
        "SELECT d.id, d.webhook_id, d.is_test, e.event, e.session_id, e.idempotency_key, \
             e.occurred_rfc3339, e.data FROM deliveries d JOIN events e ON e.id = d.event_id"
    };
}

/// Binds a registration's columns in `webhook_columns!()` order after its id, the same for both
/// backends: `bind_webhook!(query, webhook, sealed, events_json)` binds url, events, session_id,
/// description, headers, secret, active, rate_limit, disabled_reason (9 values; the caller binds
/// what follows). `sealed` is the secret and headers as stored (`AtRest::seal`).
macro_rules! bind_webhook {
    ($q:expr, $w:expr, $sealed:expr, $events:expr) => {
        $q.bind($w.url.as_str())
            .bind($events)
            .bind(&$w.session_id)
            .bind(&$w.description)
            .bind(&$sealed.headers)
            .bind(&$sealed.secret)
            .bind($w.active)
            .bind($w.rate_limit)
            .bind(&$w.disabled_reason)
    };
}

/// Deletes registration `$id` with its deliveries and their attempts on `$conn` (a connection or
/// transaction of either backend, inside the caller's transaction); evaluates to whether the
/// registration was there. Events left without any delivery become prunable first.
macro_rules! delete_webhook_cascade {
    ($conn:expr, $id:expr) => {{
        for sql in [
            $crate::store::columns::shared::UNDISPATCH_EVENTS_OF,
            $crate::store::columns::shared::DELETE_ATTEMPTS_OF,
            $crate::store::columns::shared::DELETE_DELIVERIES_OF,
        ] {
            sqlx::query(sql).bind($id).execute(&mut *$conn).await?;
        }
        sqlx::query($crate::store::columns::shared::DELETE_WEBHOOK)
            .bind($id)
            .execute(&mut *$conn)
            .await?
            .rows_affected()
            > 0
    }};
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
    /// A new registration: id $1, the values of `bind_webhook!` ($2–$10), created $11, updated $12.
    pub const INSERT_WEBHOOK: &str = concat!(
        "INSERT INTO webhooks (",
        webhook_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    );
    /// A registration's new values (`bind_webhook!`, $1–$9) updated at $10, written only if
    /// registration $11 is still as read: updated at $12, active $13, disabled for $14.
    pub const UPDATE_WEBHOOK_IF_UNCHANGED: &str = "UPDATE webhooks SET url = $1, events = $2, \
         session_id = $3, description = $4, headers = $5, secret = $6, active = $7, \
         rate_limit = $8, disabled_reason = $9, updated_at = $10 \
         WHERE id = $11 AND updated_at = $12 AND active = $13 \
           AND disabled_reason IS NOT DISTINCT FROM $14";
    /// A row if registration $1 exists.
    pub const WEBHOOK_EXISTS: &str = "SELECT 1 FROM webhooks WHERE id = $1";
    /// Registration $1's subscriptions, before they are written again.
    pub const DELETE_SUBSCRIPTIONS_OF: &str =
        "DELETE FROM webhook_subscriptions WHERE webhook_id = $1";
    /// Events of registration $1 that no other registration's delivery holds: prunable once its
    /// deliveries are deleted (retention: `events_undelivered`).
    pub const UNDISPATCH_EVENTS_OF: &str = "UPDATE events SET dispatched = FALSE \
         WHERE id IN (SELECT event_id FROM deliveries WHERE webhook_id = $1) \
           AND NOT EXISTS (SELECT 1 FROM deliveries d \
                           WHERE d.event_id = events.id AND d.webhook_id <> $1)";
    /// The attempts of registration $1's deliveries.
    pub const DELETE_ATTEMPTS_OF: &str = "DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE webhook_id = $1)";
    /// Registration $1's deliveries.
    pub const DELETE_DELIVERIES_OF: &str = "DELETE FROM deliveries WHERE webhook_id = $1";
    /// Registration $1.
    pub const DELETE_WEBHOOK: &str = "DELETE FROM webhooks WHERE id = $1";
    /// Pending deliveries leased past $1.
    pub const IN_FLIGHT: &str =
        "SELECT COUNT(*) FROM deliveries WHERE state = 'pending' AND lease_until > $1";
}
