-- wabridge schema, PostgreSQL. Same tables and meaning as migrations/sqlite/0001_init.sql.
-- Times are Unix milliseconds (BIGINT) unless named *_rfc3339.
-- Ids and keys use the "C" collation so that they sort by bytes, as in SQLite, whatever the
-- database's default locale: cursors (`WHERE id > $1 ORDER BY id`) rely on it.
-- JSON columns are TEXT, not JSONB: the payload is delivered byte for byte as it was stored, and
-- no query looks inside it.

CREATE TABLE api_keys (
    hash        TEXT COLLATE "C" PRIMARY KEY,   -- hex SHA-256 of the key; the key itself is never stored
    role        TEXT NOT NULL,                  -- admin | ingest
    created_at  BIGINT NOT NULL
);

CREATE TABLE webhooks (
    id              TEXT COLLATE "C" PRIMARY KEY,
    url             TEXT NOT NULL,
    events          TEXT NOT NULL,              -- JSON array of patterns, as registered
    session_id      TEXT,
    description     TEXT,
    headers         TEXT NOT NULL,              -- JSON object
    secret          TEXT NOT NULL,
    active          BOOLEAN NOT NULL,
    rate_limit      DOUBLE PRECISION,
    disabled_reason TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

-- One row per (pattern, webhook): the fan-out index.
CREATE TABLE webhook_subscriptions (
    pattern     TEXT COLLATE "C" NOT NULL,
    webhook_id  TEXT COLLATE "C" NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    PRIMARY KEY (pattern, webhook_id)
);
CREATE INDEX webhook_subscriptions_webhook ON webhook_subscriptions(webhook_id);

CREATE TABLE events (
    id               TEXT COLLATE "C" PRIMARY KEY,
    idempotency_key  TEXT COLLATE "C" NOT NULL UNIQUE,
    event            TEXT NOT NULL,
    session_id       TEXT NOT NULL,
    data             TEXT NOT NULL,             -- JSON, as received
    occurred_rfc3339 TEXT NOT NULL,
    received_at      BIGINT NOT NULL,
    dispatched       BOOLEAN NOT NULL,
    not_dispatched_reason TEXT,
    source           TEXT NOT NULL              -- api | openwa | test
);

-- The last dispatched session.status per session (survives restarts; shared by all instances).
CREATE TABLE session_status (
    session_id  TEXT COLLATE "C" PRIMARY KEY,
    status      TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE deliveries (
    id               TEXT COLLATE "C" PRIMARY KEY,
    event_id         TEXT COLLATE "C" NOT NULL REFERENCES events(id),
    webhook_id       TEXT COLLATE "C" NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    state            TEXT NOT NULL,             -- pending | delivered | dead
    attempts         INTEGER NOT NULL,          -- attempts made, ever
    retry_base       INTEGER NOT NULL,          -- attempts made before the last redrive
    next_attempt_at  BIGINT NOT NULL,
    lease_until      BIGINT,                    -- set while an instance works on it
    claimed_by       TEXT,                      -- the instance that claimed it last
    last_status      INTEGER,
    last_error       TEXT,
    is_test          BOOLEAN NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX deliveries_due ON deliveries(next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX deliveries_webhook ON deliveries(webhook_id, id);
CREATE INDEX deliveries_event ON deliveries(event_id);

CREATE TABLE attempts (
    delivery_id  TEXT COLLATE "C" NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
    attempt      INTEGER NOT NULL,
    started_at   BIGINT NOT NULL,
    status_code  INTEGER,
    latency_ms   BIGINT NOT NULL,
    error        TEXT,
    PRIMARY KEY (delivery_id, attempt)
);
