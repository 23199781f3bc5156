-- wabridge schema, SQLite. Times are Unix milliseconds unless named *_rfc3339.

CREATE TABLE api_keys (
    hash        TEXT PRIMARY KEY,           -- hex SHA-256 of the key; the key itself is never stored
    role        TEXT NOT NULL,              -- admin | ingest
    created_at  INTEGER NOT NULL
);

CREATE TABLE webhooks (
    id              TEXT PRIMARY KEY,
    url             TEXT NOT NULL,
    events          TEXT NOT NULL,          -- JSON array of patterns, as registered
    session_id      TEXT,
    description     TEXT,
    headers         TEXT NOT NULL,          -- JSON object
    secret          TEXT NOT NULL,
    active          INTEGER NOT NULL,
    rate_limit      REAL,
    disabled_reason TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

-- One row per (pattern, webhook): the fan-out index.
CREATE TABLE webhook_subscriptions (
    pattern     TEXT NOT NULL,
    webhook_id  TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    PRIMARY KEY (pattern, webhook_id)
);
CREATE INDEX webhook_subscriptions_webhook ON webhook_subscriptions(webhook_id);

CREATE TABLE events (
    id               TEXT PRIMARY KEY,
    idempotency_key  TEXT NOT NULL UNIQUE,
    event            TEXT NOT NULL,
    session_id       TEXT NOT NULL,
    data             TEXT NOT NULL,         -- JSON
    occurred_rfc3339 TEXT NOT NULL,
    received_at      INTEGER NOT NULL,
    dispatched       INTEGER NOT NULL,
    not_dispatched_reason TEXT,
    source           TEXT NOT NULL          -- api | openwa | test
);

-- The last dispatched session.status per session (survives restarts).
CREATE TABLE session_status (
    session_id  TEXT PRIMARY KEY,
    status      TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE deliveries (
    id               TEXT PRIMARY KEY,
    event_id         TEXT NOT NULL REFERENCES events(id),
    webhook_id       TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    state            TEXT NOT NULL,         -- pending | delivered | dead
    attempts         INTEGER NOT NULL,      -- attempts made, ever
    retry_base       INTEGER NOT NULL,      -- attempts made before the last redrive
    next_attempt_at  INTEGER NOT NULL,
    lease_until      INTEGER,               -- set while an instance works on it
    last_status      INTEGER,
    last_error       TEXT,
    is_test          INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_webhook ON deliveries(webhook_id, id);

CREATE TABLE attempts (
    delivery_id  TEXT NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
    attempt      INTEGER NOT NULL,
    started_at   INTEGER NOT NULL,
    status_code  INTEGER,
    latency_ms   INTEGER NOT NULL,
    error        TEXT,
    PRIMARY KEY (delivery_id, attempt)
);
